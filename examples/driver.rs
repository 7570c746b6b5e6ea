//! A Windows-driver-shaped client: the lifecycle `UsbPm_Deregister`'s documentation
//! describes, on this library.
//!
//! - `EvtDeviceSelfManagedIoInit`: the driver allocates its context and registers its
//!   callback with the Policy Manager;
//! - the hardware reports connector changes on two hubs, from two threads at once; the
//!   callback handles them on the reporting threads, one call at a time (as Windows
//!   promises), so it updates the driver's context with no lock of its own;
//! - `EvtDeviceSelfManagedIoCleanup`: the driver deregisters, here while a callback is
//!   still running, and frees its context right after deregister returns. That is safe
//!   because deregister waits for every running call of the callback, and no call begins
//!   after it returns.
//!
//! Run it with `cargo run --example driver`; it prints what happens, in order.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier, Mutex};
use std::thread;

use usbpm::{
    ClientConfig, ClientHandle, ConnectorId, ConnectorState, Error, Event, HubId, Notification,
    PolicyManager, PowerRole,
};

/// The driver's per-device memory, which a C driver would free after deregister. The
/// callback updates it without a lock: calls are serialized, each after the previous one
/// returned, so plain relaxed loads and stores are enough (Rust asks for `Sync`, which
/// the atomics give; a C driver would use plain fields).
struct DeviceContext {
    name: &'static str,
    events_handled: AtomicUsize,
    /// Set while a call runs: a call that found it set would be a second call at once.
    in_call: AtomicBool,
    /// Set when the driver "frees" the context; a callback that saw it set would be a
    /// use after free.
    freed: AtomicBool,
}

/// What the example prints, in the order it happened, from any thread.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn say(&self, who: &str, what: impl Into<String>) {
        let line = format!("{who:<10} {}", what.into());
        println!("{line}");
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(line);
    }

    fn position(&self, needle: &str) -> Option<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .position(|l| l.contains(needle))
    }
}

/// The WDF device: what the driver keeps between its callbacks.
struct Device {
    context: Option<Arc<DeviceContext>>,
    handle: Option<ClientHandle>,
}

fn describe(n: &Notification) -> String {
    match &n.event {
        Event::HubArrival(info) => format!(
            "{} seq {}: hub arrived with {} connectors",
            n.hub,
            n.seq,
            info.connectors.len()
        ),
        Event::ConnectorStateChange { connector, state } => {
            format!(
                "{} seq {}: {connector} {} ({:?}, {} mW)",
                n.hub,
                n.seq,
                if state.attached {
                    "attached"
                } else {
                    "detached"
                },
                state.power_role,
                state.partner_max_milliwatts
            )
        }
        Event::HubRemoval => format!("{} seq {}: hub removed", n.hub, n.seq),
    }
}

/// EvtDeviceSelfManagedIoInit: allocate the context, register the callback. The callback
/// holds on hub 1's event `hold_seq`: it meets main at `entered`, then waits at `release`
/// until main lets it go, so that cleanup can run while it is inside.
fn self_managed_io_init(
    pm: &PolicyManager,
    log: &Log,
    hold_seq: u64,
    entered: Arc<Barrier>,
    release: Arc<Barrier>,
) -> Result<Device, Error> {
    let context = Arc::new(DeviceContext {
        name: "UcmDemo",
        events_handled: AtomicUsize::new(0),
        in_call: AtomicBool::new(false),
        freed: AtomicBool::new(false),
    });
    let (cb_log, cb_context) = (log.clone(), context.clone());
    let handle = pm.register(ClientConfig::new(
        cb_context,
        move |ctx: &Arc<DeviceContext>, _pm, n| {
            assert!(
                !ctx.freed.load(Ordering::SeqCst),
                "use after free: the callback ran after the context was freed"
            );
            assert!(
                !ctx.in_call.swap(true, Ordering::Relaxed),
                "two calls of the callback at once"
            );
            cb_log.say("callback", format!("{} handles {}", ctx.name, describe(n)));
            // One call at a time: a load and a store, no lock and no read-modify-write.
            let handled = ctx.events_handled.load(Ordering::Relaxed);
            ctx.events_handled.store(handled + 1, Ordering::Relaxed);
            if n.hub == HubId(1)
                && n.seq == hold_seq
                && matches!(n.event, Event::ConnectorStateChange { .. })
            {
                cb_log.say("callback", "... still busy with it (cleanup may start now)");
                entered.wait();
                release.wait();
            }
            ctx.in_call.store(false, Ordering::Relaxed);
            assert!(
                !ctx.freed.load(Ordering::SeqCst),
                "use after free: the context was freed while the callback ran"
            );
            cb_log.say("callback", format!("returns from {} seq {}", n.hub, n.seq));
        },
    ))?;
    log.say(
        "driver",
        format!("EvtDeviceSelfManagedIoInit: context allocated, registered as {handle}"),
    );
    Ok(Device {
        context: Some(context),
        handle: Some(handle),
    })
}

/// EvtDeviceSelfManagedIoCleanup: deregister, then free the context at once.
fn self_managed_io_cleanup(pm: &PolicyManager, log: &Log, device: &mut Device) {
    let handle = device.handle.take().expect("registered in init");
    log.say(
        "driver",
        "EvtDeviceSelfManagedIoCleanup: UsbPm_Deregister ...",
    );
    pm.deregister(handle)
        .expect("deregister of a registered client succeeds");
    log.say(
        "driver",
        "deregister returned: no callback is running, none will start",
    );
    let context = device.context.take().expect("allocated in init");
    context.freed.store(true, Ordering::SeqCst);
    log.say(
        "driver",
        format!(
            "context freed after {} events",
            context.events_handled.load(Ordering::Relaxed)
        ),
    );
}

fn state(attached: bool, power_role: PowerRole, partner_max_milliwatts: u32) -> ConnectorState {
    ConnectorState {
        attached,
        power_role,
        partner_max_milliwatts,
    }
}

fn main() {
    let pm = PolicyManager::new();
    let log = Log::default();
    let port = pm
        .hub_arrival(
            HubId(1),
            vec![ConnectorState::default(), ConnectorState::default()],
        )
        .expect("a new hub");
    log.say("hardware", "hub 1 present with 2 connectors");
    let port2 = pm
        .hub_arrival(HubId(2), vec![ConnectorState::default()])
        .expect("a new hub");
    log.say("hardware", "hub 2 present with 1 connector");

    let entered = Arc::new(Barrier::new(2));
    let release = Arc::new(Barrier::new(2));
    // Hub 1's second change (seq 2) is the one the callback is still handling at cleanup.
    // A driver fails EvtDeviceSelfManagedIoInit with the error's NTSTATUS.
    let mut device = self_managed_io_init(&pm, &log, 2, entered.clone(), release.clone())
        .unwrap_or_else(|e| panic!("UsbPm_Register failed with {}: {e}", e.ntstatus()));

    let hw_log = log.clone();
    let hardware = thread::spawn(move || {
        for (connector, s) in [
            (0, state(true, PowerRole::Sink, 27_000)),
            (1, state(true, PowerRole::Source, 15_000)),
            (0, state(false, PowerRole::Sink, 0)),
        ] {
            hw_log.say("hardware", format!("hub 1 connector {connector} changes"));
            port.connector_changed(ConnectorId(connector), s)
                .expect("the hub is present");
        }
        port
    });
    // Hub 2 reports from a thread of its own at the same time: its events reach the
    // callback between hub 1's, never during one.
    let hw2_log = log.clone();
    let hardware2 = thread::spawn(move || {
        for s in [
            state(true, PowerRole::Sink, 45_000),
            state(false, PowerRole::Sink, 0),
        ] {
            hw2_log.say("hardware", "hub 2 connector 0 changes");
            port2
                .connector_changed(ConnectorId(0), s)
                .expect("the hub is present");
        }
        port2
    });

    // Cleanup begins while the callback is inside seq 2; the callback is let go only
    // once deregister has been called, and deregister returns only after it returned.
    entered.wait();
    let (pm2, log2) = (pm.clone(), log.clone());
    let (calling_tx, calling) = mpsc::channel();
    let cleanup = thread::spawn(move || {
        let _ = calling_tx.send(());
        self_managed_io_cleanup(&pm2, &log2, &mut device);
    });
    calling.recv().expect("cleanup starts");
    log.say("main", "letting the callback finish");
    release.wait();
    cleanup.join().expect("cleanup completes");
    let port = hardware.join().expect("the hardware thread completes");
    hardware2.join().expect("hub 2's thread completes").remove();

    port.connector_changed(ConnectorId(1), state(false, PowerRole::Sink, 0))
        .expect("the hub is present");
    log.say(
        "hardware",
        "connector 1 changes again: no client is registered, nothing is called",
    );
    port.remove();

    let returned = log
        .position("returns from hub 1 seq 2")
        .expect("the held callback returned");
    let deregistered = log
        .position("deregister returned")
        .expect("deregister returned");
    assert!(
        returned < deregistered,
        "deregister returned before the running callback did"
    );
    println!("\nThe callback's last call returned (line {}) before deregister did (line {}): freeing the context right after deregister is safe.", returned + 1, deregistered + 1);
}

//! A Windows-driver-shaped client: the lifecycle `UsbPm_Deregister`'s documentation
//! describes, on this library.
//!
//! - `EvtDeviceSelfManagedIoInit`: the driver allocates its context and registers its
//!   callback with the Policy Manager;
//! - the hardware reports connector changes; the callback handles them on the reporting
//!   thread, reading the driver's context;
//! - `EvtDeviceSelfManagedIoCleanup`: the driver deregisters, here while a callback is
//!   still running, and frees its context right after deregister returns. That is safe
//!   because deregister waits for every running call of the callback, and no call begins
//!   after it returns.
//!
//! Run it with `cargo run --example driver`; it prints what happens, in order.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;

use usbpm::{
    ClientConfig, ClientHandle, ConnectorId, ConnectorState, Error, Event, HubId, Notification,
    PolicyManager, PowerRole,
};

/// The driver's per-device memory, which a C driver would free after deregister.
struct DeviceContext {
    name: &'static str,
    events_handled: AtomicUsize,
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
/// holds on the event `hold_seq` until `release` says so, so that cleanup can run while it
/// is inside.
fn self_managed_io_init(
    pm: &PolicyManager,
    log: &Log,
    hold_seq: u64,
    entered: mpsc::Sender<()>,
    release: mpsc::Receiver<()>,
) -> Result<Device, Error> {
    let context = Arc::new(DeviceContext {
        name: "UcmDemo",
        events_handled: AtomicUsize::new(0),
        freed: AtomicBool::new(false),
    });
    let release = Mutex::new(release);
    let (cb_log, cb_context) = (log.clone(), context.clone());
    let handle = pm.register(ClientConfig::new(
        cb_context,
        move |ctx: &Arc<DeviceContext>, _pm, n| {
            assert!(
                !ctx.freed.load(Ordering::SeqCst),
                "use after free: the callback ran after the context was freed"
            );
            cb_log.say("callback", format!("{} handles {}", ctx.name, describe(n)));
            ctx.events_handled.fetch_add(1, Ordering::SeqCst);
            if n.seq == hold_seq && matches!(n.event, Event::ConnectorStateChange { .. }) {
                cb_log.say("callback", "... still busy with it (cleanup may start now)");
                let _ = entered.send(());
                let _ = release.lock().unwrap_or_else(|p| p.into_inner()).recv();
            }
            assert!(
                !ctx.freed.load(Ordering::SeqCst),
                "use after free: the context was freed while the callback ran"
            );
            cb_log.say("callback", format!("returns from seq {}", n.seq));
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
            context.events_handled.load(Ordering::SeqCst)
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

    let (entered_tx, entered) = mpsc::channel();
    let (release, release_rx) = mpsc::channel();
    // The second change (seq 2) is the one the callback is still handling at cleanup.
    // A driver fails EvtDeviceSelfManagedIoInit with the error's NTSTATUS.
    let mut device = self_managed_io_init(&pm, &log, 2, entered_tx, release_rx)
        .unwrap_or_else(|e| panic!("UsbPm_Register failed with {}: {e}", e.ntstatus()));

    let hw_log = log.clone();
    let hardware = thread::spawn(move || {
        for (connector, s) in [
            (0, state(true, PowerRole::Sink, 27_000)),
            (1, state(true, PowerRole::Source, 15_000)),
            (0, state(false, PowerRole::Sink, 0)),
        ] {
            hw_log.say("hardware", format!("connector {connector} changes"));
            port.connector_changed(ConnectorId(connector), s)
                .expect("the hub is present");
        }
        port
    });

    // Cleanup begins while the callback is inside seq 2; the callback is let go only
    // once deregister has been called, and deregister returns only after it returned.
    entered.recv().expect("the callback reaches seq 2");
    let (pm2, log2) = (pm.clone(), log.clone());
    let (calling_tx, calling) = mpsc::channel();
    let cleanup = thread::spawn(move || {
        let _ = calling_tx.send(());
        self_managed_io_cleanup(&pm2, &log2, &mut device);
    });
    calling.recv().expect("cleanup starts");
    log.say("main", "letting the callback finish");
    let _ = release.send(());
    cleanup.join().expect("cleanup completes");
    let port = hardware.join().expect("the hardware thread completes");

    port.connector_changed(ConnectorId(1), state(false, PowerRole::Sink, 0))
        .expect("the hub is present");
    log.say(
        "hardware",
        "connector 1 changes again: no client is registered, nothing is called",
    );
    port.remove();

    let returned = log
        .position("returns from seq 2")
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

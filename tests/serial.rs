//! One call at a time, a context that dies outside delivery, and the completion of a
//! detach: the contract's newest promises, on real threads.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex, OnceLock};
use std::thread;

use common::{attached, detached, watchdog};
use usbpm::{
    ClientConfig, ConnectorId, Detached, Error, HubId, HubPort, PolicyManager, Registration,
};

/// A callback that checks it is never entered while another call of its client runs,
/// and keeps its state in plain relaxed atomics: a driver with no lock of its own.
struct Serial {
    active: AtomicBool,
    overlaps: AtomicUsize,
    calls: AtomicU64,
}

#[test]
fn calls_of_one_client_never_overlap_across_hubs() {
    watchdog("four hubs report to one client at once", || {
        const HUBS: u32 = 4;
        const CHANGES: u32 = 200;
        let pm = PolicyManager::new();
        let ctx = Arc::new(Serial {
            active: AtomicBool::new(false),
            overlaps: AtomicUsize::new(0),
            calls: AtomicU64::new(0),
        });
        let h = pm
            .register(ClientConfig::new(ctx.clone(), |ctx, _, _| {
                if ctx.active.swap(true, Ordering::Relaxed) {
                    ctx.overlaps.fetch_add(1, Ordering::Relaxed);
                }
                // A read-modify-write split in two: two calls at once would lose counts.
                let calls = ctx.calls.load(Ordering::Relaxed);
                thread::yield_now();
                ctx.calls.store(calls + 1, Ordering::Relaxed);
                ctx.active.store(false, Ordering::Relaxed);
            }))
            .unwrap();
        let ports: Vec<HubPort> = (1..=HUBS)
            .map(|i| pm.hub_arrival(HubId(i), vec![detached()]).unwrap())
            .collect();
        let start = Barrier::new(ports.len());
        thread::scope(|s| {
            for port in &ports {
                let start = &start;
                s.spawn(move || {
                    start.wait();
                    for i in 0..CHANGES {
                        port.connector_changed(ConnectorId(0), attached(i)).unwrap();
                    }
                });
            }
        });
        pm.deregister(h).unwrap();
        assert_eq!(ctx.overlaps.load(Ordering::Relaxed), 0, "two calls at once");
        assert_eq!(
            ctx.calls.load(Ordering::Relaxed),
            1 + u64::from(HUBS * (CHANGES + 1)),
            "the Policy Manager's arrival and every hub arrival and change, each counted once"
        );
    });
}

/// A context whose `Drop` reports a change on `port` (the hub that may be dropping it)
/// and records what the report returned.
struct Reporting {
    port: Arc<OnceLock<HubPort>>,
    result: Arc<Mutex<Option<Result<(), Error>>>>,
}

impl Drop for Reporting {
    fn drop(&mut self) {
        if let Some(port) = self.port.get() {
            *self.result.lock().unwrap() =
                Some(port.connector_changed(ConnectorId(0), attached(5)));
        }
    }
}

#[test]
fn a_context_whose_drop_reports_on_the_delivering_hub_does_not_hang() {
    watchdog("a context's drop reports on its hub", || {
        for _ in 0..50 {
            let pm = PolicyManager::new();
            let port = Arc::new(OnceLock::new());
            let result = Arc::new(Mutex::new(None));
            let ctx = Reporting {
                port: port.clone(),
                result: result.clone(),
            };
            let h = pm.register(ClientConfig::new(ctx, |_, _, _| {})).unwrap();
            let _ = port.set(pm.hub_arrival(HubId(1), vec![detached()]).unwrap());
            let reporter = {
                let port = port.clone();
                thread::spawn(move || {
                    port.get()
                        .unwrap()
                        .connector_changed(ConnectorId(0), attached(1))
                        .unwrap()
                })
            };
            pm.deregister(h).unwrap();
            reporter.join().unwrap();
            // Whoever held the last reference (the deregister or the hub's drainer) has
            // dropped the context by now, or the next delivery on the hub prunes it.
            port.get()
                .unwrap()
                .connector_changed(ConnectorId(0), attached(2))
                .unwrap();
            assert_eq!(*result.lock().unwrap(), Some(Ok(())), "the drop's report");
            assert_eq!(pm.panicked_callbacks(), 0);
        }
    });
}

struct PanicsOnDrop;

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("a context that panics as it is dropped");
    }
}

#[test]
fn a_context_whose_drop_panics_is_contained_and_counted() {
    watchdog("a context's drop panics", || {
        let pm = PolicyManager::new();
        let port = pm.hub_arrival(HubId(1), vec![detached()]).unwrap();
        let h = pm
            .register(ClientConfig::new(PanicsOnDrop, |_, _, _| {}))
            .unwrap();
        let seen = Arc::new(AtomicUsize::new(0));
        let other = pm
            .register(ClientConfig::new(seen.clone(), |seen, _, n| {
                if !n.is_manager_event() {
                    seen.fetch_add(1, Ordering::SeqCst);
                }
            }))
            .unwrap();
        pm.deregister(h).unwrap();
        // The hub still holds the closed client: the next delivery prunes it, after which
        // its drainer drops the context, whose panic is contained.
        port.connector_changed(ConnectorId(0), attached(1)).unwrap();
        port.connector_changed(ConnectorId(0), attached(2)).unwrap();
        assert_eq!(pm.panicked_callbacks(), 1, "the drop's panic, counted");
        assert_eq!(seen.load(Ordering::SeqCst), 3, "the hub still delivers");
        pm.deregister(other).unwrap();
    });
}

/// The context of a client that detaches itself from inside its callback and hands the
/// completion over; the call then keeps using the context for a while.
struct Detaching {
    guard: Mutex<Option<Registration>>,
    completion: Mutex<Option<Detached>>,
    leaving: Barrier,
    returned: AtomicBool,
}

#[test]
fn a_detach_completion_fires_once_the_last_admitted_call_returned() {
    watchdog(
        "detach from its own callback, then wait for the completion",
        || {
            let pm = PolicyManager::new();
            let ctx = Arc::new(Detaching {
                guard: Mutex::new(None),
                completion: Mutex::new(None),
                leaving: Barrier::new(2),
                returned: AtomicBool::new(false),
            });
            let reg = pm
                .register_owned(ClientConfig::new(ctx.clone(), |ctx, _, n| {
                    if n.seq == 1 {
                        let guard = ctx.guard.lock().unwrap().take().unwrap();
                        *ctx.completion.lock().unwrap() = Some(guard.detach());
                        ctx.leaving.wait();
                        ctx.returned.store(true, Ordering::SeqCst);
                    }
                }))
                .unwrap();
            let handle = reg.handle();
            *ctx.guard.lock().unwrap() = Some(reg);
            let port = Arc::new(pm.hub_arrival(HubId(1), vec![detached()]).unwrap());
            let reporter = {
                let port = port.clone();
                thread::spawn(move || port.connector_changed(ConnectorId(0), attached(1)).unwrap())
            };
            // The call has detached its client and waits at the barrier: not done yet.
            let completion = loop {
                if let Some(c) = ctx.completion.lock().unwrap().take() {
                    break c;
                }
                thread::yield_now();
            };
            assert_eq!(completion.handle(), handle);
            assert!(!completion.is_done(), "the detaching call still runs");
            assert_eq!(pm.client_count(), 0, "detached at once");
            assert_eq!(pm.deregister(handle), Err(Error::StaleHandle(handle)));
            ctx.leaving.wait();
            completion.wait().unwrap();
            assert!(
                ctx.returned.load(Ordering::SeqCst),
                "fired before the call returned"
            );
            reporter.join().unwrap();
        },
    );
}

#[test]
fn waiting_for_a_detach_completion_inside_its_own_callback_is_refused() {
    watchdog("a completion waited for in its own callback", || {
        let pm = PolicyManager::new();
        let slot: Arc<Mutex<Option<Registration>>> = Arc::default();
        let refused: Arc<Mutex<Option<Error>>> = Arc::default();
        let reg = pm
            .register_owned(ClientConfig::new(
                (slot.clone(), refused.clone()),
                |(slot, refused), _, _| {
                    if let Some(reg) = slot.lock().unwrap().take() {
                        match reg.detach().wait() {
                            Err((e, completion)) => {
                                *refused.lock().unwrap() = Some(e);
                                drop(completion);
                            }
                            Ok(()) => panic!("waited for itself and returned"),
                        }
                    }
                },
            ))
            .unwrap();
        let h = reg.handle();
        *slot.lock().unwrap() = Some(reg);
        let _port = pm.hub_arrival(HubId(1), vec![detached()]).unwrap();
        assert_eq!(
            *refused.lock().unwrap(),
            Some(Error::DeregisterFromOwnCallback(h))
        );
        assert_eq!(pm.client_count(), 0);
        assert_eq!(pm.panicked_callbacks(), 0);
    });
}

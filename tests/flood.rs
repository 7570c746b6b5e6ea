//! Floods: several threads reporting one hub as fast as they can, a churning registrar
//! beside them, and a callback that reports without bound. Bounded work per call (P6):
//! a call outside callbacks delivers at most the items queued ahead of its own (one per
//! other thread in a call) and returns once its own item is delivered; reports made
//! inside callbacks are refused past the hub queue's capacity instead of growing it.

mod common;

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;

use common::*;
use usbpm::{ClientConfig, ConnectorId, Error, Event, HubId, HubPort, NtStatus, PolicyManager};

thread_local! {
    /// Callbacks this thread has run for the steady client (counted per call).
    static DELIVERED_HERE: Cell<usize> = const { Cell::new(0) };
}

const REPORTERS: usize = 4;
/// How long the flood runs: 2 s by default, `USBPM_SOAK_SECS` to soak longer.
fn soak() -> std::time::Duration {
    let secs = std::env::var("USBPM_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    std::time::Duration::from_secs(secs)
}

#[test]
fn a_flood_of_one_hub_from_several_threads_delivers_a_bounded_amount_per_call() {
    watchdog("flood of one hub", || {
        let pm = PolicyManager::new();
        let hub = HubId(1);
        let log = new_log();
        // What the steady client last saw of each connector (the reporters' k).
        let seen: Arc<Vec<AtomicU32>> =
            Arc::new((0..REPORTERS).map(|_| AtomicU32::new(0)).collect());
        let steady = {
            let ctx = (log.clone(), seen.clone());
            pm.register(ClientConfig::new(ctx, |(log, seen), _, n| {
                DELIVERED_HERE.with(|d| d.set(d.get() + 1));
                if let Event::ConnectorStateChange { connector, state } = &n.event {
                    seen[usize::from(connector.0)]
                        .store(state.partner_max_milliwatts, Ordering::SeqCst);
                }
                log.lock().unwrap().push(n.clone());
            }))
            .unwrap()
        };
        let port = pm.hub_arrival(hub, vec![detached(); REPORTERS]).unwrap();
        let stop = AtomicBool::new(false);
        let churned = AtomicUsize::new(0);
        let most_per_call = thread::scope(|s| {
            let (pm, port, stop, churned, seen) = (&pm, &port, &stop, &churned, &seen);
            // A registrar registering and deregistering in a tight loop (unpaced churn).
            let churner = s.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let h = pm.register(ClientConfig::new((), |_, _, _| {})).unwrap();
                    pm.deregister(h).unwrap();
                    churned.fetch_add(1, Ordering::Relaxed);
                }
            });
            let reporters: Vec<_> = (0..REPORTERS)
                .map(|r| {
                    s.spawn(move || {
                        let mut most = 0;
                        let until = std::time::Instant::now() + soak();
                        let mut k = 0;
                        while std::time::Instant::now() < until {
                            k += 1;
                            DELIVERED_HERE.with(|d| d.set(0));
                            port.connector_changed(ConnectorId(r as u8), attached(k))
                                .unwrap();
                            most = most.max(DELIVERED_HERE.with(|d| d.get()));
                            // Its own change has reached the client when the call returns.
                            assert_eq!(seen[r].load(Ordering::SeqCst), k, "reporter {r}");
                        }
                        (most, k as usize)
                    })
                })
                .collect();
            let done: Vec<(usize, usize)> =
                reporters.into_iter().map(|r| r.join().unwrap()).collect();
            stop.store(true, Ordering::Relaxed);
            churner.join().unwrap();
            let most = done.iter().map(|d| d.0).max().unwrap();
            (most, done.iter().map(|d| d.1).sum::<usize>())
        });
        let (most_per_call, reported) = most_per_call;
        eprintln!(
            "flood: {reported} changes from {REPORTERS} threads, {} registrations churned \
             beside them; the most one call delivered: {most_per_call}",
            churned.load(Ordering::Relaxed)
        );
        // Each call delivered its own change and at most one change per other reporter.
        assert!(
            most_per_call <= REPORTERS,
            "a call delivered {most_per_call} events, more than the {REPORTERS} reporters' items"
        );
        let events = snapshot(&log);
        check_per_hub(&events).unwrap();
        let total = 1 + reported;
        assert_eq!(
            events.len(),
            total,
            "every change reached the steady client"
        );
        assert!(churned.load(Ordering::Relaxed) > 0);
        drop(port);
        pm.deregister(steady).unwrap();
    });
}

#[test]
fn reports_from_a_callback_are_refused_past_the_queue_capacity() {
    watchdog("a callback flooding its hub", || {
        let pm = PolicyManager::new();
        let hub = HubId(3);
        let log = new_log();
        let recorder = pm.register(recorder(&log)).unwrap();
        let results: Arc<Mutex<Vec<Result<(), Error>>>> = Arc::default();
        let port_cell: Arc<OnceLock<HubPort>> = Arc::default();
        let ctx = (results.clone(), port_cell.clone());
        let flooder = pm
            .register(ClientConfig::new(ctx, |(results, port), _, n| {
                if n.event
                    == (Event::ConnectorStateChange {
                        connector: ConnectorId(0),
                        state: attached(1_000),
                    })
                {
                    let port = port.get().unwrap();
                    for k in 1..=200 {
                        let r = port.connector_changed(ConnectorId(0), attached(k));
                        results.lock().unwrap().push(r);
                    }
                }
            }))
            .unwrap();
        port_cell
            .set(pm.hub_arrival(hub, vec![detached()]).unwrap())
            .unwrap();
        let port = port_cell.get().unwrap();
        // The trigger: the flooder's callback reports 200 changes from inside.
        port.connector_changed(ConnectorId(0), attached(1_000))
            .unwrap();
        let results = results.lock().unwrap().clone();
        let accepted = results.iter().take_while(|r| r.is_ok()).count();
        assert!(accepted > 0 && accepted < 200, "accepted {accepted}");
        let refused = &results[accepted];
        assert!(matches!(refused, Err(Error::HubQueueFull { hub: h, .. }) if *h == hub));
        assert_eq!(
            refused.clone().unwrap_err().ntstatus(),
            NtStatus::INSUFFICIENT_RESOURCES
        );
        // The trigger returned only after everything its callbacks queued was delivered.
        let changes = snapshot(&log).iter().filter(|n| is_change(n)).count();
        assert_eq!(changes, 1 + accepted);
        assert!(results[accepted..].iter().all(|r| r.is_err()));
        assert_eq!(
            pm.connector_state(recorder, connector(port.handle(), 0))
                .unwrap()
                .state,
            attached(accepted as u32),
            "a refused report is not folded into the hub's state"
        );
        pm.deregister(flooder).unwrap();
    });
}

#[test]
fn a_hub_re_added_from_a_callback_into_a_full_queue_is_refused() {
    watchdog("a callback removing and re-adding its hub", || {
        let pm = limited(2, 0);
        let hub = HubId(4);
        type Outcome = (Vec<Result<(), Error>>, Option<Result<HubPort, Error>>);
        let outcome: Arc<Mutex<Outcome>> = Arc::default();
        let port_cell: Arc<Mutex<Option<HubPort>>> = Arc::default();
        let ctx = (outcome.clone(), port_cell.clone());
        let churner = pm
            .register(ClientConfig::new(ctx, move |(outcome, port), pm, n| {
                if !matches!(n.event, Event::ConnectorStateChange { .. }) {
                    return;
                }
                let Some(port) = port.lock().unwrap().take() else {
                    return;
                };
                let mut outcome = outcome.lock().unwrap();
                for k in 1..=3 {
                    outcome
                        .0
                        .push(port.connector_changed(ConnectorId(0), attached(k)));
                }
                port.remove();
                outcome.1 = Some(pm.hub_arrival(hub, vec![detached()]));
            }))
            .unwrap();
        *port_cell.lock().unwrap() = Some(pm.hub_arrival(hub, vec![detached()]).unwrap());
        // A change of another hub triggers the callback, which reports into hub 4's queue.
        let trigger = pm.hub_arrival(HubId(6), vec![detached()]).unwrap();
        trigger
            .connector_changed(ConnectorId(0), attached(1))
            .unwrap();
        let (changes, again) = {
            let mut o = outcome.lock().unwrap();
            (std::mem::take(&mut o.0), o.1.take())
        };
        // Hub 4's queue was empty when the callback began: two changes fit, the third and
        // the re-arrival (behind the removal) do not.
        assert_eq!(changes[..2], [Ok(()), Ok(())]);
        assert!(matches!(changes[2], Err(Error::HubQueueFull { hub: h, capacity: 2 }) if h == hub));
        assert!(
            matches!(again, Some(Err(Error::HubQueueFull { hub: h, capacity: 2 })) if h == hub)
        );
        // The refused arrival changed nothing: the hub is absent, and arrives from outside.
        assert!(pm
            .hub_properties(
                churner,
                usbpm::HubHandle {
                    id: hub,
                    presence: 2
                }
            )
            .is_err());
        let back = pm.hub_arrival(hub, vec![detached()]).unwrap();
        assert_eq!(back.handle().presence, 2);
        pm.deregister(churner).unwrap();
    });
}

#[test]
fn a_callback_reporting_on_every_change_is_refused_past_its_budget() {
    watchdog("a callback reporting back on every change", || {
        let pm = limited(0, 3);
        let results: Arc<Mutex<Vec<Result<(), Error>>>> = Arc::default();
        let port_cell: Arc<OnceLock<HubPort>> = Arc::default();
        let ctx = (results.clone(), port_cell.clone());
        let producer = pm
            .register(ClientConfig::new(ctx, |(results, port), _, n| {
                if let Event::ConnectorStateChange { state, .. } = &n.event {
                    let r = port.get().unwrap().connector_changed(
                        ConnectorId(0),
                        attached(state.partner_max_milliwatts + 1),
                    );
                    let refused = r.is_err();
                    results.lock().unwrap().push(r);
                    // A producer that stops only when refused.
                    assert!(refused || results.lock().unwrap().len() < 100);
                }
            }))
            .unwrap();
        port_cell
            .set(pm.hub_arrival(HubId(7), vec![detached()]).unwrap())
            .unwrap();
        let port = port_cell.get().unwrap();
        for round in 0..2 {
            // Each report from outside starts a chain the budget ends; the next call starts
            // with the budget whole again.
            port.connector_changed(ConnectorId(0), attached(1_000 * (round + 1)))
                .unwrap();
            let r = std::mem::take(&mut *results.lock().unwrap());
            assert_eq!(r.len(), 4, "{r:?}");
            assert!(r[..3].iter().all(Result::is_ok), "{r:?}");
            assert!(
                matches!(r[3], Err(Error::CallbackReportsSpent { budget: 3, .. })),
                "{r:?}"
            );
            assert_eq!(
                r[3].clone().unwrap_err().ntstatus(),
                NtStatus::INSUFFICIENT_RESOURCES
            );
        }
        pm.deregister(producer).unwrap();
    });
}

/// What every spawning client shares: the results of the registrations its callbacks made.
type Spawned = Arc<Mutex<Vec<Result<usbpm::ClientHandle, Error>>>>;

/// Registers one more spawning client on every hub event it receives: without a budget, a
/// chain without end (each new client hears every hub's arrival replayed).
fn spawner(spawned: &Spawned, pm: &PolicyManager, n: &usbpm::Notification) {
    if n.hub.is_none() {
        return;
    }
    let made = spawned.lock().unwrap().len();
    assert!(made < 100, "a chain without end");
    let r = pm.register(ClientConfig::new(spawned.clone(), spawner));
    spawned.lock().unwrap().push(r);
}

#[test]
fn a_callback_registering_on_every_event_is_refused_past_its_budget() {
    watchdog("a callback registering a client on every event", || {
        let pm = limited(0, 3);
        let spawned: Spawned = Arc::default();
        let first = pm
            .register(ClientConfig::new(spawned.clone(), spawner))
            .unwrap();
        // Kept until the end: a hub's removal is an event the spawners hear too.
        let mut ports = Vec::new();
        for hub in [7, 8] {
            // Each arrival from outside starts a chain without end (`spawner` fails the
            // test past 100 registrations) that the budget ends: the budget's
            // registrations go through, then every one is refused, even the second hub's
            // arrival replays to the clients greeted; the next call starts with the
            // budget whole again.
            ports.push(pm.hub_arrival(HubId(hub), vec![detached()]).unwrap());
            let r = std::mem::take(&mut *spawned.lock().unwrap());
            let registered: Vec<_> = r.iter().filter_map(|r| r.clone().ok()).collect();
            assert_eq!(registered.len(), 3, "{r:?}");
            let refused: Vec<_> = r.iter().filter_map(|r| r.clone().err()).collect();
            assert!(!refused.is_empty(), "{r:?}");
            for e in refused {
                assert_eq!(e, Error::CallbackRegistrationsSpent { budget: 3 });
                assert_eq!(e.ntstatus(), NtStatus::INSUFFICIENT_RESOURCES);
            }
            for h in registered {
                pm.deregister(h).unwrap();
            }
        }
        pm.deregister(first).unwrap();
        drop(ports);
    });
}

#[test]
fn a_register_outside_callbacks_is_one_budget_across_its_hubs_replays() {
    watchdog("a register whose client registers on every replay", || {
        let pm = limited(0, 3);
        let ports: Vec<_> = [7, 8]
            .map(|hub| pm.hub_arrival(HubId(hub), vec![detached()]).unwrap())
            .into();
        // The client's greeting replays hubs 7 and 8, each replay starting a chain: the
        // budget's registrations go through in all, not per hub replayed.
        let spawned: Spawned = Arc::default();
        let first = pm
            .register(ClientConfig::new(spawned.clone(), spawner))
            .unwrap();
        let r = std::mem::take(&mut *spawned.lock().unwrap());
        let registered: Vec<_> = r.iter().filter_map(|r| r.clone().ok()).collect();
        assert_eq!(registered.len(), 3, "{r:?}");
        assert!(r.iter().any(Result::is_err), "{r:?}");
        for h in registered {
            pm.deregister(h).unwrap();
        }
        pm.deregister(first).unwrap();
        drop(ports);
    });
}

/// A Policy Manager with every access, a queue capacity of `queue_capacity` and a budget
/// of `callback_reports` (0: the default), which it reports back.
fn limited(queue_capacity: usize, callback_reports: usize) -> PolicyManager {
    let default = usbpm::Limits::default();
    let limits = usbpm::Limits {
        queue_capacity: std::num::NonZeroUsize::new(queue_capacity)
            .unwrap_or(default.queue_capacity),
        callback_reports: std::num::NonZeroUsize::new(callback_reports)
            .unwrap_or(default.callback_reports),
    };
    let pm = PolicyManager::with_limits(usbpm::Access::ALL, limits);
    assert_eq!(pm.limits(), limits);
    pm
}

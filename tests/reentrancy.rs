//! Callbacks calling back into the Policy Manager: queries, power levels, registering
//! clients, reporting changes, and deregistering themselves or each other.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex, OnceLock};
use std::thread;

use common::*;
use usbpm::{
    ClientConfig, ClientHandle, ConnectorId, ConnectorInfo, Error, Event, HubId, HubInfo, HubPort,
    NtStatus, PolicyManager, PowerLevel, Registration,
};

#[test]
fn queries_from_inside_a_callback_see_the_delivered_state() {
    watchdog(
        "queries from a callback",
        body_of_queries_from_inside_a_callback,
    );
}

fn body_of_queries_from_inside_a_callback() {
    #[derive(Default)]
    struct Seen {
        hubs: Mutex<Vec<(HubInfo, HubInfo)>>,
        connectors: Mutex<Vec<(ConnectorInfo, usbpm::ConnectorState)>>,
    }
    let pm = PolicyManager::new();
    let seen = Arc::new(Seen::default());
    let h = pm
        .register(ClientConfig::with_handle(
            seen.clone(),
            |seen, pm, me, n| match &n.event {
                Event::HubArrival(info) => {
                    let queried = pm
                        .hub_properties(me, n.hub.unwrap())
                        .expect("hub_properties from a callback");
                    seen.hubs.lock().unwrap().push((info.clone(), queried));
                }
                Event::ConnectorStateChange { state, .. } => {
                    let queried = pm
                        .connector_state(me, n.connector_handle().unwrap())
                        .expect("connector_state from a callback");
                    seen.connectors
                        .lock()
                        .unwrap()
                        .push((queried, state.clone()));
                }
                _ => {}
            },
        ))
        .unwrap();
    let hub = HubId(1);
    let port = pm.hub_arrival(hub, vec![detached(), sourcing(3)]).unwrap();
    port.connector_changed(ConnectorId(1), attached(10))
        .unwrap();
    port.connector_changed(ConnectorId(0), attached(20))
        .unwrap();

    let hubs = seen.hubs.lock().unwrap().clone();
    assert_eq!(hubs.len(), 1);
    assert_eq!(
        hubs[0].0, hubs[0].1,
        "the arrival's info is the hub's state"
    );
    let connectors = seen.connectors.lock().unwrap().clone();
    assert_eq!(connectors.len(), 2);
    for (queried, delivered) in &connectors {
        assert_eq!(&queried.state, delivered);
    }
    assert_eq!(connectors[0].0.connector, ConnectorId(1));
    assert_eq!(connectors[1].0.connector, ConnectorId(0));
    assert_eq!(pm.deregister(h), Ok(()));
}

#[test]
fn power_level_assigned_from_a_callback_is_visible_to_later_queries_and_arrivals() {
    watchdog(
        "power_level_assigned_from_a_callback_is_visible_to_later_queries_and_arrivals",
        body_of_power_level_assigned_from_a_callback_is_visible_to_later_queries_and_arrivals,
    );
}

fn body_of_power_level_assigned_from_a_callback_is_visible_to_later_queries_and_arrivals() {
    let pm = PolicyManager::new();
    let results: Arc<Mutex<Vec<Result<(), Error>>>> = Arc::default();
    let h = pm
        .register(ClientConfig::with_handle(
            results.clone(),
            |results, pm, me, n| {
                let Event::ConnectorStateChange { state, .. } = &n.event else {
                    return;
                };
                let c = n.connector_handle().unwrap();
                // Once per partner: the accepted level comes back as a change too.
                let assigned = pm.connector_state(me, c).unwrap().assigned_power;
                if state.attached && assigned.is_none() {
                    let level = PowerLevel {
                        milliwatts: state.partner_max_milliwatts / 2,
                    };
                    results
                        .lock()
                        .unwrap()
                        .push(pm.assign_power_level(me, c, level));
                    // And a refused one, from the same callback.
                    let bad = usbpm::ConnectorHandle {
                        connector: ConnectorId(9),
                        ..c
                    };
                    results
                        .lock()
                        .unwrap()
                        .push(pm.assign_power_level(me, bad, level));
                }
            },
        ))
        .unwrap();
    let hub = HubId(2);
    let port = pm.hub_arrival(hub, vec![detached(), detached()]).unwrap();
    port.connector_changed(ConnectorId(1), attached(60_000))
        .unwrap();

    assert_eq!(
        *results.lock().unwrap(),
        vec![Ok(()), Err(Error::UnknownConnector(hub, ConnectorId(9)))]
    );
    // The hardware takes the one request passed on, and accepts it.
    let requests = port.power_requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].client, h);
    assert_eq!(requests[0].connector, connector(port.handle(), 1));
    assert_eq!(requests[0].level, PowerLevel { milliwatts: 30_000 });
    assert_eq!(port.answer(requests[0].clone(), true), Ok(true));
    assert_eq!(results.lock().unwrap().len(), 2, "assigned once");

    let c1 = pm.connector_state(h, connector(port.handle(), 1)).unwrap();
    assert_eq!(c1.assigned_power, Some(PowerLevel { milliwatts: 30_000 }));
    assert_eq!(
        pm.connector_state(h, connector(port.handle(), 0))
            .unwrap()
            .assigned_power,
        None
    );

    let late = new_log();
    let late_h = pm.register(recorder(&late)).unwrap();
    let events = snapshot(&late);
    let Event::HubArrival(info) = &events[0].event else {
        panic!("{events:?}")
    };
    assert_eq!(
        info.connectors[1].assigned_power,
        Some(PowerLevel { milliwatts: 30_000 })
    );
    assert_eq!(pm.deregister(h), Ok(()));
    assert_eq!(pm.deregister(late_h), Ok(()));
}

#[test]
fn client_registered_from_inside_a_callback_gets_arrivals_for_every_hub() {
    watchdog(
        "client_registered_from_inside_a_callback_gets_arrivals_for_every_hub",
        body_of_client_registered_from_inside_a_callback_gets_arrivals_for_every_hub,
    );
}

fn body_of_client_registered_from_inside_a_callback_gets_arrivals_for_every_hub() {
    struct Ctx {
        registered: Mutex<Option<ClientHandle>>,
        new_log: Log,
    }
    let pm = PolicyManager::new();
    let (h1, h2) = (HubId(1), HubId(2));
    let p1 = pm.hub_arrival(h1, vec![detached(), detached()]).unwrap();
    let p2 = pm.hub_arrival(h2, vec![detached()]).unwrap();
    p2.connector_changed(ConnectorId(0), sourcing(5)).unwrap();

    let ctx = Arc::new(Ctx {
        registered: Mutex::new(None),
        new_log: new_log(),
    });
    let a = pm
        .register(ClientConfig::new(ctx.clone(), |ctx, pm, n| {
            if n.hub_id() == Some(HubId(1)) && is_change(n) {
                let mut registered = ctx.registered.lock().unwrap();
                if registered.is_none() {
                    *registered = Some(
                        pm.register(recorder(&ctx.new_log))
                            .expect("register from a callback"),
                    );
                }
            }
        }))
        .unwrap();
    p1.connector_changed(ConnectorId(0), attached(3_000))
        .unwrap(); // h1 seq 1
    let new = ctx
        .registered
        .lock()
        .unwrap()
        .expect("the callback registered a client");
    assert_eq!(pm.client_count(), 2);

    p1.connector_changed(ConnectorId(1), attached(100)).unwrap(); // h1 seq 2
    p2.connector_changed(ConnectorId(0), detached()).unwrap(); // h2 seq 2
    let events = snapshot(&ctx.new_log);
    check_per_hub(&events).unwrap();
    assert_eq!(
        about(&events, h1),
        vec![
            arrival(h1, 1, hub_info(h1, &[attached(3_000), detached()])),
            change(h1, 2, 1, attached(100)),
        ]
    );
    assert_eq!(
        about(&events, h2),
        vec![
            arrival(h2, 1, hub_info(h2, &[sourcing(5)])),
            change(h2, 2, 0, detached())
        ]
    );
    assert_eq!(pm.deregister(new), Ok(()));
    assert_eq!(pm.deregister(a), Ok(()));
}

/// A change reported from inside a callback of the same hub is queued behind the event
/// being delivered, not delivered nested inside it.
#[test]
fn change_reported_from_inside_a_callback_is_delivered_after_it() {
    watchdog(
        "change_reported_from_inside_a_callback_is_delivered_after_it",
        body_of_change_reported_from_inside_a_callback_is_delivered_after_it,
    );
}

fn body_of_change_reported_from_inside_a_callback_is_delivered_after_it() {
    struct Ctx {
        port: OnceLock<Arc<HubPort>>,
        trace: Mutex<Vec<(&'static str, u64)>>,
    }
    let pm = PolicyManager::new();
    let ctx = Arc::new(Ctx {
        port: OnceLock::new(),
        trace: Mutex::default(),
    });
    let h = pm
        .register(ClientConfig::new(ctx.clone(), |ctx, _pm, n| {
            if n.is_manager_event() {
                return;
            }
            ctx.trace.lock().unwrap().push(("begin", n.seq));
            if n.seq == 1 {
                let port = ctx.port.get().unwrap();
                port.connector_changed(ConnectorId(0), attached(2))
                    .expect("change from a callback");
            }
            ctx.trace.lock().unwrap().push(("end", n.seq));
        }))
        .unwrap();
    let port = Arc::new(pm.hub_arrival(HubId(1), vec![detached()]).unwrap());
    ctx.port.set(port.clone()).unwrap();
    port.connector_changed(ConnectorId(0), attached(1)).unwrap();
    assert_eq!(
        *ctx.trace.lock().unwrap(),
        vec![
            ("begin", 0),
            ("end", 0),
            ("begin", 1),
            ("end", 1),
            ("begin", 2),
            ("end", 2)
        ]
    );
    assert_eq!(
        pm.connector_state(h, connector(port.handle(), 0))
            .unwrap()
            .state,
        attached(2)
    );
    assert_eq!(pm.deregister(h), Ok(()));
}

#[test]
fn deregistering_another_client_from_a_callback_succeeds_and_silences_it() {
    watchdog(
        "deregistering_another_client_from_a_callback_succeeds_and_silences_it",
        body_of_deregistering_another_client_from_a_callback_succeeds_and_silences_it,
    );
}

fn body_of_deregistering_another_client_from_a_callback_succeeds_and_silences_it() {
    struct Ctx {
        victim: OnceLock<ClientHandle>,
        victim_log: Log,
        /// (result, events the victim had received when deregister returned)
        outcome: Mutex<Option<(Result<(), Error>, usize)>>,
    }
    let pm = PolicyManager::new();
    let ctx = Arc::new(Ctx {
        victim: OnceLock::new(),
        victim_log: new_log(),
        outcome: Mutex::new(None),
    });
    let killer = pm
        .register(ClientConfig::new(ctx.clone(), |ctx, pm, n| {
            if n.seq == 1 && is_change(n) {
                let r = pm.deregister(*ctx.victim.get().unwrap());
                *ctx.outcome.lock().unwrap() = Some((r, len(&ctx.victim_log)));
            }
        }))
        .unwrap();
    let victim = pm.register(recorder(&ctx.victim_log)).unwrap();
    ctx.victim.set(victim).unwrap();

    let hub = HubId(1);
    let port = pm.hub_arrival(hub, vec![detached()]).unwrap();
    port.connector_changed(ConnectorId(0), attached(1)).unwrap();
    let (result, seen_at_return) = ctx
        .outcome
        .lock()
        .unwrap()
        .take()
        .expect("the callback ran");
    assert_eq!(result, Ok(()));
    assert_eq!(pm.client_count(), 1);

    port.connector_changed(ConnectorId(0), attached(2)).unwrap();
    port.remove();
    let events = snapshot(&ctx.victim_log);
    assert_eq!(
        events.len(),
        seen_at_return,
        "the victim's callback ran after its deregister returned"
    );
    assert!(events.iter().all(|n| n.seq <= 1), "{events:?}");
    assert_eq!(pm.deregister(victim), Err(Error::StaleHandle(victim)));
    assert_eq!(pm.deregister(killer), Ok(()));
}

#[test]
fn deregister_from_own_callback_is_refused_and_the_client_stays_registered() {
    struct Ctx {
        me: OnceLock<ClientHandle>,
        results: Mutex<Vec<Result<(), Error>>>,
        log: Log,
    }
    watchdog("deregister from own callback", || {
        let pm = PolicyManager::new();
        let ctx = Arc::new(Ctx {
            me: OnceLock::new(),
            results: Mutex::default(),
            log: new_log(),
        });
        let h = pm
            .register(ClientConfig::new(ctx.clone(), |ctx, pm, n| {
                ctx.log.lock().unwrap().push(n.clone());
                if n.seq == 1 {
                    ctx.results
                        .lock()
                        .unwrap()
                        .push(pm.deregister(*ctx.me.get().unwrap()));
                }
            }))
            .unwrap();
        ctx.me.set(h).unwrap();
        let hub = HubId(1);
        let port = pm.hub_arrival(hub, vec![detached()]).unwrap();
        port.connector_changed(ConnectorId(0), attached(1)).unwrap();

        let results = ctx.results.lock().unwrap().clone();
        assert_eq!(results, vec![Err(Error::DeregisterFromOwnCallback(h))]);
        assert_eq!(
            results[0].as_ref().unwrap_err().ntstatus(),
            NtStatus::POSSIBLE_DEADLOCK
        );
        assert_eq!(
            pm.client_count(),
            1,
            "the refusal left the client registered"
        );

        port.connector_changed(ConnectorId(0), attached(2)).unwrap();
        assert_eq!(
            snapshot(&ctx.log).last(),
            Some(&change(hub, 2, 0, attached(2))),
            "still receives events"
        );

        assert_eq!(
            pm.deregister(h),
            Ok(()),
            "deregister from outside works afterwards"
        );
        port.connector_changed(ConnectorId(0), attached(3)).unwrap();
        assert_eq!(len(&ctx.log), 3);
    });
}

/// A client registered from inside a callback gets its arrival replay after that callback
/// returns: appends made inside a callback are owed by the thread's outermost call, so
/// callbacks never nest. The new client's callback can therefore deregister the client
/// whose callback registered it: that callback has returned, and the deregister waits for
/// nothing.
#[test]
fn a_client_registered_inside_a_callback_is_replayed_after_that_callback_returns() {
    struct Ctx {
        outer: OnceLock<ClientHandle>,
        result: Mutex<Option<Result<(), Error>>>,
        inner: Mutex<Option<ClientHandle>>,
    }
    watchdog("nested deregister", || {
        let pm = PolicyManager::new();
        let (h1, h2) = (HubId(1), HubId(2));
        let p1 = pm.hub_arrival(h1, vec![detached()]).unwrap();
        let _p2 = pm.hub_arrival(h2, vec![detached()]).unwrap();
        let ctx = Arc::new(Ctx {
            outer: OnceLock::new(),
            result: Mutex::new(None),
            inner: Mutex::new(None),
        });
        let outer = pm
            .register(ClientConfig::new(ctx.clone(), |ctx, pm, n| {
                if n.hub_id() == Some(HubId(1)) && is_change(n) {
                    // The inner client's hub 2 arrival is owed by this thread: delivered
                    // once this callback has returned, before connector_changed returns.
                    let inner = pm.register(ClientConfig::new(ctx.clone(), |ctx, pm, n| {
                        if n.hub_id() == Some(HubId(2)) {
                            *ctx.result.lock().unwrap() =
                                Some(pm.deregister(*ctx.outer.get().unwrap()));
                        }
                    }));
                    let inner = inner.expect("register from a callback");
                    *ctx.inner.lock().unwrap() = Some(inner);
                }
            }))
            .unwrap();
        ctx.outer.set(outer).unwrap();
        p1.connector_changed(ConnectorId(0), attached(1)).unwrap();

        let result = ctx
            .result
            .lock()
            .unwrap()
            .take()
            .expect("the inner callback ran");
        assert_eq!(result, Ok(()), "the outer callback had returned");
        assert_eq!(pm.client_count(), 1);
        let inner = ctx.inner.lock().unwrap().unwrap();
        assert_eq!(pm.deregister(outer), Err(Error::StaleHandle(outer)));
        assert_eq!(pm.deregister(inner), Ok(()));
    });
}

/// Client i's callback, on a change of hub i, waits until every client is inside such a
/// callback (one per hub thread, each first in its hub's list) and then deregisters
/// client i+1 (mod n): a cycle of
/// deregisters from inside callbacks. No call may hang; at least one must be refused
/// (they cannot all wait for each other) and at least one must succeed.
fn deregister_cycle(n: usize) {
    struct Ctx {
        trigger: HubId,
        target: OnceLock<ClientHandle>,
        barrier: Arc<Barrier>,
        fired: AtomicBool,
        result: Mutex<Option<Result<(), Error>>>,
        log: Log,
    }
    let pm = PolicyManager::new();
    let barrier = Arc::new(Barrier::new(n));
    let ctxs: Vec<Arc<Ctx>> = (0..n)
        .map(|i| {
            Arc::new(Ctx {
                trigger: HubId(i as u32 + 1),
                target: OnceLock::new(),
                barrier: barrier.clone(),
                fired: AtomicBool::new(false),
                result: Mutex::new(None),
                log: new_log(),
            })
        })
        .collect();
    // One call of a client at a time: hub i's thread reaches client i's callback while the
    // other hubs' threads are inside theirs only if client i comes before every other
    // triggered client in hub i's list. A hub's arrival lists the registered clients in
    // slot order and later registrations are appended, so client i takes slot i (freed by
    // a placeholder) just before hub i arrives, from the last hub down to the first.
    let placeholders: Vec<ClientHandle> = (0..n)
        .map(|_| pm.register(ClientConfig::new((), |_, _, _| {})).unwrap())
        .collect();
    let mut handles = vec![None; n];
    let mut ports: Vec<Option<HubPort>> = (0..n).map(|_| None).collect();
    for i in (0..n).rev() {
        pm.deregister(placeholders[i]).unwrap();
        let h = pm
            .register(ClientConfig::new(ctxs[i].clone(), |ctx, pm, n| {
                ctx.log.lock().unwrap().push(n.clone());
                if n.hub_id() == Some(ctx.trigger)
                    && is_change(n)
                    && !ctx.fired.swap(true, Ordering::SeqCst)
                {
                    ctx.barrier.wait();
                    let r = pm.deregister(*ctx.target.get().unwrap());
                    *ctx.result.lock().unwrap() = Some(r);
                }
            }))
            .unwrap();
        handles[i] = Some(h);
        ports[i] = Some(
            pm.hub_arrival(HubId(i as u32 + 1), vec![detached()])
                .unwrap(),
        );
    }
    let handles: Vec<ClientHandle> = handles.into_iter().map(Option::unwrap).collect();
    let ports: Vec<HubPort> = ports.into_iter().map(Option::unwrap).collect();
    for i in 0..n {
        ctxs[i].target.set(handles[(i + 1) % n]).unwrap();
    }

    thread::scope(|s| {
        for port in &ports {
            s.spawn(move || port.connector_changed(ConnectorId(0), attached(1)).unwrap());
        }
    });

    let results: Vec<Result<(), Error>> = ctxs
        .iter()
        .map(|c| {
            c.result
                .lock()
                .unwrap()
                .take()
                .expect("every trigger fired")
        })
        .collect();
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert!(ok >= 1, "no deregister in the cycle succeeded: {results:?}");
    assert!(ok < n, "every deregister in the cycle succeeded, so one returned before its target's callback did: {results:?}");
    for (i, r) in results.iter().enumerate() {
        if let Err(e) = r {
            assert_eq!(
                e,
                &Error::WouldDeadlock {
                    target: handles[(i + 1) % n],
                    holding: vec![handles[i]]
                },
                "refusal of client {i}'s deregister"
            );
            assert_eq!(e.ntstatus(), NtStatus::POSSIBLE_DEADLOCK);
        }
    }

    // Client j is deregistered iff the deregister aimed at it succeeded.
    let alive: Vec<bool> = (0..n).map(|j| results[(j + n - 1) % n].is_err()).collect();
    assert_eq!(pm.client_count(), alive.iter().filter(|a| **a).count());
    let before: Vec<usize> = ctxs.iter().map(|c| len(&c.log)).collect();
    ports[0]
        .connector_changed(ConnectorId(0), detached())
        .unwrap();
    for j in 0..n {
        if alive[j] {
            assert_eq!(
                snapshot(&ctxs[j].log).last(),
                Some(&change(HubId(1), 2, 0, detached())),
                "refused target {j} still receives events"
            );
            assert_eq!(
                pm.deregister(handles[j]),
                Ok(()),
                "refused target {j} can be deregistered later"
            );
        } else {
            assert_eq!(
                len(&ctxs[j].log),
                before[j],
                "deregistered client {j} still receives events"
            );
            assert_eq!(
                pm.deregister(handles[j]),
                Err(Error::StaleHandle(handles[j]))
            );
        }
    }
    assert_eq!(pm.client_count(), 0);
}

#[test]
fn two_clients_deregistering_each_other_from_two_hub_threads_do_not_deadlock() {
    watchdog("mutual deregister", || {
        for _ in 0..20 {
            deregister_cycle(2);
        }
    });
}

#[test]
fn three_clients_deregistering_in_a_cycle_do_not_deadlock() {
    watchdog("three-way deregister cycle", || {
        for _ in 0..10 {
            deregister_cycle(3);
        }
    });
}

#[test]
fn dropping_a_registration_inside_its_own_callback_deregisters_without_hanging() {
    struct Ctx {
        reg: Mutex<Option<Registration>>,
        dropped: AtomicBool,
        log: Log,
    }
    watchdog("registration dropped in its own callback", || {
        let pm = PolicyManager::new();
        let hub = HubId(1);
        let port = pm.hub_arrival(hub, vec![detached()]).unwrap();
        let ctx = Arc::new(Ctx {
            reg: Mutex::new(None),
            dropped: AtomicBool::new(false),
            log: new_log(),
        });
        let reg = pm
            .register_owned(ClientConfig::new(ctx.clone(), |ctx, _pm, n| {
                assert!(
                    !ctx.dropped.load(Ordering::SeqCst),
                    "callback after its registration was dropped"
                );
                ctx.log.lock().unwrap().push(n.clone());
                if n.seq == 1 {
                    let reg = ctx.reg.lock().unwrap().take();
                    drop(reg);
                    ctx.dropped.store(true, Ordering::SeqCst);
                }
            }))
            .unwrap();
        let h = reg.handle();
        *ctx.reg.lock().unwrap() = Some(reg);

        port.connector_changed(ConnectorId(0), attached(1)).unwrap();
        assert!(ctx.dropped.load(Ordering::SeqCst));
        assert_eq!(pm.client_count(), 0);
        assert_eq!(pm.deregister(h), Err(Error::StaleHandle(h)));

        port.connector_changed(ConnectorId(0), attached(2)).unwrap();
        port.remove();
        assert_eq!(
            snapshot(&ctx.log),
            vec![
                arrival(hub, 0, hub_info(hub, &[detached()])),
                change(hub, 1, 0, attached(1))
            ],
            "nothing after the drop"
        );
        assert_eq!(
            pm.panicked_callbacks(),
            0,
            "the callback's own assertion never fired"
        );
    });
}

#[test]
fn registration_deregister_inside_its_own_callback_hands_the_registration_back() {
    struct Ctx {
        reg: Mutex<Option<Registration>>,
        errors: Mutex<Vec<Error>>,
    }
    watchdog("Registration::deregister in its own callback", || {
        let pm = PolicyManager::new();
        let port = pm.hub_arrival(HubId(1), vec![detached()]).unwrap();
        let ctx = Arc::new(Ctx {
            reg: Mutex::new(None),
            errors: Mutex::default(),
        });
        let log = new_log();
        let log2 = log.clone();
        let reg = pm
            .register_owned(ClientConfig::new(ctx.clone(), move |ctx, _pm, n| {
                log2.lock().unwrap().push(n.clone());
                if n.seq == 1 {
                    let reg = ctx.reg.lock().unwrap().take().unwrap();
                    match reg.deregister() {
                        Ok(()) => panic!("deregistered from its own callback"),
                        Err((e, reg)) => {
                            ctx.errors.lock().unwrap().push(e);
                            *ctx.reg.lock().unwrap() = Some(reg);
                        }
                    }
                }
            }))
            .unwrap();
        let h = reg.handle();
        *ctx.reg.lock().unwrap() = Some(reg);
        port.connector_changed(ConnectorId(0), attached(1)).unwrap();
        assert_eq!(
            *ctx.errors.lock().unwrap(),
            vec![Error::DeregisterFromOwnCallback(h)]
        );
        assert_eq!(pm.client_count(), 1);

        port.connector_changed(ConnectorId(0), attached(2)).unwrap();
        assert_eq!(len(&log), 3, "still registered, still receiving");
        let reg = ctx.reg.lock().unwrap().take().unwrap();
        assert!(reg.deregister().is_ok(), "deregister from outside succeeds");
        port.connector_changed(ConnectorId(0), attached(3)).unwrap();
        assert_eq!(len(&log), 3);
        assert_eq!(pm.panicked_callbacks(), 0);
    });
}

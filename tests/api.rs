//! The basic client protocol: register, the events a client receives and their order,
//! hub removal, deregister, and the `Registration` guard.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use common::*;
use usbpm::{
    Access, ClientConfig, ClientHandle, ConnectorId, Error, Event, HubId, PolicyManager, PowerLevel,
};

fn silent() -> ClientConfig {
    ClientConfig::new((), |_, _, _| {})
}

#[test]
fn register_and_deregister_track_the_client_count() {
    let pm = PolicyManager::new();
    assert_eq!(pm.client_count(), 0);
    let a = pm.register(silent()).unwrap();
    let b = pm.register(silent()).unwrap();
    assert_ne!(a, b);
    assert_eq!(pm.client_count(), 2);
    assert_eq!(ClientHandle::from_raw(a.into_raw()), a, "raw round trip");

    assert_eq!(pm.deregister(a), Ok(()));
    assert_eq!(pm.client_count(), 1);
    assert_eq!(pm.deregister(b), Ok(()));
    assert_eq!(pm.client_count(), 0);
}

#[test]
fn clones_of_a_policy_manager_are_the_same_manager() {
    let pm = PolicyManager::new();
    let other = pm.clone();
    let h = other.register(silent()).unwrap();
    assert_eq!(pm.client_count(), 1);
    let port = pm.hub_arrival(HubId(1), vec![detached()]).unwrap();
    assert!(pm.hub_properties(h, port.handle()).is_ok());
    assert!(other.hub_properties(h, port.handle()).is_ok());
    assert_eq!(pm.deregister(h), Ok(()));
    assert_eq!(other.client_count(), 0);
}

#[test]
fn client_registered_before_a_hub_sees_its_whole_history_in_order() {
    let pm = PolicyManager::new();
    let log = new_log();
    let h = pm.register(recorder(&log)).unwrap();
    assert_eq!(
        snapshot_all(&log),
        [pm_arrival(Access::ALL)],
        "no hub yet, so only the Policy Manager's arrival"
    );

    let hub = HubId(7);
    let initial = vec![detached(), sourcing(15_000)];
    let port = pm.hub_arrival(hub, initial.clone()).unwrap();
    assert_eq!(port.id(), hub);
    port.connector_changed(ConnectorId(0), attached(27_000))
        .unwrap();
    port.connector_changed(ConnectorId(1), detached()).unwrap();
    port.connector_changed(ConnectorId(0), detached()).unwrap();
    port.remove();

    assert_eq!(
        snapshot(&log),
        vec![
            arrival(hub, 0, hub_info(hub, &initial)),
            change(hub, 1, 0, attached(27_000)),
            change(hub, 2, 1, detached()),
            change(hub, 3, 0, detached()),
            removal(hub, 4),
        ]
    );
    assert_eq!(pm.deregister(h), Ok(()));
}

#[test]
fn late_client_first_gets_an_arrival_with_the_hubs_current_state_and_seq() {
    let pm = PolicyManager::new();
    let driver = pm.register(ClientConfig::new((), |_, _, _| {})).unwrap();
    let hub = HubId(3);
    let port = pm.hub_arrival(hub, vec![detached(), detached()]).unwrap();
    port.connector_changed(ConnectorId(0), attached(5_000))
        .unwrap();
    port.connector_changed(ConnectorId(1), sourcing(7_500))
        .unwrap();
    port.connector_changed(ConnectorId(0), attached(9_000))
        .unwrap();
    let level = PowerLevel { milliwatts: 4_500 };
    pm.assign_power_level(driver, connector(port.handle(), 0), level)
        .unwrap();
    let [request] = port.power_requests().try_into().unwrap();
    assert_eq!(port.answer(request, true), Ok(true), "seq 4");

    let mut current = hub_info(hub, &[attached(9_000), sourcing(7_500)]);
    current.connectors[0].assigned_power = Some(level);
    assert_eq!(pm.hub_properties(driver, port.handle()).unwrap(), current);

    let log = new_log();
    let h = pm.register(recorder(&log)).unwrap();
    port.connector_changed(ConnectorId(1), detached()).unwrap();
    port.remove();

    assert_eq!(
        snapshot(&log),
        vec![
            arrival(hub, 4, current),
            change(hub, 5, 1, detached()),
            removal(hub, 6)
        ],
        "arrival with the seq of the last change folded in, then consecutive seqs"
    );
    assert_eq!(pm.deregister(h), Ok(()));
    assert_eq!(pm.deregister(driver), Ok(()));
}

#[test]
fn late_client_gets_exactly_one_arrival_per_present_hub() {
    let pm = PolicyManager::new();
    let (h1, h2, h3) = (HubId(1), HubId(2), HubId(3));
    let p1 = pm.hub_arrival(h1, vec![detached()]).unwrap();
    let p2 = pm.hub_arrival(h2, vec![detached(), detached()]).unwrap();
    let p3 = pm.hub_arrival(h3, vec![detached()]).unwrap();
    p2.connector_changed(ConnectorId(1), attached(100)).unwrap();
    p2.connector_changed(ConnectorId(0), sourcing(200)).unwrap();
    p3.remove();

    let log = new_log();
    let h = pm.register(recorder(&log)).unwrap();
    let mut arrivals = snapshot(&log);
    arrivals.sort_by_key(|n| n.hub);
    assert_eq!(
        arrivals,
        vec![
            arrival(h1, 0, hub_info(h1, &[detached()])),
            arrival(h2, 2, hub_info(h2, &[sourcing(200), attached(100)])),
        ],
        "one arrival for each present hub, none for the removed one"
    );

    p1.connector_changed(ConnectorId(0), attached(1)).unwrap();
    p2.connector_changed(ConnectorId(0), detached()).unwrap();
    drop(p1);
    drop(p2);
    let events = snapshot(&log);
    check_per_hub(&events).unwrap();
    assert_eq!(
        about(&events, h1)[1..],
        [change(h1, 1, 0, attached(1)), removal(h1, 2)]
    );
    assert_eq!(
        about(&events, h2)[1..],
        [change(h2, 3, 0, detached()), removal(h2, 4)]
    );
    assert!(about(&events, h3).is_empty());
    assert_eq!(pm.deregister(h), Ok(()));
}

#[test]
fn removed_hub_sends_nothing_more_and_its_id_can_arrive_again() {
    let pm = PolicyManager::new();
    let hub = HubId(9);
    let log = new_log();
    let h = pm.register(recorder(&log)).unwrap();
    let port = pm.hub_arrival(hub, vec![detached()]).unwrap();
    let old = port.handle();
    assert_eq!(old, presence(hub, 1));
    port.connector_changed(ConnectorId(0), attached(1_000))
        .unwrap();
    port.remove();
    assert_eq!(snapshot(&log).last(), Some(&removal(hub, 2)));
    assert_eq!(
        pm.hub_properties(h, old),
        Err(Error::StaleHubHandle(old)),
        "its removal was delivered"
    );

    // A client registering now hears nothing about the removed hub.
    let late = new_log();
    let late_h = pm.register(recorder(&late)).unwrap();
    assert!(snapshot(&late).is_empty());

    // The same id may arrive again once the removal has been delivered: a new history.
    let port = pm.hub_arrival(hub, vec![attached(5)]).unwrap();
    assert_eq!(port.handle(), presence(hub, 2), "a new presence");
    let fresh = arrival(port.handle(), 0, hub_info(hub, &[attached(5)]));
    assert_eq!(snapshot(&log).last(), Some(&fresh));
    assert_eq!(
        len(&log),
        4,
        "arrival, change, removal, then the new arrival"
    );
    assert_eq!(snapshot(&late), vec![fresh]);
    assert_eq!(pm.hub_properties(h, old), Err(Error::StaleHubHandle(old)));
    assert_eq!(
        pm.hub_properties(h, port.handle()),
        Ok(hub_info(hub, &[attached(5)]))
    );
    drop(port);
    assert_eq!(pm.deregister(h), Ok(()));
    assert_eq!(pm.deregister(late_h), Ok(()));
}

#[test]
fn dropping_the_hub_port_removes_the_hub() {
    let pm = PolicyManager::new();
    let hub = HubId(4);
    let log = new_log();
    let h = pm.register(recorder(&log)).unwrap();
    let handle = {
        let port = pm.hub_arrival(hub, vec![detached(), detached()]).unwrap();
        port.connector_changed(ConnectorId(1), attached(3)).unwrap();
        assert!(pm.hub_properties(h, port.handle()).is_ok());
        port.handle()
    };
    assert_eq!(
        snapshot(&log),
        vec![
            arrival(hub, 0, hub_info(hub, &[detached(), detached()])),
            change(hub, 1, 1, attached(3)),
            removal(hub, 2),
        ]
    );
    assert_eq!(
        pm.hub_properties(h, handle),
        Err(Error::StaleHubHandle(handle))
    );
    assert!(pm.hub_arrival(hub, vec![]).is_ok(), "the id is free again");
    assert_eq!(pm.deregister(h), Ok(()));
}

/// While another thread is delivering a hub's events, the changes and the removal
/// reported through its port are queued behind (the calls return at once) and reach every
/// client in the order reported, the removal last.
#[test]
fn changes_and_removal_reported_during_delivery_queue_up_in_order() {
    watchdog("changes queued behind a blocked drainer", || {
        let pm = PolicyManager::new();
        let hub = HubId(1);
        let log = new_log();
        let early = pm.register(recorder(&log)).unwrap();
        let port = pm.hub_arrival(hub, vec![detached()]).unwrap();
        let handle = port.handle();

        // A client whose replayed arrival blocks: the registering thread becomes the
        // hub's drainer and stays inside that callback until released.
        let (gate, control) = gate();
        let late_log = new_log();
        let late_cfg = ClientConfig::new((gate, late_log.clone()), |(gate, log), _, n| {
            log.lock().unwrap().push(n.clone());
            if matches!(n.event, Event::HubArrival(_)) {
                gate.block();
            }
        });
        let (late, changed, queried, delivered_meanwhile) = thread::scope(|s| {
            let pm = &pm;
            let registering = s.spawn(move || pm.register(late_cfg).unwrap());
            control.wait_entered();
            // Another thread reports while the hub's drainer is blocked: each report
            // queues behind the blocked delivery and returns once it is delivered.
            let early_log = log.clone();
            let reporting = s.spawn(move || {
                let changed: Vec<_> = (1..=3)
                    .map(|k| {
                        let r = port.connector_changed(ConnectorId(0), attached(k));
                        let delivered = snapshot(&early_log).contains(&change(
                            hub,
                            u64::from(k),
                            0,
                            attached(k),
                        ));
                        (r, delivered)
                    })
                    .collect();
                port.remove();
                (changed, pm.hub_properties(early, handle))
            });
            // The first change is folded into the hub's state as it is queued.
            while pm
                .connector_state(early, connector(handle, 0))
                .map(|c| c.state)
                != Ok(attached(1))
            {
                thread::yield_now();
            }
            let delivered_meanwhile = len(&log);
            control.release(); // before asserting, so that a failure cannot strand the drainer
            let (changed, queried) = reporting.join().unwrap();
            (
                registering.join().unwrap(),
                changed,
                queried,
                delivered_meanwhile,
            )
        });
        assert_eq!(
            changed,
            vec![(Ok(()), true), (Ok(()), true), (Ok(()), true)],
            "each report returns once its change reached the clients"
        );
        assert_eq!(
            queried,
            Err(Error::StaleHubHandle(handle)),
            "stale as soon as remove returns (its removal is delivered)"
        );
        assert_eq!(
            delivered_meanwhile, 1,
            "the drainer was blocked, so only the arrival had been delivered"
        );

        let expected = vec![
            arrival(hub, 0, hub_info(hub, &[detached()])),
            change(hub, 1, 0, attached(1)),
            change(hub, 2, 0, attached(2)),
            change(hub, 3, 0, attached(3)),
            removal(hub, 4),
        ];
        assert_eq!(snapshot(&log), expected, "the early client");
        assert_eq!(
            snapshot(&late_log),
            expected,
            "the late client (arrival replayed at seq 0)"
        );
        assert_eq!(pm.deregister(early), Ok(()));
        assert_eq!(pm.deregister(late), Ok(()));
    });
}

/// The same hub id arrives again while another thread is still delivering the previous
/// presence's last change and removal: each client sees the old presence end (removal)
/// before the new arrival, never the new arrival in between.
#[test]
fn hub_id_arriving_again_before_the_old_removal_is_delivered_waits_its_turn() {
    watchdog("hub id re-arrival during delivery", || {
        let pm = PolicyManager::new();
        let hub = HubId(1);
        let log = new_log();
        let observer = pm.register(recorder(&log)).unwrap();
        let port = pm.hub_arrival(hub, vec![detached()]).unwrap();
        let old_handle = port.handle();

        // The registering thread becomes the hub's drainer, blocked in a callback.
        let (gate, control) = gate();
        let blocker_log = new_log();
        let blocker = ClientConfig::new(
            (gate, AtomicBool::new(false), blocker_log.clone()),
            |(gate, once, log), _, n| {
                log.lock().unwrap().push(n.clone());
                if matches!(n.event, Event::HubArrival(_)) && !once.swap(true, Ordering::SeqCst) {
                    gate.block();
                }
            },
        );
        let (blocker_h, port2, delivered_meanwhile) = thread::scope(|s| {
            let pm = &pm;
            let registering = s.spawn(move || pm.register(blocker).unwrap());
            control.wait_entered();
            // Another thread ends the old presence and brings the hub back while the
            // drainer is blocked: each call waits for its own item's turn.
            let reporting = s.spawn(move || {
                port.connector_changed(ConnectorId(0), attached(1)).unwrap(); // old seq 1
                port.remove(); // old seq 2
                pm.hub_arrival(hub, vec![sourcing(5)])
            });
            while pm
                .connector_state(observer, connector(old_handle, 0))
                .map(|c| c.state)
                != Ok(attached(1))
            {
                thread::yield_now();
            }
            let delivered_meanwhile = len(&log);
            control.release(); // before asserting, so that a failure cannot strand the drainer
            let rearrived = reporting.join().unwrap();
            (registering.join().unwrap(), rearrived, delivered_meanwhile)
        });
        let port2 = port2.expect("the id may arrive again after removal");
        assert_eq!(
            delivered_meanwhile, 1,
            "the drainer was blocked, so only the old arrival had been delivered"
        );

        let old = hub_info(hub, &[detached()]);
        let new = hub_info(hub, &[sourcing(5)]);
        let expected = vec![
            arrival(hub, 0, old),
            change(hub, 1, 0, attached(1)),
            removal(hub, 2),
            arrival(presence(hub, 2), 0, new.clone()),
        ];
        assert_eq!(snapshot(&log), expected, "the observer");
        assert_eq!(
            snapshot(&blocker_log),
            expected,
            "the client whose replay blocked the drain"
        );
        assert_eq!(port2.handle(), presence(hub, 2));
        assert_eq!(pm.hub_properties(observer, port2.handle()), Ok(new));
        assert_eq!(
            pm.hub_properties(observer, old_handle),
            Err(Error::StaleHubHandle(old_handle))
        );
        port2.connector_changed(ConnectorId(0), detached()).unwrap();
        assert_eq!(
            snapshot(&log).last(),
            Some(&change(presence(hub, 2), 1, 0, detached())),
            "the new presence's seqs"
        );
        drop(port2);
        assert_eq!(pm.deregister(observer), Ok(()));
        assert_eq!(pm.deregister(blocker_h), Ok(()));
    });
}

#[test]
fn deregistered_client_receives_nothing_more() {
    let pm = PolicyManager::new();
    let hub = HubId(1);
    let (la, lb) = (new_log(), new_log());
    let a = pm.register(recorder(&la)).unwrap();
    let b = pm.register(recorder(&lb)).unwrap();
    let port = pm.hub_arrival(hub, vec![detached()]).unwrap();
    port.connector_changed(ConnectorId(0), attached(1)).unwrap();
    assert_eq!(pm.deregister(a), Ok(()));
    port.connector_changed(ConnectorId(0), attached(2)).unwrap();
    port.remove();

    let info = hub_info(hub, &[detached()]);
    assert_eq!(
        snapshot(&la),
        vec![
            arrival(hub, 0, info.clone()),
            change(hub, 1, 0, attached(1))
        ]
    );
    assert_eq!(
        snapshot(&lb),
        vec![
            arrival(hub, 0, info),
            change(hub, 1, 0, attached(1)),
            change(hub, 2, 0, attached(2)),
            removal(hub, 3),
        ]
    );
    assert_eq!(pm.deregister(b), Ok(()));
}

/// Several hubs report from their own threads at once: every client still sees each
/// hub's events complete and in order, and never two callbacks about one hub at once.
#[test]
fn each_hubs_events_arrive_in_order_while_hubs_report_concurrently() {
    const HUBS: u32 = 3;
    const CHANGES: u64 = 300;
    let pm = PolicyManager::new();
    // Per hub: a callback about that hub is running.
    let busy: Arc<Vec<AtomicBool>> = Arc::new((0..=HUBS).map(|_| AtomicBool::new(false)).collect());
    let overlaps = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let logs: Vec<Log> = (0..2).map(|_| new_log()).collect();
    let handles: Vec<ClientHandle> = logs
        .iter()
        .map(|log| {
            let (log, busy, overlaps) = (log.clone(), busy.clone(), overlaps.clone());
            pm.register(ClientConfig::new((), move |_, _, n| {
                let Some(hub) = n.hub_id() else {
                    log.lock().unwrap().push(n.clone()); // the Policy Manager's arrival
                    return;
                };
                let flag = &busy[hub.0 as usize];
                // Both clients share the flag: a hub delivers to its clients one at a time.
                if flag.swap(true, Ordering::SeqCst) {
                    overlaps.fetch_add(1, Ordering::SeqCst);
                }
                log.lock().unwrap().push(n.clone());
                thread::yield_now();
                flag.store(false, Ordering::SeqCst);
            }))
            .unwrap()
        })
        .collect();

    let start = Arc::new(Barrier::new(HUBS as usize));
    let threads: Vec<_> = (1..=HUBS)
        .map(|i| {
            let (pm, start) = (pm.clone(), start.clone());
            thread::spawn(move || {
                let port = pm.hub_arrival(HubId(i), vec![detached()]).unwrap();
                start.wait();
                for k in 1..=CHANGES {
                    port.connector_changed(ConnectorId(0), attached(k as u32))
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }

    assert_eq!(
        overlaps.load(Ordering::SeqCst),
        0,
        "two callbacks about one hub overlapped"
    );
    for log in &logs {
        let events = snapshot(log);
        check_per_hub(&events).unwrap();
        for i in 1..=HUBS {
            let hub = HubId(i);
            let mut expected = vec![arrival(hub, 0, hub_info(hub, &[detached()]))];
            expected.extend((1..=CHANGES).map(|k| change(hub, k, 0, attached(k as u32))));
            expected.push(removal(hub, CHANGES + 1));
            assert_eq!(about(&events, hub), expected);
        }
    }
    for h in handles {
        assert_eq!(pm.deregister(h), Ok(()));
    }
}

#[test]
fn dropping_a_registration_deregisters_the_client() {
    let pm = PolicyManager::new();
    let hub = HubId(2);
    let port = pm.hub_arrival(hub, vec![detached()]).unwrap();
    let log = new_log();
    let reg = pm.register_owned(recorder(&log)).unwrap();
    let h = reg.handle();
    assert_eq!(pm.client_count(), 1);
    port.connector_changed(ConnectorId(0), attached(1)).unwrap();
    assert_eq!(len(&log), 2, "arrival and one change");

    drop(reg);
    assert_eq!(pm.client_count(), 0);
    port.connector_changed(ConnectorId(0), attached(2)).unwrap();
    port.remove();
    assert_eq!(len(&log), 2, "the callback is not called after the drop");
    assert_eq!(pm.deregister(h), Err(Error::StaleHandle(h)));
}

#[test]
fn registration_deregister_returns_ok_and_retires_the_handle() {
    let pm = PolicyManager::new();
    let port = pm.hub_arrival(HubId(1), vec![detached()]).unwrap();
    let log = new_log();
    let reg = pm.register_owned(recorder(&log)).unwrap();
    let h = reg.handle();
    match reg.deregister() {
        Ok(()) => {}
        Err((e, _)) => panic!("Registration::deregister failed: {e}"),
    }
    assert_eq!(pm.client_count(), 0);
    port.connector_changed(ConnectorId(0), attached(1)).unwrap();
    assert_eq!(len(&log), 1, "only the arrival");
    assert_eq!(pm.deregister(h), Err(Error::StaleHandle(h)));
}

#[test]
fn registration_whose_handle_was_deregistered_reports_stale() {
    let pm = PolicyManager::new();
    let reg = pm.register_owned(silent()).unwrap();
    let h = reg.handle();
    assert_eq!(pm.deregister(h), Ok(()));
    match reg.deregister() {
        Ok(()) => panic!("deregistered twice"),
        Err((e, reg)) => {
            assert_eq!(e, Error::StaleHandle(h));
            drop(reg); // must not panic or hang
        }
    }
    assert_eq!(pm.client_count(), 0);
}

#[test]
fn arrival_events_carry_the_hub_info() {
    let pm = PolicyManager::new();
    let log = new_log();
    let reg = pm.register_owned(recorder(&log)).unwrap();
    let port = pm
        .hub_arrival(HubId(5), vec![detached(), attached(1), sourcing(2)])
        .unwrap();
    let events = snapshot(&log);
    let Event::HubArrival(info) = &events[0].event else {
        panic!("expected an arrival: {events:?}")
    };
    assert_eq!(events[0].hub, Some(port.handle()));
    assert_eq!(
        info,
        &pm.hub_properties(reg.handle(), port.handle()).unwrap()
    );
    assert_eq!(info.connectors.len(), 3);
    assert_eq!(info.connectors[2].connector, ConnectorId(2));
}

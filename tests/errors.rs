//! Every bad input gets its typed error and the NTSTATUS a driver would see, and a
//! refused call changes nothing.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::*;
use usbpm::{
    ClientConfig, ClientHandle, ConnectorId, Error, HubId, NtStatus, PolicyManager, PowerLevel,
};

/// Connector ids are 8 bits.
const MAX_CONNECTORS: usize = 256;
/// Handles have 16 bits of slot.
const CLIENT_SLOTS: usize = 65_536;
/// Registrations one slot serves before it is exhausted (generations 1 to 65,535).
const GENERATIONS_PER_SLOT: usize = 65_535;

fn silent() -> ClientConfig {
    ClientConfig::new((), |_, _, _| {})
}

/// Steps of `into_raw`, learnt from handles a manager issued rather than assumed: the
/// raw distance between two generations of one slot, and between neighbouring slots.
struct Layout {
    slot_step: u64,
}

fn learn_layout() -> Layout {
    let pm = PolicyManager::new();
    let a = pm.register(silent()).unwrap();
    let b = pm.register(silent()).unwrap();
    assert_eq!(pm.deregister(a), Ok(()));
    let a2 = pm.register(silent()).unwrap();
    assert_eq!(a2.slot(), a.slot(), "a freed slot is reused");
    assert_eq!(b.slot(), a.slot() + 1);
    let generation_step = a2.into_raw().wrapping_sub(a.into_raw());
    let slot_step = b.into_raw().wrapping_sub(a.into_raw());
    assert_eq!(
        generation_step, 1,
        "these tests expect the generation in into_raw's lowest bits"
    );
    assert!(
        slot_step.is_power_of_two() && slot_step > 1,
        "slot step {slot_step:#x}"
    );
    Layout { slot_step }
}

impl Layout {
    /// `h` with generation 0.
    fn generation_zero(&self, h: ClientHandle) -> ClientHandle {
        let forged = ClientHandle::from_raw(h.into_raw() & !(self.slot_step - 1));
        assert_eq!(forged.slot(), h.slot());
        forged
    }

    /// `h` with the next generation of its slot.
    fn next_generation(&self, h: ClientHandle) -> ClientHandle {
        let forged = ClientHandle::from_raw(h.into_raw() + 1);
        assert_eq!(forged.slot(), h.slot());
        forged
    }

    /// `h` moved `by` slots up.
    fn other_slot(&self, h: ClientHandle, by: u64) -> ClientHandle {
        let forged = ClientHandle::from_raw(h.into_raw() + by * self.slot_step);
        assert_eq!(forged.slot() as u64, h.slot() as u64 + by);
        forged
    }
}

/// The client recording into `log` is still registered: it receives the next change.
fn assert_alive(log: &Log, hub: HubId, port: &usbpm::HubPort) {
    let before = len(log);
    port.connector_changed(ConnectorId(0), attached(before as u32))
        .unwrap();
    let events = snapshot(log);
    assert_eq!(
        events.len(),
        before + 1,
        "the client no longer receives events"
    );
    assert_eq!(events.last().unwrap().hub_id(), Some(hub));
    check_per_hub(&events).unwrap();
}

#[test]
fn handles_that_were_never_issued_are_unknown() {
    let pm = PolicyManager::new();
    let hub = HubId(1);
    let port = pm.hub_arrival(hub, vec![detached()]).unwrap();
    let log = new_log();
    let a = pm.register(recorder(&log)).unwrap();
    let layout = learn_layout();

    let forged = [
        ClientHandle::from_raw(0),
        ClientHandle::from_raw(u64::MAX),
        ClientHandle::from_raw(0xDEAD_BEEF_CAFE_F00D),
        layout.generation_zero(a), // generation 0 is never issued
        layout.next_generation(a), // a generation the slot has not reached
        layout.other_slot(a, 500), // a slot that does not exist
    ];
    for h in forged {
        let err = pm.deregister(h).unwrap_err();
        assert_eq!(
            err,
            Error::UnknownHandle(h),
            "deregister({h:?} = {:#x})",
            h.into_raw()
        );
        assert_eq!(err.ntstatus(), NtStatus::INVALID_HANDLE);
        assert_eq!(err.ntstatus().name(), "STATUS_INVALID_HANDLE");
    }

    // None of those touched the real client.
    assert_eq!(pm.client_count(), 1);
    assert_alive(&log, hub, &port);
    assert_eq!(pm.deregister(a), Ok(()));
}

#[test]
fn handle_from_another_policy_manager_is_unknown_and_touches_neither() {
    let (pm1, pm2) = (PolicyManager::new(), PolicyManager::new());
    let (l1, l2) = (new_log(), new_log());
    let a1 = pm1.register(recorder(&l1)).unwrap();
    let a2 = pm2.register(recorder(&l2)).unwrap();
    assert_eq!(
        a1.slot(),
        a2.slot(),
        "same slot in both, so only the instance tells them apart"
    );
    assert_ne!(a1, a2);

    let err = pm1.deregister(a2).unwrap_err();
    assert_eq!(err, Error::UnknownHandle(a2));
    assert_eq!(err.ntstatus(), NtStatus::INVALID_HANDLE);
    assert_eq!(pm2.deregister(a1), Err(Error::UnknownHandle(a1)));

    assert_eq!((pm1.client_count(), pm2.client_count()), (1, 1));
    let p1 = pm1.hub_arrival(HubId(1), vec![detached()]).unwrap();
    let p2 = pm2.hub_arrival(HubId(1), vec![detached()]).unwrap();
    assert_alive(&l1, HubId(1), &p1);
    assert_alive(&l2, HubId(1), &p2);
    assert_eq!(pm1.deregister(a1), Ok(()));
    assert_eq!(pm2.deregister(a2), Ok(()));
}

/// After a slot's client is deregistered, the generation its next client will get has
/// not been issued yet: a handle forged with it is unknown, not stale.
#[test]
fn next_generation_of_a_free_slot_was_never_issued() {
    let pm = PolicyManager::new();
    let layout = learn_layout();
    let a = pm.register(silent()).unwrap();
    assert_eq!(pm.deregister(a), Ok(()));
    let forged = layout.next_generation(a);
    assert_eq!(pm.deregister(forged), Err(Error::UnknownHandle(forged)));
    let b = pm.register(silent()).unwrap();
    assert_eq!(b, forged, "the slot's next client gets exactly that handle");
    assert_eq!(pm.deregister(b), Ok(()));
}

/// However often a slot is reused (past any generation counter's wrap), a stale handle
/// never comes back to life and never reaches the slot's current client.
#[test]
fn stale_handle_stays_stale_however_often_its_slot_is_reused() {
    const REUSES: u32 = 70_000; // more than 2^16
    let pm = PolicyManager::new();
    let first = pm.register(silent()).unwrap();
    assert_eq!(pm.deregister(first), Ok(()));
    for i in 0..REUSES {
        let h = pm.register(silent()).unwrap();
        let err = pm.deregister(first);
        assert_eq!(err, Err(Error::StaleHandle(first)), "reuse {i}: {h:?}");
        assert_eq!(
            pm.client_count(),
            1,
            "reuse {i}: the stale handle deregistered {h:?}"
        );
        assert_eq!(pm.deregister(h), Ok(()));
    }
}

#[test]
fn double_deregister_is_a_stale_handle() {
    let pm = PolicyManager::new();
    let h = pm.register(silent()).unwrap();
    assert_eq!(pm.deregister(h), Ok(()));
    let err = pm.deregister(h).unwrap_err();
    assert_eq!(err, Error::StaleHandle(h));
    assert_eq!(err.ntstatus(), NtStatus::INVALID_HANDLE);
    assert_eq!(
        pm.deregister(h),
        Err(Error::StaleHandle(h)),
        "and stays stale"
    );
}

#[test]
fn stale_handle_whose_slot_was_reused_does_not_touch_the_new_client() {
    let pm = PolicyManager::new();
    let hub = HubId(1);
    let port = pm.hub_arrival(hub, vec![detached()]).unwrap();
    let old = pm.register(silent()).unwrap();
    assert_eq!(pm.deregister(old), Ok(()));

    let log = new_log();
    let new = pm.register(recorder(&log)).unwrap();
    assert_eq!(
        new.slot(),
        old.slot(),
        "the slot is reused (otherwise this test proves nothing)"
    );
    assert_ne!(new, old);

    for _ in 0..3 {
        let err = pm.deregister(old).unwrap_err();
        assert_eq!(err, Error::StaleHandle(old));
        assert_eq!(err.ntstatus(), NtStatus::INVALID_HANDLE);
        assert_eq!(pm.client_count(), 1, "the new client is still registered");
        assert_alive(&log, hub, &port);
    }
    assert_eq!(pm.deregister(new), Ok(()));
    assert_eq!(pm.client_count(), 0);
}

/// Every client call about `hub` is refused with `expect`.
fn assert_every_call_refused(
    pm: &PolicyManager,
    client: ClientHandle,
    hub: usbpm::HubHandle,
    expect: &Error,
) {
    let level = PowerLevel { milliwatts: 1 };
    let c0 = connector(hub, 0);
    assert_eq!(pm.hub_properties(client, hub), Err(expect.clone()), "{hub}");
    assert_eq!(pm.hub_connectors(client, hub), Err(expect.clone()), "{hub}");
    assert_eq!(
        pm.connector_properties(client, c0),
        Err(expect.clone()),
        "{hub}"
    );
    assert_eq!(pm.connector_state(client, c0), Err(expect.clone()), "{hub}");
    assert_eq!(
        pm.assign_power_level(client, c0, level),
        Err(expect.clone()),
        "{hub}"
    );
}

#[test]
fn unknown_hub_is_not_found() {
    let pm = PolicyManager::new();
    let log = new_log();
    let h = pm.register(recorder(&log)).unwrap();
    let hub = HubId(42);
    let expect = Error::UnknownHub(hub);
    assert_every_call_refused(&pm, h, presence(hub, 1), &expect);
    assert_eq!(expect.ntstatus(), NtStatus::NOT_FOUND);
    assert_eq!(expect.ntstatus().name(), "STATUS_NOT_FOUND");

    // Presence 0 is never issued, and a presence the hub has not reached is unknown too.
    let port = pm.hub_arrival(hub, vec![attached(1)]).unwrap();
    assert_eq!(port.handle(), presence(hub, 1));
    assert!(pm.hub_properties(h, port.handle()).is_ok());
    for p in [0, 2, u32::MAX] {
        assert_every_call_refused(&pm, h, presence(hub, p), &expect);
    }
    assert!(
        port.power_requests().is_empty(),
        "nothing reached the hardware"
    );
    assert_eq!(
        len(&log),
        1,
        "only the arrival: the refusals changed nothing"
    );
    assert_eq!(
        pm.hub_properties(h, port.handle()),
        Ok(hub_info(hub, &[attached(1)]))
    );

    // A hub that was present and whose removal was delivered: its handle is stale.
    let handle = port.handle();
    port.remove();
    let stale = Error::StaleHubHandle(handle);
    assert_every_call_refused(&pm, h, handle, &stale);
    assert_eq!(stale.ntstatus(), NtStatus::INVALID_HANDLE);
    assert_eq!(len(&log), 2, "arrival and removal");
    assert_eq!(pm.deregister(h), Ok(()));
}

#[test]
fn duplicate_hub_arrival_is_a_name_collision_and_changes_nothing() {
    let pm = PolicyManager::new();
    let hub = HubId(3);
    let log = new_log();
    let h = pm.register(recorder(&log)).unwrap();
    let port = pm.hub_arrival(hub, vec![detached(), attached(1)]).unwrap();
    let before = pm.hub_properties(h, port.handle()).unwrap();

    let err = pm.hub_arrival(hub, vec![sourcing(9)]).unwrap_err();
    assert_eq!(err, Error::HubAlreadyPresent(hub));
    assert_eq!(err.ntstatus(), NtStatus::OBJECT_NAME_COLLISION);
    assert_eq!(err.ntstatus().name(), "STATUS_OBJECT_NAME_COLLISION");

    assert_eq!(
        pm.hub_properties(h, port.handle()).unwrap(),
        before,
        "the present hub is unchanged"
    );
    assert_eq!(
        port.handle(),
        presence(hub, 1),
        "and still its first presence"
    );
    assert_eq!(len(&log), 1, "no second arrival was delivered");
    port.connector_changed(ConnectorId(1), detached()).unwrap();
    assert_eq!(
        snapshot(&log)[1],
        change(hub, 1, 1, detached()),
        "the original port still works"
    );
    port.remove();
    assert!(
        pm.hub_arrival(hub, vec![]).is_ok(),
        "free again after removal"
    );
    assert_eq!(pm.deregister(h), Ok(()));
}

#[test]
fn unknown_connector_is_an_invalid_parameter_and_consumes_no_seq() {
    let pm = PolicyManager::new();
    let hub = HubId(8);
    let log = new_log();
    let h = pm.register(recorder(&log)).unwrap();
    let port = pm.hub_arrival(hub, vec![detached(), detached()]).unwrap();
    let bad = ConnectorId(2);
    let expect = Error::UnknownConnector(hub, bad);

    assert_eq!(
        port.connector_changed(bad, attached(1)),
        Err(expect.clone())
    );
    let bad_handle = connector(port.handle(), bad.0);
    assert_eq!(pm.connector_state(h, bad_handle), Err(expect.clone()));
    assert_eq!(pm.connector_properties(h, bad_handle), Err(expect.clone()));
    assert_eq!(
        pm.assign_power_level(h, bad_handle, PowerLevel { milliwatts: 1 }),
        Err(expect.clone())
    );
    assert!(
        port.power_requests().is_empty(),
        "nothing reached the hardware"
    );
    assert_eq!(
        port.connector_changed(ConnectorId(255), attached(1)),
        Err(Error::UnknownConnector(hub, ConnectorId(255)))
    );
    assert_eq!(expect.ntstatus(), NtStatus::INVALID_PARAMETER);
    assert_eq!(expect.ntstatus().name(), "STATUS_INVALID_PARAMETER");

    assert_eq!(
        pm.hub_properties(h, port.handle()).unwrap(),
        hub_info(hub, &[detached(), detached()]),
        "state unchanged"
    );
    assert_eq!(len(&log), 1, "no event for a refused change");
    port.connector_changed(ConnectorId(1), attached(2)).unwrap();
    assert_eq!(
        snapshot(&log)[1],
        change(hub, 1, 1, attached(2)),
        "the next change is still seq 1"
    );
    assert_eq!(pm.deregister(h), Ok(()));
}

#[test]
fn deadlock_refusals_map_to_possible_deadlock() {
    let pm = PolicyManager::new();
    let a = pm.register(silent()).unwrap();
    let b = pm.register(silent()).unwrap();
    for e in [
        Error::DeregisterFromOwnCallback(a),
        Error::WouldDeadlock {
            target: a,
            holding: vec![b],
        },
    ] {
        assert_eq!(e.ntstatus(), NtStatus::POSSIBLE_DEADLOCK);
        assert_eq!(e.ntstatus(), NtStatus(0xC000_0194));
        assert_eq!(e.ntstatus().name(), "STATUS_POSSIBLE_DEADLOCK");
        assert!(e.to_string().contains(&a.to_string()), "{e}");
    }
    assert_eq!(NtStatus::SUCCESS.name(), "STATUS_SUCCESS");
    assert_eq!(NtStatus(0x1234).name(), "STATUS_UNKNOWN");
    assert_eq!(
        format!("{:?}", NtStatus::INVALID_HANDLE),
        "STATUS_INVALID_HANDLE (0xC0000008)"
    );
}

#[test]
fn too_many_connectors_is_an_invalid_parameter_and_adds_no_hub() {
    let pm = PolicyManager::new();
    let hub = HubId(5);
    let log = new_log();
    let h = pm.register(recorder(&log)).unwrap();

    let err = pm
        .hub_arrival(hub, vec![detached(); MAX_CONNECTORS + 1])
        .unwrap_err();
    assert_eq!(
        err,
        Error::TooManyConnectors {
            hub,
            connectors: MAX_CONNECTORS + 1
        }
    );
    assert_eq!(err.ntstatus(), NtStatus::INVALID_PARAMETER);
    assert_eq!(err.ntstatus().name(), "STATUS_INVALID_PARAMETER");
    assert_eq!(
        pm.hub_properties(h, presence(hub, 1)),
        Err(Error::UnknownHub(hub)),
        "no hub added"
    );
    assert_eq!(len(&log), 0, "no arrival was delivered");

    // Exactly 256 is accepted, the last connector being 255.
    let states = vec![detached(); MAX_CONNECTORS];
    let port = pm.hub_arrival(hub, states.clone()).unwrap();
    assert_eq!(
        port.handle(),
        presence(hub, 1),
        "the refused arrival made no presence"
    );
    assert_eq!(
        pm.hub_properties(h, port.handle()).unwrap(),
        hub_info(hub, &states)
    );
    assert_eq!(snapshot(&log), [arrival(hub, 0, hub_info(hub, &states))]);
    port.connector_changed(ConnectorId(255), attached(1))
        .unwrap();
    assert_eq!(snapshot(&log)[1], change(hub, 1, 255, attached(1)));

    // Too many connectors for a hub id that is present: refused as too many, and the
    // present hub is untouched.
    let before = pm.hub_properties(h, port.handle()).unwrap();
    assert_eq!(
        pm.hub_arrival(hub, vec![detached(); 1000]).unwrap_err(),
        Error::TooManyConnectors {
            hub,
            connectors: 1000
        }
    );
    assert_eq!(pm.hub_properties(h, port.handle()).unwrap(), before);
    assert_eq!(len(&log), 2);
    assert_eq!(pm.deregister(h), Ok(()));
}

/// A config whose callback counts its calls; the count outlives the config, and the
/// `Arc`'s strong count tells whether the config (its context) is still held.
fn counting(calls: &Arc<AtomicUsize>) -> ClientConfig {
    ClientConfig::new(calls.clone(), |calls, _, _| {
        calls.fetch_add(1, Ordering::SeqCst);
    })
}

#[test]
fn too_many_clients_is_insufficient_resources_and_changes_nothing() {
    let pm = PolicyManager::new();
    let handles: Vec<ClientHandle> = (0..CLIENT_SLOTS)
        .map(|i| {
            pm.register(silent())
                .unwrap_or_else(|e| panic!("registration {i}: {e}"))
        })
        .collect();
    assert_eq!(pm.client_count(), CLIENT_SLOTS);
    // A hub is present, so an accepted registration would be owed its arrival.
    let hub = HubId(1);
    let port = pm.hub_arrival(hub, vec![detached()]).unwrap();

    let refused = Arc::new(AtomicUsize::new(0));
    let expect = Error::TooManyClients {
        limit: CLIENT_SLOTS,
    };
    let err = pm.register(counting(&refused)).unwrap_err();
    assert_eq!(err, expect);
    assert_eq!(err.ntstatus(), NtStatus::INSUFFICIENT_RESOURCES);
    assert_eq!(err.ntstatus(), NtStatus(0xC000_009A));
    assert_eq!(err.ntstatus().name(), "STATUS_INSUFFICIENT_RESOURCES");
    assert_eq!(
        pm.register_owned(counting(&refused)).unwrap_err(),
        expect,
        "register_owned is refused the same way"
    );
    assert_eq!(pm.client_count(), CLIENT_SLOTS);
    assert_eq!(
        Arc::strong_count(&refused),
        1,
        "the refused configs were dropped"
    );
    port.connector_changed(ConnectorId(0), attached(1)).unwrap();
    assert_eq!(
        refused.load(Ordering::SeqCst),
        0,
        "a refused client hears nothing"
    );

    // Deregistering one frees its slot for the next registration, which is a real one.
    let freed = handles[CLIENT_SLOTS / 2];
    assert_eq!(pm.deregister(freed), Ok(()));
    let log = new_log();
    let again = pm.register(recorder(&log)).unwrap();
    assert_eq!(again.slot(), freed.slot(), "the freed slot is reused");
    assert_ne!(again, freed);
    assert_eq!(pm.client_count(), CLIENT_SLOTS);
    assert_eq!(
        snapshot(&log),
        [arrival(hub, 1, hub_info(hub, &[attached(1)]))],
        "the new client got the hub's arrival replay"
    );
    // And full again.
    assert_eq!(pm.register(silent()), Err(expect));
    assert_eq!(pm.client_count(), CLIENT_SLOTS);

    drop(port);
    assert_eq!(pm.deregister(again), Ok(()));
    for h in handles.into_iter().filter(|&h| h != freed) {
        assert_eq!(pm.deregister(h), Ok(()));
    }
    assert_eq!(pm.client_count(), 0);
}

/// A slot that has served 65,535 registrations is exhausted (out of use for good), and
/// counts towards the limit like a slot in use: the limit is registered clients plus
/// exhausted slots.
#[test]
fn exhausted_slots_count_towards_the_client_limit() {
    let pm = PolicyManager::new();
    let first = pm.register(silent()).unwrap();
    assert_eq!(pm.deregister(first), Ok(()));
    for i in 1..GENERATIONS_PER_SLOT {
        let h = pm.register(silent()).unwrap();
        assert_eq!(h.slot(), first.slot(), "registration {i} reuses the slot");
        assert_eq!(pm.deregister(h), Ok(()));
    }
    // That slot has served all its generations and is exhausted: from here on one slot
    // fewer is available.
    let handles: Vec<ClientHandle> = (0..CLIENT_SLOTS - 1)
        .map(|i| {
            pm.register(silent())
                .unwrap_or_else(|e| panic!("registration {i}: {e}"))
        })
        .collect();
    assert!(handles.iter().all(|h| h.slot() != first.slot()));
    assert_eq!(
        pm.register(silent()),
        Err(Error::TooManyClients {
            limit: CLIENT_SLOTS
        })
    );
    assert_eq!(pm.client_count(), CLIENT_SLOTS - 1);
    assert_eq!(pm.deregister(first), Err(Error::StaleHandle(first)));
}

#[test]
fn too_many_connectors_message_names_the_limit() {
    let hub = HubId(9);
    let connectors = Error::TooManyConnectors {
        hub,
        connectors: 300,
    };
    let text = connectors.to_string();
    for part in ["hub 9", "300", "256"] {
        assert!(text.contains(part), "{part:?} missing from: {text}");
    }
    assert!(!text.contains("hub hub"), "{text}");
}

#[test]
fn too_many_clients_message_names_the_limit_and_what_to_do() {
    let clients = Error::TooManyClients {
        limit: CLIENT_SLOTS,
    };
    assert_eq!(clients.ntstatus(), NtStatus::INSUFFICIENT_RESOURCES);
    let text = clients.to_string();
    for part in ["65536", "65535", "retired", "deregister"] {
        assert!(text.contains(part), "{part:?} missing from: {text}");
    }
    assert_eq!(
        format!("{:?}", NtStatus::INSUFFICIENT_RESOURCES),
        "STATUS_INSUFFICIENT_RESOURCES (0xC000009A)"
    );
}

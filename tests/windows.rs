//! The Windows client API end to end (`UsbPm_Register`'s Policy Manager arrival and the
//! access it grants, the retrieve calls, `UsbPm_AssignConnectorPowerLevel` and the
//! hardware's answer, the Policy Manager's removal) and its bad input: each refusal has
//! its typed error and its NTSTATUS, and leaves everything as it was.

mod common;

use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, Scope, ScopedJoinHandle};

use common::*;
use usbpm::{
    Access, ClientConfig, ClientHandle, ConnectorHandle, ConnectorId, ConnectorProperties,
    ConnectorState, Error, Event, HubHandle, HubId, HubInfo, HubPort, Notification, NtStatus,
    PolicyManager, PowerLevel, PowerRequest,
};

const ACCESSES: [Access; 4] = [
    Access::NONE,
    Access::QUERY,
    Access::ASSIGN_POWER,
    Access::ALL,
];

fn silent() -> ClientConfig {
    ClientConfig::new((), |_, _, _| {})
}

/// Registers a client that records into a new log and asks for `access`: the log and the
/// client's handle.
fn register_recorder_with(pm: &PolicyManager, access: Access) -> (Log, ClientHandle) {
    let log = new_log();
    let h = pm.register(recorder(&log).access(access)).unwrap();
    (log, h)
}

/// One recording client per access of [`ACCESSES`], registered in that order.
fn register_recorders_of_every_access(pm: &PolicyManager) -> Vec<(Log, ClientHandle, Access)> {
    ACCESSES
        .iter()
        .map(|&access| {
            let (log, h) = register_recorder_with(pm, access);
            (log, h, access)
        })
        .collect()
}

/// A client handle no register ever returned.
fn forged() -> ClientHandle {
    ClientHandle::from_raw(0xDEAD_BEEF_0000_0001)
}

fn mw(milliwatts: u32) -> PowerLevel {
    PowerLevel { milliwatts }
}

/// What most tests here start from: a recording client granted everything (the default
/// request), then `hub` arriving with connectors in `states`.
struct Scene {
    pm: PolicyManager,
    log: Log,
    h: ClientHandle,
    port: HubPort,
}

fn recorder_then_hub(hub: HubId, states: Vec<ConnectorState>) -> Scene {
    let pm = PolicyManager::new();
    let (log, h) = register_recorder(&pm);
    let port = pm.hub_arrival(hub, states).unwrap();
    Scene { pm, log, h, port }
}

/// Removes the hub (drops its port), then deregisters `clients`.
#[track_caller]
fn remove_then_deregister(
    pm: &PolicyManager,
    port: HubPort,
    clients: impl IntoIterator<Item = ClientHandle>,
) {
    drop(port);
    deregister_all(pm, clients);
}

/// The hardware reports connector 0 of `port` in `state`, and `log`'s client hears it
/// last, as the change `seq` of `hub`: the client is still registered and hearing events.
#[track_caller]
fn assert_hears_change(
    port: &HubPort,
    log: &Log,
    hub: impl Presence,
    seq: u64,
    state: ConnectorState,
) {
    port.connector_changed(ConnectorId(0), state.clone())
        .unwrap();
    assert_eq!(snapshot(log).last(), Some(&change(hub, seq, 0, state)));
}

/// `events` is the Policy Manager's arrival granting `access`, then one replay per hub,
/// in any order: `replays`, sorted by hub.
#[track_caller]
fn assert_arrival_then_replays(events: &[Notification], access: Access, replays: &[Notification]) {
    assert_eq!(events[0], pm_arrival(access), "{events:?}");
    let mut rest = events[1..].to_vec();
    rest.sort_by_key(|n| n.hub);
    assert_eq!(rest, replays, "one replay per hub, after the arrival");
}

/// The one power request the hardware has been asked (taken from the port).
#[track_caller]
fn the_request(port: &HubPort) -> PowerRequest {
    let [request] = <[PowerRequest; 1]>::try_from(port.power_requests())
        .unwrap_or_else(|requests| panic!("not exactly one request: {requests:?}"));
    request
}

/// The power assigned to connector `c`, as client `h` sees it.
#[track_caller]
fn assigned_power(pm: &PolicyManager, h: ClientHandle, c: ConnectorHandle) -> Option<PowerLevel> {
    pm.connector_state(h, c).unwrap().assigned_power
}

/// Shuts `pm` down on a thread of `s`, and sets `returned` once `shutdown` returned (so
/// that the test can see it has not yet).
fn spawn_shutdown<'scope>(
    s: &'scope Scope<'scope, '_>,
    pm: &'scope PolicyManager,
    returned: &'scope AtomicBool,
) -> ScopedJoinHandle<'scope, Result<(), Error>> {
    s.spawn(move || {
        let r = pm.shutdown();
        returned.store(true, Ordering::SeqCst);
        r
    })
}

/// `result` is the refusal `expect`, with the NTSTATUS `status`.
#[track_caller]
fn assert_refused<T: Debug>(result: Result<T, Error>, expect: &Error, status: NtStatus) {
    let err = result.expect_err("the call was refused");
    assert_eq!(&err, expect);
    assert_eq!(err.ntstatus(), status, "{err}");
    assert_ne!(status.name(), "STATUS_UNKNOWN");
}

/// Every retrieve call client `h` makes about `hub` (the hub, its connectors, connector
/// 0's properties and state) is the refusal `expect`, with the NTSTATUS `status`.
#[track_caller]
fn assert_queries_refused(
    pm: &PolicyManager,
    h: ClientHandle,
    hub: HubHandle,
    expect: &Error,
    status: NtStatus,
) {
    let c0 = connector(hub, 0);
    assert_refused(pm.hub_properties(h, hub), expect, status);
    assert_refused(pm.hub_connectors(h, hub), expect, status);
    assert_refused(pm.connector_properties(h, c0), expect, status);
    assert_refused(pm.connector_state(h, c0), expect, status);
}

/// Every call client `h` makes about `hub` (the retrieve calls, and a power level for
/// connector 0) is the refusal `expect`, with the NTSTATUS `status`.
#[track_caller]
fn assert_every_call_refused(
    pm: &PolicyManager,
    h: ClientHandle,
    hub: HubHandle,
    expect: &Error,
    status: NtStatus,
) {
    assert_queries_refused(pm, h, hub, expect, status);
    assert_refused(
        pm.assign_power_level(h, connector(hub, 0), mw(1)),
        expect,
        status,
    );
}

/// Everything a refused call must leave as it was: what every client has received, the
/// hubs' states as a querying client sees them, and the number of clients. (The
/// hardware's side, `power_requests`, is checked where a call could have reached it.)
#[derive(Debug, PartialEq)]
struct World {
    logs: Vec<Vec<Notification>>,
    hubs: Vec<Result<HubInfo, Error>>,
    clients: usize,
}

fn world(pm: &PolicyManager, logs: &[&Log], querier: ClientHandle, hubs: &[HubHandle]) -> World {
    World {
        logs: logs.iter().map(|l| snapshot_all(l)).collect(),
        hubs: hubs
            .iter()
            .map(|&h| pm.hub_properties(querier, h))
            .collect(),
        clients: pm.client_count(),
    }
}

/// Runs `f`, then checks that the [`World`] (of `logs`, and of `hubs` as `querier` sees
/// them) is as it was before.
#[track_caller]
fn assert_unchanged_by(
    pm: &PolicyManager,
    logs: &[&Log],
    querier: ClientHandle,
    hubs: &[HubHandle],
    f: impl FnOnce(),
) {
    let before = world(pm, logs, querier, hubs);
    f();
    assert_eq!(world(pm, logs, querier, hubs), before, "something changed");
}

/// Runs `check(pm, requested, granted)` for each way a client comes to hold no more
/// than `other`: it asks for `other` only, it asks for nothing, or it asks for
/// everything and the Policy Manager grants `other` only.
fn for_each_client_granted_at_most(other: Access, check: impl Fn(&PolicyManager, Access, Access)) {
    let pm = PolicyManager::new();
    check(&pm, other, other);
    check(&pm, Access::NONE, Access::NONE);
    // Asked for everything, granted less.
    check(&PolicyManager::granting(other), Access::ALL, other);
}

/// The access tests' set-up on `pm`: a recording client that asked for `requested` and
/// heard that it was granted `granted`, then an [`Observer`] (the world's querier), then
/// hub 1 with connectors in `states`.
struct LimitedClient<'a> {
    pm: &'a PolicyManager,
    log: Log,
    h: ClientHandle,
    granted: Access,
    observer: Observer,
    port: HubPort,
}

impl<'a> LimitedClient<'a> {
    fn new(
        pm: &'a PolicyManager,
        requested: Access,
        granted: Access,
        states: Vec<ConnectorState>,
    ) -> Self {
        let (log, h) = register_recorder_with(pm, requested);
        assert_eq!(snapshot_all(&log)[0], pm_arrival(granted));
        let observer = Observer::new(pm);
        let port = pm.hub_arrival(HubId(1), states).unwrap();
        LimitedClient {
            pm,
            log,
            h,
            granted,
            observer,
            port,
        }
    }

    /// The refusal of a call that needs `needs`.
    fn denied(&self, needs: Access) -> Error {
        Error::AccessDenied {
            client: self.h,
            needs,
            granted: self.granted,
        }
    }

    /// Runs `f`, then checks that the client's log, the hub as the observer sees it and
    /// the number of clients are as they were.
    #[track_caller]
    fn assert_unchanged_by(&self, f: impl FnOnce()) {
        let hubs = [self.port.handle()];
        assert_unchanged_by(self.pm, &[&self.log], self.observer.handle(), &hubs, f);
    }

    /// Removes the hub, then deregisters the client (and, dropped last, the observer).
    #[track_caller]
    fn finish(self) {
        remove_then_deregister(self.pm, self.port, [self.h]);
    }
}

// ---------------------------------------------------------------------------------------
// The Policy Manager's arrival and the access it grants.

#[test]
fn the_policy_manager_arrival_comes_first_and_exactly_once() {
    let pm = PolicyManager::new();
    // No hub: the arrival alone, before register returns.
    let (first, a) = register_recorder(&pm);
    assert_eq!(snapshot_all(&first), [pm_arrival(Access::ALL)]);

    let p1 = pm.hub_arrival(HubId(1), vec![detached()]).unwrap();
    let p2 = pm.hub_arrival(HubId(2), vec![attached(5)]).unwrap();
    p1.connector_changed(ConnectorId(0), attached(7)).unwrap();

    // Hubs present: the arrival, then one replay per hub.
    let (late, b) = register_recorder(&pm);
    let events = snapshot_all(&late);
    assert_eq!(events.len(), 3, "{events:?}");
    assert_arrival_then_replays(
        &events,
        Access::ALL,
        &[
            arrival(HubId(1), 1, hub_info(HubId(1), &[attached(7)])),
            arrival(HubId(2), 0, hub_info(HubId(2), &[attached(5)])),
        ],
    );

    p2.connector_changed(ConnectorId(0), detached()).unwrap();
    drop(p1);
    drop(p2);
    for log in [&first, &late] {
        let events = snapshot_all(log);
        check_per_hub(&events).unwrap();
        let arrivals = events
            .iter()
            .filter(|n| matches!(n.event, Event::PolicyManagerArrival { .. }))
            .count();
        assert_eq!(arrivals, 1, "{events:?}");
        assert_eq!(events[0], pm_arrival(Access::ALL));
    }
    deregister_all(&pm, [a, b]);
}

#[test]
fn a_client_registered_inside_a_callback_hears_its_arrival_after_the_callback_then_replays() {
    struct Ctx {
        trace: Mutex<Vec<String>>,
        inner: OnceLock<(ClientHandle, Log)>,
        /// What the inner client had received when `register` returned inside the callback.
        at_return: Mutex<Option<usize>>,
    }
    watchdog("register inside a callback", || {
        let pm = PolicyManager::new();
        let (h1, h2) = (HubId(1), HubId(2));
        let p1 = pm.hub_arrival(h1, vec![detached()]).unwrap();
        let p2 = pm.hub_arrival(h2, vec![sourcing(3)]).unwrap();
        let ctx = Arc::new(Ctx {
            trace: Mutex::default(),
            inner: OnceLock::new(),
            at_return: Mutex::new(None),
        });
        let outer = pm
            .register(ClientConfig::new(ctx.clone(), |ctx, pm, n| {
                if n.hub_id() != Some(HubId(1)) || !is_change(n) {
                    return;
                }
                ctx.trace.lock().unwrap().push("outer begins".into());
                let log = new_log();
                let traced = (ctx.clone(), log.clone());
                let inner = pm
                    .register(
                        ClientConfig::new(traced, |(ctx, log), _, n| {
                            ctx.trace
                                .lock()
                                .unwrap()
                                .push(format!("inner {:?}", n.event));
                            log.lock().unwrap().push(n.clone());
                        })
                        .access(Access::QUERY),
                    )
                    .expect("register inside a callback");
                *ctx.at_return.lock().unwrap() = Some(snapshot_all(&log).len());
                ctx.inner.set((inner, log)).unwrap();
                ctx.trace.lock().unwrap().push("outer ends".into());
            }))
            .unwrap();
        p1.connector_changed(ConnectorId(0), attached(1)).unwrap();

        // All of it was delivered before the outermost call returned.
        let (inner, log) = ctx.inner.get().unwrap().clone();
        assert_eq!(
            *ctx.at_return.lock().unwrap(),
            Some(0),
            "register inside a callback only registers"
        );
        let trace = ctx.trace.lock().unwrap().clone();
        assert_eq!(trace[0], "outer begins");
        assert_eq!(trace[1], "outer ends");
        assert_eq!(
            trace[2],
            format!(
                "inner {:?}",
                Event::PolicyManagerArrival {
                    access: Access::QUERY
                }
            ),
            "its arrival after the registering callback returned: {trace:?}"
        );
        assert_arrival_then_replays(
            &snapshot_all(&log),
            Access::QUERY,
            &[
                arrival(h1, 1, hub_info(h1, &[attached(1)])),
                arrival(h2, 0, hub_info(h2, &[sourcing(3)])),
            ],
        );

        p1.connector_changed(ConnectorId(0), detached()).unwrap();
        p2.remove();
        let events = snapshot_all(&log);
        check_per_hub(&events).unwrap();
        assert_eq!(
            events
                .iter()
                .filter(|n| n.is_manager_event())
                .collect::<Vec<_>>(),
            [&pm_arrival(Access::QUERY)],
            "exactly one Policy Manager event"
        );
        assert_eq!(events.last(), Some(&removal(h2, 1)));
        deregister_all(&pm, [inner, outer]);
    });
}

/// A client registered inside a callback and deregistered before its arrival was
/// delivered hears nothing at all.
#[test]
fn a_client_deregistered_before_its_arrival_hears_nothing() {
    watchdog("deregister before the arrival", || {
        let pm = PolicyManager::new();
        let port = pm.hub_arrival(HubId(1), vec![detached()]).unwrap();
        let log = new_log();
        type Outcome = Option<(ClientHandle, Result<(), Error>)>;
        let outcome: Arc<Mutex<Outcome>> = Arc::default();
        let ctx = (log.clone(), outcome.clone());
        let h = pm
            .register(ClientConfig::new(ctx, |(log, outcome), pm, n| {
                if is_change(n) && outcome.lock().unwrap().is_none() {
                    let inner = pm.register(recorder(log)).unwrap();
                    let r = pm.deregister(inner);
                    *outcome.lock().unwrap() = Some((inner, r));
                }
            }))
            .unwrap();
        port.connector_changed(ConnectorId(0), attached(1)).unwrap();
        let (inner, result) = outcome.lock().unwrap().take().unwrap();
        assert_eq!(result, Ok(()));
        port.connector_changed(ConnectorId(0), attached(2)).unwrap();
        assert_eq!(
            snapshot_all(&log),
            [],
            "not even its Policy Manager arrival"
        );
        assert_eq!(pm.client_count(), 1);
        assert_eq!(pm.deregister(inner), Err(Error::StaleHandle(inner)));
        assert_eq!(pm.deregister(h), Ok(()));
    });
}

#[test]
fn the_access_granted_is_the_request_within_what_the_policy_manager_grants() {
    for grants in ACCESSES {
        let pm = PolicyManager::granting(grants);
        let _port = pm.hub_arrival(HubId(1), vec![detached()]).unwrap();
        for requested in ACCESSES {
            let (log, h) = register_recorder_with(&pm, requested);
            let expect = Access {
                query: requested.query && grants.query,
                assign_power: requested.assign_power && grants.assign_power,
            };
            let events = snapshot_all(&log);
            assert_eq!(
                events[0],
                pm_arrival(expect),
                "requested {requested:?}, granting {grants:?}"
            );
            assert_eq!(
                events.len(),
                2,
                "its arrival and the hub's replay, whatever the access"
            );
            assert_eq!(pm.deregister(h), Ok(()));
        }
        // The default request is everything.
        let (log, h) = register_recorder(&pm);
        assert_eq!(snapshot_all(&log)[0], pm_arrival(grants));
        assert_eq!(pm.deregister(h), Ok(()));
    }
}

// ---------------------------------------------------------------------------------------
// The retrieve calls, and their refusals.

#[test]
fn the_retrieve_calls_describe_the_hub_and_its_connectors() {
    let pm = PolicyManager::new();
    let h = pm.register(silent().access(Access::QUERY)).unwrap();
    let hub = HubId(4);
    let port = pm
        .hub_arrival(hub, vec![detached(), attached(15_000), sourcing(7_500)])
        .unwrap();
    let handle = port.handle();
    assert_eq!(handle, presence(hub, 1));
    let info = pm.hub_properties(h, handle).unwrap();
    assert_eq!(
        info,
        hub_info(hub, &[detached(), attached(15_000), sourcing(7_500)])
    );
    let connectors = pm.hub_connectors(h, handle).unwrap();
    assert_eq!(
        connectors,
        [
            connector(handle, 0),
            connector(handle, 1),
            connector(handle, 2)
        ]
    );
    for (i, c) in connectors.iter().enumerate() {
        assert_eq!(
            pm.connector_properties(h, *c),
            Ok(ConnectorProperties {
                hub: handle,
                connector: ConnectorId(i as u8)
            })
        );
        assert_eq!(pm.connector_state(h, *c).as_ref(), Ok(&info.connectors[i]));
    }
    port.connector_changed(ConnectorId(0), attached(1)).unwrap();
    let c0 = pm.connector_state(h, connectors[0]).unwrap();
    assert_eq!((c0.state, c0.attach_count), (attached(1), 1));
    remove_then_deregister(&pm, port, [h]);
}

#[test]
fn queries_without_query_access_are_denied_and_change_nothing() {
    // (Where the Policy Manager grants assign power only, no client may query, the
    // observer neither: the hub's state stays unseen, and the logs show that nothing
    // changed.)
    for_each_client_granted_at_most(Access::ASSIGN_POWER, |pm, requested, granted| {
        let client = LimitedClient::new(pm, requested, granted, vec![attached(9_000)]);
        let (h, handle) = (client.h, client.port.handle());
        let expect = client.denied(Access::QUERY);
        let status = NtStatus::ACCESS_DENIED;
        client.assert_unchanged_by(|| {
            assert_queries_refused(pm, h, handle, &expect, status);
            // Access is checked before the hub: an unknown hub is denied the same way.
            let unknown = presence(HubId(99), 1);
            assert_refused(pm.hub_properties(h, unknown), &expect, status);
        });
        assert_eq!(expect.ntstatus().name(), "STATUS_ACCESS_DENIED");
        assert!(expect.to_string().contains(&h.to_string()), "{expect}");

        // Still registered and hearing events.
        assert_hears_change(&client.port, &client.log, handle, 1, detached());
        client.finish();
    });
}

#[test]
fn power_without_assign_power_access_is_denied_and_reaches_no_hardware() {
    for_each_client_granted_at_most(Access::QUERY, |pm, requested, granted| {
        let states = vec![attached(9_000), sourcing(1)];
        let client = LimitedClient::new(pm, requested, granted, states);
        let (h, handle) = (client.h, client.port.handle());
        let expect = client.denied(Access::ASSIGN_POWER);
        let status = NtStatus::ACCESS_DENIED;
        let c = |i| connector(handle, i);
        client.assert_unchanged_by(|| {
            // An attached sink: the request Windows would take, had the access been granted.
            assert_refused(pm.assign_power_level(h, c(0), mw(4_500)), &expect, status);
            // Access is checked first: a source connector, an unknown connector and an
            // unknown hub are denied the same way.
            assert_refused(pm.assign_power_level(h, c(1), mw(1)), &expect, status);
            assert_refused(pm.assign_power_level(h, c(7), mw(1)), &expect, status);
            let unknown_hub = connector(HubId(99), 0);
            assert_refused(
                pm.assign_power_level(h, unknown_hub, mw(1)),
                &expect,
                status,
            );
            assert_eq!(
                client.port.power_requests(),
                [],
                "the hardware sees no request"
            );
        });
        client.finish();
    });
}

#[test]
fn client_handles_that_are_not_live_are_refused_by_every_call() {
    let Scene {
        pm,
        log,
        h: live,
        port,
    } = recorder_then_hub(HubId(1), vec![attached(5_000)]);
    let handle = port.handle();
    let gone = pm.register(silent()).unwrap();
    assert_eq!(pm.deregister(gone), Ok(()));
    let forged = forged();
    assert_unchanged_by(&pm, &[&log], live, &[handle], || {
        for (h, expect) in [
            (gone, Error::StaleHandle(gone)),
            (forged, Error::UnknownHandle(forged)),
        ] {
            assert_every_call_refused(&pm, h, handle, &expect, NtStatus::INVALID_HANDLE);
        }
        assert_eq!(port.power_requests(), []);
    });
    remove_then_deregister(&pm, port, [live]);
}

// ---------------------------------------------------------------------------------------
// Hub handles: valid until the hub's removal has been delivered.

#[test]
fn a_hub_handle_is_stale_once_its_removal_is_delivered_and_after_the_hub_returns() {
    let hub = HubId(6);
    let Scene { pm, log, h, port } = recorder_then_hub(hub, vec![attached(3_000)]);
    let old = port.handle();
    assert_eq!(old, presence(hub, 1));
    port.remove();

    let stale = Error::StaleHubHandle(old);
    let invalid = NtStatus::INVALID_HANDLE;
    assert_unchanged_by(&pm, &[&log], h, &[], || {
        assert_every_call_refused(&pm, h, old, &stale, invalid);
    });
    assert!(stale.to_string().contains("stale"), "{stale}");

    // The hub comes back: a new presence, the old handle still stale.
    let port = pm.hub_arrival(hub, vec![detached()]).unwrap();
    let new = port.handle();
    assert_eq!(new, presence(hub, 2));
    assert_eq!(
        snapshot(&log).last(),
        Some(&arrival(new, 0, hub_info(hub, &[detached()])))
    );
    assert_unchanged_by(&pm, &[&log], h, &[new], || {
        assert_every_call_refused(&pm, h, old, &stale, invalid);
        // A presence the hub has not reached, or 0, is unknown.
        let unknown = Error::UnknownHub(hub);
        for p in [0, 3, 1_000] {
            assert_every_call_refused(&pm, h, presence(hub, p), &unknown, NtStatus::NOT_FOUND);
        }
        assert_eq!(port.power_requests(), []);
    });

    // The new handle works.
    assert_eq!(pm.hub_properties(h, new), Ok(hub_info(hub, &[detached()])));
    assert_eq!(pm.hub_connectors(h, new), Ok(vec![connector(new, 0)]));
    port.connector_changed(ConnectorId(0), attached(1)).unwrap();
    assert_eq!(
        pm.connector_state(h, connector(new, 0)).unwrap().state,
        attached(1)
    );
    assert_eq!(pm.assign_power_level(h, connector(new, 0), mw(500)), Ok(()));
    assert_eq!(the_request(&port).connector, connector(new, 0));
    remove_then_deregister(&pm, port, [h]);
}

#[test]
fn queries_inside_the_hub_removal_callback_see_the_hub() {
    type Seen = Vec<(
        ClientHandle,
        Result<HubInfo, Error>,
        Result<Vec<ConnectorHandle>, Error>,
        Result<usbpm::ConnectorInfo, Error>,
        Result<(), Error>,
    )>;
    watchdog("queries inside HubRemoval", || {
        let pm = PolicyManager::new();
        let seen: Arc<Mutex<Seen>> = Arc::default();
        let querying = || {
            ClientConfig::with_handle(seen.clone(), |seen, pm, me, n| {
                if n.event == Event::HubRemoval {
                    let hub = n.hub.unwrap();
                    let c0 = connector(hub, 0);
                    seen.lock().unwrap().push((
                        me,
                        pm.hub_properties(me, hub),
                        pm.hub_connectors(me, hub),
                        pm.connector_state(me, c0),
                        pm.assign_power_level(me, c0, mw(1)),
                    ));
                }
            })
        };
        // Two clients: the handle stays valid until the removal reached both.
        let a = pm.register(querying()).unwrap();
        let b = pm.register(querying()).unwrap();
        let hub = HubId(2);
        let port = pm.hub_arrival(hub, vec![detached(), detached()]).unwrap();
        let handle = port.handle();
        port.connector_changed(ConnectorId(1), attached(20_000))
            .unwrap();
        port.remove();

        let left = hub_info(hub, &[detached(), attached(20_000)]);
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 2);
        for (i, (me, info, connectors, state, power)) in seen.into_iter().enumerate() {
            assert_eq!(me, [a, b][i]);
            assert_eq!(info, Ok(left.clone()), "the hub as it left");
            assert_eq!(
                connectors,
                Ok(vec![connector(handle, 0), connector(handle, 1)])
            );
            assert_eq!(state, Ok(left.connectors[0].clone()));
            // Power for a leaving hub is refused: its removal is queued.
            assert_eq!(power, Err(Error::StaleHubHandle(handle)));
        }
        // Delivered: stale from here on.
        assert_eq!(
            pm.hub_properties(a, handle),
            Err(Error::StaleHubHandle(handle))
        );
        deregister_all(&pm, [a, b]);
    });
}

/// The hub arrives again while its previous presence's removal is still being delivered:
/// the old handle stays valid (showing the old presence) until that delivery is done.
#[test]
fn a_leaving_presence_stays_queryable_while_the_hub_already_returned() {
    struct Ctx {
        gate: Gate,
        inside: Mutex<Vec<Result<HubInfo, Error>>>,
    }
    watchdog("old handle during re-arrival", || {
        let pm = PolicyManager::new();
        let observer = Observer::new(&pm);
        let hub = HubId(3);
        let port = pm.hub_arrival(hub, vec![attached(1)]).unwrap();
        let old = port.handle();
        let (gate, control) = gate();
        let ctx = Arc::new(Ctx {
            gate,
            inside: Mutex::default(),
        });
        let h = pm
            .register(ClientConfig::with_handle(ctx.clone(), |ctx, pm, me, n| {
                if n.event == Event::HubRemoval && n.hub.unwrap().presence == 1 {
                    let hub = n.hub.unwrap();
                    ctx.inside.lock().unwrap().push(pm.hub_properties(me, hub));
                    ctx.gate.block();
                    ctx.inside.lock().unwrap().push(pm.hub_properties(me, hub));
                }
            }))
            .unwrap();
        let new = thread::scope(|s| {
            let removing = s.spawn(move || port.remove());
            control.wait_entered();
            let pm2 = pm.clone();
            let arriving = s.spawn(move || pm2.hub_arrival(hub, vec![sourcing(2)]).unwrap());
            wait_until("the hub has arrived again", || {
                observer.hub(presence(hub, 2)).is_ok()
            });
            // The new presence is there; the old one is still being removed.
            let old_meanwhile = observer.hub(old);
            control.release();
            removing.join().unwrap();
            let port = arriving.join().unwrap();
            assert_eq!(old_meanwhile, Ok(hub_info(hub, &[attached(1)])));
            port
        });
        let left = Ok(hub_info(hub, &[attached(1)]));
        assert_eq!(*ctx.inside.lock().unwrap(), [left.clone(), left]);
        assert_eq!(observer.hub(old), Err(Error::StaleHubHandle(old)));
        assert_eq!(new.handle(), presence(hub, 2));
        assert_eq!(observer.port(&new), hub_info(hub, &[sourcing(2)]));
        remove_then_deregister(&pm, new, [h]);
    });
}

// ---------------------------------------------------------------------------------------
// Power levels: the request, the hardware's answer, the change every client hears.

/// What the clients of [`assigning`] got back from `assign_power_level`.
type Results = Arc<Mutex<Vec<Result<(), Error>>>>;

/// A client that assigns half the partner's advertised power to every sink connector
/// that attaches (once per partner), from inside its callback.
fn assigning(results: &Results) -> ClientConfig {
    ClientConfig::with_handle(results.clone(), |results, pm, me, n| {
        let Event::ConnectorStateChange { state, .. } = &n.event else {
            return;
        };
        let c = n.connector_handle().unwrap();
        let now = pm.connector_state(me, c).unwrap();
        if state.attached && now.assigned_power.is_none() {
            let level = mw(state.partner_max_milliwatts / 2);
            results
                .lock()
                .unwrap()
                .push(pm.assign_power_level(me, c, level));
        }
    })
}

/// Registers an [`assigning`] client: what its requests got back, and its handle.
fn register_assigning(pm: &PolicyManager) -> (Results, ClientHandle) {
    let results = Results::default();
    let h = pm.register(assigning(&results)).unwrap();
    (results, h)
}

#[test]
fn a_power_request_made_in_a_callback_and_accepted_reaches_every_client() {
    watchdog("power request round trip", || {
        let pm = PolicyManager::new();
        let (results, driver) = register_assigning(&pm);
        // Clients of every access: each hears the change.
        let clients = register_recorders_of_every_access(&pm);
        let hub = HubId(1);
        let port = pm.hub_arrival(hub, vec![detached(), detached()]).unwrap();
        let handle = port.handle();
        port.connector_changed(ConnectorId(1), attached(60_000))
            .unwrap(); // seq 1
        assert_eq!(*results.lock().unwrap(), [Ok(())], "passed to the hardware");
        // Asynchronous: nothing has changed yet.
        assert_eq!(assigned_power(&pm, driver, connector(handle, 1)), None);
        let requests = port.power_requests();
        assert_eq!(
            requests,
            [PowerRequest {
                client: driver,
                connector: connector(handle, 1),
                level: mw(30_000),
                attach_count: 1,
            }]
        );
        assert_eq!(port.power_requests(), [], "taken once");

        assert_eq!(port.answer(requests[0].clone(), true), Ok(true)); // seq 2
        let expected = vec![
            arrival(hub, 0, hub_info(hub, &[detached(), detached()])),
            change(hub, 1, 1, attached(60_000)),
            change(hub, 2, 1, attached(60_000)),
        ];
        for (log, _, _) in &clients {
            assert_eq!(snapshot(log), expected);
        }
        let c1 = pm.connector_state(driver, connector(handle, 1)).unwrap();
        assert_eq!(c1.assigned_power, Some(mw(30_000)));
        assert_eq!(c1.attach_count, 1);
        assert_eq!(c1.state, attached(60_000));
        assert_eq!(assigned_power(&pm, driver, connector(handle, 0)), None);
        assert_eq!(
            results.lock().unwrap().len(),
            1,
            "assigned once per partner"
        );

        // A late client's arrival shows the level.
        let (late, late_h) = register_recorder(&pm);
        let mut info = hub_info(hub, &[detached(), attached(60_000)]);
        info.connectors[1].assigned_power = Some(mw(30_000));
        assert_eq!(snapshot(&late), [arrival(hub, 2, info)]);

        let recorders = clients.iter().map(|(_, h, _)| *h);
        remove_then_deregister(&pm, port, recorders.chain([late_h, driver]));
    });
}

/// The whole round trip inside callbacks: one client requests, the hardware (another
/// client's callback, standing in for the port's owner) answers from inside its own
/// callback, and every client hears the change before the outermost call returns.
#[test]
fn a_power_request_answered_from_inside_a_callback_is_delivered_before_the_call_returns() {
    watchdog("power answered inside a callback", || {
        let pm = PolicyManager::new();
        let (results, driver) = register_assigning(&pm);
        let port: Arc<OnceLock<HubPort>> = Arc::default();
        let answers: Arc<Mutex<Vec<Result<bool, Error>>>> = Arc::default();
        // Registered after the driver, so it hears each change after the driver did.
        let hardware = pm
            .register(ClientConfig::new(
                (port.clone(), answers.clone()),
                |(port, answers), _, n| {
                    if let Some(port) = port.get().filter(|_| is_change(n)) {
                        for r in port.power_requests() {
                            answers.lock().unwrap().push(port.answer(r, true));
                        }
                    }
                },
            ))
            .unwrap();
        let (log, observer) = register_recorder_with(&pm, Access::NONE);
        let hub = HubId(8);
        port.set(pm.hub_arrival(hub, vec![detached()]).unwrap())
            .unwrap();
        let p = port.get().unwrap();
        p.connector_changed(ConnectorId(0), attached(10_000))
            .unwrap();
        assert_eq!(*results.lock().unwrap(), [Ok(())]);
        assert_eq!(*answers.lock().unwrap(), [Ok(true)]);
        assert_eq!(
            snapshot(&log),
            [
                arrival(hub, 0, hub_info(hub, &[detached()])),
                change(hub, 1, 0, attached(10_000)),
                change(hub, 2, 0, attached(10_000)),
            ],
            "the accepted level's change, delivered before connector_changed returned"
        );
        assert_eq!(
            assigned_power(&pm, driver, connector(p.handle(), 0)),
            Some(mw(5_000))
        );
        deregister_all(&pm, [driver, hardware, observer]);
    });
}

/// The answer tests' set-up: a [`Scene`] on `hub` with a sink on connector 0 whose
/// partner offers 20 W, and the client's request of `level` for it, as the hardware got it.
fn sink_asked_for(hub: HubId, level: PowerLevel) -> (Scene, PowerRequest) {
    let scene = recorder_then_hub(hub, vec![attached(20_000)]);
    let c0 = connector(scene.port.handle(), 0);
    assert_eq!(scene.pm.assign_power_level(scene.h, c0, level), Ok(()));
    let request = the_request(&scene.port);
    (scene, request)
}

#[test]
fn a_rejected_power_request_produces_nothing() {
    let hub = HubId(1);
    let (Scene { pm, log, h, port }, request) = sink_asked_for(hub, mw(10_000));
    let c0 = connector(port.handle(), 0);
    assert_unchanged_by(&pm, &[&log], h, &[port.handle()], || {
        assert_eq!(port.answer(request, false), Ok(false));
    });
    assert_eq!(assigned_power(&pm, h, c0), None);
    // No seq was consumed.
    assert_hears_change(&port, &log, hub, 1, attached(1));
    remove_then_deregister(&pm, port, [h]);
}

#[test]
fn a_power_request_for_a_source_or_a_detached_connector_is_refused() {
    let states = vec![sourcing(5_000), detached(), attached(3_000)];
    let Scene { pm, log, h, port } = recorder_then_hub(HubId(1), states);
    let handle = port.handle();
    let status = NtStatus::INVALID_DEVICE_STATE;
    let (source, empty) = (connector(handle, 0), connector(handle, 1));
    let refusal = |connector, attached| Error::PowerRequestRefused {
        connector,
        attached,
    };
    assert_unchanged_by(&pm, &[&log], h, &[handle], || {
        let to_source = pm.assign_power_level(h, source, mw(1_000));
        assert_refused(to_source, &refusal(source, true), status);
        let refused = refusal(empty, false);
        assert_refused(pm.assign_power_level(h, empty, mw(1_000)), &refused, status);
        assert!(
            refused.to_string().contains("no partner attached"),
            "{refused}"
        );
        assert_eq!(status.name(), "STATUS_INVALID_DEVICE_STATE");
        assert_eq!(port.power_requests(), [], "nothing reached the hardware");
    });

    // The attached sink beside them may be assigned.
    assert_eq!(
        pm.assign_power_level(h, connector(handle, 2), mw(1_000)),
        Ok(())
    );
    assert_eq!(port.power_requests().len(), 1);
    remove_then_deregister(&pm, port, [h]);
}

#[test]
fn an_accepted_answer_for_a_partner_that_left_produces_nothing() {
    let hub = HubId(1);
    // The partner detaches before the answer.
    let (Scene { pm, log, h, port }, request) = sink_asked_for(hub, mw(10_000));
    let c0 = connector(port.handle(), 0);
    assert_eq!(request.attach_count, 1);
    port.connector_changed(ConnectorId(0), detached()).unwrap(); // seq 1
    assert_unchanged_by(&pm, &[&log], h, &[port.handle()], || {
        assert_eq!(port.answer(request, true), Ok(false));
    });

    // Another partner attaches before the answer: a different attach count.
    port.connector_changed(ConnectorId(0), attached(15_000))
        .unwrap(); // seq 2
    assert_eq!(pm.connector_state(h, c0).unwrap().attach_count, 2);
    assert_eq!(pm.assign_power_level(h, c0, mw(7_000)), Ok(()));
    let asked_of_second = the_request(&port);
    port.connector_changed(ConnectorId(0), detached()).unwrap(); // seq 3
    port.connector_changed(ConnectorId(0), attached(15_000))
        .unwrap(); // seq 4: a third
    let stale = PowerRequest {
        attach_count: 1,
        ..asked_of_second.clone()
    };
    assert_unchanged_by(&pm, &[&log], h, &[port.handle()], || {
        assert_eq!(port.answer(stale, true), Ok(false), "the first partner's");
        assert_eq!(
            port.answer(asked_of_second, true),
            Ok(false),
            "the second partner's"
        );
    });
    let c = pm.connector_state(h, c0).unwrap();
    assert_eq!((c.assigned_power, c.attach_count), (None, 3));

    // The third partner's own request is taken.
    assert_eq!(pm.assign_power_level(h, c0, mw(7_500)), Ok(()));
    let third = the_request(&port);
    assert_eq!(third.attach_count, 3);
    assert_eq!(port.answer(third, true), Ok(true));
    assert_eq!(
        snapshot(&log).last(),
        Some(&change(hub, 5, 0, attached(15_000)))
    );
    assert_eq!(assigned_power(&pm, h, c0), Some(mw(7_500)));
    remove_then_deregister(&pm, port, [h]);
}

#[test]
fn a_power_request_of_a_removed_presence_is_answered_with_nothing() {
    let hub = HubId(1);
    let (Scene { pm, log, h, port }, old) = sink_asked_for(hub, mw(1));
    port.remove();
    let port = pm.hub_arrival(hub, vec![attached(20_000)]).unwrap();
    assert_unchanged_by(&pm, &[&log], h, &[port.handle()], || {
        assert_eq!(port.answer(old, true), Ok(false));
    });
    remove_then_deregister(&pm, port, [h]);
}

#[test]
fn detaching_clears_the_assigned_power_and_attaching_counts_partners() {
    let hub = HubId(1);
    let Scene { pm, h, port, .. } = recorder_then_hub(hub, vec![attached(20_000), detached()]);
    let (c0, c1) = (connector(port.handle(), 0), connector(port.handle(), 1));
    let state = |c| pm.connector_state(h, c).unwrap();
    assert_eq!(state(c0).attach_count, 1, "attached at arrival");
    assert_eq!(state(c1).attach_count, 0);

    assert_eq!(pm.assign_power_level(h, c0, mw(9_000)), Ok(()));
    for r in port.power_requests() {
        assert_eq!(port.answer(r, true), Ok(true));
    }
    assert_eq!(state(c0).assigned_power, Some(mw(9_000)));
    // The same partner advertising something else: still the same partner.
    port.connector_changed(ConnectorId(0), attached(25_000))
        .unwrap();
    let c = state(c0);
    assert_eq!((c.assigned_power, c.attach_count), (Some(mw(9_000)), 1));

    port.connector_changed(ConnectorId(0), detached()).unwrap();
    let c = state(c0);
    assert_eq!((c.assigned_power, c.attach_count), (None, 1));
    port.connector_changed(ConnectorId(0), attached(20_000))
        .unwrap();
    let c = state(c0);
    assert_eq!(
        (c.assigned_power, c.attach_count),
        (None, 2),
        "a new partner"
    );
    port.connector_changed(ConnectorId(1), sourcing(1)).unwrap();
    assert_eq!(state(c1).attach_count, 1);

    let (late, late_h) = register_recorder(&pm);
    assert_eq!(
        snapshot(&late),
        [arrival(
            hub,
            5,
            with_attach_counts(hub_info(hub, &[attached(20_000), sourcing(1)]), &[2, 1])
        )]
    );
    remove_then_deregister(&pm, port, [h, late_h]);
}

// ---------------------------------------------------------------------------------------
// The Policy Manager's removal.

#[test]
fn after_shutdown_every_client_heard_the_removal_last_and_hears_nothing_more() {
    watchdog("shutdown", || {
        let pm = PolicyManager::new();
        let clients = register_recorders_of_every_access(&pm);
        let hub = HubId(1);
        let port = pm.hub_arrival(hub, vec![detached()]).unwrap();
        port.connector_changed(ConnectorId(0), attached(1)).unwrap();
        assert_eq!(pm.shutdown(), Ok(()));
        let each_heard_exactly_this = |what: &str| {
            for (log, _, access) in &clients {
                let heard = [
                    pm_arrival(*access),
                    arrival(hub, 0, hub_info(hub, &[detached()])),
                    change(hub, 1, 0, attached(1)),
                    pm_removal(),
                ];
                assert_eq!(snapshot_all(log), heard, "{what}");
            }
        };
        each_heard_exactly_this("its arrival, the hub's events, its removal");

        // The hardware keeps reporting; nothing reaches anybody.
        assert_eq!(port.connector_changed(ConnectorId(0), attached(2)), Ok(()));
        assert_eq!(port.connector_changed(ConnectorId(0), detached()), Ok(()));
        port.remove();
        each_heard_exactly_this("nothing after the removal");
        assert_eq!(pm.client_count(), clients.len(), "still registered");
        deregister_all(&pm, clients.iter().map(|(_, h, _)| *h));
        assert_eq!(pm.client_count(), 0);
    });
}

#[test]
fn calls_after_shutdown_are_refused_with_device_removed_but_deregister_works() {
    let pm = PolicyManager::new();
    let (log, h) = register_recorder(&pm);
    let reg = pm.register_owned(silent()).unwrap();
    let port = pm.hub_arrival(HubId(1), vec![attached(5_000)]).unwrap();
    let handle = port.handle();
    assert_eq!(pm.shutdown(), Ok(()));
    let heard = snapshot_all(&log);
    assert_eq!(heard.last(), Some(&pm_removal()));

    let expect = Error::PolicyManagerRemoved;
    let status = NtStatus::DEVICE_REMOVED;
    let context = Arc::new(());
    assert_refused(
        pm.register(ClientConfig::new(context.clone(), |_, _, _| {})),
        &expect,
        status,
    );
    assert_refused(pm.register_owned(silent()), &expect, status);
    assert_eq!(
        Arc::strong_count(&context),
        1,
        "the refused config was dropped"
    );
    assert_refused(pm.hub_arrival(HubId(2), vec![detached()]), &expect, status);
    assert_every_call_refused(&pm, h, handle, &expect, status);
    // Even with a handle that is not live: the shutdown is checked first.
    let forged = forged();
    assert_refused(pm.hub_properties(forged, handle), &expect, status);
    assert_refused(pm.shutdown(), &expect, status);
    assert_eq!(status.name(), "STATUS_DEVICE_REMOVED");
    assert_eq!(port.power_requests(), []);
    assert_eq!(snapshot_all(&log), heard, "the refusals changed nothing");
    assert_eq!(pm.client_count(), 2);

    // Deregister works as ever.
    assert_eq!(pm.deregister(h), Ok(()));
    assert_eq!(pm.deregister(h), Err(Error::StaleHandle(h)));
    assert_eq!(pm.deregister(forged), Err(Error::UnknownHandle(forged)));
    match reg.deregister() {
        Ok(()) => {}
        Err((e, _)) => panic!("Registration::deregister after shutdown: {e}"),
    }
    assert_eq!(pm.client_count(), 0);
    drop(port);
    assert_eq!(snapshot_all(&log), heard);
}

#[test]
fn shutdown_from_inside_a_callback_is_refused_and_changes_nothing() {
    watchdog("shutdown inside a callback", || {
        let pm = PolicyManager::new();
        let refused: Arc<Mutex<Vec<Result<(), Error>>>> = Arc::default();
        let h = pm
            .register(ClientConfig::new(refused.clone(), |refused, pm, n| {
                if n.event != Event::PolicyManagerRemoval {
                    refused.lock().unwrap().push(pm.shutdown());
                }
            }))
            .unwrap();
        let (log, other) = register_recorder(&pm);
        let hub = HubId(1);
        let port = pm.hub_arrival(hub, vec![detached()]).unwrap();
        port.connector_changed(ConnectorId(0), attached(1)).unwrap();

        let refused = refused.lock().unwrap().clone();
        assert_eq!(refused.len(), 3, "its arrival, the hub's, the change");
        for r in refused {
            assert_refused(
                r,
                &Error::ShutdownInsideCallback,
                NtStatus::POSSIBLE_DEADLOCK,
            );
        }
        // Nothing changed: events flow, calls work, nobody heard a removal.
        assert_eq!(
            snapshot_all(&log),
            [
                pm_arrival(Access::ALL),
                arrival(hub, 0, hub_info(hub, &[detached()])),
                change(hub, 1, 0, attached(1)),
            ]
        );
        assert_eq!(
            pm.hub_properties(other, port.handle()),
            Ok(hub_info(hub, &[attached(1)]))
        );
        let late = pm.register(silent()).unwrap();
        assert_eq!(pm.deregister(late), Ok(()));

        // From outside it works.
        assert_eq!(pm.shutdown(), Ok(()));
        assert_eq!(snapshot_all(&log).last(), Some(&pm_removal()));
        remove_then_deregister(&pm, port, [h, other]);
    });
}

/// A hub's callback is running on another thread when shutdown begins: that client's
/// removal comes after the callback returned, and shutdown returns only after every
/// removal was delivered.
#[test]
fn shutdown_delivers_the_removal_after_a_running_callback_returns() {
    struct Ctx {
        gate: Gate,
        blocked: AtomicBool,
        log: Log,
        /// Calls of this client's callback that are running (never more than one).
        active: AtomicUsize,
        overlapped: AtomicBool,
    }
    watchdog("shutdown during a callback", || {
        let pm = PolicyManager::new();
        let (first, a) = register_recorder(&pm);
        let (gate, control) = gate();
        let ctx = Arc::new(Ctx {
            gate,
            blocked: AtomicBool::new(false),
            log: new_log(),
            active: AtomicUsize::new(0),
            overlapped: AtomicBool::new(false),
        });
        let b = pm
            .register(ClientConfig::new(ctx.clone(), |ctx, _, n| {
                if ctx.active.fetch_add(1, Ordering::SeqCst) != 0 {
                    ctx.overlapped.store(true, Ordering::SeqCst);
                }
                if is_change(n) && !ctx.blocked.swap(true, Ordering::SeqCst) {
                    ctx.gate.block();
                }
                ctx.log.lock().unwrap().push(n.clone());
                ctx.active.fetch_sub(1, Ordering::SeqCst);
            }))
            .unwrap();
        let (last, c) = register_recorder(&pm);
        let port = pm.hub_arrival(HubId(1), vec![detached()]).unwrap();
        let shut_down = AtomicBool::new(false);
        thread::scope(|s| {
            let port = &port;
            let reporting = s.spawn(move || port.connector_changed(ConnectorId(0), attached(1)));
            control.wait_entered();
            let shutting = spawn_shutdown(s, &pm, &shut_down);
            // The first client (before b) has heard the removal: shutdown has begun.
            wait_until("the first client heard the removal", || {
                snapshot_all(&first).last() == Some(&pm_removal())
            });
            assert!(
                !shut_down.load(Ordering::SeqCst),
                "returned before b's removal"
            );
            assert!(
                !snapshot_all(&ctx.log).contains(&pm_removal()),
                "b's removal while its callback runs"
            );
            control.release();
            assert_eq!(shutting.join().unwrap(), Ok(()));
            assert_eq!(reporting.join().unwrap(), Ok(()));
        });
        assert!(
            !ctx.overlapped.load(Ordering::SeqCst),
            "two calls of b at once"
        );
        let b_heard = snapshot_all(&ctx.log);
        assert_eq!(b_heard.last(), Some(&pm_removal()), "{b_heard:?}");
        assert!(
            b_heard.iter().any(is_change),
            "the blocked change came first"
        );
        for log in [&first, &ctx.log, &last] {
            let events = snapshot_all(log);
            check_per_hub(&events).unwrap();
            assert_eq!(events.last(), Some(&pm_removal()));
        }
        // Nothing after it.
        let before: Vec<_> = [&first, &ctx.log, &last].map(snapshot_all).into();
        port.connector_changed(ConnectorId(0), detached()).unwrap();
        drop(port);
        let after: Vec<_> = [&first, &ctx.log, &last].map(snapshot_all).into();
        assert_eq!(after, before);
        deregister_all(&pm, [a, b, c]);
    });
}

// ---------------------------------------------------------------------------------------
// The callback's own handle.

/// The handles a [`noting_its_handle`] client's callback was given.
type Seen = Arc<Mutex<Vec<ClientHandle>>>;

/// A client whose callback notes, in `seen`, the handle it is given.
fn noting_its_handle(seen: &Seen) -> ClientConfig {
    ClientConfig::with_handle(seen.clone(), |seen, _, me, _| {
        seen.lock().unwrap().push(me);
    })
}

#[test]
fn with_handle_gives_each_callback_its_own_handle() {
    watchdog("with_handle", || {
        let pm = PolicyManager::new();
        let port = pm.hub_arrival(HubId(1), vec![detached()]).unwrap();
        let (sa, sb): (Seen, Seen) = Default::default();
        let a = pm.register(noting_its_handle(&sa)).unwrap();
        let b = pm.register(noting_its_handle(&sb)).unwrap();
        assert_ne!(a, b);
        // The arrivals came before register returned, already with the handle.
        assert_eq!(*sa.lock().unwrap(), [a, a]);
        assert_eq!(*sb.lock().unwrap(), [b, b]);

        // A client registered inside a callback: its callback's handle is the one
        // register returned there.
        let inner_seen: Seen = Seen::default();
        let inner: Arc<OnceLock<ClientHandle>> = Arc::default();
        let registrar = pm
            .register(ClientConfig::with_handle(
                (inner_seen.clone(), inner.clone()),
                move |(seen, inner), pm, me, n| {
                    assert_ne!(me, a);
                    if is_change(n) && inner.get().is_none() {
                        inner
                            .set(pm.register(noting_its_handle(seen)).unwrap())
                            .unwrap();
                    }
                },
            ))
            .unwrap();
        port.connector_changed(ConnectorId(0), attached(1)).unwrap();
        let inner = *inner.get().unwrap();
        assert_eq!(
            *inner_seen.lock().unwrap(),
            [inner, inner],
            "its arrival and the replay"
        );
        port.connector_changed(ConnectorId(0), detached()).unwrap();
        assert_eq!(sa.lock().unwrap().len(), 4);
        assert!(sa.lock().unwrap().iter().all(|&h| h == a));
        assert!(sb.lock().unwrap().iter().all(|&h| h == b));
        assert!(inner_seen.lock().unwrap().iter().all(|&h| h == inner));
        assert_eq!(pm.panicked_callbacks(), 0);
        deregister_all(&pm, [a, b, registrar, inner]);
    });
}

// ---------------------------------------------------------------------------------------
// The Policy Manager's events and the calls made from inside them.

/// While a client's Policy Manager arrival is running, hubs change and arrive on other
/// threads without waiting for it, and none of their events reaches the client before
/// its arrival returned: it then hears each hub once, in its current state.
#[test]
fn no_hub_event_reaches_a_client_before_its_arrival_returned() {
    struct Ctx {
        gate: Gate,
        log: Log,
        arrived: AtomicBool,
        early: AtomicUsize,
    }
    watchdog("hub events during the Policy Manager arrival", || {
        let pm = PolicyManager::new();
        let observer = Observer::new(&pm);
        let (h1, h2) = (HubId(1), HubId(2));
        let p1 = pm.hub_arrival(h1, vec![detached()]).unwrap();
        let (gate, control) = gate();
        let ctx = Arc::new(Ctx {
            gate,
            log: new_log(),
            arrived: AtomicBool::new(false),
            early: AtomicUsize::new(0),
        });
        let config = ClientConfig::new(ctx.clone(), |ctx, _, n| {
            if matches!(n.event, Event::PolicyManagerArrival { .. }) {
                ctx.gate.block();
                ctx.arrived.store(true, Ordering::SeqCst);
            } else if !ctx.arrived.load(Ordering::SeqCst) {
                ctx.early.fetch_add(1, Ordering::SeqCst);
            }
            ctx.log.lock().unwrap().push(n.clone());
        });
        let (h, p2) = thread::scope(|s| {
            let registering = s.spawn(|| pm.register(config).unwrap());
            control.wait_entered();
            // Neither waits for the blocked arrival.
            p1.connector_changed(ConnectorId(0), attached(1)).unwrap();
            let p2 = pm.hub_arrival(h2, vec![sourcing(2)]).unwrap();
            p2.connector_changed(ConnectorId(0), detached()).unwrap();
            assert_eq!(
                snapshot_all(&ctx.log),
                [],
                "nothing before the arrival returned"
            );
            assert_eq!(pm.client_count(), 2, "registered meanwhile");
            control.release();
            (registering.join().unwrap(), p2)
        });
        assert_eq!(ctx.early.load(Ordering::SeqCst), 0);
        assert_arrival_then_replays(
            &snapshot_all(&ctx.log),
            Access::ALL,
            &[
                arrival(h1, 1, hub_info(h1, &[attached(1)])),
                arrival(h2, 1, with_attach_counts(hub_info(h2, &[detached()]), &[1])),
            ],
        );
        assert_eq!(observer.port(&p2).connectors[0].attach_count, 1);
        assert_hears_change(&p2, &ctx.log, h2, 2, attached(3));
        check_per_hub(&snapshot_all(&ctx.log)).unwrap();
        drop((p1, p2));
        assert_eq!(pm.deregister(h), Ok(()));
    });
}

/// A hub that arrives from inside a client's Policy Manager arrival reaches that client
/// once (as a replay after its arrival returned) and the other clients as usual.
#[test]
fn a_hub_arriving_inside_a_policy_manager_arrival_reaches_the_client_once() {
    watchdog("hub arrival inside the Policy Manager arrival", || {
        let pm = PolicyManager::new();
        let (other, o) = register_recorder(&pm);
        let log = new_log();
        let port: Arc<Mutex<Option<Result<HubPort, Error>>>> = Arc::default();
        let h = pm
            .register(ClientConfig::new(
                (log.clone(), port.clone()),
                |(log, port), pm, n| {
                    log.lock().unwrap().push(n.clone());
                    if matches!(n.event, Event::PolicyManagerArrival { .. }) {
                        *port.lock().unwrap() = Some(pm.hub_arrival(HubId(5), vec![detached()]));
                    }
                },
            ))
            .unwrap();
        let port = port
            .lock()
            .unwrap()
            .take()
            .unwrap()
            .expect("hub_arrival inside a callback");
        let hub = HubId(5);
        let first = arrival(hub, 0, hub_info(hub, &[detached()]));
        assert_eq!(snapshot_all(&log), [pm_arrival(Access::ALL), first.clone()]);
        assert_eq!(snapshot(&other), [first]);
        port.connector_changed(ConnectorId(0), attached(1)).unwrap();
        drop(port);
        for log in [&log, &other] {
            assert_eq!(
                snapshot(log)[1..],
                [change(hub, 1, 0, attached(1)), removal(hub, 2)]
            );
        }
        deregister_all(&pm, [h, o]);
    });
}

/// Inside its `PolicyManagerRemoval` a client may still deregister other clients (which
/// then hear no removal); every other call is refused, and shutdown with
/// `ShutdownInsideCallback` (the call is inside a callback).
#[test]
fn calls_inside_the_policy_manager_removal() {
    #[derive(Default)]
    struct Ctx {
        victim: OnceLock<ClientHandle>,
        hub: OnceLock<HubHandle>,
        results: Mutex<Vec<(&'static str, Result<(), Error>)>>,
    }
    watchdog("calls inside PolicyManagerRemoval", || {
        let pm = PolicyManager::new();
        let ctx = Arc::new(Ctx::default());
        let killer = pm
            .register(ClientConfig::with_handle(ctx.clone(), |ctx, pm, me, n| {
                if n.event != Event::PolicyManagerRemoval {
                    return;
                }
                let hub = *ctx.hub.get().unwrap();
                let mut results = ctx.results.lock().unwrap();
                results.push(("hub_properties", pm.hub_properties(me, hub).map(drop)));
                results.push(("register", pm.register(silent()).map(drop)));
                results.push(("shutdown", pm.shutdown()));
                results.push(("deregister self", pm.deregister(me)));
                results.push((
                    "deregister victim",
                    pm.deregister(*ctx.victim.get().unwrap()),
                ));
            }))
            .unwrap();
        let (victim_log, victim) = register_recorder(&pm);
        ctx.victim.set(victim).unwrap();
        let port = pm.hub_arrival(HubId(1), vec![detached()]).unwrap();
        ctx.hub.set(port.handle()).unwrap();
        assert_eq!(pm.shutdown(), Ok(()));
        let results = ctx.results.lock().unwrap().clone();
        assert_eq!(
            results,
            [
                ("hub_properties", Err(Error::PolicyManagerRemoved)),
                ("register", Err(Error::PolicyManagerRemoved)),
                ("shutdown", Err(Error::ShutdownInsideCallback)),
                (
                    "deregister self",
                    Err(Error::DeregisterFromOwnCallback(killer))
                ),
                ("deregister victim", Ok(())),
            ]
        );
        assert_eq!(
            snapshot_all(&victim_log).last().map(|n| &n.event),
            Some(&Event::HubArrival(hub_info(HubId(1), &[detached()]))),
            "deregistered before its removal: it hears none"
        );
        assert_eq!(pm.client_count(), 1);
        assert_eq!(pm.deregister(victim), Err(Error::StaleHandle(victim)));
        assert_eq!(pm.deregister(killer), Ok(()));
        drop(port);
    });
}

/// Shutdown while a client's Policy Manager arrival is still running: the client hears
/// its removal after its arrival returned, and no hub's replay at all.
#[test]
fn shutdown_while_an_arrival_runs_delivers_the_removal_after_it() {
    watchdog("shutdown during an arrival", || {
        let pm = PolicyManager::new();
        let port = pm.hub_arrival(HubId(1), vec![detached()]).unwrap();
        let (gate, control) = gate();
        let log = new_log();
        let config = ClientConfig::new((gate, log.clone()), |(gate, log), _, n| {
            log.lock().unwrap().push(n.clone());
            if matches!(n.event, Event::PolicyManagerArrival { .. }) {
                gate.block();
            }
        });
        let shut_down = AtomicBool::new(false);
        let h = thread::scope(|s| {
            let registering = s.spawn(|| pm.register(config));
            control.wait_entered();
            let shutting = spawn_shutdown(s, &pm, &shut_down);
            // Shutdown refuses calls at once (before it looks at the client handle),
            // then waits for the running arrival.
            let nobody = ClientHandle::from_raw(0);
            wait_until("shutdown has begun", || {
                pm.hub_properties(nobody, port.handle()) == Err(Error::PolicyManagerRemoved)
            });
            assert!(
                !shut_down.load(Ordering::SeqCst),
                "returned during the arrival"
            );
            control.release();
            assert_eq!(shutting.join().unwrap(), Ok(()));
            registering.join().unwrap()
        });
        let h = h.expect("registered before the shutdown");
        assert_eq!(snapshot_all(&log), [pm_arrival(Access::ALL), pm_removal()]);
        port.connector_changed(ConnectorId(0), attached(1)).unwrap();
        drop(port);
        assert_eq!(snapshot_all(&log), [pm_arrival(Access::ALL), pm_removal()]);
        assert_eq!(pm.deregister(h), Ok(()));
    });
}

/// A hub that arrives again from inside a callback of its own removal: the clients after
/// it still see the leaving presence in their removal, then the new presence arrives.
#[test]
fn a_hub_arriving_again_inside_its_own_removal() {
    type Seen = Arc<Mutex<Vec<(HubHandle, Result<HubInfo, Error>)>>>;
    watchdog("re-arrival inside the removal", || {
        let pm = PolicyManager::new();
        let hub = HubId(4);
        let port2: Arc<Mutex<Option<HubPort>>> = Arc::default();
        let first = pm
            .register(ClientConfig::new(port2.clone(), move |port2, pm, n| {
                if n.event == Event::HubRemoval && n.hub.unwrap().presence == 1 {
                    *port2.lock().unwrap() = Some(pm.hub_arrival(hub, vec![sourcing(1)]).unwrap());
                }
            }))
            .unwrap();
        let seen: Seen = Seen::default();
        let log = new_log();
        let second = pm
            .register(ClientConfig::with_handle(
                (seen.clone(), log.clone()),
                |(seen, log), pm, me, n| {
                    log.lock().unwrap().push(n.clone());
                    if let Some(hub) = n.hub {
                        seen.lock().unwrap().push((hub, pm.hub_properties(me, hub)));
                    }
                },
            ))
            .unwrap();
        let port = pm.hub_arrival(hub, vec![detached()]).unwrap();
        let old = port.handle();
        port.remove();
        let new = port2
            .lock()
            .unwrap()
            .take()
            .expect("arrived inside the removal");
        assert_eq!(new.handle(), presence(hub, 2));
        let (one, two) = (hub_info(hub, &[detached()]), hub_info(hub, &[sourcing(1)]));
        assert_eq!(
            snapshot(&log),
            [
                arrival(old, 0, one.clone()),
                removal(old, 1),
                arrival(new.handle(), 0, two.clone()),
            ]
        );
        assert_eq!(
            *seen.lock().unwrap(),
            [
                (old, Ok(one.clone())),
                (old, Ok(one)),
                (new.handle(), Ok(two)),
            ]
        );
        assert_eq!(
            pm.hub_properties(second, old),
            Err(Error::StaleHubHandle(old))
        );
        remove_then_deregister(&pm, new, [first, second]);
    });
}

/// Shutdown in the middle of everything: hubs reporting from their threads, registrars
/// registering (some deregistering at once), and a callback registering clients from
/// inside. Every client hears the Policy Manager's arrival at most once and first; a
/// client still registered when shutdown returned heard either nothing at all (shutdown
/// overtook its arrival) or its removal last; and nothing reaches anybody afterwards.
#[test]
fn shutdown_racing_registrations_and_reports() {
    const HUBS: u32 = 2;
    const REGISTRARS: usize = 2;
    /// (handle, log, what the log held when its registrar's deregister returned)
    type Clients = Arc<Mutex<Vec<(ClientHandle, Log, Option<usize>)>>>;
    watchdog("shutdown racing everything", || {
        for round in 0..20 {
            let pm = PolicyManager::new();
            let clients: Clients = Arc::default();
            let spawner_log = new_log();
            let spawned = {
                let (clients, log) = (clients.clone(), spawner_log.clone());
                let count = AtomicUsize::new(0);
                pm.register(ClientConfig::new(
                    (clients, log, count),
                    |(clients, log, count), pm, n| {
                        log.lock().unwrap().push(n.clone());
                        if is_change(n) && count.fetch_add(1, Ordering::SeqCst) % 25 == 0 {
                            let inner = new_log();
                            if let Ok(h) = pm.register(recorder(&inner)) {
                                clients.lock().unwrap().push((h, inner, None));
                            }
                        }
                    },
                ))
                .unwrap()
            };
            clients.lock().unwrap().push((spawned, spawner_log, None));
            let ports: Vec<HubPort> = (1..=HUBS)
                .map(|i| pm.hub_arrival(HubId(i), vec![detached()]).unwrap())
                .collect();
            let stop = AtomicBool::new(false);
            let registered = AtomicUsize::new(0);
            let after_shutdown = thread::scope(|s| {
                for port in &ports {
                    let stop = &stop;
                    s.spawn(move || {
                        let mut k = 0;
                        while !stop.load(Ordering::SeqCst) {
                            k += 1;
                            port.connector_changed(ConnectorId(0), attached(k)).unwrap();
                        }
                    });
                }
                for r in 0..REGISTRARS {
                    let (pm, clients, registered) = (&pm, &clients, &registered);
                    s.spawn(move || {
                        for k in 0.. {
                            let log = new_log();
                            match pm.register(recorder(&log)) {
                                Ok(h) => {
                                    registered.fetch_add(1, Ordering::SeqCst);
                                    let mut gone = None;
                                    if (k + r) % 3 == 0 {
                                        assert_eq!(pm.deregister(h), Ok(()));
                                        gone = Some(snapshot_all(&log).len());
                                    }
                                    clients.lock().unwrap().push((h, log, gone));
                                }
                                Err(e) => {
                                    assert_eq!(e, Error::PolicyManagerRemoved);
                                    return;
                                }
                            }
                        }
                    });
                }
                wait_until("some registrations", || {
                    registered.load(Ordering::SeqCst) >= 10 + round
                });
                assert_eq!(pm.shutdown(), Ok(()));
                // Every log as shutdown left it (the registrars push theirs under the
                // lock after register returned; those not yet pushed were refused).
                let after: Vec<Vec<Notification>> = clients
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|(_, log, _)| snapshot_all(log))
                    .collect();
                stop.store(true, Ordering::SeqCst);
                after
            });
            let clients = clients.lock().unwrap().clone();
            // The hubs kept reporting until stopped, and report once more now.
            for port in &ports {
                port.connector_changed(ConnectorId(0), detached()).unwrap();
            }
            drop(ports);
            for ((h, log, _), after) in clients.iter().zip(&after_shutdown) {
                assert_eq!(
                    &snapshot_all(log),
                    after,
                    "{h} heard something after shutdown"
                );
            }
            for (h, log, gone) in &clients {
                let events = snapshot_all(log);
                check_per_hub(&events).unwrap_or_else(|e| panic!("{h}: {e}"));
                if let Err(e) = check_manager_events(&events) {
                    panic!("{h}: {e}: {events:?}");
                }
                match gone {
                    None => {
                        assert!(
                            events.is_empty() || events.last() == Some(&pm_removal()),
                            "{h} was registered throughout and heard its arrival, but no \
                             removal last: {events:?}"
                        );
                        assert_eq!(pm.deregister(*h), Ok(()));
                    }
                    Some(at_deregister) => assert_eq!(
                        events.len(),
                        *at_deregister,
                        "{h} heard something after its deregister returned: {events:?}"
                    ),
                }
            }
            assert_eq!(pm.client_count(), 0);
        }
    });
}

/// A context whose `Drop` panics.
struct PanicOnDrop;

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("a context's Drop panics");
    }
}

#[test]
fn a_refused_register_drops_the_context_with_its_panic_contained_and_counted() {
    let pm = PolicyManager::new();
    pm.shutdown().unwrap();
    let r = pm.register(ClientConfig::new(PanicOnDrop, |_, _, _| {}));
    assert_refused(r, &Error::PolicyManagerRemoved, NtStatus::DEVICE_REMOVED);
    assert_eq!(pm.panicked_callbacks(), 1);
    assert_eq!(pm.client_count(), 0);
}

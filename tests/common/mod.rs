//! Helpers shared by the integration tests: recording clients, expected notifications,
//! a per-hub sequence checker, a query observer, a callback gate and a deadlock watchdog.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use usbpm::{
    Access, ClientConfig, ClientHandle, ConnectorHandle, ConnectorId, ConnectorInfo,
    ConnectorState, Error, Event, HubHandle, HubId, HubInfo, HubPort, Notification, PolicyManager,
    PowerRole,
};

/// How long a scenario may run before the watchdog calls it a deadlock. Only reached
/// when the library is broken; a passing run never waits for it.
pub const WATCHDOG: Duration = Duration::from_secs(30);

/// What a recording client has received, in delivery order (the Policy Manager's own
/// events included).
pub type Log = Arc<Mutex<Vec<Notification>>>;

pub fn new_log() -> Log {
    Arc::new(Mutex::new(Vec::new()))
}

/// A client that records every notification it receives.
pub fn recorder(log: &Log) -> ClientConfig {
    ClientConfig::new(log.clone(), |log, _pm, n| {
        log.lock().unwrap().push(n.clone())
    })
}

/// Registers a client that records into a new log, with the default request (every
/// access): the log and the client's handle.
pub fn register_recorder(pm: &PolicyManager) -> (Log, ClientHandle) {
    let log = new_log();
    let h = pm.register(recorder(&log)).unwrap();
    (log, h)
}

/// Deregisters each of `clients`, in order, and checks that each deregister succeeds.
#[track_caller]
pub fn deregister_all(pm: &PolicyManager, clients: impl IntoIterator<Item = ClientHandle>) {
    for h in clients {
        assert_eq!(pm.deregister(h), Ok(()), "deregister {h}");
    }
}

/// Everything `log` holds now, the Policy Manager's own events included.
pub fn snapshot_all(log: &Log) -> Vec<Notification> {
    log.lock().unwrap().clone()
}

/// The hub events `log` holds now, in delivery order, after checking how the Policy
/// Manager's own events frame them (see [`check_manager_events`]): what the tests written
/// before `PolicyManagerArrival` existed compare.
pub fn snapshot(log: &Log) -> Vec<Notification> {
    let all = snapshot_all(log);
    if let Err(e) = check_manager_events(&all) {
        panic!("{e}: {all:?}");
    }
    hub_events(&all)
}

/// How many hub events `log` holds (see [`snapshot`]).
pub fn len(log: &Log) -> usize {
    snapshot(log).len()
}

/// The hub events of `events` (everything but the Policy Manager's arrival and removal).
pub fn hub_events(events: &[Notification]) -> Vec<Notification> {
    events
        .iter()
        .filter(|n| !n.is_manager_event())
        .cloned()
        .collect()
}

/// The Policy Manager's own events frame a client's notifications: a non-empty list
/// starts with exactly one `PolicyManagerArrival` (with `hub: None`, seq 0), and a
/// `PolicyManagerRemoval` (same) comes at most once, last.
pub fn check_manager_events(events: &[Notification]) -> Result<(), String> {
    for (i, n) in events.iter().enumerate() {
        let at = || format!("event #{i} {n:?}");
        if n.is_manager_event() && (n.hub.is_some() || n.seq != 0) {
            return Err(format!("{}: a manager event carries a hub or a seq", at()));
        }
        if !n.is_manager_event() && n.hub.is_none() {
            return Err(format!("{}: a hub event without a hub", at()));
        }
        match n.event {
            Event::PolicyManagerArrival { .. } if i != 0 => {
                return Err(format!("{}: Policy Manager arrival not first", at()))
            }
            Event::PolicyManagerRemoval if i + 1 != events.len() => {
                return Err(format!("{}: Policy Manager removal not last", at()))
            }
            _ if i == 0 && !matches!(n.event, Event::PolicyManagerArrival { .. }) => {
                return Err(format!(
                    "{}: the first event is not the Policy Manager arrival",
                    at()
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

/// The `PolicyManagerArrival` a client granted `access` receives.
pub fn pm_arrival(access: Access) -> Notification {
    Notification {
        hub: None,
        seq: 0,
        event: Event::PolicyManagerArrival { access },
    }
}

/// The `PolicyManagerRemoval` every client hears last after shutdown.
pub fn pm_removal() -> Notification {
    Notification {
        hub: None,
        seq: 0,
        event: Event::PolicyManagerRemoval,
    }
}

/// The notifications about `hub` (any presence), in delivery order.
pub fn about(events: &[Notification], hub: HubId) -> Vec<Notification> {
    events
        .iter()
        .filter(|n| n.hub_id() == Some(hub))
        .cloned()
        .collect()
}

/// A hub presence, as notifications name it: a `HubId` is its first presence, a
/// `HubHandle` says which.
pub trait Presence: Copy {
    fn hub_handle(self) -> HubHandle;
}

impl Presence for HubId {
    fn hub_handle(self) -> HubHandle {
        HubHandle {
            id: self,
            presence: 1,
        }
    }
}

impl Presence for HubHandle {
    fn hub_handle(self) -> HubHandle {
        self
    }
}

/// Presence `presence` of `hub`.
pub fn presence(hub: HubId, presence: u32) -> HubHandle {
    HubHandle { id: hub, presence }
}

/// Connector `connector` of the hub presence `hub`.
pub fn connector(hub: impl Presence, connector: u8) -> ConnectorHandle {
    ConnectorHandle {
        hub: hub.hub_handle(),
        connector: ConnectorId(connector),
    }
}

pub fn detached() -> ConnectorState {
    ConnectorState::default()
}

/// A sink connector with a partner advertising `mw` milliwatts.
pub fn attached(mw: u32) -> ConnectorState {
    ConnectorState {
        attached: true,
        power_role: PowerRole::Sink,
        partner_max_milliwatts: mw,
    }
}

/// A source connector with a partner that takes up to `mw` milliwatts.
pub fn sourcing(mw: u32) -> ConnectorState {
    ConnectorState {
        attached: true,
        power_role: PowerRole::Source,
        partner_max_milliwatts: mw,
    }
}

/// A hub as a client sees it, connectors in the given states, no power assigned, and
/// each attached connector's partner the first of the presence (attach count 1; 0 for a
/// detached connector): a connector that attached from detached once since arrival.
/// Use [`with_attach_counts`] for a connector whose partners came and went.
pub fn hub_info(hub: HubId, states: &[ConnectorState]) -> HubInfo {
    HubInfo {
        hub,
        connectors: states
            .iter()
            .enumerate()
            .map(|(i, s)| ConnectorInfo {
                connector: ConnectorId(i as u8),
                state: s.clone(),
                assigned_power: None,
                attach_count: u32::from(s.attached),
            })
            .collect(),
    }
}

/// `info` with its connectors' attach counts set to `counts`.
pub fn with_attach_counts(mut info: HubInfo, counts: &[u32]) -> HubInfo {
    assert_eq!(info.connectors.len(), counts.len());
    for (c, &n) in info.connectors.iter_mut().zip(counts) {
        c.attach_count = n;
    }
    info
}

pub fn arrival(hub: impl Presence, seq: u64, info: HubInfo) -> Notification {
    Notification {
        hub: Some(hub.hub_handle()),
        seq,
        event: Event::HubArrival(info),
    }
}

pub fn change(hub: impl Presence, seq: u64, connector: u8, state: ConnectorState) -> Notification {
    Notification {
        hub: Some(hub.hub_handle()),
        seq,
        event: Event::ConnectorStateChange {
            connector: ConnectorId(connector),
            state,
        },
    }
}

pub fn removal(hub: impl Presence, seq: u64) -> Notification {
    Notification {
        hub: Some(hub.hub_handle()),
        seq,
        event: Event::HubRemoval,
    }
}

pub fn is_change(n: &Notification) -> bool {
    matches!(n.event, Event::ConnectorStateChange { .. })
}

/// A registered client that only queries (granted [`Access::QUERY`]; its callback does
/// nothing): how a test looks at a hub's state, as the old `query_hub` did. It is a
/// client like any other (it counts in `client_count` and hears every event), so a test
/// registers it where that does not matter. Deregistered when dropped.
pub struct Observer {
    pm: PolicyManager,
    handle: ClientHandle,
}

impl Observer {
    pub fn new(pm: &PolicyManager) -> Self {
        let handle = pm
            .register(ClientConfig::new((), |_, _, _| {}).access(Access::QUERY))
            .expect("register the observer");
        Observer {
            pm: pm.clone(),
            handle,
        }
    }

    pub fn handle(&self) -> ClientHandle {
        self.handle
    }

    /// The hub presence's properties.
    pub fn hub(&self, hub: impl Presence) -> Result<HubInfo, Error> {
        self.pm.hub_properties(self.handle, hub.hub_handle())
    }

    /// The present hub `port` reports for.
    pub fn port(&self, port: &HubPort) -> HubInfo {
        self.hub(port.handle())
            .expect("the hub of a live port can be queried")
    }

    /// One connector's state.
    pub fn connector(&self, hub: impl Presence, c: u8) -> Result<ConnectorInfo, Error> {
        self.pm.connector_state(self.handle, connector(hub, c))
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        let _ = self.pm.deregister(self.handle);
    }
}

/// Checks the per-hub delivery contract on one client's notifications: per hub, first an
/// arrival (about that hub), then only changes and at most one removal, with strictly
/// consecutive sequence numbers after the arrival's, every one naming the arrival's
/// presence, and nothing after the removal except a later presence of the same id, which
/// starts with an arrival at seq 0. The list may hold the Policy Manager's own events
/// where they belong (its arrival first, its removal last) or only hub events (as
/// [`snapshot`] returns them).
pub fn check_per_hub(events: &[Notification]) -> Result<(), String> {
    for (i, n) in events.iter().enumerate() {
        let misplaced = match n.event {
            Event::PolicyManagerArrival { .. } => i != 0,
            Event::PolicyManagerRemoval => i + 1 != events.len(),
            _ => n.hub.is_none(),
        };
        if misplaced {
            return Err(format!("event #{i} {n:?} is out of place"));
        }
    }
    // hub -> (presence, last seq, removed)
    let mut seen: BTreeMap<HubId, (u32, u64, bool)> = BTreeMap::new();
    for (i, n) in events.iter().enumerate() {
        let at = || format!("event #{i} {n:?}");
        let Some(handle) = n.hub else {
            continue; // a manager event, checked above
        };
        let hub = handle.id;
        match (&n.event, seen.get(&hub).copied()) {
            (Event::HubArrival(info), state) => {
                if info.hub != hub {
                    return Err(format!("{}: arrival carries info of {:?}", at(), info.hub));
                }
                if handle.presence == 0 {
                    return Err(format!("{}: presence 0", at()));
                }
                match state {
                    None => {}
                    Some((p, _, true)) if n.seq == 0 && handle.presence > p => {}
                    Some((_, _, true)) if n.seq == 0 => {
                        return Err(format!("{}: a new presence has a later handle", at()))
                    }
                    Some((_, _, true)) => {
                        return Err(format!("{}: a new presence starts at seq 0", at()))
                    }
                    Some((_, _, false)) => {
                        return Err(format!("{}: second arrival while present", at()))
                    }
                }
                seen.insert(hub, (handle.presence, n.seq, false));
            }
            (_, None) => return Err(format!("{}: event before the hub's arrival", at())),
            (_, Some((_, _, true))) => {
                return Err(format!("{}: event after the hub's removal", at()))
            }
            (event, Some((p, prev, false))) => {
                if handle.presence != p {
                    return Err(format!("{}: presence {p} arrived", at()));
                }
                if n.seq != prev + 1 {
                    return Err(format!("{}: seq {} follows seq {prev}", at(), n.seq));
                }
                seen.insert(hub, (p, n.seq, matches!(event, Event::HubRemoval)));
            }
        }
    }
    Ok(())
}

/// Runs `f` on its own thread and returns its result; fails the test (instead of hanging
/// it) if `f` has not finished within [`WATCHDOG`]. A panic in `f` is re-raised here.
pub fn watchdog<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let worker = thread::Builder::new()
        .name(format!("scenario: {what}"))
        .spawn(move || {
            let _ = tx.send(f());
        })
        .unwrap();
    match rx.recv_timeout(WATCHDOG) {
        Ok(v) => {
            worker.join().unwrap();
            v
        }
        Err(RecvTimeoutError::Disconnected) => match worker.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the scenario thread returned without sending its result"),
        },
        Err(RecvTimeoutError::Timeout) => {
            panic!("{what}: did not finish within {WATCHDOG:?} (deadlock?)")
        }
    }
}

/// Polls `cond` (yielding the CPU between polls) until it holds; fails the test if it
/// does not hold within [`WATCHDOG`]. Used to observe a state another thread reaches
/// (e.g. "deregister has taken the client out of the registry"), not to wait for time.
pub fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + WATCHDOG;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        thread::yield_now();
    }
}

/// Spins until `flag` is set, yielding now and then so that it also makes progress
/// when the thread that sets the flag shares this thread's core.
pub fn spin_until(flag: &std::sync::atomic::AtomicBool) {
    let mut spins = 0u32;
    while !flag.load(std::sync::atomic::Ordering::SeqCst) {
        spins = spins.wrapping_add(1);
        if spins % 1000 == 0 {
            thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
}

/// Holds a callback inside itself until the test releases it.
///
/// The callback calls [`Gate::block`]; the test calls [`GateControl::wait_entered`] to
/// know the callback is running, and [`GateControl::release`] to let it return.
pub struct Gate {
    entered: Mutex<Sender<()>>,
    release: Mutex<Receiver<()>>,
}

pub struct GateControl {
    entered: Receiver<()>,
    release: Sender<()>,
}

pub fn gate() -> (Gate, GateControl) {
    let (entered_tx, entered_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel();
    (
        Gate {
            entered: Mutex::new(entered_tx),
            release: Mutex::new(release_rx),
        },
        GateControl {
            entered: entered_rx,
            release: release_tx,
        },
    )
}

impl Gate {
    /// Signals "entered", then blocks until released.
    pub fn block(&self) {
        self.entered.lock().unwrap().send(()).unwrap();
        self.release.lock().unwrap().recv().unwrap();
    }
}

impl GateControl {
    pub fn wait_entered(&self) {
        self.entered
            .recv_timeout(WATCHDOG)
            .expect("the callback never entered the gate");
    }

    pub fn release(&self) {
        self.release.send(()).unwrap();
    }
}

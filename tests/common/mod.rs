//! Helpers shared by the integration tests: recording clients, expected notifications,
//! a per-hub sequence checker, a callback gate and a deadlock watchdog.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use usbpm::{
    ClientConfig, ConnectorId, ConnectorInfo, ConnectorState, Event, HubId, HubInfo, Notification,
    PowerRole,
};

/// How long a scenario may run before the watchdog calls it a deadlock. Only reached
/// when the library is broken; a passing run never waits for it.
pub const WATCHDOG: Duration = Duration::from_secs(30);

/// What a recording client has received, in delivery order.
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

/// A copy of everything `log` holds now.
pub fn snapshot(log: &Log) -> Vec<Notification> {
    log.lock().unwrap().clone()
}

pub fn len(log: &Log) -> usize {
    log.lock().unwrap().len()
}

/// The notifications about `hub`, in delivery order.
pub fn about(events: &[Notification], hub: HubId) -> Vec<Notification> {
    events.iter().filter(|n| n.hub == hub).cloned().collect()
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

/// A hub as a client sees it, connectors in the given states, no power assigned.
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
            })
            .collect(),
    }
}

pub fn arrival(hub: HubId, seq: u64, info: HubInfo) -> Notification {
    Notification {
        hub,
        seq,
        event: Event::HubArrival(info),
    }
}

pub fn change(hub: HubId, seq: u64, connector: u8, state: ConnectorState) -> Notification {
    Notification {
        hub,
        seq,
        event: Event::ConnectorStateChange {
            connector: ConnectorId(connector),
            state,
        },
    }
}

pub fn removal(hub: HubId, seq: u64) -> Notification {
    Notification {
        hub,
        seq,
        event: Event::HubRemoval,
    }
}

pub fn is_change(n: &Notification) -> bool {
    matches!(n.event, Event::ConnectorStateChange { .. })
}

/// Checks the per-hub delivery contract on one client's notifications: per hub, first an
/// arrival (about that hub), then only changes and at most one removal, with strictly
/// consecutive sequence numbers after the arrival's, and nothing after the removal except
/// a new presence of the same id, which starts with an arrival at seq 0.
pub fn check_per_hub(events: &[Notification]) -> Result<(), String> {
    // hub -> (last seq, removed)
    let mut seen: BTreeMap<HubId, (u64, bool)> = BTreeMap::new();
    for (i, n) in events.iter().enumerate() {
        let at = || format!("event #{i} {n:?}");
        match (&n.event, seen.get(&n.hub).copied()) {
            (Event::HubArrival(info), state) => {
                if info.hub != n.hub {
                    return Err(format!("{}: arrival carries info of {:?}", at(), info.hub));
                }
                match state {
                    None => {}
                    Some((_, true)) if n.seq == 0 => {}
                    Some((_, true)) => {
                        return Err(format!("{}: a new presence starts at seq 0", at()))
                    }
                    Some((_, false)) => {
                        return Err(format!("{}: second arrival while present", at()))
                    }
                }
                seen.insert(n.hub, (n.seq, false));
            }
            (_, None) => return Err(format!("{}: event before the hub's arrival", at())),
            (_, Some((_, true))) => return Err(format!("{}: event after the hub's removal", at())),
            (event, Some((prev, false))) => {
                if n.seq != prev + 1 {
                    return Err(format!("{}: seq {} follows seq {prev}", at(), n.seq));
                }
                seen.insert(n.hub, (n.seq, matches!(event, Event::HubRemoval)));
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

//! Hubs report changes from their own threads, and go and come back under the same id,
//! while other threads register and deregister clients in a loop. Every client checks,
//! inside its callback, that it is never called after its deregister returned, and
//! afterwards that it saw each presence of each hub as an arrival (with the hub's true
//! state at that seq) followed by strictly consecutive seqs, the removal last.

mod common;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;

use common::*;
use usbpm::{
    Access, ClientConfig, ConnectorId, ConnectorState, Event, HubId, HubInfo, Notification,
    PolicyManager, PowerRole,
};

const HUB_THREADS: u32 = 2;
const REGISTRARS: usize = 2;
/// Hub threads and registrars work in lock-step phases (a barrier between phases), so
/// that registering and deregistering overlap with changes in every phase.
const PHASES: u32 = 40;
/// Each hub thread removes its hub and brings it back (same id) every this many phases.
const PHASES_PER_LIFETIME: u32 = 10;
const LIFETIMES: u32 = PHASES / PHASES_PER_LIFETIME;
const CHANGES_PER_PHASE: u64 = 100;
/// Changes in one hub's life; its removal is seq `CHANGES + 1`.
const CHANGES: u64 = CHANGES_PER_PHASE * PHASES_PER_LIFETIME as u64;
const CLIENTS_PER_PHASE: usize = 40;
/// Each registrar keeps this many of its clients registered at a time.
const WINDOW: usize = 6;
const CONNECTORS: u64 = 2;

type Violations = Arc<Mutex<Vec<String>>>;

/// Change number `k` (seq `k`) sets connector `k % CONNECTORS` to `state_for(k)`.
fn state_for(k: u64) -> ConnectorState {
    ConnectorState {
        attached: k % 3 != 0,
        power_role: if k % 2 == 0 {
            PowerRole::Sink
        } else {
            PowerRole::Source
        },
        partner_max_milliwatts: k as u32 * 10,
    }
}

/// The hub's state once every change up to `seq` is folded in.
fn expected_info(hub: HubId, seq: u64) -> HubInfo {
    let states: Vec<ConnectorState> = (0..CONNECTORS)
        .map(|c| {
            (1..=seq)
                .rev()
                .find(|k| k % CONNECTORS == c)
                .map(state_for)
                .unwrap_or_default()
        })
        .collect();
    // Each connector's attach count: its detached-to-attached changes (from detached).
    let counts: Vec<u32> = (0..CONNECTORS)
        .map(|c| {
            let mut was_attached = false;
            let mut count = 0;
            for k in (1..=seq).filter(|k| k % CONNECTORS == c) {
                let now = state_for(k).attached;
                count += u32::from(now && !was_attached);
                was_attached = now;
            }
            count
        })
        .collect();
    with_attach_counts(hub_info(hub, &states), &counts)
}

fn hub_id(thread: u32) -> HubId {
    HubId(100 * (thread + 1))
}

/// Checks one client's complete notification list against the contract.
fn check_client(name: &str, events: &[Notification]) -> Result<(), String> {
    check_per_hub(events).map_err(|e| format!("{name}: {e}"))?;
    if events.first() != Some(&pm_arrival(Access::ALL)) {
        return Err(format!(
            "{name}: the first event is not the Policy Manager's arrival"
        ));
    }
    for n in events {
        match &n.event {
            Event::PolicyManagerArrival { .. } => {}
            Event::PolicyManagerRemoval => {
                return Err(format!("{name}: the Policy Manager never shuts down here"))
            }
            Event::HubArrival(info) => {
                if info != &expected_info(info.hub, n.seq) {
                    return Err(format!("{name}: arrival at seq {} shows {info:?}", n.seq));
                }
            }
            Event::ConnectorStateChange { connector, state } => {
                if connector.0 as u64 != n.seq % CONNECTORS || state != &state_for(n.seq) {
                    return Err(format!("{name}: seq {} is {:?}", n.seq, n.event));
                }
            }
            Event::HubRemoval => {
                if n.seq != CHANGES + 1 {
                    return Err(format!("{name}: removal at seq {}", n.seq));
                }
            }
        }
    }
    Ok(())
}

struct Client {
    name: String,
    /// Set by the test right after deregister returned: the context is "freed".
    freed: AtomicBool,
    events: Mutex<Vec<Notification>>,
    violations: Violations,
}

impl Client {
    fn new(name: String, violations: &Violations) -> Arc<Self> {
        Arc::new(Client {
            name,
            freed: AtomicBool::new(false),
            events: Mutex::new(Vec::new()),
            violations: violations.clone(),
        })
    }

    fn config(self: &Arc<Self>) -> ClientConfig {
        ClientConfig::new(self.clone(), |c, _pm, n| {
            if c.freed.load(Ordering::SeqCst) {
                c.violate(format!("callback began after deregister returned: {n:?}"));
            }
            c.events.lock().unwrap().push(n.clone());
            if n.seq % 8 == 0 {
                thread::yield_now(); // widen the window for a racing deregister
            }
            if c.freed.load(Ordering::SeqCst) {
                c.violate(format!(
                    "callback still running after deregister returned: {n:?}"
                ));
            }
        })
    }

    fn violate(&self, what: String) {
        self.violations
            .lock()
            .unwrap()
            .push(format!("{}: {what}", self.name));
    }

    /// Marks the context freed and checks what it received; returns how many hub
    /// events that was.
    fn free_and_check(&self) -> usize {
        self.freed.store(true, Ordering::SeqCst);
        let events = self.events.lock().unwrap().clone();
        if let Err(e) = check_client(&self.name, &events) {
            self.violate(e);
        }
        hub_events(&events).len()
    }
}

#[test]
fn clients_come_and_go_while_hubs_report() {
    watchdog("stress", run);
}

/// A registered client: by handle, or by the guard whose drop deregisters it.
enum Live {
    Handle(usbpm::ClientHandle),
    Guard(usbpm::Registration),
}

fn run() {
    let pm = PolicyManager::new();
    let violations: Violations = Arc::default();
    let observer = Client::new("observer".into(), &violations);
    let observer_h = pm.register(observer.config()).unwrap();

    let parties = HUB_THREADS as usize + REGISTRARS;
    let phase = Arc::new(Barrier::new(parties));
    // The registrars have checked the last hubs' arrival replay; hubs may go.
    let may_remove = Arc::new(Barrier::new(parties));
    let delivered = Arc::new(AtomicU64::new(0));

    let mut threads = Vec::new();
    for t in 0..HUB_THREADS {
        let (pm, phase, may_remove) = (pm.clone(), phase.clone(), may_remove.clone());
        threads.push(thread::spawn(move || {
            let mut port = None;
            let mut k = 0;
            for p in 0..PHASES {
                if p % PHASES_PER_LIFETIME == 0 {
                    // Remove the previous presence, and at once arrive again: the removal
                    // may still be on its way to clients on another thread.
                    drop(port.take());
                    let connectors = vec![ConnectorState::default(); CONNECTORS as usize];
                    port = Some(pm.hub_arrival(hub_id(t), connectors).unwrap());
                    k = 0;
                }
                let port = port.as_ref().unwrap();
                for _ in 0..CHANGES_PER_PHASE {
                    k += 1;
                    port.connector_changed(ConnectorId((k % CONNECTORS) as u8), state_for(k))
                        .unwrap();
                }
                phase.wait();
            }
            // The last hub stays, fully changed, until the registrars have checked it.
            may_remove.wait();
            drop(port);
        }));
    }
    for r in 0..REGISTRARS {
        let (pm, phase, may_remove, violations, delivered) = (
            pm.clone(),
            phase.clone(),
            may_remove.clone(),
            violations.clone(),
            delivered.clone(),
        );
        threads.push(thread::spawn(move || {
            let retire = |live: Live, client: Arc<Client>| {
                match live {
                    Live::Handle(h) => {
                        if let Err(e) = pm.deregister(h) {
                            client.violate(format!("deregister failed: {e}"));
                        }
                    }
                    // The guard's drop deregisters with the same contract.
                    Live::Guard(reg) => drop(reg),
                }
                delivered.fetch_add(client.free_and_check() as u64, Ordering::Relaxed);
            };
            let mut window = VecDeque::new();
            let mut k = 0;
            for _ in 0..PHASES {
                for _ in 0..CLIENTS_PER_PHASE {
                    let client = Client::new(format!("registrar {r} client {k}"), &violations);
                    let live = if k % 4 == 3 {
                        Live::Guard(pm.register_owned(client.config()).unwrap())
                    } else {
                        Live::Handle(pm.register(client.config()).unwrap())
                    };
                    window.push_back((live, client));
                    if window.len() > WINDOW {
                        let (live, client) = window.pop_front().unwrap();
                        retire(live, client);
                    }
                    k += 1;
                }
                phase.wait();
            }
            for (live, client) in window.drain(..) {
                retire(live, client);
            }

            // Deterministic replay check: the last hubs are present and fully changed.
            let client = Client::new(format!("registrar {r} late client"), &violations);
            let h = pm.register(client.config()).unwrap();
            // The replay may be delivered by another thread that is draining a hub's
            // queue (e.g. the other registrar's), so register may return before it.
            wait_until("the late client has its arrivals", || {
                hub_events(&client.events.lock().unwrap()).len() >= HUB_THREADS as usize
            });
            let expected: Vec<Notification> = (0..HUB_THREADS)
                .map(|t| {
                    let hub = hub_id(t);
                    let last = presence(hub, LIFETIMES);
                    arrival(last, CHANGES, expected_info(hub, CHANGES))
                })
                .collect();
            let mut got = hub_events(&client.events.lock().unwrap());
            got.sort_by_key(|n| n.hub);
            if got != expected {
                client.violate(format!("replay for the last hubs: {got:?}"));
            }
            retire(Live::Handle(h), client);
            may_remove.wait();
        }));
    }
    for t in threads {
        t.join().unwrap();
    }

    assert_eq!(pm.deregister(observer_h), Ok(()));
    let observed = observer.free_and_check();
    // The observer was registered throughout: it saw every presence's whole history.
    let events = observer.events.lock().unwrap().clone();
    assert_eq!(
        observed,
        (HUB_THREADS * LIFETIMES) as usize * (CHANGES as usize + 2)
    );
    for t in 0..HUB_THREADS {
        let hub = hub_id(t);
        let life = |p: u32| {
            let handle = presence(hub, p);
            let mut life = vec![arrival(handle, 0, expected_info(hub, 0))];
            life.extend(
                (1..=CHANGES).map(|k| change(handle, k, (k % CONNECTORS) as u8, state_for(k))),
            );
            life.push(removal(handle, CHANGES + 1));
            life
        };
        let whole: Vec<Notification> = (1..=LIFETIMES).flat_map(life).collect();
        assert!(
            about(&events, hub) == whole,
            "the observer's history of {hub:?}"
        );
    }

    let violations = violations.lock().unwrap();
    assert!(
        violations.is_empty(),
        "{} violations, first ones:\n{}",
        violations.len(),
        violations
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(pm.client_count(), 0);
    assert_eq!(pm.panicked_callbacks(), 0);
    // Not vacuous: the registrars' clients did receive events (the late ones always do).
    assert!(delivered.load(Ordering::Relaxed) > 0);
}

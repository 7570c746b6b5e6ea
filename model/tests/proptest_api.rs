//! A proptest-state-machine test of the public API of `usbpm::PolicyManager` against a
//! small reference model of the client contract.
//!
//! The reference (`Model`) is plain data: the slot table that hands out client handles,
//! which clients are registered, which hubs are present with which connector states
//! (including assigned power levels) and sequence counter, and for every client the exact
//! list of notifications it must have received. The system under test (`Sut`) is driven
//! from one thread, so delivery is synchronous: a hardware call on an idle hub delivers
//! to every client before it returns. After every transition the test asserts exact
//! equality of each client's received log against the reference, plus independent
//! invariants (client_count, per-hub log shape, hub state, no contained panics).
//!
//! Re-entrant callbacks. A client may be registered with an *action* that its callback
//! performs once, on its first event (or on its first event after `register` returned,
//! which is the only time a real client knows its own handle):
//! - `DeregisterSelf` must be refused with `Error::DeregisterFromOwnCallback` and leave the
//!   client registered (always triggered after register returned: the callback needs
//!   its own handle);
//! - `DeregisterOther` deregisters another client, chosen when the action fires among
//!   those that existed when the step began (so possibly one registered later, further
//!   along the delivery order); it must return `Ok` (or `StaleHandle` if the target is
//!   already gone) and the target must receive nothing from then on, including the rest
//!   of the event being delivered;
//! - `RegisterNew` registers a plain client from inside the callback.
//!
//! Those make observable the delivery *order across clients* and when the deliveries a
//! callback causes happen, which the contract does not pin down, so for them the
//! reference models the implementation's documented queueing (src/hub.rs module docs):
//! each hub has a mailbox whose items carry tickets; a call made outside callbacks adds
//! its item and delivers the mailbox up to it, then settles its thread's obligations
//! oldest first; an addition made inside a callback only records an obligation (hub,
//! highest ticket), so callbacks never nest; a hub's arrival goes to the clients
//! registered when it arrived in slot order, and arrival replays for late registrants are
//! appended in registration order. A client registered from inside a callback is plain
//! (no action), so every action belongs to a client registered outside callbacks; actions
//! never touch hub ports (a callback has none), so a hub's state does not change while
//! one of its items is queued.
//!
//! Contexts. A client registered by a `Register` transition may own a context whose
//! `Drop` does something (`OnDrop`): re-enters the Policy Manager (deregisters its own
//! handle, which must be refused with `StaleHandle` since the context dies only after the
//! client is deregistered, and queries it), or panics (the library must contain it and
//! count it in `panicked_callbacks`). Neither changes the reference's state, so the model
//! need not predict when the library lets go of a context; the test checks what it can
//! without that: no context dies while its client is registered, none dies twice, each
//! re-entry got `StaleHandle`, every contained panic is a context's, and once every hub
//! is removed every deregistered client's context has died (nothing else holds it).
//!
//! Each case ends by removing the remaining hubs and dropping live `Registration`
//! guards, checked like the steps.
//!
//! Not covered here (single thread): concurrent delivery, deregister waiting for
//! callbacks running on other threads, `WouldDeadlock` (needs two threads waiting on each
//! other), panicking callbacks, `Registration` dropped inside its own callback (detach
//! without waiting), concurrent deregistration of one handle, contexts' drops that change
//! what clients are told (a change reported, a client registered: the generated programs
//! of the loom and shuttle harness have them). Those are the loom/shuttle
//! harness's job. Two handle-classification bugs this test found (a never-issued
//! next-generation handle answered `StaleHandle`; 16-bit instance numbers that wrapped
//! after 65,536 Policy Managers) are fixed; the first is pinned by a test at the end.
//!
//! Environment:
//! - `PROPTEST_CASES` overrides the number of cases (default 256; the config is built
//!   from `Config::default()`, which reads it).
//! - `USBPM_MUTANT=<name>` (as the gate sets it) runs the library with one seeded bug:
//!   `replay-misses-hub` shrinks to HubArrival, Register; `no-generation` to Register,
//!   Deregister, Register, DeregisterStale (the stale handle deregisters the slot's new
//!   client), or hangs when a callback's stale deregister lands on its own reused slot,
//!   which the gate's timeout reports. Most other mutants need concurrency to show.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::Union;
use proptest::test_runner::Config;
use proptest_state_machine::{prop_state_machine, ReferenceStateMachine, StateMachineTest};
use usbpm::{
    ClientConfig, ClientHandle, ConnectorId, ConnectorInfo, ConnectorState, Error, Event, HubId,
    HubInfo, HubPort, Notification, PolicyManager, PowerLevel, PowerRole, Registration,
};
use usbpm_model::judge::stall::Watchdog;

/// Hub ids are drawn from `0..HUB_IDS`: small, so duplicates and re-arrivals happen.
const HUB_IDS: u32 = 3;
/// Hubs have 1..=MAX_CONNECTORS connectors; connector indices are drawn from
/// `0..=MAX_CONNECTORS`, so some are out of range.
const MAX_CONNECTORS: u8 = 3;

/// The never-issued "next generation of a free slot" handle is always generated: the
/// library answered it with `StaleHandle` until this test found it (now `UnknownHandle`).
fn strict_unknown() -> bool {
    true
}

// ---------------------------------------------------------------------------------------
// Transitions
// ---------------------------------------------------------------------------------------

/// The model names clients by their index in creation order (outer registrations and
/// registrations made inside callbacks alike).
type ClientId = usize;

// Transitions name their targets *relative to the state they apply to* (`pick` is an
// index, modulo the length, into the candidates at that point), not by absolute id: when
// shrinking deletes an earlier transition, later ones still apply to something, so the
// shrinker is not stopped by failed preconditions. The model records what each pick
// resolved to (`Model::target`, `RefClient::deregistered_other`) and the SUT acts on that.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Trigger {
    /// The client's very first notification (possibly delivered inside `register`).
    FirstEvent,
    /// The first notification delivered after `register` returned.
    FirstEventAfterRegister,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ActionKind {
    /// Always triggered after register returned (the callback needs its own handle).
    DeregisterSelf,
    /// Deregister the `pick`-th of the other clients that existed (in any state) when
    /// the transition that triggers the action began; chosen when it fires, so it can be
    /// a client registered after this one, later in the delivery order.
    DeregisterOther { pick: usize },
    /// Register a plain client (no action) from inside the callback.
    RegisterNew,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Action {
    kind: ActionKind,
    trigger: Trigger,
}

/// What a client's context does when the library drops it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OnDrop {
    Nothing,
    /// Calls back into the Policy Manager: deregisters its own handle (stale by then) and
    /// queries a hub and the client count.
    Reenter,
    /// Panics.
    Panic,
}

/// An action as the model keeps it (the `DeregisterSelf` trigger normalised).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Act {
    DeregisterSelf,
    DeregisterOther { pick: usize },
    RegisterNew,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Via {
    /// `PolicyManager::deregister(handle)`.
    Handle,
    /// `Registration::deregister()`.
    GuardDeregister,
    /// Dropping the `Registration`.
    GuardDrop,
}

/// A handle that was never issued by the Policy Manager under test, described relative
/// to its slot table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NeverIssued {
    /// The instance bits of another Policy Manager.
    OtherInstance { slot: u16, generation: u32 },
    /// A slot past the last one ever used.
    PastLastSlot { beyond: u16, generation: u32 },
    /// Generation 0 (never issued) of the `pick`-th slot.
    GenerationZero { pick: usize },
    /// A generation above the `pick`-th slot's current one.
    GenerationAhead { pick: usize, ahead: u32 },
    /// The generation the `pick`-th *free* slot's next client will get. Only with
    /// `USBPM_PROPTEST_STRICT_UNKNOWN=1` (the library answers `StaleHandle`).
    NextGenerationOfFreeSlot { pick: usize },
}

/// A concrete handle, minus the instance bits that only the SUT knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct RawHandle {
    other_instance: bool,
    slot: u16,
    generation: u32,
}

/// What the last transition's picks resolved to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
enum Target {
    #[default]
    None,
    Client(ClientId),
    Deregister(ClientId, Via),
    Raw(RawHandle),
    Hub(u32),
}

#[derive(Clone, Debug)]
enum Transition {
    Register {
        owned: bool,
        action: Option<Action>,
        on_drop: OnDrop,
    },
    /// The `pick`-th registered client; a guard `via` falls back to `Handle` if the
    /// client has no live guard.
    Deregister {
        pick: usize,
        via: Via,
    },
    /// The `pick`-th deregistered client.
    DeregisterStale {
        pick: usize,
    },
    DeregisterUnknown(NeverIssued),
    HubArrival {
        hub: u32,
        connectors: Vec<ConnectorState>,
    },
    /// On the `hub_pick`-th present hub (ascending id); `connector` may be out of range.
    ConnectorChanged {
        hub_pick: usize,
        connector: u8,
        state: ConnectorState,
    },
    /// The `hub_pick`-th present hub, by `HubPort::remove` or by dropping the port.
    HubRemoval {
        hub_pick: usize,
        by_drop: bool,
    },
    AssignPowerLevel {
        hub: u32,
        connector: u8,
        milliwatts: u32,
    },
    QueryConnector {
        hub: u32,
        connector: u8,
    },
    QueryHub {
        hub: u32,
    },
}

// ---------------------------------------------------------------------------------------
// Reference model
// ---------------------------------------------------------------------------------------

/// An expected error; handle errors name the client abstractly (the SUT maps the id to
/// its handle), everything else is the concrete `Error`.
#[derive(Clone, Debug, PartialEq)]
enum ExpErr {
    /// `UnknownHandle` of the handle the SUT passed.
    UnknownHandle,
    StaleHandle(ClientId),
    DeregisterFromOwnCallback(ClientId),
    Api(Error),
}

/// What the last transition must have returned.
#[derive(Clone, Debug, PartialEq, Default)]
enum Expect {
    #[default]
    Nothing,
    Unit(Result<(), ExpErr>),
    Connector(Result<ConnectorInfo, ExpErr>),
    Hub(Result<HubInfo, ExpErr>),
}

#[derive(Clone, Debug)]
struct RefClient {
    /// The handle the slot table predicts (slot, generation).
    slot: u16,
    generation: u32,
    registered: bool,
    /// A `Registration` guard for it is alive in the SUT.
    guard: bool,
    action: Option<(Act, Trigger)>,
    /// Its `register` call has returned.
    armed: bool,
    fired: bool,
    /// The client a `DeregisterOther` action chose when it fired (None: nobody to pick).
    deregistered_other: Option<ClientId>,
    action_result: Option<Result<(), ExpErr>>,
    /// Every notification it must have received, in order.
    log: Vec<Notification>,
}

#[derive(Clone, Debug)]
struct RefSlot {
    generation: u32,
    occupant: Option<ClientId>,
}

/// An entry in a hub's mailbox.
#[derive(Clone, Debug)]
enum Item {
    /// The hub's own arrival, addressed to the clients registered when it arrived.
    Arrival {
        clients: Vec<ClientId>,
        note: Notification,
    },
    Change(Notification),
    Removal(Notification),
    /// Arrival replay for a client registering while the hub is present.
    Replay {
        client: ClientId,
        note: Notification,
    },
}

#[derive(Clone, Debug)]
struct RefHub {
    info: HubInfo,
    seq: u64,
    removed: bool,
    /// Tickets: the last one given, and the last one delivered.
    appended: u64,
    done: u64,
    mailbox: VecDeque<(u64, Item)>,
    /// Clients that have seen the arrival, in delivery order.
    subscribers: Vec<ClientId>,
}

#[derive(Clone, Debug, Default)]
struct Model {
    clients: Vec<RefClient>,
    slots: Vec<RefSlot>,
    /// Freed slots, reused last-freed-first.
    free: Vec<u16>,
    /// Every hub that ever arrived (an arena; a removed hub stays here).
    hubs: Vec<RefHub>,
    /// Present hubs by id, into `hubs`.
    present: BTreeMap<u32, usize>,
    /// The result the last transition must have returned.
    expect: Expect,
    /// What the last transition's picks resolved to.
    target: Target,
    /// How many clients existed when the current transition began: the SUT knows their
    /// handles, so a callback action may target them.
    settled: usize,
    /// A callback action is running (appends made now are owed, not delivered).
    in_callback: bool,
    /// The obligations (hub, highest ticket) appends inside callbacks left, oldest first.
    owed: Vec<(usize, u64)>,
}

impl Model {
    fn registered_count(&self) -> usize {
        self.clients.iter().filter(|c| c.registered).count()
    }

    fn ids(&self, registered: bool) -> Vec<ClientId> {
        (0..self.clients.len())
            .filter(|&i| self.clients[i].registered == registered)
            .collect()
    }

    fn free_slots(&self) -> Vec<u16> {
        (0..self.slots.len())
            .filter(|&i| self.slots[i].occupant.is_none())
            .map(|i| u16::try_from(i).unwrap())
            .collect()
    }

    /// Whether (our instance, `slot`, `generation`) was ever handed out.
    fn issued(&self, h: RawHandle) -> bool {
        match self.slots.get(usize::from(h.slot)) {
            _ if h.other_instance => false,
            None => false,
            Some(s) => {
                h.generation >= 1
                    && (h.generation < s.generation
                        || (h.generation == s.generation && s.occupant.is_some()))
            }
        }
    }

    fn resolve_never_issued(&self, n: NeverIssued) -> RawHandle {
        let ours = |slot: u16, generation| RawHandle {
            other_instance: false,
            slot,
            generation,
        };
        let picked = |pick: usize| {
            // With no slot yet, slot 0 is past the end: still never issued.
            let slot = if self.slots.is_empty() {
                0
            } else {
                pick % self.slots.len()
            };
            (
                u16::try_from(slot).unwrap(),
                self.slots.get(slot).map_or(1, |s| s.generation),
            )
        };
        let h = match n {
            NeverIssued::OtherInstance { slot, generation } => RawHandle {
                other_instance: true,
                slot,
                generation,
            },
            NeverIssued::PastLastSlot { beyond, generation } => {
                let len = u16::try_from(self.slots.len()).unwrap();
                ours(len.saturating_add(beyond), generation)
            }
            NeverIssued::GenerationZero { pick } => ours(picked(pick).0, 0),
            NeverIssued::GenerationAhead { pick, ahead } => {
                let (slot, current) = picked(pick);
                ours(slot, current.saturating_add(ahead.max(1)))
            }
            NeverIssued::NextGenerationOfFreeSlot { pick } => {
                let free = self.free_slots();
                let slot = free[pick % free.len()];
                ours(slot, self.slots[usize::from(slot)].generation)
            }
        };
        assert!(
            !self.issued(h),
            "model: {n:?} resolved to an issued handle {h:?}"
        );
        h
    }

    fn new_client(&mut self, action: Option<(Act, Trigger)>, guard: bool) -> ClientId {
        let id = self.clients.len();
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(RefSlot {
                    generation: 1,
                    occupant: None,
                });
                u16::try_from(self.slots.len() - 1).unwrap()
            }
        };
        let s = &mut self.slots[usize::from(slot)];
        s.occupant = Some(id);
        self.clients.push(RefClient {
            slot,
            generation: s.generation,
            registered: true,
            guard,
            action,
            armed: false,
            fired: false,
            deregistered_other: None,
            action_result: None,
            log: Vec::new(),
        });
        id
    }

    /// `register`: the client is in the registry, then an arrival replay of every present
    /// hub is queued in ascending hub id order (outside callbacks each replay is delivered
    /// before the next).
    fn register(&mut self, action: Option<(Act, Trigger)>, guard: bool) -> ClientId {
        let id = self.new_client(action, guard);
        let hubs: Vec<usize> = self.present.values().copied().collect();
        for h in hubs {
            self.replay(id, h);
        }
        id
    }

    fn deregister(&mut self, id: ClientId) {
        let c = &mut self.clients[id];
        assert!(
            c.registered,
            "model: deregistering a client that is not registered"
        );
        c.registered = false;
        let slot = c.slot;
        let s = &mut self.slots[usize::from(slot)];
        s.occupant = None;
        s.generation += 1;
        self.free.push(slot);
    }

    fn replay(&mut self, client: ClientId, h: usize) {
        let hub = &self.hubs[h];
        if hub.removed {
            return;
        }
        let note = Notification {
            hub: hub.info.hub,
            seq: hub.seq,
            event: Event::HubArrival(hub.info.clone()),
        };
        self.post(h, Item::Replay { client, note });
    }

    /// Adds to the hub's mailbox. Outside callbacks: delivers the mailbox up to the item,
    /// then settles the obligations its callbacks left. Inside one: records the
    /// obligation.
    fn post(&mut self, h: usize, item: Item) {
        self.hubs[h].appended += 1;
        let ticket = self.hubs[h].appended;
        self.hubs[h].mailbox.push_back((ticket, item));
        if self.in_callback {
            match self.owed.iter_mut().find(|(oh, _)| *oh == h) {
                Some(o) => o.1 = o.1.max(ticket),
                None => self.owed.push((h, ticket)),
            }
            return;
        }
        self.deliver_upto(h, ticket);
        while !self.owed.is_empty() {
            let (oh, ot) = self.owed.remove(0);
            self.deliver_upto(oh, ot);
        }
    }

    fn deliver_upto(&mut self, h: usize, target: u64) {
        let mut subscribers = std::mem::take(&mut self.hubs[h].subscribers);
        while self.hubs[h].done < target {
            let Some((ticket, item)) = self.hubs[h].mailbox.pop_front() else {
                break;
            };
            match item {
                Item::Arrival { clients, note } => {
                    subscribers = Vec::new();
                    for c in clients {
                        if self.notify(c, &note) {
                            subscribers.push(c);
                        }
                    }
                }
                Item::Change(note) => {
                    let mut kept = Vec::new();
                    for c in subscribers {
                        if self.notify(c, &note) {
                            kept.push(c);
                        }
                    }
                    subscribers = kept;
                }
                Item::Removal(note) => {
                    for c in std::mem::take(&mut subscribers) {
                        self.notify(c, &note);
                    }
                }
                Item::Replay { client, note } => {
                    if self.notify(client, &note) {
                        subscribers.push(client);
                    }
                }
            }
            self.hubs[h].done = ticket;
        }
        self.hubs[h].subscribers = subscribers;
    }

    /// One callback call: only a registered client hears it; then its action may fire.
    fn notify(&mut self, id: ClientId, note: &Notification) -> bool {
        let c = &mut self.clients[id];
        if !c.registered {
            return false;
        }
        c.log.push(note.clone());
        let Some((act, trigger)) = c.action else {
            return true;
        };
        let triggered = !c.fired && (trigger == Trigger::FirstEvent || c.armed);
        if !triggered {
            return true;
        }
        c.fired = true;
        self.in_callback = true;
        let result = match act {
            Act::DeregisterSelf => Err(ExpErr::DeregisterFromOwnCallback(id)),
            Act::DeregisterOther { pick } => {
                let others: Vec<ClientId> = (0..self.settled).filter(|&o| o != id).collect();
                if others.is_empty() {
                    self.in_callback = false;
                    return true; // nobody to target: the action does nothing
                }
                let t = nth(&others, pick);
                self.clients[id].deregistered_other = Some(t);
                if self.clients[t].registered {
                    self.deregister(t);
                    Ok(())
                } else {
                    Err(ExpErr::StaleHandle(t))
                }
            }
            Act::RegisterNew => {
                self.register(None, false);
                Ok(())
            }
        };
        self.in_callback = false;
        self.clients[id].action_result = Some(result);
        true
    }

    fn hub_info(&self, hub: u32) -> Result<&HubInfo, ExpErr> {
        match self.present.get(&hub) {
            Some(&h) => Ok(&self.hubs[h].info),
            None => Err(ExpErr::Api(Error::UnknownHub(HubId(hub)))),
        }
    }

    fn connector_info(&self, hub: u32, connector: u8) -> Result<&ConnectorInfo, ExpErr> {
        self.hub_info(hub)?
            .connectors
            .get(usize::from(connector))
            .ok_or(ExpErr::Api(Error::UnknownConnector(
                HubId(hub),
                ConnectorId(connector),
            )))
    }
}

fn connector_state() -> impl Strategy<Value = ConnectorState> {
    (
        any::<bool>(),
        any::<bool>(),
        select(vec![0u32, 15_000, 60_000]),
    )
        .prop_map(|(attached, source, mw)| ConnectorState {
            attached,
            power_role: if source {
                PowerRole::Source
            } else {
                PowerRole::Sink
            },
            partner_max_milliwatts: if attached { mw } else { 0 },
        })
}

fn action() -> BoxedStrategy<Option<Action>> {
    let trigger = prop_oneof![
        Just(Trigger::FirstEvent),
        Just(Trigger::FirstEventAfterRegister)
    ];
    let kind = prop_oneof![
        1 => Just(ActionKind::DeregisterSelf),
        1 => Just(ActionKind::RegisterNew),
        2 => (0..8usize).prop_map(|pick| ActionKind::DeregisterOther { pick }),
    ];
    prop_oneof![
        3 => Just(None),
        2 => (kind, trigger).prop_map(|(kind, trigger)| Some(Action { kind, trigger })),
    ]
    .boxed()
}

fn on_drop() -> BoxedStrategy<OnDrop> {
    prop_oneof![
        3 => Just(OnDrop::Nothing),
        1 => Just(OnDrop::Reenter),
        1 => Just(OnDrop::Panic),
    ]
    .boxed()
}

fn never_issued(m: &Model) -> BoxedStrategy<NeverIssued> {
    let mut kinds: Vec<(u32, BoxedStrategy<NeverIssued>)> = vec![
        (
            1,
            (0..4u16, 0..4u32)
                .prop_map(|(slot, generation)| NeverIssued::OtherInstance { slot, generation })
                .boxed(),
        ),
        (
            1,
            (prop_oneof![0..3u16, Just(u16::MAX)], 0..4u32)
                .prop_map(|(beyond, generation)| NeverIssued::PastLastSlot { beyond, generation })
                .boxed(),
        ),
        (
            1,
            (0..8usize)
                .prop_map(|pick| NeverIssued::GenerationZero { pick })
                .boxed(),
        ),
        (
            2,
            (0..8usize, prop_oneof![1..4u32, Just(u32::MAX)])
                .prop_map(|(pick, ahead)| NeverIssued::GenerationAhead { pick, ahead })
                .boxed(),
        ),
    ];
    if strict_unknown() && !m.free_slots().is_empty() {
        kinds.push((
            2,
            (0..8usize)
                .prop_map(|pick| NeverIssued::NextGenerationOfFreeSlot { pick })
                .boxed(),
        ));
    }
    Union::new_weighted(kinds).boxed()
}

/// The `pick`-th element, wrapping.
fn nth<T: Copy>(items: &[T], pick: usize) -> T {
    items[pick % items.len()]
}

impl ReferenceStateMachine for Model {
    type State = Model;
    type Transition = Transition;

    fn init_state() -> BoxedStrategy<Model> {
        Just(Model::default()).boxed()
    }

    fn transitions(m: &Model) -> BoxedStrategy<Transition> {
        let present: Vec<u32> = m.present.keys().copied().collect();
        // Queries and power assignments mostly name a present hub, sometimes any id.
        let hub_any = if present.is_empty() {
            (0..HUB_IDS).boxed()
        } else {
            prop_oneof![3 => select(present.clone()), 1 => 0..HUB_IDS].boxed()
        };
        // Connector 0 always exists, 1 often; MAX_CONNECTORS never.
        let connector_any = prop_oneof![4 => 0..=1u8, 1 => 0..=MAX_CONNECTORS];
        let pick = 0..8usize;
        let mut options: Vec<(u32, BoxedStrategy<Transition>)> = vec![
            (
                5,
                (any::<bool>(), action(), on_drop())
                    .prop_map(|(owned, action, on_drop)| Transition::Register {
                        owned,
                        action,
                        on_drop,
                    })
                    .boxed(),
            ),
            (
                1,
                never_issued(m)
                    .prop_map(Transition::DeregisterUnknown)
                    .boxed(),
            ),
            (
                3,
                (
                    0..HUB_IDS,
                    prop::collection::vec(connector_state(), 1..=usize::from(MAX_CONNECTORS)),
                )
                    .prop_map(|(hub, connectors)| Transition::HubArrival { hub, connectors })
                    .boxed(),
            ),
            (
                2,
                (
                    hub_any.clone(),
                    connector_any.clone(),
                    select(vec![500u32, 4_500, 15_000, 100_000]),
                )
                    .prop_map(
                        |(hub, connector, milliwatts)| Transition::AssignPowerLevel {
                            hub,
                            connector,
                            milliwatts,
                        },
                    )
                    .boxed(),
            ),
            (
                1,
                (hub_any.clone(), connector_any.clone())
                    .prop_map(|(hub, connector)| Transition::QueryConnector { hub, connector })
                    .boxed(),
            ),
            (
                1,
                hub_any.prop_map(|hub| Transition::QueryHub { hub }).boxed(),
            ),
        ];
        if m.clients.iter().any(|c| c.registered) {
            let via = prop_oneof![
                2 => Just(Via::Handle),
                1 => Just(Via::GuardDeregister),
                1 => Just(Via::GuardDrop),
            ];
            options.push((
                3,
                (pick.clone(), via)
                    .prop_map(|(pick, via)| Transition::Deregister { pick, via })
                    .boxed(),
            ));
        }
        if m.clients.iter().any(|c| !c.registered) {
            options.push((
                1,
                pick.clone()
                    .prop_map(|pick| Transition::DeregisterStale { pick })
                    .boxed(),
            ));
        }
        if !present.is_empty() {
            options.push((
                5,
                (pick.clone(), connector_any, connector_state())
                    .prop_map(
                        |(hub_pick, connector, state)| Transition::ConnectorChanged {
                            hub_pick,
                            connector,
                            state,
                        },
                    )
                    .boxed(),
            ));
            options.push((
                2,
                (pick, any::<bool>())
                    .prop_map(|(hub_pick, by_drop)| Transition::HubRemoval { hub_pick, by_drop })
                    .boxed(),
            ));
        }
        Union::new_weighted(options).boxed()
    }

    /// Only "is there anything to pick from": everything else resolves against the state.
    fn preconditions(m: &Model, t: &Transition) -> bool {
        match t {
            Transition::Deregister { .. } => m.clients.iter().any(|c| c.registered),
            Transition::DeregisterStale { .. } => m.clients.iter().any(|c| !c.registered),
            Transition::DeregisterUnknown(NeverIssued::NextGenerationOfFreeSlot { .. }) => {
                strict_unknown() && !m.free_slots().is_empty()
            }
            Transition::ConnectorChanged { .. } | Transition::HubRemoval { .. } => {
                !m.present.is_empty()
            }
            Transition::Register { .. }
            | Transition::DeregisterUnknown(_)
            | Transition::HubArrival { .. }
            | Transition::AssignPowerLevel { .. }
            | Transition::QueryConnector { .. }
            | Transition::QueryHub { .. } => true,
        }
    }

    fn apply(mut m: Model, t: &Transition) -> Model {
        m.expect = Expect::Nothing;
        m.target = Target::None;
        m.settled = m.clients.len();
        match t {
            Transition::Register { owned, action, .. } => {
                // Resolve the action against the clients that exist now.
                let action = action.and_then(|a| match a.kind {
                    ActionKind::DeregisterSelf => {
                        Some((Act::DeregisterSelf, Trigger::FirstEventAfterRegister))
                    }
                    ActionKind::RegisterNew => Some((Act::RegisterNew, a.trigger)),
                    ActionKind::DeregisterOther { pick } => {
                        Some((Act::DeregisterOther { pick }, a.trigger))
                    }
                });
                let id = m.register(action, *owned);
                m.clients[id].armed = true;
                m.target = Target::Client(id);
            }
            Transition::Deregister { pick, via } => {
                let id = nth(&m.ids(true), *pick);
                let via = if m.clients[id].guard {
                    *via
                } else {
                    Via::Handle
                };
                m.deregister(id);
                if via != Via::Handle {
                    m.clients[id].guard = false;
                }
                m.target = Target::Deregister(id, via);
                m.expect = Expect::Unit(Ok(()));
            }
            Transition::DeregisterStale { pick } => {
                let id = nth(&m.ids(false), *pick);
                m.target = Target::Client(id);
                m.expect = Expect::Unit(Err(ExpErr::StaleHandle(id)));
            }
            Transition::DeregisterUnknown(n) => {
                m.target = Target::Raw(m.resolve_never_issued(*n));
                // The contract: a handle never issued by this Policy Manager is unknown.
                m.expect = Expect::Unit(Err(ExpErr::UnknownHandle));
            }
            Transition::HubArrival { hub, connectors } => {
                if m.present.contains_key(hub) {
                    m.expect =
                        Expect::Unit(Err(ExpErr::Api(Error::HubAlreadyPresent(HubId(*hub)))));
                } else {
                    let info = HubInfo {
                        hub: HubId(*hub),
                        connectors: connectors
                            .iter()
                            .enumerate()
                            .map(|(i, state)| ConnectorInfo {
                                connector: ConnectorId(u8::try_from(i).unwrap()),
                                state: state.clone(),
                                assigned_power: None,
                            })
                            .collect(),
                    };
                    // Addressed to the clients registered now, in slot order.
                    let clients: Vec<ClientId> =
                        m.slots.iter().filter_map(|s| s.occupant).collect();
                    let note = Notification {
                        hub: HubId(*hub),
                        seq: 0,
                        event: Event::HubArrival(info.clone()),
                    };
                    let h = m.hubs.len();
                    m.hubs.push(RefHub {
                        info,
                        seq: 0,
                        removed: false,
                        appended: 0,
                        done: 0,
                        mailbox: VecDeque::new(),
                        subscribers: Vec::new(),
                    });
                    m.present.insert(*hub, h);
                    m.post(h, Item::Arrival { clients, note });
                    m.expect = Expect::Unit(Ok(()));
                }
            }
            Transition::ConnectorChanged {
                hub_pick,
                connector,
                state,
            } => {
                let hub = &nth(&m.present.keys().copied().collect::<Vec<_>>(), *hub_pick);
                m.target = Target::Hub(*hub);
                let h = m.present[hub];
                let hb = &mut m.hubs[h];
                match hb.info.connectors.get_mut(usize::from(*connector)) {
                    None => {
                        m.expect = Expect::Unit(Err(ExpErr::Api(Error::UnknownConnector(
                            HubId(*hub),
                            ConnectorId(*connector),
                        ))));
                    }
                    Some(c) => {
                        c.state = state.clone();
                        hb.seq += 1;
                        let note = Notification {
                            hub: HubId(*hub),
                            seq: hb.seq,
                            event: Event::ConnectorStateChange {
                                connector: ConnectorId(*connector),
                                state: state.clone(),
                            },
                        };
                        m.post(h, Item::Change(note));
                        m.expect = Expect::Unit(Ok(()));
                    }
                }
            }
            Transition::HubRemoval { hub_pick, .. } => {
                let hub = &nth(&m.present.keys().copied().collect::<Vec<_>>(), *hub_pick);
                m.target = Target::Hub(*hub);
                // Gone from the registry first: a registration made while the removal is
                // being delivered gets no arrival replay of it.
                let h = m.present.remove(hub).expect("picked from present");
                let hb = &mut m.hubs[h];
                hb.removed = true;
                hb.seq += 1;
                let note = Notification {
                    hub: HubId(*hub),
                    seq: hb.seq,
                    event: Event::HubRemoval,
                };
                m.post(h, Item::Removal(note));
            }
            Transition::AssignPowerLevel {
                hub,
                connector,
                milliwatts,
            } => {
                let r = m.connector_info(*hub, *connector).map(|_| ());
                if r.is_ok() {
                    let h = m.present[hub];
                    m.hubs[h].info.connectors[usize::from(*connector)].assigned_power =
                        Some(PowerLevel {
                            milliwatts: *milliwatts,
                        });
                }
                m.expect = Expect::Unit(r);
            }
            Transition::QueryConnector { hub, connector } => {
                m.expect = Expect::Connector(m.connector_info(*hub, *connector).cloned());
            }
            Transition::QueryHub { hub } => {
                m.expect = Expect::Hub(m.hub_info(*hub).cloned());
            }
        }
        m
    }
}

// ---------------------------------------------------------------------------------------
// System under test
// ---------------------------------------------------------------------------------------

type Log = Arc<Mutex<Vec<Notification>>>;

/// Locks, ignoring poison: after a failed assertion the SUT is still torn down (hub
/// removals are delivered to these logs), and that must not panic inside callbacks.
fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
type Spawned = Arc<Mutex<Vec<(ClientHandle, Log)>>>;

/// What `DeregisterOther` callbacks target during the current transition: the handles of
/// the clients that existed when it began, and the choice the model made for each client
/// whose action fires in it.
#[derive(Default)]
struct Script {
    handles: Vec<ClientHandle>,
    targets: BTreeMap<ClientId, ClientId>,
}

enum SutAction {
    DeregisterSelf,
    DeregisterOther(Arc<Mutex<Script>>),
    RegisterNew,
}

/// A client's callback context: it logs every notification and performs its action once.
struct Ctx {
    /// The model's id of this client (unused by plain clients).
    id: ClientId,
    log: Log,
    /// Set right after `register` returns.
    own: OnceLock<ClientHandle>,
    action: Option<(SutAction, Trigger)>,
    fired: AtomicBool,
    result: Arc<Mutex<Option<Result<(), Error>>>>,
    spawned: Spawned,
}

fn on_event(ctx: &Ctx, pm: &PolicyManager, n: &Notification) {
    locked(&ctx.log).push(n.clone());
    let Some((action, trigger)) = &ctx.action else {
        return;
    };
    if *trigger == Trigger::FirstEventAfterRegister && ctx.own.get().is_none() {
        return;
    }
    if ctx.fired.swap(true, Ordering::SeqCst) {
        return;
    }
    // Never assert in here: a panic would be contained by the library. Record instead.
    let result = match action {
        SutAction::DeregisterSelf => pm.deregister(*ctx.own.get().expect("armed")),
        SutAction::DeregisterOther(script) => {
            let target = {
                let s = locked(script);
                s.targets.get(&ctx.id).map(|&t| s.handles[t])
            };
            match target {
                Some(h) => pm.deregister(h),
                None => return, // the model found nobody to target
            }
        }
        SutAction::RegisterNew => {
            let (config, log) = plain_client(ctx.spawned.clone());
            // A refusal becomes the action's result, which the model expects to be `Ok`
            // (a panic here would only be contained as a panicking callback).
            pm.register(config)
                .map(|h| locked(&ctx.spawned).push((h, log)))
        }
    };
    *locked(&ctx.result) = Some(result);
}

/// What the test sees of a context's death.
#[derive(Default)]
struct Death {
    drops: AtomicUsize,
    /// What the re-entrant deregister of its own handle returned (`OnDrop::Reenter`).
    reentered: Mutex<Option<Result<(), Error>>>,
}

/// The context the library owns for a client registered by a `Register` transition.
struct Owned {
    ctx: Arc<Ctx>,
    on_drop: OnDrop,
    death: Arc<Death>,
    /// The Policy Manager while the case runs (emptied when the SUT is dropped, so that
    /// no context keeps its own Policy Manager alive).
    pm: Arc<Mutex<Option<PolicyManager>>>,
    /// Panics raised by contexts' drops.
    panics: Arc<AtomicU64>,
}

impl Drop for Owned {
    fn drop(&mut self) {
        self.death.drops.fetch_add(1, Ordering::SeqCst);
        match self.on_drop {
            OnDrop::Nothing => {}
            OnDrop::Reenter => {
                let pm = locked(&self.pm).clone();
                if let (Some(pm), Some(&own)) = (pm, self.ctx.own.get()) {
                    let r = pm.deregister(own);
                    let _ = pm.query_hub(HubId(0));
                    let _ = pm.client_count();
                    *locked(&self.death.reentered) = Some(r);
                }
            }
            OnDrop::Panic => {
                self.panics.fetch_add(1, Ordering::SeqCst);
                std::panic::panic_any(usbpm_model::base::panics::ModelPanic);
            }
        }
    }
}

fn plain_client(spawned: Spawned) -> (ClientConfig, Log) {
    let log: Log = Arc::default();
    let ctx = Ctx {
        id: usize::MAX,
        log: log.clone(),
        own: OnceLock::new(),
        action: None,
        fired: AtomicBool::new(false),
        result: Arc::default(),
        spawned,
    };
    (ClientConfig::new(ctx, on_event), log)
}

struct SutClient {
    handle: ClientHandle,
    log: Log,
    result: Arc<Mutex<Option<Result<(), Error>>>>,
    guard: Option<Registration>,
    /// Log length when an outer `deregister` returned: nothing may be added afterwards.
    len_at_deregister: Option<usize>,
    /// Its context's drop behaviour and death (clients registered inside callbacks: none).
    context: Option<(OnDrop, Arc<Death>)>,
}

struct Sut {
    pm: PolicyManager,
    ports: BTreeMap<u32, HubPort>,
    clients: Vec<SutClient>,
    spawned: Spawned,
    script: Arc<Mutex<Script>>,
    /// The Policy Manager as contexts' drops reach it (see `Owned`).
    pm_cell: Arc<Mutex<Option<PolicyManager>>>,
    /// Panics raised by contexts' drops: the only panics in this test.
    drop_panics: Arc<AtomicU64>,
}

impl Drop for Sut {
    fn drop(&mut self) {
        // Contexts dropped with the Policy Manager (clients still registered) no longer
        // reach it, and none of them keeps it alive.
        *locked(&self.pm_cell) = None;
    }
}

impl Sut {
    fn handle(&self, id: ClientId) -> ClientHandle {
        self.clients[id].handle
    }

    fn instance(&self) -> Option<u64> {
        self.clients.first().map(|c| c.handle.into_raw() >> 32)
    }

    fn map_err(&self, e: &ExpErr, passed: Option<ClientHandle>) -> Error {
        match e {
            ExpErr::UnknownHandle => Error::UnknownHandle(passed.expect("the handle passed")),
            ExpErr::StaleHandle(id) => Error::StaleHandle(self.handle(*id)),
            ExpErr::DeregisterFromOwnCallback(id) => {
                Error::DeregisterFromOwnCallback(self.handle(*id))
            }
            ExpErr::Api(e) => e.clone(),
        }
    }

    fn expected<T: Clone>(
        &self,
        r: &Result<T, ExpErr>,
        passed: Option<ClientHandle>,
    ) -> Result<T, Error> {
        r.clone().map_err(|e| self.map_err(&e, passed))
    }

    fn take_spawned(&mut self) {
        for (handle, log) in locked(&self.spawned).drain(..) {
            self.clients.push(SutClient {
                handle,
                log,
                result: Arc::default(),
                guard: None,
                len_at_deregister: None,
                context: None,
            });
        }
    }
}

fn expect_unit(m: &Model) -> &Result<(), ExpErr> {
    match &m.expect {
        Expect::Unit(r) => r,
        other => panic!("model: expected a unit result, have {other:?}"),
    }
}

/// The process's watchdog (`judge::stall`): every Policy Manager of the state machine
/// reports its steps to it, and an operation in which no thread can make progress fails
/// the process at once, with the reason, instead of waiting for nextest's timeout.
fn watchdog() -> &'static Arc<Watchdog> {
    static DOG: OnceLock<Arc<Watchdog>> = OnceLock::new();
    DOG.get_or_init(|| {
        Watchdog::start(|report| {
            eprintln!("\nPROPERTY VIOLATED: P3 no deadlock, no lost wake-up\n  an operation of the state machine: {report}");
            std::process::exit(101);
        })
    })
}

fn new_pm() -> PolicyManager {
    let dog = watchdog();
    dog.reset();
    PolicyManager::checking(
        usbpm_model::checkers::check::mutant_from_env(),
        Some(dog.clone()),
    )
}

struct ApiTest;

impl StateMachineTest for ApiTest {
    type SystemUnderTest = Sut;
    type Reference = Model;

    fn init_test(_: &Model) -> Sut {
        usbpm_model::base::panics::silence_model_panics();
        let pm = new_pm();
        Sut {
            pm_cell: Arc::new(Mutex::new(Some(pm.clone()))),
            pm,
            ports: BTreeMap::new(),
            clients: Vec::new(),
            spawned: Arc::default(),
            script: Arc::default(),
            drop_panics: Arc::default(),
        }
    }

    fn apply(mut sut: Sut, m: &Model, t: Transition) -> Sut {
        let _watched = watchdog().operation();
        assert_eq!(sut.clients.len(), m.settled, "model: clients out of step");
        *locked(&sut.script) = Script {
            handles: sut.clients.iter().map(|c| c.handle).collect(),
            targets: (m.clients.iter().enumerate())
                .filter_map(|(id, c)| Some((id, c.deregistered_other?)))
                .collect(),
        };
        match t {
            Transition::Register { owned, on_drop, .. } => {
                let id = sut.clients.len();
                assert_eq!(
                    m.target,
                    Target::Client(id),
                    "model: client ids out of step"
                );
                let log: Log = Arc::default();
                let result: Arc<Mutex<Option<Result<(), Error>>>> = Arc::default();
                let ctx = Arc::new(Ctx {
                    id,
                    log: log.clone(),
                    own: OnceLock::new(),
                    // The action as the model keeps it (DeregisterSelf's trigger normalised).
                    action: m.clients[id].action.map(|(act, trigger)| {
                        let act = match act {
                            Act::DeregisterSelf => SutAction::DeregisterSelf,
                            Act::DeregisterOther { .. } => {
                                SutAction::DeregisterOther(sut.script.clone())
                            }
                            Act::RegisterNew => SutAction::RegisterNew,
                        };
                        (act, trigger)
                    }),
                    fired: AtomicBool::new(false),
                    result: result.clone(),
                    spawned: sut.spawned.clone(),
                });
                let death: Arc<Death> = Arc::default();
                let owned_ctx = Owned {
                    ctx: ctx.clone(),
                    on_drop,
                    death: death.clone(),
                    pm: sut.pm_cell.clone(),
                    panics: sut.drop_panics.clone(),
                };
                let config =
                    ClientConfig::new(owned_ctx, |o: &Owned, pm, n| on_event(&o.ctx, pm, n));
                let (handle, guard) = if owned {
                    let g = sut.pm.register_owned(config).expect("register_owned");
                    (g.handle(), Some(g))
                } else {
                    (sut.pm.register(config).expect("register"), None)
                };
                ctx.own.set(handle).unwrap();
                // Clients registered inside callbacks during this call came after it.
                let mut spawned = std::mem::take(&mut *locked(&sut.spawned));
                sut.clients.push(SutClient {
                    handle,
                    log,
                    result,
                    guard,
                    len_at_deregister: None,
                    context: Some((on_drop, death)),
                });
                locked(&sut.spawned).append(&mut spawned);
            }
            Transition::Deregister { .. } => {
                let Target::Deregister(client, via) = m.target else {
                    panic!("model: {m:?}")
                };
                let c = &mut sut.clients[client];
                let r = match via {
                    Via::Handle => sut.pm.deregister(c.handle),
                    Via::GuardDeregister => {
                        let g = c.guard.take().expect("model: guard alive");
                        g.deregister().map_err(|(e, g)| {
                            c.guard = Some(g);
                            e
                        })
                    }
                    Via::GuardDrop => {
                        drop(c.guard.take().expect("model: guard alive"));
                        Ok(())
                    }
                };
                c.len_at_deregister = Some(locked(&c.log).len());
                let want = sut.expected(expect_unit(m), None);
                assert_eq!(r, want, "deregister({client} via {via:?})");
            }
            Transition::DeregisterStale { .. } => {
                let Target::Client(client) = m.target else {
                    panic!("model: {m:?}")
                };
                let h = sut.handle(client);
                let r = sut.pm.deregister(h);
                assert_eq!(
                    r,
                    sut.expected(expect_unit(m), Some(h)),
                    "deregister(stale {h})"
                );
            }
            Transition::DeregisterUnknown(_) => {
                let Target::Raw(n) = m.target else {
                    panic!("model: {m:?}")
                };
                let ours = sut.instance().unwrap_or(0);
                let instance = if n.other_instance {
                    ours ^ 0x5a5a
                } else {
                    ours
                };
                // Raw layout: instance (32 bits) | slot (16) | generation (16).
                let raw = (instance << 32)
                    | (u64::from(n.slot) << 16)
                    | u64::from(n.generation.min(0xFFFF));
                let h = ClientHandle::from_raw(raw);
                assert!(
                    sut.clients.iter().all(|c| c.handle != h),
                    "test bug: never-issued handle {h} collides with an issued one"
                );
                let r = sut.pm.deregister(h);
                assert_eq!(
                    r,
                    sut.expected(expect_unit(m), Some(h)),
                    "deregister(never issued {h}, raw {raw:#x})"
                );
            }
            Transition::HubArrival { hub, connectors } => {
                let r = sut.pm.hub_arrival(HubId(hub), connectors);
                let (r, port) = match r {
                    Ok(p) => (Ok(()), Some(p)),
                    Err(e) => (Err(e), None),
                };
                assert_eq!(r, sut.expected(expect_unit(m), None), "hub_arrival({hub})");
                if let Some(port) = port {
                    assert_eq!(port.id(), HubId(hub));
                    assert!(
                        sut.ports.insert(hub, port).is_none(),
                        "two ports for hub {hub}"
                    );
                }
            }
            Transition::ConnectorChanged {
                connector, state, ..
            } => {
                let Target::Hub(hub) = m.target else {
                    panic!("model: {m:?}")
                };
                let r = sut.ports[&hub].connector_changed(ConnectorId(connector), state);
                assert_eq!(
                    r,
                    sut.expected(expect_unit(m), None),
                    "connector_changed({hub}, {connector})"
                );
            }
            Transition::HubRemoval { by_drop, .. } => {
                let Target::Hub(hub) = m.target else {
                    panic!("model: {m:?}")
                };
                let port = sut.ports.remove(&hub).expect("model: port present");
                if by_drop {
                    drop(port);
                } else {
                    port.remove();
                }
            }
            Transition::AssignPowerLevel {
                hub,
                connector,
                milliwatts,
            } => {
                let r = sut.pm.assign_power_level(
                    HubId(hub),
                    ConnectorId(connector),
                    PowerLevel { milliwatts },
                );
                assert_eq!(
                    r,
                    sut.expected(expect_unit(m), None),
                    "assign_power_level({hub}, {connector})"
                );
            }
            Transition::QueryConnector { hub, connector } => {
                let r = sut.pm.query_connector(HubId(hub), ConnectorId(connector));
                let Expect::Connector(want) = &m.expect else {
                    panic!("model: {:?}", m.expect)
                };
                assert_eq!(
                    r,
                    sut.expected(want, None),
                    "query_connector({hub}, {connector})"
                );
            }
            Transition::QueryHub { hub } => {
                let r = sut.pm.query_hub(HubId(hub));
                let Expect::Hub(want) = &m.expect else {
                    panic!("model: {:?}", m.expect)
                };
                assert_eq!(r, sut.expected(want, None), "query_hub({hub})");
            }
        }
        sut.take_spawned();
        sut
    }

    /// Ends every case the way a driver stack unloads: every remaining hub is removed
    /// (its port dropped) and checked like a step, then every live `Registration` guard
    /// is dropped, which deregisters its client if it is still registered.
    fn teardown(mut sut: Sut, mut m: Model) {
        while !m.present.is_empty() {
            let t = Transition::HubRemoval {
                hub_pick: 0,
                by_drop: true,
            };
            m = <Model as ReferenceStateMachine>::apply(m, &t);
            sut = Self::apply(sut, &m, t);
            Self::check_invariants(&sut, &m);
        }
        for (id, c) in sut.clients.iter_mut().enumerate() {
            if c.guard.take().is_some() && m.clients[id].registered {
                m.deregister(id);
            }
        }
        Self::check_invariants(&sut, &m);
        assert_eq!(sut.pm.client_count(), m.registered_count());
        // Every hub is gone and every queue delivered: nothing but the registry holds a
        // client, so each deregistered client's context has died.
        for (id, c) in sut.clients.iter().enumerate() {
            if let Some((_, death)) = &c.context {
                if !m.clients[id].registered {
                    assert_eq!(
                        death.drops.load(Ordering::SeqCst),
                        1,
                        "client {id} ({}): deregistered and every hub removed, but its context was not dropped",
                        c.handle
                    );
                }
            }
        }
    }

    fn check_invariants(sut: &Sut, m: &Model) {
        assert_eq!(
            sut.clients.len(),
            m.clients.len(),
            "clients created (incl. inside callbacks)"
        );
        assert_eq!(
            sut.pm.client_count(),
            m.registered_count(),
            "client_count()"
        );
        assert_eq!(
            sut.pm.panicked_callbacks(),
            sut.drop_panics.load(Ordering::SeqCst),
            "panics contained: only contexts' drops panic in this test, each one counted"
        );
        for (id, (c, r)) in sut.clients.iter().zip(&m.clients).enumerate() {
            // The model's slot table drives its delivery order; make sure it is in step.
            assert_eq!(
                (c.handle.slot(), u32::from(c.handle.into_raw() as u16)),
                (usize::from(r.slot), r.generation),
                "client {id}: handle {} is not the predicted slot.generation",
                c.handle
            );
            // A copy: no lock is held while asserting (teardown after a failure still
            // delivers removals to this log).
            let log = locked(&c.log).clone();
            assert_eq!(
                log, r.log,
                "client {id} ({}): received log differs from the reference",
                c.handle
            );
            check_log_shape(id, &log);
            if let Some(len) = c.len_at_deregister {
                assert_eq!(
                    log.len(),
                    len,
                    "client {id}: notified after deregister returned"
                );
            }
            let got = locked(&c.result).clone();
            let want = r.action_result.as_ref().map(|w| sut.expected(w, None));
            assert_eq!(got, want, "client {id}: result of its callback's action");
            if let Some((on_drop, death)) = &c.context {
                let drops = death.drops.load(Ordering::SeqCst);
                assert!(drops <= 1, "client {id}: its context dropped {drops} times");
                if r.registered {
                    assert_eq!(
                        drops, 0,
                        "client {id}: its context dropped while registered"
                    );
                }
                if drops == 1 && *on_drop == OnDrop::Reenter {
                    assert_eq!(
                        *locked(&death.reentered),
                        Some(Err(Error::StaleHandle(c.handle))),
                        "client {id}: its context's drop deregistered its own handle"
                    );
                }
            }
        }
        for hub in 0..HUB_IDS {
            let want = sut.expected(&m.hub_info(hub).cloned(), None);
            assert_eq!(
                sut.pm.query_hub(HubId(hub)),
                want,
                "query_hub({hub}) after the step"
            );
        }
        assert!(
            sut.ports.keys().eq(m.present.keys()),
            "ports vs present hubs"
        );
    }
}

/// Per hub, a client sees: an arrival, then consecutive sequence numbers, ending with
/// the removal, after which only a new arrival (the hub arriving again) may come.
fn check_log_shape(id: ClientId, log: &[Notification]) {
    // Some(last seq) while the hub is live for this client, None after its removal.
    let mut hubs: BTreeMap<HubId, Option<u64>> = BTreeMap::new();
    for (i, n) in log.iter().enumerate() {
        let last = hubs.get(&n.hub).copied().flatten();
        let ctx = || format!("client {id}, notification {i}: {n:?} (log {log:#?})");
        match &n.event {
            Event::HubArrival(info) => {
                assert!(last.is_none(), "arrival while the hub is live: {}", ctx());
                assert_eq!(info.hub, n.hub, "{}", ctx());
                for (k, c) in info.connectors.iter().enumerate() {
                    assert_eq!(usize::from(c.connector.0), k, "{}", ctx());
                }
                hubs.insert(n.hub, Some(n.seq));
            }
            Event::ConnectorStateChange { .. } => {
                assert_eq!(
                    last.map(|p| p + 1),
                    Some(n.seq),
                    "change out of sequence: {}",
                    ctx()
                );
                hubs.insert(n.hub, Some(n.seq));
            }
            Event::HubRemoval => {
                assert_eq!(
                    last.map(|p| p + 1),
                    Some(n.seq),
                    "removal out of sequence: {}",
                    ctx()
                );
                hubs.insert(n.hub, None);
            }
        }
    }
}

prop_state_machine! {
    // Cases come from Config::default(): 256 unless PROPTEST_CASES says otherwise.
    // No failure persistence: a tests/ file has no src/ sibling for proptest's default
    // regressions directory, and this file's owner keeps to this one file. A failure
    // prints the shrunk transition sequence; turn it into a deterministic test if needed.
    #![proptest_config(Config {
        max_shrink_iters: 4096,
        failure_persistence: None,
        ..Config::default()
    })]

    #[test]
    fn policy_manager_matches_reference(sequential 1..30 => ApiTest);
}

/// Found by this test: a handle that was never issued, but names a freed slot with the
/// generation its next client will get, was answered `StaleHandle`; `Error::UnknownHandle`
/// and `ClientHandle::from_raw` promise `UnknownHandle` for any never-issued handle.
#[test]
fn never_issued_next_generation_handle_is_unknown() {
    let pm = PolicyManager::new();
    let h = pm.register(ClientConfig::new((), |_, _, _| {})).unwrap();
    pm.deregister(h).unwrap();
    // Same instance and slot, generation + 1: never issued (yet).
    let next = ClientHandle::from_raw(h.into_raw() + 1);
    assert_eq!(pm.deregister(next), Err(Error::UnknownHandle(next)));
}

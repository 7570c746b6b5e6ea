//! A proptest-state-machine test of the public API of `usbpm::PolicyManager` against a
//! small reference model of the client contract.
//!
//! The reference (`Model`) is plain data: the slot table that hands out client handles,
//! which clients are registered with which granted access, which hubs are present (each
//! presence of a hub id numbered from 1) with which connector states (attach counts and
//! the power levels the hardware accepted included), sequence counter and power requests
//! waiting for the hardware, whether the Policy Manager has shut down, and for every
//! client the exact list of notifications it must have received. The system under test
//! (`Sut`) is driven from one thread, so delivery is synchronous: a hardware call on an
//! idle hub delivers to every client before it returns. After every transition the test
//! asserts exact equality of each client's received log against the reference, plus
//! independent invariants (client_count, per-client log shape: `PolicyManagerArrival`
//! first and exactly once, per-hub arrival then consecutive sequence numbers, and
//! `PolicyManagerRemoval` last; the system-side `hub_snapshot` and each port's hub
//! handle; no uncounted panics).
//!
//! Client calls. `hub_properties`, `connector_state` and `assign_power_level` take the
//! caller's client handle (live, deregistered, or never issued) and a hub handle of the
//! latest presence, an earlier one, presence 0 or one that never was; the model predicts
//! the refusal in the order the library documents (shut down, client handle, access,
//! hub, presence, connector, and for power requests: a sink with a partner attached).
//! `assign_power_level` is asynchronous: `Ok` only passes the request to the hardware,
//! which changes nothing; the `AnswerPower` transition takes a hub's pending requests
//! (`HubPort::power_requests`, compared with the model's) and answers each (accept or
//! reject): an accepted request whose partner is still attached (same attach count) sets
//! the connector's `assigned_power` and is reported as a connector change; anything else
//! changes nothing. A partner that detaches takes its assigned power with it.
//!
//! Re-entrant callbacks. A client may be registered with an *action* that its callback
//! performs once, on its first event (its `PolicyManagerArrival`, delivered inside
//! `register`) or on its first event after `register` returned:
//! - `DeregisterSelf` (with the handle `ClientConfig::with_handle` passes) must be refused
//!   with `Error::DeregisterFromOwnCallback` and leave the client registered;
//! - `DeregisterOther` deregisters another client, chosen when the action fires among
//!   those that existed when the step began (so possibly one registered later, further
//!   along the delivery order); it must return `Ok` (or `StaleHandle` if the target is
//!   already gone) and the target must receive nothing from then on, including the rest
//!   of the event being delivered;
//! - `RegisterNew` registers a plain client from inside the callback (refused with
//!   `PolicyManagerRemoved` inside a `PolicyManagerRemoval` callback);
//! - `Shutdown` must be refused with `ShutdownInsideCallback`;
//! - `ReportChange` reports a connector change through the port of a present hub (one
//!   whose `hub_arrival` has returned): queued, and delivered by the thread's outermost
//!   call (an obligation), or refused with `UnknownConnector`.
//!
//! A client may also *probe*: on every hub event its callback retrieves the hub's
//! properties with the event's hub handle, which must succeed (with the state the hub is
//! in) even inside the hub's `HubRemoval` callback, or be refused for lack of query
//! access.
//!
//! Those make observable the delivery *order across clients* and when the deliveries a
//! callback causes happen, which the contract does not pin down, so for them the
//! reference models the implementation's documented queueing (src/hub.rs module docs,
//! `PolicyManager::register`): each hub has a mailbox whose items carry tickets; a call
//! made outside callbacks adds its item and delivers the mailbox up to it, then settles
//! its thread's obligations oldest first; an addition made inside a callback only records
//! an obligation (hub, highest ticket), so callbacks never nest. `register` outside
//! callbacks delivers the client's Policy Manager arrival, then submits an arrival replay
//! for every hub id that ever arrived (ascending id; one no longer present appends
//! nothing), each delivered and followed by settling the obligations before the next;
//! inside a callback it records a greeting obligation (the arrival, then the replays) for
//! the thread's outermost call. A hub's arrival goes to the clients registered when it
//! arrived in slot order. A change is folded into the hub's state when it is queued, so
//! a replay or a probe sees every change queued before it. A client registered from
//! inside a callback is plain (no action, no probe, all access), so every action belongs
//! to a client registered outside callbacks.
//!
//! Shutdown. `PolicyManager::shutdown` delivers `PolicyManagerRemoval` to every
//! registered client in slot order (skipping one deregistered meanwhile by an earlier
//! client's removal callback); afterwards every call but `deregister` and the system
//! side's is refused with `PolicyManagerRemoved`, and hub reports still change the hubs
//! but reach no client.
//!
//! Contexts. A client registered by a `Register` transition may own a context whose
//! `Drop` does something (`OnDrop`): re-enters the Policy Manager (deregisters its own
//! handle, which must be refused with `StaleHandle` since the context dies only after the
//! client is deregistered, and reads a hub snapshot), or panics (the library must contain
//! it and count it in `panicked_callbacks`). Neither changes the reference's state, so
//! the model need not predict when the library lets go of a context; the test checks what
//! it can without that: no context dies while its client is registered, none dies twice,
//! each re-entry got `StaleHandle`, every contained panic is a context's, and once every
//! hub is removed every deregistered client's context has died (nothing else holds it).
//!
//! Each case ends by removing the remaining hubs and dropping live `Registration`
//! guards, checked like the steps.
//!
//! Not covered here (single thread): concurrent delivery, deregister waiting for
//! callbacks running on other threads, `WouldDeadlock` (needs two threads waiting on each
//! other), panicking callbacks, `Registration` dropped inside its own callback (detach
//! without waiting), concurrent deregistration of one handle, contexts' drops that change
//! what clients are told (a change reported, a client registered: the generated programs
//! of the loom and shuttle harness have them), retrieving a hub through the handle of a
//! presence whose removal is still being delivered while the hub has arrived again (needs
//! a hub arrival from inside a removal callback), power answers given from inside
//! callbacks. Those are the loom/shuttle harness's job. Two handle-classification bugs
//! this test found (a never-issued next-generation handle answered `StaleHandle`; 16-bit
//! instance numbers that wrapped after 65,536 Policy Managers) are fixed; the first is
//! pinned by a test at the end. A registration refused after shutdown is made with a
//! context whose drop does not panic: the refused `register` drops the context itself,
//! and a panic out of that drop unwinds out of `register` instead of being contained.
//!
//! Environment:
//! - `PROPTEST_CASES` overrides the number of cases (default 256; the config is built
//!   from `Config::default()`, which reads it).
//! - `USBPM_MUTANT=<name>` (as the gate sets it) runs the library with one seeded bug:
//!   `replay-misses-hub` shrinks to HubArrival, Register; `no-generation` to Register,
//!   Deregister, Register, DeregisterStale (the stale handle deregisters the slot's new
//!   client), or hangs when a callback's stale deregister lands on its own reused slot,
//!   which the gate's timeout reports. At 256 cases this test also kills
//!   `replay-stale-snapshot`, `change-not-folded`, `arrival-not-first`,
//!   `removal-not-last`, `access-checked-late`, `rejected-request-reported`,
//!   `removal-hides-hub`, `obligation-forgotten`, `drain-one-per-pass`, and
//!   `own-callback-waits` and `callback-under-hub-lock` (hangs the watchdog reports).
//!   Most other mutants need concurrency to show.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::Union;
use proptest::test_runner::Config;
use proptest_state_machine::{prop_state_machine, ReferenceStateMachine, StateMachineTest};
use usbpm::{
    Access, ClientConfig, ClientHandle, ConnectorHandle, ConnectorId, ConnectorInfo,
    ConnectorState, Error, Event, HubHandle, HubId, HubInfo, HubPort, Notification, PolicyManager,
    PowerLevel, PowerRequest, PowerRole, Registration,
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
// resolved to (`Model::target`, `RefClient::action_target`) and the SUT acts on that.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Trigger {
    /// The client's very first notification: its `PolicyManagerArrival`, delivered
    /// inside `register`.
    FirstEvent,
    /// The first notification delivered after `register` returned.
    FirstEventAfterRegister,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum ActionKind {
    /// Deregister its own handle (the one `with_handle` passes): refused.
    DeregisterSelf,
    /// Deregister the `pick`-th of the other clients that existed (in any state) when
    /// the transition that triggers the action began; chosen when it fires, so it can be
    /// a client registered after this one, later in the delivery order.
    DeregisterOther { pick: usize },
    /// Register a plain client (no action) from inside the callback.
    RegisterNew,
    /// Shut the Policy Manager down from inside the callback: refused.
    Shutdown,
    /// Report a change of `connector` (maybe out of range) of the `hub_pick`-th hub whose
    /// port the test holds when the action fires (a present hub, not one whose arrival is
    /// being delivered): from inside a callback this only queues the change, which the
    /// thread's outermost call delivers.
    ReportChange {
        hub_pick: usize,
        connector: u8,
        state: ConnectorState,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Action {
    kind: ActionKind,
    trigger: Trigger,
}

/// What a client's context does when the library drops it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OnDrop {
    Nothing,
    /// Calls back into the Policy Manager: deregisters its own handle (stale by then) and
    /// reads a hub snapshot and the client count.
    Reenter,
    /// Panics.
    Panic,
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
    /// The generation the `pick`-th *free* slot's next client will get (the library
    /// answered `StaleHandle` until this test found it).
    NextGenerationOfFreeSlot { pick: usize },
}

/// Which client makes a client call: the `pick`-th registered one, the `pick`-th
/// deregistered one (falling back to the other kind when there is none), or a handle
/// that was never issued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CallerPick {
    Live(usize),
    Stale(usize),
    Unknown,
}

/// Which presence of a hub id a call's hub handle names, relative to the id's latest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PresencePick {
    /// The latest (1 for an id that never arrived).
    Latest,
    /// That many before the latest (0 when it goes below 1).
    Back(u32),
    /// One after the latest: never seen yet.
    Ahead,
}

/// What a callback's action chose when it fired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ActionTarget {
    /// The client a `DeregisterOther` deregistered.
    Client(ClientId),
    /// The hub a `ReportChange` reported on.
    Hub(u32),
}

/// A concrete handle, minus the instance bits that only the SUT knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct RawHandle {
    other_instance: bool,
    slot: u16,
    generation: u32,
}

/// A client call's caller as resolved by the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Caller {
    Client(ClientId),
    Raw(RawHandle),
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
    /// A client call: who calls, about which hub presence and connector (0 for a call
    /// about the hub).
    Call(Caller, HubHandle, u8),
}

#[derive(Clone, Debug)]
enum Transition {
    Register {
        owned: bool,
        action: Option<Action>,
        on_drop: OnDrop,
        access: Access,
        probe: bool,
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
    /// The hardware of the `hub_pick`-th present hub with pending power requests (of any
    /// present hub if none has one) takes them and answers the `i`-th with bit `i % 8` of
    /// `accepts`.
    AnswerPower {
        hub_pick: usize,
        accepts: u8,
    },
    /// With `aim`, `hub` and `connector` are replaced by the `aim`-th connector that is
    /// a sink with a partner attached, if a present hub has one.
    AssignPowerLevel {
        caller: CallerPick,
        aim: Option<usize>,
        hub: u32,
        presence: PresencePick,
        connector: u8,
        milliwatts: u32,
    },
    /// `connector_state`.
    QueryConnector {
        caller: CallerPick,
        hub: u32,
        presence: PresencePick,
        connector: u8,
    },
    /// `hub_properties`.
    QueryHub {
        caller: CallerPick,
        hub: u32,
        presence: PresencePick,
    },
    /// The system side's `hub_snapshot`.
    HubSnapshot {
        hub: u32,
    },
    Shutdown,
}

// ---------------------------------------------------------------------------------------
// Reference model
// ---------------------------------------------------------------------------------------

/// An expected error; errors naming a client name it abstractly (the SUT maps the id to
/// its handle), everything else is the concrete `Error`.
#[derive(Clone, Debug, PartialEq)]
enum ExpErr {
    /// `UnknownHandle` of the handle the SUT passed.
    UnknownHandle,
    StaleHandle(ClientId),
    DeregisterFromOwnCallback(ClientId),
    AccessDenied {
        client: ClientId,
        needs: Access,
        granted: Access,
    },
    Api(Error),
}

/// A power request as the model keeps it until the hardware takes it.
#[derive(Clone, Debug, PartialEq)]
struct RefRequest {
    client: ClientId,
    connector: ConnectorHandle,
    level: PowerLevel,
    attach_count: u32,
}

/// What the last transition must have returned.
#[derive(Clone, Debug, PartialEq, Default)]
enum Expect {
    #[default]
    Nothing,
    Unit(Result<(), ExpErr>),
    Connector(Result<ConnectorInfo, ExpErr>),
    Hub(Result<HubInfo, ExpErr>),
    /// The requests the hardware takes, and for each whether its answer was reported.
    Answers {
        requests: Vec<RefRequest>,
        reported: Vec<bool>,
    },
}

#[derive(Clone, Debug)]
struct RefClient {
    /// The handle the slot table predicts (slot, generation).
    slot: u16,
    generation: u32,
    registered: bool,
    /// A `Registration` guard for it is alive in the SUT.
    guard: bool,
    /// What it was granted (what it asked for: the Policy Manager grants everything).
    access: Access,
    action: Option<Action>,
    /// Its callback retrieves the hub's properties on every hub event.
    probe: bool,
    /// Its `register` call has returned.
    armed: bool,
    fired: bool,
    /// What its action chose when it fired (None: nobody to pick).
    action_target: Option<ActionTarget>,
    action_result: Option<Result<(), ExpErr>>,
    /// Every notification it must have received, in order.
    log: Vec<Notification>,
    /// What each of its probes must have returned, in order.
    probes: Vec<Result<HubInfo, ExpErr>>,
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

/// One presence of a hub.
#[derive(Clone, Debug)]
struct RefHub {
    handle: HubHandle,
    info: HubInfo,
    seq: u64,
    removed: bool,
    /// Tickets: the last one given, and the last one delivered.
    appended: u64,
    done: u64,
    mailbox: VecDeque<(u64, Item)>,
    /// Clients that have seen the arrival, in delivery order.
    subscribers: Vec<ClientId>,
    /// Power requests passed to the hardware and not yet taken by it.
    requests: Vec<RefRequest>,
}

/// What a thread's outermost call owes for what its callbacks did.
#[derive(Clone, Debug)]
enum Owed {
    /// The hub's (arena index) mailbox must be delivered up to this ticket.
    Deliver(usize, u64),
    /// A client registered inside a callback: its Policy Manager arrival, then its
    /// arrival replays.
    Greet(ClientId),
}

#[derive(Clone, Debug, Default)]
struct Model {
    clients: Vec<RefClient>,
    slots: Vec<RefSlot>,
    /// Freed slots, reused last-freed-first.
    free: Vec<u16>,
    /// Every hub presence that ever arrived (an arena; a removed one stays here).
    hubs: Vec<RefHub>,
    /// Present hubs by id, into `hubs`.
    present: BTreeMap<u32, usize>,
    /// How many times each hub id has arrived: its latest presence.
    arrivals: BTreeMap<u32, u32>,
    /// The hub whose arrival the current transition delivers: the SUT holds its port
    /// only once `hub_arrival` returns.
    arriving: Option<u32>,
    /// `shutdown` has been called.
    shut: bool,
    /// The result the last transition must have returned.
    expect: Expect,
    /// What the last transition's picks resolved to.
    target: Target,
    /// How many clients existed when the current transition began: the SUT knows their
    /// handles, so a callback action may target them.
    settled: usize,
    /// A callback action is running (appends made now are owed, not delivered).
    in_callback: bool,
    /// What callbacks left to the outermost call, oldest first.
    owed: Vec<Owed>,
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

    fn resolve_caller(&self, pick: CallerPick) -> Caller {
        let (live, stale) = (self.ids(true), self.ids(false));
        let (first, second, p) = match pick {
            CallerPick::Live(p) => (&live, &stale, p),
            CallerPick::Stale(p) => (&stale, &live, p),
            CallerPick::Unknown => (&live, &stale, 0),
        };
        match pick {
            CallerPick::Unknown => {}
            _ if !first.is_empty() => return Caller::Client(nth(first, p)),
            _ if !second.is_empty() => return Caller::Client(nth(second, p)),
            _ => {}
        }
        Caller::Raw(self.resolve_never_issued(NeverIssued::PastLastSlot {
            beyond: 0,
            generation: 1,
        }))
    }

    fn resolve_presence(&self, hub: u32, pick: PresencePick) -> HubHandle {
        let latest = self.arrivals.get(&hub).copied().unwrap_or(0);
        let presence = match pick {
            PresencePick::Latest => latest.max(1),
            PresencePick::Back(k) => latest.saturating_sub(k),
            PresencePick::Ahead => latest + 1,
        };
        HubHandle {
            id: HubId(hub),
            presence,
        }
    }

    fn new_client(
        &mut self,
        action: Option<Action>,
        guard: bool,
        access: Access,
        probe: bool,
    ) -> ClientId {
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
            access,
            action,
            probe,
            armed: false,
            fired: false,
            action_target: None,
            action_result: None,
            log: Vec::new(),
            probes: Vec::new(),
        });
        id
    }

    /// `register`: refused once shut down. Outside callbacks the client's Policy Manager
    /// arrival is delivered, then an arrival replay of every present hub (ascending id,
    /// each delivered before the next), then the obligations are settled; inside a
    /// callback that greeting is owed to the outermost call.
    fn register(
        &mut self,
        action: Option<Action>,
        guard: bool,
        access: Access,
        probe: bool,
    ) -> Result<ClientId, ExpErr> {
        if self.shut {
            return Err(ExpErr::Api(Error::PolicyManagerRemoved));
        }
        let id = self.new_client(action, guard, access, probe);
        if self.in_callback {
            self.owed.push(Owed::Greet(id));
        } else {
            self.greet(id);
            self.settle_owed();
        }
        Ok(id)
    }

    /// The client's Policy Manager arrival (unless deregistered meanwhile), then its
    /// arrival replays (unless deregistered meanwhile, or the Policy Manager shut down):
    /// one submission per hub id that ever arrived, in ascending id order, each settling
    /// the thread's obligations afterwards; a hub that is not present appends nothing
    /// but still settles them (so what the arrival's callback reported is delivered
    /// before the next present hub's replay is taken).
    fn greet(&mut self, id: ClientId) {
        let arrival = Notification {
            hub: None,
            seq: 0,
            event: Event::PolicyManagerArrival {
                access: self.clients[id].access,
            },
        };
        self.notify(id, &arrival, None);
        if !self.clients[id].registered || self.shut {
            return;
        }
        let ids: Vec<u32> = self.arrivals.keys().copied().collect();
        for hub in ids {
            match self.present.get(&hub) {
                Some(&h) => self.replay(id, h),
                None => self.settle_owed(),
            }
        }
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
            hub: Some(hub.handle),
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
            let owed = self.owed.iter_mut().find_map(|o| match o {
                Owed::Deliver(oh, t) if *oh == h => Some(t),
                _ => None,
            });
            match owed {
                Some(t) => *t = (*t).max(ticket),
                None => self.owed.push(Owed::Deliver(h, ticket)),
            }
            return;
        }
        self.deliver_upto(h, ticket);
        self.settle_owed();
    }

    /// The outermost call settles its obligations, oldest first (a greeting settles the
    /// ones its replays' callbacks leave before its next replay).
    fn settle_owed(&mut self) {
        while !self.owed.is_empty() {
            match self.owed.remove(0) {
                Owed::Deliver(h, t) => self.deliver_upto(h, t),
                Owed::Greet(id) => self.greet(id),
            }
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
                        if self.notify(c, &note, Some(h)) {
                            subscribers.push(c);
                        }
                    }
                }
                Item::Change(note) => {
                    let mut kept = Vec::new();
                    for c in subscribers {
                        if self.notify(c, &note, Some(h)) {
                            kept.push(c);
                        }
                    }
                    subscribers = kept;
                }
                Item::Removal(note) => {
                    for c in std::mem::take(&mut subscribers) {
                        self.notify(c, &note, Some(h));
                    }
                }
                Item::Replay { client, note } => {
                    if self.notify(client, &note, Some(h)) {
                        subscribers.push(client);
                    }
                }
            }
            self.hubs[h].done = ticket;
        }
        self.hubs[h].subscribers = subscribers;
    }

    /// One callback call (about the hub presence `hub`, an arena index, or about the
    /// Policy Manager): only a registered client hears it, and after shutdown only its
    /// `PolicyManagerRemoval`; its probe runs, then its action may fire.
    fn notify(&mut self, id: ClientId, note: &Notification, hub: Option<usize>) -> bool {
        let removal = matches!(note.event, Event::PolicyManagerRemoval);
        let c = &self.clients[id];
        if !c.registered || (self.shut && !removal) {
            return false;
        }
        let probed = match hub {
            Some(h) if c.probe => Some(if c.access.allows(Access::QUERY) {
                Ok(self.hubs[h].info.clone())
            } else {
                Err(ExpErr::AccessDenied {
                    client: id,
                    needs: Access::QUERY,
                    granted: c.access,
                })
            }),
            _ => None,
        };
        let c = &mut self.clients[id];
        c.log.push(note.clone());
        c.probes.extend(probed);
        let Some(Action { kind, trigger }) = c.action.clone() else {
            return true;
        };
        let triggered = !c.fired && (trigger == Trigger::FirstEvent || c.armed);
        if !triggered {
            return true;
        }
        c.fired = true;
        self.in_callback = true;
        let result = match kind {
            ActionKind::DeregisterSelf => Err(ExpErr::DeregisterFromOwnCallback(id)),
            ActionKind::Shutdown => Err(ExpErr::Api(Error::ShutdownInsideCallback)),
            ActionKind::DeregisterOther { pick } => {
                let others: Vec<ClientId> = (0..self.settled).filter(|&o| o != id).collect();
                if others.is_empty() {
                    self.in_callback = false;
                    return true; // nobody to target: the action does nothing
                }
                let t = nth(&others, pick);
                self.clients[id].action_target = Some(ActionTarget::Client(t));
                if self.clients[t].registered {
                    self.deregister(t);
                    Ok(())
                } else {
                    Err(ExpErr::StaleHandle(t))
                }
            }
            ActionKind::ReportChange {
                hub_pick,
                connector,
                state,
            } => {
                let ported: Vec<u32> = (self.present.keys().copied())
                    .filter(|&hub| Some(hub) != self.arriving)
                    .collect();
                if ported.is_empty() {
                    self.in_callback = false;
                    return true; // no port to report through: the action does nothing
                }
                let hub = nth(&ported, hub_pick);
                self.clients[id].action_target = Some(ActionTarget::Hub(hub));
                self.change(hub, connector, &state)
            }
            ActionKind::RegisterNew => self.register(None, false, Access::ALL, false).map(drop),
        };
        self.in_callback = false;
        self.clients[id].action_result = Some(result);
        true
    }

    /// `shutdown` outside callbacks: every client registered now hears its removal, in
    /// slot order, unless deregistered meanwhile (by an earlier removal's callback).
    fn shutdown(&mut self) -> Result<(), ExpErr> {
        if self.shut {
            return Err(ExpErr::Api(Error::PolicyManagerRemoved));
        }
        self.shut = true;
        let clients: Vec<ClientId> = self.slots.iter().filter_map(|s| s.occupant).collect();
        let removal = Notification {
            hub: None,
            seq: 0,
            event: Event::PolicyManagerRemoval,
        };
        for c in clients {
            self.notify(c, &removal, None);
        }
        self.settle_owed();
        Ok(())
    }

    /// `connector_changed` on a present hub: folded into its state (a partner that
    /// attaches counts, one that leaves takes its assigned power with it), then posted.
    fn change(&mut self, hub: u32, connector: u8, state: &ConnectorState) -> Result<(), ExpErr> {
        let h = self.present[&hub];
        let hb = &mut self.hubs[h];
        let Some(c) = hb.info.connectors.get_mut(usize::from(connector)) else {
            return Err(ExpErr::Api(Error::UnknownConnector(
                HubId(hub),
                ConnectorId(connector),
            )));
        };
        if state.attached && !c.state.attached {
            c.attach_count += 1;
        }
        if !state.attached {
            c.assigned_power = None;
        }
        c.state = state.clone();
        hb.seq += 1;
        let note = Notification {
            hub: Some(hb.handle),
            seq: hb.seq,
            event: Event::ConnectorStateChange {
                connector: ConnectorId(connector),
                state: state.clone(),
            },
        };
        self.post(h, Item::Change(note));
        Ok(())
    }

    fn hub_info(&self, hub: u32) -> Result<&HubInfo, ExpErr> {
        match self.present.get(&hub) {
            Some(&h) => Ok(&self.hubs[h].info),
            None => Err(ExpErr::Api(Error::UnknownHub(HubId(hub)))),
        }
    }

    /// The checks of a client call outside callbacks, in the library's order: shut
    /// down, the caller's handle, its access, the hub id, the presence. The present hub
    /// (arena index) if all pass.
    fn authorize(&self, caller: Caller, needs: Access, hub: HubHandle) -> Result<usize, ExpErr> {
        if self.shut {
            return Err(ExpErr::Api(Error::PolicyManagerRemoved));
        }
        let id = match caller {
            Caller::Raw(_) => return Err(ExpErr::UnknownHandle),
            Caller::Client(id) => id,
        };
        let c = &self.clients[id];
        if !c.registered {
            return Err(ExpErr::StaleHandle(id));
        }
        if !c.access.allows(needs) {
            return Err(ExpErr::AccessDenied {
                client: id,
                needs,
                granted: c.access,
            });
        }
        let unknown = ExpErr::Api(Error::UnknownHub(hub.id));
        let latest = *self.arrivals.get(&hub.id.0).ok_or(unknown.clone())?;
        if hub.presence == 0 || hub.presence > latest {
            return Err(unknown);
        }
        match self.present.get(&hub.id.0) {
            Some(&h) if hub.presence == latest => Ok(h),
            // An earlier presence, or the latest one after its removal was delivered.
            _ => Err(ExpErr::Api(Error::StaleHubHandle(hub))),
        }
    }

    fn connector_info(
        &self,
        caller: Caller,
        needs: Access,
        hub: HubHandle,
        connector: u8,
    ) -> Result<(usize, &ConnectorInfo), ExpErr> {
        let h = self.authorize(caller, needs, hub)?;
        let c = self.hubs[h]
            .info
            .connectors
            .get(usize::from(connector))
            .ok_or(ExpErr::Api(Error::UnknownConnector(
                hub.id,
                ConnectorId(connector),
            )))?;
        Ok((h, c))
    }

    /// `assign_power_level`: passed to the hardware only for a sink with a partner
    /// attached; nothing else changes.
    fn assign(
        &mut self,
        caller: Caller,
        hub: HubHandle,
        connector: u8,
        level: PowerLevel,
    ) -> Result<(), ExpErr> {
        let (h, c) = self.connector_info(caller, Access::ASSIGN_POWER, hub, connector)?;
        let handle = ConnectorHandle {
            hub,
            connector: ConnectorId(connector),
        };
        if !c.state.attached || c.state.power_role != PowerRole::Sink {
            return Err(ExpErr::Api(Error::PowerRequestRefused {
                connector: handle,
                attached: c.state.attached,
            }));
        }
        let Caller::Client(client) = caller else {
            unreachable!("authorized")
        };
        let request = RefRequest {
            client,
            connector: handle,
            level,
            attach_count: c.attach_count,
        };
        self.hubs[h].requests.push(request);
        Ok(())
    }

    /// The hardware's answer: accepted while the same partner is attached, the level is
    /// set and reported as a connector change. Returns whether it was reported.
    fn answer(&mut self, h: usize, request: &RefRequest, accepted: bool) -> bool {
        let hb = &mut self.hubs[h];
        let i = usize::from(request.connector.connector.0);
        let c = &mut hb.info.connectors[i];
        if !accepted
            || hb.removed
            || hb.handle != request.connector.hub
            || !c.state.attached
            || c.attach_count != request.attach_count
        {
            return false;
        }
        c.assigned_power = Some(request.level);
        let state = c.state.clone();
        hb.seq += 1;
        let note = Notification {
            hub: Some(hb.handle),
            seq: hb.seq,
            event: Event::ConnectorStateChange {
                connector: request.connector.connector,
                state,
            },
        };
        self.post(h, Item::Change(note));
        true
    }
}

fn connector_state() -> impl Strategy<Value = ConnectorState> {
    (
        any::<bool>(),
        // Mostly sinks: power requests need one.
        prop::bool::weighted(1.0 / 3.0),
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
        2 => Just(ActionKind::DeregisterSelf),
        2 => Just(ActionKind::RegisterNew),
        1 => Just(ActionKind::Shutdown),
        4 => (0..8usize).prop_map(|pick| ActionKind::DeregisterOther { pick }),
        3 => (0..8usize, prop_oneof![4 => 0..=1u8, 1 => 0..=MAX_CONNECTORS], connector_state())
            .prop_map(|(hub_pick, connector, state)| ActionKind::ReportChange {
                hub_pick,
                connector,
                state,
            }),
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

fn access() -> BoxedStrategy<Access> {
    prop_oneof![
        5 => Just(Access::ALL),
        1 => Just(Access::QUERY),
        1 => Just(Access::ASSIGN_POWER),
        1 => Just(Access::NONE),
    ]
    .boxed()
}

fn caller() -> BoxedStrategy<CallerPick> {
    prop_oneof![
        6 => (0..8usize).prop_map(CallerPick::Live),
        1 => (0..8usize).prop_map(CallerPick::Stale),
        1 => Just(CallerPick::Unknown),
    ]
    .boxed()
}

fn presence() -> BoxedStrategy<PresencePick> {
    prop_oneof![
        6 => Just(PresencePick::Latest),
        1 => (1..=2u32).prop_map(PresencePick::Back),
        1 => Just(PresencePick::Ahead),
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
        // Client calls mostly name a present hub, sometimes any id.
        let hub_any = if present.is_empty() {
            (0..HUB_IDS).boxed()
        } else {
            prop_oneof![3 => select(present.clone()), 1 => 0..HUB_IDS].boxed()
        };
        // Connector 0 always exists, 1 often; MAX_CONNECTORS never.
        let connector_any = prop_oneof![4 => 0..=1u8, 1 => 0..=MAX_CONNECTORS];
        let pick = 0..8usize;
        // Client calls mostly come from a registered client about a present hub: frequent
        // only when there are both. Answers are frequent only when there are requests.
        let calls = if m.clients.iter().any(|c| c.registered) && !present.is_empty() && !m.shut {
            4
        } else {
            1
        };
        let requests = m.present.values().any(|&h| !m.hubs[h].requests.is_empty());
        let mut options: Vec<(u32, BoxedStrategy<Transition>)> = vec![
            (
                20,
                (any::<bool>(), action(), on_drop(), access(), any::<bool>())
                    .prop_map(
                        |(owned, action, on_drop, access, probe)| Transition::Register {
                            owned,
                            action,
                            on_drop,
                            access,
                            probe,
                        },
                    )
                    .boxed(),
            ),
            (
                4,
                never_issued(m)
                    .prop_map(Transition::DeregisterUnknown)
                    .boxed(),
            ),
            (
                12,
                (
                    0..HUB_IDS,
                    prop::collection::vec(connector_state(), 1..=usize::from(MAX_CONNECTORS)),
                )
                    .prop_map(|(hub, connectors)| Transition::HubArrival { hub, connectors })
                    .boxed(),
            ),
            (
                4 * calls,
                (
                    caller(),
                    prop_oneof![1 => Just(None), 2 => (0..8usize).prop_map(Some)],
                    hub_any.clone(),
                    presence(),
                    connector_any.clone(),
                    select(vec![500u32, 4_500, 15_000, 100_000]),
                )
                    .prop_map(|(caller, aim, hub, presence, connector, milliwatts)| {
                        Transition::AssignPowerLevel {
                            caller,
                            aim,
                            hub,
                            presence,
                            connector,
                            milliwatts,
                        }
                    })
                    .boxed(),
            ),
            (
                calls,
                (caller(), hub_any.clone(), presence(), connector_any.clone())
                    .prop_map(
                        |(caller, hub, presence, connector)| Transition::QueryConnector {
                            caller,
                            hub,
                            presence,
                            connector,
                        },
                    )
                    .boxed(),
            ),
            (
                calls,
                (caller(), hub_any.clone(), presence())
                    .prop_map(|(caller, hub, presence)| Transition::QueryHub {
                        caller,
                        hub,
                        presence,
                    })
                    .boxed(),
            ),
            (
                2,
                hub_any
                    .prop_map(|hub| Transition::HubSnapshot { hub })
                    .boxed(),
            ),
            (1, Just(Transition::Shutdown).boxed()),
        ];
        if m.clients.iter().any(|c| c.registered) {
            let via = prop_oneof![
                2 => Just(Via::Handle),
                1 => Just(Via::GuardDeregister),
                1 => Just(Via::GuardDrop),
            ];
            options.push((
                12,
                (pick.clone(), via)
                    .prop_map(|(pick, via)| Transition::Deregister { pick, via })
                    .boxed(),
            ));
        }
        if m.clients.iter().any(|c| !c.registered) {
            options.push((
                4,
                pick.clone()
                    .prop_map(|pick| Transition::DeregisterStale { pick })
                    .boxed(),
            ));
        }
        if !present.is_empty() {
            options.push((
                20,
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
                8,
                (pick.clone(), any::<bool>())
                    .prop_map(|(hub_pick, by_drop)| Transition::HubRemoval { hub_pick, by_drop })
                    .boxed(),
            ));
            options.push((
                if requests { 10 } else { 1 },
                (pick, any::<u8>())
                    .prop_map(|(hub_pick, accepts)| Transition::AnswerPower { hub_pick, accepts })
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
            Transition::ConnectorChanged { .. }
            | Transition::HubRemoval { .. }
            | Transition::AnswerPower { .. } => !m.present.is_empty(),
            Transition::Register { .. }
            | Transition::DeregisterUnknown(_)
            | Transition::HubArrival { .. }
            | Transition::AssignPowerLevel { .. }
            | Transition::QueryConnector { .. }
            | Transition::QueryHub { .. }
            | Transition::HubSnapshot { .. }
            | Transition::Shutdown => true,
        }
    }

    fn apply(mut m: Model, t: &Transition) -> Model {
        m.expect = Expect::Nothing;
        m.target = Target::None;
        m.settled = m.clients.len();
        match t {
            Transition::Register {
                owned,
                action,
                access,
                probe,
                ..
            } => match m.register(action.clone(), *owned, *access, *probe) {
                Ok(id) => {
                    m.clients[id].armed = true;
                    m.target = Target::Client(id);
                    m.expect = Expect::Unit(Ok(()));
                }
                Err(e) => m.expect = Expect::Unit(Err(e)),
            },
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
                if m.shut {
                    m.expect = Expect::Unit(Err(ExpErr::Api(Error::PolicyManagerRemoved)));
                } else if m.present.contains_key(hub) {
                    m.expect =
                        Expect::Unit(Err(ExpErr::Api(Error::HubAlreadyPresent(HubId(*hub)))));
                } else {
                    let presence = m.arrivals.entry(*hub).or_insert(0);
                    *presence += 1;
                    let handle = HubHandle {
                        id: HubId(*hub),
                        presence: *presence,
                    };
                    let info = HubInfo {
                        hub: HubId(*hub),
                        connectors: connectors
                            .iter()
                            .enumerate()
                            .map(|(i, state)| ConnectorInfo {
                                connector: ConnectorId(u8::try_from(i).unwrap()),
                                state: state.clone(),
                                assigned_power: None,
                                attach_count: u32::from(state.attached),
                            })
                            .collect(),
                    };
                    // Addressed to the clients registered now, in slot order.
                    let clients: Vec<ClientId> =
                        m.slots.iter().filter_map(|s| s.occupant).collect();
                    let note = Notification {
                        hub: Some(handle),
                        seq: 0,
                        event: Event::HubArrival(info.clone()),
                    };
                    let h = m.hubs.len();
                    m.hubs.push(RefHub {
                        handle,
                        info,
                        seq: 0,
                        removed: false,
                        appended: 0,
                        done: 0,
                        mailbox: VecDeque::new(),
                        subscribers: Vec::new(),
                        requests: Vec::new(),
                    });
                    m.present.insert(*hub, h);
                    m.target = Target::Hub(*hub);
                    m.arriving = Some(*hub);
                    m.post(h, Item::Arrival { clients, note });
                    m.arriving = None;
                    m.expect = Expect::Unit(Ok(()));
                }
            }
            Transition::ConnectorChanged {
                hub_pick,
                connector,
                state,
            } => {
                let hub = nth(&m.present.keys().copied().collect::<Vec<_>>(), *hub_pick);
                m.target = Target::Hub(hub);
                m.expect = Expect::Unit(m.change(hub, *connector, state));
            }
            Transition::HubRemoval { hub_pick, .. } => {
                let hub = &nth(&m.present.keys().copied().collect::<Vec<_>>(), *hub_pick);
                m.target = Target::Hub(*hub);
                // Gone from the registry first: a registration made while the removal is
                // being delivered gets no arrival replay of it.
                let h = m.present.remove(hub).expect("picked from present");
                let hb = &mut m.hubs[h];
                hb.removed = true;
                hb.requests.clear();
                hb.seq += 1;
                let note = Notification {
                    hub: Some(hb.handle),
                    seq: hb.seq,
                    event: Event::HubRemoval,
                };
                m.post(h, Item::Removal(note));
            }
            Transition::AnswerPower { hub_pick, accepts } => {
                let present: Vec<u32> = m.present.keys().copied().collect();
                let asked: Vec<u32> = (present.iter().copied())
                    .filter(|hub| !m.hubs[m.present[hub]].requests.is_empty())
                    .collect();
                let hub = nth(if asked.is_empty() { &present } else { &asked }, *hub_pick);
                m.target = Target::Hub(hub);
                let h = m.present[&hub];
                let requests = std::mem::take(&mut m.hubs[h].requests);
                let reported = (requests.iter().enumerate())
                    .map(|(i, r)| m.answer(h, r, (accepts >> (i % 8)) & 1 == 1))
                    .collect();
                m.expect = Expect::Answers { requests, reported };
            }
            Transition::AssignPowerLevel {
                caller,
                aim,
                hub,
                presence,
                connector,
                milliwatts,
            } => {
                let caller = m.resolve_caller(*caller);
                let sinks: Vec<(u32, u8)> = (m.present.iter())
                    .flat_map(|(&hub, &h)| {
                        let connectors = &m.hubs[h].info.connectors;
                        (connectors.iter())
                            .filter(|c| c.state.attached && c.state.power_role == PowerRole::Sink)
                            .map(move |c| (hub, c.connector.0))
                    })
                    .collect();
                let (hub, connector) = match aim {
                    Some(p) if !sinks.is_empty() => nth(&sinks, *p),
                    _ => (*hub, *connector),
                };
                let handle = m.resolve_presence(hub, *presence);
                m.target = Target::Call(caller, handle, connector);
                let level = PowerLevel {
                    milliwatts: *milliwatts,
                };
                m.expect = Expect::Unit(m.assign(caller, handle, connector, level));
            }
            Transition::QueryConnector {
                caller,
                hub,
                presence,
                connector,
            } => {
                let caller = m.resolve_caller(*caller);
                let handle = m.resolve_presence(*hub, *presence);
                m.target = Target::Call(caller, handle, *connector);
                let r = m.connector_info(caller, Access::QUERY, handle, *connector);
                m.expect = Expect::Connector(r.map(|(_, c)| c.clone()));
            }
            Transition::QueryHub {
                caller,
                hub,
                presence,
            } => {
                let caller = m.resolve_caller(*caller);
                let handle = m.resolve_presence(*hub, *presence);
                m.target = Target::Call(caller, handle, 0);
                let r = m.authorize(caller, Access::QUERY, handle);
                m.expect = Expect::Hub(r.map(|h| m.hubs[h].info.clone()));
            }
            Transition::HubSnapshot { hub } => {
                m.expect = Expect::Hub(m.hub_info(*hub).cloned());
            }
            Transition::Shutdown => {
                m.expect = Expect::Unit(m.shutdown());
            }
        }
        m
    }
}

// ---------------------------------------------------------------------------------------
// System under test
// ---------------------------------------------------------------------------------------

type Log = Arc<Mutex<Vec<Notification>>>;
type Probes = Arc<Mutex<Vec<Result<HubInfo, Error>>>>;

/// Locks, ignoring poison: after a failed assertion the SUT is still torn down (hub
/// removals are delivered to these logs), and that must not panic inside callbacks.
fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
type Spawned = Arc<Mutex<Vec<(ClientHandle, Log)>>>;
/// The ports of the present hubs, shared with the callbacks' `ReportChange` actions. The
/// lock is never held while calling into the Policy Manager: a port is cloned out first.
type Ports = Arc<Mutex<BTreeMap<u32, Arc<HubPort>>>>;

/// What `DeregisterOther` and `ReportChange` callbacks target during the current
/// transition: the handles of the clients that existed when it began, and the choice the
/// model made for each client whose action fires in it.
#[derive(Default)]
struct Script {
    handles: Vec<ClientHandle>,
    targets: BTreeMap<ClientId, ActionTarget>,
}

enum SutAction {
    DeregisterSelf,
    DeregisterOther(Arc<Mutex<Script>>),
    RegisterNew,
    Shutdown,
    ReportChange {
        script: Arc<Mutex<Script>>,
        ports: Ports,
        connector: u8,
        state: ConnectorState,
    },
}

/// A client's callback context: it logs every notification, probes the hub if asked to,
/// and performs its action once.
struct Ctx {
    /// The model's id of this client (unused by plain clients).
    id: ClientId,
    log: Log,
    /// Set right after `register` returns.
    own: OnceLock<ClientHandle>,
    action: Option<(SutAction, Trigger)>,
    fired: AtomicBool,
    result: Arc<Mutex<Option<Result<(), Error>>>>,
    /// `Some`: on every hub event, retrieve the hub's properties and record the result.
    probes: Option<Probes>,
    spawned: Spawned,
}

fn on_event(ctx: &Ctx, pm: &PolicyManager, me: ClientHandle, n: &Notification) {
    locked(&ctx.log).push(n.clone());
    // Never assert in here: a panic would be contained by the library. Record instead.
    if let (Some(probes), Some(hub)) = (&ctx.probes, n.hub) {
        let r = pm.hub_properties(me, hub);
        locked(probes).push(r);
    }
    let Some((action, trigger)) = &ctx.action else {
        return;
    };
    if *trigger == Trigger::FirstEventAfterRegister && ctx.own.get().is_none() {
        return;
    }
    if ctx.fired.swap(true, Ordering::SeqCst) {
        return;
    }
    let result = match action {
        SutAction::DeregisterSelf => pm.deregister(me),
        SutAction::Shutdown => pm.shutdown(),
        SutAction::DeregisterOther(script) => {
            let target = {
                let s = locked(script);
                match s.targets.get(&ctx.id) {
                    Some(&ActionTarget::Client(t)) => Some(s.handles[t]),
                    _ => None,
                }
            };
            match target {
                Some(h) => pm.deregister(h),
                None => return, // the model found nobody to target
            }
        }
        SutAction::ReportChange {
            script,
            ports,
            connector,
            state,
        } => {
            let target = locked(script).targets.get(&ctx.id).copied();
            let port = match target {
                Some(ActionTarget::Hub(hub)) => locked(ports).get(&hub).cloned(),
                _ => None,
            };
            match port {
                Some(port) => port.connector_changed(ConnectorId(*connector), state.clone()),
                None => return, // the model found no hub to report on
            }
        }
        SutAction::RegisterNew => {
            let (config, log) = plain_client(ctx.spawned.clone());
            // A refusal becomes the action's result, which the model predicts.
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
                    let _ = pm.hub_snapshot(HubId(0));
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
        probes: None,
        spawned,
    };
    (ClientConfig::with_handle(ctx, on_event), log)
}

struct SutClient {
    handle: ClientHandle,
    log: Log,
    result: Arc<Mutex<Option<Result<(), Error>>>>,
    probes: Probes,
    guard: Option<Registration>,
    /// Log length when an outer `deregister` returned: nothing may be added afterwards.
    len_at_deregister: Option<usize>,
    /// Its context's drop behaviour and death (clients registered inside callbacks: none).
    context: Option<(OnDrop, Arc<Death>)>,
}

struct Sut {
    pm: PolicyManager,
    ports: Ports,
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
    /// The port of a present hub (a clone: the map's lock is released before it is used).
    fn port(&self, hub: u32) -> Arc<HubPort> {
        locked(&self.ports)
            .get(&hub)
            .cloned()
            .expect("model: port present")
    }

    fn handle(&self, id: ClientId) -> ClientHandle {
        self.clients[id].handle
    }

    fn instance(&self) -> Option<u64> {
        self.clients.first().map(|c| c.handle.into_raw() >> 32)
    }

    /// The concrete never-issued handle.
    fn raw(&self, n: RawHandle) -> ClientHandle {
        let ours = self.instance().unwrap_or(0);
        let instance = if n.other_instance {
            ours ^ 0x5a5a
        } else {
            ours
        };
        // Raw layout: instance (32 bits) | slot (16) | generation (16).
        let raw =
            (instance << 32) | (u64::from(n.slot) << 16) | u64::from(n.generation.min(0xFFFF));
        let h = ClientHandle::from_raw(raw);
        assert!(
            self.clients.iter().all(|c| c.handle != h),
            "test bug: never-issued handle {h} ({n:?}, raw {raw:#x}) collides with an issued one"
        );
        h
    }

    fn caller(&self, c: Caller) -> ClientHandle {
        match c {
            Caller::Client(id) => self.handle(id),
            Caller::Raw(n) => self.raw(n),
        }
    }

    fn map_err(&self, e: &ExpErr, passed: Option<ClientHandle>) -> Error {
        match e {
            ExpErr::UnknownHandle => Error::UnknownHandle(passed.expect("the handle passed")),
            ExpErr::StaleHandle(id) => Error::StaleHandle(self.handle(*id)),
            ExpErr::DeregisterFromOwnCallback(id) => {
                Error::DeregisterFromOwnCallback(self.handle(*id))
            }
            ExpErr::AccessDenied {
                client,
                needs,
                granted,
            } => Error::AccessDenied {
                client: self.handle(*client),
                needs: *needs,
                granted: *granted,
            },
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
                probes: Arc::default(),
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

fn expect_hub(m: &Model) -> &Result<HubInfo, ExpErr> {
    match &m.expect {
        Expect::Hub(r) => r,
        other => panic!("model: expected a hub result, have {other:?}"),
    }
}

/// A client call's caller, and the connector it is about (connector 0 for the hub).
fn call_target(m: &Model) -> (Caller, ConnectorHandle) {
    match m.target {
        Target::Call(caller, hub, connector) => (
            caller,
            ConnectorHandle {
                hub,
                connector: ConnectorId(connector),
            },
        ),
        other => panic!("model: expected a call target, have {other:?}"),
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
            ports: Arc::default(),
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
                .filter_map(|(id, c)| Some((id, c.action_target?)))
                .collect(),
        };
        match t {
            Transition::Register {
                owned,
                on_drop,
                probe,
                access,
                ..
            } => {
                let id = sut.clients.len();
                let model = match m.target {
                    Target::Client(c) => {
                        assert_eq!(c, id, "model: client ids out of step");
                        Some(&m.clients[id])
                    }
                    _ => None, // refused
                };
                // A refused registration drops its context inside `register`, and a panic
                // out of that drop is not contained (it unwinds out of `register`): not
                // generated here, see the report of this test's port.
                let on_drop = match (model, on_drop) {
                    (None, OnDrop::Panic) => OnDrop::Nothing,
                    (_, on_drop) => on_drop,
                };
                let log: Log = Arc::default();
                let result: Arc<Mutex<Option<Result<(), Error>>>> = Arc::default();
                let probes: Probes = Arc::default();
                let ctx = Arc::new(Ctx {
                    id,
                    log: log.clone(),
                    own: OnceLock::new(),
                    action: model
                        .and_then(|c| c.action.clone())
                        .map(|Action { kind, trigger }| {
                            let act = match kind {
                                ActionKind::DeregisterSelf => SutAction::DeregisterSelf,
                                ActionKind::DeregisterOther { .. } => {
                                    SutAction::DeregisterOther(sut.script.clone())
                                }
                                ActionKind::RegisterNew => SutAction::RegisterNew,
                                ActionKind::Shutdown => SutAction::Shutdown,
                                ActionKind::ReportChange {
                                    connector, state, ..
                                } => SutAction::ReportChange {
                                    script: sut.script.clone(),
                                    ports: sut.ports.clone(),
                                    connector,
                                    state,
                                },
                            };
                            (act, trigger)
                        }),
                    fired: AtomicBool::new(false),
                    result: result.clone(),
                    probes: probe.then(|| probes.clone()),
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
                let config = ClientConfig::with_handle(owned_ctx, |o: &Owned, pm, me, n| {
                    on_event(&o.ctx, pm, me, n)
                })
                .access(access);
                let r = if owned {
                    sut.pm.register_owned(config).map(|g| (g.handle(), Some(g)))
                } else {
                    sut.pm.register(config).map(|h| (h, None))
                };
                let (handle, guard) = match r {
                    Err(e) => {
                        assert_eq!(
                            Err(e),
                            sut.expected(expect_unit(m), None),
                            "register (owned: {owned})"
                        );
                        assert_eq!(
                            death.drops.load(Ordering::SeqCst),
                            1,
                            "a refused registration's context is dropped before register returns"
                        );
                        sut.take_spawned();
                        return sut;
                    }
                    Ok(r) => r,
                };
                assert_eq!(
                    Ok(()),
                    sut.expected(expect_unit(m), None),
                    "register (owned: {owned})"
                );
                ctx.own.set(handle).unwrap();
                // Clients registered inside callbacks during this call came after it.
                let mut spawned = std::mem::take(&mut *locked(&sut.spawned));
                sut.clients.push(SutClient {
                    handle,
                    log,
                    result,
                    probes,
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
                let h = sut.raw(n);
                let r = sut.pm.deregister(h);
                assert_eq!(
                    r,
                    sut.expected(expect_unit(m), Some(h)),
                    "deregister(never issued {h})"
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
                    assert_eq!(
                        port.handle(),
                        m.hubs[m.present[&hub]].handle,
                        "hub_arrival({hub}): the port's hub handle"
                    );
                    assert!(
                        locked(&sut.ports).insert(hub, Arc::new(port)).is_none(),
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
                let r = sut
                    .port(hub)
                    .connector_changed(ConnectorId(connector), state);
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
                let port = locked(&sut.ports).remove(&hub);
                let port = port.expect("model: port present");
                let port = Arc::into_inner(port).expect("nothing else holds a port");
                if by_drop {
                    drop(port);
                } else {
                    port.remove();
                }
            }
            Transition::AnswerPower { accepts, .. } => {
                let Target::Hub(hub) = m.target else {
                    panic!("model: {m:?}")
                };
                let Expect::Answers { requests, reported } = &m.expect else {
                    panic!("model: {:?}", m.expect)
                };
                let want: Vec<PowerRequest> = (requests.iter())
                    .map(|r| PowerRequest {
                        client: sut.handle(r.client),
                        connector: r.connector,
                        level: r.level,
                        attach_count: r.attach_count,
                    })
                    .collect();
                let port = sut.port(hub);
                let got = port.power_requests();
                assert_eq!(got, want, "power_requests() of hub {hub}");
                for (i, request) in got.into_iter().enumerate() {
                    let accepted = (accepts >> (i % 8)) & 1 == 1;
                    let r = port.answer(request.clone(), accepted);
                    assert_eq!(
                        r,
                        Ok(reported[i]),
                        "answer({request:?}, accepted: {accepted}): whether it was reported"
                    );
                }
            }
            Transition::AssignPowerLevel { milliwatts, .. } => {
                let (caller, target) = call_target(m);
                let h = sut.caller(caller);
                let r = sut
                    .pm
                    .assign_power_level(h, target, PowerLevel { milliwatts });
                assert_eq!(
                    r,
                    sut.expected(expect_unit(m), Some(h)),
                    "assign_power_level({h}, {target})"
                );
            }
            Transition::QueryConnector { .. } => {
                let (caller, target) = call_target(m);
                let h = sut.caller(caller);
                let r = sut.pm.connector_state(h, target);
                let Expect::Connector(want) = &m.expect else {
                    panic!("model: {:?}", m.expect)
                };
                assert_eq!(
                    r,
                    sut.expected(want, Some(h)),
                    "connector_state({h}, {target})"
                );
            }
            Transition::QueryHub { .. } => {
                let (caller, ConnectorHandle { hub, .. }) = call_target(m);
                let h = sut.caller(caller);
                let r = sut.pm.hub_properties(h, hub);
                assert_eq!(
                    r,
                    sut.expected(expect_hub(m), Some(h)),
                    "hub_properties({h}, {hub})"
                );
            }
            Transition::HubSnapshot { hub } => {
                let r = sut.pm.hub_snapshot(HubId(hub));
                assert_eq!(r, sut.expected(expect_hub(m), None), "hub_snapshot({hub})");
            }
            Transition::Shutdown => {
                let r = sut.pm.shutdown();
                assert_eq!(r, sut.expected(expect_unit(m), None), "shutdown()");
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
            if r.registered {
                // Whatever a callback did, the outermost call greeted every client it
                // registered before returning.
                assert!(
                    matches!(
                        log.first().map(|n| &n.event),
                        Some(Event::PolicyManagerArrival { .. })
                    ),
                    "client {id} ({}): registered without its PolicyManagerArrival: {log:#?}",
                    c.handle
                );
            }
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
            let got = locked(&c.probes).clone();
            let want: Vec<_> = r.probes.iter().map(|w| sut.expected(w, None)).collect();
            assert_eq!(
                got, want,
                "client {id}: what its callback's hub_properties returned"
            );
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
                sut.pm.hub_snapshot(HubId(hub)),
                want,
                "hub_snapshot({hub}) after the step"
            );
        }
        let ports = locked(&sut.ports).clone();
        assert!(ports.keys().eq(m.present.keys()), "ports vs present hubs");
        for (hub, port) in &ports {
            assert_eq!(
                port.handle(),
                m.hubs[m.present[hub]].handle,
                "hub {hub}: the port's handle"
            );
        }
    }
}

/// A client sees its `PolicyManagerArrival` first and only there, and a
/// `PolicyManagerRemoval` only last. Per hub id: an arrival (of a later presence than
/// the id's previous one), then consecutive sequence numbers under the same hub handle,
/// ending with the removal, after which only a new arrival (the hub arriving again) may
/// come.
fn check_log_shape(id: ClientId, log: &[Notification]) {
    // Per hub id: the presence last seen, and Some(last seq) while it is live for this
    // client, None after its removal.
    let mut hubs: BTreeMap<HubId, (u32, Option<u64>)> = BTreeMap::new();
    for (i, n) in log.iter().enumerate() {
        let ctx = || format!("client {id}, notification {i}: {n:?} (log {log:#?})");
        assert_eq!(
            n.is_manager_event(),
            n.hub.is_none(),
            "only the Policy Manager's own events name no hub: {}",
            ctx()
        );
        assert_eq!(n.hub_id(), n.hub.map(|h| h.id), "{}", ctx());
        match &n.event {
            Event::PolicyManagerArrival { .. } => {
                assert_eq!(i, 0, "PolicyManagerArrival not first: {}", ctx());
                assert_eq!(n.seq, 0, "{}", ctx());
                continue;
            }
            Event::PolicyManagerRemoval => {
                assert_eq!(i + 1, log.len(), "PolicyManagerRemoval not last: {}", ctx());
                assert_eq!(n.seq, 0, "{}", ctx());
                continue;
            }
            _ => {}
        }
        assert!(i > 0, "a hub event before PolicyManagerArrival: {}", ctx());
        let handle = n.hub.expect("checked above");
        let (seen, last) = hubs.get(&handle.id).copied().unwrap_or((0, None));
        match &n.event {
            Event::HubArrival(info) => {
                assert!(last.is_none(), "arrival while the hub is live: {}", ctx());
                assert!(
                    handle.presence > seen,
                    "arrival of presence {} after presence {seen}: {}",
                    handle.presence,
                    ctx()
                );
                assert_eq!(info.hub, handle.id, "{}", ctx());
                for (k, c) in info.connectors.iter().enumerate() {
                    assert_eq!(usize::from(c.connector.0), k, "{}", ctx());
                }
                hubs.insert(handle.id, (handle.presence, Some(n.seq)));
            }
            Event::ConnectorStateChange { .. } | Event::HubRemoval => {
                assert_eq!(seen, handle.presence, "another presence's event: {}", ctx());
                assert_eq!(
                    last.map(|p| p + 1),
                    Some(n.seq),
                    "change or removal out of sequence: {}",
                    ctx()
                );
                let live = !matches!(n.event, Event::HubRemoval);
                hubs.insert(handle.id, (seen, live.then_some(n.seq)));
            }
            Event::PolicyManagerArrival { .. } | Event::PolicyManagerRemoval => {
                unreachable!("handled above")
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

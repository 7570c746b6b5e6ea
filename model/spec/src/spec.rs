//! The specification: the protocol's state and its actions, at the level of the contract.
//!
//! Read it beside docs/PROTOCOL.md; docs/SPEC.md walks it action by action and names the
//! code each action stands for. Clients and hubs are small integers, sets of them are
//! bitmasks. Each thread is a stack of frames: what it is doing, innermost last (a
//! callback can deregister, which can wait; a registration can drain a hub, whose
//! callback can deregister, ...). The contract promises no order among clients or among
//! hubs, so the specification keeps sets where the code keeps lists: that makes clients,
//! hubs and threads interchangeable (symmetry reduction) and the code one refinement.
//!
//! Every action is [`Spec::apply`]: the model checker enumerates enabled ones
//! ([`Spec::enabled`]) and the trace validator applies the ones a recorded execution took.

use std::fmt;

/// A set of clients or hubs (bit `i` is client or hub `i`).
pub type Set = u32;

/// Iterates the members of a set.
pub fn members(set: Set) -> impl Iterator<Item = u8> {
    (0..32u8).filter(move |i| set & (1 << i) != 0)
}

fn bit(i: u8) -> Set {
    1 << i
}

/// Where a client is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    /// Not registered yet (or a handle that was never issued).
    Unborn,
    /// Registered: in the registry, callbacks may begin.
    Open,
    /// Its deregister emptied its slot (the handle is stale); `CLOSED` not set yet.
    Retired,
    /// `CLOSED` is set: no callback begins any more.
    Closed,
}

/// What one client has received of one hub (a history variable, read by P5).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Log {
    /// Something of this hub's current presence was addressed to the client (an arrival
    /// naming it, or a replay queued for it).
    pub owed: bool,
    /// It received this presence's arrival (or replay).
    pub seen: bool,
    /// The seq of the last event it received.
    pub last: u8,
    /// It received the removal.
    pub removed: bool,
    /// Delivery found it closed and dropped it (it misses the rest of this presence).
    pub skipped: bool,
}

/// One client.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Client {
    pub status: Status,
    /// `register` returned: the program knows the handle and may deregister it.
    pub known: bool,
    /// Callback calls holding an in-flight count.
    pub in_flight: u8,
    /// A deregister of this client returned `Ok` (history, read by P1 and P2).
    pub returned_ok: bool,
    /// The program's own (top-level) deregister of it has been made (model checking budget).
    pub env_deregistered: bool,
    /// Whose deregister retired it (history, read by P4).
    pub retired_by: Option<u8>,
    /// A callback began out of per-hub order (history, read by P5).
    pub order_broken: bool,
    /// Per hub.
    pub logs: Vec<Log>,
}

/// An item in a hub's queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Item {
    /// The hub's arrival, addressed to the clients registered when it arrived.
    Arrival {
        clients: Set,
    },
    Change {
        seq: u8,
    },
    Removal {
        seq: u8,
    },
    /// An arrival replay for a client that registered while the hub was present.
    Join {
        client: u8,
        seq: u8,
    },
}

/// A queued item and its ticket (its place in the hub's append order, from 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Entry {
    pub ticket: u8,
    pub item: Item,
}

/// What a caller does about its item once it is submitted (or woken, or settling an
/// obligation): the code's `Settle`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Then {
    /// Its ticket is delivered already (or nothing was appended): nothing to do.
    Done,
    /// Inside a callback: the thread's outermost call owes the item.
    Owes,
    /// Another thread drains: sleep on the hub until woken.
    Sleeps,
    /// The queue is idle: drain up to the item.
    Drains,
}

impl Item {
    pub fn seq(self) -> u8 {
        match self {
            Item::Arrival { .. } => 0,
            Item::Change { seq } | Item::Removal { seq } | Item::Join { seq, .. } => seq,
        }
    }
}

/// One hub.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hub {
    pub arrived: bool,
    /// Its removal is queued: no change or replay is accepted.
    pub removed: bool,
    /// Seq of the last queued item (the arrival is 0).
    pub seq: u8,
    /// Changes reported so far (model checking budget).
    pub reported: u8,
    pub queue: Vec<Entry>,
    /// The ticket of the last item appended (0: none yet).
    pub appended: u8,
    /// Every item with a ticket up to this one is delivered (or dropped).
    pub done: u8,
    /// The ticket of the hub's latest arrival (what `hub_arrival`'s kick waits for).
    pub arrival: u8,
    /// A thread is delivering this queue.
    pub draining: bool,
    /// Clients that have seen this hub's arrival and were not found closed since.
    pub subscribers: Set,
}

/// Where a delivery of one item to one target stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum At {
    /// Choosing the next target.
    Next,
    /// Holds an in-flight count on this client, callback not begun.
    Acquired(u8),
    /// Mutant check-then-call: saw the client open, holds no count.
    Peeked(u8),
    /// Mutant release-before-callback: took and gave back the count, callback not begun.
    Released(u8),
    /// The callback of this client runs (the frame above).
    Running(u8),
    /// The callback returned (or panicked); the count is still held.
    Ended(u8),
}

/// The item a drainer is delivering.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Delivery {
    pub item: Item,
    pub ticket: u8,
    /// Clients still to be delivered to.
    pub targets: Set,
    /// Clients delivered to (they stay, or become, subscribers).
    pub kept: Set,
    pub at: At,
}

/// Where a deregister stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Phase {
    /// Entered; from inside callbacks the own-callback and cycle checks come next.
    Entered,
    /// Past the checks (with its wait-for edge, if it is made from inside callbacks).
    Checked,
    /// Its client's slot is emptied (handle stale); `CLOSED` not set yet.
    Retired,
    /// Closed with nothing in flight, or done waiting: returns next.
    Drained,
    /// Closed with callbacks in flight: goes to sleep next.
    MustSleep,
    /// Sleeps until the in-flight count is 0.
    Waiting,
    /// Mutant lost-wakeup: tested the count (not 0) outside the lock, not asleep yet.
    Tested,
    /// Mutant lost-wakeup: asleep; only a later notify wakes it.
    Asleep { notified: bool },
}

/// What a thread is doing. A thread is a stack of frames, innermost last.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Frame {
    /// `register(client)` queues arrival replays for these hubs, one at a time.
    Registering { client: u8, hubs: Set },
    /// `hub_arrival` queued the arrival; it sees it delivered next.
    Kick { hub: u8 },
    /// An outermost call (outside callbacks) sees its own item delivered (the frames
    /// above), then settles its thread's obligations one by one, and returns.
    Settling,
    /// Sleeps on the hub until a drainer's stop wakes it (`woken`), for its item `ticket`.
    Sleep { hub: u8, ticket: u8, woken: bool },
    /// Delivering a hub's queue (the one drainer of that hub) up to ticket `target`.
    /// `delivered`: the ticket of the item just delivered, which `done` takes on when
    /// the drainer relocks (its next take or its stop); 0: none.
    Drain {
        hub: u8,
        target: u8,
        delivered: u8,
        cur: Option<Delivery>,
    },
    /// Inside a client's callback. `after_ok`: it began after a deregister of the client
    /// returned `Ok` (P1).
    Callback {
        client: u8,
        hub: u8,
        seq: u8,
        after_ok: bool,
    },
    /// A callback's query of its hub: takes the registry lock, then the hub's lock.
    Query { hub: u8 },
    /// `deregister(target)`, made from inside the callbacks of `holding`. `victim`: the
    /// client it retired (the target, unless the handle check is broken). `edge`: it is
    /// in the wait-for graph (holding waits for target). `wait`: false for the drop of a
    /// `Registration` where waiting is refused (it retires and closes, never waits).
    Deregister {
        target: u8,
        holding: Set,
        victim: u8,
        phase: Phase,
        edge: bool,
        wait: bool,
    },
}

/// The whole protocol state.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct State {
    pub clients: Vec<Client>,
    pub hubs: Vec<Hub>,
    pub threads: Vec<Vec<Frame>>,
    /// Per thread, its obligations: (hub, ticket) appended from inside its callbacks, to
    /// be delivered before its outermost call returns (one per hub, the highest ticket;
    /// settled oldest first).
    pub owed: Vec<Vec<(u8, u8)>>,
    /// Model checking budgets for what callbacks do.
    pub reentrant_left: u8,
    pub panics_left: u8,
    pub queries_left: u8,
    pub reports_left: u8,
    pub rearrivals_left: u8,
}

/// One action of one thread. Values a trace observes (`from`, `in_flight`, `seq`,
/// `drains`, ...) are part of the action: the specification takes it only if they are
/// the values it has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// `register(client)`: into the registry; replays are owed for every hub present.
    Register { client: u8 },
    /// `hub_arrival(hub)`: the arrival is queued for the clients registered now.
    HubArrive { hub: u8, clients: Set },
    /// `connector_changed`: queued with the next seq and ticket; `then`: what the caller
    /// does about it.
    Change { hub: u8, then: Then },
    /// `HubPort::remove`: the removal is queued; later changes and replays refused.
    Remove { hub: u8, then: Then },
    /// `register`'s replay for one hub: queued (or dropped if its removal is queued).
    Join { hub: u8, queued: bool, then: Then },
    /// `hub_arrival`'s kick: sees the arrival's ticket delivered.
    Kick { hub: u8, then: Then },
    /// The drainer (short of its target) takes the front item.
    Take { hub: u8, seq: u8 },
    /// The drainer reached its target (or the queue is empty) and stops; `woke`: it
    /// wakes the callers sleeping on the hub.
    DrainStop { hub: u8, woke: bool },
    /// A sleeper reacquires the hub's lock and decides again.
    Awake { hub: u8, then: Then },
    /// The outermost call takes its thread's last obligation.
    Settles { hub: u8, ticket: u8, then: Then },
    /// Delivery takes an in-flight count on `client` (`from` before).
    Acquire { client: u8, from: u8 },
    /// Delivery finds `client` closed and drops it.
    Skip { client: u8 },
    /// The callback of `client` begins for the item's seq.
    Begin { client: u8, seq: u8 },
    /// The callback returns (or panics).
    End { client: u8, panicked: bool },
    /// Delivery gives the count back (`from` before).
    Release { client: u8, from: u8 },
    /// `deregister(target)` is entered.
    DeregisterEnter { target: u8 },
    /// The drop of a `Registration` that may not wait: deregisters without waiting.
    DetachEnter { target: u8 },
    /// The checks from inside callbacks pass: the wait-for edge is recorded.
    WaitFor,
    /// The checks are skipped (mutants own-callback-waits, no-cycle-check).
    NoCheck,
    /// The registry check passes: `victim`'s slot is emptied.
    Retire { victim: u8 },
    /// An error return: own callback, would deadlock, or a stale or unknown handle.
    Fail,
    /// `CLOSED` is set; `in_flight` calls were running.
    Close { in_flight: u8 },
    /// Deregister goes to sleep.
    Sleep,
    /// Deregister returns `Ok` (its wait-for edge removed).
    Return,
    /// A detach returns (no wait).
    DetachReturn,
    /// Mutant check-then-call: a plain look at `CLOSED`, no count taken.
    Peek { client: u8 },
    /// Mutant lost-wakeup: the count is tested outside the lock.
    Test,
    /// Mutant lost-wakeup: goes to sleep after the test.
    Park,
    /// Mutant lost-wakeup: woken by a notify, tests again.
    Wake,
    /// A callback begins a query of its hub.
    Query,
    /// The query gets the registry lock and the hub's lock, and returns.
    QueryDone,
}

/// A thread and what it does.
pub type Action = (u8, Op);

/// The bug families of the code's mutants (`usbpm::checking::Mutant`), written into
/// the specification. Each must be found by the model checker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SpecMutant {
    DeregisterNoWait,
    CheckThenCall,
    ReleaseBeforeCallback,
    LostWakeup,
    WaitUnderRegistryLock,
    CallbackUnderHubLock,
    NoGeneration,
    OwnCallbackWaits,
    NoCycleCheck,
    RemovalOvertakes,
    ReplayMissesHub,
    PanicLeaksCount,
    DrainOnePerPass,
    UnboundedDrain,
    HandoffWakesNobody,
    ObligationForgotten,
}

impl SpecMutant {
    pub const ALL: &'static [SpecMutant] = &[
        SpecMutant::DeregisterNoWait,
        SpecMutant::CheckThenCall,
        SpecMutant::ReleaseBeforeCallback,
        SpecMutant::LostWakeup,
        SpecMutant::WaitUnderRegistryLock,
        SpecMutant::CallbackUnderHubLock,
        SpecMutant::NoGeneration,
        SpecMutant::OwnCallbackWaits,
        SpecMutant::NoCycleCheck,
        SpecMutant::RemovalOvertakes,
        SpecMutant::ReplayMissesHub,
        SpecMutant::PanicLeaksCount,
        SpecMutant::DrainOnePerPass,
        SpecMutant::UnboundedDrain,
        SpecMutant::HandoffWakesNobody,
        SpecMutant::ObligationForgotten,
    ];

    /// The name of the code mutant of the same family.
    pub fn name(self) -> &'static str {
        match self {
            SpecMutant::DeregisterNoWait => "deregister-no-wait",
            SpecMutant::CheckThenCall => "check-then-call",
            SpecMutant::ReleaseBeforeCallback => "release-before-callback",
            SpecMutant::LostWakeup => "lost-wakeup",
            SpecMutant::WaitUnderRegistryLock => "wait-under-registry-lock",
            SpecMutant::CallbackUnderHubLock => "callback-under-hub-lock",
            SpecMutant::NoGeneration => "no-generation",
            SpecMutant::OwnCallbackWaits => "own-callback-waits",
            SpecMutant::NoCycleCheck => "no-cycle-check",
            SpecMutant::RemovalOvertakes => "removal-overtakes",
            SpecMutant::ReplayMissesHub => "replay-misses-hub",
            SpecMutant::PanicLeaksCount => "panic-leaks-count",
            SpecMutant::DrainOnePerPass => "drain-one-per-pass",
            SpecMutant::UnboundedDrain => "unbounded-drain",
            SpecMutant::HandoffWakesNobody => "handoff-wakes-nobody",
            SpecMutant::ObligationForgotten => "obligation-forgotten",
        }
    }

    pub fn from_name(name: &str) -> Option<SpecMutant> {
        SpecMutant::ALL.iter().copied().find(|m| m.name() == name)
    }
}

/// The size of a closed world to check exhaustively: who exists and what the program
/// and its callbacks may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size {
    pub clients: u8,
    pub hubs: u8,
    pub threads: u8,
    /// Connector changes each hub reports after its arrival.
    pub changes: u8,
    /// Each hub is removed after its changes.
    pub removal: bool,
    /// Deregisters made from inside callbacks (of any client, itself included).
    pub reentrant: u8,
    /// Callback calls that panic.
    pub panics: u8,
    /// Callbacks that query the hub they are delivered from.
    pub queries: u8,
    /// The clients are registered before the threads start (no registration, so no
    /// arrival replay, in this world: that is checked at the other sizes).
    pub preregistered: bool,
    /// Program actions (a registration, a hub's arrival, change or removal) a running
    /// callback may take itself, as an idle thread would.
    pub callback_reports: u8,
    /// Arrivals of a hub again after its removal was queued.
    pub rearrivals: u8,
}

impl Size {
    pub fn label(&self) -> String {
        format!(
            "{}c x {}h x {}t x {}e{} (reentrant {}, panics {}, queries {}{})",
            self.clients,
            self.hubs,
            self.threads,
            self.changes + u8::from(self.removal),
            if self.removal { " incl. removal" } else { "" },
            self.reentrant,
            self.panics,
            self.queries,
            if self.preregistered {
                ", clients registered first"
            } else {
                ""
            }
        ) + &if self.callback_reports + self.rearrivals > 0 {
            format!(
                ", callback reports {}, re-arrivals {}",
                self.callback_reports, self.rearrivals
            )
        } else {
            String::new()
        }
    }
}

/// The specification: a closed world of a given [`Size`] (model checking), or an open
/// one (trace validation: whatever a recorded execution did, no budgets).
#[derive(Clone, Debug)]
pub struct Spec {
    pub size: Size,
    pub mutant: Option<SpecMutant>,
    /// No budgets: every action whose guard holds is allowed.
    pub open: bool,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl State {
    /// Nobody registered, no hub, every thread idle.
    pub fn initial(clients: u8, hubs: u8, threads: u8, size: Option<&Size>) -> State {
        let client = Client {
            status: Status::Unborn,
            known: false,
            in_flight: 0,
            returned_ok: false,
            env_deregistered: false,
            retired_by: None,
            order_broken: false,
            logs: vec![Log::default(); usize::from(hubs)],
        };
        let hub = Hub {
            arrived: false,
            removed: false,
            seq: 0,
            reported: 0,
            queue: Vec::new(),
            appended: 0,
            done: 0,
            arrival: 0,
            draining: false,
            subscribers: 0,
        };
        State {
            clients: vec![client; usize::from(clients)],
            hubs: vec![hub; usize::from(hubs)],
            threads: vec![Vec::new(); usize::from(threads)],
            owed: vec![Vec::new(); usize::from(threads)],
            reentrant_left: size.map_or(0, |s| s.reentrant),
            panics_left: size.map_or(0, |s| s.panics),
            queries_left: size.map_or(0, |s| s.queries),
            reports_left: size.map_or(0, |s| s.callback_reports),
            rearrivals_left: size.map_or(0, |s| s.rearrivals),
        }
    }

    /// The clients whose callbacks thread `t` is inside.
    pub fn holding(&self, t: usize) -> Set {
        self.threads[t]
            .iter()
            .filter_map(|f| match f {
                Frame::Callback { client, .. } => Some(bit(*client)),
                _ => None,
            })
            .fold(0, |a, b| a | b)
    }

    /// The wait-for graph: (holding, target) of every recorded wait.
    pub fn edges(&self) -> impl Iterator<Item = (Set, u8)> + '_ {
        self.threads.iter().flatten().filter_map(|f| match f {
            Frame::Deregister {
                holding,
                target,
                edge: true,
                ..
            } => Some((*holding, *target)),
            _ => None,
        })
    }

    /// Whether `target` (transitively, through recorded waits) waits for one of `holding`.
    pub fn would_close_cycle(&self, holding: Set, target: u8) -> bool {
        let mut reached = bit(target);
        loop {
            let before = reached;
            for (h, t) in self.edges() {
                if h & reached != 0 {
                    reached |= bit(t);
                }
            }
            if reached == before {
                return reached & holding != 0;
            }
        }
    }

    /// Every thread is idle.
    pub fn all_idle(&self) -> bool {
        self.threads.iter().all(|t| t.is_empty())
    }

    fn open_clients(&self) -> Set {
        (0..self.clients.len() as u8)
            .filter(|&c| self.clients[usize::from(c)].status == Status::Open)
            .fold(0, |a, c| a | bit(c))
    }
}

type R = Result<(), &'static str>;

/// Puts `d` as the delivery of thread `t`'s drain frame (its top frame).
fn set_cur(s: &mut State, t: usize, d: Delivery) {
    if let Some(Frame::Drain { cur, .. }) = s.threads[t].last_mut() {
        *cur = Some(d);
    }
}

/// The target and delivered count of `top` if it is `hub`'s drainer between items; else
/// why not (`not_drainer`: no drainer between items; `other_hub`: another hub's).
fn idle_drainer(
    top: Option<Frame>,
    hub: u8,
    not_drainer: &'static str,
    other_hub: &'static str,
) -> Result<(u8, u8), &'static str> {
    let Some(Frame::Drain {
        hub: dh,
        target,
        delivered,
        cur: None,
    }) = top
    else {
        return Err(not_drainer);
    };
    ensure(dh == hub, other_hub)?;
    Ok((target, delivered))
}

fn ensure(ok: bool, why: &'static str) -> R {
    if ok {
        Ok(())
    } else {
        Err(why)
    }
}

impl Spec {
    pub fn new(size: Size, mutant: Option<SpecMutant>) -> Spec {
        Spec {
            size,
            mutant,
            open: false,
        }
    }

    fn m(&self, m: SpecMutant) -> bool {
        self.mutant == Some(m)
    }

    /// The thread holding the registry lock for good (mutant wait-under-registry-lock:
    /// a deregister holds it from its retire until it returns).
    fn registry_blocked(&self, s: &State) -> bool {
        self.m(SpecMutant::WaitUnderRegistryLock)
            && s.threads.iter().flatten().any(|f| {
                matches!(
                    f,
                    Frame::Deregister {
                        phase: Phase::Retired
                            | Phase::Drained
                            | Phase::MustSleep
                            | Phase::Waiting
                            | Phase::Tested
                            | Phase::Asleep { .. },
                        ..
                    }
                )
            })
    }

    /// Whether a hub's lock is held across a delivery (mutant callback-under-hub-lock).
    fn hub_blocked(&self, s: &State, hub: u8) -> bool {
        self.m(SpecMutant::CallbackUnderHubLock)
            && s.threads
                .iter()
                .flatten()
                .any(|f| matches!(f, Frame::Drain { hub: h, cur: Some(_), .. } if *h == hub))
    }

    /// What a caller outside callbacks does about its item `ticket` of `hub` (a
    /// sleeper woken, an obligation settled): nothing if it is delivered, sleep while
    /// another thread drains, drain otherwise.
    pub fn settle_decision(s: &State, hub: u8, ticket: u8) -> Then {
        let h = &s.hubs[usize::from(hub)];
        if ticket <= h.done {
            Then::Done
        } else if h.draining {
            Then::Sleeps
        } else {
            Then::Drains
        }
    }

    /// What thread `t` does about the item `ticket` it submits to `hub`: as
    /// [`Spec::settle_decision`], except that inside a callback it owes the item.
    pub fn submit_decision(s: &State, t: usize, hub: u8, ticket: u8) -> Then {
        match Self::settle_decision(s, hub, ticket) {
            Then::Done => Then::Done,
            _ if s.holding(t) != 0 => Then::Owes,
            other => other,
        }
    }

    /// The ticket a submission to `hub` waits for: the next one if it appends, the
    /// arrival's for the kick, 0 for a dropped replay.
    pub fn submit_ticket(s: &State, hub: u8, appends: bool, kick: bool) -> u8 {
        let h = &s.hubs[usize::from(hub)];
        if appends {
            h.appended + 1
        } else if kick {
            h.arrival
        } else {
            0
        }
    }

    /// Goes on with `then` for `hub`'s item `ticket`: sleeps on the hub, or becomes its
    /// drainer up to the item.
    fn settle(s: &mut State, t: usize, hub: u8, ticket: u8, then: Then) {
        match then {
            Then::Done | Then::Owes => {}
            Then::Sleeps => s.threads[t].push(Frame::Sleep {
                hub,
                ticket,
                woken: false,
            }),
            Then::Drains => {
                s.hubs[usize::from(hub)].draining = true;
                s.threads[t].push(Frame::Drain {
                    hub,
                    target: ticket,
                    delivered: 0,
                    cur: None,
                });
            }
        }
    }

    /// Submits to `hub` under its lock: appends `item` (with the next ticket), decides
    /// what the caller does (`then`, as observed), and does it: inside a callback records
    /// the obligation, outside settles the item (and then the thread's obligations).
    fn submit(
        &self,
        s: &mut State,
        t: usize,
        hub: u8,
        item: Option<Item>,
        kick: bool,
        then: Then,
    ) -> R {
        let ticket = Self::submit_ticket(s, hub, item.is_some(), kick);
        let want = Self::submit_decision(s, t, hub, ticket);
        ensure(
            want == then,
            "the caller does what its ticket, the hub's done and draining say",
        )?;
        let h = &mut s.hubs[usize::from(hub)];
        if let Some(item) = item {
            h.appended = ticket;
            let entry = Entry { ticket, item };
            match item {
                Item::Removal { .. } if self.m(SpecMutant::RemovalOvertakes) => {
                    h.queue.insert(0, entry)
                }
                _ => h.queue.push(entry),
            }
        }
        if then == Then::Owes && !self.m(SpecMutant::ObligationForgotten) {
            let owed = &mut s.owed[t];
            match owed.iter_mut().find(|(oh, _)| *oh == hub) {
                Some(o) => o.1 = o.1.max(ticket),
                None => owed.push((hub, ticket)),
            }
        }
        // Inside a callback nothing more: the thread's outermost call settles what it
        // owes (a callback that settled obligations could sleep on its own drain).
        if s.holding(t) != 0 {
            return Ok(());
        }
        s.threads[t].push(Frame::Settling);
        Self::settle(s, t, hub, ticket, then);
        Ok(())
    }

    /// Whether a thread sleeps on `hub`.
    fn has_sleepers(s: &State, hub: u8) -> bool {
        s.threads
            .iter()
            .flatten()
            .any(|f| matches!(f, Frame::Sleep { hub: h, .. } if *h == hub))
    }

    /// A caller outside callbacks may decide `then` about its item `ticket` of `hub`:
    /// the hub's lock is free and `then` is what its ticket, `done` and `draining` say.
    fn settle_allowed(
        &self,
        s: &State,
        hub: u8,
        ticket: u8,
        then: Then,
        wrong_decision: &'static str,
    ) -> R {
        ensure(
            !self.hub_blocked(s, hub),
            "the hub's lock is held across a callback",
        )?;
        ensure(
            then == Self::settle_decision(s, hub, ticket),
            wrong_decision,
        )
    }

    /// What the drainer of `hub` on thread `t` (between items) does next: take the front
    /// item (`Some(seq)`) or stop (`None`). `done` is the hub's, with the item just
    /// delivered counted.
    fn drain_next(&self, s: &State, hub: u8, target: u8, delivered: u8) -> Option<u8> {
        let h = &s.hubs[usize::from(hub)];
        let done = h.done.max(delivered);
        let short = done < target || self.m(SpecMutant::UnboundedDrain);
        let one_done = self.m(SpecMutant::DrainOnePerPass) && delivered != 0;
        match h.queue.first() {
            Some(e) if short && !one_done => Some(e.item.seq()),
            _ => None,
        }
    }

    /// Takes `op` on thread `t`, or says why the specification cannot.
    pub fn apply(&self, s: &State, t: u8, op: Op) -> Result<State, &'static str> {
        let t = usize::from(t);
        let mut n = s.clone();
        let top = s.threads[t].last().copied();
        let idle_or_callback = matches!(top, None | Some(Frame::Callback { .. }));
        match op {
            Op::Register { client } => {
                ensure(
                    idle_or_callback,
                    "register needs a thread that is idle or inside a callback",
                )?;
                ensure(!self.registry_blocked(s), "the registry lock is held")?;
                let c = &mut n.clients[usize::from(client)];
                ensure(c.status == Status::Unborn, "a client registers once")?;
                c.status = Status::Open;
                let mut hubs = s
                    .hubs
                    .iter()
                    .enumerate()
                    .filter(|(_, h)| h.arrived)
                    .fold(0, |a, (i, _)| a | bit(i as u8));
                // Every hub present now is owed to the client: its replay, unless the
                // hub's removal is queued before the replay is.
                for h in members(hubs) {
                    if !s.hubs[usize::from(h)].removed {
                        c.logs[usize::from(h)].owed = true;
                    }
                }
                if self.m(SpecMutant::ReplayMissesHub) && hubs != 0 {
                    hubs &= hubs - 1; // one present hub is not replayed
                }
                n.threads[t].push(Frame::Registering { client, hubs });
            }
            Op::HubArrive { hub, clients } => {
                ensure(idle_or_callback, "a hub arrives on an idle thread")?;
                ensure(!self.registry_blocked(s), "the registry lock is held")?;
                let h = &mut n.hubs[usize::from(hub)];
                ensure(
                    !h.arrived || h.removed,
                    "a present hub does not arrive again",
                )?;
                ensure(
                    clients == s.open_clients(),
                    "an arrival is addressed to exactly the registered clients",
                )?;
                if h.arrived {
                    // Arrives again: a new presence, queued behind the old one.
                    for c in &mut n.clients {
                        c.logs[usize::from(hub)].owed = false;
                    }
                }
                let h = &mut n.hubs[usize::from(hub)];
                h.arrived = true;
                h.removed = false;
                h.seq = 0;
                h.appended += 1;
                h.arrival = h.appended;
                h.queue.push(Entry {
                    ticket: h.appended,
                    item: Item::Arrival { clients },
                });
                for c in members(clients) {
                    n.clients[usize::from(c)].logs[usize::from(hub)].owed = true;
                }
                n.threads[t].push(Frame::Kick { hub });
            }
            Op::Change { hub, then } | Op::Remove { hub, then } => {
                ensure(
                    idle_or_callback,
                    "hardware reports from an idle thread or a callback",
                )?;
                ensure(
                    !self.hub_blocked(s, hub),
                    "the hub's lock is held across a callback",
                )?;
                let h = &mut n.hubs[usize::from(hub)];
                ensure(
                    h.arrived && !h.removed,
                    "changes and removal only of a present hub",
                )?;
                h.seq += 1;
                let item = if matches!(op, Op::Change { .. }) {
                    h.reported += 1;
                    Item::Change { seq: h.seq }
                } else {
                    h.removed = true;
                    Item::Removal { seq: h.seq }
                };
                self.submit(&mut n, t, hub, Some(item), false, then)?;
            }
            Op::Join { hub, queued, then } => {
                let Some(Frame::Registering { client, hubs }) = top else {
                    return Err("a replay is queued by a registering thread");
                };
                ensure(
                    hubs & bit(hub) != 0,
                    "a replay only for a hub present when the client registered",
                )?;
                ensure(
                    !self.hub_blocked(s, hub),
                    "the hub's lock is held across a callback",
                )?;
                let Some(Frame::Registering { hubs: left, .. }) = n.threads[t].last_mut() else {
                    unreachable!()
                };
                *left &= !bit(hub);
                let h = &n.hubs[usize::from(hub)];
                ensure(
                    queued != h.removed,
                    "a replay is queued unless the hub's removal is",
                )?;
                let item = queued.then_some(Item::Join { client, seq: h.seq });
                n.clients[usize::from(client)].logs[usize::from(hub)].owed = queued;
                self.submit(&mut n, t, hub, item, false, then)?;
            }
            Op::Kick { hub, then } => {
                ensure(
                    top == Some(Frame::Kick { hub }),
                    "a kick follows the hub's arrival",
                )?;
                ensure(
                    !self.hub_blocked(s, hub),
                    "the hub's lock is held across a callback",
                )?;
                n.threads[t].pop();
                self.submit(&mut n, t, hub, None, true, then)?;
            }
            Op::Take { hub, seq } => {
                let (target, delivered) = idle_drainer(
                    top,
                    hub,
                    "only a drainer, between items, takes one",
                    "only the hub's drainer takes its items",
                )?;
                ensure(
                    self.drain_next(s, hub, target, delivered).is_some(),
                    "the drainer takes an item only short of its target, from a non-empty queue",
                )?;
                let h = &mut n.hubs[usize::from(hub)];
                h.done = h.done.max(delivered);
                let Entry { ticket, item } = h.queue.remove(0);
                ensure(
                    item.seq() == seq,
                    "the drainer takes the queue's front item",
                )?;
                let targets = match item {
                    Item::Arrival { clients } => clients,
                    Item::Change { .. } | Item::Removal { .. } => h.subscribers,
                    Item::Join { client, .. } => bit(client) & !h.subscribers,
                };
                *n.threads[t].last_mut().expect("drain frame") = Frame::Drain {
                    hub,
                    target,
                    delivered: 0,
                    cur: Some(Delivery {
                        item,
                        ticket,
                        targets,
                        kept: 0,
                        at: At::Next,
                    }),
                };
            }
            Op::DrainStop { hub, woke } => {
                let (target, delivered) = idle_drainer(
                    top,
                    hub,
                    "only a drainer, between items, stops",
                    "only the hub's drainer stops it",
                )?;
                ensure(
                    self.drain_next(s, hub, target, delivered).is_none(),
                    "the drainer stops only at its target or at an empty queue",
                )?;
                let sleepers = Self::has_sleepers(s, hub);
                ensure(
                    woke == (sleepers && !self.m(SpecMutant::HandoffWakesNobody)),
                    "the drainer's stop wakes the sleepers exactly when there are some",
                )?;
                let h = &mut n.hubs[usize::from(hub)];
                h.done = h.done.max(delivered);
                h.draining = false;
                if woke {
                    for f in n.threads.iter_mut().flatten() {
                        if let Frame::Sleep { hub: sh, woken, .. } = f {
                            if *sh == hub {
                                *woken = true;
                            }
                        }
                    }
                }
                n.threads[t].pop();
            }
            Op::Awake { hub, then } => {
                let Some(Frame::Sleep {
                    hub: sh,
                    ticket,
                    woken,
                }) = top
                else {
                    return Err("only a sleeper wakes");
                };
                ensure(sh == hub, "a sleeper wakes on the hub it sleeps on")?;
                // Trace validation allows a spurious wake-up (a condition variable may
                // return without a notify); the closed world wakes only the notified.
                ensure(woken || self.open, "only a drainer's stop wakes a sleeper")?;
                self.settle_allowed(
                    s,
                    hub,
                    ticket,
                    then,
                    "the woken sleeper does what its ticket, done and draining say",
                )?;
                n.threads[t].pop();
                Self::settle(&mut n, t, hub, ticket, then);
            }
            Op::Settles { hub, ticket, then } => {
                ensure(
                    top == Some(Frame::Settling),
                    "obligations are settled by the outermost call, after its own item",
                )?;
                ensure(
                    s.owed[t].first() == Some(&(hub, ticket)),
                    "the thread settles its oldest obligation",
                )?;
                self.settle_allowed(
                    s,
                    hub,
                    ticket,
                    then,
                    "the obligation is settled as its ticket, done and draining say",
                )?;
                n.owed[t].remove(0);
                Self::settle(&mut n, t, hub, ticket, then);
            }
            Op::Acquire { client, .. } | Op::Skip { client } | Op::Peek { client } => {
                let Some(Frame::Drain {
                    hub, cur: Some(d), ..
                }) = top
                else {
                    return Err("delivery needs a drainer with an item");
                };
                ensure(
                    d.at == At::Next && d.targets & bit(client) != 0,
                    "delivery reaches a target of the item, one at a time",
                )?;
                let c = &mut n.clients[usize::from(client)];
                let mut d = d;
                match op {
                    Op::Acquire { from, .. } => {
                        ensure(
                            !self.m(SpecMutant::CheckThenCall),
                            "the mutant takes no count",
                        )?;
                        ensure(
                            c.status != Status::Closed,
                            "no count is taken on a closed client",
                        )?;
                        ensure(
                            c.in_flight == from,
                            "the in-flight count is not what the specification has",
                        )?;
                        c.in_flight += 1;
                        d.at = At::Acquired(client);
                    }
                    Op::Skip { .. } => {
                        ensure(
                            c.status == Status::Closed,
                            "only a closed client is skipped",
                        )?;
                        c.logs[usize::from(hub)].skipped = true;
                        d.targets &= !bit(client);
                    }
                    _ => {
                        ensure(self.m(SpecMutant::CheckThenCall), "only the mutant peeks")?;
                        ensure(c.status != Status::Closed, "a closed client is skipped")?;
                        d.at = At::Peeked(client);
                    }
                }
                set_cur(&mut n, t, d);
            }
            Op::Begin { client, seq } => {
                let Some(Frame::Drain {
                    hub,
                    cur: Some(mut d),
                    ..
                }) = top
                else {
                    return Err("a callback begins under a delivery");
                };
                let ok = match d.at {
                    At::Acquired(c) => c == client && !self.m(SpecMutant::ReleaseBeforeCallback),
                    At::Peeked(c) | At::Released(c) => c == client,
                    _ => false,
                };
                ensure(
                    ok,
                    "a callback begins only while its call holds an in-flight count",
                )?;
                ensure(
                    seq == d.item.seq(),
                    "the callback is for the item being delivered",
                )?;
                d.at = At::Running(client);
                let c = &mut n.clients[usize::from(client)];
                let log = &mut c.logs[usize::from(hub)];
                let arrival = matches!(d.item, Item::Arrival { .. } | Item::Join { .. });
                if log.removed && arrival {
                    *log = Log {
                        owed: log.owed,
                        ..Log::default()
                    };
                }
                let in_order = if log.removed {
                    false
                } else if log.seen {
                    !arrival && seq == log.last.wrapping_add(1)
                } else {
                    arrival
                };
                c.order_broken |= !in_order;
                log.seen = true;
                log.last = seq;
                log.removed |= matches!(d.item, Item::Removal { .. });
                let after_ok = c.returned_ok;
                set_cur(&mut n, t, d);
                n.threads[t].push(Frame::Callback {
                    client,
                    hub,
                    seq,
                    after_ok,
                });
            }
            Op::End { client, panicked } => {
                let Some(Frame::Callback { client: c, .. }) = top else {
                    return Err("only a running callback returns");
                };
                ensure(c == client, "the innermost callback returns first")?;
                if !self.open && panicked {
                    ensure(n.panics_left > 0, "no panic left in the budget")?;
                    n.panics_left -= 1;
                }
                n.threads[t].pop();
                let Some(Frame::Drain {
                    cur: Some(mut d), ..
                }) = n.threads[t].last().copied()
                else {
                    unreachable!("a callback runs under a delivery")
                };
                let counted = match d.at {
                    At::Running(_) => {
                        !self.m(SpecMutant::CheckThenCall)
                            && !self.m(SpecMutant::ReleaseBeforeCallback)
                    }
                    _ => unreachable!(),
                };
                if counted && !(panicked && self.m(SpecMutant::PanicLeaksCount)) {
                    d.at = At::Ended(client);
                } else {
                    d.at = At::Next;
                    d.targets &= !bit(client);
                    d.kept |= bit(client);
                }
                set_cur(&mut n, t, d);
            }
            Op::Release { client, from } => {
                let Some(Frame::Drain {
                    cur: Some(mut d), ..
                }) = top
                else {
                    return Err("a count is released by its delivery");
                };
                let before_callback =
                    self.m(SpecMutant::ReleaseBeforeCallback) && d.at == At::Acquired(client);
                ensure(
                    d.at == At::Ended(client) || before_callback,
                    "the count is released after the callback returned",
                )?;
                // A delivery that finds the client closed bumps the count for an instant
                // before it backs out (R3 in docs/INVARIANTS.md): a release may see those
                // bumps of deliveries that are about to skip this client.
                let skipping = s
                    .threads
                    .iter()
                    .filter_map(|t| t.last())
                    .filter(|f| matches!(f, Frame::Drain { cur: Some(d), .. } if d.at == At::Next && d.targets & bit(client) != 0))
                    .count();
                let c = &mut n.clients[usize::from(client)];
                let bumps = if c.status == Status::Closed {
                    skipping as u8
                } else {
                    0
                };
                ensure(
                    (c.in_flight..=c.in_flight + bumps).contains(&from),
                    "the in-flight count is not what the specification has",
                )?;
                c.in_flight -= 1;
                if c.in_flight == 0 && c.status == Status::Closed {
                    // The last call of a closed client wakes every sleeping deregister of it.
                    for f in n.threads.iter_mut().flatten() {
                        if let Frame::Deregister {
                            victim,
                            phase: Phase::Asleep { notified },
                            ..
                        } = f
                        {
                            if *victim == client {
                                *notified = true;
                            }
                        }
                    }
                }
                if before_callback {
                    d.at = At::Released(client);
                } else {
                    d.at = At::Next;
                    d.targets &= !bit(client);
                    d.kept |= bit(client);
                }
                set_cur(&mut n, t, d);
            }
            Op::DeregisterEnter { target } | Op::DetachEnter { target } => {
                ensure(
                    idle_or_callback,
                    "deregister from an idle thread or a callback",
                )?;
                let wait = matches!(op, Op::DeregisterEnter { .. });
                let holding = if wait { s.holding(t) } else { 0 };
                n.threads[t].push(Frame::Deregister {
                    target,
                    holding,
                    victim: target,
                    phase: Phase::Entered,
                    edge: false,
                    wait,
                });
            }
            Op::WaitFor
            | Op::NoCheck
            | Op::Fail
            | Op::Retire { .. }
            | Op::Close { .. }
            | Op::Sleep
            | Op::Return
            | Op::DetachReturn
            | Op::Test
            | Op::Park
            | Op::Wake => {
                let Some(Frame::Deregister {
                    target,
                    holding,
                    victim,
                    phase,
                    edge,
                    wait,
                }) = top
                else {
                    return Err("not inside a deregister");
                };
                let own = holding & bit(target) != 0;
                let checks = phase == Phase::Entered && holding != 0;
                let registry_ok = !self.registry_blocked(s);
                let tc = s.clients[usize::from(target)].status;
                let mut next = Frame::Deregister {
                    target,
                    holding,
                    victim,
                    phase,
                    edge,
                    wait,
                };
                let set = |f: &mut Frame, p: Phase| {
                    if let Frame::Deregister { phase, .. } = f {
                        *phase = p;
                    }
                };
                match op {
                    Op::WaitFor => {
                        ensure(
                            checks && !own && !s.would_close_cycle(holding, target),
                            "the wait-for edge is recorded only when it closes no cycle",
                        )?;
                        ensure(
                            !self.m(SpecMutant::NoCycleCheck),
                            "the mutant has no wait-for graph",
                        )?;
                        next = Frame::Deregister {
                            target,
                            holding,
                            victim,
                            phase: Phase::Checked,
                            edge: true,
                            wait,
                        };
                    }
                    Op::NoCheck => {
                        let skips = (own && self.m(SpecMutant::OwnCallbackWaits))
                            || (!own && self.m(SpecMutant::NoCycleCheck));
                        ensure(checks && skips, "the checks are made")?;
                        set(&mut next, Phase::Checked);
                    }
                    Op::Fail => {
                        let refused = checks
                            && ((own && !self.m(SpecMutant::OwnCallbackWaits))
                                || (!own
                                    && !self.m(SpecMutant::NoCycleCheck)
                                    && s.would_close_cycle(holding, target)));
                        let past_checks =
                            phase == Phase::Checked || (phase == Phase::Entered && holding == 0);
                        let stale = past_checks && registry_ok && tc != Status::Open;
                        ensure(
                            refused || stale,
                            "an error only for a refused wait or a handle that is not registered",
                        )?;
                        n.threads[t].pop();
                        return Ok(n);
                    }
                    Op::Retire { victim: v } => {
                        let past_checks =
                            phase == Phase::Checked || (phase == Phase::Entered && holding == 0);
                        ensure(
                            past_checks && registry_ok,
                            "retire follows the checks, under the registry lock",
                        )?;
                        let stale_hits_other =
                            self.m(SpecMutant::NoGeneration) && tc != Status::Open && v != target;
                        ensure(
                            (v == target && tc == Status::Open) || stale_hits_other,
                            "deregister retires its own, registered client",
                        )?;
                        let vc = &mut n.clients[usize::from(v)];
                        ensure(
                            vc.status == Status::Open,
                            "only a registered client is retired",
                        )?;
                        vc.status = Status::Retired;
                        vc.retired_by = Some(target);
                        next = Frame::Deregister {
                            target,
                            holding,
                            victim: v,
                            phase: Phase::Retired,
                            edge,
                            wait,
                        };
                    }
                    Op::Close { in_flight } => {
                        ensure(phase == Phase::Retired, "close follows retire")?;
                        let vc = &mut n.clients[usize::from(victim)];
                        ensure(
                            vc.in_flight == in_flight,
                            "close sees the in-flight count the specification has",
                        )?;
                        vc.status = Status::Closed;
                        let wait_now =
                            wait && in_flight > 0 && !self.m(SpecMutant::DeregisterNoWait);
                        set(
                            &mut next,
                            if wait_now {
                                Phase::MustSleep
                            } else {
                                Phase::Drained
                            },
                        );
                    }
                    Op::Sleep => {
                        ensure(
                            phase == Phase::MustSleep,
                            "deregister sleeps only with callbacks in flight",
                        )?;
                        set(&mut next, Phase::Waiting);
                    }
                    Op::Test => {
                        ensure(
                            self.m(SpecMutant::LostWakeup) && phase == Phase::Waiting,
                            "only the mutant tests outside the lock",
                        )?;
                        let drained = s.clients[usize::from(victim)].in_flight == 0;
                        set(
                            &mut next,
                            if drained {
                                Phase::Drained
                            } else {
                                Phase::Tested
                            },
                        );
                    }
                    Op::Park => {
                        ensure(phase == Phase::Tested, "parks after the test")?;
                        set(&mut next, Phase::Asleep { notified: false });
                    }
                    Op::Wake => {
                        ensure(
                            phase == Phase::Asleep { notified: true },
                            "only a notify wakes a sleeper",
                        )?;
                        set(&mut next, Phase::Waiting);
                    }
                    Op::Return | Op::DetachReturn => {
                        ensure(
                            wait == matches!(op, Op::Return),
                            "a detach returns without waiting",
                        )?;
                        let drained_now = phase == Phase::Waiting
                            && !self.m(SpecMutant::LostWakeup)
                            && s.clients[usize::from(victim)].in_flight == 0;
                        ensure(
                            phase == Phase::Drained || drained_now,
                            "deregister returns only when no callback of its client is in flight",
                        )?;
                        if wait {
                            n.clients[usize::from(target)].returned_ok = true;
                        }
                        n.threads[t].pop();
                        return Ok(n);
                    }
                    _ => unreachable!(),
                }
                *n.threads[t].last_mut().expect("deregister frame") = next;
            }
            Op::Query => {
                let Some(Frame::Callback { hub, .. }) = top else {
                    return Err("a query from a callback");
                };
                if !self.open {
                    ensure(n.queries_left > 0, "no query left in the budget")?;
                    n.queries_left -= 1;
                }
                n.threads[t].push(Frame::Query { hub });
            }
            Op::QueryDone => {
                let Some(Frame::Query { hub }) = top else {
                    return Err("no query in progress");
                };
                ensure(!self.registry_blocked(s), "the registry lock is held")?;
                ensure(
                    !self.hub_blocked(s, hub),
                    "the hub's lock is held across a callback",
                )?;
                n.threads[t].pop();
            }
        }
        self.normalize(&mut n, t);
        Ok(n)
    }

    /// Finishes what needs no action: an item delivered to all its targets updates the
    /// subscribers (the drainer records its ticket for `done`, which it updates when it
    /// relocks); an outermost call with its item and its thread's obligations settled
    /// returns; a registration with every replay queued returns.
    fn normalize(&self, s: &mut State, t: usize) {
        loop {
            match s.threads[t].last().copied() {
                Some(Frame::Drain {
                    hub,
                    target,
                    cur: Some(d),
                    ..
                }) if d.at == At::Next && d.targets == 0 => {
                    let h = &mut s.hubs[usize::from(hub)];
                    h.subscribers = match d.item {
                        Item::Arrival { .. } | Item::Change { .. } => d.kept,
                        Item::Removal { .. } => 0,
                        Item::Join { .. } => h.subscribers | d.kept,
                    };
                    *s.threads[t].last_mut().expect("drain frame") = Frame::Drain {
                        hub,
                        target,
                        delivered: d.ticket,
                        cur: None,
                    };
                }
                Some(Frame::Settling) if s.owed[t].is_empty() => {
                    s.threads[t].pop();
                }
                Some(Frame::Registering { client, hubs: 0 }) => {
                    s.threads[t].pop();
                    s.clients[usize::from(client)].known = true;
                }
                _ => return,
            }
        }
    }

    /// Candidate actions of thread `t` (the closed world's budgets applied); the ones
    /// whose guard fails are dropped by [`Spec::apply`].
    pub fn candidates(&self, s: &State, t: u8, out: &mut Vec<Op>) {
        let ti = usize::from(t);
        let nc = s.clients.len() as u8;
        match s.threads[ti].last().copied() {
            None => {
                for c in 0..nc {
                    let cl = &s.clients[usize::from(c)];
                    if cl.known && !cl.env_deregistered && cl.status != Status::Unborn {
                        out.push(Op::DeregisterEnter { target: c });
                    }
                }
                self.program_reports(s, ti, out);
            }
            Some(Frame::Registering { hubs, .. }) => {
                for h in members(hubs) {
                    let queued = !s.hubs[usize::from(h)].removed;
                    let ticket = Self::submit_ticket(s, h, queued, false);
                    out.push(Op::Join {
                        hub: h,
                        queued,
                        then: Self::submit_decision(s, ti, h, ticket),
                    });
                }
            }
            Some(Frame::Kick { hub }) => {
                let ticket = Self::submit_ticket(s, hub, false, true);
                out.push(Op::Kick {
                    hub,
                    then: Self::submit_decision(s, ti, hub, ticket),
                });
            }
            Some(Frame::Settling) => {
                if let Some(&(hub, ticket)) = s.owed[ti].first() {
                    out.push(Op::Settles {
                        hub,
                        ticket,
                        then: Self::settle_decision(s, hub, ticket),
                    });
                }
            }
            Some(Frame::Sleep { hub, ticket, woken }) => {
                if woken || self.open {
                    out.push(Op::Awake {
                        hub,
                        then: Self::settle_decision(s, hub, ticket),
                    });
                }
            }
            Some(Frame::Drain {
                hub,
                target,
                delivered,
                cur: None,
            }) => match self.drain_next(s, hub, target, delivered) {
                Some(seq) => out.push(Op::Take { hub, seq }),
                None => out.push(Op::DrainStop {
                    hub,
                    woke: Self::has_sleepers(s, hub) && !self.m(SpecMutant::HandoffWakesNobody),
                }),
            },
            Some(Frame::Drain { cur: Some(d), .. }) => match d.at {
                At::Next => {
                    for c in members(d.targets) {
                        let cl = &s.clients[usize::from(c)];
                        if cl.status == Status::Closed {
                            out.push(Op::Skip { client: c });
                        } else if self.m(SpecMutant::CheckThenCall) {
                            out.push(Op::Peek { client: c });
                        } else {
                            out.push(Op::Acquire {
                                client: c,
                                from: cl.in_flight,
                            });
                        }
                    }
                }
                At::Acquired(c) if self.m(SpecMutant::ReleaseBeforeCallback) => {
                    out.push(Op::Release {
                        client: c,
                        from: s.clients[usize::from(c)].in_flight,
                    })
                }
                At::Acquired(c) | At::Peeked(c) | At::Released(c) => out.push(Op::Begin {
                    client: c,
                    seq: d.item.seq(),
                }),
                At::Running(_) => {}
                At::Ended(c) => out.push(Op::Release {
                    client: c,
                    from: s.clients[usize::from(c)].in_flight,
                }),
            },
            Some(Frame::Query { .. }) => out.push(Op::QueryDone),
            Some(Frame::Callback { client, .. }) => {
                out.push(Op::End {
                    client,
                    panicked: false,
                });
                if s.panics_left > 0 {
                    out.push(Op::End {
                        client,
                        panicked: true,
                    });
                }
                if s.queries_left > 0 {
                    out.push(Op::Query);
                }
                if s.reentrant_left > 0 {
                    for c in 0..nc {
                        if s.clients[usize::from(c)].known {
                            out.push(Op::DeregisterEnter { target: c });
                        }
                    }
                }
                if s.reports_left > 0 {
                    self.program_reports(s, ti, out);
                }
            }
            Some(Frame::Deregister { target, phase, .. }) => match phase {
                Phase::Entered | Phase::Checked => {
                    out.extend([
                        Op::WaitFor,
                        Op::NoCheck,
                        Op::Fail,
                        Op::Retire { victim: target },
                    ]);
                    if self.m(SpecMutant::NoGeneration) {
                        out.extend(
                            (0..nc)
                                .filter(|&v| v != target)
                                .map(|victim| Op::Retire { victim }),
                        );
                    }
                }
                Phase::Retired => {
                    let Some(Frame::Deregister { victim, .. }) = s.threads[ti].last() else {
                        unreachable!()
                    };
                    out.push(Op::Close {
                        in_flight: s.clients[usize::from(*victim)].in_flight,
                    });
                }
                Phase::MustSleep => out.push(Op::Sleep),
                Phase::Waiting => out.extend([Op::Return, Op::Test]),
                Phase::Tested => out.push(Op::Park),
                Phase::Asleep { .. } => out.push(Op::Wake),
                Phase::Drained => out.extend([Op::Return, Op::DetachReturn]),
            },
        }
    }

    /// The program's registrations and hub reports left to make (by an idle thread, or
    /// by a callback within its budget): register an unborn client; a hub arrives (again,
    /// after its removal, within the re-arrival budget), reports its changes, then its
    /// removal.
    fn program_reports(&self, s: &State, t: usize, out: &mut Vec<Op>) {
        for (c, cl) in s.clients.iter().enumerate() {
            if cl.status == Status::Unborn {
                out.push(Op::Register { client: c as u8 });
            }
        }
        for (h, hub) in s.hubs.iter().enumerate() {
            let h = h as u8;
            if !hub.arrived || (hub.removed && s.rearrivals_left > 0) {
                out.push(Op::HubArrive {
                    hub: h,
                    clients: s.open_clients(),
                });
            } else if !hub.removed {
                let then = Self::submit_decision(s, t, h, Self::submit_ticket(s, h, true, false));
                if hub.reported < self.size.changes {
                    out.push(Op::Change { hub: h, then });
                } else if self.size.removal {
                    out.push(Op::Remove { hub: h, then });
                }
            }
        }
    }

    /// The enabled actions of every thread: (thread, action, next state).
    pub fn enabled(&self, s: &State) -> Vec<(Action, State)> {
        let mut out = Vec::new();
        let mut ops = Vec::new();
        for t in 0..s.threads.len() as u8 {
            ops.clear();
            self.candidates(s, t, &mut ops);
            for &op in &ops {
                if let Ok(mut next) = self.apply(s, t, op) {
                    self.charge_deregister(s, &mut next, usize::from(t), op);
                    out.push(((t, op), next));
                }
            }
        }
        out
    }
}

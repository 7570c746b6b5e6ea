//! The protocol's state: clients, hubs, the threads' call stacks and their
//! obligations, and the history variables the properties read.
//!
//! Contract: plain data and read-only queries of it. Nothing here changes a state (the
//! actions do, `actions/`) or knows the budgets of a closed world (`enumerate.rs`).
//!
//! Clients and hubs are small integers, sets of them are bitmasks. Each thread is a stack
//! of frames, innermost last (a callback can deregister, which can wait; a registration
//! greets its client, whose Policy Manager arrival's callback can register another, and
//! shows it, which can drain a hub, whose callback can deregister, ...). The contract
//! promises no order among clients or among hubs, so the state keeps sets where the code
//! keeps lists: that makes clients, hubs and threads interchangeable (symmetry
//! reduction, `symmetry.rs`) and the code one refinement.
//!
//! The derived orders (field and variant order) are what symmetry reduction sorts by:
//! reordering fields or variants changes which representative the checker keeps.
//!
//! **In the code.** `Closed`, `shut_closed`: `rundown.rs` bit 63 (`CLOSED`); `in_flight`:
//! bits 0–62; `passes`: `Turns::passes`; `shut`: `Registry::shut` (no registration or
//! hub arrival; a showing queues no replay); a hub's queue, `requests` and counters:
//! `hub.rs` `Queue`; `owed[t]` (`Deliver{hub, ticket}`, highest per hub, and
//! `Greet{client}`, oldest first): `hub.rs` `OBLIGATIONS`, thread-local; the wait-for
//! graph (in each `Deregister` frame with `edge`, the `holding` clients wait for
//! `target`): `waits.rs` `WaitGraph`; history flags: as `model/src/judge/monitor.rs`
//! keeps them. `closed()` is `Closed` or `shut_closed`: no count is taken. `power`: the
//! size's first `granted` clients; in traces, those the harness names
//! (`Client::granted` = `request ∩ PolicyManager::granting`). A request is `live` when
//! made in the current presence with the removal not queued (else an accepted answer
//! reports nothing); taken by the hardware or not is not told apart.

use crate::sizes::Size;

/// A set of clients or hubs (bit `i` is client or hub `i`).
pub type Set = u32;

/// Iterates the members of a set.
pub fn members(set: Set) -> impl Iterator<Item = u8> {
    (0..32u8).filter(move |i| set & (1 << i) != 0)
}

/// The set holding `i` alone.
pub(crate) fn bit(i: u8) -> Set {
    1 << i
}

/// Where a client is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    /// Not registered yet (or a handle that was never issued).
    Unborn,
    /// Registered: in the registry, callbacks may begin (unless `shutdown` closed it,
    /// [`Client::shut_closed`]).
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
    /// Registered and not shown to the hubs yet (its Policy Manager arrival comes
    /// first): hub arrivals do not address it and no replay is queued for it
    /// (`registry.hidden`).
    pub hidden: bool,
    /// `shutdown` set `CLOSED` on its rundown; it stays registered until deregistered.
    pub shut_closed: bool,
    /// Its Policy Manager arrival's call returned (`Client::greeted`): `shutdown`
    /// delivers its removal only then; M1 reads it.
    pub greeted: bool,
    /// `register` returned: the program knows the handle and may deregister it.
    pub known: bool,
    /// Callback calls holding an in-flight count (the active call and the deliveries
    /// admitted behind it).
    pub in_flight: u8,
    /// Turns handed over by releases and not yet taken by a waiting delivery (the
    /// rundown's `passes` token).
    pub passes: u8,
    /// A deregister of this client returned `Ok` (history, read by P1 and P2).
    pub returned_ok: bool,
    /// The program's own (top-level) deregister of it has been made (model checking budget).
    pub env_deregistered: bool,
    /// Whose deregister retired it (history, read by P4).
    pub retired_by: Option<u8>,
    /// A callback began out of per-hub order (history, read by P5).
    pub order_broken: bool,
    /// Its Policy Manager removal's call began (history, read by M2).
    pub removal_began: bool,
    /// A call began before its Policy Manager arrival returned, or a second arrival
    /// (history, read by M1).
    pub arrival_broken: bool,
    /// A call began after its Policy Manager removal began (history, read by M2).
    pub removal_broken: bool,
    /// Per hub.
    pub logs: Vec<Log>,
    /// It was granted `ASSIGN_POWER` (fixed when the program configures it: granted at
    /// registration, `request ∩ granting`); without it, only query access.
    pub power: bool,
}

impl Client {
    /// `CLOSED` is set on its rundown (by its deregister, or by `shutdown`): no count is
    /// taken any more.
    pub fn closed(&self) -> bool {
        self.status == Status::Closed || self.shut_closed
    }

    /// In the registry (its handle is live), shown or not.
    pub fn registered(&self) -> bool {
        self.status == Status::Open
    }
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
    Replay {
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

impl Item {
    pub fn seq(self) -> u8 {
        match self {
            Item::Arrival { .. } => 0,
            Item::Change { seq } | Item::Removal { seq } | Item::Replay { seq, .. } => seq,
        }
    }
}

/// A power request queued on a hub for the hardware (`Hub::request_power`), not
/// answered yet: taken by the hardware or not, the specification does not tell apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Request {
    pub client: u8,
    /// Made in the hub's current presence, whose removal is not queued: an accepted
    /// answer reports a change. The removal (and so a re-arrival) makes it stale: an
    /// accepted answer then reports nothing (`Hub::answer`'s presence check).
    pub live: bool,
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
    /// Power requests waiting for the hardware's answer, sorted (the hardware answers
    /// them in any order).
    pub requests: Vec<Request>,
}

/// Where a delivery of one item to one target stands. The client's turn (one call of a
/// client at a time) lives in its in-flight count: a delivery whose count was taken at 0
/// holds the turn at once; one admitted behind other counts waits until a release hands
/// the turn over (`Client::passes`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum At {
    /// Choosing the next target.
    Next,
    /// Holds an in-flight count taken above 0 (a call of this client is active on another
    /// thread, or admitted before this one): it waits for the turn next.
    Behind(u8),
    /// Holds its count and sleeps until a release hands it the turn.
    Waiting(u8),
    /// Mutant turn-misses-deregister: gave its count back while it waits for the turn.
    Uncounted(u8),
    /// Holds an in-flight count on this client and its turn, callback not begun.
    Acquired(u8),
    /// Mutants check-then-call and turn-misses-deregister: saw the client open (or was
    /// handed the turn), holds no count.
    Peeked(u8),
    /// Mutant release-before-callback: took and gave back the count, callback not begun.
    Released(u8),
    /// The callback of this client runs (the frame above), under the delivery's count.
    Running(u8),
    /// Mutants only: the callback of this client runs with no count held.
    Bare(u8),
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

/// Where the delivery of a Policy Manager event (a client's arrival, or its removal
/// at shutdown) to one client stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PmAt {
    /// The count is taken next (`Acquire`), or the event skipped (`ManagerSkip`). For
    /// the removal the client is closed already, and both wait for its count to reach 0.
    Start,
    /// Holds an in-flight count (taken at 0: the client's turn); the call begins next.
    Acquired,
    /// The callback runs (the frame above).
    Running,
    /// The callback returned; the count is released next.
    Ended,
}

/// One obligation of a thread's outermost call (`Obligation` in `src/hub.rs`), settled
/// oldest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Owed {
    /// `hub`'s item `ticket` must be delivered (one per hub, the highest ticket).
    Deliver { hub: u8, ticket: u8 },
    /// A client registered inside a callback: its greeting (its Policy Manager arrival,
    /// then its showing to the hubs).
    Greet { client: u8 },
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
    /// Closed with nothing in flight, or done waiting: the in-flight count is zero;
    /// returns next.
    AtZero,
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
    /// `register(client)` inside a callback: records its greeting as the thread's
    /// obligation next (`GreetingOwed`).
    OwesGreeting { client: u8 },
    /// The greeting of `client` shows it to the hubs next (`Shown`), after its Policy
    /// Manager arrival (the frame above; mutant arrival-not-first: before it).
    Show { client: u8 },
    /// `register(client)`'s showing queues arrival replays for these hubs, one at a time.
    Registering { client: u8, hubs: Set },
    /// Delivering a Policy Manager event to `client`: its arrival (a greeting), or
    /// (`removal`) its removal (`shutdown`).
    Manager { client: u8, removal: bool, at: PmAt },
    /// Inside a client's callback for a Policy Manager event (`removal`: the removal).
    /// `after_ok` as for [`Frame::Callback`].
    ManagerCallback {
        client: u8,
        removal: bool,
        after_ok: bool,
    },
    /// `shutdown`: the removals of `left` are still to be delivered, one client at a
    /// time; then (`settled`) the thread's obligations are settled, and it returns.
    Shutdown { left: Set, settled: bool },
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
    /// Mutant power-request-unlocked: `assign_power_level` checked `client` under the
    /// registry lock and released it; the request is queued on `hub` next.
    Requesting { client: u8, hub: u8 },
    /// The hardware's answer to `client`'s request on `hub` went through the submit
    /// path (`accepted`; mutant rejected-request-reported: rejected too) and
    /// (`reported`) appended a change; the frames above settle it, then the answer
    /// returns (`PowerAnswered`).
    Answering {
        hub: u8,
        client: u8,
        accepted: bool,
        reported: bool,
    },
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
    /// Per thread, its obligations: items appended from inside its callbacks, to be
    /// delivered before its outermost call returns (one per hub, the highest ticket),
    /// and the greetings of clients registered inside them; settled oldest first.
    pub owed: Vec<Vec<Owed>>,
    /// `shutdown` began: no registration or hub arrival is accepted, a showing queues
    /// no replay (`registry.shut`).
    pub shut: bool,
    /// Model checking budgets for what callbacks do.
    pub reentrant_left: u8,
    pub panics_left: u8,
    pub queries_left: u8,
    pub reports_left: u8,
    pub rearrivals_left: u8,
    pub shutdowns_left: u8,
    /// Power requests the program and its callbacks may still make (model checking
    /// budget).
    pub requests_left: u8,
    /// Detaches the program and its callbacks may still make (model checking budget).
    pub detaches_left: u8,
    /// History: a power request was refused (a `sometimes` reads it).
    pub power_refused: bool,
    /// History (M3): a power request was queued for a client without `ASSIGN_POWER`.
    pub unauthorized_request: bool,
    /// History (M3): a power request was queued for a client whose deregister had
    /// returned `Ok`, or after `shutdown` returned.
    pub late_request: bool,
    /// History (M3): a rejected answer appended a change.
    pub rejected_reported: bool,
}

impl State {
    /// Nobody registered, no hub, every thread idle.
    pub fn initial(clients: u8, hubs: u8, threads: u8, size: Option<&Size>) -> State {
        let client = Client {
            status: Status::Unborn,
            hidden: false,
            shut_closed: false,
            greeted: false,
            known: false,
            in_flight: 0,
            passes: 0,
            returned_ok: false,
            env_deregistered: false,
            retired_by: None,
            order_broken: false,
            removal_began: false,
            arrival_broken: false,
            removal_broken: false,
            logs: vec![Log::default(); usize::from(hubs)],
            power: false,
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
            requests: Vec::new(),
        };
        let granted = size.map_or(0, |s| s.granted);
        State {
            clients: (0..clients)
                .map(|c| Client {
                    power: c < granted,
                    ..client.clone()
                })
                .collect(),
            hubs: vec![hub; usize::from(hubs)],
            threads: vec![Vec::new(); usize::from(threads)],
            owed: vec![Vec::new(); usize::from(threads)],
            shut: false,
            reentrant_left: size.map_or(0, |s| s.reentrant),
            panics_left: size.map_or(0, |s| s.panics),
            queries_left: size.map_or(0, |s| s.queries),
            reports_left: size.map_or(0, |s| s.callback_reports),
            rearrivals_left: size.map_or(0, |s| s.rearrivals),
            shutdowns_left: size.map_or(0, |s| u8::from(s.shutdown)),
            requests_left: size.map_or(0, |s| s.power_requests),
            detaches_left: size.map_or(0, |s| s.detaches),
            power_refused: false,
            unauthorized_request: false,
            late_request: false,
            rejected_reported: false,
        }
    }

    /// The clients whose callbacks (for hub events or the Policy Manager's) thread `t`
    /// is inside.
    pub fn holding(&self, t: usize) -> Set {
        self.threads[t]
            .iter()
            .filter_map(|f| match f {
                Frame::Callback { client, .. } | Frame::ManagerCallback { client, .. } => {
                    Some(bit(*client))
                }
                Frame::OwesGreeting { .. }
                | Frame::Show { .. }
                | Frame::Manager { .. }
                | Frame::Shutdown { .. }
                | Frame::Registering { .. }
                | Frame::Kick { .. }
                | Frame::Settling
                | Frame::Sleep { .. }
                | Frame::Drain { .. }
                | Frame::Query { .. }
                | Frame::Requesting { .. }
                | Frame::Answering { .. }
                | Frame::Deregister { .. } => None,
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
            Frame::Deregister { edge: false, .. }
            | Frame::OwesGreeting { .. }
            | Frame::Show { .. }
            | Frame::Manager { .. }
            | Frame::ManagerCallback { .. }
            | Frame::Shutdown { .. }
            | Frame::Registering { .. }
            | Frame::Kick { .. }
            | Frame::Settling
            | Frame::Sleep { .. }
            | Frame::Drain { .. }
            | Frame::Callback { .. }
            | Frame::Query { .. }
            | Frame::Requesting { .. }
            | Frame::Answering { .. } => None,
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

    /// The registered clients shown to the hubs (what an arrival is addressed to).
    pub(crate) fn open_clients(&self) -> Set {
        (0..self.clients.len() as u8)
            .filter(|&c| {
                let cl = &self.clients[usize::from(c)];
                cl.registered() && !cl.hidden
            })
            .fold(0, |a, c| a | bit(c))
    }

    /// `shutdown` returned (it began, and no thread is inside it: there is one).
    pub(crate) fn shutdown_returned(&self) -> bool {
        self.shut
            && !self
                .threads
                .iter()
                .flatten()
                .any(|f| matches!(f, Frame::Shutdown { .. }))
    }

    /// The registered clients, shown or not (what `shutdown` delivers removals to).
    pub(crate) fn registered_clients(&self) -> Set {
        (0..self.clients.len() as u8)
            .filter(|&c| self.clients[usize::from(c)].registered())
            .fold(0, |a, c| a | bit(c))
    }
}

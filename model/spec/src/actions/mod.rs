//! The actions: the alphabet ([`Op`], with the caller's decision [`Settle`]) and
//! [`Spec::apply`], which takes one action of one thread or says why the specification
//! cannot.
//!
//! Contract: `apply` is a dispatch over [`Op`], one function per action, then
//! [`Spec::normalize`] finishes what needs no action. Each action function checks its
//! guard against the state before the step (`s`) and writes its effect into the state
//! after it (`n`, a copy of `s`); an `Err` names the guard that failed, and the trace
//! validator reports it. The functions are grouped by what they stand for in the code:
//!
//! - `calls.rs`: the program's calls (register and its replays, a hub's arrival and its
//!   kick, a change, a removal);
//! - `manager.rs`: the Policy Manager's own events: a client's greeting (its arrival,
//!   then its showing to the hubs; owed when it registered inside a callback), and
//!   `shutdown` (each client's removal, last);
//! - `submit.rs`: submitting to a hub's queue and settling an item (what the caller does
//!   about it, its [`Settle`]: nothing, owe it as an obligation, sleep, drain), and the
//!   two actions that decide again (a sleeper's wake-up, an obligation settled);
//! - `drain.rs`: the drainer taking the front item and stopping;
//! - `turn.rs`: a client's turn (one call of a client at a time): waiting for it,
//!   taking it when a release hands it over;
//! - `delivery.rs`: delivering one item to one client (count, skip, callback, release);
//! - `deregister.rs`: deregister and detach, step by step;
//! - `query.rs`: a callback's query of its hub (lock order only);
//! - `power.rs`: a power request (`assign_power_level`) and the hardware's answer;
//! - `locks.rs`: the locks the lock-order mutants hold too long.
//!
//! Which actions a thread may try in a closed world is `enumerate.rs`; the budgets they
//! spend are charged there too, never here (trace validation has none).
//!
//! **Each action's probe step** (`usbpm::checking::Step`; "inserted": none, the trace
//! validator inserts the action), with what the actions' own docs leave out. Mutant
//! variants: docs/SPEC.md, "Spec mutants".
//!
//! - *Greeting and shutdown* (PROTOCOL.md §1, §9; `manager.rs`; `Register`, `Show`,
//!   `ShutdownEnter` and the removal's `Acquire` take the registry lock):
//!   `Register{c}` (idle or in a callback, `c` unborn; outside callbacks pushes
//!   `Settling`, `Manager{c, arrival, Start}`, `Show{c}`) → `Registered`;
//!   `OweGreeting{c}` → `GreetingOwed`; an owed greeting's frames
//!   (`settle_obligations` → `greet`) → none; the arrival's `Acquire` (`arrive`:
//!   `Rundown::try_acquire`; holds the turn: hidden, nobody else calls it) →
//!   `InFlightAcquire`; `ManagerSkip{c, arrival/removal}` →
//!   `ManagerSkipped{Arrival/Removal}`; `ManagerBegin` (`PolicyManager::call`; M1, M2
//!   history) → `ManagerCallBegin`; `End` (an arrival's sets `greeted`) →
//!   `ManagerCallEnd`; `Release` → `InFlightRelease`; `Show{c}` → `Shown`; `Unshown` →
//!   inserted; `Replay{h, queued, settle}` (`Hub::replay` → `Hub::submit`; ticket 0 if
//!   the removal is queued) → `Submitted{Replay or Nothing, ticket, settle}`;
//!   `ShutdownEnter` (idle; `left` = the registered clients, hidden too),
//!   `ShutdownReturn` → the same names; `ShutClose{c, sleeps}` (`Rundown::close`,
//!   `wait_for_zero`; sets `shut_closed`; `sleeps`: calls in flight or a skipping bump)
//!   → `ShutdownSleeps` if `sleeps`, else inserted; the removal's `Acquire`
//!   (`Rundown::acquire_closed`; `from` may show skipping bumps) → `InFlightAcquire`.
//! - *Hub queue* (§2, H1–H3; `calls.rs`, `submit.rs`, `drain.rs`; a submit,
//!   `Hub::submit` and `record_obligation`, decides `Done`, `Owes`, `Sleeps` or
//!   `Drains`, after pushing `Settling` outside callbacks): `HubArrive{h, clients}`
//!   (`PolicyManager::hub_arrival`, registry lock, `Hub::new`, `Hub::rearrive`;
//!   `clients` = the `Open`, shown ones; `arrival` = its ticket) → `HubArrived`;
//!   `Kick{h, settle}` (`Hub::kick`) → `Submitted{Nothing, …}`; `Change`, `Remove`
//!   (present, removal not queued) → `Submitted{Change/Removal, …}`; `Take{h, seq}`
//!   (`max(done, delivered)` < `target`; targets: the arrival's clients, the
//!   subscribers, or the replay's client unless subscribed) → `Took{seq, ticket}`;
//!   `DrainStop{h, woke}` → `DrainStop{done, woke}`; `Awake{h, settle}` (traces accept
//!   spurious wake-ups) → `Awake{ticket, settle}`; `Settles{h, ticket, settle}` →
//!   `Settles{ticket, settle}` (none left: return, no step).
//! - *Delivery and the turn* (§2 "One call at a time", §3, §8(a), R1–R4; `delivery.rs`,
//!   `turn.rs`): `Acquire{c, from}` → `InFlightAcquire`; `TurnWaits{c, seq}` →
//!   `TurnWaits{client, hub, seq}`; `TakeTurn{c}` → inserted; `Skip{c}` (R3) →
//!   `Skipped`; `Begin{c, seq}` (history: order, `after_ok`) → `CallbackBegin`;
//!   `End{c, panicked}` → `CallbackEnd`; `Release{c, from}` (R2, R4; `from` ≥ 2 hands
//!   the turn over) → `InFlightRelease`; `Query`, `QueryDone` (§3; `query_hub`) → none.
//! - *Deregister and detach* (§4 steps 1–5, §5, §7; `deregister.rs`):
//!   `DeregisterEnter{c}` (`holding` = the callbacks on the stack), `DetachEnter`,
//!   `DetachReturn` → the same names; `WaitFor` (step 1, W2; from callbacks, target not
//!   held, no cycle) → `WaitFor`; `Fail` (§5, M2) → `DeregisterReturn{ok: false}`;
//!   `Retire{c}` (step 2, G2; target `Open`) → `Retired`; `Close{in_flight}` (step 3,
//!   R1; a shutdown-closed client may show skipping bumps) → `DeregisterClosed`; `Sleep`
//!   (step 4) → `DeregisterSleeps`; `Return` (step 5, R2; `returned_ok`) →
//!   `DeregisterReturn{ok: true}`.
//! - *Power* (§10–§12; `power.rs`): `Request{c, h, queued}` (M3 history; a refusal sets
//!   `power_refused`, reports nothing) → `PowerRequested`; `Answer{h, c, accepted, live,
//!   settle}` → `Submitted` (`Change` or `Nothing`); `Answered{accepted, reported}` →
//!   `PowerAnswered`; `Reject{h, c, live}` → `PowerAnswered{accepted: false, reported:
//!   false}`.
//!
//! Partial-order reduction (`reduction.rs`) also fuses a Policy Manager event's count
//! with its begin, and `Register` with recording an owed greeting; a skipped Policy
//! Manager event follows at once. A counterexample lists a fused chain under its first
//! action.

mod calls;
mod delivery;
mod deregister;
mod drain;
mod locks;
mod manager;
mod power;
mod query;
mod submit;
mod turn;

use std::fmt;

use crate::mutants::SpecMutant;
use crate::spec::Spec;
use crate::state::{At, Frame, Item, Owed, PmAt, Set, State};

/// What a caller does about its item once it is submitted (or woken, or settling an
/// obligation): `usbpm::checking::Settle` in the library, under the same name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Settle {
    /// Its ticket is delivered already (or nothing was appended): nothing to do.
    Done,
    /// Inside a callback: the thread's outermost call owes the item.
    Owes,
    /// Another thread drains: sleep on the hub until woken.
    Sleeps,
    /// The queue is idle: drain up to the item.
    Drains,
}

/// One action of one thread. Values a trace observes (`from`, `in_flight`, `seq`,
/// `drains`, ...) are part of the action: the specification takes it only if they are
/// the values it has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// `register(client)`: into the registry, hidden from the hubs; its greeting follows
    /// (outside callbacks at once, inside one it is owed).
    Register { client: u8 },
    /// `register` inside a callback records the client's greeting as an obligation of
    /// the thread.
    OweGreeting { client: u8 },
    /// The greeting shows the client to the hubs: hub arrivals address it from now on,
    /// and replays are owed for every hub present (none after shutdown).
    Show { client: u8 },
    /// The greeting finds its client deregistered: nothing is shown. Unobserved: the
    /// trace validator inserts it.
    Unshown,
    /// The callback of `client` begins for a Policy Manager event (`removal`: the
    /// removal, else the arrival).
    ManagerBegin { client: u8, removal: bool },
    /// A Policy Manager event is not delivered: the arrival of a closed client, the
    /// removal of a client deregistered or never greeted.
    ManagerSkip { client: u8, removal: bool },
    /// `shutdown` begins: no registration or hub arrival is accepted any more.
    ShutdownEnter,
    /// `shutdown` closes `client` (no call begins after this but its removal) and waits
    /// for its count to reach 0; `sleeps`: calls were in flight (observed as
    /// `ShutdownSleeps`; without, unobserved: the trace validator inserts it).
    ShutClose { client: u8, sleeps: bool },
    /// `shutdown` returns, every removal delivered and its obligations settled.
    ShutdownReturn,
    /// `hub_arrival(hub)`: the arrival is queued for the clients registered now.
    HubArrive { hub: u8, clients: Set },
    /// `connector_changed`: queued with the next seq and ticket; `settle`: what the caller
    /// does about it.
    Change { hub: u8, settle: Settle },
    /// `HubPort::remove`: the removal is queued; later changes and replays refused.
    Remove { hub: u8, settle: Settle },
    /// `register`'s replay for one hub: queued (or dropped if its removal is queued).
    Replay {
        hub: u8,
        queued: bool,
        settle: Settle,
    },
    /// `hub_arrival`'s kick: sees the arrival's ticket delivered.
    Kick { hub: u8, settle: Settle },
    /// The drainer (short of its target) takes the front item.
    Take { hub: u8, seq: u8 },
    /// The drainer reached its target (or the queue is empty) and stops; `woke`: it
    /// wakes the callers sleeping on the hub.
    DrainStop { hub: u8, woke: bool },
    /// A sleeper reacquires the hub's lock and decides again.
    Awake { hub: u8, settle: Settle },
    /// The outermost call takes its thread's last obligation.
    Settles { hub: u8, ticket: u8, settle: Settle },
    /// Delivery of the item `seq`, admitted behind another count of `client` (a call of
    /// it is active on another thread), sleeps until a release hands it the turn.
    TurnWaits { client: u8, seq: u8 },
    /// A waiting delivery takes the turn a release handed over. Unobserved: the trace
    /// validator inserts it.
    TakeTurn { client: u8 },
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
    /// `assign_power_level` by `client` (from an idle thread, or from one of its own
    /// callbacks) for a connector of `hub`: checked and (`queued`) queued on the hub for
    /// the hardware under the registry lock, or refused (nothing changes). Observed as
    /// `PowerRequested` when queued; a refusal reports no step.
    Request { client: u8, hub: u8, queued: bool },
    /// Mutant power-request-unlocked: the request checked before is queued (or refused:
    /// the hub's removal is queued) after the registry lock was released.
    RequestQueued { queued: bool },
    /// The hardware answers `client`'s request on `hub` (`accepted`; mutant
    /// rejected-request-reported: rejected too) through the submit path: a `live`
    /// request's change is appended (as `Change`), a stale one appends nothing; `settle`
    /// as for a change. Observed as that `Submitted`.
    Answer {
        hub: u8,
        client: u8,
        accepted: bool,
        live: bool,
        settle: Settle,
    },
    /// That answer returns, its change settled (`PowerAnswered`): `reported` is whether
    /// it appended a change.
    Answered { accepted: bool, reported: bool },
    /// The hardware rejects `client`'s (`live` or stale) request on `hub`: nothing is
    /// queued (`PowerAnswered` with nothing reported).
    Reject { hub: u8, client: u8, live: bool },
}

/// A thread and what it does.
pub type Action = (u8, Op);

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// An action's verdict: taken, or the guard that failed.
pub(crate) type R = Result<(), &'static str>;

/// `Err(why)` unless `ok`.
pub(crate) fn ensure(ok: bool, why: &'static str) -> R {
    if ok {
        Ok(())
    } else {
        Err(why)
    }
}

/// Thread `t`'s innermost frame (`None`: the thread is idle).
pub(crate) fn top(s: &State, t: usize) -> Option<Frame> {
    s.threads[t].last().copied()
}

/// Thread `t` is idle or inside a callback (of a hub event or a Policy Manager event):
/// where the program's calls are made.
fn idle_or_callback(s: &State, t: usize) -> bool {
    matches!(
        top(s, t),
        None | Some(Frame::Callback { .. } | Frame::ManagerCallback { .. })
    )
}

impl Spec {
    /// Takes `op` on thread `t`, or says why the specification cannot.
    pub fn apply(&self, s: &State, t: u8, op: Op) -> Result<State, &'static str> {
        let t = usize::from(t);
        let mut n = s.clone();
        match op {
            Op::Register { client } => self.register(s, &mut n, t, client)?,
            Op::OweGreeting { client } => self.owe_greeting(s, &mut n, t, client)?,
            Op::Show { client } => self.show(s, &mut n, t, client)?,
            Op::Unshown => self.unshown(s, &mut n, t)?,
            Op::ManagerBegin { client, removal } => {
                self.manager_begin(s, &mut n, t, client, removal)?
            }
            Op::ManagerSkip { client, removal } => {
                self.manager_skip(s, &mut n, t, client, removal)?
            }
            Op::ShutdownEnter => self.shutdown_enter(s, &mut n, t)?,
            Op::ShutClose { client, sleeps } => self.shut_close(s, &mut n, t, client, sleeps)?,
            Op::ShutdownReturn => {
                self.shutdown_return(s, &mut n, t)?;
                return Ok(n);
            }
            Op::HubArrive { hub, clients } => self.hub_arrive(s, &mut n, t, hub, clients)?,
            Op::Change { hub, settle } => self.change(s, &mut n, t, hub, settle)?,
            Op::Remove { hub, settle } => self.remove(s, &mut n, t, hub, settle)?,
            Op::Replay {
                hub,
                queued,
                settle,
            } => self.replay(s, &mut n, t, hub, queued, settle)?,
            Op::Kick { hub, settle } => self.kick(s, &mut n, t, hub, settle)?,
            Op::Take { hub, seq } => self.take(s, &mut n, t, hub, seq)?,
            Op::DrainStop { hub, woke } => self.drain_stop(s, &mut n, t, hub, woke)?,
            Op::Awake { hub, settle } => self.awake(s, &mut n, t, hub, settle)?,
            Op::Settles {
                hub,
                ticket,
                settle,
            } => self.settles(s, &mut n, t, hub, ticket, settle)?,
            Op::TurnWaits { client, seq } => self.turn_waits(s, &mut n, t, client, seq)?,
            Op::TakeTurn { client } => self.take_turn(s, &mut n, t, client)?,
            Op::Acquire { client, from } => self.acquire(s, &mut n, t, client, from)?,
            Op::Skip { client } => self.skip(s, &mut n, t, client)?,
            Op::Peek { client } => self.peek(s, &mut n, t, client)?,
            Op::Begin { client, seq } => self.begin(s, &mut n, t, client, seq)?,
            Op::End { client, panicked } => self.end(s, &mut n, t, client, panicked)?,
            Op::Release { client, from } => self.release(s, &mut n, t, client, from)?,
            Op::DeregisterEnter { target } => self.deregister_enter(s, &mut n, t, target)?,
            Op::DetachEnter { target } => self.detach_enter(s, &mut n, t, target)?,
            Op::WaitFor => self.wait_for(s, &mut n, t)?,
            Op::NoCheck => self.no_check(s, &mut n, t)?,
            Op::Retire { victim } => self.retire(s, &mut n, t, victim)?,
            Op::Close { in_flight } => self.close(s, &mut n, t, in_flight)?,
            Op::Sleep => self.sleep(s, &mut n, t)?,
            Op::Test => self.test(s, &mut n, t)?,
            Op::Park => self.park(s, &mut n, t)?,
            Op::Wake => self.wake(s, &mut n, t)?,
            // A deregister's last step pops its frame and returns at once.
            Op::Fail => {
                self.fail(s, &mut n, t)?;
                return Ok(n);
            }
            Op::Return => {
                self.return_ok(s, &mut n, t)?;
                return Ok(n);
            }
            Op::DetachReturn => {
                self.detach_return(s, &mut n, t)?;
                return Ok(n);
            }
            Op::Query => self.query(s, &mut n, t)?,
            Op::QueryDone => self.query_done(s, &mut n, t)?,
            Op::Request {
                client,
                hub,
                queued,
            } => self.request(s, &mut n, t, client, hub, queued)?,
            Op::RequestQueued { queued } => self.request_queued(s, &mut n, t, queued)?,
            Op::Answer {
                hub,
                client,
                accepted,
                live,
                settle,
            } => self.answer(s, &mut n, t, hub, client, accepted, live, settle)?,
            Op::Answered { accepted, reported } => {
                self.answered(s, &mut n, t, accepted, reported)?
            }
            Op::Reject { hub, client, live } => self.reject(s, &mut n, t, hub, client, live)?,
        }
        self.normalize(&mut n, t);
        Ok(n)
    }

    /// The frames of `client`'s greeting, pushed on thread `t`: its Policy Manager
    /// arrival, then its showing (mutant arrival-not-first: the other way round).
    pub(crate) fn push_greeting(&self, s: &mut State, t: usize, client: u8) {
        let arrival = Frame::Manager {
            client,
            removal: false,
            at: PmAt::Start,
        };
        let show = Frame::Show { client };
        if self.m(SpecMutant::ArrivalNotFirst) {
            s.threads[t].extend([arrival, show]);
        } else {
            s.threads[t].extend([show, arrival]);
        }
    }

    /// Finishes what needs no action: an item delivered to all its targets updates the
    /// subscribers (the drainer records its ticket for `done`, which it updates when it
    /// relocks); an outermost call with its item and its thread's obligations settled
    /// returns, and one whose oldest obligation is a greeting makes it; a showing with
    /// every replay queued returns; a shutdown with every removal delivered settles its
    /// obligations.
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
                        Item::Replay { .. } => h.subscribers | d.kept,
                    };
                    *s.threads[t].last_mut().expect("drain frame") = Frame::Drain {
                        hub,
                        target,
                        delivered: d.ticket,
                        cur: None,
                    };
                }
                Some(Frame::Settling) => match s.owed[t].first().copied() {
                    None => {
                        s.threads[t].pop();
                    }
                    Some(Owed::Greet { client }) => {
                        s.owed[t].remove(0);
                        self.push_greeting(s, t, client);
                    }
                    Some(Owed::Deliver { .. }) => return,
                },
                Some(Frame::Registering { client, hubs: 0 }) => {
                    s.threads[t].pop();
                    s.clients[usize::from(client)].known = true;
                }
                Some(Frame::Shutdown {
                    left: 0,
                    settled: false,
                }) => {
                    *s.threads[t].last_mut().expect("shutdown frame") = Frame::Shutdown {
                        left: 0,
                        settled: true,
                    };
                    s.threads[t].push(Frame::Settling);
                }
                None
                | Some(
                    Frame::Drain { .. }
                    | Frame::OwesGreeting { .. }
                    | Frame::Show { .. }
                    | Frame::Manager { .. }
                    | Frame::ManagerCallback { .. }
                    | Frame::Shutdown { .. }
                    | Frame::Registering { .. }
                    | Frame::Kick { .. }
                    | Frame::Sleep { .. }
                    | Frame::Callback { .. }
                    | Frame::Query { .. }
                    | Frame::Requesting { .. }
                    | Frame::Answering { .. }
                    | Frame::Deregister { .. },
                ) => return,
            }
        }
    }
}

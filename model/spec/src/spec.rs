//! The specification's actions, at the level of the contract, and the public paths of
//! its vocabulary: the state (`state.rs`), the spec mutants (`mutants.rs`) and the sizes
//! (`sizes.rs`) are re-exported here.
//!
//! Read it beside docs/PROTOCOL.md; docs/SPEC.md walks it action by action and names the
//! code each action stands for.
//!
//! Every action is [`Spec::apply`]: the model checker enumerates enabled ones
//! ([`Spec::enabled`]) and the trace validator applies the ones a recorded execution took.

use std::fmt;

pub use crate::mutants::SpecMutant;
pub use crate::sizes::Size;
use crate::state::bit;
pub use crate::state::{
    members, At, Client, Delivery, Entry, Frame, Hub, Item, Log, Phase, Set, State, Status,
};

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

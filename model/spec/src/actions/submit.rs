//! Submitting to a hub's queue and settling an item: the hand-off protocol's decisions.
//!
//! Contract: a submission appends its item (if any) with the hub's next ticket and
//! decides what the caller does about it ([`Settle`]): nothing if it is delivered
//! already; inside a callback, owe it (an obligation the thread's outermost call settles
//! later); otherwise sleep while another thread drains, or drain up to it. The decision
//! is part of the action (the trace observes it), so each action checks that it is the
//! one the state says. [`Op::Awake`] (a sleeper woken) and [`Op::Settles`] (an
//! obligation taken) decide again, the same way outside callbacks. The library's
//! counterpart is `Hub::submit`, `Queue::settle`, `Hub::settle` and `settle_obligations`
//! in `src/hub.rs`.
//!
//! [`Op::Awake`]: super::Op::Awake
//! [`Op::Settles`]: super::Op::Settles

use super::{ensure, top, Settle, R};
use crate::mutants::SpecMutant;
use crate::spec::Spec;
use crate::state::{Entry, Frame, Item, Owed, State};

impl Spec {
    /// What a caller outside callbacks does about its item `ticket` of `hub` (a
    /// sleeper woken, an obligation settled): nothing if it is delivered, sleep while
    /// another thread drains, drain otherwise.
    pub fn settle_decision(s: &State, hub: u8, ticket: u8) -> Settle {
        let h = &s.hubs[usize::from(hub)];
        if ticket <= h.done {
            Settle::Done
        } else if h.draining {
            Settle::Sleeps
        } else {
            Settle::Drains
        }
    }

    /// What thread `t` does about the item `ticket` it submits to `hub`: as
    /// [`Spec::settle_decision`], except that inside a callback it owes the item.
    pub fn submit_decision(s: &State, t: usize, hub: u8, ticket: u8) -> Settle {
        let decision = Self::settle_decision(s, hub, ticket);
        match decision {
            Settle::Done | Settle::Owes => decision,
            Settle::Sleeps | Settle::Drains if s.holding(t) != 0 => Settle::Owes,
            Settle::Sleeps | Settle::Drains => decision,
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

    /// Goes on with `settle` for `hub`'s item `ticket`: sleeps on the hub, or becomes its
    /// drainer up to the item.
    fn settle(s: &mut State, t: usize, hub: u8, ticket: u8, settle: Settle) {
        match settle {
            Settle::Done | Settle::Owes => {}
            Settle::Sleeps => s.threads[t].push(Frame::Sleep {
                hub,
                ticket,
                woken: false,
            }),
            Settle::Drains => {
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
    /// what the caller does (`settle`, as observed), and does it: inside a callback records
    /// the obligation, outside settles the item (and then the thread's obligations).
    pub(super) fn submit(
        &self,
        s: &mut State,
        t: usize,
        hub: u8,
        item: Option<Item>,
        kick: bool,
        settle: Settle,
    ) -> R {
        let ticket = Self::submit_ticket(s, hub, item.is_some(), kick);
        let want = Self::submit_decision(s, t, hub, ticket);
        ensure(
            want == settle,
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
                Item::Arrival { .. }
                | Item::Change { .. }
                | Item::Removal { .. }
                | Item::Replay { .. } => h.queue.push(entry),
            }
        }
        if settle == Settle::Owes && !self.m(SpecMutant::ObligationForgotten) {
            let owed = &mut s.owed[t];
            let deliver = owed.iter_mut().find_map(|o| match o {
                Owed::Deliver { hub: oh, ticket } if *oh == hub => Some(ticket),
                Owed::Deliver { .. } | Owed::Greet { .. } => None,
            });
            match deliver {
                Some(owed_ticket) => *owed_ticket = (*owed_ticket).max(ticket),
                None => owed.push(Owed::Deliver { hub, ticket }),
            }
        }
        // Inside a callback nothing more: the thread's outermost call settles what it
        // owes (a callback that settled obligations could sleep on its own drain).
        if s.holding(t) != 0 {
            return Ok(());
        }
        s.threads[t].push(Frame::Settling);
        Self::settle(s, t, hub, ticket, settle);
        Ok(())
    }

    /// A caller outside callbacks may decide `settle` about its item `ticket` of `hub`:
    /// the hub's lock is free and `settle` is what its ticket, `done` and `draining` say.
    fn settle_allowed(
        &self,
        s: &State,
        hub: u8,
        ticket: u8,
        settle: Settle,
        wrong_decision: &'static str,
    ) -> R {
        ensure(
            !self.hub_blocked(s, hub),
            "the hub's lock is held across a callback",
        )?;
        ensure(
            settle == Self::settle_decision(s, hub, ticket),
            wrong_decision,
        )
    }

    /// A sleeper on `hub` reacquires the hub's lock and decides again about its item.
    pub(super) fn awake(&self, s: &State, n: &mut State, t: usize, hub: u8, settle: Settle) -> R {
        let Some(Frame::Sleep {
            hub: sh,
            ticket,
            woken,
        }) = top(s, t)
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
            settle,
            "the woken sleeper does what its ticket, done and draining say",
        )?;
        n.threads[t].pop();
        Self::settle(n, t, hub, ticket, settle);
        Ok(())
    }

    /// The outermost call, its own item delivered, takes its thread's oldest obligation
    /// and decides about it.
    pub(super) fn settles(
        &self,
        s: &State,
        n: &mut State,
        t: usize,
        hub: u8,
        ticket: u8,
        settle: Settle,
    ) -> R {
        ensure(
            top(s, t) == Some(Frame::Settling),
            "obligations are settled by the outermost call, after its own item",
        )?;
        ensure(
            s.owed[t].first() == Some(&Owed::Deliver { hub, ticket }),
            "the thread settles its oldest obligation",
        )?;
        self.settle_allowed(
            s,
            hub,
            ticket,
            settle,
            "the obligation is settled as its ticket, done and draining say",
        )?;
        n.owed[t].remove(0);
        Self::settle(n, t, hub, ticket, settle);
        Ok(())
    }
}

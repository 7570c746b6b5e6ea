//! Delivering one item to one client: the in-flight count, the callback, the release.
//!
//! Contract: a delivery reaches its targets one at a time ([`At`]). For each it takes an
//! in-flight count ([`Op::Acquire`]) or drops a closed client ([`Op::Skip`]); a count
//! taken above 0 waits for the client's turn first (`turn.rs`); the callback begins
//! ([`Op::Begin`], recording the history P1 and P5 read) and ends ([`Op::End`]); the
//! count is given back ([`Op::Release`]), handing the turn to a delivery admitted behind
//! it, and the last release of a closed client notifies its sleeping deregisters.
//! [`Op::Peek`] is the check-then-call mutant's look at `CLOSED` without a count. The
//! code: `PolicyManager::invoke` and `call`, `Rundown::try_acquire` and `release`.
//!
//! [`Op::Acquire`]: super::Op::Acquire
//! [`Op::Skip`]: super::Op::Skip
//! [`Op::Begin`]: super::Op::Begin
//! [`Op::End`]: super::Op::End
//! [`Op::Release`]: super::Op::Release
//! [`Op::Peek`]: super::Op::Peek

use super::{ensure, top, R};
use crate::mutants::SpecMutant;
use crate::spec::Spec;
use crate::state::{bit, At, Delivery, Frame, Item, Log, Phase, State, Status};

/// Puts `d` as the delivery of thread `t`'s drain frame (its top frame).
pub(super) fn set_cur(s: &mut State, t: usize, d: Delivery) {
    if let Some(Frame::Drain { cur, .. }) = s.threads[t].last_mut() {
        *cur = Some(d);
    }
}

/// The hub and the delivery of thread `t`'s drainer, if it is choosing its next target
/// and `client` is one.
fn next_target(s: &State, t: usize, client: u8) -> Result<(u8, Delivery), &'static str> {
    let Some(Frame::Drain {
        hub, cur: Some(d), ..
    }) = top(s, t)
    else {
        return Err("delivery needs a drainer with an item");
    };
    ensure(
        d.at == At::Next && d.targets & bit(client) != 0,
        "delivery reaches a target of the item, one at a time",
    )?;
    Ok((hub, d))
}

impl Spec {
    /// Delivery takes an in-flight count on `client` (`from`: the count before): at 0 it
    /// holds the client's turn; above 0 it was admitted behind another count and waits
    /// for the turn next (mutant calls-overlap: it calls at once).
    pub(super) fn acquire(&self, s: &State, n: &mut State, t: usize, client: u8, from: u8) -> R {
        let (_, mut d) = next_target(s, t, client)?;
        let c = &mut n.clients[usize::from(client)];
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
        d.at = if from == 0 || self.m(SpecMutant::CallsOverlap) {
            At::Acquired(client)
        } else {
            At::Behind(client)
        };
        set_cur(n, t, d);
        Ok(())
    }

    /// Delivery finds `client` closed and drops it (it misses the rest of the presence).
    pub(super) fn skip(&self, s: &State, n: &mut State, t: usize, client: u8) -> R {
        let (hub, mut d) = next_target(s, t, client)?;
        let c = &mut n.clients[usize::from(client)];
        ensure(
            c.status == Status::Closed,
            "only a closed client is skipped",
        )?;
        c.logs[usize::from(hub)].skipped = true;
        d.targets &= !bit(client);
        set_cur(n, t, d);
        Ok(())
    }

    /// Mutant check-then-call: delivery looks at `client`'s `CLOSED` flag, takes no count.
    pub(super) fn peek(&self, s: &State, n: &mut State, t: usize, client: u8) -> R {
        let (_, mut d) = next_target(s, t, client)?;
        let c = &mut n.clients[usize::from(client)];
        ensure(self.m(SpecMutant::CheckThenCall), "only the mutant peeks")?;
        ensure(c.status != Status::Closed, "a closed client is skipped")?;
        d.at = At::Peeked(client);
        set_cur(n, t, d);
        Ok(())
    }

    /// The callback of `client` begins for the item's `seq`, under the delivery's count;
    /// the client's history records whether it is in per-hub order (P5) and whether a
    /// deregister of it returned `Ok` already (P1).
    pub(super) fn begin(&self, s: &State, n: &mut State, t: usize, client: u8, seq: u8) -> R {
        let Some(Frame::Drain {
            hub,
            cur: Some(mut d),
            ..
        }) = top(s, t)
        else {
            return Err("a callback begins under a delivery");
        };
        // The mutants' calls begin with no count held (`Bare`).
        let at = match d.at {
            At::Acquired(c) if c == client && !self.m(SpecMutant::ReleaseBeforeCallback) => {
                Some(At::Running(client))
            }
            At::Peeked(c) | At::Released(c) if c == client => Some(At::Bare(client)),
            At::Next
            | At::Behind(_)
            | At::Waiting(_)
            | At::Uncounted(_)
            | At::Acquired(_)
            | At::Peeked(_)
            | At::Released(_)
            | At::Running(_)
            | At::Bare(_)
            | At::Ended(_) => None,
        };
        let Some(at) = at else {
            return Err(
                "a callback begins only while its call holds an in-flight count and the client's turn",
            );
        };
        ensure(
            seq == d.item.seq(),
            "the callback is for the item being delivered",
        )?;
        d.at = at;
        let c = &mut n.clients[usize::from(client)];
        let log = &mut c.logs[usize::from(hub)];
        let arrival = matches!(d.item, Item::Arrival { .. } | Item::Replay { .. });
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
        set_cur(n, t, d);
        n.threads[t].push(Frame::Callback {
            client,
            hub,
            seq,
            after_ok,
        });
        Ok(())
    }

    /// The innermost callback, `client`'s, returns (or `panicked`: within the closed
    /// world's panic budget).
    pub(super) fn end(&self, s: &State, n: &mut State, t: usize, client: u8, panicked: bool) -> R {
        let Some(Frame::Callback { client: c, .. }) = top(s, t) else {
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
            At::Running(_) => true,
            At::Bare(_) => false,
            At::Next
            | At::Behind(_)
            | At::Waiting(_)
            | At::Uncounted(_)
            | At::Acquired(_)
            | At::Peeked(_)
            | At::Released(_)
            | At::Ended(_) => unreachable!("a callback runs under its delivery"),
        };
        if counted && !(panicked && self.m(SpecMutant::PanicLeaksCount)) {
            d.at = At::Ended(client);
        } else {
            // No count to give back (a mutant's uncounted call, or a leaked count).
            d.at = At::Next;
            d.targets &= !bit(client);
            d.kept |= bit(client);
        }
        set_cur(n, t, d);
        if !counted && self.m(SpecMutant::TurnMissesDeregister) {
            // The uncounted call passes the turn on (`Rundown::pass_turn`): no count of
            // its own to give back, so `from` says no other count was found.
            self.hand_over(n, client, 0);
        }
        Ok(())
    }

    /// Delivery gives `client`'s count back (`from`: the count before), handing the
    /// client's turn to a delivery admitted behind it if there is one (`from` at least 2);
    /// the last release of a closed client wakes its sleeping deregisters (mutant
    /// lost-wakeup's notify).
    pub(super) fn release(&self, s: &State, n: &mut State, t: usize, client: u8, from: u8) -> R {
        let Some(Frame::Drain {
            cur: Some(mut d), ..
        }) = top(s, t)
        else {
            return Err("a count is released by its delivery");
        };
        let before_callback =
            self.m(SpecMutant::ReleaseBeforeCallback) && d.at == At::Acquired(client);
        // Mutant turn-misses-deregister: a waiting delivery gives its count back (it
        // holds no turn, so it hands nothing over).
        let while_waiting = self.m(SpecMutant::TurnMissesDeregister) && d.at == At::Waiting(client);
        ensure(
            d.at == At::Ended(client) || before_callback || while_waiting,
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
        let last_closed = c.in_flight == 0 && c.status == Status::Closed;
        if !while_waiting {
            self.hand_over(n, client, from);
        }
        if last_closed {
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
        } else if while_waiting {
            d.at = At::Uncounted(client);
        } else {
            d.at = At::Next;
            d.targets &= !bit(client);
            d.kept |= bit(client);
        }
        set_cur(n, t, d);
        Ok(())
    }
}

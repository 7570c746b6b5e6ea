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
use crate::state::{bit, At, Delivery, Frame, Item, Log, Phase, PmAt, State};

/// How far above `client`'s in-flight count a look at it may see: a delivery (or a
/// greeting's arrival) that finds the client closed bumps the count for an instant before
/// it backs out (R3 in docs/INVARIANTS.md), so a release, or a second close (a deregister
/// after `shutdown`, or `shutdown` after a deregister), may see the bumps of the ones
/// about to skip this client; none before it is closed.
pub(super) fn bumps(s: &State, client: u8) -> u8 {
    if !s.clients[usize::from(client)].closed() {
        return 0;
    }
    s.threads
        .iter()
        .filter_map(|t| t.last())
        .filter(|f| match f {
            Frame::Drain { cur: Some(d), .. } => d.at == At::Next && d.targets & bit(client) != 0,
            Frame::Manager {
                client: c,
                removal: false,
                at: PmAt::Start,
            } => *c == client,
            _ => false,
        })
        .count() as u8
}

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
        if let Some(Frame::Manager { .. }) = top(s, t) {
            return self.acquire_manager(s, n, t, client, from);
        }
        let (_, mut d) = next_target(s, t, client)?;
        let c = &mut n.clients[usize::from(client)];
        ensure(
            !self.m(SpecMutant::CheckThenCall),
            "the mutant takes no count",
        )?;
        ensure(!c.closed(), "no count is taken on a closed client")?;
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

    /// The delivery of a Policy Manager event takes its count on `client` (`from`
    /// before): the arrival's at 0 (hidden, nobody else calls the client), unless a
    /// deregister closed it; the removal's on the closed client, once its count reached
    /// 0 (shutdown waited for it), if it is still registered and was greeted. Either
    /// holds the client's turn: it calls next, whatever `from` is.
    fn acquire_manager(&self, s: &State, n: &mut State, t: usize, client: u8, from: u8) -> R {
        let Some(Frame::Manager {
            client: mc,
            removal,
            at: PmAt::Start,
        }) = top(s, t)
        else {
            return Err("a Policy Manager event's count is taken once, first");
        };
        ensure(
            mc == client,
            "a Policy Manager event's count is taken on its client",
        )?;
        let c = &mut n.clients[usize::from(client)];
        if removal {
            ensure(!self.registry_blocked(s), "the registry lock is held")?;
            ensure(
                c.in_flight == 0 || self.m(SpecMutant::RemovalNotLast),
                "shutdown waits for the client's calls in flight first",
            )?;
            ensure(
                c.registered() && c.greeted,
                "the removal is delivered only to a client still registered that was greeted",
            )?;
        } else {
            ensure(!c.closed(), "no count is taken on a closed client")?;
        }
        // The removal's count, taken on the closed client, may see the bumps of
        // deliveries about to skip it.
        ensure(
            (c.in_flight..=c.in_flight + bumps(s, client)).contains(&from),
            "the in-flight count is not what the specification has",
        )?;
        c.in_flight += 1;
        *n.threads[t].last_mut().expect("manager frame") = Frame::Manager {
            client,
            removal,
            at: PmAt::Acquired,
        };
        Ok(())
    }

    /// Delivery finds `client` closed and drops it (it misses the rest of the presence).
    pub(super) fn skip(&self, s: &State, n: &mut State, t: usize, client: u8) -> R {
        let (hub, mut d) = next_target(s, t, client)?;
        let c = &mut n.clients[usize::from(client)];
        ensure(c.closed(), "only a closed client is skipped")?;
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
        ensure(!c.closed(), "a closed client is skipped")?;
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
        // M1: a hub's event only after the Policy Manager arrival returned; M2: none after
        // the Policy Manager removal began.
        c.arrival_broken |= !c.greeted;
        c.removal_broken |= c.removal_began;
        let log = &mut c.logs[usize::from(hub)];
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
    /// world's panic budget). A Policy Manager arrival's call that returns has greeted
    /// the client.
    pub(super) fn end(&self, s: &State, n: &mut State, t: usize, client: u8, panicked: bool) -> R {
        let manager = match top(s, t) {
            Some(Frame::Callback { client: c, .. }) => {
                ensure(c == client, "the innermost callback returns first")?;
                None
            }
            Some(Frame::ManagerCallback {
                client: c, removal, ..
            }) => {
                ensure(c == client, "the innermost callback returns first")?;
                Some(removal)
            }
            _ => return Err("only a running callback returns"),
        };
        if !self.open && panicked {
            ensure(n.panics_left > 0, "no panic left in the budget")?;
            n.panics_left -= 1;
        }
        n.threads[t].pop();
        if let Some(removal) = manager {
            // The Policy Manager's event: its count is released next, panicked or not.
            *n.threads[t].last_mut().expect("manager frame") = Frame::Manager {
                client,
                removal,
                at: PmAt::Ended,
            };
            if !removal {
                n.clients[usize::from(client)].greeted = true;
            }
            return Ok(());
        }
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
        if let Some(Frame::Manager {
            client: mc,
            at: PmAt::Ended,
            ..
        }) = top(s, t)
        {
            ensure(
                mc == client,
                "a Policy Manager event's count is released on its client",
            )?;
            self.give_back(s, n, client, from)?;
            n.threads[t].pop();
            return Ok(());
        }
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
        if while_waiting {
            // It holds no turn: it hands nothing over.
            self.count_back(s, n, client, from)?;
        } else {
            self.give_back(s, n, client, from)?;
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

    /// A count of `client` given back by a call that held the turn (`from` before): the
    /// turn is handed to a delivery admitted behind it, if any.
    fn give_back(&self, s: &State, n: &mut State, client: u8, from: u8) -> R {
        self.count_back(s, n, client, from)?;
        self.hand_over(n, client, from);
        Ok(())
    }

    /// `client`'s in-flight count goes down (`from` before); the last release of a closed
    /// client wakes every sleeping deregister of it (mutant lost-wakeup's notify).
    fn count_back(&self, s: &State, n: &mut State, client: u8, from: u8) -> R {
        // A release may see the bumps of deliveries about to skip this closed client.
        let skipping = bumps(s, client);
        let c = &mut n.clients[usize::from(client)];
        ensure(
            (c.in_flight..=c.in_flight + skipping).contains(&from),
            "the in-flight count is not what the specification has",
        )?;
        c.in_flight -= 1;
        if c.in_flight == 0 && c.closed() {
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
        Ok(())
    }
}

//! A client's turn: one call of a client's callback at a time, across every hub and
//! thread (the promise of Windows' Policy Manager: callback calls are serialized).
//!
//! Contract: the turn lives in the client's in-flight count. A delivery whose count is
//! taken at 0 holds the turn and calls at once; one whose count is taken above 0 was
//! admitted behind a call that is active on another thread (or behind deliveries
//! admitted before it): it reports that it waits ([`Op::TurnWaits`]) and sleeps, holding
//! its count (so a deregister waits for it too), until a release hands it the turn. A
//! release that finds other counts (its `from` at least 2) hands one turn over: a token
//! (`Client::passes`) that one waiting delivery takes ([`Op::TakeTurn`], no probe step:
//! the trace validator inserts it before that delivery's callback begins). A release
//! that finds no other count hands nothing over. Only drainers deliver, and a callback
//! never drains (its appends are obligations), so a thread inside a callback never waits
//! for a turn. The code: `Rundown::try_acquire`, `wait_turn` and `release`
//! (`src/rundown.rs`), called by `PolicyManager::invoke`.
//!
//! [`Op::TurnWaits`]: super::Op::TurnWaits
//! [`Op::TakeTurn`]: super::Op::TakeTurn

use super::delivery::set_cur;
use super::{ensure, top, R};
use crate::mutants::SpecMutant;
use crate::spec::Spec;
use crate::state::{At, Frame, State};

impl Spec {
    /// Delivery of the item `seq`, admitted behind another count of `client`, reports
    /// that it waits for the turn and sleeps.
    pub(super) fn turn_waits(&self, s: &State, n: &mut State, t: usize, client: u8, seq: u8) -> R {
        let Some(Frame::Drain {
            cur: Some(mut d), ..
        }) = top(s, t)
        else {
            return Err("a delivery waits for a turn");
        };
        ensure(
            d.at == At::Behind(client),
            "a delivery waits for the turn only when its count was taken above 0",
        )?;
        ensure(
            seq == d.item.seq(),
            "the delivery waits for the item it is delivering",
        )?;
        d.at = At::Waiting(client);
        set_cur(n, t, d);
        Ok(())
    }

    /// A waiting delivery takes a turn a release handed over (mutant
    /// turn-misses-deregister: with no count held).
    pub(super) fn take_turn(&self, s: &State, n: &mut State, t: usize, client: u8) -> R {
        let Some(Frame::Drain {
            cur: Some(mut d), ..
        }) = top(s, t)
        else {
            return Err("a turn is taken by a waiting delivery");
        };
        let tmd = self.m(SpecMutant::TurnMissesDeregister);
        d.at = match d.at {
            At::Waiting(c) if c == client && !tmd => At::Acquired(client),
            At::Uncounted(c) if c == client => At::Peeked(client),
            _ => return Err("only a delivery waiting for the client's turn takes it"),
        };
        let c = &mut n.clients[usize::from(client)];
        ensure(
            c.passes > 0,
            "a waiting delivery calls only once a release handed the turn over (one call at a time)",
        )?;
        c.passes -= 1;
        set_cur(n, t, d);
        Ok(())
    }

    /// What giving back a count does to the turn: a count given back by the call that held
    /// the turn, found with other counts (`from`, before, at least 2), hands the turn to
    /// one of the deliveries admitted behind it. (Mutant turn-misses-deregister: its
    /// waiting deliveries hold no count, so a release that hands nothing over, and the
    /// end of an uncounted call, pass a turn on when more deliveries sleep than turns are
    /// pending.)
    pub(super) fn hand_over(&self, n: &mut State, client: u8, from: u8) {
        let sleepers = n
            .threads
            .iter()
            .flatten()
            .filter(
                |f| matches!(f, Frame::Drain { cur: Some(d), .. } if d.at == At::Uncounted(client)),
            )
            .count() as u8;
        let c = &mut n.clients[usize::from(client)];
        if from >= 2 || (self.m(SpecMutant::TurnMissesDeregister) && sleepers > c.passes) {
            c.passes += 1;
        }
    }
}

//! `Rundown`: the in-flight count that makes deregister wait for running callbacks, and
//! lets one call of a client's callback run at a time.
//!
//! One atomic word holds a `CLOSED` bit and the number of callback calls in flight.
//! Delivery takes a count with one `fetch_add` and gives it back with one `fetch_sub`;
//! the lock and condition variable are touched only on the slow path, when the last call
//! of a closed rundown leaves, bringing the count to zero, *and a deregister sleeps on
//! it* (the `WAITER` bit). Skipping a closed client (an acquire that backs out) therefore
//! takes no lock and makes no wake-up call unless somebody waits.
//!
//! **One call at a time.** The count also serializes a client's calls, as Windows
//! promises: the delivery whose acquire finds the count at 0 holds the *turn* and calls
//! at once; one that finds it above 0 is admitted behind a call that is active (on
//! another hub's thread) and sleeps until that call's release hands the turn over, one
//! delivery per release. A release that finds no other count hands nothing over, so with
//! no contention the turn costs nothing beyond the count's own two read-modify-writes.
//! The hand-over is a token (`passes`) under its own lock, so a turn handed over before
//! its delivery sleeps is not lost. Consecutive calls are ordered: the next call begins
//! after the previous one's release (through the count's `Release`/`Acquire` pair, or
//! the hand-over lock).
//!
//! Why a turn can never close a cycle of waits: only a delivery *outside* any callback
//! sleeps for a turn (calls made inside callbacks only queue their items; see `hub`), so
//! it holds no other client's count and runs no callback. It waits for the active call of
//! one client, and what that call may wait for (a deregister of another client) is in
//! the wait-for graph (see `waits`); a deregister of this client waits for the sleeping
//! delivery's count, that is for the client's calls, which is what the graph records.
//!
//! Invariants (checked by the model, see docs/INVARIANTS.md):
//! - Once `CLOSED` is set it is never cleared, and no `try_acquire` succeeds after it.
//!   Both are read-modify-writes of the same word, so in its modification order each
//!   acquire is either before the close (the closer sees it counted and waits) or after
//!   it (the acquire sees `CLOSED` and backs out).
//! - `wait_for_zero` returns only after reading a value with count 0 and `CLOSED` set.
//!   That read is `Acquire` and every release is a `Release` read-modify-write, so it
//!   synchronises with every release before it: all callback effects happen-before the
//!   return.
//! - A failed acquire bumps the count transiently and backs out through `release`, which
//!   wakes the waiter if it was last; the bump never calls a callback.
//! - No lost wake-up: the waiter sets `WAITER` while holding `lock` and only then tests
//!   the count, still holding it until the condition variable releases it. A release
//!   whose `fetch_sub` comes before the `fetch_or` in the word's modification order is
//!   seen by the test (the waiter does not sleep); one that comes after it sees `WAITER`
//!   and must take `lock` to notify, which it gets only once the waiter sleeps.

use crate::checking::{Hooks, Mutant};
use crate::sync::{lock, AtomicU64, Condvar, Mutex, Ordering};

const CLOSED: u64 = 1 << 63;
/// Set under `lock` by the deregister that sleeps until the count reaches zero, and
/// cleared under it when that deregister leaves.
const WAITER: u64 = 1 << 62;
const COUNT: u64 = WAITER - 1;

/// What [`Rundown::close`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Closed {
    /// This call set `CLOSED`; an earlier close did not.
    pub(crate) first: bool,
    /// Calls in flight when it closed.
    pub(crate) in_flight: u64,
}

/// What [`Rundown::release`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Released {
    /// Calls in flight before this release.
    pub(crate) from: u64,
    /// This release was the last of a closed rundown and woke its sleeping deregister
    /// (the one case that takes the lock and makes a wake-up call).
    pub(crate) woke: bool,
    /// This release gave the turn to a delivery admitted while the call was active.
    pub(crate) handed: bool,
}

/// The turn's hand-over: turns given back for admitted deliveries that have not taken
/// them yet, and the deliveries sleeping for one.
#[derive(Default)]
struct Turns {
    passes: u64,
    sleepers: u64,
}

pub(crate) struct Rundown {
    state: AtomicU64,
    /// Held by a waiter from setting `WAITER` through its last look at `state` to going to
    /// sleep, and by the last releaser around its notify, so the wake-up cannot fall in
    /// between. It counts the waiters: `WAITER` is cleared when the last one leaves.
    lock: Mutex<u32>,
    /// Signalled when a closed rundown's count reaches zero and a deregister sleeps on it.
    at_zero: Condvar,
    /// Turns given back by a releasing call for the deliveries admitted behind it.
    turns: Mutex<Turns>,
    /// Signalled when a turn is given back and a delivery sleeps for it.
    passed: Condvar,
}

impl Rundown {
    pub(crate) fn new() -> Self {
        Rundown {
            state: AtomicU64::new(0),
            lock: Mutex::new(0),
            at_zero: Condvar::new(),
            turns: Mutex::new(Turns::default()),
            passed: Condvar::new(),
        }
    }

    /// Takes an in-flight count unless the rundown is closed. Returns the count before
    /// this acquire on success, and on failure what backing out did.
    #[inline]
    pub(crate) fn try_acquire(&self, hooks: &Hooks) -> Result<u64, Released> {
        let prev = self.state.fetch_add(1, Ordering::Acquire);
        if prev & CLOSED != 0 {
            return Err(self.give_back(hooks, false));
        }
        Ok(prev & COUNT)
    }

    /// Takes a count on a closed rundown with no call in flight, for the Policy Manager's
    /// removal (`shutdown`): the one call made after the close. A deregister that waits
    /// for zero waits for it too. The caller has seen the count at zero after the close,
    /// and holds the registry lock, which the deregister of this client needs first; so
    /// no other call is in flight and this call holds the turn.
    pub(crate) fn acquire_closed(&self) -> u64 {
        self.state.fetch_add(1, Ordering::Acquire) & COUNT
    }

    /// Sleeps until a releasing call hands this admitted delivery the turn: called after
    /// `try_acquire` returned a count above 0 (another call of the client was active or
    /// admitted). The hand-over is a token under `turns`, so a turn given back before
    /// this delivery sleeps is not lost.
    pub(crate) fn wait_turn(&self) {
        let mut turns = lock(&self.turns);
        turns.sleepers += 1;
        while turns.passes == 0 {
            turns = match self.passed.wait(turns) {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
        }
        turns.passes -= 1;
        turns.sleepers -= 1;
    }

    /// Only for the [`Mutant::TurnMissesDeregister`] mutant: gives the count back, then
    /// sleeps until a call hands over the turn (to any sleeper, counted or not).
    pub(crate) fn wait_turn_uncounted(&self, hooks: &Hooks) -> Released {
        let released = self.give_back(hooks, false);
        self.wait_turn();
        released
    }

    /// Only for the [`Mutant::TurnMissesDeregister`] mutant: an uncounted call hands the
    /// turn on to a sleeper, if any.
    pub(crate) fn pass_turn(&self) {
        let mut turns = lock(&self.turns);
        if turns.sleepers > turns.passes {
            turns.passes += 1;
            self.passed.notify_one();
        }
    }

    /// Gives back the count of a call that held the turn: hands the turn to a delivery
    /// admitted behind it, if any; wakes the waiter if it was the last one of a closed
    /// rundown that a deregister sleeps on.
    #[inline]
    pub(crate) fn release(&self, hooks: &Hooks) -> Released {
        self.give_back(hooks, true)
    }

    /// Gives back a count: a call's (`turn`: it held the turn) or an acquire's that backed
    /// out. Returns the count before it and what it woke.
    #[inline]
    fn give_back(&self, hooks: &Hooks, turn: bool) -> Released {
        let order = if hooks.mutant(Mutant::RelaxedOrdering) {
            Ordering::Relaxed
        } else {
            Ordering::Release
        };
        let prev = self.state.fetch_sub(1, order);
        // Every other count is a delivery admitted while this call was active (or, once
        // closed, an acquire backing out: then a turn handed to nobody is never taken,
        // since nothing is admitted after the close).
        let handed = turn && prev & COUNT >= 2;
        if handed {
            let mut turns = lock(&self.turns);
            turns.passes += 1;
            self.passed.notify_one();
        } else if turn && hooks.mutant(Mutant::TurnMissesDeregister) {
            self.pass_turn();
        }
        let last = prev & (CLOSED | COUNT) == CLOSED | 1;
        let woke = last && (prev & WAITER != 0 || hooks.mutant(Mutant::WakeWithoutWaiter));
        if woke {
            let _guard = lock(&self.lock);
            self.at_zero.notify_all();
        }
        Released {
            from: prev & COUNT,
            woke,
            handed,
        }
    }

    /// A racy look, only for the [`Mutant::CheckThenCall`] mutant.
    pub(crate) fn looks_closed(&self) -> bool {
        self.state.load(Ordering::Relaxed) & CLOSED != 0
    }

    /// Closes the rundown: no acquire succeeds after this returns.
    pub(crate) fn close(&self) -> Closed {
        let prev = self.state.fetch_or(CLOSED, Ordering::AcqRel);
        Closed {
            first: prev & CLOSED == 0,
            in_flight: prev & COUNT,
        }
    }

    /// Whether the rundown is closed with no call in flight (none can begin).
    pub(crate) fn at_zero(&self) -> bool {
        let state = self.state.load(Ordering::Acquire);
        state & CLOSED != 0 && state & COUNT == 0
    }

    /// Only for the [`Mutant::DetachNeverDone`] mutant: sleeps until the count reaches zero
    /// without setting `WAITER`, so the last release sees nobody to wake.
    pub(crate) fn wait_unflagged(&self) {
        let mut guard = lock(&self.lock);
        while self.state.load(Ordering::Acquire) & COUNT != 0 {
            guard = match self.at_zero.wait(guard) {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
        }
    }

    /// Blocks until a closed rundown has no call in flight (its count reaches zero). At
    /// most two threads wait on a rundown: the deregister that emptied the client's slot
    /// (or the completion of a detach that emptied it), and a `shutdown` that closed it.
    /// `WAITER` stays set until the last of them leaves.
    pub(crate) fn wait_for_zero(&self, hooks: &Hooks) {
        let order = if hooks.mutant(Mutant::RelaxedOrdering) {
            Ordering::Relaxed
        } else {
            Ordering::Acquire
        };
        if hooks.mutant(Mutant::LostWakeup) {
            // The bug: the test is made outside the lock, so the last release can see
            // `WAITER`, notify, and bring the count to zero between the test and the
            // wait, and nobody wakes this thread.
            self.state.fetch_or(WAITER, order);
            while self.state.load(order) & COUNT != 0 {
                let guard = lock(&self.lock);
                drop(self.at_zero.wait(guard));
            }
            return;
        }
        let mut guard = lock(&self.lock);
        *guard += 1;
        let flag_after_test = hooks.mutant(Mutant::WaiterFlagAfterTest);
        if !flag_after_test {
            self.state.fetch_or(WAITER, Ordering::Relaxed);
        }
        while self.state.load(order) & COUNT != 0 {
            if flag_after_test {
                // The bug: the last release can come between the test above and this
                // flag; it saw no waiter, woke nobody, and this thread sleeps for ever.
                self.state.fetch_or(WAITER, Ordering::Relaxed);
            }
            guard = match self.at_zero.wait(guard) {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
        }
        // Once nobody waits any more, later skips of this closed client make no wake-up
        // call. Cleared under the lock, so a release that saw the flag just before still
        // finds the lock free only once this thread has left.
        *guard -= 1;
        if *guard == 0 && !hooks.mutant(Mutant::WaiterFlagKept) {
            self.state.fetch_and(!WAITER, Ordering::Relaxed);
        }
        drop(guard);
    }
}

//! `Rundown`: the in-flight count that makes deregister wait for running callbacks.
//!
//! One atomic word holds a `CLOSED` bit and the number of callback calls in flight.
//! Delivery takes a count with one `fetch_add` and gives it back with one `fetch_sub`;
//! the lock and condition variable are touched only on the slow path, when the last call
//! drains out of a closed rundown.
//!
//! Invariants (checked by the model, see docs/INVARIANTS.md):
//! - Once `CLOSED` is set it is never cleared, and no `try_acquire` succeeds after it.
//!   Both are read-modify-writes of the same word, so in its modification order each
//!   acquire is either before the close (the closer sees it counted and waits) or after
//!   it (the acquire sees `CLOSED` and backs out).
//! - `wait_drained` returns only after reading a value with count 0 and `CLOSED` set.
//!   That read is `Acquire` and every release is a `Release` read-modify-write, so it
//!   synchronises with every release before it: all callback effects happen-before the
//!   return.
//! - A failed acquire bumps the count transiently and backs out through `release`, which
//!   wakes the waiter if it was last; the bump never calls a callback.

use crate::checking::{Hooks, Mutant};
use crate::sync::{lock, AtomicU64, Condvar, Mutex, Ordering};

const CLOSED: u64 = 1 << 63;
const COUNT: u64 = CLOSED - 1;

/// What [`Rundown::close`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Closed {
    /// This call set `CLOSED`; an earlier close did not.
    pub(crate) first: bool,
    /// Calls in flight when it closed.
    pub(crate) in_flight: u64,
}

pub(crate) struct Rundown {
    state: AtomicU64,
    /// Held by a waiter between its last look at `state` and going to sleep, and by the
    /// last releaser around its notify, so the wake-up cannot fall in between.
    lock: Mutex<()>,
    drained: Condvar,
}

impl Rundown {
    pub(crate) fn new() -> Self {
        Rundown {
            state: AtomicU64::new(0),
            lock: Mutex::new(()),
            drained: Condvar::new(),
        }
    }

    /// Takes an in-flight count unless the rundown is closed. Returns the count before
    /// this acquire on success.
    #[inline]
    pub(crate) fn try_acquire(&self, hooks: &Hooks) -> Result<u64, ()> {
        let prev = self.state.fetch_add(1, Ordering::Acquire);
        if prev & CLOSED != 0 {
            self.release(hooks);
            return Err(());
        }
        Ok(prev)
    }

    /// Gives back a count taken by `try_acquire`; wakes the waiters if it was the last
    /// one of a closed rundown. Returns the count before this release.
    #[inline]
    pub(crate) fn release(&self, hooks: &Hooks) -> u64 {
        let order = if hooks.mutant(Mutant::RelaxedOrdering) {
            Ordering::Relaxed
        } else {
            Ordering::Release
        };
        let prev = self.state.fetch_sub(1, order);
        if prev == CLOSED | 1 {
            let _guard = lock(&self.lock);
            self.drained.notify_all();
        }
        prev & COUNT
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

    /// Blocks until a closed rundown has no call in flight.
    pub(crate) fn wait_drained(&self, hooks: &Hooks) {
        let order = if hooks.mutant(Mutant::RelaxedOrdering) {
            Ordering::Relaxed
        } else {
            Ordering::Acquire
        };
        if hooks.mutant(Mutant::LostWakeup) {
            // The bug: the test is made outside the lock, so the last release can drain
            // and notify between the test and the wait, and nobody wakes this thread.
            while self.state.load(order) != CLOSED {
                let guard = lock(&self.lock);
                drop(self.drained.wait(guard));
            }
            return;
        }
        let mut guard = lock(&self.lock);
        while self.state.load(order) != CLOSED {
            guard = match self.drained.wait(guard) {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
        }
    }
}

//! A callback's query of its hub (`query_hub`): it takes the registry lock, then the
//! hub's lock, and returns.
//!
//! Contract: no effect on the protocol's state; it exists for the lock-order mutants
//! (`locks.rs`), whose held locks it cannot get. Model checking spends a budget on it;
//! the trace never reports it.

use super::{ensure, top, R};
use crate::spec::Spec;
use crate::state::{Frame, State};

impl Spec {
    /// A running callback begins a query of its hub.
    pub(super) fn query(&self, s: &State, n: &mut State, t: usize) -> R {
        let Some(Frame::Callback { hub, .. }) = top(s, t) else {
            return Err("a query from a callback");
        };
        if !self.open {
            ensure(n.queries_left > 0, "no query left in the budget")?;
            n.queries_left -= 1;
        }
        n.threads[t].push(Frame::Query { hub });
        Ok(())
    }

    /// The query gets the registry lock and the hub's lock, and returns.
    pub(super) fn query_done(&self, s: &State, n: &mut State, t: usize) -> R {
        let Some(Frame::Query { hub }) = top(s, t) else {
            return Err("no query in progress");
        };
        ensure(!self.registry_blocked(s), "the registry lock is held")?;
        ensure(
            !self.hub_blocked(s, hub),
            "the hub's lock is held across a callback",
        )?;
        n.threads[t].pop();
        Ok(())
    }
}

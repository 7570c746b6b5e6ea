//! Which callbacks each thread is inside of, and who is waiting for whom.
//!
//! `deregister` blocks until the target's callbacks return. That is safe from a plain
//! thread, which holds no callback. From inside a callback it is safe only if the target's
//! callbacks do not (transitively) wait for the callbacks this thread is inside of:
//!
//! - a thread inside a callback of X that deregisters X would wait for itself;
//! - a thread inside A's callback deregistering B, while a thread inside B's callback
//!   deregisters A, would wait for each other.
//!
//! Every thread keeps a stack of the clients whose callbacks it is running. It holds at
//! most one: callbacks never nest on one thread, since a call made from a callback only
//! queues its item (see `hub`). A deregister made from inside a callback records an edge
//! "each client I hold waits for the target" in a wait-for graph before it sleeps, and
//! first refuses if the target already reaches one of the clients it holds: that edge
//! would close a cycle, and a cycle of these waits never ends.
//! Deregister from outside any callback holds nothing, can close no cycle, and never
//! touches the graph.

use std::cell::RefCell;

use crate::checking::{Hooks, Mutant, Step};
use crate::error::Error;
use crate::event::Access;
use crate::handle::ClientHandle;
use crate::sync::{lock, thread_local, Mutex};

thread_local! {
    // Not a `const` initializer: loom's and shuttle's `thread_local!` do not accept one.
    #[allow(clippy::missing_const_for_thread_local)]
    static INSIDE: RefCell<Vec<(ClientHandle, Access)>> = RefCell::new(Vec::new());
}

/// Marks the current thread as inside a callback of `client` until dropped.
pub(crate) struct InsideCallback(());

impl InsideCallback {
    /// `granted`: what the client may do, for the calls its callback makes (see
    /// [`own_grant`]).
    pub(crate) fn enter(client: ClientHandle, granted: Access) -> Self {
        INSIDE.with(|s| s.borrow_mut().push((client, granted)));
        InsideCallback(())
    }
}

impl Drop for InsideCallback {
    fn drop(&mut self) {
        INSIDE.with(|s| s.borrow_mut().pop());
    }
}

/// Whether the current thread is inside any callback (of any Policy Manager).
pub(crate) fn inside_callback() -> bool {
    INSIDE.with(|s| !s.borrow().is_empty())
}

/// The clients whose callbacks the current thread is inside of (at most one).
pub(crate) fn held() -> Vec<ClientHandle> {
    INSIDE.with(|s| s.borrow().iter().map(|(c, _)| *c).collect())
}

/// The grant of `client` if the current thread is inside its callback: a call of the
/// callback admitted before a deregister still runs, and the calls it makes as its client
/// are its own, though the handle is stale for everybody else.
pub(crate) fn own_grant(client: ClientHandle) -> Option<Access> {
    INSIDE.with(|s| {
        s.borrow()
            .iter()
            .find(|(c, _)| *c == client)
            .map(|(_, a)| *a)
    })
}

struct Wait {
    id: u64,
    holding: Vec<ClientHandle>,
    target: ClientHandle,
}

#[derive(Default)]
struct Graph {
    next_id: u64,
    waits: Vec<Wait>,
}

/// The waits that deregister calls made from inside callbacks are blocked in.
pub(crate) struct WaitGraph {
    graph: Mutex<Graph>,
}

/// A recorded wait; dropping it removes the wait's edges.
pub(crate) struct WaitEdge<'a> {
    graph: &'a WaitGraph,
    id: u64,
}

impl WaitGraph {
    pub(crate) fn new() -> Self {
        WaitGraph {
            graph: Mutex::new(Graph::default()),
        }
    }

    /// Records that a thread inside the callbacks of `holding` (non-empty) is about to
    /// wait for `target`'s calls to finish, unless that wait would close a cycle. (The
    /// `cycle-check-direct-only` mutant follows no wait beyond the target's own.)
    pub(crate) fn enter(
        &self,
        holding: Vec<ClientHandle>,
        target: ClientHandle,
        hooks: &Hooks,
    ) -> Result<WaitEdge<'_>, Error> {
        let mut g = lock(&self.graph);
        // Everything `target` waits for, directly or through other waiting callbacks.
        let direct_only = hooks.mutant(Mutant::CycleCheckDirectOnly);
        let mut reached = vec![target];
        let mut i = 0;
        while i < reached.len() && !(direct_only && i > 0) {
            let from = reached[i];
            for w in &g.waits {
                if w.holding.contains(&from) && !reached.contains(&w.target) {
                    reached.push(w.target);
                }
            }
            i += 1;
        }
        if reached.iter().any(|r| holding.contains(r)) {
            return Err(Error::WouldDeadlock { target, holding });
        }
        hooks.step(|| Step::WaitFor {
            holding: holding.clone(),
            client: target,
        });
        g.next_id += 1;
        let id = g.next_id;
        g.waits.push(Wait {
            id,
            holding,
            target,
        });
        Ok(WaitEdge { graph: self, id })
    }
}

impl Drop for WaitEdge<'_> {
    fn drop(&mut self) {
        lock(&self.graph.graph).waits.retain(|w| w.id != self.id);
    }
}

//! What one execution of a program did, as the oracle judges it: every call into the
//! Policy Manager, every event a callback was told and every context dropped, with
//! real-time tickets. Recorded by the interpreter (`exec::interpreter`), judged by the
//! oracle (`judge::oracle`).

use usbpm::Error;

use crate::lang::program::ClientIx;

/// A point in the execution's real-time order (taken from one counter).
pub type Ticket = usize;

/// One registration of a client: the program's client `A` registered a second time is
/// another instance (`A2`).
pub type InstId = usize;

/// What a call was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    Register {
        inst: InstId,
    },
    /// Deregister of an instance's handle (`inst`), or of a handle never issued here.
    Deregister {
        inst: Option<InstId>,
    },
    /// A guard drop of `inst` (waits, or detaches inside the client's own callback).
    DropGuard {
        inst: InstId,
    },
    Arrive {
        hub: u32,
        presence: usize,
    },
    /// A change through the port of presence `presence`.
    Change {
        hub: u32,
        presence: usize,
        token: usize,
    },
    Remove {
        hub: u32,
        presence: usize,
    },
    Query {
        hub: u32,
    },
    AssignPower {
        hub: u32,
    },
}

/// What a call returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ret {
    Pending,
    Unit(Result<(), Error>),
    /// `query_hub`: the presence and last-change tokens the hub showed.
    Hub(Result<(usize, usize), Error>),
}

#[derive(Clone, Debug)]
pub struct CallRec {
    pub thread: String,
    /// The instances whose callbacks the calling thread was inside, innermost last.
    pub inside: Vec<InstId>,
    pub call: Call,
    pub start: Ticket,
    pub end: Ticket,
    pub ret: Ret,
}

/// What a callback was told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    Arrival { presence: usize, last_change: usize },
    Change { token: usize },
    Removal,
}

#[derive(Clone, Debug)]
pub struct SeenRec {
    pub inst: InstId,
    pub hub: u32,
    pub seq: u64,
    pub seen: Seen,
    pub begin: Ticket,
    /// When the callback returned (or unwound); 0 while it runs.
    pub end: Ticket,
}

/// A client's context dropped by the library (its `Drop` ran), as the context saw it.
#[derive(Clone, Debug)]
pub struct DropRec {
    pub inst: InstId,
    pub thread: String,
    /// The instances whose callbacks the dropping thread was inside, innermost last.
    pub inside: Vec<InstId>,
    pub at: Ticket,
}

#[derive(Clone, Debug)]
pub struct InstRec {
    pub label: String,
    pub client: ClientIx,
}

/// Everything the oracle judges: calls and callbacks, with their real-time tickets.
#[derive(Clone, Debug, Default)]
pub struct Log {
    pub calls: Vec<CallRec>,
    pub seen: Vec<SeenRec>,
    pub insts: Vec<InstRec>,
    /// When the post part began: every thread had been joined, nothing was queued.
    pub post_start: Ticket,
    /// Every context's drop, in the order they happened.
    pub drops: Vec<DropRec>,
    /// Panics the model raised on purpose, in callbacks and in contexts' drops (every one
    /// of them the library must contain and count).
    pub panics_raised: u64,
    /// What `panicked_callbacks` returned at the end of the post part.
    pub panics_counted: u64,
}

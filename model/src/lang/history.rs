//! What one execution of a program did, as the oracle judges it: every call into the
//! Policy Manager and every event a callback was told, with real-time tickets. Recorded
//! by the interpreter (`exec::interpreter`), judged by the oracle (`judge::oracle`).

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
}

//! What one execution of a program did, as the oracle judges it: every call into the
//! Policy Manager, every event a callback was told (the hubs' and the Policy Manager's
//! own) and every context dropped, with real-time tickets. Recorded by the interpreter (`exec::interpreter`), judged by the
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
    /// `inst`'s registration ended without waiting: `Registration::detach`, or a guard
    /// dropped inside another client's callback where waiting would close a cycle (the
    /// drop detaches). Calls admitted before it may still begin after it returns.
    Detach {
        inst: InstId,
    },
    /// `Detached::wait` on `inst`'s detach completion.
    Wait {
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
    /// `assign_power_level` by instance `inst`'s handle, for the hub's presence
    /// `presence` as the library numbers them (1 at its first arrival, +1 per arrival;
    /// `None`: a thread's request found no hub present, and was not made).
    AssignPower {
        hub: u32,
        inst: InstId,
        presence: Option<u32>,
    },
    /// `shutdown`.
    Shutdown,
    /// The hardware's answer to every power request pending on the hub, through the port
    /// of presence `presence`: all accepted or all rejected.
    Answer {
        hub: u32,
        presence: usize,
        accepted: bool,
    },
}

/// What a call returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ret {
    Pending,
    Unit(Result<(), Error>),
    /// `query_hub`: the presence and last-change tokens the hub showed.
    Hub(Result<(usize, usize), Error>),
    /// An answer: what `HubPort::answer` returned for each request the port took, in
    /// order (`Ok(true)`: reported as a connector change).
    Answers(Vec<Result<bool, Error>>),
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
    Arrival {
        presence: usize,
        last_change: usize,
    },
    Change {
        token: usize,
    },
    /// A change of connector 0: what an accepted power request is reported as (no
    /// program reports a change of connector 0 itself).
    Power,
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

/// One of the Policy Manager's own events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManagerSeen {
    Arrival,
    Removal,
}

/// A call of a client's callback with one of the Policy Manager's own events.
#[derive(Clone, Debug)]
pub struct ManagerRec {
    pub inst: InstId,
    pub seen: ManagerSeen,
    pub begin: Ticket,
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
    /// The calls with the Policy Manager's own events (arrival, removal), in the order
    /// they began.
    pub manager: Vec<ManagerRec>,
    /// Panics the model raised on purpose, in callbacks and in contexts' drops (every one
    /// of them the library must contain and count).
    pub panics_raised: u64,
    /// What `panicked_callbacks` returned at the end of the post part.
    pub panics_counted: u64,
}

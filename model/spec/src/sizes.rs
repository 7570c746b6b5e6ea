//! Sizes of the closed world: what [`Size`] bounds, and the named sizes the checks run
//! at (`QUICK`, `FULL`, `FULL_THREADS`, `REARRIVAL`, `SHUTDOWN`, `POWER`, `DETACH`, `MUTANTS`) with the size
//! each spec mutant is checked at.
//!
//! Contract: data only. A size says who exists and what the program and its callbacks
//! may do; the budgets it gives are spent in `enumerate.rs`. The figures quoted here were
//! measured when each size was introduced (docs/SPEC.md, "History"); the current ones are
//! in the gate's generated reports.

use crate::mutants::SpecMutant;

/// The size of a closed world to check exhaustively: who exists and what the program
/// and its callbacks may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size {
    pub clients: u8,
    pub hubs: u8,
    pub threads: u8,
    /// Connector changes each hub reports after its arrival.
    pub changes: u8,
    /// Each hub is removed after its changes.
    pub removal: bool,
    /// Deregisters made from inside callbacks (of any client, itself included).
    pub reentrant: u8,
    /// Callback calls that panic.
    pub panics: u8,
    /// Callbacks that query the hub they are delivered from.
    pub queries: u8,
    /// The clients are registered before the threads start (no registration, so no
    /// arrival replay, in this world: that is checked at the other sizes).
    pub preregistered: bool,
    /// Program actions (a registration, a hub's arrival, change or removal) a running
    /// callback may take itself, as an idle thread would.
    pub callback_reports: u8,
    /// Arrivals of a hub again after its removal was queued.
    pub rearrivals: u8,
    /// An idle thread may shut the Policy Manager down (once).
    pub shutdown: bool,
    /// Power requests (`assign_power_level`) the program and its callbacks may make;
    /// the hardware answers each (accepted or rejected).
    pub power_requests: u8,
    /// How many clients are granted `ASSIGN_POWER` (the first ones; the others have
    /// query access only).
    pub granted: u8,
    /// Detaches (the drop of a `Registration` that may not wait) the program and its
    /// callbacks may make, of any client they know; the program's own is its one release
    /// of that handle.
    pub detaches: u8,
}

impl Size {
    pub fn label(&self) -> String {
        format!(
            "{}c x {}h x {}t x {}e{} (reentrant {}, panics {}, queries {}{})",
            self.clients,
            self.hubs,
            self.threads,
            self.changes + u8::from(self.removal),
            if self.removal { " incl. removal" } else { "" },
            self.reentrant,
            self.panics,
            self.queries,
            if self.preregistered {
                ", clients registered first"
            } else {
                ""
            }
        ) + &if self.callback_reports + self.rearrivals > 0 {
            format!(
                ", callback reports {}, re-arrivals {}",
                self.callback_reports, self.rearrivals
            )
        } else {
            String::new()
        } + if self.shutdown { ", a shutdown" } else { "" }
            + &if self.power_requests > 0 {
                format!(
                    ", power requests {} ({} of {} clients granted ASSIGN_POWER)",
                    self.power_requests, self.granted, self.clients
                )
            } else {
                String::new()
            }
            + &if self.detaches > 0 {
                format!(", detaches {}", self.detaches)
            } else {
                String::new()
            }
    }
}

/// Unique states at the quick size without symmetry reduction, measured once with
/// `spec_check quick --no-symmetry` (51.7 s; docs/SPEC.md). The gate reports the
/// symmetry saving at the quick size against this recorded figure instead of paying for
/// the un-reduced run on every push.
pub const QUICK_UNREDUCED_STATES: usize = 11_338_314;

/// The quick gate's size: 2 clients x 2 hubs x 2 threads x 2 events per hub, 2
/// re-entrant deregisters, and one registration or hub report made from inside a
/// callback; every registration greets its client. Measured with the greeting: 1,380,179
/// unique states, depth 62, 16.9 s of CPU on a loaded machine (docs/SPEC.md, "History").
pub const QUICK: Size = Size {
    clients: 2,
    hubs: 2,
    threads: 2,
    changes: 1,
    removal: true,
    reentrant: 2,
    panics: 0,
    queries: 0,
    preregistered: false,
    callback_reports: 1,
    rearrivals: 0,
    shutdown: false,
    power_requests: 0,
    granted: 0,
    detaches: 0,
};

/// The full gate's size: the quick size with a panicking callback and a detach (by the
/// program or a callback): 2 clients x 2 hubs x 2 threads, registration (greetings,
/// replays), a callback report, 2 re-entrant deregisters. Unique states and depth: the
/// full gate's report (docs/VERIFICATION.md); 171 s of CPU when introduced (docs/SPEC.md,
/// "Why these sizes"). It replaced 3
/// clients x 2 hubs x 3 threads with the clients registered first (15,559,207 states,
/// 286 s), whose kinds it reaches at one hub (`tests/cutoff.rs`). Over the full gate's
/// budget for this check (about 340 s of CPU): 3 x 2 x 2 with registration, a callback
/// report and a panic (`3,2,2,1,2,1,0,0,1`) did not finish in 265 s of CPU, the former
/// with a panic (`3,2,3,1,2,1,0,1`) not in 386 s, 3 x 2 x 3 with registration not in
/// 15 min.
pub const FULL: Size = Size {
    panics: 1,
    detaches: 1,
    ..QUICK
};

/// Re-arrival: one hub that arrives again after its removal, with the quick size's
/// re-entrant deregisters and callback report (one hub keeps it small: 125,677 unique
/// states, 0.6 s; with two hubs, `2,2,2,1,2,0,0,0,1,1`, 11,063,682 states, 60.5 s,
/// docs/SPEC.md).
pub const REARRIVAL: Size = Size {
    hubs: 1,
    rearrivals: 1,
    ..QUICK
};

/// Shutdown: the quick size with one hub and a shutdown (one hub keeps it small: 300,191
/// unique states, 2.8 s of CPU; with two, `2,2,2,1,2,0,0,0,1,0,1`, 6,139,680 unique
/// states, 79 s of CPU, docs/SPEC.md; with the former full size's 3 clients registered
/// first x 2 hubs x 3 threads, `3,2,3,1,2,0,0,1,0,0,1`, unfinished after 30 min, 11 of
/// them CPU). Checked by `cargo test -p usbpm-spec` (so by `gate test`).
pub const SHUTDOWN: Size = Size {
    hubs: 1,
    shutdown: true,
    ..QUICK
};

/// Power requests: the quick size with one hub and one power request (by the program or
/// by a callback, for any client it knows), client A granted `ASSIGN_POWER` and B query
/// access only; the hardware answers it, accepted or rejected, from an idle thread or a
/// callback. The access check and a deregister race the request, and an accepted
/// answer's change is delivered. One hub and one request keep it small: 445,275 unique
/// states, 6.7 s of CPU on a loaded machine; with two requests 1,411,349 states, 17 s;
/// with one request and a shutdown 3,014,389 states, 34 s; with two requests and a
/// shutdown 9,548,680 states, 136 s. Not in the quick or full sizes for that reason (as
/// shutdown); checked by `cargo test -p usbpm-spec` (so by `gate test`), and the power
/// spec mutants at it.
pub const POWER: Size = Size {
    hubs: 1,
    power_requests: 1,
    granted: 1,
    ..QUICK
};

/// Detach: the full size with one hub (so a panicking callback and a detach, the drop of a
/// `Registration` that may not wait, by the program or a callback: it closes its client
/// without waiting for the call in flight). One hub keeps it small: 358,197 unique
/// states, 3.5 s of CPU (docs/SPEC.md). Checked by `cargo test -p usbpm-spec` (so by
/// `gate test`).
pub const DETACH: Size = Size { hubs: 1, ..FULL };

/// The full gate's second size: three threads at two hubs, which `FULL` (two threads)
/// cannot have. 2 clients registered first x 2 hubs x 3 threads, 2 re-entrant
/// deregisters and a panicking callback, no callback report. It reaches the one kind of
/// state `FULL` misses (`tests/cutoff.rs`): a third thread beside two drainers
/// deregisters a client with two calls counted, one per hub. 1,510,044 unique states,
/// 24 s of CPU when introduced; with a detach as well, 8,761,862 states, 151 s, and with
/// a callback report too (`2,2,3,1,2,1,0,1,1,0,0,0,0,1`), 317 s: beyond the full gate's
/// budget.
pub const FULL_THREADS: Size = Size {
    clients: 2,
    hubs: 2,
    threads: 3,
    preregistered: true,
    callback_reports: 0,
    panics: 1,
    ..QUICK
};

/// The spec mutants' size: the quick size, plus a panicking callback, a callback that
/// queries its hub (the ingredients of panic-leaks-count and the two lock-order bugs) and
/// a shutdown (removal-not-last's).
pub const MUTANTS: Size = Size {
    panics: 1,
    queries: 1,
    shutdown: true,
    ..QUICK
};

/// The size at which each spec mutant is checked: the quick size with every ingredient
/// (re-entrant deregisters, a panic, a query, removal, replay, a greeting owed, a
/// shutdown).
pub fn mutant_size(m: SpecMutant) -> Size {
    match m {
        SpecMutant::AccessCheckedLate
        | SpecMutant::PowerRequestUnlocked
        | SpecMutant::RejectedRequestReported => POWER,
        _ => MUTANTS,
    }
}

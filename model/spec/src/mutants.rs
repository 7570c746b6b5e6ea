//! The spec mutant catalogue: the bug families of the code's mutants
//! (`usbpm::checking::Mutant`), written into the specification.
//!
//! Contract: the list ([`SpecMutant::ALL`]) and the names, which are the code mutants'
//! names (`spec_check --mutant NAME`, the gate's mutant table). Each mutant is a switch
//! read by the actions (`Spec::m`); the doc of each variant names where it acts. Every
//! one must be found by the model checker at [`crate::run::mutant_size`]
//! (`tests/spec.rs`, `every_spec_mutant_is_found`).

/// The bug families of the code's mutants (`usbpm::checking::Mutant`), written into
/// the specification. Each must be found by the model checker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SpecMutant {
    /// `Close` never makes the deregister sleep: it returns with callbacks in flight
    /// (`actions/deregister.rs`).
    DeregisterNoWait,
    /// Delivery peeks at `CLOSED` and calls without an in-flight count (`Peek` for
    /// `Acquire`, `actions/delivery.rs`; `enumerate.rs`).
    CheckThenCall,
    /// Delivery gives its count back before the callback begins
    /// (`actions/delivery.rs`; `enumerate.rs`).
    ReleaseBeforeCallback,
    /// Deregister tests the count outside the lock and parks: a notify in between is
    /// lost (`Test`, `Park`, `Wake`, `actions/deregister.rs`).
    LostWakeup,
    /// A deregister holds the registry lock from its retire until it returns
    /// (`actions/locks.rs`).
    WaitUnderRegistryLock,
    /// A hub's lock is held across a delivery's callbacks (`actions/locks.rs`).
    CallbackUnderHubLock,
    /// A stale handle's deregister retires whichever client holds the slot now
    /// (`Retire{victim}`, `actions/deregister.rs`; `enumerate.rs`).
    NoGeneration,
    /// A deregister from its own client's callback is not refused and waits
    /// (`NoCheck`, `actions/deregister.rs`).
    OwnCallbackWaits,
    /// No wait-for graph: a deregister from callbacks never refuses a cycle
    /// (`NoCheck`, `actions/deregister.rs`).
    NoCycleCheck,
    /// The removal is queued at the front, ahead of items queued before it
    /// (`actions/submit.rs`; `reduction.rs` keeps `Take` unfused).
    RemovalOvertakes,
    /// A registration replays one present hub fewer than it owes
    /// (`actions/calls.rs`).
    ReplayMissesHub,
    /// A panicking callback's in-flight count is never released
    /// (`End`, `actions/delivery.rs`).
    PanicLeaksCount,
    /// A drainer stops after one item, short of its target (`actions/drain.rs`).
    DrainOnePerPass,
    /// A drainer goes on past its own target to the end of the queue
    /// (`actions/drain.rs`).
    UnboundedDrain,
    /// A drainer's stop wakes no sleeper (`actions/drain.rs`; `enumerate.rs`).
    HandoffWakesNobody,
    /// An append from inside a callback is not recorded as the thread's
    /// obligation (`actions/submit.rs`).
    ObligationForgotten,
}

impl SpecMutant {
    pub const ALL: &'static [SpecMutant] = &[
        SpecMutant::DeregisterNoWait,
        SpecMutant::CheckThenCall,
        SpecMutant::ReleaseBeforeCallback,
        SpecMutant::LostWakeup,
        SpecMutant::WaitUnderRegistryLock,
        SpecMutant::CallbackUnderHubLock,
        SpecMutant::NoGeneration,
        SpecMutant::OwnCallbackWaits,
        SpecMutant::NoCycleCheck,
        SpecMutant::RemovalOvertakes,
        SpecMutant::ReplayMissesHub,
        SpecMutant::PanicLeaksCount,
        SpecMutant::DrainOnePerPass,
        SpecMutant::UnboundedDrain,
        SpecMutant::HandoffWakesNobody,
        SpecMutant::ObligationForgotten,
    ];

    /// The name of the code mutant of the same family.
    pub fn name(self) -> &'static str {
        match self {
            SpecMutant::DeregisterNoWait => "deregister-no-wait",
            SpecMutant::CheckThenCall => "check-then-call",
            SpecMutant::ReleaseBeforeCallback => "release-before-callback",
            SpecMutant::LostWakeup => "lost-wakeup",
            SpecMutant::WaitUnderRegistryLock => "wait-under-registry-lock",
            SpecMutant::CallbackUnderHubLock => "callback-under-hub-lock",
            SpecMutant::NoGeneration => "no-generation",
            SpecMutant::OwnCallbackWaits => "own-callback-waits",
            SpecMutant::NoCycleCheck => "no-cycle-check",
            SpecMutant::RemovalOvertakes => "removal-overtakes",
            SpecMutant::ReplayMissesHub => "replay-misses-hub",
            SpecMutant::PanicLeaksCount => "panic-leaks-count",
            SpecMutant::DrainOnePerPass => "drain-one-per-pass",
            SpecMutant::UnboundedDrain => "unbounded-drain",
            SpecMutant::HandoffWakesNobody => "handoff-wakes-nobody",
            SpecMutant::ObligationForgotten => "obligation-forgotten",
        }
    }

    pub fn from_name(name: &str) -> Option<SpecMutant> {
        SpecMutant::ALL.iter().copied().find(|m| m.name() == name)
    }
}

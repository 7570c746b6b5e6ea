//! The spec mutant catalogue: the bug families of the code's mutants
//! (`usbpm::checking::Mutant`), written into the specification.
//!
//! Contract: one list, below, declares each mutant once with its name, the code mutant's
//! name (`spec_check --mutant NAME`, the gate's mutant table); the enum,
//! [`SpecMutant::ALL`] (in that order), `name` and `from_name` are made from it, so none
//! of them can leave a mutant out. Each mutant is a switch read by the actions
//! (`Spec::m`); the doc of each variant names where it acts. Every one must be found by
//! the model checker at [`crate::run::mutant_size`] (`tests/spec.rs`,
//! `every_spec_mutant_is_found`).

/// Declares [`SpecMutant`] from its catalogue: each mutant once, with its doc comment,
/// the variant and the name of the code mutant of the same family.
macro_rules! spec_mutants {
    ($($(#[doc = $doc:literal])* $variant:ident = $name:literal;)*) => {
        /// The bug families of the code's mutants (`usbpm::checking::Mutant`), written into
        /// the specification. Each must be found by the model checker.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum SpecMutant {
            $($(#[doc = $doc])* $variant,)*
        }

        impl SpecMutant {
            /// Every spec mutant, in catalogue order.
            pub const ALL: &'static [SpecMutant] = &[$(SpecMutant::$variant,)*];

            /// The name of the code mutant of the same family.
            pub fn name(self) -> &'static str {
                match self {
                    $(SpecMutant::$variant => $name,)*
                }
            }

            /// The spec mutant with this [`name`](Self::name).
            pub fn from_name(name: &str) -> Option<SpecMutant> {
                SpecMutant::ALL.iter().copied().find(|m| m.name() == name)
            }
        }
    };
}

spec_mutants! {
    /// `Close` never makes the deregister sleep: it returns with callbacks in flight
    /// (`actions/deregister.rs`).
    DeregisterNoWait = "deregister-no-wait";
    /// Delivery peeks at `CLOSED` and calls without an in-flight count (`Peek` for
    /// `Acquire`, `actions/delivery.rs`; `enumerate.rs`).
    CheckThenCall = "check-then-call";
    /// Delivery gives its count back before the callback begins
    /// (`actions/delivery.rs`; `enumerate.rs`).
    ReleaseBeforeCallback = "release-before-callback";
    /// Deregister tests the count outside the lock and parks: a notify in between is
    /// lost (`Test`, `Park`, `Wake`, `actions/deregister.rs`).
    LostWakeup = "lost-wakeup";
    /// A deregister holds the registry lock from its retire until it returns
    /// (`actions/locks.rs`).
    WaitUnderRegistryLock = "wait-under-registry-lock";
    /// A hub's lock is held across a delivery's callbacks (`actions/locks.rs`).
    CallbackUnderHubLock = "callback-under-hub-lock";
    /// A stale handle's deregister retires whichever client holds the slot now
    /// (`Retire{victim}`, `actions/deregister.rs`; `enumerate.rs`).
    NoGeneration = "no-generation";
    /// A deregister from its own client's callback is not refused and waits
    /// (`NoCheck`, `actions/deregister.rs`).
    OwnCallbackWaits = "own-callback-waits";
    /// No wait-for graph: a deregister from callbacks never refuses a cycle
    /// (`NoCheck`, `actions/deregister.rs`).
    NoCycleCheck = "no-cycle-check";
    /// The removal is queued at the front, ahead of items queued before it
    /// (`actions/submit.rs`; `reduction.rs` keeps `Take` unfused).
    RemovalOvertakes = "removal-overtakes";
    /// A registration replays one present hub fewer than it owes
    /// (`actions/calls.rs`).
    ReplayMissesHub = "replay-misses-hub";
    /// A panicking callback's in-flight count is never released
    /// (`End`, `actions/delivery.rs`).
    PanicLeaksCount = "panic-leaks-count";
    /// A drainer stops after one item, short of its target (`actions/drain.rs`).
    DrainOnePerPass = "drain-one-per-pass";
    /// A drainer goes on past its own target to the end of the queue
    /// (`actions/drain.rs`).
    UnboundedDrain = "unbounded-drain";
    /// A drainer's stop wakes no sleeper (`actions/drain.rs`; `enumerate.rs`).
    HandoffWakesNobody = "handoff-wakes-nobody";
    /// An append from inside a callback is not recorded as the thread's
    /// obligation (`actions/submit.rs`).
    ObligationForgotten = "obligation-forgotten";
    /// A delivery admitted behind another count of the client calls at once instead of
    /// waiting for its turn: two calls of one client at once (`Acquire`,
    /// `actions/delivery.rs`).
    CallsOverlap = "calls-overlap";
    /// A delivery waiting for its turn gives its count back (`Release` from `Waiting`,
    /// `actions/delivery.rs`; `enumerate.rs`) and calls uncounted once it has the turn
    /// (`TakeTurn`, `hand_over`, `actions/turn.rs`).
    TurnMissesDeregister = "turn-misses-deregister";
    /// A greeting shows its client to the hubs (queues its replays) before it delivers
    /// its Policy Manager arrival (`Spec::push_greeting`, `actions/mod.rs`).
    ArrivalNotFirst = "arrival-not-first";
    /// `shutdown` delivers each client's Policy Manager removal without closing it or
    /// waiting for its calls in flight first (`ShutClose`, `actions/manager.rs`; the
    /// removal's count, `actions/delivery.rs`).
    RemovalNotLast = "removal-not-last";
    /// A power request is queued without its client's `ASSIGN_POWER` (`Request`,
    /// `actions/power.rs`): the code checks the access after the request went out.
    AccessCheckedLate = "access-checked-late";
    /// A power request is checked under the registry lock and queued after it is
    /// released (`Request`, then `RequestQueued`, `actions/power.rs`; `enumerate.rs`): a
    /// deregister or the shutdown can return in between.
    PowerRequestUnlocked = "power-request-unlocked";
    /// A rejected answer goes through the submit path as an accepted one and appends a
    /// change (`Answer`, `actions/power.rs`; `enumerate.rs`).
    RejectedRequestReported = "rejected-request-reported";
}

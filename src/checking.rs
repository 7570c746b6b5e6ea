//! Hooks for the verification gate: seeded protocol bugs (mutants) and a step probe.
//!
//! With the `checking` feature, a [`PolicyManager`](crate::PolicyManager) can be built
//! with one [`Mutant`] switched on and a `Probe` that hears every protocol step. The
//! gate uses mutants to prove that its checks fail when the protocol is broken, and the
//! probe to print a failing interleaving as a timeline. Without the feature (every
//! production build) this module is a zero-sized stub: `Hooks::mutant` is a constant
//! `false` that the compiler folds away, and no step is ever built.

use crate::event::{ConnectorId, HubId};
use crate::ClientHandle;

/// Declares [`Mutant`] from its catalogue: each mutant once, with its doc comment, the
/// variant, its kebab-case name and the one line on what it gets wrong. The enum,
/// `Mutant::ALL`, `name`, `from_name` and `description` are all made from that one list,
/// so none of them can leave a mutant out.
macro_rules! mutants {
    ($($(#[doc = $doc:literal])* $variant:ident = $name:literal, $description:literal;)*) => {
        /// A seeded protocol bug. Each is a realistic mistake in the deregister protocol.
        ///
        /// Without the `checking` feature this module is private and no mutant can be
        /// switched on.
        #[cfg_attr(not(feature = "checking"), allow(dead_code))]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Mutant {
            $($(#[doc = $doc])* $variant,)*
        }

        #[cfg(feature = "checking")]
        impl Mutant {
            /// Every mutant, in catalog order.
            pub const ALL: &'static [Mutant] = &[$(Mutant::$variant,)*];

            /// A short kebab-case name, for command lines and reports.
            pub fn name(self) -> &'static str {
                match self {
                    $(Mutant::$variant => $name,)*
                }
            }

            /// One line on what the mutant gets wrong, for `gate list` and the kill matrix.
            pub fn description(self) -> &'static str {
                match self {
                    $(Mutant::$variant => $description,)*
                }
            }

            /// The mutant with this [`name`](Self::name).
            pub fn from_name(name: &str) -> Option<Mutant> {
                Mutant::ALL.iter().copied().find(|m| m.name() == name)
            }
        }
    };
}

mutants! {
    /// `deregister` closes the registration but returns without waiting for callbacks
    /// that are already running.
    DeregisterNoWait = "deregister-no-wait",
        "deregister does not wait for running callbacks";
    /// Delivery checks "not closing" with a plain load, then calls the callback without
    /// holding an in-flight count (check-then-act race).
    CheckThenCall = "check-then-call",
        "check-then-call without holding the in-flight count (TOCTOU)";
    /// The in-flight count is released before the callback is called, not after it returns.
    ReleaseBeforeCallback = "release-before-callback",
        "in-flight count released before the callback runs";
    /// `Relaxed` on the in-flight release and on deregister's observation of it, where
    /// Release/Acquire is needed to order the callback's writes before deregister returns.
    RelaxedOrdering = "relaxed-ordering",
        "Relaxed where Release/Acquire is needed on the count";
    /// deregister tests "still in flight" outside the wait lock and then sleeps: the last
    /// callback's wake-up can come in between and is lost.
    LostWakeup = "lost-wakeup",
        "deregister tests the count outside its lock, then sleeps (lost wake-up)";
    /// deregister waits for the callbacks while holding the registry lock; a callback that
    /// calls into the Policy Manager (register, query) then deadlocks.
    WaitUnderRegistryLock = "wait-under-registry-lock",
        "deregister waits while holding the registry lock";
    /// Callbacks are invoked while the hub's queue lock is held; a callback that calls
    /// into the Policy Manager for the same hub then deadlocks.
    CallbackUnderHubLock = "callback-under-hub-lock",
        "callbacks invoked under the hub's queue lock";
    /// Handle slots are reused without a generation check: a stale handle deregisters the
    /// slot's new client (ABA).
    NoGeneration = "no-generation",
        "handle slots reused without a generation (ABA)";
    /// No own-callback check: deregister from inside the client's own callback waits for
    /// itself forever.
    OwnCallbackWaits = "own-callback-waits",
        "deregister from its own callback waits for itself";
    /// No wait-for-graph check: two callbacks deregistering each other's clients deadlock.
    NoCycleCheck = "no-cycle-check",
        "no wait-for graph: mutual deregistration deadlocks";
    /// A hub's removal is put at the front of its queue, overtaking state changes that
    /// were queued before it.
    RemovalOvertakes = "removal-overtakes",
        "hub removal overtakes queued state changes";
    /// Arrival replay for a late-registering client skips the most recently arrived hub.
    ReplayMissesHub = "replay-misses-hub",
        "arrival replay skips a present hub";
    /// A panicking callback's in-flight count is never released; deregister hangs.
    PanicLeaksCount = "panic-leaks-count",
        "a panicking callback leaks its in-flight count";
    /// A panicking callback leaves its "inside a callback" mark on the thread: a later
    /// deregister from that thread, outside any callback, is refused or joins the wait
    /// graph as if it were still inside.
    PanicLeavesCallbackMark = "panic-leaves-callback-mark",
        "a contained panic leaves the thread marked as inside the callback";
    /// The wait-for graph checks only direct waits: a cycle through three clients'
    /// callbacks (A waits for B, B for C, C for A) deadlocks. A failing generated
    /// program shrinks to a ring: A, B, C registered in init, each deregistering the next on an
    /// event; threads 1-3 arrive hubs 2, 3, 1.
    CycleCheckDirectOnly = "cycle-check-direct-only",
        "the wait-for graph checks direct waits only: three-client cycles deadlock";
    /// The drainer delivers one queued item per pass and stops, even short of its own
    /// item: the caller returns with its item still queued, and nobody delivers it until
    /// the hub's next report (an item stranded at hand-off).
    DrainOnePerPass = "drain-one-per-pass",
        "the drainer stops after one item, short of its own: the item is stranded";
    /// `Registration`'s drop ignores a refused deregister: a guard dropped inside its own
    /// callback leaves the client registered, receiving events for ever.
    GuardDropIgnoresRefusal = "guard-drop-ignores-refusal",
        "a guard dropped in its own callback leaves the client registered";
    /// An arrival replay carries the hub's state as it arrived, with the sequence number
    /// of its latest change: the snapshot misses the changes it claims to include.
    ReplayStaleSnapshot = "replay-stale-snapshot",
        "an arrival replay shows the arrival-time state with a later seq";
    /// A connector change is queued but not folded into the hub's state: queries and
    /// later arrival replays show the state before it.
    ChangeNotFolded = "change-not-folded",
        "a change is queued but not folded into the hub's state";
    /// The last release of a closed rundown takes the lock and wakes even when no
    /// deregister sleeps on it: every skip of a closed client costs a system call.
    WakeWithoutWaiter = "wake-without-waiter",
        "a closed client's last release wakes with no deregister waiting";
    /// deregister tests the in-flight count before it sets the waiter flag: the last
    /// release can come in between, see no waiter, and wake nobody.
    WaiterFlagAfterTest = "waiter-flag-after-test",
        "deregister sets its waiter flag after testing the count (lost wake-up)";
    /// The drainer ignores its target and drains until the queue is empty: a producer
    /// that keeps appending holds it (and its call) for ever.
    UnboundedDrain = "unbounded-drain",
        "the drainer ignores its target and drains until the queue is empty";
    /// A drainer that reaches its target stops without waking the callers sleeping
    /// until their items are delivered: they sleep for ever.
    HandoffWakesNobody = "handoff-wakes-nobody",
        "a drainer that reaches its target wakes none of the sleepers";
    /// An append made inside a callback records no obligation: if the hub's drainer has
    /// already passed its own target, the item stays queued with nobody to deliver it.
    ObligationForgotten = "obligation-forgotten",
        "an append inside a callback records no obligation: it is stranded";
    /// A delivery admitted while a call of the client is active calls at once instead of
    /// waiting for its turn: two hubs' deliveries run the client's callback at once.
    CallsOverlap = "calls-overlap",
        "a delivery skips the client's turn: two calls of one client at once";
    /// A delivery that waits for its turn gives its in-flight count back while it sleeps
    /// and calls uncounted once it has the turn: a deregister made meanwhile neither
    /// waits for the call nor stops it.
    TurnMissesDeregister = "turn-misses-deregister",
        "a delivery waiting for its turn gives its count back, then calls uncounted";
    /// A hub's drainer drops the clients it prunes at once, while it still holds the
    /// hub's drain: a context whose `Drop` reports on that hub waits for its own drain.
    ContextDropUnderDrain = "context-drop-under-drain",
        "a pruned client's context is dropped while its hub's drain is held";
    /// A detached client's completion returns without waiting for the calls admitted
    /// before the detach: the driver frees what a running call still uses.
    DetachDoneEarly = "detach-done-early",
        "a detach completion returns while an admitted call still runs";
    /// A detached client's completion sleeps without setting the rundown's waiter flag:
    /// the last release wakes nobody and the completion never fires.
    DetachNeverDone = "detach-never-done",
        "a detach completion sleeps unseen by the last release: it never fires";
    /// `register` shows a new client to the hubs (queues its arrival replays) before it
    /// delivers its Policy Manager arrival.
    ArrivalNotFirst = "arrival-not-first",
        "a client hears a hub's event before its Policy Manager arrival";
    /// `shutdown` delivers the Policy Manager's removal without closing the clients'
    /// deliveries first.
    RemovalNotLast = "removal-not-last",
        "a client hears hub events after the Policy Manager's removal";
    /// `assign_power_level` passes the request to the hardware, then checks the access.
    AccessCheckedLate = "access-checked-late",
        "a power request refused for lack of access still reaches the hardware";
    /// `assign_power_level` checks the client under the registry lock but queues the
    /// request after releasing it: a deregister or shutdown can return in between, and
    /// the request reaches the hardware afterwards. Its two critical sections take gen-loom's
    /// tier 2x1-c1-h1 from the report's executions to 233,799 (measured once).
    PowerRequestUnlocked = "power-request-unlocked",
        "a power request checked before a deregister returned reaches the hardware after it";
    /// The hub reports a power request the hardware rejected as if it had been accepted.
    RejectedRequestReported = "rejected-request-reported",
        "a rejected power request is reported to the clients as a connector change";
    /// A hub's handle is refused as soon as its removal is queued, inside the clients'
    /// `HubRemoval` callbacks too.
    RemovalHidesHub = "removal-hides-hub",
        "a HubRemoval callback can no longer retrieve the hub being removed";
    /// A caller settling its item counts it delivered once the drainer has taken it, not
    /// once every client has heard it: the call (an obligation's settle, an arrival's
    /// kick) goes on while its item is still being delivered. Nothing is stranded.
    DoneBeforeDelivered = "done-before-delivered",
        "a caller counts its item delivered once taken: it goes on before the item reached every client";
    /// The last waiter to leave a closed rundown does not clear its `WAITER` flag: every
    /// later skip of the closed client takes the lock and makes a wake-up call for a
    /// deregister that has already returned.
    WaiterFlagKept = "waiter-flag-kept",
        "the last waiter leaves its flag set: later skips of the client wake nobody";
    /// Reports made inside callbacks are never refused at the queue's capacity: a
    /// callback that keeps reporting (or removes its hub and adds it again) grows the
    /// queue past every bound.
    QueueCapIgnored = "queue-cap-ignored",
        "reports from callbacks are accepted past the hub queue's capacity: the queue has no bound";
    /// Reports made inside callbacks are never refused for the thread's spent budget: a
    /// callback that reports on every event it receives keeps its thread's outermost call
    /// delivering without end.
    ReportBudgetIgnored = "report-budget-ignored",
        "callbacks' reports are accepted past their thread's budget: an outermost call may deliver for ever";
    /// `register` inside callbacks is never refused for the thread's spent budget: a
    /// callback that registers a client on every event it receives keeps its thread's
    /// outermost call greeting without end.
    RegistrationBudgetIgnored = "registration-budget-ignored",
        "callbacks' registrations are accepted past their thread's budget: an outermost call may greet for ever";
    /// The callbacks' budget is refilled at the end of every settling of obligations, a
    /// nested one too (a greeting's replay settles inside the outermost one): a greeting
    /// that reaches a second hub starts with a whole budget, and a chain of clients
    /// registering clients never ends.
    BudgetRefilledNested = "budget-refilled-nested",
        "the callbacks' budget is refilled when a nested settling ends: a greeting's second replay starts a new budget";
    /// `register`, called outside callbacks, does not count its greeting as a settling:
    /// each arrival replay's own settling is then the outermost one and refills the
    /// budget, so the callbacks that the replays of one `register` run may make the
    /// budget's reports once per hub.
    GreetingRefillsBudget = "greeting-refills-budget",
        "register's greeting is not counted as a settling: each hub's arrival replay starts a new budget";
}

/// One protocol step, as the `Probe` hears it. Field names say what they hold.
#[allow(missing_docs)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// A client was registered.
    Registered(ClientHandle),
    /// A hardware change (or a replayed arrival) for `hub` was queued with this seq.
    Queued { hub: HubId, seq: u64 },
    /// Delivery took an in-flight count on `client`: `from` -> `from + 1`.
    InFlightAcquire { client: ClientHandle, from: u64 },
    /// Delivery found `client` closing and skipped it.
    Skipped {
        client: ClientHandle,
        hub: HubId,
        seq: u64,
    },
    /// The callback of `client` is about to be called for `hub`'s event `seq`.
    CallbackBegin {
        client: ClientHandle,
        hub: HubId,
        seq: u64,
    },
    /// The callback of `client` returned (or panicked: `panicked`).
    CallbackEnd {
        client: ClientHandle,
        hub: HubId,
        seq: u64,
        panicked: bool,
    },
    /// Delivery released its in-flight count on `client`: `from` -> `from - 1`.
    InFlightRelease { client: ClientHandle, from: u64 },
    /// A delivery of `hub`'s event `seq` was admitted (`InFlightAcquire` from above 0)
    /// while a call of `client` is active on another thread, and sleeps until a release
    /// hands it the turn (see `rundown`).
    TurnWaits {
        client: ClientHandle,
        hub: HubId,
        seq: u64,
    },
    /// The last reference to `client` goes: its context is dropped (after its last call
    /// returned).
    ContextDrop(ClientHandle),
    /// A detached client's completion starts waiting for its admitted calls.
    DetachWaits(ClientHandle),
    /// That completion fired: the last admitted call has returned.
    DetachDone(ClientHandle),
    /// `deregister(client)` was entered.
    DeregisterEnter(ClientHandle),
    /// `deregister(client)` closed the registration with `in_flight` callbacks running.
    DeregisterClosed {
        client: ClientHandle,
        in_flight: u64,
    },
    /// `deregister(client)` is about to sleep until the in-flight count reaches zero.
    DeregisterSleeps(ClientHandle),
    /// The last in-flight release of `client`'s closed rundown woke the deregister
    /// sleeping on it (the only wake-up call the rundown makes).
    Woke(ClientHandle),
    /// A deregister, detach completion or shutdown that waited on `client`'s rundown
    /// (after `DeregisterSleeps`, `DetachWaits` or `ShutdownSleeps`) has stopped waiting.
    WaiterLeaves(ClientHandle),
    /// `deregister(client)` returns; `ok` is false when it returns an error.
    DeregisterReturn { client: ClientHandle, ok: bool },
    /// `hub` arrived (or arrived again): its arrival is queued, addressed to `clients`
    /// (the registered clients, in the order they will be called).
    HubArrived {
        hub: HubId,
        clients: Vec<ClientHandle>,
    },
    /// Something was submitted to `hub`'s queue under its lock: `appended` is what was
    /// queued (nothing for the kick after an arrival, or for a replay dropped because the
    /// hub's removal is queued) with `ticket` (for the kick: the arrival's ticket; for a
    /// dropped replay 0), and `settle` what the caller does next.
    Submitted {
        hub: HubId,
        appended: Appended,
        ticket: u64,
        settle: Settle,
    },
    /// `hub`'s drainer took the item `seq` (ticket `ticket`) from the front of the queue.
    Took { hub: HubId, seq: u64, ticket: u64 },
    /// `hub`'s drainer reached its target and stopped: every item up to ticket `done` is
    /// delivered; `woke`: it woke the callers sleeping until their turn.
    DrainStop { hub: HubId, done: u64, woke: bool },
    /// A caller sleeping until its item `ticket` of `hub` is delivered woke up; `settle`:
    /// what it does next.
    Awake {
        hub: HubId,
        ticket: u64,
        settle: Settle,
    },
    /// The outermost call settles an obligation its callbacks left: `hub`'s item
    /// `ticket` must be delivered before it returns; `settle`: how.
    Settles {
        hub: HubId,
        ticket: u64,
        settle: Settle,
    },
    /// A deregister made from inside the callbacks of `holding` recorded that they wait
    /// for `client` (the wait-for graph's edge; the cycle check passed).
    WaitFor {
        holding: Vec<ClientHandle>,
        client: ClientHandle,
    },
    /// `deregister` emptied `client`'s slot: from now on its handle is stale.
    Retired(ClientHandle),
    /// A dropped `Registration` deregisters `client` without waiting (waiting refused).
    DetachEnter(ClientHandle),
    /// The callback of `client` is about to be called with one of the Policy Manager's
    /// own events.
    ManagerCallBegin {
        client: ClientHandle,
        event: ManagerEvent,
    },
    /// That call returned (or panicked: `panicked`).
    ManagerCallEnd {
        client: ClientHandle,
        event: ManagerEvent,
        panicked: bool,
    },
    /// The Policy Manager's event for `client` was not delivered: the client was
    /// deregistered (or, for the arrival, the Policy Manager shut down) first, or (for
    /// the removal) it never heard the arrival.
    ManagerSkipped {
        client: ClientHandle,
        event: ManagerEvent,
    },
    /// `register` was called inside a callback: `client`'s greeting (its arrival, then
    /// its showing to the hubs) is owed by the thread's outermost call.
    GreetingOwed(ClientHandle),
    /// `client` is shown to the hubs: later hub arrivals include it, and the hubs present
    /// queue its arrival replays next.
    Shown(ClientHandle),
    /// `client`'s greeting is over: its Policy Manager arrival was called (or skipped)
    /// and its arrival replays were delivered (or dropped), with what their callbacks
    /// caused.
    Greeted(ClientHandle),
    /// `shutdown` began: no registration, hub or call is accepted any more.
    ShutdownEnter,
    /// `shutdown` closed `client` with calls in flight and sleeps until they returned
    /// (like `DeregisterSleeps`; a release may wake it).
    ShutdownSleeps(ClientHandle),
    /// `shutdown` returns: every removal has been delivered.
    ShutdownReturn,
    /// `client`'s power request for `connector` of `hub` was passed to the hardware.
    PowerRequested {
        client: ClientHandle,
        hub: HubId,
        connector: ConnectorId,
    },
    /// The hardware answered `client`'s power request (`accepted`); `reported`: a
    /// connector change was queued for it.
    PowerAnswered {
        client: ClientHandle,
        hub: HubId,
        connector: ConnectorId,
        accepted: bool,
        reported: bool,
    },
    /// That deregistration without waiting is done.
    DetachReturn(ClientHandle),
    /// A call outside callbacks goes on past `hub`'s item `ticket` (its own, an
    /// obligation's, or an arrival's kick): the hub reports every item up to it delivered.
    /// Ticket 0: nothing was appended.
    Settled { hub: HubId, ticket: u64 },
}

/// Which of the Policy Manager's own events a step is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManagerEvent {
    /// `PolicyManagerArrival`.
    Arrival,
    /// `PolicyManagerRemoval`.
    Removal,
}

/// How a caller settles its item: what it does about it after [`Step::Submitted`],
/// [`Step::Awake`] or [`Step::Settles`] (the steps' `settle` field).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settle {
    /// Nothing: the item is already delivered (or nothing was appended).
    Done,
    /// Inside a callback: the item becomes an obligation of the thread, which its
    /// outermost call settles before it returns.
    Owes,
    /// Another thread drains: sleep until woken.
    Sleeps,
    /// The queue is idle: drain up to the item.
    Drains,
}

/// What [`Step::Submitted`] appended to a hub's queue.
#[allow(missing_docs)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Appended {
    /// Nothing: the kick after an arrival, or a replay dropped after the removal.
    Nothing,
    Change {
        seq: u64,
    },
    Removal {
        seq: u64,
    },
    /// An arrival replay for `client`, carrying the hub's state as of `seq`.
    Replay {
        client: ClientHandle,
        seq: u64,
    },
}

/// Hears every protocol step of one Policy Manager, on the thread that takes it.
#[cfg(feature = "checking")]
pub trait Probe: Send + Sync {
    /// Called once per step, synchronously, with no library lock held except where the
    /// step happens under one (none of the steps above does).
    fn step(&self, step: Step);

    /// Whether a panic out of a callback is the client's, to be contained as in
    /// production. A checker reports a deadlock or a data race by panicking on the thread
    /// that hit it, possibly inside a callback; such a panic must reach the checker, not
    /// be contained like a client's. Default: contain everything, as production does.
    fn contain(&self, payload: &(dyn std::any::Any + Send)) -> bool {
        let _ = payload;
        true
    }
}

/// The per-Policy-Manager hooks: which mutant is on, who hears the steps.
#[cfg(feature = "checking")]
#[derive(Clone, Default)]
pub(crate) struct Hooks {
    pub(crate) mutant: Option<Mutant>,
    pub(crate) probe: Option<std::sync::Arc<dyn Probe>>,
}

#[cfg(feature = "checking")]
impl Hooks {
    #[inline]
    pub(crate) fn mutant(&self, m: Mutant) -> bool {
        reach::consult(m);
        self.mutant == Some(m)
    }

    #[inline]
    pub(crate) fn step(&self, f: impl FnOnce() -> Step) {
        if let Some(p) = &self.probe {
            p.step(f());
        }
    }

    pub(crate) fn contain(&self, payload: &(dyn std::any::Any + Send)) -> bool {
        self.probe.as_ref().is_none_or(|p| p.contain(payload))
    }
}

/// Which mutants' code this process has reached: a mutant's hook is consulted exactly
/// where the mutated code would differ, so a run that never consults a mutant's hook
/// runs the same with that mutant switched on (a checker that explores by a fixed seed or
/// exhaustively explores the same executions), and cannot kill it. `gate mutants` reads
/// this from each check's unmutated run to skip the checks that cannot kill a mutant.
#[cfg(feature = "checking")]
pub mod reach {
    use super::Mutant;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// One bit per mutant, by catalog position (`Mutant as usize`): never the loom or
    /// shuttle facade, so recording is no scheduling point of a checker.
    static CONSULTED: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];
    const _: () = assert!(Mutant::ALL.len() <= 128, "CONSULTED has 128 bits");

    #[inline]
    pub(crate) fn consult(m: Mutant) {
        let i = m as usize;
        let (word, bit) = (&CONSULTED[i / 64], 1u64 << (i % 64));
        if word.load(Ordering::Relaxed) & bit == 0 {
            word.fetch_or(bit, Ordering::Relaxed);
        }
    }

    /// The mutants whose hooks this process consulted so far, in catalog order.
    pub fn consulted() -> Vec<Mutant> {
        Mutant::ALL
            .iter()
            .copied()
            .filter(|&m| {
                let i = m as usize;
                CONSULTED[i / 64].load(Ordering::Relaxed) & (1u64 << (i % 64)) != 0
            })
            .collect()
    }
}

/// Production stand-in: no mutant is ever on and no step is ever built.
#[cfg(not(feature = "checking"))]
#[derive(Clone, Default)]
pub(crate) struct Hooks;

#[cfg(not(feature = "checking"))]
impl Hooks {
    #[inline(always)]
    pub(crate) fn mutant(&self, _m: Mutant) -> bool {
        false
    }

    #[inline(always)]
    pub(crate) fn step(&self, _f: impl FnOnce() -> Step) {}

    #[inline(always)]
    pub(crate) fn contain(&self, _payload: &(dyn std::any::Any + Send)) -> bool {
        true
    }
}

#[cfg(all(test, feature = "checking"))]
mod tests {
    use super::*;

    #[test]
    fn a_consulted_hook_is_remembered_by_catalog_position() {
        let last = *Mutant::ALL.last().expect("a catalog");
        reach::consult(last);
        reach::consult(Mutant::ALL[0]);
        let seen = reach::consulted();
        assert!(
            seen.contains(&last) && seen.contains(&Mutant::ALL[0]),
            "{seen:?}"
        );
    }
}

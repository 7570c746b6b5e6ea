//! Monitors: record what clients and the library did, and judge it against the
//! contract's properties as it happens.
//!
//! The monitor watches from the client's side: model callbacks report their own begin and
//! end, and scenarios report what `deregister` returned. It does not trust the library's
//! bookkeeping for any verdict; the library's probe steps (in-flight count changes,
//! deregister sleeping) only add detail to the timeline printed with a violation.
//!
//! A violation never panics where it is found: it may be found inside a callback, whose
//! panic the library contains by design. It is recorded, and [`Monitor::finish`] (called
//! by the scenario on its main thread, after joining every thread) fails the run with the
//! violation, the timeline and the replay command.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use usbpm::checking::{Appended, Probe, Step};
use usbpm::{Access, ClientHandle, Error, Event, HubId, Notification};
use usbpm_spec::Grants;

use crate::base::rt;

/// The contract's properties (docs/INVARIANTS.md numbers them the same way).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Property {
    /// P1: no callback begins on a handle after `deregister` of that handle returned.
    NoCallbackAfterDeregister,
    /// P2: when `deregister` returns, every callback on that handle that began has ended,
    /// and the client's context may be freed (no use after free).
    DeregisterWaits,
    /// P3: no deadlock and no lost wake-up (reported by loom's or shuttle's deadlock
    /// detection, or by the std runner's watchdog when an execution stops progressing).
    NoDeadlock,
    /// P4: every bad input gets its error; a refused call changes nothing.
    BadInputErrors,
    /// P5: per-hub order, arrival replay, nothing after removal, no missed hub.
    HubOrder,
    /// P6: bounded work per call. No wake-up call unless a deregister sleeps; a call
    /// delivers a bounded amount of work it did not cause; the queues stay bounded.
    BoundedWork,
    /// P8: one call at a time: at most one call of a client's callback is active, across
    /// every hub and thread.
    OneCallAtATime,
    /// P9: a context dies outside delivery: its `Drop` runs after the client's last call
    /// returned, and never on a thread that holds a hub's drain outside a callback.
    ContextDiesOutside,
    /// P10: a call outside callbacks goes on past its item (its own, an obligation's, an
    /// arrival's kick) only once the item has reached every client it addresses.
    OwnItemDelivered,
    /// M1: the Policy Manager's arrival is a registration's first event, delivered at
    /// most once (and, checked at the end, once to every client still registered).
    ArrivalFirst,
    /// M2: nothing reaches a client after the Policy Manager's removal.
    NothingAfterRemoval,
    /// M3: a power request's outcome: the hardware sees no request a refused call made,
    /// a rejected request produces no event, an accepted one produces one change.
    PowerRoundTrip,
    /// M4: inside a `HubRemoval` callback the removed hub can still be retrieved.
    RemovalSeesHub,
}

impl Property {
    pub const ALL: [Property; 13] = [
        Property::NoCallbackAfterDeregister,
        Property::DeregisterWaits,
        Property::NoDeadlock,
        Property::BadInputErrors,
        Property::HubOrder,
        Property::BoundedWork,
        Property::OneCallAtATime,
        Property::ContextDiesOutside,
        Property::OwnItemDelivered,
        Property::ArrivalFirst,
        Property::NothingAfterRemoval,
        Property::PowerRoundTrip,
        Property::RemovalSeesHub,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Property::NoCallbackAfterDeregister => "P1",
            Property::DeregisterWaits => "P2",
            Property::NoDeadlock => "P3",
            Property::BadInputErrors => "P4",
            Property::HubOrder => "P5",
            Property::BoundedWork => "P6",
            Property::OneCallAtATime => "P8",
            Property::ContextDiesOutside => "P9",
            Property::OwnItemDelivered => "P10",
            Property::ArrivalFirst => "M1",
            Property::NothingAfterRemoval => "M2",
            Property::PowerRoundTrip => "M3",
            Property::RemovalSeesHub => "M4",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Property::NoCallbackAfterDeregister => "no callback begins after deregister returned",
            Property::DeregisterWaits => {
                "deregister returns only after its callbacks ended (context may be freed)"
            }
            Property::NoDeadlock => "no deadlock, no lost wake-up",
            Property::BadInputErrors => "bad input gets its error and changes nothing",
            Property::HubOrder => "per-hub order, arrival replay, nothing after removal",
            Property::BoundedWork => {
                "bounded work per call: a call delivers only up to its own item; no wake-up call unless a deregister sleeps; bounded queues"
            }
            Property::OneCallAtATime => "one call of a client's callback at a time",
            Property::ContextDiesOutside => {
                "a context is dropped after its last call, outside any hub's drain"
            }
            Property::OwnItemDelivered => {
                "a call goes on past its item only once the item reached every client"
            }
            Property::ArrivalFirst => {
                "the Policy Manager's arrival is a registration's first event, once"
            }
            Property::NothingAfterRemoval => {
                "nothing reaches a client after the Policy Manager's removal"
            }
            Property::PowerRoundTrip => {
                "a refused power request (no access, or after deregister or shutdown returned) reaches no hardware; a rejected one produces no event"
            }
            Property::RemovalSeesHub => "a HubRemoval callback can still retrieve the hub",
        }
    }
}

#[derive(Clone, Debug)]
struct Entry {
    thread: String,
    text: String,
}

/// A recorded violation.
#[derive(Clone, Debug)]
pub struct Violation {
    pub property: Property,
    pub message: String,
    /// Index of the timeline entry at which it was found.
    pub at: usize,
}

#[derive(Default)]
struct HubLog {
    /// (seq, is arrival) of every notification received, in order.
    received: Vec<u64>,
    removed: bool,
}

#[derive(Default)]
struct ClientTrack {
    handle: Option<ClientHandle>,
    /// Callbacks begun and not yet ended: (thread, what, seq), `what` being the hub or
    /// "the Policy Manager".
    in_flight: Vec<(String, String, u64)>,
    /// Calls begun, of any event.
    calls: u64,
    /// The Policy Manager's arrival was delivered (M1).
    greeted: bool,
    /// The Policy Manager's removal was delivered (M2).
    pm_removed: bool,
    /// `deregister` returned `Ok` for this client.
    deregistered: bool,
    hubs: BTreeMap<HubId, HubLog>,
}

#[derive(Default)]
struct State {
    timeline: Vec<Entry>,
    /// Every probe step, with the thread that took it, in the order reported.
    steps: Vec<(String, Step)>,
    violations: Vec<Violation>,
    clients: BTreeMap<String, ClientTrack>,
    names: HashMap<ClientHandle, String>,
    /// Per client, the waiters (deregisters, detach completions, a shutdown) on its
    /// rundown: from their `DeregisterSleeps`, `DetachWaits` or `ShutdownSleeps` to their
    /// `WaiterLeaves` (P6: a release may wake only a client with one).
    waiting: HashMap<ClientHandle, u32>,
    /// Per client, the index in `steps` of the latest `WaiterLeaves`.
    left_at: HashMap<ClientHandle, usize>,
    /// `shutdown` returned (M3: no power request reaches the hardware afterwards).
    shut_down: bool,
    /// Whether each client (raw handle) was granted `ASSIGN_POWER`, as its Policy
    /// Manager arrival said (trace validation's access, which the steps do not carry).
    grants: Grants,
    /// Per thread and hub, the highest ticket the thread submitted or settles (P6: a
    /// drainer takes only items up to one of its own).
    claimed: HashMap<(String, HubId), u64>,
    /// The hubs each thread is draining (from its first `Took` to its `DrainStop`; P9).
    draining: std::collections::HashSet<(String, HubId)>,
    /// Per hub, the item being delivered: its ticket and the thread delivering it (from
    /// its `Took` to the drainer's next `Took` or its `DrainStop`; P10).
    delivering: HashMap<HubId, (u64, String)>,
    /// Per hub, the tickets of the items whose delivery finished (P10).
    delivered: HashMap<HubId, std::collections::BTreeSet<u64>>,
    /// Per hub, the last ticket given and the items queued, by ticket, with the thread that
    /// queued each from outside callbacks (`None`: from inside one) (P6: bounded queues).
    queues: HashMap<HubId, (u64, BTreeMap<u64, Option<String>>)>,
    /// The Policy Manager's limits (P6): its queue capacity and callbacks' budget.
    limits: usbpm::Limits,
    /// Per thread, per hub, the highest ticket it owes (queued inside a callback, not yet
    /// settled: P6's budget).
    owes: HashMap<String, BTreeMap<HubId, u64>>,
    /// Per thread, the clients registered inside its callbacks whose greeting its
    /// outermost call has not made yet (P6's budget).
    greetings: HashMap<String, std::collections::BTreeSet<ClientHandle>>,
    /// Per thread, the reports (and registrations) its callbacks made since it last owed
    /// nothing (P6).
    reports: HashMap<String, usize>,
}

impl State {
    /// Whether the wake-up call `thread` just reported (the last step) on `client` can
    /// have found a waiter. The release decided to wake at its read-modify-write of the
    /// count, after `thread`'s previous step (the release's own report, its
    /// `InFlightRelease` or skip, comes after the read-modify-write and does not count);
    /// a waiter is present from before its `*Sleeps`/`DetachWaits` step to before its
    /// `WaiterLeaves`. So the call is justified exactly when a waiter is still there, or
    /// one left after `thread`'s previous step (steps are reported after their effects,
    /// so no tighter rule holds for correct code).
    fn woke_a_waiter(&self, thread: &str, client: ClientHandle) -> bool {
        if self.waiting.get(&client).is_some_and(|n| *n > 0) {
            return true;
        }
        let now = self.steps.len() - 1;
        let mut mine = self.steps[..now]
            .iter()
            .enumerate()
            .rev()
            .filter(|(_, (t, _))| t == thread);
        let own_report = |step: &Step| match step {
            Step::InFlightRelease { client: c, .. }
            | Step::Skipped { client: c, .. }
            | Step::ManagerSkipped { client: c, .. } => *c == client,
            _ => false,
        };
        let previous = match mine.next() {
            Some((_, (_, step))) if own_report(step) => mine.next().map(|(i, _)| i),
            other => other.map(|(i, _)| i),
        };
        self.left_at
            .get(&client)
            .is_some_and(|left| previous.is_none_or(|p| *left > p))
    }

    /// Whether `thread` is inside a callback (one of its calls began and has not ended).
    fn in_callback(&self, thread: &str) -> bool {
        self.clients
            .values()
            .any(|c| c.in_flight.iter().any(|(th, _, _)| th == thread))
    }

    /// P6's queue bound, on the steps that queue an item (`HubArrived`, `Submitted` with
    /// something appended) or take one (`Took`): the items queued from inside callbacks
    /// number at most the capacity + 1 (a hub's removal is never refused, and a presence
    /// has one), and a thread outside callbacks has at most one item queued. So a queue
    /// holds at most the capacity + 1 + the threads in a call. Returns the violation.
    fn queue_step(&mut self, thread: &str, step: &Step) -> Option<String> {
        let (hub, ticket) = match step {
            Step::HubArrived { hub, .. } => {
                let last = self.queues.get(hub).map_or(0, |q| q.0);
                (*hub, last + 1)
            }
            Step::Submitted {
                hub,
                appended,
                ticket,
                ..
            } if *appended != Appended::Nothing => (*hub, *ticket),
            Step::Took { hub, ticket, .. } => {
                if let Some((_, items)) = self.queues.get_mut(hub) {
                    items.remove(ticket);
                }
                return None;
            }
            _ => return None,
        };
        let owner = (!self.in_callback(thread)).then(|| thread.to_string());
        let capacity = self.limits.queue_capacity.get();
        let (last, items) = self.queues.entry(hub).or_default();
        *last = ticket;
        items.insert(ticket, owner);
        let from_callbacks = items.values().filter(|o| o.is_none()).count();
        let mine = items
            .values()
            .filter(|o| o.as_deref() == Some(thread))
            .count();
        if from_callbacks > capacity + 1 {
            Some(format!(
                "{hub}'s queue holds {from_callbacks} items queued from inside callbacks, past \
                 its capacity {capacity} + 1 (a removal): nothing bounds the queue"
            ))
        } else if mine > 1 {
            Some(format!(
                "this thread has {mine} items queued on {hub} from outside callbacks: a caller \
                 queues its next item only after its last one was delivered"
            ))
        } else {
            None
        }
    }

    /// P6's budget, on the steps that queue a report inside a callback (`Submitted` with a
    /// change and `Owes`, a `HubArrived` inside a callback), register a client inside one
    /// (`GreetingOwed`), record what a thread owes (`Submitted` with `Owes`,
    /// `GreetingOwed`, and `Registered` outside callbacks: `register`'s own greeting, so
    /// one `register` is one debt until its client is greeted) and settle it (`Settled`,
    /// `Greeted`: a greeting is over once its replays and what their callbacks caused were
    /// delivered): a thread's callbacks make at most the budget's reports and
    /// registrations while the thread owes what they caused. (The library refills the
    /// budget when the thread's outermost call has settled its obligations, after the
    /// step that clears the last debt here: never earlier.)
    fn budget_step(&mut self, thread: &str, step: &Step) -> Option<String> {
        let report = match step {
            Step::Submitted {
                hub,
                appended,
                ticket,
                settle: usbpm::checking::Settle::Owes,
            } => {
                let owed = self.owes.entry(thread.to_string()).or_default();
                let t = owed.entry(*hub).or_default();
                *t = (*t).max(*ticket);
                matches!(appended, Appended::Change { .. })
            }
            Step::HubArrived { .. } => self.in_callback(thread),
            // Outside callbacks, `register` owes its own client's greeting: its replays'
            // callbacks spend the call's one budget (not a report itself).
            Step::Registered(client) if !self.in_callback(thread) => {
                let owed = self.greetings.entry(thread.to_string()).or_default();
                owed.insert(*client);
                false
            }
            Step::GreetingOwed(client) => {
                let owed = self.greetings.entry(thread.to_string()).or_default();
                owed.insert(*client);
                true
            }
            Step::Settled { hub, ticket } => {
                if let Some(owed) = self.owes.get_mut(thread) {
                    if owed.get(hub).is_some_and(|t| t <= ticket) {
                        owed.remove(hub);
                    }
                }
                self.clear_paid_debt(thread);
                false
            }
            Step::Greeted(client) => {
                if let Some(owed) = self.greetings.get_mut(thread) {
                    owed.remove(client);
                }
                self.clear_paid_debt(thread);
                false
            }
            _ => false,
        };
        if !report {
            return None;
        }
        let budget = self.limits.callback_reports.get();
        let made = self.reports.entry(thread.to_string()).or_default();
        *made += 1;
        (*made > budget).then(|| {
            format!(
                "this thread's callbacks made {made} reports and registrations while it owed \
                 what they caused, past the budget of {budget}: its outermost call may \
                 deliver without end"
            )
        })
    }

    /// Forgets `thread`'s reports once it owes neither an item nor a greeting.
    fn clear_paid_debt(&mut self, thread: &str) {
        let no_items = self.owes.get(thread).is_none_or(BTreeMap::is_empty);
        let no_greetings = self
            .greetings
            .get(thread)
            .is_none_or(std::collections::BTreeSet::is_empty);
        if no_items && no_greetings {
            self.reports.remove(thread);
        }
    }

    /// The item `hub`'s drainer was delivering (if any) has reached every client.
    fn finish_delivery(&mut self, hub: HubId) {
        if let Some((ticket, _)) = self.delivering.remove(&hub) {
            self.delivered.entry(hub).or_default().insert(ticket);
        }
    }

    /// Records a P6 violation the library's own steps show.
    fn bounded_work_violated(&mut self, thread: String, message: String) {
        self.record(
            thread,
            Property::BoundedWork,
            format!("  lib: {message}"),
            message,
        );
    }

    /// Records a violation of `property` as a timeline entry (`text`, marked) by `thread`.
    fn record(&mut self, thread: String, property: Property, text: String, message: String) {
        self.timeline.push(Entry {
            thread,
            text: format!("{text}   <- VIOLATION {}", property.id()),
        });
        let at = self.timeline.len() - 1;
        self.violations.push(Violation {
            property,
            message,
            at,
        });
    }
}

thread_local! {
    /// The monitor of the execution that ran last on this OS thread (the checkers run
    /// their modelled threads on the caller's OS thread), so that a failure the checker
    /// reports itself (deadlock, race) can still be shown with its timeline.
    static LAST: std::cell::RefCell<Option<Arc<Monitor>>> = const { std::cell::RefCell::new(None) };
}

/// The last monitor created in the process: for std runs, whose executions each get a
/// thread of their own. (The gate runs each check in its own process.)
static LAST_IN_PROCESS: Mutex<Option<Arc<Monitor>>> = Mutex::new(None);

/// The recorded steps of the last execution started on this OS thread, or else in this
/// process, with the access its clients were granted: the trace of an execution the
/// checker stopped (deadlock).
pub fn last_steps() -> Option<(Vec<(String, Step)>, Grants)> {
    LAST.with(|l| l.borrow().clone())
        .or_else(|| {
            LAST_IN_PROCESS
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
        })
        .map(|m| (m.steps(), m.grants()))
}

/// The monitor of the last execution started in this process (a std execution runs on a
/// thread of its own; its runner watches it through this).
pub fn last_in_process() -> Option<Arc<Monitor>> {
    LAST_IN_PROCESS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
}

/// The timeline of the last execution started on this OS thread, or else in this process.
pub fn last_timeline() -> Option<String> {
    LAST.with(|l| l.borrow().clone())
        .or_else(|| {
            LAST_IN_PROCESS
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
        })
        .map(|m| m.timeline())
}

/// A driver's context as the model keeps it: the driver frees it once `deregister`
/// returned `Ok`, and a callback that uses it afterwards is a use after free (P2). Under
/// loom the use and the free also touch [`rt::DriverMemory`], so a missing
/// happens-before is a data race loom reports.
pub struct DriverContext {
    label: String,
    freed: rt::AtomicBool,
    memory: rt::DriverMemory,
}

impl DriverContext {
    pub fn new(label: impl Into<String>) -> Self {
        DriverContext {
            label: label.into(),
            freed: rt::AtomicBool::new(false),
            memory: rt::DriverMemory::new(),
        }
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    /// The callback uses its context: a use after free if the driver already freed it.
    pub fn touch(&self, monitor: &Monitor, when: &str, n: &Notification) {
        if self.freed.load(std::sync::atomic::Ordering::SeqCst) {
            monitor.violation(
                Property::DeregisterWaits,
                format!(
                    "callback of {} used its freed context ({when} {} seq {})",
                    self.label,
                    about(n),
                    n.seq
                ),
            );
        }
        self.memory.update();
    }

    /// The driver frees the context (after `deregister` returned `Ok`).
    pub fn free(&self, monitor: &Monitor) {
        monitor.note(format!("driver frees {}'s context", self.label));
        self.freed.store(true, std::sync::atomic::Ordering::SeqCst);
        self.memory.free();
    }
}

/// What a notification is about, for timelines: its hub, or the Policy Manager.
pub fn about(n: &Notification) -> String {
    match n.hub_id() {
        Some(hub) => hub.to_string(),
        None => "the Policy Manager".to_string(),
    }
}

/// Records one execution of a scenario and judges it.
#[derive(Default)]
pub struct Monitor {
    state: Mutex<State>,
}

fn kind(e: &Event) -> &'static str {
    match e {
        Event::PolicyManagerArrival { .. } => "Policy Manager arrival",
        Event::PolicyManagerRemoval => "Policy Manager removal",
        Event::HubArrival(_) => "arrival",
        Event::ConnectorStateChange { .. } => "connector change",
        Event::HubRemoval => "removal",
    }
}

/// P5 for one hub event of `label`: per-hub order, a new presence starting with its
/// arrival, nothing after the hub's removal.
fn hub_order(
    label: &str,
    hub: HubId,
    n: &Notification,
    log: &mut HubLog,
    found: &mut Vec<(Property, String)>,
) {
    let is_arrival = matches!(n.event, Event::HubArrival(_));
    if log.removed && is_arrival {
        // The hub arrived again: a new presence starts a new history.
        *log = HubLog::default();
    }
    if log.removed {
        found.push((
            Property::HubOrder,
            format!("{label} got {hub} seq {} after that hub's removal", n.seq),
        ));
    } else if let Some(&last) = log.received.last() {
        if is_arrival || n.seq != last + 1 {
            found.push((
                Property::HubOrder,
                format!(
                    "{label} got {hub} {} seq {} right after seq {last} (expected seq {})",
                    kind(&n.event),
                    n.seq,
                    last + 1
                ),
            ));
        }
    } else if !is_arrival {
        found.push((
            Property::HubOrder,
            format!(
                "{label}'s first event of {hub} is {} seq {}, not its arrival",
                kind(&n.event),
                n.seq
            ),
        ));
    }
    log.received.push(n.seq);
    if matches!(n.event, Event::HubRemoval) {
        log.removed = true;
    }
}

impl Monitor {
    pub fn new() -> Arc<Self> {
        let m = Arc::new(Monitor::default());
        LAST.with(|l| *l.borrow_mut() = Some(m.clone()));
        *LAST_IN_PROCESS.lock().unwrap_or_else(|p| p.into_inner()) = Some(m.clone());
        m
    }

    fn with<R>(&self, f: impl FnOnce(&mut State, &str) -> R) -> R {
        // Read the thread name before locking: it may touch the checker's thread-locals.
        let thread = rt::thread_name();
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut s, &thread)
    }

    /// The limits of the execution's Policy Manager (P6's queue bound and budget).
    pub fn set_limits(&self, limits: usbpm::Limits) {
        self.with(|s, _| s.limits = limits);
    }

    /// Adds a line to the timeline.
    pub fn note(&self, text: impl Into<String>) {
        let text = text.into();
        self.with(|s, t| {
            s.timeline.push(Entry {
                thread: t.to_string(),
                text,
            })
        });
    }

    /// Records a violation of `property` at the current point of the timeline.
    pub fn violation(&self, property: Property, message: impl Into<String>) {
        let message = message.into();
        self.with(|s, t| s.record(t.to_string(), property, message.clone(), message));
    }

    /// Records a violation of `property` unless `ok`.
    pub fn check(&self, property: Property, ok: bool, message: impl FnOnce() -> String) {
        if !ok {
            self.violation(property, message());
        }
    }

    /// Names a client in timelines; called when `register` returns.
    pub fn registered(&self, label: &str, handle: ClientHandle) {
        self.with(|s, t| {
            s.names.insert(handle, label.to_string());
            s.clients.entry(label.to_string()).or_default().handle = Some(handle);
            s.timeline.push(Entry {
                thread: t.to_string(),
                text: format!("register {label} -> {handle}"),
            });
        });
    }

    /// A model callback of `label` begins handling `n`.
    pub fn callback_begin(&self, label: &str, n: &Notification) {
        let mut found = Vec::new();
        let what = about(n);
        self.with(|s, t| {
            s.timeline.push(Entry {
                thread: t.to_string(),
                text: format!("callback {label} begins: {what} seq {} {}", n.seq, kind(&n.event)),
            });
            let c = s.clients.entry(label.to_string()).or_default();
            if c.deregistered {
                found.push((
                    Property::NoCallbackAfterDeregister,
                    format!("callback of {label} began ({what} seq {}) after deregister({label}) returned Ok", n.seq),
                ));
            }
            if c.pm_removed {
                found.push((
                    Property::NothingAfterRemoval,
                    format!("{label} got {what} {} after the Policy Manager's removal", kind(&n.event)),
                ));
            }
            match (&n.event, n.hub_id()) {
                (Event::PolicyManagerArrival { .. }, _) => {
                    if c.calls > 0 {
                        found.push((
                            Property::ArrivalFirst,
                            format!(
                                "{label} got the Policy Manager's arrival after {} other call(s){}",
                                c.calls,
                                if c.greeted { ", and it is the second" } else { "" }
                            ),
                        ));
                    }
                    c.greeted = true;
                }
                (Event::PolicyManagerRemoval, _) => {
                    if !c.greeted {
                        found.push((
                            Property::ArrivalFirst,
                            format!("{label} got the Policy Manager's removal without its arrival"),
                        ));
                    }
                    c.pm_removed = true;
                }
                (_, Some(hub)) => {
                    if !c.greeted {
                        found.push((
                            Property::ArrivalFirst,
                            format!(
                                "{label}'s call for {hub} seq {} {} came before its Policy Manager arrival",
                                n.seq,
                                kind(&n.event)
                            ),
                        ));
                    }
                    let log = c.hubs.entry(hub).or_default();
                    hub_order(label, hub, n, log, &mut found);
                }
                (_, None) => unreachable!("a hub event without a hub"),
            }
            if let Some((th, what_then, seq)) = c.in_flight.first() {
                found.push((
                    Property::OneCallAtATime,
                    format!(
                        "callback of {label} began ({what} seq {}) while its call for {what_then} seq {seq} was still running on {th}",
                        n.seq
                    ),
                ));
            }
            c.calls += 1;
            c.in_flight.push((t.to_string(), what.clone(), n.seq));
        });
        for (p, m) in found {
            self.violation(p, m);
        }
    }

    /// A model callback of `label` returns from handling `n`.
    pub fn callback_end(&self, label: &str, n: &Notification) {
        let what = about(n);
        self.with(|s, t| {
            s.timeline.push(Entry {
                thread: t.to_string(),
                text: format!("callback {label} ends: {what} seq {}", n.seq),
            });
            let c = s.clients.entry(label.to_string()).or_default();
            if let Some(i) = c
                .in_flight
                .iter()
                .position(|(th, h, q)| th == t && *h == what && *q == n.seq)
            {
                c.in_flight.remove(i);
            }
        });
    }

    /// At the end of an execution: `label`, registered outside callbacks and not
    /// deregistered before its `register` returned, heard the Policy Manager's arrival
    /// (M1: exactly once, with the first-and-once half judged at each call).
    pub fn expect_greeted(&self, label: &str) {
        let greeted = self.with(|s, _| s.clients.get(label).is_some_and(|c| c.greeted));
        self.check(Property::ArrivalFirst, greeted, || {
            format!("{label} is registered but never heard the Policy Manager's arrival")
        });
    }

    /// `deregister(label)` was called.
    pub fn deregister_called(&self, label: &str) {
        self.note(format!("deregister({label}) called"));
    }

    /// `deregister(label)` returned `result`. Judges P2 (nothing of it still running).
    pub fn deregister_returned(&self, label: &str, result: &Result<(), Error>) {
        self.returned(
            label,
            format!("deregister({label}) returns {result:?}"),
            result.is_ok(),
        );
    }

    /// A wait for `label`'s calls returned (`text` on the timeline); if it succeeded
    /// (`ok`), nothing of the client may still run (P2) or begin later (P1).
    fn returned(&self, label: &str, text: String, ok: bool) {
        let mut running = Vec::new();
        let what = text.clone();
        self.with(|s, t| {
            s.timeline.push(Entry {
                thread: t.to_string(),
                text,
            });
            let c = s.clients.entry(label.to_string()).or_default();
            if ok {
                c.deregistered = true;
                running = c.in_flight.clone();
            }
        });
        for (th, hub, seq) in running {
            self.violation(
                Property::DeregisterWaits,
                format!(
                    "{what} while {label}'s callback for {hub} seq {seq} was still running on {th}"
                ),
            );
        }
    }

    /// The client's guard was dropped inside its own callback: it is deregistered without
    /// waiting. Calls already admitted, on this thread or another, may still begin and
    /// run, so neither P1 nor P2 applies from here; what the contract promises instead (no
    /// event reported after the drop reaches the client) is the results oracle's to judge.
    pub fn detached(&self, label: &str) {
        self.note(format!(
            "{label}'s guard dropped in its own callback: detached"
        ));
    }

    /// Whether the library detached the client `handle` (its probe reported the detach
    /// entered): a guard's drop tells its caller nothing of whether it waited or detached.
    pub fn detach_entered(&self, handle: ClientHandle) -> bool {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .steps
            .iter()
            .any(|(_, step)| *step == Step::DetachEnter(handle))
    }

    /// The completion of `label`'s detach returned (`Detached::wait`): every call of its
    /// callback must have ended, and none may begin from here on (P2 and P1, as for a
    /// deregister that returned `Ok`).
    pub fn detach_done(&self, label: &str) {
        self.returned(label, format!("{label}'s detach completion returns"), true);
    }

    /// At the end of a scenario: `label` (still registered) must have seen every event of
    /// `hub` up to `last_seq`, starting with an arrival.
    pub fn expect_complete(&self, label: &str, hub: HubId, last_seq: u64) {
        let got = self.with(|s, _| {
            s.clients
                .get(label)
                .and_then(|c| c.hubs.get(&hub))
                .map(|l| l.received.last().copied())
        });
        match got {
            Some(Some(last)) if last == last_seq => {}
            other => self.violation(
                Property::HubOrder,
                format!("{label} is registered but its last event of {hub} is {other:?}, expected seq {last_seq}"),
            ),
        }
    }

    /// The access each client heard with its Policy Manager arrival: whether it may
    /// assign power levels, by raw handle.
    pub fn grants(&self) -> Grants {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .grants
            .clone()
    }

    /// `client`'s callback heard its Policy Manager arrival, granting `access`.
    pub fn granted(&self, client: ClientHandle, access: Access) {
        self.with(|s, _| {
            s.grants
                .insert(client.into_raw(), access.allows(Access::ASSIGN_POWER));
        });
    }

    /// Every protocol step the library's probe reported, with the thread that took it,
    /// in the order reported (the trace that `crate::judge::trace` validates).
    pub fn steps(&self) -> Vec<(String, Step)> {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .steps
            .clone()
    }

    /// How much the execution has done: steps heard and timeline lines, a number that
    /// grows while any thread makes progress.
    pub fn progress(&self) -> usize {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.steps.len() + s.timeline.len()
    }

    /// Every violation recorded so far.
    pub fn violations(&self) -> Vec<Violation> {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .violations
            .clone()
    }

    /// The timeline, one line per step, with the violations marked.
    /// Safe to call outside the checker's model (it reads no checker state).
    pub fn timeline(&self) -> String {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        for (i, e) in s.timeline.iter().enumerate() {
            let _ = writeln!(out, "  {:>3}  {:<16} {}", i + 1, e.thread, e.text);
        }
        out
    }

    /// Fails the run (panics) with a readable report if any property was violated.
    pub fn finish(&self, replay: &str) {
        let violations = self.violations();
        if violations.is_empty() {
            return;
        }
        let mut msg = String::new();
        let first = &violations[0];
        let _ = writeln!(
            msg,
            "\nPROPERTY VIOLATED: {} {}",
            first.property.id(),
            first.property.title()
        );
        for v in &violations {
            let _ = writeln!(
                msg,
                "  {} (step {}): {}",
                v.property.id(),
                v.at + 1,
                v.message
            );
        }
        let _ = writeln!(
            msg,
            "\nTimeline of the failing interleaving (step, thread, what happened):"
        );
        msg.push_str(&self.timeline());
        let _ = writeln!(msg, "\nReplay: {replay}");
        panic!("{msg}");
    }

    fn name_of(&self, s: &State, h: ClientHandle) -> String {
        s.names.get(&h).cloned().unwrap_or_else(|| h.to_string())
    }
}

impl Probe for Monitor {
    fn step(&self, step: Step) {
        let thread = rt::thread_name();
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.steps.push((thread.clone(), step.clone()));
        let woke_a_waiter = match step {
            Step::Woke(c) => s.woke_a_waiter(&thread, c),
            _ => false,
        };
        // Both P6 rules see every step (each keeps its own state).
        let queue = s.queue_step(&thread, &step);
        let budget = s.budget_step(&thread, &step);
        if queue.is_some() || budget.is_some() {
            for message in queue.into_iter().chain(budget) {
                s.bounded_work_violated(thread.clone(), message);
            }
            return;
        }
        let text = match step {
            Step::InFlightAcquire { client, from } => {
                format!(
                    "  lib: in-flight count of {} {} -> {}",
                    self.name_of(&s, client),
                    from,
                    from + 1
                )
            }
            Step::InFlightRelease { client, from } => {
                format!(
                    "  lib: in-flight count of {} {} -> {}",
                    self.name_of(&s, client),
                    from,
                    from.saturating_sub(1)
                )
            }
            Step::Skipped { client, hub, seq } => {
                format!(
                    "  lib: {} is closed, {hub} seq {seq} not delivered to it",
                    self.name_of(&s, client)
                )
            }
            Step::DeregisterEnter(c) => {
                format!("  lib: deregister({}) enters", self.name_of(&s, c))
            }
            Step::DeregisterClosed { client, in_flight } => {
                format!(
                    "  lib: {} closed with {in_flight} callback(s) in flight",
                    self.name_of(&s, client)
                )
            }
            Step::DeregisterSleeps(c) => {
                *s.waiting.entry(c).or_default() += 1;
                format!(
                    "  lib: deregister({}) sleeps until drained",
                    self.name_of(&s, c)
                )
            }
            Step::Woke(c) if woke_a_waiter => format!(
                "  lib: last release wakes deregister({})",
                self.name_of(&s, c)
            ),
            Step::Woke(c) => {
                let message = format!(
                    "a release of {} made a wake-up call, but no deregister, detach completion or shutdown waited on it since this thread's previous step",
                    self.name_of(&s, c)
                );
                s.bounded_work_violated(thread, message);
                return;
            }
            Step::Queued { hub, seq } => format!("  lib: {hub} seq {seq} queued"),
            Step::WaiterLeaves(c) => {
                if let Some(n) = s.waiting.get_mut(&c) {
                    *n = n.saturating_sub(1);
                }
                let at = s.steps.len() - 1;
                s.left_at.insert(c, at);
                format!("  lib: the wait on {}'s calls ends", self.name_of(&s, c))
            }
            Step::DetachWaits(c) => {
                *s.waiting.entry(c).or_default() += 1;
                format!(
                    "  lib: {}'s detach completion waits for its admitted calls",
                    self.name_of(&s, c)
                )
            }
            // The completion fires once every admitted call has returned, and no call
            // begins after it (P2 and P1, as for a deregister that returned `Ok`).
            Step::DetachDone(c) => {
                let name = self.name_of(&s, c);
                let text = format!("  lib: {name}'s detach completion fires");
                let client = s.clients.entry(name.clone()).or_default();
                client.deregistered = true;
                match client.in_flight.first().cloned() {
                    Some((th, hub, seq)) => s.record(
                        thread,
                        Property::DeregisterWaits,
                        text,
                        format!(
                            "{name}'s detach completion fired while its call for {hub} seq {seq} was still running on {th}"
                        ),
                    ),
                    None => s.timeline.push(Entry { thread, text }),
                }
                return;
            }
            Step::DrainStop { hub, .. } => {
                s.draining.remove(&(thread.clone(), hub));
                s.finish_delivery(hub);
                return;
            }
            // P10: a call goes on past an item only once it has reached every client.
            Step::Settled { hub, ticket } => {
                if ticket == 0 || s.delivered.get(&hub).is_some_and(|d| d.contains(&ticket)) {
                    return;
                }
                let text = format!("  lib: goes on past {hub}'s item {ticket}");
                let message = match s.delivering.get(&hub) {
                    Some((t, th)) if *t == ticket => format!(
                        "this call went on past {hub}'s item {ticket} while {th} was still delivering it: not every client had heard it"
                    ),
                    _ => format!(
                        "this call went on past {hub}'s item {ticket}, which no drainer has delivered"
                    ),
                };
                s.record(thread, Property::OwnItemDelivered, text, message);
                return;
            }
            Step::TurnWaits { client, hub, seq } => format!(
                "  lib: {} is busy on another thread; {hub} seq {seq} waits for its turn",
                self.name_of(&s, client)
            ),
            Step::ContextDrop(client) => {
                let name = self.name_of(&s, client);
                let text = format!("  lib: {name}'s context is dropped");
                let running = s
                    .clients
                    .get(&name)
                    .and_then(|c| c.in_flight.first().cloned());
                let in_callback = s.in_callback(&thread);
                let drain = s
                    .draining
                    .iter()
                    .find(|(th, _)| *th == thread)
                    .map(|(_, hub)| *hub);
                let message = match (running, drain) {
                    (Some((th, hub, seq)), _) => Some(format!(
                        "{name}'s context was dropped while its call for {hub} seq {seq} was running on {th}"
                    )),
                    (None, Some(hub)) if !in_callback => Some(format!(
                        "{name}'s context was dropped by a thread holding {hub}'s drain, outside any callback"
                    )),
                    _ => None,
                };
                match message {
                    Some(message) => {
                        s.record(thread, Property::ContextDiesOutside, text, message);
                    }
                    None => s.timeline.push(Entry { thread, text }),
                }
                return;
            }
            Step::Submitted { hub, ticket, .. } | Step::Settles { hub, ticket, .. } => {
                let claim = s.claimed.entry((thread.clone(), hub)).or_insert(0);
                *claim = (*claim).max(ticket);
                return;
            }
            Step::Took { hub, seq, ticket } => {
                s.draining.insert((thread.clone(), hub));
                s.finish_delivery(hub);
                s.delivering.insert(hub, (ticket, thread.clone()));
                let claim = s.claimed.get(&(thread.clone(), hub)).copied().unwrap_or(0);
                if ticket <= claim {
                    format!("  lib: {hub} seq {seq} (ticket {ticket}) taken for delivery")
                } else {
                    let message = format!(
                        "this thread took {hub}'s item {ticket} (seq {seq}) for delivery, beyond \
                         the last item it queued or owes ({claim}): a call delivering work it \
                         did not cause"
                    );
                    s.bounded_work_violated(thread, message);
                    return;
                }
            }
            Step::ManagerSkipped { client, event } => format!(
                "  lib: {}'s Policy Manager {event:?} not delivered (deregistered first, or never greeted)",
                self.name_of(&s, client)
            ),
            Step::GreetingOwed(client) => format!(
                "  lib: {} registered inside a callback; its greeting is owed to the outermost call",
                self.name_of(&s, client)
            ),
            Step::Shown(client) => {
                format!("  lib: {} shown to the hubs", self.name_of(&s, client))
            }
            Step::Greeted(client) => {
                format!("  lib: {}'s greeting is over", self.name_of(&s, client))
            }
            Step::ShutdownEnter => "  lib: shutdown begins".to_string(),
            Step::ShutdownSleeps(c) => {
                *s.waiting.entry(c).or_default() += 1;
                format!(
                    "  lib: shutdown closed {} and sleeps until its calls returned",
                    self.name_of(&s, c)
                )
            }
            Step::ShutdownReturn => {
                s.shut_down = true;
                "  lib: shutdown returns".to_string()
            }
            Step::PowerRequested {
                client,
                hub,
                connector,
            } => {
                let name = self.name_of(&s, client);
                let text = format!(
                    "  lib: {name}'s power request for {connector} of {hub} passed to the hardware"
                );
                let after = if s.shut_down {
                    Some("shutdown")
                } else if s.clients.get(&name).is_some_and(|c| c.deregistered) {
                    Some("its deregister")
                } else {
                    None
                };
                if let Some(after) = after {
                    let message = format!(
                        "{name}'s power request for {connector} of {hub} reached the \
                         hardware after {after} returned"
                    );
                    s.record(thread, Property::PowerRoundTrip, text, message);
                    return;
                }
                text
            }
            Step::PowerAnswered {
                client,
                hub,
                connector,
                accepted,
                reported,
            } => {
                let text = format!(
                    "  lib: hardware {} {}'s power request for {connector} of {hub}; change reported: {reported}",
                    if accepted { "accepts" } else { "rejects" },
                    self.name_of(&s, client)
                );
                if !accepted && reported {
                    let message = format!(
                        "the hardware rejected {}'s power request for {connector} of {hub}, \
                         and a connector change was reported for it",
                        self.name_of(&s, client)
                    );
                    s.record(thread, Property::PowerRoundTrip, text, message);
                    return;
                }
                text
            }
            // Begin/end/return are recorded from the client's side by the model itself.
            Step::ManagerCallBegin { .. } | Step::ManagerCallEnd { .. } => return,
            Step::Registered(_)
            | Step::CallbackBegin { .. }
            | Step::CallbackEnd { .. }
            | Step::DeregisterReturn { .. }
            | Step::HubArrived { .. }
            | Step::Awake { .. }
            | Step::WaitFor { .. }
            | Step::Retired(_)
            | Step::DetachEnter(_)
            | Step::DetachReturn(_) => return,
        };
        s.timeline.push(Entry { thread, text });
    }

    /// Only the scenarios' deliberate panics are the client's; anything else out of a
    /// callback is the checker reporting a deadlock or race, and must reach it.
    fn contain(&self, payload: &(dyn std::any::Any + Send)) -> bool {
        payload
            .downcast_ref::<crate::base::panics::ModelPanic>()
            .is_some()
    }
}

#[cfg(all(test, not(any(feature = "loom", feature = "shuttle"))))]
mod tests {
    use super::*;

    /// Runs `f` with `m` on a std thread named `thread` (the monitor tells threads apart
    /// by name), and waits for it.
    fn on_thread(m: &Arc<Monitor>, thread: &str, f: impl FnOnce(&Monitor) + Send + 'static) {
        let m = m.clone();
        std::thread::Builder::new()
            .name(thread.into())
            .spawn(move || f(&m))
            .expect("spawn")
            .join()
            .expect("join");
    }

    /// Plays `steps` (thread name, step) into a fresh monitor, each on a std thread of
    /// that name in turn; returns the properties violated.
    fn play(steps: Vec<(&'static str, Step)>) -> Vec<Property> {
        let m = Monitor::new();
        for (thread, step) in steps {
            on_thread(&m, thread, move |m| m.step(step));
        }
        m.violations().into_iter().map(|v| v.property).collect()
    }

    #[test]
    fn a_wake_up_needs_a_waiter_since_the_releasers_previous_step() {
        let a = ClientHandle::from_raw(1);
        let sleeps = ("main", Step::DeregisterSleeps(a));
        let leaves = ("main", Step::WaiterLeaves(a));
        let before = ("d", Step::InFlightAcquire { client: a, from: 0 });
        let woke = ("d", Step::Woke(a));
        let release = ("d", Step::InFlightRelease { client: a, from: 1 });
        // The waiter is still there, or left after the releaser's previous step (the
        // release decided to wake between that step and its report).
        assert_eq!(play(vec![sleeps.clone(), woke.clone()]), vec![]);
        assert_eq!(
            play(vec![
                before.clone(),
                sleeps.clone(),
                leaves.clone(),
                woke.clone()
            ]),
            vec![]
        );
        // The waiter left before the releaser's previous step, or never came.
        assert_eq!(
            play(vec![
                sleeps.clone(),
                leaves.clone(),
                before.clone(),
                woke.clone()
            ]),
            vec![Property::BoundedWork]
        );
        assert_eq!(play(vec![woke.clone()]), vec![Property::BoundedWork]);
        // The release's own report comes after its read-modify-write: it does not count.
        assert_eq!(
            play(vec![
                before.clone(),
                sleeps.clone(),
                leaves.clone(),
                release.clone(),
                woke.clone()
            ]),
            vec![]
        );
        assert_eq!(
            play(vec![sleeps, leaves, before, release, woke]),
            vec![Property::BoundedWork]
        );
    }

    #[test]
    fn a_queue_holds_at_most_capacity_plus_one_from_callbacks_and_one_per_caller() {
        let hub = HubId(1);
        let change = |ticket| Step::Submitted {
            hub,
            appended: Appended::Change { seq: ticket },
            ticket,
            settle: usbpm::checking::Settle::Owes,
        };
        let took = |ticket| Step::Took {
            hub,
            seq: ticket,
            ticket,
        };
        // One thread plays a callback of A (from `callback_begin` on) that queues
        // `from_callback` items, after `before` steps of another thread outside callbacks.
        let run = |before: Vec<Step>, from_callback: Vec<Step>| {
            let m = Monitor::new();
            m.set_limits(usbpm::Limits {
                queue_capacity: std::num::NonZeroUsize::new(1).unwrap(),
                ..Default::default()
            });
            on_thread(&m, "caller", move |m| {
                before.into_iter().for_each(|s| m.step(s))
            });
            on_thread(&m, "drainer", move |m| {
                let n = Notification {
                    hub: Some(usbpm::HubHandle {
                        id: hub,
                        presence: 1,
                    }),
                    seq: 0,
                    event: Event::HubRemoval,
                };
                m.callback_begin("A", &n);
                from_callback.into_iter().for_each(|s| m.step(s));
            });
            // (The bare `callback_begin` is judged too, by M1 and P5: not looked at here.)
            m.violations()
                .into_iter()
                .map(|v| v.property)
                .filter(|p| *p == Property::BoundedWork)
                .collect::<Vec<_>>()
        };
        let arrived = Step::HubArrived {
            hub,
            clients: vec![],
        };
        // Capacity 1 + 1 from callbacks, besides the arrival a caller queued: fine.
        assert_eq!(
            run(vec![arrived.clone()], vec![change(2), change(3)]),
            vec![]
        );
        // A third item from callbacks is past the bound, unless one was taken meanwhile.
        assert_eq!(
            run(vec![arrived.clone()], vec![change(2), change(3), change(4)]),
            vec![Property::BoundedWork]
        );
        assert_eq!(
            run(
                vec![arrived.clone()],
                vec![change(2), change(3), took(2), change(4)]
            ),
            vec![]
        );
        // A caller outside callbacks has one item queued at most.
        let mine = |ticket| Step::Submitted {
            hub,
            appended: Appended::Change { seq: ticket },
            ticket,
            settle: usbpm::checking::Settle::Sleeps,
        };
        let kick = Step::Submitted {
            hub,
            appended: Appended::Nothing,
            ticket: 1,
            settle: usbpm::checking::Settle::Drains,
        };
        assert_eq!(
            run(vec![arrived.clone(), kick, took(1), mine(2)], vec![]),
            vec![]
        );
        assert_eq!(
            run(vec![arrived, mine(2)], vec![]),
            vec![Property::BoundedWork]
        );
    }

    #[test]
    fn a_threads_callbacks_report_at_most_the_budget_while_it_owes() {
        let hub = HubId(1);
        let report = |ticket| Step::Submitted {
            hub,
            appended: Appended::Change { seq: ticket },
            ticket,
            settle: usbpm::checking::Settle::Owes,
        };
        let settled = |ticket| Step::Settled { hub, ticket };
        let run = |steps: Vec<Step>| {
            let m = Monitor::new();
            m.set_limits(usbpm::Limits {
                callback_reports: std::num::NonZeroUsize::new(2).unwrap(),
                ..Default::default()
            });
            on_thread(&m, "drainer", move |m| {
                steps.into_iter().for_each(|s| m.step(s))
            });
            // (No callback began, so the queue rule sees one caller with many items
            // queued: only the budget's verdicts are looked at here.)
            m.violations()
                .into_iter()
                .filter(|v| v.message.contains("budget"))
                .map(|v| v.property)
                .collect::<Vec<_>>()
        };
        // Two reports owed, then a third: past the budget.
        assert_eq!(run(vec![report(2), report(3)]), vec![]);
        assert_eq!(
            run(vec![report(2), report(3), report(4)]),
            vec![Property::BoundedWork]
        );
        // Settling only the first does not clear the debt; settling up to the last does.
        assert_eq!(
            run(vec![report(2), report(3), settled(2), report(4)]),
            vec![Property::BoundedWork]
        );
        assert_eq!(
            run(vec![report(2), report(3), settled(3), report(4), report(5)]),
            vec![]
        );
        // A registration inside a callback counts as a report, and its greeting is owed
        // until it is over (its arrival and its replays delivered).
        let (a, b, c) = (
            ClientHandle::from_raw(1),
            ClientHandle::from_raw(2),
            ClientHandle::from_raw(3),
        );
        let greeted = Step::Greeted;
        assert_eq!(run(vec![report(2), Step::GreetingOwed(a)]), vec![]);
        assert_eq!(
            run(vec![
                report(2),
                Step::GreetingOwed(a),
                Step::GreetingOwed(b)
            ]),
            vec![Property::BoundedWork]
        );
        assert_eq!(
            run(vec![
                Step::GreetingOwed(a),
                Step::GreetingOwed(b),
                greeted(a),
                Step::GreetingOwed(c)
            ]),
            vec![Property::BoundedWork]
        );
        assert_eq!(
            run(vec![
                Step::GreetingOwed(a),
                Step::GreetingOwed(b),
                greeted(a),
                greeted(b),
                Step::GreetingOwed(c)
            ]),
            vec![]
        );
        // Items and greetings are one debt: paying one part does not refill the budget.
        assert_eq!(
            run(vec![
                report(2),
                Step::GreetingOwed(a),
                settled(2),
                report(3)
            ]),
            vec![Property::BoundedWork]
        );
        // A `register` outside callbacks owes its own client's greeting: the reports its
        // replays' callbacks make are one debt until the greeting is over, even when the
        // first replay's items were settled (refilling there is `greeting-refills-budget`).
        let replays = |end: Vec<Step>| {
            let mut steps = vec![Step::Registered(a), report(2), report(3), settled(3)];
            steps.extend(end);
            run(steps)
        };
        assert_eq!(replays(vec![report(4)]), vec![Property::BoundedWork]);
        assert_eq!(replays(vec![greeted(a), report(4), report(5)]), vec![]);
    }
}

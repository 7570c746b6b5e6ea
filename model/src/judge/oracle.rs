//! The results oracle: every value a program's calls returned and every event its
//! callbacks saw must be explained by the sequential reference, in some order of the
//! calls consistent with real time, except where the contract allows otherwise
//! (docs/INVARIANTS.md, "The results oracle").
//!
//! - **Returns** ([`linearize`]): the calls (the program's own and those made inside
//!   callbacks) are put in a sequential order that respects real time (a call that
//!   returned before another began comes first), in which each result is the reference's:
//!   `deregister` is `Ok` on a live handle, `StaleHandle` on a deregistered one,
//!   `UnknownHandle` on a never-issued one, `DeregisterFromOwnCallback` inside the client's
//!   own callback; `hub_arrival` is `Ok` on an absent hub and `HubAlreadyPresent` on a
//!   present one; a query shows the presence and the last change linearized before it.
//!   `WouldDeadlock` changes nothing and must be explained by a chain of deregisters,
//!   made concurrently from inside callbacks, that leads back to the caller ([`cycles`]).
//!   The first `shutdown` outside callbacks is `Ok`, every later one `PolicyManagerRemoved`
//!   and every one inside a callback `ShutdownInsideCallback`; after it `register`,
//!   `hub_arrival` and power requests are refused with `PolicyManagerRemoved` (ports
//!   still report and remove, the system view `hub_snapshot` still shows the hubs, and
//!   `deregister` works as ever). A power request that passes waits on its hub; the
//!   hardware's answer takes every waiting one (the removal drops them) and reports each
//!   accepted one (`Ok(true)`), none of the rejected ones (`Ok(false)`).
//! - **Callbacks** ([`windows`]): per client registration and hub, what it saw is a
//!   window of one presence's history (the arrival or its replay, then every change in the
//!   order reported, then the removal), with the tokens each change carried; an accepted
//!   power request the port reported is a change of the history (of connector 0), a
//!   rejected one is none: the judge of "a rejected power request produces no event"; a
//!   replay's snapshot lies between the changes finished before `register` began and
//!   those begun after it returned (or after the outermost call it was made in returned,
//!   for a `register` inside a callback, whose greeting and replays that call owes); a
//!   registration that lasted through a whole presence saw all of it (unless the
//!   shutdown began meanwhile), and one that began after a presence ended saw none of it.
//! - **The Policy Manager's own events** ([`shutdowns`]): the arrival greets each
//!   registration at most once, before its `register` returns when made outside
//!   callbacks; after the shutdown returned no callback begins (except for a
//!   registration whose deregistration had begun); every registration greeted and still
//!   registered hears the removal exactly once, inside the `shutdown` call, after its
//!   other calls returned.
//! - **Contexts** ([`contexts`]): each registration's context is dropped exactly once by
//!   the end of the post part, after the registration ended and after every call of its
//!   callback returned; `panicked_callbacks` counts every panic the model raised on
//!   purpose, in callbacks and in contexts' drops. What a drop does (a change reported, a
//!   client registered or deregistered) is an ordinary call in the log, explained like any
//!   other: which thread drops a context last is up to the schedule, and the calls its
//!   drop makes carry the real-time tickets and the callbacks that thread was inside.
//! - **Detach completions** ([`completions`]): a detach (`Registration::detach`, or a
//!   guard drop that detached because waiting would close a cycle) ends the registration
//!   like a guard drop, and nothing reported after it returned reaches the client
//!   ([`windows`]); the wait on its completion is `Ok` outside the client's own callbacks
//!   (refused inside them, and where it would close a cycle), and when it returned every
//!   call of the client's callback had returned.

use std::collections::{BTreeMap, HashSet};

use usbpm::Error;

use crate::judge::monitor::Property;
use crate::lang::history::{
    Call, CallRec, InstId, Log, ManagerRec, ManagerSeen, Ret, Seen, SeenRec,
};
use crate::lang::program::Program;

/// Something the oracle could not explain.
#[derive(Clone, Debug)]
pub struct Unexplained {
    pub property: Property,
    pub message: String,
}

/// The most calls whose returns the oracle judges in one execution.
pub const MAX_LINEARIZED: usize = 128;

/// Judges one execution's log.
pub fn judge(_program: &Program, log: &Log) -> Vec<Unexplained> {
    let mut out = Vec::new();
    if let Some(pending) = log.calls.iter().find(|c| c.ret == Ret::Pending) {
        out.push(bad(
            Property::NoDeadlock,
            format!("{} never returned", describe(log, pending)),
        ));
        return out;
    }
    // The search keeps placed calls in a 128-bit set: longer logs (rare: four threads of
    // six calls with callbacks that call back) are judged on callbacks and cycles only,
    // and the execution's timeline says so (`exec::execute`).
    if log.calls.len() <= MAX_LINEARIZED {
        if let Err(m) = linearize(log) {
            out.push(bad(Property::BadInputErrors, m));
        }
    }
    out.extend(cycles(log));
    out.extend(windows(log));
    out.extend(contexts(log));
    out.extend(shutdowns(log));
    out.extend(completions(log));
    out
}

/// Each detach completion that fired (`Detached::wait` returned `Ok`) fired after every
/// call of the detached registration's callback had returned: none ends (or begins)
/// after the wait returned. (The monitor judges the same at the library's
/// `DetachDone` step; this judges it from the callbacks' own tickets.) That every
/// completion fires is the post part's wait: one that never fires is a hang.
pub fn completions(log: &Log) -> Vec<Unexplained> {
    let mut out = Vec::new();
    for w in &log.calls {
        let (Call::Wait { inst }, Ret::Unit(Ok(()))) = (&w.call, &w.ret) else {
            continue;
        };
        let calls = log
            .seen
            .iter()
            .filter(|s| s.inst == *inst)
            .map(|s| (format!("hub {} seq {}", s.hub, s.seq), s.begin, s.end))
            .chain(
                log.manager
                    .iter()
                    .filter(|m| m.inst == *inst)
                    .map(|m| (format!("the Policy Manager's {:?}", m.seen), m.begin, m.end)),
            );
        for (what, begin, end) in calls {
            if end == 0 || end > w.end {
                out.push(bad(
                    Property::DeregisterWaits,
                    format!(
                        "{}'s detach completion returned on {} (ticket {}) before its call for {what} (begun at ticket {begin}) returned",
                        label(log, *inst),
                        w.thread,
                        w.end
                    ),
                ));
            }
        }
    }
    out
}

fn bad(property: Property, message: String) -> Unexplained {
    Unexplained { property, message }
}

fn label(log: &Log, i: InstId) -> &str {
    log.insts.get(i).map_or("?", |r| r.label.as_str())
}

/// A call in the timeline's words.
pub fn describe(log: &Log, c: &CallRec) -> String {
    let what = match &c.call {
        Call::Register { inst } => format!("register {}", label(log, *inst)),
        Call::Deregister { inst: Some(i) } => format!("deregister({})", label(log, *i)),
        Call::Deregister { inst: None } => "deregister(never-issued handle)".into(),
        Call::DropGuard { inst } => format!("drop of {}'s guard", label(log, *inst)),
        Call::Detach { inst } => format!("detach of {}", label(log, *inst)),
        Call::Wait { inst } => format!("wait for {}'s detach completion", label(log, *inst)),
        Call::Arrive { hub, presence } => format!("hub {hub} arrival #{presence}"),
        Call::Change { hub, token, .. } => format!("hub {hub} change #{token}"),
        Call::Remove { hub, .. } => format!("hub {hub} removal"),
        Call::Query { hub } => format!("query of hub {hub}"),
        Call::AssignPower {
            hub,
            inst,
            presence,
        } => format!(
            "assign_power_level by {} on hub {hub} presence {}",
            label(log, *inst),
            presence.map_or("(none arrived)".into(), |p| p.to_string())
        ),
        Call::Shutdown => "shutdown".into(),
        Call::Answer {
            hub,
            presence,
            accepted,
        } => format!(
            "hub {hub}'s answer ({}) to its power requests (presence #{presence})",
            if *accepted { "accepted" } else { "rejected" }
        ),
    };
    let ret = match &c.ret {
        Ret::Pending => String::new(),
        Ret::Unit(r) => format!(" -> {r:?}"),
        Ret::Hub(r) => format!(" -> {r:?}"),
        Ret::Answers(r) => format!(" -> {r:?}"),
    };
    format!("{what} on {}{ret}", c.thread)
}

/// The sequential reference's state.
#[derive(Clone, Default, Hash, PartialEq, Eq)]
struct Reference {
    /// Per instance: `None` not registered yet, `Some(true)` live, `Some(false)` gone.
    insts: BTreeMap<InstId, bool>,
    /// Per hub: the present presence's token and its last change's token.
    hubs: BTreeMap<u32, (usize, usize)>,
    /// Per hub: how many times it arrived (the library's number of its latest presence).
    arrivals: BTreeMap<u32, u32>,
    /// Per hub: the power requests waiting for the hardware's answer.
    requests: BTreeMap<u32, usize>,
    /// The Policy Manager has shut down.
    shut: bool,
}

fn err_kind(r: &Result<(), Error>) -> &'static str {
    match r {
        Ok(()) => "Ok",
        Err(Error::UnknownHandle(_)) => "UnknownHandle",
        Err(Error::StaleHandle(_)) => "StaleHandle",
        Err(Error::DeregisterFromOwnCallback(_)) => "DeregisterFromOwnCallback",
        Err(Error::WouldDeadlock { .. }) => "WouldDeadlock",
        Err(Error::UnknownHub(_)) => "UnknownHub",
        Err(Error::HubAlreadyPresent(_)) => "HubAlreadyPresent",
        Err(Error::UnknownConnector(..)) => "UnknownConnector",
        Err(Error::StaleHubHandle(_)) => "StaleHubHandle",
        Err(Error::PolicyManagerRemoved) => "PolicyManagerRemoved",
        Err(Error::ShutdownInsideCallback) => "ShutdownInsideCallback",
        Err(_) => "another error",
    }
}

/// What the reference needs of the log beyond one call: when the calls that change a
/// check's outcome returned.
#[derive(Default)]
struct Facts {
    /// When each registration's end returned: its successful deregister or guard drop.
    gone: BTreeMap<InstId, usize>,
    /// When the successful `shutdown` returned.
    shutdown: Option<usize>,
    /// The registrations that ended without waiting (a detach, or a guard dropped in its
    /// own callback): their calls admitted before it may begin after it returned.
    detached: std::collections::BTreeSet<InstId>,
}

impl Facts {
    fn of(log: &Log) -> Facts {
        let mut gone = BTreeMap::new();
        for c in &log.calls {
            if let (
                Call::Deregister { inst: Some(i) }
                | Call::DropGuard { inst: i }
                | Call::Detach { inst: i },
                Ret::Unit(Ok(())),
            ) = (&c.call, &c.ret)
            {
                gone.insert(*i, c.end);
            }
        }
        let detached = log
            .calls
            .iter()
            .filter_map(|c| match (&c.call, &c.ret) {
                (Call::Detach { inst }, Ret::Unit(Ok(()))) => Some(*inst),
                (Call::DropGuard { inst }, Ret::Unit(Ok(()))) if c.inside.contains(inst) => {
                    Some(*inst)
                }
                _ => None,
            })
            .collect();
        Facts {
            gone,
            shutdown: shutdown_call(log).map(|c| c.end),
            detached,
        }
    }
}

impl Reference {
    /// Applies `c` if the reference explains its result here; `None` if it does not.
    fn apply(&self, c: &CallRec, facts: &Facts) -> Option<Reference> {
        let mut next = self.clone();
        let unit = match &c.ret {
            Ret::Unit(r) => Some(err_kind(r)),
            _ => None,
        };
        match (&c.call, unit) {
            (Call::Register { inst }, Some("Ok")) => {
                if self.shut || self.insts.contains_key(inst) {
                    return None;
                }
                next.insts.insert(*inst, true);
            }
            // After the shutdown every `register` is refused, and the client never exists.
            (Call::Register { inst }, Some("PolicyManagerRemoved")) => {
                if !self.shut || self.insts.contains_key(inst) {
                    return None;
                }
            }
            (Call::Deregister { inst: None }, Some("UnknownHandle")) => {}
            (Call::Deregister { inst: Some(i) }, Some(kind)) => {
                let live = self.insts.get(i).copied()?;
                let own = c.inside.contains(i);
                match kind {
                    "DeregisterFromOwnCallback" if own => {}
                    // Explained (or not) by `cycles`; a refusal changes nothing.
                    "WouldDeadlock" if !own && !c.inside.is_empty() => {}
                    "Ok" if live && !own => {
                        next.insts.insert(*i, false);
                    }
                    "StaleHandle" if !live && !own => {}
                    _ => return None,
                }
            }
            (Call::DropGuard { inst } | Call::Detach { inst }, Some("Ok")) => {
                if self.insts.get(inst) != Some(&true) {
                    return None;
                }
                next.insts.insert(*inst, false);
            }
            // The wait on a detached registration's completion: refused inside the
            // client's own callback, and (explained or not by `cycles`) inside another's
            // where it would close a cycle; it changes nothing.
            (Call::Wait { inst }, Some(kind)) => {
                if self.insts.get(inst) != Some(&false) {
                    return None;
                }
                let own = c.inside.contains(inst);
                match kind {
                    "DeregisterFromOwnCallback" if own => {}
                    "WouldDeadlock" if !own && !c.inside.is_empty() => {}
                    "Ok" if !own => {}
                    _ => return None,
                }
            }
            // After the shutdown an arrival is refused, present hub or not.
            (Call::Arrive { .. }, Some("PolicyManagerRemoved")) if self.shut => {}
            (Call::Arrive { hub, presence }, Some(kind)) if !self.shut => {
                match (self.hubs.contains_key(hub), kind) {
                    (false, "Ok") => {
                        next.hubs.insert(*hub, (*presence, 0));
                        *next.arrivals.entry(*hub).or_default() += 1;
                    }
                    (true, "HubAlreadyPresent") => {}
                    _ => return None,
                }
            }
            (
                Call::Change {
                    hub,
                    presence,
                    token,
                },
                Some("Ok"),
            ) => {
                let h = next.hubs.get_mut(hub)?;
                if h.0 != *presence {
                    return None;
                }
                h.1 = *token;
            }
            // The removal takes the requests still waiting with it.
            (Call::Remove { hub, presence }, Some("Ok")) => {
                if next.hubs.remove(hub)?.0 != *presence {
                    return None;
                }
                next.requests.remove(hub);
            }
            // A power request, checked in the library's order: the shutdown, the
            // requesting client's handle (a thread's request uses the first client's
            // latest handle, perhaps stale), the presence it names (one earlier than the
            // latest arrival, or the latest once its removal is queued, is stale). One
            // that passes waits for the hardware's answer. A thread's request names the
            // presence the system side's `hub_handle` shows (`None`: no hub present, and
            // the request is not made).
            //
            // The library makes the first two checks under the registry's lock and the
            // presence's (with the request put aside) later, under the hub's: a
            // deregistration or the shutdown may come in between. So a refusal for the
            // shutdown or the handle is placed where the registry refuses it, and the
            // rest where the hub decides, the first two checks having passed at some
            // point of the call (its deregistration, or the shutdown, had not returned
            // when the call began).
            (
                Call::AssignPower {
                    hub,
                    inst,
                    presence,
                },
                Some(kind),
            ) => {
                // No presence named: a thread's request found no hub present.
                let Some(p) = *presence else {
                    return (kind == "UnknownHub" && !self.hubs.contains_key(hub)).then_some(next);
                };
                let live = self.insts.get(inst).copied()?;
                // Inside its own callback a client's calls are its own, though a
                // deregister waiting for that callback has retired its handle.
                let own = c.inside.contains(inst);
                match kind {
                    "PolicyManagerRemoved" => return self.shut.then_some(next),
                    "StaleHandle" => return (!self.shut && !live && !own).then_some(next),
                    _ => {}
                }
                let passed_shutdown = !self.shut || facts.shutdown.is_some_and(|s| s > c.start);
                // A call of a registration that ended without waiting, admitted before
                // the end, may run after it returned: inside its own callback it passes.
                let passed_handle = live
                    || facts.gone.get(inst).is_some_and(|&g| g > c.start)
                    || (own && facts.detached.contains(inst));
                if !passed_shutdown || !passed_handle {
                    return None;
                }
                let latest = self.arrivals.get(hub).copied().unwrap_or(0);
                let decided = if p == 0 || p > latest {
                    "UnknownHub"
                } else if p < latest || !self.hubs.contains_key(hub) {
                    "StaleHubHandle"
                } else {
                    "Ok"
                };
                if kind != decided {
                    return None;
                }
                if kind == "Ok" {
                    *next.requests.entry(*hub).or_default() += 1;
                }
            }
            // Refused inside a callback (it would wait for that callback) whatever the
            // state; otherwise the first succeeds and every later one is refused.
            (Call::Shutdown, Some(kind)) => match (c.inside.is_empty(), self.shut, kind) {
                (false, _, "ShutdownInsideCallback") | (true, true, "PolicyManagerRemoved") => {}
                (true, false, "Ok") => next.shut = true,
                _ => return None,
            },
            // The port of the present presence takes every request waiting and answers
            // each: an accepted one is reported (`Ok(true)`: the partner is attached in
            // every program), a rejected one is not (`Ok(false)`). The shutdown changes
            // nothing here (ports still report; the changes reach no client).
            (
                Call::Answer {
                    hub,
                    presence,
                    accepted,
                },
                None,
            ) => {
                let Ret::Answers(results) = &c.ret else {
                    return None;
                };
                if self.hubs.get(hub).map(|h| h.0) != Some(*presence)
                    || results.len() != self.requests.get(hub).copied().unwrap_or(0)
                    || results.iter().any(|r| *r != Ok(*accepted))
                {
                    return None;
                }
                next.requests.remove(hub);
            }
            (Call::Query { hub }, None) => match (&c.ret, self.hubs.get(hub)) {
                (Ret::Hub(Ok(shown)), Some(now)) if shown == now => {}
                (Ret::Hub(Err(Error::UnknownHub(_))), None) => {}
                _ => return None,
            },
            _ => return None,
        }
        Some(next)
    }
}

/// A depth-first search for an explaining order, remembering (placed calls, state) pairs
/// already tried and the longest explained prefix (for the message).
struct Search<'a> {
    calls: &'a [CallRec],
    facts: Facts,
    /// preds[i]: the calls that returned before call i began.
    preds: &'a [u128],
    seen: HashSet<(u128, Reference)>,
    /// (longest prefix, its calls, the call that could not follow it)
    best: (usize, u128, Option<usize>),
    budget: usize,
}

impl Search<'_> {
    fn dfs(&mut self, done: u128, depth: usize, state: Reference) -> bool {
        if depth == self.calls.len() {
            return true;
        }
        if self.budget == 0 || !self.seen.insert((done, state.clone())) {
            return false;
        }
        self.budget -= 1;
        for i in 0..self.calls.len() {
            if done & (1 << i) != 0 || self.preds[i] & !done != 0 {
                continue;
            }
            match state.apply(&self.calls[i], &self.facts) {
                Some(next) => {
                    if depth + 1 > self.best.0 {
                        self.best = (depth + 1, done | (1 << i), None);
                    }
                    if self.dfs(done | (1 << i), depth + 1, next) {
                        return true;
                    }
                }
                None => {
                    if depth >= self.best.0 && self.best.2.is_none() {
                        self.best.2 = Some(i);
                        self.best.1 = done;
                    }
                }
            }
        }
        false
    }
}

/// Finds a sequential order of the calls, consistent with real time, that the reference
/// explains; on failure says how far the longest explained prefix got.
pub fn linearize(log: &Log) -> Result<(), String> {
    let calls = &log.calls;
    let n = calls.len();
    if n > MAX_LINEARIZED {
        return Err(format!(
            "{n} calls: more than the oracle's {MAX_LINEARIZED}"
        ));
    }
    // preds[i]: calls that returned before call i began.
    let preds: Vec<u128> = (0..n)
        .map(|i| {
            (0..n)
                .filter(|&j| calls[j].end < calls[i].start)
                .fold(0u128, |m, j| m | (1 << j))
        })
        .collect();
    let mut search = Search {
        calls,
        facts: Facts::of(log),
        preds: &preds,
        seen: HashSet::new(),
        best: (0, 0, None),
        budget: 2_000_000,
    };
    if search.dfs(0, 0, Reference::default()) {
        return Ok(());
    }
    let (best, budget) = (search.best, search.budget);
    if budget == 0 {
        return Err("no explaining order found within the oracle's search budget".into());
    }
    let placed = best.0;
    let culprit = best
        .2
        .map(|i| describe(log, &calls[i]))
        .unwrap_or_else(|| "a call".into());
    Err(format!(
        "no order of the {n} calls consistent with real time explains every result; the longest explained prefix has {placed} calls, then `{culprit}` cannot be explained"
    ))
}

fn overlaps(a: &CallRec, b: &CallRec) -> bool {
    a.start < b.end && b.start < a.end
}

/// Each `WouldDeadlock` must be explained by a chain of concurrent deregisters made from
/// inside callbacks: one inside the target's callback, waiting for a client whose
/// callback ... is the one the refused caller is inside.
pub fn cycles(log: &Log) -> Vec<Unexplained> {
    let mut out = Vec::new();
    for c in &log.calls {
        let Ret::Unit(Err(Error::WouldDeadlock { .. })) = &c.ret else {
            continue;
        };
        let (Call::Deregister { inst: Some(target) } | Call::Wait { inst: target }) = c.call else {
            continue;
        };
        let mut reach: HashSet<InstId> = [target].into();
        let mut explained = false;
        let mut grew = true;
        while grew && !explained {
            grew = false;
            for d in &log.calls {
                let waits_for = match d.call {
                    Call::Deregister { inst: Some(t) }
                    | Call::DropGuard { inst: t }
                    | Call::Wait { inst: t } => t,
                    _ => continue,
                };
                if std::ptr::eq(c, d)
                    || !overlaps(c, d)
                    || !d.inside.iter().any(|i| reach.contains(i))
                {
                    continue;
                }
                if c.inside.contains(&waits_for) {
                    explained = true;
                    break;
                }
                grew |= reach.insert(waits_for);
            }
        }
        if !explained {
            out.push(bad(
                Property::BadInputErrors,
                format!(
                    "{} is not explained: no concurrent chain of deregisters from callbacks leads back to the caller",
                    describe(log, c)
                ),
            ));
        }
    }
    out
}

/// Each registration's context dies exactly once, outside its registration and its calls;
/// every panic raised on purpose is counted.
///
/// The library's last reference to a client goes after the client's last call returned,
/// and by the end of the post part (every hub removed, every client deregistered, every
/// thread joined) no reference is left: a context not dropped by then is leaked (the
/// "completion" of a registration never fired). The bounds are real-time tickets taken by
/// the context itself (its `Drop`) and by the callbacks (their end), so this judges from
/// the client's side what the monitor's P9 judges from the library's probe steps.
pub fn contexts(log: &Log) -> Vec<Unexplained> {
    let mut out = Vec::new();
    let mut drops: BTreeMap<InstId, Vec<&crate::lang::history::DropRec>> = BTreeMap::new();
    for d in &log.drops {
        drops.entry(d.inst).or_default().push(d);
    }
    let registered = log.calls.iter().filter_map(|c| match (&c.call, &c.ret) {
        (Call::Register { inst }, Ret::Unit(Ok(()))) => Some(*inst),
        _ => None,
    });
    for inst in registered {
        let name = label(log, inst);
        let Some(ds) = drops.get(&inst) else {
            out.push(bad(
                Property::ContextDiesOutside,
                format!("{name}'s context was never dropped: the library still held it after the post part (every hub removed, every client deregistered)"),
            ));
            continue;
        };
        if ds.len() > 1 {
            out.push(bad(
                Property::ContextDiesOutside,
                format!("{name}'s context was dropped {} times", ds.len()),
            ));
        }
        let d = ds[0];
        let ended = log
            .calls
            .iter()
            .filter(|c| {
                matches!(
                    (&c.call, &c.ret),
                    (
                        Call::Deregister { inst: Some(i) }
                            | Call::DropGuard { inst: i }
                            | Call::Detach { inst: i },
                        Ret::Unit(Ok(()))
                    ) if *i == inst
                )
            })
            .map(|c| c.start)
            .min();
        if ended.is_none_or(|t| t > d.at) {
            out.push(bad(
                Property::ContextDiesOutside,
                format!(
                    "{name}'s context was dropped on {} (ticket {}) while {name} was registered",
                    d.thread, d.at
                ),
            ));
        }
        for s in log.seen.iter().filter(|s| s.inst == inst) {
            if s.end == 0 || s.end > d.at {
                out.push(bad(
                    Property::ContextDiesOutside,
                    format!(
                        "{name}'s context was dropped on {} (ticket {}) while its call for hub {} seq {} (begun at ticket {}) had not returned",
                        d.thread, d.at, s.hub, s.seq, s.begin
                    ),
                ));
            }
        }
    }
    if log.panics_counted != log.panics_raised {
        out.push(bad(
            Property::BadInputErrors,
            format!(
                "panicked_callbacks() returned {} at the end, but callbacks and contexts' drops raised {} panics, each contained",
                log.panics_counted, log.panics_raised
            ),
        ));
    }
    out
}

/// One presence of a hub, as the program's calls made it.
struct Presence {
    hub: u32,
    token: usize,
    arrive: (usize, usize),
    /// Its changes in the order reported (seq 1, 2, …), with their call intervals: the
    /// token of a reported change, or `None` for a power request the hardware accepted
    /// (a change of connector 0). A rejected request is no change: it has no seq.
    changes: Vec<(Option<usize>, usize, usize)>,
    /// The removal call's interval.
    removal: Option<(usize, usize)>,
}

impl Presence {
    /// The last reported change's token among the first `seq` changes (0: none): what an
    /// arrival replay at `seq` shows on connector 1.
    fn last_change(&self, seq: u64) -> usize {
        self.changes[..seq as usize]
            .iter()
            .rev()
            .find_map(|c| c.0)
            .unwrap_or(0)
    }
}

/// A change at a seq, in the oracle's words.
fn change_name(c: Option<usize>) -> String {
    match c {
        Some(token) => format!("change #{token}"),
        None => "an accepted power request".into(),
    }
}

fn presences(log: &Log) -> Vec<Presence> {
    let mut out: Vec<Presence> = Vec::new();
    let mut calls: Vec<&CallRec> = log.calls.iter().collect();
    calls.sort_by_key(|c| c.start);
    for c in calls {
        let ok = matches!(c.ret, Ret::Unit(Ok(())));
        match c.call {
            Call::Arrive { hub, presence } if ok => out.push(Presence {
                hub,
                token: presence,
                arrive: (c.start, c.end),
                changes: Vec::new(),
                removal: None,
            }),
            Call::Change {
                presence, token, ..
            } if ok => {
                if let Some(p) = out.iter_mut().find(|p| p.token == presence) {
                    p.changes.push((Some(token), c.start, c.end));
                }
            }
            // Only an accepted request the port reported is a change.
            Call::Answer {
                presence,
                accepted: true,
                ..
            } => {
                let Ret::Answers(results) = &c.ret else {
                    continue;
                };
                if let Some(p) = out.iter_mut().find(|p| p.token == presence) {
                    for _ in results.iter().filter(|r| **r == Ok(true)) {
                        p.changes.push((None, c.start, c.end));
                    }
                }
            }
            Call::Remove { presence, .. } => {
                if let Some(p) = out.iter_mut().find(|p| p.token == presence) {
                    p.removal = Some((c.start, c.end));
                }
            }
            _ => {}
        }
    }
    out
}

/// Per registration and hub: what it saw is explained by the hub's presences.
pub fn windows(log: &Log) -> Vec<Unexplained> {
    let mut out = Vec::new();
    let presences = presences(log);
    // The registrations (a `register` refused after the shutdown made none).
    let reg: BTreeMap<InstId, &CallRec> = log
        .calls
        .iter()
        .filter_map(|c| match (&c.call, &c.ret) {
            (Call::Register { inst }, Ret::Unit(Ok(()))) => Some((*inst, c)),
            _ => None,
        })
        .collect();
    // The Policy Manager's shutdown began here (no registration outlives its hubs'
    // presences seeing everything after it: the shutdown ends every delivery).
    let shutdown = shutdown_call(log).map(|c| c.start);
    // When each registration ended: its successful deregister or guard drop began.
    let mut gone: BTreeMap<InstId, usize> = BTreeMap::new();
    for c in &log.calls {
        if let (
            Call::Deregister { inst: Some(i) }
            | Call::DropGuard { inst: i }
            | Call::Detach { inst: i },
            Ret::Unit(Ok(())),
        ) = (&c.call, &c.ret)
        {
            gone.entry(*i).or_insert(c.start);
        }
    }
    // A guard dropped in its own callback detaches, as does a detach: nothing reported
    // after it returned may reach the registration (calls admitted before it may still
    // begin).
    let call_start =
        |pred: &dyn Fn(&Call) -> bool| log.calls.iter().find(|c| pred(&c.call)).map(|c| c.start);
    for d in &log.calls {
        let inst = match d.call {
            Call::DropGuard { inst } if d.inside.contains(&inst) => inst,
            Call::Detach { inst } => inst,
            _ => continue,
        };
        for s in log.seen.iter().filter(|s| s.inst == inst) {
            let reported = match s.seen {
                Seen::Change { token } => {
                    call_start(&|c| matches!(c, Call::Change { token: t, .. } if *t == token))
                }
                // An accepted power request: the answer at its seq in the presence the
                // registration saw arrive last.
                Seen::Power => presence_of(log, s)
                    .and_then(|token| presences.iter().find(|p| p.token == token))
                    .and_then(|p| p.changes.get((s.seq as usize).wrapping_sub(1)))
                    .map(|c| c.1),
                Seen::Arrival { presence, .. }
                    if s.seq == 0
                        && reg
                            .get(&inst)
                            .and_then(|r| shown_by(log, r))
                            .is_some_and(|by| by < s.begin) =>
                {
                    call_start(&|c| matches!(c, Call::Arrive { presence: p, .. } if *p == presence))
                }
                // The removal of the presence being delivered: the latest one begun before it.
                Seen::Removal => presences
                    .iter()
                    .filter_map(|p| p.removal.filter(|r| p.hub == s.hub && r.0 < s.begin))
                    .map(|r| r.0)
                    .max(),
                _ => None,
            };
            if let Some(at) = reported.filter(|&at| at > d.end) {
                out.push(bad(
                    Property::NoCallbackAfterDeregister,
                    format!(
                        "{} got hub {} seq {}, reported (ticket {at}) after its detach (its guard's drop in its own callback, or a detach) returned (ticket {})",
                        label(log, inst),
                        s.hub,
                        s.seq,
                        d.end
                    ),
                ));
            }
        }
    }
    for (&inst, r) in &reg {
        let name = label(log, inst);
        // When the hubs could first show it the presence's state: by the time `register`
        // returned, or, for one made inside a callback (which only registers: the
        // greeting and the arrival replays follow), by the time the thread's outermost
        // call returned (unknown if none encloses it: then never judged complete).
        let shown_by = shown_by(log, r);
        let end_of_reg = gone.get(&inst).copied().unwrap_or(usize::MAX);
        for p in presences.iter() {
            let seen: Vec<&SeenRec> = log
                .seen
                .iter()
                .filter(|s| s.inst == inst && s.hub == p.hub)
                .collect();
            // This presence's window: from an arrival of this presence to the next arrival.
            let mut window: Vec<&SeenRec> = Vec::new();
            let mut inside = false;
            for s in &seen {
                if let Seen::Arrival { presence, .. } = s.seen {
                    inside = presence == p.token;
                }
                if inside {
                    window.push(s);
                }
            }
            let n = p.changes.len() as u64;
            let whole = format!("hub {} presence #{}", p.hub, p.token);
            if let Some(first) = window.first() {
                let Seen::Arrival { last_change, .. } = first.seen else {
                    unreachable!()
                };
                let s = first.seq;
                if s > n {
                    out.push(bad(
                        Property::HubOrder,
                        format!(
                            "{name}'s arrival of {whole} has seq {s}, but it had only {n} changes"
                        ),
                    ));
                    continue;
                }
                // Connector 1 shows the last reported change up to seq `s` (an accepted
                // power request changes connector 0 only).
                let expect = p.last_change(s);
                if last_change != expect {
                    out.push(bad(
                        Property::HubOrder,
                        format!("{name}'s arrival of {whole} at seq {s} shows change #{last_change}, but change #{expect} was the last reported up to seq {s}"),
                    ));
                }
                if let Some(next) = p.changes.get(s as usize) {
                    if next.2 < r.start {
                        out.push(bad(
                            Property::HubOrder,
                            format!("{name}'s arrival replay of {whole} (seq {s}) misses {}, reported before register began", change_name(next.0)),
                        ));
                    }
                }
                if s > 0 && shown_by.is_some_and(|by| p.changes[s as usize - 1].1 > by) {
                    out.push(bad(
                        Property::HubOrder,
                        format!("{name}'s arrival replay of {whole} includes {} (seq {s}), reported after register (or the outermost call it was made in) returned", change_name(p.changes[s as usize - 1].0)),
                    ));
                }
                if let Some(rm) = p.removal {
                    if rm.1 < r.start {
                        out.push(bad(
                            Property::HubOrder,
                            format!("{name} saw {whole}, which was removed before it registered"),
                        ));
                    }
                }
                for later in &window[1..] {
                    let want = (later.seq as usize)
                        .checked_sub(1)
                        .and_then(|i| p.changes.get(i))
                        .map(|c| c.0);
                    let at = |want: Option<Option<usize>>| match want {
                        Some(c) => format!("where {} was reported", change_name(c)),
                        None => "where nothing was reported".into(),
                    };
                    match later.seen {
                        Seen::Change { token } if want != Some(Some(token)) => {
                            out.push(bad(
                                Property::HubOrder,
                                format!(
                                    "{name} got change #{token} of {whole} at seq {}, {}",
                                    later.seq,
                                    at(want)
                                ),
                            ));
                        }
                        // The judge of "a rejected power request produces no event": the
                        // history has a change of connector 0 only for an accepted one.
                        Seen::Power if want != Some(None) => {
                            out.push(bad(
                                Property::PowerRoundTrip,
                                format!(
                                    "{name} got a change of connector 0 (what an accepted power request is reported as) of {whole} at seq {}, {}",
                                    later.seq,
                                    at(want)
                                ),
                            ));
                        }
                        Seen::Removal if later.seq != n + 1 => out.push(bad(
                            Property::HubOrder,
                            format!(
                                "{name} got the removal of {whole} at seq {}, expected seq {}",
                                later.seq,
                                n + 1
                            ),
                        )),
                        _ => {}
                    }
                }
            }
            // Completeness: a registration that outlived the presence saw all of it after
            // its start; one that began before the presence saw it from its arrival.
            // Delivery is asynchronous (a change reported from inside a callback may be
            // delivered after its call returned), so only a registration that lasted into
            // the post part, when every queue had drained, and past the presence's removal,
            // must have seen everything. (The post part removes the hubs before it
            // deregisters anyone, but a context dropped during a removal may deregister a
            // client there: that registration ends before the next hub's removal.)
            // After the shutdown began, a registration may hear nothing more (the rules
            // of `shutdowns`).
            let Some(rm) = p.removal else { continue };
            if end_of_reg <= log.post_start.max(rm.1) || shutdown.is_some_and(|s| s < rm.1) {
                continue;
            }
            let Some(by) = shown_by else { continue };
            let from_arrival = by < p.arrive.0;
            let whole_presence = by < rm.0 && p.arrive.1 < r.start;
            if !(from_arrival || whole_presence) {
                continue;
            }
            let last = window.last().map(|s| (s.seq, &s.seen));
            let starts_at_zero = window.first().is_some_and(|s| s.seq == 0);
            if window.is_empty()
                || last.map(|l| l.0) != Some(n + 1)
                || !matches!(last.map(|l| l.1), Some(Seen::Removal))
            {
                out.push(bad(
                    Property::HubOrder,
                    format!(
                        "{name} was registered throughout {whole} but saw {} of its {} events (it must see the rest of it, up to the removal)",
                        window.len(),
                        n + 2
                    ),
                ));
            } else if from_arrival && !starts_at_zero {
                out.push(bad(
                    Property::HubOrder,
                    format!("{name} registered before {whole} arrived but missed its arrival"),
                ));
            }
        }
    }
    out
}

/// When each registration's end began: its first successful deregister or guard drop.
fn registrations_end(log: &Log) -> BTreeMap<InstId, usize> {
    let mut gone: BTreeMap<InstId, usize> = BTreeMap::new();
    for c in &log.calls {
        if let (
            Call::Deregister { inst: Some(i) }
            | Call::DropGuard { inst: i }
            | Call::Detach { inst: i },
            Ret::Unit(Ok(())),
        ) = (&c.call, &c.ret)
        {
            let g = gone.entry(*i).or_insert(c.start);
            *g = (*g).min(c.start);
        }
    }
    gone
}

/// By when the registration `r` was shown to the hubs: when `register` returned, or for
/// one made inside a callback, when the thread's outermost call that encloses it
/// returned (the greeting, then the arrival replays, are that call's obligations).
fn shown_by(log: &Log, r: &CallRec) -> Option<usize> {
    if r.inside.is_empty() {
        return Some(r.end);
    }
    log.calls
        .iter()
        .filter(|c| {
            c.thread == r.thread && c.inside.is_empty() && c.start < r.start && c.end > r.end
        })
        .map(|c| c.end)
        .max()
}

/// The `shutdown` that succeeded, if one did (the first, should several have).
fn shutdown_call(log: &Log) -> Option<&CallRec> {
    log.calls
        .iter()
        .filter(|c| c.call == Call::Shutdown && c.ret == Ret::Unit(Ok(())))
        .min_by_key(|c| c.start)
}

/// The presence (its token) a registration's hub event belongs to: that of the last
/// arrival of the hub it saw before it.
fn presence_of(log: &Log, s: &SeenRec) -> Option<usize> {
    log.seen
        .iter()
        .filter(|o| o.inst == s.inst && o.hub == s.hub && o.begin < s.begin)
        .filter_map(|o| match o.seen {
            Seen::Arrival { presence, .. } => Some((o.begin, presence)),
            _ => None,
        })
        .max()
        .map(|(_, presence)| presence)
}

/// The Policy Manager's own events: its arrival greets each registration first, and its
/// shutdown ends every delivery.
///
/// - **The greeting**: each registration hears the arrival at most once; a `register`
///   made outside callbacks delivers it before it returns, or else the shutdown (or a
///   deregistration) began before `register` returned; one made inside a callback hears
///   it later, or else was shut down or deregistered.
/// - **The shutdown**: at most one `shutdown` succeeds. No callback of any client begins
///   after it returned, the arrival's included, except for a registration whose
///   deregistration began before it returned (it may have left the registry before the
///   shutdown looked: its admitted calls end with its deregistration, which waits for
///   them). Every registration that heard the arrival
///   and whose deregistration did not begin before the shutdown returned hears the
///   removal exactly once, within the `shutdown` call, after every other call of its
///   callback returned; nobody else hears it, and without a successful `shutdown` nobody
///   does. (That the calls after it are refused is judged with the returns.)
pub fn shutdowns(log: &Log) -> Vec<Unexplained> {
    let mut out = Vec::new();
    let succeeded: Vec<&CallRec> = log
        .calls
        .iter()
        .filter(|c| c.call == Call::Shutdown && c.ret == Ret::Unit(Ok(())))
        .collect();
    if succeeded.len() > 1 {
        out.push(bad(
            Property::BadInputErrors,
            format!(
                "{} calls of shutdown returned Ok: after the first, every one is refused",
                succeeded.len()
            ),
        ));
    }
    let shutdown = shutdown_call(log);
    let gone = registrations_end(log);
    // A registration whose end began before the shutdown returned may have left the
    // registry before the shutdown looked (the shutdown then neither closes it nor tells
    // it anything): its calls admitted meanwhile are its deregistration's business.
    let ending = |inst: InstId, sd: &CallRec| gone.get(&inst).is_some_and(|&g| g < sd.end);
    let manager = |inst: InstId, seen: ManagerSeen| -> Vec<&ManagerRec> {
        log.manager
            .iter()
            .filter(|m| m.inst == inst && m.seen == seen)
            .collect()
    };
    // Nothing begins after the shutdown returned.
    if let Some(sd) = shutdown {
        for s in log
            .seen
            .iter()
            .filter(|s| s.begin > sd.end && !ending(s.inst, sd))
        {
            out.push(bad(
                Property::NothingAfterRemoval,
                format!(
                    "{} got hub {} seq {} (at ticket {}) after shutdown returned (ticket {})",
                    label(log, s.inst),
                    s.hub,
                    s.seq,
                    s.begin,
                    sd.end
                ),
            ));
        }
        for m in log
            .manager
            .iter()
            .filter(|m| m.seen == ManagerSeen::Arrival && m.begin > sd.end && !ending(m.inst, sd))
        {
            out.push(bad(
                Property::NothingAfterRemoval,
                format!(
                    "{} heard the Policy Manager's arrival (at ticket {}) after shutdown returned (ticket {})",
                    label(log, m.inst),
                    m.begin,
                    sd.end
                ),
            ));
        }
    }
    let registered = log.calls.iter().filter_map(|c| match (&c.call, &c.ret) {
        (Call::Register { inst }, Ret::Unit(Ok(()))) => Some((*inst, c)),
        _ => None,
    });
    for (inst, r) in registered {
        let name = label(log, inst);
        let arrivals = manager(inst, ManagerSeen::Arrival);
        let removals = manager(inst, ManagerSeen::Removal);
        let gone = gone.get(&inst).copied();
        // The greeting.
        if arrivals.len() > 1 {
            out.push(bad(
                Property::ArrivalFirst,
                format!(
                    "{name} heard the Policy Manager's arrival {} times",
                    arrivals.len()
                ),
            ));
        }
        let outside = r.inside.is_empty();
        match arrivals.first() {
            Some(a) if outside && a.end > r.end => out.push(bad(
                Property::ArrivalFirst,
                format!(
                    "{name}'s Policy Manager arrival ended (ticket {}) after register, called outside callbacks, returned (ticket {})",
                    a.end, r.end
                ),
            )),
            Some(_) => {}
            None => {
                // Skipped: the shutdown or a deregistration came first.
                let by = if outside { r.end } else { usize::MAX };
                let explained = shutdown.is_some_and(|s| s.start < by)
                    || gone.is_some_and(|g| g < by);
                if !explained {
                    out.push(bad(
                        Property::ArrivalFirst,
                        format!(
                            "{name} never heard the Policy Manager's arrival, and neither the shutdown nor its deregistration began before {}",
                            if outside { "register returned" } else { "the end" }
                        ),
                    ));
                }
            }
        }
        // The removal.
        if removals.len() > 1 {
            out.push(bad(
                Property::NothingAfterRemoval,
                format!(
                    "{name} heard the Policy Manager's removal {} times",
                    removals.len()
                ),
            ));
        }
        let Some(sd) = shutdown else {
            if let Some(m) = removals.first() {
                out.push(bad(
                    Property::NothingAfterRemoval,
                    format!(
                        "{name} heard the Policy Manager's removal (ticket {}), but no shutdown succeeded",
                        m.begin
                    ),
                ));
            }
            continue;
        };
        match removals.first() {
            None => {
                if !arrivals.is_empty() && gone.is_none_or(|g| g > sd.end) {
                    out.push(bad(
                        Property::NothingAfterRemoval,
                        format!(
                            "{name} heard the Policy Manager's arrival and was still registered when shutdown returned (ticket {}), but never heard its removal",
                            sd.end
                        ),
                    ));
                }
            }
            Some(m) => {
                if arrivals.is_empty() {
                    out.push(bad(
                        Property::ArrivalFirst,
                        format!("{name} heard the Policy Manager's removal without its arrival"),
                    ));
                }
                if m.begin < sd.start || m.end > sd.end {
                    out.push(bad(
                        Property::NothingAfterRemoval,
                        format!(
                            "{name} heard the Policy Manager's removal at tickets {}..{}, outside the shutdown call ({}..{})",
                            m.begin, m.end, sd.start, sd.end
                        ),
                    ));
                }
                // Last: every other call of the callback returned before it began.
                let earlier = log
                    .seen
                    .iter()
                    .filter(|s| s.inst == inst)
                    .map(|s| (s.begin, s.end, format!("hub {} seq {}", s.hub, s.seq)))
                    .chain(
                        arrivals
                            .iter()
                            .map(|a| (a.begin, a.end, "the Policy Manager's arrival".into())),
                    );
                for (begin, end, what) in earlier {
                    if end == 0 || end > m.begin {
                        out.push(bad(
                            Property::NothingAfterRemoval,
                            format!(
                                "{name}'s call for {what} (tickets {begin}..{end}) had not returned when the Policy Manager's removal began (ticket {}): the removal is last",
                                m.begin
                            ),
                        ));
                    }
                }
            }
        }
    }
    out
}

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
//! - **Callbacks** ([`windows`]): per client registration and hub, what it saw is a
//!   window of one presence's history (the arrival or its replay, then every change in the
//!   order reported, then the removal), with the tokens each change carried; a replay's
//!   snapshot lies between the changes finished before `register` began and those begun
//!   after it returned; a registration that lasted through a whole presence saw all of
//!   it, and one that began after a presence ended saw none of it.
//! - **Contexts** ([`contexts`]): each registration's context is dropped exactly once by
//!   the end of the post part, after the registration ended and after every call of its
//!   callback returned; `panicked_callbacks` counts every panic the model raised on
//!   purpose, in callbacks and in contexts' drops. What a drop does (a change reported, a
//!   client registered or deregistered) is an ordinary call in the log, explained like any
//!   other: which thread drops a context last is up to the schedule, and the calls its
//!   drop makes carry the real-time tickets and the callbacks that thread was inside.

use std::collections::{BTreeMap, HashSet};

use usbpm::Error;

use crate::judge::monitor::Property;
use crate::lang::history::{Call, CallRec, InstId, Log, Ret, Seen, SeenRec};
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
        Call::Arrive { hub, presence } => format!("hub {hub} arrival #{presence}"),
        Call::Change { hub, token, .. } => format!("hub {hub} change #{token}"),
        Call::Remove { hub, .. } => format!("hub {hub} removal"),
        Call::Query { hub } => format!("query of hub {hub}"),
        Call::AssignPower { hub } => format!("assign_power_level on hub {hub}"),
    };
    let ret = match &c.ret {
        Ret::Pending => String::new(),
        Ret::Unit(r) => format!(" -> {r:?}"),
        Ret::Hub(r) => format!(" -> {r:?}"),
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
        Err(_) => "another error",
    }
}

impl Reference {
    /// Applies `c` if the reference explains its result here; `None` if it does not.
    fn apply(&self, c: &CallRec) -> Option<Reference> {
        let mut next = self.clone();
        let unit = match &c.ret {
            Ret::Unit(r) => Some(err_kind(r)),
            _ => None,
        };
        match (&c.call, unit) {
            (Call::Register { inst }, Some("Ok")) => {
                if self.insts.contains_key(inst) {
                    return None;
                }
                next.insts.insert(*inst, true);
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
            (Call::DropGuard { inst }, Some("Ok")) => {
                if self.insts.get(inst) != Some(&true) {
                    return None;
                }
                next.insts.insert(*inst, false);
            }
            (Call::Arrive { hub, presence }, Some(kind)) => {
                match (self.hubs.contains_key(hub), kind) {
                    (false, "Ok") => {
                        next.hubs.insert(*hub, (*presence, 0));
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
            (Call::Remove { hub, presence }, Some("Ok")) => {
                if next.hubs.remove(hub)?.0 != *presence {
                    return None;
                }
            }
            // A power request made while the hub is present is passed on; one made once
            // its removal is queued (or before it arrived) is refused. The requesting
            // client's handle may be stale (a thread's request uses the first client's
            // latest handle): refused whatever the hub's state.
            (Call::AssignPower { hub }, Some(kind)) => match (self.hubs.contains_key(hub), kind) {
                (true, "Ok")
                | (false, "UnknownHub" | "StaleHubHandle")
                | (_, "StaleHandle" | "UnknownHandle") => {}
                _ => return None,
            },
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
            match state.apply(&self.calls[i]) {
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
        let Call::Deregister { inst: Some(target) } = c.call else {
            continue;
        };
        let mut reach: HashSet<InstId> = [target].into();
        let mut explained = false;
        let mut grew = true;
        while grew && !explained {
            grew = false;
            for d in &log.calls {
                let waits_for = match d.call {
                    Call::Deregister { inst: Some(t) } | Call::DropGuard { inst: t } => t,
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
                    (Call::Deregister { inst: Some(i) } | Call::DropGuard { inst: i }, Ret::Unit(Ok(())))
                        if *i == inst
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
    /// Tokens of its changes in the order reported, with their call intervals.
    changes: Vec<(usize, usize, usize)>,
    /// The removal call's interval.
    removal: Option<(usize, usize)>,
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
                    p.changes.push((token, c.start, c.end));
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
    let reg: BTreeMap<InstId, &CallRec> = log
        .calls
        .iter()
        .filter_map(|c| match c.call {
            Call::Register { inst } => Some((inst, c)),
            _ => None,
        })
        .collect();
    // By when each registration was shown to the hubs (its greeting done): when its
    // `register` returned, or, for a `register` made inside a callback (whose greeting
    // the thread's outermost call owes), when that outermost call returned.
    let shown: BTreeMap<InstId, usize> = reg
        .iter()
        .map(|(&inst, r)| {
            let end = if r.inside.is_empty() {
                r.end
            } else {
                log.calls
                    .iter()
                    .filter(|c| {
                        c.thread == r.thread
                            && c.inside.is_empty()
                            && c.start <= r.start
                            && r.end <= c.end
                    })
                    .map(|c| c.end)
                    .max()
                    .unwrap_or(usize::MAX)
            };
            (inst, end)
        })
        .collect();
    // When each registration ended: its successful deregister or guard drop began.
    let mut gone: BTreeMap<InstId, usize> = BTreeMap::new();
    for c in &log.calls {
        if let (
            Call::Deregister { inst: Some(i) } | Call::DropGuard { inst: i },
            Ret::Unit(Ok(())),
        ) = (&c.call, &c.ret)
        {
            gone.entry(*i).or_insert(c.start);
        }
    }
    // A guard dropped in its own callback detaches: nothing reported after it returned
    // may reach the registration (calls admitted before it may still begin).
    let call_start =
        |pred: &dyn Fn(&Call) -> bool| log.calls.iter().find(|c| pred(&c.call)).map(|c| c.start);
    for d in &log.calls {
        let Call::DropGuard { inst } = d.call else {
            continue;
        };
        if !d.inside.contains(&inst) {
            continue;
        }
        for s in log.seen.iter().filter(|s| s.inst == inst) {
            let reported = match s.seen {
                Seen::Change { token } => {
                    call_start(&|c| matches!(c, Call::Change { token: t, .. } if *t == token))
                }
                Seen::Arrival { presence, .. }
                    if s.seq == 0 && shown.get(&inst).is_some_and(|&end| end < s.begin) =>
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
                        "{} got hub {} seq {}, reported (ticket {at}) after its guard's drop in its own callback returned (ticket {})",
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
                let expect = if s == 0 {
                    0
                } else {
                    p.changes[s as usize - 1].0
                };
                if last_change != expect {
                    out.push(bad(
                        Property::HubOrder,
                        format!("{name}'s arrival of {whole} at seq {s} shows change #{last_change}, but change #{expect} was the one at seq {s}"),
                    ));
                }
                if let Some(next) = p.changes.get(s as usize) {
                    if next.2 < r.start {
                        out.push(bad(
                            Property::HubOrder,
                            format!("{name}'s arrival replay of {whole} (seq {s}) misses change #{}, reported before register began", next.0),
                        ));
                    }
                }
                if s > 0 && p.changes[s as usize - 1].1 > shown[&inst] {
                    out.push(bad(
                        Property::HubOrder,
                        format!("{name}'s arrival replay of {whole} includes change #{expect}, reported after it was shown to the hubs (register returned, or the outermost call of a register made inside a callback)"),
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
                    match later.seen {
                        Seen::Change { token } => {
                            let want = p.changes.get(later.seq as usize - 1).map(|c| c.0);
                            if want != Some(token) {
                                out.push(bad(
                                    Property::HubOrder,
                                    format!("{name} got change #{token} of {whole} at seq {}, where change #{want:?} was reported", later.seq),
                                ));
                            }
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
            let Some(rm) = p.removal else { continue };
            if end_of_reg <= log.post_start.max(rm.1) {
                continue;
            }
            let from_arrival = shown[&inst] < p.arrive.0;
            let whole_presence = shown[&inst] < rm.0 && p.arrive.1 < r.start;
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

//! Trace validation: is a recorded execution a behaviour of the specification?
//!
//! A trace is the sequence of protocol steps the library's probe reported, each with the
//! thread that took it, in the order they were recorded. Each step maps to one action of
//! the specification ([`Obs`] → [`Op`]); steps the specification does not model stutter.
//! The validator replays the trace through [`Spec::apply`] in an open world (no budgets:
//! whatever the execution did, the specification must allow).
//!
//! **Recording order is not the order of effects.** A step is reported just after its
//! effect (an atomic operation, or a lock's critical section), and another thread may
//! report a later effect first: the recorded order can put a step after a step whose
//! effect came later. What is certain is that each step's effect came after the previous
//! step of its own thread was reported, and before its own report. So the validator may
//! move a step earlier, past steps of other threads, but never before the report of its
//! thread's previous step: at any point at most one step per thread is taken early. It
//! searches these orders depth first, in-order first, and fails only if none is a
//! behaviour of the specification.
//!
//! **Unobserved steps.** Three steps of the specification report nothing; the validator
//! inserts each at the latest point it can be, which is sound because what each one
//! decides cannot change by being taken later:
//!
//! - A delivery that waits for its client's turn reports that it waits (`TurnWaits`),
//!   not that it took the turn a release handed over: the validator inserts the taking
//!   just before the delivery's callback begins (only another waiting delivery of the
//!   same client reads the turns handed over, and it takes one only before its own
//!   begin). A begin recorded before the release that handed its turn over is the case
//!   of the recording order above: the release is taken early.
//! - A greeting that finds its client deregistered shows nothing and reports nothing
//!   (`Unshown`): it is inserted before the thread's next step that is not the showing,
//!   or at the end of the trace (a client once deregistered stays so).
//! - `shutdown` closes each client before it waits for its calls, and reports it only
//!   when calls are in flight (`ShutdownSleeps`); a close with none in flight
//!   (`ShutClose{sleeps: false}`) is inserted before the shutdown's own step about that
//!   client (its removal's count, or the removal skipped), or earlier, before another
//!   thread's step that needs the client closed (a delivery or greeting skipping it, a
//!   release that saw a skipping delivery's bump), if the shutdown is between two
//!   clients then.
//!
//! **Power requests.** A `Submitted` step does not say whether it is a connector change's
//! or the submit of the hardware's answer to a power request (whose `PowerAnswered` comes
//! after its settling): the validator tries both readings (the answer to each client with
//! a request of that kind on the hub), and the thread's next step keeps the right one.
//! Access is not in the steps: the harness passes what each client was granted
//! ([`validate_granted`]).
//!
//! **Detach completions.** The specification has no `Detached::wait`; the validator
//! judges its two steps itself: `DetachDone` only once the client is closed with no
//! count in flight (what the completion waits for; no count is taken after the close),
//! and no thread may end still waiting (`DetachWaits` with no `DetachDone` after it).
//!
//! **Properties and the end.** Every `always` property but P3 is evaluated in each state
//! along the order tried (a step whose state breaks one does not extend that order). A
//! trace is a whole execution, so the state after its last step must also be one a whole
//! run ends in: nothing in progress and nothing owed (`ended` lists what that means and
//! why each item holds).
//!
//! Contract: [`validate`] (and [`validate_with`], a spec mutant switched on) accepts a
//! trace exactly when some order the recording allows is a behaviour of the open-world
//! specification, every `always` property holding along it, that ends with nothing in
//! progress or owed; and otherwise returns a [`Divergence`]: the step (or the end), the
//! guard, property or obligation that failed, the timeline.
//!
//! **What the validator judges, and what `tests/trace_*.rs` show.**
//!
//! - Every value is judged, as an argument the action checks (client, hub,
//!   `CallbackBegin`'s seq, count, wait-for edge) or against the state (`Submitted`'s
//!   ticket and seq, `Took`'s ticket against the front, `DrainStop`'s `done`, a
//!   replay's seq, `Awake`'s ticket, `Skipped`'s seq, `CallbackEnd`'s hub and seq, a
//!   deregister's or detach's later client); `trace_queue.rs`, `trace_manager.rs` show
//!   a changed seq or hub rejected.
//! - Order: by R3 a release, a close of a closed client and the removal's
//!   `acquire_closed` may count the bumps of deliveries about to skip the client (such a
//!   release hands a turn to nobody, as the code does).
//! - The end: a trace stopped on a hang diverges there, naming what is owed.
//!   `ContextDrop` stutters (clients are names in sets, so the last reference's drop is
//!   no state); the monitor judges it (P9). Of the probe steps (as observations:
//!   `model/src/judge/trace.rs`) only `Queued`, `Woke`, `WaiterLeaves` and
//!   `ContextDrop` stutter.
//! - The turn (`trace_turn.rs`): `TurnWaits` only from that hub's drainer at that seq,
//!   right after its `InFlightAcquire` above 0. Rejected: a call after an acquire above
//!   0 with no wait; a waiting delivery calling while the call ahead runs; `TurnWaits`
//!   after a count from 0.
//! - Greeting and shutdown (`trace_manager.rs`). Accepted: a greeting before or during
//!   a hub's arrival; a greeting's callback registering a client and reporting a hub
//!   arrival, or registering and deregistering one; a greeting owed by a hub callback;
//!   a shutdown delivering the removal last, sleeping for a call, or meeting an owed
//!   greeting. Rejected: a showing before the arrival; ending with a greeting owed; a
//!   removal's count during a hub call without `ShutdownSleeps`; a hub call after the
//!   removal.
//! - Power (`trace_power.rs`): `PowerAnswered` is `Answered` on a thread in its
//!   `Answering`, else `Reject`, tried as a live and a stale request. Access:
//!   `Monitor::granted`, `Monitor::grants` → [`validate_granted`]; an unnamed client
//!   counts as granted. Accepted: an accepted request reported to all and a rejected one
//!   not; a partner's and an answer's change on two threads; a callback's request while
//!   its deregister waits, then removal and a stale accepted answer. Rejected: a
//!   query-only client's request; a request after its client's deregister returned, on
//!   the same thread; a rejected answer reporting a change.
//! - Cost: a node's other orders are computed only after its in-order step failed (one
//!   `take` per step for an accepted trace); nodes are hashed word-at-a-time, not
//!   SipHash (shuttle `churn-4x3x20` at quick: 10.5 s → 4.7 s user time, same
//!   verdicts). The quick gate's 13 std checks (500 runs each, all validated) took
//!   2.2–3.3 s together, measured once (four quick gates on 2 cores; one quick gate
//!   86 s, spec 7.2 s of it).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::fmt::{self, Write as _};
use std::hash::{Hash, Hasher};

use crate::spec::{At, Frame, Op, Set, Settle, Size, Spec, State};
use crate::state::Owed;

/// Which of the Policy Manager's own events a step is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PmEvent {
    /// The client's Policy Manager arrival (its greeting).
    Arrival,
    /// The client's Policy Manager removal (`shutdown`).
    Removal,
}

/// What was queued by a [`Obs::Submitted`] step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Appended {
    Nothing,
    Change { seq: u64 },
    Removal { seq: u64 },
    Replay { client: u64, seq: u64 },
}

/// One observed protocol step. Clients are raw handles, hubs hub ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Obs {
    /// `register` put the client in the registry, hidden from the hubs.
    Registered {
        client: u64,
    },
    /// `register` inside a callback: the client's greeting is owed by the thread.
    GreetingOwed {
        client: u64,
    },
    /// The greeting shows the client to the hubs (its replays are queued next).
    Shown {
        client: u64,
    },
    /// The callback of `client` begins for a Policy Manager event.
    ManagerBegin {
        client: u64,
        event: PmEvent,
    },
    /// That callback returned (or panicked).
    ManagerEnd {
        client: u64,
        event: PmEvent,
        panicked: bool,
    },
    /// A Policy Manager event of `client` was not delivered.
    ManagerSkipped {
        client: u64,
        event: PmEvent,
    },
    /// `shutdown` began.
    ShutdownEnter,
    /// `shutdown` closed `client` with calls in flight and sleeps until they return.
    ShutdownSleeps {
        client: u64,
    },
    /// `shutdown` returns.
    ShutdownReturn,
    HubArrived {
        hub: u32,
        clients: Vec<u64>,
    },
    /// Something was submitted to the hub's queue: `ticket` is what the caller waits
    /// for (the appended item's, the arrival's for the kick, 0 for a dropped replay).
    Submitted {
        hub: u32,
        appended: Appended,
        ticket: u64,
        settle: Settle,
    },
    Took {
        hub: u32,
        seq: u64,
        ticket: u64,
    },
    /// The drainer stopped with every item up to `done` delivered; `woke`: it woke the
    /// sleepers.
    DrainStop {
        hub: u32,
        done: u64,
        woke: bool,
    },
    /// A caller sleeping until its item `ticket` is delivered woke up.
    Awake {
        hub: u32,
        ticket: u64,
        settle: Settle,
    },
    /// The outermost call settles its thread's obligation for the item `ticket`.
    Settles {
        hub: u32,
        ticket: u64,
        settle: Settle,
    },
    /// A delivery of the hub's item `seq`, admitted (its count taken above 0) while a call
    /// of `client` is active on another thread, sleeps until a release hands it the turn.
    TurnWaits {
        client: u64,
        hub: u32,
        seq: u64,
    },
    Acquire {
        client: u64,
        from: u64,
    },
    Skipped {
        client: u64,
        hub: u32,
        seq: u64,
    },
    Begin {
        client: u64,
        hub: u32,
        seq: u64,
    },
    End {
        client: u64,
        hub: u32,
        seq: u64,
        panicked: bool,
    },
    Release {
        client: u64,
        from: u64,
    },
    DeregisterEnter {
        client: u64,
    },
    WaitFor {
        holding: Vec<u64>,
        client: u64,
    },
    Retired {
        client: u64,
    },
    Closed {
        client: u64,
        in_flight: u64,
    },
    Sleeps {
        client: u64,
    },
    DeregisterReturn {
        client: u64,
        ok: bool,
    },
    DetachEnter {
        client: u64,
    },
    DetachReturn {
        client: u64,
    },
    /// A detached client's completion (`Detached::wait`) starts waiting for the calls
    /// admitted before the detach.
    DetachWaits {
        client: u64,
    },
    /// That completion fired: the last of those calls returned.
    DetachDone {
        client: u64,
    },
    /// `client`'s power request for a connector of `hub` was queued for the hardware.
    PowerRequested {
        client: u64,
        hub: u32,
    },
    /// The hardware answered `client`'s power request on `hub` (`accepted`); `reported`:
    /// a connector change was queued for it (by the `Submitted` step before it).
    PowerAnswered {
        client: u64,
        hub: u32,
        accepted: bool,
        reported: bool,
    },
    /// A call outside callbacks goes on past `hub`'s item `ticket` (0: nothing was
    /// appended): it stutters, and the hub must have delivered every item up to it.
    Settled {
        hub: u32,
        ticket: u64,
    },
    /// A step the specification does not model: it stutters.
    Other(String),
}

/// One recorded step and the thread that took it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceEvent {
    pub thread: String,
    pub obs: Obs,
}

/// The first step of a trace that the specification cannot take, however the steps
/// are ordered within what the recording allows.
#[derive(Clone, Debug)]
pub struct Divergence {
    /// Index (0-based) of that step in the trace.
    pub at: usize,
    /// Why the specification cannot take it.
    pub reason: String,
    /// The trace up to that step, one line per step, the step marked.
    pub timeline: String,
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "TRACE DIVERGES FROM THE SPECIFICATION at step {}: {}",
            self.at + 1,
            self.reason
        )?;
        writeln!(f, "\nRecorded steps up to it (step, thread, step):")?;
        f.write_str(&self.timeline)
    }
}

/// Names: raw handles, hub ids and thread names to the specification's small integers.
struct Names {
    clients: Vec<u64>,
    hubs: Vec<u32>,
    threads: Vec<String>,
}

impl Names {
    fn of(trace: &[TraceEvent]) -> Names {
        let mut clients = Vec::new();
        let mut hubs = Vec::new();
        let mut threads = Vec::new();
        let mut client = |c: u64| {
            if !clients.contains(&c) {
                clients.push(c);
            }
        };
        for e in trace {
            if !threads.contains(&e.thread) {
                threads.push(e.thread.clone());
            }
            let hub = match &e.obs {
                Obs::HubArrived { hub, .. }
                | Obs::Submitted { hub, .. }
                | Obs::Took { hub, .. }
                | Obs::DrainStop { hub, .. }
                | Obs::Awake { hub, .. }
                | Obs::Settles { hub, .. }
                | Obs::Settled { hub, .. }
                | Obs::TurnWaits { hub, .. }
                | Obs::Skipped { hub, .. }
                | Obs::Begin { hub, .. }
                | Obs::End { hub, .. }
                | Obs::PowerRequested { hub, .. }
                | Obs::PowerAnswered { hub, .. } => Some(*hub),
                Obs::Registered { .. }
                | Obs::GreetingOwed { .. }
                | Obs::Shown { .. }
                | Obs::ManagerBegin { .. }
                | Obs::ManagerEnd { .. }
                | Obs::ManagerSkipped { .. }
                | Obs::ShutdownEnter
                | Obs::ShutdownSleeps { .. }
                | Obs::ShutdownReturn
                | Obs::Acquire { .. }
                | Obs::Release { .. }
                | Obs::DeregisterEnter { .. }
                | Obs::WaitFor { .. }
                | Obs::Retired { .. }
                | Obs::Closed { .. }
                | Obs::Sleeps { .. }
                | Obs::DeregisterReturn { .. }
                | Obs::DetachEnter { .. }
                | Obs::DetachReturn { .. }
                | Obs::DetachWaits { .. }
                | Obs::DetachDone { .. }
                | Obs::Other(_) => None,
            };
            if let Some(h) = hub {
                if !hubs.contains(&h) {
                    hubs.push(h);
                }
            }
            match &e.obs {
                Obs::HubArrived { clients: cs, .. } => cs.iter().for_each(|&c| client(c)),
                Obs::WaitFor { holding, client: c } => {
                    holding.iter().for_each(|&h| client(h));
                    client(*c);
                }
                Obs::Submitted {
                    appended: Appended::Replay { client: c, .. },
                    ..
                } => client(*c),
                Obs::Registered { client: c }
                | Obs::GreetingOwed { client: c }
                | Obs::Shown { client: c }
                | Obs::ManagerBegin { client: c, .. }
                | Obs::ManagerEnd { client: c, .. }
                | Obs::ManagerSkipped { client: c, .. }
                | Obs::ShutdownSleeps { client: c }
                | Obs::TurnWaits { client: c, .. }
                | Obs::Acquire { client: c, .. }
                | Obs::Skipped { client: c, .. }
                | Obs::Begin { client: c, .. }
                | Obs::End { client: c, .. }
                | Obs::Release { client: c, .. }
                | Obs::DeregisterEnter { client: c }
                | Obs::Retired { client: c }
                | Obs::Closed { client: c, .. }
                | Obs::Sleeps { client: c }
                | Obs::DeregisterReturn { client: c, .. }
                | Obs::DetachEnter { client: c }
                | Obs::DetachReturn { client: c }
                | Obs::DetachWaits { client: c }
                | Obs::DetachDone { client: c }
                | Obs::PowerRequested { client: c, .. }
                | Obs::PowerAnswered { client: c, .. } => client(*c),
                Obs::Submitted { .. }
                | Obs::Took { .. }
                | Obs::DrainStop { .. }
                | Obs::Awake { .. }
                | Obs::Settles { .. }
                | Obs::Settled { .. }
                | Obs::ShutdownEnter
                | Obs::ShutdownReturn
                | Obs::Other(_) => {}
            }
        }
        // `register` replays hubs in hub id order.
        hubs.sort_unstable();
        Names {
            clients,
            hubs,
            threads,
        }
    }

    fn c(&self, raw: u64) -> u8 {
        self.clients
            .iter()
            .position(|&c| c == raw)
            .expect("named in the pre-scan") as u8
    }

    fn h(&self, raw: u32) -> u8 {
        self.hubs
            .iter()
            .position(|&h| h == raw)
            .expect("named in the pre-scan") as u8
    }

    fn set(&self, raw: &[u64]) -> Set {
        raw.iter().fold(0, |a, &c| a | 1 << self.c(c))
    }
}

fn small(v: u64, what: &str) -> Result<u8, String> {
    u8::try_from(v).map_err(|_| format!("{what} {v} is beyond the specification's range (255)"))
}

/// The client a step needs closed by `shutdown` if nothing else closed it: the
/// shutdown's own step about its client (`own`), or another thread's skip of the client,
/// or a release that saw a skipping delivery's bump.
fn needs_shut_close(names: &Names, state: &State, obs: &Obs) -> Option<(u8, bool)> {
    match obs {
        Obs::Acquire { client, .. }
        | Obs::ManagerSkipped {
            client,
            event: PmEvent::Removal,
        } => Some((names.c(*client), true)),
        Obs::Skipped { client, .. }
        | Obs::ManagerSkipped {
            client,
            event: PmEvent::Arrival,
        } => Some((names.c(*client), false)),
        Obs::Release { client, from } => {
            let c = names.c(*client);
            (*from > u64::from(state.clients[usize::from(c)].in_flight)).then_some((c, false))
        }
        _ => None,
    }
}

/// Thread `t`'s (or, for `shutdown`'s close, the shutdown thread's) unobserved steps
/// before `t` reports `obs` (see the module docs): a greeting that shows nothing, a
/// client closed by `shutdown`, a turn taken.
fn before<'a>(
    spec: &Spec,
    names: &Names,
    state: &'a State,
    t: u8,
    obs: &Obs,
) -> Result<Cow<'a, State>, String> {
    let mut state = Cow::Borrowed(state);
    let top = |s: &State, u: u8| s.threads[usize::from(u)].last().copied();
    // A greeting that found its client deregistered has shown nothing.
    while let Some(Frame::Show { client }) = top(&state, t) {
        if matches!(obs, Obs::Shown { client: c } if names.c(*c) == client) {
            break;
        }
        match spec.apply(&state, t, Op::Unshown) {
            Ok(next) => state = Cow::Owned(next),
            Err(_) => break,
        }
    }
    // `shutdown` closed the client: by this thread before its own step about it; by
    // the shutdown thread, between two clients, before another's step that needs it.
    if let Some((client, own)) = needs_shut_close(names, &state, obs) {
        let closed = state.clients[usize::from(client)].closed();
        let shutter = if own {
            Some(t)
        } else if closed {
            None
        } else {
            (0..state.threads.len() as u8).find(|&u| {
                matches!(top(&state, u), Some(Frame::Shutdown { left, settled: false }) if left & (1 << client) != 0)
            })
        };
        if let Some(u) = shutter {
            if let Some(Frame::Shutdown {
                left,
                settled: false,
            }) = top(&state, u)
            {
                if left & (1 << client) != 0 {
                    let op = Op::ShutClose {
                        client,
                        sleeps: false,
                    };
                    let next = spec
                        .apply(&state, u, op)
                        .map_err(|why| format!("{op:?} (unobserved): {why}"))?;
                    state = Cow::Owned(next);
                }
            }
        }
    }
    // A waiting delivery takes the turn a release handed over just before it calls.
    if let Obs::Begin { client, .. } = obs {
        let client = names.c(*client);
        if let Some(Frame::Drain { cur: Some(d), .. }) = top(&state, t) {
            if d.at == At::Waiting(client) || d.at == At::Uncounted(client) {
                let op = Op::TakeTurn { client };
                let next = spec
                    .apply(&state, t, op)
                    .map_err(|why| format!("{op:?} (unobserved): {why}"))?;
                state = Cow::Owned(next);
            }
        }
    }
    Ok(state)
}

/// `s` with the unobserved steps a finished execution has taken: a greeting that found
/// its client deregistered has shown nothing.
fn finish(spec: &Spec, s: State) -> State {
    let mut s = s;
    for t in 0..s.threads.len() as u8 {
        while let Some(Frame::Show { .. }) = s.threads[usize::from(t)].last() {
            match spec.apply(&s, t, Op::Unshown) {
                Ok(next) => s = next,
                Err(_) => break,
            }
        }
    }
    s
}

/// The other readings of a step that the step alone does not tell apart: a `Submitted`
/// that appended a change (or, not a kick, nothing) may be the submit of the hardware's
/// answer to a live (stale) request of any client with one on that hub; a rejected
/// answer with nothing reported may take a live or a stale request. The thread's next
/// step tells them apart (an answer's is its `PowerAnswered`), so the search keeps the
/// one the rest of the trace allows.
fn alternatives(names: &Names, state: &State, top: Option<Frame>, obs: &Obs) -> Vec<Op> {
    let answers = |hub: u8, live: bool, settle: Settle| {
        let mut clients: Vec<u8> = state.hubs[usize::from(hub)]
            .requests
            .iter()
            .filter(|r| r.live == live)
            .map(|r| r.client)
            .collect();
        clients.dedup();
        clients
            .into_iter()
            .flat_map(move |client| {
                [true, false].map(|accepted| Op::Answer {
                    hub,
                    client,
                    accepted,
                    live,
                    settle,
                })
            })
            .collect::<Vec<_>>()
    };
    match obs {
        Obs::Submitted {
            hub,
            appended: Appended::Change { .. },
            settle,
            ..
        } => answers(names.h(*hub), true, *settle),
        Obs::Submitted {
            hub,
            appended: Appended::Nothing,
            settle,
            ..
        } if !matches!(top, Some(Frame::Kick { .. })) => answers(names.h(*hub), false, *settle),
        Obs::PowerAnswered {
            client,
            hub,
            accepted: false,
            reported: false,
        } if !matches!(top, Some(Frame::Answering { .. })) => vec![Op::Reject {
            hub: names.h(*hub),
            client: names.c(*client),
            live: false,
        }],
        _ => Vec::new(),
    }
}

/// Takes one observed step on `state`: the states of each reading of it the
/// specification can take, or why it cannot take any.
fn take(spec: &Spec, names: &Names, state: &State, t: u8, obs: &Obs) -> Result<Vec<State>, String> {
    let state = &*before(spec, names, state, t, obs)?;
    let top = state.threads[usize::from(t)].last().copied();
    let frame_hub = match top {
        Some(Frame::Drain { hub, .. } | Frame::Kick { hub } | Frame::Callback { hub, .. }) => {
            Some(hub)
        }
        None
        | Some(
            Frame::OwesGreeting { .. }
            | Frame::Show { .. }
            | Frame::Manager { .. }
            | Frame::ManagerCallback { .. }
            | Frame::Shutdown { .. }
            | Frame::Registering { .. }
            | Frame::Settling
            | Frame::Sleep { .. }
            | Frame::Query { .. }
            | Frame::Requesting { .. }
            | Frame::Answering { .. }
            | Frame::Deregister { .. },
        ) => None,
    };
    // A delivery's steps name the hub the thread delivers.
    let delivering = |hub: &u32| {
        if frame_hub == Some(names.h(*hub)) {
            Ok(())
        } else {
            Err("the step names a hub this thread is not delivering".to_string())
        }
    };
    let op = match obs {
        Obs::Other(_) | Obs::DetachWaits { .. } => return Ok(vec![state.clone()]),
        // The call goes on: the specification's hub has delivered its item.
        Obs::Settled { hub, ticket } => {
            let done = state.hubs[usize::from(names.h(*hub))].done;
            if u64::from(done) < *ticket {
                return Err(format!(
                    "a call went on past hub {hub}'s item {ticket}, which is not delivered yet (the specification's hub has delivered up to {done})"
                ));
            }
            return Ok(vec![state.clone()]);
        }
        // The completion is the validator's, not the specification's (which has no
        // `Detached::wait`): it waits for the client's in-flight count to reach 0, and
        // the detach closed the client first, so no count is taken after it.
        Obs::DetachDone { client } => {
            let c = &state.clients[usize::from(names.c(*client))];
            if !c.closed() || c.in_flight != 0 {
                return Err(format!(
                    "a detach's completion fires only once its client is closed and every call admitted before the detach returned ({} in flight)",
                    c.in_flight
                ));
            }
            return Ok(vec![state.clone()]);
        }
        Obs::PowerRequested { client, hub } => Op::Request {
            client: names.c(*client),
            hub: names.h(*hub),
            queued: true,
        },
        Obs::PowerAnswered {
            client,
            hub,
            accepted,
            reported,
        } => match top {
            Some(Frame::Answering {
                hub: h, client: c, ..
            }) => {
                if h != names.h(*hub) || c != names.c(*client) {
                    return Err("the answer returns for another request than its own".into());
                }
                Op::Answered {
                    accepted: *accepted,
                    reported: *reported,
                }
            }
            _ if *accepted || *reported => {
                return Err(
                    "an answer that queued a change (or was accepted) returns on a thread not answering"
                        .into(),
                )
            }
            _ => Op::Reject {
                hub: names.h(*hub),
                client: names.c(*client),
                live: true,
            },
        },
        Obs::Registered { client } => Op::Register {
            client: names.c(*client),
        },
        Obs::GreetingOwed { client } => Op::OweGreeting {
            client: names.c(*client),
        },
        Obs::Shown { client } => Op::Show {
            client: names.c(*client),
        },
        Obs::ManagerBegin { client, event } => Op::ManagerBegin {
            client: names.c(*client),
            removal: *event == PmEvent::Removal,
        },
        Obs::ManagerEnd {
            client,
            event,
            panicked,
        } => {
            if !matches!(top, Some(Frame::ManagerCallback { removal, .. }) if removal == (*event == PmEvent::Removal))
            {
                return Err(
                    "the Policy Manager event's call that returns is not running on this thread"
                        .into(),
                );
            }
            Op::End {
                client: names.c(*client),
                panicked: *panicked,
            }
        }
        Obs::ManagerSkipped { client, event } => Op::ManagerSkip {
            client: names.c(*client),
            removal: *event == PmEvent::Removal,
        },
        Obs::ShutdownEnter => Op::ShutdownEnter,
        Obs::ShutdownSleeps { client } => Op::ShutClose {
            client: names.c(*client),
            sleeps: true,
        },
        Obs::ShutdownReturn => Op::ShutdownReturn,
        Obs::HubArrived { hub, clients } => Op::HubArrive {
            hub: names.h(*hub),
            clients: names.set(clients),
        },
        Obs::Submitted {
            hub,
            appended,
            ticket,
            settle,
        } => {
            let (hub, settle) = (names.h(*hub), *settle);
            let appends = !matches!(appended, Appended::Nothing);
            let kick = !appends && matches!(top, Some(Frame::Kick { .. }));
            let want = Spec::submit_ticket(state, hub, appends, kick);
            if small(*ticket, "ticket")? != want {
                return Err(format!(
                    "submitted with ticket {ticket}, the specification's is {want}"
                ));
            }
            match appended {
                Appended::Change { .. } => Op::Change { hub, settle },
                Appended::Removal { .. } => Op::Remove { hub, settle },
                Appended::Replay { client, seq } => {
                    let Some(Frame::Registering { client: c, .. }) = top else {
                        return Err("a replay queued by a thread that is not registering".into());
                    };
                    if c != names.c(*client) || u64::from(state.hubs[usize::from(hub)].seq) != *seq
                    {
                        return Err(
                            "the replay is not the registering client's, at the hub's current seq"
                                .into(),
                        );
                    }
                    Op::Replay {
                        hub,
                        queued: true,
                        settle,
                    }
                }
                Appended::Nothing if kick => Op::Kick { hub, settle },
                Appended::Nothing => Op::Replay {
                    hub,
                    queued: false,
                    settle,
                },
            }
        }
        Obs::Took { hub, seq, ticket } => {
            let hub = names.h(*hub);
            let front = state.hubs[usize::from(hub)].queue.first().map(|e| e.ticket);
            if front.is_some_and(|f| u64::from(f) != *ticket) {
                return Err(format!(
                    "took ticket {ticket}, the front of the specification's queue is {front:?}"
                ));
            }
            Op::Take {
                hub,
                seq: small(*seq, "seq")?,
            }
        }
        Obs::DrainStop { hub, woke, .. } => Op::DrainStop {
            hub: names.h(*hub),
            woke: *woke,
        },
        Obs::Awake {
            hub,
            ticket,
            settle,
        } => {
            let hub = names.h(*hub);
            let ticket = small(*ticket, "ticket")?;
            if !matches!(top, Some(Frame::Sleep { hub: h, ticket: k, .. }) if h == hub && k == ticket)
            {
                return Err("woke up from a sleep this thread is not in".into());
            }
            Op::Awake {
                hub,
                settle: *settle,
            }
        }
        Obs::Settles {
            hub,
            ticket,
            settle,
        } => Op::Settles {
            hub: names.h(*hub),
            ticket: small(*ticket, "ticket")?,
            settle: *settle,
        },
        Obs::TurnWaits { client, hub, seq } => {
            delivering(hub)?;
            Op::TurnWaits {
                client: names.c(*client),
                seq: small(*seq, "seq")?,
            }
        }
        Obs::Acquire { client, from } => Op::Acquire {
            client: names.c(*client),
            from: small(*from, "in-flight count")?,
        },
        Obs::Skipped { client, hub, seq } => {
            delivering(hub)?;
            let Some(Frame::Drain { cur: Some(d), .. }) = top else {
                return Err("a skip outside a delivery".into());
            };
            if u64::from(d.item.seq()) != *seq {
                return Err(format!(
                    "skipped the item with seq {seq}, the delivery's item has seq {}",
                    d.item.seq()
                ));
            }
            Op::Skip {
                client: names.c(*client),
            }
        }
        Obs::Begin { client, hub, seq } => {
            delivering(hub)?;
            Op::Begin {
                client: names.c(*client),
                seq: small(*seq, "seq")?,
            }
        }
        Obs::End {
            client,
            hub,
            seq,
            panicked,
        } => {
            let Some(Frame::Callback { hub: h, seq: q, .. }) = top else {
                return Err("a hub event's call returns on a thread not running one".into());
            };
            if h != names.h(*hub) || u64::from(q) != *seq {
                return Err(format!(
                    "the call that returns is for hub {hub}'s seq {seq}, the one running is for another hub or seq ({q})"
                ));
            }
            Op::End {
                client: names.c(*client),
                panicked: *panicked,
            }
        }
        Obs::Release { client, from } => Op::Release {
            client: names.c(*client),
            from: small(*from, "in-flight count")?,
        },
        Obs::DeregisterEnter { client } => Op::DeregisterEnter {
            target: names.c(*client),
        },
        Obs::DetachEnter { client } => Op::DetachEnter {
            target: names.c(*client),
        },
        Obs::DetachReturn { .. } => Op::DetachReturn,
        Obs::WaitFor { holding, client } => {
            let Some(Frame::Deregister {
                target, holding: h, ..
            }) = top
            else {
                return Err("a wait-for edge outside a deregister".into());
            };
            if target != names.c(*client) || h != names.set(holding) {
                return Err(
                    "the wait-for edge is not this deregister's (holding -> target)".into(),
                );
            }
            Op::WaitFor
        }
        Obs::Retired { client } => Op::Retire {
            victim: names.c(*client),
        },
        Obs::Closed { in_flight, .. } => Op::Close {
            in_flight: small(*in_flight, "in-flight count")?,
        },
        Obs::Sleeps { .. } => Op::Sleep,
        Obs::DeregisterReturn { ok: true, .. } => Op::Return,
        Obs::DeregisterReturn { ok: false, .. } => Op::Fail,
    };
    if let (
        Obs::DeregisterReturn { client, .. }
        | Obs::DetachReturn { client }
        | Obs::Sleeps { client }
        | Obs::Closed { client, .. },
        Some(Frame::Deregister { target, victim, .. }),
    ) = (obs, top)
    {
        let c = names.c(*client);
        if c != target && c != victim {
            return Err("the step names another client than this thread's deregister".into());
        }
    }
    let mut nexts = Vec::new();
    let mut first = None;
    for op in std::iter::once(op).chain(alternatives(names, state, top, obs)) {
        match take_as(spec, names, state, t, obs, op) {
            Ok(next) => nexts.push(next),
            Err(why) => {
                first.get_or_insert(why);
            }
        }
    }
    match first {
        Some(why) if nexts.is_empty() => Err(why),
        _ => Ok(nexts),
    }
}

/// Takes `obs` on `state` as the specification's `op`, with what the step says beside
/// the action checked against the state after it.
fn take_as(
    spec: &Spec,
    names: &Names,
    state: &State,
    t: u8,
    obs: &Obs,
    op: Op,
) -> Result<State, String> {
    let mut next = spec
        .apply(state, t, op)
        .map_err(|why| format!("{op:?}: {why}"))?;
    // Spec mutant power-request-unlocked: the checked request is queued next.
    if let (Op::Request { .. }, Some(Frame::Requesting { .. })) =
        (op, next.threads[usize::from(t)].last())
    {
        let queued = Op::RequestQueued { queued: true };
        next = spec
            .apply(&next, t, queued)
            .map_err(|why| format!("{queued:?}: {why}"))?;
    }
    if let Obs::DrainStop { hub, done, .. } = obs {
        let have = next.hubs[usize::from(names.h(*hub))].done;
        if u64::from(have) != *done {
            return Err(format!(
                "{op:?}: stopped with done {done}, the specification's is {have}"
            ));
        }
    }
    if let Obs::Submitted {
        hub,
        appended: Appended::Change { seq } | Appended::Removal { seq },
        ..
    } = obs
    {
        if u64::from(next.hubs[usize::from(names.h(*hub))].seq) != *seq {
            return Err(format!(
                "{op:?}: queued with seq {seq}, the specification's next seq differs"
            ));
        }
    }
    Ok(next)
}

/// How many search nodes a validation may visit before it gives up (a correct trace is
/// normally accepted in about one node per step).
pub const SEARCH_LIMIT: usize = 200_000;

/// Checks that `trace` is a behaviour of the specification (with the code's behaviour,
/// no mutant). See the module docs for the orders it tries.
pub fn validate(trace: &[TraceEvent]) -> Result<(), Divergence> {
    validate_with(trace, None)
}

/// The specification's `always` properties that judge a validated state: every one but
/// P3 (no deadlock), which asks what the closed world could do next and so has no
/// meaning in the open world a trace is replayed in.
fn always_properties() -> Vec<stateright::Property<Spec>> {
    crate::properties::all()
        .into_iter()
        .filter(|p| {
            matches!(p.expectation, stateright::Expectation::Always) && !p.name.starts_with("P3 ")
        })
        .collect()
}

/// `next`, if every property of `always` holds in it; else which one fails.
fn holds(spec: &Spec, always: &[stateright::Property<Spec>], next: State) -> Result<State, String> {
    match always.iter().find(|p| !(p.condition)(spec, &next)) {
        None => Ok(next),
        Some(p) => Err(format!(
            "the specification's property \"{}\" fails after this step",
            p.name
        )),
    }
}

/// What a finished execution has left owed, or `Ok` if nothing: `s` is the state after
/// every step (and every unobserved step a finished execution has taken, [`finish`]).
///
/// A trace is a whole execution (every thread joined), so its last state must be one a
/// whole run of the specification ends in: nothing in progress and nothing owed. Clients
/// may still be registered and hubs present (the program may stop there), and power
/// requests may be unanswered (the hardware may never answer one it took; an answer in
/// progress is a thread inside a call), so none of those is checked. What is, and why a
/// whole execution of the correct code always has it:
///
/// 1. every thread is back from its calls (no call, callback, drain, sleep, deregister or
///    shutdown in progress): every thread returned; and no detach completion is still
///    waited for (a `DetachWaits` with no `DetachDone` after it on its thread,
///    `detach_waits`): a thread that returned from `Detached::wait` reported it;
/// 2. every thread's obligations are settled (no owed delivery, no owed greeting): the
///    outermost call settles them before it returns;
/// 3. every hub's queue is empty, no hub is being drained, and every item appended is
///    delivered (`done` is the last ticket, so nobody could still wait for one): every
///    append has a caller that sees its item delivered (drains, sleeps until a drainer
///    passes it, or owes it) before it returns;
/// 4. every in-flight count is given back (no delivery admitted whose call never ended):
///    a count is taken by a delivery and given back before the delivery moves on;
/// 5. every client still registered and not closed was greeted (its Policy Manager
///    arrival returned) and shown to the hubs: `register` (or the outermost call that
///    owes the greeting) does both before it returns;
/// 6. every client received every event of each hub that was addressed to it (its
///    arrival, or its replay), up to the last, unless delivery found it closed: the
///    liveness property "every queued item is delivered or dropped as the contract
///    says", whose items 3 says are all delivered;
/// 7. the `always` properties (but P3) hold in it, as in every state before it.
///
/// Under a spec mutant ([`validate_with`]) 4–6 are not checked: they are what the
/// correct specification owes (the closed world checks them as liveness), and a mutant's
/// bug may leave them undone (a leaked count, an event never delivered).
fn ended(
    spec: &Spec,
    names: &Names,
    always: &[stateright::Property<Spec>],
    detach_waits: &[(usize, u64)],
    s: &State,
) -> Result<(), String> {
    let thread = |t: usize| names.threads[t].as_str();
    let client = |c: usize| format!("{:#x}", names.clients[c]);
    let hub = |h: usize| names.hubs[h];
    let owed = |t: usize| {
        s.owed[t]
            .iter()
            .map(|o| match *o {
                Owed::Deliver { hub: h, ticket } => {
                    format!(
                        "the delivery of hub {}'s item {ticket}",
                        hub(usize::from(h))
                    )
                }
                Owed::Greet { client: c } => {
                    format!("the greeting of client {}", client(usize::from(c)))
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(t) = s.threads.iter().position(|t| !t.is_empty()) {
        // An outermost call that stopped at its obligations owes them.
        if s.threads[t].last() == Some(&Frame::Settling) && !s.owed[t].is_empty() {
            return Err(format!(
                "the trace ends with thread {}'s outermost call still owing {}: an obligation never settled",
                thread(t),
                owed(t)
            ));
        }
        return Err(format!(
            "the trace ends with thread {} still inside a call (its frames, outermost first: {:?})",
            thread(t),
            s.threads[t]
        ));
    }
    if let Some(&(t, c)) = detach_waits.first() {
        return Err(format!(
            "the trace ends with thread {} still waiting for client {c:#x}'s detach completion: a wake-up owed",
            thread(t)
        ));
    }
    if let Some(t) = s.owed.iter().position(|o| !o.is_empty()) {
        return Err(format!(
            "the trace ends with thread {} still owing {}: an obligation never settled",
            thread(t),
            owed(t)
        ));
    }
    for (h, st) in s.hubs.iter().enumerate() {
        if !st.queue.is_empty() {
            return Err(format!(
                "the trace ends with hub {}'s queue holding {} item(s) (tickets {:?}): stranded",
                hub(h),
                st.queue.len(),
                st.queue.iter().map(|e| e.ticket).collect::<Vec<_>>()
            ));
        }
        if st.draining {
            return Err(format!(
                "the trace ends with hub {} still marked as being drained",
                hub(h)
            ));
        }
        if st.done != st.appended {
            return Err(format!(
                "the trace ends with hub {}'s items up to ticket {} appended but only up to {} delivered",
                hub(h),
                st.appended,
                st.done
            ));
        }
    }
    if spec.mutant.is_none() {
        for (c, st) in s.clients.iter().enumerate() {
            if st.in_flight != 0 {
                return Err(format!(
                    "the trace ends with client {} holding {} in-flight count(s): a call admitted that never ended, or a count never given back",
                    client(c),
                    st.in_flight
                ));
            }
            if !crate::properties::greeting_complete(st) {
                return Err(format!(
                    "the trace ends with client {} registered but never {}",
                    client(c),
                    if st.greeted {
                        "shown to the hubs"
                    } else {
                        "greeted (its Policy Manager arrival owed)"
                    }
                ));
            }
            for (h, (hs, log)) in s.hubs.iter().zip(&st.logs).enumerate() {
                if !crate::properties::hub_complete(hs, log) {
                    return Err(format!(
                        "the trace ends with client {} owed hub {}'s events: {}, it received {} (the hub is at seq {}{})",
                        client(c),
                        hub(h),
                        if log.owed {
                            "its arrival (or replay) was addressed to it"
                        } else {
                            "it received part of the hub's presence"
                        },
                        if log.seen {
                            format!(
                                "up to seq {}{}",
                                log.last,
                                if log.removed { " and the removal" } else { "" }
                            )
                        } else {
                            "nothing".to_string()
                        },
                        hs.seq,
                        if hs.removed { ", its removal queued" } else { "" }
                    ));
                }
            }
        }
    }
    match always.iter().find(|p| !(p.condition)(spec, s)) {
        None => Ok(()),
        Some(p) => Err(format!(
            "the specification's property \"{}\" fails in the trace's last state",
            p.name
        )),
    }
}

/// The search's hash of a node (step, steps taken early, state): a word-at-a-time
/// multiply-rotate mix with a splitmix64 finish. The nodes of one search are few (at most
/// [`SEARCH_LIMIT`]) and come from no adversary, so a 64-bit hash of this quality is as
/// good a "seen" key as SipHash's, at a fraction of its cost per field.
#[derive(Default)]
struct NodeHasher(u64);

impl Hasher for NodeHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.write_u64(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let mut last = [0u8; 8];
        let rest = chunks.remainder();
        last[..rest.len()].copy_from_slice(rest);
        self.write_u64(u64::from_le_bytes(last) ^ ((rest.len() as u64) << 56));
    }

    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }

    fn finish(&self) -> u64 {
        let mut z = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// [`validate`] against the specification with a spec mutant switched on.
pub fn validate_with(
    trace: &[TraceEvent],
    mutant: Option<crate::spec::SpecMutant>,
) -> Result<(), Divergence> {
    validate_granted(trace, mutant, &Grants::new())
}

/// Which clients (raw handles) were granted `ASSIGN_POWER` (`true`) or not (`false`):
/// the access each heard with its Policy Manager arrival. The probe's steps do not say,
/// so the harness that recorded the trace does; a client it does not name is taken as
/// granted (its power requests are validated, but not against its access).
pub type Grants = BTreeMap<u64, bool>;

/// [`validate_with`], each client's access as `grants` says.
pub fn validate_granted(
    trace: &[TraceEvent],
    mutant: Option<crate::spec::SpecMutant>,
    grants: &Grants,
) -> Result<(), Divergence> {
    let names = Names::of(trace);
    if names.clients.len() > 32 {
        return Err(Divergence {
            at: 0,
            reason: "more than 32 clients: beyond the specification's sets".into(),
            timeline: String::new(),
        });
    }
    let size = Size {
        clients: 0,
        hubs: 0,
        threads: 0,
        changes: 0,
        removal: false,
        reentrant: 0,
        panics: 0,
        queries: 0,
        preregistered: false,
        callback_reports: 0,
        rearrivals: 0,
        shutdown: false,
        power_requests: 0,
        granted: 0,
        detaches: 0,
    };
    let spec = Spec {
        open: true,
        ..Spec::new(size, mutant)
    };
    let mut init = State::initial(
        names.clients.len() as u8,
        names.hubs.len() as u8,
        names.threads.len() as u8,
        None,
    );
    for (c, raw) in init.clients.iter_mut().zip(&names.clients) {
        c.power = grants.get(raw).copied().unwrap_or(true);
    }
    let thread_of: Vec<u8> = trace
        .iter()
        .map(|e| {
            names
                .threads
                .iter()
                .position(|t| *t == e.thread)
                .expect("named") as u8
        })
        .collect();
    // Each step's previous step on the same thread.
    let mut last: BTreeMap<u8, usize> = BTreeMap::new();
    let pred: Vec<Option<usize>> = thread_of
        .iter()
        .enumerate()
        .map(|(i, &t)| last.insert(t, i))
        .collect();
    // Node: every step before `k` is taken, and so are the ones in `early` (all >= k).
    // `Reorder` holds an expanded node whose other orders (a later step of another thread
    // taken first) are tried only once every order through its in-order step failed: a
    // trace the code reported in an order the specification accepts is then validated
    // with one `take` per step, and the search visits nodes in the same order as if all
    // of a node's successors had been pushed at once.
    enum Node {
        Visit {
            k: usize,
            early: Vec<usize>,
            state: State,
        },
        Reorder {
            k: usize,
            early: Vec<usize>,
            state: State,
        },
    }
    // The detach completions still waited for at the end: a thread's `DetachWaits` with
    // no `DetachDone` after it (the thread's own steps are in order, whatever the search).
    let mut waiting: BTreeMap<u8, u64> = BTreeMap::new();
    for (e, &t) in trace.iter().zip(&thread_of) {
        if let Obs::DetachWaits { client } = e.obs {
            waiting.insert(t, client);
        } else if let Obs::DetachDone { .. } = e.obs {
            waiting.remove(&t);
        }
    }
    let detach_waits: Vec<(usize, u64)> = waiting
        .into_iter()
        .map(|(t, c)| (usize::from(t), c))
        .collect();
    let always = always_properties();
    let mut stack = vec![Node::Visit {
        k: 0,
        early: Vec::new(),
        state: init,
    }];
    let mut seen: HashSet<u64> = HashSet::new();
    // The failure of the order that got furthest: how many steps it took, the step
    // that failed (or the last, `end`: every step taken, the end owes something), why.
    struct Failure {
        progress: usize,
        at: usize,
        reason: String,
        end: bool,
    }
    let mut best: Option<Failure> = None;
    let mut visited = 0usize;
    while let Some(node) = stack.pop() {
        let (mut k, mut early, state) = match node {
            Node::Visit { k, early, state } => (k, early, state),
            Node::Reorder { k, early, state } => {
                // The next untaken step of each other thread whose previous step was
                // reported before k, pushed so that the lowest thread is tried last.
                let here = thread_of[k];
                for t in 0..names.threads.len() as u8 {
                    if t == here {
                        continue;
                    }
                    let Some(j) =
                        (k + 1..trace.len()).find(|&j| thread_of[j] == t && !early.contains(&j))
                    else {
                        continue;
                    };
                    if pred[j].is_some_and(|p| p >= k) {
                        continue;
                    }
                    let Ok(nexts) = take(&spec, &names, &state, t, &trace[j].obs) else {
                        continue;
                    };
                    for next in nexts.into_iter().rev() {
                        let Ok(next) = holds(&spec, &always, next) else {
                            continue;
                        };
                        let mut e = early.clone();
                        e.push(j);
                        e.sort_unstable();
                        stack.push(Node::Visit {
                            k,
                            early: e,
                            state: next,
                        });
                    }
                }
                continue;
            }
        };
        while early.first() == Some(&k) {
            early.remove(0);
            k += 1;
        }
        if k == trace.len() {
            // Every step taken: the execution has ended, so its state must be the end of
            // a whole run (another order of the same steps may still end in one).
            match ended(&spec, &names, &always, &detach_waits, &finish(&spec, state)) {
                Ok(()) => return Ok(()),
                Err(reason) => {
                    // The end outranks any step that failed: every step was taken.
                    let progress = k + early.len();
                    if best.as_ref().is_none_or(|b| progress >= b.progress) {
                        best = Some(Failure {
                            progress,
                            at: k.saturating_sub(1),
                            reason,
                            end: true,
                        });
                    }
                    continue;
                }
            }
        }
        let mut h = NodeHasher::default();
        (k, &early, &state).hash(&mut h);
        if !seen.insert(h.finish()) {
            continue;
        }
        visited += 1;
        if visited > SEARCH_LIMIT {
            break;
        }
        // The in-order step first; the other orders wait below it on the stack.
        // Each reading of it the specification takes and whose state keeps its
        // properties, the first one tried first.
        let in_order = take(&spec, &names, &state, thread_of[k], &trace[k].obs).and_then(|nexts| {
            let mut kept = Vec::new();
            let mut first = None;
            for next in nexts {
                match holds(&spec, &always, next) {
                    Ok(next) => kept.push(next),
                    Err(why) => {
                        first.get_or_insert(why);
                    }
                }
            }
            match first {
                Some(why) if kept.is_empty() => Err(why),
                _ => Ok(kept),
            }
        });
        stack.push(Node::Reorder {
            k,
            early: early.clone(),
            state,
        });
        match in_order {
            Ok(nexts) => {
                for next in nexts.into_iter().rev() {
                    stack.push(Node::Visit {
                        k: k + 1,
                        early: early.clone(),
                        state: next,
                    });
                }
            }
            Err(reason) => {
                let progress = k + early.len();
                if best.as_ref().is_none_or(|b| progress > b.progress) {
                    best = Some(Failure {
                        progress,
                        at: k,
                        reason,
                        end: false,
                    });
                }
            }
        }
    }
    let Failure {
        at, reason, end, ..
    } = best.unwrap_or(Failure {
        progress: 0,
        at: 0,
        reason: format!("no order of the steps found within {SEARCH_LIMIT} search nodes"),
        end: false,
    });
    let mut timeline = String::new();
    for (i, e) in trace.iter().enumerate().take(at + 1) {
        let mark = match (i == at, end) {
            (false, _) => "",
            (true, false) => "   <- the specification cannot take this step",
            (true, true) => "   <- the trace ends here, with something owed",
        };
        let _ = writeln!(
            timeline,
            "  {:>4}  {:<16} {:?}{mark}",
            i + 1,
            e.thread,
            e.obs
        );
    }
    let spec_names = format!(
        "clients {:?} are spec clients 0..; hubs {:?} are spec hubs 0..",
        names
            .clients
            .iter()
            .map(|c| format!("{c:#x}"))
            .collect::<Vec<_>>(),
        names.hubs
    );
    let _ = writeln!(timeline, "  ({spec_names})");
    Err(Divergence {
        at,
        reason,
        timeline,
    })
}

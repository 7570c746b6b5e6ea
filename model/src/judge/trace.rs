//! Trace validation of executions of the shipped library against the specification
//! (`usbpm-spec`, docs/SPEC.md).
//!
//! The monitor records every step the library's probe reports, with the thread that took
//! it ([`Monitor::steps`]). [`trace_of`] turns those steps into the specification's
//! observations and [`check_execution`] fails the execution if the specification cannot
//! take them. Any harness with a `Monitor` (scenarios, generated programs) can call
//! [`validate_steps`] on what it recorded.

use usbpm::checking::{Appended as LibAppended, ManagerEvent, Settle, Step};
use usbpm_spec::trace::{Appended, Obs, PmEvent, TraceEvent};
use usbpm_spec::{Divergence, Grants, Settle as SpecSettle, SpecMutant};

use crate::judge::monitor::Monitor;

/// The specification's `Settle` for the library's: what a caller does about its item.
fn spec_settle(s: Settle) -> SpecSettle {
    match s {
        Settle::Done => SpecSettle::Done,
        Settle::Owes => SpecSettle::Owes,
        Settle::Sleeps => SpecSettle::Sleeps,
        Settle::Drains => SpecSettle::Drains,
    }
}

/// The specification's name for one of the Policy Manager's own events.
fn pm_event(e: ManagerEvent) -> PmEvent {
    match e {
        ManagerEvent::Arrival => PmEvent::Arrival,
        ManagerEvent::Removal => PmEvent::Removal,
    }
}

/// The specification's observation of one library step.
pub fn observe(step: &Step) -> Obs {
    let c = |h: &usbpm::ClientHandle| h.into_raw();
    match step {
        // `register` puts the client in the registry hidden from the hubs; its greeting
        // (the Policy Manager arrival's count, call and release, or the arrival skipped;
        // then its showing) follows on the same thread, or is owed by the thread's
        // outermost call when `register` is called inside a callback.
        Step::Registered(h) => Obs::Registered { client: c(h) },
        Step::GreetingOwed(h) => Obs::GreetingOwed { client: c(h) },
        Step::Shown(h) => Obs::Shown { client: c(h) },
        Step::ManagerCallBegin { client, event } => Obs::ManagerBegin {
            client: c(client),
            event: pm_event(*event),
        },
        Step::ManagerCallEnd {
            client,
            event,
            panicked,
        } => Obs::ManagerEnd {
            client: c(client),
            event: pm_event(*event),
            panicked: *panicked,
        },
        Step::ManagerSkipped { client, event } => Obs::ManagerSkipped {
            client: c(client),
            event: pm_event(*event),
        },
        Step::ShutdownEnter => Obs::ShutdownEnter,
        Step::ShutdownSleeps(h) => Obs::ShutdownSleeps { client: c(h) },
        Step::ShutdownReturn => Obs::ShutdownReturn,
        Step::HubArrived { hub, clients } => Obs::HubArrived {
            hub: hub.0,
            clients: clients.iter().map(c).collect(),
        },
        Step::Submitted {
            hub,
            appended,
            ticket,
            settle: t,
        } => Obs::Submitted {
            hub: hub.0,
            appended: match appended {
                LibAppended::Change { seq } => Appended::Change { seq: *seq },
                LibAppended::Removal { seq } => Appended::Removal { seq: *seq },
                LibAppended::Replay { client, seq } => Appended::Replay {
                    client: c(client),
                    seq: *seq,
                },
                LibAppended::Nothing => Appended::Nothing,
            },
            ticket: *ticket,
            settle: spec_settle(*t),
        },
        Step::Took { hub, seq, ticket } => Obs::Took {
            hub: hub.0,
            seq: *seq,
            ticket: *ticket,
        },
        Step::DrainStop { hub, done, woke } => Obs::DrainStop {
            hub: hub.0,
            done: *done,
            woke: *woke,
        },
        Step::Awake {
            hub,
            ticket,
            settle: t,
        } => Obs::Awake {
            hub: hub.0,
            ticket: *ticket,
            settle: spec_settle(*t),
        },
        Step::Settles {
            hub,
            ticket,
            settle: t,
        } => Obs::Settles {
            hub: hub.0,
            ticket: *ticket,
            settle: spec_settle(*t),
        },
        Step::TurnWaits { client, hub, seq } => Obs::TurnWaits {
            client: c(client),
            hub: hub.0,
            seq: *seq,
        },
        Step::InFlightAcquire { client, from } => Obs::Acquire {
            client: c(client),
            from: *from,
        },
        Step::Skipped { client, hub, seq } => Obs::Skipped {
            client: c(client),
            hub: hub.0,
            seq: *seq,
        },
        Step::CallbackBegin { client, hub, seq } => Obs::Begin {
            client: c(client),
            hub: hub.0,
            seq: *seq,
        },
        Step::CallbackEnd {
            client,
            hub,
            seq,
            panicked,
        } => Obs::End {
            client: c(client),
            hub: hub.0,
            seq: *seq,
            panicked: *panicked,
        },
        Step::InFlightRelease { client, from } => Obs::Release {
            client: c(client),
            from: *from,
        },
        Step::DeregisterEnter(h) => Obs::DeregisterEnter { client: c(h) },
        Step::WaitFor { holding, client } => Obs::WaitFor {
            holding: holding.iter().map(c).collect(),
            client: c(client),
        },
        Step::Retired(h) => Obs::Retired { client: c(h) },
        Step::DeregisterClosed { client, in_flight } => Obs::Closed {
            client: c(client),
            in_flight: *in_flight,
        },
        Step::DeregisterSleeps(h) => Obs::Sleeps { client: c(h) },
        Step::DeregisterReturn { client, ok } => Obs::DeregisterReturn {
            client: c(client),
            ok: *ok,
        },
        Step::DetachEnter(h) => Obs::DetachEnter { client: c(h) },
        Step::DetachReturn(h) => Obs::DetachReturn { client: c(h) },
        // A detach's completion: the specification has no `Detached::wait`, so the
        // validator judges these two itself (the completion fires only once the client's
        // count is 0; a trace does not end with one still waiting).
        Step::DetachWaits(h) => Obs::DetachWaits { client: c(h) },
        Step::DetachDone(h) => Obs::DetachDone { client: c(h) },
        // Not modelled, so they stutter. `Queued`, `Woke` and `WaiterLeaves` say no more
        // than the steps around them (the append's `Submitted`; the release or skip that
        // woke; the waiter's return or completion).
        // `ContextDrop` is the last reference to a client going, which the specification
        // does not track: its clients are names in sets (the registry, subscribers, a
        // drainer's pruned clients), not counted references, and when the last one goes
        // depends on the order in which every holder lets go. The monitor judges it (P9:
        // after the client's last call, outside any hub's drain).
        Step::Settled { hub, ticket } => Obs::Settled {
            hub: hub.0,
            ticket: *ticket,
        },
        // The end of a greeting marks where the callbacks' budget of reports is owed no
        // longer (P6); the specification has no such budget.
        other @ (Step::Queued { .. }
        | Step::Greeted(_)
        | Step::Woke(_)
        | Step::WaiterLeaves(_)
        | Step::ContextDrop(_)) => Obs::Other(format!("{other:?}")),
        // A power request queued for the hardware (under the registry lock), and the
        // hardware's answer returning: an accepted one (or one reported) after the
        // `Submitted` of its change (or of nothing, its request stale) and its settling;
        // a rejected one alone. The specification has no connectors: a hub's requests
        // are for its one sink, attached.
        Step::PowerRequested { client, hub, .. } => Obs::PowerRequested {
            client: c(client),
            hub: hub.0,
        },
        Step::PowerAnswered {
            client,
            hub,
            accepted,
            reported,
            ..
        } => Obs::PowerAnswered {
            client: c(client),
            hub: hub.0,
            accepted: *accepted,
            reported: *reported,
        },
    }
}

/// The trace of recorded steps.
pub fn trace_of(steps: &[(String, Step)]) -> Vec<TraceEvent> {
    steps
        .iter()
        .map(|(thread, step)| TraceEvent {
            thread: thread.clone(),
            obs: observe(step),
        })
        .collect()
}

/// Validates recorded steps against the specification (`mutant`: a spec mutant, for
/// the teeth of the validator itself), each client's power access as `grants` says (what
/// its Policy Manager arrival granted, [`Monitor::grants`]). Every execution is
/// validated: the specification models the greeting, `shutdown` and power requests too.
pub fn validate_steps(
    steps: &[(String, Step)],
    grants: &Grants,
    mutant: Option<SpecMutant>,
) -> Result<(), Divergence> {
    usbpm_spec::trace::validate_granted(&trace_of(steps), mutant, grants)
}

/// Fails the execution (panics) if its trace is not a behaviour of the specification:
/// the recorded steps up to the first one the specification cannot take, and `replay`.
pub fn check_execution(monitor: &Monitor, replay: &str) {
    if let Err(d) = validate_steps(&monitor.steps(), &monitor.grants(), None) {
        panic!("\n{d}\nReplay: {replay}");
    }
}

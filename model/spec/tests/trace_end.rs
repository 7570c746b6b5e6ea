//! Trace validation judges the end of a trace: a trace is a whole execution, so what it
//! leaves must be the end of a whole run of the specification (nothing in progress,
//! nothing owed). Clients may stay registered and hubs present.

mod common;

use common::{concat, ev, greeting, hub_call, A};
use usbpm_spec::trace::{Appended, Obs, TraceEvent};
use usbpm_spec::{validate, Settle};

const HUB: u32 = 1;

fn accepted(trace: &[TraceEvent]) {
    if let Err(d) = validate(trace) {
        panic!("{d}");
    }
}

fn rejected(trace: &[TraceEvent]) -> String {
    validate(trace)
        .expect_err("the specification takes a trace it must not")
        .to_string()
}

/// The hub arrives on `th` for A; `th` drains the arrival (ticket 1): its count, its
/// call's begin; the rest (`hub_call`'s end and release, the stop) is `arrival_end`.
fn arrival_begin(th: &str) -> Vec<TraceEvent> {
    let mut call = hub_call(th, A, HUB, 0);
    call.truncate(2);
    concat(vec![
        vec![
            ev(
                th,
                Obs::HubArrived {
                    hub: HUB,
                    clients: vec![A],
                },
            ),
            ev(
                th,
                Obs::Submitted {
                    hub: HUB,
                    appended: Appended::Nothing,
                    ticket: 1,
                    settle: Settle::Drains,
                },
            ),
            ev(
                th,
                Obs::Took {
                    hub: HUB,
                    seq: 0,
                    ticket: 1,
                },
            ),
        ],
        call,
    ])
}

fn arrival_end(th: &str) -> Vec<TraceEvent> {
    let mut call = hub_call(th, A, HUB, 0);
    call.drain(..2);
    call.push(ev(
        th,
        Obs::DrainStop {
            hub: HUB,
            done: 1,
            woke: false,
        },
    ));
    call
}

/// `detach(A)` on `th` from outside callbacks, with `in_flight` calls running.
fn detach(th: &str, in_flight: u64) -> Vec<TraceEvent> {
    vec![
        ev(th, Obs::DetachEnter { client: A }),
        ev(th, Obs::Retired { client: A }),
        ev(
            th,
            Obs::Closed {
                client: A,
                in_flight,
            },
        ),
        ev(th, Obs::DetachReturn { client: A }),
    ]
}

/// A registered, the hub arrived and delivered: the trace ends with A still registered
/// and the hub present, which is a whole run's end.
#[test]
fn a_complete_trace_passes() {
    accepted(&concat(vec![
        greeting("main", A),
        arrival_begin("main"),
        arrival_end("main"),
    ]));
}

/// The trace stops inside the arrival's call: the end names the thread still inside a
/// call and marks the last step as the end.
#[test]
fn a_trace_that_ends_inside_a_call_fails_at_its_end() {
    let d = rejected(&concat(vec![greeting("main", A), arrival_begin("main")]));
    assert!(
        d.contains("the trace ends with thread main still inside a call"),
        "{d}"
    );
    assert!(d.contains("<- the trace ends here"), "{d}");
}

/// A callback reports a change (owed by its thread), and the outermost call never
/// settles it: the end names the obligation.
#[test]
fn an_obligation_never_settled_fails_at_the_end() {
    let m = "main";
    let mut t = concat(vec![greeting(m, A), arrival_begin(m)]);
    t.push(ev(
        m,
        Obs::Submitted {
            hub: HUB,
            appended: Appended::Change { seq: 1 },
            ticket: 2,
            settle: Settle::Owes,
        },
    ));
    t.extend(arrival_end(m));
    let d = rejected(&t);
    assert!(
        d.contains("thread main's outermost call still owing the delivery of hub 1's item 2"),
        "{d}"
    );
}

/// A detach while nothing runs: its completion waits and fires; the trace passes. One
/// that never fires leaves a wake-up owed at the end.
#[test]
fn a_detach_completion_still_waited_for_fails_at_the_end() {
    let m = "main";
    let base = concat(vec![
        greeting(m, A),
        arrival_begin(m),
        arrival_end(m),
        detach(m, 0),
        vec![ev(m, Obs::DetachWaits { client: A })],
    ]);
    let mut done = base.clone();
    done.push(ev(m, Obs::DetachDone { client: A }));
    accepted(&done);
    let d = rejected(&base);
    assert!(
        d.contains("still waiting for client 0x200000001's detach completion: a wake-up owed"),
        "{d}"
    );
}

/// A detach while the arrival's call runs on x: the completion may fire once that call's
/// release is taken, not before it (x's end and release are recorded after the
/// completion, the release's turn comes after the end's, so it cannot be taken early).
#[test]
fn a_detach_completion_before_the_last_release_diverges() {
    let x = "x";
    let d_th = "d";
    let base = concat(vec![greeting(x, A), arrival_begin(x), detach(d_th, 1)]);
    let mut waited = base.clone();
    waited.push(ev(d_th, Obs::DetachWaits { client: A }));
    waited.extend(arrival_end(x));
    waited.push(ev(d_th, Obs::DetachDone { client: A }));
    accepted(&waited);
    let mut early = base;
    early.extend([
        ev(d_th, Obs::DetachWaits { client: A }),
        ev(d_th, Obs::DetachDone { client: A }),
    ]);
    early.extend(arrival_end(x));
    let d = rejected(&early);
    assert!(d.contains("a detach's completion fires only once"), "{d}");
}

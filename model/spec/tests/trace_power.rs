//! Trace validation of power requests: a request queued for the hardware under the
//! registry lock (`PowerRequested`), the hardware's answer through the submit path of a
//! connector change (`Submitted`, its settling, then `PowerAnswered`) or rejected alone;
//! and the traces of the three power bugs diverge.

mod common;

use common::{concat, ev, greeting, A, B};
use usbpm_spec::trace::{validate_granted, Appended, Grants, Obs, TraceEvent};
use usbpm_spec::Settle;

const HUB: u32 = 1;

/// A granted `ASSIGN_POWER`, B query access only.
fn grants() -> Grants {
    [(A, true), (B, false)].into_iter().collect()
}

fn accepted(trace: &[TraceEvent]) {
    if let Err(d) = validate_granted(trace, None, &grants()) {
        panic!("{d}");
    }
}

fn diverges(trace: &[TraceEvent]) -> String {
    validate_granted(trace, None, &grants())
        .expect_err("the specification takes a trace it must not")
        .to_string()
}

/// One hub call of `client` for seq `seq`, its count taken from 0.
fn hub_call(th: &str, client: u64, seq: u64) -> Vec<TraceEvent> {
    common::hub_call(th, client, HUB, seq)
}

/// A and B registered, the hub arrived for both and delivered (ticket 1).
fn setup(m: &str) -> Vec<TraceEvent> {
    concat(vec![
        greeting(m, A),
        greeting(m, B),
        vec![
            ev(
                m,
                Obs::HubArrived {
                    hub: HUB,
                    clients: vec![A, B],
                },
            ),
            ev(
                m,
                Obs::Submitted {
                    hub: HUB,
                    appended: Appended::Nothing,
                    ticket: 1,
                    settle: Settle::Drains,
                },
            ),
            ev(
                m,
                Obs::Took {
                    hub: HUB,
                    seq: 0,
                    ticket: 1,
                },
            ),
        ],
        hub_call(m, A, 0),
        hub_call(m, B, 0),
        vec![ev(
            m,
            Obs::DrainStop {
                hub: HUB,
                done: 1,
                woke: false,
            },
        )],
    ])
}

fn requested(th: &str, client: u64) -> TraceEvent {
    ev(th, Obs::PowerRequested { client, hub: HUB })
}

fn answered(th: &str, client: u64, accepted: bool, reported: bool) -> TraceEvent {
    ev(
        th,
        Obs::PowerAnswered {
            client,
            hub: HUB,
            accepted,
            reported,
        },
    )
}

/// The hardware on `th` answers with a change `seq` (ticket `ticket`) and drains it to
/// A and B; `accepted` as the answer says.
fn answer_reported(th: &str, seq: u64, ticket: u64, accepted: bool) -> Vec<TraceEvent> {
    concat(vec![
        vec![
            ev(
                th,
                Obs::Submitted {
                    hub: HUB,
                    appended: Appended::Change { seq },
                    ticket,
                    settle: Settle::Drains,
                },
            ),
            ev(
                th,
                Obs::Took {
                    hub: HUB,
                    seq,
                    ticket,
                },
            ),
        ],
        hub_call(th, A, seq),
        hub_call(th, B, seq),
        vec![
            ev(
                th,
                Obs::DrainStop {
                    hub: HUB,
                    done: ticket,
                    woke: false,
                },
            ),
            answered(th, A, accepted, true),
        ],
    ])
}

/// A requests; the hardware accepts, and every client hears the change; A requests again
/// and the hardware rejects it: nothing is queued.
#[test]
fn an_accepted_request_is_reported_a_rejected_one_is_not() {
    let (m, hw) = ("main", "hardware");
    accepted(&concat(vec![
        setup(m),
        vec![requested(m, A)],
        answer_reported(hw, 1, 2, true),
        vec![requested(m, A), answered(hw, A, false, false)],
    ]));
}

/// A connector change and the answer's change on two threads: each `Submitted` is read
/// as what the thread's next steps say it is.
#[test]
fn a_change_and_an_answer_are_told_apart() {
    let (m, hw, p) = ("main", "hardware", "partner");
    accepted(&concat(vec![
        setup(m),
        vec![
            requested(m, A),
            // The partner's change (seq 1), delivered by the partner's thread.
            ev(
                p,
                Obs::Submitted {
                    hub: HUB,
                    appended: Appended::Change { seq: 1 },
                    ticket: 2,
                    settle: Settle::Drains,
                },
            ),
            ev(
                p,
                Obs::Took {
                    hub: HUB,
                    seq: 1,
                    ticket: 2,
                },
            ),
        ],
        hub_call(p, A, 1),
        hub_call(p, B, 1),
        vec![ev(
            p,
            Obs::DrainStop {
                hub: HUB,
                done: 2,
                woke: false,
            },
        )],
        answer_reported(hw, 2, 3, true),
    ]));
}

/// A's callback requests while a deregister of A waits for it (its own call, the handle
/// retired): queued. Then the hub leaves: the request is stale, and the hardware's
/// acceptance reports nothing.
#[test]
fn a_callback_requests_during_its_deregister_and_the_answer_finds_the_hub_gone() {
    let (m, d, hw) = ("main", "dispatcher", "hardware");
    accepted(&concat(vec![
        greeting(m, A),
        vec![
            ev(
                m,
                Obs::HubArrived {
                    hub: HUB,
                    clients: vec![A],
                },
            ),
            ev(
                m,
                Obs::Submitted {
                    hub: HUB,
                    appended: Appended::Nothing,
                    ticket: 1,
                    settle: Settle::Drains,
                },
            ),
            ev(
                m,
                Obs::Took {
                    hub: HUB,
                    seq: 0,
                    ticket: 1,
                },
            ),
        ],
        hub_call(m, A, 0),
        vec![
            ev(
                m,
                Obs::DrainStop {
                    hub: HUB,
                    done: 1,
                    woke: false,
                },
            ),
            ev(
                d,
                Obs::Submitted {
                    hub: HUB,
                    appended: Appended::Change { seq: 1 },
                    ticket: 2,
                    settle: Settle::Drains,
                },
            ),
            ev(
                d,
                Obs::Took {
                    hub: HUB,
                    seq: 1,
                    ticket: 2,
                },
            ),
            ev(d, Obs::Acquire { client: A, from: 0 }),
            ev(
                d,
                Obs::Begin {
                    client: A,
                    hub: HUB,
                    seq: 1,
                },
            ),
            ev(m, Obs::DeregisterEnter { client: A }),
            ev(m, Obs::Retired { client: A }),
            ev(
                m,
                Obs::Closed {
                    client: A,
                    in_flight: 1,
                },
            ),
            ev(m, Obs::Sleeps { client: A }),
            requested(d, A),
            ev(
                d,
                Obs::End {
                    client: A,
                    hub: HUB,
                    seq: 1,
                    panicked: false,
                },
            ),
            ev(d, Obs::Release { client: A, from: 1 }),
            ev(
                m,
                Obs::DeregisterReturn {
                    client: A,
                    ok: true,
                },
            ),
            ev(
                d,
                Obs::DrainStop {
                    hub: HUB,
                    done: 2,
                    woke: false,
                },
            ),
            // The hub leaves (A is closed: its removal skips it).
            ev(
                d,
                Obs::Submitted {
                    hub: HUB,
                    appended: Appended::Removal { seq: 2 },
                    ticket: 3,
                    settle: Settle::Drains,
                },
            ),
            ev(
                d,
                Obs::Took {
                    hub: HUB,
                    seq: 2,
                    ticket: 3,
                },
            ),
            ev(
                d,
                Obs::Skipped {
                    client: A,
                    hub: HUB,
                    seq: 2,
                },
            ),
            ev(
                d,
                Obs::DrainStop {
                    hub: HUB,
                    done: 3,
                    woke: false,
                },
            ),
            ev(
                hw,
                Obs::Submitted {
                    hub: HUB,
                    appended: Appended::Nothing,
                    ticket: 0,
                    settle: Settle::Done,
                },
            ),
            answered(hw, A, true, false),
        ],
    ]));
}

/// access-checked-late's trace: B, with query access only, has its request queued.
#[test]
fn a_request_without_the_access_diverges() {
    let d = diverges(&concat(vec![setup("main"), vec![requested("main", B)]]));
    assert!(d.contains("Request"), "{d}");
}

/// power-request-unlocked's trace: A's request is queued after its deregister returned
/// (on the same thread: a step of another thread with no step of its own before it could
/// have taken effect earlier than it was recorded, so the validator may take it before
/// the return).
#[test]
fn a_request_after_the_deregister_returned_diverges() {
    let m = "main";
    let d = diverges(&concat(vec![
        setup(m),
        vec![
            ev(m, Obs::DeregisterEnter { client: A }),
            ev(m, Obs::Retired { client: A }),
            ev(
                m,
                Obs::Closed {
                    client: A,
                    in_flight: 0,
                },
            ),
            ev(
                m,
                Obs::DeregisterReturn {
                    client: A,
                    ok: true,
                },
            ),
            requested(m, A),
        ],
    ]));
    assert!(d.contains("Request"), "{d}");
}

/// rejected-request-reported's trace: a rejected answer queued a change (the same trace
/// with the answer accepted is taken).
#[test]
fn a_rejected_answer_reported_diverges() {
    let (m, hw) = ("main", "hardware");
    let trace = |accepted: bool| {
        concat(vec![
            setup(m),
            vec![requested(m, A)],
            answer_reported(hw, 1, 2, accepted),
        ])
    };
    self::accepted(&trace(true));
    let d = diverges(&trace(false));
    assert!(d.contains("PowerAnswered"), "{d}");
}

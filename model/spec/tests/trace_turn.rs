//! Trace validation of the client's turn (one call of a client at a time): a delivery
//! whose in-flight count is taken above 0 was admitted while a call of its client is
//! active on another thread; it waits (`TurnWaits`), holding its count, and calls only
//! once that call's release hands the turn over (unobserved: the validator inserts it).

mod common;

use common::{concat, ev, greeting, A};
use usbpm_spec::trace::{Appended, Obs, TraceEvent};
use usbpm_spec::{validate, Settle};

/// Main registers A; hubs 1 and 2 arrive for A, each arrival delivered by main.
fn setup() -> Vec<TraceEvent> {
    let m = "main";
    let mut t = greeting(m, A);
    for hub in [1, 2] {
        t.extend([
            ev(
                m,
                Obs::HubArrived {
                    hub,
                    clients: vec![A],
                },
            ),
            ev(
                m,
                Obs::Submitted {
                    hub,
                    appended: Appended::Nothing,
                    ticket: 1,
                    settle: Settle::Drains,
                },
            ),
            ev(
                m,
                Obs::Took {
                    hub,
                    seq: 0,
                    ticket: 1,
                },
            ),
        ]);
        t.extend(delivery(m, hub, 0));
        t.push(ev(
            m,
            Obs::DrainStop {
                hub,
                done: 1,
                woke: false,
            },
        ));
    }
    t
}

/// A change of `hub` (seq 1, ticket 2) submitted by `th`, which drains up to it.
fn change(th: &str, hub: u32) -> Vec<TraceEvent> {
    vec![
        ev(
            th,
            Obs::Submitted {
                hub,
                appended: Appended::Change { seq: 1 },
                ticket: 2,
                settle: Settle::Drains,
            },
        ),
        ev(
            th,
            Obs::Took {
                hub,
                seq: 1,
                ticket: 2,
            },
        ),
    ]
}

fn acquire(th: &str, from: u64) -> TraceEvent {
    ev(th, Obs::Acquire { client: A, from })
}

fn begin_only(th: &str, hub: u32, seq: u64) -> TraceEvent {
    ev(
        th,
        Obs::Begin {
            client: A,
            hub,
            seq,
        },
    )
}

fn begin(th: &str, hub: u32, seq: u64) -> Vec<TraceEvent> {
    vec![acquire(th, 0), begin_only(th, hub, seq)]
}

fn end_only(th: &str, hub: u32, seq: u64) -> TraceEvent {
    ev(
        th,
        Obs::End {
            client: A,
            hub,
            seq,
            panicked: false,
        },
    )
}

fn release(th: &str, from: u64) -> TraceEvent {
    ev(th, Obs::Release { client: A, from })
}

fn end(th: &str, hub: u32, seq: u64) -> Vec<TraceEvent> {
    vec![end_only(th, hub, seq), release(th, 1)]
}

/// One whole call of A for `hub`'s `seq` on `th`.
fn delivery(th: &str, hub: u32, seq: u64) -> Vec<TraceEvent> {
    let mut v = begin(th, hub, seq);
    v.extend(end(th, hub, seq));
    v
}

fn stop(th: &str, hub: u32) -> TraceEvent {
    ev(
        th,
        Obs::DrainStop {
            hub,
            done: 2,
            woke: false,
        },
    )
}

fn waits(th: &str, hub: u32) -> TraceEvent {
    ev(
        th,
        Obs::TurnWaits {
            client: A,
            hub,
            seq: 1,
        },
    )
}

/// x calls A for hub 1; y's delivery of hub 2 is admitted behind it (count 1 -> 2),
/// waits, and calls once x's release hands it the turn.
#[test]
fn a_delivery_waits_for_the_active_call() {
    let (x, y) = ("x", "y");
    let trace = concat(vec![
        setup(),
        change(x, 1),
        begin(x, 1, 1),
        change(y, 2),
        vec![
            acquire(y, 1),
            waits(y, 2),
            end_only(x, 1, 1),
            release(x, 2),
            stop(x, 1),
            begin_only(y, 2, 1),
        ],
        end(y, 2, 1),
        vec![stop(y, 2)],
    ]);
    if let Err(d) = validate(&trace) {
        panic!("{d}");
    }
}

/// y's call begins after x's release handed it the turn, but before x's release was
/// reported (a step is reported after its effect).
#[test]
fn a_call_begins_before_the_release_that_handed_it_the_turn_is_reported() {
    let (x, y) = ("x", "y");
    let trace = concat(vec![
        setup(),
        change(x, 1),
        begin(x, 1, 1),
        change(y, 2),
        vec![
            acquire(y, 1),
            waits(y, 2),
            end_only(x, 1, 1),
            begin_only(y, 2, 1),
            release(x, 2),
            stop(x, 1),
        ],
        end(y, 2, 1),
        vec![stop(y, 2)],
    ]);
    if let Err(d) = validate(&trace) {
        panic!("{d}");
    }
}

/// A delivery waiting for its turn holds its count: the deregister closing A meanwhile
/// waits for it, and its call (admitted before the close) begins before it returns.
#[test]
fn a_waiting_delivery_is_waited_for_by_deregister() {
    let (m, x, y) = ("main", "x", "y");
    let trace = concat(vec![
        setup(),
        change(x, 1),
        begin(x, 1, 1),
        change(y, 2),
        vec![
            acquire(y, 1),
            waits(y, 2),
            ev(m, Obs::DeregisterEnter { client: A }),
            ev(m, Obs::Retired { client: A }),
            ev(
                m,
                Obs::Closed {
                    client: A,
                    in_flight: 2,
                },
            ),
            ev(m, Obs::Sleeps { client: A }),
            end_only(x, 1, 1),
            release(x, 2),
            stop(x, 1),
            begin_only(y, 2, 1),
        ],
        end(y, 2, 1),
        vec![
            ev(
                m,
                Obs::DeregisterReturn {
                    client: A,
                    ok: true,
                },
            ),
            stop(y, 2),
        ],
    ]);
    if let Err(d) = validate(&trace) {
        panic!("{d}");
    }
}

/// Two calls of A at once (admitted behind x's call, y calls without waiting): not a
/// behaviour of the specification.
#[test]
fn overlapping_calls_diverge() {
    let (x, y) = ("x", "y");
    let trace = concat(vec![
        setup(),
        change(x, 1),
        begin(x, 1, 1),
        change(y, 2),
        vec![
            acquire(y, 1),
            begin_only(y, 2, 1),
            end_only(y, 2, 1),
            release(y, 2),
        ],
        end(x, 1, 1),
        vec![stop(x, 1), stop(y, 2)],
    ]);
    let d = validate(&trace).expect_err("two calls of one client at once were accepted");
    println!("{d}");
    assert!(d.reason.contains("turn"), "{d}");
}

/// A waiting delivery that calls while the call it waits behind still runs (no release
/// handed it the turn): not a behaviour of the specification.
#[test]
fn a_call_without_a_hand_over_diverges() {
    let (x, y) = ("x", "y");
    let trace = concat(vec![
        setup(),
        change(x, 1),
        begin(x, 1, 1),
        change(y, 2),
        vec![acquire(y, 1), waits(y, 2), begin_only(y, 2, 1)],
        end(x, 1, 1),
        vec![stop(x, 1)],
        end(y, 2, 1),
        vec![stop(y, 2)],
    ]);
    let d = validate(&trace).expect_err("a call with no turn handed over was accepted");
    println!("{d}");
    assert!(d.reason.contains("TakeTurn"), "{d}");
}

/// A wait for a turn by a delivery whose count was taken at 0 (it holds the turn):
/// not a behaviour of the specification.
#[test]
fn a_wait_with_the_turn_held_diverges() {
    let (x, y) = ("x", "y");
    let trace = concat(vec![
        setup(),
        change(x, 1),
        delivery(x, 1, 1),
        vec![stop(x, 1)],
        change(y, 2),
        vec![acquire(y, 0), waits(y, 2), begin_only(y, 2, 1)],
        end(y, 2, 1),
        vec![stop(y, 2)],
    ]);
    let d = validate(&trace).expect_err("a wait for a free turn was accepted");
    println!("{d}");
    assert!(d.reason.contains("TurnWaits"), "{d}");
}

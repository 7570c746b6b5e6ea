//! Trace validation of the hub queue's hand-off: recorded steps of the bounded-delivery
//! protocol (tickets, sleepers, obligations) are behaviours of the specification.

mod common;

use common::{ev, greeting, A, B};
use usbpm_spec::trace::{Appended, Obs};
use usbpm_spec::{validate, Settle};

/// A change's drainer stops at its own item and wakes a registration sleeping on the
/// hub, which drains its replay next.
#[test]
fn a_sleeper_is_handed_the_queue() {
    let m = "main";
    let d = "dispatcher";
    let r = "register-b";
    let mut trace = greeting(m, A);
    trace.extend(vec![
        ev(
            m,
            Obs::HubArrived {
                hub: 1,
                clients: vec![A],
            },
        ),
        ev(
            m,
            Obs::Submitted {
                hub: 1,
                appended: Appended::Nothing,
                ticket: 1,
                settle: Settle::Drains,
            },
        ),
        ev(
            m,
            Obs::Took {
                hub: 1,
                seq: 0,
                ticket: 1,
            },
        ),
        ev(m, Obs::Acquire { client: A, from: 0 }),
        ev(
            m,
            Obs::Begin {
                client: A,
                hub: 1,
                seq: 0,
            },
        ),
        ev(
            m,
            Obs::End {
                client: A,
                hub: 1,
                seq: 0,
                panicked: false,
            },
        ),
        ev(m, Obs::Release { client: A, from: 1 }),
        ev(
            m,
            Obs::DrainStop {
                hub: 1,
                done: 1,
                woke: false,
            },
        ),
        ev(
            d,
            Obs::Submitted {
                hub: 1,
                appended: Appended::Change { seq: 1 },
                ticket: 2,
                settle: Settle::Drains,
            },
        ),
        ev(
            d,
            Obs::Took {
                hub: 1,
                seq: 1,
                ticket: 2,
            },
        ),
        ev(d, Obs::Acquire { client: A, from: 0 }),
        ev(
            d,
            Obs::Begin {
                client: A,
                hub: 1,
                seq: 1,
            },
        ),
    ]);
    trace.extend(greeting(r, B));
    trace.extend(vec![
        ev(
            r,
            Obs::Submitted {
                hub: 1,
                appended: Appended::Replay { client: B, seq: 1 },
                ticket: 3,
                settle: Settle::Sleeps,
            },
        ),
        ev(
            d,
            Obs::End {
                client: A,
                hub: 1,
                seq: 1,
                panicked: false,
            },
        ),
        ev(d, Obs::Release { client: A, from: 1 }),
        ev(
            d,
            Obs::DrainStop {
                hub: 1,
                done: 2,
                woke: true,
            },
        ),
        ev(
            r,
            Obs::Awake {
                hub: 1,
                ticket: 3,
                settle: Settle::Drains,
            },
        ),
        ev(
            r,
            Obs::Took {
                hub: 1,
                seq: 1,
                ticket: 3,
            },
        ),
        ev(r, Obs::Acquire { client: B, from: 0 }),
        ev(
            r,
            Obs::Begin {
                client: B,
                hub: 1,
                seq: 1,
            },
        ),
        ev(
            r,
            Obs::End {
                client: B,
                hub: 1,
                seq: 1,
                panicked: false,
            },
        ),
        ev(r, Obs::Release { client: B, from: 1 }),
        ev(
            r,
            Obs::DrainStop {
                hub: 1,
                done: 3,
                woke: false,
            },
        ),
    ]);
    if let Err(d) = validate(&trace) {
        panic!("{d}");
    }
    // The call that returns names the hub and seq of the call running: any other
    // diverges.
    for (hub, seq) in [(1, 0), (2, 1)] {
        let mut wrong = trace.clone();
        if let Some(Obs::End { hub: h, seq: q, .. }) = wrong
            .iter_mut()
            .map(|e| &mut e.obs)
            .rfind(|o| matches!(o, Obs::End { .. }))
        {
            (*h, *q) = (hub, seq);
        }
        let d = validate(&wrong).expect_err("an end of another call was accepted");
        assert!(
            d.to_string()
                .contains("the one running is for another hub or seq"),
            "{d}"
        );
    }
}

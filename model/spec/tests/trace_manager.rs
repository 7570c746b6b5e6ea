//! Trace validation of the Policy Manager's own events: a client's greeting (registered
//! hidden, its Policy Manager arrival delivered as its first call, then shown to the hubs;
//! owed by the outermost call when it registered inside a callback) and `shutdown` (each
//! client closed, its calls waited for, its removal delivered last).

mod common;

use common::{concat, ev, greeting, hub_call, pm_begin, pm_end, A, B};
use usbpm_spec::trace::{Appended, Obs, PmEvent, TraceEvent};
use usbpm_spec::{validate, Settle};

fn accepted(trace: &[TraceEvent]) {
    if let Err(d) = validate(trace) {
        panic!("{d}");
    }
}

fn rejected(trace: &[TraceEvent], why: &str) -> String {
    let d = validate(trace).expect_err(why);
    d.to_string()
}

/// Hub `hub` arrives on `th` for `clients` and `th` drains the arrival (ticket 1) up to
/// `calls` (the arrival's deliveries), then stops.
fn hub_arrives(
    th: &str,
    hub: u32,
    clients: Vec<u64>,
    calls: Vec<Vec<TraceEvent>>,
) -> Vec<TraceEvent> {
    concat(vec![
        vec![
            ev(th, Obs::HubArrived { hub, clients }),
            ev(
                th,
                Obs::Submitted {
                    hub,
                    appended: Appended::Nothing,
                    ticket: 1,
                    settle: Settle::Drains,
                },
            ),
            ev(
                th,
                Obs::Took {
                    hub,
                    seq: 0,
                    ticket: 1,
                },
            ),
        ],
        concat(calls),
        vec![ev(
            th,
            Obs::DrainStop {
                hub,
                done: 1,
                woke: false,
            },
        )],
    ])
}

/// A greeting, then a hub that arrives for the shown client: its arrival comes after
/// the Policy Manager's.
#[test]
fn a_greeting_comes_before_the_hubs() {
    let m = "main";
    accepted(&concat(vec![
        greeting(m, A),
        hub_arrives(m, 1, vec![A], vec![hub_call(m, A, 1, 0)]),
    ]));
}

/// A hub that arrives while the client is hidden (its arrival's call runs) does not
/// address it; the showing queues its replay, delivered after the arrival's call.
#[test]
fn a_hub_arriving_during_the_greeting_is_replayed_after_it() {
    let (m, h) = ("main", "hub-thread");
    accepted(&concat(vec![
        vec![ev(m, Obs::Registered { client: A })],
        pm_begin(m, A, PmEvent::Arrival),
        hub_arrives(h, 1, vec![], vec![]),
        pm_end(m, A, PmEvent::Arrival),
        vec![
            ev(m, Obs::Shown { client: A }),
            ev(
                m,
                Obs::Submitted {
                    hub: 1,
                    appended: Appended::Replay { client: A, seq: 0 },
                    ticket: 2,
                    settle: Settle::Drains,
                },
            ),
            ev(
                m,
                Obs::Took {
                    hub: 1,
                    seq: 0,
                    ticket: 2,
                },
            ),
        ],
        hub_call(m, A, 1, 0),
        vec![ev(
            m,
            Obs::DrainStop {
                hub: 1,
                done: 2,
                woke: false,
            },
        )],
    ]));
}

/// The arrival's callback registers B (its greeting is owed: made after A's showing)
/// and a hub arrives from inside it (owed too, with A hidden: it addresses nobody).
#[test]
fn a_greeting_whose_callback_registers_and_reports() {
    let m = "main";
    accepted(&concat(vec![
        vec![ev(m, Obs::Registered { client: A })],
        pm_begin(m, A, PmEvent::Arrival),
        vec![
            ev(m, Obs::Registered { client: B }),
            ev(m, Obs::GreetingOwed { client: B }),
            ev(
                m,
                Obs::HubArrived {
                    hub: 1,
                    clients: vec![],
                },
            ),
            ev(
                m,
                Obs::Submitted {
                    hub: 1,
                    appended: Appended::Nothing,
                    ticket: 1,
                    settle: Settle::Owes,
                },
            ),
        ],
        pm_end(m, A, PmEvent::Arrival),
        // A's showing replays hub 1 (ticket 2) and drains the arrival and the replay;
        // then its submission settles the thread's obligations, oldest first: B's
        // greeting (whose showing replays hub 1 for B), then hub 1's arrival (delivered).
        vec![
            ev(m, Obs::Shown { client: A }),
            ev(
                m,
                Obs::Submitted {
                    hub: 1,
                    appended: Appended::Replay { client: A, seq: 0 },
                    ticket: 2,
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
            ev(
                m,
                Obs::Took {
                    hub: 1,
                    seq: 0,
                    ticket: 2,
                },
            ),
        ],
        hub_call(m, A, 1, 0),
        vec![ev(
            m,
            Obs::DrainStop {
                hub: 1,
                done: 2,
                woke: false,
            },
        )],
        pm_begin(m, B, PmEvent::Arrival),
        pm_end(m, B, PmEvent::Arrival),
        vec![
            ev(m, Obs::Shown { client: B }),
            ev(
                m,
                Obs::Submitted {
                    hub: 1,
                    appended: Appended::Replay { client: B, seq: 0 },
                    ticket: 3,
                    settle: Settle::Drains,
                },
            ),
            ev(
                m,
                Obs::Took {
                    hub: 1,
                    seq: 0,
                    ticket: 3,
                },
            ),
        ],
        hub_call(m, B, 1, 0),
        vec![
            ev(
                m,
                Obs::DrainStop {
                    hub: 1,
                    done: 3,
                    woke: false,
                },
            ),
            ev(
                m,
                Obs::Settles {
                    hub: 1,
                    ticket: 1,
                    settle: Settle::Done,
                },
            ),
        ],
    ]));
}

/// The arrival's callback registers B and deregisters it before its greeting: B's
/// owed arrival is skipped (closed) and nothing is shown (no step reports that).
#[test]
fn a_greeting_whose_callback_registers_and_deregisters() {
    let m = "main";
    accepted(&concat(vec![
        vec![ev(m, Obs::Registered { client: A })],
        pm_begin(m, A, PmEvent::Arrival),
        vec![
            ev(m, Obs::Registered { client: B }),
            ev(m, Obs::GreetingOwed { client: B }),
            ev(m, Obs::DeregisterEnter { client: B }),
            ev(
                m,
                Obs::WaitFor {
                    holding: vec![A],
                    client: B,
                },
            ),
            ev(m, Obs::Retired { client: B }),
            ev(
                m,
                Obs::Closed {
                    client: B,
                    in_flight: 0,
                },
            ),
            ev(
                m,
                Obs::DeregisterReturn {
                    client: B,
                    ok: true,
                },
            ),
        ],
        pm_end(m, A, PmEvent::Arrival),
        vec![
            ev(m, Obs::Shown { client: A }),
            ev(
                m,
                Obs::ManagerSkipped {
                    client: B,
                    event: PmEvent::Arrival,
                },
            ),
        ],
    ]));
}

/// A greeting that shows the client before its arrival (the code mutant
/// arrival-not-first) is not a behaviour.
#[test]
fn a_showing_before_the_arrival_diverges() {
    let m = "main";
    let trace = concat(vec![
        vec![
            ev(m, Obs::Registered { client: A }),
            ev(m, Obs::Shown { client: A }),
        ],
        pm_begin(m, A, PmEvent::Arrival),
        pm_end(m, A, PmEvent::Arrival),
    ]);
    let d = rejected(&trace, "a showing before the arrival was accepted");
    assert!(d.contains("Show"), "{d}");
}

/// A client registered inside a hub's callback: its greeting is owed and made by the
/// outermost call (the hub's arrival) after the drain, and its replay of that hub follows.
#[test]
fn an_owed_greeting_is_settled_by_the_outermost_call() {
    let m = "main";
    let trace = concat(vec![
        greeting(m, A),
        vec![
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
            ev(m, Obs::Registered { client: B }),
            ev(m, Obs::GreetingOwed { client: B }),
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
        ],
        pm_begin(m, B, PmEvent::Arrival),
        pm_end(m, B, PmEvent::Arrival),
        vec![
            ev(m, Obs::Shown { client: B }),
            ev(
                m,
                Obs::Submitted {
                    hub: 1,
                    appended: Appended::Replay { client: B, seq: 0 },
                    ticket: 2,
                    settle: Settle::Drains,
                },
            ),
            ev(
                m,
                Obs::Took {
                    hub: 1,
                    seq: 0,
                    ticket: 2,
                },
            ),
        ],
        hub_call(m, B, 1, 0),
        vec![ev(
            m,
            Obs::DrainStop {
                hub: 1,
                done: 2,
                woke: false,
            },
        )],
    ]);
    accepted(&trace);
    // The greeting is the thread's obligation: its outermost call may not return
    // before it.
    let cut = trace
        .iter()
        .position(|e| {
            matches!(
                e.obs,
                Obs::DrainStop {
                    hub: 1,
                    done: 1,
                    ..
                }
            )
        })
        .expect("the arrival's drain stops");
    let d = rejected(
        &trace[..=cut],
        "an execution that ends with a greeting owed was accepted",
    );
    assert!(d.contains("still inside a call"), "{d}");
}

/// Shutdown after a hub arrived: A's removal is its last call; a later change of the
/// hub finds A closed.
#[test]
fn a_shutdown_delivers_the_removal_last() {
    let (m, s) = ("main", "shutdown");
    let trace = concat(vec![
        greeting(m, A),
        hub_arrives(m, 1, vec![A], vec![hub_call(m, A, 1, 0)]),
        vec![ev(s, Obs::ShutdownEnter)],
        pm_begin(s, A, PmEvent::Removal),
        pm_end(s, A, PmEvent::Removal),
        vec![
            ev(s, Obs::ShutdownReturn),
            ev(
                m,
                Obs::Submitted {
                    hub: 1,
                    appended: Appended::Change { seq: 1 },
                    ticket: 2,
                    settle: Settle::Drains,
                },
            ),
            ev(
                m,
                Obs::Took {
                    hub: 1,
                    seq: 1,
                    ticket: 2,
                },
            ),
            ev(
                m,
                Obs::Skipped {
                    client: A,
                    hub: 1,
                    seq: 1,
                },
            ),
            ev(
                m,
                Obs::DrainStop {
                    hub: 1,
                    done: 2,
                    woke: false,
                },
            ),
        ],
    ]);
    accepted(&trace);
    // The skip names the item its delivery holds: a skip of another seq diverges.
    let mut wrong = trace.clone();
    for e in &mut wrong {
        if let Obs::Skipped { seq, .. } = &mut e.obs {
            *seq = 0;
        }
    }
    let d = rejected(
        &wrong,
        "a skip of another item than the delivery's was accepted",
    );
    assert!(d.contains("skipped the item with seq 0"), "{d}");
}

/// Shutdown closes A while a hub call of A runs: it sleeps until the call returned, then
/// delivers the removal.
#[test]
fn a_shutdown_waits_for_a_running_call() {
    let (m, s) = ("main", "shutdown");
    accepted(&concat(vec![
        greeting(m, A),
        vec![
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
            ev(s, Obs::ShutdownEnter),
            ev(s, Obs::ShutdownSleeps { client: A }),
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
            ev(m, Obs::Other("Woke".into())),
            ev(
                m,
                Obs::DrainStop {
                    hub: 1,
                    done: 1,
                    woke: false,
                },
            ),
        ],
        pm_begin(s, A, PmEvent::Removal),
        pm_end(s, A, PmEvent::Removal),
        vec![ev(s, Obs::ShutdownReturn)],
    ]));
}

/// The removal's count taken while a hub call of A still runs (the code mutant
/// removal-not-last: no close, no wait) is not a behaviour; nor is a hub call after the
/// removal.
#[test]
fn a_removal_that_is_not_last_diverges() {
    let (m, s) = ("main", "shutdown");
    let running = concat(vec![
        greeting(m, A),
        vec![
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
            ev(s, Obs::ShutdownEnter),
            ev(s, Obs::Acquire { client: A, from: 1 }),
        ],
    ]);
    let d = rejected(&running, "a removal during a running call was accepted");
    assert!(d.contains("shutdown sleeps exactly when"), "{d}");
    let after = concat(vec![
        greeting(m, A),
        hub_arrives(m, 1, vec![A], vec![hub_call(m, A, 1, 0)]),
        vec![ev(s, Obs::ShutdownEnter)],
        pm_begin(s, A, PmEvent::Removal),
        pm_end(s, A, PmEvent::Removal),
        vec![
            ev(s, Obs::ShutdownReturn),
            ev(
                m,
                Obs::Submitted {
                    hub: 1,
                    appended: Appended::Change { seq: 1 },
                    ticket: 2,
                    settle: Settle::Drains,
                },
            ),
            ev(
                m,
                Obs::Took {
                    hub: 1,
                    seq: 1,
                    ticket: 2,
                },
            ),
        ],
        hub_call(m, A, 1, 1),
    ]);
    let d = rejected(&after, "a hub call after the removal was accepted");
    assert!(d.contains("no count is taken on a closed client"), "{d}");
}

/// Shutdown while B's greeting is owed (B registered inside A's hub callback on another
/// thread): shutdown takes B, hidden and never greeted, and skips its removal; B's owed
/// arrival, recorded first, is skipped too because shutdown closed it (no step reports
/// that close); B is still shown, with no replay after shutdown.
#[test]
fn a_shutdown_meets_an_owed_greeting() {
    let (m, s) = ("main", "shutdown");
    accepted(&concat(vec![
        greeting(m, A),
        vec![
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
            ev(m, Obs::Registered { client: B }),
            ev(m, Obs::GreetingOwed { client: B }),
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
            ev(s, Obs::ShutdownEnter),
        ],
        // Shutdown handles B first (its slot order is the code's business): closes it
        // (unobserved); B's greeting then finds it closed.
        vec![
            ev(
                m,
                Obs::ManagerSkipped {
                    client: B,
                    event: PmEvent::Arrival,
                },
            ),
            ev(
                s,
                Obs::ManagerSkipped {
                    client: B,
                    event: PmEvent::Removal,
                },
            ),
            ev(m, Obs::Shown { client: B }),
        ],
        pm_begin(s, A, PmEvent::Removal),
        pm_end(s, A, PmEvent::Removal),
        vec![ev(s, Obs::ShutdownReturn)],
    ]));
}

//! The step builders the trace tests share: a recorded step, two clients' raw handles,
//! a greeting outside callbacks, one hub call. Each test file uses what it needs.
#![allow(dead_code)]

use usbpm_spec::trace::{Obs, PmEvent, TraceEvent};

/// Two clients' raw handles (slot and generation as the library makes them).
pub const A: u64 = 0x2_0000_0001;
pub const B: u64 = 0x2_0001_0001;

/// The step `obs`, recorded by `thread`.
pub fn ev(thread: &str, obs: Obs) -> TraceEvent {
    TraceEvent {
        thread: thread.into(),
        obs,
    }
}

pub fn concat(parts: Vec<Vec<TraceEvent>>) -> Vec<TraceEvent> {
    parts.into_iter().flatten().collect()
}

/// The Policy Manager event's call of `client` on `th`: count from 0, begin.
pub fn pm_begin(th: &str, client: u64, event: PmEvent) -> Vec<TraceEvent> {
    vec![
        ev(th, Obs::Acquire { client, from: 0 }),
        ev(th, Obs::ManagerBegin { client, event }),
    ]
}

/// Its end and the release from 1.
pub fn pm_end(th: &str, client: u64, event: PmEvent) -> Vec<TraceEvent> {
    vec![
        ev(
            th,
            Obs::ManagerEnd {
                client,
                event,
                panicked: false,
            },
        ),
        ev(th, Obs::Release { client, from: 1 }),
    ]
}

/// `register(client)` on `th`, outside callbacks, with nothing in its arrival's callback:
/// the client registered hidden, its Policy Manager arrival delivered (count from 0,
/// call, release), then shown.
pub fn greeting(th: &str, client: u64) -> Vec<TraceEvent> {
    concat(vec![
        vec![ev(th, Obs::Registered { client })],
        pm_begin(th, client, PmEvent::Arrival),
        pm_end(th, client, PmEvent::Arrival),
        vec![ev(th, Obs::Shown { client })],
    ])
}

/// One hub call of `client` for `hub`'s `seq`, its count taken from 0.
pub fn hub_call(th: &str, client: u64, hub: u32, seq: u64) -> Vec<TraceEvent> {
    vec![
        ev(th, Obs::Acquire { client, from: 0 }),
        ev(th, Obs::Begin { client, hub, seq }),
        ev(
            th,
            Obs::End {
                client,
                hub,
                seq,
                panicked: false,
            },
        ),
        ev(th, Obs::Release { client, from: 1 }),
    ]
}

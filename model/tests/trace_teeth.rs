//! Teeth of trace validation: which code mutants does the specification see in the
//! recorded steps alone (monitors not consulted)? Run with
//! `cargo test --release -p usbpm-model --features shuttle --test trace_teeth -- --nocapture`.
#![cfg(feature = "shuttle")]

use usbpm::checking::Mutant;
use usbpm_model::checkers::spec_checks::trace_teeth;
use usbpm_model::exec::scenarios::ALL;

/// The mutants trace validation alone catches in these tests' schedules (measured:
/// `cargo test --release -p usbpm-model --features shuttle --test trace_teeth --
/// --nocapture`). Most show a step the specification cannot take; the ones that hang
/// (lost-wakeup, wait-under-registry-lock, callback-under-hub-lock, detach-never-done)
/// show a trace that ends with a thread still inside a call or still waiting, which no
/// whole run of the specification does. The others break only what the probe cannot
/// see (memory ordering: relaxed-ordering; a context's drop, context-drop-under-drain,
/// whose `ContextDrop` step the specification does not model), or need a schedule these
/// few random ones do not reach.
const VISIBLE: &[&str] = &[
    "deregister-no-wait",
    "check-then-call",
    "release-before-callback",
    "lost-wakeup",
    "wait-under-registry-lock",
    "callback-under-hub-lock",
    "no-generation",
    "no-cycle-check",
    "removal-overtakes",
    "replay-misses-hub",
    "drain-one-per-pass",
    "unbounded-drain",
    "handoff-wakes-nobody",
    // One call at a time: an overlapping call begins with no turn handed over; a waiting
    // delivery that gave its count back lets a deregister return before its call.
    "calls-overlap",
    "turn-misses-deregister",
    // The Policy Manager's events: a client shown to the hubs before its arrival; a
    // removal whose count is taken while a hub's call is still in flight.
    "arrival-not-first",
    "removal-not-last",
    // Power requests: a request queued for a client granted query access only (the
    // access each client heard with its Policy Manager arrival is passed to the
    // validator); a rejected answer that queued a change. (power-request-unlocked's late
    // request is on a thread with no step before it, so the validator may take it before
    // the deregister's return: the monitor judges it.)
    "access-checked-late",
    "rejected-request-reported",
    // A detach's completion (`Detached::wait`): one that returns while a call admitted
    // before the detach still runs (its client's count not 0 when it fires); one that
    // never fires (the trace ends with its thread still waiting: a wake-up owed).
    "detach-done-early",
    "detach-never-done",
    // A call that goes on past its item while the drainer still delivers it: its
    // `Settled` step comes while the specification's hub has not delivered the item.
    "done-before-delivered",
];

/// The `trace` checker's check, as `gate mutants` runs it (`usbpm_model::checkers::spec_checks`):
/// every scenario's random schedules judged by trace validation alone, on the code
/// mutated by `USBPM_MUTANT` (or the correct code).
#[test]
fn trace_validation() {
    usbpm_model::checkers::spec_checks::run_trace_check();
}

#[test]
fn correct_code_has_no_divergence() {
    for s in ALL {
        let d = trace_teeth(s, None, 100, 7);
        assert!(d.is_none(), "{}: {}", s.name, d.unwrap_or_default());
    }
}

#[test]
fn code_mutants_caught_by_trace_validation() {
    let mut missed = Vec::new();
    for &m in Mutant::ALL {
        let killer = ALL
            .iter()
            .find_map(|s| trace_teeth(s, Some(m), 200, 1).map(|d| (s.name, d)));
        match &killer {
            Some((s, d)) => {
                println!(
                    "{:<26} caught by trace validation on {s}: {}",
                    m.name(),
                    d.lines().next().unwrap_or("")
                )
            }
            None => println!("{:<26} not seen in the trace", m.name()),
        }
        if killer.is_none() && VISIBLE.contains(&m.name()) {
            missed.push(m.name());
        }
    }
    assert!(missed.is_empty(), "trace validation missed {missed:?}");
}

//! Generated programs (docs/VERIFICATION.md, "Generated programs"): with `--features
//! loom`, every program of the profile's enumerated tiers, explored exhaustively; with
//! `--features shuttle`, random larger programs under PCT and random schedules, shrunk to
//! a minimal failing program. Each tier is split into `CHUNKS` chunks, one test each, so
//! nextest's partitions (the gate's `--shard I/N`) split it across runners.
#![cfg(any(feature = "loom", feature = "shuttle"))]

use usbpm_model::base::checker::Checker;
use usbpm_model::checkers::check::run_programs_check;

const CHECKER: Checker = if cfg!(feature = "loom") {
    Checker::GenLoom
} else {
    Checker::GenShuttle
};

macro_rules! chunks {
    ($($name:ident: $i:literal;)*) => {
        $(
            #[test]
            fn $name() {
                run_programs_check(CHECKER, $i);
            }
        )*
        #[test]
        fn every_chunk_has_a_test() {
            let listed: &[usize] = &[$($i),*];
            let want: Vec<usize> = (0..usbpm_model::checkers::generated::CHUNKS).collect();
            assert_eq!(listed, want.as_slice(), "the chunk tests are out of step with CHUNKS");
        }
    };
}

chunks! {
    chunk_01: 0; chunk_02: 1; chunk_03: 2; chunk_04: 3; chunk_05: 4; chunk_06: 5; chunk_07: 6; chunk_08: 7;
    chunk_09: 8; chunk_10: 9; chunk_11: 10; chunk_12: 11; chunk_13: 12; chunk_14: 13; chunk_15: 14; chunk_16: 15;
}

/// The generator's findings, kept as named regressions: each passes, unbounded, on the
/// library, and fails with the mutant that breaks what it pins.
#[cfg(feature = "loom")]
#[test]
fn regressions_under_loom() {
    use usbpm::checking::Mutant;
    use usbpm_model::checkers::generated::loom_program;
    for (name, program) in usbpm_model::exec::scenarios::regressions() {
        let n = loom_program(&program, None, None, name)
            .unwrap_or_else(|report| panic!("{name}: {report}"));
        println!("{name}: {n} interleavings, unbounded, pass");
        assert!(
            loom_program(&program, Some(Mutant::GuardDropIgnoresRefusal), None, name).is_err(),
            "{name}: passes with guard-drop-ignores-refusal"
        );
    }
}

/// The shutdown and the hardware's answers (tiers `-S`): programs that pass, unbounded,
/// on the library, each failing with the mutant that breaks what it pins: a rejected
/// power request reported as a change (the oracle's hub history has no change for it),
/// and the Policy Manager's removal delivered without closing the clients first (hub
/// events after the removal and after `shutdown` returned; an arrival racing the
/// shutdown left without its removal).
#[cfg(feature = "loom")]
#[test]
fn shutdown_and_answers_under_loom() {
    use usbpm::checking::Mutant;
    use usbpm_model::checkers::generated::loom_program;
    use usbpm_model::lang::program::Program;
    let cases = [
        (
            "rejected-answer",
            "clients: A(on event: nothing)\nhubs: 1\ninit: register A; arrive 1\n\
             thread 1: assign power 1\nthread 2: reject power 1",
            Some(Mutant::RejectedRequestReported),
        ),
        (
            "rejected-answer-vs-register",
            "clients: A(on event: assign power) B(on event: nothing)\nhubs: 1\n\
             init: register A; arrive 1\nthread 1: reject power 1\nthread 2: register B",
            Some(Mutant::RejectedRequestReported),
        ),
        (
            "accepted-answer-vs-shutdown",
            "clients: A(on event: assign power)\nhubs: 1\n\
             init: register A; arrive 1\nthread 1: accept power 1\nthread 2: shut down",
            None,
        ),
        (
            "shutdown-vs-change",
            "clients: A(on event: nothing)\nhubs: 1\ninit: register A; arrive 1\n\
             thread 1: change 1\nthread 2: shut down",
            Some(Mutant::RemovalNotLast),
        ),
        (
            "shutdown-vs-register",
            "clients: A(on event: report a change on hub 1)\nhubs: 1\ninit: arrive 1\n\
             thread 1: register A\nthread 2: shut down",
            Some(Mutant::RemovalNotLast),
        ),
    ];
    for (name, text, mutant) in cases {
        let program: Program = text.parse().unwrap_or_else(|e| panic!("{name}: {e}"));
        let n = loom_program(&program, None, None, name)
            .unwrap_or_else(|report| panic!("{name}: {report}"));
        println!("{name}: {n} interleavings, unbounded, pass");
        if let Some(mutant) = mutant {
            assert!(
                loom_program(&program, Some(mutant), None, name).is_err(),
                "{name}: passes with {}",
                mutant.name()
            );
        }
    }
}

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

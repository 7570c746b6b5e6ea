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

/// The detach and its completion (tiers `-W`): programs that pass on the library, each
/// failing with the mutants that break what it pins. A client detaching itself in its
/// callback while a thread waits on its completion: the completion fires before the call
/// that detached returned (`detach-done-early`). (With `detach-never-done` loom reports
/// the deadlock, then aborts the process: when the last thread to block is the waiting
/// one, loom's deadlock panic unwinds its `Detached::wait`, whose frame holds loom `Arc`s
/// (the completion and its Policy Manager), and loom's `Arc` drop takes a scheduling
/// step, which after a deadlock finds no active thread and panics again, inside the
/// unwind. Neither the library's frame nor which thread blocks last is the harness's to
/// change, so the mutant dies, but not inside a test that goes on: it is pinned under
/// shuttle, `detach_never_done_under_shuttle`.) A
/// guard dropped inside a callback where waiting would close a cycle: the drop detaches,
/// or else (`guard-drop-ignores-refusal`) the registration never ends. A client detached
/// by another's callback, waited on by the post part.
#[cfg(feature = "loom")]
#[test]
fn detach_and_completion_under_loom() {
    use usbpm::checking::Mutant;
    use usbpm_model::checkers::generated::loom_program;
    use usbpm_model::lang::program::Program;
    // (name, program, preemption bound, the mutants it kills)
    let cases: [(&str, &str, Option<usize>, &[Mutant]); 3] = [
        (
            "detach-own-vs-wait",
            "clients: A(owned, on event: detach A)\nhubs: 1\ninit: register A\n\
             thread 1: arrive 1\nthread 2: wait for A's detach",
            None,
            &[Mutant::DetachDoneEarly],
        ),
        (
            // Hub 2 lists B before A (A re-registers into the slot it freed after hub 2
            // arrived), hub 1 lists A first: A's and B's callbacks for the two changes
            // can run at once, each dropping the other's guard, and the drop that would
            // close the cycle detaches.
            "drop-guard-in-cycle",
            "clients: A(owned, on event: drop B's guard) B(owned, on event: drop A's guard)\n\
             hubs: 1 2\ninit: register A; register B\n\
             thread 1: drop A's guard; arrive 2; register A; arrive 1; change 1\n\
             thread 2: change 2",
            Some(1),
            &[Mutant::GuardDropIgnoresRefusal],
        ),
        (
            "detach-other-vs-arrivals",
            "clients: A(on event: detach B) B(owned, on event: nothing)\nhubs: 1 2\n\
             init: register A; register B\nthread 1: arrive 1\nthread 2: arrive 2",
            None,
            &[],
        ),
    ];
    for (name, text, bound, mutants) in cases {
        let program: Program = text.parse().unwrap_or_else(|e| panic!("{name}: {e}"));
        let n = loom_program(&program, None, bound, name)
            .unwrap_or_else(|report| panic!("{name}: {report}"));
        println!("{name}: {n} interleavings, bound {bound:?}, pass");
        for &mutant in mutants {
            let report = loom_program(&program, Some(mutant), bound, name)
                .err()
                .unwrap_or_else(|| panic!("{name}: passes with {}", mutant.name()));
            println!(
                "{name} with {}: fails: {}",
                mutant.name(),
                report
                    .lines()
                    .find(|l| l.contains("VIOLATED") || l.contains("deadlock"))
                    .unwrap_or("")
            );
        }
    }
}

/// `detach-never-done` on the program that detaches a client in its own callback while a
/// thread waits on the completion: the completion never fires, and shuttle reports the
/// hang (P3); the library passes.
#[cfg(feature = "shuttle")]
#[test]
fn detach_never_done_under_shuttle() {
    use usbpm::checking::Mutant;
    use usbpm_model::checkers::generated::shuttle_program;
    use usbpm_model::lang::program::Program;
    let program: Program = "clients: A(owned, on event: detach A)\nhubs: 1\ninit: register A\n\
                            thread 1: arrive 1\nthread 2: wait for A's detach"
        .parse()
        .unwrap();
    let dir = std::env::temp_dir();
    let (file, schedule) = (
        dir.join("detach-never-done.program.json"),
        dir.join("detach-never-done.program.schedule"),
    );
    let n = shuttle_program(&program, None, 200, 1, &file, &schedule)
        .unwrap_or_else(|report| panic!("{report}"));
    println!("detach-own-vs-wait: {n} schedules, pass");
    let report = shuttle_program(
        &program,
        Some(Mutant::DetachNeverDone),
        200,
        1,
        &file,
        &schedule,
    )
    .expect_err("passes with detach-never-done");
    assert!(report.contains("P3"), "{report}");
}

/// The quick profile's random `-W` sample (`gen-shuttle`, every chunk's programs with
/// their own seeds) reaches the second trigger of a guard's non-waiting drop: inside a
/// callback, where waiting would close a wait-for cycle, the drop's `deregister` is
/// refused with `WouldDeadlock` and it detaches (counted by the interpreter). Without the
/// guard cycles `random_program` draws for `-W` sizes no random program reaches it. The
/// programs that reach it, those without a guard dropped in its own callback (the other
/// trigger), fail with `guard-drop-ignores-refusal`. Measured once: 897 refused drops in
/// 6 of the sample's 64 programs, all failing with the mutant; 24 refused completion
/// waits (in the detached client's own callback, as `refused_wait_under_loom`).
#[cfg(feature = "shuttle")]
#[test]
fn random_detach_sample_reaches_the_guard_cycle() {
    use usbpm_model::checkers::generated::{
        chunk_seed, plan, random_sample, shuttle_program, CHUNKS,
    };
    use usbpm_model::exec::interpreter::{cycle_detaches, refused_waits};
    use usbpm_model::judge::verdict::Profile;
    let tier = plan(CHECKER, Profile::Quick)
        .into_iter()
        .find(|t| t.size.detach == usbpm_model::lang::enumerate::Detaches::Only)
        .expect("the quick profile samples a -W size");
    let (count, schedules) = tier.random.expect("a random sample");
    let dir = std::env::temp_dir();
    let (file, schedule) = (
        dir.join("guard-cycle-sample.program.json"),
        dir.join("guard-cycle-sample.program.schedule"),
    );
    let start = std::time::Instant::now();
    let (mut programs, mut executions, mut reaching) = (0, 0, Vec::new());
    let (before, waits_before) = (cycle_detaches(), refused_waits());
    for chunk in 0..CHUNKS {
        for (seed, p) in random_sample(tier.size, count, chunk_seed(tier.size, chunk)) {
            let n = cycle_detaches();
            executions += shuttle_program(&p, None, schedules, seed, &file, &schedule)
                .unwrap_or_else(|report| panic!("{report}"));
            programs += 1;
            if cycle_detaches() > n {
                reaching.push((seed, p));
            }
        }
    }
    let reached = cycle_detaches() - before;
    println!(
        "{programs} random programs within {}, {executions} executions, {:.1}s: \
         {reached} guard drops refused with WouldDeadlock, in {} programs; \
         {} refused waits, {} of them with WouldDeadlock",
        tier.size,
        start.elapsed().as_secs_f64(),
        reaching.len(),
        refused_waits().0 - waits_before.0,
        refused_waits().1 - waits_before.1
    );
    assert!(reached > 0, "no execution reached the guard cycle");
    let mutant = usbpm::checking::Mutant::GuardDropIgnoresRefusal;
    let mut killed = 0;
    for (seed, p) in &reaching {
        let own = p
            .clients
            .iter()
            .any(|c| c.behaviour == usbpm_model::lang::program::Behaviour::DropOwnGuard);
        if !own {
            let r = shuttle_program(p, Some(mutant), schedules, *seed, &file, &schedule);
            assert!(r.is_err(), "passes with {}:\n{p}", mutant.name());
            killed += 1;
        }
    }
    println!("{killed} of them fail with {}", mutant.name());
    assert!(
        killed > 0,
        "every program that reached the cycle drops its own guard too"
    );
}

/// A wait on a detach completion made inside a callback (tiers `-W`, `Behaviour::Wait`)
/// and refused: B's callback detaches A while A's callback for the other hub's arrival
/// runs, which then waits on its own client's completion. `Detached::wait` refuses it
/// with `DeregisterFromOwnCallback` naming A and hands the completion back (the
/// interpreter checks both under P4); the post part's wait on it then fires. The program
/// passes at preemption bound 2 (unbounded: 727,914 interleavings, 114 s), and some
/// execution makes the refused wait.
#[cfg(feature = "loom")]
#[test]
fn refused_wait_under_loom() {
    use usbpm_model::checkers::generated::loom_program;
    use usbpm_model::exec::interpreter::refused_waits;
    use usbpm_model::lang::program::Program;
    let program: Program =
        "clients: A(owned, on event: wait for A's detach) B(on event: detach A)\n\
         hubs: 1 2\ninit: register A; register B\nthread 1: arrive 1\nthread 2: arrive 2"
            .parse()
            .unwrap();
    let before = refused_waits();
    let n = loom_program(&program, None, Some(2), "refused-wait")
        .unwrap_or_else(|report| panic!("{report}"));
    let refused = refused_waits().0 - before.0;
    println!("refused-wait: {n} interleavings, bound 2, pass; {refused} refused waits");
    assert!(refused > 0, "no execution refused the wait");
}

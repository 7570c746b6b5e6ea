//! The specification's checks in the gate's terms (docs/SPEC.md). Two checkers beside
//! loom, shuttle, std and proptest, each a test the gate runs through nextest like theirs:
//!
//! - `spec` (`model/tests/spec.rs`): stateright explores the specification exhaustively at
//!   each of the profile's sizes ([`spec_sizes`]); under `gate mutants` it checks the spec mutant of
//!   the code mutant's bug family instead, so the kill matrix shows whether the model
//!   checker finds that family in the specification;
//! - `trace` (`model/tests/trace_teeth.rs`, shuttle build): under `gate mutants`, trace
//!   validation alone (the monitors not consulted) judges random schedules of every
//!   scenario run on the mutated code, so the kill matrix shows which code mutants the
//!   specification sees in the recorded steps. (In the quick and full gates every shuttle
//!   and std execution is validated already, inside those checks.)
//!
//! Both read the same environment as [`crate::checkers::check`] and write a [`Record`].

use std::path::PathBuf;
use std::time::Instant;

use usbpm_spec::run::{self as spec_run, FULL, FULL_THREADS, QUICK, QUICK_UNREDUCED_STATES};
use usbpm_spec::{Size, SpecMutant};

use crate::base::checker::Checker;
use crate::checkers::check::{mutant_from_env, Failure, Profile, Record, SpecFigures, Verdict};

/// The `spec` checker's one check.
pub const SPEC_SCENARIO: &str = "protocol-spec";
/// The `trace` checker's one check.
pub const TRACE_SCENARIO: &str = "trace-validation";

/// The `spec` check's record of `FULL_THREADS` (the full profile's second size).
pub const SPEC_THREADS_SCENARIO: &str = "protocol-spec-threads";

/// The specification's sizes under each profile, each a record of the one `spec` check
/// (named by its scenario): the quick size on every push (budget 30 s); on merges the
/// full size, then three threads at two hubs, which the full size (two threads) cannot
/// have (budget 8 minutes together; docs/SPEC.md, "Sizes and figures").
pub fn spec_sizes(profile: Profile) -> Vec<(&'static str, Size)> {
    match profile {
        Profile::Quick => vec![(SPEC_SCENARIO, QUICK)],
        Profile::Full => vec![(SPEC_SCENARIO, FULL), (SPEC_THREADS_SCENARIO, FULL_THREADS)],
    }
}

/// The un-reduced figure for `size`, and where it comes from.
pub fn unreduced(size: &Size) -> (Option<u64>, String) {
    if *size == QUICK {
        (
            Some(QUICK_UNREDUCED_STATES as u64),
            "un-reduced figure recorded by `spec_check quick --no-symmetry`, not re-measured"
                .into(),
        )
    } else {
        (
            None,
            "not measured: the un-reduced run at this size is beyond the gate's budget".into(),
        )
    }
}

/// The name of `size`'s const for the report (`FULL_THREADS`), from its name in
/// [`spec_run::size_name`] (`full-threads`); `custom` for a size that has none.
pub fn size_const_name(size: &Size) -> String {
    spec_run::size_name(size).map_or_else(
        || "custom".to_string(),
        |name| name.to_uppercase().replace('-', "_"),
    )
}

/// The short name of a stateright property for the report: `P1`..`P8`, `M1`, `M2`, or
/// its kind.
pub fn short_property(name: &str) -> String {
    let first = name.split_whitespace().next().unwrap_or("");
    if first.len() == 2 && (first.starts_with('P') || first.starts_with('M')) {
        first.to_string()
    } else {
        format!("liveness ({name})")
    }
}

fn results_dir() -> Option<PathBuf> {
    std::env::var_os("USBPM_RESULTS_DIR").map(PathBuf::from)
}

/// Writes `record` where the gate reads it (when run by the gate), prints its line, and
/// panics if it failed, so a failing check is a failing test.
fn finish(record: Record) {
    if let Some(d) = results_dir() {
        let json = serde_json::to_string_pretty(&record).expect("a record serialises");
        std::fs::write(
            d.join("records").join(format!(
                "{}.json",
                Record::key(record.checker, &record.scenario)
            )),
            json,
        )
        .expect("write the record");
    }
    println!(
        "{:<8} {:<32} {:<28} {:>10} states {:>8.2}s  {}",
        record.checker,
        record.scenario,
        record.method,
        record.executions,
        record.seconds,
        if record.verdict == Verdict::Pass {
            "pass"
        } else {
            "FAIL"
        }
    );
    if let Some(f) = &record.failure {
        panic!("{}\nReplay: {}", f.report, f.replay);
    }
}

/// Marks the check as started (a check with progress and no record crashed or hung).
fn started(checker: Checker, scenario: &str) {
    if let Some(d) = results_dir() {
        for sub in ["records", "progress"] {
            std::fs::create_dir_all(d.join(sub)).expect("create the results directory");
        }
        let key = Record::key(checker, scenario);
        let _ = std::fs::write(d.join("progress").join(format!("{key}.txt")), "0 0.0");
    }
}

/// The `spec` check: the whole specification at each of the profile's sizes (one record
/// each), or (with a code mutant in the environment) the spec mutant of its bug family.
pub fn run_spec_check() {
    let profile = Profile::from_env();
    match mutant_from_env() {
        None => {
            for (scenario, size) in spec_sizes(profile) {
                check_size(scenario, profile, None, Some((size, None)));
            }
        }
        Some(m) => {
            let mutated =
                SpecMutant::from_name(m.name()).map(|sm| (spec_run::mutant_size(sm), Some(sm)));
            check_size(SPEC_SCENARIO, profile, Some(m), mutated);
        }
    }
}

/// One record of the `spec` check: `scenario`'s exploration at `size` (with its spec
/// mutant), or, for a code mutant with no counterpart (`size` `None`), a record saying so.
fn check_size(
    scenario: &'static str,
    profile: Profile,
    code_mutant: Option<usbpm::checking::Mutant>,
    size: Option<(Size, Option<SpecMutant>)>,
) {
    started(Checker::Spec, scenario);
    let mut record = Record {
        checker: Checker::Spec,
        scenario: scenario.into(),
        mutant: code_mutant.map(|m| m.name().to_string()),
        profile,
        verdict: Verdict::Pass,
        exhaustive: true,
        method: String::new(),
        executions: 0,
        seconds: 0.0,
        properties: vec![
            "P1".into(),
            "P2".into(),
            "P3".into(),
            "P4".into(),
            "P5".into(),
            "P6".into(),
            "P7".into(),
            "P8".into(),
            "M1".into(),
            "M2".into(),
            "M3".into(),
            "liveness".into(),
            "reachability".into(),
        ],
        failure: None,
        strategies: Vec::new(),
        spec: None,
        programs: Vec::new(),
        reached: None,
    };
    let Some((size, mutant)) = size else {
        record.method = "no counterpart in the specification".into();
        return finish(record);
    };
    let start = Instant::now();
    let o = spec_run::check(size, mutant, true, 1);
    let seconds = start.elapsed().as_secs_f64();
    let (unreduced_states, unreduced_source) = if mutant.is_some() {
        (
            None,
            "not measured for a spec mutant (stopped at its first counterexample)".into(),
        )
    } else {
        unreduced(&size)
    };
    let figures = SpecFigures {
        size: size.label(),
        unique_states: o.unique_states as u64,
        generated_states: o.states as u64,
        states_per_second: o.states_per_second(),
        depth: o.max_depth as u64,
        unreduced_states,
        unreduced_source,
        properties_checked: o.properties,
    };
    record.method = format!(
        "stateright DFS + symmetry, {}{}",
        size_const_name(&size),
        mutant
            .map(|m| format!(", spec mutant {}", m.name()))
            .unwrap_or_default()
    );
    record.executions = o.unique_states as u64;
    record.seconds = seconds;
    record.spec = Some(figures);
    let replay = spec_run::replay_command(&size, mutant);
    if !o.violated.is_empty() || (mutant.is_none() && !o.unwitnessed.is_empty()) {
        record.verdict = Verdict::Fail;
        let mut report = String::new();
        for (p, path) in &o.violated {
            report.push_str(&format!(
                "PROPERTY VIOLATED: {p}\n\nCounterexample (step, thread, action in the protocol's terms, [the specification's action]):\n{path}\n"
            ));
        }
        // A mutant's check stops at its first counterexample: what it did not witness
        // by then says nothing.
        for p in o.unwitnessed.iter().filter(|_| mutant.is_none()) {
            report.push_str(&format!(
                "NEVER WITNESSED: sometimes {p} (the specification cannot reach it: vacuous)\n"
            ));
        }
        report.push_str(&format!("{}\n", o.summary()));
        record.failure = Some(Failure {
            property: o
                .violated
                .first()
                .map(|(p, _)| short_property(p))
                .or_else(|| Some("reachability".into())),
            report,
            replay,
        });
    }
    finish(record);
}

/// The `trace` check: random shuttle schedules of every scenario on the code (mutated
/// when the environment names a mutant), judged by trace validation alone; fails at the
/// first divergence.
#[cfg(feature = "shuttle")]
pub fn run_trace_check() {
    started(Checker::Trace, TRACE_SCENARIO);
    let profile = Profile::from_env();
    let mutant = mutant_from_env();
    let per_scenario = trace_schedules(profile);
    let start = Instant::now();
    let mut executions = 0;
    let mut failure = None;
    for s in crate::exec::scenarios::ALL {
        let (found, n) = trace_teeth_counted(s, mutant, per_scenario, 1);
        executions += n;
        if let Some(d) = found {
            failure = Some(Failure {
                property: Some(format!("divergence on {}", s.name)),
                report: format!(
                    "TRACE DIVERGENCE on {}: the recorded steps are not a behaviour of the specification\n{d}",
                    s.name
                ),
                replay: format!(
                    "{}cargo test --release -p usbpm-model --features shuttle --test trace_teeth -- --exact trace_validation",
                    mutant
                        .map(|m| format!("USBPM_MUTANT={} ", m.name()))
                        .unwrap_or_default()
                ),
            });
            break;
        }
    }
    finish(Record {
        checker: Checker::Trace,
        scenario: TRACE_SCENARIO.into(),
        mutant: mutant.map(|m| m.name().to_string()),
        profile,
        verdict: if failure.is_some() {
            Verdict::Fail
        } else {
            Verdict::Pass
        },
        exhaustive: false,
        method: format!("trace validation alone, random, {per_scenario} per scenario, seed 1"),
        executions,
        seconds: start.elapsed().as_secs_f64(),
        properties: vec!["trace".into()],
        failure,
        strategies: Vec::new(),
        spec: None,
        programs: Vec::new(),
        reached: crate::checkers::check::reached_mutants(),
    });
}

/// Runs `iterations` random shuttle schedules of `scenario` with the code mutant `mutant`
/// and judges them by trace validation alone (the monitors' verdicts are not read).
/// Returns the first divergence found, if any. An execution the checker stops (a
/// deadlock) is judged on the steps recorded until it stopped.
#[cfg(feature = "shuttle")]
pub fn trace_teeth(
    scenario: &'static crate::exec::scenarios::Scenario,
    mutant: Option<usbpm::checking::Mutant>,
    iterations: usize,
    seed: u64,
) -> Option<String> {
    trace_teeth_counted(scenario, mutant, iterations, seed).0
}

/// [`trace_teeth`], and how many executions ran (up to the first divergence).
#[cfg(feature = "shuttle")]
pub fn trace_teeth_counted(
    scenario: &'static crate::exec::scenarios::Scenario,
    mutant: Option<usbpm::checking::Mutant>,
    iterations: usize,
    seed: u64,
) -> (Option<String>, u64) {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};
    let found: Arc<Mutex<Option<String>>> = Arc::default();
    let executions = Arc::new(AtomicU64::new(0));
    let f = found.clone();
    let counted = executions.clone();
    let body = move || {
        if f.lock().unwrap_or_else(|p| p.into_inner()).is_some() {
            return;
        }
        counted.fetch_add(1, Ordering::Relaxed);
        let env = crate::exec::env::Env::new(mutant);
        (scenario.run)(&env);
        if let Err(d) =
            crate::judge::trace::validate_steps(&env.monitor.steps(), &env.monitor.grants(), None)
        {
            *f.lock().unwrap_or_else(|p| p.into_inner()) = Some(d.to_string());
        }
    };
    let mut config = shuttle::Config::new();
    config.failure_persistence = shuttle::FailurePersistence::None;
    let runner = shuttle::Runner::new(
        shuttle::scheduler::RandomScheduler::new_from_seed(seed, iterations),
        config,
    );
    let stopped =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runner.run(body))).is_err();
    let mut found = found.lock().unwrap_or_else(|p| p.into_inner()).clone();
    if stopped && found.is_none() {
        if let Some(Err(d)) = crate::judge::monitor::last_steps()
            .map(|(s, grants)| crate::judge::trace::validate_steps(&s, &grants, None))
        {
            found = Some(d.to_string());
        }
    }
    (found, executions.load(Ordering::Relaxed))
}

/// Random schedules per scenario for the `trace` check.
pub fn trace_schedules(profile: Profile) -> usize {
    match profile {
        Profile::Quick => 200,
        Profile::Full => 2_000,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_saving_says_where_the_unreduced_figure_comes_from() {
        let (u, source) = unreduced(&QUICK);
        let f = SpecFigures {
            size: QUICK.label(),
            unique_states: 1_539_649,
            generated_states: 3_687_862,
            states_per_second: 1.0,
            depth: 50,
            unreduced_states: u,
            unreduced_source: source,
            properties_checked: 20,
        };
        let s = f.saving();
        assert!(s.starts_with("7.4x (11338314 -> 1539649;"), "{s}");
        assert!(s.contains("recorded"), "{s}");
        let (none, why) = unreduced(&FULL);
        assert_eq!(none, None);
        let g = SpecFigures {
            unreduced_states: none,
            unreduced_source: why,
            ..f
        };
        assert!(g.saving().starts_with("not measured"), "{}", g.saving());
    }

    /// The sizes the `spec` check runs at are named in its method by their consts.
    #[test]
    fn the_method_names_the_size_by_its_const() {
        use usbpm_spec::run::{MUTANTS, POWER};
        for (size, name) in [
            (QUICK, "QUICK"),
            (FULL, "FULL"),
            (FULL_THREADS, "FULL_THREADS"),
            (MUTANTS, "MUTANTS"),
            (POWER, "POWER"),
        ] {
            assert_eq!(size_const_name(&size), name);
        }
        let custom = Size {
            threads: 4,
            ..QUICK
        };
        assert_eq!(size_const_name(&custom), "custom");
    }

    #[test]
    fn property_names_are_shortened_for_the_kill_matrix() {
        assert_eq!(short_property("P3 no deadlock"), "P3");
        assert_eq!(
            short_property("M2 no call of a client begins after its Policy Manager removal began"),
            "M2"
        );
        assert_eq!(
            short_property("every deregister returns and every queue drains"),
            "liveness (every deregister returns and every queue drains)"
        );
    }

    /// The code-mutant -> spec-mutant mapping is by name: every spec mutant names a code
    /// mutant (so `gate mutants` checks it for that mutant), the Policy Manager's two and
    /// the power requests' three included.
    #[test]
    fn every_spec_mutant_is_a_code_mutants_counterpart() {
        for m in SpecMutant::ALL {
            assert!(
                usbpm::checking::Mutant::from_name(m.name()).is_some(),
                "spec mutant {} has no code mutant of that name",
                m.name()
            );
        }
        for code in [
            "arrival-not-first",
            "removal-not-last",
            "access-checked-late",
            "power-request-unlocked",
            "rejected-request-reported",
        ] {
            assert!(SpecMutant::from_name(code).is_some(), "{code}");
        }
    }

    #[test]
    fn the_profiles_check_the_named_sizes() {
        assert_eq!(spec_sizes(Profile::Quick), [(SPEC_SCENARIO, QUICK)]);
        assert_eq!(
            spec_sizes(Profile::Full),
            [(SPEC_SCENARIO, FULL), (SPEC_THREADS_SCENARIO, FULL_THREADS)]
        );
    }
}

//! One checker's checks as one cargo-nextest run: the cargo arguments, the filter, the
//! environment the checks read (`check`'s `USBPM_*` settings), and the proptest record,
//! which nextest's verdict makes (proptest reports through its own runner).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use usbpm::checking::Mutant;

use super::display::Display;
use super::{Options, PROPTEST_SCENARIO};
use crate::base::checker::Checker;
use crate::checkers::check::{Failure, Profile, Record, Verdict};

/// Fails with the way to install cargo-nextest when it is missing.
pub fn require_nextest(root: &Path) -> Result<(), String> {
    let ok = Command::new("cargo")
        .args(["nextest", "--version"])
        .current_dir(root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Ok(())
    } else {
        Err("the gate runs its checks with cargo-nextest, which is not installed; install it with `cargo install cargo-nextest --locked` (or run the test suites alone with `gate test`)".into())
    }
}

/// The test function a scenario's check is (see `scenario_checks!`).
pub fn test_name(scenario: &str) -> String {
    scenario.replace('-', "_")
}

/// The nextest filter for a checker's checks (never the `teeth_` regression tests, which
/// the mutant run supersedes, nor the `every_` completeness tests).
pub fn filter(opts: &Options, checker: Checker) -> String {
    match checker {
        Checker::Proptest | Checker::Spec => return "all()".into(),
        // The gate's one check in the binary of trace validation's own tests.
        Checker::Trace => return "test(=trace_validation)".into(),
        Checker::Loom
        | Checker::Shuttle
        | Checker::Std
        | Checker::GenLoom
        | Checker::GenShuttle => {}
    }
    let mut expr = "not test(/^teeth_/) and not test(/^every_/)".to_string();
    if !opts.scenarios.is_empty() {
        let names: Vec<String> = opts
            .scenarios
            .iter()
            .filter(|s| checker.scenarios().contains(&s.as_str()))
            .map(|s| format!("test(={})", test_name(s)))
            .collect();
        expr = format!("{expr} and ({})", names.join(" | "));
    }
    expr
}

/// proptest's number of cases per profile.
pub fn proptest_cases(profile: Profile) -> u64 {
    if profile == Profile::Full {
        2048
    } else {
        256
    }
}

/// One nextest run's settings, shared by the checkers of a gate run.
pub struct Run<'a> {
    pub root: &'a Path,
    pub profile: Profile,
    pub mutant: Option<Mutant>,
    /// Stop a checker's run at its first failing check (`gate mutants`: one kill is all a
    /// cell of the kill matrix needs); otherwise every check runs.
    pub first_kill: bool,
    pub seed: u64,
    pub shard: Option<&'a str>,
    /// Where the checks write records, progress and schedules.
    pub results: PathBuf,
    /// Where nextest's output goes, one log per checker (and mutant).
    pub logs: PathBuf,
    /// nextest's test threads: the run's share of the cores (see `lanes`).
    pub test_threads: usize,
}

impl Run<'_> {
    /// The log of `checker`'s nextest run (one per checker and mutant).
    pub fn log_path(&self, checker: Checker) -> PathBuf {
        let suffix = self
            .mutant
            .map(|m| format!("-{}", m.name()))
            .unwrap_or_default();
        self.logs.join(format!("{}{suffix}.log", checker.name()))
    }
}

/// Runs one checker's checks through nextest; returns whether nextest passed.
pub fn run_checker(run: &Run<'_>, opts: &Options, checker: Checker, display: &Display) -> bool {
    run_checks(run, opts, checker, None, display)
}

/// [`filter`], narrowed to the checks of these scenarios (a record's `scenario`).
pub fn filter_only(opts: &Options, checker: Checker, only: &[String]) -> String {
    let names: Vec<String> = only
        .iter()
        .map(|s| format!("test(={})", test_name(s)))
        .collect();
    format!("({}) and ({})", filter(opts, checker), names.join(" | "))
}

/// Runs one checker's checks through nextest, only those of the scenarios in `only` if
/// given; returns whether nextest passed.
pub fn run_checks(
    run: &Run<'_>,
    opts: &Options,
    checker: Checker,
    only: Option<&[String]>,
    display: &Display,
) -> bool {
    let filter = match only {
        Some(only) => filter_only(opts, checker, only),
        None => filter(opts, checker),
    };
    let mut cmd = Command::new("cargo");
    cmd.current_dir(run.root)
        .arg("nextest")
        .arg("run")
        .args(checker.cargo_args());
    let nextest_profile = if run.mutant.is_some() {
        "gate-mutants"
    } else {
        "gate"
    };
    // The kill matrix needs one kill per checker: the checker's other checks are
    // stopped at its first failure (the kill is the first failure in time).
    let max_fail = if run.first_kill { "1:immediate" } else { "all" };
    cmd.args([
        "--profile",
        nextest_profile,
        "--max-fail",
        max_fail,
        "-E",
        &filter,
        "--test-threads",
        &run.test_threads.to_string(),
    ]);
    cmd.env("SHUTTLE_SILENCE_WARNINGS", "1");
    if let Some(shard) = run.shard {
        cmd.args(["--partition", &format!("count:{shard}")]);
    }
    let profile = match run.profile {
        Profile::Quick => "quick",
        Profile::Full => "full",
    };
    cmd.env("USBPM_PROFILE", profile)
        .env("USBPM_RESULTS_DIR", &run.results)
        .env("USBPM_SEED", run.seed.to_string());
    cmd.env("PROPTEST_CASES", proptest_cases(run.profile).to_string());
    for (var, value) in [
        ("USBPM_PROGRAM_SIZE", &opts.program_size),
        ("USBPM_PROGRAM_BOUND", &opts.program_bound),
    ] {
        match value {
            Some(v) => cmd.env(var, v),
            None => cmd.env_remove(var),
        };
    }
    match run.mutant {
        Some(m) => cmd.env("USBPM_MUTANT", m.name()),
        None => cmd.env_remove("USBPM_MUTANT"),
    };
    let log_path = run.log_path(checker);
    let log = std::fs::File::create(&log_path).expect("create the log file");
    cmd.stdout(log.try_clone().expect("log handle")).stderr(log);
    display.set_phase(&format!(
        "{}{}",
        checker.name(),
        run.mutant
            .map(|m| format!(" vs {}", m.name()))
            .unwrap_or_default()
    ));
    let start = Instant::now();
    let ok = cmd.status().is_ok_and(|s| s.success());
    if checker == Checker::Proptest {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        let hung = if log.contains(crate::judge::stall::NO_PROGRESS) {
            Some(Hang::NoProgress)
        } else if log.contains("TIMEOUT") {
            Some(Hang::Timeout)
        } else {
            None
        };
        let record = proptest_record(
            run.profile,
            run.mutant,
            ok,
            hung,
            start.elapsed().as_secs_f64(),
            &log_path,
        );
        let dir = run.results.join("records");
        let _ = std::fs::create_dir_all(&dir);
        let json = serde_json::to_string_pretty(&record).expect("a record serialises");
        let _ = std::fs::write(
            dir.join(format!(
                "{}.json",
                Record::key(Checker::Proptest, PROPTEST_SCENARIO)
            )),
            json,
        );
    }
    ok
}

/// How a proptest run that hung was stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hang {
    /// Its watchdog saw that no thread could make progress (`judge::stall`), in seconds.
    NoProgress,
    /// nextest terminated it at the profile's timeout.
    Timeout,
}

/// The proptest check's record, made from nextest's verdict (`ok`) and how its log says
/// it hung, if it did (`hung`).
pub fn proptest_record(
    profile: Profile,
    mutant: Option<Mutant>,
    ok: bool,
    hung: Option<Hang>,
    seconds: f64,
    log: &Path,
) -> Record {
    let cases = proptest_cases(profile);
    let failure = (!ok).then(|| Failure {
        property: hung.map(|h| {
            match h {
                Hang::NoProgress => "P3 (no thread can make progress)",
                Hang::Timeout => "P3 (hung until nextest's timeout)",
            }
            .to_string()
        }),
        report: format!("the state machine found a divergence from the reference model; the shrunk sequence is in {}", log.display()),
        replay: "cargo test --release -p usbpm-model --test proptest_api (proptest replays its saved failure seeds first)".into(),
    });
    Record {
        checker: Checker::Proptest,
        scenario: PROPTEST_SCENARIO.into(),
        mutant: mutant.map(|m| m.name().to_string()),
        profile,
        verdict: if ok { Verdict::Pass } else { Verdict::Fail },
        exhaustive: false,
        method: format!("state machine vs reference model, {cases} cases"),
        executions: cases,
        seconds,
        properties: vec!["P1".into(), "P4".into(), "P5".into()],
        failure,
        strategies: Vec::new(),
        spec: None,
        programs: Vec::new(),
        reached: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_leaves_out_regression_and_completeness_tests() {
        let o = Options::default();
        assert_eq!(
            filter(&o, Checker::Loom),
            "not test(/^teeth_/) and not test(/^every_/)"
        );
        assert_eq!(filter(&o, Checker::Proptest), "all()");
        assert_eq!(filter(&o, Checker::Spec), "all()");
        assert_eq!(filter(&o, Checker::Trace), "test(=trace_validation)");
    }

    #[test]
    fn a_scenario_filter_names_the_checkers_own_tests() {
        let o = Options {
            scenarios: vec!["churn-4x3x20".into(), "mutual-deregister".into()],
            ..Options::default()
        };
        assert_eq!(filter(&o, Checker::Shuttle), "not test(/^teeth_/) and not test(/^every_/) and (test(=churn_4x3x20) | test(=mutual_deregister))");
        // loom runs no large scenario: only the small one is named.
        assert_eq!(
            filter(&o, Checker::Loom),
            "not test(/^teeth_/) and not test(/^every_/) and (test(=mutual_deregister))"
        );
    }

    #[test]
    fn the_proptest_record_follows_nextests_verdict() {
        let log = Path::new("logs/proptest.log");
        let pass = proptest_record(Profile::Full, None, true, None, 1.5, log);
        assert_eq!(
            (pass.verdict, pass.executions, pass.failure.is_none()),
            (Verdict::Pass, 2048, true)
        );
        let m = Mutant::ALL[0];
        let fail = proptest_record(
            Profile::Quick,
            Some(m),
            false,
            Some(Hang::Timeout),
            2.0,
            log,
        );
        assert_eq!(fail.verdict, Verdict::Fail);
        assert_eq!(fail.mutant.as_deref(), Some(m.name()));
        let f = fail.failure.expect("a failure");
        assert_eq!(
            f.property.as_deref(),
            Some("P3 (hung until nextest's timeout)")
        );
        assert!(f.report.contains("logs/proptest.log"));
        let stalled = proptest_record(
            Profile::Quick,
            None,
            false,
            Some(Hang::NoProgress),
            2.0,
            log,
        );
        assert_eq!(
            stalled.failure.expect("a failure").property.as_deref(),
            Some("P3 (no thread can make progress)")
        );
        let plain = proptest_record(Profile::Quick, None, false, None, 2.0, log);
        assert_eq!(plain.failure.expect("a failure").property, None);
    }
}

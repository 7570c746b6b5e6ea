//! `gate`, `gate full` and `gate mutants`: run the selected checks through nextest,
//! watch them, and make the report from the records they leave.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use usbpm::checking::Mutant;

use super::display::{watch, Display};
use super::lanes::{longest_first, Lanes};
use super::nextest::{require_nextest, run_checker, run_checks, Run};
use super::records::read_final_records;
use super::{command_line, fresh_dir, Options, VERIFICATION_MD};
use crate::base::checker::Checker;
use crate::checkers::check::{Profile, Record, Verdict};
use crate::reports::report::{Kill, ReachSummary, Report};

/// Which run of the checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunKind {
    /// Every check at the quick profile.
    Quick,
    /// Every check at the full profile.
    Full,
    /// Every check against every mutant, at the quick profile: the kill matrix.
    Mutants,
}

impl RunKind {
    /// The section of docs/VERIFICATION.md this run's report goes to.
    pub fn doc_section(self) -> &'static str {
        if self == RunKind::Mutants {
            "mutants"
        } else {
            "report"
        }
    }
}

/// Runs the checks, writes the reports, and exits 0 only when the run passed.
pub fn run(kind: RunKind, opts: &Options, root: &Path, update_docs: bool) -> ExitCode {
    if let Err(msg) = opts.validate().and_then(|()| require_nextest(root)) {
        eprintln!("gate: {msg}");
        return ExitCode::from(2);
    }
    // The sources the checks run on: a report embedded in the docs is stamped with these,
    // not with whatever the sources are when the run ends.
    let sources = crate::reports::docs::stamp(root);
    let report = match kind {
        RunKind::Mutants => run_mutants(opts, root),
        RunKind::Quick => run_gate(opts, root, Profile::Quick),
        RunKind::Full => run_gate(opts, root, Profile::Full),
    };
    finish(
        kind,
        opts,
        root,
        &report,
        update_docs.then_some(sources.as_str()),
    )
}

fn this_command() -> String {
    command_line(&std::env::args().skip(1).collect::<Vec<_>>())
}

/// Every selected check at `profile`.
pub fn run_gate(opts: &Options, root: &Path, profile: Profile) -> Report {
    let report_dir = fresh_dir(&root.join(&opts.report_dir));
    let checkers = longest_first(&opts.selected_checkers(), profile);
    let start = Instant::now();
    let (records, mut missing, nextest_ok) = run_checkers(
        opts,
        root,
        &report_dir,
        profile,
        opts.applied_mutant(),
        &checkers,
    );
    if !nextest_ok && missing.is_empty() && records.iter().all(|r| r.verdict == Verdict::Pass) {
        missing.push(format!(
            "nextest reported a failure outside the checks; see {}",
            report_dir.join("logs").display()
        ));
    }
    Report {
        command: this_command(),
        profile: format!("{profile:?}").to_lowercase(),
        shard: opts.shard.clone(),
        seconds: start.elapsed().as_secs_f64(),
        records,
        missing,
        kills: None,
        merged: Vec::new(),
        unreached: Default::default(),
        reach: None,
    }
}

/// How `checker` killed a mutant, from one mutant run's records: its fastest failing
/// check, or else a check of it that left no record (it hung until nextest terminated it,
/// or crashed: the unmutated check finishes in bounded time, so that is a detection).
pub fn fastest_kill(
    records: &[Record],
    missing: &[String],
    checker: Checker,
    logs: &Path,
    log: &str,
) -> Option<Kill> {
    let fastest = records
        .iter()
        .filter(|r| r.checker == checker && r.verdict == Verdict::Fail)
        .map(|r| Kill {
            scenario: r.scenario.clone(),
            property: r.failure.as_ref().and_then(|f| f.property.clone()),
            executions: r.executions,
            seconds: r.seconds,
            replay: r
                .failure
                .as_ref()
                .map(|f| f.replay.clone())
                .unwrap_or_default(),
            strategies: r.strategies.clone(),
        })
        .min_by(|a, b| a.seconds.total_cmp(&b.seconds));
    fastest.or_else(|| {
        let mine: Vec<&String> = missing
            .iter()
            .filter(|k| k.starts_with(&format!("{}__", checker.name())))
            .collect();
        // With `first_kill`, nextest also terminates the checks running beside the one
        // that failed: they leave no record either. The log names the one that failed.
        let key = mine
            .iter()
            .find(|k| failed_in_log(log, k.split("__").nth(1).unwrap_or("")))
            .or_else(|| mine.first())?;
        Some(Kill {
            scenario: key.split("__").nth(1).unwrap_or("").to_string(),
            property: Some("P3 (hung or crashed)".into()),
            executions: 0,
            seconds: 0.0,
            replay: format!("see {}", logs.display()),
            strategies: Vec::new(),
        })
    })
}

/// Whether nextest's `log` reports `scenario`'s check as failed by itself (failed,
/// crashed or timed out), not terminated by nextest because another check failed first.
fn failed_in_log(log: &str, scenario: &str) -> bool {
    let test = super::nextest::test_name(scenario);
    log.lines().any(|l| {
        let words: Vec<&str> = l.split_whitespace().collect();
        words.last() == Some(&test.as_str())
            && [
                "FAIL", "SIGABRT", "SIGSEGV", "SIGBUS", "SIGILL", "ABORT", "TIMEOUT",
            ]
            .iter()
            .any(|w| words.first() == Some(w))
    })
}

/// What each check reached in its unmutated run: per checker, each check's scenario and
/// the mutants whose code it reached (`None`: unknown, so it runs against every mutant).
#[derive(Debug, Default)]
pub struct Reach(BTreeMap<Checker, Vec<Reached>>);

/// One check's scenario and the mutants its unmutated run reached (`None`: unknown).
type Reached = (String, Option<BTreeSet<String>>);

/// Which of a checker's checks to run against a mutant.
#[derive(Debug, PartialEq, Eq)]
pub enum Checks {
    /// Every one (all reach the mutant, or what they reach is unknown).
    All,
    /// Only these scenarios' checks.
    Only(Vec<String>),
    /// None: no check of the checker reaches the mutant's code.
    Unreached,
}

impl Reach {
    pub fn from_records(records: &[Record]) -> Reach {
        let mut by: BTreeMap<Checker, Vec<Reached>> = BTreeMap::new();
        for r in records {
            by.entry(r.checker).or_default().push((
                r.scenario.clone(),
                r.reached.as_ref().map(|v| v.iter().cloned().collect()),
            ));
        }
        Reach(by)
    }

    /// The checks of `checker` that can kill `m`: those whose unmutated run reached its
    /// code, or whose reach is unknown. A checker with no record runs every check.
    pub fn checks(&self, checker: Checker, m: Mutant) -> Checks {
        let Some(checks) = self.0.get(&checker) else {
            return Checks::All;
        };
        let run: Vec<String> = checks
            .iter()
            .filter(|(_, reached)| reached.as_ref().is_none_or(|r| r.contains(m.name())))
            .map(|(s, _)| s.clone())
            .collect();
        if run.is_empty() {
            Checks::Unreached
        } else if run.len() == checks.len() {
            Checks::All
        } else {
            Checks::Only(run)
        }
    }

    /// How many of `checker`'s checks run against `m` (`all`: its number of checks).
    fn count(&self, checker: Checker, m: Mutant, all: u64) -> u64 {
        match self.checks(checker, m) {
            Checks::All => all,
            Checks::Only(v) => v.len() as u64,
            Checks::Unreached => 0,
        }
    }
}

/// `checkers`' checks at `profile` (with `mutant` switched on, if any), in lanes, with
/// results and logs under `dir`: the records, the checks that left none, and whether
/// every nextest run passed.
fn run_checkers(
    opts: &Options,
    root: &Path,
    dir: &Path,
    profile: Profile,
    mutant: Option<Mutant>,
    checkers: &[Checker],
) -> (Vec<Record>, Vec<String>, bool) {
    let lanes = Lanes::here();
    let run = Run {
        root,
        profile,
        mutant,
        first_kill: false,
        seed: opts.seed,
        shard: opts.shard.as_deref(),
        results: dir.join("results"),
        logs: dir.join("logs"),
        test_threads: lanes.test_threads,
    };
    std::fs::create_dir_all(&run.logs).expect("create the log directory");
    let display = Arc::new(Display::new(opts.total_checks(checkers)));
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch(run.results.clone(), display.clone(), stop.clone());
    let ok = lanes
        .run(checkers, |c| run_checker(&run, opts, *c, &display))
        .into_iter()
        .all(|ok| ok);
    stop.store(true, Ordering::SeqCst);
    let _ = watcher.join();
    display.bar.finish_and_clear();
    let (records, missing) = read_final_records(&run.results);
    (records, missing, ok)
}

/// Every selected check against every selected mutant: the kill matrix. The checks first
/// run once unmutated; a check then runs against a mutant only if that run reached the
/// mutant's code.
pub fn run_mutants(opts: &Options, root: &Path) -> Report {
    let report_dir = fresh_dir(&root.join(&opts.report_dir));
    let mutants: Vec<Mutant> = opts.selected_mutants();
    let checkers = longest_first(&opts.selected_mutant_checkers(), Profile::Quick);
    let start = Instant::now();
    eprintln!("gate mutants: every check once on the shipped code first, to learn which mutants' code each reaches");
    let (unmutated, missing, ok) = run_checkers(
        opts,
        root,
        &report_dir.join("unmutated"),
        Profile::Quick,
        None,
        &checkers,
    );
    let failed: Vec<String> = unmutated
        .iter()
        .filter(|r| r.verdict != Verdict::Pass)
        .map(|r| format!("{} {}", r.checker, r.scenario))
        .chain(missing)
        .collect();
    if !ok || !failed.is_empty() {
        let mut missing = vec![format!(
            "the shipped code fails its own checks ({}), so no kill would mean anything: run `gate` to see the failure, and the kill matrix once it passes",
            if failed.is_empty() {
                "nextest failed outside the checks".to_string()
            } else {
                failed.join(", ")
            }
        )];
        missing.sort();
        return Report {
            command: this_command(),
            profile: "quick".into(),
            shard: opts.shard.clone(),
            seconds: start.elapsed().as_secs_f64(),
            records: unmutated,
            missing,
            kills: Some(BTreeMap::new()),
            merged: Vec::new(),
            unreached: Default::default(),
            reach: None,
        };
    }
    let reach = Reach::from_records(&unmutated);
    let unmutated_seconds = start.elapsed().as_secs_f64();
    let per_checker: BTreeMap<Checker, u64> = checkers
        .iter()
        .map(|c| (*c, opts.total_checks(&[*c])))
        .collect();
    let all_runs = per_checker.values().sum::<u64>() * mutants.len() as u64;
    let to_run: u64 = mutants
        .iter()
        .flat_map(|m| per_checker.iter().map(|(c, n)| reach.count(*c, *m, *n)))
        .sum();
    let display = Arc::new(Display::new(to_run));
    display.line(format!(
        "gate mutants: the shipped code passed in {unmutated_seconds:.0} s; {to_run} of {all_runs} check runs reach their mutant's code"
    ));
    // Mutants side by side, each lane one mutant's checkers at a time.
    let lanes = Lanes::here();
    let outcomes = lanes.run(&mutants, |m| {
        let run = Run {
            root,
            profile: Profile::Quick,
            mutant: Some(*m),
            first_kill: true,
            seed: opts.seed,
            shard: opts.shard.as_deref(),
            results: report_dir.join("results").join(m.name()),
            logs: report_dir.join("logs"),
            test_threads: lanes.test_threads,
        };
        std::fs::create_dir_all(&run.logs).expect("create the log directory");
        let stop = Arc::new(AtomicBool::new(false));
        let watcher = watch(run.results.clone(), display.clone(), stop.clone());
        let mut unreached = BTreeSet::new();
        for c in &checkers {
            match reach.checks(*c, *m) {
                Checks::All => {
                    run_checks(&run, opts, *c, None, &display);
                }
                Checks::Only(only) => {
                    run_checks(&run, opts, *c, Some(&only), &display);
                }
                Checks::Unreached => {
                    unreached.insert(*c);
                }
            }
        }
        stop.store(true, Ordering::SeqCst);
        let _ = watcher.join();
        let (records, missing) = read_final_records(&run.results);
        let mut by = BTreeMap::new();
        for c in &checkers {
            let log = std::fs::read_to_string(run.log_path(*c)).unwrap_or_default();
            by.insert(*c, fastest_kill(&records, &missing, *c, &run.logs, &log));
        }
        let killed: Vec<&str> = by
            .iter()
            .filter(|(_, k)| k.is_some())
            .map(|(c, _)| c.name())
            .collect();
        display.line(format!(
            "mutant {:<26} killed by: {}",
            m.name(),
            if killed.is_empty() {
                "NONE (survived)".into()
            } else {
                killed.join(", ")
            }
        ));
        (by, records, unreached)
    });
    display.bar.finish_and_clear();
    let mut kills: BTreeMap<String, BTreeMap<Checker, Option<Kill>>> = BTreeMap::new();
    let mut all_unreached = BTreeMap::new();
    let mut all_records = Vec::new();
    for (m, (by, records, unreached)) in mutants.iter().zip(outcomes) {
        kills.insert(m.name().to_string(), by);
        if !unreached.is_empty() {
            all_unreached.insert(m.name().to_string(), unreached);
        }
        all_records.extend(records);
    }
    Report {
        command: this_command(),
        profile: "quick".into(),
        shard: opts.shard.clone(),
        seconds: start.elapsed().as_secs_f64(),
        records: all_records,
        missing: Vec::new(),
        kills: Some(kills),
        merged: Vec::new(),
        unreached: all_unreached,
        reach: Some(ReachSummary {
            seconds: unmutated_seconds,
            runs: all_runs,
            skipped: all_runs - to_run,
        }),
    }
}

/// Writes report.md, report.json and junit.xml into `dir`; returns the Markdown.
pub fn write_reports(dir: &Path, report: &Report) -> String {
    let md = report.markdown();
    std::fs::create_dir_all(dir).expect("create the report directory");
    std::fs::write(dir.join("report.md"), &md).expect("write report.md");
    std::fs::write(
        dir.join("report.json"),
        serde_json::to_string_pretty(report).expect("serialise the report"),
    )
    .expect("write report.json");
    std::fs::write(dir.join("junit.xml"), report.junit()).expect("write junit.xml");
    md
}

/// Prints the verdict and returns the exit code it calls for.
pub fn verdict(report: &Report) -> ExitCode {
    if report.passed() {
        println!("gate: PASS");
        ExitCode::SUCCESS
    } else {
        println!("gate: FAIL");
        ExitCode::from(1)
    }
}

/// Writes the reports (and, with `update_docs`, the stamp of the sources the run
/// checked, embeds this one in the docs) and exits with the run's verdict.
pub fn finish(
    kind: RunKind,
    opts: &Options,
    root: &Path,
    report: &Report,
    update_docs: Option<&str>,
) -> ExitCode {
    let dir = root.join(&opts.report_dir);
    let report = &report.relative_to(root);
    let md = write_reports(&dir, report);
    println!("{md}");
    println!(
        "Reports: {}/report.md, report.json, junit.xml",
        dir.display()
    );
    if let Some(sources) = update_docs {
        if kind != RunKind::Mutants && opts.applied_mutant().is_some() {
            eprintln!("gate: --update-docs embeds the report of the shipped code; this run had a mutant switched on");
            return ExitCode::from(2);
        }
        if !opts.is_docs_run() || kind == RunKind::Quick {
            eprintln!("gate: --update-docs embeds only a whole run: `gate full --update-docs` or `gate mutants --update-docs`, unsharded and unfiltered");
            return ExitCode::from(2);
        }
        match super::embed_section(root, kind.doc_section(), sources, &report.docs_markdown()) {
            Ok(()) => println!("gate: wrote this report into {VERIFICATION_MD}"),
            Err(e) => {
                eprintln!("gate: {e}");
                return ExitCode::from(1);
            }
        }
    }
    if let (RunKind::Quick | RunKind::Full, Some(m)) = (kind, opts.applied_mutant()) {
        println!(
            "gate: mutant {} was switched on in every check: {}",
            m.name(),
            if report.passed() {
                "it survived them all (no check failed)".to_string()
            } else {
                "checks failed against it, as a check with teeth should; report.md shows each failure's timeline and replay".to_string()
            }
        );
    }
    verdict(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkers::check::Failure;
    use crate::gate::records::tests::record;

    #[test]
    fn a_mutant_runs_only_in_the_checks_that_reached_it() {
        let (m, other) = (Mutant::ALL[0], Mutant::ALL[1]);
        let reaching = |c, s: &str, reached: Option<&[Mutant]>| {
            let mut r = record(c, s, Verdict::Pass);
            r.reached = reached.map(|ms| ms.iter().map(|m| m.name().to_string()).collect());
            r
        };
        let reach = Reach::from_records(&[
            reaching(Checker::Loom, "a", Some(&[m, other])),
            reaching(Checker::Loom, "b", Some(&[other])),
            reaching(Checker::Shuttle, "a", Some(&[m])),
            reaching(Checker::Std, "a", Some(&[])),
            reaching(Checker::Spec, "protocol-spec", None),
        ]);
        assert_eq!(
            reach.checks(Checker::Loom, m),
            Checks::Only(vec!["a".into()])
        );
        assert_eq!(reach.checks(Checker::Loom, other), Checks::All);
        assert_eq!(reach.checks(Checker::Shuttle, m), Checks::All);
        assert_eq!(reach.checks(Checker::Std, m), Checks::Unreached);
        // Unknown reach, or no record at all: every check runs.
        assert_eq!(reach.checks(Checker::Spec, m), Checks::All);
        assert_eq!(reach.checks(Checker::GenLoom, m), Checks::All);
        assert_eq!(reach.count(Checker::Loom, m, 2), 1);
        assert_eq!(reach.count(Checker::Std, m, 1), 0);
    }

    #[test]
    fn the_fastest_failing_check_is_the_kill() {
        let mut slow = record(Checker::Loom, "mutual-deregister", Verdict::Fail);
        slow.seconds = 9.0;
        let mut fast = record(Checker::Loom, "dispatch-vs-deregister", Verdict::Fail);
        fast.seconds = 0.1;
        fast.failure = Some(Failure {
            property: Some("P2".into()),
            report: String::new(),
            replay: "replay it".into(),
        });
        let passed = record(Checker::Loom, "handle-reuse", Verdict::Pass);
        let other = record(Checker::Std, "handle-reuse", Verdict::Fail);
        let records = [slow, fast, passed, other];
        let k = fastest_kill(&records, &[], Checker::Loom, Path::new("logs"), "").expect("killed");
        assert_eq!(
            (
                k.scenario.as_str(),
                k.property.as_deref(),
                k.replay.as_str()
            ),
            ("dispatch-vs-deregister", Some("P2"), "replay it")
        );
        assert!(fastest_kill(&records, &[], Checker::Shuttle, Path::new("logs"), "").is_none());
    }

    #[test]
    fn a_check_that_left_no_record_is_a_kill_by_hang() {
        let missing = ["shuttle__churn-4x3x20".to_string()];
        let k = fastest_kill(&[], &missing, Checker::Shuttle, Path::new("logs"), "")
            .expect("killed by the hang");
        assert_eq!(k.scenario, "churn-4x3x20");
        assert_eq!(k.property.as_deref(), Some("P3 (hung or crashed)"));
        assert_eq!(k.replay, "see logs");
        assert!(fastest_kill(&[], &missing, Checker::Std, Path::new("logs"), "").is_none());
    }

    #[test]
    fn a_kill_by_crash_is_the_check_the_log_names_not_one_terminated_beside_it() {
        let missing = [
            "gen-loom__chunk-01".to_string(),
            "gen-loom__chunk-02".to_string(),
        ];
        let log = "        SIGTERM [   0.20s] usbpm-model::programs chunk_01\n     SIGABRT [   0.01s] usbpm-model::programs chunk_02\n";
        let k = fastest_kill(&[], &missing, Checker::GenLoom, Path::new("logs"), log)
            .expect("killed by the crash");
        assert_eq!(k.scenario, "chunk-02");
        let k = fastest_kill(&[], &missing, Checker::GenLoom, Path::new("logs"), "")
            .expect("a log that names none: the first");
        assert_eq!(k.scenario, "chunk-01");
    }

    #[test]
    fn a_report_names_no_directory_of_the_machine_that_made_it() {
        let mut r = record(Checker::Shuttle, "handle-reuse", Verdict::Fail);
        r.failure = Some(Failure {
            property: Some("P4".into()),
            report: "schedule in /home/ci/usbpm/target/gate/results/s.schedule".into(),
            replay: "replay --schedule-file /home/ci/usbpm/target/gate/results/s.schedule".into(),
        });
        let report = Report {
            command: "gate".into(),
            profile: "quick".into(),
            shard: None,
            seconds: 1.0,
            records: vec![r],
            missing: Vec::new(),
            kills: None,
            merged: Vec::new(),
            unreached: Default::default(),
            reach: None,
        }
        .relative_to(Path::new("/home/ci/usbpm"));
        let f = report.records[0].failure.as_ref().expect("a failure");
        assert_eq!(
            f.replay,
            "replay --schedule-file target/gate/results/s.schedule"
        );
        assert!(!f.report.contains("/home/ci"), "{}", f.report);
    }

    #[test]
    fn reports_are_written_in_three_formats() {
        let dir = crate::gate::records::tests::scratch("write-reports");
        let report = Report {
            command: "gate".into(),
            profile: "quick".into(),
            shard: None,
            seconds: 1.0,
            records: vec![record(Checker::Std, "handle-reuse", Verdict::Pass)],
            missing: Vec::new(),
            kills: None,
            merged: Vec::new(),
            unreached: Default::default(),
            reach: None,
        };
        let md = write_reports(&dir, &report);
        assert_eq!(std::fs::read_to_string(dir.join("report.md")).unwrap(), md);
        assert!(std::fs::read_to_string(dir.join("report.json"))
            .unwrap()
            .contains("\"handle-reuse\""));
        assert!(std::fs::read_to_string(dir.join("junit.xml"))
            .unwrap()
            .contains("name=\"handle-reuse\""));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn only_full_and_mutant_runs_go_to_their_own_doc_sections() {
        assert_eq!(RunKind::Full.doc_section(), "report");
        assert_eq!(RunKind::Mutants.doc_section(), "mutants");
    }
}

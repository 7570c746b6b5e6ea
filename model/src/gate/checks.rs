//! `gate`, `gate full` and `gate mutants`: run the selected checks through nextest,
//! watch them, and make the report from the records they leave.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use usbpm::checking::Mutant;

use super::display::{watch, Display};
use super::lanes::{longest_first, Lanes};
use super::nextest::{require_nextest, run_checker, Run};
use super::records::read_records;
use super::{command_line, fresh_dir, Options, VERIFICATION_MD};
use crate::base::checker::Checker;
use crate::checkers::check::{Profile, Record, Verdict};
use crate::reports::report::{Kill, Report};

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
    let lanes = Lanes::here();
    let run = Run {
        root,
        profile,
        mutant: opts.applied_mutant(),
        first_kill: false,
        seed: opts.seed,
        shard: opts.shard.as_deref(),
        results: report_dir.join("results"),
        logs: report_dir.join("logs"),
        test_threads: lanes.test_threads,
    };
    std::fs::create_dir_all(&run.logs).expect("create the log directory");
    let checkers = longest_first(&opts.selected_checkers(), profile);
    let display = Arc::new(Display::new(opts.total_checks(&checkers)));
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch(run.results.clone(), display.clone(), stop.clone());
    let start = Instant::now();
    let nextest_ok = lanes
        .run(&checkers, |c| run_checker(&run, opts, *c, &display))
        .into_iter()
        .all(|ok| ok);
    stop.store(true, Ordering::SeqCst);
    let _ = watcher.join();
    display.bar.finish_and_clear();
    let (records, mut missing) = read_records(&run.results);
    if !nextest_ok && missing.is_empty() && records.iter().all(|r| r.verdict == Verdict::Pass) {
        missing.push(format!(
            "nextest reported a failure outside the checks; see {}",
            run.logs.display()
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

/// Every selected check against every selected mutant: the kill matrix.
pub fn run_mutants(opts: &Options, root: &Path) -> Report {
    let report_dir = fresh_dir(&root.join(&opts.report_dir));
    let mutants: Vec<Mutant> = opts.selected_mutants();
    let checkers = longest_first(&opts.selected_mutant_checkers(), Profile::Quick);
    let display = Arc::new(Display::new(
        opts.total_checks(&checkers) * mutants.len() as u64,
    ));
    let start = Instant::now();
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
        for c in &checkers {
            run_checker(&run, opts, *c, &display);
        }
        stop.store(true, Ordering::SeqCst);
        let _ = watcher.join();
        let (records, missing) = read_records(&run.results);
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
        (by, records)
    });
    display.bar.finish_and_clear();
    let mut kills: BTreeMap<String, BTreeMap<Checker, Option<Kill>>> = BTreeMap::new();
    let mut all_records = Vec::new();
    for (m, (by, records)) in mutants.iter().zip(outcomes) {
        kills.insert(m.name().to_string(), by);
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
        let now = crate::reports::docs::stamp(root);
        if now != sources {
            eprintln!("gate: --update-docs: the checked sources changed while the checks ran (now {now}, at the start {sources}); the report describes neither: rerun it");
            return ExitCode::from(1);
        }
        if kind != RunKind::Mutants && opts.applied_mutant().is_some() {
            eprintln!("gate: --update-docs embeds the report of the shipped code; this run had a mutant switched on");
            return ExitCode::from(2);
        }
        if !opts.is_whole_run() || kind == RunKind::Quick {
            eprintln!("gate: --update-docs embeds only a whole run: `gate full --update-docs` or `gate mutants --update-docs`, unsharded and unfiltered");
            return ExitCode::from(2);
        }
        let path = root.join(VERIFICATION_MD);
        let doc = std::fs::read_to_string(&path).unwrap_or_default();
        match crate::reports::docs::embed(&doc, kind.doc_section(), sources, &md) {
            Ok(new) => {
                std::fs::write(&path, new).expect("write docs/VERIFICATION.md");
                println!("gate: wrote this report into {VERIFICATION_MD}");
            }
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

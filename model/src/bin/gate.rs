//! The verification gate: one command that runs every check (loom, shuttle, std,
//! proptest) on the shipped library, shows progress, writes Markdown/JSON/JUnit reports,
//! and exits 0 only when everything passed. `gate mutants` proves the checks have teeth.
//!
//! The engine is cargo-nextest: each check is one test, run in its own process (so a
//! crash or hang costs one check), sharded with `--partition`, terminated on timeout.
//! This binary only arranges the feature builds, sets the profile, watches progress and
//! writes the reports from the records the checks leave.

use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use usbpm::checking::Mutant;
use usbpm_model::check::{Profile, Record, Verdict};
use usbpm_model::report::{describe_mutant, Kill, Report};
use usbpm_model::scenarios::{Size, ALL};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Every check at the quick profile (every push; under 2 minutes of checking).
    Quick,
    /// Every check at the full profile (merges; under 20 minutes).
    Full,
    /// Every check against every mutant: the kill matrix.
    Mutants,
    /// The project's test suites: `cargo test` on the workspace, then loom and shuttle.
    Test,
    /// List scenarios, checkers and mutants.
    List,
    /// Measure every small scenario under loom at preemption bounds 2, 3 and unbounded:
    /// executions and seconds (each run capped by --timeout-secs).
    LoomBounds,
    /// Fail if a report embedded in docs/VERIFICATION.md is stale (the checked sources
    /// changed since it was generated with --update-docs).
    CheckDocs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
enum Checker {
    Loom,
    Shuttle,
    Std,
    Proptest,
}

impl Checker {
    fn name(self) -> &'static str {
        match self {
            Checker::Loom => "loom",
            Checker::Shuttle => "shuttle",
            Checker::Std => "std",
            Checker::Proptest => "proptest",
        }
    }

    /// The cargo arguments that build and select this checker's test binary.
    fn cargo_args(self) -> &'static [&'static str] {
        match self {
            Checker::Loom => &[
                "--release",
                "-p",
                "usbpm-model",
                "--features",
                "loom",
                "--test",
                "loom",
            ],
            Checker::Shuttle => &[
                "--release",
                "-p",
                "usbpm-model",
                "--features",
                "shuttle",
                "--test",
                "shuttle",
            ],
            Checker::Std => &["--release", "-p", "usbpm-model", "--test", "stress"],
            Checker::Proptest => &["--release", "-p", "usbpm-model", "--test", "proptest_api"],
        }
    }

    fn scenarios(self) -> Vec<&'static str> {
        match self {
            Checker::Loom => ALL
                .iter()
                .filter(|s| s.size == Size::Small)
                .map(|s| s.name)
                .collect(),
            Checker::Shuttle | Checker::Std => ALL.iter().map(|s| s.name).collect(),
            Checker::Proptest => vec![PROPTEST_SCENARIO],
        }
    }
}

const PROPTEST_SCENARIO: &str = "api-state-machine";

#[derive(Parser)]
#[command(
    about = "usbpm verification gate: loom + shuttle + std + proptest on the shipped library",
    after_help = "Examples:\n  gate                         quick gate, report in target/gate\n  gate full --shard 1/2        half of the full gate (CI matrix job 1 of 2)\n  gate --checker loom --scenario mutual-deregister\n  gate mutants                 kill matrix of every mutant\n  gate test                    the project's test suites"
)]
struct Cli {
    /// What to run.
    #[arg(value_enum, default_value_t = Mode::Quick)]
    mode: Mode,
    /// Only these checkers (repeatable).
    #[arg(long, value_enum)]
    checker: Vec<Checker>,
    /// Only these scenarios (repeatable; see `gate list`).
    #[arg(long)]
    scenario: Vec<String>,
    /// `gate mutants`: only these mutants (repeatable; see `gate list`).
    #[arg(long)]
    mutant: Vec<String>,
    /// Run shard I of N (cargo-nextest --partition count:I/N), e.g. `1/2`.
    #[arg(long, value_name = "I/N")]
    shard: Option<String>,
    /// Where to write report.md, report.json, junit.xml and the check logs.
    #[arg(long, default_value = "target/gate")]
    report_dir: PathBuf,
    /// Seed for shuttle's schedulers.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Also write this run's report into docs/VERIFICATION.md (full and mutants runs).
    #[arg(long)]
    update_docs: bool,
    /// `gate loom-bounds`: the longest one measurement may run.
    #[arg(long, default_value_t = 120)]
    timeout_secs: u64,
}

const VERIFICATION_MD: &str = "docs/VERIFICATION.md";

fn doc_section(mode: Mode) -> &'static str {
    if mode == Mode::Mutants {
        "mutants"
    } else {
        "report"
    }
}

fn check_docs(root: &Path) -> ExitCode {
    let doc = match std::fs::read_to_string(root.join(VERIFICATION_MD)) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("gate check-docs: cannot read {VERIFICATION_MD}: {e}");
            return ExitCode::from(1);
        }
    };
    let now = usbpm_model::docs::fingerprint(root);
    let mut ok = true;
    for (section, regenerate) in [
        ("report", "gate full --update-docs"),
        ("mutants", "gate mutants --update-docs"),
    ] {
        match usbpm_model::docs::recorded(&doc, section) {
            Some(f) if f == now => {
                println!("gate check-docs: the {section} section is current (sources {now})")
            }
            Some(f) => {
                ok = false;
                eprintln!("gate check-docs: the {section} section of {VERIFICATION_MD} is stale: generated from sources {f}, the sources are now {now}; regenerate it with `{regenerate}` and commit");
            }
            None => {
                ok = false;
                eprintln!("gate check-docs: {VERIFICATION_MD} has no generated {section} section; run `{regenerate}`");
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let root = workspace_root();
    match cli.mode {
        Mode::List => {
            list();
            ExitCode::SUCCESS
        }
        Mode::Test => run_tests(&root),
        Mode::CheckDocs => check_docs(&root),
        Mode::LoomBounds => loom_bounds(&cli, &root),
        Mode::Quick | Mode::Full | Mode::Mutants => match validate(&cli) {
            Err(msg) => {
                eprintln!("gate: {msg}");
                ExitCode::from(2)
            }
            Ok(()) => {
                if let Err(msg) = require_nextest(&root) {
                    eprintln!("gate: {msg}");
                    return ExitCode::from(2);
                }
                let report = if cli.mode == Mode::Mutants {
                    run_mutants(&cli, &root)
                } else {
                    run_gate(&cli, &root)
                };
                finish(&cli, &root, report)
            }
        },
    }
}

fn workspace_root() -> PathBuf {
    // The gate is run by `cargo run` from anywhere in the workspace; the manifest of this
    // package sits one level below the root.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("model/ has a parent")
        .to_path_buf()
}

fn list() {
    println!("Scenarios (threads, size: loom runs the small ones):");
    for s in ALL {
        let props: Vec<_> = s.properties.iter().map(|p| p.id()).collect();
        println!(
            "  {:<32} {} threads, {:<5}  [{}]  {}",
            s.name,
            s.threads,
            if s.size == Size::Small {
                "small"
            } else {
                "large"
            },
            props.join(" "),
            s.about
        );
    }
    println!("\nWhat each profile explores (quick / full):");
    for s in ALL {
        let bound = |p| {
            usbpm_model::check::loom_bound(s, p)
                .map_or("unbounded".to_string(), |b| format!("bound {b}"))
        };
        let loom = if s.size == Size::Small {
            format!("loom {} / {}", bound(Profile::Quick), bound(Profile::Full))
        } else {
            "loom -".into()
        };
        println!(
            "  {:<32} {:<32} shuttle {} / {} per strategy   std {} / {} runs",
            s.name,
            loom,
            usbpm_model::check::shuttle_iterations(s, Profile::Quick),
            usbpm_model::check::shuttle_iterations(s, Profile::Full),
            usbpm_model::check::std_iterations(Profile::Quick),
            usbpm_model::check::std_iterations(Profile::Full)
        );
    }
    println!("  {:<32} proptest 256 / 2048 cases", PROPTEST_SCENARIO);
    println!("\nCheckers: loom (exhaustive), shuttle (PCT + random), std (real threads), proptest (state machine)");
    println!("\nMutants:");
    for m in Mutant::ALL {
        println!("  {:<26} {}", m.name(), describe_mutant(*m));
    }
}

fn validate(cli: &Cli) -> Result<(), String> {
    for s in &cli.scenario {
        if !ALL.iter().any(|x| x.name == s) && s != PROPTEST_SCENARIO {
            return Err(format!("no scenario `{s}`; `gate list` shows them"));
        }
    }
    for m in &cli.mutant {
        if Mutant::from_name(m).is_none() {
            return Err(format!("no mutant `{m}`; `gate list` shows the catalog"));
        }
    }
    if let Some(shard) = &cli.shard {
        let ok = shard
            .split_once('/')
            .and_then(|(i, n)| Some((i.parse::<u32>().ok()?, n.parse::<u32>().ok()?)))
            .is_some_and(|(i, n)| i >= 1 && i <= n);
        if !ok {
            return Err(format!(
                "--shard {shard}: expected I/N with 1 <= I <= N, e.g. 1/2"
            ));
        }
    }
    Ok(())
}

fn require_nextest(root: &Path) -> Result<(), String> {
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

fn checkers(cli: &Cli) -> Vec<Checker> {
    let all = [
        Checker::Loom,
        Checker::Shuttle,
        Checker::Std,
        Checker::Proptest,
    ];
    let chosen: Vec<Checker> = if cli.checker.is_empty() {
        all.to_vec()
    } else {
        all.into_iter()
            .filter(|c| cli.checker.contains(c))
            .collect()
    };
    // A scenario filter that names no scenario of a checker leaves it out.
    chosen
        .into_iter()
        .filter(|c| {
            cli.scenario.is_empty()
                || c.scenarios()
                    .iter()
                    .any(|s| cli.scenario.iter().any(|x| x == s))
        })
        .collect()
}

fn test_name(scenario: &str) -> String {
    scenario.replace('-', "_")
}

/// The nextest filter for a checker's checks (never the `teeth_` regression tests, which
/// the mutant run supersedes).
fn filter(cli: &Cli, checker: Checker) -> String {
    if checker == Checker::Proptest {
        return "all()".into();
    }
    let mut expr = "not test(/^teeth_/) and not test(/^every_/)".to_string();
    if !cli.scenario.is_empty() {
        let names: Vec<String> = cli
            .scenario
            .iter()
            .filter(|s| checker.scenarios().contains(&s.as_str()))
            .map(|s| format!("test(={})", test_name(s)))
            .collect();
        expr = format!("{expr} and ({})", names.join(" | "));
    }
    expr
}

struct Run<'a> {
    root: &'a Path,
    profile: Profile,
    mutant: Option<Mutant>,
    seed: u64,
    shard: Option<&'a str>,
    results: PathBuf,
    logs: PathBuf,
}

/// Runs one checker's checks through nextest; returns whether nextest passed.
fn run_checker(run: &Run<'_>, cli: &Cli, checker: Checker, bar: &Display) -> bool {
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
    cmd.args([
        "--profile",
        nextest_profile,
        "--no-fail-fast",
        "-E",
        &filter(cli, checker),
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
    cmd.env(
        "PROPTEST_CASES",
        if run.profile == Profile::Full {
            "2048"
        } else {
            "256"
        },
    );
    match run.mutant {
        Some(m) => cmd.env("USBPM_MUTANT", m.name()),
        None => cmd.env_remove("USBPM_MUTANT"),
    };
    let suffix = run
        .mutant
        .map(|m| format!("-{}", m.name()))
        .unwrap_or_default();
    let log_path = run.logs.join(format!("{}{suffix}.log", checker.name()));
    let log = std::fs::File::create(&log_path).expect("create the log file");
    cmd.stdout(log.try_clone().expect("log handle")).stderr(log);
    bar.set_phase(&format!(
        "{}{}",
        checker.name(),
        run.mutant
            .map(|m| format!(" vs {}", m.name()))
            .unwrap_or_default()
    ));
    let start = Instant::now();
    let ok = cmd.status().is_ok_and(|s| s.success());
    if checker == Checker::Proptest {
        write_proptest_record(run, ok, start.elapsed().as_secs_f64(), &log_path);
    }
    ok
}

/// proptest reports through its own runner: its record is made from nextest's verdict.
fn write_proptest_record(run: &Run<'_>, ok: bool, seconds: f64, log: &Path) {
    let cases = if run.profile == Profile::Full {
        2048
    } else {
        256
    };
    let hung = std::fs::read_to_string(log).is_ok_and(|l| l.contains("TIMEOUT"));
    let failure = (!ok).then(|| usbpm_model::check::Failure {
        property: hung.then(|| "P3 (hung until nextest's timeout)".to_string()),
        report: format!("the state machine found a divergence from the reference model; the shrunk sequence is in {}", log.display()),
        replay: "cargo test --release -p usbpm-model --test proptest_api (proptest replays its saved failure seeds first)".into(),
    });
    let record = Record {
        checker: "proptest".into(),
        scenario: PROPTEST_SCENARIO.into(),
        mutant: run.mutant.map(|m| m.name().to_string()),
        profile: run.profile,
        verdict: if ok { Verdict::Pass } else { Verdict::Fail },
        exhaustive: false,
        method: format!("state machine vs reference model, {cases} cases"),
        executions: cases,
        seconds,
        properties: vec!["P1".into(), "P4".into(), "P5".into()],
        failure,
        strategies: Vec::new(),
    };
    let dir = run.results.join("records");
    let _ = std::fs::create_dir_all(&dir);
    let json = serde_json::to_string_pretty(&record).expect("a record serialises");
    let _ = std::fs::write(
        dir.join(format!(
            "{}.json",
            Record::key("proptest", PROPTEST_SCENARIO)
        )),
        json,
    );
}

fn read_records(results: &Path) -> (Vec<Record>, Vec<String>) {
    let mut records = Vec::new();
    let mut have = BTreeSet::new();
    if let Ok(entries) = std::fs::read_dir(results.join("records")) {
        for e in entries.flatten() {
            if let Some(r) = std::fs::read_to_string(e.path())
                .ok()
                .and_then(|t| serde_json::from_str::<Record>(&t).ok())
            {
                have.insert(Record::key(&r.checker, &r.scenario));
                records.push(r);
            }
        }
    }
    let mut missing = Vec::new();
    if let Ok(entries) = std::fs::read_dir(results.join("progress")) {
        for e in entries.flatten() {
            let key = e
                .path()
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_default();
            if !have.contains(&key) {
                missing.push(key);
            }
        }
    }
    missing.sort();
    (records, missing)
}

/// Live progress: a bar on a terminal, a line per finished check (and a heartbeat) in CI.
struct Display {
    bar: ProgressBar,
    tty: bool,
}

impl Display {
    fn new(total: u64) -> Self {
        let tty = std::io::stderr().is_terminal();
        let bar = if tty {
            ProgressBar::new(total)
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} checks  {msg}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        Display { bar, tty }
    }

    fn set_phase(&self, phase: &str) {
        if self.tty {
            self.bar
                .set_message(format!("{phase}: building / starting"));
        } else {
            eprintln!("gate: running {phase} checks");
        }
    }

    fn line(&self, text: String) {
        if self.tty {
            self.bar.println(text);
        } else {
            eprintln!("{text}");
        }
    }
}

/// Watches the results directory while checks run: reports each finished check and the
/// executions of the running ones.
fn watch(
    results: PathBuf,
    display: Arc<Display>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut seen = BTreeSet::new();
        let mut last_beat = Instant::now();
        loop {
            let done = stop.load(Ordering::SeqCst);
            let (records, _) = read_records(&results);
            for r in &records {
                let key = format!(
                    "{}{}",
                    Record::key(&r.checker, &r.scenario),
                    r.mutant.clone().unwrap_or_default()
                );
                if seen.insert(key) {
                    display.bar.inc(1);
                    let verdict = if r.verdict == Verdict::Pass {
                        "pass"
                    } else {
                        "FAIL"
                    };
                    display.line(format!(
                        "  {:<8} {:<32} {:<40} {:>10} exec {:>8.2}s  {verdict}",
                        r.checker, r.scenario, r.method, r.executions, r.seconds
                    ));
                }
            }
            let running: Vec<String> = std::fs::read_dir(results.join("progress"))
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| {
                    let key = e.path().file_stem()?.to_string_lossy().to_string();
                    if records
                        .iter()
                        .any(|r| Record::key(&r.checker, &r.scenario) == key)
                    {
                        return None;
                    }
                    let text = std::fs::read_to_string(e.path()).ok()?;
                    let mut it = text.split_whitespace();
                    let (execs, secs) = (it.next()?, it.next()?);
                    Some(if execs == "0" {
                        format!("{} starting", key.replace("__", " "))
                    } else {
                        format!("{} {execs} exec {secs}s", key.replace("__", " "))
                    })
                })
                .collect();
            if !running.is_empty() {
                // Time left: the checks still to run at the average pace of those done
                // (exhaustive runs have no known total of their own).
                let (done, total) = (display.bar.position(), display.bar.length().unwrap_or(0));
                let left = if done > 0 && total > done {
                    let per = display.bar.elapsed().as_secs_f64() / done as f64;
                    format!("~{:.0}s left | ", per * (total - done) as f64)
                } else {
                    String::new()
                };
                if display.tty {
                    display
                        .bar
                        .set_message(format!("{left}{}", running.join(" | ")));
                } else if last_beat.elapsed() > Duration::from_secs(30) {
                    last_beat = Instant::now();
                    eprintln!("gate: still running: {}", running.join(" | "));
                }
            }
            if done {
                break;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    })
}

fn fresh_dir(dir: &Path) -> PathBuf {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("create a report directory");
    dir.canonicalize().expect("a directory just made")
}

fn total_checks(cli: &Cli, checkers: &[Checker]) -> u64 {
    checkers
        .iter()
        .map(|c| {
            c.scenarios()
                .iter()
                .filter(|s| cli.scenario.is_empty() || cli.scenario.iter().any(|x| x == *s))
                .count() as u64
        })
        .sum()
}

fn command_line() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    format!(
        "cargo run --release -p usbpm-model --bin gate --{}",
        if args.is_empty() {
            String::new()
        } else {
            format!(" {}", args.join(" "))
        }
    )
}

fn run_gate(cli: &Cli, root: &Path) -> Report {
    let report_dir = fresh_dir(&root.join(&cli.report_dir));
    let profile = if cli.mode == Mode::Full {
        Profile::Full
    } else {
        Profile::Quick
    };
    let run = Run {
        root,
        profile,
        mutant: None,
        seed: cli.seed,
        shard: cli.shard.as_deref(),
        results: report_dir.join("results"),
        logs: report_dir.join("logs"),
    };
    std::fs::create_dir_all(&run.logs).expect("create the log directory");
    let checkers = checkers(cli);
    let display = Arc::new(Display::new(total_checks(cli, &checkers)));
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch(run.results.clone(), display.clone(), stop.clone());
    let start = Instant::now();
    let mut nextest_ok = true;
    for c in &checkers {
        nextest_ok &= run_checker(&run, cli, *c, &display);
    }
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
        command: command_line(),
        profile: format!("{profile:?}").to_lowercase(),
        shard: cli.shard.clone(),
        seconds: start.elapsed().as_secs_f64(),
        records,
        missing,
        kills: None,
    }
}

fn run_mutants(cli: &Cli, root: &Path) -> Report {
    let report_dir = fresh_dir(&root.join(&cli.report_dir));
    let mutants: Vec<Mutant> = if cli.mutant.is_empty() {
        Mutant::ALL.to_vec()
    } else {
        cli.mutant
            .iter()
            .filter_map(|m| Mutant::from_name(m))
            .collect()
    };
    let checkers = checkers(cli);
    let display = Arc::new(Display::new(
        total_checks(cli, &checkers) * mutants.len() as u64,
    ));
    let start = Instant::now();
    let mut kills: BTreeMap<String, BTreeMap<String, Option<Kill>>> = BTreeMap::new();
    let mut all_records = Vec::new();
    for m in &mutants {
        let run = Run {
            root,
            profile: Profile::Quick,
            mutant: Some(*m),
            seed: cli.seed,
            shard: cli.shard.as_deref(),
            results: report_dir.join("results").join(m.name()),
            logs: report_dir.join("logs"),
        };
        std::fs::create_dir_all(&run.logs).expect("create the log directory");
        let stop = Arc::new(AtomicBool::new(false));
        let watcher = watch(run.results.clone(), display.clone(), stop.clone());
        for c in &checkers {
            run_checker(&run, cli, *c, &display);
        }
        stop.store(true, Ordering::SeqCst);
        let _ = watcher.join();
        let (records, missing) = read_records(&run.results);
        let by = kills.entry(m.name().to_string()).or_default();
        for c in &checkers {
            let mut fastest: Option<Kill> = records
                .iter()
                .filter(|r| r.checker == c.name() && r.verdict == Verdict::Fail)
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
            if fastest.is_none() {
                // A check that left no record hung until nextest terminated it, or crashed:
                // the unmutated check finishes in bounded time, so this is a detection.
                if let Some(key) = missing
                    .iter()
                    .find(|k| k.starts_with(&format!("{}__", c.name())))
                {
                    fastest = Some(Kill {
                        scenario: key.split("__").nth(1).unwrap_or("").to_string(),
                        property: Some("P3 (hung or crashed)".into()),
                        executions: 0,
                        seconds: 0.0,
                        replay: format!("see {}", run.logs.display()),
                        strategies: Vec::new(),
                    });
                }
            }
            by.insert(c.name().to_string(), fastest);
        }
        let killed: Vec<&str> = by
            .iter()
            .filter(|(_, k)| k.is_some())
            .map(|(c, _)| c.as_str())
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
        all_records.extend(records);
    }
    display.bar.finish_and_clear();
    Report {
        command: command_line(),
        profile: "quick".into(),
        shard: cli.shard.clone(),
        seconds: start.elapsed().as_secs_f64(),
        records: all_records,
        missing: Vec::new(),
        kills: Some(kills),
    }
}

fn finish(cli: &Cli, root: &Path, report: Report) -> ExitCode {
    let dir = root.join(&cli.report_dir);
    let md = report.markdown();
    std::fs::write(dir.join("report.md"), &md).expect("write report.md");
    std::fs::write(
        dir.join("report.json"),
        serde_json::to_string_pretty(&report).expect("serialise the report"),
    )
    .expect("write report.json");
    std::fs::write(dir.join("junit.xml"), report.junit()).expect("write junit.xml");
    println!("{md}");
    println!(
        "Reports: {}/report.md, report.json, junit.xml",
        dir.display()
    );
    if cli.update_docs {
        if cli.shard.is_some()
            || !cli.checker.is_empty()
            || !cli.scenario.is_empty()
            || cli.mode == Mode::Quick
        {
            eprintln!("gate: --update-docs embeds only a whole run: `gate full --update-docs` or `gate mutants --update-docs`, unsharded and unfiltered");
            return ExitCode::from(2);
        }
        let path = root.join(VERIFICATION_MD);
        let doc = std::fs::read_to_string(&path).unwrap_or_default();
        match usbpm_model::docs::embed(
            &doc,
            doc_section(cli.mode),
            &usbpm_model::docs::fingerprint(root),
            &md,
        ) {
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
    if report.passed() {
        println!("gate: PASS");
        ExitCode::SUCCESS
    } else {
        println!("gate: FAIL");
        ExitCode::from(1)
    }
}

/// The project's test suites, as the README and CI run them.
fn run_tests(root: &Path) -> ExitCode {
    let suites: [&[&str]; 3] = [
        &["test", "--workspace"],
        &[
            "test",
            "--release",
            "-p",
            "usbpm-model",
            "--features",
            "loom",
            "--test",
            "loom",
        ],
        &[
            "test",
            "--release",
            "-p",
            "usbpm-model",
            "--features",
            "shuttle",
            "--test",
            "shuttle",
        ],
    ];
    for args in suites {
        eprintln!("gate test: cargo {}", args.join(" "));
        let ok = Command::new("cargo")
            .args(args)
            .current_dir(root)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("gate test: FAILED: cargo {}", args.join(" "));
            return ExitCode::from(1);
        }
    }
    if check_docs(root) != ExitCode::SUCCESS {
        eprintln!("gate test: FAILED: the reports in {VERIFICATION_MD} are stale");
        return ExitCode::from(1);
    }
    eprintln!("gate test: all suites passed");
    ExitCode::SUCCESS
}

/// Runs the loom build of `replay` on every small scenario at bounds 2, 3 and unbounded,
/// each in its own process with a time cap, and tabulates executions and seconds.
fn loom_bounds(cli: &Cli, root: &Path) -> ExitCode {
    eprintln!("gate loom-bounds: building the loom replay binary");
    let built = Command::new("cargo")
        .current_dir(root)
        .args([
            "build",
            "--release",
            "-p",
            "usbpm-model",
            "--features",
            "loom",
            "--bin",
            "replay",
        ])
        .status()
        .is_ok_and(|s| s.success());
    if !built {
        eprintln!("gate loom-bounds: the build failed");
        return ExitCode::from(1);
    }
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let replay = target.join("release").join("replay");
    let mut md =
        format!("| scenario | threads | bound 2 | bound 3 | unbounded |\n|---|---:|---|---|---|\n");
    let mut ok = true;
    for s in ALL.iter().filter(|s| {
        s.size == Size::Small
            && (cli.scenario.is_empty() || cli.scenario.iter().any(|x| x == s.name))
    }) {
        let mut cells = Vec::new();
        for bound in ["2", "3", "unbounded"] {
            let start = Instant::now();
            let mut child = Command::new(&replay)
                .args(["--scenario", s.name, "--bound", bound])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("run the replay binary");
            let deadline = start + Duration::from_secs(cli.timeout_secs);
            let status = loop {
                if let Some(st) = child.try_wait().expect("wait for replay") {
                    break Some(st);
                }
                if Instant::now() >= deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
                std::thread::sleep(Duration::from_millis(50));
            };
            let secs = start.elapsed().as_secs_f64();
            let mut out = String::new();
            if let Some(mut o) = child.stdout.take() {
                use std::io::Read;
                let _ = o.read_to_string(&mut out);
            }
            let execs = out
                .split('(')
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .unwrap_or("?")
                .to_string();
            let cell = match status {
                None => format!("did not finish in {} s", cli.timeout_secs),
                Some(st) if st.success() => format!("{execs} executions, {secs:.2} s"),
                Some(_) => {
                    ok = false;
                    format!("**FAILED** after {secs:.2} s")
                }
            };
            eprintln!("  {:<32} bound {bound:<9} {cell}", s.name);
            cells.push(cell);
        }
        md.push_str(&format!(
            "| {} | {} | {} |\n",
            s.name,
            s.threads,
            cells.join(" | ")
        ));
    }
    let dir = root.join(&cli.report_dir);
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join("loom-bounds.md"), &md);
    println!("{md}");
    println!("Written to {}/loom-bounds.md", dir.display());
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

//! One check = one scenario under one checker, in the gate's terms: it picks the bound or
//! sample size for the profile, runs, and writes a [`Record`] the gate's reports are made
//! from. The test binaries (`model/tests/{loom,shuttle,stress}.rs`) are thin wrappers
//! over [`run_check`], so `cargo test`, cargo-nextest and the gate all run the same checks.
//!
//! Settings come from the environment, which the gate sets:
//! - `USBPM_PROFILE`: `quick` (default) or `full`;
//! - `USBPM_MUTANT`: a mutant name: run the check against that seeded bug;
//! - `USBPM_RESULTS_DIR`: where to write records, progress and shuttle schedules;
//! - `USBPM_SEED`: shuttle's seed (default 1).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use usbpm::checking::Mutant;

use crate::base::checker::Checker;
pub use crate::base::panics::panic_text;
use crate::checkers::run::{self, Outcome, Progress};
use crate::exec::scenarios::{find, Scenario, Size};
use crate::judge::monitor::Property;
pub use crate::judge::verdict::{failure, Failure, Profile, Verdict};

/// The mutant named by `USBPM_MUTANT`, if any.
pub fn mutant_from_env() -> Option<Mutant> {
    let name = std::env::var("USBPM_MUTANT")
        .ok()
        .filter(|s| !s.is_empty())?;
    Some(Mutant::from_name(&name).unwrap_or_else(|| {
        let names: Vec<_> = Mutant::ALL.iter().map(|m| m.name()).collect();
        panic!(
            "USBPM_MUTANT={name}: no such mutant; the catalog is: {}",
            names.join(", ")
        )
    }))
}

fn results_dir() -> Option<PathBuf> {
    std::env::var_os("USBPM_RESULTS_DIR").map(PathBuf::from)
}

/// Loom's preemption bound for a scenario under a profile (`None`: unbounded). Each is
/// chosen so the check finishes inside the profile's budget; docs/VERIFICATION.md gives
/// the measured executions and seconds for each.
pub fn loom_bound(s: &Scenario, profile: Profile) -> Option<usize> {
    // Measured on 2 cores with `gate loom-bounds` (docs/PERFORMANCE.md): every small
    // scenario explores unbounded in under 25 s except three dispatchers, which does not
    // finish in 5 minutes unbounded; bound 3 takes about 1 s, bound 4 about 22 s. Two
    // reporters on one hub (each sleeping while the other delivers) do not finish in 5
    // minutes unbounded either: bound 5 is 28,573 executions in 2 s, bound 7 636,596 in 45 s;
    // with every execution trace-validated, bound 7 took 249 s of the full gate and bound 6
    // (148,892 executions) takes 34 s, so the full profile explores bound 6.
    let (quick, full) = match s.name {
        "three-dispatchers-vs-deregister" => (Some(3), Some(4)),
        "flood-one-hub" => (Some(5), Some(6)),
        // main spins (yielding) until the callback hands its completion over: unbounded,
        // 925,459 executions in 111 s; bound 3 4,966 executions in under a second.
        "detach-own-callback" => (Some(3), Some(4)),
        // A register racing a change and an arrival, its callback registering another
        // client: unbounded did not finish in 120 s; bound 3 is 6,656 executions.
        "greeting-vs-arrival" => (Some(3), Some(4)),
        // Shutdown racing a change and a deregister: unbounded did not finish in 120 s;
        // bound 3 is 4,275 executions.
        "shutdown-vs-dispatch" => (Some(3), Some(4)),
        // Three hubs' dispatchers whose callbacks deregister each other in a ring (the
        // wait-for cycle of three): bound 1 is 158 executions, bound 2 5,765 in 0.8 s,
        // bound 3 145,807 in 17 s (the loom replay, 2 cores).
        "deregister-ring-of-three" => (Some(2), Some(3)),
        // A callback filling a queue of capacity 1 while main registers: bound 3 is 237
        // executions, unbounded 18,956 in 3.8 s (the loom replay, 2 cores); the quick
        // profile keeps bound 3 (its mutant is found at bound 0).
        "callback-fills-queue" => (Some(3), None),
        // A callback reporting back on every change (budget 2) while two threads report:
        // bound 3 is 674 executions, 5 9,779 in 1.9 s, 6 28,424 in 7.8 s, 7 71,686 in 18 s,
        // unbounded 2,423,251 in 623 s (the loom replay, 2 cores). Its mutant is found at 0.
        "callback-producer" => (Some(3), Some(6)),
        // A callback registering clients (budget 2) while two threads report: bound 3 is
        // 394 executions, 6 11,234 in 6.6 s, unbounded 205,544 in 98 s (the loom replay,
        // 2 cores, other builds running). Its mutant is found at 0.
        "callback-registers" => (Some(3), Some(6)),
        // Chains of registrations through greetings of two hubs (budget 2) on two threads:
        // bound 2 is 342 executions, 3 3,421 in 1.8 s, 4 26,951 in 15 s (the loom replay,
        // 2 cores). Its mutants are found at 0.
        "greeting-chain" => (Some(3), Some(4)),
        _ => (None, None),
    };
    match profile {
        Profile::Quick => quick,
        Profile::Full => full,
    }
}

/// Shuttle's schedules per strategy. Samples are evidence, not proof, and every mutant
/// shuttle kills falls in its first few hundred schedules (the kill matrix): the counts
/// are set by the profiles' budgets (quick under 2 minutes, full under 20 on 2 cores).
/// The full profile's small sample was cut from 200,000 to 35,000 and its large one from
/// 50,000 to 12,500, the quick profile's from 10,000 and 2,000 to 2,500 and 500, as new
/// scenarios made each execution dearer.
pub fn shuttle_iterations(s: &Scenario, profile: Profile) -> usize {
    match (profile, s.size) {
        (Profile::Quick, Size::Small) => 2_500,
        (Profile::Quick, Size::Large) => 500,
        (Profile::Full, Size::Small) => 35_000,
        (Profile::Full, Size::Large) => 12_500,
    }
}

/// Real-thread runs per scenario.
pub fn std_iterations(profile: Profile) -> u64 {
    match profile {
        Profile::Quick => 500,
        Profile::Full => 10_000,
    }
}

/// What the gate reads back for one check.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    pub checker: Checker,
    pub scenario: String,
    pub mutant: Option<String>,
    pub profile: Profile,
    pub verdict: Verdict,
    /// True for loom: every interleaving up to the bound was explored.
    pub exhaustive: bool,
    /// "preemption bound 3", "unbounded", "pct(depth 3) + random, seed 1", "real threads".
    pub method: String,
    pub executions: u64,
    pub seconds: f64,
    pub properties: Vec<String>,
    pub failure: Option<Failure>,
    /// shuttle: each strategy run to its first failure or to the end of its sample.
    #[serde(default)]
    pub strategies: Vec<StrategyRun>,
    /// spec: the model checker's figures (`crate::checkers::spec_checks`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<SpecFigures>,
    /// Generated programs: what each tier of this check enumerated and explored.
    #[serde(default)]
    pub programs: Vec<crate::checkers::generated::TierRun>,
    /// The mutants whose code this check's run reached (their hooks consulted, see
    /// `usbpm::checking::reach`); `None` for a check that does not run the library's
    /// code (spec, proptest's record). `gate mutants` runs a mutant only in the checks
    /// whose unmutated run reached it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reached: Option<Vec<String>>,
}

/// The mutants this process's run of the library reached so far, by name (a check's
/// [`Record::reached`]).
pub fn reached_mutants() -> Option<Vec<String>> {
    Some(
        usbpm::checking::reach::consulted()
            .into_iter()
            .map(|m| m.name().to_string())
            .collect(),
    )
}

/// What the model checker reports for one exhaustive check of the specification.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpecFigures {
    /// The closed world explored (`Size::label`).
    pub size: String,
    /// Distinct states explored (representatives under symmetry reduction).
    pub unique_states: u64,
    /// States generated, duplicates included.
    pub generated_states: u64,
    pub states_per_second: f64,
    pub depth: u64,
    /// Unique states of the same size without symmetry reduction, when known.
    pub unreduced_states: Option<u64>,
    /// Where `unreduced_states` comes from: measured in this run, a recorded figure, or
    /// why there is none.
    pub unreduced_source: String,
    /// Properties checked (`always`, `eventually` and `sometimes`).
    pub properties_checked: usize,
}

impl SpecFigures {
    /// The symmetry saving as the report shows it.
    pub fn saving(&self) -> String {
        match self.unreduced_states {
            Some(u) if self.unique_states > 0 => format!(
                "{:.1}x ({u} -> {}; {})",
                u as f64 / self.unique_states as f64,
                self.unique_states,
                self.unreduced_source
            ),
            _ => self.unreduced_source.clone(),
        }
    }
}

/// One shuttle strategy's part of a check.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StrategyRun {
    pub strategy: String,
    /// Schedules run (up to and including the first failing one).
    pub executions: u64,
    pub seconds: f64,
    pub failed: bool,
    /// Threads in the scenario (PCT's n).
    pub threads: usize,
    /// Most scheduling steps seen in one execution (PCT's k).
    pub max_steps: u64,
}

impl Record {
    /// The file name a record of this check is stored under.
    pub fn key(checker: Checker, scenario: &str) -> String {
        format!("{checker}__{scenario}")
    }
}

/// The record a running check writes if the process dies before it can finish: loom
/// aborts the process when it detects a deadlock (a second panic while unwinding), so the
/// record of that failure is written from the panic hook, at the first panic.
struct Pending {
    record: Record,
    replay: String,
    path: PathBuf,
    progress: Progress,
}

static PENDING: std::sync::Mutex<Option<Pending>> = std::sync::Mutex::new(None);

/// Where a check's provisional record goes: `pending/KEY.json` beside `records/KEY.json`.
pub fn pending_path(record: &Path) -> Option<PathBuf> {
    let results = record.parent()?.parent()?;
    Some(results.join("pending").join(record.file_name()?))
}

/// Called by the panic hook for every panic except a scenario's deliberate one.
fn on_checker_panic(info: &std::panic::PanicHookInfo<'_>) {
    let text = panic_text(info.payload());
    if !(text.contains("deadlock") || text.contains("Deadlock")) {
        return;
    }
    let Ok(mut pending) = PENDING.try_lock() else {
        return;
    };
    if let Some(p) = pending.take() {
        let mut record = p.record;
        let so_far = p.progress.outcome();
        record.executions = so_far.executions;
        record.seconds = so_far.seconds;
        record.verdict = Verdict::Fail;
        let mut f = failure(text, p.replay);
        if let Some(program) = crate::checkers::generated::current_program() {
            f.report = crate::checkers::generated::with_program(&program, &f.report);
        }
        record.failure = Some(f);
        if let Ok(json) = serde_json::to_string_pretty(&record) {
            let _ = std::fs::write(&p.path, json);
        }
    }
}

/// Runs `scenario` under `checker` (loom, shuttle or std: the one this binary is built
/// for) with the environment's settings, writes its record, prints a one-line summary,
/// and panics if it failed (so a failing check is a failing test).
pub fn run_check(checker: Checker, scenario: &str) {
    let s = find(scenario).unwrap_or_else(|| panic!("no scenario {scenario}"));
    let profile = Profile::from_env();
    let mutant = mutant_from_env();
    let dir = results_dir();
    let key = Record::key(checker, scenario);
    if let Some(d) = &dir {
        for sub in ["records", "progress", "schedules"] {
            std::fs::create_dir_all(d.join(sub)).expect("create the results directory");
        }
    }
    let progress = Progress::new(
        dir.as_ref()
            .map(|d| d.join("progress").join(format!("{key}.txt"))),
    );
    if let Some(d) = &dir {
        crate::base::panics::set_checker_hook(on_checker_panic);
        let (exhaustive, method) = describe(checker, s, profile);
        let record = Record {
            checker,
            scenario: scenario.into(),
            mutant: mutant.map(|m| m.name().to_string()),
            profile,
            verdict: Verdict::Fail,
            exhaustive,
            method,
            executions: 0,
            seconds: 0.0,
            properties: s.properties.iter().map(|p| p.id().to_string()).collect(),
            failure: None,
            strategies: Vec::new(),
            spec: None,
            programs: Vec::new(),
            reached: None,
        };
        let replay = run::rerun_command(checker, s, mutant, loom_bound(s, profile));
        let path = d.join("records").join(format!("{key}.json"));
        *PENDING.lock().unwrap_or_else(|p| p.into_inner()) = Some(Pending {
            record,
            replay,
            path,
            progress: progress.clone(),
        });
    }
    let mut strategies = Vec::new();
    let (exhaustive, method, replay, result) = run_with(
        checker,
        s,
        profile,
        mutant,
        &progress,
        dir.as_ref().map(|d| d.join("schedules").join(&key)),
        &mut strategies,
    );
    let (verdict, failure, outcome) = match result {
        Ok(o) => (Verdict::Pass, None, o),
        Err(text) => (
            Verdict::Fail,
            Some(failure(text, replay)),
            progress.outcome(),
        ),
    };
    let record = Record {
        checker,
        scenario: scenario.into(),
        mutant: mutant.map(|m| m.name().to_string()),
        profile,
        verdict,
        exhaustive,
        method,
        executions: outcome.executions,
        seconds: outcome.seconds,
        properties: s.properties.iter().map(|p| p.id().to_string()).collect(),
        failure,
        strategies,
        spec: None,
        programs: Vec::new(),
        reached: reached_mutants(),
    };
    PENDING.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(d) = &dir {
        let json = serde_json::to_string_pretty(&record).expect("a record serialises");
        std::fs::write(d.join("records").join(format!("{key}.json")), json)
            .expect("write the record");
    }
    println!(
        "{checker:<8} {scenario:<32} {:<28} {:>10} executions {:>8.2}s  {}",
        record.method,
        record.executions,
        record.seconds,
        if verdict == Verdict::Pass {
            "pass"
        } else {
            "FAIL"
        }
    );
    if let Some(f) = &record.failure {
        panic!("{}", f.report);
    }
}

type RunResult = (bool, String, String, Result<Outcome, String>);

/// Whether a check is exhaustive, and how it explores, in the report's words.
fn describe(checker: Checker, s: &Scenario, profile: Profile) -> (bool, String) {
    match checker {
        Checker::Loom => (
            true,
            loom_bound(s, profile)
                .map_or("unbounded".to_string(), |b| format!("preemption bound {b}")),
        ),
        Checker::Shuttle => {
            let n = shuttle_iterations(s, profile);
            (
                false,
                format!(
                    "pct(depth 3) + random, {n} each, seed {}",
                    seed_or_default()
                ),
            )
        }
        Checker::Std => (
            false,
            format!("real threads, {} runs", std_iterations(profile)),
        ),
        Checker::Proptest
        | Checker::GenLoom
        | Checker::GenShuttle
        | Checker::Spec
        | Checker::Trace => panic!("the {checker} checker runs no scenario"),
    }
}

fn seed_or_default() -> u64 {
    std::env::var("USBPM_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| panic_text(&*p))
}

// `strategies` is only pushed to in the shuttle build.
#[allow(unused_variables, clippy::ptr_arg)]
fn run_with(
    checker: Checker,
    s: &'static Scenario,
    profile: Profile,
    mutant: Option<Mutant>,
    progress: &Progress,
    schedule_dir: Option<PathBuf>,
    strategies: &mut Vec<StrategyRun>,
) -> RunResult {
    if checker != crate::base::rt::CHECKER {
        panic!(
            "checker {checker} is not built into this binary (features: {})",
            crate::base::rt::CHECKER
        );
    }
    #[cfg(feature = "loom")]
    let result = {
        let bound = loom_bound(s, profile);
        let (_, method) = describe(checker, s, profile);
        let replay = run::rerun_command(Checker::Loom, s, mutant, bound);
        (
            true,
            method,
            replay,
            catch(|| run::loom(s, mutant, bound, progress)),
        )
    };
    #[cfg(feature = "shuttle")]
    let result = {
        use crate::checkers::run::Strategy;
        let n = shuttle_iterations(s, profile);
        let seed = seed_or_default();
        let (_, method) = describe(checker, s, profile);
        // Each strategy runs to its own first failure, so the gate can compare them.
        let mut first_failure = None;
        for (strategy, tag) in [
            (Strategy::Pct { depth: 3 }, "pct"),
            (Strategy::Random, "random"),
        ] {
            let file = schedule_dir
                .as_ref()
                .map(|d| d.with_extension(format!("{tag}.schedule")));
            let before = progress.executions();
            let start = std::time::Instant::now();
            let steps = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
            let r = catch(|| run::shuttle(s, mutant, strategy, n, seed, file, progress, &steps));
            strategies.push(StrategyRun {
                strategy: strategy.label(),
                executions: progress.executions() - before,
                seconds: start.elapsed().as_secs_f64(),
                failed: r.is_err(),
                threads: s.threads,
                max_steps: steps.load(std::sync::atomic::Ordering::Relaxed),
            });
            if let Err(e) = r {
                first_failure.get_or_insert(e);
            }
        }
        let result = match first_failure {
            Some(e) => Err(e),
            None => Ok(progress.outcome()),
        };
        (false, method, String::new(), result)
    };
    #[cfg(not(any(feature = "loom", feature = "shuttle")))]
    let result = {
        let n = std_iterations(profile);
        let replay = run::rerun_command(Checker::Std, s, mutant, None);
        (
            false,
            describe(checker, s, profile).1,
            replay,
            catch(|| run::stress(s, mutant, n, progress)),
        )
    };
    result
}

/// Whether `checker` finds a violation in `scenario` when `mutant` is switched on, at the
/// quick profile's bound or sample size. Writes no record: the test binaries use it to keep
/// a few of the gate's kills as plain regression tests.
pub fn kills(checker: Checker, scenario: &str, mutant: Mutant) -> bool {
    let s = find(scenario).unwrap_or_else(|| panic!("no scenario {scenario}"));
    let progress = Progress::new(None);
    let (_, _, _, result) = run_with(
        checker,
        s,
        Profile::Quick,
        Some(mutant),
        &progress,
        None,
        &mut Vec::new(),
    );
    result.is_err()
}

/// Runs chunk `chunk` (of [`crate::checkers::generated::CHUNKS`]) of the generated programs under
/// `checker` (gen-loom: every program of the profile's tiers, exhaustively; gen-shuttle:
/// random larger programs), writes its record, and panics if it failed.
pub fn run_programs_check(checker: Checker, chunk: usize) {
    use crate::checkers::generated::{self, TierRun};
    let profile = Profile::from_env();
    let mutant = mutant_from_env();
    let dir = results_dir();
    let scenario = format!("chunk-{:02}", chunk + 1);
    let key = Record::key(checker, &scenario);
    if let Some(d) = &dir {
        for sub in ["records", "progress", "schedules"] {
            std::fs::create_dir_all(d.join(sub)).expect("create the results directory");
        }
    }
    let progress = Progress::new(
        dir.as_ref()
            .map(|d| d.join("progress").join(format!("{key}.txt"))),
    );
    let schedules = dir.as_ref().map(|d| d.join("schedules"));
    let program_file = generated::program_file(schedules.as_deref(), &key);
    let plan = generated::plan(checker, profile);
    let method = plan
        .iter()
        .map(|t| t.method())
        .collect::<Vec<_>>()
        .join("; ");
    let mut record = Record {
        checker,
        scenario: scenario.clone(),
        mutant: mutant.map(|m| m.name().to_string()),
        profile,
        verdict: Verdict::Fail,
        exhaustive: checker == Checker::GenLoom,
        method,
        executions: 0,
        seconds: 0.0,
        properties: Property::ALL.iter().map(|p| p.id().to_string()).collect(),
        failure: None,
        strategies: Vec::new(),
        programs: Vec::new(),
        reached: None,
        spec: None,
    };
    let path = dir
        .as_ref()
        .map(|d| d.join("records").join(format!("{key}.json")));
    if let Some(path) = &path {
        crate::base::panics::set_checker_hook(on_checker_panic);
        let replay = generated::replay_command(
            checker,
            &program_file,
            mutant,
            plan.first().and_then(|t| t.bound),
            None,
        );
        *PENDING.lock().unwrap_or_else(|p| p.into_inner()) = Some(Pending {
            record: record.clone(),
            replay,
            path: path.clone(),
            progress: progress.clone(),
        });
    }
    let mut runs: Vec<TierRun> = Vec::new();
    let mut failure_found = None;
    for tier in &plan {
        // A record written by the panic hook (a hang loom ends in an abort) names the
        // tier run that was going on, its bound included. So does the provisional record
        // written now beside the records (`pending/`; removed when the check ends): a
        // process that aborts without running the hook (a panic that cannot unwind) still
        // leaves its failing bound for the verdict (`gate::records::read_final_records`).
        if let Some(p) = PENDING.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            p.record.programs = runs.clone();
            p.record.programs.push(TierRun {
                size: tier.size.to_string(),
                method: tier.method(),
                bound: tier.bound,
                chunk,
                ..Default::default()
            });
            let mut provisional = p.record.clone();
            provisional.failure = Some(failure(
                "the check process ended during this tier run without writing its record \
                 (an abort: see its log)"
                    .into(),
                p.replay.clone(),
            ));
            if let (Ok(json), Some(pending)) = (
                serde_json::to_string_pretty(&provisional),
                pending_path(&p.path),
            ) {
                let _ = std::fs::create_dir_all(pending.parent().expect("a directory"));
                let _ = std::fs::write(pending, json);
            }
        }
        let (run, found) =
            generated::run_tier(tier, chunk, mutant, schedules.as_deref(), &key, &progress);
        runs.push(run);
        if let Some(f) = found {
            failure_found = Some(f);
            break;
        }
    }
    if let Some(pending) = path.as_deref().and_then(pending_path) {
        let _ = std::fs::remove_file(pending);
    }
    PENDING.lock().unwrap_or_else(|p| p.into_inner()).take();
    record.executions = runs.iter().map(|r| r.executions).sum();
    record.seconds = progress.outcome().seconds;
    record.programs = runs;
    record.reached = reached_mutants();
    if let Some((report, replay)) = failure_found {
        let property = report
            .find("PROPERTY VIOLATED: ")
            .and_then(|i| report[i + 19..].split_whitespace().next())
            .map(str::to_string);
        record.failure = Some(Failure {
            property,
            report,
            replay,
        });
    } else {
        record.verdict = Verdict::Pass;
    }
    if let Some(path) = &path {
        let json = serde_json::to_string_pretty(&record).expect("a record serialises");
        std::fs::write(path, json).expect("write the record");
    }
    println!(
        "{checker:<12} {scenario:<10} {:>6} programs {:>10} executions {:>8.2}s  {}",
        record.programs.iter().map(|r| r.programs_run).sum::<u64>(),
        record.executions,
        record.seconds,
        if record.verdict == Verdict::Pass {
            "pass"
        } else {
            "FAIL"
        }
    );
    for r in &record.programs {
        println!("    {}", r.summary());
    }
    if let Some(f) = &record.failure {
        panic!("{}", f.report);
    }
}

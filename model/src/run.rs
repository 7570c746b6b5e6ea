//! Running one scenario under one checker, counting what was explored.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use usbpm::checking::Mutant;

use crate::env::Env;
use crate::scenarios::Scenario;

/// What one check explored.
#[derive(Clone, Copy, Debug)]
pub struct Outcome {
    /// Executions (loom) or schedules (shuttle, std) run.
    pub executions: u64,
    pub seconds: f64,
}

/// Counts executions and, if asked, keeps a progress file ("executions seconds") fresh
/// for the gate's live display.
#[derive(Clone)]
pub struct Progress {
    count: Arc<AtomicU64>,
    start: Instant,
    last_write: Arc<AtomicU64>,
    file: Option<PathBuf>,
}

impl Progress {
    /// Starts counting; the progress file (if any) is written at once, so a check that
    /// dies before it reports is still known to have started.
    pub fn new(file: Option<PathBuf>) -> Self {
        if let Some(f) = &file {
            let _ = std::fs::write(f, "0 0.0");
        }
        Progress { count: Arc::default(), start: Instant::now(), last_write: Arc::default(), file }
    }

    /// One more execution began.
    pub fn tick(&self) {
        let n = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(file) = &self.file {
            let ms = self.start.elapsed().as_millis() as u64;
            if ms >= self.last_write.load(Ordering::Relaxed) + 500 {
                self.last_write.store(ms, Ordering::Relaxed);
                let _ = std::fs::write(file, format!("{n} {:.1}", ms as f64 / 1000.0));
            }
        }
    }

    pub fn executions(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    pub fn outcome(&self) -> Outcome {
        Outcome { executions: self.executions(), seconds: self.start.elapsed().as_secs_f64() }
    }
}

/// Runs one execution of `scenario` and judges it.
pub fn execute(scenario: &Scenario, mutant: Option<Mutant>, replay: &str) {
    let env = Env::new(mutant);
    (scenario.run)(&env);
    env.finish(replay);
}

/// The command that reruns a check (for loom and std; shuttle replays its schedule).
pub fn rerun_command(checker: &str, scenario: &Scenario, mutant: Option<Mutant>, bound: Option<usize>) -> String {
    let features = match checker {
        "loom" => " --features loom",
        "shuttle" => " --features shuttle",
        _ => "",
    };
    let bound = match (checker, bound) {
        ("loom", Some(b)) => format!(" --bound {b}"),
        ("loom", None) => " --bound unbounded".into(),
        _ => String::new(),
    };
    let mutant = mutant.map(|m| format!(" --mutant {}", m.name())).unwrap_or_default();
    format!("cargo run --release -p usbpm-model{features} --bin replay -- --scenario {}{bound}{mutant}", scenario.name)
}

/// Explores `scenario` exhaustively under loom, up to `bound` preemptions (`None`:
/// unbounded). Panics with the monitor's report at the first failing execution; loom
/// explores in a fixed depth-first order, so rerunning reaches the same failure first.
#[cfg(feature = "loom")]
pub fn loom(scenario: &'static Scenario, mutant: Option<Mutant>, bound: Option<usize>, progress: &Progress) -> Outcome {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = bound;
    let replay = rerun_command("loom", scenario, mutant, bound);
    let p = progress.clone();
    builder.check(move || {
        p.tick();
        execute(scenario, mutant, &replay);
    });
    progress.outcome()
}

/// Shuttle's schedulers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Probabilistic concurrency testing with this bug depth.
    Pct { depth: usize },
    /// Uniformly random scheduling.
    Random,
}

impl Strategy {
    pub fn label(self) -> String {
        match self {
            Strategy::Pct { depth } => format!("pct(depth {depth})"),
            Strategy::Random => "random".into(),
        }
    }
}

/// Samples `iterations` schedules of `scenario` under shuttle, from `seed`. Panics at the
/// first failing schedule with the monitor's report; shuttle writes that schedule to a
/// file in `schedule_dir` (or prints it), which the `replay` binary runs again.
#[cfg(feature = "shuttle")]
pub fn shuttle(
    scenario: &'static Scenario,
    mutant: Option<Mutant>,
    strategy: Strategy,
    iterations: usize,
    seed: u64,
    schedule_dir: Option<PathBuf>,
    progress: &Progress,
) -> Outcome {
    use shuttle::scheduler::{PctScheduler, RandomScheduler};
    use shuttle::{Config, FailurePersistence, Runner};
    let mut config = Config::new();
    config.failure_persistence = match schedule_dir {
        Some(dir) => FailurePersistence::File(Some(dir)),
        None => FailurePersistence::Print,
    };
    let mutant_arg = mutant.map(|m| format!(" --mutant {}", m.name())).unwrap_or_default();
    let replay = format!(
        "cargo run --release -p usbpm-model --features shuttle --bin replay -- --scenario {}{mutant_arg} --schedule-file <the schedule file shuttle names below>",
        scenario.name
    );
    let p = progress.clone();
    let body = move || {
        p.tick();
        execute(scenario, mutant, &replay);
    };
    match strategy {
        Strategy::Pct { depth } => Runner::new(PctScheduler::new_from_seed(seed, depth, iterations), config).run(body),
        Strategy::Random => Runner::new(RandomScheduler::new_from_seed(seed, iterations), config).run(body),
    };
    progress.outcome()
}

/// Runs the one shuttle schedule saved in `schedule_file`.
#[cfg(feature = "shuttle")]
pub fn shuttle_replay(scenario: &'static Scenario, mutant: Option<Mutant>, schedule_file: &std::path::Path) {
    let replay = format!("(this is the replay of {})", schedule_file.display());
    shuttle::replay_from_file(move || execute(scenario, mutant, &replay), schedule_file);
}

/// How long one std execution may take before it is declared hung.
pub const STD_HANG: Duration = Duration::from_secs(10);

/// Runs `scenario` `iterations` times on real threads (std), as a stress test. An
/// execution that does not finish within [`STD_HANG`] fails the run as a suspected
/// deadlock or lost wake-up (its threads are abandoned).
#[cfg(not(any(feature = "loom", feature = "shuttle")))]
pub fn stress(scenario: &'static Scenario, mutant: Option<Mutant>, iterations: u64, progress: &Progress) -> Outcome {
    let replay = format!(
        "{} (real threads: a rerun samples new schedules)",
        rerun_command("std", scenario, mutant, None)
    );
    for _ in 0..iterations {
        progress.tick();
        let (tx, rx) = std::sync::mpsc::channel();
        let this_replay = replay.clone();
        std::thread::spawn(move || {
            let r = std::panic::catch_unwind(|| execute(scenario, mutant, &this_replay));
            let _ = tx.send(r);
        });
        match rx.recv_timeout(STD_HANG) {
            Ok(Ok(())) => {}
            Ok(Err(payload)) => std::panic::resume_unwind(payload),
            Err(_) => panic!(
                "\nPROPERTY VIOLATED: P3 no deadlock, no lost wake-up\n  an execution of {} made no progress for {}s on real threads: suspected deadlock or lost wake-up\n\nTimeline so far:\n{}\nReplay: {replay}",
                scenario.name,
                STD_HANG.as_secs(),
                crate::monitor::last_timeline().unwrap_or_default()
            ),
        }
    }
    progress.outcome()
}

//! Running one scenario under one checker, counting what was explored.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use usbpm::checking::Mutant;

use crate::base::checker::Checker;
use crate::exec::env::Env;
use crate::exec::scenarios::Scenario;

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
        Progress {
            count: Arc::default(),
            start: Instant::now(),
            last_write: Arc::default(),
            file,
        }
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
        Outcome {
            executions: self.executions(),
            seconds: self.start.elapsed().as_secs_f64(),
        }
    }
}

/// Runs one execution of `scenario` and judges it.
///
/// The execution's recorded trace is then validated against the specification
/// (`crate::judge::trace`), under every checker: under loom that doubles a check's time
/// (measured on the quick profile: 27 s to 56 s for the 19 scenarios' 312,000
/// executions), which the budgets afford.
pub fn execute(scenario: &Scenario, mutant: Option<Mutant>, replay: &str) {
    let env = Env::new(mutant);
    (scenario.run)(&env);
    let monitor = env.monitor.clone();
    env.finish(replay);
    crate::judge::trace::check_execution(&monitor, replay);
}

/// The command that reruns a check (for loom and std; shuttle replays its schedule): the
/// replay binary of `checker`'s build.
pub fn rerun_command(
    checker: Checker,
    scenario: &Scenario,
    mutant: Option<Mutant>,
    bound: Option<usize>,
) -> String {
    let features = replay_features(checker);
    let bound = replay_bound(checker, bound);
    let mutant = mutant
        .map(|m| format!(" --mutant {}", m.name()))
        .unwrap_or_default();
    format!(
        "cargo run --release -p usbpm-model{features} --bin replay -- --scenario {}{bound}{mutant}",
        scenario.name
    )
}

/// The cargo features of a replay command for `checker`'s build (` --features loom`, ...).
pub fn replay_features(checker: Checker) -> String {
    checker
        .feature()
        .map(|f| format!(" --features {f}"))
        .unwrap_or_default()
}

/// A replay command's loom bound (` --bound 3`, ` --bound unbounded`); nothing for a
/// checker not built on loom.
pub fn replay_bound(checker: Checker, bound: Option<usize>) -> String {
    if checker.build() != Checker::Loom {
        return String::new();
    }
    match bound {
        Some(b) => format!(" --bound {b}"),
        None => " --bound unbounded".into(),
    }
}

/// Explores `scenario` exhaustively under loom, up to `bound` preemptions (`None`:
/// unbounded). Panics with the monitor's report at the first failing execution; loom
/// explores in a fixed depth-first order, so rerunning reaches the same failure first.
#[cfg(feature = "loom")]
pub fn loom(
    scenario: &'static Scenario,
    mutant: Option<Mutant>,
    bound: Option<usize>,
    progress: &Progress,
) -> Outcome {
    let replay = rerun_command(Checker::Loom, scenario, mutant, bound);
    let p = progress.clone();
    loom_body(bound, move || {
        p.tick();
        execute(scenario, mutant, &replay);
    });
    progress.outcome()
}

/// Explores every interleaving of `body` under loom, up to `bound` preemptions (all of
/// them with `None`). A violation panics out of here, as loom reports it.
#[cfg(feature = "loom")]
pub fn loom_body(bound: Option<usize>, body: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = bound;
    builder.check(body);
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

/// Wraps a shuttle scheduler and keeps the schedule of the execution in progress, so the
/// failing execution's schedule can be saved and replayed exactly. (Shuttle's own failure
/// persistence is confused by the panics a scenario causes on purpose and the library
/// contains: it may skip saving the failing schedule.)
#[cfg(feature = "shuttle")]
struct Recording<S> {
    inner: S,
    current: Arc<std::sync::Mutex<Recorded>>,
    max_steps: Arc<AtomicU64>,
}

/// One execution's scheduling decisions: the seed, then task ids (`Some`) and random
/// draws (`None`).
#[cfg(feature = "shuttle")]
#[derive(Clone, Default)]
struct Recorded {
    seed: u64,
    steps: Vec<Option<usize>>,
}

#[cfg(feature = "shuttle")]
impl<S: shuttle::scheduler::Scheduler> shuttle::scheduler::Scheduler for Recording<S> {
    fn new_execution(&mut self) -> Option<shuttle::scheduler::Schedule> {
        let schedule = self.inner.new_execution()?;
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        self.max_steps
            .fetch_max(current.steps.len() as u64, Ordering::Relaxed);
        *current = Recorded {
            seed: schedule.seed,
            steps: Vec::new(),
        };
        Some(schedule)
    }

    fn next_task(
        &mut self,
        runnable: &[&shuttle::scheduler::Task],
        current: Option<shuttle::scheduler::TaskId>,
        is_yielding: bool,
    ) -> Option<shuttle::scheduler::TaskId> {
        let next = self.inner.next_task(runnable, current, is_yielding)?;
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .steps
            .push(Some(usize::from(next)));
        Some(next)
    }

    fn next_u64(&mut self) -> u64 {
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .steps
            .push(None);
        self.inner.next_u64()
    }
}

/// A schedule as text: the seed, then one step per line (`t<task>` or `r`).
#[cfg(feature = "shuttle")]
fn encode(schedule: &Recorded) -> String {
    let mut out = format!("usbpm-shuttle-schedule seed {}\n", schedule.seed);
    for step in &schedule.steps {
        match step {
            Some(t) => out.push_str(&format!("t{t}\n")),
            None => out.push_str("r\n"),
        }
    }
    out
}

#[cfg(feature = "shuttle")]
fn decode(text: &str) -> Result<shuttle::scheduler::Schedule, String> {
    use shuttle::scheduler::{Schedule, TaskId};
    let mut lines = text.lines();
    let seed = lines
        .next()
        .and_then(|l| l.strip_prefix("usbpm-shuttle-schedule seed "))
        .and_then(|s| s.trim().parse().ok())
        .ok_or("not a usbpm schedule file (first line must be `usbpm-shuttle-schedule seed N`)")?;
    let mut schedule = Schedule::new(seed);
    for (i, l) in lines.enumerate() {
        match l.trim() {
            "r" => schedule.push_random(),
            t => {
                let id: usize = t
                    .strip_prefix('t')
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| format!("line {}: `{t}` is not a step", i + 2))?;
                schedule.push_task(TaskId::from(id));
            }
        }
    }
    Ok(schedule)
}

/// Samples `iterations` schedules of `scenario` under shuttle, from `seed`. At the first
/// failing schedule it saves that schedule to `schedule_file` (if given) and panics with
/// the monitor's report, whose replay command runs exactly that schedule again.
#[cfg(feature = "shuttle")]
#[allow(clippy::too_many_arguments)]
pub fn shuttle(
    scenario: &'static Scenario,
    mutant: Option<Mutant>,
    strategy: Strategy,
    iterations: usize,
    seed: u64,
    schedule_file: Option<PathBuf>,
    progress: &Progress,
    max_steps: &Arc<AtomicU64>,
) -> Outcome {
    let mutant_arg = mutant
        .map(|m| format!(" --mutant {}", m.name()))
        .unwrap_or_default();
    let replay = format!(
        "cargo run --release -p usbpm-model --features shuttle --bin replay -- --scenario {}{mutant_arg} --schedule-file {}",
        scenario.name,
        schedule_file.as_ref().map_or("<no file was kept: set USBPM_RESULTS_DIR>".into(), |f| f.display().to_string())
    );
    let r = replay.clone();
    let body = move || execute(scenario, mutant, &r);
    shuttle_body(
        body,
        replay,
        strategy,
        iterations,
        seed,
        schedule_file,
        progress,
        max_steps,
    )
}

/// Samples `iterations` schedules of `body` (one execution of anything) under shuttle;
/// at the first failing schedule saves it to `schedule_file` and panics with the report,
/// whose replay command is `replay`.
#[cfg(feature = "shuttle")]
#[allow(clippy::too_many_arguments)]
pub fn shuttle_body(
    body: impl Fn() + Send + Sync + 'static,
    replay: String,
    strategy: Strategy,
    iterations: usize,
    seed: u64,
    schedule_file: Option<PathBuf>,
    progress: &Progress,
    max_steps: &Arc<AtomicU64>,
) -> Outcome {
    use shuttle::scheduler::{PctScheduler, RandomScheduler, Scheduler};
    use shuttle::{Config, FailurePersistence, Runner};
    let mut config = Config::new();
    config.failure_persistence = FailurePersistence::None;
    let current = Arc::new(std::sync::Mutex::new(Recorded::default()));
    let replay_cmd = replay;
    let p = progress.clone();
    let body = move || {
        p.tick();
        body();
    };
    let inner: Box<dyn Scheduler + Send> = match strategy {
        Strategy::Pct { depth } => Box::new(PctScheduler::new_from_seed(seed, depth, iterations)),
        Strategy::Random => Box::new(RandomScheduler::new_from_seed(seed, iterations)),
    };
    let runner = Runner::new(
        Recording {
            inner,
            current: current.clone(),
            max_steps: max_steps.clone(),
        },
        config,
    );
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runner.run(body)));
    let schedule = current.lock().unwrap_or_else(|p| p.into_inner()).clone();
    max_steps.fetch_max(schedule.steps.len() as u64, Ordering::Relaxed);
    if let Err(payload) = result {
        if let Some(file) = &schedule_file {
            let _ = std::fs::write(file, encode(&schedule));
        }
        // A monitor report names its replay; a checker's own report (deadlock) does not.
        let text = crate::base::panics::panic_text(&*payload);
        if !text.contains("\nReplay: ") {
            std::panic::resume_unwind(Box::new(format!("{text}\nReplay: {replay_cmd}")));
        }
        std::panic::resume_unwind(payload);
    }
    progress.outcome()
}

/// Runs exactly the shuttle schedule saved in `schedule_file`.
#[cfg(feature = "shuttle")]
pub fn shuttle_replay(
    scenario: &'static Scenario,
    mutant: Option<Mutant>,
    schedule_file: &std::path::Path,
) -> Result<(), String> {
    shuttle_replay_body(schedule_file, move |replay| {
        execute(scenario, mutant, replay)
    })
}

/// Runs exactly the shuttle schedule saved in `schedule_file`, of `body` (which gets the
/// text that names this replay).
#[cfg(feature = "shuttle")]
pub fn shuttle_replay_body(
    schedule_file: &std::path::Path,
    body: impl Fn(&str) + Send + Sync + 'static,
) -> Result<(), String> {
    use shuttle::scheduler::ReplayScheduler;
    use shuttle::{Config, Runner};
    let text = std::fs::read_to_string(schedule_file)
        .map_err(|e| format!("cannot read {}: {e}", schedule_file.display()))?;
    let schedule = decode(&text)?;
    let replay = format!("(this is the replay of {})", schedule_file.display());
    Runner::new(ReplayScheduler::new_from_schedule(schedule), Config::new())
        .run(move || body(&replay));
    Ok(())
}

/// Runs `scenario` `iterations` times on real threads (std), as a stress test. An
/// execution in which no thread can make progress fails the run under P3, with the
/// reason (`judge::stall`: a thread asleep in the library that nothing woke, and no step
/// by anyone for a second; or no step at all for three) and the timeline so far; its
/// threads are abandoned.
#[cfg(not(any(feature = "loom", feature = "shuttle")))]
pub fn stress(
    scenario: &'static Scenario,
    mutant: Option<Mutant>,
    iterations: u64,
    progress: &Progress,
) -> Outcome {
    use crate::judge::monitor::{last_in_process, last_timeline};
    let replay = format!(
        "{} (real threads: a rerun samples new schedules)",
        rerun_command(Checker::Std, scenario, mutant, None)
    );
    for _ in 0..iterations {
        progress.tick();
        let before = last_in_process().map(|m| Arc::as_ptr(&m));
        let (tx, rx) = std::sync::mpsc::channel();
        let this_replay = replay.clone();
        std::thread::spawn(move || {
            let r = std::panic::catch_unwind(|| execute(scenario, mutant, &this_replay));
            let _ = tx.send(r);
        });
        let mut last = (usize::MAX, std::time::Instant::now());
        let hang = loop {
            match rx.recv_timeout(std::time::Duration::from_millis(50)) {
                Ok(Ok(())) => break None,
                Ok(Err(payload)) => std::panic::resume_unwind(payload),
                Err(_) => {}
            }
            // The execution's monitor, once it has made one.
            let Some(monitor) = last_in_process().filter(|m| Some(Arc::as_ptr(m)) != before) else {
                continue;
            };
            let now = monitor.progress();
            if now != last.0 {
                last = (now, std::time::Instant::now());
            } else if let Some(why) =
                crate::judge::stall::verdict(&monitor.steps(), last.1.elapsed())
            {
                break Some(why);
            }
        };
        if let Some(why) = hang {
            panic!(
                "\nPROPERTY VIOLATED: P3 no deadlock, no lost wake-up\n  an execution of {} on real threads: {why}\n\nTimeline so far:\n{}\nReplay: {replay}",
                scenario.name,
                last_timeline().unwrap_or_default()
            );
        }
    }
    progress.outcome()
}

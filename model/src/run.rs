//! Running one scenario under one checker, counting what was explored.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

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

/// Runs one execution of `scenario` and judges it.
pub fn execute(scenario: &Scenario, mutant: Option<Mutant>, replay: &str) {
    let env = Env::new(mutant);
    (scenario.run)(&env);
    env.finish(replay);
}

fn mutant_arg(mutant: Option<Mutant>) -> String {
    mutant.map(|m| format!(" --mutant {}", m.name())).unwrap_or_default()
}

/// Explores `scenario` exhaustively under loom, up to `bound` preemptions (`None`:
/// unbounded). Panics with the monitor's report at the first failing execution.
#[cfg(feature = "loom")]
pub fn loom(scenario: &'static Scenario, mutant: Option<Mutant>, bound: Option<usize>) -> Outcome {
    let count = Arc::new(AtomicU64::new(0));
    let counter = count.clone();
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = bound;
    // Loom explores in a fixed depth-first order, so rerunning the same check reaches the
    // same failing execution first.
    let replay = format!(
        "cargo run --release -p usbpm-model --features loom --bin gate -- run --checker loom --scenario {}{}{}",
        scenario.name,
        bound.map(|b| format!(" --bound {b}")).unwrap_or_else(|| " --bound unbounded".into()),
        mutant_arg(mutant)
    );
    let start = Instant::now();
    builder.check(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        execute(scenario, mutant, &replay);
    });
    Outcome { executions: count.load(Ordering::Relaxed), seconds: start.elapsed().as_secs_f64() }
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
/// first failing schedule with the monitor's report; shuttle then prints the schedule,
/// which [`shuttle_replay`] runs again.
#[cfg(feature = "shuttle")]
pub fn shuttle(scenario: &'static Scenario, mutant: Option<Mutant>, strategy: Strategy, iterations: usize, seed: u64) -> Outcome {
    use shuttle::scheduler::{PctScheduler, RandomScheduler};
    use shuttle::{Config, Runner};
    let replay = format!(
        "cargo run --release -p usbpm-model --features shuttle --bin gate -- replay --scenario {}{} --schedule <the schedule string shuttle printed above>",
        scenario.name,
        mutant_arg(mutant)
    );
    let start = Instant::now();
    let body = move || execute(scenario, mutant, &replay);
    let executions = match strategy {
        Strategy::Pct { depth } => {
            Runner::new(PctScheduler::new_from_seed(seed, depth, iterations), Config::new()).run(body)
        }
        Strategy::Random => Runner::new(RandomScheduler::new_from_seed(seed, iterations), Config::new()).run(body),
    };
    Outcome { executions: executions as u64, seconds: start.elapsed().as_secs_f64() }
}

/// Runs the one shuttle schedule `schedule` (as printed by a failing run).
#[cfg(feature = "shuttle")]
pub fn shuttle_replay(scenario: &'static Scenario, mutant: Option<Mutant>, schedule: &str) {
    let replay = "this is the replay".to_string();
    shuttle::replay(move || execute(scenario, mutant, &replay), schedule);
}

/// Runs `scenario` `iterations` times on real threads (std), as a stress test.
#[cfg(not(any(feature = "loom", feature = "shuttle")))]
pub fn stress(scenario: &'static Scenario, mutant: Option<Mutant>, iterations: u64) -> Outcome {
    let replay = format!(
        "cargo run --release -p usbpm-model --bin gate -- run --checker std --scenario {}{} (real threads: a rerun may take another schedule)",
        scenario.name,
        mutant_arg(mutant)
    );
    let start = Instant::now();
    for _ in 0..iterations {
        execute(scenario, mutant, &replay);
    }
    let _ = Arc::new(AtomicU64::new(0));
    Outcome { executions: iterations, seconds: start.elapsed().as_secs_f64() }
}

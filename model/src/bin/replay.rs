//! Replays one check exactly and prints its report: the command every failure names.
//!
//! - loom (`--features loom`): reruns the exhaustive exploration at `--bound`; loom's order
//!   is deterministic, so the first failing execution is the same one again.
//! - shuttle (`--features shuttle`): runs the one schedule in `--schedule-file`.
//! - std (no feature): reruns the scenario on real threads (samples again).
//!
//! With `--program FILE` instead of `--scenario`, replays a generated program (the file a
//! failing generated-program check saved): loom explores it at `--bound`, shuttle runs
//! its one saved schedule, std runs it `--runs` times on real threads.
//!
//! Exits 1 when the failure reproduces, 0 when the check passes.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use usbpm::checking::Mutant;
use usbpm_model::exec::scenarios::{find, ALL};

#[derive(Parser)]
#[command(about = "Replay one usbpm check and print its timeline")]
struct Args {
    /// The scenario (see `gate list`).
    #[arg(long, required_unless_present = "program")]
    scenario: Option<String>,
    /// A generated program saved by a failing check (JSON), instead of a scenario.
    #[arg(long, conflicts_with = "scenario")]
    program: Option<PathBuf>,
    /// A mutant to switch on (see `gate list`).
    #[arg(long)]
    mutant: Option<String>,
    /// loom: preemption bound, or `unbounded`.
    #[arg(long)]
    bound: Option<String>,
    /// shuttle: the schedule file a failing run wrote.
    #[arg(long)]
    schedule_file: Option<PathBuf>,
    /// std: how many runs.
    #[arg(long, default_value_t = 200)]
    runs: u64,
}

/// What the checker itself said when it stopped the run, after the timeline (its
/// backtrace with `USBPM_BACKTRACE=1`).
fn checker_detail() -> String {
    let panics = usbpm_model::base::panics::quiet_panics();
    if panics.is_empty() {
        return String::new();
    }
    format!(
        "\nThe checker's own words (USBPM_BACKTRACE=1 prints its backtrace):\n{}\n",
        panics
            .iter()
            .map(|p| format!("  {p}"))
            .collect::<Vec<_>>()
            .join("\n")
    )
}

/// The prefix of the line that names the mutants whose code the run reached.
const REACHED: &str = "reached mutants:";

/// `reached mutants: a b c`: what `gate loom-margins` reads to skip a mutant the
/// scenario never reaches (it cannot find it at any bound up to this one).
fn reached_line() -> String {
    let names: Vec<&str> = usbpm::checking::reach::consulted()
        .into_iter()
        .map(usbpm::checking::Mutant::name)
        .collect();
    format!("{REACHED} {}", names.join(" "))
}

fn main() -> ExitCode {
    let args = Args::parse();
    usbpm_model::base::panics::quiet_checker_panics();
    if let Some(file) = &args.program {
        return replay_program(file, &args);
    }
    let name = args.scenario.clone().unwrap_or_default();
    let Some(scenario) = find(&name) else {
        let names: Vec<_> = ALL.iter().map(|s| s.name).collect();
        eprintln!(
            "no scenario `{}`; the scenarios are: {}",
            name,
            names.join(", ")
        );
        return ExitCode::from(2);
    };
    let Ok(mutant) = mutant(&args) else {
        return ExitCode::from(2);
    };
    let progress = usbpm_model::checkers::run::Progress::new(None);
    let run = || replay(scenario, mutant, &args, &progress);
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
        Ok(()) => {
            println!(
                "replay of {} passed: no violation ({} executions)",
                scenario.name,
                progress.executions()
            );
            println!("{}", reached_line());
            ExitCode::SUCCESS
        }
        Err(payload) => {
            let text = usbpm_model::checkers::check::panic_text(&*payload);
            let report = usbpm_model::checkers::check::failure(text, "this command".into()).report;
            eprintln!(
                "\n{report}\nreplay reproduced the failure of {} ({} executions)\n{}",
                scenario.name,
                progress.executions(),
                checker_detail()
            );
            ExitCode::from(1)
        }
    }
}

#[allow(unused_variables)]
fn replay(
    scenario: &'static usbpm_model::exec::scenarios::Scenario,
    mutant: Option<Mutant>,
    args: &Args,
    progress: &usbpm_model::checkers::run::Progress,
) {
    #[cfg(feature = "loom")]
    {
        let bound = match args.bound.as_deref() {
            None | Some("unbounded") => None,
            Some(b) => Some(b.parse().expect("--bound: a number or `unbounded`")),
        };
        usbpm_model::checkers::run::loom(scenario, mutant, bound, progress);
    }
    #[cfg(feature = "shuttle")]
    {
        let Some(file) = args.schedule_file.as_ref() else {
            eprintln!("a shuttle replay needs --schedule-file (the file a failing check named)");
            std::process::exit(2);
        };
        if let Err(e) = usbpm_model::checkers::run::shuttle_replay(scenario, mutant, file) {
            eprintln!("{e}");
            std::process::exit(2);
        }
    }
    #[cfg(not(any(feature = "loom", feature = "shuttle")))]
    {
        usbpm_model::checkers::run::stress(scenario, mutant, args.runs, progress);
    }
}

fn mutant(args: &Args) -> Result<Option<Mutant>, ()> {
    match args.mutant.as_deref().map(|m| (m, Mutant::from_name(m))) {
        None => Ok(None),
        Some((_, Some(m))) => Ok(Some(m)),
        Some((name, None)) => {
            let names: Vec<_> = Mutant::ALL.iter().map(|m| m.name()).collect();
            eprintln!("no mutant `{name}`; the catalog is: {}", names.join(", "));
            Err(())
        }
    }
}

fn replay_program(file: &std::path::Path, args: &Args) -> ExitCode {
    let program = match usbpm_model::lang::program::Program::load(file) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let Ok(mutant) = mutant(args) else {
        return ExitCode::from(2);
    };
    println!("Program ({}):\n{program}\n", file.display());
    let this = "this command".to_string();
    #[allow(unused_variables)]
    let run = || -> Result<(), String> {
        #[cfg(feature = "loom")]
        {
            let bound = match args.bound.as_deref() {
                None | Some("unbounded") => None,
                Some(b) => Some(
                    b.parse()
                        .map_err(|_| "--bound: a number or `unbounded`".to_string())?,
                ),
            };
            usbpm_model::checkers::generated::loom_program(&program, mutant, bound, &this)?;
        }
        #[cfg(feature = "shuttle")]
        {
            let Some(schedule) = args.schedule_file.as_ref() else {
                return Err(
                    "a shuttle replay needs --schedule-file (the file a failing check named)"
                        .into(),
                );
            };
            let p = program.clone();
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                usbpm_model::checkers::run::shuttle_replay_body(schedule, move |replay| {
                    usbpm_model::exec::interpreter::execute(&p, mutant, replay)
                })
            }));
            match r {
                Ok(result) => result?,
                Err(payload) => {
                    let text = usbpm_model::checkers::check::panic_text(&*payload);
                    return Err(usbpm_model::checkers::check::failure(text, this.clone()).report);
                }
            }
        }
        #[cfg(not(any(feature = "loom", feature = "shuttle")))]
        for _ in 0..args.runs {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                usbpm_model::exec::interpreter::execute(&program, mutant, &this)
            }));
            if let Err(payload) = r {
                return Err(usbpm_model::checkers::check::panic_text(&*payload));
            }
        }
        Ok(())
    };
    match run() {
        Ok(()) => {
            println!("replay of {} passed: no violation", file.display());
            ExitCode::SUCCESS
        }
        Err(report) => {
            eprintln!(
                "\n{report}\nreplay reproduced the failure of {}\n{}",
                file.display(),
                checker_detail()
            );
            ExitCode::from(1)
        }
    }
}

//! Replays one check exactly and prints its report: the command every failure names.
//!
//! - loom (`--features loom`): reruns the exhaustive exploration at `--bound`; loom's order
//!   is deterministic, so the first failing execution is the same one again.
//! - shuttle (`--features shuttle`): runs the one schedule in `--schedule-file`.
//! - std (no feature): reruns the scenario on real threads (samples again).
//!
//! Exits 1 when the failure reproduces, 0 when the check passes.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use usbpm::checking::Mutant;
use usbpm_model::scenarios::{find, ALL};

#[derive(Parser)]
#[command(about = "Replay one usbpm check and print its timeline")]
struct Args {
    /// The scenario (see `gate list`).
    #[arg(long)]
    scenario: String,
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

fn main() -> ExitCode {
    let args = Args::parse();
    let Some(scenario) = find(&args.scenario) else {
        let names: Vec<_> = ALL.iter().map(|s| s.name).collect();
        eprintln!(
            "no scenario `{}`; the scenarios are: {}",
            args.scenario,
            names.join(", ")
        );
        return ExitCode::from(2);
    };
    let mutant = match args.mutant.as_deref().map(|m| (m, Mutant::from_name(m))) {
        None => None,
        Some((_, Some(m))) => Some(m),
        Some((name, None)) => {
            let names: Vec<_> = Mutant::ALL.iter().map(|m| m.name()).collect();
            eprintln!("no mutant `{name}`; the catalog is: {}", names.join(", "));
            return ExitCode::from(2);
        }
    };
    let progress = usbpm_model::run::Progress::new(None);
    let run = || replay(scenario, mutant, &args, &progress);
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
        Ok(()) => {
            println!(
                "replay of {} passed: no violation ({} executions)",
                scenario.name,
                progress.executions()
            );
            ExitCode::SUCCESS
        }
        Err(payload) => {
            let text = usbpm_model::check::panic_text(&*payload);
            let report = usbpm_model::check::failure(text, "this command".into()).report;
            eprintln!(
                "\n{report}\nreplay reproduced the failure of {} ({} executions)",
                scenario.name,
                progress.executions()
            );
            ExitCode::from(1)
        }
    }
}

#[allow(unused_variables)]
fn replay(
    scenario: &'static usbpm_model::scenarios::Scenario,
    mutant: Option<Mutant>,
    args: &Args,
    progress: &usbpm_model::run::Progress,
) {
    #[cfg(feature = "loom")]
    {
        let bound = match args.bound.as_deref() {
            None | Some("unbounded") => None,
            Some(b) => Some(b.parse().expect("--bound: a number or `unbounded`")),
        };
        usbpm_model::run::loom(scenario, mutant, bound, progress);
    }
    #[cfg(feature = "shuttle")]
    {
        let Some(file) = args.schedule_file.as_ref() else {
            eprintln!("a shuttle replay needs --schedule-file (the file a failing check named)");
            std::process::exit(2);
        };
        if let Err(e) = usbpm_model::run::shuttle_replay(scenario, mutant, file) {
            eprintln!("{e}");
            std::process::exit(2);
        }
    }
    #[cfg(not(any(feature = "loom", feature = "shuttle")))]
    {
        usbpm_model::run::stress(scenario, mutant, args.runs, progress);
    }
}

//! `gate regen`: every section docs/VERIFICATION.md embeds, regenerated in one command:
//! the full gate's report, the kill matrix and the loom margins, each as its own mode
//! with `--update-docs` would, in turn, each run's reports in a directory named after it under
//! the report dir. Stops at the first step that fails (its section is then left as it
//! was) and prints each step's minutes.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use super::checks::RunKind;
use super::Options;

/// A generated section of docs/VERIFICATION.md, and the mode that regenerates it alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    /// The full gate's report.
    Report,
    /// The kill matrix.
    Mutants,
    /// The loom margins.
    LoomMargins,
}

impl Section {
    /// In the order `gate regen` runs them.
    pub const ALL: [Section; 3] = [Section::Report, Section::Mutants, Section::LoomMargins];

    /// The section's name in its markers.
    pub fn name(self) -> &'static str {
        match self {
            Section::Report => "report",
            Section::Mutants => "mutants",
            Section::LoomMargins => super::loom_margins::SECTION,
        }
    }

    /// The command that regenerates it alone.
    pub fn command(self) -> &'static str {
        match self {
            Section::Report => "gate full --update-docs",
            Section::Mutants => "gate mutants --update-docs",
            Section::LoomMargins => super::loom_margins::REGENERATE,
        }
    }

    /// Its run, with its reports in `opts.report_dir`.
    fn regenerate(self, opts: &Options, root: &Path) -> ExitCode {
        match self {
            Section::Report => super::checks::run(RunKind::Full, opts, root, true),
            Section::Mutants => super::checks::run(RunKind::Mutants, opts, root, true),
            Section::LoomMargins => super::loom_margins::run(opts, root, true),
        }
    }
}

/// Runs the three steps in turn.
pub fn run(opts: &Options, root: &Path) -> ExitCode {
    if !opts.is_docs_run() {
        eprintln!(
            "gate regen: the docs embed only whole runs; it takes no --checker, --scenario, --mutant or --shard (run a mode alone for a part)"
        );
        return ExitCode::from(2);
    }
    let start = Instant::now();
    let mut done = Vec::new();
    for section in Section::ALL {
        let (name, command) = (section.name(), section.command());
        let mut step_opts = opts.clone();
        step_opts.report_dir = opts.report_dir.join(name);
        println!(
            "gate regen: the {name} section (`{command}`), reports in {}",
            step_opts.report_dir.display()
        );
        let step = Instant::now();
        let code = section.regenerate(&step_opts, root);
        let minutes = step.elapsed().as_secs_f64() / 60.0;
        done.push(format!("{name}: {minutes:.1} min"));
        if code != ExitCode::SUCCESS {
            eprintln!(
                "gate regen: the {name} step failed after {minutes:.1} min; its section is unchanged (rerun `{command}` once it passes)"
            );
            return code;
        }
    }
    println!(
        "gate regen: every section regenerated in {:.1} min ({})",
        start.elapsed().as_secs_f64() / 60.0,
        done.join(", ")
    );
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_section_is_regenerated_by_its_own_update_docs_mode() {
        let names: Vec<&str> = Section::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(
            names,
            ["report", "mutants", super::super::loom_margins::SECTION]
        );
        for section in Section::ALL {
            assert!(section.command().ends_with("--update-docs"), "{section:?}");
        }
    }
}

//! The verification gate: one command that runs every check (loom, shuttle, std,
//! proptest) on the shipped library, and stateright on its specification, shows progress, writes Markdown/JSON/JUnit reports,
//! and exits 0 only when everything passed. `gate mutants` proves the checks have teeth.
//!
//! The engine is cargo-nextest: each check is one test, run in its own process (so a
//! crash or hang costs one check), sharded with `--partition`, terminated on timeout.
//! This binary only parses the command line; the work is in `usbpm_model::gate`, one
//! function per mode.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use usbpm_model::base::checker::Checker;
use usbpm_model::gate::checks::RunKind;
use usbpm_model::gate::{self, Options};

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
    /// For every scenario loom explores at a preemption bound, the smallest bound at which
    /// each mutant fails, and the bound's margin over it (--update-docs embeds the table).
    LoomMargins,
    /// Regenerate every section docs/VERIFICATION.md embeds: `full`, `mutants` and
    /// `loom-margins`, each with --update-docs, in turn (reports under --report-dir).
    Regen,
    /// Fail if a report embedded in docs/VERIFICATION.md is stale (the checked sources
    /// changed since it was generated with --update-docs).
    CheckDocs,
    /// Merge the reports of a sharded run (the DIRs of each shard's report.json) into
    /// one report in --report-dir.
    Merge,
    /// Only the specification's checks (stateright), at the quick size (--full: the full
    /// size); --explore serves stateright's Explorer on --addr; --screenshot drives the
    /// Explorer in headless Chromium and saves spec-explorer.png in --report-dir.
    Spec,
    /// Render every Mermaid diagram of docs/ and ARCHITECTURE.md, and those of a failing
    /// run's report, with mermaid-cli; fail on a parse error. Output in target/docs-render.
    DocsRender,
    /// Generated programs only: every program of one tier (--size, e.g. 2x1-c2-h1; suffixes
    /// -H2 exactly two hubs, -d with contexts whose Drop acts, -D only those, -s with
    /// the shutdown and the hardware's power answers, -S only those) under
    /// loom at --bound, or the quick profile's tiers; with --checker gen-shuttle, random
    /// programs within --size. Works with --shard.
    Programs,
}

#[derive(Parser)]
#[command(
    about = "usbpm verification gate: loom + shuttle + std + proptest on the shipped library, stateright on its specification",
    after_help = "Examples:\n  gate                         quick gate, report in target/gate\n  gate full --shard 1/2        half of the full gate (CI matrix job 1 of 2)\n  gate --checker loom --scenario mutual-deregister\n  gate mutants                 kill matrix of every mutant\n  gate test                    the project's test suites\n  gate merge shards/*          one report from the shards' reports\n  gate spec [--full]           the specification's checks alone (stateright)\n  gate spec --explore          stateright's Explorer on http://127.0.0.1:3000/\n  gate programs --size 2x1-c2-h1 --bound unbounded   every program of one tier under loom"
)]
struct Cli {
    /// What to run.
    #[arg(value_enum, default_value_t = Mode::Quick)]
    mode: Mode,
    /// `gate merge`: the shards' report directories.
    #[arg(value_name = "DIR")]
    dirs: Vec<PathBuf>,
    /// Only these checkers (repeatable).
    #[arg(long, value_enum)]
    checker: Vec<Checker>,
    /// Only these scenarios (repeatable; see `gate list`).
    #[arg(long)]
    scenario: Vec<String>,
    /// A mutant to switch on (see `gate list`): `gate`, `gate full` and `gate programs`
    /// apply one to every check they run (the report then shows how each check fails);
    /// `gate mutants` runs the kill matrix of these only (repeatable).
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
    /// Also write this run's report into docs/VERIFICATION.md (full, mutants and loom-margins runs).
    #[arg(long)]
    update_docs: bool,
    /// `gate loom-bounds`: the longest one measurement may run.
    #[arg(long, default_value_t = 120)]
    timeout_secs: u64,
    /// `gate spec`: the full size instead of the quick one.
    #[arg(long)]
    full: bool,
    /// `gate spec`: serve stateright's Explorer on --addr instead of checking.
    #[arg(long)]
    explore: bool,
    /// `gate spec --explore`: where to serve.
    #[arg(long, default_value = gate::spec::DEFAULT_ADDR)]
    addr: String,
    /// `gate spec`: check the Explorer in headless Chromium and save its screenshot.
    #[arg(long)]
    screenshot: bool,
    /// `gate programs`: the tier, TxK-cC-hH (threads x ops per thread, clients, hubs).
    #[arg(long, value_name = "TxK-cC-hH")]
    size: Option<String>,
    /// `gate programs`: loom's preemption bound for the tier, `unbounded`, or `0..=N`
    /// (bounds 0 to N in turn, each chunk stopping at its first failing bound).
    #[arg(long)]
    bound: Option<String>,
}

impl Cli {
    fn options(&self) -> Options {
        Options {
            checkers: self.checker.clone(),
            scenarios: self.scenario.clone(),
            mutants: self.mutant.clone(),
            shard: self.shard.clone(),
            report_dir: self.report_dir.clone(),
            seed: self.seed,
            timeout_secs: self.timeout_secs,
            program_size: self.size.clone(),
            program_bound: self.bound.clone(),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let root = gate::workspace_root();
    let opts = cli.options();
    if cli.mode != Mode::Merge && !cli.dirs.is_empty() {
        eprintln!("gate: only `gate merge` takes directories");
        return ExitCode::from(2);
    }
    let mode = cli
        .mode
        .to_possible_value()
        .map_or_else(String::new, |v| v.get_name().to_string());
    let mutant_ok = match cli.mode {
        Mode::Mutants | Mode::LoomMargins | Mode::Regen => Ok(()),
        Mode::Quick | Mode::Full | Mode::Programs => opts.validate_mutant_for(&mode, true),
        Mode::Test
        | Mode::List
        | Mode::LoomBounds
        | Mode::CheckDocs
        | Mode::Merge
        | Mode::Spec
        | Mode::DocsRender => opts.validate_mutant_for(&mode, false),
    };
    if let Err(msg) = mutant_ok {
        eprintln!("gate: {msg}");
        return ExitCode::from(2);
    }
    match cli.mode {
        Mode::Quick => gate::checks::run(RunKind::Quick, &opts, &root, cli.update_docs),
        Mode::Full => gate::checks::run(RunKind::Full, &opts, &root, cli.update_docs),
        Mode::Mutants => gate::checks::run(RunKind::Mutants, &opts, &root, cli.update_docs),
        Mode::Test => gate::suites::run_tests(&root),
        Mode::List => {
            print!("{}", gate::list::list());
            ExitCode::SUCCESS
        }
        Mode::LoomBounds => gate::loom_bounds::loom_bounds(&opts, &root),
        Mode::LoomMargins => gate::loom_margins::run(&opts, &root, cli.update_docs),
        Mode::Regen => gate::regen::run(&opts, &root),
        Mode::CheckDocs => gate::suites::check_docs(&root),
        Mode::Merge => gate::merge::run(&cli.dirs, &opts, &root),
        Mode::DocsRender => gate::docs_render::run(&opts, &root),
        Mode::Spec if cli.explore => gate::spec::explore(&cli.addr),
        Mode::Spec if cli.screenshot => gate::spec::screenshot(&opts, &root),
        Mode::Spec => gate::spec::run(&opts, &root, cli.full),
        Mode::Programs => {
            let mut opts = opts;
            if opts.checkers.is_empty() {
                opts.checkers = vec![Checker::GenLoom];
            }
            if let Some(c) = opts
                .checkers
                .iter()
                .find(|c| !matches!(c, Checker::GenLoom | Checker::GenShuttle))
            {
                eprintln!("gate programs: --checker {} is not a generated-program checker (gen-loom, gen-shuttle)", c.name());
                return ExitCode::from(2);
            }
            gate::checks::run(RunKind::Quick, &opts, &root, false)
        }
    }
}

//! The gate's work, behind the thin command line of `src/bin/gate.rs`: which checks a
//! run selects, how they are run through cargo-nextest, how progress is shown, and how
//! the records they leave become reports. One module per mode of the command:
//!
//! - [`checks`]: `gate`, `gate full` and `gate mutants` (run the checks, write reports);
//! - [`list`]: `gate list`;
//! - [`suites`]: `gate test` and `gate check-docs`;
//! - [`loom_bounds`]: `gate loom-bounds`;
//! - [`loom_margins`]: `gate loom-margins`;
//! - [`merge`]: `gate merge DIR...` (the shards of a run into one report);
//! - [`docs_render`]: `gate docs-render` (every Mermaid diagram renders);
//! - [`spec`]: `gate spec` (the specification's checks alone, its Explorer, and the
//!   Explorer's screenshot check).
//!
//! Their parts: [`nextest`] (one checker's checks as one nextest run), [`records`] (what
//! the checks leave behind), [`display`] (live progress).

pub mod checks;
pub mod display;
pub mod docs_render;
pub mod lanes;
pub mod list;
pub mod loom_bounds;
pub mod loom_margins;
pub mod merge;
pub mod nextest;
pub mod records;
pub mod regen;
pub mod spec;
pub mod suites;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use usbpm::checking::Mutant;

use crate::base::checker::Checker;
pub use crate::checkers::spec_checks::{SPEC_SCENARIO, TRACE_SCENARIO};
use crate::exec::scenarios::{Size, ALL};

/// The generated-program checkers' "scenarios": the chunks each tier is split into (one
/// test each, `model/tests/programs.rs`), so `--shard I/N` splits a tier across runners.
pub const PROGRAM_CHUNKS: [&str; crate::checkers::generated::CHUNKS] = [
    "chunk-01", "chunk-02", "chunk-03", "chunk-04", "chunk-05", "chunk-06", "chunk-07", "chunk-08",
    "chunk-09", "chunk-10", "chunk-11", "chunk-12", "chunk-13", "chunk-14", "chunk-15", "chunk-16",
];

/// The proptest check's one "scenario": the public API as a state machine.
pub const PROPTEST_SCENARIO: &str = "api-state-machine";

/// The generated document whose embedded reports `--update-docs` writes.
pub const VERIFICATION_MD: &str = "docs/VERIFICATION.md";

/// Writes `md` into docs/VERIFICATION.md as its generated `section`, stamped with
/// `sources`: the fingerprint of the sources when the run began. Refuses if they changed
/// since (the section would describe neither).
pub fn embed_section(root: &Path, section: &str, sources: &str, md: &str) -> Result<(), String> {
    let now = crate::reports::docs::stamp(root);
    if now != sources {
        return Err(format!("--update-docs: the checked sources changed while the run went on (now {now}, at the start {sources}); the report describes neither: rerun it"));
    }
    let path = root.join(VERIFICATION_MD);
    let doc = std::fs::read_to_string(&path).unwrap_or_default();
    let new = crate::reports::docs::embed(&doc, section, sources, md)?;
    std::fs::write(&path, new).map_err(|e| format!("cannot write {VERIFICATION_MD}: {e}"))
}

/// What the gate knows of each checker: whether its quick and full runs include it, the
/// cargo arguments of its test binary, the scenarios it runs.
impl Checker {
    /// Whether the quick and full gates run this checker (`gate mutants` runs them all).
    pub fn in_gate(self) -> bool {
        self != Checker::Trace
    }

    /// The cargo arguments that build and select this checker's test binary.
    pub fn cargo_args(self) -> &'static [&'static str] {
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
            Checker::GenLoom => &[
                "--release",
                "-p",
                "usbpm-model",
                "--features",
                "loom",
                "--test",
                "programs",
            ],
            Checker::GenShuttle => &[
                "--release",
                "-p",
                "usbpm-model",
                "--features",
                "shuttle",
                "--test",
                "programs",
            ],
            Checker::Spec => &["--release", "-p", "usbpm-model", "--test", "spec"],
            Checker::Trace => &[
                "--release",
                "-p",
                "usbpm-model",
                "--features",
                "shuttle",
                "--test",
                "trace_teeth",
            ],
        }
    }

    /// The scenarios this checker runs.
    pub fn scenarios(self) -> Vec<&'static str> {
        match self {
            Checker::Loom => ALL
                .iter()
                .filter(|s| s.size == Size::Small)
                .map(|s| s.name)
                .collect(),
            Checker::Shuttle | Checker::Std => ALL.iter().map(|s| s.name).collect(),
            Checker::Proptest => vec![PROPTEST_SCENARIO],
            Checker::GenLoom | Checker::GenShuttle => PROGRAM_CHUNKS.to_vec(),
            Checker::Spec => vec![SPEC_SCENARIO],
            Checker::Trace => vec![TRACE_SCENARIO],
        }
    }
}

/// What a run of the gate was asked to do, as parsed from its command line.
#[derive(Clone, Debug)]
pub struct Options {
    /// Only these checkers (empty: all).
    pub checkers: Vec<Checker>,
    /// Only these scenarios (empty: all).
    pub scenarios: Vec<String>,
    /// `gate mutants`: only these mutants (empty: all).
    pub mutants: Vec<String>,
    /// `I/N`: run shard I of N.
    pub shard: Option<String>,
    /// Where reports go, relative to the workspace root (or absolute).
    pub report_dir: PathBuf,
    /// Seed for shuttle's schedulers.
    pub seed: u64,
    /// `gate loom-bounds`: the longest one measurement may run.
    pub timeout_secs: u64,
    /// `gate programs`: the one tier to run instead of the profile's (`TxK-cC-hH`).
    pub program_size: Option<String>,
    /// `gate programs`: loom's preemption bound for that tier (a number or `unbounded`).
    pub program_bound: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            checkers: Vec::new(),
            scenarios: Vec::new(),
            mutants: Vec::new(),
            shard: None,
            report_dir: PathBuf::from("target/gate"),
            seed: 1,
            timeout_secs: 120,
            program_size: None,
            program_bound: None,
        }
    }
}

impl Options {
    /// Rejects unknown scenarios and mutants and a malformed shard.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(size) = &self.program_size {
            size.parse::<crate::lang::enumerate::Size>()?;
        }
        if let Some(b) = &self.program_bound {
            crate::checkers::generated::parse_bounds(b).map_err(|e| format!("--bound {e}"))?;
        }
        for s in &self.scenarios {
            if !ALL.iter().any(|x| x.name == s)
                && ![PROPTEST_SCENARIO, SPEC_SCENARIO, TRACE_SCENARIO].contains(&s.as_str())
                && !PROGRAM_CHUNKS.contains(&s.as_str())
            {
                return Err(format!("no scenario `{s}`; `gate list` shows them"));
            }
        }
        for m in &self.mutants {
            if Mutant::from_name(m).is_none() {
                return Err(format!("no mutant `{m}`; `gate list` shows the catalog"));
            }
        }
        if let Some(shard) = &self.shard {
            if parse_shard(shard).is_none() {
                return Err(format!(
                    "--shard {shard}: expected I/N with 1 <= I <= N, e.g. 1/2"
                ));
            }
        }
        Ok(())
    }

    /// The checkers the quick and full gates run, in a fixed order. A scenario filter that
    /// names no scenario of a checker leaves it out.
    pub fn selected_checkers(&self) -> Vec<Checker> {
        self.selected_checkers_of(true)
    }

    /// The checkers `gate mutants` runs: those of the gate, and trace validation alone.
    pub fn selected_mutant_checkers(&self) -> Vec<Checker> {
        self.selected_checkers_of(false)
    }

    fn selected_checkers_of(&self, gate_only: bool) -> Vec<Checker> {
        let chosen: Vec<Checker> = if self.checkers.is_empty() {
            Checker::ALL
                .into_iter()
                .filter(|c| !gate_only || c.in_gate())
                .collect()
        } else {
            Checker::ALL
                .into_iter()
                .filter(|c| self.checkers.contains(c))
                .collect()
        };
        chosen
            .into_iter()
            .filter(|c| {
                self.scenarios.is_empty()
                    || c.scenarios()
                        .iter()
                        .any(|s| self.scenarios.iter().any(|x| x == s))
            })
            .collect()
    }

    /// Whether the scenario filter lets `scenario` through.
    pub fn selects_scenario(&self, scenario: &str) -> bool {
        self.scenarios.is_empty() || self.scenarios.iter().any(|x| x == scenario)
    }

    /// How many checks `checkers` run under this filter (one per checker and scenario).
    pub fn total_checks(&self, checkers: &[Checker]) -> u64 {
        checkers
            .iter()
            .map(|c| {
                c.scenarios()
                    .iter()
                    .filter(|s| self.selects_scenario(s))
                    .count() as u64
            })
            .sum()
    }

    /// The mutant a quick, full or programs run switches on (`--mutant NAME`, given once;
    /// [`Options::validate_mutant_for`] refuses more).
    pub fn applied_mutant(&self) -> Option<Mutant> {
        self.mutants.first().and_then(|m| Mutant::from_name(m))
    }

    /// Refuses `--mutant` where it would be ignored: `gate mutants` takes any number, the
    /// quick, full and programs runs one (applied to every check they run), and no other
    /// mode any.
    pub fn validate_mutant_for(&self, mode: &str, applies: bool) -> Result<(), String> {
        match (self.mutants.len(), applies) {
            (0, _) | (1, true) => Ok(()),
            (_, true) => Err(format!(
                "`gate {mode}` applies one mutant (--mutant given {} times); `gate mutants --mutant A --mutant B` runs the kill matrix of several",
                self.mutants.len()
            )),
            (_, false) => Err(format!(
                "`gate {mode}` takes no --mutant; a mutant is applied by `gate`, `gate full` and `gate programs` (one), or by `gate mutants` (the kill matrix)"
            )),
        }
    }

    /// The mutants `gate mutants` runs against.
    pub fn selected_mutants(&self) -> Vec<Mutant> {
        if self.mutants.is_empty() {
            Mutant::ALL.to_vec()
        } else {
            self.mutants
                .iter()
                .filter_map(|m| Mutant::from_name(m))
                .collect()
        }
    }

    /// Whether this is a whole run (unsharded, unfiltered): only those may be embedded in
    /// the docs.
    pub fn is_whole_run(&self) -> bool {
        self.shard.is_none() && self.checkers.is_empty() && self.scenarios.is_empty()
    }

    /// Whether this run's results may be written into the docs: the whole run
    /// ([`Options::is_whole_run`]) with no mutant filter.
    pub fn is_docs_run(&self) -> bool {
        self.is_whole_run() && self.mutants.is_empty()
    }
}

/// `I/N` with `1 <= I <= N`.
pub fn parse_shard(shard: &str) -> Option<(u32, u32)> {
    let (i, n) = shard.split_once('/')?;
    let (i, n) = (i.parse::<u32>().ok()?, n.parse::<u32>().ok()?);
    (i >= 1 && i <= n).then_some((i, n))
}

/// The workspace root. The gate is run by `cargo run` from anywhere in the workspace; the
/// manifest of this package sits one level below the root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("model/ has a parent")
        .to_path_buf()
}

/// The command that reproduces this run, for the report's header.
pub fn command_line(args: &[String]) -> String {
    format!(
        "cargo run --release -p usbpm-model --bin gate --{}",
        if args.is_empty() {
            String::new()
        } else {
            format!(" {}", args.join(" "))
        }
    )
}

/// 0 when `ok`, else 1.
pub fn exit_code(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Empties `dir` (creating it) and returns its canonical path.
pub fn fresh_dir(dir: &Path) -> PathBuf {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("create a report directory");
    dir.canonicalize().expect("a directory just made")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> Options {
        Options::default()
    }

    #[test]
    fn shards_must_be_i_of_n() {
        assert_eq!(parse_shard("1/2"), Some((1, 2)));
        assert_eq!(parse_shard("2/2"), Some((2, 2)));
        for bad in ["0/2", "3/2", "1", "a/b", "1/2/3", ""] {
            assert_eq!(parse_shard(bad), None, "{bad}");
            let o = Options {
                shard: Some(bad.into()),
                ..opts()
            };
            assert!(o.validate().is_err(), "{bad}");
        }
    }

    #[test]
    fn unknown_names_are_refused() {
        assert!(Options {
            scenarios: vec!["no-such".into()],
            ..opts()
        }
        .validate()
        .is_err());
        assert!(Options {
            mutants: vec!["no-such".into()],
            ..opts()
        }
        .validate()
        .is_err());
        let ok = Options {
            scenarios: vec![PROPTEST_SCENARIO.into(), ALL[0].name.into()],
            mutants: vec![Mutant::ALL[0].name().into()],
            ..opts()
        };
        assert_eq!(ok.validate(), Ok(()));
    }

    #[test]
    fn a_scenario_filter_drops_checkers_without_it() {
        let gate: Vec<Checker> = Checker::ALL.into_iter().filter(|c| c.in_gate()).collect();
        assert_eq!(opts().selected_checkers(), gate);
        assert_eq!(opts().selected_mutant_checkers(), Checker::ALL.to_vec());
        let large = ALL
            .iter()
            .find(|s| s.size == Size::Large)
            .expect("a large scenario")
            .name;
        let o = Options {
            scenarios: vec![large.into()],
            ..opts()
        };
        assert_eq!(o.selected_checkers(), vec![Checker::Shuttle, Checker::Std]);
        assert_eq!(o.total_checks(&o.selected_checkers()), 2);
        let o = Options {
            checkers: vec![Checker::Proptest, Checker::Loom],
            ..opts()
        };
        assert_eq!(
            o.selected_checkers(),
            vec![Checker::Loom, Checker::Proptest],
            "fixed order, whatever the command line's"
        );
    }

    #[test]
    fn total_checks_counts_every_scenario_of_every_checker() {
        let small = ALL.iter().filter(|s| s.size == Size::Small).count() as u64;
        let all = ALL.len() as u64;
        let chunks = PROGRAM_CHUNKS.len() as u64;
        // proptest, spec and trace run one check each.
        assert_eq!(
            opts().total_checks(&Checker::ALL),
            small + 2 * all + 2 * chunks + 3
        );
    }

    #[test]
    fn a_mutant_is_applied_once_or_refused() {
        let one = Options {
            mutants: vec!["lost-wakeup".into()],
            ..opts()
        };
        assert_eq!(one.applied_mutant(), Mutant::from_name("lost-wakeup"));
        assert_eq!(one.validate_mutant_for("full", true), Ok(()));
        assert!(one
            .validate_mutant_for("loom-bounds", false)
            .unwrap_err()
            .contains("takes no --mutant"));
        let two = Options {
            mutants: vec!["lost-wakeup".into(), "no-generation".into()],
            ..opts()
        };
        assert!(two
            .validate_mutant_for("quick", true)
            .unwrap_err()
            .contains("applies one mutant"));
        assert_eq!(opts().validate_mutant_for("test", false), Ok(()));
        assert_eq!(opts().applied_mutant(), None);
    }

    #[test]
    fn only_unsharded_unfiltered_runs_are_whole() {
        assert!(opts().is_whole_run());
        assert!(!Options {
            shard: Some("1/2".into()),
            ..opts()
        }
        .is_whole_run());
        assert!(!Options {
            checkers: vec![Checker::Std],
            ..opts()
        }
        .is_whole_run());
        assert!(
            Options {
                mutants: vec!["lost-wakeup".into()],
                ..opts()
            }
            .is_whole_run(),
            "a mutant filter is a whole kill matrix row set"
        );
        assert!(opts().is_docs_run());
        assert!(
            !Options {
                mutants: vec!["lost-wakeup".into()],
                ..opts()
            }
            .is_docs_run(),
            "a mutant filter's rows are not the docs' whole kill matrix"
        );
        assert!(!Options {
            shard: Some("1/2".into()),
            ..opts()
        }
        .is_docs_run());
    }

    /// Each mutant's place in the catalogue, by an exhaustive match (no wildcard arm): a
    /// mutant added to the library does not compile here until it is counted.
    fn place(m: Mutant) -> usize {
        match m {
            Mutant::DeregisterNoWait => 0,
            Mutant::CheckThenCall => 1,
            Mutant::ReleaseBeforeCallback => 2,
            Mutant::RelaxedOrdering => 3,
            Mutant::LostWakeup => 4,
            Mutant::WaitUnderRegistryLock => 5,
            Mutant::CallbackUnderHubLock => 6,
            Mutant::NoGeneration => 7,
            Mutant::OwnCallbackWaits => 8,
            Mutant::NoCycleCheck => 9,
            Mutant::RemovalOvertakes => 10,
            Mutant::ReplayMissesHub => 11,
            Mutant::PanicLeaksCount => 12,
            Mutant::PanicLeavesCallbackMark => 13,
            Mutant::CycleCheckDirectOnly => 14,
            Mutant::DrainOnePerPass => 15,
            Mutant::GuardDropIgnoresRefusal => 16,
            Mutant::ReplayStaleSnapshot => 17,
            Mutant::ChangeNotFolded => 18,
            Mutant::WakeWithoutWaiter => 19,
            Mutant::WaiterFlagAfterTest => 20,
            Mutant::UnboundedDrain => 21,
            Mutant::HandoffWakesNobody => 22,
            Mutant::ObligationForgotten => 23,
            Mutant::CallsOverlap => 24,
            Mutant::TurnMissesDeregister => 25,
            Mutant::ContextDropUnderDrain => 26,
            Mutant::DetachDoneEarly => 27,
            Mutant::DetachNeverDone => 28,
            Mutant::ArrivalNotFirst => 29,
            Mutant::RemovalNotLast => 30,
            Mutant::AccessCheckedLate => 31,
            Mutant::RejectedRequestReported => 32,
            Mutant::RemovalHidesHub => 33,
            Mutant::PowerRequestUnlocked => 34,
            Mutant::DoneBeforeDelivered => 35,
            Mutant::WaiterFlagKept => 36,
            Mutant::QueueCapIgnored => 37,
            Mutant::ReportBudgetIgnored => 38,
            Mutant::RegistrationBudgetIgnored => 39,
            Mutant::BudgetRefilledNested => 40,
            Mutant::GreetingRefillsBudget => 41,
        }
    }

    #[test]
    fn every_mutant_is_in_the_catalogue_selectable_by_name_and_described() {
        // `place` numbers every variant 0..N; ALL holds N mutants at N distinct places,
        // so it holds every variant.
        let variants = 42;
        let mut places: Vec<usize> = Mutant::ALL.iter().map(|m| place(*m)).collect();
        places.sort_unstable();
        assert_eq!(places, (0..variants).collect::<Vec<_>>());
        let mut kills = std::collections::BTreeMap::new();
        for &m in Mutant::ALL {
            assert_eq!(Mutant::from_name(m.name()), Some(m));
            let o = Options {
                mutants: vec![m.name().into()],
                ..opts()
            };
            assert_eq!(o.validate(), Ok(()), "{}", m.name());
            assert_eq!(o.selected_mutants(), vec![m]);
            kills.insert(
                m.name().to_string(),
                std::collections::BTreeMap::from([(Checker::Loom, None)]),
            );
        }
        let descriptions: std::collections::BTreeSet<&str> =
            Mutant::ALL.iter().map(|m| m.description()).collect();
        assert_eq!(
            descriptions.len(),
            variants,
            "two mutants share a description"
        );
        let report = crate::reports::report::Report {
            command: "gate mutants".into(),
            profile: "quick".into(),
            shard: None,
            seconds: 1.0,
            records: Vec::new(),
            missing: Vec::new(),
            kills: Some(kills),
            merged: Vec::new(),
            unreached: Default::default(),
            reach: None,
        }
        .markdown();
        let list = list::list();
        for &m in Mutant::ALL {
            let about = m.description();
            assert!(!about.trim().is_empty(), "{} has no description", m.name());
            assert!(
                report.contains(&format!("| {} | {about} |", m.name())),
                "the kill matrix does not describe {}:\n{report}",
                m.name()
            );
            assert!(
                list.contains(&format!("{:<26} {about}", m.name())),
                "gate list does not describe {}",
                m.name()
            );
        }
    }

    #[test]
    fn the_command_line_names_the_gate() {
        assert_eq!(
            command_line(&[]),
            "cargo run --release -p usbpm-model --bin gate --"
        );
        assert_eq!(
            command_line(&["full".into(), "--shard".into(), "1/2".into()]),
            "cargo run --release -p usbpm-model --bin gate -- full --shard 1/2"
        );
    }
}

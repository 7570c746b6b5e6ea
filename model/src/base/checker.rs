//! The checkers, by name: the one type the harness names a checker with, from the test
//! binaries' scenario checks to the records, the reports, the replay commands and the
//! gate's command line. Its names are the strings records and reports carry ("loom",
//! "gen-loom", ...), in JSON (serde), on the command line (clap) and in text
//! (`Display`, `FromStr`).
//!
//! The bottom of the harness: it depends on nothing of it.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One checker: a test binary of `usbpm-model` built with its feature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Checker {
    Loom,
    Shuttle,
    Std,
    Proptest,
    /// Every generated program of the profile's tiers, under loom (docs/VERIFICATION.md).
    GenLoom,
    /// Random larger generated programs under shuttle, shrunk on failure.
    GenShuttle,
    /// stateright on the specification (`crate::checkers::spec_checks`).
    Spec,
    /// Trace validation alone on shuttle schedules: `gate mutants` only (in the quick and
    /// full gates every shuttle and std execution is validated inside those checks).
    Trace,
}

impl Checker {
    /// Every checker, in the gate's order.
    pub const ALL: [Checker; 8] = [
        Checker::Loom,
        Checker::Shuttle,
        Checker::Std,
        Checker::Proptest,
        Checker::GenLoom,
        Checker::GenShuttle,
        Checker::Spec,
        Checker::Trace,
    ];

    /// Its name in records, reports, replay commands and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Checker::Loom => "loom",
            Checker::Shuttle => "shuttle",
            Checker::Std => "std",
            Checker::Proptest => "proptest",
            Checker::GenLoom => "gen-loom",
            Checker::GenShuttle => "gen-shuttle",
            Checker::Spec => "spec",
            Checker::Trace => "trace",
        }
    }

    /// The checker whose primitives this checker's test binary is built on: loom
    /// (`--features loom`), shuttle (`--features shuttle`) or std (neither). A replay
    /// command names that build.
    pub fn build(self) -> Checker {
        match self {
            Checker::Loom | Checker::GenLoom => Checker::Loom,
            Checker::Shuttle | Checker::GenShuttle | Checker::Trace => Checker::Shuttle,
            Checker::Std | Checker::Proptest | Checker::Spec => Checker::Std,
        }
    }

    /// The cargo feature of `usbpm-model` that [`build`](Self::build) is (none for std).
    pub fn feature(self) -> Option<&'static str> {
        match self {
            Checker::Loom | Checker::GenLoom => Some("loom"),
            Checker::Shuttle | Checker::GenShuttle | Checker::Trace => Some("shuttle"),
            Checker::Std | Checker::Proptest | Checker::Spec => None,
        }
    }
}

impl fmt::Display for Checker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl FromStr for Checker {
    type Err = String;

    fn from_str(s: &str) -> Result<Checker, String> {
        Checker::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Checker::ALL.iter().map(|c| c.name()).collect();
                format!("no checker `{s}`; the checkers are: {}", names.join(", "))
            })
    }
}

/// Checkers are ordered by name, as reports sort and tabulate them (the order they had
/// when records named them by string): the kill matrix's columns, JUnit's test suites, a
/// merged report's records.
impl Ord for Checker {
    fn cmp(&self, other: &Checker) -> Ordering {
        self.name().cmp(other.name())
    }
}

impl PartialOrd for Checker {
    fn partial_cmp(&self, other: &Checker) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use clap::ValueEnum;

    use super::*;

    #[test]
    fn every_form_of_a_checkers_name_is_its_name() {
        for c in Checker::ALL {
            assert_eq!(c.to_string(), c.name());
            assert_eq!(c.name().parse::<Checker>(), Ok(c));
            assert_eq!(
                serde_json::to_string(&c).unwrap(),
                format!("\"{}\"", c.name())
            );
            assert_eq!(
                serde_json::from_str::<Checker>(&format!("\"{}\"", c.name())).unwrap(),
                c
            );
            let arg = c.to_possible_value().expect("every checker is selectable");
            assert_eq!(arg.get_name(), c.name());
            assert_eq!(<Checker as ValueEnum>::from_str(c.name(), false), Ok(c));
        }
        assert!("no-such".parse::<Checker>().is_err());
        assert!(serde_json::from_str::<Checker>("\"no-such\"").is_err());
        assert_eq!(Checker::value_variants(), &Checker::ALL[..]);
    }

    #[test]
    fn checkers_sort_by_name() {
        let mut sorted = Checker::ALL;
        sorted.sort();
        let names: Vec<&str> = sorted.iter().map(|c| c.name()).collect();
        let mut want: Vec<&str> = Checker::ALL.iter().map(|c| c.name()).collect();
        want.sort_unstable();
        assert_eq!(names, want);
        assert_eq!(format!("[{:<8}]", Checker::Std), "[std     ]");
    }

    #[test]
    fn each_checker_is_built_on_loom_shuttle_or_std() {
        for c in Checker::ALL {
            let build = c.build();
            assert!(
                [Checker::Loom, Checker::Shuttle, Checker::Std].contains(&build),
                "{c}"
            );
            assert_eq!(build.build(), build);
            assert_eq!(c.feature(), build.feature(), "{c}");
        }
        assert_eq!(Checker::Std.feature(), None);
    }
}

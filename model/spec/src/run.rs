//! Exhaustive checks of the specification at named sizes, with their figures.

use std::fmt::Write as _;
use std::time::Instant;

use stateright::{Checker, Expectation, HasDiscoveries, Model};

use crate::spec::{Size, Spec, SpecMutant};
use crate::symmetry::representative;

/// The quick gate's size. Measured: 457,205 unique states, depth 50, 6.3 s
/// (docs/SPEC.md).
pub const QUICK: Size = Size {
    clients: 2,
    hubs: 2,
    threads: 2,
    changes: 1,
    removal: true,
    reentrant: 2,
    panics: 0,
    queries: 0,
    preregistered: false,
};

/// The full gate's size: 3 clients x 2 hubs x 3 threads x 2 events per hub (a change and
/// the removal, after the arrival), clients registered first. Measured: 18,687,557
/// unique states, depth 62, 403.8 s on one checker thread (docs/SPEC.md).
pub const FULL: Size = Size {
    clients: 3,
    hubs: 2,
    threads: 3,
    changes: 1,
    removal: true,
    reentrant: 2,
    panics: 0,
    queries: 0,
    preregistered: true,
};

/// The spec mutants' size: the quick size, plus a panicking callback and a callback that
/// queries its hub (the ingredients of panic-leaks-count and the two lock-order bugs).
pub const MUTANTS: Size = Size { panics: 1, queries: 1, ..QUICK };

/// What one exhaustive check found.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub size: Size,
    pub mutant: Option<SpecMutant>,
    pub symmetry: bool,
    /// Distinct states (representatives, with symmetry) explored.
    pub unique_states: usize,
    /// States generated, duplicates included.
    pub states: usize,
    pub max_depth: usize,
    pub seconds: f64,
    /// `always` or `eventually` properties with a counterexample, and its path.
    pub violated: Vec<(String, String)>,
    /// `sometimes` properties never witnessed (a vacuous specification).
    pub unwitnessed: Vec<String>,
    /// Whether the check stopped at its first counterexample (figures are partial).
    pub stopped_early: bool,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.violated.is_empty() && self.unwitnessed.is_empty()
    }

    pub fn states_per_second(&self) -> f64 {
        self.unique_states as f64 / self.seconds.max(1e-9)
    }

    /// One line of figures.
    pub fn summary(&self) -> String {
        format!(
            "{}{}: {} unique states ({} generated), depth {}, {:.1}s, {:.0} states/s{}",
            self.size.label(),
            if self.symmetry { ", symmetry" } else { ", no symmetry" },
            self.unique_states,
            self.states,
            self.max_depth,
            self.seconds,
            self.states_per_second(),
            self.mutant.map(|m| format!(", spec mutant {}", m.name())).unwrap_or_default(),
        )
    }
}

/// Explores every state of `size` (depth first, `threads` checker threads). With a
/// mutant, stops at the first counterexample.
pub fn check(size: Size, mutant: Option<SpecMutant>, symmetry: bool, threads: usize) -> Outcome {
    let spec = Spec::new(size, mutant);
    let properties = spec.properties();
    let start = Instant::now();
    let mut builder = spec.checker().threads(threads);
    if symmetry {
        builder = builder.symmetry_fn(representative);
    }
    if mutant.is_some() {
        builder = builder.finish_when(HasDiscoveries::AnyFailures);
    }
    let checker = builder.spawn_dfs().join();
    let seconds = start.elapsed().as_secs_f64();
    let mut violated = Vec::new();
    let mut unwitnessed = Vec::new();
    let discoveries = checker.discoveries();
    for p in &properties {
        let found = discoveries.get(p.name);
        match (&p.expectation, found) {
            (Expectation::Sometimes, None) if applicable(&size, p.name) => unwitnessed.push(p.name.to_string()),
            (Expectation::Always | Expectation::Eventually, Some(path)) => {
                let mut text = String::new();
                let spec = checker.model();
                for (state, action) in path.clone().into_vec() {
                    if let Some((t, op)) = action {
                        let _ = writeln!(text, "  thread {t}: {op:?}");
                    } else {
                        let _ = writeln!(text, "  (final) threads: {:?}", state.threads);
                    }
                }
                let _ = spec;
                violated.push((p.name.to_string(), text));
            }
            _ => {}
        }
    }
    Outcome {
        size,
        mutant,
        symmetry,
        unique_states: checker.unique_state_count(),
        states: checker.state_count(),
        max_depth: checker.max_depth(),
        seconds,
        violated,
        unwitnessed,
        stopped_early: mutant.is_some(),
    }
}

/// The size at which each spec mutant is checked: the quick size, which has every
/// ingredient (re-entrant deregisters, a panic, a query, removal, replay).
pub fn mutant_size(_m: SpecMutant) -> Size {
    MUTANTS
}

/// Whether a `sometimes` property can be witnessed at `size` (with no registration
/// there is no replay; with fewer than two deregisters from callbacks, no cycle).
pub fn applicable(size: &Size, property: &str) -> bool {
    let replay = property.contains("replay");
    let cycle = property.contains("cycle");
    !((replay && size.preregistered) || (cycle && size.reentrant < 2))
}

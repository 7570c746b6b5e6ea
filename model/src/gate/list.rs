//! `gate list`: scenarios, what each profile explores, checkers and mutants.

use std::fmt::Write as _;

use usbpm::checking::Mutant;

use super::nextest::proptest_cases;
use super::PROPTEST_SCENARIO;
use crate::base::checker::Checker;
use crate::checkers::check::{loom_bound, shuttle_iterations, std_iterations, Profile};
use crate::checkers::spec_checks::{spec_sizes, trace_schedules, SPEC_SCENARIO, TRACE_SCENARIO};
use crate::exec::scenarios::{Size, ALL};

/// The catalog `gate list` prints.
pub fn list() -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Scenarios (threads, size: loom runs the small ones):");
    for s in ALL {
        let props: Vec<_> = s.properties.iter().map(|p| p.id()).collect();
        let _ = writeln!(
            out,
            "  {:<32} {} threads, {:<5}  [{}]  {}",
            s.name,
            s.threads,
            if s.size == Size::Small {
                "small"
            } else {
                "large"
            },
            props.join(" "),
            s.about
        );
    }
    let _ = writeln!(out, "\nWhat each profile explores (quick / full):");
    for s in ALL {
        let bound = |p| loom_bound(s, p).map_or("unbounded".to_string(), |b| format!("bound {b}"));
        let loom = if s.size == Size::Small {
            format!("loom {} / {}", bound(Profile::Quick), bound(Profile::Full))
        } else {
            "loom -".into()
        };
        let _ = writeln!(
            out,
            "  {:<32} {:<32} shuttle {} / {} per strategy   std {} / {} runs",
            s.name,
            loom,
            shuttle_iterations(s, Profile::Quick),
            shuttle_iterations(s, Profile::Full),
            std_iterations(Profile::Quick),
            std_iterations(Profile::Full)
        );
    }
    let _ = writeln!(
        out,
        "  {:<32} proptest {} / {} cases",
        PROPTEST_SCENARIO,
        proptest_cases(Profile::Quick),
        proptest_cases(Profile::Full)
    );
    let _ = writeln!(
        out,
        "  {:<32} spec (stateright, exhaustive, symmetry) {} / {}",
        SPEC_SCENARIO,
        labels(Profile::Quick),
        labels(Profile::Full)
    );
    let _ = writeln!(
        out,
        "  {:<32} trace (gate mutants only) {} random schedules per scenario, judged by trace validation alone",
        TRACE_SCENARIO,
        trace_schedules(Profile::Quick)
    );
    let _ = writeln!(
        out,
        "\nGenerated programs (quick / full; each tier split into {} chunks, one check each):",
        crate::checkers::generated::CHUNKS
    );
    for checker in [Checker::GenLoom, Checker::GenShuttle] {
        for profile in [Profile::Quick, Profile::Full] {
            for t in crate::checkers::generated::plan(checker, profile) {
                let _ = writeln!(
                    out,
                    "  {checker:<12} {:<6} {}",
                    format!("{profile:?}").to_lowercase(),
                    t.method()
                );
            }
        }
    }
    let _ = writeln!(out, "\nCheckers: loom (exhaustive), shuttle (PCT + random), std (real threads), proptest (state machine), gen-loom (every generated program of a tier, exhaustive), gen-shuttle (random generated programs), spec (stateright on the specification; its mutants under `gate mutants`), trace (trace validation alone; `gate mutants` only)");
    let _ = writeln!(out, "\nMutants:");
    for m in Mutant::ALL {
        let _ = writeln!(out, "  {:<26} {}", m.name(), m.description());
    }
    out
}

/// The specification's sizes a profile explores, for `gate list`.
fn labels(profile: Profile) -> String {
    spec_sizes(profile)
        .iter()
        .map(|(_, size)| size.label())
        .collect::<Vec<_>>()
        .join(" + ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_names_every_scenario_and_mutant() {
        let text = list();
        for s in ALL {
            assert!(text.contains(s.name), "{}", s.name);
        }
        for m in Mutant::ALL {
            assert!(text.contains(m.name()), "{}", m.name());
            assert!(
                !m.description().is_empty(),
                "{} has no description",
                m.name()
            );
        }
        assert!(text.contains("every program of 2x1-c1-h1 (unbounded)"));
        assert!(text.contains("proptest 256 / 2048 cases"));
        assert!(text.contains("protocol-spec"), "{text}");
        assert!(
            text.contains("panics 1, queries 0), callback reports 1, re-arrivals 0, detaches 1"),
            "the full size is listed: {text}"
        );
    }
}

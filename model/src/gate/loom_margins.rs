//! `gate loom-margins`: why each bounded loom check's bound is enough. For every scenario
//! the quick profile explores at a preemption bound, every mutant its unmutated run
//! reached is explored (the loom `replay`, each run capped) at that bound and, if it fails
//! there, at bounds 0, 1, ... until it fails ([`smallest_bound`]); that bound is where the
//! mutant is found, and the chosen bound's margin over it is what the check has to spare.
//! The same for every generated-program tier gen-loom explores at a bound: each run is the
//! whole tier (every program of it) at one bound, stopping at its first failing chunk.
//! A tier the full profile alone explores at a bound is searched the same way at that
//! bound when one run of it is cheap (`FULL_ONLY_SEARCHED`); the table names the others
//! and why they are not searched.
//! `--update-docs` embeds the table in docs/VERIFICATION.md, each row's finds counted
//! and only the deepest named (every find stays in the run's loom-margins.md).

use std::path::Path;
use std::process::ExitCode;

use usbpm::checking::Mutant;

use super::display::Display;
use super::loom_bounds::{build_replay, run_capped};
use super::nextest::{run_checks, Run};
use super::records::read_final_records;
use super::{exit_code, Options, VERIFICATION_MD};
use crate::base::checker::Checker;
use crate::checkers::check::{loom_bound, Profile, Record};
use crate::checkers::generated::{plan, TierPlan};
use crate::exec::scenarios::{Scenario, ALL};

/// The doc section and the command that regenerates it.
pub const SECTION: &str = "loom-margins";
pub const REGENERATE: &str = "gate loom-margins --update-docs";
/// The same, as `cargo run` spells it.
const COMMAND: &str = "cargo run --release -p usbpm-model --bin gate -- loom-margins --update-docs";

/// One bounded scenario's row: its bounds, and each mutant found with the smallest bound.
pub struct Row {
    /// A named scenario, or `gen-loom TIER` for a generated-program tier.
    pub scenario: String,
    /// The bound the search went up to: the quick profile's, or the full profile's for a
    /// tier only the full profile explores (`full_only`).
    pub quick: usize,
    pub full_only: bool,
    /// The full profile's bound: a number, `unbounded`, or `not run`.
    pub full: String,
    pub found: Vec<(Mutant, usize)>,
    /// Mutants whose search hit the time cap at some bound.
    pub capped: Vec<(Mutant, usize)>,
}

impl Row {
    /// Records a mutant's search: found at a bound, not found, or capped at a bound.
    fn record(&mut self, m: Mutant, search: Result<Option<usize>, usize>, secs: f64) {
        match search {
            Ok(Some(bound)) => {
                eprintln!(
                    "  {:<32} {:<28} found at bound {bound} ({secs:.1} s)",
                    self.scenario,
                    m.name()
                );
                self.found.push((m, bound));
            }
            Ok(None) => {}
            Err(bound) => self.capped.push((m, bound)),
        }
    }

    /// The smallest margin of the quick bound over a found mutant's bound.
    pub fn margin(&self) -> Option<usize> {
        self.found.iter().map(|(_, b)| self.quick - b).min()
    }
}

/// What one exploration of a check with a mutant, at one bound, came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    Passed,
    Failed,
    /// Hit the time cap before an answer.
    Capped,
}

/// The smallest bound in `0..=quick` at which `probe` fails. `quick` is tried first: a
/// mutant not found there is found at no smaller bound (a smaller bound explores a subset
/// of the executions), so a survivor costs one run; then 0, 1, ... upward, stopping at the
/// first failure. `Ok(None)`: not found; `Err(b)`: the run at bound `b` hit the time cap.
pub fn smallest_bound(
    quick: usize,
    mut probe: impl FnMut(usize) -> Probe,
) -> Result<Option<usize>, usize> {
    match probe(quick) {
        Probe::Passed => return Ok(None),
        Probe::Capped => return Err(quick),
        Probe::Failed => {}
    }
    for bound in 0..quick {
        match probe(bound) {
            Probe::Passed => {}
            Probe::Failed => return Ok(Some(bound)),
            Probe::Capped => return Err(bound),
        }
    }
    Ok(Some(quick))
}

/// The scenarios a profile explores at a bound (the rest run unbounded).
pub fn bounded() -> Vec<&'static Scenario> {
    ALL.iter()
        .filter(|s| loom_bound(s, Profile::Quick).is_some())
        .collect()
}

/// The mutants a passing replay's output says its run reached (every mutant if the
/// output has no such line: nothing is skipped on a guess).
pub fn reached_mutants(out: &str) -> Vec<Mutant> {
    match out.lines().find_map(|l| l.strip_prefix("reached mutants:")) {
        Some(names) => names
            .split_whitespace()
            .filter_map(Mutant::from_name)
            .collect(),
        None => Mutant::ALL.to_vec(),
    }
}

/// The table, in Markdown: loom-margins.md, every mutant each check finds with its
/// smallest bound.
pub fn markdown(rows: &[Row], unsearched: &[TierPlan], mutants: usize, seconds: f64) -> String {
    render(rows, unsearched, mutants, seconds, false)
}

/// What docs/VERIFICATION.md embeds: per check, how many mutants it finds and the ones
/// found at the largest bound (they decide the margin); the full list stays in the run's
/// loom-margins.md.
pub fn docs_markdown(
    rows: &[Row],
    unsearched: &[TierPlan],
    mutants: usize,
    seconds: f64,
) -> String {
    render(rows, unsearched, mutants, seconds, true)
}

fn render(
    rows: &[Row],
    unsearched: &[TierPlan],
    mutants: usize,
    seconds: f64,
    docs: bool,
) -> String {
    let mut md = String::from("### Loom bounds and their margins\n\n");
    md.push_str(&format!(
        "- command: `{COMMAND}`\n- {mutants} mutants, each explored by the loom `replay` at the quick profile's bound and, where it fails there, at bounds 0, 1, ... up to the first failure (a mutant whose code the scenario's unmutated run at that bound never reaches is not explored: it runs the same executions, so it cannot be found); {seconds:.0} s on this machine (2 cores)\n\n",
    ));
    md.push_str("A bounded loom check proves its properties only up to its bound. For each one (a named scenario, or a gen-loom tier: every program of the tier explored at the bound, a mutant found when any program fails), the smallest bound at which each mutant it finds is found, and the margin of the quick profile's bound over the largest of them (the full profile adds one or two more; a tier only the full profile explores, quick bound `—`, is searched up to its full bound). ");
    if docs {
        md.push_str("Here, per check: how many mutants it finds within its quick bound, and those found at the largest bound (they decide the margin); each with its smallest bound: the run's loom-margins.md. Other checks kill the rest (the kill matrix).\n\n");
        md.push_str("| scenario | bound: quick / full | mutants found | found at the largest bound | smallest margin |\n|---|---|---:|---|---:|\n");
    } else {
        md.push_str("Mutants not listed are not found by the scenario within its quick bound; other checks kill them (the kill matrix below).\n\n");
        md.push_str("| scenario | bound: quick / full | mutants found (smallest bound) | smallest margin |\n|---|---|---|---:|\n");
    }
    for r in rows {
        let capped = r
            .capped
            .iter()
            .map(|(m, b)| format!("{} (time cap at bound {b})", m.name()));
        let found = if docs {
            let deepest = r.found.iter().map(|(_, b)| *b).max();
            let names: Vec<&str> = r
                .found
                .iter()
                .filter(|(_, b)| Some(*b) == deepest)
                .map(|(m, _)| m.name())
                .collect();
            let mut cells: Vec<String> = deepest
                .map(|d| format!("{} ({d})", names.join(", ")))
                .into_iter()
                .collect();
            cells.extend(capped);
            format!(
                "{} | {}",
                r.found.len(),
                if cells.is_empty() {
                    "none".to_string()
                } else {
                    cells.join("; ")
                }
            )
        } else {
            let mut found: Vec<String> = r
                .found
                .iter()
                .map(|(m, b)| format!("{} {b}", m.name()))
                .collect();
            found.extend(capped);
            if found.is_empty() {
                "none".to_string()
            } else {
                found.join(", ")
            }
        };
        let quick = if r.full_only {
            "—".to_string()
        } else {
            r.quick.to_string()
        };
        md.push_str(&format!(
            "| {} | {quick} / {} | {found} | {} |\n",
            r.scenario,
            r.full,
            r.margin().map_or("—".into(), |m| m.to_string()),
        ));
    }
    if !unsearched.is_empty() {
        let tiers: Vec<String> = unsearched
            .iter()
            .map(|t| {
                format!(
                    "gen-loom {} (bound {})",
                    t.size,
                    t.bound.expect("a bounded tier")
                )
            })
            .collect();
        md.push_str(&format!(
            "\nNot searched: {}, which only the full profile explores. Searching one means a run of the whole tier at its bound per mutant its code reaches (a run's seconds: the report's generated-programs table), more than a regeneration's budget; the kill matrix runs the quick profile, so their kills are not measured either.\n",
            tiers.join(", ")
        ));
    }
    md
}

/// Searches every bounded scenario against every selected mutant; writes
/// `loom-margins.md` to the report dir and, with `update_docs`, into the docs.
pub fn run(opts: &Options, root: &Path, update_docs: bool) -> ExitCode {
    if update_docs && !opts.is_docs_run() {
        eprintln!(
            "gate loom-margins: --update-docs embeds only a whole run (no --scenario, --mutant)"
        );
        return ExitCode::from(2);
    }
    let sources = crate::reports::docs::stamp(root);
    let Some(replay) = build_replay(root, "loom-margins") else {
        return ExitCode::from(1);
    };
    let start = std::time::Instant::now();
    let mutants = opts.selected_mutants();
    let mut rows = Vec::new();
    let mut ok = true;
    // `--checker loom` / `--checker gen-loom` choose the named scenarios or the tiers.
    let wants = |c: Checker| opts.checkers.is_empty() || opts.checkers.contains(&c);
    for s in bounded()
        .into_iter()
        .filter(|s| wants(Checker::Loom) && opts.selects_scenario(s.name))
    {
        let quick = loom_bound(s, Profile::Quick).expect("a bounded scenario");
        // The unmutated scenario must pass at its bound, or no failure below means much.
        let (status, out, _) = run_capped(
            &replay,
            &["--scenario", s.name, "--bound", &quick.to_string()],
            opts.timeout_secs,
        );
        // A mutant whose code this run never reached runs the same executions with it
        // switched on, at this bound and every smaller one: it cannot be found here.
        let reached = reached_mutants(&out);
        if !status.is_some_and(|st| st.success()) {
            eprintln!(
                "gate loom-margins: {} fails (or hits the cap) at bound {quick} with no mutant",
                s.name
            );
            ok = false;
            continue;
        }
        let mut row = Row {
            scenario: s.name.to_string(),
            quick,
            full_only: false,
            full: loom_bound(s, Profile::Full).map_or("unbounded".into(), |b| b.to_string()),
            found: Vec::new(),
            capped: Vec::new(),
        };
        for m in mutants.iter().filter(|m| reached.contains(m)) {
            let start = std::time::Instant::now();
            let found = smallest_bound(quick, |bound| {
                let (status, _, _) = run_capped(
                    &replay,
                    &[
                        "--scenario",
                        s.name,
                        "--bound",
                        &bound.to_string(),
                        "--mutant",
                        m.name(),
                    ],
                    opts.timeout_secs,
                );
                match status {
                    None => Probe::Capped,
                    Some(st) if !st.success() => Probe::Failed,
                    Some(_) => Probe::Passed,
                }
            });
            row.record(*m, found, start.elapsed().as_secs_f64());
        }
        rows.push(row);
    }
    let (full_only, unsearched) = full_only_tiers();
    let tiers = bounded_tiers()
        .into_iter()
        .map(|t| (t, false))
        .chain(full_only.into_iter().map(|t| (t, true)));
    for (tier, full_only) in tiers.filter(|_| wants(Checker::GenLoom)) {
        match tier_row(opts, root, &tier, full_only, &mutants) {
            Some(row) => rows.push(row),
            None => ok = false,
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let md = markdown(&rows, &unsearched, mutants.len(), seconds);
    let dir = root.join(&opts.report_dir);
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join("loom-margins.md"), &md);
    println!("{md}");
    if update_docs && ok {
        let docs = docs_markdown(&rows, &unsearched, mutants.len(), seconds);
        match super::embed_section(root, SECTION, &sources, &docs) {
            Ok(()) => println!("gate loom-margins: wrote the table into {VERIFICATION_MD}"),
            Err(e) => {
                eprintln!("gate loom-margins: {e}");
                return ExitCode::from(1);
            }
        }
    }
    exit_code(ok)
}

/// The generated-program tiers gen-loom explores at a bound in the quick profile.
pub fn bounded_tiers() -> Vec<TierPlan> {
    plan(Checker::GenLoom, Profile::Quick)
        .into_iter()
        .filter(|t| t.bound.is_some())
        .collect()
}

/// Tiers the full profile alone explores at a bound whose one run is cheap enough to be
/// searched against every mutant it reaches (2x1-c1-H2-S at bound 3: a few seconds; the
/// report's generated-programs table). The other full-only tiers take tens to hundreds of
/// seconds a run, and a survivor costs a whole run.
const FULL_ONLY_SEARCHED: &[&str] = &["2x1-c1-H2-S"];

/// The bounded tiers only the full profile explores: those searched (at their full
/// bound), and those not.
pub fn full_only_tiers() -> (Vec<TierPlan>, Vec<TierPlan>) {
    let quick: Vec<_> = plan(Checker::GenLoom, Profile::Quick)
        .into_iter()
        .map(|t| t.size)
        .collect();
    plan(Checker::GenLoom, Profile::Full)
        .into_iter()
        .filter(|t| t.bound.is_some() && !quick.contains(&t.size))
        .partition(|t| FULL_ONLY_SEARCHED.contains(&t.size.to_string().as_str()))
}

/// One run of `tier`'s programs under gen-loom at `bounds` (a number, or `0..=N`: see
/// `generated::parse_bounds`; the search uses a number), with `mutant` switched on; `first_kill` stops the run at
/// the first failing chunk. Returns whether it passed, and the chunks' records.
fn run_tier(
    opts: &Options,
    root: &Path,
    tier: &TierPlan,
    bounds: &str,
    mutant: Option<Mutant>,
    first_kill: bool,
) -> (bool, Vec<Record>) {
    let mut opts = opts.clone();
    opts.program_size = Some(tier.size.to_string());
    opts.program_bound = Some(bounds.to_string());
    opts.scenarios.clear();
    let dir = root
        .join(&opts.report_dir)
        .join("loom-margins")
        .join(format!(
            "{}-{}-{}",
            tier.size,
            mutant.map_or("shipped", |m| m.name()),
            bounds.replace("..=", "-")
        ));
    let _ = std::fs::remove_dir_all(&dir);
    let run = Run {
        root,
        profile: Profile::Quick,
        mutant,
        first_kill,
        seed: opts.seed,
        shard: None,
        results: dir.join("results"),
        logs: dir.join("logs"),
        test_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    std::fs::create_dir_all(&run.logs).expect("create the log directory");
    let display = Display::new(0);
    let ok = run_checks(&run, &opts, Checker::GenLoom, None, &display);
    display.bar.finish_and_clear();
    (ok, read_final_records(&run.results).0)
}

/// `tier`'s row: the tier passes unmutated at its bound (else `None`); each mutant its
/// chunks reached is searched with [`smallest_bound`], each run of the whole tier at one
/// bound stopping at its first failing chunk.
fn tier_row(
    opts: &Options,
    root: &Path,
    tier: &TierPlan,
    full_only: bool,
    mutants: &[Mutant],
) -> Option<Row> {
    let quick = tier.bound.expect("a bounded tier");
    let name = format!("gen-loom {}", tier.size);
    let (ok, records) = run_tier(opts, root, tier, &quick.to_string(), None, false);
    if !ok {
        eprintln!("gate loom-margins: {name} fails at bound {quick} with no mutant");
        return None;
    }
    let reaches = |m: &Mutant| {
        records.iter().any(|r| {
            r.reached
                .as_ref()
                .is_none_or(|r| r.iter().any(|n| n == m.name()))
        })
    };
    let full = plan(Checker::GenLoom, Profile::Full)
        .into_iter()
        .find(|t| t.size == tier.size)
        .map_or("not run".into(), |t| {
            t.bound.map_or("unbounded".into(), |b| b.to_string())
        });
    let mut row = Row {
        scenario: name,
        quick,
        full_only,
        full,
        found: Vec::new(),
        capped: Vec::new(),
    };
    for m in mutants.iter().filter(|m| reaches(m)) {
        let start = std::time::Instant::now();
        // Each bound's run stops at its first failing chunk.
        let found = smallest_bound(quick, |bound| {
            if run_tier(opts, root, tier, &bound.to_string(), Some(*m), true).0 {
                Probe::Passed
            } else {
                Probe::Failed
            }
        });
        row.record(*m, found, start.elapsed().as_secs_f64());
    }
    Some(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_margin_is_the_quick_bound_over_the_deepest_find() {
        let row = Row {
            scenario: "s".into(),
            quick: 3,
            full_only: false,
            full: "4".into(),
            found: vec![(Mutant::ALL[0], 1), (Mutant::ALL[1], 2)],
            capped: Vec::new(),
        };
        assert_eq!(row.margin(), Some(1));
        let md = markdown(&[row], &[], 2, 1.0);
        assert!(md.contains("| s | 3 / 4 |"), "{md}");
        assert!(md.contains(&format!("{} 2", Mutant::ALL[1].name())), "{md}");
        assert!(md.ends_with("| 1 |\n"), "{md}");
    }

    #[test]
    fn the_docs_count_the_finds_and_name_the_deepest() {
        let m = Mutant::ALL;
        let row = Row {
            scenario: "s".into(),
            quick: 3,
            full_only: false,
            full: "4".into(),
            found: vec![(m[0], 0), (m[1], 2), (m[2], 1), (m[3], 2)],
            capped: vec![(m[4], 1)],
        };
        let empty = Row {
            scenario: "t".into(),
            quick: 2,
            full_only: false,
            full: "unbounded".into(),
            found: Vec::new(),
            capped: Vec::new(),
        };
        let rows = [row, empty];
        let full = markdown(&rows, &[], 5, 1.0);
        let docs = docs_markdown(&rows, &[], 5, 1.0);
        // loom-margins.md lists every find with its bound; the docs count them and name
        // the ones at the largest bound, and a time cap still.
        assert!(
            full.contains(&format!("| {} 0, {} 2, ", m[0].name(), m[1].name())),
            "{full}"
        );
        assert!(
            docs.contains(&format!(
                "| s | 3 / 4 | 4 | {}, {} (2); {} (time cap at bound 1) | 1 |",
                m[1].name(),
                m[3].name(),
                m[4].name()
            )),
            "{docs}"
        );
        assert!(
            docs.contains("| t | 2 / unbounded | 0 | none | — |"),
            "{docs}"
        );
        assert!(!docs.contains(&format!("{} 0", m[0].name())), "{docs}");
        assert!(docs.contains("the run's loom-margins.md"), "{docs}");
    }

    #[test]
    fn a_full_only_tier_shows_no_quick_bound_and_the_unsearched_are_named() {
        let row = Row {
            scenario: "gen-loom 2x1-c1-H2-S".into(),
            quick: 3,
            full_only: true,
            full: "3".into(),
            found: vec![(Mutant::ALL[0], 1)],
            capped: Vec::new(),
        };
        let (searched, unsearched) = full_only_tiers();
        assert!(
            searched
                .iter()
                .all(|t| FULL_ONLY_SEARCHED.contains(&t.size.to_string().as_str())),
            "{searched:?}"
        );
        assert!(!unsearched.is_empty());
        let docs = docs_markdown(&[row], &unsearched, 1, 1.0);
        assert!(
            docs.contains("| gen-loom 2x1-c1-H2-S | — / 3 | 1 |"),
            "{docs}"
        );
        for t in &unsearched {
            let named = format!("gen-loom {} (bound {})", t.size, t.bound.unwrap());
            assert!(docs.contains(&named), "{named} missing: {docs}");
        }
        // A tier the quick profile explores is never among the full-only ones.
        for t in bounded_tiers() {
            assert!(!searched.iter().chain(&unsearched).any(|u| u.size == t.size));
        }
    }

    #[test]
    fn the_search_tries_the_bound_first_then_climbs_from_zero() {
        let search = |fails_from: usize, cap: Option<usize>| {
            let mut tried = Vec::new();
            let r = smallest_bound(3, |b| {
                tried.push(b);
                if cap == Some(b) {
                    Probe::Capped
                } else if b >= fails_from {
                    Probe::Failed
                } else {
                    Probe::Passed
                }
            });
            (r, tried)
        };
        // A survivor costs one run; a find climbs from 0 to its bound.
        assert_eq!(search(9, None), (Ok(None), vec![3]));
        assert_eq!(search(0, None), (Ok(Some(0)), vec![3, 0]));
        assert_eq!(search(2, None), (Ok(Some(2)), vec![3, 0, 1, 2]));
        assert_eq!(search(3, None), (Ok(Some(3)), vec![3, 0, 1, 2]));
        assert_eq!(search(2, Some(3)), (Err(3), vec![3]));
        assert_eq!(search(2, Some(1)), (Err(1), vec![3, 0, 1]));
    }

    #[test]
    fn a_replay_names_what_it_reached_and_no_line_skips_nothing() {
        let (a, b) = (Mutant::ALL[0], Mutant::ALL[2]);
        let out = format!(
            "replay of s passed: no violation (9 executions)\nreached mutants: {} {}\n",
            a.name(),
            b.name()
        );
        assert_eq!(reached_mutants(&out), vec![a, b]);
        assert_eq!(reached_mutants("reached mutants:\n"), Vec::<Mutant>::new());
        assert_eq!(reached_mutants("replay of s passed"), Mutant::ALL.to_vec());
    }

    #[test]
    fn every_bounded_scenario_has_a_quick_bound_at_most_its_full_one() {
        let b = bounded();
        assert!(!b.is_empty());
        for s in b {
            let (q, f) = (
                loom_bound(s, Profile::Quick).unwrap(),
                loom_bound(s, Profile::Full),
            );
            assert!(f.is_none_or(|f| f >= q), "{}: {q} / {f:?}", s.name);
        }
    }
}

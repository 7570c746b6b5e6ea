//! The gate's reports, made from the checks' records: Markdown for reviewers, JSON for
//! tools, JUnit XML for CI systems.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::base::checker::Checker;
use crate::checkers::check::{Record, SpecFigures, StrategyRun, Verdict};
use crate::exec::scenarios::{self, Size};
use crate::judge::monitor::Property;
use usbpm_spec::SpecMutant;

/// Everything one gate run produced (or several shards of one, merged).
#[derive(Debug, Serialize, Deserialize)]
pub struct Report {
    pub command: String,
    pub profile: String,
    pub shard: Option<String>,
    pub seconds: f64,
    pub records: Vec<Record>,
    /// Checks that were started but left no record (crashed or timed out).
    pub missing: Vec<String>,
    /// Mutant runs only: mutant -> checker -> fastest failing record.
    pub kills: Option<BTreeMap<String, BTreeMap<Checker, Option<Kill>>>>,
    /// A merged report: the shards it was made from (`gate merge`).
    #[serde(default)]
    pub merged: Vec<String>,
    /// Mutant runs only: mutant -> the checkers none of whose checks reached the mutant's
    /// code in their unmutated run, so none was run against it (each such cell survived).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub unreached: BTreeMap<String, BTreeSet<Checker>>,
    /// Mutant runs only: the checks' unmutated run that told what each check reaches,
    /// and how many check runs against a mutant it spared (`gate mutants`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reach: Option<ReachSummary>,
}

/// What the unmutated run before a kill matrix found and spared.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReachSummary {
    /// Seconds of the unmutated run.
    pub seconds: f64,
    /// Check runs against a mutant that the matrix would make without it.
    pub runs: u64,
    /// Of those, the ones not made: the check never reached the mutant's code.
    pub skipped: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Kill {
    pub scenario: String,
    pub property: Option<String>,
    pub executions: u64,
    pub seconds: f64,
    pub replay: String,
    /// shuttle: PCT and random, each to its own first failure.
    pub strategies: Vec<StrategyRun>,
}

/// How much a report shows: everything (report.md), or what the docs embed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Detail {
    /// report.md: every check, what was proved by property with every scenario, each
    /// kill's scenario, executions and seconds, the PCT table, one replay command per
    /// killed cell.
    Full,
    /// The docs: what was proved by scenario, the exhaustive checks other than loom's and
    /// per-checker totals, what failed first in each killed cell, the PCT table's
    /// conclusion; the rest left to the run's report.md.
    Docs,
}

impl Report {
    /// The report with every path under `root` written relative to it (replay commands,
    /// schedule and log files), so that a report, and the docs it is embedded in, name
    /// no directory of the machine that made it.
    pub fn relative_to(&self, root: &std::path::Path) -> Report {
        let json = serde_json::to_string(self).expect("a report serialises");
        let prefix =
            serde_json::to_string(&format!("{}/", root.display())).expect("a path serialises");
        let prefix = prefix.trim_matches('"');
        serde_json::from_str(&json.replace(prefix, "")).expect("the same report, paths shortened")
    }

    pub fn passed(&self) -> bool {
        match &self.kills {
            None => {
                self.missing.is_empty() && self.records.iter().all(|r| r.verdict == Verdict::Pass)
            }
            Some(k) => k.values().all(|by| by.values().any(Option::is_some)),
        }
    }

    /// report.md: everything, a kill matrix with one replay command per cell.
    pub fn markdown(&self) -> String {
        match &self.kills {
            Some(kills) => self.mutants_markdown(kills, Detail::Full),
            None => self.checks_markdown(Detail::Full),
        }
    }

    /// What docs/VERIFICATION.md embeds: report.md, but a kill matrix's replay commands
    /// stay in the run's report.md (most name that run's schedule files, which a clone
    /// does not have; the others follow from the cell's checker, scenario and mutant), and
    /// so do the sampled checks' rows, the PCT table (the docs keep totals and the
    /// conclusion), each kill's scenario, executions and seconds (the docs keep what
    /// failed), and the list of every scenario per property (the docs list the
    /// properties per scenario and say in one sentence which checkers sampled which).
    pub fn docs_markdown(&self) -> String {
        match &self.kills {
            Some(kills) => self.mutants_markdown(kills, Detail::Docs),
            None => self.checks_markdown(Detail::Docs),
        }
    }

    /// Per checker: how many checks ran, their executions and checking seconds.
    fn checker_totals(&self, out: &mut String) {
        let mut totals: BTreeMap<Checker, (usize, u64, f64)> = BTreeMap::new();
        for r in &self.records {
            let t = totals.entry(r.checker).or_default();
            t.0 += 1;
            t.1 += r.executions;
            t.2 += r.seconds;
        }
        let _ = writeln!(out, "| checker | checks | executions | checking seconds |");
        let _ = writeln!(out, "|---|---:|---:|---:|");
        for (c, (n, executions, seconds)) in totals {
            let _ = writeln!(out, "| {c} | {n} | {executions} | {seconds:.0} |");
        }
        let _ = writeln!(out);
    }

    fn header(&self, out: &mut String, title: &str) {
        let _ = writeln!(out, "# {title}\n");
        let _ = writeln!(out, "- command: `{}`", self.command);
        let merged = if self.merged.is_empty() {
            String::new()
        } else {
            format!(", merged from shards {}", self.merged.join(", "))
        };
        let _ = writeln!(
            out,
            "- profile: {}{}{merged}",
            self.profile,
            self.shard
                .as_ref()
                .map(|s| format!(", shard {s}"))
                .unwrap_or_default()
        );
        let slowest = if self.merged.is_empty() {
            ""
        } else {
            " (the slowest shard)"
        };
        let _ = writeln!(
            out,
            "- wall time: {:.0} s{slowest} on this machine ({} cores)",
            self.seconds,
            std::thread::available_parallelism().map_or(1, |n| n.get())
        );
        let _ = writeln!(
            out,
            "- verdict: **{}**\n",
            if self.passed() { "PASS" } else { "FAIL" }
        );
    }

    fn checks_markdown(&self, detail: Detail) -> String {
        let mut out = String::new();
        self.header(&mut out, "usbpm verification gate");
        self.proved_markdown(&mut out, detail);
        self.spec_markdown(&mut out);
        out.push_str(&self.programs_markdown(detail));
        let _ = writeln!(out, "\n## Every check\n");
        if detail == Detail::Docs {
            self.checker_totals(&mut out);
            let _ = writeln!(out, "The exhaustive checks other than the loom ones of the table above and any check that failed, one row each (every check's row, with the sampled checks' samples: the run's report.md):\n");
        }
        let _ = writeln!(out, "| scenario | size | properties | checker | kind | bound / sample | executions | seconds | verdict |");
        let _ = writeln!(out, "|---|---|---|---|---|---|---:|---:|---|");
        // A generated-program checker's passing chunks are one row (their tiers are in the
        // table above); a failing chunk keeps its own row.
        let mut chunks: BTreeMap<Checker, (usize, u64, f64, &Record)> = BTreeMap::new();
        let mut records: Vec<&Record> = Vec::new();
        for r in &self.records {
            if !r.programs.is_empty() && r.verdict == Verdict::Pass {
                let e = chunks.entry(r.checker).or_insert((0, 0, 0.0, r));
                e.0 += 1;
                e.1 += r.executions;
                e.2 += r.seconds;
            } else {
                records.push(r);
            }
        }
        records.sort_by(|a, b| (&a.scenario, &a.checker).cmp(&(&b.scenario, &b.checker)));
        for (checker, (n, executions, seconds, r)) in &chunks {
            let _ = writeln!(
                out,
                "| generated programs ({n} chunks) | | {} | {checker} | {} | the tiers above | {executions} | {seconds:.2} | pass |",
                r.properties.join(" "),
                if r.exhaustive { "exhaustive" } else { "sampled" },
            );
        }
        if detail == Detail::Docs {
            // The loom checks' rows are the table of what was proved.
            records.retain(|r| r.exhaustive && !is_code(r) || r.verdict != Verdict::Pass);
        }
        for r in records {
            let size = scenarios::find(&r.scenario).map_or(
                if r.spec.is_some() { "spec" } else { "" },
                |s| {
                    if s.size == Size::Small {
                        "small"
                    } else {
                        "large"
                    }
                },
            );
            let _ = writeln!(
                out,
                "| {} | {size} | {} | {} | {} | {} | {} | {:.2} | {} |",
                r.scenario,
                r.properties.join(" "),
                r.checker,
                if r.exhaustive {
                    "exhaustive"
                } else {
                    "sampled"
                },
                r.method,
                r.executions,
                r.seconds,
                if r.verdict == Verdict::Pass {
                    "pass"
                } else {
                    "**FAIL**"
                }
            );
        }
        for m in &self.missing {
            let _ = writeln!(
                out,
                "| {m} | | | | | | | | **NO VERDICT** (crashed or timed out) |"
            );
        }
        let failures: Vec<&Record> = self
            .records
            .iter()
            .filter(|r| r.failure.is_some())
            .collect();
        if !failures.is_empty() {
            let _ = writeln!(out, "\n## Failures\n");
            for r in failures {
                let f = r.failure.as_ref().expect("filtered");
                let _ = writeln!(
                    out,
                    "### {} under {}\n\nReplay: `{}`\n\n```text\n{}\n```\n",
                    r.scenario,
                    r.checker,
                    f.replay,
                    f.report.trim()
                );
                if let Some(diagram) = crate::reports::timeline::diagram_of_report(&f.report) {
                    let _ = writeln!(out, "The interleaving, step by step (library steps as notes, the failing step in red):\n\n```mermaid\n{diagram}```\n");
                }
            }
        }
        out
    }

    /// The code's checks' records the "what was proved" section draws on: not the
    /// specification's (they prove the specification, not the code: their own section)
    /// nor the generated programs' (theirs too).
    fn code_records(&self) -> impl Iterator<Item = &Record> {
        self.records.iter().filter(|r| is_code(r))
    }

    /// What was proved and what was sampled: in report.md one row per property naming
    /// every scenario that proved it and every one that sampled it; in the docs one row
    /// per scenario naming its properties (and its loom check's executions and seconds,
    /// which the docs' table of every check leaves out) and one sentence on which
    /// checkers sampled which scenarios.
    fn proved_markdown(&self, out: &mut String, detail: Detail) {
        if detail == Detail::Docs {
            return self.proved_docs(out);
        }
        let _ = writeln!(out, "## What was proved and what was sampled\n\n{PROVED}\n");
        let _ = writeln!(
            out,
            "| property | proved (loom, exhaustive) | sampled (shuttle / std / proptest) |"
        );
        let _ = writeln!(out, "|---|---|---|");
        for p in Property::ALL {
            let mut proved = Vec::new();
            // scenario -> the sampling checkers that ran it
            let mut sampled: BTreeMap<&str, Vec<String>> = BTreeMap::new();
            // The specification's checks prove the specification, not the code: they
            // have their own section below.
            let mut records: Vec<&Record> = self
                .code_records()
                .filter(|r| r.properties.iter().any(|x| x == p.id()))
                .collect();
            records.sort_by(|a, b| (&a.scenario, &a.checker).cmp(&(&b.scenario, &b.checker)));
            for r in records {
                let mark = if r.verdict == Verdict::Pass {
                    ""
                } else {
                    " **FAIL**"
                };
                if r.exhaustive {
                    proved.push(format!("{} ({}){mark}", r.scenario, r.method));
                } else {
                    sampled
                        .entry(&r.scenario)
                        .or_default()
                        .push(format!("{}{mark}", r.checker));
                }
            }
            let sampled: Vec<String> = sampled
                .into_iter()
                .map(|(s, c)| format!("{s} [{}]", c.join(", ")))
                .collect();
            let _ = writeln!(
                out,
                "| {} {} | {} | {} |",
                p.id(),
                p.title(),
                if proved.is_empty() {
                    "—".into()
                } else {
                    proved.join("; ")
                },
                if sampled.is_empty() {
                    "—".into()
                } else {
                    sampled.join("; ")
                }
            );
        }
    }

    /// The docs' "what was proved": one row per scenario, the loom-proved ones first, with
    /// the loom check's bound, executions and seconds and the scenario's properties (one
    /// only sampled marked so); the properties' titles; then, in one sentence, which
    /// checkers sampled which scenarios.
    fn proved_docs(&self, out: &mut String) {
        #[derive(Default)]
        struct Row<'a> {
            proofs: Vec<&'a Record>,
            proved: BTreeSet<&'a str>,
            sampled: BTreeSet<&'a str>,
            failed: BTreeSet<&'a str>,
            by: BTreeSet<Checker>,
        }
        let _ = writeln!(out, "## What was proved and what was sampled\n\n{PROVED}\n");
        let mut rows: BTreeMap<&str, Row> = BTreeMap::new();
        for r in self.code_records() {
            let row = rows.entry(&r.scenario).or_default();
            let props = r.properties.iter().map(String::as_str);
            if r.exhaustive {
                row.proofs.push(r);
                row.proved.extend(props.clone());
            } else {
                row.sampled.extend(props.clone());
                row.by.insert(r.checker);
            }
            if r.verdict != Verdict::Pass {
                row.failed.extend(props);
            }
        }
        let named: Vec<Property> = Property::ALL
            .into_iter()
            .filter(|p| {
                rows.values()
                    .any(|r| r.proved.contains(p.id()) || r.sampled.contains(p.id()))
            })
            .collect();
        let _ = writeln!(
            out,
            "| scenario | loom bound | executions | seconds | properties |\n|---|---|---:|---:|---|"
        );
        let mut order: Vec<(&str, &Row)> = rows.iter().map(|(s, r)| (*s, r)).collect();
        order.sort_by_key(|(s, r)| (r.proofs.is_empty(), *s));
        for (scenario, row) in order {
            let (bound, executions, seconds) = if row.proofs.is_empty() {
                ("sampled only".to_string(), String::new(), String::new())
            } else {
                let methods: Vec<&str> = row
                    .proofs
                    .iter()
                    .map(|r| r.method.trim_start_matches("preemption bound "))
                    .collect();
                (
                    methods.join(", "),
                    row.proofs
                        .iter()
                        .map(|r| r.executions)
                        .sum::<u64>()
                        .to_string(),
                    format!("{:.2}", row.proofs.iter().map(|r| r.seconds).sum::<f64>()),
                )
            };
            // Proved by the loom check, or (marked) only sampled; a failed check marked.
            let marks: Vec<String> = named
                .iter()
                .map(|p| p.id())
                .filter(|id| row.proved.contains(id) || row.sampled.contains(id))
                .map(|id| {
                    let sampled = if row.proved.contains(id) || row.proofs.is_empty() {
                        ""
                    } else {
                        " (s)"
                    };
                    let fail = if row.failed.contains(id) {
                        " **FAIL**"
                    } else {
                        ""
                    };
                    format!("{id}{sampled}{fail}")
                })
                .collect();
            let _ = writeln!(
                out,
                "| {scenario} | {bound} | {executions} | {seconds} | {} |",
                marks.join(" ")
            );
        }
        let _ = writeln!(
            out,
            "\nA loom row's properties are proved within its bound (a number: preemptions), those marked (s) only sampled; a sampled-only row's are sampled; **FAIL**: a check of it failed. The property ids: docs/INVARIANTS.md.\n"
        );
        // The sampling checkers, each set with the scenarios it ran.
        let mut groups: BTreeMap<&BTreeSet<Checker>, Vec<&str>> = BTreeMap::new();
        for (scenario, row) in &rows {
            if !row.by.is_empty() {
                groups.entry(&row.by).or_default().push(scenario);
            }
        }
        let mut groups: Vec<(&BTreeSet<Checker>, Vec<&str>)> = groups.into_iter().collect();
        groups.sort_by_key(|(_, s)| std::cmp::Reverse(s.len()));
        let phrases: Vec<String> = groups
            .into_iter()
            .map(|(by, scenarios)| {
                let others: Vec<&str> = rows
                    .keys()
                    .copied()
                    .filter(|s| !scenarios.contains(s))
                    .collect();
                let which = if others.is_empty() {
                    "every scenario of the table".to_string()
                } else if scenarios.len() > others.len() {
                    format!("every scenario of the table but {}", others.join(", "))
                } else {
                    scenarios.join(", ")
                };
                let by: Vec<String> = by.iter().map(ToString::to_string).collect();
                format!("under {}, {which}", and_list(&by))
            })
            .collect();
        if !phrases.is_empty() {
            let _ = writeln!(
                out,
                "Sampled: {}. The samples, and every check's row: the run's report.md.",
                phrases.join("; ")
            );
        }
    }

    /// The specification's checks: what stateright explored, with the figures a reviewer
    /// used to TLC expects.
    fn spec_markdown(&self, out: &mut String) {
        let specs: Vec<(&Record, &SpecFigures)> = self
            .records
            .iter()
            .filter_map(|r| r.spec.as_ref().map(|f| (r, f)))
            .collect();
        if specs.is_empty() {
            return;
        }
        let _ = writeln!(out, "\n## The specification (stateright)\n");
        let _ = writeln!(out, "The protocol's specification (docs/SPEC.md) explored **exhaustively** at a closed-world size, with symmetry reduction over clients, hubs and threads: P1–P8 as `always` (P6 bounded work, P7 nothing stranded, P8 one call at a time), liveness as `eventually`, and `sometimes` properties that fail a vacuous specification. A proof of the specification at that size, not of the code; trace validation of every loom, shuttle and std execution of the named scenarios (and of the generated programs under shuttle and std) ties the code to it.\n");
        let _ = writeln!(out, "| size | unique states | generated | states/s | depth | symmetry saving | seconds | properties | verdict |");
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---|---:|---:|---|");
        for (r, f) in specs {
            let _ = writeln!(
                out,
                "| {}{} | {} | {} | {:.0} | {} | {} | {:.1} | {} | {} |",
                f.size,
                r.mutant
                    .as_ref()
                    .map(|m| format!(" [mutant {m}]"))
                    .unwrap_or_default(),
                f.unique_states,
                f.generated_states,
                f.states_per_second,
                f.depth,
                f.saving(),
                r.seconds,
                f.properties_checked,
                if r.verdict == Verdict::Pass {
                    "pass"
                } else {
                    "**FAIL**"
                }
            );
        }
    }

    /// Generated programs, one row per checker and tier, summed over the chunks run. The
    /// docs keep the tier's size, bound, programs, executions, seconds and verdict (the
    /// counts before reduction, chunks and rates: report.md).
    fn programs_markdown(&self, detail: Detail) -> String {
        let mut out = String::new();
        // (checker, method, size, bound) -> (raw, live, symmetric, chunks, programs, executions, seconds, failed)
        type Sums = (u64, u64, u64, usize, u64, u64, f64, bool);
        type Key = (Checker, String, String, Option<usize>);
        let mut tiers: BTreeMap<Key, Sums> = BTreeMap::new();
        for r in &self.records {
            for t in &r.programs {
                let e = tiers
                    .entry((r.checker, t.method.clone(), t.size.clone(), t.bound))
                    .or_default();
                (e.0, e.1, e.2) = (t.raw, t.live, t.symmetric);
                e.3 += 1;
                e.4 += t.programs_run;
                e.5 += t.executions;
                e.6 += t.seconds;
                e.7 |= r.verdict == Verdict::Fail;
            }
        }
        if tiers.is_empty() {
            return out;
        }
        let _ = writeln!(out, "\n## Generated programs\n");
        if detail == Detail::Docs {
            let _ = writeln!(out, "Programs the gate generated, judged against the properties and the results oracle (docs/VERIFICATION.md, \"Generated programs\"): a gen-loom row proves every program of its tier, dead parts removed and one per symmetry orbit, within its bound (preemptions); a sampled row (gen-shuttle) runs random programs within its size under PCT (depth 3) and random schedules. Sizes TxK-cC-hH: threads x operations per thread, clients, hubs, at most. Counts before reduction, chunks, rates: the run's report.md.\n");
            let _ = writeln!(
                out,
                "| tier | bound | programs | executions | seconds | verdict |\n|---|---|---:|---:|---:|---|"
            );
            for ((_, _, size, bound), (raw, .., run, execs, secs, failed)) in tiers {
                let bound = match bound {
                    _ if raw == 0 => "sampled".to_string(),
                    Some(b) => b.to_string(),
                    None => "unbounded".into(),
                };
                let _ = writeln!(
                    out,
                    "| {size} | {bound} | {run} | {execs} | {secs:.1} | {} |",
                    if failed { "**FAIL**" } else { "pass" }
                );
            }
            return out;
        }
        let _ = writeln!(out, "Every property P1-P6, P8 and P9 and the results oracle, judged on programs the gate generated rather than wrote (docs/VERIFICATION.md, \"Generated programs\"). gen-loom rows are **proofs within their bound** for every program of the tier, after removing programs with dead parts and keeping one per symmetry orbit; gen-shuttle rows are samples. Sizes are TxK-cC-hH: threads x operations per thread, clients, hubs, each at most.\n");
        let _ = writeln!(out, "| checker | tier | programs (raw / live / after symmetry) | chunks run | programs run | executions | seconds | executions/s | verdict |");
        let _ = writeln!(out, "|---|---|---|---:|---:|---:|---:|---:|---|");
        for ((checker, method, ..), (raw, live, sym, chunks, run, execs, secs, failed)) in tiers {
            let counts = if raw > 0 {
                format!("{raw} / {live} / {sym}")
            } else {
                "random".into()
            };
            let rate = if secs > 0.0 {
                format!("{:.0}", execs as f64 / secs)
            } else {
                "—".into()
            };
            let _ = writeln!(
                out,
                "| {checker} | {method} | {counts} | {chunks} | {run} | {execs} | {secs:.1} | {rate} | {} |",
                if failed { "**FAIL**" } else { "pass" }
            );
        }
        out
    }

    fn mutants_markdown(
        &self,
        kills: &BTreeMap<String, BTreeMap<Checker, Option<Kill>>>,
        detail: Detail,
    ) -> String {
        let mut out = String::new();
        self.header(&mut out, "usbpm mutant kill matrix");
        let checkers: Vec<Checker> = kills
            .values()
            .flat_map(|m| m.keys().copied())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        if detail == Detail::Docs {
            let _ = writeln!(out, "A cell: what caught the mutant first (a property, **div.** a trace diverging from the specification, **model** proptest's reference model, **P3 hung** a hang or crash, **abort** no record), or survived; every mutant must be killed by some checker. Scenarios, executions, seconds: the run's report.md.\n");
        } else {
            let _ = writeln!(out, "Each cell: killed by which scenario, the property that failed, executions and seconds to the first failure; or survived. A mutant must be killed by at least one checker.\n");
        }
        if let (Some(r), Detail::Docs) = (&self.reach, detail) {
            let _ = writeln!(out, "A check whose run on the shipped code ({:.0} s) never reached a mutant's code cannot kill it and was skipped ({} of {} runs); **survived (not reached)**: no check of the checker reached it (std's reach is sampled).\n", r.seconds, r.skipped, r.runs);
        } else if let Some(r) = &self.reach {
            let _ = writeln!(out, "Before the mutants, every check ran once on the shipped code ({:.0} s) and recorded which mutants' code it reached (the mutant's hook consulted). A check that never reaches a mutant's code runs the same executions with it switched on, so it cannot kill it and was not run against it: {} of {} check runs skipped. **survived (not reached)**: no check of that checker reached the mutant's code. For std (real threads) reach is sampled like its verdicts.\n", r.seconds, r.skipped, r.runs);
        }
        if checkers
            .iter()
            .any(|c| *c == Checker::Spec || *c == Checker::Trace)
        {
            if detail == Detail::Docs {
                let _ = writeln!(out, "**spec**: stateright on the bug written into the specification (**no counterpart**: it has none there); **trace**: trace validation alone on random shuttle schedules.\n");
            } else {
                let _ = writeln!(out, "Both directions of the specification: the **spec** column is stateright on the spec mutant of the same bug family (the bug written into the specification; executions are unique states to the counterexample; no counterpart: the specification is sequentially consistent), and the **trace** column is trace validation alone (the monitors not consulted) on random shuttle schedules of the mutated code.\n");
            }
        }
        let _ = write!(out, "| mutant | what it breaks |");
        for c in &checkers {
            let _ = write!(out, " {c} |");
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "|---|---|{}", "---|".repeat(checkers.len()));
        for (mutant, by) in kills {
            let about = usbpm::checking::Mutant::from_name(mutant)
                .map(usbpm::checking::Mutant::description)
                .unwrap_or_default();
            let _ = write!(out, "| {mutant} | {about} |");
            for c in &checkers {
                match by.get(c) {
                    Some(Some(k)) if detail == Detail::Docs => {
                        let _ = write!(out, " {} |", self.kill_label(mutant, *c, k));
                    }
                    Some(Some(k)) => {
                        let _ = write!(
                            out,
                            " killed: {} {} ({} exec, {:.2}s) |",
                            k.scenario,
                            k.property.as_deref().unwrap_or(""),
                            k.executions,
                            k.seconds
                        );
                    }
                    Some(None)
                        if *c == Checker::Spec && SpecMutant::from_name(mutant).is_none() =>
                    {
                        let _ = write!(out, " no counterpart |");
                    }
                    Some(None) if self.unreached.get(mutant).is_some_and(|u| u.contains(c)) => {
                        let _ = write!(out, " survived (not reached) |");
                    }
                    Some(None) => {
                        let _ = write!(out, " survived |");
                    }
                    None => {
                        let _ = write!(out, " not run |");
                    }
                }
            }
            let _ = writeln!(out);
        }
        let _ = writeln!(out, "\n## Per checker\n");
        let _ = writeln!(out, "| checker | mutants killed | median seconds to first failure | median executions to first failure |");
        let _ = writeln!(out, "|---|---:|---:|---:|");
        for c in &checkers {
            let mut hits: Vec<&Kill> = kills
                .values()
                .filter_map(|by| by.get(c).and_then(Option::as_ref))
                .collect();
            let run = kills.values().filter(|by| by.contains_key(c)).count();
            hits.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
            let med_s = hits
                .get(hits.len() / 2)
                .map_or("—".into(), |k| format!("{:.2}", k.seconds));
            let mut execs: Vec<u64> = hits.iter().map(|k| k.executions).collect();
            execs.sort_unstable();
            let med_e = execs
                .get(execs.len() / 2)
                .map_or("—".into(), |e| e.to_string());
            let _ = writeln!(out, "| {c} | {} / {run} | {med_s} | {med_e} |", hits.len());
        }
        let _ = writeln!(out, "\n## Shuttle: PCT against random\n");
        // The table goes to report.md; the docs keep its conclusion.
        let mut table = String::new();
        let (mut found_pct, mut within_bound) = (0, 0);
        let _ = writeln!(table, "For the scenario where shuttle killed each mutant first: schedules to the first failure under PCT (depth d = 3) and under uniform random scheduling, each run on its own. PCT guarantees each schedule finds a depth-d bug with probability at least 1/(n k^(d-1)) (n threads, k scheduling steps), so it should need at most n k^2 schedules on average; the last column says whether the observed count is within that bound.\n");
        let _ = writeln!(table, "| mutant | scenario | n | k | PCT schedules (s) | random schedules (s) | n k^2 | PCT within bound |");
        let _ = writeln!(table, "|---|---|---:|---:|---|---|---:|---|");
        for (mutant, by) in kills {
            let Some(Some(k)) = by.get(&Checker::Shuttle) else {
                continue;
            };
            let pct = k.strategies.iter().find(|s| s.strategy.starts_with("pct"));
            let random = k.strategies.iter().find(|s| s.strategy == "random");
            let cell = |s: Option<&StrategyRun>| match s {
                Some(s) if s.failed => format!("{} ({:.2})", s.executions, s.seconds),
                Some(s) => format!("not found in {}", s.executions),
                None => "—".into(),
            };
            let (n, steps) = pct.map_or((0, 0), |p| (p.threads as u64, p.max_steps));
            let bound = n * steps * steps;
            let within = match pct {
                Some(p) if p.failed => {
                    found_pct += 1;
                    if p.executions <= bound.max(1) {
                        within_bound += 1;
                        "yes"
                    } else {
                        "**no**"
                    }
                }
                Some(_) => "not found",
                None => "—",
            };
            let _ = writeln!(
                table,
                "| {mutant} | {} | {n} | {steps} | {} | {} | {bound} | {within} |",
                k.scenario,
                cell(pct),
                cell(random)
            );
        }
        if detail == Detail::Docs {
            let _ = writeln!(out, "PCT (depth 3) found {found_pct} of the mutants shuttle killed, {within_bound} of them within its guaranteed expected bound of n k^2 schedules; the table of schedules to the first failure under PCT and under random scheduling, per mutant, is in `gate mutants`' report.md.");
        } else {
            out.push_str(&table);
        }
        let _ = writeln!(out, "\n## Replays\n");
        if detail == Detail::Docs {
            let _ = writeln!(out, "`gate mutants` writes one replay command per killed cell into its report.md (`target/gate/report.md`). From a clone, a loom kill replays as `cargo run --release -p usbpm-model --features loom --bin replay -- --scenario S --bound B --mutant M` (S, B: the cell's scenario and its loom bound), a std kill the same without `--features loom` (a new sample of real-thread schedules), a spec kill as `cargo run --release -p usbpm-spec --bin spec_check -- SIZE --mutant M`; gen-loom, gen-shuttle, shuttle and trace kills replay the program or schedule file their run saved under `target/gate/results/`.");
            return out;
        }
        for (mutant, by) in kills {
            for (c, k) in by {
                if let Some(k) = k {
                    let _ = writeln!(out, "- {mutant} / {c}: `{}`", k.replay);
                }
            }
        }
        out
    }

    /// A killed cell in the docs: what failed first. The property when the kill names
    /// one (its id alone; `P3 hung` when the check hung or crashed), `div.` for
    /// a trace that diverged from the specification; a kill naming none is told by its
    /// record's report: `div.`, `model` (proptest's reference model), `abort` (the check
    /// ended without its record), else `killed`.
    fn kill_label(&self, mutant: &str, checker: Checker, k: &Kill) -> String {
        if let Some(p) = k.property.as_deref() {
            let id = p.split_whitespace().next().unwrap_or(p);
            return if p.starts_with("divergence") {
                "div.".into()
            } else if p.contains("hung") {
                format!("{id} hung")
            } else {
                id.to_string()
            };
        }
        let report = self
            .records
            .iter()
            .find(|r| {
                r.checker == checker
                    && r.scenario == k.scenario
                    && r.mutant.as_deref() == Some(mutant)
            })
            .and_then(|r| r.failure.as_ref())
            .map_or("", |f| f.report.as_str());
        if report.contains("TRACE DIVERGES FROM THE SPECIFICATION") {
            "div."
        } else if report.contains("reference model") {
            "model"
        } else if report.contains("without writing its record") {
            "abort"
        } else {
            "killed"
        }
        .into()
    }

    /// JUnit XML: one testsuite per checker, one testcase per check.
    pub fn junit(&self) -> String {
        let mut by_checker: BTreeMap<Checker, Vec<&Record>> = BTreeMap::new();
        for r in &self.records {
            by_checker.entry(r.checker).or_default().push(r);
        }
        let mut out = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"usbpm-gate\">\n",
        );
        for (checker, records) in by_checker {
            let failures = records
                .iter()
                .filter(|r| r.verdict == Verdict::Fail)
                .count();
            let time: f64 = records.iter().map(|r| r.seconds).sum();
            let _ = writeln!(out, "  <testsuite name=\"{checker}\" tests=\"{}\" failures=\"{failures}\" time=\"{time:.3}\">", records.len());
            for r in records {
                let name = match &r.mutant {
                    Some(m) => format!("{} [mutant {m}]", r.scenario),
                    None => r.scenario.clone(),
                };
                let _ = write!(
                    out,
                    "    <testcase classname=\"usbpm.{checker}\" name=\"{}\" time=\"{:.3}\">",
                    xml(&name),
                    r.seconds
                );
                let spec = r.spec.as_ref().map_or(String::new(), |f| {
                    format!(
                        "<property name=\"size\" value=\"{}\"/><property name=\"unique_states\" value=\"{}\"/><property name=\"generated_states\" value=\"{}\"/><property name=\"states_per_second\" value=\"{:.0}\"/><property name=\"depth\" value=\"{}\"/><property name=\"symmetry_saving\" value=\"{}\"/><property name=\"properties_checked\" value=\"{}\"/>",
                        xml(&f.size),
                        f.unique_states,
                        f.generated_states,
                        f.states_per_second,
                        f.depth,
                        xml(&f.saving()),
                        f.properties_checked
                    )
                });
                let _ = write!(out, "<properties><property name=\"method\" value=\"{}\"/><property name=\"executions\" value=\"{}\"/>{spec}</properties>", xml(&r.method), r.executions);
                if let Some(f) = &r.failure {
                    let _ = write!(
                        out,
                        "<failure message=\"{}\">{}</failure>",
                        xml(f.property.as_deref().unwrap_or("failure")),
                        xml(&f.report)
                    );
                }
                let _ = writeln!(out, "</testcase>");
            }
            let _ = writeln!(out, "  </testsuite>");
        }
        if !self.missing.is_empty() {
            let _ = writeln!(
                out,
                "  <testsuite name=\"no-verdict\" tests=\"{0}\" failures=\"{0}\">",
                self.missing.len()
            );
            for m in &self.missing {
                let _ = writeln!(out, "    <testcase classname=\"usbpm.gate\" name=\"{}\"><failure message=\"no record: crashed or timed out\"/></testcase>", xml(m));
            }
            let _ = writeln!(out, "  </testsuite>");
        }
        out.push_str("</testsuites>\n");
        out
    }
}

/// What "what was proved" says of its rows, in report.md and in the docs.
const PROVED: &str = "Loom rows are **proofs within their bound**: every interleaving of the scenario's threads up to the stated number of preemptions (or all of them, when unbounded) was explored under the C11 memory model, on the shipped library. Shuttle, std and proptest rows are **samples**: the schedules or cases named, no more; a pass there is evidence, not proof.";

/// A check of the code on a named scenario: not the specification's, nor a chunk of
/// generated programs.
fn is_code(r: &Record) -> bool {
    r.spec.is_none() && r.checker != Checker::Spec && r.programs.is_empty()
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkers::check::{Failure, Profile};

    fn report(failure: Option<Failure>) -> Report {
        let record = Record {
            checker: Checker::Shuttle,
            scenario: "dispatch-vs-deregister".into(),
            mutant: None,
            profile: Profile::Quick,
            verdict: if failure.is_some() {
                Verdict::Fail
            } else {
                Verdict::Pass
            },
            exhaustive: false,
            method: "pct".into(),
            executions: 3,
            seconds: 0.1,
            properties: vec!["P2".into()],
            failure,
            strategies: Vec::new(),
            spec: None,
            programs: Vec::new(),
            reached: None,
        };
        Report {
            command: "gate".into(),
            profile: "quick".into(),
            shard: None,
            seconds: 1.0,
            records: vec![record],
            missing: Vec::new(),
            kills: None,
            merged: Vec::new(),
            unreached: Default::default(),
            reach: None,
        }
    }

    #[test]
    fn passing_chunks_are_one_row_and_a_failing_chunk_keeps_its_own() {
        let mut rep = report(None);
        let base = rep.records[0].clone();
        let chunk = |n: usize, verdict: Verdict| Record {
            checker: Checker::GenLoom,
            scenario: format!("chunk-{n:02}"),
            verdict,
            executions: 10,
            programs: vec![crate::checkers::generated::TierRun {
                size: "2x1-c1-h1".into(),
                method: "every program of 2x1-c1-h1 (unbounded)".into(),
                raw: 3,
                ..Default::default()
            }],
            ..base.clone()
        };
        rep.records.extend((1..=3).map(|n| chunk(n, Verdict::Pass)));
        let md = rep.markdown();
        assert!(
            md.contains("| generated programs (3 chunks) | | P2 | gen-loom | sampled | the tiers above | 30 |"),
            "{md}"
        );
        assert!(!md.contains("| chunk-01 |"), "{md}");
        rep.records.push(chunk(4, Verdict::Fail));
        let md = rep.markdown();
        assert!(
            md.contains("| chunk-04 |") && md.contains("(3 chunks)"),
            "{md}"
        );
        // report.md's tier table keeps the counts before reduction, chunks and rates;
        // the docs' keeps tier, bound, programs, executions, seconds and verdict.
        assert!(
            md.contains("| gen-loom | every program of 2x1-c1-h1 (unbounded) | 3 / 0 / 0 | 4 |"),
            "{md}"
        );
        rep.records.push(Record {
            checker: Checker::GenShuttle,
            scenario: "chunk-01".into(),
            executions: 400,
            programs: vec![crate::checkers::generated::TierRun {
                size: "4x6-c4-h3".into(),
                method: "2 random programs within 4x6-c4-h3".into(),
                programs_run: 2,
                executions: 400,
                seconds: 1.25,
                ..Default::default()
            }],
            ..base.clone()
        });
        rep.records[1].programs[0] = crate::checkers::generated::TierRun {
            size: "2x1-c1-h1-S".into(),
            method: "every program of 2x1-c1-h1-S (preemption bound 3)".into(),
            bound: Some(3),
            raw: 9,
            live: 7,
            symmetric: 5,
            programs_run: 5,
            executions: 50,
            seconds: 0.5,
            ..Default::default()
        };
        let docs = rep.docs_markdown();
        let table: Vec<&str> = docs
            .split("| tier | bound | programs | executions | seconds | verdict |")
            .nth(1)
            .expect("the docs' tier table")
            .split("\n\n")
            .next()
            .unwrap()
            .lines()
            .skip(2)
            .collect();
        assert_eq!(
            table,
            [
                "| 2x1-c1-h1 | unbounded | 0 | 0 | 0.0 | **FAIL** |",
                "| 2x1-c1-h1-S | 3 | 5 | 50 | 0.5 | pass |",
                "| 4x6-c4-h3 | sampled | 2 | 400 | 1.2 | pass |",
            ],
            "{docs}"
        );
        assert!(!docs.contains("raw / live"), "{docs}");
    }

    #[test]
    fn the_docs_keep_the_other_exhaustive_and_failing_rows_and_every_checkers_totals() {
        let mut rep = report(None);
        let base = rep.records[0].clone();
        rep.records.push(Record {
            checker: Checker::Loom,
            exhaustive: true,
            method: "unbounded".into(),
            executions: 19,
            ..base.clone()
        });
        rep.records.push(spec_record(Verdict::Pass));
        let row = |checker: &str| format!("| dispatch-vs-deregister | small | P2 | {checker} |");
        let (md, docs) = (rep.markdown(), rep.docs_markdown());
        assert!(
            md.contains(&row("shuttle")) && md.contains(&row("loom")),
            "{md}"
        );
        // The loom check's row is the table of what was proved; the specification's, an
        // exhaustive check of no scenario of that table, keeps its row.
        assert!(
            !docs.contains(&row("shuttle")) && !docs.contains(&row("loom")),
            "{docs}"
        );
        assert!(
            docs.contains("| dispatch-vs-deregister | unbounded | 19 | 0.10 | P2 |"),
            "{docs}"
        );
        assert!(docs.contains("| protocol-spec | spec |"), "{docs}");
        assert!(docs.contains("| shuttle | 1 | 3 | 0 |"), "{docs}");
        assert!(docs.contains("| loom | 1 | 19 | 0 |"), "{docs}");
        // A failing sampled check keeps its row in the docs.
        let mut failing = report(None);
        failing.records[0].verdict = Verdict::Fail;
        assert!(failing.docs_markdown().contains(&row("shuttle")));
    }

    #[test]
    fn the_docs_prove_by_scenario_and_say_in_one_sentence_what_was_sampled() {
        let mut rep = report(None);
        let base = rep.records[0].clone();
        let check = |checker: Checker, scenario: &str, properties: &[&str]| Record {
            checker,
            scenario: scenario.into(),
            exhaustive: checker == Checker::Loom,
            method: if checker == Checker::Loom {
                "preemption bound 3".into()
            } else {
                "pct".into()
            },
            executions: 7,
            properties: properties.iter().map(|p| p.to_string()).collect(),
            ..base.clone()
        };
        rep.records = vec![
            check(Checker::Loom, "a-race", &["P1", "P3"]),
            check(Checker::Shuttle, "a-race", &["P1", "P3", "M2"]),
            check(Checker::Std, "a-race", &["P1", "P3"]),
            check(Checker::Loom, "b-race", &["P4"]),
            check(Checker::Shuttle, "b-race", &["P4"]),
            check(Checker::Std, "b-race", &["P4"]),
            check(Checker::Shuttle, "c-churn", &["P2"]),
            check(Checker::Std, "c-churn", &["P2"]),
            check(Checker::Proptest, "d-api", &["P4", "P5"]),
        ];
        rep.records[3].verdict = Verdict::Fail;
        let (md, docs) = (rep.markdown(), rep.docs_markdown());
        // report.md: one row per property, every scenario named.
        assert!(md.contains("| P1 no callback begins after deregister returned | a-race (preemption bound 3) | a-race [shuttle, std] |"), "{md}");
        // The docs: one row per scenario, the loom-proved ones first; a property only
        // sampled is marked (s), a failed check's properties **FAIL**.
        let table = docs
            .split("| scenario | loom bound |")
            .nth(1)
            .expect("the docs' table")
            .split("\n\n")
            .next()
            .unwrap();
        let rows: Vec<&str> = table.lines().skip(2).collect();
        assert_eq!(
            rows,
            [
                "| a-race | 3 | 7 | 0.10 | P1 P3 M2 (s) |",
                "| b-race | 3 | 7 | 0.10 | P4 **FAIL** |",
                "| c-churn | sampled only |  |  | P2 |",
                "| d-api | sampled only |  |  | P4 P5 |",
            ],
            "{docs}"
        );
        // The docs name no property's title (docs/INVARIANTS.md defines the ids);
        // report.md keeps them.
        assert!(
            docs.contains("The property ids: docs/INVARIANTS.md."),
            "{docs}"
        );
        assert!(
            !docs.contains("no callback begins") && !docs.contains("nothing reaches"),
            "{docs}"
        );
        assert!(md.contains("| M2 nothing reaches"), "{md}");
        assert!(
            docs.contains("Sampled: under shuttle and std, every scenario of the table but d-api; under proptest, d-api."),
            "{docs}"
        );
        assert!(!docs.contains("| property | proved"), "{docs}");
    }

    #[test]
    fn every_failure_shows_its_interleaving_as_a_sequence_diagram() {
        let text = "PROPERTY VIOLATED: P2\n\nTimeline of the failing interleaving (step, thread, what happened):\n    1  main             deregister(A) returns Ok(())   <- VIOLATION P2\n\nReplay: x\n";
        let md = report(Some(Failure {
            property: Some("P2".into()),
            report: text.into(),
            replay: "x".into(),
        }))
        .markdown();
        let diagram = md
            .split("```mermaid\n")
            .nth(1)
            .expect("a mermaid block")
            .split("```")
            .next()
            .unwrap();
        assert!(
            diagram.starts_with("sequenceDiagram\n") && diagram.contains("VIOLATION P2"),
            "{diagram}"
        );
        assert!(
            !report(None).markdown().contains("```mermaid"),
            "a passing run draws nothing"
        );
    }

    fn spec_record(verdict: Verdict) -> Record {
        let mut r = report(None).records.remove(0);
        r.checker = Checker::Spec;
        r.scenario = crate::checkers::spec_checks::SPEC_SCENARIO.into();
        r.exhaustive = true;
        r.verdict = verdict;
        r.properties = vec!["P1".into(), "P2".into()];
        r.spec = Some(SpecFigures {
            size: "2c x 2h".into(),
            unique_states: 100,
            generated_states: 250,
            states_per_second: 50.0,
            depth: 12,
            unreduced_states: Some(700),
            unreduced_source: "recorded".into(),
            properties_checked: 20,
        });
        r
    }

    #[test]
    fn the_specifications_check_has_its_own_section_and_not_the_codes_proof_column() {
        let mut rep = report(None);
        rep.records.push(spec_record(Verdict::Pass));
        let md = rep.markdown();
        let section = md
            .split("## The specification (stateright)")
            .nth(1)
            .expect("a spec section");
        assert!(
            section.contains(
                "| 2c x 2h | 100 | 250 | 50 | 12 | 7.0x (700 -> 100; recorded) | 0.1 | 20 | pass |"
            ),
            "{section}"
        );
        let proved = md.split("## The specification").next().unwrap();
        assert!(!proved.contains("protocol-spec"), "{proved}");
        assert!(rep
            .junit()
            .contains("<property name=\"unique_states\" value=\"100\"/>"));
        assert!(!report(None).markdown().contains("## The specification"));
    }

    #[test]
    fn the_kill_matrix_says_when_the_specification_has_no_counterpart() {
        let kill = Kill {
            scenario: "protocol-spec".into(),
            property: Some("P2".into()),
            executions: 10,
            seconds: 0.5,
            replay: "spec_check".into(),
            strategies: Vec::new(),
        };
        let mut kills = BTreeMap::new();
        for (m, spec) in [
            ("relaxed-ordering", None),
            ("deregister-no-wait", Some(kill.clone())),
            ("lost-wakeup", None),
        ] {
            let mut by = BTreeMap::new();
            by.insert(Checker::Loom, Some(kill.clone()));
            by.insert(Checker::Spec, spec);
            kills.insert(m.to_string(), by);
        }
        let mut rep = report(None);
        rep.kills = Some(kills);
        let md = rep.markdown();
        let row = |m: &str| {
            md.lines()
                .find(|l| l.starts_with(&format!("| {m} |")))
                .unwrap_or("")
                .to_string()
        };
        assert!(
            row("relaxed-ordering").ends_with(" no counterpart |"),
            "{}",
            row("relaxed-ordering")
        );
        assert!(
            row("lost-wakeup").ends_with(" survived |"),
            "{}",
            row("lost-wakeup")
        );
        assert!(
            row("deregister-no-wait").ends_with("killed: protocol-spec P2 (10 exec, 0.50s) |"),
            "{}",
            row("deregister-no-wait")
        );
        assert!(md.contains("Both directions of the specification"));
        assert!(!rep
            .docs_markdown()
            .contains("Both directions of the specification"),);
        assert!(rep.docs_markdown().contains(
            "**spec**: stateright on the bug written into the specification (**no counterpart**"
        ),);
        // report.md lists each killed cell's replay; the docs leave them to report.md.
        assert!(
            md.contains("- deregister-no-wait / spec: `spec_check`"),
            "{md}"
        );
        let docs = rep.docs_markdown();
        assert!(!docs.contains("/ spec: `"), "{docs}");
        assert!(
            docs.contains("one replay command per killed cell"),
            "{docs}"
        );
        // The docs' cells name what failed; survivors read as in report.md.
        let docs_row = |m: &str| {
            docs.lines()
                .find(|l| l.starts_with(&format!("| {m} |")))
                .unwrap_or("")
                .to_string()
        };
        assert!(
            docs_row("deregister-no-wait").ends_with(" | P2 | P2 |"),
            "{}",
            docs_row("deregister-no-wait")
        );
        assert!(docs_row("relaxed-ordering").ends_with(" | P2 | no counterpart |"));
        assert!(docs_row("lost-wakeup").ends_with(" | P2 | survived |"));
        assert_eq!(
            md.split("## Per checker")
                .nth(1)
                .and_then(|t| t.split("## Shuttle: PCT").next()),
            docs.split("## Per checker")
                .nth(1)
                .and_then(|t| t.split("## Shuttle: PCT").next()),
            "the per-checker totals are the same"
        );
        assert!(md.contains("| mutant | scenario | n | k |"), "{md}");
        assert!(!docs.contains("| mutant | scenario | n | k |"), "{docs}");
        assert!(docs.contains("PCT (depth 3) found 0 of"), "{docs}");
    }

    #[test]
    fn a_cell_no_check_reached_says_so() {
        let mut by = BTreeMap::new();
        by.insert(Checker::Loom, None);
        by.insert(Checker::Std, None);
        let mut rep = report(None);
        rep.kills = Some(BTreeMap::from([("lost-wakeup".to_string(), by)]));
        rep.unreached =
            BTreeMap::from([("lost-wakeup".to_string(), BTreeSet::from([Checker::Std]))]);
        rep.reach = Some(ReachSummary {
            seconds: 90.0,
            runs: 40,
            skipped: 25,
        });
        let md = rep.markdown();
        assert!(
            md.contains("| lost-wakeup | deregister tests the count outside its lock, then sleeps (lost wake-up) | survived | survived (not reached) |"),
            "{md}"
        );
        assert!(md.contains("25 of 40 check runs skipped"), "{md}");
        // The docs say the rule in one sentence, with the same figures.
        let docs = rep.docs_markdown();
        assert!(
            docs.contains("(90 s) never reached a mutant's code cannot kill it and was skipped (25 of 40 runs); **survived (not reached)**"),
            "{docs}"
        );
        assert!(
            docs.contains("| survived | survived (not reached) |"),
            "{docs}"
        );
        assert!(!docs.contains("Before the mutants"), "{docs}");
    }

    #[test]
    fn a_docs_cell_names_what_failed_first() {
        let kill = |property: Option<&str>| Kill {
            scenario: "s".into(),
            property: property.map(str::to_string),
            executions: 10,
            seconds: 0.5,
            replay: "x".into(),
            strategies: Vec::new(),
        };
        let mut rep = report(None);
        let failing = |checker: Checker, text: &str| Record {
            checker,
            scenario: "s".into(),
            mutant: Some("lost-wakeup".into()),
            verdict: Verdict::Fail,
            failure: Some(Failure {
                property: None,
                report: text.into(),
                replay: "x".into(),
            }),
            ..rep.records[0].clone()
        };
        rep.records = vec![
            failing(
                Checker::Loom,
                "  the checker reports: TRACE DIVERGES FROM THE SPECIFICATION at step 3",
            ),
            failing(
                Checker::Proptest,
                "the state machine found a divergence from the reference model",
            ),
            failing(
                Checker::GenLoom,
                "the check process ended during this tier run without writing its record",
            ),
        ];
        let label = |c: Checker, p: Option<&str>| rep.kill_label("lost-wakeup", c, &kill(p));
        assert_eq!(label(Checker::Shuttle, Some("P4")), "P4");
        assert_eq!(
            label(Checker::Proptest, Some("P3 (no thread can make progress)")),
            "P3"
        );
        assert_eq!(label(Checker::Std, Some("P3 (hung or crashed)")), "P3 hung");
        assert_eq!(
            label(
                Checker::Spec,
                Some("liveness (every queued item is delivered)")
            ),
            "liveness"
        );
        assert_eq!(label(Checker::Trace, Some("divergence on s")), "div.");
        assert_eq!(label(Checker::Loom, None), "div.");
        assert_eq!(label(Checker::Proptest, None), "model");
        assert_eq!(label(Checker::GenLoom, None), "abort");
        assert_eq!(
            label(Checker::Shuttle, None),
            "killed",
            "no record tells more"
        );
        // In a matrix: report.md keeps scenario, executions and seconds, the docs the label.
        let mut by = BTreeMap::new();
        by.insert(Checker::Loom, Some(kill(None)));
        by.insert(Checker::Std, None);
        rep.kills = Some(BTreeMap::from([("lost-wakeup".to_string(), by)]));
        rep.unreached =
            BTreeMap::from([("lost-wakeup".to_string(), BTreeSet::from([Checker::Std]))]);
        let row = "| lost-wakeup | deregister tests the count outside its lock, then sleeps (lost wake-up) |";
        assert!(
            rep.markdown().contains(&format!(
                "{row} killed: s  (10 exec, 0.50s) | survived (not reached) |"
            )),
            "{}",
            rep.markdown()
        );
        let docs = rep.docs_markdown();
        assert!(
            docs.contains(&format!("{row} div. | survived (not reached) |")),
            "{docs}"
        );
        assert!(docs.contains("**div.** a trace diverging"), "{docs}");
    }
}

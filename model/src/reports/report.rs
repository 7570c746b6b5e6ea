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

/// Where a kill matrix's replay commands go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Detail {
    /// report.md: every check, the PCT table, one replay command per killed cell.
    Full,
    /// The docs: the exhaustive checks and per-checker totals, the PCT table's
    /// conclusion, replays left to the run's report.md.
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
    /// so do the sampled checks' rows and the PCT table (the docs keep totals and the
    /// conclusion).
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
        let _ = writeln!(out, "## What was proved and what was sampled\n");
        let _ = writeln!(out, "Loom rows are **proofs within their bound**: every interleaving of the scenario's threads up to the stated number of preemptions (or all of them, when unbounded) was explored under the C11 memory model, on the shipped library. Shuttle, std and proptest rows are **samples**: the schedules or cases named, no more; a pass there is evidence, not proof.\n");
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
                .records
                .iter()
                .filter(|r| r.spec.is_none() && r.checker != Checker::Spec && r.programs.is_empty())
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
        self.spec_markdown(&mut out);
        out.push_str(&self.programs_markdown());
        let _ = writeln!(out, "\n## Every check\n");
        if detail == Detail::Docs {
            self.checker_totals(&mut out);
            let _ = writeln!(out, "The exhaustive checks and any that failed, one row each (the sampled checks' rows, with their samples: the run's report.md):\n");
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
            records.retain(|r| r.exhaustive || r.verdict != Verdict::Pass);
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

    /// Generated programs, one row per checker and tier, summed over the chunks run.
    fn programs_markdown(&self) -> String {
        let mut out = String::new();
        // (checker, method) -> (raw, live, symmetric, chunks, programs, executions, seconds, failed)
        type Sums = (u64, u64, u64, usize, u64, u64, f64, bool);
        let mut tiers: BTreeMap<(Checker, String), Sums> = BTreeMap::new();
        for r in &self.records {
            for t in &r.programs {
                let e = tiers.entry((r.checker, t.method.clone())).or_default();
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
        let _ = writeln!(out, "Every property P1-P6, P8 and P9 and the results oracle, judged on programs the gate generated rather than wrote (docs/VERIFICATION.md, \"Generated programs\"). gen-loom rows are **proofs within their bound** for every program of the tier, after removing programs with dead parts and keeping one per symmetry orbit; gen-shuttle rows are samples. Sizes are TxK-cC-hH: threads x operations per thread, clients, hubs, each at most.\n");
        let _ = writeln!(out, "| checker | tier | programs (raw / live / after symmetry) | chunks run | programs run | executions | seconds | executions/s | verdict |");
        let _ = writeln!(out, "|---|---|---|---:|---:|---:|---:|---:|---|");
        for ((checker, method), (raw, live, sym, chunks, run, execs, secs, failed)) in tiers {
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
        let _ = writeln!(out, "Each cell: killed by which scenario, the property that failed, executions and seconds to the first failure; or survived. A mutant must be killed by at least one checker.\n");
        if let Some(r) = &self.reach {
            let _ = writeln!(out, "Before the mutants, every check ran once on the shipped code ({:.0} s) and recorded which mutants' code it reached (the mutant's hook consulted). A check that never reaches a mutant's code runs the same executions with it switched on, so it cannot kill it and was not run against it: {} of {} check runs skipped. **survived (not reached)**: no check of that checker reached the mutant's code. For std (real threads) reach is sampled like its verdicts.\n", r.seconds, r.skipped, r.runs);
        }
        if checkers
            .iter()
            .any(|c| *c == Checker::Spec || *c == Checker::Trace)
        {
            let _ = writeln!(out, "Both directions of the specification: the **spec** column is stateright on the spec mutant of the same bug family (the bug written into the specification; executions are unique states to the counterexample; no counterpart: the specification is sequentially consistent), and the **trace** column is trace validation alone (the monitors not consulted) on random shuttle schedules of the mutated code.\n");
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
    }

    #[test]
    fn the_docs_keep_exhaustive_and_failing_rows_and_every_checkers_totals() {
        let mut rep = report(None);
        let base = rep.records[0].clone();
        rep.records.push(Record {
            checker: Checker::Loom,
            exhaustive: true,
            executions: 19,
            ..base.clone()
        });
        let row = |checker: &str| format!("| dispatch-vs-deregister | small | P2 | {checker} |");
        let (md, docs) = (rep.markdown(), rep.docs_markdown());
        assert!(
            md.contains(&row("shuttle")) && md.contains(&row("loom")),
            "{md}"
        );
        assert!(
            !docs.contains(&row("shuttle")) && docs.contains(&row("loom")),
            "{docs}"
        );
        assert!(docs.contains("| shuttle | 1 | 3 | 0 |"), "{docs}");
        assert!(docs.contains("| loom | 1 | 19 | 0 |"), "{docs}");
        // A failing sampled check keeps its row in the docs.
        let mut failing = report(None);
        failing.records[0].verdict = Verdict::Fail;
        assert!(failing.docs_markdown().contains(&row("shuttle")));
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
        // Up to the PCT table the two are the same; the docs keep only its conclusion.
        assert_eq!(
            md.split("## Shuttle: PCT").next(),
            docs.split("## Shuttle: PCT").next()
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
    }
}

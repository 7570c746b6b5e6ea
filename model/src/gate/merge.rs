//! `gate merge DIR...`: the reports of a sharded run (`--shard I/N`, one per CI job)
//! merged into the report of the whole run, in the same three formats.
//!
//! Merging refuses what would make the merged report lie: shards of different profiles or
//! kinds (checks and kill matrix), a shard missing or given twice, or a check reported by
//! two shards. The merged wall time is the slowest shard's (the shards run side by side).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::checks::{verdict, write_reports};
use super::{parse_shard, Options};
use crate::base::checker::Checker;
use crate::reports::report::{Kill, Report};

/// The report in `dir` (a directory holding `report.json`, or the file itself).
pub fn read_report(dir: &Path) -> Result<Report, String> {
    let path = if dir.is_dir() {
        dir.join("report.json")
    } else {
        dir.to_path_buf()
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{} is not a gate report: {e}", path.display()))
}

/// Checks that the shards are `1/N` .. `N/N`, each once; returns them in order.
fn shard_set(reports: &[Report]) -> Result<Vec<String>, String> {
    if reports.len() == 1 && reports[0].shard.is_none() {
        return Ok(Vec::new());
    }
    let mut seen = BTreeSet::new();
    let mut total = None;
    for r in reports {
        let shard = r
            .shard
            .as_deref()
            .ok_or("an unsharded report cannot be merged with others")?;
        let (i, n) = parse_shard(shard)
            .ok_or_else(|| format!("a report names the malformed shard `{shard}`"))?;
        if *total.get_or_insert(n) != n {
            return Err(format!(
                "shards of different splits: {shard} and one of {}",
                total.unwrap_or(n)
            ));
        }
        if !seen.insert(i) {
            return Err(format!("shard {shard} is given twice"));
        }
    }
    let n = total.unwrap_or(0);
    let absent: Vec<String> = (1..=n)
        .filter(|i| !seen.contains(i))
        .map(|i| format!("{i}/{n}"))
        .collect();
    if !absent.is_empty() {
        return Err(format!("shard {} is missing: a merged report of part of a run would pass what it did not check", absent.join(", ")));
    }
    Ok((1..=n).map(|i| format!("{i}/{n}")).collect())
}

/// The faster of two kills (a kill beats none).
fn faster(a: Option<Kill>, b: Option<Kill>) -> Option<Kill> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.seconds < a.seconds { b } else { a }),
        (a, b) => a.or(b),
    }
}

/// Merges the reports of every shard of one run. `command` is the merge's own command.
pub fn merge(reports: Vec<Report>, command: String) -> Result<Report, String> {
    let first = reports
        .first()
        .ok_or("nothing to merge: name the shards' report directories")?;
    let profile = first.profile.clone();
    let mutants = first.kills.is_some();
    if let Some(r) = reports.iter().find(|r| r.profile != profile) {
        return Err(format!(
            "shards of different profiles: {profile} and {}",
            r.profile
        ));
    }
    if reports.iter().any(|r| r.kills.is_some() != mutants) {
        return Err("a kill matrix cannot be merged with a run of the checks".into());
    }
    let merged = shard_set(&reports)?;
    let mut keys = BTreeSet::new();
    let mut out = Report {
        command,
        profile,
        shard: None,
        seconds: 0.0,
        records: Vec::new(),
        missing: Vec::new(),
        kills: mutants.then(Default::default),
        merged,
        unreached: Default::default(),
        reach: None,
    };
    // A cell is unreached only where no shard's checks reached the mutant.
    let mut unreached: Option<BTreeMap<String, BTreeSet<Checker>>> = None;
    for r in reports {
        out.seconds = out.seconds.max(r.seconds);
        unreached = Some(match unreached {
            None => r.unreached,
            Some(u) => u
                .into_iter()
                .filter_map(|(m, cs)| {
                    let both: BTreeSet<Checker> = r
                        .unreached
                        .get(&m)
                        .map(|o| cs.intersection(o).copied().collect())
                        .unwrap_or_default();
                    (!both.is_empty()).then_some((m, both))
                })
                .collect(),
        });
        if let Some(reach) = r.reach {
            let sum = out.reach.get_or_insert_with(Default::default);
            sum.seconds = sum.seconds.max(reach.seconds);
            sum.runs += reach.runs;
            sum.skipped += reach.skipped;
        }
        for rec in r.records {
            if !keys.insert((rec.checker, rec.scenario.clone(), rec.mutant.clone())) {
                return Err(format!(
                    "two shards report {} {}{}",
                    rec.checker,
                    rec.scenario,
                    rec.mutant
                        .as_ref()
                        .map(|m| format!(" against {m}"))
                        .unwrap_or_default()
                ));
            }
            out.records.push(rec);
        }
        out.missing.extend(r.missing);
        if let (Some(all), Some(kills)) = (out.kills.as_mut(), r.kills) {
            for (mutant, by) in kills {
                let row = all.entry(mutant).or_default();
                for (checker, kill) in by {
                    let now = row.remove(&checker).flatten();
                    row.insert(checker, faster(now, kill));
                }
            }
        }
    }
    out.unreached = unreached.unwrap_or_default();
    out.records.sort_by(|a, b| {
        (&a.checker, &a.scenario, &a.mutant).cmp(&(&b.checker, &b.scenario, &b.mutant))
    });
    out.missing.sort();
    Ok(out)
}

/// `gate merge DIR...`: writes the merged report to the report directory and exits with
/// its verdict (2 when the shards cannot be merged).
pub fn run(dirs: &[PathBuf], opts: &Options, root: &Path) -> ExitCode {
    let reports: Result<Vec<Report>, String> = dirs.iter().map(|d| read_report(d)).collect();
    let command = format!(
        "cargo run --release -p usbpm-model --bin gate -- merge {}",
        dirs.iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let report = match reports.and_then(|r| merge(r, command)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("gate merge: {e}");
            return ExitCode::from(2);
        }
    };
    let dir = root.join(&opts.report_dir);
    let md = write_reports(&dir, &report);
    println!("{md}");
    println!(
        "Reports: {}/report.md, report.json, junit.xml",
        dir.display()
    );
    verdict(&report)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::base::checker::Checker;
    use crate::checkers::check::Verdict;
    use crate::gate::records::tests::record;

    fn shard(s: &str, records: Vec<crate::checkers::check::Record>) -> Report {
        Report {
            command: format!("gate full --shard {s}"),
            profile: "full".into(),
            shard: Some(s.into()),
            seconds: 10.0,
            records,
            missing: Vec::new(),
            kills: None,
            merged: Vec::new(),
            unreached: Default::default(),
            reach: None,
        }
    }

    #[test]
    fn shards_merge_into_the_whole_run() {
        let mut a = shard(
            "1/2",
            vec![record(Checker::Loom, "handle-reuse", Verdict::Pass)],
        );
        a.seconds = 30.0;
        let mut b = shard(
            "2/2",
            vec![record(Checker::Loom, "double-deregister", Verdict::Pass)],
        );
        b.missing.push("std__churn-4x3x20".into());
        let m = merge(vec![b, a], "gate merge".into()).expect("mergeable");
        assert_eq!(m.merged, vec!["1/2".to_string(), "2/2".to_string()]);
        assert_eq!(m.shard, None);
        assert_eq!(m.seconds, 30.0, "the slowest shard");
        let names: Vec<&str> = m.records.iter().map(|r| r.scenario.as_str()).collect();
        assert_eq!(names, vec!["double-deregister", "handle-reuse"]);
        assert!(
            !m.passed(),
            "a check that left no record in any shard fails the whole"
        );
        assert!(m.markdown().contains("merged from shards 1/2, 2/2"));
    }

    #[test]
    fn a_failure_in_one_shard_fails_the_merge() {
        let a = shard(
            "1/2",
            vec![record(Checker::Loom, "handle-reuse", Verdict::Pass)],
        );
        let b = shard(
            "2/2",
            vec![record(Checker::Std, "handle-reuse", Verdict::Fail)],
        );
        assert!(!merge(vec![a, b], String::new()).unwrap().passed());
        let a = shard(
            "1/2",
            vec![record(Checker::Loom, "handle-reuse", Verdict::Pass)],
        );
        let b = shard(
            "2/2",
            vec![record(Checker::Std, "handle-reuse", Verdict::Pass)],
        );
        assert!(merge(vec![a, b], String::new()).unwrap().passed());
    }

    #[test]
    fn incomplete_or_inconsistent_shards_are_refused() {
        let err = |v: Vec<Report>| merge(v, String::new()).err().unwrap_or_default();
        assert!(err(vec![]).contains("nothing to merge"));
        assert!(
            err(vec![shard("1/3", vec![]), shard("3/3", vec![])]).contains("shard 2/3 is missing")
        );
        assert!(err(vec![shard("1/2", vec![]), shard("1/2", vec![])]).contains("given twice"));
        assert!(err(vec![shard("1/2", vec![]), shard("2/3", vec![])]).contains("different splits"));
        let mut quick = shard("2/2", vec![]);
        quick.profile = "quick".into();
        assert!(err(vec![shard("1/2", vec![]), quick]).contains("different profiles"));
        let twice = || vec![record(Checker::Loom, "handle-reuse", Verdict::Pass)];
        assert!(err(vec![shard("1/2", twice()), shard("2/2", twice())])
            .contains("two shards report loom handle-reuse"));
        let mut whole = shard("1/2", vec![]);
        whole.shard = None;
        assert!(err(vec![whole, shard("2/2", vec![])]).contains("unsharded"));
    }

    #[test]
    fn one_unsharded_report_merges_into_itself() {
        let mut whole = shard(
            "1/1",
            vec![record(Checker::Loom, "handle-reuse", Verdict::Pass)],
        );
        whole.shard = None;
        let m = merge(vec![whole], String::new()).expect("mergeable");
        assert!(m.merged.is_empty() && m.records.len() == 1);
    }

    #[test]
    fn kill_matrices_keep_each_checkers_fastest_kill() {
        let kill = |scenario: &str, seconds: f64| Kill {
            scenario: scenario.into(),
            property: Some("P2".into()),
            executions: 1,
            seconds,
            replay: String::new(),
            strategies: Vec::new(),
        };
        let matrix = |loom: Option<Kill>, std: Option<Kill>| {
            let mut by = BTreeMap::new();
            by.insert(Checker::Loom, loom);
            by.insert(Checker::Std, std);
            Some(BTreeMap::from([("lost-wakeup".to_string(), by)]))
        };
        let mut a = shard("1/2", vec![]);
        a.kills = matrix(Some(kill("slow", 5.0)), None);
        let mut b = shard("2/2", vec![]);
        b.kills = matrix(Some(kill("fast", 1.0)), None);
        // std reached the mutant in neither shard, loom only in one: only std's cell is
        // unreached in the whole run.
        let unreached = |cs: &[Checker]| {
            BTreeMap::from([("lost-wakeup".to_string(), cs.iter().copied().collect())])
        };
        a.unreached = unreached(&[Checker::Std, Checker::Loom]);
        b.unreached = unreached(&[Checker::Std]);
        let m = merge(vec![a, b], String::new()).expect("mergeable");
        assert_eq!(m.unreached, unreached(&[Checker::Std]));
        let row = &m.kills.as_ref().expect("a kill matrix")["lost-wakeup"];
        assert_eq!(
            row[&Checker::Loom].as_ref().map(|k| k.scenario.as_str()),
            Some("fast")
        );
        assert!(row[&Checker::Std].is_none());
        assert!(m.passed(), "the mutant is killed by one checker");
        let mut c = shard("2/2", vec![]);
        c.kills = None;
        let mut d = shard("1/2", vec![]);
        d.kills = matrix(None, None);
        assert!(
            merge(vec![c, d], String::new()).is_err(),
            "a kill matrix and a checks run do not merge"
        );
    }

    #[test]
    fn a_report_round_trips_through_json() {
        let dir = crate::gate::records::tests::scratch("merge-read");
        let r = shard(
            "1/2",
            vec![record(Checker::Loom, "handle-reuse", Verdict::Pass)],
        );
        std::fs::write(dir.join("report.json"), serde_json::to_string(&r).unwrap()).unwrap();
        let back = read_report(&dir).expect("readable");
        assert_eq!(
            (back.shard.as_deref(), back.records.len()),
            (Some("1/2"), 1)
        );
        assert!(read_report(&dir.join("nothing"))
            .unwrap_err()
            .contains("cannot read"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

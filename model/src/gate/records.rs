//! What the checks leave in a results directory: `records/KEY.json`, one per finished
//! check, `progress/KEY`, written while a check runs ("executions seconds"), and
//! `pending/KEY.json`, a generated-programs check's provisional record (a failure at the
//! tier run it was in), removed when the check ends. A check with progress and no record
//! crashed or was terminated; if it left a provisional record, that is its verdict.

use std::collections::BTreeSet;
use std::path::Path;

use crate::checkers::check::Record;

/// The finished checks' records under `results` (what a live display shows), and the keys
/// of the checks that started but left none.
pub fn read_records(results: &Path) -> (Vec<Record>, Vec<String>) {
    read(results, false)
}

/// What a run's verdict is made of, once every check has ended: the records, and for a
/// check that left none but a provisional record (it aborted during a tier run), that.
pub fn read_final_records(results: &Path) -> (Vec<Record>, Vec<String>) {
    read(results, true)
}

fn read(results: &Path, with_pending: bool) -> (Vec<Record>, Vec<String>) {
    let mut records = Vec::new();
    let mut have = BTreeSet::new();
    let dirs: &[&str] = if with_pending {
        &["records", "pending"]
    } else {
        &["records"]
    };
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(results.join(dir)) else {
            continue;
        };
        for e in entries.flatten() {
            if let Some(r) = std::fs::read_to_string(e.path())
                .ok()
                .and_then(|t| serde_json::from_str::<Record>(&t).ok())
            {
                if have.insert(Record::key(r.checker, &r.scenario)) {
                    records.push(r);
                }
            }
        }
    }
    let mut missing = Vec::new();
    if let Ok(entries) = std::fs::read_dir(results.join("progress")) {
        for e in entries.flatten() {
            let key = e
                .path()
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_default();
            if !have.contains(&key) {
                missing.push(key);
            }
        }
    }
    missing.sort();
    (records, missing)
}

/// A running check's progress line ("executions seconds") as shown live.
pub fn progress_line(key: &str, text: &str) -> Option<String> {
    let mut it = text.split_whitespace();
    let (execs, secs) = (it.next()?, it.next()?);
    let name = key.replace("__", " ");
    Some(if execs == "0" {
        format!("{name} starting")
    } else {
        format!("{name} {execs} exec {secs}s")
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::base::checker::Checker;
    use crate::checkers::check::{Profile, Verdict};

    /// A record as a check would write it.
    pub(crate) fn record(checker: Checker, scenario: &str, verdict: Verdict) -> Record {
        Record {
            checker,
            scenario: scenario.into(),
            mutant: None,
            profile: Profile::Quick,
            verdict,
            exhaustive: checker == Checker::Loom,
            method: "unbounded".into(),
            executions: 7,
            seconds: 0.5,
            properties: vec!["P1".into()],
            failure: None,
            strategies: Vec::new(),
            spec: None,
            programs: Vec::new(),
            reached: None,
        }
    }

    /// A scratch directory under the target dir, empty.
    pub(crate) fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("usbpm-gate-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        dir
    }

    #[test]
    fn a_check_with_progress_and_no_record_is_missing() {
        let dir = scratch("records");
        std::fs::create_dir_all(dir.join("records")).unwrap();
        std::fs::create_dir_all(dir.join("progress")).unwrap();
        let done = record(Checker::Loom, "double-deregister", Verdict::Pass);
        std::fs::write(
            dir.join("records/loom__double-deregister.json"),
            serde_json::to_string(&done).unwrap(),
        )
        .unwrap();
        std::fs::write(dir.join("records/garbage.json"), "{ not a record").unwrap();
        std::fs::write(dir.join("progress/loom__double-deregister"), "7 0.5").unwrap();
        std::fs::write(dir.join("progress/std__handle-reuse"), "100 2.0").unwrap();
        let (records, missing) = read_records(&dir);
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].scenario, "double-deregister");
        assert_eq!(missing, vec!["std__handle-reuse".to_string()]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_provisional_record_counts_only_in_the_verdict_and_only_without_a_record() {
        let dir = scratch("pending");
        for sub in ["records", "pending", "progress"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let write = |path: &str, r: &Record| {
            std::fs::write(dir.join(path), serde_json::to_string(r).unwrap()).unwrap();
        };
        // chunk-01 aborted (only its provisional record); chunk-02 finished and passed.
        write(
            "pending/gen-loom__chunk-01.json",
            &record(Checker::GenLoom, "chunk-01", Verdict::Fail),
        );
        write(
            "pending/gen-loom__chunk-02.json",
            &record(Checker::GenLoom, "chunk-02", Verdict::Fail),
        );
        write(
            "records/gen-loom__chunk-02.json",
            &record(Checker::GenLoom, "chunk-02", Verdict::Pass),
        );
        std::fs::write(dir.join("progress/gen-loom__chunk-01"), "5 0.1").unwrap();
        let (live, missing) = read_records(&dir);
        assert_eq!(live.len(), 1);
        assert_eq!(missing, vec!["gen-loom__chunk-01".to_string()]);
        let (mut done, missing) = read_final_records(&dir);
        done.sort_by(|a, b| a.scenario.cmp(&b.scenario));
        let verdicts: Vec<_> = done
            .iter()
            .map(|r| (r.scenario.as_str(), r.verdict))
            .collect();
        assert_eq!(
            verdicts,
            vec![("chunk-01", Verdict::Fail), ("chunk-02", Verdict::Pass)]
        );
        assert!(missing.is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_absent_directory_has_nothing() {
        let (records, missing) = read_records(Path::new("/nonexistent/usbpm-gate"));
        assert!(records.is_empty() && missing.is_empty());
    }

    #[test]
    fn progress_lines_say_starting_before_the_first_execution() {
        assert_eq!(
            progress_line("loom__handle-reuse", "0 0.01").as_deref(),
            Some("loom handle-reuse starting")
        );
        assert_eq!(
            progress_line("std__handle-reuse", "120 3.4").as_deref(),
            Some("std handle-reuse 120 exec 3.4s")
        );
        assert_eq!(progress_line("std__handle-reuse", ""), None);
    }
}

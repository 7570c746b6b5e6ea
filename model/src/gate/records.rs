//! What the checks leave in a results directory: `records/KEY.json`, one per finished
//! check, and `progress/KEY`, written while a check runs ("executions seconds"). A check
//! with progress and no record crashed or was terminated.

use std::collections::BTreeSet;
use std::path::Path;

use crate::checkers::check::Record;

/// The records under `results`, and the keys of the checks that started but left none.
pub fn read_records(results: &Path) -> (Vec<Record>, Vec<String>) {
    let mut records = Vec::new();
    let mut have = BTreeSet::new();
    if let Ok(entries) = std::fs::read_dir(results.join("records")) {
        for e in entries.flatten() {
            if let Some(r) = std::fs::read_to_string(e.path())
                .ok()
                .and_then(|t| serde_json::from_str::<Record>(&t).ok())
            {
                have.insert(Record::key(r.checker, &r.scenario));
                records.push(r);
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

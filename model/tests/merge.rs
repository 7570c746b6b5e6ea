//! `gate merge` against the real gate: a full-profile run split into two shards and
//! merged has the same checks, with the same results and verdict, as the run unsharded.
//! Kept cheap by a filter (loom on the scenarios it proves in well under a second); the
//! shards, the merge and the comparison are the ones CI's matrix makes.
#![cfg(not(any(feature = "loom", feature = "shuttle")))]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use usbpm_model::gate::merge::read_report;
use usbpm_model::reports::report::Report;

const SCENARIOS: &[&str] = &[
    "deregister-own-callback",
    "dispatch-vs-deregister",
    "double-deregister",
    "handle-reuse",
    "panicking-callback",
    "removal-vs-register",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("model/ has a parent")
        .to_path_buf()
}

/// Runs the gate with `args`, the filter and `--report-dir dir`; returns its exit code.
fn gate(args: &[&str], dir: &Path) -> i32 {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gate"));
    cmd.current_dir(root())
        .args(args)
        .arg("--report-dir")
        .arg(dir);
    if args.first() != Some(&"merge") {
        cmd.args(["--checker", "loom"]);
        for s in SCENARIOS {
            cmd.args(["--scenario", s]);
        }
    }
    let status = cmd.status().expect("run the gate");
    status.code().expect("the gate exits with a code")
}

/// What must agree between the two runs: every check and its result (passed or not,
/// method, executions: loom explores deterministically).
fn checks(r: &Report) -> BTreeSet<String> {
    r.records
        .iter()
        .map(|c| {
            format!(
                "{} {} {:?} {:?} {} {} exhaustive={}",
                c.checker, c.scenario, c.mutant, c.verdict, c.method, c.executions, c.exhaustive
            )
        })
        .collect()
}

#[test]
fn two_shards_merged_are_the_unsharded_run() {
    let base = root().join("target").join("gate-merge-test");
    let (whole, one, two, merged) = (
        base.join("whole"),
        base.join("shard-1"),
        base.join("shard-2"),
        base.join("merged"),
    );
    assert_eq!(gate(&["full"], &whole), 0, "the unsharded run passes");
    assert_eq!(gate(&["full", "--shard", "1/2"], &one), 0);
    assert_eq!(gate(&["full", "--shard", "2/2"], &two), 0);
    let (whole_r, one_r, two_r) = (
        read_report(&whole).unwrap(),
        read_report(&one).unwrap(),
        read_report(&two).unwrap(),
    );
    assert_eq!(
        checks(&whole_r).len(),
        SCENARIOS.len(),
        "every selected check ran once"
    );
    assert!(
        !one_r.records.is_empty() && !two_r.records.is_empty(),
        "each shard ran part of the checks"
    );
    assert!(
        checks(&one_r).is_disjoint(&checks(&two_r)),
        "no check ran in both shards"
    );

    assert_eq!(
        gate(
            &["merge", one.to_str().unwrap(), two.to_str().unwrap()],
            &merged
        ),
        0,
        "the merge passes"
    );
    let merged_r = read_report(&merged).unwrap();
    assert_eq!(checks(&merged_r), checks(&whole_r));
    assert_eq!(merged_r.passed(), whole_r.passed());
    assert_eq!(merged_r.merged, vec!["1/2".to_string(), "2/2".to_string()]);
    for file in ["report.md", "junit.xml"] {
        assert!(merged.join(file).is_file(), "{file} written");
    }
    let junit = std::fs::read_to_string(merged.join("junit.xml")).unwrap();
    assert_eq!(junit.matches("<testcase ").count(), SCENARIOS.len());

    // A shard's report alone is not the whole run.
    assert_eq!(
        gate(&["merge", one.to_str().unwrap()], &base.join("partial")),
        2,
        "a missing shard is refused"
    );
}

//! `gate test` (the project's test suites, as the README and CI run them) and
//! `gate check-docs` (are the reports embedded in docs/VERIFICATION.md current?).

use std::path::Path;
use std::process::{Command, ExitCode};

use super::{exit_code, VERIFICATION_MD};
use crate::base::checker::Checker;
use crate::reports::docs::{fingerprint, recorded};

/// The cargo commands of `gate test`, in order: the workspace's tests, then the loom
/// and shuttle test binaries the gate's checkers run, scenarios and generated programs,
/// and trace validation's own tests (see [`Checker::cargo_args`]).
pub fn suites() -> Vec<Vec<&'static str>> {
    let mut suites = vec![vec!["test", "--workspace"]];
    for checker in [
        Checker::Loom,
        Checker::Shuttle,
        Checker::GenLoom,
        Checker::GenShuttle,
        Checker::Trace,
    ] {
        suites.push([&["test"][..], checker.cargo_args()].concat());
    }
    suites
}

/// Runs every suite, then `check-docs`; stops at the first failure.
pub fn run_tests(root: &Path) -> ExitCode {
    for args in suites() {
        eprintln!("gate test: cargo {}", args.join(" "));
        let ok = Command::new("cargo")
            .args(&args)
            .current_dir(root)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("gate test: FAILED: cargo {}", args.join(" "));
            return ExitCode::from(1);
        }
    }
    if check_docs(root) != ExitCode::SUCCESS {
        eprintln!("gate test: FAILED: the reports in {VERIFICATION_MD} are stale");
        return ExitCode::from(1);
    }
    eprintln!("gate test: all suites passed");
    ExitCode::SUCCESS
}

/// The state of one generated section of the docs against the sources' fingerprint `now`:
/// `Ok(message)` when current, `Err(message)` when stale or absent.
pub fn section_status(
    doc: &str,
    section: &str,
    regenerate: &str,
    now: &str,
) -> Result<String, String> {
    match recorded(doc, section) {
        Some(f) if f == now => Ok(format!("the {section} section is current (sources {now})")),
        Some(f) => Err(format!("the {section} section of {VERIFICATION_MD} is stale: generated from sources {f}, the sources are now {now}; regenerate it with `{regenerate}` (or every section: `gate regen`) and commit")),
        None => Err(format!("{VERIFICATION_MD} has no generated {section} section; run `{regenerate}`")),
    }
}

/// Fails if a report embedded in docs/VERIFICATION.md is stale.
pub fn check_docs(root: &Path) -> ExitCode {
    let doc = match std::fs::read_to_string(root.join(VERIFICATION_MD)) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("gate check-docs: cannot read {VERIFICATION_MD}: {e}");
            return ExitCode::from(1);
        }
    };
    let now = fingerprint(root);
    let mut ok = true;
    for s in crate::gate::regen::Section::ALL {
        let (section, regenerate) = (s.name(), s.command());
        match section_status(&doc, section, regenerate, &now) {
            Ok(msg) => println!("gate check-docs: {msg}"),
            Err(msg) => {
                ok = false;
                eprintln!("gate check-docs: {msg}");
                let changed = crate::reports::docs::changed_parts(&doc, section, root);
                if !changed.is_empty() {
                    eprintln!(
                        "gate check-docs: changed since the {section} section was generated: {} (comments and formatting do not count)",
                        changed.join(", ")
                    );
                }
            }
        }
    }
    exit_code(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_suites_build_the_checkers_test_binaries() {
        let s = suites();
        assert_eq!(s[0], vec!["test", "--workspace"]);
        assert_eq!(
            s[1],
            vec![
                "test",
                "--release",
                "-p",
                "usbpm-model",
                "--features",
                "loom",
                "--test",
                "loom"
            ]
        );
        assert_eq!(s[2][5..], ["shuttle", "--test", "shuttle"]);
    }

    #[test]
    fn a_section_is_current_stale_or_absent() {
        let doc = crate::reports::docs::embed(
            "<!-- gate:report:begin -->\n<!-- gate:report:end -->\n",
            "report",
            "abc",
            "# body\n",
        )
        .expect("markers");
        assert!(section_status(&doc, "report", "gate full --update-docs", "abc").is_ok());
        let stale = section_status(&doc, "report", "gate full --update-docs", "def").unwrap_err();
        assert!(
            stale.contains("stale") && stale.contains("gate full --update-docs"),
            "{stale}"
        );
        assert!(
            section_status(&doc, "mutants", "gate mutants --update-docs", "abc")
                .unwrap_err()
                .contains("no generated mutants section")
        );
    }
}

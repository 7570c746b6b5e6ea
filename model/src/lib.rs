//! The verification harness for usbpm: the shipped library, built on loom's, shuttle's or
//! std's primitives (by this crate's `loom` / `shuttle` features), driven through
//! [`scenarios`] and judged by [`monitor`]s. See docs/VERIFICATION.md.

#![deny(unsafe_code)]

pub mod check;
pub mod checker;
pub mod docs;
pub mod enumerate;
pub mod env;
pub mod exec;
pub mod gate;
pub mod generated;
pub mod history;
pub mod monitor;
pub mod oracle;
pub mod panics;
pub mod program;
pub mod report;
pub mod rt;
pub mod run;
pub mod scenarios;
pub mod spec_checks;
pub mod timeline;
pub mod trace;
pub mod verdict;

/// Emits one `#[test]` per scenario that runs it under `$checker` (a
/// [`checker::Checker`]; `small`: the loom-sized scenarios; `all`: every scenario), plus a
/// test that the list matches [`scenarios::ALL`], so a new scenario cannot be left out of
/// a checker by mistake.
#[macro_export]
macro_rules! scenario_checks {
    ($checker:expr, small) => {
        $crate::scenario_checks!(@emit $checker, $crate::scenarios::Size::Small, every_small_scenario_has_a_check;
            dispatch_vs_deregister: "dispatch-vs-deregister";
            two_dispatchers_vs_deregister: "two-dispatchers-vs-deregister";
            three_dispatchers_vs_deregister: "three-dispatchers-vs-deregister";
            register_vs_dispatch: "register-vs-dispatch";
            reentrant_callback: "reentrant-callback";
            deregister_own_callback: "deregister-own-callback";
            mutual_deregister: "mutual-deregister";
            panicking_callback: "panicking-callback";
            double_deregister: "double-deregister";
            handle_reuse: "handle-reuse";
            removal_vs_register: "removal-vs-register";
            rearrival_vs_drain: "rearrival-vs-drain";
            flood_one_hub: "flood-one-hub";
        );
    };
    ($checker:expr, all) => {
        $crate::scenario_checks!($checker, small);
        $crate::scenario_checks!(@emit $checker, $crate::scenarios::Size::Large, every_large_scenario_has_a_check;
            flood_churn_3x12: "flood-churn-3x12";
            churn_4x3x20: "churn-4x3x20";
        );
    };
    (@emit $checker:expr, $size:expr, $complete:ident; $($test:ident: $name:literal;)*) => {
        $(
            #[test]
            fn $test() {
                $crate::check::run_check($checker, $name);
            }
        )*
        #[test]
        fn $complete() {
            let listed: &[&str] = &[$($name),*];
            let want: Vec<&str> = $crate::scenarios::ALL.iter().filter(|s| s.size == $size).map(|s| s.name).collect();
            assert_eq!(listed, want.as_slice(), "the scenario_checks! list is out of step with scenarios::ALL");
        }
    };
}

/// The harness's layers, bottom first: a module may use only modules of lower layers
/// (ARCHITECTURE.md, "Who may use what"). The program language and the monitors are at the
/// bottom, the checkers above them, the records, reports and the gate on top.
#[cfg(test)]
const LAYERS: &[&[&str]] = &[
    &["checker"],
    &["rt", "panics", "program", "timeline", "docs"],
    &["monitor", "history", "enumerate"],
    &["verdict", "oracle", "env", "trace"],
    &["exec", "scenarios"],
    &["run"],
    &["generated"],
    &["check"],
    &["spec_checks"],
    &["report"],
    &["gate"],
];

#[cfg(test)]
mod layering {
    use super::LAYERS;

    fn layer(module: &str) -> usize {
        LAYERS
            .iter()
            .position(|l| l.contains(&module))
            .unwrap_or_else(|| panic!("module {module} is in no layer"))
    }

    #[test]
    fn modules_import_only_from_lower_layers() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files: Vec<(String, std::path::PathBuf)> = Vec::new();
        for entry in std::fs::read_dir(&src).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_stem().unwrap().to_string_lossy().to_string();
            if path.is_dir() && name == "gate" {
                for f in std::fs::read_dir(&path).unwrap() {
                    files.push(("gate".into(), f.unwrap().path()));
                }
            } else if path.extension().is_some_and(|e| e == "rs") && name != "lib" {
                files.push((name, path));
            }
        }
        let mut wrong = Vec::new();
        for (module, path) in files {
            let text = std::fs::read_to_string(&path).unwrap();
            for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
                for (i, _) in line.match_indices("crate::") {
                    let used: String = line[i + 7..]
                        .chars()
                        .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                        .collect();
                    if used != module && layer(&used) >= layer(&module) {
                        wrong.push(format!("{} uses crate::{used}", path.display()));
                    }
                }
            }
        }
        wrong.dedup();
        assert!(
            wrong.is_empty(),
            "imports against the layering:\n{}",
            wrong.join("\n")
        );
    }
}

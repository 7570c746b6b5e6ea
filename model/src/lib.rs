//! The verification harness for usbpm: the shipped library, built on loom's, shuttle's or
//! std's primitives (by this crate's `loom` / `shuttle` features), driven through
//! [`exec::scenarios`] and judged by [`judge::monitor`]s. See docs/VERIFICATION.md.
//!
//! The harness is in rooms, one folder of `src/` each, bottom first: [`base`] (the
//! checkers' names, panics, the harness's facade), [`lang`] (the program language),
//! [`judge`] (monitors, the results oracle, trace validation, verdicts), [`exec`]
//! (executions, scenarios, the program interpreter), [`checkers`] (the checkers run, one
//! check and its record), [`reports`] and [`gate`]. A module uses only rooms below its own
//! and, in its own room, modules below it (`LAYERS`, enforced by a test).

#![deny(unsafe_code)]

pub mod base;
pub mod checkers;
pub mod exec;
pub mod gate;
pub mod judge;
pub mod lang;
pub mod reports;

/// Emits one `#[test]` per scenario that runs it under `$checker` (a
/// [`base::checker::Checker`]; `small`: the loom-sized scenarios; `all`: every scenario), plus a
/// test that the list matches [`exec::scenarios::ALL`], so a new scenario cannot be left out of
/// a checker by mistake.
#[macro_export]
macro_rules! scenario_checks {
    ($checker:expr, small) => {
        $crate::scenario_checks!(@emit $checker, $crate::exec::scenarios::Size::Small, every_small_scenario_has_a_check;
            dispatch_vs_deregister: "dispatch-vs-deregister";
            two_dispatchers_vs_deregister: "two-dispatchers-vs-deregister";
            three_dispatchers_vs_deregister: "three-dispatchers-vs-deregister";
            register_vs_dispatch: "register-vs-dispatch";
            reentrant_callback: "reentrant-callback";
            deregister_own_callback: "deregister-own-callback";
            mutual_deregister: "mutual-deregister";
            detach_own_callback: "detach-own-callback";
            greeting_vs_arrival: "greeting-vs-arrival";
            shutdown_vs_dispatch: "shutdown-vs-dispatch";
            power_round_trip: "power-round-trip";
            power_vs_deregister: "power-vs-deregister";
            removal_queries: "removal-queries";
            callback_fills_queue: "callback-fills-queue";
            callback_producer: "callback-producer";
            callback_registers: "callback-registers";
            greeting_chain: "greeting-chain";
            panicking_callback: "panicking-callback";
            double_deregister: "double-deregister";
            handle_reuse: "handle-reuse";
            removal_vs_register: "removal-vs-register";
            rearrival_vs_drain: "rearrival-vs-drain";
            flood_one_hub: "flood-one-hub";
            deregister_ring_of_three: "deregister-ring-of-three";
        );
    };
    ($checker:expr, all) => {
        $crate::scenario_checks!($checker, small);
        $crate::scenario_checks!(@emit $checker, $crate::exec::scenarios::Size::Large, every_large_scenario_has_a_check;
            flood_churn_3x12: "flood-churn-3x12";
            churn_4x3x20: "churn-4x3x20";
        );
    };
    (@emit $checker:expr, $size:expr, $complete:ident; $($test:ident: $name:literal;)*) => {
        $(
            #[test]
            fn $test() {
                $crate::checkers::check::run_check($checker, $name);
            }
        )*
        #[test]
        fn $complete() {
            let listed: &[&str] = &[$($name),*];
            let want: Vec<&str> = $crate::exec::scenarios::ALL.iter().filter(|s| s.size == $size).map(|s| s.name).collect();
            assert_eq!(listed, want.as_slice(), "the scenario_checks! list is out of step with scenarios::ALL");
        }
    };
}

/// The harness's rooms (the folders of `src/`), bottom first, and each room's modules in
/// layers, bottom first (ARCHITECTURE.md, "Who may use what"). A module may use any module
/// of a lower room and, in its own room, only modules of lower layers. A room's `mod.rs`
/// (its declarations, and for `gate` what a gate run selects) is the bottom of its room.
#[cfg(test)]
const LAYERS: &[(&str, &[&[&str]])] = &[
    ("base", &[&["checker", "panics"], &["rt"]]),
    ("lang", &[&["program"], &["history", "enumerate"]]),
    (
        "judge",
        &[&["monitor", "stall"], &["verdict", "oracle", "trace"]],
    ),
    ("exec", &[&["env"], &["interpreter", "scenarios"]]),
    (
        "checkers",
        &[&["run"], &["generated"], &["check"], &["spec_checks"]],
    ),
    ("reports", &[&["timeline", "docs"], &["report"]]),
    (
        "gate",
        &[
            &["records", "loom_bounds", "lanes"],
            &["display"],
            &["nextest"],
            &["checks", "list", "loom_margins"],
            &["regen"],
            &["merge", "docs_render", "spec", "suites"],
        ],
    ),
];

#[cfg(test)]
mod layering {
    use super::LAYERS;

    /// A room's `mod.rs`, the bottom of its room.
    const MOD: &str = "mod";

    /// Where a module sits: its room's rank and its layer in the room (`mod` is 0).
    fn place(room: &str, module: &str) -> Option<(usize, usize)> {
        let r = LAYERS.iter().position(|(name, _)| *name == room)?;
        if module == MOD {
            return Some((r, 0));
        }
        let l = LAYERS[r].1.iter().position(|l| l.contains(&module))?;
        Some((r, l + 1))
    }

    /// `name` is a module of `room` (else an item of its `mod.rs`).
    fn is_module(room: &str, name: &str) -> bool {
        name != MOD && place(room, name).is_some()
    }

    fn ident(s: &str) -> &str {
        let end = s
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(s.len());
        &s[..end]
    }

    /// The names a path names after `prefix::`: one name, or each item of a `{...}` group
    /// (its first segment; `self` is the prefix itself, returned as `None`).
    fn names_after(rest: &str) -> Vec<Option<String>> {
        let Some(group) = rest.strip_prefix('{') else {
            return vec![Some(ident(rest).to_string())];
        };
        let (mut depth, mut item, mut out) = (0, String::new(), Vec::new());
        for c in group.chars() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => break,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    out.push(std::mem::take(&mut item));
                    continue;
                }
                _ => {}
            }
            item.push(c);
        }
        out.push(item);
        out.iter()
            .map(|i| ident(i.trim()))
            .filter(|i| !i.is_empty())
            .map(|i| (i != "self").then(|| i.to_string()))
            .collect()
    }

    /// The (room, module) pairs of the harness one file uses: every `crate::` path, and
    /// the `super::` paths of its top-level `use` lines (a room's siblings), comment lines
    /// left out. A `crate::` path whose first segment is no room is reported as one.
    fn uses(room: &str, text: &str) -> Vec<(String, String)> {
        let code: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let mut out = Vec::new();
        for (i, _) in code.match_indices("crate::") {
            let rest = &code[i + "crate::".len()..];
            let used_room = ident(rest);
            let after = &rest[used_room.len()..];
            let Some(after) = after.strip_prefix("::") else {
                out.push((used_room.to_string(), MOD.to_string()));
                continue;
            };
            for name in names_after(after) {
                let module = name.filter(|n| is_module(used_room, n));
                out.push((used_room.to_string(), module.unwrap_or(MOD.into())));
            }
        }
        for line in code.lines() {
            let Some(rest) = line
                .strip_prefix("use super::")
                .or_else(|| line.strip_prefix("pub use super::"))
            else {
                continue;
            };
            for name in names_after(rest) {
                let module = name.filter(|n| is_module(room, n));
                out.push((room.to_string(), module.unwrap_or(MOD.into())));
            }
        }
        out
    }

    /// What `file` (module `module` of room `room`, with text `text`) uses against the
    /// layering.
    fn violations(room: &str, module: &str, file: &str, text: &str) -> Vec<String> {
        let Some((r, l)) = place(room, module) else {
            return vec![format!("{file}: {room}::{module} is in no layer of LAYERS")];
        };
        let mut wrong = Vec::new();
        for (used_room, used) in uses(room, text) {
            let Some((ur, ul)) = place(&used_room, &used) else {
                wrong.push(format!(
                    "{file} uses crate::{used_room}, which is no room (each crate:: path names its room first)"
                ));
                continue;
            };
            if ur > r {
                wrong.push(format!(
                    "{file} ({room}) uses the higher room {used_room} ({used_room}::{used})"
                ));
            } else if ur == r && used != module && ul >= l {
                wrong.push(format!(
                    "{file} ({room}::{module}) uses {room}::{used}, of its room but not of a lower layer"
                ));
            }
        }
        wrong.sort();
        wrong.dedup();
        wrong
    }

    #[test]
    fn modules_import_only_from_lower_layers() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut wrong = Vec::new();
        let mut seen = Vec::new();
        for entry in std::fs::read_dir(&src).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if name == "lib.rs" || name == "bin" {
                continue;
            }
            if !path.is_dir() {
                wrong.push(format!("src/{name} is in no room (a folder of src/)"));
                continue;
            }
            for f in std::fs::read_dir(&path).unwrap() {
                let f = f.unwrap().path();
                let file = format!("src/{name}/{}", f.file_name().unwrap().to_string_lossy());
                if f.is_dir() || f.extension().is_none_or(|e| e != "rs") {
                    wrong.push(format!("{file}: a room holds modules only"));
                    continue;
                }
                let module = f.file_stem().unwrap().to_string_lossy().to_string();
                let text = std::fs::read_to_string(&f).unwrap();
                wrong.extend(violations(&name, &module, &file, &text));
                seen.push((name.clone(), module));
            }
        }
        for (room, layers) in LAYERS {
            for module in layers.iter().flat_map(|l| l.iter()).chain(&[MOD]) {
                if !seen.iter().any(|(r, m)| r == room && m == module) {
                    wrong.push(format!("LAYERS names {room}::{module}, which has no file"));
                }
            }
        }
        assert!(
            wrong.is_empty(),
            "imports against the layering:\n{}",
            wrong.join("\n")
        );
    }

    #[test]
    fn imports_against_the_layering_are_found() {
        let bad = |room, module, text| !violations(room, module, "f.rs", text).is_empty();
        // Fine: lower rooms, lower layers of the room, groups, the room's mod.rs.
        assert!(!bad(
            "exec",
            "scenarios",
            "use crate::exec::env::{self, Env};\nuse crate::judge::{monitor::Property, oracle};\nuse crate::base::rt;"
        ));
        assert!(!bad("gate", "checks", "use super::nextest::Run;\nuse super::{Options, records::read_records};\nuse crate::gate::PROPTEST_SCENARIO;"));
        // A lower room using a higher one, directly, in a group, or its mod.rs.
        assert!(bad("base", "panics", "use crate::judge::monitor::Monitor;"));
        assert!(bad("lang", "program", "use crate::exec::{env, scenarios};"));
        assert!(bad(
            "judge",
            "monitor",
            "fn f() { crate::gate::exit_code(true); }"
        ));
        // A module using one of its own layer or above, by crate:: or super::.
        assert!(bad("judge", "monitor", "use crate::judge::oracle::judge;"));
        assert!(bad(
            "judge",
            "trace",
            "use crate::judge::{monitor, verdict};"
        ));
        assert!(bad("gate", "records", "use super::checks::run;"));
        assert!(bad("gate", "nextest", "use super::{Options, list};"));
        // A path that does not name its room first, and a module missing from LAYERS.
        assert!(bad("checkers", "check", "use crate::scenarios::find;"));
        assert!(bad(
            "checkers",
            "check",
            "use crate::{base::rt, judge::monitor};"
        ));
        assert!(bad("judge", "newcomer", ""));
        // Comment lines are not imports; inner modules' `use super::*` are not the room's.
        assert!(!bad("base", "rt", "// crate::gate::checks\n/// [`crate::judge::monitor`]\nmod tests {\n    use super::*;\n}"));
    }
}

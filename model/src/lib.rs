//! The verification harness for usbpm: the shipped library, built on loom's, shuttle's or
//! std's primitives (by this crate's `loom` / `shuttle` features), driven through
//! [`scenarios`] and judged by [`monitor`]s. See docs/VERIFICATION.md.

#![deny(unsafe_code)]

pub mod check;
pub mod docs;
pub mod enumerate;
pub mod env;
pub mod exec;
pub mod gate;
pub mod generated;
pub mod monitor;
pub mod oracle;
pub mod program;
pub mod report;
pub mod rt;
pub mod run;
pub mod scenarios;
pub mod timeline;
pub mod trace;

/// Emits one `#[test]` per scenario that runs it under `$checker` (`small`: the loom-sized
/// scenarios; `all`: every scenario), plus a test that the list matches
/// [`scenarios::ALL`], so a new scenario cannot be left out of a checker by mistake.
#[macro_export]
macro_rules! scenario_checks {
    ($checker:literal, small) => {
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
        );
    };
    ($checker:literal, all) => {
        $crate::scenario_checks!($checker, small);
        $crate::scenario_checks!(@emit $checker, $crate::scenarios::Size::Large, every_large_scenario_has_a_check;
            churn_4x3x20: "churn-4x3x20";
        );
    };
    (@emit $checker:literal, $size:expr, $complete:ident; $($test:ident: $name:literal;)*) => {
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

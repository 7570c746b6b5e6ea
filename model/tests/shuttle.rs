//! Every scenario, small and large, sampled by shuttle's PCT (depth 3) and random
//! schedulers on the shipped library. A failure writes the schedule to a file and names
//! the command that replays it.
//!
//! `cargo test -p usbpm-model --features shuttle --release --test shuttle -- --nocapture`.
//! Sample sizes per profile: `usbpm_model::check::shuttle_iterations`; seed: `USBPM_SEED`.
#![cfg(feature = "shuttle")]

use usbpm::checking::Mutant;
use usbpm_model::check::{kills, run_check};

macro_rules! checks {
    ($($test:ident: $name:literal;)*) => {$(
        #[test]
        fn $test() {
            run_check("shuttle", $name);
        }
    )*};
}

checks! {
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
    churn_4x3x20: "churn-4x3x20";
}

#[test]
fn teeth_deregister_no_wait() {
    assert!(kills("shuttle", "two-dispatchers-vs-deregister", Mutant::DeregisterNoWait));
}

#[test]
fn teeth_no_cycle_check() {
    assert!(kills("shuttle", "mutual-deregister", Mutant::NoCycleCheck));
}

#[test]
fn teeth_replay_misses_hub() {
    assert!(kills("shuttle", "register-vs-dispatch", Mutant::ReplayMissesHub));
}

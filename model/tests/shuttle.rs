//! Every scenario, small and large, sampled by shuttle's PCT (depth 3) and random
//! schedulers on the shipped library. A failure writes the schedule to a file and names
//! the command that replays it.
//!
//! `cargo test -p usbpm-model --features shuttle --release --test shuttle -- --nocapture`.
//! Sample sizes per profile: `usbpm_model::checkers::check::shuttle_iterations`; seed: `USBPM_SEED`.
#![cfg(feature = "shuttle")]

use usbpm::checking::Mutant;
use usbpm_model::base::checker::Checker;
use usbpm_model::checkers::check::kills;

usbpm_model::scenario_checks!(Checker::Shuttle, all);

#[test]
fn teeth_deregister_no_wait() {
    assert!(kills(
        Checker::Shuttle,
        "two-dispatchers-vs-deregister",
        Mutant::DeregisterNoWait
    ));
}

#[test]
fn teeth_no_cycle_check() {
    assert!(kills(
        Checker::Shuttle,
        "mutual-deregister",
        Mutant::NoCycleCheck
    ));
}

#[test]
fn teeth_replay_misses_hub() {
    assert!(kills(
        Checker::Shuttle,
        "register-vs-dispatch",
        Mutant::ReplayMissesHub
    ));
}

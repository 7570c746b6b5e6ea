//! Every small scenario, explored exhaustively by loom on the shipped library.
//!
//! `cargo test -p usbpm-model --features loom --release --test loom -- --nocapture`
//! prints each check's bound, executions and seconds. The bound per scenario and profile
//! is `usbpm_model::checkers::check::loom_bound`; the gate sets the profile (`USBPM_PROFILE`).
#![cfg(feature = "loom")]

use usbpm::checking::Mutant;
use usbpm_model::base::checker::Checker;
use usbpm_model::checkers::check::kills;

usbpm_model::scenario_checks!(Checker::Loom, small);

// A few of the gate's mutant kills, kept as regression tests of the checks' teeth.

#[test]
fn teeth_deregister_no_wait() {
    assert!(kills(
        Checker::Loom,
        "dispatch-vs-deregister",
        Mutant::DeregisterNoWait
    ));
}

#[test]
fn teeth_relaxed_ordering() {
    assert!(kills(
        Checker::Loom,
        "two-dispatchers-vs-deregister",
        Mutant::RelaxedOrdering
    ));
}

// Deadlock mutants (lost wake-up, own-callback wait, no cycle check) are not kept here:
// loom aborts the whole process when it unwinds a detected deadlock, which would take the
// other tests with it. The gate runs every check in its own process and records the kill.

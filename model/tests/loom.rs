//! Every small scenario, explored exhaustively by loom on the shipped library, and the
//! mutants that prove the loom checks can fail.
//!
//! `cargo test -p usbpm-model --features loom --release --test loom -- --nocapture`
//! prints the executions explored and the seconds for each. The preemption bound comes
//! from `USBPM_LOOM_BOUND` (a number, or `unbounded`; default: each test's own bound).
#![cfg(feature = "loom")]

use usbpm::checking::Mutant;
use usbpm_model::run;
use usbpm_model::scenarios::find;

fn bound(default: Option<usize>) -> Option<usize> {
    match std::env::var("USBPM_LOOM_BOUND") {
        Ok(v) if v == "unbounded" => None,
        Ok(v) => Some(v.parse().expect("USBPM_LOOM_BOUND: a number or `unbounded`")),
        Err(_) => default,
    }
}

fn check(name: &str, default_bound: Option<usize>) {
    let s = find(name).expect("scenario exists");
    let b = bound(default_bound);
    let o = run::loom(s, None, b);
    let b = b.map_or("unbounded".to_string(), |b| b.to_string());
    println!("loom {name:<32} bound {b:<9} {:>9} executions {:>8.2}s", o.executions, o.seconds);
}

/// The check must fail on `mutant`: it is the evidence that the check has teeth.
fn must_kill(name: &str, mutant: Mutant, default_bound: Option<usize>) {
    let s = find(name).expect("scenario exists");
    let b = bound(default_bound);
    let killed = std::panic::catch_unwind(|| run::loom(s, Some(mutant), b)).is_err();
    assert!(killed, "mutant {} survived loom on {name}", mutant.name());
    println!("loom {name:<32} kills mutant {}", mutant.name());
}

macro_rules! scenarios {
    ($($test:ident: $name:literal at $bound:expr;)*) => {$(
        #[test]
        fn $test() {
            check($name, $bound);
        }
    )*};
}

scenarios! {
    dispatch_vs_deregister: "dispatch-vs-deregister" at None;
    two_dispatchers_vs_deregister: "two-dispatchers-vs-deregister" at None;
    three_dispatchers_vs_deregister: "three-dispatchers-vs-deregister" at Some(3);
    register_vs_dispatch: "register-vs-dispatch" at Some(3);
    reentrant_callback: "reentrant-callback" at None;
    deregister_own_callback: "deregister-own-callback" at None;
    mutual_deregister: "mutual-deregister" at Some(3);
    panicking_callback: "panicking-callback" at None;
    double_deregister: "double-deregister" at Some(3);
    handle_reuse: "handle-reuse" at None;
    removal_vs_register: "removal-vs-register" at None;
}

#[test]
fn teeth_deregister_no_wait() {
    must_kill("dispatch-vs-deregister", Mutant::DeregisterNoWait, None);
}

#[test]
fn teeth_relaxed_ordering() {
    must_kill("two-dispatchers-vs-deregister", Mutant::RelaxedOrdering, None);
}

#[test]
fn teeth_own_callback_waits() {
    must_kill("deregister-own-callback", Mutant::OwnCallbackWaits, None);
}

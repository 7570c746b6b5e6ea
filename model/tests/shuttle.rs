//! Every scenario, small and large, sampled by shuttle's PCT and random schedulers on the
//! shipped library, and mutants that prove the shuttle checks can fail.
//!
//! `cargo test -p usbpm-model --features shuttle --release --test shuttle -- --nocapture`.
//! `USBPM_SHUTTLE_ITERATIONS` sets the schedules per strategy (default 10000),
//! `USBPM_SEED` the seed (default 1); a failure prints the schedule to replay.
#![cfg(feature = "shuttle")]

use usbpm::checking::Mutant;
use usbpm_model::run::{self, Strategy};
use usbpm_model::scenarios::find;

fn iterations() -> usize {
    std::env::var("USBPM_SHUTTLE_ITERATIONS").map_or(10_000, |v| v.parse().expect("USBPM_SHUTTLE_ITERATIONS: a number"))
}

fn seed() -> u64 {
    std::env::var("USBPM_SEED").map_or(1, |v| v.parse().expect("USBPM_SEED: a number"))
}

fn check(name: &str) {
    let s = find(name).expect("scenario exists");
    for strategy in [Strategy::Pct { depth: 3 }, Strategy::Random] {
        let o = run::shuttle(s, None, strategy, iterations(), seed());
        println!("shuttle {name:<32} {:<14} {:>7} schedules {:>7.2}s", strategy.label(), o.executions, o.seconds);
    }
}

fn must_kill(name: &str, mutant: Mutant) {
    let s = find(name).expect("scenario exists");
    let killed = [Strategy::Pct { depth: 3 }, Strategy::Random].into_iter().any(|strategy| {
        std::panic::catch_unwind(|| run::shuttle(s, Some(mutant), strategy, iterations(), seed())).is_err()
    });
    assert!(killed, "mutant {} survived shuttle on {name}", mutant.name());
    println!("shuttle {name:<32} kills mutant {}", mutant.name());
}

macro_rules! scenarios {
    ($($test:ident: $name:literal;)*) => {$(
        #[test]
        fn $test() {
            check($name);
        }
    )*};
}

scenarios! {
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
    churn_4x3x20: "churn-4x3x20";
}

#[test]
fn teeth_deregister_no_wait() {
    must_kill("two-dispatchers-vs-deregister", Mutant::DeregisterNoWait);
}

#[test]
fn teeth_no_cycle_check() {
    must_kill("mutual-deregister", Mutant::NoCycleCheck);
}

#[test]
fn teeth_replay_misses_hub() {
    must_kill("register-vs-dispatch", Mutant::ReplayMissesHub);
}

//! What the specification's verdicts rest on, checked: the partial-order reduction
//! changes no verdict, and the state graph has no cycle (liveness's `eventually` is
//! judged at the end of every behaviour). docs/SPEC.md, "What the verdicts rest on".

use usbpm_spec::run::{
    check, check_unreduced, find_cycle, mutant_size, DETACH, POWER, QUICK, SHUTDOWN,
};
use usbpm_spec::spec::Size;
use usbpm_spec::SpecMutant;

/// Reduced and unreduced, `size` passes every property and witnesses every `sometimes`.
fn same_verdict_without_reduction(size: Size) -> (usize, usize) {
    let reduced = check(size, None, true, 1);
    let unreduced = check_unreduced(size, None);
    for o in [&reduced, &unreduced] {
        assert!(
            o.violated.is_empty() && o.unwitnessed.is_empty(),
            "{}: violated {:?}, never witnessed {:?}",
            o.summary(),
            o.violated,
            o.unwitnessed
        );
    }
    assert!(
        unreduced.unique_states > reduced.unique_states,
        "the reduction reduces nothing: {} vs {}",
        reduced.summary(),
        unreduced.summary()
    );
    (reduced.unique_states, unreduced.unique_states)
}

#[test]
fn the_reduction_changes_no_verdict_at_the_quick_size() {
    let (reduced, unreduced) = same_verdict_without_reduction(QUICK);
    eprintln!("QUICK: {reduced} states reduced, {unreduced} unreduced");
}

#[test]
fn the_reduction_changes_no_verdict_with_shutdown_power_and_detach() {
    for size in [SHUTDOWN, POWER, DETACH] {
        same_verdict_without_reduction(size);
    }
}

/// Every spec mutant is found with the reduction off too: the reduction hides no bug the
/// properties can see.
#[test]
fn every_spec_mutant_is_found_without_the_reduction() {
    for &m in SpecMutant::ALL {
        let o = check_unreduced(mutant_size(m), Some(m));
        assert!(
            !o.violated.is_empty(),
            "spec mutant {} survived without the reduction: {}",
            m.name(),
            o.summary()
        );
    }
}

#[test]
fn the_state_graph_has_no_cycle() {
    for (name, size) in [
        ("QUICK", QUICK),
        ("SHUTDOWN", SHUTDOWN),
        ("POWER", POWER),
        ("DETACH", DETACH),
    ] {
        match find_cycle(size) {
            Ok(states) => eprintln!("{name}: no cycle among {states} states"),
            Err(path) => panic!("{name}: the state graph has a cycle:\n{path}"),
        }
    }
}

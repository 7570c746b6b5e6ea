//! Every scenario on real threads (the std build of the same harness and library), many
//! times over, judged by the same monitors. Real schedules are whatever the OS gives, so
//! this samples rather than proves; it is the check that the model's world matches the
//! production build's. `USBPM_STRESS_ITERATIONS` sets the runs per scenario (default 200).
#![cfg(not(any(feature = "loom", feature = "shuttle")))]

use usbpm_model::run;
use usbpm_model::scenarios::ALL;

#[test]
fn every_scenario_on_real_threads() {
    let iterations = std::env::var("USBPM_STRESS_ITERATIONS").map_or(200, |v| v.parse().expect("a number"));
    for s in ALL {
        let o = run::stress(s, None, iterations);
        println!("std {:<32} {:>6} runs {:>7.2}s", s.name, o.executions, o.seconds);
    }
}

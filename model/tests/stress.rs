//! Every scenario on real threads (the std build of the same harness and library), many
//! times over, judged by the same monitors. Real schedules are whatever the OS gives, so
//! this samples rather than proves; it is the check that the model's world matches the
//! production build's. Runs per profile: `usbpm_model::checkers::check::std_iterations`.
#![cfg(not(any(feature = "loom", feature = "shuttle")))]

use usbpm_model::base::checker::Checker;

usbpm_model::scenario_checks!(Checker::Std, all);

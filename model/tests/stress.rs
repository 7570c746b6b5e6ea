//! Every scenario on real threads (the std build of the same harness and library), many
//! times over, judged by the same monitors. Real schedules are whatever the OS gives, so
//! this samples rather than proves; it is the check that the model's world matches the
//! production build's. Runs per profile: `usbpm_model::check::std_iterations`.
#![cfg(not(any(feature = "loom", feature = "shuttle")))]

use usbpm_model::check::run_check;

macro_rules! checks {
    ($($test:ident: $name:literal;)*) => {$(
        #[test]
        fn $test() {
            run_check("std", $name);
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

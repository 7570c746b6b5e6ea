//! The `spec` checker's check, as the gate runs it (`usbpm_model::checkers::spec_checks`): the
//! specification explored exhaustively at the profile's size (`USBPM_PROFILE`), or, with
//! `USBPM_MUTANT`, the spec mutant of that code mutant's bug family.
#![cfg(not(any(feature = "loom", feature = "shuttle")))]

#[test]
fn protocol_spec() {
    usbpm_model::checkers::spec_checks::run_spec_check();
}

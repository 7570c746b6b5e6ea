//! Running the checkers: scenarios and programs under loom, shuttle and std, one check
//! and the record it writes, and the specification's two checkers.
//!
//! - [`run`]: one scenario (or any execution body) under loom, shuttle or std;
//! - [`generated`]: generated programs under the checkers, shrinking, replay commands;
//! - [`check`]: one check = scenario or chunk × checker, with the record it writes;
//! - [`spec_checks`]: the `spec` and `trace` checkers.

pub mod check;
pub mod generated;
pub mod run;
pub mod spec_checks;

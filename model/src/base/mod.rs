//! The bottom room: what every other room stands on, depending on nothing of the harness.
//!
//! - [`checker`]: the checkers by name ([`checker::Checker`]);
//! - [`panics`]: deliberate panics, the process's panic hook and the checker hook above it;
//! - [`rt`]: the harness's own facade (threads, atomics, the driver's memory) from the
//!   checker this build is for, like the library's `sync.rs`.

pub mod checker;
pub mod panics;
pub mod rt;

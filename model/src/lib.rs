//! The verification harness for usbpm: the shipped library, built on loom's, shuttle's or
//! std's primitives (by this crate's `loom` / `shuttle` features), driven through
//! [`scenarios`] and judged by [`monitor`]s. See docs/VERIFICATION.md.

#![deny(unsafe_code)]

pub mod check;
pub mod docs;
pub mod env;
pub mod monitor;
pub mod report;
pub mod rt;
pub mod scenarios;
pub mod run;

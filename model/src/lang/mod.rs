//! The program language: what a generated program is, every program of a size, and what
//! one execution of a program did.
//!
//! - [`program`]: clients with callback behaviours, hubs, init / parallel / post parts;
//! - [`history`]: every call and every event a callback saw, with real-time tickets;
//! - [`enumerate`]: every program of a size, one per symmetry orbit; random programs.

pub mod enumerate;
pub mod history;
pub mod program;

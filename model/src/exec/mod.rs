//! Executing on the shipped library: one execution's world, the scenarios, and the
//! interpreter that runs a generated program.
//!
//! - [`env`](mod@env): a `PolicyManager::checking` with a mutant and the monitor as probe, model
//!   clients whose context a driver frees;
//! - [`scenarios`]: the named scenarios every checker runs;
//! - [`interpreter`]: one program run on the library, its history recorded and judged.

pub mod env;
pub mod interpreter;
pub mod scenarios;

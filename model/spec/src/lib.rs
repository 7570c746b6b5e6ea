//! A specification of the usbpm client protocol, at the level of its contract, for the
//! stateright model checker; and a validator that checks executions recorded from the
//! shipped library are behaviours of it. See docs/SPEC.md.
//!
//! The public modules are what other crates use:
//!
//! - [`spec`]: the specification value [`Spec`], and the public paths of the state, the
//!   actions ([`Op`], [`Spec::apply`]), the spec mutants and the sizes;
//! - [`model`]: the stateright model;
//! - [`symmetry`]: the representative function for symmetry reduction;
//! - [`run`]: exhaustive checks at named sizes, with their figures;
//! - [`trace`]: trace validation of recorded executions.
//!
//! The rest, one job each:
//!
//! - `state`: the state types and read-only queries of them;
//! - `actions`: the action alphabet and `Spec::apply`, one function per action
//!   (`actions/calls.rs`, `manager.rs`, `submit.rs`, `drain.rs`, `turn.rs`,
//!   `delivery.rs`, `deregister.rs`, `query.rs`, `locks.rs`);
//! - `enumerate`: the closed world's candidate actions, budgets and enabled actions;
//! - `reduction`: partial-order reduction;
//! - `properties`: P1–P8, M1–M3 `always`, liveness `eventually`, reachability
//!   `sometimes`;
//! - `mutants`: the spec mutant catalogue;
//! - `sizes`: [`Size`] and the named sizes.
//!
//! Nothing here is used by the library: the specification is checked, and the library's
//! recorded executions are checked against it.

#![forbid(unsafe_code)]

mod actions;
mod enumerate;
pub mod model;
mod mutants;
mod properties;
mod reduction;
pub mod run;
mod sizes;
pub mod spec;
mod state;
pub mod symmetry;
pub mod trace;

pub use spec::{Op, Settle, Size, Spec, SpecMutant, State};
pub use trace::{validate, validate_granted, Divergence, Grants, Obs, TraceEvent};

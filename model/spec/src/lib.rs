//! A specification of the usbpm client protocol, at the level of its contract, for the
//! stateright model checker; and a validator that checks executions recorded from the
//! shipped library are behaviours of it. See docs/SPEC.md.
//!
//! - [`spec`]: the specification value [`Spec`], and the public paths of the state
//!   (`state.rs`), the actions (`actions/`: [`Op`], [`Spec::apply`], one function per
//!   action), the spec mutants (`mutants.rs`) and the sizes (`sizes.rs`); the closed
//!   world's candidate actions and budgets are `enumerate.rs`;
//! - [`model`]: the stateright model (partial-order reduction in `reduction.rs`; the
//!   properties, P1–P7 `always`, liveness `eventually`, reachability `sometimes`, in
//!   `properties.rs`);
//! - [`symmetry`]: the representative function for symmetry reduction;
//! - [`run`]: exhaustive checks at named sizes, with their figures;
//! - [`trace`]: trace validation of recorded executions.
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

pub use spec::{Op, Size, Spec, SpecMutant, State, Then};
pub use trace::{validate, Divergence, Obs, TraceEvent};

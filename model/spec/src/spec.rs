//! The specification: the protocol at the level of its contract, as one value, [`Spec`],
//! and the public paths of its vocabulary.
//!
//! Read it beside docs/PROTOCOL.md and docs/SPEC.md; `actions/mod.rs` walks it action by
//! action and names the code each action stands for. A [`Spec`] is a closed world of a given [`Size`] (model
//! checking, with its budgets) or an open one (trace validation), with the code's
//! behaviour or a spec mutant's. Every action is [`Spec::apply`]: the model checker
//! enumerates enabled ones ([`Spec::enabled`]) and the trace validator applies the ones a
//! recorded execution took.
//!
//! Contract: this module defines [`Spec`] and re-exports, under `usbpm_spec::spec`, what
//! the other modules define: the state (`state.rs`), the actions (`actions/`), the spec
//! mutants (`mutants.rs`) and the sizes (`sizes.rs`).

pub use crate::actions::{Action, Op, Settle};
pub use crate::mutants::SpecMutant;
pub use crate::sizes::Size;
pub use crate::state::{
    members, At, Client, Delivery, Entry, Frame, Hub, Item, Log, Owed, Phase, PmAt, Set, State,
    Status,
};

/// The specification: a closed world of a given [`Size`] (model checking), or an open
/// one (trace validation: whatever a recorded execution did, no budgets).
#[derive(Clone, Debug)]
pub struct Spec {
    pub size: Size,
    pub mutant: Option<SpecMutant>,
    /// No budgets: every action whose guard holds is allowed.
    pub open: bool,
    /// Partial-order reduction on (`reduction.rs`): off only to check the reduction
    /// itself (`run::check_unreduced`).
    pub reduction: bool,
}

impl Spec {
    pub fn new(size: Size, mutant: Option<SpecMutant>) -> Spec {
        Spec {
            size,
            mutant,
            open: false,
            reduction: true,
        }
    }

    /// Whether spec mutant `m` is switched on.
    pub(crate) fn m(&self, m: SpecMutant) -> bool {
        self.mutant == Some(m)
    }
}

//! The locks the lock-order mutants hold too long: the registry lock held by a
//! deregister while it waits (wait-under-registry-lock), a hub's lock held across a
//! delivery's callbacks (callback-under-hub-lock).
//!
//! Contract: with the code's behaviour (no such mutant) no lock is ever blocked here:
//! the specification's steps are each one critical section. An action that needs the
//! registry lock or a hub's lock checks these first; a deadlock then shows as P3.

use crate::mutants::SpecMutant;
use crate::spec::Spec;
use crate::state::{Frame, Phase, State};

impl Spec {
    /// The thread holding the registry lock for good (mutant wait-under-registry-lock:
    /// a deregister holds it from its retire until it returns).
    pub(super) fn registry_blocked(&self, s: &State) -> bool {
        self.m(SpecMutant::WaitUnderRegistryLock)
            && s.threads.iter().flatten().any(|f| {
                matches!(
                    f,
                    Frame::Deregister {
                        phase: Phase::Retired
                            | Phase::AtZero
                            | Phase::MustSleep
                            | Phase::Waiting
                            | Phase::Tested
                            | Phase::Asleep { .. },
                        ..
                    }
                )
            })
    }

    /// Whether a hub's lock is held across a delivery (mutant callback-under-hub-lock).
    pub(super) fn hub_blocked(&self, s: &State, hub: u8) -> bool {
        self.m(SpecMutant::CallbackUnderHubLock)
            && s.threads
                .iter()
                .flatten()
                .any(|f| matches!(f, Frame::Drain { hub: h, cur: Some(_), .. } if *h == hub))
    }
}

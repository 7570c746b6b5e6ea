//! Partial-order reduction for the closed world: after a step, its thread goes on at
//! once with the steps no other thread can tell from being taken together with it.
//!
//! Contract: [`Spec::reduce`] only fuses steps that commute with every step of every
//! other thread, so every behaviour is still explored up to the order of commuting steps
//! and the properties (which read states between whole steps of other threads) see the
//! same; it never spends a budget on a fused program choice. Used by the stateright
//! model's `next_state` (`model.rs`); trace validation takes steps one by one.

use crate::actions::Op;
use crate::mutants::SpecMutant;
use crate::spec::Spec;
use crate::state::{Frame, State};

impl Spec {
    /// Partial-order reduction for the closed world: after `op`, thread `t` goes on with
    /// the steps that no other thread can tell from being taken at once:
    /// - a step only `t` can see (the callback's begin, its return before the release,
    ///   the sleep after closing, entering deregister) is fused with `t`'s next step: any
    ///   step of another thread in between can as well come before it;
    /// - taking the front of a non-empty queue, and skipping a closed client (a hub's
    ///   delivery, a greeting's arrival, a shutdown's removal of a client deregistered or
    ///   never greeted, whose count stays at 0), commute with every step of every other
    ///   thread (appends go to the back; `CLOSED` stays set); so does recording an owed
    ///   greeting (the thread's own obligations), and an answer's return once its change
    ///   is settled (it pops its own frame);
    /// - a count taken above 0 goes on at once to wait for the turn (no other thread
    ///   reads where a waiting delivery stands), and a turn taken goes on at once to the
    ///   callback's begin (the taker holds its count, so no deregister of the client
    ///   returns in between, and the begin touches nothing another thread's step reads
    ///   but that).
    ///
    /// So every behaviour is still explored up to the order of commuting steps, and the
    /// properties (which read states between whole steps of other threads) see the same.
    pub(crate) fn reduce(&self, mut n: State, t: u8, op: Op) -> State {
        let mut last = op;
        let mut ops = Vec::new();
        loop {
            let ti = usize::from(t);
            ops.clear();
            self.candidates(&n, t, &mut ops);
            let enabled: Vec<(Op, State)> = ops
                .iter()
                .filter_map(|&o| self.apply(&n, t, o).ok().map(|s| (o, s)))
                .collect();
            // (A deregister from inside callbacks keeps its entered state: the checks that
            // follow are what the `sometimes` properties look for.)
            let plain_enter = matches!(
                n.threads[ti].last(),
                Some(Frame::Deregister { holding: 0, .. })
            );
            let local_before = matches!(
                last,
                Op::Begin { .. } | Op::ManagerBegin { .. } | Op::End { .. } | Op::Sleep
            ) || (matches!(last, Op::DeregisterEnter { .. }) && plain_enter);
            let pick = enabled.iter().find(|(o, _)| {
                matches!(
                    o,
                    Op::Skip { .. } | Op::OweGreeting { .. } | Op::Answered { .. }
                ) || (matches!(o, Op::ManagerSkip { .. })
                    && self.mutant != Some(SpecMutant::RemovalNotLast))
                    || (matches!(o, Op::Take { .. })
                        && self.mutant != Some(SpecMutant::RemovalOvertakes))
                    || matches!(
                        (last, o),
                        (
                            Op::Acquire { .. },
                            Op::Begin { .. } | Op::ManagerBegin { .. }
                        ) | (Op::Close { .. }, Op::Sleep)
                            | (Op::Acquire { .. }, Op::TurnWaits { .. })
                            | (Op::TakeTurn { .. }, Op::Begin { .. })
                    )
            });
            let next = match pick {
                Some((o, s)) => Some((*o, s.clone())),
                None if local_before && enabled.len() == 1 => Some(enabled[0].clone()),
                None => None,
            };
            let Some((o, mut s)) = next else { return n };
            // Budgets are spent only by the program's own choices, never by a fused step.
            if let Op::DeregisterEnter { .. } | Op::DetachEnter { .. } = o {
                return n;
            }
            self.charge_budgets(&n, &mut s, ti, o);
            n = s;
            last = o;
        }
    }
}

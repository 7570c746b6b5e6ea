//! The specification as a stateright model.
//!
//! Contract: glue only. The initial state is `State::initial` at the size (clients
//! registered first if the size says so); the actions are every thread's candidates
//! (`enumerate.rs`; idle threads are interchangeable, so the first idle one stands for
//! all); the next state is [`Spec::apply`], the budgets charged, then partial-order
//! reduction (`reduction.rs`; off only to check it); the properties are `properties.rs`.

use stateright::{Model, Property};

use crate::spec::{Op, Spec, State, Status};

impl Model for Spec {
    type State = State;
    type Action = (u8, Op);

    fn init_states(&self) -> Vec<State> {
        let mut s = State::initial(
            self.size.clients,
            self.size.hubs,
            self.size.threads,
            Some(&self.size),
        );
        if self.size.preregistered {
            // Registered and greeted before the threads start.
            for c in &mut s.clients {
                c.status = Status::Open;
                c.greeted = true;
                c.known = true;
            }
        }
        vec![s]
    }

    fn actions(&self, s: &State, actions: &mut Vec<(u8, Op)>) {
        let mut ops = Vec::new();
        let mut idle_seen = false;
        for t in 0..s.threads.len() as u8 {
            // Idle threads are interchangeable: the first one stands for all.
            if s.threads[usize::from(t)].is_empty() {
                if idle_seen {
                    continue;
                }
                idle_seen = true;
            }
            ops.clear();
            self.candidates(s, t, &mut ops);
            actions.extend(ops.iter().map(|&op| (t, op)));
        }
    }

    fn next_state(&self, s: &State, (t, op): (u8, Op)) -> Option<State> {
        let mut n = self.apply(s, t, op).ok()?;
        self.charge_budgets(s, &mut n, usize::from(t), op);
        Some(if self.reduction {
            self.reduce(n, t, op)
        } else {
            n
        })
    }

    fn properties(&self) -> Vec<Property<Self>> {
        crate::properties::all()
    }
}

//! The specification as a stateright model: initial state, actions, and the
//! properties: P1–P5 as `always`, liveness as `eventually`, reachability as `sometimes`.

use stateright::{Model, Property};

use crate::spec::{members, At, Frame, Item, Op, Phase, Spec, State, Status};

impl Spec {
    /// Partial-order reduction for the closed world: after `op`, thread `t` goes on with
    /// the steps that no other thread can tell from being taken at once:
    /// - a step only `t` can see (the callback's begin, its return before the release,
    ///   the sleep after closing, entering deregister) is fused with `t`'s next step: any
    ///   step of another thread in between can as well come before it;
    /// - taking the front of a non-empty queue, and skipping a closed client, commute with
    ///   every step of every other thread (appends go to the back; `CLOSED` stays set).
    ///
    /// So every behaviour is still explored up to the order of commuting steps, and the
    /// properties (which read states between whole steps of other threads) see the same.
    fn reduce(&self, mut n: State, t: u8, op: Op) -> State {
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
            let local_before = matches!(last, Op::Begin { .. } | Op::End { .. } | Op::Sleep)
                || (matches!(last, Op::DeregisterEnter { .. }) && plain_enter);
            let pick = enabled.iter().find(|(o, _)| {
                matches!(o, Op::Skip { .. })
                    || (matches!(o, Op::Take { .. })
                        && self.mutant != Some(crate::spec::SpecMutant::RemovalOvertakes))
                    || matches!(
                        (last, o),
                        (Op::Acquire { .. }, Op::Begin { .. }) | (Op::Close { .. }, Op::Sleep)
                    )
            });
            let next = match pick {
                Some((o, s)) => Some((*o, s.clone())),
                None if local_before && enabled.len() == 1 => Some(enabled[0].clone()),
                None => None,
            };
            let Some((o, mut s)) = next else { return n };
            // Budgets are spent only by the program's own choices, never by a fused step.
            if let Op::DeregisterEnter { .. } = o {
                return n;
            }
            self.charge_budgets(&n, &mut s, ti, o);
            n = s;
            last = o;
        }
    }

    /// Nothing left to do: every thread idle and the program's budget spent.
    pub fn quiescent(&self, s: &State) -> bool {
        s.all_idle() && self.enabled(s).is_empty()
    }

    /// What the contract promises about delivery at the end: every client that was
    /// addressed a hub's arrival (or owed its replay) received every event of that hub up
    /// to the last, unless delivery found it closed and dropped it.
    pub fn complete(&self, s: &State) -> bool {
        s.clients.iter().all(|c| {
            s.hubs
                .iter()
                .zip(&c.logs)
                .filter(|(h, _)| h.arrived)
                .all(|(h, log)| {
                    if !log.owed {
                        // Never addressed (or its replay dropped): nothing of it received;
                        // or, when the hub arrived again without addressing the client, the
                        // whole of its previous presence, up to the removal.
                        !log.seen
                            || log.skipped
                            || log.removed
                            || (log.last == h.seq && log.removed == h.removed)
                    } else {
                        // Addressed: received up to the last item, unless found closed.
                        log.skipped || (log.seen && log.last == h.seq && log.removed == h.removed)
                    }
                })
        })
    }
}

fn callbacks(s: &State) -> impl Iterator<Item = (u8, bool)> + '_ {
    s.threads.iter().flatten().filter_map(|f| match f {
        Frame::Callback {
            client, after_ok, ..
        } => Some((*client, *after_ok)),
        _ => None,
    })
}

fn deregisters(s: &State) -> impl Iterator<Item = (u8, u32, u8, Phase)> + '_ {
    s.threads.iter().flatten().filter_map(|f| match f {
        Frame::Deregister {
            target,
            holding,
            victim,
            phase,
            ..
        } => Some((*target, *holding, *victim, *phase)),
        _ => None,
    })
}

fn p1(_: &Spec, s: &State) -> bool {
    callbacks(s).all(|(_, after_ok)| !after_ok)
}

fn p2(_: &Spec, s: &State) -> bool {
    callbacks(s).all(|(c, after_ok)| after_ok || !s.clients[usize::from(c)].returned_ok)
}

fn p3(spec: &Spec, s: &State) -> bool {
    s.all_idle() || !spec.enabled(s).is_empty()
}

fn p4_own_client(_: &Spec, s: &State) -> bool {
    s.clients
        .iter()
        .enumerate()
        .all(|(i, c)| c.retired_by.is_none_or(|r| usize::from(r) == i))
}

fn p4_own_callback_refused(_: &Spec, s: &State) -> bool {
    deregisters(s)
        .all(|(target, holding, _, phase)| phase == Phase::Entered || holding & (1 << target) == 0)
}

fn p5(_: &Spec, s: &State) -> bool {
    s.clients.iter().all(|c| !c.order_broken)
}

fn p6_bounded(_: &Spec, s: &State) -> bool {
    s.threads.iter().flatten().all(|f| match f {
        Frame::Drain {
            target,
            cur: Some(d),
            ..
        } => d.ticket <= *target,
        _ => true,
    })
}

/// Every queued item has an owner: with every thread idle (so no drainer, no sleeper
/// and no obligation left) every queue is empty.
fn p7_nothing_stranded(_: &Spec, s: &State) -> bool {
    !s.all_idle() || s.hubs.iter().all(|h| h.queue.is_empty())
}

fn live_quiescent(spec: &Spec, s: &State) -> bool {
    spec.quiescent(s)
}

fn live_delivered(spec: &Spec, s: &State) -> bool {
    spec.quiescent(s) && spec.complete(s)
}

fn some_wait_for_running(_: &Spec, s: &State) -> bool {
    deregisters(s)
        .any(|(_, _, v, phase)| phase == Phase::Waiting && callbacks(s).any(|(c, _)| c == v))
}

fn some_two_threads_one_client(_: &Spec, s: &State) -> bool {
    s.threads.iter().enumerate().any(|(i, a)| {
        s.threads.iter().skip(i + 1).any(|b| {
            a.iter().any(|fa| b.iter().any(|fb| matches!((fa, fb), (Frame::Callback { client: x, .. }, Frame::Callback { client: y, .. }) if x == y)))
        })
    })
}

fn some_two_hubs_delivering(_: &Spec, s: &State) -> bool {
    s.threads
        .iter()
        .flatten()
        .filter(|f| matches!(f, Frame::Drain { cur: Some(_), .. }))
        .count()
        >= 2
}

fn some_closed_target(_: &Spec, s: &State) -> bool {
    s.threads.iter().flatten().any(|f| match f {
        Frame::Drain { cur: Some(d), .. } => {
            d.at == At::Next
                && members(d.targets).any(|c| s.clients[usize::from(c)].status == Status::Closed)
        }
        _ => false,
    })
}

fn some_callback_deregister_waits(_: &Spec, s: &State) -> bool {
    deregisters(s).any(|(_, holding, _, phase)| holding != 0 && phase == Phase::Waiting)
}

fn some_would_deadlock(_: &Spec, s: &State) -> bool {
    deregisters(s).any(|(target, holding, _, phase)| {
        phase == Phase::Entered
            && holding != 0
            && holding & (1 << target) == 0
            && s.would_close_cycle(holding, target)
    })
}

fn some_own_callback(_: &Spec, s: &State) -> bool {
    deregisters(s)
        .any(|(target, holding, _, phase)| phase == Phase::Entered && holding & (1 << target) != 0)
}

fn some_stale(_: &Spec, s: &State) -> bool {
    deregisters(s).any(|(target, holding, _, phase)| {
        (phase == Phase::Checked || (phase == Phase::Entered && holding == 0))
            && s.clients[usize::from(target)].status != Status::Open
    })
}

fn some_replay_queued(_: &Spec, s: &State) -> bool {
    s.hubs
        .iter()
        .any(|h| h.queue.iter().any(|e| matches!(e.item, Item::Join { .. })))
}

fn some_replay_dropped(_: &Spec, s: &State) -> bool {
    s.threads
        .iter()
        .flatten()
        .any(|f| matches!(f, Frame::Registering { hubs, .. } if members(*hubs).any(|h| s.hubs[usize::from(h)].removed)))
}

fn some_removal_delivered(_: &Spec, s: &State) -> bool {
    s.clients.iter().any(|c| c.logs.iter().any(|l| l.removed))
}

fn some_handoff(_: &Spec, s: &State) -> bool {
    s.threads.iter().flatten().any(|f| match f {
        Frame::Sleep {
            hub,
            ticket,
            woken: true,
        } => {
            let h = &s.hubs[usize::from(*hub)];
            !h.draining && h.done < *ticket
        }
        _ => false,
    })
}

fn some_owed(_: &Spec, s: &State) -> bool {
    s.owed.iter().any(|o| !o.is_empty())
}

fn some_all_deregistered(spec: &Spec, s: &State) -> bool {
    spec.quiescent(s) && s.clients.iter().all(|c| c.returned_ok)
}

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
            for c in &mut s.clients {
                c.status = crate::spec::Status::Open;
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
        Some(self.reduce(n, t, op))
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always("P1 no callback begins after deregister returned", p1),
            Property::always("P2 deregister returns only after its callbacks ended", p2),
            Property::always("P3 no deadlock", p3),
            Property::always("P4 deregister retires only its own client", p4_own_client),
            Property::always(
                "P4 deregister from its own callback is refused",
                p4_own_callback_refused,
            ),
            Property::always("P5 per-hub order, arrival first, nothing after removal", p5),
            Property::always(
                "P6 a drainer never takes an item beyond its own (bounded work)",
                p6_bounded,
            ),
            Property::always(
                "P7 nothing stranded: all threads idle, every queue empty",
                p7_nothing_stranded,
            ),
            Property::eventually(
                "every deregister returns and every queue drains",
                live_quiescent,
            ),
            Property::eventually(
                "every queued item is delivered or dropped as the contract says",
                live_delivered,
            ),
            Property::sometimes(
                "deregister waits for a running callback",
                some_wait_for_running,
            ),
            Property::sometimes(
                "one client's callbacks run on two threads",
                some_two_threads_one_client,
            ),
            Property::sometimes("two hubs are delivered at once", some_two_hubs_delivering),
            Property::sometimes("delivery reaches a closed client", some_closed_target),
            Property::sometimes(
                "a deregister from a callback waits",
                some_callback_deregister_waits,
            ),
            Property::sometimes("a deregister would close a cycle", some_would_deadlock),
            Property::sometimes("a callback deregisters its own client", some_own_callback),
            Property::sometimes("a stale handle is deregistered", some_stale),
            Property::sometimes("an arrival replay is queued", some_replay_queued),
            Property::sometimes("a replay meets a queued removal", some_replay_dropped),
            Property::sometimes("a removal is delivered", some_removal_delivered),
            Property::sometimes("a sleeper is woken and handed the idle queue", some_handoff),
            Property::sometimes("an append from a callback is owed by its thread", some_owed),
            Property::sometimes(
                "every client deregistered, all quiet",
                some_all_deregistered,
            ),
        ]
    }
}

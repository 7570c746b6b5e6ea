//! The closed world's program: which actions each thread may try next, within the
//! budgets of the [`Size`](crate::sizes::Size), and what each step spends.
//!
//! Contract: [`Spec::candidates`] proposes, per thread, the actions its top frame allows
//! (for an idle thread or a running callback, the program's own choices within the
//! budgets, a shutdown among them where the size has one), with the values the state
//! says (`from`, `in_flight`, `settle`, ...); [`Spec::apply`] decides which are enabled.
//! [`Spec::charge_budgets`] spends the budgets of a step taken; [`Spec::enabled`] pairs
//! each enabled action with its next state (P3 and quiescence read it). Trace validation
//! (an open world) uses none of this.
//!
//! Beside the budgets: a registered client is deregistered by the program once; a hub
//! reports its changes, then its removal; a shutdown's removals come in any order (slot
//! order is one refinement); only hub events' callbacks query; a callback's request is
//! its own client's, on its hub; a callback's hub report is never drained inside it (the
//! thread may be another hub's drainer). In the closed world only a client registered
//! inside a callback can be deregistered before its greeting (trace validation accepts
//! both).

use crate::actions::{Action, Op};
use crate::mutants::SpecMutant;
use crate::spec::Spec;
use crate::state::{members, At, Frame, Owed, Phase, PmAt, State, Status};

impl Spec {
    /// Candidate actions of thread `t` (the closed world's budgets applied); the ones
    /// whose guard fails are dropped by [`Spec::apply`].
    pub fn candidates(&self, s: &State, t: u8, out: &mut Vec<Op>) {
        let ti = usize::from(t);
        let nc = s.clients.len() as u8;
        match s.threads[ti].last().copied() {
            None => {
                for c in 0..nc {
                    let cl = &s.clients[usize::from(c)];
                    if cl.known && !cl.env_deregistered && cl.status != Status::Unborn {
                        out.push(Op::DeregisterEnter { target: c });
                        if s.detaches_left > 0 {
                            out.push(Op::DetachEnter { target: c });
                        }
                    }
                }
                self.program_reports(s, ti, out);
                if s.requests_left > 0 {
                    for c in 0..nc {
                        if s.clients[usize::from(c)].known {
                            self.requests(s, ti, c, None, out);
                        }
                    }
                }
                if s.shutdowns_left > 0 && !s.shut {
                    out.push(Op::ShutdownEnter);
                }
            }
            Some(Frame::OwesGreeting { client }) => out.push(Op::OweGreeting { client }),
            Some(Frame::Show { client }) => out.extend([Op::Show { client }, Op::Unshown]),
            Some(Frame::Manager {
                client,
                removal,
                at,
            }) => match at {
                PmAt::Start => out.extend([
                    Op::Acquire {
                        client,
                        from: s.clients[usize::from(client)].in_flight,
                    },
                    Op::ManagerSkip { client, removal },
                ]),
                PmAt::Acquired => out.push(Op::ManagerBegin { client, removal }),
                PmAt::Running => {}
                PmAt::Ended => out.push(Op::Release {
                    client,
                    from: s.clients[usize::from(client)].in_flight,
                }),
            },
            Some(Frame::Shutdown { left, settled }) => {
                if settled {
                    out.push(Op::ShutdownReturn);
                } else {
                    out.extend(members(left).map(|client| Op::ShutClose {
                        client,
                        sleeps: s.clients[usize::from(client)].in_flight > 0
                            && !self.m(SpecMutant::RemovalNotLast),
                    }));
                }
            }
            Some(Frame::Registering { hubs, .. }) => {
                for h in members(hubs) {
                    let queued = !s.hubs[usize::from(h)].removed;
                    let ticket = Self::submit_ticket(s, h, queued, false);
                    out.push(Op::Replay {
                        hub: h,
                        queued,
                        settle: Self::submit_decision(s, ti, h, ticket),
                    });
                }
            }
            Some(Frame::Kick { hub }) => {
                let ticket = Self::submit_ticket(s, hub, false, true);
                out.push(Op::Kick {
                    hub,
                    settle: Self::submit_decision(s, ti, hub, ticket),
                });
            }
            Some(Frame::Settling) => {
                if let Some(&Owed::Deliver { hub, ticket }) = s.owed[ti].first() {
                    out.push(Op::Settles {
                        hub,
                        ticket,
                        settle: Self::settle_decision(s, hub, ticket),
                    });
                }
            }
            Some(Frame::Sleep { hub, ticket, woken }) => {
                if woken || self.open {
                    out.push(Op::Awake {
                        hub,
                        settle: Self::settle_decision(s, hub, ticket),
                    });
                }
            }
            Some(Frame::Drain {
                hub,
                target,
                delivered,
                cur: None,
            }) => match self.drain_next(s, hub, target, delivered) {
                Some(seq) => out.push(Op::Take { hub, seq }),
                None => out.push(Op::DrainStop {
                    hub,
                    woke: Self::has_sleepers(s, hub) && !self.m(SpecMutant::HandoffWakesNobody),
                }),
            },
            Some(Frame::Drain { cur: Some(d), .. }) => match d.at {
                At::Next => {
                    for c in members(d.targets) {
                        let cl = &s.clients[usize::from(c)];
                        if cl.closed() {
                            out.push(Op::Skip { client: c });
                        } else if self.m(SpecMutant::CheckThenCall) {
                            out.push(Op::Peek { client: c });
                        } else {
                            out.push(Op::Acquire {
                                client: c,
                                from: cl.in_flight,
                            });
                        }
                    }
                }
                At::Behind(c) => out.push(Op::TurnWaits {
                    client: c,
                    seq: d.item.seq(),
                }),
                At::Waiting(c) if self.m(SpecMutant::TurnMissesDeregister) => {
                    out.push(Op::Release {
                        client: c,
                        from: s.clients[usize::from(c)].in_flight,
                    })
                }
                At::Waiting(c) | At::Uncounted(c) => out.push(Op::TakeTurn { client: c }),
                At::Acquired(c) if self.m(SpecMutant::ReleaseBeforeCallback) => {
                    out.push(Op::Release {
                        client: c,
                        from: s.clients[usize::from(c)].in_flight,
                    })
                }
                At::Acquired(c) | At::Peeked(c) | At::Released(c) => out.push(Op::Begin {
                    client: c,
                    seq: d.item.seq(),
                }),
                At::Running(_) | At::Bare(_) => {}
                At::Ended(c) => out.push(Op::Release {
                    client: c,
                    from: s.clients[usize::from(c)].in_flight,
                }),
            },
            Some(Frame::Query { .. }) => out.push(Op::QueryDone),
            Some(Frame::Requesting { hub, .. }) => out.push(Op::RequestQueued {
                queued: Self::request_fits(s, hub),
            }),
            Some(Frame::Answering {
                accepted, reported, ..
            }) => out.push(Op::Answered { accepted, reported }),
            Some(f @ (Frame::Callback { client, .. } | Frame::ManagerCallback { client, .. })) => {
                out.push(Op::End {
                    client,
                    panicked: false,
                });
                if s.panics_left > 0 {
                    out.push(Op::End {
                        client,
                        panicked: true,
                    });
                }
                // A Policy Manager event has no hub to query.
                if s.queries_left > 0 && matches!(f, Frame::Callback { .. }) {
                    out.push(Op::Query);
                }
                for c in 0..nc {
                    if s.clients[usize::from(c)].known {
                        if s.reentrant_left > 0 {
                            out.push(Op::DeregisterEnter { target: c });
                        }
                        if s.detaches_left > 0 {
                            out.push(Op::DetachEnter { target: c });
                        }
                    }
                }
                if s.reports_left > 0 {
                    self.program_reports(s, ti, out);
                }
                // A callback requests power for its own client, on its hub.
                if let (Frame::Callback { client, hub, .. }, true) = (f, s.requests_left > 0) {
                    self.requests(s, ti, client, Some(hub), out);
                }
            }
            Some(Frame::Deregister { target, phase, .. }) => match phase {
                Phase::Entered | Phase::Checked => {
                    out.extend([
                        Op::WaitFor,
                        Op::NoCheck,
                        Op::Fail,
                        Op::Retire { victim: target },
                    ]);
                    if self.m(SpecMutant::NoGeneration) {
                        out.extend(
                            (0..nc)
                                .filter(|&v| v != target)
                                .map(|victim| Op::Retire { victim }),
                        );
                    }
                }
                Phase::Retired => {
                    let Some(Frame::Deregister { victim, .. }) = s.threads[ti].last() else {
                        unreachable!()
                    };
                    out.push(Op::Close {
                        in_flight: s.clients[usize::from(*victim)].in_flight,
                    });
                }
                Phase::MustSleep => out.push(Op::Sleep),
                Phase::Waiting => out.extend([Op::Return, Op::Test]),
                Phase::Tested => out.push(Op::Park),
                Phase::Asleep { .. } => out.push(Op::Wake),
                Phase::AtZero => out.extend([Op::Return, Op::DetachReturn]),
            },
        }
    }

    /// The program's registrations and hub reports left to make (by an idle thread, or
    /// by a callback within its budget): register an unborn client; a hub arrives (again,
    /// after its removal, within the re-arrival budget), reports its changes, then its
    /// removal; the hardware answers a power request.
    fn program_reports(&self, s: &State, t: usize, out: &mut Vec<Op>) {
        for (c, cl) in s.clients.iter().enumerate() {
            if cl.status == Status::Unborn {
                out.push(Op::Register { client: c as u8 });
            }
        }
        for (h, hub) in s.hubs.iter().enumerate() {
            let h = h as u8;
            if !hub.arrived || (hub.removed && s.rearrivals_left > 0) {
                out.push(Op::HubArrive {
                    hub: h,
                    clients: s.open_clients(),
                });
            } else if !hub.removed {
                let settle = Self::submit_decision(s, t, h, Self::submit_ticket(s, h, true, false));
                if hub.reported < self.size.changes {
                    out.push(Op::Change { hub: h, settle });
                } else if self.size.removal {
                    out.push(Op::Remove { hub: h, settle });
                }
            }
        }
        self.answers(s, t, out);
    }

    /// `client`'s power requests (for `hub`, or for every hub that arrived), with the
    /// verdict the state gives.
    fn requests(&self, s: &State, t: usize, client: u8, hub: Option<u8>, out: &mut Vec<Op>) {
        for (h, hb) in s.hubs.iter().enumerate() {
            let h = h as u8;
            if hb.arrived && hub.is_none_or(|x| x == h) {
                out.push(Op::Request {
                    client,
                    hub: h,
                    queued: self.request_goes_on(s, t, client, h),
                });
            }
        }
    }

    /// The hardware's answers to the requests it has (each distinct one, accepted or
    /// rejected).
    fn answers(&self, s: &State, t: usize, out: &mut Vec<Op>) {
        for (h, hub) in s.hubs.iter().enumerate() {
            let h = h as u8;
            let mut last = None;
            for &r in &hub.requests {
                if last == Some(r) {
                    continue;
                }
                last = Some(r);
                let settle =
                    Self::submit_decision(s, t, h, Self::submit_ticket(s, h, r.live, false));
                out.push(Op::Answer {
                    hub: h,
                    client: r.client,
                    accepted: true,
                    live: r.live,
                    settle,
                });
                out.push(if self.m(SpecMutant::RejectedRequestReported) {
                    Op::Answer {
                        hub: h,
                        client: r.client,
                        accepted: false,
                        live: r.live,
                        settle,
                    }
                } else {
                    Op::Reject {
                        hub: h,
                        client: r.client,
                        live: r.live,
                    }
                });
            }
        }
    }

    /// The enabled actions of every thread: (thread, action, next state).
    pub fn enabled(&self, s: &State) -> Vec<(Action, State)> {
        let mut out = Vec::new();
        let mut ops = Vec::new();
        for t in 0..s.threads.len() as u8 {
            ops.clear();
            self.candidates(s, t, &mut ops);
            for &op in &ops {
                if let Ok(mut next) = self.apply(s, t, op) {
                    self.charge_budgets(s, &mut next, usize::from(t), op);
                    out.push(((t, op), next));
                }
            }
        }
        out
    }

    /// Spends the closed world's budgets for `op`, taken by thread `t` from `s` to `n`: a
    /// deregister made by the program (once per client) or by a callback (the re-entrant
    /// budget), a detach (the detach budget), a program action made by a callback (the
    /// callback-report budget), a hub's arrival again (the re-arrival budget), the
    /// shutdown.
    pub(crate) fn charge_budgets(&self, s: &State, n: &mut State, t: usize, op: Op) {
        if self.open {
            return;
        }
        if let Op::DeregisterEnter { target } = op {
            if s.threads[t].is_empty() {
                n.clients[usize::from(target)].env_deregistered = true;
            } else {
                n.reentrant_left -= 1;
            }
        }
        // The program's detach releases its handle, as its deregister would.
        if let Op::DetachEnter { target } = op {
            if s.threads[t].is_empty() {
                n.clients[usize::from(target)].env_deregistered = true;
            }
            n.detaches_left -= 1;
        }
        let report = matches!(
            op,
            Op::Register { .. }
                | Op::HubArrive { .. }
                | Op::Change { .. }
                | Op::Remove { .. }
                | Op::Answer { .. }
                | Op::Reject { .. }
        );
        if let Op::Request { .. } = op {
            n.requests_left -= 1;
        }
        if report && !s.threads[t].is_empty() {
            n.reports_left -= 1;
        }
        if let Op::HubArrive { hub, .. } = op {
            if s.hubs[usize::from(hub)].arrived {
                n.rearrivals_left -= 1;
            }
        }
        if let Op::ShutdownEnter = op {
            n.shutdowns_left -= 1;
        }
    }
}

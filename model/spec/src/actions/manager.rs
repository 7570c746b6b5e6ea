//! The Policy Manager's own events: a client's greeting and `shutdown`.
//!
//! **The greeting.** `register` puts the client in the registry *hidden*: hub arrivals do
//! not address it. Its greeting (outside callbacks at once; inside a callback it is owed,
//! [`Op::OweGreeting`], and the thread's outermost call makes it, oldest obligation
//! first) delivers its Policy Manager arrival, a delivery-like call that holds the
//! client's turn ([`Frame::Manager`]: `Acquire` from 0, [`Op::ManagerBegin`], `End`,
//! `Release`; or [`Op::ManagerSkip`] if a deregister closed it first), then shows it to
//! the hubs ([`Op::Show`]: hub arrivals address it from now on, and a replay is queued
//! for every hub present, unless the Policy Manager shut down), or finds it deregistered
//! and shows nothing ([`Op::Unshown`], no step reports it). The code:
//! `PolicyManager::register`, `greet`, `arrive`, `show`; `hub::owe_greeting`,
//! `settle_obligations`.
//!
//! **Shutdown.** [`Op::ShutdownEnter`] shuts the registry (no registration or hub
//! arrival is accepted any more) and takes the registered clients; for each, in any
//! order, it closes the client ([`Op::ShutClose`]; a step reports it only when calls
//! are in flight, `ShutdownSleeps`), waits for its count to reach 0, and then, if it is
//! still registered and was greeted, delivers its removal as the one call after the
//! close (`Acquire` from 0, which holds the turn), else skips it; then it settles its
//! obligations and returns ([`Op::ShutdownReturn`]). The code: `PolicyManager::shutdown`,
//! `Rundown::acquire_closed`.
//!
//! Contract: one function per action; the count, the callback's end and the release of
//! a Policy Manager event are the delivery's actions (`delivery.rs`), which act on a
//! [`Frame::Manager`] as on a drainer's delivery.
//!
//! [`Op::OweGreeting`]: super::Op::OweGreeting
//! [`Op::ManagerBegin`]: super::Op::ManagerBegin
//! [`Op::ManagerSkip`]: super::Op::ManagerSkip
//! [`Op::Show`]: super::Op::Show
//! [`Op::Unshown`]: super::Op::Unshown
//! [`Op::ShutdownEnter`]: super::Op::ShutdownEnter
//! [`Op::ShutClose`]: super::Op::ShutClose
//! [`Op::ShutdownReturn`]: super::Op::ShutdownReturn

use super::delivery::bumps;
use super::{ensure, top, R};
use crate::mutants::SpecMutant;
use crate::spec::Spec;
use crate::state::{bit, members, Frame, Owed, PmAt, State};

impl Spec {
    /// `register` inside a callback records the client's greeting as the thread's
    /// obligation (`hub::owe_greeting`).
    pub(super) fn owe_greeting(&self, s: &State, n: &mut State, t: usize, client: u8) -> R {
        ensure(
            top(s, t) == Some(Frame::OwesGreeting { client }),
            "a greeting is owed by the register inside a callback that registered the client",
        )?;
        n.threads[t].pop();
        n.owed[t].push(Owed::Greet { client });
        Ok(())
    }

    /// The greeting shows its client to the hubs (under the registry lock): hub arrivals
    /// address it from now on, and a replay is owed for every hub present (unless its
    /// removal is queued), queued next one hub at a time; none after shutdown.
    pub(super) fn show(&self, s: &State, n: &mut State, t: usize, client: u8) -> R {
        ensure(
            top(s, t) == Some(Frame::Show { client }),
            "a client is shown by its greeting",
        )?;
        ensure(!self.registry_blocked(s), "the registry lock is held")?;
        let c = &s.clients[usize::from(client)];
        ensure(
            c.registered() && c.hidden,
            "only a client still registered is shown (once)",
        )?;
        n.threads[t].pop();
        let mut hubs = if s.shut {
            0
        } else {
            s.hubs
                .iter()
                .enumerate()
                .filter(|(_, h)| h.arrived)
                .fold(0, |a, (i, _)| a | bit(i as u8))
        };
        let c = &mut n.clients[usize::from(client)];
        c.hidden = false;
        // Every hub present now is owed to the client: its replay, unless the hub's
        // removal is queued before the replay is.
        for h in members(hubs) {
            if !s.hubs[usize::from(h)].removed {
                c.logs[usize::from(h)].owed = true;
            }
        }
        if self.m(SpecMutant::ReplayMissesHub) && hubs != 0 {
            hubs &= hubs - 1; // one present hub is not replayed
        }
        n.threads[t].push(Frame::Registering { client, hubs });
        Ok(())
    }

    /// The greeting finds its client deregistered (under the registry lock): nothing is
    /// shown.
    pub(super) fn unshown(&self, s: &State, n: &mut State, t: usize) -> R {
        let Some(Frame::Show { client }) = top(s, t) else {
            return Err("only a greeting shows a client");
        };
        ensure(!self.registry_blocked(s), "the registry lock is held")?;
        ensure(
            !s.clients[usize::from(client)].registered(),
            "a greeting shows nothing only for a client deregistered meanwhile",
        )?;
        n.threads[t].pop();
        Ok(())
    }

    /// The callback of `client` begins for its Policy Manager arrival or (`removal`) its
    /// removal, under the count the event's delivery holds; the history records whether
    /// the arrival was its first call (M1) and whether the removal was its last (M2).
    pub(super) fn manager_begin(
        &self,
        s: &State,
        n: &mut State,
        t: usize,
        client: u8,
        removal: bool,
    ) -> R {
        ensure(
            top(s, t)
                == Some(Frame::Manager {
                    client,
                    removal,
                    at: PmAt::Acquired,
                }),
            "a Policy Manager event's call begins only while its delivery holds the client's count",
        )?;
        *n.threads[t].last_mut().expect("manager frame") = Frame::Manager {
            client,
            removal,
            at: PmAt::Running,
        };
        let c = &mut n.clients[usize::from(client)];
        let hub_calls = c.logs.iter().any(|l| l.seen);
        if removal {
            c.arrival_broken |= !c.greeted;
        } else {
            c.arrival_broken |= c.greeted || hub_calls || c.removal_began;
        }
        c.removal_broken |= c.removal_began;
        c.removal_began |= removal;
        let after_ok = c.returned_ok;
        n.threads[t].push(Frame::ManagerCallback {
            client,
            removal,
            after_ok,
        });
        Ok(())
    }

    /// A Policy Manager event is not delivered: the arrival of a client a deregister (or
    /// shutdown) closed first; the removal, once the client's count reached 0, of a client
    /// deregistered meanwhile or never greeted.
    pub(super) fn manager_skip(
        &self,
        s: &State,
        n: &mut State,
        t: usize,
        client: u8,
        removal: bool,
    ) -> R {
        ensure(
            top(s, t)
                == Some(Frame::Manager {
                    client,
                    removal,
                    at: PmAt::Start,
                }),
            "a Policy Manager event is skipped by its delivery, before its count is taken",
        )?;
        let c = &s.clients[usize::from(client)];
        if removal {
            ensure(!self.registry_blocked(s), "the registry lock is held")?;
            ensure(
                c.in_flight == 0 || self.m(SpecMutant::RemovalNotLast),
                "shutdown waits for the client's calls in flight first",
            )?;
            ensure(
                !(c.registered() && c.greeted),
                "the removal is skipped only for a client deregistered or never greeted",
            )?;
        } else {
            ensure(
                c.closed(),
                "the arrival is skipped only for a closed client",
            )?;
        }
        n.threads[t].pop();
        Ok(())
    }

    /// `shutdown` (outside callbacks, once): under the registry lock the Policy Manager
    /// is shut and the registered clients taken, shown or not.
    pub(super) fn shutdown_enter(&self, s: &State, n: &mut State, t: usize) -> R {
        ensure(top(s, t).is_none(), "shutdown is called outside callbacks")?;
        ensure(!self.registry_blocked(s), "the registry lock is held")?;
        ensure(!s.shut, "a second shutdown is refused before it begins")?;
        n.shut = true;
        n.threads[t].push(Frame::Shutdown {
            left: s.registered_clients(),
            settled: false,
        });
        Ok(())
    }

    /// `shutdown` closes `client` (mutant removal-not-last: does not), with calls in
    /// flight (`sleeps`) or none, then waits for its count to reach 0 and delivers or skips
    /// its removal (the frame it pushes).
    pub(super) fn shut_close(
        &self,
        s: &State,
        n: &mut State,
        t: usize,
        client: u8,
        sleeps: bool,
    ) -> R {
        let Some(Frame::Shutdown {
            left,
            settled: false,
        }) = top(s, t)
        else {
            return Err("only shutdown closes a client for its removal");
        };
        ensure(
            left & bit(client) != 0,
            "shutdown closes each client it took once",
        )?;
        let closes = !self.m(SpecMutant::RemovalNotLast);
        // It may see the bumps of deliveries skipping a client a deregister closed.
        let seen = s.clients[usize::from(client)].in_flight;
        ensure(
            if closes {
                (seen > 0 || (sleeps && bumps(s, client) > 0)) == sleeps
            } else {
                !sleeps
            },
            "shutdown sleeps exactly when it closes a client with calls in flight",
        )?;
        *n.threads[t].last_mut().expect("shutdown frame") = Frame::Shutdown {
            left: left & !bit(client),
            settled: false,
        };
        if closes {
            n.clients[usize::from(client)].shut_closed = true;
        }
        n.threads[t].push(Frame::Manager {
            client,
            removal: true,
            at: PmAt::Start,
        });
        Ok(())
    }

    /// `shutdown` returns: every removal delivered or skipped, its obligations settled.
    pub(super) fn shutdown_return(&self, s: &State, n: &mut State, t: usize) -> R {
        ensure(
            top(s, t)
                == Some(Frame::Shutdown {
                    left: 0,
                    settled: true,
                }),
            "shutdown returns after every removal and its obligations",
        )?;
        n.threads[t].pop();
        Ok(())
    }
}

//! A power request and the hardware's answer: `assign_power_level`, `HubPort::answer`.
//!
//! **The request.** [`Op::Request`] is `assign_power_level` by a client, from an idle
//! thread or from inside a callback. Under the registry lock it checks that the Policy
//! Manager is not shut, that the client is registered (or that the thread is inside one
//! of the client's own callbacks: a deregister of it may be waiting for that callback),
//! that it was granted `ASSIGN_POWER`, and that the hub is present with its removal not
//! queued; and still under that lock it queues the request on the hub (a [`Request`],
//! live). Otherwise it is refused and nothing changes (no step reports a refusal). A
//! connector's role and partner are not modelled: every present hub's connector is a
//! sink with its partner attached. The code: `PolicyManager::assign_power_level`,
//! `authorize_in`, `Hub::request_power`.
//!
//! **The answer.** The hardware answers a request it took, in any order. An accepted
//! answer goes through the submit path of a connector change ([`Op::Answer`]): a live
//! request's change is appended with the hub's next seq, a stale one (the hub's removal
//! was queued since) appends nothing; the caller settles it as a change's caller does
//! (inside a callback, owes it); then the answer returns ([`Op::Answered`]). A rejected
//! answer ([`Op::Reject`]) queues nothing. The hub's removal makes its requests stale.
//! The code: `HubPort::answer`, `Hub::answer` (`src/hub.rs`).
//!
//! Contract: one function per action. The spec mutants: access-checked-late (the request
//! is queued without the access), power-request-unlocked (checked under the lock, queued
//! after it: [`Frame::Requesting`], [`Op::RequestQueued`]), rejected-request-reported (a
//! rejected answer goes through [`Op::Answer`] and appends a change).
//!
//! [`Op::Request`]: super::Op::Request
//! [`Op::RequestQueued`]: super::Op::RequestQueued
//! [`Op::Answer`]: super::Op::Answer
//! [`Op::Answered`]: super::Op::Answered
//! [`Op::Reject`]: super::Op::Reject

use super::{ensure, idle_or_callback, top, Settle, R};
use crate::mutants::SpecMutant;
use crate::spec::Spec;
use crate::state::{bit, Frame, Item, Request, State};

impl Spec {
    /// Whether `client`'s request on thread `t` passes the registry lock's checks: not
    /// shut, registered (or its own callback's call), granted `ASSIGN_POWER` (mutant
    /// access-checked-late: not checked before the request is queued).
    fn request_authorized(&self, s: &State, t: usize, client: u8) -> bool {
        let c = &s.clients[usize::from(client)];
        let own = s.holding(t) & bit(client) != 0;
        !s.shut && (c.registered() || own) && (c.power || self.m(SpecMutant::AccessCheckedLate))
    }

    /// What thread `t`'s request of `client` for `hub` does: true if it is queued (mutant
    /// power-request-unlocked: if it passes the registry's checks and goes on to queue).
    pub(crate) fn request_goes_on(&self, s: &State, t: usize, client: u8, hub: u8) -> bool {
        self.request_authorized(s, t, client)
            && (self.m(SpecMutant::PowerRequestUnlocked) || Self::request_fits(s, hub))
    }

    /// Whether a request can be queued on `hub`: present, its removal not queued.
    pub(crate) fn request_fits(s: &State, hub: u8) -> bool {
        let h = &s.hubs[usize::from(hub)];
        h.arrived && !h.removed
    }

    /// Queues `client`'s request on `hub`, recording what M3 reads: queued for a client
    /// without the access, or after its deregister or the shutdown returned.
    fn queue_request(s: &State, n: &mut State, client: u8, hub: u8) {
        let c = &s.clients[usize::from(client)];
        n.unauthorized_request |= !c.power;
        n.late_request |= c.returned_ok || s.shutdown_returned();
        let requests = &mut n.hubs[usize::from(hub)].requests;
        requests.push(Request { client, live: true });
        requests.sort_unstable();
    }

    /// `assign_power_level` by `client` for `hub`: checked and queued under the registry
    /// lock (`queued`), or refused (nothing changes but the history). Mutant
    /// power-request-unlocked: a request that passes the checks is queued by the next
    /// step ([`Spec::request_queued`]), after the lock is released.
    pub(super) fn request(
        &self,
        s: &State,
        n: &mut State,
        t: usize,
        client: u8,
        hub: u8,
        queued: bool,
    ) -> R {
        ensure(
            idle_or_callback(s, t),
            "assign_power_level from an idle thread or a callback",
        )?;
        ensure(!self.registry_blocked(s), "the registry lock is held")?;
        let authorized = self.request_authorized(s, t, client);
        if self.m(SpecMutant::PowerRequestUnlocked) {
            ensure(
                queued == authorized,
                "the request goes on exactly when the registry's checks pass",
            )?;
            if queued {
                n.threads[t].push(Frame::Requesting { client, hub });
            } else {
                n.power_refused = true;
            }
            return Ok(());
        }
        let fits = Self::request_fits(s, hub);
        if authorized && fits {
            ensure(
                !self.hub_blocked(s, hub),
                "the hub's lock is held across a callback",
            )?;
        }
        ensure(
            queued == (authorized && fits),
            "a request is queued exactly when the client may request and the hub is present",
        )?;
        if queued {
            Self::queue_request(s, n, client, hub);
        } else {
            n.power_refused = true;
        }
        Ok(())
    }

    /// Mutant power-request-unlocked: the checked request is queued on its hub (or
    /// refused, its removal queued), the registry lock released in between.
    pub(super) fn request_queued(&self, s: &State, n: &mut State, t: usize, queued: bool) -> R {
        let Some(Frame::Requesting { client, hub }) = top(s, t) else {
            return Err("only a checked request is queued");
        };
        ensure(
            !self.hub_blocked(s, hub),
            "the hub's lock is held across a callback",
        )?;
        ensure(
            queued == Self::request_fits(s, hub),
            "a request is queued exactly when the hub is present",
        )?;
        n.threads[t].pop();
        if queued {
            Self::queue_request(s, n, client, hub);
        } else {
            n.power_refused = true;
        }
        Ok(())
    }

    /// Takes one of `client`'s requests on `hub` (`live` or stale) from `n`.
    fn take_request(n: &mut State, hub: u8, client: u8, live: bool) -> R {
        let requests = &mut n.hubs[usize::from(hub)].requests;
        let Some(i) = requests.iter().position(|r| *r == Request { client, live }) else {
            return Err("the hardware answers a request the hub has (live or stale as it is)");
        };
        requests.remove(i);
        Ok(())
    }

    /// The hardware answers `client`'s request on `hub` through the submit path
    /// (`accepted`; rejected only in mutant rejected-request-reported): a `live` request's
    /// change is appended with the next seq, a stale one appends nothing; then the frames
    /// of its settling, under the answer's own ([`Frame::Answering`]).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn answer(
        &self,
        s: &State,
        n: &mut State,
        t: usize,
        hub: u8,
        client: u8,
        accepted: bool,
        live: bool,
        settle: Settle,
    ) -> R {
        ensure(
            idle_or_callback(s, t),
            "the hardware answers from an idle thread or a callback",
        )?;
        ensure(
            accepted || self.m(SpecMutant::RejectedRequestReported),
            "a rejected answer does not go through the submit path",
        )?;
        ensure(
            !self.hub_blocked(s, hub),
            "the hub's lock is held across a callback",
        )?;
        Self::take_request(n, hub, client, live)?;
        n.rejected_reported |= !accepted && live;
        let item = if live {
            let h = &mut n.hubs[usize::from(hub)];
            h.seq += 1;
            Some(Item::Change { seq: h.seq })
        } else {
            None
        };
        n.threads[t].push(Frame::Answering {
            hub,
            client,
            accepted,
            reported: live,
        });
        self.submit(n, t, hub, item, false, settle)
    }

    /// The answer returns (`PowerAnswered`), its change settled.
    pub(super) fn answered(
        &self,
        s: &State,
        n: &mut State,
        t: usize,
        accepted: bool,
        reported: bool,
    ) -> R {
        let Some(Frame::Answering {
            accepted: a,
            reported: r,
            ..
        }) = top(s, t)
        else {
            return Err("only an answer that went through the submit path returns so");
        };
        ensure(
            a == accepted && r == reported,
            "the answer returns with what it was and what it queued",
        )?;
        n.threads[t].pop();
        Ok(())
    }

    /// The hardware rejects `client`'s (`live` or stale) request on `hub`: nothing is
    /// queued (mutant rejected-request-reported: [`Spec::answer`] instead).
    pub(super) fn reject(
        &self,
        s: &State,
        n: &mut State,
        t: usize,
        hub: u8,
        client: u8,
        live: bool,
    ) -> R {
        ensure(
            idle_or_callback(s, t),
            "the hardware answers from an idle thread or a callback",
        )?;
        ensure(
            !self.m(SpecMutant::RejectedRequestReported),
            "the mutant submits a rejected answer as an accepted one",
        )?;
        Self::take_request(n, hub, client, live)
    }
}

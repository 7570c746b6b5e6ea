//! The drainer: the one thread delivering a hub's queue, up to its own item.
//!
//! Contract: between items the drainer either takes the front item ([`Op::Take`]: its
//! targets fixed then) or stops ([`Op::DrainStop`]: at its target or at an empty queue,
//! waking the sleepers on the hub); `drain_next` says which, for both the action and the
//! enumeration. `done` takes on the ticket of the item just delivered when the drainer
//! relocks (its next take or its stop), as in the code (`Hub::drain`, `Hub::settle`).
//!
//! [`Op::Take`]: super::Op::Take
//! [`Op::DrainStop`]: super::Op::DrainStop

use super::{ensure, top, R};
use crate::mutants::SpecMutant;
use crate::spec::Spec;
use crate::state::{bit, At, Delivery, Entry, Frame, Item, State};

/// The target and delivered count of `top` if it is `hub`'s drainer between items; else
/// why not (`not_drainer`: no drainer between items; `other_hub`: another hub's).
fn idle_drainer(
    top: Option<Frame>,
    hub: u8,
    not_drainer: &'static str,
    other_hub: &'static str,
) -> Result<(u8, u8), &'static str> {
    let Some(Frame::Drain {
        hub: dh,
        target,
        delivered,
        cur: None,
    }) = top
    else {
        return Err(not_drainer);
    };
    ensure(dh == hub, other_hub)?;
    Ok((target, delivered))
}

impl Spec {
    /// What the drainer of `hub` on thread `t` (between items) does next: take the front
    /// item (`Some(seq)`) or stop (`None`). `done` is the hub's, with the item just
    /// delivered counted.
    pub(crate) fn drain_next(&self, s: &State, hub: u8, target: u8, delivered: u8) -> Option<u8> {
        let h = &s.hubs[usize::from(hub)];
        let done = h.done.max(delivered);
        let short = done < target || self.m(SpecMutant::UnboundedDrain);
        let one_done = self.m(SpecMutant::DrainOnePerPass) && delivered != 0;
        match h.queue.first() {
            Some(e) if short && !one_done => Some(e.item.seq()),
            Some(_) | None => None,
        }
    }

    /// Whether a thread sleeps on `hub`.
    pub(crate) fn has_sleepers(s: &State, hub: u8) -> bool {
        s.threads
            .iter()
            .flatten()
            .any(|f| matches!(f, Frame::Sleep { hub: h, .. } if *h == hub))
    }

    /// The drainer of `hub` (short of its target) takes the front item, `seq`: its
    /// targets are the arrival's clients, the subscribers, or the replay's client unless
    /// it is subscribed already.
    pub(super) fn take(&self, s: &State, n: &mut State, t: usize, hub: u8, seq: u8) -> R {
        let (target, delivered) = idle_drainer(
            top(s, t),
            hub,
            "only a drainer, between items, takes one",
            "only the hub's drainer takes its items",
        )?;
        ensure(
            self.drain_next(s, hub, target, delivered).is_some(),
            "the drainer takes an item only short of its target, from a non-empty queue",
        )?;
        let h = &mut n.hubs[usize::from(hub)];
        h.done = h.done.max(delivered);
        let Entry { ticket, item } = h.queue.remove(0);
        ensure(
            item.seq() == seq,
            "the drainer takes the queue's front item",
        )?;
        let targets = match item {
            Item::Arrival { clients } => clients,
            Item::Change { .. } | Item::Removal { .. } => h.subscribers,
            Item::Replay { client, .. } => bit(client) & !h.subscribers,
        };
        *n.threads[t].last_mut().expect("drain frame") = Frame::Drain {
            hub,
            target,
            delivered: 0,
            cur: Some(Delivery {
                item,
                ticket,
                targets,
                kept: 0,
                at: At::Next,
            }),
        };
        Ok(())
    }

    /// The drainer of `hub` stops (at its target or at an empty queue) and, `woke`,
    /// wakes every thread sleeping on the hub.
    pub(super) fn drain_stop(&self, s: &State, n: &mut State, t: usize, hub: u8, woke: bool) -> R {
        let (target, delivered) = idle_drainer(
            top(s, t),
            hub,
            "only a drainer, between items, stops",
            "only the hub's drainer stops it",
        )?;
        ensure(
            self.drain_next(s, hub, target, delivered).is_none(),
            "the drainer stops only at its target or at an empty queue",
        )?;
        let sleepers = Self::has_sleepers(s, hub);
        ensure(
            woke == (sleepers && !self.m(SpecMutant::HandoffWakesNobody)),
            "the drainer's stop wakes the sleepers exactly when there are some",
        )?;
        let h = &mut n.hubs[usize::from(hub)];
        h.done = h.done.max(delivered);
        h.draining = false;
        if woke {
            for f in n.threads.iter_mut().flatten() {
                if let Frame::Sleep { hub: sh, woken, .. } = f {
                    if *sh == hub {
                        *woken = true;
                    }
                }
            }
        }
        n.threads[t].pop();
        Ok(())
    }
}

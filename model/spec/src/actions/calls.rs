//! The program's calls: `register` (its greeting is `manager.rs`; the arrival replays
//! its showing queues, one hub at a time, are here), `hub_arrival` (and its kick), a
//! connector change and a hub's removal.
//!
//! Contract: one function per action ([`Op::Register`], [`Op::Replay`],
//! [`Op::HubArrive`], [`Op::Kick`], [`Op::Change`], [`Op::Remove`]); each one that
//! submits to a hub's queue ends in `Spec::submit` (`submit.rs`), which decides and does
//! what the caller does about its item.
//!
//! [`Op::Register`]: super::Op::Register
//! [`Op::Replay`]: super::Op::Replay
//! [`Op::HubArrive`]: super::Op::HubArrive
//! [`Op::Kick`]: super::Op::Kick
//! [`Op::Change`]: super::Op::Change
//! [`Op::Remove`]: super::Op::Remove

use super::{ensure, idle_or_callback, top, Settle, R};
use crate::spec::Spec;
use crate::state::{bit, members, Entry, Frame, Item, Set, State, Status};

impl Spec {
    /// `register(client)`: into the registry, hidden from the hubs. Outside callbacks
    /// the greeting follows at once (its Policy Manager arrival, then its showing, and
    /// then the thread's obligations); inside one it is owed ([`Spec::owe_greeting`]).
    pub(super) fn register(&self, s: &State, n: &mut State, t: usize, client: u8) -> R {
        ensure(
            idle_or_callback(s, t),
            "register needs a thread that is idle or inside a callback",
        )?;
        ensure(!self.registry_blocked(s), "the registry lock is held")?;
        ensure(!s.shut, "no registration after shutdown")?;
        let c = &mut n.clients[usize::from(client)];
        ensure(c.status == Status::Unborn, "a client registers once")?;
        c.status = Status::Open;
        c.hidden = true;
        if s.holding(t) != 0 {
            // `register` returns the handle to the callback at once.
            c.known = true;
            n.threads[t].push(Frame::OwesGreeting { client });
        } else {
            n.threads[t].push(Frame::Settling);
            self.push_greeting(n, t, client);
        }
        Ok(())
    }

    /// `hub_arrival(hub)`: the arrival (or a re-arrival after the removal) is queued,
    /// addressed to the registered clients; the kick ([`Spec::kick`]) follows.
    pub(super) fn hub_arrive(
        &self,
        s: &State,
        n: &mut State,
        t: usize,
        hub: u8,
        clients: Set,
    ) -> R {
        ensure(idle_or_callback(s, t), "a hub arrives on an idle thread")?;
        ensure(!self.registry_blocked(s), "the registry lock is held")?;
        ensure(!s.shut, "no hub arrives after shutdown")?;
        let h = &mut n.hubs[usize::from(hub)];
        ensure(
            !h.arrived || h.removed,
            "a present hub does not arrive again",
        )?;
        ensure(
            clients == s.open_clients(),
            "an arrival is addressed to exactly the registered clients",
        )?;
        if h.arrived {
            // Arrives again: a new presence, queued behind the old one.
            for c in &mut n.clients {
                c.logs[usize::from(hub)].owed = false;
            }
        }
        let h = &mut n.hubs[usize::from(hub)];
        h.arrived = true;
        h.removed = false;
        h.seq = 0;
        h.appended += 1;
        h.arrival = h.appended;
        h.queue.push(Entry {
            ticket: h.appended,
            item: Item::Arrival { clients },
        });
        for c in members(clients) {
            n.clients[usize::from(c)].logs[usize::from(hub)].owed = true;
        }
        n.threads[t].push(Frame::Kick { hub });
        Ok(())
    }

    /// `connector_changed`: a change is queued with the next seq and ticket.
    pub(super) fn change(&self, s: &State, n: &mut State, t: usize, hub: u8, settle: Settle) -> R {
        self.report(s, n, t, hub, false, settle)
    }

    /// `HubPort::remove`: the removal is queued; later changes and replays are refused.
    pub(super) fn remove(&self, s: &State, n: &mut State, t: usize, hub: u8, settle: Settle) -> R {
        self.report(s, n, t, hub, true, settle)
    }

    /// A change or (`removal`) the removal of a present hub, from an idle thread or a
    /// callback: the next seq, appended and submitted.
    fn report(
        &self,
        s: &State,
        n: &mut State,
        t: usize,
        hub: u8,
        removal: bool,
        settle: Settle,
    ) -> R {
        ensure(
            idle_or_callback(s, t),
            "hardware reports from an idle thread or a callback",
        )?;
        ensure(
            !self.hub_blocked(s, hub),
            "the hub's lock is held across a callback",
        )?;
        let h = &mut n.hubs[usize::from(hub)];
        ensure(
            h.arrived && !h.removed,
            "changes and removal only of a present hub",
        )?;
        h.seq += 1;
        let item = if removal {
            h.removed = true;
            // The hardware's requests are stale now: an accepted answer reports nothing.
            for r in &mut h.requests {
                r.live = false;
            }
            h.requests.sort_unstable();
            Item::Removal { seq: h.seq }
        } else {
            h.reported += 1;
            Item::Change { seq: h.seq }
        };
        self.submit(n, t, hub, Some(item), false, settle)
    }

    /// The showing's arrival replay for one hub of its registering frame: queued, or
    /// (`queued` false) dropped because the hub's removal is queued; then submitted.
    pub(super) fn replay(
        &self,
        s: &State,
        n: &mut State,
        t: usize,
        hub: u8,
        queued: bool,
        settle: Settle,
    ) -> R {
        let Some(Frame::Registering { client, hubs }) = top(s, t) else {
            return Err("a replay is queued by a registering thread");
        };
        ensure(
            hubs & bit(hub) != 0,
            "a replay only for a hub present when the client registered",
        )?;
        ensure(
            !self.hub_blocked(s, hub),
            "the hub's lock is held across a callback",
        )?;
        let Some(Frame::Registering { hubs: left, .. }) = n.threads[t].last_mut() else {
            unreachable!()
        };
        *left &= !bit(hub);
        let h = &n.hubs[usize::from(hub)];
        ensure(
            queued != h.removed,
            "a replay is queued unless the hub's removal is",
        )?;
        let item = queued.then_some(Item::Replay { client, seq: h.seq });
        n.clients[usize::from(client)].logs[usize::from(hub)].owed = queued;
        self.submit(n, t, hub, item, false, settle)
    }

    /// `hub_arrival`'s kick: submits nothing, and sees the arrival's ticket delivered.
    pub(super) fn kick(&self, s: &State, n: &mut State, t: usize, hub: u8, settle: Settle) -> R {
        ensure(
            top(s, t) == Some(Frame::Kick { hub }),
            "a kick follows the hub's arrival",
        )?;
        ensure(
            !self.hub_blocked(s, hub),
            "the hub's lock is held across a callback",
        )?;
        n.threads[t].pop();
        self.submit(n, t, hub, None, true, settle)
    }
}

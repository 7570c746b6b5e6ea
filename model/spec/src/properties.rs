//! The properties the model checker checks: P1–P8, M1, M2 and M3 as `always`, liveness as
//! `eventually`, reachability as `sometimes` (a vacuous specification fails those).
//!
//! Contract: each property is a predicate of one state (with the [`Spec`] for P3 and
//! quiescence, which ask what is enabled); [`all`] lists them with their names, which are
//! what the gate, the report and docs/SPEC.md call them. [`applicable`] says which
//! `sometimes` properties a size can witness at all.

use stateright::Property;

use crate::sizes::Size;
use crate::spec::Spec;
use crate::state::{members, At, Client, Frame, Hub, Item, Log, Owed, Phase, PmAt, State, Status};

impl Spec {
    /// Nothing left to do: every thread idle and the program's budget spent.
    pub fn quiescent(&self, s: &State) -> bool {
        s.all_idle() && self.enabled(s).is_empty()
    }

    /// What the contract promises about delivery at the end: every client still
    /// registered and not closed heard its Policy Manager arrival and was shown to the
    /// hubs; every client that was addressed a hub's arrival (or owed its replay)
    /// received every event of that hub up to the last, unless delivery found it closed
    /// and dropped it.
    pub fn complete(&self, s: &State) -> bool {
        s.clients.iter().all(greeting_complete)
            && s.clients.iter().all(|c| {
                s.hubs
                    .iter()
                    .zip(&c.logs)
                    .all(|(h, log)| hub_complete(h, log))
            })
    }
}

/// A client still registered and not closed heard its Policy Manager arrival and was
/// shown to the hubs.
pub(crate) fn greeting_complete(c: &Client) -> bool {
    !c.registered() || c.closed() || (c.greeted && !c.hidden)
}

/// What one client (its `log` of the hub) received of hub `h` is all the contract owes
/// it: a hub that never arrived owes nothing; one addressed to it (its arrival, or its
/// replay), every event up to the last, unless delivery found it closed and dropped it.
pub(crate) fn hub_complete(h: &Hub, log: &Log) -> bool {
    if !h.arrived {
        true
    } else if !log.owed {
        // Never addressed (or its replay dropped): nothing of it received; or, when the
        // hub arrived again without addressing the client, the whole of its previous
        // presence, up to the removal.
        !log.seen || log.skipped || log.removed || (log.last == h.seq && log.removed == h.removed)
    } else {
        // Addressed: received up to the last item, unless found closed.
        log.skipped || (log.seen && log.last == h.seq && log.removed == h.removed)
    }
}

/// Every running callback (of a hub event or a Policy Manager event): its client and
/// whether it began after a deregister of the client returned `Ok`.
fn callbacks(s: &State) -> impl Iterator<Item = (u8, bool)> + '_ {
    s.threads.iter().flatten().filter_map(|f| match f {
        Frame::Callback {
            client, after_ok, ..
        }
        | Frame::ManagerCallback {
            client, after_ok, ..
        } => Some((*client, *after_ok)),
        Frame::OwesGreeting { .. }
        | Frame::Show { .. }
        | Frame::Manager { .. }
        | Frame::Shutdown { .. }
        | Frame::Registering { .. }
        | Frame::Kick { .. }
        | Frame::Settling
        | Frame::Sleep { .. }
        | Frame::Drain { .. }
        | Frame::Query { .. }
        | Frame::Requesting { .. }
        | Frame::Answering { .. }
        | Frame::Deregister { .. } => None,
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
        Frame::OwesGreeting { .. }
        | Frame::Show { .. }
        | Frame::Manager { .. }
        | Frame::ManagerCallback { .. }
        | Frame::Shutdown { .. }
        | Frame::Registering { .. }
        | Frame::Kick { .. }
        | Frame::Settling
        | Frame::Sleep { .. }
        | Frame::Drain { .. }
        | Frame::Callback { .. }
        | Frame::Query { .. }
        | Frame::Requesting { .. }
        | Frame::Answering { .. } => None,
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
        Frame::Drain { cur: None, .. }
        | Frame::OwesGreeting { .. }
        | Frame::Show { .. }
        | Frame::Manager { .. }
        | Frame::ManagerCallback { .. }
        | Frame::Shutdown { .. }
        | Frame::Registering { .. }
        | Frame::Kick { .. }
        | Frame::Settling
        | Frame::Sleep { .. }
        | Frame::Callback { .. }
        | Frame::Query { .. }
        | Frame::Requesting { .. }
        | Frame::Answering { .. }
        | Frame::Deregister { .. } => true,
    })
}

/// Every queued item has an owner: with every thread idle (so no drainer, no sleeper
/// and no obligation left) every queue is empty.
fn p7_nothing_stranded(_: &Spec, s: &State) -> bool {
    !s.all_idle() || s.hubs.iter().all(|h| h.queue.is_empty())
}

/// M1: a client's Policy Manager arrival is its first call, made at most once, and every
/// call for a hub's event begins after it returned.
fn m1_arrival_first(_: &Spec, s: &State) -> bool {
    s.clients.iter().all(|c| !c.arrival_broken)
}

/// M2: no call of a client begins after its Policy Manager removal began.
fn m2_removal_last(_: &Spec, s: &State) -> bool {
    s.clients.iter().all(|c| !c.removal_broken)
}

/// One call at a time: at most one call of a client's callback runs, across every hub
/// and thread (so at most one thread is inside a callback of the client).
fn p8_one_call_at_a_time(_: &Spec, s: &State) -> bool {
    let mut running = 0u32;
    callbacks(s).all(|(c, _)| {
        let first = running & (1 << c) == 0;
        running |= 1 << c;
        first
    })
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

/// A delivery sleeps for a client's turn while a call of that client runs on another
/// thread (where two calls of one client used to run at once).
fn some_turn_waits(_: &Spec, s: &State) -> bool {
    s.threads.iter().flatten().any(|f| match f {
        Frame::Drain { cur: Some(d), .. } => match d.at {
            At::Waiting(w) => callbacks(s).any(|(c, _)| c == w),
            At::Next
            | At::Behind(_)
            | At::Uncounted(_)
            | At::Acquired(_)
            | At::Peeked(_)
            | At::Released(_)
            | At::Running(_)
            | At::Bare(_)
            | At::Ended(_) => false,
        },
        Frame::Drain { cur: None, .. }
        | Frame::OwesGreeting { .. }
        | Frame::Show { .. }
        | Frame::Manager { .. }
        | Frame::ManagerCallback { .. }
        | Frame::Shutdown { .. }
        | Frame::Registering { .. }
        | Frame::Kick { .. }
        | Frame::Settling
        | Frame::Sleep { .. }
        | Frame::Callback { .. }
        | Frame::Query { .. }
        | Frame::Requesting { .. }
        | Frame::Answering { .. }
        | Frame::Deregister { .. } => false,
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
            d.at == At::Next && members(d.targets).any(|c| s.clients[usize::from(c)].closed())
        }
        Frame::Drain { cur: None, .. }
        | Frame::OwesGreeting { .. }
        | Frame::Show { .. }
        | Frame::Manager { .. }
        | Frame::ManagerCallback { .. }
        | Frame::Shutdown { .. }
        | Frame::Registering { .. }
        | Frame::Kick { .. }
        | Frame::Settling
        | Frame::Sleep { .. }
        | Frame::Callback { .. }
        | Frame::Query { .. }
        | Frame::Requesting { .. }
        | Frame::Answering { .. }
        | Frame::Deregister { .. } => false,
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
    s.hubs.iter().any(|h| {
        h.queue
            .iter()
            .any(|e| matches!(e.item, Item::Replay { .. }))
    })
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
        Frame::Sleep { woken: false, .. }
        | Frame::OwesGreeting { .. }
        | Frame::Show { .. }
        | Frame::Manager { .. }
        | Frame::ManagerCallback { .. }
        | Frame::Shutdown { .. }
        | Frame::Registering { .. }
        | Frame::Kick { .. }
        | Frame::Settling
        | Frame::Drain { .. }
        | Frame::Callback { .. }
        | Frame::Query { .. }
        | Frame::Requesting { .. }
        | Frame::Answering { .. }
        | Frame::Deregister { .. } => false,
    })
}

fn some_owed(_: &Spec, s: &State) -> bool {
    s.owed
        .iter()
        .flatten()
        .any(|o| matches!(o, Owed::Deliver { .. }))
}

/// A greeting is owed: a client registered inside a callback.
fn some_greeting_owed(_: &Spec, s: &State) -> bool {
    s.owed
        .iter()
        .flatten()
        .any(|o| matches!(o, Owed::Greet { .. }))
}

/// A Policy Manager arrival's callback calls into the Policy Manager (a frame above it).
fn some_arrival_calls(_: &Spec, s: &State) -> bool {
    s.threads.iter().any(|t| {
        t.iter()
            .rev()
            .skip(1)
            .any(|f| matches!(f, Frame::ManagerCallback { removal: false, .. }))
    })
}

/// A greeting finds its client deregistered: its arrival is to be skipped, or nothing is
/// to be shown.
fn some_greeting_meets_deregister(_: &Spec, s: &State) -> bool {
    s.threads.iter().flatten().any(|f| match f {
        Frame::Manager {
            client,
            removal: false,
            at: PmAt::Start,
        } => s.clients[usize::from(*client)].closed(),
        Frame::Show { client } => !s.clients[usize::from(*client)].registered(),
        _ => false,
    })
}

/// Shutdown delivers a client's removal: its callback runs.
fn some_removal_call(_: &Spec, s: &State) -> bool {
    s.threads
        .iter()
        .flatten()
        .any(|f| matches!(f, Frame::ManagerCallback { removal: true, .. }))
}

/// Shutdown waits for a call of a client it closed that runs on another thread.
fn some_shutdown_waits(_: &Spec, s: &State) -> bool {
    s.threads.iter().flatten().any(|f| match f {
        Frame::Manager {
            client,
            removal: true,
            at: PmAt::Start,
        } => callbacks(s).any(|(c, _)| c == *client),
        _ => false,
    })
}

/// M3: a power request is queued only for a client granted `ASSIGN_POWER`.
fn m3_access(_: &Spec, s: &State) -> bool {
    !s.unauthorized_request
}

/// M3: no power request is queued after its client's deregister returned `Ok`, nor after
/// `shutdown` returned.
fn m3_not_after_return(_: &Spec, s: &State) -> bool {
    !s.late_request
}

/// M3: a rejected answer appends nothing.
fn m3_rejected_appends_nothing(_: &Spec, s: &State) -> bool {
    !s.rejected_reported
}

/// A power request is refused (no access, deregistered, shut down, or the hub gone).
fn some_power_refused(_: &Spec, s: &State) -> bool {
    s.power_refused
}

/// The change an accepted answer appended is delivered to a client: the answering
/// thread drains up to it, and a callback runs for it.
fn some_power_delivered(_: &Spec, s: &State) -> bool {
    s.threads.iter().any(|t| {
        t.iter().enumerate().any(|(i, f)| {
            matches!(
                f,
                Frame::Answering {
                    accepted: true,
                    reported: true,
                    ..
                }
            ) && t[i + 1..].iter().any(|g| {
                matches!(g, Frame::Drain { target, cur: Some(d), .. }
                    if d.ticket == *target && matches!(d.at, At::Running(_)))
            })
        })
    })
}

/// A detach is past its close, about to return, while a call of its client is still in
/// flight: it does not wait.
fn some_detach_outruns_call(_: &Spec, s: &State) -> bool {
    s.threads.iter().flatten().any(|f| {
        matches!(f, Frame::Deregister { victim, phase: Phase::AtZero, wait: false, .. }
            if s.clients[usize::from(*victim)].in_flight > 0)
    })
}

fn some_all_deregistered(spec: &Spec, s: &State) -> bool {
    spec.quiescent(s) && s.clients.iter().all(|c| c.returned_ok)
}

/// Every property, in the order the checker reports them.
pub(crate) fn all() -> Vec<Property<Spec>> {
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
        Property::always(
            "P8 one call at a time: at most one callback of a client runs",
            p8_one_call_at_a_time,
        ),
        Property::always(
            "M1 the Policy Manager arrival is a client's first call, once; its hub events follow it",
            m1_arrival_first,
        ),
        Property::always(
            "M2 no call of a client begins after its Policy Manager removal began",
            m2_removal_last,
        ),
        Property::always(
            "M3 a power request is queued only for a client granted ASSIGN_POWER",
            m3_access,
        ),
        Property::always(
            "M3 no power request is queued after its client's deregister or the shutdown returned",
            m3_not_after_return,
        ),
        Property::always(
            "M3 a rejected power request appends nothing",
            m3_rejected_appends_nothing,
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
            "a delivery waits for the client's turn while its call runs on another thread",
            some_turn_waits,
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
            "a greeting is owed by its thread (a client registered in a callback)",
            some_greeting_owed,
        ),
        Property::sometimes(
            "a Policy Manager arrival's callback calls into the Policy Manager",
            some_arrival_calls,
        ),
        Property::sometimes(
            "a greeting finds its client deregistered",
            some_greeting_meets_deregister,
        ),
        Property::sometimes(
            "shutdown delivers a Policy Manager removal",
            some_removal_call,
        ),
        Property::sometimes(
            "shutdown waits for a call of a client it closed",
            some_shutdown_waits,
        ),
        Property::sometimes("a power request is refused", some_power_refused),
        Property::sometimes(
            "an accepted power request's change is delivered to a client",
            some_power_delivered,
        ),
        Property::sometimes(
            "a detach returns with a call of its client in flight",
            some_detach_outruns_call,
        ),
        Property::sometimes(
            "every client deregistered, all quiet",
            some_all_deregistered,
        ),
    ]
}

/// Whether a `sometimes` property can be witnessed at `size` (with no registration
/// there is no replay and no greeting; with fewer than two deregisters from callbacks, no
/// cycle; with one hub, no two deliveries at once, so no deregister from a callback waits
/// and no delivery waits for a client's turn; with no report from a callback, nothing
/// owed; with no shutdown, no removal; with no power request, none refused or
/// answered; with no detach, none).
pub fn applicable(size: &Size, property: &str) -> bool {
    let replay = property.contains("replay");
    let cycle = property.contains("cycle");
    // Deliveries on two threads at once need two hubs (one hub's queue has one
    // drainer), and so do a delivery that waits for a client's turn and a deregister
    // from a callback that waits for another thread's callback (and a cycle of them).
    let two_drainers = [
        "two hubs",
        "client's turn",
        "from a callback waits",
        "cycle",
    ]
    .iter()
    .any(|p| property.contains(p));
    // Only a callback's own report (registration, arrival, change, removal) appends from
    // inside a callback, so only then is anything owed.
    let owed = property.contains("owed");
    // A greeting needs a registration; one that meets a deregister needs a client
    // registered inside a callback (the handle is known before its greeting), and an
    // arrival's callback that calls needs something a callback may do.
    let greeting = property.contains("greeting") || property.contains("arrival's callback");
    let greeting_in_callback = property.contains("greeting finds");
    let calls = property.contains("arrival's callback");
    let shutdown = property.contains("shutdown");
    // Power requests need their budget; an accepted one, a client granted the access.
    let power = property.contains("power request");
    let accepted = property.contains("accepted power");
    let detach = property.contains("detach");
    !((power && size.power_requests == 0)
        || (detach && size.detaches == 0)
        || (accepted && size.granted == 0)
        || ((replay || greeting) && size.preregistered)
        || (greeting_in_callback && size.callback_reports == 0)
        || (calls && size.callback_reports + size.reentrant == 0)
        || (shutdown && !size.shutdown)
        || (owed && size.callback_reports == 0)
        || (cycle && size.reentrant < 2)
        || (two_drainers && size.hubs < 2))
}

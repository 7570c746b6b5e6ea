//! The interpreter: runs one [`Program`] on the shipped library under the current
//! checker (loom, shuttle or std), reports to the [`Monitor`] and records a [`Log`] of
//! every call and every callback for the [`oracle`](crate::judge::oracle).
//!
//! Model clients behave like the drivers of [`env`](crate::exec::env): a callback reports its begin and
//! end, touches its context through the checker's atomics (so the checker may preempt it
//! on entry, in the middle and before it returns), and the driver frees the context as
//! soon as `deregister` (or a waiting guard drop) returns. Every hub has two connectors
//! whose reported states carry tokens: connector 0 the id of the arrival that began the
//! hub's presence, connector 1 the id of the last change, so the oracle can tell exactly
//! which call each delivered event and each query result comes from. Power requests are
//! for connector 0 (a sink with its partner attached, so the library passes them on); an
//! accepted one comes back as a change of connector 0, which no program reports itself
//! ([`Seen::Power`]). The Policy Manager's own events (its arrival, its removal) are
//! recorded too ([`ManagerRec`]), and behaviours act on hub events only.
//!
//! The context the library owns (the value given to `ClientConfig::new`) is an [`Owned`]
//! whose `Drop` is the client's: it records that the context died (when, on which thread,
//! inside which callbacks), then acts out the client's [`DropBehaviour`] through the
//! world like a callback does (the world held weakly, the same rules for ports in use and
//! the same budget). The library may run that `Drop` on any thread that held the last
//! reference; the oracle judges when it ran, and that every context died exactly once by
//! the end of the post part.
//!
//! Harness state lives in `std` locks held only briefly and never across a call into the
//! library (the checkers run one modelled thread at a time and switch only at their own
//! primitives, so a `std` lock held across a switch could block the OS thread).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use usbpm::checking::{Mutant, Probe};
use usbpm::{
    ClientConfig, ClientHandle, ConnectorHandle, ConnectorId, ConnectorState, Detached, Error,
    Event, HubHandle, HubId, HubPort, Notification, PolicyManager, PowerLevel, Registration,
};

use crate::base::rt;
use crate::judge::monitor::{DriverContext, Monitor, Property};
use crate::lang::program::{
    client_name, hub_id, Behaviour, ClientIx, DropBehaviour, HubIx, Op, Program,
};

pub use crate::lang::history::{
    Call, CallRec, DropRec, InstId, InstRec, Log, ManagerRec, ManagerSeen, Ret, Seen, SeenRec,
    Ticket,
};

struct Ctx {
    inst: InstId,
    client: ClientIx,
    label: String,
    behaviour: Behaviour,
    on_drop: DropBehaviour,
    driver: DriverContext,
    reported: std::sync::atomic::AtomicBool,
    world: std::sync::Weak<World>,
}

#[derive(Default)]
struct Slot {
    /// The latest instance of this client (live or not).
    latest: Option<InstId>,
    live: bool,
    registering: bool,
    guard: Guard,
    /// The detach completions kept for this client's instances ([`Behaviour::Detach`]),
    /// oldest first, until a thread ([`Op::Wait`]) or the post part waits on them.
    completions: Vec<(InstId, Detached)>,
}

/// A client's `Registration`, used by one thread at a time: a deregister or drop takes it
/// out, so no two calls end one registration through the guard, and a raw-handle
/// deregister of an owned client is made only once its guard is gone (stale).
#[derive(Default)]
enum Guard {
    #[default]
    None,
    Held(Registration),
    InUse,
}

struct InstState {
    handle: Option<ClientHandle>,
    ctx: Arc<Ctx>,
}

/// A hub's port, with the token of the presence it belongs to.
type PortOf = (HubPort, usize);

enum Port {
    Absent,
    Present(PortOf),
    /// Taken by a thread for a change or the removal. A removal in progress may see the
    /// hub arrive again before it puts the slot back: the new presence's port waits here.
    InUse(Option<PortOf>),
}

/// One execution's world.
pub struct World {
    pub pm: PolicyManager,
    pub monitor: Arc<Monitor>,
    program: Program,
    slots: Mutex<Vec<Slot>>,
    insts: Mutex<Vec<InstState>>,
    ports: Mutex<Vec<Port>>,
    log: Mutex<Log>,
    ticket: AtomicUsize,
    /// The judged events' order as the checker sees it: every event the monitor judges
    /// against another thread's (a callback's begin and end, a deregister's return, a
    /// guard's detaching drop) is a read-modify-write of this one atomic, so the events
    /// conflict and loom's partial-order reduction explores every order of them. Without
    /// it two such events that touch no common library object are independent to loom,
    /// which then explores one of their orders only, and the monitor's verdict, which
    /// depends on the order, would be checked for that one.
    judged: rt::AtomicUsize,
    /// The handoff of detach completions between threads, as a driver would make it (a
    /// lock): a detach makes a release read-modify-write of this atomic, then stores its
    /// completion; a wait makes an acquire one before it takes a completion. The
    /// completions themselves live in a `std` lock the checkers do not see: without this,
    /// the waiting thread would use the client's state with nothing ordering it after the
    /// thread that made the `Detached` (a race the harness, not the library, would make).
    handoff: rt::AtomicUsize,
    /// Behaviours acted so far in this execution (at most [`MAX_ACTS`]), by callbacks and
    /// by contexts' drops.
    acts: AtomicUsize,
    /// Model panics raised so far, by callbacks and by contexts' drops.
    panics: AtomicUsize,
    /// Calls into the Policy Manager made (or tried) by contexts' drops.
    drop_calls: AtomicUsize,
    /// Waits on detach completions made inside callbacks and not refused.
    callback_waits: AtomicUsize,
    stacks: Mutex<HashMap<String, Vec<InstId>>>,
    foreign_pm: PolicyManager,
    foreign: ClientHandle,
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn hub_connectors(presence: usize) -> Vec<ConnectorState> {
    vec![token_state(presence), token_state(0)]
}

fn token_state(token: usize) -> ConnectorState {
    ConnectorState {
        attached: token != 0,
        partner_max_milliwatts: token as u32,
        ..Default::default()
    }
}

fn tokens(info: &usbpm::HubInfo) -> (usize, usize) {
    let t = |i: usize| {
        info.connectors
            .get(i)
            .map_or(0, |c| c.state.partner_max_milliwatts as usize)
    };
    (t(0), t(1))
}

/// How many times, in one execution, callbacks act out their behaviours (module docs of
/// `program`: without a budget a program's callbacks can keep each other busy for ever).
pub const MAX_ACTS: usize = 32;

/// The forged handle every program uses: never issued by any Policy Manager.
pub const FORGED: u64 = 0xdead_0000_beef;

std::thread_local! {
    /// Guards dropped inside a callback where waiting would close a wait-for cycle (the
    /// drop's `deregister` refused with `WouldDeadlock`, so it detached), counted on the
    /// OS thread that runs the executions (loom and shuttle run every model thread on it).
    static CYCLE_DETACHES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    /// Waits on detach completions refused inside callbacks, counted likewise: all of
    /// them, and those refused with `WouldDeadlock`.
    static REFUSED_WAITS: std::cell::Cell<(u64, u64)> = const { std::cell::Cell::new((0, 0)) };
}

/// How many guards dropped inside callbacks detached because waiting would close a
/// cycle, in the executions run on this OS thread so far: a test of whether generated
/// programs reach that trigger of `Registration`'s drop.
pub fn cycle_detaches() -> u64 {
    CYCLE_DETACHES.with(std::cell::Cell::get)
}

/// How many waits on detach completions were refused (inside callbacks), in the
/// executions run on this OS thread so far: all of them, and those refused with
/// `WouldDeadlock` (the others inside the detached client's own callback).
pub fn refused_waits() -> (u64, u64) {
    REFUSED_WAITS.with(std::cell::Cell::get)
}

impl World {
    pub fn new(program: Program, mutant: Option<Mutant>) -> Arc<World> {
        crate::base::panics::silence_model_panics();
        let monitor = Monitor::new();
        let probe: Arc<dyn Probe> = monitor.clone();
        let foreign_pm = PolicyManager::new();
        let foreign = foreign_pm
            .register(ClientConfig::new((), |_, _, _| {}))
            .expect("a new Policy Manager registers its first client");
        let slots = program.clients.iter().map(|_| Slot::default()).collect();
        let ports = (0..program.hubs).map(|_| Port::Absent).collect();
        Arc::new(World {
            pm: PolicyManager::checking(mutant, Some(probe)),
            monitor,
            program,
            slots: Mutex::new(slots),
            insts: Mutex::new(Vec::new()),
            ports: Mutex::new(ports),
            log: Mutex::new(Log::default()),
            ticket: AtomicUsize::new(1),
            judged: rt::AtomicUsize::new(0),
            handoff: rt::AtomicUsize::new(0),
            acts: AtomicUsize::new(0),
            panics: AtomicUsize::new(0),
            drop_calls: AtomicUsize::new(0),
            callback_waits: AtomicUsize::new(0),
            stacks: Mutex::new(HashMap::new()),
            foreign_pm,
            foreign,
        })
    }

    /// A point whose order against the other threads' judged points the checker explores.
    /// `Relaxed` on purpose: loom counts any two writes to one atomic as conflicting, so
    /// the order is explored, but a relaxed read-modify-write creates no happens-before.
    /// With `SeqCst` the harness itself would order a callback's accesses before the
    /// driver's free and hide the `relaxed-ordering` mutant from the race detector.
    fn judged_point(&self) {
        self.judged.fetch_add(1, Ordering::Relaxed);
    }

    fn tick(&self) -> Ticket {
        self.ticket.fetch_add(1, Ordering::SeqCst)
    }

    fn inside(&self) -> Vec<InstId> {
        locked(&self.stacks)
            .get(&rt::thread_name())
            .cloned()
            .unwrap_or_default()
    }

    fn begin_call(&self, call: Call) -> usize {
        let inside = self.inside();
        let start = self.tick();
        let mut log = locked(&self.log);
        log.calls.push(CallRec {
            thread: rt::thread_name(),
            inside,
            call,
            start,
            end: 0,
            ret: Ret::Pending,
        });
        log.calls.len() - 1
    }

    fn end_call(&self, i: usize, ret: Ret) {
        let end = self.tick();
        let mut log = locked(&self.log);
        log.calls[i].end = end;
        log.calls[i].ret = ret;
    }

    fn unit_call(&self, call: Call, f: impl FnOnce() -> Result<(), Error>) -> Result<(), Error> {
        let i = self.begin_call(call);
        let r = f();
        self.end_call(i, Ret::Unit(r.clone()));
        r
    }

    /// Runs one operation of the program on the calling thread.
    pub fn op(self: &Arc<Self>, op: Op) {
        match op {
            Op::Register(c) => self.register(c),
            Op::Deregister(c) => self.deregister(c),
            Op::Drop(c) => self.drop_guard(c, false),
            Op::DeregisterForged => {
                let h = ClientHandle::from_raw(FORGED);
                self.monitor.note(format!("deregister(forged {h}) called"));
                let r = self.unit_call(Call::Deregister { inst: None }, || self.pm.deregister(h));
                self.monitor
                    .note(format!("deregister(forged {h}) returns {r:?}"));
            }
            Op::DeregisterForeign => {
                let h = self.foreign;
                self.monitor.note(format!("deregister(foreign {h}) called"));
                let r = self.unit_call(Call::Deregister { inst: None }, || self.pm.deregister(h));
                self.monitor
                    .note(format!("deregister(foreign {h}) returns {r:?}"));
            }
            Op::Arrive(h) => self.arrive(h),
            Op::Change(h) => self.change(h),
            Op::Remove(h) => self.remove(h),
            Op::Query(h) => self.query(h),
            Op::AssignPower(h) => match self.latest(0) {
                Some((inst, first, _)) => self.assign(h, (inst, first), None),
                None => self.monitor.note(format!(
                    "assign power {}: skipped, the first client has never registered",
                    hub_id(h)
                )),
            },
            Op::Shutdown => self.shutdown(),
            Op::Answer(h, accepted) => self.answer(h, accepted),
            Op::Wait(c) => self.wait(c),
        }
    }

    fn register(self: &Arc<Self>, c: ClientIx) {
        let spec = self.program.clients[c as usize];
        let inst = {
            let mut slots = locked(&self.slots);
            let slot = &mut slots[c as usize];
            // While a thread deregisters or drops its guard the slot is busy: a new
            // registration would take the guard's place.
            if slot.live || slot.registering || matches!(slot.guard, Guard::InUse) {
                drop(slots);
                self.monitor.note(format!(
                    "register {}: skipped, already registered",
                    client_name(c)
                ));
                return;
            }
            slot.registering = true;
            let mut insts = locked(&self.insts);
            let n = insts.iter().filter(|i| i.ctx.client == c).count();
            let label = if n == 0 {
                client_name(c).to_string()
            } else {
                format!("{}{}", client_name(c), n + 1)
            };
            let inst = insts.len();
            let ctx = Arc::new(Ctx {
                inst,
                client: c,
                label: label.clone(),
                behaviour: spec.behaviour,
                on_drop: spec.on_drop,
                driver: DriverContext::new(label.clone()),
                reported: Default::default(),
                world: Arc::downgrade(self),
            });
            insts.push(InstState { handle: None, ctx });
            locked(&self.log).insts.push(InstRec { label, client: c });
            inst
        };
        let ctx = locked(&self.insts)[inst].ctx.clone();
        let config = ClientConfig::with_handle(Owned(ctx.clone()), on_event);
        let i = self.begin_call(Call::Register { inst });
        let r = if spec.owned {
            self.pm
                .register_owned(config)
                .map(|g| (g.handle(), Some(g)))
        } else {
            self.pm.register(config).map(|h| (h, None))
        };
        let (handle, guard) = match r {
            Ok(registered) => registered,
            // After the shutdown (the oracle judges when it may be refused). The refused
            // config's context has been dropped already, inside `register` (a panic out
            // of its drop contained and counted like a registered context's).
            Err(e @ Error::PolicyManagerRemoved) => {
                self.end_call(i, Ret::Unit(Err(e.clone())));
                locked(&self.slots)[c as usize].registering = false;
                self.monitor
                    .note(format!("register {}: refused with {e:?}", ctx.label));
                return;
            }
            // A program registers a handful of clients, nowhere near the 65,536 slots:
            // any other refusal is a library bug, and the panic (not a model panic, so
            // not contained even inside a callback) fails the execution.
            Err(e) => panic!("register refused a program's client (far below the limit): {e:?}"),
        };
        self.end_call(i, Ret::Unit(Ok(())));
        locked(&self.insts)[inst].handle = Some(handle);
        {
            let mut slots = locked(&self.slots);
            let slot = &mut slots[c as usize];
            slot.latest = Some(inst);
            slot.live = true;
            slot.registering = false;
            slot.guard = guard.map_or(Guard::None, Guard::Held);
        }
        self.monitor.registered(&ctx.label, handle);
    }

    fn latest(&self, c: ClientIx) -> Option<(InstId, ClientHandle, Arc<Ctx>)> {
        let inst = locked(&self.slots)[c as usize].latest?;
        let insts = locked(&self.insts);
        let s = &insts[inst];
        Some((inst, s.handle?, s.ctx.clone()))
    }

    fn deregister(self: &Arc<Self>, c: ClientIx) {
        let Some((inst, handle, ctx)) = self.latest(c) else {
            self.monitor.note(format!(
                "deregister {}: skipped, never registered",
                client_name(c)
            ));
            return;
        };
        let guard = {
            let mut slots = locked(&self.slots);
            let slot = &mut slots[c as usize];
            match std::mem::replace(&mut slot.guard, Guard::InUse) {
                Guard::Held(g) => Some(g),
                Guard::None => {
                    slot.guard = Guard::None;
                    None
                }
                Guard::InUse => {
                    drop(slots);
                    self.monitor.note(format!(
                        "deregister {}: skipped, its guard is in use",
                        client_name(c)
                    ));
                    return;
                }
            }
        };
        self.monitor.deregister_called(&ctx.label);
        let call = Call::Deregister { inst: Some(inst) };
        let r = match guard {
            None => self.unit_call(call, || self.pm.deregister(handle)),
            Some(g) => {
                let mut back = None;
                let r = self.unit_call(call, || {
                    g.deregister().map_err(|(e, g)| {
                        back = Some(g);
                        e
                    })
                });
                locked(&self.slots)[c as usize].guard = back.map_or(Guard::None, Guard::Held);
                r
            }
        };
        if r.is_ok() {
            let mut slots = locked(&self.slots);
            if slots[c as usize].latest == Some(inst) {
                slots[c as usize].live = false;
            }
        }
        self.judged_point();
        self.monitor.deregister_returned(&ctx.label, &r);
        if r.is_ok() {
            ctx.free(&self.monitor);
        }
    }

    /// Takes `c`'s guard out of its slot (leaving `InUse` there) with the instance it
    /// registered, marking the slot no longer live; `None` (the slot untouched) if it
    /// holds no guard.
    fn take_guard(&self, c: ClientIx) -> Option<(Registration, usize)> {
        let mut slots = locked(&self.slots);
        let slot = &mut slots[c as usize];
        match (
            std::mem::replace(&mut slot.guard, Guard::InUse),
            slot.latest,
        ) {
            (Guard::Held(g), Some(inst)) => {
                slot.live = false;
                Some((g, inst))
            }
            (g, _) => {
                slot.guard = g;
                None
            }
        }
    }

    /// Drops `c`'s guard: waits like deregister, or (inside the client's own callback, or
    /// inside another client's where waiting would close a cycle) detaches without
    /// waiting.
    fn drop_guard(self: &Arc<Self>, c: ClientIx, own_callback: bool) {
        let Some((guard, inst)) = self.take_guard(c) else {
            self.monitor.note(format!(
                "drop {}'s guard: skipped, it holds none",
                client_name(c)
            ));
            return;
        };
        let ctx = locked(&self.insts)[inst].ctx.clone();
        let handle = guard.handle();
        self.monitor.note(format!("drop {}'s guard", ctx.label));
        let i = self.begin_call(Call::DropGuard { inst });
        drop(guard);
        // Inside another client's callback the drop detaches where waiting would close a
        // cycle (its `deregister` refused with `WouldDeadlock`): the library's probe says
        // which it did, and the log records a detach.
        let inside = self.inside();
        let detached = !own_callback && !inside.is_empty() && self.monitor.detach_entered(handle);
        if detached {
            locked(&self.log).calls[i].call = Call::Detach { inst };
            // Not inside a callback of the client whose guard it is: the refusal was
            // `WouldDeadlock`, the cycle trigger.
            if !inside.contains(&inst) {
                CYCLE_DETACHES.with(|n| n.set(n.get() + 1));
            }
        }
        self.end_call(i, Ret::Unit(Ok(())));
        let mut slots = locked(&self.slots);
        if matches!(slots[c as usize].guard, Guard::InUse) {
            slots[c as usize].guard = Guard::None;
        }
        drop(slots);
        self.judged_point();
        if own_callback {
            self.monitor.detached(&ctx.label);
        } else if detached {
            // As in its own callback: calls admitted before the drop may still begin, and
            // the context is not freed (nobody learns when its calls are done).
            self.monitor.note(format!(
                "{}'s guard dropped in another client's callback, where waiting would close a cycle: detached",
                ctx.label
            ));
        } else {
            self.monitor.deregister_returned(&ctx.label, &Ok(()));
            ctx.free(&self.monitor);
        }
    }

    /// Detaches `c`'s registration (`Registration::detach`, from a callback) and keeps its
    /// completion for a wait.
    fn detach(self: &Arc<Self>, c: ClientIx) {
        let Some((guard, inst)) = self.take_guard(c) else {
            self.monitor.note(format!(
                "detach {}: skipped, it holds no guard",
                client_name(c)
            ));
            return;
        };
        let ctx = locked(&self.insts)[inst].ctx.clone();
        self.monitor.note(format!("detach {}", ctx.label));
        let i = self.begin_call(Call::Detach { inst });
        let completion = guard.detach();
        self.end_call(i, Ret::Unit(Ok(())));
        // Before the completion is stored (a checker switches threads only at its own
        // primitives, so no thread can take it between the two).
        self.handoff.fetch_add(1, Ordering::AcqRel);
        {
            let mut slots = locked(&self.slots);
            let slot = &mut slots[c as usize];
            if matches!(slot.guard, Guard::InUse) {
                slot.guard = Guard::None;
            }
            slot.completions.push((inst, completion));
        }
        // The completion is there for another thread's wait: the order of the two is
        // explored (the wait makes a judged point before it looks).
        self.judged_point();
        self.monitor
            .note(format!("{} detached: its completion is kept", ctx.label));
    }

    /// Waits on `c`'s latest kept detach completion (`Detached::wait`), on a thread or
    /// inside a callback; a refused wait keeps it again, and its error must be the one
    /// `Detached::wait` documents for where it was made. Once it fires the driver frees
    /// the context.
    fn wait(self: &Arc<Self>, c: ClientIx) {
        self.judged_point();
        // A read-modify-write reads the latest value: ordered after every detach that
        // stored a completion before it.
        self.handoff.fetch_add(1, Ordering::AcqRel);
        let taken = locked(&self.slots)[c as usize].completions.pop();
        let Some((inst, completion)) = taken else {
            self.monitor.note(format!(
                "wait for {}'s detach: skipped, no completion is kept",
                client_name(c)
            ));
            return;
        };
        let ctx = locked(&self.insts)[inst].ctx.clone();
        self.monitor
            .note(format!("wait for {}'s detach completion", ctx.label));
        let handle = completion.handle();
        let in_callback = !self.inside().is_empty();
        let i = self.begin_call(Call::Wait { inst });
        let (r, back) = match completion.wait() {
            Ok(()) => (Ok(()), None),
            Err((e, completion)) => (Err(e), Some(completion)),
        };
        self.end_call(i, Ret::Unit(r.clone()));
        self.judged_point();
        if in_callback && r.is_ok() {
            self.callback_waits.fetch_add(1, Ordering::SeqCst);
        }
        if let Err(e) = &r {
            let cycle = u64::from(matches!(e, Error::WouldDeadlock { .. }));
            REFUSED_WAITS.with(|n| n.set((n.get().0 + 1, n.get().1 + cycle)));
            self.refused_wait(e, handle, inst, back.as_ref().map(Detached::handle));
        }
        match back {
            None => {
                self.monitor.detach_done(&ctx.label);
                ctx.free(&self.monitor);
            }
            Some(completion) => {
                self.monitor.note(format!(
                    "wait for {}'s detach completion refused with {r:?}: kept again",
                    ctx.label
                ));
                self.handoff.fetch_add(1, Ordering::AcqRel);
                locked(&self.slots)[c as usize]
                    .completions
                    .push((inst, completion));
            }
        }
    }

    /// A refused wait on `inst`'s completion (`handle`): the typed error `Detached::wait`
    /// promises, naming that client (and, for `WouldDeadlock`, the callbacks this thread
    /// is inside, innermost last), with the same completion handed back (P4).
    fn refused_wait(
        &self,
        e: &Error,
        handle: ClientHandle,
        inst: InstId,
        back: Option<ClientHandle>,
    ) {
        let inside = self.inside();
        // The handles of the callbacks this thread is inside (`None` while one of them
        // runs before its `register` returned: its handle is not known yet).
        let holding: Option<Vec<ClientHandle>> = {
            let insts = locked(&self.insts);
            inside.iter().map(|&i| insts[i].handle).collect()
        };
        let own = inside.contains(&inst);
        let typed = match e {
            Error::DeregisterFromOwnCallback(h) => own && *h == handle,
            Error::WouldDeadlock { target, holding: h } => {
                !own && !inside.is_empty()
                    && *target == handle
                    && holding.as_ref().is_none_or(|x| h == x)
            }
            _ => false,
        };
        self.monitor.check(Property::BadInputErrors, typed && back == Some(handle), || {
            format!(
                "the wait on {handle}'s detach completion (inside the callbacks of {holding:?}) was refused with {e:?}, completion handed back: {back:?}"
            )
        });
    }

    fn arrive(&self, h: HubIx) {
        let hub = hub_id(h);
        self.monitor.note(format!("hub {hub} arrives"));
        let i = self.begin_call(Call::Arrive { hub, presence: 0 });
        // The arrival's own call index is its presence token: unique in the execution.
        let presence = i + 1;
        if let Call::Arrive { presence: p, .. } = &mut locked(&self.log).calls[i].call {
            *p = presence;
        }
        let r = self.pm.hub_arrival(HubId(hub), hub_connectors(presence));
        let ret = r.as_ref().map(|_| ()).map_err(Clone::clone);
        if let Ok(port) = r {
            let mut ports = locked(&self.ports);
            match &mut ports[h as usize] {
                Port::InUse(newer) => *newer = Some((port, presence)),
                slot => *slot = Port::Present((port, presence)),
            }
        }
        self.end_call(i, Ret::Unit(ret.clone()));
        self.monitor
            .note(format!("hub {hub} arrival returns {ret:?}"));
    }

    fn take_port(&self, h: HubIx) -> Option<PortOf> {
        let mut ports = locked(&self.ports);
        match std::mem::replace(&mut ports[h as usize], Port::InUse(None)) {
            Port::Present(p) => Some(p),
            other => {
                ports[h as usize] = other;
                None
            }
        }
    }

    /// Ends a thread's use of hub `h`'s port: `port` back (after a change), or the port of
    /// a presence that arrived meanwhile, or nothing (after the removal).
    fn put_back(&self, h: HubIx, port: Option<PortOf>) {
        let mut ports = locked(&self.ports);
        let newer = match std::mem::replace(&mut ports[h as usize], Port::Absent) {
            Port::InUse(newer) => newer,
            _ => unreachable!("only the thread using a port puts it back"),
        };
        ports[h as usize] = match port.or(newer) {
            Some(p) => Port::Present(p),
            None => Port::Absent,
        };
    }

    fn change(&self, h: HubIx) {
        let hub = hub_id(h);
        let Some((port, presence)) = self.take_port(h) else {
            self.monitor.note(format!(
                "change {hub}: skipped, the port is absent or in use"
            ));
            return;
        };
        let i = self.begin_call(Call::Change {
            hub,
            presence,
            token: 0,
        });
        let token = i + 1;
        if let Call::Change { token: t, .. } = &mut locked(&self.log).calls[i].call {
            *t = token;
        }
        self.monitor
            .note(format!("hub {hub}: connector change #{token} reported"));
        let r = port.connector_changed(ConnectorId(1), token_state(token));
        self.end_call(i, Ret::Unit(r));
        self.put_back(h, Some((port, presence)));
    }

    fn remove(&self, h: HubIx) {
        let hub = hub_id(h);
        let Some((port, presence)) = self.take_port(h) else {
            self.monitor.note(format!(
                "remove {hub}: skipped, the port is absent or in use"
            ));
            return;
        };
        self.monitor.note(format!("hub {hub} is removed"));
        let i = self.begin_call(Call::Remove { hub, presence });
        port.remove();
        self.end_call(i, Ret::Unit(Ok(())));
        self.put_back(h, None);
    }

    fn query(&self, h: HubIx) {
        let hub = hub_id(h);
        let i = self.begin_call(Call::Query { hub });
        // The Policy Manager's own view (no client): the oracle judges it against the
        // linearized hub states. The client calls are judged in named scenarios (M3, M4).
        let r = self.pm.hub_snapshot(HubId(hub));
        self.end_call(i, Ret::Hub(r.map(|info| tokens(&info))));
    }

    /// A power request for connector 0 of hub `h`, made by `me` (an instance and its
    /// handle): inside a callback the callback's own client, for the presence of the event
    /// it handles (`event`); on a thread the first client's latest handle, for the hub's
    /// present presence as the system side sees it (`hub_handle`, refused with
    /// `UnknownHub` when none is present). The request waits on the hub for the
    /// hardware's answer ([`Op::Answer`]); until then it changes nothing.
    fn assign(&self, h: HubIx, me: (InstId, ClientHandle), event: Option<HubHandle>) {
        let hub = hub_id(h);
        let level = PowerLevel { milliwatts: 15_000 };
        let i = self.begin_call(Call::AssignPower {
            hub,
            inst: me.0,
            presence: None,
        });
        let named = match event {
            Some(handle) => Ok(handle),
            None => self.pm.hub_handle(HubId(hub)),
        };
        if let (Call::AssignPower { presence, .. }, Ok(named)) =
            (&mut locked(&self.log).calls[i].call, &named)
        {
            *presence = Some(named.presence);
        }
        let r = named.and_then(|hub| {
            let connector = ConnectorHandle {
                hub,
                connector: ConnectorId(0),
            };
            self.pm.assign_power_level(me.1, connector, level)
        });
        self.end_call(i, Ret::Unit(r));
    }

    /// `shutdown`, from a thread or (refused) from inside a callback.
    fn shutdown(&self) {
        self.monitor.note("shutdown() called");
        let r = self.unit_call(Call::Shutdown, || self.pm.shutdown());
        // Its return is judged against the callbacks (none may begin after it).
        self.judged_point();
        self.monitor.note(format!("shutdown() returns {r:?}"));
    }

    /// The hardware answers hub `h`'s pending power requests through its port (if it is
    /// present and not in use): takes them all and answers each accepted (reported to the
    /// clients as a change of connector 0) or rejected (reported to nobody).
    fn answer(&self, h: HubIx, accepted: bool) {
        let hub = hub_id(h);
        let verb = if accepted { "accept" } else { "reject" };
        let Some((port, presence)) = self.take_port(h) else {
            self.monitor.note(format!(
                "{verb} power {hub}: skipped, the port is absent or in use"
            ));
            return;
        };
        let i = self.begin_call(Call::Answer {
            hub,
            presence,
            accepted,
        });
        let results: Vec<Result<bool, Error>> = port
            .power_requests()
            .into_iter()
            .map(|request| port.answer(request, accepted))
            .collect();
        self.monitor.note(format!(
            "hub {hub}: the hardware answers {} power request(s) ({verb}ed): {results:?}",
            results.len()
        ));
        self.end_call(i, Ret::Answers(results));
        self.put_back(h, Some((port, presence)));
    }

    /// The implicit post part: every port dropped (hubs removed), every kept detach
    /// completion waited for (each must fire: one that never does hangs the execution)
    /// and its context freed, then every client still registered deregistered (or its
    /// guard dropped) and its context freed.
    pub fn post(self: &Arc<Self>) {
        let start = self.tick();
        locked(&self.log).post_start = start;
        for h in 0..self.program.hubs {
            self.remove(h);
        }
        for c in 0..self.program.clients.len() as ClientIx {
            let kept = locked(&self.slots)[c as usize].completions.len();
            for _ in 0..kept {
                self.wait(c);
            }
        }
        // Until no client is registered: a context's drop may register a client again (at
        // most `MAX_ACTS` times in all). Bounded also when a deregister fails (a mutant):
        // the oracle reports the registration that never ended.
        for _pass in 0..MAX_ACTS + 2 {
            let mut any = false;
            for c in 0..self.program.clients.len() as ClientIx {
                let (live, owned) = {
                    let slots = locked(&self.slots);
                    (
                        slots[c as usize].live,
                        matches!(slots[c as usize].guard, Guard::Held(_)),
                    )
                };
                any |= live;
                if live && owned {
                    self.drop_guard(c, false);
                } else if live {
                    self.deregister(c);
                }
            }
            if !any {
                break;
            }
        }
        let r = self.foreign_pm.deregister(self.foreign);
        self.monitor.check(Property::BadInputErrors, r.is_ok(), || {
            format!("foreign client's deregister returned {r:?}")
        });
        // Every thread is joined and every client gone: each panic raised on purpose has
        // been contained and counted by now.
        locked(&self.log).panics_counted = self.pm.panicked_callbacks();
    }

    /// The execution's log, once every thread has been joined.
    pub fn log(&self) -> Log {
        let mut log = locked(&self.log).clone();
        log.panics_raised = self.panics.load(Ordering::SeqCst) as u64;
        log
    }

    /// Breaks the world's reference cycles (contexts hold the world weakly, the world
    /// holds guards and contexts) so nothing outlives the execution.
    pub fn clear(&self) {
        // Taken out first and dropped with no harness lock held: a guard's drop may end a
        // registration, and a context's drop calls back into the world.
        let slots = std::mem::take(&mut *locked(&self.slots));
        let insts = std::mem::take(&mut *locked(&self.insts));
        let ports = std::mem::take(&mut *locked(&self.ports));
        drop((slots, insts, ports));
    }

    /// Raises a model panic (the library contains it), counted for the oracle.
    fn model_panic(&self) -> ! {
        self.panics.fetch_add(1, Ordering::SeqCst);
        std::panic::panic_any(crate::base::panics::ModelPanic)
    }
}

impl Ctx {
    fn touch(&self, monitor: &Monitor, when: &str, n: &Notification) {
        self.driver.touch(monitor, when, n);
    }

    fn free(&self, monitor: &Monitor) {
        self.driver.free(monitor);
    }
}

/// The context the library owns: the model's context, and the client's `Drop`.
struct Owned(Arc<Ctx>);

impl Drop for Owned {
    fn drop(&mut self) {
        context_dropped(&self.0);
    }
}

/// The client's context is dropped: records it, then acts out its drop behaviour.
fn context_dropped(ctx: &Ctx) {
    // Gone with the world: the execution is over (nothing is judged any more).
    let Some(world) = ctx.world.upgrade() else {
        return;
    };
    let inside = world.inside();
    world.judged_point();
    let at = world.tick();
    locked(&world.log).drops.push(DropRec {
        inst: ctx.inst,
        thread: rt::thread_name(),
        inside,
        at,
    });
    world.monitor.note(format!(
        "{}'s context: Drop runs (on drop: {})",
        ctx.label, ctx.on_drop
    ));
    if ctx.on_drop.is_nothing() || world.acts.fetch_add(1, Ordering::SeqCst) >= MAX_ACTS {
        return;
    }
    if ctx.on_drop != DropBehaviour::Panic {
        world.drop_calls.fetch_add(1, Ordering::SeqCst);
    }
    match ctx.on_drop {
        DropBehaviour::Nothing => {}
        DropBehaviour::ReportChange(h) => world.change(h),
        DropBehaviour::Register(o) => world.register(o),
        DropBehaviour::Deregister(o) => world.deregister(o),
        DropBehaviour::Panic => world.model_panic(),
    }
}

struct EndOnDrop<'a> {
    world: &'a World,
    ctx: &'a Ctx,
    n: &'a Notification,
    /// This call's record in the log's `seen`.
    seen: usize,
}

impl Drop for EndOnDrop<'_> {
    fn drop(&mut self) {
        let end = self.world.tick();
        locked(&self.world.log).seen[self.seen].end = end;
        self.world.judged_point();
        self.world.monitor.callback_end(&self.ctx.label, self.n);
        let mut stacks = locked(&self.world.stacks);
        if let Some(s) = stacks.get_mut(&rt::thread_name()) {
            s.pop();
        }
    }
}

fn on_event(owned: &Owned, pm: &PolicyManager, me: ClientHandle, n: &Notification) {
    let ctx = &owned.0;
    let Some(world) = ctx.world.upgrade() else {
        return;
    };
    if n.is_manager_event() {
        // The Policy Manager's own events are judged by the monitor (M1, M2, and P1, P2,
        // P8 like every call) and recorded for the oracle (the greeting, the removal
        // last and once, nothing after the shutdown). Behaviours act on hub events only.
        let (seen, removal) = match n.event {
            Event::PolicyManagerRemoval => (ManagerSeen::Removal, true),
            _ => (ManagerSeen::Arrival, false),
        };
        if let Event::PolicyManagerArrival { access } = n.event {
            world.monitor.granted(me, access);
        }
        let begin = world.tick();
        let index = {
            let mut log = locked(&world.log);
            log.manager.push(ManagerRec {
                inst: ctx.inst,
                seen,
                begin,
                end: 0,
            });
            log.manager.len() - 1
        };
        // The removal's order against the other threads' judged events is explored (the
        // arrival's is not: every registration has one, and the tiers without the
        // shutdown are measured without it).
        if removal {
            world.judged_point();
        }
        world.monitor.callback_begin(&ctx.label, n);
        ctx.touch(&world.monitor, "at", n);
        let end = world.tick();
        locked(&world.log).manager[index].end = end;
        if removal {
            world.judged_point();
        }
        world.monitor.callback_end(&ctx.label, n);
        return;
    }
    let hub_ix = (n.hub_id().expect("a hub event").0 - 1) as HubIx;
    // A scheduling point on entry: the checker may preempt the callback before it has
    // done anything, as a real thread can be.
    ctx.touch(&world.monitor, "on entry to", n);
    let seen = match &n.event {
        Event::HubArrival(info) => {
            let (presence, last_change) = tokens(info);
            Seen::Arrival {
                presence,
                last_change,
            }
        }
        // Programs report changes of connector 1; connector 0 changes only when the
        // hardware accepts a power request.
        Event::ConnectorStateChange {
            connector: ConnectorId(0),
            ..
        } => Seen::Power,
        Event::ConnectorStateChange { state, .. } => Seen::Change {
            token: state.partner_max_milliwatts as usize,
        },
        Event::HubRemoval => Seen::Removal,
        Event::PolicyManagerArrival { .. } | Event::PolicyManagerRemoval => {
            unreachable!("the Policy Manager's events returned above")
        }
    };
    let begin = world.tick();
    let index = {
        let mut log = locked(&world.log);
        log.seen.push(SeenRec {
            inst: ctx.inst,
            hub: n.hub_id().expect("a hub event").0,
            seq: n.seq,
            seen: seen.clone(),
            begin,
            end: 0,
        });
        log.seen.len() - 1
    };
    world.judged_point();
    world.monitor.callback_begin(&ctx.label, n);
    locked(&world.stacks)
        .entry(rt::thread_name())
        .or_default()
        .push(ctx.inst);
    let end = EndOnDrop {
        world: &world,
        ctx,
        n,
        seen: index,
    };
    ctx.touch(&world.monitor, "at begin of", n);
    // A panicking behaviour is caught here and its panic raised again once the end is
    // recorded: recording the end makes scheduling points, and under loom (every model
    // thread on one OS thread) a switch in the middle of an unwind lets another thread
    // release a lock while `thread::panicking()` holds, which poisons it (and loom's
    // `Mutex::lock` unwraps the poison). Nothing of the unwind is lost: the library
    // catches the panic raised again, as it would the first.
    let acted = if matches!(seen, Seen::Removal) {
        Ok(())
    } else {
        let presence = n.hub.expect("a hub event");
        let change = matches!(seen, Seen::Change { .. } | Seen::Power);
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            act(&world, ctx, pm, me, (hub_ix, presence), change);
        }))
    };
    if let Err(payload) = acted {
        drop(end);
        std::panic::resume_unwind(payload);
    }
    ctx.touch(&world.monitor, "at end of", n);
    drop(end);
}

/// Acts out `ctx`'s behaviour in a callback for an event of `hub` (its index, and the
/// presence the event is about); `change`: the event is a connector change.
fn act(
    world: &Arc<World>,
    ctx: &Ctx,
    pm: &PolicyManager,
    me: ClientHandle,
    hub: (HubIx, HubHandle),
    change: bool,
) {
    let (hub_ix, presence) = hub;
    // Callbacks can feed each other for ever (one registers a client whose arrival replay
    // makes another report a change that a third answers by deregistering it, ...): a
    // program is a finite amount of work only if its behaviours act a bounded number of
    // times. Beyond the budget a callback only reports itself.
    if world.acts.fetch_add(1, Ordering::SeqCst) >= MAX_ACTS {
        return;
    }
    match ctx.behaviour {
        Behaviour::Nothing => {}
        Behaviour::Query => world.query(hub_ix),
        Behaviour::AssignPower => world.assign(hub_ix, (ctx.inst, me), Some(presence)),
        Behaviour::Register(o) => world.register(o),
        Behaviour::Deregister(o) => world.deregister(o),
        Behaviour::DeregisterSelf => {
            let handle = locked(&world.insts)[ctx.inst].handle;
            // Before `register` returned the client does not know its handle yet.
            if let Some(h) = handle {
                world.monitor.deregister_called(&ctx.label);
                let r = world.unit_call(
                    Call::Deregister {
                        inst: Some(ctx.inst),
                    },
                    || pm.deregister(h),
                );
                world.judged_point();
                world.monitor.deregister_returned(&ctx.label, &r);
            }
        }
        Behaviour::DropOwnGuard => {
            let mine = locked(&world.slots)[ctx.client as usize].latest == Some(ctx.inst);
            if mine {
                world.drop_guard(ctx.client, true);
            }
        }
        Behaviour::Panic => world.model_panic(),
        Behaviour::ReportChange(h) => {
            if !ctx.reported.swap(true, std::sync::atomic::Ordering::SeqCst) {
                world.change(h);
            }
        }
        Behaviour::Shutdown => world.shutdown(),
        // On connector changes only (program docs).
        Behaviour::DropGuard(o) if change => world.drop_guard(o, false),
        Behaviour::DropGuard(_) => {}
        Behaviour::Detach(o) => world.detach(o),
        Behaviour::Wait(o) => world.wait(o),
    }
}

/// Runs `program` once: init on this thread, the parallel part on spawned threads, then
/// the post part; judges the monitor's properties and the oracle. Panics with the
/// timeline and `replay` on a violation.
pub fn execute(program: &Program, mutant: Option<Mutant>, replay: &str) {
    let world = World::new(program.clone(), mutant);
    for &op in &program.init {
        world.op(op);
    }
    let threads: Vec<_> = program
        .threads
        .iter()
        .enumerate()
        .map(|(i, ops)| {
            let w = world.clone();
            let ops = ops.clone();
            rt::spawn(&format!("t{}", i + 1), move || {
                for op in ops {
                    w.op(op);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a program thread");
    }
    world.post();
    let log = world.log();
    if log.calls.len() > crate::judge::oracle::MAX_LINEARIZED {
        world.monitor.note(format!(
            "oracle: {} calls, more than {}: returns not judged, callbacks and cycles are",
            log.calls.len(),
            crate::judge::oracle::MAX_LINEARIZED
        ));
    }
    for v in crate::judge::oracle::judge(program, &log) {
        world
            .monitor
            .violation(v.property, format!("oracle: {}", v.message));
    }
    // The specification has no calls made from a context's `Drop` yet (a drop may run
    // inside `deregister`, after a drain, inside a callback): such a trace is not one of
    // its behaviours, so it is not validated (the monitors and the oracle still judge it).
    let drop_calls = world.drop_calls.load(Ordering::SeqCst);
    if drop_calls > 0 {
        world.monitor.note(format!(
            "trace validation skipped: contexts' drops made {drop_calls} call(s), which the specification does not model"
        ));
    }
    // Nor waits on detach completions made inside callbacks (a wait-for edge outside a
    // deregister); a refused one takes no step and leaves the trace validated.
    let callback_waits = world.callback_waits.load(Ordering::SeqCst);
    if callback_waits > 0 {
        world.monitor.note(format!(
            "trace validation skipped: callbacks waited on {callback_waits} detach completion(s), which the specification does not model"
        ));
    }
    world.clear();
    let monitor = world.monitor.clone();
    drop(world);
    monitor.finish(replay);
    // Under shuttle and std the recorded trace must be a behaviour of the specification
    // (as in `run::execute`); loom's executions are too many to pay for it.
    if cfg!(not(feature = "loom")) && drop_calls == 0 && callback_waits == 0 {
        crate::judge::trace::check_execution(&monitor, replay);
    }
}

#[cfg(all(test, not(any(feature = "loom", feature = "shuttle"))))]
mod tests {
    use super::*;
    use crate::judge::oracle::{contexts, judge};
    use crate::lang::program::ClientSpec;

    fn client(behaviour: Behaviour, on_drop: DropBehaviour) -> ClientSpec {
        ClientSpec {
            behaviour,
            owned: false,
            on_drop,
        }
    }

    /// Runs `p`'s init part and the post part on this thread (no parallel part): its log,
    /// and every violation the monitor and the oracle found.
    fn run(p: &Program) -> (Log, Vec<String>) {
        assert_eq!(p.well_formed(), Ok(()));
        let world = World::new(p.clone(), None);
        for &op in &p.init {
            world.op(op);
        }
        world.post();
        let log = world.log();
        let mut found: Vec<String> = judge(p, &log).into_iter().map(|v| v.message).collect();
        found.extend(world.monitor.violations().into_iter().map(|v| v.message));
        world.clear();
        (log, found)
    }

    /// A's context panics when dropped; B's reports a change on hub 2 when dropped. Each
    /// is deregistered while both hubs hold it, so its context goes with the second hub's
    /// delivery that prunes it (B's while hub 1's port is in use, hub 2's free).
    fn drops_program() -> Program {
        Program {
            clients: vec![
                client(Behaviour::Nothing, DropBehaviour::Panic),
                client(Behaviour::Nothing, DropBehaviour::ReportChange(1)),
                client(Behaviour::Nothing, DropBehaviour::Nothing),
            ],
            hubs: 2,
            init: vec![
                Op::Register(0),
                Op::Register(1),
                Op::Register(2),
                Op::Arrive(0),
                Op::Arrive(1),
                Op::Deregister(0),
                Op::Change(0),
                Op::Change(1),
                Op::Deregister(1),
                Op::Change(1),
                Op::Change(0),
            ],
            threads: vec![],
        }
    }

    #[test]
    fn contexts_drop_once_and_act() {
        let (log, found) = run(&drops_program());
        assert!(found.is_empty(), "{found:#?}");
        let dropped: Vec<InstId> = log.drops.iter().map(|d| d.inst).collect();
        assert_eq!(dropped, vec![0, 1, 2], "each context once, in this order");
        // A's drop panicked, contained and counted.
        assert_eq!((log.panics_raised, log.panics_counted), (1, 1));
        // B's drop reported a change on hub 2, which C (still registered) was told.
        let b_drop = log.drops[1].at;
        let change = log
            .calls
            .iter()
            .find(|c| matches!(c.call, Call::Change { hub: 2, .. }) && c.start > b_drop)
            .expect("B's drop reported a change on hub 2");
        let Call::Change { token, .. } = change.call else {
            unreachable!()
        };
        assert!(log
            .seen
            .iter()
            .any(|s| s.inst == 2 && s.seen == Seen::Change { token }));
        // Every callback returned before its context went.
        assert!(log.seen.iter().all(|s| s.end > s.begin));
    }

    #[test]
    fn a_drop_that_registers_is_deregistered_by_the_post_part() {
        // A's drop registers B, and B's registers A again: the post part deregisters each
        // new registration until the budget stops the drops from acting.
        let p = Program {
            clients: vec![
                client(Behaviour::Nothing, DropBehaviour::Register(1)),
                client(Behaviour::Nothing, DropBehaviour::Register(0)),
            ],
            hubs: 0,
            init: vec![Op::Register(0)],
            threads: vec![],
        };
        let (log, found) = run(&p);
        assert!(found.is_empty(), "{found:#?}");
        let registers = log
            .calls
            .iter()
            .filter(|c| matches!(c.call, Call::Register { .. }))
            .count();
        assert_eq!(
            registers,
            MAX_ACTS + 1,
            "the first, then one per drop acted"
        );
        assert_eq!(log.drops.len(), registers, "every context dropped");
    }

    #[test]
    fn the_oracle_judges_contexts() {
        let (log, found) = run(&drops_program());
        assert!(found.is_empty(), "{found:#?}");
        assert!(contexts(&log).is_empty());
        let says = |log: &Log, property: Property, what: &str| {
            let v = contexts(log);
            assert!(
                v.iter()
                    .any(|v| v.property == property && v.message.contains(what)),
                "expected {} `{what}`, got {v:#?}",
                property.id()
            );
        };
        let p9 = Property::ContextDiesOutside;
        // A context never dropped (leaked).
        let mut l = log.clone();
        l.drops.retain(|d| d.inst != 2);
        says(&l, p9, "C's context was never dropped");
        // Dropped twice.
        let mut l = log.clone();
        l.drops.push(l.drops[0].clone());
        says(&l, p9, "A's context was dropped 2 times");
        // Dropped before its deregister began.
        let mut l = log.clone();
        l.drops[0].at = 1;
        says(&l, p9, "while A was registered");
        // Dropped while one of its calls was running.
        let mut l = log.clone();
        let call = l.seen.iter().position(|s| s.inst == 1).unwrap();
        l.seen[call].end = l.drops[1].at + 1;
        says(&l, p9, "had not returned");
        // A contained panic not counted.
        let mut l = log.clone();
        l.panics_counted = 0;
        says(
            &l,
            Property::BadInputErrors,
            "panicked_callbacks() returned 0",
        );
    }

    /// A refused wait on a detach completion is judged (P4): only the error
    /// `Detached::wait` documents for where it was made, naming the client (and the
    /// callbacks the thread is inside), with the same completion handed back.
    #[test]
    fn refused_waits_are_judged() {
        let p = Program {
            clients: vec![client(Behaviour::Nothing, DropBehaviour::Nothing)],
            hubs: 0,
            init: vec![],
            threads: vec![],
        };
        let other = ClientHandle::from_raw(FORGED);
        // `e` refusing the wait on `target`'s completion (instance `inst`), on this thread
        // inside A's callback or outside every callback: how many violations.
        let judged = |inside: bool,
                      inst: InstId,
                      target: Option<ClientHandle>,
                      e: &dyn Fn(ClientHandle) -> Error,
                      back: bool| {
            let world = World::new(p.clone(), None);
            world.op(Op::Register(0));
            let a = locked(&world.insts)[0].handle.expect("A is registered");
            if inside {
                locked(&world.stacks)
                    .entry(rt::thread_name())
                    .or_default()
                    .push(0);
            }
            let target = target.unwrap_or(a);
            world.refused_wait(&e(a), target, inst, back.then_some(target));
            let found = world.monitor.violations();
            world.clear();
            assert!(found.iter().all(|v| v.property == Property::BadInputErrors));
            found.len()
        };
        let own = Error::DeregisterFromOwnCallback;
        let cycle = |a| Error::WouldDeadlock {
            target: other,
            holding: vec![a],
        };
        // As documented: inside A's own callback, and inside A's waiting for another.
        assert_eq!(judged(true, 0, None, &own, true), 0);
        assert_eq!(judged(true, 1, Some(other), &cycle, true), 0);
        // Not: the completion kept, the wrong error, the wrong client or callbacks, or a
        // refusal outside every callback.
        assert_eq!(judged(true, 0, None, &own, false), 1);
        assert_eq!(judged(true, 0, None, &cycle, true), 1);
        assert_eq!(judged(true, 1, Some(other), &own, true), 1);
        assert_eq!(
            judged(true, 1, Some(other), &|_| Error::StaleHandle(other), true),
            1
        );
        assert_eq!(judged(true, 1, Some(other), &|_| cycle(other), true), 1);
        assert_eq!(judged(false, 1, Some(other), &cycle, true), 1);
        assert_eq!(judged(false, 0, None, &own, true), 1);
    }

    /// Power requests answered (one accepted, one rejected), the shutdown, and what it
    /// refuses afterwards: A plain, B shutting down from its callbacks (refused), C
    /// registered after the shutdown (refused: its context, dropped at once, panics).
    fn shutdown_program() -> Program {
        Program {
            clients: vec![
                client(Behaviour::Nothing, DropBehaviour::Nothing),
                ClientSpec {
                    behaviour: Behaviour::Shutdown,
                    owned: true,
                    on_drop: DropBehaviour::Nothing,
                },
                client(Behaviour::Nothing, DropBehaviour::Panic),
            ],
            hubs: 2,
            init: vec![
                Op::Register(0),
                Op::Register(1),
                Op::Arrive(0),
                Op::Arrive(1),
                Op::AssignPower(0),
                Op::Answer(0, true),
                Op::AssignPower(0),
                Op::Answer(0, false),
                Op::Change(0),
                Op::Shutdown,
                Op::Register(2),
                Op::Arrive(1),
                Op::Query(0),
                Op::AssignPower(0),
                Op::Answer(0, true),
                Op::Change(0),
                Op::Shutdown,
                Op::Remove(1),
            ],
            threads: vec![],
        }
    }

    fn rets<'a>(log: &'a Log, what: impl Fn(&Call) -> bool + 'a) -> Vec<&'a Ret> {
        log.calls
            .iter()
            .filter(|c| what(&c.call))
            .map(|c| &c.ret)
            .collect()
    }

    #[test]
    fn shutdown_and_answers_run_and_are_judged() {
        let p = shutdown_program();
        let (log, found) = run(&p);
        assert!(found.is_empty(), "{found:#?}");
        let ok = Ret::Unit(Ok(()));
        let removed = Ret::Unit(Err(Error::PolicyManagerRemoved));
        let inside = Ret::Unit(Err(Error::ShutdownInsideCallback));
        // The thread's shutdowns: the first succeeds, the second is refused; B's
        // callbacks' (two arrivals and the accepted request's change, the changes of
        // connector 1: all before the shutdown) are refused.
        let shutdowns = rets(&log, |c| *c == Call::Shutdown);
        assert_eq!(
            shutdowns,
            vec![&inside, &inside, &inside, &inside, &ok, &removed],
            "{:#?}",
            log.calls
        );
        assert!(log
            .calls
            .iter()
            .filter(|c| c.ret == inside)
            .all(|c| c.inside == vec![1]));
        // After it: C's register and the arrival refused, the power request too. C's
        // refused context was dropped inside `register`: its panic contained and counted.
        assert_eq!(
            rets(&log, |c| *c == Call::Register { inst: 2 }),
            vec![&removed]
        );
        assert!(log.drops.iter().any(|d| d.inst == 2));
        assert_eq!((log.panics_raised, log.panics_counted), (1, 1));
        assert_eq!(
            rets(&log, |c| matches!(c, Call::Arrive { hub: 2, .. })),
            vec![&ok, &removed]
        );
        assert_eq!(
            rets(&log, |c| matches!(c, Call::AssignPower { .. })),
            vec![&ok, &ok, &removed]
        );
        // The answers: one accepted request reported, one rejected not, then nothing.
        let answers = rets(&log, |c| matches!(c, Call::Answer { .. }));
        assert_eq!(
            answers,
            vec![
                &Ret::Answers(vec![Ok(true)]),
                &Ret::Answers(vec![Ok(false)]),
                &Ret::Answers(vec![]),
            ]
        );
        // A saw hub 1's arrival, the accepted request (seq 1) and the change (seq 2):
        // nothing for the rejected one, and nothing after the shutdown.
        let a_hub1: Vec<(u64, Seen)> = log
            .seen
            .iter()
            .filter(|s| s.inst == 0 && s.hub == 1)
            .map(|s| (s.seq, s.seen.clone()))
            .collect();
        assert!(
            matches!(
                &a_hub1[..],
                [
                    (0, Seen::Arrival { .. }),
                    (1, Seen::Power),
                    (2, Seen::Change { .. })
                ]
            ),
            "{a_hub1:?}"
        );
        // A and B heard the Policy Manager arrive and leave, once each; C nothing.
        for inst in [0, 1] {
            let heard: Vec<ManagerSeen> = log
                .manager
                .iter()
                .filter(|m| m.inst == inst)
                .map(|m| m.seen)
                .collect();
            assert_eq!(heard, vec![ManagerSeen::Arrival, ManagerSeen::Removal]);
        }
        assert!(log.manager.iter().all(|m| m.inst != 2));
        // The query after the shutdown: the system view still shows hub 1.
        assert!(matches!(
            rets(&log, |c| matches!(c, Call::Query { .. }))[..],
            [Ret::Hub(Ok(_))]
        ));
    }

    #[test]
    fn the_oracle_judges_the_shutdown_and_the_answers() {
        let (log, found) = run(&shutdown_program());
        assert!(found.is_empty(), "{found:#?}");
        let says = |log: &Log, property: Property, what: &str| {
            let v = judge(&shutdown_program(), log);
            assert!(
                v.iter()
                    .any(|v| v.property == property && v.message.contains(what)),
                "expected {} `{what}`, got {v:#?}",
                property.id()
            );
        };
        let call = |log: &Log, what: &dyn Fn(&Call) -> bool, nth: usize| {
            log.calls
                .iter()
                .enumerate()
                .filter(|(_, c)| what(&c.call))
                .nth(nth)
                .expect("the call")
                .0
        };
        // A rejected answer followed by a change: the first answer made rejected (and
        // its return with it, so that only the events tell). Its change of connector 0
        // is then no change of the hub's history.
        let mut l = log.clone();
        let i = call(&l, &|c| matches!(c, Call::Answer { .. }), 0);
        l.calls[i].call = Call::Answer {
            hub: 1,
            presence: match l.calls[i].call {
                Call::Answer { presence, .. } => presence,
                _ => unreachable!(),
            },
            accepted: false,
        };
        l.calls[i].ret = Ret::Answers(vec![Ok(false)]);
        assert!(crate::judge::oracle::linearize(&l).is_ok());
        says(
            &l,
            Property::PowerRoundTrip,
            "got a change of connector 0 (what an accepted power request is reported as) of hub 1",
        );
        // The rejected answer said to have reported its request.
        let mut l = log.clone();
        let i = call(&l, &|c| matches!(c, Call::Answer { .. }), 1);
        l.calls[i].ret = Ret::Answers(vec![Ok(true)]);
        says(&l, Property::BadInputErrors, "answer (rejected)");
        // An accepted answer that took no request (one was waiting).
        let mut l = log.clone();
        let i = call(&l, &|c| matches!(c, Call::Answer { .. }), 0);
        l.calls[i].ret = Ret::Answers(vec![]);
        says(&l, Property::BadInputErrors, "answer (accepted)");
        // Two shutdowns succeed.
        let mut l = log.clone();
        let i = call(&l, &|c| *c == Call::Shutdown, 5);
        l.calls[i].ret = Ret::Unit(Ok(()));
        says(
            &l,
            Property::BadInputErrors,
            "2 calls of shutdown returned Ok",
        );
        // A register accepted after the shutdown.
        let mut l = log.clone();
        let i = call(&l, &|c| *c == Call::Register { inst: 2 }, 0);
        l.calls[i].ret = Ret::Unit(Ok(()));
        says(&l, Property::BadInputErrors, "cannot be explained");
        // A's removal lost, or heard twice.
        let removal = |l: &Log| {
            l.manager
                .iter()
                .position(|m| m.inst == 0 && m.seen == ManagerSeen::Removal)
                .unwrap()
        };
        let mut l = log.clone();
        l.manager.remove(removal(&l));
        says(
            &l,
            Property::NothingAfterRemoval,
            "A heard the Policy Manager's arrival and was still registered when shutdown returned",
        );
        let mut l = log.clone();
        l.manager.push(l.manager[removal(&l)].clone());
        says(
            &l,
            Property::NothingAfterRemoval,
            "A heard the Policy Manager's removal 2 times",
        );
        // A hub event after the shutdown returned.
        let mut l = log.clone();
        let sd = &l.calls[call(&l, &|c| *c == Call::Shutdown, 4)];
        let mut late = l.seen[0].clone();
        (late.begin, late.end) = (sd.end + 1, sd.end + 2);
        l.seen.push(late);
        says(&l, Property::NothingAfterRemoval, "after shutdown returned");
        // The removal while an earlier call still ran.
        let mut l = log.clone();
        let r = removal(&l);
        let last = l.seen.iter().rposition(|s| s.inst == 0).unwrap();
        l.seen[last].end = l.manager[r].begin + 1;
        says(&l, Property::NothingAfterRemoval, "the removal is last");
        // A greeting never delivered, and no shutdown or deregister before register
        // returned.
        let mut l = log.clone();
        l.manager.retain(|m| m.inst != 0);
        says(
            &l,
            Property::ArrivalFirst,
            "A never heard the Policy Manager's arrival",
        );
    }
}

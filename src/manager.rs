//! The Policy Manager: registration, delivery and deregistration.

use std::fmt;
use std::num::NonZeroUsize;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::checking::{Hooks, ManagerEvent, Mutant, Step};
use crate::error::Error;
use crate::event::{
    Access, ConnectorHandle, ConnectorId, ConnectorInfo, ConnectorProperties, ConnectorState,
    Event, HubHandle, HubId, HubInfo, Notification, PowerLevel, MAX_CONNECTORS,
};
use crate::handle::ClientHandle;
use crate::hub::{self, Hub, DEFAULT_CALLBACK_REPORTS, DEFAULT_QUEUE_CAPACITY};
use crate::registry::Registry;
use crate::rundown::Rundown;
use crate::sync::{lock, Arc, AtomicBool, AtomicU64, Mutex, Ordering};
use crate::waits::{self, InsideCallback, WaitGraph};

type Callback = Box<dyn Fn(&PolicyManager, ClientHandle, &Notification) + Send + Sync>;

/// What a client registers: its event callback and the context the callback receives.
///
/// **One call at a time.** Calls of a client's callback are serialized, as Windows
/// promises its Policy Manager clients: across every hub and thread, at most one call is
/// active, and each call begins after the previous one returned (everything the previous
/// call wrote happens-before the next call begins). Events of different hubs may come on
/// different threads, one after another. A callback therefore needs no lock to guard its
/// context against itself: Rust still asks the context to be `Sync`, and relaxed atomics
/// (or a lock that is never contended) satisfy it.
///
/// The callback may call back into the Policy Manager it is given: retrieve hub and
/// connector properties, request power levels, report connector changes, register
/// clients, and deregister *other* clients.
///
/// **Events.** A registration's first event is [`Event::PolicyManagerArrival`], with the
/// access granted; then, for each hub, its arrival and later events; and, if the Policy
/// Manager shuts down, [`Event::PolicyManagerRemoval`] last.
pub struct ClientConfig {
    callback: Callback,
    access: Access,
}

impl ClientConfig {
    /// A client whose `callback(context, pm, notification)` hears every event.
    ///
    /// The Policy Manager owns `context` from here on. It is dropped when the last
    /// internal reference to the registration goes: after the last call of the callback
    /// returned, outside the Policy Manager's locks and outside any hub's delivery, which
    /// may be after `deregister` returns and on another thread. Its `Drop` may call back
    /// into the Policy Manager like any caller; a panic out of it is contained and counted
    /// in [`PolicyManager::panicked_callbacks`]. What `deregister` guarantees is that the
    /// callback is never *called* again: a driver that frees memory the context points to
    /// may do so as soon as `deregister` returns `Ok` (ledger C10).
    pub fn new<C, F>(context: C, callback: F) -> Self
    where
        C: Send + Sync + 'static,
        F: Fn(&C, &PolicyManager, &Notification) + Send + Sync + 'static,
    {
        ClientConfig {
            callback: Box::new(move |pm, _me, n| callback(&context, pm, n)),
            access: Access::ALL,
        }
    }

    /// Like [`new`](Self::new), with the client's own handle passed to every call of the
    /// callback (`callback(context, pm, me, notification)`): the handle the retrieve and
    /// power calls take, known before the first call, which may come before `register`
    /// returns.
    pub fn with_handle<C, F>(context: C, callback: F) -> Self
    where
        C: Send + Sync + 'static,
        F: Fn(&C, &PolicyManager, ClientHandle, &Notification) + Send + Sync + 'static,
    {
        ClientConfig {
            callback: Box::new(move |pm, me, n| callback(&context, pm, me, n)),
            access: Access::ALL,
        }
    }

    /// The access the client asks for (default: [`Access::ALL`]). What is granted, the
    /// request as far as the Policy Manager grants it ([`PolicyManager::granting`]),
    /// arrives with [`Event::PolicyManagerArrival`]; a call that needs more is refused
    /// with [`Error::AccessDenied`].
    pub fn access(mut self, access: Access) -> Self {
        self.access = access;
        self
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("access", &self.access)
            .finish_non_exhaustive()
    }
}

/// A registered client as the Policy Manager holds it.
pub(crate) struct Client {
    handle: ClientHandle,
    rundown: Rundown,
    callback: Callback,
    /// What the client may do.
    granted: Access,
    /// Its Policy Manager arrival has been delivered (set before that call's count is
    /// released, so whoever sees the count at zero afterwards sees it).
    greeted: AtomicBool,
    /// For the context's drop: its step, and its panic counted like a callback's.
    hooks: Hooks,
    panicked: Arc<AtomicU64>,
}

impl Client {
    pub(crate) fn handle(&self) -> ClientHandle {
        self.handle
    }
}

/// The context goes with the last reference to the client, after its last call returned.
/// The library lets that happen only outside its locks and outside a hub's drain (a hub's
/// drainer keeps the clients it pruned until it has stopped draining), so a `Drop` that
/// calls back into the Policy Manager is an ordinary call. A panic out of the `Drop` is
/// contained and counted with the callbacks' panics.
impl Drop for Client {
    fn drop(&mut self) {
        let handle = self.handle;
        self.hooks.step(|| Step::ContextDrop(handle));
        let callback: Callback = std::mem::replace(&mut self.callback, Box::new(|_, _, _| {}));
        drop_contained(callback, &self.hooks, &self.panicked);
    }
}

/// Drops a callback (and its context) with a panic out of the context's `Drop` contained
/// and counted in `panicked`.
fn drop_contained(callback: Callback, hooks: &Hooks, panicked: &AtomicU64) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| drop(callback))) {
        if !hooks.contain(&*payload) {
            std::panic::resume_unwind(payload);
        }
        panicked.fetch_add(1, Ordering::Relaxed);
    }
}

struct Shared {
    /// Clients and hubs: the registry lock (see [`Registry`]).
    registry: Mutex<Registry<Arc<Client>, Arc<Hub>>>,
    waits: WaitGraph,
    /// Panics contained: out of callbacks and out of contexts' drops.
    panicked: Arc<AtomicU64>,
    /// What the Policy Manager grants (a client gets what it asks for, within this).
    grants: Access,
    /// The queue capacity and the callbacks' budget of reports.
    limits: Limits,
    hooks: Hooks,
}

/// What callbacks may report before they are refused. A callback's thread delivers nothing
/// until the callback returns, so without limits a callback could grow a hub's queue
/// without bound, or (reporting, or registering a client, on every event it receives)
/// keep its thread's outermost call delivering for ever. Reports made outside callbacks wait for their turn instead
/// and are never refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// A change, accepted power answer or hub re-arrival made inside a callback is refused
    /// with [`Error::HubQueueFull`] when the hub's queue holds this many items (ledger
    /// C18). Default [`DEFAULT_QUEUE_CAPACITY`](crate::DEFAULT_QUEUE_CAPACITY) (64).
    pub queue_capacity: NonZeroUsize,
    /// Such a report is refused with [`Error::CallbackReportsSpent`], and a `register`
    /// inside a callback with [`Error::CallbackRegistrationsSpent`], when the thread's
    /// callbacks have made this many reports and registrations since the thread last owed
    /// nothing (its outermost call delivers every item its callbacks caused, and greets
    /// every client they registered, before it returns; ledger C19). Default [`DEFAULT_CALLBACK_REPORTS`](crate::DEFAULT_CALLBACK_REPORTS) (64).
    pub callback_reports: NonZeroUsize,
}

impl Default for Limits {
    fn default() -> Self {
        let n = |v| NonZeroUsize::new(v).expect("the defaults are not 0");
        Limits {
            queue_capacity: n(DEFAULT_QUEUE_CAPACITY),
            callback_reports: n(DEFAULT_CALLBACK_REPORTS),
        }
    }
}

/// The Policy Manager: clients register with it, hardware reports to it, and it delivers
/// every hub's events to every registered client.
///
/// Cloning is cheap and every clone is the same Policy Manager.
#[derive(Clone)]
pub struct PolicyManager {
    shared: Arc<Shared>,
}

impl fmt::Debug for PolicyManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyManager").finish_non_exhaustive()
    }
}

impl Default for PolicyManager {
    fn default() -> Self {
        Self::new()
    }
}

fn next_instance() -> u32 {
    // A process-wide counter that only tells handles of different Policy Managers
    // apart; it orders nothing, so it is a plain std atomic even under the checkers.
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

impl PolicyManager {
    /// A Policy Manager with no clients and no hubs.
    pub fn new() -> Self {
        Self::granting(Access::ALL)
    }

    /// A Policy Manager that grants clients at most `grants` (what a client gets is what
    /// it asked for, within this).
    pub fn granting(grants: Access) -> Self {
        Self::with_limits(grants, Limits::default())
    }

    /// A Policy Manager granting at most `grants`, with `limits` on what callbacks may
    /// report (see [`Limits`]).
    pub fn with_limits(grants: Access, limits: Limits) -> Self {
        // `Hooks` is a unit struct in production builds and a real one under `checking`.
        #[allow(clippy::default_constructed_unit_structs)]
        let hooks = Hooks::default();
        Self::with_hooks(hooks, grants, limits)
    }

    /// The limits on what callbacks may report.
    pub fn limits(&self) -> Limits {
        self.shared.limits
    }

    /// A Policy Manager with one seeded bug switched on (`mutant`) and a probe that hears
    /// every protocol step. Only for the verification gate.
    #[cfg(feature = "checking")]
    pub fn checking(
        mutant: Option<crate::checking::Mutant>,
        probe: Option<std::sync::Arc<dyn crate::checking::Probe>>,
    ) -> Self {
        Self::checking_with_limits(mutant, probe, Limits::default())
    }

    /// [`checking`](Self::checking) with `limits` (small ones let the checkers reach a
    /// full queue or a spent budget in a few steps).
    #[cfg(feature = "checking")]
    pub fn checking_with_limits(
        mutant: Option<crate::checking::Mutant>,
        probe: Option<std::sync::Arc<dyn crate::checking::Probe>>,
        limits: Limits,
    ) -> Self {
        Self::with_hooks(Hooks { mutant, probe }, Access::ALL, limits)
    }

    fn with_hooks(hooks: Hooks, grants: Access, limits: Limits) -> Self {
        PolicyManager {
            shared: Arc::new(Shared {
                registry: Mutex::new(Registry::new(next_instance())),
                waits: WaitGraph::new(),
                panicked: Arc::new(AtomicU64::new(0)),
                grants,
                limits,
                hooks,
            }),
        }
    }

    pub(crate) fn hooks(&self) -> &Hooks {
        &self.shared.hooks
    }

    /// Registers a client and returns its handle.
    ///
    /// The client first receives [`PolicyManagerArrival`](crate::Event::PolicyManagerArrival)
    /// with the access granted; then, for every hub present, a
    /// [`HubArrival`](crate::Event::HubArrival) with the hub's current state, then every
    /// later event of that hub, in order. Called outside callbacks, `register` delivers
    /// the Policy Manager's arrival (and the hubs' arrivals) before it returns. Called
    /// from inside a callback, it only registers: the arrivals follow once the thread's
    /// outermost call into the Policy Manager is done with its callbacks (callbacks never
    /// nest on a thread). Either way, no hub's event reaches the client before its
    /// Policy Manager arrival has returned (ledger C8, C11).
    ///
    /// # Errors
    /// - [`Error::PolicyManagerRemoved`] (`STATUS_DEVICE_REMOVED`) after
    ///   [`shutdown`](Self::shutdown).
    /// - [`Error::TooManyClients`] (`STATUS_INSUFFICIENT_RESOURCES`) when no client slot
    ///   is free. A Policy Manager has 65,536 slots (handles have 16 bits of slot); a slot
    ///   is in use while it holds a registered client, and exhausted (out of use for good)
    ///   once 65,535 registrations have gone through it (a deregistered client's slot is
    ///   reused, and after that many its generation would wrap). So `register` is refused
    ///   when the registered clients plus the exhausted slots number 65,536; with no slot
    ///   exhausted, that is 65,536 clients registered at once.
    /// - [`Error::CallbackRegistrationsSpent`] (`STATUS_INSUFFICIENT_RESOURCES`) inside a
    ///   callback whose thread's callbacks have already made
    ///   [`Limits::callback_reports`] reports and registrations that its outermost call
    ///   has not delivered (ledger C19).
    ///
    /// A refused `register` changes nothing: no slot is consumed and no event is queued.
    /// `config` is dropped (with its context) before `register` returns, outside the
    /// Policy Manager's locks.
    pub fn register(&self, config: ClientConfig) -> Result<ClientHandle, Error> {
        // Held here, not moved into the closure: if the registry refuses, the context is
        // dropped after the registry lock is released (its drop may call back into us).
        let mut callback = Some(config.callback);
        let granted = config.access.intersection(self.shared.grants);
        let inserted = if let Err(e) = hub::refuse_registration(self) {
            Err(e)
        } else {
            let mut registry = lock(&self.shared.registry);
            if registry.shut {
                Err(Error::PolicyManagerRemoved)
            } else {
                self.insert(&mut registry, &mut callback, granted)
            }
        };
        let client = match inserted {
            Ok(client) => client,
            Err(e) => {
                // Refused: the context goes here, outside the lock, its panic contained.
                if let Some(callback) = callback {
                    drop_contained(callback, self.hooks(), &self.shared.panicked);
                }
                return Err(e);
            }
        };
        let handle = client.handle;
        self.hooks().step(|| Step::Registered(handle));
        if waits::inside_callback() {
            hub::count_report();
            hub::owe_greeting(self, client);
        } else {
            hub::greet_and_settle(self, client);
        }
        Ok(handle)
    }

    /// Puts a new client (with `callback`, taken) in a free slot, hidden from the hubs.
    fn insert(
        &self,
        registry: &mut Registry<Arc<Client>, Arc<Hub>>,
        callback: &mut Option<Callback>,
        granted: Access,
    ) -> Result<Arc<Client>, Error> {
        let mut client = None;
        let handle = registry.clients.insert_with(|handle| {
            let c = Arc::new(Client {
                handle,
                rundown: Rundown::new(),
                callback: callback.take().expect("insert_with calls its closure once"),
                granted,
                greeted: AtomicBool::new(false),
                hooks: self.shared.hooks.clone(),
                panicked: self.shared.panicked.clone(),
            });
            client = Some(c.clone());
            c
        })?;
        // Hidden from hubs until its Policy Manager arrival has been delivered.
        registry.hidden.insert(handle);
        Ok(client.expect("insert_with calls its closure"))
    }

    /// Delivers `client`'s Policy Manager arrival (unless it was deregistered, or the
    /// Policy Manager shut down, meanwhile), then shows it to the hubs: queues an arrival
    /// replay for every hub present. Called outside callbacks only, inside a settling:
    /// `register`'s own (`hub::greet_and_settle`), or that of a thread whose callback
    /// registered the client.
    pub(crate) fn greet(&self, client: Arc<Client>) {
        if self.hooks().mutant(Mutant::ArrivalNotFirst) {
            // The bug: the hubs see the client before its Policy Manager arrival.
            self.show(&client);
            self.arrive(&client);
        } else {
            self.arrive(&client);
            self.show(&client);
        }
        let handle = client.handle;
        self.hooks().step(|| Step::Greeted(handle));
    }

    /// Calls `client`'s callback with its Policy Manager arrival, unless it is closed.
    fn arrive(&self, client: &Client) {
        let hooks = self.hooks();
        let handle = client.handle;
        let arrival = Notification {
            hub: None,
            seq: 0,
            event: Event::PolicyManagerArrival {
                access: client.granted,
            },
        };
        // Hidden, the client is called by nobody else: this call holds the turn.
        match client.rundown.try_acquire(hooks) {
            Ok(from) => {
                hooks.step(|| Step::InFlightAcquire {
                    client: handle,
                    from,
                });
                self.call(client, &arrival);
                client.greeted.store(true, Ordering::Relaxed);
                self.release(client);
            }
            Err(backed_out) => {
                hooks.step(|| Step::ManagerSkipped {
                    client: handle,
                    event: ManagerEvent::Arrival,
                });
                if backed_out.woke {
                    hooks.step(|| Step::Woke(handle));
                }
            }
        }
    }

    /// Shows a registered client to the hubs: from here on hub arrivals include it, and an
    /// arrival replay is queued for every hub present.
    fn show(&self, client: &Arc<Client>) {
        let hooks = self.hooks();
        let handle = client.handle;
        let mut hubs: Vec<Arc<Hub>> = {
            let mut registry = lock(&self.shared.registry);
            if !registry.hidden.remove(&handle) {
                // Deregistered meanwhile.
                return;
            }
            hooks.step(|| Step::Shown(handle));
            if registry.shut {
                return;
            }
            registry.hubs.values().cloned().collect()
        };
        if hooks.mutant(Mutant::ReplayMissesHub) {
            hubs.pop();
        }
        for hub in hubs {
            Hub::replay(&hub, self, client.clone());
        }
    }

    /// Registers a client and returns a guard that deregisters it when dropped.
    ///
    /// # Errors
    /// As [`register`](Self::register): [`Error::TooManyClients`] when no client slot is
    /// free, and then nothing changes.
    pub fn register_owned(&self, config: ClientConfig) -> Result<Registration, Error> {
        Ok(Registration {
            pm: self.clone(),
            handle: Some(self.register(config)?),
        })
    }

    /// Deregisters a client: the handle's callback is never called again.
    ///
    /// **Contract.** `deregister` does not return until every call of the client's callback
    /// that has begun has returned; after it returns, no call of that callback begins.
    /// The client may free its context as soon as `deregister` returns `Ok` (ledger C1,
    /// C2, C3 in docs/CONTRACT.md).
    ///
    /// Waiting is refused, and the client left registered and receiving events, when it
    /// could never end:
    /// - [`Error::DeregisterFromOwnCallback`] when called on a thread that is inside a
    ///   callback of this client;
    /// - [`Error::WouldDeadlock`] when called from inside another client's callback and the
    ///   target's callbacks are themselves (transitively) waiting for that one (ledger C6).
    ///
    /// A handle that was never issued gets [`Error::UnknownHandle`]; one already
    /// deregistered (even if its slot now holds a new client) gets [`Error::StaleHandle`].
    /// If two threads deregister the same handle at once, one gets `Ok` after the wait and
    /// the other `StaleHandle`.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use usbpm::{ClientConfig, ClientHandle, ConnectorId, ConnectorState, Error, HubId, NtStatus, PolicyManager};
    ///
    /// let pm = PolicyManager::new();
    /// // The callback tries to deregister its own client: refused, nothing changes.
    /// let me: Arc<Mutex<Option<ClientHandle>>> = Arc::default();
    /// let refused: Arc<Mutex<Option<Error>>> = Arc::default();
    /// let ctx = (me.clone(), refused.clone());
    /// let h = pm.register(ClientConfig::new(ctx, |(me, refused), pm, _n| {
    ///     if let Some(h) = *me.lock().unwrap() {
    ///         *refused.lock().unwrap() = pm.deregister(h).err();
    ///     }
    /// })).unwrap();
    /// *me.lock().unwrap() = Some(h);
    /// let port = pm.hub_arrival(HubId(7), vec![ConnectorState::default()]).unwrap();
    ///
    /// let err = refused.lock().unwrap().clone().unwrap();
    /// assert_eq!(err, Error::DeregisterFromOwnCallback(h));
    /// assert_eq!(err.ntstatus(), NtStatus::POSSIBLE_DEADLOCK);
    /// // Still registered: deregistering from here, outside the callback, works.
    /// assert_eq!(pm.client_count(), 1);
    /// pm.deregister(h).unwrap();
    /// # drop(port);
    /// ```
    pub fn deregister(&self, handle: ClientHandle) -> Result<(), Error> {
        self.hooks().step(|| Step::DeregisterEnter(handle));
        let result = self.deregister_inner(handle, true).map(drop);
        self.hooks().step(|| Step::DeregisterReturn {
            client: handle,
            ok: result.is_ok(),
        });
        result
    }

    /// Deregisters without waiting (a `Registration` dropped or detached): the client's
    /// completion, if it was deregistered here.
    fn detach(&self, handle: ClientHandle) -> Option<Detached> {
        self.hooks().step(|| Step::DetachEnter(handle));
        let client = self.deregister_inner(handle, false).ok();
        self.hooks().step(|| Step::DetachReturn(handle));
        client.map(|client| Detached {
            pm: self.clone(),
            client,
        })
    }

    fn deregister_inner(&self, handle: ClientHandle, wait: bool) -> Result<Arc<Client>, Error> {
        let hooks = self.hooks();
        let holding = waits::held();
        let _edge = if !wait || holding.is_empty() {
            None
        } else if holding.contains(&handle) {
            if !hooks.mutant(Mutant::OwnCallbackWaits) {
                return Err(Error::DeregisterFromOwnCallback(handle));
            }
            None
        } else if hooks.mutant(Mutant::NoCycleCheck) {
            None
        } else {
            Some(self.shared.waits.enter(holding, handle, hooks)?)
        };
        let mut registry = lock(&self.shared.registry);
        let client = registry.clients.remove(handle, hooks)?;
        registry.hidden.remove(&handle);
        hooks.step(|| Step::Retired(client.handle));
        // The lock is released before waiting; the mutant waits with it held.
        if !hooks.mutant(Mutant::WaitUnderRegistryLock) {
            drop(registry);
        }
        self.close_and_wait(&client, wait);
        Ok(client)
    }

    fn close_and_wait(&self, client: &Client, wait: bool) {
        let hooks = self.hooks();
        let closed = client.rundown.close();
        let handle = client.handle;
        hooks.step(|| Step::DeregisterClosed {
            client: handle,
            in_flight: closed.in_flight,
        });
        if !wait || closed.in_flight == 0 || hooks.mutant(Mutant::DeregisterNoWait) {
            return;
        }
        hooks.step(|| Step::DeregisterSleeps(handle));
        client.rundown.wait_for_zero(hooks);
        hooks.step(|| Step::WaiterLeaves(handle));
    }

    /// Calls `client`'s callback unless it is closed. Returns false if it is closed (the
    /// caller drops it from its subscriber list).
    ///
    /// The delivery first takes an in-flight count (or, finding the client closed, backs
    /// out and skips it), then, if a call of the client is active on another thread,
    /// sleeps for the turn holding that count: a deregister made meanwhile waits for the
    /// admitted call, which then runs (see `rundown`, "One call at a time").
    pub(crate) fn invoke(&self, client: &Client, n: &Notification) -> bool {
        let hooks = self.hooks();
        let handle = client.handle;
        let hub = n.hub_id().expect("hubs deliver hub events");
        if hooks.mutant(Mutant::CheckThenCall) {
            if client.rundown.looks_closed() {
                return false;
            }
            self.call(client, n);
            return true;
        }
        let from = match client.rundown.try_acquire(hooks) {
            Ok(from) => from,
            Err(backed_out) => {
                hooks.step(|| Step::Skipped {
                    client: handle,
                    hub,
                    seq: n.seq,
                });
                if backed_out.woke {
                    hooks.step(|| Step::Woke(handle));
                }
                return false;
            }
        };
        hooks.step(|| Step::InFlightAcquire {
            client: handle,
            from,
        });
        if from > 0 && !hooks.mutant(Mutant::CallsOverlap) {
            // Another call of the client is active (or admitted before this one): wait
            // until a release hands over the turn.
            hooks.step(|| Step::TurnWaits {
                client: handle,
                hub,
                seq: n.seq,
            });
            if hooks.mutant(Mutant::TurnMissesDeregister) {
                // The bug: the delivery gives its count back while it sleeps for the
                // turn, and calls uncounted once it has it; a deregister made meanwhile
                // neither waits for the call nor stops it.
                let released = client.rundown.wait_turn_uncounted(hooks);
                self.released(handle, released);
                self.call(client, n);
                client.rundown.pass_turn();
                return true;
            }
            client.rundown.wait_turn();
        }
        if hooks.mutant(Mutant::ReleaseBeforeCallback) {
            self.release(client);
            self.call(client, n);
            return true;
        }
        let panicked = self.call(client, n);
        if panicked && hooks.mutant(Mutant::PanicLeaksCount) {
            return true;
        }
        self.release(client);
        true
    }

    fn release(&self, client: &Client) {
        let released = client.rundown.release(self.hooks());
        self.released(client.handle, released);
    }

    /// The steps of a count given back.
    fn released(&self, handle: ClientHandle, released: crate::rundown::Released) {
        let hooks = self.hooks();
        hooks.step(|| Step::InFlightRelease {
            client: handle,
            from: released.from,
        });
        if released.woke {
            hooks.step(|| Step::Woke(handle));
        }
    }

    /// Runs the callback with the thread marked as inside it; contains its panic.
    /// Returns whether it panicked.
    fn call(&self, client: &Client, n: &Notification) -> bool {
        let hooks = self.hooks();
        let (handle, hub, seq) = (client.handle, n.hub_id(), n.seq);
        let manager_event = match n.event {
            Event::PolicyManagerArrival { .. } => Some(ManagerEvent::Arrival),
            Event::PolicyManagerRemoval => Some(ManagerEvent::Removal),
            _ => None,
        };
        hooks.step(|| match (hub, manager_event) {
            (Some(hub), _) => Step::CallbackBegin {
                client: handle,
                hub,
                seq,
            },
            (None, event) => Step::ManagerCallBegin {
                client: handle,
                event: event.expect("an event without a hub is the Policy Manager's"),
            },
        });
        let inside = InsideCallback::enter(handle, client.granted);
        let outcome = catch_unwind(AssertUnwindSafe(|| (client.callback)(self, handle, n)));
        if outcome.is_err() && hooks.mutant(Mutant::PanicLeavesCallbackMark) {
            std::mem::forget(inside);
        } else {
            drop(inside);
        }
        let panicked = match outcome {
            Ok(()) => false,
            Err(payload) if hooks.contain(&*payload) => true,
            // Only under the gate: a checker's own report (deadlock, race) goes on up.
            Err(payload) => std::panic::resume_unwind(payload),
        };
        hooks.step(|| match (hub, manager_event) {
            (Some(hub), _) => Step::CallbackEnd {
                client: handle,
                hub,
                seq,
                panicked,
            },
            (None, event) => Step::ManagerCallEnd {
                client: handle,
                event: event.expect("an event without a hub is the Policy Manager's"),
                panicked,
            },
        });
        if panicked {
            self.shared.panicked.fetch_add(1, Ordering::Relaxed);
        }
        panicked
    }

    /// How many callback calls, and contexts' drops, have panicked (each was contained;
    /// see the crate docs; ledger C16).
    pub fn panicked_callbacks(&self) -> u64 {
        self.shared.panicked.load(Ordering::Relaxed)
    }

    /// How many clients are registered.
    pub fn client_count(&self) -> usize {
        lock(&self.shared.registry).clients.values().count()
    }

    /// A hub arrives with connectors in the given states. Every registered client
    /// receives its [`HubArrival`](crate::Event::HubArrival). Returns the port through
    /// which the hardware reports the hub's changes and its removal.
    ///
    /// A hub id may arrive again after its removal; the new arrival reaches each client
    /// after everything of the previous presence.
    ///
    /// # Errors
    /// - [`Error::TooManyConnectors`] (`STATUS_INVALID_PARAMETER`) with more than 256
    ///   connectors (connector ids are 8 bits); 256 are accepted.
    /// - [`Error::HubAlreadyPresent`] (`STATUS_OBJECT_NAME_COLLISION`) when a hub with this
    ///   id is present.
    /// - [`Error::HubQueueFull`] (`STATUS_INSUFFICIENT_RESOURCES`) inside a callback, when
    ///   the hub arrives again and its queue still holds [`Limits::queue_capacity`] items
    ///   of its previous presence; [`Error::CallbackReportsSpent`] inside a callback whose
    ///   thread's callbacks spent [`Limits::callback_reports`].
    ///
    /// A refused arrival changes nothing: the hub is not added and no client hears of it.
    pub fn hub_arrival(
        &self,
        hub: HubId,
        connectors: Vec<ConnectorState>,
    ) -> Result<HubPort, Error> {
        if connectors.len() > MAX_CONNECTORS {
            return Err(Error::TooManyConnectors {
                hub,
                connectors: connectors.len(),
            });
        }
        let info = HubInfo {
            hub,
            // Every connector gets an id: there are at most MAX_CONNECTORS (checked above).
            connectors: connectors
                .into_iter()
                .zip(0..=u8::MAX)
                .map(|(state, i)| ConnectorInfo {
                    connector: ConnectorId(i),
                    attach_count: u32::from(state.attached),
                    state,
                    assigned_power: None,
                })
                .collect(),
        };
        let hub = {
            let mut registry = lock(&self.shared.registry);
            if registry.shut {
                return Err(Error::PolicyManagerRemoved);
            }
            // Clients whose Policy Manager arrival is still to come hear of this hub
            // through their arrival replay instead.
            let clients: Vec<Arc<Client>> = registry
                .clients
                .values()
                .filter(|c| !registry.hidden.contains(&c.handle))
                .cloned()
                .collect();
            match registry.hubs.get(&hub) {
                // A hub keeps its queue across removal and re-arrival (see Hub::rearrive).
                Some(h) => {
                    h.rearrive(info, clients, self)?;
                    h.clone()
                }
                None => {
                    let h = Arc::new(Hub::new(info, clients, self.hooks()));
                    registry.hubs.insert(hub, h.clone());
                    h
                }
            }
        };
        Hub::kick(&hub, self);
        Ok(HubPort {
            pm: self.clone(),
            hub: Some(hub),
        })
    }

    /// Checks a call of `client` that needs `needs` about `hub`, and finds the hub. In
    /// this order: the Policy Manager is not shut down, the client handle is live, the
    /// client was granted `needs`, and the hub id has arrived (the hub checks the
    /// presence).
    /// The `access-checked-late` mutant skips the access check here (`assign_power_level`
    /// makes it after its request is passed on).
    fn authorize(
        &self,
        client: ClientHandle,
        needs: Access,
        hub: HubId,
    ) -> Result<Arc<Hub>, Error> {
        self.authorize_in(&lock(&self.shared.registry), client, needs, hub)
    }

    /// [`authorize`](Self::authorize) under a registry lock the caller holds, so that
    /// what it then does is ordered before any later deregister or shutdown.
    fn authorize_in(
        &self,
        registry: &Registry<Arc<Client>, Arc<Hub>>,
        client: ClientHandle,
        needs: Access,
        hub: HubId,
    ) -> Result<Arc<Hub>, Error> {
        let hooks = self.hooks();
        if registry.shut {
            return Err(Error::PolicyManagerRemoved);
        }
        // A callback's own calls are its client's even while a deregister of it waits for
        // that callback (the handle is retired first).
        let granted = match registry.clients.get(client, hooks) {
            Ok(c) => c.granted,
            Err(e) => waits::own_grant(client).ok_or(e)?,
        };
        if !granted.allows(needs) && !hooks.mutant(Mutant::AccessCheckedLate) {
            return Err(Error::AccessDenied {
                client,
                needs,
                granted,
            });
        }
        registry
            .hubs
            .get(&hub)
            .cloned()
            .ok_or(Error::UnknownHub(hub))
    }

    /// The Policy Manager's own view of a present hub, for the system side (diagnostics,
    /// the hardware's owner): not a client call, so it takes no client handle and checks
    /// no access. A hub whose removal is queued is no longer present here.
    ///
    /// # Errors
    /// [`Error::UnknownHub`] when no hub with this id is present.
    pub fn hub_snapshot(&self, hub: HubId) -> Result<HubInfo, Error> {
        let h = lock(&self.shared.registry)
            .hubs
            .get(&hub)
            .cloned()
            .ok_or(Error::UnknownHub(hub))?;
        h.present()
    }

    /// The handle of a present hub's current presence, for the system side like
    /// [`hub_snapshot`](Self::hub_snapshot) (clients get handles from their events).
    ///
    /// # Errors
    /// [`Error::UnknownHub`] when no hub with this id is present.
    pub fn hub_handle(&self, hub: HubId) -> Result<HubHandle, Error> {
        let h = lock(&self.shared.registry)
            .hubs
            .get(&hub)
            .cloned()
            .ok_or(Error::UnknownHub(hub))?;
        h.present()?;
        Ok(h.handle())
    }

    /// A hub's properties and its connectors' states (`UsbPm_RetrieveHubProperties`).
    ///
    /// The handle is valid from the hub's arrival until its removal has been delivered to
    /// every client: inside a `HubRemoval` callback the removed hub can still be
    /// retrieved, as it was when it left (ledger C15).
    ///
    /// # Errors
    /// In the order checked: [`Error::PolicyManagerRemoved`] after shutdown;
    /// [`Error::UnknownHandle`] or [`Error::StaleHandle`] for a client handle that is not
    /// live (inside the client's own callback the handle stays usable while a deregister
    /// of it waits for that callback); [`Error::AccessDenied`] without [`Access::QUERY`]; [`Error::UnknownHub`]
    /// for a hub id that never arrived; [`Error::StaleHubHandle`] for a presence whose
    /// removal has been delivered. A refused call changes nothing.
    pub fn hub_properties(&self, client: ClientHandle, hub: HubHandle) -> Result<HubInfo, Error> {
        self.authorize(client, Access::QUERY, hub.id)?
            .view(hub, self.hooks())
    }

    /// The handles of a hub's connectors (`UsbPm_RetrieveHubConnectorHandles`), valid
    /// while the hub handle is. Errors as [`hub_properties`](Self::hub_properties).
    pub fn hub_connectors(
        &self,
        client: ClientHandle,
        hub: HubHandle,
    ) -> Result<Vec<ConnectorHandle>, Error> {
        let info = self.hub_properties(client, hub)?;
        Ok(info
            .connectors
            .iter()
            .map(|c| ConnectorHandle {
                hub,
                connector: c.connector,
            })
            .collect())
    }

    /// A connector's static properties (`UsbPm_RetrieveConnectorProperties`). Errors as
    /// [`hub_properties`](Self::hub_properties), and [`Error::UnknownConnector`] for an
    /// index the hub does not have.
    pub fn connector_properties(
        &self,
        client: ClientHandle,
        connector: ConnectorHandle,
    ) -> Result<ConnectorProperties, Error> {
        self.connector_state(client, connector)?;
        Ok(ConnectorProperties {
            hub: connector.hub,
            connector: connector.connector,
        })
    }

    /// A connector's current state (`UsbPm_RetrieveConnectorState`): the last reported
    /// hardware state, the power level in force and the attach count. Errors as
    /// [`connector_properties`](Self::connector_properties).
    pub fn connector_state(
        &self,
        client: ClientHandle,
        connector: ConnectorHandle,
    ) -> Result<ConnectorInfo, Error> {
        let info = self.hub_properties(client, connector.hub)?;
        info.connectors
            .get(usize::from(connector.connector.0))
            .cloned()
            .ok_or(Error::UnknownConnector(
                connector.hub.id,
                connector.connector,
            ))
    }

    /// Requests a power level for a connector (`UsbPm_AssignConnectorPowerLevel`).
    ///
    /// **Asynchronous**, as on Windows: `Ok` means the request was accepted and passed to
    /// the hardware ([`HubPort::power_requests`]), not that it took effect. If the
    /// hardware accepts it while the same partner is attached, every client hears a
    /// [`ConnectorStateChange`](crate::Event::ConnectorStateChange) and the connector's
    /// state shows the level; if the partner rejects it, or detached meanwhile, nothing
    /// is heard. The level lasts while that partner stays attached. May be called from
    /// inside a callback.
    ///
    /// # Errors
    /// As [`connector_state`](Self::connector_state), with [`Access::ASSIGN_POWER`]
    /// needed instead of query access; [`Error::StaleHubHandle`] also for a hub whose
    /// removal is queued; and [`Error::PowerRequestRefused`]
    /// (`STATUS_INVALID_DEVICE_STATE`) unless the connector is a sink with a partner
    /// attached. A refused request changes nothing: nothing reaches the hardware, and no
    /// request reaches it once the client's deregister or the shutdown returned (ledger
    /// C13, C14).
    pub fn assign_power_level(
        &self,
        client: ClientHandle,
        connector: ConnectorHandle,
        level: PowerLevel,
    ) -> Result<(), Error> {
        let hooks = self.hooks();
        {
            // The request is queued under the registry lock (registry before hub queue,
            // as everywhere): a deregister or shutdown that returned before this call
            // took the lock refuses it, and one that comes later sees it queued.
            let registry = lock(&self.shared.registry);
            let hub =
                self.authorize_in(&registry, client, Access::ASSIGN_POWER, connector.hub.id)?;
            if hooks.mutant(Mutant::PowerRequestUnlocked) {
                // The bug: the check and the queueing are two steps; a deregister or
                // shutdown may return between them, and the request still goes out.
                drop(registry);
            }
            hub.request_power(client, connector, level, hooks)?;
        }
        if hooks.mutant(Mutant::AccessCheckedLate) {
            // The bug: the access is checked after the request went to the hardware.
            let registry = lock(&self.shared.registry);
            let granted = registry.clients.get(client, hooks)?.granted;
            if !granted.allows(Access::ASSIGN_POWER) {
                return Err(Error::AccessDenied {
                    client,
                    needs: Access::ASSIGN_POWER,
                    granted,
                });
            }
        }
        Ok(())
    }

    /// Shuts the Policy Manager down (the Policy Manager leaves): every client that heard
    /// its arrival hears [`PolicyManagerRemoval`](crate::Event::PolicyManagerRemoval) as
    /// its last event, after every other call of its callback returned. Returns once
    /// every removal has been delivered (ledger C12).
    ///
    /// Afterwards every call but `deregister` is refused with
    /// [`Error::PolicyManagerRemoved`]; hub ports still accept reports, which reach no
    /// client. Clients stay registered: a driver deregisters as usual (with the usual
    /// contract) and frees its context.
    ///
    /// # Errors
    /// [`Error::ShutdownInsideCallback`] (`STATUS_POSSIBLE_DEADLOCK`) from inside a
    /// callback (it would wait for that callback), and [`Error::PolicyManagerRemoved`]
    /// when already shut down; either way nothing changes.
    pub fn shutdown(&self) -> Result<(), Error> {
        let hooks = self.hooks();
        if waits::inside_callback() {
            return Err(Error::ShutdownInsideCallback);
        }
        let clients: Vec<Arc<Client>> = {
            let mut registry = lock(&self.shared.registry);
            if registry.shut {
                return Err(Error::PolicyManagerRemoved);
            }
            registry.shut = true;
            registry.clients.values().cloned().collect()
        };
        hooks.step(|| Step::ShutdownEnter);
        let removal = Notification {
            hub: None,
            seq: 0,
            event: Event::PolicyManagerRemoval,
        };
        for client in clients {
            let handle = client.handle;
            if !hooks.mutant(Mutant::RemovalNotLast) {
                // No hub's call begins after this; wait for those admitted before it.
                let closed = client.rundown.close();
                if closed.in_flight > 0 {
                    hooks.step(|| Step::ShutdownSleeps(handle));
                    client.rundown.wait_for_zero(hooks);
                    hooks.step(|| Step::WaiterLeaves(handle));
                }
            }
            let acquired = {
                let registry = lock(&self.shared.registry);
                // Deregistered meanwhile: its deregister waited, and no call may follow.
                let registered = registry
                    .clients
                    .get(handle, hooks)
                    .is_ok_and(|c| Arc::ptr_eq(c, &client));
                (registered && client.greeted.load(Ordering::Relaxed))
                    .then(|| client.rundown.acquire_closed())
            };
            match acquired {
                Some(from) => {
                    hooks.step(|| Step::InFlightAcquire {
                        client: handle,
                        from,
                    });
                    self.call(&client, &removal);
                    self.release(&client);
                }
                None => hooks.step(|| Step::ManagerSkipped {
                    client: handle,
                    event: ManagerEvent::Removal,
                }),
            }
        }
        hub::settle_obligations(self);
        hooks.step(|| Step::ShutdownReturn);
        Ok(())
    }
}

/// A client's power request, as the hardware receives it ([`HubPort::power_requests`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PowerRequest {
    /// The client that asked.
    pub client: ClientHandle,
    /// The connector.
    pub connector: ConnectorHandle,
    /// The level asked for.
    pub level: PowerLevel,
    /// The connector's attach count when it was asked: the partner it was asked of.
    pub attach_count: u32,
}

/// The hardware side of one present hub: report its connector changes and its removal.
///
/// Changes reported through one port are delivered to each client in the order they were
/// reported. Dropping the port removes the hub.
pub struct HubPort {
    pm: PolicyManager,
    hub: Option<Arc<Hub>>,
}

impl fmt::Debug for HubPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubPort").field("hub", &self.id()).finish()
    }
}

impl HubPort {
    fn hub(&self) -> &Arc<Hub> {
        self.hub.as_ref().expect("present until removal")
    }

    /// Which hub this port reports for.
    pub fn id(&self) -> HubId {
        self.hub().id()
    }

    /// The handle of the hub's presence this port reports for, as clients see it.
    pub fn handle(&self) -> HubHandle {
        self.hub().handle()
    }

    /// The power requests clients made for this hub's connectors since the last call, in
    /// the order they were accepted. Answer each with [`answer`](Self::answer).
    pub fn power_requests(&self) -> Vec<PowerRequest> {
        self.hub().take_requests()
    }

    /// The hardware's (the partner's) answer to a power request. An accepted request
    /// whose partner is still attached (the same attach count) sets the connector's
    /// power level and is reported to every client as a connector state change, through
    /// the same path as [`connector_changed`](Self::connector_changed) (from inside a
    /// callback too). A rejected request, or one whose partner left, changes nothing and
    /// is reported to nobody. Returns whether a change was reported.
    ///
    /// # Errors
    /// [`Error::HubQueueFull`] from inside a callback, as `connector_changed`; the answer
    /// may be given again.
    pub fn answer(&self, request: PowerRequest, accepted: bool) -> Result<bool, Error> {
        Hub::answer(self.hub(), &self.pm, request, accepted)
    }

    /// A connector's state changed. Delivered to every client that has seen the hub's
    /// arrival, after all earlier changes of this hub. Called outside callbacks, this
    /// returns once the change is delivered: by this thread, or by another thread that is
    /// already delivering this hub's events while this one sleeps. Called from inside a
    /// callback, it only queues the change, which is delivered before the thread's
    /// outermost call returns.
    pub fn connector_changed(
        &self,
        connector: ConnectorId,
        state: ConnectorState,
    ) -> Result<(), Error> {
        Hub::change(self.hub(), &self.pm, connector, state)
    }

    /// The hub is removed: every client that saw its arrival receives its removal after
    /// all its earlier events, and nothing about it afterwards.
    pub fn remove(mut self) {
        self.remove_now();
    }

    fn remove_now(&mut self) {
        // The hub stays in the registry, absent, so that a later arrival of the same id
        // queues behind this removal.
        if let Some(hub) = self.hub.take() {
            Hub::remove(&hub, &self.pm);
        }
    }
}

impl Drop for HubPort {
    fn drop(&mut self) {
        self.remove_now();
    }
}

/// An owning registration: dropping it deregisters the client.
///
/// Dropped where `deregister` may wait, the drop waits like `deregister`. Dropped where
/// waiting could never end (inside the client's own callback, or where it would close a
/// cycle), the drop still deregisters but does not wait: no event reported after the drop
/// returns reaches the client. Calls of the callback admitted before it (running, or on
/// another thread about to enter the callback) finish on their own threads, so one may
/// still begin after the drop returns: free nothing those calls use until they are done.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
/// use usbpm::{ClientConfig, HubId, PolicyManager};
///
/// let pm = PolicyManager::new();
/// let calls = Arc::new(AtomicUsize::new(0));
/// let reg = pm.register_owned(ClientConfig::new(calls.clone(), |c, _, _| {
///     c.fetch_add(1, Ordering::SeqCst);
/// })).unwrap();
/// let port = pm.hub_arrival(HubId(1), vec![Default::default()]).unwrap();
/// assert_eq!(calls.load(Ordering::SeqCst), 2); // the Policy Manager's arrival, the hub's
/// drop(reg); // deregisters, waiting for running callbacks
/// drop(port); // the removal reaches nobody
/// assert_eq!(calls.load(Ordering::SeqCst), 2);
/// assert_eq!(pm.client_count(), 0);
/// ```
pub struct Registration {
    pm: PolicyManager,
    handle: Option<ClientHandle>,
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration")
            .field("handle", &self.handle)
            .finish()
    }
}

impl Registration {
    /// The client's handle.
    pub fn handle(&self) -> ClientHandle {
        self.handle.expect("present until deregistered")
    }

    /// Deregisters now, with [`PolicyManager::deregister`]'s contract and errors. On an
    /// error the registration is handed back, still registered.
    pub fn deregister(mut self) -> Result<(), (Error, Registration)> {
        let handle = self.handle();
        match self.pm.deregister(handle) {
            Ok(()) => {
                self.handle = None;
                Ok(())
            }
            Err(e) => Err((e, self)),
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let Some(handle) = self.handle.take() else {
            return;
        };
        let refused = self.pm.deregister(handle);
        if self.pm.hooks().mutant(Mutant::GuardDropIgnoresRefusal) {
            return;
        }
        if let Err(Error::DeregisterFromOwnCallback(_) | Error::WouldDeadlock { .. }) = refused {
            self.pm.detach(handle);
        }
    }
}

impl Registration {
    /// Deregisters now without waiting, from anywhere (inside the client's own callback
    /// too), and returns the client's [`Detached`] completion: no event reported after
    /// this returns reaches the client, and [`Detached::wait`] returns once the last call
    /// of the callback admitted before it has returned. Use it where `deregister` is
    /// refused because waiting could never end, and free what the callback uses only
    /// after the completion.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use usbpm::{ClientConfig, Detached, HubId, PolicyManager, Registration};
    ///
    /// let pm = PolicyManager::new();
    /// // The callback detaches its own client and leaves the completion to the driver.
    /// let guard: Arc<Mutex<Option<Registration>>> = Arc::default();
    /// let done: Arc<Mutex<Option<Detached>>> = Arc::default();
    /// let ctx = (guard.clone(), done.clone());
    /// let reg = pm.register_owned(ClientConfig::new(ctx, |(guard, done), _pm, _n| {
    ///     if let Some(reg) = guard.lock().unwrap().take() {
    ///         *done.lock().unwrap() = Some(reg.detach());
    ///     }
    /// })).unwrap();
    /// *guard.lock().unwrap() = Some(reg);
    /// let port = pm.hub_arrival(HubId(1), vec![Default::default()]).unwrap();
    /// // The arrival's call detached the client; its completion is waited for outside it.
    /// let detached = done.lock().unwrap().take().unwrap();
    /// detached.wait().unwrap();
    /// assert_eq!(pm.client_count(), 0);
    /// # drop(port);
    /// ```
    pub fn detach(mut self) -> Detached {
        let handle = self.handle.take().expect("present until deregistered");
        self.pm
            .detach(handle)
            .expect("a Registration's handle is live until it deregisters")
    }
}

/// The completion of a client deregistered without waiting ([`Registration::detach`]):
/// [`wait`](Self::wait) returns once every call of its callback admitted before the
/// detach has returned, and no call begins after that. Holding it keeps the client's
/// context alive; the context is dropped after the completion and the library's last
/// reference go.
pub struct Detached {
    pm: PolicyManager,
    client: Arc<Client>,
}

impl fmt::Debug for Detached {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Detached")
            .field("handle", &self.client.handle)
            .finish()
    }
}

impl Detached {
    /// The detached client's (now stale) handle.
    pub fn handle(&self) -> ClientHandle {
        self.client.handle
    }

    /// Whether the last admitted call has returned (no call of the client is active and
    /// none can begin).
    pub fn is_done(&self) -> bool {
        self.client.rundown.at_zero()
    }

    /// Blocks until the last admitted call of the client's callback has returned.
    ///
    /// # Errors
    /// Waiting is refused, and the completion handed back, where it could never end:
    /// [`Error::DeregisterFromOwnCallback`] inside a callback of this client, and
    /// [`Error::WouldDeadlock`] inside another client's callback when this client's
    /// callbacks (transitively) wait for that one.
    pub fn wait(self) -> Result<(), (Error, Detached)> {
        let pm = self.pm.clone();
        let hooks = pm.hooks();
        let handle = self.client.handle;
        let holding = waits::held();
        if holding.contains(&handle) {
            return Err((Error::DeregisterFromOwnCallback(handle), self));
        }
        let edge = if holding.is_empty() {
            None
        } else {
            match pm.shared.waits.enter(holding, handle, hooks) {
                Ok(edge) => Some(edge),
                Err(e) => return Err((e, self)),
            }
        };
        hooks.step(|| Step::DetachWaits(handle));
        if hooks.mutant(Mutant::DetachNeverDone) {
            self.client.rundown.wait_unflagged();
        } else if !hooks.mutant(Mutant::DetachDoneEarly) {
            self.client.rundown.wait_for_zero(hooks);
        }
        hooks.step(|| Step::WaiterLeaves(handle));
        drop(edge);
        hooks.step(|| Step::DetachDone(handle));
        Ok(())
    }
}

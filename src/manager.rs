//! The Policy Manager: registration, delivery and deregistration.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::checking::{Hooks, Mutant, Step};
use crate::error::Error;
use crate::event::{
    ConnectorId, ConnectorInfo, ConnectorState, HubId, HubInfo, Notification, PowerLevel,
    MAX_CONNECTORS,
};
use crate::handle::ClientHandle;
use crate::hub::Hub;
use crate::registry::Registry;
use crate::rundown::Rundown;
use crate::sync::{lock, Arc, AtomicU64, Mutex, Ordering};
use crate::waits::{self, InsideCallback, WaitGraph};

type Callback = Box<dyn Fn(&PolicyManager, &Notification) + Send + Sync>;

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
/// The callback may call back into the Policy Manager it is given: query hubs and
/// connectors, assign power levels, report connector changes, register clients, and
/// deregister *other* clients.
pub struct ClientConfig {
    callback: Callback,
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
    /// may do so as soon as `deregister` returns `Ok`.
    pub fn new<C, F>(context: C, callback: F) -> Self
    where
        C: Send + Sync + 'static,
        F: Fn(&C, &PolicyManager, &Notification) + Send + Sync + 'static,
    {
        ClientConfig {
            callback: Box::new(move |pm, n| callback(&context, pm, n)),
        }
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig").finish_non_exhaustive()
    }
}

/// A registered client as the Policy Manager holds it.
pub(crate) struct Client {
    handle: ClientHandle,
    rundown: Rundown,
    callback: Callback,
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
        let callback: Callback = std::mem::replace(&mut self.callback, Box::new(|_, _| {}));
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| drop(callback))) {
            if !self.hooks.contain(&*payload) {
                std::panic::resume_unwind(payload);
            }
            self.panicked.fetch_add(1, Ordering::Relaxed);
        }
    }
}

struct Shared {
    /// Clients and hubs: the registry lock (see [`Registry`]).
    registry: Mutex<Registry<Arc<Client>, Arc<Hub>>>,
    waits: WaitGraph,
    /// Panics contained: out of callbacks and out of contexts' drops.
    panicked: Arc<AtomicU64>,
    hooks: Hooks,
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
        // `Hooks` is a unit struct in production builds and a real one under `checking`.
        #[allow(clippy::default_constructed_unit_structs)]
        let hooks = Hooks::default();
        Self::with_hooks(hooks)
    }

    /// A Policy Manager with one seeded bug switched on (`mutant`) and a probe that hears
    /// every protocol step. Only for the verification gate.
    #[cfg(feature = "checking")]
    pub fn checking(
        mutant: Option<crate::checking::Mutant>,
        probe: Option<std::sync::Arc<dyn crate::checking::Probe>>,
    ) -> Self {
        Self::with_hooks(Hooks { mutant, probe })
    }

    fn with_hooks(hooks: Hooks) -> Self {
        PolicyManager {
            shared: Arc::new(Shared {
                registry: Mutex::new(Registry::new(next_instance())),
                waits: WaitGraph::new(),
                panicked: Arc::new(AtomicU64::new(0)),
                hooks,
            }),
        }
    }

    pub(crate) fn hooks(&self) -> &Hooks {
        &self.shared.hooks
    }

    /// Registers a client and returns its handle.
    ///
    /// For every hub present, the client first receives a [`HubArrival`](crate::Event::HubArrival)
    /// with the hub's current state, then every later event of that hub, in order. Those
    /// arrivals may be delivered before `register` returns, on this thread or another.
    ///
    /// # Errors
    /// [`Error::TooManyClients`] (`STATUS_INSUFFICIENT_RESOURCES`) when no client slot is
    /// free. A Policy Manager has 65,536 slots (handles have 16 bits of slot); a slot is
    /// in use while it holds a registered client, and exhausted (out of use for good)
    /// once 65,535 registrations have gone through it (a deregistered client's slot is
    /// reused, and after that many its generation would wrap). So `register` is refused
    /// when the registered clients plus the exhausted slots number 65,536; with no slot
    /// exhausted, that is 65,536 clients registered at once. A refused `register` changes
    /// nothing: no slot is consumed and no hub's arrival is queued. `config` is dropped
    /// (with its context) before `register` returns, outside the Policy Manager's locks.
    pub fn register(&self, config: ClientConfig) -> Result<ClientHandle, Error> {
        // Held here, not moved into the closure: if the registry refuses, the context is
        // dropped after the registry lock is released (its drop may call back into us).
        let mut callback = Some(config.callback);
        let (client, mut hubs) = {
            let mut registry = lock(&self.shared.registry);
            let mut client = None;
            registry.clients.insert_with(|handle| {
                let c = Arc::new(Client {
                    handle,
                    rundown: Rundown::new(),
                    callback: callback.take().expect("insert_with calls its closure once"),
                    hooks: self.shared.hooks.clone(),
                    panicked: self.shared.panicked.clone(),
                });
                client = Some(c.clone());
                c
            })?;
            let hubs: Vec<Arc<Hub>> = registry.hubs.values().cloned().collect();
            (client.expect("insert_with calls its closure"), hubs)
        };
        let handle = client.handle;
        self.hooks().step(|| Step::Registered(handle));
        if self.hooks().mutant(Mutant::ReplayMissesHub) {
            hubs.pop();
        }
        for hub in hubs {
            Hub::replay(&hub, self, client.clone());
        }
        Ok(handle)
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
    /// The client may free its context as soon as `deregister` returns `Ok`.
    ///
    /// Waiting is refused, and the client left registered and receiving events, when it
    /// could never end:
    /// - [`Error::DeregisterFromOwnCallback`] when called on a thread that is inside a
    ///   callback of this client;
    /// - [`Error::WouldDeadlock`] when called from inside another client's callback and the
    ///   target's callbacks are themselves (transitively) waiting for that one.
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
    }

    /// Calls `client`'s callback unless it is closed. Returns false if it is closed (the
    /// caller drops it from its subscriber list).
    ///
    /// The delivery first takes the client's turn (sleeping while a call of the client is
    /// active on another thread), then its in-flight count: a delivery sleeping for its
    /// turn holds no count, so no deregister waits for it, and it skips the client if a
    /// deregister closed it meanwhile.
    pub(crate) fn invoke(&self, client: &Client, n: &Notification) -> bool {
        let hooks = self.hooks();
        let handle = client.handle;
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
                    hub: n.hub,
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
                hub: n.hub,
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
        let (handle, hub, seq) = (client.handle, n.hub, n.seq);
        hooks.step(|| Step::CallbackBegin {
            client: handle,
            hub,
            seq,
        });
        let inside = InsideCallback::enter(handle);
        let outcome = catch_unwind(AssertUnwindSafe(|| (client.callback)(self, n)));
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
        hooks.step(|| Step::CallbackEnd {
            client: handle,
            hub,
            seq,
            panicked,
        });
        if panicked {
            self.shared.panicked.fetch_add(1, Ordering::Relaxed);
        }
        panicked
    }

    /// How many callback calls, and contexts' drops, have panicked (each was contained;
    /// see the crate docs).
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
                    state,
                    assigned_power: None,
                })
                .collect(),
        };
        let hub = {
            let mut registry = lock(&self.shared.registry);
            let clients: Vec<Arc<Client>> = registry.clients.values().cloned().collect();
            match registry.hubs.get(&hub) {
                // A hub keeps its queue across removal and re-arrival (see Hub::rearrive).
                Some(h) => {
                    if !h.rearrive(info, clients, self.hooks()) {
                        return Err(Error::HubAlreadyPresent(hub));
                    }
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

    fn hub(&self, hub: HubId) -> Result<Arc<Hub>, Error> {
        lock(&self.shared.registry)
            .hubs
            .get(&hub)
            .cloned()
            .ok_or(Error::UnknownHub(hub))
    }

    /// The current state of a present hub.
    pub fn query_hub(&self, hub: HubId) -> Result<HubInfo, Error> {
        self.hub(hub)?.info()
    }

    /// The current state of one connector of a present hub.
    pub fn query_connector(
        &self,
        hub: HubId,
        connector: ConnectorId,
    ) -> Result<ConnectorInfo, Error> {
        self.hub(hub)?.connector(connector)
    }

    /// Assigns a power level to a connector (shown by later queries and arrivals).
    pub fn assign_power_level(
        &self,
        hub: HubId,
        connector: ConnectorId,
        level: PowerLevel,
    ) -> Result<(), Error> {
        self.hub(hub)?.assign_power_level(connector, level)
    }
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
/// assert_eq!(calls.load(Ordering::SeqCst), 1); // the arrival
/// drop(reg); // deregisters, waiting for running callbacks
/// drop(port); // the removal reaches nobody
/// assert_eq!(calls.load(Ordering::SeqCst), 1);
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
        drop(edge);
        hooks.step(|| Step::DetachDone(handle));
        Ok(())
    }
}

//! A hub's event queue: per-hub order, no lock held across callbacks, and bounded work
//! per call.
//!
//! Every hardware change of a hub, and every arrival replay for a client that registers
//! while the hub is present, is appended to the hub's queue under the hub's lock, which
//! also assigns the change its sequence number, folds it into the hub's state and gives
//! the item a *ticket* (1, 2, 3, ... in append order). `done` is the highest ticket
//! delivered: every item with a ticket up to it has been delivered (or dropped).
//!
//! **Deliver up to your own item, then hand off.** One thread at a time drains the queue
//! (the `draining` flag), and it drains only up to a target: the ticket of the item its
//! own call appended. A caller outside any callback that appends to a queue somebody else
//! is draining sleeps on the hub's condition variable; a drainer that reaches its target
//! stops and wakes the sleepers, and the first whose item is still queued drains next.
//! So a call delivers at most the items queued ahead of its own, and returns once its
//! own item is delivered.
//!
//! **Appends made inside a callback never sleep:** a callback's thread may be another
//! hub's drainer, and two drainers sleeping on each other's hubs would deadlock. Such an
//! append records an *obligation* (hub and ticket) on its thread, and the thread's
//! outermost library call settles it (drains or sleeps until the item is delivered)
//! before it returns: work the call caused, through its own callbacks.
//!
//! The drainer takes the subscriber list out of the queue while it drains and puts it
//! back when it stops, so delivering an event needs no lock and no copy of the list. The
//! "target reached" test and clearing `draining` happen under the same lock as
//! appending, so every queued item has an owner who will see it delivered: its caller
//! (draining or sleeping) or the thread that owes it.
//!
//! A callback may call back into the Policy Manager: appending to this hub's queue from
//! inside its own delivery only queues the item and records the obligation.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::mem;

use crate::checking::{Appended, Hooks, Mutant, Settle, Step};
use crate::error::Error;
use crate::event::{
    ConnectorHandle, ConnectorId, ConnectorState, Event, HubHandle, HubId, HubInfo, Notification,
    PowerLevel, PowerRole,
};
use crate::handle::ClientHandle;
use crate::manager::{Client, PolicyManager, PowerRequest};
use crate::sync::{lock, thread_local, Arc, Condvar, Mutex, MutexGuard};
use crate::waits;

enum Pending {
    /// The hub's own arrival, delivered to the clients registered when it arrived.
    Arrival {
        clients: Vec<Arc<Client>>,
        notification: Notification,
    },
    /// A connector change.
    Change(Notification),
    /// The hub's removal: delivered, then the hub has no subscribers.
    Removal(Notification),
    /// Arrival replay for a client that registered while the hub was present.
    Replay {
        client: Arc<Client>,
        notification: Notification,
    },
}

impl Pending {
    fn seq(&self) -> u64 {
        match self {
            Pending::Arrival { notification, .. } | Pending::Replay { notification, .. } => {
                notification.seq
            }
            Pending::Change(n) | Pending::Removal(n) => n.seq,
        }
    }
}

/// What the probe is told a submission appended (only built when a probe listens).
fn appended(item: Option<&Pending>) -> Appended {
    match item {
        None | Some(Pending::Arrival { .. }) => Appended::Nothing,
        Some(Pending::Change(n)) => Appended::Change { seq: n.seq },
        Some(Pending::Removal(n)) => Appended::Removal { seq: n.seq },
        Some(Pending::Replay {
            client,
            notification,
        }) => Appended::Replay {
            client: client.handle(),
            seq: notification.seq,
        },
    }
}

/// How many items a hub's queue may hold, by default, before reports made inside callbacks
/// (connector changes, accepted power answers, a hub's re-arrival) are refused
/// ([`Error::HubQueueFull`]). Every other item has an owner that waits for it: a caller
/// outside callbacks holds at most one queued item at a time, and a hub's removal comes
/// once per presence. So a queue never holds more than the capacity + 1 + the number of
/// threads in a call outside callbacks (ledger C18).
pub const DEFAULT_QUEUE_CAPACITY: usize = 64;

/// How many reports a thread's callbacks may make, by default, while its outermost call
/// owes items they caused ([`Error::CallbackReportsSpent`], ledger C19).
pub const DEFAULT_CALLBACK_REPORTS: usize = 64;

/// Refuses a report (a change, an accepted answer, a re-arrival) made inside a callback
/// when `q` already holds the queue capacity's items, or when this thread's callbacks have
/// already made the budget's reports that its outermost call has not settled: a callback's
/// thread delivers nothing until the callback returns, so nothing else would bound what
/// callbacks queue, and a callback that reports on every event it receives would keep its
/// thread's outermost call delivering for ever. The caller counts an accepted report with
/// [`count_report`] once nothing else can refuse it. (The `queue-cap-ignored` and
/// `report-budget-ignored` mutants never refuse.)
fn refuse_report(q: &Queue, id: HubId, pm: &PolicyManager) -> Result<(), Error> {
    if !waits::inside_callback() {
        return Ok(());
    }
    let capacity = pm.limits().queue_capacity.get();
    if q.pending.len() >= capacity && !pm.hooks().mutant(Mutant::QueueCapIgnored) {
        return Err(Error::HubQueueFull { hub: id, capacity });
    }
    match budget_spent(pm, Mutant::ReportBudgetIgnored) {
        Some(budget) => Err(Error::CallbackReportsSpent { hub: id, budget }),
        None => Ok(()),
    }
}

/// The budget of reports, if this thread's callbacks have spent it (see [`refuse_report`];
/// `ignored_by` is the mutant that never refuses).
fn budget_spent(pm: &PolicyManager, ignored_by: Mutant) -> Option<usize> {
    let budget = pm.limits().callback_reports.get();
    (REPORTS.with(Cell::get) >= budget && !pm.hooks().mutant(ignored_by)).then_some(budget)
}

/// Refuses a `register` made inside a callback when this thread's callbacks have already
/// made the budget's reports (see [`refuse_report`]): each client registered there is a
/// greeting the thread's outermost call owes (a Policy Manager arrival, then an arrival
/// replay per hub), so it counts as a report. The caller counts an accepted registration
/// with [`count_report`]. (The `registration-budget-ignored` mutant never refuses.)
pub(crate) fn refuse_registration(pm: &PolicyManager) -> Result<(), Error> {
    if !waits::inside_callback() {
        return Ok(());
    }
    match budget_spent(pm, Mutant::RegistrationBudgetIgnored) {
        Some(budget) => Err(Error::CallbackRegistrationsSpent { budget }),
        None => Ok(()),
    }
}

/// Counts an accepted report (or registration) made inside a callback (see
/// [`refuse_report`], [`refuse_registration`]).
pub(crate) fn count_report() {
    if waits::inside_callback() {
        REPORTS.with(|r| r.set(r.get() + 1));
    }
}

/// A queued item and its ticket (its place in append order, from 1).
struct Entry {
    ticket: u64,
    item: Pending,
}

struct Queue {
    /// The hub's state with every queued change folded in.
    info: HubInfo,
    /// The state the hub arrived with, read only by the `replay-stale-snapshot` mutant:
    /// kept (and cloned at each arrival) only in builds with the `checking` feature.
    #[cfg(feature = "checking")]
    arrived: HubInfo,
    /// Sequence number of the last queued change (the arrival is 0).
    seq: u64,
    /// Which presence of the hub `info` is: 1 at its first arrival, +1 per arrival.
    presence: u32,
    /// The ticket of this presence's removal, once queued (0 until then).
    removal: u64,
    /// Earlier presences whose removal is not delivered yet, with the state they left
    /// in: their handles stay valid until then.
    retired: Vec<(u32, HubInfo, u64)>,
    /// Power requests accepted for the hardware, not yet taken by it.
    requests: Vec<PowerRequest>,
    pending: VecDeque<Entry>,
    /// The ticket of the last item appended (0: none yet).
    appended: u64,
    /// Every item with a ticket up to this one has been delivered or dropped.
    done: u64,
    /// The ticket of the hub's latest arrival (what `hub_arrival`'s kick waits for).
    arrival: u64,
    draining: bool,
    /// Callers sleeping on `turn` until their item is delivered or the queue is idle.
    sleepers: usize,
    /// The removal is queued: no change or replay is accepted after it.
    removed: bool,
    /// Clients that have seen this hub's arrival. Empty while a drainer holds the list.
    subscribers: Vec<Arc<Client>>,
}

impl Queue {
    /// The hub's state for an arrival replay: every queued change folded in. With
    /// `stale` (the `replay-stale-snapshot` mutant, never on without the `checking`
    /// feature) the state it arrived with instead.
    fn handle(&self, id: HubId) -> Option<HubHandle> {
        Some(HubHandle {
            id,
            presence: self.presence,
        })
    }

    fn replay_snapshot(&self, stale: bool) -> HubInfo {
        #[cfg(feature = "checking")]
        if stale {
            return self.arrived.clone();
        }
        #[cfg(not(feature = "checking"))]
        let _ = stale;
        self.info.clone()
    }

    /// What a caller outside callbacks does about its item `ticket`: nothing if it is
    /// delivered, sleep while another thread drains, drain if the queue is idle.
    fn settle(&self, ticket: u64) -> Settle {
        if ticket <= self.done {
            Settle::Done
        } else if self.draining {
            Settle::Sleeps
        } else {
            Settle::Drains
        }
    }
}

pub(crate) struct Hub {
    id: HubId,
    queue: Mutex<Queue>,
    /// Signalled when a drainer stops, for the callers sleeping until their turn.
    turn: Condvar,
}

impl Hub {
    /// A hub whose queue starts with its arrival, addressed to `clients`.
    pub(crate) fn new(info: HubInfo, clients: Vec<Arc<Client>>, hooks: &Hooks) -> Self {
        let id = info.hub;
        hooks.step(|| Step::HubArrived {
            hub: id,
            clients: clients.iter().map(|c| c.handle()).collect(),
        });
        let notification = Notification {
            hub: Some(HubHandle { id, presence: 1 }),
            seq: 0,
            event: Event::HubArrival(info.clone()),
        };
        let mut pending = VecDeque::new();
        pending.push_back(Entry {
            ticket: 1,
            item: Pending::Arrival {
                clients,
                notification,
            },
        });
        Hub {
            id,
            queue: Mutex::new(Queue {
                #[cfg(feature = "checking")]
                arrived: info.clone(),
                info,
                seq: 0,
                presence: 1,
                removal: 0,
                retired: Vec::new(),
                requests: Vec::new(),
                pending,
                appended: 1,
                done: 0,
                arrival: 1,
                draining: false,
                sleepers: 0,
                removed: false,
                subscribers: Vec::new(),
            }),
            turn: Condvar::new(),
        }
    }

    pub(crate) fn id(&self) -> HubId {
        self.id
    }

    /// The hub's current state, while it is present (its removal not queued).
    pub(crate) fn present(&self) -> Result<HubInfo, Error> {
        let q = lock(&self.queue);
        if q.removed {
            return Err(Error::UnknownHub(self.id));
        }
        Ok(q.info.clone())
    }

    /// The handle of the hub's latest presence.
    pub(crate) fn handle(&self) -> HubHandle {
        let q = lock(&self.queue);
        HubHandle {
            id: self.id,
            presence: q.presence,
        }
    }

    /// The state of the presence `handle` names: valid from its arrival until its removal
    /// has been delivered (so a `HubRemoval` callback still sees it).
    pub(crate) fn view(&self, handle: HubHandle, hooks: &Hooks) -> Result<HubInfo, Error> {
        let mut q = lock(&self.queue);
        if handle.presence == 0 || handle.presence > q.presence {
            return Err(Error::UnknownHub(self.id));
        }
        // The mutant refuses a hub as soon as its removal is queued.
        let leaving_visible = !hooks.mutant(Mutant::RemovalHidesHub);
        if handle.presence == q.presence {
            return if !q.removed || (q.done < q.removal && leaving_visible) {
                Ok(q.info.clone())
            } else {
                Err(Error::StaleHubHandle(handle))
            };
        }
        let done = q.done;
        q.retired.retain(|(_, _, removal)| done < *removal);
        match q.retired.iter().find(|(p, _, _)| *p == handle.presence) {
            Some((_, info, _)) if leaving_visible => Ok(info.clone()),
            _ => Err(Error::StaleHubHandle(handle)),
        }
    }

    /// Takes the power requests accepted since the last call.
    pub(crate) fn take_requests(&self) -> Vec<PowerRequest> {
        mem::take(&mut lock(&self.queue).requests)
    }

    /// Accepts a client's power request for the hardware, if the connector is a sink with
    /// a partner attached in the hub's current presence.
    pub(crate) fn request_power(
        &self,
        client: ClientHandle,
        connector: ConnectorHandle,
        level: PowerLevel,
        hooks: &Hooks,
    ) -> Result<(), Error> {
        let mut q = lock(&self.queue);
        let hub = connector.hub;
        if hub.presence == 0 || hub.presence > q.presence {
            return Err(Error::UnknownHub(self.id));
        }
        if hub.presence != q.presence || q.removed {
            return Err(Error::StaleHubHandle(hub));
        }
        let c = q
            .info
            .connectors
            .get(usize::from(connector.connector.0))
            .ok_or(Error::UnknownConnector(self.id, connector.connector))?;
        if !c.state.attached || c.state.power_role != PowerRole::Sink {
            return Err(Error::PowerRequestRefused {
                connector,
                attached: c.state.attached,
            });
        }
        let attach_count = c.attach_count;
        q.requests.push(PowerRequest {
            client,
            connector,
            level,
            attach_count,
        });
        hooks.step(|| Step::PowerRequested {
            client,
            hub: self.id,
            connector: connector.connector,
        });
        Ok(())
    }

    /// The hub arrives again after its removal: its new arrival is queued behind whatever
    /// of its previous presence is still being delivered, so a client never sees the old
    /// presence's events after the new arrival.
    ///
    /// # Errors
    /// [`Error::HubAlreadyPresent`] if the hub is present; [`Error::HubQueueFull`] inside a
    /// callback when the queue is full (a callback removing and re-adding the hub would
    /// otherwise grow it without bound). Either way nothing changes.
    pub(crate) fn rearrive(
        &self,
        info: HubInfo,
        clients: Vec<Arc<Client>>,
        pm: &PolicyManager,
    ) -> Result<(), Error> {
        let hooks = pm.hooks();
        let mut q = lock(&self.queue);
        if !q.removed {
            return Err(Error::HubAlreadyPresent(self.id));
        }
        refuse_report(&q, self.id, pm)?;
        count_report();
        hooks.step(|| Step::HubArrived {
            hub: self.id,
            clients: clients.iter().map(|c| c.handle()).collect(),
        });
        q.removed = false;
        q.seq = 0;
        if q.done < q.removal {
            // The previous presence is still leaving: its handles stay valid till then.
            let left = (q.presence, q.info.clone(), q.removal);
            q.retired.push(left);
        }
        q.presence += 1;
        q.removal = 0;
        q.info = info.clone();
        #[cfg(feature = "checking")]
        {
            q.arrived = info.clone();
        }
        let notification = Notification {
            hub: q.handle(self.id),
            seq: 0,
            event: Event::HubArrival(info),
        };
        q.appended += 1;
        q.arrival = q.appended;
        let ticket = q.appended;
        q.pending.push_back(Entry {
            ticket,
            item: Pending::Arrival {
                clients,
                notification,
            },
        });
        Ok(())
    }

    /// Sees the hub's latest arrival delivered (used right after arrival). No other
    /// arrival of this hub can come in between: that needs the port, which `hub_arrival`
    /// returns after this.
    pub(crate) fn kick(hub: &Arc<Hub>, pm: &PolicyManager) {
        Hub::submit(hub, pm, |_| Ok(Submit::Arrival)).expect("kick queues nothing and cannot fail");
    }

    /// Queues a connector change.
    pub(crate) fn change(
        hub: &Arc<Hub>,
        pm: &PolicyManager,
        connector: ConnectorId,
        state: ConnectorState,
    ) -> Result<(), Error> {
        let id = hub.id;
        let fold = !pm.hooks().mutant(Mutant::ChangeNotFolded);
        Hub::submit(hub, pm, |q| {
            if q.removed {
                return Err(Error::UnknownHub(id));
            }
            refuse_report(q, id, pm)?;
            let c = q
                .info
                .connectors
                .get_mut(usize::from(connector.0))
                .ok_or(Error::UnknownConnector(id, connector))?;
            if fold {
                if state.attached && !c.state.attached {
                    c.attach_count += 1;
                }
                if !state.attached {
                    // The partner left: a power level it accepted goes with it.
                    c.assigned_power = None;
                }
                c.state = state.clone();
            }
            q.seq += 1;
            count_report();
            let event = Event::ConnectorStateChange { connector, state };
            Ok(Submit::Append(Pending::Change(Notification {
                hub: q.handle(id),
                seq: q.seq,
                event,
            })))
        })
    }

    /// The hardware's answer to a power request: an accepted one whose partner is still
    /// attached sets the level and queues a connector change; anything else changes
    /// nothing. Returns whether a change was queued.
    pub(crate) fn answer(
        hub: &Arc<Hub>,
        pm: &PolicyManager,
        request: PowerRequest,
        accepted: bool,
    ) -> Result<bool, Error> {
        let id = hub.id;
        let hooks = pm.hooks();
        // The mutant reports a rejected request as if it had been accepted.
        let applies = accepted || hooks.mutant(Mutant::RejectedRequestReported);
        let mut reported = false;
        if applies {
            let reported = &mut reported;
            Hub::submit(hub, pm, |q| {
                if q.removed || q.presence != request.connector.hub.presence {
                    return Ok(Submit::Nothing);
                }
                refuse_report(q, id, pm)?;
                let Some(c) = q
                    .info
                    .connectors
                    .get_mut(usize::from(request.connector.connector.0))
                    .filter(|c| c.state.attached && c.attach_count == request.attach_count)
                else {
                    return Ok(Submit::Nothing);
                };
                c.assigned_power = Some(request.level);
                let state = c.state.clone();
                q.seq += 1;
                count_report();
                *reported = true;
                Ok(Submit::Append(Pending::Change(Notification {
                    hub: q.handle(id),
                    seq: q.seq,
                    event: Event::ConnectorStateChange {
                        connector: request.connector.connector,
                        state,
                    },
                })))
            })?;
        }
        hooks.step(|| Step::PowerAnswered {
            client: request.client,
            hub: id,
            connector: request.connector.connector,
            accepted,
            reported,
        });
        Ok(reported)
    }

    /// Queues the hub's removal; later changes and replays are refused or dropped.
    pub(crate) fn remove(hub: &Arc<Hub>, pm: &PolicyManager) {
        let id = hub.id;
        let _ = Hub::submit(hub, pm, |q| {
            if q.removed {
                return Ok(Submit::Nothing);
            }
            q.removed = true;
            q.seq += 1;
            // Its ticket: the one `submit` gives it next.
            q.removal = q.appended + 1;
            q.requests.clear();
            Ok(Submit::Append(Pending::Removal(Notification {
                hub: q.handle(id),
                seq: q.seq,
                event: Event::HubRemoval,
            })))
        });
    }

    /// Queues an arrival replay for `client`, with the hub's state as of this point in
    /// its queue. Dropped if the hub's removal is already queued.
    pub(crate) fn replay(hub: &Arc<Hub>, pm: &PolicyManager, client: Arc<Client>) {
        let id = hub.id;
        let stale = pm.hooks().mutant(Mutant::ReplayStaleSnapshot);
        let _ = Hub::submit(hub, pm, |q| {
            if q.removed {
                return Ok(Submit::Nothing);
            }
            let notification = Notification {
                hub: q.handle(id),
                seq: q.seq,
                event: Event::HubArrival(q.replay_snapshot(stale)),
            };
            Ok(Submit::Append(Pending::Replay {
                client,
                notification,
            }))
        });
    }

    /// Appends what `make` builds (under the hub lock), then sees it delivered: drains up
    /// to it if the queue is idle, or sleeps until it is delivered or the queue is idle.
    /// Inside a callback it only records the obligation (see the module docs).
    fn submit(
        hub: &Arc<Hub>,
        pm: &PolicyManager,
        make: impl FnOnce(&mut Queue) -> Result<Submit, Error>,
    ) -> Result<(), Error> {
        let hooks = pm.hooks();
        let mut q = lock(&hub.queue);
        let submit = make(&mut q)?;
        let (item, ticket) = match submit {
            Submit::Append(item) => {
                q.appended += 1;
                (Some(item), q.appended)
            }
            Submit::Arrival => (None, q.arrival),
            Submit::Nothing => (None, 0),
        };
        let inside = waits::inside_callback();
        let settle = match q.settle(ticket) {
            Settle::Done => Settle::Done,
            _ if inside => Settle::Owes,
            settle => settle,
        };
        hooks.step(|| Step::Submitted {
            hub: hub.id,
            appended: appended(item.as_ref()),
            ticket,
            settle,
        });
        if let Some(item) = item {
            let seq = q.seq;
            hooks.step(|| Step::Queued { hub: hub.id, seq });
            let entry = Entry { ticket, item };
            match entry.item {
                Pending::Removal(_) if hooks.mutant(Mutant::RemovalOvertakes) => {
                    q.pending.push_front(entry)
                }
                _ => q.pending.push_back(entry),
            }
        }
        if inside {
            // Never settle (drain or sleep) inside a callback: record the obligation, if
            // any, for the thread's outermost call.
            drop(q);
            if settle == Settle::Owes {
                record_obligation(hub, pm, ticket);
            }
            return Ok(());
        }
        hub.settle(pm, q, ticket);
        settle_obligations(pm);
        Ok(())
    }

    /// Returns once the item `ticket` is delivered: drains up to it when the queue is
    /// idle, sleeps while another thread drains. Called outside any callback only.
    fn settle<'a>(&'a self, pm: &PolicyManager, mut q: MutexGuard<'a, Queue>, ticket: u64) {
        let hooks = pm.hooks();
        let settled = || Step::Settled {
            hub: self.id,
            ticket,
        };
        let taken_is_done = hooks.mutant(Mutant::DoneBeforeDelivered);
        loop {
            // The mutant counts an item taken for delivery (any ticket no longer pending)
            // as delivered.
            let early = taken_is_done && ticket <= q.appended - q.pending.len() as u64;
            if q.done >= ticket || early {
                hooks.step(settled);
                return;
            }
            if !q.draining {
                q.draining = true;
                let mut pruned = Vec::new();
                q = self.drain(pm, q, ticket, &mut pruned);
                q.draining = false;
                let woke = q.sleepers > 0 && !hooks.mutant(Mutant::HandoffWakesNobody);
                let done = q.done;
                hooks.step(|| Step::DrainStop {
                    hub: self.id,
                    done,
                    woke,
                });
                if woke {
                    self.turn.notify_all();
                }
                hooks.step(settled);
                // The pruned clients go (and with the last reference, their contexts) only
                // now: outside the hub's lock and its drain, so a context's `Drop` may
                // report on this hub like any caller.
                drop(q);
                drop(pruned);
                return;
            }
            q.sleepers += 1;
            q = match self.turn.wait(q) {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
            q.sleepers -= 1;
            let settle = q.settle(ticket);
            hooks.step(|| Step::Awake {
                hub: self.id,
                ticket,
                settle,
            });
        }
    }

    /// Delivers queued items in order until every item up to `target` is delivered, and
    /// hands the lock back. The caller has set `draining` and passes the lock in. Clients
    /// no longer subscribed (closed, or the hub removed) are moved to `pruned`, for the
    /// caller to drop once it has stopped draining.
    fn drain<'a>(
        &'a self,
        pm: &PolicyManager,
        mut q: MutexGuard<'a, Queue>,
        target: u64,
        pruned: &mut Vec<Arc<Client>>,
    ) -> MutexGuard<'a, Queue> {
        let hooks = pm.hooks();
        let under_lock = hooks.mutant(Mutant::CallbackUnderHubLock);
        let one_per_pass = hooks.mutant(Mutant::DrainOnePerPass);
        let to_empty = hooks.mutant(Mutant::UnboundedDrain);
        let drop_now = hooks.mutant(Mutant::ContextDropUnderDrain);
        let mut subscribers = mem::take(&mut q.subscribers);
        loop {
            let more = q.done < target || to_empty;
            let Some(Entry { ticket, item }) = (if more { q.pending.pop_front() } else { None })
            else {
                q.subscribers = subscribers;
                return q;
            };
            let seq = item.seq();
            hooks.step(|| Step::Took {
                hub: self.id,
                seq,
                ticket,
            });
            let held = if under_lock {
                Some(q)
            } else {
                drop(q);
                None
            };
            match item {
                Pending::Arrival {
                    clients,
                    notification,
                } => {
                    pruned.append(&mut subscribers);
                    subscribers = clients;
                    deliver(pm, &mut subscribers, &notification, pruned);
                }
                Pending::Change(notification) => {
                    deliver(pm, &mut subscribers, &notification, pruned);
                }
                Pending::Removal(notification) => {
                    for c in mem::take(&mut subscribers) {
                        pm.invoke(&c, &notification);
                        pruned.push(c);
                    }
                }
                Pending::Replay {
                    client,
                    notification,
                } => {
                    // A client that registered while the hub re-arrived can be in the new
                    // arrival's list and have a replay queued behind it: it has the hub.
                    let subscribed = subscribers.iter().any(|c| Arc::ptr_eq(c, &client));
                    if !subscribed && pm.invoke(&client, &notification) {
                        subscribers.push(client);
                    } else {
                        pruned.push(client);
                    }
                }
            }
            if drop_now {
                // The bug: the pruned clients (and maybe their contexts) go here, while
                // this thread still holds the hub's drain.
                pruned.clear();
            }
            q = match held {
                Some(q) => q,
                None => lock(&self.queue),
            };
            q.done = q.done.max(ticket);
            if one_per_pass {
                q.subscribers = subscribers;
                return q;
            }
        }
    }
}

/// Delivers `notification` to each of `subscribers` in order, and moves the closed ones
/// out of the list to `pruned`.
fn deliver(
    pm: &PolicyManager,
    subscribers: &mut Vec<Arc<Client>>,
    notification: &Notification,
    pruned: &mut Vec<Arc<Client>>,
) {
    let mut i = 0;
    while i < subscribers.len() {
        if pm.invoke(&subscribers[i], notification) {
            i += 1;
        } else {
            pruned.push(subscribers.remove(i));
        }
    }
}

/// What `submit`'s `make` asks for.
enum Submit {
    /// Append this item and see it delivered.
    Append(Pending),
    /// Append nothing; see the hub's latest arrival delivered (the kick).
    Arrival,
    /// Append nothing (a replay dropped because the removal is queued).
    Nothing,
}

/// What a thread's outermost call owes for the calls its callbacks made.
enum Obligation {
    /// `hub`'s item with this ticket must be delivered (one per hub, the highest ticket).
    Deliver(Arc<Hub>, PolicyManager, u64),
    /// A client registered inside a callback: its Policy Manager arrival, then its
    /// showing to the hubs (see `PolicyManager::greet`).
    Greet(PolicyManager, Arc<Client>),
}

thread_local! {
    /// This thread's obligations, oldest first.
    // Not a `const` initializer: loom's and shuttle's `thread_local!` do not accept one.
    #[allow(clippy::missing_const_for_thread_local)]
    static OBLIGATIONS: RefCell<Vec<Obligation>> = RefCell::new(Vec::new());
    /// Reports this thread's callbacks made since it last owed nothing (see
    /// [`refuse_report`]).
    #[allow(clippy::missing_const_for_thread_local)]
    static REPORTS: Cell<usize> = Cell::new(0);
    /// How many `settle_obligations` are running on this thread: a greeting's arrival
    /// replays settle their own obligations inside the outermost one.
    #[allow(clippy::missing_const_for_thread_local)]
    static SETTLING: Cell<usize> = Cell::new(0);
}

/// Records an obligation: this thread's outermost call must see `hub`'s item `ticket`
/// delivered (one obligation per hub, the highest ticket).
fn record_obligation(hub: &Arc<Hub>, pm: &PolicyManager, ticket: u64) {
    if pm.hooks().mutant(Mutant::ObligationForgotten) {
        return;
    }
    OBLIGATIONS.with(|obligations| {
        let mut obligations = obligations.borrow_mut();
        let owed = obligations.iter_mut().find_map(|o| match o {
            Obligation::Deliver(h, _, t) if Arc::ptr_eq(h, hub) => Some(t),
            _ => None,
        });
        match owed {
            Some(t) => *t = (*t).max(ticket),
            None => obligations.push(Obligation::Deliver(hub.clone(), pm.clone(), ticket)),
        }
    });
}

/// Records that this thread's outermost call owes `client` its greeting (a client
/// registered inside a callback).
pub(crate) fn owe_greeting(pm: &PolicyManager, client: Arc<Client>) {
    let handle = client.handle();
    pm.hooks().step(|| Step::GreetingOwed(handle));
    OBLIGATIONS.with(|obligations| {
        obligations
            .borrow_mut()
            .push(Obligation::Greet(pm.clone(), client))
    });
}

/// Greets `client`, registered by `register` outside callbacks, then settles what its
/// callbacks left. The greeting counts as a settling, so its arrival replays' settlings
/// are nested and the budget refills only when this call's settling ends: whatever the
/// callbacks report, on every hub, spends one budget (ledger C19). (The
/// `greeting-refills-budget` mutant does not count it: each replay's settling is then
/// the outermost one and refills the budget.)
pub(crate) fn greet_and_settle(pm: &PolicyManager, client: Arc<Client>) {
    // Counted as a settling: the replays' own settlings are nested in it, as they are
    // when the greeting is an obligation of a callback's registration.
    let counted = !pm.hooks().mutant(Mutant::GreetingRefillsBudget);
    if counted {
        SETTLING.with(|s| s.set(s.get() + 1));
    }
    pm.greet(client);
    if counted {
        SETTLING.with(|s| s.set(s.get() - 1));
    }
    settle_obligations(pm);
}

/// Settles this thread's obligations (called by the outermost call, outside callbacks):
/// each hub's owed item is delivered, and each owed greeting made, before the call
/// returns. Settling may run callbacks that record more obligations; the loop takes
/// those too.
pub(crate) fn settle_obligations(pm: &PolicyManager) {
    SETTLING.with(|s| s.set(s.get() + 1));
    // Oldest first: a client registered inside a callback gets its replays in hub order.
    while let Some(obligation) = OBLIGATIONS.with(|obligations| {
        let mut obligations = obligations.borrow_mut();
        (!obligations.is_empty()).then(|| obligations.remove(0))
    }) {
        match obligation {
            Obligation::Deliver(hub, owner, ticket) => {
                let q = lock(&hub.queue);
                let settle = q.settle(ticket);
                owner.hooks().step(|| Step::Settles {
                    hub: hub.id,
                    ticket,
                    settle,
                });
                hub.settle(&owner, q, ticket);
            }
            Obligation::Greet(owner, client) => owner.greet(client),
        }
    }
    // Once the outermost settling ends, the thread owes nothing: its callbacks' budget of
    // reports is whole again. (A nested settling, a greeting's replay's, ends while the
    // greeting that contains it still goes on and its callbacks may still report.)
    let depth = SETTLING.with(|s| {
        s.set(s.get() - 1);
        s.get()
    });
    // (The `budget-refilled-nested` mutant refills it at the end of every settling.)
    if depth == 0 || pm.hooks().mutant(Mutant::BudgetRefilledNested) {
        REPORTS.with(|r| r.set(0));
    }
}

/// The arrival-time state exists only for the `replay-stale-snapshot` mutant; these tests
/// pin that the mutant still sees it and that a correct replay never does.
#[cfg(all(
    test,
    feature = "checking",
    not(any(feature = "loom", feature = "shuttle"))
))]
mod tests {
    use crate::checking::Mutant;
    use crate::sync::{lock, Arc, Mutex};
    use crate::{ClientConfig, ConnectorId, ConnectorState, Event, HubId, PolicyManager};

    /// Connector 0's state in the arrival replayed to a client that registers after the
    /// connector was attached.
    fn replayed(mutant: Option<Mutant>) -> ConnectorState {
        let pm = PolicyManager::checking(mutant, None);
        let port = pm
            .hub_arrival(HubId(1), vec![ConnectorState::default()])
            .unwrap();
        let attached = ConnectorState {
            attached: true,
            ..Default::default()
        };
        port.connector_changed(ConnectorId(0), attached).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let h = pm
            .register(ClientConfig::new(seen.clone(), |seen, _, n| {
                if !n.is_manager_event() {
                    lock(seen).push(n.clone());
                }
            }))
            .unwrap();
        pm.deregister(h).unwrap();
        let seen = lock(&seen);
        match &seen[..] {
            [n] => match &n.event {
                Event::HubArrival(info) => {
                    assert_eq!(n.seq, 1, "the replay carries the latest change's seq");
                    info.connectors[0].state.clone()
                }
                other => panic!("not an arrival: {other:?}"),
            },
            other => panic!("one replay expected, got {other:?}"),
        }
    }

    #[test]
    fn a_replay_shows_the_latest_state() {
        assert!(replayed(None).attached);
    }

    #[test]
    fn the_stale_snapshot_mutant_replays_the_arrival_state() {
        assert!(!replayed(Some(Mutant::ReplayStaleSnapshot)).attached);
    }
}

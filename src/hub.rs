//! A hub's event queue: per-hub order without holding a lock across callbacks.
//!
//! Every hardware change of a hub, and every arrival replay for a client that registers
//! while the hub is present, is appended to the hub's queue under the hub's lock, which
//! also assigns the change its sequence number and folds it into the hub's state. One
//! thread at a time drains the queue (the `draining` flag): whoever appends to an idle
//! queue becomes the drainer and delivers until the queue is empty; whoever appends to a
//! queue being drained leaves the item to the drainer. So a hub's events reach each client
//! in queue order, events of different hubs are delivered concurrently, and no caller
//! ever waits for another hub's callbacks.
//!
//! The drainer takes the subscriber list out of the queue while it drains and puts it
//! back when it stops, so delivering an event needs no lock and no copy of the list. The
//! "queue empty" test and clearing `draining` happen under the same lock as appending,
//! so an append can never strand an item with no drainer.
//!
//! A callback may call back into the Policy Manager: appending to this hub's queue from
//! inside its own delivery only queues the item for the running drain loop.

use std::collections::VecDeque;
use std::mem;

use crate::checking::{Appended, Hooks, Mutant, Step};
use crate::error::Error;
use crate::event::{
    ConnectorId, ConnectorInfo, ConnectorState, Event, HubId, HubInfo, Notification, PowerLevel,
};
use crate::manager::{Client, PolicyManager};
use crate::sync::{lock, Arc, Mutex, MutexGuard};

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
    Join {
        client: Arc<Client>,
        notification: Notification,
    },
}

impl Pending {
    fn seq(&self) -> u64 {
        match self {
            Pending::Arrival { notification, .. } | Pending::Join { notification, .. } => {
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
        Some(Pending::Join {
            client,
            notification,
        }) => Appended::Replay {
            client: client.handle(),
            seq: notification.seq,
        },
    }
}

struct Queue {
    /// The hub's state with every queued change folded in.
    info: HubInfo,
    /// The state the hub arrived with (read only by the `replay-stale-snapshot` mutant).
    arrived: HubInfo,
    /// Sequence number of the last queued change (the arrival is 0).
    seq: u64,
    pending: VecDeque<Pending>,
    draining: bool,
    /// The removal is queued: no change or replay is accepted after it.
    removed: bool,
    /// Clients that have seen this hub's arrival. Empty while a drainer holds the list.
    subscribers: Vec<Arc<Client>>,
}

pub(crate) struct Hub {
    id: HubId,
    queue: Mutex<Queue>,
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
            hub: id,
            seq: 0,
            event: Event::HubArrival(info.clone()),
        };
        let mut pending = VecDeque::new();
        pending.push_back(Pending::Arrival {
            clients,
            notification,
        });
        Hub {
            id,
            queue: Mutex::new(Queue {
                arrived: info.clone(),
                info,
                seq: 0,
                pending,
                draining: false,
                removed: false,
                subscribers: Vec::new(),
            }),
        }
    }

    pub(crate) fn id(&self) -> HubId {
        self.id
    }

    /// The hub's current state (every reported change included), while it is present.
    pub(crate) fn info(&self) -> Result<HubInfo, Error> {
        let q = lock(&self.queue);
        if q.removed {
            return Err(Error::UnknownHub(self.id));
        }
        Ok(q.info.clone())
    }

    pub(crate) fn connector(&self, connector: ConnectorId) -> Result<ConnectorInfo, Error> {
        let q = lock(&self.queue);
        if q.removed {
            return Err(Error::UnknownHub(self.id));
        }
        q.info
            .connectors
            .get(usize::from(connector.0))
            .cloned()
            .ok_or(Error::UnknownConnector(self.id, connector))
    }

    pub(crate) fn assign_power_level(
        &self,
        connector: ConnectorId,
        level: PowerLevel,
    ) -> Result<(), Error> {
        let mut q = lock(&self.queue);
        if q.removed {
            return Err(Error::UnknownHub(self.id));
        }
        let c = q
            .info
            .connectors
            .get_mut(usize::from(connector.0))
            .ok_or(Error::UnknownConnector(self.id, connector))?;
        c.assigned_power = Some(level);
        Ok(())
    }

    /// The hub arrives again after its removal: its new arrival is queued behind whatever
    /// of its previous presence is still being delivered, so a client never sees the old
    /// presence's events after the new arrival. Returns false if the hub is present.
    pub(crate) fn rearrive(&self, info: HubInfo, clients: Vec<Arc<Client>>, hooks: &Hooks) -> bool {
        let mut q = lock(&self.queue);
        if !q.removed {
            return false;
        }
        hooks.step(|| Step::HubArrived {
            hub: self.id,
            clients: clients.iter().map(|c| c.handle()).collect(),
        });
        q.removed = false;
        q.seq = 0;
        q.info = info.clone();
        q.arrived = info.clone();
        let notification = Notification {
            hub: self.id,
            seq: 0,
            event: Event::HubArrival(info),
        };
        q.pending.push_back(Pending::Arrival {
            clients,
            notification,
        });
        true
    }

    /// Delivers whatever is queued if nobody is delivering yet (used right after arrival).
    pub(crate) fn kick(&self, pm: &PolicyManager) {
        self.submit(pm, |_| Ok(None))
            .expect("kick queues nothing and cannot fail");
    }

    /// Queues a connector change.
    pub(crate) fn change(
        &self,
        pm: &PolicyManager,
        connector: ConnectorId,
        state: ConnectorState,
    ) -> Result<(), Error> {
        let id = self.id;
        let fold = !pm.hooks().mutant(Mutant::ChangeNotFolded);
        self.submit(pm, |q| {
            if q.removed {
                return Err(Error::UnknownHub(id));
            }
            let c = q
                .info
                .connectors
                .get_mut(usize::from(connector.0))
                .ok_or(Error::UnknownConnector(id, connector))?;
            if fold {
                c.state = state.clone();
            }
            q.seq += 1;
            let event = Event::ConnectorStateChange { connector, state };
            Ok(Some(Pending::Change(Notification {
                hub: id,
                seq: q.seq,
                event,
            })))
        })
    }

    /// Queues the hub's removal; later changes and replays are refused or dropped.
    pub(crate) fn remove(&self, pm: &PolicyManager) {
        let id = self.id;
        let _ = self.submit(pm, |q| {
            if q.removed {
                return Ok(None);
            }
            q.removed = true;
            q.seq += 1;
            Ok(Some(Pending::Removal(Notification {
                hub: id,
                seq: q.seq,
                event: Event::HubRemoval,
            })))
        });
    }

    /// Queues an arrival replay for `client`, with the hub's state as of this point in
    /// its queue. Dropped if the hub's removal is already queued.
    pub(crate) fn join(&self, pm: &PolicyManager, client: Arc<Client>) {
        let id = self.id;
        let stale = pm.hooks().mutant(Mutant::ReplayStaleSnapshot);
        let _ = self.submit(pm, |q| {
            if q.removed {
                return Ok(None);
            }
            let snapshot = if stale {
                q.arrived.clone()
            } else {
                q.info.clone()
            };
            let notification = Notification {
                hub: id,
                seq: q.seq,
                event: Event::HubArrival(snapshot),
            };
            Ok(Some(Pending::Join {
                client,
                notification,
            }))
        });
    }

    /// Appends what `make` builds (under the hub lock) and drains if the queue was idle.
    fn submit(
        &self,
        pm: &PolicyManager,
        make: impl FnOnce(&mut Queue) -> Result<Option<Pending>, Error>,
    ) -> Result<(), Error> {
        let hooks = pm.hooks();
        let mut q = lock(&self.queue);
        let item = make(&mut q)?;
        let drains = !q.draining && (item.is_some() || !q.pending.is_empty());
        hooks.step(|| Step::Submitted {
            hub: self.id,
            appended: appended(item.as_ref()),
            drains,
        });
        if let Some(item) = item {
            let seq = q.seq;
            hooks.step(|| Step::Queued { hub: self.id, seq });
            match item {
                Pending::Removal(_) if hooks.mutant(Mutant::RemovalOvertakes) => {
                    q.pending.push_front(item)
                }
                _ => q.pending.push_back(item),
            }
        }
        if !drains {
            return Ok(());
        }
        q.draining = true;
        self.drain(pm, q);
        Ok(())
    }

    /// Delivers queued items in order until the queue is empty. The caller has set
    /// `draining` and passes the lock in.
    fn drain<'a>(&'a self, pm: &PolicyManager, mut q: MutexGuard<'a, Queue>) {
        let hooks = pm.hooks();
        let under_lock = hooks.mutant(Mutant::CallbackUnderHubLock);
        let one_per_pass = hooks.mutant(Mutant::DrainOnePerPass);
        let mut subscribers = mem::take(&mut q.subscribers);
        loop {
            let Some(item) = q.pending.pop_front() else {
                q.subscribers = subscribers;
                q.draining = false;
                hooks.step(|| Step::DrainIdle { hub: self.id });
                return;
            };
            hooks.step(|| Step::Took {
                hub: self.id,
                seq: item.seq(),
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
                    subscribers = clients;
                    subscribers.retain(|c| pm.invoke(c, &notification));
                }
                Pending::Change(notification) => {
                    subscribers.retain(|c| pm.invoke(c, &notification));
                }
                Pending::Removal(notification) => {
                    for c in mem::take(&mut subscribers) {
                        pm.invoke(&c, &notification);
                    }
                }
                Pending::Join {
                    client,
                    notification,
                } => {
                    // A client that registered while the hub re-arrived can be in the new
                    // arrival's list and have a replay queued behind it: it has the hub.
                    let subscribed = subscribers.iter().any(|c| Arc::ptr_eq(c, &client));
                    if !subscribed && pm.invoke(&client, &notification) {
                        subscribers.push(client);
                    }
                }
            }
            q = match held {
                Some(q) => q,
                None => lock(&self.queue),
            };
            if one_per_pass {
                q.subscribers = subscribers;
                q.draining = false;
                return;
            }
        }
    }
}

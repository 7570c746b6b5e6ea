//! The registry: the registered clients, in the slot table that issues their handles,
//! and the hubs by id. The Policy Manager keeps it under its registry lock.
//!
//! A handle names a slot and the slot's generation at registration time. Deregistering
//! empties the slot and bumps its generation, so a stale handle can never reach the
//! slot's next client, however often the slot is reused.

use std::collections::{BTreeMap, BTreeSet};

use crate::checking::{Hooks, Mutant};
use crate::error::Error;
use crate::event::HubId;
use crate::handle::{ClientHandle, MAX_SLOTS};

/// Clients and hubs. Not synchronised: the Policy Manager keeps it under its registry
/// lock, taken briefly by register, deregister, hub arrival and removal and queries;
/// never while a callback runs, and never on the delivery path.
///
/// Generic in what a client and a hub are, so that this module needs neither the
/// manager nor the hub module.
pub(crate) struct Registry<C, H> {
    /// The registered clients, by handle.
    pub(crate) clients: Slots<C>,
    /// Registered clients whose Policy Manager arrival has not been delivered yet: no
    /// hub delivers to them (see `PolicyManager::greet`).
    pub(crate) hidden: BTreeSet<ClientHandle>,
    /// The Policy Manager has been shut down.
    pub(crate) shut: bool,
    /// Every hub that has arrived, by id. A removed hub stays, absent, so that a later
    /// arrival of the same id queues behind its removal.
    pub(crate) hubs: BTreeMap<HubId, H>,
}

impl<C: Clone, H> Registry<C, H> {
    /// No clients and no hubs; handles are issued for the Policy Manager `instance`.
    pub(crate) fn new(instance: u32) -> Self {
        Registry {
            clients: Slots::new(instance),
            hidden: BTreeSet::new(),
            shut: false,
            hubs: BTreeMap::new(),
        }
    }
}

struct Slot<T> {
    generation: u16,
    value: Option<T>,
}

/// Registrations by handle: the registry's client table, issuing the handles.
///
/// Slots are created on demand, up to [`MAX_SLOTS`], and a freed slot is reused until it
/// has served [`GENERATIONS_PER_SLOT`](crate::handle::GENERATIONS_PER_SLOT)
/// registrations; then it is exhausted: out of use for good (its generation is 0). So the
/// table is full when its values plus its exhausted slots number `MAX_SLOTS`.
pub(crate) struct Slots<T> {
    instance: u32,
    slots: Vec<Slot<T>>,
    free: Vec<u16>,
}

impl<T: Clone> Slots<T> {
    pub(crate) fn new(instance: u32) -> Self {
        Slots {
            instance,
            slots: Vec::new(),
            free: Vec::new(),
        }
    }

    /// Stores `value(handle)` in a free slot and returns its handle.
    ///
    /// Refused with [`Error::TooManyClients`] (and `value` not called) when no slot is
    /// free: all [`MAX_SLOTS`] slots exist and each holds a value or is exhausted.
    pub(crate) fn insert_with(
        &mut self,
        value: impl FnOnce(ClientHandle) -> T,
    ) -> Result<ClientHandle, Error> {
        let slot = match self.free.pop() {
            Some(i) => i,
            None => {
                let Ok(i) = u16::try_from(self.slots.len()) else {
                    return Err(Error::TooManyClients { limit: MAX_SLOTS });
                };
                self.slots.push(Slot {
                    generation: 1,
                    value: None,
                });
                i
            }
        };
        let s = &mut self.slots[usize::from(slot)];
        let handle = ClientHandle {
            instance: self.instance,
            slot,
            generation: s.generation,
        };
        s.value = Some(value(handle));
        Ok(handle)
    }

    fn check(&self, handle: ClientHandle, hooks: &Hooks) -> Result<usize, Error> {
        let i = usize::from(handle.slot);
        let Some(s) = self
            .slots
            .get(i)
            .filter(|_| handle.instance == self.instance)
        else {
            return Err(Error::UnknownHandle(handle));
        };
        if hooks.mutant(Mutant::NoGeneration) {
            return if s.value.is_some() {
                Ok(i)
            } else {
                Err(Error::StaleHandle(handle))
            };
        }
        if handle.generation == 0 {
            // Generation 0 is never issued.
            Err(Error::UnknownHandle(handle))
        } else if s.generation == 0 || handle.generation < s.generation {
            // Exhausted slot, or a generation this slot has moved past.
            Err(Error::StaleHandle(handle))
        } else if handle.generation > s.generation {
            Err(Error::UnknownHandle(handle))
        } else {
            Ok(i)
        }
    }

    /// The value in `handle`'s slot, if the handle is live.
    pub(crate) fn get(&self, handle: ClientHandle, hooks: &Hooks) -> Result<&T, Error> {
        let i = self.check(handle, hooks)?;
        self.slots[i]
            .value
            .as_ref()
            .ok_or(Error::UnknownHandle(handle))
    }

    /// Takes the value out of `handle`'s slot, retiring the handle.
    pub(crate) fn remove(&mut self, handle: ClientHandle, hooks: &Hooks) -> Result<T, Error> {
        let i = self.check(handle, hooks)?;
        let s = &mut self.slots[i];
        // An empty slot at the handle's generation has not issued that generation yet.
        let value = s.value.take().ok_or(Error::UnknownHandle(handle))?;
        // A slot whose generation would wrap is exhausted (generation 0, never freed)
        // rather than reused, so a handle can never come back to life.
        s.generation = s.generation.wrapping_add(1);
        if s.generation != 0 {
            self.free.push(handle.slot);
        }
        Ok(value)
    }

    /// All live values, in slot order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().filter_map(|s| s.value.as_ref())
    }
}

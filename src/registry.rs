//! Client handles and the slot table that maps them to registrations.
//!
//! A handle names a slot and the slot's generation at registration time. Deregistering
//! empties the slot and bumps its generation, so a stale handle can never reach the
//! slot's next client, however often the slot is reused.

use std::fmt;

use crate::checking::{Hooks, Mutant};
use crate::error::Error;

/// The handle a client receives from [`register`](crate::PolicyManager::register) and
/// passes to [`deregister`](crate::PolicyManager::deregister).
///
/// It is plain data (like the `HANDLE` of `UsbPm_Register`): copying it is free, and a
/// copy that outlives its registration is detected, not trusted.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientHandle {
    instance: u32,
    slot: u16,
    generation: u16,
}

impl ClientHandle {
    /// The handle as one integer, for passing through C-shaped interfaces.
    pub fn into_raw(self) -> u64 {
        (u64::from(self.instance) << 32) | (u64::from(self.slot) << 16) | u64::from(self.generation)
    }

    /// Rebuilds a handle from [`into_raw`](Self::into_raw). Any integer is accepted; one
    /// that was never issued is refused by the Policy Manager with
    /// [`Error::UnknownHandle`].
    pub fn from_raw(raw: u64) -> Self {
        ClientHandle {
            instance: (raw >> 32) as u32,
            slot: (raw >> 16) as u16,
            generation: raw as u16,
        }
    }

    /// The slot index, for reports (the client's position in registration order while
    /// no slot has been reused).
    pub fn slot(self) -> usize {
        usize::from(self.slot)
    }
}

impl fmt::Debug for ClientHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "client {}.{}", self.slot, self.generation)
    }
}

impl fmt::Display for ClientHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// How many slots a slot table has: handles have 16 bits of slot.
pub(crate) const MAX_SLOTS: usize = 1 << u16::BITS;

/// How many registrations one slot serves before it is retired: generations 1 to
/// 65,535 (0 is never issued, and wrapping back to 1 could revive a stale handle).
pub(crate) const GENERATIONS_PER_SLOT: usize = (1 << u16::BITS) - 1;

struct Slot<T> {
    generation: u16,
    value: Option<T>,
}

/// Registrations by handle. Not synchronised: the Policy Manager keeps it under its
/// registry lock.
///
/// Slots are created on demand, up to [`MAX_SLOTS`], and a freed slot is reused until it
/// has served [`GENERATIONS_PER_SLOT`] registrations; then it is retired for good. So the
/// table is full when its values plus its retired slots number `MAX_SLOTS`.
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
    /// free: all [`MAX_SLOTS`] slots exist and each holds a value or is retired.
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
            // Retired slot, or a generation this slot has moved past.
            Err(Error::StaleHandle(handle))
        } else if handle.generation > s.generation {
            Err(Error::UnknownHandle(handle))
        } else {
            Ok(i)
        }
    }

    /// Takes the value out of `handle`'s slot, retiring the handle.
    pub(crate) fn remove(&mut self, handle: ClientHandle, hooks: &Hooks) -> Result<T, Error> {
        let i = self.check(handle, hooks)?;
        let s = &mut self.slots[i];
        // An empty slot at the handle's generation has not issued that generation yet.
        let value = s.value.take().ok_or(Error::UnknownHandle(handle))?;
        // A slot whose generation would wrap is retired rather than reused, so a handle
        // can never come back to life.
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

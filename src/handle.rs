//! What a client handle is made of: the Policy Manager that issued it, its slot and the
//! slot's generation, and how many of each there are.
//!
//! This module uses nothing else of the crate, so `error` (whose variants carry handles)
//! and `registry` (which issues them and refuses bad ones with an `Error`) both build on
//! it without depending on each other.

use std::fmt;

/// The handle a client receives from [`register`](crate::PolicyManager::register) and
/// passes to [`deregister`](crate::PolicyManager::deregister).
///
/// It is plain data (like the `HANDLE` of `UsbPm_Register`): copying it is free, and a
/// copy that outlives its registration is detected, not trusted.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientHandle {
    /// Which Policy Manager issued it.
    pub(crate) instance: u32,
    /// Its slot in that Policy Manager's slot table.
    pub(crate) slot: u16,
    /// The slot's generation when it was issued (from 1).
    pub(crate) generation: u16,
}

impl ClientHandle {
    /// The handle as one integer, for passing through C-shaped interfaces.
    pub fn into_raw(self) -> u64 {
        (u64::from(self.instance) << 32) | (u64::from(self.slot) << 16) | u64::from(self.generation)
    }

    /// Rebuilds a handle from [`into_raw`](Self::into_raw). Any integer is accepted; one
    /// that was never issued is refused by the Policy Manager with
    /// [`Error::UnknownHandle`](crate::Error::UnknownHandle).
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

/// How many registrations one slot serves before it is exhausted (out of use for good):
/// generations 1 to 65,535 (0 is never issued, and wrapping back to 1 could revive a
/// stale handle).
pub(crate) const GENERATIONS_PER_SLOT: usize = (1 << u16::BITS) - 1;

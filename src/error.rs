//! Errors returned by the Policy Manager, each with the NTSTATUS a Windows driver would see.

use std::fmt;

use crate::event::{ConnectorId, HubId, MAX_CONNECTORS};
use crate::registry::GENERATIONS_PER_SLOT;
use crate::ClientHandle;

/// An NTSTATUS value, as `UsbPm_*` functions return them.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct NtStatus(pub u32);

impl NtStatus {
    /// The operation succeeded.
    pub const SUCCESS: NtStatus = NtStatus(0x0000_0000);
    /// The handle is not (or no longer) a valid client handle.
    pub const INVALID_HANDLE: NtStatus = NtStatus(0xC000_0008);
    /// A parameter (here: a connector index, or a hub's number of connectors) is out of
    /// range.
    pub const INVALID_PARAMETER: NtStatus = NtStatus(0xC000_000D);
    /// A resource (here: a slot for a client handle) is exhausted.
    pub const INSUFFICIENT_RESOURCES: NtStatus = NtStatus(0xC000_009A);
    /// Waiting would deadlock: the caller holds what the wait needs.
    pub const POSSIBLE_DEADLOCK: NtStatus = NtStatus(0xC000_0194);
    /// The named object (here: a hub) does not exist.
    pub const NOT_FOUND: NtStatus = NtStatus(0xC000_0225);
    /// The named object (here: a hub) already exists.
    pub const OBJECT_NAME_COLLISION: NtStatus = NtStatus(0xC000_0035);

    /// The symbolic name of the status, as in `ntstatus.h`.
    pub fn name(self) -> &'static str {
        match self {
            Self::SUCCESS => "STATUS_SUCCESS",
            Self::INVALID_HANDLE => "STATUS_INVALID_HANDLE",
            Self::INVALID_PARAMETER => "STATUS_INVALID_PARAMETER",
            Self::INSUFFICIENT_RESOURCES => "STATUS_INSUFFICIENT_RESOURCES",
            Self::POSSIBLE_DEADLOCK => "STATUS_POSSIBLE_DEADLOCK",
            Self::NOT_FOUND => "STATUS_NOT_FOUND",
            Self::OBJECT_NAME_COLLISION => "STATUS_OBJECT_NAME_COLLISION",
            _ => "STATUS_UNKNOWN",
        }
    }
}

impl fmt::Debug for NtStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (0x{:08X})", self.name(), self.0)
    }
}

impl fmt::Display for NtStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Why a Policy Manager call was refused.
///
/// Every refusal leaves the Policy Manager as it was: a refused `deregister` does not
/// half-close the registration, which keeps receiving events and can be deregistered
/// later from a context where waiting is safe.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The handle was never issued by this Policy Manager.
    UnknownHandle(ClientHandle),
    /// The handle was issued, but its registration has been deregistered (its slot may
    /// now belong to a later client, which this call did not touch).
    StaleHandle(ClientHandle),
    /// `deregister` was called on a thread that is inside a callback of that same client:
    /// it would wait for its own callback to return.
    DeregisterFromOwnCallback(ClientHandle),
    /// `deregister` was called from inside a callback, and waiting for the target's
    /// callbacks would close a cycle of callbacks waiting for each other.
    WouldDeadlock {
        /// The client the caller asked to deregister.
        target: ClientHandle,
        /// The callbacks the calling thread is inside of, innermost last.
        holding: Vec<ClientHandle>,
    },
    /// No hub with this id is present.
    UnknownHub(HubId),
    /// A hub with this id is already present.
    HubAlreadyPresent(HubId),
    /// The hub has no connector with this index.
    UnknownConnector(HubId, ConnectorId),
    /// A hub arrived with more connectors than connector ids can name (256: they are
    /// 8 bits). The hub was not added.
    TooManyConnectors {
        /// The hub that arrived.
        hub: HubId,
        /// How many connectors it arrived with.
        connectors: usize,
    },
    /// `register` found no free slot for a client handle. The client was not registered.
    ///
    /// A Policy Manager has `limit` (65,536) slots: handles have 16 bits of slot. A slot
    /// is free unless it holds a registered client or is retired; a slot is retired,
    /// never to be used again, once 65,535 registrations have gone through it (its 16-bit
    /// generation would wrap, which could bring a stale handle back to life). So
    /// `register` is refused when the registered clients plus the retired slots number
    /// `limit`: with no slot retired, at 65,536 registered clients.
    TooManyClients {
        /// How many slots a Policy Manager has (65,536), counting the slots in use and
        /// the retired ones.
        limit: usize,
    },
    /// `connector_changed` was called from inside a callback while the hub's queue held
    /// `capacity` items. The change was not reported (not queued, not folded into the
    /// hub's state). Appends made inside callbacks are delivered only after the callback
    /// returns, so a callback that reports without bound would grow the queue without
    /// bound; a caller outside callbacks waits for its own change instead and is never
    /// refused.
    HubQueueFull {
        /// The hub whose queue is full.
        hub: HubId,
        /// How many items a hub's queue may hold before reports from callbacks are
        /// refused.
        capacity: usize,
    },
}

impl Error {
    /// The NTSTATUS a Windows client of `UsbPm_*` would receive for this error.
    pub fn ntstatus(&self) -> NtStatus {
        match self {
            Error::UnknownHandle(_) | Error::StaleHandle(_) => NtStatus::INVALID_HANDLE,
            Error::DeregisterFromOwnCallback(_) | Error::WouldDeadlock { .. } => {
                NtStatus::POSSIBLE_DEADLOCK
            }
            Error::UnknownHub(_) => NtStatus::NOT_FOUND,
            Error::HubAlreadyPresent(_) => NtStatus::OBJECT_NAME_COLLISION,
            Error::UnknownConnector(..) | Error::TooManyConnectors { .. } => {
                NtStatus::INVALID_PARAMETER
            }
            Error::TooManyClients { .. } | Error::HubQueueFull { .. } => {
                NtStatus::INSUFFICIENT_RESOURCES
            }
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::UnknownHandle(h) => write!(
                f,
                "{h} was not issued by this Policy Manager; pass the handle that register returned"
            ),
            Error::StaleHandle(h) => write!(
                f,
                "{h} has already been deregistered; each handle may be deregistered once"
            ),
            Error::DeregisterFromOwnCallback(h) => write!(
                f,
                "deregister({h}) was called from inside a callback of {h} and would wait for itself; \
                 return from the callback and deregister from another context \
                 (or drop its Registration, which then deregisters without waiting)"
            ),
            Error::WouldDeadlock { target, holding } => {
                write!(f, "deregister({target}) from inside the callback of ")?;
                for (i, h) in holding.iter().enumerate() {
                    write!(f, "{}{h}", if i == 0 { "" } else { ", " })?;
                }
                write!(
                    f,
                    " would deadlock: {target}'s callbacks are (transitively) waiting for this one; \
                     the registration is unchanged, deregister it after this callback returns"
                )
            }
            Error::UnknownHub(h) => write!(f, "no hub {h} is present"),
            Error::HubAlreadyPresent(h) => {
                write!(f, "hub {h} is already present; remove it before it arrives again")
            }
            Error::UnknownConnector(h, c) => write!(f, "hub {h} has no connector {c}"),
            Error::TooManyConnectors { hub, connectors } => write!(
                f,
                "{hub} arrived with {connectors} connectors, but a hub has at most \
                 {MAX_CONNECTORS} (connector ids are 8 bits); the hub was not added, \
                 report at most {MAX_CONNECTORS} connectors per hub"
            ),
            Error::TooManyClients { limit } => write!(
                f,
                "no free client slot: a Policy Manager has {limit} slots, and each is held \
                 by a registered client or retired after {GENERATIONS_PER_SLOT} registrations \
                 through it; the client was not registered, deregister clients that are no \
                 longer needed (or use a new Policy Manager once its slots are retired)"
            ),
            Error::HubQueueFull { hub, capacity } => write!(
                f,
                "{hub}'s queue holds {capacity} undelivered items, the most a callback may \
                 add to; the change was not reported, report it again after this callback \
                 returns (a report made outside callbacks waits for its turn instead)"
            ),
        }
    }
}

impl std::error::Error for Error {}

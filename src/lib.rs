//! A USB Type-C Policy Manager and its client protocol: register, event callbacks,
//! deregister.
//!
//! The central promise is the one `UsbPm_Deregister` makes to Windows drivers:
//! [`PolicyManager::deregister`] does not return until every outstanding call of the
//! client's callback has returned, and after it returns the Policy Manager never again
//! calls that callback. A driver may free its context as soon as deregister returns.
//! As on Windows, a client's callback calls are serialized: one call at a time, across
//! every hub and thread.
//! This crate's `model/` proves that promise on this very source, with loom, shuttle and
//! proptest (see `docs/VERIFICATION.md`). Every promise, with the property that judges it
//! and the seeded bug that shows the judge can fail, is a row of the ledger in
//! `docs/CONTRACT.md` (ledger C1, C2, C3, C4 for the ones above).
//!
//! ```
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use std::sync::Arc;
//! use usbpm::{ClientConfig, ConnectorId, ConnectorState, Event, HubId, PolicyManager};
//!
//! let pm = PolicyManager::new();
//! let seen = Arc::new(AtomicUsize::new(0));
//! let client = pm.register(ClientConfig::new(seen.clone(), |seen, _pm, n| {
//!     if let Event::ConnectorStateChange { .. } = n.event {
//!         seen.fetch_add(1, Ordering::SeqCst);
//!     }
//! })).unwrap();
//!
//! let port = pm.hub_arrival(HubId(1), vec![ConnectorState::default()]).unwrap();
//! port.connector_changed(ConnectorId(0), ConnectorState { attached: true, ..Default::default() }).unwrap();
//!
//! pm.deregister(client).unwrap();
//! // From here on the callback never runs again, so its context may go.
//! port.connector_changed(ConnectorId(0), ConnectorState::default()).unwrap();
//! assert_eq!(seen.load(Ordering::SeqCst), 1);
//! ```
//!
//! Misuse gets an [`Error`] with the NTSTATUS a driver would see, never a hang:
//!
//! ```
//! # use usbpm::{ClientConfig, Error, NtStatus, PolicyManager};
//! let pm = PolicyManager::new();
//! let h = pm.register(ClientConfig::new((), |_, _, _| {})).unwrap();
//! pm.deregister(h).unwrap();
//! let err = pm.deregister(h).unwrap_err();
//! assert_eq!(err, Error::StaleHandle(h));
//! assert_eq!(err.ntstatus(), NtStatus::INVALID_HANDLE);
//! ```
//!
//! A callback that panics is contained: its in-flight count is released, other clients
//! keep receiving events, deregister still returns, and
//! [`PolicyManager::panicked_callbacks`] counts it.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "checking")]
pub mod checking;
#[cfg(not(feature = "checking"))]
mod checking;

mod error;
mod event;
mod handle;
mod hub;
mod manager;
mod registry;
mod rundown;
mod sync;
mod waits;

pub use error::{Error, NtStatus};
pub use event::{
    Access, ConnectorHandle, ConnectorId, ConnectorInfo, ConnectorProperties, ConnectorState,
    Event, HubHandle, HubId, HubInfo, Notification, PowerLevel, PowerRole,
};
pub use handle::ClientHandle;
pub use hub::{DEFAULT_CALLBACK_REPORTS, DEFAULT_QUEUE_CAPACITY};
pub use manager::{
    ClientConfig, Detached, HubPort, Limits, PolicyManager, PowerRequest, Registration,
};

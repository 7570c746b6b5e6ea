//! Errors returned by the Policy Manager, each with the NTSTATUS a Windows driver would see.

use std::fmt;

use crate::event::{Access, ConnectorHandle, ConnectorId, HubHandle, HubId, MAX_CONNECTORS};
use crate::handle::{ClientHandle, GENERATIONS_PER_SLOT};

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
    /// The caller lacks the access the call needs.
    pub const ACCESS_DENIED: NtStatus = NtStatus(0xC000_0022);
    /// The device is not in a state where the request can be made (here: a power
    /// request for a connector that is not a sink with a partner attached).
    pub const INVALID_DEVICE_STATE: NtStatus = NtStatus(0xC000_0184);
    /// The device (here: the Policy Manager) has been removed.
    pub const DEVICE_REMOVED: NtStatus = NtStatus(0xC000_02B6);

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
            Self::ACCESS_DENIED => "STATUS_ACCESS_DENIED",
            Self::INVALID_DEVICE_STATE => "STATUS_INVALID_DEVICE_STATE",
            Self::DEVICE_REMOVED => "STATUS_DEVICE_REMOVED",
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
    /// is free unless it holds a registered client or is exhausted; a slot is exhausted,
    /// never to be used again, once 65,535 registrations have gone through it (its 16-bit
    /// generation would wrap, which could bring a stale handle back to life). So
    /// `register` is refused when the registered clients plus the exhausted slots number
    /// `limit`: with no slot exhausted, at 65,536 registered clients.
    TooManyClients {
        /// How many slots a Policy Manager has (65,536), counting the slots in use and
        /// the exhausted ones.
        limit: usize,
    },
    /// `connector_changed` (or an accepted power answer, or `hub_arrival` of a hub coming
    /// back) was called from inside a callback while the hub's queue held `capacity` items.
    /// Nothing changed (not queued, not folded into the hub's state; a refused arrival
    /// leaves the hub absent). A callback's thread delivers nothing until the callback
    /// returns, so a callback that reports without bound would grow the queue without
    /// bound; a caller outside callbacks waits for its own item instead and is never
    /// refused.
    HubQueueFull {
        /// The hub whose queue is full.
        hub: HubId,
        /// How many items a hub's queue may hold before reports from callbacks are
        /// refused.
        capacity: usize,
    },
    /// `connector_changed` (or an accepted power answer, or `hub_arrival` of a hub coming
    /// back) was called from inside a callback whose thread's callbacks had already made
    /// `budget` reports since the thread last owed nothing. Nothing changed. The thread's
    /// outermost call delivers every item its callbacks report before it returns, so a
    /// callback that reported on every event it receives would keep that call delivering
    /// for ever.
    CallbackReportsSpent {
        /// The hub reported to.
        hub: HubId,
        /// How many reports a thread's callbacks may make before its outermost call has
        /// delivered them.
        budget: usize,
    },
    /// `register` was called from inside a callback whose thread's callbacks had already
    /// made `budget` reports (a registration counts as one) since the thread last owed
    /// nothing. The client was not registered. The thread's outermost call greets every
    /// client its callbacks register (its Policy Manager arrival, then an arrival replay
    /// per hub) before it returns, so a callback that registered a client on every event
    /// it receives would keep that call greeting for ever.
    CallbackRegistrationsSpent {
        /// How many reports and registrations a thread's callbacks may make before its
        /// outermost call has delivered them.
        budget: usize,
    },
    /// The client was not granted the access the call needs (see
    /// [`Event::PolicyManagerArrival`](crate::Event::PolicyManagerArrival)).
    AccessDenied {
        /// The calling client.
        client: ClientHandle,
        /// What the call needs.
        needs: Access,
        /// What the client was granted.
        granted: Access,
    },
    /// The hub handle (or the connector handle's hub) names a presence of the hub whose
    /// removal has been delivered: the hub left, and perhaps arrived again since.
    StaleHubHandle(HubHandle),
    /// A power request for a connector that is not a sink with a partner attached (the
    /// only requests Windows accepts). Nothing was requested.
    PowerRequestRefused {
        /// The connector.
        connector: ConnectorHandle,
        /// Whether a partner is attached.
        attached: bool,
    },
    /// The Policy Manager has been shut down: it accepts no registration, hub or call
    /// any more, except `deregister`.
    PolicyManagerRemoved,
    /// `shutdown` was called from inside a callback: it waits for every client's calls
    /// to return, that callback's among them.
    ShutdownInsideCallback,
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
            Error::TooManyClients { .. }
            | Error::HubQueueFull { .. }
            | Error::CallbackReportsSpent { .. }
            | Error::CallbackRegistrationsSpent { .. } => NtStatus::INSUFFICIENT_RESOURCES,
            Error::AccessDenied { .. } => NtStatus::ACCESS_DENIED,
            Error::StaleHubHandle(_) => NtStatus::INVALID_HANDLE,
            Error::PowerRequestRefused { .. } => NtStatus::INVALID_DEVICE_STATE,
            Error::PolicyManagerRemoved => NtStatus::DEVICE_REMOVED,
            Error::ShutdownInsideCallback => NtStatus::POSSIBLE_DEADLOCK,
        }
    }
}

impl fmt::Display for Error {
    // `HubId`, `ConnectorId` and `ClientHandle` print their own noun ("hub 9",
    // "connector 5", "client 3.1"): a message names them as `{h}`, never "hub {h}".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::UnknownHandle(h) => write!(
                f,
                "{h} was never registered with this Policy Manager; pass the handle that \
                 register returned"
            ),
            Error::StaleHandle(h) => write!(
                f,
                "{h} has already been deregistered; a handle may be deregistered only once \
                 (a later client in its slot was not touched)"
            ),
            Error::DeregisterFromOwnCallback(h) => write!(
                f,
                "deregister({h}) was called from inside {h}'s own callback and would wait \
                 for itself; the client is still registered: return from the callback and \
                 deregister it from another context (or drop its Registration, which then \
                 deregisters without waiting)"
            ),
            Error::WouldDeadlock { target, holding } => {
                write!(f, "deregister({target}) from inside the callback")?;
                for (i, h) in holding.iter().enumerate() {
                    let sep = match i {
                        0 if holding.len() == 1 => " of ",
                        0 => "s of ",
                        _ if i + 1 == holding.len() => " and ",
                        _ => ", ",
                    };
                    write!(f, "{sep}{h}")?;
                }
                write!(
                    f,
                    " would deadlock: {target}'s callbacks are (transitively) waiting for the \
                     calling thread's callbacks to return; {target} is still registered: \
                     deregister it after the callback returns"
                )
            }
            Error::UnknownHub(h) => write!(
                f,
                "{h} is not present (it never arrived, or it has been removed); use a hub \
                 only between its arrival and its removal"
            ),
            Error::HubAlreadyPresent(h) => write!(
                f,
                "{h} is already present and was left as it is; remove it through its \
                 HubPort before it arrives again"
            ),
            Error::UnknownConnector(h, c) => write!(
                f,
                "{h} has no {c}; a hub's connectors are numbered from 0, one per state it \
                 arrived with"
            ),
            Error::TooManyConnectors { hub, connectors } => write!(
                f,
                "{hub} arrived with {connectors} connectors, but a hub has at most \
                 {MAX_CONNECTORS} (connector ids are 8 bits); the hub was not added: \
                 report at most {MAX_CONNECTORS} connectors per hub"
            ),
            Error::TooManyClients { limit } => write!(
                f,
                "no client slot is free: a Policy Manager has {limit} slots, and each is held \
                 by a registered client or retired after {GENERATIONS_PER_SLOT} registrations \
                 through it; the client was not registered: deregister clients that are no \
                 longer needed (or use a new Policy Manager once its slots are retired)"
            ),
            Error::HubQueueFull { hub, capacity } => write!(
                f,
                "{hub}'s queue already holds {capacity} undelivered items, the most a callback \
                 may report into; the change (or the hub's arrival) was not reported: report \
                 it again after the callback returns (a report made outside callbacks waits \
                 for its turn instead)"
            ),
            Error::CallbackReportsSpent { hub, budget } => write!(
                f,
                "this thread's callbacks already made {budget} reports that its outermost \
                 call has not delivered yet, the most they may; the report to {hub} (a change \
                 or the hub's arrival) was not made: make it after the callback returns, or \
                 stop reporting on every event received"
            ),
            Error::CallbackRegistrationsSpent { budget } => write!(
                f,
                "this thread's callbacks already made {budget} reports and registrations \
                 that its outermost call has not delivered yet, the most they may; the \
                 client was not registered: register it after the callback returns, or stop \
                 registering on every event received"
            ),
            Error::AccessDenied {
                client,
                needs,
                granted,
            } => write!(
                f,
                "{client} needs {needs} for this call but was granted {granted}; nothing was \
                 done: request the access in ClientConfig::access and check the grant in \
                 the PolicyManagerArrival event"
            ),
            Error::StaleHubHandle(h) => write!(
                f,
                "{h} has been removed and its removal delivered; its handles are stale: use \
                 the handle of the hub's latest HubArrival"
            ),
            Error::PowerRequestRefused {
                connector,
                attached,
            } => write!(
                f,
                "a power level may be assigned only to a sink connector with a partner \
                 attached, and {connector} {}; nothing was requested",
                if *attached {
                    "is not a sink"
                } else {
                    "has no partner attached"
                }
            ),
            Error::PolicyManagerRemoved => write!(
                f,
                "the Policy Manager has been shut down and accepts no call but deregister; \
                 the client should deregister, then free its context"
            ),
            Error::ShutdownInsideCallback => write!(
                f,
                "shutdown was called from inside a callback and would wait for that callback \
                 to return; nothing was shut down: call it outside callbacks"
            ),
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    /// How many variants `Error` has; `variant` numbers them from 0.
    const VARIANTS: usize = 17;

    /// Each variant's number and the NTSTATUS a driver must see for it. No wildcard arm:
    /// a new variant does not compile until it is listed here (and in `one_of_each`).
    fn variant(e: &Error) -> (usize, NtStatus) {
        match e {
            Error::UnknownHandle(_) => (0, NtStatus::INVALID_HANDLE),
            Error::StaleHandle(_) => (1, NtStatus::INVALID_HANDLE),
            Error::DeregisterFromOwnCallback(_) => (2, NtStatus::POSSIBLE_DEADLOCK),
            Error::WouldDeadlock { .. } => (3, NtStatus::POSSIBLE_DEADLOCK),
            Error::UnknownHub(_) => (4, NtStatus::NOT_FOUND),
            Error::HubAlreadyPresent(_) => (5, NtStatus::OBJECT_NAME_COLLISION),
            Error::UnknownConnector(..) => (6, NtStatus::INVALID_PARAMETER),
            Error::TooManyConnectors { .. } => (7, NtStatus::INVALID_PARAMETER),
            Error::TooManyClients { .. } => (8, NtStatus::INSUFFICIENT_RESOURCES),
            Error::HubQueueFull { .. } => (9, NtStatus::INSUFFICIENT_RESOURCES),
            Error::AccessDenied { .. } => (10, NtStatus::ACCESS_DENIED),
            Error::StaleHubHandle(_) => (11, NtStatus::INVALID_HANDLE),
            Error::PowerRequestRefused { .. } => (12, NtStatus::INVALID_DEVICE_STATE),
            Error::PolicyManagerRemoved => (13, NtStatus::DEVICE_REMOVED),
            Error::ShutdownInsideCallback => (14, NtStatus::POSSIBLE_DEADLOCK),
            Error::CallbackReportsSpent { .. } => (15, NtStatus::INSUFFICIENT_RESOURCES),
            Error::CallbackRegistrationsSpent { .. } => (16, NtStatus::INSUFFICIENT_RESOURCES),
        }
    }

    fn client(slot: u64) -> ClientHandle {
        ClientHandle::from_raw((slot << 16) | 1)
    }

    /// One value of every variant, in `variant` order.
    fn one_of_each() -> Vec<Error> {
        let (hub, a, b, c) = (HubId(9), client(3), client(4), client(5));
        vec![
            Error::UnknownHandle(a),
            Error::StaleHandle(a),
            Error::DeregisterFromOwnCallback(a),
            Error::WouldDeadlock {
                target: a,
                holding: vec![b, c],
            },
            Error::UnknownHub(hub),
            Error::HubAlreadyPresent(hub),
            Error::UnknownConnector(hub, ConnectorId(5)),
            Error::TooManyConnectors {
                hub,
                connectors: 300,
            },
            Error::TooManyClients { limit: 65_536 },
            Error::HubQueueFull { hub, capacity: 64 },
            Error::AccessDenied {
                client: a,
                needs: Access::ASSIGN_POWER,
                granted: Access::QUERY,
            },
            Error::StaleHubHandle(HubHandle {
                id: hub,
                presence: 2,
            }),
            Error::PowerRequestRefused {
                connector: ConnectorHandle {
                    hub: HubHandle {
                        id: hub,
                        presence: 2,
                    },
                    connector: ConnectorId(5),
                },
                attached: false,
            },
            Error::PolicyManagerRemoved,
            Error::ShutdownInsideCallback,
            Error::CallbackReportsSpent { hub, budget: 64 },
            Error::CallbackRegistrationsSpent { budget: 64 },
        ]
    }

    /// The first word that follows itself (case-insensitive), if any.
    fn doubled_word(text: &str) -> Option<&str> {
        let words: Vec<&str> = text
            .split(|c: char| c.is_whitespace() || "(),;:".contains(c))
            .filter(|w| !w.is_empty())
            .collect();
        words
            .windows(2)
            .find(|w| w[0].eq_ignore_ascii_case(w[1]))
            .map(|w| w[0])
    }

    #[test]
    fn one_of_each_has_every_variant_once_in_order() {
        let numbers: Vec<usize> = one_of_each().iter().map(|e| variant(e).0).collect();
        assert_eq!(numbers, (0..VARIANTS).collect::<Vec<_>>());
    }

    #[test]
    fn every_variant_maps_to_its_ntstatus() {
        for e in one_of_each() {
            let (_, status) = variant(&e);
            assert_eq!(e.ntstatus(), status, "{e:?}");
            assert_ne!(status.name(), "STATUS_UNKNOWN", "{e:?}");
        }
    }

    #[test]
    fn every_message_reads_as_a_sentence() {
        for e in one_of_each() {
            let text = e.to_string();
            assert!(!text.is_empty(), "{e:?} renders nothing");
            assert!(
                text.starts_with(|c: char| c.is_lowercase()),
                "{e:?} does not start with a lowercase word: {text}"
            );
            assert_eq!(doubled_word(&text), None, "{e:?}: {text}");
            for doubled in ["hub hub", "connector connector", "client client"] {
                assert!(!text.contains(doubled), "{e:?}: {text}");
            }
            assert!(!text.ends_with(['.', ' ']), "{e:?}: {text}");
        }
    }

    #[test]
    fn messages_name_what_was_refused() {
        let texts: Vec<String> = one_of_each().iter().map(|e| e.to_string()).collect();
        let expect: [&[&str]; VARIANTS] = [
            &["client 3.1", "register"],
            &["client 3.1", "deregistered"],
            &["deregister(client 3.1)", "client 3.1's own callback"],
            &[
                "deregister(client 3.1)",
                "the callbacks of client 4.1 and client 5.1",
                "after the callback returns",
            ],
            &["hub 9 is not present"],
            &["hub 9 is already present"],
            &["hub 9 has no connector 5"],
            &["hub 9 arrived with 300 connectors", "256"],
            &["65536", "65535", "retired", "deregister"],
            &["hub 9's queue", "64"],
            &[
                "client 3.1 needs power-assignment access",
                "granted query access",
            ],
            &["hub 9 (presence 2) has been removed", "stale"],
            &["connector 5 of hub 9 (presence 2) has no partner attached"],
            &["shut down", "deregister"],
            &["shutdown", "inside a callback"],
            &["64 reports", "hub 9", "after the callback returns"],
            &[
                "64 reports and registrations",
                "not registered",
                "after the callback returns",
            ],
        ];
        for (text, parts) in texts.iter().zip(expect) {
            for part in parts {
                assert!(text.contains(part), "{part:?} missing from: {text}");
            }
        }
    }

    #[test]
    fn would_deadlock_lists_the_callbacks_it_is_inside() {
        let one = Error::WouldDeadlock {
            target: client(1),
            holding: vec![client(2)],
        };
        assert!(one
            .to_string()
            .starts_with("deregister(client 1.1) from inside the callback of client 2.1 would"));
        let three = Error::WouldDeadlock {
            target: client(1),
            holding: vec![client(2), client(3), client(4)],
        };
        assert!(three.to_string().contains(
            "inside the callbacks of client 2.1, client 3.1 and client 4.1 would deadlock"
        ));
    }

    #[test]
    fn doubled_word_finds_doubled_words() {
        assert_eq!(doubled_word("no hub hub 9 is present"), Some("hub"));
        assert_eq!(
            doubled_word("hub 9 has no connector Connector 5"),
            Some("connector")
        );
        assert_eq!(
            doubled_word("deregister(client client 1.1)"),
            Some("client")
        );
        assert_eq!(doubled_word("hub 9 has no connector 5"), None);
    }
}

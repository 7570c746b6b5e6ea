//! What the Policy Manager tells its clients: hubs, connectors and their changes.

use std::fmt;

/// Identifies a hub (a USB Type-C connector controller) for its whole presence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HubId(pub u32);

/// Index of a connector within its hub, from 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectorId(pub u8);

/// The most connectors a hub can have: connector ids are 8 bits.
pub(crate) const MAX_CONNECTORS: usize = 1 << u8::BITS;

impl fmt::Display for HubId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "hub {}", self.0)
    }
}

impl fmt::Display for ConnectorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "connector {}", self.0)
    }
}

/// The power role a connector currently plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum PowerRole {
    /// The connector takes power from its partner.
    #[default]
    Sink,
    /// The connector supplies power to its partner.
    Source,
}

/// What a client may do, requested at registration ([`ClientConfig::access`]) and
/// granted with [`Event::PolicyManagerArrival`], as `USBPM_ACCESS_TYPE`.
///
/// [`ClientConfig::access`]: crate::ClientConfig::access
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Access {
    /// Retrieve hub and connector properties and connector states
    /// (`UsbPmAccessQuery`).
    pub query: bool,
    /// Assign connector power levels (`UsbPmAccessAssignConnectorPowerLevel`).
    pub assign_power: bool,
}

impl Access {
    /// Nothing.
    pub const NONE: Access = Access {
        query: false,
        assign_power: false,
    };
    /// The retrieve calls only.
    pub const QUERY: Access = Access {
        query: true,
        assign_power: false,
    };
    /// Power level assignment only.
    pub const ASSIGN_POWER: Access = Access {
        query: false,
        assign_power: true,
    };
    /// Everything (`UsbPmAccessAll`).
    pub const ALL: Access = Access {
        query: true,
        assign_power: true,
    };

    /// What both allow.
    pub fn intersection(self, other: Access) -> Access {
        Access {
            query: self.query && other.query,
            assign_power: self.assign_power && other.assign_power,
        }
    }

    /// Whether `self` allows everything `needed` asks for.
    pub fn allows(self, needed: Access) -> bool {
        self.intersection(needed) == needed
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.query, self.assign_power) {
            (false, false) => write!(f, "no access"),
            (true, false) => write!(f, "query access"),
            (false, true) => write!(f, "power-assignment access"),
            (true, true) => write!(f, "query and power-assignment access"),
        }
    }
}

/// One presence of a hub, as events name it (`USBPM_HUB`): valid from the hub's
/// arrival until its removal has been delivered to every client, so that a client may
/// still retrieve the hub's properties inside its `HubRemoval` callback. A handle of an
/// earlier presence of the same hub id is stale and refused
/// ([`Error::StaleHubHandle`](crate::Error::StaleHubHandle)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HubHandle {
    /// Which hub.
    pub id: HubId,
    /// Which presence of it: its first arrival is 1, each arrival after a removal adds 1.
    pub presence: u32,
}

impl fmt::Display for HubHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (presence {})", self.id, self.presence)
    }
}

/// One connector of one hub presence (`USBPM_CONNECTOR`): stale when its hub
/// handle is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectorHandle {
    /// The hub presence it belongs to.
    pub hub: HubHandle,
    /// Which connector of that hub.
    pub connector: ConnectorId,
}

impl fmt::Display for ConnectorHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} of {}", self.connector, self.hub)
    }
}

/// A connector's static properties (`USBPM_CONNECTOR_PROPERTIES`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnectorProperties {
    /// Its hub presence.
    pub hub: HubHandle,
    /// Its index within the hub.
    pub connector: ConnectorId,
}

/// A power level assigned to a connector by a client, in milliwatts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PowerLevel {
    /// The assigned budget.
    pub milliwatts: u32,
}

/// What the hardware reports about one connector.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct ConnectorState {
    /// A partner is attached.
    pub attached: bool,
    /// The connector's current power role.
    pub power_role: PowerRole,
    /// The most the attached partner advertises it can supply or take, in milliwatts.
    pub partner_max_milliwatts: u32,
}

/// One connector as a client sees it in a query or an arrival.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConnectorInfo {
    /// Which connector of its hub.
    pub connector: ConnectorId,
    /// Its last reported hardware state.
    pub state: ConnectorState,
    /// The power level of the last power request the hardware accepted for the attached
    /// partner; `None` when there is none, and cleared when the partner detaches.
    pub assigned_power: Option<PowerLevel>,
    /// How many times a partner has attached during this hub presence: a different count
    /// between two attached states means a different partner.
    pub attach_count: u32,
}

/// A hub and its connectors as a client sees them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HubInfo {
    /// Which hub.
    pub hub: HubId,
    /// Its connectors, indexed by [`ConnectorId`].
    pub connectors: Vec<ConnectorInfo>,
}

/// What happened: to the Policy Manager, or to a hub.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The Policy Manager is ready for this client, with the access it granted (what the
    /// client requested, as far as the Policy Manager grants it). The first event of
    /// every registration, delivered once, before any hub's event; a client deregistered
    /// before it was delivered never hears it (nor anything else).
    PolicyManagerArrival {
        /// What the client may do.
        access: Access,
    },
    /// The Policy Manager has left ([`PolicyManager::shutdown`]): the last event a
    /// client hears. Delivered to every client that heard its arrival, after every other
    /// call of its callback returned; nothing reaches the client afterwards. The client
    /// is still registered and deregisters as usual.
    ///
    /// [`PolicyManager::shutdown`]: crate::PolicyManager::shutdown
    PolicyManagerRemoval,
    /// The hub is present, in the state shown. Delivered when the hub arrives, and to a
    /// client that registers while the hub is present, before any other event of that hub.
    HubArrival(HubInfo),
    /// A connector's hardware state changed.
    ConnectorStateChange {
        /// Which connector.
        connector: ConnectorId,
        /// Its new state.
        state: ConnectorState,
    },
    /// The hub is gone. Nothing more about this hub reaches the client.
    HubRemoval,
}

/// One event as delivered to a client's callback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    /// The hub presence the event is about, the handle to retrieve its properties with;
    /// `None` for the Policy Manager's own events.
    pub hub: Option<HubHandle>,
    /// The position of the event in the hub's history: the hub's arrival is 0 and each
    /// hardware change adds 1. An arrival replayed to a late-registering client carries
    /// the sequence number of the last change folded into its snapshot, so each client
    /// sees, per hub, an arrival followed by consecutive sequence numbers. 0 for the
    /// Policy Manager's own events.
    pub seq: u64,
    /// What happened.
    pub event: Event,
}

impl Notification {
    /// The handle of the connector a [`Event::ConnectorStateChange`] is about.
    pub fn connector_handle(&self) -> Option<ConnectorHandle> {
        match (&self.event, self.hub) {
            (Event::ConnectorStateChange { connector, .. }, Some(hub)) => Some(ConnectorHandle {
                hub,
                connector: *connector,
            }),
            _ => None,
        }
    }

    /// The id of the hub the event is about; `None` for the Policy Manager's own events.
    pub fn hub_id(&self) -> Option<HubId> {
        self.hub.map(|h| h.id)
    }

    /// Whether this is one of the Policy Manager's own events (its arrival or removal)
    /// rather than a hub's.
    pub fn is_manager_event(&self) -> bool {
        matches!(
            self.event,
            Event::PolicyManagerArrival { .. } | Event::PolicyManagerRemoval
        )
    }
}

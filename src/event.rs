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
    /// The power level a client last assigned to it, if any.
    pub assigned_power: Option<PowerLevel>,
}

/// A hub and its connectors as a client sees them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HubInfo {
    /// Which hub.
    pub hub: HubId,
    /// Its connectors, indexed by [`ConnectorId`].
    pub connectors: Vec<ConnectorInfo>,
}

/// What happened to a hub.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
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
    /// The hub the event is about.
    pub hub: HubId,
    /// The position of the event in the hub's history: the hub's arrival is 0 and each
    /// hardware change adds 1. An arrival replayed to a late-registering client carries
    /// the sequence number of the last change folded into its snapshot, so each client
    /// sees, per hub, an arrival followed by consecutive sequence numbers.
    pub seq: u64,
    /// What happened.
    pub event: Event,
}

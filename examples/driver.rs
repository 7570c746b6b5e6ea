//! A Windows Policy Manager client, end to end, on this library: a client driver's life as
//! Microsoft's walkthrough of `usbpmapi.h` tells it, printed as it happens.
//!
//! 1. `EvtDeviceSelfManagedIoInit`: the driver registers its callback (`UsbPm_Register`),
//!    asking for query and power-assignment access, and waits for `PolicyManagerArrival`
//!    to learn what it was granted. The arrival comes before `register` returns; the
//!    callback knows its own client handle from its first call (`with_handle`).
//! 2. Two hubs arrive, each reported by a hardware thread of its own. In `HubArrival` the
//!    callback retrieves the hub's properties, its connector handles, and each connector's
//!    properties and state, and keeps a local copy.
//! 3. A charger attaches (the connector becomes a sink). From inside the
//!    `ConnectorStateChange` callback the driver assigns it a power level: asynchronous,
//!    `Ok` only means the request went to the hardware. Hub 1's hardware takes the request
//!    (`HubPort::power_requests`) and accepts it: every client hears a
//!    `ConnectorStateChange`, and the state shows the level. Hub 2's partner rejects its
//!    request: nothing is heard. A request for a source connector is refused.
//! 4. Hub 1 is removed; inside `HubRemoval` the callback still retrieves the removed hub to
//!    clean up its local copy. Afterwards the hub's handle is stale.
//! 5. A second client, granted query access only, registers while hub 2 is present: it
//!    hears its Policy Manager arrival, then hub 2's arrival, and is refused power levels.
//! 6. `EvtDeviceSelfManagedIoCleanup`: the driver deregisters (`UsbPm_Deregister`) while a
//!    call of its callback is still running; deregister returns only after that call
//!    returned, and nothing is called afterwards. The library then drops the context,
//!    whose `Drop` prints: the context is freed.
//!
//! Calls of a client's callback are serialized (one at a time, across hubs and threads),
//! as Windows promises, so the callback keeps its state with no lock of its own.
//! Nothing here waits by sleeping: threads wait for each other on channels and barriers.
//!
//! Run it with `cargo run --example driver`. It asserts what it prints, so it fails if the
//! library breaks a promise it shows.

use std::collections::BTreeMap;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Barrier, Mutex, TryLockError};
use std::thread;
use std::time::Duration;

use usbpm::{
    Access, ClientConfig, ClientHandle, ConnectorHandle, ConnectorId, ConnectorInfo,
    ConnectorState, Error, Event, HubHandle, HubId, HubInfo, HubPort, Notification, NtStatus,
    PolicyManager, PowerLevel, PowerRole,
};

/// The power level the driver asks of every charger that attaches.
const LEVEL: PowerLevel = PowerLevel { milliwatts: 15_000 };

/// How long a wait for an event may take before the example decides the library lost it
/// and fails. A guard only: nothing is timed to let something else happen.
const PATIENCE: Duration = Duration::from_secs(10);

/// What the example prints, in the order it happened, from any thread.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn say(&self, who: &str, what: impl Into<String>) {
        let line = format!("{who:<10} {}", what.into());
        println!("{line}");
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(line);
    }

    fn phase(&self, title: &str) {
        println!("\n== {title}");
    }

    /// The line number of the first line containing `needle`.
    fn position(&self, needle: &str) -> usize {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("nothing logged {needle:?}"))
    }
}

/// What the callback tells the driver's other threads (a C driver would set a KEVENT).
#[derive(Debug)]
enum Seen {
    Arrival {
        me: ClientHandle,
        access: Access,
    },
    Hub {
        hub: HubHandle,
        connectors: Vec<ConnectorInfo>,
    },
    Requested(ConnectorHandle),
    Change {
        connector: ConnectorHandle,
        info: ConnectorInfo,
    },
    Removed {
        hub: HubHandle,
        left: HubInfo,
    },
    /// The context's `Drop` ran, after this many calls of the callback.
    Freed {
        calls: usize,
    },
}

/// The driver's end of the channel: waits for one kind of event, keeping the others (two
/// hubs' events interleave) for later waits.
struct Inbox {
    rx: Receiver<Seen>,
    kept: Vec<Seen>,
}

impl Inbox {
    fn wait_for<T>(&mut self, what: &str, mut pick: impl FnMut(&Seen) -> Option<T>) -> T {
        if let Some(i) = self.kept.iter().position(|s| pick(s).is_some()) {
            return pick(&self.kept.remove(i)).expect("picked above");
        }
        loop {
            let seen = match self.rx.recv_timeout(PATIENCE) {
                Ok(seen) => seen,
                Err(RecvTimeoutError::Timeout) => panic!("{what} never came"),
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("the context was freed before {what} came")
                }
            };
            match pick(&seen) {
                Some(found) => return found,
                None => self.kept.push(seen),
            }
        }
    }
}

/// Where the callback stops to let cleanup begin while it runs (phase 6).
#[derive(Clone)]
struct Hold {
    entered: Arc<Barrier>,
    release: Arc<Barrier>,
}

/// The driver's per-device memory, handed to the Policy Manager at registration.
struct DeviceContext {
    name: &'static str,
    log: Log,
    seen: Sender<Seen>,
    hold: Hold,
    /// What the callback keeps between calls. Calls are serialized, so it is never
    /// contended: the callback takes it with `try_lock`, which never waits, and a second
    /// call at once would find it taken and fail the example. (Rust asks the context to be
    /// `Sync`; a C driver would use plain fields.)
    local: Mutex<Local>,
}

#[derive(Default)]
struct Local {
    calls: usize,
    granted: Access,
    /// The local copy of every connector of every present hub.
    connectors: BTreeMap<ConnectorHandle, ConnectorInfo>,
}

impl DeviceContext {
    fn tell(&self, seen: Seen) {
        // The driver's thread may be gone only if the example already failed.
        let _ = self.seen.send(seen);
    }
}

/// Freeing the context: the library drops it after the last call of the callback returned,
/// at the earliest when deregister is called.
impl Drop for DeviceContext {
    fn drop(&mut self) {
        let local = self.local.get_mut().unwrap_or_else(|p| p.into_inner());
        self.log.say(
            "context",
            format!(
                "{} context dropped (freed) after {} calls; its local copy held {}",
                self.name,
                local.calls,
                connectors(local.connectors.len())
            ),
        );
        let calls = local.calls;
        self.tell(Seen::Freed { calls });
    }
}

fn connectors(n: usize) -> String {
    format!("{n} connector{}", if n == 1 { "" } else { "s" })
}

fn describe(c: &ConnectorInfo) -> String {
    if !c.state.attached {
        return "nothing attached".into();
    }
    let role = match c.state.power_role {
        PowerRole::Sink => "sink, the partner offers",
        PowerRole::Source => "source, the partner takes",
    };
    let level = match c.assigned_power {
        Some(level) => format!("power level {} mW", level.milliwatts),
        None => "no power level".into(),
    };
    format!(
        "attached (partner #{}), {role} up to {} mW, {level}",
        c.attach_count, c.state.partner_max_milliwatts
    )
}

/// The driver's `EVT_USBPM_EVENT_CALLBACK`.
fn on_event(ctx: &DeviceContext, pm: &PolicyManager, me: ClientHandle, n: &Notification) {
    let log = &ctx.log;
    let mut local = match ctx.local.try_lock() {
        Ok(local) => local,
        // A failed assertion in an earlier call: that call's report is the one to read.
        Err(TryLockError::Poisoned(p)) => p.into_inner(),
        Err(TryLockError::WouldBlock) => panic!("two calls of the callback at once"),
    };
    local.calls += 1;
    match &n.event {
        Event::PolicyManagerArrival { access } => {
            log.say(
                "callback",
                format!("PolicyManagerArrival: {me} is granted {access}"),
            );
            local.granted = *access;
            ctx.tell(Seen::Arrival {
                me,
                access: *access,
            });
        }
        Event::HubArrival(_) => {
            let hub = n.hub.expect("a hub's event names the hub");
            let props = pm
                .hub_properties(me, hub)
                .expect("UsbPm_RetrieveHubProperties");
            log.say(
                "callback",
                format!(
                    "HubArrival: {hub} with {}",
                    connectors(props.connectors.len())
                ),
            );
            let handles = pm
                .hub_connectors(me, hub)
                .expect("UsbPm_RetrieveHubConnectorHandles");
            assert_eq!(handles.len(), props.connectors.len());
            let mut connectors = Vec::new();
            for handle in handles {
                let p = pm
                    .connector_properties(me, handle)
                    .expect("UsbPm_RetrieveConnectorProperties");
                assert_eq!((p.hub, p.connector), (hub, handle.connector));
                let info = pm
                    .connector_state(me, handle)
                    .expect("UsbPm_RetrieveConnectorState");
                log.say(
                    "callback",
                    format!("  {}: {}", handle.connector, describe(&info)),
                );
                local.connectors.insert(handle, info.clone());
                connectors.push(info);
            }
            ctx.tell(Seen::Hub { hub, connectors });
        }
        Event::ConnectorStateChange { .. } => {
            let handle = n.connector_handle().expect("a connector's event");
            let info = pm
                .connector_state(me, handle)
                .expect("UsbPm_RetrieveConnectorState");
            log.say(
                "callback",
                format!(
                    "ConnectorStateChange (seq {}): {handle}: {}",
                    n.seq,
                    describe(&info)
                ),
            );
            let before = local
                .connectors
                .insert(handle, info.clone())
                .expect("known since its hub's arrival");
            if info.assigned_power.is_some() && info.assigned_power != before.assigned_power {
                log.say("callback", "  our power request took effect");
            }
            // The driver's policy: ask every newly attached charger for LEVEL.
            let new_partner = info.state.attached && info.attach_count != before.attach_count;
            if new_partner
                && info.state.power_role == PowerRole::Sink
                && local.granted.allows(Access::ASSIGN_POWER)
            {
                pm.assign_power_level(me, handle, LEVEL)
                    .expect("UsbPm_AssignConnectorPowerLevel");
                log.say(
                    "callback",
                    format!(
                        "  UsbPm_AssignConnectorPowerLevel({} mW): accepted for the hardware, \
                         the outcome comes as a ConnectorStateChange",
                        LEVEL.milliwatts
                    ),
                );
                ctx.tell(Seen::Requested(handle));
            }
            let held = handle.hub.id == HubId(2) && !info.state.attached;
            ctx.tell(Seen::Change {
                connector: handle,
                info,
            });
            if held {
                log.say(
                    "callback",
                    "  ... still busy with it (cleanup may begin now)",
                );
                ctx.hold.entered.wait();
                ctx.hold.release.wait();
                log.say("callback", format!("returns from {handle} seq {}", n.seq));
            }
        }
        Event::HubRemoval => {
            let hub = n.hub.expect("a hub's event names the hub");
            // The removed hub is still retrievable here, as it was when it left.
            let left = pm
                .hub_properties(me, hub)
                .expect("a hub is retrievable inside its HubRemoval");
            log.say(
                "callback",
                format!("HubRemoval: {hub}; cleaning up, it left as:"),
            );
            for c in &left.connectors {
                log.say("callback", format!("  {}: {}", c.connector, describe(c)));
            }
            local.connectors.retain(|c, _| c.hub != hub);
            ctx.tell(Seen::Removed { hub, left });
        }
        Event::PolicyManagerRemoval => {
            log.say("callback", "PolicyManagerRemoval: no event follows");
        }
    }
}

/// EvtDeviceSelfManagedIoInit: allocate the context, register the callback.
fn self_managed_io_init(
    pm: &PolicyManager,
    log: &Log,
    seen: Sender<Seen>,
    hold: Hold,
) -> Result<ClientHandle, Error> {
    let context = DeviceContext {
        name: "UcmDemo",
        log: log.clone(),
        seen,
        hold,
        local: Mutex::default(),
    };
    log.say(
        "driver",
        "EvtDeviceSelfManagedIoInit: UsbPm_Register, asking for all access",
    );
    let handle = pm.register(ClientConfig::with_handle(context, on_event).access(Access::ALL))?;
    log.say("driver", format!("register returned {handle}"));
    Ok(handle)
}

fn charger(offers: u32) -> ConnectorState {
    ConnectorState {
        attached: true,
        power_role: PowerRole::Sink,
        partner_max_milliwatts: offers,
    }
}

/// The one power request a hub's connector change made the callback send.
fn take_request(port: &HubPort, who: &str, log: &Log, answer: &str) -> usbpm::PowerRequest {
    let requests = port.power_requests();
    assert_eq!(requests.len(), 1, "one request per charger: {requests:?}");
    let request = requests.into_iter().next().expect("one");
    assert_eq!(request.level, LEVEL);
    log.say(
        who,
        format!(
            "power request from {} for {}: {} mW; {answer}",
            request.client, request.connector, request.level.milliwatts
        ),
    );
    request
}

/// A hub's hardware arrives with `connectors` connectors, nothing attached; a charger
/// offering `offer_mw` attaches to connector 0, and the power request a client's callback
/// makes for it is answered: accepted (reported to the clients as a change) or rejected
/// (reported to nobody).
fn charger_answers(
    pm: &PolicyManager,
    log: &Log,
    who: &str,
    hub: HubId,
    connectors: usize,
    offer_mw: u32,
    accept: bool,
) -> HubPort {
    log.say(
        who,
        format!("{hub} arrives with {connectors} connector(s), nothing attached"),
    );
    let port = pm
        .hub_arrival(hub, vec![ConnectorState::default(); connectors])
        .expect("a new hub");
    log.say(
        who,
        format!("connector 0: a charger attaches (offers up to {offer_mw} mW)"),
    );
    port.connector_changed(ConnectorId(0), charger(offer_mw))
        .expect("the hub is present");
    // connector_changed returned once the change was delivered, so the request the
    // callback made is here.
    let answer = if accept {
        "the partner accepts"
    } else {
        "the partner rejects it"
    };
    let request = take_request(&port, who, log, answer);
    let reported = port
        .answer(request, accept)
        .expect("answered outside callbacks");
    assert_eq!(
        reported, accept,
        "an accepted request is reported to the clients, a rejected one to nobody"
    );
    port
}

/// Hub 1's hardware: a charger on connector 0, whose power request it accepts, then a
/// phone (which takes power) on connector 1.
fn hub1_hardware(pm: PolicyManager, log: Log) -> HubPort {
    let who = "hardware 1";
    let port = charger_answers(&pm, &log, who, HubId(1), 2, 27_000, true);
    log.say(
        who,
        "connector 1: a phone attaches (the connector is a source; takes up to 15000 mW)",
    );
    let phone = ConnectorState {
        attached: true,
        power_role: PowerRole::Source,
        partner_max_milliwatts: 15_000,
    };
    port.connector_changed(ConnectorId(1), phone)
        .expect("the hub is present");
    port
}

/// Hub 2's hardware: a charger on connector 0, which rejects the power request.
fn hub2_hardware(pm: PolicyManager, log: Log) -> HubPort {
    charger_answers(&pm, &log, "hardware 2", HubId(2), 1, 45_000, false)
}

/// What the query-only client's callback saw.
enum ObserverSaw {
    Arrival(Access),
    Hub(HubHandle, HubInfo, Error),
}

/// A second client, granted query access only: it hears the Policy Manager's arrival and
/// the arrival of every hub present, and may not assign power levels.
fn query_only_client(pm: &PolicyManager, log: &Log) -> ClientHandle {
    let (tx, rx) = mpsc::channel();
    let config =
        ClientConfig::with_handle((tx, log.clone()), |(tx, log), pm, me, n| match &n.event {
            Event::PolicyManagerArrival { access } => {
                log.say(
                    "observer",
                    format!("PolicyManagerArrival: {me} is granted {access}"),
                );
                let _ = tx.send(ObserverSaw::Arrival(*access));
            }
            Event::HubArrival(_) => {
                let hub = n.hub.expect("a hub's event names the hub");
                let info = pm.hub_properties(me, hub).expect("query access suffices");
                log.say(
                    "observer",
                    format!(
                        "HubArrival: {hub}: connector 0 {}",
                        describe(&info.connectors[0])
                    ),
                );
                let connector = ConnectorHandle {
                    hub,
                    connector: ConnectorId(0),
                };
                let err = pm
                    .assign_power_level(me, connector, LEVEL)
                    .expect_err("query access does not allow assigning power");
                log.say(
                    "observer",
                    format!("  UsbPm_AssignConnectorPowerLevel: {}", err.ntstatus()),
                );
                let _ = tx.send(ObserverSaw::Hub(hub, info, err));
            }
            _ => {}
        });
    log.say(
        "main",
        "a second client registers, asking for query access only",
    );
    let observer = pm
        .register(config.access(Access::QUERY))
        .expect("a client slot is free");
    // Registered outside callbacks: its arrivals were delivered before register returned.
    let saw: Vec<ObserverSaw> = rx.try_iter().collect();
    let [ObserverSaw::Arrival(access), ObserverSaw::Hub(hub, info, err)] = &saw[..] else {
        panic!("the observer hears its arrival, then hub 2's, and nothing else");
    };
    assert_eq!(*access, Access::QUERY);
    assert_eq!(hub.id, HubId(2));
    assert!(info.connectors[0].state.attached);
    assert_eq!(
        *err,
        Error::AccessDenied {
            client: observer,
            needs: Access::ASSIGN_POWER,
            granted: Access::QUERY,
        }
    );
    assert_eq!(err.ntstatus(), NtStatus::ACCESS_DENIED);
    pm.deregister(observer).expect("registered");
    log.say("main", format!("{observer} deregistered"));
    observer
}

/// EvtDeviceSelfManagedIoCleanup: deregister; the context goes once no call can use it.
fn self_managed_io_cleanup(
    pm: &PolicyManager,
    log: &Log,
    handle: ClientHandle,
    calling: Sender<()>,
) {
    log.say(
        "driver",
        "EvtDeviceSelfManagedIoCleanup: UsbPm_Deregister ...",
    );
    let _ = calling.send(());
    pm.deregister(handle)
        .expect("deregister of a registered client succeeds");
    log.say(
        "driver",
        "deregister returned: no call of the callback is running, none will begin",
    );
}

fn main() {
    let pm = PolicyManager::new();
    let log = Log::default();
    let (seen_tx, seen_rx) = mpsc::channel();
    let mut inbox = Inbox {
        rx: seen_rx,
        kept: Vec::new(),
    };
    let hold = Hold {
        entered: Arc::new(Barrier::new(2)),
        release: Arc::new(Barrier::new(2)),
    };

    log.phase("1. Register, then wait for PolicyManagerArrival");
    // A driver fails EvtDeviceSelfManagedIoInit with the error's NTSTATUS.
    let client = self_managed_io_init(&pm, &log, seen_tx, hold.clone())
        .unwrap_or_else(|e| panic!("UsbPm_Register failed with {}: {e}", e.ntstatus()));
    let (me, access) = inbox.wait_for("PolicyManagerArrival", |s| match s {
        Seen::Arrival { me, access } => Some((*me, *access)),
        _ => None,
    });
    assert_eq!(me, client, "the callback knew the handle register returns");
    assert_eq!(access, Access::ALL);
    log.say(
        "driver",
        format!("PolicyManagerArrival came: {access}, as asked"),
    );

    log.phase("2-3. Two hubs arrive on two hardware threads; chargers attach; power requests");
    let hub1 = thread::spawn({
        let (pm, log) = (pm.clone(), log.clone());
        move || hub1_hardware(pm, log)
    });
    let hub2 = thread::spawn({
        let (pm, log) = (pm.clone(), log.clone());
        move || hub2_hardware(pm, log)
    });
    let mut arrived = |id: HubId| {
        inbox.wait_for("a hub's arrival", |s| match s {
            Seen::Hub { hub, connectors } if hub.id == id => Some((*hub, connectors.clone())),
            _ => None,
        })
    };
    let (h1, connectors1) = arrived(HubId(1));
    let (h2, connectors2) = arrived(HubId(2));
    assert_eq!((connectors1.len(), connectors2.len()), (2, 1));
    assert!(connectors1
        .iter()
        .chain(&connectors2)
        .all(|c| !c.state.attached && c.assigned_power.is_none()));
    let charged = ConnectorHandle {
        hub: h1,
        connector: ConnectorId(0),
    };
    inbox.wait_for("the callback's power request", |s| {
        matches!(s, Seen::Requested(c) if *c == charged).then_some(())
    });
    let info = inbox.wait_for("the power level taking effect", |s| match s {
        Seen::Change { connector, info }
            if *connector == charged && info.assigned_power.is_some() =>
        {
            Some(info.clone())
        }
        _ => None,
    });
    assert_eq!(info.assigned_power, Some(LEVEL));
    log.say(
        "driver",
        format!("{charged} now runs at {} mW", LEVEL.milliwatts),
    );
    let port1 = hub1.join().expect("hub 1's hardware thread");
    let port2 = hub2.join().expect("hub 2's hardware thread");
    let rejected = ConnectorHandle {
        hub: h2,
        connector: ConnectorId(0),
    };
    let state = pm
        .connector_state(client, rejected)
        .expect("UsbPm_RetrieveConnectorState");
    assert!(state.state.attached && state.assigned_power.is_none());
    log.say(
        "driver",
        format!(
            "{rejected}: the partner rejected the level, nothing was heard: {}",
            describe(&state)
        ),
    );
    let phone = ConnectorHandle {
        hub: h1,
        connector: ConnectorId(1),
    };
    let err = pm
        .assign_power_level(client, phone, LEVEL)
        .expect_err("a source connector takes no power level");
    assert_eq!(
        err,
        Error::PowerRequestRefused {
            connector: phone,
            attached: true
        }
    );
    assert_eq!(err.ntstatus(), NtStatus::INVALID_DEVICE_STATE);
    assert!(
        port1.power_requests().is_empty(),
        "a refused request reaches no hardware"
    );
    log.say(
        "driver",
        format!(
            "UsbPm_AssignConnectorPowerLevel for {phone}: {}",
            err.ntstatus()
        ),
    );

    log.phase("4. Hub 1 is removed: the HubRemoval callback still retrieves it");
    log.say("hardware 1", "hub 1 is unplugged");
    port1.remove();
    let (hub, left) = inbox.wait_for("hub 1's removal", |s| match s {
        Seen::Removed { hub, left } => Some((*hub, left.clone())),
        _ => None,
    });
    assert_eq!(hub, h1);
    assert_eq!(left.connectors[0].assigned_power, Some(LEVEL));
    assert_eq!(left.connectors[1].state.power_role, PowerRole::Source);
    let err = pm
        .hub_properties(client, h1)
        .expect_err("a removed hub's handle is stale once its removal is delivered");
    assert_eq!(err, Error::StaleHubHandle(h1));
    assert_eq!(err.ntstatus(), NtStatus::INVALID_HANDLE);
    log.say(
        "driver",
        format!(
            "after the removal, UsbPm_RetrieveHubProperties({h1}): {}",
            err.ntstatus()
        ),
    );

    log.phase("5. A client granted query access only");
    query_only_client(&pm, &log);

    log.phase("6. Deregister while a call of the callback runs; then the context is freed");
    let hardware = thread::spawn({
        let log = log.clone();
        move || {
            log.say("hardware 2", "connector 0: the charger detaches");
            port2
                .connector_changed(ConnectorId(0), ConnectorState::default())
                .expect("the hub is present");
            port2
        }
    });
    // Cleanup begins while the callback is inside the detach; the callback is let go once
    // cleanup is about to deregister, and deregister returns only after it returned (if
    // the call returns before deregister even begins, that order holds all the more).
    hold.entered.wait();
    let (calling_tx, calling) = mpsc::channel();
    let cleanup = thread::spawn({
        let (pm, log) = (pm.clone(), log.clone());
        move || self_managed_io_cleanup(&pm, &log, client, calling_tx)
    });
    calling.recv().expect("cleanup starts");
    log.say(
        "main",
        "cleanup is deregistering: letting the callback finish",
    );
    hold.release.wait();
    cleanup.join().expect("cleanup completes");
    let port2 = hardware.join().expect("hub 2's hardware thread");
    assert_eq!(pm.client_count(), 0);

    log.say(
        "hardware 2",
        "connector 0: a charger attaches again (no client is registered)",
    );
    port2
        .connector_changed(ConnectorId(0), charger(45_000))
        .expect("the hub is present");
    assert!(
        port2.power_requests().is_empty(),
        "no callback ran, so nobody asked"
    );
    log.say("hardware 2", "hub 2 is unplugged");
    port2.remove();
    let calls = inbox.wait_for("the context's drop", |s| match s {
        Seen::Freed { calls } => Some(*calls),
        _ => None,
    });
    // Its arrival, 2 hub arrivals, 4 changes (3 attaches, 1 level), hub 1's removal, and
    // the detach running at deregister: nothing after deregister.
    assert_eq!(calls, 9, "every event once, none after deregister");
    assert_eq!(pm.panicked_callbacks(), 0);

    let returned = log.position("returns from");
    let deregistered = log.position("deregister returned");
    let freed = log.position("context dropped");
    assert!(
        returned < deregistered,
        "deregister returned before the running call did"
    );
    assert!(returned < freed, "the context went while a call ran");
    println!(
        "\nThe running call returned before deregister did, and the context was freed after \
         it: no call of the callback could touch the freed context."
    );
}

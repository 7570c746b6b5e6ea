//! One execution's world: a Policy Manager built with the gate's hooks, the monitor that
//! judges it, and model clients whose context behaves like a C driver's.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use usbpm::checking::{Mutant, Probe};
use usbpm::{
    Access, ClientConfig, ClientHandle, ConnectorId, ConnectorState, Error, Event, HubId, HubPort,
    Notification, PolicyManager,
};

use crate::judge::monitor::{DriverContext, Monitor, Property};

/// What a model callback does besides reporting itself: the re-entrant calls under test.
/// It receives the client's own handle and every hub event (the Policy Manager's own
/// events are only reported and judged: M1, M2).
pub type Action = fn(&Context, &PolicyManager, ClientHandle, &Notification);

/// A callback that only reports itself.
pub fn no_action(_: &Context, _: &PolicyManager, _: ClientHandle, _: &Notification) {}

pub use crate::base::panics::{silence_model_panics, ModelPanic};

/// A model client's context: the memory a driver frees once `deregister` returns.
///
/// `freed` is the checker's atomic on purpose: the callback's touches of it at its begin
/// and end are scheduling points, so the checkers can preempt a callback in the middle,
/// as a real callback doing work can be. Without them a callback would run atomically
/// between the library's count operations and shuttle could never see one in flight.
pub struct Context {
    pub label: &'static str,
    driver: DriverContext,
    pub monitor: Arc<Monitor>,
    pub directory: Arc<Directory>,
    action: Action,
}

impl Context {
    /// The callback uses its context: a use after free if the driver already freed it.
    fn touch(&self, when: &str, n: &Notification) {
        self.driver.touch(&self.monitor, when, n);
    }

    /// The driver frees the context (after `deregister` returned `Ok`).
    fn free(&self) {
        self.driver.free(&self.monitor);
    }
}

/// Ends a callback's report even when its action panics.
struct EndOnDrop<'a>(&'a Context, &'a Notification);

impl Drop for EndOnDrop<'_> {
    fn drop(&mut self) {
        self.0.monitor.callback_end(self.0.label, self.1);
    }
}

fn model_callback(ctx: &Arc<Context>, pm: &PolicyManager, me: ClientHandle, n: &Notification) {
    if n.is_manager_event() {
        if let Event::PolicyManagerArrival { access } = n.event {
            ctx.monitor.granted(me, access);
        }
        ctx.monitor.callback_begin(ctx.label, n);
        let _end = EndOnDrop(ctx, n);
        ctx.touch("at", n);
        return;
    }
    // A scheduling point on entry: the checker may preempt the callback before it has
    // done anything, as a real thread can be. (Generated programs also make every judged
    // event a checker-visible conflict, `exec::World::judged_point`; the scenarios do not
    // need it: their begin, end and deregister return are ordered against each other by
    // the rundown word's read-modify-writes, which loom does see, since no scenario drops
    // a guard without waiting. It would cost two-dispatchers-vs-deregister 3.6 times the
    // interleavings: 1,048,572 instead of 290,714.)
    ctx.touch("on entry to", n);
    ctx.monitor.callback_begin(ctx.label, n);
    let _end = EndOnDrop(ctx, n);
    ctx.touch("at begin of", n);
    (ctx.action)(ctx, pm, me, n);
    ctx.touch("at end of", n);
}

/// Model clients by label, so callbacks can name each other. Cleared at the end of the
/// execution (it holds contexts, which hold it).
#[derive(Default)]
pub struct Directory {
    clients: Mutex<BTreeMap<&'static str, (ClientHandle, Arc<Context>)>>,
    /// A hub's port left for a callback to take (a callback that removes its hub and adds
    /// it again).
    pub port: Mutex<Option<HubPort>>,
    /// A hub's port shared with callbacks (a callback that reports to its hub).
    pub shared_port: Mutex<Option<Arc<HubPort>>>,
    /// Labels taken so far by callbacks that register clients (each label once, even
    /// when callbacks of two clients pick one at the same time). Bookkeeping of the
    /// scenario, not of the library: a std atomic, which the checkers do not schedule.
    pub labels_taken: std::sync::atomic::AtomicUsize,
}

impl Directory {
    pub fn handle(&self, label: &str) -> Option<ClientHandle> {
        self.clients.lock().unwrap().get(label).map(|(h, _)| *h)
    }

    fn context(&self, label: &str) -> Option<Arc<Context>> {
        self.clients
            .lock()
            .unwrap()
            .get(label)
            .map(|(_, c)| c.clone())
    }
}

/// Registers a model client `label` with `pm` and reports it (usable from callbacks).
pub fn register(
    ctx_monitor: &Arc<Monitor>,
    dir: &Arc<Directory>,
    pm: &PolicyManager,
    label: &'static str,
    action: Action,
) -> ClientHandle {
    register_with(ctx_monitor, dir, pm, label, action, Access::ALL)
}

/// [`register`] asking for `access`.
pub fn register_with(
    ctx_monitor: &Arc<Monitor>,
    dir: &Arc<Directory>,
    pm: &PolicyManager,
    label: &'static str,
    action: Action,
    access: Access,
) -> ClientHandle {
    // Scenarios register a few clients, far below the limit: a refusal is a library bug,
    // and the panic (not a model panic, so not contained in a callback) fails the run.
    try_register(ctx_monitor, dir, pm, label, action, access)
        .expect("register refused a scenario's client (far below the limit)")
}

/// [`register_with`] that returns a refusal (the scenario judges it) instead of failing.
pub fn try_register(
    ctx_monitor: &Arc<Monitor>,
    dir: &Arc<Directory>,
    pm: &PolicyManager,
    label: &'static str,
    action: Action,
    access: Access,
) -> Result<ClientHandle, Error> {
    let ctx = Arc::new(Context {
        label,
        driver: DriverContext::new(label),
        monitor: ctx_monitor.clone(),
        directory: dir.clone(),
        action,
    });
    let handle =
        pm.register(ClientConfig::with_handle(ctx.clone(), model_callback).access(access))?;
    dir.clients.lock().unwrap().insert(label, (handle, ctx));
    ctx_monitor.registered(label, handle);
    Ok(handle)
}

/// Deregisters model client `label` and reports the result; frees its context on `Ok`.
pub fn deregister(
    monitor: &Monitor,
    dir: &Directory,
    pm: &PolicyManager,
    label: &'static str,
) -> Result<(), Error> {
    let handle = dir
        .handle(label)
        .expect("deregister of a client the scenario registered");
    monitor.deregister_called(label);
    let result = pm.deregister(handle);
    monitor.deregister_returned(label, &result);
    if result.is_ok() {
        if let Some(ctx) = dir.context(label) {
            ctx.free();
        }
    }
    result
}

/// One execution of one scenario.
pub struct Env {
    pub pm: PolicyManager,
    pub monitor: Arc<Monitor>,
    pub directory: Arc<Directory>,
    mutant: Option<Mutant>,
}

impl Env {
    pub fn new(mutant: Option<Mutant>) -> Self {
        silence_model_panics();
        let monitor = Monitor::new();
        let probe: Arc<dyn Probe> = monitor.clone();
        Env {
            pm: PolicyManager::checking(mutant, Some(probe)),
            monitor,
            directory: Arc::default(),
            mutant,
        }
    }

    /// The same execution's world with a Policy Manager of these limits, queue capacity
    /// and callbacks' budget of reports (the scenario uses it instead of `pm`, before
    /// anything happened).
    pub fn with_limits(&self, queue_capacity: usize, callback_reports: usize) -> Env {
        let probe: Arc<dyn Probe> = self.monitor.clone();
        let n = |v| std::num::NonZeroUsize::new(v).expect("a limit of at least 1");
        let limits = usbpm::Limits {
            queue_capacity: n(queue_capacity),
            callback_reports: n(callback_reports),
        };
        let pm = PolicyManager::checking_with_limits(self.mutant, Some(probe), limits);
        self.monitor.set_limits(limits);
        Env {
            pm,
            monitor: self.monitor.clone(),
            directory: self.directory.clone(),
            mutant: self.mutant,
        }
    }

    pub fn register(&self, label: &'static str, action: Action) -> ClientHandle {
        register(&self.monitor, &self.directory, &self.pm, label, action)
    }

    /// Registers `label` asking for `access` only.
    pub fn register_with(
        &self,
        label: &'static str,
        action: Action,
        access: Access,
    ) -> ClientHandle {
        register_with(
            &self.monitor,
            &self.directory,
            &self.pm,
            label,
            action,
            access,
        )
    }

    pub fn deregister(&self, label: &'static str) -> Result<(), Error> {
        deregister(&self.monitor, &self.directory, &self.pm, label)
    }

    /// Deregisters `label` expecting `Ok`; anything else violates P4.
    pub fn deregister_ok(&self, label: &'static str) {
        let r = self.deregister(label);
        self.monitor.check(Property::BadInputErrors, r.is_ok(), || {
            format!("deregister({label}) of a registered client returned {r:?}")
        });
    }

    /// A hub with one connector. Its arrival is delivered before this returns unless
    /// another thread is already draining that hub's queue (then by that thread).
    pub fn hub(&self, id: u32) -> HubPort {
        self.monitor.note(format!("hub {id} arrives"));
        self.pm
            .hub_arrival(HubId(id), vec![ConnectorState::default()])
            .expect("a new hub id")
    }

    /// A view of the monitor and directory that a spawned thread can own.
    pub fn handle(&self) -> EnvHandle {
        EnvHandle {
            pm: self.pm.clone(),
            monitor: self.monitor.clone(),
            directory: self.directory.clone(),
        }
    }

    /// Judges the execution: fails it (panics) with the timeline if anything was violated.
    pub fn finish(self, replay: &str) {
        let Env {
            pm,
            monitor,
            directory,
            ..
        } = self;
        directory.clients.lock().unwrap().clear();
        drop(directory.port.lock().unwrap().take());
        drop(directory.shared_port.lock().unwrap().take());
        drop(pm);
        monitor.finish(replay);
    }
}

/// What a scenario's spawned thread holds: the same Policy Manager, monitor and directory.
#[derive(Clone)]
pub struct EnvHandle {
    pub pm: PolicyManager,
    pub monitor: Arc<Monitor>,
    pub directory: Arc<Directory>,
}

impl EnvHandle {
    pub fn register(&self, label: &'static str, action: Action) -> ClientHandle {
        register(&self.monitor, &self.directory, &self.pm, label, action)
    }

    pub fn deregister(&self, label: &'static str) -> Result<(), Error> {
        deregister(&self.monitor, &self.directory, &self.pm, label)
    }
}

/// A connector change that attaches (`on`) or detaches connector 0.
pub fn flip(port: &HubPort, on: bool) {
    port.connector_changed(
        ConnectorId(0),
        ConnectorState {
            attached: on,
            ..Default::default()
        },
    )
    .expect("connector 0 of a present hub");
}

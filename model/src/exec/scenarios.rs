//! The scenarios every checker runs. Each is a plain function over an [`Env`]: it spawns
//! the checker's threads, drives the shipped library, reports to the monitor and makes
//! its own end-of-run checks. Thread counts include the scenario's main thread.

use std::sync::atomic::Ordering::SeqCst;

use usbpm::{
    ClientConfig, ClientHandle, Detached, Error, Event, HubId, HubPort, Notification,
    PolicyManager, Registration,
};

use crate::base::rt::thread::{yield_now, JoinHandle};
use crate::base::rt::{spawn, AtomicBool};
use crate::exec::env::{self, flip, no_action, Action, Context, Env, ModelPanic};
use crate::judge::monitor::{DriverContext, Property};

/// Small scenarios fit loom; large ones are only sampled by shuttle and std.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Size {
    Small,
    Large,
}

pub struct Scenario {
    pub name: &'static str,
    pub about: &'static str,
    pub threads: usize,
    pub size: Size,
    pub properties: &'static [Property],
    pub run: fn(&Env),
}

use Property::*;

pub const ALL: &[Scenario] = &[
    Scenario {
        name: "dispatch-vs-deregister",
        about: "one hub's dispatcher delivers a change while main deregisters the only client",
        threads: 2,
        size: Size::Small,
        properties: &[NoCallbackAfterDeregister, DeregisterWaits, NoDeadlock, BoundedWork, ContextDiesOutside],
        run: dispatch_vs_deregister,
    },
    Scenario {
        name: "two-dispatchers-vs-deregister",
        about: "two hubs' dispatchers deliver concurrently while main deregisters the client",
        threads: 3,
        size: Size::Small,
        properties: &[NoCallbackAfterDeregister, DeregisterWaits, NoDeadlock, BoundedWork, OneCallAtATime, ContextDiesOutside],
        run: two_dispatchers_vs_deregister,
    },
    Scenario {
        name: "three-dispatchers-vs-deregister",
        about: "three hubs' dispatchers deliver concurrently while main deregisters the client",
        threads: 4,
        size: Size::Small,
        properties: &[NoCallbackAfterDeregister, DeregisterWaits, NoDeadlock, BoundedWork, OneCallAtATime, ContextDiesOutside],
        run: three_dispatchers_vs_deregister,
    },
    Scenario {
        name: "register-vs-dispatch",
        about: "a client registers while one hub delivers a change and another hub arrives (arrival replay)",
        threads: 3,
        size: Size::Small,
        properties: &[HubOrder, NoDeadlock, BoundedWork, OneCallAtATime],
        run: register_vs_dispatch,
    },
    Scenario {
        name: "reentrant-callback",
        about: "a callback retrieves its hub and a connector state, registers a client and deregisters another, while main deregisters it",
        threads: 2,
        size: Size::Small,
        properties: &[NoCallbackAfterDeregister, DeregisterWaits, NoDeadlock, BadInputErrors, HubOrder],
        run: reentrant_callback,
    },
    Scenario {
        name: "deregister-own-callback",
        about: "a callback deregisters its own client (refused) while main deregisters it (waits)",
        threads: 2,
        size: Size::Small,
        properties: &[BadInputErrors, NoDeadlock, DeregisterWaits],
        run: deregister_own_callback,
    },
    Scenario {
        name: "mutual-deregister",
        about: "on two hubs' threads (hub 1 lists A first, hub 2 lists B first), A's callback deregisters B while B's deregisters A",
        threads: 3,
        size: Size::Small,
        properties: &[NoDeadlock, BadInputErrors, NoCallbackAfterDeregister, DeregisterWaits, OneCallAtATime],
        run: mutual_deregister,
    },
    Scenario {
        name: "detach-own-callback",
        about: "A's callback detaches its own registration (hubs 1 and 2 report at once) and keeps using its context; main waits for the detach's completion, then frees the context",
        threads: 3,
        size: Size::Small,
        properties: &[NoCallbackAfterDeregister, DeregisterWaits, NoDeadlock, OneCallAtATime],
        run: detach_own_callback,
    },
    Scenario {
        name: "greeting-vs-arrival",
        about: "A registers while hub 1 delivers a change and hub 2 arrives; A's callback registers B (its greeting owed to the outermost call)",
        threads: 3,
        size: Size::Small,
        properties: &[ArrivalFirst, HubOrder, NoDeadlock, OneCallAtATime],
        run: greeting_vs_arrival,
    },
    Scenario {
        name: "shutdown-vs-dispatch",
        about: "main shuts the Policy Manager down while hub 1 delivers a change and a thread deregisters B; a change after the shutdown reaches nobody; A deregisters afterwards",
        threads: 3,
        size: Size::Small,
        properties: &[NothingAfterRemoval, ArrivalFirst, NoCallbackAfterDeregister, DeregisterWaits, NoDeadlock, BadInputErrors],
        run: shutdown_vs_dispatch,
    },
    Scenario {
        name: "power-round-trip",
        about: "on a change, A (all access) and B (query access) request a power level from their callbacks; the hardware rejects A's first request and accepts its second, which comes back as a change",
        threads: 2,
        size: Size::Small,
        properties: &[PowerRoundTrip, BadInputErrors, HubOrder, NoDeadlock],
        run: power_round_trip,
    },
    Scenario {
        name: "power-vs-deregister",
        about: "a driver thread requests power for A, then for B, while main deregisters A and then shuts the Policy Manager down",
        threads: 2,
        size: Size::Small,
        properties: &[PowerRoundTrip, BadInputErrors, NoDeadlock],
        run: power_vs_deregister,
    },
    Scenario {
        name: "removal-queries",
        about: "hub 1 is removed while it delivers a change; A's HubRemoval callback retrieves the hub and its connectors",
        threads: 2,
        size: Size::Small,
        properties: &[RemovalSeesHub, HubOrder, NoDeadlock],
        run: removal_queries,
    },
    Scenario {
        name: "callback-fills-queue",
        about: "hub queues hold 1 item; A registers on a thread of its own, and its arrival replay's callback reports two changes, removes the hub and adds it again, while main registers C (its replay queued from outside callbacks)",
        threads: 2,
        size: Size::Small,
        properties: &[BoundedWork, BadInputErrors, HubOrder, NoDeadlock],
        run: callback_fills_queue,
    },
    Scenario {
        name: "callback-producer",
        about: "callbacks' budget of 2 reports: A's callback reports a change on every change it receives (up to seq 5), while a thread and main each report one",
        threads: 2,
        size: Size::Small,
        properties: &[BoundedWork, HubOrder, NoDeadlock],
        run: callback_producer,
    },
    Scenario {
        name: "callback-registers",
        about: "callbacks' budget of 2 reports, spent on registrations: A's callback registers B, C and D on a change it receives, while a thread and main each report one",
        threads: 2,
        size: Size::Small,
        properties: &[BoundedWork, ArrivalFirst, BadInputErrors, NoDeadlock],
        run: callback_registers,
    },
    Scenario {
        name: "greeting-chain",
        about: "callbacks' budget of 2 across nested greetings: with hubs 1 and 2 present, A's callback registers a client on a change, and each client registered registers the next on every hub event (its arrival replays), while main and a thread each report a change; then main alone registers H, whose callback registers clients on both of its arrival replays",
        threads: 2,
        size: Size::Small,
        properties: &[BoundedWork, ArrivalFirst, BadInputErrors, NoDeadlock],
        run: greeting_chain,
    },
    Scenario {
        name: "panicking-callback",
        about: "A's callback panics while main deregisters A; B still gets the event",
        threads: 2,
        size: Size::Small,
        properties: &[NoDeadlock, DeregisterWaits, HubOrder, BoundedWork],
        run: panicking_callback,
    },
    Scenario {
        name: "double-deregister",
        about: "two threads deregister the same client while a dispatcher delivers",
        threads: 3,
        size: Size::Small,
        properties: &[BadInputErrors, NoCallbackAfterDeregister, DeregisterWaits, ContextDiesOutside],
        run: double_deregister,
    },
    Scenario {
        name: "handle-reuse",
        about: "a stale handle whose slot now holds a new client is deregistered while events flow",
        threads: 2,
        size: Size::Small,
        properties: &[BadInputErrors, HubOrder],
        run: handle_reuse,
    },
    Scenario {
        name: "removal-vs-register",
        about: "a hub changes and is removed while a client registers",
        threads: 2,
        size: Size::Small,
        properties: &[HubOrder, NoDeadlock, BoundedWork],
        run: removal_vs_register,
    },
    Scenario {
        name: "rearrival-vs-drain",
        about: "a hub is removed while another thread drains its queue, then arrives again",
        threads: 3,
        size: Size::Small,
        properties: &[HubOrder, NoDeadlock, BoundedWork],
        run: rearrival_vs_drain,
    },
    Scenario {
        name: "flood-one-hub",
        about: "two threads report one hub (two changes each) while main deregisters one of its two clients",
        threads: 3,
        size: Size::Small,
        properties: &[NoCallbackAfterDeregister, DeregisterWaits, NoDeadlock, HubOrder, BoundedWork, ContextDiesOutside, OwnItemDelivered],
        run: flood_one_hub,
    },
    Scenario {
        name: "flood-churn-3x12",
        about: "three threads report one hub 12 times each while a fourth registers and deregisters 6 clients unpaced",
        threads: 5,
        size: Size::Large,
        properties: &[NoCallbackAfterDeregister, DeregisterWaits, NoDeadlock, HubOrder, BoundedWork, ContextDiesOutside, OwnItemDelivered],
        run: flood_churn,
    },
    Scenario {
        name: "deregister-ring-of-three",
        about: "on three hubs' threads (hub i lists client i first), A's callback deregisters B, B's C and C's A",
        threads: 4,
        size: Size::Small,
        properties: &[NoDeadlock, BadInputErrors, NoCallbackAfterDeregister, DeregisterWaits, OneCallAtATime],
        run: deregister_ring_of_three,
    },
    Scenario {
        name: "churn-4x3x20",
        about: "4 clients, 3 hubs, 20 events: dispatchers race registration churn and re-entrant callbacks",
        threads: 5,
        size: Size::Large,
        properties: &[NoCallbackAfterDeregister, DeregisterWaits, NoDeadlock, BadInputErrors, HubOrder, BoundedWork, OneCallAtATime, ContextDiesOutside, OwnItemDelivered],
        run: churn,
    },
];

/// The scenario called `name`.
pub fn find(name: &str) -> Option<&'static Scenario> {
    ALL.iter().find(|s| s.name == name)
}

/// A dispatcher thread for `port`'s hub: it reports one connector change (attach) and
/// hands the port back, so the hub's removal happens after the race, on the main thread.
fn dispatch_once(name: &str, port: HubPort) -> JoinHandle<HubPort> {
    spawn(name, move || {
        flip(&port, true);
        port
    })
}

fn dispatchers_vs_deregister(env: &Env, hubs: u32) {
    env.register("A", no_action);
    // All hubs arrive before any dispatcher starts: the race under test is delivery
    // against deregister, not arrival against delivery (register-vs-dispatch has that).
    let ports: Vec<_> = (1..=hubs).map(|i| env.hub(i)).collect();
    let threads: Vec<_> = ports
        .into_iter()
        .zip(1..)
        .map(|(port, i)| dispatch_once(&format!("dispatcher-h{i}"), port))
        .collect();
    env.deregister_ok("A");
    for t in threads {
        drop(t.join().expect("dispatcher thread"));
    }
}

fn dispatch_vs_deregister(env: &Env) {
    dispatchers_vs_deregister(env, 1);
}

fn two_dispatchers_vs_deregister(env: &Env) {
    dispatchers_vs_deregister(env, 2);
}

fn three_dispatchers_vs_deregister(env: &Env) {
    dispatchers_vs_deregister(env, 3);
}

/// Main registers `label` while hub 1 (present) reports a change on one thread and hub 2
/// arrives on another; returns both ports once the threads are joined.
fn register_while_hubs_move(env: &Env, label: &'static str, action: Action) -> (HubPort, HubPort) {
    let h1 = env.hub(1);
    let d1 = dispatch_once("dispatcher-h1", h1);
    let pm = env.pm.clone();
    let d2 = spawn("arrival-h2", move || {
        pm.hub_arrival(HubId(2), vec![Default::default()])
            .expect("hub 2 is new")
    });
    env.register(label, action);
    (d1.join().expect("dispatcher"), d2.join().expect("arrival"))
}

fn register_vs_dispatch(env: &Env) {
    let (h1, h2) = register_while_hubs_move(env, "B", no_action);
    // B registered while hub 1 was present and hub 2 arrived: it has seen both, in full.
    env.monitor.expect_complete("B", HubId(1), 1);
    env.monitor.expect_complete("B", HubId(2), 0);
    env.deregister_ok("B");
    drop((h1, h2));
}

fn reentrant_action(ctx: &Context, pm: &PolicyManager, me: ClientHandle, n: &Notification) {
    if !matches!(n.event, Event::ConnectorStateChange { .. }) {
        return;
    }
    let hub = n.hub.expect("a hub event");
    let q = pm.hub_properties(me, hub);
    ctx.monitor.check(BadInputErrors, q.is_ok(), || {
        format!("hub_properties({hub}) from a callback returned {q:?}")
    });
    let connector = usbpm::ConnectorHandle {
        hub,
        connector: usbpm::ConnectorId(0),
    };
    let c = pm.connector_state(me, connector);
    ctx.monitor.check(BadInputErrors, c.is_ok(), || {
        format!("connector_state({connector}) from a callback returned {c:?}")
    });
    env::register(&ctx.monitor, &ctx.directory, pm, "C", no_action);
    let r = env::deregister(&ctx.monitor, &ctx.directory, pm, "B");
    ctx.monitor.check(BadInputErrors, r.is_ok(), || {
        format!("deregister(B) from A's callback returned {r:?}")
    });
}

fn reentrant_callback(env: &Env) {
    env.register("A", reentrant_action);
    env.register("B", no_action);
    let h1 = env.hub(1);
    let d = dispatch_once("dispatcher-h1", h1);
    env.deregister_ok("A");
    let h1 = d.join().expect("dispatcher");
    if env.directory.handle("C").is_some() {
        // C registered from inside the callback: it got hub 1's arrival and all after it.
        env.monitor.expect_complete("C", HubId(1), 1);
        env.deregister_ok("C");
    } else {
        // A was closed before its callback ran, so it never registered C and B remains.
        env.deregister_ok("B");
    }
    drop(h1);
}

fn deregister_self_action(ctx: &Context, pm: &PolicyManager, _me: ClientHandle, n: &Notification) {
    if !matches!(n.event, Event::ConnectorStateChange { .. }) {
        return;
    }
    let h = ctx.directory.handle(ctx.label).expect("own handle");
    let r = pm.deregister(h);
    ctx.monitor.check(BadInputErrors, r == Err(Error::DeregisterFromOwnCallback(h)), || {
        format!("deregister({}) from its own callback returned {r:?}, expected DeregisterFromOwnCallback", ctx.label)
    });
}

fn deregister_own_callback(env: &Env) {
    env.register("A", deregister_self_action);
    let h1 = env.hub(1);
    let d = dispatch_once("dispatcher-h1", h1);
    // The refusal inside the callback changed nothing: A is still registered here.
    env.deregister_ok("A");
    drop(d.join().expect("dispatcher"));
}

fn deregister_other(ctx: &Context, pm: &PolicyManager, _me: ClientHandle, n: &Notification) {
    let other = if ctx.label == "A" { "B" } else { "A" };
    deregister_from_callback(ctx, pm, n, other);
}

/// On a connector change, deregisters `target` from the callback: it may succeed, be
/// refused as a cycle, or find `target` already gone; anything else violates P4.
fn deregister_from_callback(
    ctx: &Context,
    pm: &PolicyManager,
    n: &Notification,
    target: &'static str,
) {
    if !matches!(n.event, Event::ConnectorStateChange { .. }) {
        return;
    }
    let r = env::deregister(&ctx.monitor, &ctx.directory, pm, target);
    ctx.monitor.check(
        BadInputErrors,
        matches!(
            r,
            Ok(()) | Err(Error::WouldDeadlock { .. }) | Err(Error::StaleHandle(_))
        ),
        || {
            format!(
                "deregister({target}) from {}'s callback returned {r:?}",
                ctx.label
            )
        },
    );
}

fn mutual_deregister(env: &Env) {
    // One call of a client at a time: A's and B's callbacks run at once on the two hubs'
    // threads only if hub 1 lists A first and hub 2 lists B first (with A first on both,
    // hub 2's thread would wait for A's turn before reaching B). An arrival lists the
    // registered clients in slot order and a later registration is appended: B arrives
    // on hub 2 alone, then A takes slot 0 (freed by a placeholder) before hub 1 arrives.
    env.register("P", no_action);
    env.register("B", deregister_other);
    env.deregister_ok("P");
    let hub2 = env.hub(2);
    env.register("A", deregister_other);
    let ports = vec![env.hub(1), hub2];
    let threads: Vec<_> = ports
        .into_iter()
        .zip(1..)
        .map(|(port, i)| dispatch_once(&format!("dispatcher-h{i}"), port))
        .collect();
    let ports: Vec<_> = threads
        .into_iter()
        .map(|t| t.join().expect("dispatcher"))
        .collect();
    // Whoever was refused is still registered; whoever was deregistered is stale.
    for label in ["A", "B"] {
        let r = env.deregister(label);
        env.monitor.check(
            BadInputErrors,
            matches!(r, Ok(()) | Err(Error::StaleHandle(_))),
            || format!("final deregister({label}) returned {r:?}"),
        );
    }
    env.monitor.check(BadInputErrors, env.pm.client_count() == 0, || {
        format!("{} client(s) still registered after both were deregistered: a registration was lost", env.pm.client_count())
    });
    drop(ports);
}

/// The context of `detach-own-callback`'s client: its guard until its callback detaches
/// it, then the completion, handed to main.
struct Detaching {
    monitor: std::sync::Arc<crate::judge::monitor::Monitor>,
    driver: DriverContext,
    guard: std::sync::Mutex<Option<Registration>>,
    completion: std::sync::Mutex<Option<Detached>>,
    /// Set (after `completion`) when the completion is there: the checker sees the handoff.
    handed: AtomicBool,
}

fn detaching_callback(ctx: &std::sync::Arc<Detaching>, _: &PolicyManager, n: &Notification) {
    ctx.driver.touch(&ctx.monitor, "on entry to", n);
    ctx.monitor.callback_begin("A", n);
    if matches!(n.event, Event::ConnectorStateChange { .. }) {
        let guard = ctx.guard.lock().unwrap().take();
        if let Some(guard) = guard {
            ctx.monitor.note("A's callback detaches A");
            let completion = guard.detach();
            *ctx.completion.lock().unwrap() = Some(completion);
            ctx.handed.store(true, SeqCst);
        }
    }
    // Still using the context after handing the completion over: main must not free it
    // before this call returns.
    ctx.driver.touch(&ctx.monitor, "at end of", n);
    ctx.monitor.callback_end("A", n);
}

fn detach_own_callback(env: &Env) {
    let ctx = std::sync::Arc::new(Detaching {
        monitor: env.monitor.clone(),
        driver: DriverContext::new("A"),
        guard: std::sync::Mutex::new(None),
        completion: std::sync::Mutex::new(None),
        handed: AtomicBool::new(false),
    });
    let guard = env
        .pm
        .register_owned(ClientConfig::new(ctx.clone(), detaching_callback))
        .expect("a free slot");
    env.monitor.registered("A", guard.handle());
    *ctx.guard.lock().unwrap() = Some(guard);
    let ports = vec![env.hub(1), env.hub(2)];
    let threads: Vec<_> = ports
        .into_iter()
        .zip(1..)
        .map(|(port, i)| dispatch_once(&format!("dispatcher-h{i}"), port))
        .collect();
    // The first change A's callback gets detaches A; wait for its completion to arrive.
    while !ctx.handed.load(SeqCst) {
        yield_now();
    }
    let completion = ctx.completion.lock().unwrap().take().expect("handed over");
    env.monitor.note("main waits for A's detach completion");
    match completion.wait() {
        Ok(()) => env.monitor.detach_done("A"),
        Err((e, _)) => env.monitor.violation(
            BadInputErrors,
            format!("A's detach completion refused main: {e:?}"),
        ),
    }
    ctx.driver.free(&env.monitor);
    for t in threads {
        drop(t.join().expect("dispatcher"));
    }
    env.monitor
        .check(BadInputErrors, env.pm.client_count() == 0, || {
            "A is still registered after its detach".to_string()
        });
}

fn deregister_next(ctx: &Context, pm: &PolicyManager, _me: ClientHandle, n: &Notification) {
    let next = match ctx.label {
        "A" => "B",
        "B" => "C",
        _ => "A",
    };
    deregister_from_callback(ctx, pm, n, next);
}

/// A wait-for cycle through three clients' callbacks, one per hub's thread. One call at a
/// time means hub i's thread reaches client i's callback while the others are inside
/// theirs only if client i comes first in hub i's list: each client takes the slot a
/// placeholder frees just before its hub arrives (an arrival lists clients in slot
/// order; later registrations are appended), from the last hub down to the first.
fn deregister_ring_of_three(env: &Env) {
    const CLIENTS: [&str; 3] = ["A", "B", "C"];
    const PLACEHOLDERS: [&str; 3] = ["P0", "P1", "P2"];
    for p in PLACEHOLDERS {
        env.register(p, no_action);
    }
    let mut ports = Vec::new();
    for i in (0..3).rev() {
        env.deregister_ok(PLACEHOLDERS[i]);
        env.register(CLIENTS[i], deregister_next);
        ports.push(env.hub(i as u32 + 1));
    }
    ports.reverse();
    let threads: Vec<_> = ports
        .into_iter()
        .zip(1..)
        .map(|(port, i)| dispatch_once(&format!("dispatcher-h{i}"), port))
        .collect();
    let ports: Vec<_> = threads
        .into_iter()
        .map(|t| t.join().expect("dispatcher"))
        .collect();
    for label in CLIENTS {
        let r = env.deregister(label);
        env.monitor.check(
            BadInputErrors,
            matches!(r, Ok(()) | Err(Error::StaleHandle(_))),
            || format!("final deregister({label}) returned {r:?}"),
        );
    }
    env.monitor
        .check(BadInputErrors, env.pm.client_count() == 0, || {
            format!(
                "{} client(s) still registered: a registration was lost",
                env.pm.client_count()
            )
        });
    drop(ports);
}

fn panic_action(_: &Context, _: &PolicyManager, _me: ClientHandle, n: &Notification) {
    if matches!(n.event, Event::ConnectorStateChange { .. }) {
        std::panic::panic_any(ModelPanic);
    }
}

fn panicking_callback(env: &Env) {
    env.register("A", panic_action);
    env.register("B", no_action);
    let h1 = env.hub(1);
    let d = dispatch_once("dispatcher-h1", h1);
    env.deregister_ok("A");
    let h1 = d.join().expect("dispatcher");
    env.monitor.expect_complete("B", HubId(1), 1);
    env.deregister_ok("B");
    drop(h1);
}

fn double_deregister(env: &Env) {
    env.register("A", no_action);
    let h1 = env.hub(1);
    let d = dispatch_once("dispatcher-h1", h1);
    let other = env.handle();
    let t = spawn("deregister-2", move || other.deregister("A"));
    let mine = env.deregister("A");
    let theirs = t.join().expect("second deregister");
    let oks = [&mine, &theirs].iter().filter(|r| r.is_ok()).count();
    let stale = [&mine, &theirs]
        .iter()
        .filter(|r| matches!(r, Err(Error::StaleHandle(_))))
        .count();
    env.monitor.check(BadInputErrors, oks == 1 && stale == 1, || {
        format!("racing deregisters returned {mine:?} and {theirs:?}; expected one Ok and one StaleHandle")
    });
    drop(d.join().expect("dispatcher"));
}

fn handle_reuse(env: &Env) {
    let old = env.register("A", no_action);
    env.deregister_ok("A");
    let new = env.register("B", no_action);
    env.monitor.note(format!(
        "B reuses slot {} (A's was {})",
        new.slot(),
        old.slot()
    ));
    let h1 = env.hub(1);
    let d = dispatch_once("dispatcher-h1", h1);
    env.monitor.note(format!("deregister(stale {old}) called"));
    let r = env.pm.deregister(old);
    env.monitor
        .note(format!("deregister(stale {old}) returns {r:?}"));
    env.monitor
        .check(BadInputErrors, r == Err(Error::StaleHandle(old)), || {
            format!("deregister of stale {old} returned {r:?}")
        });
    let garbage = usbpm::ClientHandle::from_raw(0xdead_0000_beef);
    let g = env.pm.deregister(garbage);
    env.monitor.check(
        BadInputErrors,
        g == Err(Error::UnknownHandle(garbage)),
        || format!("deregister of a forged handle returned {g:?}"),
    );
    let h1 = d.join().expect("dispatcher");
    // The stale call did not touch B: it is registered and has every event.
    env.monitor.expect_complete("B", HubId(1), 1);
    env.deregister_ok("B");
    drop(h1);
}

fn removal_vs_register(env: &Env) {
    env.register("A", no_action);
    let h1 = env.hub(1);
    let d = spawn("dispatcher-h1", move || {
        flip(&h1, true);
        h1.remove();
    });
    env.register("B", no_action);
    d.join().expect("dispatcher");
    env.monitor.expect_complete("A", HubId(1), 2);
    env.deregister_ok("A");
    env.deregister_ok("B");
}

fn rearrival_vs_drain(env: &Env) {
    env.register("A", no_action);
    let h1 = env.hub(1);
    let d = spawn("dispatcher-h1", move || {
        flip(&h1, true);
        h1.remove();
    });
    // B's arrival replay may make this thread the one draining hub 1's old presence.
    let other = env.handle();
    let r = spawn("register-b", move || {
        other.register("B", no_action);
    });
    d.join().expect("dispatcher");
    // Hub 1's removal is queued (maybe not yet delivered): it may arrive again at once,
    // and its new arrival must reach clients after everything of its old presence.
    let again = env.pm.hub_arrival(HubId(1), vec![Default::default()]);
    env.monitor.check(BadInputErrors, again.is_ok(), || {
        format!("hub 1 arriving again after its removal returned {again:?}")
    });
    r.join().expect("register");
    env.monitor.expect_complete("A", HubId(1), 0);
    env.monitor.expect_complete("B", HubId(1), 0);
    drop(again);
    env.deregister_ok("A");
    env.deregister_ok("B");
}

/// Two reporters on one hub: each call delivers only up to its own change (P6: no thread
/// takes an item beyond the last it queued), sleeping while the other delivers; every
/// change reaches the client that stays, in order.
fn flood_one_hub(env: &Env) {
    env.register("A", no_action);
    env.register("B", no_action);
    let hub = std::sync::Arc::new(env.hub(1));
    let reporters: Vec<_> = ["reporter-1", "reporter-2"]
        .into_iter()
        .map(|name| {
            let hub = hub.clone();
            spawn(name, move || {
                flip(&hub, true);
                flip(&hub, false);
            })
        })
        .collect();
    env.deregister_ok("B");
    for r in reporters {
        r.join().expect("reporter");
    }
    env.monitor.expect_complete("A", HubId(1), 4);
    env.deregister_ok("A");
}

/// A flood of one hub from three threads with unpaced churn beside it: each report
/// returns after delivering at most the items queued ahead of it (P6), every report
/// reaches the client that stays (P5), and no churned client hears anything after its
/// deregister returned (P1, P2).
fn flood_churn(env: &Env) {
    const FLIPS: u64 = 12;
    const CHURNED: [&str; 6] = ["C1", "C2", "C3", "C4", "C5", "C6"];
    env.register("A", no_action);
    let hub = std::sync::Arc::new(env.hub(1));
    let reporters: Vec<_> = ["reporter-1", "reporter-2", "reporter-3"]
        .into_iter()
        .map(|name| {
            let hub = hub.clone();
            spawn(name, move || {
                for k in 0..FLIPS {
                    flip(&hub, k % 2 == 0);
                }
            })
        })
        .collect();
    let other = env.handle();
    let churner = spawn("churn", move || {
        for label in CHURNED {
            other.register(label, no_action);
            let r = other.deregister(label);
            other.monitor.check(BadInputErrors, r.is_ok(), || {
                format!("deregister({label}) returned {r:?}")
            });
        }
    });
    for r in reporters {
        r.join().expect("reporter");
    }
    churner.join().expect("churn");
    env.monitor.expect_complete("A", HubId(1), 3 * FLIPS);
    env.deregister_ok("A");
}

fn churn_action(ctx: &Context, pm: &PolicyManager, _me: ClientHandle, n: &Notification) {
    if let Event::ConnectorStateChange { state, .. } = &n.event {
        let _ = pm.hub_snapshot(n.hub_id().expect("a hub event"));
        if state.attached && ctx.label == "A" {
            // Deregister another client from inside a callback: any of these is allowed.
            let r = env::deregister(&ctx.monitor, &ctx.directory, pm, "B");
            ctx.monitor.check(
                BadInputErrors,
                matches!(
                    r,
                    Ok(()) | Err(Error::StaleHandle(_)) | Err(Error::WouldDeadlock { .. })
                ),
                || format!("deregister(B) from A's callback returned {r:?}"),
            );
        }
    }
}

fn churn(env: &Env) {
    for label in ["A", "B", "C", "D"] {
        env.register(label, churn_action);
    }
    let events_per_hub = [7u64, 7, 6];
    let threads: Vec<_> = events_per_hub
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let port = env.hub(i as u32 + 1);
            spawn(&format!("dispatcher-h{}", i + 1), move || {
                for k in 0..n {
                    flip(&port, k % 2 == 0);
                }
                port
            })
        })
        .collect();
    let other = env.handle();
    let churner = spawn("churn", move || {
        let r = other.deregister("C");
        other.monitor.check(BadInputErrors, r.is_ok(), || {
            format!("deregister(C) returned {r:?}")
        });
        other.register("E", churn_action);
        let r = other.deregister("D");
        other.monitor.check(BadInputErrors, r.is_ok(), || {
            format!("deregister(D) returned {r:?}")
        });
    });
    churner.join().expect("churn");
    let ports: Vec<_> = threads
        .into_iter()
        .map(|t| t.join().expect("dispatcher"))
        .collect();
    for (i, &n) in events_per_hub.iter().enumerate() {
        env.monitor.expect_complete("A", HubId(i as u32 + 1), n);
        env.monitor.expect_complete("E", HubId(i as u32 + 1), n);
    }
    env.deregister_ok("A");
    env.deregister_ok("E");
    let r = env.deregister("B");
    env.monitor.check(
        BadInputErrors,
        matches!(r, Ok(()) | Err(Error::StaleHandle(_))),
        || format!("final deregister(B) returned {r:?}"),
    );
    drop(ports);
}

/// The named scenarios that the program language expresses, as programs, with the
/// enumerated tier of the full profile that contains them: the generated-program checks
/// prove these races for every program of that tier, so the named scenario is one of many
/// there. (The others need three or four threads, several actions in one callback, or
/// behaviours that fire on changes only; `handle-reuse` is a program of 2x2-c2-h1, beyond
/// the profiles' tiers. They stay hand-written.)
pub fn as_programs() -> Vec<(&'static str, crate::lang::program::Program, &'static str)> {
    use crate::lang::program::{Behaviour, ClientSpec, Op, Program};
    let plain = |behaviour| ClientSpec {
        behaviour,
        owned: false,
        ..Default::default()
    };
    let program = |clients, hubs, init, threads| Program {
        clients,
        hubs,
        init,
        threads,
    };
    vec![
        (
            "dispatch-vs-deregister",
            program(
                vec![plain(Behaviour::Nothing)],
                1,
                vec![Op::Register(0), Op::Arrive(0)],
                vec![vec![Op::Change(0)], vec![Op::Deregister(0)]],
            ),
            "2x1-c1-h1",
        ),
        (
            "deregister-own-callback",
            program(
                vec![plain(Behaviour::DeregisterSelf)],
                1,
                vec![Op::Register(0), Op::Arrive(0)],
                vec![vec![Op::Change(0)], vec![Op::Deregister(0)]],
            ),
            "2x1-c1-h1",
        ),
        (
            "panicking-callback",
            program(
                vec![plain(Behaviour::Panic), plain(Behaviour::Nothing)],
                1,
                vec![Op::Register(0), Op::Register(1), Op::Arrive(0)],
                vec![vec![Op::Change(0)], vec![Op::Deregister(0)]],
            ),
            "2x1-c2-h2",
        ),
        (
            "mutual-deregister",
            program(
                vec![
                    plain(Behaviour::Deregister(1)),
                    plain(Behaviour::Deregister(0)),
                ],
                2,
                vec![Op::Register(0), Op::Register(1)],
                vec![vec![Op::Arrive(0)], vec![Op::Arrive(1)]],
            ),
            "2x1-c2-h2",
        ),
        (
            "removal-vs-register",
            program(
                vec![plain(Behaviour::Nothing)],
                1,
                vec![Op::Arrive(0)],
                vec![vec![Op::Change(0), Op::Remove(0)], vec![Op::Register(0)]],
            ),
            "2x2-c1-h1",
        ),
    ]
}

/// Programs the generator found failing, kept as named regressions (each was minimal).
///
/// `detach-vs-admitted-callback`: B's callback drops B's own guard on one hub's thread
/// while another hub's thread has admitted a call of B's callback and not yet entered
/// it. The drop returns without waiting (it is inside B's callback), and the admitted call
/// then begins: the contract as documented ("no callback begins afterwards") was stronger
/// than the library keeps; it now says that no event reported after the drop reaches the
/// client. Found by gen-shuttle; loom saw it only once the judged events were made to
/// conflict (`exec::World::judged_point`).
pub fn regressions() -> Vec<(&'static str, crate::lang::program::Program)> {
    use crate::lang::program::{Behaviour, ClientSpec, Op, Program};
    vec![(
        "detach-vs-admitted-callback",
        Program {
            clients: vec![ClientSpec {
                behaviour: Behaviour::DropOwnGuard,
                owned: true,
                ..Default::default()
            }],
            hubs: 2,
            init: vec![Op::Register(0)],
            threads: vec![vec![Op::Arrive(0)], vec![Op::Arrive(1)]],
        },
    )]
}

fn greeting_vs_arrival(env: &Env) {
    let (h1, h2) = register_while_hubs_move(env, "A", register_b_once);
    // A registered while hub 1 was present and hub 2 arrived: after its Policy Manager
    // arrival it has seen both hubs in full; so has B, registered from A's callback.
    for label in ["A", "B"] {
        env.monitor.expect_greeted(label);
        env.monitor.expect_complete(label, HubId(1), 1);
        env.monitor.expect_complete(label, HubId(2), 0);
    }
    env.deregister_ok("B");
    env.deregister_ok("A");
    drop((h1, h2));
}

/// A's first hub event registers B (a greeting owed to this thread's outermost call).
fn register_b_once(ctx: &Context, pm: &PolicyManager, _me: ClientHandle, _n: &Notification) {
    if ctx.label == "A" && ctx.directory.handle("B").is_none() {
        env::register(&ctx.monitor, &ctx.directory, pm, "B", no_action);
    }
}

fn shutdown_vs_dispatch(env: &Env) {
    env.register("A", no_action);
    env.register("B", no_action);
    let port = env.hub(1);
    let d1 = dispatch_once("dispatcher-h1", port);
    let other = env.handle();
    let deregisterer = spawn("deregister-B", move || {
        let r = other.deregister("B");
        other.monitor.check(BadInputErrors, r.is_ok(), || {
            format!("deregister(B) racing the shutdown returned {r:?}")
        });
    });
    env.monitor.note("main shuts the Policy Manager down");
    let r = env.pm.shutdown();
    env.monitor.check(BadInputErrors, r.is_ok(), || {
        format!("shutdown returned {r:?}")
    });
    let port = d1.join().expect("dispatcher");
    deregisterer.join().expect("deregisterer");
    // After the shutdown nothing reaches A (M2, judged at each call), and every call but
    // deregister is refused.
    flip(&port, false);
    let again = env.pm.register(ClientConfig::new((), |_, _, _| {}));
    env.monitor.check(
        BadInputErrors,
        matches!(again, Err(Error::PolicyManagerRemoved)),
        || format!("register after shutdown returned {again:?}"),
    );
    env.deregister_ok("A");
    drop(port);
}

/// `power-round-trip`: on its first connector change a client requests 15 W for the
/// changed connector (A may; B, with query access only, is refused and nothing reaches
/// the hardware). A requests again on the change an accepted request brings.
fn request_power(ctx: &Context, pm: &PolicyManager, me: ClientHandle, n: &Notification) {
    let Some(connector) = n.connector_handle() else {
        return;
    };
    let level = usbpm::PowerLevel { milliwatts: 15_000 };
    let r = pm.assign_power_level(me, connector, level);
    let ok = match ctx.label {
        "A" => r.is_ok(),
        _ => matches!(r, Err(Error::AccessDenied { .. })),
    };
    ctx.monitor.check(BadInputErrors, ok, || {
        format!(
            "{}'s power request for {connector} returned {r:?}",
            ctx.label
        )
    });
}

fn power_round_trip(env: &Env) {
    let attached = usbpm::ConnectorState {
        attached: true,
        partner_max_milliwatts: 15_000,
        ..Default::default()
    };
    env.register("A", request_power);
    env.register_with("B", request_power, usbpm::Access::QUERY);
    let port = env
        .pm
        .hub_arrival(HubId(1), vec![attached.clone()])
        .expect("a new hub id");
    // The partner renegotiates twice (two changes) on a thread of its own while the
    // hardware (main) collects the requests they bring.
    let port = std::sync::Arc::new(port);
    let reporter = port.clone();
    let partner = spawn("partner-h1", move || {
        for _ in 0..2 {
            reporter
                .connector_changed(usbpm::ConnectorId(0), attached.clone())
                .expect("connector 0 of a present hub");
        }
    });
    let mut requests = Vec::new();
    while requests.len() < 2 {
        requests.extend(port.power_requests());
        yield_now();
    }
    partner.join().expect("partner");
    requests.extend(port.power_requests());
    let port = std::sync::Arc::into_inner(port).expect("the partner is done with the port");
    // Only A's requests reached the hardware, one per change: B's were refused (M3).
    let a = env.directory.handle("A").expect("registered");
    env.monitor.check(
        PowerRoundTrip,
        requests.len() == 2 && requests.iter().all(|r| r.client == a),
        || format!("the hardware received {requests:?}; only A's two requests were allowed"),
    );
    for (i, request) in requests.into_iter().enumerate() {
        // The first is rejected: no event (M3, judged by the changes each client saw:
        // seq 3 is the accepted one's, and nothing follows it).
        let accepted = i > 0;
        let r = port.answer(request, accepted);
        env.monitor.check(PowerRoundTrip, r == Ok(accepted), || {
            format!("answering a request ({accepted}) reported {r:?}")
        });
    }
    env.monitor.expect_complete("A", HubId(1), 3);
    env.monitor.expect_complete("B", HubId(1), 3);
    let connector = usbpm::ConnectorHandle {
        hub: port.handle(),
        connector: usbpm::ConnectorId(0),
    };
    let state = env.pm.connector_state(a, connector);
    env.monitor.check(
        PowerRoundTrip,
        matches!(&state, Ok(c) if c.assigned_power == Some(usbpm::PowerLevel { milliwatts: 15_000 })),
        || format!("after the hardware accepted 15 W, connector_state returned {state:?}"),
    );
    // A asked again on the accepted request's change (from inside that callback).
    let pending = port.power_requests().len();
    env.monitor.check(PowerRoundTrip, pending == 1, || {
        format!("{pending} request(s) pending after the accepted change, expected A's one")
    });
    env.deregister_ok("A");
    env.deregister_ok("B");
    drop(port);
}

/// `power-vs-deregister`: a request checked before a deregister or shutdown returned
/// is queued before it returns; one made afterwards is refused (M3, judged at the
/// library's `PowerRequested` step). Every accepted request reaches the hardware,
/// exactly once.
fn power_vs_deregister(env: &Env) {
    let attached = usbpm::ConnectorState {
        attached: true,
        partner_max_milliwatts: 15_000,
        ..Default::default()
    };
    let a = env.register("A", no_action);
    let b = env.register("B", no_action);
    let port = env
        .pm
        .hub_arrival(HubId(1), vec![attached])
        .expect("a new hub id");
    let connector = usbpm::ConnectorHandle {
        hub: port.handle(),
        connector: usbpm::ConnectorId(0),
    };
    let pm = env.pm.clone();
    let monitor = env.monitor.clone();
    let driver = spawn("driver", move || {
        let level = usbpm::PowerLevel { milliwatts: 15_000 };
        let mut accepted = 0;
        for (label, me, refused) in [("A", a, "deregister"), ("B", b, "shutdown")] {
            let r = pm.assign_power_level(me, connector, level);
            // A's may come after its deregister or the shutdown, B's after the shutdown.
            let ok = match r {
                Ok(()) | Err(Error::PolicyManagerRemoved) => true,
                Err(Error::StaleHandle(_)) => label == "A",
                _ => false,
            };
            monitor.check(BadInputErrors, ok, || {
                format!("{label}'s power request racing its {refused} returned {r:?}")
            });
            accepted += usize::from(r.is_ok());
        }
        accepted
    });
    // The hardware collects requests after each return as well: its queue lock orders
    // the collection with the driver's requests, so the checker tries a request landing
    // after the return (a verdict it could not otherwise see).
    env.deregister_ok("A");
    let mut requests = port.power_requests();
    env.monitor.note("main shuts the Policy Manager down");
    let r = env.pm.shutdown();
    env.monitor.check(BadInputErrors, r.is_ok(), || {
        format!("shutdown returned {r:?}")
    });
    requests.extend(port.power_requests());
    let accepted = driver.join().expect("driver");
    requests.extend(port.power_requests());
    env.monitor
        .check(PowerRoundTrip, requests.len() == accepted, || {
            format!("{accepted} request(s) accepted, the hardware received {requests:?}")
        });
    env.deregister_ok("B");
    drop(port);
}

/// `removal-queries`: A's `HubRemoval` callback retrieves the hub being removed, its
/// connectors and their states (M4).
fn query_on_removal(ctx: &Context, pm: &PolicyManager, me: ClientHandle, n: &Notification) {
    if !matches!(n.event, Event::HubRemoval) {
        return;
    }
    let hub = n.hub.expect("a hub event");
    let props = pm.hub_properties(me, hub);
    let states = pm.hub_connectors(me, hub).and_then(|cs| {
        cs.into_iter()
            .map(|c| pm.connector_state(me, c))
            .collect::<Result<Vec<_>, _>>()
    });
    ctx.monitor.check(
        RemovalSeesHub,
        matches!((&props, &states), (Ok(p), Ok(s)) if p.connectors.len() == 1 && s.len() == 1),
        || format!("inside its HubRemoval callback, {} retrieved {hub}: {props:?}, its connectors: {states:?}", ctx.label),
    );
}

fn removal_queries(env: &Env) {
    env.register("A", query_on_removal);
    let port = env.hub(1);
    let handle = port.handle();
    // The hub changes and leaves on a thread of its own while B registers (its replay
    // races the removal; a B that hears the removal queries inside it too).
    let remover = spawn("remover-h1", move || {
        flip(&port, true);
        port.remove();
    });
    env.register("B", query_on_removal);
    remover.join().expect("remover");
    // Once the removal is delivered, the handle is stale.
    let me = env.directory.handle("A").expect("registered");
    let r = env.pm.hub_properties(me, handle);
    env.monitor.check(
        BadInputErrors,
        matches!(r, Err(Error::StaleHubHandle(h)) if h == handle),
        || format!("hub_properties after the removal was delivered returned {r:?}"),
    );
    env.deregister_ok("B");
    env.deregister_ok("A");
}

/// On its hub's arrival (replay), takes the hub's port (once) and reports into the queue
/// from inside the callback: two changes, the removal and the hub's arrival again. With a
/// queue capacity of 1 the re-arrival always finds the removal queued and is refused.
fn fill_queue(ctx: &Context, pm: &PolicyManager, _me: ClientHandle, n: &Notification) {
    if !matches!(n.event, Event::HubArrival(_)) {
        return;
    }
    let Some(port) = ctx.directory.port.lock().unwrap().take() else {
        return;
    };
    let hub = port.id();
    for on in [true, false] {
        let r = port.connector_changed(
            usbpm::ConnectorId(0),
            usbpm::ConnectorState {
                attached: on,
                ..Default::default()
            },
        );
        ctx.monitor
            .note(format!("{}'s callback reports a change: {r:?}", ctx.label));
    }
    port.remove();
    let again = pm.hub_arrival(hub, vec![usbpm::ConnectorState::default()]);
    ctx.monitor.check(
        BadInputErrors,
        matches!(again, Err(Error::HubQueueFull { hub: h, capacity: 1 }) if h == hub),
        || format!("{hub} arrived again from inside a callback with its removal queued and a queue capacity of 1: {again:?}"),
    );
    // A port a buggy library handed out goes now: its hub is removed again.
    drop(again);
}

fn callback_fills_queue(env: &Env) {
    let env = &env.with_limits(1, usbpm::DEFAULT_CALLBACK_REPORTS);
    let port = env.hub(1);
    *env.directory.port.lock().unwrap() = Some(port);
    let other = env.handle();
    let registrar = spawn("register-A", move || {
        other.register("A", fill_queue);
    });
    env.register("C", no_action);
    registrar.join().expect("registrar");
    env.deregister_ok("A");
    env.deregister_ok("C");
}

/// Reports a change back on every change it receives, up to seq 5 (a finite stand-in for a
/// producer that never stops: the budget of 2 refuses it long before).
fn produce(ctx: &Context, _pm: &PolicyManager, _me: ClientHandle, n: &Notification) {
    let Event::ConnectorStateChange { connector, state } = &n.event else {
        return;
    };
    if n.seq >= 6 {
        return;
    }
    let Some(port) = ctx.directory.shared_port.lock().unwrap().clone() else {
        return;
    };
    let r = port.connector_changed(
        *connector,
        usbpm::ConnectorState {
            attached: !state.attached,
            ..Default::default()
        },
    );
    ctx.monitor
        .note(format!("{}'s callback reports back: {r:?}", ctx.label));
}

/// Registers B, C and D, those not registered yet, on a change it receives, stopping at
/// the first refusal (a finite stand-in for a callback that registers a client on every
/// event: the budget of 2 refuses one thread's third registration while it owes the
/// first two greetings).
fn register_on_change(ctx: &Context, pm: &PolicyManager, _me: ClientHandle, n: &Notification) {
    if ctx.label != "A" || !matches!(n.event, Event::ConnectorStateChange { .. }) {
        return;
    }
    for label in ["B", "C", "D"] {
        if ctx.directory.handle(label).is_some() {
            continue;
        }
        if !register_from_callback(ctx, pm, label, no_action) {
            return;
        }
    }
}

/// Registers `label` from `ctx`'s callback (the scenario's budget is 2): judges that it
/// is registered or refused with `CallbackRegistrationsSpent` (P4), and says whether it
/// was registered.
fn register_from_callback(
    ctx: &Context,
    pm: &PolicyManager,
    label: &'static str,
    action: env::Action,
) -> bool {
    let r = env::try_register(
        &ctx.monitor,
        &ctx.directory,
        pm,
        label,
        action,
        usbpm::Access::ALL,
    );
    ctx.monitor
        .note(format!("{}'s callback registers {label}: {r:?}", ctx.label));
    let expected = matches!(
        r,
        Ok(_) | Err(usbpm::Error::CallbackRegistrationsSpent { budget: 2 })
    );
    ctx.monitor.check(BadInputErrors, expected, || {
        format!(
            "register({label}) from {}'s callback returned {r:?}",
            ctx.label
        )
    });
    r.is_ok()
}

fn callback_registers(env: &Env) {
    let env = &env.with_limits(usbpm::DEFAULT_QUEUE_CAPACITY, 2);
    env.register("A", register_on_change);
    let port = std::sync::Arc::new(env.hub(1));
    let reporter = port.clone();
    let other = spawn("reporter-h1", move || flip(&reporter, true));
    flip(&port, false);
    other.join().expect("reporter");
    // Every client A's callbacks registered was greeted before its thread's call returned.
    for label in ["B", "C", "D"] {
        if env.directory.handle(label).is_some() {
            env.monitor.expect_greeted(label);
            env.deregister_ok(label);
        }
    }
    env.deregister_ok("A");
}

/// The clients `greeting-chain` may register, in order.
const CHAIN: [&str; 6] = ["B", "C", "D", "E", "F", "G"];

/// A's callback, on a change, and every chained client's, on a hub event: registers the
/// next client of [`CHAIN`] (a finite stand-in for a chain of clients that register a
/// client on every event they hear).
fn register_next(ctx: &Context, pm: &PolicyManager, _me: ClientHandle, n: &Notification) {
    let hears = match n.event {
        Event::ConnectorStateChange { .. } => ctx.label == "A",
        Event::HubArrival(_) => ctx.label != "A",
        _ => false,
    };
    if !hears {
        return;
    }
    let taken = ctx.directory.labels_taken.fetch_add(1, SeqCst);
    let Some(&label) = CHAIN.get(taken) else {
        return;
    };
    register_from_callback(ctx, pm, label, register_next);
}

fn greeting_chain(env: &Env) {
    let env = &env.with_limits(usbpm::DEFAULT_QUEUE_CAPACITY, 2);
    let (h1, h2) = (env.hub(1), std::sync::Arc::new(env.hub(2)));
    env.register("A", register_next);
    // A greeting replays hubs 1 and 2: the chain it starts at the first must not leave
    // the second a whole budget (the budget is refilled only when the outermost settling
    // ends). A thread reporting to hub 2 starts a chain of its own meanwhile.
    let reporter = h2.clone();
    let other = spawn("reporter-h2", move || flip(&reporter, true));
    flip(&h1, true);
    other.join().expect("reporter");
    for label in CHAIN {
        if env.directory.handle(label).is_some() {
            env.monitor.expect_greeted(label);
            env.deregister_ok(label);
        }
    }
    env.deregister_ok("A");
    // Alone now (no interleaving added): main registers H, whose callback registers
    // clients on each of its two arrival replays. One `register` is one budget: the
    // second replay must not start a new one.
    env.register("H", register_on_replay);
    for label in LATE {
        if env.directory.handle(label).is_some() {
            env.monitor.expect_greeted(label);
            env.deregister_ok(label);
        }
    }
    env.deregister_ok("H");
    drop((h1, h2));
}

/// The clients H's callback may register in `greeting-chain`, in order.
const LATE: [&str; 4] = ["I", "J", "K", "L"];

/// H's callback, on each arrival replay: registers the clients of [`LATE`] not registered
/// yet, stopping at the first refusal (with the budget of 2, the first replay's callback
/// spends it, and the second replay's is refused).
fn register_on_replay(ctx: &Context, pm: &PolicyManager, _me: ClientHandle, n: &Notification) {
    if !matches!(n.event, Event::HubArrival(_)) {
        return;
    }
    for label in LATE {
        if ctx.directory.handle(label).is_some() {
            continue;
        }
        if !register_from_callback(ctx, pm, label, no_action) {
            return;
        }
    }
}

fn callback_producer(env: &Env) {
    let env = &env.with_limits(usbpm::DEFAULT_QUEUE_CAPACITY, 2);
    env.register("A", produce);
    let port = std::sync::Arc::new(env.hub(1));
    *env.directory.shared_port.lock().unwrap() = Some(port.clone());
    let reporter = port.clone();
    let other = spawn("reporter-h1", move || flip(&reporter, true));
    flip(&port, false);
    other.join().expect("reporter");
    env.directory.shared_port.lock().unwrap().take();
    env.deregister_ok("A");
}

//! `deregister` waits for callbacks that are running, and a panicking callback neither
//! breaks delivery nor makes deregister hang.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::Duration;

use common::*;
use usbpm::{ClientConfig, ClientHandle, ConnectorId, Error, HubId, PolicyManager};

/// How long a deregister that must still be waiting is given to (wrongly) return. A
/// correct library passes whatever this is; it only gives a broken one time to show.
const MUST_STILL_WAIT: Duration = Duration::from_millis(100);

/// A client whose callback, on a change, blocks in a gate and sets `done` just before it
/// returns.
struct Blocking {
    gate: Gate,
    done: AtomicBool,
    calls: AtomicUsize,
}

fn blocking_client(pm: &PolicyManager) -> (ClientHandle, Arc<Blocking>, GateControl) {
    let (gate, control) = gate();
    let ctx = Arc::new(Blocking {
        gate,
        done: AtomicBool::new(false),
        calls: AtomicUsize::new(0),
    });
    let h = pm
        .register(ClientConfig::new(ctx.clone(), |ctx, _pm, n| {
            ctx.calls.fetch_add(1, Ordering::SeqCst);
            if n.hub_id() == Some(HubId(1)) && is_change(n) {
                ctx.gate.block();
                ctx.done.store(true, Ordering::SeqCst);
            }
        }))
        .unwrap();
    (h, ctx, control)
}

#[test]
fn deregister_does_not_return_before_the_running_callback_returns() {
    watchdog("deregister waits", || {
        let pm = PolicyManager::new();
        let (h, ctx, control) = blocking_client(&pm);
        let port = Arc::new(pm.hub_arrival(HubId(1), vec![detached()]).unwrap());
        assert_eq!(
            ctx.calls.load(Ordering::SeqCst),
            2,
            "the Policy Manager's arrival and the hub's"
        );

        let hub_thread = {
            let port = port.clone();
            thread::spawn(move || port.connector_changed(ConnectorId(0), attached(1)).unwrap())
        };
        control.wait_entered();

        let returned = Arc::new(AtomicBool::new(false));
        let (ret_tx, ret_rx) = mpsc::channel();
        let deregistering = {
            let (pm, ctx, returned) = (pm.clone(), ctx.clone(), returned.clone());
            thread::spawn(move || {
                let r = pm.deregister(h);
                // Read first thing after return: the callback must have finished.
                let done_at_return = ctx.done.load(Ordering::SeqCst);
                returned.store(true, Ordering::SeqCst);
                ret_tx.send((r, done_at_return)).unwrap();
            })
        };

        // deregister takes the client out of the registry before it waits: once that is
        // visible, the deregistering thread is inside deregister.
        wait_until("deregister has removed the client", || {
            pm.client_count() == 0
        });
        assert_eq!(
            ret_rx.recv_timeout(MUST_STILL_WAIT).err(),
            Some(mpsc::RecvTimeoutError::Timeout),
            "deregister returned while the callback was still running"
        );
        assert!(!returned.load(Ordering::SeqCst));
        assert!(!ctx.done.load(Ordering::SeqCst));

        control.release();
        let (result, done_at_return) = ret_rx.recv().unwrap();
        assert_eq!(result, Ok(()));
        assert!(
            done_at_return,
            "deregister returned before the callback finished"
        );
        assert!(returned.load(Ordering::SeqCst));
        deregistering.join().unwrap();
        hub_thread.join().unwrap();

        let calls = ctx.calls.load(Ordering::SeqCst);
        assert_eq!(calls, 3, "and the change");
        port.connector_changed(ConnectorId(0), attached(2)).unwrap();
        assert_eq!(
            ctx.calls.load(Ordering::SeqCst),
            calls,
            "called after deregister returned"
        );
    });
}

#[test]
fn deregister_from_a_callback_waits_for_the_target_running_on_another_thread() {
    struct Killer {
        target: OnceLock<ClientHandle>,
        victim: OnceLock<Arc<Blocking>>,
        tx: Mutex<mpsc::Sender<(Result<(), Error>, bool)>>,
    }
    watchdog("deregister from a callback waits", || {
        let pm = PolicyManager::new();
        let (tx, rx) = mpsc::channel();
        let killer_ctx = Arc::new(Killer {
            target: OnceLock::new(),
            victim: OnceLock::new(),
            tx: Mutex::new(tx),
        });
        let killer = pm
            .register(ClientConfig::new(killer_ctx.clone(), |ctx, pm, n| {
                if n.hub_id() == Some(HubId(2)) && is_change(n) {
                    let r = pm.deregister(*ctx.target.get().unwrap());
                    let done = ctx.victim.get().unwrap().done.load(Ordering::SeqCst);
                    ctx.tx.lock().unwrap().send((r, done)).unwrap();
                }
            }))
            .unwrap();
        let (victim, victim_ctx, control) = blocking_client(&pm);
        killer_ctx.target.set(victim).unwrap();
        let _ = killer_ctx.victim.set(victim_ctx.clone());

        let p1 = Arc::new(pm.hub_arrival(HubId(1), vec![detached()]).unwrap());
        let p2 = Arc::new(pm.hub_arrival(HubId(2), vec![detached()]).unwrap());
        let t1 = {
            let p1 = p1.clone();
            thread::spawn(move || p1.connector_changed(ConnectorId(0), attached(1)).unwrap())
        };
        control.wait_entered(); // the victim's callback is running on t1
        let t2 = {
            let p2 = p2.clone();
            thread::spawn(move || p2.connector_changed(ConnectorId(0), attached(1)).unwrap())
        };
        wait_until("the killer's deregister has removed the victim", || {
            pm.client_count() == 1
        });
        assert_eq!(
            rx.recv_timeout(MUST_STILL_WAIT).err(),
            Some(mpsc::RecvTimeoutError::Timeout),
            "deregister from a callback returned while its target's callback was running"
        );
        control.release();
        let (result, done_at_return) = rx.recv().unwrap();
        assert_eq!(result, Ok(()));
        assert!(
            done_at_return,
            "returned before the target's callback finished"
        );
        t1.join().unwrap();
        t2.join().unwrap();
        assert_eq!(pm.deregister(victim), Err(Error::StaleHandle(victim)));
        assert_eq!(pm.deregister(killer), Ok(()));
    });
}

/// Two threads deregister the same handle while its callback runs: the loser is told
/// `StaleHandle` at once, the winner gets `Ok` only after the callback has returned.
#[test]
fn concurrent_deregisters_of_one_handle_one_waits_and_one_is_stale() {
    watchdog("concurrent deregisters", || {
        let pm = PolicyManager::new();
        let (h, ctx, control) = blocking_client(&pm);
        let port = Arc::new(pm.hub_arrival(HubId(1), vec![detached()]).unwrap());
        let hub_thread = {
            let port = port.clone();
            thread::spawn(move || port.connector_changed(ConnectorId(0), attached(1)).unwrap())
        };
        control.wait_entered();

        let (tx, rx) = mpsc::channel();
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let (pm, ctx, tx) = (pm.clone(), ctx.clone(), tx.clone());
                thread::spawn(move || {
                    let r = pm.deregister(h);
                    tx.send((r, ctx.done.load(Ordering::SeqCst))).unwrap();
                })
            })
            .collect();

        // The callback is still blocked, so whichever answer comes first must be the loser's.
        let (first, _) = rx.recv().unwrap();
        assert_eq!(first, Err(Error::StaleHandle(h)));
        assert!(!ctx.done.load(Ordering::SeqCst));
        control.release();
        let (second, done_at_return) = rx.recv().unwrap();
        assert_eq!(second, Ok(()));
        assert!(done_at_return);
        for t in threads {
            t.join().unwrap();
        }
        hub_thread.join().unwrap();
    });
}

#[test]
fn panicking_callback_is_contained_and_counted() {
    watchdog("panicking callback", || {
        let pm = PolicyManager::new();
        let hub = HubId(1);
        let panicker_calls = Arc::new(AtomicUsize::new(0));
        let panicker = {
            let calls = panicker_calls.clone();
            pm.register(ClientConfig::new((), move |_, _, n| {
                calls.fetch_add(1, Ordering::SeqCst);
                if is_change(n) {
                    panic!("deliberate panic in a test callback (seq {})", n.seq);
                }
            }))
            .unwrap()
        };
        // Registered after the panicker, so it is delivered to after it.
        let log = new_log();
        let other = pm.register(recorder(&log)).unwrap();
        assert_eq!(pm.panicked_callbacks(), 0);

        let port = pm.hub_arrival(hub, vec![detached()]).unwrap();
        port.connector_changed(ConnectorId(0), attached(1)).unwrap();
        assert_eq!(pm.panicked_callbacks(), 1);
        port.connector_changed(ConnectorId(0), attached(2)).unwrap();
        assert_eq!(pm.panicked_callbacks(), 2);
        assert_eq!(
            panicker_calls.load(Ordering::SeqCst),
            4,
            "the Policy Manager's arrival, the hub's arrival + two changes: it stays subscribed"
        );
        assert_eq!(
            snapshot(&log),
            vec![
                arrival(hub, 0, hub_info(hub, &[detached()])),
                change(hub, 1, 0, attached(1)),
                change(hub, 2, 0, attached(2)),
            ],
            "the other client receives every event despite the panics"
        );

        assert_eq!(
            pm.deregister(panicker),
            Ok(()),
            "the panics released their in-flight counts"
        );
        port.connector_changed(ConnectorId(0), attached(3)).unwrap();
        assert_eq!(pm.panicked_callbacks(), 2);
        assert_eq!(panicker_calls.load(Ordering::SeqCst), 4);
        assert_eq!(len(&log), 4);
        assert_eq!(pm.deregister(other), Ok(()));
    });
}

/// A callback that panics on another thread while deregister waits for it: the wait
/// still ends.
#[test]
fn deregister_waiting_for_a_callback_that_panics_returns() {
    struct Ctx {
        gate: Gate,
    }
    watchdog("deregister waits for a panicking callback", || {
        let pm = PolicyManager::new();
        let (gate, control) = gate();
        let h = pm
            .register(ClientConfig::new(Ctx { gate }, |ctx, _pm, n| {
                if is_change(n) {
                    ctx.gate.block();
                    panic!("deliberate panic after release");
                }
            }))
            .unwrap();
        let port = Arc::new(pm.hub_arrival(HubId(1), vec![detached()]).unwrap());
        let hub_thread = {
            let port = port.clone();
            thread::spawn(move || port.connector_changed(ConnectorId(0), attached(1)).unwrap())
        };
        control.wait_entered();
        let (tx, rx) = mpsc::channel();
        let deregistering = {
            let pm = pm.clone();
            thread::spawn(move || tx.send(pm.deregister(h)).unwrap())
        };
        wait_until("deregister has removed the client", || {
            pm.client_count() == 0
        });
        assert!(
            rx.recv_timeout(MUST_STILL_WAIT).is_err(),
            "returned before the callback did"
        );
        control.release();
        assert_eq!(rx.recv().unwrap(), Ok(()));
        deregistering.join().unwrap();
        hub_thread.join().unwrap();
        assert_eq!(pm.panicked_callbacks(), 1);
    });
}

/// deregister races the end of a running callback, over and over: the callback is
/// running when deregister starts and ends a little later each round, sweeping its
/// return across deregister's close-then-wait. The last callback's wake-up must never be
/// lost (a lost one hangs deregister, which the watchdog reports), and deregister must
/// never return before the callback. Whether the window is hit depends on the two threads
/// running on two cores at once; a correct library passes regardless.
#[test]
fn deregister_racing_the_end_of_a_callback_always_wakes_up() {
    const ROUNDS: u32 = 3_000;
    struct Ctx {
        entered: AtomicBool,
        deregistering: AtomicBool,
        done: AtomicBool,
        spin: u32,
    }
    watchdog("deregister racing a returning callback", || {
        let pm = PolicyManager::new();
        let port = pm.hub_arrival(HubId(1), vec![detached()]).unwrap();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        thread::scope(|s| {
            let port = &port;
            s.spawn(move || {
                for k in 0..ROUNDS {
                    go_rx.recv().unwrap();
                    port.connector_changed(ConnectorId(0), attached(k)).unwrap();
                }
            });
            for k in 0..ROUNDS {
                let ctx = Arc::new(Ctx {
                    entered: AtomicBool::new(false),
                    deregistering: AtomicBool::new(false),
                    done: AtomicBool::new(false),
                    spin: k % 1024,
                });
                let h = pm
                    .register(ClientConfig::new(ctx.clone(), |ctx, _pm, n| {
                        if is_change(n) {
                            ctx.entered.store(true, Ordering::SeqCst);
                            spin_until(&ctx.deregistering);
                            for i in 0..ctx.spin {
                                std::hint::black_box(i);
                            }
                            ctx.done.store(true, Ordering::SeqCst);
                        }
                    }))
                    .unwrap();
                go_tx.send(()).unwrap();
                spin_until(&ctx.entered);
                ctx.deregistering.store(true, Ordering::SeqCst);
                assert_eq!(pm.deregister(h), Ok(()));
                assert!(
                    ctx.done.load(Ordering::SeqCst),
                    "round {k}: deregister returned before the callback did"
                );
            }
        });
    });
}

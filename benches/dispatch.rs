//! The delivery hot path of `usbpm` against hand-written baselines, all measured in the
//! same run (see `docs/PERFORMANCE.md` for the command, the results and what they mean).
//!
//! Run with `cargo bench -p usbpm --bench dispatch`. The `-p usbpm` matters: a plain
//! `cargo bench` also selects the `model/` workspace member, whose dependency on `usbpm`
//! turns on the `checking` feature, and feature unification would then benchmark the
//! library with its verification hooks compiled in.
//!
//! After measuring, the bench prints the same-run ratio tables of `docs/PERFORMANCE.md`
//! (module `report`). `-- --report-only [CRITERION_DIR ...]` prints them from results
//! already on disk, one directory per run, without running anything.
//!
//! Every design delivers the same `Notification` (a connector state change, built per
//! event) to the same clients, whose callbacks do the same trivial work
//! ([`Counter::bump`]). The designs:
//!
//! - `usbpm`: `HubPort::connector_changed` on an idle hub, which delivers synchronously on
//!   the calling thread (hub-queue lock/unlock twice per event, one in-flight
//!   `fetch_add`/`fetch_sub` per client, plus the callback bookkeeping).
//! - `a_bare_call`: a plain `Vec<Box<dyn Fn>>` called in a loop. No registry, no safety.
//! - `b_atomic_pair`: (a) plus a per-client `fetch_add`/`fetch_sub` around each call, the
//!   lower bound for any rundown-protected delivery.
//! - `c_mutex`: a `Mutex<Vec<..>>` registry whose callbacks are called under the lock.
//! - `d_rwlock`: an `RwLock<Vec<..>>` registry, read lock held while calling.
//! - `e_snapshot_unsafe`: `Mutex<Arc<Vec<Arc<dyn Fn>>>>`; delivery clones the `Arc` under
//!   the lock and calls without any in-flight protection, so its deregister returns while
//!   callbacks may still run: it breaks the deregister contract and is here only as a
//!   speed reference.
//!
//! (a) to (e) are baselines written in this file, not library code.

use std::hint::{black_box, spin_loop};
use std::sync::atomic::{
    AtomicBool, AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};
use std::sync::{Arc, Barrier, Mutex, RwLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use usbpm::{
    ClientConfig, ClientHandle, ConnectorId, ConnectorState, Event, HubHandle, HubId, HubPort,
    Notification, PolicyManager,
};

mod report;

// ---------------------------------------------------------------------------------------
// The clients' trivial work, identical in every design.

/// One client's context: a counter on its own cache line, and how much extra work its
/// callback does (0 in every benchmark except `deliver_parallel_busy_8clients`).
#[repr(align(64))]
#[derive(Default)]
struct Counter {
    count: AtomicU64,
    work: u32,
}

impl Counter {
    /// What every callback does: read the notification, bump the counter (a relaxed
    /// load and store, not a read-modify-write, so the work itself adds no atomic RMW),
    /// then `work` rounds of opaque busy work.
    #[inline(always)]
    fn bump(&self, n: &Notification) {
        black_box(n.seq);
        let c = black_box(&self.count);
        c.store(c.load(Relaxed).wrapping_add(1), Relaxed);
        for i in 0..self.work {
            black_box(i);
        }
    }

    fn get(&self) -> u64 {
        self.count.load(Relaxed)
    }
}

fn counters(n: usize) -> Vec<Arc<Counter>> {
    busy_counters(n, 0)
}

fn busy_counters(n: usize, work: u32) -> Vec<Arc<Counter>> {
    (0..n)
        .map(|_| {
            Arc::new(Counter {
                count: AtomicU64::new(0),
                work,
            })
        })
        .collect()
}

type Cb = Box<dyn Fn(&Notification) + Send + Sync>;
type SharedCb = Arc<dyn Fn(&Notification) + Send + Sync>;

fn callback(c: Arc<Counter>) -> impl Fn(&Notification) + Send + Sync + 'static {
    move |n| c.bump(n)
}

fn state(seq: u64) -> ConnectorState {
    ConnectorState {
        attached: seq & 1 == 1,
        ..ConnectorState::default()
    }
}

/// The event the baselines deliver: what `usbpm` builds for a connector change.
#[inline(always)]
fn notification(hub: usize, seq: u64) -> Notification {
    Notification {
        hub: Some(HubHandle {
            id: HubId(hub as u32),
            presence: 1,
        }),
        seq,
        event: Event::ConnectorStateChange {
            connector: ConnectorId(0),
            state: state(seq),
        },
    }
}

// ---------------------------------------------------------------------------------------
// The designs.

/// A way to deliver one hub's event to every registered client.
trait Design: Sync + Sized {
    const NAME: &'static str;
    /// Registers `clients` (in order) and makes `hubs` hubs present.
    fn new(clients: &[Arc<Counter>], hubs: usize) -> Self;
    /// Delivers one event of hub `hub`, with sequence number `seq`, to every client.
    fn deliver(&self, hub: usize, seq: u64);
}

/// A design with a registry that clients can join and leave while events flow.
trait Churn: Design {
    /// `register` replays the hubs' arrivals to the new client (only `usbpm` does).
    const REPLAYS_ARRIVAL: bool = false;
    type Handle: Send;
    fn register(&self, c: Arc<Counter>) -> Self::Handle;
    fn deregister(&self, h: Self::Handle);
}

struct Usbpm {
    // Field order: the ports drop (removing their hubs) before the Policy Manager.
    ports: Vec<HubPort>,
    pm: PolicyManager,
}

impl Design for Usbpm {
    const NAME: &'static str = "usbpm";
    fn new(clients: &[Arc<Counter>], hubs: usize) -> Self {
        let pm = PolicyManager::new();
        for c in clients {
            pm.register(ClientConfig::new(c.clone(), |c, _pm, n| c.bump(n)))
                .expect("register");
        }
        let ports = (0..hubs)
            .map(|h| {
                pm.hub_arrival(HubId(h as u32), vec![ConnectorState::default()])
                    .expect("new hub")
            })
            .collect();
        Usbpm { ports, pm }
    }
    #[inline]
    fn deliver(&self, hub: usize, seq: u64) {
        if self.ports[hub]
            .connector_changed(ConnectorId(0), state(seq))
            .is_err()
        {
            panic!("connector_changed failed");
        }
    }
}

impl Churn for Usbpm {
    const REPLAYS_ARRIVAL: bool = true;
    type Handle = ClientHandle;
    fn register(&self, c: Arc<Counter>) -> ClientHandle {
        self.pm
            .register(ClientConfig::new(c, |c, _pm, n| c.bump(n)))
            .expect("register")
    }
    fn deregister(&self, h: ClientHandle) {
        self.pm.deregister(h).expect("deregister");
    }
}

/// (a) A bare call through `Box<dyn Fn>`.
struct BareCall {
    callbacks: Vec<Cb>,
}

impl Design for BareCall {
    const NAME: &'static str = "a_bare_call";
    fn new(clients: &[Arc<Counter>], _hubs: usize) -> Self {
        BareCall {
            callbacks: clients
                .iter()
                .map(|c| Box::new(callback(c.clone())) as Cb)
                .collect(),
        }
    }
    #[inline]
    fn deliver(&self, hub: usize, seq: u64) {
        let n = notification(hub, seq);
        for cb in &self.callbacks {
            cb(&n);
        }
    }
}

/// (b) (a) with a per-client in-flight count taken and given back around each call: the
/// same fast path as `usbpm`'s rundown, and nothing else.
struct AtomicPair {
    clients: Vec<PairClient>,
}

const CLOSED: u64 = 1 << 63;

#[repr(align(64))]
struct PairClient {
    in_flight: AtomicU64,
    callback: Cb,
}

impl Design for AtomicPair {
    const NAME: &'static str = "b_atomic_pair";
    fn new(clients: &[Arc<Counter>], _hubs: usize) -> Self {
        AtomicPair {
            clients: clients
                .iter()
                .map(|c| PairClient {
                    in_flight: AtomicU64::new(0),
                    callback: Box::new(callback(c.clone())),
                })
                .collect(),
        }
    }
    #[inline]
    fn deliver(&self, hub: usize, seq: u64) {
        let n = notification(hub, seq);
        for c in &self.clients {
            if c.in_flight.fetch_add(1, Acquire) & CLOSED == 0 {
                (c.callback)(&n);
            }
            c.in_flight.fetch_sub(1, Release);
        }
    }
}

/// A registry entry of the lock-based baselines.
struct Entry {
    id: u64,
    callback: Cb,
}

/// (c) A `Mutex` registry; callbacks are called with the lock held.
struct MutexRegistry {
    clients: Mutex<Vec<Entry>>,
    next: AtomicU64,
}

impl Design for MutexRegistry {
    const NAME: &'static str = "c_mutex";
    fn new(clients: &[Arc<Counter>], _hubs: usize) -> Self {
        let r = MutexRegistry {
            clients: Mutex::new(Vec::new()),
            next: AtomicU64::new(0),
        };
        for c in clients {
            r.register(c.clone());
        }
        r
    }
    #[inline]
    fn deliver(&self, hub: usize, seq: u64) {
        let n = notification(hub, seq);
        let clients = self.clients.lock().unwrap();
        for e in clients.iter() {
            (e.callback)(&n);
        }
    }
}

impl Churn for MutexRegistry {
    type Handle = u64;
    fn register(&self, c: Arc<Counter>) -> u64 {
        let id = self.next.fetch_add(1, Relaxed);
        let e = Entry {
            id,
            callback: Box::new(callback(c)),
        };
        self.clients.lock().unwrap().push(e);
        id
    }
    fn deregister(&self, id: u64) {
        let removed = {
            let mut clients = self.clients.lock().unwrap();
            let i = clients.iter().position(|e| e.id == id).expect("registered");
            clients.remove(i)
        };
        drop(removed);
    }
}

/// (d) An `RwLock` registry; callbacks are called with the read lock held.
struct RwLockRegistry {
    clients: RwLock<Vec<Entry>>,
    next: AtomicU64,
}

impl Design for RwLockRegistry {
    const NAME: &'static str = "d_rwlock";
    fn new(clients: &[Arc<Counter>], _hubs: usize) -> Self {
        let r = RwLockRegistry {
            clients: RwLock::new(Vec::new()),
            next: AtomicU64::new(0),
        };
        for c in clients {
            r.register(c.clone());
        }
        r
    }
    #[inline]
    fn deliver(&self, hub: usize, seq: u64) {
        let n = notification(hub, seq);
        let clients = self.clients.read().unwrap();
        for e in clients.iter() {
            (e.callback)(&n);
        }
    }
}

impl Churn for RwLockRegistry {
    type Handle = u64;
    fn register(&self, c: Arc<Counter>) -> u64 {
        let id = self.next.fetch_add(1, Relaxed);
        let e = Entry {
            id,
            callback: Box::new(callback(c)),
        };
        self.clients.write().unwrap().push(e);
        id
    }
    fn deregister(&self, id: u64) {
        let removed = {
            let mut clients = self.clients.write().unwrap();
            let i = clients.iter().position(|e| e.id == id).expect("registered");
            clients.remove(i)
        };
        drop(removed);
    }
}

/// (e) A copy-on-write snapshot: delivery clones the `Arc` of the list under a mutex and
/// calls without holding anything. Deregister swaps in a list without the client and
/// returns at once, while a delivery holding the old snapshot may still be calling it:
/// UNSAFE in the sense of the deregister contract.
struct Snapshot {
    clients: Mutex<Arc<Vec<(u64, SharedCb)>>>,
    next: AtomicU64,
}

impl Design for Snapshot {
    const NAME: &'static str = "e_snapshot_unsafe";
    fn new(clients: &[Arc<Counter>], _hubs: usize) -> Self {
        let r = Snapshot {
            clients: Mutex::new(Arc::new(Vec::new())),
            next: AtomicU64::new(0),
        };
        for c in clients {
            r.register(c.clone());
        }
        r
    }
    #[inline]
    fn deliver(&self, hub: usize, seq: u64) {
        let n = notification(hub, seq);
        let snapshot = self.clients.lock().unwrap().clone();
        for (_, cb) in snapshot.iter() {
            cb(&n);
        }
    }
}

impl Churn for Snapshot {
    type Handle = u64;
    fn register(&self, c: Arc<Counter>) -> u64 {
        let id = self.next.fetch_add(1, Relaxed);
        let cb: SharedCb = Arc::new(callback(c));
        let mut clients = self.clients.lock().unwrap();
        let mut next = Vec::with_capacity(clients.len() + 1);
        next.extend(clients.iter().cloned());
        next.push((id, cb));
        *clients = Arc::new(next);
        id
    }
    fn deregister(&self, id: u64) {
        let old = {
            let mut clients = self.clients.lock().unwrap();
            let next: Vec<_> = clients.iter().filter(|(i, _)| *i != id).cloned().collect();
            std::mem::replace(&mut *clients, Arc::new(next))
        };
        drop(old);
    }
}

/// Builds a design and checks that one event reaches every client exactly once.
fn build<D: Design>(clients: &[Arc<Counter>], hubs: usize) -> D {
    let d = D::new(clients, hubs);
    let before: Vec<u64> = clients.iter().map(|c| c.get()).collect();
    d.deliver(0, 1);
    for (c, b) in clients.iter().zip(before) {
        assert_eq!(
            c.get(),
            b + 1,
            "{}: an event must reach every client once",
            D::NAME
        );
    }
    d
}

// ---------------------------------------------------------------------------------------
// Harnesses.

/// `threads` threads, thread `t` delivering `iters` events of hub `t`; wall time from the
/// common start until the last one finishes.
fn run_parallel<D: Design>(d: &D, threads: usize, iters: u64) -> Duration {
    let start_line = Barrier::new(threads + 1);
    thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let start_line = &start_line;
                s.spawn(move || {
                    start_line.wait();
                    for seq in 0..iters {
                        d.deliver(t, seq);
                    }
                })
            })
            .collect();
        start_line.wait();
        let start = Instant::now();
        for w in workers {
            w.join().expect("worker");
        }
        start.elapsed()
    })
}

/// Spins (then yields) until `counter` moves past `before`.
#[inline]
fn wait_past(counter: &Counter, before: u64) {
    let mut spins = 0u32;
    while counter.get() == before {
        spin_loop();
        spins += 1;
        if spins > 1_000 {
            thread::yield_now();
        }
    }
}

/// Delivers one event of hub 0 and waits until `probe` (a client that stays registered)
/// has received it. In `usbpm` another thread may be draining the hub (a registering
/// thread replaying the arrival), in which case `connector_changed` only queues the event;
/// waiting makes every design's time the time to get the event delivered.
#[inline]
fn deliver_and_wait<D: Design>(d: &D, probe: &Counter, seq: u64) {
    let before = probe.get();
    d.deliver(0, seq);
    wait_past(probe, before);
}

/// One churn step, unpaced: registers a client and deregisters it at once.
///
/// `usbpm`'s `register` returns once the new client's Policy Manager arrival and its hub
/// arrival replay are delivered (it delivers the replay itself, or sleeps while the hub's
/// drainer does), so no pacing is needed:
/// before bounded delivery, a churner that re-registered at once kept the delivering
/// thread's drain loop busy forever while the hub queue grew without bound (see
/// docs/PERFORMANCE.md, "Unpaced churn").
#[inline]
fn churn_once<D: Churn>(d: &D, spare: &Arc<Counter>) {
    let before = spare.get();
    let h = d.register(spare.clone());
    if D::REPLAYS_ARRIVAL {
        // The Policy Manager's arrival, then the one hub's replay (at least: events may
        // follow before the deregister).
        assert!(
            spare.get() >= before + 2,
            "register returned before its replay"
        );
    }
    d.deregister(h);
}

/// Times `iters` events delivered (one at a time) while another thread registers and
/// deregisters a client as fast as it can.
fn churn_measure_delivery<D: Churn>(
    d: &D,
    probe: &Counter,
    spare: &Arc<Counter>,
    iters: u64,
) -> Duration {
    let stop = AtomicBool::new(false);
    let ready = Barrier::new(2);
    thread::scope(|s| {
        let churner = s.spawn(|| {
            ready.wait();
            while !stop.load(Relaxed) {
                churn_once(d, spare);
            }
        });
        ready.wait();
        let start = Instant::now();
        for seq in 0..iters {
            deliver_and_wait(d, probe, seq);
        }
        let elapsed = start.elapsed();
        stop.store(true, Relaxed);
        churner.join().expect("churner");
        elapsed
    })
}

/// Times `iters` register+deregister pairs while another thread delivers events (one at
/// a time) as fast as it can.
fn churn_measure_registration<D: Churn>(
    d: &D,
    probe: &Counter,
    spare: &Arc<Counter>,
    iters: u64,
) -> Duration {
    let stop = AtomicBool::new(false);
    let ready = Barrier::new(2);
    thread::scope(|s| {
        let deliverer = s.spawn(|| {
            ready.wait();
            let mut seq = 0;
            while !stop.load(Relaxed) {
                deliver_and_wait(d, probe, seq);
                seq += 1;
            }
        });
        ready.wait();
        let start = Instant::now();
        for _ in 0..iters {
            churn_once(d, spare);
        }
        let elapsed = start.elapsed();
        stop.store(true, Relaxed);
        deliverer.join().expect("deliverer");
        elapsed
    })
}

// ---------------------------------------------------------------------------------------
// Benchmarks.

const CLIENTS: [usize; 3] = [1, 8, 64];
const THREADS: [usize; 3] = [1, 2, 4];
const PARALLEL_CLIENTS: usize = 8;
const CHURN_CLIENTS: usize = 8;

fn one_thread<D: Design>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    n: usize,
) {
    let clients = counters(n);
    let d = build::<D>(&clients, 1);
    g.throughput(Throughput::Elements(n as u64));
    let mut seq = 1;
    g.bench_with_input(BenchmarkId::new(D::NAME, n), &n, |b, _| {
        b.iter(|| {
            seq += 1;
            d.deliver(0, black_box(seq));
        })
    });
}

fn deliver_one_thread(c: &mut Criterion) {
    let mut g = c.benchmark_group("deliver_1thread");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_millis(1500))
        .sample_size(60);
    for n in CLIENTS {
        one_thread::<Usbpm>(&mut g, n);
        one_thread::<BareCall>(&mut g, n);
        one_thread::<AtomicPair>(&mut g, n);
        one_thread::<MutexRegistry>(&mut g, n);
        one_thread::<RwLockRegistry>(&mut g, n);
        one_thread::<Snapshot>(&mut g, n);
    }
    g.finish();
}

fn parallel<D: Design>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    threads: usize,
    work: u32,
) {
    let clients = busy_counters(PARALLEL_CLIENTS, work);
    let d = build::<D>(&clients, *THREADS.iter().max().unwrap());
    // One iteration: every thread delivers one event to every client.
    g.throughput(Throughput::Elements((threads * PARALLEL_CLIENTS) as u64));
    g.bench_with_input(
        BenchmarkId::new(D::NAME, threads),
        &threads,
        |b, &threads| b.iter_custom(|iters| run_parallel(&d, threads, iters)),
    );
}

fn deliver_parallel(c: &mut Criterion) {
    let mut g = c.benchmark_group("deliver_parallel_8clients");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_millis(2000))
        .sample_size(30);
    for t in THREADS {
        parallel::<Usbpm>(&mut g, t, 0);
        parallel::<BareCall>(&mut g, t, 0);
        parallel::<AtomicPair>(&mut g, t, 0);
        parallel::<MutexRegistry>(&mut g, t, 0);
        parallel::<RwLockRegistry>(&mut g, t, 0);
        parallel::<Snapshot>(&mut g, t, 0);
    }
    g.finish();
}

/// Not one of the cases: the same contention pattern with callbacks that do
/// some work (`BUSY_WORK` opaque loop rounds each), to show where lock-held delivery
/// stops scaling. Two threads only: the machine has two cores.
const BUSY_WORK: u32 = 1000;

fn deliver_parallel_busy(c: &mut Criterion) {
    let mut g = c.benchmark_group("deliver_parallel_busy_8clients");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_millis(2000))
        .sample_size(30);
    for t in [1, 2] {
        parallel::<Usbpm>(&mut g, t, BUSY_WORK);
        parallel::<AtomicPair>(&mut g, t, BUSY_WORK);
        parallel::<MutexRegistry>(&mut g, t, BUSY_WORK);
        parallel::<RwLockRegistry>(&mut g, t, BUSY_WORK);
    }
    g.finish();
}

fn churn_all(c: &mut Criterion) {
    churn_pair::<Usbpm>(c);
    churn_pair::<MutexRegistry>(c);
    churn_pair::<RwLockRegistry>(c);
    churn_pair::<Snapshot>(c);
}

/// One design under churn: its delivery time with a churning thread beside it, then its
/// register+deregister time with a delivering thread beside it (same registry).
fn churn_pair<D: Churn>(c: &mut Criterion) {
    let clients = counters(CHURN_CLIENTS);
    let spare = Arc::new(Counter::default());
    let d = build::<D>(&clients, 1);
    let probe = &clients[0];
    for (group, registration) in [
        ("churn_deliver_8clients", false),
        ("churn_register_deregister", true),
    ] {
        let mut g = c.benchmark_group(group);
        g.warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_millis(2000))
            .sample_size(30);
        g.bench_function(D::NAME, |b| {
            b.iter_custom(|iters| {
                if registration {
                    churn_measure_registration(&d, probe, &spare, iters)
                } else {
                    churn_measure_delivery(&d, probe, &spare, iters)
                }
            })
        });
        g.finish();
    }
}

criterion_group!(
    benches,
    deliver_one_thread,
    deliver_parallel,
    deliver_parallel_busy,
    churn_all
);

/// What `criterion_main!(benches)` does, then the ratio tables of the benchmarks just
/// measured; with `--report-only`, only the tables, from the results on disk.
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--report-only") {
        std::process::exit(report::report_only(&args));
    }
    let started = SystemTime::now();
    benches();
    Criterion::default().configure_from_args().final_summary();
    if report::measured(&args) {
        report::after_run(started);
    }
}

//! Every program up to a size, reduced by symmetry; random larger programs; shrinking.
//!
//! A [`Size`] bounds threads, operations per thread, clients and hubs. The enumerator
//! lists every [`Program`] within it whose parts can all matter:
//!
//! - **clients**: 1 up to the bound, each with any [`Behaviour`] it can have and either
//!   registration kind (plain handle, or an owned `Registration`); in a size with drop
//!   behaviours (`-d`, or `-D` for only the programs with at least one), each client acts
//!   either on its events or on its context's drop (any [`DropBehaviour`] it can have, its
//!   callback then doing nothing): the two kinds are added, not multiplied, so a tier
//!   grows by a third to a half, not threefold or more (a client with both is left to the
//!   random programs);
//! - **hubs**: 0 up to the bound (exactly the bound in a size written `-H`);
//! - **shutdown** (a size written `-s`, or `-S` for only the programs with one of them):
//!   the parallel part's ops include [`Op::Shutdown`] and the hardware's answers
//!   ([`Op::Answer`], accepting or rejecting every pending power request of a hub), and
//!   callbacks may call `shutdown` ([`Behaviour::Shutdown`]); sizes without the suffix
//!   have none of them, and list exactly the programs they listed before they existed;
//! - **detach** (a size written `-w`, or `-W` for only the programs with one of them):
//!   callbacks may drop another owned client's guard ([`Behaviour::DropGuard`]: the drop
//!   that detaches where waiting would close a cycle) or detach an owned client's
//!   registration, their own too ([`Behaviour::Detach`]), or wait on a client's kept
//!   detach completion ([`Behaviour::Wait`]: the wait that may be refused), and the
//!   parallel part's ops include that wait ([`Op::Wait`]); sizes without
//!   the suffix have none of them, and list exactly the programs they listed before;
//! - **init**: any subset of the clients registered, then any subset of the hubs arrived
//!   (in that order, so the init part delivers arrivals to the clients registered);
//! - **parallel**: 2 up to the bound of threads, each with 1 up to the bound of ops.
//!
//! Reductions, each an equivalence that keeps the set of behaviours a checker explores:
//! - *dead parts*: a program with an op that can never act (dropping the guard of a
//!   client registered by handle, deregistering a client never registered, changing or
//!   removing a hub that never arrives, answering a hub nobody can request power of:
//!   no thread's `assign power` on it and no callback that assigns power, waiting for a
//!   client's detach that no callback makes, on a thread or in a callback; a callback
//!   dropping or detaching the guard of a client registered by handle), a client
//!   never registered or a hub never arriving is the smaller program without it, which
//!   is enumerated on its own; a behaviour that can never fire is `Nothing`;
//! - *symmetry*: renaming clients, renaming hubs and permuting threads; one program per
//!   orbit is kept (the least in the derived order).
//!
//! [`Tier`] reports the count before and after each reduction. Counts (raw / live / after
//! symmetry) of sizes outside the gate's report, measured once with the ignored test
//! `counts` (`USBPM_COUNT_SIZES`): 2x1-c2-h1 245,982 / 51,225 / 21,493; 3x1-c2-h1
//! 1,418,152 / 306,401 / 135,240; 3x1-c2-h2 9,086,488 / 1,133,667 / 367,198; 2x2-c2-h1
//! 41,194,626 / 9,519,789 / 4,416,504; 2x2-c2-h2 383,444,754 / 50,946,423 / 15,283,162
//! (enumerated in 371 s).

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::lang::program::{Behaviour, ClientIx, ClientSpec, DropBehaviour, HubIx, Op, Program};

/// How large the enumerated programs are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Size {
    /// Threads in the parallel part (at most).
    pub threads: usize,
    /// Operations per thread (at most).
    pub ops: usize,
    /// Clients (at most).
    pub clients: usize,
    /// Hubs (at most).
    pub hubs: usize,
    /// Only programs with exactly `hubs` hubs (written `-H2` instead of `-h2`): the
    /// smaller ones are a tier of their own.
    #[serde(default)]
    pub exact_hubs: bool,
    /// Contexts with drop behaviours (module docs).
    #[serde(default)]
    pub drops: Drops,
    /// The Policy Manager's shutdown and the hardware's answers to power requests
    /// (module docs).
    #[serde(default)]
    pub shutdown: Shutdowns,
    /// Guards dropped or detached by callbacks and the waits on detach completions
    /// (module docs).
    #[serde(default)]
    pub detach: Detaches,
}

/// Whether a size's clients' contexts have drop behaviours.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Drops {
    /// Every context's drop does nothing (no suffix).
    #[default]
    None,
    /// Contexts may have drop behaviours (`-d`): the programs without them too.
    Also,
    /// Only programs in which some context has a drop behaviour (`-D`): the rest is the
    /// tier without the suffix.
    Only,
}

/// Whether a size's programs shut the Policy Manager down and answer power requests:
/// [`Op::Shutdown`], [`Op::Answer`] and the callback behaviour [`Behaviour::Shutdown`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Shutdowns {
    /// None of them (no suffix): the tiers as they were before the shutdown existed.
    #[default]
    None,
    /// They may appear (`-s`): the programs without them too.
    Also,
    /// Only programs in which one of them appears (`-S`): the rest is the tier without
    /// the suffix.
    Only,
}

/// Whether a size's programs drop other clients' guards and detach registrations in
/// callbacks, and wait on the completions: [`Behaviour::DropGuard`], [`Behaviour::Detach`]
/// and [`Op::Wait`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Detaches {
    /// None of them (no suffix): the tiers as they were before they existed.
    #[default]
    None,
    /// They may appear (`-w`): the programs without them too.
    Also,
    /// Only programs in which one of them appears (`-W`): the rest is the tier without
    /// the suffix.
    Only,
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = if self.exact_hubs { 'H' } else { 'h' };
        write!(
            f,
            "{}x{}-c{}-{h}{}",
            self.threads, self.ops, self.clients, self.hubs
        )?;
        match self.drops {
            Drops::None => {}
            Drops::Also => write!(f, "-d")?,
            Drops::Only => write!(f, "-D")?,
        }
        match self.shutdown {
            Shutdowns::None => {}
            Shutdowns::Also => write!(f, "-s")?,
            Shutdowns::Only => write!(f, "-S")?,
        }
        match self.detach {
            Detaches::None => Ok(()),
            Detaches::Also => write!(f, "-w"),
            Detaches::Only => write!(f, "-W"),
        }
    }
}

impl std::str::FromStr for Size {
    type Err = String;

    /// `TxK` (threads × ops per thread, 2 clients, 2 hubs) or `TxK-cC-hH`; `-HH` for
    /// exactly H hubs, `-d` for contexts with drop behaviours, `-D` for only the programs
    /// with some; `-s` for the shutdown and power answers, `-S` for only the programs
    /// with one of them; `-w` for guards dropped or detached by callbacks and the waits
    /// on detach completions, `-W` for only the programs with one of them.
    fn from_str(s: &str) -> Result<Size, String> {
        let usage = || {
            format!(
                "`{s}` is not a size: write TxK or TxK-cC-hH, e.g. 2x1 or 2x2-c2-h1 \
                 (-HH: exactly H hubs; -d: contexts with drop behaviours; -D: only programs with some; \
                 -s: shutdown and power answers; -S: only programs with one of them; \
                 -w: guards dropped or detached by callbacks, waits on detach completions; \
                 -W: only programs with one of them)"
            )
        };
        let mut parts = s.split('-');
        let tk = parts.next().ok_or_else(usage)?;
        let (t, k) = tk.split_once('x').ok_or_else(usage)?;
        let mut size = Size {
            threads: t.parse().map_err(|_| usage())?,
            ops: k.parse().map_err(|_| usage())?,
            clients: 2,
            hubs: 2,
            exact_hubs: false,
            drops: Drops::None,
            shutdown: Shutdowns::None,
            detach: Detaches::None,
        };
        for p in parts {
            match p {
                "d" => size.drops = Drops::Also,
                "D" => size.drops = Drops::Only,
                "s" => size.shutdown = Shutdowns::Also,
                "S" => size.shutdown = Shutdowns::Only,
                "w" => size.detach = Detaches::Also,
                "W" => size.detach = Detaches::Only,
                _ => {}
            }
            if matches!(p, "d" | "D" | "s" | "S" | "w" | "W") {
                continue;
            }
            if p.is_empty() || !p.is_char_boundary(1) {
                return Err(usage());
            }
            let (key, v) = p.split_at(1);
            let v: usize = v.parse().map_err(|_| usage())?;
            match key {
                "c" => size.clients = v,
                "h" => size.hubs = v,
                "H" => {
                    size.hubs = v;
                    size.exact_hubs = true;
                }
                _ => return Err(usage()),
            }
        }
        if size.threads < 2 || size.ops < 1 || size.clients < 1 || size.clients > 4 || size.hubs > 3
        {
            return Err(format!(
                "size {s}: need at least 2 threads and 1 op, 1 to 4 clients, at most 3 hubs"
            ));
        }
        Ok(size)
    }
}

impl Size {
    /// Whether every program of `other` is a program of `self`.
    pub fn includes(&self, other: &Size) -> bool {
        let bounds = self.threads >= other.threads
            && self.ops >= other.ops
            && self.clients >= other.clients
            && self.hubs >= other.hubs;
        // An exact hub count holds only programs with that many hubs.
        let hubs = !self.exact_hubs || (other.exact_hubs && other.hubs == self.hubs);
        let drops = self.drops == Drops::Also || self.drops == other.drops;
        let shutdown = self.shutdown == Shutdowns::Also || self.shutdown == other.shutdown;
        let detach = self.detach == Detaches::Also || self.detach == other.detach;
        bounds && hubs && drops && shutdown && detach
    }
}

/// The enumerated programs of one size, with the counts of each reduction.
#[derive(Clone, Debug)]
pub struct Tier {
    pub size: Size,
    /// Programs in the raw space (every combination of the parts above).
    pub raw: u64,
    /// After removing programs with dead parts.
    pub live: u64,
    /// After symmetry: one per orbit. These are the programs run.
    pub programs: Vec<Program>,
}

/// The callback behaviours client `c` can have (`shutdown`: [`Behaviour::Shutdown`] too;
/// `detach`: then [`Behaviour::DropGuard`] of every other client,
/// [`Behaviour::Detach`] of every client, whichever of them are owned, and
/// [`Behaviour::Wait`] on every client's completion, last).
fn behaviours(
    c: ClientIx,
    clients: usize,
    hubs: usize,
    owned: bool,
    shutdown: bool,
    detach: bool,
) -> Vec<Behaviour> {
    let mut out = vec![Behaviour::Nothing, Behaviour::Query, Behaviour::AssignPower];
    for o in 0..clients as ClientIx {
        if o != c {
            out.push(Behaviour::Register(o));
            out.push(Behaviour::Deregister(o));
        }
    }
    out.push(Behaviour::DeregisterSelf);
    if owned {
        out.push(Behaviour::DropOwnGuard);
    }
    out.push(Behaviour::Panic);
    for h in 0..hubs as HubIx {
        out.push(Behaviour::ReportChange(h));
    }
    if shutdown {
        out.push(Behaviour::Shutdown);
    }
    if detach {
        for o in 0..clients as ClientIx {
            if o != c {
                out.push(Behaviour::DropGuard(o));
            }
        }
        for o in 0..clients as ClientIx {
            out.push(Behaviour::Detach(o));
        }
        for o in 0..clients as ClientIx {
            out.push(Behaviour::Wait(o));
        }
    }
    out
}

/// The drop behaviours client `c`'s context can have, `Nothing` first.
fn drop_behaviours(c: ClientIx, clients: usize, hubs: usize) -> Vec<DropBehaviour> {
    let mut out = vec![DropBehaviour::Nothing];
    for h in 0..hubs as HubIx {
        out.push(DropBehaviour::ReportChange(h));
    }
    for o in 0..clients as ClientIx {
        if o != c {
            out.push(DropBehaviour::Register(o));
            out.push(DropBehaviour::Deregister(o));
        }
    }
    out.push(DropBehaviour::Panic);
    out
}

/// The client specs of client `c` in a tier (module docs: with drop behaviours, a client
/// acts on its events or on its drop).
fn specs(
    c: ClientIx,
    clients: usize,
    hubs: usize,
    drops: bool,
    shutdown: bool,
    detach: bool,
) -> Vec<ClientSpec> {
    let mut v = Vec::new();
    for owned in [false, true] {
        for behaviour in behaviours(c, clients, hubs, owned, shutdown, detach) {
            v.push(ClientSpec {
                behaviour,
                owned,
                on_drop: DropBehaviour::Nothing,
            });
        }
        if drops {
            for on_drop in drop_behaviours(c, clients, hubs).into_iter().skip(1) {
                v.push(ClientSpec {
                    behaviour: Behaviour::Nothing,
                    owned,
                    on_drop,
                });
            }
        }
    }
    v
}

/// The ops of the parallel part (`shutdown`: [`Op::Shutdown`] and the answers too;
/// `detach`: then the waits, [`Op::Wait`], last).
fn alphabet(clients: usize, hubs: usize, shutdown: bool, detach: bool) -> Vec<Op> {
    let mut out = Vec::new();
    for c in 0..clients as ClientIx {
        out.extend([Op::Register(c), Op::Deregister(c), Op::Drop(c)]);
    }
    out.extend([Op::DeregisterForged, Op::DeregisterForeign]);
    for h in 0..hubs as HubIx {
        out.extend([
            Op::Arrive(h),
            Op::Change(h),
            Op::Remove(h),
            Op::Query(h),
            Op::AssignPower(h),
        ]);
    }
    if shutdown {
        out.push(Op::Shutdown);
        for h in 0..hubs as HubIx {
            out.extend([Op::Answer(h, true), Op::Answer(h, false)]);
        }
    }
    if detach {
        out.extend((0..clients as ClientIx).map(Op::Wait));
    }
    out
}

/// How many sequences of 1..=k ops over an alphabet of `a` ops there are.
fn sequence_count(a: u64, k: usize) -> u64 {
    (1..=k as u32).map(|i| a.pow(i)).sum()
}

/// Whether `p` shuts the Policy Manager down or answers power requests (an `-S` program).
pub fn has_shutdown(p: &Program) -> bool {
    shutdown_in(&p.clients, p.init.iter().chain(p.threads.iter().flatten()))
}

fn shutdown_in<'a>(clients: &[ClientSpec], mut ops: impl Iterator<Item = &'a Op>) -> bool {
    clients.iter().any(|c| c.behaviour == Behaviour::Shutdown)
        || ops.any(|op| matches!(op, Op::Shutdown | Op::Answer(..)))
}

/// Whether `p` drops or detaches a guard in a callback or waits on a detach completion
/// (a `-W` program).
pub fn has_detach(p: &Program) -> bool {
    detach_in(&p.clients, p.init.iter().chain(p.threads.iter().flatten()))
}

fn is_detach_behaviour(b: Behaviour) -> bool {
    matches!(
        b,
        Behaviour::DropGuard(_) | Behaviour::Detach(_) | Behaviour::Wait(_)
    )
}

fn detach_in<'a>(clients: &[ClientSpec], mut ops: impl Iterator<Item = &'a Op>) -> bool {
    clients.iter().any(|c| is_detach_behaviour(c.behaviour))
        || ops.any(|op| matches!(op, Op::Wait(_)))
}

/// Sequences of 1..=k ops over `alphabet`, in a fixed order.
fn sequences(alphabet: &[Op], k: usize) -> Vec<Vec<Op>> {
    let mut out: Vec<Vec<Op>> = Vec::new();
    let mut layer: Vec<Vec<Op>> = vec![Vec::new()];
    for _ in 0..k {
        let mut next = Vec::new();
        for s in &layer {
            for &op in alphabet {
                let mut t = s.clone();
                t.push(op);
                next.push(t);
            }
        }
        out.extend(next.iter().cloned());
        layer = next;
    }
    out
}

/// Multisets of `t` sequences (threads are unordered), as index lists.
fn multisets(n: usize, t: usize) -> Vec<Vec<usize>> {
    fn go(n: usize, t: usize, from: usize, cur: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
        if cur.len() == t {
            out.push(cur.clone());
            return;
        }
        for i in from..n {
            cur.push(i);
            go(n, t, i, cur, out);
            cur.pop();
        }
    }
    let mut out = Vec::new();
    go(n, t, 0, &mut Vec::new(), &mut out);
    out
}

fn binom(n: u64, k: u64) -> u64 {
    (0..k).fold(1u64, |acc, i| acc * (n - i) / (i + 1))
}

/// Whether every part of `p` can matter (see the module docs), after normalising
/// behaviours that can never fire to `Nothing`. `None`: `p` has a dead part.
pub fn live(p: &Program) -> Option<Program> {
    let mut p = p.clone();
    // Without hubs no callback ever runs: every behaviour is `Nothing`.
    if p.hubs == 0 {
        for c in &mut p.clients {
            c.behaviour = Behaviour::Nothing;
        }
    }
    let all_ops: Vec<Op> = p
        .init
        .iter()
        .chain(p.threads.iter().flatten())
        .copied()
        .collect();
    let nc = p.clients.len() as ClientIx;
    // Which clients can ever be registered, and which hubs ever arrive.
    let mut registered: BTreeSet<ClientIx> = all_ops
        .iter()
        .filter_map(|op| {
            if let Op::Register(c) = op {
                Some(*c)
            } else {
                None
            }
        })
        .collect();
    loop {
        let more: Vec<ClientIx> = registered
            .iter()
            .flat_map(|&c| {
                let spec = &p.clients[c as usize];
                let by_callback = match spec.behaviour {
                    Behaviour::Register(o) => Some(o),
                    _ => None,
                };
                let by_drop = match spec.on_drop {
                    DropBehaviour::Register(o) => Some(o),
                    _ => None,
                };
                by_callback.into_iter().chain(by_drop)
            })
            .collect();
        let before = registered.len();
        registered.extend(more);
        if registered.len() == before {
            break;
        }
    }
    let arrives: BTreeSet<HubIx> = all_ops
        .iter()
        .filter_map(|op| {
            if let Op::Arrive(h) = op {
                Some(*h)
            } else {
                None
            }
        })
        .collect();
    if registered.len() != nc as usize || arrives.len() != p.hubs as usize {
        return None;
    }
    // Power requests: a thread's for its hub, a callback's for the hub of its event.
    let requested = |h: HubIx| {
        all_ops.contains(&Op::AssignPower(h))
            || p.clients
                .iter()
                .any(|c| c.behaviour == Behaviour::AssignPower)
    };
    // A callback's guard drop or detach names a client registered by handle: it never acts.
    let guarded = |c: ClientIx| p.clients[c as usize].owned;
    // A wait, a thread's or a callback's, on a client no callback detaches: no
    // completion is ever kept.
    let detached = |c: ClientIx| {
        p.clients
            .iter()
            .any(|s| s.behaviour == Behaviour::Detach(c))
    };
    if p.clients.iter().any(|c| match c.behaviour {
        Behaviour::DropGuard(o) | Behaviour::Detach(o) => !guarded(o),
        Behaviour::Wait(o) => !detached(o),
        _ => false,
    }) {
        return None;
    }
    for op in &all_ops {
        let dead = match *op {
            Op::Drop(c) => !p.clients[c as usize].owned,
            Op::Wait(c) => !detached(c),
            // Nothing to answer: the answer only holds the port a while.
            Op::Answer(h, _) => !requested(h),
            _ => false,
        };
        if dead {
            return None;
        }
    }
    Some(p)
}

fn permutations(n: usize) -> Vec<Vec<u8>> {
    fn go(n: usize, cur: &mut Vec<u8>, out: &mut Vec<Vec<u8>>) {
        if cur.len() == n {
            out.push(cur.clone());
            return;
        }
        for i in 0..n as u8 {
            if !cur.contains(&i) {
                cur.push(i);
                go(n, cur, out);
                cur.pop();
            }
        }
    }
    let mut out = Vec::new();
    go(n, &mut Vec::new(), &mut out);
    out
}

/// `p` with clients renamed by `cp` (old index -> new) and hubs by `hp`, threads sorted,
/// and the init part in its canonical order (registrations by client, then arrivals).
fn renamed(p: &Program, cp: &[u8], hp: &[u8]) -> Program {
    let c = |x: ClientIx| cp[x as usize];
    let h = |x: HubIx| hp[x as usize];
    let op = |o: &Op| match *o {
        Op::Register(x) => Op::Register(c(x)),
        Op::Deregister(x) => Op::Deregister(c(x)),
        Op::Drop(x) => Op::Drop(c(x)),
        Op::Arrive(x) => Op::Arrive(h(x)),
        Op::Change(x) => Op::Change(h(x)),
        Op::Remove(x) => Op::Remove(h(x)),
        Op::Query(x) => Op::Query(h(x)),
        Op::AssignPower(x) => Op::AssignPower(h(x)),
        Op::Answer(x, accepted) => Op::Answer(h(x), accepted),
        Op::Wait(x) => Op::Wait(c(x)),
        other => other,
    };
    let beh = |b: Behaviour| match b {
        Behaviour::Register(x) => Behaviour::Register(c(x)),
        Behaviour::Deregister(x) => Behaviour::Deregister(c(x)),
        Behaviour::DropGuard(x) => Behaviour::DropGuard(c(x)),
        Behaviour::Detach(x) => Behaviour::Detach(c(x)),
        Behaviour::Wait(x) => Behaviour::Wait(c(x)),
        Behaviour::ReportChange(x) => Behaviour::ReportChange(h(x)),
        other => other,
    };
    let on_drop = |d: DropBehaviour| match d {
        DropBehaviour::Register(x) => DropBehaviour::Register(c(x)),
        DropBehaviour::Deregister(x) => DropBehaviour::Deregister(c(x)),
        DropBehaviour::ReportChange(x) => DropBehaviour::ReportChange(h(x)),
        other => other,
    };
    let mut clients = vec![p.clients[0]; p.clients.len()];
    for (i, s) in p.clients.iter().enumerate() {
        clients[c(i as u8) as usize] = ClientSpec {
            behaviour: beh(s.behaviour),
            owned: s.owned,
            on_drop: on_drop(s.on_drop),
        };
    }
    let mut init: Vec<Op> = p.init.iter().map(op).collect();
    init.sort_by_key(|o| match *o {
        Op::Register(x) => (0, x),
        Op::Arrive(x) => (1, x),
        _ => (2, 0),
    });
    let mut threads: Vec<Vec<Op>> = p
        .threads
        .iter()
        .map(|t| t.iter().map(op).collect())
        .collect();
    threads.sort();
    Program {
        clients,
        hubs: p.hubs,
        init,
        threads,
    }
}

/// The least program of `p`'s orbit under renaming clients and hubs and permuting threads.
pub fn canonical(p: &Program) -> Program {
    let cps = permutations(p.clients.len());
    let hps = permutations(p.hubs as usize);
    let mut best: Option<Program> = None;
    for cp in &cps {
        for hp in &hps {
            let q = renamed(p, cp, hp);
            if best.as_ref().is_none_or(|b| q < *b) {
                best = Some(q);
            }
        }
    }
    best.expect("at least the identity")
}

/// Enumerates every program of `size` (module docs), reduced.
pub fn enumerate(size: Size) -> Tier {
    let mut programs = Vec::new();
    let (raw, live) = for_each(size, |p| programs.push(p));
    Tier {
        size,
        raw,
        live,
        programs,
    }
}

/// Calls `f` with every program of `size`, one per symmetry orbit, without holding them:
/// a raw program is kept when it has no dead part, is already normalised, and is its
/// orbit's least member up to thread order (each orbit is generated exactly once in that
/// form, since threads are generated as multisets). Returns the raw and live counts.
pub fn for_each(size: Size, mut f: impl FnMut(Program)) -> (u64, u64) {
    let mut raw = 0u64;
    let mut live_count = 0u64;
    let fewest_hubs = if size.exact_hubs { size.hubs } else { 0 };
    for nc in 1..=size.clients {
        for nh in fewest_hubs..=size.hubs {
            let shutdown = size.shutdown != Shutdowns::None;
            let detach = size.detach != Detaches::None;
            let specs: Vec<Vec<ClientSpec>> = (0..nc as ClientIx)
                .map(|c| specs(c, nc, nh, size.drops != Drops::None, shutdown, detach))
                .collect();
            let alphabet = alphabet(nc, nh, shutdown, detach);
            let seqs = sequences(&alphabet, size.ops);
            let mut thread_sets = Vec::new();
            for t in 2..=size.threads {
                thread_sets.extend(multisets(seqs.len(), t));
            }
            // The raw space: client specs × init parts × thread multisets, less what a
            // `-D`, `-S` or `-W` size leaves to the tier without the suffix, by inclusion
            // and exclusion over the suffixes that keep only the programs using them: for
            // each set of them, the programs lacking every feature of the set (drop
            // behaviours are in the client specs only; the shutdown and the detach in the
            // specs and in the ops), with the sign of the set's size.
            let raw_threads = |alphabet: usize| -> u64 {
                let n = sequence_count(alphabet as u64, size.ops);
                (2..=size.threads)
                    .map(|t| binom(n + t as u64 - 1, t as u64))
                    .sum()
            };
            let combos = |keep: &dyn Fn(&ClientSpec) -> bool| -> u64 {
                specs
                    .iter()
                    .map(|v| v.iter().filter(|s| keep(s)).count() as u64)
                    .product()
            };
            let only = [
                size.drops == Drops::Only,
                size.shutdown == Shutdowns::Only,
                size.detach == Detaches::Only,
            ];
            let mut space: i128 = 0;
            for set in 0..8u32 {
                if (0..3).any(|i| set & (1 << i) != 0 && !only[i]) {
                    continue;
                }
                let (no_drops, no_shutdown, no_detach) = (set & 1 != 0, set & 2 != 0, set & 4 != 0);
                let lacking = combos(&|s: &ClientSpec| {
                    let has_drop = !s.on_drop.is_nothing();
                    let has_shutdown = s.behaviour == Behaviour::Shutdown;
                    let has_detach = is_detach_behaviour(s.behaviour);
                    (!no_drops || !has_drop)
                        && (!no_shutdown || !has_shutdown)
                        && (!no_detach || !has_detach)
                }) * raw_threads(
                    self::alphabet(nc, nh, shutdown && !no_shutdown, detach && !no_detach).len(),
                );
                let sign = if set.count_ones() % 2 == 0 { 1 } else { -1 };
                space += sign * i128::from(lacking);
            }
            let space = u64::try_from(space).expect("a count of programs");
            raw += space * (1u64 << (nc + nh));
            let identity_c: Vec<u8> = (0..nc as u8).collect();
            let identity_h: Vec<u8> = (0..nh as u8).collect();
            let mut choice = vec![0usize; nc];
            loop {
                let clients: Vec<ClientSpec> = choice
                    .iter()
                    .enumerate()
                    .map(|(c, &i)| specs[c][i])
                    .collect();
                for init_mask in 0..(1u32 << (nc + nh)) {
                    let mut init = Vec::new();
                    for c in 0..nc {
                        if init_mask & (1 << c) != 0 {
                            init.push(Op::Register(c as ClientIx));
                        }
                    }
                    for h in 0..nh {
                        if init_mask & (1 << (nc + h)) != 0 {
                            init.push(Op::Arrive(h as HubIx));
                        }
                    }
                    for set in &thread_sets {
                        let p = Program {
                            clients: clients.clone(),
                            hubs: nh as u8,
                            init: init.clone(),
                            threads: set.iter().map(|&i| seqs[i].clone()).collect(),
                        };
                        if size.drops == Drops::Only
                            && p.clients.iter().all(|c| c.on_drop.is_nothing())
                        {
                            continue;
                        }
                        if size.shutdown == Shutdowns::Only && !has_shutdown(&p) {
                            continue;
                        }
                        if size.detach == Detaches::Only && !has_detach(&p) {
                            continue;
                        }
                        let Some(normal) = live(&p) else { continue };
                        live_count += 1;
                        if normal != p {
                            continue;
                        }
                        let sorted = renamed(&p, &identity_c, &identity_h);
                        if canonical(&p) == sorted {
                            f(sorted);
                        }
                    }
                }
                if !next_choice(&mut choice, &specs) {
                    break;
                }
            }
        }
    }
    (raw, live_count)
}

/// Advances an odometer over the client specs; false when it wraps around.
fn next_choice(choice: &mut [usize], specs: &[Vec<ClientSpec>]) -> bool {
    for (i, c) in choice.iter_mut().enumerate() {
        *c += 1;
        if *c < specs[i].len() {
            return true;
        }
        *c = 0;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_program_per_orbit() {
        for size in ["2x1-c1-h1", "2x1-c2-h1"] {
            let tier = enumerate(size.parse().unwrap());
            let distinct: BTreeSet<&Program> = tier.programs.iter().collect();
            assert_eq!(
                distinct.len(),
                tier.programs.len(),
                "{size}: a program is listed twice"
            );
            for p in &tier.programs {
                assert_eq!(
                    &canonical(p),
                    p,
                    "{size}: {p} is not its orbit's representative"
                );
                // Every renaming of clients and hubs lands in the same orbit, listed once.
                let cp: Vec<u8> = (0..p.clients.len() as u8).rev().collect();
                let hp: Vec<u8> = (0..p.hubs).rev().collect();
                assert!(distinct.contains(&canonical(&renamed(p, &cp, &hp))));
            }
        }
        // The orbit counts of a set of canonical forms for these sizes (computed when the
        // enumerator kept such a set, less the 109 programs of 2x1-c2-h1 whose second
        // client could only be registered by a behaviour that never fires without hubs).
        assert_eq!(enumerate("2x1-c1-h1".parse().unwrap()).programs.len(), 950);
        assert_eq!(
            enumerate("2x1-c2-h1".parse().unwrap()).programs.len(),
            21493
        );
    }

    #[test]
    fn drop_behaviour_tiers_add_to_the_plain_ones() {
        for plain in ["2x1-c1-h1", "2x1-c2-h1", "2x1-c1-H2"] {
            let base = enumerate(plain.parse().unwrap());
            let also = enumerate(format!("{plain}-d").parse().unwrap());
            let only = enumerate(format!("{plain}-D").parse().unwrap());
            // `-d` is the plain tier and `-D`, without overlap.
            assert_eq!(also.raw, base.raw + only.raw, "{plain}");
            assert_eq!(also.live, base.live + only.live, "{plain}");
            assert_eq!(
                also.programs.len(),
                base.programs.len() + only.programs.len(),
                "{plain}"
            );
            let with_drops = |p: &Program| p.clients.iter().any(|c| !c.on_drop.is_nothing());
            assert!(only.programs.iter().all(with_drops), "{plain}");
            assert!(!base.programs.iter().any(with_drops), "{plain}");
            let all: BTreeSet<&Program> = also.programs.iter().collect();
            assert_eq!(all.len(), also.programs.len(), "{plain}: a program twice");
            assert!(base
                .programs
                .iter()
                .chain(&only.programs)
                .all(|p| all.contains(p)));
            for p in &only.programs {
                assert_eq!(p.well_formed(), Ok(()), "{p}");
                assert_eq!(
                    &canonical(p),
                    p,
                    "{plain}: {p} is not its orbit's representative"
                );
                // A client acts on its events or on its drop, never both.
                assert!(p
                    .clients
                    .iter()
                    .all(|c| c.behaviour == Behaviour::Nothing || c.on_drop.is_nothing()));
            }
            if plain.contains('H') {
                assert!(also.programs.iter().all(|p| p.hubs == 2), "{plain}");
            }
        }
        // Every drop behaviour appears, renamed consistently (`B`'s context registering
        // `A` is the same program as `A`'s registering `B`, listed once).
        let only = enumerate("2x1-c2-h1-D".parse().unwrap());
        for d in [
            DropBehaviour::ReportChange(0),
            DropBehaviour::Register(1),
            DropBehaviour::Deregister(1),
            DropBehaviour::Panic,
        ] {
            assert!(
                only.programs.iter().any(|p| p.clients[0].on_drop == d),
                "no program where A's context has drop behaviour {d}"
            );
        }
        // A client registered only by another's drop is alive (not a dead part).
        assert!(only.programs.iter().any(|p| {
            p.clients[0].on_drop == DropBehaviour::Register(1)
                && !p.init.contains(&Op::Register(1))
                && !p.threads.iter().flatten().any(|o| *o == Op::Register(1))
        }));
    }

    #[test]
    fn shutdown_tiers_add_to_the_plain_ones() {
        for plain in ["2x1-c1-h1", "2x1-c2-h1", "2x1-c1-h1-D"] {
            let base = enumerate(plain.parse().unwrap());
            let also = enumerate(format!("{plain}-s").parse().unwrap());
            let only = enumerate(format!("{plain}-S").parse().unwrap());
            // `-s` is the plain tier and `-S`, without overlap.
            assert_eq!(also.raw, base.raw + only.raw, "{plain}");
            assert_eq!(also.live, base.live + only.live, "{plain}");
            assert_eq!(
                also.programs.len(),
                base.programs.len() + only.programs.len(),
                "{plain}"
            );
            assert!(only.programs.iter().all(has_shutdown), "{plain}");
            assert!(!base.programs.iter().any(has_shutdown), "{plain}");
            let all: BTreeSet<&Program> = also.programs.iter().collect();
            assert_eq!(all.len(), also.programs.len(), "{plain}: a program twice");
            assert!(base
                .programs
                .iter()
                .chain(&only.programs)
                .all(|p| all.contains(p)));
            for p in &only.programs {
                assert_eq!(p.well_formed(), Ok(()), "{p}");
                assert_eq!(
                    &canonical(p),
                    p,
                    "{plain}: {p} is not its orbit's representative"
                );
                assert_eq!(live(p).as_ref(), Some(p), "{plain}: {p} has a dead part");
            }
        }
        // Every new op and the new behaviour appear; an answer only where power can be
        // requested.
        let only = enumerate("2x1-c1-h1-S".parse().unwrap());
        let ops = |p: &Program| p.threads.concat();
        for op in [Op::Shutdown, Op::Answer(0, true), Op::Answer(0, false)] {
            assert!(only.programs.iter().any(|p| ops(p).contains(&op)), "{op}");
        }
        assert!(only
            .programs
            .iter()
            .any(|p| p.clients[0].behaviour == Behaviour::Shutdown));
        assert!(only.programs.iter().all(|p| {
            !ops(p).iter().any(|o| matches!(o, Op::Answer(..)))
                || ops(p).contains(&Op::AssignPower(0))
                || p.clients[0].behaviour == Behaviour::AssignPower
        }));
    }

    /// The tiers the profiles run keep their counts (docs/VERIFICATION.md's tables): those
    /// without the detach the counts they had before it existed (a new suffix adds tiers,
    /// it changes none), the detach tiers those they have since callbacks wait on
    /// completions.
    #[test]
    fn existing_tiers_keep_their_counts() {
        for (size, raw, live, programs) in [
            ("2x1-c1-h1", 3190, 1106, 950),
            ("2x1-c1-h1-D", 940, 314, 314),
            ("2x1-c1-H2-d", 20160, 3348, 1825),
            ("2x1-c1-h1-S", 2816, 529, 423),
            ("2x1-c1-H2-S", 14160, 861, 498),
            ("2x1-c2-h2", 1_248_078, 150_335, 50_871),
            ("2x2-c1-h1", 327_690, 125_490, 120_522),
            // The detach tiers, with waits in callbacks (`Behaviour::Wait`).
            ("2x1-c1-h1-W", 1928, 157, 89),
            ("2x1-c1-H2-W", 6272, 187, 110),
            ("2x1-c2-h1-W", 596_476, 36_275, 9510),
        ] {
            let mut n = 0u64;
            let (r, l) = for_each(size.parse().unwrap(), |_| n += 1);
            assert_eq!((r, l, n), (raw, live, programs), "{size}");
        }
    }

    #[test]
    fn detach_tiers_add_to_the_plain_ones() {
        for plain in ["2x1-c1-h1", "2x1-c1-H2", "2x1-c1-h1-S", "2x1-c1-h1-D"] {
            let base = enumerate(plain.parse().unwrap());
            let also = enumerate(format!("{plain}-w").parse().unwrap());
            let only = enumerate(format!("{plain}-W").parse().unwrap());
            // `-w` is the plain tier and `-W`, without overlap.
            assert_eq!(also.raw, base.raw + only.raw, "{plain}");
            assert_eq!(also.live, base.live + only.live, "{plain}");
            assert_eq!(
                also.programs.len(),
                base.programs.len() + only.programs.len(),
                "{plain}"
            );
            assert!(only.programs.iter().all(has_detach), "{plain}");
            assert!(!base.programs.iter().any(has_detach), "{plain}");
            let all: BTreeSet<&Program> = also.programs.iter().collect();
            assert_eq!(all.len(), also.programs.len(), "{plain}: a program twice");
            assert!(base
                .programs
                .iter()
                .chain(&only.programs)
                .all(|p| all.contains(p)));
            for p in &only.programs {
                assert_eq!(p.well_formed(), Ok(()), "{p}");
                assert_eq!(
                    &canonical(p),
                    p,
                    "{plain}: {p} is not its orbit's representative"
                );
                assert_eq!(live(p).as_ref(), Some(p), "{plain}: {p} has a dead part");
            }
        }
        // Every new behaviour and op appears, renamed consistently; a wait only where a
        // callback detaches that client.
        let only = enumerate("2x1-c2-h1-W".parse().unwrap());
        let ops = |p: &Program| p.threads.concat();
        for b in [
            Behaviour::DropGuard(1),
            Behaviour::Detach(0),
            Behaviour::Detach(1),
        ] {
            assert!(
                only.programs.iter().any(|p| p.clients[0].behaviour == b),
                "no program where A's callback does `{b}`"
            );
        }
        assert!(only.programs.iter().any(|p| ops(p).contains(&Op::Wait(0))));
        // A callback waiting on another client's completion, and on its own (refused).
        for own in [false, true] {
            assert!(
                only.programs.iter().any(|p| p.clients.len() == 2
                    && (0..2).any(|c| {
                        let o = if own { c } else { 1 - c };
                        p.clients[c].behaviour == Behaviour::Wait(o as ClientIx)
                    })),
                "no program where a callback waits (own: {own})"
            );
        }
        assert!(only.programs.iter().all(|p| {
            let detached = |c| {
                p.clients
                    .iter()
                    .any(|s| s.behaviour == Behaviour::Detach(c))
            };
            ops(p).iter().all(|o| match *o {
                Op::Wait(c) => detached(c),
                _ => true,
            }) && p.clients.iter().all(|s| match s.behaviour {
                Behaviour::Wait(c) => detached(c),
                _ => true,
            })
        }));
        // A client detaching itself while a thread waits on it (the program that kills
        // the completion's mutants), and a guard dropped in another client's callback.
        let own: Program = "clients: A(owned, on event: detach A)\nhubs: 1\ninit: register A\n\
                            thread 1: arrive 1\nthread 2: wait for A's detach"
            .parse()
            .unwrap();
        assert!(enumerate("2x1-c1-h1-W".parse().unwrap())
            .programs
            .contains(&own));
        let cycle: Program =
            "clients: A(on event: drop B's guard) B(owned, on event: deregister A)\n\
                              hubs: 1 2\ninit: register A; register B; arrive 1\n\
                              thread 1: change 1\nthread 2: arrive 2"
                .parse()
                .unwrap();
        assert!(enumerate("2x1-c2-H2-W".parse().unwrap())
            .programs
            .contains(&canonical(&cycle)));
    }

    #[test]
    fn sizes_parse_and_print() {
        let s: Size = "2x1-c1-h1-S-W".parse().unwrap();
        assert_eq!((s.shutdown, s.detach), (Shutdowns::Only, Detaches::Only));
        assert_eq!(s.to_string(), "2x1-c1-h1-S-W");
        let size = |s: &str| s.parse::<Size>().unwrap();
        assert!(size("2x1-c1-h1-w").includes(&size("2x1-c1-h1-W")));
        assert!(size("2x1-c1-h1-w").includes(&size("2x1-c1-h1")));
        assert!(!size("2x1-c1-h1").includes(&size("2x1-c1-h1-W")));
        assert!(!size("2x1-c1-h1-W").includes(&size("2x1-c1-h1")));
        let s: Size = "2x2-c1-h3".parse().unwrap();
        assert_eq!((s.threads, s.ops, s.clients, s.hubs), (2, 2, 1, 3));
        assert_eq!(s.to_string(), "2x2-c1-h3");
        assert_eq!("3x1".parse::<Size>().unwrap().to_string(), "3x1-c2-h2");
        let s: Size = "2x1-c1-H2-d".parse().unwrap();
        assert!(s.exact_hubs && s.drops == Drops::Also && s.hubs == 2);
        assert_eq!(s.to_string(), "2x1-c1-H2-d");
        assert_eq!("2x1-c2-h2-D".parse::<Size>().unwrap().drops, Drops::Only);
        let s: Size = "2x1-c1-h1-S".parse().unwrap();
        assert_eq!(s.shutdown, Shutdowns::Only);
        assert_eq!(s.to_string(), "2x1-c1-h1-S");
        let s: Size = "2x1-c1-H2-s-d".parse().unwrap();
        assert_eq!((s.shutdown, s.drops), (Shutdowns::Also, Drops::Also));
        assert_eq!(s.to_string(), "2x1-c1-H2-d-s");
        // Sizes saved before the shutdown existed load without it.
        let old = r#"{"threads":2,"ops":1,"clients":1,"hubs":1,"exact_hubs":false,"drops":"Also"}"#;
        let s: Size = serde_json::from_str(old).unwrap();
        assert_eq!(s.to_string(), "2x1-c1-h1-d");
        let size = |s: &str| s.parse::<Size>().unwrap();
        assert!(size("2x1-c1-h1-d").includes(&size("2x1-c1-h1")));
        assert!(size("2x1-c1-h1-d").includes(&size("2x1-c1-h1-D")));
        assert!(size("2x1-c1-h1-s").includes(&size("2x1-c1-h1-S")));
        assert!(size("2x1-c1-h1-s").includes(&size("2x1-c1-h1")));
        assert!(!size("2x1-c1-h1").includes(&size("2x1-c1-h1-S")));
        assert!(!size("2x1-c1-h1-S").includes(&size("2x1-c1-h1")));
        assert!(!size("2x1-c1-h1").includes(&size("2x1-c1-h1-d")));
        assert!(!size("2x1-c1-h1-D").includes(&size("2x1-c1-h1")));
        assert!(size("2x1-c2-h2").includes(&size("2x1-c1-H2")));
        assert!(!size("2x1-c2-H2").includes(&size("2x1-c1-h2")));
        assert!(!size("2x1-c2-h2").includes(&size("2x2-c1-h1")));
        assert!("2x1-x".parse::<Size>().is_err());
        assert!("2x1-".parse::<Size>().is_err());
        assert!("1x1".parse::<Size>().is_err());
        assert!("2x1-q3".parse::<Size>().is_err());
    }

    #[test]
    fn random_programs_are_well_formed() {
        for (max, shutdowns) in [("4x6-c4-h3", 0), ("4x6-c4-h3-s", 1), ("4x6-c4-h3-S", 2)] {
            let max: Size = max.parse().unwrap();
            let mut rng = Rng::new(7);
            let mut with = 0;
            for _ in 0..2000 {
                let p = random_program(&mut rng, max);
                assert_eq!(p.well_formed(), Ok(()), "{p}");
                assert!(
                    p.threads.len() >= 2 && p.threads.iter().all(|t| !t.is_empty() && t.len() <= 6)
                );
                with += usize::from(has_shutdown(&p));
            }
            match shutdowns {
                0 => assert_eq!(with, 0, "{max}"),
                1 => assert!(with > 200 && with < 2000, "{max}: {with}"),
                _ => assert_eq!(with, 2000, "{max}"),
            }
        }
        for (max, detaches) in [("4x6-c4-h3", 0), ("4x6-c4-h3-w", 1), ("4x6-c4-h3-W", 2)] {
            let max: Size = max.parse().unwrap();
            let mut rng = Rng::new(7);
            let (mut with, mut waits, mut drops_other, mut cycles) = (0, 0, 0, 0);
            for _ in 0..2000 {
                let p = random_program(&mut rng, max);
                assert_eq!(p.well_formed(), Ok(()), "{p}");
                assert!(
                    p.threads.len() >= 2 && p.threads.iter().all(|t| !t.is_empty() && t.len() <= 6)
                );
                with += usize::from(has_detach(&p));
                waits += usize::from(p.threads.iter().flatten().any(|o| matches!(o, Op::Wait(_))));
                drops_other += usize::from(
                    p.clients
                        .iter()
                        .any(|c| matches!(c.behaviour, Behaviour::DropGuard(_))),
                );
                // The guard cycle: A and B drop each other's guards, hub 2 lists B first
                // and hub 1 A first, and threads 1 and 2 change them.
                cycles += usize::from(
                    p.clients.len() >= 2
                        && p.clients[0].behaviour == Behaviour::DropGuard(1)
                        && p.clients[1].behaviour == Behaviour::DropGuard(0)
                        && p.init.starts_with(&GUARD_CYCLE_INIT)
                        && p.threads[0][0] == Op::Change(0)
                        && p.threads[1][0] == Op::Change(1),
                );
            }
            match detaches {
                0 => assert_eq!((with, cycles), (0, 0), "{max}"),
                1 => assert!(with > 200 && with < 2000, "{max}: {with}"),
                _ => {
                    assert_eq!(with, 2000, "{max}");
                    assert!(
                        waits > 1000 && drops_other > 200,
                        "{max}: {waits} {drops_other}"
                    );
                }
            }
            // One program in eight of the sizes with the detach is a guard cycle.
            if detaches > 0 {
                assert!(cycles > 2000 / 10 && cycles < 2000 / 6, "{max}: {cycles}");
            }
        }
    }

    #[test]
    #[ignore = "prints the counts of chosen sizes (USBPM_COUNT_SIZES): a measurement, not a check"]
    fn counts() {
        let sizes = std::env::var("USBPM_COUNT_SIZES").unwrap_or("2x1-c1-h1,2x1-c2-h1".into());
        for s in sizes.split(',') {
            let size: Size = s.parse().unwrap();
            let t = std::time::Instant::now();
            let tier = enumerate(size);
            println!(
                "{s}: raw {} live {} programs {} ({:.1}s)",
                tier.raw,
                tier.live,
                tier.programs.len(),
                t.elapsed().as_secs_f64()
            );
        }
    }
}

/// A small deterministic generator (xorshift64*), so a seed names a program.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.range(0, items.len() - 1)]
    }
}

/// The init part of a guard cycle: A and B registered, A's guard dropped, hub 2 arrived
/// (listing B), A registered again into its freed slot, hub 1 arrived (listing A first).
pub const GUARD_CYCLE_INIT: [Op; 6] = [
    Op::Register(0),
    Op::Register(1),
    Op::Drop(0),
    Op::Arrive(1),
    Op::Register(0),
    Op::Arrive(0),
];

/// A random program within `max`: 2 to `max.threads` threads of 1 to `max.ops` ops, 1 to
/// `max.clients` clients, 1 to `max.hubs` hubs, a random init part and behaviours, and
/// in half the programs half the contexts with a drop behaviour (whatever `max.drops`
/// says: random programs are not counted, so both kinds of behaviour go together here).
pub fn random_program(rng: &mut Rng, max: Size) -> Program {
    let mut nc = rng.range(1, max.clients);
    let mut nh = rng.range(1, max.hubs.max(1));
    // One program in four is a ring: clients deregistering the next one from their
    // callbacks (the wait-for cycles), all registered first, and each thread starting
    // with a different hub's arrival, so the ring's callbacks can run at once. The rest
    // draw every part uniformly.
    let ring = max.clients >= 2 && max.hubs >= 2 && rng.next_u64().is_multiple_of(4);
    if ring {
        nc = rng.range(2, max.clients.min(max.threads));
        nh = nh.max(nc.min(max.hubs));
    }
    // Half the programs have contexts with drop behaviours (the others keep every
    // execution's trace validated: the specification has no calls from a drop yet).
    let drops = rng.next_u64().is_multiple_of(2);
    // The shutdown and the answers only in a size that has them (`-s`, `-S`): the other
    // sizes draw exactly the programs they drew before these existed.
    let shutdown = max.shutdown != Shutdowns::None;
    // Likewise the detach (`-w`, `-W`).
    let detach = max.detach != Detaches::None;
    // In those sizes one program in six of the rest (one in eight in all) is a guard
    // cycle: owned A and B each dropping the other's guard on connector changes, hubs 1
    // and 2 listing them in opposite orders (the init part drops A's guard, hub 2
    // arrives, A registers again into the slot it freed, hub 1 arrives), and threads 1
    // and 2 starting with a change of hub 1 and of hub 2: A's and B's callbacks can run
    // at once, each dropping the other's guard, and the drop that would close the cycle
    // is refused with `WouldDeadlock` and detaches (the drop's second trigger, which no
    // other random program reaches, since each hub lists its clients in registration
    // order). The other sizes draw nothing for it.
    let cycle =
        detach && !ring && max.clients >= 2 && max.hubs >= 2 && rng.next_u64().is_multiple_of(6);
    if cycle {
        nc = nc.max(2);
        nh = nh.max(2);
    }
    let mut clients: Vec<ClientSpec> = (0..nc as ClientIx)
        .map(|c| {
            let owned = rng.next_u64().is_multiple_of(2);
            let behaviour = if ring {
                Behaviour::Deregister((c + 1) % nc as ClientIx)
            } else {
                rng.pick(&behaviours(c, nc, nh, owned, shutdown, detach))
            };
            // Then half the contexts do something when dropped, with any event behaviour.
            let on_drop = if !drops || rng.next_u64().is_multiple_of(2) {
                DropBehaviour::Nothing
            } else {
                rng.pick(&drop_behaviours(c, nc, nh)[1..])
            };
            ClientSpec {
                behaviour,
                owned,
                on_drop,
            }
        })
        .collect();
    let mut init = Vec::new();
    if cycle {
        init.extend(GUARD_CYCLE_INIT);
    }
    for c in 0..nc as ClientIx {
        if cycle && c < 2 {
            continue;
        }
        if ring || !rng.next_u64().is_multiple_of(3) {
            init.push(Op::Register(c));
        }
    }
    for h in 0..nh as HubIx {
        if cycle && h < 2 {
            continue;
        }
        if !ring && !rng.next_u64().is_multiple_of(3) {
            init.push(Op::Arrive(h));
        }
    }
    if detach {
        // A ring's first client may drop the next one's guard instead of deregistering it:
        // where the ring's callbacks wait for each other, the drop detaches.
        if ring && rng.next_u64().is_multiple_of(2) {
            clients[0].behaviour = Behaviour::DropGuard(1);
        }
        if cycle {
            clients[0].behaviour = Behaviour::DropGuard(1);
            clients[1].behaviour = Behaviour::DropGuard(0);
        }
        // A callback that waits on a client's completion: another client's callback
        // detaches that client, if none does yet (a guard cycle's clients keep theirs).
        for c in 0..nc {
            let Behaviour::Wait(o) = clients[c].behaviour else {
                continue;
            };
            if nc < 2 || clients.iter().any(|s| s.behaviour == Behaviour::Detach(o)) {
                continue;
            }
            let d = (c + rng.range(1, nc - 1)) % nc;
            if !(cycle && d < 2) {
                clients[d].behaviour = Behaviour::Detach(o);
            }
        }
        // A `-W` size's program drops or detaches a guard in a callback: if none was
        // drawn, a client detaches one.
        if max.detach == Detaches::Only && !clients.iter().any(|c| is_detach_behaviour(c.behaviour))
        {
            let c = rng.range(0, nc - 1);
            let o = rng.range(0, nc - 1) as ClientIx;
            clients[c].behaviour = Behaviour::Detach(o);
        }
        // The clients whose guards callbacks drop or detach are owned.
        for c in 0..nc {
            if let Behaviour::DropGuard(o) | Behaviour::Detach(o) = clients[c].behaviour {
                clients[o as usize].owned = true;
            }
        }
    }
    let alphabet = alphabet(nc, nh, shutdown, detach);
    let nt = if ring {
        rng.range(nc.min(nh), max.threads)
    } else {
        rng.range(2, max.threads)
    };
    let mut threads: Vec<Vec<Op>> = (0..nt)
        .map(|t| {
            let mut ops: Vec<Op> = (0..rng.range(1, max.ops))
                .map(|_| rng.pick(&alphabet))
                .collect();
            if ring {
                ops[0] = Op::Arrive((t % nh) as HubIx);
            }
            if cycle && t < 2 {
                ops[0] = Op::Change(t as HubIx);
            }
            ops
        })
        .collect();
    // A `-S` size's program shuts down or answers: if none of them was drawn, one is
    // added at the end of a thread (or replaces its last op when it is full).
    if max.shutdown == Shutdowns::Only && !shutdown_in(&clients, threads.iter().flatten()) {
        let t = rng.range(0, threads.len() - 1);
        let h = rng.range(0, nh - 1) as HubIx;
        let op = rng.pick(&[Op::Shutdown, Op::Answer(h, true), Op::Answer(h, false)]);
        if threads[t].len() < max.ops {
            threads[t].push(op);
        } else {
            *threads[t].last_mut().expect("threads have ops") = op;
        }
    }
    // A `-W` size's program waits on a completion its callbacks keep, if they keep one
    // and no thread waits yet: at the end of a thread, or instead of its last op.
    if max.detach == Detaches::Only && !threads.iter().flatten().any(|o| matches!(o, Op::Wait(_))) {
        if let Some(o) = clients.iter().find_map(|c| match c.behaviour {
            Behaviour::Detach(o) => Some(o),
            _ => None,
        }) {
            let t = rng.range(0, threads.len() - 1);
            if threads[t].len() < max.ops {
                threads[t].push(Op::Wait(o));
            } else {
                *threads[t].last_mut().expect("threads have ops") = Op::Wait(o);
            }
        }
    }
    Program {
        clients,
        hubs: nh as u8,
        init,
        threads,
    }
}

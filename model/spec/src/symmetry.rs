//! Symmetry reduction: clients, hubs and threads are interchangeable in the
//! specification (it keeps sets where the code keeps lists), so the checker needs to
//! explore only one state of each class of states that differ by a renaming of clients,
//! a renaming of hubs and an order of threads.
//!
//! [`representative`] renames hubs in the order of their own values, then clients in the
//! order of theirs, then sorts the threads. Any renaming gives a state of the same class,
//! so the reduction is sound even where ties leave two members of a class apart.
//!
//! Contract: [`representative`] maps a state to one of its class, and depends only on
//! the class up to those ties; it reads the state's derived order (`state.rs`).

use crate::state::{members, At, Client, Delivery, Entry, Frame, Item, Owed, Request, Set, State};

fn map_set(set: Set, map: &[u8]) -> Set {
    members(set).fold(0, |a, i| a | 1 << map[usize::from(i)])
}

fn map_item(item: Item, c: &[u8]) -> Item {
    match item {
        Item::Arrival { clients } => Item::Arrival {
            clients: map_set(clients, c),
        },
        Item::Replay { client, seq } => Item::Replay {
            client: c[usize::from(client)],
            seq,
        },
        Item::Change { .. } | Item::Removal { .. } => item,
    }
}

fn map_at(at: At, c: &[u8]) -> At {
    let m = |x: u8| c[usize::from(x)];
    match at {
        At::Next => At::Next,
        At::Behind(x) => At::Behind(m(x)),
        At::Waiting(x) => At::Waiting(m(x)),
        At::Uncounted(x) => At::Uncounted(m(x)),
        At::Bare(x) => At::Bare(m(x)),
        At::Acquired(x) => At::Acquired(m(x)),
        At::Peeked(x) => At::Peeked(m(x)),
        At::Released(x) => At::Released(m(x)),
        At::Running(x) => At::Running(m(x)),
        At::Ended(x) => At::Ended(m(x)),
    }
}

fn map_frame(f: Frame, c: &[u8], h: &[u8]) -> Frame {
    let mc = |x: u8| c[usize::from(x)];
    let mh = |x: u8| h[usize::from(x)];
    match f {
        Frame::OwesGreeting { client } => Frame::OwesGreeting { client: mc(client) },
        Frame::Show { client } => Frame::Show { client: mc(client) },
        Frame::Manager {
            client,
            removal,
            at,
        } => Frame::Manager {
            client: mc(client),
            removal,
            at,
        },
        Frame::ManagerCallback {
            client,
            removal,
            after_ok,
        } => Frame::ManagerCallback {
            client: mc(client),
            removal,
            after_ok,
        },
        Frame::Shutdown { left, settled } => Frame::Shutdown {
            left: map_set(left, c),
            settled,
        },
        Frame::Registering { client, hubs } => Frame::Registering {
            client: mc(client),
            hubs: map_set(hubs, h),
        },
        Frame::Kick { hub } => Frame::Kick { hub: mh(hub) },
        Frame::Query { hub } => Frame::Query { hub: mh(hub) },
        Frame::Settling => Frame::Settling,
        Frame::Sleep { hub, ticket, woken } => Frame::Sleep {
            hub: mh(hub),
            ticket,
            woken,
        },
        Frame::Drain {
            hub,
            target,
            delivered,
            cur,
        } => Frame::Drain {
            hub: mh(hub),
            target,
            delivered,
            cur: cur.map(|d| Delivery {
                item: map_item(d.item, c),
                ticket: d.ticket,
                targets: map_set(d.targets, c),
                kept: map_set(d.kept, c),
                at: map_at(d.at, c),
            }),
        },
        Frame::Callback {
            client,
            hub,
            seq,
            after_ok,
        } => Frame::Callback {
            client: mc(client),
            hub: mh(hub),
            seq,
            after_ok,
        },
        Frame::Requesting { client, hub } => Frame::Requesting {
            client: mc(client),
            hub: mh(hub),
        },
        Frame::Answering {
            hub,
            client,
            accepted,
            reported,
        } => Frame::Answering {
            hub: mh(hub),
            client: mc(client),
            accepted,
            reported,
        },
        Frame::Deregister {
            target,
            holding,
            victim,
            phase,
            edge,
            wait,
        } => Frame::Deregister {
            target: mc(target),
            holding: map_set(holding, c),
            victim: mc(victim),
            phase,
            edge,
            wait,
        },
    }
}

/// The inverse of an order: `order[new] = old` gives `map[old] = new`.
fn inverse(order: &[usize]) -> Vec<u8> {
    let mut map = vec![0u8; order.len()];
    for (new, &old) in order.iter().enumerate() {
        map[old] = new as u8;
    }
    map
}

/// `s` with each hub's tickets counted from its `done`: every decision compares a ticket
/// with `done` or with another ticket above it (a ticket at or below `done` is
/// delivered, whichever it is), so states that differ only by how many items each hub
/// delivered before behave alike. It merges states symmetry alone does not: without it
/// the quick size had 4,082,269 unique states (measured once).
fn rebase(s: &State) -> State {
    let mut n = s.clone();
    let base: Vec<u8> = s.hubs.iter().map(|h| h.done).collect();
    let r = |hub: u8, v: u8| v.saturating_sub(base[usize::from(hub)]);
    for (i, h) in n.hubs.iter_mut().enumerate() {
        let hub = i as u8;
        h.appended = r(hub, h.appended);
        h.arrival = r(hub, h.arrival);
        h.done = 0;
        for e in &mut h.queue {
            e.ticket = r(hub, e.ticket);
        }
    }
    for f in n.threads.iter_mut().flatten() {
        match f {
            Frame::Sleep { hub, ticket, .. } => *ticket = r(*hub, *ticket),
            Frame::Drain {
                hub,
                target,
                delivered,
                cur,
            } => {
                *target = r(*hub, *target);
                *delivered = r(*hub, *delivered);
                if let Some(d) = cur {
                    d.ticket = r(*hub, d.ticket);
                }
            }
            Frame::OwesGreeting { .. }
            | Frame::Show { .. }
            | Frame::Manager { .. }
            | Frame::ManagerCallback { .. }
            | Frame::Shutdown { .. }
            | Frame::Registering { .. }
            | Frame::Kick { .. }
            | Frame::Settling
            | Frame::Callback { .. }
            | Frame::Query { .. }
            | Frame::Requesting { .. }
            | Frame::Answering { .. }
            | Frame::Deregister { .. } => {}
        }
    }
    for o in n.owed.iter_mut().flatten() {
        if let Owed::Deliver { hub, ticket } = o {
            *ticket = r(*hub, *ticket);
        }
    }
    n
}

/// A thread's frames and its obligations.
type ThreadWithObligations = (Vec<Frame>, Vec<Owed>);

/// A representative of `s`'s class: tickets counted from each hub's `done`, then hubs,
/// then clients, renamed in the order of their values, threads sorted.
pub fn representative(s: &State) -> State {
    let s = &rebase(s);
    let mut horder: Vec<usize> = (0..s.hubs.len()).collect();
    horder.sort_by(|&a, &b| s.hubs[a].cmp(&s.hubs[b]));
    let hmap = inverse(&horder);
    // Clients with their per-hub logs in the new hub order, to sort and to keep.
    let relogged: Vec<Client> = s
        .clients
        .iter()
        .map(|c| Client {
            logs: horder.iter().map(|&old| c.logs[old]).collect(),
            ..c.clone()
        })
        .collect();
    let mut corder: Vec<usize> = (0..s.clients.len()).collect();
    corder.sort_by(|&a, &b| relogged[a].cmp(&relogged[b]));
    let cmap = inverse(&corder);
    let clients = corder
        .iter()
        .map(|&old| {
            let c = &relogged[old];
            Client {
                retired_by: c.retired_by.map(|r| cmap[usize::from(r)]),
                ..c.clone()
            }
        })
        .collect();
    let hubs = horder
        .iter()
        .map(|&old| {
            let h = &s.hubs[old];
            let mut h = h.clone();
            h.subscribers = map_set(h.subscribers, &cmap);
            for r in &mut h.requests {
                *r = Request {
                    client: cmap[usize::from(r.client)],
                    live: r.live,
                };
            }
            h.requests.sort_unstable();
            for e in &mut h.queue {
                *e = Entry {
                    ticket: e.ticket,
                    item: map_item(e.item, &cmap),
                };
            }
            h
        })
        .collect();
    // Each thread with its obligations, renamed, sorted together.
    let mut threads: Vec<ThreadWithObligations> = s
        .threads
        .iter()
        .zip(&s.owed)
        .map(|(t, o)| {
            (
                t.iter().map(|&f| map_frame(f, &cmap, &hmap)).collect(),
                o.iter()
                    .map(|&o| match o {
                        Owed::Deliver { hub, ticket } => Owed::Deliver {
                            hub: hmap[usize::from(hub)],
                            ticket,
                        },
                        Owed::Greet { client } => Owed::Greet {
                            client: cmap[usize::from(client)],
                        },
                    })
                    .collect(),
            )
        })
        .collect();
    threads.sort();
    let (threads, owed) = threads.into_iter().unzip();
    State {
        clients,
        hubs,
        threads,
        owed,
        ..s.clone()
    }
}

//! Exhaustive checks of the specification at named sizes, with their figures.
//!
//! Contract: [`check`] runs stateright's checker (depth first, symmetry reduction by
//! default) at a [`Size`] and returns an [`Outcome`]: figures, violated properties with
//! their counterexamples in the protocol's terms, unwitnessed `sometimes` properties.
//! Also the named sizes' names ([`size_name`]), the command that reruns a check, the
//! property names, and the Explorer. The named sizes (`sizes.rs`) and [`applicable`]
//! (`properties.rs`) are re-exported here, where other crates find them.

use std::fmt::Write as _;
use std::time::Instant;

use stateright::{Checker, Expectation, HasDiscoveries, Model};

pub use crate::properties::applicable;
pub use crate::sizes::{
    mutant_size, DETACH, FULL, FULL_THREADS, MUTANTS, POWER, QUICK, QUICK_UNREDUCED_STATES,
    REARRIVAL, SHUTDOWN,
};
use crate::spec::{members, Op, Set, Settle, Size, Spec, SpecMutant, State};
use crate::symmetry::representative;

/// What one exhaustive check found.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub size: Size,
    pub mutant: Option<SpecMutant>,
    pub symmetry: bool,
    /// Distinct states (representatives, with symmetry) explored.
    pub unique_states: usize,
    /// States generated, duplicates included.
    pub states: usize,
    pub max_depth: usize,
    pub seconds: f64,
    /// `always` or `eventually` properties with a counterexample, and its path.
    pub violated: Vec<(String, String)>,
    /// `sometimes` properties never witnessed (a vacuous specification).
    pub unwitnessed: Vec<String>,
    /// Whether the check stopped at its first counterexample (figures are partial).
    pub stopped_early: bool,
    /// Properties checked (`always`, `eventually` and `sometimes`).
    pub properties: usize,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.violated.is_empty() && self.unwitnessed.is_empty()
    }

    pub fn states_per_second(&self) -> f64 {
        self.unique_states as f64 / self.seconds.max(1e-9)
    }

    /// One line of figures.
    pub fn summary(&self) -> String {
        format!(
            "{}{}: {} unique states ({} generated), depth {}, {:.1}s, {:.0} states/s{}",
            self.size.label(),
            if self.symmetry {
                ", symmetry"
            } else {
                ", no symmetry"
            },
            self.unique_states,
            self.states,
            self.max_depth,
            self.seconds,
            self.states_per_second(),
            self.mutant
                .map(|m| format!(", spec mutant {}", m.name()))
                .unwrap_or_default(),
        )
    }
}

/// Explores every state of `size` (depth first, `threads` checker threads). With a
/// mutant, stops at the first counterexample.
pub fn check(size: Size, mutant: Option<SpecMutant>, symmetry: bool, threads: usize) -> Outcome {
    let until = mutant.map(|_| HasDiscoveries::AnyFailures);
    check_until(size, mutant, symmetry, threads, until)
}

/// Checks spec mutant `mutant` at `size` (symmetry, one thread) until one of the
/// properties whose names start with `prefixes` (such as `"M1 "`) fails: whether the
/// property built for its bug family finds it, whatever other property fails first.
pub fn check_for(size: Size, mutant: SpecMutant, prefixes: &[&str]) -> Outcome {
    let names = Spec::new(size, Some(mutant))
        .properties()
        .iter()
        .map(|p| p.name)
        .filter(|n| prefixes.iter().any(|q| n.starts_with(q)))
        .collect();
    check_until(
        size,
        Some(mutant),
        true,
        1,
        Some(HasDiscoveries::AnyOf(names)),
    )
}

/// [`check`] with the partial-order reduction switched off (symmetry on, one thread):
/// what the reduction is checked against. With a mutant, stops at the first
/// counterexample. At `QUICK`, measured once: 3,066,476 unique states unreduced against
/// 1,380,179 reduced (`tests/reach.rs` requires the same verdicts, `sometimes`
/// witnesses and spec mutants found).
pub fn check_unreduced(size: Size, mutant: Option<SpecMutant>) -> Outcome {
    let spec = Spec {
        reduction: false,
        ..Spec::new(size, mutant)
    };
    check_spec(spec, true, 1, mutant.map(|_| HasDiscoveries::AnyFailures))
}

/// Whether the state graph the checker explores at `size` (symmetry representatives,
/// partial-order reduction on) has a cycle: `Ok(states)` when it has none, else the
/// actions of a path into the cycle and around it.
///
/// Liveness relies on this. stateright judges an `eventually` property at the end of
/// each path its depth-first search takes, and a path that comes back to a state it
/// holds ends there unjudged: a cycle could hide a behaviour that never settles. With no
/// cycle every behaviour ends in a state with no successor, where it is judged. (A cycle
/// among representatives is a behaviour reaching a state symmetric to one it passed,
/// which repeated is an endless behaviour of the unreduced graph, and conversely.) Every
/// loop is bounded by a budget of the size; at `QUICK` (measured once) the graph has
/// 1,448,244 states and no cycle.
pub fn find_cycle(size: Size) -> Result<u64, String> {
    use std::collections::HashMap;
    let spec = Spec::new(size, None);
    // false: on the search's path; true: every successor explored.
    let mut seen: HashMap<State, bool> = HashMap::new();
    type Successors = Vec<((u8, Op), State)>;
    // A state on the search's path, its successors still to explore, the action into it.
    type Frame = (State, Successors, Option<(u8, Op)>);
    let successors = |s: &State| -> Successors {
        let mut actions = Vec::new();
        spec.actions(s, &mut actions);
        actions
            .into_iter()
            .filter_map(|a| spec.next_state(s, a).map(|n| (a, representative(&n))))
            .collect()
    };
    for init in spec.init_states() {
        let init = representative(&init);
        if seen.contains_key(&init) {
            continue;
        }
        seen.insert(init.clone(), false);
        let mut path: Vec<Frame> = vec![(init.clone(), successors(&init), None)];
        while let Some((state, next, _)) = path.last_mut() {
            match next.pop() {
                None => {
                    seen.insert(state.clone(), true);
                    path.pop();
                }
                Some((action, n)) => match seen.get(&n) {
                    Some(true) => {}
                    Some(false) => {
                        let mut steps: Vec<String> = path
                            .iter()
                            .filter_map(|(_, _, a)| a.map(|(t, op)| format!("t{t} {op:?}")))
                            .collect();
                        steps.push(format!(
                            "t{} {:?} (back to a state on the path)",
                            action.0, action.1
                        ));
                        return Err(steps.join("\n"));
                    }
                    None => {
                        seen.insert(n.clone(), false);
                        let succ = successors(&n);
                        path.push((n, succ, Some(action)));
                    }
                },
            }
        }
    }
    Ok(seen.len() as u64)
}

/// [`check`], stopping when `until` holds (`None`: explores every state).
fn check_until(
    size: Size,
    mutant: Option<SpecMutant>,
    symmetry: bool,
    threads: usize,
    until: Option<HasDiscoveries>,
) -> Outcome {
    check_spec(Spec::new(size, mutant), symmetry, threads, until)
}

fn check_spec(
    spec: Spec,
    symmetry: bool,
    threads: usize,
    until: Option<HasDiscoveries>,
) -> Outcome {
    let (size, mutant) = (spec.size, spec.mutant);
    let properties = spec.properties();
    let start = Instant::now();
    let mut builder = spec.checker().threads(threads);
    if symmetry {
        builder = builder.symmetry_fn(representative);
    }
    if let Some(until) = until {
        builder = builder.finish_when(until);
    }
    let checker = builder.spawn_dfs().join();
    let seconds = start.elapsed().as_secs_f64();
    let mut violated = Vec::new();
    let mut unwitnessed = Vec::new();
    let discoveries = checker.discoveries();
    for p in &properties {
        let found = discoveries.get(p.name);
        match (&p.expectation, found) {
            (Expectation::Sometimes, None) if applicable(&size, p.name) => {
                unwitnessed.push(p.name.to_string())
            }
            (Expectation::Always | Expectation::Eventually, Some(path)) => {
                violated.push((p.name.to_string(), counterexample(&path.clone().into_vec())));
            }
            (Expectation::Sometimes, _) | (Expectation::Always | Expectation::Eventually, None) => {
            }
        }
    }
    Outcome {
        size,
        mutant,
        symmetry,
        unique_states: checker.unique_state_count(),
        states: checker.state_count(),
        max_depth: checker.max_depth(),
        seconds,
        violated,
        unwitnessed,
        stopped_early: mutant.is_some(),
        properties: properties.len(),
    }
}

/// A counterexample path, one numbered line per action in the protocol's terms (clients
/// A, B, C; hubs 1, 2; threads t1..), the specification's action beside it, and the
/// threads' call stacks in the last state.
pub fn counterexample(path: &[(crate::State, Option<(u8, Op)>)]) -> String {
    let mut text = String::new();
    let mut n = 0;
    for (state, action) in path {
        match action {
            Some((t, op)) => {
                n += 1;
                let _ = writeln!(
                    text,
                    "  {n:>3}  t{:<2} {:<58} [{op:?}]",
                    t + 1,
                    in_protocol_terms(*op)
                );
            }
            None => {
                let _ = writeln!(text, "  last state: call stacks by thread:");
                for (t, frames) in state.threads.iter().enumerate() {
                    let _ = writeln!(
                        text,
                        "       t{}: {frames:?} owes {:?}",
                        t + 1,
                        state.owed[t]
                    );
                }
            }
        }
    }
    text
}

fn client(c: u8) -> char {
    char::from(b'A' + c)
}

fn clients(set: Set) -> String {
    if set == 0 {
        return "no client".into();
    }
    let names: Vec<String> = members(set).map(|c| client(c).to_string()).collect();
    format!("{{{}}}", names.join(", "))
}

fn settle_text(s: Settle) -> &'static str {
    match s {
        Settle::Done => ", already delivered",
        Settle::Owes => ", owed by the thread (inside a callback)",
        Settle::Sleeps => ", and sleeps until it is delivered",
        Settle::Drains => ", and drains up to it",
    }
}

/// One action as PROTOCOL.md would say it.
pub fn in_protocol_terms(op: Op) -> String {
    match op {
        Op::Register { client: c } => format!("register({}), hidden from the hubs", client(c)),
        Op::OweGreeting { client: c } => format!(
            "register inside a callback: {}'s greeting is owed by the thread",
            client(c)
        ),
        Op::Show { client: c } => format!("{} is shown to the hubs", client(c)),
        Op::Unshown => "the greeting finds its client deregistered: nothing shown".into(),
        Op::ManagerBegin { client: c, removal } => format!(
            "callback of {} begins (Policy Manager {})",
            client(c),
            if removal { "removal" } else { "arrival" }
        ),
        Op::ManagerSkip { client: c, removal } => format!(
            "Policy Manager {} of {} skipped",
            if removal { "removal" } else { "arrival" },
            client(c)
        ),
        Op::ShutdownEnter => "shutdown called: the registry is shut".into(),
        Op::ShutClose { client: c, sleeps } => format!(
            "shutdown closes {}{}",
            client(c),
            if sleeps {
                " and sleeps until its calls in flight return"
            } else {
                " (no call in flight)"
            }
        ),
        Op::ShutdownReturn => "shutdown returns".into(),
        Op::HubArrive { hub, clients: cs } => {
            format!("hub {} arrives for {}", hub + 1, clients(cs))
        }
        Op::Change { hub, settle: d } => {
            format!("hub {} reports a change{}", hub + 1, settle_text(d))
        }
        Op::Remove { hub, settle: d } => format!("hub {} is removed{}", hub + 1, settle_text(d)),
        Op::Replay {
            hub,
            queued: true,
            settle: d,
        } => format!(
            "register queues hub {}'s arrival replay{}",
            hub + 1,
            settle_text(d)
        ),
        Op::Replay {
            hub, queued: false, ..
        } => format!("register drops hub {}'s replay (removal queued)", hub + 1),
        Op::Kick { hub, settle: d } => {
            format!(
                "hub_arrival waits for hub {}'s arrival{}",
                hub + 1,
                settle_text(d)
            )
        }
        Op::Take { hub, seq } => format!("the drainer takes hub {} seq {seq}", hub + 1),
        Op::DrainStop { hub, woke } => format!(
            "hub {}'s drainer stops at its target{}",
            hub + 1,
            if woke { " and wakes the sleepers" } else { "" }
        ),
        Op::Awake { hub, settle: d } => {
            format!("a sleeper on hub {} wakes{}", hub + 1, settle_text(d))
        }
        Op::Settles {
            hub,
            ticket,
            settle: d,
        } => format!(
            "the outermost call settles hub {}'s ticket {ticket}{}",
            hub + 1,
            settle_text(d)
        ),
        Op::TurnWaits { client: c, seq } => format!(
            "delivery of seq {seq} waits for {}'s turn (a call of it is active)",
            client(c)
        ),
        Op::TakeTurn { client: c } => {
            format!(
                "a waiting delivery takes the turn handed over to {}",
                client(c)
            )
        }
        Op::Acquire { client: c, from } => format!(
            "delivery takes an in-flight count on {} ({from} -> {})",
            client(c),
            from + 1
        ),
        Op::Skip { client: c } => format!("delivery skips {} (closed)", client(c)),
        Op::Begin { client: c, seq } => format!("callback of {} begins (seq {seq})", client(c)),
        Op::End {
            client: c,
            panicked,
        } => format!(
            "callback of {} {}",
            client(c),
            if panicked { "panics" } else { "returns" }
        ),
        Op::Release { client: c, from } => format!(
            "delivery releases {}'s count ({from} -> {})",
            client(c),
            from.saturating_sub(1)
        ),
        Op::DeregisterEnter { target } => format!("deregister({}) called", client(target)),
        Op::DetachEnter { target } => format!(
            "{}'s guard dropped where waiting is refused: detach",
            client(target)
        ),
        Op::WaitFor => "deregister from a callback records its wait-for edge".into(),
        Op::NoCheck => "deregister skips the callback checks".into(),
        Op::Retire { victim } => format!("deregister retires {}'s slot", client(victim)),
        Op::Fail => "deregister returns an error".into(),
        Op::Close { in_flight } => format!("deregister sets CLOSED ({in_flight} calls in flight)"),
        Op::Sleep => "deregister sleeps until the calls in flight end".into(),
        Op::Return => "deregister returns Ok".into(),
        Op::DetachReturn => "detach returns (no wait)".into(),
        Op::Peek { client: c } => format!(
            "delivery peeks at {}'s CLOSED flag without a count",
            client(c)
        ),
        Op::Test => "deregister tests the count outside its lock".into(),
        Op::Park => "deregister parks after its test".into(),
        Op::Wake => "deregister is woken and tests again".into(),
        Op::Query => "a callback queries its hub".into(),
        Op::QueryDone => "the query gets the registry and hub locks and returns".into(),
        Op::Request {
            client: c,
            hub,
            queued,
        } => format!(
            "assign_power_level by {} for hub {}: {}",
            client(c),
            hub + 1,
            if queued {
                "queued for the hardware"
            } else {
                "refused"
            }
        ),
        Op::RequestQueued { queued } => format!(
            "the checked power request is {} after the registry lock was released",
            if queued { "queued" } else { "refused" }
        ),
        Op::Answer {
            hub,
            client: c,
            accepted,
            live,
            settle: d,
        } => format!(
            "the hardware {} {}'s power request on hub {}: {}{}",
            if accepted { "accepts" } else { "rejects" },
            client(c),
            hub + 1,
            if live {
                "a change is queued"
            } else {
                "stale, nothing queued"
            },
            settle_text(d)
        ),
        Op::Answered { accepted, reported } => format!(
            "the answer ({}) returns{}",
            if accepted { "accepted" } else { "rejected" },
            if reported { ", its change settled" } else { "" }
        ),
        Op::Reject {
            hub,
            client: c,
            live,
        } => format!(
            "the hardware rejects {}'s {}power request on hub {}: nothing queued",
            client(c),
            if live { "" } else { "stale " },
            hub + 1
        ),
    }
}

/// The named sizes, each with the name `spec_check` takes for it and [`replay_command`]
/// gives. Contract: no two share a name or a size, so a name round-trips through
/// [`size_named`] and [`size_name`].
pub const NAMED_SIZES: [(&str, Size); 8] = [
    ("full", FULL),
    ("full-threads", FULL_THREADS),
    ("quick", QUICK),
    ("mutants", MUTANTS),
    ("shutdown", SHUTDOWN),
    ("rearrival", REARRIVAL),
    ("power", POWER),
    ("detach", DETACH),
];

/// The name of `size` if it is one of the [`NAMED_SIZES`] (`"full-threads"` for
/// `FULL_THREADS`); `None` for any other size, which `spec_check` takes as `--size`.
pub fn size_name(size: &Size) -> Option<&'static str> {
    NAMED_SIZES
        .iter()
        .find(|(_, named)| named == size)
        .map(|&(name, _)| name)
}

/// The named size called `name`, if any: the inverse of [`size_name`].
pub fn size_named(name: &str) -> Option<Size> {
    NAMED_SIZES
        .iter()
        .find(|&&(n, _)| n == name)
        .map(|&(_, size)| size)
}

/// The command that reruns a spec check from the command line.
pub fn replay_command(size: &Size, mutant: Option<SpecMutant>) -> String {
    let which = size_name(size).map(str::to_string).unwrap_or_else(|| {
        format!(
            "--size {},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            size.clients,
            size.hubs,
            size.threads,
            size.changes,
            size.reentrant,
            size.panics,
            size.queries,
            u8::from(size.preregistered),
            size.callback_reports,
            size.rearrivals,
            u8::from(size.shutdown),
            size.power_requests,
            size.granted,
            size.detaches
        )
    });
    format!(
        "cargo run --release -p usbpm-spec --bin spec_check -- {which}{}",
        mutant
            .map(|m| format!(" --mutant {}", m.name()))
            .unwrap_or_default()
    )
}

/// The names of the properties the specification checks at `size`.
pub fn property_names(size: Size) -> Vec<String> {
    Spec::new(size, None)
        .properties()
        .iter()
        .map(|p| p.name.to_string())
        .collect()
}

/// Serves stateright's Explorer for the specification at `size` on `addr` (no symmetry
/// reduction: a reviewer walks the concrete states). Blocks for as long as it serves.
pub fn serve(size: Size, addr: impl std::net::ToSocketAddrs) {
    let _ = Spec::new(size, None).checker().serve(addr);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every named size round-trips through its name (so no two share a name or a size),
    /// and any other size has none.
    #[test]
    fn every_named_size_round_trips_through_its_name() {
        for (name, size) in NAMED_SIZES {
            assert_eq!(size_name(&size), Some(name), "{}", size.label());
            assert_eq!(size_named(name), Some(size), "{name}");
        }
        let custom = Size {
            threads: 4,
            ..QUICK
        };
        assert_eq!(size_name(&custom), None);
        assert_eq!(size_named("no-such-size"), None);
    }

    /// The replay command names a named size and spells out any other.
    #[test]
    fn the_replay_command_names_the_size() {
        let cmd = "cargo run --release -p usbpm-spec --bin spec_check -- ";
        assert_eq!(
            replay_command(&FULL_THREADS, None),
            format!("{cmd}full-threads")
        );
        let custom = Size {
            threads: 4,
            ..QUICK
        };
        assert_eq!(
            replay_command(&custom, None),
            format!("{cmd}--size 2,2,4,1,2,0,0,0,1,0,0,0,0,0")
        );
    }
}

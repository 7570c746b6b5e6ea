//! The program language: concurrent client programs over the public API, as data.
//!
//! A [`Program`] names its clients (`A`, `B`, …, each with a callback [`Behaviour`], what
//! its context does when the library drops it, a [`DropBehaviour`], and whether it is
//! registered through an owning `Registration`) and its hubs (`1`, `2`, …), and runs in
//! three parts:
//!
//! - **init**: [`Op`]s on the main thread, one after another;
//! - **parallel**: one list of ops per thread, the threads started together;
//! - **post** (implicit, the same for every program): every present hub is removed, then
//!   every kept detach completion is waited for (its context then freed), then every
//!   client still registered is deregistered (or its guard dropped) and its context
//!   freed (again, while contexts' drops register clients), so each program ends with
//!   every callback's history complete and every context dropped. After a shutdown it is
//!   the same: ports still remove their hubs, and `deregister` works as ever.
//!
//! Besides the client calls and the hardware's reports, a thread may shut the Policy
//! Manager down ([`Op::Shutdown`]; a callback may try to, [`Behaviour::Shutdown`], and is
//! refused) and the hardware may answer the power requests waiting on a hub
//! ([`Op::Answer`]: all accepted, each reported as a change, or all rejected, reported to
//! nobody).
//!
//! A callback may also end another owned client's registration by dropping its guard
//! ([`Behaviour::DropGuard`]: where waiting would close a cycle the drop detaches instead)
//! or detach one, its own too ([`Behaviour::Detach`]), keeping the `Detached` completion;
//! a thread or a callback waits on a kept completion ([`Op::Wait`], [`Behaviour::Wait`]:
//! inside a callback the wait may be refused), and the post part waits on every one still
//! kept, so each program that detaches ends with every completion fired.
//!
//! Programs are serde data (saved as JSON for replay) and print as readable text, which
//! parses back ([`Program`]'s `FromStr`, also from the one-line form with ` | `):
//!
//! ```text
//! clients: A(owned, on event: deregister B) B(on event: panic, on drop: report a change on hub 2)
//! hubs: 1 2
//! init: register A; register B; arrive 1
//! thread 1: change 1; remove 1; assign power 1; accept power 1
//! thread 2: deregister A; shut down; reject power 2
//! ```
//!
//! The language is the gate's unit of proof: the enumerator (`lang::enumerate`) lists
//! every program up to a size, the interpreter (`exec::interpreter`) runs one under the
//! current checker, and the oracle (`judge::oracle`) judges its results. It sits at the
//! bottom of the harness and imports nothing of it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A client by index: 0 is `A`, 1 is `B`, ….
pub type ClientIx = u8;
/// A hub by index: 0 is hub 1, 1 is hub 2, ….
pub type HubIx = u8;

/// What a client's callback does, besides reporting itself, on every arrival and
/// connector change it receives (never on a removal; [`Behaviour::DropGuard`] on
/// connector changes only), up to a budget of `exec::MAX_ACTS` actions per execution, so
/// every program ends.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub enum Behaviour {
    #[default]
    Nothing,
    /// `query_hub` and `query_connector` of the hub the event is about.
    Query,
    /// `assign_power_level` on the event's hub.
    AssignPower,
    /// Registers another client (if it is not registered already).
    Register(ClientIx),
    /// Deregisters another client by its latest handle.
    Deregister(ClientIx),
    /// Deregisters its own client (refused: `DeregisterFromOwnCallback`).
    DeregisterSelf,
    /// Drops its own `Registration` (owned clients): deregisters without waiting.
    DropOwnGuard,
    /// Panics (the library contains it).
    Panic,
    /// Reports a connector change on a hub's port, once per registration.
    ReportChange(HubIx),
    /// `shutdown` from inside the callback: refused (`ShutdownInsideCallback`), nothing
    /// changes. After the behaviours above, so that programs without it keep their order.
    Shutdown,
    /// Drops another owned client's `Registration` (if one is held): a drop that waits
    /// like `deregister`, or, where waiting would close a cycle (that client's callbacks
    /// wait, transitively, for this one), is refused with `WouldDeadlock` and detaches
    /// without waiting. It acts on connector changes only, not on arrivals: a client
    /// registered while a hub is present then leaves the other's guard alone in its
    /// arrival replay, so two clients listed in different orders by two hubs can each
    /// be in a callback dropping the other's guard (the cycle; see `exec::scenarios`'s
    /// `mutual-deregister` for the hub lists' order). Last with [`Detach`](Self::Detach),
    /// so that programs without them keep their order.
    DropGuard(ClientIx),
    /// Detaches an owned client's `Registration` (its own too) with
    /// `Registration::detach` (if one is held) and keeps the `Detached` completion in the
    /// program's world, for [`Op::Wait`] (or the post part) to wait on.
    Detach(ClientIx),
    /// `Detached::wait` on the client's latest kept detach completion, from inside the
    /// callback (skipped when none is kept): refused with `DeregisterFromOwnCallback`
    /// inside a callback of the detached client, and with `WouldDeadlock` where its
    /// callbacks wait (transitively) for this one; a refused wait hands the completion
    /// back, and it is kept again. Last, so that programs without it keep their order.
    Wait(ClientIx),
}

/// What a client's context does in its `Drop`, when the library lets go of it (after the
/// client's last call returned: on whichever thread held the last reference, perhaps a
/// hub's drainer once it stopped draining, perhaps inside another client's callback).
/// Besides reporting itself, it acts once, from the same budget of `exec::MAX_ACTS`
/// actions as the callbacks (a drop that registers a client makes another context that
/// will drop: without the budget two of them could keep each other alive for ever).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub enum DropBehaviour {
    #[default]
    Nothing,
    /// Reports a connector change on a hub's port (if it is present and not in use): the
    /// re-entry that would wait for its own thread if the drop ran inside that hub's drain.
    ReportChange(HubIx),
    /// Registers another client (if it is not registered already).
    Register(ClientIx),
    /// Deregisters another client by its latest handle (a deregister that may wait).
    Deregister(ClientIx),
    /// Panics (the library contains it and counts it in `panicked_callbacks`).
    Panic,
}

impl DropBehaviour {
    pub fn is_nothing(&self) -> bool {
        *self == DropBehaviour::Nothing
    }
}

/// One call of the program into the Policy Manager, made by a thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Op {
    /// `register` (or `register_owned` for an owned client); skipped while registered.
    Register(ClientIx),
    /// `deregister` of the client's latest handle: live or stale; skipped if never issued.
    Deregister(ClientIx),
    /// Drops the client's `Registration`; skipped when it holds none.
    Drop(ClientIx),
    /// `deregister` of a handle this Policy Manager never issued.
    DeregisterForged,
    /// `deregister` of a live handle of another Policy Manager.
    DeregisterForeign,
    /// `hub_arrival`; the port is kept for later changes and the removal.
    Arrive(HubIx),
    /// `connector_changed` through the hub's port, if it is present and not in use.
    Change(HubIx),
    /// Drops the hub's port (its removal), if it is present and not in use.
    Remove(HubIx),
    /// `query_hub` and `query_connector`.
    Query(HubIx),
    /// `assign_power_level`.
    AssignPower(HubIx),
    /// `shutdown`: the Policy Manager leaves (its removal to every client greeted).
    Shutdown,
    /// The hardware answers the hub's power requests: takes them from the hub's port (if
    /// it is present and not in use) and answers every one accepted (`true`: each is
    /// reported as a connector change) or rejected (`false`: nothing is reported).
    Answer(HubIx, bool),
    /// `Detached::wait` on the client's latest kept detach completion
    /// ([`Behaviour::Detach`]); skipped when none is kept. A refused wait hands the
    /// completion back, and it is kept again. Last, so that programs without it keep
    /// their order.
    Wait(ClientIx),
}

/// A client of the program.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct ClientSpec {
    pub behaviour: Behaviour,
    /// Registered with `register_owned` (a `Registration` guard) instead of `register`.
    pub owned: bool,
    /// What its context's `Drop` does. Last, so that programs without drop behaviours
    /// keep their order (and the enumerator its orbit representatives); absent in JSON
    /// when `Nothing`, so programs saved before it existed load unchanged.
    #[serde(default, skip_serializing_if = "DropBehaviour::is_nothing")]
    pub on_drop: DropBehaviour,
}

/// A concurrent program over the public API.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Program {
    pub clients: Vec<ClientSpec>,
    /// How many hub ids the program uses.
    pub hubs: u8,
    pub init: Vec<Op>,
    pub threads: Vec<Vec<Op>>,
}

/// A client's label: `A`, `B`, ….
pub fn client_name(c: ClientIx) -> char {
    (b'A' + c) as char
}

/// A hub's id as the library sees it (hub index 0 is `HubId(1)`).
pub fn hub_id(h: HubIx) -> u32 {
    u32::from(h) + 1
}

impl fmt::Display for Behaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Behaviour::Nothing => write!(f, "nothing"),
            Behaviour::Query => write!(f, "query"),
            Behaviour::AssignPower => write!(f, "assign power"),
            Behaviour::Register(c) => write!(f, "register {}", client_name(c)),
            Behaviour::Deregister(c) => write!(f, "deregister {}", client_name(c)),
            Behaviour::DeregisterSelf => write!(f, "deregister itself"),
            Behaviour::DropOwnGuard => write!(f, "drop its own guard"),
            Behaviour::Panic => write!(f, "panic"),
            Behaviour::ReportChange(h) => write!(f, "report a change on hub {}", hub_id(h)),
            Behaviour::Shutdown => write!(f, "shut down"),
            Behaviour::DropGuard(c) => write!(f, "drop {}'s guard", client_name(c)),
            Behaviour::Detach(c) => write!(f, "detach {}", client_name(c)),
            Behaviour::Wait(c) => write!(f, "wait for {}'s detach", client_name(c)),
        }
    }
}

impl fmt::Display for DropBehaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DropBehaviour::Nothing => write!(f, "nothing"),
            DropBehaviour::ReportChange(h) => write!(f, "report a change on hub {}", hub_id(h)),
            DropBehaviour::Register(c) => write!(f, "register {}", client_name(c)),
            DropBehaviour::Deregister(c) => write!(f, "deregister {}", client_name(c)),
            DropBehaviour::Panic => write!(f, "panic"),
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Op::Register(c) => write!(f, "register {}", client_name(c)),
            Op::Deregister(c) => write!(f, "deregister {}", client_name(c)),
            Op::Drop(c) => write!(f, "drop {}'s guard", client_name(c)),
            Op::DeregisterForged => write!(f, "deregister a forged handle"),
            Op::DeregisterForeign => write!(f, "deregister a foreign handle"),
            Op::Arrive(h) => write!(f, "arrive {}", hub_id(h)),
            Op::Change(h) => write!(f, "change {}", hub_id(h)),
            Op::Remove(h) => write!(f, "remove {}", hub_id(h)),
            Op::Query(h) => write!(f, "query {}", hub_id(h)),
            Op::AssignPower(h) => write!(f, "assign power {}", hub_id(h)),
            Op::Shutdown => write!(f, "shut down"),
            Op::Answer(h, true) => write!(f, "accept power {}", hub_id(h)),
            Op::Answer(h, false) => write!(f, "reject power {}", hub_id(h)),
            Op::Wait(c) => write!(f, "wait for {}'s detach", client_name(c)),
        }
    }
}

fn ops(f: &mut fmt::Formatter<'_>, ops: &[Op]) -> fmt::Result {
    if ops.is_empty() {
        return write!(f, "-");
    }
    for (i, op) in ops.iter().enumerate() {
        if i > 0 {
            write!(f, "; ")?;
        }
        write!(f, "{op}")?;
    }
    Ok(())
}

impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "clients:")?;
        for (i, c) in self.clients.iter().enumerate() {
            write!(f, " {}(", client_name(i as ClientIx))?;
            if c.owned {
                write!(f, "owned, ")?;
            }
            write!(f, "on event: {}", c.behaviour)?;
            if !c.on_drop.is_nothing() {
                write!(f, ", on drop: {}", c.on_drop)?;
            }
            write!(f, ")")?;
        }
        writeln!(f)?;
        write!(f, "hubs:")?;
        for h in 0..self.hubs {
            write!(f, " {}", hub_id(h))?;
        }
        writeln!(f)?;
        write!(f, "init: ")?;
        ops(f, &self.init)?;
        for (i, t) in self.threads.iter().enumerate() {
            write!(f, "\nthread {}: ", i + 1)?;
            ops(f, t)?;
        }
        Ok(())
    }
}

/// A client named in text: `A`, `B`, ….
fn parse_client(s: &str) -> Result<ClientIx, String> {
    match s.as_bytes() {
        [c @ b'A'..=b'Z'] => Ok(c - b'A'),
        _ => Err(format!("`{s}` is not a client name (A, B, …)")),
    }
}

/// A hub named in text: `1`, `2`, ….
fn parse_hub(s: &str) -> Result<HubIx, String> {
    match s.parse::<u8>() {
        Ok(n) if n >= 1 => Ok(n - 1),
        _ => Err(format!("`{s}` is not a hub id (1, 2, …)")),
    }
}

impl std::str::FromStr for Behaviour {
    type Err = String;

    /// The text [`Display`](fmt::Display) prints.
    fn from_str(s: &str) -> Result<Behaviour, String> {
        Ok(match s {
            "nothing" => Behaviour::Nothing,
            "query" => Behaviour::Query,
            "assign power" => Behaviour::AssignPower,
            "deregister itself" => Behaviour::DeregisterSelf,
            "drop its own guard" => Behaviour::DropOwnGuard,
            "panic" => Behaviour::Panic,
            "shut down" => Behaviour::Shutdown,
            _ => {
                if let Some(c) = s.strip_prefix("register ") {
                    Behaviour::Register(parse_client(c)?)
                } else if let Some(c) = s.strip_prefix("deregister ") {
                    Behaviour::Deregister(parse_client(c)?)
                } else if let Some(h) = s.strip_prefix("report a change on hub ") {
                    Behaviour::ReportChange(parse_hub(h)?)
                } else if let Some(c) = s
                    .strip_prefix("drop ")
                    .and_then(|c| c.strip_suffix("'s guard"))
                {
                    Behaviour::DropGuard(parse_client(c)?)
                } else if let Some(c) = s.strip_prefix("detach ") {
                    Behaviour::Detach(parse_client(c)?)
                } else if let Some(c) = s
                    .strip_prefix("wait for ")
                    .and_then(|c| c.strip_suffix("'s detach"))
                {
                    Behaviour::Wait(parse_client(c)?)
                } else {
                    return Err(format!("`{s}` is not a callback behaviour"));
                }
            }
        })
    }
}

impl std::str::FromStr for DropBehaviour {
    type Err = String;

    /// The text [`Display`](fmt::Display) prints.
    fn from_str(s: &str) -> Result<DropBehaviour, String> {
        Ok(match s {
            "nothing" => DropBehaviour::Nothing,
            "panic" => DropBehaviour::Panic,
            _ => {
                if let Some(c) = s.strip_prefix("register ") {
                    DropBehaviour::Register(parse_client(c)?)
                } else if let Some(c) = s.strip_prefix("deregister ") {
                    DropBehaviour::Deregister(parse_client(c)?)
                } else if let Some(h) = s.strip_prefix("report a change on hub ") {
                    DropBehaviour::ReportChange(parse_hub(h)?)
                } else {
                    return Err(format!("`{s}` is not a drop behaviour"));
                }
            }
        })
    }
}

impl std::str::FromStr for Op {
    type Err = String;

    /// The text [`Display`](fmt::Display) prints.
    fn from_str(s: &str) -> Result<Op, String> {
        let client = |prefix: &str| s.strip_prefix(prefix).map(parse_client);
        let hub = |prefix: &str| s.strip_prefix(prefix).map(parse_hub);
        Ok(match s {
            "deregister a forged handle" => Op::DeregisterForged,
            "deregister a foreign handle" => Op::DeregisterForeign,
            "shut down" => Op::Shutdown,
            _ => {
                if let Some(c) = client("register ") {
                    Op::Register(c?)
                } else if let Some(c) = client("deregister ") {
                    Op::Deregister(c?)
                } else if let Some(c) = s
                    .strip_prefix("drop ")
                    .and_then(|c| c.strip_suffix("'s guard"))
                {
                    Op::Drop(parse_client(c)?)
                } else if let Some(h) = hub("arrive ") {
                    Op::Arrive(h?)
                } else if let Some(h) = hub("change ") {
                    Op::Change(h?)
                } else if let Some(h) = hub("remove ") {
                    Op::Remove(h?)
                } else if let Some(h) = hub("query ") {
                    Op::Query(h?)
                } else if let Some(h) = hub("assign power ") {
                    Op::AssignPower(h?)
                } else if let Some(h) = hub("accept power ") {
                    Op::Answer(h?, true)
                } else if let Some(h) = hub("reject power ") {
                    Op::Answer(h?, false)
                } else if let Some(c) = s
                    .strip_prefix("wait for ")
                    .and_then(|c| c.strip_suffix("'s detach"))
                {
                    Op::Wait(parse_client(c)?)
                } else {
                    return Err(format!("`{s}` is not an operation"));
                }
            }
        })
    }
}

fn parse_ops(s: &str) -> Result<Vec<Op>, String> {
    let s = s.trim();
    if s == "-" {
        return Ok(Vec::new());
    }
    s.split("; ").map(|op| op.trim().parse()).collect()
}

impl std::str::FromStr for Program {
    type Err = String;

    /// The text [`Display`](fmt::Display) prints (and [`one_line`](Program::one_line),
    /// with ` | ` between the lines): a saved failure's program can be pasted back.
    fn from_str(text: &str) -> Result<Program, String> {
        let lines: Vec<&str> = text
            .split(['\n', '|'])
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let field = |line: Option<&&str>, key: &str| -> Result<String, String> {
            line.and_then(|l| l.strip_prefix(key))
                .map(|rest| rest.trim().to_string())
                .ok_or_else(|| format!("expected a line `{key} …`"))
        };
        let mut clients = Vec::new();
        let spec_text = field(lines.first(), "clients:")?;
        let mut rest = spec_text.as_str();
        while !rest.is_empty() {
            let (name, after) = rest
                .split_once('(')
                .ok_or_else(|| format!("`{rest}`: expected `A(on event: …)`"))?;
            let c = parse_client(name.trim())?;
            if c as usize != clients.len() {
                return Err(format!(
                    "client `{name}` out of order: clients are A, B, … in turn"
                ));
            }
            let (inner, after) = after
                .split_once(')')
                .ok_or_else(|| format!("`{rest}`: a client's `(` is not closed"))?;
            let mut spec = ClientSpec::default();
            let mut parts = inner.split(", ").peekable();
            if parts.peek() == Some(&"owned") {
                spec.owned = true;
                parts.next();
            }
            spec.behaviour = parts
                .next()
                .and_then(|p| p.strip_prefix("on event: "))
                .ok_or_else(|| format!("client {name}: expected `on event: …`"))?
                .parse()?;
            if let Some(p) = parts.next() {
                spec.on_drop = p
                    .strip_prefix("on drop: ")
                    .ok_or_else(|| format!("client {name}: expected `on drop: …`, got `{p}`"))?
                    .parse()?;
            }
            if let Some(p) = parts.next() {
                return Err(format!("client {name}: unexpected `{p}`"));
            }
            clients.push(spec);
            rest = after.trim_start();
        }
        let hubs_text = field(lines.get(1), "hubs:")?;
        let mut hubs = 0u8;
        for h in hubs_text.split_whitespace() {
            if parse_hub(h)? != hubs {
                return Err(format!("hub `{h}` out of order: hubs are 1, 2, … in turn"));
            }
            hubs += 1;
        }
        let init = parse_ops(&field(lines.get(2), "init:")?)?;
        let mut threads = Vec::new();
        for (i, line) in lines.iter().enumerate().skip(3) {
            let key = format!("thread {}:", i - 2);
            threads.push(parse_ops(&field(Some(line), &key)?)?);
        }
        let p = Program {
            clients,
            hubs,
            init,
            threads,
        };
        p.well_formed()?;
        Ok(p)
    }
}

impl Program {
    /// Operations in the parallel part.
    pub fn parallel_ops(&self) -> usize {
        self.threads.iter().map(Vec::len).sum()
    }

    /// A one-line form, for test names and logs.
    pub fn one_line(&self) -> String {
        self.to_string().replace('\n', " | ")
    }

    /// Whether every client and hub the program names exists.
    pub fn well_formed(&self) -> Result<(), String> {
        let nc = self.clients.len() as u8;
        let ok_c = |c: ClientIx| c < nc;
        let ok_h = |h: HubIx| h < self.hubs;
        let op_ok = |op: &Op| match *op {
            Op::Register(c) | Op::Deregister(c) | Op::Drop(c) | Op::Wait(c) => ok_c(c),
            Op::Arrive(h)
            | Op::Change(h)
            | Op::Remove(h)
            | Op::Query(h)
            | Op::AssignPower(h)
            | Op::Answer(h, _) => ok_h(h),
            Op::DeregisterForged | Op::DeregisterForeign | Op::Shutdown => true,
        };
        for op in self.init.iter().chain(self.threads.iter().flatten()) {
            if !op_ok(op) {
                return Err(format!(
                    "`{op}` names a client or hub the program does not declare"
                ));
            }
        }
        for (i, c) in self.clients.iter().enumerate() {
            let fine = match c.behaviour {
                Behaviour::Register(o) | Behaviour::Deregister(o) => ok_c(o) && o as usize != i,
                Behaviour::ReportChange(h) => ok_h(h),
                Behaviour::DropOwnGuard => c.owned,
                // Another client's guard, or any client's (its own too) to detach: the
                // client named holds one.
                Behaviour::DropGuard(o) => {
                    ok_c(o) && o as usize != i && self.clients[o as usize].owned
                }
                Behaviour::Detach(o) => ok_c(o) && self.clients[o as usize].owned,
                // Any client's completion, its own too (the wait is refused there).
                Behaviour::Wait(o) => ok_c(o),
                _ => true,
            };
            if !fine {
                return Err(format!(
                    "client {} has behaviour `{}`, which it cannot have",
                    client_name(i as u8),
                    c.behaviour
                ));
            }
            let fine = match c.on_drop {
                DropBehaviour::Register(o) | DropBehaviour::Deregister(o) => {
                    ok_c(o) && o as usize != i
                }
                DropBehaviour::ReportChange(h) => ok_h(h),
                DropBehaviour::Nothing | DropBehaviour::Panic => true,
            };
            if !fine {
                return Err(format!(
                    "client {}'s context has drop behaviour `{}`, which it cannot have",
                    client_name(i as u8),
                    c.on_drop
                ));
            }
        }
        Ok(())
    }

    /// Saves the program as JSON (what `replay --program` reads).
    pub fn save(&self, path: &std::path::Path) -> std::io::Result<()> {
        std::fs::write(
            path,
            serde_json::to_string_pretty(self).expect("a program serialises"),
        )
    }

    /// Reads a program saved by [`save`](Self::save).
    pub fn load(path: &std::path::Path) -> Result<Program, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let p: Program = serde_json::from_str(&text)
            .map_err(|e| format!("{} is not a program: {e}", path.display()))?;
        p.well_formed()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Program {
        Program {
            clients: vec![
                ClientSpec {
                    behaviour: Behaviour::Deregister(1),
                    owned: true,
                    on_drop: DropBehaviour::Nothing,
                },
                ClientSpec {
                    behaviour: Behaviour::Panic,
                    owned: false,
                    on_drop: DropBehaviour::ReportChange(1),
                },
            ],
            hubs: 2,
            init: vec![Op::Register(0), Op::Register(1), Op::Arrive(0)],
            threads: vec![vec![Op::Change(0), Op::Remove(0)], vec![Op::Deregister(0)]],
        }
    }

    #[test]
    fn prints_as_readable_text() {
        assert_eq!(
            sample().to_string(),
            "clients: A(owned, on event: deregister B) B(on event: panic, on drop: report a change on hub 2)\nhubs: 1 2\n\
             init: register A; register B; arrive 1\nthread 1: change 1; remove 1\nthread 2: deregister A"
        );
    }

    #[test]
    fn round_trips_through_json() {
        let p = sample();
        let back: Program = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn rejects_undeclared_names() {
        let mut p = sample();
        p.threads[1].push(Op::Change(5));
        assert!(p.well_formed().unwrap_err().contains("change 6"));
        let mut p = sample();
        p.clients[1].behaviour = Behaviour::DropOwnGuard;
        assert!(p.well_formed().is_err());
        let mut p = sample();
        p.clients[1].on_drop = DropBehaviour::Deregister(1);
        assert!(p.well_formed().unwrap_err().contains("drop behaviour"));
        let mut p = sample();
        p.clients[0].on_drop = DropBehaviour::ReportChange(2);
        assert!(p.well_formed().is_err());
    }

    /// A program with the shutdown, the hardware's answers and a callback that shuts down.
    fn with_shutdown() -> Program {
        let mut p = sample();
        p.clients.push(ClientSpec {
            behaviour: Behaviour::Shutdown,
            owned: true,
            on_drop: DropBehaviour::Register(0),
        });
        p.init.push(Op::Register(2));
        p.threads[0].extend([Op::AssignPower(0), Op::Answer(0, true)]);
        p.threads[1].extend([Op::Shutdown, Op::Answer(1, false)]);
        p.threads
            .push(vec![Op::DeregisterForged, Op::Drop(2), Op::Query(1)]);
        p
    }

    #[test]
    fn detach_programs_round_trip() {
        let text = "clients: A(owned, on event: detach A) B(owned, on event: drop A's guard) \
                    C(on event: detach B) D(on event: wait for B's detach)\nhubs: 1\n\
                    init: register A; register B\n\
                    thread 1: arrive 1; wait for A's detach\nthread 2: wait for B's detach";
        let p: Program = text.parse().unwrap();
        assert_eq!(p.clients[0].behaviour, Behaviour::Detach(0));
        assert_eq!(p.clients[1].behaviour, Behaviour::DropGuard(0));
        assert_eq!(p.clients[3].behaviour, Behaviour::Wait(1));
        assert_eq!(p.threads[1], vec![Op::Wait(1)]);
        assert_eq!(p.to_string().parse::<Program>(), Ok(p.clone()));
        assert_eq!(
            serde_json::from_str::<Program>(&serde_json::to_string(&p).unwrap()).unwrap(),
            p
        );
        // The client named holds a guard; another client's guard only.
        let mut q = p.clone();
        q.clients[0].owned = false;
        assert!(q.well_formed().is_err());
        let mut q = p.clone();
        q.clients[1].behaviour = Behaviour::DropGuard(1);
        assert!(q.well_formed().is_err());
        // A wait names a declared client, any one (its own too).
        let mut q = p.clone();
        q.clients[3].behaviour = Behaviour::Wait(3);
        assert_eq!(q.well_formed(), Ok(()));
        q.clients[3].behaviour = Behaviour::Wait(4);
        assert!(q.well_formed().is_err());
    }

    #[test]
    fn programs_round_trip_through_text_and_json() {
        let p = with_shutdown();
        assert_eq!(p.well_formed(), Ok(()));
        let text = p.to_string();
        assert_eq!(
            text,
            "clients: A(owned, on event: deregister B) B(on event: panic, on drop: report a change on hub 2) \
             C(owned, on event: shut down, on drop: register A)\nhubs: 1 2\n\
             init: register A; register B; arrive 1; register C\n\
             thread 1: change 1; remove 1; assign power 1; accept power 1\n\
             thread 2: deregister A; shut down; reject power 2\n\
             thread 3: deregister a forged handle; drop C's guard; query 2"
        );
        assert_eq!(text.parse::<Program>(), Ok(p.clone()));
        assert_eq!(p.one_line().parse::<Program>(), Ok(p.clone()));
        let json = serde_json::to_string(&p).unwrap();
        assert!(
            json.contains(r#""Shutdown""#) && json.contains(r#"{"Answer":[0,true]}"#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<Program>(&json).unwrap(), p);
        // Every other program prints and parses back too, empty parts included.
        let empty = Program {
            clients: vec![ClientSpec::default()],
            hubs: 0,
            init: vec![],
            threads: vec![vec![], vec![Op::Shutdown]],
        };
        assert_eq!(empty.to_string().parse::<Program>(), Ok(empty.clone()));
        assert_eq!(sample().to_string().parse::<Program>(), Ok(sample()));
        // Bad text says what is wrong.
        assert!("clients: A(on event: shut up)\nhubs:\ninit: -"
            .parse::<Program>()
            .unwrap_err()
            .contains("shut up"));
        assert!(
            "clients: A(on event: nothing)\nhubs: 1\ninit: accept power 2"
                .parse::<Program>()
                .unwrap_err()
                .contains("accept power 2")
        );
    }

    #[test]
    fn programs_saved_without_drop_behaviours_still_load() {
        // The JSON form of a program saved before contexts had drop behaviours.
        let old = r#"{"clients":[{"behaviour":{"Deregister":1},"owned":true},
            {"behaviour":"Panic","owned":false}],"hubs":2,"init":[],"threads":[[],[]]}"#;
        let p: Program = serde_json::from_str(old).unwrap();
        assert!(p.clients.iter().all(|c| c.on_drop.is_nothing()));
        // And a client without a drop behaviour is saved as before.
        let text = serde_json::to_string(&p).unwrap();
        assert!(!text.contains("on_drop"), "{text}");
        let mut q = p.clone();
        q.clients[1].on_drop = DropBehaviour::Panic;
        let text = serde_json::to_string(&q).unwrap();
        assert!(text.contains(r#""on_drop":"Panic""#), "{text}");
        assert_eq!(serde_json::from_str::<Program>(&text).unwrap(), q);
    }
}

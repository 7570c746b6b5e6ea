//! Generated programs under the checkers: a tier (or one chunk of it) under loom, random
//! programs under shuttle with shrinking, and what a run of either reports.
//!
//! The test binary `model/tests/programs.rs` calls these; the gate runs that binary
//! through cargo-nextest like every other check.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use usbpm::checking::Mutant;

use crate::enumerate::Tier;
use crate::program::Program;

/// What one run over a set of programs explored.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Explored {
    pub programs: u64,
    /// Loom executions (interleavings) or shuttle schedules, summed over the programs.
    pub executions: u64,
    pub seconds: f64,
    /// Programs whose exploration hit the bound (loom) rather than finishing unbounded.
    pub most_executions: u64,
    /// The program with the most executions, for the report.
    pub heaviest: Option<String>,
}

/// A failing program, shrunk, with the report of its failure.
#[derive(Clone, Debug)]
pub struct Found {
    pub program: Program,
    pub report: String,
}

fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    crate::check::panic_text(&*p)
}

/// The command that replays `program` (saved at `file`) under `checker`.
pub fn replay_command(
    checker: &str,
    file: &Path,
    mutant: Option<Mutant>,
    bound: Option<usize>,
    schedule: Option<&Path>,
) -> String {
    let features = match checker {
        "loom" => " --features loom",
        "shuttle" => " --features shuttle",
        _ => "",
    };
    let bound = match (checker, bound) {
        ("loom", Some(b)) => format!(" --bound {b}"),
        ("loom", None) => " --bound unbounded".into(),
        _ => String::new(),
    };
    let mutant = mutant
        .map(|m| format!(" --mutant {}", m.name()))
        .unwrap_or_default();
    let schedule = schedule
        .map(|s| format!(" --schedule-file {}", s.display()))
        .unwrap_or_default();
    format!(
        "cargo run --release -p usbpm-model{features} --bin replay -- --program {}{bound}{mutant}{schedule}",
        file.display()
    )
}

/// Explores every interleaving of `program` under loom up to `bound` preemptions.
/// Returns the executions, or the failure's report.
#[cfg(feature = "loom")]
pub fn loom_program(
    program: &Program,
    mutant: Option<Mutant>,
    bound: Option<usize>,
    replay: &str,
) -> Result<u64, String> {
    let count = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = bound;
    let (p, c, r) = (program.clone(), count.clone(), replay.to_string());
    let result = catch_unwind(AssertUnwindSafe(|| {
        builder.check(move || {
            let n = c.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            if n % 100_000 == 0 {
                eprintln!("  ... {n} interleavings of: {}", p.one_line());
            }
            crate::exec::execute(&p, mutant, &r);
        })
    }));
    let n = count.load(std::sync::atomic::Ordering::Relaxed);
    // A checker's own report (data race, deadlock) gets the property and the timeline.
    result
        .map(|_| n)
        .map_err(|p| crate::check::failure(panic_text(p), replay.to_string()).report)
}

/// The programs of chunk `index` of `chunks` (every `chunks`-th program, from `index`).
pub fn chunk(tier: &Tier, index: usize, chunks: usize) -> Vec<&Program> {
    tier.programs.iter().skip(index).step_by(chunks).collect()
}

/// Where a failing program is saved, so its replay command can name it.
pub fn program_file(dir: Option<&Path>, key: &str) -> PathBuf {
    let dir = dir
        .map(Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir);
    let _ = std::fs::create_dir_all(&dir);
    dir.join(format!("{key}.program.json"))
}

/// Runs `programs` under loom at `bound`; stops at the first failure, shrinks it (a
/// smaller program that still fails) and saves it.
#[cfg(feature = "loom")]
pub fn loom_programs(
    programs: &[&Program],
    mutant: Option<Mutant>,
    bound: Option<usize>,
    dir: Option<&Path>,
    key: &str,
    progress: &crate::run::Progress,
) -> (Explored, Option<Found>) {
    let start = Instant::now();
    let mut explored = Explored::default();
    let mut last_note = Instant::now();
    for (i, p) in programs.iter().enumerate() {
        if last_note.elapsed().as_secs() >= 10 {
            last_note = Instant::now();
            eprintln!(
                "[{key}] {i}/{} programs, {} executions, {:.0}s; now: {}",
                programs.len(),
                explored.executions,
                start.elapsed().as_secs_f64(),
                p.one_line()
            );
        }
        let file = program_file(dir, key);
        let replay = replay_command("loom", &file, mutant, bound, None);
        progress.tick();
        match loom_program(p, mutant, bound, &replay) {
            Ok(n) => {
                explored.programs += 1;
                explored.executions += n;
                if n > explored.most_executions {
                    explored.most_executions = n;
                    explored.heaviest = Some(p.one_line());
                }
            }
            Err(_) => {
                explored.programs += 1;
                let small = shrink((*p).clone(), |q| {
                    let _ = q.save(&file);
                    loom_program(
                        q,
                        mutant,
                        bound,
                        &replay_command("loom", &file, mutant, bound, None),
                    )
                    .is_err()
                });
                let _ = small.save(&file);
                let replay = replay_command("loom", &file, mutant, bound, None);
                let report = loom_program(&small, mutant, bound, &replay)
                    .err()
                    .unwrap_or_else(|| "the shrunk program passed on its rerun".into());
                explored.seconds = start.elapsed().as_secs_f64();
                let report = with_program(&small, &report);
                return (
                    explored,
                    Some(Found {
                        program: small,
                        report,
                    }),
                );
            }
        }
    }
    explored.seconds = start.elapsed().as_secs_f64();
    (explored, None)
}

/// A failure report that starts with the minimal program.
pub fn with_program(p: &Program, report: &str) -> String {
    format!(
        "Minimal failing program:\n{}\n{report}",
        indent(&p.to_string())
    )
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("    {l}\n")).collect()
}

/// Smaller programs than `p`, most aggressive first: a thread removed, an op removed, an
/// init op removed, a behaviour made `Nothing`, a registration made plain.
pub fn smaller(p: &Program) -> Vec<Program> {
    let mut out = Vec::new();
    if p.threads.len() > 1 {
        for i in 0..p.threads.len() {
            let mut q = p.clone();
            q.threads.remove(i);
            out.push(q);
        }
    }
    for t in 0..p.threads.len() {
        for i in 0..p.threads[t].len() {
            let mut q = p.clone();
            q.threads[t].remove(i);
            if q.threads[t].is_empty() {
                q.threads.remove(t);
            }
            out.push(q);
        }
    }
    for i in 0..p.init.len() {
        let mut q = p.clone();
        q.init.remove(i);
        out.push(q);
    }
    for c in 0..p.clients.len() {
        if p.clients[c].behaviour != crate::program::Behaviour::Nothing {
            let mut q = p.clone();
            q.clients[c].behaviour = crate::program::Behaviour::Nothing;
            out.push(q);
        }
        if p.clients[c].owned && p.clients[c].behaviour != crate::program::Behaviour::DropOwnGuard {
            let mut q = p.clone();
            q.clients[c].owned = false;
            for op in q.init.iter_mut().chain(q.threads.iter_mut().flatten()) {
                if *op == crate::program::Op::Drop(c as u8) {
                    *op = crate::program::Op::Deregister(c as u8);
                }
            }
            out.push(q);
        }
    }
    out.retain(|q| q.well_formed().is_ok());
    out
}

/// Greedy shrinking: while a smaller program still fails, take it.
pub fn shrink(mut p: Program, mut fails: impl FnMut(&Program) -> bool) -> Program {
    'outer: loop {
        for q in smaller(&p) {
            if fails(&q) {
                p = q;
                continue 'outer;
            }
        }
        return p;
    }
}

//! Generated programs under the checkers: a tier (or one chunk of it) under loom, random
//! programs under shuttle with shrinking, and what a run of either reports.
//!
//! The test binary `model/tests/programs.rs` calls these; the gate runs that binary
//! through cargo-nextest like every other check.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use usbpm::checking::Mutant;

use crate::base::checker::Checker;
use crate::lang::enumerate::{Size, Tier};
use crate::lang::program::Program;

/// How many chunks a tier is split into: one test each, so nextest's partitions (the
/// gate's `--shard I/N`) split a tier across up to this many runners.
pub const CHUNKS: usize = 16;

/// One part of a generated-program check: a tier under loom or a random sample under shuttle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TierPlan {
    pub size: Size,
    /// loom: the preemption bound (`None`: unbounded).
    pub bound: Option<usize>,
    /// shuttle: random programs per chunk and schedules per strategy per program.
    pub random: Option<(usize, usize)>,
}

impl TierPlan {
    pub fn method(&self) -> String {
        match self.random {
            None => format!(
                "every program of {} ({})",
                self.size,
                self.bound
                    .map_or("unbounded".into(), |b| format!("preemption bound {b}"))
            ),
            Some((n, k)) => format!(
                "{n} random programs within {} x pct(depth 3) + random, {k} schedules each",
                self.size
            ),
        }
    }
}

fn size(s: &str) -> Size {
    s.parse().expect("a tier size in the source parses")
}

/// The bounds `USBPM_PROGRAM_BOUND` names: `unbounded` (or unset), a number, or `0..=N`
/// (every bound from 0 to N in turn: a run stops at the first that fails, so a failing
/// chunk's last tier run is the smallest bound at which one of its programs fails).
pub fn parse_bounds(text: &str) -> Result<Vec<Option<usize>>, String> {
    let bad = || format!("{text}: a number of preemptions, `0..=N` or `unbounded`");
    match text {
        "" | "unbounded" => Ok(vec![None]),
        _ => match text.strip_prefix("0..=") {
            Some(n) => Ok((0..=n.parse::<usize>().map_err(|_| bad())?)
                .map(Some)
                .collect()),
            None => Ok(vec![Some(text.parse().map_err(|_| bad())?)]),
        },
    }
}

/// The tiers a checker runs at `profile`; `USBPM_PROGRAM_SIZE` (and `USBPM_PROGRAM_BOUND`,
/// see [`parse_bounds`]) replace them with one tier (`gate programs --size`).
pub fn plan(checker: Checker, profile: crate::judge::verdict::Profile) -> Vec<TierPlan> {
    use crate::judge::verdict::Profile;
    let bounds = parse_bounds(&std::env::var("USBPM_PROGRAM_BOUND").unwrap_or_default())
        .unwrap_or_else(|e| panic!("USBPM_PROGRAM_BOUND: {e}"));
    if let Ok(s) = std::env::var("USBPM_PROGRAM_SIZE") {
        let size: Size = s
            .parse()
            .unwrap_or_else(|e| panic!("USBPM_PROGRAM_SIZE: {e}"));
        let random = (checker == Checker::GenShuttle).then_some((64, 200));
        return bounds
            .into_iter()
            .map(|bound| TierPlan {
                size,
                bound,
                random,
            })
            .collect();
    }
    // The tiers and bounds are chosen from measurements on 2 cores, which live in one
    // place: docs/VERIFICATION.md, "Generated programs" (each tier's programs,
    // executions and seconds, regenerated with the report). The rule: a tier runs
    // unbounded when that fits the profile's budget, at the highest bound that fits
    // otherwise; tiers that fit neither profile (3x1-c2-h1 at bound 1, 2x1-c2-h2-D at
    // bound 1) are left to sharded runs. `-D`, `-S` and `-W` tiers run only the programs
    // that use drop behaviours, the shutdown and the hardware's answers, or detaches and
    // their completions, since the rest of them are the plain tier's.
    //
    // Sharded runs (`gate full --shard I/N`: a count partition of the CHUNKS chunks of
    // each tier over N runners), in seconds (chunk 1's times 16: docs/PERFORMANCE.md,
    // "Loom on generated programs") per 20-minute runner (~2,400 core-seconds on 2
    // cores): 1 runs the full profile (3x1-c2-h1 and 2x1-c2-h2-D at bound 1, 66,894
    // programs in ~210 s, need shards); 4 add 2x1-c2-h1 unbounded 1,470, 2x2-c1-h1 bound
    // 2 920, 3x1-c2-h1 bound 1 ~440-460; 16 add 3x1-c2-h2 bound 1 (~1,200 at that rate),
    // 3x1-c2-h1 bound 2 (unmeasured). 2x1-c2-h2 bound 3: ~1,060. 2x2-c2-h2 (~7.6 ms a
    // program at 2x2-c1-h1's bound-2 rate: ~32 core-hours, 13 hours on 16 runners) is
    // left to gen-shuttle. Other chunk-1 runs: 3x1-c2-h1 bound 1, 315,845 interleavings
    // in 27.1-28.9 s; 2x1-c2-h2 bound 3, 287,606 in 66 s, other core busy.
    match (checker, profile) {
        (Checker::GenLoom, Profile::Quick) => vec![
            TierPlan {
                size: size("2x1-c1-h1"),
                bound: None,
                random: None,
            },
            TierPlan {
                size: size("2x1-c1-h1-D"),
                bound: None,
                random: None,
            },
            TierPlan {
                size: size("2x1-c1-H2-d"),
                bound: Some(2),
                random: None,
            },
            TierPlan {
                size: size("2x1-c1-h1-S"),
                bound: Some(3),
                random: None,
            },
            TierPlan {
                size: size("2x1-c1-h1-W"),
                bound: None,
                random: None,
            },
        ],
        (Checker::GenLoom, Profile::Full) => vec![
            TierPlan {
                size: size("2x1-c1-h1"),
                bound: None,
                random: None,
            },
            TierPlan {
                size: size("2x1-c1-h1-D"),
                bound: None,
                random: None,
            },
            TierPlan {
                size: size("2x1-c1-H2-d"),
                bound: Some(3),
                random: None,
            },
            TierPlan {
                size: size("2x1-c2-h2"),
                bound: Some(2),
                random: None,
            },
            TierPlan {
                size: size("2x2-c1-h1"),
                bound: Some(1),
                random: None,
            },
            TierPlan {
                size: size("2x1-c1-h1-S"),
                bound: None,
                random: None,
            },
            TierPlan {
                size: size("2x1-c1-H2-S"),
                bound: Some(3),
                random: None,
            },
            TierPlan {
                size: size("2x1-c1-h1-W"),
                bound: None,
                random: None,
            },
            TierPlan {
                size: size("2x1-c1-H2-W"),
                bound: None,
                random: None,
            },
            TierPlan {
                size: size("2x1-c2-h1-W"),
                bound: Some(2),
                random: None,
            },
        ],
        (Checker::GenShuttle, Profile::Quick) => {
            vec![
                TierPlan {
                    size: size("4x6-c4-h3"),
                    bound: None,
                    random: Some((16, 200)),
                },
                TierPlan {
                    size: size("4x6-c4-h3-S"),
                    bound: None,
                    random: Some((4, 200)),
                },
                TierPlan {
                    size: size("4x6-c4-h3-W"),
                    bound: None,
                    random: Some((4, 200)),
                },
            ]
        }
        (Checker::GenShuttle, Profile::Full) => {
            vec![
                TierPlan {
                    size: size("4x6-c4-h3"),
                    bound: None,
                    random: Some((64, 500)),
                },
                TierPlan {
                    size: size("4x6-c4-h3-S"),
                    bound: None,
                    random: Some((4, 500)),
                },
                TierPlan {
                    size: size("4x6-c4-h3-W"),
                    bound: None,
                    random: Some((16, 500)),
                },
            ]
        }
        (
            Checker::Loom
            | Checker::Shuttle
            | Checker::Std
            | Checker::Proptest
            | Checker::Spec
            | Checker::Trace,
            _,
        ) => panic!("no generated-program checker {checker}"),
    }
}

/// What one chunk of one tier enumerated and explored.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TierRun {
    pub size: String,
    pub method: String,
    pub bound: Option<usize>,
    /// The tier's programs before any reduction, after removing dead parts, after symmetry.
    pub raw: u64,
    pub live: u64,
    pub symmetric: u64,
    /// This chunk's share (of `CHUNKS`) and how many of them ran.
    pub chunk: usize,
    pub programs_run: u64,
    pub executions: u64,
    pub seconds: f64,
    pub most_executions: u64,
    pub heaviest: Option<String>,
}

impl TierRun {
    pub fn summary(&self) -> String {
        format!(
            "{}: {} programs ({} raw, {} live, {} after symmetry; chunk {}/{}), {} executions, {:.1}s",
            self.method,
            self.programs_run,
            self.raw,
            self.live,
            self.symmetric,
            self.chunk + 1,
            CHUNKS,
            self.executions,
            self.seconds
        )
    }
}

static CURRENT: std::sync::Mutex<Option<Program>> = std::sync::Mutex::new(None);

/// The program being checked right now (for a failure reported from a panic hook).
pub fn current_program() -> Option<Program> {
    CURRENT.try_lock().ok().and_then(|c| c.clone())
}

#[cfg(any(feature = "loom", feature = "shuttle"))]
fn set_current(p: &Program, file: &Path) {
    let _ = p.save(file);
    if let Ok(mut c) = CURRENT.lock() {
        *c = Some(p.clone());
    }
}

/// Runs chunk `chunk` of `tier`; returns what it explored and, on failure, the report
/// (minimal program first) and its replay command.
#[allow(unused_variables)]
pub fn run_tier(
    tier: &TierPlan,
    chunk: usize,
    mutant: Option<Mutant>,
    dir: Option<&Path>,
    key: &str,
    progress: &crate::checkers::run::Progress,
) -> (TierRun, Option<(String, String)>) {
    let mut run = TierRun {
        size: tier.size.to_string(),
        method: tier.method(),
        bound: tier.bound,
        chunk,
        ..Default::default()
    };
    let file = program_file(dir, key);
    #[allow(unused_mut)]
    let mut result: (Explored, Option<Found>) = (Explored::default(), None);
    #[allow(unused_mut)]
    let mut replay = String::new();
    #[cfg(feature = "loom")]
    if tier.random.is_none() {
        let t = crate::lang::enumerate::enumerate(tier.size);
        (run.raw, run.live, run.symmetric) = (t.raw, t.live, t.programs.len() as u64);
        let programs = self::chunk(&t, chunk, CHUNKS);
        result = loom_programs(&programs, mutant, tier.bound, dir, key, progress);
        replay = replay_command(Checker::GenLoom, &file, mutant, tier.bound, None);
    }
    #[cfg(feature = "shuttle")]
    if let Some((count, schedules)) = tier.random {
        let seed = chunk_seed(tier.size, chunk);
        result = shuttle_programs(
            tier.size, count, schedules, seed, mutant, dir, key, progress,
        );
        replay = replay_command(
            Checker::GenShuttle,
            &file,
            mutant,
            None,
            Some(&file.with_extension("schedule")),
        );
    }
    let (explored, found) = result;
    run.programs_run = explored.programs;
    run.executions = explored.executions;
    run.seconds = explored.seconds;
    run.most_executions = explored.most_executions;
    run.heaviest = explored.heaviest;
    (run, found.map(|f| (f.report, replay)))
}

/// The seed of chunk `chunk`'s random programs within `size` (`USBPM_SEED`, 1 unless
/// set, names the whole sample).
pub fn chunk_seed(size: Size, chunk: usize) -> u64 {
    let seed = std::env::var("USBPM_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1u64);
    let seed = seed.wrapping_mul(101).wrapping_add(chunk as u64);
    // A second sample (the shutdown's) draws from other seeds than the first.
    if size.shutdown == crate::lang::enumerate::Shutdowns::None {
        seed
    } else {
        seed ^ 0x5348_5554
    }
}

/// The `count` random programs within `max` drawn from `seed` (a chunk's sample), each
/// with the seed its schedules are sampled from.
pub fn random_sample(max: Size, count: usize, seed: u64) -> impl Iterator<Item = (u64, Program)> {
    (0..count).map(move |i| {
        let s = seed.wrapping_mul(1_000_003).wrapping_add(i as u64);
        let p =
            crate::lang::enumerate::random_program(&mut crate::lang::enumerate::Rng::new(s), max);
        (s, p)
    })
}

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

#[cfg(any(feature = "loom", feature = "shuttle"))]
fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    crate::base::panics::panic_text(&*p)
}

/// The command that replays `program` (saved at `file`) on `checker`'s build.
pub fn replay_command(
    checker: Checker,
    file: &Path,
    mutant: Option<Mutant>,
    bound: Option<usize>,
    schedule: Option<&Path>,
) -> String {
    let features = crate::checkers::run::replay_features(checker);
    let bound = crate::checkers::run::replay_bound(checker, bound);
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
///
/// Each program pays a fresh `loom::model`'s setup (thread spawns, a Policy Manager, a
/// foreign one, the post part): measured once, large programs run at two-dispatchers'
/// 19,100 executions/s, tiny ones at half. Heaviest: 2x1-c1-h1's `register A` racing
/// `query 1`, A querying in its callback (37,164 interleavings); 2x1-c2-h1's `register B`
/// racing `query 1`, B registering A in its callback (225,021: a thousand small programs).
#[cfg(feature = "loom")]
pub fn loom_program(
    program: &Program,
    mutant: Option<Mutant>,
    bound: Option<usize>,
    replay: &str,
) -> Result<u64, String> {
    let count = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (p, c, r) = (program.clone(), count.clone(), replay.to_string());
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        crate::checkers::run::loom_body(bound, move || {
            let n = c.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            if n % 100_000 == 0 {
                eprintln!("  ... {n} interleavings of: {}", p.one_line());
            }
            crate::exec::interpreter::execute(&p, mutant, &r);
        })
    }));
    let n = count.load(std::sync::atomic::Ordering::Relaxed);
    // A checker's own report (data race, deadlock) gets the property and the timeline.
    result
        .map(|_| n)
        .map_err(|p| crate::judge::verdict::failure(panic_text(p), replay.to_string()).report)
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
    progress: &crate::checkers::run::Progress,
) -> (Explored, Option<Found>) {
    let file = program_file(dir, key);
    let replay = replay_command(Checker::GenLoom, &file, mutant, bound, None);
    let check = |p: &Program| loom_program(p, mutant, bound, &replay);
    explore(
        programs.iter().map(|p| (*p).clone()),
        programs.len(),
        &file,
        key,
        progress,
        check,
    )
}

/// Checks each program in turn (`check` returns its executions or its failure's report),
/// counting what was explored and printing progress on long runs. At the first failure it
/// shrinks the program (smaller programs that still fail), saves the minimal one to
/// `file` (which the replay command names) and returns it with its report.
#[cfg(any(feature = "loom", feature = "shuttle"))]
fn explore(
    programs: impl Iterator<Item = Program>,
    total: usize,
    file: &Path,
    key: &str,
    progress: &crate::checkers::run::Progress,
    check: impl Fn(&Program) -> Result<u64, String>,
) -> (Explored, Option<Found>) {
    let start = std::time::Instant::now();
    let mut explored = Explored::default();
    let mut last_note = std::time::Instant::now();
    for (i, p) in programs.enumerate() {
        set_current(&p, file);
        if last_note.elapsed().as_secs() >= 10 {
            last_note = std::time::Instant::now();
            eprintln!(
                "[{key}] {i}/{total} programs, {} executions, {:.0}s; now: {}",
                explored.executions,
                start.elapsed().as_secs_f64(),
                p.one_line()
            );
        }
        progress.tick();
        explored.programs += 1;
        match check(&p) {
            Ok(n) => {
                explored.executions += n;
                if n > explored.most_executions {
                    explored.most_executions = n;
                    explored.heaviest = Some(p.one_line());
                }
            }
            Err(_) => {
                let small = shrink(p, |q| {
                    let _ = q.save(file);
                    check(q).is_err()
                });
                let _ = small.save(file);
                let report = check(&small)
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
/// init op removed, a behaviour or a drop behaviour made `Nothing`, a registration made
/// plain.
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
        if p.clients[c].behaviour != crate::lang::program::Behaviour::Nothing {
            let mut q = p.clone();
            q.clients[c].behaviour = crate::lang::program::Behaviour::Nothing;
            out.push(q);
        }
        if !p.clients[c].on_drop.is_nothing() {
            let mut q = p.clone();
            q.clients[c].on_drop = crate::lang::program::DropBehaviour::Nothing;
            out.push(q);
        }
        if p.clients[c].owned
            && p.clients[c].behaviour != crate::lang::program::Behaviour::DropOwnGuard
        {
            let mut q = p.clone();
            q.clients[c].owned = false;
            for op in q.init.iter_mut().chain(q.threads.iter_mut().flatten()) {
                if *op == crate::lang::program::Op::Drop(c as u8) {
                    *op = crate::lang::program::Op::Deregister(c as u8);
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

/// Shuttle's sample per random program: `schedules` per strategy (PCT depth 3, then
/// random), from `seed`. Returns the schedules run, or the failure's report with the
/// failing schedule saved to `schedule_file`.
#[cfg(feature = "shuttle")]
pub fn shuttle_program(
    program: &Program,
    mutant: Option<Mutant>,
    schedules: usize,
    seed: u64,
    program_file: &Path,
    schedule_file: &Path,
) -> Result<u64, String> {
    use crate::checkers::run::{shuttle_body, Strategy};
    let progress = crate::checkers::run::Progress::new(None);
    let steps = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    for strategy in [Strategy::Pct { depth: 3 }, Strategy::Random] {
        let replay = replay_command(
            Checker::GenShuttle,
            program_file,
            mutant,
            None,
            Some(schedule_file),
        );
        let (p, r) = (program.clone(), replay.clone());
        let body = move || crate::exec::interpreter::execute(&p, mutant, &r);
        let file = Some(schedule_file.to_path_buf());
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            shuttle_body(
                body,
                replay.clone(),
                strategy,
                schedules,
                seed,
                file,
                &progress,
                &steps,
            )
        }));
        if let Err(p) = result {
            let text = panic_text(p);
            // PCT refuses a program with no scheduling choice at all: nothing to explore.
            if text.contains("did not exercise any concurrency") {
                continue;
            }
            return Err(crate::judge::verdict::failure(text, replay).report);
        }
    }
    Ok(progress.executions())
}

/// Random programs within `max` under shuttle: `count` programs from `seed`, each
/// sampled by [`shuttle_program`] with its own seed. The first failing program is shrunk
/// (smaller programs tried with the same seed) and saved with its failing schedule.
#[cfg(feature = "shuttle")]
#[allow(clippy::too_many_arguments)]
pub fn shuttle_programs(
    max: crate::lang::enumerate::Size,
    count: usize,
    schedules: usize,
    seed: u64,
    mutant: Option<Mutant>,
    dir: Option<&Path>,
    key: &str,
    progress: &crate::checkers::run::Progress,
) -> (Explored, Option<Found>) {
    let file = program_file(dir, key);
    let schedule_file = file.with_extension("schedule");
    let program_seed = std::cell::Cell::new(seed);
    let programs = random_sample(max, count, seed).map(|(s, p)| {
        program_seed.set(s);
        p
    });
    let check = |p: &Program| {
        shuttle_program(
            p,
            mutant,
            schedules,
            program_seed.get(),
            &file,
            &schedule_file,
        )
    };
    explore(programs, count, &file, key, progress, check)
}

#[cfg(test)]
mod tests {
    use crate::lang::enumerate::{canonical, for_each, live, Size};

    #[test]
    fn a_bound_is_a_number_a_range_from_zero_or_unbounded() {
        use super::parse_bounds;
        assert_eq!(parse_bounds("3"), Ok(vec![Some(3)]));
        assert_eq!(parse_bounds("0..=2"), Ok(vec![Some(0), Some(1), Some(2)]));
        assert_eq!(parse_bounds("unbounded"), Ok(vec![None]));
        assert_eq!(parse_bounds(""), Ok(vec![None]));
        assert!(parse_bounds("1..=2").is_err());
        assert!(parse_bounds("two").is_err());
    }

    #[test]
    fn named_scenarios_are_programs_of_the_tiers() {
        let full = super::plan(
            crate::base::checker::Checker::GenLoom,
            crate::judge::verdict::Profile::Full,
        );
        for (name, program, tier) in crate::exec::scenarios::as_programs() {
            assert_eq!(program.well_formed(), Ok(()), "{name}");
            let size: Size = tier.parse().unwrap();
            assert!(
                full.iter().any(|t| t.size.includes(&size)),
                "{name}: {tier} is not within a tier of the full profile"
            );
            let want =
                canonical(&live(&program).unwrap_or_else(|| panic!("{name} has a dead part")));
            let mut found = false;
            for_each(size, |p| found |= p == want);
            assert!(found, "{name} is not a program of {tier}:\n{program}");
        }
    }
}

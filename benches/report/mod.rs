//! The same-run ratio tables of `docs/PERFORMANCE.md`, built from criterion's results.
//!
//! `main` in `dispatch.rs` prints them after criterion has measured ([`after_run`]: only
//! the estimates this process wrote), and on `-- --report-only [CRITERION_DIR ...]`
//! without running anything ([`report_only`]: every estimate under each directory, one
//! directory per run).
//!
//! Every time is criterion's median time per iteration (`median.point_estimate` of
//! `<criterion dir>/**/new/estimates.json`, in ns; `new/benchmark.json` names the
//! benchmark). Every ratio is computed within one run: usbpm and the baseline measured by
//! the same process, minutes apart at most. With several runs, a cell shows the median of
//! the per-run values and, for ratios, their range in brackets.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;
use std::{env, fs};

/// One benchmark: group, function and parameter, as in `deliver_1thread/usbpm/8`.
type Key = (String, String, Option<String>);

/// One run: the median time per iteration, in ns, of each benchmark measured.
type Run = HashMap<Key, f64>;

const BASELINES: [&str; 5] = [
    "a_bare_call",
    "b_atomic_pair",
    "c_mutex",
    "d_rwlock",
    "e_snapshot_unsafe",
];

fn short(design: &str) -> &'static str {
    match design {
        "usbpm" => "usbpm",
        "a_bare_call" => "(a) bare",
        "b_atomic_pair" => "(b) atomic pair",
        "c_mutex" => "(c) Mutex",
        "d_rwlock" => "(d) RwLock",
        "e_snapshot_unsafe" => "(e) snapshot",
        other => panic!("no short name for design {other}"),
    }
}

// ---------------------------------------------------------------------------------------
// Entry points.

/// Whether criterion measures in this process, decided from the arguments as criterion
/// 0.8 decides it (`Criterion::configure_from_args`): `cargo bench` passes `--bench`,
/// `cargo test --benches` does not (test mode), and `--test`, `--list` and
/// `--profile-time` run without measuring.
pub fn measured(args: &[String]) -> bool {
    let has = |flag: &str| {
        args.iter()
            .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
    };
    has("--bench") && !has("--test") && !has("--list") && !has("--profile-time")
}

/// Prints the tables for the benchmarks this process measured, that is, whose estimates
/// were written at or after `started`. Estimates left by earlier runs (say, of the
/// benchmarks a filter skipped this time) are not mixed in.
pub fn after_run(started: SystemTime) {
    let dir = criterion_dir();
    let run = match load(&dir, Some(started)) {
        Ok(run) => run,
        Err(e) => {
            eprintln!("ratio tables: {e}");
            std::process::exit(1);
        }
    };
    if run.is_empty() {
        eprintln!(
            "ratio tables: this run wrote no estimates under {}; nothing to report",
            dir.display()
        );
        return;
    }
    println!(
        "\nSame-run ratio tables (docs/PERFORMANCE.md) for the {} benchmarks of this run, from {}:\n",
        run.len(),
        dir.display()
    );
    print!("{}", render(&[run]));
}

/// `-- --report-only [CRITERION_DIR ...]`: prints the tables from the results already on
/// disk, one run per directory (default: criterion's output directory, that is, the last
/// run). Returns the process exit code.
pub fn report_only(args: &[String]) -> i32 {
    let mut roots = Vec::new();
    for a in args {
        match a.as_str() {
            // `--bench` is what `cargo bench` adds.
            "--report-only" | "--bench" => {}
            flag if flag.starts_with('-') => {
                eprintln!("--report-only takes criterion directories only, not {flag}");
                eprintln!("usage: cargo bench -p usbpm --bench dispatch -- --report-only [CRITERION_DIR ...]");
                return 2;
            }
            dir => roots.push(PathBuf::from(dir)),
        }
    }
    if roots.is_empty() {
        roots.push(criterion_dir());
    }
    let mut runs = Vec::new();
    for root in &roots {
        match load(root, None) {
            Ok(run) if !run.is_empty() => runs.push(run),
            Ok(_) => {
                eprintln!("no criterion results under {}", root.display());
                return 1;
            }
            Err(e) => {
                eprintln!("{e}");
                return 1;
            }
        }
    }
    print!("{}", render(&runs));
    0
}

/// Where criterion 0.8 writes its results (`default_output_directory` in its `lib.rs`):
/// `$CRITERION_HOME`, else `$CARGO_TARGET_DIR/criterion`, else the `criterion` directory
/// in the target directory `cargo metadata` reports, else `target/criterion`.
fn criterion_dir() -> PathBuf {
    if let Some(home) = env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    if let Some(target) = env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    let from_metadata = || -> Option<PathBuf> {
        let out = Command::new(env::var_os("CARGO")?)
            .args(["metadata", "--format-version", "1", "--no-deps"])
            .output()
            .ok()?;
        let meta: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        Some(PathBuf::from(meta.get("target_directory")?.as_str()?))
    };
    match from_metadata() {
        Some(target) => target.join("criterion"),
        None => PathBuf::from("target/criterion"),
    }
}

// ---------------------------------------------------------------------------------------
// Reading criterion's results.

/// Every `new/estimates.json` under `root` (with `since`: only those written at or after
/// it), keyed by the benchmark its `new/benchmark.json` names.
fn load(root: &Path, since: Option<SystemTime>) -> Result<Run, String> {
    let mut run = Run::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            // A missing root is "no results"; the caller says so.
            Err(_) if dir == root => return Ok(run),
            Err(e) => return Err(format!("{}: {e}", dir.display())),
        };
        for entry in entries {
            let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
            // `DirEntry::file_type` does not follow symlinks.
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                dirs.push(entry.path());
            }
        }
        let estimates = dir.join("estimates.json");
        if dir.file_name().is_none_or(|n| n != "new") || !estimates.is_file() {
            continue;
        }
        if let Some(since) = since {
            let written = fs::metadata(&estimates)
                .and_then(|m| m.modified())
                .map_err(|e| format!("{}: {e}", estimates.display()))?;
            if written < since {
                continue;
            }
        }
        let meta = read_json(&dir.join("benchmark.json"))?;
        let est = read_json(&estimates)?;
        let text = |field: &str| meta.get(field).and_then(|v| v.as_str()).map(str::to_owned);
        let (Some(group), Some(function)) = (text("group_id"), text("function_id")) else {
            return Err(format!(
                "{}: no group_id or function_id",
                dir.join("benchmark.json").display()
            ));
        };
        let Some(median) = est
            .pointer("/median/point_estimate")
            .and_then(|v| v.as_f64())
        else {
            return Err(format!("{}: no median.point_estimate", estimates.display()));
        };
        run.insert((group, function, text("value_str")), median);
    }
    Ok(run)
}

fn read_json(path: &Path) -> Result<serde_json::Value, String> {
    let bytes = fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

fn get(run: &Run, group: &str, design: &str, param: Option<&str>) -> Option<f64> {
    run.get(&(
        group.to_owned(),
        design.to_owned(),
        param.map(str::to_owned),
    ))
    .copied()
}

// ---------------------------------------------------------------------------------------
// Formatting.

fn fmt_ns(x: f64) -> String {
    if x >= 1000.0 {
        format!("{:.2} µs", x / 1000.0)
    } else if x >= 10.0 {
        format!("{x:.0} ns")
    } else {
        format!("{x:.1} ns")
    }
}

fn fmt_ratio(x: f64) -> String {
    format!("{x:.2}×")
}

/// The median, as Python's `statistics.median` (mean of the middle two for an even count).
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Median of the per-run times that exist, or a dash.
fn cell(values: &[Option<f64>]) -> String {
    let values: Vec<f64> = values.iter().flatten().copied().collect();
    if values.is_empty() {
        "—".to_owned()
    } else {
        fmt_ns(median(values))
    }
}

/// Median of the per-run ratios, with their range when there are several runs.
fn rcell(values: Vec<f64>) -> String {
    if values.is_empty() {
        return "—".to_owned();
    }
    let (min, max) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let several = values.len() > 1;
    let mut s = fmt_ratio(median(values));
    if several {
        write!(s, " ({min:.2}–{max:.2})").unwrap();
    }
    s
}

fn table(out: &mut String, header: &[String], rows: &[Vec<String>]) {
    writeln!(out, "| {} |", header.join(" | ")).unwrap();
    writeln!(out, "|{}|", vec!["---"; header.len()].join("|")).unwrap();
    for row in rows {
        writeln!(out, "| {} |", row.join(" | ")).unwrap();
    }
    writeln!(out).unwrap();
}

/// `first`, then the short names of `designs`, then "usbpm ÷ " each of them.
fn header(first: &[&str], designs: &[&str]) -> Vec<String> {
    first
        .iter()
        .map(|s| s.to_string())
        .chain(designs.iter().map(|d| short(d).to_owned()))
        .chain(designs.iter().map(|d| format!("usbpm ÷ {}", short(d))))
        .collect()
}

// ---------------------------------------------------------------------------------------
// The tables.

/// The Markdown of all tables, for one or several runs.
fn render(runs: &[Run]) -> String {
    let mut out = String::new();
    let many = runs.len() > 1;
    writeln!(
        out,
        "_{} run(s). Times: criterion's median per iteration{}. Ratios: usbpm ÷ baseline within each run{}._\n",
        runs.len(),
        if many { ", then the median over runs" } else { "" },
        if many { "; median over runs, range in brackets" } else { "" },
    )
    .unwrap();

    // Each run's time of one benchmark, divided by `scale`.
    let times = |g: &str, d: &str, p: Option<&str>, scale: f64| -> Vec<Option<f64>> {
        runs.iter()
            .map(|r| get(r, g, d, p).map(|t| t / scale))
            .collect()
    };
    // usbpm ÷ `design`, in each run that measured both.
    let ratios = |g: &str, design: &str, p: Option<&str>| -> Vec<f64> {
        runs.iter()
            .filter_map(|r| Some(get(r, g, "usbpm", p)? / get(r, g, design, p)?))
            .collect()
    };

    // --- one thread, 1/8/64 clients ----------------------------------------------------
    let g = "deliver_1thread";
    out.push_str("### One event to N clients, one thread\n\n");
    out.push_str("Time per event; usbpm per callback = time per event ÷ N.\n\n");
    let mut rows = Vec::new();
    for n in ["1", "8", "64"] {
        let clients: f64 = n.parse().unwrap();
        let mut row = vec![
            n.to_owned(),
            cell(&times(g, "usbpm", Some(n), 1.0)),
            cell(&times(g, "usbpm", Some(n), clients)),
        ];
        row.extend(BASELINES.iter().map(|b| cell(&times(g, b, Some(n), 1.0))));
        row.extend(BASELINES.iter().map(|b| rcell(ratios(g, b, Some(n)))));
        rows.push(row);
    }
    // Marginal cost of one more client, from the 8- and 64-client results of each run.
    let marginal =
        |r: &Run, d: &str| Some((get(r, g, d, Some("64"))? - get(r, g, d, Some("8"))?) / 56.0);
    let mut row = vec![
        "each extra client (8→64)".to_owned(),
        cell(
            &runs
                .iter()
                .map(|r| marginal(r, "usbpm"))
                .collect::<Vec<_>>(),
        ),
        String::new(),
    ];
    row.extend(
        BASELINES
            .iter()
            .map(|b| cell(&runs.iter().map(|r| marginal(r, b)).collect::<Vec<_>>())),
    );
    row.extend(BASELINES.iter().map(|b| {
        rcell(
            runs.iter()
                .filter_map(|r| match (marginal(r, "usbpm"), marginal(r, b)) {
                    (Some(u), Some(m)) if m != 0.0 => Some(u / m),
                    _ => None,
                })
                .collect(),
        )
    }));
    rows.push(row);
    table(
        &mut out,
        &header(&["clients", "usbpm", "usbpm per callback"], &BASELINES),
        &rows,
    );

    // --- 1/2/4 dispatching threads, 8 clients --------------------------------------------
    let parallel: [(&str, &str, &[&str], &[&str]); 2] = [
        (
            "deliver_parallel_8clients",
            "1, 2 and 4 dispatching threads (one hub each), the same 8 clients, trivial callbacks",
            &["1", "2", "4"],
            &BASELINES,
        ),
        (
            "deliver_parallel_busy_8clients",
            "Same pattern, callbacks doing 1000 rounds of opaque work (not an issue case)",
            &["1", "2"],
            &["b_atomic_pair", "c_mutex", "d_rwlock"],
        ),
    ];
    for (g, title, threads, designs) in parallel {
        if !runs.iter().any(|r| r.keys().any(|k| k.0 == g)) {
            continue;
        }
        writeln!(out, "### {title}\n").unwrap();
        out.push_str(
            "Wall time per callback delivered: an iteration is every thread delivering one \
             event to all 8 clients; its time ÷ (threads × 8).\n\n",
        );
        let mut rows = Vec::new();
        for &t in threads {
            let callbacks = t.parse::<f64>().unwrap() * 8.0;
            let mut row = vec![t.to_owned(), cell(&times(g, "usbpm", Some(t), callbacks))];
            row.extend(
                designs
                    .iter()
                    .map(|b| cell(&times(g, b, Some(t), callbacks))),
            );
            row.extend(designs.iter().map(|b| rcell(ratios(g, b, Some(t)))));
            rows.push(row);
        }
        table(&mut out, &header(&["threads", "usbpm"], designs), &rows);
    }

    // --- churn -----------------------------------------------------------------------------
    let designs = ["c_mutex", "d_rwlock", "e_snapshot_unsafe"];
    out.push_str(
        "### Churn: one thread registering+deregistering, one delivering, 8 steady clients\n\n",
    );
    let mut rows = Vec::new();
    for (g, what) in [
        (
            "churn_deliver_8clients",
            "deliver one event (churn beside it)",
        ),
        (
            "churn_register_deregister",
            "register + deregister (delivery beside it)",
        ),
    ] {
        let mut row = vec![what.to_owned(), cell(&times(g, "usbpm", None, 1.0))];
        row.extend(designs.iter().map(|b| cell(&times(g, b, None, 1.0))));
        row.extend(designs.iter().map(|b| rcell(ratios(g, b, None))));
        rows.push(row);
    }
    table(&mut out, &header(&["measured", "usbpm"], &designs), &rows);
    out
}

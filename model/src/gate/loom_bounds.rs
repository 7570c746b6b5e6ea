//! `gate loom-bounds`: the loom build of `replay` on every small scenario at bounds 2, 3
//! and unbounded, each in its own process with a time cap: executions and seconds.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::{exit_code, Options};
use crate::exec::scenarios::{Size, ALL};

/// The bounds measured, in the table's column order.
pub const BOUNDS: [&str; 3] = ["2", "3", "unbounded"];

/// The executions count in replay's output ("... (N executions ...").
pub fn executions(output: &str) -> String {
    output
        .split('(')
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or("?")
        .to_string()
}

/// Measures every selected small scenario and writes `loom-bounds.md` to the report dir.
pub fn loom_bounds(opts: &Options, root: &Path) -> ExitCode {
    let Some(replay) = build_replay(root, "loom-bounds") else {
        return ExitCode::from(1);
    };
    let mut md = "| scenario | threads | bound 2 | bound 3 | unbounded |\n|---|---:|---|---|---|\n"
        .to_string();
    let mut ok = true;
    for s in ALL
        .iter()
        .filter(|s| s.size == Size::Small && opts.selects_scenario(s.name))
    {
        let mut cells = Vec::new();
        for bound in BOUNDS {
            let (status, out, secs) = run_capped(
                &replay,
                &["--scenario", s.name, "--bound", bound],
                opts.timeout_secs,
            );
            let cell = match status {
                None => format!("did not finish in {} s", opts.timeout_secs),
                Some(st) if st.success() => format!("{} executions, {secs:.2} s", executions(&out)),
                Some(_) => {
                    ok = false;
                    format!("**FAILED** after {secs:.2} s")
                }
            };
            eprintln!("  {:<32} bound {bound:<9} {cell}", s.name);
            cells.push(cell);
        }
        md.push_str(&format!(
            "| {} | {} | {} |\n",
            s.name,
            s.threads,
            cells.join(" | ")
        ));
    }
    let dir = root.join(&opts.report_dir);
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join("loom-bounds.md"), &md);
    println!("{md}");
    println!("Written to {}/loom-bounds.md", dir.display());
    exit_code(ok)
}

/// Builds the loom `replay` binary; returns its path (`None`, said why, when it fails).
pub fn build_replay(root: &Path, mode: &str) -> Option<PathBuf> {
    eprintln!("gate {mode}: building the loom replay binary");
    let built = Command::new("cargo")
        .current_dir(root)
        .args([
            "build",
            "--release",
            "-p",
            "usbpm-model",
            "--features",
            "loom",
            "--bin",
            "replay",
        ])
        .status()
        .is_ok_and(|s| s.success());
    if !built {
        eprintln!("gate {mode}: the build failed");
        return None;
    }
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    // A private copy: any later build of the replay binary (a std or shuttle one, by
    // hand or by another gate mode) writes the same path, and this run would go on with
    // a binary that is not loom's.
    let copy = target.join("gate").join(format!("{mode}-loom-replay"));
    let copied = std::fs::create_dir_all(target.join("gate"))
        .and_then(|()| std::fs::copy(target.join("release").join("replay"), &copy));
    if let Err(e) = copied {
        eprintln!(
            "gate {mode}: could not copy the replay binary to {}: {e}",
            copy.display()
        );
        return None;
    }
    Some(copy)
}

/// Runs `replay` with `args` for at most `timeout_secs`: its exit status (`None`: it was
/// stopped at the cap), its standard output, and the seconds it took.
pub fn run_capped(
    replay: &Path,
    args: &[&str],
    timeout_secs: u64,
) -> (Option<ExitStatus>, String, f64) {
    let start = Instant::now();
    let mut child = Command::new(replay)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run the replay binary");
    let deadline = start + Duration::from_secs(timeout_secs);
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait for replay") {
            break Some(st);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        // Polls the child against its time cap; nothing is ordered by this sleep.
        std::thread::sleep(Duration::from_millis(50));
    };
    let secs = start.elapsed().as_secs_f64();
    let mut out = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut out);
    }
    (status, out, secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executions_are_read_from_replays_summary() {
        assert_eq!(
            executions("replay of handle-reuse passed: no violation (1234 executions)\n"),
            "1234"
        );
        assert_eq!(executions("no summary"), "?");
    }
}

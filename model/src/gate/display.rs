//! Live progress: a bar on a terminal, a line per finished check (and a heartbeat) in CI.

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use super::records::{progress_line, read_records};
use crate::checkers::check::{Record, Verdict};

/// The progress of a gate run.
pub struct Display {
    pub bar: ProgressBar,
    pub tty: bool,
}

impl Display {
    pub fn new(total: u64) -> Self {
        let tty = std::io::stderr().is_terminal();
        let bar = if tty {
            ProgressBar::new(total)
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} checks  {msg}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        Display { bar, tty }
    }

    pub fn set_phase(&self, phase: &str) {
        if self.tty {
            self.bar
                .set_message(format!("{phase}: building / starting"));
        } else {
            eprintln!("gate: running {phase} checks");
        }
    }

    pub fn line(&self, text: String) {
        if self.tty {
            self.bar.println(text);
        } else {
            eprintln!("{text}");
        }
    }
}

/// One finished check, as a line of the live display.
pub fn finished_line(r: &Record) -> String {
    let verdict = if r.verdict == Verdict::Pass {
        "pass"
    } else {
        "FAIL"
    };
    format!(
        "  {:<8} {:<32} {:<40} {:>10} exec {:>8.2}s  {verdict}",
        r.checker, r.scenario, r.method, r.executions, r.seconds
    )
}

/// Time left: the checks still to run at the average pace of those done (exhaustive runs
/// have no known total of their own).
pub fn time_left(done: u64, total: u64, elapsed: Duration) -> Option<f64> {
    (done > 0 && total > done).then(|| elapsed.as_secs_f64() / done as f64 * (total - done) as f64)
}

/// Watches the results directory while checks run: reports each finished check and the
/// executions of the running ones, until `stop` is set.
pub fn watch(
    results: PathBuf,
    display: Arc<Display>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut seen = BTreeSet::new();
        let mut last_beat = Instant::now();
        loop {
            let done = stop.load(Ordering::SeqCst);
            let (records, _) = read_records(&results);
            for r in &records {
                let key = format!(
                    "{}{}",
                    Record::key(r.checker, &r.scenario),
                    r.mutant.clone().unwrap_or_default()
                );
                if seen.insert(key) {
                    display.bar.inc(1);
                    display.line(finished_line(r));
                }
            }
            let running: Vec<String> = std::fs::read_dir(results.join("progress"))
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| {
                    let key = e.path().file_stem()?.to_string_lossy().to_string();
                    if records
                        .iter()
                        .any(|r| Record::key(r.checker, &r.scenario) == key)
                    {
                        return None;
                    }
                    progress_line(&key, &std::fs::read_to_string(e.path()).ok()?)
                })
                .collect();
            if !running.is_empty() {
                let left = time_left(
                    display.bar.position(),
                    display.bar.length().unwrap_or(0),
                    display.bar.elapsed(),
                )
                .map(|s| format!("~{s:.0}s left | "))
                .unwrap_or_default();
                if display.tty {
                    display
                        .bar
                        .set_message(format!("{left}{}", running.join(" | ")));
                } else if last_beat.elapsed() > Duration::from_secs(30) {
                    last_beat = Instant::now();
                    eprintln!("gate: still running: {}", running.join(" | "));
                }
            }
            if done {
                break;
            }
            // A polling interval for the display, not synchronisation: the records are
            // read again after `stop`, and the run's verdict is made from them afterwards.
            std::thread::sleep(Duration::from_millis(300));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_left_is_the_average_pace_times_the_checks_to_go() {
        assert_eq!(
            time_left(0, 10, Duration::from_secs(5)),
            None,
            "no pace before the first check"
        );
        assert_eq!(
            time_left(10, 10, Duration::from_secs(5)),
            None,
            "nothing left"
        );
        assert_eq!(time_left(2, 10, Duration::from_secs(4)), Some(16.0));
    }

    #[test]
    fn a_finished_line_shows_the_verdict() {
        let r = super::super::records::tests::record(
            crate::base::checker::Checker::Loom,
            "handle-reuse",
            Verdict::Fail,
        );
        let line = finished_line(&r);
        assert!(
            line.contains("handle-reuse") && line.ends_with("FAIL"),
            "{line}"
        );
    }
}

//! Checkers side by side: the gate's nextest runs share the machine's cores in lanes.
//!
//! One nextest run at a time leaves cores idle: while a checker starts (nextest lists its
//! tests), at each checker's tail (its last test still running), and for a checker of
//! one long test (the specification's exhaustive check, single-threaded). The gate
//! instead runs one nextest run per lane, each with its share of the cores as test
//! threads, and each lane takes the next job from one list (longest first, so the last
//! jobs are short ones). On 2 cores that is two lanes of one test thread each: never
//! more threads than cores, so a check's seconds stay what one core takes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::base::checker::Checker;
use crate::checkers::check::Profile;

/// How many nextest runs go at once, and how many test threads each gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lanes {
    pub lanes: usize,
    pub test_threads: usize,
}

impl Lanes {
    /// Two lanes when there are two cores or more, each with half the cores.
    pub fn for_cores(cores: usize) -> Lanes {
        let lanes = cores.clamp(1, 2);
        Lanes {
            lanes,
            test_threads: (cores / lanes).max(1),
        }
    }

    /// This machine's lanes (`USBPM_GATE_LANES=1` runs one checker at a time, with every
    /// core to it).
    pub fn here() -> Lanes {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        match std::env::var("USBPM_GATE_LANES").ok().as_deref() {
            Some("1") => Lanes {
                lanes: 1,
                test_threads: cores,
            },
            _ => Lanes::for_cores(cores),
        }
    }

    /// Runs `work` on every job, `self.lanes` at a time, in the order given; returns the
    /// results in the jobs' order.
    pub fn run<T: Sync, R: Send>(self, jobs: &[T], work: impl Fn(&T) -> R + Sync) -> Vec<R> {
        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<Option<R>>> = Mutex::new(jobs.iter().map(|_| None).collect());
        std::thread::scope(|s| {
            for _ in 0..self.lanes.min(jobs.len()).max(1) {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else { break };
                    let r = work(job);
                    results.lock().expect("a lane panicked")[i] = Some(r);
                });
            }
        });
        results
            .into_inner()
            .expect("a lane panicked")
            .into_iter()
            .map(|r| r.expect("every job ran"))
            .collect()
    }
}

/// `checkers` with the longest first at `profile`, by the checking seconds the embedded
/// reports of docs/VERIFICATION.md measure (the order only: a wrong guess costs idle time,
/// never a check).
pub fn longest_first(checkers: &[Checker], profile: Profile) -> Vec<Checker> {
    let rank = |c: &Checker| match (profile, c) {
        (Profile::Full, Checker::GenLoom) => 0,
        (Profile::Full, Checker::Shuttle) => 1,
        (Profile::Full, Checker::Spec) => 2,
        (Profile::Full, Checker::GenShuttle) => 3,
        (Profile::Quick, Checker::GenShuttle) => 0,
        (Profile::Quick, Checker::Shuttle) => 1,
        (Profile::Quick, Checker::Loom) => 2,
        (Profile::Quick, Checker::GenLoom) => 3,
        (Profile::Quick, Checker::Spec) => 4,
        (_, Checker::Loom) => 4,
        (_, Checker::Std) => 5,
        (_, Checker::Trace) => 6,
        (_, Checker::Proptest) => 7,
    };
    let mut sorted = checkers.to_vec();
    sorted.sort_by_key(rank);
    sorted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_cores_are_two_lanes_of_one_thread() {
        assert_eq!(
            Lanes::for_cores(2),
            Lanes {
                lanes: 2,
                test_threads: 1
            }
        );
        assert_eq!(
            Lanes::for_cores(1),
            Lanes {
                lanes: 1,
                test_threads: 1
            }
        );
        assert_eq!(
            Lanes::for_cores(8),
            Lanes {
                lanes: 2,
                test_threads: 4
            }
        );
    }

    #[test]
    fn every_job_runs_once_and_results_keep_the_jobs_order() {
        let jobs: Vec<u32> = (0..23).collect();
        let ran = AtomicUsize::new(0);
        let out = Lanes::for_cores(2).run(&jobs, |j| {
            ran.fetch_add(1, Ordering::Relaxed);
            j * 2
        });
        assert_eq!(ran.into_inner(), 23);
        assert_eq!(out, jobs.iter().map(|j| j * 2).collect::<Vec<_>>());
    }

    #[test]
    fn the_order_keeps_every_checker_and_puts_the_long_ones_first() {
        for profile in [Profile::Quick, Profile::Full] {
            let sorted = longest_first(&Checker::ALL, profile);
            assert_eq!(sorted.len(), Checker::ALL.len());
            assert!(Checker::ALL.iter().all(|c| sorted.contains(c)));
            assert_eq!(*sorted.last().unwrap(), Checker::Proptest);
        }
        assert_eq!(
            longest_first(&Checker::ALL, Profile::Full)[0],
            Checker::GenLoom
        );
    }
}

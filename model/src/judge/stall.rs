//! A hang recognised from the protocol's own steps, in seconds, on real threads (std and
//! proptest), where no checker explores schedules and so none reports a deadlock.
//!
//! The library blocks in two places only, and its probe says when a thread enters and
//! leaves each: a deregister sleeping until its client's calls drain
//! ([`Step::DeregisterSleeps`] until [`Step::DeregisterReturn`], woken by [`Step::Woke`]),
//! and a caller sleeping until its hub item is delivered ([`Step::Submitted`],
//! [`Step::Awake`] or [`Step::Settles`] with [`Settle::Sleeps`], until the next
//! [`Step::Awake`], woken by [`Step::DrainStop`] with `woke`). A thread asleep there with
//! no wake-up sent since it fell asleep waits for something nobody has done; if, in
//! addition, no thread has taken a step for [`QUIET`], nobody is going to: no thread can
//! make progress. A hang outside those waits (a thread blocked on a lock it holds) shows
//! as no step at all for [`SILENT`].

use std::collections::BTreeMap;
use std::time::Duration;

use usbpm::checking::{Settle, Step};
use usbpm::{ClientHandle, HubId};

/// The words every hang diagnosis starts with (a log that contains them shows a hang).
pub const NO_PROGRESS: &str = "no thread can make progress";

/// How long nobody may take a step while a thread sleeps unwoken in the library.
pub const QUIET: Duration = Duration::from_secs(1);

/// How long nobody may take a step at all while an execution is unfinished.
pub const SILENT: Duration = Duration::from_secs(3);

/// What a thread sleeps on in the library.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Its deregister, until the client's in-flight calls drain.
    Rundown(ClientHandle),
    /// Its call, until its item of this hub is delivered (or the queue is idle).
    Hub(HubId),
    /// Its delivery, until the client's active call on another thread hands it the turn.
    Turn(ClientHandle),
}

/// A thread asleep in the library with no wake-up sent to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sleeper {
    pub thread: String,
    pub on: Wait,
    /// The index (from 0) of the step at which it fell asleep.
    pub since: usize,
}

/// The threads asleep in the library at the end of `steps` that no wake-up has reached.
pub fn unwoken(steps: &[(String, Step)]) -> Vec<Sleeper> {
    // thread -> (what it sleeps on, since, woken)
    let mut asleep: BTreeMap<&str, (Wait, usize, bool)> = BTreeMap::new();
    for (i, (thread, step)) in steps.iter().enumerate() {
        let falls_asleep = match step {
            Step::DeregisterSleeps(c) | Step::DetachWaits(c) | Step::ShutdownSleeps(c) => {
                Some(Wait::Rundown(*c))
            }
            Step::TurnWaits { client, .. } => Some(Wait::Turn(*client)),
            Step::Submitted { hub, settle, .. }
            | Step::Awake { hub, settle, .. }
            | Step::Settles { hub, settle, .. } => {
                (*settle == Settle::Sleeps).then_some(Wait::Hub(*hub))
            }
            Step::Registered(_)
            | Step::Queued { .. }
            | Step::InFlightAcquire { .. }
            | Step::Skipped { .. }
            | Step::CallbackBegin { .. }
            | Step::CallbackEnd { .. }
            | Step::InFlightRelease { .. }
            | Step::DeregisterEnter(_)
            | Step::DeregisterClosed { .. }
            | Step::Woke(_)
            | Step::WaiterLeaves(_)
            | Step::DeregisterReturn { .. }
            | Step::HubArrived { .. }
            | Step::Took { .. }
            | Step::DrainStop { .. }
            | Step::Settled { .. }
            | Step::WaitFor { .. }
            | Step::Retired(_)
            | Step::DetachEnter(_)
            | Step::DetachReturn(_)
            | Step::ContextDrop(_)
            | Step::DetachDone(_)
            | Step::ManagerCallBegin { .. }
            | Step::ManagerCallEnd { .. }
            | Step::ManagerSkipped { .. }
            | Step::GreetingOwed(_)
            | Step::Shown(_)
            | Step::Greeted(_)
            | Step::ShutdownEnter
            | Step::ShutdownReturn
            | Step::PowerRequested { .. }
            | Step::PowerAnswered { .. } => None,
        };
        // A thread that takes a step is awake (but `Queued` follows `Submitted` before
        // the caller goes to sleep); the wake-ups a step sends reach others.
        if !matches!(step, Step::Queued { .. }) {
            asleep.remove(thread.as_str());
        }
        match step {
            Step::Woke(c) => wake(&mut asleep, Wait::Rundown(*c)),
            // The active call hands the turn over with its release.
            Step::InFlightRelease { client, .. } => wake(&mut asleep, Wait::Turn(*client)),
            Step::DrainStop {
                hub, woke: true, ..
            } => wake(&mut asleep, Wait::Hub(*hub)),
            _ => {}
        }
        if let Some(on) = falls_asleep {
            asleep.insert(thread, (on, i, false));
        }
    }
    asleep
        .into_iter()
        .filter(|(_, (_, _, woken))| !woken)
        .map(|(thread, (on, since, _))| Sleeper {
            thread: thread.to_string(),
            on,
            since,
        })
        .collect()
}

fn wake(asleep: &mut BTreeMap<&str, (Wait, usize, bool)>, on: Wait) {
    for (w, _, woken) in asleep.values_mut() {
        if *w == on {
            *woken = true;
        }
    }
}

/// The verdict on an unfinished execution after `quiet` without a step: `Some(diagnosis)`
/// when it hangs.
pub fn verdict(steps: &[(String, Step)], quiet: Duration) -> Option<String> {
    let sleepers = unwoken(steps);
    if quiet >= QUIET && !sleepers.is_empty() {
        let who: Vec<String> = sleepers
            .iter()
            .map(|s| {
                let on = match s.on {
                    Wait::Rundown(c) => format!("in deregister({c}) until its calls drain"),
                    Wait::Hub(h) => format!("until its {h} item is delivered"),
                    Wait::Turn(c) => format!("until {c}'s active call returns"),
                };
                format!(
                    "{} sleeps {on} since step {}, and nothing has woken it",
                    s.thread,
                    s.since + 1
                )
            })
            .collect();
        return Some(format!(
            "{NO_PROGRESS}: {}; no thread took a step for {} ms",
            who.join("; "),
            quiet.as_millis()
        ));
    }
    (quiet >= SILENT).then(|| {
        format!(
            "{NO_PROGRESS}: no protocol step for {} s (a thread blocked outside the library's two waits, e.g. on a lock it holds)",
            quiet.as_secs()
        )
    })
}

/// A probe that watches one process's executions for a hang: it records every step of
/// the Policy Manager it is given to, and a thread of its own fails the process, with the
/// diagnosis and the last steps, once an operation in progress hangs (see [`verdict`]).
/// For harnesses that run the library on real threads without a monitor of their own
/// (the proptest state machine); the std checker asks [`verdict`] of its monitor instead.
pub struct Watchdog {
    state: std::sync::Mutex<Watched>,
}

#[derive(Default)]
struct Watched {
    steps: Vec<(String, Step)>,
    /// Operations in progress (a hang is judged only while one is).
    busy: usize,
    /// Bumped by every step and every operation's start and end.
    progress: u64,
}

/// An operation in progress, watched until dropped.
pub struct Operation(std::sync::Arc<Watchdog>);

impl Drop for Operation {
    fn drop(&mut self) {
        let mut w = self.0.lock();
        w.busy -= 1;
        w.progress += 1;
    }
}

impl Watchdog {
    /// A watchdog whose thread calls `on_hang` with the diagnosis when an operation hangs.
    pub fn start(on_hang: fn(String)) -> std::sync::Arc<Self> {
        let dog = std::sync::Arc::new(Watchdog {
            state: std::sync::Mutex::new(Watched::default()),
        });
        let watched = std::sync::Arc::downgrade(&dog);
        std::thread::spawn(move || {
            let tick = Duration::from_millis(50);
            let mut last = (u64::MAX, std::time::Instant::now());
            while let Some(dog) = watched.upgrade() {
                let hang = {
                    let w = dog.lock();
                    if w.busy == 0 || w.progress != last.0 {
                        last = (w.progress, std::time::Instant::now());
                        None
                    } else {
                        verdict(&w.steps, last.1.elapsed()).map(|why| {
                            let tail: Vec<String> = w
                                .steps
                                .iter()
                                .enumerate()
                                .skip(w.steps.len().saturating_sub(40))
                                .map(|(i, (t, s))| format!("  {:>4}  {t:<16} {s:?}", i + 1))
                                .collect();
                            format!("{why}\nThe last steps:\n{}", tail.join("\n"))
                        })
                    }
                };
                drop(dog);
                if let Some(report) = hang {
                    on_hang(report);
                    return;
                }
                std::thread::sleep(tick);
            }
        });
        dog
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Watched> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts watching an operation; it is watched until the returned guard drops.
    pub fn operation(self: &std::sync::Arc<Self>) -> Operation {
        let mut w = self.lock();
        w.busy += 1;
        w.progress += 1;
        drop(w);
        Operation(self.clone())
    }

    /// Forgets the steps recorded so far (a new Policy Manager, a new case).
    pub fn reset(&self) {
        self.lock().steps.clear();
    }
}

impl usbpm::checking::Probe for Watchdog {
    fn step(&self, step: Step) {
        let thread = std::thread::current().name().map_or_else(
            || format!("{:?}", std::thread::current().id()),
            str::to_string,
        );
        let mut w = self.lock();
        w.steps.push((thread, step));
        w.progress += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(slot: u32) -> ClientHandle {
        ClientHandle::from_raw((7 << 32) | (u64::from(slot) << 16) | 1)
    }

    fn at(thread: &str, step: Step) -> (String, Step) {
        (thread.to_string(), step)
    }

    #[test]
    fn a_deregister_nobody_wakes_is_a_hang_after_quiet() {
        let steps = [
            at("t1", Step::DeregisterEnter(c(1))),
            at("t1", Step::DeregisterSleeps(c(1))),
        ];
        assert_eq!(unwoken(&steps).len(), 1);
        assert!(verdict(&steps, QUIET / 2).is_none(), "not before QUIET");
        let why = verdict(&steps, QUIET).expect("a hang");
        assert!(why.contains("t1 sleeps in deregister"), "{why}");
    }

    #[test]
    fn a_woken_sleeper_or_a_step_of_its_own_is_no_hang() {
        let woken = [
            at("t1", Step::DeregisterSleeps(c(1))),
            at("t2", Step::Woke(c(1))),
        ];
        assert!(unwoken(&woken).is_empty());
        assert!(verdict(&woken, QUIET).is_none());
        let returned = [
            at("t1", Step::DeregisterSleeps(c(1))),
            at(
                "t1",
                Step::DeregisterReturn {
                    client: c(1),
                    ok: true,
                },
            ),
        ];
        assert!(unwoken(&returned).is_empty());
    }

    #[test]
    fn a_hub_sleeper_is_woken_only_by_its_hubs_hand_off() {
        let h0 = HubId(0);
        let h1 = HubId(1);
        let sleeps = at(
            "t1",
            Step::Submitted {
                hub: h0,
                appended: usbpm::checking::Appended::Nothing,
                ticket: 2,
                settle: Settle::Sleeps,
            },
        );
        let other_hub = at(
            "t2",
            Step::DrainStop {
                hub: h1,
                done: 3,
                woke: true,
            },
        );
        let own_hub = at(
            "t2",
            Step::DrainStop {
                hub: h0,
                done: 3,
                woke: true,
            },
        );
        assert_eq!(unwoken(&[sleeps.clone(), other_hub.clone()]).len(), 1);
        let queued = at("t1", Step::Queued { hub: h0, seq: 4 });
        assert_eq!(
            unwoken(&[sleeps.clone(), queued]).len(),
            1,
            "a caller queues its item after Submitted, then sleeps"
        );
        assert!(unwoken(&[sleeps, other_hub, own_hub]).is_empty());
    }

    #[test]
    fn silence_without_a_sleeper_is_a_hang_only_after_silent() {
        let steps = [at("t1", Step::DeregisterEnter(c(1)))];
        assert!(verdict(&steps, QUIET).is_none());
        assert!(verdict(&steps, SILENT).is_some());
    }
}

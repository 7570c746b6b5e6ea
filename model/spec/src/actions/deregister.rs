//! `deregister` and the drop of a `Registration` that may not wait (detach), step by
//! step: enter, the checks from inside callbacks, retire, close, wait, return.
//!
//! Contract: a deregister is a [`Frame::Deregister`] on its thread's stack, and each
//! action moves its [`Phase`]: `Entered` → (from inside callbacks, `WaitFor` or
//! `NoCheck`) `Checked` → `Retire` → `Retired` → `Close` → `AtZero` (→ `Return` or
//! `DetachReturn`), or with calls in flight `MustSleep` → `Sleep` → `Waiting` →
//! `Return`. `Fail` pops it before the retire. `Test`, `Park` and `Wake` are mutant
//! lost-wakeup's sleep outside the lock. Each action is one function; the frame's fields
//! are read through [`Deregister`] and written back whole. The code: `PolicyManager::deregister`,
//! `deregister_inner`, `close_and_wait`, `detach`; `WaitGraph::enter`; `Slots::remove`;
//! `Rundown::close` and `wait_for_zero`.

use super::delivery::bumps;
use super::{ensure, idle_or_callback, top, R};
use crate::mutants::SpecMutant;
use crate::spec::Spec;
use crate::state::{bit, Frame, Phase, Set, State, Status};

/// The fields of a [`Frame::Deregister`].
#[derive(Clone, Copy)]
struct Deregister {
    target: u8,
    holding: Set,
    victim: u8,
    phase: Phase,
    edge: bool,
    wait: bool,
}

impl Deregister {
    /// Thread `t`'s deregister frame (its top frame).
    fn of(s: &State, t: usize) -> Result<Deregister, &'static str> {
        let Some(Frame::Deregister {
            target,
            holding,
            victim,
            phase,
            edge,
            wait,
        }) = top(s, t)
        else {
            return Err("not inside a deregister");
        };
        Ok(Deregister {
            target,
            holding,
            victim,
            phase,
            edge,
            wait,
        })
    }

    /// It is made from inside a callback of its own target.
    fn own(self) -> bool {
        self.holding & bit(self.target) != 0
    }

    /// The checks from inside callbacks come next.
    fn checks(self) -> bool {
        self.phase == Phase::Entered && self.holding != 0
    }

    /// Past the checks (or with none to make): the registry check comes next.
    fn past_checks(self) -> bool {
        self.phase == Phase::Checked || (self.phase == Phase::Entered && self.holding == 0)
    }

    /// Writes it back as thread `t`'s top frame.
    fn put(self, n: &mut State, t: usize) {
        *n.threads[t].last_mut().expect("deregister frame") = Frame::Deregister {
            target: self.target,
            holding: self.holding,
            victim: self.victim,
            phase: self.phase,
            edge: self.edge,
            wait: self.wait,
        };
    }

    /// Moves it to `phase` on thread `t`.
    fn go(self, n: &mut State, t: usize, phase: Phase) {
        Deregister { phase, ..self }.put(n, t);
    }
}

/// Pushes a deregister of `target` on thread `t`; `wait`: a deregister (made from
/// inside the callbacks on the stack), not a detach (which never waits).
fn enter(s: &State, n: &mut State, t: usize, target: u8, wait: bool) -> R {
    ensure(
        idle_or_callback(s, t),
        "deregister from an idle thread or a callback",
    )?;
    let holding = if wait { s.holding(t) } else { 0 };
    n.threads[t].push(Frame::Deregister {
        target,
        holding,
        victim: target,
        phase: Phase::Entered,
        edge: false,
        wait,
    });
    Ok(())
}

impl Spec {
    /// `deregister(target)` is entered (from an idle thread or a callback).
    pub(super) fn deregister_enter(&self, s: &State, n: &mut State, t: usize, target: u8) -> R {
        enter(s, n, t, target, true)
    }

    /// The drop of a `Registration` where waiting is refused: a deregister that never
    /// waits.
    pub(super) fn detach_enter(&self, s: &State, n: &mut State, t: usize, target: u8) -> R {
        enter(s, n, t, target, false)
    }

    /// From inside callbacks, the target is not held and waiting for it closes no cycle:
    /// the wait-for edge is recorded.
    pub(super) fn wait_for(&self, s: &State, n: &mut State, t: usize) -> R {
        let d = Deregister::of(s, t)?;
        ensure(
            d.checks() && !d.own() && !s.would_close_cycle(d.holding, d.target),
            "the wait-for edge is recorded only when it closes no cycle",
        )?;
        ensure(
            !self.m(SpecMutant::NoCycleCheck),
            "the mutant has no wait-for graph",
        )?;
        Deregister {
            phase: Phase::Checked,
            edge: true,
            ..d
        }
        .put(n, t);
        Ok(())
    }

    /// Mutants own-callback-waits and no-cycle-check skip the check they lack.
    pub(super) fn no_check(&self, s: &State, n: &mut State, t: usize) -> R {
        let d = Deregister::of(s, t)?;
        let own = d.own();
        let skips = (own && self.m(SpecMutant::OwnCallbackWaits))
            || (!own && self.m(SpecMutant::NoCycleCheck));
        ensure(d.checks() && skips, "the checks are made")?;
        d.go(n, t, Phase::Checked);
        Ok(())
    }

    /// An error return: a deregister from its own callback, one whose wait would close a
    /// cycle, or a handle that is not registered. Pops the frame; nothing else changes.
    pub(super) fn fail(&self, s: &State, n: &mut State, t: usize) -> R {
        let d = Deregister::of(s, t)?;
        let own = d.own();
        let refused = d.checks()
            && ((own && !self.m(SpecMutant::OwnCallbackWaits))
                || (!own
                    && !self.m(SpecMutant::NoCycleCheck)
                    && s.would_close_cycle(d.holding, d.target)));
        let registry_ok = !self.registry_blocked(s);
        let stale = d.past_checks()
            && registry_ok
            && s.clients[usize::from(d.target)].status != Status::Open;
        ensure(
            refused || stale,
            "an error only for a refused wait or a handle that is not registered",
        )?;
        n.threads[t].pop();
        Ok(())
    }

    /// Under the registry lock, the target's slot is emptied: `victim` is retired (the
    /// target; mutant no-generation: whichever client a stale handle hits).
    pub(super) fn retire(&self, s: &State, n: &mut State, t: usize, victim: u8) -> R {
        let d = Deregister::of(s, t)?;
        let registry_ok = !self.registry_blocked(s);
        let tc = s.clients[usize::from(d.target)].status;
        ensure(
            d.past_checks() && registry_ok,
            "retire follows the checks, under the registry lock",
        )?;
        let stale_hits_other =
            self.m(SpecMutant::NoGeneration) && tc != Status::Open && victim != d.target;
        ensure(
            (victim == d.target && tc == Status::Open) || stale_hits_other,
            "deregister retires its own, registered client",
        )?;
        let vc = &mut n.clients[usize::from(victim)];
        ensure(
            vc.status == Status::Open,
            "only a registered client is retired",
        )?;
        vc.status = Status::Retired;
        vc.hidden = false;
        vc.retired_by = Some(d.target);
        Deregister {
            victim,
            phase: Phase::Retired,
            ..d
        }
        .put(n, t);
        Ok(())
    }

    /// `CLOSED` is set on the victim, with `in_flight` calls running: a deregister with
    /// calls in flight must sleep next (a detach never does).
    pub(super) fn close(&self, s: &State, n: &mut State, t: usize, in_flight: u8) -> R {
        let d = Deregister::of(s, t)?;
        ensure(d.phase == Phase::Retired, "close follows retire")?;
        // Closed by `shutdown` already, it may see the bumps of deliveries skipping it.
        let seen = s.clients[usize::from(d.victim)].in_flight;
        let vc = &mut n.clients[usize::from(d.victim)];
        ensure(
            (seen..=seen + bumps(s, d.victim)).contains(&in_flight),
            "close sees the in-flight count the specification has",
        )?;
        vc.status = Status::Closed;
        let wait_now = d.wait && in_flight > 0 && !self.m(SpecMutant::DeregisterNoWait);
        d.go(
            n,
            t,
            if wait_now {
                Phase::MustSleep
            } else {
                Phase::AtZero
            },
        );
        Ok(())
    }

    /// Deregister goes to sleep until the calls in flight end.
    pub(super) fn sleep(&self, s: &State, n: &mut State, t: usize) -> R {
        let d = Deregister::of(s, t)?;
        ensure(
            d.phase == Phase::MustSleep,
            "deregister sleeps only with callbacks in flight",
        )?;
        d.go(n, t, Phase::Waiting);
        Ok(())
    }

    /// Mutant lost-wakeup: the count is tested outside the lock.
    pub(super) fn test(&self, s: &State, n: &mut State, t: usize) -> R {
        let d = Deregister::of(s, t)?;
        ensure(
            self.m(SpecMutant::LostWakeup) && d.phase == Phase::Waiting,
            "only the mutant tests outside the lock",
        )?;
        let at_zero = s.clients[usize::from(d.victim)].in_flight == 0;
        d.go(
            n,
            t,
            if at_zero {
                Phase::AtZero
            } else {
                Phase::Tested
            },
        );
        Ok(())
    }

    /// Mutant lost-wakeup: goes to sleep after the test (a notify before this is lost).
    pub(super) fn park(&self, s: &State, n: &mut State, t: usize) -> R {
        let d = Deregister::of(s, t)?;
        ensure(d.phase == Phase::Tested, "parks after the test")?;
        d.go(n, t, Phase::Asleep { notified: false });
        Ok(())
    }

    /// Mutant lost-wakeup: woken by a notify, tests again.
    pub(super) fn wake(&self, s: &State, n: &mut State, t: usize) -> R {
        let d = Deregister::of(s, t)?;
        ensure(
            d.phase == Phase::Asleep { notified: true },
            "only a notify wakes a sleeper",
        )?;
        d.go(n, t, Phase::Waiting);
        Ok(())
    }

    /// Deregister returns `Ok` (its wait-for edge removed with its frame).
    pub(super) fn return_ok(&self, s: &State, n: &mut State, t: usize) -> R {
        self.returns(s, n, t, true)
    }

    /// A detach returns (it never waited).
    pub(super) fn detach_return(&self, s: &State, n: &mut State, t: usize) -> R {
        self.returns(s, n, t, false)
    }

    /// A deregister (`waited`) or a detach returns, with no callback of its victim in
    /// flight: pops the frame; a deregister's target has returned `Ok` (P1, P2).
    fn returns(&self, s: &State, n: &mut State, t: usize, waited: bool) -> R {
        let d = Deregister::of(s, t)?;
        ensure(d.wait == waited, "a detach returns without waiting")?;
        let zero_now = d.phase == Phase::Waiting
            && !self.m(SpecMutant::LostWakeup)
            && s.clients[usize::from(d.victim)].in_flight == 0;
        ensure(
            d.phase == Phase::AtZero || zero_now,
            "deregister returns only when no callback of its client is in flight",
        )?;
        if d.wait {
            n.clients[usize::from(d.target)].returned_ok = true;
        }
        n.threads[t].pop();
        Ok(())
    }
}

//! The bound on a trigger's work: every answer comes within [`STEP_BUDGET`] search steps.
//!
//! A search step is a small, fixed amount of work: one move of the cron search (a field
//! checked, set or incremented), one month scanned by the cron date check, one round of an
//! [`AndTrigger`](crate::AndTrigger), one year of a zone's transitions looked at, one stretch
//! of a catch-up. The count is deterministic: the same call takes the same number of steps on
//! every machine and gives the same answer, whatever the machine's speed or load. When a
//! search reaches the budget before it has found a fire time or proved there is none, the
//! call answers [`SearchExhausted`]; a catch-up stops early instead, and the scheduler goes on
//! from where it stopped in its next pass.
//!
//! The outermost trigger call on a thread opens the budget; the calls a combination makes to
//! its children share it, so an [`AndTrigger`](crate::AndTrigger) of cron triggers is bounded
//! as a whole.

use std::cell::Cell;

use scheduler_core::SearchExhausted;
#[cfg(feature = "combining")]
use {
    chrono::{DateTime, Utc},
    scheduler_core::{CatchUp, Trigger},
};

/// The most search steps one trigger call may take.
///
/// Steps are weighted by what they cost (a zone lookup, an interval answer and a round of a
/// combination count several), so that a release build does one in 20–100 ns on a 2-core
/// machine: a call that uses the whole budget takes about a millisecond (`cargo xtask fuzz
/// --release` prints the slowest call it sees). No answer of APScheduler's 2,999 conformance
/// cases needs half of it.
pub const STEP_BUDGET: u64 = 25_000;

/// The bookkeeping of calls, apart from the count of steps (which the hot path touches alone).
#[derive(Debug, Clone, Copy, Default)]
struct Calls {
    /// Nesting of trigger calls on this thread; the budget is open while it is above zero.
    depth: u32,
    /// Steps taken by the last finished outermost call.
    last: u64,
    /// The most steps any outermost call took since [`take_peak_steps`].
    peak: u64,
}

thread_local! {
    /// Steps taken by the current outermost call.
    static USED: Cell<u64> = const { Cell::new(0) };
    static CALLS: Cell<Calls> = const { Cell::new(Calls { depth: 0, last: 0, peak: 0 }) };
}

fn update(f: impl FnOnce(&mut Calls)) -> Calls {
    CALLS.with(|cell| {
        let mut calls = cell.get();
        f(&mut calls);
        cell.set(calls);
        calls
    })
}

/// Adds `n` steps, answering the total.
fn add(n: u64) -> u64 {
    USED.with(|used| {
        let total = used.get().saturating_add(n);
        used.set(total);
        total
    })
}

/// Closes the budget of an outermost call even if the call panics.
struct Scope;

impl Drop for Scope {
    fn drop(&mut self) {
        let used = USED.with(Cell::get);
        update(|c| {
            c.depth -= 1;
            if c.depth == 0 {
                c.last = used;
                c.peak = c.peak.max(used);
            }
        });
    }
}

/// Runs one trigger call within the budget: the outermost call on this thread opens it,
/// nested calls share it.
pub(crate) fn call<R>(f: impl FnOnce() -> R) -> R {
    let calls = update(|c| c.depth += 1);
    if calls.depth == 1 {
        USED.with(|used| used.set(0));
    }
    let _scope = Scope;
    f()
}

/// What [`charge`] may add between two [`step`]s at most (a cron move looks up a few wall
/// times); `step` keeps that much in hand, so a call never takes more than [`STEP_BUDGET`].
const IN_HAND: u64 = 100;

/// Takes `n` steps; fails once the budget is spent.
pub(crate) fn step(n: u64) -> Result<(), SearchExhausted> {
    if add(n) > STEP_BUDGET - IN_HAND && CALLS.with(Cell::get).depth > 0 {
        return Err(exhausted());
    }
    Ok(())
}

/// Counts `n` steps of work that cannot stop halfway (a time-zone lookup); the next
/// [`step`] fails if they overspent the budget.
pub(crate) fn charge(n: u64) {
    add(n);
}

/// Steps taken so far by the current call (outside a call: on this thread).
#[cfg(feature = "cron")]
pub(crate) fn used() -> u64 {
    USED.with(Cell::get)
}

#[cfg(any(
    feature = "interval",
    feature = "cron",
    feature = "calendar-interval",
    feature = "combining"
))]
/// Steps left in the current call.
pub(crate) fn remaining() -> u64 {
    (STEP_BUDGET - IN_HAND).saturating_sub(USED.with(Cell::get))
}

#[cfg(feature = "combining")]
/// [`Trigger::catch_up`] for triggers that cannot count their fire times: the chain walked
/// one fire time at a time, all of it within one budget (the provided implementation gives
/// every step a budget of its own), stopping early when the budget runs low.
pub(crate) fn walk_catch_up(
    trigger: &dyn Trigger,
    first: DateTime<Utc>,
    until: DateTime<Utc>,
    max_steps: u64,
) -> Result<CatchUp, SearchExhausted> {
    call(|| {
        let mut caught = CatchUp {
            count: 1,
            last: first,
            next: None,
        };
        loop {
            step(2)?;
            caught.next = trigger.next_fire_time(Some(caught.last), until)?;
            match caught.next {
                Some(next)
                    if next <= until
                        && next > caught.last
                        && caught.count < max_steps
                        && remaining() > STEP_BUDGET / 4 =>
                {
                    caught.count += 1;
                    caught.last = next;
                }
                _ => return Ok(caught),
            }
        }
    })
}

pub(crate) fn exhausted() -> SearchExhausted {
    SearchExhausted::new(format!("it used all of its {STEP_BUDGET} search steps"))
}

/// The steps the last trigger call on this thread took (its children's included).
pub fn last_call_steps() -> u64 {
    CALLS.with(|cell| cell.get().last)
}

/// The most steps any trigger call on this thread took since the previous call of this
/// function (or since the thread started).
pub fn take_peak_steps() -> u64 {
    let peak = CALLS.with(|cell| cell.get().peak);
    update(|c| c.peak = 0);
    peak
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_calls_share_the_outermost_budget() {
        let spent = call(|| {
            step(10).unwrap();
            call(|| step(5)).unwrap();
            remaining()
        });
        assert_eq!(spent, STEP_BUDGET - IN_HAND - 15);
        assert_eq!(last_call_steps(), 15);
        call(|| step(3)).unwrap();
        assert_eq!(last_call_steps(), 3, "each outermost call starts afresh");
    }

    #[test]
    fn the_budget_ends_the_search() {
        let result = call(|| {
            for _ in 0..STEP_BUDGET - IN_HAND {
                step(1)?;
            }
            step(1)
        });
        assert_eq!(result, Err(exhausted()));
        assert_eq!(last_call_steps(), STEP_BUDGET - IN_HAND + 1);
    }

    #[test]
    fn a_panicking_call_closes_its_budget() {
        let _ = std::panic::catch_unwind(|| call(|| panic!("boom")));
        call(|| step(2)).unwrap();
        assert_eq!(last_call_steps(), 2);
    }
}

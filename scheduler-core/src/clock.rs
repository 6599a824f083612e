//! Where the scheduler reads the time and waits for it.
//!
//! Everything that asks "what time is it" (the main loop, the misfire check in executors) goes
//! through a [`Clock`], so tests can swap in a manual clock (`testkit::ManualClock`) and
//! make misfire and coalescing behaviour deterministic.

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, NaiveDate, NaiveTime, SubsecRound as _, Utc};

/// A boxed, sendable future, as returned by the object-safe traits of this crate.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A source of wall-clock time that can also wait for a given instant.
pub trait Clock: Send + Sync + Debug + 'static {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;

    /// Completes once [`now`](Clock::now) has reached `deadline`.
    ///
    /// Must not finish early; finishing late is allowed but should be brief.
    fn sleep_until(&self, deadline: DateTime<Utc>) -> BoxFuture<'static, ()>;
}

/// The system's wall clock.
///
/// Sleeps re-read the wall clock at least once a minute, so a wall-clock jump or a suspended
/// machine delays a wake-up by at most that much (the monotonic timer tokio uses does not
/// see either). Tokio's timer works in whole milliseconds and rounds up, so the last
/// [`PRECISE_TAIL`] of a sleep is slept on a blocking-pool thread with the operating system's
/// finer timer, up to [`SPIN`] before the deadline, and that last bit is spun on the sleeper's
/// thread: on a quiet machine the sleep ends within microseconds of its deadline.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

/// The longest single timer sleep before the wall clock is read again.
const MAX_SLEEP_SLICE: Duration = Duration::from_secs(60);

/// The end of a sleep that is not left to tokio's millisecond timer.
pub const PRECISE_TAIL: Duration = Duration::from_millis(2);

impl Clock for SystemClock {
    /// The current instant, to the microsecond (Python's, and so APScheduler's, precision;
    /// it is also what every store keeps, so times survive a round trip exactly).
    #[allow(clippy::disallowed_methods)] // this is the one place that reads the wall clock
    fn now(&self) -> DateTime<Utc> {
        let Ok(since_epoch) = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH) else {
            return Utc::now().trunc_subsecs(6);
        };
        i64::try_from(since_epoch.as_micros())
            .ok()
            .and_then(utc_from_micros)
            .unwrap_or_else(|| Utc::now().trunc_subsecs(6))
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            loop {
                let Ok(left) = (deadline - SystemClock.now()).to_std() else {
                    return;
                };
                if left.is_zero() {
                    return;
                }
                if left > PRECISE_TAIL {
                    tokio::time::sleep((left - PRECISE_TAIL).min(MAX_SLEEP_SLICE)).await;
                } else if left > SPIN {
                    precise_sleep(deadline).await;
                    hop("woken", deadline);
                } else {
                    spin(left);
                    hop("spun", deadline);
                }
            }
        })
    }
}

/// The end of a sleep spent polling the clock on the sleeper's own thread: handing a wake-up
/// from the sleeping thread to the sleeper's costs tens of microseconds (a futex wake-up and a
/// context switch, more on a busy machine), paid here before the deadline instead of after it.
pub const SPIN: Duration = Duration::from_micros(80);

/// Sleeps on a blocking-pool thread, with the operating system's finer timer, until [`SPIN`]
/// before `deadline`.
async fn precise_sleep(deadline: DateTime<Utc>) {
    // What is left is read on the sleeping thread: a pool thread that takes a while to pick
    // the sleep up (a woken idle thread waits for a CPU like any other) must not add that
    // delay to the sleep. `thread::sleep` never wakes early; if the blocking pool is
    // unavailable (runtime shutting down), fall back to tokio's timer.
    let left = move || {
        (deadline - SystemClock.now())
            .to_std()
            .ok()
            .and_then(|left| left.checked_sub(SPIN))
    };
    let slept = tokio::task::spawn_blocking(move || {
        tight_timer_slack();
        if let Some(left) = left() {
            std::thread::sleep(left);
        }
        hop("timer", deadline);
    });
    if slept.await.is_err()
        && let Some(left) = left()
    {
        tokio::time::sleep(left).await;
    }
}

/// Has this thread's timed sleeps end when asked: Linux lets them end up to 50 us late by
/// default (the timer slack, to merge wake-ups), most of [`SPIN`]. Other blocking work that
/// later runs on the same pool thread gets exact wake-ups too, which costs nothing measurable.
fn tight_timer_slack() {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        thread_local! {
            static SET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
        }
        if !SET.replace(true) {
            // Best effort: a refusal (a seccomp filter) leaves the default slack.
            let _ = rustix::thread::set_current_timer_slack(std::num::NonZeroU64::new(1));
        }
    }
}

/// Polls the clock until `left` has passed (no longer: a wall clock set back meanwhile is
/// left to the caller, which sleeps again).
fn spin(left: Duration) {
    let until = std::time::Instant::now() + left;
    while std::time::Instant::now() < until {
        std::hint::spin_loop();
    }
}

/// Marks a step of a wake-up for the latency bench (`--hops`), which listens to the `TRACE`
/// events of this module: `hop` names the step, `behind_us` is how far the wall clock is past
/// the deadline there (negative: before it). Unheard, an event costs one relaxed load.
fn hop(step: &'static str, deadline: DateTime<Utc>) {
    tracing::trace!(
        hop = step,
        behind_us = (SystemClock.now() - deadline)
            .num_microseconds()
            .unwrap_or(i64::MAX)
    );
}

/// The instant `micros` microseconds after the Unix epoch, as
/// `DateTime::from_timestamp_micros` answers it. Every run start reads the clock and every
/// fire reads run times back; turning the day number into a date is most of chrono's cost
/// (`Utc::now().trunc_subsecs(6)` cost 360 instructions a read), so the last day's date is
/// kept per thread (the instants read share a few days).
pub(crate) fn utc_from_micros(micros: i64) -> Option<DateTime<Utc>> {
    const MICROS_PER_DAY: i64 = 86_400_000_000;
    /// Days from 0001-01-01 (chrono's day 1) to 1970-01-01.
    const UNIX_EPOCH_DAY_FROM_CE: i64 = 719_163;
    thread_local! {
        static DAY: std::cell::Cell<Option<(i64, NaiveDate)>> =
            const { std::cell::Cell::new(None) };
    }
    let (day, of_day) = (
        micros.div_euclid(MICROS_PER_DAY),
        micros.rem_euclid(MICROS_PER_DAY),
    );
    let date = match DAY.get() {
        Some((cached, date)) if cached == day => date,
        _ => {
            let date = i32::try_from(day.checked_add(UNIX_EPOCH_DAY_FROM_CE)?)
                .ok()
                .and_then(NaiveDate::from_num_days_from_ce_opt)?;
            DAY.set(Some((day, date)));
            date
        }
    };
    // `of_day` is below a day's microseconds: both parts fit and are in range.
    let time = NaiveTime::from_num_seconds_from_midnight_opt(
        (of_day / 1_000_000) as u32,
        (of_day % 1_000_000) as u32 * 1_000,
    )?;
    Some(date.and_time(time).and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::disallowed_methods)] // the reference the clock is compared with
    fn system_time_is_the_wall_clock_in_whole_microseconds() {
        for _ in 0..100 {
            let before = Utc::now().trunc_subsecs(6);
            let now = SystemClock.now();
            let after = Utc::now();
            assert_eq!(now.timestamp_subsec_nanos() % 1_000, 0);
            assert!(
                before <= now && now <= after,
                "{before} <= {now} <= {after}"
            );
        }
    }

    #[tokio::test]
    async fn system_sleeps_never_end_early() {
        // Spun only, slept precisely then spun, and through tokio's timer as well.
        for micros in [0, 30, 500, 1_000, 3_000, 25_000] {
            let deadline = SystemClock.now() + chrono::TimeDelta::microseconds(micros);
            SystemClock.sleep_until(deadline).await;
            assert!(
                SystemClock.now() >= deadline,
                "woke early for a {micros} us sleep"
            );
        }
        let past = SystemClock.now() - chrono::TimeDelta::seconds(1);
        tokio::time::timeout(Duration::from_millis(100), SystemClock.sleep_until(past))
            .await
            .expect("a deadline in the past returns at once");
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn precise_sleeps_run_with_the_least_timer_slack() {
        std::thread::spawn(|| {
            tight_timer_slack();
            assert_eq!(rustix::thread::current_timer_slack().ok(), Some(1));
        })
        .join()
        .expect("the assertions hold");
    }
}

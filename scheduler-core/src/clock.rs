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
/// finer timer: wake-ups come tens of microseconds late instead of about a millisecond.
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
        // Every run start reads the clock. `Utc::now().trunc_subsecs(6)` cost 360 instructions
        // a read (a `TimeDelta` subtraction, the day number turned into a date every time);
        // this builds the same instant from the day, kept per thread, and the time of day.
        const SECS_PER_DAY: u64 = 86_400;
        /// Days from 0001-01-01 (chrono's day 1) to 1970-01-01.
        const UNIX_EPOCH_DAY_FROM_CE: u64 = 719_163;
        thread_local! {
            static TODAY: std::cell::Cell<Option<(u64, NaiveDate)>> =
                const { std::cell::Cell::new(None) };
        }
        let Ok(since_epoch) = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH) else {
            return Utc::now().trunc_subsecs(6);
        };
        let secs = since_epoch.as_secs();
        let day = secs / SECS_PER_DAY;
        let date = match TODAY.get() {
            Some((cached, date)) if cached == day => Some(date),
            _ => i32::try_from(day + UNIX_EPOCH_DAY_FROM_CE)
                .ok()
                .and_then(NaiveDate::from_num_days_from_ce_opt)
                .inspect(|&date| TODAY.set(Some((day, date)))),
        };
        let time = NaiveTime::from_num_seconds_from_midnight_opt(
            (secs % SECS_PER_DAY) as u32,
            since_epoch.subsec_micros() * 1_000,
        );
        match date.zip(time) {
            Some((date, time)) => date.and_time(time).and_utc(),
            None => Utc::now().trunc_subsecs(6),
        }
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
                    continue;
                }
                // `thread::sleep` never wakes early; if the blocking pool is unavailable
                // (runtime shutting down), fall back to tokio's timer.
                if tokio::task::spawn_blocking(move || {
                    std::thread::sleep(left);
                    hop("woken", deadline);
                })
                .await
                .is_err()
                {
                    tokio::time::sleep(left).await;
                }
                hop("resumed", deadline);
            }
        })
    }
}

/// Marks a step of a wake-up for the latency bench (`--hops`), which listens to the `TRACE`
/// events of this module: `hop` names the step, `behind_us` is how far the wall clock is past
/// the deadline there (negative: before it). Unheard, an event costs one relaxed load.
fn hop(step: &'static str, deadline: DateTime<Utc>) {
    tracing::trace!(
        hop = step,
        behind_us = (SystemClock.now() - deadline).num_microseconds().unwrap_or(i64::MAX)
    );
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
        for millis in [0, 1, 3, 25] {
            let deadline = SystemClock.now() + chrono::TimeDelta::milliseconds(millis);
            SystemClock.sleep_until(deadline).await;
            assert!(
                SystemClock.now() >= deadline,
                "woke early for a {millis} ms sleep"
            );
        }
        let past = SystemClock.now() - chrono::TimeDelta::seconds(1);
        tokio::time::timeout(Duration::from_millis(100), SystemClock.sleep_until(past))
            .await
            .expect("a deadline in the past returns at once");
    }
}

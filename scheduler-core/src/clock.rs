//! Where the scheduler reads the time and waits for it.
//!
//! Everything that asks "what time is it" (the main loop, the misfire check in executors) goes
//! through a [`Clock`], so tests can swap in a manual clock (`testkit::ManualClock`) and
//! make misfire and coalescing behaviour deterministic.

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use chrono::{DateTime, Utc};

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
/// see either).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

/// The longest single timer sleep before the wall clock is read again.
const MAX_SLEEP_SLICE: Duration = Duration::from_secs(60);

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // this is the one place that reads the wall clock
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
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
                tokio::time::sleep(left.min(MAX_SLEEP_SLICE)).await;
            }
        })
    }
}

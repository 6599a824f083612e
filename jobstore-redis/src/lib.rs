#![doc = include_str!("../README.md")]

mod cluster;
mod config;
mod records;
mod scripts;
#[cfg(feature = "tls")]
mod tls;
mod wakeup;

pub use config::{DEFAULT_PREFIX, DEFAULT_URL, RedisStoreBuilder, redact, register};
pub use records::{MAX_EXACT_MICROS, RedisRecords};

/// The Redis job store: APScheduler's `RedisJobStore`, as a [`scheduler_core::JobStore`].
///
/// Build it with [`RedisRecords::builder`] (or [`open`]); the scheduler connects it when it
/// starts. Every call is one Lua script or one atomic pipeline, bounded by the response
/// timeout.
pub type RedisJobStore = scheduler_core::RecordJobStore<RedisRecords>;

/// A store on the server at `url` with the default prefix (`apscheduler.`) and timeouts.
pub fn open(url: impl Into<String>) -> scheduler_core::Result<RedisJobStore> {
    RedisStoreBuilder::new(url).build()
}

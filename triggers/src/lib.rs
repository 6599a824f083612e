#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

use std::sync::Arc;

use chrono::{DateTime, FixedOffset, Utc};
use scheduler_core::{SearchExhausted, Trigger, TriggerRegistry};

#[cfg(any(
    feature = "date",
    feature = "interval",
    feature = "cron",
    feature = "calendar-interval",
    feature = "combining"
))]
pub mod budget;
#[cfg(any(feature = "date", feature = "interval", feature = "cron"))]
mod datespec;
mod error;
mod jitter;
#[cfg(any(feature = "interval", feature = "cron", feature = "calendar-interval"))]
mod options;
#[cfg(any(
    feature = "interval",
    feature = "cron",
    feature = "calendar-interval",
    feature = "combining"
))]
mod pytime;
mod zone;

#[cfg(feature = "calendar-interval")]
mod calendar;
#[cfg(feature = "combining")]
mod combining;
#[cfg(feature = "conformance")]
pub mod conformance;
#[cfg(feature = "cron")]
mod cron;
#[cfg(feature = "date")]
mod date;
#[cfg(feature = "interval")]
mod interval;

#[cfg(any(feature = "date", feature = "interval", feature = "cron"))]
pub use datespec::DateSpec;
pub use error::{ExpressionError, TriggerError};
pub use jitter::{FixedJitter, JitterSource, RandomJitter};
pub use zone::Zone;

#[cfg(feature = "calendar-interval")]
pub use calendar::{CalendarIntervalTrigger, CalendarIntervalTriggerBuilder};
#[cfg(feature = "combining")]
pub use combining::{AndTrigger, DEFAULT_MAX_ITERATIONS, OrTrigger};
#[cfg(feature = "cron")]
pub use cron::{CronTrigger, CronTriggerBuilder};
#[cfg(feature = "date")]
pub use date::DateTrigger;
#[cfg(feature = "interval")]
pub use interval::{IntervalTrigger, IntervalTriggerBuilder};

/// Fire times as wall-clock times with their UTC offset, exactly as APScheduler 3.x returns
/// them.
///
/// [`Trigger::next_fire_time`] answers instants. This answers the local time APScheduler's
/// `get_next_fire_time` returns, which carries one more piece of information: when a cron
/// field is set to a wall time inside a DST gap, 3.x returns that non-existent wall time with
/// the offset from before the transition (`2024-03-10T02:30:00-05:00` in New York, the
/// instant 03:30 EDT). Passed back as `previous`, such a time makes 3.x search from that
/// instant again, so it can answer the same instant twice; through instants this crate
/// answers it once.
///
/// Use this to reproduce APScheduler exactly (the conformance test and the `fire_times`
/// example do); a scheduler should use [`Trigger::next_fire_time`].
pub trait LocalTrigger: Trigger {
    /// Like [`Trigger::next_fire_time`], with `previous` and the answer as local times.
    fn next_local_fire_time(
        &self,
        previous: Option<DateTime<FixedOffset>>,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<FixedOffset>>, SearchExhausted>;

    /// The zone of the local answers, when the trigger has one (`None` for the combining
    /// triggers, whose answers come from their children).
    ///
    /// APScheduler compares two datetimes of one zone by their wall clocks, so the combining
    /// triggers need it to choose among their children's answers as 3.x does.
    fn local_zone(&self) -> Option<Zone> {
        None
    }

    /// This trigger with `zone` wherever it was built without a zone of its own, or `None`
    /// when nothing changes: [`Trigger::with_default_timezone`] for any zone, keeping the
    /// local answers.
    fn with_default_zone(&self, zone: Zone) -> Option<Arc<dyn LocalTrigger>> {
        let _ = zone;
        None
    }
}

/// Registers every enabled trigger kind under APScheduler's name (`date`, `interval`, `cron`,
/// `calendarinterval`, `and`, `or`), so saved triggers can be restored.
pub fn register(registry: &TriggerRegistry) {
    #[cfg(feature = "date")]
    registry.register_serde::<DateTrigger>(DateTrigger::KIND);
    #[cfg(feature = "interval")]
    registry.register_serde::<IntervalTrigger>(IntervalTrigger::KIND);
    #[cfg(feature = "cron")]
    registry.register_serde::<CronTrigger>(CronTrigger::KIND);
    #[cfg(feature = "calendar-interval")]
    registry.register_serde::<CalendarIntervalTrigger>(CalendarIntervalTrigger::KIND);
    #[cfg(feature = "combining")]
    {
        registry.register(
            AndTrigger::KIND,
            Arc::new(|state, registry| {
                Ok(Arc::new(AndTrigger::from_state(state, registry)?) as Arc<dyn Trigger>)
            }),
        );
        registry.register(
            OrTrigger::KIND,
            Arc::new(|state, registry| {
                Ok(Arc::new(OrTrigger::from_state(state, registry)?) as Arc<dyn Trigger>)
            }),
        );
    }
    let _ = registry;
}

/// A registry with every enabled trigger kind of this crate.
pub fn registry() -> TriggerRegistry {
    let registry = TriggerRegistry::new();
    register(&registry);
    registry
}

#[cfg(any(
    feature = "date",
    feature = "interval",
    feature = "cron",
    feature = "calendar-interval",
    feature = "combining"
))]
/// Refuses states written by a newer version of a trigger.
fn check_version(kind: &'static str, version: u32, supported: u32) -> Result<(), TriggerError> {
    if version == 0 || version > supported {
        return Err(TriggerError::state(
            kind,
            format!(
                "state version {version} is not supported (this build reads up to {supported})"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn public_types_are_send_and_sync() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<crate::TriggerError>();
        assert_send_sync::<crate::Zone>();
        #[cfg(feature = "date")]
        assert_send_sync::<crate::DateTrigger>();
        #[cfg(feature = "interval")]
        assert_send_sync::<crate::IntervalTrigger>();
        #[cfg(feature = "cron")]
        assert_send_sync::<crate::CronTrigger>();
        #[cfg(feature = "calendar-interval")]
        assert_send_sync::<crate::CalendarIntervalTrigger>();
        #[cfg(feature = "combining")]
        assert_send_sync::<crate::AndTrigger>();
        #[cfg(feature = "combining")]
        assert_send_sync::<crate::OrTrigger>();
    }
}

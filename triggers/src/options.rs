//! The options the cron, interval and calendar-interval triggers share: start and end, time
//! zone and jitter, with one rule for the zone a trigger ends up in.

use std::sync::Arc;

#[cfg(any(feature = "interval", feature = "cron"))]
use crate::DateSpec;
use crate::TriggerError;
use crate::jitter::{self, Jitter, JitterSource};
use crate::zone::Zone;

/// What a builder is given besides its schedule. `D` is the type of its dates: a
/// [`DateSpec`] (cron, interval) or a calendar date (calendar interval).
#[derive(Debug, Clone)]
pub(crate) struct Options<D> {
    pub(crate) start_date: Option<D>,
    pub(crate) end_date: Option<D>,
    pub(crate) timezone: Option<Zone>,
    pub(crate) jitter: f64,
    pub(crate) jitter_source: Option<Arc<dyn JitterSource>>,
}

impl<D> Default for Options<D> {
    fn default() -> Self {
        Options {
            start_date: None,
            end_date: None,
            timezone: None,
            jitter: 0.0,
            jitter_source: None,
        }
    }
}

/// The zone a trigger is built in, and whether it is its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ResolvedZone {
    pub(crate) zone: Zone,
    /// No zone was given: the trigger uses the local zone until a scheduler gives it its own
    /// (`Trigger::with_default_timezone`), as APScheduler gives a trigger the scheduler's zone.
    pub(crate) defaulted: bool,
}

impl<D> Options<D> {
    /// The validated jitter.
    pub(crate) fn jitter(&self) -> Result<Option<Jitter>, TriggerError> {
        Ok(Jitter::new(
            jitter::validate(self.jitter)?,
            self.jitter_source.clone(),
        ))
    }

    /// The zone given, or the local zone (then `defaulted`).
    pub(crate) fn zone_or_local(&self, own: impl FnOnce() -> Option<Zone>) -> ResolvedZone {
        match self.timezone.or_else(own) {
            Some(zone) => ResolvedZone {
                zone,
                defaulted: false,
            },
            None => ResolvedZone {
                zone: Zone::Named(scheduler_core::config::local_timezone()),
                defaulted: true,
            },
        }
    }
}

#[cfg(any(feature = "interval", feature = "cron"))]
impl Options<DateSpec> {
    /// APScheduler's rule: the zone given, else an aware `start_date`'s, else an aware
    /// `end_date`'s, else the local zone.
    pub(crate) fn zone(&self) -> ResolvedZone {
        self.zone_or_local(|| {
            self.start_date
                .as_ref()
                .and_then(DateSpec::own_zone)
                .or_else(|| self.end_date.as_ref().and_then(DateSpec::own_zone))
        })
    }
}

/// The setters of [`Options`] on a builder with an `options` field: `start_date`, `end_date`,
/// `timezone`, `jitter`, `jitter_source`.
macro_rules! option_setters {
    (
        dates: $date:ty,
        start: $start_doc:literal,
        end: $end_doc:literal,
        zone: $zone_doc:literal,
        jitter: $jitter_doc:literal $(,)?
    ) => {
        #[doc = $start_doc]
        pub fn start_date(mut self, start_date: impl Into<$date>) -> Self {
            self.options.start_date = Some(start_date.into());
            self
        }

        #[doc = $end_doc]
        pub fn end_date(mut self, end_date: impl Into<$date>) -> Self {
            self.options.end_date = Some(end_date.into());
            self
        }

        #[doc = $zone_doc]
        ///
        /// A trigger built without a zone takes the scheduler's when its job is added (or
        /// given to `modify_job`/`reschedule_job`); until then it uses the local zone.
        pub fn timezone(mut self, timezone: impl Into<$crate::Zone>) -> Self {
            self.options.timezone = Some(timezone.into());
            self
        }

        #[doc = $jitter_doc]
        pub fn jitter(mut self, jitter: std::time::Duration) -> Self {
            self.options.jitter = jitter.as_secs_f64();
            self
        }

        /// Where jitter fractions come from (default: [`RandomJitter`](crate::RandomJitter)).
        pub fn jitter_source(mut self, source: impl $crate::JitterSource) -> Self {
            self.options.jitter_source = Some(std::sync::Arc::new(source));
            self
        }

        /// The jitter in float seconds, as saved states and APScheduler's keyword argument
        /// give it (validated by `build`).
        pub(crate) fn jitter_seconds(mut self, seconds: f64) -> Self {
            self.options.jitter = seconds;
            self
        }
    };
}

pub(crate) use option_setters;

//! [`IntervalTrigger`]: fire every fixed length of elapsed time.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, TimeDelta, Utc};
use chrono_tz::Tz;
use scheduler_core::{CatchUp, Clock, SearchExhausted, SystemClock, Trigger, TriggerState};
use serde::{Deserialize, Serialize};

use crate::jitter::Jitter;
use crate::options::{Options, option_setters};
use crate::pytime::{self, MICROS, TimedeltaBuilder};
use crate::zone::{
    Zone, ZonedDateTime, ZonedSearch, micros_since_epoch, python_time, utc_from_micros,
};
use crate::{DateSpec, LocalTrigger, TriggerError, budget};

/// Fires every fixed length of elapsed time (APScheduler's `IntervalTrigger`).
///
/// Fire times are `start_date + k × interval` in elapsed (UTC) time, so an interval of one
/// day fires an hour later on the wall clock after clocks spring forward. The first fire time
/// is the first grid point at or after `now` (or `start_date` itself while it is in the
/// future); after that, `previous + interval`. `start_date` defaults to "now + interval" at
/// construction. `end_date` is inclusive, and jitter is added before it is checked: a jittered
/// time past `end_date` ends the trigger. A jittered fire time is the next `previous`, so
/// jitter accumulates, as in APScheduler.
///
/// Unlike APScheduler, a zero or negative interval is an error (3.x turns 0 into one second
/// and runs negative intervals backwards), and a step too small for float seconds to hold
/// (a microsecond in the year 9000) is taken in exact microseconds, where 3.x would answer
/// the previous fire time again.
///
/// ```
/// use std::time::Duration;
/// use chrono::{TimeZone, Utc};
/// use scheduler_core::Trigger;
/// use triggers::IntervalTrigger;
///
/// let start = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
/// let trigger = IntervalTrigger::builder()
///     .every(Duration::from_secs(90))
///     .start_date(start)
///     .build()
///     .unwrap();
/// assert_eq!(trigger.to_string(), "interval[0:01:30]");
/// let now = Utc.with_ymd_and_hms(2024, 1, 1, 0, 2, 0).unwrap();
/// assert_eq!(trigger.next_fire_time(None, now), Ok(Some(start + Duration::from_secs(180))));
/// ```
#[derive(Debug, Clone)]
pub struct IntervalTrigger {
    interval_micros: i64,
    /// `interval.total_seconds()`, the float APScheduler computes with.
    length: f64,
    start: ZonedDateTime,
    end: Option<ZonedDateTime>,
    zone: Zone,
    jitter: Option<Jitter>,
    /// How it was built, when no zone was given: a scheduler gives it its own.
    rebuild: Option<Arc<IntervalTriggerBuilder>>,
}

/// The budget steps one answer costs: float timestamps and their rounding, a few times over.
const SEARCH_STEPS: u64 = 8;
/// The steps a walk keeps for its last answer.
const WALK_RESERVE: u64 = 200;

impl IntervalTrigger {
    /// The kind name this trigger is saved and registered under.
    pub const KIND: &'static str = "interval";

    /// Starts building an interval trigger.
    pub fn builder() -> IntervalTriggerBuilder {
        IntervalTriggerBuilder::default()
    }

    /// The interval, rounded to whole microseconds as APScheduler's `timedelta` is.
    pub fn interval(&self) -> Duration {
        Duration::from_micros(self.interval_micros.unsigned_abs())
    }

    /// The first grid point.
    pub fn start_date(&self) -> DateTime<FixedOffset> {
        self.start.to_local()
    }

    /// The last possible fire time, if any.
    pub fn end_date(&self) -> Option<DateTime<FixedOffset>> {
        self.end.map(ZonedDateTime::to_local)
    }

    /// The zone fire times are shown in.
    pub fn timezone(&self) -> Zone {
        self.zone
    }
}

impl ZonedSearch for IntervalTrigger {
    fn zone(&self) -> Zone {
        self.zone
    }

    /// APScheduler's `get_next_fire_time`, on float timestamps as in 3.x.
    fn search_next(
        &self,
        previous: Option<ZonedDateTime>,
        now: ZonedDateTime,
    ) -> Result<Option<ZonedDateTime>, SearchExhausted> {
        budget::step(SEARCH_STEPS)?;
        let mut next = if let Some(previous) = previous {
            previous.timestamp() + self.length
        } else if self.start.py_cmp(&now).is_gt() {
            self.start.timestamp()
        } else {
            let start = self.start.timestamp();
            let elapsed = now.timestamp() - start;
            start + self.length * (elapsed / self.length).ceil()
        };
        let jitter = self.jitter.as_ref().map(Jitter::seconds);
        if let Some(jitter) = jitter {
            next += jitter;
        }
        if let Some(end) = &self.end
            && next > end.timestamp()
        {
            return Ok(None);
        }
        let Some(mut micros) = pytime::micros_from_timestamp(next) else {
            return Ok(None);
        };
        if let Some(previous) = previous {
            let previous = micros_since_epoch(previous.utc());
            if micros <= previous {
                // The step is below the resolution of float seconds this far from 1970.
                let jitter = jitter.and_then(pytime::micros_from_seconds).unwrap_or(0);
                let exact = previous
                    .checked_add(self.interval_micros)
                    .and_then(|m| m.checked_add(jitter));
                let past_end = |m: i64| {
                    self.end
                        .is_some_and(|end| m > micros_since_epoch(end.utc()))
                };
                match exact {
                    Some(exact) if !past_end(exact) => micros = exact,
                    _ => return Ok(None),
                }
            }
        }
        let Some(utc) = utc_from_micros(micros) else {
            return Ok(None);
        };
        let next = ZonedDateTime::from_utc(utc, self.zone);
        Ok(next.in_python_range().then_some(next))
    }
}

impl IntervalTrigger {
    /// [`Trigger::catch_up`] by arithmetic: the fire times after `first` are `first + k ×
    /// interval` wherever float seconds step exactly (see [`float_steps_are_exact`]); there
    /// the count is a division. Elsewhere (far from 1970 with odd microseconds) the fire times
    /// drift with 3.x's float rounding, and they are walked, within the step budget. Skipped
    /// fire times carry no jitter.
    fn skip(
        &self,
        first: DateTime<Utc>,
        until: DateTime<Utc>,
        max_steps: u64,
    ) -> Result<CatchUp, SearchExhausted> {
        let finished = CatchUp {
            count: 1,
            last: first,
            next: None,
        };
        let (Some(from), Some(now)) =
            (python_time(first, self.zone), python_time(until, self.zone))
        else {
            return Ok(finished);
        };
        let step = self.interval_micros;
        let from_us = micros_since_epoch(from.utc());
        let until_us = micros_since_epoch(until.naive_utc());
        let exact = float_steps_are_exact(from_us, until_us, step);
        if !exact && self.jitter.is_none() {
            return self.walk(first, until, from, now, max_steps);
        }
        let mut steps = until_us.saturating_sub(from_us).max(0) / step;
        if let Some(end) = &self.end {
            let end_us = micros_since_epoch(end.utc());
            steps = steps.min(end_us.saturating_sub(from_us).max(0) / step);
            if steps > 0 && self.jitter.is_none() {
                // 3.x checks the end in float seconds, which can refuse a fire time exactly at
                // the end: ask the real step for the last one.
                let before = self.at(from_us + (steps - 1) * step);
                let last = self.search_next(Some(before), now)?;
                if last.is_none_or(|last| micros_since_epoch(last.utc()) != from_us + steps * step)
                {
                    steps -= 1;
                }
            }
        }
        let last = self.at(from_us + steps * step);
        let next = self.search_forward(Some(last), now)?;
        Ok(CatchUp {
            count: steps as u64 + 1,
            last: if steps == 0 { first } else { last.instant() },
            next: next.map(|next| next.instant()),
        })
    }

    /// Walks the fire times one by one, while the budget lasts.
    fn walk(
        &self,
        first: DateTime<Utc>,
        until: DateTime<Utc>,
        from: ZonedDateTime,
        now: ZonedDateTime,
        max_steps: u64,
    ) -> Result<CatchUp, SearchExhausted> {
        let mut caught = CatchUp {
            count: 1,
            last: first,
            next: None,
        };
        let mut last = from;
        loop {
            let next = self.search_forward(Some(last), now)?;
            caught.next = next.map(|next| next.instant());
            match next {
                Some(next)
                    if next.instant() <= until
                        && caught.count < max_steps
                        && budget::remaining() > WALK_RESERVE =>
                {
                    caught.count += 1;
                    caught.last = next.instant();
                    last = next;
                }
                _ => return Ok(caught),
            }
        }
    }

    fn at(&self, micros: i64) -> ZonedDateTime {
        let utc = utc_from_micros(micros).unwrap_or_default();
        ZonedDateTime::from_utc(utc, self.zone)
    }
}

/// Whether stepping by float seconds, as 3.x does, gives exactly `value + step` microseconds
/// for every value from `from` up to `until`.
///
/// Three roundings are involved: the value's seconds, the step's, and their sum. Below 2³¹
/// seconds from 1970 (until January 2038) each errs by at most 2⁻²³ s, 0.36 µs in all, which
/// rounding to microseconds absorbs. A whole number of seconds added to a value stays on
/// the value's grid of floats while the sum stays below the next power of two, so only the
/// value's own rounding is left, under 0.5 µs up to 2³³ seconds (the year 2242). And values
/// that are multiples of 1/64 s are binary fractions that floats hold exactly up to 2⁴⁶ s.
fn float_steps_are_exact(from: i64, until: i64, step: i64) -> bool {
    const SECOND: i128 = MICROS as i128;
    let top = i128::from(from.unsigned_abs().max(until.unsigned_abs())) + i128::from(step);
    if top < (1 << 31) * SECOND {
        return true;
    }
    // The power of two at or below `from`, with a second of margin on both sides.
    let low = i128::from(from) - SECOND;
    if from > 0 && step % MICROS == 0 && low >= SECOND {
        let binade = 1i128 << (127 - (low / SECOND).leading_zeros());
        if top + SECOND < 2 * binade * SECOND && 2 * binade <= 1 << 33 {
            return true;
        }
    }
    let binary_fraction = |micros: i64| micros % 15_625 == 0;
    binary_fraction(from) && binary_fraction(step) && top < (1 << 46) * SECOND
}

impl Trigger for IntervalTrigger {
    fn next_fire_time(
        &self,
        previous: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, SearchExhausted> {
        self.next_instant(previous, now)
    }

    fn to_state(&self) -> scheduler_core::Result<TriggerState> {
        TriggerState::new(Self::KIND, &State::from(self))
    }

    fn catch_up(
        &self,
        first: DateTime<Utc>,
        until: DateTime<Utc>,
        max_steps: u64,
    ) -> Result<CatchUp, SearchExhausted> {
        budget::call(|| self.skip(first, until, max_steps))
    }

    fn with_default_timezone(&self, timezone: Tz) -> Option<Arc<dyn Trigger>> {
        let rezoned = self.with_default_zone(Zone::Named(timezone))?;
        Some(rezoned)
    }
}

impl LocalTrigger for IntervalTrigger {
    fn next_local_fire_time(
        &self,
        previous: Option<DateTime<FixedOffset>>,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<FixedOffset>>, SearchExhausted> {
        self.next_local(previous, now)
    }

    fn local_zone(&self) -> Option<Zone> {
        Some(self.zone)
    }

    fn with_default_zone(&self, zone: Zone) -> Option<Arc<dyn LocalTrigger>> {
        let mut builder = (**self.rebuild.as_ref()?).clone().timezone(zone);
        if builder.options.start_date.is_none() {
            // The default start was "now + interval" when it was built: keep that instant.
            let start = ZonedDateTime::from_utc(self.start.utc(), zone);
            builder = builder.start_date(DateSpec::exact(start));
        }
        Some(Arc::new(builder.build_at(self.start.instant()).ok()?))
    }
}

impl fmt::Display for IntervalTrigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "interval[{}]",
            pytime::format_timedelta(self.interval_micros)
        )
    }
}

/// Builds an [`IntervalTrigger`]; see [`IntervalTrigger::builder`].
///
/// The length is the sum of [`every`](Self::every) and the unit setters, computed like
/// Python's `timedelta(weeks=…, days=…, hours=…, minutes=…, seconds=…)` (floats allowed,
/// rounded to whole microseconds).
#[derive(Debug, Clone, Default)]
pub struct IntervalTriggerBuilder {
    every: Option<Duration>,
    weeks: f64,
    days: f64,
    hours: f64,
    minutes: f64,
    seconds: f64,
    options: Options<DateSpec>,
}

impl IntervalTriggerBuilder {
    /// Adds a length given as a [`Duration`].
    pub fn every(mut self, interval: Duration) -> Self {
        self.every = Some(interval);
        self
    }

    /// Adds `weeks` weeks.
    pub fn weeks(mut self, weeks: impl Into<f64>) -> Self {
        self.weeks = weeks.into();
        self
    }

    /// Adds `days` days (of 24 hours: the interval is elapsed time).
    pub fn days(mut self, days: impl Into<f64>) -> Self {
        self.days = days.into();
        self
    }

    /// Adds `hours` hours.
    pub fn hours(mut self, hours: impl Into<f64>) -> Self {
        self.hours = hours.into();
        self
    }

    /// Adds `minutes` minutes.
    pub fn minutes(mut self, minutes: impl Into<f64>) -> Self {
        self.minutes = minutes.into();
        self
    }

    /// Adds `seconds` seconds.
    pub fn seconds(mut self, seconds: impl Into<f64>) -> Self {
        self.seconds = seconds.into();
        self
    }

    option_setters! {
        dates: DateSpec,
        start: "The first grid point (default: now + interval, at build time).",
        end: "The last possible fire time, inclusive.",
        zone: "The zone for date strings and wall-clock dates, and for showing fire times \
               (default: the zone of an aware `start_date`, then of an aware `end_date`, then \
               the scheduler's, or the local zone outside one).",
        jitter: "Delays each fire time by up to `jitter` (a random fraction of it).",
    }

    /// Builds the trigger; the default `start_date` counts from the system clock's now.
    pub fn build(self) -> Result<IntervalTrigger, TriggerError> {
        self.build_at(SystemClock.now())
    }

    /// Builds the trigger with an explicit "now" for the default `start_date`.
    pub fn build_at(self, now: DateTime<Utc>) -> Result<IntervalTrigger, TriggerError> {
        let interval_micros = self.length_micros()?;
        let resolved = self.options.zone();
        let zone = resolved.zone;
        let start = match &self.options.start_date {
            Some(spec) => spec.resolve(zone, "start_date")?,
            // `datetime.now(tz) + interval`: wall-clock addition, as in APScheduler.
            None => python_time(now, zone)
                .and_then(|now| now.add_wall(TimeDelta::microseconds(interval_micros)))
                .filter(ZonedDateTime::in_python_range)
                .ok_or_else(|| {
                    TriggerError::argument("start_date", "now + interval is past the year 9999")
                })?,
        };
        let end = self
            .options
            .end_date
            .as_ref()
            .map(|spec| spec.resolve(zone, "end_date"))
            .transpose()?;
        let jitter = self.options.jitter()?;
        let rebuild = resolved.defaulted.then(|| Arc::new(self));
        Ok(IntervalTrigger {
            interval_micros,
            length: pytime::seconds_from_micros(interval_micros),
            start,
            end,
            zone,
            jitter,
            rebuild,
        })
    }

    fn length_micros(&self) -> Result<i64, TriggerError> {
        let units = TimedeltaBuilder::default()
            .add(self.seconds, MICROS)
            .add(self.minutes, 60 * MICROS)
            .add(self.hours, 3600 * MICROS)
            .add(self.days, 86_400 * MICROS)
            .add(self.weeks, 7 * 86_400 * MICROS)
            .finish();
        let every = match self.every {
            None => Some(0),
            Some(d) => {
                // Half-to-even rounding of nanoseconds, as `timedelta(microseconds=x)` rounds.
                let nanos = d.as_nanos();
                let (micros, rest) = (nanos / 1000, nanos % 1000);
                let micros = micros + u128::from(rest > 500 || (rest == 500 && micros % 2 == 1));
                i64::try_from(micros).ok()
            }
        };
        let total = units
            .zip(every)
            .and_then(|(units, every)| units.checked_add(every))
            .ok_or_else(|| TriggerError::argument("interval", "too long or not a number"))?;
        if total <= 0 {
            return Err(TriggerError::argument(
                "interval",
                format!(
                    "the length must be positive, got {} (APScheduler 3.x would use 1 second for \
                     0 and run a negative interval backwards)",
                    pytime::format_timedelta(total)
                ),
            ));
        }
        Ok(total)
    }
}

/// The saved form.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct State {
    version: u32,
    interval_micros: i64,
    start_date: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    end_date: Option<String>,
    timezone: Zone,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jitter: Option<f64>,
}

impl From<&IntervalTrigger> for State {
    fn from(trigger: &IntervalTrigger) -> Self {
        State {
            version: 1,
            interval_micros: trigger.interval_micros,
            start_date: trigger.start.to_state_string(),
            end_date: trigger.end.map(ZonedDateTime::to_state_string),
            timezone: trigger.zone,
            jitter: trigger.jitter.as_ref().map(|j| j.max_seconds),
        }
    }
}

impl TryFrom<State> for IntervalTrigger {
    type Error = TriggerError;

    fn try_from(state: State) -> Result<Self, Self::Error> {
        crate::check_version(Self::KIND, state.version, 1)?;
        let date = |text: &str| {
            ZonedDateTime::from_state_string(text)
                .map(DateSpec::exact)
                .map_err(|e| TriggerError::state(Self::KIND, e))
        };
        let length = u64::try_from(state.interval_micros)
            .ok()
            .filter(|&micros| micros > 0)
            .ok_or_else(|| TriggerError::state(Self::KIND, "interval_micros must be positive"))?;
        let mut builder = IntervalTrigger::builder()
            .every(Duration::from_micros(length))
            .start_date(date(&state.start_date)?)
            .timezone(state.timezone)
            .jitter_seconds(state.jitter.unwrap_or(0.0));
        if let Some(end) = state.end_date.as_deref() {
            builder = builder.end_date(date(end)?);
        }
        // The start date is given, so "now" plays no part.
        builder
            .build_at(DateTime::UNIX_EPOCH)
            .map_err(|e| TriggerError::state(Self::KIND, e))
    }
}

impl Serialize for IntervalTrigger {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        State::from(self).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for IntervalTrigger {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        IntervalTrigger::try_from(State::deserialize(deserializer)?)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FixedJitter;
    use chrono_tz::{America, Europe};

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    fn local(trigger: &IntervalTrigger, instant: Option<DateTime<Utc>>) -> Option<String> {
        instant.map(|i| trigger.timezone().to_local(i).to_rfc3339())
    }

    fn series(trigger: &IntervalTrigger, now: &str, count: usize) -> Vec<String> {
        let mut out = Vec::new();
        let mut previous = None;
        let mut now = at(now);
        for _ in 0..count {
            let Some(next) = trigger.next_fire_time(previous, now).unwrap() else {
                break;
            };
            out.push(local(trigger, Some(next)).unwrap());
            previous = Some(next);
            now = next;
        }
        out
    }

    fn every_second_from(start: &str) -> IntervalTrigger {
        IntervalTrigger::builder()
            .seconds(1)
            .start_date(start)
            .timezone(Europe::Berlin)
            .build()
            .unwrap()
    }

    // test_interval.py: now before start, just after start, no start date.
    #[test]
    fn first_fire_time_is_the_next_grid_point() {
        let trigger = IntervalTrigger::builder()
            .seconds(10)
            .start_date("2024-01-01 00:00:00")
            .timezone(Europe::Berlin)
            .build()
            .unwrap();
        let start = at("2024-01-01T00:00:00+01:00");
        assert_eq!(
            trigger.next_fire_time(None, at("2023-12-31T00:00:00+01:00")),
            Ok(Some(start))
        );
        assert_eq!(trigger.next_fire_time(None, start), Ok(Some(start)));
        let just_after = start + TimeDelta::microseconds(1);
        assert_eq!(
            trigger.next_fire_time(None, just_after),
            Ok(Some(start + TimeDelta::seconds(10)))
        );
        assert_eq!(
            trigger.next_fire_time(Some(start), at("2030-01-01T00:00:00Z")),
            Ok(Some(start + TimeDelta::seconds(10))),
            "with a previous fire time, now does not matter"
        );
        let now = at("2024-06-01T12:00:00Z");
        let default_start = IntervalTrigger::builder().hours(1).build_at(now).unwrap();
        assert_eq!(
            default_start.next_fire_time(None, now),
            Ok(Some(now + TimeDelta::hours(1)))
        );
    }

    #[test]
    fn fractional_now_rounds_up_to_the_grid() {
        let trigger = every_second_from("2024-01-01 00:00:00");
        assert_eq!(
            series(&trigger, "2024-01-01T00:00:10.5+01:00", 2),
            ["2024-01-01T00:00:11+01:00", "2024-01-01T00:00:12+01:00"]
        );
    }

    // DST change in both directions: elapsed time, fold=1 in autumn.
    #[test]
    fn counts_elapsed_time_across_dst() {
        let daily = IntervalTrigger::builder()
            .days(1)
            .start_date("2024-03-30 02:30:00")
            .timezone(Europe::Berlin)
            .build()
            .unwrap();
        assert_eq!(
            series(&daily, "2024-03-30T00:00:00+01:00", 3),
            [
                "2024-03-30T02:30:00+01:00",
                "2024-03-31T03:30:00+02:00",
                "2024-04-01T03:30:00+02:00"
            ]
        );
        let hourly = IntervalTrigger::builder()
            .hours(1)
            .start_date("2024-11-03 00:30:00")
            .timezone(America::New_York)
            .build()
            .unwrap();
        assert_eq!(
            series(&hourly, "2024-11-03T00:00:00-04:00", 4),
            [
                "2024-11-03T00:30:00-04:00",
                "2024-11-03T01:30:00-04:00",
                "2024-11-03T01:30:00-05:00",
                "2024-11-03T02:30:00-05:00"
            ]
        );
    }

    #[test]
    fn end_date_is_inclusive_and_checked_after_jitter() {
        let trigger = IntervalTrigger::builder()
            .hours(2)
            .start_date("2024-01-01 00:00:00")
            .end_date("2024-01-01 04:00:00")
            .timezone(Zone::UTC)
            .build()
            .unwrap();
        assert_eq!(series(&trigger, "2024-01-01T00:00:00Z", 10).len(), 3);
        let jittered = IntervalTrigger::builder()
            .hours(2)
            .start_date("2024-01-01 00:00:00")
            .end_date("2024-01-01 04:00:00")
            .timezone(Zone::UTC)
            .jitter(Duration::from_secs(60))
            .jitter_source(FixedJitter::new(0.5))
            .build()
            .unwrap();
        // 00:00:30, then previous + 2 h + 30 s: drift accumulates; 04:01:30 is past the end.
        assert_eq!(
            series(&jittered, "2024-01-01T00:00:00Z", 10),
            ["2024-01-01T00:00:30+00:00", "2024-01-01T02:01:00+00:00"]
        );
    }

    // test_jitter_dst_change: jitter is added to the timestamp, so DST does not matter.
    #[test]
    fn jitter_stays_in_range_and_ignores_dst() {
        let random = IntervalTrigger::builder()
            .hours(1)
            .start_date("2024-03-31 01:30:00")
            .timezone(Europe::Berlin)
            .jitter(Duration::from_secs(60))
            .build()
            .unwrap();
        let start = at("2024-03-31T01:30:00+01:00");
        for _ in 0..200 {
            let next = random.next_fire_time(Some(start), start).unwrap().unwrap();
            let delay = next - (start + TimeDelta::hours(1));
            assert!(
                delay >= TimeDelta::zero() && delay <= TimeDelta::seconds(60),
                "{delay}"
            );
        }
        let fixed = IntervalTrigger::builder()
            .hours(1)
            .start_date("2024-03-31 01:30:00")
            .timezone(Europe::Berlin)
            .jitter(Duration::from_secs(60))
            .jitter_source(FixedJitter::new(0.5))
            .build()
            .unwrap();
        assert_eq!(
            series(&fixed, "2024-03-31T00:00:00+01:00", 2),
            ["2024-03-31T01:30:30+01:00", "2024-03-31T03:31:00+02:00"]
        );
    }

    #[test]
    fn float_units_and_python_rounding() {
        let trigger = IntervalTrigger::builder()
            .hours(0.5)
            .minutes(1.5)
            .seconds(0.1)
            .start_date("2024-01-01 00:00:00")
            .timezone(Zone::UTC)
            .build()
            .unwrap();
        assert_eq!(
            trigger.interval(),
            Duration::from_millis(31 * 60_000 + 30_100)
        );
        assert_eq!(trigger.to_string(), "interval[0:31:30.100000]");
        let weekly = IntervalTrigger::builder().weeks(2).days(1).build().unwrap();
        assert_eq!(weekly.to_string(), "interval[15 days, 0:00:00]");
    }

    // Issue 6, case 4: a microsecond is below the resolution of float seconds in the year
    // 9000 (3.x answers the previous fire time again, and the scheduler deleted the job).
    #[test]
    fn steps_below_the_float_resolution_are_taken_in_exact_microseconds() {
        let start = at("9000-01-01T00:00:00Z");
        let trigger = IntervalTrigger::builder()
            .every(Duration::from_micros(1))
            .start_date(start)
            .timezone(Zone::UTC)
            .build()
            .unwrap();
        let mut previous = trigger.next_fire_time(None, start).unwrap().unwrap();
        assert_eq!(previous, start);
        let mut chain = vec![previous];
        for _ in 0..2_000 {
            let next = trigger
                .next_fire_time(Some(previous), previous)
                .unwrap()
                .unwrap();
            // Exactly one microsecond where the float step stays put; where it advances,
            // 3.x's float step (to the next float, at most 2^-15 s away).
            assert!(
                next > previous && next - previous <= TimeDelta::microseconds(31),
                "{next} after {previous}"
            );
            previous = next;
            chain.push(next);
        }
        let exact = chain
            .windows(2)
            .filter(|w| w[1] - w[0] == TimeDelta::microseconds(1))
            .count();
        assert!(exact > 100, "{exact} exact steps");
        // A catch-up there agrees with the walk.
        let until = chain[1_500] + TimeDelta::nanoseconds(500);
        let caught = trigger.catch_up(start, until, 10_000).unwrap();
        assert_eq!(
            (caught.count, caught.last, caught.next),
            (1_501, chain[1_500], Some(chain[1_501]))
        );
    }

    #[test]
    fn rejects_zero_and_negative_lengths() {
        for builder in [
            IntervalTrigger::builder(),
            IntervalTrigger::builder().seconds(0),
            IntervalTrigger::builder().seconds(-5),
            IntervalTrigger::builder().hours(1).minutes(-60),
            IntervalTrigger::builder().every(Duration::from_nanos(400)),
        ] {
            let err = builder.build().unwrap_err();
            assert!(
                matches!(
                    err,
                    TriggerError::InvalidArgument {
                        argument: "interval",
                        ..
                    }
                ),
                "{err}"
            );
        }
        assert!(IntervalTrigger::builder().days(1e12).build().is_err());
        assert!(
            IntervalTrigger::builder()
                .seconds(f64::NAN)
                .build()
                .is_err()
        );
        assert!(
            IntervalTrigger::builder()
                .seconds(1)
                .jitter_seconds(-1.0)
                .build()
                .is_err()
        );
    }

    #[test]
    fn timezone_defaults_to_the_start_dates_zone() {
        use chrono::TimeZone;
        let start = America::New_York
            .with_ymd_and_hms(2024, 1, 1, 9, 0, 0)
            .unwrap();
        let trigger = IntervalTrigger::builder()
            .hours(1)
            .start_date(start)
            .build()
            .unwrap();
        assert_eq!(trigger.timezone(), Zone::Named(America::New_York));
        assert_eq!(
            trigger.start_date().to_rfc3339(),
            "2024-01-01T09:00:00-05:00"
        );
    }

    #[test]
    fn state_round_trips() {
        let trigger = IntervalTrigger::builder()
            .minutes(90)
            .start_date("2024-10-27 02:30:00")
            .end_date("2025-01-01")
            .timezone(Europe::Berlin)
            .jitter(Duration::from_secs(5))
            .build()
            .unwrap();
        let state = trigger.to_state().unwrap();
        assert_eq!(state.kind, "interval");
        let back: IntervalTrigger = serde_json::from_value(state.state.clone()).unwrap();
        assert_eq!(back.to_state().unwrap(), state);
        assert_eq!(back.to_string(), "interval[1:30:00]");
        let unjittered = IntervalTrigger::builder()
            .minutes(90)
            .start_date("2024-10-27 02:30:00")
            .timezone(Europe::Berlin)
            .build()
            .unwrap();
        let back: IntervalTrigger =
            serde_json::from_value(unjittered.to_state().unwrap().state).unwrap();
        let now = at("2024-10-27T00:00:00Z");
        assert_eq!(
            back.next_fire_time(None, now),
            unjittered.next_fire_time(None, now)
        );
    }
}

//! [`CalendarIntervalTrigger`]: fire every N years/months/weeks/days at a wall-clock time.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveTime, TimeDelta, Timelike, Utc};
use chrono_tz::Tz;
use scheduler_core::{CatchUp, Clock, SearchExhausted, SystemClock, Trigger, TriggerState};
use serde::{Deserialize, Serialize};

use crate::jitter::Jitter;
use crate::options::{Options, option_setters};
use crate::zone::{Zone, ZonedDateTime, python_local, python_time};
use crate::{LocalTrigger, TriggerError, budget};

/// Fires on calendar intervals, always at the same wall-clock time (APScheduler's
/// `CalendarIntervalTrigger`).
///
/// The next date is the previous fire date plus `years` and `months`, keeping the day of
/// the month; while that date does not exist the months are added again (31 January plus one
/// month is 31 March); then `weeks` and `days` are added. That date at `hour:minute:second`
/// is the fire time. When that wall time does not exist (clocks spring forward over it) the
/// date is skipped and the next one computed from it; when it exists twice, the first one
/// fires.
///
/// As in APScheduler 3.x, the first call answers `start_date` at the given time whatever
/// `now` is (a past start makes the scheduler catch up), and `end_date` is compared as a
/// date. Jitter is added after the end check.
///
/// ```
/// use chrono::{NaiveDate, TimeZone, Utc};
/// use scheduler_core::Trigger;
/// use triggers::CalendarIntervalTrigger;
///
/// let trigger = CalendarIntervalTrigger::builder()
///     .months(1)
///     .time(2, 30, 0)
///     .start_date(NaiveDate::from_ymd_opt(2024, 1, 31).unwrap())
///     .timezone(chrono_tz::UTC)
///     .build()
///     .unwrap();
/// assert_eq!(trigger.to_string(), "calendarinterval[1 month at 02:30:00]");
/// let now = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
/// let first = trigger.next_fire_time(None, now)?.unwrap();
/// assert_eq!(first, Utc.with_ymd_and_hms(2024, 1, 31, 2, 30, 0).unwrap());
/// // February has no 31st: the next one is 31 March.
/// assert_eq!(
///     trigger.next_fire_time(Some(first), first)?,
///     Some(Utc.with_ymd_and_hms(2024, 3, 31, 2, 30, 0).unwrap())
/// );
/// # Ok::<(), scheduler_core::SearchExhausted>(())
/// ```
#[derive(Debug, Clone)]
pub struct CalendarIntervalTrigger {
    years: u32,
    months: u32,
    weeks: u32,
    days: u32,
    time: NaiveTime,
    start_date: NaiveDate,
    end_date: Option<NaiveDate>,
    zone: Zone,
    jitter: Option<Jitter>,
    /// How it was built, when no zone was given: a scheduler gives it its own.
    rebuild: Option<Arc<CalendarIntervalTriggerBuilder>>,
}

/// The budget steps one candidate date costs (its date arithmetic; the zone lookups count
/// on their own).
const DATE_STEPS: u64 = 6;

impl CalendarIntervalTrigger {
    /// The kind name this trigger is saved and registered under.
    pub const KIND: &'static str = "calendarinterval";

    /// Starts building a calendar-interval trigger.
    pub fn builder() -> CalendarIntervalTriggerBuilder {
        CalendarIntervalTriggerBuilder::default()
    }

    /// The first date.
    pub fn start_date(&self) -> NaiveDate {
        self.start_date
    }

    /// The last possible date, if any.
    pub fn end_date(&self) -> Option<NaiveDate> {
        self.end_date
    }

    /// The wall-clock time of day.
    pub fn time(&self) -> NaiveTime {
        self.time
    }

    /// The zone of the wall-clock time.
    pub fn timezone(&self) -> Zone {
        self.zone
    }

    /// APScheduler's `get_next_fire_time`; `previous` is the previous fire time's own wall
    /// date.
    fn next(&self, previous: Option<NaiveDate>) -> Result<Option<ZonedDateTime>, SearchExhausted> {
        let Some(fired) = self.fire_after(previous)? else {
            return Ok(None);
        };
        Ok(match &self.jitter {
            None => Some(fired),
            Some(jitter) => jitter.delay(fired),
        })
    }

    /// The next fire time before jitter.
    fn fire_after(
        &self,
        mut previous: Option<NaiveDate>,
    ) -> Result<Option<ZonedDateTime>, SearchExhausted> {
        loop {
            budget::step(DATE_STEPS)?;
            let date = match previous {
                Some(previous) => match self.advance(previous) {
                    Some(date) => date,
                    None => return Ok(None),
                },
                None => self.start_date,
            };
            if self.end_date.is_some_and(|end| date > end) {
                return Ok(None);
            }
            // `datetime.combine(date, time)` with fold=0, normalised through its timestamp.
            let wall = date.and_time(self.time);
            let fired = ZonedDateTime::localize(wall, self.zone);
            if !fired.in_python_range() {
                return Ok(None);
            }
            if fired.wall.time() != self.time {
                // The time does not exist that day (DST gap): go on from the day it became.
                previous = Some(fired.wall.date());
                continue;
            }
            return Ok(Some(fired));
        }
    }

    /// The answer after `previous` (a date as the caller read it), never at or before the
    /// `previous` instant.
    fn next_after(
        &self,
        previous: Option<(NaiveDate, DateTime<Utc>)>,
    ) -> Result<Option<ZonedDateTime>, SearchExhausted> {
        let mut answer = self.next(previous.map(|(date, _)| date))?;
        if let Some((_, instant)) = previous {
            while let Some(stuck) = answer.filter(|a| a.instant() <= instant) {
                answer = self.next(Some(stuck.wall.date()))?;
            }
        }
        Ok(answer)
    }

    /// [`Trigger::catch_up`]: by arithmetic on dates for intervals of days and weeks (between
    /// the zone's offset changes; each change by the real step), by walking for months and
    /// years (at most twelve fire times a year). Skipped fire times carry no jitter.
    fn skip(
        &self,
        first: DateTime<Utc>,
        until: DateTime<Utc>,
        max_steps: u64,
    ) -> Result<CatchUp, SearchExhausted> {
        let mut caught = CatchUp {
            count: 1,
            last: first,
            next: None,
        };
        let Some(from) = python_time(first, self.zone) else {
            return Ok(caught);
        };
        let until_utc = until.naive_utc();
        let period = i64::from(self.days) + 7 * i64::from(self.weeks);
        let by_days = self.years == 0 && self.months == 0;
        let mut date = from.wall.date();
        let mut position = from.utc();
        // Kept for the last answer: a few candidate dates past DST gaps.
        while budget::remaining() > 500 && (by_days || caught.count < max_steps) {
            if by_days {
                let transition = self.zone.next_transition(position, until_utc)?;
                let bound = transition.map_or(until_utc, |t| {
                    (t - TimeDelta::microseconds(1)).min(until_utc)
                });
                let offset = self.zone.offset_from_utc(position);
                let mut steps = ((bound + offset).date() - date).num_days().max(0) / period;
                if let Some(end) = self.end_date {
                    steps = steps.min((end - date).num_days().max(0) / period);
                }
                let fire = |steps: i64| {
                    let day = date + TimeDelta::days(steps * period);
                    ZonedDateTime::localize(day.and_time(self.time), self.zone)
                };
                while steps > 0 && fire(steps).utc() > bound {
                    budget::step(1)?;
                    steps -= 1;
                }
                if steps > 0 {
                    let last = fire(steps);
                    caught.count += steps as u64;
                    caught.last = last.instant();
                    date = last.wall.date();
                    position = last.utc();
                }
                if transition.is_none() {
                    break;
                }
            }
            // One real step: across an offset change, or for months and years.
            match self.fire_after(Some(date))? {
                Some(next) if next.utc() <= until_utc => {
                    caught.count += 1;
                    caught.last = next.instant();
                    date = next.wall.date();
                    position = position.max(next.utc());
                }
                _ => break,
            }
        }
        caught.next = self
            .next_after(Some((date, caught.last)))?
            .map(|next| next.instant());
        Ok(caught)
    }

    /// `previous` plus the interval: years and months keeping the day of the month (adding
    /// them again while that date does not exist), then weeks and days. `None` past 9999,
    /// where APScheduler would loop forever.
    fn advance(&self, previous: NaiveDate) -> Option<NaiveDate> {
        let (mut year, mut month) = (i64::from(previous.year()), i64::from(previous.month()));
        let date = loop {
            month += i64::from(self.months);
            year += i64::from(self.years) + (month - 1).div_euclid(12);
            month = (month - 1).rem_euclid(12) + 1;
            if year > 9999 {
                return None;
            }
            if let Some(date) = NaiveDate::from_ymd_opt(year as i32, month as u32, previous.day()) {
                break date;
            }
        };
        let days = i64::from(self.days) + 7 * i64::from(self.weeks);
        date.checked_add_signed(TimeDelta::days(days))
            .filter(|d| d.year() <= 9999)
    }
}

impl Trigger for CalendarIntervalTrigger {
    fn next_fire_time(
        &self,
        previous: Option<DateTime<Utc>>,
        _now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, SearchExhausted> {
        budget::call(|| {
            let previous = match previous {
                Some(previous) => match python_time(previous, self.zone) {
                    Some(local) => Some((local.wall.date(), previous)),
                    None => return Ok(None),
                },
                None => None,
            };
            Ok(self.next_after(previous)?.map(|next| next.instant()))
        })
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

impl LocalTrigger for CalendarIntervalTrigger {
    fn next_local_fire_time(
        &self,
        previous: Option<DateTime<FixedOffset>>,
        _now: DateTime<Utc>,
    ) -> Result<Option<DateTime<FixedOffset>>, SearchExhausted> {
        budget::call(|| {
            // APScheduler reads the previous fire time's date in that value's own zone.
            let previous = match previous {
                Some(previous) => match python_local(previous, self.zone) {
                    Some(local) => Some((local.wall.date(), previous.to_utc())),
                    None => return Ok(None),
                },
                None => None,
            };
            Ok(self.next_after(previous)?.map(ZonedDateTime::to_local))
        })
    }

    fn local_zone(&self) -> Option<Zone> {
        Some(self.zone)
    }

    fn with_default_zone(&self, zone: Zone) -> Option<Arc<dyn LocalTrigger>> {
        let builder = (**self.rebuild.as_ref()?).clone().timezone(zone);
        Some(Arc::new(builder.build().ok()?))
    }
}

impl fmt::Display for CalendarIntervalTrigger {
    /// `calendarinterval[1 month, 1 day at 02:30:00]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("calendarinterval[")?;
        let units = [
            (self.years, "year"),
            (self.months, "month"),
            (self.weeks, "week"),
            (self.days, "day"),
        ];
        let mut first = true;
        for (count, unit) in units.into_iter().filter(|(count, _)| *count > 0) {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            let plural = if count == 1 { "" } else { "s" };
            write!(f, "{count} {unit}{plural}")?;
        }
        write!(f, " at {}]", self.time.format("%H:%M:%S"))
    }
}

/// Builds a [`CalendarIntervalTrigger`]; see [`CalendarIntervalTrigger::builder`].
#[derive(Debug, Clone, Default)]
pub struct CalendarIntervalTriggerBuilder {
    years: u32,
    months: u32,
    weeks: u32,
    days: u32,
    time: (u32, u32, u32),
    options: Options<NaiveDate>,
}

impl CalendarIntervalTriggerBuilder {
    /// Years between fire dates.
    pub fn years(mut self, years: u32) -> Self {
        self.years = years;
        self
    }

    /// Months between fire dates.
    pub fn months(mut self, months: u32) -> Self {
        self.months = months;
        self
    }

    /// Weeks between fire dates.
    pub fn weeks(mut self, weeks: u32) -> Self {
        self.weeks = weeks;
        self
    }

    /// Days between fire dates.
    pub fn days(mut self, days: u32) -> Self {
        self.days = days;
        self
    }

    /// The wall-clock time of day (default 00:00:00).
    pub fn time(mut self, hour: u32, minute: u32, second: u32) -> Self {
        self.time = (hour, minute, second);
        self
    }

    option_setters! {
        dates: NaiveDate,
        start: "The first date (default: today in the trigger's zone, at build time).",
        end: "The last possible date, inclusive.",
        zone: "The zone of the wall-clock time (default: the scheduler's, or the local zone \
               outside one).",
        jitter: "Delays each fire time by up to `jitter`.",
    }

    /// Builds the trigger; the default `start_date` is the system clock's today.
    pub fn build(self) -> Result<CalendarIntervalTrigger, TriggerError> {
        self.build_at(SystemClock.now())
    }

    /// Builds the trigger with an explicit "now" for the default `start_date`.
    pub fn build_at(self, now: DateTime<Utc>) -> Result<CalendarIntervalTrigger, TriggerError> {
        if self.years == 0 && self.months == 0 && self.weeks == 0 && self.days == 0 {
            return Err(TriggerError::argument(
                "interval",
                "must be at least 1 day long (set years, months, weeks or days)",
            ));
        }
        let (hour, minute, second) = self.time;
        let time = NaiveTime::from_hms_opt(hour, minute, second).ok_or_else(|| {
            TriggerError::argument(
                "time",
                format!("{hour:02}:{minute:02}:{second:02} is not a time of day"),
            )
        })?;
        let resolved = self.options.zone_or_local(|| None);
        let zone = resolved.zone;
        let start_date = self
            .options
            .start_date
            .or_else(|| python_time(now, zone).map(|now| now.wall.date()))
            .ok_or_else(|| {
                TriggerError::argument("start_date", "today is outside the years 1 to 9999")
            })?;
        if let Some(end) = self.options.end_date
            && start_date > end
        {
            return Err(TriggerError::argument(
                "end_date",
                format!("{end} cannot be earlier than start_date {start_date}"),
            ));
        }
        for (argument, date) in [
            ("start_date", Some(start_date)),
            ("end_date", self.options.end_date),
        ] {
            if date.is_some_and(|d| !(1..=9999).contains(&d.year())) {
                return Err(TriggerError::argument(
                    argument,
                    "outside the years 1 to 9999",
                ));
            }
        }
        let jitter = self.options.jitter()?;
        let end_date = self.options.end_date;
        let rebuild = resolved.defaulted.then(|| {
            // Keep the start it was built with ("today" then), whatever the zone becomes.
            Arc::new(self.clone().start_date(start_date))
        });
        Ok(CalendarIntervalTrigger {
            years: self.years,
            months: self.months,
            weeks: self.weeks,
            days: self.days,
            time,
            start_date,
            end_date,
            zone,
            jitter,
            rebuild,
        })
    }
}

/// The saved form.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct State {
    version: u32,
    years: u32,
    months: u32,
    weeks: u32,
    days: u32,
    time: NaiveTime,
    start_date: NaiveDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    end_date: Option<NaiveDate>,
    timezone: Zone,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jitter: Option<f64>,
}

impl From<&CalendarIntervalTrigger> for State {
    fn from(trigger: &CalendarIntervalTrigger) -> Self {
        State {
            version: 1,
            years: trigger.years,
            months: trigger.months,
            weeks: trigger.weeks,
            days: trigger.days,
            time: trigger.time,
            start_date: trigger.start_date,
            end_date: trigger.end_date,
            timezone: trigger.zone,
            jitter: trigger.jitter.as_ref().map(|j| j.max_seconds),
        }
    }
}

impl TryFrom<State> for CalendarIntervalTrigger {
    type Error = TriggerError;

    fn try_from(state: State) -> Result<Self, Self::Error> {
        crate::check_version(Self::KIND, state.version, 1)?;
        let mut builder = CalendarIntervalTrigger::builder()
            .years(state.years)
            .months(state.months)
            .weeks(state.weeks)
            .days(state.days)
            .time(state.time.hour(), state.time.minute(), state.time.second())
            .start_date(state.start_date)
            .timezone(state.timezone)
            .jitter_seconds(state.jitter.unwrap_or(0.0));
        if let Some(end) = state.end_date {
            builder = builder.end_date(end);
        }
        builder
            .build()
            .map_err(|e| TriggerError::state(Self::KIND, e))
    }
}

impl Serialize for CalendarIntervalTrigger {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        State::from(self).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for CalendarIntervalTrigger {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        CalendarIntervalTrigger::try_from(State::deserialize(deserializer)?)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FixedJitter;
    use chrono_tz::{America, Europe};
    use std::time::Duration;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn fires(trigger: &CalendarIntervalTrigger, count: usize) -> Vec<String> {
        let now = DateTime::parse_from_rfc3339("2000-01-01T00:00:00Z")
            .unwrap()
            .to_utc();
        let mut out = Vec::new();
        let mut previous = None;
        for _ in 0..count {
            let Some(next) = trigger.next_local_fire_time(previous, now).unwrap() else {
                break;
            };
            out.push(trigger.timezone().to_local(next.to_utc()).to_rfc3339());
            previous = Some(next);
        }
        out
    }

    fn berlin() -> CalendarIntervalTriggerBuilder {
        CalendarIntervalTrigger::builder().timezone(Europe::Berlin)
    }

    // test_calendarinterval.py: bad interval, end before start, end equal to start.
    #[test]
    fn validates_like_apscheduler() {
        let err = berlin().start_date(date(2024, 1, 1)).build().unwrap_err();
        assert!(err.to_string().contains("at least 1 day"), "{err}");
        let err = berlin()
            .weeks(1)
            .start_date(date(2024, 2, 1))
            .end_date(date(2024, 1, 1))
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("earlier than start_date"), "{err}");
        let same_day = berlin()
            .days(1)
            .start_date(date(2024, 1, 1))
            .end_date(date(2024, 1, 1))
            .build()
            .unwrap();
        assert_eq!(fires(&same_day, 3), ["2024-01-01T00:00:00+01:00"]);
        assert!(berlin().days(1).time(24, 0, 0).build().is_err());
    }

    // test_missing_time: the day is skipped on spring-forward.
    #[test]
    fn skips_days_whose_time_does_not_exist() {
        let trigger = berlin()
            .days(1)
            .time(2, 30, 0)
            .start_date(date(2024, 3, 29))
            .build()
            .unwrap();
        assert_eq!(
            fires(&trigger, 3),
            [
                "2024-03-29T02:30:00+01:00",
                "2024-03-30T02:30:00+01:00",
                "2024-04-01T02:30:00+02:00"
            ]
        );
        let midnight = CalendarIntervalTrigger::builder()
            .days(1)
            .start_date(date(2018, 11, 3))
            .timezone(America::Sao_Paulo)
            .build()
            .unwrap();
        assert_eq!(
            fires(&midnight, 2),
            ["2018-11-03T00:00:00-03:00", "2018-11-05T00:00:00-02:00"]
        );
    }

    // test_repeated_time: the earlier occurrence.
    #[test]
    fn takes_the_first_of_a_repeated_time() {
        let trigger = berlin()
            .days(1)
            .time(2, 30, 0)
            .start_date(date(2024, 10, 26))
            .build()
            .unwrap();
        assert_eq!(
            fires(&trigger, 3),
            [
                "2024-10-26T02:30:00+02:00",
                "2024-10-27T02:30:00+02:00",
                "2024-10-28T02:30:00+01:00"
            ]
        );
    }

    // test_nonexistent_days: 31 March + 1 month is 31 May.
    #[test]
    fn skips_months_without_the_day() {
        let trigger = berlin()
            .months(1)
            .start_date(date(2016, 3, 31))
            .build()
            .unwrap();
        assert_eq!(
            fires(&trigger, 3),
            [
                "2016-03-31T00:00:00+02:00",
                "2016-05-31T00:00:00+02:00",
                "2016-07-31T00:00:00+02:00"
            ]
        );
        let leap = berlin()
            .years(1)
            .start_date(date(2024, 2, 29))
            .build()
            .unwrap();
        assert_eq!(fires(&leap, 2)[1], "2028-02-29T00:00:00+01:00");
        let far = berlin()
            .years(5000)
            .start_date(date(2024, 1, 1))
            .build()
            .unwrap();
        assert_eq!(fires(&far, 5).len(), 2, "7024, then nothing past 9999");
    }

    #[test]
    fn combines_units_and_describes_them() {
        let trigger = berlin()
            .years(1)
            .months(2)
            .weeks(1)
            .days(3)
            .time(4, 5, 6)
            .start_date(date(2024, 1, 1))
            .build()
            .unwrap();
        assert_eq!(
            trigger.to_string(),
            "calendarinterval[1 year, 2 months, 1 week, 3 days at 04:05:06]"
        );
        assert_eq!(fires(&trigger, 2)[1], "2025-03-11T04:05:06+01:00");
    }

    #[test]
    fn ignores_now_on_the_first_call_and_uses_the_utc_zone() {
        let trigger = CalendarIntervalTrigger::builder()
            .days(1)
            .start_date(date(2024, 1, 1))
            .timezone(Zone::UTC)
            .build()
            .unwrap();
        let late = DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(
            trigger
                .next_fire_time(None, late)
                .unwrap()
                .map(|t| t.to_rfc3339()),
            Some("2024-01-01T00:00:00+00:00".to_owned())
        );
    }

    #[test]
    fn default_start_is_today_in_the_zone() {
        let now = DateTime::parse_from_rfc3339("2024-06-01T23:30:00Z")
            .unwrap()
            .to_utc();
        let trigger = berlin().days(1).build_at(now).unwrap();
        assert_eq!(trigger.start_date(), date(2024, 6, 2));
    }

    #[test]
    fn jitter_is_added_after_the_end_check() {
        let trigger = berlin()
            .days(1)
            .start_date(date(2024, 1, 1))
            .end_date(date(2024, 1, 2))
            .jitter(Duration::from_secs(10))
            .jitter_source(FixedJitter::new(0.5))
            .build()
            .unwrap();
        assert_eq!(
            fires(&trigger, 5),
            ["2024-01-01T00:00:05+01:00", "2024-01-02T00:00:05+01:00"]
        );
    }

    #[test]
    fn state_round_trips() {
        let trigger = berlin()
            .months(1)
            .days(1)
            .time(2, 30, 0)
            .start_date(date(2024, 1, 31))
            .end_date(date(2030, 1, 1))
            .jitter(Duration::from_secs(1))
            .build()
            .unwrap();
        let state = trigger.to_state().unwrap();
        assert_eq!(state.kind, "calendarinterval");
        let back: CalendarIntervalTrigger = serde_json::from_value(state.state.clone()).unwrap();
        assert_eq!(back.to_state().unwrap(), state);
        assert_eq!(
            back.to_string(),
            "calendarinterval[1 month, 1 day at 02:30:00]"
        );
        let bad = serde_json::json!({"version": 1, "years": 0, "months": 0, "weeks": 0,
            "days": 0, "time": "00:00:00", "start_date": "2024-01-01", "timezone": "UTC"});
        assert!(serde_json::from_value::<CalendarIntervalTrigger>(bad).is_err());
    }
}

//! [`CronTrigger`]: fire on calendar fields.

mod catch_up;
mod expression;
mod field;
mod search;

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, FixedOffset, Utc};
use chrono_tz::Tz;
use scheduler_core::{CatchUp, SearchExhausted, Trigger, TriggerState};
use serde::{Deserialize, Serialize};

use self::expression::{Expr, WEEKDAYS};
use self::field::{Field, FieldKind};
use crate::jitter::Jitter;
use crate::options::{Options, option_setters};
use crate::zone::{Zone, ZonedDateTime, ZonedSearch};
use crate::{DateSpec, LocalTrigger, TriggerError, budget};

/// Fires when the time matches every field, like cron (APScheduler's `CronTrigger`).
///
/// Fields, from the most significant: `year` (1970–9999), `month` (1–12 or `jan`–`dec`),
/// `day` (1–31, also `1st mon`…`5th mon`, `last mon`, `last`), `week` (ISO week 1–53),
/// `day_of_week` (0–6 **with 0 = Monday**, or `mon`–`sun`), `hour`, `minute`, `second`.
/// Each takes a comma-separated list of `*`, `*/n`, `a`, `a-b`, `a-b/n` and `a/n`.
///
/// As in APScheduler 3.x:
/// - fields more significant than the least significant one given default to `*`, less
///   significant ones to their minimum (`week` and `day_of_week` always default to `*`):
///   `hour=2` fires daily at 02:00:00, `minute=5` hourly at :05:00, no field every second;
/// - `day` **and** `day_of_week` must both match (Vixie cron accepts either);
/// - `week` is the ISO week of the date while `year` is its calendar year;
/// - a time set directly into a DST gap fires shifted by the gap (02:30 → 03:30), a time
///   reached by stepping across a gap is skipped, and a repeated wall time fires twice;
/// - the search starts right after the previous fire time, rounded up to a whole second;
/// - `end_date` is inclusive, and a jittered time past it is clipped to it.
///
/// Unlike 3.x, jitter never moves a fire time earlier (in a repeated hour it is added in
/// absolute time), and the trigger never answers an instant at or before the previous fire
/// time. Every answer comes within the [step budget](crate::budget); one that cannot is
/// [`SearchExhausted`].
///
/// [`from_crontab`](Self::from_crontab) reads a standard five-field crontab line, with POSIX
/// day-of-week numbers (0 and 7 = Sunday).
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use scheduler_core::Trigger;
/// use triggers::CronTrigger;
///
/// let trigger = CronTrigger::builder()
///     .month("6-8")
///     .day("last")
///     .hour(2)
///     .timezone(chrono_tz::Europe::Berlin)
///     .build()
///     .unwrap();
/// assert_eq!(trigger.to_string(), "cron[month='6-8', day='last', hour='2']");
/// let now = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
/// // 2024-06-30 02:00 CEST
/// assert_eq!(
///     trigger.next_fire_time(None, now),
///     Ok(Some(Utc.with_ymd_and_hms(2024, 6, 30, 0, 0, 0).unwrap()))
/// );
/// ```
#[derive(Debug, Clone)]
pub struct CronTrigger {
    fields: [Field; 8],
    start: Option<ZonedDateTime>,
    end: Option<ZonedDateTime>,
    zone: Zone,
    jitter: Option<Jitter>,
    /// How it was built, when no zone was given: a scheduler gives it its own.
    rebuild: Option<Arc<CronTriggerBuilder>>,
}

impl CronTrigger {
    /// The kind name this trigger is saved and registered under.
    pub const KIND: &'static str = "cron";

    /// Starts building a cron trigger.
    pub fn builder() -> CronTriggerBuilder {
        CronTriggerBuilder::default()
    }

    /// Reads a crontab line, `minute hour day month day_of_week` (any whitespace between).
    ///
    /// Day-of-week **numbers** have their POSIX meaning: 0 and 7 are Sunday, 1 is Monday.
    /// (APScheduler 3.x passes them to `day_of_week` unchanged, so `0` is Monday there and
    /// `7` an error; APScheduler 4 uses the POSIX meaning.) Names and every other field are
    /// read as by the builder; seconds are 0; no `@daily` macros, `L`, `W`, `#` or `?`.
    pub fn from_crontab(expression: &str, timezone: impl Into<Zone>) -> Result<Self, TriggerError> {
        let fields: Vec<&str> = expression.split_whitespace().collect();
        let [minute, hour, day, month, day_of_week] = fields[..] else {
            return Err(TriggerError::CrontabFieldCount {
                expression: expression.to_owned(),
                found: fields.len(),
            });
        };
        CronTrigger::builder()
            .minute(minute)
            .hour(hour)
            .day(day)
            .month(month)
            .day_of_week(posix_day_of_week(day_of_week)?)
            .timezone(timezone)
            .build()
    }

    /// The zone fields are matched in.
    pub fn timezone(&self) -> Zone {
        self.zone
    }

    /// The earliest possible fire time, if any.
    pub fn start_date(&self) -> Option<DateTime<FixedOffset>> {
        self.start.map(ZonedDateTime::to_local)
    }

    /// The latest possible fire time, if any.
    pub fn end_date(&self) -> Option<DateTime<FixedOffset>> {
        self.end.map(ZonedDateTime::to_local)
    }
}

impl ZonedSearch for CronTrigger {
    fn zone(&self) -> Zone {
        self.zone
    }

    /// `get_next_fire_time` with jitter and `end_date` clipping.
    fn search_next(
        &self,
        previous: Option<ZonedDateTime>,
        now: ZonedDateTime,
    ) -> Result<Option<ZonedDateTime>, SearchExhausted> {
        let Some(mut next) = self.search(previous, now)? else {
            return Ok(None);
        };
        if let Some(jitter) = &self.jitter {
            let Some(delayed) = jitter.delay(next) else {
                return Ok(None);
            };
            next = delayed;
        }
        Ok(match self.end {
            Some(end) if end.py_cmp(&next).is_lt() => Some(end),
            _ => Some(next),
        })
    }
}

impl Trigger for CronTrigger {
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

    /// Counts the fire times up to `until` without enumerating them: whole stretches between
    /// the zone's offset changes at once, each change by APScheduler's own search.
    fn catch_up(
        &self,
        first: DateTime<Utc>,
        until: DateTime<Utc>,
        _max_steps: u64,
    ) -> Result<CatchUp, SearchExhausted> {
        budget::call(|| self.count_fires(first, until))
    }

    fn with_default_timezone(&self, timezone: Tz) -> Option<Arc<dyn Trigger>> {
        let rezoned = self.with_default_zone(Zone::Named(timezone))?;
        Some(rezoned)
    }
}

impl LocalTrigger for CronTrigger {
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
        let builder = (**self.rebuild.as_ref()?).clone().timezone(zone);
        Some(Arc::new(builder.build().ok()?))
    }
}

impl fmt::Display for CronTrigger {
    /// `cron[month='6-8', day='last', hour='2']`: the fields given, as APScheduler prints
    /// them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cron[")?;
        let mut first = true;
        for field in self.fields.iter().filter(|f| !f.is_default) {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write!(f, "{}='{}'", field.kind.name(), field)?;
        }
        f.write_str("]")
    }
}

/// Builds a [`CronTrigger`]; see [`CronTrigger::builder`].
///
/// Field setters take anything printable: `.hour(2)`, `.hour("*/2")`, `.day("last fri")`.
#[derive(Debug, Clone, Default)]
pub struct CronTriggerBuilder {
    fields: [Option<String>; 8],
    options: Options<DateSpec>,
}

macro_rules! field_setters {
    ($($(#[$doc:meta])* $name:ident = $index:expr;)*) => {$(
        $(#[$doc])*
        pub fn $name(mut self, expression: impl fmt::Display) -> Self {
            self.fields[$index] = Some(expression.to_string());
            self
        }
    )*};
}

impl CronTriggerBuilder {
    field_setters! {
        /// 4-digit year, 1970–9999.
        year = 0;
        /// Month, 1–12 or `jan`–`dec`.
        month = 1;
        /// Day of the month, 1–31, or `1st mon`…`5th mon`, `last mon`, `last`.
        day = 2;
        /// ISO week, 1–53.
        week = 3;
        /// Day of the week, 0–6 with **0 = Monday**, or `mon`–`sun`.
        day_of_week = 4;
        /// Hour, 0–23.
        hour = 5;
        /// Minute, 0–59.
        minute = 6;
        /// Second, 0–59.
        second = 7;
    }

    option_setters! {
        dates: DateSpec,
        start: "The earliest possible fire time (inclusive).",
        end: "The latest possible fire time (inclusive).",
        zone: "The zone fields are matched in (default: the zone of an aware `start_date`, then \
               of an aware `end_date`, then the scheduler's, or the local zone outside one).",
        jitter: "Delays each fire time by up to `jitter` (clipped to `end_date`).",
    }

    /// Builds the trigger, validating every field.
    pub fn build(self) -> Result<CronTrigger, TriggerError> {
        let resolved = self.options.zone();
        let zone = resolved.zone;
        let start = self
            .options
            .start_date
            .as_ref()
            .map(|spec| spec.resolve(zone, "start_date"))
            .transpose()?;
        let end = self
            .options
            .end_date
            .as_ref()
            .map(|spec| spec.resolve(zone, "end_date"))
            .transpose()?;
        let jitter = self.options.jitter()?;

        // Fields after the least significant one given take their minimum, the others `*`.
        let last_given = self.fields.iter().rposition(Option::is_some);
        let mut fields = Vec::with_capacity(8);
        for (index, kind) in FieldKind::ALL.into_iter().enumerate() {
            let field = match &self.fields[index] {
                Some(text) => Field::parse(kind, text, false)?,
                None if last_given.is_some_and(|last| index > last) => {
                    Field::parse(kind, kind.default_expression(), true)?
                }
                None => Field::parse(kind, "*", true)?,
            };
            fields.push(field);
        }
        let fields: [Field; 8] = fields.try_into().expect("eight fields");
        let rebuild = resolved.defaulted.then(|| Arc::new(self));
        Ok(CronTrigger {
            fields,
            start,
            end,
            zone,
            jitter,
            rebuild,
        })
    }
}

/// Rewrites the day-of-week field of a crontab line from POSIX numbers (0 and 7 = Sunday)
/// to this crate's weekday names. Elements without a number (`mon-fri`, `*`) are kept.
fn posix_day_of_week(text: &str) -> Result<String, TriggerError> {
    let mut out = Vec::new();
    for element in text.split(',') {
        let numeric = element.bytes().any(|b| b.is_ascii_digit());
        if !numeric {
            out.push(element.to_owned());
            continue;
        }
        let expr = Expr::parse(FieldKind::CrontabDayOfWeek, element).map_err(|reason| {
            TriggerError::CronExpression {
                field: "day_of_week",
                expression: text.to_owned(),
                reason,
            }
        })?;
        let mut days = [false; 7];
        for day in expr
            .static_values(FieldKind::CrontabDayOfWeek)
            .expect("numbers and steps only")
        {
            // POSIX 0 and 7 are Sunday, 1 Monday; here 0 is Monday and 6 Sunday.
            days[((day + 6) % 7) as usize] = true;
        }
        out.extend(weekday_runs(&days));
    }
    Ok(out.join(","))
}

/// `mon-wed`, `fri`, `sun`: the allowed weekdays as names, consecutive ones as ranges.
fn weekday_runs(days: &[bool; 7]) -> Vec<String> {
    let mut runs = Vec::new();
    let mut day = 0;
    while day < 7 {
        if !days[day] {
            day += 1;
            continue;
        }
        let start = day;
        while day + 1 < 7 && days[day + 1] {
            day += 1;
        }
        runs.push(if start == day {
            WEEKDAYS[start].to_owned()
        } else {
            format!("{}-{}", WEEKDAYS[start], WEEKDAYS[day])
        });
        day += 1;
    }
    runs
}

/// The saved form: the fields as given, plus dates, zone and jitter.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct State {
    version: u32,
    fields: FieldsState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    start_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    end_date: Option<String>,
    timezone: Zone,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jitter: Option<f64>,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FieldsState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    year: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    month: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    day: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    week: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    day_of_week: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hour: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    minute: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    second: Option<String>,
}

impl FieldsState {
    fn slots(&mut self) -> [&mut Option<String>; 8] {
        [
            &mut self.year,
            &mut self.month,
            &mut self.day,
            &mut self.week,
            &mut self.day_of_week,
            &mut self.hour,
            &mut self.minute,
            &mut self.second,
        ]
    }
}

impl From<&CronTrigger> for State {
    fn from(trigger: &CronTrigger) -> Self {
        let mut fields = FieldsState::default();
        for (slot, field) in fields.slots().into_iter().zip(&trigger.fields) {
            if !field.is_default {
                *slot = Some(field.source.clone());
            }
        }
        State {
            version: 1,
            fields,
            start_date: trigger.start.map(ZonedDateTime::to_state_string),
            end_date: trigger.end.map(ZonedDateTime::to_state_string),
            timezone: trigger.zone,
            jitter: trigger.jitter.as_ref().map(|j| j.max_seconds),
        }
    }
}

impl TryFrom<State> for CronTrigger {
    type Error = TriggerError;

    fn try_from(mut state: State) -> Result<Self, Self::Error> {
        crate::check_version(Self::KIND, state.version, 1)?;
        let mut builder = CronTrigger::builder().timezone(state.timezone);
        builder.fields = state.fields.slots().map(Option::take);
        let date = |text: &str| {
            ZonedDateTime::from_state_string(text)
                .map(DateSpec::exact)
                .map_err(|e| TriggerError::state(Self::KIND, e))
        };
        if let Some(start) = state.start_date.as_deref() {
            builder = builder.start_date(date(start)?);
        }
        if let Some(end) = state.end_date.as_deref() {
            builder = builder.end_date(date(end)?);
        }
        builder
            .jitter_seconds(state.jitter.unwrap_or(0.0))
            .build()
            .map_err(|e| TriggerError::state(Self::KIND, e))
    }
}

impl Serialize for CronTrigger {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        State::from(self).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for CronTrigger {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        CronTrigger::try_from(State::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;

//! [`DateTrigger`]: fire once.

use std::fmt;

use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use scheduler_core::{CatchUp, SearchExhausted, Trigger, TriggerState};
use serde::{Deserialize, Serialize};

use crate::zone::{Zone, ZonedDateTime};
use crate::{DateSpec, LocalTrigger, TriggerError};

/// Fires once, at `run_date` (APScheduler's `DateTrigger`).
///
/// The first call answers the run date whatever `now` is, so a run date in the past is still
/// answered (the scheduler then applies its misfire grace time); once the trigger has fired
/// it answers `None`.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use scheduler_core::Trigger;
/// use triggers::DateTrigger;
///
/// let run_date = Utc.with_ymd_and_hms(2024, 5, 1, 7, 0, 0).unwrap();
/// let trigger = DateTrigger::new(run_date);
/// assert_eq!(trigger.next_fire_time(None, run_date), Ok(Some(run_date)));
/// assert_eq!(trigger.next_fire_time(Some(run_date), run_date), Ok(None));
///
/// // An instant of any zone keeps its zone, for display and when saved.
/// let berlin = chrono_tz::Europe::Berlin.with_ymd_and_hms(2024, 5, 1, 9, 0, 0).unwrap();
/// assert_eq!(DateTrigger::new(berlin).to_string(), "date[2024-05-01 09:00:00 CEST]");
///
/// // A wall-clock time or a date string is placed in a zone.
/// let text = DateTrigger::in_zone("2024-05-01 09:00:00", chrono_tz::Europe::Berlin).unwrap();
/// assert_eq!(text.run_date(), berlin.fixed_offset());
/// ```
#[derive(Debug, Clone)]
pub struct DateTrigger {
    run_date: RunDate,
}

/// The run date as kept: a million date jobs keep a million of these.
#[derive(Debug, Clone)]
enum RunDate {
    /// An instant and the zone it is shown in (what [`DateTrigger::new`] is given): 24 bytes,
    /// where the zoned time it stands for takes twice that. The zoned time is derived from
    /// them when shown or saved, exactly as it was built before.
    Instant { at: DateTime<Utc>, zone: Zone },
    /// A wall-clock time placed in a zone, or a saved state: kept as resolved.
    Zoned(Box<ZonedDateTime>),
}

impl RunDate {
    fn zoned(&self) -> ZonedDateTime {
        match self {
            RunDate::Instant { at, zone } => ZonedDateTime::from_instant(*at, *zone),
            RunDate::Zoned(zoned) => **zoned,
        }
    }

    fn instant(&self) -> DateTime<Utc> {
        match self {
            RunDate::Instant { at, .. } => *at,
            RunDate::Zoned(zoned) => zoned.instant(),
        }
    }

    fn zone(&self) -> Zone {
        match self {
            RunDate::Instant { zone, .. } => *zone,
            RunDate::Zoned(zoned) => zoned.zone,
        }
    }
}

impl DateTrigger {
    /// The kind name this trigger is saved and registered under.
    pub const KIND: &'static str = "date";

    /// Fires at `run_date`, an instant of any zone (`DateTime<Utc>`, `DateTime<Tz>` of
    /// `chrono-tz`, `DateTime<FixedOffset>`), shown in that zone.
    pub fn new<Z>(run_date: DateTime<Z>) -> Self
    where
        Z: TimeZone,
        Zone: From<Z>,
    {
        let zone = Zone::from(run_date.timezone());
        DateTrigger {
            run_date: RunDate::Instant {
                at: run_date.to_utc(),
                zone,
            },
        }
    }

    /// Fires at `run_date` in `zone`: a wall-clock time or a date string without an offset is
    /// localised there (a time in a DST gap moves forward by the gap, a repeated time takes
    /// its first occurrence); an aware value or a string with an offset keeps its own zone.
    pub fn in_zone(
        run_date: impl Into<DateSpec>,
        zone: impl Into<Zone>,
    ) -> Result<Self, TriggerError> {
        let run_date = run_date.into().resolve(zone.into(), "run_date")?;
        Ok(DateTrigger {
            run_date: RunDate::Zoned(Box::new(run_date)),
        })
    }

    /// The run date in the trigger's zone.
    pub fn run_date(&self) -> DateTime<FixedOffset> {
        self.run_date.zoned().to_local()
    }

    /// The zone the run date is shown in.
    pub fn zone(&self) -> Zone {
        self.run_date.zone()
    }
}

impl Trigger for DateTrigger {
    fn next_fire_time(
        &self,
        previous: Option<DateTime<Utc>>,
        _now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, SearchExhausted> {
        crate::budget::call(|| {
            crate::budget::step(1)?;
            Ok(previous.is_none().then(|| self.run_date.instant()))
        })
    }

    fn to_state(&self) -> scheduler_core::Result<TriggerState> {
        TriggerState::new(Self::KIND, &State::from(self))
    }

    /// The provided walk's answer without its dynamic call: nothing follows a date trigger's
    /// one fire time. Every due date job of a burst comes here once (the walk's call cost
    /// about 100 instructions a run of the dispatch bench); the step it took is still counted.
    fn catch_up(
        &self,
        first: DateTime<Utc>,
        _until: DateTime<Utc>,
        _max_steps: u64,
    ) -> Result<CatchUp, SearchExhausted> {
        crate::budget::call(|| {
            crate::budget::step(1)?;
            Ok(CatchUp {
                count: 1,
                last: first,
                next: None,
            })
        })
    }
}

impl LocalTrigger for DateTrigger {
    fn next_local_fire_time(
        &self,
        previous: Option<DateTime<FixedOffset>>,
        _now: DateTime<Utc>,
    ) -> Result<Option<DateTime<FixedOffset>>, SearchExhausted> {
        crate::budget::call(|| {
            crate::budget::step(1)?;
            Ok(previous.is_none().then(|| self.run_date.zoned().to_local()))
        })
    }

    fn local_zone(&self) -> Option<Zone> {
        Some(self.zone())
    }
}

impl fmt::Display for DateTrigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "date[{}]", self.run_date.zoned().repr())
    }
}

/// The saved form: `{"version": 1, "run_date": "2024-05-01T09:00:00+02:00[Europe/Berlin]"}`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct State {
    version: u32,
    run_date: String,
}

impl From<&DateTrigger> for State {
    fn from(trigger: &DateTrigger) -> Self {
        State {
            version: 1,
            run_date: trigger.run_date.zoned().to_state_string(),
        }
    }
}

impl TryFrom<State> for DateTrigger {
    type Error = TriggerError;

    fn try_from(state: State) -> Result<Self, Self::Error> {
        crate::check_version(Self::KIND, state.version, 1)?;
        let run_date = ZonedDateTime::from_state_string(&state.run_date)
            .map_err(|e| TriggerError::state(Self::KIND, e))?;
        Ok(DateTrigger {
            run_date: RunDate::Zoned(Box::new(run_date)),
        })
    }
}

impl Serialize for DateTrigger {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        State::from(self).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for DateTrigger {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        DateTrigger::try_from(State::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use chrono_tz::{Australia, Europe};

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    #[test]
    fn an_instant_is_kept_small_and_shows_and_saves_as_its_zoned_time() {
        // A million date jobs hold a million of these (the memory store's budget per job).
        assert!(std::mem::size_of::<DateTrigger>() <= 24);
        let berlin = Europe::Berlin
            .with_ymd_and_hms(2024, 10, 27, 2, 30, 0)
            .latest();
        let trigger = DateTrigger::new(berlin.unwrap());
        let zoned = DateTrigger {
            run_date: RunDate::Zoned(Box::new(ZonedDateTime::from_instant(
                berlin.unwrap().to_utc(),
                Zone::from(Europe::Berlin),
            ))),
        };
        assert_eq!(trigger.to_string(), zoned.to_string());
        assert_eq!(trigger.run_date(), zoned.run_date());
        assert_eq!(trigger.zone(), zoned.zone());
        assert_eq!(
            trigger.to_state().unwrap().state,
            zoned.to_state().unwrap().state
        );
    }

    // APScheduler's test_date.py: earlier, exact, later, previously fired.
    #[test]
    fn answers_the_run_date_once_whatever_now_is() {
        let run = utc("2009-07-06T00:00:00+02:00");
        let trigger = DateTrigger::new(run);
        for now in [
            "2008-12-01T00:00:00+02:00",
            "2009-07-06T00:00:00+02:00",
            "2009-07-07T00:00:00+02:00",
        ] {
            assert_eq!(
                trigger.next_fire_time(None, utc(now)),
                Ok(Some(run)),
                "now = {now}"
            );
        }
        assert_eq!(
            trigger.next_fire_time(Some(run), utc("2008-12-01T00:00:00+02:00")),
            Ok(None)
        );
    }

    #[test]
    fn a_catch_up_ends_at_the_one_fire_time() {
        let run = utc("2009-07-06T00:00:00+02:00");
        let trigger = DateTrigger::new(run);
        let later = utc("2009-07-07T00:00:00+02:00");
        assert_eq!(
            trigger.catch_up(run, later, 100),
            Ok(CatchUp {
                count: 1,
                last: run,
                next: None
            })
        );
        // The same answer as the walk `Trigger::catch_up` provides: the next fire time after
        // the first one.
        assert_eq!(trigger.next_fire_time(Some(run), later), Ok(None));
    }

    // "as text", "alternate timezone", and DST ambiguity ("daylight saving", "standard time").
    #[test]
    fn localises_text_like_apscheduler() {
        let text = DateTrigger::in_zone("2009-7-6", Europe::Helsinki).unwrap();
        assert_eq!(text.run_date().to_rfc3339(), "2009-07-06T00:00:00+03:00");
        let gap = DateTrigger::in_zone("2024-03-31 02:30:00", Europe::Berlin).unwrap();
        assert_eq!(gap.run_date().to_rfc3339(), "2024-03-31T03:30:00+02:00");
        let repeated = DateTrigger::in_zone("2024-10-27 02:30:00", Europe::Berlin).unwrap();
        assert_eq!(
            repeated.run_date().to_rfc3339(),
            "2024-10-27T02:30:00+02:00"
        );
        let aware = Australia::Sydney
            .with_ymd_and_hms(2024, 1, 1, 9, 0, 0)
            .unwrap();
        let kept = DateTrigger::in_zone(aware, Europe::Berlin).unwrap();
        assert_eq!(kept.zone(), Zone::Named(Australia::Sydney));
        assert_eq!(kept.to_string(), "date[2024-01-01 09:00:00 AEDT]");
        let offset = DateTrigger::in_zone("2024-05-01 09:00:00+05:30", Europe::Berlin).unwrap();
        assert_eq!(offset.to_string(), "date[2024-05-01 09:00:00 UTC+05:30]");
        let z = DateTrigger::in_zone("2024-05-01 09:00:00Z", Europe::Berlin).unwrap();
        assert_eq!(z.to_string(), "date[2024-05-01 09:00:00 UTC]");
    }

    #[test]
    fn local_answer_keeps_the_run_dates_zone() {
        let trigger = DateTrigger::in_zone("2024-05-01 09:00:00", Australia::Lord_Howe).unwrap();
        assert_eq!(trigger.to_string(), "date[2024-05-01 09:00:00 +1030]");
        let local = trigger
            .next_local_fire_time(None, utc("2024-01-01T00:00:00Z"))
            .unwrap()
            .unwrap();
        assert_eq!(local.to_rfc3339(), "2024-05-01T09:00:00+10:30");
        assert_eq!(
            trigger.next_local_fire_time(Some(local), local.to_utc()),
            Ok(None)
        );
    }

    #[test]
    fn takes_an_instant_of_any_zone_and_keeps_the_zone() {
        let berlin = Europe::Berlin
            .with_ymd_and_hms(2024, 5, 1, 9, 0, 0)
            .unwrap();
        let trigger = DateTrigger::new(berlin);
        assert_eq!(trigger.zone(), Zone::Named(Europe::Berlin));
        assert_eq!(trigger.to_string(), "date[2024-05-01 09:00:00 CEST]");
        assert_eq!(
            trigger.next_fire_time(None, berlin.to_utc()),
            Ok(Some(berlin.to_utc()))
        );
        let fixed = DateTrigger::new(berlin.fixed_offset());
        assert_eq!(fixed.to_string(), "date[2024-05-01 09:00:00 UTC+02:00]");
        let utc = DateTrigger::new(berlin.to_utc());
        assert_eq!(utc.to_string(), "date[2024-05-01 07:00:00 UTC]");
        assert_eq!(
            trigger.to_state().unwrap().state["run_date"],
            "2024-05-01T09:00:00+02:00[Europe/Berlin]"
        );
    }

    #[test]
    fn state_round_trips() {
        let trigger = DateTrigger::in_zone("2024-10-27 02:30:00", Europe::Berlin).unwrap();
        let state = trigger.to_state().unwrap();
        assert_eq!(state.kind, "date");
        assert_eq!(
            state.state["run_date"],
            "2024-10-27T02:30:00+02:00[Europe/Berlin]"
        );
        let back: DateTrigger = serde_json::from_value(state.state).unwrap();
        assert_eq!(back.run_date(), trigger.run_date());
        assert_eq!(back.to_string(), trigger.to_string());
        let bad = serde_json::json!({"version": 2, "run_date": "2024-10-27T02:30:00+02:00"});
        assert!(serde_json::from_value::<DateTrigger>(bad).is_err());
    }
}

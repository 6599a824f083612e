//! Date arguments (`run_date`, `start_date`, `end_date`) in the forms APScheduler accepts.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use chrono_tz::Tz;

use crate::TriggerError;
use crate::zone::{Zone, ZonedDateTime};

/// A date/time argument: an aware datetime, a wall-clock time, or one of APScheduler's date
/// strings.
///
/// Wall-clock times and strings without an offset are placed in the trigger's zone the way
/// APScheduler localises them: a time that falls in a DST gap moves forward by the gap
/// (02:30 on a spring-forward night becomes 03:30), a repeated time takes its first
/// occurrence. Aware values and strings with an offset keep their own zone.
///
/// Accepted strings: `YYYY-MM-DD`, `YYYY-MM-DD HH:MM:SS`, the same with `T` instead of the
/// space, an optional `.ffffff` fraction and an optional `Z` or `±HH:MM` offset after the
/// time. Month, day, hour, minute and second may have one or two digits; `HH:MM` without
/// seconds is rejected, as in APScheduler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateSpec(Repr);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Repr {
    Aware(DateTime<Utc>, Zone),
    Naive(NaiveDateTime),
    Text(String),
    /// A time this crate resolved before (a saved state, a trigger given another zone).
    #[cfg(any(feature = "interval", feature = "cron"))]
    Exact(ZonedDateTime),
}

impl DateSpec {
    #[cfg(any(feature = "interval", feature = "cron"))]
    /// A time resolved before, kept exactly (wall clock, fold and zone).
    pub(crate) fn exact(value: ZonedDateTime) -> Self {
        DateSpec(Repr::Exact(value))
    }

    /// Resolves the argument in the trigger's zone.
    pub(crate) fn resolve(
        &self,
        zone: Zone,
        argument: &'static str,
    ) -> Result<ZonedDateTime, TriggerError> {
        let out_of_range = || TriggerError::InvalidDate {
            argument,
            input: self.to_string(),
            reason: "outside the years 1 to 9999".into(),
        };
        match &self.0 {
            Repr::Aware(instant, own) => {
                crate::zone::python_time(*instant, *own).ok_or_else(out_of_range)
            }
            #[cfg(any(feature = "interval", feature = "cron"))]
            Repr::Exact(value) => Ok(*value),
            Repr::Naive(wall) if !(1..=9999).contains(&wall.year()) => Err(out_of_range()),
            Repr::Naive(wall) => Ok(ZonedDateTime::localize(*wall, zone)),
            Repr::Text(text) => match parse_date_string(text) {
                Some(Parsed {
                    wall,
                    offset: Some(offset),
                }) => {
                    let own = Zone::Fixed(offset);
                    Ok(ZonedDateTime::localize(wall, own))
                }
                Some(Parsed { wall, offset: None }) => Ok(ZonedDateTime::localize(wall, zone)),
                None => Err(TriggerError::InvalidDate {
                    argument,
                    input: text.clone(),
                    reason: "expected YYYY-MM-DD[( |T)HH:MM:SS[.ffffff][Z|±HH:MM]]".into(),
                }),
            },
        }
        .and_then(|value| {
            if value.in_python_range() {
                Ok(value)
            } else {
                Err(TriggerError::InvalidDate {
                    argument,
                    input: self.to_string(),
                    reason: "outside the years 1 to 9999".into(),
                })
            }
        })
    }

    #[cfg(any(feature = "interval", feature = "cron"))]
    /// The zone of an aware datetime value, which APScheduler uses as the trigger's zone when
    /// none is given (strings never define it).
    pub(crate) fn own_zone(&self) -> Option<Zone> {
        match &self.0 {
            Repr::Aware(_, zone) => Some(*zone),
            #[cfg(any(feature = "interval", feature = "cron"))]
            Repr::Exact(value) => Some(value.zone),
            _ => None,
        }
    }
}

impl std::fmt::Display for DateSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Repr::Aware(instant, zone) => write!(f, "{}", zone.to_local(*instant).to_rfc3339()),
            Repr::Naive(wall) => write!(f, "{wall}"),
            Repr::Text(text) => f.write_str(text),
            #[cfg(any(feature = "interval", feature = "cron"))]
            Repr::Exact(value) => f.write_str(&value.to_state_string()),
        }
    }
}

impl From<DateTime<Utc>> for DateSpec {
    fn from(value: DateTime<Utc>) -> Self {
        DateSpec(Repr::Aware(value, Zone::UTC))
    }
}

impl From<DateTime<Tz>> for DateSpec {
    fn from(value: DateTime<Tz>) -> Self {
        DateSpec(Repr::Aware(value.to_utc(), Zone::Named(value.timezone())))
    }
}

impl From<DateTime<FixedOffset>> for DateSpec {
    fn from(value: DateTime<FixedOffset>) -> Self {
        DateSpec(Repr::Aware(value.to_utc(), Zone::Fixed(*value.offset())))
    }
}

impl From<NaiveDateTime> for DateSpec {
    fn from(value: NaiveDateTime) -> Self {
        DateSpec(Repr::Naive(value))
    }
}

impl From<NaiveDate> for DateSpec {
    /// Midnight of that date.
    fn from(value: NaiveDate) -> Self {
        DateSpec(Repr::Naive(value.and_time(NaiveTime::MIN)))
    }
}

impl From<&str> for DateSpec {
    fn from(value: &str) -> Self {
        DateSpec(Repr::Text(value.to_owned()))
    }
}

impl From<String> for DateSpec {
    fn from(value: String) -> Self {
        DateSpec(Repr::Text(value))
    }
}

struct Parsed {
    wall: NaiveDateTime,
    offset: Option<FixedOffset>,
}

/// APScheduler's `_DATE_REGEX`:
/// `\d{4}-\d{1,2}-\d{1,2}(?:[ T]\d{1,2}:\d{1,2}:\d{1,2}(?:\.\d{1,6})?(Z|[+-]\d\d:\d\d)?)?$`,
/// with ASCII digits only. The fraction is read as a fraction of a second (`.5` is half a
/// second; APScheduler reads the digits as an integer number of microseconds).
fn parse_date_string(text: &str) -> Option<Parsed> {
    let mut cursor = Cursor(text.as_bytes());
    let year = cursor.digits(4, 4)?;
    cursor.expect(b'-')?;
    let month = cursor.digits(1, 2)?;
    cursor.expect(b'-')?;
    let day = cursor.digits(1, 2)?;
    let date = NaiveDate::from_ymd_opt(year as i32, month, day)?;
    if cursor.is_empty() {
        return Some(Parsed {
            wall: date.and_time(NaiveTime::MIN),
            offset: None,
        });
    }
    cursor.expect_any(b" T")?;
    let hour = cursor.digits(1, 2)?;
    cursor.expect(b':')?;
    let minute = cursor.digits(1, 2)?;
    cursor.expect(b':')?;
    let second = cursor.digits(1, 2)?;
    let mut micro = 0;
    if cursor.peek() == Some(b'.') {
        cursor.expect(b'.')?;
        let start = cursor.0;
        let value = cursor.digits(1, 6)?;
        let written = start.len() - cursor.0.len();
        micro = value * 10u32.pow(6 - written as u32);
    }
    let time = NaiveTime::from_hms_micro_opt(hour, minute, second, micro)?;
    let offset = match cursor.0 {
        [] => None,
        [b'Z'] => Some(FixedOffset::east_opt(0)?),
        rest => Some(crate::zone::parse_offset(std::str::from_utf8(rest).ok()?)?),
    };
    Some(Parsed {
        wall: date.and_time(time),
        offset,
    })
}

struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn peek(&self) -> Option<u8> {
        self.0.first().copied()
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        self.expect_any(&[byte])
    }

    fn expect_any(&mut self, bytes: &[u8]) -> Option<()> {
        let (&first, rest) = self.0.split_first()?;
        bytes.contains(&first).then(|| self.0 = rest)
    }

    fn digits(&mut self, min: usize, max: usize) -> Option<u32> {
        let count = self
            .0
            .iter()
            .take(max)
            .take_while(|b| b.is_ascii_digit())
            .count();
        if count < min {
            return None;
        }
        let (digits, rest) = self.0.split_at(count);
        self.0 = rest;
        digits
            .iter()
            .try_fold(0u32, |acc, d| Some(acc * 10 + u32::from(d - b'0')))
    }
}

/// A calendar date argument (`CalendarIntervalTrigger`'s `start_date`/`end_date`), as
/// Python's `date.fromisoformat` reads `YYYY-MM-DD`.
#[cfg(feature = "conformance")]
pub(crate) fn parse_iso_date(
    text: &str,
    argument: &'static str,
) -> Result<NaiveDate, TriggerError> {
    let mut cursor = Cursor(text.as_bytes());
    let parsed = (|| {
        let year = cursor.digits(4, 4)?;
        cursor.expect(b'-')?;
        let month = cursor.digits(2, 2)?;
        cursor.expect(b'-')?;
        let day = cursor.digits(2, 2)?;
        cursor.is_empty().then_some(())?;
        NaiveDate::from_ymd_opt(year as i32, month, day)
    })();
    parsed.ok_or_else(|| TriggerError::InvalidDate {
        argument,
        input: text.to_owned(),
        reason: "expected an existing date as YYYY-MM-DD".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use chrono_tz::Europe::Berlin;

    fn resolve(text: &str) -> Result<String, TriggerError> {
        DateSpec::from(text)
            .resolve(Zone::Named(Berlin), "run_date")
            .map(|v| v.to_local().to_rfc3339())
    }

    #[test]
    fn accepts_apscheduler_date_strings() {
        assert_eq!(resolve("2024-03-31").unwrap(), "2024-03-31T00:00:00+01:00");
        assert_eq!(
            resolve("2024-03-31 2:3:4").unwrap(),
            "2024-03-31T03:03:04+02:00"
        );
        assert_eq!(
            resolve("2024-03-31T02:30:00Z").unwrap(),
            "2024-03-31T02:30:00+00:00"
        );
        assert_eq!(
            resolve("2024-06-01 12:00:00.123456+05:30").unwrap(),
            "2024-06-01T12:00:00.123456+05:30"
        );
        assert_eq!(
            resolve("2024-10-27 02:30:00").unwrap(),
            "2024-10-27T02:30:00+02:00"
        );
        assert_eq!(
            resolve("2024-01-01 00:00:10.5").unwrap(),
            "2024-01-01T00:00:10.500+01:00"
        );
    }

    #[test]
    fn rejects_other_forms() {
        for bad in [
            "2024-03-31T02:30",
            "24-03-31",
            "2024-13-01",
            "2024-02-30",
            "2024-03-31 25:00:00",
            "2024-03-31 10:00:00+24:00",
            "2024-03-31 10:00:00.1234567",
            "2024-03-31 10:00:00 ",
            "２０２４-03-31",
            "",
        ] {
            let err = resolve(bad).unwrap_err();
            assert!(
                matches!(&err, TriggerError::InvalidDate { argument: "run_date", input, .. } if input == bad),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn aware_values_keep_their_zone() {
        let instant = Berlin.with_ymd_and_hms(2024, 5, 1, 9, 0, 0).unwrap();
        let spec = DateSpec::from(instant);
        assert_eq!(spec.own_zone(), Some(Zone::Named(Berlin)));
        let resolved = spec.resolve(Zone::UTC, "run_date").unwrap();
        assert_eq!(resolved.zone, Zone::Named(Berlin));
        assert_eq!(DateSpec::from("2024-05-01").own_zone(), None);
    }

    #[cfg(feature = "conformance")]
    #[test]
    fn iso_dates() {
        assert_eq!(
            parse_iso_date("2024-02-29", "start_date").unwrap(),
            NaiveDate::from_ymd_opt(2024, 2, 29).unwrap()
        );
        assert!(parse_iso_date("2023-02-29", "start_date").is_err());
        assert!(parse_iso_date("2024-2-9", "start_date").is_err());
    }
}

//! Time zones and wall-clock arithmetic as APScheduler 3.x does them with Python's `zoneinfo`.
//!
//! APScheduler's fire times depend on how Python treats an aware `datetime`: a wall clock
//! plus a `fold` bit plus a zone. A wall time inside a DST gap is representable (it takes the
//! offset from *before* the transition when `fold=0`), `datetime + timedelta` is wall-clock
//! arithmetic, and two datetimes of the same zone compare by wall clock alone. The cron search
//! relies on all of that, so [`ZonedDateTime`] reproduces it on top of `chrono-tz`.

#[cfg(any(feature = "interval", feature = "cron", feature = "combining"))]
use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

#[cfg(any(
    feature = "date",
    feature = "interval",
    feature = "cron",
    feature = "calendar-interval"
))]
use chrono::Timelike;
use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, Offset, TimeZone, Utc};
#[cfg(feature = "date")]
use chrono_tz::OffsetName;
use chrono_tz::Tz;
#[cfg(any(feature = "interval", feature = "cron"))]
use scheduler_core::SearchExhausted;
#[cfg(any(
    feature = "date",
    feature = "interval",
    feature = "cron",
    feature = "calendar-interval",
    feature = "combining"
))]
use {
    crate::budget,
    chrono::{LocalResult, TimeDelta},
    chrono_tz::GapInfo,
};

use crate::TriggerError;

/// The time zone of a trigger or of a date: an IANA zone or a fixed UTC offset.
///
/// Fixed offsets come from date strings with an explicit offset
/// (`2024-05-01T09:00:00+05:30`) and from `DateTime<FixedOffset>` values; APScheduler keeps
/// such a date in its own offset, and so does this crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Zone {
    /// A zone of the IANA database, with its daylight-saving rules.
    Named(Tz),
    /// A fixed offset from UTC.
    Fixed(FixedOffset),
}

impl Zone {
    /// UTC.
    pub const UTC: Zone = Zone::Named(Tz::UTC);

    /// The offset from UTC at an instant.
    pub fn offset_at(&self, instant: DateTime<Utc>) -> FixedOffset {
        self.offset_from_utc(instant.naive_utc())
    }

    /// `instant` as wall-clock time in this zone.
    pub fn to_local(&self, instant: DateTime<Utc>) -> DateTime<FixedOffset> {
        instant.with_timezone(&self.offset_at(instant))
    }

    pub(crate) fn offset_from_utc(&self, utc: NaiveDateTime) -> FixedOffset {
        match self {
            Zone::Fixed(offset) => *offset,
            Zone::Named(Tz::UTC) => FixedOffset::east_opt(0).expect("zero offset"),
            Zone::Named(tz) => {
                #[cfg(any(
                    feature = "date",
                    feature = "interval",
                    feature = "cron",
                    feature = "calendar-interval",
                    feature = "combining"
                ))]
                budget::charge(lookup_steps(utc));
                let (probe, _) = beyond_table(*tz, utc);
                tz.offset_from_utc_datetime(&probe).fix()
            }
        }
    }

    /// Which offsets a wall-clock time can have here.
    #[cfg(any(
        feature = "date",
        feature = "interval",
        feature = "cron",
        feature = "calendar-interval",
        feature = "combining"
    ))]
    pub(crate) fn offset_from_local(&self, wall: NaiveDateTime) -> LocalOffset {
        let tz = match self {
            Zone::Fixed(offset) => return LocalOffset::Single(*offset),
            Zone::Named(Tz::UTC) => {
                return LocalOffset::Single(FixedOffset::east_opt(0).expect("zero offset"));
            }
            Zone::Named(tz) => *tz,
        };
        budget::charge(2 * lookup_steps(wall));
        let (probe, _) = beyond_table(tz, wall);
        match tz.offset_from_local_datetime(&probe) {
            LocalResult::Single(offset) => LocalOffset::Single(offset.fix()),
            LocalResult::Ambiguous(first, second) => LocalOffset::Fold {
                first: first.fix(),
                second: second.fix(),
            },
            LocalResult::None => {
                let gap = GapInfo::new(&probe, &tz);
                let before = gap.as_ref().and_then(|g| g.begin.map(|(_, o)| o.fix()));
                let after = gap.as_ref().and_then(|g| g.end.map(|dt| dt.offset().fix()));
                // The bundled data always brackets a gap; fall back to the offsets a day
                // away (no zone changes offset twice within a day) just in case.
                let before = before.unwrap_or_else(|| {
                    tz.offset_from_utc_datetime(&(probe - TimeDelta::days(1)))
                        .fix()
                });
                let after = after.unwrap_or_else(|| {
                    tz.offset_from_utc_datetime(&(probe + TimeDelta::days(1)))
                        .fix()
                });
                LocalOffset::Gap { before, after }
            }
        }
    }

    /// The zone abbreviation at an instant, as Python's `%Z` prints it (`CEST`, `+1030`,
    /// `UTC+05:30` for a fixed offset).
    #[cfg(feature = "date")]
    pub(crate) fn abbreviation(&self, utc: NaiveDateTime) -> String {
        match self {
            Zone::Fixed(offset) if offset.local_minus_utc() == 0 => "UTC".to_owned(),
            Zone::Fixed(offset) => format!("UTC{}", format_offset(*offset)),
            Zone::Named(tz) => {
                let (probe, _) = beyond_table(*tz, utc);
                let offset = tz.offset_from_utc_datetime(&probe);
                match offset.abbreviation() {
                    Some(name) => name.to_owned(),
                    // Numeric abbreviations such as "+1030" are stored without a name.
                    None => offset.to_string(),
                }
            }
        }
    }
}

impl From<Tz> for Zone {
    fn from(tz: Tz) -> Self {
        Zone::Named(tz)
    }
}

impl From<FixedOffset> for Zone {
    fn from(offset: FixedOffset) -> Self {
        Zone::Fixed(offset)
    }
}

impl From<Utc> for Zone {
    fn from(_: Utc) -> Self {
        Zone::UTC
    }
}

impl fmt::Display for Zone {
    /// The IANA name, or the offset as `+05:30`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Zone::Named(tz) => f.write_str(tz.name()),
            Zone::Fixed(offset) => f.write_str(&format_offset(*offset)),
        }
    }
}

impl FromStr for Zone {
    type Err = TriggerError;

    /// Parses an IANA name (`Europe/Berlin`, `UTC`) or an offset (`+05:30`, `-03:00`).
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        if let Some(offset) = parse_offset(name) {
            return Ok(Zone::Fixed(offset));
        }
        name.parse::<Tz>()
            .map(Zone::Named)
            .map_err(|_| TriggerError::UnknownTimeZone {
                name: name.to_owned(),
            })
    }
}

impl serde::Serialize for Zone {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Zone {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// `+05:30`, `-03:30`, `+00:00` (seconds only when present).
pub(crate) fn format_offset(offset: FixedOffset) -> String {
    let total = offset.local_minus_utc();
    let sign = if total < 0 { '-' } else { '+' };
    let total = total.unsigned_abs();
    let (hours, minutes, seconds) = (total / 3600, total / 60 % 60, total % 60);
    if seconds == 0 {
        format!("{sign}{hours:02}:{minutes:02}")
    } else {
        format!("{sign}{hours:02}:{minutes:02}:{seconds:02}")
    }
}

/// Parses `±HH:MM`.
pub(crate) fn parse_offset(text: &str) -> Option<FixedOffset> {
    let bytes = text.as_bytes();
    if bytes.len() != 6 || bytes[3] != b':' || !matches!(bytes[0], b'+' | b'-') {
        return None;
    }
    let digits = |range: std::ops::Range<usize>| -> Option<i32> {
        let part = &text[range];
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let seconds = digits(1..3)? * 3600 + digits(4..6)? * 60;
    let seconds = if bytes[0] == b'-' { -seconds } else { seconds };
    FixedOffset::east_opt(seconds)
}

/// The last year for which `chrono-tz` lists transitions; after it, it repeats the last
/// offset forever, while Python's `zoneinfo` follows the zone's POSIX rule.
const LAST_TABLE_YEAR: i32 = 2099;

/// Maps a time after [`LAST_TABLE_YEAR`] to the same month, day and time of an equivalent
/// year in 2072..=2099 (same leap-ness and weekday of 1 January), where `chrono-tz` still
/// has the zone's yearly transitions. A POSIX rule ("second Sunday of March at 02:00")
/// depends only on that calendar layout, so the offsets are the same. Zones that stopped
/// changing offsets before the end of the table are left alone.
fn beyond_table(tz: Tz, at: NaiveDateTime) -> (NaiveDateTime, i32) {
    let year = at.year();
    if year <= LAST_TABLE_YEAR || !has_yearly_rule(tz) {
        return (at, 0);
    }
    let twin = equivalent_year(year);
    match at.with_year(twin) {
        Some(mapped) => (mapped, year - twin),
        None => (at, 0),
    }
}

fn has_yearly_rule(tz: Tz) -> bool {
    let probe = |month| {
        let at = NaiveDate::from_ymd_opt(LAST_TABLE_YEAR, month, 15)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .expect("valid date");
        tz.offset_from_utc_datetime(&at).fix()
    };
    probe(1) != probe(7)
}

/// A year in 2072..=2099 with the same calendar as `year`.
fn equivalent_year(year: i32) -> i32 {
    let key = |y: i32| {
        let jan1 = NaiveDate::from_ymd_opt(y, 1, 1).expect("valid year");
        usize::from(jan1.leap_year()) * 7 + jan1.weekday().num_days_from_monday() as usize
    };
    static TWINS: std::sync::OnceLock<[i32; 14]> = std::sync::OnceLock::new();
    let twins = TWINS.get_or_init(|| {
        let mut twins = [0; 14];
        // 28 consecutive years of one century hold every calendar.
        for y in LAST_TABLE_YEAR - 27..=LAST_TABLE_YEAR {
            twins[key(y)] = y;
        }
        twins
    });
    twins[key(year)]
}

/// The offsets a wall-clock time can have in a zone.
#[cfg(any(
    feature = "date",
    feature = "interval",
    feature = "cron",
    feature = "calendar-interval",
    feature = "combining"
))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LocalOffset {
    /// The time exists once.
    Single(FixedOffset),
    /// The time falls in a gap (clocks jumped forward over it).
    Gap {
        before: FixedOffset,
        after: FixedOffset,
    },
    /// The time exists twice (clocks went back).
    Fold {
        first: FixedOffset,
        second: FixedOffset,
    },
}

/// Python's `fold` bit, or where to read it from when it is needed.
///
/// Working it out costs a zone lookup, and the cron search rarely needs it: a value built
/// from an instant and the values `set` derives from it share the instant's fold, which
/// only matters if one of them lands on a repeated or missing wall time.
#[cfg(any(
    feature = "date",
    feature = "interval",
    feature = "cron",
    feature = "calendar-interval",
    feature = "combining"
))]
#[derive(Debug, Clone, Copy)]
enum Fold {
    Known(bool),
    /// The fold of the real local time `wall` with UTC offset `offset`.
    OfLocalTime {
        wall: NaiveDateTime,
        offset: FixedOffset,
    },
}

/// An aware datetime with Python's semantics: wall clock, `fold` and zone.
///
/// Only values built by [`from_utc`](Self::from_utc) are "canonical" (the real local time
/// of an instant); [`with_wall`](Self::with_wall) and [`add_wall`](Self::add_wall) can
/// produce a non-existent wall time, exactly as APScheduler does.
#[cfg(any(
    feature = "date",
    feature = "interval",
    feature = "cron",
    feature = "calendar-interval",
    feature = "combining"
))]
#[derive(Debug, Clone, Copy)]
pub(crate) struct ZonedDateTime {
    pub(crate) wall: NaiveDateTime,
    fold: Fold,
    pub(crate) zone: Zone,
    /// The offset when already known (from the instant this was built from), which saves
    /// the cron search most of its zone lookups.
    known_offset: Option<FixedOffset>,
}

/// Equal when wall clock, fold and zone are: the same Python `datetime`.
#[cfg(any(
    feature = "date",
    feature = "interval",
    feature = "cron",
    feature = "calendar-interval",
    feature = "combining"
))]
impl PartialEq for ZonedDateTime {
    fn eq(&self, other: &Self) -> bool {
        self.wall == other.wall && self.zone == other.zone && self.fold() == other.fold()
    }
}

#[cfg(any(
    feature = "date",
    feature = "interval",
    feature = "cron",
    feature = "calendar-interval",
    feature = "combining"
))]
impl Eq for ZonedDateTime {}

#[cfg(any(
    feature = "date",
    feature = "interval",
    feature = "cron",
    feature = "calendar-interval",
    feature = "combining"
))]
impl ZonedDateTime {
    /// `datetime.fromtimestamp(..., tz)` / `astimezone(tz)`: the real local time of an
    /// instant, with `fold=1` for the second pass of a repeated wall time.
    pub(crate) fn from_utc(utc: NaiveDateTime, zone: Zone) -> Self {
        let offset = zone.offset_from_utc(utc);
        let wall = utc + offset;
        ZonedDateTime {
            wall,
            fold: Fold::OfLocalTime { wall, offset },
            zone,
            known_offset: Some(offset),
        }
    }

    #[cfg(any(
        feature = "date",
        feature = "interval",
        feature = "cron",
        feature = "calendar-interval",
        feature = "combining"
    ))]
    pub(crate) fn from_instant(instant: DateTime<Utc>, zone: Zone) -> Self {
        Self::from_utc(instant.naive_utc(), zone)
    }

    /// APScheduler's `localize`: attach the zone with `fold=0`, then normalise through the
    /// timestamp, so a gap time moves forward by the gap and a repeated time takes its first
    /// occurrence.
    #[cfg(any(
        feature = "date",
        feature = "interval",
        feature = "cron",
        feature = "calendar-interval"
    ))]
    pub(crate) fn localize(wall: NaiveDateTime, zone: Zone) -> Self {
        let raw = Self::with_wall(wall, false, zone);
        Self::from_utc(raw.utc(), zone)
    }

    /// `datetime(..., tzinfo=zone, fold=fold)`: the wall time as given, even in a gap.
    pub(crate) fn with_wall(wall: NaiveDateTime, fold: bool, zone: Zone) -> Self {
        ZonedDateTime {
            wall,
            fold: Fold::Known(fold),
            zone,
            known_offset: None,
        }
    }

    /// `datetime(..., tzinfo=zone, fold=source.fold)`: the wall time as given, with the fold
    /// bit of `source` (read only if the wall time turns out to need it).
    #[cfg(feature = "cron")]
    pub(crate) fn with_wall_fold_of(wall: NaiveDateTime, source: &Self, zone: Zone) -> Self {
        ZonedDateTime {
            wall,
            fold: source.fold,
            zone,
            known_offset: None,
        }
    }

    /// Python's `fold`: 1 for the second pass of a repeated wall time.
    pub(crate) fn fold(&self) -> bool {
        match self.fold {
            Fold::Known(fold) => fold,
            Fold::OfLocalTime { wall, offset } => matches!(
                self.zone.offset_from_local(wall),
                LocalOffset::Fold { first, second } if offset == second && first != second
            ),
        }
    }

    /// Reads back a wall time and offset produced by this crate: the wall time is taken in
    /// `zone` when one of its `fold` readings has that offset (this is how a non-existent
    /// time APScheduler returned comes back), otherwise in the fixed offset itself.
    pub(crate) fn from_local(local: DateTime<FixedOffset>, zone: Zone) -> Self {
        let wall = local.naive_local();
        let offset = *local.offset();
        for fold in [false, true] {
            let candidate = Self::with_wall(wall, fold, zone);
            if candidate.offset() == offset {
                return candidate;
            }
        }
        Self::with_wall(wall, false, Zone::Fixed(offset))
    }

    /// `utcoffset()`: outside a transition the only offset; in a gap or a fold, the offset
    /// from before the transition for `fold=0` and after it for `fold=1`.
    pub(crate) fn offset(&self) -> FixedOffset {
        if let Some(offset) = self.known_offset {
            return offset;
        }
        match self.zone.offset_from_local(self.wall) {
            LocalOffset::Single(offset) => offset,
            LocalOffset::Gap { before, after } => {
                if self.fold() {
                    after
                } else {
                    before
                }
            }
            LocalOffset::Fold { first, second } => {
                if self.fold() {
                    second
                } else {
                    first
                }
            }
        }
    }

    /// The instant, as a naive UTC date and time.
    pub(crate) fn utc(&self) -> NaiveDateTime {
        self.wall - self.offset()
    }

    pub(crate) fn instant(&self) -> DateTime<Utc> {
        self.utc().and_utc()
    }

    /// The wall time with the offset Python reports for it.
    pub(crate) fn to_local(self) -> DateTime<FixedOffset> {
        let offset = self.offset();
        DateTime::from_naive_utc_and_offset(self.wall - offset, offset)
    }

    /// `astimezone(zone)`, which returns the value itself when the zone is already its own.
    #[cfg(feature = "cron")]
    pub(crate) fn astimezone(self, zone: Zone) -> Self {
        if self.zone == zone {
            self
        } else {
            Self::from_utc(self.utc(), zone)
        }
    }

    /// `timestamp()`: float seconds since the epoch.
    #[cfg(feature = "interval")]
    pub(crate) fn timestamp(&self) -> f64 {
        crate::pytime::seconds_from_micros(micros_since_epoch(self.utc()))
    }

    /// `self + timedelta`: wall-clock arithmetic; the result has `fold=0`.
    #[cfg(any(
        feature = "interval",
        feature = "cron",
        feature = "calendar-interval",
        feature = "combining"
    ))]
    pub(crate) fn add_wall(&self, delta: TimeDelta) -> Option<Self> {
        let wall = self.wall.checked_add_signed(delta)?;
        Some(Self::with_wall(wall, false, self.zone))
    }

    /// APScheduler's `datetime_utc_add`: add in UTC, convert back (absolute time).
    #[cfg(any(feature = "cron", feature = "calendar-interval", feature = "combining"))]
    pub(crate) fn utc_add(&self, delta: TimeDelta) -> Option<Self> {
        let utc = self.utc().checked_add_signed(delta)?;
        Some(Self::from_utc(utc, self.zone))
    }

    /// Whether the wall date lies within Python's `datetime` range (years 1..=9999).
    pub(crate) fn in_python_range(&self) -> bool {
        let year = self.wall.year();
        // Offsets are less than a day, so only the first and last year need the instant.
        (2..=9998).contains(&year)
            || ((1..=9999).contains(&year) && (1..=9999).contains(&self.utc().year()))
    }

    /// Python's `<`, `>`: wall clocks when both share a zone, instants otherwise.
    #[cfg(any(feature = "interval", feature = "cron", feature = "combining"))]
    pub(crate) fn py_cmp(&self, other: &Self) -> Ordering {
        if self.zone == other.zone {
            return self.wall.cmp(&other.wall);
        }
        let (a, b) = (self.offset(), other.offset());
        if a == b {
            self.wall.cmp(&other.wall)
        } else {
            self.utc().cmp(&other.utc())
        }
    }

    /// Python's `==`, including PEP 495's rule that a time whose offset depends on `fold` is
    /// never equal to a time of another zone.
    #[cfg(feature = "cron")]
    pub(crate) fn py_eq(&self, other: &Self) -> bool {
        if self.zone == other.zone {
            return self.wall == other.wall;
        }
        if self.py_cmp(other) != Ordering::Equal {
            return false;
        }
        !(self.depends_on_fold() || other.depends_on_fold())
    }

    #[cfg(feature = "cron")]
    fn depends_on_fold(&self) -> bool {
        let flipped = Self::with_wall(self.wall, !self.fold(), self.zone);
        flipped.offset() != self.offset()
    }

    /// `strftime("%Y-%m-%d %H:%M:%S %Z")`, APScheduler's `datetime_repr`.
    #[cfg(feature = "date")]
    pub(crate) fn repr(&self) -> String {
        format!(
            "{} {}",
            self.wall.format("%Y-%m-%d %H:%M:%S"),
            self.zone.abbreviation(self.utc())
        )
    }

    /// ISO 8601 with offset and, for named zones, the zone in brackets (RFC 9557):
    /// `2024-05-01T09:00:00+02:00[Europe/Berlin]`. Used for saved states.
    #[cfg(any(feature = "date", feature = "interval", feature = "cron"))]
    pub(crate) fn to_state_string(self) -> String {
        let local = self.to_local();
        let text = local.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false);
        match self.zone {
            Zone::Named(tz) => format!("{text}[{}]", tz.name()),
            Zone::Fixed(_) => text,
        }
    }

    /// Reads [`to_state_string`](Self::to_state_string)'s format back.
    #[cfg(any(feature = "date", feature = "interval", feature = "cron"))]
    pub(crate) fn from_state_string(text: &str) -> Result<Self, String> {
        let (stamp, zone) = match text.split_once('[') {
            Some((stamp, rest)) => {
                let name = rest
                    .strip_suffix(']')
                    .ok_or_else(|| format!("missing ']' in {text:?}"))?;
                let zone: Zone = name.parse().map_err(|e: TriggerError| e.to_string())?;
                (stamp, Some(zone))
            }
            None => (text, None),
        };
        let local = DateTime::parse_from_rfc3339(stamp)
            .map_err(|e| format!("{stamp:?} is not an RFC 3339 date and time: {e}"))?;
        let zone = zone.unwrap_or(Zone::Fixed(*local.offset()));
        Ok(Self::from_local(local, zone))
    }
}

/// Microseconds since the epoch (sub-microsecond digits dropped, as Python has none).
#[cfg(feature = "interval")]
pub(crate) fn micros_since_epoch(utc: NaiveDateTime) -> i64 {
    let utc = utc.and_utc();
    utc.timestamp() * crate::pytime::MICROS + i64::from(utc.timestamp_subsec_micros())
}

/// The naive UTC date and time `micros` after the epoch.
#[cfg(feature = "interval")]
pub(crate) fn utc_from_micros(micros: i64) -> Option<NaiveDateTime> {
    DateTime::from_timestamp_micros(micros).map(|dt| dt.naive_utc())
}

/// An instant as APScheduler would hold it in `zone`: rounded up to a whole microsecond
/// (Python has no finer resolution; rounding up keeps "not before `now`"). `None` outside
/// Python's `datetime` range (years 1 to 9999), where APScheduler cannot compute at all.
#[cfg(any(
    feature = "date",
    feature = "interval",
    feature = "cron",
    feature = "calendar-interval"
))]
pub(crate) fn python_time(instant: DateTime<Utc>, zone: Zone) -> Option<ZonedDateTime> {
    let nanos = instant.nanosecond() % 1_000;
    let instant = match nanos {
        0 => instant,
        _ => instant.checked_add_signed(TimeDelta::nanoseconds(i64::from(1_000 - nanos)))?,
    };
    if !(1..=9999).contains(&instant.year()) {
        return None;
    }
    let value = ZonedDateTime::from_instant(instant, zone);
    value.in_python_range().then_some(value)
}

/// A local time handed back by a caller, read in `zone` (see
/// [`ZonedDateTime::from_local`]); `None` outside Python's range.
#[cfg(any(feature = "interval", feature = "cron", feature = "calendar-interval"))]
pub(crate) fn python_local(local: DateTime<FixedOffset>, zone: Zone) -> Option<ZonedDateTime> {
    let in_range = |year: i32| (1..=9999).contains(&year);
    if !in_range(local.to_utc().year()) || !in_range(local.naive_local().year()) {
        return None;
    }
    Some(ZonedDateTime::from_local(local, zone))
}

/// A trigger that answers from a previous fire time and "now", both as times in its own zone
/// (cron and interval). It gets [`Trigger`](scheduler_core::Trigger)'s and
/// [`LocalTrigger`](crate::LocalTrigger)'s answers from one search.
#[cfg(any(feature = "interval", feature = "cron"))]
pub(crate) trait ZonedSearch {
    /// The zone the search runs in.
    fn zone(&self) -> Zone;

    /// APScheduler's `get_next_fire_time`, on times in [`zone`](Self::zone).
    fn search_next(
        &self,
        previous: Option<ZonedDateTime>,
        now: ZonedDateTime,
    ) -> Result<Option<ZonedDateTime>, SearchExhausted>;

    /// [`search_next`](Self::search_next), never answering an instant at or before
    /// `previous`. APScheduler 3.x does in a few DST situations (a jittered time in a repeated
    /// hour, a non-existent time given back as `previous`), and its own scheduler then loops
    /// forever; here the search goes on from that instant to the next later one.
    fn search_forward(
        &self,
        previous: Option<ZonedDateTime>,
        now: ZonedDateTime,
    ) -> Result<Option<ZonedDateTime>, SearchExhausted> {
        let mut answer = self.search_next(previous, now)?;
        let Some(previous) = previous else {
            return Ok(answer);
        };
        // Searching again from just after the previous fire time (or the latest answer, never
        // going back) finds the next later instant.
        let mut from = previous;
        while let Some(stuck) = answer.filter(|a| a.utc() <= previous.utc()) {
            budget::step(1)?;
            if stuck.utc() > from.utc() {
                from = stuck;
            }
            let Some(after) = from.utc().checked_add_signed(TimeDelta::microseconds(1)) else {
                return Ok(None);
            };
            answer = self.search_next(Some(from), ZonedDateTime::from_utc(after, self.zone()))?;
            if answer.is_some_and(|a| a.utc() <= from.utc()) {
                // Not even past `from`: go on from the microsecond after it.
                from = ZonedDateTime::from_utc(after, self.zone());
            }
        }
        Ok(answer)
    }

    /// The answer as an instant.
    fn next_instant(
        &self,
        previous: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, SearchExhausted> {
        budget::call(|| {
            let previous = match previous {
                Some(previous) => match python_time(previous, self.zone()) {
                    Some(previous) => Some(previous),
                    None => return Ok(None),
                },
                None => None,
            };
            let Some(now) = python_time(now, self.zone()) else {
                return Ok(None);
            };
            Ok(self
                .search_forward(previous, now)?
                .map(|next| next.instant()))
        })
    }

    /// The answer as a local time, with `previous` as a local time too.
    fn next_local(
        &self,
        previous: Option<DateTime<FixedOffset>>,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<FixedOffset>>, SearchExhausted> {
        budget::call(|| {
            let previous = match previous {
                Some(previous) => match python_local(previous, self.zone()) {
                    Some(previous) => Some(previous),
                    None => return Ok(None),
                },
                None => None,
            };
            let Some(now) = python_time(now, self.zone()) else {
                return Ok(None);
            };
            Ok(self
                .search_forward(previous, now)?
                .map(ZonedDateTime::to_local))
        })
    }
}

/// The budget steps a lookup of a named zone's offset costs (an instant's; twice that for a
/// wall time's): more after 2099, where the year is first mapped to its equivalent.
#[cfg(any(
    feature = "date",
    feature = "interval",
    feature = "cron",
    feature = "calendar-interval",
    feature = "combining"
))]
fn lookup_steps(at: NaiveDateTime) -> u64 {
    if at.year() > LAST_TABLE_YEAR { 4 } else { 1 }
}

#[cfg(any(feature = "cron", feature = "calendar-interval"))]
mod transitions;

#[cfg(test)]
mod tests;

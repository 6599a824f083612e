//! APScheduler 3.x's cron search, step for step.
//!
//! `CronTrigger.get_next_fire_time` walks the fields from the most significant: when a
//! field has no allowed value at or after the current one it increments the next more
//! significant field (resetting the less significant ones to their minimum), when it has a
//! higher one it sets it. An increment adds the wall-clock difference in UTC (so crossing a
//! DST change shifts the wall clock, which is how a day whose midnight does not exist gets
//! skipped); a set builds the wall time directly (so a time inside a DST gap comes back with
//! the offset from before the gap). Week and day of week are not datetime components: the
//! search satisfies them by stepping the day. Matching APScheduler's answers in every DST
//! situation means doing exactly the same steps, so this is a transcription, on
//! [`ZonedDateTime`]'s Python semantics.
//!
//! The additions are a bound on work and two shortcuts that give 3.x's answer in fewer
//! steps. An expression that can never match again (say `month='feb', day=30`) makes
//! APScheduler scan every year up to 9999: every [`CHECK_AFTER`] steps the search asks
//! [`CronTrigger::next_matching_date`], a direct scan of the calendar that uses the 400-year
//! period of the Gregorian calendar, and answers `None` at once when no date can match; when
//! the matching date lies years ahead (a year step that meets the other fields only in rare
//! years, such as the common years among `2184/4`), the search jumps to where 3.x's own
//! search enters the years before it. A week or weekday that does not match makes 3.x step
//! day by day; while the zone's offset does not change those steps land on midnights, so
//! the month's calendar is scanned at once ([`CronTrigger::skip_days`]). The tests compare
//! both shortcuts with the plain search. Every move of the search, and every month the scan
//! looks at, is a step of the call's [budget](crate::budget).

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Timelike};

use scheduler_core::SearchExhausted;

use super::CronTrigger;
use super::field::{FieldKind, days_in_month, weekday_number};
use crate::budget;
use crate::zone::{LocalOffset, ZonedDateTime};

/// Steps after which (and every so many steps after that) the search checks that a matching
/// date still exists, and how far ahead it is.
const CHECK_AFTER: u64 = 2_000;

impl CronTrigger {
    /// `get_next_fire_time(previous, now)`, before jitter and `end_date` clipping.
    pub(super) fn search(
        &self,
        previous: Option<ZonedDateTime>,
        now: ZonedDateTime,
    ) -> Result<Option<ZonedDateTime>, SearchExhausted> {
        let micro = TimeDelta::microseconds(1);
        let start = match previous {
            Some(previous) => {
                let Some(after) = previous.utc().checked_add_signed(micro) else {
                    return Ok(None);
                };
                let start = ZonedDateTime::from_utc(now.utc().min(after), self.zone);
                if start.py_eq(&previous) {
                    let Some(start) = start.utc_add(micro) else {
                        return Ok(None);
                    };
                    start
                } else {
                    start
                }
            }
            None => match &self.start {
                Some(start) => ZonedDateTime::from_utc(now.utc().max(start.utc()), self.zone),
                None => now,
            },
        };
        // `datetime_ceil`: round up to a whole second, in the value's own zone.
        let fraction = start.wall.nanosecond() / 1_000;
        let start = if fraction > 0 {
            let ceil = TimeDelta::seconds(1) - TimeDelta::microseconds(i64::from(fraction));
            let Some(start) = start.utc_add(ceil) else {
                return Ok(None);
            };
            start
        } else {
            start
        };
        let mut date = start.astimezone(self.zone);
        if !date.in_python_range() {
            return Ok(None);
        }

        let mut fieldnum: isize = 0;
        let (first_step, mut next_check) = (budget::used(), CHECK_AFTER);
        while (0..8).contains(&fieldnum) {
            budget::step(1)?;
            if budget::used() - first_step >= next_check {
                next_check += CHECK_AFTER;
                let Some(found) = self.next_matching_date(date.wall.date())? else {
                    return Ok(None);
                };
                if let Some(entered) = self.entry_to_years_before(&date, found)?
                    && take(Shortcut::YearJump)
                {
                    (date, fieldnum) = (entered, 1);
                    if self
                        .end
                        .as_ref()
                        .is_some_and(|end| date.py_cmp(end).is_gt())
                    {
                        return Ok(None);
                    }
                    continue;
                }
            }
            let index = fieldnum as usize;
            let kind = FieldKind::ALL[index];
            let field = &self.fields[index];
            if field.allows_any() && (kind != FieldKind::Year || date.wall.year() >= 1970) {
                // Every value matches: APScheduler's step would change nothing.
                fieldnum += 1;
            } else {
                let current = value(kind, &date.wall);
                let moved = match field.next_value(current, date.wall.date()) {
                    Some(next) if next == current => Some((date, fieldnum + 1)),
                    // The week or weekday does not match: the next day.
                    _ if !kind.is_real() => match self.skip_days(&date)? {
                        Some(skipped) if take(Shortcut::DaySkip) => skipped,
                        _ => self.increment(date, FieldKind::Day as isize),
                    },
                    None => self.increment(date, fieldnum - 1),
                    Some(next) => self.set(date, index, next).map(|date| (date, fieldnum + 1)),
                };
                let Some(moved) = moved else {
                    return Ok(None);
                };
                (date, fieldnum) = moved;
            }
            if let Some(end) = &self.end
                && date.py_cmp(end).is_gt()
            {
                return Ok(None);
            }
        }
        Ok(Some(date))
    }

    /// `_increment_field_value`: add one to field `fieldnum` (carrying into more significant
    /// fields at their maximum), reset the less significant ones, and add the wall-clock
    /// difference in UTC. `None` when the year would pass 9999 (APScheduler's loop then
    /// ends without a fire time) or the date leaves Python's range.
    fn increment(
        &self,
        date: ZonedDateTime,
        mut fieldnum: isize,
    ) -> Option<(ZonedDateTime, isize)> {
        let mut values = [0u32; 8];
        let mut i: isize = 0;
        while i < 8 {
            if i < 0 {
                return None;
            }
            let index = i as usize;
            let kind = FieldKind::ALL[index];
            if !kind.is_real() {
                if i == fieldnum {
                    fieldnum -= 1;
                    i -= 1;
                } else {
                    i += 1;
                }
                continue;
            }
            if i < fieldnum {
                values[index] = value(kind, &date.wall);
                i += 1;
            } else if i > fieldnum {
                values[index] = kind.min();
                i += 1;
            } else {
                let current = value(kind, &date.wall);
                if current == max(kind, &date.wall) {
                    fieldnum -= 1;
                    i -= 1;
                } else {
                    values[index] = current + 1;
                    i += 1;
                }
            }
        }
        if fieldnum < 0 {
            return None;
        }
        let wall = wall_from(&values)?;
        let next = date.utc_add(wall - date.wall)?;
        next.in_python_range().then_some((next, fieldnum))
    }

    /// `_set_field_value`: the wall time with field `index` set to `new_value` and the less
    /// significant fields at their minimum, keeping `fold` (no normalisation).
    fn set(&self, date: ZonedDateTime, index: usize, new_value: u32) -> Option<ZonedDateTime> {
        let mut values = [0u32; 8];
        for (i, kind) in FieldKind::ALL.into_iter().enumerate() {
            if kind.is_real() {
                values[i] = match i.cmp(&index) {
                    std::cmp::Ordering::Less => value(kind, &date.wall),
                    std::cmp::Ordering::Greater => kind.min(),
                    std::cmp::Ordering::Equal => new_value,
                };
            }
        }
        let wall = wall_from(&values)?;
        Some(ZonedDateTime::with_wall_fold_of(wall, &date, self.zone))
    }

    /// Where APScheduler's search will enter the years that lead to `found`, the first
    /// matching date: 1 January, midnight, of the first year in the run of allowed years
    /// that ends in `found`'s year. The year before that run is not allowed, so the search
    /// gets there by setting the year field, from any date before it; jumping there skips
    /// only years without a match. `None` (no jump) when that year is not after `date`'s,
    /// or when that midnight is repeated or skipped in the zone (the answer would then
    /// depend on the fold the search carries at that moment).
    fn entry_to_years_before(
        &self,
        date: &ZonedDateTime,
        found: NaiveDate,
    ) -> Result<Option<ZonedDateTime>, SearchExhausted> {
        let year_field = &self.fields[0];
        let current = date.wall.year();
        let mut first = found.year();
        while first > current && year_field.allows_year(first - 1) {
            budget::step(1)?;
            first -= 1;
        }
        let Some(midnight) =
            NaiveDate::from_ymd_opt(first, 1, 1).and_then(|d| d.and_hms_opt(0, 0, 0))
        else {
            return Ok(None);
        };
        if first <= current
            || !matches!(
                self.zone.offset_from_local(midnight),
                LocalOffset::Single(_)
            )
        {
            return Ok(None);
        }
        Ok(self.set(*date, 0, first as u32))
    }

    /// The day-by-day walk over days whose ISO week or weekday does not match, taken at
    /// once. From `date` (its week or weekday field just failed) 3.x increments the day,
    /// sets it forward where the day field skips days, until a day of this month matches
    /// the day, week and weekday fields (the search goes on at the hour), or it carries into
    /// the next month. While the zone's offset does not change, every increment lands on a
    /// midnight, so the walk is a scan of the calendar; when the offset changes on the way,
    /// the walk goes as far as the last day it stands on before the change. `None` (take the
    /// single step) when there is nothing to skip.
    fn skip_days(
        &self,
        date: &ZonedDateTime,
    ) -> Result<Option<Option<(ZonedDateTime, isize)>>, SearchExhausted> {
        let [_, _, day_field, week_field, weekday_field, ..] = &self.fields;
        let today = date.wall.date();
        let last = days_in_month(today.year(), today.month());
        let mut day = today.day() + 1;
        let matching = loop {
            if day > last {
                break None;
            }
            let candidate = today.with_day(day).expect("a day of the month");
            if day_field.allows(day, candidate)
                && week_field.allows(candidate.iso_week().week(), candidate)
                && weekday_field.allows(weekday_number(candidate.weekday()), candidate)
            {
                break Some(candidate);
            }
            day += 1;
        };
        budget::step(1 + u64::from(day - today.day()) / 8)?;
        let Some(stop) = matching.or_else(|| today.with_day(last).filter(|&l| l > today)) else {
            return Ok(None);
        };
        let midnight = |day: NaiveDate| date.utc_add(day.and_time(NaiveTime::MIN) - date.wall);
        let Some(stop_at) = midnight(stop) else {
            return Ok(None);
        };
        let Some(change) = self.zone.next_transition(date.utc(), stop_at.utc())? else {
            return Ok(Some(match matching {
                Some(_) => Some((stop_at, FieldKind::Hour as isize)),
                None => self.increment(stop_at, FieldKind::Month as isize),
            }));
        };
        // The walk up to the last day it stands on before the change (a day the day field
        // allows); the single steps take it on from there.
        let mut day = stop.day();
        while day > today.day() + 1 {
            day -= 1;
            let candidate = today.with_day(day).expect("a day of the month");
            if day_field.allows(day, candidate)
                && let Some(at) = midnight(candidate)
                && at.utc() < change
            {
                return Ok(Some(Some((at, FieldKind::Week as isize))));
            }
        }
        Ok(None)
    }

    /// The first date on or after `from` whose year, month, day, ISO week and weekday all
    /// match, or `None` when there is none up to 9999.
    ///
    /// Everything these fields look at repeats every 400 years (146,097 days, a whole number
    /// of weeks), so a year whose counterpart 400 years earlier was scanned in full without
    /// a match is skipped: at most 400 full years are scanned.
    pub(super) fn next_matching_date(
        &self,
        from: NaiveDate,
    ) -> Result<Option<NaiveDate>, SearchExhausted> {
        let [
            year_field,
            month_field,
            day_field,
            week_field,
            weekday_field,
            ..,
        ] = &self.fields;
        let mut scanned = [false; 400];
        let mut year = from.year().max(1970) as u32;
        let first_year = year;
        while let Some(candidate) = year_field.next_value(year, from) {
            year = candidate;
            let class = year as usize % 400;
            if year != first_year && scanned[class] {
                year += 1;
                continue;
            }
            let Some(year_start) = NaiveDate::from_ymd_opt(year as i32, 1, 1) else {
                return Ok(None);
            };
            let start = if year == first_year {
                from.max(year_start)
            } else {
                year_start
            };
            let mut month = start.month();
            while let Some(m) = month_field.next_value(month, start) {
                budget::step(1)?;
                let first_day = if year == first_year && m == start.month() {
                    start.day()
                } else {
                    1
                };
                let mut days = day_field.day_mask(year as i32, m) >> first_day << first_day;
                while days != 0 {
                    let day = days.trailing_zeros();
                    days &= days - 1;
                    let Some(date) = NaiveDate::from_ymd_opt(year as i32, m, day) else {
                        continue;
                    };
                    if week_field.allows(date.iso_week().week(), date)
                        && weekday_field.allows(weekday_number(date.weekday()), date)
                    {
                        return Ok(Some(date));
                    }
                }
                month = m + 1;
            }
            if year != first_year {
                scanned[class] = true;
            }
            year += 1;
        }
        Ok(None)
    }
}

/// The two ways the search skips steps whose outcome is known.
#[derive(Clone, Copy)]
pub(super) enum Shortcut {
    /// [`CronTrigger::entry_to_years_before`].
    YearJump,
    /// [`CronTrigger::skip_days`].
    DaySkip,
}

#[cfg(test)]
thread_local! {
    /// Set by the tests that compare the search with and without its shortcuts.
    pub(super) static SHORTCUTS_OFF: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// The shortcuts taken on this thread (year jumps, day skips), for those tests to see
    /// that they test some.
    pub(super) static SHORTCUTS_TAKEN: std::cell::Cell<[u32; 2]> = const { std::cell::Cell::new([0; 2]) };
}

fn take(shortcut: Shortcut) -> bool {
    #[cfg(test)]
    {
        let off = SHORTCUTS_OFF.with(std::cell::Cell::get);
        if !off {
            SHORTCUTS_TAKEN.with(|taken| {
                let mut counts = taken.get();
                counts[shortcut as usize] += 1;
                taken.set(counts);
            });
        }
        !off
    }
    #[cfg(not(test))]
    {
        let _ = shortcut;
        true
    }
}

/// APScheduler's `field.get_value(date)`.
fn value(kind: FieldKind, wall: &NaiveDateTime) -> u32 {
    match kind {
        FieldKind::Year => wall.year() as u32,
        FieldKind::Month => wall.month(),
        FieldKind::Day => wall.day(),
        FieldKind::Week => wall.iso_week().week(),
        FieldKind::DayOfWeek | FieldKind::CrontabDayOfWeek => weekday_number(wall.weekday()),
        FieldKind::Hour => wall.hour(),
        FieldKind::Minute => wall.minute(),
        FieldKind::Second => wall.second(),
    }
}

/// APScheduler's `field.get_max(date)`.
fn max(kind: FieldKind, wall: &NaiveDateTime) -> u32 {
    match kind {
        FieldKind::Day => days_in_month(wall.year(), wall.month()),
        _ => kind.max(),
    }
}

fn wall_from(values: &[u32; 8]) -> Option<NaiveDateTime> {
    NaiveDate::from_ymd_opt(values[0] as i32, values[1], values[2])?
        .and_hms_opt(values[5], values[6], values[7])
}

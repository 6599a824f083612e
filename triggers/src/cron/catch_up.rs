//! Catching up: how many fire times a cron trigger has from one of them up to a time, and the
//! last one, without enumerating them.
//!
//! Between two offset changes of the zone, APScheduler's search is plain cron on the wall
//! clock: its fire times are exactly the wall times whose fields all match. Those are counted
//! by calendar arithmetic: for each month the days that match, times the times of day that
//! match (a whole year at once for years whose calendar was seen before). At an offset change
//! the search does what 3.x does (skips a gap it crosses by stepping, fires a time set into a
//! gap shifted, fires a repeated hour twice, can skip a day after the change), so the
//! catch-up runs that very search for the one step that crosses it, and counts on from there.
//! The property tests check the result against step-by-step enumeration, DST included.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Timelike, Utc};
use scheduler_core::{CatchUp, SearchExhausted};

use super::CronTrigger;
use super::field::{days_in_month, weekday_number};
use crate::budget;
use crate::zone::{ZonedDateTime, ZonedSearch, python_time};

/// Steps kept for the final answer (the next fire time after the last one reached).
const RESERVE: u64 = 6_000;
/// The steps looking at the days of one month costs.
const MONTH_STEPS: u64 = 3;
/// What working out the ISO weeks of a month's days adds.
const WEEK_STEPS: u64 = 10;
/// The most years one count looks at; a longer stretch is counted in pieces.
const YEARS_PER_COUNT: i64 = 1_000;

impl CronTrigger {
    /// [`Trigger::catch_up`](scheduler_core::Trigger::catch_up) for cron. It counts rather
    /// than walks, so it needs no bound on fire times; it stops early only when the call's
    /// step budget runs low (then `next` is still at or before `until`).
    pub(super) fn count_fires(
        &self,
        first: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<CatchUp, SearchExhausted> {
        let zone = self.zone;
        let (Some(start), Some(now)) = (python_time(first, zone), python_time(until, zone)) else {
            return Ok(CatchUp {
                count: 1,
                last: first,
                next: None,
            });
        };
        // Fire times are whole microseconds: at or before `until` is at or before its
        // microsecond (`now` is rounded up, as the search wants it).
        let until = until.naive_utc();
        let until = until - TimeDelta::nanoseconds(i64::from(until.nanosecond() % 1_000));
        let limit = match self.end {
            Some(end) if end.utc() < until => end.utc(),
            _ => until,
        };
        let mut last = start;
        let mut count: u64 = 1;
        // Counted up to here (UTC); at or after `last`.
        let mut position = start.utc();
        while position < limit && budget::remaining() > RESERVE {
            let transition = zone.next_transition(position, limit)?;
            let stretch_end = match transition {
                Some(t) => (t - TimeDelta::microseconds(1)).min(limit),
                None => limit,
            };
            let piece_end = stretch_end.min(position + TimeDelta::days(366 * YEARS_PER_COUNT));
            let offset = zone.offset_from_utc(position);
            let (found, last_wall) = self.wall_matches(position + offset, piece_end + offset)?;
            if let Some(wall) = last_wall {
                count = count.saturating_add(found);
                last = ZonedDateTime::from_utc(wall - offset, zone);
            }
            position = piece_end;
            if piece_end < stretch_end || transition.is_none() {
                continue;
            }
            // Across the offset change: APScheduler's own step from the last fire time.
            match self.search(Some(last), now)? {
                Some(next) if next.utc() <= until && next.utc() > last.utc() => {
                    count = count.saturating_add(1);
                    last = next;
                    position = position.max(next.utc());
                }
                _ => break,
            }
        }
        let next = self.search_forward(Some(last), now)?;
        Ok(CatchUp {
            count,
            last: if count == 1 { first } else { last.instant() },
            next: next.map(|next| next.instant()),
        })
    }

    /// The wall times in `(after, upto]` whose fields all match: how many, and the last.
    fn wall_matches(
        &self,
        after: NaiveDateTime,
        upto: NaiveDateTime,
    ) -> Result<(u64, Option<NaiveDateTime>), SearchExhausted> {
        if upto <= after {
            return Ok((0, None));
        }
        let times = TimesOfDay::of(self);
        let (first_day, last_day) = (after.date(), upto.date());
        let mut count = 0u64;
        if first_day == last_day {
            if self.date_matches(first_day) {
                count = times.after(after.time()) - times.after(upto.time());
            }
        } else {
            if self.date_matches(first_day) {
                count += times.after(after.time());
            }
            if self.date_matches(last_day) {
                count += times.per_day - times.after(upto.time());
            }
            if let (Some(from), Some(to)) = (first_day.succ_opt(), last_day.pred_opt())
                && from <= to
            {
                count += self.count_dates(from, to)? * times.per_day;
            }
        }
        if count == 0 {
            return Ok((0, None));
        }
        // The last: on the last day at or before `upto`, else the latest matching day before.
        if self.date_matches(last_day)
            && let Some(time) = times.last_upto(upto.time())
        {
            let wall = last_day.and_time(time);
            if wall > after {
                return Ok((count, Some(wall)));
            }
        }
        let day = match last_day.pred_opt() {
            Some(to) if to >= first_day => self.last_date(first_day, to)?,
            _ => None,
        };
        let wall = day.map(|day| day.and_time(times.last_of_day()));
        Ok((count, wall.filter(|wall| *wall > after)))
    }

    /// Whether every date field matches `date`.
    fn date_matches(&self, date: NaiveDate) -> bool {
        let [year, month, day, week, weekday, ..] = &self.fields;
        year.allows_year(date.year())
            && month.mask() & (1 << date.month()) != 0
            && day.day_mask(date.year(), date.month()) & (1 << date.day()) != 0
            && week.allows(date.iso_week().week(), date)
            && weekday.allows(weekday_number(date.weekday()), date)
    }

    /// The days of `year`-`month` that match, as bits 1..=31.
    fn month_days(&self, year: i32, month: u32) -> u64 {
        budget::charge(MONTH_STEPS);
        let [
            year_field,
            month_field,
            day_field,
            week_field,
            weekday_field,
            ..,
        ] = &self.fields;
        if !year_field.allows_year(year) || month_field.mask() & (1 << month) == 0 {
            return 0;
        }
        let mut days = day_field.day_mask(year, month);
        let Some(first) = NaiveDate::from_ymd_opt(year, month, 1) else {
            return 0;
        };
        if days != 0 && !weekday_field.allows_any() {
            let first_weekday = weekday_number(first.weekday());
            let weekdays = weekday_field.mask();
            let allowed = (1..=31u32)
                .filter(|day| weekdays & (1 << ((first_weekday + day - 1) % 7)) != 0)
                .fold(0u64, |mask, day| mask | 1 << day);
            days &= allowed;
        }
        if days != 0 && !week_field.allows_any() {
            // An ISO week for every day left.
            budget::charge(WEEK_STEPS);
            let mut rest = days;
            while rest != 0 {
                let day = rest.trailing_zeros();
                rest &= rest - 1;
                let date = first + TimeDelta::days(i64::from(day) - 1);
                if !week_field.allows(date.iso_week().week(), date) {
                    days &= !(1 << day);
                }
            }
        }
        days
    }

    /// How many dates in `[from, to]` match.
    fn count_dates(&self, from: NaiveDate, to: NaiveDate) -> Result<u64, SearchExhausted> {
        let in_months = |trigger: &Self, year: i32, first: (u32, u32), last: (u32, u32)| {
            let mut count = 0u64;
            for month in first.0..=last.0 {
                budget::step(1)?;
                let mut days = trigger.month_days(year, month);
                if month == first.0 {
                    days &= u64::MAX << first.1;
                }
                if month == last.0 {
                    days &= (1u64 << (last.1 + 1)) - 1;
                }
                count += u64::from(days.count_ones());
            }
            Ok::<u64, SearchExhausted>(count)
        };
        let start = (from.month(), from.day());
        let end = (to.month(), to.day());
        if from.year() == to.year() {
            return in_months(self, from.year(), start, end);
        }
        let mut count = in_months(self, from.year(), start, (12, 31))?;
        count += in_months(self, to.year(), (1, 1), end)?;
        // Whole years: a year's count depends only on its calendar (and, through ISO weeks,
        // on whether the year before was a leap year), so each kind is counted once.
        let mut per_calendar: [Option<u64>; 28] = [None; 28];
        for year in from.year() + 1..to.year() {
            budget::step(1)?;
            if !self.fields[0].allows_year(year) {
                continue;
            }
            let kind = calendar_kind(year);
            count += match per_calendar[kind] {
                Some(known) => known,
                None => {
                    let counted = in_months(self, year, (1, 1), (12, 31))?;
                    per_calendar[kind] = Some(counted);
                    counted
                }
            };
        }
        Ok(count)
    }

    /// The latest matching date in `[from, to]`.
    fn last_date(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Option<NaiveDate>, SearchExhausted> {
        let mut year = to.year();
        let mut month = to.month();
        loop {
            if year < from.year() {
                return Ok(None);
            }
            if month == 12 && !self.fields[0].allows_year(year) {
                // A whole year that cannot match.
                budget::step(1)?;
                year -= 1;
                continue;
            }
            budget::step(1)?;
            let mut days = self.month_days(year, month);
            if (year, month) == (to.year(), to.month()) {
                days &= (1u64 << (to.day() + 1)) - 1;
            }
            if (year, month) == (from.year(), from.month()) {
                days &= u64::MAX << from.day();
            }
            if days != 0 {
                let day = 63 - days.leading_zeros();
                return Ok(NaiveDate::from_ymd_opt(year, month, day));
            }
            if (year, month) <= (from.year(), from.month()) {
                return Ok(None);
            }
            if month == 1 {
                year -= 1;
                month = 12;
            } else {
                month -= 1;
            }
        }
    }
}

/// Which of the 28 kinds of year `year` is: weekday of 1 January, leap year, leap year before.
fn calendar_kind(year: i32) -> usize {
    let leap = |y: i32| days_in_month(y, 2) == 29;
    let weekday = NaiveDate::from_ymd_opt(year, 1, 1)
        .map_or(0, |d| d.weekday().num_days_from_monday() as usize);
    weekday * 4 + usize::from(leap(year)) * 2 + usize::from(leap(year - 1))
}

/// The times of day a trigger's hour, minute and second fields allow.
struct TimesOfDay {
    hours: u64,
    minutes: u64,
    seconds: u64,
    per_day: u64,
}

impl TimesOfDay {
    fn of(trigger: &CronTrigger) -> Self {
        let [.., hours, minutes, seconds] = &trigger.fields;
        let (hours, minutes, seconds) = (hours.mask(), minutes.mask(), seconds.mask());
        let per_day = u64::from(hours.count_ones() * minutes.count_ones() * seconds.count_ones());
        TimesOfDay {
            hours,
            minutes,
            seconds,
            per_day,
        }
    }

    /// How many allowed times of day come after `time` (a whole second at `time` counts as
    /// not after it; a fraction past it does).
    fn after(&self, time: NaiveTime) -> u64 {
        let (h, m, s) = (time.hour(), time.minute(), time.second());
        let above = |mask: u64, value: u32| u64::from((mask & !((2u64 << value) - 1)).count_ones());
        let (minutes, seconds) = (
            u64::from(self.minutes.count_ones()),
            u64::from(self.seconds.count_ones()),
        );
        let mut count = above(self.hours, h) * minutes * seconds;
        if self.hours & (1 << h) != 0 {
            count += above(self.minutes, m) * seconds;
            if self.minutes & (1 << m) != 0 {
                count += above(self.seconds, s);
            }
        }
        count
    }

    /// The latest allowed time of day at or before `time`.
    fn last_upto(&self, time: NaiveTime) -> Option<NaiveTime> {
        let (h, m, s) = (time.hour(), time.minute(), time.second());
        let at_most = |mask: u64, value: u32| {
            let below = mask & ((2u64 << value) - 1);
            (below != 0).then(|| 63 - below.leading_zeros())
        };
        let highest = |mask: u64| 63 - mask.leading_zeros();
        if self.hours & (1 << h) != 0 {
            if self.minutes & (1 << m) != 0
                && let Some(second) = at_most(self.seconds, s)
            {
                return NaiveTime::from_hms_opt(h, m, second);
            }
            if let Some(minute) = m.checked_sub(1).and_then(|m| at_most(self.minutes, m)) {
                return NaiveTime::from_hms_opt(h, minute, highest(self.seconds));
            }
        }
        let hour = h.checked_sub(1).and_then(|h| at_most(self.hours, h))?;
        NaiveTime::from_hms_opt(hour, highest(self.minutes), highest(self.seconds))
    }

    /// The latest allowed time of day.
    fn last_of_day(&self) -> NaiveTime {
        let highest = |mask: u64| 63 - mask.leading_zeros();
        NaiveTime::from_hms_opt(
            highest(self.hours),
            highest(self.minutes),
            highest(self.seconds),
        )
        .unwrap_or(NaiveTime::MIN)
    }
}

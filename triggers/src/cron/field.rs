//! The eight cron fields and their compiled value sets.

use std::fmt;

use chrono::{Datelike, NaiveDate, Weekday};

use super::expression::Expr;
use crate::TriggerError;

/// A cron field, in APScheduler's search order (most significant first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldKind {
    Year,
    Month,
    Day,
    Week,
    DayOfWeek,
    Hour,
    Minute,
    Second,
    /// A crontab line's day of week before translation: 0–7, 0 and 7 = Sunday.
    CrontabDayOfWeek,
}

impl FieldKind {
    pub(crate) const ALL: [FieldKind; 8] = [
        FieldKind::Year,
        FieldKind::Month,
        FieldKind::Day,
        FieldKind::Week,
        FieldKind::DayOfWeek,
        FieldKind::Hour,
        FieldKind::Minute,
        FieldKind::Second,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            FieldKind::Year => "year",
            FieldKind::Month => "month",
            FieldKind::Day => "day",
            FieldKind::Week => "week",
            FieldKind::DayOfWeek => "day_of_week",
            FieldKind::Hour => "hour",
            FieldKind::Minute => "minute",
            FieldKind::Second => "second",
            FieldKind::CrontabDayOfWeek => "day_of_week",
        }
    }

    pub(crate) fn min(self) -> u32 {
        match self {
            FieldKind::Year => 1970,
            FieldKind::Month | FieldKind::Day | FieldKind::Week => 1,
            _ => 0,
        }
    }

    /// The static maximum (the day field's real maximum is the length of the month).
    pub(crate) fn max(self) -> u32 {
        match self {
            FieldKind::Year => 9999,
            FieldKind::Month => 12,
            FieldKind::Day => 31,
            FieldKind::Week => 53,
            FieldKind::DayOfWeek => 6,
            FieldKind::Hour => 23,
            FieldKind::Minute | FieldKind::Second => 59,
            FieldKind::CrontabDayOfWeek => 7,
        }
    }

    /// Whether the field is a component of a datetime. `week` and `day_of_week` are not:
    /// the search satisfies them by stepping the day.
    pub(crate) fn is_real(self) -> bool {
        !matches!(
            self,
            FieldKind::Week | FieldKind::DayOfWeek | FieldKind::CrontabDayOfWeek
        )
    }

    /// APScheduler's `DEFAULT_VALUES`, used for fields less significant than the least
    /// significant field given.
    pub(crate) fn default_expression(self) -> &'static str {
        match self {
            FieldKind::Year
            | FieldKind::Week
            | FieldKind::DayOfWeek
            | FieldKind::CrontabDayOfWeek => "*",
            FieldKind::Month | FieldKind::Day => "1",
            _ => "0",
        }
    }
}

/// A field's expression list, compiled to the set of values it allows.
#[derive(Debug, Clone)]
pub(crate) struct Field {
    pub(crate) kind: FieldKind,
    /// The expression as given, kept for saved states (its display form can be lossy).
    pub(crate) source: String,
    /// Whether the value came from the defaults rather than the user.
    pub(crate) is_default: bool,
    exprs: Vec<Expr>,
    /// Bit `v` set when value `v` is allowed (every field but the year).
    mask: u64,
    /// Years 1970..=9999, bit `y - 1970`.
    years: Option<Box<[u64]>>,
    /// Day forms that depend on the month: (`nth` 0..=5, weekday).
    positions: Vec<(u8, u8)>,
    last_day: bool,
    /// Every value of the field's range is allowed (`*`, `*/1`, `0-59`, …).
    any: bool,
}

const YEAR_WORDS: usize = (9999 - 1970) / 64 + 1;

impl Field {
    /// Compiles a field from its text (`str(value)` in APScheduler): a comma-separated list,
    /// spaces allowed around the commas.
    pub(crate) fn parse(
        kind: FieldKind,
        source: &str,
        is_default: bool,
    ) -> Result<Field, TriggerError> {
        let mut field = Field {
            kind,
            source: source.to_owned(),
            is_default,
            exprs: Vec::new(),
            mask: 0,
            years: (kind == FieldKind::Year).then(|| vec![0u64; YEAR_WORDS].into_boxed_slice()),
            positions: Vec::new(),
            last_day: false,
            any: false,
        };
        // `SEPARATOR.split(str(exprs).strip())` with `SEPARATOR = " *, *"`.
        for element in source.trim().split(',').map(|e| e.trim_matches(' ')) {
            let expr =
                Expr::parse(kind, element).map_err(|reason| TriggerError::CronExpression {
                    field: kind.name(),
                    expression: source.to_owned(),
                    reason,
                })?;
            field.add(expr);
        }
        field.any = match &field.years {
            Some(years) => (0..=9999 - 1970).all(|bit| years[bit / 64] & (1 << (bit % 64)) != 0),
            None => (kind.min()..=kind.max()).all(|v| field.mask & (1 << v) != 0),
        };
        Ok(field)
    }

    /// Whether every value from the field's minimum up is allowed, so the search can step
    /// over the field (for the year, only from 1970).
    pub(crate) fn allows_any(&self) -> bool {
        self.any
    }

    fn add(&mut self, expr: Expr) {
        match expr {
            Expr::WeekdayPosition { nth, weekday } => self.positions.push((nth, weekday)),
            Expr::LastDay => self.last_day = true,
            _ => {
                let values = expr.static_values(self.kind).expect("a static form");
                match &mut self.years {
                    Some(years) => {
                        for year in values {
                            let bit = (year - 1970) as usize;
                            years[bit / 64] |= 1 << (bit % 64);
                        }
                    }
                    None => {
                        for value in values {
                            self.mask |= 1 << value;
                        }
                    }
                }
            }
        }
        self.exprs.push(expr);
    }

    /// APScheduler's `get_next_value`: the smallest allowed value `>= value` (at least the
    /// field's minimum), within the month of `date` for the day field.
    pub(crate) fn next_value(&self, value: u32, date: NaiveDate) -> Option<u32> {
        let value = value.max(self.kind.min());
        if let Some(years) = &self.years {
            let mut bit = (value - 1970) as usize;
            while bit < YEAR_WORDS * 64 {
                let word = years[bit / 64] >> (bit % 64);
                if word != 0 {
                    let year = 1970 + (bit + word.trailing_zeros() as usize) as u32;
                    return (year <= 9999).then_some(year);
                }
                bit = (bit / 64 + 1) * 64;
            }
            return None;
        }
        let mask = if self.kind == FieldKind::Day {
            self.day_mask(date.year(), date.month())
        } else {
            self.mask
        };
        next_bit(mask, value)
    }

    /// The allowed values as a bit set (bit `v` for value `v`; not for the year).
    pub(crate) fn mask(&self) -> u64 {
        self.mask
    }

    /// Whether `year` is allowed (the year field).
    pub(crate) fn allows_year(&self, year: i32) -> bool {
        let Some(years) = &self.years else {
            return true;
        };
        match usize::try_from(year - 1970) {
            Ok(bit) if bit < YEAR_WORDS * 64 && year <= 9999 => {
                years[bit / 64] & (1 << (bit % 64)) != 0
            }
            _ => false,
        }
    }

    /// Whether `value` is allowed (in the month of `date` for the day field).
    pub(crate) fn allows(&self, value: u32, date: NaiveDate) -> bool {
        self.next_value(value, date) == Some(value)
    }

    /// The days of `year`-`month` the day field allows.
    pub(crate) fn day_mask(&self, year: i32, month: u32) -> u64 {
        let days = days_in_month(year, month);
        let mut mask = self.mask & ((1u64 << (days + 1)) - 1);
        if self.last_day {
            mask |= 1 << days;
        }
        if !self.positions.is_empty() {
            let first = NaiveDate::from_ymd_opt(year, month, 1)
                .map_or(0, |d| d.weekday().num_days_from_monday());
            for &(nth, weekday) in &self.positions {
                // APScheduler's WeekdayPositionExpression.
                let mut first_hit = i64::from(weekday) - i64::from(first) + 1;
                if first_hit <= 0 {
                    first_hit += 7;
                }
                let target = if nth < 5 {
                    first_hit + i64::from(nth) * 7
                } else {
                    first_hit + (i64::from(days) - first_hit) / 7 * 7
                };
                if target <= i64::from(days) {
                    mask |= 1 << target;
                }
            }
        }
        mask
    }
}

impl fmt::Display for Field {
    /// APScheduler's `str(field)`: the expressions joined by commas.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, expr) in self.exprs.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{expr}")?;
        }
        Ok(())
    }
}

/// The lowest set bit of `mask` at or above `from`.
fn next_bit(mask: u64, from: u32) -> Option<u32> {
    if from >= 64 {
        return None;
    }
    let rest = mask & (u64::MAX << from);
    (rest != 0).then(|| rest.trailing_zeros())
}

pub(crate) fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => 31,
    }
}

/// Monday = 0, as Python's `weekday()`.
pub(crate) fn weekday_number(weekday: Weekday) -> u32 {
    weekday.num_days_from_monday()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn lists_union_their_elements() {
        let field = Field::parse(FieldKind::Day, " 1-2, 4-7 ,last", false).unwrap();
        assert_eq!(field.to_string(), "1-2,4-7,last");
        let feb = date(2024, 2, 1);
        let got: Vec<u32> = (1..=29).filter(|&d| field.allows(d, feb)).collect();
        assert_eq!(got, [1, 2, 4, 5, 6, 7, 29]);
        assert!(Field::parse(FieldKind::Day, "1,,2", false).is_err());
    }

    #[test]
    fn steps_start_at_the_range_start() {
        let field = Field::parse(FieldKind::Day, "*/2", false).unwrap();
        assert_eq!(field.next_value(2, date(2024, 1, 1)), Some(3));
        let years = Field::parse(FieldKind::Year, "*/4", false).unwrap();
        assert_eq!(years.next_value(2019, date(2019, 1, 1)), Some(2022));
        let years = Field::parse(FieldKind::Year, "2009,2008", false).unwrap();
        assert_eq!(years.to_string(), "2009,2008");
        assert_eq!(years.next_value(1970, date(1970, 1, 1)), Some(2008));
        assert_eq!(years.next_value(2010, date(2010, 1, 1)), None);
        let last = Field::parse(FieldKind::Year, "9999", false).unwrap();
        assert_eq!(last.next_value(9000, date(9000, 1, 1)), Some(9999));
    }

    #[test]
    fn weekday_positions_depend_on_the_month() {
        // 4th wed of 2024-01 is the 24th; last fri of 2024-03 is the 29th; 5th fri of
        // 2024-02 does not exist.
        let field = Field::parse(FieldKind::Day, "4th wed", false).unwrap();
        assert_eq!(field.next_value(1, date(2024, 1, 1)), Some(24));
        assert_eq!(field.next_value(25, date(2024, 1, 25)), None);
        let field = Field::parse(FieldKind::Day, "last fri", false).unwrap();
        assert_eq!(field.next_value(1, date(2024, 3, 1)), Some(29));
        let field = Field::parse(FieldKind::Day, "5th fri", false).unwrap();
        assert_eq!(field.next_value(1, date(2024, 2, 1)), None);
        assert_eq!(field.next_value(1, date(2024, 3, 1)), Some(29));
        let field = Field::parse(FieldKind::Day, "last", false).unwrap();
        assert_eq!(field.next_value(10, date(2024, 2, 10)), Some(29));
        assert_eq!(field.next_value(10, date(2023, 2, 10)), Some(28));
    }

    #[test]
    fn error_names_field_expression_and_reason() {
        let err = Field::parse(FieldKind::Month, "jan,13", false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid month expression \"jan,13\": the last value (13) is higher than the \
             maximum value (12)"
        );
    }
}

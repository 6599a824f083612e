//! One element of a cron field list: APScheduler 3.x's expression grammar.
//!
//! | form | meaning |
//! | --- | --- |
//! | `*`, `*/n` | every value, every n-th value from the field's minimum |
//! | `a`, `a-b`, `a-b/n`, `a/n` | one value, a range, a stepped range, `a` to the maximum in steps |
//! | `jan`, `jan-mar` | month names (month field) |
//! | `mon`, `mon-fri` | weekday names (day_of_week field) |
//! | `1st mon` … `5th mon`, `last mon` | n-th / last weekday of the month (day field) |
//! | `last` | last day of the month (day field) |
//!
//! APScheduler matches the name, position and `last` forms with regexes that are not
//! anchored at the end, so it silently ignores trailing text (`mon-fri/2` means `mon-fri`,
//! `lastxyz` means `last`). This grammar refuses such text instead, with an error that says
//! so. It also reads only ASCII digits (Python's `\d` takes any Unicode digit).

use std::fmt;

use super::field::FieldKind;
use crate::ExpressionError;

/// Weekday names, 0 = Monday as in APScheduler 3.x.
pub(crate) const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
/// Month names, 1 = January.
pub(crate) const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const POSITIONS: [&str; 6] = ["1st", "2nd", "3rd", "4th", "5th", "last"];

/// A parsed list element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expr {
    /// `*` or `*/step`.
    All { step: Option<u32> },
    /// `first`, `first-last`, `first-last/step` or `first/step` (then `last` is `None`:
    /// up to the field's maximum). `names` only changes how it prints.
    Range {
        first: u32,
        last: Option<u32>,
        step: Option<u32>,
        names: Names,
    },
    /// `1st mon` (`nth` 0..=4) or `last mon` (`nth` 5); `weekday` 0 = Monday.
    WeekdayPosition { nth: u8, weekday: u8 },
    /// `last`: the last day of the month.
    LastDay,
}

/// How a range prints: as numbers or as month/weekday names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Names {
    Numbers,
    Months,
    Weekdays,
}

impl Expr {
    /// Parses one element for `kind`, trying the forms in APScheduler's order (the first
    /// form that matches decides, even if it then fails validation).
    pub(crate) fn parse(kind: FieldKind, element: &str) -> Result<Expr, ExpressionError> {
        if element.is_empty() {
            return Err(ExpressionError::EmptyElement);
        }
        if let Some(rest) = element.strip_prefix('*') {
            if rest.is_empty() {
                return Ok(Expr::All { step: None });
            }
            if let Some(step) = rest.strip_prefix('/').and_then(digits_only) {
                let step = checked_step(step)?;
                let step = validate_step(step, kind.max() - kind.min())?;
                return Ok(Expr::All { step: Some(step) });
            }
            return Err(unrecognized(element));
        }
        if element.as_bytes()[0].is_ascii_digit() {
            return match parse_numeric(kind, element) {
                // `1st mon` starts with a digit too.
                Err(ExpressionError::Unrecognized { .. }) if kind == FieldKind::Day => {
                    parse_day(element)
                }
                result => result,
            };
        }
        match kind {
            FieldKind::Month => parse_names(kind, element, &MONTHS, 1, Names::Months),
            FieldKind::DayOfWeek => parse_names(kind, element, &WEEKDAYS, 0, Names::Weekdays),
            FieldKind::Day => parse_day(element),
            _ => Err(unrecognized(element)),
        }
    }

    /// The values this element allows among `min..=max` of its field, as a bit set; `None`
    /// for the day forms that depend on the month.
    pub(crate) fn static_values(&self, kind: FieldKind) -> Option<impl Iterator<Item = u32>> {
        let (min, max) = (kind.min(), kind.max());
        let (first, last, step) = match *self {
            Expr::All { step } => (min, max, step.unwrap_or(1)),
            Expr::Range {
                first, last, step, ..
            } => (first, last.unwrap_or(max), step.unwrap_or(1)),
            Expr::WeekdayPosition { .. } | Expr::LastDay => return None,
        };
        Some((first..=last).step_by(step as usize))
    }
}

fn unrecognized(element: &str) -> ExpressionError {
    ExpressionError::Unrecognized {
        element: element.to_owned(),
    }
}

/// `Some(text)` when `text` is one or more ASCII digits.
fn digits_only(text: &str) -> Option<&str> {
    (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())).then_some(text)
}

/// A number of any length, saturating (it is range-checked afterwards anyway).
fn number(digits: &str) -> u64 {
    digits.bytes().fold(0u64, |acc, d| {
        acc.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    })
}

fn checked_step(digits: &str) -> Result<u64, ExpressionError> {
    match number(digits) {
        0 => Err(ExpressionError::ZeroStep),
        step => Ok(step),
    }
}

/// The step, once it is known to fit in `range` (and so in a `u32`).
fn validate_step(step: u64, range: u32) -> Result<u32, ExpressionError> {
    if step > u64::from(range) {
        return Err(ExpressionError::StepTooLarge {
            step,
            range: u64::from(range),
        });
    }
    Ok(step as u32)
}

/// `a`, `a-b`, `a-b/n`, `a/n` with ASCII digits, validated as `RangeExpression` does.
fn parse_numeric(kind: FieldKind, element: &str) -> Result<Expr, ExpressionError> {
    let (range, step) = match element.split_once('/') {
        Some((range, step)) => (
            range,
            Some(digits_only(step).ok_or_else(|| unrecognized(element))?),
        ),
        None => (element, None),
    };
    let (first, last) = match range.split_once('-') {
        Some((first, last)) => (first, Some(last)),
        None => (range, None),
    };
    let first_digits = digits_only(first).ok_or_else(|| unrecognized(element))?;
    let last_digits = last
        .map(|l| digits_only(l).ok_or_else(|| unrecognized(element)))
        .transpose()?;
    // The checks run in APScheduler's order, so each input fails for the same reason.
    let step = step.map(checked_step).transpose()?;
    let (first, mut last) = (number(first_digits), last_digits.map(number));
    if last.is_none() && step.is_none() {
        last = Some(first);
    }
    if let Some(last) = last
        && first > last
    {
        return Err(ExpressionError::ReversedRange {
            first: first_digits.to_owned(),
            last: last_digits.unwrap_or(first_digits).to_owned(),
        });
    }
    if let Some(step) = step {
        validate_step(step, kind.max() - kind.min())?;
    }
    if first < u64::from(kind.min()) {
        return Err(ExpressionError::BelowMinimum {
            value: first,
            min: kind.min(),
        });
    }
    // `a/n` has no last value, but its first one must be in range too (APScheduler only
    // notices through a negative "total range" in its step check).
    if let Some(value) = last
        .or((step.is_some()).then_some(first))
        .filter(|&v| v > u64::from(kind.max()))
    {
        return Err(ExpressionError::AboveMaximum {
            value,
            max: kind.max(),
        });
    }
    // Both are now within the field's range.
    let (first, last) = (first as u32, last.map(|l| l as u32));
    // APScheduler writes `(self.last or MAX) - self.first`: a last value of 0 counts as
    // "no last value" here (so `0-0/5` is accepted and means 0).
    let span = last.filter(|&l| l != 0).unwrap_or(kind.max()) - first;
    let step = step.map(|step| validate_step(step, span)).transpose()?;
    Ok(Expr::Range {
        first,
        last,
        step,
        names: Names::Numbers,
    })
}

/// `jan`, `jan-mar` (months) and `mon`, `mon-fri` (weekdays), any case.
fn parse_names(
    kind: FieldKind,
    element: &str,
    names: &[&str],
    offset: u32,
    style: Names,
) -> Result<Expr, ExpressionError> {
    let word_end = |s: &str| {
        s.bytes()
            .position(|b| !b.is_ascii_alphabetic())
            .unwrap_or(s.len())
    };
    let end = word_end(element);
    if end == 0 {
        return Err(unrecognized(element));
    }
    let lookup = |word: &str| {
        names
            .iter()
            .position(|n| n.eq_ignore_ascii_case(word))
            .map(|i| i as u32 + offset)
            .ok_or_else(|| match kind {
                FieldKind::Month => ExpressionError::UnknownMonth(word.to_owned()),
                _ => ExpressionError::UnknownWeekday(word.to_owned()),
            })
    };
    let first_word = &element[..end];
    let first = lookup(first_word)?;
    let mut consumed = end;
    let mut last = None;
    if let Some(rest) = element[end..].strip_prefix('-') {
        let len = word_end(rest);
        if len > 0 {
            let last_word = &rest[..len];
            let value = lookup(last_word)?;
            if first > value {
                return Err(ExpressionError::ReversedRange {
                    first: first_word.to_owned(),
                    last: last_word.to_owned(),
                });
            }
            last = Some(value);
            consumed = end + 1 + len;
        }
    }
    if consumed < element.len() {
        return Err(ExpressionError::TrailingText {
            accepted: element[..consumed].to_owned(),
            rest: element[consumed..].to_owned(),
        });
    }
    Ok(Expr::Range {
        first,
        last: Some(last.unwrap_or(first)),
        step: None,
        names: style,
    })
}

/// `1st mon` … `5th mon`, `last mon`, `last`.
fn parse_day(element: &str) -> Result<Expr, ExpressionError> {
    let lower = element.to_ascii_lowercase();
    let position = POSITIONS.iter().position(|p| lower.starts_with(p));
    if let Some(nth) = position {
        let after = &element[POSITIONS[nth].len()..];
        let name = after.trim_start_matches(' ');
        if name.len() < after.len() && !name.is_empty() {
            // APScheduler's `(?:\d+|\w+)`: a run of digits, or of word characters.
            let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
            let len = if name.as_bytes()[0].is_ascii_digit() {
                name.bytes().take_while(u8::is_ascii_digit).count()
            } else {
                name.bytes().take_while(|&b| is_word(b)).count()
            };
            if len > 0 {
                let word = &name[..len];
                let weekday = WEEKDAYS
                    .iter()
                    .position(|w| w.eq_ignore_ascii_case(word))
                    .ok_or_else(|| ExpressionError::UnknownWeekday(word.to_owned()))?;
                let consumed = element.len() - name.len() + len;
                if consumed < element.len() {
                    return Err(ExpressionError::TrailingText {
                        accepted: element[..consumed].to_owned(),
                        rest: element[consumed..].to_owned(),
                    });
                }
                return Ok(Expr::WeekdayPosition {
                    nth: nth as u8,
                    weekday: weekday as u8,
                });
            }
        }
    }
    if lower.starts_with("last") {
        if element.len() > 4 {
            return Err(ExpressionError::TrailingText {
                accepted: element[..4].to_owned(),
                rest: element[4..].to_owned(),
            });
        }
        return Ok(Expr::LastDay);
    }
    Err(unrecognized(element))
}

impl fmt::Display for Expr {
    /// APScheduler's `str()` of the expression.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Expr::All { step: None } => f.write_str("*"),
            Expr::All { step: Some(step) } => write!(f, "*/{step}"),
            Expr::Range {
                first,
                last,
                step,
                names,
            } => {
                let name = |v: u32| match names {
                    Names::Numbers => v.to_string(),
                    Names::Months => MONTHS[v as usize - 1].to_owned(),
                    Names::Weekdays => WEEKDAYS[v as usize].to_owned(),
                };
                match last {
                    Some(last) if last != first => write!(f, "{}-{}", name(first), name(last))?,
                    _ => f.write_str(&name(first))?,
                }
                match step {
                    Some(step) => write!(f, "/{step}"),
                    None => Ok(()),
                }
            }
            Expr::WeekdayPosition { nth, weekday } => write!(
                f,
                "{} {}",
                POSITIONS[nth as usize], WEEKDAYS[weekday as usize]
            ),
            Expr::LastDay => f.write_str("last"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use FieldKind::*;

    fn ok(kind: FieldKind, text: &str) -> String {
        Expr::parse(kind, text)
            .unwrap_or_else(|e| panic!("{text:?}: {e}"))
            .to_string()
    }

    fn err(kind: FieldKind, text: &str) -> ExpressionError {
        Expr::parse(kind, text).expect_err(text)
    }

    // test_expressions.py: `*`, `*/n`, ranges, single values, weekday names and positions.
    #[test]
    fn parses_every_form() {
        assert_eq!(ok(Minute, "*"), "*");
        assert_eq!(ok(Minute, "*/5"), "*/5");
        assert_eq!(ok(Minute, "*/05"), "*/5");
        assert_eq!(ok(Hour, "2"), "2");
        assert_eq!(ok(Hour, "02"), "2");
        assert_eq!(ok(Day, "5-13"), "5-13");
        assert_eq!(ok(Minute, "0-30/10"), "0-30/10");
        assert_eq!(ok(Minute, "5/15"), "5/15");
        assert_eq!(ok(Year, "2009/2"), "2009/2");
        assert_eq!(ok(Month, "JAN-mar"), "jan-mar");
        assert_eq!(ok(Month, "dec"), "dec");
        assert_eq!(ok(DayOfWeek, "Mon-FRI"), "mon-fri");
        assert_eq!(ok(DayOfWeek, "sun"), "sun");
        assert_eq!(ok(Day, "1st mon"), "1st mon");
        assert_eq!(ok(Day, "3RD  Fri"), "3rd fri");
        assert_eq!(ok(Day, "last fri"), "last fri");
        assert_eq!(ok(Day, "LAST"), "last");
        // APScheduler prints a range of one value without its end.
        assert_eq!(ok(Minute, "0-0/5"), "0/5");
        assert_eq!(ok(Minute, "7-7"), "7");
    }

    // test_invalid_ranges and friends.
    #[test]
    fn validates_like_apscheduler() {
        assert_eq!(
            err(Day, "*/31"),
            ExpressionError::StepTooLarge {
                step: 31,
                range: 30
            }
        );
        assert_eq!(
            err(Day, "4-6/3"),
            ExpressionError::StepTooLarge { step: 3, range: 2 }
        );
        assert_eq!(
            err(Hour, "0-24"),
            ExpressionError::AboveMaximum { value: 24, max: 23 }
        );
        assert_eq!(
            err(Day, "0-3"),
            ExpressionError::BelowMinimum { value: 0, min: 1 }
        );
        assert_eq!(err(Minute, "*/0"), ExpressionError::ZeroStep);
        assert!(matches!(
            err(Minute, "5-3"),
            ExpressionError::ReversedRange { .. }
        ));
        assert!(matches!(
            err(DayOfWeek, "fri-mon"),
            ExpressionError::ReversedRange { .. }
        ));
        assert_eq!(
            err(Year, "10000"),
            ExpressionError::AboveMaximum {
                value: 10000,
                max: 9999
            }
        );
        assert_eq!(
            err(Year, "1969"),
            ExpressionError::BelowMinimum {
                value: 1969,
                min: 1970
            }
        );
        assert_eq!(
            err(Second, "99999999999999999999999"),
            ExpressionError::AboveMaximum {
                value: u64::MAX,
                max: 59
            }
        );
        assert_eq!(
            err(Minute, "5/60"),
            ExpressionError::StepTooLarge {
                step: 60,
                range: 59
            }
        );
        assert_eq!(
            err(Minute, "*/99999999999"),
            ExpressionError::StepTooLarge {
                step: 99_999_999_999,
                range: 59
            }
        );
        // `a/n` with `a` above the maximum: the same error as any value out of range.
        for (kind, text, value, max) in [
            (Minute, "60/5", 60, 59),
            (Hour, "24/2", 24, 23),
            (Year, "10000/3", 10000, 9999),
            (Second, "99999999999999999999/1", u64::MAX, 59),
            (CrontabDayOfWeek, "8/1", 8, 7),
        ] {
            assert_eq!(
                err(kind, text),
                ExpressionError::AboveMaximum { value, max },
                "{text}"
            );
        }
        // `a/n` steps through a to the maximum.
        assert_eq!(
            err(Minute, "50/10"),
            ExpressionError::StepTooLarge { step: 10, range: 9 }
        );
        assert_eq!(ok(Minute, "*/59"), "*/59");
    }

    #[test]
    fn refuses_unknown_names_and_forms() {
        assert_eq!(
            err(DayOfWeek, "monday"),
            ExpressionError::UnknownWeekday("monday".into())
        );
        assert_eq!(
            err(Month, "janu"),
            ExpressionError::UnknownMonth("janu".into())
        );
        assert_eq!(
            err(Day, "1st 0"),
            ExpressionError::UnknownWeekday("0".into())
        );
        assert_eq!(
            err(Day, "1st xyz"),
            ExpressionError::UnknownWeekday("xyz".into())
        );
        for text in [
            "6th mon", "L", "?", "-1", "2ndtue", "1st", "#", "1-", "1-2-3", "*/", "**", "1/",
        ] {
            assert!(
                matches!(
                    Expr::parse(Day, text),
                    Err(ExpressionError::Unrecognized { .. })
                ),
                "{text:?}"
            );
        }
        assert!(matches!(
            err(Hour, "mon"),
            ExpressionError::Unrecognized { .. }
        ));
        assert_eq!(err(Hour, ""), ExpressionError::EmptyElement);
        assert!(matches!(
            err(Minute, "٣"),
            ExpressionError::Unrecognized { .. }
        ));
    }

    // What APScheduler accepts by ignoring the rest of the element.
    #[test]
    fn refuses_trailing_text() {
        for (kind, text, accepted) in [
            (DayOfWeek, "mon-fri/2", "mon-fri"),
            (Month, "jan-dec/3", "jan-dec"),
            (DayOfWeek, "mon#2", "mon"),
            (Day, "lastxyz", "last"),
            (Day, "1st mon-fri", "1st mon"),
            (Month, "jan-", "jan"),
        ] {
            match err(kind, text) {
                ExpressionError::TrailingText { accepted: a, .. } => assert_eq!(a, accepted),
                other => panic!("{text:?}: {other}"),
            }
        }
    }
}

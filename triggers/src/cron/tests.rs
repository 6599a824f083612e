//! The cron cases of APScheduler's own test suite (3.x
//! <https://github.com/agronholm/apscheduler/blob/3.x/tests/triggers/test_cron.py>), with
//! the answers APScheduler 3.11.3 gives for them.

use std::time::Duration;

use chrono::{DateTime, FixedOffset, TimeDelta, TimeZone, Utc};
use chrono_tz::{America, Europe, Tz};

use super::*;
use crate::FixedJitter;

fn at(text: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(text).unwrap()
}

/// The fire times APScheduler's scheduler would ask for: `t1 = next(previous, now)`, then
/// `t(k+1) = next(t(k), t(k))`, shown as the real local time in the trigger's zone.
fn fires(trigger: &CronTrigger, now: &str, previous: Option<&str>, count: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut previous = previous.map(at);
    let mut now = at(now).to_utc();
    for _ in 0..count {
        let Some(next) = trigger.next_local_fire_time(previous, now).unwrap() else {
            break;
        };
        out.push(trigger.timezone().to_local(next.to_utc()).to_rfc3339());
        previous = Some(next);
        now = next.to_utc();
    }
    out
}

fn berlin() -> CronTriggerBuilder {
    CronTrigger::builder().timezone(Europe::Berlin)
}

fn new_york() -> CronTriggerBuilder {
    CronTrigger::builder().timezone(America::New_York)
}

#[test]
fn year_and_month_steps_before_and_after_the_window() {
    let trigger = berlin()
        .year("2009/2")
        .month("1/3")
        .day("5-13")
        .build()
        .unwrap();
    assert_eq!(
        trigger.to_string(),
        "cron[year='2009/2', month='1/3', day='5-13']"
    );
    assert_eq!(
        fires(&trigger, "2008-12-01T00:00:00+01:00", None, 2),
        ["2009-01-05T00:00:00+01:00", "2009-01-06T00:00:00+01:00"]
    );
    assert_eq!(
        fires(&trigger, "2009-10-14T00:00:00+02:00", None, 1),
        ["2011-01-05T00:00:00+01:00"]
    );
}

#[test]
fn month_range_with_hour_range() {
    let trigger = berlin()
        .year(2009)
        .month("feb-dec")
        .hour("8-10")
        .build()
        .unwrap();
    assert_eq!(
        trigger.to_string(),
        "cron[year='2009', month='feb-dec', hour='8-10']"
    );
    assert_eq!(
        fires(&trigger, "2009-01-01T00:00:00+01:00", None, 4),
        [
            "2009-02-01T08:00:00+01:00",
            "2009-02-01T09:00:00+01:00",
            "2009-02-01T10:00:00+01:00",
            "2009-02-02T08:00:00+01:00"
        ]
    );
}

#[test]
fn last_day_of_february_in_a_leap_year() {
    let trigger = berlin().month("feb").day("last").build().unwrap();
    assert_eq!(
        fires(&trigger, "2008-01-01T00:00:00+01:00", None, 2),
        ["2008-02-29T00:00:00+01:00", "2009-02-28T00:00:00+01:00"]
    );
}

#[test]
fn start_and_end_dates_as_strings() {
    let trigger = berlin()
        .day("*")
        .start_date("2009-11-23")
        .end_date("2009-11-25")
        .build()
        .unwrap();
    assert_eq!(
        fires(&trigger, "2009-01-01T00:00:00+01:00", None, 5),
        [
            "2009-11-23T00:00:00+01:00",
            "2009-11-24T00:00:00+01:00",
            "2009-11-25T00:00:00+01:00"
        ]
    );
}

#[test]
fn zero_values_are_kept_in_the_description() {
    let trigger = berlin()
        .year(2009)
        .month(1)
        .hour(0)
        .minute(0)
        .build()
        .unwrap();
    assert_eq!(
        trigger.to_string(),
        "cron[year='2009', month='1', hour='0', minute='0']"
    );
}

#[test]
fn year_list_in_any_order() {
    let trigger = berlin().year("2009,2008").build().unwrap();
    assert_eq!(trigger.to_string(), "cron[year='2009,2008']");
    assert_eq!(
        fires(&trigger, "2007-06-01T00:00:00+02:00", None, 2),
        ["2008-01-01T00:00:00+01:00", "2009-01-01T00:00:00+01:00"]
    );
}

#[test]
fn start_date_later_than_now() {
    let trigger = berlin()
        .hour("*/3")
        .start_date("2009-10-14 17:11:00")
        .build()
        .unwrap();
    assert_eq!(
        fires(&trigger, "2009-10-14T12:00:00+02:00", None, 2),
        ["2009-10-14T18:00:00+02:00", "2009-10-14T21:00:00+02:00"]
    );
}

#[test]
fn previous_fire_time_decides_where_the_search_starts() {
    let trigger = berlin().minute("*/10").build().unwrap();
    let previous = Some("2010-01-01T10:00:00+01:00");
    // now after previous: the search still starts right after previous (catch-up).
    assert_eq!(
        fires(&trigger, "2010-01-01T12:00:00+01:00", previous, 1),
        ["2010-01-01T10:10:00+01:00"]
    );
    // now before previous: APScheduler starts at now and answers 09:00, before the previous
    // fire time; a trigger here never answers at or before it.
    assert_eq!(
        fires(&trigger, "2010-01-01T09:00:00+01:00", previous, 1),
        ["2010-01-01T10:10:00+01:00"]
    );
    // now equal to previous: never the same time again.
    assert_eq!(
        fires(&trigger, "2010-01-01T10:00:00+01:00", previous, 1),
        ["2010-01-01T10:10:00+01:00"]
    );
}

#[test]
fn day_and_day_of_week_must_both_match() {
    let overlap = berlin()
        .year(2009)
        .month(1)
        .day("6-10")
        .day_of_week("2-4")
        .build()
        .unwrap();
    assert_eq!(
        fires(&overlap, "2009-01-01T00:00:00+01:00", None, 5),
        [
            "2009-01-07T00:00:00+01:00",
            "2009-01-08T00:00:00+01:00",
            "2009-01-09T00:00:00+01:00"
        ]
    );
    let never = berlin()
        .year(2009)
        .month(1)
        .day("6-10")
        .day_of_week("0,6")
        .build()
        .unwrap();
    assert!(fires(&never, "2009-01-01T00:00:00+01:00", None, 1).is_empty());
}

#[test]
fn nth_weekday_of_the_month() {
    let trigger = berlin().day("4th wed").build().unwrap();
    assert_eq!(
        fires(&trigger, "2009-01-01T00:00:00+01:00", None, 2),
        ["2009-01-28T00:00:00+01:00", "2009-02-25T00:00:00+01:00"]
    );
}

#[test]
fn iso_week_with_month_and_with_weekday() {
    let with_month = berlin().year(2009).month(2).week(8).build().unwrap();
    let got = fires(&with_month, "2009-01-01T00:00:00+01:00", None, 10);
    assert_eq!(got.len(), 7);
    assert_eq!(got[0], "2009-02-16T00:00:00+01:00");
    assert_eq!(got[6], "2009-02-22T00:00:00+01:00");
    let with_weekday = berlin().year(2009).week(15).day_of_week(2).build().unwrap();
    assert_eq!(
        fires(&with_weekday, "2009-01-01T00:00:00+01:00", None, 2),
        ["2009-04-08T00:00:00+02:00"]
    );
}

#[test]
fn month_list_across_a_year_boundary() {
    let trigger = berlin().month("6,8").day(16).build().unwrap();
    assert_eq!(
        fires(&trigger, "2009-07-01T00:00:00+02:00", None, 3),
        [
            "2009-08-16T00:00:00+02:00",
            "2010-06-16T00:00:00+02:00",
            "2010-08-16T00:00:00+02:00"
        ]
    );
}

#[test]
fn faulty_expression_names_the_field() {
    let err = berlin().year("2009-fault").build().unwrap_err();
    assert!(
        matches!(&err, TriggerError::CronExpression { field: "year", expression, .. } if expression == "2009-fault"),
        "{err}"
    );
}

#[test]
fn weekday_increment_while_the_hour_wraps() {
    let trigger = berlin()
        .day_of_week("fri")
        .hour("8-10")
        .minute(30)
        .build()
        .unwrap();
    assert_eq!(
        fires(&trigger, "2009-11-12T23:59:00+01:00", None, 4),
        [
            "2009-11-13T08:30:00+01:00",
            "2009-11-13T09:30:00+01:00",
            "2009-11-13T10:30:00+01:00",
            "2009-11-20T08:30:00+01:00"
        ]
    );
}

#[test]
fn day_30_rolls_over_february() {
    let trigger = berlin().day(30).build().unwrap();
    assert_eq!(
        fires(&trigger, "2009-01-31T00:00:00+01:00", None, 2),
        ["2009-03-30T00:00:00+02:00", "2009-04-30T00:00:00+02:00"]
    );
}

#[test]
fn timezone_from_the_start_date() {
    use chrono::TimeZone;
    let start = America::New_York
        .with_ymd_and_hms(2009, 1, 1, 0, 0, 0)
        .unwrap();
    let trigger = CronTrigger::builder()
        .hour(5)
        .start_date(start)
        .build()
        .unwrap();
    assert_eq!(trigger.timezone(), Zone::Named(America::New_York));
}

#[test]
fn end_date_in_the_past_ends_even_an_every_second_trigger() {
    let trigger = berlin().end_date("2024-01-01 00:00:00").build().unwrap();
    assert!(fires(&trigger, "2024-01-01T00:00:01+01:00", None, 1).is_empty());
    assert_eq!(
        fires(&trigger, "2023-12-31T23:59:59+01:00", None, 3),
        ["2023-12-31T23:59:59+01:00", "2024-01-01T00:00:00+01:00"]
    );
}

#[test]
fn end_date_before_the_next_match() {
    let trigger = berlin()
        .day("*")
        .hour(8)
        .end_date("2014-04-13 07:59:59")
        .build()
        .unwrap();
    assert!(fires(&trigger, "2014-04-13T02:00:00+02:00", None, 1).is_empty());
}

// US/Eastern DST table: absolute_spring, absolute_autumn and the repeated-interval ones.
#[test]
fn dst_with_times_set_directly() {
    let spring = new_york().hour(2).minute(30).build().unwrap();
    assert_eq!(
        fires(&spring, "2013-03-09T12:00:00-05:00", None, 2),
        ["2013-03-10T03:30:00-04:00", "2013-03-11T02:30:00-04:00"]
    );
    // APScheduler itself answers the non-existent 02:30 with the pre-transition offset.
    let raw = spring.next_local_fire_time(None, at("2013-03-09T12:00:00-05:00").to_utc());
    assert_eq!(
        raw.unwrap().unwrap().to_rfc3339(),
        "2013-03-10T02:30:00-05:00"
    );

    let autumn = new_york().hour(1).minute(30).build().unwrap();
    assert_eq!(
        fires(&autumn, "2013-11-02T12:00:00-04:00", None, 3),
        [
            "2013-11-03T01:30:00-04:00",
            "2013-11-03T01:30:00-05:00",
            "2013-11-04T01:30:00-05:00"
        ]
    );
    let into_repeated = new_york().minute("*/30").hour("0-2").build().unwrap();
    assert_eq!(
        fires(&into_repeated, "2013-11-03T00:45:00-04:00", None, 6),
        [
            "2013-11-03T01:00:00-04:00",
            "2013-11-03T01:30:00-04:00",
            "2013-11-03T01:00:00-05:00",
            "2013-11-03T01:30:00-05:00",
            "2013-11-03T02:00:00-05:00",
            "2013-11-03T02:30:00-05:00"
        ]
    );
    let repeated_to_after = new_york().hour("1-2").minute("0,50").build().unwrap();
    assert_eq!(
        fires(&repeated_to_after, "2013-11-03T01:40:00-05:00", None, 3),
        [
            "2013-11-03T01:50:00-05:00",
            "2013-11-03T02:00:00-05:00",
            "2013-11-03T02:50:00-05:00"
        ]
    );
}

#[test]
fn dst_with_stepped_times() {
    let trigger = new_york().minute("*/30").build().unwrap();
    assert_eq!(
        fires(&trigger, "2013-03-10T01:35:00-05:00", None, 3),
        [
            "2013-03-10T03:00:00-04:00",
            "2013-03-10T03:30:00-04:00",
            "2013-03-10T04:00:00-04:00"
        ]
    );
    assert_eq!(
        fires(&trigger, "2013-11-03T01:35:00-04:00", None, 4),
        [
            "2013-11-03T01:00:00-05:00",
            "2013-11-03T01:30:00-05:00",
            "2013-11-03T02:00:00-05:00",
            "2013-11-03T02:30:00-05:00"
        ]
    );
}

#[test]
fn crossing_a_dst_change_by_stepping_days_can_skip_a_day() {
    // Sao Paulo 2018-11-04 has no midnight: that day is skipped.
    let sao_paulo = CronTrigger::builder()
        .hour(0)
        .timezone(America::Sao_Paulo)
        .build()
        .unwrap();
    assert_eq!(
        fires(&sao_paulo, "2018-11-03T12:00:00-03:00", None, 2),
        ["2018-11-05T00:00:00-02:00", "2018-11-06T00:00:00-02:00"]
    );
    // APScheduler 3.x also skips Monday 2024-04-01 here: stepping from Sunday 00:00 CET
    // adds 24 hours and lands on 01:00 CEST, which hour=0 then rejects.
    let monday = berlin().day_of_week("mon").hour(0).build().unwrap();
    assert_eq!(
        fires(&monday, "2024-03-30T12:00:00+01:00", None, 2),
        ["2024-04-08T00:00:00+02:00", "2024-04-15T00:00:00+02:00"]
    );
}

// test_dst_change_2: a fold=1 start must not get stuck.
#[test]
fn helsinki_fold_does_not_get_stuck() {
    let trigger = CronTrigger::builder()
        .hour(3)
        .minute(30)
        .timezone(Europe::Helsinki)
        .build()
        .unwrap();
    assert_eq!(
        fires(&trigger, "2017-10-29T03:30:00.000005+02:00", None, 2),
        ["2017-10-30T03:30:00+02:00", "2017-10-31T03:30:00+02:00"]
    );
}

#[test]
fn answers_in_the_trigger_zone() {
    let trigger = new_york().hour(9).build().unwrap();
    let answer = trigger
        .next_local_fire_time(None, at("2024-01-01T00:00:00+09:00").to_utc())
        .unwrap()
        .unwrap();
    assert_eq!(answer.to_rfc3339(), "2024-01-01T09:00:00-05:00");
}

// test_jitter_dst_change: jitter is wall-clock addition, so it can cross a DST change.
#[test]
fn jitter_is_wall_clock_addition() {
    let trigger = new_york()
        .hour(1)
        .minute(59)
        .second(50)
        .jitter(Duration::from_secs(20))
        .jitter_source(FixedJitter::new(1.0))
        .build()
        .unwrap();
    assert_eq!(
        fires(&trigger, "2024-11-02T12:00:00-04:00", None, 2),
        ["2024-11-03T02:00:10-05:00", "2024-11-04T02:00:10-05:00"]
    );
}

#[test]
fn jitter_never_passes_the_end_date() {
    let trigger = berlin()
        .minute("*")
        .jitter(Duration::from_secs(5))
        .jitter_source(FixedJitter::new(0.999))
        .end_date("2024-01-01 00:01:00")
        .build()
        .unwrap();
    assert_eq!(
        fires(&trigger, "2024-01-01T00:00:30+01:00", None, 3),
        ["2024-01-01T00:01:00+01:00"]
    );
    let random = berlin()
        .second("*/10")
        .jitter(Duration::from_secs(4))
        .build()
        .unwrap();
    let now = at("2024-01-01T00:00:01+01:00").to_utc();
    for _ in 0..100 {
        let next = random.next_fire_time(None, now).unwrap().unwrap();
        let delay = next - at("2024-01-01T00:00:10+01:00").to_utc();
        assert!(
            delay >= TimeDelta::zero() && delay <= TimeDelta::seconds(4),
            "{delay}"
        );
    }
}

#[test]
fn crontab_lines() {
    let always = CronTrigger::from_crontab("* * * * *", Europe::Berlin).unwrap();
    assert_eq!(
        fires(&always, "2024-01-01T00:00:00+01:00", None, 2),
        ["2024-01-01T00:00:00+01:00", "2024-01-01T00:01:00+01:00"]
    );
    let assorted =
        CronTrigger::from_crontab(" 0-14   * 14-28   jul       fri", Europe::Berlin).unwrap();
    assert_eq!(
        assorted.to_string(),
        "cron[month='jul', day='14-28', day_of_week='fri', hour='*', minute='0-14']"
    );
    assert_eq!(
        fires(&assorted, "2024-01-01T00:00:00+01:00", None, 2),
        ["2024-07-19T00:00:00+02:00", "2024-07-19T00:01:00+02:00"]
    );
    for (line, found) in [("@daily", 1), ("* * * *", 4), ("0 0 * * * *", 6)] {
        assert_eq!(
            CronTrigger::from_crontab(line, Tz::UTC).unwrap_err(),
            TriggerError::CrontabFieldCount {
                expression: line.into(),
                found
            }
        );
    }
}

#[test]
fn crontab_weekday_numbers_are_posix() {
    // 2024-01-07 is a Sunday.
    for line in ["0 0 * * 0", "0 0 * * 7", "0 0 * * sun"] {
        let trigger = CronTrigger::from_crontab(line, Tz::UTC).unwrap();
        assert_eq!(
            fires(&trigger, "2024-01-01T00:00:00Z", None, 1),
            ["2024-01-07T00:00:00+00:00"],
            "{line}"
        );
    }
    let weekdays = CronTrigger::from_crontab("0 9 * * 1-5", Tz::UTC).unwrap();
    assert_eq!(
        weekdays.to_string(),
        "cron[month='*', day='*', day_of_week='mon-fri', hour='9', minute='0']"
    );
    let every_other = CronTrigger::from_crontab("0 9 * * */2", Tz::UTC).unwrap();
    assert_eq!(
        every_other.to_string(),
        "cron[month='*', day='*', day_of_week='tue,thu,sat-sun', hour='9', minute='0']"
    );
    let mixed = CronTrigger::from_crontab("0 9 * * MON,0", Tz::UTC).unwrap();
    assert_eq!(
        mixed.to_string(),
        "cron[month='*', day='*', day_of_week='mon,sun', hour='9', minute='0']"
    );
    assert!(CronTrigger::from_crontab("0 0 * * 8", Tz::UTC).is_err());
    // `day` and `day_of_week` both apply, as everywhere in APScheduler 3.x.
    let first_monday = CronTrigger::from_crontab("0 0 1 * mon", Europe::Berlin).unwrap();
    assert_eq!(
        fires(&first_monday, "2024-01-01T00:00:00+01:00", None, 2),
        ["2024-01-01T00:00:00+01:00", "2024-07-01T00:00:00+02:00"]
    );
}

#[test]
fn spaces_in_lists() {
    let trigger = berlin().day("1-2, 4-7").build().unwrap();
    assert_eq!(
        fires(&trigger, "2009-01-01T00:00:00+01:00", None, 3),
        [
            "2009-01-01T00:00:00+01:00",
            "2009-01-02T00:00:00+01:00",
            "2009-01-04T00:00:00+01:00"
        ]
    );
}

#[test]
fn omitted_fields_default_like_apscheduler() {
    let sundays = berlin().day_of_week("sun").build().unwrap();
    assert_eq!(
        fires(&sundays, "2024-01-01T12:34:56+01:00", None, 1),
        ["2024-01-07T00:00:00+01:00"]
    );
    let hourly = berlin().minute(5).build().unwrap();
    assert_eq!(
        fires(&hourly, "2024-01-01T12:34:56+01:00", None, 2),
        ["2024-01-01T13:05:00+01:00", "2024-01-01T14:05:00+01:00"]
    );
    let every_second = berlin().build().unwrap();
    assert_eq!(every_second.to_string(), "cron[]");
    assert_eq!(
        fires(&every_second, "2024-01-01T12:34:56.5+01:00", None, 2),
        ["2024-01-01T12:34:57+01:00", "2024-01-01T12:34:58+01:00"]
    );
}

#[test]
fn impossible_expressions_end_quickly() {
    for builder in [
        berlin().month("feb").day(30),
        berlin().month("jul-oct").week(53),
        berlin().month(2).day(29).day_of_week("mon").week(1),
        berlin().year(2100).month(2).day(29),
    ] {
        let trigger = builder.build().unwrap();
        let now = at("2024-01-01T00:00:00+01:00").to_utc();
        assert_eq!(trigger.next_fire_time(None, now), Ok(None), "{trigger}");
        // "Never" is proved well within the budget (3.x scans up to the year 9999).
        let steps = crate::budget::last_call_steps();
        assert!(
            steps < crate::budget::STEP_BUDGET / 2,
            "{trigger}: {steps} steps"
        );
    }
}

// Issue 6, case 1: `a/n` with `a` above the field's maximum underflowed in the parser (a panic
// in debug builds, an empty field searched to the year 9999 in release builds).
#[test]
fn a_step_start_above_the_maximum_is_out_of_range() {
    for (builder, field, expression, value, max) in [
        (berlin().minute("60/5"), "minute", "60/5", 60, 59),
        (berlin().hour("24/2"), "hour", "24/2", 24, 23),
        (berlin().year("10000/3"), "year", "10000/3", 10_000, 9999),
    ] {
        assert_eq!(
            builder.build().unwrap_err(),
            TriggerError::CronExpression {
                field,
                expression: expression.into(),
                reason: crate::ExpressionError::AboveMaximum { value, max }
            }
        );
    }
    for (line, expression, value, max) in [
        ("60/5 * * * *", "60/5", 60, 59),
        ("0 0 * * 8/1", "8/1", 8, 7),
    ] {
        let error = CronTrigger::from_crontab(line, Tz::UTC).unwrap_err();
        let field = if line.starts_with('0') {
            "day_of_week"
        } else {
            "minute"
        };
        assert_eq!(
            error,
            TriggerError::CronExpression {
                field,
                expression: expression.into(),
                reason: crate::ExpressionError::AboveMaximum { value, max }
            },
            "{line}"
        );
    }
}

// Issue 6, case 4: 01:55 CST plus 60 s of jitter on the wall clock is 01:56 CDT, the
// previous fire time: 3.x answers it again and the scheduler took the trigger for stuck.
#[test]
fn jitter_in_a_repeated_hour_never_answers_the_previous_fire_time_again() {
    let trigger = CronTrigger::builder()
        .minute(55)
        .jitter(Duration::from_secs(80))
        .jitter_source(FixedJitter::new(0.75))
        .timezone(America::Chicago)
        .build()
        .unwrap();
    let now = at("2024-11-03T00:00:00-05:00").to_utc();
    let (mut previous, mut got) = (None, Vec::new());
    for _ in 0..4 {
        let next = trigger.next_fire_time(previous, now).unwrap().unwrap();
        assert!(
            previous.is_none_or(|p| next > p),
            "{next} after {previous:?}"
        );
        got.push(
            America::Chicago
                .from_utc_datetime(&next.naive_utc())
                .to_rfc3339(),
        );
        previous = Some(next);
    }
    assert_eq!(
        got,
        [
            "2024-11-03T00:56:00-05:00",
            "2024-11-03T01:56:00-05:00",
            "2024-11-03T01:56:00-06:00",
            "2024-11-03T02:56:00-06:00"
        ]
    );
}

#[test]
fn rare_but_possible_dates_are_found() {
    // ISO week 53 on a Sunday: 2027-01-03, then 2033-01-02.
    let trigger = berlin().week(53).day_of_week("sun").build().unwrap();
    assert_eq!(
        fires(&trigger, "2024-01-01T00:00:00+01:00", None, 2),
        ["2027-01-03T00:00:00+01:00", "2033-01-02T00:00:00+01:00"]
    );
    let leap = berlin().month(2).day(29).build().unwrap();
    assert_eq!(
        fires(&leap, "2097-01-01T00:00:00+01:00", None, 1),
        ["2104-02-29T00:00:00+01:00"]
    );
}

#[test]
fn state_round_trips() {
    let trigger = berlin()
        .minute("0-0/5,5/15")
        .day("last fri")
        .start_date("2024-01-01 00:00:00")
        .end_date("2030-01-01T00:00:00Z")
        .jitter(Duration::from_secs(3))
        .build()
        .unwrap();
    // APScheduler prints `0-0/5` as `0/5`, which would mean something else: the state keeps
    // the expression as given.
    assert_eq!(
        trigger.to_string(),
        "cron[day='last fri', minute='0/5,5/15']"
    );
    let state = trigger.to_state().unwrap();
    assert_eq!(state.kind, "cron");
    assert_eq!(state.state["fields"]["minute"], "0-0/5,5/15");
    let back: CronTrigger = serde_json::from_value(state.state.clone()).unwrap();
    assert_eq!(back.to_state().unwrap(), state);
    let plain = berlin()
        .minute("0-0/5,5/15")
        .day("last fri")
        .build()
        .unwrap();
    let back: CronTrigger = serde_json::from_value(plain.to_state().unwrap().state).unwrap();
    let now = at("2024-03-01T00:00:00+01:00").to_utc();
    let mut previous = None;
    for _ in 0..20 {
        let a = plain.next_fire_time(previous, now).unwrap();
        assert_eq!(a, back.next_fire_time(previous, now).unwrap());
        previous = a;
    }
    let bad = serde_json::json!({"version": 1, "fields": {"hour": "25"}, "timezone": "UTC"});
    assert!(serde_json::from_value::<CronTrigger>(bad).is_err());
}

#[test]
fn nanosecond_inputs_never_answer_before_now() {
    let trigger = berlin().second("*").build().unwrap();
    let now = at("2024-01-01T00:00:00+01:00").to_utc() + TimeDelta::nanoseconds(1);
    let next = trigger.next_fire_time(None, now).unwrap().unwrap();
    assert!(next >= now);
    assert_eq!(next, at("2024-01-01T00:00:01+01:00").to_utc());
    let _: Option<DateTime<Utc>> = Some(next);
}

/// Matches years apart come within half the budget (3.x's own search scans every day between).
#[test]
fn matches_years_apart_are_found_within_the_budget() {
    for (builder, now, first) in [
        // CI, 2026-11-30: only 1 May of a common year among the multiples of 4 (2500 is the
        // first after 2184); the step-by-step search spent its whole budget on the leap years.
        (
            berlin()
                .year("2184/4")
                .month("1-5/4")
                .week("17/10")
                .day_of_week("mon-sat"),
            "1970-01-01T01:00:00+01:00",
            "2500-05-01T00:00:00+02:00",
        ),
        // Proptest, 2026-12-01: ISO week 21 holds one of the days 1-17 (17 May) only in a
        // leap year that starts on a Thursday, every 28 years.
        (
            berlin().day("last,1-17").week(21),
            "2032-05-17T00:00:00.000001+02:00",
            "2060-05-17T00:00:00+02:00",
        ),
    ] {
        let trigger = builder.build().unwrap();
        assert_eq!(fires(&trigger, now, None, 1), [first], "{trigger}");
        let steps = crate::budget::last_call_steps();
        assert!(
            steps < crate::budget::STEP_BUDGET / 2,
            "{trigger}: {steps} steps"
        );
    }
}

/// The search with its shortcuts (year jumps, day skips) gives the answer of the plain
/// step-by-step search (run without a budget), across year steps, DST zones and instants.
#[test]
fn the_shortcuts_change_no_answer() {
    use search::{SHORTCUTS_OFF, SHORTCUTS_TAKEN};
    /// Whether the budgeted search answered.
    fn check(trigger: &CronTrigger, now: DateTime<Utc>) -> bool {
        let now = ZonedDateTime::from_instant(now, trigger.zone);
        let jumped = budget::call(|| trigger.search(None, now));
        SHORTCUTS_OFF.with(|off| off.set(true));
        let plain = trigger.search(None, now).unwrap();
        SHORTCUTS_OFF.with(|off| off.set(false));
        let show = |t: Option<ZonedDateTime>| t.map(|t| t.repr());
        // Giving up is allowed where 3.x itself scans to 9999 without a match (its DST
        // arithmetic stepping over each match); a different answer is not.
        if jumped == Err(budget::exhausted()) {
            assert_eq!(plain, None, "{trigger} from {} gave up", now.repr());
            return false;
        }
        assert_eq!(
            jumped.map(show),
            Ok(show(plain)),
            "{trigger} from {}",
            now.repr()
        );
        true
    }
    SHORTCUTS_TAKEN.with(|t| t.set([0; 2]));
    // 3.x enters 2585 from May 2584 by adding the wall-clock difference in UTC; Santiago is
    // an hour ahead in January, so the search lands on 01:00 and misses 1 January 2585 (and
    // then every later match): the jump must not start after 2584, an allowed year. (Proving
    // that no later match is hit takes more than the budget: the search gives up.)
    let lands_late = CronTrigger::builder()
        .timezone(chrono_tz::America::Santiago)
        .year("1996/4,1997/12")
        .month("1-5/4")
        .day(1)
        .week(53)
        .day_of_week("sat")
        .hour(0)
        .build()
        .unwrap();
    assert!(!check(&lands_late, DateTime::UNIX_EPOCH));
    // Mostly years among the leap years with fields that need a common year (1 May in ISO
    // week 17 is a Saturday of a year that starts on a Friday), which only the centuries give.
    let years = [
        "2184/4",
        "1972/4",
        "2000/8",
        "2100/100",
        "2023/7",
        "1996/4,1997/12",
        "*",
        "2096/4,2097/4",
    ];
    let months = ["1-5/4", "5", "*", "1,5,12", "1,5"];
    let weeks = ["17/10", "17", "53", "*", "21"];
    let weekdays = ["mon-sat", "sat", "*", "fri-sat"];
    let days = ["*", "*", "1", "last", "1-2", "last,1-17"];
    let hours = ["0", "*", "2"];
    let zones = [
        Tz::UTC,
        Europe::Berlin,
        chrono_tz::Australia::Sydney,
        chrono_tz::Australia::Lord_Howe,
        chrono_tz::America::Santiago,
        chrono_tz::Pacific::Apia,
    ];
    // Midnight, noon, a DST change in Berlin and Sydney, the eve of a year.
    let nows = [
        0i64,
        1_718_452_800,
        1_711_846_800 - 60,
        1_712_419_200 + 7,
        915_148_799,
    ];
    // A fixed xorshift picks the cases, so a failure repeats.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut pick = |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    let mut gave_up = 0;
    for _ in 0..1000 {
        let trigger = CronTrigger::builder()
            .timezone(zones[pick(zones.len())])
            .year(years[pick(years.len())])
            .month(months[pick(months.len())])
            .week(weeks[pick(weeks.len())])
            .day_of_week(weekdays[pick(weekdays.len())])
            .day(days[pick(days.len())])
            .hour(hours[pick(hours.len())])
            .build()
            .unwrap();
        let now = DateTime::from_timestamp(nows[pick(nows.len())], 0).unwrap();
        gave_up += u32::from(!check(&trigger, now));
    }
    let [year_jumps, day_skips] = SHORTCUTS_TAKEN.with(|t| t.get());
    assert!(year_jumps >= 25, "only {year_jumps} year jumps");
    assert!(day_skips >= 1000, "only {day_skips} day skips");
    assert!(gave_up <= 5, "{gave_up} cases gave up");
}

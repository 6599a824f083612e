//! Property tests: no input panics or runs past the step budget, and answers keep their
//! basic promises.
//!
//! The number of cases per property follows `PROPTEST_CASES` (default 256); run for
//! example `PROPTEST_CASES=20000 cargo test -p triggers --test it properties` for a longer
//! search. `cargo xtask fuzz` runs a million inputs.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;
use scheduler_core::{SearchExhausted, Trigger};
use triggers::budget::{self, STEP_BUDGET};
use triggers::{
    AndTrigger, CalendarIntervalTrigger, CronTrigger, CronTriggerBuilder, DateTrigger,
    IntervalTrigger, LocalTrigger, OrTrigger,
};

const FIELDS: [&str; 8] = [
    "year",
    "month",
    "day",
    "week",
    "day_of_week",
    "hour",
    "minute",
    "second",
];

fn set(builder: CronTriggerBuilder, field: &str, value: &str) -> CronTriggerBuilder {
    match field {
        "year" => builder.year(value),
        "month" => builder.month(value),
        "day" => builder.day(value),
        "week" => builder.week(value),
        "day_of_week" => builder.day_of_week(value),
        "hour" => builder.hour(value),
        "minute" => builder.minute(value),
        _ => builder.second(value),
    }
}

/// Any text, and text made of the grammar's own characters (far likelier to get deep).
fn field_text() -> impl Strategy<Value = String> {
    let alphabet: Vec<char> = "0123456789*/-, lastndrhoufmwejbcagyvpiLW#?"
        .chars()
        .collect();
    prop_oneof![
        any::<String>(),
        prop::collection::vec(prop::sample::select(alphabet), 0..14)
            .prop_map(|chars| chars.into_iter().collect::<String>()),
    ]
}

/// Instants from 1960 to 2120, to the microsecond.
fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    (-315_619_200i64..4_733_510_400, 0u32..1_000_000)
        .prop_map(|(secs, micros)| DateTime::from_timestamp(secs, micros * 1000).unwrap())
}

fn zone() -> impl Strategy<Value = Tz> {
    prop::sample::select(vec![
        Tz::UTC,
        chrono_tz::Europe::Berlin,
        chrono_tz::America::New_York,
        chrono_tz::Australia::Lord_Howe,
        chrono_tz::America::Sao_Paulo,
        chrono_tz::America::Santiago,
        chrono_tz::Pacific::Apia,
        chrono_tz::Pacific::Chatham,
        chrono_tz::America::St_Johns,
    ])
}

/// One valid list element for a field with values `min..=max`.
fn element(field: &'static str) -> BoxedStrategy<String> {
    let (min, max): (u32, u32) = match field {
        "year" => (1970, 2200),
        "month" => (1, 12),
        "day" => (1, 31),
        "week" => (1, 53),
        "day_of_week" => (0, 6),
        "hour" => (0, 23),
        _ => (0, 59),
    };
    // The step limit uses the field's real maximum, not the narrower year range above.
    let top = if field == "year" { 9999 } else { max };
    let numeric = prop_oneof![
        Just("*".to_owned()),
        (1..=(top - min)).prop_map(|n| format!("*/{n}")),
        (min..=max).prop_map(|a| a.to_string()),
        (min..=max, min..=max).prop_map(|(a, b)| format!("{}-{}", a.min(b), a.max(b))),
        (min..max, min..=max, 1u32..30).prop_map(move |(a, b, n)| {
            let (a, b) = (a.min(b), a.max(b).max(a + 1));
            format!("{a}-{b}/{}", n.min(b - a))
        }),
        (min..max, 1u32..30).prop_map(move |(a, n)| format!("{a}/{}", n.min(top - a))),
    ];
    const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    match field {
        "month" => prop_oneof![
            numeric,
            (0..12usize, 0..12usize).prop_map(|(a, b)| format!(
                "{}-{}",
                MONTHS[a.min(b)],
                MONTHS[a.max(b)].to_uppercase()
            )),
        ]
        .boxed(),
        "day_of_week" => prop_oneof![
            numeric,
            (0..7usize, 0..7usize).prop_map(|(a, b)| format!(
                "{}-{}",
                WEEKDAYS[a.min(b)],
                WEEKDAYS[a.max(b)]
            )),
        ]
        .boxed(),
        "day" => prop_oneof![
            numeric,
            Just("last".to_owned()),
            (
                prop::sample::select(vec!["1st", "2nd", "3rd", "4th", "5th", "last"]),
                0..7usize
            )
                .prop_map(|(nth, day)| format!("{nth} {}", WEEKDAYS[day])),
        ]
        .boxed(),
        _ => numeric.boxed(),
    }
}

/// A valid expression: a list of one to three elements, with stray spaces.
fn expression(field: &'static str) -> impl Strategy<Value = String> {
    prop::collection::vec(element(field), 1..=3)
        .prop_map(|elements| elements.join(" , ").replacen(" , ", ",", 1))
}

fn fields() -> impl Strategy<Value = Vec<(&'static str, String)>> {
    let per_field: Vec<_> = FIELDS
        .iter()
        .map(|&f| prop::option::weighted(0.35, expression(f)).prop_map(move |e| (f, e)))
        .collect();
    per_field.prop_map(|all| {
        all.into_iter()
            .filter_map(|(field, expr)| expr.map(|e| (field, e)))
            .collect()
    })
}

/// Runs one trigger call and checks it kept to the step budget.
fn bounded<T>(what: impl std::fmt::Display, f: impl FnOnce() -> T) -> T {
    let out = f();
    let steps = budget::last_call_steps();
    assert!(steps <= STEP_BUDGET, "{what} took {steps} steps");
    out
}

/// A single cron, interval or calendar-interval trigger always answers: its search never
/// needs the whole budget.
fn answered<T>(
    what: impl std::fmt::Display,
    answer: Result<T, SearchExhausted>,
) -> Result<T, TestCaseError> {
    answer.map_err(|e| TestCaseError::fail(format!("{what}: {e}")))
}

/// The cron trigger of `fields` in `tz`.
fn cron(fields: &[(&'static str, String)], tz: Tz) -> Result<CronTrigger, TestCaseError> {
    let mut builder = CronTrigger::builder().timezone(tz);
    for (field, expression) in fields {
        builder = set(builder, field, expression);
    }
    builder
        .build()
        .map_err(|e| TestCaseError::fail(format!("{fields:?}: {e}")))
}

/// The answer of `trigger`, the cron trigger of `fields` in `tz`, or `None` when its search
/// gave up. Only 3.x's DST arithmetic, stepping over the matches year after year, may make it
/// give up (the README's differences): the same fields in UTC must answer.
fn cron_answer(
    trigger: &CronTrigger,
    fields: &[(&'static str, String)],
    tz: Tz,
    previous: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Option<Option<DateTime<Utc>>>, TestCaseError> {
    match bounded(trigger, || trigger.next_fire_time(previous, now)) {
        Err(exhausted) if tz != Tz::UTC => {
            let in_utc = cron(fields, Tz::UTC)?;
            answered(
                &in_utc,
                bounded(&in_utc, || in_utc.next_fire_time(previous, now)),
            )
            .map_err(|e| TestCaseError::fail(format!("{trigger}: {exhausted}; {e}")))?;
            Ok(None)
        }
        answer => answered(trigger, answer).map(Some),
    }
}

proptest! {
    /// Any text in any cron field: an error or a trigger, never a panic; a trigger answers
    /// quickly with a time that is itself a fire time, and moves on after it.
    #[test]
    fn any_text_in_any_cron_field(field in prop::sample::select(FIELDS.to_vec()), text in field_text(), now in instant()) {
        let built = set(CronTrigger::builder().timezone(Tz::UTC), field, &text).build();
        if let Ok(trigger) = built {
            let answer = answered(&trigger, bounded(&trigger, || trigger.next_fire_time(None, now)))?;
            if let Some(t) = answer {
                prop_assert!(t >= now, "{trigger}: {t} before {now}");
                prop_assert_eq!(trigger.next_fire_time(None, t), Ok(Some(t)), "{}", trigger);
                let after = answered(&trigger, bounded(&trigger, || trigger.next_fire_time(Some(t), t)))?;
                prop_assert!(after.is_none_or(|a| a > t), "{trigger}: {after:?} after {t}");
            }
        }
    }

    /// Any text as a crontab line or a date argument: never a panic.
    #[test]
    fn any_text_as_crontab_or_date(text in field_text(), now in instant()) {
        if let Ok(trigger) = CronTrigger::from_crontab(&text, Tz::UTC) {
            answered(&trigger, bounded(&trigger, || trigger.next_fire_time(None, now)))?;
        }
        let _ = DateTrigger::in_zone(text.as_str(), chrono_tz::Europe::Berlin);
        let _ = IntervalTrigger::builder().seconds(1).start_date(text.as_str()).build_at(now);
    }

    /// Valid field combinations in DST zones, from any instant: they build, and the
    /// scheduler's sequence of answers comes quickly and only moves forward. A search may
    /// give up only where 3.x's DST arithmetic steps over the matches year after year (the
    /// README's differences): the same fields in UTC answer.
    #[test]
    fn field_combinations_from_any_instant(fields in fields(), tz in zone(), now in instant()) {
        let trigger = cron(&fields, tz)?;
        let (mut previous, mut at) = (None, now);
        for _ in 0..3 {
            let Some(Some(next)) = cron_answer(&trigger, &fields, tz, previous, at)? else { break };
            prop_assert!(next >= now, "{trigger}: {next} before {now}");
            if let Some(previous) = previous {
                prop_assert!(next > previous, "{trigger}: {next} after {previous}");
            }
            previous = Some(next);
            at = next;
        }
        // The local answer is the same instant.
        let local = trigger.next_local_fire_time(None, now).map(|t| t.map(|t| t.to_utc()));
        prop_assert_eq!(local, trigger.next_fire_time(None, now));
    }

    /// Interval, calendar-interval and combining triggers with arbitrary numbers.
    #[test]
    fn other_triggers_with_any_numbers(
        seconds in prop_oneof![any::<f64>(), -1e6..1e9f64],
        units in (0u32..400, 0u32..30, 0u32..60, 0u32..400),
        hms in (0u32..30, 0u32..70, 0u32..70),
        start in instant(),
        now in instant(),
        tz in zone(),
    ) {
        if let Ok(trigger) = IntervalTrigger::builder().seconds(seconds).start_date(start).timezone(tz).build_at(now) {
            let first = answered(&trigger, bounded(&trigger, || trigger.next_fire_time(None, now)))?;
            if let Some(first) = first {
                prop_assert!(first >= now.min(start) - TimeDelta::microseconds(1));
                let second = answered(&trigger, bounded(&trigger, || trigger.next_fire_time(Some(first), first)))?;
                prop_assert!(second.is_none_or(|s| s > first));
            }
        }
        let (years, months, weeks, days) = units;
        let date = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap() + TimeDelta::days(i64::from(units.3) * 97);
        let built = CalendarIntervalTrigger::builder()
            .years(years)
            .months(months)
            .weeks(weeks)
            .days(days)
            .time(hms.0, hms.1, hms.2)
            .start_date(date)
            .timezone(tz)
            .build();
        if let Ok(trigger) = built {
            let mut previous = None;
            for _ in 0..3 {
                let next = answered(&trigger, bounded(&trigger, || trigger.next_fire_time(previous, now)))?;
                let Some(next) = next else { break };
                prop_assert!(previous.is_none_or(|p| next > p), "{trigger}: {next} after {previous:?}");
                previous = Some(next);
            }
        }
        let every = |minute: String| -> Arc<dyn LocalTrigger> {
            Arc::new(CronTrigger::builder().minute(minute).second(units.1).timezone(tz).build().unwrap())
        };
        let children = vec![every(format!("*/{}", units.1.max(1))), every(format!("{}-59/7", hms.1 % 50))];
        let and = AndTrigger::new_local(children.clone()).unwrap();
        let or = OrTrigger::new_local(children).unwrap();
        // A combination may give up (never "finished" for it), but only within the budget.
        if let Ok(Some(t)) = bounded(&and, || and.next_fire_time(None, now)) {
            prop_assert!(t >= now);
        }
        if let Some(t) = answered(&or, bounded(&or, || or.next_fire_time(None, now)))? {
            prop_assert!(t >= now);
        }
    }
}

/// The chain the scheduler walks without catch-up: `first`, then `next_fire_time(Some(t),
/// until)` while it is at or before `until`; at most `cap` fire times (`None` beyond).
fn walk(
    trigger: &dyn Trigger,
    first: DateTime<Utc>,
    until: DateTime<Utc>,
    cap: usize,
) -> Option<Vec<DateTime<Utc>>> {
    let mut chain = vec![first];
    loop {
        let last = *chain.last().unwrap();
        // A search that gives up (3.x's DST arithmetic stepping over the matches, see
        // `cron_answer`) leaves a chain that cannot be walked.
        match trigger.next_fire_time(Some(last), until).ok()? {
            Some(next) if next <= until => {
                if chain.len() == cap {
                    return None;
                }
                chain.push(next);
            }
            next => {
                chain.push(next.unwrap_or(DateTime::<Utc>::MAX_UTC));
                return Some(chain);
            }
        }
    }
}

/// `catch_up` from `first` to `until` (and to a fraction of a microsecond later) agrees with
/// walking the chain: the same count, the same last fire time, the same next one (or, if it
/// stopped early, a position on the chain).
fn agrees_with_the_walk(
    trigger: &dyn Trigger,
    first: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<(), TestCaseError> {
    agrees_up_to(trigger, first, until)?;
    agrees_up_to(trigger, first, until + TimeDelta::nanoseconds(500))
}

fn agrees_up_to(
    trigger: &dyn Trigger,
    first: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<(), TestCaseError> {
    let Some(chain) = walk(trigger, first, until, 5_000) else {
        return Ok(()); // too long to walk in a test
    };
    if std::env::var("CATCH_UP_STATS").is_ok() {
        eprintln!("STAT {} {}", chain.len(), trigger);
    }
    let caught = bounded(trigger, || trigger.catch_up(first, until, u64::MAX))
        .map_err(|e| TestCaseError::fail(format!("{trigger}: {e}")))?;
    let count = usize::try_from(caught.count).unwrap();
    let walked_next = chain[chain.len() - 1];
    let walked_next = (walked_next != DateTime::<Utc>::MAX_UTC).then_some(walked_next);
    if caught.next.is_some_and(|next| next <= until) {
        // Stopped early (the step budget): still on the chain.
        prop_assert!(count < chain.len() - 1, "{trigger}: {caught:?}");
        prop_assert_eq!(
            caught.last,
            chain[count - 1],
            "{} stopped off the chain",
            trigger
        );
        prop_assert_eq!(caught.next, Some(chain[count]), "{}", trigger);
        return Ok(());
    }
    prop_assert_eq!(
        (caught.count, caught.last, caught.next),
        (
            (chain.len() - 1) as u64,
            chain[chain.len() - 2],
            walked_next
        ),
        "{} from {} to {}",
        trigger,
        first,
        until
    );
    Ok(())
}

/// Zones with DST changes of every kind, and a fixed one.
fn dst_zone() -> impl Strategy<Value = Tz> {
    prop::sample::select(vec![
        Tz::UTC,
        chrono_tz::Europe::Berlin,
        chrono_tz::America::New_York,
        chrono_tz::America::Chicago,
        chrono_tz::Australia::Lord_Howe,
        chrono_tz::America::Sao_Paulo,
        chrono_tz::America::Santiago,
        chrono_tz::Pacific::Apia,
        chrono_tz::Pacific::Chatham,
        chrono_tz::Europe::London,
    ])
}

/// Instants from 1995 to 2045, a few from 2100 on (where the zone rules are projected), and
/// a few from 2240 on (float seconds are coarser there).
fn recent_instant() -> impl Strategy<Value = DateTime<Utc>> {
    prop_oneof![
        8 => (788_918_400i64..2_366_841_600, 0u32..1_000_000),
        2 => (4_102_444_800i64..4_260_211_200, 0u32..1_000_000),
        1 => (8_520_000_000i64..8_600_000_000, 0u32..1_000_000),
    ]
    .prop_map(|(secs, micros)| DateTime::from_timestamp(secs, micros * 1000).unwrap())
}

proptest! {
    /// Interval catch-up is a division wherever float seconds step exactly, and agrees with
    /// the walk everywhere (past 2038 with odd microseconds it walks too).
    #[test]
    fn interval_catch_up_agrees_with_the_walk(
        micros in prop_oneof![
            1_000_000i64..4_000_000_000,
            1i64..5_000_000,
            (1i64..100_000).prop_map(|seconds| seconds * 1_000_000),
            Just(86_400_000_000i64),
        ],
        start in recent_instant(),
        steps in 0i64..3_000,
        extra in 0i64..1_000_000,
        tz in dst_zone(),
        end_after in prop::option::of(0i64..4_000),
    ) {
        let mut builder = IntervalTrigger::builder()
            .every(std::time::Duration::from_micros(micros as u64))
            .start_date(start)
            .timezone(tz);
        if let Some(end) = end_after {
            builder = builder.end_date(start + TimeDelta::microseconds(micros.saturating_mul(end)));
        }
        let trigger = builder.build_at(start).unwrap();
        let first = answered(&trigger, trigger.next_fire_time(None, start))?.unwrap();
        let until = first + TimeDelta::microseconds(micros.saturating_mul(steps).saturating_add(extra));
        agrees_with_the_walk(&trigger, first, until)?;
    }

    /// Calendar-interval catch-up: date arithmetic between offset changes, DST days included.
    #[test]
    fn calendar_interval_catch_up_agrees_with_the_walk(
        units in prop_oneof![
            (Just(0u32), Just(0u32), 0u32..3, 1u32..10),
            (0u32..3, 0u32..14, 0u32..2, 0u32..3),
        ],
        hms in (0u32..24, prop::sample::select(vec![0u32, 15, 30, 45]), 0u32..60),
        start in recent_instant(),
        span_days in 0i64..4_000,
        tz in dst_zone(),
    ) {
        let (years, months, weeks, days) = units;
        let built = CalendarIntervalTrigger::builder()
            .years(years)
            .months(months)
            .weeks(weeks)
            .days(days)
            .time(hms.0, hms.1, hms.2)
            .start_date(start.date_naive())
            .timezone(tz)
            .build();
        let Ok(trigger) = built else { return Ok(()) };
        let Some(first) = answered(&trigger, trigger.next_fire_time(None, start))? else { return Ok(()) };
        let until = first + TimeDelta::days(span_days) + TimeDelta::seconds(span_days * 997 % 86_400);
        agrees_with_the_walk(&trigger, first, until)?;
    }

    /// Cron catch-up: counted stretch by stretch, each offset change by the search itself.
    #[test]
    fn cron_catch_up_agrees_with_the_walk(
        fields in fields(),
        tz in dst_zone(),
        now in recent_instant(),
        span in prop_oneof![0i64..86_400 * 3, 0i64..86_400 * 400, 0i64..86_400 * 365 * 30],
    ) {
        let trigger = cron(&fields, tz)?;
        let Some(Some(first)) = cron_answer(&trigger, &fields, tz, None, now)? else { return Ok(()) };
        agrees_with_the_walk(&trigger, first, first + TimeDelta::seconds(span))?;
    }
}

//! Next fire time of a cron trigger, against the `cron` and `croner` crates on the same
//! schedules. Run with `cargo bench -p triggers`; not part of the tests.
//!
//! Each benchmark answers "the next fire time after t" for 64 instants spread over a year
//! (so DST days are among them). Before measuring, the three libraries are checked to agree
//! on every answer where their semantics coincide.

use std::hint::black_box;
use std::str::FromStr;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use criterion::{Criterion, criterion_group, criterion_main};
use scheduler_core::Trigger;
use triggers::CronTrigger;

struct Case {
    name: &'static str,
    zone: Tz,
    /// APScheduler's keyword arguments.
    fields: &'static [(&'static str, &'static str)],
    /// The same schedule for `cron` (seconds first, day of month and day of week ANDed).
    cron: &'static str,
    /// The same schedule for `croner` (seconds first).
    croner: &'static str,
    /// Whether the three must agree on every answer (not across DST changes, where each
    /// library has its own rules).
    check: bool,
}

const CASES: &[Case] = &[
    Case {
        name: "daily 02:00 UTC",
        zone: Tz::UTC,
        fields: &[("hour", "2")],
        cron: "0 0 2 * * *",
        croner: "0 0 2 * * *",
        check: true,
    },
    Case {
        name: "every 15 min UTC",
        zone: Tz::UTC,
        fields: &[("minute", "*/15")],
        cron: "0 */15 * * * *",
        croner: "0 */15 * * * *",
        check: true,
    },
    Case {
        name: "weekdays 9-17/2 :30 UTC",
        zone: Tz::UTC,
        fields: &[
            ("day_of_week", "mon-fri"),
            ("hour", "9-17/2"),
            ("minute", "30"),
        ],
        cron: "0 30 9-17/2 * * Mon-Fri",
        croner: "0 30 9-17/2 * * 1-5",
        check: true,
    },
    Case {
        name: "last fri 02:00 UTC",
        zone: Tz::UTC,
        // 31-day months, where "last Friday" is "a Friday from the 25th".
        fields: &[
            ("month", "1,3,5,7,8,10,12"),
            ("day", "last fri"),
            ("hour", "2"),
        ],
        cron: "0 0 2 25-31 1,3,5,7,8,10,12 Fri",
        croner: "0 0 2 * 1,3,5,7,8,10,12 5L",
        check: true,
    },
    Case {
        name: "every 15 min Berlin",
        zone: chrono_tz::Europe::Berlin,
        fields: &[("minute", "*/15")],
        cron: "0 */15 * * * *",
        croner: "0 */15 * * * *",
        check: false,
    },
    Case {
        name: "daily 02:30 New York",
        zone: chrono_tz::America::New_York,
        fields: &[("hour", "2"), ("minute", "30")],
        cron: "0 30 2 * * *",
        croner: "0 30 2 * * *",
        check: false,
    },
];

fn build(case: &Case) -> CronTrigger {
    let mut builder = CronTrigger::builder().timezone(case.zone);
    for &(field, value) in case.fields {
        builder = match field {
            "month" => builder.month(value),
            "day" => builder.day(value),
            "day_of_week" => builder.day_of_week(value),
            "hour" => builder.hour(value),
            "minute" => builder.minute(value),
            _ => unreachable!("{field}"),
        };
    }
    builder.build().expect("valid expression")
}

/// 64 instants over 2024, about every 5.7 days, at odd times of day.
fn instants() -> Vec<DateTime<Utc>> {
    let start = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    (0..64)
        .map(|i| start + TimeDelta::seconds(i * 491_527 + 37))
        .collect()
}

fn bench(c: &mut Criterion) {
    let instants = instants();
    for case in CASES {
        let ours = build(case);
        let theirs = cron::Schedule::from_str(case.cron).expect("cron parses");
        let croner = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Required)
            .dom_and_dow(true)
            .build()
            .parse(case.croner)
            .expect("croner parses");
        if case.check {
            for now in &instants {
                let local = now.with_timezone(&case.zone);
                let a = ours
                    .next_fire_time(None, *now)
                    .expect("within the step budget")
                    .map(|t| t.with_timezone(&case.zone));
                let b = theirs.after(&local).next();
                let c = croner.find_next_occurrence(&local, false).ok();
                assert_eq!(a, b, "{}: cron disagrees after {now}", case.name);
                assert_eq!(a, c, "{}: croner disagrees after {now}", case.name);
            }
        }
        let mut group = c.benchmark_group(case.name);
        group.bench_function("triggers", |b| {
            b.iter(|| {
                for now in &instants {
                    let _ = black_box(ours.next_fire_time(None, black_box(*now)));
                }
            })
        });
        group.bench_function("cron", |b| {
            b.iter(|| {
                for now in &instants {
                    let local = black_box(*now).with_timezone(&case.zone);
                    black_box(theirs.after(&local).next());
                }
            })
        });
        group.bench_function("croner", |b| {
            b.iter(|| {
                for now in &instants {
                    let local = black_box(*now).with_timezone(&case.zone);
                    black_box(croner.find_next_occurrence(&local, false).ok());
                }
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);

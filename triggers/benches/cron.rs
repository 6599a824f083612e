//! Next fire time of a cron trigger, against the `cron` and `croner` crates on the same
//! schedules. Run with `cargo bench -p triggers` (criterion); not part of the tests.
//! Scenario 7 of `cargo xtask bench` runs it as `cron --samples N`: a plain timing loop
//! (median of N samples) that prints one JSON line per schedule and library, the format
//! described in `docs/benchmarks.md`.
//!
//! Each benchmark answers "the next fire time after t" for 64 instants spread over a year
//! (so DST days are among them). Before measuring, the three libraries are checked to agree
//! on every answer where their semantics coincide.

use std::hint::black_box;
use std::str::FromStr;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use std::time::{Duration, Instant};

use criterion::Criterion;
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

/// The three libraries' answers for one case, as functions over the instants.
struct Contenders {
    ours: CronTrigger,
    theirs: cron::Schedule,
    croner: croner::Cron,
}

impl Contenders {
    fn new(case: &Case, instants: &[DateTime<Utc>]) -> Contenders {
        let ours = build(case);
        let theirs = cron::Schedule::from_str(case.cron).expect("cron parses");
        let croner = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Required)
            .dom_and_dow(true)
            .build()
            .parse(case.croner)
            .expect("croner parses");
        if case.check {
            for now in instants {
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
        Contenders {
            ours,
            theirs,
            croner,
        }
    }

    /// Answers "next fire time after t" for every instant with library `which`.
    fn run(&self, which: &str, zone: Tz, instants: &[DateTime<Utc>]) {
        for now in instants {
            match which {
                "triggers" => {
                    let _ = black_box(self.ours.next_fire_time(None, black_box(*now)));
                }
                "cron" => {
                    let local = black_box(*now).with_timezone(&zone);
                    black_box(self.theirs.after(&local).next());
                }
                _ => {
                    let local = black_box(*now).with_timezone(&zone);
                    black_box(self.croner.find_next_occurrence(&local, false).ok());
                }
            }
        }
    }
}

const LIBRARIES: [(&str, &str); 3] = [
    ("triggers", "this project"),
    ("cron", "cron 0.17"),
    ("croner", "croner 4"),
];

fn bench(c: &mut Criterion) {
    let instants = instants();
    for case in CASES {
        let contenders = Contenders::new(case, &instants);
        let mut group = c.benchmark_group(case.name);
        for (which, _) in LIBRARIES {
            group.bench_function(which, |b| {
                b.iter(|| contenders.run(which, case.zone, &instants))
            });
        }
        group.finish();
    }
}

/// `cargo xtask bench`'s run: per case and library, the median over `samples` samples of
/// the time per answer, each sample timing whole passes over the instants for about 20 ms.
fn samples_run(samples: usize) {
    let instants = instants();
    for case in CASES {
        let contenders = Contenders::new(case, &instants);
        for (which, side) in LIBRARIES {
            let pass = || contenders.run(which, case.zone, &instants);
            // Passes per sample, so a sample lasts about 20 ms.
            let started = Instant::now();
            pass();
            let one = started.elapsed().max(Duration::from_nanos(100));
            let passes = (Duration::from_millis(20).as_nanos() / one.as_nanos()).max(1);
            let mut per_answer: Vec<f64> = (0..samples.max(1))
                .map(|_| {
                    let started = Instant::now();
                    for _ in 0..passes {
                        pass();
                    }
                    started.elapsed().as_nanos() as f64 / (passes as f64 * instants.len() as f64)
                })
                .collect();
            per_answer.sort_by(f64::total_cmp);
            let median = per_answer[per_answer.len() / 2];
            println!("{:<28} {which:<8} {median:>8.1} ns per answer", case.name);
            let slug: String = case
                .name
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            let line = serde_json::json!({
                "id": format!("cron.{slug}"),
                "scenario": "7. cron next fire time",
                "title": format!("cron next fire time: {}", case.name),
                "params": format!("{} instants over 2024; median of {samples} samples", instants.len()),
                "metric": "ns",
                "better": "lower",
                "value": median,
                "side": side,
            });
            println!("{line}");
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--samples") {
        let samples = args
            .get(i + 1)
            .and_then(|n| n.parse().ok())
            .expect("--samples N");
        samples_run(samples);
        return;
    }
    // What `criterion_group!` and `criterion_main!` expand to.
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion);
    Criterion::default().configure_from_args().final_summary();
}

//! A fuzzing loop over every trigger constructor, crontab parsing, and next fire times (and
//! catch-ups) from random instants in random zones. Run it with `cargo xtask fuzz`
//! (`--release` to measure the slowest call); `cargo xtask fuzz --inputs N --seed S` picks
//! the size and the seed.
//!
//! Each input builds a trigger from random arguments (grammar tokens, random text, numbers of
//! every size, NaN and infinities, dates and zones from anywhere) and asks it for a few fire
//! times. The run fails on the first input that panics, answers an instant at or before the
//! previous fire time, answers a catch-up that contradicts itself, or takes more steps than
//! the budget; it prints the counts and the slowest call. `--input INDEX` runs one input of
//! the seed again (a hundred times, to profile it).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::{TZ_VARIANTS, Tz};
use scheduler_core::Trigger;
use triggers::budget::{self, STEP_BUDGET};
use triggers::{
    AndTrigger, CalendarIntervalTrigger, CronTrigger, CronTriggerBuilder, DateSpec, DateTrigger,
    FixedJitter, IntervalTrigger, LocalTrigger, OrTrigger, Zone,
};

/// How often each of the slowest calls is measured again.
const REPEATS: usize = 15;

fn main() -> ExitCode {
    let mut inputs: u64 = 1_000_000;
    let mut seed: u64 = 0x5eed;
    let mut only: Option<u64> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().and_then(|v| v.parse().ok());
        match (arg.as_str(), value) {
            ("--inputs", Some(n)) => inputs = n,
            ("--seed", Some(s)) => seed = s,
            ("--input", Some(index)) => only = Some(index),
            _ => {
                eprintln!("usage: fuzz [--inputs N] [--seed S] [--input INDEX]");
                return ExitCode::FAILURE;
            }
        }
    }
    // Panics are reported with their input below; the default hook would print each twice.
    std::panic::set_hook(Box::new(|_| {}));
    if let Some(index) = only {
        // One input, a hundred times (to reproduce or profile it), with each call's fastest
        // time and its steps.
        let mut best: Vec<(Duration, String)> = Vec::new();
        for _ in 0..100 {
            let mut again = Stats {
                timings: Some(Vec::new()),
                ..Stats::default()
            };
            if let Err(failure) = run(seed, index, &mut again) {
                eprintln!("fuzz: {failure}");
                return ExitCode::FAILURE;
            }
            fastest(&mut best, again.timings.unwrap_or_default());
        }
        for (position, (time, what)) in best.iter().enumerate() {
            println!("fuzz: input {index} (seed {seed}), call {position}: {time:?}, {what}");
        }
        return ExitCode::SUCCESS;
    }
    let started = Instant::now();
    let mut stats = Stats::default();
    for index in 0..inputs {
        if let Err(failure) = run(seed, index, &mut stats) {
            eprintln!("fuzz: {failure}");
            return ExitCode::FAILURE;
        }
    }
    let elapsed = started.elapsed();
    // A machine shared with other work preempts a call now and then: measure the slowest
    // calls again, warm, taking the fastest of several runs of each.
    let mut candidates = std::mem::take(&mut stats.candidates);
    candidates.sort_by_key(|c| std::cmp::Reverse(c.0));
    let mut slowest = (Duration::ZERO, String::new());
    for &(_, index) in candidates.iter().take(30) {
        let mut best: Vec<(Duration, String)> = Vec::new();
        for _ in 0..REPEATS {
            let mut again = Stats {
                timings: Some(Vec::new()),
                ..Stats::default()
            };
            let _ = run(seed, index, &mut again);
            fastest(&mut best, again.timings.unwrap_or_default());
        }
        for (position, (time, what)) in best.into_iter().enumerate() {
            if time > slowest.0 {
                slowest = (time, format!("input {index}, call {position}: {what}"));
            }
        }
    }
    println!(
        "fuzz: {inputs} inputs (seed {seed}) in {elapsed:.1?}: {} triggers built ({} refused \
         with an error), {} calls ({} answered, {} finished, {} gave up), {} catch-ups; most \
         steps in one call: {} of {STEP_BUDGET}; slowest call (warm, fastest of {REPEATS} runs): {:?}, {}",
        stats.built,
        stats.refused,
        stats.calls,
        stats.answered,
        stats.finished,
        stats.gave_up,
        stats.catch_ups,
        stats.most_steps,
        slowest.0,
        slowest.1,
    );
    ExitCode::SUCCESS
}

/// Keeps the fastest time of each call.
fn fastest(best: &mut Vec<(Duration, String)>, timings: Vec<(Duration, String)>) {
    for (position, timing) in timings.into_iter().enumerate() {
        match best.get_mut(position) {
            Some(known) => known.0 = known.0.min(timing.0),
            None => best.push(timing),
        }
    }
}

/// Runs input `index` of the run with `seed`.
fn run(seed: u64, index: u64, stats: &mut Stats) -> Result<(), String> {
    let mut rng = fastrand::Rng::with_seed(seed ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut input = Input::default();
    stats.index = index;
    let outcome = catch_unwind(AssertUnwindSafe(|| one(&mut rng, &mut input, stats)));
    let failure = match outcome {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(failure)) => failure,
        Err(panic) => format!(
            "panicked: {}",
            panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)")
        ),
    };
    Err(format!(
        "input {index} (--seed {seed}) failed: {failure}\n  {}",
        input.0
    ))
}

#[derive(Default)]
struct Stats {
    built: u64,
    refused: u64,
    calls: u64,
    answered: u64,
    finished: u64,
    gave_up: u64,
    catch_ups: u64,
    most_steps: u64,
    /// The input being run.
    index: u64,
    /// The slowest calls' times and inputs, to measure again at the end.
    candidates: Vec<(Duration, u64)>,
    /// When measuring again: each call's time and description.
    timings: Option<Vec<(Duration, String)>>,
}

/// What the current input is, for the failure report.
#[derive(Default)]
struct Input(String);

impl Stats {
    /// Times one call and checks its steps.
    fn call<T>(&mut self, what: impl Fn() -> String, f: impl FnOnce() -> T) -> Result<T, String> {
        let started = Instant::now();
        let out = f();
        let elapsed = started.elapsed();
        let steps = budget::last_call_steps();
        self.calls += 1;
        self.most_steps = self.most_steps.max(steps);
        match &mut self.timings {
            Some(timings) => timings.push((elapsed, format!("{} ({steps} steps)", what()))),
            None => {
                self.candidates.push((elapsed, self.index));
                if self.candidates.len() >= 200 {
                    self.candidates.sort_by_key(|c| std::cmp::Reverse(c.0));
                    self.candidates.truncate(100);
                }
            }
        }
        if steps > STEP_BUDGET {
            return Err(format!("{steps} steps, over the budget of {STEP_BUDGET}"));
        }
        Ok(out)
    }
}

fn one(rng: &mut fastrand::Rng, input: &mut Input, stats: &mut Stats) -> Result<(), String> {
    let built = match rng.u8(0..12) {
        0..=3 => cron(rng, input).map(into_local),
        4 => crontab(rng, input).map(into_local),
        5 | 6 => interval(rng, input).map(into_local),
        7 => calendar(rng, input).map(into_local),
        8 => date(rng, input).map(into_local),
        _ => combination(rng, input, 0).map(|t| t as Arc<dyn LocalTrigger>),
    };
    let trigger = match built {
        Some(trigger) => trigger,
        None => {
            stats.refused += 1;
            return Ok(());
        }
    };
    stats.built += 1;
    input.0.push_str(&format!(" => {trigger}"));
    exercise(rng, &*trigger, input, stats)
}

fn into_local<T: LocalTrigger>(trigger: T) -> Arc<dyn LocalTrigger> {
    Arc::new(trigger)
}

/// Asks for a chain of fire times, local times and a catch-up, checking each answer.
fn exercise(
    rng: &mut fastrand::Rng,
    trigger: &dyn LocalTrigger,
    input: &mut Input,
    stats: &mut Stats,
) -> Result<(), String> {
    let now = instant(rng);
    input.0.push_str(&format!(" from {now}"));
    let describe = || format!("{trigger} from {now}");
    let mut previous: Option<DateTime<Utc>> = None;
    let mut at = now;
    for _ in 0..rng.usize(1..5) {
        let answer = stats.call(describe, || trigger.next_fire_time(previous, at))?;
        let next = match answer {
            Ok(Some(next)) => next,
            Ok(None) => {
                stats.finished += 1;
                break;
            }
            Err(_) => {
                stats.gave_up += 1;
                break;
            }
        };
        stats.answered += 1;
        if let Some(previous) = previous
            && next <= previous
        {
            return Err(format!("answered {next} after {previous}"));
        }
        previous = Some(next);
        at = if rng.bool() {
            next
        } else {
            next.max(instant(rng))
        };
    }
    // The local answer never goes back either.
    let local_previous = previous.map(|p| trigger.local_zone().unwrap_or(Zone::UTC).to_local(p));
    if let Ok(Some(next)) = stats.call(describe, || {
        trigger.next_local_fire_time(local_previous, at)
    })? && previous.is_some_and(|p| next.to_utc() <= p)
    {
        return Err(format!("answered {next} locally after {previous:?}"));
    }
    // A catch-up from the first answer, to a random later time.
    if let Some(first) = previous {
        let until = if rng.bool() {
            first + chrono::TimeDelta::seconds(rng.i64(0..400_000_000))
        } else {
            first.max(instant(rng))
        };
        let max_steps = rng.u64(1..20_000);
        stats.catch_ups += 1;
        if let Ok(caught) = stats.call(describe, || trigger.catch_up(first, until, max_steps))? {
            let consistent = caught.count >= 1
                && caught.last >= first
                && caught.last <= until
                && (caught.count == 1) == (caught.last == first)
                && caught.next.is_none_or(|next| next > caught.last);
            if !consistent {
                return Err(format!("catch-up from {first} to {until}: {caught:?}"));
            }
        }
    }
    Ok(())
}

// ----- instants, zones, dates ---------------------------------------------------------------

fn instant(rng: &mut fastrand::Rng) -> DateTime<Utc> {
    let seconds = match rng.u8(0..10) {
        // Anywhere in Python's datetime range, and a little beyond.
        0 => rng.i64(-62_135_596_800 - 86_400 * 3..253_402_300_800 + 86_400 * 3),
        // Around a DST change: the last Sunday of March or October, the first of November.
        1 | 2 => {
            let year = rng.i32(1970..2110);
            let (month, day) = *rng
                .choice(&[(3, 25), (10, 25), (11, 1), (4, 1), (9, 25)])
                .unwrap();
            let base = NaiveDate::from_ymd_opt(year, month, day)
                .unwrap()
                .and_hms_opt(0, 0, 0)
                .unwrap()
                .and_utc()
                .timestamp();
            base + rng.i64(0..8 * 86_400)
        }
        // Far ahead (the year 9000 and its float resolution).
        3 => rng.i64(221_845_392_000..253_402_300_800),
        _ => rng.i64(-315_619_200..4_733_510_400),
    };
    let nanos = match rng.u8(0..4) {
        0 => rng.u32(0..1_000_000_000),
        1 => rng.u32(0..1_000_000) * 1000,
        _ => 0,
    };
    DateTime::from_timestamp(seconds, nanos).unwrap_or(DateTime::UNIX_EPOCH)
}

fn tz(rng: &mut fastrand::Rng) -> Tz {
    *rng.choice(TZ_VARIANTS.iter()).unwrap()
}

fn zone(rng: &mut fastrand::Rng) -> Zone {
    if rng.u8(0..8) == 0 {
        let offset = chrono::FixedOffset::east_opt(rng.i32(-86_399..86_400)).unwrap();
        Zone::Fixed(offset)
    } else {
        Zone::Named(tz(rng))
    }
}

/// A date argument in any of its forms, sometimes broken.
fn date_spec(rng: &mut fastrand::Rng) -> DateSpec {
    match rng.u8(0..6) {
        0 => DateSpec::from(instant(rng)),
        1 => DateSpec::from(instant(rng).with_timezone(&tz(rng))),
        2 => DateSpec::from(instant(rng).naive_utc()),
        3 => DateSpec::from(instant(rng).date_naive()),
        4 => DateSpec::from(text(rng, "0123456789-:T .Z+")),
        _ => {
            let t = instant(rng);
            DateSpec::from(t.format("%Y-%m-%d %H:%M:%S%.6f").to_string())
        }
    }
}

// ----- text -------------------------------------------------------------------------------

fn text(rng: &mut fastrand::Rng, alphabet: &str) -> String {
    let chars: Vec<char> = alphabet.chars().collect();
    let len = rng.usize(0..16);
    (0..len).map(|_| *rng.choice(&chars).unwrap()).collect()
}

/// A cron field expression: mostly grammar, sometimes anything.
fn expression(rng: &mut fastrand::Rng) -> String {
    const TOKENS: [&str; 24] = [
        "*", "*/", "/", "-", ",", " , ", "last", "1st", "2nd", "3rd", "4th", "5th", "mon", "fri",
        "sun", "jan", "dec", "L", "#", "?", " ", "W", "x", "٣",
    ];
    match rng.u8(0..10) {
        0 => text(rng, "0123456789*/-, lastndrhoufmwejbcagyvpiLW#?"),
        1 => (0..rng.usize(1..6))
            .map(|_| rng.choice(TOKENS).unwrap().to_string())
            .collect(),
        2 => rng.u64(..).to_string(),
        _ => {
            let number = |rng: &mut fastrand::Rng| match rng.u8(0..6) {
                0 => rng.u32(0..100_000).to_string(),
                1 => rng.u32(1970..10_010).to_string(),
                _ => rng.u32(0..62).to_string(),
            };
            let mut parts = Vec::new();
            for _ in 0..rng.usize(1..4) {
                parts.push(match rng.u8(0..7) {
                    0 => "*".to_owned(),
                    1 => format!("*/{}", number(rng)),
                    2 => number(rng),
                    3 => format!("{}-{}", number(rng), number(rng)),
                    4 => format!("{}-{}/{}", number(rng), number(rng), number(rng)),
                    5 => format!("{}/{}", number(rng), number(rng)),
                    _ => format!(
                        "{} {}",
                        rng.choice(["1st", "2nd", "5th", "last"]).unwrap(),
                        rng.choice(["mon", "tue", "sun", "xyz"]).unwrap()
                    ),
                });
            }
            parts.join(",")
        }
    }
}

// ----- constructors -------------------------------------------------------------------------

fn jitter(rng: &mut fastrand::Rng) -> Option<f64> {
    match rng.u8(0..6) {
        0 => Some(rng.f64() * 120.0),
        1 => Some(
            *rng.choice(&[f64::NAN, f64::INFINITY, -1.0, 1e300, 0.0])
                .unwrap(),
        ),
        _ => None,
    }
}

fn cron_options(
    rng: &mut fastrand::Rng,
    mut builder: CronTriggerBuilder,
    input: &mut Input,
) -> CronTriggerBuilder {
    if rng.u8(0..4) > 0 {
        let zone = zone(rng);
        input.0.push_str(&format!(" zone={zone}"));
        builder = builder.timezone(zone);
    }
    if rng.u8(0..5) == 0 {
        let start = date_spec(rng);
        input.0.push_str(&format!(" start={start}"));
        builder = builder.start_date(start);
    }
    if rng.u8(0..5) == 0 {
        let end = date_spec(rng);
        input.0.push_str(&format!(" end={end}"));
        builder = builder.end_date(end);
    }
    if let Some(seconds) = jitter(rng) {
        input.0.push_str(&format!(" jitter={seconds}"));
        builder = builder
            .jitter(Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX))
            .jitter_source(FixedJitter::new(rng.f64()));
    }
    builder
}

fn cron(rng: &mut fastrand::Rng, input: &mut Input) -> Option<CronTrigger> {
    let mut builder = CronTrigger::builder();
    input.0 = "cron".to_owned();
    for field in [
        "year",
        "month",
        "day",
        "week",
        "day_of_week",
        "hour",
        "minute",
        "second",
    ] {
        if rng.u8(0..3) != 0 {
            continue;
        }
        let value = expression(rng);
        input.0.push_str(&format!(" {field}={value:?}"));
        builder = match field {
            "year" => builder.year(value),
            "month" => builder.month(value),
            "day" => builder.day(value),
            "week" => builder.week(value),
            "day_of_week" => builder.day_of_week(value),
            "hour" => builder.hour(value),
            "minute" => builder.minute(value),
            _ => builder.second(value),
        };
    }
    cron_options(rng, builder, input).build().ok()
}

fn crontab(rng: &mut fastrand::Rng, input: &mut Input) -> Option<CronTrigger> {
    let line = if rng.u8(0..4) == 0 {
        text(rng, "0123456789*/-, monfriSUNjan \t")
    } else {
        (0..5)
            .map(|_| expression(rng).replace(' ', ""))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let zone = zone(rng);
    input.0 = format!("crontab {line:?} zone={zone}");
    CronTrigger::from_crontab(&line, zone).ok()
}

fn number(rng: &mut fastrand::Rng) -> f64 {
    match rng.u8(0..8) {
        0 => *rng
            .choice(&[
                f64::NAN,
                f64::INFINITY,
                f64::NEG_INFINITY,
                -5.0,
                1e-7,
                1e-6,
                1e18,
            ])
            .unwrap(),
        1 => rng.f64() * 1e9,
        2 => rng.f64(),
        3 => 0.0,
        _ => f64::from(rng.u32(0..100)),
    }
}

fn interval(rng: &mut fastrand::Rng, input: &mut Input) -> Option<IntervalTrigger> {
    let (weeks, days, hours, minutes, seconds) = (
        number(rng) * 0.01,
        number(rng) * 0.1,
        number(rng),
        number(rng),
        number(rng),
    );
    input.0 = format!(
        "interval weeks={weeks} days={days} hours={hours} minutes={minutes} seconds={seconds}"
    );
    let mut builder = IntervalTrigger::builder()
        .weeks(weeks)
        .days(days)
        .hours(hours)
        .minutes(minutes)
        .seconds(seconds);
    if rng.u8(0..4) == 0 {
        let every = Duration::from_nanos(rng.u64(0..1_000_000_000_000));
        input.0.push_str(&format!(" every={every:?}"));
        builder = builder.every(every);
    }
    if rng.bool() {
        let start = date_spec(rng);
        input.0.push_str(&format!(" start={start}"));
        builder = builder.start_date(start);
    }
    if rng.u8(0..4) == 0 {
        let end = date_spec(rng);
        input.0.push_str(&format!(" end={end}"));
        builder = builder.end_date(end);
    }
    if rng.bool() {
        let zone = zone(rng);
        input.0.push_str(&format!(" zone={zone}"));
        builder = builder.timezone(zone);
    }
    if let Some(seconds) = jitter(rng) {
        input.0.push_str(&format!(" jitter={seconds}"));
        builder = builder
            .jitter(Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX))
            .jitter_source(FixedJitter::new(rng.f64()));
    }
    builder.build_at(instant(rng)).ok()
}

fn calendar(rng: &mut fastrand::Rng, input: &mut Input) -> Option<CalendarIntervalTrigger> {
    let small = |rng: &mut fastrand::Rng| {
        if rng.u8(0..8) == 0 {
            rng.u32(..)
        } else {
            rng.u32(0..14)
        }
    };
    let (years, months, weeks, days) = (small(rng), small(rng), small(rng), small(rng));
    let time = (rng.u32(0..26), rng.u32(0..62), rng.u32(0..62));
    let start = instant(rng).date_naive();
    let zone = zone(rng);
    input.0 = format!(
        "calendarinterval years={years} months={months} weeks={weeks} days={days} time={time:?} start={start} zone={zone}"
    );
    let mut builder = CalendarIntervalTrigger::builder()
        .years(years)
        .months(months)
        .weeks(weeks)
        .days(days)
        .time(time.0, time.1, time.2)
        .start_date(start)
        .timezone(zone);
    if rng.u8(0..4) == 0 {
        let end = instant(rng).date_naive();
        input.0.push_str(&format!(" end={end}"));
        builder = builder.end_date(end);
    }
    if let Some(seconds) = jitter(rng) {
        input.0.push_str(&format!(" jitter={seconds}"));
        builder = builder
            .jitter(Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX))
            .jitter_source(FixedJitter::new(rng.f64()));
    }
    builder.build().ok()
}

fn date(rng: &mut fastrand::Rng, input: &mut Input) -> Option<DateTrigger> {
    if rng.bool() {
        let at = instant(rng);
        let zone = tz(rng);
        input.0 = format!("date {at} in {zone}");
        return Some(DateTrigger::new(zone.from_utc_datetime(&at.naive_utc())));
    }
    let spec = date_spec(rng);
    let zone = zone(rng);
    input.0 = format!("date {spec} in {zone}");
    DateTrigger::in_zone(spec, zone).ok()
}

fn child(rng: &mut fastrand::Rng, depth: u8) -> Option<Arc<dyn LocalTrigger>> {
    let mut scratch = Input::default();
    match rng.u8(0..6) {
        0 | 1 => cron(rng, &mut scratch).map(into_local),
        2 => interval(rng, &mut scratch).map(into_local),
        3 => calendar(rng, &mut scratch).map(into_local),
        4 => date(rng, &mut scratch).map(into_local),
        _ if depth < 2 => {
            combination(rng, &mut scratch, depth + 1).map(|t| t as Arc<dyn LocalTrigger>)
        }
        _ => date(rng, &mut scratch).map(into_local),
    }
}

fn combination(
    rng: &mut fastrand::Rng,
    input: &mut Input,
    depth: u8,
) -> Option<Arc<dyn LocalTrigger>> {
    let children: Vec<Arc<dyn LocalTrigger>> = (0..rng.usize(1..4))
        .filter_map(|_| child(rng, depth))
        .collect();
    let local = rng.bool();
    let jitter = jitter(rng).unwrap_or(0.0);
    let jitter = Duration::try_from_secs_f64(jitter).unwrap_or(Duration::ZERO);
    input.0 = format!(
        "combination of {} children, jitter {jitter:?}",
        children.len()
    );
    if rng.bool() {
        let and = if local {
            AndTrigger::new_local(children).ok()?
        } else {
            AndTrigger::new(
                children
                    .into_iter()
                    .map(|c| c as Arc<dyn Trigger>)
                    .collect(),
            )
            .ok()?
        };
        let mut and = and
            .jitter(jitter)
            .jitter_source(FixedJitter::new(rng.f64()))
            .threshold(Duration::from_millis(rng.u64(0..3_000)));
        if rng.u8(0..3) == 0 {
            and = and.max_iterations(rng.u32(..));
        }
        if rng.u8(0..3) == 0 {
            and = and.horizon(Duration::from_secs(rng.u64(..)));
        }
        Some(Arc::new(and))
    } else {
        let or = if local {
            OrTrigger::new_local(children).ok()?
        } else {
            OrTrigger::new(
                children
                    .into_iter()
                    .map(|c| c as Arc<dyn Trigger>)
                    .collect(),
            )
            .ok()?
        };
        Some(Arc::new(
            or.jitter(jitter).jitter_source(FixedJitter::new(rng.f64())),
        ))
    }
}

//! Scenario 3 of `cargo xtask bench`, start latency on the tokio executor: how late each run
//! starts after its scheduled time (p50 / p99 / max).
//!
//! - `--kind date --jobs 1000 --spread-ms 5000`: date jobs spread evenly over 5 s.
//! - `--kind interval --jobs 200 --firings 3`: interval jobs (1 s) starting together, each
//!   run's lateness taken from its own slot of the interval.
//!
//! `cargo bench -p executors` runs both; figures are printed, not asserted: a human line,
//! then one JSON line per figure (the format is described in `docs/benchmarks.md`).
//! `xtask/apscheduler/latency.py` does the same on APScheduler.
//!
//! `--idle-secs N` instead prints the CPU time a scheduler with one job an hour uses over N s
//! (the precise wake-ups must not cost an idle scheduler anything).
//!
//! With `--kind date`, the same instants are then slept to by a plain thread with
//! `std::thread::sleep` and no scheduler: the floor the machine sets (a thread that is woken
//! still waits for a CPU; on a shared virtual machine, for the host), printed beside the
//! scheduler's figures.
//!
//! `--hops` also prints where the time goes: the same figures for each step of the clock's
//! wake-ups (`scheduler_core::clock`'s trace events), for people only.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use executors::TokioExecutor;
use jobstore_memory::MemoryJobStore;
use scheduler_core::{Clock, JobRegistry, JobSpec, Scheduler, SystemClock};
use triggers::{DateTrigger, IntervalTrigger};

const INTERVAL_US: i64 = 1_000_000;

/// How late a plain thread wakes for `jobs` instants spread over `spread_ms`, paced as the
/// date jobs are, in milliseconds (sorted): the machine's own floor under the scheduler's
/// figures.
fn plain_sleep_floor(jobs: i64, spread_ms: i64) -> Vec<f64> {
    let start = SystemClock.now() + TimeDelta::milliseconds(100);
    let mut ms: Vec<f64> = (0..jobs)
        .map(|i| {
            let at = start + TimeDelta::microseconds(i * spread_ms * 1000 / jobs + i % 997);
            if let Ok(left) = (at - SystemClock.now()).to_std() {
                std::thread::sleep(left);
            }
            (SystemClock.now() - at)
                .num_microseconds()
                .unwrap_or(i64::MAX) as f64
                / 1e3
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    ms
}

/// A multi-thread runtime, as `#[tokio::main]` builds it.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// A started scheduler with the memory store and the tokio executor.
async fn start_scheduler(registry: JobRegistry) -> Scheduler {
    let scheduler = Scheduler::builder()
        .registry(registry)
        .jobstore("default", MemoryJobStore::new())
        .executor("default", TokioExecutor::new())
        .build()
        .expect("scheduler builds");
    scheduler.start().await.expect("scheduler starts");
    scheduler
}

/// Runs one case; answers each run's lateness in milliseconds.
fn measure(kind: &str, jobs: i64, spread_ms: i64, firings: i64) -> Vec<f64> {
    let runtime = runtime();
    let lateness: Arc<Mutex<Vec<f64>>> = Arc::default();
    let registry = JobRegistry::new();
    let sink = lateness.clone();
    let interval = kind == "interval";
    let probe = registry.register_async("probe", move |scheduled_us: i64| {
        let mut late = SystemClock.now().timestamp_micros() - scheduled_us;
        if interval {
            // Runs of one job are a whole number of intervals after its start.
            late = late.rem_euclid(INTERVAL_US);
        }
        let sink = sink.clone();
        async move {
            sink.lock()
                .expect("no panics while holding")
                .push(late as f64 / 1e3);
        }
    });
    let expected = if interval { jobs * firings } else { jobs } as usize;
    runtime.block_on(async {
        let scheduler = start_scheduler(registry).await;
        // Room to add every job before the first is due, even on a loaded machine.
        let start: DateTime<Utc> = SystemClock.now() + TimeDelta::milliseconds(1500);
        let mut ids = Vec::new();
        for i in 0..jobs {
            let spec = if interval {
                let trigger = IntervalTrigger::builder()
                    .every(Duration::from_micros(INTERVAL_US as u64))
                    .start_date(start)
                    .build()
                    .expect("a valid interval");
                JobSpec::new(probe.call(start.timestamp_micros()), trigger)
            } else {
                // Microsecond offsets so instants do not line up with millisecond ticks.
                let at = start + TimeDelta::microseconds(i * spread_ms * 1000 / jobs + i % 997);
                JobSpec::new(probe.call(at.timestamp_micros()), DateTrigger::new(at))
            };
            let job = scheduler
                .add_job(spec.misfire_grace_time(None))
                .await
                .expect("job added");
            ids.push(job.id().to_owned());
        }
        while lateness.lock().expect("no panics while holding").len() < expected {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if interval {
            for id in &ids {
                scheduler.remove_job(id, None).await.expect("job removed");
            }
        }
        scheduler.shutdown(true).await.expect("scheduler stops");
    });
    let mut ms = lateness.lock().expect("no panics while holding").clone();
    ms.truncate(expected);
    ms.sort_by(f64::total_cmp);
    ms
}

/// This process's CPU time so far (user and system), in clock ticks (Linux: `/proc`).
fn cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name, whose parentheses may hold spaces: utime is the 14th
    // field of the line, stime the 15th.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// Runs a scheduler with one job an hour for `secs` seconds; prints the CPU time it used.
fn idle(secs: u64) {
    let runtime = runtime();
    let registry = JobRegistry::new();
    let hourly = registry.register_async("hourly", |(): ()| async {});
    runtime.block_on(async {
        let scheduler = start_scheduler(registry).await;
        let trigger = IntervalTrigger::builder()
            .every(Duration::from_secs(3600))
            .build()
            .expect("a valid interval");
        scheduler
            .add_job(JobSpec::new(hourly.call(()), trigger))
            .await
            .expect("job added");
        let before = cpu_ticks();
        tokio::time::sleep(Duration::from_secs(secs)).await;
        match before.zip(cpu_ticks()) {
            Some((before, after)) => println!(
                "one job an hour, {secs} s: {} clock ticks of CPU ({:.2} % of a core at 100 Hz)",
                after - before,
                (after - before) as f64 / secs as f64
            ),
            None => println!("no CPU time figures on this system"),
        }
        scheduler.shutdown(true).await.expect("scheduler stops");
    });
}

/// p50, p99 and max of sorted figures.
fn percentiles(ms: &[f64]) -> (f64, f64, f64) {
    let pct = |p: f64| ms[((ms.len() as f64 - 1.0) * p).round() as usize];
    (pct(0.50), pct(0.99), ms[ms.len() - 1])
}

/// Collects the clock's wake-up steps (`--hops`): per step, how far past the deadline it
/// was reached, in milliseconds.
#[derive(Default)]
struct Hops(Mutex<BTreeMap<String, Vec<f64>>>);

/// One trace event's `hop` and `behind_us` fields.
#[derive(Default)]
struct HopFields(Option<String>, Option<i64>);

impl tracing::field::Visit for HopFields {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "hop" {
            self.0 = Some(value.to_owned());
        }
    }
    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        if field.name() == "behind_us" {
            self.1 = Some(value);
        }
    }
    fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
}

impl tracing::Subscriber for Hops {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        metadata.target() == "scheduler_core::clock"
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = HopFields::default();
        event.record(&mut fields);
        if let HopFields(Some(hop), Some(us)) = fields {
            let mut hops = self.0.lock().expect("no panics while holding");
            hops.entry(hop).or_default().push(us as f64 / 1e3);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// Prints the collected steps' figures and forgets them.
fn print_hops(hops: &Hops) {
    let mut hops = hops.0.lock().expect("no panics while holding");
    for (hop, ms) in hops.iter_mut() {
        ms.sort_by(f64::total_cmp);
        let (p50, p99, max) = percentiles(ms);
        println!(
            "  clock step {hop:>8} ({:>5} times): p50 {p50:.3} ms  p99 {p99:.3} ms  max {max:.3} ms",
            ms.len()
        );
    }
    hops.clear();
}

fn report(kind: &str, jobs: i64, spread_ms: i64, firings: i64, hops: Option<&Hops>) {
    let ms = measure(kind, jobs, spread_ms, firings);
    let (p50, p99, max) = percentiles(&ms);
    let (title, params) = if kind == "interval" {
        (
            format!("start latency, {jobs} interval jobs (1 s) firing together"),
            format!("{firings} firings each; tokio executor"),
        )
    } else {
        (
            format!(
                "start latency, {jobs} date jobs over {} s",
                spread_ms / 1000
            ),
            "tokio executor".to_owned(),
        )
    };
    println!("{title}: p50 {p50:.3} ms  p99 {p99:.3} ms  max {max:.3} ms");
    if let Some(hops) = hops {
        print_hops(hops);
    }
    let figure = |id: String, title: String, params: &str, value: f64| {
        let line = serde_json::json!({
            "id": id,
            "scenario": "3. start latency",
            "title": title,
            "params": params,
            "metric": "ms",
            "better": "lower",
            "value": value,
        });
        println!("{line}");
    };
    for (stat, value) in [("p50", p50), ("p99", p99), ("max", max)] {
        figure(
            format!("latency.{kind}{jobs}.{stat}"),
            format!("{title}: {stat}"),
            &params,
            value,
        );
    }
    if kind == "date" {
        let floor = plain_sleep_floor(jobs, spread_ms);
        let (_, p99, max) = percentiles(&floor);
        let title =
            format!("floor: a plain thread sleeping to the same {jobs} instants, no scheduler");
        println!("{title}: p99 {p99:.3} ms  max {max:.3} ms");
        for (stat, value) in [("p99", p99), ("max", max)] {
            figure(
                format!("latency.floor{jobs}.{stat}"),
                format!("{title}: {stat}"),
                "std::thread::sleep to each instant",
                value,
            );
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let hops = args.iter().any(|a| a == "--hops").then(|| {
        let hops = Arc::new(Hops::default());
        tracing::subscriber::set_global_default(hops.clone()).expect("the only subscriber");
        hops
    });
    let hops = hops.as_deref();
    let value = |flag: &str, default: i64| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .map_or(default, |v| v.parse().expect("a number"))
    };
    if args.iter().any(|a| a == "--idle-secs") {
        idle(value("--idle-secs", 20) as u64);
        return;
    }
    match args.iter().position(|a| a == "--kind") {
        Some(i) => {
            let kind = args.get(i + 1).map_or("date", String::as_str);
            let jobs = value("--jobs", if kind == "interval" { 200 } else { 1_000 });
            report(
                kind,
                jobs,
                value("--spread-ms", 5_000),
                value("--firings", 3),
                hops,
            );
        }
        None => {
            report("date", 1_000, 5_000, 1, hops);
            report("interval", 200, 0, 3, hops);
        }
    }
}

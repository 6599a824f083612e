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

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use executors::TokioExecutor;
use jobstore_memory::MemoryJobStore;
use scheduler_core::{Clock, JobRegistry, JobSpec, Scheduler, SystemClock};
use triggers::{DateTrigger, IntervalTrigger};

const INTERVAL_US: i64 = 1_000_000;

/// Runs one case; answers each run's lateness in milliseconds.
fn measure(kind: &str, jobs: i64, spread_ms: i64, firings: i64) -> Vec<f64> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
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
        let scheduler = Scheduler::builder()
            .registry(registry)
            .jobstore("default", MemoryJobStore::new())
            .executor("default", TokioExecutor::new())
            .build()
            .expect("scheduler builds");
        scheduler.start().await.expect("scheduler starts");
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

fn report(kind: &str, jobs: i64, spread_ms: i64, firings: i64) {
    let ms = measure(kind, jobs, spread_ms, firings);
    let pct = |p: f64| ms[((ms.len() as f64 - 1.0) * p).round() as usize];
    let (p50, p99, max) = (pct(0.50), pct(0.99), ms[ms.len() - 1]);
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
    for (stat, value) in [("p50", p50), ("p99", p99), ("max", max)] {
        let line = serde_json::json!({
            "id": format!("latency.{kind}{jobs}.{stat}"),
            "scenario": "3. start latency",
            "title": format!("{title}: {stat}"),
            "params": params,
            "metric": "ms",
            "better": "lower",
            "value": value,
        });
        println!("{line}");
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str, default: i64| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .map_or(default, |v| v.parse().expect("a number"))
    };
    match args.iter().position(|a| a == "--kind") {
        Some(i) => {
            let kind = args.get(i + 1).map_or("date", String::as_str);
            let jobs = value("--jobs", if kind == "interval" { 200 } else { 1_000 });
            report(
                kind,
                jobs,
                value("--spread-ms", 5_000),
                value("--firings", 3),
            );
        }
        None => {
            report("date", 1_000, 5_000, 1);
            report("interval", 200, 0, 3);
        }
    }
}

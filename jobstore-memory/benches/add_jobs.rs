//! Scenario 1 of `cargo xtask bench`: adds date jobs to the memory store and prints jobs/s
//! and the memory each job costs. `cargo bench -p jobstore-memory` runs every case at 100k
//! and 1M jobs; `cargo xtask bench` runs it as `add_jobs --case CASE --jobs N`. Figures are
//! printed, not asserted: a human line, then one JSON line per figure (the format is
//! described in `docs/benchmarks.md`).
//!
//! Memory is the growth of the process's resident set (`VmRSS` in `/proc/self/status`) while
//! the jobs are added, divided by the number of jobs: everything a job really costs, including
//! allocator overhead, as APScheduler's figure is measured (`xtask/apscheduler/add.py`).

use std::time::Instant;

use chrono::TimeDelta;
use jobstore_memory::MemoryJobStore;
use scheduler_core::{Clock, JobDefaults, JobRegistry, JobSpec, JobStore, Scheduler, SystemClock};
use serde::{Deserialize, Serialize};
use triggers::DateTrigger;

#[derive(Serialize, Deserialize)]
struct Order {
    order_id: u64,
}

/// Jobs per `add_jobs` call in the batch case.
const BATCH: usize = 10_000;

/// CPU time the process has used (every thread, user and system), from `/proc/self/stat`
/// in the kernel's fixed 1/100 s ticks: on a shared machine it tells a slow add from a
/// starved one (the figure is wall time, as APScheduler's).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
    let user: u64 = fields.nth(11)?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some((user + system) as f64 / 100.0)
}

fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// One figure in the line format of `cargo xtask bench`.
fn emit(id: String, title: String, params: &str, metric: &str, better: &str, value: f64) {
    let line = serde_json::json!({
        "id": id,
        "scenario": "1. add date jobs",
        "title": title,
        "params": params,
        "metric": metric,
        "better": better,
        "value": value,
    });
    println!("{line}");
}

/// Where a measurement began: the wall clock, and the process's CPU time and memory.
struct Start {
    at: Instant,
    cpu: Option<f64>,
    rss: Option<u64>,
}

impl Start {
    fn now() -> Self {
        let (cpu, rss) = (cpu_seconds(), rss_bytes());
        Start {
            at: Instant::now(),
            cpu,
            rss,
        }
    }
}

fn report(case: &str, n: usize, start: Start) {
    let secs = start.at.elapsed().as_secs_f64();
    let cpu = start
        .cpu
        .zip(cpu_seconds())
        .map(|(before, after)| after - before);
    let rate = n as f64 / secs;
    let per_job = start
        .rss
        .zip(rss_bytes())
        .map(|(before, after)| after.saturating_sub(before) as f64 / n as f64);
    println!(
        "{case:<10} {n:>9} jobs  {secs:>8.3} s  {rate:>10.0} jobs/s  {}  {}",
        per_job.map_or_else(|| "memory n/a".to_owned(), |b| format!("{b:.0} B/job")),
        cpu.map_or_else(|| "cpu n/a".to_owned(), |c| format!("cpu {c:.2} s"))
    );
    let count = thousands(n);
    let params = "memory store; tokio executor; scheduler running";
    match case {
        "store" => emit(
            format!("add.store.{n}"),
            format!("add {count} jobs, store alone (no scheduler)"),
            "memory store; build job + add_job",
            "jobs/s",
            "higher",
            rate,
        ),
        "batch" => emit(
            format!("add.batch.{n}"),
            format!("add {count} jobs with add_jobs"),
            &format!("{params}; batches of {}", thousands(BATCH)),
            "jobs/s",
            "higher",
            rate,
        ),
        _ => {
            emit(
                format!("add.running.{n}"),
                format!("add {count} date jobs one by one"),
                params,
                "jobs/s",
                "higher",
                rate,
            );
            if let Some(bytes) = per_job {
                emit(
                    format!("memory.{n}"),
                    format!("memory per job, {count} jobs"),
                    "RSS growth while adding / jobs",
                    "B/job",
                    "lower",
                    bytes,
                );
            }
        }
    }
}

/// `100000` as `100k`, `1000000` as `1M`.
fn thousands(n: usize) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

/// Each case runs in a fresh process so the memory it measures is its own: freed memory of
/// an earlier case would otherwise be reused and hide the growth.
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
    };
    if let Some(case) = value("--case") {
        let n: usize = value("--jobs")
            .and_then(|n| n.parse().ok())
            .expect("--jobs N");
        run_case(case, n);
        return;
    }
    let exe = std::env::current_exe().expect("the bench binary");
    for case in ["store", "scheduler", "batch"] {
        for n in ["100000", "1000000"] {
            let status = std::process::Command::new(&exe)
                .args(["--case", case, "--jobs", n])
                .status()
                .expect("the bench binary runs");
            assert!(status.success(), "case {case} {n} failed");
        }
    }
}

fn run_case(case: &str, n: usize) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let registry = JobRegistry::new();
    let cancel = registry.register_sync("cancel_order", |_: Order| ());
    let now = SystemClock.now();
    let far = now + TimeDelta::days(365);
    let defaults = JobDefaults::default();
    let spec = |i: u64| {
        JobSpec::new(
            cancel.call(Order { order_id: i }),
            DateTrigger::new(far + TimeDelta::seconds(i as i64)),
        )
    };
    runtime.block_on(async {
        if case == "store" {
            let store = MemoryJobStore::new();
            let start = Start::now();
            for i in 0..n as u64 {
                let job = spec(i).into_job(&defaults, now).expect("valid job");
                store.add_job(job).await.expect("unique ids");
            }
            report(case, n, start);
            return;
        }
        let scheduler = Scheduler::builder()
            .registry(registry.clone())
            .jobstore("default", MemoryJobStore::new())
            .executor("default", executors::TokioExecutor::new())
            .build()
            .expect("scheduler builds");
        scheduler.start().await.expect("scheduler starts");
        let start = Start::now();
        if case == "batch" {
            for first in (0..n as u64).step_by(BATCH) {
                let last = (first + BATCH as u64).min(n as u64);
                let answers = scheduler
                    .add_jobs((first..last).map(spec))
                    .await
                    .expect("scheduler usable");
                for answer in answers {
                    answer.expect("job added");
                }
            }
        } else {
            for i in 0..n as u64 {
                scheduler.add_job(spec(i)).await.expect("job added");
            }
        }
        report(case, n, start);
        scheduler.shutdown(false).await.expect("scheduler stops");
    });
}

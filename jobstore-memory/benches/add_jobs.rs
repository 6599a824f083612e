//! Adds 100,000 and 1,000,000 date jobs to the memory store and prints jobs/s and the memory
//! each job costs. Run with `cargo bench -p jobstore-memory`; figures are printed, not
//! asserted.
//!
//! Memory is the growth of the process's resident set (`VmRSS` in `/proc/self/status`) while
//! the jobs are added, divided by the number of jobs: everything a job really costs, including
//! allocator overhead, as APScheduler's figure is measured.

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

fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn report(what: &str, n: usize, started: Instant, rss_before: Option<u64>) {
    let secs = started.elapsed().as_secs_f64();
    let per_job = match (rss_before, rss_bytes()) {
        (Some(before), Some(after)) => format!(
            "{:.0} B/job",
            after.saturating_sub(before) as f64 / n as f64
        ),
        _ => "memory n/a".to_owned(),
    };
    println!(
        "{what:<48} {n:>9} jobs  {:>8.3} s  {:>10.0} jobs/s  {per_job}",
        secs,
        n as f64 / secs
    );
}

/// Each case runs in a fresh process so the memory it measures is its own: freed memory of
/// an earlier case would otherwise be reused and hide the growth.
fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(pos) = args.iter().position(|a| a == "--case") {
        let case = &args[pos + 1];
        let n: usize = args[pos + 2].parse().expect("a job count");
        run_case(case, n);
        return;
    }
    let exe = std::env::current_exe().expect("the bench binary");
    for case in ["store", "scheduler"] {
        for n in ["100000", "1000000"] {
            let status = std::process::Command::new(&exe)
                .args(["--case", case, n])
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
        match case {
            "store" => {
                let store = MemoryJobStore::new();
                let rss = rss_bytes();
                let started = Instant::now();
                for i in 0..n as u64 {
                    let job = spec(i).into_job(&defaults, now).expect("valid job");
                    store.add_job(job).await.expect("unique ids");
                }
                report("memory store: build job + add_job", n, started, rss);
            }
            _ => {
                let scheduler = Scheduler::builder()
                    .registry(registry.clone())
                    .jobstore("default", MemoryJobStore::new())
                    .executor("default", executors::TokioExecutor::new())
                    .build()
                    .expect("scheduler builds");
                scheduler.start().await.expect("scheduler starts");
                let rss = rss_bytes();
                let started = Instant::now();
                for i in 0..n as u64 {
                    scheduler.add_job(spec(i)).await.expect("job added");
                }
                report("scheduler running: add_job (memory store)", n, started, rss);
                scheduler.shutdown(false).await.expect("scheduler stops");
            }
        }
    });
}

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

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let registry = JobRegistry::new();
    let cancel = registry.register_sync("cancel_order", |_: Order| ());
    let now = SystemClock.now();
    let far = now + TimeDelta::days(365);
    let defaults = JobDefaults::default();

    for n in [100_000, 1_000_000] {
        runtime.block_on(async {
            let store = MemoryJobStore::new();
            let specs: Vec<JobSpec> = (0..n as u64)
                .map(|i| {
                    JobSpec::new(
                        cancel.call(Order { order_id: i }),
                        DateTrigger::new(far + TimeDelta::seconds(i as i64)),
                    )
                })
                .collect();
            // Building specs is the caller's cost; the store's starts here.
            let jobs: Vec<_> = specs
                .into_iter()
                .map(|s| s.into_job(&defaults, now).expect("valid job"))
                .collect();
            let rss = rss_bytes();
            let started = Instant::now();
            for job in jobs {
                store.add_job(job).await.expect("unique ids");
            }
            report("memory store: add_job (store only)", n, started, rss);
        });
    }

    for n in [100_000, 1_000_000] {
        runtime.block_on(async {
            let scheduler = Scheduler::builder()
                .registry(registry.clone())
                .jobstore("default", MemoryJobStore::new())
                .executor("default", executors::TokioExecutor::new())
                .build();
            scheduler.start().await.expect("scheduler starts");
            let rss = rss_bytes();
            let started = Instant::now();
            for i in 0..n as u64 {
                let at = far + TimeDelta::seconds(i as i64);
                scheduler
                    .add_job(JobSpec::new(
                        cancel.call(Order { order_id: i }),
                        DateTrigger::new(at),
                    ))
                    .await
                    .expect("job added");
            }
            report("scheduler running: add_job (memory store)", n, started, rss);
            scheduler.shutdown(false).await.expect("scheduler stops");
        });
    }
}

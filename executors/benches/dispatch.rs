//! Dispatch throughput: N date jobs due at the same instant, from the due instant to the last
//! completion. Run with `cargo bench -p executors`; figures are printed, not asserted.
//!
//! Cases: 100,000 jobs on the tokio executor (with and without an event subscriber reading
//! every `JobExecuted`), and 10,000 on a thread pool of 20 (APScheduler's reference setup).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::TimeDelta;
use executors::{ThreadPoolExecutor, TokioExecutor};
use jobstore_memory::MemoryJobStore;
use scheduler_core::{
    Clock, Delivery, DynExecutor, EventMask, JobRegistry, JobSpec, Scheduler, SystemClock,
};
use triggers::DateTrigger;

struct Case {
    name: &'static str,
    jobs: usize,
    executor: fn() -> Arc<dyn DynExecutor>,
    subscribe: bool,
}

/// Runs `case` once; answers executions per second.
fn run(runtime: &tokio::runtime::Runtime, case: &Case) -> f64 {
    let done = Arc::new(AtomicUsize::new(0));
    let registry = JobRegistry::new();
    let counter = done.clone();
    let tick = registry.register_async("tick", move |_: u32| {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    });
    runtime.block_on(async {
        let scheduler = Scheduler::builder()
            .registry(registry)
            .jobstore("default", MemoryJobStore::new())
            .executor_dyn("default", (case.executor)())
            .build()
            .expect("scheduler builds");
        let jobs = case.jobs;
        let events = case.subscribe.then(|| {
            // Room for every event of the run: the figure is for lossless delivery.
            let delivery = Delivery::drop_oldest(jobs);
            let mut stream = scheduler.subscribe_with(EventMask::JOB_EXECUTED, delivery);
            tokio::spawn(async move {
                let mut seen = 0usize;
                while seen < jobs {
                    match tokio::time::timeout(Duration::from_secs(30), stream.recv()).await {
                        Ok(Some(_)) => seen += 1,
                        _ => break,
                    }
                }
                seen
            })
        });
        scheduler.start().await.expect("scheduler starts");
        // Far enough ahead to add every job before it is due.
        let lead = Duration::from_millis(500 + case.jobs as u64 / 50);
        let due = SystemClock.now() + TimeDelta::from_std(lead).expect("small");
        let due_instant = Instant::now() + lead;
        for i in 0..case.jobs {
            let spec =
                JobSpec::new(tick.call(i as u32), DateTrigger::new(due)).misfire_grace_time(None);
            scheduler.add_job(spec).await.expect("job added");
        }
        assert!(
            Instant::now() < due_instant,
            "adding took longer than the lead time"
        );
        while done.load(Ordering::Relaxed) < case.jobs {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        let elapsed = due_instant.elapsed();
        println!(
            "{:<44} {:>7} jobs  last done {:>8.1} ms after the due instant  {:>10.0} executions/s",
            case.name,
            case.jobs,
            elapsed.as_secs_f64() * 1e3,
            case.jobs as f64 / elapsed.as_secs_f64()
        );
        scheduler.shutdown(true).await.expect("scheduler stops");
        if let Some(events) = events {
            let seen = events.await.expect("subscriber task");
            assert_eq!(seen, case.jobs, "events were lost");
        }
        case.jobs as f64 / elapsed.as_secs_f64()
    })
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let cases = [
        Case {
            name: "tokio executor",
            jobs: 100_000,
            executor: || Arc::new(TokioExecutor::new()),
            subscribe: false,
        },
        Case {
            name: "tokio executor + JobExecuted subscriber",
            jobs: 100_000,
            executor: || Arc::new(TokioExecutor::new()),
            subscribe: true,
        },
        Case {
            name: "thread pool (20 workers)",
            jobs: 10_000,
            executor: || Arc::new(ThreadPoolExecutor::new(20).expect("20 > 0")),
            subscribe: false,
        },
    ];
    for case in &cases {
        let mut rates: Vec<f64> = (0..3).map(|_| run(&runtime, case)).collect();
        rates.sort_by(f64::total_cmp);
        let lossless = if case.subscribe {
            "; every JobExecuted event received"
        } else {
            ""
        };
        println!(
            "{:<44} median of 3: {:.0} executions/s{lossless}\n",
            case.name, rates[1]
        );
    }
}

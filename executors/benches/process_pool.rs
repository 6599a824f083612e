//! The process pool: executions per second for 1,000 trivial jobs due at once on a warm pool
//! of 2 workers (APScheduler's `ProcessPoolExecutor(2)`: 3,550/s on this kind of machine),
//! and the latency a run adds over the thread pool (one job at a time, from `add_job` to its
//! `JobExecuted` event). Run with `cargo bench -p executors --bench process_pool [-- --quick]`
//! (`--quick`: one burst instead of three); figures are printed, not asserted, each burst also
//! as a line of JSON for `cargo xtask bench` (scenario 6, beside xtask/apscheduler/process_pool.py).

use std::time::{Duration, Instant};

use chrono::TimeDelta;
use executors::ThreadPoolExecutor;
use executors::process_pool::ProcessPoolExecutor;
use jobstore_memory::MemoryJobStore;
use scheduler_core::{
    Clock, Event, EventMask, EventStream, Executor, JobRegistry, JobSpec, Scheduler, SystemClock,
};
use triggers::DateTrigger;

const WORKER: &str = env!("CARGO_BIN_EXE_process-pool-test-worker");
const JOBS: usize = 1_000;
const SEQUENTIAL: usize = 300;

fn registry() -> JobRegistry {
    let registry = JobRegistry::new();
    registry.register_sync("noop", |_: ()| {});
    registry
}

async fn executed(events: &mut EventStream) {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(60), events.recv())
            .await
            .expect("an event within 60 s")
            .expect("the bus is open");
        match event {
            Event::JobExecuted(_) => return,
            Event::JobError(e) => panic!("a run failed: {e:?}"),
            _ => {}
        }
    }
}

fn scheduler(executor: impl Executor) -> Scheduler {
    Scheduler::builder()
        .registry(registry())
        .jobstore("default", MemoryJobStore::new())
        .executor("default", executor)
        .build()
        .expect("scheduler builds")
}

fn noop(at: chrono::DateTime<chrono::Utc>) -> JobSpec {
    let target = registry()
        .target("noop", serde_json::Value::Null)
        .expect("registered");
    JobSpec::new(target, DateTrigger::new(at)).misfire_grace_time(None)
}

/// Median time from `add_job` of a job due now to its `JobExecuted`, one job at a time.
async fn sequential_latency(scheduler: &Scheduler) -> Duration {
    let mut events = scheduler.subscribe(EventMask::JOB_EXECUTED | EventMask::JOB_ERROR);
    let mut times = Vec::with_capacity(SEQUENTIAL);
    for _ in 0..SEQUENTIAL {
        let started = Instant::now();
        scheduler
            .add_job(noop(SystemClock.now()))
            .await
            .expect("job added");
        executed(&mut events).await;
        times.push(started.elapsed());
    }
    times.sort();
    times[times.len() / 2]
}

/// One burst's figure in the line format of `cargo xtask bench`.
fn emit(rate: f64) {
    let line = serde_json::json!({
        "id": format!("process_pool.2.{JOBS}"),
        "scenario": "6. process pool",
        "title": format!("{}k trivial jobs due at once, process pool of 2", JOBS / 1_000),
        "params": "warm pool; memory store; misfire grace: none; due instant to last completion",
        "metric": "executions/s",
        "better": "higher",
        "value": rate,
    });
    println!("{line}");
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let pool = scheduler(
            ProcessPoolExecutor::new(2)
                .expect("a pool")
                .worker_program(WORKER),
        );
        let mut events = pool.subscribe(EventMask::JOB_EXECUTED | EventMask::JOB_ERROR);
        pool.start().await.expect("scheduler starts");
        // Warm the pool: both workers started.
        for _ in 0..20 {
            pool.add_job(noop(SystemClock.now()))
                .await
                .expect("job added");
        }
        for _ in 0..20 {
            executed(&mut events).await;
        }

        // Three bursts (one with `--quick`); the median is printed after them.
        let quick = std::env::args().any(|a| a == "--quick");
        let bursts = if quick { 1 } else { 3 };
        let mut rates = Vec::new();
        for _ in 0..bursts {
            let due = SystemClock.now() + TimeDelta::seconds(2);
            let answers = pool
                .add_jobs((0..JOBS).map(|_| noop(due)))
                .await
                .expect("jobs added");
            assert!(answers.iter().all(Result::is_ok), "every job added");
            tokio::time::sleep((due - SystemClock.now()).to_std().unwrap_or_default()).await;
            let started = Instant::now();
            for _ in 0..JOBS {
                executed(&mut events).await;
            }
            let elapsed = started.elapsed();
            rates.push(JOBS as f64 / elapsed.as_secs_f64());
            println!(
                "process pool of 2, {JOBS} trivial jobs due at once: {:.0} executions/s ({:.1} ms)",
                rates[rates.len() - 1],
                elapsed.as_secs_f64() * 1e3
            );
            emit(rates[rates.len() - 1]);
        }
        rates.sort_by(f64::total_cmp);
        println!(
            "median of {bursts}: {:.0} executions/s",
            rates[rates.len() / 2]
        );

        let pool_latency = sequential_latency(&pool).await;
        pool.shutdown(true).await.expect("scheduler stops");

        let threads = scheduler(ThreadPoolExecutor::new(2).expect("a pool"));
        threads.start().await.expect("scheduler starts");
        let thread_latency = sequential_latency(&threads).await;
        threads.shutdown(true).await.expect("scheduler stops");
        println!(
            "one run at a time, add_job to JobExecuted (median of {SEQUENTIAL}): process pool \
             {:.1} µs, thread pool {:.1} µs: the process pool adds {:.1} µs",
            pool_latency.as_secs_f64() * 1e6,
            thread_latency.as_secs_f64() * 1e6,
            (pool_latency.as_secs_f64() - thread_latency.as_secs_f64()) * 1e6
        );
    });
}

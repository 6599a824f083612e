//! Remote workers over NATS JetStream (`SCHEDULER_TEST_NATS_URL`, default the local server):
//! runs per second with 1, 2 and 4 worker processes (2,000 trivial runs due at once), and the
//! latency one run adds over the thread pool (a run at a time, add to `JobExecuted`).
//! Run with `cargo bench -p executors --features remote-nats --bench remote`; figures are
//! printed, not asserted.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use executors::ThreadPoolExecutor;
use executors::remote::RemoteExecutor;
use jobstore_memory::MemoryJobStore;
use scheduler_core::{Clock as _, EventMask, Executor, JobSpec, Scheduler, SystemClock};
use triggers::DateTrigger;

#[path = "../tests/remote_fixture/jobs.rs"]
mod jobs;

const RUNS: usize = 2_000;
const LATENCY_SAMPLES: usize = 200;

fn url() -> String {
    std::env::var("SCHEDULER_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

fn workers(ns: &str, count: usize, concurrency: usize) -> Vec<Child> {
    (1..=count)
        .map(|n| {
            Command::new(env!("CARGO_BIN_EXE_remote-test-worker"))
                .env("SCHEDULER_TEST_NATS_URL", url())
                .env("REMOTE_NAMESPACE", ns)
                .env("REMOTE_WORKER_NAME", format!("worker-{n}"))
                .env("REMOTE_CONCURRENCY", concurrency.to_string())
                .stdin(Stdio::piped())
                .spawn()
                .expect("the remote-test-worker binary starts")
        })
        .collect()
}

fn stop(workers: Vec<Child>) {
    for mut worker in workers {
        drop(worker.stdin.take());
        let _ = worker.wait();
    }
}

async fn scheduler(executor: impl Executor) -> Scheduler {
    let s = Scheduler::builder()
        .registry(jobs::registry())
        .jobstore("default", MemoryJobStore::new())
        .executor("default", executor)
        .build()
        .expect("scheduler builds");
    s.start().await.expect("scheduler starts");
    s
}

fn trivial() -> scheduler_core::JobTarget {
    jobs::registry()
        .target(
            "work",
            serde_json::json!({"ms": 0, "tag": "", "dir": null, "pad": ""}),
        )
        .expect("registered")
}

async fn throughput(count: usize) -> f64 {
    let ns = format!("bench-{}-{count}", std::process::id());
    let s = scheduler(
        RemoteExecutor::builder(url(), &ns)
            .build()
            .expect("settings"),
    )
    .await;
    let mut events = s.subscribe(EventMask::JOB_EXECUTED | EventMask::JOB_ERROR);
    let children = workers(&ns, count, 16);
    // Warm up: every worker connected and taking runs.
    s.add_job(JobSpec::new(trivial(), DateTrigger::new(SystemClock.now())))
        .await
        .expect("job added");
    events.recv().await.expect("the warm-up run");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let now = SystemClock.now();
    let specs =
        (0..RUNS).map(|_| JobSpec::new(trivial(), DateTrigger::new(now)).misfire_grace_time(None));
    let started = Instant::now();
    s.add_jobs(specs).await.expect("jobs added");
    for _ in 0..RUNS {
        events.recv().await.expect("an outcome");
    }
    let rate = RUNS as f64 / started.elapsed().as_secs_f64();
    s.shutdown(true).await.expect("scheduler stops");
    stop(children);
    executors::remote::delete_namespace(&url(), &ns)
        .await
        .expect("namespace deleted");
    rate
}

async fn latency(s: &Scheduler) -> Vec<f64> {
    let mut events = s.subscribe(EventMask::JOB_EXECUTED | EventMask::JOB_ERROR);
    let mut ms = Vec::with_capacity(LATENCY_SAMPLES);
    for _ in 0..LATENCY_SAMPLES {
        let started = Instant::now();
        s.add_job(JobSpec::new(trivial(), DateTrigger::new(SystemClock.now())))
            .await
            .expect("job added");
        events.recv().await.expect("an outcome");
        ms.push(started.elapsed().as_secs_f64() * 1e3);
    }
    ms.sort_by(f64::total_cmp);
    ms
}

fn pct(ms: &[f64], p: f64) -> f64 {
    ms[((ms.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        for count in [1, 2, 4] {
            let rate = throughput(count).await;
            println!(
                "remote (NATS JetStream): {RUNS} trivial runs due at once, {count} worker \
                 process(es) x 16: {rate:.0} runs/s"
            );
        }
        let local = scheduler(ThreadPoolExecutor::new(4).expect("pool")).await;
        let pool = latency(&local).await;
        local.shutdown(true).await.expect("scheduler stops");
        let ns = format!("bench-{}-latency", std::process::id());
        let s = scheduler(
            RemoteExecutor::builder(url(), &ns)
                .build()
                .expect("settings"),
        )
        .await;
        let children = workers(&ns, 1, 1);
        // The first run waits for the worker to connect; not counted.
        latency_warmup(&s).await;
        let remote = latency(&s).await;
        s.shutdown(true).await.expect("scheduler stops");
        stop(children);
        executors::remote::delete_namespace(&url(), &ns)
            .await
            .expect("namespace deleted");
        println!(
            "add_job to JobExecuted, {LATENCY_SAMPLES} runs one at a time: thread pool p50 \
             {:.2} ms p99 {:.2} ms; remote p50 {:.2} ms p99 {:.2} ms; the broker adds {:.2} ms \
             at p50",
            pct(&pool, 0.5),
            pct(&pool, 0.99),
            pct(&remote, 0.5),
            pct(&remote, 0.99),
            pct(&remote, 0.5) - pct(&pool, 0.5)
        );
    });
}

async fn latency_warmup(s: &Scheduler) {
    let mut events = s.subscribe(EventMask::JOB_EXECUTED | EventMask::JOB_ERROR);
    s.add_job(JobSpec::new(trivial(), DateTrigger::new(SystemClock.now())))
        .await
        .expect("job added");
    events.recv().await.expect("the warm-up run");
}

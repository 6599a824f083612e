//! Prints the MongoDB store's figures (never asserts them): adds one at a time, with 8
//! concurrent callers and batched; the due-job fetch and commit rate; and a scheduler's
//! catch-up of 10,000 stored jobs all due.
//!
//! ```sh
//! cargo bench -p jobstore-mongo --bench store   # SCHEDULER_TEST_MONGO_URL, else the local server
//! ```
//!
//! Against nx-27017 (a single-threaded Python server; about 12,000 inserts/s batched and 1,500
//! conditional updates/s is its own ceiling) these measure that server more than the store.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use jobstore_mongo::{MongoJobStore, MongoJobStoreExt};
use scheduler_core::{
    Event, EventBus, EventMask, FireCommit, FireOutcome, JobCodec, JobFunction, JobRegistry,
    JobSpec, JobStore, Scheduler, StoreContext,
};
use triggers::{DateTrigger, IntervalTrigger};

#[allow(
    clippy::disallowed_methods,
    reason = "a benchmark runs on the wall clock it measures"
)]
fn wall_now() -> DateTime<Utc> {
    Utc::now()
}

const DATABASE: &str = "jobstore_mongo_bench";

fn url() -> String {
    std::env::var("SCHEDULER_TEST_MONGO_URL")
        .unwrap_or_else(|_| "mongodb://127.0.0.1:27017/?directConnection=true".to_owned())
}

fn store(collection: &str) -> MongoJobStore {
    MongoJobStore::builder(&url())
        .database(DATABASE)
        .collection(collection)
        .call_timeout(Duration::from_secs(120))
        .build()
        .expect("valid options")
}

fn functions() -> (JobRegistry, JobFunction<u64>, Arc<AtomicUsize>) {
    let registry = JobRegistry::new();
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = runs.clone();
    let work = registry.register_sync("work", move |_n: u64| {
        counter.fetch_add(1, Ordering::Relaxed);
    });
    (registry, work, runs)
}

fn scheduler(collection: &str) -> (Scheduler, JobFunction<u64>, Arc<AtomicUsize>) {
    let (registry, work, runs) = functions();
    let scheduler = Scheduler::builder()
        .registry(registry)
        .triggers(triggers::registry())
        .jobstore("default", store(collection))
        .executor("default", executors::TokioExecutor::new())
        .jobstore_call_timeout(Duration::from_secs(120))
        .build()
        .expect("the bench scheduler builds");
    (scheduler, work, runs)
}

fn hourly(work: &JobFunction<u64>, n: u64, start: DateTime<Utc>) -> JobSpec {
    let trigger = IntervalTrigger::builder()
        .every(Duration::from_secs(3600))
        .build_at(start)
        .expect("a valid interval");
    JobSpec::new(work.call(n), trigger).id(format!("job-{n:06}"))
}

async fn drop_collection(collection: &str) {
    let client = mongodb::Client::with_uri_str(url())
        .await
        .expect("a client");
    let coll = client
        .database(DATABASE)
        .collection::<mongodb::bson::Document>(collection);
    coll.drop().await.expect("drop");
}

fn rate(n: usize, took: Duration) -> String {
    format!(
        "{:>9.0}/s  ({n} in {took:.2?})",
        n as f64 / took.as_secs_f64()
    )
}

async fn adds() {
    let (scheduler, work, _) = scheduler("bench_add");
    drop_collection("bench_add").await;
    scheduler.start_paused().await.expect("start");
    let start = wall_now() + TimeDelta::days(1);

    let n = 2_000;
    let t0 = Instant::now();
    for i in 0..n {
        scheduler
            .add_job(hourly(&work, i, start))
            .await
            .expect("add");
    }
    println!(
        "add, one at a time:        {}",
        rate(n as usize, t0.elapsed())
    );

    let per_caller = 500;
    let t0 = Instant::now();
    let mut callers = Vec::new();
    for c in 0..8u64 {
        let (scheduler, work) = (scheduler.clone(), work.clone());
        callers.push(tokio::spawn(async move {
            for i in 0..per_caller {
                let n = 100_000 + c * per_caller + i;
                scheduler
                    .add_job(hourly(&work, n, start))
                    .await
                    .expect("add");
            }
        }));
    }
    for caller in callers {
        caller.await.expect("a caller");
    }
    println!(
        "add, 8 concurrent callers: {}",
        rate(8 * per_caller as usize, t0.elapsed())
    );

    let batch: Vec<_> = (0..10_000)
        .map(|i| hourly(&work, 200_000 + i, start))
        .collect();
    let t0 = Instant::now();
    for added in scheduler.add_jobs(batch).await.expect("add_jobs") {
        added.expect("added");
    }
    println!("add, batched (add_jobs):   {}", rate(10_000, t0.elapsed()));
    scheduler.shutdown(false).await.expect("shutdown");
    drop_collection("bench_add").await;
}

/// Fills `collection` with `n` jobs due one hour ago.
async fn fill_due(collection: &str, n: u64) -> DateTime<Utc> {
    drop_collection(collection).await;
    let (scheduler, work, _) = scheduler(collection);
    scheduler.start_paused().await.expect("start");
    let due = wall_now() - TimeDelta::hours(1);
    let specs: Vec<_> = (0..n)
        .map(|i| {
            JobSpec::new(work.call(i), DateTrigger::new(due))
                .id(format!("job-{i:06}"))
                .misfire_grace_time(None)
        })
        .collect();
    for added in scheduler.add_jobs(specs).await.expect("add_jobs") {
        added.expect("added");
    }
    scheduler.shutdown(false).await.expect("shutdown");
    due
}

async fn fetch_and_commit() {
    let collection = "bench_due";
    let n = 10_000;
    fill_due(collection, n).await;
    let (registry, _, _) = functions();
    let store = store(collection);
    let ctx = StoreContext::new(
        "default",
        JobCodec::new(registry, triggers::registry()),
        EventBus::new(),
    );
    store.start(ctx).await.expect("start");
    let later = wall_now() + TimeDelta::days(1);
    let t0 = Instant::now();
    let mut done = 0;
    loop {
        let now = wall_now();
        let due = store.get_due_jobs(now, 1_000).await.expect("due");
        if due.is_empty() {
            break;
        }
        let commits: Vec<_> = due
            .iter()
            .map(|job| {
                FireCommit::new(
                    job.id_arc().clone(),
                    job.next_run_time().unwrap_or(now),
                    job.revision(),
                    FireOutcome::Reschedule(later),
                )
            })
            .collect();
        let answers = store.commit_fires(&commits).await.expect("commit");
        done += answers.len();
    }
    println!(
        "due fetch + commit (batches of 1,000): {}",
        rate(done, t0.elapsed())
    );
    store.shutdown().await.expect("shutdown");
    drop_collection(collection).await;
}

async fn catch_up() {
    let collection = "bench_catch_up";
    let n = 10_000;
    fill_due(collection, n).await;
    let (scheduler, _, runs) = scheduler(collection);
    let mut events = scheduler.subscribe(EventMask::JOB_EXECUTED | EventMask::JOB_MISSED);
    // The jobs were due an hour ago with no grace limit; what is measured is the catch-up.
    let t0 = Instant::now();
    scheduler.start().await.expect("start");
    let (mut first, mut executed, mut missed) = (None, 0, 0);
    while executed + missed < n {
        match tokio::time::timeout(Duration::from_secs(300), events.recv()).await {
            Ok(Some(Event::JobExecuted(_))) => {
                executed += 1;
                first.get_or_insert_with(|| t0.elapsed());
            }
            Ok(Some(Event::JobMissed(_))) => missed += 1,
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    let last = t0.elapsed();
    println!(
        "catch-up of {n} due jobs: first run after {:.2?}, last after {last:.2?} ({}); \
         {executed} ran, {missed} missed, {} counted by the function",
        first.unwrap_or_default(),
        rate(executed as usize, last),
        runs.load(Ordering::Relaxed)
    );
    scheduler.shutdown(true).await.expect("shutdown");

    // The same burst with the default misfire grace time (1 s), due now.
    drop_collection(collection).await;
    let (scheduler, work, _) = scheduler_for_burst(collection);
    scheduler.start_paused().await.expect("start");
    let at = wall_now() + TimeDelta::seconds(3);
    let specs: Vec<_> = (0..n)
        .map(|i| JobSpec::new(work.call(i), DateTrigger::new(at)).id(format!("job-{i:06}")))
        .collect();
    for added in scheduler.add_jobs(specs).await.expect("add_jobs") {
        added.expect("added");
    }
    let mut events = scheduler.subscribe(EventMask::JOB_EXECUTED | EventMask::JOB_MISSED);
    scheduler.resume().expect("resume");
    let (mut executed, mut missed) = (0, 0);
    while executed + missed < n {
        match tokio::time::timeout(Duration::from_secs(300), events.recv()).await {
            Ok(Some(Event::JobExecuted(_))) => executed += 1,
            Ok(Some(Event::JobMissed(_))) => missed += 1,
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    println!(
        "{n} jobs due at once, default misfire grace: {executed} ran, {missed} missed ({:.1} %)",
        missed as f64 * 100.0 / n as f64
    );
    scheduler.shutdown(true).await.expect("shutdown");
    drop_collection(collection).await;
}

fn scheduler_for_burst(collection: &str) -> (Scheduler, JobFunction<u64>, Arc<AtomicUsize>) {
    scheduler(collection)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    println!("jobstore-mongo against {}", url());
    adds().await;
    fetch_and_commit().await;
    catch_up().await;
}

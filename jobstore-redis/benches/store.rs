//! The Redis job store's figures: adds (one at a time, 8 concurrent callers, batched), the
//! due-job fetch and commit rate, and a scheduler catching up 10,000 jobs due at once.
//! Run with `cargo bench -p jobstore-redis --bench store`; the server is
//! `SCHEDULER_TEST_REDIS_URL` (default `redis://127.0.0.1:6379/`). Figures are printed, never
//! asserted. The keys it writes (prefix `bench.<random>.`) are deleted at the end.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jobstore_redis::{RedisJobStore, RedisRecords};
use scheduler_core::chrono::{DateTime, TimeDelta, Utc};
use scheduler_core::{
    Clock, Event, EventBus, EventMask, FireCommit, FireOutcome, JobCodec, JobDefaults, JobFunction,
    JobRegistry, JobSpec, JobStore, Scheduler, StoreContext, SystemClock, TriggerRegistry,
};
use triggers::DateTrigger;

const JOBS: usize = 10_000;
const ONE_AT_A_TIME: usize = 2_000;
const CALLERS: usize = 8;

fn rate(what: &str, n: usize, elapsed: Duration) {
    let secs = elapsed.as_secs_f64();
    println!(
        "{what:<58} {n:>6} jobs {secs:>8.3} s {:>10.0} jobs/s",
        n as f64 / secs
    );
}

struct Bench {
    url: String,
    prefix: String,
    functions: JobRegistry,
    triggers: TriggerRegistry,
    noop: JobFunction<u64>,
    executed: Arc<AtomicUsize>,
}

impl Bench {
    fn store(&self) -> RedisJobStore {
        RedisRecords::builder(self.url.clone())
            .prefix(self.prefix.clone())
            .build()
            .expect("the store builds")
    }

    async fn started_store(&self) -> RedisJobStore {
        let store = self.store();
        let codec = JobCodec::new(self.functions.clone(), self.triggers.clone());
        store
            .start(StoreContext::new("bench", codec, EventBus::new()))
            .await
            .unwrap_or_else(|e| panic!("cannot reach Redis (set SCHEDULER_TEST_REDIS_URL): {e}"));
        store
    }

    fn spec(&self, i: usize, at: DateTime<Utc>) -> JobSpec {
        JobSpec::new(self.noop.call(i as u64), DateTrigger::new(at)).id(format!("job-{i:06}"))
    }

    fn jobs(&self, range: std::ops::Range<usize>, at: DateTime<Utc>) -> Vec<scheduler_core::Job> {
        let now = SystemClock.now();
        range
            .map(|i| {
                self.spec(i, at)
                    .into_job(&JobDefaults::default(), now)
                    .expect("a valid job")
            })
            .collect()
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let url = std::env::var("SCHEDULER_TEST_REDIS_URL")
        .unwrap_or_else(|_| jobstore_redis::DEFAULT_URL.to_owned());
    let functions = JobRegistry::new();
    let executed = Arc::new(AtomicUsize::new(0));
    let counter = executed.clone();
    let noop = functions.register_sync("bench.noop", move |_: u64| {
        counter.fetch_add(1, Ordering::Relaxed);
    });
    let triggers = TriggerRegistry::new();
    triggers::register(&triggers);
    let bench = Bench {
        url,
        prefix: format!("bench.{}.", uuid::Uuid::new_v4().simple()),
        functions,
        triggers,
        noop,
        executed,
    };
    println!("Redis job store at {}", jobstore_redis::redact(&bench.url));
    runtime.block_on(async {
        adds(&bench).await;
        fetch_and_commit(&bench).await;
        catch_up(&bench).await;
        let store = bench.started_store().await;
        store.remove_all_jobs().await.expect("cleanup");
    });
}

async fn adds(bench: &Bench) {
    let far = SystemClock.now() + TimeDelta::days(365);
    let store = Arc::new(bench.started_store().await);

    let jobs = bench.jobs(0..ONE_AT_A_TIME, far);
    let started = Instant::now();
    for job in jobs {
        store.add_job(job).await.expect("added");
    }
    rate(
        "add_job, one at a time (1 caller)",
        ONE_AT_A_TIME,
        started.elapsed(),
    );
    store.remove_all_jobs().await.expect("cleared");

    let per_caller = JOBS / CALLERS;
    let batches: Vec<_> = (0..CALLERS)
        .map(|c| bench.jobs(c * per_caller..(c + 1) * per_caller, far))
        .collect();
    let started = Instant::now();
    let tasks: Vec<_> = batches
        .into_iter()
        .map(|jobs| {
            let store = store.clone();
            tokio::spawn(async move {
                for job in jobs {
                    store.add_job(job).await.expect("added");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("caller finished");
    }
    rate("add_job, 8 concurrent callers", JOBS, started.elapsed());
    store.remove_all_jobs().await.expect("cleared");

    let jobs = bench.jobs(0..JOBS, far);
    let started = Instant::now();
    let answers = store.add_jobs(jobs).await.expect("added");
    let elapsed = started.elapsed();
    assert!(answers.iter().all(Result::is_ok), "every job added");
    rate("add_jobs, one batch of 10,000", JOBS, elapsed);
    store.remove_all_jobs().await.expect("cleared");
    store.shutdown().await.expect("stopped");
}

/// What the scheduler's loop does per pass: a due batch, then one commit for it.
async fn fetch_and_commit(bench: &Bench) {
    let now = SystemClock.now();
    let store = bench.started_store().await;
    let answers = store
        .add_jobs(bench.jobs(0..JOBS, now - TimeDelta::seconds(1)))
        .await
        .expect("added");
    assert!(answers.iter().all(Result::is_ok));
    let later = now + TimeDelta::days(1);
    let started = Instant::now();
    let mut committed = 0;
    loop {
        let due = store.get_due_jobs(now, 1_000).await.expect("due jobs");
        if due.is_empty() {
            break;
        }
        let commits: Vec<FireCommit> = due
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
        let answers = store.commit_fires(&commits).await.expect("committed");
        committed += answers.len();
    }
    rate(
        "get_due_jobs(1,000) + commit_fires, until none due",
        committed,
        started.elapsed(),
    );
    store.remove_all_jobs().await.expect("cleared");
    store.shutdown().await.expect("stopped");
}

/// 10,000 stored jobs all due when a scheduler starts, with the default misfire grace (1 s).
async fn catch_up(bench: &Bench) {
    let store = bench.started_store().await;
    let due_at = SystemClock.now() + TimeDelta::seconds(2);
    let answers = store
        .add_jobs(bench.jobs(0..JOBS, due_at))
        .await
        .expect("added");
    assert!(answers.iter().all(Result::is_ok));
    store.shutdown().await.expect("stopped");
    // Start when they are due, as a process starting on a store full of due jobs would.
    let wait = (due_at - SystemClock.now()).to_std().unwrap_or_default();
    tokio::time::sleep(wait).await;

    bench.executed.store(0, Ordering::Relaxed);
    let scheduler = Scheduler::builder()
        .registry(bench.functions.clone())
        .triggers(bench.triggers.clone())
        .jobstore("default", bench.store())
        .executor("default", executors::TokioExecutor::new())
        .build()
        .expect("the scheduler builds");
    let missed = Arc::new(AtomicUsize::new(0));
    let first: Arc<Mutex<Option<Instant>>> = Arc::default();
    let last: Arc<Mutex<Option<Instant>>> = Arc::default();
    let done = Arc::new(tokio::sync::Notify::new());
    let handled = Arc::new(AtomicUsize::new(0));
    {
        let (missed, first, last, done, handled) = (
            missed.clone(),
            first.clone(),
            last.clone(),
            done.clone(),
            handled.clone(),
        );
        scheduler.add_listener_with(
            move |event: &Event| {
                match event {
                    Event::JobExecuted(_) => {
                        let now = Instant::now();
                        first.lock().unwrap().get_or_insert(now);
                        *last.lock().unwrap() = Some(now);
                    }
                    Event::JobMissed(_) => {
                        missed.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => return,
                }
                if handled.fetch_add(1, Ordering::Relaxed) + 1 == JOBS {
                    done.notify_one();
                }
            },
            EventMask::JOB_EXECUTED | EventMask::JOB_MISSED,
            scheduler_core::Delivery::wait(1024),
        );
    }
    let started = Instant::now();
    scheduler.start().await.expect("the scheduler starts");
    let finished = tokio::time::timeout(Duration::from_secs(300), done.notified()).await;
    let since = |at: &Mutex<Option<Instant>>| {
        at.lock().unwrap().map_or("-".to_owned(), |t| {
            format!("{:.3} s", (t - started).as_secs_f64())
        })
    };
    println!(
        "scheduler start with 10,000 jobs due: first run after {}, last run after {}, \
         {} executed, {} missed (misfire grace 1 s){}",
        since(&first),
        since(&last),
        bench.executed.load(Ordering::Relaxed),
        missed.load(Ordering::Relaxed),
        if finished.is_err() {
            ", NOT FINISHED in 300 s"
        } else {
            ""
        }
    );
    let executed = bench.executed.load(Ordering::Relaxed);
    if let (Some(first), Some(last)) = (*first.lock().unwrap(), *last.lock().unwrap()) {
        let span = (last - first).as_secs_f64().max(1e-9);
        println!(
            "{:<58} {executed:>6} jobs {span:>8.3} s {:>10.0} jobs/s",
            "scheduler catch-up, executed runs (first to last run)",
            executed as f64 / span
        );
    }
    scheduler.shutdown(true).await.expect("the scheduler stops");
}

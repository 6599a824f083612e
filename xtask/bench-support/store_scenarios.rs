//! The persistent stores' benchmark scenarios (4 and 5 of `cargo xtask bench`), written once
//! and included with `#[path]` by `jobstore-sql/benches/store.rs`,
//! `jobstore-redis/benches/store.rs` and `jobstore-mongo/benches/store.rs`, which only say how
//! to open their store and how to clean up. The same scenarios on APScheduler are
//! `xtask/apscheduler/store_common.py`.
//!
//! Figures are printed as lines of JSON (the format is in docs/benchmarks.md), beside a line
//! for people; nothing is asserted. No tracing subscriber or metrics recorder is installed, so
//! a missed run's warning goes to standard error (scheduler-core's last resort), as
//! APScheduler's does with logging unconfigured.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use scheduler_core::chrono::{DateTime, TimeDelta, Utc};
use scheduler_core::{
    Clock, Delivery, Event, EventBus, EventMask, FireCommit, FireOutcome, Job, JobCodec,
    JobDefaults, JobFunction, JobRegistry, JobSpec, JobStore, Scheduler, StoreContext, SystemClock,
};
use triggers::DateTrigger;

/// Thread pool size of the scheduler in the scenarios that run jobs (the same on both sides).
pub(crate) const WORKERS: usize = 20;
/// Due jobs one fetch takes in the fetch-and-commit scenario (the scheduler's default batch).
pub(crate) const FETCH_BATCH: usize = 1_000;
/// Concurrent callers in the concurrent add scenario.
pub(crate) const CALLERS: usize = 8;

/// The variable that limits the adds scenario to one case (`one`, `callers8` or `batch`),
/// for measuring a change to adds alone: `STORE_BENCH_SCENARIOS=adds STORE_BENCH_ADDS=callers8
/// cargo bench ...`. `cargo xtask bench` never sets it.
const ONLY_ADDS: &str = "STORE_BENCH_ADDS";

/// Whether the add case `case` runs: every case unless [`ONLY_ADDS`] names another.
fn wanted(case: &str) -> bool {
    selected(ONLY_ADDS, case)
}

/// The sizes of one run; `--quick` takes the reduced set.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sizes {
    /// Jobs added one at a time by one caller.
    pub(crate) one_at_a_time: usize,
    /// Jobs added by [`CALLERS`] callers together.
    pub(crate) concurrent: usize,
    /// Jobs added in one batch.
    pub(crate) batch: usize,
    /// Due jobs fetched and committed.
    pub(crate) fetch: usize,
    /// Due jobs stored when a scheduler starts.
    pub(crate) restart: usize,
    /// Jobs due at one instant with the default misfire grace time.
    pub(crate) burst: usize,
}

impl Sizes {
    /// From the command line: `--quick` or nothing (anything else is refused).
    pub(crate) fn from_args() -> Sizes {
        let args: Vec<String> = std::env::args()
            .skip(1)
            .filter(|a| a != "--bench")
            .collect();
        match args.as_slice() {
            [] => Sizes {
                one_at_a_time: 2_000,
                concurrent: 10_000,
                batch: 10_000,
                fetch: 10_000,
                restart: 10_000,
                burst: 10_000,
            },
            // APScheduler writes each due job back on its own (one durable commit each, 50
            // to 300 a second on the SQL servers here), so its side of the fetch, restart and
            // burst scenarios takes n / that rate: 10,000 burst jobs took minutes per SQL
            // store. These sizes keep `cargo xtask bench --quick` under 5 minutes. The restart
            // keeps the 10,000 jobs: APScheduler reads every due job before it runs
            // the first, so its time to the first run grows with them (8 ms for 500 on
            // SQLite, 0.2 s for 10,000 on PostgreSQL), and 10 s more per store is affordable.
            [quick] if quick == "--quick" => Sizes {
                one_at_a_time: 200,
                concurrent: 400,
                batch: 10_000,
                fetch: 500,
                restart: 10_000,
                burst: 1_000,
            },
            _ => {
                eprintln!("usage: store [--quick]");
                std::process::exit(2);
            }
        }
    }
}

/// A boxed future, so one backend can hand the scenarios an async clean-up.
pub(crate) type Cleanup<'a> = Pin<Box<dyn Future<Output = ()> + 'a>>;

/// One backend of one bench: how its stores open, and what the figures are called.
pub(crate) struct Backend<S> {
    /// In ids: `sqlite`, `postgres`, `mysql`, `redis`, `mongo`.
    pub(crate) key: &'static str,
    /// In titles: `SQLite`, `PostgreSQL`, ...
    pub(crate) label: &'static str,
    /// What the server is, for `params` (e.g. its durability settings).
    pub(crate) server: String,
    /// A new handle on the bench's own table, prefix or collection.
    pub(crate) open: Box<dyn Fn() -> S>,
    /// The time allowed per job to write a burst before it is due (the same on both sides).
    pub(crate) lead_per_job: Duration,
}

/// The default [`Backend::lead_per_job`].
pub(crate) const LEAD_PER_JOB: Duration = Duration::from_micros(200);

/// The functions the bench's jobs call and what they record.
#[derive(Clone)]
struct Runs {
    registry: JobRegistry,
    tick: JobFunction<u64>,
    /// When each run started (the bench's clock, from `base`).
    starts: Arc<Mutex<Vec<Instant>>>,
}

impl Runs {
    fn new() -> Runs {
        let registry = JobRegistry::new();
        let starts: Arc<Mutex<Vec<Instant>>> = Arc::default();
        let record = starts.clone();
        let tick = registry.register_sync("bench.tick", move |_: u64| {
            let now = Instant::now();
            record.lock().expect("not poisoned").push(now);
        });
        Runs {
            registry,
            tick,
            starts,
        }
    }

    fn count(&self) -> usize {
        self.starts.lock().expect("not poisoned").len()
    }

    fn clear(&self) {
        self.starts.lock().expect("not poisoned").clear();
    }

    /// Every run's start, earliest first.
    fn sorted(&self) -> Vec<Instant> {
        let mut starts = self.starts.lock().expect("not poisoned").clone();
        starts.sort();
        starts
    }

    fn first_and_last(&self) -> Option<(Instant, Instant)> {
        let starts = self.starts.lock().expect("not poisoned");
        Some((*starts.iter().min()?, *starts.iter().max()?))
    }

    /// Job `i`, due at `at`, with the default misfire grace time (1 s, as APScheduler's).
    fn spec(&self, i: usize, at: DateTime<Utc>) -> JobSpec {
        JobSpec::new(self.tick.call(i as u64), DateTrigger::new(at)).id(format!("job-{i:06}"))
    }

    /// `n` jobs due at `at`, as stored records (written by the store, not a scheduler).
    fn jobs(&self, n: usize, at: DateTime<Utc>, grace: Grace) -> Vec<Job> {
        let now = SystemClock.now();
        (0..n)
            .map(|i| {
                let spec = match grace {
                    Grace::Default => self.spec(i, at),
                    Grace::Unlimited => self.spec(i, at).misfire_grace_time(None),
                };
                spec.into_job(&JobDefaults::default(), now)
                    .expect("a valid job")
            })
            .collect()
    }
}

/// The misfire grace time of stored jobs.
#[derive(Debug, Clone, Copy)]
enum Grace {
    /// 1 s, APScheduler's default.
    Default,
    /// None: a job runs however late.
    Unlimited,
}

/// Prints one figure in the line format of `cargo xtask bench`.
fn emit(
    id: &str,
    scenario: &str,
    title: &str,
    params: &str,
    metric: &str,
    better: &str,
    value: f64,
) {
    println!(
        "{}",
        serde_json::json!({
            "id": id, "scenario": scenario, "title": title, "params": params,
            "metric": metric, "better": better, "value": value,
        })
    );
}

fn count(n: usize) -> String {
    if n >= 1_000 && n.is_multiple_of(1_000) {
        format!("{}k", n / 1_000)
    } else {
        n.to_string()
    }
}

const ADDS: &str = "4. persistent stores: adds, due fetch, burst";
const RESTART: &str = "5. restart with stored jobs all due";

/// Runs every scenario on `backend`, then `cleanup`.
pub(crate) async fn run<S: JobStore + 'static>(
    backend: &Backend<S>,
    sizes: Sizes,
    cleanup: Cleanup<'_>,
) {
    if !selected(ONLY_BACKENDS, backend.key) {
        return;
    }
    println!(
        "{} ({}); thread pool of {WORKERS}; sizes {sizes:?}",
        backend.label, backend.server
    );
    let runs = Runs::new();
    if selected(ONLY_SCENARIOS, "adds") {
        adds(backend, &runs, sizes).await;
    }
    if selected(ONLY_SCENARIOS, "fetch") {
        fetch_and_commit(backend, &runs, sizes.fetch).await;
    }
    if selected(ONLY_SCENARIOS, "restart") {
        restart(backend, &runs, sizes.restart).await;
    }
    if selected(ONLY_SCENARIOS, "burst") {
        burst(backend, &runs, sizes.burst).await;
    }
    cleanup.await;
}

/// Names the scenarios to run (`adds`, `fetch`, `restart`, `burst`, comma-separated); all
/// when unset. For measuring one scenario alone, as `cargo xtask bench` never sets it.
const ONLY_SCENARIOS: &str = "STORE_BENCH_SCENARIOS";
/// Names the backends to run (their keys: `sqlite`, `postgres`, ...); all when unset.
const ONLY_BACKENDS: &str = "STORE_BENCH_BACKENDS";

/// Whether the comma-separated list in the variable `var` names `name` (or is unset).
fn selected(var: &str, name: &str) -> bool {
    std::env::var(var).map_or(true, |list| list.split(',').any(|n| n.trim() == name))
}

fn scheduler<S: JobStore + 'static>(backend: &Backend<S>, runs: &Runs) -> Scheduler {
    Scheduler::builder()
        .registry(runs.registry.clone())
        .triggers(triggers::registry())
        .jobstore("default", (backend.open)())
        .executor(
            "default",
            executors::ThreadPoolExecutor::new(WORKERS).expect("a thread pool"),
        )
        // A slow server (nx-27017) must not fail a 10,000-job batch; the loop's own calls are
        // the store's.
        .jobstore_call_timeout(Duration::from_secs(120))
        .build()
        .expect("the bench scheduler builds")
}

async fn started_store<S: JobStore + 'static>(backend: &Backend<S>, runs: &Runs) -> S {
    let store = (backend.open)();
    let codec = JobCodec::new(runs.registry.clone(), triggers::registry());
    store
        .start(StoreContext::new("default", codec, EventBus::new()))
        .await
        .unwrap_or_else(|e| panic!("cannot open the {} store: {e}", backend.label));
    store.remove_all_jobs().await.expect("an empty store");
    store
}

async fn store_all<S: JobStore>(store: &S, jobs: Vec<Job>) {
    for answer in store.add_jobs(jobs).await.expect("jobs added") {
        answer.expect("job added");
    }
}

/// Adds through a running scheduler (jobs a year ahead): one at a time, [`CALLERS`] callers
/// at once, and one batch.
async fn adds<S: JobStore + 'static>(backend: &Backend<S>, runs: &Runs, sizes: Sizes) {
    let store = started_store(backend, runs).await;
    let scheduler = scheduler(backend, runs);
    scheduler.start().await.expect("the scheduler starts");
    let far = SystemClock.now() + TimeDelta::days(365);
    let params = |n: usize| format!("{n} date jobs; scheduler running; {}", backend.server);
    let report = |case: &str, what: &str, n: usize, took: Duration| {
        let rate = n as f64 / took.as_secs_f64();
        println!(
            "{}: {what}: {n} jobs in {:.3} s, {rate:.0} jobs/s",
            backend.label,
            took.as_secs_f64()
        );
        emit(
            &format!("store.{}.add.{case}", backend.key),
            ADDS,
            &format!("{}: {what}", backend.label),
            &params(n),
            "jobs/s",
            "higher",
            rate,
        );
    };

    if wanted("one") {
        let n = sizes.one_at_a_time;
        let started = Instant::now();
        for i in 0..n {
            scheduler.add_job(runs.spec(i, far)).await.expect("added");
        }
        report("one", "add jobs one at a time", n, started.elapsed());
        store.remove_all_jobs().await.expect("cleared");
    }
    if wanted("callers8") {
        callers(&scheduler, runs, sizes.concurrent, far, &report).await;
        store.remove_all_jobs().await.expect("cleared");
    }
    if wanted("batch") {
        let n = sizes.batch;
        let specs: Vec<_> = (0..n).map(|i| runs.spec(i, far)).collect();
        let started = Instant::now();
        for added in scheduler.add_jobs(specs).await.expect("add_jobs") {
            added.expect("added");
        }
        report("batch", "add jobs in one batch", n, started.elapsed());
    }
    scheduler.shutdown(true).await.expect("the scheduler stops");
    store.remove_all_jobs().await.expect("cleared");
    store.shutdown().await.expect("the store stops");
}

/// `n` jobs added by [`CALLERS`] tasks at once, each adding its share one at a time.
async fn callers(
    scheduler: &Scheduler,
    runs: &Runs,
    n: usize,
    far: DateTime<Utc>,
    report: impl Fn(&str, &str, usize, Duration),
) {
    let per_caller = n / CALLERS;
    let started = Instant::now();
    let callers: Vec<_> = (0..CALLERS)
        .map(|c| {
            let (scheduler, runs) = (scheduler.clone(), runs.clone());
            tokio::spawn(async move {
                for i in c * per_caller..(c + 1) * per_caller {
                    scheduler.add_job(runs.spec(i, far)).await.expect("added");
                }
            })
        })
        .collect();
    for caller in callers {
        caller.await.expect("a caller");
    }
    report(
        "callers8",
        "add jobs, 8 concurrent callers",
        per_caller * CALLERS,
        started.elapsed(),
    );
}

/// What the loop does per pass, on the store alone: a due batch, then one commit for it,
/// until none is due.
async fn fetch_and_commit<S: JobStore + 'static>(backend: &Backend<S>, runs: &Runs, n: usize) {
    let store = started_store(backend, runs).await;
    let now = SystemClock.now();
    store_all(
        &store,
        runs.jobs(n, now - TimeDelta::seconds(1), Grace::Default),
    )
    .await;
    let later = now + TimeDelta::days(1);
    let started = Instant::now();
    let mut committed = 0;
    loop {
        let due = store
            .get_due_jobs(now, FETCH_BATCH)
            .await
            .expect("due jobs");
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
        committed += store.commit_fires(&commits).await.expect("committed").len();
    }
    let took = started.elapsed();
    let rate = committed as f64 / took.as_secs_f64();
    println!(
        "{}: due fetch + commit: {committed} jobs in {:.3} s, {rate:.0} jobs/s",
        backend.label,
        took.as_secs_f64()
    );
    emit(
        &format!("store.{}.fetch_commit.{n}", backend.key),
        ADDS,
        &format!("{}: due jobs fetched and committed", backend.label),
        &format!(
            "{n} due jobs, each moved to a later run time; get_due_jobs({FETCH_BATCH}), then \
             one commit_fires per batch; {}",
            backend.server
        ),
        "jobs/s",
        "higher",
        rate,
    );
    store.remove_all_jobs().await.expect("cleared");
    store.shutdown().await.expect("the store stops");
}

/// `n` stored jobs, all due (without a grace limit), when a scheduler starts: time from
/// `start` to the first run and to the last.
async fn restart<S: JobStore + 'static>(backend: &Backend<S>, runs: &Runs, n: usize) {
    let store = started_store(backend, runs).await;
    store_all(
        &store,
        runs.jobs(
            n,
            SystemClock.now() - TimeDelta::seconds(1),
            Grace::Unlimited,
        ),
    )
    .await;
    store.shutdown().await.expect("the store stops");
    runs.clear();
    let scheduler = scheduler(backend, runs);
    let started = Instant::now();
    scheduler.start().await.expect("the scheduler starts");
    let deadline = started + Duration::from_secs(300);
    while runs.count() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let executed = runs.count();
    scheduler.shutdown(true).await.expect("the scheduler stops");
    let Some((first, last)) = runs.first_and_last() else {
        println!("{}: restart: no job ran in 300 s", backend.label);
        return;
    };
    let (first, last) = (first - started, last - started);
    println!(
        "{}: restart with {n} due jobs: first run {:.1} ms after start, last {:.3} s \
         ({executed} ran, {:.0} executions/s)",
        backend.label,
        first.as_secs_f64() * 1e3,
        last.as_secs_f64(),
        executed as f64 / last.as_secs_f64()
    );
    let params = format!(
        "{n} stored date jobs due 1 s ago, no misfire grace limit; from start(); thread pool \
         of {WORKERS}; {}",
        backend.server
    );
    let title = format!("{}: restart with {} jobs due", backend.label, count(n));
    emit(
        &format!("restart.{}.{n}.first", backend.key),
        RESTART,
        &format!("{title}: to the first run"),
        &params,
        "ms",
        "lower",
        first.as_secs_f64() * 1e3,
    );
    emit(
        &format!("restart.{}.{n}.last", backend.key),
        RESTART,
        &format!("{title}: to the last run"),
        &params,
        "s",
        "lower",
        last.as_secs_f64(),
    );
    let store = started_store(backend, runs).await;
    store.shutdown().await.expect("the store stops");
}

/// `n` jobs due at one instant in a running scheduler, with the default misfire grace time
/// (1 s): executions per second from the due instant to the last run, and how many were
/// missed. The jobs are written by another handle (as another process would) and the
/// scheduler is woken, so the adding is not what is measured.
async fn burst<S: JobStore + 'static>(backend: &Backend<S>, runs: &Runs, n: usize) {
    let store = started_store(backend, runs).await;
    runs.clear();
    let scheduler = scheduler(backend, runs);
    let missed = Arc::new(AtomicUsize::new(0));
    let counter = missed.clone();
    scheduler.add_listener_with(
        move |event: &Event| {
            if let Event::JobMissed(_) = event {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        },
        EventMask::JOB_MISSED,
        Delivery::drop_oldest(2 * n),
    );
    scheduler.start().await.expect("the scheduler starts");
    // Room to write every job before the instant, even on a slow server.
    let lead = Duration::from_secs(2) + backend.lead_per_job * n as u32;
    let due = SystemClock.now() + TimeDelta::from_std(lead).expect("a short lead");
    let due_instant = Instant::now() + lead;
    store_all(&store, runs.jobs(n, due, Grace::Default)).await;
    if Instant::now() > due_instant {
        println!(
            "{}: burst: writing the jobs took longer than the lead",
            backend.label
        );
    }
    scheduler.wakeup();
    let deadline = due_instant + Duration::from_secs(300);
    while runs.count() + missed.load(Ordering::Relaxed) < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    scheduler.shutdown(true).await.expect("the scheduler stops");
    let executed = runs.count();
    let missed = missed.load(Ordering::Relaxed);
    let (first, last) = runs
        .first_and_last()
        .map(|(f, l)| {
            (
                f.saturating_duration_since(due_instant),
                l.saturating_duration_since(due_instant),
            )
        })
        .unwrap_or_default();
    let rate = executed as f64 / last.as_secs_f64().max(1e-6);
    println!(
        "{}: {n} jobs due at once, misfire grace 1 s: {executed} ran, {missed} missed; first run \
         {:.1} ms after the due instant, last {:.3} s; {rate:.0} executions/s",
        backend.label,
        first.as_secs_f64() * 1e3,
        last.as_secs_f64()
    );
    // Where the runs start relative to the due instant, one figure per due batch of the
    // loop: shows whether runs wait for whole batches, and how the lateness grows.
    let steps: Vec<String> = runs
        .sorted()
        .iter()
        .step_by(1_000)
        .map(|t| {
            format!(
                "{:.2}",
                t.saturating_duration_since(due_instant).as_secs_f64()
            )
        })
        .collect();
    println!(
        "{}: burst: seconds after the due instant of runs 1, 1001, 2001, ...: {}",
        backend.label,
        steps.join(" ")
    );
    let params = format!(
        "{n} date jobs due at one instant, misfire grace 1 s (the default); scheduler running; \
         thread pool of {WORKERS}; {}",
        backend.server
    );
    let title = format!("{}: {} jobs due at once", backend.label, count(n));
    emit(
        &format!("burst.{}.{n}.rate", backend.key),
        ADDS,
        &format!("{title}: executions/s"),
        &params,
        "executions/s",
        "higher",
        rate,
    );
    emit(
        &format!("burst.{}.{n}.missed", backend.key),
        ADDS,
        &format!("{title}: missed"),
        &params,
        "missed",
        "lower",
        missed as f64,
    );
    store.remove_all_jobs().await.expect("cleared");
    store.shutdown().await.expect("the store stops");
}

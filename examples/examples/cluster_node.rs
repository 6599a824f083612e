//! One scheduler node of `cargo xtask cluster-test`: a scheduler on a shared store that logs
//! every run it submits and executes, one flushed line each, so a node killed with SIGKILL
//! leaves a complete log up to its last instant.
//!
//! ```sh
//! cargo run -p examples --example cluster_node --features cluster_node -- \
//!     --store sqlite://target/cluster.sqlite --name cluster_demo --node a --log a.log \
//!     --add-jobs 50 --start-micros 1767225600000000 --seconds 30
//! ```
//!
//! Options: `--store URL` (sqlite://, postgres://, mysql://, redis://, mongodb://, as the
//! `jobs` example), `--name NAME` (the table, key prefix or collection: one per run),
//! `--node ID`, `--log PATH`; `--add-jobs N --start-micros T --seconds D` adds N interval
//! jobs (every second from T, the last run at T + D - 1 s, misfire grace 10 s, no coalescing, each run
//! taking `--job-millis` ms); `--recover-half` turns recovery of lost runs on for the
//! even-numbered ones; `--heartbeat-millis`, `--node-timeout-millis`, `--claim-lease-millis`
//! set the cluster timings;
//! `--probes K` adds K one-off jobs, one every `--probe-gap-millis`, each due 1 s after it is
//! added, on a paused scheduler (`--paused`: this node fires nothing, so another one must);
//! `--max-wait SECS`; `--skew-millis MS` moves this node's clock (the scheduler's `Clock`;
//! the log keeps true times); the node stops once its store holds no job after `--stop-after-micros`,
//! or at `--deadline-micros` at the latest.
//!
//! Log lines, space-separated: `committing JOB DUE_MICROS NEXT_MICROS NODE` (before each fire
//! commit; the fire runs the job's run times from DUE up to NEXT),
//! `submitted|executed JOB SCHEDULED_MICROS NODE AT_MICROS`,
//! `missed JOB SCHEDULED_MICROS NODE`, `recovered JOB SCHEDULED_MICROS NODE LOST_NODE`,
//! `capabilities NODE cluster=BOOL notifies=BOOL` (of its store, once started), and
//! `event NODE TEXT` for the other events.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::thread::sleep;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use executors::TokioExecutor;
use scheduler_core::store::ClusterStore;
use scheduler_core::{
    BackgroundScheduler, Capabilities, Clock, Error, Event, EventMask, Executor, ExecutorContext,
    FireAnswers, FireCommit, FireOutcome, Job, JobFunction, JobRegistry, JobRun, JobSpec, JobStore,
    Result, Scheduler, StoreContext, SystemClock,
};
use triggers::{DateTrigger, IntervalTrigger};

/// The misfire grace time of the interval jobs, as the issue defines the test.
const GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
struct Args {
    store: String,
    name: String,
    node: String,
    log: String,
    add_jobs: usize,
    start_micros: i64,
    seconds: i64,
    job_millis: u64,
    recover_half: bool,
    heartbeat_millis: Option<u64>,
    node_timeout_millis: Option<u64>,
    claim_lease_millis: Option<u64>,
    probes: usize,
    probe_gap_millis: u64,
    paused: bool,
    max_wait: Option<f64>,
    stop_after_micros: i64,
    deadline_micros: i64,
    skew_millis: i64,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        job_millis: 800,
        probe_gap_millis: 1700,
        ..Args::default()
    };
    let mut raw = std::env::args().skip(1);
    while let Some(flag) = raw.next() {
        if flag == "--recover-half" {
            args.recover_half = true;
            continue;
        }
        if flag == "--paused" {
            args.paused = true;
            continue;
        }
        let value = raw
            .next()
            .ok_or_else(|| Error::config(format!("{flag} needs a value")))?;
        let number = |v: &str| {
            v.parse::<i64>()
                .map_err(|_| Error::config(format!("{flag}: {v:?} is not a whole number")))
        };
        let count = |v: &str| number(v).map(|n| n.max(0).unsigned_abs());
        match flag.as_str() {
            "--store" => args.store = value,
            "--name" => args.name = value,
            "--node" => args.node = value,
            "--log" => args.log = value,
            "--add-jobs" => args.add_jobs = count(&value)? as usize,
            "--start-micros" => args.start_micros = number(&value)?,
            "--seconds" => args.seconds = number(&value)?,
            "--job-millis" => args.job_millis = count(&value)?,
            "--heartbeat-millis" => args.heartbeat_millis = Some(count(&value)?),
            "--node-timeout-millis" => args.node_timeout_millis = Some(count(&value)?),
            "--claim-lease-millis" => args.claim_lease_millis = Some(count(&value)?),
            "--probes" => args.probes = count(&value)? as usize,
            "--probe-gap-millis" => args.probe_gap_millis = count(&value)?,
            "--max-wait" => {
                args.max_wait = Some(
                    value
                        .parse()
                        .map_err(|_| Error::config(format!("--max-wait: {value:?}")))?,
                );
            }
            "--stop-after-micros" => args.stop_after_micros = number(&value)?,
            "--deadline-micros" => args.deadline_micros = number(&value)?,
            "--skew-millis" => args.skew_millis = number(&value)?,
            _ => return Err(Error::config(format!("unknown option {flag}"))),
        }
    }
    for (name, value) in [
        ("--store", &args.store),
        ("--name", &args.name),
        ("--node", &args.node),
        ("--log", &args.log),
    ] {
        if value.is_empty() {
            return Err(Error::config(format!("{name} is required")));
        }
    }
    Ok(args)
}

/// The node's log: every line is one `write` of an unbuffered file, so it reaches the
/// kernel before the next step and survives SIGKILL.
#[derive(Debug, Clone)]
struct Log(Arc<Mutex<File>>);

impl Log {
    fn line(&self, text: &str) {
        let mut file = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // A node that cannot log cannot be counted: the checker reports the runs as missed.
        if let Err(e) = file.write_all(format!("{text}\n").as_bytes()) {
            eprintln!("cluster_node: cannot write the log: {e}");
        }
    }
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// The system clock moved by a fixed skew: a node whose clock is off by that much.
#[derive(Debug, Clone, Copy)]
struct SkewedClock(TimeDelta);

impl Clock for SkewedClock {
    fn now(&self) -> DateTime<Utc> {
        SystemClock.now() + self.0
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> scheduler_core::BoxFuture<'static, ()> {
        SystemClock.sleep_until(deadline - self.0)
    }
}

/// The store the scheduler sees: logs every fire commit it is about to make, before the
/// call, so a fire the node commits and never runs (it died in between) is still known to
/// be its own. Every other call goes straight through.
#[derive(Debug)]
struct LoggingStore<S> {
    inner: S,
    log: Log,
    node: Arc<str>,
}

impl<S: JobStore> JobStore for LoggingStore<S> {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn start(&self, ctx: StoreContext) -> Result<()> {
        self.inner.start(ctx).await?;
        // After start: a store may learn at start what it can do (MongoDB asks `hello`).
        let capabilities = self.inner.capabilities();
        self.log.line(&format!(
            "capabilities {} cluster={} notifies={}",
            self.node, capabilities.cluster, capabilities.notifies
        ));
        Ok(())
    }
    async fn shutdown(&self) -> Result<()> {
        self.inner.shutdown().await
    }
    async fn lookup_job(&self, id: &str) -> Result<Option<Job>> {
        self.inner.lookup_job(id).await
    }
    async fn get_due_jobs(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Job>> {
        self.inner.get_due_jobs(now, limit).await
    }
    async fn get_next_run_time(&self) -> Result<Option<DateTime<Utc>>> {
        self.inner.get_next_run_time().await
    }
    async fn get_all_jobs(&self) -> Result<Vec<Job>> {
        self.inner.get_all_jobs().await
    }
    async fn count_jobs(&self) -> Result<u64> {
        self.inner.count_jobs().await
    }
    async fn add_job(&self, job: Job) -> Result<u64> {
        self.inner.add_job(job).await
    }
    async fn add_jobs(&self, jobs: Vec<Job>) -> Result<Vec<Result<u64>>> {
        self.inner.add_jobs(jobs).await
    }
    async fn upsert_job(&self, job: Job) -> Result<u64> {
        self.inner.upsert_job(job).await
    }
    async fn update_job(&self, job: Job) -> Result<u64> {
        self.inner.update_job(job).await
    }
    async fn remove_job(&self, id: &str) -> Result<()> {
        self.inner.remove_job(id).await
    }
    async fn remove_all_jobs(&self) -> Result<()> {
        self.inner.remove_all_jobs().await
    }
    async fn commit_fires(&self, commits: &[FireCommit]) -> Result<FireAnswers> {
        for commit in commits {
            // The fire runs the job's run times from `due_at` up to (not including) its next.
            let until = match commit.outcome {
                FireOutcome::Reschedule(next) => micros(next),
                FireOutcome::Pause | FireOutcome::Remove => i64::MAX,
            };
            self.log.line(&format!(
                "committing {} {} {until} {}",
                commit.job_id,
                micros(commit.due_at),
                self.node
            ));
        }
        self.inner.commit_fires(commits).await
    }
    fn skip_until_changed(&self, id: &str, revision: u64) {
        self.inner.skip_until_changed(id, revision);
    }
    fn clear_skipped(&self) {
        self.inner.clear_skipped();
    }
    fn cluster(&self) -> Option<&dyn ClusterStore> {
        self.inner.cluster()
    }
}

/// The executor the scheduler sees: logs each submitted run, synchronously in the scheduler
/// loop right after the fire commit, then hands it to a tokio executor.
#[derive(Debug)]
struct LoggingExecutor {
    inner: TokioExecutor,
    log: Log,
    node: Arc<str>,
}

impl Executor for LoggingExecutor {
    async fn start(&self, ctx: ExecutorContext) -> Result<()> {
        self.inner.start(ctx).await
    }

    fn submit(&self, run: JobRun) -> Result<()> {
        let at = micros(SystemClock.now());
        for t in &run.run_times {
            self.log.line(&format!(
                "submitted {} {} {} {at}",
                run.job.id(),
                micros(*t),
                self.node
            ));
        }
        self.inner.submit(run)
    }

    async fn shutdown(&self, wait: bool) -> Result<()> {
        self.inner.shutdown(wait).await
    }
}

/// The job functions: `tick` (the interval jobs) takes `millis` and logs its completion;
/// `probe` logs at once.
fn registry(log: &Log, node: &Arc<str>) -> (JobRegistry, Functions) {
    let registry = JobRegistry::new();
    let (tick_log, tick_node) = (log.clone(), node.clone());
    let tick = registry.register_async("tick", move |millis: u64| {
        let (log, node) = (tick_log.clone(), tick_node.clone());
        async move {
            // Read at the first poll: the context is set around each poll of the run.
            let run = scheduler_core::RunContext::current();
            tokio::time::sleep(Duration::from_millis(millis)).await;
            executed(&log, &node, run.as_deref());
        }
    });
    let (probe_log, probe_node) = (log.clone(), node.clone());
    let probe = registry.register_sync("probe", move |(): ()| {
        executed(
            &probe_log,
            &probe_node,
            scheduler_core::RunContext::current().as_deref(),
        );
    });
    (registry, Functions { tick, probe })
}

/// The job functions, to make jobs with.
struct Functions {
    tick: JobFunction<u64>,
    probe: JobFunction<()>,
}

fn executed(log: &Log, node: &str, run: Option<&scheduler_core::RunContext>) {
    let at = micros(SystemClock.now());
    match run {
        Some(run) => log.line(&format!(
            "executed {} {} {node} {at}",
            run.job_id,
            micros(run.scheduled_run_time)
        )),
        None => log.line(&format!("event {node} a run without a RunContext")),
    }
}

fn open_and_run(args: &Args) -> Result<()> {
    let url = args.store.as_str();
    let scheme = url.split(':').next().unwrap_or_default();
    match scheme.split('+').next().unwrap_or_default() {
        "sqlite" | "postgres" | "postgresql" | "mysql" | "mariadb" => run(
            args,
            jobstore_sql::builder(url)
                .tablename(&args.name)
                .max_connections(3)
                .build()?,
        ),
        "redis" | "rediss" => run(
            args,
            jobstore_redis::RedisRecords::builder(url)
                .prefix(format!("{}.", args.name))
                .build()?,
        ),
        "mongodb" => run(
            args,
            jobstore_mongo::MongoJobStoreBuilder::new(url)
                .collection(&args.name)
                .max_pool_size(3)
                .build()?,
        ),
        _ => Err(Error::config(
            "unknown store URL scheme; use sqlite://, postgres://, mysql://, redis:// or \
             mongodb://",
        )),
    }
}

fn run(args: &Args, store: impl JobStore) -> Result<()> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&args.log)
        .map_err(|e| Error::config(format!("cannot open {}: {e}", args.log)))?;
    let log = Log(Arc::new(Mutex::new(file)));
    let node: Arc<str> = args.node.as_str().into();
    let (registry, functions) = registry(&log, &node);
    let mut builder = Scheduler::builder()
        .clock(SkewedClock(TimeDelta::milliseconds(args.skew_millis)))
        .node_id(node.clone())
        .registry(registry)
        .triggers(triggers::registry())
        .jobstore(
            "default",
            LoggingStore {
                inner: store,
                log: log.clone(),
                node: node.clone(),
            },
        )
        .executor(
            "default",
            LoggingExecutor {
                inner: TokioExecutor::new(),
                log: log.clone(),
                node: node.clone(),
            },
        );
    if let Some(millis) = args.heartbeat_millis {
        builder = builder.heartbeat_interval(Duration::from_millis(millis));
    }
    if let Some(millis) = args.node_timeout_millis {
        builder = builder.node_timeout(Duration::from_millis(millis));
    }
    if let Some(millis) = args.claim_lease_millis {
        builder = builder.claim_lease(Duration::from_millis(millis));
    }
    if let Some(max_wait) = args.max_wait {
        builder = builder.max_wait(Duration::from_secs_f64(max_wait));
    }
    let scheduler = BackgroundScheduler::new(builder)?;
    let (event_log, event_node) = (log.clone(), node.clone());
    scheduler.add_listener(
        move |event: &Event| match event {
            Event::JobMissed(e) => event_log.line(&format!(
                "missed {} {} {event_node}",
                e.job_id,
                micros(e.scheduled_run_time)
            )),
            Event::JobRecovered(e) => event_log.line(&format!(
                "recovered {} {} {event_node} {}",
                e.job_id,
                micros(e.scheduled_run_time),
                e.lost_node
            )),
            other => event_log.line(&format!("event {event_node} {other}")),
        },
        EventMask::JOB_MISSED
            | EventMask::JOB_MAX_INSTANCES
            | EventMask::JOB_ERROR
            | EventMask::JOB_FAULT
            | EventMask::SCHEDULER_ERROR
            | EventMask::NODE_JOINED
            | EventMask::NODE_LOST
            | EventMask::JOB_RECOVERED,
    );
    if args.paused {
        scheduler.start_paused()?;
    } else {
        scheduler.start()?;
    }
    log.line(&format!("event {node} started"));
    add_jobs(&scheduler, args, &functions)?;
    probe(&scheduler, args, &log, &functions)?;

    let clock = SystemClock;
    loop {
        sleep(Duration::from_millis(250));
        let now = micros(clock.now());
        if now >= args.deadline_micros {
            log.line(&format!("event {node} deadline reached"));
            break;
        }
        if now >= args.stop_after_micros && scheduler.get_jobs(None)?.is_empty() {
            break;
        }
    }
    scheduler.shutdown(true)?;
    log.line(&format!("event {node} stopped"));
    Ok(())
}

/// The interval jobs: `tick-0` .. `tick-{N-1}`, every second from the agreed start.
fn add_jobs(scheduler: &BackgroundScheduler, args: &Args, functions: &Functions) -> Result<()> {
    if args.add_jobs == 0 {
        return Ok(());
    }
    let start = DateTime::from_timestamp_micros(args.start_micros)
        .ok_or_else(|| Error::config("--start-micros is out of range"))?;
    // The last run is at start + (D - 1) s; the end half a second later is past it and
    // before the next grid point.
    let end = start + TimeDelta::seconds(args.seconds - 1) + TimeDelta::milliseconds(500);
    let specs = (0..args.add_jobs)
        .map(|i| {
            let trigger = IntervalTrigger::builder()
                .seconds(1)
                .start_date(start)
                .end_date(end)
                .build()
                .map_err(|e| Error::config(format!("interval trigger: {e}")))?;
            let mut spec = JobSpec::new(functions.tick.call(args.job_millis), trigger)
                .id(format!("tick-{i}"))
                // The first run is `start` even when this add ends after it (a slow start on a
                // loaded machine): the trigger alone would begin at the next second after the
                // add, and that first scheduled time would count as missed.
                .next_run_time(start)
                .misfire_grace_time(Some(GRACE))
                // Every scheduled time is counted, so a late pass must run each of them (within
                // the grace time), not merge them into one as coalescing would: a stall shows
                // as lateness, and only a run no node executed as a miss.
                .coalesce(false)
                // A late run may still be going when the next is due: not a miss.
                .max_instances(3)
                .replace_existing(true);
            if args.recover_half && i % 2 == 0 {
                spec = spec.recover_lost_runs(true);
            }
            Ok(spec)
        })
        .collect::<Result<Vec<_>>>()?;
    for chunk in specs.chunks(100) {
        for added in scheduler.add_jobs(chunk.to_vec())? {
            added?;
        }
    }
    Ok(())
}

/// One-off jobs due one second after they are added: another node must fire them.
fn probe(
    scheduler: &BackgroundScheduler,
    args: &Args,
    log: &Log,
    functions: &Functions,
) -> Result<()> {
    for i in 0..args.probes {
        if i > 0 {
            sleep(Duration::from_millis(args.probe_gap_millis));
        }
        let due = SystemClock.now() + TimeDelta::seconds(1);
        scheduler.add_job(
            JobSpec::new(functions.probe.call(()), DateTrigger::new(due))
                .id(format!("probe-{i}"))
                // Late is what is measured, not a miss.
                .misfire_grace_time(None),
        )?;
        log.line(&format!("added probe-{i} {} {}", micros(due), args.node));
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match parse_args().and_then(|args| open_and_run(&args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cluster_node: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

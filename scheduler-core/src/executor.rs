//! Where jobs run: the [`Executor`] contract and the pieces every executor shares.
//!
//! An executor takes a [`JobRun`] (a due job and its run times) and runs it. The rules of a run
//! are the same for every executor and live here, as APScheduler's `run_job` does:
//!
//! * [`InstanceLimiter`] enforces `max_instances` per job on one executor;
//! * [`run_job`] / [`run_job_blocking`] run each due run time in order, skip the ones that
//!   start later than the misfire grace time allows ([`Event::JobMissed`]), and report every
//!   outcome on the event bus ([`Event::JobExecuted`], [`Event::JobError`]). A panic in a job
//!   is caught and reported like an error; a run past the job's timeout is reported as a
//!   [`FailureKind::TimedOut`] error.
//! * [`ExecutorContext::begin_run`] and [`StartedRun`] are that sequence's pieces (misfire
//!   check and [`RunContext`]; outcome report), for executors that call job code their own
//!   way, such as in another process with the [`wire`] types.

mod limiter;
mod run;
mod run_times;
pub mod wire;

pub use limiter::{InstanceGuard, InstanceLimiter};
pub use run::{RunContext, StartedRun, local_node};
pub use run_times::RunTimes;

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};

use chrono::{DateTime, Utc};
use tracing::Instrument as _;

use crate::clock::{BoxFuture, Clock};
use crate::error::{Error, Result};
use crate::event::{
    Event, EventBus, EventMask, FailureKind, JobExecutionEvent, JobFailure, JobSubmissionEvent,
};
use crate::job::{Handler, Job};
use crate::telemetry::{self, RunKeys};

/// What an executor is given when the scheduler starts it.
///
/// Cloning it is cheap (one shared allocation): every started run holds one.
#[derive(Debug, Clone)]
pub struct ExecutorContext {
    inner: Arc<ContextInner>,
}

#[derive(Debug, Clone)]
struct ContextInner {
    alias: Arc<str>,
    clock: Arc<dyn Clock>,
    events: EventBus,
    runtime: tokio::runtime::Handle,
    job_labels: bool,
    node: Arc<str>,
    run_end: RunEnd,
    /// The run figures' keys per store (labels without the job id): a handful of stores.
    run_keys: Arc<Mutex<KeysByStore>>,
    /// The first store's keys, read without the lock: most executors serve one store, and
    /// the lock and the hash showed twice per run in the dispatch profile.
    first_keys: Arc<OnceLock<(Arc<str>, Arc<RunKeys>)>>,
}

/// Called with `(jobstore, job id, run time)` whenever a run's outcome is reported (executed,
/// failed, missed, refused, lost): how the scheduler learns, without the lossy event bus, that
/// a run it recorded as in flight on a shared store is over.
pub(crate) type RunEndHook = Arc<dyn Fn(&Arc<str>, &Arc<str>, DateTime<Utc>) + Send + Sync>;

#[derive(Clone, Default)]
struct RunEnd(Option<RunEndHook>);

impl std::fmt::Debug for RunEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "RunEnd"
        } else {
            "NoRunEnd"
        })
    }
}

/// The run figures' keys of each store's runs.
type KeysByStore = HashMap<Arc<str>, Arc<RunKeys>, foldhash::fast::RandomState>;

impl ExecutorContext {
    /// A context for an executor known as `alias`.
    pub fn new(
        alias: impl Into<Arc<str>>,
        clock: Arc<dyn Clock>,
        events: EventBus,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        ExecutorContext {
            inner: Arc::new(ContextInner {
                alias: alias.into(),
                clock,
                events,
                runtime,
                job_labels: false,
                node: local_node().into(),
                run_end: RunEnd::default(),
                run_keys: Arc::default(),
                first_keys: Arc::default(),
            }),
        }
    }

    /// This context, calling `hook` at the end of every run it reports.
    pub(crate) fn with_run_end(mut self, hook: RunEndHook) -> Self {
        Arc::make_mut(&mut self.inner).run_end = RunEnd(Some(hook));
        self
    }

    fn run_ended(&self, job_id: &Arc<str>, jobstore: &Arc<str>, run_time: DateTime<Utc>) {
        if let Some(hook) = &self.inner.run_end.0 {
            hook(jobstore, job_id, run_time);
        }
    }

    /// Labels this executor's run metrics with the job's id too (see
    /// [`SchedulerBuilder::metrics_job_labels`](crate::SchedulerBuilder::metrics_job_labels)).
    pub fn with_job_labels(mut self, job_labels: bool) -> Self {
        Arc::make_mut(&mut self.inner).job_labels = job_labels;
        self
    }

    /// The keys of `run`'s metrics.
    pub(crate) fn keys(&self, run: &JobRun) -> Arc<RunKeys> {
        self.keys_for(run.job.id_arc(), &run.jobstore)
    }

    /// The keys of the metrics of a run of job `job_id` from `jobstore` here: built once per
    /// store, or per run when the job id is a label.
    pub(crate) fn keys_for(&self, job_id: &Arc<str>, jobstore: &Arc<str>) -> Arc<RunKeys> {
        if self.inner.job_labels {
            return Arc::new(RunKeys::new(self.labels_for(job_id, jobstore)));
        }
        let (first, keys) = self.inner.first_keys.get_or_init(|| {
            let keys = Arc::new(RunKeys::new(self.labels_for(job_id, jobstore)));
            (jobstore.clone(), keys)
        });
        if Arc::ptr_eq(first, jobstore) || first == jobstore {
            return keys.clone();
        }
        let mut keys = lock(&self.inner.run_keys);
        if let Some(found) = keys.get(jobstore) {
            return found.clone();
        }
        // Stores are few; a program inventing aliases without end only rebuilds keys.
        if keys.len() >= 64 {
            keys.clear();
        }
        let built = Arc::new(RunKeys::new(self.labels_for(job_id, jobstore)));
        keys.insert(jobstore.clone(), built.clone());
        built
    }

    /// The labels of the metrics of a run of job `job_id` from `jobstore` here.
    pub(crate) fn labels_for(&self, job_id: &Arc<str>, jobstore: &Arc<str>) -> Vec<metrics::Label> {
        let job = self.inner.job_labels.then_some(job_id);
        crate::telemetry::run_labels(jobstore, &self.inner.alias, job)
    }

    /// The alias, shared.
    pub fn alias_arc(&self) -> &Arc<str> {
        &self.inner.alias
    }

    /// Where the executor's in-process runs happen ([`RunContext::node`]): `host:pid`.
    pub fn node(&self) -> &Arc<str> {
        &self.inner.node
    }

    /// The alias the scheduler knows the executor by.
    pub fn alias(&self) -> &str {
        &self.inner.alias
    }

    /// The scheduler's clock, for the misfire check.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// The bus to report outcomes on.
    pub fn events(&self) -> &EventBus {
        &self.inner.events
    }

    /// The scheduler's async runtime.
    pub fn runtime(&self) -> &tokio::runtime::Handle {
        &self.inner.runtime
    }

    /// Claims an instance of the run's job from `limiter` and announces the run.
    ///
    /// Publishes [`Event::JobSubmitted`] on success, or [`Event::JobMaxInstances`] and fails with
    /// [`MaxInstancesReached`](crate::ErrorKind::MaxInstancesReached) when the job already runs
    /// `max_instances` times. Executors call this in `submit`, before the run can start, so the
    /// submission is always published before the run's outcome.
    pub fn admit(&self, limiter: &InstanceLimiter, run: &JobRun) -> Result<InstanceGuard> {
        let mut claimed = limiter.acquire(&run.job);
        let keys = self.keys(run);
        let Ok(guard) = &mut claimed else {
            report_max_instances(&self.inner.events, &keys, run, &self.inner.alias);
            return claimed;
        };
        telemetry::counter(&keys.submitted).increment(run.run_times.len() as u64);
        let running = telemetry::gauge(&keys.running);
        running.increment(1.0);
        guard.running = Some(running);
        tracing::debug!(
            job = run.job.id(),
            executor = &*self.inner.alias,
            run_times = run.run_times.len(),
            "job submitted"
        );
        if self.inner.events.wants(EventMask::JOB_SUBMITTED) {
            self.inner
                .events
                .publish(Event::JobSubmitted(submission_event(run)));
        }
        claimed
    }

    /// The `tracing` span one run of `run` executes in: `run` (at ERROR, so a filter that
    /// shows only warnings and errors keeps it), with the fields
    /// `job` (id), `name`, `executor` (this context's alias), `jobstore`, `run_time` (the
    /// scheduled time) and `lateness` (seconds from `run_time` to now, when the run starts).
    ///
    /// [`run_job`] and [`run_job_blocking`] run each run time's misfire check, call and report
    /// inside it, so the job's own log lines and the scheduler's lines about the run carry its
    /// context. An executor that runs jobs elsewhere (another process, a remote worker) enters
    /// it around the run's report.
    pub fn run_span(&self, run: &JobRun, run_time: DateTime<Utc>) -> tracing::Span {
        self.run_span_at(run, run_time, self.inner.clock.now() - run_time)
    }

    /// [`run_span`](Self::run_span) of a run starting `late` after its run time.
    pub(crate) fn run_span_at(
        &self,
        run: &JobRun,
        run_time: DateTime<Utc>,
        late: chrono::TimeDelta,
    ) -> tracing::Span {
        let lateness = late.as_seconds_f64();
        // At ERROR level so that any filter that shows a run's errors keeps its context.
        tracing::error_span!(
            "run",
            job = run.job.id(),
            name = run.job.name(),
            executor = &*self.inner.alias,
            jobstore = &*run.jobstore,
            %run_time,
            lateness,
        )
    }

    /// Whether `run_time` is too late to start now: publishes [`Event::JobMissed`] and logs a
    /// warning if so, else logs that the run starts (APScheduler's "Running job").
    pub fn check_misfire(&self, run: &JobRun, run_time: DateTime<Utc>) -> bool {
        let late = self.inner.clock.now() - run_time;
        self.check_misfire_at(run, run_time, late, &self.keys(run))
    }

    /// [`check_misfire`](Self::check_misfire) of a run starting `late` after its run time
    /// (the clock is read once per run: reading it costs more than the check), recording in
    /// the run's metric `keys`.
    pub(crate) fn check_misfire_at(
        &self,
        run: &JobRun,
        run_time: DateTime<Utc>,
        late: chrono::TimeDelta,
        keys: &RunKeys,
    ) -> bool {
        let Some(grace) = run.job.misfire_grace_time() else {
            tracing::info!(job = run.job.id(), %run_time, "running job");
            record_start(keys, late);
            return false;
        };
        let missed = late.to_std().is_ok_and(|late| late > grace);
        if !missed {
            tracing::info!(job = run.job.id(), %run_time, "running job");
            record_start(keys, late);
        } else {
            telemetry::counter(&keys.missed).increment(1);
            crate::logging::log_warn!(
                job = run.job.id(),
                %run_time,
                late = %late,
                "run of job missed its misfire grace time"
            );
            self.publish_execution(
                run,
                run_time,
                EventMask::JOB_MISSED,
                Ok(serde_json::Value::Null),
            );
        }
        missed
    }

    /// Publishes the outcome of one run: [`Event::JobExecuted`] or [`Event::JobError`].
    pub fn report(
        &self,
        run: &JobRun,
        run_time: DateTime<Utc>,
        outcome: std::result::Result<serde_json::Value, JobFailure>,
    ) {
        self.report_for(run.job.id_arc(), &run.jobstore, run_time, outcome);
    }

    fn report_for(
        &self,
        job_id: &Arc<str>,
        jobstore: &Arc<str>,
        run_time: DateTime<Utc>,
        outcome: std::result::Result<serde_json::Value, JobFailure>,
    ) {
        self.report_keyed(
            &self.keys_for(job_id, jobstore),
            job_id,
            jobstore,
            run_time,
            outcome,
        );
    }

    /// [`report_for`](Self::report_for) with the run's metric keys at hand.
    pub(crate) fn report_keyed(
        &self,
        keys: &RunKeys,
        job_id: &Arc<str>,
        jobstore: &Arc<str>,
        run_time: DateTime<Utc>,
        outcome: std::result::Result<serde_json::Value, JobFailure>,
    ) {
        match &outcome {
            Ok(_) => tracing::info!(job = %job_id, %run_time, "job executed successfully"),
            Err(failure) => crate::logging::log_error!(
                job = %job_id,
                %run_time,
                kind = %failure.kind(),
                error = %failure.chain(),
                "job failed"
            ),
        }
        match &outcome {
            Ok(_) => telemetry::counter(&keys.executed).increment(1),
            Err(failure) => {
                if failure.kind() == FailureKind::TimedOut {
                    telemetry::counter(&keys.timed_out).increment(1);
                }
                telemetry::counter(&keys.failed).increment(1);
            }
        }
        let code = if outcome.is_ok() {
            EventMask::JOB_EXECUTED
        } else {
            EventMask::JOB_ERROR
        };
        self.publish_execution_for(job_id, jobstore, run_time, code, outcome);
    }

    /// Reports every run time of `run` as failed without running: the executor accepted the
    /// run (its fire was committed) but cannot start it, because it is shutting down or a
    /// worker could not be started. Publishes one [`Event::JobError`] per run time, its
    /// failure of kind [`FailureKind::Refused`].
    pub fn refuse(&self, run: &JobRun, error: &crate::Error) {
        publish_refused(&self.inner.events, run, error);
        for &run_time in &run.run_times {
            self.run_ended(run.job.id_arc(), &run.jobstore, run_time);
        }
    }

    fn publish_execution(
        &self,
        run: &JobRun,
        run_time: DateTime<Utc>,
        code: EventMask,
        outcome: std::result::Result<serde_json::Value, JobFailure>,
    ) {
        self.publish_execution_for(run.job.id_arc(), &run.jobstore, run_time, code, outcome);
    }

    fn publish_execution_for(
        &self,
        job_id: &Arc<str>,
        jobstore: &Arc<str>,
        run_time: DateTime<Utc>,
        code: EventMask,
        outcome: std::result::Result<serde_json::Value, JobFailure>,
    ) {
        publish_execution(
            &self.inner.events,
            job_id,
            jobstore,
            run_time,
            code,
            outcome,
        );
        self.run_ended(job_id, jobstore, run_time);
    }
}

/// Reports `run` as refused because its job already runs `max_instances` times (here, or
/// across the nodes sharing its store): the refused-runs figure, a warning, and
/// [`Event::JobMaxInstances`].
pub(crate) fn report_max_instances(
    events: &EventBus,
    keys: &RunKeys,
    run: &JobRun,
    executor: &str,
) {
    telemetry::counter(&keys.refused).increment(run.run_times.len() as u64);
    crate::logging::log_warn!(
        job = run.job.id(),
        jobstore = &*run.jobstore,
        executor = executor,
        max_instances = run.job.max_instances(),
        "run of job skipped: maximum number of running instances reached"
    );
    if events.wants(EventMask::JOB_MAX_INSTANCES) {
        events.publish(Event::JobMaxInstances(submission_event(run)));
    }
}

fn submission_event(run: &JobRun) -> JobSubmissionEvent {
    JobSubmissionEvent {
        job_id: run.job.id_arc().clone(),
        jobstore: run.jobstore.clone(),
        scheduled_run_times: Arc::from(run.run_times.as_slice()),
    }
}

fn record_start(keys: &RunKeys, late: chrono::TimeDelta) {
    telemetry::histogram(&keys.lateness).record(late.as_seconds_f64());
}

fn publish_execution(
    events: &EventBus,
    job_id: &Arc<str>,
    jobstore: &Arc<str>,
    run_time: DateTime<Utc>,
    code: EventMask,
    outcome: std::result::Result<serde_json::Value, JobFailure>,
) {
    if !events.wants(code) {
        return;
    }
    let (retval, error) = match outcome {
        Ok(value) => (value, None),
        Err(failure) => (serde_json::Value::Null, Some(failure)),
    };
    let event = JobExecutionEvent {
        job_id: job_id.clone(),
        jobstore: jobstore.clone(),
        scheduled_run_time: run_time,
        retval,
        error,
        missed_runs: None,
    };
    events.publish(if code == EventMask::JOB_EXECUTED {
        Event::JobExecuted(event)
    } else if code == EventMask::JOB_ERROR {
        Event::JobError(event)
    } else {
        Event::JobMissed(event)
    });
}

/// Publishes a [`FailureKind::Refused`] [`Event::JobError`] for every run time of `run`.
pub(crate) fn publish_refused(events: &EventBus, run: &JobRun, error: &crate::Error) {
    crate::logging::log_error!(
        job = run.job.id(),
        runs = run.run_times.len(),
        error = %error,
        "the executor refused the job's committed runs"
    );
    // Reported as failed runs, so counted as such (without the opt-in job label: the
    // executor's settings are not known here).
    let executor: Arc<str> = run.job.executor().into();
    let labels = crate::telemetry::run_labels(&run.jobstore, &executor, None);
    metrics::counter!(crate::telemetry::RUNS_FAILED, labels).increment(run.run_times.len() as u64);
    for &run_time in &run.run_times {
        let failure = JobFailure::new(FailureKind::Refused, error.clone_shallow());
        publish_execution(
            events,
            run.job.id_arc(),
            &run.jobstore,
            run_time,
            EventMask::JOB_ERROR,
            Err(failure),
        );
    }
}

/// A due job handed to an executor: the job, its store, and its run times.
#[derive(Debug, Clone)]
pub struct JobRun {
    /// The job as it was when it came due.
    pub job: Job,
    /// The alias of the store it came from.
    pub jobstore: Arc<str>,
    /// The run times to run, earliest first (one when the job coalesces; see [`RunTimes`]).
    pub run_times: RunTimes,
}

/// A run an executor did not take ([`Executor::submit_batch`]), and why.
#[derive(Debug)]
pub struct RefusedRun {
    /// The run, untouched.
    pub run: JobRun,
    /// Why: [`MaxInstancesReached`](crate::ErrorKind::MaxInstancesReached) (already
    /// published by [`ExecutorContext::admit`]), or the executor cannot take runs (shut
    /// down, queue full).
    pub error: Error,
}

impl RefusedRun {
    /// Every run of `runs`, refused with `error()` (an executor that takes none: not started).
    pub fn all(runs: Vec<JobRun>, error: impl Fn() -> Error) -> Vec<RefusedRun> {
        let refuse = |run| RefusedRun {
            run,
            error: error(),
        };
        runs.into_iter().map(refuse).collect()
    }
}

/// Runs jobs: APScheduler's `BaseExecutor` contract.
///
/// [`submit`](Executor::submit) must return quickly (it is called from the scheduler loop) and
/// report outcomes only through the [`EventBus`] of its [`ExecutorContext`]. It claims the run
/// with [`ExecutorContext::admit`], which enforces `max_instances` (failing with
/// [`MaxInstancesReached`](crate::ErrorKind::MaxInstancesReached)) and publishes the submission,
/// then runs it with [`run_job`] or [`run_job_blocking`], which apply the misfire check and
/// the job's timeout and report each outcome.
pub trait Executor: Send + Sync + Debug + 'static {
    /// What this executor can run. The scheduler refuses, at `add_job` and `modify_job`, a
    /// job the executor named by the job cannot run. In-process by default.
    fn capabilities(&self) -> ExecutorCapabilities {
        ExecutorCapabilities::in_process()
    }

    /// Prepares the executor (threads, worker processes).
    fn start(&self, ctx: ExecutorContext) -> impl Future<Output = Result<()>> + Send;

    /// Queues `run` and returns.
    fn submit(&self, run: JobRun) -> Result<()>;

    /// Queues `runs`, in order, as [`submit`](Executor::submit) would one by one, and
    /// returns the runs it refused with why (empty when it took them all).
    ///
    /// The scheduler hands over every run of a committed batch of due jobs at once. The
    /// default submits them one by one; an executor that can queue many runs in one step
    /// (one channel send, one wake-up of its workers) overrides it.
    fn submit_batch(&self, runs: Vec<JobRun>) -> Vec<RefusedRun> {
        let mut refused = Vec::new();
        for run in runs {
            // `submit` takes the run; a refused one is reported from this copy.
            let copy = run.clone();
            if let Err(error) = self.submit(run) {
                refused.push(RefusedRun { run: copy, error });
            }
        }
        refused
    }

    /// Stops taking runs; with `wait`, returns once the runs in progress have finished.
    fn shutdown(&self, wait: bool) -> impl Future<Output = Result<()>> + Send;
}

/// The object-safe mirror of [`Executor`], implemented for every `Executor`.
#[allow(missing_docs)] // each method mirrors the `Executor` method of the same name
pub trait DynExecutor: Send + Sync + Debug + 'static {
    fn capabilities(&self) -> ExecutorCapabilities;
    fn start(&self, ctx: ExecutorContext) -> BoxFuture<'_, Result<()>>;
    fn submit(&self, run: JobRun) -> Result<()>;
    fn submit_batch(&self, runs: Vec<JobRun>) -> Vec<RefusedRun>;
    fn shutdown(&self, wait: bool) -> BoxFuture<'_, Result<()>>;
}

impl<E: Executor> DynExecutor for E {
    fn capabilities(&self) -> ExecutorCapabilities {
        Executor::capabilities(self)
    }
    fn start(&self, ctx: ExecutorContext) -> BoxFuture<'_, Result<()>> {
        Box::pin(Executor::start(self, ctx))
    }
    fn submit(&self, run: JobRun) -> Result<()> {
        Executor::submit(self, run)
    }
    fn submit_batch(&self, runs: Vec<JobRun>) -> Vec<RefusedRun> {
        Executor::submit_batch(self, runs)
    }
    fn shutdown(&self, wait: bool) -> BoxFuture<'_, Result<()>> {
        Box::pin(Executor::shutdown(self, wait))
    }
}

/// What an executor can run, so the scheduler refuses a job it cannot run when the job is
/// added or changed, not at every run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExecutorCapabilities {
    /// The executor runs jobs in this process, so it can run closure jobs
    /// ([`JobTarget::closure`](crate::JobTarget::closure)). An executor that sends runs to
    /// other processes ([`wire`]) cannot.
    pub closures: bool,
}

impl ExecutorCapabilities {
    /// Runs jobs in this process: any job, closures included.
    pub const fn in_process() -> Self {
        ExecutorCapabilities { closures: true }
    }

    /// Runs jobs in other processes: registered functions only.
    pub const fn out_of_process() -> Self {
        ExecutorCapabilities { closures: false }
    }
}

impl Default for ExecutorCapabilities {
    fn default() -> Self {
        Self::in_process()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Counter updates cannot panic midway, so a poisoned map is still consistent.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs every run time of `run` on the async runtime: misfire check, call, report.
///
/// Async functions are polled in place; blocking functions go to tokio's blocking pool so
/// they cannot stall the runtime. A run past the job's [`timeout`](crate::Job::timeout) is
/// reported as [`FailureKind::TimedOut`]: an async function is stopped (its future dropped at
/// its next await point); a blocking one cannot be, so its outcome is discarded when it ends,
/// and this call returns only then, which keeps the job's instance slot taken meanwhile (a
/// second run beside a stuck one would break `max_instances`). Timeouts need the runtime's
/// timers (`enable_time`).
pub async fn run_job(ctx: &ExecutorContext, run: &JobRun) {
    let bus = ctx.inner.events.id();
    // Polled by a task of this runtime: a blocking call into the scheduler from here would
    // hold one of the threads that must answer it.
    let polled_on = tokio::runtime::Handle::try_current().ok().map(|h| h.id());
    for &run_time in &run.run_times {
        let Some(started) = ctx.begin_run(run, run_time) else {
            continue;
        };
        let span = started.span().clone();
        let limit = started.timeout();
        let outcome = match run.job.target().handler() {
            Err(e) => Err(JobFailure::from_error(Box::new(e))),
            Ok((Handler::Async(f), args)) => {
                let scope = JobScope::new(bus, polled_on, started.lazy_context(false));
                let call = catch_unwind(f(args), scope).instrument(span);
                match limit {
                    None => call.await,
                    Some(limit) => match tokio::time::timeout(limit, call).await {
                        Ok(outcome) => outcome,
                        Err(_) => Err(started.timed_out()),
                    },
                }
            }
            Ok((Handler::Sync(f), args)) => {
                let (f, args) = (f.clone(), Arc::<str>::from(args));
                let mut scope = JobScope::new(bus, None, started.lazy_context(false));
                // The blocking pool's thread does not inherit the span: carry it over.
                let job = move || span.in_scope(|| scope.enter(|| f(&args)));
                let mut call = tokio::task::spawn_blocking(job);
                let joined = match limit {
                    None => (&mut call).await,
                    Some(limit) => match tokio::time::timeout(limit, &mut call).await {
                        Ok(joined) => joined,
                        Err(_) => {
                            let failure = started.timed_out();
                            let span = started.span().clone();
                            started.finish(Err(failure));
                            let late = call.await;
                            let _entered = span.enter();
                            crate::logging::log_warn!(
                                job = run.job.id(),
                                %run_time,
                                ok = matches!(late, Ok(Ok(_))),
                                "a run reported as timed out has ended; its outcome is discarded"
                            );
                            continue;
                        }
                    },
                };
                match joined {
                    Ok(outcome) => outcome.map_err(JobFailure::from_error),
                    Err(join) if join.is_panic() => {
                        Err(JobFailure::from_panic(&*join.into_panic()))
                    }
                    Err(join) => Err(JobFailure::from_error(Box::new(join))),
                }
            }
        };
        started.finish(outcome);
    }
}

/// Runs every run time of `run` on the calling thread: misfire check, call, report.
///
/// Blocking functions run in place; async functions are driven to completion on this thread
/// with the scheduler's runtime (so they may use tokio's timers and I/O). Must not be called
/// from inside an async task.
///
/// The job's timeout: an async function is stopped at it; a blocking one, which no one can
/// stop, is reported as timed out at its deadline (by a timer on the scheduler's runtime,
/// which then calls `on_timeout` so the executor can start a replacement thread), and its
/// outcome is discarded when it ends. This call returns only when it has ended, so the
/// caller keeps the job's instance slot until then.
pub fn run_job_blocking(ctx: &ExecutorContext, run: &JobRun) {
    run_job_blocking_with(ctx, run, Arc::new(|_: &RunContext| {}));
}

/// A hook an executor gives [`run_job_blocking_with`], called when a blocking job passes
/// its timeout while still running.
pub type OnTimeout = Arc<dyn Fn(&RunContext) + Send + Sync>;

/// [`run_job_blocking`], calling `on_timeout` when a blocking function passes its timeout
/// (from a timer task of the scheduler's runtime, while the function still runs).
pub fn run_job_blocking_with(ctx: &ExecutorContext, run: &JobRun, on_timeout: OnTimeout) {
    let bus = ctx.inner.events.id();
    for &run_time in &run.run_times {
        let Some(started) = ctx.begin_run(run, run_time) else {
            continue;
        };
        let span = started.span().clone();
        let _entered = span.enter();
        let limit = started.timeout();
        let mut scope = JobScope::new(bus, None, started.lazy_context(limit.is_some()));
        match run.job.target().handler() {
            Err(e) => started.finish(Err(JobFailure::from_error(Box::new(e)))),
            Ok((Handler::Sync(f), args)) => {
                let call = std::panic::AssertUnwindSafe(|| scope.enter(|| f(args)));
                let Some(limit) = limit else {
                    started.finish(call_sync(call));
                    continue;
                };
                // Whoever takes the run first reports it: the call ending, or the timer.
                let slot = Arc::new(Mutex::new(Some(started)));
                let timer = {
                    let (slot, on_timeout) = (slot.clone(), on_timeout.clone());
                    ctx.inner.runtime.spawn(async move {
                        tokio::time::sleep(limit).await;
                        let Some(started) = lock(&slot).take() else {
                            return;
                        };
                        let (context, failure) = (started.context().clone(), started.timed_out());
                        started.finish(Err(failure));
                        on_timeout(&context);
                    })
                };
                let outcome = call_sync(call);
                timer.abort();
                match lock(&slot).take() {
                    Some(started) => started.finish(outcome),
                    None => crate::logging::log_warn!(
                        job = run.job.id(),
                        %run_time,
                        ok = outcome.is_ok(),
                        "a run reported as timed out has ended; its outcome is discarded"
                    ),
                }
            }
            Ok((Handler::Async(f), args)) => {
                // Polled and dropped on this thread only, inside `_entered`: instrumenting it
                // entered the span again at each poll and at its drop (70 instructions a run).
                let (call, runtime) = (catch_unwind(f(args), scope), &ctx.inner.runtime);
                let outcome = match limit {
                    None => drive(runtime, call),
                    Some(limit) => runtime
                        .block_on(async { tokio::time::timeout(limit, call).await })
                        .unwrap_or_else(|_| Err(started.timed_out())),
                };
                started.finish(outcome);
            }
        }
    }
}

/// Drives `fut` to its end on this thread with the scheduler's runtime, as `block_on` does,
/// but polls it once first in the runtime's context: a job that does not wait ends there,
/// without the cost of `block_on`'s set-up (it showed in the thread pool's dispatch profile).
fn drive<F: Future>(runtime: &tokio::runtime::Handle, fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    {
        let _context = runtime.enter();
        let mut cx = Context::from_waker(std::task::Waker::noop());
        if let Poll::Ready(output) = fut.as_mut().poll(&mut cx) {
            return output;
        }
    }
    // Polled again at once, with a waker that wakes this thread.
    runtime.block_on(fut)
}

/// Calls a blocking job function, turning a panic into a [`JobFailure`].
fn call_sync(
    call: impl FnOnce() -> crate::job::JobOutcome + std::panic::UnwindSafe,
) -> std::result::Result<serde_json::Value, JobFailure> {
    match std::panic::catch_unwind(call) {
        Ok(outcome) => outcome.map_err(JobFailure::from_error),
        Err(payload) => Err(JobFailure::from_panic(&*payload)),
    }
}

/// Marks the code of a job while it runs, so the scheduler can refuse calls that would wait
/// for the job itself (`shutdown(wait = true)`) or for a runtime thread the job is holding,
/// and so the job can read its [`RunContext`] (`run`, lent to the thread while the job runs).
#[derive(Debug)]
struct JobScope {
    mark: JobMark,
    run: Option<run::LazyContext>,
}

#[derive(Debug, Clone, Copy)]
struct JobMark {
    /// The event bus of the job's scheduler (its identity).
    bus: u64,
    /// The runtime whose task polls the job, for an async job polled as a task.
    polled_on: Option<tokio::runtime::Id>,
}

thread_local! {
    static CURRENT_JOB: Cell<Option<JobMark>> = const { Cell::new(None) };
}

impl JobScope {
    fn new(bus: u64, polled_on: Option<tokio::runtime::Id>, run: run::LazyContext) -> Self {
        JobScope {
            mark: JobMark { bus, polled_on },
            run: Some(run),
        }
    }

    /// Runs `f` marked as this job's code.
    fn enter<R>(&mut self, f: impl FnOnce() -> R) -> R {
        struct Restore(Option<JobMark>);
        impl Drop for Restore {
            fn drop(&mut self) {
                CURRENT_JOB.with(|c| c.set(self.0));
            }
        }
        let _restore = Restore(CURRENT_JOB.with(|c| c.replace(Some(self.mark))));
        run::LazyContext::enter(&mut self.run, f)
    }
}

/// Whether the current code runs inside a job of the scheduler whose bus is `bus_id`.
pub(crate) fn inside_job_of(bus_id: u64) -> bool {
    CURRENT_JOB
        .with(|c| c.get())
        .is_some_and(|job| job.bus == bus_id)
}

/// Whether the current code is an async job polled by a task of the runtime `runtime`.
pub(crate) fn inside_async_job_on(runtime: tokio::runtime::Id) -> bool {
    CURRENT_JOB
        .with(|c| c.get())
        .is_some_and(|job| job.polled_on == Some(runtime))
}

/// Polls a job's future marked as the job's code, turning a panic into a [`JobFailure`].
fn catch_unwind(
    fut: BoxFuture<'static, crate::job::JobOutcome>,
    scope: JobScope,
) -> impl Future<Output = std::result::Result<serde_json::Value, JobFailure>> {
    CatchUnwind { fut, scope }
}

struct CatchUnwind {
    fut: BoxFuture<'static, crate::job::JobOutcome>,
    scope: JobScope,
}

impl Future for CatchUnwind {
    type Output = std::result::Result<serde_json::Value, JobFailure>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let (scope, fut) = (&mut this.scope, &mut this.fut);
        let poll = std::panic::AssertUnwindSafe(|| scope.enter(|| fut.as_mut().poll(cx)));
        match std::panic::catch_unwind(poll) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(outcome)) => Poll::Ready(outcome.map_err(JobFailure::from_error)),
            Err(payload) => Poll::Ready(Err(JobFailure::from_panic(&*payload))),
        }
    }
}

//! Where jobs run: the [`Executor`] contract and the pieces every executor shares.
//!
//! An executor takes a [`JobRun`] (a due job and its run times) and runs it. The rules of a run
//! are the same for every executor and live here, as APScheduler's `run_job` does:
//!
//! * [`InstanceLimiter`] enforces `max_instances` per job on one executor;
//! * [`run_job`] / [`run_job_blocking`] run each due run time in order, skip the ones that
//!   start later than the misfire grace time allows ([`Event::JobMissed`]), and report every
//!   outcome on the event bus ([`Event::JobExecuted`], [`Event::JobError`]). A panic in a job
//!   is caught and reported like an error.

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use chrono::{DateTime, Utc};

use crate::clock::{BoxFuture, Clock};
use crate::error::{Error, Result};
use crate::event::{Event, EventBus, EventMask, JobExecutionEvent, JobFailure, JobSubmissionEvent};
use crate::job::{Handler, Job};

/// What an executor is given when the scheduler starts it.
#[derive(Debug, Clone)]
pub struct ExecutorContext {
    alias: Arc<str>,
    clock: Arc<dyn Clock>,
    events: EventBus,
    runtime: tokio::runtime::Handle,
}

impl ExecutorContext {
    /// A context for an executor known as `alias`.
    pub fn new(
        alias: impl Into<Arc<str>>,
        clock: Arc<dyn Clock>,
        events: EventBus,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        ExecutorContext {
            alias: alias.into(),
            clock,
            events,
            runtime,
        }
    }

    /// The alias the scheduler knows the executor by.
    pub fn alias(&self) -> &str {
        &self.alias
    }

    /// The scheduler's clock, for the misfire check.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The bus to report outcomes on.
    pub fn events(&self) -> &EventBus {
        &self.events
    }

    /// The scheduler's async runtime.
    pub fn runtime(&self) -> &tokio::runtime::Handle {
        &self.runtime
    }

    /// Claims an instance of the run's job from `limiter` and announces the run.
    ///
    /// Publishes [`Event::JobSubmitted`] on success, or [`Event::JobMaxInstances`] and fails with
    /// [`MaxInstancesReached`](crate::ErrorKind::MaxInstancesReached) when the job already runs
    /// `max_instances` times. Executors call this in `submit`, before the run can start, so the
    /// submission is always published before the run's outcome.
    pub fn admit(&self, limiter: &InstanceLimiter, run: &JobRun) -> Result<InstanceGuard> {
        let claimed = limiter.acquire(&run.job);
        let code = if claimed.is_ok() {
            EventMask::JOB_SUBMITTED
        } else {
            EventMask::JOB_MAX_INSTANCES
        };
        if self.events.wants(code) {
            let event = JobSubmissionEvent {
                job_id: run.job.id_arc().clone(),
                jobstore: run.jobstore.clone(),
                scheduled_run_times: Arc::from(run.run_times.as_slice()),
            };
            self.events.publish(if claimed.is_ok() {
                Event::JobSubmitted(event)
            } else {
                Event::JobMaxInstances(event)
            });
        }
        claimed
    }

    /// Whether `run_time` is too late to start now. Publishes [`Event::JobMissed`] if so.
    pub fn check_misfire(&self, run: &JobRun, run_time: DateTime<Utc>) -> bool {
        let Some(grace) = run.job.misfire_grace_time() else {
            return false;
        };
        let late = self.clock.now() - run_time;
        let missed = late.to_std().is_ok_and(|late| late > grace);
        if missed {
            tracing::warn!(
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
        match &outcome {
            Ok(_) => tracing::debug!(job = run.job.id(), %run_time, "job executed"),
            Err(failure) => tracing::error!(
                job = run.job.id(),
                %run_time,
                error = %failure.chain(),
                "job failed"
            ),
        }
        let code = if outcome.is_ok() {
            EventMask::JOB_EXECUTED
        } else {
            EventMask::JOB_ERROR
        };
        self.publish_execution(run, run_time, code, outcome);
    }

    fn publish_execution(
        &self,
        run: &JobRun,
        run_time: DateTime<Utc>,
        code: EventMask,
        outcome: std::result::Result<serde_json::Value, JobFailure>,
    ) {
        if !self.events.wants(code) {
            return;
        }
        let (retval, error) = match outcome {
            Ok(value) => (value, None),
            Err(failure) => (serde_json::Value::Null, Some(failure)),
        };
        let event = JobExecutionEvent {
            job_id: run.job.id_arc().clone(),
            jobstore: run.jobstore.clone(),
            scheduled_run_time: run_time,
            retval,
            error,
            missed_runs: None,
        };
        self.events.publish(if code == EventMask::JOB_EXECUTED {
            Event::JobExecuted(event)
        } else if code == EventMask::JOB_ERROR {
            Event::JobError(event)
        } else {
            Event::JobMissed(event)
        });
    }
}

/// A due job handed to an executor: the job, its store, and the run times to run (earliest
/// first; one when the job coalesces).
#[derive(Debug, Clone)]
pub struct JobRun {
    /// The job as it was when it came due.
    pub job: Job,
    /// The alias of the store it came from.
    pub jobstore: Arc<str>,
    /// The run times to run, earliest first.
    pub run_times: Vec<DateTime<Utc>>,
}

/// Runs jobs: APScheduler's `BaseExecutor` contract.
///
/// [`submit`](Executor::submit) must return quickly (it is called from the scheduler loop) and
/// report outcomes only through the [`EventBus`] of its [`ExecutorContext`]. It claims the run
/// with [`ExecutorContext::admit`], which enforces `max_instances` (failing with
/// [`MaxInstancesReached`](crate::ErrorKind::MaxInstancesReached)) and publishes the submission,
/// then runs it with [`run_job`] or [`run_job_blocking`], which apply the misfire check and
/// report each outcome.
pub trait Executor: Send + Sync + Debug + 'static {
    /// Prepares the executor (threads, worker processes).
    fn start(&self, ctx: ExecutorContext) -> impl Future<Output = Result<()>> + Send;

    /// Queues `run` and returns.
    fn submit(&self, run: JobRun) -> Result<()>;

    /// Stops taking runs; with `wait`, returns once the runs in progress have finished.
    fn shutdown(&self, wait: bool) -> impl Future<Output = Result<()>> + Send;
}

/// The object-safe mirror of [`Executor`], implemented for every `Executor`.
#[allow(missing_docs)] // each method mirrors the `Executor` method of the same name
pub trait DynExecutor: Send + Sync + Debug + 'static {
    fn start(&self, ctx: ExecutorContext) -> BoxFuture<'_, Result<()>>;
    fn submit(&self, run: JobRun) -> Result<()>;
    fn shutdown(&self, wait: bool) -> BoxFuture<'_, Result<()>>;
}

impl<E: Executor> DynExecutor for E {
    fn start(&self, ctx: ExecutorContext) -> BoxFuture<'_, Result<()>> {
        Box::pin(Executor::start(self, ctx))
    }
    fn submit(&self, run: JobRun) -> Result<()> {
        Executor::submit(self, run)
    }
    fn shutdown(&self, wait: bool) -> BoxFuture<'_, Result<()>> {
        Box::pin(Executor::shutdown(self, wait))
    }
}

/// Counts the running instances of each job on one executor and enforces `max_instances`.
///
/// The counts are spread over several locks by job id, so the scheduler claiming instances
/// and the workers releasing them rarely wait for each other.
#[derive(Debug, Clone, Default)]
pub struct InstanceLimiter {
    shards: Arc<Shards>,
}

const SHARDS: usize = 16;

#[derive(Debug, Default)]
struct Shards {
    // Hashed twice per run (claim and release): SipHash showed in the dispatch profile.
    hasher: foldhash::fast::RandomState,
    counts: [Mutex<HashMap<Arc<str>, u32, foldhash::fast::RandomState>>; SHARDS],
}

impl InstanceLimiter {
    /// A limiter with nothing running.
    pub fn new() -> Self {
        Self::default()
    }

    /// Claims one instance of `job`, or fails with
    /// [`MaxInstancesReached`](crate::ErrorKind::MaxInstancesReached). The claim ends when the
    /// guard drops.
    pub fn acquire(&self, job: &Job) -> Result<InstanceGuard> {
        let mut running = self.shard(job.id());
        let count = running.entry(job.id_arc().clone()).or_insert(0);
        if *count >= job.max_instances() {
            return Err(Error::max_instances_reached(job.id(), job.max_instances()));
        }
        *count += 1;
        Ok(InstanceGuard {
            limiter: self.clone(),
            job_id: job.id_arc().clone(),
        })
    }

    /// How many instances of `job_id` run now.
    pub fn running(&self, job_id: &str) -> u32 {
        self.shard(job_id).get(job_id).copied().unwrap_or(0)
    }

    /// How many runs of all jobs run now.
    pub fn total(&self) -> u32 {
        self.shards
            .counts
            .iter()
            .map(|shard| lock(shard).values().sum::<u32>())
            .sum()
    }

    fn shard(
        &self,
        job_id: &str,
    ) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, u32, foldhash::fast::RandomState>> {
        use std::hash::BuildHasher as _;
        let index = self.shards.hasher.hash_one(job_id) as usize % SHARDS;
        lock(&self.shards.counts[index])
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Counter updates cannot panic midway, so a poisoned map is still consistent.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One claimed instance of a job; releases it when dropped.
#[derive(Debug)]
pub struct InstanceGuard {
    limiter: InstanceLimiter,
    job_id: Arc<str>,
}

impl Drop for InstanceGuard {
    fn drop(&mut self) {
        let mut running = self.limiter.shard(&self.job_id);
        if let Some(count) = running.get_mut(&self.job_id) {
            *count -= 1;
            if *count == 0 {
                running.remove(&self.job_id);
            }
        }
    }
}

/// Runs every run time of `run` on the async runtime: misfire check, call, report.
///
/// Async functions are polled in place; blocking functions go to tokio's blocking pool so
/// they cannot stall the runtime.
pub async fn run_job(ctx: &ExecutorContext, run: &JobRun) {
    let bus = ctx.events.id();
    // Polled by a task of this runtime: a blocking call into the scheduler from here would
    // hold one of the threads that must answer it.
    let polled_on = tokio::runtime::Handle::try_current().ok().map(|h| h.id());
    for &run_time in &run.run_times {
        if ctx.check_misfire(run, run_time) {
            continue;
        }
        let outcome = match run.job.target().handler() {
            Err(e) => Err(JobFailure::from_error(Box::new(e))),
            Ok((Handler::Async(f), args)) => {
                let scope = JobScope { bus, polled_on };
                catch_unwind(f(args), scope).await
            }
            Ok((Handler::Sync(f), args)) => {
                let (f, args) = (f.clone(), Arc::<str>::from(args));
                let scope = JobScope {
                    bus,
                    polled_on: None,
                };
                match tokio::task::spawn_blocking(move || scope.enter(|| f(&args))).await {
                    Ok(outcome) => outcome.map_err(JobFailure::from_error),
                    Err(join) if join.is_panic() => {
                        Err(JobFailure::from_panic(&*join.into_panic()))
                    }
                    Err(join) => Err(JobFailure::from_error(Box::new(join))),
                }
            }
        };
        ctx.report(run, run_time, outcome);
    }
}

/// Runs every run time of `run` on the calling thread: misfire check, call, report.
///
/// Blocking functions run in place; async functions are driven to completion on this thread
/// with the scheduler's runtime (so they may use tokio's timers and I/O). Must not be called
/// from inside an async task.
pub fn run_job_blocking(ctx: &ExecutorContext, run: &JobRun) {
    let scope = JobScope {
        bus: ctx.events.id(),
        polled_on: None,
    };
    for &run_time in &run.run_times {
        if ctx.check_misfire(run, run_time) {
            continue;
        }
        let outcome = match run.job.target().handler() {
            Err(e) => Err(JobFailure::from_error(Box::new(e))),
            Ok((Handler::Sync(f), args)) => {
                let call = std::panic::AssertUnwindSafe(|| scope.enter(|| f(args)));
                match std::panic::catch_unwind(call) {
                    Ok(outcome) => outcome.map_err(JobFailure::from_error),
                    Err(payload) => Err(JobFailure::from_panic(&*payload)),
                }
            }
            Ok((Handler::Async(f), args)) => ctx.runtime.block_on(catch_unwind(f(args), scope)),
        };
        ctx.report(run, run_time, outcome);
    }
}

/// Marks the code of a job while it runs, so the scheduler can refuse calls that would wait
/// for the job itself (`shutdown(wait = true)`) or for a runtime thread the job is holding.
#[derive(Debug, Clone, Copy)]
struct JobScope {
    /// The event bus of the job's scheduler (its identity).
    bus: u64,
    /// The runtime whose task polls the job, for an async job polled as a task.
    polled_on: Option<tokio::runtime::Id>,
}

thread_local! {
    static CURRENT_JOB: Cell<Option<JobScope>> = const { Cell::new(None) };
}

impl JobScope {
    /// Runs `f` marked as this job's code.
    fn enter<R>(self, f: impl FnOnce() -> R) -> R {
        struct Restore(Option<JobScope>);
        impl Drop for Restore {
            fn drop(&mut self) {
                CURRENT_JOB.with(|c| c.set(self.0));
            }
        }
        let _restore = Restore(CURRENT_JOB.with(|c| c.replace(Some(self))));
        f()
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
        let scope = self.scope;
        let fut = &mut self.fut;
        let poll = std::panic::AssertUnwindSafe(|| scope.enter(|| fut.as_mut().poll(cx)));
        match std::panic::catch_unwind(poll) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(outcome)) => Poll::Ready(outcome.map_err(JobFailure::from_error)),
            Err(payload) => Poll::Ready(Err(JobFailure::from_panic(&*payload))),
        }
    }
}

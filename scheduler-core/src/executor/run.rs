//! One run of a job: its [`RunContext`] and the [`StartedRun`] that reports its outcome.

use std::cell::RefCell;
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};

use super::ExecutorContext;
use super::wire::{RunOutcome, RunRequest, WIRE_VERSION};
use crate::error::{Error, Result};
use crate::event::{EventMask, FailureKind, JobFailure};
use crate::job::Job;
use crate::telemetry::RunKeys;

/// What every executor tells the job about the run it is in: which run, of which job, for
/// which scheduled time, on which attempt, where. Read it from the job's code with
/// [`RunContext::current`]; use [`run_id`](Self::run_id) (or job id and scheduled run time) to
/// make a job idempotent.
///
/// ```
/// use scheduler_core::JobRegistry;
/// use scheduler_core::executor::RunContext;
///
/// let registry = JobRegistry::new();
/// registry.register_sync("charge", |order: u64| {
///     // Always `Some` inside a run, whatever the executor; `None` outside one.
///     let run = RunContext::current().expect("called by an executor");
///     println!("charging order {order} for run {} (attempt {})", run.run_id, run.attempt);
/// });
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunContext {
    /// Unique for every run (a UUID in hex), the same on every attempt of the run.
    pub run_id: Arc<str>,
    /// The job's id.
    pub job_id: Arc<str>,
    /// The alias of the job's store (empty when the sender did not say).
    pub jobstore: Arc<str>,
    /// The run time this run is for.
    pub scheduled_run_time: DateTime<Utc>,
    /// 1 for the first attempt; more when an executor delivers the same run again (a remote
    /// worker taking over a run whose worker was lost).
    pub attempt: u32,
    /// The alias of the executor running it.
    pub executor: Arc<str>,
    /// Where it runs: `host:pid` of the process running the job's code.
    pub node: Arc<str>,
}

thread_local! {
    static CURRENT_RUN: RefCell<Option<LazyContext>> = const { RefCell::new(None) };
}

/// A run's context, or what it is made from when first asked for: most jobs never read
/// theirs, and making it (a run id, an allocation, its release) cost about 600 of the 7,600
/// instructions of a run on the tokio executor.
#[derive(Debug, Clone)]
pub(crate) enum LazyContext {
    Made(Arc<RunContext>),
    Seed(RunSeed),
}

impl LazyContext {
    /// The context, made now if it was not yet; from then on `self` holds it, so every
    /// later read sees the same run id.
    fn get(&mut self) -> Arc<RunContext> {
        match self {
            LazyContext::Made(context) => context.clone(),
            LazyContext::Seed(seed) => {
                let context = Arc::new(seed.make());
                *self = LazyContext::Made(context.clone());
                context
            }
        }
    }

    /// Runs `f` with `run` as the [`current`](RunContext::current) run; `run` gets back what
    /// it lent, with the context made meanwhile if `f` asked for it.
    pub(crate) fn enter<R>(run: &mut Option<LazyContext>, f: impl FnOnce() -> R) -> R {
        struct Restore<'a> {
            previous: Option<LazyContext>,
            run: &'a mut Option<LazyContext>,
        }
        impl Drop for Restore<'_> {
            fn drop(&mut self) {
                let previous = self.previous.take();
                *self.run = CURRENT_RUN.with(|c| std::mem::replace(&mut *c.borrow_mut(), previous));
            }
        }
        // Lent, not cloned: installing it costs no reference count.
        let previous = CURRENT_RUN.with(|c| std::mem::replace(&mut *c.borrow_mut(), run.take()));
        let _restore = Restore { previous, run };
        f()
    }
}

/// What a run's [`RunContext`] is made from: the executor's context (alias, node), the job,
/// its store and the run time.
#[derive(Debug, Clone)]
pub(crate) struct RunSeed {
    ctx: ExecutorContext,
    job_id: Arc<str>,
    jobstore: Arc<str>,
    run_time: DateTime<Utc>,
}

impl RunSeed {
    fn make(&self) -> RunContext {
        RunContext::new(
            self.job_id.clone(),
            self.jobstore.clone(),
            self.run_time,
            self.ctx.alias_arc().clone(),
            self.ctx.node().clone(),
        )
    }
}

impl RunContext {
    /// A first attempt of a new run, with a fresh run id.
    pub fn new(
        job_id: impl Into<Arc<str>>,
        jobstore: impl Into<Arc<str>>,
        scheduled_run_time: DateTime<Utc>,
        executor: impl Into<Arc<str>>,
        node: impl Into<Arc<str>>,
    ) -> Self {
        RunContext {
            run_id: crate::ids::random_id(),
            job_id: job_id.into(),
            jobstore: jobstore.into(),
            scheduled_run_time,
            attempt: 1,
            executor: executor.into(),
            node: node.into(),
        }
    }

    /// The context of the run `request` asks for, running on `node`.
    pub fn from_request(request: &RunRequest, node: impl Into<Arc<str>>) -> Self {
        RunContext {
            run_id: request.run_id.as_str().into(),
            job_id: request.job_id.as_str().into(),
            jobstore: request.jobstore.as_str().into(),
            scheduled_run_time: request.scheduled_run_time,
            attempt: request.attempt,
            executor: request.executor.as_str().into(),
            node: node.into(),
        }
    }

    /// The run the calling code is part of: `Some` while a job function runs (on any
    /// executor, in any process), `None` elsewhere.
    ///
    /// It is kept per thread and set around every poll of an async job, so an async job sees
    /// it across its awaits; a task or thread the job spawns does not inherit it (pass it on).
    pub fn current() -> Option<Arc<RunContext>> {
        CURRENT_RUN.with(|c| c.borrow_mut().as_mut().map(LazyContext::get))
    }

    /// Runs `f` with this as the [`current`](Self::current) run. For executors that call job
    /// code themselves (a worker process, a remote worker).
    pub fn scope<R>(self: &Arc<Self>, f: impl FnOnce() -> R) -> R {
        LazyContext::enter(&mut Some(LazyContext::Made(self.clone())), f)
    }
}

/// `host:pid` of this process: the [`RunContext::node`] of runs in it.
pub fn local_node() -> &'static str {
    static NODE: OnceLock<String> = OnceLock::new();
    NODE.get_or_init(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .or_else(|_| std::fs::read_to_string("/etc/hostname"))
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .or_else(|| std::env::var("COMPUTERNAME").ok())
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".to_owned());
        format!("{host}:{}", std::process::id())
    })
}

/// One run time of a [`JobRun`](super::JobRun) that passed its misfire check and must now be
/// called and reported: the middle of the misfire → call → report sequence every executor
/// follows. Get one from [`ExecutorContext::begin_run`]; end it with [`finish`](Self::finish)
/// or [`finish_wire`](Self::finish_wire), which publish the outcome.
///
/// A `StartedRun` dropped without either (its task cancelled, its thread gone) reports the run
/// as failed ([`FailureKind::WorkerLost`]): an accepted run always gets an outcome event.
#[derive(Debug)]
#[must_use = "a started run must be finished with its outcome"]
pub struct StartedRun {
    /// The executor's context, the job, its store and the run time.
    seed: RunSeed,
    /// The run's context, made when first asked for ([`LazyContext`]).
    context: OnceLock<Arc<RunContext>>,
    timeout: Option<std::time::Duration>,
    finished: bool,
    /// The run's `tracing` span ([`ExecutorContext::run_span`]).
    span: tracing::Span,
    /// When the run started, for the run-duration metric.
    started_at: std::time::Instant,
    /// The run's metric keys, looked up once for its start and its end.
    keys: Arc<RunKeys>,
}

impl ExecutorContext {
    /// Starts the run of `run` for `run_time`: the misfire check (when the run really
    /// starts, as APScheduler does), then its [`RunContext`]. `None` when the run time is
    /// past the job's misfire grace time; [`Event::JobMissed`](crate::Event::JobMissed) has
    /// been published then.
    ///
    /// The misfire check, and later the outcome's report, happen inside the run's `tracing`
    /// span ([`StartedRun::span`]); enter it around the job's code too, so the job's own log
    /// lines carry the run's context.
    pub fn begin_run(&self, run: &super::JobRun, run_time: DateTime<Utc>) -> Option<StartedRun> {
        let late = lateness(self.clock().now(), run_time);
        let span = self.run_span_at(run, run_time, late);
        let keys = self.keys(run);
        if span.in_scope(|| self.check_misfire_at(run, run_time, late, &keys)) {
            return None;
        }
        Some(StartedRun {
            span,
            keys,
            started_at: std::time::Instant::now(),
            seed: RunSeed {
                ctx: self.clone(),
                job_id: run.job.id_arc().clone(),
                jobstore: run.jobstore.clone(),
                run_time,
            },
            context: OnceLock::new(),
            timeout: run.job.timeout(),
            finished: false,
        })
    }
}

/// `now - run_time`, without chrono's day arithmetic when both fall on the same day (almost
/// always): the subtraction cost about 110 instructions of a run.
fn lateness(now: DateTime<Utc>, run_time: DateTime<Utc>) -> chrono::TimeDelta {
    // `naive_utc` is the stored value; `date_naive` and `time` apply the zero offset.
    let (now_utc, run_utc) = (now.naive_utc(), run_time.naive_utc());
    if now_utc.date() == run_utc.date() {
        now_utc.time() - run_utc.time()
    } else {
        now - run_time
    }
}

impl StartedRun {
    /// The run's `tracing` span, to enter around the job's code (it does not follow the job
    /// to another thread or process by itself).
    pub fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// The run's context, to give the job's code ([`RunContext::scope`]).
    pub fn context(&self) -> &Arc<RunContext> {
        self.context.get_or_init(|| Arc::new(self.seed.make()))
    }

    /// The run's context as a job's scope takes it: made only if the job asks for it, unless
    /// it is made already or `now` is set (something else may read it while the job runs,
    /// and both must see the same run).
    pub(crate) fn lazy_context(&self, now: bool) -> LazyContext {
        match self.context.get() {
            Some(context) => LazyContext::Made(context.clone()),
            None if now => LazyContext::Made(self.context().clone()),
            None => LazyContext::Seed(self.seed.clone()),
        }
    }

    /// The run time this run is for.
    pub fn run_time(&self) -> DateTime<Utc> {
        self.seed.run_time
    }

    /// The job's time limit for this run, if any.
    pub fn timeout(&self) -> Option<std::time::Duration> {
        self.timeout
    }

    /// The failure to report when the run exceeded its time limit.
    pub fn timed_out(&self) -> JobFailure {
        JobFailure::timed_out(
            &self.seed.job_id,
            self.timeout.unwrap_or(std::time::Duration::ZERO),
        )
    }

    /// The run as wire data, for an executor that runs jobs in other processes. Fails with
    /// [`NotPersistable`](crate::ErrorKind::NotPersistable) for a closure job and
    /// [`Serialization`](crate::ErrorKind::Serialization) for arguments that are not JSON.
    pub fn request(&self, job: &Job) -> Result<RunRequest> {
        let target = job.target();
        let (Some(function), Some(args)) = (target.function_name(), target.args_json()) else {
            target.handler()?;
            return Err(Error::closure_not_runnable(job.id(), self.seed.ctx.alias()));
        };
        let context = self.context();
        let args = serde_json::from_str(args)
            .map_err(|e| Error::serialization(format!("the arguments of job {:?}", job.id()), e))?;
        Ok(RunRequest {
            version: WIRE_VERSION,
            run_id: context.run_id.to_string(),
            job_id: job.id().to_owned(),
            jobstore: context.jobstore.to_string(),
            function: function.to_owned(),
            args,
            scheduled_run_time: context.scheduled_run_time,
            attempt: context.attempt,
            misfire_grace_time: job.misfire_grace_time(),
            timeout: job.timeout(),
            executor: context.executor.to_string(),
        })
    }

    /// Publishes the run's outcome: [`Event::JobExecuted`](crate::Event::JobExecuted) or
    /// [`Event::JobError`](crate::Event::JobError).
    #[inline]
    pub fn finish(mut self, outcome: std::result::Result<serde_json::Value, JobFailure>) {
        self.report(outcome);
    }

    /// [`finish`](Self::finish) in place: inlined, `finish` takes the run without copying
    /// it (about 30 instructions a run).
    fn report(&mut self, outcome: std::result::Result<serde_json::Value, JobFailure>) {
        self.finished = true;
        let _entered = self.span.enter();
        let keys = &self.keys;
        crate::telemetry::histogram(&keys.duration).record(SecondsSince(self.started_at));
        self.seed.ctx.report_keyed(
            keys,
            &self.seed.job_id,
            &self.seed.jobstore,
            self.seed.run_time,
            outcome,
        );
    }

    /// Publishes an outcome that came back over the wire. A worker's
    /// [`RunOutcome::Missed`] becomes [`Event::JobMissed`](crate::Event::JobMissed).
    pub fn finish_wire(mut self, outcome: RunOutcome) {
        let result = match outcome {
            RunOutcome::Missed { reason } => {
                self.finished = true;
                let _entered = self.span.enter();
                let labels = self
                    .seed
                    .ctx
                    .labels_for(&self.seed.job_id, &self.seed.jobstore);
                metrics::counter!(crate::telemetry::RUNS_MISSED, labels).increment(1);
                crate::logging::log_warn!(job = %self.seed.job_id, %reason, "run missed on its worker");
                self.seed.ctx.publish_execution_for(
                    &self.seed.job_id,
                    &self.seed.jobstore,
                    self.seed.run_time,
                    EventMask::JOB_MISSED,
                    Ok(serde_json::Value::Null),
                );
                return;
            }
            RunOutcome::TimedOut { .. } => Err(self.timed_out()),
            other => other.into_result(),
        };
        self.finish(result);
    }
}

/// The seconds since an instant, read when a histogram records it: without a recorder
/// the clock is not read (about 90 instructions of a run).
struct SecondsSince(std::time::Instant);

impl metrics::IntoF64 for SecondsSince {
    fn into_f64(self) -> f64 {
        self.0.elapsed().as_secs_f64()
    }
}

impl Drop for StartedRun {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let _entered = self.span.enter();
        let failure = JobFailure::new(
            FailureKind::WorkerLost,
            "the run ended without an outcome: the executor's task or thread running it \
             was stopped (runtime shut down, or a panic in the executor)",
        );
        self.seed.ctx.report_keyed(
            &self.keys,
            &self.seed.job_id,
            &self.seed.jobstore,
            self.seed.run_time,
            Err(failure),
        );
    }
}

impl RunOutcome {
    /// The outcome as the event bus reports it: the value, or the failure.
    pub fn into_result(self) -> std::result::Result<serde_json::Value, JobFailure> {
        match self {
            RunOutcome::Returned { value } => Ok(value),
            RunOutcome::Failed { error, causes } => Err(JobFailure::from_messages(error, &causes)),
            RunOutcome::Panicked { message } => Err(JobFailure::from_panic_message(message)),
            RunOutcome::TimedOut { after } => Err(JobFailure::new(
                FailureKind::TimedOut,
                Error::new(
                    crate::ErrorKind::JobTimedOut,
                    format!("the run did not finish within its timeout of {after:?}"),
                ),
            )),
            RunOutcome::Missed { reason } => Err(JobFailure::new(
                FailureKind::Refused,
                format!("the run was missed: {reason}"),
            )),
            RunOutcome::Refused { reason } => Err(JobFailure::new(
                FailureKind::Refused,
                format!("the worker refused the run: {reason}"),
            )),
            RunOutcome::Unknown => Err(JobFailure::new(
                FailureKind::Error,
                "the worker answered with an outcome of a kind this version does not know \
                 (a newer worker?)",
            )),
        }
    }

    /// The outcome of a run that ended with `result`.
    pub fn from_result(result: std::result::Result<serde_json::Value, JobFailure>) -> Self {
        match result {
            Ok(value) => RunOutcome::Returned { value },
            Err(failure) => match failure.kind() {
                FailureKind::Panic => RunOutcome::Panicked {
                    message: failure
                        .to_string()
                        .trim_start_matches("the job panicked: ")
                        .to_owned(),
                },
                FailureKind::Refused => RunOutcome::Refused {
                    reason: failure.chain(),
                },
                _ => RunOutcome::Failed {
                    error: failure.to_string(),
                    causes: failure.causes(),
                },
            },
        }
    }
}

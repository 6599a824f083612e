use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt as _;
use scheduler_core::chrono::{DateTime, Utc};
use scheduler_core::event::FailureKind;
use scheduler_core::executor::ExecutorCapabilities;
use scheduler_core::executor::wire::{RunOutcome, RunRequest, WIRE_VERSION};
use scheduler_core::{
    Error, Event, EventMask, Executor, ExecutorContext, InstanceGuard, InstanceLimiter,
    JobExecutionEvent, JobFailure, JobRun, Result,
};

use super::broker::{Broker, Layout, Queue, check_namespace, nats::Nats};
use super::wire::{self, OutcomeEnvelope, RunEnvelope, SigningKey};
use super::{RemoteFailure, Url};

/// Runs jobs on worker processes reached through NATS JetStream.
///
/// Each run is published to the namespace's run queue and taken by one [`Worker`](super::Worker);
/// its outcome comes back on the outcome queue and becomes the usual
/// [`JobExecuted`](scheduler_core::Event::JobExecuted), [`JobError`](scheduler_core::Event::JobError)
/// or [`JobMissed`](scheduler_core::Event::JobMissed) event. A run counts toward its job's
/// `max_instances` from submission until its outcome arrives, so queued runs count, over all
/// workers. See the crate README for the delivery guarantee and the trust model.
#[derive(Debug)]
pub struct RemoteExecutor {
    settings: Settings,
    running: Mutex<Option<Arc<Running>>>,
}

#[derive(Debug, Clone)]
struct Settings {
    url: Url,
    layout: Layout,
    key: Option<SigningKey>,
    max_attempts: u32,
    drain_timeout: Duration,
}

/// Settings of a [`RemoteExecutor`]; made by [`RemoteExecutor::builder`].
#[derive(Debug, Clone)]
pub struct RemoteExecutorBuilder {
    settings: Settings,
}

impl RemoteExecutor {
    /// Settings for an executor publishing to the broker at `url` (`nats://user:pass@host:4222`;
    /// the credentials never appear in logs or errors) under `namespace`, which names its
    /// queues: schedulers with different namespaces never take each other's runs.
    pub fn builder(url: impl Into<String>, namespace: impl Into<String>) -> RemoteExecutorBuilder {
        RemoteExecutorBuilder {
            settings: Settings {
                url: Url(url.into()),
                layout: Layout {
                    namespace: namespace.into(),
                    run_capacity: 10_000,
                    outcome_capacity: 100_000,
                    ack_wait: Duration::from_secs(30),
                    max_ack_pending: 1_000,
                },
                key: None,
                max_attempts: 5,
                drain_timeout: Duration::from_secs(60),
            },
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Arc<Running>>> {
        // Only `Option` swaps happen under this lock.
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl RemoteExecutorBuilder {
    /// Signs every run with HMAC-SHA256 under `key`; workers given the same key refuse runs
    /// not signed with it, and the executor refuses outcomes not signed with it.
    pub fn signing_key(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.settings.key = Some(SigningKey::new(key));
        self
    }

    /// How many runs may wait in the broker (default 10,000); a run submitted to a full queue
    /// is refused with a [`JobError`](scheduler_core::Event::JobError).
    pub fn queue_capacity(mut self, runs: u32) -> Self {
        self.settings.layout.run_capacity = i64::from(runs);
        self
    }

    /// How long a worker may stay silent about a run before the broker hands it to another
    /// worker (default 30 s). Workers report progress three times per period while a run is
    /// going, so this bounds how long a dead worker's run waits, not how long a run may take.
    pub fn ack_wait(mut self, ack_wait: Duration) -> Self {
        self.settings.layout.ack_wait = ack_wait;
        self
    }

    /// How many runs workers may hold unacknowledged at once, over all workers (default 1,000).
    pub fn max_in_flight(mut self, runs: u32) -> Self {
        self.settings.layout.max_ack_pending = i64::from(runs);
        self
    }

    /// How many deliveries a run gets (default 5): a run whose worker died that many times is
    /// reported as a [`JobError`](scheduler_core::Event::JobError) instead of being tried again.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.settings.max_attempts = attempts;
        self
    }

    /// How long `shutdown(wait = true)` waits for the outcomes of runs still out (default
    /// 60 s). Outcomes arriving later stay in the broker for the next start.
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.settings.drain_timeout = timeout;
        self
    }

    /// Checks the settings.
    pub fn build(self) -> Result<RemoteExecutor> {
        let s = &self.settings;
        check_namespace(&s.layout.namespace)?;
        if s.layout.run_capacity == 0 || s.layout.max_ack_pending == 0 || s.max_attempts == 0 {
            return Err(Error::config(
                "queue_capacity, max_in_flight and max_attempts must be at least 1",
            ));
        }
        if s.layout.ack_wait < Duration::from_millis(300) {
            return Err(Error::config("ack_wait must be at least 300 ms"));
        }
        Ok(RemoteExecutor {
            settings: self.settings,
            running: Mutex::default(),
        })
    }
}

#[derive(Debug)]
struct Running {
    ctx: ExecutorContext,
    broker: Nats,
    settings: Settings,
    limiter: InstanceLimiter,
    /// Runs submitted and not yet answered, by run id.
    outstanding: Mutex<HashMap<String, Outstanding>>,
    answered: tokio::sync::Notify,
    outcomes: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// A run sent and not answered yet. The runs of one submission (one per run time) share
/// their job's instance, released when the last is answered.
#[derive(Debug)]
struct Outstanding {
    _instance: Arc<InstanceGuard>,
}

impl Running {
    fn outstanding(&self) -> std::sync::MutexGuard<'_, HashMap<String, Outstanding>> {
        self.outstanding.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reports a run that could not be sent as failed and forgets it.
    fn fail(&self, request: &RunRequest, error: Error) {
        tracing::error!(job = %request.job_id, error = %error, "remote run not sent");
        publish(
            &self.ctx,
            &request.job_id,
            &request.jobstore,
            request.scheduled_run_time,
            Err(JobFailure::new(FailureKind::Refused, error)),
        );
        self.forget(&request.run_id);
    }

    fn forget(&self, run_id: &str) -> bool {
        let known = self.outstanding().remove(run_id).is_some();
        self.answered.notify_waiters();
        known
    }

    fn handle_outcome(&self, outcome: OutcomeEnvelope) {
        let (job_id, jobstore, run_time) = (
            &outcome.job_id,
            &outcome.jobstore,
            outcome.scheduled_run_time,
        );
        match outcome.report.outcome {
            RunOutcome::Missed { reason } => {
                tracing::warn!(job = %job_id, %reason, "remote run missed");
                publish_missed(&self.ctx, job_id, jobstore, run_time);
            }
            RunOutcome::TimedOut { after } => publish(
                &self.ctx,
                job_id,
                jobstore,
                run_time,
                Err(JobFailure::timed_out(job_id, after)),
            ),
            other => publish(&self.ctx, job_id, jobstore, run_time, other.into_result()),
        }
        if !self.forget(&outcome.report.run_id) {
            tracing::info!(
                run = %outcome.report.run_id,
                job = %job_id,
                worker = %outcome.worker,
                "outcome of a run submitted before this executor started"
            );
        }
    }
}

fn publish(
    ctx: &ExecutorContext,
    job_id: &str,
    jobstore: &str,
    run_time: DateTime<Utc>,
    outcome: std::result::Result<serde_json::Value, JobFailure>,
) {
    let code = if outcome.is_ok() {
        EventMask::JOB_EXECUTED
    } else {
        EventMask::JOB_ERROR
    };
    if let Err(failure) = &outcome {
        tracing::error!(job = job_id, %run_time, error = %failure.chain(), "remote job failed");
    }
    if !ctx.events().wants(code) {
        return;
    }
    let (retval, error) = match outcome {
        Ok(value) => (value, None),
        Err(failure) => (serde_json::Value::Null, Some(failure)),
    };
    let event = JobExecutionEvent {
        job_id: job_id.into(),
        jobstore: jobstore.into(),
        scheduled_run_time: run_time,
        retval,
        error,
        missed_runs: None,
    };
    ctx.events().publish(if code == EventMask::JOB_EXECUTED {
        Event::JobExecuted(event)
    } else {
        Event::JobError(event)
    });
}

fn publish_missed(ctx: &ExecutorContext, job_id: &str, jobstore: &str, run_time: DateTime<Utc>) {
    tracing::warn!(job = job_id, %run_time, "remote run missed its misfire grace time");
    if ctx.events().wants(EventMask::JOB_MISSED) {
        ctx.events().publish(Event::JobMissed(JobExecutionEvent {
            job_id: job_id.into(),
            jobstore: jobstore.into(),
            scheduled_run_time: run_time,
            retval: serde_json::Value::Null,
            error: None,
            missed_runs: None,
        }));
    }
}

/// Takes outcomes as they come, reconnecting with backoff when the consumer fails.
async fn take_outcomes(running: std::sync::Weak<Running>, broker: Nats, key: Option<SigningKey>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match broker
            .take(Queue::Outcomes, 256, Duration::from_secs(5))
            .await
        {
            Ok(mut deliveries) => {
                while let Some(delivery) = deliveries.next().await {
                    let Some(running) = running.upgrade() else {
                        return;
                    };
                    let delivery = match delivery {
                        Ok(delivery) => delivery,
                        Err(e) => {
                            tracing::warn!(error = %e, "taking outcomes failed; retrying");
                            break;
                        }
                    };
                    backoff = Duration::from_millis(100);
                    match wire::decode::<OutcomeEnvelope>(delivery.frame(), key.as_ref()) {
                        Ok(outcome) if outcome.namespace == running.settings.layout.namespace => {
                            running.handle_outcome(outcome);
                        }
                        Ok(outcome) => tracing::error!(
                            namespace = %outcome.namespace,
                            "outcome of another namespace refused"
                        ),
                        Err(e) => tracing::error!(error = %e, "outcome refused"),
                    }
                    // An outcome is reported before it is acknowledged: a lost ack repeats an
                    // event, never loses one (so outcomes are not worth a confirmed ack).
                    if let Err(e) = delivery.ack(false).await {
                        tracing::warn!(error = %e, "cannot acknowledge an outcome");
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot take outcomes; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
        if running.strong_count() == 0 {
            return;
        }
    }
}

impl Executor for RemoteExecutor {
    async fn start(&self, ctx: ExecutorContext) -> Result<()> {
        let s = &self.settings;
        let name = format!("scheduler {} ({})", s.layout.namespace, ctx.alias());
        let broker = Nats::connect(&s.url.0, &s.layout.namespace, &name).await?;
        broker.declare(&s.layout).await?;
        let running = Arc::new(Running {
            ctx: ctx.clone(),
            broker: broker.clone(),
            settings: s.clone(),
            limiter: InstanceLimiter::new(),
            outstanding: Mutex::default(),
            answered: tokio::sync::Notify::new(),
            outcomes: Mutex::default(),
        });
        let task = ctx.runtime().spawn(take_outcomes(
            Arc::downgrade(&running),
            broker,
            s.key.clone(),
        ));
        *running.outcomes.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
        *self.lock() = Some(running);
        Ok(())
    }

    fn capabilities(&self) -> ExecutorCapabilities {
        ExecutorCapabilities::out_of_process()
    }

    /// Sends one message per run time. Fails (and the scheduler reports a `JobError`) when the
    /// run is too large for the broker or the broker is unreachable; a run the broker refuses
    /// later (a full queue) is reported as a `JobError` here.
    fn submit(&self, run: JobRun) -> Result<()> {
        let Some(running) = self.lock().clone() else {
            return Err(Error::scheduler_state("the remote executor is not started"));
        };
        let job = &run.job;
        let target = job.target();
        let (Some(function), Some(args)) = (target.function_name(), target.args_json()) else {
            return Err(Error::not_persistable(job.id()).with_job_id(job.id()));
        };
        let args: serde_json::Value = serde_json::from_str(args)
            .map_err(|e| Error::serialization(format!("the arguments of job {:?}", job.id()), e))?;
        let settings = &running.settings;
        let mut frames = Vec::with_capacity(run.run_times.len());
        for &run_time in &run.run_times {
            let request = RunRequest {
                version: WIRE_VERSION,
                run_id: uuid::Uuid::new_v4().simple().to_string(),
                job_id: job.id().to_owned(),
                jobstore: run.jobstore.to_string(),
                function: function.to_owned(),
                args: args.clone(),
                scheduled_run_time: run_time,
                attempt: 1,
                misfire_grace_time: job.misfire_grace_time(),
                timeout: job.timeout(),
                executor: running.ctx.alias().to_owned(),
            };
            let envelope = RunEnvelope {
                namespace: settings.layout.namespace.clone(),
                max_attempts: settings.max_attempts,
                progress_every: (settings.layout.ack_wait / 3).as_secs_f64(),
                request,
            };
            let frame = wire::encode(&envelope, settings.key.as_ref()).map_err(|e| {
                Error::serialization("cannot encode the run", e).with_job_id(job.id())
            })?;
            // Checked before anything is claimed: the typed error, and no instance held.
            let limit = running.broker.max_frame();
            if frame.len() > limit {
                return Err(Error::invalid_job(format!(
                    "the run of job {:?} is {} bytes, over the broker's limit of {limit} \
                     bytes (its arguments are too large to send to a worker)",
                    job.id(),
                    frame.len()
                ))
                .with_job_id(job.id()));
            }
            frames.push((envelope.request, frame));
        }
        if !running.broker.is_connected() {
            return Err(Error::backend(
                "the broker is unreachable; the run was not sent (the executor reconnects on \
                 its own)",
                RemoteFailure("not connected".into()),
            )
            .set_temporary()
            .with_job_id(job.id()));
        }
        let instance = Arc::new(running.ctx.admit(&running.limiter, &run)?);
        {
            let mut outstanding = running.outstanding();
            for (request, _) in &frames {
                outstanding.insert(
                    request.run_id.clone(),
                    Outstanding {
                        _instance: instance.clone(),
                    },
                );
            }
        }
        drop(instance);
        let runtime = running.ctx.runtime().clone();
        runtime.spawn(async move {
            for (request, frame) in frames {
                if let Err(e) = running.broker.publish(Queue::Runs, frame).await {
                    running.fail(&request, e.with_job_id(request.job_id.clone()));
                }
            }
        });
        Ok(())
    }

    async fn shutdown(&self, wait: bool) -> Result<()> {
        let Some(running) = self.lock().take() else {
            return Ok(());
        };
        if wait {
            let drained = tokio::time::timeout(running.settings.drain_timeout, async {
                loop {
                    let answered = running.answered.notified();
                    if running.outstanding().is_empty() {
                        return;
                    }
                    answered.await;
                }
            })
            .await;
            if drained.is_err() {
                tracing::warn!(
                    runs = running.outstanding().len(),
                    "shutdown: runs still out after the drain timeout; their outcomes stay \
                     in the broker for the next start"
                );
            }
        }
        if let Some(task) = running
            .outcomes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            task.abort();
        }
        Ok(())
    }
}

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt as _;
use scheduler_core::executor::wire::{RunOutcome, RunReport, WIRE_VERSION, check_version};
use scheduler_core::executor::{RunContext, local_node};
use scheduler_core::{Clock as _, SystemClock};
use scheduler_core::{Error, Handler, JobFailure, JobRegistry, Result};
use tokio::sync::Semaphore;

use super::Url;
use super::broker::{Broker, Delivery, Queue, check_namespace, nats::Nats};
use super::wire::{self, OutcomeEnvelope, RunEnvelope, SigningKey};

/// A worker process's loop: takes runs of one namespace from the broker and runs them with the
/// program's own [`JobRegistry`].
///
/// Start it in the same program as the scheduler (same registry), in worker mode, on as many
/// machines as needed. Each run is acknowledged to the broker only after its outcome has been
/// published, so a worker that dies mid-run leaves it to be redelivered to another worker. While
/// a run goes on, the worker tells the broker so, so a long run is never redelivered beside
/// itself. It checks each run's misfire grace time when the run starts (with its own clock)
/// and enforces the job's timeout.
///
/// ```no_run
/// # async fn demo(registry: scheduler_core::JobRegistry) -> scheduler_core::Result<()> {
/// use executors::remote::Worker;
///
/// let worker = Worker::builder("nats://127.0.0.1:4222", "billing", registry)
///     .name("worker-1")
///     .concurrency(4)
///     .signing_key(std::env::var("RUN_KEY").unwrap_or_default())
///     .build()?;
/// // Runs until the process is stopped; pass a future that completes to stop gracefully.
/// worker.run_until(std::future::pending()).await
/// # }
/// ```
#[derive(Debug)]
pub struct Worker {
    settings: WorkerSettings,
    refused: Arc<AtomicU64>,
}

#[derive(Debug, Clone)]
struct WorkerSettings {
    url: Url,
    namespace: String,
    registry: JobRegistry,
    name: String,
    concurrency: usize,
    prefetch: usize,
    key: Option<SigningKey>,
}

/// Settings of a [`Worker`]; made by [`Worker::builder`].
#[derive(Debug, Clone)]
pub struct WorkerBuilder {
    settings: WorkerSettings,
}

impl Worker {
    /// Settings for a worker taking the runs of `namespace` from the broker at `url`, running
    /// them with `registry`.
    pub fn builder(
        url: impl Into<String>,
        namespace: impl Into<String>,
        registry: JobRegistry,
    ) -> WorkerBuilder {
        WorkerBuilder {
            settings: WorkerSettings {
                url: Url(url.into()),
                namespace: namespace.into(),
                registry,
                name: format!("worker-{}", std::process::id()),
                concurrency: 4,
                prefetch: 0,
                key: None,
            },
        }
    }

    /// How many runs this worker refused as forged or unreadable so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Takes and runs runs until `shutdown` completes, then finishes the runs it holds and
    /// returns. Reconnects with backoff while the broker is away.
    pub async fn run_until(&self, shutdown: impl Future<Output = ()>) -> Result<()> {
        let s = &self.settings;
        let mut shutdown = std::pin::pin!(shutdown);
        let mut backoff = Duration::from_millis(100);
        let broker = loop {
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                connected = Nats::connect(&s.url.0, &s.namespace, &s.name) => match connected {
                    Ok(broker) => break broker,
                    Err(e) => tracing::warn!(error = %e, "worker cannot connect; retrying"),
                },
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        };
        let broker: Arc<dyn Broker> = Arc::new(broker);
        let slots = Arc::new(Semaphore::new(s.concurrency));
        let (stop, stopping) = tokio::sync::watch::channel(false);
        // One puller per run this worker may hold (running, or taken ahead and waiting for a
        // run slot): each asks the broker for one run at a time, so a run is never taken
        // without someone to report its progress, and pulls overlap instead of queueing.
        let mut pullers = tokio::task::JoinSet::new();
        for _ in 0..s.concurrency + s.prefetch {
            let task = RunTask {
                settings: s.clone(),
                broker: broker.clone(),
                slots: slots.clone(),
            };
            pullers.spawn(pull(task, stopping.clone(), self.refused.clone()));
        }
        shutdown.await;
        // Runs already taken are finished and answered; none is abandoned to a redelivery.
        let _ = stop.send(true);
        while pullers.join_next().await.is_some() {}
        Ok(())
    }
}

/// Takes runs one at a time and runs them until `stopping` turns true.
async fn pull(
    task: RunTask,
    mut stopping: tokio::sync::watch::Receiver<bool>,
    refused: Arc<AtomicU64>,
) {
    let mut backoff = Duration::from_millis(100);
    while !*stopping.borrow() {
        let taken = tokio::select! {
            _ = stopping.changed() => return,
            taken = task.broker.take(Queue::Runs, 1, Duration::from_secs(5)) => taken,
        };
        let mut deliveries = match taken {
            Ok(deliveries) => {
                backoff = Duration::from_millis(100);
                deliveries
            }
            Err(e) => {
                tracing::warn!(error = %e, "worker cannot take runs; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        // The pull asked for one run; once it came, the run is ours to finish. Stopping while
        // the pull waits drops it (a run the broker hands to it just then is redelivered
        // after the ack wait).
        loop {
            let next = tokio::select! {
                _ = stopping.changed() => return,
                next = deliveries.next() => next,
            };
            let delivery = match next {
                None => break,
                Some(Ok(delivery)) => delivery,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "worker: taking runs failed");
                    break;
                }
            };
            match task.prepare(&*delivery) {
                Ok(run) => task.run(delivery, run).await,
                Err(e) => {
                    tracing::error!(error = %e, "worker refused a run");
                    refused.fetch_add(1, Ordering::Relaxed);
                    if let Err(e) = delivery.reject().await {
                        tracing::warn!(error = %e, "cannot reject a run");
                    }
                }
            }
        }
    }
}

impl WorkerBuilder {
    /// The worker's name, sent with each outcome and used in logs (default `worker-<pid>`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.settings.name = name.into();
        self
    }

    /// How many runs this worker runs at once (default 4).
    pub fn concurrency(mut self, runs: usize) -> Self {
        self.settings.concurrency = runs;
        self
    }

    /// How many runs it takes ahead of a free run slot (default 0: a run waiting in the
    /// broker stays free for any idle worker).
    pub fn prefetch(mut self, runs: usize) -> Self {
        self.settings.prefetch = runs;
        self
    }

    /// Refuses runs not signed with `key` (HMAC-SHA256) and signs outcomes with it; the
    /// executor must be given the same key.
    pub fn signing_key(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.settings.key = Some(SigningKey::new(key));
        self
    }

    /// Checks the settings.
    pub fn build(self) -> Result<Worker> {
        check_namespace(&self.settings.namespace)?;
        if self.settings.concurrency == 0 {
            return Err(Error::config("concurrency must be at least 1"));
        }
        Ok(Worker {
            settings: self.settings,
            refused: Arc::default(),
        })
    }
}

struct RunTask {
    settings: WorkerSettings,
    broker: Arc<dyn Broker>,
    slots: Arc<Semaphore>,
}

impl RunTask {
    /// Checks that the run is genuine, meant for this namespace, and readable here.
    fn prepare(&self, delivery: &dyn Delivery) -> std::result::Result<RunEnvelope, String> {
        let run: RunEnvelope = wire::decode(delivery.frame(), self.settings.key.as_ref())
            .map_err(|e| e.to_string())?;
        if run.namespace != self.settings.namespace {
            return Err(format!("run of namespace {:?}", run.namespace));
        }
        Ok(run)
    }

    /// Runs `run` while telling the broker it is in progress, publishes its outcome, then
    /// acknowledges it.
    async fn run(&self, delivery: Box<dyn Delivery>, mut run: RunEnvelope) {
        run.request.attempt = delivery.attempt();
        let every = Duration::try_from_secs_f64(run.progress_every)
            .unwrap_or(Duration::from_secs(1))
            .max(Duration::from_millis(100));
        let work = async {
            let _slot = self.slots.acquire().await;
            self.execute(&run).await
        };
        let mut work = std::pin::pin!(work);
        let mut ticks = tokio::time::interval(every);
        ticks.tick().await;
        let outcome = loop {
            tokio::select! {
                outcome = &mut work => break outcome,
                _ = ticks.tick() => {
                    if let Err(e) = delivery.extend().await {
                        tracing::warn!(error = %e, job = %run.request.job_id, "cannot report progress");
                    }
                }
            }
        };
        let request = &run.request;
        let envelope = OutcomeEnvelope {
            namespace: run.namespace.clone(),
            job_id: request.job_id.clone(),
            jobstore: request.jobstore.clone(),
            scheduled_run_time: request.scheduled_run_time,
            worker: self.settings.name.clone(),
            attempt: request.attempt,
            report: RunReport {
                version: WIRE_VERSION,
                run_id: request.run_id.clone(),
                node: local_node().to_owned(),
                outcome,
            },
        };
        let frame = match wire::encode(&envelope, self.settings.key.as_ref()) {
            Ok(frame) => frame,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode an outcome");
                return;
            }
        };
        // The outcome must reach the broker before the run is acknowledged; until it does,
        // the run stays ours (progress reports keep it from being redelivered).
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.broker.publish(Queue::Outcomes, frame.clone()).await {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(error = %e, job = %request.job_id, "cannot publish an outcome; retrying");
                    let _ = delivery.extend().await;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(every);
                }
            }
        }
        for _ in 0..10 {
            match delivery.ack(true).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(error = %e, job = %request.job_id, "cannot acknowledge a run; retrying");
                    tokio::time::sleep(backoff).await;
                }
            }
        }
    }

    async fn execute(&self, run: &RunEnvelope) -> RunOutcome {
        let request = &run.request;
        if let Err(e) = check_version(request.version) {
            return RunOutcome::Refused {
                reason: e.to_string(),
            };
        }
        if request.attempt > run.max_attempts {
            return RunOutcome::Refused {
                reason: format!(
                    "gave up after {} deliveries (the workers that took it died or lost the \
                     broker)",
                    run.max_attempts
                ),
            };
        }
        let handler = match self.settings.registry.get(&request.function) {
            Ok(function) => function.handler().clone(),
            Err(e) => {
                return RunOutcome::Refused {
                    reason: format!("{e} (on worker {})", self.settings.name),
                };
            }
        };
        // The misfire grace time is checked when the run starts here, so a backlog in the
        // broker turns late runs into misses as a busy local pool does.
        let now = SystemClock.now();
        if request.is_missed(now) {
            return RunOutcome::Missed {
                reason: format!(
                    "started {} late on worker {}",
                    now - request.scheduled_run_time,
                    self.settings.name
                ),
            };
        }
        let context = Arc::new(RunContext::from_request(request, local_node()));
        call(&handler, context, request.args.to_string(), request.timeout).await
    }
}

async fn call(
    handler: &Handler,
    context: Arc<RunContext>,
    args: String,
    timeout: Option<Duration>,
) -> RunOutcome {
    let joined = match handler {
        Handler::Async(f) => {
            let fut = context.scope(|| f(&args));
            // A task of its own, so a panic comes back as a join error; the run's context is
            // set around every poll, as local executors do.
            let task = tokio::spawn(async move {
                let mut fut = fut;
                std::future::poll_fn(|cx| context.scope(|| fut.as_mut().poll(cx))).await
            });
            let abort = task.abort_handle();
            match limit(timeout, task).await {
                Some(joined) => joined,
                None => {
                    abort.abort();
                    return timed_out(timeout);
                }
            }
        }
        Handler::Sync(f) => {
            let f = f.clone();
            // A blocking function cannot be stopped: past its timeout it is reported and
            // its thread is left to finish on its own.
            let task = tokio::task::spawn_blocking(move || context.scope(|| f(&args)));
            match limit(timeout, task).await {
                Some(joined) => joined,
                None => return timed_out(timeout),
            }
        }
    };
    RunOutcome::from_result(match joined {
        Ok(result) => result.map_err(JobFailure::from_error),
        Err(join) if join.is_panic() => Err(JobFailure::from_panic(&*join.into_panic())),
        Err(join) => Err(JobFailure::from_error(Box::new(join))),
    })
}

fn timed_out(timeout: Option<Duration>) -> RunOutcome {
    RunOutcome::TimedOut {
        after: timeout.unwrap_or_default(),
    }
}

async fn limit<F: Future>(timeout: Option<Duration>, fut: F) -> Option<F::Output> {
    match timeout {
        Some(timeout) => tokio::time::timeout(timeout, fut).await.ok(),
        None => Some(fut.await),
    }
}

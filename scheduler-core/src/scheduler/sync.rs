//! Sync wrappers: [`SyncScheduler`], the blocking API both share, and the two ways to run a
//! scheduler without async code: [`BackgroundScheduler`] (`start` returns at once; the
//! scheduler runs on its own threads) and [`BlockingScheduler`] (`start` runs it on the
//! calling thread until it is shut down).

use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::sync::Arc;

use super::signal::{SignalWatch, StopWaiting};
use super::{Components, Health, Scheduler, SchedulerBuilder, SchedulerConfig, SchedulerState};
use crate::clock::Clock;
use crate::error::{Error, ErrorKind, Result};
use crate::event::{Delivery, Event, EventMask, ListenerId};
use crate::executor::Executor;
use crate::job::{Job, JobChanges, JobSpec};
use crate::store::JobStore;
use crate::trigger::Trigger;

/// The scheduler's API for plain sync code: each call runs the async method on the
/// scheduler's runtime and waits for it. Both [`BackgroundScheduler`] and
/// [`BlockingScheduler`] dereference to one, and hand out clones with `handle()`.
///
/// Usable from any thread: `main`, listener callbacks, jobs on a thread pool or in tokio's
/// blocking pool. Not from an async job on the scheduler's own runtime: a blocking call there
/// holds a thread the call itself needs, so it fails at once with
/// [`SchedulerState`](ErrorKind::SchedulerState) (as tokio's `block_on` refuses to run inside
/// a runtime); await the [`scheduler`](Self::scheduler)'s async methods there instead.
/// Cloning is cheap.
#[derive(Clone)]
pub struct SyncScheduler {
    scheduler: Scheduler,
    runtime: tokio::runtime::Handle,
}

impl fmt::Debug for SyncScheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncScheduler")
            .field("scheduler", &self.scheduler)
            .finish()
    }
}

fn owned(id: &str, jobstore: Option<&str>) -> (String, Option<String>) {
    (id.to_owned(), jobstore.map(str::to_owned))
}

impl SyncScheduler {
    /// Wraps `scheduler`, running its methods on `runtime`.
    pub fn new(scheduler: Scheduler, runtime: tokio::runtime::Handle) -> Self {
        SyncScheduler { scheduler, runtime }
    }

    /// The async scheduler, for code that has a runtime (an async job, for one).
    pub fn scheduler(&self) -> &Scheduler {
        &self.scheduler
    }

    /// The scheduler's clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        self.scheduler.clock()
    }

    /// Runs the future `call` makes on the runtime and waits for its output on this thread.
    fn call<T, F>(&self, call: impl FnOnce(Scheduler) -> F) -> Result<T>
    where
        T: Send + 'static,
        F: Future<Output = Result<T>> + Send + 'static,
    {
        self.refuse_in_async_job()?;
        let fut = call(self.scheduler.clone());
        // Spawning and waiting on a channel (rather than `Handle::block_on`) works from every
        // kind of thread, including tokio's blocking pool.
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.runtime.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv().unwrap_or_else(|_| {
            Err(Error::scheduler_state(
                "the scheduler's runtime shut down before the call finished",
            ))
        })
    }

    /// Refuses to block an async job polled on the scheduler's runtime.
    fn refuse_in_async_job(&self) -> Result<()> {
        if crate::executor::inside_async_job_on(self.runtime.id()) {
            return Err(Error::scheduler_state(
                "the blocking scheduler API was called from an async job on the scheduler's own \
                 runtime, where it would wait for a thread it is holding; await the async API \
                 there (SyncScheduler::scheduler())",
            ));
        }
        Ok(())
    }

    /// See [`Scheduler::shutdown`]. With `wait`, fails at once when called from one of this
    /// scheduler's jobs or listeners, which it would wait for.
    pub fn shutdown(&self, wait: bool) -> Result<()> {
        if wait {
            // Checked here, on the caller's thread: the job or listener marks are on it.
            self.scheduler.refuse_to_wait_for_itself()?;
        }
        self.call(move |s| async move { s.shutdown(wait).await })
    }

    /// Waits on the calling thread for SIGINT (Ctrl-C) or SIGTERM, then shuts the scheduler
    /// down gracefully: `shutdown(true)`, so running jobs finish and listeners see every
    /// event. A second signal exits the process at once, with 130 (SIGINT) or 143 (SIGTERM).
    ///
    /// Returns without shutting down when the scheduler is shut down another way first (or
    /// was not running). The one line a program with a [`BackgroundScheduler`] ends `main`
    /// with to stop as a [`BlockingScheduler`] does. Unix only; elsewhere it returns at once.
    pub fn shutdown_on_signal(&self) -> Result<()> {
        self.refuse_in_async_job()?;
        let mut watch = SignalWatch::install()?;
        let stopper = watch.stopper();
        let scheduler = self.scheduler.clone();
        let stop_when_stopped = self.runtime.spawn(async move {
            scheduler.stopped().await;
            stopper.stop();
        });
        let signal = watch.wait();
        stop_when_stopped.abort();
        let Some(signal) = signal else {
            return Ok(());
        };
        tracing::info!(
            signal,
            "shutting down gracefully; send the signal again to exit at once"
        );
        match self.shutdown(true) {
            Err(e) if e.kind() == ErrorKind::SchedulerState && !self.running() => Ok(()),
            other => other,
        }
    }

    /// See [`Scheduler::pause`].
    pub fn pause(&self) -> Result<()> {
        self.scheduler.pause()
    }

    /// See [`Scheduler::resume`].
    pub fn resume(&self) -> Result<()> {
        self.scheduler.resume()
    }

    /// See [`Scheduler::state`].
    pub fn state(&self) -> SchedulerState {
        self.scheduler.state()
    }

    /// See [`Scheduler::running`].
    pub fn running(&self) -> bool {
        self.scheduler.running()
    }

    /// See [`Scheduler::health`].
    pub fn health(&self) -> Health {
        self.scheduler.health()
    }

    /// See [`Scheduler::wakeup`].
    pub fn wakeup(&self) {
        self.scheduler.wakeup()
    }

    /// See [`Scheduler::configure`].
    pub fn configure(&self, config: &SchedulerConfig, components: &Components) -> Result<()> {
        let (config, components) = (config.clone(), components.clone());
        self.call(move |s| async move { s.configure(&config, &components).await })
    }

    /// See [`Scheduler::add_listener`].
    pub fn add_listener<F>(&self, listener: F, mask: EventMask) -> ListenerId
    where
        F: Fn(&Event) + Send + 'static,
    {
        self.scheduler.add_listener(listener, mask)
    }

    /// See [`Scheduler::add_listener_with`].
    pub fn add_listener_with<F>(
        &self,
        listener: F,
        mask: EventMask,
        delivery: Delivery,
    ) -> ListenerId
    where
        F: Fn(&Event) + Send + 'static,
    {
        self.scheduler.add_listener_with(listener, mask, delivery)
    }

    /// See [`Scheduler::remove_listener`].
    pub fn remove_listener(&self, id: ListenerId) -> bool {
        self.scheduler.remove_listener(id)
    }

    /// See [`Scheduler::add_jobstore`].
    pub fn add_jobstore(&self, alias: &str, store: impl JobStore) -> Result<()> {
        let alias = alias.to_owned();
        self.call(move |s| async move { s.add_jobstore(&alias, store).await })
    }

    /// See [`Scheduler::remove_jobstore`].
    pub fn remove_jobstore(&self, alias: &str, shutdown: bool) -> Result<()> {
        let alias = alias.to_owned();
        self.call(move |s| async move { s.remove_jobstore(&alias, shutdown).await })
    }

    /// See [`Scheduler::add_executor`].
    pub fn add_executor(&self, alias: &str, executor: impl Executor) -> Result<()> {
        let alias = alias.to_owned();
        self.call(move |s| async move { s.add_executor(&alias, executor).await })
    }

    /// See [`Scheduler::remove_executor`].
    pub fn remove_executor(&self, alias: &str, shutdown: bool) -> Result<()> {
        let alias = alias.to_owned();
        self.call(move |s| async move { s.remove_executor(&alias, shutdown).await })
    }

    /// See [`Scheduler::add_job`].
    pub fn add_job(&self, spec: JobSpec) -> Result<Job> {
        self.call(move |s| async move { s.add_job(spec).await })
    }

    /// See [`Scheduler::add_jobs`].
    pub fn add_jobs(&self, specs: Vec<JobSpec>) -> Result<Vec<Result<Job>>> {
        self.call(move |s| async move { s.add_jobs(specs).await })
    }

    /// See [`Scheduler::modify_job`].
    pub fn modify_job(&self, id: &str, jobstore: Option<&str>, changes: JobChanges) -> Result<Job> {
        let (id, store) = owned(id, jobstore);
        self.call(move |s| async move { s.modify_job(&id, store.as_deref(), changes).await })
    }

    /// See [`Scheduler::reschedule_job`].
    pub fn reschedule_job(
        &self,
        id: &str,
        jobstore: Option<&str>,
        trigger: impl Trigger,
    ) -> Result<Job> {
        let (id, store) = owned(id, jobstore);
        self.call(move |s| async move { s.reschedule_job(&id, store.as_deref(), trigger).await })
    }

    /// See [`Scheduler::pause_job`].
    pub fn pause_job(&self, id: &str, jobstore: Option<&str>) -> Result<Job> {
        let (id, store) = owned(id, jobstore);
        self.call(move |s| async move { s.pause_job(&id, store.as_deref()).await })
    }

    /// See [`Scheduler::resume_job`].
    pub fn resume_job(&self, id: &str, jobstore: Option<&str>) -> Result<Option<Job>> {
        let (id, store) = owned(id, jobstore);
        self.call(move |s| async move { s.resume_job(&id, store.as_deref()).await })
    }

    /// See [`Scheduler::run_job_now`].
    pub fn run_job_now(&self, id: &str, jobstore: Option<&str>) -> Result<Job> {
        let (id, store) = owned(id, jobstore);
        self.call(move |s| async move { s.run_job_now(&id, store.as_deref()).await })
    }

    /// See [`Scheduler::remove_job`].
    pub fn remove_job(&self, id: &str, jobstore: Option<&str>) -> Result<()> {
        let (id, store) = owned(id, jobstore);
        self.call(move |s| async move { s.remove_job(&id, store.as_deref()).await })
    }

    /// See [`Scheduler::remove_all_jobs`].
    pub fn remove_all_jobs(&self, jobstore: Option<&str>) -> Result<()> {
        let store = jobstore.map(str::to_owned);
        self.call(move |s| async move { s.remove_all_jobs(store.as_deref()).await })
    }

    /// See [`Scheduler::get_job`].
    pub fn get_job(&self, id: &str, jobstore: Option<&str>) -> Result<Option<Job>> {
        let (id, store) = owned(id, jobstore);
        self.call(move |s| async move { s.get_job(&id, store.as_deref()).await })
    }

    /// See [`Scheduler::get_jobs`].
    pub fn get_jobs(&self, jobstore: Option<&str>) -> Result<Vec<Job>> {
        let store = jobstore.map(str::to_owned);
        self.call(move |s| async move { s.get_jobs(store.as_deref()).await })
    }

    /// See [`Scheduler::jobs_table`].
    pub fn jobs_table(&self, jobstore: Option<&str>) -> Result<String> {
        let store = jobstore.map(str::to_owned);
        self.call(move |s| async move { s.jobs_table(store.as_deref()).await })
    }

    /// See [`Scheduler::print_jobs`].
    pub fn print_jobs(&self, jobstore: Option<&str>) -> Result<()> {
        let table = self.jobs_table(jobstore)?;
        print!("{table}");
        Ok(())
    }
}

fn build_runtime(name: &str) -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(name)
        .enable_time()
        .enable_io()
        .build()
        .map_err(|e| Error::scheduler_state("cannot start the scheduler's runtime").with_source(e))
}

/// A scheduler running on its own threads, for programs without an async runtime
/// (APScheduler's `BackgroundScheduler`): [`start`](Self::start) returns at once.
///
/// Dereferences to [`SyncScheduler`] for the rest of the API. It installs no signal handler;
/// end `main` with [`shutdown_on_signal`](SyncScheduler::shutdown_on_signal) for Ctrl-C and
/// SIGTERM to shut it down gracefully. Dropping it shuts the scheduler down without waiting
/// for running jobs, like APScheduler's daemon thread at exit.
pub struct BackgroundScheduler {
    sync: SyncScheduler,
    runtime: Option<tokio::runtime::Runtime>,
}

impl BackgroundScheduler {
    /// Builds the scheduler (see [`SchedulerBuilder::build`]) and the runtime it runs on.
    pub fn new(builder: SchedulerBuilder) -> Result<Self> {
        let scheduler = builder.build()?;
        let runtime = build_runtime("scheduler")?;
        Ok(BackgroundScheduler {
            sync: SyncScheduler::new(scheduler, runtime.handle().clone()),
            runtime: Some(runtime),
        })
    }

    /// Starts the scheduler on its threads and returns (see [`Scheduler::start`]).
    pub fn start(&self) -> Result<()> {
        self.sync.call(|s| async move { s.start().await })
    }

    /// Starts the scheduler with job processing paused, and returns.
    pub fn start_paused(&self) -> Result<()> {
        self.sync.call(|s| async move { s.start_paused().await })
    }

    /// A handle for other threads (listeners, jobs); it stays valid while `self` lives.
    pub fn handle(&self) -> SyncScheduler {
        self.sync.clone()
    }
}

impl Deref for BackgroundScheduler {
    type Target = SyncScheduler;

    fn deref(&self) -> &SyncScheduler {
        &self.sync
    }
}

impl fmt::Debug for BackgroundScheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackgroundScheduler")
            .field("scheduler", &self.sync.scheduler)
            .finish()
    }
}

impl Drop for BackgroundScheduler {
    fn drop(&mut self) {
        if self.sync.running()
            && let Err(e) = self.sync.shutdown(false)
        {
            crate::logging::log_warn!(error = %e, "background scheduler failed to shut down");
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// A scheduler that runs on the calling thread (APScheduler's `BlockingScheduler`):
/// [`start`](Self::start) returns only once the scheduler has been shut down and the
/// shutdown is complete. Jobs run on the executors' threads and tasks.
///
/// Shut it down from a job, a listener or another thread through [`handle`](Self::handle)
/// (it dereferences to the same [`SyncScheduler`], to add jobs before `start`). While it runs,
/// SIGINT (Ctrl-C) and SIGTERM shut it down gracefully, as APScheduler's does on
/// `KeyboardInterrupt`; a second signal exits at once (130 or 143). Turn that off with
/// [`handle_signals(false)`](Self::handle_signals).
///
/// ```no_run
/// # fn main() -> scheduler_core::Result<()> {
/// use scheduler_core::{BlockingScheduler, Scheduler};
///
/// let scheduler = BlockingScheduler::new(
///     Scheduler::builder()
///         .jobstore("default", jobstore_memory::MemoryJobStore::new())
///         .executor("default", executors::ThreadPoolExecutor::new(10)?),
/// )?;
/// // scheduler.add_job(...)?;
/// scheduler.start()?; // until Ctrl-C, SIGTERM or a shutdown; running jobs finish first
/// # Ok(()) }
/// ```
pub struct BlockingScheduler {
    sync: SyncScheduler,
    runtime: Option<tokio::runtime::Runtime>,
    handle_signals: bool,
}

impl BlockingScheduler {
    /// Builds the scheduler (see [`SchedulerBuilder::build`]) and its runtime.
    pub fn new(builder: SchedulerBuilder) -> Result<Self> {
        let scheduler = builder.build()?;
        let runtime = build_runtime("scheduler-worker")?;
        Ok(BlockingScheduler {
            sync: SyncScheduler::new(scheduler, runtime.handle().clone()),
            runtime: Some(runtime),
            handle_signals: true,
        })
    }

    /// Whether [`start`](Self::start) handles SIGINT and SIGTERM (default: yes, on Unix).
    pub fn handle_signals(mut self, handle: bool) -> Self {
        self.handle_signals = handle;
        self
    }

    /// A handle for other threads, listeners and jobs (to add jobs or shut down).
    pub fn handle(&self) -> SyncScheduler {
        self.sync.clone()
    }

    /// Starts the scheduler and runs it on this thread until it is shut down; returns once
    /// the shutdown is complete (jobs finished when it waited, stores shut down, listeners
    /// served).
    ///
    /// Fails at once inside an async runtime (it would block it), like any start that fails;
    /// if the loop fails (see [`SchedulerState::Failed`]), it shuts down, waiting for running
    /// jobs, and returns the failure.
    pub fn start(&self) -> Result<()> {
        self.run(false)
    }

    /// Like [`start`](Self::start), with job processing paused until
    /// [`resume`](SyncScheduler::resume) is called (from a job, a listener or a thread).
    pub fn start_paused(&self) -> Result<()> {
        self.run(true)
    }

    fn run(&self, paused: bool) -> Result<()> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::scheduler_state(
                "BlockingScheduler::start blocks its thread and cannot run inside an async \
                 runtime; use Scheduler there",
            ));
        }
        let Some(runtime) = &self.runtime else {
            return Err(Error::scheduler_state("the scheduler's runtime is gone"));
        };
        let signals = if self.handle_signals {
            Some(self.shut_down_on_signal()?)
        } else {
            None
        };
        let scheduler = self.sync.scheduler.clone();
        let outcome = runtime.block_on(async move {
            let (_, guard) = scheduler.start_without_loop(paused).await?;
            // The loop runs here, on the calling thread, until shutdown.
            scheduler.clone().run_loop(guard).await;
            if scheduler.state() == SchedulerState::Failed {
                let failure = scheduler
                    .health()
                    .failure
                    .map_or_else(String::new, |e| e.to_string());
                if let Err(e) = scheduler.shutdown(true).await {
                    crate::logging::log_error!(error = %e, "cannot shut down the failed scheduler");
                }
                return Err(Error::scheduler_state(format!(
                    "the scheduler's loop failed: {failure}"
                )));
            }
            // The shutdown that ended the loop goes on elsewhere; return once it is complete.
            scheduler.stopped().await;
            Ok(())
        });
        if let Some((stopper, thread)) = signals {
            stopper.stop();
            let _ = thread.join();
        }
        outcome
    }

    /// A thread that waits for the first signal and shuts the scheduler down gracefully.
    fn shut_down_on_signal(&self) -> Result<(StopWaiting, std::thread::JoinHandle<()>)> {
        let mut watch = SignalWatch::install()?;
        let stopper = watch.stopper();
        let sync = self.sync.clone();
        let thread = std::thread::Builder::new()
            .name("scheduler-signals".into())
            .spawn(move || {
                if let Some(signal) = watch.wait() {
                    tracing::info!(
                        signal,
                        "shutting down gracefully; send the signal again to exit at once"
                    );
                    if let Err(e) = sync.shutdown(true) {
                        crate::logging::log_warn!(error = %e, "the graceful shutdown on a signal failed");
                    }
                }
            })
            .map_err(|e| {
                Error::scheduler_state("cannot start the signal-handling thread").with_source(e)
            })?;
        Ok((stopper, thread))
    }
}

impl Deref for BlockingScheduler {
    type Target = SyncScheduler;

    fn deref(&self) -> &SyncScheduler {
        &self.sync
    }
}

impl Drop for BlockingScheduler {
    fn drop(&mut self) {
        // Without waiting: dropping a runtime that waits would panic inside async code.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl fmt::Debug for BlockingScheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingScheduler")
            .field("scheduler", &self.sync.scheduler)
            .field("handle_signals", &self.handle_signals)
            .finish()
    }
}

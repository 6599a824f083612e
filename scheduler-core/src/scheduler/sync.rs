//! Sync wrappers: [`BackgroundScheduler`] (own thread) and [`BlockingScheduler`] (calling
//! thread), both thin shells over the async [`Scheduler`] and a runtime they own.

use std::fmt;
use std::future::Future;
use std::ops::Deref;

use super::{Components, Scheduler, SchedulerBuilder, SchedulerConfig, SchedulerState};
use crate::error::{Error, Result};
use crate::event::{Event, EventMask, ListenerId};
use crate::executor::Executor;
use crate::job::{Job, JobChanges, JobSpec};
use crate::store::JobStore;
use crate::trigger::Trigger;

/// The scheduler's API for plain sync code: each call runs the async method on the
/// scheduler's runtime and waits for it.
///
/// Usable from any thread: `main`, listener callbacks, jobs on a thread pool or in tokio's
/// blocking pool. Cloning is cheap.
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

impl SyncScheduler {
    /// Wraps `scheduler`, running its methods on `runtime`.
    pub fn new(scheduler: Scheduler, runtime: tokio::runtime::Handle) -> Self {
        SyncScheduler { scheduler, runtime }
    }

    /// The async scheduler, for code that has a runtime.
    pub fn scheduler(&self) -> &Scheduler {
        &self.scheduler
    }

    /// Runs `fut` on the runtime and waits for its output on this thread.
    fn run<T, F>(&self, fut: F) -> Result<T>
    where
        T: Send + 'static,
        F: Future<Output = Result<T>> + Send + 'static,
    {
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

    /// See [`Scheduler::start`].
    pub fn start(&self) -> Result<()> {
        let s = self.scheduler.clone();
        self.run(async move { s.start().await })
    }

    /// See [`Scheduler::start_paused`].
    pub fn start_paused(&self) -> Result<()> {
        let s = self.scheduler.clone();
        self.run(async move { s.start_paused().await })
    }

    /// See [`Scheduler::shutdown`].
    pub fn shutdown(&self, wait: bool) -> Result<()> {
        let s = self.scheduler.clone();
        self.run(async move { s.shutdown(wait).await })
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

    /// See [`Scheduler::wakeup`].
    pub fn wakeup(&self) {
        self.scheduler.wakeup()
    }

    /// See [`Scheduler::configure`].
    pub fn configure(&self, config: &SchedulerConfig, components: &Components) -> Result<()> {
        let (s, config, components) = (self.scheduler.clone(), config.clone(), components.clone());
        self.run(async move { s.configure(&config, &components).await })
    }

    /// See [`Scheduler::add_listener`].
    pub fn add_listener<F>(&self, listener: F, mask: EventMask) -> ListenerId
    where
        F: Fn(&Event) + Send + 'static,
    {
        self.scheduler.add_listener(listener, mask)
    }

    /// See [`Scheduler::remove_listener`].
    pub fn remove_listener(&self, id: ListenerId) -> bool {
        self.scheduler.remove_listener(id)
    }

    /// See [`Scheduler::add_jobstore`].
    pub fn add_jobstore(&self, alias: &str, store: impl JobStore) -> Result<()> {
        let (s, alias) = (self.scheduler.clone(), alias.to_owned());
        self.run(async move { s.add_jobstore(&alias, store).await })
    }

    /// See [`Scheduler::remove_jobstore`].
    pub fn remove_jobstore(&self, alias: &str, shutdown: bool) -> Result<()> {
        let (s, alias) = (self.scheduler.clone(), alias.to_owned());
        self.run(async move { s.remove_jobstore(&alias, shutdown).await })
    }

    /// See [`Scheduler::add_executor`].
    pub fn add_executor(&self, alias: &str, executor: impl Executor) -> Result<()> {
        let (s, alias) = (self.scheduler.clone(), alias.to_owned());
        self.run(async move { s.add_executor(&alias, executor).await })
    }

    /// See [`Scheduler::remove_executor`].
    pub fn remove_executor(&self, alias: &str, shutdown: bool) -> Result<()> {
        let (s, alias) = (self.scheduler.clone(), alias.to_owned());
        self.run(async move { s.remove_executor(&alias, shutdown).await })
    }

    /// See [`Scheduler::add_job`].
    pub fn add_job(&self, spec: JobSpec) -> Result<Job> {
        let s = self.scheduler.clone();
        self.run(async move { s.add_job(spec).await })
    }

    /// See [`Scheduler::modify_job`].
    pub fn modify_job(&self, id: &str, jobstore: Option<&str>, changes: JobChanges) -> Result<Job> {
        let (s, id, store) = self.owned(id, jobstore);
        self.run(async move { s.modify_job(&id, store.as_deref(), changes).await })
    }

    /// See [`Scheduler::reschedule_job`].
    pub fn reschedule_job(
        &self,
        id: &str,
        jobstore: Option<&str>,
        trigger: impl Trigger,
    ) -> Result<Job> {
        let (s, id, store) = self.owned(id, jobstore);
        self.run(async move { s.reschedule_job(&id, store.as_deref(), trigger).await })
    }

    /// See [`Scheduler::pause_job`].
    pub fn pause_job(&self, id: &str, jobstore: Option<&str>) -> Result<Job> {
        let (s, id, store) = self.owned(id, jobstore);
        self.run(async move { s.pause_job(&id, store.as_deref()).await })
    }

    /// See [`Scheduler::resume_job`].
    pub fn resume_job(&self, id: &str, jobstore: Option<&str>) -> Result<Option<Job>> {
        let (s, id, store) = self.owned(id, jobstore);
        self.run(async move { s.resume_job(&id, store.as_deref()).await })
    }

    /// See [`Scheduler::remove_job`].
    pub fn remove_job(&self, id: &str, jobstore: Option<&str>) -> Result<()> {
        let (s, id, store) = self.owned(id, jobstore);
        self.run(async move { s.remove_job(&id, store.as_deref()).await })
    }

    /// See [`Scheduler::remove_all_jobs`].
    pub fn remove_all_jobs(&self, jobstore: Option<&str>) -> Result<()> {
        let (s, store) = (self.scheduler.clone(), jobstore.map(str::to_owned));
        self.run(async move { s.remove_all_jobs(store.as_deref()).await })
    }

    /// See [`Scheduler::get_job`].
    pub fn get_job(&self, id: &str, jobstore: Option<&str>) -> Result<Option<Job>> {
        let (s, id, store) = self.owned(id, jobstore);
        self.run(async move { s.get_job(&id, store.as_deref()).await })
    }

    /// See [`Scheduler::get_jobs`].
    pub fn get_jobs(&self, jobstore: Option<&str>) -> Result<Vec<Job>> {
        let (s, store) = (self.scheduler.clone(), jobstore.map(str::to_owned));
        self.run(async move { s.get_jobs(store.as_deref()).await })
    }

    /// See [`Scheduler::jobs_table`].
    pub fn jobs_table(&self, jobstore: Option<&str>) -> Result<String> {
        let (s, store) = (self.scheduler.clone(), jobstore.map(str::to_owned));
        self.run(async move { s.jobs_table(store.as_deref()).await })
    }

    /// See [`Scheduler::print_jobs`].
    pub fn print_jobs(&self, jobstore: Option<&str>) -> Result<()> {
        let table = self.jobs_table(jobstore)?;
        print!("{table}");
        Ok(())
    }

    fn owned(&self, id: &str, jobstore: Option<&str>) -> (Scheduler, String, Option<String>) {
        (
            self.scheduler.clone(),
            id.to_owned(),
            jobstore.map(str::to_owned),
        )
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
/// (APScheduler's `BackgroundScheduler`).
///
/// Dereferences to [`SyncScheduler`] for the whole API. Dropping it shuts the scheduler down
/// without waiting for running jobs, like APScheduler's daemon thread at exit.
pub struct BackgroundScheduler {
    sync: SyncScheduler,
    runtime: Option<tokio::runtime::Runtime>,
}

impl BackgroundScheduler {
    /// Builds the scheduler and the runtime it runs on; call [`start`](SyncScheduler::start).
    pub fn new(builder: SchedulerBuilder) -> Result<Self> {
        let runtime = build_runtime("scheduler")?;
        let scheduler = builder.build();
        Ok(BackgroundScheduler {
            sync: SyncScheduler::new(scheduler, runtime.handle().clone()),
            runtime: Some(runtime),
        })
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
        if self.sync.running() {
            if let Err(e) = self.sync.shutdown(false) {
                tracing::warn!(error = %e, "background scheduler failed to shut down");
            }
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// A scheduler whose [`start`](BlockingScheduler::start) runs the loop on the calling thread
/// until it is shut down (APScheduler's `BlockingScheduler`). Jobs run on the executors'
/// threads and tasks.
///
/// Shut it down from a job, a listener or another thread through [`handle`](Self::handle).
pub struct BlockingScheduler {
    sync: SyncScheduler,
    runtime: Option<tokio::runtime::Runtime>,
}

impl BlockingScheduler {
    /// Builds the scheduler and its runtime.
    pub fn new(builder: SchedulerBuilder) -> Result<Self> {
        let runtime = build_runtime("scheduler-worker")?;
        let scheduler = builder.build();
        Ok(BlockingScheduler {
            sync: SyncScheduler::new(scheduler, runtime.handle().clone()),
            runtime: Some(runtime),
        })
    }

    /// A handle for other threads, listeners and jobs (to add jobs or shut down).
    pub fn handle(&self) -> SyncScheduler {
        self.sync.clone()
    }

    /// Starts the scheduler and blocks until it is shut down.
    pub fn start(&self) -> Result<()> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::scheduler_state(
                "BlockingScheduler::start blocks its thread and cannot run inside an async \
                 runtime; use Scheduler there",
            ));
        }
        let (Some(runtime), scheduler) = (&self.runtime, self.sync.scheduler.clone()) else {
            return Err(Error::scheduler_state("the scheduler's runtime is gone"));
        };
        runtime.block_on(async move {
            scheduler.start_without_loop(false).await?;
            // The loop runs here, on the calling thread, until shutdown.
            scheduler.main_loop().await;
            Ok(())
        })
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
            .finish()
    }
}

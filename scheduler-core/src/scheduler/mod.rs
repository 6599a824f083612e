//! The scheduler: one async core with APScheduler's API, and thin sync wrappers around it.

mod config;
mod process;
mod sync;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono_tz::Tz;
use tokio::sync::{Notify, watch};

pub use config::{
    ComponentConfig, Components, ExecutorFactory, Factory, JobStoreFactory, SchedulerConfig,
    local_timezone, parse_options, parse_timezone,
};
pub use sync::{BackgroundScheduler, BlockingScheduler, SyncScheduler};

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, ErrorKind, Result};
use crate::event::{Event, EventBus, EventMask, EventStream, JobEvent, ListenerId};
use crate::executor::{DynExecutor, Executor, ExecutorContext};
use crate::job::{Job, JobChanges, JobCodec, JobDefaults, JobRegistry, JobSpec};
use crate::store::{DynJobStore, JobStore, StoreContext};
use crate::trigger::{Trigger, TriggerRegistry};

/// Whether the scheduler is processing jobs (APScheduler's `STATE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchedulerState {
    /// Not started, or shut down. Jobs added now wait in the pending list.
    Stopped,
    /// Started and processing jobs.
    Running,
    /// Started, but not processing jobs until resumed.
    Paused,
}

/// How many fire times of one job one pass runs or walks at most (see
/// [`SchedulerBuilder::catch_up_limit`]).
pub const DEFAULT_CATCH_UP_LIMIT: usize = 10_000;

/// Schedules jobs: the async core, with APScheduler 3.x's API.
///
/// `Scheduler` is a cheap handle; clones share one scheduler. It runs its loop as a task on
/// the tokio runtime it is started on. For plain sync code, wrap it in a
/// [`BackgroundScheduler`] (own thread) or a [`BlockingScheduler`] (the calling thread).
///
/// ```
/// use scheduler_core::{Event, EventMask, JobRegistry, JobSpec, Scheduler};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> scheduler_core::Result<()> {
/// let registry = JobRegistry::new();
/// let greet = registry.register_async("greet", |name: String| async move {
///     println!("hello, {name}");
/// });
///
/// let scheduler = Scheduler::builder()
///     .registry(registry)
///     .jobstore("default", jobstore_memory::MemoryJobStore::new())
///     .executor("default", executors::TokioExecutor::new())
///     .build();
/// let mut events = scheduler.subscribe(EventMask::JOB_EXECUTED);
/// scheduler.start().await?;
///
/// let now = scheduler.clock().now();
/// scheduler
///     .add_job(JobSpec::new(greet.call("world".into()), triggers::DateTrigger::new(now)))
///     .await?;
/// assert!(matches!(events.recv().await, Some(Event::JobExecuted(_))));
/// scheduler.shutdown(true).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Scheduler {
    inner: Arc<Inner>,
}

/// A store and the alias the scheduler knows it by.
type AliasedStore = (Arc<str>, Arc<dyn DynJobStore>);

struct Inner {
    clock: Arc<dyn Clock>,
    codec: JobCodec,
    events: EventBus,
    settings: RwLock<Settings>,
    state: watch::Sender<SchedulerState>,
    /// Serialises start, shutdown and configure.
    lifecycle: tokio::sync::Mutex<()>,
    /// Held by a pass of the loop over one store and by read-modify-write job changes
    /// (APScheduler's `_jobstores_lock`), so a change is never overwritten by a pass that
    /// read the job before it, nor the other way round.
    jobs_lock: tokio::sync::Mutex<()>,
    stores: RwLock<Vec<AliasedStore>>,
    executors: RwLock<HashMap<Arc<str>, Arc<dyn DynExecutor>>>,
    pending: Mutex<Vec<JobSpec>>,
    wakeup: Notify,
    /// Whether the main loop is running; shutdown waits for it to turn false.
    loop_active: watch::Sender<bool>,
    /// True while `start` runs: calls that depend on whether the scheduler runs wait for it
    /// to finish, so a job or store added meanwhile is neither stranded in the pending list
    /// nor left unstarted.
    starting: watch::Sender<bool>,
    runtime: Mutex<Option<tokio::runtime::Handle>>,
}

#[derive(Debug, Clone)]
struct Settings {
    timezone: Tz,
    job_defaults: JobDefaults,
    jobstore_retry_interval: Duration,
    catch_up_limit: usize,
}

/// Builds a [`Scheduler`].
pub struct SchedulerBuilder {
    clock: Arc<dyn Clock>,
    settings: Settings,
    functions: JobRegistry,
    triggers: TriggerRegistry,
    stores: Vec<AliasedStore>,
    executors: HashMap<Arc<str>, Arc<dyn DynExecutor>>,
}

impl Default for SchedulerBuilder {
    fn default() -> Self {
        SchedulerBuilder {
            clock: Arc::new(SystemClock),
            settings: Settings {
                timezone: local_timezone(),
                job_defaults: JobDefaults::default(),
                jobstore_retry_interval: Duration::from_secs(10),
                catch_up_limit: DEFAULT_CATCH_UP_LIMIT,
            },
            functions: JobRegistry::new(),
            triggers: TriggerRegistry::new(),
            stores: Vec::new(),
            executors: HashMap::new(),
        }
    }
}

impl fmt::Debug for SchedulerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SchedulerBuilder")
            .field("clock", &self.clock)
            .field("settings", &self.settings)
            .field(
                "stores",
                &self.stores.iter().map(|(a, _)| a).collect::<Vec<_>>(),
            )
            .field("executors", &self.executors.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl SchedulerBuilder {
    /// The clock to read time from (default: the system clock).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The zone for displayed times (default: the machine's local zone).
    pub fn timezone(mut self, tz: Tz) -> Self {
        self.settings.timezone = tz;
        self
    }

    /// Defaults for the options jobs leave unset.
    pub fn job_defaults(mut self, defaults: JobDefaults) -> Self {
        self.settings.job_defaults = defaults;
        self
    }

    /// How long to wait before asking a failing store again (default 10 s).
    pub fn jobstore_retry_interval(mut self, interval: Duration) -> Self {
        self.settings.jobstore_retry_interval = interval;
        self
    }

    /// The most fire times walked for one job in one pass of the loop (default 10,000).
    ///
    /// After an outage or a clock jump a job may have millions of missed fire times;
    /// APScheduler enumerates them all (its issues #1066 and #125). Here the trigger skips
    /// them ([`Trigger::catch_up`], arithmetic for the built-in triggers), and a job that
    /// coalesces runs once, for the last. A job that does not coalesce runs each fire time
    /// within its misfire grace time, at most this many per pass (the rest in the next
    /// passes, so a pass stays short and other jobs keep running); when more than this many
    /// are already past the grace time they are reported as one [`Event::JobMissed`] with
    /// their count instead of one each. A trigger that cannot skip is walked at most this
    /// many fire times per pass, the job's position saved in between.
    pub fn catch_up_limit(mut self, limit: usize) -> Self {
        self.settings.catch_up_limit = limit.max(1);
        self
    }

    /// The job functions jobs may name.
    pub fn registry(mut self, functions: JobRegistry) -> Self {
        self.functions = functions;
        self
    }

    /// The trigger kinds persistent stores may restore.
    pub fn triggers(mut self, triggers: TriggerRegistry) -> Self {
        self.triggers = triggers;
        self
    }

    /// Adds a job store under `alias` (`"default"` is where jobs go unless told otherwise).
    pub fn jobstore(self, alias: impl Into<Arc<str>>, store: impl JobStore) -> Self {
        self.jobstore_dyn(alias, Arc::new(store))
    }

    /// Adds a job store that is already a trait object.
    pub fn jobstore_dyn(mut self, alias: impl Into<Arc<str>>, store: Arc<dyn DynJobStore>) -> Self {
        let alias = alias.into();
        self.stores.retain(|(a, _)| *a != alias);
        self.stores.push((alias, store));
        self
    }

    /// Adds an executor under `alias` (`"default"` runs jobs unless told otherwise).
    pub fn executor(self, alias: impl Into<Arc<str>>, executor: impl Executor) -> Self {
        self.executor_dyn(alias, Arc::new(executor))
    }

    /// Adds an executor that is already a trait object.
    pub fn executor_dyn(
        mut self,
        alias: impl Into<Arc<str>>,
        executor: Arc<dyn DynExecutor>,
    ) -> Self {
        self.executors.insert(alias.into(), executor);
        self
    }

    /// Applies a configuration document: time zone, job defaults, retry interval, and the
    /// stores and executors it lists, built with `components`.
    pub fn config(mut self, config: &SchedulerConfig, components: &Components) -> Result<Self> {
        if let Some(tz) = config.timezone()? {
            self.settings.timezone = tz;
        }
        self.settings.job_defaults = config.job_defaults;
        if let Some(interval) = config.jobstore_retry_interval()? {
            self.settings.jobstore_retry_interval = interval;
        }
        for (alias, entry) in &config.jobstores {
            let store = components.build_jobstore(alias, entry)?;
            self = self.jobstore_dyn(alias.as_str(), store);
        }
        for (alias, entry) in &config.executors {
            let executor = components.build_executor(alias, entry)?;
            self = self.executor_dyn(alias.as_str(), executor);
        }
        Ok(self)
    }

    /// The scheduler, stopped.
    pub fn build(self) -> Scheduler {
        let (state, _) = watch::channel(SchedulerState::Stopped);
        Scheduler {
            inner: Arc::new(Inner {
                clock: self.clock,
                codec: JobCodec::new(self.functions, self.triggers),
                events: EventBus::new(),
                settings: RwLock::new(self.settings),
                state,
                lifecycle: tokio::sync::Mutex::new(()),
                jobs_lock: tokio::sync::Mutex::new(()),
                stores: RwLock::new(self.stores),
                executors: RwLock::new(self.executors),
                pending: Mutex::new(Vec::new()),
                wakeup: Notify::new(),
                loop_active: watch::Sender::new(false),
                starting: watch::Sender::new(false),
                runtime: Mutex::new(None),
            }),
        }
    }
}

impl fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scheduler")
            .field("state", &self.state())
            .field("timezone", &self.timezone())
            .field("jobstores", &self.jobstore_aliases())
            .finish()
    }
}

impl Scheduler {
    /// A builder with APScheduler's defaults and no stores or executors.
    pub fn builder() -> SchedulerBuilder {
        SchedulerBuilder::default()
    }

    // ----- lifecycle -------------------------------------------------------------------

    /// Starts processing jobs. Must be called within a tokio runtime; the loop runs as a task
    /// on it.
    ///
    /// Starts the executors and stores, then adds the pending jobs (defaults filled, first run
    /// times computed now). Fails with [`SchedulerState`](ErrorKind::SchedulerState) if already
    /// started.
    pub async fn start(&self) -> Result<()> {
        self.start_with(false).await
    }

    /// Starts with job processing paused, as APScheduler's `start(paused=True)`.
    pub async fn start_paused(&self) -> Result<()> {
        self.start_with(true).await
    }

    async fn start_with(&self, paused: bool) -> Result<()> {
        let runtime = self.start_without_loop(paused).await?;
        let this = self.clone();
        runtime.spawn(async move { this.main_loop().await });
        Ok(())
    }

    /// Everything `start` does but running the loop, which the caller then drives (the
    /// blocking scheduler runs it on its own thread). Answers the runtime to run it on.
    pub(super) async fn start_without_loop(&self, paused: bool) -> Result<tokio::runtime::Handle> {
        let _lifecycle = self.inner.lifecycle.lock().await;
        if self.state() != SchedulerState::Stopped {
            return Err(Error::scheduler_state("the scheduler is already running"));
        }
        self.inner.starting.send_replace(true);
        let _started = Settled(&self.inner.starting);
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| Error::scheduler_state("start() must be called within a tokio runtime"))?;
        *lock(&self.inner.runtime) = Some(runtime.clone());

        let executors = self.executor_snapshot();
        let stores = self.store_snapshot();
        let mut started_executors = Vec::new();
        let mut started_stores = Vec::new();
        let outcome: Result<()> = async {
            for (alias, executor) in &executors {
                executor
                    .start(self.executor_context(alias, &runtime))
                    .await?;
                started_executors.push(executor.clone());
            }
            for (alias, store) in &stores {
                store.start(self.store_context(alias)).await?;
                started_stores.push(store.clone());
            }
            self.flush_pending().await
        }
        .await;
        if let Err(e) = outcome {
            // Leave nothing half-started: the caller can fix the cause and start again.
            for store in started_stores {
                if let Err(err) = store.shutdown().await {
                    tracing::warn!(error = %err, "job store failed to shut down after a failed start");
                }
            }
            for executor in started_executors {
                if let Err(err) = executor.shutdown(false).await {
                    tracing::warn!(error = %err, "executor failed to shut down after a failed start");
                }
            }
            return Err(e);
        }

        self.inner.state.send_replace(if paused {
            SchedulerState::Paused
        } else {
            SchedulerState::Running
        });
        self.inner.loop_active.send_replace(true);
        tracing::info!("scheduler started");
        self.inner.events.publish(Event::SchedulerStarted);
        if !paused {
            self.wakeup();
        }
        Ok(runtime)
    }

    /// Adds the jobs added before start. Checks every id first (against the stores and among
    /// the pending jobs) so a conflict adds nothing; a job that still fails to be added stays
    /// pending with the ones after it.
    async fn flush_pending(&self) -> Result<()> {
        let pending = std::mem::take(&mut *lock(&self.inner.pending));
        if let Err(e) = self.check_pending(&pending).await {
            *lock(&self.inner.pending) = pending;
            return Err(e);
        }
        let mut rest = pending.into_iter();
        while let Some(spec) = rest.next() {
            if let Err(e) = self.real_add_job(spec.clone()).await {
                let mut pending = lock(&self.inner.pending);
                *pending = std::iter::once(spec)
                    .chain(rest)
                    .chain(pending.drain(..))
                    .collect();
                return Err(e);
            }
        }
        Ok(())
    }

    async fn check_pending(&self, pending: &[JobSpec]) -> Result<()> {
        let mut seen = std::collections::HashSet::new();
        for spec in pending {
            let id = spec.id.as_deref().unwrap_or_default();
            let first = seen.insert((spec.jobstore.as_str(), id));
            if spec.replace_existing {
                continue;
            }
            if !first || self.store(&spec.jobstore)?.lookup_job(id).await?.is_some() {
                return Err(Error::conflicting_id(id));
            }
        }
        Ok(())
    }

    /// Stops processing, shuts down executors (waiting for running jobs when `wait`) and
    /// stores (a memory store forgets its jobs, as in APScheduler). Running jobs are never
    /// interrupted.
    ///
    /// Do not call with `wait` from inside a job: it would wait for itself.
    pub async fn shutdown(&self, wait: bool) -> Result<()> {
        let _lifecycle = self.inner.lifecycle.lock().await;
        if self.state() == SchedulerState::Stopped {
            return Err(Error::scheduler_state("the scheduler is not running"));
        }
        self.inner.state.send_replace(SchedulerState::Stopped);
        self.wakeup();
        // The loop finishes its current pass, so no job is submitted after this point.
        let mut active = self.inner.loop_active.subscribe();
        let _ = active.wait_for(|active| !active).await;
        for (alias, executor) in self.executor_snapshot() {
            if let Err(e) = executor.shutdown(wait).await {
                tracing::error!(executor = %alias, error = %e, "executor failed to shut down");
            }
        }
        for (alias, store) in self.store_snapshot() {
            if let Err(e) = store.shutdown().await {
                tracing::error!(jobstore = %alias, error = %e, "job store failed to shut down");
            }
        }
        tracing::info!("scheduler has been shut down");
        self.inner.events.publish(Event::SchedulerShutdown);
        Ok(())
    }

    /// Pauses job processing; jobs stay scheduled and runs in progress go on.
    pub fn pause(&self) -> Result<()> {
        let mut changed = false;
        let mut stopped = false;
        self.inner.state.send_if_modified(|state| match state {
            SchedulerState::Stopped => {
                stopped = true;
                false
            }
            SchedulerState::Running => {
                *state = SchedulerState::Paused;
                changed = true;
                true
            }
            SchedulerState::Paused => false,
        });
        if stopped {
            return Err(Error::scheduler_state("the scheduler is not running"));
        }
        if changed {
            tracing::info!("paused scheduler job processing");
            self.inner.events.publish(Event::SchedulerPaused);
        }
        Ok(())
    }

    /// Resumes job processing after [`pause`](Self::pause) or [`start_paused`](Self::start_paused).
    pub fn resume(&self) -> Result<()> {
        let mut changed = false;
        let mut stopped = false;
        self.inner.state.send_if_modified(|state| match state {
            SchedulerState::Stopped => {
                stopped = true;
                false
            }
            SchedulerState::Paused => {
                *state = SchedulerState::Running;
                changed = true;
                true
            }
            SchedulerState::Running => false,
        });
        if stopped {
            return Err(Error::scheduler_state("the scheduler is not running"));
        }
        if changed {
            tracing::info!("resumed scheduler job processing");
            self.inner.events.publish(Event::SchedulerResumed);
            self.wakeup();
        }
        Ok(())
    }

    /// Waits while `start` is in progress (never while `shutdown` is: a job calling in during
    /// `shutdown(wait)` must not wait for the shutdown that waits for it).
    async fn settled(&self) {
        let mut starting = self.inner.starting.subscribe();
        // The sender lives in `self`, so `wait_for` cannot fail while we hold it.
        let _ = starting.wait_for(|starting| !starting).await;
    }

    /// The current state.
    pub fn state(&self) -> SchedulerState {
        *self.inner.state.borrow()
    }

    /// Whether the scheduler is started (running or paused), APScheduler's `running`.
    pub fn running(&self) -> bool {
        self.state() != SchedulerState::Stopped
    }

    /// Completes when the scheduler is (or becomes) stopped.
    pub async fn stopped(&self) {
        let mut rx = self.inner.state.subscribe();
        // The sender lives in `self`, so `wait_for` cannot fail while we hold it.
        let _ = rx.wait_for(|s| *s == SchedulerState::Stopped).await;
    }

    /// Makes the loop look at the stores again now rather than at its planned wake-up.
    pub fn wakeup(&self) {
        self.inner.wakeup.notify_one();
    }

    /// Applies a configuration document to a stopped scheduler: time zone, job defaults and
    /// retry interval, and (as APScheduler's `configure()` does) replaces all stores and
    /// executors with the ones it lists.
    pub async fn configure(&self, config: &SchedulerConfig, components: &Components) -> Result<()> {
        let _lifecycle = self.inner.lifecycle.lock().await;
        if self.running() {
            return Err(Error::scheduler_state(
                "the scheduler cannot be configured while it is running",
            ));
        }
        let timezone = config.timezone()?;
        let retry = config.jobstore_retry_interval()?;
        let mut stores = Vec::new();
        for (alias, entry) in &config.jobstores {
            stores.push((
                Arc::<str>::from(alias.as_str()),
                components.build_jobstore(alias, entry)?,
            ));
        }
        let mut executors = Vec::new();
        for (alias, entry) in &config.executors {
            executors.push((
                Arc::<str>::from(alias.as_str()),
                components.build_executor(alias, entry)?,
            ));
        }
        {
            let mut settings = write(&self.inner.settings);
            if let Some(tz) = timezone {
                settings.timezone = tz;
            }
            settings.job_defaults = config.job_defaults;
            if let Some(retry) = retry {
                settings.jobstore_retry_interval = retry;
            }
        }
        *write(&self.inner.stores) = Vec::new();
        write(&self.inner.executors).clear();
        for (alias, executor) in executors {
            write(&self.inner.executors).insert(alias.clone(), executor);
            self.inner.events.publish(Event::ExecutorAdded { alias });
        }
        for (alias, store) in stores {
            write(&self.inner.stores).push((alias.clone(), store));
            self.inner.events.publish(Event::JobstoreAdded { alias });
        }
        Ok(())
    }

    /// The scheduler's zone, used to display times.
    pub fn timezone(&self) -> Tz {
        read(&self.inner.settings).timezone
    }

    /// The defaults for job options.
    pub fn job_defaults(&self) -> JobDefaults {
        read(&self.inner.settings).job_defaults
    }

    /// The scheduler's clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// The job functions jobs may name.
    pub fn registry(&self) -> &JobRegistry {
        self.inner.codec.functions()
    }

    // ----- events ----------------------------------------------------------------------

    /// Calls `listener` with every event in `mask`, on a thread of its own
    /// (APScheduler's `add_listener`).
    pub fn add_listener<F>(&self, listener: F, mask: EventMask) -> ListenerId
    where
        F: Fn(&Event) + Send + 'static,
    {
        self.inner.events.add_listener(listener, mask)
    }

    /// Removes a listener; answers whether it was registered.
    pub fn remove_listener(&self, id: ListenerId) -> bool {
        self.inner.events.remove_listener(id)
    }

    /// A stream of the events in `mask`, from now on.
    pub fn subscribe(&self, mask: EventMask) -> EventStream {
        self.inner.events.subscribe(mask)
    }

    /// The event bus, for publishing custom integrations.
    pub fn events(&self) -> &EventBus {
        &self.inner.events
    }

    // ----- stores and executors ----------------------------------------------------------

    /// Adds a job store under `alias`; starts it if the scheduler is running.
    pub async fn add_jobstore(&self, alias: &str, store: impl JobStore) -> Result<()> {
        self.add_jobstore_dyn(alias, Arc::new(store)).await
    }

    /// Adds a job store that is already a trait object.
    pub async fn add_jobstore_dyn(&self, alias: &str, store: Arc<dyn DynJobStore>) -> Result<()> {
        self.settled().await;
        if self.store_snapshot().iter().any(|(a, _)| &**a == alias) {
            return Err(Error::config(format!(
                "this scheduler already has a job store named {alias:?}"
            )));
        }
        if self.running() {
            store.start(self.store_context(alias)).await?;
        }
        {
            let mut stores = write(&self.inner.stores);
            if stores.iter().any(|(a, _)| &**a == alias) {
                return Err(Error::config(format!(
                    "this scheduler already has a job store named {alias:?}"
                )));
            }
            stores.push((alias.into(), store));
        }
        self.inner.events.publish(Event::JobstoreAdded {
            alias: alias.into(),
        });
        if self.running() {
            self.wakeup();
        }
        Ok(())
    }

    /// Removes the job store `alias`, shutting it down when `shutdown`.
    pub async fn remove_jobstore(&self, alias: &str, shutdown: bool) -> Result<()> {
        let store = {
            let mut stores = write(&self.inner.stores);
            let index = stores
                .iter()
                .position(|(a, _)| &**a == alias)
                .ok_or_else(|| Error::config(format!("no job store named {alias:?}")))?;
            stores.remove(index).1
        };
        if shutdown {
            store.shutdown().await?;
        }
        self.inner.events.publish(Event::JobstoreRemoved {
            alias: alias.into(),
        });
        Ok(())
    }

    /// Adds an executor under `alias`; starts it if the scheduler is running.
    pub async fn add_executor(&self, alias: &str, executor: impl Executor) -> Result<()> {
        self.add_executor_dyn(alias, Arc::new(executor)).await
    }

    /// Adds an executor that is already a trait object.
    pub async fn add_executor_dyn(
        &self,
        alias: &str,
        executor: Arc<dyn DynExecutor>,
    ) -> Result<()> {
        self.settled().await;
        if read(&self.inner.executors).contains_key(alias) {
            return Err(Error::config(format!(
                "this scheduler already has an executor named {alias:?}"
            )));
        }
        if self.running() {
            let runtime = lock(&self.inner.runtime).clone();
            if let Some(runtime) = runtime {
                executor
                    .start(self.executor_context(alias, &runtime))
                    .await?;
            }
        }
        {
            let mut executors = write(&self.inner.executors);
            if executors.contains_key(alias) {
                return Err(Error::config(format!(
                    "this scheduler already has an executor named {alias:?}"
                )));
            }
            executors.insert(alias.into(), executor);
        }
        self.inner.events.publish(Event::ExecutorAdded {
            alias: alias.into(),
        });
        Ok(())
    }

    /// Removes the executor `alias`, shutting it down (without waiting) when `shutdown`.
    pub async fn remove_executor(&self, alias: &str, shutdown: bool) -> Result<()> {
        let executor = write(&self.inner.executors)
            .remove(alias)
            .ok_or_else(|| Error::config(format!("no executor named {alias:?}")))?;
        if shutdown {
            executor.shutdown(false).await?;
        }
        self.inner.events.publish(Event::ExecutorRemoved {
            alias: alias.into(),
        });
        Ok(())
    }

    /// The store aliases, in the order they were added.
    pub fn jobstore_aliases(&self) -> Vec<String> {
        self.store_snapshot()
            .iter()
            .map(|(a, _)| a.to_string())
            .collect()
    }

    // ----- jobs --------------------------------------------------------------------------

    /// Adds a job. Before start it waits in the pending list; once started it goes to its
    /// store (defaults filled, first run time from the trigger unless given) and
    /// [`Event::JobAdded`] is published.
    ///
    /// Fails with [`ConflictingId`](ErrorKind::ConflictingId) when the id is taken and
    /// `replace_existing` is off, [`Config`](ErrorKind::Config) for an unknown store or (once
    /// started) executor alias, [`NotPersistable`](ErrorKind::NotPersistable) for a closure in a
    /// persistent store, and [`InvalidJob`](ErrorKind::InvalidJob) for out-of-range options.
    pub async fn add_job(&self, mut spec: JobSpec) -> Result<Job> {
        self.settled().await;
        spec.target.validate()?;
        if spec.id.is_none() {
            spec.id = Some(uuid::Uuid::new_v4().simple().to_string());
        }
        if self.running() {
            return self.real_add_job(spec).await;
        }
        // Checked now so a bad spec fails here, not at start.
        let defaults = self.job_defaults();
        let preview = spec
            .clone()
            .with_default_timezone(self.timezone())
            .into_job(&defaults, self.inner.clock.now())?;
        tracing::info!(
            job = preview.id(),
            "adding job tentatively; it will be scheduled when the scheduler starts"
        );
        lock(&self.inner.pending).push(spec);
        Ok(preview_pending(preview))
    }

    async fn real_add_job(&self, spec: JobSpec) -> Result<Job> {
        let store = self.store(&spec.jobstore)?;
        if !read(&self.inner.executors).contains_key(&*spec.executor) {
            return Err(Error::config(format!(
                "no executor named {:?}; add it with add_executor",
                spec.executor
            )));
        }
        let alias: Arc<str> = spec.jobstore.as_str().into();
        let replace = spec.replace_existing;
        let defaults = self.job_defaults();
        let job = spec
            .with_default_timezone(self.timezone())
            .into_job(&defaults, self.inner.clock.now())?;
        if job.target().is_persistable() || store.capabilities().closures {
            match store.add_job(job.clone()).await {
                Err(e) if e.kind() == ErrorKind::ConflictingId && replace => {
                    store.update_job(job.clone()).await?
                }
                other => other?,
            }
        } else {
            return Err(Error::not_persistable(job.id()));
        }
        tracing::info!(job = job.id(), jobstore = %alias, "added job");
        self.inner.events.publish(Event::JobAdded(JobEvent {
            job_id: job.id_arc().clone(),
            jobstore: alias,
        }));
        if self.state() == SchedulerState::Running {
            self.wakeup();
        }
        Ok(job)
    }

    /// Changes a job's options (APScheduler's `modify_job`), publishing
    /// [`Event::JobModified`]. `jobstore` limits the search to one store.
    pub async fn modify_job(
        &self,
        id: &str,
        jobstore: Option<&str>,
        changes: JobChanges,
    ) -> Result<Job> {
        self.settled().await;
        if !self.running() {
            let mut pending = lock(&self.inner.pending);
            let spec = pending
                .iter_mut()
                .find(|s| s.id.as_deref() == Some(id) && jobstore.is_none_or(|a| a == s.jobstore))
                .ok_or_else(|| Error::job_not_found(id))?;
            let mut updated = spec.clone();
            updated.apply(changes)?;
            let preview = updated
                .clone()
                .with_default_timezone(self.timezone())
                .into_job(&self.job_defaults(), self.inner.clock.now())?;
            *spec = updated;
            let alias: Arc<str> = spec.jobstore.as_str().into();
            drop(pending);
            self.inner.events.publish(Event::JobModified(JobEvent {
                job_id: preview.id_arc().clone(),
                jobstore: alias,
            }));
            return Ok(preview_pending(preview));
        }
        let guard = self.inner.jobs_lock.lock().await;
        let (mut job, alias, store) = self.lookup(id, jobstore).await?;
        job.apply(changes.with_default_timezone(self.timezone()))?;
        if !job.target().is_persistable() && !store.capabilities().closures {
            return Err(Error::not_persistable(id));
        }
        store.update_job(job.clone()).await?;
        drop(guard);
        tracing::info!(job = id, "modified job");
        self.inner.events.publish(Event::JobModified(JobEvent {
            job_id: job.id_arc().clone(),
            jobstore: alias,
        }));
        if self.state() == SchedulerState::Running {
            self.wakeup();
        }
        Ok(job)
    }

    /// Gives a job a new trigger and computes its next run time from it now.
    pub async fn reschedule_job(
        &self,
        id: &str,
        jobstore: Option<&str>,
        trigger: impl Trigger,
    ) -> Result<Job> {
        let trigger = crate::job::with_default_timezone(Arc::new(trigger), self.timezone());
        let next = crate::job::first_fire_time(&*trigger, self.inner.clock.now())
            .map_err(|e| e.with_job_id(id))?;
        let mut changes = JobChanges::new().next_run_time(next);
        changes.trigger = Some(trigger);
        self.modify_job(id, jobstore, changes).await
    }

    /// Pauses a job: it keeps its place in the store with no next run time.
    pub async fn pause_job(&self, id: &str, jobstore: Option<&str>) -> Result<Job> {
        self.modify_job(id, jobstore, JobChanges::new().next_run_time(None))
            .await
    }

    /// Resumes a paused job from its trigger's next fire time after now; removes it (and
    /// answers `None`) if its trigger is finished.
    pub async fn resume_job(&self, id: &str, jobstore: Option<&str>) -> Result<Option<Job>> {
        let now = self.inner.clock.now();
        let job = match self.get_job(id, jobstore).await? {
            Some(job) => job,
            None => return Err(Error::job_not_found(id)),
        };
        let next =
            crate::job::first_fire_time(&**job.trigger(), now).map_err(|e| e.with_job_id(id))?;
        match next {
            Some(next) => self
                .modify_job(id, jobstore, JobChanges::new().next_run_time(Some(next)))
                .await
                .map(Some),
            None => {
                self.remove_job(id, jobstore).await?;
                Ok(None)
            }
        }
    }

    /// Removes a job, publishing [`Event::JobRemoved`].
    pub async fn remove_job(&self, id: &str, jobstore: Option<&str>) -> Result<()> {
        self.settled().await;
        if !self.running() {
            let mut pending = lock(&self.inner.pending);
            let index = pending
                .iter()
                .position(|s| {
                    s.id.as_deref() == Some(id) && jobstore.is_none_or(|a| a == s.jobstore)
                })
                .ok_or_else(|| Error::job_not_found(id))?;
            let spec = pending.remove(index);
            drop(pending);
            self.publish_removed(id.into(), spec.jobstore.as_str().into());
            return Ok(());
        }
        for (alias, store) in self.store_snapshot() {
            if jobstore.is_some_and(|a| a != &*alias) {
                continue;
            }
            match store.remove_job(id).await {
                Ok(()) => {
                    tracing::info!(job = id, jobstore = %alias, "removed job");
                    self.publish_removed(id.into(), alias);
                    return Ok(());
                }
                Err(e) if e.kind() == ErrorKind::JobNotFound => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::job_not_found(id))
    }

    /// Removes all jobs from one store (or all stores), publishing [`Event::AllJobsRemoved`].
    pub async fn remove_all_jobs(&self, jobstore: Option<&str>) -> Result<()> {
        self.settled().await;
        if !self.running() {
            lock(&self.inner.pending).retain(|s| jobstore.is_some_and(|a| a != s.jobstore));
        } else {
            for (alias, store) in self.store_snapshot() {
                if jobstore.is_none_or(|a| a == &*alias) {
                    store.remove_all_jobs().await?;
                }
            }
        }
        self.inner.events.publish(Event::AllJobsRemoved {
            jobstore: jobstore.map(Arc::from),
        });
        Ok(())
    }

    /// The job with `id` (first store that has it, unless `jobstore` says which).
    pub async fn get_job(&self, id: &str, jobstore: Option<&str>) -> Result<Option<Job>> {
        self.settled().await;
        if !self.running() {
            let defaults = self.job_defaults();
            return Ok(lock(&self.inner.pending)
                .iter()
                .find(|s| s.id.as_deref() == Some(id) && jobstore.is_none_or(|a| a == s.jobstore))
                .map(|s| s.preview(&defaults)));
        }
        match self.lookup(id, jobstore).await {
            Ok((job, _, _)) => Ok(Some(job)),
            Err(e) if e.kind() == ErrorKind::JobNotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// All jobs: the pending ones before start, else every store's jobs in store order, each
    /// store's sorted by next run time with paused jobs last.
    pub async fn get_jobs(&self, jobstore: Option<&str>) -> Result<Vec<Job>> {
        self.settled().await;
        if !self.running() {
            return Ok(self.pending_preview(jobstore));
        }
        let mut jobs = Vec::new();
        for (alias, store) in self.store_snapshot() {
            if jobstore.is_none_or(|a| a == &*alias) {
                jobs.extend(store.get_all_jobs().await?);
            }
        }
        Ok(jobs)
    }

    /// The job table APScheduler's `print_jobs` prints, as text.
    pub async fn jobs_table(&self, jobstore: Option<&str>) -> Result<String> {
        self.settled().await;
        use std::fmt::Write as _;
        let tz = self.timezone();
        let mut out = String::new();
        if !self.running() {
            out.push_str("Pending jobs:\n");
            let jobs = self.pending_preview(jobstore);
            if jobs.is_empty() {
                out.push_str("    No pending jobs\n");
            }
            for job in jobs {
                let _ = writeln!(out, "    {}", job.display_pending(tz));
            }
            return Ok(out);
        }
        let mut stores = self.store_snapshot();
        stores.sort_by(|a, b| a.0.cmp(&b.0));
        for (alias, store) in stores {
            if jobstore.is_some_and(|a| a != &*alias) {
                continue;
            }
            let _ = writeln!(out, "Jobstore {alias}:");
            let jobs = store.get_all_jobs().await?;
            if jobs.is_empty() {
                out.push_str("    No scheduled jobs\n");
            }
            for job in jobs {
                let _ = writeln!(out, "    {}", job.display_in(tz));
            }
        }
        Ok(out)
    }

    /// Prints [`jobs_table`](Self::jobs_table) to standard output.
    pub async fn print_jobs(&self, jobstore: Option<&str>) -> Result<()> {
        let table = self.jobs_table(jobstore).await?;
        print!("{table}");
        Ok(())
    }

    // ----- internals ---------------------------------------------------------------------

    fn pending_preview(&self, jobstore: Option<&str>) -> Vec<Job> {
        let defaults = self.job_defaults();
        lock(&self.inner.pending)
            .iter()
            .filter(|s| jobstore.is_none_or(|a| a == s.jobstore))
            .map(|s| s.preview(&defaults))
            .collect()
    }

    /// Finds a stored job (the scheduler must be running).
    async fn lookup(
        &self,
        id: &str,
        jobstore: Option<&str>,
    ) -> Result<(Job, Arc<str>, Arc<dyn DynJobStore>)> {
        for (alias, store) in self.store_snapshot() {
            if jobstore.is_some_and(|a| a != &*alias) {
                continue;
            }
            if let Some(job) = store.lookup_job(id).await? {
                return Ok((job, alias, store));
            }
        }
        Err(Error::job_not_found(id))
    }

    fn publish_removed(&self, job_id: Arc<str>, jobstore: Arc<str>) {
        self.inner
            .events
            .publish(Event::JobRemoved(JobEvent { job_id, jobstore }));
    }

    fn store(&self, alias: &str) -> Result<Arc<dyn DynJobStore>> {
        read(&self.inner.stores)
            .iter()
            .find(|(a, _)| &**a == alias)
            .map(|(_, s)| s.clone())
            .ok_or_else(|| {
                Error::config(format!(
                    "no job store named {alias:?}; add one with SchedulerBuilder::jobstore \
                     (for example jobstore_memory::MemoryJobStore)"
                ))
            })
    }

    fn store_snapshot(&self) -> Vec<AliasedStore> {
        read(&self.inner.stores).clone()
    }

    fn executor_snapshot(&self) -> Vec<(Arc<str>, Arc<dyn DynExecutor>)> {
        let mut executors: Vec<_> = read(&self.inner.executors)
            .iter()
            .map(|(a, e)| (a.clone(), e.clone()))
            .collect();
        executors.sort_by(|a, b| a.0.cmp(&b.0));
        executors
    }

    fn store_context(&self, alias: &str) -> StoreContext {
        StoreContext::new(alias, self.inner.codec.clone())
    }

    fn executor_context(&self, alias: &str, runtime: &tokio::runtime::Handle) -> ExecutorContext {
        ExecutorContext::new(
            alias,
            self.inner.clock.clone(),
            self.inner.events.clone(),
            runtime.clone(),
        )
    }
}

/// A pending job is listed without a run time, as APScheduler lists it "pending".
fn preview_pending(mut job: Job) -> Job {
    job.set_next_run_time(None);
    job
}

/// Clears the `starting` flag when `start` returns, however it returns.
struct Settled<'a>(&'a watch::Sender<bool>);

impl Drop for Settled<'_> {
    fn drop(&mut self) {
        self.0.send_replace(false);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // No code path panics while holding these locks, so poisoning cannot hide a broken value.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

//! The scheduler: one async core with APScheduler's API, and thin sync wrappers around it.
//!
//! One module per concept: `builder` (the builder and the settings it checks), `lifecycle`
//! (the states and the one rule for changing them; start, shutdown, pause, resume; the loop's
//! supervision and health), `aliased` (stores and executors by alias), `pending` (jobs added
//! before start), `jobs` (the job API), `process` (the loop), `cluster` (node id, heartbeats,
//! recovery of runs lost with a node), `config` (configuration documents), `signal` (SIGINT and SIGTERM) and `sync` (the blocking wrappers).

mod aliased;
mod builder;
mod cluster;
pub mod config;
mod jobs;
mod lifecycle;
mod pending;
mod process;
pub(crate) mod run_request;
mod signal;
mod sync;

use std::fmt;
use std::sync::{Arc, Mutex, RwLock};

use chrono_tz::Tz;
use tokio::sync::Notify;

pub use builder::{DEFAULT_CATCH_UP_LIMIT, DEFAULT_DUE_BATCH_SIZE, SchedulerBuilder};
pub use config::{
    ComponentConfig, Components, ExecutorFactory, Factory, JobStoreFactory, RecordStoreFactory,
    SchedulerConfig,
};
pub use lifecycle::{Health, SchedulerState};
pub use sync::{BackgroundScheduler, BlockingScheduler, SyncScheduler};

use crate::clock::Clock;
use crate::event::{Delivery, Event, EventBus, EventMask, EventStream, ListenerId};
use crate::executor::{DynExecutor, ExecutorContext};
use crate::job::{JobCodec, JobDefaults, JobRegistry};
use crate::store::{DynJobStore, StoreContext};

use aliased::Aliased;
use builder::Settings;
use lifecycle::Lifecycle;
use pending::PendingJobs;

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
///     .build()?;
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

struct Inner {
    clock: Arc<dyn Clock>,
    codec: JobCodec,
    events: EventBus,
    settings: RwLock<Settings>,
    lifecycle: Lifecycle,
    stores: RwLock<Aliased<dyn DynJobStore>>,
    executors: RwLock<Aliased<dyn DynExecutor>>,
    pending: Mutex<PendingJobs>,
    /// Shared (weakly) with the stores' contexts, whose `wake` notifies it.
    wakeup: Arc<Notify>,
    cluster: cluster::ClusterState,
    runtime: Mutex<Option<tokio::runtime::Handle>>,
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

    /// Makes the loop look at the stores again now rather than at its planned wake-up.
    pub fn wakeup(&self) {
        self.inner.wakeup.notify_one();
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
    ///
    /// Its queue holds [`Delivery::DEFAULT_CAPACITY`] events and drops the oldest when full
    /// (the listener then gets [`Event::EventsLost`] with the count): the scheduler never
    /// waits for a listener, so a listener that calls the scheduler cannot deadlock it. Use
    /// [`add_listener_with`](Self::add_listener_with) to choose.
    pub fn add_listener<F>(&self, listener: F, mask: EventMask) -> ListenerId
    where
        F: Fn(&Event) + Send + 'static,
    {
        self.inner.events.add_listener(listener, mask)
    }

    /// Like [`add_listener`](Self::add_listener), with the queue size and overflow policy of
    /// `delivery` (for example [`Delivery::wait`] for backpressure).
    pub fn add_listener_with<F>(
        &self,
        listener: F,
        mask: EventMask,
        delivery: Delivery,
    ) -> ListenerId
    where
        F: Fn(&Event) + Send + 'static,
    {
        self.inner
            .events
            .add_listener_with(listener, mask, delivery)
    }

    /// Removes a listener and frees its backlog; answers whether it was registered.
    pub fn remove_listener(&self, id: ListenerId) -> bool {
        self.inner.events.remove_listener(id)
    }

    /// A stream of the events in `mask`, from now on.
    ///
    /// Its queue holds [`Delivery::DEFAULT_CAPACITY`] events and drops the oldest when full
    /// (the stream then yields [`Event::EventsLost`] with the count), so a stream nobody reads
    /// costs bounded memory. Drop it to unsubscribe.
    pub fn subscribe(&self, mask: EventMask) -> EventStream {
        self.inner.events.subscribe(mask)
    }

    /// Like [`subscribe`](Self::subscribe), with the queue size and overflow policy of
    /// `delivery`.
    pub fn subscribe_with(&self, mask: EventMask, delivery: Delivery) -> EventStream {
        self.inner.events.subscribe_with(mask, delivery)
    }

    /// The event bus, for publishing custom integrations.
    pub fn events(&self) -> &EventBus {
        &self.inner.events
    }

    // ----- internals ---------------------------------------------------------------------

    fn store_context(&self, alias: &str) -> StoreContext {
        // Weak: a store (held by the scheduler) must not keep the scheduler alive.
        let wakeup = Arc::downgrade(&self.inner.wakeup);
        let planned = self.lifecycle().planned_wake();
        StoreContext::new(alias, self.inner.codec.clone(), self.inner.events.clone())
            .with_waker(move || {
                if let Some(wakeup) = wakeup.upgrade() {
                    wakeup.notify_one();
                }
            })
            .with_planned_look(move |run_time| {
                planned
                    .upgrade()
                    .is_some_and(|planned| lifecycle::looks_by(&planned, Some(run_time)))
            })
            .with_node(self.node_identity())
    }

    fn executor_context(&self, alias: &str, runtime: &tokio::runtime::Handle) -> ExecutorContext {
        ExecutorContext::new(
            alias,
            self.inner.clock.clone(),
            self.inner.events.clone(),
            runtime.clone(),
        )
        .with_job_labels(read(&self.inner.settings).metrics_job_labels)
        .with_run_end(self.run_end_hook())
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

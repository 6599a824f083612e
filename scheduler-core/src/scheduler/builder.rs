//! [`SchedulerBuilder`] and the settings it checks before a scheduler exists.

use std::fmt;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono_tz::Tz;
use tokio::sync::Notify;

use super::aliased::Aliased;
use super::cluster::ClusterSettings;
use super::config::{Components, SchedulerConfig, apply_document, local_timezone};
use super::lifecycle::Lifecycle;
use super::pending::PendingJobs;
use super::{Inner, Scheduler};
use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::event::EventBus;
use crate::executor::{DynExecutor, Executor};
use crate::job::{JobCodec, JobDefaults, JobRegistry};
use crate::store::{DynJobStore, JobStore};
use crate::trigger::TriggerRegistry;

/// How many fire times of one job one pass runs or walks at most (see
/// [`SchedulerBuilder::catch_up_limit`]).
pub const DEFAULT_CATCH_UP_LIMIT: usize = 10_000;

/// How many due jobs the loop takes from one store in one pass (see
/// [`SchedulerBuilder::due_batch_size`]).
pub const DEFAULT_DUE_BATCH_SIZE: usize = 1_000;

/// The longest interval a setting may take (`jobstore_retry_interval`, `max_wait`,
/// `jobstore_call_timeout`): longer than a day is a mistake in units, not a policy.
const MAX_INTERVAL: Duration = Duration::from_secs(24 * 60 * 60);

/// The scheduler's settings, checked whole wherever they are set (builder, document).
#[derive(Debug, Clone)]
pub(super) struct Settings {
    pub(super) timezone: Tz,
    pub(super) job_defaults: JobDefaults,
    pub(super) jobstore_retry_interval: Duration,
    pub(super) catch_up_limit: usize,
    pub(super) max_wait: Duration,
    pub(super) jobstore_call_timeout: Duration,
    pub(super) due_batch_size: usize,
    pub(super) metrics_job_labels: bool,
    pub(super) metrics_job_count_interval: Option<Duration>,
    pub(super) cluster: ClusterSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            timezone: local_timezone(),
            job_defaults: JobDefaults::default(),
            jobstore_retry_interval: Duration::from_secs(10),
            catch_up_limit: DEFAULT_CATCH_UP_LIMIT,
            max_wait: Duration::from_secs(10),
            jobstore_call_timeout: Duration::from_secs(10),
            due_batch_size: DEFAULT_DUE_BATCH_SIZE,
            metrics_job_labels: false,
            metrics_job_count_interval: Some(Duration::from_secs(5)),
            cluster: ClusterSettings::default(),
        }
    }
}

impl Settings {
    /// Fails with [`Config`](crate::ErrorKind::Config) for a value the scheduler cannot use.
    pub(super) fn validate(&self) -> Result<()> {
        validate_interval("jobstore_retry_interval", self.jobstore_retry_interval)?;
        validate_interval("max_wait", self.max_wait)?;
        validate_interval("jobstore_call_timeout", self.jobstore_call_timeout)?;
        if let Some(interval) = self.metrics_job_count_interval {
            validate_interval("metrics_job_count_interval", interval)?;
        }
        self.cluster.validate()?;
        if self.due_batch_size == 0 {
            return Err(Error::config("due_batch_size must be at least 1"));
        }
        let defaults = &self.job_defaults;
        if defaults
            .misfire_grace_time
            .is_some_and(|grace| grace.is_zero())
        {
            return Err(Error::config(
                "job_defaults.misfire_grace_time must be positive, or none for no limit",
            ));
        }
        if defaults.max_instances == 0 {
            return Err(Error::config(
                "job_defaults.max_instances must be at least 1",
            ));
        }
        if defaults.timeout.is_some_and(|timeout| timeout.is_zero()) {
            return Err(Error::config(
                "job_defaults.timeout must be positive, or none for no limit",
            ));
        }
        Ok(())
    }
}

/// Checks the interval setting `name`: positive and at most a day.
pub(super) fn validate_interval(name: &str, interval: Duration) -> Result<Duration> {
    if interval.is_zero() || interval > MAX_INTERVAL {
        return Err(Error::config(format!(
            "{name} must be positive and at most one day (86400 s), not {} s",
            interval.as_secs_f64()
        )));
    }
    Ok(interval)
}

/// Builds a [`Scheduler`]; [`build`](Self::build) checks everything it was given.
pub struct SchedulerBuilder {
    clock: Arc<dyn Clock>,
    settings: Settings,
    functions: JobRegistry,
    triggers: TriggerRegistry,
    stores: Aliased<dyn DynJobStore>,
    executors: Aliased<dyn DynExecutor>,
    /// The first store or executor refused (a duplicate alias), reported by `build`.
    refused: Option<Error>,
}

impl Default for SchedulerBuilder {
    fn default() -> Self {
        SchedulerBuilder {
            clock: Arc::new(SystemClock),
            settings: Settings::default(),
            functions: JobRegistry::new(),
            triggers: TriggerRegistry::new(),
            stores: Aliased::stores(),
            executors: Aliased::executors(),
            refused: None,
        }
    }
}

impl fmt::Debug for SchedulerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SchedulerBuilder")
            .field("clock", &self.clock)
            .field("settings", &self.settings)
            .field("stores", &self.stores.aliases())
            .field("executors", &self.executors.aliases())
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

    /// Defaults for the options jobs leave unset. [`build`](Self::build) refuses a zero
    /// misfire grace time or a `max_instances` of 0.
    pub fn job_defaults(mut self, defaults: JobDefaults) -> Self {
        self.settings.job_defaults = defaults;
        self
    }

    /// How long to wait before asking a failing store again (default 10 s; positive and at
    /// most one day, else [`build`](Self::build) fails).
    pub fn jobstore_retry_interval(mut self, interval: Duration) -> Self {
        self.settings.jobstore_retry_interval = interval;
        self
    }

    /// The most fire times of one job one pass of the loop runs or walks (default 10,000).
    ///
    /// After an outage or a clock jump a job may have millions of missed fire times;
    /// APScheduler enumerates them all (its issues #1066 and #125). Here the trigger skips
    /// them ([`Trigger::catch_up`](crate::Trigger::catch_up), arithmetic for the built-in
    /// triggers), and a job that coalesces runs once, for the last. A job that does not
    /// coalesce runs each fire time within its misfire grace time, at most this many per pass
    /// (the rest in the next passes, so a pass stays short and other jobs keep running); when
    /// more than this many are already past the grace time they are reported as one
    /// [`Event::JobMissed`](crate::Event) carrying their count instead of one each. A trigger
    /// that cannot skip is walked at most this many fire times per pass, the job's position
    /// saved in between.
    pub fn catch_up_limit(mut self, limit: usize) -> Self {
        self.settings.catch_up_limit = limit.max(1);
        self
    }

    /// The longest the loop sleeps before looking at its stores again, even when no job it
    /// knows of is due (default 10 s; positive and at most one day, else
    /// [`build`](Self::build) fails).
    ///
    /// APScheduler sleeps until the earliest run time it knows of, or until woken by a change
    /// made through this scheduler. A store shared with other processes changes behind its
    /// back: a job added, resumed or moved earlier by another process is seen at the next
    /// look. The default keeps that delay to 10 s (the same cadence as
    /// [`jobstore_retry_interval`](Self::jobstore_retry_interval)) for one indexed query per
    /// store per 10 s, which no server notices. Lower it when jobs are added by processes that
    /// run no scheduler and must start within a few seconds; stores that push changes (the
    /// cluster issue's notifications) make it a fallback only.
    pub fn max_wait(mut self, max_wait: Duration) -> Self {
        self.settings.max_wait = max_wait;
        self
    }

    /// How long any one call to a job store may take before it fails (default 10 s; positive
    /// and at most one day, else [`build`](Self::build) fails).
    ///
    /// A server that hangs (a stopped process, a lost route, a lock held forever) never
    /// refuses a connection; without a bound, one call would freeze the loop, and every job of
    /// every store with it. A call that times out fails with a
    /// [`Backend`](crate::ErrorKind::Backend) error marked temporary: the loop reports it and
    /// asks the store again after `jobstore_retry_interval`, an API call returns it. The loop's
    /// calls are small and indexed (a due batch, a commit, the next run time); raise this for
    /// `get_jobs` over very large stores.
    pub fn jobstore_call_timeout(mut self, timeout: Duration) -> Self {
        self.settings.jobstore_call_timeout = timeout;
        self
    }

    /// The most due jobs the loop takes from one store in one pass (default 1,000; at least
    /// 1, else [`build`](Self::build) fails). A full batch makes the loop look again at once,
    /// so a burst of due jobs is worked through in bounded steps, each committed before the
    /// next is read. The first batch of a burst holds at most 5 jobs, so its first runs wait
    /// only for a short read and commit; the batches after a full one hold this many, or,
    /// from a store whose last pass took over 10 ms, as many as it fetched and committed in
    /// 0.1 s (every run of a batch waits for the batch's commit).
    pub fn due_batch_size(mut self, size: usize) -> Self {
        self.settings.due_batch_size = size;
        self
    }

    /// Labels the run metrics (README "Metrics") with the job's id too, beside its store and
    /// executor (default: off).
    ///
    /// Every job then has a time series of its own in each metric: useful for a few hundred
    /// long-lived jobs, a burden for a monitoring system with thousands of jobs or with jobs
    /// added under fresh ids (each id stays in the exporter until it forgets idle series).
    pub fn metrics_job_labels(mut self, on: bool) -> Self {
        self.settings.metrics_job_labels = on;
        self
    }

    /// How often the loop counts each store's jobs for the `scheduler_jobs` gauge (default
    /// 5 s; positive and at most one day, else [`build`](Self::build) fails), or `None` to
    /// never count. The count runs beside the loop, one at a time, through
    /// [`JobStore::count_jobs`](crate::JobStore::count_jobs).
    pub fn metrics_job_count_interval(mut self, interval: Option<Duration>) -> Self {
        self.settings.metrics_job_count_interval = interval;
        self
    }

    /// This scheduler's node id on stores several schedulers share (default
    /// `<hostname>-<pid>-<4 random hex digits>`; 1 to 200 bytes, else [`build`](Self::build)
    /// fails). Unique per running scheduler: two live schedulers with one id would take each
    /// other's claims and in-flight runs for their own.
    pub fn node_id(mut self, id: impl Into<Arc<str>>) -> Self {
        self.settings.cluster.node_id = id.into();
        self
    }

    /// How often this node writes its heartbeat on each shared store and looks at the other
    /// nodes (default 5 s; shorter than `node_timeout`, else [`build`](Self::build) fails).
    pub fn heartbeat_interval(mut self, interval: Duration) -> Self {
        self.settings.cluster.heartbeat_interval = interval;
        self
    }

    /// How old a node's heartbeat may get before the node is taken for dead and its
    /// recoverable runs are run again elsewhere (default 15 s). Allow for the clock skew
    /// between nodes and a pause of the process: a live node taken for dead has its
    /// recoverable runs run twice (at least once).
    pub fn node_timeout(mut self, timeout: Duration) -> Self {
        self.settings.cluster.node_timeout = timeout;
        self
    }

    /// How long this node's claim on a batch of due jobs keeps other nodes off them (default
    /// 5 s; shorter than `node_timeout`, else [`build`](Self::build) fails). A node commits
    /// its claimed jobs within moments; the lease only matters when it dies in between (its
    /// claimed jobs wait that long) or when clocks differ by more than it (nodes then race
    /// the fire commit, which still lets one run win).
    pub fn claim_lease(mut self, lease: Duration) -> Self {
        self.settings.cluster.claim_lease = lease;
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
    /// An alias given twice makes [`build`](Self::build) fail, as `add_jobstore` does.
    pub fn jobstore(self, alias: impl Into<Arc<str>>, store: impl JobStore) -> Self {
        self.jobstore_dyn(alias, Arc::new(store))
    }

    /// Adds a job store that is already a trait object.
    pub fn jobstore_dyn(mut self, alias: impl Into<Arc<str>>, store: Arc<dyn DynJobStore>) -> Self {
        if let Err(e) = self.stores.insert(alias.into(), store) {
            self.refused.get_or_insert(e);
        }
        self
    }

    /// Adds an executor under `alias` (`"default"` runs jobs unless told otherwise). An alias
    /// given twice makes [`build`](Self::build) fail, as `add_executor` does.
    pub fn executor(self, alias: impl Into<Arc<str>>, executor: impl Executor) -> Self {
        self.executor_dyn(alias, Arc::new(executor))
    }

    /// Adds an executor that is already a trait object.
    pub fn executor_dyn(
        mut self,
        alias: impl Into<Arc<str>>,
        executor: Arc<dyn DynExecutor>,
    ) -> Self {
        if let Err(e) = self.executors.insert(alias.into(), executor) {
            self.refused.get_or_insert(e);
        }
        self
    }

    /// Applies a configuration document: the settings it gives (time zone, job defaults, the
    /// loop's and the cluster's settings), and the stores and executors it lists, built with `components` and added to the ones given so
    /// far. Fails, changing nothing, on a bad value, an unknown type or an alias already
    /// taken. [`Scheduler::configure`] applies a document the same way to a stopped scheduler.
    pub fn config(mut self, config: &SchedulerConfig, components: &Components) -> Result<Self> {
        apply_document(
            config,
            components,
            &mut self.settings,
            &mut self.stores,
            &mut self.executors,
        )?;
        Ok(self)
    }

    /// The scheduler, stopped.
    ///
    /// Fails with [`Config`](crate::ErrorKind::Config) when a store or executor alias was
    /// given twice or a setting is out of range (a zero or over-a-day retry interval, a zero
    /// misfire grace time or `max_instances` in the job defaults).
    pub fn build(self) -> Result<Scheduler> {
        if let Some(refused) = self.refused {
            return Err(refused);
        }
        self.settings.validate()?;
        Ok(Scheduler {
            inner: Arc::new(Inner {
                clock: self.clock,
                codec: JobCodec::new(self.functions, self.triggers),
                events: EventBus::new(),
                settings: RwLock::new(self.settings),
                lifecycle: Lifecycle::new(),
                stores: RwLock::new(self.stores),
                executors: RwLock::new(self.executors),
                pending: Mutex::new(PendingJobs::default()),
                wakeup: Arc::new(Notify::new()),
                cluster: Default::default(),
                runtime: Mutex::new(None),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn retry_intervals_must_be_positive_and_at_most_a_day() {
        for bad in [
            Duration::ZERO,
            Duration::from_secs_f64(1e13),
            MAX_INTERVAL + Duration::from_nanos(1),
        ] {
            let err = Scheduler::builder()
                .jobstore_retry_interval(bad)
                .build()
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config, "{bad:?}");
            assert!(err.to_string().contains("jobstore_retry_interval"), "{err}");
        }
        for good in [Duration::from_millis(1), MAX_INTERVAL] {
            Scheduler::builder()
                .jobstore_retry_interval(good)
                .build()
                .unwrap();
        }
    }

    #[test]
    fn the_loop_settings_are_checked_at_build() {
        let builders = [
            Scheduler::builder().max_wait(Duration::ZERO),
            Scheduler::builder().max_wait(MAX_INTERVAL * 2),
            Scheduler::builder().jobstore_call_timeout(Duration::ZERO),
            Scheduler::builder().due_batch_size(0),
        ];
        for (builder, name) in builders.into_iter().zip([
            "max_wait",
            "max_wait",
            "jobstore_call_timeout",
            "due_batch_size",
        ]) {
            let err = builder.build().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config);
            assert!(err.to_string().contains(name), "{err}");
        }
        let scheduler = Scheduler::builder()
            .max_wait(Duration::from_millis(500))
            .jobstore_call_timeout(Duration::from_secs(3))
            .due_batch_size(7)
            .build()
            .unwrap();
        let settings = super::super::read(&scheduler.inner.settings).clone();
        assert_eq!(
            (
                settings.max_wait,
                settings.jobstore_call_timeout,
                settings.due_batch_size
            ),
            (Duration::from_millis(500), Duration::from_secs(3), 7)
        );
    }

    #[test]
    fn job_defaults_are_checked_at_build() {
        let zero_grace = JobDefaults {
            misfire_grace_time: Some(Duration::ZERO),
            ..JobDefaults::default()
        };
        let no_instances = JobDefaults {
            max_instances: 0,
            ..JobDefaults::default()
        };
        let zero_timeout = JobDefaults {
            timeout: Some(Duration::ZERO),
            ..JobDefaults::default()
        };
        for defaults in [zero_grace, no_instances, zero_timeout] {
            let err = Scheduler::builder()
                .job_defaults(defaults)
                .build()
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config);
        }
    }

    #[derive(Debug)]
    struct Idle;

    impl Executor for Idle {
        async fn start(&self, _: crate::ExecutorContext) -> Result<()> {
            Ok(())
        }
        fn submit(&self, _: crate::JobRun) -> Result<()> {
            Ok(())
        }
        async fn shutdown(&self, _: bool) -> Result<()> {
            Ok(())
        }
    }

    #[test]
    fn an_alias_given_twice_is_refused_at_build_as_at_run_time() {
        let err = Scheduler::builder()
            .executor("a", Idle)
            .executor("b", Idle)
            .executor("a", Idle)
            .build()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert_eq!(
            err.to_string(),
            "this scheduler already has an executor named \"a\""
        );
    }
}

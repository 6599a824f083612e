//! Jobs: what runs ([`JobTarget`]), when ([`Trigger`]), and how ([`JobDefaults`] and options).

mod function;
pub(crate) mod opt_seconds;
mod options;
mod record;
mod run_request;
mod run_time;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SubsecRound as _, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

pub use function::{
    Handler, JobFunction, JobOutcome, JobOutput, JobRegistry, JobTarget, RegisteredFunction,
};
pub use record::{JobCodec, JobRecord};
pub use run_request::RunNowRequest;

use options::Options;
use run_time::RunTime;

use crate::error::{Error, ErrorKind, Result};
use crate::trigger::{SearchExhausted, Trigger};

/// A scheduled job as stored: its target, trigger, options, next run time and revision.
///
/// `Job` values are snapshots: change a stored job through the scheduler
/// ([`modify_job`](crate::Scheduler::modify_job) and friends). Cloning is cheap.
///
/// Run times have microsecond resolution everywhere (the finest every store can keep
/// exactly); a finer part is dropped when a run time is set.
#[derive(Clone)]
pub struct Job {
    id: Arc<str>,
    target: JobTarget,
    trigger: Arc<dyn Trigger>,
    /// Name, executor and the other options, shared with jobs that have the same.
    options: Arc<Options>,
    next_run_time: RunTime,
    revision: u64,
    /// A run-now request stored with the job (see [`RunNowRequest`]); pending only while the
    /// next run time is the request's. Boxed: almost every job has none, and a million jobs in
    /// memory should not each carry its room.
    run_request: Option<Box<RunNowRequest>>,
}

/// `t` without its sub-microsecond part: run times are whole microseconds.
pub(crate) fn whole_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

impl Job {
    /// The id, unique within its store.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The id, shared.
    pub fn id_arc(&self) -> &Arc<str> {
        &self.id
    }

    /// The human-readable name (defaults to the function's name).
    pub fn name(&self) -> &str {
        &self.options.name
    }

    /// What the job runs.
    pub fn target(&self) -> &JobTarget {
        &self.target
    }

    /// When the job runs.
    pub fn trigger(&self) -> &Arc<dyn Trigger> {
        &self.trigger
    }

    /// The alias of the executor that runs it.
    pub fn executor(&self) -> &str {
        &self.options.executor
    }

    /// How late a run may start and still run; `None` means no limit.
    pub fn misfire_grace_time(&self) -> Option<Duration> {
        self.options.misfire_grace_time
    }

    /// Whether several due run times collapse into one run.
    pub fn coalesce(&self) -> bool {
        self.options.coalesce
    }

    /// How many runs of this job may run at once on its executor.
    pub fn max_instances(&self) -> u32 {
        self.options.max_instances
    }

    /// How long one run may take; `None` means no limit. Executors enforce it.
    pub fn timeout(&self) -> Option<Duration> {
        self.options.timeout
    }

    /// Whether a run lost with a dead scheduler node is run again by another
    /// ([`JobSpec::recover_lost_runs`]).
    pub fn recover_lost_runs(&self) -> bool {
        self.options.recover_lost_runs
    }

    /// Whether [`max_instances`](Self::max_instances) is counted across the scheduler nodes
    /// sharing the job's store ([`JobSpec::max_instances_across_nodes`]).
    pub fn max_instances_across_nodes(&self) -> bool {
        self.options.max_instances_across_nodes
    }

    /// This job without a misfire grace time: a recovered run was committed, so it runs
    /// however late.
    pub(crate) fn without_misfire_grace(mut self) -> Self {
        Arc::make_mut(&mut self.options).misfire_grace_time = None;
        self
    }

    /// When the job runs next; `None` when it is paused.
    pub fn next_run_time(&self) -> Option<DateTime<Utc>> {
        self.next_run_time.get()
    }

    /// [`next_run_time`](Self::next_run_time) in whole microseconds since 1970, as kept.
    pub fn next_run_micros(&self) -> Option<i64> {
        self.next_run_time.micros()
    }

    /// Whether the job is paused.
    pub fn is_paused(&self) -> bool {
        self.next_run_time == RunTime::PAUSED
    }

    /// Sets the next run time (to whole microseconds). For job stores applying a fire or an
    /// update. A run time other than a pending [`RunNowRequest`]'s ends the request.
    pub fn set_next_run_time(&mut self, next_run_time: Option<DateTime<Utc>>) {
        self.next_run_time = RunTime::new(next_run_time);
        if self
            .run_request
            .as_ref()
            .is_some_and(|r| !r.is_pending(self.next_run_time()))
        {
            self.run_request = None;
        }
    }

    /// The revision of the job in its store when it was read: it changes on every write of
    /// the job, so a conditional write made with it fails with
    /// [`Conflict`](crate::ErrorKind::Conflict) once anyone else has written the job. `0` for a
    /// job that has not been stored.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Sets the revision. For job stores, when they read or write the job.
    pub fn set_revision(&mut self, revision: u64) {
        self.revision = revision;
    }

    /// Shows the job as APScheduler's `str(job)` does, with times in `tz`:
    /// `name (trigger: ..., next run at: 2024-05-01 09:00:00 CEST)` or `name (trigger: ..., paused)`.
    pub fn display_in(&self, tz: Tz) -> impl fmt::Display + '_ {
        JobDisplay {
            job: self,
            tz,
            pending: false,
        }
    }

    pub(crate) fn display_pending(&self, tz: Tz) -> impl fmt::Display + '_ {
        JobDisplay {
            job: self,
            tz,
            pending: true,
        }
    }

    /// Applies `changes`, validating them as APScheduler's `Job._modify` does.
    pub(crate) fn apply(&mut self, changes: JobChanges) -> Result<()> {
        let JobChanges {
            name,
            target,
            trigger,
            executor,
            misfire_grace_time,
            coalesce,
            max_instances,
            timeout,
            next_run_time,
        } = changes;
        let options = Arc::make_mut(&mut self.options);
        if let Some(name) = name {
            options.name = validate_name(name)?;
        }
        if let Some(target) = target {
            target.validate()?;
            self.target = target;
        }
        if let Some(trigger) = trigger {
            self.trigger = trigger;
        }
        if let Some(executor) = executor {
            options.executor = executor.into();
        }
        if let Some(grace) = misfire_grace_time {
            options.misfire_grace_time = validate_grace(grace)?;
        }
        if let Some(coalesce) = coalesce {
            options.coalesce = coalesce;
        }
        if let Some(max) = max_instances {
            options.max_instances = validate_max_instances(max)?;
        }
        if let Some(timeout) = timeout {
            options.timeout = validate_timeout(timeout)?;
        }
        if let Some(next) = next_run_time {
            self.next_run_time = RunTime::new(next);
        }
        Ok(())
    }
}

struct JobDisplay<'a> {
    job: &'a Job,
    tz: Tz,
    pending: bool,
}

impl fmt::Display for JobDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let job = self.job;
        write!(f, "{} (trigger: {}, ", job.name(), job.trigger)?;
        match (self.pending, job.next_run_time()) {
            (true, _) => f.write_str("pending)"),
            (false, Some(t)) => write!(
                f,
                "next run at: {})",
                t.with_timezone(&self.tz).format("%Y-%m-%d %H:%M:%S %Z")
            ),
            (false, None) => f.write_str("paused)"),
        }
    }
}

impl fmt::Display for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.display_in(Tz::UTC).fmt(f)
    }
}

impl fmt::Debug for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Job")
            .field("id", &self.id)
            .field("name", &self.name())
            .field("target", &self.target)
            .field("trigger", &self.trigger)
            .field("executor", &self.executor())
            .field("misfire_grace_time", &self.misfire_grace_time())
            .field("coalesce", &self.coalesce())
            .field("max_instances", &self.max_instances())
            .field("timeout", &self.timeout())
            .field("recover_lost_runs", &self.recover_lost_runs())
            .field(
                "max_instances_across_nodes",
                &self.max_instances_across_nodes(),
            )
            .field("next_run_time", &self.next_run_time())
            .field("revision", &self.revision)
            .finish_non_exhaustive()
    }
}

/// Jobs are equal when their ids are, as in APScheduler.
impl PartialEq for Job {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for Job {}

/// Scheduler-wide defaults for the options a [`JobSpec`] leaves unset.
///
/// The defaults are APScheduler's: a misfire grace time of one second, coalescing on, and one
/// instance at a time; and no timeout (APScheduler has none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobDefaults {
    /// How late a run may start; `None` means no limit. In configuration: seconds, or `null`.
    #[serde(with = "opt_seconds")]
    pub misfire_grace_time: Option<Duration>,
    /// Whether several due run times collapse into one run.
    pub coalesce: bool,
    /// How many runs of one job may run at once on its executor.
    pub max_instances: u32,
    /// How long one run may take; `None` means no limit. In configuration: seconds, or `null`.
    #[serde(with = "opt_seconds")]
    pub timeout: Option<Duration>,
}

impl Default for JobDefaults {
    fn default() -> Self {
        JobDefaults {
            misfire_grace_time: Some(Duration::from_secs(1)),
            coalesce: true,
            max_instances: 1,
            timeout: None,
        }
    }
}

/// Everything needed to add a job: target, trigger and options.
///
/// Options left unset take the scheduler's [`JobDefaults`] when the job reaches its store.
///
/// ```
/// # use scheduler_core::{JobSpec, JobTarget, Trigger, TriggerState};
/// # use chrono::{DateTime, Utc};
/// # #[derive(Debug)] struct Once(DateTime<Utc>);
/// # impl std::fmt::Display for Once { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("once") } }
/// # impl Trigger for Once {
/// #     fn next_fire_time(&self, p: Option<DateTime<Utc>>, _: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, scheduler_core::SearchExhausted> { Ok(p.is_none().then_some(self.0)) }
/// #     fn to_state(&self) -> scheduler_core::Result<TriggerState> { TriggerState::new("once", &self.0) }
/// # }
/// use std::time::Duration;
///
/// let spec = JobSpec::new(JobTarget::closure("hello", || println!("hello")), Once(Utc::now()))
///     .id("greeting")
///     .misfire_grace_time(Some(Duration::from_secs(30)))
///     .replace_existing(true);
/// ```
#[derive(Debug, Clone)]
pub struct JobSpec {
    pub(crate) id: Option<Arc<str>>,
    pub(crate) name: Option<String>,
    pub(crate) target: JobTarget,
    pub(crate) trigger: Arc<dyn Trigger>,
    pub(crate) executor: Arc<str>,
    pub(crate) jobstore: Arc<str>,
    pub(crate) misfire_grace_time: Option<Option<Duration>>,
    pub(crate) coalesce: Option<bool>,
    pub(crate) max_instances: Option<u32>,
    pub(crate) timeout: Option<Option<Duration>>,
    pub(crate) recover_lost_runs: bool,
    pub(crate) max_instances_across_nodes: bool,
    pub(crate) next_run_time: Option<Option<DateTime<Utc>>>,
    pub(crate) replace_existing: bool,
}

impl JobSpec {
    /// A job running `target` on `trigger`, in store `"default"` on executor `"default"`.
    pub fn new(target: JobTarget, trigger: impl Trigger) -> Self {
        Self::with_shared_trigger(target, Arc::new(trigger))
    }

    /// Like [`new`](Self::new), with a trigger that is already shared.
    pub fn with_shared_trigger(target: JobTarget, trigger: Arc<dyn Trigger>) -> Self {
        JobSpec {
            id: None,
            name: None,
            target,
            trigger,
            executor: default_alias(),
            jobstore: default_alias(),
            misfire_grace_time: None,
            coalesce: None,
            max_instances: None,
            timeout: None,
            recover_lost_runs: false,
            max_instances_across_nodes: false,
            next_run_time: None,
            replace_existing: false,
        }
    }

    /// The job's id (default: a random UUID in hex).
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(Arc::from(id.into()));
        self
    }

    /// The job's name (default: the function's name).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The alias of the executor to run it on.
    pub fn executor(mut self, alias: impl Into<Arc<str>>) -> Self {
        self.executor = alias.into();
        self
    }

    /// The alias of the job store to keep it in.
    pub fn jobstore(mut self, alias: impl Into<String>) -> Self {
        self.jobstore = Arc::from(alias.into());
        self
    }

    /// How late a run may start and still run; `None` means no limit.
    pub fn misfire_grace_time(mut self, grace: Option<Duration>) -> Self {
        self.misfire_grace_time = Some(grace);
        self
    }

    /// Whether several due run times collapse into one run.
    pub fn coalesce(mut self, coalesce: bool) -> Self {
        self.coalesce = Some(coalesce);
        self
    }

    /// How many runs may run at once on the executor.
    pub fn max_instances(mut self, max: u32) -> Self {
        self.max_instances = Some(max);
        self
    }

    /// How long one run may take; `None` means no limit (the default, unless the scheduler's
    /// [`JobDefaults`] say otherwise). Executors enforce it.
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Whether a run in flight on a scheduler node that dies is run again by another node
    /// once the dead node's heartbeat lapses (at least once), instead of being lost (at most
    /// once, the default). Only on a store several schedulers share
    /// ([`Capabilities::cluster`](crate::Capabilities::cluster)). Quartz's "requests
    /// recovery"; APScheduler has none.
    pub fn recover_lost_runs(mut self, recover: bool) -> Self {
        self.recover_lost_runs = recover;
        self
    }

    /// Whether `max_instances` bounds the job's runs across all the scheduler nodes sharing
    /// its store (`true`), or on each node (`false`, the default, as APScheduler counts per
    /// scheduler). Across nodes, each fire commit records its runs in flight and the store
    /// admits it only while fewer than `max_instances` of the job's runs are in flight on
    /// live nodes, in the same atomic step; a refused fire still moves the schedule on and
    /// is reported as [`Event::JobMaxInstances`](crate::Event::JobMaxInstances). Costs a
    /// write per run end. Only on a store several schedulers share
    /// ([`Capabilities::cluster`](crate::Capabilities::cluster)); elsewhere it counts per
    /// node.
    pub fn max_instances_across_nodes(mut self, across: bool) -> Self {
        self.max_instances_across_nodes = across;
        self
    }

    /// The first run time, instead of the trigger's.
    pub fn next_run_time(mut self, at: DateTime<Utc>) -> Self {
        self.next_run_time = Some(Some(at));
        self
    }

    /// Adds the job paused (APScheduler's `next_run_time=None`).
    pub fn paused(mut self) -> Self {
        self.next_run_time = Some(None);
        self
    }

    /// Replace a job with the same id instead of failing with
    /// [`ConflictingId`](crate::ErrorKind::ConflictingId).
    pub fn replace_existing(mut self, replace: bool) -> Self {
        self.replace_existing = replace;
        self
    }

    /// The store alias the job goes to.
    pub fn jobstore_alias(&self) -> &str {
        &self.jobstore
    }

    /// Builds the job as the scheduler does when it reaches its store: unset options from
    /// `defaults`, a random id if none was given, and the first run time from the trigger at
    /// `now` (unless given). For store tests and benchmarks that bypass a scheduler.
    pub fn into_job(self, defaults: &JobDefaults, now: DateTime<Utc>) -> Result<Job> {
        self.target.validate()?;
        let id = self.id.unwrap_or_else(crate::ids::random_id);
        let name = match self.name {
            Some(name) => validate_name(name)?,
            None => self.target.display_name_arc().clone(),
        };
        let misfire_grace_time = validate_grace(
            self.misfire_grace_time
                .unwrap_or(defaults.misfire_grace_time),
        )?;
        let max_instances =
            validate_max_instances(self.max_instances.unwrap_or(defaults.max_instances))?;
        let timeout = validate_timeout(self.timeout.unwrap_or(defaults.timeout))?;
        let next_run_time = match self.next_run_time {
            Some(given) => given,
            None => first_fire_time(&*self.trigger, now).map_err(|e| e.with_job_id(&*id))?,
        };
        Ok(Job {
            id,
            target: self.target,
            trigger: self.trigger,
            options: Options {
                name,
                executor: self.executor,
                misfire_grace_time,
                coalesce: self.coalesce.unwrap_or(defaults.coalesce),
                max_instances,
                timeout,
                recover_lost_runs: self.recover_lost_runs,
                max_instances_across_nodes: self.max_instances_across_nodes,
                unknown_fields: None,
            }
            .shared(),
            next_run_time: RunTime::new(next_run_time),
            revision: 0,
            run_request: None,
        })
    }

    /// Gives the trigger `timezone` wherever it has no zone of its own
    /// ([`Trigger::with_default_timezone`]); the scheduler does this with its zone.
    pub(crate) fn with_default_timezone(mut self, timezone: Tz) -> Self {
        self.trigger = with_default_timezone(self.trigger, timezone);
        self
    }

    /// The job as listed before the scheduler starts: defaults applied, no run time yet.
    pub(crate) fn preview(&self, defaults: &JobDefaults) -> Job {
        Job {
            id: self.id.clone().unwrap_or_else(|| Arc::from("")),
            target: self.target.clone(),
            trigger: self.trigger.clone(),
            options: Options {
                name: self
                    .name
                    .as_deref()
                    .map_or_else(|| self.target.display_name_arc().clone(), Arc::from),
                executor: self.executor.clone(),
                misfire_grace_time: self
                    .misfire_grace_time
                    .unwrap_or(defaults.misfire_grace_time),
                coalesce: self.coalesce.unwrap_or(defaults.coalesce),
                max_instances: self.max_instances.unwrap_or(defaults.max_instances),
                timeout: self.timeout.unwrap_or(defaults.timeout),
                recover_lost_runs: self.recover_lost_runs,
                max_instances_across_nodes: self.max_instances_across_nodes,
                unknown_fields: None,
            }
            .shared(),
            next_run_time: RunTime::new(self.next_run_time.flatten()),
            revision: 0,
            run_request: None,
        }
    }
}

impl JobSpec {
    /// Applies `changes` to a job that is still pending (not yet in a store).
    pub(crate) fn apply(&mut self, changes: JobChanges) -> Result<()> {
        if let Some(name) = changes.name {
            self.name = Some(validate_name(name)?.to_string());
        }
        if let Some(target) = changes.target {
            target.validate()?;
            self.target = target;
        }
        if let Some(trigger) = changes.trigger {
            self.trigger = trigger;
        }
        if let Some(executor) = changes.executor {
            self.executor = executor.into();
        }
        if let Some(grace) = changes.misfire_grace_time {
            self.misfire_grace_time = Some(grace);
        }
        if let Some(coalesce) = changes.coalesce {
            self.coalesce = Some(coalesce);
        }
        if let Some(max) = changes.max_instances {
            self.max_instances = Some(max);
        }
        if let Some(timeout) = changes.timeout {
            self.timeout = Some(timeout);
        }
        if let Some(next) = changes.next_run_time {
            self.next_run_time = Some(next);
        }
        Ok(())
    }
}

/// Changes to apply to a stored job with [`modify_job`](crate::Scheduler::modify_job).
///
/// The id cannot change. Changing the trigger does not recompute the next run time; use
/// [`reschedule_job`](crate::Scheduler::reschedule_job) for that, as in APScheduler.
#[derive(Debug, Clone, Default)]
pub struct JobChanges {
    pub(crate) name: Option<String>,
    pub(crate) target: Option<JobTarget>,
    pub(crate) trigger: Option<Arc<dyn Trigger>>,
    pub(crate) executor: Option<String>,
    pub(crate) misfire_grace_time: Option<Option<Duration>>,
    pub(crate) coalesce: Option<bool>,
    pub(crate) max_instances: Option<u32>,
    pub(crate) timeout: Option<Option<Duration>>,
    pub(crate) next_run_time: Option<Option<DateTime<Utc>>>,
}

impl JobChanges {
    /// Gives a new trigger `timezone` wherever it has no zone of its own, as
    /// [`JobSpec::with_default_timezone`] does.
    pub(crate) fn with_default_timezone(mut self, timezone: Tz) -> Self {
        self.trigger = self
            .trigger
            .map(|trigger| with_default_timezone(trigger, timezone));
        self
    }

    /// No changes.
    pub fn new() -> Self {
        Self::default()
    }

    /// A new name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// A new target (function and arguments).
    pub fn target(mut self, target: JobTarget) -> Self {
        self.target = Some(target);
        self
    }

    /// A new trigger; the next run time stays as it is.
    pub fn trigger(mut self, trigger: impl Trigger) -> Self {
        self.trigger = Some(Arc::new(trigger));
        self
    }

    /// A new executor alias.
    pub fn executor(mut self, alias: impl Into<Arc<str>>) -> Self {
        self.executor = Some(alias.into().to_string());
        self
    }

    /// A new misfire grace time; `None` means no limit.
    pub fn misfire_grace_time(mut self, grace: Option<Duration>) -> Self {
        self.misfire_grace_time = Some(grace);
        self
    }

    /// A new coalesce setting.
    pub fn coalesce(mut self, coalesce: bool) -> Self {
        self.coalesce = Some(coalesce);
        self
    }

    /// A new instance limit.
    pub fn max_instances(mut self, max: u32) -> Self {
        self.max_instances = Some(max);
        self
    }

    /// A new run timeout; `None` means no limit.
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// A new next run time; `None` pauses the job.
    pub fn next_run_time(mut self, at: Option<DateTime<Utc>>) -> Self {
        self.next_run_time = Some(at);
        self
    }
}

/// `trigger` with `timezone` wherever it has no zone of its own.
pub(crate) fn with_default_timezone(trigger: Arc<dyn Trigger>, timezone: Tz) -> Arc<dyn Trigger> {
    trigger.with_default_timezone(timezone).unwrap_or(trigger)
}

/// The first fire time of `trigger` from `now`, with a trigger that gives up reported as a
/// [`TriggerFailed`](ErrorKind::TriggerFailed) error naming it.
pub(crate) fn first_fire_time(
    trigger: &dyn Trigger,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>> {
    trigger
        .next_fire_time(None, now)
        .map_err(|e| trigger_failed(trigger, "its first fire time", e))
}

/// A trigger could not answer `what`.
pub(crate) fn trigger_failed(trigger: &dyn Trigger, what: &str, error: SearchExhausted) -> Error {
    Error::new(
        ErrorKind::TriggerFailed,
        format!("trigger {trigger} could not answer {what}: {error}"),
    )
    .with_source(error)
}

/// The alias `"default"`, shared so that a million jobs on the default executor do not hold a
/// million copies of it.
fn default_alias() -> Arc<str> {
    static DEFAULT: std::sync::OnceLock<Arc<str>> = std::sync::OnceLock::new();
    DEFAULT.get_or_init(|| Arc::from("default")).clone()
}

fn validate_name(name: String) -> Result<Arc<str>> {
    if name.is_empty() {
        return Err(Error::invalid_job("a job's name must not be empty"));
    }
    Ok(name.into())
}

fn validate_grace(grace: Option<Duration>) -> Result<Option<Duration>> {
    match grace {
        Some(d) if d.is_zero() => Err(Error::invalid_job(
            "misfire_grace_time must be positive, or None for no limit",
        )),
        other => Ok(other),
    }
}

fn validate_timeout(timeout: Option<Duration>) -> Result<Option<Duration>> {
    match timeout {
        Some(d) if d.is_zero() => Err(Error::invalid_job(
            "timeout must be positive, or None for no limit",
        )),
        other => Ok(other),
    }
}

fn validate_max_instances(max: u32) -> Result<u32> {
    if max == 0 {
        return Err(Error::invalid_job("max_instances must be at least 1"));
    }
    Ok(max)
}

#[cfg(test)]
mod tests;

//! What happened: APScheduler's events, masks to pick them, and the bus that delivers them.
//!
//! Every subscriber, a listener callback or an [`EventStream`], has its own bounded queue,
//! with a [`Delivery`] it chooses: how many events the queue holds and what happens when it
//! is full (drop the oldest and say how many, or make the publisher wait). A listener runs
//! on a thread of its own, so a slow listener only delays itself; a stream is read at its
//! own pace. ARCHITECTURE.md ("Events") says why the default drops rather than waits.

mod bus;

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::error::{BoxError, Error};

pub(crate) use bus::on_listener_thread_of;
pub use bus::{Delivery, EventBus, EventStream, ListenerId, Overflow};

bitflags::bitflags! {
    /// A set of event kinds, with APScheduler 3.x's bit values (`EVENT_JOB_ADDED` = 512, ...).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct EventMask: u32 {
        /// The scheduler started.
        const SCHEDULER_STARTED = 1;
        /// The scheduler shut down.
        const SCHEDULER_SHUTDOWN = 1 << 1;
        /// The scheduler paused job processing.
        const SCHEDULER_PAUSED = 1 << 2;
        /// The scheduler resumed job processing.
        const SCHEDULER_RESUMED = 1 << 3;
        /// An executor was added.
        const EXECUTOR_ADDED = 1 << 4;
        /// An executor was removed.
        const EXECUTOR_REMOVED = 1 << 5;
        /// A job store was added.
        const JOBSTORE_ADDED = 1 << 6;
        /// A job store was removed.
        const JOBSTORE_REMOVED = 1 << 7;
        /// All jobs were removed from one store or from all.
        const ALL_JOBS_REMOVED = 1 << 8;
        /// A job was added to a store.
        const JOB_ADDED = 1 << 9;
        /// A job was removed from its store.
        const JOB_REMOVED = 1 << 10;
        /// A job was modified.
        const JOB_MODIFIED = 1 << 11;
        /// A run of a job finished successfully.
        const JOB_EXECUTED = 1 << 12;
        /// A run of a job failed or panicked.
        const JOB_ERROR = 1 << 13;
        /// A run of a job started too late (past its misfire grace time) and was skipped.
        const JOB_MISSED = 1 << 14;
        /// A job's due runs were handed to its executor.
        const JOB_SUBMITTED = 1 << 15;
        /// A job's due runs were dropped: it already ran `max_instances` times at once.
        const JOB_MAX_INSTANCES = 1 << 16;
        /// The scheduler could not handle a job as scheduled and set it aside (paused or
        /// skipped it, keeping it in its store) instead of dropping it. Not in APScheduler.
        const JOB_FAULT = 1 << 17;
        /// Something failed in the scheduler itself: a store that cannot be read, the loop
        /// stopping. Not in APScheduler.
        const SCHEDULER_ERROR = 1 << 18;
        /// A subscriber fell behind and lost events ([`Event::EventsLost`]); delivered to
        /// that subscriber whatever its mask. Not in APScheduler.
        const EVENTS_LOST = 1 << 19;
        /// A scheduler node sharing a store appeared ([`Event::NodeJoined`]). Not in
        /// APScheduler.
        const NODE_JOINED = 1 << 20;
        /// A scheduler node's heartbeat lapsed ([`Event::NodeLost`]). Not in APScheduler.
        const NODE_LOST = 1 << 21;
        /// A run lost with a dead node is run again here ([`Event::JobRecovered`]). Not in
        /// APScheduler.
        const JOB_RECOVERED = 1 << 22;
        /// Every event.
        const ALL = (1 << 23) - 1;
    }
}

/// Something that happened in the scheduler, with APScheduler 3.x's fields.
#[non_exhaustive]
#[derive(Debug, Clone)]
pub enum Event {
    /// The scheduler started (`EVENT_SCHEDULER_STARTED`).
    SchedulerStarted,
    /// The scheduler shut down (`EVENT_SCHEDULER_SHUTDOWN`).
    SchedulerShutdown,
    /// Job processing was paused (`EVENT_SCHEDULER_PAUSED`).
    SchedulerPaused,
    /// Job processing was resumed (`EVENT_SCHEDULER_RESUMED`).
    SchedulerResumed,
    /// An executor was added (`EVENT_EXECUTOR_ADDED`).
    ExecutorAdded {
        /// Its alias.
        alias: Arc<str>,
    },
    /// An executor was removed (`EVENT_EXECUTOR_REMOVED`).
    ExecutorRemoved {
        /// Its alias.
        alias: Arc<str>,
    },
    /// A job store was added (`EVENT_JOBSTORE_ADDED`).
    JobstoreAdded {
        /// Its alias.
        alias: Arc<str>,
    },
    /// A job store was removed (`EVENT_JOBSTORE_REMOVED`).
    JobstoreRemoved {
        /// Its alias.
        alias: Arc<str>,
    },
    /// All jobs were removed (`EVENT_ALL_JOBS_REMOVED`).
    AllJobsRemoved {
        /// The store emptied, or `None` when all stores were.
        jobstore: Option<Arc<str>>,
    },
    /// A job was added to a store (`EVENT_JOB_ADDED`).
    JobAdded(JobEvent),
    /// A job was removed (`EVENT_JOB_REMOVED`): by request, because its trigger finished, or
    /// because its executor does not exist.
    JobRemoved(JobEvent),
    /// A job was modified, paused, resumed or rescheduled (`EVENT_JOB_MODIFIED`).
    JobModified(JobEvent),
    /// A job's due runs were handed to its executor (`EVENT_JOB_SUBMITTED`).
    JobSubmitted(JobSubmissionEvent),
    /// A job's due runs were dropped because it already ran `max_instances` times
    /// (`EVENT_JOB_MAX_INSTANCES`).
    JobMaxInstances(JobSubmissionEvent),
    /// A run finished (`EVENT_JOB_EXECUTED`).
    JobExecuted(JobExecutionEvent),
    /// A run failed or panicked (`EVENT_JOB_ERROR`).
    JobError(JobExecutionEvent),
    /// A run started later than its misfire grace time allows and was skipped
    /// (`EVENT_JOB_MISSED`).
    JobMissed(JobExecutionEvent),
    /// The scheduler could not handle a job as scheduled and set it aside instead of dropping
    /// it; [`JobFaultEvent::action`] says what it did.
    JobFault(JobFaultEvent),
    /// Something failed in the scheduler itself, outside any one job.
    SchedulerError(SchedulerErrorEvent),
    /// This subscriber's queue was full and its `count` oldest events were dropped
    /// ([`Overflow::DropOldest`]). It comes in place of the lost events, before the ones
    /// that follow them, and only to the subscriber that lost them. Not in APScheduler.
    EventsLost {
        /// How many events were dropped.
        count: u64,
    },
    /// Another scheduler node sharing `jobstore` wrote its first heartbeat seen here (or
    /// was already there when this scheduler started). Not in APScheduler.
    NodeJoined(NodeEvent),
    /// A scheduler node sharing `jobstore` stopped writing its heartbeat for longer than the
    /// node timeout: it is taken for dead, and its recoverable runs in flight are run again by
    /// the node that removed it. Not in APScheduler.
    NodeLost(NodeLostEvent),
    /// A run of a job with [`recover_lost_runs`](crate::JobSpec::recover_lost_runs), in flight
    /// on a node that died, is run again here (before its outcome event). Not in APScheduler.
    JobRecovered(JobRecoveredEvent),
}

/// A scheduler node sharing a store.
#[derive(Debug, Clone)]
pub struct NodeEvent {
    /// The node's id.
    pub node: Arc<str>,
    /// The alias of the shared store.
    pub jobstore: Arc<str>,
}

/// A scheduler node's heartbeat lapsed.
#[derive(Debug, Clone)]
pub struct NodeLostEvent {
    /// The node's id.
    pub node: Arc<str>,
    /// The alias of the shared store.
    pub jobstore: Arc<str>,
    /// How many of its runs in flight this scheduler took over and runs again (0 on the nodes
    /// that did not remove it).
    pub runs_recovered: usize,
}

/// A run lost with a dead node, run again.
#[derive(Debug, Clone)]
pub struct JobRecoveredEvent {
    /// The job's id.
    pub job_id: Arc<str>,
    /// The alias of the job's store.
    pub jobstore: Arc<str>,
    /// The run time of the lost run (run again for that time).
    pub scheduled_run_time: DateTime<Utc>,
    /// The node it was in flight on.
    pub lost_node: Arc<str>,
}

impl Event {
    /// The event's kind as a one-bit mask (APScheduler's `event.code`).
    pub fn code(&self) -> EventMask {
        match self {
            Event::SchedulerStarted => EventMask::SCHEDULER_STARTED,
            Event::SchedulerShutdown => EventMask::SCHEDULER_SHUTDOWN,
            Event::SchedulerPaused => EventMask::SCHEDULER_PAUSED,
            Event::SchedulerResumed => EventMask::SCHEDULER_RESUMED,
            Event::NodeJoined(_) => EventMask::NODE_JOINED,
            Event::NodeLost(_) => EventMask::NODE_LOST,
            Event::JobRecovered(_) => EventMask::JOB_RECOVERED,
            Event::ExecutorAdded { .. } => EventMask::EXECUTOR_ADDED,
            Event::ExecutorRemoved { .. } => EventMask::EXECUTOR_REMOVED,
            Event::JobstoreAdded { .. } => EventMask::JOBSTORE_ADDED,
            Event::JobstoreRemoved { .. } => EventMask::JOBSTORE_REMOVED,
            Event::AllJobsRemoved { .. } => EventMask::ALL_JOBS_REMOVED,
            Event::JobAdded(_) => EventMask::JOB_ADDED,
            Event::JobRemoved(_) => EventMask::JOB_REMOVED,
            Event::JobModified(_) => EventMask::JOB_MODIFIED,
            Event::JobSubmitted(_) => EventMask::JOB_SUBMITTED,
            Event::JobMaxInstances(_) => EventMask::JOB_MAX_INSTANCES,
            Event::JobExecuted(_) => EventMask::JOB_EXECUTED,
            Event::JobError(_) => EventMask::JOB_ERROR,
            Event::JobMissed(_) => EventMask::JOB_MISSED,
            Event::JobFault(_) => EventMask::JOB_FAULT,
            Event::SchedulerError(_) => EventMask::SCHEDULER_ERROR,
            Event::EventsLost { .. } => EventMask::EVENTS_LOST,
        }
    }

    /// The id of the job the event is about, for job events.
    pub fn job_id(&self) -> Option<&str> {
        match self {
            Event::JobAdded(e) | Event::JobRemoved(e) | Event::JobModified(e) => Some(&e.job_id),
            Event::JobSubmitted(e) | Event::JobMaxInstances(e) => Some(&e.job_id),
            Event::JobExecuted(e) | Event::JobError(e) | Event::JobMissed(e) => Some(&e.job_id),
            Event::JobFault(e) => Some(&e.job_id),
            _ => None,
        }
    }

    /// The alias of the job store the event concerns (job events and `AllJobsRemoved`).
    pub fn jobstore(&self) -> Option<&str> {
        match self {
            Event::JobAdded(e) | Event::JobRemoved(e) | Event::JobModified(e) => Some(&e.jobstore),
            Event::JobSubmitted(e) | Event::JobMaxInstances(e) => Some(&e.jobstore),
            Event::JobExecuted(e) | Event::JobError(e) | Event::JobMissed(e) => Some(&e.jobstore),
            Event::AllJobsRemoved { jobstore } => jobstore.as_deref(),
            Event::JobstoreAdded { alias } | Event::JobstoreRemoved { alias } => Some(alias),
            Event::JobFault(e) => Some(&e.jobstore),
            Event::SchedulerError(e) => e.jobstore.as_deref(),
            _ => None,
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::SchedulerStarted => f.write_str("scheduler started"),
            Event::SchedulerShutdown => f.write_str("scheduler shut down"),
            Event::SchedulerPaused => f.write_str("scheduler paused"),
            Event::SchedulerResumed => f.write_str("scheduler resumed"),
            Event::ExecutorAdded { alias } => write!(f, "executor {alias:?} added"),
            Event::ExecutorRemoved { alias } => write!(f, "executor {alias:?} removed"),
            Event::JobstoreAdded { alias } => write!(f, "job store {alias:?} added"),
            Event::JobstoreRemoved { alias } => write!(f, "job store {alias:?} removed"),
            Event::AllJobsRemoved { jobstore: Some(s) } => write!(f, "all jobs removed from {s:?}"),
            Event::AllJobsRemoved { jobstore: None } => f.write_str("all jobs removed"),
            Event::JobAdded(e) => write!(f, "job {:?} added to {:?}", e.job_id, e.jobstore),
            Event::JobRemoved(e) => write!(f, "job {:?} removed from {:?}", e.job_id, e.jobstore),
            Event::JobModified(e) => write!(f, "job {:?} modified", e.job_id),
            Event::JobSubmitted(e) => write!(
                f,
                "job {:?} submitted for {} run time(s)",
                e.job_id,
                e.scheduled_run_times.len()
            ),
            Event::JobMaxInstances(e) => write!(
                f,
                "job {:?} skipped: maximum number of running instances reached",
                e.job_id
            ),
            Event::JobExecuted(e) => write!(
                f,
                "job {:?} (scheduled at {}) executed successfully",
                e.job_id, e.scheduled_run_time
            ),
            Event::JobError(e) => write!(
                f,
                "job {:?} (scheduled at {}) failed: {}",
                e.job_id,
                e.scheduled_run_time,
                e.error
                    .as_ref()
                    .map_or(String::new(), |err| err.to_string())
            ),
            Event::JobMissed(e) => match &e.missed_runs {
                Some(missed) => write!(
                    f,
                    "{} runs of job {:?} from {} to {} were missed",
                    missed.count, e.job_id, missed.first, missed.last
                ),
                None => write!(
                    f,
                    "run of job {:?} at {} was missed",
                    e.job_id, e.scheduled_run_time
                ),
            },
            Event::JobFault(e) => write!(
                f,
                "job {:?} in {:?} {}: {}",
                e.job_id, e.jobstore, e.action, e.error
            ),
            Event::SchedulerError(e) => match &e.jobstore {
                Some(store) => write!(f, "scheduler error in job store {store:?}: {}", e.error),
                None => write!(f, "scheduler error: {}", e.error),
            },
            Event::EventsLost { count } => {
                write!(f, "{count} event(s) lost: this subscriber fell behind")
            }
            Event::NodeJoined(e) => {
                write!(f, "node {:?} joined job store {:?}", e.node, e.jobstore)
            }
            Event::NodeLost(e) => write!(
                f,
                "node {:?} of job store {:?} was lost; {} of its runs recovered here",
                e.node, e.jobstore, e.runs_recovered
            ),
            Event::JobRecovered(e) => write!(
                f,
                "run of job {:?} at {} lost with node {:?} is run again",
                e.job_id, e.scheduled_run_time, e.lost_node
            ),
        }
    }
}

/// A job was added, removed or modified.
#[derive(Debug, Clone)]
pub struct JobEvent {
    /// The job's id.
    pub job_id: Arc<str>,
    /// The alias of the job's store.
    pub jobstore: Arc<str>,
}

/// A job's due runs were submitted or dropped.
#[derive(Debug, Clone)]
pub struct JobSubmissionEvent {
    /// The job's id.
    pub job_id: Arc<str>,
    /// The alias of the job's store.
    pub jobstore: Arc<str>,
    /// The run times handed over (or dropped), earliest first.
    pub scheduled_run_times: Arc<[DateTime<Utc>]>,
}

/// A run of a job finished, failed or was missed.
#[derive(Debug, Clone)]
pub struct JobExecutionEvent {
    /// The job's id.
    pub job_id: Arc<str>,
    /// The alias of the job's store.
    pub jobstore: Arc<str>,
    /// The run time this run was for.
    pub scheduled_run_time: DateTime<Utc>,
    /// The job function's return value as JSON (`JobExecuted` only; `Null` otherwise).
    pub retval: serde_json::Value,
    /// What went wrong (`JobError` only).
    pub error: Option<JobFailure>,
    /// For a `JobMissed` that stands for many run times at once (a catch-up with more missed
    /// runs than the scheduler's `catch_up_limit`): how many, from `scheduled_run_time` (the
    /// first) to [`MissedRuns::last`]. `None` for a single run.
    pub missed_runs: Option<MissedRuns>,
}

/// Run times of one job missed all at once, reported in one [`Event::JobMissed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MissedRuns {
    /// How many run times were missed.
    pub count: u64,
    /// The first of them (also the event's `scheduled_run_time`).
    pub first: DateTime<Utc>,
    /// The last of them.
    pub last: DateTime<Utc>,
}

/// What the scheduler did with a job it could not handle as scheduled.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultAction {
    /// The job was paused (no next run time) and kept in its store for an operator, for
    /// example because its trigger failed to answer.
    Paused,
    /// The job was left in its store untouched and is skipped by this scheduler until it
    /// changes, for example because its record cannot be read here.
    Skipped,
    /// The job's fire was committed but its runs could not be handed to an executor; those
    /// runs did not happen. The job itself keeps its schedule.
    RunsLost,
}

impl fmt::Display for FaultAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FaultAction::Paused => "paused and kept",
            FaultAction::Skipped => "skipped and kept",
            FaultAction::RunsLost => "lost its due runs",
        })
    }
}

/// The scheduler set a job aside instead of running or dropping it.
#[derive(Debug, Clone)]
pub struct JobFaultEvent {
    /// The job's id.
    pub job_id: Arc<str>,
    /// The alias of the job's store.
    pub jobstore: Arc<str>,
    /// What the scheduler did with the job.
    pub action: FaultAction,
    /// Why.
    pub error: Arc<Error>,
}

/// Something failed in the scheduler, outside any one job.
#[derive(Debug, Clone)]
pub struct SchedulerErrorEvent {
    /// The store concerned, if the failure was a store's.
    pub jobstore: Option<Arc<str>>,
    /// What failed.
    pub error: Arc<Error>,
}

/// Why a run failed: the error the function returned, its panic, its time limit, the worker
/// that died under it, or the executor that refused it.
#[derive(Debug, Clone)]
pub struct JobFailure {
    error: Arc<dyn std::error::Error + Send + Sync>,
    kind: FailureKind,
}

/// What kind of failure a [`JobFailure`] is, for listeners that treat them differently (a
/// timeout is not the job's own error).
///
/// New kinds may be added; match with a wildcard arm.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// The job function returned an error.
    Error,
    /// The job function panicked.
    Panic,
    /// The run took longer than the job's [`timeout`](crate::Job::timeout); its error is an
    /// [`Error`] of kind [`JobTimedOut`](crate::ErrorKind::JobTimedOut). Not in APScheduler.
    TimedOut,
    /// The process or worker running the job went away (crashed, was killed, lost its
    /// connection) before answering; the error says what happened.
    WorkerLost,
    /// The run never started: the executor refused it after its fire was committed (shut
    /// down, queue full, no worker could be started).
    Refused,
}

impl FailureKind {
    /// A short lowercase name of the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Error => "error",
            FailureKind::Panic => "panic",
            FailureKind::TimedOut => "timed out",
            FailureKind::WorkerLost => "worker lost",
            FailureKind::Refused => "refused",
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl JobFailure {
    /// A failure from an error the function returned.
    pub fn from_error(error: BoxError) -> Self {
        JobFailure {
            error: Arc::from(error),
            kind: FailureKind::Error,
        }
    }

    /// A failure from a panic, with its message.
    pub fn from_panic(payload: &(dyn std::any::Any + Send)) -> Self {
        Self::from_panic_message(panic_message(payload))
    }

    /// A failure from a panic whose message is known (a panic in another process).
    pub fn from_panic_message(message: impl Into<String>) -> Self {
        JobFailure {
            error: Arc::new(PanicError(message.into())),
            kind: FailureKind::Panic,
        }
    }

    /// A failure of `kind` whose error is `error`.
    pub fn new(kind: FailureKind, error: impl Into<BoxError>) -> Self {
        JobFailure {
            error: Arc::from(error.into()),
            kind,
        }
    }

    /// The run of job `job_id` did not finish within `limit`.
    pub fn timed_out(job_id: &str, limit: std::time::Duration) -> Self {
        Self::new(FailureKind::TimedOut, Error::job_timed_out(job_id, limit))
    }

    /// An error returned in another process, rebuilt from its message and the messages of
    /// its sources (outermost first), so [`chain`](Self::chain) reads as it did there.
    pub fn from_messages(message: impl Into<String>, causes: &[String]) -> Self {
        let mut source: Option<RemoteError> = None;
        for cause in causes.iter().rev() {
            source = Some(RemoteError {
                message: cause.clone(),
                source: source.map(Box::new),
            });
        }
        Self::from_error(Box::new(RemoteError {
            message: message.into(),
            source: source.map(Box::new),
        }))
    }

    /// The error.
    pub fn error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.error
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> FailureKind {
        self.kind
    }

    /// Whether the job panicked (rather than returned an error).
    pub fn panicked(&self) -> bool {
        self.kind == FailureKind::Panic
    }

    /// The messages of the error's sources, outermost first (without the error's own).
    pub fn causes(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut source = self.error.source();
        while let Some(err) = source {
            out.push(err.to_string());
            source = err.source();
        }
        out
    }

    /// The error followed by its chain of sources, one per line (APScheduler's `traceback`).
    pub fn chain(&self) -> String {
        let mut out = self.error.to_string();
        for cause in self.causes() {
            out.push_str("\ncaused by: ");
            out.push_str(&cause);
        }
        out
    }
}

impl fmt::Display for JobFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

/// The message of a panic payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_owned()
    }
}

#[derive(Debug)]
struct PanicError(String);

impl fmt::Display for PanicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the job panicked: {}", self.0)
    }
}

impl std::error::Error for PanicError {}

/// An error that happened in another process, known by its messages.
#[derive(Debug)]
struct RemoteError {
    message: String,
    source: Option<Box<RemoteError>>,
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RemoteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn added(id: &str) -> Event {
        Event::JobAdded(JobEvent {
            job_id: id.into(),
            jobstore: "default".into(),
        })
    }

    #[test]
    fn masks_have_apscheduler_bits() {
        assert_eq!(EventMask::JOB_ADDED.bits(), 512);
        assert_eq!(EventMask::JOB_MAX_INSTANCES.bits(), 65536);
        assert_eq!(EventMask::ALL.bits(), (1 << 23) - 1);
        // APScheduler's EVENT_ALL is every bit below JOB_FAULT.
        assert_eq!((EventMask::JOB_FAULT.bits() - 1), 131_071);
        assert_eq!(added("x").code(), EventMask::JOB_ADDED);
        assert_eq!(
            Event::EventsLost { count: 3 }.code(),
            EventMask::EVENTS_LOST
        );
    }
}

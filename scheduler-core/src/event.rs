//! What happened: APScheduler's events, masks to pick them, and the bus that delivers them.
//!
//! Delivery is lossless and never blocks the publisher: every subscriber has its own unbounded
//! queue. A listener callback runs on its own thread, so a slow listener only delays itself; a
//! stream subscriber reads at its own pace. The price of never dropping an event is memory: a
//! subscriber that stops reading lets its queue grow, so drop streams you no longer read.

use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};

use chrono::{DateTime, Utc};

use crate::error::{BoxError, Error};

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
        /// Every event.
        const ALL = (1 << 19) - 1;
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
}

impl Event {
    /// The event's kind as a one-bit mask (APScheduler's `event.code`).
    pub fn code(&self) -> EventMask {
        match self {
            Event::SchedulerStarted => EventMask::SCHEDULER_STARTED,
            Event::SchedulerShutdown => EventMask::SCHEDULER_SHUTDOWN,
            Event::SchedulerPaused => EventMask::SCHEDULER_PAUSED,
            Event::SchedulerResumed => EventMask::SCHEDULER_RESUMED,
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

/// Why a run failed: the error the function returned, or its panic.
#[derive(Debug, Clone)]
pub struct JobFailure {
    error: Arc<dyn std::error::Error + Send + Sync>,
    panicked: bool,
}

impl JobFailure {
    /// A failure from an error the function returned.
    pub fn from_error(error: BoxError) -> Self {
        JobFailure {
            error: Arc::from(error),
            panicked: false,
        }
    }

    /// A failure from a panic, with its message.
    pub fn from_panic(payload: &(dyn std::any::Any + Send)) -> Self {
        let message = if let Some(s) = payload.downcast_ref::<&str>() {
            (*s).to_owned()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "a panic with a non-string payload".to_owned()
        };
        JobFailure {
            error: Arc::new(PanicError(message)),
            panicked: true,
        }
    }

    /// The error.
    pub fn error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.error
    }

    /// Whether the job panicked (rather than returned an error).
    pub fn panicked(&self) -> bool {
        self.panicked
    }

    /// The error followed by its chain of sources, one per line (APScheduler's `traceback`).
    pub fn chain(&self) -> String {
        let mut out = self.error.to_string();
        let mut source = self.error.source();
        while let Some(err) = source {
            out.push_str("\ncaused by: ");
            out.push_str(&err.to_string());
            source = err.source();
        }
        out
    }
}

impl fmt::Display for JobFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
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

/// Identifies a listener added with [`EventBus::add_listener`], to remove it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ListenerId(u64);

enum Sink {
    Stream(tokio::sync::mpsc::UnboundedSender<Event>),
    Listener(std::sync::mpsc::Sender<Event>),
}

struct Subscriber {
    id: u64,
    mask: EventMask,
    sink: Sink,
}

impl Subscriber {
    /// Queues `event`; `false` when the receiving side is gone.
    fn deliver(&self, event: &Event) -> bool {
        match &self.sink {
            Sink::Stream(tx) => tx.send(event.clone()).is_ok(),
            Sink::Listener(tx) => tx.send(event.clone()).is_ok(),
        }
    }
}

#[derive(Default)]
struct BusInner {
    subscribers: RwLock<Vec<Subscriber>>,
    /// The union of all subscribers' masks, so publishing an event nobody wants costs one load.
    wanted: AtomicU32,
    next_id: AtomicU64,
}

/// Delivers events to listeners and streams; cloning shares the bus.
#[derive(Clone, Default)]
pub struct EventBus {
    inner: Arc<BusInner>,
}

impl EventBus {
    /// A bus without subscribers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether any subscriber wants events of `code`: lets publishers skip building events
    /// nobody reads.
    pub fn wants(&self, code: EventMask) -> bool {
        EventMask::from_bits_retain(self.inner.wanted.load(Ordering::Acquire)).intersects(code)
    }

    /// Delivers `event` to every subscriber whose mask includes it. Never blocks.
    pub fn publish(&self, event: Event) {
        let code = event.code();
        if !self.wants(code) {
            return;
        }
        let mut gone = false;
        {
            let subscribers = self.read();
            for sub in subscribers.iter().filter(|s| s.mask.intersects(code)) {
                gone |= !sub.deliver(&event);
            }
        }
        if gone {
            self.prune();
        }
    }

    /// A stream of the events in `mask`, from now on, in the order they were published.
    pub fn subscribe(&self, mask: EventMask) -> EventStream {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        self.add(mask, Sink::Stream(tx));
        EventStream { rx }
    }

    /// Calls `listener` with every event in `mask`, on a thread of its own.
    ///
    /// A listener that panics is logged and keeps receiving later events, as in APScheduler.
    pub fn add_listener<F>(&self, listener: F, mask: EventMask) -> ListenerId
    where
        F: Fn(&Event) + Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::channel::<Event>();
        let id = self.add(mask, Sink::Listener(tx));
        let spawned = std::thread::Builder::new()
            .name(format!("scheduler-listener-{id}"))
            .spawn(move || {
                for event in rx {
                    let call = std::panic::AssertUnwindSafe(|| listener(&event));
                    if std::panic::catch_unwind(call).is_err() {
                        tracing::error!(listener = id, %event, "event listener panicked");
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start a thread for an event listener");
            self.remove(id);
        }
        ListenerId(id)
    }

    /// Stops delivering to a listener; events already queued for it are still delivered.
    /// Answers whether it was registered.
    pub fn remove_listener(&self, id: ListenerId) -> bool {
        self.remove(id.0)
    }

    fn add(&self, mask: EventMask, sink: Sink) -> u64 {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let mut subscribers = self.write();
        subscribers.push(Subscriber { id, mask, sink });
        self.refresh_wanted(&subscribers);
        id
    }

    fn remove(&self, id: u64) -> bool {
        let mut subscribers = self.write();
        let before = subscribers.len();
        subscribers.retain(|s| s.id != id);
        self.refresh_wanted(&subscribers);
        subscribers.len() != before
    }

    fn prune(&self) {
        let mut subscribers = self.write();
        subscribers.retain(|s| match &s.sink {
            Sink::Stream(tx) => !tx.is_closed(),
            // A listener thread only ends when its sender is dropped here.
            Sink::Listener(_) => true,
        });
        self.refresh_wanted(&subscribers);
    }

    fn refresh_wanted(&self, subscribers: &[Subscriber]) {
        let wanted = subscribers
            .iter()
            .fold(EventMask::empty(), |acc, s| acc | s.mask);
        self.inner.wanted.store(wanted.bits(), Ordering::Release);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<Subscriber>> {
        // Sends cannot panic halfway through changing the list, so a poisoned lock is sound.
        self.inner
            .subscribers
            .read()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Vec<Subscriber>> {
        self.inner
            .subscribers
            .write()
            .unwrap_or_else(|p| p.into_inner())
    }
}

impl fmt::Debug for EventBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventBus")
            .field("subscribers", &self.read().len())
            .field(
                "wanted",
                &EventMask::from_bits_retain(self.inner.wanted.load(Ordering::Relaxed)),
            )
            .finish()
    }
}

/// Events from [`EventBus::subscribe`]: `recv().await` them or use it as a `Stream`.
#[derive(Debug)]
pub struct EventStream {
    rx: tokio::sync::mpsc::UnboundedReceiver<Event>,
}

impl EventStream {
    /// The next event; `None` once the bus is gone.
    pub async fn recv(&mut self) -> Option<Event> {
        self.rx.recv().await
    }

    /// The next event if one is queued, without waiting.
    pub fn try_recv(&mut self) -> Option<Event> {
        self.rx.try_recv().ok()
    }
}

impl futures_core::Stream for EventStream {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.rx.poll_recv(cx)
    }
}

/// Events collected by a listener, for tests and examples.
#[derive(Debug, Clone, Default)]
pub struct EventLog(Arc<Mutex<Vec<Event>>>);

impl EventLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends an event.
    pub fn push(&self, event: &Event) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(event.clone());
    }

    /// A copy of the events so far.
    pub fn events(&self) -> Vec<Event> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
        assert_eq!(EventMask::ALL.bits(), (1 << 19) - 1);
        // APScheduler's EVENT_ALL is every bit below JOB_FAULT.
        assert_eq!((EventMask::JOB_FAULT.bits() - 1), 131_071);
        assert_eq!(added("x").code(), EventMask::JOB_ADDED);
    }

    #[tokio::test]
    async fn streams_get_only_their_mask_and_every_event() {
        let bus = EventBus::new();
        let mut jobs = bus.subscribe(EventMask::JOB_ADDED);
        let mut started = bus.subscribe(EventMask::SCHEDULER_STARTED);
        for i in 0..100_000 {
            bus.publish(added(&i.to_string()));
        }
        bus.publish(Event::SchedulerStarted);
        for i in 0..100_000 {
            assert_eq!(
                jobs.recv().await.unwrap().job_id(),
                Some(i.to_string().as_str())
            );
        }
        assert!(jobs.try_recv().is_none());
        assert!(matches!(
            started.recv().await,
            Some(Event::SchedulerStarted)
        ));
    }

    #[test]
    fn a_slow_listener_does_not_block_the_publisher_or_lose_events() {
        let bus = EventBus::new();
        let log = EventLog::new();
        let (gate_tx, gate_rx) = std::sync::mpsc::channel::<()>();
        let gate = Mutex::new(gate_rx);
        let sink = log.clone();
        bus.add_listener(
            move |e| {
                // Held until the publisher has finished: the listener is "slow".
                let _ = gate.lock().unwrap().recv_timeout(Duration::from_secs(10));
                sink.push(e);
            },
            EventMask::ALL,
        );
        for i in 0..1000 {
            bus.publish(added(&i.to_string()));
        }
        // All 1000 publishes returned while the listener was still stuck on the first event.
        assert!(log.events().is_empty());
        for _ in 0..1000 {
            gate_tx.send(()).unwrap();
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while log.events().len() < 1000 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let ids: Vec<String> = log
            .events()
            .iter()
            .map(|e| e.job_id().unwrap().to_owned())
            .collect();
        assert_eq!(ids, (0..1000).map(|i| i.to_string()).collect::<Vec<_>>());
    }

    #[test]
    fn a_panicking_listener_keeps_receiving() {
        let bus = EventBus::new();
        let log = EventLog::new();
        let sink = log.clone();
        bus.add_listener(
            move |e| {
                sink.push(e);
                if e.job_id() == Some("boom") {
                    panic!("listener bug");
                }
            },
            EventMask::JOB_ADDED,
        );
        bus.publish(added("boom"));
        bus.publish(added("after"));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while log.events().len() < 2 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(log.events().len(), 2);
    }

    #[test]
    fn removed_listeners_and_dropped_streams_stop_being_wanted() {
        let bus = EventBus::new();
        assert!(!bus.wants(EventMask::JOB_ADDED));
        let id = bus.add_listener(|_| {}, EventMask::JOB_ADDED);
        assert!(bus.wants(EventMask::JOB_ADDED));
        assert!(bus.remove_listener(id));
        assert!(!bus.remove_listener(id));
        assert!(!bus.wants(EventMask::JOB_ADDED));

        let stream = bus.subscribe(EventMask::JOB_REMOVED);
        assert!(bus.wants(EventMask::JOB_REMOVED));
        drop(stream);
        bus.publish(Event::JobRemoved(JobEvent {
            job_id: "x".into(),
            jobstore: "default".into(),
        }));
        assert!(!bus.wants(EventMask::JOB_REMOVED));
    }
}

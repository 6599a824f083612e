//! A scheduler on a manual clock, the memory store and the tokio executor, with helpers to
//! await events.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use scheduler_core::testkit::{ManualClock, StepTrigger};
use scheduler_core::{
    Capabilities, Event, EventMask, EventStream, FireAnswers, FireCommit, Job, JobFunction,
    JobRegistry, JobSpec, JobStore, Result, Scheduler, SchedulerBuilder, StoreContext, Trigger,
    TriggerState,
};

/// The instant every test starts at.
pub(crate) fn t(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_225_600 + secs, 0).unwrap()
}

/// Fires once at the given instant (a minimal date trigger).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Once(pub(crate) DateTime<Utc>);

impl fmt::Display for Once {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "date[{}]", self.0.format("%Y-%m-%d %H:%M:%S UTC"))
    }
}

impl Trigger for Once {
    fn next_fire_time(
        &self,
        previous: Option<DateTime<Utc>>,
        _now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, scheduler_core::SearchExhausted> {
        Ok(previous.is_none().then_some(self.0))
    }

    fn to_state(&self) -> Result<TriggerState> {
        TriggerState::new("once", self)
    }
}

/// Fires at `start`, then every `secs` seconds.
pub(crate) fn every(secs: i64, start: DateTime<Utc>) -> StepTrigger {
    StepTrigger {
        start,
        step_secs: secs,
    }
}

/// What the registered test functions saw.
#[derive(Debug, Clone, Default)]
pub(crate) struct Calls(Arc<Mutex<Vec<String>>>);

impl Calls {
    pub(crate) fn push(&self, s: String) {
        self.0.lock().unwrap().push(s);
    }

    pub(crate) fn get(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

pub(crate) struct Harness {
    pub(crate) clock: ManualClock,
    pub(crate) scheduler: Scheduler,
    pub(crate) events: EventStream,
    pub(crate) calls: Calls,
    /// Records its argument and returns it.
    pub(crate) record: JobFunction<String>,
    /// Fails with its argument as the error message.
    pub(crate) fail: JobFunction<String>,
    /// Panics with its argument.
    pub(crate) panic: JobFunction<String>,
    /// Waits until `gate` is opened, then records its argument.
    pub(crate) wait: JobFunction<String>,
    pub(crate) gate: Arc<tokio::sync::Semaphore>,
}

pub(crate) fn functions(
    calls: &Calls,
    gate: &Arc<tokio::sync::Semaphore>,
) -> (JobRegistry, [JobFunction<String>; 4]) {
    let registry = JobRegistry::new();
    let c = calls.clone();
    let record = registry.register_sync("record", move |s: String| {
        c.push(s.clone());
        Ok::<_, std::convert::Infallible>(s)
    });
    let fail = registry.register_sync("fail", |s: String| Err::<(), _>(s));
    let panic = registry.register_sync("panic", |s: String| -> () { panic!("{s}") });
    let (c, g) = (calls.clone(), gate.clone());
    let wait = registry.register_async("wait", move |s: String| {
        let (c, g) = (c.clone(), g.clone());
        async move {
            let _permit = g.acquire().await.expect("the gate stays open");
            c.push(s);
        }
    });
    (registry, [record, fail, panic, wait])
}

impl Harness {
    pub(crate) fn new() -> Self {
        Self::with(|b| b)
    }

    /// A harness whose builder is adjusted by `configure` before building.
    pub(crate) fn with(configure: impl FnOnce(SchedulerBuilder) -> SchedulerBuilder) -> Self {
        Self::with_default_store(jobstore_memory::MemoryJobStore::new(), configure)
    }

    /// A harness with `store` as its `"default"` store.
    pub(crate) fn with_default_store(
        store: impl JobStore,
        configure: impl FnOnce(SchedulerBuilder) -> SchedulerBuilder,
    ) -> Self {
        let clock = ManualClock::new(t(0));
        let calls = Calls::default();
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let (registry, [record, fail, panic, wait]) = functions(&calls, &gate);
        let builder = Scheduler::builder()
            .clock(clock.clone())
            .timezone(chrono_tz::UTC)
            .registry(registry)
            .jobstore("default", store)
            .executor("default", executors::TokioExecutor::new());
        let scheduler = configure(builder)
            .build()
            .expect("the test scheduler builds");
        let events = scheduler.subscribe(EventMask::ALL);
        Harness {
            clock,
            scheduler,
            events,
            calls,
            record,
            fail,
            panic,
            wait,
            gate,
        }
    }

    pub(crate) fn record_job(&self, arg: &str, trigger: impl Trigger) -> JobSpec {
        JobSpec::new(self.record.call(arg.to_owned()), trigger).id(arg)
    }

    /// Moves the manual clock to `t(secs)`.
    pub(crate) fn set_time(&self, secs: i64) {
        self.clock.set(t(secs));
    }

    /// The next event in `mask`, skipping others; fails the test after 10 s.
    pub(crate) async fn next(&mut self, mask: EventMask) -> Event {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(e)) if e.code().intersects(mask) => return e,
                Ok(Some(_)) => continue,
                Ok(None) => panic!("event bus closed while waiting for {mask:?}"),
                Err(_) => panic!("no {mask:?} event within 10 s"),
            }
        }
    }

    /// The next `n` events in `mask`.
    pub(crate) async fn next_n(&mut self, mask: EventMask, n: usize) -> Vec<Event> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.next(mask).await);
        }
        out
    }

    /// Asserts that no event in `mask` arrives within a short while.
    pub(crate) async fn assert_quiet(&mut self, mask: EventMask) {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
        while let Ok(Some(e)) = tokio::time::timeout_at(deadline, self.events.recv()).await {
            assert!(!e.code().intersects(mask), "unexpected event: {e}");
        }
    }

    /// Codes of every event received until none arrives for a short while.
    pub(crate) async fn drain(&mut self) -> Vec<EventMask> {
        let mut codes = Vec::new();
        while let Ok(Some(e)) =
            tokio::time::timeout(Duration::from_millis(300), self.events.recv()).await
        {
            codes.push(e.code());
        }
        codes
    }
}

/// The run time of an execution event.
pub(crate) fn run_time(e: &Event) -> DateTime<Utc> {
    match e {
        Event::JobExecuted(x) | Event::JobError(x) | Event::JobMissed(x) => x.scheduled_run_time,
        other => panic!("not an execution event: {other}"),
    }
}

/// The run times of a submission event.
pub(crate) fn run_times(e: &Event) -> Vec<DateTime<Utc>> {
    match e {
        Event::JobSubmitted(x) | Event::JobMaxInstances(x) => x.scheduled_run_times.to_vec(),
        other => panic!("not a submission event: {other}"),
    }
}

pub(crate) fn secs(n: i64) -> TimeDelta {
    TimeDelta::seconds(n)
}

/// The memory store with test hooks: reads that fail while `failing` is set, a slow start, a
/// slow add of one job, slow commits, a count of starts, a panic. Clones share the jobs and
/// the switches.
#[derive(Debug, Clone, Default)]
pub(crate) struct InstrumentedStore {
    pub(crate) inner: jobstore_memory::MemoryJobStore,
    /// While set, `start`, `get_due_jobs` and `get_next_run_time` fail as a lost connection
    /// would.
    pub(crate) failing: Arc<std::sync::atomic::AtomicBool>,
    /// While set, `get_due_jobs` panics (a bug in a store).
    pub(crate) panicking: Arc<std::sync::atomic::AtomicBool>,
    /// How many times the store was started.
    pub(crate) starts: Arc<std::sync::atomic::AtomicUsize>,
    pub(crate) start_delay: Duration,
    /// Adding the job with this id takes this long.
    pub(crate) slow_add: Option<(&'static str, Duration)>,
    /// While set, `get_due_jobs` never answers (a hung server).
    pub(crate) hanging: Arc<std::sync::atomic::AtomicBool>,
    /// How many times `get_due_jobs` was called (a loop that spins calls it without end).
    pub(crate) due_calls: Arc<std::sync::atomic::AtomicUsize>,
    /// How many of the next `update_job` calls fail with `Conflict`, as if another process
    /// had written the job just before.
    pub(crate) conflicts: Arc<std::sync::atomic::AtomicUsize>,
    /// `commit_fires` leaves out its answer for the job with this id (a buggy store).
    pub(crate) unanswered: Option<&'static str>,
    /// The ids of each `commit_fires` call, in the order committed.
    pub(crate) commits: Arc<Mutex<Vec<Vec<String>>>>,
    /// Each fire of a `commit_fires` call takes this long (a slow server).
    pub(crate) commit_delay: Duration,
}

impl InstrumentedStore {
    fn check(&self) -> Result<()> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            let down = std::io::Error::other("down");
            return Err(scheduler_core::Error::backend("connection refused", down).set_temporary());
        }
        Ok(())
    }
}

impl JobStore for InstrumentedStore {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn start(&self, ctx: StoreContext) -> Result<()> {
        self.starts
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        tokio::time::sleep(self.start_delay).await;
        self.check()?;
        self.inner.start(ctx).await
    }
    async fn shutdown(&self) -> Result<()> {
        self.inner.shutdown().await
    }
    async fn lookup_job(&self, id: &str) -> Result<Option<Job>> {
        self.inner.lookup_job(id).await
    }
    async fn get_due_jobs(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Job>> {
        self.due_calls
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.check()?;
        if self.hanging.load(std::sync::atomic::Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        if self.panicking.load(std::sync::atomic::Ordering::SeqCst) {
            panic!("a bug in the store");
        }
        self.inner.get_due_jobs(now, limit).await
    }
    async fn get_next_run_time(&self) -> Result<Option<DateTime<Utc>>> {
        self.check()?;
        self.inner.get_next_run_time().await
    }
    async fn get_all_jobs(&self) -> Result<Vec<Job>> {
        self.inner.get_all_jobs().await
    }
    async fn add_job(&self, job: Job) -> Result<u64> {
        if let Some((_, delay)) = self.slow_add.filter(|(id, _)| *id == job.id()) {
            tokio::time::sleep(delay).await;
        }
        self.inner.add_job(job).await
    }
    async fn upsert_job(&self, job: Job) -> Result<u64> {
        self.inner.upsert_job(job).await
    }
    async fn update_job(&self, job: Job) -> Result<u64> {
        let conflict = self
            .conflicts
            .fetch_update(
                std::sync::atomic::Ordering::SeqCst,
                std::sync::atomic::Ordering::SeqCst,
                |n| n.checked_sub(1),
            )
            .is_ok();
        if conflict {
            return Err(scheduler_core::Error::conflict(job.id()));
        }
        self.inner.update_job(job).await
    }
    async fn remove_job(&self, id: &str) -> Result<()> {
        self.inner.remove_job(id).await
    }
    async fn remove_all_jobs(&self) -> Result<()> {
        self.inner.remove_all_jobs().await
    }
    async fn commit_fires(&self, commits: &[FireCommit]) -> Result<FireAnswers> {
        let ids = commits.iter().map(|c| c.job_id.to_string()).collect();
        self.commits.lock().expect("not poisoned").push(ids);
        tokio::time::sleep(self.commit_delay * commits.len() as u32).await;
        let answers = self.inner.commit_fires(commits).await?;
        Ok(answers
            .iter()
            .filter(|(id, _)| Some(*id) != self.unanswered)
            .map(|(id, answer)| (id.to_owned(), answer))
            .collect())
    }
    fn skip_until_changed(&self, id: &str, revision: u64) {
        self.inner.skip_until_changed(id, revision);
    }
    fn clear_skipped(&self) {
        self.inner.clear_skipped();
    }
}

/// A background scheduler on a memory store and a thread pool of 2, driven by `clock`, and
/// the `JobExecuted` events it publishes.
pub(crate) fn background_on_thread_pool(
    registry: JobRegistry,
    clock: &ManualClock,
) -> (
    scheduler_core::BackgroundScheduler,
    std::sync::mpsc::Receiver<Event>,
) {
    let scheduler = scheduler_core::BackgroundScheduler::new(
        Scheduler::builder()
            .clock(clock.clone())
            .registry(registry)
            .jobstore("default", jobstore_memory::MemoryJobStore::new())
            .executor("default", executors::ThreadPoolExecutor::new(2).unwrap()),
    )
    .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    scheduler.add_listener(
        move |e| {
            let _ = tx.send(e.clone());
        },
        EventMask::JOB_EXECUTED,
    );
    (scheduler, rx)
}

//! Where jobs are kept: the [`JobStore`] contract, its object-safe mirror [`DynJobStore`], and
//! (in [`record`]) the record-level [`RecordStore`] contract that persistent backends implement.
//!
//! Two ways to write a store:
//!
//! * **A persistent backend** (SQL, Redis, MongoDB, a file) implements [`RecordStore`]: only its
//!   queries, over rows of `(id, next run time, revision, JSON record)`. [`RecordJobStore`] wraps
//!   it into a `JobStore` and does everything else once for all backends: encoding and decoding,
//!   skipping and reporting records this process cannot read, revisions, ordering, run-time
//!   range checks.
//! * **An in-process store** that holds live jobs (closures included) implements [`JobStore`]
//!   directly, as `jobstore_memory::MemoryJobStore` does.
//!
//! Either way, the conformance suite (`testkit`, `jobstore_conformance!`) checks it.

pub mod admin;
pub mod cluster;
mod context;
pub mod record;
pub mod wake_feed;

use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Utc};

pub use cluster::{Claim, ClusterStore, InflightRun, NodeRecord};
pub use context::{NodeIdentity, StoreContext};
pub use record::{
    DynRecordStore, RecordFireCommit, RecordJobStore, RecordStore, ScheduleEntry, StoredRecord,
    from_micros, to_micros,
};

use crate::clock::BoxFuture;
use crate::error::{Error, Result};
use crate::job::{Job, whole_micros};

/// What a store can do, so callers and the conformance suite branch on abilities, not names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Capabilities {
    /// Jobs outlive the process (and the store's `shutdown`).
    pub persistent: bool,
    /// The store can hold closure jobs, which cannot be serialized.
    pub closures: bool,
    /// Several scheduler processes can share the store: it claims due rows, keeps node
    /// heartbeats and in-flight runs ([`store::cluster`](crate::store::cluster)).
    pub cluster: bool,
    /// It tells the other nodes sharing it when a write may make a job due earlier (their
    /// [`StoreContext::wake`] is called); without it they see the write within `max_wait`.
    pub notifies: bool,
}

impl Capabilities {
    /// An in-process store that keeps closures and loses everything at shutdown.
    pub const fn in_memory() -> Self {
        Capabilities {
            persistent: false,
            closures: true,
            cluster: false,
            notifies: false,
        }
    }

    /// A store that saves serialized jobs somewhere that outlives the process.
    pub const fn persistent() -> Self {
        Capabilities {
            persistent: true,
            closures: false,
            cluster: false,
            notifies: false,
        }
    }

    /// These capabilities, for a store that several schedulers can share
    /// ([`cluster`](Self::cluster)), pushing wake-ups to the other nodes when `notifies`.
    pub const fn with_cluster(self, notifies: bool) -> Self {
        Capabilities {
            cluster: true,
            notifies,
            ..self
        }
    }
}

/// What a fire does to the job's schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FireOutcome {
    /// The job runs next at this time.
    Reschedule(DateTime<Utc>),
    /// The job stays, paused (no next run time): its trigger failed to answer, and an
    /// operator should look at it.
    Pause,
    /// The job's trigger is finished: remove it.
    Remove,
}

impl FireOutcome {
    /// `Reschedule(next)`, or `Remove` when there is no next run time.
    pub fn from_next(next: Option<DateTime<Utc>>) -> Self {
        next.map_or(FireOutcome::Remove, FireOutcome::Reschedule)
    }

    /// The job's next run time after the fire (`None` when paused or removed).
    pub fn next_run_time(self) -> Option<DateTime<Utc>> {
        match self {
            FireOutcome::Reschedule(t) => Some(t),
            FireOutcome::Pause | FireOutcome::Remove => None,
        }
    }
}

/// That a due job fired, as the scheduler commits it to the store: only what the fire changes.
///
/// The commit applies if and only if the stored job is still at `revision`, the revision it
/// had when it was read as due. A job written since (modified, paused, fired by another
/// scheduler sharing the store, removed and added again) is not touched and not run.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FireCommit {
    /// The job's id. Ids within one batch of commits are distinct.
    pub job_id: Arc<str>,
    /// The next run time the job had when it was read as due. With revisions it is implied by
    /// `revision`; stores may check it too, and may record it (the fire's scheduled time).
    pub due_at: DateTime<Utc>,
    /// The job's revision when it was read as due.
    pub revision: u64,
    /// What happens to the job's schedule.
    pub outcome: FireOutcome,
    /// The run times this fire runs, when the store is shared and the job recovers lost runs
    /// ([`Job::recover_lost_runs`]) or counts its instances across nodes
    /// ([`Job::max_instances_across_nodes`]): recorded as in flight on this node with the
    /// commit ([`RecordFireCommit::inflight`]). Empty otherwise.
    pub recover_runs: Vec<DateTime<Utc>>,
    /// When set, the store admits the fire's runs only while fewer than this many runs of the
    /// job are in flight on live nodes, in the same atomic step as the commit; otherwise the
    /// commit still applies (the schedule moves on) but records nothing and answers
    /// [`FireAnswer::Refused`]. Set for jobs with [`Job::max_instances_across_nodes`] on a
    /// shared store, with their [`recover_runs`](Self::recover_runs).
    pub instance_limit: Option<u32>,
}

impl FireCommit {
    /// A commit of job `job_id`, read as due at `due_at` in `revision`. A rescheduled run time
    /// is kept to whole microseconds.
    pub fn new(
        job_id: impl Into<Arc<str>>,
        due_at: DateTime<Utc>,
        revision: u64,
        outcome: FireOutcome,
    ) -> Self {
        let outcome = match outcome {
            FireOutcome::Reschedule(t) => FireOutcome::Reschedule(whole_micros(t)),
            other => other,
        };
        FireCommit {
            job_id: job_id.into(),
            due_at,
            revision,
            outcome,
            recover_runs: Vec::new(),
            instance_limit: None,
        }
    }

    /// This commit, recording `run_times` as in flight on this node (see
    /// [`recover_runs`](Self::recover_runs)).
    pub fn with_recover_runs(mut self, run_times: Vec<DateTime<Utc>>) -> Self {
        self.recover_runs = run_times;
        self
    }

    /// This commit, admitted only while fewer than `max_instances` runs of the job are in
    /// flight across the nodes (see [`instance_limit`](Self::instance_limit)).
    pub fn with_instance_limit(mut self, max_instances: u32) -> Self {
        self.instance_limit = Some(max_instances);
        self
    }

    /// A commit of `job` as it was read: its id, next run time and revision.
    ///
    /// Returns `None` for a paused job (it cannot have been due).
    pub fn of(job: &Job, outcome: FireOutcome) -> Option<Self> {
        let due_at = job.next_run_time()?;
        Some(Self::new(
            job.id_arc().clone(),
            due_at,
            job.revision(),
            outcome,
        ))
    }
}

/// A store's answer to one [`FireCommit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FireAnswer {
    /// The commit applied: the job was still at the commit's revision, and its schedule is
    /// now the commit's outcome. The scheduler runs the fire.
    Committed,
    /// The job changed since it was read (or is gone): nothing was written, and the fire
    /// does not run.
    Stale,
    /// The commit applied (the schedule is the commit's outcome), but the fire's runs were
    /// refused: the job already had its [`instance_limit`](FireCommit::instance_limit) of runs
    /// in flight across the nodes, and none was recorded. The scheduler reports the fire as
    /// [`Event::JobMaxInstances`](crate::Event::JobMaxInstances) and does not run it.
    Refused,
}

/// A store's answers to a batch of fire commits, by job id.
///
/// Answers are looked up by id, never by position alone, so a store that answers in another
/// order, or leaves one out, cannot make the scheduler run or skip the wrong job: a missing
/// answer is seen as missing (the scheduler reports it and does not run that fire).
#[derive(Debug, Clone, Default)]
pub struct FireAnswers {
    /// In the order recorded. A store that answers its commits in order (the memory store)
    /// is read by position ([`get_at`](Self::get_at)), without hashing every id twice.
    entries: Vec<(Arc<str>, FireAnswer)>,
    /// By id, built on the first look-up that the position does not answer.
    // Looked up once per due job: SipHash showed in the dispatch profile.
    by_id: std::sync::OnceLock<HashMap<Arc<str>, FireAnswer, foldhash::fast::RandomState>>,
}

impl FireAnswers {
    /// No answers yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// No answers yet, with room for `n`.
    pub fn with_capacity(n: usize) -> Self {
        FireAnswers {
            entries: Vec::with_capacity(n),
            by_id: std::sync::OnceLock::new(),
        }
    }

    /// Records the answer for `job_id`.
    pub fn insert(&mut self, job_id: impl Into<Arc<str>>, answer: FireAnswer) {
        self.by_id.take();
        self.entries.push((job_id.into(), answer));
    }

    fn by_id(&self) -> &HashMap<Arc<str>, FireAnswer, foldhash::fast::RandomState> {
        self.by_id.get_or_init(|| {
            let mut by_id =
                HashMap::with_capacity_and_hasher(self.entries.len(), Default::default());
            by_id.extend(self.entries.iter().map(|(id, a)| (id.clone(), *a)));
            by_id
        })
    }

    /// The answer for `job_id`, if the store gave one.
    pub fn get(&self, job_id: &str) -> Option<FireAnswer> {
        self.by_id().get(job_id).copied()
    }

    /// The answer for `job_id`, the `position`-th commit of the batch: the one recorded at
    /// that position when it is `job_id`'s, else looked up by id. A store answers each commit
    /// once.
    pub fn get_at(&self, position: usize, job_id: &str) -> Option<FireAnswer> {
        match self.entries.get(position) {
            // Stores answer with the commit's own id, which is the job's: the same string,
            // found equal without reading it.
            Some((id, answer)) if std::ptr::eq(&**id, job_id) || **id == *job_id => Some(*answer),
            _ => self.get(job_id),
        }
    }

    /// How many answers there are.
    pub fn len(&self) -> usize {
        self.by_id().len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds every answer of `other` (a store that commits in several batches joins them).
    pub fn extend(&mut self, other: FireAnswers) {
        self.by_id.take();
        self.entries.extend(other.entries);
    }

    /// Every answer, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, FireAnswer)> {
        self.by_id().iter().map(|(id, a)| (&**id, *a))
    }
}

impl PartialEq for FireAnswers {
    fn eq(&self, other: &Self) -> bool {
        self.by_id() == other.by_id()
    }
}

impl Eq for FireAnswers {}

impl<I: Into<Arc<str>>> FromIterator<(I, FireAnswer)> for FireAnswers {
    fn from_iter<T: IntoIterator<Item = (I, FireAnswer)>>(iter: T) -> Self {
        FireAnswers {
            entries: iter.into_iter().map(|(id, a)| (id.into(), a)).collect(),
            by_id: std::sync::OnceLock::new(),
        }
    }
}

/// Keeps jobs and answers which are due: APScheduler's `BaseJobStore` contract, with revisions
/// and conditional writes so that several schedulers can share one store.
///
/// Every method takes `&self`: a store is shared by the scheduler loop and the API callers, so
/// it synchronises internally. Methods are async because most stores talk to a server; the
/// scheduler bounds each call with a timeout, so a store need not time out on its own (it
/// may, with a [`Backend`](crate::ErrorKind::Backend) error marked
/// [temporary](Error::is_temporary)).
///
/// A persistent backend should implement [`RecordStore`] and use [`RecordJobStore`], which
/// implements this trait on top of it. Implement this trait directly only for a store that
/// holds live jobs in the process. The scheduler holds stores as [`DynJobStore`] trait objects,
/// which every `JobStore` is. The conformance suite in `testkit` checks an implementation.
///
/// # What every store guarantees
///
/// * **Order**: jobs by next run time, then id; paused jobs (no next run time) last.
/// * **Revisions**: every write of a job (add, upsert, update, a committed fire) gives it a
///   revision it never had, and that no earlier job with the same id had, and sets it on the
///   jobs the store hands out ([`Job::revision`]). Conditional writes ([`update_job`],
///   [`commit_fires`]) apply only at the revision the caller read.
/// * **Run times**: whole microseconds, kept exactly. A run time the store cannot hold exactly
///   is refused with [`Unrepresentable`](crate::ErrorKind::Unrepresentable), never rounded.
/// * **Nothing is dropped**: a job the store cannot hand out (a record this process cannot read)
///   stays stored, untouched, and is reported once as [`Event::JobFault`](crate::Event::JobFault).
///
/// [`update_job`]: JobStore::update_job
/// [`commit_fires`]: JobStore::commit_fires
pub trait JobStore: Send + Sync + Debug + 'static {
    /// What this store can do.
    fn capabilities(&self) -> Capabilities;

    /// Prepares the store (connect, create tables). Called before any other method, and again
    /// after [`shutdown`](Self::shutdown) when the scheduler restarts. Forgets what
    /// [`skip_until_changed`](Self::skip_until_changed) set aside.
    fn start(&self, ctx: StoreContext) -> impl Future<Output = Result<()>> + Send;

    /// Frees the store's resources. An in-memory store forgets its jobs, as in APScheduler.
    fn shutdown(&self) -> impl Future<Output = Result<()>> + Send;

    /// The job with `id`, or `None`. A stored job this process cannot read is an error of its
    /// kind naming the job (not `None`: the id is taken).
    fn lookup_job(&self, id: &str) -> impl Future<Output = Result<Option<Job>>> + Send;

    /// At most `limit` (at least 1) of the jobs whose next run time is at or before `now`,
    /// earliest first: the earliest ones when more are due. A full batch tells the caller to
    /// ask again at once.
    ///
    /// Leaves out jobs set aside with [`skip_until_changed`](Self::skip_until_changed) and
    /// records this process cannot read; these do not take places in the batch.
    fn get_due_jobs(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Job>>> + Send;

    /// The earliest next run time of any job, or `None` if no job is scheduled. Leaves out the
    /// same jobs as [`get_due_jobs`](Self::get_due_jobs), so the scheduler does not wake for a
    /// job it will not be handed.
    fn get_next_run_time(&self) -> impl Future<Output = Result<Option<DateTime<Utc>>>> + Send;

    /// Every job this process can read, earliest next run time first, paused jobs last.
    fn get_all_jobs(&self) -> impl Future<Output = Result<Vec<Job>>> + Send;

    /// How many jobs the store holds, paused ones included, for the `scheduler_jobs` gauge
    /// (counted every few seconds). The provided method counts
    /// [`get_all_jobs`](Self::get_all_jobs); a store that can count without reading every
    /// job says so here.
    fn count_jobs(&self) -> impl Future<Output = Result<u64>> + Send {
        async { Ok(self.get_all_jobs().await?.len() as u64) }
    }

    /// Adds `job`, answering the revision it is stored at; fails with
    /// [`ConflictingId`](crate::ErrorKind::ConflictingId) if its id is taken.
    fn add_job(&self, job: Job) -> impl Future<Output = Result<u64>> + Send;

    /// Adds `jobs` as [`add_job`](Self::add_job) adds each, answering for every job, in the
    /// order given, its revision or the error `add_job` would give it (a job whose id is taken,
    /// also by an earlier job of the same batch, fails with
    /// [`ConflictingId`](crate::ErrorKind::ConflictingId)). Jobs are added independently: one
    /// refused job does not stop the others, and the batch is not atomic as a whole.
    ///
    /// The default adds one job at a time; a store that can add many in one round trip (a
    /// multi-row insert, one lock) overrides it. The outer error is for failures that concern
    /// the whole call.
    fn add_jobs(&self, jobs: Vec<Job>) -> impl Future<Output = Result<Vec<Result<u64>>>> + Send {
        async move {
            let mut answers = Vec::with_capacity(jobs.len());
            for job in jobs {
                answers.push(self.add_job(job).await);
            }
            Ok(answers)
        }
    }

    /// Adds `job`, or atomically replaces the job with the same id whatever its revision
    /// (APScheduler's `replace_existing`); answers the new revision.
    fn upsert_job(&self, job: Job) -> impl Future<Output = Result<u64>> + Send;

    /// Replaces the stored job with the same id if it is still at `job.revision()`; answers
    /// the new revision. Fails with [`JobNotFound`](crate::ErrorKind::JobNotFound) if there is
    /// none, and with [`Conflict`](crate::ErrorKind::Conflict) (writing nothing) if it was
    /// written since: read it again and retry.
    fn update_job(&self, job: Job) -> impl Future<Output = Result<u64>> + Send;

    /// Removes the job with `id` (whatever its revision, readable or not); fails with
    /// [`JobNotFound`](crate::ErrorKind::JobNotFound) if there is none.
    fn remove_job(&self, id: &str) -> impl Future<Output = Result<()>> + Send;

    /// Removes every job.
    fn remove_all_jobs(&self) -> impl Future<Output = Result<()>> + Send;

    /// Records that due jobs fired: for each commit whose job is still stored at the commit's
    /// revision, applies its outcome (new next run time, pause, removal) with a new revision;
    /// leaves every other job untouched. Answers for every commit, by job id.
    ///
    /// Each commit must be atomic on its own (a conditional write: compare the revision and
    /// write in one step, as `UPDATE … WHERE id = ? AND revision = ?`, a Lua script, or a
    /// filtered update), because several schedulers may commit the same fire at once and
    /// exactly one may win: this is what keeps a job from running twice. A batch need not be
    /// atomic as a whole. There is no default: a read-then-write passes every sequential test
    /// and runs jobs twice in production.
    ///
    /// A rescheduled run time the store cannot hold exactly pauses the job instead (reported
    /// with [`StoreContext::report_fault`] as
    /// [`FaultAction::Paused`](crate::FaultAction::Paused)); the fire still counts as committed.
    fn commit_fires(
        &self,
        commits: &[FireCommit],
    ) -> impl Future<Output = Result<FireAnswers>> + Send;

    /// Sets job `id` aside while it is at `revision`: this process cannot run it (its executor
    /// is missing here), so leave it out of [`get_due_jobs`](Self::get_due_jobs) and
    /// [`get_next_run_time`](Self::get_next_run_time) until it is written again (any new
    /// revision) or the store restarts. It stays stored, listed and readable. Local to this
    /// handle: other processes sharing the store are not affected.
    fn skip_until_changed(&self, id: &str, revision: u64);

    /// Forgets every job set aside, by [`skip_until_changed`](Self::skip_until_changed) or
    /// because its record could not be read: the scheduler calls it when what made them
    /// unrunnable may be fixed (an executor was added). Records still unreadable are skipped,
    /// and reported, again.
    fn clear_skipped(&self);

    /// The store's cluster side (heartbeats, in-flight runs), when several schedulers can
    /// share it ([`Capabilities::cluster`]). `None` by default; [`RecordJobStore`] answers
    /// it for a backend that declares `cluster`.
    fn cluster(&self) -> Option<&dyn ClusterStore> {
        None
    }
}

/// The object-safe mirror of [`JobStore`], implemented for every `JobStore`.
///
/// The scheduler keeps `Arc<dyn DynJobStore>` per alias, so stores of different kinds mix at
/// run time. Call these methods through the trait object; implement [`JobStore`] instead.
#[allow(missing_docs)] // each method mirrors the `JobStore` method of the same name
pub trait DynJobStore: Send + Sync + Debug + 'static {
    fn capabilities(&self) -> Capabilities;
    fn start(&self, ctx: StoreContext) -> BoxFuture<'_, Result<()>>;
    fn shutdown(&self) -> BoxFuture<'_, Result<()>>;
    fn lookup_job<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Job>>>;
    fn get_due_jobs(&self, now: DateTime<Utc>, limit: usize) -> BoxFuture<'_, Result<Vec<Job>>>;
    fn get_next_run_time(&self) -> BoxFuture<'_, Result<Option<DateTime<Utc>>>>;
    fn get_all_jobs(&self) -> BoxFuture<'_, Result<Vec<Job>>>;
    fn count_jobs(&self) -> BoxFuture<'_, Result<u64>>;
    fn add_job(&self, job: Job) -> BoxFuture<'_, Result<u64>>;
    fn add_jobs(&self, jobs: Vec<Job>) -> BoxFuture<'_, Result<Vec<Result<u64>>>>;
    fn upsert_job(&self, job: Job) -> BoxFuture<'_, Result<u64>>;
    fn update_job(&self, job: Job) -> BoxFuture<'_, Result<u64>>;
    fn remove_job<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<()>>;
    fn remove_all_jobs(&self) -> BoxFuture<'_, Result<()>>;
    fn commit_fires<'a>(&'a self, commits: &'a [FireCommit]) -> BoxFuture<'a, Result<FireAnswers>>;
    fn skip_until_changed(&self, id: &str, revision: u64);
    fn clear_skipped(&self);
    fn cluster(&self) -> Option<&dyn ClusterStore>;
}

impl<S: JobStore> DynJobStore for S {
    fn capabilities(&self) -> Capabilities {
        JobStore::capabilities(self)
    }
    fn start(&self, ctx: StoreContext) -> BoxFuture<'_, Result<()>> {
        Box::pin(JobStore::start(self, ctx))
    }
    fn shutdown(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(JobStore::shutdown(self))
    }
    fn lookup_job<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Job>>> {
        Box::pin(JobStore::lookup_job(self, id))
    }
    fn get_due_jobs(&self, now: DateTime<Utc>, limit: usize) -> BoxFuture<'_, Result<Vec<Job>>> {
        Box::pin(JobStore::get_due_jobs(self, now, limit))
    }
    fn get_next_run_time(&self) -> BoxFuture<'_, Result<Option<DateTime<Utc>>>> {
        Box::pin(JobStore::get_next_run_time(self))
    }
    fn get_all_jobs(&self) -> BoxFuture<'_, Result<Vec<Job>>> {
        Box::pin(JobStore::get_all_jobs(self))
    }
    fn count_jobs(&self) -> BoxFuture<'_, Result<u64>> {
        Box::pin(JobStore::count_jobs(self))
    }
    fn add_job(&self, job: Job) -> BoxFuture<'_, Result<u64>> {
        Box::pin(JobStore::add_job(self, job))
    }
    fn add_jobs(&self, jobs: Vec<Job>) -> BoxFuture<'_, Result<Vec<Result<u64>>>> {
        Box::pin(JobStore::add_jobs(self, jobs))
    }
    fn upsert_job(&self, job: Job) -> BoxFuture<'_, Result<u64>> {
        Box::pin(JobStore::upsert_job(self, job))
    }
    fn update_job(&self, job: Job) -> BoxFuture<'_, Result<u64>> {
        Box::pin(JobStore::update_job(self, job))
    }
    fn remove_job<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(JobStore::remove_job(self, id))
    }
    fn remove_all_jobs(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(JobStore::remove_all_jobs(self))
    }
    fn commit_fires<'a>(&'a self, commits: &'a [FireCommit]) -> BoxFuture<'a, Result<FireAnswers>> {
        Box::pin(JobStore::commit_fires(self, commits))
    }
    fn skip_until_changed(&self, id: &str, revision: u64) {
        JobStore::skip_until_changed(self, id, revision);
    }
    fn clear_skipped(&self) {
        JobStore::clear_skipped(self);
    }
    fn cluster(&self) -> Option<&dyn ClusterStore> {
        JobStore::cluster(self)
    }
}

/// A store as the scheduler calls it: every call bounded by a timeout, so that a server that
/// hangs (not only one that refuses connections) cannot freeze the loop or an API call.
///
/// A call that does not answer in time fails with a [`Backend`](crate::ErrorKind::Backend)
/// error marked [temporary](Error::is_temporary); the scheduler treats it like a lost
/// connection. What the call did on the server meanwhile is unknown: a fire commit that timed
/// out may have been applied, and its runs are then lost (never run twice).
#[derive(Debug)]
pub(crate) struct TimedStore {
    alias: Arc<str>,
    inner: Arc<dyn DynJobStore>,
    timeout: std::time::Duration,
}

impl TimedStore {
    /// `inner`, known as `alias`, with every call bounded by `timeout`.
    pub(crate) fn new(
        alias: Arc<str>,
        inner: Arc<dyn DynJobStore>,
        timeout: std::time::Duration,
    ) -> Self {
        TimedStore {
            alias,
            inner,
            timeout,
        }
    }

    async fn bounded<T>(&self, what: &str, call: BoxFuture<'_, Result<T>>) -> Result<T> {
        let mut call = call;
        // In-process stores answer on the first poll: they need no timer (and no time
        // driver), so the hot path of a memory store costs nothing here.
        let first = std::future::poll_fn(|cx| std::task::Poll::Ready(call.as_mut().poll(cx)));
        if let std::task::Poll::Ready(answer) = first.await {
            return answer;
        }
        match tokio::time::timeout(self.timeout, call).await {
            Ok(answer) => answer,
            Err(_) => {
                let what = format!("job store {:?}: {what}", self.alias);
                Err(Error::timed_out(&what, self.timeout))
            }
        }
    }
}

impl JobStore for TimedStore {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn start(&self, ctx: StoreContext) -> Result<()> {
        self.bounded("start", self.inner.start(ctx)).await
    }
    async fn shutdown(&self) -> Result<()> {
        self.bounded("shutdown", self.inner.shutdown()).await
    }
    async fn lookup_job(&self, id: &str) -> Result<Option<Job>> {
        self.bounded("lookup_job", self.inner.lookup_job(id)).await
    }
    async fn get_due_jobs(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Job>> {
        self.bounded("get_due_jobs", self.inner.get_due_jobs(now, limit))
            .await
    }
    async fn get_next_run_time(&self) -> Result<Option<DateTime<Utc>>> {
        self.bounded("get_next_run_time", self.inner.get_next_run_time())
            .await
    }
    async fn get_all_jobs(&self) -> Result<Vec<Job>> {
        self.bounded("get_all_jobs", self.inner.get_all_jobs())
            .await
    }
    async fn count_jobs(&self) -> Result<u64> {
        self.bounded("count_jobs", self.inner.count_jobs()).await
    }
    async fn add_job(&self, job: Job) -> Result<u64> {
        self.bounded("add_job", self.inner.add_job(job)).await
    }
    async fn add_jobs(&self, jobs: Vec<Job>) -> Result<Vec<Result<u64>>> {
        self.bounded("add_jobs", self.inner.add_jobs(jobs)).await
    }
    async fn upsert_job(&self, job: Job) -> Result<u64> {
        self.bounded("upsert_job", self.inner.upsert_job(job)).await
    }
    async fn update_job(&self, job: Job) -> Result<u64> {
        self.bounded("update_job", self.inner.update_job(job)).await
    }
    async fn remove_job(&self, id: &str) -> Result<()> {
        self.bounded("remove_job", self.inner.remove_job(id)).await
    }
    async fn remove_all_jobs(&self) -> Result<()> {
        self.bounded("remove_all_jobs", self.inner.remove_all_jobs())
            .await
    }
    async fn commit_fires(&self, commits: &[FireCommit]) -> Result<FireAnswers> {
        self.bounded("commit_fires", self.inner.commit_fires(commits))
            .await
    }
    fn skip_until_changed(&self, id: &str, revision: u64) {
        self.inner.skip_until_changed(id, revision);
    }
    fn clear_skipped(&self) {
        self.inner.clear_skipped();
    }
    fn cluster(&self) -> Option<&dyn ClusterStore> {
        // Not bounded here: the scheduler bounds its cluster calls itself.
        self.inner.cluster()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_found_by_id_whatever_their_order() {
        let answers: FireAnswers = [("b", FireAnswer::Stale), ("a", FireAnswer::Committed)]
            .into_iter()
            .collect();
        assert_eq!(answers.get("a"), Some(FireAnswer::Committed));
        assert_eq!(answers.get("b"), Some(FireAnswer::Stale));
        assert_eq!(answers.get("c"), None, "a missing answer stays missing");
        assert_eq!(answers.len(), 2);
        assert_eq!(answers.get_at(1, "a"), Some(FireAnswer::Committed));
        assert_eq!(
            answers.get_at(0, "a"),
            Some(FireAnswer::Committed),
            "an answer at another position is found by id"
        );
        assert_eq!(answers.get_at(5, "b"), Some(FireAnswer::Stale));
        assert_eq!(answers.get_at(0, "c"), None);
    }

    /// A store whose reads never answer, as a hung server's.
    #[derive(Debug)]
    struct Hung;

    impl JobStore for Hung {
        fn capabilities(&self) -> Capabilities {
            Capabilities::persistent()
        }
        async fn start(&self, _: StoreContext) -> Result<()> {
            Ok(())
        }
        async fn shutdown(&self) -> Result<()> {
            Ok(())
        }
        async fn lookup_job(&self, _: &str) -> Result<Option<Job>> {
            Ok(None)
        }
        async fn get_due_jobs(&self, _: DateTime<Utc>, _: usize) -> Result<Vec<Job>> {
            std::future::pending().await
        }
        async fn get_next_run_time(&self) -> Result<Option<DateTime<Utc>>> {
            tokio::task::yield_now().await;
            Ok(None)
        }
        async fn get_all_jobs(&self) -> Result<Vec<Job>> {
            std::future::pending().await
        }
        async fn add_job(&self, _: Job) -> Result<u64> {
            std::future::pending().await
        }
        async fn upsert_job(&self, _: Job) -> Result<u64> {
            std::future::pending().await
        }
        async fn update_job(&self, _: Job) -> Result<u64> {
            std::future::pending().await
        }
        async fn remove_job(&self, _: &str) -> Result<()> {
            std::future::pending().await
        }
        async fn remove_all_jobs(&self) -> Result<()> {
            std::future::pending().await
        }
        async fn commit_fires(&self, _: &[FireCommit]) -> Result<FireAnswers> {
            std::future::pending().await
        }
        fn skip_until_changed(&self, _: &str, _: u64) {}
        fn clear_skipped(&self) {}
    }

    #[tokio::test]
    async fn a_call_that_hangs_times_out_as_a_temporary_backend_error() {
        let timeout = std::time::Duration::from_millis(50);
        let store = TimedStore::new("db".into(), Arc::new(Hung), timeout);
        let err = JobStore::get_due_jobs(&store, DateTime::UNIX_EPOCH, 10)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Backend);
        assert!(err.is_temporary());
        assert!(err.to_string().contains("\"db\": get_due_jobs"), "{err}");
        // Calls that answer, at once or after yielding, are untouched.
        assert!(JobStore::lookup_job(&store, "x").await.unwrap().is_none());
        assert_eq!(JobStore::get_next_run_time(&store).await.unwrap(), None);
    }

    #[test]
    fn an_in_process_store_needs_no_timer() {
        // A runtime without a time driver: a timer would panic here.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let timeout = std::time::Duration::from_secs(1);
        let store = TimedStore::new("mem".into(), Arc::new(Hung), timeout);
        let found = runtime.block_on(JobStore::lookup_job(&store, "x")).unwrap();
        assert!(found.is_none());
    }

    #[test]
    fn commits_keep_whole_microseconds() {
        let at = DateTime::from_timestamp(1_700_000_000, 123_456_789).unwrap();
        let commit = FireCommit::new("j", at, 3, FireOutcome::Reschedule(at));
        assert_eq!(
            commit
                .outcome
                .next_run_time()
                .unwrap()
                .timestamp_subsec_nanos(),
            123_456_000
        );
        assert_eq!(FireOutcome::from_next(None), FireOutcome::Remove);
    }
}

//! Where jobs are kept: the [`JobStore`] contract and its object-safe mirror [`DynJobStore`].

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::clock::BoxFuture;
use crate::error::{ErrorKind, Result};
use crate::job::{Job, JobCodec};

/// What a store is given when the scheduler starts it.
#[derive(Debug, Clone)]
pub struct StoreContext {
    alias: Arc<str>,
    codec: JobCodec,
}

impl StoreContext {
    /// A context for a store known as `alias`, decoding jobs with `codec`.
    pub fn new(alias: impl Into<Arc<str>>, codec: JobCodec) -> Self {
        StoreContext {
            alias: alias.into(),
            codec,
        }
    }

    /// The alias the scheduler knows the store by.
    pub fn alias(&self) -> &str {
        &self.alias
    }

    /// Encodes and decodes jobs for persistent stores.
    pub fn codec(&self) -> &JobCodec {
        &self.codec
    }
}

/// What a store can do, so callers and the conformance suite branch on abilities, not names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Capabilities {
    /// Jobs outlive the process (and the store's `shutdown`).
    pub persistent: bool,
    /// The store can hold closure jobs, which cannot be serialized.
    pub closures: bool,
}

impl Capabilities {
    /// An in-process store that keeps closures and loses everything at shutdown.
    pub const fn in_memory() -> Self {
        Capabilities {
            persistent: false,
            closures: true,
        }
    }

    /// A store that saves serialized jobs somewhere that outlives the process.
    pub const fn persistent() -> Self {
        Capabilities {
            persistent: true,
            closures: false,
        }
    }
}

/// One due job the scheduler has processed: the job with its new next run time (`None` when
/// its trigger is finished and it must be removed), and the run time it was due at.
#[derive(Debug, Clone)]
pub struct FireCommit {
    /// The job, its next run time already advanced.
    pub job: Job,
    /// The next run time the job had when it was read as due.
    pub due_at: DateTime<Utc>,
}

/// Keeps jobs and answers which are due: APScheduler's `BaseJobStore` contract.
///
/// Every method takes `&self`: a store is shared by the scheduler loop and the API callers, so
/// it synchronises internally. Methods are async because most stores talk to a server.
///
/// Implement this trait; the scheduler holds stores as [`DynJobStore`] trait objects, which
/// every `JobStore` is. The conformance suite in `testkit` checks an implementation.
///
/// Ordering contract: jobs are ordered by next run time, then by id; paused jobs (no next run
/// time) come last.
pub trait JobStore: Send + Sync + Debug + 'static {
    /// What this store can do.
    fn capabilities(&self) -> Capabilities;

    /// Prepares the store (connect, create tables). Called before any other method.
    fn start(&self, ctx: StoreContext) -> impl Future<Output = Result<()>> + Send;

    /// Frees the store's resources. An in-memory store forgets its jobs, as in APScheduler.
    fn shutdown(&self) -> impl Future<Output = Result<()>> + Send;

    /// The job with `id`, or `None`.
    fn lookup_job(&self, id: &str) -> impl Future<Output = Result<Option<Job>>> + Send;

    /// The jobs whose next run time is at or before `now`, earliest first.
    fn get_due_jobs(&self, now: DateTime<Utc>) -> impl Future<Output = Result<Vec<Job>>> + Send;

    /// The earliest next run time of any job, or `None` if no job is scheduled.
    fn get_next_run_time(&self) -> impl Future<Output = Result<Option<DateTime<Utc>>>> + Send;

    /// Every job, earliest next run time first, paused jobs last.
    fn get_all_jobs(&self) -> impl Future<Output = Result<Vec<Job>>> + Send;

    /// Adds `job`; fails with [`ConflictingId`](ErrorKind::ConflictingId) if its id is taken.
    fn add_job(&self, job: Job) -> impl Future<Output = Result<()>> + Send;

    /// Replaces the stored job with the same id; fails with
    /// [`JobNotFound`](ErrorKind::JobNotFound) if there is none.
    fn update_job(&self, job: Job) -> impl Future<Output = Result<()>> + Send;

    /// Removes the job with `id`; fails with [`JobNotFound`](ErrorKind::JobNotFound) if there
    /// is none.
    fn remove_job(&self, id: &str) -> impl Future<Output = Result<()>> + Send;

    /// Removes every job.
    fn remove_all_jobs(&self) -> impl Future<Output = Result<()>> + Send;

    /// Records that due jobs fired: for each commit whose job is still stored with next run
    /// time `due_at`, sets its next run time to the commit's (or removes the job when that is
    /// `None`). Answers, per commit, whether it was applied.
    ///
    /// The compare-and-set is what keeps a job from running twice when its next run time
    /// changed under the scheduler (a concurrent `modify_job`, or another scheduler sharing the
    /// store). The default implementation reads each job and then writes it, which is enough
    /// for a store used by one process; a shared store should override it with an atomic
    /// conditional write, and may batch it.
    fn commit_fires(
        &self,
        commits: &[FireCommit],
    ) -> impl Future<Output = Result<Vec<bool>>> + Send {
        async move {
            let mut applied = Vec::with_capacity(commits.len());
            for commit in commits {
                let id = commit.job.id();
                let current = self.lookup_job(id).await?;
                let Some(mut current) =
                    current.filter(|c| c.next_run_time() == Some(commit.due_at))
                else {
                    applied.push(false);
                    continue;
                };
                let result = match commit.job.next_run_time() {
                    Some(next) => {
                        current.set_next_run_time(Some(next));
                        self.update_job(current).await
                    }
                    None => self.remove_job(id).await,
                };
                match result {
                    Ok(()) => applied.push(true),
                    Err(e) if e.kind() == ErrorKind::JobNotFound => applied.push(false),
                    Err(e) => return Err(e),
                }
            }
            Ok(applied)
        }
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
    fn get_due_jobs(&self, now: DateTime<Utc>) -> BoxFuture<'_, Result<Vec<Job>>>;
    fn get_next_run_time(&self) -> BoxFuture<'_, Result<Option<DateTime<Utc>>>>;
    fn get_all_jobs(&self) -> BoxFuture<'_, Result<Vec<Job>>>;
    fn add_job(&self, job: Job) -> BoxFuture<'_, Result<()>>;
    fn update_job(&self, job: Job) -> BoxFuture<'_, Result<()>>;
    fn remove_job<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<()>>;
    fn remove_all_jobs(&self) -> BoxFuture<'_, Result<()>>;
    fn commit_fires<'a>(&'a self, commits: &'a [FireCommit]) -> BoxFuture<'a, Result<Vec<bool>>>;
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
    fn get_due_jobs(&self, now: DateTime<Utc>) -> BoxFuture<'_, Result<Vec<Job>>> {
        Box::pin(JobStore::get_due_jobs(self, now))
    }
    fn get_next_run_time(&self) -> BoxFuture<'_, Result<Option<DateTime<Utc>>>> {
        Box::pin(JobStore::get_next_run_time(self))
    }
    fn get_all_jobs(&self) -> BoxFuture<'_, Result<Vec<Job>>> {
        Box::pin(JobStore::get_all_jobs(self))
    }
    fn add_job(&self, job: Job) -> BoxFuture<'_, Result<()>> {
        Box::pin(JobStore::add_job(self, job))
    }
    fn update_job(&self, job: Job) -> BoxFuture<'_, Result<()>> {
        Box::pin(JobStore::update_job(self, job))
    }
    fn remove_job<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(JobStore::remove_job(self, id))
    }
    fn remove_all_jobs(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(JobStore::remove_all_jobs(self))
    }
    fn commit_fires<'a>(&'a self, commits: &'a [FireCommit]) -> BoxFuture<'a, Result<Vec<bool>>> {
        Box::pin(JobStore::commit_fires(self, commits))
    }
}

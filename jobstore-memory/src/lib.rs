#![doc = include_str!("../README.md")]

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use scheduler_core::chrono::{DateTime, Utc};
use scheduler_core::{
    Capabilities, Components, Error, FireCommit, Job, JobStore, Result, StoreContext,
};

/// Keeps jobs in memory, ordered by next run time: APScheduler's `MemoryJobStore`.
///
/// Every operation is O(log n) in the number of jobs (due jobs cost O(log n + k) for k due
/// jobs). It holds closure jobs too, and forgets everything at shutdown. Cloning shares the
/// store.
#[derive(Debug, Clone, Default)]
pub struct MemoryJobStore {
    inner: Arc<Mutex<Jobs>>,
}

/// Where a job sits in the run-time order; paused jobs sort after every scheduled one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum RunKey {
    At(DateTime<Utc>),
    Paused,
}

impl RunKey {
    fn of(job: &Job) -> Self {
        job.next_run_time().map_or(RunKey::Paused, RunKey::At)
    }
}

#[derive(Debug, Default)]
struct Jobs {
    by_id: HashMap<Arc<str>, Job>,
    /// (run key, id): the run-time order, ties broken by id as in APScheduler.
    order: BTreeSet<(RunKey, Arc<str>)>,
}

impl Jobs {
    fn insert(&mut self, job: Job) {
        let id = job.id_arc().clone();
        self.order.insert((RunKey::of(&job), id.clone()));
        self.by_id.insert(id, job);
    }

    fn remove(&mut self, id: &str) -> Option<Job> {
        let job = self.by_id.remove(id)?;
        self.order.remove(&(RunKey::of(&job), job.id_arc().clone()));
        Some(job)
    }
}

impl MemoryJobStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many jobs the store holds.
    pub fn len(&self) -> usize {
        self.lock().by_id.len()
    }

    /// Whether the store holds no jobs.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Jobs> {
        // Every mutation keeps `by_id` and `order` consistent before it can panic (the only
        // panics possible are allocation failures), so a poisoned lock still holds sound data.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl JobStore for MemoryJobStore {
    fn capabilities(&self) -> Capabilities {
        Capabilities::in_memory()
    }

    async fn start(&self, _ctx: StoreContext) -> Result<()> {
        Ok(())
    }

    async fn shutdown(&self) -> Result<()> {
        let mut jobs = self.lock();
        jobs.by_id.clear();
        jobs.order.clear();
        Ok(())
    }

    async fn lookup_job(&self, id: &str) -> Result<Option<Job>> {
        Ok(self.lock().by_id.get(id).cloned())
    }

    async fn get_due_jobs(&self, now: DateTime<Utc>) -> Result<Vec<Job>> {
        let jobs = self.lock();
        Ok(jobs
            .order
            .iter()
            .take_while(|(key, _)| *key <= RunKey::At(now))
            .filter_map(|(_, id)| jobs.by_id.get(id).cloned())
            .collect())
    }

    async fn get_next_run_time(&self) -> Result<Option<DateTime<Utc>>> {
        Ok(match self.lock().order.first() {
            Some((RunKey::At(t), _)) => Some(*t),
            _ => None,
        })
    }

    async fn get_all_jobs(&self) -> Result<Vec<Job>> {
        let jobs = self.lock();
        Ok(jobs
            .order
            .iter()
            .filter_map(|(_, id)| jobs.by_id.get(id).cloned())
            .collect())
    }

    async fn add_job(&self, job: Job) -> Result<()> {
        let mut jobs = self.lock();
        if jobs.by_id.contains_key(job.id()) {
            return Err(Error::conflicting_id(job.id()));
        }
        jobs.insert(job);
        Ok(())
    }

    async fn update_job(&self, job: Job) -> Result<()> {
        let mut jobs = self.lock();
        if jobs.remove(job.id()).is_none() {
            return Err(Error::job_not_found(job.id()));
        }
        jobs.insert(job);
        Ok(())
    }

    async fn remove_job(&self, id: &str) -> Result<()> {
        match self.lock().remove(id) {
            Some(_) => Ok(()),
            None => Err(Error::job_not_found(id)),
        }
    }

    async fn remove_all_jobs(&self) -> Result<()> {
        let mut jobs = self.lock();
        jobs.by_id.clear();
        jobs.order.clear();
        Ok(())
    }

    async fn commit_fires(&self, commits: Vec<FireCommit>) -> Result<Vec<bool>> {
        let mut jobs = self.lock();
        Ok(commits
            .into_iter()
            .map(|commit| {
                let id = commit.job.id();
                let still_due = jobs
                    .by_id
                    .get(id)
                    .is_some_and(|job| job.next_run_time() == Some(commit.due_at));
                if !still_due {
                    return false;
                }
                let Some(mut job) = jobs.remove(id) else {
                    return false;
                };
                if let Some(next) = commit.job.next_run_time() {
                    // Keep the stored job (it may carry changes made after it was read as
                    // due) and only move it.
                    job.set_next_run_time(Some(next));
                    jobs.insert(job);
                }
                true
            })
            .collect())
    }
}

/// Registers the `"memory"` store type for configuration documents.
pub fn register(components: &Components) {
    components.register_jobstore(
        "memory",
        Arc::new(|options: &serde_json::Value| {
            if options.as_object().is_some_and(|o| !o.is_empty()) {
                return Err(Error::config(format!(
                    "the memory job store takes no options, got {options}"
                )));
            }
            Ok(Arc::new(MemoryJobStore::new()) as Arc<dyn scheduler_core::DynJobStore>)
        }),
    );
}

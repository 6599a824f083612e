//! The record-level contract for persistent backends ([`RecordStore`]), and the one adapter
//! that turns a backend into a [`JobStore`] ([`RecordJobStore`]).
//!
//! A backend keeps rows of four things: the job's id (the key), its next run time (indexed),
//! its revision, and its [`JobRecord`] as JSON. It implements only its
//! queries over those rows; it never parses the JSON. [`RecordJobStore`] does the rest, once
//! for every backend:
//!
//! * encodes jobs into rows and decodes rows into jobs with the scheduler's codec, taking the
//!   run time from the indexed column, not from the JSON;
//! * skips rows this process cannot read (corrupt JSON, unknown function, unknown trigger
//!   kind, a newer record version), reports each once as [`Event::JobFault`] with
//!   [`FaultAction::Skipped`] and a `tracing` error, leaves it untouched, and remembers it so
//!   that neither the due batches nor the next run time keep returning it;
//! * chooses revisions, checks them for conditional writes, and maps "not applied" answers to
//!   [`ConflictingId`](ErrorKind::ConflictingId), [`JobNotFound`](ErrorKind::JobNotFound) and
//!   [`Conflict`](ErrorKind::Conflict);
//! * refuses run times outside the backend's [`run_time_range`](RecordStore::run_time_range)
//!   with [`Unrepresentable`](ErrorKind::Unrepresentable), before the backend sees them;
//! * orders jobs, and writes the JSON copy of each run time from the same value as the column.
//!
//! [`Event::JobFault`]: crate::Event::JobFault

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};

use super::{
    Capabilities, Claim, ClusterStore, FireAnswer, FireAnswers, FireCommit, FireOutcome, JobStore,
    StoreContext,
};
use crate::error::{Error, ErrorKind, Result};
use crate::event::FaultAction;
use crate::job::{Job, JobRecord};

mod backend;
mod dynamic;
mod group;

pub use backend::{RecordStore, from_micros, full_run_time_range, to_micros};
pub use dynamic::DynRecordStore;

/// One stored job as a backend keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// The job's id: the row's key.
    pub id: String,
    /// The next run time, `None` when paused: the indexed column, and the authority (the
    /// JSON's copy is written from the same value).
    pub next_run_time: Option<DateTime<Utc>>,
    /// The row's revision. Chosen by the adapter; a backend stores and compares it, never
    /// computes it.
    pub revision: u64,
    /// The [`JobRecord`] as JSON text. Opaque to the backend: store it as
    /// given (a text column, a hash field, a string or a document) and hand it back unchanged.
    pub json: String,
}

/// A row's place in the run-time order, without its record: what
/// [`RecordStore::next_run_times`] answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleEntry {
    /// The job's id.
    pub id: String,
    /// Its next run time.
    pub next_run_time: DateTime<Utc>,
    /// Its revision.
    pub revision: u64,
}

/// One fire to commit, at the record level: a conditional replacement or removal of one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordFireCommit {
    /// The job's id (distinct within a batch).
    pub id: Arc<str>,
    /// The run time the job was due at (implied by `expected_revision`; a backend may check
    /// it too, or record it).
    pub due_at: DateTime<Utc>,
    /// Apply only if the row is still at this revision.
    pub expected_revision: u64,
    /// The row to write in place of the stored one (its new run time, or none when paused;
    /// a new revision; the JSON with the new run time); `None` removes the row.
    pub write: Option<StoredRecord>,
    /// When set, record these runs as in flight on `node`, in the same atomic step as the
    /// commit (no entry if the commit is stale): `(node, run times)`. Only for jobs whose lost
    /// runs are recovered or whose instances are counted across nodes, and only on a backend
    /// with [`cluster`](Capabilities::cluster).
    pub inflight: Option<(String, Vec<DateTime<Utc>>)>,
    /// When set (only with `inflight`): if the row is at `expected_revision` but this many or
    /// more of the job's in-flight entries belong to nodes that have a heartbeat row (see
    /// [`RecordStore::nodes`]), apply `write` without recording `inflight` and answer
    /// [`Refused`](crate::FireAnswer::Refused); counted and written in one atomic step, so two
    /// nodes never both pass the bound. Entries of nodes whose heartbeat was removed
    /// ([`RecordStore::remove_node`]) do not count.
    pub max_inflight: Option<u32>,
}

/// A fresh revision for an unconditional write (add, upsert): random, so that a job removed
/// and added again never repeats a revision a stale reader may still hold, and below 2^52, so
/// that it and the increments after it stay exact as doubles and in signed 64-bit columns.
pub(crate) fn fresh_revision() -> u64 {
    let (high, _) = uuid::Uuid::new_v4().as_u64_pair();
    (high >> 12).max(1)
}

/// The revision a conditional write at `expected` gives: the next one, while it stays exact.
pub(crate) fn next_revision(expected: u64) -> u64 {
    match expected.checked_add(1) {
        Some(next) if next < (1 << 53) => next,
        _ => fresh_revision(),
    }
}

/// A [`JobStore`] over a persistent [`RecordStore`] backend. See the [module docs](self).
///
/// Each `RecordJobStore` is one handle with its own memory of skipped records; two of them
/// over the same data behave like two processes sharing a store.
#[derive(Debug)]
pub struct RecordJobStore<R> {
    records: R,
    state: Mutex<AdapterState>,
    /// Concurrent single adds, inserted in groups.
    adds: group::AddGroups,
}

#[derive(Debug, Default)]
struct AdapterState {
    ctx: Option<StoreContext>,
    /// Rows this process skips while they stay at the given revision: unreadable records and
    /// jobs set aside by the scheduler. Bounded by the number of such rows in the store.
    skipped: HashMap<String, Skipped>,
    /// The jobs of the last due batch, to re-encode for their fire commits without reading
    /// them again. Bounded by the batch limit.
    recent: HashMap<Arc<str>, Job>,
    /// Rows this node claimed and then set aside: their claims are released at the next due
    /// call, so that a node that can run them takes them at once. Bounded by the batch.
    to_release: Vec<String>,
    /// The `now` of the last claiming due call: a row due by then that is still the earliest
    /// is held by another node (see `get_next_run_time`).
    last_claim_now: Option<DateTime<Utc>>,
    /// No due call since the start yet: the first batch is read without a claim where the
    /// backend can (`RecordStore::due_unclaimed`), its fire commit the start's first write.
    first_due: bool,
}

/// How soon to look again at rows due but claimed by another node: it commits them within
/// moments (then they move on), or its claim lapses.
const CLAIMED_POLL: chrono::TimeDelta = chrono::TimeDelta::milliseconds(100);

/// Why a row is skipped, and at which revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Skipped {
    revision: u64,
    /// The record cannot be read here (else it was set aside, and is still listed).
    unreadable: bool,
}

impl AdapterState {
    /// Whether the row `id` at `revision` is skipped; set-aside rows only when `due`.
    fn skips(&self, id: &str, revision: u64, due: bool) -> bool {
        self.skipped
            .get(id)
            .is_some_and(|s| s.revision == revision && (due || s.unreadable))
    }

    /// Remembers that `id` at `revision` cannot be read; answers whether that is news.
    fn unreadable(&mut self, id: &str, revision: u64) -> bool {
        let skipped = Skipped {
            revision,
            unreadable: true,
        };
        self.skipped.insert(id.to_owned(), skipped) != Some(skipped)
    }
}

impl<R: RecordStore> RecordJobStore<R> {
    /// A job store over `records`.
    pub fn new(records: R) -> Self {
        RecordJobStore {
            records,
            state: Mutex::new(AdapterState::default()),
            adds: group::AddGroups::new(),
        }
    }

    /// The backend.
    pub fn records(&self) -> &R {
        &self.records
    }

    fn state(&self) -> MutexGuard<'_, AdapterState> {
        // No code path panics while holding the lock with the state half changed.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn ctx(&self) -> Result<StoreContext> {
        self.state()
            .ctx
            .clone()
            .ok_or_else(|| Error::scheduler_state("the job store is used before start()"))
    }

    /// The row for `job` at `revision`, after checking that its run time can be held.
    fn encode(&self, ctx: &StoreContext, job: &Job, revision: u64) -> Result<StoredRecord> {
        if let Some(at) = job.next_run_time() {
            let range = self.records.run_time_range();
            if !range.contains(&at) {
                return Err(Error::unrepresentable_run_time(
                    job.id(),
                    at,
                    *range.start(),
                    *range.end(),
                ));
            }
        }
        let record = ctx.codec().encode(job)?;
        let json = serde_json::to_string(&record).map_err(|e| {
            Error::serialization("cannot serialize the job", e).with_job_id(job.id())
        })?;
        Ok(StoredRecord {
            id: job.id().to_owned(),
            next_run_time: job.next_run_time(),
            revision,
            json,
        })
    }

    /// Decodes the rows this process can read, skipping (and reporting once) the others, and
    /// leaving out the jobs set aside when `due`.
    fn decode_rows(&self, ctx: &StoreContext, rows: Vec<StoredRecord>, due: bool) -> Vec<Job> {
        let mut state = self.state();
        let mut jobs = Vec::with_capacity(rows.len());
        for row in rows {
            if state.skips(&row.id, row.revision, due) {
                continue;
            }
            let (id, revision) = (row.id.clone(), row.revision);
            match decode(ctx, row) {
                Ok(job) => {
                    if state
                        .skipped
                        .get(&id)
                        .is_some_and(|s| s.revision != revision)
                    {
                        state.skipped.remove(&id);
                    }
                    jobs.push(job);
                }
                Err(e) => {
                    state.unreadable(&id, revision);
                    ctx.report_fault(&id, FaultAction::Skipped, e);
                }
            }
        }
        jobs
    }

    /// The claim this handle takes on due rows at `now`: when the backend can be shared and
    /// the scheduler named its node.
    fn claim_at(&self, ctx: &StoreContext, now: DateTime<Utc>) -> Option<Claim> {
        let node = ctx.node()?;
        if !self.records.capabilities().cluster {
            return None;
        }
        let lease = chrono::TimeDelta::from_std(node.claim_lease).unwrap_or(CLAIMED_POLL);
        let until = now.checked_add_signed(lease).unwrap_or(now);
        Some(Claim::new(&*node.id, until))
    }

    fn forget(&self, id: &str) {
        let mut state = self.state();
        state.skipped.remove(id);
        state.recent.remove(id);
    }
}

/// The job in `row`: the JSON decoded with the codec, the run time from the column.
fn decode(ctx: &StoreContext, row: StoredRecord) -> Result<Job> {
    let record: JobRecord = serde_json::from_str(&row.json).map_err(|e| unparsable(&row, e))?;
    if record.id != row.id {
        return Err(Error::new(
            ErrorKind::Serialization,
            format!(
                "the record stored under id {:?} names job {:?}",
                row.id, record.id
            ),
        )
        .with_job_id(&row.id));
    }
    // A pending run-now request moves the column away from the planned time on purpose.
    if record.next_run_time != row.next_run_time
        && (record.run_requested_at.is_none() || record.run_requested_at != row.next_run_time)
    {
        crate::logging::log_warn!(
            jobstore = ctx.alias(),
            job = %row.id,
            column = ?row.next_run_time,
            json = ?record.next_run_time,
            "the record's run time differs from its indexed column; the column wins"
        );
    }
    let mut job = ctx.codec().decode(record)?;
    job.set_next_run_time(row.next_run_time);
    job.set_revision(row.revision);
    Ok(job)
}

/// Why `row` does not parse: a newer record version if it says so, else corrupt JSON.
fn unparsable(row: &StoredRecord, e: serde_json::Error) -> Error {
    #[derive(serde::Deserialize)]
    struct Version {
        version: u32,
    }
    match serde_json::from_str::<Version>(&row.json) {
        Ok(v) if v.version > JobRecord::VERSION => Error::new(
            ErrorKind::Serialization,
            format!(
                "job {:?} was saved with record version {}, newer than this build reads ({})",
                row.id,
                v.version,
                JobRecord::VERSION
            ),
        )
        .with_source(e),
        _ => Error::serialization(
            format!("the stored record of job {:?} is corrupt", row.id),
            e,
        ),
    }
    .with_job_id(&row.id)
}

fn sort_jobs(jobs: &mut [Job]) {
    jobs.sort_by(|a, b| {
        let key = |j: &Job| (j.next_run_time().is_none(), j.next_run_time());
        key(a).cmp(&key(b)).then_with(|| a.id().cmp(b.id()))
    });
}

impl<R: RecordStore> JobStore for RecordJobStore<R> {
    fn capabilities(&self) -> Capabilities {
        self.records.capabilities()
    }

    async fn start(&self, ctx: StoreContext) -> Result<()> {
        self.records.start(&ctx).await?;
        let mut state = self.state();
        state.ctx = Some(ctx);
        state.skipped.clear();
        state.recent.clear();
        state.to_release.clear();
        state.last_claim_now = None;
        state.first_due = true;
        Ok(())
    }

    async fn shutdown(&self) -> Result<()> {
        {
            let mut state = self.state();
            state.ctx = None;
            state.skipped.clear();
            state.recent.clear();
        }
        self.records.shutdown().await
    }

    async fn lookup_job(&self, id: &str) -> Result<Option<Job>> {
        let ctx = self.ctx()?;
        let Some(row) = self.records.get(id).await? else {
            return Ok(None);
        };
        let revision = row.revision;
        match decode(&ctx, row) {
            Ok(job) => Ok(Some(job)),
            Err(e) => {
                if self.state().unreadable(id, revision) {
                    ctx.report_fault(id, FaultAction::Skipped, e.clone_shallow());
                }
                Err(e)
            }
        }
    }

    async fn get_due_jobs(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Job>> {
        let ctx = self.ctx()?;
        let limit = limit.max(1);
        let claim = self.claim_at(&ctx, now);
        let first = std::mem::take(&mut self.state().first_due);
        let mut claimed: Vec<String> = Vec::new();
        if let Some(claim) = &claim {
            let set_aside = std::mem::take(&mut self.state().to_release);
            if !set_aside.is_empty() {
                self.records.release_claims(&claim.node, &set_aside).await?;
            }
        }
        let mut jobs = loop {
            // Ask for as many more rows as this process skips, so that skipped rows (which
            // stay due) never fill the batch and starve the jobs behind them.
            let extra = self.state().skipped.len();
            let asked = limit.saturating_add(extra);
            let unclaimed = match &claim {
                Some(claim) if first => self.records.due_unclaimed(now, asked, &claim.node).await?,
                _ => None,
            };
            let mut rows = match (unclaimed, &claim) {
                (Some(rows), _) => rows,
                (None, Some(claim)) => {
                    let rows = self.records.claim_due(now, asked, claim).await?;
                    claimed.extend(rows.iter().map(|row| row.id.clone()));
                    rows
                }
                (None, None) => self.records.due(now, asked).await?,
            };
            let exhausted = rows.len() < asked;
            rows.retain(|row| row.next_run_time.is_some_and(|t| t <= now));
            let jobs = self.decode_rows(&ctx, rows, true);
            // Rows found unreadable just now took places: ask again with room for them.
            let found_more = self.state().skipped.len() > extra;
            if jobs.len() >= limit || exhausted || !found_more {
                break jobs;
            }
        };
        sort_jobs(&mut jobs);
        jobs.truncate(limit);
        if let Some(claim) = &claim {
            // Claimed but not handed out (skipped here, or past the limit): let others have
            // them now rather than when the claim lapses.
            let kept: std::collections::HashSet<&str> = jobs.iter().map(Job::id).collect();
            claimed.retain(|id| !kept.contains(id.as_str()));
            if !claimed.is_empty() {
                self.records.release_claims(&claim.node, &claimed).await?;
            }
        }
        let mut state = self.state();
        state.last_claim_now = claim.map(|_| now);
        state.recent = jobs
            .iter()
            .map(|j| (j.id_arc().clone(), j.clone()))
            .collect();
        drop(state);
        Ok(jobs)
    }

    async fn get_next_run_time(&self) -> Result<Option<DateTime<Utc>>> {
        let extra = self.state().skipped.len();
        let entries = self.records.next_run_times(extra.saturating_add(1)).await?;
        let state = self.state();
        let earliest = entries
            .into_iter()
            .filter(|e| !state.skips(&e.id, e.revision, true))
            .map(|e| e.next_run_time)
            .min();
        // Due at the last claim and still here: another node holds it. Look again shortly
        // instead of at once, which would spin until that node commits.
        Ok(match (earliest, state.last_claim_now) {
            (Some(t), Some(claimed_at)) if t <= claimed_at => Some(claimed_at + CLAIMED_POLL),
            (earliest, _) => earliest,
        })
    }

    async fn get_all_jobs(&self) -> Result<Vec<Job>> {
        let ctx = self.ctx()?;
        let rows = self.records.all().await?;
        let mut jobs = self.decode_rows(&ctx, rows, false);
        sort_jobs(&mut jobs);
        Ok(jobs)
    }

    async fn count_jobs(&self) -> Result<u64> {
        self.records.count().await
    }

    async fn add_job(&self, job: Job) -> Result<u64> {
        let ctx = self.ctx()?;
        let revision = fresh_revision();
        let row = self.encode(&ctx, &job, revision)?;
        let added = if self.records.group_adds() {
            self.adds.insert(&self.records, row).await?
        } else {
            self.records.insert(row).await?
        };
        if !added {
            return Err(Error::conflicting_id(job.id()));
        }
        self.forget(job.id());
        Ok(revision)
    }

    async fn add_jobs(&self, jobs: Vec<Job>) -> Result<Vec<Result<u64>>> {
        let ctx = self.ctx()?;
        let mut answers: Vec<Result<u64>> = Vec::with_capacity(jobs.len());
        let mut rows = Vec::with_capacity(jobs.len());
        // Which answer each row fills.
        let mut slots = Vec::with_capacity(jobs.len());
        for job in &jobs {
            let revision = fresh_revision();
            match self.encode(&ctx, job, revision) {
                Ok(row) => {
                    slots.push(answers.len());
                    rows.push(row);
                    answers.push(Ok(revision));
                }
                Err(e) => answers.push(Err(e)),
            }
        }
        if rows.is_empty() {
            return Ok(answers);
        }
        let expected = rows.len();
        let added = self.records.insert_many(rows).await?;
        if added.len() != expected {
            return Err(Error::new(
                ErrorKind::Backend,
                format!(
                    "job store {:?} answered {} of {expected} inserts; which jobs were added is \
                     unknown",
                    ctx.alias(),
                    added.len()
                ),
            ));
        }
        for (slot, added) in slots.into_iter().zip(added) {
            let id = jobs[slot].id();
            if added {
                self.forget(id);
            } else {
                answers[slot] = Err(Error::conflicting_id(id));
            }
        }
        Ok(answers)
    }

    async fn upsert_job(&self, job: Job) -> Result<u64> {
        let ctx = self.ctx()?;
        let revision = fresh_revision();
        let row = self.encode(&ctx, &job, revision)?;
        self.records.upsert(row).await?;
        self.forget(job.id());
        Ok(revision)
    }

    async fn update_job(&self, job: Job) -> Result<u64> {
        let ctx = self.ctx()?;
        let expected = job.revision();
        let revision = next_revision(expected);
        let row = self.encode(&ctx, &job, revision)?;
        if self.records.update(row, expected).await? {
            self.forget(job.id());
            return Ok(revision);
        }
        // Not applied: tell a missing job from a changed one.
        match self.records.get(job.id()).await? {
            None => Err(Error::job_not_found(job.id())),
            Some(_) => Err(Error::conflict(job.id())),
        }
    }

    async fn remove_job(&self, id: &str) -> Result<()> {
        if !self.records.remove(id).await? {
            return Err(Error::job_not_found(id));
        }
        self.forget(id);
        Ok(())
    }

    async fn remove_all_jobs(&self) -> Result<()> {
        self.records.remove_all().await?;
        let mut state = self.state();
        state.skipped.clear();
        state.recent.clear();
        Ok(())
    }

    async fn commit_fires(&self, commits: &[FireCommit]) -> Result<FireAnswers> {
        let ctx = self.ctx()?;
        let range = self.records.run_time_range();
        // Only these commits' jobs: a caller may commit a due batch in parts, and the other
        // parts' jobs must stay cached.
        let recent: HashMap<Arc<str>, Job> = {
            let mut state = self.state();
            commits
                .iter()
                .filter_map(|c| state.recent.remove_entry(&c.job_id))
                .collect()
        };
        let clustered = self.records.capabilities().cluster;
        let mut answers = FireAnswers::with_capacity(commits.len());
        let mut batch = Vec::with_capacity(commits.len());
        for commit in commits {
            let id = &commit.job_id;
            let cached = recent
                .get(id)
                .filter(|job| job.revision() == commit.revision)
                .cloned();
            let job = match cached {
                Some(job) => job,
                // Not read through this handle's last due batch: read it now. A row at
                // another revision cannot be committed, so there is nothing to write.
                None => match self.records.get(id).await? {
                    Some(row) if row.revision == commit.revision => match decode(&ctx, row) {
                        Ok(job) => job,
                        Err(e) => {
                            if self.state().unreadable(id, commit.revision) {
                                ctx.report_fault(id, FaultAction::Skipped, e);
                            }
                            answers.insert(id.clone(), FireAnswer::Stale);
                            continue;
                        }
                    },
                    _ => {
                        answers.insert(id.clone(), FireAnswer::Stale);
                        continue;
                    }
                },
            };
            let write = match commit.outcome {
                FireOutcome::Remove => None,
                outcome => {
                    let mut next = outcome.next_run_time();
                    if let Some(at) = next.filter(|at| !range.contains(at)) {
                        // The run still happens; the job waits, paused, for an operator rather
                        // than run at a rounded time.
                        let e =
                            Error::unrepresentable_run_time(id, at, *range.start(), *range.end());
                        ctx.report_fault(id, FaultAction::Paused, e);
                        next = None;
                    }
                    let mut job = job;
                    job.set_next_run_time(next);
                    match self.encode(&ctx, &job, next_revision(commit.revision)) {
                        Ok(row) => Some(row),
                        Err(e) => {
                            // It was read but cannot be written back (its trigger cannot
                            // save its state): set it aside rather than spin on it.
                            self.skip_until_changed(id, commit.revision);
                            ctx.report_fault(id, FaultAction::Skipped, e);
                            answers.insert(id.clone(), FireAnswer::Stale);
                            continue;
                        }
                    }
                }
            };
            let inflight = match ctx.node() {
                Some(node) if !commit.recover_runs.is_empty() && clustered => {
                    Some((node.id.to_string(), commit.recover_runs.clone()))
                }
                _ => None,
            };
            let max_inflight = commit.instance_limit.filter(|_| inflight.is_some());
            batch.push(RecordFireCommit {
                id: id.clone(),
                due_at: commit.due_at,
                expected_revision: commit.revision,
                write,
                inflight,
                max_inflight,
            });
        }
        if !batch.is_empty() {
            answers.extend(self.records.commit_fires(&batch).await?);
        }
        Ok(answers)
    }

    fn skip_until_changed(&self, id: &str, revision: u64) {
        let mut state = self.state();
        if state.last_claim_now.is_some() && state.to_release.len() < MAX_TO_RELEASE {
            state.to_release.push(id.to_owned());
        }
        // An unreadable record stays unreadable: setting it aside must not list it.
        if !state.skips(id, revision, false) {
            let skipped = Skipped {
                revision,
                unreadable: false,
            };
            state.skipped.insert(id.to_owned(), skipped);
        }
    }

    fn clear_skipped(&self) {
        let mut state = self.state();
        state.skipped.clear();
        state.recent.clear();
    }

    fn cluster(&self) -> Option<&dyn ClusterStore> {
        if self.records.capabilities().cluster {
            Some(&self.records)
        } else {
            None
        }
    }
}

/// The most set-aside rows remembered for release; beyond it, their claims simply lapse.
const MAX_TO_RELEASE: usize = 10_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_round_trip_across_the_whole_range() {
        let range = full_run_time_range();
        for t in [*range.start(), *range.end(), DateTime::UNIX_EPOCH] {
            assert_eq!(from_micros(to_micros(t)).unwrap(), t);
        }
        assert_eq!(
            from_micros(i64::MIN).unwrap_err().kind(),
            ErrorKind::Serialization
        );
        assert_eq!(range.end().timestamp_subsec_micros(), 999_999);
    }

    #[test]
    fn revisions_are_fresh_or_the_next_and_stay_exact_as_doubles() {
        let a = fresh_revision();
        assert!(a > 0 && a < (1 << 52));
        assert_ne!(a, fresh_revision());
        assert_eq!(next_revision(7), 8);
        let wrapped = next_revision((1 << 53) - 1);
        assert!(wrapped < (1 << 52));
    }
}

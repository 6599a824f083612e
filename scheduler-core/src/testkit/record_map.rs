//! The model record backend.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};

use crate::error::Result;
use crate::store::{
    Capabilities, Claim, FireAnswer, FireAnswers, InflightRun, NodeRecord, RecordFireCommit,
    RecordStore, ScheduleEntry, StoreContext, StoredRecord, from_micros, to_micros,
};

/// The model [`RecordStore`]: rows in a map in this process, laid out as a persistent backend
/// lays them out, so it reads as a template for one.
///
/// * a row is `(id, next run time as integer microseconds, revision, JSON)`, the integer
///   column indexed (here an ordered set of `(micros, id)`), as a backend does where its native
///   time type cannot hold every run time exactly;
/// * every method is one atomic step under one lock, as one statement or script would be;
/// * conditional writes compare the revision and write in that step.
///
/// Clones share the rows, so two [`RecordJobStore`](crate::RecordJobStore)s over clones behave
/// like two processes on one store. The rows outlive `shutdown`, as a database's do.
///
/// It implements the cluster contract too ([`Capabilities::with_cluster`], notifying): claims
/// are columns of the row (`claim_node`, `claim_token`, `claim_until`), heartbeats and
/// in-flight runs are tables of their own, and every insert, upsert or update wakes every
/// started clone's context, as a backend's `NOTIFY` and listener would.
#[derive(Debug, Default)]
pub struct RecordMap {
    rows: Arc<Mutex<Rows>>,
    /// This clone's key among the listeners (a process's connection).
    handle: u64,
}

impl Clone for RecordMap {
    fn clone(&self) -> Self {
        static HANDLES: AtomicU64 = AtomicU64::new(1);
        RecordMap {
            rows: self.rows.clone(),
            handle: HANDLES.fetch_add(1, Ordering::Relaxed),
        }
    }
}

#[derive(Debug, Default)]
struct Rows {
    by_id: HashMap<String, Row>,
    /// The index on the run time: `(micros, id)` of every scheduled row.
    by_time: BTreeSet<(i64, String)>,
    /// The heartbeat table: node id → (last seen µs, info).
    nodes: HashMap<String, (i64, String)>,
    /// The in-flight table: (job id, run time µs) → node.
    inflight: BTreeMap<(String, i64), String>,
    /// The started clones' contexts, woken after each write (a LISTEN per process).
    listeners: HashMap<u64, StoreContext>,
}

#[derive(Debug, Clone)]
struct Row {
    next_run_micros: Option<i64>,
    revision: u64,
    json: String,
    /// The claim columns: `None` when unclaimed (every write clears them).
    claim: Option<RowClaim>,
}

#[derive(Debug, Clone)]
struct RowClaim {
    node: String,
    #[expect(
        dead_code,
        reason = "kept as a backend keeps it, to re-read one claim's rows"
    )]
    token: String,
    until_micros: i64,
}

impl Rows {
    /// The first `limit` rows due at `now` (µs) that `node` may claim: unclaimed, claimed by
    /// it, or under a lapsed claim.
    fn claimable(&self, now: i64, limit: usize, node: &str) -> Vec<String> {
        self.by_time
            .iter()
            .take_while(|(micros, _)| *micros <= now)
            .filter(|(_, id)| {
                self.by_id.get(id).is_some_and(|row| match &row.claim {
                    Some(held) => held.node == node || held.until_micros <= now,
                    None => true,
                })
            })
            .take(limit)
            .map(|(_, id)| id.clone())
            .collect()
    }

    fn put(&mut self, record: StoredRecord) {
        self.delete(&record.id);
        let next_run_micros = record.next_run_time.map(to_micros);
        if let Some(micros) = next_run_micros {
            self.by_time.insert((micros, record.id.clone()));
        }
        self.by_id.insert(
            record.id,
            Row {
                next_run_micros,
                revision: record.revision,
                json: record.json,
                claim: None,
            },
        );
    }

    /// How many of job `id`'s runs are in flight on nodes that have a heartbeat row.
    fn live_inflight(&self, id: &str) -> usize {
        let job = (id.to_owned(), i64::MIN)..=(id.to_owned(), i64::MAX);
        self.inflight
            .range(job)
            .filter(|(_, node)| self.nodes.contains_key(*node))
            .count()
    }

    fn delete(&mut self, id: &str) -> bool {
        let Some(row) = self.by_id.remove(id) else {
            return false;
        };
        if let Some(micros) = row.next_run_micros {
            self.by_time.remove(&(micros, id.to_owned()));
        }
        true
    }

    fn record(&self, id: &str) -> Result<Option<StoredRecord>> {
        let Some(row) = self.by_id.get(id) else {
            return Ok(None);
        };
        Ok(Some(StoredRecord {
            id: id.to_owned(),
            next_run_time: row.next_run_micros.map(from_micros).transpose()?,
            revision: row.revision,
            json: row.json.clone(),
        }))
    }

    fn at_revision(&self, id: &str, revision: u64) -> bool {
        self.by_id
            .get(id)
            .is_some_and(|row| row.revision == revision)
    }
}

impl RecordMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many rows it holds.
    pub fn len(&self) -> usize {
        self.lock().by_id.len()
    }

    /// Whether it holds no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Rows> {
        // Every change keeps the map and the index consistent before anything can panic.
        self.rows.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Tells every started clone that a job now runs at `run_time` (none: paused, nothing
    /// to wake for), after the write (outside the lock, as a notification is delivered after
    /// the transaction commits), as the servers' notifications carry the run time.
    fn notify(&self, run_time: Option<DateTime<Utc>>) {
        let Some(run_time) = run_time else {
            return;
        };
        let listeners: Vec<StoreContext> = self.lock().listeners.values().cloned().collect();
        for ctx in listeners {
            ctx.wake_for(run_time);
        }
    }
}

impl RecordStore for RecordMap {
    async fn start(&self, ctx: &StoreContext) -> Result<()> {
        self.lock().listeners.insert(self.handle, ctx.clone());
        Ok(())
    }

    async fn shutdown(&self) -> Result<()> {
        self.lock().listeners.remove(&self.handle);
        Ok(())
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::persistent().with_cluster(true)
    }

    async fn get(&self, id: &str) -> Result<Option<StoredRecord>> {
        self.lock().record(id)
    }

    async fn due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<StoredRecord>> {
        let rows = self.lock();
        let now = to_micros(now);
        rows.by_time
            .iter()
            .take_while(|(micros, _)| *micros <= now)
            .take(limit)
            .filter_map(|(_, id)| rows.record(id).transpose())
            .collect()
    }

    async fn next_run_times(&self, limit: usize) -> Result<Vec<ScheduleEntry>> {
        let rows = self.lock();
        rows.by_time
            .iter()
            .take(limit)
            .map(|(micros, id)| {
                Ok(ScheduleEntry {
                    id: id.clone(),
                    next_run_time: from_micros(*micros)?,
                    revision: rows.by_id.get(id).map_or(0, |row| row.revision),
                })
            })
            .collect()
    }

    async fn all(&self) -> Result<Vec<StoredRecord>> {
        let rows = self.lock();
        rows.by_id
            .keys()
            .filter_map(|id| rows.record(id).transpose())
            .collect()
    }

    async fn insert(&self, record: StoredRecord) -> Result<bool> {
        let mut rows = self.lock();
        if rows.by_id.contains_key(&record.id) {
            return Ok(false);
        }
        let run_time = record.next_run_time;
        rows.put(record);
        drop(rows);
        self.notify(run_time);
        Ok(true)
    }

    async fn upsert(&self, record: StoredRecord) -> Result<()> {
        let run_time = record.next_run_time;
        self.lock().put(record);
        self.notify(run_time);
        Ok(())
    }

    async fn update(&self, record: StoredRecord, expected_revision: u64) -> Result<bool> {
        let mut rows = self.lock();
        if !rows.at_revision(&record.id, expected_revision) {
            return Ok(false);
        }
        let run_time = record.next_run_time;
        rows.put(record);
        drop(rows);
        self.notify(run_time);
        Ok(true)
    }

    async fn remove(&self, id: &str) -> Result<bool> {
        Ok(self.lock().delete(id))
    }

    async fn remove_all(&self) -> Result<()> {
        let mut rows = self.lock();
        rows.by_id.clear();
        rows.by_time.clear();
        Ok(())
    }

    async fn commit_fires(&self, commits: &[RecordFireCommit]) -> Result<FireAnswers> {
        let mut rows = self.lock();
        let mut answers = FireAnswers::with_capacity(commits.len());
        for commit in commits {
            let answer = if rows.at_revision(&commit.id, commit.expected_revision) {
                let admitted = commit
                    .max_inflight
                    .is_none_or(|limit| rows.live_inflight(&commit.id) < limit as usize);
                match &commit.write {
                    Some(record) => rows.put(record.clone()),
                    None => {
                        rows.delete(&commit.id);
                    }
                }
                match &commit.inflight {
                    _ if !admitted => FireAnswer::Refused,
                    Some((node, run_times)) => {
                        for t in run_times {
                            let key = (commit.id.to_string(), to_micros(*t));
                            rows.inflight.insert(key, node.clone());
                        }
                        FireAnswer::Committed
                    }
                    None => FireAnswer::Committed,
                }
            } else {
                FireAnswer::Stale
            };
            answers.insert(commit.id.clone(), answer);
        }
        Ok(answers)
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        claim: &Claim,
    ) -> Result<Vec<StoredRecord>> {
        let mut rows = self.lock();
        let claimable = rows.claimable(to_micros(now), limit, &claim.node);
        let mut claimed = Vec::with_capacity(claimable.len());
        for id in claimable {
            if let Some(row) = rows.by_id.get_mut(&id) {
                row.claim = Some(RowClaim {
                    node: claim.node.clone(),
                    token: claim.token.clone(),
                    until_micros: to_micros(claim.until),
                });
            }
            claimed.extend(rows.record(&id)?);
        }
        Ok(claimed)
    }

    async fn due_unclaimed(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        node: &str,
    ) -> Result<Option<Vec<StoredRecord>>> {
        let rows = self.lock();
        let mut due = Vec::with_capacity(limit);
        for id in rows.claimable(to_micros(now), limit, node) {
            due.extend(rows.record(&id)?);
        }
        Ok(Some(due))
    }

    async fn release_claims(&self, node: &str, ids: &[String]) -> Result<()> {
        let mut rows = self.lock();
        for id in ids {
            if let Some(row) = rows.by_id.get_mut(id)
                && row.claim.as_ref().is_some_and(|held| held.node == node)
            {
                row.claim = None;
            }
        }
        Ok(())
    }

    async fn heartbeat(&self, node: &NodeRecord) -> Result<()> {
        let seen = (to_micros(node.last_seen), node.info.clone());
        self.lock().nodes.insert(node.id.clone(), seen);
        Ok(())
    }

    async fn nodes(&self) -> Result<Vec<NodeRecord>> {
        self.lock()
            .nodes
            .iter()
            .map(|(id, (micros, info))| {
                Ok(NodeRecord {
                    id: id.clone(),
                    last_seen: from_micros(*micros)?,
                    info: info.clone(),
                })
            })
            .collect()
    }

    async fn remove_node(&self, id: &str, last_seen: DateTime<Utc>) -> Result<bool> {
        let mut rows = self.lock();
        if rows
            .nodes
            .get(id)
            .is_some_and(|(micros, _)| *micros == to_micros(last_seen))
        {
            rows.nodes.remove(id);
            return Ok(true);
        }
        Ok(false)
    }

    async fn finish_run(&self, job_id: &str, run_time: DateTime<Utc>) -> Result<()> {
        let key = (job_id.to_owned(), to_micros(run_time));
        self.lock().inflight.remove(&key);
        Ok(())
    }

    async fn adopt_runs(&self, from: &str, to: &str) -> Result<Vec<InflightRun>> {
        let mut rows = self.lock();
        let mut adopted = Vec::new();
        for ((job_id, micros), node) in rows.inflight.iter_mut() {
            if node == from {
                to.clone_into(node);
                adopted.push(InflightRun {
                    job_id: job_id.clone(),
                    run_time: from_micros(*micros)?,
                    node: to.to_owned(),
                });
            }
        }
        Ok(adopted)
    }

    async fn inflight_runs(&self) -> Result<Vec<InflightRun>> {
        self.lock()
            .inflight
            .iter()
            .map(|((job_id, micros), node)| {
                Ok(InflightRun {
                    job_id: job_id.clone(),
                    run_time: from_micros(*micros)?,
                    node: node.clone(),
                })
            })
            .collect()
    }
}

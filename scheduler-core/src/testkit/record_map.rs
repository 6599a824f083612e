//! The model record backend.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};

use crate::error::Result;
use crate::store::{
    FireAnswer, FireAnswers, RecordFireCommit, RecordStore, ScheduleEntry, StoreContext,
    StoredRecord, from_micros, to_micros,
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
#[derive(Debug, Clone, Default)]
pub struct RecordMap {
    rows: Arc<Mutex<Rows>>,
}

#[derive(Debug, Default)]
struct Rows {
    by_id: HashMap<String, Row>,
    /// The index on the run time: `(micros, id)` of every scheduled row.
    by_time: BTreeSet<(i64, String)>,
}

#[derive(Debug, Clone)]
struct Row {
    next_run_micros: Option<i64>,
    revision: u64,
    json: String,
}

impl Rows {
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
            },
        );
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
}

impl RecordStore for RecordMap {
    async fn start(&self, _ctx: &StoreContext) -> Result<()> {
        Ok(())
    }

    async fn shutdown(&self) -> Result<()> {
        Ok(())
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
        rows.put(record);
        Ok(true)
    }

    async fn upsert(&self, record: StoredRecord) -> Result<()> {
        self.lock().put(record);
        Ok(())
    }

    async fn update(&self, record: StoredRecord, expected_revision: u64) -> Result<bool> {
        let mut rows = self.lock();
        if !rows.at_revision(&record.id, expected_revision) {
            return Ok(false);
        }
        rows.put(record);
        Ok(true)
    }

    async fn remove(&self, id: &str) -> Result<bool> {
        Ok(self.lock().delete(id))
    }

    async fn remove_all(&self) -> Result<()> {
        *self.lock() = Rows::default();
        Ok(())
    }

    async fn commit_fires(&self, commits: &[RecordFireCommit]) -> Result<FireAnswers> {
        let mut rows = self.lock();
        let mut answers = FireAnswers::with_capacity(commits.len());
        for commit in commits {
            let answer = if rows.at_revision(&commit.id, commit.expected_revision) {
                match &commit.write {
                    Some(record) => rows.put(record.clone()),
                    None => {
                        rows.delete(&commit.id);
                    }
                }
                FireAnswer::Committed
            } else {
                FireAnswer::Stale
            };
            answers.insert(commit.id.clone(), answer);
        }
        Ok(answers)
    }
}

//! Record-level operations for tools that inspect and edit a persistent store without the
//! program that owns its jobs: listing, pausing, resuming, removing, exporting and importing
//! job records, and asking the schedulers on the store to run a job now ([`request_run`]).
//!
//! They work on a [`RecordStore`]'s rows and never resolve job functions, so they need no
//! registered code; triggers are restored (for `resume` and fire-time previews) from a
//! [`TriggerRegistry`] of built-in kinds. A row whose record this build cannot read is
//! reported as [`RecordView::unreadable`] and never written. Every edit is a conditional write
//! on the revision read, so a scheduler's concurrent change is never overwritten: the edit
//! fails with [`Conflict`](ErrorKind::Conflict) instead.
//!
//! ```
//! # async fn demo(store: &impl scheduler_core::RecordStore) -> scheduler_core::Result<()> {
//! use scheduler_core::{Clock, SystemClock};
//! use scheduler_core::store::admin;
//! // The paused jobs that call a report function.
//! let mut filter = admin::Filter::default();
//! filter.paused = Some(true);
//! filter.function = Some("report_*".into());
//! for view in admin::list(store).await?.iter().filter(|v| filter.matches(v)) {
//!     println!("{} {:?}", view.id, view.next_run_time);
//! }
//! admin::pause(store, "nightly-report").await?;
//! // Run it once now, on whichever scheduler runs this store; it stays paused.
//! admin::request_run(store, "nightly-report", SystemClock.now()).await?;
//! # Ok(())
//! # }
//! ```

mod filter;

use chrono::{DateTime, TimeDelta, Utc};

pub use filter::Filter;

use super::record::{fresh_revision, next_revision};
use super::{RecordFireCommit, RecordStore, StoredRecord};
use crate::error::{Error, ErrorKind, Result};
use crate::job::{JobRecord, RunNowRequest, whole_micros};
use crate::store::FireAnswer;
use crate::trigger::TriggerRegistry;

/// A stored row, with its record decoded if this build can read it.
#[derive(Debug, Clone)]
pub struct RecordView {
    /// The job's id (the row's key).
    pub id: String,
    /// The row's next run time; `None` when paused.
    pub next_run_time: Option<DateTime<Utc>>,
    /// The row's revision.
    pub revision: u64,
    /// The decoded record, or why it cannot be read.
    pub record: std::result::Result<JobRecord, String>,
    /// The stored JSON text, unchanged.
    pub json: String,
}

impl RecordView {
    /// Decodes `row`'s record without failing: an unreadable one is kept as the reason.
    pub fn new(row: StoredRecord) -> Self {
        let record = decode(&row.json);
        RecordView {
            id: row.id,
            next_run_time: row.next_run_time,
            revision: row.revision,
            record,
            json: row.json,
        }
    }

    /// Whether this build cannot read the record (corrupt JSON, an unknown schema version).
    pub fn unreadable(&self) -> bool {
        self.record.is_err()
    }

    /// The run-now request pending on this row: the record's `run_requested_at`, while the
    /// row's run time is still that time.
    pub fn run_request(&self) -> Option<RunNowRequest> {
        let record = self.record.as_ref().ok()?;
        let request = RunNowRequest::new(record.run_requested_at?, record.next_run_time);
        request.is_pending(self.next_run_time).then_some(request)
    }

    /// The planned next run time: the row's, or the one a pending run-now request keeps
    /// (`None`: paused).
    pub fn planned_run_time(&self) -> Option<DateTime<Utc>> {
        match self.run_request() {
            Some(request) => request.planned,
            None => self.next_run_time,
        }
    }
}

fn decode(json: &str) -> std::result::Result<JobRecord, String> {
    let record: JobRecord = serde_json::from_str(json).map_err(|e| e.to_string())?;
    if record.version > JobRecord::VERSION {
        return Err(format!(
            "record version {} is newer than this build reads ({})",
            record.version,
            JobRecord::VERSION
        ));
    }
    Ok(record)
}

/// Every row, ordered as APScheduler's `print_jobs` orders jobs: by next run time, paused
/// ones last, ties by id. Keep the ones a [`Filter`] [`matches`](Filter::matches) to answer
/// an operator's question.
pub async fn list(store: &impl RecordStore) -> Result<Vec<RecordView>> {
    let mut views: Vec<RecordView> = store
        .all()
        .await?
        .into_iter()
        .map(RecordView::new)
        .collect();
    views.sort_by(|a, b| {
        let key = |v: &RecordView| (v.next_run_time.is_none(), v.next_run_time);
        key(a).cmp(&key(b)).then_with(|| a.id.cmp(&b.id))
    });
    Ok(views)
}

/// The row with `id`; [`JobNotFound`](ErrorKind::JobNotFound) if there is none.
pub async fn get(store: &impl RecordStore, id: &str) -> Result<RecordView> {
    store
        .get(id)
        .await?
        .map(RecordView::new)
        .ok_or_else(|| Error::job_not_found(id))
}

/// Up to `n` fire times of the record's trigger from `now`, as the scheduler would compute
/// them (fewer if the trigger finishes). Fails for a trigger kind `triggers` does not know.
pub fn next_fire_times(
    record: &JobRecord,
    triggers: &TriggerRegistry,
    now: DateTime<Utc>,
    n: usize,
) -> Result<Vec<DateTime<Utc>>> {
    let trigger = triggers.restore(&record.trigger)?;
    let mut times = Vec::with_capacity(n);
    let mut previous = None;
    while times.len() < n {
        let next = trigger
            .next_fire_time(previous, now)
            .map_err(|e| crate::job::trigger_failed(&*trigger, "its next fire times", e))?;
        match next {
            // A trigger that does not move forward would loop here forever.
            Some(t) if previous.is_none_or(|p| t > p) => {
                times.push(t);
                previous = Some(t);
            }
            _ => break,
        }
    }
    Ok(times)
}

fn readable(view: &RecordView) -> Result<JobRecord> {
    view.record.clone().map_err(|reason| {
        Error::new(
            ErrorKind::Serialization,
            format!(
                "job {:?} is unreadable here, left unchanged: {reason}",
                view.id
            ),
        )
        .with_job_id(&view.id)
    })
}

/// Writes `record` with the run time `next_run_time` in place of `view`'s row, ending any
/// run-now request (the run time is set on purpose).
async fn write(
    store: &impl RecordStore,
    view: &RecordView,
    mut record: JobRecord,
    next_run_time: Option<DateTime<Utc>>,
) -> Result<JobRecord> {
    record.next_run_time = next_run_time;
    record.run_requested_at = None;
    write_row(store, view, record, next_run_time).await
}

/// Writes `record` in place of `view`'s row, with `next_run_time` in the indexed column, if
/// the row is still at the revision read.
async fn write_row(
    store: &impl RecordStore,
    view: &RecordView,
    record: JobRecord,
    next_run_time: Option<DateTime<Utc>>,
) -> Result<JobRecord> {
    let json = serde_json::to_string(&record)
        .map_err(|e| Error::serialization(format!("job {:?} could not be encoded", view.id), e))?;
    let row = StoredRecord {
        id: view.id.clone(),
        next_run_time,
        revision: next_revision(view.revision),
        json,
    };
    if store.update(row, view.revision).await? {
        Ok(record)
    } else {
        Err(Error::conflict(&view.id))
    }
}

/// Pauses the job `id` (no next run time), as `pause_job` does. Fails with
/// [`Conflict`](ErrorKind::Conflict) if the row changed since it was read, and with
/// [`Serialization`](ErrorKind::Serialization) for an unreadable record (left unchanged).
pub async fn pause(store: &impl RecordStore, id: &str) -> Result<JobRecord> {
    let view = get(store, id).await?;
    let record = readable(&view)?;
    write(store, &view, record, None).await
}

/// Resumes the job `id` as `resume_job` does: its next run time is the trigger's first fire
/// time from `now`. A trigger with no fire time left is refused with
/// [`TriggerFailed`](ErrorKind::TriggerFailed) and the job kept (the scheduler would remove
/// it; a tool should not delete a job unasked). Conflicts as [`pause`] does.
pub async fn resume(
    store: &impl RecordStore,
    id: &str,
    triggers: &TriggerRegistry,
    now: DateTime<Utc>,
) -> Result<JobRecord> {
    let view = get(store, id).await?;
    let record = readable(&view)?;
    let next = next_fire_times(&record, triggers, now, 1)?.first().copied();
    let Some(next) = next else {
        return Err(Error::new(
            ErrorKind::TriggerFailed,
            format!("job {id:?} has no fire time left; it stays as it is (remove it instead)"),
        )
        .with_job_id(id));
    };
    write(store, &view, record, Some(next)).await
}

/// Asks whichever scheduler runs this store to run the job `id` once, now, without changing
/// its schedule: stores a [`RunNowRequest`] with it. The row's run time becomes `now`, so every
/// scheduler on the store sees the job as due; the record keeps the planned run time, which
/// the scheduler that fires the job restores in the same conditional commit (a paused job
/// stays paused). The run obeys `max_instances` and publishes the usual events.
///
/// A request already pending is kept as it is and answered (a second request before the
/// first is honoured does not run the job twice). Fails as [`pause`] does: a
/// [`Conflict`](ErrorKind::Conflict) if the row changed since it was read, and
/// [`Serialization`](ErrorKind::Serialization) for an unreadable record.
pub async fn request_run(
    store: &impl RecordStore,
    id: &str,
    now: DateTime<Utc>,
) -> Result<RunNowRequest> {
    let view = get(store, id).await?;
    let mut record = readable(&view)?;
    if let Some(pending) = view.run_request() {
        return Ok(pending);
    }
    // The column is the authority on the planned time (a spent request's copy is not).
    let planned = view.next_run_time;
    let mut at = whole_micros(now);
    if planned == Some(at) {
        // A request at the planned time itself could not be told from it.
        at += TimeDelta::microseconds(1);
    }
    record.next_run_time = planned;
    record.run_requested_at = Some(at);
    write_row(store, &view, record, Some(at)).await?;
    Ok(RunNowRequest::new(at, planned))
}

/// Removes the job `id` if it is still at the revision read (readable or not: removing is
/// how an operator gets rid of a corrupt row). Conflicts as [`pause`] does.
pub async fn remove(store: &impl RecordStore, id: &str) -> Result<()> {
    let view = get(store, id).await?;
    let commit = RecordFireCommit {
        id: id.into(),
        due_at: view.next_run_time.unwrap_or(DateTime::UNIX_EPOCH),
        expected_revision: view.revision,
        write: None,
        inflight: None,
        max_inflight: None,
    };
    let answers = store.commit_fires(std::slice::from_ref(&commit)).await?;
    match answers.get(id) {
        Some(FireAnswer::Committed) => Ok(()),
        _ => Err(Error::conflict(id)),
    }
}

/// One export line: the stored record JSON on one line. Fails for a row whose text is not
/// JSON at all (nothing could bring it back).
pub fn export_line(view: &RecordView) -> Result<String> {
    let value: serde_json::Value = serde_json::from_str(&view.json).map_err(|e| {
        Error::serialization(format!("job {:?} is not JSON; not exported", view.id), e)
            .with_job_id(&view.id)
    })?;
    Ok(value.to_string())
}

/// What [`import`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// Ids added.
    pub added: Vec<String>,
    /// Ids that replaced an existing job.
    pub replaced: Vec<String>,
}

/// Reads job records, one JSON object per line (blank lines ignored); every line is checked
/// before anything is written, so a bad line writes nothing. Fails with
/// [`Serialization`](ErrorKind::Serialization) naming the line.
pub fn parse_import(text: &str) -> Result<Vec<JobRecord>> {
    let mut records = Vec::new();
    let mut ids = std::collections::HashSet::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let record = decode(line)
            .map_err(|e| Error::new(ErrorKind::Serialization, format!("line {}: {e}", n + 1)))?;
        if !ids.insert(record.id.clone()) {
            return Err(Error::new(
                ErrorKind::ConflictingId,
                format!("line {}: job id {:?} appears twice", n + 1, record.id),
            ));
        }
        records.push(record);
    }
    Ok(records)
}

/// Writes `records`. Without `replace`, an id already in the store is refused
/// ([`ConflictingId`](ErrorKind::ConflictingId)) and nothing is written, unless another
/// process adds the same id in between (then the records before it are kept, and the error
/// says which). With `replace`, existing jobs are overwritten.
pub async fn import(
    store: &impl RecordStore,
    records: Vec<JobRecord>,
    replace: bool,
) -> Result<ImportSummary> {
    let mut summary = ImportSummary::default();
    let mut exists = Vec::with_capacity(records.len());
    for record in &records {
        exists.push(store.get(&record.id).await?.is_some());
    }
    if !replace {
        let taken: Vec<&str> = records
            .iter()
            .zip(&exists)
            .filter(|(_, e)| **e)
            .map(|(r, _)| r.id.as_str())
            .collect();
        if !taken.is_empty() {
            return Err(Error::new(
                ErrorKind::ConflictingId,
                format!(
                    "jobs already in the store (nothing imported; replace them with --replace): {}",
                    taken.join(", ")
                ),
            ));
        }
    }
    for (record, existed) in records.into_iter().zip(exists) {
        let id = record.id.clone();
        let json = serde_json::to_string(&record)
            .map_err(|e| Error::serialization(format!("job {id:?} could not be encoded"), e))?;
        let row = StoredRecord {
            id: id.clone(),
            next_run_time: record.next_run_time,
            revision: fresh_revision(),
            json,
        };
        if replace {
            store.upsert(row).await?;
        } else if !store.insert(row).await? {
            return Err(Error::new(
                ErrorKind::ConflictingId,
                format!(
                    "job {id:?} was added by someone else meanwhile; imported before it: {}",
                    summary.added.join(", ")
                ),
            )
            .with_job_id(id));
        }
        if existed {
            summary.replaced.push(id);
        } else {
            summary.added.push(id);
        }
    }
    Ok(summary)
}

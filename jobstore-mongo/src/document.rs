//! A job's MongoDB document: how a stored record and its run time, revision and JSON map to
//! BSON fields and back, and the filters that select documents by them.

use chrono::{DateTime, SecondsFormat, Utc};
use mongodb::bson::{Bson, Document, doc};
use scheduler_core::store::record::full_run_time_range;
use scheduler_core::store::{StoredRecord, from_micros, to_micros};
use scheduler_core::{Error, ErrorKind, Result};

use crate::records::field;

pub(crate) fn micros_bson(t: Option<DateTime<Utc>>) -> Bson {
    t.map_or(Bson::Null, |t| Bson::Int64(to_micros(t)))
}

pub(crate) fn text_bson(t: Option<DateTime<Utc>>) -> Bson {
    t.map_or(Bson::Null, |t| {
        Bson::String(t.to_rfc3339_opts(SecondsFormat::Micros, true))
    })
}

pub(crate) fn revision_bson(revision: u64) -> Result<Bson> {
    i64::try_from(revision).map(Bson::Int64).map_err(|_| {
        Error::new(
            ErrorKind::Unrepresentable,
            format!("revision {revision} does not fit a signed 64-bit integer"),
        )
    })
}

/// The document for `record`, `_id` included: what an insert writes.
pub(crate) fn to_document(record: &StoredRecord) -> Result<Document> {
    let mut doc = doc! { field::ID: record.id.as_str() };
    doc.extend(job_fields(record)?);
    Ok(doc)
}

/// The fields a write of `record` sets.
pub(crate) fn job_fields(record: &StoredRecord) -> Result<Document> {
    Ok(doc! {
        field::NEXT_RUN_TIME: micros_bson(record.next_run_time),
        field::NEXT_RUN_TIME_TEXT: text_bson(record.next_run_time),
        field::REVISION: revision_bson(record.revision)?,
        field::JOB_STATE: record.json.as_str(),
    })
}

/// The update that writes `record` over a stored job: its fields set, its claim cleared (every
/// write of a job does), its runs in flight kept, and `inflight` runs added on their node.
/// Fields an operator added stay.
pub(crate) fn write_update(
    record: &StoredRecord,
    inflight: Option<&(String, Vec<DateTime<Utc>>)>,
) -> Result<Document> {
    let mut set = job_fields(record)?;
    if let Some((node, runs)) = inflight {
        for run in runs {
            set.insert(crate::cluster::inflight_path(*run), node.as_str());
        }
    }
    Ok(doc! { "$set": set, "$unset": crate::cluster::no_claim() })
}

/// An integer however it is stored: Int64, Int32 (a server or a tool may shrink small
/// values), or a whole Double (what the mongo shell writes for a bare number).
pub(crate) fn integer(value: &Bson) -> Option<i64> {
    match *value {
        Bson::Int64(n) => Some(n),
        Bson::Int32(n) => Some(i64::from(n)),
        // Exact only below 2^53; the cast is exact there.
        #[allow(clippy::cast_possible_truncation)]
        Bson::Double(x) if x.fract() == 0.0 && x.abs() < 9_007_199_254_740_992.0 => Some(x as i64),
        _ => None,
    }
}

/// The run time in a document: `Ok(None)` when paused (null or absent), an error text for a
/// value that is no run time.
pub(crate) fn run_time_of(doc: &Document) -> std::result::Result<Option<DateTime<Utc>>, String> {
    match doc.get(field::NEXT_RUN_TIME) {
        None | Some(Bson::Null) => Ok(None),
        Some(value) => integer(value)
            .and_then(|micros| from_micros(micros).ok())
            .filter(|t| full_run_time_range().contains(t))
            .map(Some)
            .ok_or_else(|| {
                format!(
                    "{} is {value}, not integer microseconds since 1970 in the years 1-9999",
                    field::NEXT_RUN_TIME
                )
            }),
    }
}

pub(crate) fn id_of(doc: &Document) -> String {
    match doc.get(field::ID) {
        Some(Bson::String(id)) => id.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

pub(crate) fn revision_of(doc: &Document) -> u64 {
    doc.get(field::REVISION)
        .and_then(integer)
        .and_then(|r| u64::try_from(r).ok())
        .unwrap_or(0)
}

/// The stored record of a document. A document this store cannot read (a run time or job
/// state of the wrong type) comes back with a job state that is not JSON, so that the adapter
/// reports it and leaves it alone, like any corrupt record.
pub(crate) fn from_document(doc: &Document) -> StoredRecord {
    let id = id_of(doc);
    let revision = revision_of(doc);
    let (next_run_time, json) = match (run_time_of(doc), doc.get(field::JOB_STATE)) {
        (Ok(t), Some(Bson::String(json))) => (t, json.clone()),
        (Err(why), _) => (None, unreadable(&id, &why)),
        (Ok(t), other) => {
            let why = match other {
                None => format!("{} is missing", field::JOB_STATE),
                Some(v) => format!(
                    "{} is a {:?}, not JSON text",
                    field::JOB_STATE,
                    v.element_type()
                ),
            };
            (t, unreadable(&id, &why))
        }
    };
    StoredRecord {
        id,
        next_run_time,
        revision,
        json,
    }
}

pub(crate) fn unreadable(id: &str, why: &str) -> String {
    tracing::debug!(job = id, why, "unreadable MongoDB job document");
    format!("unreadable job document: {why}")
}

/// The run-time filter of scheduled documents up to `until`: a numeric range, which neither
/// null nor a missing field matches (unlike `$ne: null` on some servers).
pub(crate) fn scheduled_until(until: DateTime<Utc>) -> Document {
    let first = to_micros(*full_run_time_range().start());
    doc! { field::NEXT_RUN_TIME: { "$gte": first, "$lte": to_micros(until) } }
}

pub(crate) fn conditional(id: &str, expected_revision: u64) -> Result<Document> {
    Ok(doc! { field::ID: id, field::REVISION: revision_bson(expected_revision)? })
}

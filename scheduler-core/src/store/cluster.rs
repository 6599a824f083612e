//! What several schedulers sharing one store keep in it besides the jobs: their heartbeats
//! ([`NodeRecord`]), their claims on due rows ([`Claim`]), and the runs in flight of jobs whose
//! lost runs are recovered ([`InflightRun`]). The [`RecordStore`] methods
//! that keep them are `claim_due`, `due_unclaimed`, `release_claims`, `join`, `heartbeat`,
//! `nodes`, `remove_node`, `finish_run`, `adopt_runs` and `inflight_runs`; a backend that implements them declares
//! [`Capabilities::with_cluster`](super::Capabilities::with_cluster).
//!
//! Every time here is whole microseconds, stored as integer microseconds
//! ([`to_micros`](super::to_micros), [`from_micros`](super::from_micros)).

use chrono::{DateTime, Utc};

use super::RecordStore;
use crate::clock::BoxFuture;
use crate::error::Result;

/// A scheduler node's heartbeat, as a backend keeps it (one row, hash field or document per
/// node).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    /// The node's id (unique per running scheduler; the key).
    pub id: String,
    /// When the node last wrote its heartbeat, whole microseconds (stored as integer µs).
    pub last_seen: DateTime<Utc>,
    /// Opaque JSON (host, pid, started_at, version): store and return it unchanged.
    pub info: String,
}

/// A claim on due rows: who holds it, until when, and a token unique to this claim call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The claiming node's id.
    pub node: String,
    /// Unique per `claim_due` call (a UUID string); lets a backend re-read exactly the rows
    /// it claimed.
    pub token: String,
    /// The claim lapses at this instant (whole µs); after it, other nodes may claim the row.
    pub until: DateTime<Utc>,
}

impl Claim {
    /// A claim by `node` lasting until `until`, with a fresh token.
    pub fn new(node: impl Into<String>, until: DateTime<Utc>) -> Self {
        Claim {
            node: node.into(),
            token: uuid::Uuid::new_v4().to_string(),
            until: crate::job::whole_micros(until),
        }
    }
}

/// A fired run of a job with recovery on, in flight on `node`: recorded atomically with the
/// fire commit, removed when the run finishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InflightRun {
    /// The job's id.
    pub job_id: String,
    /// The scheduled run time (whole µs). `(job_id, run_time)` is the key.
    pub run_time: DateTime<Utc>,
    /// The node running it.
    pub node: String,
}

/// The cluster side of a job store, as the scheduler calls it (object-safe): the
/// [`RecordStore`] methods of the same names, implemented for every `RecordStore` (and so a
/// part of [`DynRecordStore`](super::DynRecordStore)). Got from
/// [`JobStore::cluster`](super::JobStore::cluster).
#[allow(missing_docs)] // each method is the `RecordStore` method of the same name
pub trait ClusterStore: Send + Sync {
    fn join<'a>(&'a self, node: &'a NodeRecord) -> BoxFuture<'a, Result<()>>;
    fn heartbeat<'a>(&'a self, node: &'a NodeRecord) -> BoxFuture<'a, Result<()>>;
    fn nodes(&self) -> BoxFuture<'_, Result<Vec<NodeRecord>>>;
    fn remove_node<'a>(
        &'a self,
        id: &'a str,
        last_seen: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<bool>>;
    fn finish_run<'a>(
        &'a self,
        job_id: &'a str,
        run_time: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<()>>;
    fn adopt_runs<'a>(
        &'a self,
        from: &'a str,
        to: &'a str,
    ) -> BoxFuture<'a, Result<Vec<InflightRun>>>;
    fn inflight_runs(&self) -> BoxFuture<'_, Result<Vec<InflightRun>>>;
}

impl<R: RecordStore> ClusterStore for R {
    fn join<'a>(&'a self, node: &'a NodeRecord) -> BoxFuture<'a, Result<()>> {
        Box::pin(RecordStore::join(self, node))
    }
    fn heartbeat<'a>(&'a self, node: &'a NodeRecord) -> BoxFuture<'a, Result<()>> {
        Box::pin(RecordStore::heartbeat(self, node))
    }
    fn nodes(&self) -> BoxFuture<'_, Result<Vec<NodeRecord>>> {
        Box::pin(RecordStore::nodes(self))
    }
    fn remove_node<'a>(
        &'a self,
        id: &'a str,
        last_seen: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(RecordStore::remove_node(self, id, last_seen))
    }
    fn finish_run<'a>(
        &'a self,
        job_id: &'a str,
        run_time: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(RecordStore::finish_run(self, job_id, run_time))
    }
    fn adopt_runs<'a>(
        &'a self,
        from: &'a str,
        to: &'a str,
    ) -> BoxFuture<'a, Result<Vec<InflightRun>>> {
        Box::pin(RecordStore::adopt_runs(self, from, to))
    }
    fn inflight_runs(&self) -> BoxFuture<'_, Result<Vec<InflightRun>>> {
        Box::pin(RecordStore::inflight_runs(self))
    }
}

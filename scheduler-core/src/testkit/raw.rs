//! Raw access to a persistent store's rows and cluster tables, for the cases that plant
//! records or call the record-level contract directly.

use chrono::{DateTime, Utc};

use crate::clock::BoxFuture;
use crate::error::{Error, ErrorKind, Result};
use crate::store::{
    Claim, FireAnswers, InflightRun, NodeRecord, RecordFireCommit, RecordJobStore, RecordStore,
    StoredRecord,
};

/// Raw access to a persistent store's rows, for the cases that plant records a process cannot
/// read and check that they are left untouched, and (the provided methods) to the cluster
/// methods of [`RecordStore`]. Every [`RecordJobStore`] has it.
pub trait RawRecords: Send + Sync + 'static {
    /// Writes `record` as is (adding or replacing the row), bypassing the codec.
    fn put_raw(&self, record: StoredRecord) -> BoxFuture<'_, Result<()>>;

    /// The row with `id` as stored.
    fn get_raw<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<StoredRecord>>>;

    /// [`RecordStore::commit_fires`], as given.
    fn commit_raw<'a>(
        &'a self,
        commits: &'a [RecordFireCommit],
    ) -> BoxFuture<'a, Result<FireAnswers>> {
        let _ = commits;
        unsupported()
    }

    /// [`RecordStore::claim_due`].
    fn claim_due<'a>(
        &'a self,
        now: DateTime<Utc>,
        limit: usize,
        claim: &'a Claim,
    ) -> BoxFuture<'a, Result<Vec<StoredRecord>>> {
        let _ = (now, limit, claim);
        unsupported()
    }

    /// [`RecordStore::release_claims`].
    fn release_claims<'a>(&'a self, node: &'a str, ids: &'a [String]) -> BoxFuture<'a, Result<()>> {
        let _ = (node, ids);
        unsupported()
    }

    /// [`RecordStore::heartbeat`].
    fn heartbeat<'a>(&'a self, node: &'a NodeRecord) -> BoxFuture<'a, Result<()>> {
        let _ = node;
        unsupported()
    }

    /// [`RecordStore::nodes`].
    fn nodes(&self) -> BoxFuture<'_, Result<Vec<NodeRecord>>> {
        unsupported()
    }

    /// [`RecordStore::remove_node`].
    fn remove_node<'a>(
        &'a self,
        id: &'a str,
        last_seen: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<bool>> {
        let _ = (id, last_seen);
        unsupported()
    }

    /// [`RecordStore::finish_run`].
    fn finish_run<'a>(
        &'a self,
        job_id: &'a str,
        run_time: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<()>> {
        let _ = (job_id, run_time);
        unsupported()
    }

    /// [`RecordStore::adopt_runs`].
    fn adopt_runs<'a>(
        &'a self,
        from: &'a str,
        to: &'a str,
    ) -> BoxFuture<'a, Result<Vec<InflightRun>>> {
        let _ = (from, to);
        unsupported()
    }

    /// [`RecordStore::inflight_runs`].
    fn inflight_runs(&self) -> BoxFuture<'_, Result<Vec<InflightRun>>> {
        unsupported()
    }
}

fn unsupported<'a, T: Send + 'a>() -> BoxFuture<'a, Result<T>> {
    Box::pin(async {
        Err(Error::new(
            ErrorKind::Backend,
            "this store gives no raw access to the cluster methods",
        ))
    })
}

impl<R: RecordStore> RawRecords for RecordJobStore<R> {
    fn put_raw(&self, record: StoredRecord) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.records().upsert(record))
    }

    fn get_raw<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<StoredRecord>>> {
        Box::pin(self.records().get(id))
    }

    fn commit_raw<'a>(
        &'a self,
        commits: &'a [RecordFireCommit],
    ) -> BoxFuture<'a, Result<FireAnswers>> {
        Box::pin(self.records().commit_fires(commits))
    }

    fn claim_due<'a>(
        &'a self,
        now: DateTime<Utc>,
        limit: usize,
        claim: &'a Claim,
    ) -> BoxFuture<'a, Result<Vec<StoredRecord>>> {
        Box::pin(self.records().claim_due(now, limit, claim))
    }

    fn release_claims<'a>(&'a self, node: &'a str, ids: &'a [String]) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.records().release_claims(node, ids))
    }

    fn heartbeat<'a>(&'a self, node: &'a NodeRecord) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.records().heartbeat(node))
    }

    fn nodes(&self) -> BoxFuture<'_, Result<Vec<NodeRecord>>> {
        Box::pin(self.records().nodes())
    }

    fn remove_node<'a>(
        &'a self,
        id: &'a str,
        last_seen: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(self.records().remove_node(id, last_seen))
    }

    fn finish_run<'a>(
        &'a self,
        job_id: &'a str,
        run_time: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.records().finish_run(job_id, run_time))
    }

    fn adopt_runs<'a>(
        &'a self,
        from: &'a str,
        to: &'a str,
    ) -> BoxFuture<'a, Result<Vec<InflightRun>>> {
        Box::pin(self.records().adopt_runs(from, to))
    }

    fn inflight_runs(&self) -> BoxFuture<'_, Result<Vec<InflightRun>>> {
        Box::pin(self.records().inflight_runs())
    }
}

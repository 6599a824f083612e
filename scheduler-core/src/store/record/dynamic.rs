//! [`DynRecordStore`]: a [`RecordStore`] chosen at run time (by a URL's scheme in
//! [`Components`](crate::Components)), and the `RecordStore` impl that makes
//! `Arc<dyn DynRecordStore>` usable wherever a backend is (the admin operations,
//! [`RecordJobStore`](super::RecordJobStore)).

use std::fmt::Debug;
use std::future::Future;
use std::ops::RangeInclusive;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{RecordFireCommit, RecordStore, ScheduleEntry, StoredRecord};
use crate::clock::BoxFuture;
use crate::error::Result;
use crate::store::{
    Capabilities, Claim, ClusterStore, FireAnswers, InflightRun, NodeRecord, StoreContext,
};

/// The object-safe mirror of [`RecordStore`], implemented for every `RecordStore`.
///
/// [`Components::open_records`](crate::Components::open_records) answers an
/// `Arc<dyn DynRecordStore>`, which is a `RecordStore` again. Call the `RecordStore` methods;
/// implement `RecordStore`, never this. The cluster methods the scheduler calls come from
/// [`ClusterStore`], which every `RecordStore` is too.
#[allow(missing_docs)] // each method mirrors the `RecordStore` method of the same name
pub trait DynRecordStore: ClusterStore + Debug + 'static {
    fn start<'a>(&'a self, ctx: &'a StoreContext) -> BoxFuture<'a, Result<()>>;
    fn shutdown(&self) -> BoxFuture<'_, Result<()>>;
    fn run_time_range(&self) -> RangeInclusive<DateTime<Utc>>;
    fn capabilities(&self) -> Capabilities;
    fn group_adds(&self) -> bool;
    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<StoredRecord>>>;
    fn due(&self, now: DateTime<Utc>, limit: usize) -> BoxFuture<'_, Result<Vec<StoredRecord>>>;
    fn next_run_times(&self, limit: usize) -> BoxFuture<'_, Result<Vec<ScheduleEntry>>>;
    fn all(&self) -> BoxFuture<'_, Result<Vec<StoredRecord>>>;
    fn count(&self) -> BoxFuture<'_, Result<u64>>;
    fn insert(&self, record: StoredRecord) -> BoxFuture<'_, Result<bool>>;
    fn insert_many(&self, records: Vec<StoredRecord>) -> BoxFuture<'_, Result<Vec<bool>>>;
    fn upsert(&self, record: StoredRecord) -> BoxFuture<'_, Result<()>>;
    fn update(&self, record: StoredRecord, expected_revision: u64) -> BoxFuture<'_, Result<bool>>;
    fn remove<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool>>;
    fn remove_all(&self) -> BoxFuture<'_, Result<()>>;
    fn commit_fires<'a>(
        &'a self,
        commits: &'a [RecordFireCommit],
    ) -> BoxFuture<'a, Result<FireAnswers>>;
    fn claim_due<'a>(
        &'a self,
        now: DateTime<Utc>,
        limit: usize,
        claim: &'a Claim,
    ) -> BoxFuture<'a, Result<Vec<StoredRecord>>>;
    fn due_unclaimed<'a>(
        &'a self,
        now: DateTime<Utc>,
        limit: usize,
        node: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<StoredRecord>>>>;
    fn release_claims<'a>(&'a self, node: &'a str, ids: &'a [String]) -> BoxFuture<'a, Result<()>>;
}

impl<R: RecordStore> DynRecordStore for R {
    fn start<'a>(&'a self, ctx: &'a StoreContext) -> BoxFuture<'a, Result<()>> {
        Box::pin(RecordStore::start(self, ctx))
    }
    fn shutdown(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(RecordStore::shutdown(self))
    }
    fn run_time_range(&self) -> RangeInclusive<DateTime<Utc>> {
        RecordStore::run_time_range(self)
    }
    fn capabilities(&self) -> Capabilities {
        RecordStore::capabilities(self)
    }
    fn group_adds(&self) -> bool {
        RecordStore::group_adds(self)
    }
    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<StoredRecord>>> {
        Box::pin(RecordStore::get(self, id))
    }
    fn due(&self, now: DateTime<Utc>, limit: usize) -> BoxFuture<'_, Result<Vec<StoredRecord>>> {
        Box::pin(RecordStore::due(self, now, limit))
    }
    fn next_run_times(&self, limit: usize) -> BoxFuture<'_, Result<Vec<ScheduleEntry>>> {
        Box::pin(RecordStore::next_run_times(self, limit))
    }
    fn all(&self) -> BoxFuture<'_, Result<Vec<StoredRecord>>> {
        Box::pin(RecordStore::all(self))
    }
    fn count(&self) -> BoxFuture<'_, Result<u64>> {
        Box::pin(RecordStore::count(self))
    }
    fn insert(&self, record: StoredRecord) -> BoxFuture<'_, Result<bool>> {
        Box::pin(RecordStore::insert(self, record))
    }
    fn insert_many(&self, records: Vec<StoredRecord>) -> BoxFuture<'_, Result<Vec<bool>>> {
        Box::pin(RecordStore::insert_many(self, records))
    }
    fn upsert(&self, record: StoredRecord) -> BoxFuture<'_, Result<()>> {
        Box::pin(RecordStore::upsert(self, record))
    }
    fn update(&self, record: StoredRecord, expected_revision: u64) -> BoxFuture<'_, Result<bool>> {
        Box::pin(RecordStore::update(self, record, expected_revision))
    }
    fn remove<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool>> {
        Box::pin(RecordStore::remove(self, id))
    }
    fn remove_all(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(RecordStore::remove_all(self))
    }
    fn commit_fires<'a>(
        &'a self,
        commits: &'a [RecordFireCommit],
    ) -> BoxFuture<'a, Result<FireAnswers>> {
        Box::pin(RecordStore::commit_fires(self, commits))
    }
    fn claim_due<'a>(
        &'a self,
        now: DateTime<Utc>,
        limit: usize,
        claim: &'a Claim,
    ) -> BoxFuture<'a, Result<Vec<StoredRecord>>> {
        Box::pin(RecordStore::claim_due(self, now, limit, claim))
    }
    fn due_unclaimed<'a>(
        &'a self,
        now: DateTime<Utc>,
        limit: usize,
        node: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<StoredRecord>>>> {
        Box::pin(RecordStore::due_unclaimed(self, now, limit, node))
    }
    fn release_claims<'a>(&'a self, node: &'a str, ids: &'a [String]) -> BoxFuture<'a, Result<()>> {
        Box::pin(RecordStore::release_claims(self, node, ids))
    }
}

// Every method is forwarded, the provided ones too: a default here would silently replace the
// backend's own (a claim_due falling back to due would let two nodes fire one job). Methods
// that borrow two things are `async fn`s: the boxed future lives for the shorter borrow, which
// a returned `impl Future` cannot name.
impl RecordStore for Arc<dyn DynRecordStore> {
    async fn start(&self, ctx: &StoreContext) -> Result<()> {
        (**self).start(ctx).await
    }
    fn shutdown(&self) -> impl Future<Output = Result<()>> + Send {
        (**self).shutdown()
    }
    fn run_time_range(&self) -> RangeInclusive<DateTime<Utc>> {
        (**self).run_time_range()
    }
    fn capabilities(&self) -> Capabilities {
        (**self).capabilities()
    }
    fn group_adds(&self) -> bool {
        (**self).group_adds()
    }
    async fn get(&self, id: &str) -> Result<Option<StoredRecord>> {
        (**self).get(id).await
    }
    fn due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredRecord>>> + Send {
        (**self).due(now, limit)
    }
    fn next_run_times(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<ScheduleEntry>>> + Send {
        (**self).next_run_times(limit)
    }
    fn all(&self) -> impl Future<Output = Result<Vec<StoredRecord>>> + Send {
        (**self).all()
    }
    fn count(&self) -> impl Future<Output = Result<u64>> + Send {
        (**self).count()
    }
    fn insert(&self, record: StoredRecord) -> impl Future<Output = Result<bool>> + Send {
        (**self).insert(record)
    }
    fn insert_many(
        &self,
        records: Vec<StoredRecord>,
    ) -> impl Future<Output = Result<Vec<bool>>> + Send {
        (**self).insert_many(records)
    }
    fn upsert(&self, record: StoredRecord) -> impl Future<Output = Result<()>> + Send {
        (**self).upsert(record)
    }
    fn update(
        &self,
        record: StoredRecord,
        expected_revision: u64,
    ) -> impl Future<Output = Result<bool>> + Send {
        (**self).update(record, expected_revision)
    }
    async fn remove(&self, id: &str) -> Result<bool> {
        (**self).remove(id).await
    }
    fn remove_all(&self) -> impl Future<Output = Result<()>> + Send {
        (**self).remove_all()
    }
    async fn commit_fires(&self, commits: &[RecordFireCommit]) -> Result<FireAnswers> {
        (**self).commit_fires(commits).await
    }
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        claim: &Claim,
    ) -> Result<Vec<StoredRecord>> {
        (**self).claim_due(now, limit, claim).await
    }
    async fn due_unclaimed(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        node: &str,
    ) -> Result<Option<Vec<StoredRecord>>> {
        (**self).due_unclaimed(now, limit, node).await
    }
    async fn release_claims(&self, node: &str, ids: &[String]) -> Result<()> {
        (**self).release_claims(node, ids).await
    }
    async fn join(&self, node: &NodeRecord) -> Result<()> {
        (**self).join(node).await
    }
    async fn heartbeat(&self, node: &NodeRecord) -> Result<()> {
        (**self).heartbeat(node).await
    }
    fn nodes(&self) -> impl Future<Output = Result<Vec<NodeRecord>>> + Send {
        (**self).nodes()
    }
    async fn remove_node(&self, id: &str, last_seen: DateTime<Utc>) -> Result<bool> {
        (**self).remove_node(id, last_seen).await
    }
    async fn finish_run(&self, job_id: &str, run_time: DateTime<Utc>) -> Result<()> {
        (**self).finish_run(job_id, run_time).await
    }
    async fn adopt_runs(&self, from: &str, to: &str) -> Result<Vec<InflightRun>> {
        (**self).adopt_runs(from, to).await
    }
    fn inflight_runs(&self) -> impl Future<Output = Result<Vec<InflightRun>>> + Send {
        (**self).inflight_runs()
    }
}

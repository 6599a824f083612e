//! The MongoDB backend: documents, queries and error mapping.

use std::future::IntoFuture;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use mongodb::bson::{Document, doc};
use mongodb::error::{ErrorKind as DriverErrorKind, WriteFailure};
use mongodb::options::{ClientOptions, IndexOptions};
use mongodb::{Client, Collection, IndexModel};
use scheduler_core::store::record::full_run_time_range;
use scheduler_core::store::{
    Capabilities, Claim, FireAnswer, FireAnswers, InflightRun, NodeRecord, RecordFireCommit,
    RecordStore, ScheduleEntry, StoredRecord,
};
use scheduler_core::{Error, ErrorKind, RecordJobStore, Result, StoreContext};

use crate::document::{
    conditional, from_document, id_of, integer, revision_of, run_time_of, scheduled_until,
    to_document, write_update,
};
use crate::url::SecretUrl;
use crate::watch::Described;

/// The fields of a job's document.
pub(crate) mod field {
    pub(crate) const ID: &str = "_id";
    /// Integer microseconds since 1970 (Int64), or null when paused: indexed, the authority.
    pub(crate) const NEXT_RUN_TIME: &str = "next_run_time";
    /// The same instant as RFC 3339 text with microseconds, for people; never read.
    pub(crate) const NEXT_RUN_TIME_TEXT: &str = "next_run_time_text";
    pub(crate) const REVISION: &str = "revision";
    /// The job record as JSON text, byte for byte as the scheduler wrote it.
    pub(crate) const JOB_STATE: &str = "job_state";
    /// The node holding a claim on the due job (absent: unclaimed).
    pub(crate) const CLAIMED_BY: &str = "claimed_by";
    /// The claim call's token, to read back exactly the documents it claimed.
    pub(crate) const CLAIM_TOKEN: &str = "claim_token";
    /// Integer microseconds: the claim lapses then.
    pub(crate) const CLAIM_UNTIL: &str = "claim_until";
    /// The job's runs in flight: an embedded document `r<run µs>` -> node.
    pub(crate) const INFLIGHT: &str = "inflight";
}

/// The name of the index on `next_run_time` that `start` creates.
///
/// A single-field index: nx-27017 (the test server) cannot index `_id` in a compound index.
/// Ties in run time are put in id order by a second, equality query on the index when a
/// limited answer is full.
pub const RUN_TIME_INDEX: &str = "next_run_time_1";

/// The database used unless [`MongoJobStoreBuilder::database`] says otherwise (APScheduler's).
pub const DEFAULT_DATABASE: &str = "apscheduler";
/// The collection used unless [`MongoJobStoreBuilder::collection`] says otherwise
/// (APScheduler's).
pub const DEFAULT_COLLECTION: &str = "jobs";
/// The default largest number of connections one store handle opens.
pub const DEFAULT_MAX_POOL_SIZE: u32 = 5;
/// The default bound on finding a server and connecting to it.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The default bound on every call to the server, from sending the request to reading the
/// last document of the answer.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// MongoDB's error code for a duplicate key.
const DUPLICATE_KEY: i32 = 11000;

/// A MongoDB job store: [`MongoRecords`] wrapped by the scheduler's record adapter.
///
/// Build one with [`MongoJobStore::builder`]. See the [crate docs](crate).
pub type MongoJobStore = RecordJobStore<MongoRecords>;

/// Options for a [`MongoJobStore`]; made by [`MongoJobStore::builder`].
#[derive(Debug, Clone)]
pub struct MongoJobStoreBuilder {
    url: SecretUrl,
    database: String,
    collection: String,
    max_pool_size: u32,
    connect_timeout: Duration,
    pub(crate) call_timeout: Duration,
}

/// Builds MongoDB job stores (an extension of [`MongoJobStore`], which is a type alias).
pub trait MongoJobStoreExt {
    /// Options for a store on the server at `url` (`mongodb://[user:password@]host[:port]/?options`;
    /// `mongodb+srv://` with the `srv` feature).
    fn builder(url: &str) -> MongoJobStoreBuilder;
}

impl MongoJobStoreExt for MongoJobStore {
    fn builder(url: &str) -> MongoJobStoreBuilder {
        MongoJobStoreBuilder::new(url)
    }
}

impl MongoJobStoreBuilder {
    /// Options for a store on the server at `url`, with the defaults: database
    /// [`DEFAULT_DATABASE`], collection [`DEFAULT_COLLECTION`], at most
    /// [`DEFAULT_MAX_POOL_SIZE`] connections, [`DEFAULT_CONNECT_TIMEOUT`],
    /// [`DEFAULT_CALL_TIMEOUT`].
    pub fn new(url: &str) -> Self {
        MongoJobStoreBuilder {
            url: SecretUrl::new(url),
            database: DEFAULT_DATABASE.to_owned(),
            collection: DEFAULT_COLLECTION.to_owned(),
            max_pool_size: DEFAULT_MAX_POOL_SIZE,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            call_timeout: DEFAULT_CALL_TIMEOUT,
        }
    }

    /// The database that holds the collection (letters, digits, `_` and `-`; at most 63
    /// bytes). The database named in the URL's path is only the one to authenticate against,
    /// as for every MongoDB driver.
    pub fn database(mut self, name: impl Into<String>) -> Self {
        self.database = name.into();
        self
    }

    /// The collection of job documents (letters, digits, `_`, `-` and inner `.`; at most 120
    /// bytes; not `system.*`).
    pub fn collection(mut self, name: impl Into<String>) -> Self {
        self.collection = name.into();
        self
    }

    /// The largest number of connections this handle opens (at least 1).
    pub fn max_pool_size(mut self, size: u32) -> Self {
        self.max_pool_size = size;
        self
    }

    /// How long to look for a usable server and to open a connection before a call fails
    /// (MongoDB's `serverSelectionTimeoutMS` and `connectTimeoutMS`).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long any one call may take in all, so that a server that hangs cannot hold the
    /// scheduler: the call then fails with a temporary [`Backend`](ErrorKind::Backend) error.
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// The backend, after checking the options; it connects at `start`.
    pub fn build_records(self) -> Result<MongoRecords> {
        validate_database(&self.database)?;
        validate_collection(&self.collection)?;
        let url = self.url.expose();
        if !(url.starts_with("mongodb://") || url.starts_with("mongodb+srv://")) {
            return Err(Error::config(format!(
                "a MongoDB URL starts with mongodb:// or mongodb+srv://, got {}",
                self.url.redacted()
            )));
        }
        if url.starts_with("mongodb+srv://") && !cfg!(feature = "srv") {
            return Err(Error::config(
                "mongodb+srv:// URLs need jobstore-mongo's `srv` feature",
            ));
        }
        if self.max_pool_size == 0 {
            return Err(Error::config("max_pool_size must be at least 1"));
        }
        for (name, t) in [
            ("connect_timeout", self.connect_timeout),
            ("call_timeout", self.call_timeout),
        ] {
            if t.is_zero() {
                return Err(Error::config(format!("{name} must be more than zero")));
            }
        }
        Ok(MongoRecords {
            settings: Arc::new(self),
            collection: Mutex::new(None),
            watcher: Mutex::new(None),
            change_streams: AtomicBool::new(false),
        })
    }

    /// The store, after checking the options; it connects at `start`.
    pub fn build(self) -> Result<MongoJobStore> {
        Ok(RecordJobStore::new(self.build_records()?))
    }
}

fn validate_database(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::config(format!(
            "{name:?} is not a database name this store accepts: 1 to 63 ASCII letters, digits, \
             `_` or `-`"
        )))
    }
}

fn validate_collection(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 120
        && !name.starts_with('.')
        && !name.ends_with('.')
        && !name.contains("..")
        && !name.starts_with("system.")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(Error::config(format!(
            "{name:?} is not a collection name this store accepts: 1 to 120 ASCII letters, \
             digits, `_`, `-` or inner `.`, not starting with `system.`"
        )))
    }
}

/// The MongoDB [`RecordStore`]: one document per job in one collection.
///
/// Use it through [`MongoJobStore`]. Cloning is not offered: two handles on one collection
/// are two stores built from the same options, as two processes would have.
#[derive(Debug)]
pub struct MongoRecords {
    pub(crate) settings: Arc<MongoJobStoreBuilder>,
    /// The collection while started; its client owns the connection pool.
    collection: Mutex<Option<Collection<Document>>>,
    /// The change-stream task while started on a server that has change streams.
    pub(crate) watcher: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Whether the server has change streams (its `hello` at `start`): the store then
    /// [`notifies`](Capabilities::notifies).
    pub(crate) change_streams: AtomicBool,
}

impl MongoRecords {
    /// The URL with its password masked.
    pub fn redacted_url(&self) -> &str {
        self.settings.url.redacted()
    }

    /// The database name.
    pub fn database(&self) -> &str {
        &self.settings.database
    }

    /// The collection name.
    pub fn collection(&self) -> &str {
        &self.settings.collection
    }

    pub(crate) fn coll(&self) -> Result<Collection<Document>> {
        self.collection
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| Error::scheduler_state("the MongoDB job store is used before start()"))
    }

    /// Runs one call to the server within the call timeout, mapping its errors.
    pub(crate) async fn call<T>(
        &self,
        what: &str,
        call: impl IntoFuture<Output = mongodb::error::Result<T>>,
    ) -> Result<T> {
        self.call_raw(what, call)
            .await?
            .map_err(|e| self.driver_error(what, &e))
    }

    /// Runs one call to the server within the call timeout; the driver's own error is left
    /// for the caller to read.
    async fn call_raw<T>(
        &self,
        what: &str,
        call: impl IntoFuture<Output = mongodb::error::Result<T>>,
    ) -> Result<mongodb::error::Result<T>> {
        tokio::time::timeout(self.settings.call_timeout, call.into_future())
            .await
            .map_err(|_| self.timed_out(what))
    }

    fn timed_out(&self, what: &str) -> Error {
        Error::timed_out(
            &format!(
                "MongoDB ({}, {}.{}): {what}",
                self.redacted_url(),
                self.settings.database,
                self.settings.collection
            ),
            self.settings.call_timeout,
        )
    }

    /// A [`Backend`](ErrorKind::Backend) error for a driver error, its text scrubbed of
    /// secrets, marked temporary when retrying may help.
    fn driver_error(&self, what: &str, e: &mongodb::error::Error) -> Error {
        let text = self.settings.url.scrub(&e.to_string());
        let error = Error::new(
            ErrorKind::Backend,
            format!(
                "MongoDB ({}, {}.{}): {what} failed: {text}",
                self.redacted_url(),
                self.settings.database,
                self.settings.collection
            ),
        );
        if is_temporary(e) {
            error.set_temporary()
        } else {
            error
        }
    }

    pub(crate) async fn find(
        &self,
        what: &str,
        filter: Document,
        sort: Option<Document>,
        limit: Option<usize>,
        projection: Option<Document>,
    ) -> Result<Vec<Document>> {
        let coll = self.coll()?;
        self.call(what, async move {
            let mut find = coll.find(filter);
            if let Some(sort) = sort {
                find = find.sort(sort);
            }
            if let Some(limit) = limit {
                let limit = i64::try_from(limit).unwrap_or(i64::MAX);
                find = find.limit(limit);
            }
            if let Some(projection) = projection {
                find = find.projection(projection);
            }
            let mut cursor = find.await?;
            let mut docs = Vec::new();
            while cursor.advance().await? {
                docs.push(Document::try_from(cursor.current())?);
            }
            Ok(docs)
        })
        .await
    }
}

impl MongoRecords {
    /// The first `limit` documents matching `filter` (a range on the run time) and `and`
    /// (further conditions, not on the run time) in run-time order, ties by id: one query on
    /// the run-time index, and when the answer is full a second for the ties at its last run
    /// time, in id order, which the first may have cut anywhere.
    pub(crate) async fn ordered(
        &self,
        what: &str,
        mut filter: Document,
        and: Document,
        limit: usize,
        projection: Option<Document>,
    ) -> Result<Vec<Document>> {
        if limit == 0 {
            // A limit of 0 means none to MongoDB.
            return Ok(Vec::new());
        }
        let by_time = doc! { field::NEXT_RUN_TIME: 1 };
        filter.extend(and.clone());
        let mut docs = self
            .find(what, filter, Some(by_time), Some(limit), projection.clone())
            .await?;
        let last = docs
            .last()
            .and_then(|d| d.get(field::NEXT_RUN_TIME))
            .and_then(integer);
        if let (Some(last), true) = (last, docs.len() >= limit) {
            docs.retain(|d| d.get(field::NEXT_RUN_TIME).and_then(integer) != Some(last));
            let room = limit - docs.len();
            let mut at_last = doc! { field::NEXT_RUN_TIME: last };
            at_last.extend(and);
            let ties = self
                .find(
                    what,
                    at_last,
                    Some(doc! { field::ID: 1 }),
                    Some(room),
                    projection,
                )
                .await?;
            docs.extend(ties);
        }
        docs.sort_by_cached_key(|d| {
            let at = d.get(field::NEXT_RUN_TIME).and_then(integer);
            (at, id_of(d))
        });
        Ok(docs)
    }
}

/// Whether a retry of the call may succeed: the network, server selection, a server that is
/// shutting down or stepping down, a write the server itself calls retryable.
fn is_temporary(e: &mongodb::error::Error) -> bool {
    /// Server error codes of transient states (MongoDB's retryable codes, plus timeouts).
    const TRANSIENT_CODES: &[i32] = &[
        6, 7, 50, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436,
    ];
    if e.contains_label("RetryableWriteError") || e.contains_label("TransientTransactionError") {
        return true;
    }
    match e.kind.as_ref() {
        DriverErrorKind::Io(_)
        | DriverErrorKind::ConnectionPoolCleared { .. }
        | DriverErrorKind::ServerSelection { .. } => true,
        DriverErrorKind::Command(c) => TRANSIENT_CODES.contains(&c.code),
        DriverErrorKind::Write(WriteFailure::WriteConcernError(_)) => true,
        _ => false,
    }
}

/// Whether `e` says the document's `_id` already exists.
fn is_duplicate_key(e: &mongodb::error::Error) -> bool {
    match e.kind.as_ref() {
        DriverErrorKind::Write(WriteFailure::WriteError(w)) => w.code == DUPLICATE_KEY,
        DriverErrorKind::Command(c) => c.code == DUPLICATE_KEY,
        _ => false,
    }
}

impl RecordStore for MongoRecords {
    async fn start(&self, ctx: &StoreContext) -> Result<()> {
        let settings = &self.settings;
        let mut options = match tokio::time::timeout(
            settings.call_timeout,
            ClientOptions::parse(settings.url.expose()),
        )
        .await
        {
            Ok(Ok(options)) => options,
            Ok(Err(e)) => {
                let mut error = self.driver_error("parsing the URL", &e);
                if !error.is_temporary() {
                    error = Error::new(ErrorKind::Config, error.message().to_owned());
                }
                return Err(error);
            }
            Err(_) => return Err(self.timed_out("resolving the URL")),
        };
        options.max_pool_size = Some(settings.max_pool_size);
        options.server_selection_timeout = Some(settings.connect_timeout);
        options.connect_timeout = Some(settings.connect_timeout);
        options
            .app_name
            .get_or_insert_with(|| "jobstore-mongo".to_owned());
        let described = Described::default();
        options.sdam_event_handler = Some(described.handler());
        let client = Client::with_options(options).map_err(|e| {
            let error = self.driver_error("creating the client", &e);
            Error::new(ErrorKind::Config, error.message().to_owned())
        })?;
        let coll = client
            .database(&settings.database)
            .collection::<Document>(&settings.collection);
        let index = IndexModel::builder()
            .keys(doc! { field::NEXT_RUN_TIME: 1 })
            .options(
                IndexOptions::builder()
                    .name(RUN_TIME_INDEX.to_owned())
                    .build(),
            )
            .build();
        match self
            .call("creating the run-time index", coll.create_index(index))
            .await
        {
            Ok(_) => {}
            // The same keys under another name (made by an operator): it serves as well.
            Err(e) if matches!(e.message(), m if m.contains("IndexOptionsConflict") || m.contains("IndexKeySpecsConflict")) =>
            {
                tracing::info!(error = %e, "an equivalent run-time index exists under another name");
            }
            Err(e) => return Err(e),
        }
        self.start_watcher(&coll, ctx, &described).await;
        *self.collection.lock().unwrap_or_else(|p| p.into_inner()) = Some(coll);
        Ok(())
    }

    async fn shutdown(&self) -> Result<()> {
        self.stop_watcher();
        let coll = self
            .collection
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(coll) = coll {
            let client = coll.client().clone();
            drop(coll);
            // Closes the pool and its monitors; bounded, since a hung server must not hold
            // the scheduler's shutdown.
            if tokio::time::timeout(self.settings.call_timeout, client.shutdown())
                .await
                .is_err()
            {
                tracing::warn!(
                    url = self.redacted_url(),
                    "the MongoDB client did not close within the call timeout; dropped"
                );
            }
        }
        Ok(())
    }

    async fn get(&self, id: &str) -> Result<Option<StoredRecord>> {
        let coll = self.coll()?;
        let found = self
            .call("reading a job", coll.find_one(doc! { field::ID: id }))
            .await?;
        Ok(found.as_ref().map(from_document))
    }

    async fn due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<StoredRecord>> {
        let docs = self
            .ordered(
                "reading due jobs",
                scheduled_until(now),
                Document::new(),
                limit,
                None,
            )
            .await?;
        Ok(docs.iter().map(from_document).collect())
    }

    async fn next_run_times(&self, limit: usize) -> Result<Vec<ScheduleEntry>> {
        let projection = doc! { field::ID: 1, field::NEXT_RUN_TIME: 1, field::REVISION: 1 };
        let docs = self
            .ordered(
                "reading the next run time",
                scheduled_until(*full_run_time_range().end()),
                Document::new(),
                limit,
                Some(projection),
            )
            .await?;
        Ok(docs
            .iter()
            .filter_map(|doc| {
                let next_run_time = run_time_of(doc).ok().flatten()?;
                Some(ScheduleEntry {
                    id: id_of(doc),
                    next_run_time,
                    revision: revision_of(doc),
                })
            })
            .collect())
    }

    fn capabilities(&self) -> Capabilities {
        // Push only where the server has change streams (a replica set or a sharded
        // cluster, as its `hello` at `start` said); a standalone server is polled.
        Capabilities::persistent().with_cluster(self.change_streams.load(Ordering::Acquire))
    }

    async fn count(&self) -> Result<u64> {
        let coll = self.coll()?;
        self.call("counting jobs", coll.count_documents(Document::new()))
            .await
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        claim: &Claim,
    ) -> Result<Vec<StoredRecord>> {
        self.claim_documents(now, limit, claim).await
    }

    async fn release_claims(&self, node: &str, ids: &[String]) -> Result<()> {
        self.release_documents(node, ids).await
    }

    async fn heartbeat(&self, node: &NodeRecord) -> Result<()> {
        self.write_heartbeat(node).await
    }

    async fn nodes(&self) -> Result<Vec<NodeRecord>> {
        self.node_documents().await
    }

    async fn remove_node(&self, id: &str, last_seen: DateTime<Utc>) -> Result<bool> {
        self.remove_node_if(id, last_seen).await
    }

    async fn finish_run(&self, job_id: &str, run_time: DateTime<Utc>) -> Result<()> {
        self.finish_inflight(job_id, run_time).await
    }

    async fn adopt_runs(&self, from: &str, to: &str) -> Result<Vec<InflightRun>> {
        self.adopt_inflight(from, to).await
    }

    async fn inflight_runs(&self) -> Result<Vec<InflightRun>> {
        self.all_inflight().await
    }

    async fn all(&self) -> Result<Vec<StoredRecord>> {
        let docs = self
            .find("reading all jobs", Document::new(), None, None, None)
            .await?;
        Ok(docs.iter().map(from_document).collect())
    }

    async fn insert(&self, record: StoredRecord) -> Result<bool> {
        let coll = self.coll()?;
        let doc = to_document(&record)?;
        match self.call_raw("adding a job", coll.insert_one(doc)).await? {
            Ok(_) => Ok(true),
            Err(e) if is_duplicate_key(&e) => Ok(false),
            Err(e) => Err(self.driver_error("adding a job", &e)),
        }
    }

    async fn insert_many(&self, records: Vec<StoredRecord>) -> Result<Vec<bool>> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let coll = self.coll()?;
        let docs = records
            .iter()
            .map(to_document)
            .collect::<Result<Vec<_>>>()?;
        let mut added = vec![true; records.len()];
        let outcome = self
            .call_raw("adding jobs", coll.insert_many(docs).ordered(false))
            .await?;
        if let Err(e) = outcome {
            let DriverErrorKind::InsertMany(failure) = e.kind.as_ref() else {
                return Err(self.driver_error("adding jobs", &e));
            };
            if failure.write_concern_error.is_some() {
                return Err(self.driver_error("adding jobs", &e));
            }
            for write_error in failure.write_errors.iter().flatten() {
                match added.get_mut(write_error.index) {
                    Some(slot) if write_error.code == DUPLICATE_KEY => *slot = false,
                    _ => return Err(self.driver_error("adding jobs", &e)),
                }
            }
        }
        Ok(added)
    }

    async fn upsert(&self, record: StoredRecord) -> Result<()> {
        let coll = self.coll()?;
        // An update, not a replacement, so that the job's runs in flight stay; an upsert
        // takes its `_id` from the equality in the filter.
        let update = write_update(&record, None)?;
        self.call(
            "replacing a job",
            coll.update_one(doc! { field::ID: record.id.as_str() }, update)
                .upsert(true),
        )
        .await?;
        Ok(())
    }

    async fn update(&self, record: StoredRecord, expected_revision: u64) -> Result<bool> {
        let coll = self.coll()?;
        let filter = conditional(&record.id, expected_revision)?;
        let update = write_update(&record, None)?;
        let result = self
            .call("updating a job", coll.update_one(filter, update))
            .await?;
        Ok(result.matched_count == 1)
    }

    async fn remove(&self, id: &str) -> Result<bool> {
        let coll = self.coll()?;
        let result = self
            .call("removing a job", coll.delete_one(doc! { field::ID: id }))
            .await?;
        Ok(result.deleted_count == 1)
    }

    async fn remove_all(&self) -> Result<()> {
        let coll = self.coll()?;
        self.call("removing all jobs", coll.delete_many(Document::new()))
            .await?;
        Ok(())
    }

    async fn commit_fires(&self, commits: &[RecordFireCommit]) -> Result<FireAnswers> {
        let coll = self.coll()?;
        let mut answers = FireAnswers::with_capacity(commits.len());
        let mut first_error = None;
        // Independent conditional writes: as many in flight as the pool has connections.
        let in_flight = usize::try_from(self.settings.max_pool_size).unwrap_or(1);
        let mut tasks = tokio::task::JoinSet::new();
        // Commits with an instance limit read before they write (see `commit_limited`).
        let mut pending = commits.iter().filter(|c| c.max_inflight.is_none());
        loop {
            while tasks.len() < in_flight {
                let Some(commit) = pending.next() else { break };
                let filter = conditional(&commit.id, commit.expected_revision)?;
                let write = commit
                    .write
                    .as_ref()
                    .map(|w| write_update(w, commit.inflight.as_ref()))
                    .transpose()?;
                let coll = coll.clone();
                let id = commit.id.clone();
                let timeout = self.settings.call_timeout;
                tasks.spawn(async move {
                    let applied = tokio::time::timeout(timeout, async {
                        match write {
                            Some(update) => coll
                                .update_one(filter, update)
                                .await
                                .map(|r| r.matched_count == 1),
                            None => coll.delete_one(filter).await.map(|r| r.deleted_count == 1),
                        }
                    })
                    .await;
                    (id, applied)
                });
            }
            let Some(joined) = tasks.join_next().await else {
                break;
            };
            let (id, applied) =
                joined.map_err(|e| Error::backend("a fire commit task failed", e))?;
            match applied {
                Ok(Ok(true)) => answers.insert(id, FireAnswer::Committed),
                Ok(Ok(false)) => answers.insert(id, FireAnswer::Stale),
                // Unanswered: the scheduler reports it and does not run that fire.
                Ok(Err(e)) => {
                    first_error.get_or_insert_with(|| self.driver_error("committing fires", &e));
                }
                Err(_) => {
                    first_error.get_or_insert_with(|| self.timed_out("committing a fire"));
                }
            }
        }
        if let Err(e) = self.commit_limited(commits, &mut answers).await {
            first_error.get_or_insert(e);
        }
        match first_error {
            // Nothing is known to have applied: the whole call failed (and is retried).
            Some(e) if answers.is_empty() => Err(e),
            Some(e) => {
                tracing::error!(
                    error = %e,
                    answered = answers.len(),
                    of = commits.len(),
                    "some fire commits failed; their fires are left unanswered"
                );
                Ok(answers)
            }
            None => Ok(answers),
        }
    }
}

//! The record-level contract a persistent backend implements: [`RecordStore`], and the
//! time conversions it uses.

use std::fmt::Debug;
use std::future::Future;
use std::ops::RangeInclusive;

use chrono::{DateTime, NaiveDate, Utc};

use super::{RecordFireCommit, ScheduleEntry, StoredRecord};
use crate::error::{Error, ErrorKind, Result};
use crate::store::{Capabilities, Claim, FireAnswers, InflightRun, NodeRecord, StoreContext};

/// The queries a persistent backend implements; [`RecordJobStore`](super::RecordJobStore) makes a [`JobStore`](crate::JobStore) of it.
///
/// # Rows
///
/// A row is a [`StoredRecord`]: id (key), next run time (indexed; `None` = paused), revision,
/// JSON. Keep them readable for an operator: a table `(id, next_run_time, revision, ...,
/// job_state)`, a Redis hash of JSON plus a sorted set of run times, one MongoDB document per
/// job. The JSON is opaque: store it and hand it back byte for byte.
///
/// # Run times: exact, microseconds, the column is the authority
///
/// Run times are UTC instants with whole microseconds. Keep them exactly, in an indexed
/// column that orders them:
///
/// * where the native type covers your declared range to the microsecond, use it (PostgreSQL
///   `timestamptz`, SQLite integer microseconds);
/// * where it does not, index integer microseconds since the Unix epoch ([`to_micros`],
///   [`from_micros`]) and keep a readable column beside it for operators: BSON dates hold
///   milliseconds; MySQL `DATETIME(6)` covers the years 1000-9999 and `TIMESTAMP` ends in 2038;
///   a Redis score is a double, exact for integer microseconds only within ±2^53 µs of 1970
///   (about the years 1685-2255).
///
/// The indexed column is the authority: the adapter reads a job's run time from it and
/// writes the JSON's copy from the same value in the same write, so the two never disagree
/// (an operator who moves a job by editing only the column is obeyed). Declare in
/// [`run_time_range`](Self::run_time_range) what you hold exactly; the adapter refuses any other
/// run time with [`Unrepresentable`](ErrorKind::Unrepresentable) before calling you, so a run
/// is never silently rounded.
///
/// # Order
///
/// [`due`](Self::due) and [`next_run_times`](Self::next_run_times) answer in run-time order,
/// ties by id (byte order), and take the first `limit`: only the backend's index can do that.
/// [`all`](Self::all) may answer in any order; the adapter sorts.
///
/// # Atomicity
///
/// Every write is atomic on its own row. [`insert`](Self::insert) is add-if-absent in one
/// step (a primary key, `HSETNX` in a script, an insert that fails on a duplicate `_id`);
/// [`update`](Self::update) and each commit of [`commit_fires`](Self::commit_fires) compare the
/// revision and write in one step (`UPDATE … WHERE id = ? AND revision = ?`, a Lua script, a
/// filtered `update_one`). Several processes may call them on the same row at once; exactly
/// one conditional write of a given revision may apply.
///
/// # Errors
///
/// Answer "not applied" with `false` (or a [`FireAnswer::Stale`](crate::FireAnswer::Stale)), never an error: the adapter
/// turns it into the right error kind. Fail with [`Backend`](ErrorKind::Backend) errors for the
/// server, marked [temporary](Error::set_temporary) when retrying may help (a lost connection,
/// a timeout), and never put credentials in messages.
pub trait RecordStore: Send + Sync + Debug + 'static {
    /// Connects, and creates or upgrades the schema. Called before any other method, and again
    /// after [`shutdown`](Self::shutdown).
    fn start(&self, ctx: &StoreContext) -> impl Future<Output = Result<()>> + Send;

    /// Frees connections. The rows stay.
    fn shutdown(&self) -> impl Future<Output = Result<()>> + Send;

    /// The run times this backend holds exactly; by default the years 1 to 9999, everything a
    /// trigger answers. Declare less if your column cannot (a Redis score: ±2^53 µs).
    fn run_time_range(&self) -> RangeInclusive<DateTime<Utc>> {
        full_run_time_range()
    }

    /// What the store can do, which [`RecordJobStore`](super::RecordJobStore) answers as its own. By default
    /// [`Capabilities::persistent`]; a backend that implements the cluster methods below (and
    /// can be shared by several scheduler processes) answers
    /// `Capabilities::persistent().with_cluster(notifies)`.
    fn capabilities(&self) -> Capabilities {
        Capabilities::persistent()
    }

    /// The row with `id`, or `None`.
    fn get(&self, id: &str) -> impl Future<Output = Result<Option<StoredRecord>>> + Send;

    /// The first `limit` rows whose next run time is at or before `now`, in run-time order
    /// (ties by id). Paused rows are never due.
    fn due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredRecord>>> + Send;

    /// The first `limit` scheduled rows (paused ones left out) in run-time order, ties by id:
    /// id, run time and revision only. The adapter asks for one more than the rows it skips,
    /// so this is usually a one-row query on the index.
    fn next_run_times(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<ScheduleEntry>>> + Send;

    /// Every row, in any order.
    fn all(&self) -> impl Future<Output = Result<Vec<StoredRecord>>> + Send;

    /// How many rows there are (readable or not). The provided method counts
    /// [`all`](Self::all); a backend answers it with one query (`SELECT COUNT(*)`, `ZCARD`,
    /// `count_documents`), since the scheduler asks every few seconds for its metrics.
    fn count(&self) -> impl Future<Output = Result<u64>> + Send {
        async { Ok(self.all().await?.len() as u64) }
    }

    /// Adds `record` unless a row with its id exists; answers whether it was added.
    fn insert(&self, record: StoredRecord) -> impl Future<Output = Result<bool>> + Send;

    /// [`insert`](Self::insert)s each record, answering for every record, in the order given,
    /// whether it was added (`false`: a row with its id existed, also one added earlier in the
    /// same call). Each insert is atomic on its own; the call need not be.
    ///
    /// The default inserts one record at a time. Override it to add many in one round trip (a
    /// multi-row insert that skips duplicate ids and tells which rows it added, a script, an
    /// unordered bulk insert whose duplicate-key errors are read per record). The adapter
    /// refuses an answer of the wrong length.
    fn insert_many(
        &self,
        records: Vec<StoredRecord>,
    ) -> impl Future<Output = Result<Vec<bool>>> + Send {
        async move {
            let mut added = Vec::with_capacity(records.len());
            for record in records {
                added.push(self.insert(record).await?);
            }
            Ok(added)
        }
    }

    /// Whether single adds that arrive while another is in flight wait for it and then go
    /// together in one [`insert_many`](Self::insert_many) call (group commit, see
    /// [`RecordJobStore`](super::RecordJobStore)); by default they do. Answer `false` where
    /// a small `insert_many` costs more than the separate inserts it replaces: a server
    /// that already flushes concurrent commits together, reached over several round trips
    /// per `insert_many` (the adds then go to the backend at once, each on its own).
    fn group_adds(&self) -> bool {
        true
    }

    /// Adds `record`, or replaces the row with its id whatever that row's revision.
    fn upsert(&self, record: StoredRecord) -> impl Future<Output = Result<()>> + Send;

    /// Replaces the row with `record.id` by `record` if the row is at `expected_revision`;
    /// answers whether it did (`false`: no such row, or another revision).
    fn update(
        &self,
        record: StoredRecord,
        expected_revision: u64,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Removes the row with `id` (whatever it holds); answers whether there was one.
    fn remove(&self, id: &str) -> impl Future<Output = Result<bool>> + Send;

    /// Removes every row.
    fn remove_all(&self) -> impl Future<Output = Result<()>> + Send;

    /// For each commit whose row is at `expected_revision`, writes `write` in its place (or
    /// removes the row when `write` is `None`), each commit atomically; answers every commit by
    /// id: [`Committed`](crate::FireAnswer::Committed) or [`Stale`](crate::FireAnswer::Stale). Batch the
    /// round trips as the server allows; the batch need not be atomic as a whole.
    fn commit_fires(
        &self,
        commits: &[RecordFireCommit],
    ) -> impl Future<Output = Result<FireAnswers>> + Send;

    // ----- several schedulers on one store (see `store::cluster`) ------------------------

    /// Claims up to `limit` rows due at `now`, in run-time order (ties by id), skipping rows
    /// whose claim is held by another node and has not lapsed (`claim_until > now`); sets each
    /// returned row's claim to `claim` (node, token, until) atomically, so two concurrent calls
    /// (any processes) never both return the same row unless the earlier claim had lapsed.
    /// Rows claimed earlier by the same node are claimable again. Paused rows never.
    ///
    /// A claim is not a write of the job: it does not change the revision. Every write of the
    /// row (update, upsert, an applied commit of [`commit_fires`](Self::commit_fires)) clears
    /// the claim.
    ///
    /// Default: [`due`](Self::due) (no claims: every node races the fire commit).
    fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        claim: &Claim,
    ) -> impl Future<Output = Result<Vec<StoredRecord>>> + Send {
        let _ = claim;
        self.due(now, limit)
    }

    /// The first `limit` rows due at `now` that no live claim of another node holds (as
    /// [`claim_due`](Self::claim_due) would choose them), read without claiming them; `None`
    /// (the default) to have them claimed with `claim_due` instead.
    ///
    /// The adapter asks this for the first batch after a start only, so that the batch's fire
    /// commit is the first write of the start: a claim is a durable commit of its own on a
    /// SQL server, and the revision-guarded fire commit alone keeps two nodes from firing one
    /// job (a claim only shares the work). Nodes starting together may then read the same few
    /// rows; one commit applies, the others answer stale.
    fn due_unclaimed(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        node: &str,
    ) -> impl Future<Output = Result<Option<Vec<StoredRecord>>>> + Send {
        let _ = (now, limit, node);
        async { Ok(None) }
    }

    /// Clears `node`'s claim on the rows `ids` (rows it claimed but will not fire). Rows
    /// claimed by another node are left alone. Default: nothing.
    fn release_claims(
        &self,
        node: &str,
        ids: &[String],
    ) -> impl Future<Output = Result<()>> + Send {
        let _ = (node, ids);
        async { Ok(()) }
    }

    /// Writes (upserts) this node's heartbeat. Default: nothing.
    fn heartbeat(&self, node: &NodeRecord) -> impl Future<Output = Result<()>> + Send {
        let _ = node;
        async { Ok(()) }
    }

    /// This node's first heartbeat after a start, which the scheduler writes before its loop
    /// claims or fires anything here. Default: [`heartbeat`](Self::heartbeat), at once.
    ///
    /// A backend whose every write is a durable commit may instead keep it and write it with
    /// its next write of the node's: in the transaction of [`commit_fires`](Self::commit_fires)
    /// (before any run recorded in flight there, so no node ever sees a run of a node it
    /// does not list), or replaced by a [`heartbeat`](Self::heartbeat); and before it answers
    /// [`nodes`](Self::nodes) or [`inflight_runs`](Self::inflight_runs), which the scheduler's
    /// heartbeat task reads once the loop's first pass is over. The start's first runs then
    /// wait for one commit, not two. A kept heartbeat is dropped by
    /// [`shutdown`](Self::shutdown).
    fn join(&self, node: &NodeRecord) -> impl Future<Output = Result<()>> + Send {
        self.heartbeat(node)
    }

    /// Every node's heartbeat row (live or lapsed), in any order. Default: none.
    fn nodes(&self) -> impl Future<Output = Result<Vec<NodeRecord>>> + Send {
        async { Ok(Vec::new()) }
    }

    /// Removes node `id`'s heartbeat if its `last_seen` still equals `last_seen` (a node that
    /// wrote a heartbeat since is not removed); answers whether it removed it. Exactly one of
    /// several concurrent callers gets `true`: that caller recovers the node's runs.
    /// Default: `false`.
    fn remove_node(
        &self,
        id: &str,
        last_seen: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool>> + Send {
        let _ = (id, last_seen);
        async { Ok(false) }
    }

    /// Removes the in-flight entry `(job_id, run_time)`, whatever node holds it. Default:
    /// nothing.
    fn finish_run(
        &self,
        job_id: &str,
        run_time: DateTime<Utc>,
    ) -> impl Future<Output = Result<()>> + Send {
        let _ = (job_id, run_time);
        async { Ok(()) }
    }

    /// Moves every in-flight entry of node `from` to node `to`, atomically per entry, and
    /// answers the entries moved (each entry is answered to exactly one caller). Default: none.
    fn adopt_runs(
        &self,
        from: &str,
        to: &str,
    ) -> impl Future<Output = Result<Vec<InflightRun>>> + Send {
        let _ = (from, to);
        async { Ok(Vec::new()) }
    }

    /// Every in-flight entry (for operators and tests). Default: none.
    fn inflight_runs(&self) -> impl Future<Output = Result<Vec<InflightRun>>> + Send {
        async { Ok(Vec::new()) }
    }
}

/// The instants from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z: every run time a
/// trigger answers, and the default [`RecordStore::run_time_range`].
pub fn full_run_time_range() -> RangeInclusive<DateTime<Utc>> {
    let first = NaiveDate::from_ymd_opt(1, 1, 1).and_then(|d| d.and_hms_opt(0, 0, 0));
    let last = NaiveDate::from_ymd_opt(9999, 12, 31)
        .and_then(|d| d.and_hms_micro_opt(23, 59, 59, 999_999));
    match (first, last) {
        (Some(first), Some(last)) => first.and_utc()..=last.and_utc(),
        _ => DateTime::<Utc>::MIN_UTC..=DateTime::<Utc>::MAX_UTC,
    }
}

/// `t` as integer microseconds since 1970-01-01T00:00:00Z, for a backend whose native time
/// type cannot hold the whole range exactly.
pub fn to_micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// The instant `micros` microseconds after 1970-01-01T00:00:00Z; a
/// [`Serialization`](ErrorKind::Serialization) error for a stored value no instant has.
pub fn from_micros(micros: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_micros(micros).ok_or_else(|| {
        Error::new(
            ErrorKind::Serialization,
            format!("{micros} µs since 1970 is not a valid run time"),
        )
    })
}

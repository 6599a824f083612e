//! [`RedisRecords`]: the [`RecordStore`] queries over a hash, a sorted set and a hash.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, RedisResult, Script};
use scheduler_core::chrono::{DateTime, Utc};
use scheduler_core::store::{
    Capabilities, Claim, FireAnswer, FireAnswers, InflightRun, NodeRecord, RecordFireCommit,
    ScheduleEntry, StoredRecord, from_micros, to_micros,
};
use scheduler_core::{Error, ErrorKind, RecordStore, Result, StoreContext};

use crate::config::{Keys, RedisStoreBuilder};
use crate::{scripts, wakeup};

/// The largest magnitude of a score, in microseconds since 1970, that a double holds exactly
/// together with every integer below it: 2^53.
pub const MAX_EXACT_MICROS: i64 = 1 << 53;

/// Rows per script call for batched inserts and fire commits: a script blocks the server
/// while it runs, so a huge batch is cut into calls of a few milliseconds each.
const ROWS_PER_SCRIPT: usize = 1_000;

/// The Redis backend: job records in a hash, run times in a sorted set, revisions in a hash.
/// Wrap it in [`RedisJobStore`](crate::RedisJobStore) (built by
/// [`RedisStoreBuilder::build`]); it is public for the scheduler's testkit and for tools that
/// read rows directly.
///
/// One handle holds one multiplexed connection that reconnects by itself; every call is
/// bounded by the response timeout and fails with a temporary
/// [`Backend`](ErrorKind::Backend) error when the server is down or does not answer.
pub struct RedisRecords {
    client: redis::Client,
    /// The URL with its password replaced: the only form of it that is ever shown.
    redacted_url: String,
    keys: Keys,
    response_timeout: Duration,
    connection_timeout: Duration,
    connection: Mutex<Option<ConnectionManager>>,
    /// The wake-up subscriber while started.
    listener: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// This node's first heartbeat since the start, until it is sent (see `keep_joined`).
    joined: Mutex<Option<NodeRecord>>,
}

impl fmt::Debug for RedisRecords {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `redis::Client`'s own Debug shows its connection info, password included.
        f.debug_struct("RedisRecords")
            .field("url", &self.redacted_url)
            .field("jobs_key", &self.keys.jobs)
            .field("run_times_key", &self.keys.run_times)
            .field("revisions_key", &self.keys.revisions)
            .field("claims_key", &self.keys.claims)
            .field("inflight_key", &self.keys.inflight)
            .field("nodes_key", &self.keys.nodes)
            .field("wakeup_channel", &self.keys.wakeup)
            .field("response_timeout", &self.response_timeout)
            .field("connected", &self.lock().is_some())
            .finish()
    }
}

impl Drop for RedisRecords {
    fn drop(&mut self) {
        // The listener holds the context (and through it the scheduler's wake-up); it must
        // not outlive the store.
        self.stop_listener();
    }
}

impl RedisRecords {
    /// A builder for a store on the server at `url` (`redis://[:password@]host[:port][/db]`
    /// or `redis+unix:///path`).
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder::new(url)
    }

    pub(crate) fn new(
        client: redis::Client,
        redacted_url: String,
        keys: Keys,
        response_timeout: Duration,
        connection_timeout: Duration,
    ) -> Self {
        RedisRecords {
            client,
            redacted_url,
            keys,
            response_timeout,
            connection_timeout,
            connection: Mutex::new(None),
            listener: Mutex::new(None),
            joined: Mutex::new(None),
        }
    }

    /// The server's URL, its password replaced by `***`.
    pub fn url(&self) -> &str {
        &self.redacted_url
    }

    /// The hash of job records (id -> JSON).
    pub fn jobs_key(&self) -> &str {
        &self.keys.jobs
    }

    /// The sorted set of run times (id -> integer microseconds since 1970).
    pub fn run_times_key(&self) -> &str {
        &self.keys.run_times
    }

    /// The hash of revisions (id -> decimal revision).
    pub fn revisions_key(&self) -> &str {
        &self.keys.revisions
    }

    /// The hash of claims on due rows (id -> `node|token|until µs`).
    pub fn claims_key(&self) -> &str {
        &self.keys.claims
    }

    /// The hash of runs in flight of jobs with recovery on (`run µs|job id` -> node).
    pub fn inflight_key(&self) -> &str {
        &self.keys.inflight
    }

    /// The hash of scheduler heartbeats (node id -> `last seen µs|info`).
    pub fn nodes_key(&self) -> &str {
        &self.keys.nodes
    }

    /// The pub/sub channel every write that gives a job a run time publishes on.
    pub fn wakeup_channel(&self) -> &str {
        &self.keys.wakeup
    }

    pub(crate) fn keys(&self) -> &Keys {
        &self.keys
    }

    fn lock(&self) -> MutexGuard<'_, Option<ConnectionManager>> {
        // The guarded value is replaced whole; a panic cannot leave it half changed.
        self.connection.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn joined(&self) -> MutexGuard<'_, Option<NodeRecord>> {
        // Only assignments happen under the lock.
        self.joined.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn connection(&self) -> Result<ConnectionManager> {
        self.lock().clone().ok_or_else(|| {
            Error::scheduler_state(format!(
                "the Redis job store at {} is not started",
                self.redacted_url
            ))
        })
    }

    /// Runs one request on the connection with the response timeout; maps its failure to a
    /// backend error.
    ///
    /// A refused connection is tried once more at once: the connection manager answers the
    /// first call after an outage with the error of its last failed reconnection (and only
    /// then reconnects), and a refused request was never sent, so sending it again cannot
    /// apply it twice.
    pub(crate) async fn call<T, F, Fut>(&self, what: &str, request: F) -> Result<T>
    where
        F: Fn(ConnectionManager) -> Fut + Send,
        Fut: Future<Output = RedisResult<T>> + Send,
    {
        let connection = self.connection()?;
        let attempts = async {
            match request(connection.clone()).await {
                Err(e) if e.is_connection_refusal() => request(connection).await,
                answer => answer,
            }
        };
        match tokio::time::timeout(self.response_timeout, attempts).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(backend_error(
                &self.redacted_url,
                what,
                e,
                self.response_timeout,
            )),
            Err(_) => Err(Error::timed_out(
                &format!("Redis at {} ({what})", self.redacted_url),
                self.response_timeout,
            )),
        }
    }

    /// Runs `script` on the store's keys with `args` (EVALSHA, loading the script when the
    /// server does not know it, as after a restart).
    pub(crate) async fn script<T: redis::FromRedisValue + Send>(
        &self,
        what: &str,
        script: &Script,
        args: &[&[u8]],
    ) -> Result<T> {
        let mut invocation = script.prepare_invoke();
        for key in self.keys.all() {
            invocation.key(key);
        }
        for arg in args {
            invocation.arg(*arg);
        }
        let invocation = &invocation;
        self.call(what, |mut c| async move {
            invocation.invoke_async(&mut c).await
        })
        .await
    }

    /// Answers of a script that answers 0 or 1 per group, checked for length.
    fn flags(&self, what: &str, answers: Vec<i64>, expected: usize) -> Result<Vec<bool>> {
        let answers = self.one_each(what, answers, expected)?;
        Ok(answers.into_iter().map(|a| a == 1).collect())
    }

    /// `answers`, if the script answered `expected` of them.
    fn one_each(&self, what: &str, answers: Vec<i64>, expected: usize) -> Result<Vec<i64>> {
        if answers.len() != expected {
            return Err(Error::new(
                ErrorKind::Backend,
                format!(
                    "Redis at {} answered {} of {expected} {what}s",
                    self.redacted_url,
                    answers.len()
                ),
            ));
        }
        Ok(answers)
    }

    async fn connect(&self) -> Result<ConnectionManager> {
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(self.response_timeout))
            .set_connection_timeout(Some(self.connection_timeout))
            // Reconnection is retried by the next call anyway: keep each attempt short, so a
            // call waiting for it still answers within the response timeout.
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let connect = ConnectionManager::new_with_config(self.client.clone(), config);
        let budget = self.connection_timeout + self.response_timeout;
        match tokio::time::timeout(budget, connect).await {
            Ok(Ok(manager)) => Ok(manager),
            Ok(Err(e)) => Err(backend_error(&self.redacted_url, "connect", e, budget)),
            Err(_) => Err(Error::timed_out(
                &format!("Redis at {} (connect)", self.redacted_url),
                budget,
            )),
        }
    }

    /// Leaves a task listening on the wake-up channel, replacing an earlier one. The task
    /// subscribes on a connection of its own, beside the start's first pass rather than
    /// before it (subscribing there held the first runs back by a connection's set-up on
    /// two cores), and then wakes the scheduler once, so that a job written between the
    /// start and the subscription is not left to the polling.
    fn start_listener(&self, ctx: &StoreContext) {
        self.stop_listener();
        let task = tokio::spawn(wakeup::listen(
            self.client.clone(),
            self.keys.wakeup.clone(),
            ctx.clone(),
            self.response_timeout,
            self.redacted_url.clone(),
        ));
        *self.listener.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
    }

    fn stop_listener(&self) {
        let task = self
            .listener
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(task) = task {
            task.abort();
        }
    }

    /// Refuses keys that hold another type than this store writes there (a prefix that
    /// collides with another application's keys), before anything is written.
    async fn check_key_types(&self) -> Result<()> {
        let keys = [
            &self.keys.jobs,
            &self.keys.run_times,
            &self.keys.revisions,
            &self.keys.claims,
            &self.keys.inflight,
            &self.keys.nodes,
        ];
        let mut pipe = redis::pipe();
        for key in keys {
            pipe.cmd("TYPE").arg(key);
        }
        let pipe_ref = &pipe;
        let types: Vec<String> = self
            .call(
                "TYPE",
                |mut c| async move { pipe_ref.query_async(&mut c).await },
            )
            .await?;
        let expected = ["hash", "zset", "hash", "hash", "hash", "hash"];
        for ((key, found), want) in keys.into_iter().zip(&types).zip(expected) {
            if found != "none" && found != want {
                return Err(Error::config(format!(
                    "the Redis key {key:?} at {} holds a {found}, not the {want} this job \
                     store keeps there; choose another key prefix",
                    self.redacted_url
                )));
            }
        }
        Ok(())
    }
}

/// A driver error as a backend error, temporary when retrying may help (the driver's own
/// response timeout reads like ours). The driver's messages name no credentials; the URL
/// shown is the redacted one.
fn backend_error(url: &str, what: &str, e: RedisError, timeout: Duration) -> Error {
    if e.is_timeout() {
        return Error::timed_out(&format!("Redis at {url} ({what})"), timeout).with_source(e);
    }
    let temporary = e.is_io_error()
        || e.is_connection_refusal()
        || e.is_connection_dropped()
        || !matches!(e.retry_method(), redis::RetryMethod::NoRetry);
    let error = Error::backend(format!("Redis at {url} ({what}) failed: {e}"), e);
    if temporary {
        error.set_temporary()
    } else {
        error
    }
}

/// The score a run time is stored with: integer microseconds, exact as a double within the
/// declared range (which the adapter enforces).
fn score(t: Option<DateTime<Utc>>) -> Vec<u8> {
    t.map(|t| to_micros(t).to_string().into_bytes())
        .unwrap_or_default()
}

/// The run-time range a score holds exactly: ±2^53 µs around 1970 (1684-07-28 to 2255-06-05).
pub(crate) fn exact_range() -> RangeInclusive<DateTime<Utc>> {
    let start = from_micros(-MAX_EXACT_MICROS).unwrap_or(DateTime::<Utc>::MIN_UTC);
    let end = from_micros(MAX_EXACT_MICROS).unwrap_or(DateTime::<Utc>::MAX_UTC);
    start..=end
}

/// A row as read: turns what Redis holds into a [`StoredRecord`], showing what cannot be a
/// row (a fractional or out-of-range score, a revision that is no number, a missing or
/// non-UTF-8 record) as a record with empty JSON, which the adapter reports as corrupt and
/// leaves alone.
struct RawRow {
    id: String,
    score: Option<f64>,
    revision: Option<Vec<u8>>,
    json: Option<Vec<u8>>,
}

impl RawRow {
    fn into_record(self) -> StoredRecord {
        let mut problems = Vec::new();
        let next_run_time = self.score.map(|s| {
            let clamped = s
                .floor()
                .clamp(-(MAX_EXACT_MICROS as f64), MAX_EXACT_MICROS as f64);
            if clamped != s {
                problems.push(format!(
                    "its run-time score {s} is not a whole number of microseconds within ±2^53"
                ));
            }
            // In range and whole: the cast is exact.
            from_micros(clamped as i64).unwrap_or(DateTime::UNIX_EPOCH)
        });
        let revision = match self.revision.as_deref() {
            None | Some(b"") => 0,
            Some(bytes) => match std::str::from_utf8(bytes).ok().and_then(|s| s.parse().ok()) {
                Some(revision) => revision,
                None => {
                    problems.push("its revision is not a number".to_owned());
                    0
                }
            },
        };
        let json = match self.json.map(String::from_utf8) {
            Some(Ok(json)) => json,
            Some(Err(_)) => {
                problems.push("its record is not UTF-8".to_owned());
                String::new()
            }
            None => {
                problems.push("it has a run time but no record".to_owned());
                String::new()
            }
        };
        if !problems.is_empty() {
            tracing::error!(
                job = %self.id,
                problems = %problems.join("; "),
                "unreadable Redis job row, left untouched"
            );
        }
        StoredRecord {
            id: self.id,
            next_run_time,
            revision,
            json: if problems.is_empty() {
                json
            } else {
                String::new()
            },
        }
    }
}

/// The rows of an answer of groups of 4 (id, score, revision, JSON), as [`scripts::DUE`] and
/// [`scripts::CLAIM`] give them.
pub(crate) fn due_rows(flat: Vec<Vec<u8>>) -> Vec<StoredRecord> {
    let mut rows = Vec::with_capacity(flat.len() / 4);
    let mut values = flat.into_iter();
    while let (Some(id), Some(score), Some(revision), Some(json)) =
        (values.next(), values.next(), values.next(), values.next())
    {
        rows.push(
            RawRow {
                id: text(id),
                score: Some(parse_score(&score).unwrap_or(f64::NAN)),
                revision: optional(revision),
                json: optional(json),
            }
            .into_record(),
        );
    }
    rows
}

pub(crate) fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn parse_score(bytes: &[u8]) -> Option<f64> {
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

fn optional(bytes: Vec<u8>) -> Option<Vec<u8>> {
    (!bytes.is_empty()).then_some(bytes)
}

impl RecordStore for RedisRecords {
    async fn start(&self, ctx: &StoreContext) -> Result<()> {
        drop(self.joined().take());
        if self.lock().is_none() {
            let manager = self.connect().await?;
            *self.lock() = Some(manager);
        }
        self.check_key_types().await?;
        self.start_listener(ctx);
        Ok(())
    }

    async fn shutdown(&self) -> Result<()> {
        self.stop_listener();
        drop(self.joined().take());
        // Dropping the last clone closes the connection; calls in flight keep theirs.
        self.lock().take();
        Ok(())
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::persistent().with_cluster(true)
    }

    fn group_adds(&self) -> bool {
        // A write is not flushed on its own (the append-only file syncs every second at most)
        // and the connection pipelines concurrent calls: a group saves no flush and makes the
        // adds wait for each other. 8 concurrent callers measured 25k/s grouped against 29k/s.
        false
    }

    async fn count(&self) -> Result<u64> {
        // A row is an id in the jobs hash or in the sorted set; both hold it unless a row
        // is paused (hash only) or has lost its record (set only), so the larger count is
        // exact whenever the store holds no row without a record.
        let mut pipe = redis::pipe();
        pipe.atomic()
            .hlen(&self.keys.jobs)
            .zcard(&self.keys.run_times);
        let pipe_ref = &pipe;
        let (records, scheduled): (u64, u64) = self
            .call("count", |mut c| async move {
                pipe_ref.query_async(&mut c).await
            })
            .await?;
        Ok(records.max(scheduled))
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        claim: &Claim,
    ) -> Result<Vec<StoredRecord>> {
        self.with_joined(self.claim_rows(now, limit, claim)).await
    }

    async fn release_claims(&self, node: &str, ids: &[String]) -> Result<()> {
        self.release_claim_ids(node, ids).await
    }

    async fn join(&self, node: &NodeRecord) -> Result<()> {
        self.keep_joined(node);
        Ok(())
    }

    async fn heartbeat(&self, node: &NodeRecord) -> Result<()> {
        self.write_heartbeat(node).await?;
        // A newer heartbeat replaces the one kept since the start.
        drop(self.joined().take());
        Ok(())
    }

    async fn nodes(&self) -> Result<Vec<NodeRecord>> {
        self.write_joined().await?;
        self.node_records().await
    }

    async fn remove_node(&self, id: &str, last_seen: DateTime<Utc>) -> Result<bool> {
        self.remove_node_if(id, last_seen).await
    }

    async fn finish_run(&self, job_id: &str, run_time: DateTime<Utc>) -> Result<()> {
        self.finish_inflight(job_id, run_time).await
    }

    async fn adopt_runs(&self, from: &str, to: &str) -> Result<Vec<InflightRun>> {
        self.write_joined().await?;
        self.adopt_inflight(from, to).await
    }

    async fn inflight_runs(&self) -> Result<Vec<InflightRun>> {
        self.write_joined().await?;
        self.all_inflight().await
    }

    fn run_time_range(&self) -> RangeInclusive<DateTime<Utc>> {
        exact_range()
    }

    async fn get(&self, id: &str) -> Result<Option<StoredRecord>> {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .hget(&self.keys.jobs, id)
            .zscore(&self.keys.run_times, id)
            .hget(&self.keys.revisions, id);
        let pipe_ref = &pipe;
        let (json, score, revision): (Option<Vec<u8>>, Option<f64>, Option<Vec<u8>>) = self
            .call(
                "get",
                |mut c| async move { pipe_ref.query_async(&mut c).await },
            )
            .await?;
        if json.is_none() && score.is_none() {
            return Ok(None);
        }
        Ok(Some(
            RawRow {
                id: id.to_owned(),
                score,
                revision,
                json,
            }
            .into_record(),
        ))
    }

    async fn due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<StoredRecord>> {
        let max = to_micros(now).clamp(-MAX_EXACT_MICROS, MAX_EXACT_MICROS);
        // Redis reads counts as signed 64-bit integers.
        let limit = limit.min(i64::MAX as usize);
        let (max, limit) = (max.to_string(), limit.to_string());
        let args = [max.as_bytes(), limit.as_bytes()];
        let flat: Vec<Vec<u8>> = self
            .with_joined(self.script("due", &scripts::DUE, &args))
            .await?;
        Ok(due_rows(flat))
    }

    async fn next_run_times(&self, limit: usize) -> Result<Vec<ScheduleEntry>> {
        let last_rank = (limit.clamp(1, i64::MAX as usize) - 1).to_string();
        let flat: Vec<Vec<u8>> = self
            .script("next run times", &scripts::NEXT, &[last_rank.as_bytes()])
            .await?;
        let mut entries = Vec::with_capacity(flat.len() / 3);
        let mut values = flat.into_iter();
        while let (Some(id), Some(score), Some(revision)) =
            (values.next(), values.next(), values.next())
        {
            let row = RawRow {
                id: text(id),
                score: Some(parse_score(&score).unwrap_or(f64::NAN)),
                revision: optional(revision),
                // Only the schedule is read here; the record is checked when it is due.
                json: Some(Vec::new()),
            };
            let record = row.into_record();
            if let Some(next_run_time) = record.next_run_time {
                entries.push(ScheduleEntry {
                    id: record.id,
                    next_run_time,
                    revision: record.revision,
                });
            }
        }
        Ok(entries)
    }

    async fn all(&self) -> Result<Vec<StoredRecord>> {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .hgetall(&self.keys.jobs)
            .hgetall(&self.keys.revisions)
            .zrange_withscores(&self.keys.run_times, 0, -1);
        type All = (
            HashMap<Vec<u8>, Vec<u8>>,
            HashMap<Vec<u8>, Vec<u8>>,
            Vec<(Vec<u8>, f64)>,
        );
        let pipe_ref = &pipe;
        let (jobs, mut revisions, scores): All = self
            .call(
                "all",
                |mut c| async move { pipe_ref.query_async(&mut c).await },
            )
            .await?;
        let mut scores: HashMap<Vec<u8>, f64> = scores.into_iter().collect();
        let mut rows = Vec::with_capacity(jobs.len());
        for (id, json) in jobs {
            let score = scores.remove(&id);
            let revision = revisions.remove(&id);
            rows.push(
                RawRow {
                    id: text(id),
                    score,
                    revision,
                    json: Some(json),
                }
                .into_record(),
            );
        }
        // Run times without a record: shown, so that they are reported rather than hidden.
        for (id, score) in scores {
            let revision = revisions.remove(&id);
            rows.push(
                RawRow {
                    id: text(id),
                    score: Some(score),
                    revision,
                    json: None,
                }
                .into_record(),
            );
        }
        Ok(rows)
    }

    async fn insert(&self, record: StoredRecord) -> Result<bool> {
        let added = self.insert_many(vec![record]).await?;
        Ok(added.first().copied().unwrap_or(false))
    }

    async fn insert_many(&self, records: Vec<StoredRecord>) -> Result<Vec<bool>> {
        let mut added = Vec::with_capacity(records.len());
        for chunk in records.chunks(ROWS_PER_SCRIPT) {
            let revisions: Vec<String> = chunk.iter().map(|r| r.revision.to_string()).collect();
            let scores: Vec<Vec<u8>> = chunk.iter().map(|r| score(r.next_run_time)).collect();
            let mut args: Vec<&[u8]> = Vec::with_capacity(chunk.len() * 4);
            for ((record, revision), score) in chunk.iter().zip(&revisions).zip(&scores) {
                args.extend([
                    record.id.as_bytes(),
                    record.json.as_bytes(),
                    revision.as_bytes(),
                    score.as_slice(),
                ]);
            }
            let answers: Vec<i64> = self.script("insert", &scripts::INSERT, &args).await?;
            added.extend(self.flags("insert", answers, chunk.len())?);
        }
        Ok(added)
    }

    async fn upsert(&self, record: StoredRecord) -> Result<()> {
        let revision = record.revision.to_string();
        let score = score(record.next_run_time);
        let _: i64 = self
            .script(
                "upsert",
                &scripts::UPSERT,
                &[
                    record.id.as_bytes(),
                    record.json.as_bytes(),
                    revision.as_bytes(),
                    &score,
                ],
            )
            .await?;
        Ok(())
    }

    async fn update(&self, record: StoredRecord, expected_revision: u64) -> Result<bool> {
        let (expected, revision) = (expected_revision.to_string(), record.revision.to_string());
        let score = score(record.next_run_time);
        let answers: Vec<i64> = self
            .script(
                "update",
                &scripts::CONDITIONAL,
                &[
                    b"p",
                    record.id.as_bytes(),
                    expected.as_bytes(),
                    b"w",
                    record.json.as_bytes(),
                    revision.as_bytes(),
                    &score,
                    b"",
                    b"",
                    b"",
                ],
            )
            .await?;
        let applied = self.flags("update", answers, 1)?;
        Ok(applied.first().copied().unwrap_or(false))
    }

    async fn remove(&self, id: &str) -> Result<bool> {
        let removed: i64 = self
            .script("remove", &scripts::REMOVE, &[id.as_bytes()])
            .await?;
        Ok(removed == 1)
    }

    async fn remove_all(&self) -> Result<()> {
        // The rows and their claims; the nodes' heartbeats and runs in flight are not rows.
        let mut cmd = redis::cmd("DEL");
        cmd.arg(&self.keys.jobs)
            .arg(&self.keys.run_times)
            .arg(&self.keys.revisions)
            .arg(&self.keys.claims);
        let cmd = &cmd;
        let _: i64 = self
            .call("remove all", |mut c| async move {
                cmd.query_async(&mut c).await
            })
            .await?;
        Ok(())
    }

    async fn commit_fires(&self, commits: &[RecordFireCommit]) -> Result<FireAnswers> {
        // Sent beside the due read as a rule; before any run recorded in flight in any case.
        self.write_joined().await?;
        let mut answers = FireAnswers::with_capacity(commits.len());
        for chunk in commits.chunks(ROWS_PER_SCRIPT) {
            let numbers: Vec<(String, String)> = chunk
                .iter()
                .map(|c| {
                    let revision = c.write.as_ref().map(|w| w.revision.to_string());
                    (
                        c.expected_revision.to_string(),
                        revision.unwrap_or_default(),
                    )
                })
                .collect();
            let scores: Vec<Vec<u8>> = chunk
                .iter()
                .map(|c| score(c.write.as_ref().and_then(|w| w.next_run_time)))
                .collect();
            let runs: Vec<String> = chunk
                .iter()
                .map(|c| match &c.inflight {
                    Some((_, times)) => {
                        let micros: Vec<String> =
                            times.iter().map(|t| to_micros(*t).to_string()).collect();
                        micros.join(",")
                    }
                    None => String::new(),
                })
                .collect();
            let limits: Vec<String> = chunk
                .iter()
                .map(|c| c.max_inflight.map(|n| n.to_string()).unwrap_or_default())
                .collect();
            let mut args: Vec<&[u8]> = Vec::with_capacity(1 + chunk.len() * 9);
            args.push(b"-");
            for ((((commit, (expected, revision)), score), runs), limit) in chunk
                .iter()
                .zip(&numbers)
                .zip(&scores)
                .zip(&runs)
                .zip(&limits)
            {
                let (mode, json): (&[u8], &[u8]) = match &commit.write {
                    Some(write) => (b"w", write.json.as_bytes()),
                    None => (b"d", b""),
                };
                let node = commit
                    .inflight
                    .as_ref()
                    .map_or("", |(node, _)| node.as_str());
                args.extend([
                    commit.id.as_bytes(),
                    expected.as_bytes(),
                    mode,
                    json,
                    revision.as_bytes(),
                    score.as_slice(),
                    node.as_bytes(),
                    runs.as_bytes(),
                    limit.as_bytes(),
                ]);
            }
            let applied: Vec<i64> = self
                .script("commit fires", &scripts::CONDITIONAL, &args)
                .await?;
            let applied = self.one_each("fire commit", applied, chunk.len())?;
            for (commit, applied) in chunk.iter().zip(applied) {
                let answer = match applied {
                    1 => FireAnswer::Committed,
                    2 => FireAnswer::Refused,
                    _ => FireAnswer::Stale,
                };
                answers.insert(Arc::clone(&commit.id), answer);
            }
        }
        Ok(answers)
    }
}

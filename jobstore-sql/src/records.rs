//! [`SqlRecords`]: the [`RecordStore`] queries over one table, for every dialect.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use scheduler_core::store::record::full_run_time_range;
use scheduler_core::store::{Claim, InflightRun, NodeRecord};
use scheduler_core::store::{
    RecordFireCommit, ScheduleEntry, StoredRecord, from_micros, to_micros,
};
use scheduler_core::{
    Capabilities, Error, ErrorKind, FireAnswer, FireAnswers, RecordStore, Result, StoreContext,
};
use sqlx::SqlStr;

use crate::cluster::ClusterQueries;
use crate::dialect::{self, Dialect, Queries};
use crate::pool::{Arg, Pool, PoolSettings, Row, Shape, Step};
use crate::url::StoreUrl;

/// The job rows of one SQL table: the [`RecordStore`] behind [`SqlJobStore`](crate::SqlJobStore).
///
/// Built by [`SqlStoreBuilder`](crate::SqlStoreBuilder); connects at `start`, creating the
/// table and its index when they are missing. Its `Debug` shows the URL without its password.
pub struct SqlRecords {
    pub(crate) url: StoreUrl,
    pub(crate) table: String,
    queries: Queries,
    pub(crate) cluster: ClusterQueries,
    settings: PoolSettings,
    call_timeout: Duration,
    pool: Mutex<Option<Pool>>,
    /// PostgreSQL's wake-up listener, while started.
    listener: Mutex<Listener>,
    /// This node's first heartbeat since the start, until a write carries it (see
    /// `RecordStore::join`).
    joined: Mutex<Option<NodeRecord>>,
}

impl fmt::Debug for SqlRecords {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlRecords")
            .field("dialect", &self.url.dialect.name())
            .field("url", &self.url.redacted)
            .field("table", &self.table)
            .field("settings", &self.settings)
            .field("call_timeout", &self.call_timeout)
            .field("connected", &self.lock().is_some())
            .finish()
    }
}

/// The integer microseconds of the first and last run time a store holds (the years 1-9999).
pub(crate) fn micros_bounds() -> (i64, i64) {
    let range = full_run_time_range();
    (to_micros(*range.start()), to_micros(*range.end()))
}

/// What a row shows an operator beside the JSON: the job's function and trigger kind. Read
/// from the JSON the adapter wrote, for display only, and borrowed from it where no escape
/// needs decoding, so only the column values are allocated.
#[derive(serde::Deserialize)]
struct Summary<'a> {
    #[serde(borrow)]
    func: Option<Cow<'a, str>>,
    #[serde(borrow)]
    trigger: Option<TriggerSummary<'a>>,
}

#[derive(serde::Deserialize)]
struct TriggerSummary<'a> {
    #[serde(borrow)]
    kind: Option<Cow<'a, str>>,
}

/// The informational columns hold at most this many characters (MySQL's `VARCHAR(255)`).
const SUMMARY_CHARS: usize = 255;

fn clip(text: &str) -> String {
    match text.char_indices().nth(SUMMARY_CHARS) {
        Some((end, _)) => text[..end].to_owned(),
        None => text.to_owned(),
    }
}

impl SqlRecords {
    pub(crate) fn new(
        url: StoreUrl,
        table: String,
        settings: PoolSettings,
        call_timeout: Duration,
    ) -> Self {
        SqlRecords {
            queries: Queries::new(url.dialect, &table),
            cluster: ClusterQueries::new(url.dialect, &table),
            url,
            table,
            settings,
            call_timeout,
            pool: Mutex::new(None),
            listener: Mutex::new(Listener::Off),
            joined: Mutex::new(None),
        }
    }

    /// The table the jobs are kept in.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The table of the scheduler nodes' heartbeats: `<table>_nodes` (shortened with a hash
    /// past 63 characters).
    pub fn nodes_table(&self) -> &str {
        &self.cluster.nodes_table
    }

    /// The table of runs in flight (of jobs with recovery on or counted across nodes):
    /// `<table>_runs`.
    pub fn runs_table(&self) -> &str {
        &self.cluster.runs_table
    }

    /// The store's URL with its password replaced by `***`.
    pub fn redacted_url(&self) -> &str {
        &self.url.redacted
    }

    fn lock(&self) -> MutexGuard<'_, Option<Pool>> {
        // Only an assignment happens under the lock; nothing can leave it half changed.
        self.pool.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn pool(&self) -> Result<Pool> {
        self.lock().clone().ok_or_else(|| {
            Error::scheduler_state(format!(
                "the SQL job store on {} is used before start() or after shutdown()",
                self.url.redacted
            ))
        })
    }

    /// Runs `call`, bounded by the call timeout, mapping driver errors.
    pub(crate) async fn bounded<T>(
        &self,
        what: &str,
        call: impl Future<Output = std::result::Result<T, sqlx::Error>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.call_timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(self.backend_error(what, e)),
            Err(_) => Err(Error::timed_out(
                &format!("{what} on {} table {}", self.url.redacted, self.table),
                self.call_timeout,
            )),
        }
    }

    /// A [`Backend`](ErrorKind::Backend) error for `e`, temporary when a retry may help, with
    /// no password in its text.
    fn backend_error(&self, what: &str, e: sqlx::Error) -> Error {
        let driver = e.to_string();
        let scrubbed = self.url.scrub(&driver);
        let message = format!(
            "{what} on {} table {}: {scrubbed}",
            self.url.redacted, self.table
        );
        let temporary = is_temporary(&e);
        let mut error = Error::new(ErrorKind::Backend, message);
        // The driver's error is kept as the source unless its text shows a password.
        if scrubbed == driver {
            error = error.with_source(e);
        }
        if temporary {
            error.set_temporary()
        } else {
            error
        }
    }

    pub(crate) async fn execute(&self, what: &str, sql: &SqlStr, args: Vec<Arg>) -> Result<u64> {
        let pool = self.pool()?;
        self.bounded(what, pool.execute(sql.clone(), args)).await
    }

    pub(crate) async fn fetch(
        &self,
        what: &str,
        sql: &SqlStr,
        args: Vec<Arg>,
        shape: Shape,
    ) -> Result<Vec<Row>> {
        let pool = self.pool()?;
        self.bounded(what, pool.fetch(sql.clone(), args, shape))
            .await
    }

    /// The values of `record` for the columns of a row, in their order.
    pub(crate) fn row_args(&self, record: StoredRecord) -> Result<Vec<Arg>> {
        Ok(self.row_values(record)?.into_args())
    }

    /// The values of `record` for the columns of a row.
    pub(crate) fn row_values(&self, record: StoredRecord) -> Result<RowValues> {
        if let Some(max) = self.url.dialect.max_id_chars()
            && record.id.chars().count() > max
        {
            return Err(Error::invalid_job(format!(
                "job id {:?} is longer than the {max} characters a {} job table holds",
                record.id,
                self.url.dialect.name()
            ))
            .with_job_id(&record.id));
        }
        let summary = serde_json::from_str::<Summary<'_>>(&record.json).ok();
        let (func, kind) = match summary {
            Some(s) => (
                s.func.as_deref().map(clip),
                s.trigger.and_then(|t| t.kind).as_deref().map(clip),
            ),
            None => (None, None),
        };
        let readable = record
            .next_run_time
            .and_then(|t| self.url.dialect.readable_time(t));
        Ok(RowValues {
            id: record.id,
            micros: record.next_run_time.map(to_micros),
            readable,
            revision: revision_column(record.revision),
            func,
            kind,
            json: record.json,
        })
    }

    /// The row as the adapter reads it. A run time no instant has (an operator's typo) is read
    /// as paused, with an error logged, so that one row cannot fail every listing.
    pub(crate) fn record(&self, row: Row) -> StoredRecord {
        let next_run_time = row.micros.and_then(|micros| match from_micros(micros) {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::error!(
                    table = %self.table,
                    job = %row.id,
                    error = %e,
                    "the next_run_micros column holds no valid run time; the job is listed as \
                     paused until it is fixed"
                );
                None
            }
        });
        StoredRecord {
            id: row.id,
            next_run_time,
            revision: revision_value(row.revision),
            json: row.json,
        }
    }

    async fn create_schema(&self, pool: &Pool) -> Result<()> {
        let current = self
            .bounded(
                "checking the schema",
                pool.fetch_unprepared(self.cluster.schema_probe.clone(), Shape::Count),
            )
            .await;
        if matches!(current.as_deref(), Ok([row]) if row.micros == Some(1)) {
            return Ok(());
        }
        // Missing or incomplete (or the check failed): create what is missing, as at the
        // first start; what goes wrong there is reported from there.
        let mariadb = match self.url.dialect {
            Dialect::MySql => {
                let version = self
                    .bounded(
                        "reading the server version",
                        pool.fetch(
                            sqlx::SqlSafeStr::into_sql_str("SELECT VERSION()"),
                            Vec::new(),
                            Shape::Id,
                        ),
                    )
                    .await?;
                version.first().is_some_and(|v| v.id.contains("MariaDB"))
            }
            Dialect::Sqlite | Dialect::Postgres => false,
        };
        let mut created = Ok(());
        let statements = if self.url.dialect == Dialect::Postgres {
            created = self.create_postgres_tables(pool).await;
            Vec::new()
        } else {
            dialect::create_schema(self.url.dialect, &self.table, mariadb)
        };
        for statement in statements {
            created = self
                .bounded(
                    "creating the job table",
                    pool.execute(statement, Vec::new()),
                )
                .await
                .map(drop);
            if created.is_err() {
                break;
            }
        }
        // The probe decides: a failed CREATE may be another process creating the same table
        // at the same moment, which is fine if the table is there now.
        let probe = self
            .bounded(
                "checking the job table's columns",
                pool.fetch(self.queries.probe.clone(), Vec::new(), Shape::Id),
            )
            .await;
        match probe {
            Ok(_) => self.create_cluster_schema(pool, mariadb).await,
            Err(e) if !e.is_temporary() => {
                let created = created
                    .err()
                    .map_or_else(String::new, |c| format!("{}; ", c.message()));
                Err(Error::config(format!(
                    "table {} cannot be created or lacks this store's columns (id, \
                     next_run_micros, next_run_time, revision, func, trigger_kind, job_state); \
                     it may be APScheduler's own table, whose pickled rows cannot be read \
                     here: choose another tablename ({created}{})",
                    self.table,
                    e.message()
                )))
            }
            Err(e) => Err(created.err().unwrap_or(e)),
        }
    }
}

impl SqlRecords {
    /// Creates the job and cluster tables of PostgreSQL in one transaction that first takes
    /// an advisory lock keyed by the table name: concurrent `CREATE TABLE IF NOT EXISTS` of
    /// one name is not safe there (both see no table, the second fails on the catalog's unique
    /// index), so schedulers starting together would fail. The lock makes them take turns;
    /// it is released at commit.
    async fn create_postgres_tables(&self, pool: &Pool) -> Result<()> {
        let lock = Step::new(
            sqlx::SqlSafeStr::into_sql_str("SELECT pg_advisory_xact_lock(hashtext($1))"),
            vec![Arg::Text(format!("jobstore-sql schema {}", self.table))],
        );
        let creates = dialect::create_schema(Dialect::Postgres, &self.table, false)
            .into_iter()
            .chain(self.cluster.create_tables(false));
        let steps = std::iter::once(lock)
            .chain(creates.map(|sql| Step::new(sql, Vec::new())))
            .collect();
        self.bounded("creating the job table", pool.transaction(steps))
            .await
            .map(drop)
    }

    /// Wakes the other nodes on PostgreSQL after a write that may make a job due earlier, at
    /// `micros` (the earliest run time written, if any). A failure is logged, not returned:
    /// the write is done, and the others still poll.
    pub(crate) async fn notify(&self, micros: Option<i64>) {
        if self.url.dialect != Dialect::Postgres {
            return;
        }
        let sent = self
            .execute(
                "sending a wake-up",
                &self.cluster.notify,
                vec![
                    Arg::Text(self.cluster.channel.clone()),
                    Arg::Text(dialect::wake_payload(micros)),
                ],
            )
            .await;
        if let Err(e) = sent {
            tracing::warn!(table = %self.table, error = %e, "could not wake the other nodes");
        }
    }

    /// Readies PostgreSQL's wake-up listener, which [`listen`](Self::listen) starts.
    fn start_listener(&self, ctx: &StoreContext) -> Result<()> {
        #[cfg(feature = "postgres")]
        if self.url.dialect == Dialect::Postgres {
            let options = crate::pool::postgres_options(&self.url)
                .map_err(|e| self.backend_error("reading the URL", e))?
                .application_name("jobstore-sql-listener");
            let (channel, ctx, url) = (
                self.cluster.channel.clone(),
                ctx.clone(),
                self.url.redacted.clone(),
            );
            let spawn = move || crate::notify::spawn_listener(options, channel, ctx, url);
            self.stop_listener();
            *self.listener_slot() = Listener::Ready(Box::new(spawn));
        }
        let _ = ctx;
        Ok(())
    }

    /// Starts the readied listener: at the end of the loop's first pass after a start (its
    /// fire commit, or its look at the next run time), not at the start, where its connection
    /// (a server process forked, authenticated) was made beside the heartbeat, the first claim
    /// and the first commit, and slowed them. Nothing is missed: the listener wakes the loop
    /// once it listens, and the loop has just looked.
    fn listen(&self) {
        let mut slot = self.listener_slot();
        if matches!(*slot, Listener::Ready(_))
            && let Listener::Ready(spawn) = std::mem::replace(&mut *slot, Listener::Off)
        {
            *slot = Listener::Running(spawn());
        }
    }

    fn stop_listener(&self) {
        let stopped = std::mem::replace(&mut *self.listener_slot(), Listener::Off);
        if let Listener::Running(task) = stopped {
            task.abort();
        }
    }

    pub(crate) fn joined(&self) -> MutexGuard<'_, Option<NodeRecord>> {
        // Only an assignment happens under the lock.
        self.joined.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn listener_slot(&self) -> MutexGuard<'_, Listener> {
        // Only an assignment happens under the lock.
        self.listener.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The fire commits of one batch: set-based where the dialect has a form for it, else one
    /// transaction of a statement per job.
    async fn commit_fires_now(&self, commits: &[RecordFireCommit]) -> Result<FireAnswers> {
        if commits.is_empty() {
            return Ok(FireAnswers::new());
        }
        // The first heartbeat since the start goes in the same transaction, first: one
        // durable commit before the first runs instead of two, and never a run recorded in
        // flight for a node no other node lists.
        let joined = self.joined().take();
        let committed = self.commit_fires_with(commits, joined.as_ref()).await;
        if committed.is_err()
            && let Some(node) = joined
        {
            self.joined().get_or_insert(node);
        }
        committed
    }

    async fn commit_fires_with(
        &self,
        commits: &[RecordFireCommit],
        joined: Option<&NodeRecord>,
    ) -> Result<FireAnswers> {
        let beat = match joined {
            Some(node) => Some(self.heartbeat_args(node)?),
            None => None,
        };
        if let Some(answers) = self.commit_fires_set_based(commits, beat.as_ref()).await? {
            return Ok(answers);
        }
        // One transaction: one durable commit for the batch. Rows are locked in id order, so
        // two schedulers committing overlapping batches wait for each other instead of
        // deadlocking.
        let mut order: Vec<&RecordFireCommit> = commits.iter().collect();
        order.sort_by(|a, b| a.id.cmp(&b.id));
        // Each commit's id, with the index of its conditional step.
        let mut ids: Vec<(Arc<str>, usize)> = Vec::with_capacity(order.len());
        // The step recording the runs of each commit with an instance limit.
        let mut limited: HashMap<Arc<str>, usize> = HashMap::new();
        let mut steps = Vec::with_capacity(order.len() + 1);
        if let Some(args) = beat {
            steps.push(Step::new(self.cluster.heartbeat.clone(), args));
        }
        for commit in order {
            let expected = Arg::Int(revision_column(commit.expected_revision));
            let step = match &commit.write {
                Some(write) => {
                    let mut args = self.row_args(write.clone())?;
                    args.remove(0);
                    args.push(Arg::Text(commit.id.to_string()));
                    args.push(expected);
                    Step::new(self.queries.update.clone(), args)
                }
                None => Step::new(
                    self.queries.delete_at_revision.clone(),
                    vec![Arg::Text(commit.id.to_string()), expected],
                ),
            };
            ids.push((commit.id.clone(), steps.len()));
            steps.push(step);
            // Runs in flight are recorded in the same transaction, right after their commit,
            // and only if it applied (and, with a limit, only below it).
            if let Some((node, runs)) = &commit.inflight
                && let Some(step) =
                    self.inflight_step(&commit.id, node, runs, commit.max_inflight)?
            {
                if commit.max_inflight.is_some() {
                    limited.insert(commit.id.clone(), steps.len());
                }
                steps.push(step);
            }
        }
        let mut answers = FireAnswers::with_capacity(ids.len());
        let pool = self.pool()?;
        let outcomes = self
            .bounded("committing due jobs", pool.transaction(steps))
            .await?;
        let changed = |step: usize| outcomes.get(step).is_some_and(|&n| n > 0);
        for (id, step) in ids {
            let answer = if !changed(step) {
                FireAnswer::Stale
            } else if limited.get(&id).is_some_and(|&runs| !changed(runs)) {
                FireAnswer::Refused
            } else {
                FireAnswer::Committed
            };
            answers.insert(id, answer);
        }
        Ok(answers)
    }
}

/// PostgreSQL's wake-up listener of a store.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
enum Listener {
    Off,
    /// Started with the store, to run from the end of its first pass (see `listen`).
    Ready(Box<dyn FnOnce() -> tokio::task::JoinHandle<()> + Send>),
    Running(tokio::task::JoinHandle<()>),
}

impl Drop for SqlRecords {
    fn drop(&mut self) {
        // A store dropped without shutdown does not leave its listener running.
        self.stop_listener();
    }
}

/// The column values of one row ([`dialect::COLUMNS`]).
#[derive(Clone)]
pub(crate) struct RowValues {
    pub(crate) id: String,
    pub(crate) micros: Option<i64>,
    pub(crate) readable: Option<String>,
    pub(crate) revision: i64,
    pub(crate) func: Option<String>,
    pub(crate) kind: Option<String>,
    pub(crate) json: String,
}

impl RowValues {
    /// The bytes of text the row binds.
    pub(crate) fn text_bytes(&self) -> usize {
        let optional = |text: &Option<String>| text.as_ref().map_or(0, String::len);
        self.id.len()
            + optional(&self.readable)
            + optional(&self.func)
            + optional(&self.kind)
            + self.json.len()
    }

    /// The values in the order of [`dialect::COLUMNS`] ([`crate::adds::COLUMN_COUNT`] of them).
    pub(crate) fn into_args(self) -> Vec<Arg> {
        vec![
            Arg::Text(self.id),
            Arg::OptInt(self.micros),
            Arg::OptText(self.readable),
            Arg::Int(self.revision),
            Arg::OptText(self.func),
            Arg::OptText(self.kind),
            Arg::Text(self.json),
        ]
    }
}

/// The signed column value of a revision. Revisions are below 2^53, so this is the value
/// itself; the cast keeps any other value as a bijection rather than failing.
#[allow(clippy::cast_possible_wrap)]
pub(crate) fn revision_column(revision: u64) -> i64 {
    revision as i64
}

#[allow(clippy::cast_sign_loss)]
fn revision_value(column: i64) -> u64 {
    column as u64
}

/// Whether retrying the call that failed with `e` may succeed: a lost or refused
/// connection, a timeout, a lock or deadlock, a server shutting down or out of connections.
fn is_temporary(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            #[cfg(feature = "mysql")]
            if let Some(my) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
                // Lock wait timeout, deadlock, too many connections, server shutdown, killed
                // connection, statement timeouts (MariaDB, MySQL), gone away, lost.
                return matches!(
                    my.number(),
                    1205 | 1213 | 1040 | 1053 | 1927 | 1969 | 3024 | 2006 | 2013
                );
            }
            let Some(code) = db.code() else {
                return false;
            };
            #[cfg(feature = "sqlite")]
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                // Busy, locked, I/O error, disk full, cannot open (extended codes keep the
                // primary one in the low byte).
                return code
                    .parse::<i32>()
                    .is_ok_and(|c| matches!(c & 0xff, 5 | 6 | 10 | 13 | 14));
            }
            // SQLSTATE classes: connection exception, insufficient resources, operator
            // intervention (shutdown, statement timeout), transaction rollback (serialization
            // failure, deadlock), lock not available.
            ["08", "53", "57", "40"]
                .iter()
                .any(|class| code.starts_with(class))
                || code == "55P03"
        }
        _ => false,
    }
}

impl RecordStore for SqlRecords {
    fn capabilities(&self) -> Capabilities {
        // PostgreSQL pushes wake-ups (LISTEN/NOTIFY); MySQL and SQLite are polled.
        Capabilities::persistent().with_cluster(self.url.dialect == Dialect::Postgres)
    }

    async fn start(&self, ctx: &StoreContext) -> Result<()> {
        if self.lock().is_some() {
            return Ok(());
        }
        drop(self.joined().take());
        let pool = self
            .bounded("connecting", Pool::connect(&self.url, self.settings))
            .await?;
        if let Err(e) = self.create_schema(&pool).await {
            pool.close().await;
            return Err(e);
        }
        tracing::debug!(url = %self.url.redacted, table = %self.table, "SQL job store started");
        if let Some(previous) = self.lock().replace(pool) {
            // Another start raced this one: keep one pool.
            tokio::spawn(async move { previous.close().await });
        }
        self.start_listener(ctx)
    }

    async fn shutdown(&self) -> Result<()> {
        self.stop_listener();
        drop(self.joined().take());
        let pool = self.lock().take();
        if let Some(pool) = pool {
            pool.close().await;
        }
        Ok(())
    }

    async fn get(&self, id: &str) -> Result<Option<StoredRecord>> {
        let rows = self
            .fetch(
                "reading a job",
                &self.queries.get,
                vec![Arg::Text(id.to_owned())],
                Shape::Record,
            )
            .await?;
        Ok(rows.into_iter().next().map(|row| self.record(row)))
    }

    async fn due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<StoredRecord>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .fetch(
                "reading the due jobs",
                &self.queries.due,
                vec![Arg::Int(to_micros(now)), Arg::Int(limit)],
                Shape::Record,
            )
            .await?;
        Ok(rows.into_iter().map(|row| self.record(row)).collect())
    }

    async fn next_run_times(&self, limit: usize) -> Result<Vec<ScheduleEntry>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .fetch(
                "reading the next run time",
                &self.queries.next_run_times,
                vec![Arg::Int(limit)],
                Shape::Entry,
            )
            .await;
        self.listen();
        Ok(rows?
            .into_iter()
            .filter_map(|row| {
                let next_run_time = from_micros(row.micros?).ok()?;
                Some(ScheduleEntry {
                    id: row.id,
                    next_run_time,
                    revision: revision_value(row.revision),
                })
            })
            .collect())
    }

    async fn all(&self) -> Result<Vec<StoredRecord>> {
        let rows = self
            .fetch(
                "reading every job",
                &self.queries.all,
                Vec::new(),
                Shape::Record,
            )
            .await?;
        Ok(rows.into_iter().map(|row| self.record(row)).collect())
    }

    async fn count(&self) -> Result<u64> {
        self.count_rows().await
    }

    async fn insert(&self, record: StoredRecord) -> Result<bool> {
        let row = [self.row_values(record)?];
        // One statement, one round trip; on PostgreSQL it also wakes the other nodes.
        Ok(if self.url.dialect == Dialect::Postgres {
            self.insert_small_postgres(&row).await?.first() == Some(&true)
        } else {
            // `None`: the id is taken (a single row is always one statement).
            self.insert_all_or_none(&row).await?.is_some()
        })
    }

    async fn insert_many(&self, records: Vec<StoredRecord>) -> Result<Vec<bool>> {
        let mut added = vec![false; records.len()];
        // An id repeated within the call is added once, at its first place.
        let mut seen = HashSet::with_capacity(records.len());
        let mut slots = Vec::with_capacity(records.len());
        let mut rows = Vec::with_capacity(records.len());
        for (slot, record) in records.into_iter().enumerate() {
            if seen.insert(record.id.clone()) {
                slots.push(slot);
                rows.push(self.row_values(record)?);
            }
        }
        if rows.is_empty() {
            return Ok(added);
        }
        // No wake-up here: `insert_absent` sends it, within its statement where it can.
        let inserted = self.insert_absent(&rows).await?;
        for (slot, inserted) in slots.into_iter().zip(inserted) {
            added[slot] = inserted;
        }
        Ok(added)
    }

    async fn upsert(&self, record: StoredRecord) -> Result<()> {
        let micros = record.next_run_time.map(to_micros);
        let args = self.row_args(record)?;
        self.execute("saving a job", &self.queries.upsert, args)
            .await?;
        self.notify(micros).await;
        Ok(())
    }

    async fn update(&self, record: StoredRecord, expected_revision: u64) -> Result<bool> {
        let micros = record.next_run_time.map(to_micros);
        let id = record.id.clone();
        let mut args = self.row_args(record)?;
        args.remove(0);
        args.push(Arg::Text(id));
        args.push(Arg::Int(revision_column(expected_revision)));
        let changed = self
            .execute("updating a job", &self.queries.update, args)
            .await?;
        if changed > 0 {
            self.notify(micros).await;
        }
        Ok(changed > 0)
    }

    async fn remove(&self, id: &str) -> Result<bool> {
        let removed = self
            .execute(
                "removing a job",
                &self.queries.delete,
                vec![Arg::Text(id.to_owned())],
            )
            .await?;
        Ok(removed > 0)
    }

    async fn remove_all(&self) -> Result<()> {
        self.execute("removing every job", &self.queries.delete_all, Vec::new())
            .await?;
        Ok(())
    }

    async fn commit_fires(&self, commits: &[RecordFireCommit]) -> Result<FireAnswers> {
        let committed = self.commit_fires_now(commits).await;
        self.listen();
        committed
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        claim: &Claim,
    ) -> Result<Vec<StoredRecord>> {
        self.claim_due_rows(now, limit, claim).await
    }

    async fn due_unclaimed(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        node: &str,
    ) -> Result<Option<Vec<StoredRecord>>> {
        self.due_unclaimed_rows(now, limit, node).await.map(Some)
    }

    async fn release_claims(&self, node: &str, ids: &[String]) -> Result<()> {
        self.release_claimed(node, ids).await
    }

    async fn join(&self, node: &NodeRecord) -> Result<()> {
        self.keep_joined(node)
    }

    async fn heartbeat(&self, node: &NodeRecord) -> Result<()> {
        self.write_heartbeat(node).await
    }

    async fn nodes(&self) -> Result<Vec<NodeRecord>> {
        self.write_joined().await?;
        self.read_nodes().await
    }

    async fn remove_node(&self, id: &str, last_seen: DateTime<Utc>) -> Result<bool> {
        self.delete_node(id, last_seen).await
    }

    async fn finish_run(&self, job_id: &str, run_time: DateTime<Utc>) -> Result<()> {
        self.delete_run(job_id, run_time).await
    }

    async fn adopt_runs(&self, from: &str, to: &str) -> Result<Vec<InflightRun>> {
        self.move_runs(from, to).await
    }

    async fn inflight_runs(&self) -> Result<Vec<InflightRun>> {
        self.write_joined().await?;
        self.read_inflight().await
    }
}

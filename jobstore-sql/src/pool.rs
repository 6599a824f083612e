//! The connection pool of one store, and the few operations the store runs on it: one
//! implementation, instantiated per dialect by [`on_pool!`] with the dialect's concrete sqlx
//! types, so every dialect runs the same code.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sqlx::SqlStr;
use sqlx::pool::PoolConnection;

#[cfg_attr(
    not(any(feature = "sqlite", feature = "postgres", feature = "mysql")),
    allow(
        unused_imports,
        reason = "built without any dialect, the pool has no variant to use it"
    )
)]
use crate::dialect::Dialect;
use crate::url::StoreUrl;

#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
mod connect;
#[cfg(feature = "postgres")]
pub(crate) use connect::postgres_options;

/// A value bound to a statement. The lists are for PostgreSQL, which binds them as arrays
/// (read with `unnest`); the other dialects have no array type and would get JSON text.
#[cfg_attr(
    not(any(feature = "sqlite", feature = "postgres", feature = "mysql")),
    allow(
        dead_code,
        reason = "built without any dialect, the pool has no variant to use it"
    )
)]
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Int(i64),
    OptInt(Option<i64>),
    Text(String),
    OptText(Option<String>),
    Ints(Vec<Option<i64>>),
    Texts(Vec<Option<String>>),
}

/// Binds the list [`Arg`]s the way the dialect can.
#[cfg_attr(
    not(any(feature = "sqlite", feature = "postgres", feature = "mysql")),
    allow(dead_code)
)]
trait BindList: Sized {
    fn bind_ints(self, values: &[Option<i64>]) -> Self;
    fn bind_texts(self, values: &[Option<String>]) -> Self;
}

#[cfg(feature = "postgres")]
impl BindList for sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments> {
    fn bind_ints(self, values: &[Option<i64>]) -> Self {
        self.bind(values)
    }

    fn bind_texts(self, values: &[Option<String>]) -> Self {
        self.bind(values)
    }
}

/// JSON text for the dialects without arrays: total, though no statement of theirs takes a list.
#[cfg(any(feature = "sqlite", feature = "mysql"))]
macro_rules! bind_lists_as_json {
    ($db:ty, $arguments:ty) => {
        impl BindList for sqlx::query::Query<'_, $db, $arguments> {
            fn bind_ints(self, values: &[Option<i64>]) -> Self {
                self.bind(serde_json::Value::from(values.to_vec()).to_string())
            }

            fn bind_texts(self, values: &[Option<String>]) -> Self {
                self.bind(serde_json::Value::from(values.to_vec()).to_string())
            }
        }
    };
}

#[cfg(feature = "sqlite")]
bind_lists_as_json!(sqlx::Sqlite, sqlx::sqlite::SqliteArguments);
#[cfg(feature = "mysql")]
bind_lists_as_json!(sqlx::MySql, sqlx::mysql::MySqlArguments);

/// The columns a statement answers, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// `id, next_run_micros, revision, job_state`.
    Record,
    /// `id, next_run_micros, revision`.
    Entry,
    /// `id, revision`.
    IdRevision,
    /// `id`.
    Id,
    /// `text, integer, text`: a node (id, last seen, info) or an in-flight run (job id, run
    /// time, node), read into `id`, `micros` and `json`.
    Triple,
    /// One integer (a count), read into `micros`.
    Count,
}

/// One answered row; the columns its [`Shape`] lacks are empty.
#[derive(Debug, Clone, Default)]
pub(crate) struct Row {
    pub(crate) id: String,
    pub(crate) micros: Option<i64>,
    pub(crate) revision: i64,
    pub(crate) json: String,
}

/// One statement of a transaction, answered by the number of rows it changed. With
/// `if_applied`, it runs only if the step before it changed a row (else it answers 0): a
/// write that belongs to a conditional one, in the same transaction.
#[cfg_attr(
    not(any(feature = "sqlite", feature = "postgres", feature = "mysql")),
    allow(
        dead_code,
        reason = "built without any dialect, the pool has no variant to use it"
    )
)]
#[derive(Debug, Clone)]
pub(crate) struct Step {
    pub(crate) sql: SqlStr,
    pub(crate) args: Vec<Arg>,
    pub(crate) if_applied: bool,
}

impl Step {
    /// A step that runs unconditionally.
    pub(crate) fn new(sql: SqlStr, args: Vec<Arg>) -> Self {
        Step {
            sql,
            args,
            if_applied: false,
        }
    }
}

/// How the pool connects and bounds its calls.
#[cfg_attr(
    not(any(feature = "sqlite", feature = "postgres", feature = "mysql")),
    allow(
        dead_code,
        reason = "built without any dialect, the pool has no variant to use it"
    )
)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct PoolSettings {
    pub(crate) max_connections: u32,
    pub(crate) acquire_timeout: Duration,
    pub(crate) statement_timeout: Duration,
}

/// A pool of one dialect. Cloning shares it.
///
/// Every call takes a connection and gives it back through [`Returns`]: sqlx gives a
/// connection back in a task of its own, after a round trip to test it, and a pool call
/// made meanwhile found no idle connection and opened a new one. Calls one after the other
/// (a start: the schema check, the heartbeat, the first claim, the first commit) each opened
/// one: on PostgreSQL a server process forked, authenticated and its catalog caches filled
/// before the first run, for every step.
#[cfg_attr(
    not(any(feature = "sqlite", feature = "postgres", feature = "mysql")),
    allow(dead_code)
)]
#[derive(Clone)]
pub(crate) struct Pool {
    kind: PoolKind,
    returns: Arc<Returns>,
}

#[derive(Clone)]
enum PoolKind {
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::SqlitePool),
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgPool),
    #[cfg(feature = "mysql")]
    MySql(sqlx::MySqlPool),
}

#[cfg_attr(
    not(any(feature = "sqlite", feature = "postgres", feature = "mysql")),
    allow(dead_code)
)]
impl Pool {
    /// A pool of `kind`; `close_cancelled` as in [`Returns`].
    fn new(kind: PoolKind, close_cancelled: bool) -> Pool {
        Pool {
            kind,
            returns: Arc::new(Returns {
                close_cancelled,
                ..Returns::default()
            }),
        }
    }
}

/// The connections of one pool on their way back to it (being tested), and the signal that
/// one arrived; and whether a connection whose call was cancelled is closed (see [`Held`]).
#[cfg_attr(
    not(any(feature = "sqlite", feature = "postgres", feature = "mysql")),
    allow(dead_code)
)]
#[derive(Default)]
struct Returns {
    pending: AtomicUsize,
    arrived: tokio::sync::Notify,
    close_cancelled: bool,
}

/// A connection one call holds, given back by [`Returns::give_back`] when the call finishes.
/// Dropped before that (the call's future dropped, as its timeout does), it is closed rather
/// than returned to the pool (unless the pool's [`Returns`] keeps it: in-memory SQLite): the
/// call may have stopped between a statement sent and its answer, and sqlx does not always
/// know what the server then did. MySQL's `BEGIN` counts the transaction only once answered:
/// the connection went back with the server's transaction open, and the next call's add
/// "succeeded" inside it, never committed.
#[cfg_attr(
    not(any(feature = "sqlite", feature = "postgres", feature = "mysql")),
    allow(dead_code)
)]
struct Held<DB: sqlx::Database> {
    conn: PoolConnection<DB>,
    given_back: bool,
    close_if_dropped: bool,
}

impl<DB: sqlx::Database> std::ops::Deref for Held<DB> {
    type Target = DB::Connection;

    fn deref(&self) -> &DB::Connection {
        &self.conn
    }
}

impl<DB: sqlx::Database> std::ops::DerefMut for Held<DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        &mut self.conn
    }
}

impl<DB: sqlx::Database> Drop for Held<DB> {
    fn drop(&mut self) {
        if !self.given_back && self.close_if_dropped {
            self.conn.close_on_drop();
        }
    }
}

/// The longest a call waits for a connection on its way back before it opens a new one: a
/// round trip to the server answers the test well within it; a server that does not is slow
/// or gone, and a new connection is what the call would have got anyway.
#[cfg_attr(
    not(any(feature = "sqlite", feature = "postgres", feature = "mysql")),
    allow(dead_code)
)]
const RETURN_WAIT: Duration = Duration::from_millis(20);

#[cfg_attr(
    not(any(feature = "sqlite", feature = "postgres", feature = "mysql")),
    allow(dead_code)
)]
impl Returns {
    /// A connection of `pool`: an idle one, else one on its way back once it arrives, else a
    /// new one (up to the pool's limit, as sqlx's acquire decides).
    async fn acquire<DB: sqlx::Database>(
        &self,
        pool: &sqlx::Pool<DB>,
    ) -> Result<Held<DB>, sqlx::Error> {
        if pool.num_idle() == 0 && self.pending.load(Ordering::Acquire) > 0 {
            let arrived = self.arrived.notified();
            tokio::pin!(arrived);
            // Registered before looking again: an arrival in between is not missed.
            arrived.as_mut().enable();
            if pool.num_idle() == 0 && self.pending.load(Ordering::Acquire) > 0 {
                let _ = tokio::time::timeout(RETURN_WAIT, arrived).await;
            }
        }
        Ok(Held {
            conn: pool.acquire().await?,
            given_back: false,
            close_if_dropped: self.close_cancelled,
        })
    }

    /// Gives `held` back to its pool in a task, as dropping it does, counting it meanwhile.
    fn give_back<DB: sqlx::Database>(self: &Arc<Self>, mut held: Held<DB>) {
        held.given_back = true;
        // `return_to_pool` is sqlx's drop handler made a future (public, if undocumented):
        // the same test of the connection, the same rollback of what a failed call left.
        let back = held.conn.return_to_pool();
        drop(held);
        self.pending.fetch_add(1, Ordering::AcqRel);
        let returns = self.clone();
        tokio::spawn(async move {
            back.await;
            returns.pending.fetch_sub(1, Ordering::AcqRel);
            returns.arrived.notify_waiters();
        });
    }
}

/// Evaluates `$body` with `$p` bound to the concrete pool, once per enabled dialect.
macro_rules! on_pool {
    ($pool:expr, $p:ident => $body:expr) => {
        match $pool.kind {
            #[cfg(feature = "sqlite")]
            PoolKind::Sqlite(ref $p) => $body,
            #[cfg(feature = "postgres")]
            PoolKind::Postgres(ref $p) => $body,
            #[cfg(feature = "mysql")]
            PoolKind::MySql(ref $p) => $body,
        }
    };
}

/// `sqlx::query(sql)` with the `args` (a `&[Arg]`) bound in order. sqlx encodes each value
/// as it is bound, so they are bound by reference: a transaction run again, or a batch of
/// thousands of rows, is not copied for it.
#[cfg_attr(
    not(any(feature = "sqlite", feature = "postgres", feature = "mysql")),
    allow(unused_macros)
)]
macro_rules! bound {
    ($sql:expr, $args:expr) => {{
        let mut query = sqlx::query($sql);
        for arg in $args {
            query = match arg {
                Arg::Int(v) => query.bind(*v),
                Arg::OptInt(v) => query.bind(*v),
                Arg::Text(v) => query.bind(v.as_str()),
                Arg::OptText(v) => query.bind(v.as_deref()),
                Arg::Ints(v) => BindList::bind_ints(query, v),
                Arg::Texts(v) => BindList::bind_texts(query, v),
            };
        }
        query
    }};
}

/// Reads a sqlx row of `$shape` into a [`Row`].
#[cfg_attr(
    not(any(feature = "sqlite", feature = "postgres", feature = "mysql")),
    allow(unused_macros)
)]
macro_rules! read_row {
    ($row:expr, $shape:expr) => {{
        use sqlx::Row as _;
        let r = $row;
        match $shape {
            Shape::Record => Row {
                id: r.try_get(0)?,
                micros: r.try_get(1)?,
                revision: r.try_get(2)?,
                json: r.try_get(3)?,
            },
            Shape::Entry => Row {
                id: r.try_get(0)?,
                micros: r.try_get(1)?,
                revision: r.try_get(2)?,
                json: String::new(),
            },
            Shape::IdRevision => Row {
                id: r.try_get(0)?,
                revision: r.try_get(1)?,
                ..Row::default()
            },
            Shape::Id => Row {
                id: r.try_get(0)?,
                ..Row::default()
            },
            Shape::Triple => Row {
                id: r.try_get(0)?,
                micros: r.try_get(1)?,
                json: r.try_get(2)?,
                ..Row::default()
            },
            Shape::Count => Row {
                micros: Some(r.try_get(0)?),
                ..Row::default()
            },
        }
    }};
}

/// Reads the sqlx rows `$rows` of `$shape` into [`Row`]s.
#[cfg_attr(
    not(any(feature = "sqlite", feature = "postgres", feature = "mysql")),
    allow(unused_macros)
)]
macro_rules! read_rows {
    ($rows:expr, $shape:expr) => {{
        let rows = $rows;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            out.push(read_row!(row, $shape));
        }
        out
    }};
}

#[cfg_attr(
    not(any(feature = "sqlite", feature = "postgres", feature = "mysql")),
    allow(
        unused_variables,
        reason = "built without any dialect, the pool has no variant to use it"
    )
)]
impl Pool {
    /// Connects to `url` (creating a missing SQLite file), one connection at least, so that a
    /// server that cannot be reached fails here.
    pub(crate) async fn connect(
        url: &StoreUrl,
        settings: PoolSettings,
    ) -> Result<Pool, sqlx::Error> {
        match url.dialect {
            #[cfg(feature = "sqlite")]
            Dialect::Sqlite => connect::sqlite(url, settings).await,
            #[cfg(feature = "postgres")]
            Dialect::Postgres => connect::postgres(url, settings).await,
            #[cfg(feature = "mysql")]
            Dialect::MySql => connect::mysql(url, settings).await,
            #[allow(unreachable_patterns)]
            dialect => Err(sqlx::Error::Configuration(
                format!(
                    "{} support is not compiled in: enable the `{}` feature of jobstore-sql",
                    dialect.name(),
                    dialect.feature()
                )
                .into(),
            )),
        }
    }

    pub(crate) async fn close(&self) {
        on_pool!(*self, p => p.close().await)
    }

    /// Runs `sql`; answers the number of rows it changed (for MySQL: the rows it matched).
    pub(crate) async fn execute(&self, sql: SqlStr, args: Vec<Arg>) -> Result<u64, sqlx::Error> {
        on_pool!(*self, p => {
            let mut conn = self.returns.acquire(p).await?;
            let done = bound!(sql, &args).execute(&mut *conn).await;
            self.returns.give_back(conn);
            Ok(done?.rows_affected())
        })
    }

    /// Runs `sql` and reads its rows as `shape`.
    pub(crate) async fn fetch(
        &self,
        sql: SqlStr,
        args: Vec<Arg>,
        shape: Shape,
    ) -> Result<Vec<Row>, sqlx::Error> {
        self.fetch_ref(&sql, &args, shape).await
    }

    async fn fetch_ref(
        &self,
        sql: &SqlStr,
        args: &[Arg],
        shape: Shape,
    ) -> Result<Vec<Row>, sqlx::Error> {
        on_pool!(*self, p => {
            let mut conn = self.returns.acquire(p).await?;
            let rows = bound!(sql.clone(), args).fetch_all(&mut *conn).await;
            self.returns.give_back(conn);
            Ok(read_rows!(rows?, shape))
        })
    }

    /// Runs `sql`, which binds nothing, as a plain query and reads its rows as `shape`: one
    /// round trip where [`fetch`](Self::fetch) takes two on the servers (a statement with
    /// arguments is prepared first, and its description waited for). For the schema check at
    /// start, on the way to the first runs.
    pub(crate) async fn fetch_unprepared(
        &self,
        sql: SqlStr,
        shape: Shape,
    ) -> Result<Vec<Row>, sqlx::Error> {
        on_pool!(*self, p => {
            let mut conn = self.returns.acquire(p).await?;
            let rows = sqlx::raw_sql(sql).fetch_all(&mut *conn).await;
            self.returns.give_back(conn);
            Ok(read_rows!(rows?, shape))
        })
    }

    /// [`fetch`](Self::fetch), run again while it fails as a deadlock victim (see
    /// [`retry`]): for a single statement that writes several rows.
    pub(crate) async fn fetch_retrying(
        &self,
        sql: SqlStr,
        args: Vec<Arg>,
        shape: Shape,
    ) -> Result<Vec<Row>, sqlx::Error> {
        retry(|| self.fetch_ref(&sql, &args, shape), is_deadlock).await
    }

    /// [`execute`](Self::execute), run again while it fails as a deadlock victim (see
    /// [`retry`]): for a single statement that writes several rows.
    pub(crate) async fn execute_retrying(
        &self,
        sql: SqlStr,
        args: Vec<Arg>,
    ) -> Result<u64, sqlx::Error> {
        retry(|| self.execute(sql.clone(), args.clone()), is_deadlock).await
    }

    /// Runs `steps` in one transaction (one durable commit), answering the rows each changed,
    /// in order. A transaction the server aborted as a deadlock victim is run again at once
    /// (see [`retry`]).
    pub(crate) async fn transaction(&self, steps: Vec<Step>) -> Result<Vec<u64>, sqlx::Error> {
        retry(|| self.transaction_once(&steps), is_deadlock).await
    }

    async fn transaction_once(&self, steps: &[Step]) -> Result<Vec<u64>, sqlx::Error> {
        on_pool!(*self, p => {
            let mut conn = self.returns.acquire(p).await?;
            let done = async {
                let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                let mut changed: Vec<u64> = Vec::with_capacity(steps.len());
                for step in steps {
                    if step.if_applied && changed.last().is_none_or(|&n| n == 0) {
                        changed.push(0);
                        continue;
                    }
                    let query = bound!(step.sql.clone(), &step.args);
                    changed.push(query.execute(&mut *tx).await?.rows_affected());
                }
                tx.commit().await?;
                Ok(changed)
            }
            .await;
            self.returns.give_back(conn);
            done
        })
    }

    /// In one transaction, reads the rows of `selects` (all of `shape`; locking reads where
    /// the caller needs the rows held), then runs the steps `then` makes of them, in order;
    /// answers the rows read. For the dialects whose `UPDATE` cannot take its rows from a
    /// locking subquery of the same table, nor say which rows it changed (MySQL), and for adds
    /// that insert only the ids the read did not find.
    ///
    /// On MySQL the transaction reads at READ COMMITTED: the locking read then locks the rows
    /// it returns only, not the gaps between index entries it scans, which is what made two
    /// nodes claiming at once deadlock. On SQLite it starts as the writer (`BEGIN IMMEDIATE`):
    /// a read transaction that becomes a writer after another connection wrote fails at once.
    /// Run again (see [`retry`]): a deadlock victim, and a write that met a unique
    /// violation, which only a row added by another transaction after the read can cause.
    pub(crate) async fn read_then_write(
        &self,
        selects: Vec<Step>,
        shape: Shape,
        then: impl Fn(&[Row]) -> Vec<Step> + Send + Sync,
    ) -> Result<Vec<Row>, sqlx::Error> {
        retry(
            || self.read_then_write_once(&selects, shape, &then),
            |e| is_deadlock(e) || is_unique_violation(e),
        )
        .await
    }

    async fn read_then_write_once(
        &self,
        selects: &[Step],
        shape: Shape,
        then: &(impl Fn(&[Row]) -> Vec<Step> + Send + Sync),
    ) -> Result<Vec<Row>, sqlx::Error> {
        let isolation = self.read_committed();
        let begin = self.begin_as_writer();
        on_pool!(*self, p => {
            let mut conn = self.returns.acquire(p).await?;
            let done = async {
                if let Some(set) = isolation {
                    // Applies to the next transaction of this connection only. A plain query:
                    // one round trip, where a statement (prepared, then executed) took two.
                    // Not sent with the `BEGIN` as one query of two statements, which a
                    // cancelled call can leave half read, its transaction open.
                    sqlx::raw_sql(set).execute(&mut *conn).await?;
                }
                let mut tx = match begin {
                    Some(begin) => sqlx::Connection::begin_with(&mut *conn, begin).await?,
                    None => sqlx::Connection::begin(&mut *conn).await?,
                };
                let mut out = Vec::new();
                for select in selects {
                    let rows =
                        bound!(select.sql.clone(), &select.args).fetch_all(&mut *tx).await?;
                    out.reserve(rows.len());
                    for row in &rows {
                        out.push(read_row!(row, shape));
                    }
                }
                for step in then(&out) {
                    bound!(step.sql.clone(), &step.args).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(out)
            }
            .await;
            self.returns.give_back(conn);
            done
        })
    }

    /// The statement that begins a transaction holding the write lock from its start, on the
    /// dialect whose transactions otherwise start as readers (SQLite).
    fn begin_as_writer(&self) -> Option<&'static str> {
        #[cfg(feature = "sqlite")]
        if matches!(self.kind, PoolKind::Sqlite(_)) {
            return Some("BEGIN IMMEDIATE");
        }
        None
    }

    /// The statement that makes the next transaction READ COMMITTED, on the dialects that
    /// default to a stricter level with gap locks (MySQL's REPEATABLE READ).
    fn read_committed(&self) -> Option<&'static str> {
        #[cfg(feature = "mysql")]
        if matches!(self.kind, PoolKind::MySql(_)) {
            return Some("SET TRANSACTION ISOLATION LEVEL READ COMMITTED");
        }
        None
    }
}

/// How many times a transaction aborted by a deadlock or a lock wait timeout is run again.
const DEADLOCK_RETRIES: u32 = 5;

/// Whether the server rolled back the transaction that failed with `e` to break a deadlock
/// (or a lock wait timed out), so that running it again may succeed.
fn is_deadlock(e: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = e else {
        return false;
    };
    #[cfg(feature = "mysql")]
    if let Some(my) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        // ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT.
        return matches!(my.number(), 1213 | 1205);
    }
    // PostgreSQL's deadlock_detected; SQLite's SQLITE_BUSY family (any extended code whose
    // primary code is 5), which a busy timeout does not always absorb: a WAL read transaction
    // that must become a writer after another process wrote, or a journal-mode switch while
    // other processes open the same new file, fails at once and must be run again.
    db.code()
        .is_some_and(|code| code == "40P01" || is_sqlite_busy(&code))
}

/// Whether `code` is one of SQLite's SQLITE_BUSY result codes (5, 261, 517, 773).
fn is_sqlite_busy(code: &str) -> bool {
    cfg!(feature = "sqlite") && code.parse::<u32>().is_ok_and(|c| c & 0xff == 5)
}

/// Runs `attempt`, again up to [`DEADLOCK_RETRIES`] times while it fails with an error
/// `again` accepts (a deadlock victim, see [`is_deadlock`]), after a short jittered pause (so
/// the two losers do not meet again in step). The caller's retry interval is seconds, past the
/// grace time of a due run: retrying here keeps the run.
async fn retry<T, F, Fut>(mut attempt: F, again: fn(&sqlx::Error) -> bool) -> Result<T, sqlx::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, sqlx::Error>>,
{
    let mut tries = 0;
    loop {
        match attempt().await {
            Err(e) if again(&e) && tries < DEADLOCK_RETRIES => {
                tries += 1;
                tracing::debug!(error = %e, tries, "retrying a transaction after a conflict");
                tokio::time::sleep(jitter(tries)).await;
            }
            outcome => return outcome,
        }
    }
}

/// Whether `e` is a unique violation (a duplicate primary key).
fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// A pause of 1 to 10 ms times `tries`, random.
fn jitter(tries: u32) -> Duration {
    use std::hash::{BuildHasher, Hasher};

    // RandomState is seeded randomly: a random number without a dependency.
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    Duration::from_micros((1_000 + random % 9_000) * u64::from(tries))
}

/// A one-connection pool on a server of the tests: the URL in the variable `var`, else
/// `default` (the local server).
#[cfg(all(test, any(feature = "postgres", feature = "mysql")))]
pub(crate) async fn test_pool(var: &str, default: &str) -> (StoreUrl, Pool) {
    let url = std::env::var(var)
        .ok()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| default.to_owned());
    let url = StoreUrl::parse(&url).expect("a server URL");
    let settings = PoolSettings {
        max_connections: 1,
        acquire_timeout: Duration::from_secs(5),
        statement_timeout: Duration::from_secs(10),
    };
    match Pool::connect(&url, settings).await {
        Ok(pool) => (url, pool),
        Err(e) => panic!("the server of {var} (else {default}): {e}"),
    }
}

#[cfg(all(test, feature = "mysql"))]
mod tests {
    use super::*;

    /// MySQL's read-then-write transactions run at READ COMMITTED (set by a plain query
    /// before their `BEGIN`). Needs the server of the MySQL tests (`SCHEDULER_TEST_MYSQL_URL`,
    /// else the local default).
    #[tokio::test]
    async fn mysql_read_then_write_runs_at_read_committed() {
        let (_, pool) = test_pool(
            "SCHEDULER_TEST_MYSQL_URL",
            "mysql://root@127.0.0.1:3306/test",
        )
        .await;
        let sql = |text: &'static str| Step::new(sqlx::SqlSafeStr::into_sql_str(text), Vec::new());
        // InnoDB lists a transaction once it has read an InnoDB table (on a new connection,
        // with the level its first transaction began with).
        let selects = vec![
            sql("SELECT CAST(COUNT(*) AS CHAR) FROM mysql.innodb_table_stats"),
            sql(
                "SELECT trx_isolation_level FROM information_schema.innodb_trx WHERE \
                 trx_mysql_thread_id = CONNECTION_ID()",
            ),
        ];
        let rows = pool
            .read_then_write(selects, Shape::Id, |_| Vec::new())
            .await
            .expect("the transaction runs");
        pool.close().await;
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert_eq!(rows[1].id, "READ COMMITTED");
    }
}

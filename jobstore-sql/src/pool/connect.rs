//! Opening a pool per dialect: the driver's options, the session settings, and how a
//! connection is tested before use.

use std::time::Duration;

use super::{Pool, PoolKind, PoolSettings};
use crate::url::StoreUrl;

/// A connection idle this long is tested (a round trip) before a call uses it; one idle less
/// is not: every connection is tested as it comes back to the pool (see [`Returns`](super::Returns)), and
/// testing it again a moment later cost every call a round trip before its statement.
const IDLE_TEST: Duration = Duration::from_secs(1);

/// `options` testing a connection before use only when it was idle for [`IDLE_TEST`] or more
/// (sqlx tests it always by default).
fn tested_when_idle<DB: sqlx::Database>(
    options: sqlx::pool::PoolOptions<DB>,
) -> sqlx::pool::PoolOptions<DB> {
    options
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= IDLE_TEST {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
}

/// How many times opening a SQLite file that another process holds busy is tried again
/// (pauses of 10 to 100 ms times the attempt: a few seconds in all).
#[cfg(feature = "sqlite")]
const CONNECT_BUSY_RETRIES: u32 = 12;

#[cfg(feature = "sqlite")]
pub(super) async fn sqlite(url: &StoreUrl, settings: PoolSettings) -> Result<Pool, sqlx::Error> {
    use std::str::FromStr;

    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};

    let in_memory = url.secret.contains(":memory:") || url.secret.contains("mode=memory");
    let mut options = SqliteConnectOptions::from_str(&url.secret)?
        .create_if_missing(true)
        // Several processes may share the file: a writer waits for another's lock (up to
        // the statement timeout) instead of failing at once.
        .busy_timeout(settings.statement_timeout);
    if !in_memory {
        // Readers do not block the writer nor the writer them.
        options = options.journal_mode(SqliteJournalMode::Wal);
    }
    let pool = if in_memory {
        // Every connection to `:memory:` would see a database of its own, and shared-cache
        // connections fail with SQLITE_LOCKED instead of waiting: one connection, kept open
        // for the store's life (closing it would drop the database).
        SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
    } else {
        SqlitePoolOptions::new().max_connections(settings.max_connections)
    };
    let pool = tested_when_idle(pool.acquire_timeout(settings.acquire_timeout));
    // Processes that open a new file together race to create it and switch it to WAL; the
    // losers get SQLITE_BUSY at once, whatever the busy timeout: connect again.
    let mut tries = 0;
    let pool = loop {
        match pool.clone().connect_with(options.clone()).await {
            Err(e) if super::is_deadlock(&e) && tries < CONNECT_BUSY_RETRIES => {
                tries += 1;
                tracing::debug!(error = %e, tries, "connecting to SQLite again: the file is busy");
                tokio::time::sleep(super::jitter(tries) * 10).await;
            }
            outcome => break outcome?,
        }
    };
    // An in-memory database lives only as long as its one connection: a cancelled call
    // keeps it. sqlx's SQLite worker runs each command whole, its `BEGIN` counted with it,
    // so a cancelled call leaves no transaction sqlx does not know of.
    Ok(Pool::new(PoolKind::Sqlite(pool), !in_memory))
}

#[cfg(feature = "postgres")]
pub(super) async fn postgres(url: &StoreUrl, settings: PoolSettings) -> Result<Pool, sqlx::Error> {
    use std::str::FromStr;

    use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

    let timeout_ms = settings.statement_timeout.as_millis().to_string();
    let options = PgConnectOptions::from_str(&url.secret)?
        .options([("statement_timeout", timeout_ms.as_str())])
        .application_name("jobstore-sql");
    let pool = tested_when_idle(PgPoolOptions::new())
        .max_connections(settings.max_connections)
        .acquire_timeout(settings.acquire_timeout)
        .connect_with(options)
        .await?;
    Ok(Pool::new(PoolKind::Postgres(pool), true))
}

#[cfg(feature = "mysql")]
pub(super) async fn mysql(url: &StoreUrl, settings: PoolSettings) -> Result<Pool, sqlx::Error> {
    use std::str::FromStr;

    use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};

    let options = MySqlConnectOptions::from_str(&url.secret)?;
    let lock_wait = settings.statement_timeout.as_secs().max(1);
    let pool = tested_when_idle(MySqlPoolOptions::new())
        .max_connections(settings.max_connections)
        .acquire_timeout(settings.acquire_timeout)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                // A row lock held by a stuck client fails the statement instead of stalling it
                // (MySQL and MariaDB have no common statement timeout for writes).
                let set = format!("SET SESSION innodb_lock_wait_timeout = {lock_wait}");
                sqlx::Executor::execute(conn, sqlx::AssertSqlSafe(set)).await?;
                Ok(())
            })
        })
        .connect_with(options)
        .await?;
    Ok(Pool::new(PoolKind::MySql(pool), true))
}

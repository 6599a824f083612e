//! Opening a pool per dialect: the driver's options, the session settings, and how a
//! connection is tested before use.

use std::time::Duration;

use super::{Pool, PoolKind, PoolSettings};
use crate::url::StoreUrl;

/// A connection idle this long is tested (a round trip) before a call uses it; one idle less
/// is not: every connection is tested as it comes back to the pool (see
/// [`Returns`](super::Returns)), and testing it again a moment later cost every call a round
/// trip before its statement.
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

/// Whether `host` is this machine over TCP: `localhost` or a loopback address.
///
/// There the opportunistic TLS of the drivers' default ssl mode (`prefer`, `PREFERRED`)
/// protects nothing (the traffic never leaves the machine) and cost every new connection
/// about 90 ms: sqlx 0.9.0 does not set `TCP_NODELAY`, and two of the TLS handshake's
/// back-to-back small writes each waited out the server's delayed ACK (sqlx issue #4335,
/// fixed upstream after 0.9.0). So on such a host the stores connect without TLS unless the
/// URL asks for more than `prefer` (`require`, `verify-ca`, `verify-full`; MySQL's
/// `REQUIRED` and up).
#[cfg(any(feature = "postgres", feature = "mysql"))]
fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The driver's options for `url`, without TLS on a loopback host where the URL leaves TLS
/// optional (see [`is_loopback`]).
#[cfg(feature = "postgres")]
pub(crate) fn postgres_options(
    url: &StoreUrl,
) -> Result<sqlx::postgres::PgConnectOptions, sqlx::Error> {
    use std::str::FromStr;

    use sqlx::postgres::{PgConnectOptions, PgSslMode};

    let options = PgConnectOptions::from_str(&url.secret)?;
    Ok(
        if matches!(options.get_ssl_mode(), PgSslMode::Prefer) && is_loopback(options.get_host()) {
            options.ssl_mode(PgSslMode::Disable)
        } else {
            options
        },
    )
}

/// The driver's options for `url`, without TLS on a loopback host where the URL leaves TLS
/// optional (see [`is_loopback`]).
#[cfg(feature = "mysql")]
fn mysql_options(url: &StoreUrl) -> Result<sqlx::mysql::MySqlConnectOptions, sqlx::Error> {
    use std::str::FromStr;

    use sqlx::mysql::{MySqlConnectOptions, MySqlSslMode};

    let options = MySqlConnectOptions::from_str(&url.secret)?;
    Ok(
        if matches!(options.get_ssl_mode(), MySqlSslMode::Preferred)
            && is_loopback(options.get_host())
        {
            options.ssl_mode(MySqlSslMode::Disabled)
        } else {
            options
        },
    )
}

#[cfg(feature = "postgres")]
pub(super) async fn postgres(url: &StoreUrl, settings: PoolSettings) -> Result<Pool, sqlx::Error> {
    use sqlx::postgres::PgPoolOptions;

    let timeout_ms = settings.statement_timeout.as_millis().to_string();
    let options = postgres_options(url)?
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
    use sqlx::mysql::MySqlPoolOptions;

    let options = mysql_options(url)?;
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

#[cfg(all(test, any(feature = "postgres", feature = "mysql")))]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_told_from_others() {
        for host in [
            "localhost",
            "LOCALHOST",
            "127.0.0.1",
            "127.8.9.1",
            "::1",
            "[::1]",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "db.example.com",
            "10.0.0.1",
            "::2",
            "localhost.example.com",
            "",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn postgres_drops_only_optional_tls_and_only_on_loopback() {
        use sqlx::postgres::PgSslMode;

        let mode = |url: &str| {
            let options = postgres_options(&StoreUrl::parse(url).unwrap()).unwrap();
            format!("{:?}", options.get_ssl_mode())
        };
        assert_eq!(mode("postgres://u@127.0.0.1:5432/db"), "Disable");
        assert_eq!(mode("postgres://u@localhost/db?sslmode=prefer"), "Disable");
        assert_eq!(mode("postgres://u@127.0.0.1/db?sslmode=require"), "Require");
        assert_eq!(
            mode("postgres://u@[::1]/db?sslmode=verify-full"),
            "VerifyFull"
        );
        assert_eq!(mode("postgres://u@db.example.com/db"), "Prefer");
        assert!(matches!(PgSslMode::default(), PgSslMode::Prefer));
    }

    #[cfg(feature = "mysql")]
    #[test]
    fn mysql_drops_only_optional_tls_and_only_on_loopback() {
        let mode = |url: &str| {
            let options = mysql_options(&StoreUrl::parse(url).unwrap()).unwrap();
            format!("{:?}", options.get_ssl_mode())
        };
        assert_eq!(mode("mysql://root@127.0.0.1:3306/test"), "Disabled");
        assert_eq!(
            mode("mysql://root@127.0.0.1/test?ssl-mode=required"),
            "Required"
        );
        assert_eq!(mode("mysql://root@db.example.com/test"), "Preferred");
    }

    /// The store's own connections to the local server (the tests' default URL, on
    /// 127.0.0.1) are plain TCP, whatever the server offers.
    #[cfg(feature = "postgres")]
    #[tokio::test]
    async fn a_loopback_postgres_connection_is_made_without_tls() {
        use crate::pool::{Shape, test_pool};

        let (url, pool) = test_pool(
            "SCHEDULER_TEST_POSTGRES_URL",
            "postgres://postgres@127.0.0.1:5432/test",
        )
        .await;
        let host = postgres_options(&url).unwrap().get_host().to_owned();
        let rows = pool
            .fetch(
                sqlx::SqlSafeStr::into_sql_str(
                    "SELECT CAST(ssl AS TEXT) FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                ),
                Vec::new(),
                Shape::Id,
            )
            .await
            .expect("pg_stat_ssl is readable");
        pool.close().await;
        if is_loopback(&host) {
            assert_eq!(rows.len(), 1, "{rows:?}");
            assert_eq!(rows[0].id, "false", "TLS on a loopback connection");
        }
    }
}

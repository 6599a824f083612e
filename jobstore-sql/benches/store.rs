//! The SQL job store's figures on SQLite, PostgreSQL and MySQL/MariaDB (scenarios 4 and 5 of
//! `cargo xtask bench`): adds one at a time, with 8 concurrent callers and batched; the due
//! fetch and commit rate; a restart with stored jobs all due; jobs due at once with the
//! default misfire grace time. The scenarios are `xtask/bench-support/store_scenarios.rs`.
//!
//! ```sh
//! cargo bench -p jobstore-sql --features sqlite,postgres,mysql --bench store [-- --quick]
//! ```
//!
//! `STORE_BENCH_SCENARIOS=restart STORE_BENCH_BACKENDS=postgres` runs one scenario on one
//! backend (lists are comma-separated; unset is all).
//!
//! The servers are `SCHEDULER_TEST_POSTGRES_URL` and `SCHEDULER_TEST_MYSQL_URL` (else the local
//! defaults); SQLite is a file in the temporary directory. Each dialect gets a table of its
//! own (`bench_<pid>_<time>`), dropped at the end with its `_nodes` and `_runs` tables; the
//! servers' durability settings are left as they are and printed. Figures are printed, never
//! asserted.

#[path = "../../xtask/bench-support/store_scenarios.rs"]
mod scenarios;

use std::path::PathBuf;

use jobstore_sql::SqlJobStore;
use scenarios::{Backend, Sizes};
use scheduler_core::{Clock, SystemClock};
use sqlx::{AssertSqlSafe, Connection as _};

fn env_or(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_owned())
}

fn backend(
    key: &'static str,
    label: &'static str,
    url: String,
    table: &str,
    server: String,
) -> Backend<SqlJobStore> {
    let table = table.to_owned();
    Backend {
        key,
        label,
        server,
        lead_per_job: scenarios::LEAD_PER_JOB,
        open: Box::new(move || {
            jobstore_sql::builder(&url)
                .tablename(&table)
                .max_connections(10)
                .call_timeout(std::time::Duration::from_secs(120))
                .build()
                .expect("a valid store")
        }),
    }
}

/// One setting read from the server as text (`-` when it cannot be read), and a table
/// dropped, on a connection of type `$conn`.
macro_rules! server_sql {
    (setting $conn:ty, $url:expr, $sql:expr) => {{
        use sqlx::Row as _;
        match <$conn>::connect($url).await {
            Ok(mut connection) => sqlx::query(AssertSqlSafe($sql.to_owned()))
                .fetch_one(&mut connection)
                .await
                .ok()
                .and_then(|row| row.try_get::<String, _>(0).ok())
                .unwrap_or_else(|| "-".to_owned()),
            Err(_) => "-".to_owned(),
        }
    }};
    // The jobs table and the cluster tables the scheduler's node made beside it (their names
    // are `<table>_nodes` and `<table>_runs`: the bench's table name is short enough to need
    // no hash).
    (drop $conn:ty, $url:expr, $table:expr) => {{
        let mut connection = <$conn>::connect($url).await.expect("a connection");
        for table in [
            $table.to_owned(),
            format!("{}_nodes", $table),
            format!("{}_runs", $table),
        ] {
            sqlx::query(AssertSqlSafe(format!("DROP TABLE IF EXISTS {table}")))
                .execute(&mut connection)
                .await
                .expect("the bench tables dropped");
        }
    }};
}

fn main() {
    let sizes = Sizes::from_args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let table = format!(
        "bench_{}_{}",
        std::process::id(),
        SystemClock.now().timestamp_micros()
    );
    runtime.block_on(async {
        let file: PathBuf = std::env::temp_dir().join(format!("jobstore-sql-{table}.sqlite"));
        let sqlite = backend(
            "sqlite",
            "SQLite",
            format!("sqlite://{}", file.display()),
            &table,
            "SQLite file, WAL, synchronous FULL".into(),
        );
        scenarios::run(
            &sqlite,
            sizes,
            Box::pin(async {
                for suffix in ["", "-wal", "-shm"] {
                    let mut path = file.clone().into_os_string();
                    path.push(suffix);
                    let _ = std::fs::remove_file(path);
                }
            }),
        )
        .await;

        let url = env_or(
            "SCHEDULER_TEST_POSTGRES_URL",
            "postgres://postgres@127.0.0.1:5432/test",
        );
        let sync = server_sql!(setting sqlx::PgConnection, &url, "SHOW synchronous_commit");
        let fsync = server_sql!(setting sqlx::PgConnection, &url, "SHOW fsync");
        let postgres = backend(
            "postgres",
            "PostgreSQL",
            url.clone(),
            &table,
            format!("PostgreSQL, synchronous_commit={sync}, fsync={fsync}"),
        );
        scenarios::run(
            &postgres,
            sizes,
            Box::pin(async { server_sql!(drop sqlx::PgConnection, &url, &table) }),
        )
        .await;

        let url = env_or(
            "SCHEDULER_TEST_MYSQL_URL",
            "mysql://root@127.0.0.1:3306/test",
        );
        let flush = server_sql!(
            setting sqlx::MySqlConnection,
            &url,
            "SELECT CAST(@@innodb_flush_log_at_trx_commit AS CHAR)"
        );
        let version = server_sql!(setting sqlx::MySqlConnection, &url, "SELECT VERSION()");
        let mysql = backend(
            "mysql",
            "MySQL/MariaDB",
            url.clone(),
            &table,
            format!("MariaDB/MySQL {version}, innodb_flush_log_at_trx_commit={flush}"),
        );
        scenarios::run(
            &mysql,
            sizes,
            Box::pin(async { server_sql!(drop sqlx::MySqlConnection, &url, &table) }),
        )
        .await;
    });
}

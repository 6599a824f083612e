//! What the `sqlite`, `postgres` and `mysql` test binaries share: where each database is,
//! raw SQL beside the store, and the store's own tests, written once and instantiated per
//! dialect by [`sql_store_tests!`].

pub(crate) mod cluster;
pub(crate) mod outage;
pub(crate) mod scenarios;
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) mod servers;

use std::path::PathBuf;

use anyhow::Context as _;
use jobstore_sql::SqlJobStore;
use scheduler_core::testkit::Namespace;
use sqlx::{AssertSqlSafe, Connection as _};

/// One database the tests use, and how to reach it without the store.
#[allow(
    dead_code,
    reason = "shared by the three test binaries; each uses its own dialect's part"
)]
#[derive(Debug, Clone)]
pub(crate) enum Db {
    /// A SQLite file (created by the store).
    Sqlite(PathBuf),
    /// A PostgreSQL server.
    Postgres(String),
    /// A MySQL or MariaDB server.
    MySql(String),
}

/// A value in a raw row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Int(Option<i64>),
    Text(Option<String>),
}

impl Db {
    /// The shared PostgreSQL server of the tests: `SCHEDULER_TEST_POSTGRES_URL`, else the local
    /// default.
    #[allow(
        dead_code,
        reason = "shared by the three test binaries; each uses its own dialect's part"
    )]
    pub(crate) fn postgres() -> Db {
        Db::Postgres(env_or(
            "SCHEDULER_TEST_POSTGRES_URL",
            "postgres://postgres@127.0.0.1:5432/test",
        ))
    }

    /// The shared MySQL/MariaDB server: `SCHEDULER_TEST_MYSQL_URL`, else the local default.
    #[allow(
        dead_code,
        reason = "shared by the three test binaries; each uses its own dialect's part"
    )]
    pub(crate) fn mysql() -> Db {
        Db::MySql(env_or(
            "SCHEDULER_TEST_MYSQL_URL",
            "mysql://root@127.0.0.1:3306/test",
        ))
    }

    /// A SQLite file named after `name` in the temporary directory (not created yet).
    #[allow(
        dead_code,
        reason = "shared by the three test binaries; each uses its own dialect's part"
    )]
    pub(crate) fn sqlite(name: &str) -> Db {
        Db::Sqlite(std::env::temp_dir().join(format!("jobstore-sql-{name}.sqlite")))
    }

    /// The URL a store is built from.
    pub(crate) fn url(&self) -> String {
        match self {
            Db::Sqlite(path) => format!("sqlite://{}", path.display()),
            Db::Postgres(url) | Db::MySql(url) => url.clone(),
        }
    }

    /// The env var that names the server, for failure messages.
    pub(crate) fn env_var(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "(none: SQLite uses temporary files)",
            Db::Postgres(_) => "SCHEDULER_TEST_POSTGRES_URL",
            Db::MySql(_) => "SCHEDULER_TEST_MYSQL_URL",
        }
    }

    fn unreachable(&self, e: impl std::fmt::Display) -> anyhow::Error {
        anyhow::anyhow!(
            "cannot reach the test database {} ({e}); start it, or point {} at one",
            self.redacted(),
            self.env_var()
        )
    }

    fn redacted(&self) -> String {
        jobstore_sql::builder(self.url())
            .build_records()
            .map_or_else(
                |_| "<invalid URL>".to_owned(),
                |r| r.redacted_url().to_owned(),
            )
    }

    /// Runs `sql` on a connection of its own; answers the rows it changed.
    pub(crate) async fn exec(&self, sql: &str) -> anyhow::Result<u64> {
        let sql = AssertSqlSafe(sql.to_owned());
        Ok(match self {
            #[cfg(feature = "sqlite")]
            Db::Sqlite(_) => {
                let mut c = sqlx::SqliteConnection::connect(&format!("{}?mode=rwc", self.url()))
                    .await
                    .map_err(|e| self.unreachable(e))?;
                sqlx::query(sql).execute(&mut c).await?.rows_affected()
            }
            #[cfg(feature = "postgres")]
            Db::Postgres(url) => {
                let mut c = sqlx::PgConnection::connect(url)
                    .await
                    .map_err(|e| self.unreachable(e))?;
                sqlx::query(sql).execute(&mut c).await?.rows_affected()
            }
            #[cfg(feature = "mysql")]
            Db::MySql(url) => {
                let mut c = sqlx::MySqlConnection::connect(url)
                    .await
                    .map_err(|e| self.unreachable(e))?;
                sqlx::query(sql).execute(&mut c).await?.rows_affected()
            }
            #[allow(unreachable_patterns)]
            _ => anyhow::bail!("this test binary was built without {self:?}'s feature"),
        })
    }

    /// The rows `sql` answers, each column read as an integer or text as `kinds` says
    /// (`'i'` or `'t'`).
    pub(crate) async fn query(&self, sql: &str, kinds: &str) -> anyhow::Result<Vec<Vec<Value>>> {
        let sql = AssertSqlSafe(sql.to_owned());
        macro_rules! read {
            ($conn:expr) => {{
                use sqlx::Row as _;
                let rows = sqlx::query(sql).fetch_all($conn).await?;
                let mut out = Vec::new();
                for row in &rows {
                    let mut values = Vec::new();
                    for (i, kind) in kinds.chars().enumerate() {
                        values.push(match kind {
                            'i' => Value::Int(row.try_get(i)?),
                            _ => Value::Text(row.try_get(i)?),
                        });
                    }
                    out.push(values);
                }
                out
            }};
        }
        Ok(match self {
            #[cfg(feature = "sqlite")]
            Db::Sqlite(_) => {
                let mut c = sqlx::SqliteConnection::connect(&format!("{}?mode=rwc", self.url()))
                    .await
                    .map_err(|e| self.unreachable(e))?;
                read!(&mut c)
            }
            #[cfg(feature = "postgres")]
            Db::Postgres(url) => {
                let mut c = sqlx::PgConnection::connect(url)
                    .await
                    .map_err(|e| self.unreachable(e))?;
                read!(&mut c)
            }
            #[cfg(feature = "mysql")]
            Db::MySql(url) => {
                let mut c = sqlx::MySqlConnection::connect(url)
                    .await
                    .map_err(|e| self.unreachable(e))?;
                read!(&mut c)
            }
            #[allow(unreachable_patterns)]
            _ => anyhow::bail!("this test binary was built without {self:?}'s feature"),
        })
    }

    /// Fails loudly, naming the env var, when the server cannot be reached.
    pub(crate) async fn check_reachable(&self) -> anyhow::Result<()> {
        match self {
            Db::Sqlite(_) => Ok(()),
            _ => self.exec("SELECT 1").await.map(drop),
        }
    }

    /// Drops `table` and the cluster tables named from it.
    pub(crate) async fn drop_table(&self, table: &str) -> anyhow::Result<()> {
        if let Db::Sqlite(path) = self
            && !path.exists()
        {
            return Ok(());
        }
        let records = jobstore_sql::builder(self.url())
            .tablename(table)
            .build_records()?;
        for name in [table, records.nodes_table(), records.runs_table()] {
            self.exec(&format!("DROP TABLE IF EXISTS {name}")).await?;
        }
        Ok(())
    }

    /// Removes the SQLite file and its WAL files (nothing for servers).
    pub(crate) fn remove_files(&self) {
        if let Db::Sqlite(path) = self {
            for suffix in ["", "-wal", "-shm"] {
                let mut p = path.clone().into_os_string();
                p.push(suffix);
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

fn env_or(var: &str, default: &str) -> String {
    std::env::var(var)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// The conformance suite's setup on `db`: table `ns.name()`, dropped after the case; a small
/// pool, since the cases run in parallel processes.
pub(crate) async fn setup(db: Db, ns: Namespace) -> anyhow::Result<SqlJobStore> {
    db.check_reachable().await?;
    let table = ns.name().to_owned();
    let store = jobstore_sql::builder(db.url())
        .tablename(&table)
        .max_connections(2)
        .build()
        .context("building the store")?;
    ns.on_cleanup(move || async move {
        let dropped = db.drop_table(&table).await;
        db.remove_files();
        dropped
    });
    Ok(store)
}

/// A fresh table name for a test of the store's own.
pub(crate) fn table(test: &str) -> String {
    Namespace::new(test).name().to_owned()
}

/// Defines the store's own tests (beside the conformance suite) for one dialect:
/// `$db` is an expression that gives a fresh [`Db`] for a test named by its argument.
#[macro_export]
macro_rules! sql_store_tests {
    ($db:expr) => {
        $crate::sql_store_tests!(@tests $db,
            registration_builds_a_working_store_from_a_document,
            restart_carries_on_with_misfire_and_coalescing,
            fixture_records_of_version_1_are_read,
            corrupt_rows_written_with_sql_are_skipped_and_left_untouched,
            rows_are_readable_with_plain_sql,
            a_table_of_another_layout_is_refused,
            batched_adds_answer_each_job_and_skip_duplicates,
            racing_batched_adds_add_each_id_once,
            debug_and_errors_never_show_the_password,
        );
        $crate::sql_store_tests!(@tests $db, @cluster
            a_table_without_claim_columns_is_upgraded,
            a_dropped_index_is_created_again_at_start,
            a_start_writes_nothing_before_its_first_fire_commit,
            two_schedulers_run_each_due_job_once,
        );
    };
    (@tests $db:expr, @cluster $($name:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let db: common::Db = ($db)(stringify!($name));
                let outcome = common::cluster::$name(&db).await;
                db.remove_files();
                if let Err(e) = outcome {
                    panic!("{} failed: {e:#}", stringify!($name));
                }
            }
        )+
    };
    (@tests $db:expr, $($name:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let db: common::Db = ($db)(stringify!($name));
                let outcome = common::scenarios::$name(&db).await;
                db.remove_files();
                if let Err(e) = outcome {
                    panic!("{} failed: {e:#}", stringify!($name));
                }
            }
        )+
    };
}

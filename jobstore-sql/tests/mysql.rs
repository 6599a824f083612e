//! The MySQL/MariaDB store against a real server (`SCHEDULER_TEST_MYSQL_URL`, else
//! mysql://root@127.0.0.1:3306/test): the conformance suite, the store's own tests, and an
//! outage and a hang of a private server.

mod common;
mod jobs_tool;

use common::Db;
use scheduler_core::testkit::Namespace;

async fn setup(ns: Namespace) -> anyhow::Result<jobstore_sql::SqlJobStore> {
    common::setup(Db::mysql(), ns).await
}

scheduler_core::jobstore_conformance!(setup, persistent);

sql_store_tests!(|_: &str| Db::mysql());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_server_that_goes_away_and_hangs_is_waited_out() {
    if let Err(e) = common::outage::outage_and_hang(common::servers::Kind::MariaDb).await {
        panic!("{e:#}");
    }
}

/// The jobs tool's record operations on this server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jobs_tool_operations_work_on_mysql() -> anyhow::Result<()> {
    jobs_tool::scenario(Db::mysql()).await
}

/// A fire commit that InnoDB rolls back to break a deadlock is run again at once, not
/// failed (the scheduler would wait its retry interval, seconds, and miss runs past their
/// grace). The deadlock is made on purpose: another transaction holds row `b`, the store's
/// commit of `a` and `b` locks `a` and waits for `b`, then the other asks for `a`. The other
/// has written many rows, so InnoDB picks the store's lighter transaction as the victim.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fire_commit_chosen_as_a_deadlock_victim_is_run_again() -> anyhow::Result<()> {
    use std::sync::Arc;
    use std::time::Duration;

    use scheduler_core::RecordStore;
    use scheduler_core::store::{RecordFireCommit, StoredRecord};
    use sqlx::{AssertSqlSafe, Connection as _};

    let db = Db::mysql();
    db.check_reachable().await?;
    let table = common::table("deadlock");
    let store = Arc::new(
        jobstore_sql::builder(db.url())
            .tablename(&table)
            .max_connections(2)
            .build_records()?,
    );
    store.start(&common::scenarios::context()).await?;
    let record = |id: &str, revision| StoredRecord {
        id: id.to_owned(),
        next_run_time: Some(common::scenarios::t(revision)),
        revision: revision as u64,
        json: "{}".to_owned(),
    };
    let outcome = async {
        for id in ["a", "b"] {
            anyhow::ensure!(store.insert(record(id, 1)).await?);
        }
        let mut other = sqlx::MySqlConnection::connect(&db.url()).await?;
        let mut tx = other.begin().await?;
        let run = |sql: String| sqlx::query(AssertSqlSafe(sql));
        run(format!("UPDATE {table} SET func = 'other' WHERE id = 'b'"))
            .execute(&mut *tx)
            .await?;
        let filler: Vec<String> = (0..200)
            .map(|i| format!("('filler{i}', 1, '{{}}')"))
            .collect();
        run(format!(
            "INSERT INTO {table} (id, revision, job_state) VALUES {}",
            filler.join(", ")
        ))
        .execute(&mut *tx)
        .await?;
        let commits: Vec<RecordFireCommit> = ["a", "b"]
            .into_iter()
            .map(|id| RecordFireCommit {
                id: id.into(),
                due_at: common::scenarios::t(1),
                expected_revision: 1,
                write: Some(record(id, 2)),
                inflight: None,
                max_inflight: None,
            })
            .collect();
        let committer = store.clone();
        let commit = tokio::spawn(async move { committer.commit_fires(&commits).await });
        // The store's transaction holds `a` and waits for `b`: its locking read of the
        // rows' revisions stays running.
        let mut waiting = false;
        for _ in 0..100 {
            let rows = db
                .query(
                    &format!(
                        "SELECT CAST(COUNT(*) AS SIGNED) FROM information_schema.processlist \
                         WHERE info LIKE 'SELECT id, revision FROM {table} %FOR UPDATE'"
                    ),
                    "i",
                )
                .await?;
            if matches!(rows.first().and_then(|r| r.first()), Some(common::Value::Int(Some(n))) if *n > 0)
            {
                waiting = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        anyhow::ensure!(waiting, "the store's commit never waited for row b");
        run(format!("UPDATE {table} SET func = 'other' WHERE id = 'a'"))
            .execute(&mut *tx)
            .await?;
        tx.rollback().await?;
        let answers = commit.await??;
        anyhow::ensure!(answers.len() == 2, "{answers:?}");
        let rows = db
            .query(
                &format!("SELECT CAST(revision AS SIGNED) FROM {table} ORDER BY id"),
                "i",
            )
            .await?;
        anyhow::ensure!(
            rows.iter()
                .all(|r| matches!(r.first(), Some(common::Value::Int(Some(2))))),
            "the commit did not apply: {rows:?}"
        );
        Ok(())
    }
    .await;
    store.shutdown().await?;
    db.drop_table(&table).await?;
    outcome
}

/// A call cancelled by its timeout while the server hangs, after it sent its transaction's
/// `BEGIN` and before the answer, leaves no transaction open on a pooled connection: sqlx
/// counts MySQL's transaction only once the `BEGIN` is answered, so the connection went back
/// to the pool with the server's transaction open, and the next add "succeeded" inside it,
/// seen by no other connection and rolled back when the connection closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_cancelled_in_its_begin_leaves_no_transaction_open() -> anyhow::Result<()> {
    use std::time::Duration;

    use anyhow::Context as _;
    use common::servers::{Kind, PrivateServer};
    use scheduler_core::RecordStore;
    use scheduler_core::store::{RecordFireCommit, StoredRecord};

    let server = PrivateServer::start(Kind::MariaDb).await?;
    // One connection: the add after the hang gets the one the cancelled call held.
    let store = jobstore_sql::builder(server.url())
        .tablename("jobs")
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .call_timeout(Duration::from_secs(1))
        .build_records()?;
    store.start(&common::scenarios::context()).await?;
    let record = |id: &str| StoredRecord {
        id: id.to_owned(),
        next_run_time: Some(common::scenarios::t(1)),
        revision: 1,
        json: "{}".to_owned(),
    };
    // Just used, the connection is handed out without a test (a ping) that would hang before
    // the call's `BEGIN` is sent.
    anyhow::ensure!(store.insert(record("a")).await?);
    server.hang()?;
    // A commit that records a run in flight takes the transaction that starts with `BEGIN`.
    let commit = RecordFireCommit {
        id: "a".into(),
        due_at: common::scenarios::t(1),
        expected_revision: 1,
        write: Some(StoredRecord {
            revision: 2,
            ..record("a")
        }),
        inflight: Some(("node".to_owned(), vec![common::scenarios::t(1)])),
        max_inflight: None,
    };
    let committed = store.commit_fires(&[commit]).await;
    server.unhang()?;
    let err = committed
        .err()
        .context("a fire commit succeeded on a hung server")?;
    anyhow::ensure!(err.is_temporary(), "{err}");
    anyhow::ensure!(store.insert(record("b")).await?, "job b was not added");
    let seen = common::Db::MySql(server.url())
        .query("SELECT id FROM jobs WHERE id = 'b'", "t")
        .await?;
    store.shutdown().await?;
    anyhow::ensure!(
        seen.len() == 1,
        "job b, added Ok, is not visible from another connection: it was added inside a \
         transaction the cancelled commit left open"
    );
    Ok(())
}

//! The PostgreSQL store against a real server (`SCHEDULER_TEST_POSTGRES_URL`, else
//! postgres://postgres@127.0.0.1:5432/test): the conformance suite, the store's own tests,
//! an outage and a hang of a private server, and wake-ups through NOTIFY.

mod common;
mod jobs_tool;

use common::Db;
use scheduler_core::testkit::Namespace;

async fn setup(ns: Namespace) -> anyhow::Result<jobstore_sql::SqlJobStore> {
    common::setup(Db::postgres(), ns).await
}

scheduler_core::jobstore_conformance!(setup, persistent);

sql_store_tests!(|_: &str| Db::postgres());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_server_that_goes_away_and_hangs_is_waited_out() {
    if let Err(e) = common::outage::outage_and_hang(common::servers::Kind::Postgres).await {
        panic!("{e:#}");
    }
}

/// A start that finds the schema in place does not take the schema lock (the advisory lock
/// that makes concurrent first starts create the tables in turn): it only reads, so a start
/// is not held up by another process creating another table, nor costs a transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_on_a_current_schema_takes_no_schema_lock() -> anyhow::Result<()> {
    use scheduler_core::RecordStore;
    use sqlx::Connection as _;

    let db = &Db::postgres();
    common::scenarios::with_table(db, "nolock", |table| async move {
        let open = || {
            jobstore_sql::builder(db.url())
                .tablename(&table)
                .call_timeout(std::time::Duration::from_secs(3))
                .build_records()
        };
        let records = open()?;
        records.start(&common::scenarios::context()).await?;
        records.shutdown().await?;
        let mut holder = sqlx::PgConnection::connect(&db.url()).await?;
        sqlx::query("SELECT pg_advisory_lock(hashtext($1))")
            .bind(format!("jobstore-sql schema {table}"))
            .execute(&mut holder)
            .await?;
        let records = open()?;
        let started = records.start(&common::scenarios::context()).await;
        records.shutdown().await?;
        holder.close().await?;
        started.map_err(|e| anyhow::anyhow!("the second start waited for the lock: {e}"))
    })
    .await
}

/// The jobs tool's record operations on this server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jobs_tool_operations_work_on_postgres() -> anyhow::Result<()> {
    jobs_tool::scenario(Db::postgres()).await
}

/// A handle on `table` for the wake-up tests: a pool of two connections, besides its
/// listener's.
fn notify_handle(db: &Db, table: &str) -> anyhow::Result<jobstore_sql::SqlRecords> {
    Ok(jobstore_sql::builder(db.url())
        .tablename(table)
        .max_connections(2)
        .build_records()?)
}

/// A write through one handle wakes another handle's scheduler through NOTIFY (not only the
/// wake-up every (re)connection of the listener gives); after the listener's connection is
/// killed it reconnects and wakes again; after shutdown the listeners' connections are gone. Prints the
/// delay from a write's return to the other handle's wake-up. A handle listens from the end of
/// its scheduler's first pass (here: its look at the next run time), not from its start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_wakes_the_other_handle_and_survives_a_killed_listener() -> anyhow::Result<()> {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use anyhow::Context as _;
    use scheduler_core::RecordStore;
    use scheduler_core::store::StoredRecord;

    let db = Db::postgres();
    db.check_reachable().await?;
    let table = common::table("notify");
    let (writer, listener) = (notify_handle(&db, &table)?, notify_handle(&db, &table)?);
    let woken = Arc::new(tokio::sync::Notify::new());
    let wake = woken.clone();
    writer.start(&common::scenarios::context()).await?;
    listener
        .start(&common::scenarios::context().with_waker(move || wake.notify_one()))
        .await?;
    let wait = || async {
        tokio::time::timeout(Duration::from_secs(10), woken.notified())
            .await
            .context("no wake-up within 10 s")
    };
    let outcome = async {
        let started = tokio::time::timeout(Duration::from_millis(500), woken.notified()).await;
        anyhow::ensure!(started.is_err(), "the listener listened before the first pass");
        for handle in [&writer, &listener] {
            handle.next_run_times(1).await?;
        }
        wait().await.context("the listener's first connection")?;
        let mut delays = Vec::new();
        for i in 0..20 {
            let record = StoredRecord {
                id: format!("j{i}"),
                next_run_time: Some(common::scenarios::t(i)),
                revision: 1,
                json: "{}".to_owned(),
            };
            let sent = Instant::now();
            anyhow::ensure!(writer.insert(record).await?);
            wait().await.with_context(|| format!("write {i}"))?;
            delays.push(sent.elapsed());
        }
        delays.sort();
        println!(
            "PostgreSQL NOTIFY wake-up from the start of a write: median {:?}, max {:?} (20 writes)",
            delays[delays.len() / 2],
            delays[delays.len() - 1]
        );
        let channel = format!("{table}_wakeup");
        let find = format!(
            "SELECT pid::int8 AS pid FROM pg_stat_activity WHERE application_name = 'jobstore-sql-listener' \
             AND query = 'LISTEN \"{channel}\"'"
        );
        let killed = db
            .query(
                &format!(
                    "SELECT CASE WHEN pg_terminate_backend(pid::int4) THEN 1::int8 ELSE 0::int8 END FROM \
                     ({find}) l"
                ),
                "i",
            )
            .await?;
        // Both handles listen (every store that looked at its due jobs does).
        anyhow::ensure!(killed.len() == 2, "listener connections: {killed:?}");
        wait().await.context("the wake-up after reconnecting")?;
        let record = StoredRecord {
            id: "after".to_owned(),
            next_run_time: Some(common::scenarios::t(0)),
            revision: 1,
            json: "{}".to_owned(),
        };
        anyhow::ensure!(writer.insert(record).await?);
        wait().await.context("a write after reconnecting")?;
        // A group of adds sends its wake-up within its insert statement.
        let group = ["after", "grouped"].map(|id| StoredRecord {
            id: id.to_owned(),
            next_run_time: Some(common::scenarios::t(1)),
            revision: 1,
            json: "{}".to_owned(),
        });
        let added = writer.insert_many(group.to_vec()).await?;
        anyhow::ensure!(added == [false, true], "group answers {added:?}");
        wait().await.context("a group of adds")?;
        listener.shutdown().await?;
        writer.shutdown().await?;
        for _ in 0..50 {
            if db.query(&find, "i").await?.is_empty() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!("the listener's connection is still open 5 s after shutdown")
    }
    .await;
    writer.shutdown().await?;
    listener.shutdown().await?;
    db.drop_table(&table).await?;
    outcome
}

/// A wake-up carries the earliest run time the write gave a job: a handle whose scheduler
/// looks at the store by then anyway is not woken, for a single add, a group, an upsert or
/// an update, and a large batch (its separate NOTIFY); a write that makes a job due sooner
/// wakes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wake_up_carries_the_run_time_and_spares_a_node_that_looks_by_then() -> anyhow::Result<()>
{
    use std::sync::Arc;
    use std::time::Duration;

    use anyhow::Context as _;
    use scheduler_core::RecordStore;
    use scheduler_core::store::StoredRecord;

    use common::scenarios::t;

    let db = Db::postgres();
    db.check_reachable().await?;
    let table = common::table("notify_at");
    let (writer, listener) = (notify_handle(&db, &table)?, notify_handle(&db, &table)?);
    let woken = Arc::new(tokio::sync::Notify::new());
    let wake = woken.clone();
    // The listener's scheduler has planned to look at t(100).
    let ctx = common::scenarios::context()
        .with_waker(move || wake.notify_one())
        .with_planned_look(|run_time| run_time >= t(100));
    writer.start(&common::scenarios::context()).await?;
    listener.start(&ctx).await?;
    let woken_within = |ms: u64| {
        let woken = woken.clone();
        async move {
            tokio::time::timeout(Duration::from_millis(ms), woken.notified())
                .await
                .is_ok()
        }
    };
    let row = |id: &str, secs: i64| StoredRecord {
        id: id.to_owned(),
        next_run_time: Some(t(secs)),
        revision: 1,
        json: "{}".to_owned(),
    };
    let outcome = async {
        listener.next_run_times(1).await?;
        anyhow::ensure!(
            woken_within(10_000).await,
            "the listener's first connection"
        );
        anyhow::ensure!(writer.insert(row("later", 200)).await?);
        anyhow::ensure!(
            !woken_within(500).await,
            "woken for an add after the planned look"
        );
        let added = writer
            .insert_many(vec![row("g1", 300), row("g2", 150)])
            .await?;
        anyhow::ensure!(added == [true, true], "group answers {added:?}");
        anyhow::ensure!(
            !woken_within(500).await,
            "woken for a group after the planned look"
        );
        let batch: Vec<StoredRecord> = (0..300).map(|i| row(&format!("b{i}"), 400 + i)).collect();
        anyhow::ensure!(writer.insert_many(batch).await?.iter().all(|&a| a));
        anyhow::ensure!(
            !woken_within(500).await,
            "woken for a batch after the planned look"
        );
        writer.upsert(row("later", 250)).await?;
        anyhow::ensure!(
            !woken_within(500).await,
            "woken for an upsert after the planned look"
        );
        let added = writer
            .insert_many(vec![row("g3", 300), row("g4", 50)])
            .await?;
        anyhow::ensure!(added == [true, true], "group answers {added:?}");
        anyhow::ensure!(
            woken_within(10_000).await,
            "not woken for a group holding a job due before the planned look"
        );
        // The upsert above wrote revision 1.
        let mut sooner = row("later", 10);
        sooner.revision = 2;
        anyhow::ensure!(writer.update(sooner, 1).await?, "the update applies");
        woken_within(10_000)
            .await
            .then_some(())
            .context("not woken for an update making a job due before the planned look")
    }
    .await;
    writer.shutdown().await?;
    listener.shutdown().await?;
    db.drop_table(&table).await?;
    outcome
}

/// Schedulers started together on a fresh table all start: concurrent `CREATE TABLE IF NOT
/// EXISTS` of one name fails on PostgreSQL (a duplicate key in `pg_type`), so the store
/// creates its tables under an advisory lock. Several rounds of four handles, each round on a
/// new table, since the race is not lost every time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handles_starting_at_once_on_a_fresh_table_all_start() -> anyhow::Result<()> {
    use scheduler_core::RecordStore;

    let db = Db::postgres();
    db.check_reachable().await?;
    for round in 0..8 {
        let table = common::table(&format!("concurrent_create_{round}"));
        let handles = (0..4)
            .map(|_| {
                jobstore_sql::builder(db.url())
                    .tablename(&table)
                    .max_connections(2)
                    .build_records()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let handles: Vec<_> = handles.into_iter().map(std::sync::Arc::new).collect();
        let starts: Vec<_> = handles
            .iter()
            .map(|h| {
                let h = h.clone();
                tokio::spawn(async move { h.start(&common::scenarios::context()).await })
            })
            .collect();
        let mut failures = Vec::new();
        for start in starts {
            if let Err(e) = start.await? {
                failures.push(e.to_string());
            }
        }
        for h in &handles {
            h.shutdown().await?;
        }
        db.drop_table(&table).await?;
        anyhow::ensure!(
            failures.is_empty(),
            "round {round}: {} of 4 handles failed to start: {failures:?}",
            failures.len()
        );
    }
    Ok(())
}

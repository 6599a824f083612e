//! The store's own cluster tests (beside the conformance suite's `cluster_*` cases, whose
//! claim race runs on every backend): a table of an earlier version upgraded in place, and
//! two schedulers sharing one table.

use anyhow::{Context as _, ensure};
use scheduler_core::RecordStore;
use scheduler_core::store::{Claim, to_micros};

use super::scenarios::{context, t, with_table};
use super::{Db, Value};

/// A jobs table made before claims existed (no claim columns) gains them at start, keeps
/// its rows, and its rows can be claimed; the cluster tables are created beside it.
pub(crate) async fn a_table_without_claim_columns_is_upgraded(db: &Db) -> anyhow::Result<()> {
    with_table(db, "upgrade", |table| async move {
        let (time, state) = match db {
            Db::Postgres(_) => ("TIMESTAMPTZ", "TEXT"),
            Db::MySql(_) => ("DATETIME(6)", "LONGTEXT"),
            Db::Sqlite(_) => ("TEXT", "TEXT"),
        };
        db.exec(&format!(
            "CREATE TABLE {table} (id VARCHAR(191) NOT NULL PRIMARY KEY, next_run_micros \
             BIGINT, next_run_time {time}, revision BIGINT NOT NULL, func VARCHAR(255), \
             trigger_kind VARCHAR(255), job_state {state} NOT NULL)"
        ))
        .await?;
        db.exec(&format!(
            "INSERT INTO {table} (id, next_run_micros, revision, job_state) VALUES ('old', {}, \
             5, '{{}}')",
            to_micros(t(0))
        ))
        .await?;
        let records = jobstore_sql::builder(db.url())
            .tablename(&table)
            .max_connections(2)
            .build_records()?;
        records.start(&context()).await.context("the upgrade")?;
        let claim = Claim {
            node: "n1".to_owned(),
            token: "tok".to_owned(),
            until: t(60),
        };
        let claimed = records.claim_due(t(10), 10, &claim).await?;
        ensure!(
            claimed.len() == 1 && claimed[0].id == "old" && claimed[0].revision == 5,
            "{claimed:?}"
        );
        let stored = db
            .query(
                &format!("SELECT claimed_by, claim_token, claim_until FROM {table}"),
                "tti",
            )
            .await?;
        ensure!(
            stored
                == [vec![
                    Value::Text(Some("n1".into())),
                    Value::Text(Some("tok".into())),
                    Value::Int(Some(to_micros(t(60)))),
                ]],
            "{stored:?}"
        );
        ensure!(records.nodes().await?.is_empty());
        ensure!(records.inflight_runs().await?.is_empty());
        // A second start finds everything in place.
        records.shutdown().await?;
        records.start(&context()).await?;
        records.shutdown().await?;
        Ok(())
    })
    .await
}

/// A scheduler's start writes nothing before its first fire commit: the joined node's first
/// heartbeat waits for that commit (and goes in its transaction), and the first due batch is
/// read without a claim. The commit (the set-based one of the SQL servers: no run recorded in
/// flight, which the conformance suite's `cluster_a_joined_node_is_listed` covers) then leaves
/// the node listed.
pub(crate) async fn a_start_writes_nothing_before_its_first_fire_commit(
    db: &Db,
) -> anyhow::Result<()> {
    use scheduler_core::store::{NodeRecord, RecordFireCommit, StoredRecord};

    with_table(db, "firstwrite", |table| async move {
        let records = jobstore_sql::builder(db.url())
            .tablename(&table)
            .max_connections(2)
            .build_records()?;
        records.start(&context()).await?;
        for id in ["a", "b"] {
            let row = StoredRecord {
                id: id.to_owned(),
                next_run_time: Some(t(0)),
                revision: 1,
                json: "{}".to_owned(),
            };
            ensure!(records.insert(row).await?);
        }
        let node = NodeRecord {
            id: "n1".to_owned(),
            last_seen: t(1),
            info: "{}".to_owned(),
        };
        records.join(&node).await?;
        let nodes_table = records.nodes_table().to_owned();
        let heartbeats = format!("SELECT id FROM {nodes_table}");
        ensure!(
            db.query(&heartbeats, "t").await?.is_empty(),
            "the join wrote a heartbeat"
        );
        let due = records
            .due_unclaimed(t(5), 5, "n1")
            .await?
            .context("the SQL store reads a first batch unclaimed")?;
        ensure!(due.len() == 2, "{due:?}");
        let claimed = format!("SELECT id FROM {table} WHERE claimed_by IS NOT NULL");
        ensure!(
            db.query(&claimed, "t").await?.is_empty(),
            "the read claimed"
        );
        let mut next = due[0].clone();
        next.next_run_time = Some(t(60));
        next.revision = 2;
        let commit = RecordFireCommit {
            id: next.id.as_str().into(),
            due_at: t(0),
            expected_revision: 1,
            write: Some(next),
            inflight: None,
            max_inflight: None,
        };
        let answers = records.commit_fires(&[commit]).await?;
        ensure!(answers.get("a") == Some(scheduler_core::FireAnswer::Committed));
        ensure!(
            db.query(&heartbeats, "t").await? == [vec![Value::Text(Some("n1".into()))]],
            "the fire commit did not write the heartbeat"
        );
        let revisions = db
            .query(
                &format!("SELECT id, revision FROM {table} ORDER BY id"),
                "ti",
            )
            .await?;
        let row =
            |id: &str, revision| vec![Value::Text(Some(id.into())), Value::Int(Some(revision))];
        ensure!(revisions == [row("a", 2), row("b", 1)], "{revisions:?}");
        records.shutdown().await?;
        Ok(())
    })
    .await
}

/// A start that finds the schema complete only reads it; one that finds the run-time index
/// dropped (SQLite, PostgreSQL: MySQL's is part of its table) creates it again.
pub(crate) async fn a_dropped_index_is_created_again_at_start(db: &Db) -> anyhow::Result<()> {
    with_table(db, "reindex", |table| async move {
        let records = jobstore_sql::builder(db.url())
            .tablename(&table)
            .max_connections(2)
            .build_records()?;
        records.start(&context()).await?;
        records.shutdown().await?;
        let index = format!("{table}_next_run");
        let listed = match db {
            Db::Sqlite(_) => "SELECT name FROM sqlite_master WHERE type = 'index' AND name = ",
            Db::Postgres(_) => "SELECT indexname FROM pg_indexes WHERE indexname = ",
            Db::MySql(_) => return Ok(()),
        };
        let listed = format!("{listed}'{index}'");
        ensure!(db.query(&listed, "t").await?.len() == 1, "no index {index}");
        db.exec(&format!("DROP INDEX {index}")).await?;
        ensure!(db.query(&listed, "t").await?.is_empty());
        records.start(&context()).await?;
        records.shutdown().await?;
        ensure!(
            db.query(&listed, "t").await?.len() == 1,
            "the index was not created again"
        );
        Ok(())
    })
    .await
}

/// Two schedulers (nodes `a` and `b`) on one table and one clock, small due batches: when 40
/// jobs fall due, each runs exactly once, on one of the nodes.
pub(crate) async fn two_schedulers_run_each_due_job_once(db: &Db) -> anyhow::Result<()> {
    use std::time::Duration;

    use scheduler_core::testkit::ManualClock;

    use super::scenarios::Harness;

    with_table(db, "twonodes", |table| async move {
        let clock = ManualClock::new(t(0));
        let node = |id: &'static str| {
            let store = jobstore_sql::builder(db.url())
                .tablename(&table)
                .max_connections(2)
                .build()?;
            Harness::with(store, clock.clone(), |b| b.node_id(id).due_batch_size(5))
        };
        let (a, b) = (node("a")?, node("b")?);
        a.scheduler.start().await?;
        b.scheduler.start().await?;
        for i in 0..40 {
            a.scheduler
                .add_job(a.every_10s(&format!("job{i:02}"), t(5)))
                .await?;
        }
        clock.set(t(5));
        let calls = |h: &Harness| h.calls.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut waited = 0;
        while calls(&a).len() + calls(&b).len() < 40 && waited < 400 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            waited += 1;
        }
        // Anything more would come now.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (on_a, on_b) = (calls(&a), calls(&b));
        a.scheduler.shutdown(true).await?;
        b.scheduler.shutdown(true).await?;
        let mut all: Vec<String> = on_a.iter().chain(&on_b).cloned().collect();
        all.sort();
        let expected: Vec<String> = (0..40).map(|i| format!("job{i:02}")).collect();
        ensure!(
            all == expected,
            "runs on a: {on_a:?}; on b: {on_b:?} (each of 40 jobs once)"
        );
        println!("node a ran {}, node b ran {}", on_a.len(), on_b.len());
        Ok(())
    })
    .await
}

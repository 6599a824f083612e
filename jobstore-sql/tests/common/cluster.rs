//! The store's own cluster tests (beside the conformance suite's `cluster_*` cases): claims
//! raced by many nodes on the real server, and a table of an earlier version upgraded in
//! place.

use std::collections::HashMap;

use anyhow::{Context as _, ensure};
use scheduler_core::RecordStore;
use scheduler_core::store::{Claim, StoredRecord, to_micros};

use super::scenarios::{context, t, with_table};
use super::{Db, Value};

/// Eight nodes (two store handles, four concurrent claimers each, every claimer a node of its
/// own) claim 300 due rows in batches of 7, removing what they claimed (as a one-off job's
/// fire does), until none is left: every row is handed out exactly once.
pub(crate) async fn concurrent_claims_hand_each_row_out_once(db: &Db) -> anyhow::Result<()> {
    with_table(db, "claims", |table| async move {
        let open = || {
            jobstore_sql::builder(db.url())
                .tablename(&table)
                .max_connections(4)
                .build_records()
        };
        let handles = [std::sync::Arc::new(open()?), std::sync::Arc::new(open()?)];
        for h in &handles {
            h.start(&context()).await?;
        }
        let rows: Vec<StoredRecord> = (0..300)
            .map(|i| StoredRecord {
                id: format!("job{i:03}"),
                next_run_time: Some(t(i % 13)),
                revision: 1,
                json: "{}".to_owned(),
            })
            .collect();
        let added = handles[0].insert_many(rows).await?;
        ensure!(added.iter().all(|a| *a), "every row added");
        let mut tasks = Vec::new();
        for n in 0..8 {
            let records = handles[n % 2].clone();
            tasks.push(tokio::spawn(async move {
                let mut got = Vec::new();
                for round in 0.. {
                    let claim = Claim {
                        node: format!("node{n}"),
                        token: format!("token-{n}-{round}"),
                        until: t(1000),
                    };
                    let batch = records.claim_due(t(100), 7, &claim).await?;
                    if batch.is_empty() {
                        break;
                    }
                    // The node's fire: a one-off job's row goes (its own claims would
                    // otherwise be claimable by it again).
                    for row in batch {
                        records.remove(&row.id).await?;
                        got.push((row.id, claim.node.clone()));
                    }
                }
                anyhow::Ok(got)
            }));
        }
        let mut holder: HashMap<String, String> = HashMap::new();
        for task in tasks {
            for (id, node) in task.await?? {
                if let Some(first) = holder.insert(id.clone(), node.clone()) {
                    anyhow::bail!("{id} was handed to {first} and to {node}");
                }
            }
        }
        ensure!(holder.len() == 300, "{} of 300 rows claimed", holder.len());
        for h in &handles {
            h.shutdown().await?;
        }
        Ok(())
    })
    .await
}

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

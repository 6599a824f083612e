//! What a wake-up says: the earliest run time the write gave a job.

use std::time::Duration;

use jobstore_redis::RedisRecords;
use scheduler_core::chrono::{DateTime, Utc};
use scheduler_core::store::{RecordStore, StoredRecord};
use scheduler_core::{EventBus, JobCodec, StoreContext};

use crate::common;

fn t(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_225_600 + secs, 0).expect("a valid instant")
}

fn row(id: &str, secs: i64, revision: u64) -> StoredRecord {
    StoredRecord {
        id: id.to_owned(),
        next_run_time: Some(t(secs)),
        revision,
        json: "{}".to_owned(),
    }
}

/// A handle whose scheduler looks at the store by a job's run time anyway is not woken for
/// it (an add, a group, an upsert), and is for a write that makes a job due sooner (a
/// group holding one, an update).
#[test]
fn a_wake_up_carries_the_run_time_and_spares_a_node_that_looks_by_then() -> anyhow::Result<()> {
    let runtime = common::runtime()?;
    let prefix = format!("wake_at.{}.", std::process::id());
    runtime.block_on(async {
        let open = || {
            RedisRecords::builder(common::redis_url())
                .prefix(&prefix)
                .build_records()
        };
        let (writer, listener) = (open()?, open()?);
        let (woken_tx, mut woken) = tokio::sync::mpsc::channel::<()>(64);
        let plain = StoreContext::new("redis", JobCodec::default(), EventBus::new());
        // The listener's scheduler has planned to look at t(100).
        let ctx = plain
            .clone()
            .with_waker(move || {
                let _ = woken_tx.try_send(());
            })
            .with_planned_look(|run_time| run_time >= t(100));
        writer.start(&plain).await?;
        listener.start(&ctx).await?;
        let mut woken_within = async |ms: u64| {
            tokio::time::timeout(Duration::from_millis(ms), woken.recv())
                .await
                .is_ok()
        };
        let outcome = async {
            anyhow::ensure!(woken_within(5_000).await, "no wake-up once subscribed");
            anyhow::ensure!(writer.insert(row("later", 200, 1)).await?);
            anyhow::ensure!(!woken_within(300).await, "woken for an add after the look");
            let added = writer
                .insert_many(vec![row("g1", 300, 1), row("g2", 150, 1)])
                .await?;
            anyhow::ensure!(added == [true, true], "group answers {added:?}");
            anyhow::ensure!(!woken_within(300).await, "woken for a group after the look");
            writer.upsert(row("later", 250, 2)).await?;
            anyhow::ensure!(
                !woken_within(300).await,
                "woken for an upsert after the look"
            );
            let added = writer
                .insert_many(vec![row("g3", 300, 1), row("g4", 50, 1)])
                .await?;
            anyhow::ensure!(added == [true, true], "group answers {added:?}");
            anyhow::ensure!(
                woken_within(5_000).await,
                "not woken for a group holding a job due before the look"
            );
            anyhow::ensure!(
                writer.update(row("later", 10, 3), 2).await?,
                "the update applies"
            );
            anyhow::ensure!(
                woken_within(5_000).await,
                "not woken for an update making a job due before the look"
            );
            anyhow::Ok(())
        }
        .await;
        let cleared = writer.remove_all().await;
        writer.shutdown().await?;
        listener.shutdown().await?;
        outcome?;
        cleared?;
        anyhow::Ok(())
    })
}

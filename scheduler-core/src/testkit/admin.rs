//! The scenario every persistent backend runs for [`store::admin`](crate::store::admin): the
//! record-level operations of the jobs tool, on the backend's own rows.

use chrono::TimeDelta;

use super::{StepTrigger, at};
use crate::error::ErrorKind;
use crate::job::JobRecord;
use crate::store::admin;
use crate::store::{RecordStore, StoredRecord};
use crate::trigger::{Trigger, TriggerRegistry};

fn record(id: &str, start_secs: i64) -> anyhow::Result<JobRecord> {
    let trigger = StepTrigger {
        start: at(start_secs),
        step_secs: 60,
    };
    let json = serde_json::json!({
        "version": 1, "id": id, "name": id, "func": "testkit.echo", "args": [],
        "trigger": trigger.to_state()?, "executor": "default", "misfire_grace_time": 1.0,
        "coalesce": true, "max_instances": 1, "next_run_time": at(start_secs),
    });
    Ok(serde_json::from_value(json)?)
}

/// Runs the scenario on `store`, started and empty: import (refusing existing ids unless
/// replacing), list order, pause, resume from the trigger, an unreadable row listed but never changed, export, remove.
pub async fn admin_scenario(store: &impl RecordStore) -> anyhow::Result<()> {
    let triggers = TriggerRegistry::new();
    triggers.register_serde::<StepTrigger>(StepTrigger::KIND);

    let lines: Vec<String> = [record("b", 200)?, record("a", 100)?]
        .iter()
        .map(serde_json::to_string)
        .collect::<Result<_, _>>()?;
    let parsed = admin::parse_import(&lines.join("\n"))?;
    let summary = admin::import(store, parsed, false).await?;
    anyhow::ensure!(summary.added.len() == 2, "{summary:?}");
    let again = admin::import(store, admin::parse_import(&lines[0])?, false).await;
    anyhow::ensure!(
        again.as_ref().err().map(|e| e.kind()) == Some(ErrorKind::ConflictingId),
        "an existing id was not refused: {again:?}"
    );
    let replaced = admin::import(store, admin::parse_import(&lines[0])?, true).await?;
    anyhow::ensure!(replaced.replaced == ["b"], "{replaced:?}");

    let ids: Vec<String> = admin::list(store)
        .await?
        .into_iter()
        .map(|v| v.id)
        .collect();
    anyhow::ensure!(ids == ["a", "b"], "list order: {ids:?}");

    let paused = admin::pause(store, "a").await?;
    anyhow::ensure!(paused.next_run_time.is_none());
    let view = admin::get(store, "a").await?;
    anyhow::ensure!(view.next_run_time.is_none(), "the row is not paused");
    let ids: Vec<String> = admin::list(store)
        .await?
        .into_iter()
        .map(|v| v.id)
        .collect();
    anyhow::ensure!(ids == ["b", "a"], "paused jobs list last: {ids:?}");

    let now = at(100) + TimeDelta::seconds(90);
    let resumed = admin::resume(store, "a", &triggers, now).await?;
    anyhow::ensure!(resumed.next_run_time == Some(at(100) + TimeDelta::seconds(120)));
    let view = admin::get(store, "a").await?;
    anyhow::ensure!(view.next_run_time == resumed.next_run_time, "{view:?}");
    let decoded = view.record.clone().map_err(anyhow::Error::msg)?;
    let times = admin::next_fire_times(&decoded, &triggers, now, 5)?;
    anyhow::ensure!(
        times.len() == 5 && times[4] == at(100) + TimeDelta::seconds(360),
        "{times:?}"
    );

    // An unreadable row: listed as such, never changed, exported only if it is JSON.
    anyhow::ensure!(
        store
            .insert(StoredRecord {
                id: "broken".into(),
                next_run_time: Some(at(50)),
                revision: 7,
                json: "{not json".into(),
            })
            .await?
    );
    let views = admin::list(store).await?;
    let broken = views.iter().find(|v| v.id == "broken");
    anyhow::ensure!(broken.is_some_and(|v| v.unreadable()), "{views:?}");
    let refused = admin::pause(store, "broken").await;
    anyhow::ensure!(
        refused.as_ref().err().map(|e| e.kind()) == Some(ErrorKind::Serialization),
        "{refused:?}"
    );
    let row = store.get("broken").await?;
    anyhow::ensure!(
        row.as_ref()
            .is_some_and(|r| r.revision == 7 && r.json == "{not json"),
        "the unreadable row changed: {row:?}"
    );
    let exported: Vec<_> = views.iter().map(admin::export_line).collect();
    anyhow::ensure!(exported.iter().filter(|l| l.is_ok()).count() == 2);
    let round_trip = admin::parse_import(
        &exported
            .iter()
            .filter_map(|l| l.as_ref().ok().cloned())
            .collect::<Vec<_>>()
            .join("\n"),
    )?;
    anyhow::ensure!(round_trip.len() == 2);

    admin::remove(store, "broken").await?;
    admin::remove(store, "a").await?;
    anyhow::ensure!(store.get("a").await?.is_none());
    let gone = admin::remove(store, "a").await;
    anyhow::ensure!(gone.err().map(|e| e.kind()) == Some(ErrorKind::JobNotFound));
    Ok(())
}

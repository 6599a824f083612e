//! The scenario every persistent backend runs for [`store::admin`](crate::store::admin): the
//! record-level operations of the jobs tool, on the backend's own rows.

use chrono::{DateTime, TimeDelta, Utc};

use super::{StepTrigger, at, suite_codec};
use crate::error::ErrorKind;
use crate::event::EventBus;
use crate::job::JobRecord;
use crate::scheduler::Components;
use crate::store::admin::{self, Filter};
use crate::store::{
    FireAnswer, FireCommit, JobStore, RecordJobStore, RecordStore, StoreContext, StoredRecord,
};
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

/// Runs the scenario on the empty store at `url`, opened as the jobs tool opens it: through
/// the types `register` (a store crate's `register` function) adds to [`Components`], with
/// `options` (a JSON object: `{"tablename": ...}`) as the factory's options.
pub async fn admin_scenario_at_url(
    register: fn(&Components),
    url: &str,
    options: serde_json::Value,
) -> anyhow::Result<()> {
    let serde_json::Value::Object(options) = options else {
        anyhow::bail!("the store options are a JSON object, not {options}");
    };
    let components = Components::new();
    register(&components);
    admin_scenario(components.open_records(url, options)?).await
}

/// Runs the scenario on `records`, an empty backend (not started: the scenario starts it
/// under a [`RecordJobStore`], as a scheduler would, and shuts it down): import (refusing
/// existing ids unless replacing), list order and filters, pause, resume from the trigger, an
/// unreadable row listed but never changed, export, a run-now request honoured once by a
/// scheduler's fire commit with the planned schedule restored (a paused job stays paused),
/// remove.
pub async fn admin_scenario<R: RecordStore>(records: R) -> anyhow::Result<()> {
    let jobs = RecordJobStore::new(records);
    let (codec, _) = suite_codec(false);
    jobs.start(StoreContext::new("admin", codec, EventBus::new()))
        .await?;
    let outcome = scenario(&jobs).await;
    let cleanup = jobs.remove_all_jobs().await;
    jobs.shutdown().await?;
    outcome?;
    Ok(cleanup?)
}

async fn scenario<R: RecordStore>(jobs: &RecordJobStore<R>) -> anyhow::Result<()> {
    let store = jobs.records();
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
    filters(store).await?;
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
    run_requests(jobs, now).await?;
    admin::remove(store, "a").await?;
    anyhow::ensure!(store.get("a").await?.is_none());
    let gone = admin::remove(store, "a").await;
    anyhow::ensure!(gone.err().map(|e| e.kind()) == Some(ErrorKind::JobNotFound));
    Ok(())
}

/// The ids `filter` keeps, in listing order.
async fn listed(store: &impl RecordStore, filter: Filter) -> anyhow::Result<Vec<String>> {
    Ok(admin::list(store)
        .await?
        .into_iter()
        .filter(|v| filter.matches(v))
        .map(|v| v.id)
        .collect())
}

/// With "broken" (unreadable, due at 50), "b" (due at 200) and "a" (due at 220).
async fn filters(store: &impl RecordStore) -> anyhow::Result<()> {
    let all = listed(store, Filter::default()).await?;
    anyhow::ensure!(all == ["broken", "b", "a"], "no filter: {all:?}");
    let cases: [(Filter, &[&str]); 8] = [
        (
            Filter {
                paused: Some(true),
                ..Filter::default()
            },
            &[],
        ),
        (
            Filter {
                paused: Some(false),
                ..Filter::default()
            },
            &["broken", "b", "a"],
        ),
        (
            Filter {
                due_before: Some(at(200)),
                ..Filter::default()
            },
            &["broken", "b"],
        ),
        (
            Filter {
                id: Some("b*".into()),
                ..Filter::default()
            },
            &["broken", "b"],
        ),
        (
            Filter {
                function: Some("testkit.*".into()),
                ..Filter::default()
            },
            &["b", "a"],
        ),
        (
            Filter {
                name: Some("a".into()),
                executor: Some("default".into()),
                ..Filter::default()
            },
            &["a"],
        ),
        (
            Filter {
                unreadable: true,
                ..Filter::default()
            },
            &["broken"],
        ),
        (
            Filter {
                executor: Some("elsewhere".into()),
                ..Filter::default()
            },
            &[],
        ),
    ];
    for (filter, expected) in cases {
        let ids = listed(store, filter.clone()).await?;
        anyhow::ensure!(ids == expected, "{filter:?} kept {ids:?}");
    }
    Ok(())
}

/// What a scheduler's pass does with the store at `now`: the due jobs, and for each one with
/// a pending run-now request, the fire commit the loop makes for it. Answers the ids it
/// committed.
async fn scheduler_pass<R: RecordStore>(
    jobs: &RecordJobStore<R>,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<String>> {
    let mut commits = Vec::new();
    for job in jobs.get_due_jobs(now, 10).await? {
        let Some((outcome, runs)) = crate::scheduler::run_request::requested_fire(&job, now) else {
            anyhow::bail!("job {} is due without a run-now request", job.id());
        };
        anyhow::ensure!(runs == [now], "{runs:?}");
        let due_at = job.next_run_time().unwrap_or(now);
        commits.push(FireCommit::new(
            job.id_arc().clone(),
            due_at,
            job.revision(),
            outcome,
        ));
    }
    let answers = jobs.commit_fires(&commits).await?;
    let mut committed = Vec::new();
    for commit in &commits {
        anyhow::ensure!(
            answers.get(&commit.job_id) == Some(FireAnswer::Committed),
            "{answers:?}"
        );
        committed.push(commit.job_id.to_string());
    }
    Ok(committed)
}

/// With "b" (due at 200) and "a" (due at 220), at `now` (190).
async fn run_requests<R: RecordStore>(
    jobs: &RecordJobStore<R>,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let store = jobs.records();
    let request = admin::request_run(store, "b", now).await?;
    anyhow::ensure!(
        (request.at, request.planned) == (now, Some(at(200))),
        "{request:?}"
    );
    let view = admin::get(store, "b").await?;
    anyhow::ensure!(
        view.next_run_time == Some(now) && view.planned_run_time() == Some(at(200)),
        "the request does not make the job due now and keep its plan: {view:?}"
    );
    let requested = listed(
        store,
        Filter {
            run_requested: true,
            ..Filter::default()
        },
    )
    .await?;
    anyhow::ensure!(requested == ["b"], "{requested:?}");
    let again = admin::request_run(store, "b", now + TimeDelta::seconds(5)).await?;
    let row = admin::get(store, "b").await?;
    anyhow::ensure!(
        again == request && row.revision == view.revision,
        "a second request changed the first: {again:?}, {row:?}"
    );

    // A scheduler sees the job due now, and its fire commit restores the plan.
    anyhow::ensure!(
        jobs.get_due_jobs(now - TimeDelta::seconds(1), 10)
            .await?
            .is_empty()
    );
    let due = jobs.get_due_jobs(now, 10).await?;
    anyhow::ensure!(
        due.len() == 1 && due[0].run_request() == Some(request),
        "{due:?}"
    );
    anyhow::ensure!(scheduler_pass(jobs, now).await? == ["b"]);
    let view = admin::get(store, "b").await?;
    let record = view.record.clone().map_err(anyhow::Error::msg)?;
    anyhow::ensure!(
        view.next_run_time == Some(at(200))
            && record.next_run_time == Some(at(200))
            && record.run_requested_at.is_none(),
        "the fire did not restore the plan: {view:?}"
    );
    anyhow::ensure!(
        scheduler_pass(jobs, now + TimeDelta::seconds(1))
            .await?
            .is_empty(),
        "the request was honoured twice"
    );

    // A paused job runs once and stays paused.
    admin::pause(store, "a").await?;
    let request = admin::request_run(store, "a", now).await?;
    anyhow::ensure!(request.planned.is_none(), "{request:?}");
    anyhow::ensure!(scheduler_pass(jobs, now).await? == ["a"]);
    let view = admin::get(store, "a").await?;
    anyhow::ensure!(
        view.next_run_time.is_none() && view.run_request().is_none(),
        "{view:?}"
    );

    // Pausing ends a pending request.
    admin::request_run(store, "b", now).await?;
    admin::pause(store, "b").await?;
    anyhow::ensure!(scheduler_pass(jobs, now).await?.is_empty());
    Ok(())
}

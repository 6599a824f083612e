//! The MongoDB store against a real server: the conformance suite on the shared test server
//! (`SCHEDULER_TEST_MONGO_URL`), and what users count on (documents an operator can read,
//! restarts, records of this version, outages and hangs on private servers).

mod common;
mod jobs_tool;
mod wire;

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use common::{PrivateServer, TEST_DATABASE, builder, drop_collection, raw_collection, server_url};
use jobstore_mongo::{MongoJobStore, MongoJobStoreExt};
use mongodb::bson::{Bson, Document, doc};
use scheduler_core::testkit::{ManualClock, Namespace};
use scheduler_core::{
    Components, ErrorKind, Event, EventMask, EventStream, FaultAction, JobFunction, JobRegistry,
    JobSpec, Scheduler, SchedulerConfig, SchedulerState,
};

async fn setup(ns: Namespace) -> anyhow::Result<MongoJobStore> {
    common::require_server().await?;
    let collection = ns.name().to_owned();
    ns.on_cleanup(move || async move { drop_collection(&collection).await });
    Ok(builder(ns.name()).build()?)
}

scheduler_core::jobstore_conformance!(setup, persistent);

// ---------------------------------------------------------------------------------------------
// Helpers

/// A collection name unique to this test run.
fn unique(prefix: &str) -> String {
    Namespace::new(prefix).name().to_owned()
}

fn t(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_225_600 + secs, 0).unwrap()
}

/// A registry with `record` (returns its argument) and every trigger kind used here.
fn registry() -> (JobRegistry, JobFunction<String>) {
    let registry = JobRegistry::new();
    let record = registry.register_sync("record", |s: String| Ok::<_, std::convert::Infallible>(s));
    (registry, record)
}

fn scheduler_on(
    store: MongoJobStore,
    clock: Option<ManualClock>,
) -> (Scheduler, JobFunction<String>) {
    let (registry, record) = registry();
    let mut b = Scheduler::builder()
        .timezone(scheduler_core::chrono_tz::UTC)
        .registry(registry)
        .triggers(triggers::registry())
        .jobstore("default", store)
        .executor("default", executors::TokioExecutor::new())
        .jobstore_retry_interval(Duration::from_millis(200))
        .max_wait(Duration::from_millis(500))
        .jobstore_call_timeout(Duration::from_secs(5));
    if let Some(clock) = clock {
        b = b.clock(clock);
    }
    (b.build().expect("the test scheduler builds"), record)
}

/// Fires at `first`, then every `secs` seconds.
fn every(secs: u64, first: DateTime<Utc>) -> triggers::IntervalTrigger {
    let secs_delta = TimeDelta::seconds(i64::try_from(secs).unwrap_or(i64::MAX));
    triggers::IntervalTrigger::builder()
        .every(Duration::from_secs(secs))
        .build_at(first - secs_delta)
        .expect("a valid interval")
}

/// The next event matching `pick`, within `within`.
async fn next_event<T>(
    events: &mut EventStream,
    within: Duration,
    mut pick: impl FnMut(&Event) -> Option<T>,
) -> anyhow::Result<T> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .map_err(|_| anyhow::anyhow!("no expected event within {within:?}"))?
            .ok_or_else(|| anyhow::anyhow!("the event stream ended"))?;
        if let Some(found) = pick(&event) {
            return Ok(found);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Documents

#[tokio::test]
async fn documents_hold_exact_microseconds_a_readable_time_and_the_json_text() -> anyhow::Result<()>
{
    common::require_server().await?;
    let name = unique("layout");
    let (scheduler, record) = scheduler_on(builder(&name).build()?, None);
    scheduler.start_paused().await?;
    let at = DateTime::from_timestamp(4_102_444_800, 123_456_000).unwrap(); // 2100, with µs
    scheduler
        .add_job(
            JobSpec::new(record.call("a".into()), every(60, at))
                .id("a")
                .next_run_time(at),
        )
        .await?;
    scheduler
        .add_job(
            JobSpec::new(record.call("p".into()), every(60, at))
                .id("p")
                .paused(),
        )
        .await?;
    let raw = raw_collection(&server_url(), &name).await?;
    let a = raw
        .find_one(doc! { "_id": "a" })
        .await?
        .expect("job a is stored");
    assert_eq!(
        a.get("next_run_time"),
        Some(&Bson::Int64(at.timestamp_micros()))
    );
    assert_eq!(
        a.get_str("next_run_time_text")?,
        "2100-01-01T00:00:00.123456Z"
    );
    assert!(matches!(a.get("revision"), Some(Bson::Int64(r)) if *r > 0));
    let state: serde_json::Value = serde_json::from_str(a.get_str("job_state")?)?;
    assert_eq!(state["id"], "a");
    // Paused: an explicit null, not a missing field.
    let p = raw
        .find_one(doc! { "_id": "p" })
        .await?
        .expect("job p is stored");
    assert_eq!(p.get("next_run_time"), Some(&Bson::Null));
    assert_eq!(p.get("next_run_time_text"), Some(&Bson::Null));
    // The run-time index exists (by its keys: nx-27017 names indexes its own way).
    let mut indexes = raw.list_indexes().await?;
    let mut keys = Vec::new();
    while indexes.advance().await? {
        keys.push(indexes.deserialize_current()?.keys);
    }
    assert!(keys.contains(&doc! { "next_run_time": 1 }), "{keys:?}");
    scheduler.shutdown(false).await?;
    drop_collection(&name).await
}

#[tokio::test]
async fn numbers_are_read_however_a_tool_stored_them() -> anyhow::Result<()> {
    common::require_server().await?;
    let name = unique("numbers");
    let (scheduler, record) = scheduler_on(builder(&name).build()?, None);
    scheduler.start_paused().await?;
    let job = scheduler
        .add_job(
            JobSpec::new(record.call("a".into()), every(60, t(0)))
                .id("a")
                .next_run_time(t(0)),
        )
        .await?;
    let raw = raw_collection(&server_url(), &name).await?;
    let mut a = raw.find_one(doc! { "_id": "a" }).await?.expect("stored");
    // What the mongo shell writes for a bare number: a double; and a small revision as Int32.
    a.insert(
        "next_run_time",
        Bson::Double(t(120).timestamp_micros() as f64),
    );
    a.insert("revision", Bson::Int32(7));
    raw.replace_one(doc! { "_id": "a" }, a).await?;
    let read = scheduler.get_job("a", None).await?.expect("still readable");
    assert_eq!(read.next_run_time(), Some(t(120)));
    assert_eq!(read.revision(), 7);
    assert_ne!(read.revision(), job.revision());
    // A conditional write against the Int32 revision applies.
    scheduler.pause_job("a", None).await?;
    let paused = raw.find_one(doc! { "_id": "a" }).await?.expect("stored");
    assert_eq!(paused.get("next_run_time"), Some(&Bson::Null));
    scheduler.shutdown(false).await?;
    drop_collection(&name).await
}

#[tokio::test]
async fn documents_of_the_wrong_shape_are_skipped_reported_and_left_alone() -> anyhow::Result<()> {
    common::require_server().await?;
    let name = unique("shapes");
    let (scheduler, record) = scheduler_on(builder(&name).build()?, None);
    let mut faults = scheduler.subscribe(EventMask::JOB_FAULT);
    scheduler.start_paused().await?;
    scheduler
        .add_job(
            JobSpec::new(record.call("ok".into()), every(60, t(0)))
                .id("ok")
                .next_run_time(t(0)),
        )
        .await?;
    let raw = raw_collection(&server_url(), &name).await?;
    let good = raw.find_one(doc! { "_id": "ok" }).await?.expect("stored");
    let mut text_time = good.clone();
    text_time.insert("_id", "text_time");
    text_time.insert("next_run_time", "tomorrow");
    let mut object_state = good.clone();
    object_state.insert("_id", "object_state");
    object_state.insert("job_state", doc! { "id": "object_state" });
    raw.insert_many([text_time.clone(), object_state.clone()])
        .await?;

    let jobs = scheduler.get_jobs(None).await?;
    assert_eq!(jobs.iter().map(|j| j.id()).collect::<Vec<_>>(), ["ok"]);
    let mut skipped = Vec::new();
    for _ in 0..2 {
        let id = next_event(&mut faults, Duration::from_secs(10), |e| match e {
            Event::JobFault(f) if f.action == FaultAction::Skipped => Some(f.job_id.to_string()),
            _ => None,
        })
        .await?;
        skipped.push(id);
    }
    skipped.sort();
    assert_eq!(skipped, ["object_state", "text_time"]);
    // Untouched.
    assert_eq!(
        raw.find_one(doc! { "_id": "text_time" }).await?,
        Some(text_time)
    );
    assert_eq!(
        raw.find_one(doc! { "_id": "object_state" }).await?,
        Some(object_state)
    );
    scheduler.shutdown(false).await?;
    drop_collection(&name).await
}

// ---------------------------------------------------------------------------------------------
// Configuration

#[tokio::test]
async fn a_configuration_document_builds_a_mongodb_store() -> anyhow::Result<()> {
    common::require_server().await?;
    let name = unique("config");
    let config = SchedulerConfig::from_toml(&format!(
        r#"
        [jobstores.default]
        type = "mongodb"
        url = "{}"
        database = "{TEST_DATABASE}"
        collection = "{name}"
        max_pool_size = 2
        [executors.default]
        type = "tokio"
        "#,
        server_url()
    ))?;
    let components = Components::new();
    jobstore_mongo::register(&components);
    executors::register(&components);
    let (registry, record) = registry();
    let scheduler = Scheduler::builder()
        .registry(registry)
        .triggers(triggers::registry())
        .config(&config, &components)?
        .build()?;
    scheduler.start_paused().await?;
    scheduler
        .add_job(
            JobSpec::new(record.call("x".into()), every(60, t(0)))
                .id("x")
                .next_run_time(t(0)),
        )
        .await?;
    let raw = raw_collection(&server_url(), &name).await?;
    assert_eq!(raw.count_documents(doc! { "_id": "x" }).await?, 1);
    scheduler.shutdown(false).await?;

    for (options, says) in [
        (r#"collection = "$where""#, "collection name"),
        (r#"database = "a/b""#, "database name"),
        (r#"colection = "jobs""#, "no option"),
        (r#"url = "http://example.com""#, "mongodb://"),
        ("max_pool_size = 0", "max_pool_size"),
    ] {
        let config = SchedulerConfig::from_toml(&format!(
            "[jobstores.default]\ntype = \"mongodb\"\n{options}\n"
        ))?;
        let error = Scheduler::builder()
            .config(&config, &components)
            .err()
            .unwrap_or_else(|| panic!("{options} was accepted"));
        assert_eq!(error.kind(), ErrorKind::Config, "{options}: {error}");
        assert!(error.to_string().contains(says), "{options}: {error}");
    }
    drop_collection(&name).await
}

#[test]
fn credentials_never_show() {
    let secret = "pa55-w0rd-not-shown";
    let url = format!("mongodb://ada:{secret}@127.0.0.1:1/?directConnection=true");
    let store = MongoJobStore::builder(&url).build().expect("valid options");
    let debug = format!("{store:?}");
    assert!(!debug.contains(secret), "{debug}");
    assert!(debug.contains("ada:***@127.0.0.1:1"), "{debug}");
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let error = runtime.block_on(async {
        let store = MongoJobStore::builder(&url)
            .connect_timeout(Duration::from_millis(300))
            .build()
            .expect("valid options");
        let (scheduler, _) = scheduler_on(store, None);
        scheduler
            .start()
            .await
            .expect_err("nothing listens on port 1")
    });
    let shown = format!(
        "{error} {error:?} {:?}",
        std::error::Error::source(&error).map(|s| s.to_string())
    );
    assert!(!shown.contains(secret), "{shown}");
    assert_eq!(error.kind(), ErrorKind::Backend, "{shown}");
    assert!(error.is_temporary(), "{shown}");
    assert!(shown.contains("***"), "{shown}");
}

// ---------------------------------------------------------------------------------------------
// Restart and records of this version

#[tokio::test]
async fn a_new_scheduler_carries_on_by_the_misfire_rules() -> anyhow::Result<()> {
    common::require_server().await?;
    let name = unique("restart");
    let clock = ManualClock::new(t(0));
    {
        let (first, record) = scheduler_on(builder(&name).build()?, Some(clock.clone()));
        first.start_paused().await?;
        let grace = Some(Duration::from_secs(25));
        for (id, coalesce) in [("coalesced", true), ("each", false)] {
            first
                .add_job(
                    JobSpec::new(record.call(id.into()), every(10, t(10)))
                        .id(id)
                        .coalesce(coalesce)
                        .misfire_grace_time(grace),
                )
                .await?;
        }
        first
            .add_job(
                JobSpec::new(
                    record.call("late".into()),
                    triggers::DateTrigger::new(t(20)),
                )
                .id("late")
                .misfire_grace_time(grace),
            )
            .await?;
        // Dropped without running anything, as a killed process would be.
        first.shutdown(false).await?;
    }
    clock.set(t(100));
    let (second, _) = scheduler_on(builder(&name).build()?, Some(clock.clone()));
    let mut events = second.subscribe(EventMask::JOB_EXECUTED | EventMask::JOB_MISSED);
    second.start().await?;
    let mut executed: Vec<(String, i64)> = Vec::new();
    let mut missed: Vec<(String, i64)> = Vec::new();
    // coalesced: one run (for t=100); each: 80, 90, 100 within the 25 s grace; late: missed.
    while executed.len() < 4 || !missed.iter().any(|(id, _)| id == "late") {
        let (kind, id, at) = next_event(&mut events, Duration::from_secs(20), |e| match e {
            Event::JobExecuted(r) => Some(("run", r.job_id.to_string(), r.scheduled_run_time)),
            Event::JobMissed(r) => Some(("missed", r.job_id.to_string(), r.scheduled_run_time)),
            _ => None,
        })
        .await?;
        let secs = (at - t(0)).num_seconds();
        match kind {
            "run" => executed.push((id, secs)),
            _ => missed.push((id, secs)),
        }
    }
    executed.sort();
    assert_eq!(
        executed,
        [
            ("coalesced".to_owned(), 100),
            ("each".to_owned(), 80),
            ("each".to_owned(), 90),
            ("each".to_owned(), 100)
        ]
    );
    let jobs = second.get_jobs(None).await?;
    let next: Vec<_> = jobs
        .iter()
        .map(|j| (j.id().to_owned(), j.next_run_time()))
        .collect();
    assert_eq!(
        next,
        [
            ("coalesced".to_owned(), Some(t(110))),
            ("each".to_owned(), Some(t(110)))
        ]
    );
    second.shutdown(true).await?;
    drop_collection(&name).await
}

/// Documents written by version 0.1 of this store (tests/fixtures/documents-v1.json): a
/// later version must read them.
#[tokio::test]
async fn documents_written_by_an_earlier_version_are_read() -> anyhow::Result<()> {
    common::require_server().await?;
    let name = unique("fixture");
    let text = include_str!("fixtures/documents-v1.json");
    let fixture: Vec<serde_json::Value> = serde_json::from_str(text)?;
    let raw = raw_collection(&server_url(), &name).await?;
    let docs: Vec<Document> = fixture
        .iter()
        .map(document_of)
        .collect::<anyhow::Result<_>>()?;
    raw.insert_many(docs).await?;
    let clock = ManualClock::new(t(0));
    let (scheduler, _) = scheduler_on(builder(&name).build()?, Some(clock.clone()));
    let mut faults = scheduler.subscribe(EventMask::JOB_FAULT);
    scheduler.start_paused().await?;
    let jobs = scheduler.get_jobs(None).await?;
    let summary: Vec<_> = jobs
        .iter()
        .map(|j| {
            (
                j.id().to_owned(),
                j.next_run_time(),
                j.trigger().to_string(),
            )
        })
        .collect();
    assert_eq!(summary.len(), fixture.len(), "{summary:?}");
    for (job, doc) in jobs.iter().zip(sorted_by_run_time(&fixture)) {
        assert_eq!(job.id(), doc["_id"].as_str().unwrap_or_default());
        let micros = doc["next_run_time"].as_i64();
        assert_eq!(
            job.next_run_time().map(|t| t.timestamp_micros()),
            micros,
            "{summary:?}"
        );
        assert_eq!(job.revision(), doc["revision"].as_u64().unwrap_or_default());
    }
    assert!(
        faults.try_recv().is_none(),
        "a fixture record was not readable"
    );
    scheduler.shutdown(false).await?;
    drop_collection(&name).await
}

fn sorted_by_run_time(fixture: &[serde_json::Value]) -> Vec<&serde_json::Value> {
    let mut docs: Vec<_> = fixture.iter().collect();
    docs.sort_by_key(|d| {
        let at = d["next_run_time"].as_i64();
        (
            at.is_none(),
            at,
            d["_id"].as_str().unwrap_or_default().to_owned(),
        )
    });
    docs
}

/// A fixture entry as the document the store wrote (integers as Int64).
fn document_of(value: &serde_json::Value) -> anyhow::Result<Document> {
    let mut doc = Document::new();
    let object = value
        .as_object()
        .ok_or_else(|| anyhow::anyhow!("not an object: {value}"))?;
    for (key, v) in object {
        let bson = match v {
            serde_json::Value::Null => Bson::Null,
            serde_json::Value::String(s) => Bson::String(s.clone()),
            serde_json::Value::Number(n) => {
                Bson::Int64(n.as_i64().ok_or_else(|| anyhow::anyhow!("{n}"))?)
            }
            other => anyhow::bail!("unexpected fixture value {other}"),
        };
        doc.insert(key, bson);
    }
    Ok(doc)
}

// ---------------------------------------------------------------------------------------------
// A server that goes away, and one that hangs

fn private_store(server: &PrivateServer) -> anyhow::Result<MongoJobStore> {
    Ok(MongoJobStore::builder(&server.url())
        .database(TEST_DATABASE)
        .collection("jobs")
        .max_pool_size(2)
        .connect_timeout(Duration::from_millis(500))
        .call_timeout(Duration::from_secs(1))
        .build()?)
}

/// Waits for a store failure event and checks it is a temporary backend error.
async fn expect_store_error(events: &mut EventStream) -> anyhow::Result<String> {
    next_event(events, Duration::from_secs(30), |e| match e {
        Event::SchedulerError(err) if err.jobstore.is_some() => {
            assert_eq!(err.error.kind(), ErrorKind::Backend, "{}", err.error);
            assert!(err.error.is_temporary(), "not temporary: {}", err.error);
            Some(err.error.to_string())
        }
        _ => None,
    })
    .await
}

/// Runs `every` second from the start until the server is back: each run after the outage
/// is evidence the scheduler caught up.
async fn outage_case(hang: bool) -> anyhow::Result<()> {
    let mut server = PrivateServer::start();
    let (scheduler, record) = scheduler_on(private_store(&server)?, None);
    let mut events = scheduler.subscribe(EventMask::ALL);
    scheduler.start().await?;
    let start = scheduler.clock().now() + TimeDelta::milliseconds(200);
    scheduler
        .add_job(
            JobSpec::new(record.call("tick".into()), every(1, start))
                .id("tick")
                .coalesce(true)
                .misfire_grace_time(Some(Duration::from_secs(30))),
        )
        .await?;
    let is_run =
        |e: &Event| matches!(e, Event::JobExecuted(r) if &*r.job_id == "tick").then_some(());
    next_event(&mut events, Duration::from_secs(20), is_run).await?;

    if hang {
        server.hang();
    } else {
        server.kill();
    }
    let message = expect_store_error(&mut events).await?;
    if hang {
        assert!(message.contains("did not answer within"), "{message}");
    }
    assert_eq!(scheduler.state(), SchedulerState::Running);
    let direct = scheduler
        .get_jobs(None)
        .await
        .expect_err("the server is gone");
    assert_eq!(direct.kind(), ErrorKind::Backend, "{direct}");
    assert!(direct.is_temporary(), "{direct}");
    // Stay down across several retries.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(scheduler.state(), SchedulerState::Running);

    let back = scheduler.clock().now();
    if hang {
        server.resume();
    } else {
        server.restart();
    }
    // The job kept in the store runs again once the server answers.
    next_event(&mut events, Duration::from_secs(60), |e| match e {
        Event::JobExecuted(r)
            if &*r.job_id == "tick" && r.scheduled_run_time >= back - TimeDelta::seconds(1) =>
        {
            Some(())
        }
        _ => None,
    })
    .await?;
    let jobs = scheduler.get_jobs(None).await?;
    assert_eq!(jobs.len(), 1);
    scheduler.shutdown(false).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_goes_away_fails_calls_temporarily_and_the_jobs_run_when_it_is_back()
-> anyhow::Result<()> {
    outage_case(false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_hangs_times_out_calls_and_the_jobs_run_when_it_answers() -> anyhow::Result<()>
{
    outage_case(true).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_keeps_its_jobs() -> anyhow::Result<()> {
    let mut server = PrivateServer::start();
    let store = private_store(&server)?;
    let (scheduler, record) = scheduler_on(store, None);
    scheduler.start_paused().await?;
    let ids: Vec<String> = (0..20).map(|i| format!("job-{i:02}")).collect();
    let specs: Vec<JobSpec> = ids
        .iter()
        .map(|id| {
            JobSpec::new(record.call(id.clone()), every(60, t(0)))
                .id(id.as_str())
                .next_run_time(t(0))
        })
        .collect();
    for added in scheduler.add_jobs(specs).await? {
        added?;
    }
    server.restart();
    // The driver notices the new server by itself; a call may fail once meanwhile.
    let mut listed = None;
    for _ in 0..20 {
        match scheduler.get_jobs(None).await {
            Ok(jobs) => {
                listed = Some(jobs);
                break;
            }
            Err(e) => {
                assert!(e.is_temporary(), "{e}");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
    let listed = listed.expect("the restarted server answers");
    assert_eq!(
        listed.iter().map(|j| j.id().to_owned()).collect::<Vec<_>>(),
        ids
    );
    assert!(server.data_dir().exists());
    scheduler.shutdown(false).await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Several schedulers on one collection

/// Runs `body` on a store started (on the default codec) on a fresh collection named after
/// `prefix`, with the collection's name; drops the collection whatever the outcome.
async fn with_started_store<F, Fut>(prefix: &str, body: F) -> anyhow::Result<()>
where
    F: FnOnce(MongoJobStore, String) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    use scheduler_core::{EventBus, JobCodec, JobStore, StoreContext};
    common::require_server().await?;
    let collection = unique(prefix);
    let outcome = async {
        let store = builder(&collection).build()?;
        let ctx = StoreContext::new("mongo", JobCodec::default(), EventBus::new());
        store.start(ctx).await?;
        body(store, collection.clone()).await
    }
    .await;
    drop_collection(&collection).await?;
    outcome
}

/// Runs in flight live on the job's document, survive its later writes (a fire, a change),
/// and leave with the run; the claim fields leave with any write.
#[tokio::test]
async fn runs_in_flight_survive_later_writes_of_their_job() -> anyhow::Result<()> {
    use scheduler_core::JobStore;
    use scheduler_core::store::{Claim, RecordFireCommit, RecordStore, StoredRecord};
    with_started_store("inflight_doc", |store, collection| async move {
        let records = store.records();
        let row = StoredRecord {
            id: "j".to_owned(),
            next_run_time: Some(t(0)),
            revision: 1,
            json: "{}".to_owned(),
        };
        records.insert(row.clone()).await?;
        let claimed = records
            .claim_due(t(0), 10, &Claim::new("n1", t(30)))
            .await?;
        anyhow::ensure!(claimed.len() == 1);
        let fire = |revision: u64, at: i64| RecordFireCommit {
            id: "j".into(),
            due_at: t(at),
            expected_revision: revision,
            write: Some(StoredRecord {
                next_run_time: Some(t(at + 60)),
                revision: revision + 1,
                ..row.clone()
            }),
            inflight: Some(("n1".to_owned(), vec![t(at)])),
            max_inflight: None,
        };
        records.commit_fires(&[fire(1, 0)]).await?;
        records.commit_fires(&[fire(2, 60)]).await?;
        records
            .update(
                StoredRecord {
                    revision: 4,
                    ..row.clone()
                },
                3,
            )
            .await?;
        let raw = raw_collection(&server_url(), &collection).await?;
        let doc = raw
            .find_one(doc! { "_id": "j" })
            .await?
            .ok_or_else(|| anyhow::anyhow!("the job is gone"))?;
        anyhow::ensure!(
            !doc.contains_key("claimed_by") && !doc.contains_key("claim_token"),
            "a write left the claim: {doc}"
        );
        let inflight = doc.get_document("inflight")?;
        anyhow::ensure!(inflight.len() == 2, "both runs in flight: {doc}");
        let mut runs = records.inflight_runs().await?;
        runs.sort_by_key(|r| r.run_time);
        anyhow::ensure!(
            runs.iter()
                .map(|r| (r.run_time, r.node.as_str()))
                .collect::<Vec<_>>()
                == [(t(0), "n1"), (t(60), "n1")],
            "{runs:?}"
        );
        records.finish_run("j", t(0)).await?;
        anyhow::ensure!(records.inflight_runs().await?.len() == 1);
        store.shutdown().await?;
        raw.client().clone().shutdown().await;
        anyhow::Ok(())
    })
    .await
}

/// The first claim round reads due documents without the claim condition and picks the
/// claimable ones itself: a page full of another node's claims must not hide the free
/// documents behind it, a node's own claim is claimable again, and a `claim_until` that is no
/// number (an operator's edit) holds the document as the server's filter does.
#[tokio::test]
async fn claims_look_past_a_page_of_held_documents() -> anyhow::Result<()> {
    use scheduler_core::JobStore;
    use scheduler_core::store::{Claim, RecordStore, StoredRecord};
    with_started_store("claim_pages", |store, collection| async move {
        let records = store.records();
        for (i, id) in ["a", "b", "c", "d", "e"].into_iter().enumerate() {
            let row = StoredRecord {
                id: id.to_owned(),
                next_run_time: Some(t(i64::try_from(i)?)),
                revision: 1,
                json: "{}".to_owned(),
            };
            records.insert(row).await?;
        }
        let ids = |rows: &[StoredRecord]| rows.iter().map(|r| r.id.clone()).collect::<Vec<_>>();
        let held = records.claim_due(t(9), 2, &Claim::new("n1", t(30))).await?;
        anyhow::ensure!(ids(&held) == ["a", "b"], "n1: {:?}", ids(&held));
        let raw = raw_collection(&server_url(), &collection).await?;
        let odd = doc! { "$set": { "claimed_by": "n9", "claim_until": "later" } };
        raw.update_one(doc! { "_id": "c" }, odd).await?;
        // n2's first page is a, b (held), then c (held by an odd claim): d and e come after.
        let next = records.claim_due(t(9), 2, &Claim::new("n2", t(30))).await?;
        anyhow::ensure!(ids(&next) == ["d", "e"], "n2: {:?}", ids(&next));
        // n1 takes its own claims again, and nothing held by n2 or the odd claim.
        let again = records
            .claim_due(t(9), 10, &Claim::new("n1", t(30)))
            .await?;
        anyhow::ensure!(ids(&again) == ["a", "b"], "n1 again: {:?}", ids(&again));
        store.shutdown().await?;
        raw.client().clone().shutdown().await;
        anyhow::Ok(())
    })
    .await
}

/// Two schedulers on one collection: a job added through one (started paused, so it runs
/// nothing) runs on the other, which learns of it by polling at its `max_wait` (2 s here; this
/// store has no push). Prints the delay from the run time to the run, at most about
/// `max_wait` plus one pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_added_on_one_scheduler_runs_on_another_by_polling() -> anyhow::Result<()> {
    common::require_server().await?;
    let collection = unique("cross_node");
    let outcome = async {
        let build = |node: &str| -> anyhow::Result<(Scheduler, JobFunction<String>)> {
            let (registry, record) = registry();
            let scheduler = Scheduler::builder()
                .timezone(scheduler_core::chrono_tz::UTC)
                .registry(registry)
                .triggers(triggers::registry())
                .jobstore("default", builder(&collection).build()?)
                .executor("default", executors::TokioExecutor::new())
                .max_wait(Duration::from_secs(2))
                .node_id(node)
                .build()?;
            Ok((scheduler, record))
        };
        let (adder, record) = build("adder")?;
        let (runner, _) = build("runner")?;
        let mut events = runner.subscribe(EventMask::JOB_EXECUTED);
        runner.start().await?;
        adder.start_paused().await?;
        let clock = scheduler_core::SystemClock;
        let mut delays = Vec::new();
        for i in 0..3 {
            // Added at different points of the runner's sleep.
            tokio::time::sleep(Duration::from_millis(700 + 450 * i)).await;
            let at = scheduler_core::Clock::now(&clock) + Duration::from_millis(100);
            let id = format!("hop{i}");
            adder
                .add_job(
                    JobSpec::new(record.call(id.clone()), triggers::DateTrigger::new(at))
                        .id(id.clone())
                        // Later than the default second: polling may take `max_wait`.
                        .misfire_grace_time(Some(Duration::from_secs(10))),
                )
                .await?;
            next_event(&mut events, Duration::from_secs(20), |e| match e {
                Event::JobExecuted(x) if *x.job_id == *id => Some(()),
                _ => None,
            })
            .await?;
            delays.push((scheduler_core::Clock::now(&clock) - at).num_milliseconds());
        }
        println!(
            "jobs added on another scheduler ran {delays:?} ms after their run times \
             (polling, max_wait 2 s)"
        );
        runner.shutdown(true).await?;
        adder.shutdown(false).await?;
        anyhow::Ok(())
    }
    .await;
    drop_collection(&collection).await?;
    drop_collection(&format!("{collection}_nodes")).await?;
    outcome
}

/// The store asks the server `hello` at start and pushes wake-ups only where the answer shows
/// change streams (a replica set or a sharded cluster's router). On nx-27017 (standalone):
/// no stream, no error, polling (the test above); on a replica set given as
/// `SCHEDULER_TEST_MONGO_URL`, `notifies`, and the conformance suite's wake-up case runs.
#[tokio::test]
async fn change_streams_are_used_exactly_when_hello_shows_a_replica_set_or_a_router()
-> anyhow::Result<()> {
    common::require_server().await?;
    let collection = unique("hello");
    let outcome = async {
        let raw = raw_collection(&server_url(), &collection).await?;
        let hello = raw
            .client()
            .database("admin")
            .run_command(doc! { "hello": 1 })
            .await?;
        let expected = hello.get_str("setName").is_ok_and(|name| !name.is_empty())
            || hello.get_str("msg") == Ok("isdbgrid");
        let store: std::sync::Arc<dyn scheduler_core::DynJobStore> =
            std::sync::Arc::new(builder(&collection).build()?);
        let (registry, _) = registry();
        let scheduler = Scheduler::builder()
            .registry(registry)
            .jobstore_dyn("default", store.clone())
            .executor("default", executors::TokioExecutor::new())
            .build()?;
        assert!(
            !store.capabilities().notifies,
            "before start the store has not asked the server"
        );
        let mut errors = scheduler.subscribe(EventMask::SCHEDULER_ERROR);
        scheduler.start_paused().await?;
        let capabilities = store.capabilities();
        assert!(capabilities.cluster);
        assert_eq!(
            capabilities.notifies, expected,
            "hello answered {hello}: change streams {expected}"
        );
        scheduler.shutdown(true).await?;
        assert!(
            errors.try_recv().is_none(),
            "starting on this server reported an error"
        );
        anyhow::Ok(())
    }
    .await;
    drop_collection(&collection).await?;
    drop_collection(&format!("{collection}_nodes")).await?;
    outcome
}

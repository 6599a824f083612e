//! The Redis job store against a real server: the shared conformance suite, and what only
//! this store has. The server is `SCHEDULER_TEST_REDIS_URL` (default
//! `redis://127.0.0.1:6379/`); the outage tests start private servers of their own.

mod common;
mod jobs_tool;
mod start_requests;
#[cfg(feature = "tls")]
mod tls;
mod wake_ups;

use jobstore_redis::RedisJobStore;
use scheduler_core::testkit::Namespace;

/// Each namespace is a key prefix; each call is a new client (a second "process").
async fn setup(ns: Namespace) -> anyhow::Result<RedisJobStore> {
    common::namespaced_store(&ns).await
}

scheduler_core::jobstore_conformance!(setup, persistent);

use std::time::Duration;

use common::{Calls, PrivateRedis, drain_events, next_event, raw_client, scheduler_on};
use jobstore_redis::RedisRecords;
use scheduler_core::chrono::{DateTime, Utc};
use scheduler_core::testkit::{ManualClock, StepTrigger};
use scheduler_core::{
    Components, ErrorKind, Event, EventBus, EventMask, JobCodec, JobSpec, JobStore,
    SchedulerConfig, SchedulerState, StoreContext,
};

/// The instant the scheduler tests start at.
fn t(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_225_600 + secs, 0).unwrap()
}

fn every_minute_from(start: DateTime<Utc>) -> StepTrigger {
    StepTrigger {
        start,
        step_secs: 60,
    }
}

/// Runs `test` on a multi-threaded runtime with a fresh namespace, cleaning its keys up
/// whatever the outcome.
fn with_namespace<F, Fut>(name: &str, test: F)
where
    F: FnOnce(Namespace) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let runtime = common::runtime().unwrap();
    let ns = Namespace::new(name);
    runtime.block_on(async {
        let outcome = test(ns.clone()).await;
        let url = common::redis_url();
        let prefix = common::prefix_of(&ns);
        let cleaned = async {
            let mut connection = raw_client(&url).await?;
            let keys = [
                "jobs",
                "run_times",
                "revisions",
                "claims",
                "inflight",
                "nodes",
            ]
            .map(|k| format!("{prefix}{k}"));
            let _: i64 = redis::cmd("DEL")
                .arg(&keys)
                .query_async(&mut connection)
                .await?;
            anyhow::Ok(())
        }
        .await;
        outcome.unwrap();
        cleaned.unwrap();
    });
}

#[test]
fn a_configuration_document_builds_a_redis_store_whose_records_are_readable_json() {
    with_namespace("config_document", |ns| async move {
        let url = common::redis_url();
        let prefix = common::prefix_of(&ns);
        let config = SchedulerConfig::from_toml(&format!(
            r#"
            [jobstores.default]
            type = "redis"
            url = "{url}"
            prefix = "{prefix}"
            response_timeout = 2.5
            "#
        ))?;
        let components = Components::new();
        jobstore_redis::register(&components);
        let calls = Calls::default();
        let (functions, triggers, record) = common::codec_parts(&calls);
        let scheduler = scheduler_core::Scheduler::builder()
            .registry(functions)
            .triggers(triggers)
            .config(&config, &components)?
            .executor("default", executors::TokioExecutor::new())
            .build()?;
        scheduler.start_paused().await?;
        let at = t(3600);
        scheduler
            .add_job(
                JobSpec::new(record.call("hello".into()), every_minute_from(at))
                    .id("configured")
                    .next_run_time(at),
            )
            .await?;
        scheduler.shutdown(false).await?;

        // What an operator sees with redis-cli: JSON in the hash, microseconds in the set.
        let mut redis = raw_client(&url).await?;
        let json: String = redis::cmd("HGET")
            .arg(format!("{prefix}jobs"))
            .arg("configured")
            .query_async(&mut redis)
            .await?;
        let record: serde_json::Value = serde_json::from_str(&json)?;
        assert_eq!(record["id"], "configured");
        let score: String = redis::cmd("ZSCORE")
            .arg(format!("{prefix}run_times"))
            .arg("configured")
            .query_async(&mut redis)
            .await?;
        assert_eq!(score, at.timestamp_micros().to_string());

        let bad = SchedulerConfig::from_toml(
            "[jobstores.default]\ntype = \"redis\"\ntablename = \"jobs\"\n",
        )?;
        let err = scheduler_core::Scheduler::builder()
            .config(&bad, &components)
            .expect_err("an unknown option is refused");
        assert_eq!(err.kind(), ErrorKind::Config);
        Ok(())
    });
}

/// Adds jobs through one scheduler, stops it (shut down, or dropped as a killed process
/// would leave them), and starts another on the same keys later: each job carries on by
/// the misfire and coalescing rules.
async fn restart_carries_on(ns: Namespace, shut_down: bool) -> anyhow::Result<()> {
    let calls = Calls::default();
    let clock = ManualClock::new(t(0));
    let store = common::namespaced_store(&ns).await?;
    let (first, record) = scheduler_on(store, &clock, &calls)?;
    first.start().await?;
    let hour = Some(Duration::from_secs(3600));
    for spec in [
        JobSpec::new(record.call("coalesced".into()), every_minute_from(t(60)))
            .id("coalesced")
            .coalesce(true)
            .misfire_grace_time(hour),
        JobSpec::new(record.call("each".into()), every_minute_from(t(60)))
            .id("each")
            .coalesce(false)
            .misfire_grace_time(hour),
        JobSpec::new(
            record.call("missed".into()),
            triggers::DateTrigger::new(t(60)),
        )
        .id("missed")
        .misfire_grace_time(Some(Duration::from_secs(30))),
        JobSpec::new(record.call("paused".into()), every_minute_from(t(60)))
            .id("paused")
            .paused(),
    ] {
        first.add_job(spec).await?;
    }
    if shut_down {
        first.shutdown(true).await?;
    }
    drop(first);

    // Later, another process: 250 s after the first runs were due.
    let clock = ManualClock::new(t(310));
    let store = common::namespaced_store(&ns).await?;
    let (second, _) = scheduler_on(store, &clock, &calls)?;
    let mut events = second.subscribe(EventMask::JOB_EXECUTED | EventMask::JOB_MISSED);
    second.start().await?;
    let mut runs: Vec<(String, DateTime<Utc>, bool)> = Vec::new();
    // 1 coalesced run, 5 runs of "each" (60 s to 300 s), 1 missed run.
    while runs.len() < 7 {
        let e = next_event(&mut events, EventMask::JOB_EXECUTED | EventMask::JOB_MISSED).await?;
        if let Event::JobExecuted(run) | Event::JobMissed(run) = &e {
            let executed = matches!(e, Event::JobExecuted(_));
            runs.push((run.job_id.to_string(), run.scheduled_run_time, executed));
        }
    }
    let extra = drain_events(&mut events, EventMask::ALL).await;
    assert!(
        extra.is_empty(),
        "more runs than the rules allow: {extra:?}"
    );
    runs.sort();
    let mut expected = vec![
        ("coalesced".to_owned(), t(300), true),
        ("missed".to_owned(), t(60), false),
    ];
    expected.extend((1..=5).map(|m| ("each".to_owned(), t(60 * m), true)));
    expected.sort();
    assert_eq!(runs, expected);

    let jobs = second.get_jobs(None).await?;
    let next: Vec<(&str, Option<DateTime<Utc>>)> =
        jobs.iter().map(|j| (j.id(), j.next_run_time())).collect();
    assert_eq!(
        next,
        [
            ("coalesced", Some(t(360))),
            ("each", Some(t(360))),
            ("paused", None)
        ]
    );
    second.shutdown(true).await?;
    Ok(())
}

#[test]
fn after_a_shutdown_a_new_scheduler_carries_on_by_the_misfire_rules() {
    with_namespace("restart_after_shutdown", |ns| restart_carries_on(ns, true));
}

#[test]
fn after_a_kill_a_new_scheduler_carries_on_by_the_misfire_rules() {
    with_namespace("restart_after_kill", |ns| restart_carries_on(ns, false));
}

#[test]
fn rows_that_are_no_jobs_are_reported_skipped_and_left_untouched() {
    with_namespace("foreign_rows", |ns| async move {
        let url = common::redis_url();
        let prefix = common::prefix_of(&ns);
        let (jobs, run_times, revisions) = (
            format!("{prefix}jobs"),
            format!("{prefix}run_times"),
            format!("{prefix}revisions"),
        );
        let calls = Calls::default();
        let (functions, triggers, record) = common::codec_parts(&calls);
        let codec = JobCodec::new(functions, triggers);
        let bus = EventBus::new();
        let mut faults = bus.subscribe(EventMask::JOB_FAULT);
        let store = common::namespaced_store(&ns).await?;
        store
            .start(StoreContext::new("redis", codec.clone(), bus.clone()))
            .await?;
        let good = JobSpec::new(record.call("good".into()), every_minute_from(t(100)))
            .id("good")
            .next_run_time(t(100))
            .into_job(&Default::default(), t(0))?;
        store.add_job(good).await?;
        let good_json: String = {
            let mut redis = raw_client(&url).await?;
            redis::cmd("HGET")
                .arg(&jobs)
                .arg("good")
                .query_async(&mut redis)
                .await?
        };

        // Written by hand, as an operator or another program might.
        let mut redis = raw_client(&url).await?;
        let micros = |s: i64| t(s).timestamp_micros();
        let mut pipe = redis::pipe();
        pipe.zadd(&run_times, "orphan", micros(10))
            .hset(
                &jobs,
                "bad-revision",
                good_json.replace("\"good\"", "\"bad-revision\""),
            )
            .hset(&revisions, "bad-revision", "seven")
            .zadd(&run_times, "bad-revision", micros(20))
            .hset(&jobs, "not-utf8", &b"{\"id\": \"\xff\"}"[..])
            .zadd(&run_times, "not-utf8", micros(30))
            .hset(
                &jobs,
                "fractional",
                good_json.replace("\"good\"", "\"fractional\""),
            )
            .zadd(&run_times, "fractional", micros(40) as f64 + 0.5);
        let () = pipe.query_async(&mut redis).await?;
        let before = dump(&mut redis, &prefix).await?;

        // Every bad row is reported once, none fills the batch, the good job is handed out.
        let due = store.get_due_jobs(t(200), 1).await?;
        assert_eq!(
            due.iter().map(|j| j.id()).collect::<Vec<_>>(),
            ["good"],
            "the good job behind four bad rows"
        );
        let mut reported: Vec<String> = std::iter::from_fn(|| faults.try_recv())
            .filter_map(|e| match e {
                Event::JobFault(f) => Some(f.job_id.to_string()),
                _ => None,
            })
            .collect();
        reported.sort();
        assert_eq!(
            reported,
            ["bad-revision", "fractional", "not-utf8", "orphan"]
        );
        assert_eq!(store.get_next_run_time().await?, Some(t(100)));
        assert_eq!(store.get_due_jobs(t(200), 10).await?.len(), 1);
        assert!(faults.try_recv().is_none(), "each bad row is reported once");
        assert_eq!(dump(&mut redis, &prefix).await?, before, "left untouched");

        // An operator removes them through the store like any job.
        for id in ["orphan", "bad-revision", "not-utf8", "fractional"] {
            store.remove_job(id).await?;
        }
        assert_eq!(store.get_all_jobs().await?.len(), 1);
        store.shutdown().await?;
        Ok(())
    });
}

/// The three keys' contents: jobs, revisions, run times.
type Dump = (
    Vec<(Vec<u8>, Vec<u8>)>,
    Vec<(Vec<u8>, Vec<u8>)>,
    Vec<(Vec<u8>, f64)>,
);

/// Every field of the three keys, for comparing before and after.
async fn dump(redis: &mut redis::aio::MultiplexedConnection, prefix: &str) -> anyhow::Result<Dump> {
    let mut pipe = redis::pipe();
    pipe.hgetall(format!("{prefix}jobs"))
        .hgetall(format!("{prefix}revisions"))
        .zrange_withscores(format!("{prefix}run_times"), 0, -1);
    let (mut jobs, mut revisions, scores): Dump = pipe.query_async(redis).await?;
    jobs.sort();
    revisions.sort();
    Ok((jobs, revisions, scores))
}

#[test]
fn keys_of_another_type_are_refused_at_start() {
    with_namespace("wrong_type", |ns| async move {
        let url = common::redis_url();
        let prefix = common::prefix_of(&ns);
        let mut redis = raw_client(&url).await?;
        let () = redis::cmd("SET")
            .arg(format!("{prefix}jobs"))
            .arg("someone else's")
            .query_async(&mut redis)
            .await?;
        let store = common::namespaced_store(&ns).await?;
        let err = store
            .start(StoreContext::new(
                "redis",
                JobCodec::default(),
                EventBus::new(),
            ))
            .await
            .expect_err("a string where the jobs hash belongs");
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.to_string().contains("jobs"), "{err}");
        Ok(())
    });
}

/// How the private server is made unavailable.
#[derive(Debug, Clone, Copy)]
enum Outage {
    /// Killed, and started again later from its append-only file.
    Down,
    /// Frozen with SIGSTOP, and continued with SIGCONT.
    Hung,
}

/// A scheduler on a private server that goes away (or hangs) while jobs come due: its
/// calls fail with temporary backend errors naming no password, it keeps running and
/// reports each failed pass, and once the server is back the due jobs run by the misfire
/// rules.
fn a_server_outage_is_survived(outage: Outage) -> anyhow::Result<()> {
    let runtime = common::runtime()?;
    let mut server = PrivateRedis::start()?;
    let password = server.password.clone();
    runtime.block_on(async {
        let calls = Calls::default();
        let clock = ManualClock::new(t(0));
        let store = RedisRecords::builder(server.url())
            .prefix("outage.")
            .response_timeout(Duration::from_secs(1))
            .connection_timeout(Duration::from_secs(1))
            .build()?;
        assert!(!format!("{store:?}").contains(&password));
        let (scheduler, record) = scheduler_on(store, &clock, &calls)?;
        let mut events = scheduler.subscribe(
            EventMask::JOB_EXECUTED | EventMask::JOB_MISSED | EventMask::SCHEDULER_ERROR,
        );
        scheduler.start().await?;
        // Due during the outage: one with room to run late, one without.
        scheduler
            .add_job(
                JobSpec::new(
                    record.call("patient".into()),
                    triggers::DateTrigger::new(t(10)),
                )
                .id("patient")
                .misfire_grace_time(Some(Duration::from_secs(120))),
            )
            .await?;
        scheduler
            .add_job(
                JobSpec::new(
                    record.call("strict".into()),
                    triggers::DateTrigger::new(t(20)),
                )
                .id("strict")
                .misfire_grace_time(Some(Duration::from_secs(5))),
            )
            .await?;

        match outage {
            Outage::Down => server.stop()?,
            Outage::Hung => server.freeze()?,
        }
        clock.set(t(30));
        let Event::SchedulerError(failure) =
            next_event(&mut events, EventMask::SCHEDULER_ERROR).await?
        else {
            unreachable!("filtered by the mask")
        };
        assert_eq!(failure.jobstore.as_deref(), Some("default"));
        let error = &failure.error;
        assert_eq!(error.kind(), ErrorKind::Backend, "{error}");
        assert!(error.is_temporary(), "{error:?}");
        if matches!(outage, Outage::Hung) {
            assert!(error.to_string().contains("did not answer"), "{error}");
        }
        assert_no_password(error, &password);
        assert_eq!(scheduler.state(), SchedulerState::Running);
        assert!(scheduler.health().loop_alive);
        // Calls through the API fail the same way, and say so.
        let err = scheduler
            .get_jobs(None)
            .await
            .expect_err("the server is away");
        assert_eq!(err.kind(), ErrorKind::Backend, "{err}");
        assert!(err.is_temporary(), "{err:?}");
        assert_no_password(&err, &password);
        assert!(calls.get().is_empty());

        match outage {
            Outage::Down => server.restart()?,
            Outage::Hung => server.thaw()?,
        }
        // The loop retries on its clock; move it past each retry until the jobs are handled
        // (a pass may still meet the old connection's error once).
        let mut seen = Vec::new();
        let mut now = 30;
        while seen.len() < 2 {
            now += 10;
            anyhow::ensure!(
                now <= 120,
                "the jobs did not run after the server came back"
            );
            clock.set(t(now));
            let e = next_event(
                &mut events,
                EventMask::JOB_EXECUTED | EventMask::JOB_MISSED | EventMask::SCHEDULER_ERROR,
            )
            .await?;
            match e {
                Event::JobExecuted(run) => seen.push(("executed", run.job_id.to_string())),
                Event::JobMissed(run) => seen.push(("missed", run.job_id.to_string())),
                Event::SchedulerError(e) => assert_no_password(&e.error, &password),
                _ => {}
            }
            seen.extend(
                drain_events(&mut events, EventMask::JOB_EXECUTED | EventMask::JOB_MISSED)
                    .await
                    .into_iter()
                    .filter_map(|e| match e {
                        Event::JobExecuted(run) => Some(("executed", run.job_id.to_string())),
                        Event::JobMissed(run) => Some(("missed", run.job_id.to_string())),
                        _ => None,
                    }),
            );
        }
        seen.sort();
        assert_eq!(
            seen,
            [
                ("executed", "patient".to_owned()),
                ("missed", "strict".to_owned())
            ]
        );
        assert_eq!(calls.get(), ["patient"]);
        // Both date jobs are done: removed from the server.
        assert!(scheduler.get_jobs(None).await?.is_empty());
        scheduler.shutdown(true).await?;
        anyhow::Ok(())
    })
}

/// Neither the error nor anything it wraps shows the password.
fn assert_no_password(error: &scheduler_core::Error, password: &str) {
    let mut texts = vec![error.to_string(), format!("{error:?}")];
    let mut source = std::error::Error::source(error);
    while let Some(s) = source {
        texts.push(s.to_string());
        texts.push(format!("{s:?}"));
        source = s.source();
    }
    for text in texts {
        assert!(!text.contains(password), "the password shows in {text:?}");
    }
}

#[test]
fn a_server_that_goes_away_and_comes_back_loses_nothing() -> anyhow::Result<()> {
    a_server_outage_is_survived(Outage::Down)
}

#[test]
fn a_server_that_hangs_times_out_and_loses_nothing() -> anyhow::Result<()> {
    a_server_outage_is_survived(Outage::Hung)
}

/// Records written by this version (jobs with cron, interval and date triggers, one paused),
/// as `redis-cli` shows them: every later version must read them.
const FIXTURE: &str = include_str!("fixtures/records-v1.json");

#[test]
fn records_written_by_version_1_are_read_and_carried_on() {
    with_namespace("fixture_v1", |ns| async move {
        #[derive(serde::Deserialize)]
        struct Fixture {
            jobs: std::collections::BTreeMap<String, String>,
            run_times: std::collections::BTreeMap<String, i64>,
            revisions: std::collections::BTreeMap<String, u64>,
        }
        let fixture: Fixture = serde_json::from_str(FIXTURE)?;
        let prefix = common::prefix_of(&ns);
        let mut redis = raw_client(&common::redis_url()).await?;
        let mut pipe = redis::pipe();
        for (id, json) in &fixture.jobs {
            pipe.hset(format!("{prefix}jobs"), id, json).hset(
                format!("{prefix}revisions"),
                id,
                fixture.revisions[id],
            );
        }
        for (id, micros) in &fixture.run_times {
            pipe.zadd(format!("{prefix}run_times"), id, micros);
        }
        let () = pipe.query_async(&mut redis).await?;

        let calls = Calls::default();
        let (functions, triggers, _) = common::codec_parts(&calls);
        let codec = JobCodec::new(functions, triggers);
        let bus = EventBus::new();
        let mut faults = bus.subscribe(EventMask::JOB_FAULT);
        let store = common::namespaced_store(&ns).await?;
        store
            .start(StoreContext::new("redis", codec.clone(), bus))
            .await?;
        let jobs = store.get_all_jobs().await?;
        assert!(faults.try_recv().is_none(), "every fixture record reads");
        let summary: Vec<(&str, Option<i64>, String)> = jobs
            .iter()
            .map(|j| {
                let micros = j.next_run_time().map(|t| t.timestamp_micros());
                (j.id(), micros, j.trigger().to_string())
            })
            .collect();
        assert_eq!(
            summary
                .iter()
                .map(|(id, at, _)| (*id, *at))
                .collect::<Vec<_>>(),
            [
                ("interval-poll", Some(1_767_225_600_000_000)),
                ("date-once", Some(1_767_229_200_000_250)),
                ("cron-report", Some(1_767_234_600_000_000)),
                ("paused-poll", None),
            ]
        );
        // Read and written again, each record says the same (no field lost or changed).
        for job in &jobs {
            let again = serde_json::to_value(codec.encode(job)?)?;
            let stored: serde_json::Value = serde_json::from_str(&fixture.jobs[job.id()])?;
            assert_eq!(again, stored, "job {}", job.id());
            assert_eq!(job.revision(), fixture.revisions[job.id()]);
        }
        let report = &jobs[2];
        assert_eq!(
            (
                report.name(),
                report.coalesce(),
                report.max_instances(),
                report.misfire_grace_time()
            ),
            ("Nightly report", true, 3, Some(Duration::from_secs(300)))
        );

        // And they carry on: the interval job fires and is rescheduled 90 s later.
        let due = store.get_due_jobs(t(0), 10).await?;
        assert_eq!(
            due.iter().map(|j| j.id()).collect::<Vec<_>>(),
            ["interval-poll"]
        );
        let job = &due[0];
        let next = t(90);
        let answers = store
            .commit_fires(&[scheduler_core::FireCommit::new(
                job.id_arc().clone(),
                t(0),
                job.revision(),
                scheduler_core::FireOutcome::Reschedule(next),
            )])
            .await?;
        assert_eq!(
            answers.get("interval-poll"),
            Some(scheduler_core::FireAnswer::Committed)
        );
        assert_eq!(store.get_next_run_time().await?, Some(next));
        store.shutdown().await?;
        Ok(())
    });
}

/// A started store on `ns`, with the test codec, and its recording job function.
async fn started_store(
    ns: &Namespace,
    calls: &Calls,
) -> anyhow::Result<(RedisJobStore, scheduler_core::JobFunction<String>)> {
    let (functions, triggers, record) = common::codec_parts(calls);
    let store = common::namespaced_store(ns).await?;
    store
        .start(StoreContext::new(
            "redis",
            JobCodec::new(functions, triggers),
            EventBus::new(),
        ))
        .await?;
    Ok((store, record))
}

#[test]
fn limits_beyond_what_redis_counts_are_served() {
    with_namespace("huge_limits", |ns| async move {
        use scheduler_core::RecordStore;
        let calls = Calls::default();
        let (store, record) = started_store(&ns, &calls).await?;
        let job = JobSpec::new(record.call("x".into()), every_minute_from(t(5)))
            .id("only")
            .next_run_time(t(5))
            .into_job(&Default::default(), t(0))?;
        store.add_job(job).await?;
        let records = store.records();
        assert_eq!(records.due(t(10), usize::MAX).await?.len(), 1);
        assert_eq!(records.next_run_times(usize::MAX).await?.len(), 1);
        assert_eq!(store.get_due_jobs(t(10), usize::MAX).await?.len(), 1);
        store.shutdown().await?;
        Ok(())
    });
}

/// The ids whose claims are held under `prefix`, sorted.
async fn claims_held(
    redis: &mut redis::aio::MultiplexedConnection,
    prefix: &str,
) -> anyhow::Result<Vec<String>> {
    let mut held: Vec<String> = redis::cmd("HKEYS")
        .arg(format!("{prefix}claims"))
        .query_async(redis)
        .await?;
    held.sort();
    Ok(held)
}

/// A claim and fire commits of a few hundred rows at once (the scripts read and write a whole
/// page per call), beside another node's claims: each row is handed out once, in run-time
/// order, and a commit clears only the claims of the rows it applied to.
#[test]
fn claims_and_commits_of_hundreds_of_rows_keep_other_nodes_claims() {
    with_namespace("large_claims", |ns| async move {
        use scheduler_core::RecordStore;
        use scheduler_core::store::{Claim, RecordFireCommit, StoredRecord};
        let calls = Calls::default();
        let (store, record) = started_store(&ns, &calls).await?;
        let mut jobs = Vec::new();
        for i in 0..300 {
            jobs.push(
                JobSpec::new(record.call("x".into()), every_minute_from(t(5)))
                    .id(format!("r{i:03}"))
                    .next_run_time(t(5))
                    .into_job(&Default::default(), t(0))?,
            );
        }
        for job in jobs {
            store.add_job(job).await?;
        }
        let records = store.records();
        let theirs = records
            .claim_due(t(10), 100, &Claim::new("other", t(60)))
            .await?;
        let mine = records
            .claim_due(t(10), 1_000, &Claim::new("me", t(60)))
            .await?;
        let ids =
            |rows: &[StoredRecord]| -> Vec<String> { rows.iter().map(|r| r.id.clone()).collect() };
        let expected: Vec<String> = (0..300).map(|i| format!("r{i:03}")).collect();
        assert_eq!(ids(&theirs), expected[..100]);
        assert_eq!(ids(&mine), expected[100..]);

        let commit = |row: &StoredRecord, expected_revision: u64| {
            let mut moved = row.clone();
            moved.next_run_time = Some(t(3_600));
            moved.revision = row.revision + 1;
            RecordFireCommit {
                id: row.id.as_str().into(),
                due_at: t(5),
                expected_revision,
                write: Some(moved),
                inflight: None,
                max_inflight: None,
            }
        };
        let commits: Vec<_> = mine.iter().map(|r| commit(r, r.revision)).collect();
        let answers = records.commit_fires(&commits).await?;
        for row in &mine {
            assert_eq!(
                answers.get(&row.id),
                Some(scheduler_core::FireAnswer::Committed)
            );
        }
        let mut redis = raw_client(&common::redis_url()).await?;
        let prefix = common::prefix_of(&ns);
        let held = claims_held(&mut redis, &prefix).await?;
        assert_eq!(
            held,
            expected[..100],
            "only the other node's claims are left"
        );

        // The other node commits its rows, one at a stale revision: that row keeps its claim.
        let commits: Vec<_> = theirs
            .iter()
            .enumerate()
            .map(|(i, r)| commit(r, if i == 7 { r.revision + 5 } else { r.revision }))
            .collect();
        let answers = records.commit_fires(&commits).await?;
        for (i, row) in theirs.iter().enumerate() {
            let want = if i == 7 {
                scheduler_core::FireAnswer::Stale
            } else {
                scheduler_core::FireAnswer::Committed
            };
            assert_eq!(answers.get(&row.id), Some(want), "{}", row.id);
        }
        assert_eq!(claims_held(&mut redis, &prefix).await?, ["r007"]);
        // Commits of rows that hold no claim leave the other claims alone, however few.
        let unclaimed = records.due(t(3_600), 3).await?;
        let commits: Vec<_> = unclaimed
            .iter()
            .filter(|r| r.id != "r007")
            .map(|r| commit(r, r.revision))
            .collect();
        let answers = records.commit_fires(&commits).await?;
        assert_eq!(answers.len(), 2);
        assert_eq!(claims_held(&mut redis, &prefix).await?, ["r007"]);
        let due = records.due(t(10), 1_000).await?;
        assert_eq!(ids(&due), ["r007"]);
        let later = records.due(t(3_600), 1_000).await?;
        assert_eq!(later.len(), 300);
        let claimed: std::collections::HashMap<&str, u64> = theirs
            .iter()
            .chain(&mine)
            .map(|r| (r.id.as_str(), r.revision))
            .collect();
        for row in &later {
            let bump = match row.id.as_str() {
                "r007" => 0,
                // Committed twice: by their node, then unclaimed.
                "r000" | "r001" => 2,
                _ => 1,
            };
            assert_eq!(row.revision, claimed[row.id.as_str()] + bump, "{}", row.id);
        }
        store.shutdown().await?;
        Ok(())
    });
}

/// A write through one handle wakes a scheduler on another within milliseconds through real
/// Redis pub/sub, and still does after the server restarted (the listener subscribes again).
/// Prints the delays measured.
#[test]
fn wake_ups_reach_another_handle_and_survive_a_server_restart() -> anyhow::Result<()> {
    let runtime = common::runtime()?;
    let mut server = PrivateRedis::start()?;
    runtime.block_on(async {
        let open = || {
            RedisRecords::builder(server.url())
                .prefix("wake.")
                .response_timeout(Duration::from_secs(1))
                .connection_timeout(Duration::from_secs(1))
                .build()
        };
        let (writer, listener) = (open()?, open()?);
        let (woken_tx, mut woken) = tokio::sync::mpsc::channel::<()>(64);
        let ctx = StoreContext::new("redis", JobCodec::default(), EventBus::new());
        writer.start(ctx.clone()).await?;
        listener
            .start(ctx.with_waker(move || {
                let _ = woken_tx.try_send(());
            }))
            .await?;
        let row = |id: &str| scheduler_core::store::StoredRecord {
            id: id.to_owned(),
            next_run_time: Some(t(0)),
            revision: 1,
            json: "{}".to_owned(),
        };
        use scheduler_core::store::RecordStore;
        // The listener subscribes beside the start and wakes the scheduler once it is live
        // (what was written before is not delivered): from then on every write is heard.
        tokio::time::timeout(Duration::from_secs(5), woken.recv())
            .await
            .map_err(|_| anyhow::anyhow!("no wake-up once the subscription was live"))?;
        let mut delays = Vec::new();
        for i in 0..20 {
            while woken.try_recv().is_ok() {}
            let sent = tokio::time::Instant::now();
            writer.records().insert(row(&format!("job{i}"))).await?;
            tokio::time::timeout(Duration::from_secs(5), woken.recv())
                .await
                .map_err(|_| anyhow::anyhow!("write {i} woke no one within 5 s"))?;
            delays.push(sent.elapsed());
        }
        delays.sort();
        println!(
            "wake-up delay through Redis pub/sub, 20 writes: median {:?}, max {:?}",
            delays[delays.len() / 2],
            delays[delays.len() - 1]
        );

        // The server goes away and comes back: the listener subscribes again, wakes once
        // for what it may have missed, and hears writes again.
        server.restart()?;
        let back = tokio::time::Instant::now();
        let mut heard = false;
        for i in 0..100 {
            if writer
                .records()
                .insert(row(&format!("after{i}")))
                .await
                .is_ok()
                && tokio::time::timeout(Duration::from_millis(200), woken.recv())
                    .await
                    .is_ok()
            {
                heard = true;
                break;
            }
        }
        anyhow::ensure!(heard, "no wake-up after the server restarted");
        // That may have been the listener's own wake-up on subscribing again: a write after
        // it must be heard too.
        tokio::time::sleep(Duration::from_millis(300)).await;
        while woken.try_recv().is_ok() {}
        writer.records().insert(row("late")).await?;
        tokio::time::timeout(Duration::from_secs(5), woken.recv())
            .await
            .map_err(|_| anyhow::anyhow!("a write after the restart woke no one"))?;
        println!(
            "wake-ups heard again {:?} after the server restarted",
            back.elapsed()
        );
        writer.shutdown().await?;
        listener.shutdown().await?;
        anyhow::Ok(())
    })
}

/// Two schedulers on one store: a job added through one (started paused, so it runs
/// nothing) with a run time a moment away runs on the other, which had nothing to do and
/// would otherwise sleep its whole `max_wait` of a minute. Prints the delay from the run
/// time to the run.
#[test]
fn a_job_added_on_one_scheduler_runs_promptly_on_another() {
    with_namespace("cross_node", |ns| async move {
        let calls = Calls::default();
        let build = |store: RedisJobStore, node: &str| common::node_on(store, node, &calls);
        let (adder, record) = build(common::namespaced_store(&ns).await?, "adder")?;
        let (runner, _) = build(common::namespaced_store(&ns).await?, "runner")?;
        let mut executed = runner.subscribe(EventMask::JOB_EXECUTED);
        runner.start().await?;
        adder.start_paused().await?;
        // Let the runner settle into its long sleep.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let clock = scheduler_core::SystemClock;
        let at = scheduler_core::Clock::now(&clock) + Duration::from_millis(200);
        adder
            .add_job(
                JobSpec::new(record.call("hop".into()), triggers::DateTrigger::new(at)).id("hop"),
            )
            .await?;
        let event = next_event(&mut executed, EventMask::JOB_EXECUTED).await?;
        let ran = scheduler_core::Clock::now(&clock);
        assert!(
            matches!(&event, Event::JobExecuted(e) if &*e.job_id == "hop"),
            "{event:?}"
        );
        assert_eq!(calls.get(), ["hop"]);
        println!(
            "a job added on another scheduler ran {} ms after its run time (max_wait 60 s)",
            (ran - at).num_milliseconds()
        );
        runner.shutdown(true).await?;
        adder.shutdown(false).await?;
        Ok(())
    });
}

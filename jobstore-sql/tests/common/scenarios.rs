//! The store's own tests, one async function each, run for every dialect by
//! [`sql_store_tests!`](crate::sql_store_tests).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use chrono::{DateTime, TimeDelta, Utc};
use jobstore_sql::SqlJobStore;
use scheduler_core::testkit::{ManualClock, StepTrigger};
use scheduler_core::{
    Components, ErrorKind, Event, EventBus, EventMask, EventStream, JobCodec, JobFunction,
    JobRegistry, JobSpec, JobStore, Scheduler, SchedulerConfig, SchedulerState, StoreContext,
    TriggerRegistry,
};

use super::{Db, Value, table};

/// The instant the tests start at: 2026-01-01T00:00:00Z.
pub(crate) fn t(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_225_600 + secs, 0).expect("a valid instant")
}

/// A scheduler on a manual clock with the `record` function and the step trigger, the tokio
/// executor, and `store` as its default store.
#[allow(
    dead_code,
    reason = "shared by the three test binaries; each uses its own dialect's part"
)]
pub(crate) struct Harness {
    pub(crate) clock: ManualClock,
    pub(crate) scheduler: Scheduler,
    pub(crate) events: EventStream,
    pub(crate) calls: Arc<Mutex<Vec<String>>>,
    pub(crate) record: JobFunction<String>,
}

/// The functions and triggers every test process knows.
pub(crate) fn registries(
    calls: &Arc<Mutex<Vec<String>>>,
) -> (JobRegistry, TriggerRegistry, JobFunction<String>) {
    let functions = JobRegistry::new();
    let seen = calls.clone();
    let record = functions.register_sync("record", move |s: String| {
        seen.lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(s.clone());
        Ok::<_, std::convert::Infallible>(s)
    });
    let triggers = TriggerRegistry::new();
    triggers.register_serde::<StepTrigger>(StepTrigger::KIND);
    (functions, triggers, record)
}

impl Harness {
    pub(crate) fn new(store: SqlJobStore, clock: ManualClock) -> anyhow::Result<Self> {
        Self::with(store, clock, |b| b)
    }

    pub(crate) fn with(
        store: SqlJobStore,
        clock: ManualClock,
        configure: impl FnOnce(scheduler_core::SchedulerBuilder) -> scheduler_core::SchedulerBuilder,
    ) -> anyhow::Result<Self> {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let (functions, triggers, record) = registries(&calls);
        let builder = Scheduler::builder()
            .clock(clock.clone())
            .timezone(chrono_tz_utc())
            .registry(functions)
            .triggers(triggers)
            .jobstore("default", store)
            .executor("default", executors::TokioExecutor::new());
        let scheduler = configure(builder).build()?;
        let events = scheduler.subscribe(EventMask::ALL);
        Ok(Harness {
            clock,
            scheduler,
            events,
            calls,
            record,
        })
    }

    /// A job running `record(id)` every 10 s from `first`.
    pub(crate) fn every_10s(&self, id: &str, first: DateTime<Utc>) -> JobSpec {
        JobSpec::new(
            self.record.call(id.to_owned()),
            StepTrigger {
                start: first,
                step_secs: 10,
            },
        )
        .id(id)
    }

    /// The next event in `mask`; an error after 20 s.
    pub(crate) async fn next(&mut self, mask: EventMask) -> anyhow::Result<Event> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(e)) if e.code().intersects(mask) => return Ok(e),
                Ok(Some(_)) => continue,
                Ok(None) => bail!("the event bus closed while waiting for {mask:?}"),
                Err(_) => bail!("no {mask:?} event within 20 s"),
            }
        }
    }

    /// Events in `mask` until none comes for `quiet`.
    pub(crate) async fn until_quiet(&mut self, mask: EventMask, quiet: Duration) -> Vec<Event> {
        let mut out = Vec::new();
        while let Ok(Some(e)) = tokio::time::timeout(quiet, self.events.recv()).await {
            if e.code().intersects(mask) {
                out.push(e);
            }
        }
        out
    }
}

fn chrono_tz_utc() -> scheduler_core::chrono_tz::Tz {
    scheduler_core::chrono_tz::UTC
}

fn store(db: &Db, table: &str) -> anyhow::Result<SqlJobStore> {
    Ok(jobstore_sql::builder(db.url())
        .tablename(table)
        .max_connections(2)
        .build()?)
}

/// A started store context with the test functions, for calling a store directly.
pub(crate) fn context() -> StoreContext {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let (functions, triggers, _) = registries(&calls);
    StoreContext::new(
        "default",
        JobCodec::new(functions, triggers),
        EventBus::new(),
    )
}

/// Runs `body` with a fresh table on `db`, dropping the table afterwards whatever happens.
pub(crate) async fn with_table<F, Fut>(db: &Db, test: &str, body: F) -> anyhow::Result<()>
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    db.check_reachable().await?;
    let name = table(test);
    let outcome = body(name.clone()).await;
    let dropped = db.drop_table(&name).await;
    outcome?;
    dropped
}

/// A SQL string literal of `text` for `db`.
pub(crate) fn literal(db: &Db, text: &str) -> String {
    let mut escaped = text.replace('\'', "''");
    if matches!(db, Db::MySql(_)) {
        escaped = escaped.replace('\\', "\\\\");
    }
    format!("'{escaped}'")
}

/// Stored rows as `(id, next_run_micros, revision, job_state)`, ordered by id.
pub(crate) async fn raw_rows(db: &Db, table: &str) -> anyhow::Result<Vec<Vec<Value>>> {
    db.query(
        &format!("SELECT id, next_run_micros, revision, job_state FROM {table} ORDER BY id"),
        "tiit",
    )
    .await
}

// ---------------------------------------------------------------------------------------

/// A configuration document naming `type = "sqlalchemy"` builds a scheduler whose store
/// writes to the named table.
pub(crate) async fn registration_builds_a_working_store_from_a_document(
    db: &Db,
) -> anyhow::Result<()> {
    with_table(db, "registration", |table| async move {
        let components = Components::new();
        jobstore_sql::register(&components);
        executors::register(&components);
        let document = format!(
            "[jobstores.default]\ntype = \"sqlalchemy\"\nurl = {url:?}\ntablename = {table:?}\n\
             max_connections = 2\n\n[executors.default]\ntype = \"tokio\"\n",
            url = db.url()
        );
        let config = SchedulerConfig::from_toml(&document)?;
        let calls = Arc::new(Mutex::new(Vec::new()));
        let (functions, triggers, record) = registries(&calls);
        let scheduler = Scheduler::builder()
            .config(&config, &components)?
            .registry(functions)
            .triggers(triggers)
            .build()?;
        scheduler.start_paused().await?;
        let spec = JobSpec::new(
            record.call("x".into()),
            StepTrigger {
                start: t(60),
                step_secs: 10,
            },
        )
        .id("from-config");
        scheduler.add_job(spec).await?;
        scheduler.shutdown(false).await?;
        let rows = db
            .query(
                &format!("SELECT id, func, trigger_kind FROM {table}"),
                "ttt",
            )
            .await?;
        ensure!(
            rows == [vec![
                Value::Text(Some("from-config".into())),
                Value::Text(Some("record".into())),
                Value::Text(Some(StepTrigger::KIND.into())),
            ]],
            "rows: {rows:?}"
        );
        // The other name, the URL alone (its scheme names the type), and a refused option.
        for entry in [
            serde_json::json!({"type": "sql", "url": db.url(), "tablename": table}),
            serde_json::json!({"url": db.url(), "tablename": table}),
        ] {
            let entry: scheduler_core::ComponentConfig = serde_json::from_value(entry)?;
            let store = components.build_jobstore("other", &entry)?;
            ensure!(store.capabilities().persistent, "{entry:?}");
        }
        let entry: scheduler_core::ComponentConfig = serde_json::from_value(serde_json::json!(
            {"type": "sqlalchemy", "url": db.url(), "tablename": "jobs; DROP TABLE x"}
        ))?;
        let err = components
            .build_jobstore("bad", &entry)
            .err()
            .context("a bad table name")?;
        ensure!(err.kind() == ErrorKind::Config, "{err}");
        let entry: scheduler_core::ComponentConfig = serde_json::from_value(serde_json::json!(
            {"type": "sqlalchemy", "url": db.url(), "pickle_protocol": 4}
        ))?;
        let err = components
            .build_jobstore("bad", &entry)
            .err()
            .context("an unknown option")?;
        ensure!(err.kind() == ErrorKind::Config, "{err}");
        Ok(())
    })
    .await
}

/// Jobs added by one scheduler, which is shut down; a new scheduler on a new store handle
/// finds them late and runs them by their misfire and coalescing options.
pub(crate) async fn restart_carries_on_with_misfire_and_coalescing(db: &Db) -> anyhow::Result<()> {
    with_table(db, "restart", |table| async move {
        let clock = ManualClock::new(t(0));
        let first = Harness::new(store(db, &table)?, clock.clone())?;
        first.scheduler.start().await?;
        let jobs = [
            first.every_10s("coalesced", t(10)).misfire_grace_time(None),
            first
                .every_10s("each", t(10))
                .coalesce(false)
                .misfire_grace_time(None),
            first
                .every_10s("strict", t(10))
                .coalesce(false)
                .misfire_grace_time(Some(Duration::from_secs(1))),
        ];
        for job in jobs {
            first.scheduler.add_job(job).await?;
        }
        first.scheduler.shutdown(true).await?;
        drop(first);

        // Down from before t(10) until t(35): three fire times passed.
        clock.set(t(35));
        let mut second = Harness::new(store(db, &table)?, clock.clone())?;
        second.scheduler.start().await?;
        let mut executed = Vec::new();
        let mut missed = Vec::new();
        while executed.len() < 4 || missed.len() < 3 {
            match second
                .next(EventMask::JOB_EXECUTED | EventMask::JOB_MISSED)
                .await?
            {
                Event::JobExecuted(e) => {
                    executed.push((e.job_id.to_string(), e.scheduled_run_time))
                }
                Event::JobMissed(e) => missed.push((e.job_id.to_string(), e.scheduled_run_time)),
                _ => {}
            }
        }
        let late = second
            .until_quiet(
                EventMask::JOB_EXECUTED | EventMask::JOB_MISSED,
                Duration::from_millis(500),
            )
            .await;
        ensure!(late.is_empty(), "more runs than expected: {late:?}");
        executed.sort();
        missed.sort();
        let s = |id: &str, at: i64| (id.to_owned(), t(at));
        ensure!(
            executed
                == [
                    s("coalesced", 30),
                    s("each", 10),
                    s("each", 20),
                    s("each", 30)
                ],
            "executed: {executed:?}"
        );
        ensure!(
            missed == [s("strict", 10), s("strict", 20), s("strict", 30)],
            "missed: {missed:?}"
        );
        for id in ["coalesced", "each", "strict"] {
            let job = second
                .scheduler
                .get_job(id, None)
                .await?
                .context("the job is kept")?;
            ensure!(
                job.next_run_time() == Some(t(40)),
                "{id}: {:?}",
                job.next_run_time()
            );
        }
        second.scheduler.shutdown(true).await?;
        Ok(())
    })
    .await
}

/// One row of the committed fixture.
#[derive(Debug, serde::Deserialize)]
struct FixtureRow {
    id: String,
    next_run_micros: Option<i64>,
    revision: i64,
    job_state: String,
}

/// Rows written by version 1 of the record format (tests/fixtures/records-v1.json), planted
/// with plain SQL, are read with every field.
pub(crate) async fn fixture_records_of_version_1_are_read(db: &Db) -> anyhow::Result<()> {
    with_table(db, "fixture", |table| async move {
        let text = include_str!("../fixtures/records-v1.json");
        let rows: Vec<FixtureRow> = serde_json::from_str(text)?;
        let store = store(db, &table)?;
        store.start(context()).await?;
        for row in &rows {
            let micros = row
                .next_run_micros
                .map_or("NULL".to_owned(), |m| m.to_string());
            db.exec(&format!(
                "INSERT INTO {table} (id, next_run_micros, revision, job_state) VALUES ({}, \
                 {micros}, {}, {})",
                literal(db, &row.id),
                row.revision,
                literal(db, &row.job_state)
            ))
            .await?;
        }
        let jobs = store.get_all_jobs().await?;
        let ids: Vec<&str> = jobs.iter().map(|j| j.id()).collect();
        ensure!(ids == ["micros", "with-args", "paused"], "ids: {ids:?}");
        let micros = &jobs[0];
        ensure!(
            micros.next_run_time() == Some(t(10) + TimeDelta::microseconds(123_456)),
            "{:?}",
            micros.next_run_time()
        );
        ensure!(micros.revision() == 41, "revision {}", micros.revision());
        ensure!(micros.name() == "micros job", "name {:?}", micros.name());
        let with_args = store
            .lookup_job("with-args")
            .await?
            .context("with-args is there")?;
        let record = context().codec().encode(&with_args)?;
        ensure!(record.func == "record", "{record:?}");
        ensure!(record.args == serde_json::json!("hello"), "{record:?}");
        ensure!(record.trigger.kind == StepTrigger::KIND, "{record:?}");
        ensure!(!record.coalesce && record.max_instances == 3, "{record:?}");
        ensure!(
            record.misfire_grace_time == Some(Duration::from_secs(30)),
            "{record:?}"
        );
        ensure!(record.executor == "default", "{record:?}");
        ensure!(
            record.timeout == Some(Duration::from_secs(600)),
            "{record:?}"
        );
        ensure!(jobs[2].next_run_time().is_none(), "paused stays paused");
        ensure!(store.get_next_run_time().await? == Some(t(10) + TimeDelta::microseconds(123_456)));
        store.shutdown().await?;
        Ok(())
    })
    .await
}

/// Rows an operator broke with plain SQL (not JSON; an unknown function) are reported once as
/// JobFault events while the scheduler runs the others, and stay in the table unchanged.
pub(crate) async fn corrupt_rows_written_with_sql_are_skipped_and_left_untouched(
    db: &Db,
) -> anyhow::Result<()> {
    with_table(db, "corrupt", |table| async move {
        let clock = ManualClock::new(t(0));
        let mut h = Harness::new(store(db, &table)?, clock.clone())?;
        h.scheduler.start().await?;
        h.scheduler.add_job(h.every_10s("good", t(10))).await?;
        let good_json = raw_rows(db, &table).await?[0][3].clone();
        let Value::Text(Some(good_json)) = good_json else {
            bail!("no JSON for the good job");
        };
        let alien = good_json
            .replace("\"good\"", "\"alien\"")
            .replace("\"record\"", "\"no.such.function\"");
        let due = scheduler_core::store::to_micros(t(5));
        for (id, json) in [("broken", "{not json"), ("alien", alien.as_str())] {
            db.exec(&format!(
                "INSERT INTO {table} (id, next_run_micros, revision, job_state) VALUES ({}, \
                 {due}, 7, {})",
                literal(db, id),
                literal(db, json)
            ))
            .await?;
        }
        let before = raw_rows(db, &table).await?;
        clock.set(t(10));
        h.scheduler.wakeup();
        let mut faults = Vec::new();
        let mut ran = false;
        while faults.len() < 2 || !ran {
            match h
                .next(EventMask::JOB_FAULT | EventMask::JOB_EXECUTED)
                .await?
            {
                Event::JobFault(f) => faults.push(f.job_id.to_string()),
                Event::JobExecuted(e) => ran = e.job_id.as_ref() == "good",
                _ => {}
            }
        }
        faults.sort();
        ensure!(faults == ["alien", "broken"], "faults: {faults:?}");
        ensure!(h.scheduler.state() == SchedulerState::Running);
        clock.set(t(20));
        h.scheduler.wakeup();
        h.next(EventMask::JOB_EXECUTED).await?;
        let again = h
            .until_quiet(EventMask::JOB_FAULT, Duration::from_millis(300))
            .await;
        ensure!(again.is_empty(), "faults reported again: {again:?}");
        let after = raw_rows(db, &table).await?;
        for id in ["alien", "broken"] {
            let row = |rows: &[Vec<Value>]| {
                rows.iter()
                    .find(|r| r[0] == Value::Text(Some(id.to_owned())))
                    .cloned()
            };
            ensure!(
                row(&after).is_some() && row(&after) == row(&before),
                "{id} changed"
            );
        }
        h.scheduler.shutdown(true).await?;
        Ok(())
    })
    .await
}

/// The columns an operator reads: the function, the trigger kind, the run time as integer
/// microseconds and as readable UTC text.
pub(crate) async fn rows_are_readable_with_plain_sql(db: &Db) -> anyhow::Result<()> {
    with_table(db, "readable", |table| async move {
        let store = store(db, &table)?;
        let h = Harness::new(store, ManualClock::new(t(0)))?;
        h.scheduler.start_paused().await?;
        let at = t(10) + TimeDelta::microseconds(123_456);
        h.scheduler.add_job(h.every_10s("readable", at)).await?;
        h.scheduler.add_job(h.every_10s("paused", t(10))).await?;
        h.scheduler.pause_job("paused", None).await?;
        let readable = match db {
            Db::Postgres(_) => {
                "to_char(next_run_time AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"
            }
            Db::MySql(_) => "CAST(next_run_time AS CHAR)",
            Db::Sqlite(_) => "next_run_time",
        };
        let rows = db
            .query(
                &format!(
                    "SELECT id, func, trigger_kind, next_run_micros, {readable} FROM {table} \
                     ORDER BY id"
                ),
                "tttit",
            )
            .await?;
        let text = |s: &str| Value::Text(Some(s.to_owned()));
        ensure!(
            rows == [
                vec![
                    text("paused"),
                    text("record"),
                    text(StepTrigger::KIND),
                    Value::Int(None),
                    Value::Text(None)
                ],
                vec![
                    text("readable"),
                    text("record"),
                    text(StepTrigger::KIND),
                    Value::Int(Some(scheduler_core::store::to_micros(at))),
                    text("2026-01-01 00:00:10.123456"),
                ],
            ],
            "rows: {rows:?}"
        );
        h.scheduler.shutdown(false).await?;
        Ok(())
    })
    .await
}

/// APScheduler's own table layout under the same name is refused with a clear Config error,
/// and left as it was.
pub(crate) async fn a_table_of_another_layout_is_refused(db: &Db) -> anyhow::Result<()> {
    with_table(db, "layout", |table| async move {
        let blob = if matches!(db, Db::Postgres(_)) {
            "BYTEA"
        } else {
            "BLOB"
        };
        db.exec(&format!(
            "CREATE TABLE {table} (id VARCHAR(191) NOT NULL PRIMARY KEY, next_run_time FLOAT, \
             job_state {blob} NOT NULL)"
        ))
        .await?;
        let store = store(db, &table)?;
        let err = store
            .start(context())
            .await
            .err()
            .context("the start is refused")?;
        ensure!(err.kind() == ErrorKind::Config, "{err}");
        ensure!(err.to_string().contains("APScheduler"), "{err}");
        let columns = db.query(&format!("SELECT id FROM {table}"), "t").await?;
        ensure!(columns.is_empty());
        Ok(())
    })
    .await
}

/// A batch of 2,500 jobs (three multi-row statements) answers each job in order: a job whose
/// id is stored and a repeated id are refused, the others added.
pub(crate) async fn batched_adds_answer_each_job_and_skip_duplicates(
    db: &Db,
) -> anyhow::Result<()> {
    with_table(db, "batch", |table| async move {
        let store = store(db, &table)?;
        let h = Harness::new(store, ManualClock::new(t(0)))?;
        h.scheduler.start_paused().await?;
        h.scheduler
            .add_job(h.every_10s("job-01200", t(100)))
            .await?;
        let mut specs: Vec<JobSpec> = (0..2500)
            .map(|i| h.every_10s(&format!("job-{i:05}"), t(60 + i)))
            .collect();
        specs.push(h.every_10s("job-00007", t(1)));
        let answers = h.scheduler.add_jobs(specs).await?;
        ensure!(answers.len() == 2501);
        for (i, answer) in answers.iter().enumerate() {
            let refused = i == 1200 || i == 2500;
            match answer {
                Ok(_) if !refused => {}
                Err(e) if refused && e.kind() == ErrorKind::ConflictingId => {}
                other => bail!("answer {i}: {other:?}"),
            }
        }
        let count = db
            .query(&format!("SELECT COUNT(*) FROM {table}"), "i")
            .await?;
        ensure!(count == [vec![Value::Int(Some(2500))]], "{count:?}");
        let kept = h
            .scheduler
            .get_job("job-01200", None)
            .await?
            .context("kept")?;
        ensure!(
            kept.next_run_time() == Some(t(100)),
            "the stored job was replaced"
        );
        let first = h
            .scheduler
            .get_job("job-00007", None)
            .await?
            .context("added")?;
        ensure!(first.next_run_time() == Some(t(67)), "the repeated id won");
        h.scheduler.shutdown(false).await?;
        Ok(())
    })
    .await
}

/// Two schedulers adding overlapping batches to one table at once add each id once: of the
/// ids both add, exactly one of them is answered as added and the other as a conflicting id.
/// An add reads which ids are taken before it inserts; a row the other adds in between fails
/// the insert, and the add runs again.
pub(crate) async fn racing_batched_adds_add_each_id_once(db: &Db) -> anyhow::Result<()> {
    with_table(db, "race", |table| async move {
        let a = Harness::new(store(db, &table)?, ManualClock::new(t(0)))?;
        let b = Harness::new(store(db, &table)?, ManualClock::new(t(0)))?;
        a.scheduler.start_paused().await?;
        b.scheduler.start_paused().await?;
        for round in 0..4 {
            let ids = |from: usize| (from..from + 600).map(move |i| format!("race-{round}-{i:04}"));
            let specs_a: Vec<JobSpec> = ids(0).map(|id| a.every_10s(&id, t(60))).collect();
            let specs_b: Vec<JobSpec> = ids(300).map(|id| b.every_10s(&id, t(60))).collect();
            let (answers_a, answers_b) =
                tokio::join!(a.scheduler.add_jobs(specs_a), b.scheduler.add_jobs(specs_b));
            let (answers_a, answers_b) = (answers_a?, answers_b?);
            let mut added = std::collections::HashMap::<String, usize>::new();
            for answer in answers_a.iter().chain(&answers_b) {
                match answer {
                    Ok(job) => *added.entry(job.id().to_owned()).or_default() += 1,
                    Err(e) if e.kind() == ErrorKind::ConflictingId => {}
                    Err(e) => bail!("round {round}: {e}"),
                }
            }
            ensure!(
                added.len() == 900,
                "round {round}: {} ids added",
                added.len()
            );
            ensure!(
                added.values().all(|&n| n == 1),
                "round {round}: an id added twice"
            );
        }
        let count = db
            .query(&format!("SELECT COUNT(*) FROM {table}"), "i")
            .await?;
        ensure!(count == [vec![Value::Int(Some(3600))]], "{count:?}");
        a.scheduler.shutdown(false).await?;
        b.scheduler.shutdown(false).await?;
        Ok(())
    })
    .await
}

/// A password in the URL shows in no `Debug` output and no error, also when the server
/// refuses the connection.
pub(crate) async fn debug_and_errors_never_show_the_password(db: &Db) -> anyhow::Result<()> {
    const SECRET: &str = "pw-S3cret-7f3a";
    let url = match db {
        Db::Postgres(_) => format!("postgres://postgres:{SECRET}@127.0.0.1:1/test"),
        Db::MySql(_) => format!("mysql://root:{SECRET}@127.0.0.1:1/test"),
        Db::Sqlite(_) => format!("{}?password={SECRET}", db.url()),
    };
    let builder = jobstore_sql::builder(&url).acquire_timeout(Duration::from_secs(2));
    ensure!(!format!("{builder:?}").contains(SECRET), "{builder:?}");
    let store = builder.build()?;
    let shown = format!("{store:?}");
    ensure!(!shown.contains(SECRET) && shown.contains("***"), "{shown}");
    let err = store
        .start(context())
        .await
        .err()
        .context("the start fails")?;
    let mut texts = vec![err.to_string(), format!("{err:?}")];
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        texts.push(s.to_string());
        texts.push(format!("{s:?}"));
        source = s.source();
    }
    for text in &texts {
        ensure!(!text.contains(SECRET), "the password shows in: {text}");
    }
    if !matches!(db, Db::Sqlite(_)) {
        ensure!(
            err.kind() == ErrorKind::Backend && err.is_temporary(),
            "{err}"
        );
    }
    Ok(())
}

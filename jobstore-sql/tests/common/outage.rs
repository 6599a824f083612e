//! A private server that goes away and comes back, then hangs (SIGSTOP) and goes on: the
//! scheduler keeps running, store calls fail with temporary Backend errors (timeouts for the
//! hang), and the missed fire times run by the misfire rules once the server is back.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use chrono::{DateTime, TimeDelta, Utc};
use scheduler_core::testkit::StepTrigger;
use scheduler_core::{
    ErrorKind, Event, EventMask, EventStream, JobSpec, Scheduler, SchedulerState,
};

use super::scenarios::registries;
#[cfg(any(feature = "postgres", feature = "mysql"))]
use super::servers::{Kind, PrivateServer};

async fn next(
    events: &mut EventStream,
    mask: EventMask,
    within: Duration,
) -> anyhow::Result<Event> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(e)) if e.code().intersects(mask) => return Ok(e),
            Ok(Some(_)) => continue,
            Ok(None) => bail!("the event bus closed"),
            Err(_) => bail!("no {mask:?} event within {within:?}"),
        }
    }
}

/// Waits for the scheduler to report the store failing, and checks the error.
async fn expect_store_error(
    scheduler: &Scheduler,
    events: &mut EventStream,
    what: &str,
    reads_fail: bool,
) -> anyhow::Result<()> {
    let Event::SchedulerError(e) =
        next(events, EventMask::SCHEDULER_ERROR, Duration::from_secs(30)).await?
    else {
        bail!("not a scheduler error");
    };
    eprintln!("{what}: the scheduler reports: {}", e.error);
    ensure!(e.jobstore.as_deref() == Some("default"), "{what}: {e:?}");
    ensure!(
        e.error.kind() == ErrorKind::Backend && e.error.is_temporary(),
        "{what}: the error is not a temporary backend error: {}",
        e.error
    );
    ensure!(
        scheduler.state() == SchedulerState::Running,
        "{what}: the scheduler stopped"
    );
    if !reads_fail {
        return Ok(());
    }
    // A call of the API fails the same way, within the call timeout.
    let call = tokio::time::timeout(Duration::from_secs(15), scheduler.get_job("tick", None))
        .await
        .context(format!("{what}: a store call was not bounded"))?;
    let err = call
        .err()
        .context(format!("{what}: a store call succeeded"))?;
    eprintln!("{what}: get_job fails with: {err}");
    ensure!(
        err.kind() == ErrorKind::Backend && err.is_temporary(),
        "{what}: {err}"
    );
    Ok(())
}

/// After the server is back: the fire times missed while it was away are submitted
/// together (the job does not coalesce and has no grace limit), each runs, in order.
async fn expect_catch_up(
    events: &mut EventStream,
    down_since: DateTime<Utc>,
    what: &str,
) -> anyhow::Result<()> {
    loop {
        let Event::JobSubmitted(s) =
            next(events, EventMask::JOB_SUBMITTED, Duration::from_secs(60)).await?
        else {
            bail!("not a submission");
        };
        if s.scheduled_run_times.len() < 2 {
            // A run submitted before the failure was noticed.
            ensure!(
                s.scheduled_run_times
                    .first()
                    .is_some_and(|t| *t <= down_since + TimeDelta::seconds(3)),
                "{what}: a single run after the outage: {s:?}"
            );
            continue;
        }
        let times = &s.scheduled_run_times;
        ensure!(
            times
                .windows(2)
                .all(|w| w[1] - w[0] == TimeDelta::seconds(1)),
            "{what}: the missed fire times are not each second: {times:?}"
        );
        let mut executed = Vec::new();
        while executed.len() < times.len() {
            if let Event::JobExecuted(e) =
                next(events, EventMask::JOB_EXECUTED, Duration::from_secs(30)).await?
                && times.contains(&e.scheduled_run_time)
            {
                executed.push(e.scheduled_run_time);
            }
        }
        ensure!(
            executed == times.to_vec(),
            "{what}: ran {executed:?} of {times:?}"
        );
        eprintln!("{what}: {} missed fire times ran in order", times.len());
        return Ok(());
    }
}

/// A scheduler on `url` with short retries and timeouts, running job "tick" every second
/// without coalescing or grace limit, once it ran the first time.
async fn ticking(url: &str) -> anyhow::Result<(Scheduler, EventStream, Arc<Mutex<Vec<String>>>)> {
    let store = jobstore_sql::builder(url)
        .tablename("jobs")
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(1))
        .call_timeout(Duration::from_secs(2))
        .build()?;
    let calls = Arc::new(Mutex::new(Vec::new()));
    let (functions, triggers, record) = registries(&calls);
    let scheduler = Scheduler::builder()
        .registry(functions)
        .triggers(triggers)
        .jobstore("default", store)
        .executor("default", executors::TokioExecutor::new())
        .jobstore_retry_interval(Duration::from_millis(500))
        .jobstore_call_timeout(Duration::from_secs(3))
        .max_wait(Duration::from_secs(1))
        .build()?;
    let mut events = scheduler.subscribe(EventMask::ALL);
    scheduler.start().await?;
    let start = scheduler.clock().now() + TimeDelta::seconds(1);
    let spec = JobSpec::new(
        record.call("tick".into()),
        StepTrigger {
            start,
            step_secs: 1,
        },
    )
    .id("tick")
    .coalesce(false)
    .misfire_grace_time(None);
    scheduler.add_job(spec).await?;
    next(
        &mut events,
        EventMask::JOB_EXECUTED,
        Duration::from_secs(30),
    )
    .await
    .context("the job runs while the database is there")?;
    Ok((scheduler, events, calls))
}

/// The whole story on a private server of `kind`.
#[allow(
    dead_code,
    reason = "shared by the three test binaries; each uses its own dialect's part"
)]
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) async fn outage_and_hang(kind: Kind) -> anyhow::Result<()> {
    let server = PrivateServer::start(kind).await?;
    let (scheduler, mut events, calls) = ticking(&server.url()).await?;

    // The server goes away (killed), stays away a few fire times, and comes back.
    server.kill()?;
    let down_since = scheduler.clock().now();
    expect_store_error(&scheduler, &mut events, "server down", true).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    server.resume_service().await?;
    expect_catch_up(&mut events, down_since, "after the outage").await?;

    // The server hangs: connections stay open and nothing answers.
    server.hang()?;
    let hung_since = scheduler.clock().now();
    let hung = expect_store_error(&scheduler, &mut events, "server hung", true).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    server.unhang()?;
    hung?;
    expect_catch_up(&mut events, hung_since, "after the hang").await?;

    ensure!(scheduler.state() == SchedulerState::Running);
    scheduler.shutdown(false).await?;
    ensure!(!calls.lock().unwrap_or_else(|p| p.into_inner()).is_empty());
    Ok(())
}

/// SQLite's outage: another process holds the file's write lock (`BEGIN EXCLUSIVE`) for a
/// while. Readers go on (WAL); the fire commits wait out the busy timeout and fail with
/// temporary errors; the scheduler keeps running and catches up once the lock is released.
#[allow(
    dead_code,
    reason = "shared by the three test binaries; each uses its own dialect's part"
)]
#[cfg(feature = "sqlite")]
pub(crate) async fn locked_sqlite_file(db: &super::Db) -> anyhow::Result<()> {
    use sqlx::Connection as _;

    let (scheduler, mut events, calls) = ticking(&db.url()).await?;
    let mut other = sqlx::SqliteConnection::connect(&db.url()).await?;
    sqlx::query("BEGIN EXCLUSIVE").execute(&mut other).await?;
    let locked_since = scheduler.clock().now();
    let locked = expect_store_error(&scheduler, &mut events, "file locked", false).await;
    // Adding a job waits for the lock as long as the busy timeout, then fails.
    let add = scheduler
        .add_job(JobSpec::new(
            registries(&calls).2.call("late".into()),
            StepTrigger {
                start: locked_since,
                step_secs: 60,
            },
        ))
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    sqlx::query("ROLLBACK").execute(&mut other).await?;
    other.close().await?;
    locked?;
    let err = add
        .err()
        .context("an add succeeded while the file was locked")?;
    ensure!(
        err.kind() == ErrorKind::Backend && err.is_temporary(),
        "{err}"
    );
    expect_catch_up(&mut events, locked_since, "after the lock").await?;
    ensure!(scheduler.state() == SchedulerState::Running);
    scheduler.shutdown(false).await?;
    Ok(())
}

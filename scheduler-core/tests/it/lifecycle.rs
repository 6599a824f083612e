//! Start, shutdown, pause, resume, stores, executors, configuration, events.

use std::time::Duration;

use scheduler_core::{Components, ErrorKind, Event, EventMask, SchedulerConfig, SchedulerState};

use crate::harness::{Harness, Once, every, t};

#[tokio::test]
async fn start_adds_pending_jobs_then_announces_the_start() {
    let mut h = Harness::new();
    h.scheduler
        .add_job(h.record_job("a", Once(t(10))))
        .await
        .unwrap();
    assert_eq!(h.scheduler.state(), SchedulerState::Stopped);
    h.scheduler.start().await.unwrap();
    assert_eq!(h.scheduler.state(), SchedulerState::Running);
    let events = h.next_n(EventMask::ALL, 2).await;
    assert!(
        matches!(&events[0], Event::JobAdded(e) if &*e.job_id == "a" && &*e.jobstore == "default")
    );
    assert!(matches!(events[1], Event::SchedulerStarted));
    let job = h.scheduler.get_job("a", None).await.unwrap().unwrap();
    assert_eq!(job.next_run_time(), Some(t(10)));
}

#[tokio::test]
async fn starting_twice_and_stopping_a_stopped_scheduler_are_state_errors() {
    let h = Harness::new();
    assert_eq!(
        h.scheduler.shutdown(true).await.unwrap_err().kind(),
        ErrorKind::SchedulerState
    );
    assert_eq!(
        h.scheduler.pause().unwrap_err().kind(),
        ErrorKind::SchedulerState
    );
    assert_eq!(
        h.scheduler.resume().unwrap_err().kind(),
        ErrorKind::SchedulerState
    );
    h.scheduler.start().await.unwrap();
    assert_eq!(
        h.scheduler.start().await.unwrap_err().kind(),
        ErrorKind::SchedulerState
    );
    h.scheduler.shutdown(true).await.unwrap();
    assert!(!h.scheduler.running());
}

#[tokio::test]
async fn shutdown_forgets_memory_jobs_and_the_scheduler_can_start_again() {
    let mut h = Harness::new();
    h.scheduler.start().await.unwrap();
    h.scheduler
        .add_job(h.record_job("a", Once(t(10))))
        .await
        .unwrap();
    h.scheduler.shutdown(true).await.unwrap();
    assert!(h.scheduler.get_jobs(None).await.unwrap().is_empty());
    h.scheduler.start().await.unwrap();
    h.scheduler
        .add_job(h.record_job("b", Once(t(0))))
        .await
        .unwrap();
    assert!(
        matches!(h.next(EventMask::JOB_EXECUTED).await, Event::JobExecuted(e) if &*e.job_id == "b")
    );
    h.scheduler.shutdown(true).await.unwrap();
    let codes = h.drain().await;
    assert!(codes.contains(&EventMask::SCHEDULER_SHUTDOWN));
}

#[tokio::test]
async fn shutdown_with_wait_lets_running_jobs_finish() {
    let mut h = Harness::new();
    h.scheduler.start().await.unwrap();
    h.scheduler
        .add_job(scheduler_core::JobSpec::new(
            h.wait.call("slow".into()),
            Once(t(0)),
        ))
        .await
        .unwrap();
    h.next(EventMask::JOB_SUBMITTED).await;
    let gate = h.gate.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        gate.add_permits(1);
    });
    h.scheduler.shutdown(true).await.unwrap();
    // The job finished before shutdown returned.
    assert_eq!(h.calls.get(), ["slow"]);
}

#[tokio::test]
async fn paused_scheduler_runs_nothing_until_resumed() {
    let mut h = Harness::new();
    h.scheduler.start_paused().await.unwrap();
    assert_eq!(h.scheduler.state(), SchedulerState::Paused);
    h.scheduler
        .add_job(h.record_job("a", Once(t(5))).misfire_grace_time(None))
        .await
        .unwrap();
    h.set_time(10);
    h.assert_quiet(EventMask::JOB_SUBMITTED).await;
    h.scheduler.resume().unwrap();
    assert!(matches!(
        h.next(EventMask::SCHEDULER_RESUMED).await,
        Event::SchedulerResumed
    ));
    h.next(EventMask::JOB_EXECUTED).await;
    h.scheduler.pause().unwrap();
    h.scheduler.pause().unwrap(); // no second event, as in APScheduler
    assert!(matches!(
        h.next(EventMask::SCHEDULER_PAUSED).await,
        Event::SchedulerPaused
    ));
    h.scheduler.resume().unwrap();
    let codes = h.drain().await;
    assert_eq!(
        codes
            .iter()
            .filter(|c| **c == EventMask::SCHEDULER_PAUSED)
            .count(),
        0,
        "pausing twice published two events: {codes:?}"
    );
}

#[tokio::test]
async fn stores_and_executors_can_be_added_and_removed_at_run_time() {
    let mut h = Harness::new();
    h.scheduler.start().await.unwrap();
    h.scheduler
        .add_jobstore("other", jobstore_memory::MemoryJobStore::new())
        .await
        .unwrap();
    assert!(
        matches!(h.next(EventMask::JOBSTORE_ADDED).await, Event::JobstoreAdded { alias } if &*alias == "other")
    );
    let err = h
        .scheduler
        .add_jobstore("other", jobstore_memory::MemoryJobStore::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    h.scheduler
        .add_executor("pool", executors::ThreadPoolExecutor::new(2).unwrap())
        .await
        .unwrap();
    assert!(
        matches!(h.next(EventMask::EXECUTOR_ADDED).await, Event::ExecutorAdded { alias } if &*alias == "pool")
    );

    h.scheduler
        .add_job(
            h.record_job("in-other", Once(t(0)))
                .jobstore("other")
                .executor("pool"),
        )
        .await
        .unwrap();
    let executed = h.next(EventMask::JOB_EXECUTED).await;
    assert_eq!(executed.jobstore(), Some("other"));

    h.scheduler.remove_jobstore("other", true).await.unwrap();
    assert!(
        matches!(h.next(EventMask::JOBSTORE_REMOVED).await, Event::JobstoreRemoved { alias } if &*alias == "other")
    );
    h.scheduler.remove_executor("pool", true).await.unwrap();
    assert!(matches!(
        h.next(EventMask::EXECUTOR_REMOVED).await,
        Event::ExecutorRemoved { .. }
    ));
    assert_eq!(
        h.scheduler
            .remove_executor("pool", true)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Config
    );
    assert_eq!(h.scheduler.jobstore_aliases(), ["default"]);
}

#[tokio::test]
async fn listeners_get_the_events_in_their_mask() {
    let h = Harness::new();
    let log = scheduler_core::testkit::EventLog::new();
    let sink = log.clone();
    let id = h.scheduler.add_listener(
        move |e| sink.push(e),
        EventMask::JOB_ADDED | EventMask::JOB_REMOVED,
    );
    h.scheduler.start().await.unwrap();
    h.scheduler
        .add_job(h.record_job("a", Once(t(100))))
        .await
        .unwrap();
    h.scheduler.remove_job("a", None).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while log.events().len() < 2 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(h.scheduler.remove_listener(id));
    h.scheduler
        .add_job(h.record_job("b", Once(t(100))))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let seen: Vec<String> = log.events().iter().map(ToString::to_string).collect();
    assert_eq!(
        seen,
        [
            "job \"a\" added to \"default\"",
            "job \"a\" removed from \"default\""
        ]
    );
}

#[tokio::test]
async fn configuration_document_sets_zone_defaults_stores_and_executors() {
    let components = Components::new();
    jobstore_memory::register(&components);
    executors::register(&components);
    let config = SchedulerConfig::from_toml(
        r#"
        timezone = "Asia/Kolkata"
        [job_defaults]
        misfire_grace_time = 30
        coalesce = false
        max_instances = 3
        [jobstores.archive]
        type = "memory"
        [executors.pool]
        type = "threadpool"
        max_workers = 2
        "#,
    )
    .unwrap();
    let mut h = Harness::with(|b| b.config(&config, &components).unwrap());
    assert_eq!(h.scheduler.timezone(), chrono_tz::Asia::Kolkata);
    h.scheduler.start().await.unwrap();
    let job = h
        .scheduler
        .add_job(
            h.record_job("a", every(60, t(0)))
                .jobstore("archive")
                .executor("pool"),
        )
        .await
        .unwrap();
    assert_eq!(job.misfire_grace_time(), Some(Duration::from_secs(30)));
    assert!(!job.coalesce());
    assert_eq!(job.max_instances(), 3);
    h.next(EventMask::JOB_EXECUTED).await;
    // Stores from a document come after the builder's, in alias order (the document is a map).
    assert_eq!(h.scheduler.jobstore_aliases(), ["default", "archive"]);

    // configure() refuses a running scheduler, then replaces stores and executors.
    let err = h
        .scheduler
        .configure(&config, &components)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SchedulerState);
    h.scheduler.shutdown(true).await.unwrap();
    let minimal = SchedulerConfig::from_json(
        r#"{"timezone": "UTC", "jobstores": {"default": {"type": "memory"}},
            "executors": {"default": {"type": "asyncio"}}}"#,
    )
    .unwrap();
    h.scheduler.configure(&minimal, &components).await.unwrap();
    assert_eq!(h.scheduler.jobstore_aliases(), ["default"]);
    assert_eq!(h.scheduler.timezone(), chrono_tz::UTC);
    assert_eq!(
        h.scheduler.job_defaults(),
        scheduler_core::JobDefaults::default()
    );

    let bad = SchedulerConfig::from_json(
        r#"{"executors": {"default": {"type": "threadpool", "max_workers": 0}}}"#,
    )
    .unwrap();
    let err = h.scheduler.configure(&bad, &components).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("executor \"default\""), "{err}");
}

#[tokio::test]
async fn job_table_lists_pending_then_stored_jobs() {
    let h = Harness::with(|b| b.jobstore("b-store", jobstore_memory::MemoryJobStore::new()));
    h.scheduler
        .add_job(h.record_job("a", Once(t(3600))).name("nightly"))
        .await
        .unwrap();
    assert_eq!(
        h.scheduler.jobs_table(None).await.unwrap(),
        "Pending jobs:\n    nightly (trigger: date[2026-01-01 01:00:00 UTC], pending)\n"
    );
    h.scheduler.start().await.unwrap();
    h.scheduler
        .add_job(h.record_job("p", Once(t(60))).paused())
        .await
        .unwrap();
    assert_eq!(
        h.scheduler.jobs_table(None).await.unwrap(),
        "Jobstore b-store:\n    No scheduled jobs\nJobstore default:\n    \
         nightly (trigger: date[2026-01-01 01:00:00 UTC], next run at: 2026-01-01 01:00:00 UTC)\n    \
         record (trigger: date[2026-01-01 00:01:00 UTC], paused)\n"
    );
    h.scheduler.shutdown(false).await.unwrap();
    assert_eq!(
        h.scheduler.jobs_table(None).await.unwrap(),
        "Pending jobs:\n    No pending jobs\n"
    );
}

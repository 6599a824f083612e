//! The loop never dies silently: settings that would break it are refused where they are
//! set, a loop that stops on its own moves the scheduler to `Failed` with an error event, and
//! a health check says whether the loop is alive and when it last looked at the stores.

use std::sync::atomic::Ordering;
use std::time::Duration;

use scheduler_core::{
    Components, ErrorKind, Event, EventMask, Scheduler, SchedulerConfig, SchedulerState,
};

use crate::harness::{Harness, InstrumentedStore, Once, t};

#[test]
fn a_retry_interval_that_would_overflow_the_loop_is_refused_where_it_is_set() {
    let err = Scheduler::builder()
        .jobstore_retry_interval(Duration::from_secs_f64(1e13))
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);

    let document = SchedulerConfig::from_json(r#"{"jobstore_retry_interval": 1e13}"#).unwrap();
    let err = Scheduler::builder()
        .config(&document, &Components::new())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("jobstore_retry_interval"), "{err}");
}

#[tokio::test]
async fn a_panicking_loop_fails_the_scheduler_loudly_and_shutdown_recovers_it() {
    let store = InstrumentedStore::default();
    let panicking = store.panicking.clone();
    let mut h = Harness::with_default_store(store, |b| b);
    h.scheduler.start().await.unwrap();
    assert!(h.scheduler.health().is_alive());
    panicking.store(true, Ordering::SeqCst);
    h.scheduler
        .add_job(h.record_job("a", Once(t(0))))
        .await
        .unwrap();

    let Event::SchedulerError(e) = h.next(EventMask::SCHEDULER_ERROR).await else {
        unreachable!()
    };
    assert!(e.jobstore.is_none());
    assert!(
        e.error.to_string().contains("a bug in the store"),
        "{}",
        e.error
    );
    assert_eq!(h.scheduler.state(), SchedulerState::Failed);
    let health = h.scheduler.health();
    assert!(!health.loop_alive && !health.is_alive());
    assert!(health.failure.is_some());

    // Changes fail clearly instead of waiting for a loop that will never come.
    let err = h
        .scheduler
        .add_job(h.record_job("b", Once(t(0))))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SchedulerState);
    assert!(err.to_string().contains("a bug in the store"), "{err}");
    assert_eq!(
        h.scheduler.pause().unwrap_err().kind(),
        ErrorKind::SchedulerState
    );
    assert_eq!(
        h.scheduler.start().await.unwrap_err().kind(),
        ErrorKind::SchedulerState
    );
    // Reads still answer.
    assert_eq!(h.scheduler.get_jobs(None).await.unwrap().len(), 1);

    h.scheduler.shutdown(true).await.unwrap();
    assert_eq!(h.scheduler.state(), SchedulerState::Stopped);
    panicking.store(false, Ordering::SeqCst);
    h.scheduler.start().await.unwrap();
    h.scheduler
        .add_job(h.record_job("c", Once(t(0))))
        .await
        .unwrap();
    h.next(EventMask::JOB_EXECUTED).await;
    assert!(h.scheduler.health().failure.is_none());
    h.scheduler.shutdown(true).await.unwrap();
}

#[test]
fn a_loop_whose_runtime_stops_leaves_the_scheduler_failed_not_running() {
    let h = Harness::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(h.scheduler.start()).unwrap();
    drop(runtime);
    assert_eq!(h.scheduler.state(), SchedulerState::Failed);
    let failure = h.scheduler.health().failure.unwrap();
    assert!(failure.to_string().contains("cancelled"), "{failure}");
}

#[tokio::test]
async fn health_says_when_the_loop_last_passed_and_when_it_looks_next() {
    // A maximum wait beyond the job, so the next look is the job's run time.
    let h = Harness::with(|b| b.max_wait(Duration::from_secs(3600)));
    let health = h.scheduler.health();
    assert!(!health.is_alive());
    assert_eq!(health.passes, 0);
    h.scheduler.start().await.unwrap();
    h.scheduler
        .add_job(h.record_job("later", Once(t(100))))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while h.scheduler.health().next_wakeup != Some(t(100)) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no pass planned t(100)"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let health = h.scheduler.health();
    assert!(health.is_alive());
    assert!(health.passes >= 1);
    assert_eq!(health.last_pass, Some(t(0)));
    assert_eq!(health.pass_started, None);
    h.scheduler.pause().unwrap();
    assert_eq!(h.scheduler.health().next_wakeup, None);
    h.scheduler.shutdown(true).await.unwrap();
    assert!(!h.scheduler.health().loop_alive);
}

#[tokio::test]
async fn a_store_that_cannot_be_read_is_an_error_event_naming_it() {
    let store = InstrumentedStore::default();
    let failing = store.failing.clone();
    let mut h = Harness::with_default_store(store, |b| b);
    h.scheduler.start().await.unwrap();
    failing.store(true, Ordering::SeqCst);
    h.scheduler.wakeup();
    let Event::SchedulerError(e) = h.next(EventMask::SCHEDULER_ERROR).await else {
        unreachable!()
    };
    assert_eq!(e.jobstore.as_deref(), Some("default"));
    assert_eq!(e.error.kind(), ErrorKind::Backend);
    // A failing store is retried, not a failed loop.
    assert_eq!(h.scheduler.state(), SchedulerState::Running);
    failing.store(false, Ordering::SeqCst);
    h.scheduler.shutdown(false).await.unwrap();
}

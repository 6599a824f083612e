//! `run_job_now`: one run now, the schedule untouched, `max_instances` obeyed.

use std::time::Duration;

use scheduler_core::{ErrorKind, Event, EventMask, JobSpec};

use crate::harness::{
    Calls, Harness, Once, background_on_thread_pool, every, functions, run_time, run_times, t,
};

#[tokio::test]
async fn runs_once_now_and_keeps_the_schedule_and_its_phase() {
    let mut h = Harness::new();
    h.scheduler.start().await.unwrap();
    h.scheduler
        .add_job(h.record_job("tick", every(10, t(10))))
        .await
        .unwrap();
    h.set_time(3);
    let job = h.scheduler.run_job_now("tick", None).await.unwrap();
    assert_eq!(job.next_run_time(), Some(t(10)));

    let submitted = h.next(EventMask::JOB_SUBMITTED).await;
    assert_eq!(run_times(&submitted), [t(3)]);
    let executed = h.next(EventMask::JOB_EXECUTED).await;
    assert_eq!(run_time(&executed), t(3));
    assert_eq!(h.calls.get(), ["tick"]);
    let stored = h.scheduler.get_job("tick", None).await.unwrap().unwrap();
    assert_eq!(stored.next_run_time(), Some(t(10)), "the planned run stays");

    // The interval keeps its phase: the next runs are at 10 and 20, not 13 and 23.
    h.set_time(10);
    let executed = h.next(EventMask::JOB_EXECUTED).await;
    assert_eq!(run_time(&executed), t(10));
    h.set_time(20);
    let executed = h.next(EventMask::JOB_EXECUTED).await;
    assert_eq!(run_time(&executed), t(20));
    assert_eq!(h.calls.get(), ["tick", "tick", "tick"]);
}

#[tokio::test]
async fn a_paused_job_runs_once_and_stays_paused() {
    let mut h = Harness::new();
    h.scheduler.start().await.unwrap();
    h.scheduler
        .add_job(h.record_job("p", every(10, t(10))))
        .await
        .unwrap();
    h.scheduler.pause_job("p", None).await.unwrap();
    h.scheduler.run_job_now("p", None).await.unwrap();
    h.next(EventMask::JOB_EXECUTED).await;
    let stored = h.scheduler.get_job("p", None).await.unwrap().unwrap();
    assert!(stored.is_paused());
    h.set_time(30);
    h.assert_quiet(EventMask::JOB_SUBMITTED | EventMask::JOB_EXECUTED)
        .await;
    assert_eq!(h.calls.get(), ["p"]);
}

#[tokio::test]
async fn runs_while_job_processing_is_paused() {
    let mut h = Harness::new();
    h.scheduler.start_paused().await.unwrap();
    h.scheduler
        .add_job(h.record_job("a", Once(t(100))))
        .await
        .unwrap();
    h.scheduler.run_job_now("a", None).await.unwrap();
    h.next(EventMask::JOB_EXECUTED).await;
    assert_eq!(h.calls.get(), ["a"]);
}

#[tokio::test]
async fn obeys_max_instances() {
    let mut h = Harness::new();
    h.scheduler.start().await.unwrap();
    h.scheduler
        .add_job(JobSpec::new(h.wait.call("slow".into()), Once(t(100))).id("slow"))
        .await
        .unwrap();
    h.scheduler.run_job_now("slow", None).await.unwrap();
    h.next(EventMask::JOB_SUBMITTED).await;
    let err = h.scheduler.run_job_now("slow", None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MaxInstancesReached, "{err}");
    let refused = h.next(EventMask::JOB_MAX_INSTANCES).await;
    assert_eq!(refused.job_id(), Some("slow"));

    h.gate.add_permits(1);
    h.next(EventMask::JOB_EXECUTED).await;
    // Once the first run has finished, the job may run again.
    h.scheduler.run_job_now("slow", None).await.unwrap();
    h.gate.add_permits(1);
    h.next(EventMask::JOB_EXECUTED).await;
    assert_eq!(h.calls.get(), ["slow", "slow"]);
}

#[tokio::test]
async fn a_failing_run_is_reported_as_an_error() {
    let mut h = Harness::new();
    h.scheduler.start().await.unwrap();
    h.scheduler
        .add_job(JobSpec::new(h.fail.call("boom".into()), Once(t(100))).id("f"))
        .await
        .unwrap();
    h.scheduler.run_job_now("f", None).await.unwrap();
    let Event::JobError(e) = h.next(EventMask::JOB_ERROR).await else {
        unreachable!()
    };
    assert!(e.error.unwrap().to_string().contains("boom"));
    let stored = h.scheduler.get_job("f", None).await.unwrap().unwrap();
    assert_eq!(stored.next_run_time(), Some(t(100)));
}

#[tokio::test]
async fn unknown_ids_stores_and_a_stopped_scheduler_are_refused() {
    let h = Harness::new();
    h.scheduler
        .add_job(h.record_job("a", Once(t(10))))
        .await
        .unwrap();
    let err = h.scheduler.run_job_now("a", None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SchedulerState, "{err}");

    h.scheduler.start().await.unwrap();
    let err = h.scheduler.run_job_now("nope", None).await.unwrap_err();
    assert_eq!(
        (err.kind(), err.job_id()),
        (ErrorKind::JobNotFound, Some("nope"))
    );
    let err = h
        .scheduler
        .run_job_now("a", Some("elsewhere"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::JobNotFound, "{err}");
    assert!(h.calls.get().is_empty());
}

/// The sync API, from plain threads, on the thread pool.
#[test]
fn background_scheduler_runs_a_job_now() {
    let calls = Calls::default();
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let (registry, [record, ..]) = functions(&calls, &gate);
    let clock = scheduler_core::testkit::ManualClock::new(t(0));
    let (scheduler, rx) = background_on_thread_pool(registry, &clock);
    scheduler.start().unwrap();
    scheduler
        .add_job(JobSpec::new(record.call("tick".into()), every(60, t(60))).id("tick"))
        .unwrap();
    clock.set(t(5));
    let job = scheduler.run_job_now("tick", None).unwrap();
    assert_eq!(job.next_run_time(), Some(t(60)));
    let Ok(Event::JobExecuted(e)) = rx.recv_timeout(Duration::from_secs(10)) else {
        panic!("the job did not run");
    };
    assert_eq!(e.scheduled_run_time, t(5));
    assert_eq!(
        scheduler
            .get_job("tick", None)
            .unwrap()
            .unwrap()
            .next_run_time(),
        Some(t(60))
    );
    let err = scheduler.run_job_now("nope", None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::JobNotFound);
    scheduler.shutdown(true).unwrap();
    assert_eq!(calls.get(), ["tick"]);
}

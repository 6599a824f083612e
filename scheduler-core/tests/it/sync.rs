//! The sync wrappers: a background scheduler driven from plain threads, and a blocking one.

use std::sync::mpsc;
use std::time::Duration;

use scheduler_core::{
    BackgroundScheduler, BlockingScheduler, Event, EventMask, JobSpec, JobTarget, Scheduler,
};

use crate::harness::{Calls, Once, every, functions, t};

/// Runs outside any async runtime, as a plain `main` would.
#[test]
fn background_scheduler_is_driven_from_sync_code() {
    let calls = Calls::default();
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let (registry, [record, ..]) = functions(&calls, &gate);
    let clock = scheduler_core::testkit::ManualClock::new(t(0));
    let scheduler = BackgroundScheduler::new(
        Scheduler::builder()
            .clock(clock.clone())
            .registry(registry)
            .jobstore("default", jobstore_memory::MemoryJobStore::new())
            .executor("default", executors::ThreadPoolExecutor::new(2).unwrap()),
    )
    .unwrap();
    let (tx, rx) = mpsc::channel();
    scheduler.add_listener(
        move |e| {
            let _ = tx.send(e.clone());
        },
        EventMask::JOB_EXECUTED,
    );
    scheduler
        .add_job(JobSpec::new(record.call("pending".into()), Once(t(0))).id("p"))
        .unwrap();
    scheduler.start().unwrap();
    assert!(scheduler.running());
    let Ok(Event::JobExecuted(e)) = rx.recv_timeout(Duration::from_secs(10)) else {
        panic!("the pending job did not run");
    };
    assert_eq!(&*e.job_id, "p");

    scheduler
        .add_job(JobSpec::new(record.call("tick".into()), every(10, t(10))).id("tick"))
        .unwrap();
    clock.set(t(10));
    let Ok(Event::JobExecuted(e)) = rx.recv_timeout(Duration::from_secs(10)) else {
        panic!("the interval job did not run");
    };
    assert_eq!(e.scheduled_run_time, t(10));
    assert_eq!(scheduler.get_jobs(None).unwrap().len(), 1);
    scheduler.pause_job("tick", None).unwrap();
    assert!(
        scheduler
            .get_job("tick", None)
            .unwrap()
            .unwrap()
            .is_paused()
    );
    assert!(scheduler.jobs_table(None).unwrap().contains("paused"));
    scheduler.shutdown(true).unwrap();
    assert_eq!(calls.get(), ["pending", "tick"]);
}

#[test]
fn blocking_scheduler_runs_until_a_job_shuts_it_down() {
    let scheduler = BlockingScheduler::new(
        Scheduler::builder()
            .jobstore("default", jobstore_memory::MemoryJobStore::new())
            .executor("default", executors::ThreadPoolExecutor::new(1).unwrap()),
    )
    .unwrap();
    let handle = scheduler.handle();
    let stop = JobTarget::closure("stop", move || {
        // A job on the thread pool may call the sync API, here to end the blocking start().
        handle.shutdown(false).map_err(|e| e.to_string())
    });
    let now = scheduler.scheduler().clock().now();
    scheduler.add_job(JobSpec::new(stop, Once(now))).unwrap();
    let started = std::time::Instant::now();
    scheduler.start().unwrap();
    assert!(!scheduler.running());
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_start_inside_a_runtime_is_an_error_not_a_panic() {
    let scheduler = BlockingScheduler::new(Scheduler::builder()).unwrap();
    let err = tokio::task::block_in_place(|| scheduler.start());
    assert_eq!(
        err.unwrap_err().kind(),
        scheduler_core::ErrorKind::SchedulerState
    );
}

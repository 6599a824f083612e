//! Shutdown cannot be wedged: waiting for itself is refused at once, a caller that gives up
//! does not stop it, and `shutdown(wait = true)` returns only after every listener has seen
//! every event before it.

use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use scheduler_core::{
    BackgroundScheduler, ErrorKind, Event, EventMask, JobRegistry, JobSpec, JobTarget, Result,
    Scheduler, SchedulerState, SyncScheduler,
};

use crate::harness::{Harness, Once, t};

fn background(
    registry: JobRegistry,
    executor: impl scheduler_core::Executor,
) -> BackgroundScheduler {
    BackgroundScheduler::new(
        Scheduler::builder()
            .registry(registry)
            .jobstore("default", jobstore_memory::MemoryJobStore::new())
            .executor("default", executor),
    )
    .unwrap()
}

#[test]
fn shutdown_with_wait_from_a_job_fails_at_once_and_wedges_nothing() {
    let handle: Arc<OnceLock<SyncScheduler>> = Arc::default();
    let (tx, rx) = mpsc::channel::<Result<()>>();
    let slot = handle.clone();
    let tx = Mutex::new(tx);
    let job = JobTarget::closure("stop-and-wait", move || {
        let outcome = slot.get().expect("set before start").shutdown(true);
        let _ = tx.lock().unwrap().send(outcome);
    });
    let scheduler = background(
        JobRegistry::new(),
        executors::ThreadPoolExecutor::new(2).unwrap(),
    );
    let _ = handle.set(scheduler.handle());
    scheduler.start().unwrap();
    let now = scheduler.clock().now();
    scheduler.add_job(JobSpec::new(job, Once(now))).unwrap();
    let outcome = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("shutdown(true) from a job did not return");
    assert_eq!(outcome.unwrap_err().kind(), ErrorKind::SchedulerState);
    // Nothing is wedged: the scheduler still runs and shuts down from outside.
    assert_eq!(scheduler.state(), SchedulerState::Running);
    let later = scheduler
        .add_job(JobSpec::new(
            JobTarget::closure("noop", || ()),
            Once(now + chrono::TimeDelta::hours(1)),
        ))
        .unwrap();
    assert!(
        later.next_run_time().is_some(),
        "the job went to the pending list"
    );
    scheduler.shutdown(false).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_with_wait_from_an_async_job_fails_at_once() {
    let handle: Arc<OnceLock<Scheduler>> = Arc::default();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Result<()>>();
    let registry = JobRegistry::new();
    let slot = handle.clone();
    let stop = registry.register_async("stop", move |_: u32| {
        let (scheduler, tx) = (slot.get().cloned(), tx.clone());
        async move {
            let _ = tx.send(scheduler.expect("set").shutdown(true).await);
        }
    });
    let scheduler = Scheduler::builder()
        .registry(registry)
        .jobstore("default", jobstore_memory::MemoryJobStore::new())
        .executor("default", executors::TokioExecutor::new())
        .build()
        .unwrap();
    let _ = handle.set(scheduler.clone());
    scheduler.start().await.unwrap();
    let now = scheduler.clock().now();
    scheduler
        .add_job(JobSpec::new(stop.call(0), Once(now)))
        .await
        .unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("shutdown(true) from an async job did not return")
        .unwrap();
    assert_eq!(outcome.unwrap_err().kind(), ErrorKind::SchedulerState);
    tokio::time::timeout(Duration::from_secs(10), scheduler.shutdown(true))
        .await
        .expect("the shutdown from outside hung")
        .unwrap();
}

#[test]
fn shutdown_with_wait_from_a_listener_fails_at_once() {
    let scheduler = background(JobRegistry::new(), executors::TokioExecutor::new());
    let handle = scheduler.handle();
    let (tx, rx) = mpsc::channel::<Result<()>>();
    let tx = Mutex::new(tx);
    scheduler.add_listener(
        move |_| {
            let _ = tx.lock().unwrap().send(handle.shutdown(true));
        },
        EventMask::SCHEDULER_STARTED,
    );
    scheduler.start().unwrap();
    let outcome = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("shutdown(true) from a listener did not return");
    assert_eq!(outcome.unwrap_err().kind(), ErrorKind::SchedulerState);
    scheduler.shutdown(true).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_whose_caller_gives_up_still_completes() {
    let mut h = Harness::new();
    h.scheduler.start().await.unwrap();
    h.scheduler
        .add_job(JobSpec::new(h.wait.call("slow".into()), Once(t(0))))
        .await
        .unwrap();
    h.next(EventMask::JOB_SUBMITTED).await;
    // The job holds the shutdown up; its caller stops waiting.
    let gave_up =
        tokio::time::timeout(Duration::from_millis(100), h.scheduler.shutdown(true)).await;
    assert!(gave_up.is_err(), "the shutdown finished while the job ran");
    assert_eq!(h.scheduler.state(), SchedulerState::Stopped);
    // A second shutdown meanwhile fails at once instead of queueing behind the first.
    let second = tokio::time::timeout(Duration::from_secs(5), h.scheduler.shutdown(false))
        .await
        .expect("a second shutdown waited for the first");
    assert_eq!(second.unwrap_err().kind(), ErrorKind::SchedulerState);
    h.gate.add_permits(1);
    tokio::time::timeout(Duration::from_secs(10), h.scheduler.stopped())
        .await
        .expect("the abandoned shutdown did not complete");
    assert!(matches!(
        h.next(EventMask::SCHEDULER_SHUTDOWN).await,
        Event::SchedulerShutdown
    ));
    assert_eq!(h.calls.get(), ["slow"]);
    // And the scheduler can start again.
    h.scheduler.start().await.unwrap();
    h.scheduler.shutdown(true).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_shutdown_with_wait_every_listener_has_seen_every_event() {
    let h = Harness::new();
    let seen = scheduler_core::testkit::EventLog::new();
    let sink = seen.clone();
    h.scheduler.add_listener(
        move |e| {
            // A slow listener: without the flush it lags behind the shutdown.
            std::thread::sleep(Duration::from_millis(10));
            sink.push(e);
        },
        EventMask::ALL,
    );
    h.scheduler.start().await.unwrap();
    for i in 0..20 {
        h.scheduler
            .add_job(h.record_job(&format!("j{i}"), Once(t(3600))))
            .await
            .unwrap();
    }
    h.scheduler.shutdown(true).await.unwrap();
    let events = seen.events();
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Event::JobAdded(_)))
            .count(),
        20
    );
    assert!(
        matches!(events.last(), Some(Event::SchedulerShutdown)),
        "last seen: {:?}",
        events.last()
    );
}

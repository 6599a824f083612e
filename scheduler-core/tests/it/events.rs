//! Event queues are bounded: a subscriber nobody reads costs bounded memory and learns what
//! it lost, and a listener that calls the scheduler back cannot deadlock it.

use std::sync::mpsc;
use std::time::Duration;

use scheduler_core::{
    BackgroundScheduler, Delivery, Event, EventMask, JobSpec, JobTarget, Scheduler,
};

use crate::harness::{Harness, Once, t};

#[tokio::test]
async fn an_unread_subscription_keeps_a_bounded_backlog_and_reports_its_losses() {
    let h = Harness::new();
    let mut unread = h
        .scheduler
        .subscribe_with(EventMask::JOB_ADDED, Delivery::drop_oldest(16));
    h.scheduler.start().await.unwrap();
    for i in 0..200 {
        h.scheduler
            .add_job(h.record_job(&format!("j{i}"), Once(t(3600))))
            .await
            .unwrap();
    }
    assert_eq!(unread.len(), 16);
    assert!(matches!(
        unread.recv().await,
        Some(Event::EventsLost { count: 184 })
    ));
    assert_eq!(unread.recv().await.unwrap().job_id(), Some("j184"));
    // The default queue holds far more than this burst.
    let default = h.scheduler.subscribe(EventMask::JOB_REMOVED);
    h.scheduler.remove_all_jobs(None).await.unwrap();
    for i in 0..200 {
        h.scheduler
            .add_job(h.record_job(&format!("k{i}"), Once(t(3600))))
            .await
            .unwrap();
        h.scheduler
            .remove_job(&format!("k{i}"), None)
            .await
            .unwrap();
    }
    assert_eq!(default.len(), 200);
    h.scheduler.shutdown(true).await.unwrap();
}

/// The reason the default drops instead of waiting: this listener calls the scheduler on
/// every submission, while the loop that publishes `JobSubmitted` holds the lock job changes
/// take. All jobs still run.
#[test]
fn a_listener_that_calls_the_scheduler_back_cannot_deadlock_it() {
    let scheduler = BackgroundScheduler::new(
        Scheduler::builder()
            .jobstore("default", jobstore_memory::MemoryJobStore::new())
            .executor("default", executors::ThreadPoolExecutor::new(4).unwrap()),
    )
    .unwrap();
    let handle = scheduler.handle();
    scheduler.add_listener_with(
        move |e| {
            if let Some(id) = e.job_id() {
                let _ = handle.get_job(id, None);
            }
        },
        EventMask::JOB_SUBMITTED,
        Delivery::drop_oldest(8),
    );
    let (tx, rx) = mpsc::channel();
    scheduler.add_listener(
        move |e| {
            let _ = tx.send(e.clone());
        },
        EventMask::JOB_EXECUTED,
    );
    scheduler.start().unwrap();
    let now = scheduler.clock().now();
    for i in 0..100 {
        scheduler
            .add_job(JobSpec::new(JobTarget::closure("noop", || ()), Once(now)).id(format!("j{i}")))
            .unwrap();
    }
    for _ in 0..100 {
        rx.recv_timeout(Duration::from_secs(10))
            .expect("a job did not run: the scheduler is stuck");
    }
    scheduler.shutdown(true).unwrap();
}

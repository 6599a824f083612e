//! The thread pool's queue: sleeping workers woken as queued runs need them, runs started in
//! the order they were submitted.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Barrier, Mutex};

use executors::ThreadPoolExecutor;
use scheduler_core::{EventMask, JobRegistry, JobSpec, Scheduler};

use super::{Overlap, next, scheduler, t};

/// Adds `jobs` while the scheduler is paused, so that they come due in one pass and reach the
/// pool in one batch, and waits until each was submitted.
async fn submit_as_one_batch(
    s: &Scheduler,
    submitted: &mut scheduler_core::EventStream,
    jobs: impl IntoIterator<Item = JobSpec>,
) {
    s.pause().unwrap();
    let added = s.add_jobs(jobs).await.unwrap();
    assert!(added.iter().all(Result::is_ok));
    s.resume().unwrap();
    for _ in 0..added.len() {
        next(submitted, EventMask::JOB_SUBMITTED).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_runs_of_one_batch_start_on_every_sleeping_worker() {
    const WORKERS: usize = 4;
    // Round 0 starts the threads; in rounds 1 and 2 they sleep when the batch comes, and
    // each run blocks until four are inside: one woken worker per batch would leave the
    // others' runs queued behind its blocked one. Round 2 has more runs than workers (the
    // workers join as the runs wait).
    let rounds = Arc::new([
        Overlap::new(WORKERS),
        Overlap::new(WORKERS),
        Overlap::new(WORKERS),
    ]);
    let registry = JobRegistry::new();
    let r = rounds.clone();
    let work = registry.register_sync("work", move |round: usize| {
        r[round].enter_blocking();
        r[round].leave();
    });
    let (s, _) = scheduler(ThreadPoolExecutor::new(WORKERS).unwrap(), registry);
    let mut submitted = s.subscribe(EventMask::JOB_SUBMITTED);
    let mut executed = s.subscribe(EventMask::JOB_EXECUTED);
    s.start().await.unwrap();
    for (round, runs) in [(0, WORKERS), (1, WORKERS), (2, 2 * WORKERS)] {
        let jobs = (0..runs).map(|i| {
            JobSpec::new(work.call(round), triggers::DateTrigger::new(t(0)))
                .id(format!("r{round}-{i}"))
                .misfire_grace_time(None)
        });
        submit_as_one_batch(&s, &mut submitted, jobs).await;
        for _ in 0..runs {
            next(&mut executed, EventMask::JOB_EXECUTED).await;
        }
        assert_eq!(
            rounds[round].max.load(Ordering::SeqCst),
            WORKERS,
            "round {round}: the runs of one batch did not all run at once"
        );
    }
    s.shutdown(true).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_runs_start_in_the_order_they_were_submitted() {
    const BATCHES: usize = 4;
    const PER_BATCH: usize = 3;
    let registry = JobRegistry::new();
    let gate = Arc::new(Barrier::new(2));
    let g = gate.clone();
    let blocker = registry.register_sync("blocker", move |_: ()| {
        g.wait();
    });
    let started = Arc::new(Mutex::new(Vec::new()));
    let s_ = started.clone();
    let record = registry.register_sync("record", move |n: usize| {
        s_.lock().unwrap().push(n);
    });
    let (s, _) = scheduler(ThreadPoolExecutor::new(1).unwrap(), registry);
    let mut submitted = s.subscribe(EventMask::JOB_SUBMITTED);
    let mut executed = s.subscribe(EventMask::JOB_EXECUTED);
    s.start().await.unwrap();
    // The only worker is held while the batches queue up behind it.
    let hold = JobSpec::new(blocker.call(()), triggers::DateTrigger::new(t(0))).id("blocker");
    submit_as_one_batch(&s, &mut submitted, [hold]).await;
    for batch in 0..BATCHES {
        // Due in the order of their numbers (past due, no grace limit), so each batch holds
        // them in that order.
        let jobs = (0..PER_BATCH).map(|k| {
            let n = batch * PER_BATCH + k;
            JobSpec::new(
                record.call(n),
                triggers::DateTrigger::new(t(n as i64 - 100)),
            )
            .id(format!("n{n:02}"))
            .misfire_grace_time(None)
        });
        submit_as_one_batch(&s, &mut submitted, jobs).await;
    }
    gate.wait();
    for _ in 0..=BATCHES * PER_BATCH {
        next(&mut executed, EventMask::JOB_EXECUTED).await;
    }
    let expected: Vec<usize> = (0..BATCHES * PER_BATCH).collect();
    assert_eq!(*started.lock().unwrap(), expected);
    s.shutdown(true).await.unwrap();
}

//! How the scheduler uses the store contract: jobs it cannot run are skipped and kept, store
//! answers are checked by id, store calls are bounded in time, the loop looks again within its
//! maximum wait and in bounded batches, and job changes survive concurrent writers.

use std::sync::atomic::Ordering;
use std::time::Duration;

use scheduler_core::{ErrorKind, Event, EventMask, FaultAction, JobChanges, JobDefaults};

use crate::harness::{Harness, InstrumentedStore, Once, t};

/// Waits a while, then answers how often the store was asked for due jobs meanwhile: a loop
/// that spins on a job asks thousands of times; one that sleeps, not at all.
async fn due_calls_while_idle(h: &mut Harness, store: &InstrumentedStore) -> usize {
    h.assert_quiet(EventMask::JOB_SUBMITTED | EventMask::JOB_FAULT)
        .await;
    let before = store.due_calls.load(Ordering::SeqCst);
    h.assert_quiet(EventMask::JOB_SUBMITTED | EventMask::JOB_FAULT)
        .await;
    store.due_calls.load(Ordering::SeqCst) - before
}

#[tokio::test]
async fn a_job_whose_executor_is_missing_is_skipped_kept_and_reported_until_it_is_added() {
    let store = InstrumentedStore::default();
    let mut h = Harness::with_default_store(store.clone(), |b| {
        b.executor("pool", executors::ThreadPoolExecutor::new(1).unwrap())
    });
    h.scheduler.start().await.unwrap();
    h.scheduler
        .add_job(h.record_job("orphan", Once(t(10))).executor("pool"))
        .await
        .unwrap();
    h.scheduler.remove_executor("pool", true).await.unwrap();
    h.set_time(10);

    let Event::JobFault(fault) = h.next(EventMask::JOB_FAULT).await else {
        unreachable!()
    };
    assert_eq!(
        (&*fault.job_id, &*fault.jobstore, fault.action),
        ("orphan", "default", FaultAction::Skipped)
    );
    assert_eq!(fault.error.kind(), ErrorKind::Config);
    assert!(
        fault.error.to_string().contains("\"pool\""),
        "{}",
        fault.error
    );
    let kept = h.scheduler.get_job("orphan", None).await.unwrap();
    assert_eq!(
        kept.and_then(|j| j.next_run_time()),
        Some(t(10)),
        "the job was removed or changed (APScheduler removes it)"
    );
    assert_eq!(
        due_calls_while_idle(&mut h, &store).await,
        0,
        "the loop spins on the still-due job"
    );
    assert!(h.calls.get().is_empty());

    // Once the executor is back, the job runs.
    h.scheduler
        .add_executor("pool", executors::ThreadPoolExecutor::new(1).unwrap())
        .await
        .unwrap();
    let Event::JobExecuted(run) = h.next(EventMask::JOB_EXECUTED).await else {
        unreachable!()
    };
    assert_eq!((&*run.job_id, run.scheduled_run_time), ("orphan", t(10)));
}

#[tokio::test]
async fn a_fire_the_store_gives_no_answer_for_is_not_run_and_is_reported() {
    let store = InstrumentedStore {
        unanswered: Some("lost"),
        ..InstrumentedStore::default()
    };
    let mut h = Harness::with_default_store(store.clone(), |b| b);
    h.scheduler.start().await.unwrap();
    for id in ["lost", "kept"] {
        h.scheduler
            .add_job(h.record_job(id, Once(t(5))))
            .await
            .unwrap();
    }
    h.set_time(5);
    let Event::SchedulerError(e) = h.next(EventMask::SCHEDULER_ERROR).await else {
        unreachable!()
    };
    assert_eq!(e.jobstore.as_deref(), Some("default"));
    assert_eq!(e.error.job_id(), Some("lost"));
    let Event::JobExecuted(run) = h.next(EventMask::JOB_EXECUTED).await else {
        unreachable!()
    };
    assert_eq!(&*run.job_id, "kept");
    assert_eq!(
        due_calls_while_idle(&mut h, &store).await,
        0,
        "the loop spins on the unanswered job"
    );
    assert_eq!(h.calls.get(), ["kept"], "the unanswered fire ran");
}

#[tokio::test]
async fn a_hung_store_times_out_and_the_other_stores_keep_running() {
    let hung = InstrumentedStore::default();
    let mut h = Harness::with_default_store(hung.clone(), |b| {
        b.jobstore("other", jobstore_memory::MemoryJobStore::new())
            .jobstore_call_timeout(Duration::from_millis(200))
    });
    h.scheduler.start().await.unwrap();
    h.scheduler
        .add_job(h.record_job("elsewhere", Once(t(5))).jobstore("other"))
        .await
        .unwrap();
    hung.hanging.store(true, Ordering::SeqCst);
    h.set_time(5);

    let Event::SchedulerError(e) = h.next(EventMask::SCHEDULER_ERROR).await else {
        unreachable!()
    };
    assert_eq!(e.jobstore.as_deref(), Some("default"));
    assert_eq!(e.error.kind(), ErrorKind::Backend);
    assert!(e.error.is_temporary(), "a timeout is worth retrying");
    let Event::JobExecuted(run) = h.next(EventMask::JOB_EXECUTED).await else {
        unreachable!()
    };
    assert_eq!(&*run.job_id, "elsewhere");
    // The loop is still alive and planned its retry.
    assert!(h.scheduler.health().is_alive());
}

#[tokio::test]
async fn the_loop_looks_again_within_its_maximum_wait_for_jobs_added_behind_its_back() {
    let shared = jobstore_memory::MemoryJobStore::new();
    let mut h =
        Harness::with_default_store(shared.clone(), |b| b.max_wait(Duration::from_secs(30)));
    h.scheduler.start().await.unwrap();
    // The loop found nothing and sleeps for its maximum wait.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while h.scheduler.health().next_wakeup != Some(t(30)) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the loop planned no look at t(30)"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Another process adds a job to the shared store: this scheduler is not told.
    let job = h
        .record_job("sneaky", Once(t(5)))
        .misfire_grace_time(None)
        .into_job(&JobDefaults::default(), t(0))
        .unwrap();
    scheduler_core::JobStore::add_job(&shared, job)
        .await
        .unwrap();
    h.set_time(5);
    h.assert_quiet(EventMask::JOB_SUBMITTED).await;
    assert!(h.calls.get().is_empty(), "woken without a cause");
    h.set_time(30);
    let Event::JobExecuted(run) = h.next(EventMask::JOB_EXECUTED).await else {
        unreachable!()
    };
    assert_eq!((&*run.job_id, run.scheduled_run_time), ("sneaky", t(5)));
}

#[tokio::test]
async fn a_full_due_batch_is_followed_at_once_by_the_next() {
    let store = InstrumentedStore::default();
    let mut h = Harness::with_default_store(store.clone(), |b| b.due_batch_size(2));
    h.scheduler.start().await.unwrap();
    for n in 0..5 {
        h.scheduler
            .add_job(h.record_job(&format!("j{n}"), Once(t(5))))
            .await
            .unwrap();
    }
    let before = store.due_calls.load(Ordering::SeqCst);
    h.set_time(5);
    let executed = h.next_n(EventMask::JOB_EXECUTED, 5).await;
    let mut ids: Vec<&str> = executed.iter().filter_map(Event::job_id).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["j0", "j1", "j2", "j3", "j4"]);
    assert!(
        store.due_calls.load(Ordering::SeqCst) - before >= 3,
        "five due jobs in batches of two take at least three batches"
    );
}

/// Adds `count` one-off jobs (`j000`, `j001`, ...) due at t(5); answers their ids.
async fn add_once_jobs_due_at_5(h: &Harness, count: usize) -> Vec<String> {
    let ids: Vec<String> = (0..count).map(|n| format!("j{n:03}")).collect();
    for id in &ids {
        h.scheduler
            .add_job(h.record_job(id, Once(t(5))))
            .await
            .unwrap();
    }
    ids
}

#[tokio::test]
async fn a_burst_starts_with_a_small_batch_then_takes_whole_ones_each_job_once() {
    let store = InstrumentedStore::default();
    let mut h = Harness::with_default_store(store.clone(), |b| b);
    h.scheduler.start().await.unwrap();
    let ids = add_once_jobs_due_at_5(&h, 100).await;
    h.set_time(5);
    let executed = h.next_n(EventMask::JOB_EXECUTED, ids.len()).await;
    let mut ran: Vec<&str> = executed.iter().filter_map(Event::job_id).collect();
    ran.sort_unstable();
    assert_eq!(ran, ids, "every due job runs once");
    let commits = store.commits.lock().unwrap().clone();
    let sizes: Vec<usize> = commits.iter().map(Vec::len).collect();
    // A small first batch, so the first runs start after a short read and commit.
    assert_eq!(sizes, [5, 95]);
    let mut committed: Vec<String> = commits.concat();
    committed.sort_unstable();
    assert_eq!(committed, ids, "each fire committed once");
}

#[tokio::test]
async fn a_slow_store_gets_batches_it_commits_in_a_tenth_of_a_second() {
    // 4 ms a fire: the 5 of the first batch take 20 ms, more than a quick pass, and 25 fires
    // are what this store commits in the 0.1 s a pass is sized to.
    let store = InstrumentedStore {
        commit_delay: Duration::from_millis(4),
        ..InstrumentedStore::default()
    };
    let mut h = Harness::with_default_store(store.clone(), |b| b);
    h.scheduler.start().await.unwrap();
    let ids = add_once_jobs_due_at_5(&h, 100).await;
    h.set_time(5);
    let executed = h.next_n(EventMask::JOB_EXECUTED, ids.len()).await;
    assert_eq!(executed.len(), ids.len());
    let commits = store.commits.lock().unwrap().clone();
    let sizes: Vec<usize> = commits.iter().map(Vec::len).collect();
    assert_eq!(sizes[0], 5, "a small first batch: {sizes:?}");
    // A whole batch (the other 95 in one commit) would start its first run 0.38 s late.
    assert!(
        sizes.len() > 2 && sizes[1..].iter().all(|&n| n <= 25),
        "batches of what the store commits in 0.1 s: {sizes:?}"
    );
    let mut committed: Vec<String> = commits.concat();
    committed.sort_unstable();
    assert_eq!(committed, ids, "each fire committed once");
}

#[tokio::test]
async fn due_batches_that_follow_a_full_one_are_committed_whole() {
    let store = InstrumentedStore::default();
    let mut h = Harness::with_default_store(store.clone(), |b| b.due_batch_size(64));
    h.scheduler.start().await.unwrap();
    let ids = add_once_jobs_due_at_5(&h, 200).await;
    h.set_time(5);
    let executed = h.next_n(EventMask::JOB_EXECUTED, ids.len()).await;
    assert_eq!(executed.len(), ids.len());
    let sizes: Vec<usize> = store.commits.lock().unwrap().iter().map(Vec::len).collect();
    // A small first batch, then whole batches, each in one commit.
    assert_eq!(sizes, [5, 64, 64, 64, 3]);
    // A later burst starts with a small batch again.
    store.commits.lock().unwrap().clear();
    for id in &ids {
        h.scheduler
            .add_job(h.record_job(&format!("again-{id}"), Once(t(10))))
            .await
            .unwrap();
    }
    h.set_time(10);
    h.next_n(EventMask::JOB_EXECUTED, ids.len()).await;
    let sizes: Vec<usize> = store.commits.lock().unwrap().iter().map(Vec::len).collect();
    assert_eq!(sizes, [5, 64, 64, 64, 3]);
}

#[tokio::test]
async fn modify_job_retries_when_the_job_changed_under_it() {
    let store = InstrumentedStore::default();
    let conflicts = store.conflicts.clone();
    let mut h = Harness::with_default_store(store, |b| b);
    h.scheduler.start().await.unwrap();
    h.scheduler
        .add_job(h.record_job("j", Once(t(100))))
        .await
        .unwrap();
    let before = h.scheduler.get_job("j", None).await.unwrap().unwrap();

    conflicts.store(3, Ordering::SeqCst);
    let modified = h
        .scheduler
        .modify_job("j", None, JobChanges::new().name("renamed"))
        .await
        .unwrap();
    assert_eq!(modified.name(), "renamed");
    assert_ne!(modified.revision(), before.revision());
    let stored = h.scheduler.get_job("j", None).await.unwrap().unwrap();
    assert_eq!(
        (stored.name(), stored.revision()),
        ("renamed", modified.revision())
    );
    assert!(matches!(
        h.next(EventMask::JOB_MODIFIED).await,
        Event::JobModified(e) if &*e.job_id == "j"
    ));

    // A job that keeps changing under it: a clear Conflict, not a loop without end.
    conflicts.store(1_000, Ordering::SeqCst);
    let err = h
        .scheduler
        .modify_job("j", None, JobChanges::new().name("again"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(
        conflicts.load(Ordering::SeqCst) > 900,
        "it retried without bound"
    );
    let stored = h.scheduler.get_job("j", None).await.unwrap().unwrap();
    assert_eq!(stored.name(), "renamed");
}

#[tokio::test]
async fn replace_existing_replaces_the_stored_job_in_one_step() {
    let h = Harness::new();
    h.scheduler.start().await.unwrap();
    let first = h
        .scheduler
        .add_job(h.record_job("j", Once(t(100))))
        .await
        .unwrap();
    let second = h
        .scheduler
        .add_job(
            h.record_job("j", Once(t(200)))
                .name("second")
                .replace_existing(true),
        )
        .await
        .unwrap();
    assert_ne!(second.revision(), first.revision());
    let jobs = h.scheduler.get_jobs(None).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(
        (jobs[0].name(), jobs[0].next_run_time(), jobs[0].revision()),
        ("second", Some(t(200)), second.revision())
    );
}

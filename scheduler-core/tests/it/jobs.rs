//! Adding, modifying, rescheduling, pausing, resuming and removing jobs.

use std::time::Duration;

use scheduler_core::{ErrorKind, Event, EventMask, JobChanges, JobSpec, JobTarget};

use crate::harness::{Harness, InstrumentedStore, Once, every, t};

#[tokio::test]
async fn conflicting_ids_fail_unless_replacing() {
    let mut h = Harness::new();
    h.scheduler.start().await.unwrap();
    h.scheduler
        .add_job(h.record_job("a", Once(t(10))))
        .await
        .unwrap();
    let err = h
        .scheduler
        .add_job(h.record_job("a", Once(t(20))))
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.job_id()),
        (ErrorKind::ConflictingId, Some("a"))
    );
    assert_eq!(
        h.scheduler
            .get_job("a", None)
            .await
            .unwrap()
            .unwrap()
            .next_run_time(),
        Some(t(10))
    );

    h.scheduler
        .add_job(h.record_job("a", Once(t(20))).replace_existing(true))
        .await
        .unwrap();
    assert_eq!(
        h.scheduler
            .get_job("a", None)
            .await
            .unwrap()
            .unwrap()
            .next_run_time(),
        Some(t(20))
    );
    let added = h.next_n(EventMask::JOB_ADDED, 2).await;
    assert!(added.iter().all(|e| e.job_id() == Some("a")));
}

#[tokio::test]
async fn add_jobs_answers_every_spec_and_adds_the_rest() {
    let mut h = Harness::new();
    h.scheduler.start().await.unwrap();
    h.scheduler
        .add_job(h.record_job("taken", Once(t(10))))
        .await
        .unwrap();
    h.next(EventMask::JOB_ADDED).await;
    let answers = h
        .scheduler
        .add_jobs([
            h.record_job("a", Once(t(10))),
            h.record_job("taken", Once(t(20))),
            h.record_job("b", Once(t(30))).jobstore("nowhere"),
            h.record_job("c", Once(t(40))),
            h.record_job("taken", Once(t(50))).replace_existing(true),
        ])
        .await
        .unwrap();
    let kinds: Vec<Option<ErrorKind>> = answers
        .iter()
        .map(|a| a.as_ref().err().map(|e| e.kind()))
        .collect();
    assert_eq!(
        kinds,
        [
            None,
            Some(ErrorKind::ConflictingId),
            Some(ErrorKind::Config),
            None,
            None
        ]
    );
    // Every job answered Ok is stored at the revision it carries, and announced once.
    for job in answers.iter().flatten() {
        let stored = h.scheduler.get_job(job.id(), None).await.unwrap().unwrap();
        assert_eq!(stored.revision(), job.revision(), "{}", job.id());
    }
    let mut added: Vec<String> = h
        .next_n(EventMask::JOB_ADDED, 3)
        .await
        .iter()
        .map(|e| e.job_id().unwrap().to_owned())
        .collect();
    added.sort();
    assert_eq!(added, ["a", "c", "taken"]);
    let taken = h.scheduler.get_job("taken", None).await.unwrap().unwrap();
    assert_eq!(
        taken.next_run_time(),
        Some(t(50)),
        "replace_existing applied"
    );
    assert_eq!(h.scheduler.get_jobs(None).await.unwrap().len(), 3);
}

#[tokio::test]
async fn pending_jobs_with_conflicting_ids_fail_the_start_and_stay_pending() {
    let h = Harness::new();
    h.scheduler
        .add_job(h.record_job("a", Once(t(10))))
        .await
        .unwrap();
    h.scheduler
        .add_job(h.record_job("a", Once(t(20))))
        .await
        .unwrap();
    assert_eq!(h.scheduler.get_jobs(None).await.unwrap().len(), 2);
    // The conflict is found before anything is added: the scheduler stays stopped and both
    // jobs stay pending, so the caller can fix the cause and start again.
    let err = h.scheduler.start().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConflictingId);
    assert_eq!(h.scheduler.state(), scheduler_core::SchedulerState::Stopped);
    assert_eq!(h.scheduler.get_jobs(None).await.unwrap().len(), 2);
    h.scheduler.remove_job("a", None).await.unwrap();
    h.scheduler.start().await.unwrap();
    assert_eq!(h.scheduler.get_jobs(None).await.unwrap().len(), 1);
}

#[tokio::test]
async fn bad_job_specs_are_typed_errors_and_add_nothing() {
    let h = Harness::new();
    h.scheduler.start().await.unwrap();
    let cases = [
        (
            h.record_job("s", Once(t(1))).jobstore("nope"),
            ErrorKind::Config,
        ),
        (
            h.record_job("e", Once(t(1))).executor("nope"),
            ErrorKind::Config,
        ),
        (
            h.record_job("m", Once(t(1))).max_instances(0),
            ErrorKind::InvalidJob,
        ),
        (
            h.record_job("g", Once(t(1)))
                .misfire_grace_time(Some(Duration::ZERO)),
            ErrorKind::InvalidJob,
        ),
    ];
    for (spec, kind) in cases {
        assert_eq!(h.scheduler.add_job(spec).await.unwrap_err().kind(), kind);
    }
    let unknown = h
        .scheduler
        .registry()
        .target("nope", serde_json::Value::Null)
        .unwrap_err();
    assert_eq!(unknown.kind(), ErrorKind::UnknownJobFunction);
    assert!(h.scheduler.get_jobs(None).await.unwrap().is_empty());
}

#[tokio::test]
async fn closures_run_from_the_memory_store() {
    let mut h = Harness::new();
    h.scheduler.start().await.unwrap();
    let calls = h.calls.clone();
    let closure = JobTarget::closure("closure", move || calls.push("closure ran".into()));
    let job = h
        .scheduler
        .add_job(JobSpec::new(closure, Once(t(0))))
        .await
        .unwrap();
    assert_eq!(job.id().len(), 32);
    assert_eq!(job.name(), "closure");
    h.next(EventMask::JOB_EXECUTED).await;
    assert_eq!(h.calls.get(), ["closure ran"]);
}

#[tokio::test]
async fn modify_changes_options_and_rejects_invalid_ones() {
    let mut h = Harness::new();
    h.scheduler.start().await.unwrap();
    h.scheduler
        .add_job(h.record_job("a", Once(t(10))))
        .await
        .unwrap();
    let job = h
        .scheduler
        .modify_job(
            "a",
            None,
            JobChanges::new()
                .name("renamed")
                .max_instances(5)
                .coalesce(false)
                .misfire_grace_time(None)
                .target(h.record.call("new args".into())),
        )
        .await
        .unwrap();
    assert_eq!(
        (job.name(), job.max_instances(), job.coalesce()),
        ("renamed", 5, false)
    );
    assert!(
        matches!(h.next(EventMask::JOB_MODIFIED).await, Event::JobModified(e) if &*e.job_id == "a")
    );

    let err = h
        .scheduler
        .modify_job("a", None, JobChanges::new().max_instances(0))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidJob);
    let stored = h.scheduler.get_job("a", None).await.unwrap().unwrap();
    assert_eq!(stored.max_instances(), 5);
    assert_eq!(stored.target().args_json(), Some("\"new args\""));
    let missing = h
        .scheduler
        .modify_job("x", None, JobChanges::new())
        .await
        .unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::JobNotFound);
    let wrong_store = h
        .scheduler
        .modify_job("a", Some("other"), JobChanges::new())
        .await
        .unwrap_err();
    assert_eq!(wrong_store.kind(), ErrorKind::JobNotFound);

    // Moving the next run time into the past makes it run right away.
    h.scheduler
        .modify_job("a", None, JobChanges::new().next_run_time(Some(t(0))))
        .await
        .unwrap();
    h.next(EventMask::JOB_EXECUTED).await;
    assert_eq!(h.calls.get(), ["new args"]);
}

#[tokio::test]
async fn modifying_a_pending_job_changes_what_start_adds() {
    let h = Harness::new();
    h.scheduler
        .add_job(h.record_job("a", Once(t(10))))
        .await
        .unwrap();
    h.scheduler
        .modify_job("a", None, JobChanges::new().name("renamed"))
        .await
        .unwrap();
    h.scheduler.start().await.unwrap();
    let job = h.scheduler.get_job("a", None).await.unwrap().unwrap();
    assert_eq!(job.name(), "renamed");
    assert_eq!(job.next_run_time(), Some(t(10)));
}

#[tokio::test]
async fn reschedule_computes_the_next_run_from_the_new_trigger() {
    let mut h = Harness::new();
    h.scheduler.start().await.unwrap();
    h.set_time(5);
    h.scheduler
        .add_job(h.record_job("a", Once(t(1000))))
        .await
        .unwrap();
    let job = h
        .scheduler
        .reschedule_job("a", None, every(60, t(0)))
        .await
        .unwrap();
    // An interval started at t(0), asked at t(5), next fires at t(60).
    assert_eq!(job.next_run_time(), Some(t(60)));
    assert_eq!(job.trigger().to_string(), "step[60s]");
    h.next(EventMask::JOB_MODIFIED).await;
}

#[tokio::test]
async fn paused_jobs_do_not_run_and_resume_from_now() {
    let mut h = Harness::new();
    h.scheduler.start().await.unwrap();
    h.scheduler
        .add_job(h.record_job("a", every(10, t(10))))
        .await
        .unwrap();
    let paused = h.scheduler.pause_job("a", None).await.unwrap();
    assert!(paused.is_paused());
    h.set_time(35);
    h.assert_quiet(EventMask::JOB_SUBMITTED).await;
    let resumed = h.scheduler.resume_job("a", None).await.unwrap().unwrap();
    // Resuming asks the trigger for its first fire time after now, skipping t(10)..t(30).
    assert_eq!(resumed.next_run_time(), Some(t(40)));
    h.set_time(40);
    let executed = h.next(EventMask::JOB_EXECUTED).await;
    assert_eq!(crate::harness::run_time(&executed), t(40));
}

#[tokio::test]
async fn resuming_a_finished_job_removes_it() {
    let mut h = Harness::new();
    h.scheduler.start().await.unwrap();
    h.scheduler
        .add_job(
            h.record_job("a", Once(t(10)))
                .paused()
                .misfire_grace_time(None),
        )
        .await
        .unwrap();
    h.set_time(20);
    // The date trigger still answers its date on a first call, as in APScheduler; a trigger
    // with nothing left answers None, and the job goes.
    let resumed = h.scheduler.resume_job("a", None).await.unwrap();
    assert_eq!(resumed.unwrap().next_run_time(), Some(t(10)));
    h.next(EventMask::JOB_EXECUTED).await;
    h.scheduler
        .add_job(
            JobSpec::new(h.record.call("b".into()), Never)
                .id("b")
                .paused(),
        )
        .await
        .unwrap();
    assert!(h.scheduler.resume_job("b", None).await.unwrap().is_none());
    assert!(
        matches!(h.next(EventMask::JOB_REMOVED).await, Event::JobRemoved(e) if &*e.job_id == "b")
    );
    assert!(h.scheduler.get_job("b", None).await.unwrap().is_none());
}

/// A trigger that never fires.
#[derive(Debug)]
struct Never;

impl std::fmt::Display for Never {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("never")
    }
}

impl scheduler_core::Trigger for Never {
    fn next_fire_time(
        &self,
        _: Option<chrono::DateTime<chrono::Utc>>,
        _: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>, scheduler_core::SearchExhausted> {
        Ok(None)
    }

    fn to_state(&self) -> scheduler_core::Result<scheduler_core::TriggerState> {
        scheduler_core::TriggerState::new("never", &())
    }
}

#[tokio::test]
async fn adding_a_job_whose_trigger_never_fires_stores_it_paused() {
    let h = Harness::new();
    h.scheduler.start().await.unwrap();
    let job = h
        .scheduler
        .add_job(JobSpec::new(h.record.call("n".into()), Never).id("n"))
        .await
        .unwrap();
    assert!(job.is_paused());
}

#[tokio::test]
async fn remove_and_remove_all_publish_events() {
    let mut h = Harness::with(|b| b.jobstore("other", jobstore_memory::MemoryJobStore::new()));
    h.scheduler.start().await.unwrap();
    for (id, store) in [("a", "default"), ("b", "default"), ("c", "other")] {
        h.scheduler
            .add_job(h.record_job(id, Once(t(100))).jobstore(store))
            .await
            .unwrap();
    }
    h.scheduler.remove_job("a", None).await.unwrap();
    assert!(
        matches!(h.next(EventMask::JOB_REMOVED).await, Event::JobRemoved(e) if &*e.job_id == "a")
    );
    assert_eq!(
        h.scheduler.remove_job("a", None).await.unwrap_err().kind(),
        ErrorKind::JobNotFound
    );
    assert_eq!(
        h.scheduler
            .remove_job("c", Some("default"))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::JobNotFound
    );

    h.scheduler.remove_all_jobs(Some("other")).await.unwrap();
    assert!(
        matches!(h.next(EventMask::ALL_JOBS_REMOVED).await, Event::AllJobsRemoved { jobstore: Some(s) } if &*s == "other")
    );
    let ids: Vec<String> = h
        .scheduler
        .get_jobs(None)
        .await
        .unwrap()
        .iter()
        .map(|j| j.id().to_owned())
        .collect();
    assert_eq!(ids, ["b"]);
    h.scheduler.remove_all_jobs(None).await.unwrap();
    assert!(matches!(
        h.next(EventMask::ALL_JOBS_REMOVED).await,
        Event::AllJobsRemoved { jobstore: None }
    ));
    assert!(h.scheduler.get_jobs(None).await.unwrap().is_empty());
}

#[tokio::test]
async fn pending_jobs_can_be_listed_looked_up_and_removed_before_start() {
    let mut h = Harness::new();
    h.scheduler
        .add_job(h.record_job("a", Once(t(10))))
        .await
        .unwrap();
    h.scheduler
        .add_job(h.record_job("b", Once(t(10))).jobstore("x"))
        .await
        .unwrap();
    assert_eq!(h.scheduler.get_jobs(Some("x")).await.unwrap().len(), 1);
    assert!(h.scheduler.get_job("a", None).await.unwrap().is_some());
    h.scheduler.remove_job("b", None).await.unwrap();
    assert!(
        matches!(h.next(EventMask::JOB_REMOVED).await, Event::JobRemoved(e) if &*e.jobstore == "x")
    );
    h.scheduler.remove_all_jobs(None).await.unwrap();
    assert!(h.scheduler.get_jobs(None).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_added_while_the_scheduler_starts_are_all_scheduled() {
    // A store slow to start and to add job "slow" widens the window of a concurrent start
    // (which adds the pending jobs).
    let slow = InstrumentedStore {
        start_delay: Duration::from_millis(200),
        slow_add: Some(("slow", Duration::from_millis(200))),
        ..InstrumentedStore::default()
    };
    let h = Harness::with_default_store(slow, |b| b);
    h.scheduler
        .add_job(h.record_job("slow", Once(t(100))))
        .await
        .unwrap();
    let scheduler = h.scheduler.clone();
    let start = tokio::spawn(async move { scheduler.start().await });
    // Past the store's start, while the pending "slow" job is being added.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut adds = tokio::task::JoinSet::new();
    for i in 0..50 {
        let (scheduler, spec) = (
            h.scheduler.clone(),
            h.record_job(&format!("j{i}"), Once(t(100))),
        );
        adds.spawn(async move { scheduler.add_job(spec).await });
    }
    while let Some(added) = adds.join_next().await {
        added.unwrap().unwrap();
    }
    start.await.unwrap().unwrap();
    let jobs = h.scheduler.get_jobs(None).await.unwrap();
    assert_eq!(jobs.len(), 51);
    assert!(
        jobs.iter().all(|j| j.next_run_time() == Some(t(100))),
        "a job stayed pending"
    );
}

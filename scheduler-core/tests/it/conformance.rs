//! The conformance suite's persistent cases, run against the record adapter over the model
//! record backend (`testkit::RecordMap`): rows that outlive `shutdown`, decoded with the codec
//! of whichever process reads them. It proves the persistent cases pass for a store built the
//! way every persistent backend is (and fail for one that is not), before any real backend
//! runs them.

use scheduler_core::RecordJobStore;
use scheduler_core::testkit::{Namespace, RecordMap};

type RecordStore = RecordJobStore<RecordMap>;

fn record_store() -> RecordStore {
    RecordJobStore::new(RecordMap::new())
}

async fn setup(ns: Namespace) -> anyhow::Result<RecordStore> {
    Ok(RecordJobStore::new(ns.shared(RecordMap::new)))
}

mod reference_store {
    scheduler_core::jobstore_conformance!(super::setup, persistent);
}

/// The model backend opened by URL through [`Components`](scheduler_core::Components), as the
/// jobs tool opens a store: behind `Arc<dyn DynRecordStore>`, every method (the cluster ones
/// too) must reach the backend, or the persistent cases fail.
mod opened_by_url {
    use std::sync::Arc;

    use scheduler_core::testkit::{Namespace, RecordMap};
    use scheduler_core::{Components, DynRecordStore, RecordJobStore};

    async fn setup(ns: Namespace) -> anyhow::Result<RecordJobStore<Arc<dyn DynRecordStore>>> {
        let records = ns.shared(RecordMap::new);
        let components = Components::new();
        components.register_record_store(
            "model",
            &["model"],
            Arc::new(move |_| Ok(Arc::new(records.clone()) as Arc<dyn DynRecordStore>)),
        );
        let records = components.open_records("model://suite", Default::default())?;
        Ok(RecordJobStore::new(records))
    }

    scheduler_core::jobstore_conformance!(setup, persistent);
}

/// The model backend declaring the range a Redis score holds exactly (±2^53 µs around 1970),
/// so the suite sees run times refused as `Unrepresentable` and fires paused at the edges.
#[derive(Debug, Clone, Default)]
struct NarrowRange(RecordMap);

mod narrow_range {
    use std::ops::RangeInclusive;

    use chrono::{DateTime, Utc};
    use scheduler_core::store::{RecordFireCommit, ScheduleEntry, StoredRecord, from_micros};
    use scheduler_core::{FireAnswers, RecordStore, Result, StoreContext};

    impl RecordStore for super::NarrowRange {
        fn run_time_range(&self) -> RangeInclusive<DateTime<Utc>> {
            let exact = 1_i64 << 53;
            from_micros(-exact).unwrap()..=from_micros(exact).unwrap()
        }
        async fn start(&self, ctx: &StoreContext) -> Result<()> {
            self.0.start(ctx).await
        }
        async fn shutdown(&self) -> Result<()> {
            self.0.shutdown().await
        }
        async fn get(&self, id: &str) -> Result<Option<StoredRecord>> {
            self.0.get(id).await
        }
        async fn due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<StoredRecord>> {
            self.0.due(now, limit).await
        }
        async fn next_run_times(&self, limit: usize) -> Result<Vec<ScheduleEntry>> {
            self.0.next_run_times(limit).await
        }
        async fn all(&self) -> Result<Vec<StoredRecord>> {
            self.0.all().await
        }
        async fn insert(&self, record: StoredRecord) -> Result<bool> {
            self.0.insert(record).await
        }
        async fn upsert(&self, record: StoredRecord) -> Result<()> {
            self.0.upsert(record).await
        }
        async fn update(&self, record: StoredRecord, expected_revision: u64) -> Result<bool> {
            self.0.update(record, expected_revision).await
        }
        async fn remove(&self, id: &str) -> Result<bool> {
            self.0.remove(id).await
        }
        async fn remove_all(&self) -> Result<()> {
            self.0.remove_all().await
        }
        async fn commit_fires(&self, commits: &[RecordFireCommit]) -> Result<FireAnswers> {
            self.0.commit_fires(commits).await
        }
    }

    async fn setup(
        ns: scheduler_core::testkit::Namespace,
    ) -> anyhow::Result<scheduler_core::RecordJobStore<super::NarrowRange>> {
        Ok(scheduler_core::RecordJobStore::new(
            ns.shared(super::NarrowRange::default),
        ))
    }

    scheduler_core::jobstore_conformance!(setup, persistent);
}

/// A store that declares a narrower range refuses what it cannot hold, and pauses (and
/// reports) a job whose next fire falls outside it, instead of rounding.
#[tokio::test]
async fn a_run_time_the_store_cannot_hold_is_refused_or_pauses_the_job() {
    use scheduler_core::testkit::{StepTrigger, at};
    use scheduler_core::{ErrorKind, Event, FaultAction};
    use scheduler_core::{EventBus, EventMask, FireCommit, FireOutcome, JobStore, StoreContext};

    let store = RecordJobStore::new(NarrowRange::default());
    let events = EventBus::new();
    let mut faults = events.subscribe(EventMask::JOB_FAULT);
    let functions = scheduler_core::JobRegistry::new();
    let echo = functions.register_sync("echo", |_: serde_json::Value| ());
    let triggers = scheduler_core::TriggerRegistry::new();
    triggers.register_serde::<StepTrigger>(StepTrigger::KIND);
    let codec = scheduler_core::JobCodec::new(functions, triggers);
    store
        .start(StoreContext::new("narrow", codec, events))
        .await
        .unwrap();
    let job = |id: &str, first| {
        scheduler_core::JobSpec::new(
            echo.call(serde_json::Value::Null),
            StepTrigger {
                start: first,
                step_secs: 60,
            },
        )
        .id(id)
        .next_run_time(first)
        .into_job(&Default::default(), at(0))
        .unwrap()
    };
    let year_2300 = "2300-01-01T00:00:00Z".parse().unwrap();
    let err = store.add_job(job("far", year_2300)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unrepresentable);
    assert_eq!(err.job_id(), Some("far"));
    assert!(store.lookup_job("far").await.unwrap().is_none());

    store.add_job(job("near", at(0))).await.unwrap();
    let due = store.get_due_jobs(at(0), 10).await.unwrap();
    let commit = FireCommit::of(&due[0], FireOutcome::Reschedule(year_2300)).unwrap();
    let answers = store.commit_fires(&[commit]).await.unwrap();
    assert_eq!(
        answers.get("near"),
        Some(scheduler_core::FireAnswer::Committed)
    );
    let near = store.lookup_job("near").await.unwrap().unwrap();
    assert!(near.is_paused(), "paused, not rounded: {near:?}");
    match faults.try_recv() {
        Some(Event::JobFault(e)) => {
            assert_eq!(
                (&*e.job_id, &*e.jobstore, e.action),
                ("near", "narrow", FaultAction::Paused)
            );
            assert_eq!(e.error.kind(), ErrorKind::Unrepresentable);
        }
        other => panic!("expected a JobFault, got {other:?}"),
    }
}

/// A scheduler on a persistent store: closures are refused, registered jobs round-trip
/// through their records (trigger state included) and run.
#[tokio::test]
async fn scheduler_on_a_persistent_store_refuses_closures_and_runs_saved_jobs() {
    use crate::harness::{Harness, Once, t};
    use scheduler_core::{ErrorKind, EventMask, JobSpec, JobTarget, TriggerRegistry};

    let triggers = TriggerRegistry::new();
    triggers.register_serde::<Once>("once");
    let mut h = Harness::with(|b| b.triggers(triggers).jobstore("records", record_store()));
    h.scheduler.start().await.unwrap();
    let closure = JobSpec::new(JobTarget::closure("c", || ()), Once(t(0))).jobstore("records");
    let err = h.scheduler.add_job(closure).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotPersistable);

    h.scheduler
        .add_job(h.record_job("saved", Once(t(5))).jobstore("records"))
        .await
        .unwrap();
    let stored = h
        .scheduler
        .get_job("saved", Some("records"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.trigger().to_string(),
        "date[2026-01-01 00:00:05 UTC]"
    );
    h.set_time(5);
    let executed = h.next(EventMask::JOB_EXECUTED).await;
    assert_eq!(executed.jobstore(), Some("records"));
    assert!(h.scheduler.get_job("saved", None).await.unwrap().is_none());
}

/// The built-in triggers restore from their saved state through `triggers::registry()`.
#[tokio::test]
async fn built_in_triggers_survive_a_persistent_store() {
    use crate::harness::{Harness, t};
    use scheduler_core::{EventMask, JobSpec};
    use std::time::Duration;

    let mut h = Harness::with(|b| {
        b.triggers(triggers::registry())
            .jobstore("records", record_store())
    });
    h.scheduler.start().await.unwrap();
    let every_10s = triggers::IntervalTrigger::builder()
        .every(Duration::from_secs(10))
        .start_date(t(10))
        .build_at(t(0))
        .unwrap();
    h.scheduler
        .add_job(
            JobSpec::new(h.record.call("tick".into()), every_10s)
                .id("tick")
                .jobstore("records"),
        )
        .await
        .unwrap();
    for n in 1..=2 {
        h.set_time(10 * n);
        let executed = h.next(EventMask::JOB_EXECUTED).await;
        assert_eq!(crate::harness::run_time(&executed), t(10 * n));
    }
    let job = h.scheduler.get_job("tick", None).await.unwrap().unwrap();
    assert_eq!(job.next_run_time(), Some(t(30)));
    assert_eq!(job.trigger().to_string(), "interval[0:00:10]");
}

/// A record this process cannot read, in a persistent store the scheduler runs: reported once
/// as a `JobFault` on the scheduler's bus naming the store and the job, left in the store as
/// it was, and not woken for again; the readable job beside it runs.
#[tokio::test]
async fn an_unreadable_record_is_reported_by_the_scheduler_once_and_left_alone() {
    use crate::harness::{Harness, Once, t};
    use scheduler_core::store::StoredRecord;
    use scheduler_core::{EventMask, FaultAction, RecordStore, TriggerRegistry};

    let records = RecordMap::new();
    let triggers = TriggerRegistry::new();
    triggers.register_serde::<Once>("once");
    let mut h = Harness::with(|b| {
        b.triggers(triggers)
            .jobstore("records", RecordJobStore::new(records.clone()))
    });
    let planted = StoredRecord {
        id: "ghost".into(),
        next_run_time: Some(t(5)),
        revision: 3,
        json: serde_json::json!({
            "version": 1, "id": "ghost", "name": "ghost", "func": "gone", "args": null,
            "trigger": {"kind": "once", "state": t(5)}, "executor": "default",
            "misfire_grace_time": 1.0, "coalesce": true, "max_instances": 1,
            "next_run_time": t(5),
        })
        .to_string(),
    };
    records.upsert(planted.clone()).await.unwrap();
    h.scheduler.start().await.unwrap();
    h.scheduler
        .add_job(h.record_job("good", Once(t(5))).jobstore("records"))
        .await
        .unwrap();
    h.set_time(5);
    let scheduler_core::Event::JobFault(fault) = h.next(EventMask::JOB_FAULT).await else {
        unreachable!()
    };
    assert_eq!(
        (&*fault.job_id, &*fault.jobstore, fault.action),
        ("ghost", "records", FaultAction::Skipped)
    );
    assert_eq!(
        fault.error.kind(),
        scheduler_core::ErrorKind::UnknownJobFunction
    );
    let scheduler_core::Event::JobExecuted(run) = h.next(EventMask::JOB_EXECUTED).await else {
        unreachable!()
    };
    assert_eq!(&*run.job_id, "good");
    h.scheduler.wakeup();
    h.assert_quiet(EventMask::JOB_FAULT | EventMask::JOB_SUBMITTED)
        .await;
    assert_eq!(records.get("ghost").await.unwrap(), Some(planted));
}

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

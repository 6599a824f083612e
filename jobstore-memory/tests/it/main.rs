//! The shared job-store conformance suite, run against the memory store.

use jobstore_memory::MemoryJobStore;
use scheduler_core::testkit::Namespace;

/// Handles on one namespace share one store: clones share their jobs.
async fn setup(ns: Namespace) -> anyhow::Result<MemoryJobStore> {
    Ok(ns.shared(MemoryJobStore::new))
}

scheduler_core::jobstore_conformance!(setup, in_memory);

#[test]
fn configuration_builds_a_memory_store_and_rejects_options() {
    let components = scheduler_core::Components::new();
    jobstore_memory::register(&components);
    let entry: scheduler_core::ComponentConfig =
        serde_json::from_str(r#"{"type": "memory"}"#).unwrap();
    let store = components.build_jobstore("default", &entry).unwrap();
    assert!(store.capabilities().closures);
    let entry: scheduler_core::ComponentConfig =
        serde_json::from_str(r#"{"type": "memory", "path": "/tmp/x"}"#).unwrap();
    let err = components.build_jobstore("default", &entry).unwrap_err();
    assert_eq!(err.kind(), scheduler_core::ErrorKind::Config);
}

/// Jobs due at the same instant share one place in the order: they list by id, and adding,
/// firing and removing any of them keeps the others in place.
#[tokio::test]
async fn jobs_due_at_the_same_instant_list_by_id_through_adds_fires_and_removals() {
    use scheduler_core::chrono::{DateTime, TimeDelta, Utc};
    use scheduler_core::store::{FireAnswer, FireOutcome};
    use scheduler_core::testkit::StepTrigger;
    use scheduler_core::{FireCommit, JobDefaults, JobSpec, JobStore, JobTarget};

    let t0 = DateTime::<Utc>::from_timestamp(1_767_225_600, 0).unwrap();
    let store = MemoryJobStore::new();
    let add = |id: &'static str, at: DateTime<Utc>| {
        let spec = JobSpec::new(
            JobTarget::closure("noop", || ()),
            StepTrigger {
                start: at,
                step_secs: 60,
            },
        )
        .id(id);
        let job = spec.into_job(&JobDefaults::default(), t0).unwrap();
        let store = store.clone();
        async move { store.add_job(job).await.unwrap() }
    };
    let ids = || async {
        let jobs = store.get_all_jobs().await.unwrap();
        jobs.iter().map(|j| j.id().to_owned()).collect::<Vec<_>>()
    };
    add("c", t0).await;
    add("late", t0 + TimeDelta::seconds(5)).await;
    add("a", t0).await;
    add("b", t0).await;
    assert_eq!(ids().await, ["a", "b", "c", "late"]);
    let due = store.get_due_jobs(t0, 2).await.unwrap();
    assert_eq!(due.iter().map(|j| j.id()).collect::<Vec<_>>(), ["a", "b"]);

    // Firing "b" moves it after "late"; removing "a" leaves "c" alone at t0.
    let b = &due[1];
    let later = t0 + TimeDelta::seconds(60);
    let answers = store
        .commit_fires(&[FireCommit::new(
            "b",
            t0,
            b.revision(),
            FireOutcome::Reschedule(later),
        )])
        .await
        .unwrap();
    assert_eq!(answers.get("b"), Some(FireAnswer::Committed));
    store.remove_job("a").await.unwrap();
    assert_eq!(ids().await, ["c", "late", "b"]);
    assert_eq!(store.get_next_run_time().await.unwrap(), Some(t0));

    // A job joining "c" at t0 ties again; removing both empties t0.
    add("0", t0).await;
    assert_eq!(ids().await, ["0", "c", "late", "b"]);
    store.remove_job("c").await.unwrap();
    store.remove_job("0").await.unwrap();
    assert_eq!(ids().await, ["late", "b"]);
    assert_eq!(
        store.get_next_run_time().await.unwrap(),
        Some(t0 + TimeDelta::seconds(5))
    );
}

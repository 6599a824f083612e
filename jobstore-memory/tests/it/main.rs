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

/// A job `id` that runs every minute from `at`, made at `now`.
fn stepping_job(
    id: &str,
    at: scheduler_core::chrono::DateTime<scheduler_core::chrono::Utc>,
    now: scheduler_core::chrono::DateTime<scheduler_core::chrono::Utc>,
) -> scheduler_core::Job {
    use scheduler_core::testkit::StepTrigger;
    use scheduler_core::{JobDefaults, JobSpec, JobTarget};

    let trigger = StepTrigger {
        start: at,
        step_secs: 60,
    };
    JobSpec::new(JobTarget::closure("noop", || ()), trigger)
        .id(id)
        .into_job(&JobDefaults::default(), now)
        .unwrap()
}

/// Jobs due at the same instant share one place in the order: they list by id, and adding,
/// firing and removing any of them keeps the others in place.
#[tokio::test]
async fn jobs_due_at_the_same_instant_list_by_id_through_adds_fires_and_removals() {
    use scheduler_core::chrono::{DateTime, TimeDelta, Utc};
    use scheduler_core::store::{FireAnswer, FireOutcome};
    use scheduler_core::{FireCommit, JobStore};

    let t0 = DateTime::<Utc>::from_timestamp(1_767_225_600, 0).unwrap();
    let store = MemoryJobStore::new();
    let add = |id: &'static str, at: DateTime<Utc>| {
        let job = stepping_job(id, at, t0);
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

/// Fire commits that remove tied jobs take them out of the order together: the first ones
/// of a run time at once, others one by one, with reschedules and stale commits between.
#[tokio::test]
async fn fires_removing_tied_jobs_keep_the_rest_in_order() {
    use scheduler_core::chrono::{DateTime, TimeDelta, Utc};
    use scheduler_core::store::{FireAnswer, FireOutcome};
    use scheduler_core::{FireCommit, JobStore};

    let t0 = DateTime::<Utc>::from_timestamp(1_767_225_600, 0).unwrap();
    let t1 = t0 + TimeDelta::seconds(5);
    let later = t0 + TimeDelta::seconds(60);
    let store = MemoryJobStore::new();
    let mut revisions = std::collections::HashMap::new();
    for (id, at) in [
        ("a", t0),
        ("b", t0),
        ("c", t0),
        ("d", t0),
        ("e", t0),
        ("f", t0),
        ("x", t1),
        ("y", t1),
        ("z", t1),
    ] {
        let job = stepping_job(id, at, t0);
        revisions.insert(id, store.add_job(job).await.unwrap());
    }
    let ids = || async {
        let jobs = store.get_all_jobs().await.unwrap();
        jobs.iter().map(|j| j.id().to_owned()).collect::<Vec<_>>()
    };
    let fire = |id: &'static str, at, outcome| FireCommit::new(id, at, revisions[id], outcome);
    let commits = [
        // The first two of t0, then one moved on.
        fire("a", t0, FireOutcome::Remove),
        fire("b", t0, FireOutcome::Remove),
        fire("f", t0, FireOutcome::Reschedule(later)),
        // Not the first left ("c" is), and one at a stale revision.
        fire("d", t0, FireOutcome::Remove),
        FireCommit::new("e", t0, revisions["e"] + 100, FireOutcome::Remove),
        // The first and the last of t1.
        fire("x", t1, FireOutcome::Remove),
        fire("z", t1, FireOutcome::Remove),
    ];
    let answers = store.commit_fires(&commits).await.unwrap();
    assert_eq!(answers.get("a"), Some(FireAnswer::Committed));
    assert_eq!(answers.get("e"), Some(FireAnswer::Stale));
    assert_eq!(answers.get("z"), Some(FireAnswer::Committed));
    assert_eq!(ids().await, ["c", "e", "y", "f"]);
    assert_eq!(store.len(), 4);
    assert_eq!(store.get_next_run_time().await.unwrap(), Some(t0));

    // Every job left at t0, then the one alone at t1.
    let commits = [
        fire("c", t0, FireOutcome::Remove),
        fire("e", t0, FireOutcome::Remove),
        fire("y", t1, FireOutcome::Remove),
    ];
    store.commit_fires(&commits).await.unwrap();
    assert_eq!(ids().await, ["f"]);
    assert_eq!(store.get_next_run_time().await.unwrap(), Some(later));
    let due = store.get_due_jobs(later, 10).await.unwrap();
    assert_eq!(due.iter().map(|j| j.id()).collect::<Vec<_>>(), ["f"]);
}

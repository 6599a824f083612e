//! Run-now requests stored with a job (`store::admin::request_run`, the jobs tool's `run ID`),
//! honoured by the schedulers on a persistent store (the model backend, `RecordMap`): one run
//! now, `max_instances` obeyed, the planned schedule restored in the fire commit, once across
//! schedulers.

use scheduler_core::store::admin;
use scheduler_core::testkit::{RecordMap, StepTrigger};
use scheduler_core::{
    Event, EventMask, JobSpec, RecordJobStore, RecordStore, SchedulerBuilder, TriggerRegistry,
};

use crate::harness::{Harness, Once, every, run_time, run_times, t};

fn on_records(records: &RecordMap) -> impl FnOnce(SchedulerBuilder) -> SchedulerBuilder {
    let triggers = TriggerRegistry::new();
    triggers.register_serde::<StepTrigger>(StepTrigger::KIND);
    triggers.register_serde::<Once>("once");
    let store = RecordJobStore::new(records.clone());
    move |b| b.triggers(triggers).jobstore("records", store)
}

/// The stored row of `id`: its run time column, and its record's copy and request field.
async fn row(records: &RecordMap, id: &str) -> admin::RecordView {
    admin::get(records, id).await.unwrap()
}

#[tokio::test]
async fn a_stored_request_runs_the_job_once_now_and_keeps_its_schedule_and_phase() {
    let records = RecordMap::new();
    let mut h = Harness::with(on_records(&records));
    h.scheduler.start().await.unwrap();
    h.scheduler
        .add_job(h.record_job("tick", every(10, t(10))).jobstore("records"))
        .await
        .unwrap();
    h.set_time(3);
    let request = admin::request_run(&records, "tick", t(3)).await.unwrap();
    assert_eq!((request.at, request.planned), (t(3), Some(t(10))));
    h.scheduler.wakeup();

    let submitted = h.next(EventMask::JOB_SUBMITTED).await;
    assert_eq!(run_times(&submitted), [t(3)]);
    let executed = h.next(EventMask::JOB_EXECUTED).await;
    assert_eq!(run_time(&executed), t(3));
    let view = row(&records, "tick").await;
    assert_eq!(
        view.next_run_time,
        Some(t(10)),
        "the planned run is restored"
    );
    assert!(
        view.run_request().is_none(),
        "the request is spent: {view:?}"
    );
    assert!(
        !view.json.contains("run_requested_at"),
        "the spent request stays in the record: {}",
        view.json
    );
    let job = h.scheduler.get_job("tick", None).await.unwrap().unwrap();
    assert_eq!(job.next_run_time(), Some(t(10)));
    h.scheduler.wakeup();
    h.assert_quiet(EventMask::JOB_SUBMITTED).await;

    // The interval keeps its phase: the next runs are at 10 and 20, not 13 and 23.
    h.set_time(10);
    assert_eq!(run_time(&h.next(EventMask::JOB_EXECUTED).await), t(10));
    h.set_time(20);
    assert_eq!(run_time(&h.next(EventMask::JOB_EXECUTED).await), t(20));
    assert_eq!(h.calls.get(), ["tick", "tick", "tick"]);
}

#[tokio::test]
async fn a_paused_job_runs_once_and_stays_paused() {
    let records = RecordMap::new();
    let mut h = Harness::with(on_records(&records));
    h.scheduler.start().await.unwrap();
    h.scheduler
        .add_job(h.record_job("p", every(10, t(10))).jobstore("records"))
        .await
        .unwrap();
    h.scheduler.pause_job("p", None).await.unwrap();
    h.set_time(5);
    let request = admin::request_run(&records, "p", t(5)).await.unwrap();
    assert_eq!(request.planned, None);
    h.scheduler.wakeup();
    assert_eq!(run_time(&h.next(EventMask::JOB_EXECUTED).await), t(5));
    let job = h.scheduler.get_job("p", None).await.unwrap().unwrap();
    assert!(job.is_paused(), "{job:?}");
    h.set_time(30);
    h.assert_quiet(EventMask::JOB_SUBMITTED | EventMask::JOB_EXECUTED)
        .await;
    assert_eq!(h.calls.get(), ["p"]);
}

#[tokio::test]
async fn a_request_obeys_max_instances_and_is_spent_when_refused() {
    let records = RecordMap::new();
    let mut h = Harness::with(on_records(&records));
    h.scheduler.start().await.unwrap();
    h.scheduler
        .add_job(
            JobSpec::new(h.wait.call("slow".into()), Once(t(100)))
                .id("slow")
                .jobstore("records"),
        )
        .await
        .unwrap();
    h.set_time(1);
    admin::request_run(&records, "slow", t(1)).await.unwrap();
    h.scheduler.wakeup();
    h.next(EventMask::JOB_SUBMITTED).await;

    // The first run still waits on the gate: the second request is refused, not queued.
    h.set_time(2);
    admin::request_run(&records, "slow", t(2)).await.unwrap();
    h.scheduler.wakeup();
    let Event::JobMaxInstances(refused) = h.next(EventMask::JOB_MAX_INSTANCES).await else {
        unreachable!()
    };
    assert_eq!(
        (&*refused.job_id, refused.scheduled_run_times.to_vec()),
        ("slow", vec![t(2)])
    );
    let view = row(&records, "slow").await;
    assert_eq!(
        (view.next_run_time, view.run_request()),
        (Some(t(100)), None),
        "the refused request is spent and the plan kept"
    );

    h.gate.add_permits(2);
    h.next(EventMask::JOB_EXECUTED).await;
    h.scheduler.wakeup();
    h.assert_quiet(EventMask::JOB_SUBMITTED).await;
    assert_eq!(h.calls.get(), ["slow"]);
}

/// Two schedulers on one store: the request runs the job once, on one of them.
#[tokio::test]
async fn schedulers_sharing_a_store_honour_a_request_once() {
    let records = RecordMap::new();
    let mut first = Harness::with(on_records(&records));
    let mut second = Harness::with(on_records(&records));
    first.scheduler.start().await.unwrap();
    second.scheduler.start().await.unwrap();
    first
        .scheduler
        .add_job(
            first
                .record_job("shared", every(60, t(60)))
                .jobstore("records"),
        )
        .await
        .unwrap();
    first.set_time(7);
    second.set_time(7);
    admin::request_run(&records, "shared", t(7)).await.unwrap();
    first.scheduler.wakeup();
    second.scheduler.wakeup();

    let mut runs = Vec::new();
    for h in [&mut first, &mut second] {
        runs.extend(
            h.drain()
                .await
                .into_iter()
                .filter(|code| *code == EventMask::JOB_EXECUTED),
        );
    }
    let calls = [first.calls.get(), second.calls.get()].concat();
    assert_eq!(
        (runs.len(), calls),
        (1, vec!["shared".to_owned()]),
        "the request ran on both schedulers, or none"
    );
    assert_eq!(
        row(&records, "shared").await.next_run_time,
        Some(t(60)),
        "the plan is not restored"
    );
}

/// A job modified through the scheduler while its request is pending keeps the request
/// (the job's record carries it through the rewrite).
#[tokio::test]
async fn a_pending_request_survives_a_change_made_through_the_scheduler() {
    let records = RecordMap::new();
    let mut h =
        Harness::with(|b| on_records(&records)(b).max_wait(std::time::Duration::from_secs(3600)));
    h.scheduler.start_paused().await.unwrap();
    h.scheduler
        .add_job(
            h.record_job("renamed", every(10, t(10)))
                .jobstore("records"),
        )
        .await
        .unwrap();
    h.set_time(4);
    admin::request_run(&records, "renamed", t(4)).await.unwrap();
    h.scheduler
        .modify_job(
            "renamed",
            None,
            scheduler_core::JobChanges::new().name("nightly"),
        )
        .await
        .unwrap();
    let view = row(&records, "renamed").await;
    assert_eq!(
        view.run_request().map(|r| (r.at, r.planned)),
        Some((t(4), Some(t(10)))),
        "{view:?}"
    );
    h.scheduler.resume().unwrap();
    assert_eq!(run_time(&h.next(EventMask::JOB_EXECUTED).await), t(4));
    assert_eq!(row(&records, "renamed").await.next_run_time, Some(t(10)));
}

/// A record saying a request was made at a time its row no longer has (an older build fired
/// the job as an ordinary due run, or an operator moved the row) carries no request.
#[tokio::test]
async fn a_spent_request_left_in_a_record_is_not_run_again() {
    let records = RecordMap::new();
    let mut h = Harness::with(on_records(&records));
    h.scheduler.start().await.unwrap();
    h.scheduler
        .add_job(h.record_job("old", every(10, t(10))).jobstore("records"))
        .await
        .unwrap();
    let stored = records.get("old").await.unwrap().unwrap();
    let mut record: serde_json::Value = serde_json::from_str(&stored.json).unwrap();
    record["run_requested_at"] = serde_json::json!(t(2));
    records
        .upsert(scheduler_core::store::StoredRecord {
            json: record.to_string(),
            ..stored
        })
        .await
        .unwrap();
    h.set_time(5);
    h.scheduler.wakeup();
    h.assert_quiet(EventMask::JOB_SUBMITTED).await;
    h.set_time(10);
    assert_eq!(run_time(&h.next(EventMask::JOB_EXECUTED).await), t(10));
    let view = row(&records, "old").await;
    assert_eq!(view.next_run_time, Some(t(20)));
    assert!(!view.json.contains("run_requested_at"), "{}", view.json);
}

//! The main loop: due jobs, missed runs, coalescing, max instances, catch-up, failures.

use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{DateTime, Utc};
use scheduler_core::{Event, EventMask, JobSpec};

use crate::harness::{Harness, InstrumentedStore, Once, every, run_time, run_times, secs, t};

#[tokio::test]
async fn a_date_job_runs_once_then_is_removed() {
    let mut h = Harness::new();
    h.scheduler.start().await.unwrap();
    h.scheduler
        .add_job(h.record_job("a", Once(t(10))))
        .await
        .unwrap();
    h.assert_quiet(EventMask::JOB_SUBMITTED).await;
    h.set_time(10);
    let events = h
        .next_n(
            EventMask::JOB_SUBMITTED | EventMask::JOB_REMOVED | EventMask::JOB_EXECUTED,
            3,
        )
        .await;
    assert_eq!(run_times(&events[0]), [t(10)]);
    let rest: Vec<EventMask> = events[1..].iter().map(Event::code).collect();
    assert!(rest.contains(&EventMask::JOB_REMOVED) && rest.contains(&EventMask::JOB_EXECUTED));
    let executed = events
        .iter()
        .find(|e| matches!(e, Event::JobExecuted(_)))
        .unwrap();
    let Event::JobExecuted(run) = executed else {
        unreachable!()
    };
    assert_eq!(run.retval, "a");
    assert_eq!(run.scheduled_run_time, t(10));
    assert!(h.scheduler.get_job("a", None).await.unwrap().is_none());
    assert_eq!(h.calls.get(), ["a"]);
}

#[tokio::test]
async fn the_submission_is_published_before_the_outcome() {
    let mut h = Harness::new();
    h.scheduler.start().await.unwrap();
    for i in 0..50 {
        h.scheduler
            .add_job(h.record_job(&format!("j{i}"), Once(t(0))))
            .await
            .unwrap();
    }
    let mut submitted = std::collections::HashSet::new();
    for _ in 0..100 {
        match h
            .next(EventMask::JOB_SUBMITTED | EventMask::JOB_EXECUTED)
            .await
        {
            Event::JobSubmitted(e) => assert!(submitted.insert(e.job_id.clone())),
            Event::JobExecuted(e) => assert!(
                submitted.contains(&e.job_id),
                "{} executed before submitted",
                e.job_id
            ),
            _ => unreachable!(),
        }
    }
}

#[tokio::test]
async fn an_interval_job_runs_at_each_fire_time() {
    let mut h = Harness::new();
    h.scheduler.start().await.unwrap();
    h.scheduler
        .add_job(h.record_job("tick", every(10, t(10))))
        .await
        .unwrap();
    for n in 1..=3 {
        h.set_time(10 * n);
        let executed = h.next(EventMask::JOB_EXECUTED).await;
        assert_eq!(run_time(&executed), t(10 * n));
    }
    let job = h.scheduler.get_job("tick", None).await.unwrap().unwrap();
    assert_eq!(job.next_run_time(), Some(t(40)));
}

#[tokio::test]
async fn a_run_later_than_its_grace_time_is_missed() {
    let mut h = Harness::new();
    h.scheduler.start_paused().await.unwrap();
    h.scheduler
        .add_job(h.record_job("late", Once(t(10))))
        .await
        .unwrap();
    h.scheduler
        .add_job(
            h.record_job("graceful", Once(t(10)))
                .misfire_grace_time(Some(Duration::from_secs(30))),
        )
        .await
        .unwrap();
    h.scheduler
        .add_job(
            h.record_job("unlimited", Once(t(10)))
                .misfire_grace_time(None),
        )
        .await
        .unwrap();
    // The default grace time is 1 s; the scheduler comes back 5 s late.
    h.set_time(15);
    h.scheduler.resume().unwrap();
    let outcomes = h
        .next_n(EventMask::JOB_EXECUTED | EventMask::JOB_MISSED, 3)
        .await;
    for e in &outcomes {
        let expected = if e.job_id() == Some("late") {
            EventMask::JOB_MISSED
        } else {
            EventMask::JOB_EXECUTED
        };
        assert_eq!(e.code(), expected, "{e}");
        assert_eq!(run_time(e), t(10));
    }
    let mut calls = h.calls.get();
    calls.sort();
    assert_eq!(calls, ["graceful", "unlimited"]);
}

#[tokio::test]
async fn a_run_exactly_at_its_grace_limit_still_runs() {
    let mut h = Harness::new();
    h.scheduler.start_paused().await.unwrap();
    h.scheduler
        .add_job(h.record_job("edge", Once(t(10))))
        .await
        .unwrap();
    h.set_time(11);
    h.scheduler.resume().unwrap();
    assert_eq!(
        h.next(EventMask::JOB_EXECUTED | EventMask::JOB_MISSED)
            .await
            .code(),
        EventMask::JOB_EXECUTED
    );
}

#[tokio::test]
async fn coalescing_runs_missed_fire_times_once_for_the_latest() {
    let mut h = Harness::new();
    h.scheduler.start_paused().await.unwrap();
    h.scheduler
        .add_job(h.record_job("c", every(10, t(10))).misfire_grace_time(None))
        .await
        .unwrap();
    h.set_time(45);
    h.scheduler.resume().unwrap();
    let submitted = h.next(EventMask::JOB_SUBMITTED).await;
    assert_eq!(run_times(&submitted), [t(40)]);
    assert_eq!(run_time(&h.next(EventMask::JOB_EXECUTED).await), t(40));
    h.assert_quiet(EventMask::JOB_EXECUTED).await;
    let job = h.scheduler.get_job("c", None).await.unwrap().unwrap();
    assert_eq!(job.next_run_time(), Some(t(50)));
}

#[tokio::test]
async fn without_coalescing_every_missed_fire_time_runs_in_order() {
    let mut h = Harness::new();
    h.scheduler.start_paused().await.unwrap();
    h.scheduler
        .add_job(
            h.record_job("n", every(10, t(10)))
                .coalesce(false)
                .misfire_grace_time(None),
        )
        .await
        .unwrap();
    h.set_time(45);
    h.scheduler.resume().unwrap();
    let submitted = h.next(EventMask::JOB_SUBMITTED).await;
    assert_eq!(run_times(&submitted), [t(10), t(20), t(30), t(40)]);
    let executed = h.next_n(EventMask::JOB_EXECUTED, 4).await;
    let times: Vec<DateTime<Utc>> = executed.iter().map(run_time).collect();
    assert_eq!(times, [t(10), t(20), t(30), t(40)]);
}

#[tokio::test]
async fn without_coalescing_runs_past_their_grace_time_are_each_missed() {
    let mut h = Harness::new();
    h.scheduler.start_paused().await.unwrap();
    h.scheduler
        .add_job(h.record_job("n", every(10, t(10))).coalesce(false))
        .await
        .unwrap();
    h.set_time(40);
    h.scheduler.resume().unwrap();
    let outcomes = h
        .next_n(EventMask::JOB_EXECUTED | EventMask::JOB_MISSED, 4)
        .await;
    let codes: Vec<EventMask> = outcomes.iter().map(Event::code).collect();
    assert_eq!(
        codes,
        [
            EventMask::JOB_MISSED,
            EventMask::JOB_MISSED,
            EventMask::JOB_MISSED,
            EventMask::JOB_EXECUTED
        ]
    );
}

#[tokio::test]
async fn max_instances_drops_runs_but_still_advances_the_job() {
    let mut h = Harness::new();
    h.scheduler.start().await.unwrap();
    h.scheduler
        .add_job(JobSpec::new(h.wait.call("slow".into()), every(10, t(10))).id("slow"))
        .await
        .unwrap();
    h.set_time(10);
    assert_eq!(run_times(&h.next(EventMask::JOB_SUBMITTED).await), [t(10)]);
    h.set_time(20);
    let refused = h.next(EventMask::JOB_MAX_INSTANCES).await;
    assert_eq!(run_times(&refused), [t(20)]);
    let job = h.scheduler.get_job("slow", None).await.unwrap().unwrap();
    assert_eq!(job.next_run_time(), Some(t(30)));
    // Once the first run finishes, the next one is accepted again.
    h.gate.add_permits(1);
    h.next(EventMask::JOB_EXECUTED).await;
    h.set_time(30);
    assert_eq!(
        run_times(
            &h.next(EventMask::JOB_SUBMITTED | EventMask::JOB_MAX_INSTANCES)
                .await
        ),
        [t(30)]
    );
    h.gate.add_permits(1);
}

#[tokio::test]
async fn two_instances_may_overlap_when_allowed() {
    let mut h = Harness::new();
    h.scheduler.start().await.unwrap();
    h.scheduler
        .add_job(
            JobSpec::new(h.wait.call("slow".into()), every(10, t(10)))
                .id("slow")
                .max_instances(2),
        )
        .await
        .unwrap();
    h.set_time(10);
    h.next(EventMask::JOB_SUBMITTED).await;
    h.set_time(20);
    h.next(EventMask::JOB_SUBMITTED).await;
    h.set_time(30);
    h.next(EventMask::JOB_MAX_INSTANCES).await;
    h.gate.add_permits(2);
    h.next_n(EventMask::JOB_EXECUTED, 2).await;
}

#[tokio::test]
async fn failing_and_panicking_jobs_become_error_events_and_the_scheduler_goes_on() {
    let mut h = Harness::new();
    h.scheduler.start().await.unwrap();
    h.scheduler
        .add_job(JobSpec::new(h.fail.call("card declined".into()), every(10, t(0))).id("fail"))
        .await
        .unwrap();
    h.scheduler
        .add_job(
            JobSpec::new(h.panic.call("index out of bounds".into()), every(10, t(0))).id("panic"),
        )
        .await
        .unwrap();
    for _ in 0..2 {
        let Event::JobError(e) = h.next(EventMask::JOB_ERROR).await else {
            unreachable!()
        };
        let failure = e.error.expect("an error event carries the failure");
        if &*e.job_id == "fail" {
            assert!(!failure.panicked());
            assert_eq!(failure.to_string(), "card declined");
        } else {
            assert!(failure.panicked());
            assert!(
                failure.to_string().contains("index out of bounds"),
                "{failure}"
            );
        }
    }
    // Both keep their schedule.
    h.set_time(10);
    h.next_n(EventMask::JOB_ERROR, 2).await;
    h.scheduler
        .add_job(h.record_job("ok", Once(t(10))))
        .await
        .unwrap();
    h.next(EventMask::JOB_EXECUTED).await;
}

#[tokio::test]
async fn adding_a_job_wakes_a_sleeping_scheduler() {
    let mut h = Harness::new();
    h.scheduler.start().await.unwrap();
    h.scheduler
        .add_job(h.record_job("far", Once(t(3600))))
        .await
        .unwrap();
    // The loop now sleeps until t(3600); a job due now must not wait for that.
    tokio::time::sleep(Duration::from_millis(50)).await;
    h.scheduler
        .add_job(h.record_job("now", Once(t(0))))
        .await
        .unwrap();
    assert!(
        matches!(h.next(EventMask::JOB_EXECUTED).await, Event::JobExecuted(e) if &*e.job_id == "now")
    );
}

/// A job due since 1970 with a 1 s interval, as issue 6 (case 5) found it: 4 minutes of one
/// core of catch-up before it ran once, while the other jobs missed their runs.
fn since_1970(h: &Harness, id: &str) -> JobSpec {
    let trigger = triggers::IntervalTrigger::builder()
        .seconds(1)
        .start_date(DateTime::UNIX_EPOCH)
        .build()
        .unwrap();
    JobSpec::new(h.record.call(id.to_owned()), trigger)
        .id(id)
        .next_run_time(DateTime::UNIX_EPOCH)
}

#[tokio::test]
async fn a_coalescing_job_catches_up_decades_at_once_without_holding_up_the_others() {
    let mut h = Harness::new();
    h.scheduler.start_paused().await.unwrap();
    h.scheduler.add_job(since_1970(&h, "old")).await.unwrap();
    h.scheduler
        .add_job(h.record_job("other", Once(t(0))))
        .await
        .unwrap();
    h.scheduler.resume().unwrap();
    // Both run in the first pass: the old job once, for its last fire time, now.
    let submitted = h.next_n(EventMask::JOB_SUBMITTED, 2).await;
    let old = submitted
        .iter()
        .find(|e| e.job_id() == Some("old"))
        .expect("the old job was submitted");
    assert_eq!(run_times(old), [t(0)]);
    h.next_n(EventMask::JOB_EXECUTED, 2).await;
    h.assert_quiet(EventMask::JOB_SUBMITTED).await;
    let job = h.scheduler.get_job("old", None).await.unwrap().unwrap();
    assert_eq!(job.next_run_time(), Some(t(1)));
}

#[tokio::test]
async fn a_job_that_does_not_coalesce_reports_decades_of_missed_runs_as_one_event() {
    let mut h = Harness::with(|b| b.catch_up_limit(1000));
    h.scheduler.start_paused().await.unwrap();
    h.scheduler
        .add_job(
            since_1970(&h, "old")
                .coalesce(false)
                .misfire_grace_time(Some(Duration::from_secs(3))),
        )
        .await
        .unwrap();
    h.scheduler.resume().unwrap();
    // Every fire time older than the grace time, at once.
    let Event::JobMissed(missed) = h.next(EventMask::JOB_MISSED).await else {
        unreachable!()
    };
    let summary = missed.missed_runs.expect("a summary");
    let seconds_since_1970 = u64::try_from(t(0).timestamp()).unwrap();
    assert_eq!(summary.first, DateTime::UNIX_EPOCH);
    assert_eq!(summary.last, t(-4));
    assert_eq!(summary.count, seconds_since_1970 - 3);
    assert_eq!(missed.scheduled_run_time, summary.first);
    // The runs within the grace time still run.
    let submitted = h.next(EventMask::JOB_SUBMITTED).await;
    assert_eq!(run_times(&submitted), [t(-3), t(-2), t(-1), t(0)]);
    h.next_n(EventMask::JOB_EXECUTED, 4).await;
    h.assert_quiet(EventMask::JOB_MISSED | EventMask::JOB_SUBMITTED)
        .await;
}

#[tokio::test]
async fn a_trigger_that_cannot_skip_is_walked_in_bounded_passes() {
    let mut h = Harness::with(|b| b.catch_up_limit(1000));
    h.scheduler.start_paused().await.unwrap();
    h.scheduler
        .add_job(
            h.record_job("tick", every(1, t(1)))
                .misfire_grace_time(None),
        )
        .await
        .unwrap();
    // 10,000 missed fire times, walked 1,000 per pass.
    h.set_time(10_000);
    h.scheduler.resume().unwrap();
    let submitted = h.next(EventMask::JOB_SUBMITTED).await;
    assert_eq!(
        run_times(&submitted),
        [t(10_000)],
        "coalesced to the last missed time"
    );
    h.next(EventMask::JOB_EXECUTED).await;
    h.assert_quiet(EventMask::JOB_SUBMITTED).await;
    let job = h.scheduler.get_job("tick", None).await.unwrap().unwrap();
    assert_eq!(job.next_run_time(), Some(t(10_001)));
}

#[tokio::test]
async fn without_a_grace_time_every_missed_run_runs_a_limited_number_per_pass() {
    let mut h = Harness::with(|b| b.catch_up_limit(1000));
    h.scheduler.start_paused().await.unwrap();
    h.scheduler
        .add_job(
            h.record_job("tick", every(1, t(1)))
                .coalesce(false)
                .misfire_grace_time(None)
                // The passes follow each other faster than a thousand runs: let them overlap.
                .max_instances(3),
        )
        .await
        .unwrap();
    h.set_time(2500);
    h.scheduler.resume().unwrap();
    let submitted = h.next_n(EventMask::JOB_SUBMITTED, 3).await;
    let sizes: Vec<usize> = submitted.iter().map(|e| run_times(e).len()).collect();
    assert_eq!(sizes, [1000, 1000, 500]);
    assert_eq!(run_times(&submitted[2]).last(), Some(&t(2500)));
    let executed = h.next_n(EventMask::JOB_EXECUTED, 2500).await;
    let mut times: Vec<DateTime<Utc>> = executed.iter().map(run_time).collect();
    times.sort();
    assert!(times.windows(2).all(|w| w[0] + secs(1) == w[1]));
    assert_eq!((times[0], times[2499]), (t(1), t(2500)));
    h.assert_quiet(EventMask::JOB_MISSED | EventMask::JOB_SUBMITTED)
        .await;
}

#[tokio::test]
async fn catch_up_within_the_limit_runs_every_missed_time_in_one_submission() {
    let mut h = Harness::new();
    h.scheduler.start_paused().await.unwrap();
    h.scheduler
        .add_job(
            h.record_job("tick", every(1, t(1)))
                .coalesce(false)
                .misfire_grace_time(None),
        )
        .await
        .unwrap();
    h.set_time(3000);
    h.scheduler.resume().unwrap();
    assert_eq!(
        run_times(&h.next(EventMask::JOB_SUBMITTED).await).len(),
        3000
    );
    h.next_n(EventMask::JOB_EXECUTED, 3000).await;
}

#[tokio::test]
async fn a_failing_store_is_retried_after_the_retry_interval_while_others_run() {
    let flaky = InstrumentedStore::default();
    let store = flaky.clone();
    let mut h = Harness::with(|b| {
        b.jobstore("flaky", store)
            .jobstore_retry_interval(Duration::from_secs(10))
    });
    h.scheduler.start().await.unwrap();
    h.scheduler
        .add_job(
            h.record_job("in-flaky", Once(t(1)))
                .jobstore("flaky")
                .misfire_grace_time(None),
        )
        .await
        .unwrap();
    flaky.failing.store(true, Ordering::SeqCst);
    h.scheduler
        .add_job(h.record_job("healthy", Once(t(2))))
        .await
        .unwrap();
    h.set_time(2);
    assert!(
        matches!(h.next(EventMask::JOB_EXECUTED).await, Event::JobExecuted(e) if &*e.job_id == "healthy")
    );
    flaky.failing.store(false, Ordering::SeqCst);
    // Not asked again before the retry time...
    h.set_time(11);
    h.assert_quiet(EventMask::JOB_EXECUTED).await;
    // ...but at it.
    h.set_time(12);
    assert!(
        matches!(h.next(EventMask::JOB_EXECUTED).await, Event::JobExecuted(e) if &*e.job_id == "in-flaky")
    );
}

//! Where the scheduler calls triggers: the zone it gives them, and what it does when one fails.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Europe::Berlin;
use scheduler_core::{
    ErrorKind, Event, EventMask, FaultAction, JobChanges, Result, SearchExhausted, Trigger,
    TriggerState,
};

use crate::harness::{Harness, t};

/// Fires at `at`, then answers `at` again: a trigger that does not move forward.
#[derive(Debug)]
struct Stuck(DateTime<Utc>);

impl fmt::Display for Stuck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("stuck")
    }
}

impl Trigger for Stuck {
    fn next_fire_time(
        &self,
        _: Option<DateTime<Utc>>,
        _: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, SearchExhausted> {
        Ok(Some(self.0))
    }

    fn to_state(&self) -> Result<TriggerState> {
        TriggerState::new("stuck", &self.0)
    }
}

/// Fires at `at` once, then gives up looking for the next fire time.
#[derive(Debug)]
struct GivesUp(Option<DateTime<Utc>>);

impl fmt::Display for GivesUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("gives-up")
    }
}

impl Trigger for GivesUp {
    fn next_fire_time(
        &self,
        previous: Option<DateTime<Utc>>,
        _: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, SearchExhausted> {
        match (previous, self.0) {
            (None, Some(at)) => Ok(Some(at)),
            _ => Err(SearchExhausted::new("no fire time within 10 rounds")),
        }
    }

    fn to_state(&self) -> Result<TriggerState> {
        TriggerState::new("gives-up", &self.0)
    }
}

async fn expect_set_aside(h: &mut Harness, id: &str) {
    // The run that was due still runs; then the job is paused and kept, with a fault event.
    let Event::JobFault(fault) = h.next(EventMask::JOB_FAULT).await else {
        unreachable!()
    };
    assert_eq!((&*fault.job_id, fault.action), (id, FaultAction::Paused));
    assert_eq!(fault.error.kind(), ErrorKind::TriggerFailed);
    assert_eq!(fault.error.job_id(), Some(id));
    let executed = h.next(EventMask::JOB_EXECUTED).await;
    assert_eq!(executed.job_id(), Some(id));
    let job = h.scheduler.get_job(id, None).await.unwrap().expect("kept");
    assert!(job.is_paused(), "{job:?}");
    h.assert_quiet(EventMask::JOB_REMOVED | EventMask::JOB_SUBMITTED)
        .await;
}

// Issue 6, case 4: a trigger answering its previous fire time again made the loop delete the
// job.
#[tokio::test]
async fn a_trigger_that_does_not_move_forward_has_its_job_paused_and_kept() {
    let mut h = Harness::new();
    h.scheduler.start().await.unwrap();
    h.scheduler
        .add_job(h.record_job("stuck", Stuck(t(1))))
        .await
        .unwrap();
    h.set_time(1);
    expect_set_aside(&mut h, "stuck").await;
}

// Issue 6, case 2: a trigger that runs out of search was taken for a finished one.
#[tokio::test]
async fn a_trigger_that_gives_up_is_an_error_at_add_and_a_fault_at_run_time() {
    let mut h = Harness::new();
    h.scheduler.start().await.unwrap();
    let error = h
        .scheduler
        .add_job(h.record_job("never", GivesUp(None)))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::TriggerFailed, "{error}");
    assert!(error.to_string().contains("gives-up"), "{error}");
    assert!(h.scheduler.get_job("never", None).await.unwrap().is_none());

    h.scheduler
        .add_job(h.record_job("later", GivesUp(Some(t(1)))))
        .await
        .unwrap();
    h.set_time(1);
    expect_set_aside(&mut h, "later").await;
}

// Issue 6, case 2, with the real combination: two grids 0.4 s apart never meet, and the
// search says so rather than "finished".
#[tokio::test]
async fn an_and_trigger_that_runs_out_of_search_is_refused_with_a_typed_error() {
    let h = Harness::new();
    h.scheduler.start().await.unwrap();
    let grid = |offset_ms: i64, minutes: f64| -> Arc<dyn Trigger> {
        Arc::new(
            triggers::IntervalTrigger::builder()
                .minutes(minutes)
                .start_date(t(0) + chrono::TimeDelta::milliseconds(offset_ms))
                .build()
                .unwrap(),
        )
    };
    let never = triggers::AndTrigger::new(vec![grid(0, 10.0), grid(400, 15.0)])
        .unwrap()
        .max_iterations(100);
    let error = h
        .scheduler
        .add_job(h.record_job("never", never))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::TriggerFailed, "{error}");
    assert!(error.to_string().contains("100 rounds"), "{error}");
}

// Issue 7: a trigger built without a zone takes the scheduler's, and keeps it when saved.
#[tokio::test]
async fn triggers_without_a_zone_take_the_schedulers() {
    let mut h = Harness::with(|b| b.timezone(Berlin));
    h.scheduler.start().await.unwrap();
    let nine = || triggers::CronTrigger::builder().hour(9).build().unwrap();
    let job = h
        .scheduler
        .add_job(h.record_job("nine", nine()))
        .await
        .unwrap();
    assert_eq!(
        job.trigger().to_state().unwrap().state["timezone"],
        "Europe/Berlin"
    );
    let nine_in_berlin = Berlin.with_ymd_and_hms(2026, 1, 1, 9, 0, 0).unwrap();
    assert_eq!(job.next_run_time(), Some(nine_in_berlin.to_utc()));

    // Inside combinations too, and through `reschedule_job` and `modify_job`.
    let either = triggers::OrTrigger::new(vec![
        Arc::new(nine()) as Arc<dyn Trigger>,
        Arc::new(triggers::DateTrigger::new(t(3600 * 20))),
    ])
    .unwrap();
    let job = h
        .scheduler
        .reschedule_job("nine", None, either)
        .await
        .unwrap();
    let state = job.trigger().to_state().unwrap();
    assert_eq!(
        state.state["triggers"][0]["state"]["timezone"],
        "Europe/Berlin"
    );
    assert_eq!(job.next_run_time(), Some(nine_in_berlin.to_utc()));
    let job = h
        .scheduler
        .modify_job("nine", None, JobChanges::new().trigger(nine()))
        .await
        .unwrap();
    assert_eq!(
        job.trigger().to_state().unwrap().state["timezone"],
        "Europe/Berlin"
    );

    // A zone given explicitly stays.
    let tokyo = triggers::CronTrigger::builder()
        .hour(9)
        .timezone(chrono_tz::Asia::Tokyo)
        .build()
        .unwrap();
    let job = h
        .scheduler
        .add_job(h.record_job("tokyo", tokyo))
        .await
        .unwrap();
    assert_eq!(
        job.trigger().to_state().unwrap().state["timezone"],
        "Asia/Tokyo"
    );
    h.drain().await;
}

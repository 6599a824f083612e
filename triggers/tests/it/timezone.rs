//! A trigger built without a zone takes the scheduler's (`Trigger::with_default_timezone`),
//! inside combinations too; one with a zone of its own keeps it.

use std::sync::Arc;

use chrono::{NaiveDate, TimeZone, Utc};
use chrono_tz::{America::New_York, Asia::Tokyo, Europe::Berlin};
use scheduler_core::Trigger;
use triggers::{
    AndTrigger, CalendarIntervalTrigger, CronTrigger, DateTrigger, IntervalTrigger, LocalTrigger,
    OrTrigger, Zone,
};

fn saved_zone(trigger: &dyn Trigger) -> serde_json::Value {
    trigger.to_state().unwrap().state["timezone"].clone()
}

#[test]
fn a_trigger_without_a_zone_takes_the_given_one_and_saves_it() {
    let now = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    let nine = CronTrigger::builder().hour(9).build().unwrap();
    let berlin = nine
        .with_default_timezone(Berlin)
        .expect("no zone of its own");
    assert_eq!(saved_zone(&*berlin), "Europe/Berlin");
    assert_eq!(
        berlin.next_fire_time(None, now),
        Ok(Some(
            Berlin
                .with_ymd_and_hms(2024, 1, 1, 9, 0, 0)
                .unwrap()
                .to_utc()
        ))
    );
    // Once it has a zone, it keeps it, restored too.
    assert!(berlin.with_default_timezone(Tokyo).is_none());
    let restored = triggers::registry()
        .restore(&berlin.to_state().unwrap())
        .unwrap();
    assert!(restored.with_default_timezone(Tokyo).is_none());
    assert_eq!(saved_zone(&*restored), "Europe/Berlin");

    // A wall-clock start date is placed in the new zone.
    let from_nine = CronTrigger::builder()
        .hour(10)
        .start_date("2024-06-01 09:00:00")
        .build()
        .unwrap();
    let in_new_york = from_nine.with_default_timezone(New_York).unwrap();
    assert_eq!(
        in_new_york.to_state().unwrap().state["start_date"],
        "2024-06-01T09:00:00-04:00[America/New_York]"
    );
}

#[test]
fn a_zone_of_its_own_is_kept() {
    let given = CronTrigger::builder()
        .hour(9)
        .timezone(Tokyo)
        .build()
        .unwrap();
    assert!(given.with_default_timezone(Berlin).is_none());
    // An aware start date gives its zone, as in APScheduler.
    let start = New_York.with_ymd_and_hms(2024, 1, 1, 9, 0, 0).unwrap();
    let from_start = IntervalTrigger::builder()
        .hours(1)
        .start_date(start)
        .build()
        .unwrap();
    assert!(from_start.with_default_timezone(Berlin).is_none());
    let date = DateTrigger::new(start);
    assert!(date.with_default_timezone(Berlin).is_none());
}

#[test]
fn every_zoned_kind_takes_it() {
    let now = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    let interval = IntervalTrigger::builder().hours(2).build_at(now).unwrap();
    let in_berlin = interval.with_default_timezone(Berlin).unwrap();
    assert_eq!(saved_zone(&*in_berlin), "Europe/Berlin");
    // The default start ("now + interval" when it was built) stays the same instant.
    assert_eq!(
        in_berlin.next_fire_time(None, now),
        interval.next_fire_time(None, now)
    );
    let daily = CalendarIntervalTrigger::builder()
        .days(1)
        .time(9, 0, 0)
        .start_date(NaiveDate::from_ymd_opt(2024, 1, 1).unwrap())
        .build()
        .unwrap();
    let in_berlin = daily.with_default_timezone(Berlin).unwrap();
    assert_eq!(saved_zone(&*in_berlin), "Europe/Berlin");
    assert_eq!(
        in_berlin.next_fire_time(None, now),
        Ok(Some(
            Berlin
                .with_ymd_and_hms(2024, 1, 1, 9, 0, 0)
                .unwrap()
                .to_utc()
        ))
    );
}

#[test]
fn combinations_pass_it_to_their_children() {
    let nine =
        || -> Arc<dyn LocalTrigger> { Arc::new(CronTrigger::builder().hour(9).build().unwrap()) };
    let tokyo: Arc<dyn LocalTrigger> = Arc::new(
        CronTrigger::builder()
            .hour(9)
            .timezone(Tokyo)
            .build()
            .unwrap(),
    );
    let or = OrTrigger::new_local(vec![nine(), tokyo.clone()]).unwrap();
    let rezoned = or.with_default_timezone(Berlin).unwrap();
    let state = rezoned.to_state().unwrap();
    assert_eq!(
        state.state["triggers"][0]["state"]["timezone"],
        "Europe/Berlin"
    );
    assert_eq!(
        state.state["triggers"][1]["state"]["timezone"],
        "Asia/Tokyo"
    );
    // Nested, and with opaque children.
    let and = AndTrigger::new(vec![
        Arc::new(OrTrigger::new_local(vec![nine()]).unwrap()) as Arc<dyn Trigger>,
        Arc::new(CronTrigger::builder().minute(0).build().unwrap()),
    ])
    .unwrap();
    let state = and
        .with_default_timezone(Berlin)
        .unwrap()
        .to_state()
        .unwrap();
    assert_eq!(
        state.state["triggers"][0]["state"]["triggers"][0]["state"]["timezone"],
        "Europe/Berlin"
    );
    assert_eq!(
        state.state["triggers"][1]["state"]["timezone"],
        "Europe/Berlin"
    );
    // Nothing to change: nothing answered.
    let given = OrTrigger::new_local(vec![tokyo]).unwrap();
    assert!(given.with_default_timezone(Berlin).is_none());
    assert!(given.with_default_zone(Zone::UTC).is_none());
}

//! Every kind survives a trip through its saved state and the registry.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::{America, Australia, Europe};
use scheduler_core::{ErrorKind, Trigger, TriggerRegistry, TriggerState};
use triggers::{
    AndTrigger, CalendarIntervalTrigger, CronTrigger, DateTrigger, IntervalTrigger, LocalTrigger,
    OrTrigger,
};

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

/// The scheduler's sequence of answers, from `now`.
fn answers(trigger: &dyn Trigger, now: &str, count: usize) -> Vec<DateTime<Utc>> {
    let (mut previous, mut now, mut out) = (None, at(now), Vec::new());
    for _ in 0..count {
        let Some(next) = trigger.next_fire_time(previous, now).unwrap() else {
            break;
        };
        out.push(next);
        previous = Some(next);
        now = next;
    }
    out
}

/// Saves `trigger`, sends the state through JSON text (as a store would) and restores it.
fn round_trip(trigger: &dyn Trigger, kind: &str) -> Arc<dyn Trigger> {
    let state = trigger.to_state().unwrap();
    assert_eq!(state.kind, kind);
    let text = serde_json::to_string(&state).unwrap();
    let read: TriggerState = serde_json::from_str(&text).unwrap();
    let restored = triggers::registry().restore(&read).unwrap();
    assert_eq!(restored.to_state().unwrap(), state, "{kind}: state changed");
    assert_eq!(
        restored.to_string(),
        trigger.to_string(),
        "{kind}: description changed"
    );
    restored
}

fn same_answers(trigger: &dyn Trigger, kind: &str, now: &str) {
    let restored = round_trip(trigger, kind);
    let expected = answers(trigger, now, 8);
    assert!(!expected.is_empty(), "{kind}: the test needs fire times");
    assert_eq!(answers(&*restored, now, 8), expected, "{kind}");
}

#[test]
fn date() {
    let trigger = DateTrigger::in_zone("2024-10-27 02:30:00", Europe::Berlin).unwrap();
    same_answers(&trigger, "date", "2024-01-01T00:00:00Z");
    let fixed = DateTrigger::in_zone("2024-06-01 12:00:00.123456+05:30", Europe::Berlin).unwrap();
    same_answers(&fixed, "date", "2024-01-01T00:00:00Z");
}

#[test]
fn interval() {
    let trigger = IntervalTrigger::builder()
        .hours(1.5)
        .start_date("2024-10-27 00:30:00")
        .end_date("2024-10-28")
        .timezone(Europe::Berlin)
        .build()
        .unwrap();
    same_answers(&trigger, "interval", "2024-10-26T00:00:00Z");
}

#[test]
fn cron() {
    let trigger = CronTrigger::builder()
        .month("mar,oct-nov")
        .day("last sun")
        .hour("1-3")
        .minute("*/30")
        .start_date("2024-01-01")
        .timezone(America::New_York)
        .build()
        .unwrap();
    same_answers(&trigger, "cron", "2024-01-01T00:00:00Z");
    let crontab = CronTrigger::from_crontab("*/15 9-17 * * 1-5", Australia::Lord_Howe).unwrap();
    same_answers(&crontab, "cron", "2024-04-05T00:00:00Z");
}

#[test]
fn calendar_interval() {
    let trigger = CalendarIntervalTrigger::builder()
        .months(1)
        .time(2, 30, 0)
        .start_date(NaiveDate::from_ymd_opt(2024, 1, 31).unwrap())
        .end_date(NaiveDate::from_ymd_opt(2026, 1, 1).unwrap())
        .timezone(Europe::Berlin)
        .build()
        .unwrap();
    same_answers(&trigger, "calendarinterval", "2024-01-01T00:00:00Z");
}

#[test]
fn combining_nests_children() {
    let cron = |minute: &str| -> Arc<dyn LocalTrigger> {
        Arc::new(
            CronTrigger::builder()
                .minute(minute)
                .timezone(Europe::Berlin)
                .build()
                .unwrap(),
        )
    };
    let and = AndTrigger::new_local(vec![cron("*/10"), cron("*/15")])
        .unwrap()
        .threshold(Duration::from_millis(10))
        .max_iterations(500);
    same_answers(&and, "and", "2024-03-31T00:00:00Z");
    let or = OrTrigger::new_local(vec![
        cron("0"),
        Arc::new(DateTrigger::new(at("2024-03-31T00:20:00Z"))),
        Arc::new(and),
    ])
    .unwrap();
    same_answers(&or, "or", "2024-03-31T00:00:00Z");
}

#[test]
fn jitter_is_saved_and_restored_with_the_default_source() {
    let trigger = CronTrigger::builder()
        .minute(0)
        .jitter(Duration::from_secs(30))
        .jitter_source(triggers::FixedJitter::new(0.0))
        .timezone(Europe::Berlin)
        .build()
        .unwrap();
    let state = trigger.to_state().unwrap();
    assert_eq!(state.state["jitter"], 30.0);
    let restored = round_trip(&trigger, "cron");
    let now = at("2024-01-01T00:30:00Z");
    let hour = at("2024-01-01T01:00:00Z");
    for _ in 0..20 {
        let t = restored.next_fire_time(None, now).unwrap().unwrap();
        assert!(
            t >= hour && t <= hour + chrono::TimeDelta::seconds(30),
            "{t}"
        );
    }
}

#[test]
fn registration_under_apscheduler_names() {
    let registry = TriggerRegistry::new();
    triggers::register(&registry);
    for kind in ["date", "interval", "cron", "calendarinterval", "and", "or"] {
        assert!(registry.contains(kind), "{kind}");
    }
}

#[test]
fn broken_states_are_invalid_trigger_errors() {
    let registry = triggers::registry();
    for (kind, state) in [
        (
            "cron",
            serde_json::json!({"version": 1, "fields": {"minute": "*/0"}, "timezone": "UTC"}),
        ),
        (
            "cron",
            serde_json::json!({"version": 9, "fields": {}, "timezone": "UTC"}),
        ),
        (
            "interval",
            serde_json::json!({"version": 1, "interval_micros": 0,
            "start_date": "2024-01-01T00:00:00Z", "timezone": "UTC"}),
        ),
        (
            "date",
            serde_json::json!({"version": 1, "run_date": "yesterday"}),
        ),
        ("calendarinterval", serde_json::json!({"version": 1})),
        ("and", serde_json::json!({"version": 1, "triggers": []})),
        (
            "or",
            serde_json::json!({"version": 1, "triggers": [{"kind": "nope", "state": {}}]}),
        ),
        (
            "date",
            serde_json::json!({"version": 1, "run_date": "2024-01-01T00:00:00Z", "extra": 1}),
        ),
    ] {
        let state = TriggerState {
            kind: kind.into(),
            state,
        };
        let error = registry.restore(&state).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidTrigger, "{kind}: {error}");
    }
}

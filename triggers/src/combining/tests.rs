//! The combining cases of APScheduler's own tests (3.x
//! <https://github.com/agronholm/apscheduler/blob/3.x/tests/triggers/test_combining.py>), the
//! leapfrogging search, its bounds, and jitter.

use super::*;
use crate::{CronTrigger, DateTrigger, FixedJitter, IntervalTrigger};
use chrono::TimeZone;
use chrono_tz::Australia::Lord_Howe;

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

fn cron(minute: &str) -> Arc<dyn Trigger> {
    Arc::new(
        CronTrigger::builder()
            .minute(minute)
            .timezone(Zone::UTC)
            .build()
            .unwrap(),
    )
}

fn series(trigger: &dyn LocalTrigger, now: DateTime<Utc>, count: usize) -> Vec<String> {
    let (mut previous, mut now, mut out) = (None, now, Vec::new());
    for _ in 0..count {
        let Some(next) = trigger.next_local_fire_time(previous, now).unwrap() else {
            break;
        };
        out.push(next.to_rfc3339());
        previous = Some(next);
        now = next.to_utc();
    }
    out
}

// test_combining.py: And firstmatch / end, Or earliest / end, jitter, str.
#[test]
fn and_answers_the_first_common_time_every_time() {
    let trigger = AndTrigger::new(vec![cron("*/10"), cron("*/15")]).unwrap();
    assert_eq!(
        trigger.to_string(),
        "and[cron[minute='*/10'], cron[minute='*/15']]"
    );
    let mut previous = None;
    let mut now = utc(2010, 9, 22, 12, 49);
    let mut got = Vec::new();
    for _ in 0..3 {
        let next = trigger.next_fire_time(previous, now).unwrap().unwrap();
        got.push(next);
        previous = Some(next);
        now = next;
    }
    // APScheduler 3.x answers the first and then loops forever.
    assert_eq!(
        got,
        [
            utc(2010, 9, 22, 13, 0),
            utc(2010, 9, 22, 13, 30),
            utc(2010, 9, 22, 14, 0)
        ]
    );
}

#[test]
fn and_ends_with_any_child() {
    let once = Arc::new(DateTrigger::new(utc(2024, 1, 1, 0, 30)));
    let trigger = AndTrigger::new(vec![cron("*/10"), once]).unwrap();
    let now = utc(2024, 1, 1, 0, 0);
    assert_eq!(
        trigger.next_fire_time(None, now),
        Ok(Some(utc(2024, 1, 1, 0, 30)))
    );
    assert_eq!(
        trigger.next_fire_time(Some(utc(2024, 1, 1, 0, 30)), now),
        Ok(None)
    );
    // A run date no fire time of the other child hits: finished, not a hang.
    let odd = Arc::new(DateTrigger::new(utc(2024, 1, 1, 0, 31)));
    let trigger = AndTrigger::new(vec![cron("*/10"), odd]).unwrap();
    assert_eq!(trigger.next_fire_time(None, now), Ok(None));
}

fn utc_cron(
    configure: fn(crate::CronTriggerBuilder) -> crate::CronTriggerBuilder,
) -> Arc<dyn Trigger> {
    Arc::new(
        configure(CronTrigger::builder().timezone(Zone::UTC))
            .build()
            .unwrap(),
    )
}

/// The answer and the steps it took.
fn answer(
    trigger: &AndTrigger,
    now: DateTime<Utc>,
) -> (Result<Option<DateTime<Utc>>, SearchExhausted>, u64) {
    let answer = trigger.next_fire_time(None, now);
    (answer, budget::last_call_steps())
}

// Issue 6, case 2: stepping the frequent child towards the rare one's time ran out of
// steps and answered "finished"; APScheduler 3.11 leapfrogs there in two rounds.
#[test]
fn and_leapfrogs_to_a_rare_childs_time() {
    let noon = utc(2024, 6, 1, 12, 0);
    let in_three_hours: Arc<dyn Trigger> = Arc::new(DateTrigger::new(utc(2024, 6, 1, 15, 0)));
    let every_second = utc_cron(|b| b.second("*"));
    let trigger = AndTrigger::new(vec![in_three_hours, every_second]).unwrap();
    let (found, steps) = answer(&trigger, noon);
    assert_eq!(found, Ok(Some(utc(2024, 6, 1, 15, 0))));
    assert!(steps < 100, "{steps} steps");

    let every_second_from_noon: Arc<dyn Trigger> = Arc::new(
        IntervalTrigger::builder()
            .seconds(1)
            .start_date(noon)
            .build()
            .unwrap(),
    );
    let three_am = utc_cron(|b| b.hour(3).minute(0).second(0));
    let trigger = AndTrigger::new(vec![every_second_from_noon, three_am]).unwrap();
    let (found, steps) = answer(&trigger, noon);
    assert_eq!(found, Ok(Some(utc(2024, 6, 2, 3, 0))));
    assert!(steps < 100, "{steps} steps");
    // And again from there, with a previous fire time (3.x loops forever here).
    let first = utc(2024, 6, 2, 3, 0);
    assert_eq!(
        trigger.next_fire_time(Some(first), first),
        Ok(Some(utc(2024, 6, 3, 3, 0)))
    );
    assert!(budget::last_call_steps() < 200);

    // Every minute against once a year.
    let yearly = utc_cron(|b| b.month(1));
    let trigger = AndTrigger::new(vec![cron("*"), yearly]).unwrap();
    let (found, _) = answer(&trigger, utc(2024, 6, 1, 0, 0));
    assert_eq!(found, Ok(Some(utc(2025, 1, 1, 0, 0))));
}

// Issue 6, case 3: an ISO-week cron against a date in the year 9000 took 235 ms (1.3 s in
// a debug build) to find that they never meet.
#[test]
fn and_answers_far_common_times_within_the_budget() {
    let week_32_fridays = utc_cron(|b| b.week(32).day_of_week(4));
    let and_once = |run_date| {
        AndTrigger::new(vec![
            week_32_fridays.clone(),
            Arc::new(DateTrigger::new(run_date)) as Arc<dyn Trigger>,
        ])
        .unwrap()
    };
    let now = utc(2024, 1, 1, 0, 0);
    // 9000-08-11 is a Monday of week 33: never.
    let (found, steps) = answer(&and_once(utc(9000, 8, 11, 0, 0)), now);
    assert_eq!(found, Ok(None));
    assert!(steps <= budget::STEP_BUDGET / 10, "{steps} steps");
    // 9000-08-08 is the Friday of week 32.
    let (found, steps) = answer(&and_once(utc(9000, 8, 8, 0, 0)), now);
    assert_eq!(found, Ok(Some(utc(9000, 8, 8, 0, 0))));
    assert!(steps <= budget::STEP_BUDGET / 10, "{steps} steps");
}

#[test]
fn and_running_out_of_search_is_not_finished() {
    // Two grids 0.4 s apart never agree: the rounds run out.
    let now = utc(2024, 1, 1, 0, 1);
    let grid = |offset_ms: i64, minutes: f64| -> Arc<dyn Trigger> {
        Arc::new(
            IntervalTrigger::builder()
                .minutes(minutes)
                .start_date(utc(2024, 1, 1, 0, 0) + TimeDelta::milliseconds(offset_ms))
                .build()
                .unwrap(),
        )
    };
    let never = AndTrigger::new(vec![grid(0, 10.0), grid(400, 15.0)])
        .unwrap()
        .max_iterations(50);
    let error = never.next_fire_time(None, now).unwrap_err();
    assert!(error.to_string().contains("50 rounds"), "{error}");
    // A horizon ends the search too.
    let near = AndTrigger::new(vec![cron("0"), utc_cron(|b| b.month(1))])
        .unwrap()
        .horizon(Duration::from_secs(30 * 86_400));
    let error = near
        .next_fire_time(None, utc(2024, 6, 1, 0, 0))
        .unwrap_err();
    assert!(error.to_string().contains("horizon"), "{error}");
    // The step budget bounds everything else.
    let unbounded = AndTrigger::new(vec![grid(0, 10.0), grid(400, 15.0)])
        .unwrap()
        .max_iterations(u32::MAX);
    assert_eq!(
        unbounded.next_fire_time(None, now),
        Err(budget::exhausted())
    );
    assert!(budget::last_call_steps() <= budget::STEP_BUDGET);
}

#[test]
fn and_threshold_accepts_near_answers() {
    let a: Arc<dyn Trigger> = Arc::new(
        IntervalTrigger::builder()
            .minutes(10)
            .start_date(utc(2024, 1, 1, 0, 0))
            .build()
            .unwrap(),
    );
    let b: Arc<dyn Trigger> = Arc::new(
        IntervalTrigger::builder()
            .minutes(15)
            .start_date(utc(2024, 1, 1, 0, 0) + TimeDelta::milliseconds(400))
            .build()
            .unwrap(),
    );
    let now = utc(2024, 1, 1, 0, 1);
    let near = AndTrigger::new(vec![a, b])
        .unwrap()
        .threshold(Duration::from_secs(1));
    assert_eq!(
        near.next_fire_time(None, now),
        Ok(Some(utc(2024, 1, 1, 0, 30)))
    );
}

#[test]
fn or_answers_the_earliest_and_ends_with_the_last() {
    let once = Arc::new(DateTrigger::new(utc(2024, 1, 1, 0, 5)));
    let trigger = OrTrigger::new(vec![cron("*/10"), once]).unwrap();
    assert_eq!(
        trigger.to_string(),
        "or[cron[minute='*/10'], date[2024-01-01 00:05:00 UTC]]"
    );
    let now = utc(2024, 1, 1, 0, 1);
    assert_eq!(
        trigger.next_fire_time(None, now),
        Ok(Some(utc(2024, 1, 1, 0, 5)))
    );
    let ended: Arc<dyn Trigger> = Arc::new(
        CronTrigger::builder()
            .minute(0)
            .end_date(utc(2024, 1, 1, 0, 0))
            .timezone(Zone::UTC)
            .build()
            .unwrap(),
    );
    let trigger = OrTrigger::new(vec![
        ended,
        Arc::new(DateTrigger::new(utc(2024, 1, 1, 0, 5))),
    ])
    .unwrap();
    assert_eq!(
        trigger.next_fire_time(Some(utc(2024, 1, 1, 0, 5)), now),
        Ok(None)
    );
}

fn lord_howe_cron(minute: &str) -> Arc<dyn LocalTrigger> {
    Arc::new(
        CronTrigger::builder()
            .minute(minute)
            .timezone(Lord_Howe)
            .build()
            .unwrap(),
    )
}

// Conformance case or-02841: in Lord Howe's repeated half hour, APScheduler's `min()`
// compares wall clocks, so 01:30 (second pass) beats 01:50 (first pass) and 01:50+11:00
// is never answered.
#[test]
fn or_compares_local_children_by_wall_clock_like_apscheduler() {
    let children = vec![lord_howe_cron("*/10"), lord_howe_cron("*/15")];
    let local = OrTrigger::new_local(children).unwrap();
    let now = DateTime::parse_from_rfc3339("2012-04-01T01:45:27+11:00")
        .unwrap()
        .to_utc();
    assert_eq!(
        series(&local, now, 3),
        [
            "2012-04-01T01:30:00+10:30",
            "2012-04-01T01:40:00+10:30",
            "2012-04-01T01:45:00+10:30"
        ]
    );
    assert_eq!(
        local
            .next_fire_time(None, now)
            .unwrap()
            .map(|t| t.to_rfc3339()),
        Some("2012-03-31T15:00:00+00:00".to_owned())
    );
    // Opaque children are compared by instant.
    let opaque: Vec<Arc<dyn Trigger>> = vec![
        Arc::new(
            CronTrigger::builder()
                .minute("*/10")
                .timezone(Lord_Howe)
                .build()
                .unwrap(),
        ),
        Arc::new(
            CronTrigger::builder()
                .minute("*/15")
                .timezone(Lord_Howe)
                .build()
                .unwrap(),
        ),
    ];
    let opaque = OrTrigger::new(opaque).unwrap();
    assert_eq!(
        opaque
            .next_fire_time(None, now)
            .unwrap()
            .map(|t| t.to_rfc3339()),
        Some("2012-03-31T14:50:00+00:00".to_owned())
    );
}

// Conformance case or-02899: adding a zero jitter to 01:30 of the second pass gives, in
// 3.x, 01:30 of the first pass, half an hour before the answer (Python's
// `datetime + timedelta` resets `fold`). Jitter only ever delays here.
#[test]
fn or_jitter_never_moves_the_answer_earlier() {
    let hourly: Arc<dyn LocalTrigger> = Arc::new(
        IntervalTrigger::builder()
            .hours(1)
            .start_date("2019-04-06 23:00:00")
            .timezone(Lord_Howe)
            .build()
            .unwrap(),
    );
    let trigger = OrTrigger::new_local(vec![hourly])
        .unwrap()
        .jitter(Duration::from_secs(120))
        .jitter_source(FixedJitter::new(0.0));
    let now = DateTime::parse_from_rfc3339("2019-04-07T01:30:00+10:30")
        .unwrap()
        .to_utc();
    // 3.x: ["2019-04-07T01:30:00+11:00", "2019-04-07T02:00:00+10:30"].
    assert_eq!(
        series(&trigger, now, 2),
        ["2019-04-07T01:30:00+10:30", "2019-04-07T02:30:00+10:30"]
    );
}

#[test]
fn jitter_delays_the_combined_answer() {
    let source: Arc<dyn JitterSource> = Arc::new(FixedJitter::new(0.5));
    let and = AndTrigger::new(vec![cron("*/10")])
        .unwrap()
        .jitter(Duration::from_secs(4))
        .jitter_source(source.clone());
    let or = OrTrigger::new(vec![cron("*/10")])
        .unwrap()
        .jitter_source(source)
        .jitter(Duration::from_secs(4));
    let now = utc(2024, 1, 1, 0, 1);
    let expected = utc(2024, 1, 1, 0, 10) + TimeDelta::seconds(2);
    assert_eq!(and.next_fire_time(None, now), Ok(Some(expected)));
    assert_eq!(or.next_fire_time(None, now), Ok(Some(expected)));
}

#[test]
fn empty_lists_are_rejected() {
    assert!(AndTrigger::new(Vec::new()).is_err());
    assert!(OrTrigger::new_local(Vec::new()).is_err());
}

#[test]
fn states_nest_and_restore_through_the_registry() {
    let children: Vec<Arc<dyn LocalTrigger>> = vec![lord_howe_cron("*/10"), lord_howe_cron("*/15")];
    let or = OrTrigger::new_local(children)
        .unwrap()
        .jitter(Duration::from_secs(3));
    let state = or.to_state().unwrap();
    assert_eq!(state.kind, "or");
    assert_eq!(state.state["triggers"][1]["kind"], "cron");
    assert_eq!(
        state.state["triggers"][1]["state"]["fields"]["minute"],
        "*/15"
    );
    let restored = crate::registry().restore(&state).unwrap();
    assert_eq!(restored.to_state().unwrap(), state);
    assert_eq!(restored.to_string(), or.to_string());

    let and = AndTrigger::new(vec![cron("*/10"), Arc::new(or)])
        .unwrap()
        .threshold(Duration::from_secs(1))
        .max_iterations(50);
    let state = and.to_state().unwrap();
    assert_eq!(state.state["triggers"][1]["kind"], "or");
    let restored = crate::registry().restore(&state).unwrap();
    assert_eq!(restored.to_state().unwrap(), state);
    // The restored local children still compare by wall clock.
    let now = DateTime::parse_from_rfc3339("2012-04-01T01:45:27+11:00")
        .unwrap()
        .to_utc();
    let plain_or =
        OrTrigger::new_local(vec![lord_howe_cron("*/10"), lord_howe_cron("*/15")]).unwrap();
    let restored_or = crate::registry()
        .restore(&plain_or.to_state().unwrap())
        .unwrap();
    assert_eq!(
        restored_or.next_fire_time(None, now),
        plain_or.next_fire_time(None, now)
    );
    // A kind nobody registered is an error, not a panic.
    let mut bad = plain_or.to_state().unwrap();
    bad.state["triggers"][0]["kind"] = "mystery".into();
    assert!(crate::registry().restore(&bad).is_err());
}

//! Python's datetime semantics on `chrono-tz`: gaps, folds, wall-clock arithmetic, rules
//! after 2099.

use super::*;
use chrono_tz::{America, Australia, Europe, Pacific};

fn wall(text: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").unwrap()
}

fn offset(text: &str) -> FixedOffset {
    parse_offset(text).unwrap()
}

#[test]
fn gap_times_take_the_offset_before_the_transition_unless_fold() {
    let ny = Zone::Named(America::New_York);
    let gap = ZonedDateTime::with_wall(wall("2024-03-10 02:30:00"), false, ny);
    assert_eq!(gap.offset(), offset("-05:00"));
    assert_eq!(gap.to_local().to_rfc3339(), "2024-03-10T02:30:00-05:00");
    assert_eq!(gap.instant().to_rfc3339(), "2024-03-10T07:30:00+00:00");
    let folded = ZonedDateTime::with_wall(gap.wall, true, ny);
    assert_eq!(folded.offset(), offset("-04:00"));
}

#[test]
fn localize_moves_gap_times_forward_and_takes_the_first_repeated_time() {
    let berlin = Zone::Named(Europe::Berlin);
    let shifted = ZonedDateTime::localize(wall("2024-03-31 02:30:00"), berlin);
    assert_eq!(shifted.to_local().to_rfc3339(), "2024-03-31T03:30:00+02:00");
    let first = ZonedDateTime::localize(wall("2024-10-27 02:30:00"), berlin);
    assert_eq!(first.to_local().to_rfc3339(), "2024-10-27T02:30:00+02:00");
    assert!(!first.fold());
}

#[test]
fn from_utc_sets_fold_on_the_second_pass() {
    let ny = Zone::Named(America::New_York);
    let second = ZonedDateTime::from_utc(wall("2024-11-03 06:30:00"), ny);
    assert_eq!(second.wall, wall("2024-11-03 01:30:00"));
    assert!(second.fold());
    let first = ZonedDateTime::from_utc(wall("2024-11-03 05:30:00"), ny);
    assert!(!first.fold());
    // Same zone: Python compares wall clocks and ignores fold.
    assert!(first.py_eq(&second));
    assert_eq!(first.py_cmp(&second), Ordering::Equal);
    // Another zone: instants, and PEP 495 makes fold-dependent times unequal.
    let utc = ZonedDateTime::from_utc(wall("2024-11-03 06:30:00"), Zone::UTC);
    assert_eq!(second.py_cmp(&utc), Ordering::Equal);
    assert!(!second.py_eq(&utc));
}

#[test]
fn wall_arithmetic_resets_fold() {
    let ny = Zone::Named(America::New_York);
    let second = ZonedDateTime::from_utc(wall("2024-11-03 06:30:00"), ny);
    let later = second.add_wall(TimeDelta::seconds(10)).unwrap();
    // Python: 01:30:00 EST + 10 s = 01:30:10 EDT, an hour earlier.
    assert_eq!(later.to_local().to_rfc3339(), "2024-11-03T01:30:10-04:00");
    let absolute = second.utc_add(TimeDelta::seconds(10)).unwrap();
    assert_eq!(
        absolute.to_local().to_rfc3339(),
        "2024-11-03T01:30:10-05:00"
    );
}

#[test]
fn odd_zones() {
    // Lord Howe's 30-minute shift and Apia's skipped day.
    let lord_howe = Zone::Named(Australia::Lord_Howe);
    let gap = ZonedDateTime::localize(wall("2024-10-06 02:15:00"), lord_howe);
    assert_eq!(gap.to_local().to_rfc3339(), "2024-10-06T02:45:00+11:00");
    assert_eq!(lord_howe.abbreviation(gap.utc()), "+11");
    let apia = Zone::Named(Pacific::Apia);
    let skipped = ZonedDateTime::with_wall(wall("2011-12-30 12:00:00"), false, apia);
    assert_eq!(skipped.offset(), offset("-10:00"));
    assert_eq!(skipped.instant().to_rfc3339(), "2011-12-30T22:00:00+00:00");
}

#[test]
fn rules_continue_after_2099() {
    let ny = Zone::Named(America::New_York);
    let summer = ZonedDateTime::localize(wall("2150-07-01 12:00:00"), ny);
    assert_eq!(summer.offset(), offset("-04:00"));
    let winter = ZonedDateTime::localize(wall("2150-01-01 12:00:00"), ny);
    assert_eq!(winter.offset(), offset("-05:00"));
    // Second Sunday of March 2100 is the 14th.
    let gap = ZonedDateTime::localize(wall("2100-03-14 02:30:00"), ny);
    assert_eq!(gap.to_local().to_rfc3339(), "2100-03-14T03:30:00-04:00");
    let lord_howe = Zone::Named(Australia::Lord_Howe);
    let july = ZonedDateTime::localize(wall("2101-07-02 12:00:00"), lord_howe);
    assert_eq!(july.offset(), offset("+10:30"));
    // A zone that stopped observing DST stays put.
    let sao_paulo = Zone::Named(America::Sao_Paulo);
    assert_eq!(
        ZonedDateTime::localize(wall("2150-01-01 12:00:00"), sao_paulo).offset(),
        offset("-03:00")
    );
}

#[test]
fn parses_and_prints_zones() {
    assert_eq!(
        "Europe/Berlin".parse::<Zone>().unwrap(),
        Zone::Named(Europe::Berlin)
    );
    assert_eq!("+05:30".parse::<Zone>().unwrap().to_string(), "+05:30");
    assert!("Mars/Olympus".parse::<Zone>().is_err());
    assert_eq!(
        Zone::Fixed(offset("+05:30")).abbreviation(wall("2024-01-01 00:00:00")),
        "UTC+05:30"
    );
}

#[test]
fn state_strings_round_trip() {
    let berlin = Zone::Named(Europe::Berlin);
    let value = ZonedDateTime::localize(wall("2024-10-27 02:30:00"), berlin);
    let text = value.to_state_string();
    assert_eq!(text, "2024-10-27T02:30:00+02:00[Europe/Berlin]");
    let back = ZonedDateTime::from_state_string(&text).unwrap();
    assert_eq!(
        (back.wall, back.fold(), back.zone),
        (value.wall, value.fold(), value.zone)
    );
    let fixed = ZonedDateTime::from_state_string("2024-06-01T12:00:00.123456+05:30").unwrap();
    assert_eq!(fixed.zone, Zone::Fixed(offset("+05:30")));
    assert!(ZonedDateTime::from_state_string("2024-06-01T12:00:00+05:30[Nowhere]").is_err());
}

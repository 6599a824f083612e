//! When a zone's offset changes, which the cron and calendar-interval catch-ups count between.

use chrono::{Datelike, NaiveDate, NaiveDateTime, Offset, TimeDelta, TimeZone, Timelike};
use chrono_tz::Tz;
use scheduler_core::SearchExhausted;

use super::{LAST_TABLE_YEAR, Zone, equivalent_year, has_yearly_rule};
use crate::budget;

/// The budget steps one year of a zone's transitions costs.
const TRANSITION_YEAR_STEPS: u64 = 4;
impl Zone {
    /// The first instant in `(after, until]` (UTC) at which the zone's offset changes.
    pub(crate) fn next_transition(
        &self,
        after: NaiveDateTime,
        until: NaiveDateTime,
    ) -> Result<Option<NaiveDateTime>, SearchExhausted> {
        let tz = match self {
            Zone::Fixed(_) | Zone::Named(Tz::UTC) => return Ok(None),
            Zone::Named(tz) => *tz,
        };
        let mut year = after.year();
        while year <= until.year() {
            if year > LAST_TABLE_YEAR && !has_yearly_rule(tz) {
                return Ok(None);
            }
            budget::step(TRANSITION_YEAR_STEPS)?;
            let found = transitions_in_year(tz, year)
                .iter()
                .copied()
                .find(|&t| t > after && t <= until);
            if found.is_some() {
                return Ok(found);
            }
            year += 1;
        }
        Ok(None)
    }
}

/// The instants of `year` (UTC) at which `tz`'s offset changes, ascending.
///
/// `chrono-tz` does not expose its transition table, so the year is probed once a week
/// and each change narrowed down to the second (no zone since 1970 has changed its offset and
/// back within a week); after 2099 the transitions of the equivalent year are moved to
/// `year`, as [`beyond_table`] does for offsets. Each year is worked out once per zone.
fn transitions_in_year(tz: Tz, year: i32) -> std::sync::Arc<[NaiveDateTime]> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};
    type Cache = Mutex<HashMap<(Tz, i32), Arc<[NaiveDateTime]>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(found) = cache
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .get(&(tz, year))
    {
        return found.clone();
    }
    let found: Arc<[NaiveDateTime]> = if year > LAST_TABLE_YEAR {
        let twin = equivalent_year(year);
        transitions_in_year(tz, twin)
            .iter()
            .filter_map(|t| t.with_year(year))
            .collect()
    } else {
        probe_transitions(tz, year).into()
    };
    cache
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .insert((tz, year), found.clone());
    found
}

fn probe_transitions(tz: Tz, year: i32) -> Vec<NaiveDateTime> {
    let offset = |t: NaiveDateTime| tz.offset_from_utc_datetime(&t).fix();
    let (Some(start), Some(end)) = (
        NaiveDate::from_ymd_opt(year, 1, 1).and_then(|d| d.and_hms_opt(0, 0, 0)),
        NaiveDate::from_ymd_opt(year + 1, 1, 1).and_then(|d| d.and_hms_opt(0, 0, 0)),
    ) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    // A change at the very start of the year belongs to it.
    let mut before = offset(start - TimeDelta::seconds(1));
    let mut low = start - TimeDelta::seconds(1);
    while low < end {
        let high = (low + TimeDelta::days(7)).min(end - TimeDelta::seconds(1));
        let at_high = offset(high);
        if at_high != before {
            // The first second with the new offset, in (low, high].
            let (mut lo, mut hi) = (low, high);
            while hi - lo > TimeDelta::seconds(1) {
                let mid = lo + (hi - lo) / 2;
                let mid = mid.with_nanosecond(0).unwrap_or(mid);
                if offset(mid) == before {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            found.push(hi);
            before = at_high;
        }
        if high == end - TimeDelta::seconds(1) {
            break;
        }
        low = high;
    }
    found
}

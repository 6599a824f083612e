//! [`AndTrigger`] and [`OrTrigger`]: combine other triggers.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, TimeDelta, Utc};
use chrono_tz::Tz;
use scheduler_core::{CatchUp, SearchExhausted, Trigger, TriggerRegistry, TriggerState};
use serde::{Deserialize, Serialize};

use crate::jitter::{self, Jitter, JitterSource};
use crate::zone::{Zone, ZonedDateTime};
use crate::{LocalTrigger, TriggerError, budget};

/// The budget steps a round of an [`AndTrigger`] costs, besides its children's answers.
const ROUND_STEPS: u64 = 4;
/// The budget steps asking a child costs, besides the child's own steps (the conversions of
/// its answer).
const CHILD_STEPS: u64 = 6;

/// The default bound on an [`AndTrigger`]'s search, in rounds (each round moves every child
/// that is behind to its first fire time at or after the latest answer).
pub const DEFAULT_MAX_ITERATIONS: u32 = 10_000;

/// Fires when all of its triggers fire (APScheduler's `AndTrigger`).
///
/// Each child is asked for its next fire time (with the combined previous fire time, as in
/// APScheduler); while they disagree, every child behind the latest answer is asked for its
/// first fire time at or after it, until all answers are within `threshold` of each other
/// (then the first child's answer is the answer) or a child is finished (then so is this
/// trigger). This is APScheduler 3.11's leapfrogging search, which finds
/// `and[date(15:00), cron(second='*')]` in two rounds where stepping the cron trigger second
/// by second would take 10,800 steps.
///
/// APScheduler 3.x asks its children with a later `now` even once there is a previous fire
/// time, which its cron and interval triggers ignore: it then loops forever (issues #783,
/// #281, #361). Here a child is moved on along its own schedule ([`Trigger::catch_up`]), so
/// every answer comes quickly. The search is bounded by [`max_iterations`](Self::max_iterations)
/// rounds, an optional [`horizon`](Self::horizon) and the [step budget](crate::budget); when
/// a bound is reached first the answer is [`SearchExhausted`], not "finished": the scheduler
/// then pauses the job and says so, rather than dropping it.
///
/// ```
/// use std::sync::Arc;
/// use chrono::{TimeZone, Utc};
/// use scheduler_core::Trigger;
/// use triggers::{AndTrigger, CronTrigger};
///
/// let mondays = CronTrigger::builder().day_of_week("mon").hour(3).timezone(chrono_tz::UTC).build()?;
/// let first_week = CronTrigger::builder().day("1-7").hour(3).timezone(chrono_tz::UTC).build()?;
/// let trigger = AndTrigger::new(vec![Arc::new(mondays), Arc::new(first_week)])?;
/// assert_eq!(trigger.to_string(), "and[cron[day_of_week='mon', hour='3'], cron[day='1-7', hour='3']]");
/// let now = Utc.with_ymd_and_hms(2028, 1, 29, 12, 0, 0).unwrap();
/// let first = trigger.next_fire_time(None, now)?.unwrap();
/// assert_eq!(first, Utc.with_ymd_and_hms(2028, 2, 7, 3, 0, 0).unwrap());
/// let second = trigger.next_fire_time(Some(first), first)?.unwrap();
/// assert_eq!(second, Utc.with_ymd_and_hms(2028, 3, 6, 3, 0, 0).unwrap());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct AndTrigger {
    children: Vec<Child>,
    jitter: JitterSetting,
    threshold: TimeDelta,
    max_iterations: u32,
    horizon: Option<TimeDelta>,
}

/// Fires when any of its triggers fires (APScheduler's `OrTrigger`).
///
/// The answer is the earliest of the children's answers; the trigger is finished when all
/// of them are. As in APScheduler, every child is given the combined previous fire time, so
/// an interval child restarts from any fire time and a date child only fires if it is the
/// first to fire.
///
/// Children given as [`LocalTrigger`]s (all the triggers of this crate) are compared as
/// APScheduler 3.x compares them: two answers in the same zone by their wall clocks, so in a
/// repeated hour 01:30 of the second pass counts as earlier than 01:50 of the first. Jitter
/// is added to the wall clock of the chosen answer. Opaque children (`Arc<dyn Trigger>`) are
/// compared by instant.
///
/// ```
/// use std::sync::Arc;
/// use chrono::{TimeZone, Utc};
/// use scheduler_core::Trigger;
/// use triggers::{CronTrigger, DateTrigger, LocalTrigger, OrTrigger};
///
/// let noon = CronTrigger::builder().hour(12).timezone(chrono_tz::UTC).build()?;
/// let once = DateTrigger::new(Utc.with_ymd_and_hms(2024, 1, 1, 8, 0, 0).unwrap());
/// let children: Vec<Arc<dyn LocalTrigger>> = vec![Arc::new(noon), Arc::new(once)];
/// let trigger = OrTrigger::new_local(children)?;
/// let now = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
/// let first = trigger.next_fire_time(None, now)?.unwrap();
/// assert_eq!(first, Utc.with_ymd_and_hms(2024, 1, 1, 8, 0, 0).unwrap());
/// let second = trigger.next_fire_time(Some(first), first)?.unwrap();
/// assert_eq!(second, Utc.with_ymd_and_hms(2024, 1, 1, 12, 0, 0).unwrap());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct OrTrigger {
    children: Vec<Child>,
    jitter: JitterSetting,
}

/// A combined trigger: one of this crate's (answers with wall clock and zone) or any other.
#[derive(Debug, Clone)]
enum Child {
    Local(Arc<dyn LocalTrigger>),
    Opaque(Arc<dyn Trigger>),
}

/// The previous fire time as a combining trigger received it.
#[derive(Debug, Clone, Copy)]
enum Previous {
    Local(DateTime<FixedOffset>),
    Instant(DateTime<Utc>),
}

impl Previous {
    fn instant(self) -> DateTime<Utc> {
        match self {
            Previous::Local(local) => local.to_utc(),
            Previous::Instant(instant) => instant,
        }
    }
}

impl Child {
    fn trigger(&self) -> &dyn fmt::Display {
        match self {
            Child::Local(trigger) => trigger,
            Child::Opaque(trigger) => trigger,
        }
    }

    fn to_state(&self) -> scheduler_core::Result<TriggerState> {
        match self {
            Child::Local(trigger) => trigger.to_state(),
            Child::Opaque(trigger) => trigger.to_state(),
        }
    }

    /// The child's answer as APScheduler holds it: wall clock, fold and zone.
    fn next(
        &self,
        previous: Option<Previous>,
        now: DateTime<Utc>,
    ) -> Result<Option<ZonedDateTime>, SearchExhausted> {
        Ok(match self {
            Child::Local(trigger) => {
                let zone = trigger.local_zone();
                let previous = previous.map(|previous| match (previous, zone) {
                    (Previous::Local(local), _) => local,
                    // An instant is read as the real local time in the child's zone.
                    (Previous::Instant(instant), Some(zone)) => zone.to_local(instant),
                    (Previous::Instant(instant), None) => instant.fixed_offset(),
                });
                trigger
                    .next_local_fire_time(previous, now)?
                    .map(|answer| self.zoned(answer))
            }
            Child::Opaque(trigger) => trigger
                .next_fire_time(previous.map(Previous::instant), now)?
                .map(|answer| ZonedDateTime::from_instant(answer, Zone::UTC)),
        })
    }

    fn zoned(&self, answer: DateTime<FixedOffset>) -> ZonedDateTime {
        let zone = match self {
            Child::Local(trigger) => trigger.local_zone(),
            Child::Opaque(_) => None,
        };
        ZonedDateTime::from_local(answer, zone.unwrap_or(Zone::Fixed(*answer.offset())))
    }

    /// The child's first fire time at or after `latest`, going on from its answer `behind`.
    ///
    /// APScheduler's question, the first fire time from `now = latest`, answers it for the
    /// triggers that heed `now` (cron, interval); the date and calendar-interval triggers
    /// ignore `now` on a first call, so then the child follows its own schedule from
    /// `behind`. `None` when the child is finished; an answer still before `latest` when its
    /// catch-up stopped early (the next round goes on from there).
    fn leap(
        &self,
        behind: &ZonedDateTime,
        latest: DateTime<Utc>,
    ) -> Result<Option<ZonedDateTime>, SearchExhausted> {
        budget::step(CHILD_STEPS)?;
        if let Some(fresh) = self.next(None, latest)? {
            if fresh.instant() >= latest {
                return Ok(Some(fresh));
            }
        }
        let trigger: &dyn Trigger = match self {
            Child::Local(trigger) => trigger.as_ref(),
            Child::Opaque(trigger) => trigger.as_ref(),
        };
        let caught = trigger.catch_up(
            behind.instant(),
            latest - TimeDelta::microseconds(1),
            u64::from(u16::MAX),
        )?;
        Ok(caught.next.map(|next| {
            let zone = match self {
                Child::Local(trigger) => trigger.local_zone(),
                Child::Opaque(_) => None,
            };
            ZonedDateTime::from_instant(next, zone.unwrap_or(Zone::UTC))
        }))
    }

    /// The child with `zone` where it has none of its own, or `None` when nothing changes.
    fn with_default_zone(&self, zone: Zone) -> Option<Child> {
        match self {
            Child::Local(trigger) => trigger.with_default_zone(zone).map(Child::Local),
            Child::Opaque(trigger) => match zone {
                Zone::Named(tz) => trigger.with_default_timezone(tz).map(Child::Opaque),
                Zone::Fixed(_) => None,
            },
        }
    }
}

/// `children` with `zone` where they have none of their own, or `None` when none changes.
fn children_with_default_zone(children: &[Child], zone: Zone) -> Option<Vec<Child>> {
    let rezoned: Vec<Option<Child>> = children
        .iter()
        .map(|child| child.with_default_zone(zone))
        .collect();
    if rezoned.iter().all(Option::is_none) {
        return None;
    }
    Some(
        rezoned
            .into_iter()
            .zip(children)
            .map(|(new, old)| new.unwrap_or_else(|| old.clone()))
            .collect(),
    )
}

fn check_children(children: &[Child]) -> Result<(), TriggerError> {
    if children.is_empty() {
        return Err(TriggerError::argument(
            "triggers",
            "at least one trigger is needed",
        ));
    }
    Ok(())
}

/// A jitter maximum and source, set separately by the two setters.
#[derive(Debug, Clone, Default)]
struct JitterSetting {
    max_seconds: f64,
    source: Option<Arc<dyn JitterSource>>,
}

impl JitterSetting {
    fn with_max(self, max_seconds: f64) -> Self {
        JitterSetting {
            max_seconds,
            ..self
        }
    }

    fn with_source(self, source: Arc<dyn JitterSource>) -> Self {
        JitterSetting {
            source: Some(source),
            ..self
        }
    }

    fn restore(kind: &'static str, max_seconds: Option<f64>) -> Result<Self, TriggerError> {
        let max_seconds = jitter::validate(max_seconds.unwrap_or(0.0))
            .map_err(|e| TriggerError::state(kind, e))?;
        Ok(JitterSetting {
            max_seconds,
            source: None,
        })
    }

    fn get(&self) -> Option<Jitter> {
        Jitter::new(self.max_seconds, self.source.clone())
    }

    fn saved(&self) -> Option<f64> {
        (self.max_seconds != 0.0).then_some(self.max_seconds)
    }

    /// APScheduler's `_apply_jitter`: `answer + timedelta(seconds=uniform(0, jitter))`,
    /// on the wall clock in the answer's zone, never earlier than `answer`
    /// ([`Jitter::delay`]).
    fn apply(&self, answer: ZonedDateTime) -> Option<ZonedDateTime> {
        match self.get() {
            None => Some(answer),
            Some(jitter) => jitter.delay(answer),
        }
    }
}

macro_rules! combining_common {
    ($name:ident) => {
        impl $name {
            /// Delays each fire time by up to `jitter`.
            pub fn jitter(mut self, jitter: Duration) -> Self {
                self.jitter = self.jitter.with_max(jitter.as_secs_f64());
                self
            }

            /// Where jitter fractions come from (default: [`RandomJitter`](crate::RandomJitter)).
            pub fn jitter_source(mut self, source: impl JitterSource) -> Self {
                self.jitter = self.jitter.with_source(Arc::new(source));
                self
            }

            /// How many triggers are combined.
            pub fn len(&self) -> usize {
                self.children.len()
            }

            /// Always `false`: a combining trigger has at least one child.
            pub fn is_empty(&self) -> bool {
                self.children.is_empty()
            }

            #[cfg(feature = "conformance")]
            pub(crate) fn jitter_seconds(mut self, seconds: f64) -> Self {
                self.jitter = self.jitter.with_max(seconds);
                self
            }
        }

        impl Trigger for $name {
            fn next_fire_time(
                &self,
                previous: Option<DateTime<Utc>>,
                now: DateTime<Utc>,
            ) -> Result<Option<DateTime<Utc>>, SearchExhausted> {
                budget::call(|| {
                    Ok(self
                        .next(previous.map(Previous::Instant), now)?
                        .map(|answer| answer.instant()))
                })
            }

            fn to_state(&self) -> scheduler_core::Result<TriggerState> {
                self.save()
            }

            fn catch_up(
                &self,
                first: DateTime<Utc>,
                until: DateTime<Utc>,
                max_steps: u64,
            ) -> Result<CatchUp, SearchExhausted> {
                budget::walk_catch_up(self, first, until, max_steps)
            }

            fn with_default_timezone(&self, timezone: Tz) -> Option<Arc<dyn Trigger>> {
                let rezoned = self.with_default_zone(Zone::Named(timezone))?;
                Some(rezoned)
            }
        }

        impl LocalTrigger for $name {
            /// The chosen child's local answer (plus jitter), in that child's offset.
            fn next_local_fire_time(
                &self,
                previous: Option<DateTime<FixedOffset>>,
                now: DateTime<Utc>,
            ) -> Result<Option<DateTime<FixedOffset>>, SearchExhausted> {
                budget::call(|| {
                    Ok(self
                        .next(previous.map(Previous::Local), now)?
                        .map(ZonedDateTime::to_local))
                })
            }

            fn with_default_zone(&self, zone: Zone) -> Option<Arc<dyn LocalTrigger>> {
                let children = children_with_default_zone(&self.children, zone)?;
                Some(Arc::new($name {
                    children,
                    ..self.clone()
                }))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}[", Self::KIND)?;
                for (i, child) in self.children.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}", child.trigger())?;
                }
                f.write_str("]")
            }
        }
    };
}

combining_common!(AndTrigger);
combining_common!(OrTrigger);

impl AndTrigger {
    /// The kind name this trigger is saved and registered under.
    pub const KIND: &'static str = "and";

    /// Combines `triggers` (at least one), compared by instant.
    pub fn new(triggers: Vec<Arc<dyn Trigger>>) -> Result<Self, TriggerError> {
        Self::with_children(triggers.into_iter().map(Child::Opaque).collect())
    }

    /// Combines `triggers` (at least one) that answer with wall clock and zone, such as this
    /// crate's.
    pub fn new_local(triggers: Vec<Arc<dyn LocalTrigger>>) -> Result<Self, TriggerError> {
        Self::with_children(triggers.into_iter().map(Child::Local).collect())
    }

    fn with_children(children: Vec<Child>) -> Result<Self, TriggerError> {
        check_children(&children)?;
        Ok(AndTrigger {
            children,
            jitter: JitterSetting::default(),
            threshold: TimeDelta::zero(),
            max_iterations: DEFAULT_MAX_ITERATIONS,
            horizon: None,
        })
    }

    /// Answers that are at most `threshold` apart count as agreeing (default: only equal
    /// answers, as in APScheduler 3.x; APScheduler 4 uses one second).
    pub fn threshold(mut self, threshold: Duration) -> Self {
        self.threshold = TimeDelta::from_std(threshold).unwrap_or(TimeDelta::MAX);
        self
    }

    /// The most rounds one answer may take (default [`DEFAULT_MAX_ITERATIONS`]).
    pub fn max_iterations(mut self, max_iterations: u32) -> Self {
        self.max_iterations = max_iterations;
        self
    }

    /// How far past `now` (or the previous fire time) the search looks for a common fire time
    /// (default: as far as the triggers go, the year 9999).
    pub fn horizon(mut self, horizon: Duration) -> Self {
        self.horizon = Some(TimeDelta::from_std(horizon).unwrap_or(TimeDelta::MAX));
        self
    }

    fn next(
        &self,
        previous: Option<Previous>,
        now: DateTime<Utc>,
    ) -> Result<Option<ZonedDateTime>, SearchExhausted> {
        let mut answers = Vec::with_capacity(self.children.len());
        for child in &self.children {
            match child.next(previous, now)? {
                Some(answer) => answers.push(answer),
                None => return Ok(None),
            }
        }
        let from = previous.map_or(now, |p| p.instant().max(now));
        let horizon = self.horizon.and_then(|h| from.checked_add_signed(h));
        for _ in 0..=self.max_iterations {
            budget::step(ROUND_STEPS)?;
            let instants: Vec<DateTime<Utc>> = answers.iter().map(|a| a.instant()).collect();
            let earliest = instants.iter().copied().min().unwrap_or(now);
            let latest = instants.iter().copied().max().unwrap_or(now);
            if latest - earliest <= self.threshold {
                // APScheduler answers the first child's time.
                return Ok(self.jitter.apply(answers[0]));
            }
            if let Some(horizon) = horizon.filter(|h| latest > *h) {
                return Err(SearchExhausted::new(format!(
                    "the triggers have no common fire time up to the horizon, {horizon}"
                )));
            }
            // Within `threshold` of the latest answer counts as agreeing with it.
            let target = latest - self.threshold;
            for (child, answer) in self.children.iter().zip(&mut answers) {
                if answer.instant() < target {
                    match child.leap(answer, target)? {
                        Some(next) if next.instant() > answer.instant() => *answer = next,
                        // Finished, or unable to move on: no common fire time ever.
                        _ => return Ok(None),
                    }
                }
            }
        }
        Err(SearchExhausted::new(format!(
            "the triggers did not agree within {} rounds",
            self.max_iterations
        )))
    }

    fn save(&self) -> scheduler_core::Result<TriggerState> {
        let state = AndState {
            version: 1,
            triggers: child_states(&self.children)?,
            jitter: self.jitter.saved(),
            threshold_micros: self.threshold.num_microseconds().unwrap_or(i64::MAX),
            max_iterations: self.max_iterations,
            horizon_secs: self.horizon.map(|h| h.num_seconds()),
        };
        TriggerState::new(Self::KIND, &state)
    }

    /// Restores an `and` trigger saved by [`Trigger::to_state`]. Children of this crate's
    /// kinds are restored by this crate, others through `registry`.
    pub fn from_state(
        state: &serde_json::Value,
        registry: &TriggerRegistry,
    ) -> scheduler_core::Result<Self> {
        let state: AndState = parse_state(Self::KIND, state)?;
        crate::check_version(Self::KIND, state.version, 1)?;
        let mut trigger = Self::with_children(restore_children(&state.triggers, registry)?)?
            .max_iterations(state.max_iterations);
        trigger.threshold = TimeDelta::microseconds(state.threshold_micros.max(0));
        trigger.horizon = state
            .horizon_secs
            .map(|secs| TimeDelta::seconds(secs.max(0)));
        trigger.jitter = JitterSetting::restore(Self::KIND, state.jitter)?;
        Ok(trigger)
    }
}

impl OrTrigger {
    /// The kind name this trigger is saved and registered under.
    pub const KIND: &'static str = "or";

    /// Combines `triggers` (at least one), compared by instant.
    pub fn new(triggers: Vec<Arc<dyn Trigger>>) -> Result<Self, TriggerError> {
        Self::with_children(triggers.into_iter().map(Child::Opaque).collect())
    }

    /// Combines `triggers` (at least one) that answer with wall clock and zone, such as this
    /// crate's; they are compared as APScheduler compares them.
    pub fn new_local(triggers: Vec<Arc<dyn LocalTrigger>>) -> Result<Self, TriggerError> {
        Self::with_children(triggers.into_iter().map(Child::Local).collect())
    }

    fn with_children(children: Vec<Child>) -> Result<Self, TriggerError> {
        check_children(&children)?;
        Ok(OrTrigger {
            children,
            jitter: JitterSetting::default(),
        })
    }

    fn next(
        &self,
        previous: Option<Previous>,
        now: DateTime<Utc>,
    ) -> Result<Option<ZonedDateTime>, SearchExhausted> {
        // Python's `min()`: the first answer no other answer is strictly less than.
        let mut earliest: Option<ZonedDateTime> = None;
        for child in &self.children {
            budget::step(CHILD_STEPS)?;
            if let Some(answer) = child.next(previous, now)? {
                if earliest.is_none_or(|min| answer.py_cmp(&min).is_lt()) {
                    earliest = Some(answer);
                }
            }
        }
        Ok(earliest.and_then(|earliest| self.jitter.apply(earliest)))
    }

    fn save(&self) -> scheduler_core::Result<TriggerState> {
        let state = OrState {
            version: 1,
            triggers: child_states(&self.children)?,
            jitter: self.jitter.saved(),
        };
        TriggerState::new(Self::KIND, &state)
    }

    /// Restores an `or` trigger saved by [`Trigger::to_state`]. Children of this crate's
    /// kinds are restored by this crate, others through `registry`.
    pub fn from_state(
        state: &serde_json::Value,
        registry: &TriggerRegistry,
    ) -> scheduler_core::Result<Self> {
        let state: OrState = parse_state(Self::KIND, state)?;
        crate::check_version(Self::KIND, state.version, 1)?;
        let mut trigger = Self::with_children(restore_children(&state.triggers, registry)?)?;
        trigger.jitter = JitterSetting::restore(Self::KIND, state.jitter)?;
        Ok(trigger)
    }
}

/// The saved form of an `and` trigger: the children's own saved forms, nested.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AndState {
    version: u32,
    triggers: Vec<TriggerState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jitter: Option<f64>,
    #[serde(default)]
    threshold_micros: i64,
    #[serde(default = "default_max_iterations")]
    max_iterations: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    horizon_secs: Option<i64>,
}

fn default_max_iterations() -> u32 {
    DEFAULT_MAX_ITERATIONS
}

/// The saved form of an `or` trigger.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OrState {
    version: u32,
    triggers: Vec<TriggerState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jitter: Option<f64>,
}

fn parse_state<T: serde::de::DeserializeOwned>(
    kind: &'static str,
    state: &serde_json::Value,
) -> Result<T, TriggerError> {
    T::deserialize(state).map_err(|e| TriggerError::state(kind, e))
}

fn child_states(children: &[Child]) -> scheduler_core::Result<Vec<TriggerState>> {
    children.iter().map(Child::to_state).collect()
}

/// Restores children: this crate's kinds as local children (so they keep APScheduler's
/// comparison), any other kind through the registry.
fn restore_children(
    states: &[TriggerState],
    registry: &TriggerRegistry,
) -> scheduler_core::Result<Vec<Child>> {
    #[cfg(any(
        feature = "date",
        feature = "interval",
        feature = "cron",
        feature = "calendar-interval"
    ))]
    fn local<T: LocalTrigger + serde::de::DeserializeOwned>(
        state: &TriggerState,
    ) -> scheduler_core::Result<Child> {
        let trigger: T = serde_json::from_value(state.state.clone()).map_err(|e| {
            scheduler_core::Error::invalid_trigger(format!(
                "cannot restore a {:?} trigger: {e}",
                state.kind
            ))
            .with_source(e)
        })?;
        Ok(Child::Local(Arc::new(trigger)))
    }
    states
        .iter()
        .map(|state| match state.kind.as_str() {
            #[cfg(feature = "date")]
            crate::DateTrigger::KIND => local::<crate::DateTrigger>(state),
            #[cfg(feature = "interval")]
            crate::IntervalTrigger::KIND => local::<crate::IntervalTrigger>(state),
            #[cfg(feature = "cron")]
            crate::CronTrigger::KIND => local::<crate::CronTrigger>(state),
            #[cfg(feature = "calendar-interval")]
            crate::CalendarIntervalTrigger::KIND => local::<crate::CalendarIntervalTrigger>(state),
            AndTrigger::KIND => Ok(Child::Local(Arc::new(AndTrigger::from_state(
                &state.state,
                registry,
            )?))),
            OrTrigger::KIND => Ok(Child::Local(Arc::new(OrTrigger::from_state(
                &state.state,
                registry,
            )?))),
            _ => registry.restore(state).map(Child::Opaque),
        })
        .collect()
}

#[cfg(test)]
mod tests {
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
        let children: Vec<Arc<dyn LocalTrigger>> =
            vec![lord_howe_cron("*/10"), lord_howe_cron("*/15")];
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
}

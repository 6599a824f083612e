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
        if let Some(fresh) = self.next(None, latest)?
            && fresh.instant() >= latest
        {
            return Ok(Some(fresh));
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
            if let Some(answer) = child.next(previous, now)?
                && earliest.is_none_or(|min| answer.py_cmp(&min).is_lt())
            {
                earliest = Some(answer);
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
mod tests;

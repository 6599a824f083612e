//! When a job fires: the [`Trigger`] contract and the registry that restores saved triggers.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::{Debug, Display};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};

/// Decides when a job fires.
///
/// A trigger is pure and synchronous, as in APScheduler 3.x: given the previous fire time (if
/// the job fired before) and the current time, it answers the next fire time. It reads no
/// clock and does no I/O, so the same inputs always give the same answer (up to jitter, which
/// comes from a random source the trigger owns).
///
/// What the scheduler relies on:
///
/// - **An answer moves forward**: a fire time answered for `previous = Some(p)` is later
///   than `p`. The scheduler checks it; a trigger that breaks it has its job paused and kept
///   ([`Event::JobFault`](crate::Event::JobFault)), never deleted.
/// - **An answer comes quickly**, whatever the input. A trigger that searches (cron, the
///   combinations) bounds its work and answers [`SearchExhausted`] when the bound is reached
///   before it found a fire time or proved there is none: "I could not tell", which the
///   scheduler reports, unlike `Ok(None)`, "finished", after which it removes the job.
///
/// A trigger also has a persistable form, [`TriggerState`]: a kind name plus serde state. Any
/// store can save it and a [`TriggerRegistry`] that knows the kind restores it, so user-defined
/// triggers persist exactly like the built-in ones.
///
/// [`Display`] gives the short description shown in job listings, such as
/// `interval[0:00:10]` or `cron[hour='2', minute='30']`.
pub trait Trigger: Send + Sync + Debug + Display + 'static {
    /// The next fire time after `previous` (or the first one when `previous` is `None`), given
    /// that it is now `now`: `Ok(Some(time))`, `Ok(None)` when the trigger is finished, or
    /// [`SearchExhausted`] when it gave up looking.
    fn next_fire_time(
        &self,
        previous: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> std::result::Result<Option<DateTime<Utc>>, SearchExhausted>;

    /// The persistable form of this trigger.
    fn to_state(&self) -> Result<TriggerState>;

    /// Jumps over missed fire times: from `first`, a fire time at or before `until`, to the
    /// last fire time at or before `until`, as the chain `first`,
    /// `next_fire_time(Some(first), until)`, … would reach it, with how many fire times that
    /// chain has up to there and the one after it.
    ///
    /// The scheduler calls it when a job is late (after downtime, a suspended machine, a clock
    /// jump) so it never enumerates years of missed runs one by one. The provided
    /// implementation walks the chain, at most `max_steps` fire times; when it stops early its
    /// answer's [`next`](CatchUp::next) is still at or before `until` and the scheduler goes
    /// on from there in its next pass. Triggers that can count override it (the interval,
    /// calendar-interval and cron triggers of the `triggers` crate do, arithmetically).
    /// Skipped fire times carry no jitter.
    fn catch_up(
        &self,
        first: DateTime<Utc>,
        until: DateTime<Utc>,
        max_steps: u64,
    ) -> std::result::Result<CatchUp, SearchExhausted> {
        let mut caught = CatchUp {
            count: 1,
            last: first,
            next: None,
        };
        loop {
            caught.next = self.next_fire_time(Some(caught.last), until)?;
            match caught.next {
                Some(next) if next <= until && next > caught.last && caught.count < max_steps => {
                    caught.count += 1;
                    caught.last = next;
                }
                _ => return Ok(caught),
            }
        }
    }

    /// This trigger with `timezone` for every part of it that was built without a zone of its
    /// own, or `None` when nothing changes (the default).
    ///
    /// The scheduler calls it with its own zone when a job is added, modified or rescheduled,
    /// as APScheduler gives triggers the scheduler's zone; the trigger it answers is the one
    /// stored, displayed and saved, so a restored trigger never depends on the zone of the
    /// process that reads it.
    fn with_default_timezone(&self, timezone: Tz) -> Option<Arc<dyn Trigger>> {
        let _ = timezone;
        None
    }
}

/// A trigger's answer to [`Trigger::catch_up`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatchUp {
    /// How many fire times from the first to [`last`](Self::last), both included (at least 1).
    pub count: u64,
    /// The last fire time reached.
    pub last: DateTime<Utc>,
    /// The fire time after `last`: after `until` unless the catch-up stopped early, `None`
    /// when the trigger is finished.
    pub next: Option<DateTime<Utc>>,
}

/// A trigger gave up looking for its next fire time: it reached the bound on its work without
/// finding one or proving there is none.
///
/// Not the same as "no more fire times" (`Ok(None)`): the scheduler refuses to add such a job
/// ([`ErrorKind::TriggerFailed`]) and pauses a stored one, keeping it, with an
/// [`Event::JobFault`](crate::Event::JobFault).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the search for the next fire time gave up: {reason}")]
pub struct SearchExhausted {
    reason: Cow<'static, str>,
}

impl SearchExhausted {
    /// The search gave up, for `reason` (what bound it reached, how far it got).
    pub fn new(reason: impl Into<Cow<'static, str>>) -> Self {
        SearchExhausted {
            reason: reason.into(),
        }
    }

    /// Why the search gave up.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl From<SearchExhausted> for Error {
    fn from(exhausted: SearchExhausted) -> Self {
        Error::new(ErrorKind::TriggerFailed, exhausted.to_string()).with_source(exhausted)
    }
}

/// The saved form of a trigger: which kind it is and that kind's serde state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TriggerState {
    /// The kind name the trigger is registered under, such as `"cron"`.
    pub kind: String,
    /// The kind's own state.
    pub state: serde_json::Value,
}

impl TriggerState {
    /// Serializes `state` as the state of a trigger of `kind`.
    pub fn new(kind: impl Into<String>, state: &impl Serialize) -> Result<Self> {
        let kind = kind.into();
        let state = serde_json::to_value(state).map_err(|e| {
            Error::serialization(
                format!("cannot serialize the state of a {kind:?} trigger"),
                e,
            )
        })?;
        Ok(TriggerState { kind, state })
    }
}

/// Builds a trigger from its saved state; gets the registry to restore nested triggers.
pub type TriggerFactory =
    Arc<dyn Fn(&serde_json::Value, &TriggerRegistry) -> Result<Arc<dyn Trigger>> + Send + Sync>;

/// Maps trigger kind names to the code that restores them.
///
/// Cloning is cheap and clones share their registrations. The `triggers` crate registers its
/// kinds with `triggers::register`; register your own with [`register_serde`](Self::register_serde).
#[derive(Clone, Default)]
pub struct TriggerRegistry {
    factories: Arc<RwLock<HashMap<String, TriggerFactory>>>,
}

impl TriggerRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a factory for `kind`, replacing any earlier one.
    pub fn register(&self, kind: impl Into<String>, factory: TriggerFactory) {
        self.factories
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(kind.into(), factory);
    }

    /// Registers `T` under `kind`, restored by deserializing its state with serde.
    pub fn register_serde<T>(&self, kind: impl Into<String>)
    where
        T: Trigger + DeserializeOwned,
    {
        let kind = kind.into();
        let name = kind.clone();
        self.register(
            kind,
            Arc::new(move |state, _| {
                let trigger: T = serde_json::from_value(state.clone()).map_err(|e| {
                    Error::invalid_trigger(format!("cannot restore a {name:?} trigger: {e}"))
                        .with_source(e)
                })?;
                Ok(Arc::new(trigger) as Arc<dyn Trigger>)
            }),
        );
    }

    /// Whether `kind` is registered.
    pub fn contains(&self, kind: &str) -> bool {
        self.read().contains_key(kind)
    }

    /// Rebuilds a trigger from its saved state.
    pub fn restore(&self, state: &TriggerState) -> Result<Arc<dyn Trigger>> {
        let factory = self.read().get(&state.kind).cloned().ok_or_else(|| {
            Error::invalid_trigger(format!(
                "unknown trigger kind {:?}; register it in the scheduler's TriggerRegistry",
                state.kind
            ))
        })?;
        factory(&state.state, self)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, TriggerFactory>> {
        // A panic while registering cannot leave the map half-written, so a poisoned
        // lock still holds consistent data.
        self.factories
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Debug for TriggerRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut kinds: Vec<String> = self.read().keys().cloned().collect();
        kinds.sort();
        f.debug_struct("TriggerRegistry")
            .field("kinds", &kinds)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    /// Fires every `every` seconds after the previous fire time, from `now` on.
    #[derive(Debug, Serialize, Deserialize)]
    struct Every {
        every: i64,
    }

    impl Display for Every {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "every[{}s]", self.every)
        }
    }

    impl Trigger for Every {
        fn next_fire_time(
            &self,
            previous: Option<DateTime<Utc>>,
            now: DateTime<Utc>,
        ) -> std::result::Result<Option<DateTime<Utc>>, SearchExhausted> {
            Ok(Some(
                previous.unwrap_or(now) + chrono::TimeDelta::seconds(self.every),
            ))
        }

        fn to_state(&self) -> Result<TriggerState> {
            TriggerState::new("every", self)
        }
    }

    #[test]
    fn restores_a_user_defined_trigger() {
        let registry = TriggerRegistry::new();
        registry.register_serde::<Every>("every");
        let state = Every { every: 5 }.to_state().unwrap();
        let restored = registry.restore(&state).unwrap();
        let t0 = DateTime::from_timestamp(1_000, 0).unwrap();
        assert_eq!(
            restored.next_fire_time(Some(t0), t0),
            Ok(Some(t0 + chrono::TimeDelta::seconds(5)))
        );
        assert_eq!(restored.to_string(), "every[5s]");
    }

    #[test]
    fn unknown_kind_and_bad_state_are_typed_errors() {
        let registry = TriggerRegistry::new();
        let state = TriggerState::new("every", &serde_json::json!({"every": 5})).unwrap();
        let err = registry.restore(&state).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidTrigger);
        assert!(err.to_string().contains("unknown trigger kind \"every\""));

        registry.register_serde::<Every>("every");
        let bad = TriggerState::new("every", &serde_json::json!({"every": "soon"})).unwrap();
        assert_eq!(
            registry.restore(&bad).unwrap_err().kind(),
            ErrorKind::InvalidTrigger
        );
    }
}

//! Random delays added to fire times, from an injectable source.

use std::fmt::Debug;
use std::sync::Arc;

#[cfg(any(feature = "cron", feature = "calendar-interval", feature = "combining"))]
use {crate::pytime, crate::zone::ZonedDateTime, chrono::TimeDelta};

/// Where jitter comes from: a fraction of the maximum jitter to add.
///
/// APScheduler adds `random.uniform(0, jitter)` seconds; this crate adds
/// `jitter * source.fraction()`, so a fixed source makes jittered fire times reproducible
/// (the conformance data patches `uniform(a, b)` to `a + (b - a) * f` the same way).
pub trait JitterSource: Send + Sync + Debug + 'static {
    /// A number in `[0, 1]`.
    fn fraction(&self) -> f64;
}

impl<T: JitterSource + ?Sized> JitterSource for Arc<T> {
    fn fraction(&self) -> f64 {
        (**self).fraction()
    }
}

/// The default source: uniform random fractions from [`fastrand`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomJitter;

impl JitterSource for RandomJitter {
    fn fraction(&self) -> f64 {
        fastrand::f64()
    }
}

/// Always the same fraction, for tests and reproducible schedules.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FixedJitter(f64);

impl FixedJitter {
    /// A source that always answers `fraction`, clamped to `[0, 1]` (NaN counts as 0).
    pub fn new(fraction: f64) -> Self {
        FixedJitter(if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(0.0, 1.0)
        })
    }
}

impl JitterSource for FixedJitter {
    fn fraction(&self) -> f64 {
        self.0
    }
}

#[cfg(any(
    feature = "interval",
    feature = "cron",
    feature = "calendar-interval",
    feature = "combining"
))]
/// A trigger's jitter setting: the maximum delay and the source of randomness.
#[derive(Debug, Clone)]
pub(crate) struct Jitter {
    /// The maximum delay in seconds, as APScheduler's `jitter` argument.
    pub(crate) max_seconds: f64,
    pub(crate) source: Arc<dyn JitterSource>,
}

#[cfg(any(
    feature = "interval",
    feature = "cron",
    feature = "calendar-interval",
    feature = "combining"
))]
impl Jitter {
    /// `None` for a missing or zero jitter, which APScheduler treats as "no jitter".
    pub(crate) fn new(max_seconds: f64, source: Option<Arc<dyn JitterSource>>) -> Option<Self> {
        (max_seconds != 0.0).then(|| Jitter {
            max_seconds,
            source: source.unwrap_or_else(|| Arc::new(RandomJitter)),
        })
    }

    /// The delay to add, in seconds: `random.uniform(0, jitter)`.
    pub(crate) fn seconds(&self) -> f64 {
        // `uniform(a, b)` is `a + (b - a) * f`; with `a = 0` this is exactly `b * f`.
        self.max_seconds * self.source.fraction()
    }
}

#[cfg(any(feature = "cron", feature = "calendar-interval", feature = "combining"))]
impl Jitter {
    /// `time + timedelta(seconds=uniform(0, jitter))` as APScheduler adds it to a cron,
    /// calendar-interval or combined fire time: on the wall clock, which resets `fold`. In
    /// a repeated hour that would land an hour *earlier* than `time` (01:30 of the second
    /// pass plus 10 s is 01:30:10 of the first), possibly at or before the previous fire time,
    /// where 3.x's own scheduler then loops; the delay is then added in absolute time, so
    /// jitter only ever delays. `None` past the year 9999.
    pub(crate) fn delay(&self, time: ZonedDateTime) -> Option<ZonedDateTime> {
        crate::budget::charge(2);
        let micros = pytime::micros_from_seconds(self.seconds())?;
        let delta = TimeDelta::microseconds(micros);
        let wall = time.add_wall(delta)?;
        let delayed = if wall.utc() < time.utc() {
            time.utc_add(delta)?
        } else {
            wall
        };
        delayed.in_python_range().then_some(delayed)
    }
}

#[cfg(any(
    feature = "interval",
    feature = "cron",
    feature = "calendar-interval",
    feature = "combining"
))]
/// Checks a maximum jitter given by a user.
pub(crate) fn validate(max_seconds: f64) -> Result<f64, crate::TriggerError> {
    if max_seconds.is_finite() && max_seconds >= 0.0 {
        Ok(max_seconds)
    } else {
        Err(crate::TriggerError::argument(
            "jitter",
            format!("{max_seconds} is not a finite, non-negative number of seconds"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_fraction_scales_the_maximum() {
        let jitter = Jitter::new(10.0, Some(Arc::new(FixedJitter::new(0.25)))).unwrap();
        assert_eq!(jitter.seconds(), 2.5);
        assert_eq!(FixedJitter::new(7.0).fraction(), 1.0);
        assert_eq!(FixedJitter::new(f64::NAN).fraction(), 0.0);
    }

    #[test]
    fn zero_jitter_is_no_jitter() {
        assert!(Jitter::new(0.0, None).is_none());
    }

    #[test]
    fn random_fractions_stay_in_range() {
        for _ in 0..1000 {
            let f = RandomJitter.fraction();
            assert!((0.0..=1.0).contains(&f), "{f}");
        }
    }

    #[test]
    fn rejects_negative_and_non_finite_maxima() {
        assert!(validate(-1.0).is_err());
        assert!(validate(f64::INFINITY).is_err());
        assert_eq!(validate(3.0), Ok(3.0));
    }
}

//! [`RunTimes`]: the run times of a [`JobRun`](super::JobRun).

use chrono::{DateTime, Utc};
use smallvec::SmallVec;

/// The run times of a [`JobRun`](super::JobRun), earliest first: a list that holds one time
/// without an allocation.
///
/// A run almost always has exactly one run time (a job that does not coalesce may catch up
/// several): a `Vec` cost an allocation and its release per run, about 300 of the 6,700
/// instructions a run cost the tokio executor with 100,000 jobs due at once. It reads as a
/// slice (`len`, `iter`, indexing, `for &t in &run.run_times`) and is made from a `Vec`, an
/// array or one time.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use scheduler_core::executor::RunTimes;
///
/// let t = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap();
/// let mut times = RunTimes::from(t);
/// times.push(t + chrono::TimeDelta::seconds(1));
/// assert_eq!(times.len(), 2);
/// assert_eq!(times[0], t);
/// ```
#[derive(Clone)]
pub struct RunTimes(SmallVec<[DateTime<Utc>; 1]>);

impl RunTimes {
    /// No run times.
    pub const fn new() -> Self {
        RunTimes(SmallVec::new_const())
    }

    /// The run times as a slice.
    pub fn as_slice(&self) -> &[DateTime<Utc>] {
        &self.0
    }

    /// Adds `t` at the end (the caller keeps them earliest first).
    pub fn push(&mut self, t: DateTime<Utc>) {
        self.0.push(t);
    }

    /// Removes every run time.
    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// The run times as a `Vec`.
    pub fn into_vec(self) -> Vec<DateTime<Utc>> {
        self.0.into_vec()
    }
}

impl Default for RunTimes {
    fn default() -> Self {
        Self::new()
    }
}

impl std::ops::Deref for RunTimes {
    type Target = [DateTime<Utc>];

    fn deref(&self) -> &[DateTime<Utc>] {
        self.as_slice()
    }
}

impl PartialEq for RunTimes {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for RunTimes {}

impl std::hash::Hash for RunTimes {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state);
    }
}

impl std::fmt::Debug for RunTimes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

impl From<DateTime<Utc>> for RunTimes {
    fn from(t: DateTime<Utc>) -> Self {
        RunTimes(SmallVec::from_buf([t]))
    }
}

impl From<Vec<DateTime<Utc>>> for RunTimes {
    fn from(times: Vec<DateTime<Utc>>) -> Self {
        match times.as_slice() {
            // Inline, whatever the `Vec`'s capacity.
            &[t] => t.into(),
            _ => RunTimes(SmallVec::from_vec(times)),
        }
    }
}

impl From<&[DateTime<Utc>]> for RunTimes {
    fn from(times: &[DateTime<Utc>]) -> Self {
        RunTimes(SmallVec::from_slice(times))
    }
}

impl<const N: usize> From<[DateTime<Utc>; N]> for RunTimes {
    fn from(times: [DateTime<Utc>; N]) -> Self {
        times.as_slice().into()
    }
}

impl From<RunTimes> for Vec<DateTime<Utc>> {
    fn from(times: RunTimes) -> Self {
        times.into_vec()
    }
}

impl FromIterator<DateTime<Utc>> for RunTimes {
    fn from_iter<I: IntoIterator<Item = DateTime<Utc>>>(iter: I) -> Self {
        RunTimes(iter.into_iter().collect())
    }
}

impl<'a> IntoIterator for &'a RunTimes {
    type Item = &'a DateTime<Utc>;
    type IntoIter = std::slice::Iter<'a, DateTime<Utc>>;

    fn into_iter(self) -> Self::IntoIter {
        self.as_slice().iter()
    }
}

impl PartialEq<[DateTime<Utc>]> for RunTimes {
    fn eq(&self, other: &[DateTime<Utc>]) -> bool {
        self.as_slice() == other
    }
}

impl PartialEq<Vec<DateTime<Utc>>> for RunTimes {
    fn eq(&self, other: &Vec<DateTime<Utc>>) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl<const N: usize> PartialEq<[DateTime<Utc>; N]> for RunTimes {
    fn eq(&self, other: &[DateTime<Utc>; N]) -> bool {
        self.as_slice() == other.as_slice()
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(s, 0).unwrap()
    }

    #[test]
    fn one_time_is_held_inline_and_more_spill_in_order() {
        let mut times = RunTimes::new();
        assert!(times.is_empty());
        times.push(t(1));
        assert!(!times.0.spilled());
        times.push(t(2));
        times.push(t(3));
        assert_eq!(times, [t(1), t(2), t(3)]);
        assert_eq!(times.clone().into_vec(), vec![t(1), t(2), t(3)]);
        times.clear();
        assert_eq!(times, RunTimes::new());
    }

    #[test]
    fn equal_whatever_it_was_made_from() {
        assert_eq!(RunTimes::from(vec![t(1)]), RunTimes::from(t(1)));
        assert_eq!(RunTimes::from([t(1), t(2)]), vec![t(1), t(2)]);
        assert_eq!(
            format!("{:?}", RunTimes::from(t(0))),
            format!("{:?}", [t(0)])
        );
        let collected: RunTimes = [t(1), t(2)].into_iter().collect();
        assert_eq!(collected.iter().copied().collect::<Vec<_>>(), [t(1), t(2)]);
    }
}

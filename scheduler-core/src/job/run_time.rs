//! A job's next run time, kept small.

use chrono::{DateTime, Utc};

/// A job's next run time in 8 bytes instead of 12 (which padding made 16 in `Job`): whole
/// microseconds since the epoch, [`RunTime::PAUSED`] for none. A million jobs in memory keep
/// a million of these. Every `DateTime<Utc>` fits (chrono reaches about 262,000 years either
/// side of the epoch, 64-bit microseconds 292,000), and the division floors, as
/// [`whole_micros`](super::whole_micros) does.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct RunTime(i64);

impl RunTime {
    /// No run time: below every instant chrono can represent.
    pub(super) const PAUSED: RunTime = RunTime(i64::MIN);

    pub(super) fn new(t: Option<DateTime<Utc>>) -> Self {
        t.map_or(RunTime::PAUSED, |t| RunTime(t.timestamp_micros()))
    }

    pub(super) fn micros(self) -> Option<i64> {
        (self != RunTime::PAUSED).then_some(self.0)
    }

    /// The run time as a `DateTime` (read several times per fire: through the clock's
    /// per-thread day).
    pub(super) fn get(self) -> Option<DateTime<Utc>> {
        self.micros().and_then(crate::clock::utc_from_micros)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Job, JobDefaults, JobSpec, JobTarget, whole_micros};
    use super::*;
    use crate::testkit::StepTrigger;

    fn job() -> Job {
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        JobSpec::new(
            JobTarget::closure("tick", || ()),
            StepTrigger {
                start: at,
                step_secs: 60,
            },
        )
        .into_job(&JobDefaults::default(), at)
        .unwrap()
    }

    /// A million jobs in the memory store keep a million of these side by side.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_job_takes_88_bytes() {
        assert_eq!(std::mem::size_of::<Job>(), 88);
        assert_eq!(std::mem::size_of::<Option<Job>>(), 88);
    }

    #[test]
    fn run_times_read_back_as_chrono_reads_them() {
        let day = 86_400_000_000;
        let mut micros = vec![
            i64::MIN + 1,
            i64::MAX,
            -1,
            0,
            1,
            day - 1,
            day,
            -day,
            -day - 1,
        ];
        let (min, max) = (
            DateTime::<Utc>::MIN_UTC.timestamp_micros(),
            DateTime::<Utc>::MAX_UTC.timestamp_micros(),
        );
        micros.extend([min - 1, min, min + 1, max - 1, max, max + 1]);
        // Runs of the same day and of days either side, read in turn (the kept day changes).
        micros.extend((-50..50).map(|i| 1_700_000_000_000_000 + i * 3_600_000_123));
        for m in micros {
            assert_eq!(
                RunTime(m).get(),
                DateTime::from_timestamp_micros(m),
                "{m} µs"
            );
        }
        assert_eq!(RunTime::PAUSED.get(), None);
    }

    #[test]
    fn run_times_keep_their_range_and_pauses_apart() {
        let mut job = job();
        for at in [
            DateTime::<Utc>::MIN_UTC,
            DateTime::<Utc>::MAX_UTC,
            DateTime::UNIX_EPOCH,
        ] {
            job.set_next_run_time(Some(at));
            assert_eq!(job.next_run_time(), Some(whole_micros(at)));
            assert!(!job.is_paused());
            assert_eq!(
                job.next_run_micros(),
                Some(whole_micros(at).timestamp_micros())
            );
        }
        job.set_next_run_time(None);
        assert_eq!((job.next_run_time(), job.next_run_micros()), (None, None));
        assert!(job.is_paused());
    }
}

//! Run-now requests stored with a job: how a process that is not the scheduler (the jobs
//! tool) asks whichever scheduler runs a shared store to run a job once now.

use chrono::{DateTime, Utc};

use super::{Job, whole_micros};

/// A request, stored with a job, to run it once now without changing its schedule (the
/// record's optional `run_requested_at` field).
///
/// The request makes the job due: the store's run time (the indexed column, the authority)
/// is set to `at`, and the record keeps the `planned` next run time. The scheduler that fires
/// the job runs it once (obeying `max_instances`, with the usual events) and puts the planned
/// run time back in the same conditional fire commit, so an interval job's phase does not
/// move and a paused job stays paused.
///
/// A request is pending only while the job's run time is `at` and the planned one is another
/// time: whatever moves the run time first (the fire that honours it, a pause, a resume, a
/// reschedule, or an older build firing the job as an ordinary due run) ends it, so it is
/// honoured at most once, by one scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunNowRequest {
    /// When the run was requested: the run time the request gives the job.
    pub at: DateTime<Utc>,
    /// The run time to restore once the request is honoured; `None` = paused.
    pub planned: Option<DateTime<Utc>>,
}

impl RunNowRequest {
    /// A request made at `at` for a job planned to run next at `planned` (times kept to
    /// whole microseconds, as every run time).
    pub fn new(at: DateTime<Utc>, planned: Option<DateTime<Utc>>) -> Self {
        RunNowRequest {
            at: whole_micros(at),
            planned: planned.map(whole_micros),
        }
    }

    /// Whether the request is pending on a job whose run time is `next_run_time`.
    pub fn is_pending(&self, next_run_time: Option<DateTime<Utc>>) -> bool {
        next_run_time == Some(self.at) && self.planned != Some(self.at)
    }
}

impl Job {
    /// The run-now request pending on this job, if any (see [`RunNowRequest`]).
    pub fn run_request(&self) -> Option<RunNowRequest> {
        self.run_request
            .as_deref()
            .copied()
            .filter(|r| r.is_pending(self.next_run_time()))
    }
}

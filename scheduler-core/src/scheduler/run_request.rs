//! How the loop honours a run-now request stored with a job ([`RunNowRequest`]): one run now,
//! and the planned schedule put back in the same conditional fire commit.

use chrono::{DateTime, Utc};

use crate::executor::RunTimes;
use crate::job::{Job, RunNowRequest};
use crate::store::FireOutcome;

/// The fire that honours `job`'s pending run-now request, if it has one: its only run is at
/// `now` (the request is explicit, so a scheduler that picks it up late runs it rather than
/// reporting it missed), and its commit restores the planned run time, or keeps a paused job
/// paused. The trigger is not asked, so an interval job's phase stays as it was.
pub(crate) fn requested_fire(job: &Job, now: DateTime<Utc>) -> Option<(FireOutcome, RunTimes)> {
    let RunNowRequest { at, planned, .. } = job.run_request()?;
    tracing::info!(
        job = job.id(),
        requested_at = %at,
        planned = ?planned,
        "running job on a stored run-now request"
    );
    let outcome = planned.map_or(FireOutcome::Pause, FireOutcome::Reschedule);
    Some((outcome, now.into()))
}

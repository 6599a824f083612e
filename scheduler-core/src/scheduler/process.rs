//! The main loop: APScheduler's `_process_jobs`, with a bounded catch-up and a
//! compare-and-set commit of each fire. ARCHITECTURE.md ("How a due job flows") walks through
//! one pass; the decisions live in pure functions here (`due_runs`), the loop only moves
//! data.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};

use super::{Scheduler, SchedulerState, read};
use crate::error::ErrorKind;
use crate::event::{Event, EventMask, JobExecutionEvent, SchedulerErrorEvent};
use crate::executor::{DynExecutor, JobRun};
use crate::job::Job;
use crate::store::{DynJobStore, FireCommit};

/// The fire times of one due job found in one pass.
#[derive(Debug, PartialEq)]
pub(super) struct DueRuns {
    /// The run times to submit now.
    pub(super) run_times: Vec<DateTime<Utc>>,
    /// Run times walked past without running: the walk hit the catch-up limit before
    /// reaching the present (reported as missed, only for jobs that do not coalesce).
    pub(super) skipped: Vec<DateTime<Utc>>,
    /// The job's next run time after these; `None` when its trigger is finished.
    pub(super) next: Option<DateTime<Utc>>,
}

/// Walks `job`'s fire times from its next run time up to `now`, at most `limit` of them.
///
/// When the walk reaches the present, the job runs: once for the latest fire time if it
/// coalesces, else once per fire time walked. When it stops at `limit` first, nothing runs in
/// this pass: the position is saved (the job stays due, so the next pass goes on from there)
/// and, for a job that does not coalesce, the walked fire times are reported as missed. So an
/// outage of any length costs at most `limit` fire times of memory and work per pass.
pub(super) fn due_runs(job: &Job, now: DateTime<Utc>, limit: usize) -> DueRuns {
    let mut walked = Vec::new();
    let mut last = None;
    let mut steps = 0;
    let mut next = job.next_run_time();
    while let Some(t) = next.filter(|t| *t <= now) {
        if job.coalesce() {
            last = Some(t);
        } else {
            walked.push(t);
        }
        steps += 1;
        next = job.trigger().next_fire_time(Some(t), now);
        if next.is_some_and(|n| n <= t) {
            // A trigger that does not move forward would make the job due forever.
            tracing::error!(
                job = job.id(),
                trigger = %job.trigger(),
                previous = %t,
                next = ?next,
                "trigger returned a fire time that is not after the previous one; removing the job"
            );
            next = None;
        }
        if steps >= limit {
            break;
        }
    }
    let reached_present = next.is_none_or(|n| n > now);
    match (reached_present, last) {
        (true, Some(last)) => DueRuns {
            run_times: vec![last],
            skipped: Vec::new(),
            next,
        },
        (true, None) => DueRuns {
            run_times: walked,
            skipped: Vec::new(),
            next,
        },
        (false, _) => DueRuns {
            run_times: Vec::new(),
            skipped: walked,
            next,
        },
    }
}

impl Scheduler {
    /// Runs passes until the scheduler stops (or fails; see
    /// `run_loop`, which supervises it).
    pub(super) async fn main_loop(self) {
        let lifecycle = self.lifecycle();
        let mut state = lifecycle.subscribe();
        loop {
            let current = *state.borrow_and_update();
            let wake_at = match current {
                SchedulerState::Stopped | SchedulerState::Failed => break,
                SchedulerState::Paused => None,
                SchedulerState::Running => {
                    lifecycle.pass_started(self.inner.clock.now());
                    let wake_at = self.process_jobs().await;
                    lifecycle.pass_finished(wake_at);
                    wake_at
                }
            };
            if !matches!(
                self.state(),
                SchedulerState::Running | SchedulerState::Paused
            ) {
                break;
            }
            match wake_at {
                Some(at) => {
                    tracing::debug!(%at, "next wakeup is due");
                    tokio::select! {
                        () = self.inner.wakeup.notified() => {}
                        () = self.inner.clock.sleep_until(at) => {}
                        _ = state.changed() => {}
                    }
                }
                None => {
                    tracing::debug!("no jobs; waiting until a job is added");
                    tokio::select! {
                        () = self.inner.wakeup.notified() => {}
                        _ = state.changed() => {}
                    }
                }
            }
        }
    }

    /// One pass over all stores; answers when to look again (`None`: when woken).
    pub(super) async fn process_jobs(&self) -> Option<DateTime<Utc>> {
        let now = self.inner.clock.now();
        let (retry_interval, limit) = {
            let settings = read(&self.inner.settings);
            (settings.jobstore_retry_interval, settings.catch_up_limit)
        };
        // The interval is checked where it is set; saturating here keeps a pass from ever
        // overflowing whatever the clock says.
        let retry_at = TimeDelta::from_std(retry_interval)
            .ok()
            .and_then(|delta| now.checked_add_signed(delta))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let executors: HashMap<Arc<str>, Arc<dyn DynExecutor>> =
            self.executor_snapshot().into_iter().collect();
        let mut wake_at: Option<DateTime<Utc>> = None;
        for (alias, store) in self.store_snapshot() {
            let store_wake = match self
                .process_store(&alias, &*store, &executors, now, limit)
                .await
            {
                Ok(next) => next,
                Err(e) => {
                    tracing::warn!(
                        jobstore = %alias,
                        error = %e,
                        retry_in = ?retry_interval,
                        "error processing the job store; will retry"
                    );
                    self.inner
                        .events
                        .publish(Event::SchedulerError(SchedulerErrorEvent {
                            jobstore: Some(alias.clone()),
                            error: Arc::new(e),
                        }));
                    Some(retry_at)
                }
            };
            wake_at = earliest(wake_at, store_wake);
        }
        wake_at
    }

    async fn process_store(
        &self,
        alias: &Arc<str>,
        store: &dyn DynJobStore,
        executors: &HashMap<Arc<str>, Arc<dyn DynExecutor>>,
        now: DateTime<Utc>,
        limit: usize,
    ) -> crate::Result<Option<DateTime<Utc>>> {
        let _jobs = self.inner.jobs_lock.lock().await;
        let due = store.get_due_jobs(now).await?;
        let mut commits = Vec::with_capacity(due.len());
        let mut runs = Vec::with_capacity(due.len());
        for job in due {
            let Some(due_at) = job.next_run_time() else {
                continue;
            };
            let Some(executor) = executors.get(job.executor()) else {
                tracing::error!(
                    job = job.id(),
                    executor = job.executor(),
                    "executor lookup failed for job; removing it from the job store"
                );
                match store.remove_job(job.id()).await {
                    Ok(()) => self.publish_removed(job.id_arc().clone(), alias.clone()),
                    Err(e) if e.kind() == ErrorKind::JobNotFound => {}
                    Err(e) => return Err(e),
                }
                continue;
            };
            let DueRuns {
                run_times,
                skipped,
                next,
            } = due_runs(&job, now, limit);
            // The committed job, advanced, is also what the executor gets: its run times
            // travel separately.
            let mut job = job;
            job.set_next_run_time(next);
            commits.push(FireCommit { job, due_at });
            runs.push((executor.clone(), run_times, skipped));
        }
        if !commits.is_empty() {
            let applied = store.commit_fires(&commits).await?;
            let fired = commits.into_iter().zip(runs).zip(applied);
            for ((FireCommit { job, .. }, (executor, run_times, skipped)), applied) in fired {
                if !applied {
                    tracing::debug!(
                        job = job.id(),
                        "job changed or was taken by another scheduler before it fired; skipping"
                    );
                    continue;
                }
                let next = job.next_run_time();
                let id = job.id_arc().clone();
                if !skipped.is_empty() {
                    tracing::warn!(
                        job = %id,
                        skipped = skipped.len(),
                        "more missed run times than the catch-up limit; reporting the oldest as missed"
                    );
                    self.publish_skipped(&id, alias, &skipped);
                }
                if !run_times.is_empty() {
                    let run = JobRun {
                        job,
                        jobstore: alias.clone(),
                        run_times,
                    };
                    match executor.submit(run) {
                        Ok(()) => {}
                        Err(e) if e.kind() == ErrorKind::MaxInstancesReached => {
                            tracing::warn!(job = %id, "{e}; runs skipped");
                        }
                        Err(e) => {
                            tracing::error!(job = %id, error = %e, "error submitting job to its executor");
                        }
                    }
                }
                if next.is_none() {
                    tracing::info!(job = %id, "removed job: its trigger has no more fire times");
                    self.publish_removed(id, alias.clone());
                }
            }
        }
        store.get_next_run_time().await
    }
}

impl Scheduler {
    fn publish_skipped(&self, job_id: &Arc<str>, jobstore: &Arc<str>, skipped: &[DateTime<Utc>]) {
        if !self.inner.events.wants(EventMask::JOB_MISSED) {
            return;
        }
        for &scheduled_run_time in skipped {
            self.inner
                .events
                .publish(Event::JobMissed(JobExecutionEvent {
                    job_id: job_id.clone(),
                    jobstore: jobstore.clone(),
                    scheduled_run_time,
                    retval: serde_json::Value::Null,
                    error: None,
                }));
        }
    }
}

fn earliest(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{JobDefaults, JobSpec, JobTarget};
    use crate::testkit::StepTrigger;
    use chrono::TimeDelta;

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_000_000 + secs, 0).unwrap()
    }

    fn job(coalesce: bool) -> Job {
        JobSpec::new(
            JobTarget::closure("j", || ()),
            StepTrigger {
                start: t(10),
                step_secs: 10,
            },
        )
        .coalesce(coalesce)
        .into_job(&JobDefaults::default(), t(0))
        .unwrap()
    }

    #[test]
    fn nothing_is_due_before_the_next_run_time() {
        let runs = due_runs(&job(true), t(9), 100);
        assert_eq!(
            runs,
            DueRuns {
                run_times: vec![],
                skipped: vec![],
                next: Some(t(10))
            }
        );
    }

    #[test]
    fn coalescing_keeps_the_last_and_not_coalescing_keeps_all() {
        let runs = due_runs(&job(true), t(45), 100);
        assert_eq!((runs.run_times, runs.next), (vec![t(40)], Some(t(50))));
        let runs = due_runs(&job(false), t(45), 100);
        assert_eq!(
            (runs.run_times, runs.next),
            (vec![t(10), t(20), t(30), t(40)], Some(t(50)))
        );
    }

    #[test]
    fn a_walk_that_hits_the_limit_saves_its_position_and_runs_nothing() {
        let runs = due_runs(&job(true), t(1000), 3);
        assert_eq!(
            runs,
            DueRuns {
                run_times: vec![],
                skipped: vec![],
                next: Some(t(40))
            }
        );
        let runs = due_runs(&job(false), t(1000), 3);
        assert_eq!(
            runs,
            DueRuns {
                run_times: vec![],
                skipped: vec![t(10), t(20), t(30)],
                next: Some(t(40))
            }
        );
        // Exactly at the limit, with the present reached, the job runs.
        let runs = due_runs(&job(false), t(35), 3);
        assert_eq!(runs.run_times, [t(10), t(20), t(30)]);
    }

    #[test]
    fn a_trigger_that_does_not_advance_finishes_the_job() {
        #[derive(Debug)]
        struct Stuck;
        impl std::fmt::Display for Stuck {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("stuck")
            }
        }
        impl crate::Trigger for Stuck {
            fn next_fire_time(
                &self,
                _: Option<DateTime<Utc>>,
                now: DateTime<Utc>,
            ) -> Option<DateTime<Utc>> {
                Some(now - TimeDelta::seconds(1))
            }
            fn to_state(&self) -> crate::Result<crate::TriggerState> {
                crate::TriggerState::new("stuck", &())
            }
        }
        let job = JobSpec::new(JobTarget::closure("j", || ()), Stuck)
            .into_job(&JobDefaults::default(), t(0))
            .unwrap();
        let runs = due_runs(&job, t(0), 100);
        assert_eq!((runs.run_times, runs.next), (vec![t(-1)], None));
    }
}

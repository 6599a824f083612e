//! The main loop: APScheduler's `_process_jobs`, with a bounded catch-up and a
//! compare-and-set commit of each fire.
//!
//! One pass, for each store in the order they were added:
//!
//! 1. ask the store for its due jobs (`get_due_jobs(now)`); a failing store is asked again
//!    after `jobstore_retry_interval`;
//! 2. for each due job, find its executor (a job whose executor does not exist is removed, as
//!    in APScheduler), enumerate its missed fire times up to `now` (at most `catch_up_limit`),
//!    keep only the last one when it coalesces, and compute the next run time from the last;
//! 3. commit all fires to the store at once (`commit_fires`): each job moves to its next run
//!    time, or is removed when its trigger is finished, but only if it is still at the run time
//!    it was read at, so a job modified meanwhile or taken by another scheduler is not run;
//! 4. submit the committed runs to their executors (which publish `JobSubmitted` or
//!    `JobMaxInstances`; runs refused for max instances are dropped, the job still advances);
//!
//! then sleep until the earliest next run time over all stores, or until woken by a change.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};

use super::{Scheduler, SchedulerState, read};
use crate::error::ErrorKind;
use crate::executor::{DynExecutor, JobRun};
use crate::job::Job;
use crate::store::{DynJobStore, FireCommit};

/// The fire times of one due job found in one pass.
#[derive(Debug, PartialEq)]
pub(super) struct DueRuns {
    /// The run times to submit now (empty while a coalescing catch-up is still walking).
    pub(super) run_times: Vec<DateTime<Utc>>,
    /// The job's next run time after these; `None` when its trigger is finished.
    pub(super) next: Option<DateTime<Utc>>,
}

/// Walks `job`'s fire times from its next run time up to `now`, at most `limit` of them.
pub(super) fn due_runs(job: &Job, now: DateTime<Utc>, limit: usize) -> DueRuns {
    let mut run_times = Vec::new();
    let mut last = None;
    let mut next = job.next_run_time();
    let mut walked = 0;
    while let Some(t) = next.filter(|t| *t <= now) {
        if job.coalesce() {
            last = Some(t);
        } else {
            run_times.push(t);
        }
        walked += 1;
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
        if walked >= limit {
            break;
        }
    }
    if let Some(last) = last {
        // A coalescing job runs once, for its latest missed time, when the walk has reached
        // the present; until then it only advances.
        if next.is_none_or(|n| n > now) {
            run_times.push(last);
        }
    }
    DueRuns { run_times, next }
}

impl Scheduler {
    pub(super) async fn main_loop(self) {
        let mut state = self.inner.state.subscribe();
        loop {
            let current = *state.borrow_and_update();
            let wake_at = match current {
                SchedulerState::Stopped => break,
                SchedulerState::Paused => None,
                SchedulerState::Running => self.process_jobs().await,
            };
            if self.state() == SchedulerState::Stopped {
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
        let retry_at = now + TimeDelta::from_std(retry_interval).unwrap_or(TimeDelta::seconds(10));
        let executors: HashMap<Arc<str>, Arc<dyn DynExecutor>> =
            read(&self.inner.executors).clone();
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
            let DueRuns { run_times, next } = due_runs(&job, now, limit);
            let mut advanced = job.clone();
            advanced.set_next_run_time(next);
            commits.push(FireCommit {
                job: advanced,
                due_at,
            });
            runs.push((job, executor.clone(), run_times, next));
        }
        if !commits.is_empty() {
            let applied = store.commit_fires(commits).await?;
            for ((job, executor, run_times, next), applied) in runs.into_iter().zip(applied) {
                if !applied {
                    tracing::debug!(
                        job = job.id(),
                        "job changed or was taken by another scheduler before it fired; skipping"
                    );
                    continue;
                }
                let id = job.id_arc().clone();
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

fn earliest(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

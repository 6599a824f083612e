//! The main loop: APScheduler's `_process_jobs`, with a bounded catch-up and a
//! compare-and-set commit of each fire. ARCHITECTURE.md ("How a due job flows") walks through
//! one pass; the decisions live in pure functions here (`due_runs`), the loop only moves
//! data.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};

use super::{Scheduler, SchedulerState, read};
use crate::error::{Error, ErrorKind};
use crate::event::{
    Event, EventMask, FaultAction, JobExecutionEvent, JobFaultEvent, MissedRuns,
    SchedulerErrorEvent,
};
use crate::executor::{DynExecutor, JobRun, RefusedRun, RunTimes};
use crate::job::{Job, trigger_failed};
use crate::store::{DynJobStore, FireCommit, FireOutcome};
use crate::trigger::CatchUp;

mod backlog;
mod commit;

use backlog::Backlog;

/// The executors of one pass by alias, looked up once per due job (SipHash showed in the
/// dispatch profile).
type Executors = HashMap<Arc<str>, Arc<dyn DynExecutor>, foldhash::fast::RandomState>;

/// What to do with one due job in this pass.
#[derive(Debug, PartialEq)]
pub(super) struct DueRuns {
    /// The run times to submit now, earliest first.
    pub(super) run_times: RunTimes,
    /// Run times already past the misfire grace time, too many to report one by one: reported
    /// as one `JobMissed` (only for jobs that do not coalesce).
    pub(super) missed: Option<MissedRuns>,
    /// The job's next run time: `None` when its trigger is finished; still at or before `now`
    /// when its catch-up goes on in the next pass.
    pub(super) next: Option<DateTime<Utc>>,
}

/// A due job whose trigger failed: it gives up, or answers a time that is not after the
/// previous one.
#[derive(Debug)]
pub(super) struct Fault {
    /// What failed, of kind [`TriggerFailed`](ErrorKind::TriggerFailed).
    pub(super) error: Error,
    /// The fire times known to be due before the trigger failed (at least the one the job
    /// was due at): they still run once the job is set aside.
    pub(super) run_times: RunTimes,
}

/// Decides what `job`, due at its next run time, runs at `now`. Fails with a [`Fault`] when
/// its trigger fails: the caller then pauses the job, keeps it, and runs what was due.
///
/// The trigger skips over missed fire times itself ([`Trigger::catch_up`](crate::Trigger::catch_up),
/// arithmetic for the built-in triggers), so a job that has been due for years costs one
/// call, not one per missed fire time. What runs is APScheduler's choice:
///
/// - a job that coalesces runs once, for its last fire time at or before `now`;
/// - a job that does not runs each fire time, at most `limit` per pass (the rest in the next
///   passes). Fire times already past its misfire grace time would each be reported missed
///   by the executor; when there are more than `limit` of them they are skipped here instead
///   and reported as one `JobMissed` with their count, first and last time.
///
/// A trigger that cannot skip arithmetically is walked at most `limit` (or `limit + 1`) fire
/// times per pass, saving the position, so no job's catch-up holds up the others.
pub(super) fn due_runs(job: &Job, now: DateTime<Utc>, limit: usize) -> Result<DueRuns, Fault> {
    let limit = limit.max(1);
    let Some(first) = job.next_run_time().filter(|t| *t <= now) else {
        return Ok(DueRuns {
            run_times: RunTimes::new(),
            missed: None,
            next: job.next_run_time(),
        });
    };
    let fault = |error, run_times| Fault { error, run_times };
    if job.coalesce() {
        let caught = catch_up(job, first, now, limit as u64).map_err(|e| fault(e, first.into()))?;
        let run_times = match caught.next {
            // Stopped early: no run yet, the next pass goes on from `next`.
            Some(next) if next <= now => RunTimes::new(),
            _ => caught.last.into(),
        };
        return Ok(DueRuns {
            run_times,
            missed: None,
            next: caught.next,
        });
    }
    let mut missed = None;
    let mut position = Some(first);
    // Runs scheduled before `now - grace` are missed whenever they are submitted.
    let too_late = job.misfire_grace_time().and_then(|grace| {
        let grace = TimeDelta::from_std(grace).ok()?;
        now.checked_sub_signed(grace + TimeDelta::nanoseconds(1))
    });
    if let Some(too_late) = too_late.filter(|t| first <= *t) {
        let caught =
            catch_up(job, first, too_late, limit as u64 + 1).map_err(|e| fault(e, first.into()))?;
        if caught.count > limit as u64 {
            missed = Some(MissedRuns {
                count: caught.count,
                first,
                last: caught.last,
            });
            if caught.next.is_some_and(|next| next <= too_late) {
                // More to skip: the next pass goes on from there.
                return Ok(DueRuns {
                    run_times: RunTimes::new(),
                    missed,
                    next: caught.next,
                });
            }
            position = caught.next;
        }
    }
    let mut run_times = RunTimes::new();
    let mut next = position;
    while let Some(t) = next.filter(|t| *t <= now) {
        if run_times.len() >= limit {
            break;
        }
        run_times.push(t);
        next = match next_after(job, t, now) {
            Ok(next) => next,
            Err(error) => return Err(fault(error, run_times)),
        };
    }
    Ok(DueRuns {
        run_times,
        missed,
        next,
    })
}

/// The trigger's next fire time after `previous`, checked to move forward.
fn next_after(
    job: &Job,
    previous: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, Error> {
    let trigger = &**job.trigger();
    let next = trigger
        .next_fire_time(Some(previous), now)
        .map_err(|e| trigger_failed(trigger, "the fire time after a run", e))?;
    match next {
        Some(next) if next <= previous => Err(not_forward(job, previous, next)),
        next => Ok(next),
    }
}

/// The trigger's catch-up from `first` to `until`, checked to be consistent.
fn catch_up(
    job: &Job,
    first: DateTime<Utc>,
    until: DateTime<Utc>,
    max_steps: u64,
) -> Result<CatchUp, Error> {
    let trigger = &**job.trigger();
    let caught = trigger
        .catch_up(first, until, max_steps)
        .map_err(|e| trigger_failed(trigger, "its missed fire times", e))?;
    let consistent = caught.count >= 1
        && caught.last >= first
        && caught.last <= until
        && (caught.count == 1) == (caught.last == first);
    if !consistent {
        return Err(Error::new(
            ErrorKind::TriggerFailed,
            format!(
                "trigger {trigger} answered an impossible catch-up from {first} to {until}: \
                 {} fire time(s), the last at {}",
                caught.count, caught.last
            ),
        ));
    }
    match caught.next {
        Some(next) if next <= caught.last => Err(not_forward(job, caught.last, next)),
        _ => Ok(caught),
    }
}

fn not_forward(job: &Job, previous: DateTime<Utc>, next: DateTime<Utc>) -> Error {
    Error::new(
        ErrorKind::TriggerFailed,
        format!(
            "trigger {} answered {next} as the fire time after {previous}: a trigger must move \
             forward",
            job.trigger()
        ),
    )
}

impl Scheduler {
    /// Runs passes until the scheduler stops (or fails; see
    /// `run_loop`, which supervises it).
    pub(super) async fn main_loop(self) {
        let lifecycle = self.lifecycle();
        let mut state = lifecycle.subscribe();
        let mut job_count = JobCount::default();
        // The stores whose last pass took a full batch (see `process_store`).
        let mut backlog = Backlog::default();
        loop {
            let current = *state.borrow_and_update();
            let wake_at = match current {
                SchedulerState::Stopped | SchedulerState::Failed => break,
                SchedulerState::Paused => None,
                SchedulerState::Running => {
                    let now = self.inner.clock.now();
                    lifecycle.pass_started(now);
                    metrics::gauge!(crate::telemetry::LAST_PASS)
                        .set(now.timestamp_micros() as f64 / 1e6);
                    // Look again within the maximum wait whatever the stores answered: a
                    // store shared with other processes changes without telling us.
                    let max_wait = read(&self.inner.settings).max_wait;
                    let latest = TimeDelta::from_std(max_wait)
                        .ok()
                        .and_then(|wait| now.checked_add_signed(wait))
                        .unwrap_or(DateTime::<Utc>::MAX_UTC);
                    let wake_at = earliest(self.process_jobs(&mut backlog).await, Some(latest));
                    // After the pass, not beside it: a count competes with the pass for the
                    // store (at a start it delayed the first runs: 500 jobs take 14 ms of
                    // nx-27017's single thread, and on PostgreSQL the count took the idle
                    // connection from the first claim, which then opened one of its own).
                    self.count_jobs_if_due(&mut job_count, now);
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
                    tracing::debug!("paused; waiting until resumed");
                    tokio::select! {
                        () = self.inner.wakeup.notified() => {}
                        _ = state.changed() => {}
                    }
                }
            }
        }
    }

    /// Counts each store's jobs for the `scheduler_jobs` gauge, beside the loop (a count of a
    /// large persistent store must not delay due jobs), when the interval has passed since
    /// the last count and that count has finished.
    fn count_jobs_if_due(&self, count: &mut JobCount, now: DateTime<Utc>) {
        let Some(interval) = read(&self.inner.settings).metrics_job_count_interval else {
            return;
        };
        let interval = TimeDelta::from_std(interval).unwrap_or(TimeDelta::MAX);
        if count.last.is_some_and(|last| now < last + interval)
            || count
                .running
                .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            return;
        }
        count.last = Some(now);
        let stores = self.store_snapshot();
        let running = count.running.clone();
        tokio::spawn(async move {
            for (alias, store) in stores {
                match store.count_jobs().await {
                    Ok(n) => {
                        metrics::gauge!(crate::telemetry::JOBS, "jobstore" => alias).set(n as f64)
                    }
                    // The loop reports a failing store; the gauge keeps its last value.
                    Err(e) => tracing::debug!(jobstore = %alias, error = %e, "cannot count jobs"),
                }
            }
            running.store(false, std::sync::atomic::Ordering::Release);
        });
    }

    /// One pass over all stores; answers when to look again (`None`: when woken).
    /// `backlog` holds the stores whose last pass took a full batch; it is kept up to date.
    async fn process_jobs(&self, backlog: &mut Backlog) -> Option<DateTime<Utc>> {
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
        let executors: Executors = self.executor_snapshot().into_iter().collect();
        let mut wake_at: Option<DateTime<Utc>> = None;
        for (alias, store) in self.store_snapshot() {
            let store_wake = match self
                .process_store(&alias, &*store, &executors, now, limit, backlog)
                .await
            {
                Ok(next) => next,
                Err(e) => {
                    backlog.forget(&alias);
                    crate::logging::log_warn!(
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
        executors: &Executors,
        now: DateTime<Utc>,
        limit: usize,
        backlog: &mut Backlog,
    ) -> crate::Result<Option<DateTime<Utc>>> {
        let batch = read(&self.inner.settings).due_batch_size;
        // A few jobs first, then whole batches, smaller ones on a slow store (see `backlog`).
        let asked = backlog.asked(alias, batch);
        // Runs of jobs that recover lost runs or count their instances across nodes are
        // recorded in flight with their fire commit.
        let shared = store.capabilities().cluster;
        let started = tokio::time::Instant::now();
        let due = store.get_due_jobs(now, asked).await?;
        let got = due.len();
        let mut commits = Vec::with_capacity(due.len());
        let mut fires = Vec::with_capacity(due.len());
        for job in due {
            let Some(due_at) = job.next_run_time() else {
                continue;
            };
            let Some(executor) = executors.get(job.executor()) else {
                self.skip_without_executor(store, alias, &job);
                continue;
            };
            // A stored run-now request replaces the trigger's fire (see `run_request`).
            let (outcome, fire) = match super::run_request::requested_fire(&job, now) {
                Some((outcome, run_times)) => (
                    outcome,
                    Fire {
                        run_times,
                        missed: None,
                        fault: None,
                    },
                ),
                None => match due_runs(&job, now, limit) {
                    Ok(due) => (
                        FireOutcome::from_next(due.next),
                        Fire {
                            run_times: due.run_times,
                            missed: due.missed,
                            fault: None,
                        },
                    ),
                    // Pausing the job is this fire's commit: the runs that were due still run,
                    // and the job waits for an operator.
                    Err(Fault { error, run_times }) => (
                        FireOutcome::Pause,
                        Fire {
                            run_times,
                            missed: None,
                            fault: Some(error.with_job_id(job.id())),
                        },
                    ),
                },
            };
            let mut commit = FireCommit::new(job.id_arc().clone(), due_at, job.revision(), outcome);
            if shared && records_runs_in_flight(&job) {
                commit = commit.with_recover_runs(fire.run_times.to_vec());
                if job.max_instances_across_nodes() {
                    commit = commit.with_instance_limit(job.max_instances());
                }
            }
            commits.push(commit);
            // The job as committed is also what the executor gets: its run times travel
            // separately.
            let mut job = job;
            job.set_next_run_time(outcome.next_run_time());
            fires.push((job, executor, outcome, fire));
        }
        self.commit_batch(alias, store, shared, &commits, fires)
            .await?;
        backlog.record(alias, asked, got, started.elapsed(), batch);
        if got >= asked {
            // More may be due than one batch holds: look again at once.
            return Ok(Some(now));
        }
        store.get_next_run_time().await
    }

    /// Acts on a fire the store committed: reports what was set aside or skipped, and
    /// answers the run to hand to the executor (none when nothing runs). The caller submits
    /// it, then reports a job its fire finished as removed ([`FireOutcome::Remove`]).
    fn fired(&self, alias: &Arc<str>, job: Job, fire: Fire) -> Option<JobRun> {
        let id = job.id_arc();
        if let Some(error) = fire.fault {
            crate::logging::log_error!(
                job = %id,
                jobstore = %alias,
                error = %error,
                "the job's trigger failed; the job is paused and kept"
            );
            self.inner.events.publish(Event::JobFault(JobFaultEvent {
                job_id: id.clone(),
                jobstore: alias.clone(),
                action: FaultAction::Paused,
                error: Arc::new(error),
            }));
        }
        if let Some(missed) = fire.missed {
            crate::logging::log_warn!(
                job = %id,
                missed = missed.count,
                first = %missed.first,
                last = %missed.last,
                "more run times past their misfire grace time than the catch-up limit; \
                 skipped and reported at once"
            );
            let executor_alias: Arc<str> = job.executor().into();
            let job_label = read(&self.inner.settings).metrics_job_labels.then_some(id);
            let labels = crate::telemetry::run_labels(alias, &executor_alias, job_label);
            metrics::counter!(crate::telemetry::RUNS_MISSED, labels).increment(missed.count);
            self.publish_missed(id, alias, missed);
        }
        (!fire.run_times.is_empty()).then(|| JobRun {
            job,
            jobstore: alias.clone(),
            run_times: fire.run_times,
        })
    }

    /// A due job whose executor does not exist in this scheduler: set aside, kept, and
    /// reported (APScheduler removes it, which on a shared store would delete it for every
    /// scheduler because of one misconfigured one). It stays out of the due batches and the
    /// wake-up time until it changes or an executor is added, so the loop does not spin on it.
    fn skip_without_executor(&self, store: &dyn DynJobStore, alias: &Arc<str>, job: &Job) {
        store.skip_until_changed(job.id(), job.revision());
        let error = Error::config(format!(
            "job {:?} names executor {:?}, which this scheduler does not have; add it with \
             add_executor",
            job.id(),
            job.executor()
        ))
        .with_job_id(job.id());
        crate::logging::log_error!(
            job = job.id(),
            jobstore = %alias,
            executor = job.executor(),
            "the job's executor does not exist here; the job is skipped and kept"
        );
        self.inner.events.publish(Event::JobFault(JobFaultEvent {
            job_id: job.id_arc().clone(),
            jobstore: alias.clone(),
            action: FaultAction::Skipped,
            error: Arc::new(error),
        }));
    }

    /// The store committed a batch but gave no answer for `job`: whether its fire was
    /// committed is unknown, so it does not run (at most once), the store's fault is
    /// reported, and the job is set aside at the revision read (if the fire was committed, the
    /// job has moved on and the setting aside is moot), so the loop does not spin on it.
    fn unanswered(&self, store: &dyn DynJobStore, alias: &Arc<str>, job: &Job) {
        store.skip_until_changed(job.id(), job.revision());
        let error = Error::new(
            ErrorKind::Backend,
            format!(
                "job store {alias:?} gave no answer to the fire commit of job {:?}; the fire is \
                 not run (a bug in the store)",
                job.id()
            ),
        )
        .with_job_id(job.id());
        crate::logging::log_error!(jobstore = %alias, job = job.id(), "{error}");
        self.inner
            .events
            .publish(Event::SchedulerError(SchedulerErrorEvent {
                jobstore: Some(alias.clone()),
                error: Arc::new(error),
            }));
    }
}

/// When the loop last counted the stores' jobs, and whether that count still runs.
#[derive(Default)]
struct JobCount {
    last: Option<DateTime<Utc>>,
    running: Arc<std::sync::atomic::AtomicBool>,
}

/// What one fire does once committed.
struct Fire {
    run_times: RunTimes,
    missed: Option<MissedRuns>,
    /// The trigger's failure, for a job paused by this fire.
    fault: Option<Error>,
}

impl Scheduler {
    /// Hands `run_times` of `job` to its executor (nothing when there are none).
    pub(super) fn submit(
        &self,
        executor: &dyn DynExecutor,
        alias: &Arc<str>,
        job: Job,
        run_times: RunTimes,
    ) {
        if run_times.is_empty() {
            return;
        }
        let run = JobRun {
            job,
            jobstore: alias.clone(),
            run_times,
        };
        self.submit_runs(executor, vec![run]);
    }

    /// Hands `runs` to `executor` in one batch and reports the ones it refuses.
    pub(super) fn submit_runs(&self, executor: &dyn DynExecutor, runs: Vec<JobRun>) {
        for RefusedRun { run, error } in executor.submit_batch(runs) {
            // Logged and published by the executor's `admit`.
            if error.kind() != ErrorKind::MaxInstancesReached {
                // The fire is committed: runs the executor refuses are failures to report,
                // not only to log.
                crate::executor::publish_refused(&self.inner.events, &run, &error);
            }
            self.runs_refused(&run);
        }
    }

    fn publish_missed(&self, job_id: &Arc<str>, jobstore: &Arc<str>, missed: MissedRuns) {
        if !self.inner.events.wants(EventMask::JOB_MISSED) {
            return;
        }
        self.inner
            .events
            .publish(Event::JobMissed(JobExecutionEvent {
                job_id: job_id.clone(),
                jobstore: jobstore.clone(),
                scheduled_run_time: missed.first,
                retval: serde_json::Value::Null,
                error: None,
                missed_runs: Some(missed),
            }));
    }
}

/// Whether `job`'s fires on a shared store record their runs in flight: to run them again if
/// their node dies, or to count the job's instances across the nodes.
pub(super) fn records_runs_in_flight(job: &Job) -> bool {
    job.recover_lost_runs() || job.max_instances_across_nodes()
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
    use crate::trigger::{SearchExhausted, Trigger, TriggerState};
    use std::time::Duration;

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_000_000 + secs, 0).unwrap()
    }

    fn spec(trigger: impl Trigger) -> JobSpec {
        JobSpec::new(JobTarget::closure("j", || ()), trigger)
    }

    fn build(spec: JobSpec) -> Job {
        spec.into_job(&JobDefaults::default(), t(0)).unwrap()
    }

    /// Every 10 s from t(10), walked one fire time at a time (no arithmetic catch-up).
    fn job(coalesce: bool) -> Job {
        build(
            spec(StepTrigger {
                start: t(10),
                step_secs: 10,
            })
            .coalesce(coalesce),
        )
    }

    #[test]
    fn nothing_is_due_before_the_next_run_time() {
        let runs = due_runs(&job(true), t(9), 100).unwrap();
        assert_eq!(
            runs,
            DueRuns {
                run_times: RunTimes::new(),
                missed: None,
                next: Some(t(10))
            }
        );
    }

    #[test]
    fn coalescing_keeps_the_last_and_not_coalescing_keeps_all() {
        let runs = due_runs(&job(true), t(45), 100).unwrap();
        assert_eq!(
            (runs.run_times.into_vec(), runs.next),
            (vec![t(40)], Some(t(50)))
        );
        let runs = due_runs(&job(false), t(45), 100).unwrap();
        assert_eq!(
            (runs.run_times.into_vec(), runs.next),
            (vec![t(10), t(20), t(30), t(40)], Some(t(50)))
        );
    }

    #[test]
    fn a_walk_that_hits_the_limit_saves_its_position() {
        // Coalescing: nothing runs until the present is reached.
        let runs = due_runs(&job(true), t(1000), 3).unwrap();
        assert_eq!(
            runs,
            DueRuns {
                run_times: RunTimes::new(),
                missed: None,
                next: Some(t(40))
            }
        );
        // Not coalescing, with runs past their grace time beyond the limit: one summary.
        let runs = due_runs(&job(false), t(1000), 3).unwrap();
        assert_eq!(
            runs,
            DueRuns {
                run_times: RunTimes::new(),
                missed: Some(MissedRuns {
                    count: 4,
                    first: t(10),
                    last: t(40)
                }),
                next: Some(t(50))
            }
        );
        // Exactly at the limit, with the present reached, the job runs.
        let runs = due_runs(&job(false), t(35), 3).unwrap();
        assert_eq!(runs.run_times, [t(10), t(20), t(30)]);
        assert_eq!(runs.missed, None);
    }

    #[test]
    fn runs_within_the_grace_time_still_run_after_a_summary() {
        let job = build(
            spec(StepTrigger {
                start: t(10),
                step_secs: 10,
            })
            .coalesce(false)
            .misfire_grace_time(Some(Duration::from_secs(25))),
        );
        // At t(105): 10..=70 are past the grace time (7 of them), 80..=100 are not.
        let runs = due_runs(&job, t(105), 6).unwrap();
        assert_eq!(
            runs.missed,
            Some(MissedRuns {
                count: 7,
                first: t(10),
                last: t(70)
            })
        );
        assert_eq!(runs.run_times, [t(80), t(90), t(100)]);
        assert_eq!(runs.next, Some(t(110)));
        // Few enough to report one by one: they are submitted, as APScheduler does, and the
        // executor reports each as missed.
        let runs = due_runs(&job, t(105), 100).unwrap();
        assert_eq!((runs.run_times.len(), runs.missed), (10, None));
    }

    #[test]
    fn without_a_grace_time_every_run_runs_a_limited_number_per_pass() {
        let job = build(
            spec(StepTrigger {
                start: t(10),
                step_secs: 10,
            })
            .coalesce(false)
            .misfire_grace_time(None),
        );
        let runs = due_runs(&job, t(1000), 3).unwrap();
        assert_eq!(
            runs,
            DueRuns {
                run_times: vec![t(10), t(20), t(30)].into(),
                missed: None,
                next: Some(t(40))
            }
        );
    }

    /// How a scripted trigger answers `(previous, now)`.
    type Answer =
        fn(Option<DateTime<Utc>>, DateTime<Utc>) -> Result<Option<DateTime<Utc>>, SearchExhausted>;

    /// Answers `answer(previous, now)`, and a catch-up of its choice.
    #[derive(Debug)]
    struct Scripted {
        answer: Answer,
        catch_up: Option<CatchUp>,
    }

    impl std::fmt::Display for Scripted {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("scripted")
        }
    }

    impl Trigger for Scripted {
        fn next_fire_time(
            &self,
            previous: Option<DateTime<Utc>>,
            now: DateTime<Utc>,
        ) -> Result<Option<DateTime<Utc>>, SearchExhausted> {
            (self.answer)(previous, now)
        }
        fn to_state(&self) -> crate::Result<TriggerState> {
            TriggerState::new("scripted", &())
        }
        fn catch_up(
            &self,
            first: DateTime<Utc>,
            until: DateTime<Utc>,
            max_steps: u64,
        ) -> Result<CatchUp, SearchExhausted> {
            match self.catch_up {
                Some(answer) => Ok(answer),
                None => {
                    // What the provided implementation does.
                    let mut last = first;
                    let mut count = 1;
                    loop {
                        let next = self.next_fire_time(Some(last), until)?;
                        match next {
                            Some(n) if n <= until && n > last && count < max_steps => {
                                count += 1;
                                last = n;
                            }
                            _ => return Ok(CatchUp { count, last, next }),
                        }
                    }
                }
            }
        }
    }

    fn scripted(answer: Answer) -> Scripted {
        Scripted {
            answer,
            catch_up: None,
        }
    }

    #[test]
    fn a_trigger_that_does_not_move_forward_fails_the_job_instead_of_finishing_it() {
        let stuck =
            |previous: Option<DateTime<Utc>>, now: DateTime<Utc>| Ok(Some(previous.unwrap_or(now)));
        for coalesce in [true, false] {
            let job = build(spec(scripted(stuck)).coalesce(coalesce));
            let Fault { error, run_times } = due_runs(&job, t(0), 100).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::TriggerFailed, "{error}");
            assert!(error.to_string().contains("must move forward"), "{error}");
            assert_eq!(run_times, [t(0)], "the run that was due still runs");
        }
    }

    #[test]
    fn a_trigger_that_gives_up_fails_the_job() {
        let gives_up = |previous: Option<DateTime<Utc>>, now: DateTime<Utc>| match previous {
            None => Ok(Some(now)),
            Some(_) => Err(SearchExhausted::new("out of steps")),
        };
        let job = build(spec(scripted(gives_up)).coalesce(false));
        let Fault { error, run_times } = due_runs(&job, t(0), 100).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::TriggerFailed);
        assert!(error.to_string().contains("out of steps"), "{error}");
        assert_eq!(run_times, [t(0)]);
    }

    #[test]
    fn an_impossible_catch_up_fails_the_job() {
        let every_second = |previous: Option<DateTime<Utc>>, now: DateTime<Utc>| {
            Ok(Some(previous.map_or(now, |p| p + TimeDelta::seconds(1))))
        };
        for catch_up in [
            // Past `until`.
            CatchUp {
                count: 2,
                last: t(50),
                next: Some(t(51)),
            },
            // Backwards.
            CatchUp {
                count: 2,
                last: t(-5),
                next: Some(t(51)),
            },
            // A next time that does not move forward.
            CatchUp {
                count: 3,
                last: t(5),
                next: Some(t(5)),
            },
            // No fire time at all.
            CatchUp {
                count: 0,
                last: t(0),
                next: Some(t(1)),
            },
        ] {
            let job = build(spec(Scripted {
                answer: every_second,
                catch_up: Some(catch_up),
            }));
            let fault = due_runs(&job, t(10), 100).unwrap_err();
            assert_eq!(fault.error.kind(), ErrorKind::TriggerFailed, "{catch_up:?}");
        }
    }

    #[test]
    fn the_catch_up_answer_decides_without_enumerating() {
        // A trigger that would take a billion steps to walk, but skips arithmetically.
        let job = build(spec(Scripted {
            answer: |previous, now| Ok(Some(previous.map_or(now, |p| p + TimeDelta::seconds(1)))),
            catch_up: Some(CatchUp {
                count: 1_000_000_000,
                last: t(9),
                next: Some(t(11)),
            }),
        }));
        let runs = due_runs(&job, t(10), 100).unwrap();
        assert_eq!(
            (runs.run_times.into_vec(), runs.next),
            (vec![t(9)], Some(t(11)))
        );
    }
}

//! What the scheduler records through the [`metrics`] facade: the names, their labels and
//! descriptions. The program installs a recorder (an exporter) of its choice; without one,
//! recording costs a few atomic loads. README "Metrics" lists them for operators.

use std::sync::Arc;

use metrics::{Key, Label, Metadata, Unit};

/// Runs handed to an executor (one per run time).
pub(crate) const RUNS_SUBMITTED: &str = "scheduler_runs_submitted_total";
/// Runs that returned normally.
pub(crate) const RUNS_EXECUTED: &str = "scheduler_runs_executed_total";
/// Runs reported as failed: an error, a panic, a timeout, or refused after their fire was
/// committed.
pub(crate) const RUNS_FAILED: &str = "scheduler_runs_failed_total";
/// Runs skipped because they would have started past their misfire grace time.
pub(crate) const RUNS_MISSED: &str = "scheduler_runs_missed_total";
/// Runs refused because their job already ran `max_instances` times.
pub(crate) const RUNS_REFUSED: &str = "scheduler_runs_refused_total";
/// Runs stopped because they outlived their job's timeout.
pub(crate) const RUNS_TIMED_OUT: &str = "scheduler_runs_timed_out_total";
/// Seconds from a run's scheduled time to its start.
pub(crate) const START_LATENESS: &str = "scheduler_run_start_lateness_seconds";
/// Seconds a run took.
pub(crate) const RUN_DURATION: &str = "scheduler_run_duration_seconds";
/// Jobs in each store, counted every `metrics_job_count_interval`.
pub(crate) const JOBS: &str = "scheduler_jobs";
/// Runs submitted and not finished (queued or running), per store and executor.
pub(crate) const RUNNING: &str = "scheduler_running_instances";
/// When the loop last began a pass over the stores (Unix seconds): a liveness signal.
pub(crate) const LAST_PASS: &str = "scheduler_loop_last_pass_timestamp_seconds";

/// The labels of a run's figures: its store and executor, and its job's id when the program
/// opted in ([`SchedulerBuilder::metrics_job_labels`](crate::SchedulerBuilder::metrics_job_labels)).
pub(crate) fn run_labels(
    jobstore: &Arc<str>,
    executor: &Arc<str>,
    job: Option<&Arc<str>>,
) -> Vec<Label> {
    let mut labels = vec![
        Label::new("jobstore", jobstore.clone()),
        Label::new("executor", executor.clone()),
    ];
    if let Some(job) = job {
        labels.push(Label::new("job", job.clone()));
    }
    labels
}

/// What the run figures are recorded as (the `counter!`-style macros' metadata).
static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

/// The keys of the run figures for one label set, built once: building a key (its labels
/// and hash) cost more than the rest of a run's bookkeeping together, for every figure of
/// every run. The recorder is still asked on every record, so one installed later is used.
#[derive(Debug)]
pub(crate) struct RunKeys {
    pub(crate) submitted: Key,
    pub(crate) refused: Key,
    pub(crate) running: Key,
    pub(crate) missed: Key,
    pub(crate) lateness: Key,
    pub(crate) duration: Key,
    pub(crate) executed: Key,
    pub(crate) failed: Key,
    pub(crate) timed_out: Key,
}

impl RunKeys {
    pub(crate) fn new(labels: Vec<Label>) -> Self {
        let key = |name: &'static str| Key::from_parts(name, labels.clone());
        RunKeys {
            submitted: key(RUNS_SUBMITTED),
            refused: key(RUNS_REFUSED),
            running: key(RUNNING),
            missed: key(RUNS_MISSED),
            lateness: key(START_LATENESS),
            duration: key(RUN_DURATION),
            executed: key(RUNS_EXECUTED),
            failed: key(RUNS_FAILED),
            timed_out: key(RUNS_TIMED_OUT),
        }
    }
}

/// The counter `key` names in the recorder installed now.
pub(crate) fn counter(key: &Key) -> metrics::Counter {
    metrics::with_recorder(|recorder| recorder.register_counter(key, &METADATA))
}

/// The gauge `key` names in the recorder installed now.
pub(crate) fn gauge(key: &Key) -> metrics::Gauge {
    metrics::with_recorder(|recorder| recorder.register_gauge(key, &METADATA))
}

/// The histogram `key` names in the recorder installed now.
pub(crate) fn histogram(key: &Key) -> metrics::Histogram {
    metrics::with_recorder(|recorder| recorder.register_histogram(key, &METADATA))
}

/// Describes every metric to the recorder installed now (called at every start, so a
/// recorder installed before it gets the descriptions).
pub(crate) fn describe() {
    {
        use metrics::{describe_counter, describe_gauge, describe_histogram};
        describe_counter!(RUNS_SUBMITTED, "Runs handed to an executor.");
        describe_counter!(RUNS_EXECUTED, "Runs that finished without an error.");
        describe_counter!(
            RUNS_FAILED,
            "Runs that failed: an error, a panic, a timeout, or refused by their executor."
        );
        describe_counter!(
            RUNS_MISSED,
            "Runs skipped because they would have started past their misfire grace time."
        );
        describe_counter!(
            RUNS_REFUSED,
            "Runs refused because their job already ran max_instances times."
        );
        describe_counter!(RUNS_TIMED_OUT, "Runs stopped at their job's timeout.");
        describe_histogram!(
            START_LATENESS,
            Unit::Seconds,
            "Seconds from a run's scheduled time to its start."
        );
        describe_histogram!(RUN_DURATION, Unit::Seconds, "Seconds a run took.");
        describe_gauge!(JOBS, "Jobs in each job store, paused ones included.");
        describe_gauge!(
            RUNNING,
            "Runs submitted and not finished (queued or running)."
        );
        describe_gauge!(
            LAST_PASS,
            Unit::Seconds,
            "When the scheduler's loop last began a pass over its stores (Unix time)."
        );
    }
}

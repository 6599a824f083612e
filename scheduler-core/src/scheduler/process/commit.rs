//! The fire commit of one due batch and the hand-over of its runs: every run is submitted
//! only after its own fire is committed, and the runs of the batch are handed to their
//! executors together. How large the batches are (a small first one, so the first runs start
//! after a short read and commit) is the loop's choice: see `process_store`.

use std::sync::Arc;

use super::{Fire, Scheduler};
use crate::executor::{DynExecutor, JobRun};
use crate::job::Job;
use crate::store::{DynJobStore, FireAnswer, FireCommit, FireOutcome};

/// A fire waiting for its commit: the job as committed, its executor, and what runs. The
/// executor is borrowed from the pass's snapshot: a counted reference cost two atomic
/// operations a run on the dispatch path.
pub(super) type Pending<'a> = (Job, &'a Arc<dyn DynExecutor>, FireOutcome, Fire);

impl Scheduler {
    /// Commits `commits` in one call and acts on its answers (by job id): the committed runs
    /// are submitted, the rest reported. `fires[i]` is what `commits[i]` runs. A failing
    /// commit touched none of the jobs (still due, at the revision read, or claimed by this
    /// node until the claim lapses): they come again in a later pass.
    pub(super) async fn commit_batch(
        &self,
        alias: &Arc<str>,
        store: &dyn DynJobStore,
        shared: bool,
        commits: &[FireCommit],
        fires: Vec<Pending<'_>>,
    ) -> crate::Result<()> {
        debug_assert_eq!(commits.len(), fires.len(), "one fire per commit");
        if commits.is_empty() {
            return Ok(());
        }
        let answers = store.commit_fires(commits).await?;
        let mut batch = Batch {
            runs: Vec::with_capacity(commits.len()),
            ..Batch::default()
        };
        for (position, (job, executor, outcome, fire)) in fires.into_iter().enumerate() {
            match answers.get_at(position, job.id()) {
                Some(answer @ (FireAnswer::Committed | FireAnswer::Refused)) => {
                    let mut fire = fire;
                    if answer == FireAnswer::Refused {
                        // The schedule moved on; the runs are skipped, as a node's own limit
                        // skips them.
                        self.refused_across_nodes(alias, &job, &fire.run_times);
                        fire.run_times.clear();
                    } else if shared && super::records_runs_in_flight(&job) {
                        self.track_runs(alias, job.id_arc(), &fire.run_times);
                    }
                    if outcome == FireOutcome::Remove {
                        batch.removed.push(job.id_arc().clone());
                    }
                    if let Some(run) = self.fired(alias, job, fire) {
                        batch.push(self, executor, run);
                    }
                }
                Some(FireAnswer::Stale) => tracing::debug!(
                    job = job.id(),
                    "job changed or was taken by another scheduler before it fired; skipping"
                ),
                None => self.unanswered(store, alias, &job),
            }
        }
        batch.submit(self, alias);
        Ok(())
    }
}

/// The runs of one committed batch, handed to their executors together
/// ([`DynExecutor::submit_batch`]: one hand-over per executor instead of one per run).
#[derive(Default)]
struct Batch<'a> {
    /// Consecutive runs for the same executor.
    runs: Vec<JobRun>,
    executor: Option<&'a Arc<dyn DynExecutor>>,
    /// Jobs whose fire removed them, reported once their runs are submitted (as APScheduler
    /// does, a job's `JobSubmitted` comes before its `JobRemoved`).
    removed: Vec<Arc<str>>,
}

impl<'a> Batch<'a> {
    fn push(&mut self, scheduler: &Scheduler, executor: &'a Arc<dyn DynExecutor>, run: JobRun) {
        if let Some(previous) = self
            .executor
            .take_if(|previous| !Arc::ptr_eq(previous, executor))
        {
            scheduler.submit_runs(&**previous, std::mem::take(&mut self.runs));
        }
        self.executor = Some(executor);
        self.runs.push(run);
    }

    fn submit(self, scheduler: &Scheduler, alias: &Arc<str>) {
        if let Some(executor) = self.executor {
            scheduler.submit_runs(&**executor, self.runs);
        }
        for id in self.removed {
            tracing::info!(job = %id, "removed job: its trigger has no more fire times");
            scheduler.publish_removed(id, alias.clone());
        }
    }
}

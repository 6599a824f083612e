//! The fire commit of one due batch, in chunks: each chunk's runs are handed to their
//! executors as soon as its commit answers, before the next chunk is committed. A large batch
//! then starts its first runs after a small commit instead of after the whole batch's: with
//! 10,000 jobs due at once and the default misfire grace time of 1 s, waiting for whole
//! batches made runs of the later batches start too late. The batches that follow a full one
//! at once are committed whole: the runs of the batch before are still starting, and fewer
//! commits bring the last runs of a burst earlier.

use std::sync::Arc;

use super::{Fire, Scheduler};
use crate::executor::{DynExecutor, JobRun};
use crate::job::Job;
use crate::store::{DynJobStore, FireAnswer, FireCommit, FireOutcome};

/// The first chunk's size: small, so the first runs of a batch start after a short commit.
const FIRST_CHUNK: usize = 32;
/// How much each chunk grows over the one before. Each chunk is a durable commit of its own
/// (a transaction and its flush, on the SQL stores), which the whole burst waits for: a batch
/// of 1,000 in 32, 256 and 712 costs two more than in one, where doubling up to 256 cost five
/// and slowed a SQLite burst of 10,000 from about 0.4 s to 0.5-1 s.
const GROWTH: usize = 8;

/// A fire waiting for its commit: the job as committed, its executor, and what runs.
pub(super) type Pending = (Job, Arc<dyn DynExecutor>, FireOutcome, Fire);

/// The sizes of the chunks `total` commits are made in, in order: [`FIRST_CHUNK`], each
/// next [`GROWTH`] times larger (so a batch takes a logarithmic number of calls); a remainder
/// smaller than [`FIRST_CHUNK`] joins the last chunk rather than cost a call of its own. With
/// `whole`, one chunk of `total`.
fn chunk_sizes(total: usize, whole: bool) -> impl Iterator<Item = usize> {
    let mut left = total;
    let mut size = if whole { total } else { FIRST_CHUNK };
    std::iter::from_fn(move || {
        let chunk = if left < size + FIRST_CHUNK {
            left
        } else {
            size
        };
        left -= chunk;
        size = size.saturating_mul(GROWTH);
        (chunk > 0).then_some(chunk)
    })
}

impl Scheduler {
    /// Commits `commits` in chunks, in order, and acts on each chunk's answers (by job id)
    /// before committing the next, so each run is still submitted only after its own fire is
    /// committed. `fires[i]` is what `commits[i]` runs.
    ///
    /// A failing commit fails the batch as a single commit would: the chunks already
    /// committed have been submitted; the jobs of the rest were not touched (still due, at the
    /// revision read, or claimed by this node until the claim lapses) and come again in a
    /// later pass. With `whole`, the batch is one chunk.
    pub(super) async fn commit_in_chunks(
        &self,
        alias: &Arc<str>,
        store: &dyn DynJobStore,
        shared: bool,
        commits: &[FireCommit],
        fires: Vec<Pending>,
        whole: bool,
    ) -> crate::Result<()> {
        debug_assert_eq!(commits.len(), fires.len(), "one fire per commit");
        let mut fires = fires.into_iter();
        let mut start = 0;
        for size in chunk_sizes(commits.len(), whole) {
            let answers = store.commit_fires(&commits[start..start + size]).await?;
            start += size;
            let mut batch = Batch {
                runs: Vec::with_capacity(size),
                ..Batch::default()
            };
            for (position, (job, executor, outcome, fire)) in fires.by_ref().take(size).enumerate()
            {
                match answers.get_at(position, job.id()) {
                    Some(answer @ (FireAnswer::Committed | FireAnswer::Refused)) => {
                        let mut fire = fire;
                        if answer == FireAnswer::Refused {
                            // The schedule moved on; the runs are skipped, as a node's own
                            // limit skips them.
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
        }
        Ok(())
    }
}

/// The runs of one committed chunk, handed to their executors together
/// ([`DynExecutor::submit_batch`]: one hand-over per executor instead of one per run).
#[derive(Default)]
struct Batch {
    /// Consecutive runs for the same executor.
    runs: Vec<JobRun>,
    executor: Option<Arc<dyn DynExecutor>>,
    /// Jobs whose fire removed them, reported once their runs are submitted (as APScheduler
    /// does, a job's `JobSubmitted` comes before its `JobRemoved`).
    removed: Vec<Arc<str>>,
}

impl Batch {
    fn push(&mut self, scheduler: &Scheduler, executor: Arc<dyn DynExecutor>, run: JobRun) {
        if let Some(previous) = self
            .executor
            .take_if(|previous| !Arc::ptr_eq(previous, &executor))
        {
            scheduler.submit_runs(&*previous, std::mem::take(&mut self.runs));
        }
        self.executor = Some(executor);
        self.runs.push(run);
    }

    fn submit(self, scheduler: &Scheduler, alias: &Arc<str>) {
        if let Some(executor) = self.executor {
            scheduler.submit_runs(&*executor, self.runs);
        }
        for id in self.removed {
            tracing::info!(job = %id, "removed job: its trigger has no more fire times");
            scheduler.publish_removed(id, alias.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_start_small_grow_and_cover_the_batch_once() {
        assert_eq!(
            chunk_sizes(1_000, false).collect::<Vec<_>>(),
            [32, 256, 712]
        );
        assert_eq!(chunk_sizes(100, false).collect::<Vec<_>>(), [32, 68]);
        assert_eq!(chunk_sizes(5, false).collect::<Vec<_>>(), [5]);
        assert_eq!(chunk_sizes(63, false).collect::<Vec<_>>(), [63]);
        assert_eq!(chunk_sizes(64, false).collect::<Vec<_>>(), [32, 32]);
        assert_eq!(chunk_sizes(0, false).count(), 0);
        for total in [1, 31, 32, 33, 100, 480, 481, 10_000, 1_000_000] {
            assert_eq!(chunk_sizes(total, false).sum::<usize>(), total, "{total}");
            assert!(chunk_sizes(total, false).all(|s| s > 0), "{total}");
        }
        assert_eq!(
            chunk_sizes(1_000_000, false).count(),
            6,
            "a logarithmic number of calls"
        );
        assert_eq!(chunk_sizes(1_000, true).collect::<Vec<_>>(), [1_000]);
        assert_eq!(chunk_sizes(0, true).count(), 0);
    }
}

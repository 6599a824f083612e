//! Fire commits without an instance limit: each is one conditional single-document write
//! (an update at the revision read, or a delete), answered by whether it matched.
//!
//! They go together in one client-level `bulkWrite` (unordered, with a result per write)
//! where the server has it (MongoDB 8.0 and later): one round trip for the batch. Otherwise,
//! and after the driver refused `bulkWrite` once, each is an `update_one` or `delete_one` of
//! its own, as many in flight as the pool has connections. The writes and their filters are
//! the same either way, and every write is still atomic on its own document: the batch is
//! not a transaction, and a write that fails leaves only its own fire unanswered.

use std::sync::atomic::Ordering;

use mongodb::Namespace;
use mongodb::bson::Document;
use mongodb::error::{BulkWriteError, ErrorKind as DriverErrorKind, PartialBulkWriteResult};
use mongodb::options::{DeleteOneModel, UpdateOneModel, WriteModel};
use mongodb::results::VerboseBulkWriteResult;
use scheduler_core::store::{FireAnswer, FireAnswers, RecordFireCommit};
use scheduler_core::{Error, ErrorKind, Result};

use crate::document::{conditional, write_update};
use crate::records::MongoRecords;

/// One fire commit as the write that applies it.
enum FireWrite {
    Update { filter: Document, update: Document },
    Delete { filter: Document },
}

impl FireWrite {
    fn of(commit: &RecordFireCommit) -> Result<FireWrite> {
        let filter = conditional(&commit.id, commit.expected_revision)?;
        Ok(match &commit.write {
            Some(write) => FireWrite::Update {
                filter,
                update: write_update(write, commit.inflight.as_ref())?,
            },
            None => FireWrite::Delete { filter },
        })
    }

    fn model(&self, namespace: &Namespace) -> WriteModel {
        match self {
            FireWrite::Update { filter, update } => UpdateOneModel::builder()
                .namespace(namespace.clone())
                .filter(filter.clone())
                .update(update.clone())
                .build()
                .into(),
            FireWrite::Delete { filter } => DeleteOneModel::builder()
                .namespace(namespace.clone())
                .filter(filter.clone())
                .build()
                .into(),
        }
    }

    fn is_update(&self) -> bool {
        matches!(self, FireWrite::Update { .. })
    }
}

impl MongoRecords {
    /// Applies `commits` (none with an instance limit), adding an answer for each one known
    /// to have applied or not; answers the first failure, whose fires stay unanswered.
    pub(crate) async fn commit_unlimited(
        &self,
        commits: &[&RecordFireCommit],
        answers: &mut FireAnswers,
    ) -> Result<()> {
        if commits.is_empty() {
            return Ok(());
        }
        let writes = commits
            .iter()
            .map(|commit| FireWrite::of(commit))
            .collect::<Result<Vec<_>>>()?;
        if self.bulk_writes.load(Ordering::Acquire) {
            match self.commit_in_bulk(commits, &writes).await {
                InBulk::Done { known, failure } => {
                    answers.extend(known);
                    return failure.map_or(Ok(()), Err);
                }
                InBulk::Unsupported => self.bulk_writes.store(false, Ordering::Release),
            }
        }
        self.commit_one_by_one(commits, writes, answers).await
    }

    /// `writes` (those of `commits`) in one `bulkWrite`.
    async fn commit_in_bulk(&self, commits: &[&RecordFireCommit], writes: &[FireWrite]) -> InBulk {
        let coll = match self.coll() {
            Ok(coll) => coll,
            Err(e) => return InBulk::failed(e),
        };
        let namespace = coll.namespace();
        let models: Vec<WriteModel> = writes.iter().map(|w| w.model(&namespace)).collect();
        let client = coll.client().clone();
        let sent = client.bulk_write(models).ordered(false).verbose_results();
        let outcome = match self.call_raw("committing fires", sent).await {
            Ok(outcome) => outcome,
            Err(timed_out) => return InBulk::failed(timed_out),
        };
        let (results, failure) = match outcome {
            Ok(results) => (Some(results), None),
            Err(e) if matches!(e.kind.as_ref(), DriverErrorKind::IncompatibleServer { .. }) => {
                return InBulk::Unsupported;
            }
            Err(e) => {
                let partial = match e.kind.as_ref() {
                    DriverErrorKind::BulkWrite(BulkWriteError {
                        partial_result: Some(PartialBulkWriteResult::Verbose(results)),
                        write_concern_errors,
                        ..
                    }) if write_concern_errors.is_empty() => Some(results.clone()),
                    // A write concern error is not per write: none is known to have applied
                    // as asked.
                    _ => None,
                };
                (partial, Some(self.driver_error("committing fires", &e)))
            }
        };
        let mut known = FireAnswers::with_capacity(commits.len());
        let mut answered = 0;
        if let Some(results) = results {
            for (index, (commit, write)) in commits.iter().zip(writes).enumerate() {
                if let Some(applied) = applied(&results, index, write.is_update()) {
                    let answer = if applied {
                        FireAnswer::Committed
                    } else {
                        FireAnswer::Stale
                    };
                    known.insert(commit.id.clone(), answer);
                    answered += 1;
                }
            }
        }
        let failure = failure.or_else(|| {
            (answered < commits.len()).then(|| {
                Error::new(
                    ErrorKind::Backend,
                    format!(
                        "MongoDB ({}) answered {} of the {} writes of a bulkWrite",
                        self.redacted_url(),
                        answered,
                        commits.len()
                    ),
                )
            })
        });
        InBulk::Done { known, failure }
    }

    /// Each of `writes` on its own, as many in flight as the pool has connections.
    async fn commit_one_by_one(
        &self,
        commits: &[&RecordFireCommit],
        writes: Vec<FireWrite>,
        answers: &mut FireAnswers,
    ) -> Result<()> {
        let coll = self.coll()?;
        let mut first_error = None;
        let in_flight = usize::try_from(self.settings.max_pool_size).unwrap_or(1);
        let mut tasks = tokio::task::JoinSet::new();
        let mut pending = commits.iter().zip(writes);
        loop {
            while tasks.len() < in_flight {
                let Some((commit, write)) = pending.next() else {
                    break;
                };
                let coll = coll.clone();
                let id = commit.id.clone();
                let timeout = self.settings.call_timeout;
                tasks.spawn(async move {
                    let applied = tokio::time::timeout(timeout, async {
                        match write {
                            FireWrite::Update { filter, update } => coll
                                .update_one(filter, update)
                                .await
                                .map(|r| r.matched_count == 1),
                            FireWrite::Delete { filter } => {
                                coll.delete_one(filter).await.map(|r| r.deleted_count == 1)
                            }
                        }
                    })
                    .await;
                    (id, applied)
                });
            }
            let Some(joined) = tasks.join_next().await else {
                break;
            };
            let (id, applied) =
                joined.map_err(|e| Error::backend("a fire commit task failed", e))?;
            match applied {
                Ok(Ok(true)) => answers.insert(id, FireAnswer::Committed),
                Ok(Ok(false)) => answers.insert(id, FireAnswer::Stale),
                // Unanswered: the scheduler reports it and does not run that fire.
                Ok(Err(e)) => {
                    first_error.get_or_insert_with(|| self.driver_error("committing fires", &e));
                }
                Err(_) => {
                    first_error.get_or_insert_with(|| self.timed_out("committing a fire"));
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// What a `bulkWrite` came to.
enum InBulk {
    /// Sent: the answers known, and the failure that left the others unanswered.
    Done {
        known: FireAnswers,
        failure: Option<Error>,
    },
    /// The driver refused it for this server (before MongoDB 8.0), sending nothing.
    Unsupported,
}

impl InBulk {
    fn failed(e: Error) -> InBulk {
        InBulk::Done {
            known: FireAnswers::new(),
            failure: Some(e),
        }
    }
}

/// Whether write `index` of a bulkWrite matched its document, if the results say.
fn applied(results: &VerboseBulkWriteResult, index: usize, is_update: bool) -> Option<bool> {
    if is_update {
        results
            .update_results
            .get(&index)
            .map(|r| r.matched_count == 1)
    } else {
        results
            .delete_results
            .get(&index)
            .map(|r| r.deleted_count == 1)
    }
}

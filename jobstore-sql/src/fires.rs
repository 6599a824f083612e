//! Fire commits as a few set-based statements per batch on the SQL servers (PostgreSQL,
//! MySQL/MariaDB), where one statement per job made the commit of a large due batch cost a
//! round trip per job: with 10,000 jobs due at once, later runs started past the misfire
//! grace time. SQLite runs in process, where a statement per job costs no round trip, and
//! keeps the per-job path, as do commits that record runs in flight.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use scheduler_core::store::RecordFireCommit;
use scheduler_core::{FireAnswer, FireAnswers, Result};

use crate::dialect::{self, Dialect};
use crate::pool::{Arg, Shape, Step};
use crate::records::{RowValues, SqlRecords, revision_column};

/// One commit's row, ready to bind: the values to write, or `None` to remove the row.
struct Planned {
    id: Arc<str>,
    expected: i64,
    write: Option<RowValues>,
}

impl SqlRecords {
    /// Commits `commits` set-based where the dialect has a set-based form and no commit
    /// records runs in flight; `None` when the caller must take the per-job path.
    pub(crate) async fn commit_fires_set_based(
        &self,
        commits: &[RecordFireCommit],
        beat: Option<&Vec<Arg>>,
    ) -> Result<Option<FireAnswers>> {
        let records_runs = commits.iter().any(|c| {
            c.inflight
                .as_ref()
                .is_some_and(|(_, runs)| !runs.is_empty())
        });
        if records_runs || commits.is_empty() {
            return Ok(None);
        }
        let mut planned = Vec::with_capacity(commits.len());
        for commit in commits {
            planned.push(Planned {
                id: commit.id.clone(),
                expected: revision_column(commit.expected_revision),
                write: match &commit.write {
                    Some(write) => Some(self.row_values(write.clone())?),
                    None => None,
                },
            });
        }
        // Rows are written in id order, as every batch of conditional writes here.
        planned.sort_by(|a, b| a.id.cmp(&b.id));
        match self.url.dialect {
            Dialect::Postgres => self.commit_postgres(planned, beat).await.map(Some),
            Dialect::MySql => self.commit_mysql(planned, beat).await.map(Some),
            Dialect::Sqlite => Ok(None),
        }
    }

    /// One statement for the whole batch: the rows as arrays, each written or removed only at
    /// its expected revision, answering the ids it changed.
    async fn commit_postgres(
        &self,
        planned: Vec<Planned>,
        beat: Option<&Vec<Arg>>,
    ) -> Result<FireAnswers> {
        let mut columns: [Vec<Option<String>>; 5] = Default::default();
        let [ids, readable, funcs, kinds, states] = &mut columns;
        let (mut micros, mut revisions, mut expected) = (Vec::new(), Vec::new(), Vec::new());
        let (mut removed_ids, mut removed_expected) = (Vec::new(), Vec::new());
        for commit in &planned {
            match &commit.write {
                Some(row) => {
                    ids.push(Some(row.id.clone()));
                    micros.push(row.micros);
                    readable.push(row.readable.clone());
                    revisions.push(Some(row.revision));
                    funcs.push(row.func.clone());
                    kinds.push(row.kind.clone());
                    states.push(Some(row.json.clone()));
                    expected.push(Some(commit.expected));
                }
                None => {
                    removed_ids.push(Some(commit.id.to_string()));
                    removed_expected.push(Some(commit.expected));
                }
            }
        }
        let [ids, readable, funcs, kinds, states] = columns;
        let mut args = vec![
            Arg::Texts(ids),
            Arg::Ints(micros),
            Arg::Texts(readable),
            Arg::Ints(revisions),
            Arg::Texts(funcs),
            Arg::Texts(kinds),
            Arg::Texts(states),
            Arg::Ints(expected),
            Arg::Texts(removed_ids),
            Arg::Ints(removed_expected),
        ];
        let upsert = beat.map(|beat| {
            args.extend(beat.iter().cloned());
            self.cluster.upsert_node(11)
        });
        let statement = dialect::commit_fires_postgres(&self.table, upsert.as_deref());
        let pool = self.pool()?;
        let changed = self
            .bounded(
                "committing due jobs",
                pool.fetch_retrying(statement, args, Shape::Id),
            )
            .await?;
        let changed: HashSet<String> = changed.into_iter().map(|row| row.id).collect();
        Ok(planned
            .into_iter()
            .map(|c| {
                let applied = changed.contains(&*c.id);
                (c.id, answer(applied))
            })
            .collect())
    }

    /// Per transaction of at most [`Dialect::rows_per_statement`] rows: a locking read of the
    /// rows' revisions, then one upsert of the rows found at their expected revision and one
    /// delete of those to remove. MySQL has no `RETURNING` and its `UPDATE` answers only a
    /// count, so the read under lock is what says, exactly, which commits apply: the rows stay
    /// as read until the commit.
    async fn commit_mysql(
        &self,
        planned: Vec<Planned>,
        beat: Option<&Vec<Arg>>,
    ) -> Result<FireAnswers> {
        let dialect = self.url.dialect;
        let mut answers = FireAnswers::with_capacity(planned.len());
        let pool = self.pool()?;
        for (n, chunk) in planned.chunks(dialect.rows_per_statement()).enumerate() {
            // The first chunk's transaction carries the heartbeat.
            let beat = beat.filter(|_| n == 0);
            let ids: Vec<Arg> = chunk.iter().map(|c| Arg::Text(c.id.to_string())).collect();
            let select = Step::new(
                dialect::lock_revisions_of(dialect, &self.table, ids.len()),
                ids,
            );
            let writes = |held: &[crate::pool::Row]| {
                let held: HashMap<&str, i64> =
                    held.iter().map(|r| (r.id.as_str(), r.revision)).collect();
                let applies = |c: &&Planned| held.get(&*c.id) == Some(&c.expected);
                let (mut rows, mut upserts, mut removals) = (0, Vec::new(), Vec::new());
                for commit in chunk.iter().filter(applies) {
                    match &commit.write {
                        Some(row) => {
                            rows += 1;
                            upserts.extend(row.clone().into_args());
                        }
                        None => removals.push(Arg::Text(commit.id.to_string())),
                    }
                }
                let mut steps = Vec::with_capacity(3);
                if let Some(args) = beat {
                    steps.push(Step::new(self.cluster.heartbeat.clone(), args.clone()));
                }
                if rows > 0 {
                    let sql = dialect::upsert_many(dialect, &self.table, rows);
                    steps.push(Step::new(sql, upserts));
                }
                if !removals.is_empty() {
                    let sql = dialect::delete_ids(dialect, &self.table, removals.len());
                    steps.push(Step::new(sql, removals));
                }
                steps
            };
            let held = self
                .bounded(
                    "committing due jobs",
                    pool.read_then_write(vec![select], Shape::IdRevision, writes),
                )
                .await?;
            let held: HashMap<String, i64> = held.into_iter().map(|r| (r.id, r.revision)).collect();
            for commit in chunk {
                let applied = held.get(&*commit.id) == Some(&commit.expected);
                answers.insert(commit.id.clone(), answer(applied));
            }
        }
        Ok(answers)
    }
}

fn answer(applied: bool) -> FireAnswer {
    if applied {
        FireAnswer::Committed
    } else {
        FireAnswer::Stale
    }
}

//! Batched adds ([`RecordStore::insert_many`](scheduler_core::RecordStore::insert_many)):
//! the fewest statements a dialect allows, all in one transaction.

use std::collections::HashSet;

use scheduler_core::Result;

use crate::SqlRecords;
use crate::dialect;
use crate::pool::{Arg, Outcome, Row, Shape, Step};
use crate::records::RowValues;

/// Batched adds. Every statement of a call runs in one transaction: one durable commit for
/// the call, and an error adds none.
impl SqlRecords {
    /// PostgreSQL: the rows as arrays, one statement per [`dialect::STATEMENT_BYTES`] of them,
    /// skipping the ids already stored; answers, per row, whether it was added.
    pub(crate) async fn insert_unnest(&self, rows: &[RowValues]) -> Result<Vec<bool>> {
        let rows: Vec<&RowValues> = rows.iter().collect();
        let steps = statement_chunks(&rows, usize::MAX)
            .map(|chunk| {
                let column = |f: fn(&&RowValues) -> Option<String>| {
                    Arg::Texts(chunk.iter().map(f).collect())
                };
                let args = vec![
                    column(|r| Some(r.id.clone())),
                    Arg::Ints(chunk.iter().map(|r| r.micros).collect()),
                    column(|r| r.readable.clone()),
                    Arg::Ints(chunk.iter().map(|r| Some(r.revision)).collect()),
                    column(|r| r.func.clone()),
                    column(|r| r.kind.clone()),
                    column(|r| Some(r.json.clone())),
                ];
                let sql = dialect::insert_unnest_postgres(&self.table);
                Step::new(sql, args, Some(Shape::Id))
            })
            .collect();
        let pool = self.pool()?;
        let outcomes = self.bounded("adding jobs", pool.transaction(steps)).await?;
        let inserted: HashSet<String> = outcomes
            .into_iter()
            .filter_map(|outcome| match outcome {
                Outcome::Rows(rows) => Some(rows),
                Outcome::Affected(_) => None,
            })
            .flatten()
            .map(|row| row.id)
            .collect();
        Ok(rows.iter().map(|r| inserted.contains(&r.id)).collect())
    }

    /// SQLite and MySQL: reads which ids are taken, then inserts the other rows with
    /// multi-row `INSERT`s that fail on a taken id, in the same transaction (SQLite holds the
    /// write lock from its start). The read usually answers no row: answering one per row,
    /// as `RETURNING` did, cost SQLite a hand-off from its thread per row, and MySQL a read
    /// back of every row. A row another writer added after the read fails the insert with a
    /// unique violation, and the transaction is run again (see [`Pool::read_then_write`]).
    /// Answers, per row, whether it was added.
    pub(crate) async fn insert_absent(&self, rows: &[RowValues]) -> Result<Vec<bool>> {
        let dialect = self.url.dialect;
        let ids: Vec<Arg> = rows.iter().map(|r| Arg::Text(r.id.clone())).collect();
        let reads = ids
            .chunks(dialect.add_rows_per_statement())
            .map(|ids| {
                let sql = dialect::existing_ids(dialect, &self.table, ids.len());
                Step::new(sql, ids.to_vec(), None)
            })
            .collect();
        let inserts = |taken: &[Row]| {
            let taken: HashSet<&str> = taken.iter().map(|r| r.id.as_str()).collect();
            let absent: Vec<&RowValues> = rows
                .iter()
                .filter(|r| !taken.contains(r.id.as_str()))
                .collect();
            statement_chunks(&absent, dialect.add_rows_per_statement())
                .map(|chunk| {
                    let sql = dialect::insert_many(dialect, &self.table, chunk.len());
                    let args = chunk.iter().flat_map(|&r| r.clone().into_args());
                    Step::new(sql, args.collect(), None)
                })
                .collect()
        };
        let pool = self.pool()?;
        let taken = self
            .bounded(
                "adding jobs",
                pool.read_then_write(reads, Shape::Id, inserts),
            )
            .await?;
        let taken: HashSet<String> = taken.into_iter().map(|row| row.id).collect();
        Ok(rows.iter().map(|r| !taken.contains(&r.id)).collect())
    }
}

/// The number of columns [`RowValues::into_args`] binds per row.
pub(crate) const COLUMN_COUNT: usize = 7;

/// `rows` in order, split into statements of at most `max_rows` rows and about
/// [`dialect::STATEMENT_BYTES`] of text each (a larger row alone).
fn statement_chunks<'a>(
    rows: &'a [&'a RowValues],
    max_rows: usize,
) -> impl Iterator<Item = &'a [&'a RowValues]> {
    let mut rest = rows;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut bytes = 0;
        let mut end = 0;
        while end < rest.len().min(max_rows) {
            bytes += rest[end].text_bytes();
            if end > 0 && bytes > dialect::STATEMENT_BYTES {
                break;
            }
            end += 1;
        }
        let (chunk, tail) = rest.split_at(end);
        rest = tail;
        Some(chunk)
    })
}

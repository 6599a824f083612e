//! Batched adds ([`RecordStore::insert_many`](scheduler_core::RecordStore::insert_many)):
//! the fewest statements a dialect allows, all in one transaction.

use std::collections::HashSet;

use scheduler_core::Result;

use crate::SqlRecords;
use crate::dialect::{self, Dialect};
use crate::pool::{Arg, Row, Shape, Step};
use crate::records::RowValues;

/// Batched adds. Every statement of a call runs in one transaction: one durable commit for
/// the call, and an error adds none.
impl SqlRecords {
    /// Reads which ids are taken, then inserts the other rows with plain inserts that fail on
    /// a taken id, in the same transaction (SQLite holds the write lock from its start). The
    /// read usually answers no row: answering one per row, as `RETURNING` did, cost SQLite a
    /// hand-off from its thread per row, and MySQL and PostgreSQL a read back of every row. A
    /// row another writer added after the read fails the insert with a unique violation, and
    /// the transaction is run again (see [`Pool::read_then_write`]). Answers, per row, whether
    /// it was added.
    ///
    /// PostgreSQL reads the ids as one array and inserts the rows as arrays (`unnest`), one
    /// statement per [`dialect::STATEMENT_BYTES`] of them. Its insert has no `ON CONFLICT DO
    /// NOTHING`: the speculative insertion that needs cost the server half as much again per
    /// row (a median 52 against 34 ms for 10,000 rows), and the read has found the ids.
    /// SQLite and MySQL use multi-row `VALUES` lists and `IN` lists sized by their bound-value
    /// limits.
    pub(crate) async fn insert_absent(&self, rows: &[RowValues]) -> Result<Vec<bool>> {
        let dialect = self.url.dialect;
        if dialect == Dialect::Postgres && rows.len() <= SMALL_ADD_POSTGRES {
            return self.insert_small_postgres(rows).await;
        }
        if dialect != Dialect::Postgres
            && let Some(added) = self.insert_all_or_none(rows).await?
        {
            return Ok(added);
        }
        let reads = if dialect == Dialect::Postgres {
            let ids = rows.iter().map(|r| Some(r.id.clone())).collect();
            let sql = dialect::existing_ids_postgres(&self.table);
            vec![Step::new(sql, vec![Arg::Texts(ids)])]
        } else {
            let ids: Vec<Arg> = rows.iter().map(|r| Arg::Text(r.id.clone())).collect();
            ids.chunks(dialect.add_rows_per_statement())
                .map(|ids| {
                    let sql = dialect::existing_ids(dialect, &self.table, ids.len());
                    Step::new(sql, ids.to_vec())
                })
                .collect()
        };
        let unnest = dialect::insert_unnest_postgres(&self.table);
        let inserts = |taken: &[Row]| {
            let taken: HashSet<&str> = taken.iter().map(|r| r.id.as_str()).collect();
            let absent: Vec<&RowValues> = rows
                .iter()
                .filter(|r| !taken.contains(r.id.as_str()))
                .collect();
            if dialect == Dialect::Postgres {
                return statement_chunks(&absent, usize::MAX)
                    .map(|chunk| Step::new(unnest.clone(), unnest_args(chunk)))
                    .collect();
            }
            statement_chunks(&absent, dialect.add_rows_per_statement())
                .map(|chunk| {
                    let sql = dialect::insert_many(dialect, &self.table, chunk.len());
                    let args = chunk.iter().flat_map(|&r| r.clone().into_args());
                    Step::new(sql, args.collect())
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
        let added: Vec<bool> = rows.iter().map(|r| !taken.contains(&r.id)).collect();
        if added.contains(&true) {
            let earliest = rows
                .iter()
                .zip(&added)
                .filter(|(_, added)| **added)
                .filter_map(|(r, _)| r.micros)
                .min();
            self.notify(earliest).await;
        }
        Ok(added)
    }

    /// A group of single adds or a small batch on SQLite and MySQL, tried first as one plain
    /// insert of every row, committed on its own: one round trip, where the transaction of
    /// [`insert_absent`](Self::insert_absent) takes four (five on MySQL, whose isolation level
    /// is set first). A statement is atomic: it adds every row, or, when an id is taken (a
    /// unique violation), none, and `None` sends the rows on to the read that finds which ids
    /// are taken. Also `None` for rows that need more than one statement.
    ///
    /// Groups of concurrent single adds come here too (scheduler-core groups them; every SQL
    /// dialect lets it): on MariaDB, with 8 concurrent callers, 16.4k-18.3k adds/s grouped
    /// against 10.9k-12.1k/s each on its own (3 alternated release rounds of 10,000 adds on an
    /// idle machine), as a group shares one flush where the server flushes at most as many
    /// commits together as the pool has connections.
    pub(crate) async fn insert_all_or_none(&self, rows: &[RowValues]) -> Result<Option<Vec<bool>>> {
        let dialect = self.url.dialect;
        let refs: Vec<&RowValues> = rows.iter().collect();
        let mut chunks = statement_chunks(&refs, dialect.add_rows_per_statement());
        let (Some(chunk), None) = (chunks.next(), chunks.next()) else {
            return Ok(None);
        };
        let sql = dialect::insert_many(dialect, &self.table, chunk.len());
        let args: Vec<Arg> = chunk.iter().flat_map(|&r| r.clone().into_args()).collect();
        let pool = self.pool()?;
        let inserted = async {
            match pool.execute_retrying(sql, args).await {
                Ok(_) => Ok(true),
                Err(sqlx::Error::Database(db)) if db.is_unique_violation() => Ok(false),
                Err(e) => Err(e),
            }
        };
        let all = self.bounded("adding jobs", inserted).await?;
        Ok(all.then(|| vec![true; rows.len()]))
    }

    /// A few rows (a group of single adds, a small batch) on PostgreSQL: one statement that
    /// skips the taken ids, answers the ids it added and wakes the other nodes, one round trip
    /// where the read and the insert of [`insert_absent`](Self::insert_absent) take four, and
    /// the wake-up one more. A wake-up the server refuses (its notification queue full) fails
    /// the add, which is then not committed, where a separate one was only logged.
    pub(crate) async fn insert_small_postgres(&self, rows: &[RowValues]) -> Result<Vec<bool>> {
        let refs: Vec<&RowValues> = rows.iter().collect();
        let sql = dialect::insert_unnest_absent_waking_postgres(&self.table);
        let mut args = unnest_args(&refs);
        args.push(Arg::Text(self.cluster.channel.clone()));
        let pool = self.pool()?;
        let added = self
            .bounded("adding jobs", pool.fetch(sql, args, Shape::Id))
            .await?;
        let added: HashSet<String> = added.into_iter().map(|row| row.id).collect();
        Ok(rows.iter().map(|r| added.contains(&r.id)).collect())
    }
}

/// The most rows [`SqlRecords::insert_absent`] adds with one statement on PostgreSQL, which
/// also covers a whole group of single adds (`scheduler_core`'s group commit holds 256).
const SMALL_ADD_POSTGRES: usize = 256;

/// The columns of `rows` as the arrays of [`dialect::insert_unnest_postgres`].
fn unnest_args(rows: &[&RowValues]) -> Vec<Arg> {
    let texts =
        |f: fn(&RowValues) -> Option<String>| Arg::Texts(rows.iter().map(|&r| f(r)).collect());
    vec![
        texts(|r| Some(r.id.clone())),
        Arg::Ints(rows.iter().map(|r| r.micros).collect()),
        texts(|r| r.readable.clone()),
        Arg::Ints(rows.iter().map(|r| Some(r.revision)).collect()),
        texts(|r| r.func.clone()),
        texts(|r| r.kind.clone()),
        texts(|r| Some(r.json.clone())),
    ]
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

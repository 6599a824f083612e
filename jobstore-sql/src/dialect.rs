//! What differs between the SQL dialects: column types, placeholders, upserts, the readable
//! time column. Everything else is shared.

use chrono::{DateTime, Datelike, Utc};
use sqlx::{AssertSqlSafe, SqlSafeStr, SqlStr};

/// The columns of a row, in the order every statement writes them.
pub(crate) const COLUMNS: &str =
    "id, next_run_micros, next_run_time, revision, func, trigger_kind, job_state";

/// The assignments that clear a row's claim: every write of a job row includes them, so a
/// changed job is never held by a claim taken on its old state.
pub(crate) const CLEAR_CLAIM: &str = "claimed_by = NULL, claim_token = NULL, claim_until = NULL";

/// The columns a record is read from, in [`crate::pool::Row`]'s order.
pub(crate) const RECORD_COLUMNS: &str = "id, next_run_micros, revision, job_state";

/// A SQL dialect this crate speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
    MySql,
}

impl Dialect {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "SQLite",
            Dialect::Postgres => "PostgreSQL",
            Dialect::MySql => "MySQL",
        }
    }

    /// The cargo feature that enables the dialect.
    pub(crate) fn feature(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
            Dialect::MySql => "mysql",
        }
    }

    /// The readable copy of a run time for the `next_run_time` column, in UTC: text the
    /// column's type reads exactly, or `None` where the type cannot hold it (MySQL's
    /// `DATETIME` starts at the year 1000). Never read back: `next_run_micros` is the authority.
    pub(crate) fn readable_time(self, t: DateTime<Utc>) -> Option<String> {
        if self == Dialect::MySql && t.year() < 1000 {
            return None;
        }
        let mut text = readable_utc(t);
        if self == Dialect::Postgres {
            text.push_str("+00");
        }
        Some(text)
    }

    /// The longest job id the `id` column holds, in characters.
    pub(crate) fn max_id_chars(self) -> Option<usize> {
        match self {
            // A utf8mb4 primary key of 191 characters fits every InnoDB index limit, as in
            // APScheduler's table.
            Dialect::MySql => Some(191),
            Dialect::Sqlite | Dialect::Postgres => None,
        }
    }

    /// The highest number of rows in one multi-row statement: 7 values a row stay below every
    /// dialect's limit of bound values (SQLite 32,766; PostgreSQL and MySQL 65,535).
    pub(crate) fn rows_per_statement(self) -> usize {
        1000
    }

    /// The most rows one statement of an add inserts, and ids one read of it looks up. SQLite
    /// takes as many as its 32,766 bound values allow: in process, a statement costs no round
    /// trip. MySQL keeps 1,000: statements of 9,000 rows (63,000 placeholders) made a batch
    /// of 10,000 jobs slower there (10k/s against 16k/s).
    pub(crate) fn add_rows_per_statement(self) -> usize {
        match self {
            Dialect::Sqlite => 32_766 / crate::adds::COLUMN_COUNT,
            Dialect::Postgres | Dialect::MySql => self.rows_per_statement(),
        }
    }
}

/// `t` as `%Y-%m-%d %H:%M:%S%.6f`. Written digit by digit: chrono's formatter parses the
/// pattern and goes through `fmt` for every value, which cost a batch of 10,000 adds 5,000
/// instructions a job. Years outside 1-9999 (which no stored run time has) go through chrono.
fn readable_utc(t: DateTime<Utc>) -> String {
    use chrono::Timelike;

    let year = t.year();
    if !(1..=9999).contains(&year) {
        return t.format("%Y-%m-%d %H:%M:%S%.6f").to_string();
    }
    // A leap second is the 60th second, its nanoseconds past 10^9, as chrono prints it.
    let nanos = t.nanosecond();
    let second = t.second() + u32::from(nanos >= 1_000_000_000);
    let micros = nanos % 1_000_000_000 / 1_000;
    let mut out = [0u8; 26];
    let mut put = |at: usize, width: usize, mut value: u32| {
        for i in (at..at + width).rev() {
            out[i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, 4, year.unsigned_abs());
    put(5, 2, t.month());
    put(8, 2, t.day());
    put(11, 2, t.hour());
    put(14, 2, t.minute());
    put(17, 2, second);
    put(20, 6, micros);
    for (at, separator) in [
        (4, b'-'),
        (7, b'-'),
        (10, b' '),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
    ] {
        out[at] = separator;
    }
    let mut text = String::with_capacity(out.len() + 3);
    // Digits and separators only: ASCII.
    text.extend(out.iter().map(|&b| char::from(b)));
    text
}

/// The bound text (ids, JSON, ...) one statement of an add carries at most, beside a single
/// row larger than that: well within MySQL's smallest default `max_allowed_packet` (4 MiB),
/// large enough that a batch of 10,000 jobs takes a few statements.
pub(crate) const STATEMENT_BYTES: usize = 2 << 20;

/// Numbers placeholders the dialect's way: `$1` (PostgreSQL), `?` (SQLite and MySQL,
/// positional: values are bound in the order the placeholders appear). SQLite's driver looks
/// the name of each numbered `?N` up, a scan of every name in the statement: quadratic, and
/// seconds for a batch of thousands of rows.
struct Placeholders {
    dialect: Dialect,
    next: usize,
}

impl Placeholders {
    fn new(dialect: Dialect) -> Self {
        Placeholders { dialect, next: 0 }
    }

    fn next(&mut self) -> String {
        self.next += 1;
        match self.dialect {
            Dialect::Postgres => format!("${}", self.next),
            Dialect::Sqlite | Dialect::MySql => "?".to_owned(),
        }
    }

    /// The placeholders of one row of [`COLUMNS`], parenthesized.
    fn row(&mut self) -> String {
        let id = self.next();
        let micros = self.next();
        let time = self.time();
        let rest: Vec<String> = (0..4).map(|_| self.next()).collect();
        format!("({id}, {micros}, {time}, {})", rest.join(", "))
    }

    /// The placeholder of a readable time, cast where the column type needs it.
    fn time(&mut self) -> String {
        let time = self.next();
        match self.dialect {
            Dialect::Postgres => format!("CAST({time} AS TIMESTAMPTZ)"),
            Dialect::MySql | Dialect::Sqlite => time,
        }
    }
}

/// The statements of one table, built once per store.
#[derive(Debug, Clone)]
pub(crate) struct Queries {
    pub(crate) get: SqlStr,
    pub(crate) due: SqlStr,
    pub(crate) next_run_times: SqlStr,
    pub(crate) all: SqlStr,
    pub(crate) upsert: SqlStr,
    pub(crate) update: SqlStr,
    pub(crate) delete: SqlStr,
    pub(crate) delete_at_revision: SqlStr,
    pub(crate) delete_all: SqlStr,
    /// Lists the columns, to tell a table of this layout from another one of the same name.
    pub(crate) probe: SqlStr,
}

fn sql(text: String) -> SqlStr {
    // Safe: the only text spliced into statements is the table name, validated as an
    // identifier, and index names derived from it; values are always bound. Shared, so that
    // the clone each run takes does not copy the text.
    AssertSqlSafe(std::sync::Arc::<str>::from(text)).into_sql_str()
}

impl Queries {
    pub(crate) fn new(dialect: Dialect, table: &str) -> Self {
        let ph = |n: usize| {
            let mut p = Placeholders::new(dialect);
            (0..n).map(|_| p.next()).collect::<Vec<_>>()
        };
        let select = format!("SELECT {RECORD_COLUMNS} FROM {table}");
        let get = {
            let p = ph(1);
            format!("{select} WHERE id = {}", p[0])
        };
        // The range bounds keep a value an operator wrote outside the years 1-9999 (which no
        // instant has) from failing every due batch; such a row is listed, never due.
        let (min, max) = crate::records::micros_bounds();
        let due = {
            let p = ph(2);
            format!(
                "{select} WHERE next_run_micros >= {min} AND next_run_micros <= {} \
                 ORDER BY next_run_micros, id LIMIT {}",
                p[0], p[1]
            )
        };
        let next_run_times = {
            let p = ph(1);
            format!(
                "SELECT id, next_run_micros, revision FROM {table} WHERE next_run_micros >= \
                 {min} AND next_run_micros <= {max} ORDER BY next_run_micros, id LIMIT {}",
                p[0]
            )
        };
        let insert = format!(
            "INSERT INTO {table} ({COLUMNS}) VALUES {}",
            Placeholders::new(dialect).row()
        );
        let upsert = format!("{insert} {}", replace_existing(dialect));
        let update = {
            let mut p = Placeholders::new(dialect);
            let micros = p.next();
            let time = p.time();
            let rest: Vec<String> = (0..6).map(|_| p.next()).collect();
            format!(
                "UPDATE {table} SET next_run_micros = {micros}, next_run_time = {time}, \
                 revision = {}, func = {}, trigger_kind = {}, job_state = {}, {CLEAR_CLAIM} WHERE \
                 id = {} AND revision = {}",
                rest[0], rest[1], rest[2], rest[3], rest[4], rest[5]
            )
        };
        let delete = format!("DELETE FROM {table} WHERE id = {}", ph(1)[0]);
        let delete_at_revision = {
            let p = ph(2);
            format!(
                "DELETE FROM {table} WHERE id = {} AND revision = {}",
                p[0], p[1]
            )
        };
        Queries {
            get: sql(get),
            due: sql(due),
            next_run_times: sql(next_run_times),
            all: sql(select),
            upsert: sql(upsert),
            update: sql(update),
            delete: sql(delete),
            delete_at_revision: sql(delete_at_revision),
            delete_all: sql(format!("DELETE FROM {table}")),
            probe: sql(format!("SELECT {COLUMNS} FROM {table} WHERE 1 = 0")),
        }
    }
}

/// The clause that makes an insert replace the row of an id already stored (its claim
/// cleared, as by every write).
fn replace_existing(dialect: Dialect) -> String {
    match dialect {
        Dialect::Postgres | Dialect::Sqlite => format!(
            "ON CONFLICT (id) DO UPDATE SET next_run_micros = excluded.next_run_micros, \
             next_run_time = excluded.next_run_time, revision = excluded.revision, func = \
             excluded.func, trigger_kind = excluded.trigger_kind, job_state = \
             excluded.job_state, {CLEAR_CLAIM}"
        ),
        Dialect::MySql => format!(
            "ON DUPLICATE KEY UPDATE next_run_micros = VALUES(next_run_micros), next_run_time = \
             VALUES(next_run_time), revision = VALUES(revision), func = VALUES(func), \
             trigger_kind = VALUES(trigger_kind), job_state = VALUES(job_state), {CLEAR_CLAIM}"
        ),
    }
}

/// The placeholders of `rows` rows of [`COLUMNS`], for `VALUES`.
fn value_rows(dialect: Dialect, rows: usize) -> String {
    let mut p = Placeholders::new(dialect);
    let first = p.row();
    let mut values = String::with_capacity((first.len() + 2) * rows);
    values.push_str(&first);
    for _ in 1..rows {
        values.push_str(", ");
        match dialect {
            Dialect::Postgres => values.push_str(&p.row()),
            // Positional placeholders: every row's are alike (a batch of adds built 7,000
            // strings a statement here).
            Dialect::Sqlite | Dialect::MySql => values.push_str(&first),
        }
    }
    values
}

/// A multi-row upsert of `rows` rows: MySQL's write of fire commits whose rows it holds
/// locked at the revisions expected, which makes the unconditional write exact.
pub(crate) fn upsert_many(dialect: Dialect, table: &str, rows: usize) -> SqlStr {
    sql(format!(
        "INSERT INTO {table} ({COLUMNS}) VALUES {} {}",
        value_rows(dialect, rows),
        replace_existing(dialect)
    ))
}

/// A multi-row insert of `rows` rows, which fails on an id already stored: for the rows of
/// an add whose ids [`existing_ids`] did not find, in the same transaction.
pub(crate) fn insert_many(dialect: Dialect, table: &str, rows: usize) -> SqlStr {
    sql(format!(
        "INSERT INTO {table} ({COLUMNS}) VALUES {}",
        value_rows(dialect, rows)
    ))
}

/// `SELECT id` of the rows with `ids` ids: which ids of an add are taken (usually none, so
/// nothing is sent back; SQLite sends every row answered through a channel from its thread).
pub(crate) fn existing_ids(dialect: Dialect, table: &str, ids: usize) -> SqlStr {
    sql(format!(
        "SELECT id FROM {table} WHERE id IN ({})",
        id_list(dialect, ids)
    ))
}

/// PostgreSQL's insert of many rows in one statement, the columns bound as arrays (`$1` ids,
/// `$2` run times in microseconds, `$3` their readable copies, `$4` revisions, `$5`
/// functions, `$6` trigger kinds, `$7` JSON): one statement of any size, rather than rows of
/// seven placeholders each, which the server parses and plans one by one. Fails on an id
/// already stored: for the rows of an add whose ids [`existing_ids_postgres`] did not find.
pub(crate) fn insert_unnest_postgres(table: &str) -> SqlStr {
    sql(insert_unnest_text(table))
}

fn insert_unnest_text(table: &str) -> String {
    format!(
        "INSERT INTO {table} ({COLUMNS}) SELECT v.id, v.micros, CAST(v.readable AS \
         TIMESTAMPTZ), v.revision, v.func, v.kind, v.state FROM unnest($1::text[], \
         $2::bigint[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[]) AS v(id, \
         micros, readable, revision, func, kind, state)"
    )
}

/// [`insert_unnest_postgres`] skipping the ids that are taken, answering the ids it added,
/// and waking the other nodes (`pg_notify` on channel `$8`) when it added any: a small add in
/// one round trip, where a separate wake-up took a second (the speculative insertion costs
/// the server more per row than a read first, which only a large batch notices). The wake-up
/// is sent once, carrying the earliest run time added (see [`wake_payload`]), and only when a
/// row was added (the aggregate answers no row then, and the join none). It goes out with the
/// commit, as a notification always does.
pub(crate) fn insert_unnest_absent_waking_postgres(table: &str) -> SqlStr {
    sql(format!(
        "WITH added AS ({} ON CONFLICT (id) DO NOTHING RETURNING id, next_run_micros) SELECT \
         added.id FROM added CROSS JOIN (SELECT pg_notify($8, COALESCE(CAST(MIN(next_run_micros) \
         AS TEXT), '')) FROM added HAVING COUNT(*) > 0) AS woken",
        insert_unnest_text(table)
    ))
}

/// The payload of a wake-up for rows whose earliest run time is `micros`: the integer
/// microseconds, which a listener hands to `StoreContext::wake_for` (a node that looks at
/// the store by then anyway is not woken), or empty when unknown (paused rows: a plain wake).
pub(crate) fn wake_payload(micros: Option<i64>) -> String {
    micros.map(|m| m.to_string()).unwrap_or_default()
}

/// PostgreSQL's [`existing_ids`]: the ids of `$1` (an array) that are taken.
pub(crate) fn existing_ids_postgres(table: &str) -> SqlStr {
    sql(format!("SELECT id FROM {table} WHERE id = ANY($1::text[])"))
}

/// `SELECT id, revision` of the rows with `ids` ids, as a locking read taking the locks in id
/// order (as every batch of conditional writes does, so that two of them wait for each other
/// instead of deadlocking).
pub(crate) fn lock_revisions_of(dialect: Dialect, table: &str, ids: usize) -> SqlStr {
    sql(format!(
        "{} ORDER BY id FOR UPDATE",
        select_revisions(dialect, table, ids)
    ))
}

/// A `DELETE` of the rows with `ids` ids, whatever their revision (rows held locked).
pub(crate) fn delete_ids(dialect: Dialect, table: &str, ids: usize) -> SqlStr {
    sql(format!(
        "DELETE FROM {table} WHERE id IN ({})",
        id_list(dialect, ids)
    ))
}

fn select_revisions(dialect: Dialect, table: &str, ids: usize) -> String {
    format!(
        "SELECT id, revision FROM {table} WHERE id IN ({})",
        id_list(dialect, ids)
    )
}

/// `ids` placeholders, comma-separated, for an `IN` list.
fn id_list(dialect: Dialect, ids: usize) -> String {
    let mut p = Placeholders::new(dialect);
    match dialect {
        Dialect::Postgres => {
            let list: Vec<String> = (0..ids).map(|_| p.next()).collect();
            list.join(", ")
        }
        Dialect::Sqlite | Dialect::MySql => vec!["?"; ids].join(", "),
    }
}

/// PostgreSQL's commit of a batch of fires in one statement (atomic by itself): the rows to
/// write come as arrays, one per column (`$1` ids, `$2` run times in microseconds, `$3` their
/// readable copies, `$4` new revisions, `$5` functions, `$6` trigger kinds, `$7` JSON, `$8`
/// the revisions expected), the rows to remove as `$9` ids and `$10` revisions expected.
/// Each row is written only at its expected revision; answers the ids of those written.
///
/// With `beat` (a heartbeat upsert whose values are `$11` to `$13`), the heartbeat is written
/// by the same statement: a data-modifying `WITH` runs whether or not the query reads it.
pub(crate) fn commit_fires_postgres(table: &str, beat: Option<&str>) -> SqlStr {
    let beat = beat.map_or_else(String::new, |upsert| format!("beat AS ({upsert}), "));
    sql(format!(
        "WITH {beat}written AS (UPDATE {table} AS t SET next_run_micros = v.micros, next_run_time = \
         CAST(v.readable AS TIMESTAMPTZ), revision = v.revision, func = v.func, trigger_kind = \
         v.kind, job_state = v.state, {CLEAR_CLAIM} FROM unnest($1::text[], $2::bigint[], \
         $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::bigint[]) AS v(id, \
         micros, readable, revision, func, kind, state, expected) WHERE t.id = v.id AND \
         t.revision = v.expected RETURNING t.id), removed AS (DELETE FROM {table} AS t USING \
         unnest($9::text[], $10::bigint[]) AS v(id, expected) WHERE t.id = v.id AND t.revision \
         = v.expected RETURNING t.id) SELECT id FROM written UNION ALL SELECT id FROM removed"
    ))
}

/// The statements that create the table and its index if they are missing. `mariadb` picks
/// the binary collation without trailing-space padding that the server has.
pub(crate) fn create_schema(dialect: Dialect, table: &str, mariadb: bool) -> Vec<SqlStr> {
    let index = index_name(table);
    let statements = match dialect {
        Dialect::Postgres => vec![
            // COLLATE "C": ids order by their bytes, as the contract says, whatever the
            // database's locale.
            format!(
                "CREATE TABLE IF NOT EXISTS {table} (\
                 id TEXT COLLATE \"C\" NOT NULL PRIMARY KEY, \
                 next_run_micros BIGINT, \
                 next_run_time TIMESTAMPTZ, \
                 revision BIGINT NOT NULL, \
                 func TEXT, \
                 trigger_kind TEXT, \
                 job_state TEXT NOT NULL, \
                 claimed_by TEXT, \
                 claim_token TEXT, \
                 claim_until BIGINT)"
            ),
            format!("CREATE INDEX IF NOT EXISTS {index} ON {table} (next_run_micros, id)"),
        ],
        Dialect::Sqlite => vec![
            format!(
                "CREATE TABLE IF NOT EXISTS {table} (\
                 id TEXT NOT NULL PRIMARY KEY, \
                 next_run_micros INTEGER, \
                 next_run_time TEXT, \
                 revision INTEGER NOT NULL, \
                 func TEXT, \
                 trigger_kind TEXT, \
                 job_state TEXT NOT NULL, \
                 claimed_by TEXT, \
                 claim_token TEXT, \
                 claim_until INTEGER)"
            ),
            format!("CREATE INDEX IF NOT EXISTS {index} ON {table} (next_run_micros, id)"),
        ],
        Dialect::MySql => {
            // A binary collation that does not pad: "a" and "a " are two ids, ordered by
            // their bytes. MariaDB and MySQL 8 name it differently.
            let collation = if mariadb {
                "utf8mb4_nopad_bin"
            } else {
                "utf8mb4_0900_bin"
            };
            vec![format!(
                "CREATE TABLE IF NOT EXISTS {table} (\
                 id VARCHAR(191) CHARACTER SET utf8mb4 COLLATE {collation} NOT NULL PRIMARY KEY, \
                 next_run_micros BIGINT NULL, \
                 next_run_time DATETIME(6) NULL, \
                 revision BIGINT NOT NULL, \
                 func VARCHAR(255) CHARACTER SET utf8mb4 NULL, \
                 trigger_kind VARCHAR(255) CHARACTER SET utf8mb4 NULL, \
                 job_state LONGTEXT CHARACTER SET utf8mb4 NOT NULL, \
                 claimed_by VARCHAR(191) CHARACTER SET utf8mb4 COLLATE {collation} NULL, \
                 claim_token VARCHAR(64) CHARACTER SET utf8mb4 NULL, \
                 claim_until BIGINT NULL, \
                 INDEX {index} (next_run_micros, id)) ENGINE = InnoDB"
            )]
        }
    };
    statements.into_iter().map(sql).collect()
}

/// The run-time index's name: `<table>_next_run`, shortened with a hash of the table name
/// where that would pass the 63 bytes PostgreSQL keeps of a name.
pub(crate) fn index_name(table: &str) -> String {
    derived_name(table, "next_run")
}

/// A name derived from the table's, `<table>_<suffix>` (the index, the cluster tables, the
/// notification channel), shortened with a hash of the table name where that would pass the
/// 63 bytes PostgreSQL keeps of a name. `suffix` is at most 12 bytes.
pub(crate) fn derived_name(table: &str, suffix: &str) -> String {
    let name = format!("{table}_{suffix}");
    if name.len() <= 63 {
        return name;
    }
    // FNV-1a: stable across builds and platforms, unlike the std hasher.
    let hash = table.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{}_{:08x}_{suffix}", &table[..40], hash as u32)
}

/// Whether `name` may be used as a table name: an identifier of ASCII letters, digits and
/// underscores, not starting with a digit, at most 63 characters, so it needs no quoting in
/// any dialect and cannot inject SQL.
pub(crate) fn valid_table_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 63
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_plain_identifiers() {
        for good in ["apscheduler_jobs", "_x", "Jobs2", &"a".repeat(63)] {
            assert!(valid_table_name(good), "{good}");
        }
        for bad in [
            "",
            "1jobs",
            "jobs;drop table x",
            "jobs-2",
            "\"jobs\"",
            "jobs ",
            "jöbs",
            &"a".repeat(64),
        ] {
            assert!(!valid_table_name(bad), "{bad}");
        }
    }

    #[test]
    fn index_names_stay_within_63_bytes_and_distinct() {
        assert_eq!(index_name("jobs"), "jobs_next_run");
        let a = index_name(&format!("{}a", "x".repeat(62)));
        let b = index_name(&format!("{}b", "x".repeat(62)));
        assert!(a.len() <= 63 && b.len() <= 63);
        assert_ne!(a, b);
    }

    #[test]
    fn placeholders_follow_each_dialect() {
        let pg = Queries::new(Dialect::Postgres, "t");
        assert!(
            pg.update
                .as_str()
                .contains("WHERE id = $7 AND revision = $8")
        );
        assert!(
            pg.upsert
                .as_str()
                .contains("($1, $2, CAST($3 AS TIMESTAMPTZ), $4")
        );
        let my = Queries::new(Dialect::MySql, "t");
        assert_eq!(my.update.as_str().matches('?').count(), 8);
        let lite = insert_many(Dialect::Sqlite, "t", 2);
        assert!(
            lite.as_str()
                .ends_with("VALUES (?, ?, ?, ?, ?, ?, ?), (?, ?, ?, ?, ?, ?, ?)"),
            "{}",
            lite.as_str()
        );
        let my = existing_ids(Dialect::MySql, "t", 3);
        assert!(my.as_str().ends_with("IN (?, ?, ?)"), "{}", my.as_str());
    }

    #[test]
    fn readable_times_fit_each_column_type() {
        let t = DateTime::from_timestamp_micros(1_767_225_600_123_456).unwrap();
        assert_eq!(
            Dialect::Postgres.readable_time(t).unwrap(),
            "2026-01-01 00:00:00.123456+00"
        );
        let early = crate::records::micros_bounds().0;
        let early = DateTime::from_timestamp_micros(early).unwrap();
        assert_eq!(Dialect::MySql.readable_time(early), None);
        assert_eq!(
            Dialect::Sqlite.readable_time(early).unwrap(),
            "0001-01-01 00:00:00.000000"
        );
    }

    #[test]
    fn readable_times_are_written_as_chrono_formats_them() {
        use chrono::{NaiveDate, TimeZone};

        let (min, max) = crate::records::micros_bounds();
        let chrono = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%S%.6f").to_string();
        let mut micros = min;
        // Steps of a prime number of microseconds cover every field's digits.
        while micros <= max {
            let t = DateTime::from_timestamp_micros(micros).unwrap();
            assert_eq!(readable_utc(t), chrono(t));
            micros += 1_000_003_999_999_937;
        }
        let leap = NaiveDate::from_ymd_opt(2016, 12, 31)
            .unwrap()
            .and_hms_micro_opt(23, 59, 59, 1_500_000)
            .unwrap();
        let leap = Utc.from_utc_datetime(&leap);
        assert_eq!(readable_utc(leap), chrono(leap));
        let far = DateTime::from_timestamp_micros(max + 86_400_000_000).unwrap();
        assert_eq!(readable_utc(far), chrono(far));
    }
}

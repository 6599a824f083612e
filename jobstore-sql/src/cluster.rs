//! Several schedulers on one table: claims on due rows, node heartbeats, runs in flight. The
//! statements per dialect, and the [`SqlRecords`] calls that run them.
//!
//! Two tables beside the jobs table, named from it: `<table>_nodes` (one row per scheduler
//! node: its heartbeat) and `<table>_runs` (runs of jobs with recovery on or `max_instances`
//! counted across nodes, in flight on a node). Claims are three nullable columns of the jobs table (`claimed_by`, `claim_token`,
//! `claim_until`), added in place to a table created before them.

use chrono::{DateTime, Utc};
use scheduler_core::store::{Claim, InflightRun, NodeRecord, StoredRecord, from_micros, to_micros};
use scheduler_core::{Error, ErrorKind, Result};
use sqlx::SqlStr;

use crate::dialect::{self, CLEAR_CLAIM, Dialect, RECORD_COLUMNS};
use crate::pool::{Arg, Row, Shape, Step};
use crate::records::{SqlRecords, micros_bounds};

/// The longest node id the tables hold on MySQL (a utf8mb4 key), in characters.
const MYSQL_MAX_NODE_CHARS: usize = 191;

/// The cluster statements of one table, built once per store.
#[derive(Debug, Clone)]
pub(crate) struct ClusterQueries {
    dialect: Dialect,
    table: String,
    pub(crate) nodes_table: String,
    pub(crate) runs_table: String,
    /// PostgreSQL's notification channel for this table.
    pub(crate) channel: String,
    /// PostgreSQL, SQLite: the claiming `UPDATE … RETURNING`; MySQL: the locking read of the
    /// claimable rows (the `UPDATE` follows in the same transaction).
    claim: SqlStr,
    /// The rows `claim` would take, read without claiming them (the first batch of a start).
    unclaimed: SqlStr,
    pub(crate) heartbeat: SqlStr,
    nodes: SqlStr,
    remove_node: SqlStr,
    finish_run: SqlStr,
    /// PostgreSQL, SQLite: `UPDATE … RETURNING`; MySQL: the locking read (then the update).
    adopt: SqlStr,
    adopt_update: SqlStr,
    inflight: SqlStr,
    pub(crate) count: SqlStr,
    pub(crate) notify: SqlStr,
    /// Reads the claim columns: fails on a table created before them.
    claim_probe: SqlStr,
    /// Answers 1 when the whole schema is in place (see [`schema_probe`]).
    pub(crate) schema_probe: SqlStr,
}

fn sql(text: String) -> SqlStr {
    // Safe: the only text spliced in is the validated table name and names derived from it;
    // values are always bound.
    sqlx::SqlSafeStr::into_sql_str(sqlx::AssertSqlSafe(text))
}

/// `n` placeholders of `dialect`, numbered from `first`.
fn placeholders(dialect: Dialect, first: usize, n: usize) -> Vec<String> {
    (first..first + n)
        .map(|i| match dialect {
            Dialect::Postgres => format!("${i}"),
            Dialect::Sqlite => format!("?{i}"),
            Dialect::MySql => "?".to_owned(),
        })
        .collect()
}

/// One read-only statement that answers 1 when everything `start` would create is there:
/// the job table with every column this store uses (claim columns included), the cluster
/// tables and the run-time index; it fails, or answers 0, otherwise. Every start after the
/// first takes this path: the `CREATE … IF NOT EXISTS` statements it replaces cost a round
/// trip each, PostgreSQL's an advisory lock in a transaction, MySQL's the server version
/// first, all before the first run.
fn schema_probe(dialect: Dialect, table: &str, nodes: &str, runs: &str) -> SqlStr {
    let index = dialect::index_name(table);
    // The names are validated identifiers (or derived from one): nothing to escape.
    let index_count = match dialect {
        Dialect::Sqlite => {
            format!(
                "(SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = '{index}')"
            )
        }
        Dialect::Postgres => format!("(SELECT COUNT(to_regclass('{index}')))"),
        // Created within CREATE TABLE: there whenever the table is.
        Dialect::MySql => "1".to_owned(),
    };
    let empty = |columns: &str, from: &str| {
        format!("(SELECT COUNT(*) FROM (SELECT {columns} FROM {from} WHERE 1 = 0) AS probe)")
    };
    let sum = format!(
        "{index_count} + {} + {} + {}",
        empty(
            &format!("{}, claimed_by, claim_token, claim_until", dialect::COLUMNS),
            table
        ),
        empty("id, last_seen_micros, info", nodes),
        empty("job_id, run_micros, node", runs),
    );
    sql(match dialect {
        Dialect::MySql => format!("SELECT CAST({sum} AS SIGNED)"),
        Dialect::Postgres | Dialect::Sqlite => format!("SELECT {sum}"),
    })
}

/// The upsert of a node's heartbeat into `nodes_table`, its values (id, last seen, info) at
/// placeholders from `first`.
fn upsert_node(dialect: Dialect, nodes_table: &str, first: usize) -> String {
    let p = placeholders(dialect, first, 3);
    let insert = format!(
        "INSERT INTO {nodes_table} (id, last_seen_micros, info) VALUES ({}, {}, {})",
        p[0], p[1], p[2]
    );
    match dialect {
        Dialect::Postgres | Dialect::Sqlite => format!(
            "{insert} ON CONFLICT (id) DO UPDATE SET last_seen_micros = \
             excluded.last_seen_micros, info = excluded.info"
        ),
        Dialect::MySql => format!(
            "{insert} ON DUPLICATE KEY UPDATE last_seen_micros = VALUES(last_seen_micros), \
             info = VALUES(info)"
        ),
    }
}

impl ClusterQueries {
    pub(crate) fn new(dialect: Dialect, table: &str) -> Self {
        let nodes_table = dialect::derived_name(table, "nodes");
        let runs_table = dialect::derived_name(table, "runs");
        let channel = dialect::derived_name(table, "wakeup");
        let (min, _) = micros_bounds();
        let ph = |n| placeholders(dialect, 1, n);
        // A row is claimable when no claim holds it, its claim lapsed, or this node holds it.
        let claim = match dialect {
            Dialect::Postgres | Dialect::Sqlite => {
                let p = ph(5);
                let (node, token, until, now, limit) = (&p[0], &p[1], &p[2], &p[3], &p[4]);
                // PostgreSQL: rows another claim is taking right now are skipped, not waited
                // for; SQLite runs the statement as one write transaction.
                let lock = if dialect == Dialect::Postgres {
                    " FOR UPDATE SKIP LOCKED"
                } else {
                    ""
                };
                format!(
                    "UPDATE {table} SET claimed_by = {node}, claim_token = {token}, claim_until = \
                     {until} WHERE id IN (SELECT id FROM {table} WHERE next_run_micros >= {min} \
                     AND next_run_micros <= {now} AND (claim_until IS NULL OR claim_until <= \
                     {now} OR claimed_by = {node}) ORDER BY next_run_micros, id LIMIT \
                     {limit}{lock}) RETURNING {RECORD_COLUMNS}"
                )
            }
            Dialect::MySql => format!(
                "SELECT {RECORD_COLUMNS} FROM {table} WHERE next_run_micros >= {min} AND \
                 next_run_micros <= ? AND (claim_until IS NULL OR claim_until <= ? OR claimed_by \
                 = ?) ORDER BY next_run_micros, id LIMIT ? FOR UPDATE SKIP LOCKED"
            ),
        };
        let unclaimed = {
            let p = ph(3);
            let (node, now, limit) = (&p[0], &p[1], &p[2]);
            format!(
                "SELECT {RECORD_COLUMNS} FROM {table} WHERE next_run_micros >= {min} AND \
                 next_run_micros <= {now} AND (claim_until IS NULL OR claim_until <= {now} OR \
                 claimed_by = {node}) ORDER BY next_run_micros, id LIMIT {limit}"
            )
        };
        let remove_node = {
            let p = ph(2);
            format!(
                "DELETE FROM {nodes_table} WHERE id = {} AND last_seen_micros = {}",
                p[0], p[1]
            )
        };
        let finish_run = {
            let p = ph(2);
            format!(
                "DELETE FROM {runs_table} WHERE job_id = {} AND run_micros = {}",
                p[0], p[1]
            )
        };
        let (adopt, adopt_update) = {
            let p = ph(2);
            let update = format!(
                "UPDATE {runs_table} SET node = {} WHERE node = {}",
                p[0], p[1]
            );
            match dialect {
                Dialect::Postgres | Dialect::Sqlite => (
                    format!("{update} RETURNING job_id, run_micros, node"),
                    update,
                ),
                Dialect::MySql => (
                    format!(
                        "SELECT job_id, run_micros, node FROM {runs_table} WHERE node = ? FOR \
                         UPDATE"
                    ),
                    update,
                ),
            }
        };
        let count = match dialect {
            // MySQL's COUNT is unsigned for some servers; the driver reads a signed integer.
            Dialect::MySql => format!("SELECT CAST(COUNT(*) AS SIGNED) FROM {table}"),
            Dialect::Postgres | Dialect::Sqlite => format!("SELECT COUNT(*) FROM {table}"),
        };
        ClusterQueries {
            dialect,
            table: table.to_owned(),
            claim: sql(claim),
            unclaimed: sql(unclaimed),
            heartbeat: sql(upsert_node(dialect, &nodes_table, 1)),
            nodes: sql(format!(
                "SELECT id, last_seen_micros, info FROM {nodes_table}"
            )),
            remove_node: sql(remove_node),
            finish_run: sql(finish_run),
            adopt: sql(adopt),
            adopt_update: sql(adopt_update),
            inflight: sql(format!("SELECT job_id, run_micros, node FROM {runs_table}")),
            count: sql(count),
            notify: sql("SELECT pg_notify($1, $2)".to_owned()),
            claim_probe: sql(format!(
                "SELECT claimed_by, claim_token, claim_until FROM {table} WHERE 1 = 0"
            )),
            schema_probe: schema_probe(dialect, table, &nodes_table, &runs_table),
            nodes_table,
            runs_table,
            channel,
        }
    }

    /// The heartbeat upsert, its values (id, last seen, info) at placeholders from `first`.
    pub(crate) fn upsert_node(&self, first: usize) -> String {
        upsert_node(self.dialect, &self.nodes_table, first)
    }

    /// Sets the claim of the rows `ids` (MySQL's second step of a claim).
    fn claim_rows(&self, ids: usize) -> SqlStr {
        let list = placeholders(self.dialect, 4, ids).join(", ");
        let p = placeholders(self.dialect, 1, 3);
        sql(format!(
            "UPDATE {} SET claimed_by = {}, claim_token = {}, claim_until = {} WHERE id IN \
             ({list})",
            self.table, p[0], p[1], p[2]
        ))
    }

    /// Clears the claims `node` holds on the rows `ids`.
    fn release(&self, ids: usize) -> SqlStr {
        let p = placeholders(self.dialect, 1, 1);
        let list = placeholders(self.dialect, 2, ids).join(", ");
        sql(format!(
            "UPDATE {} SET {CLEAR_CLAIM} WHERE claimed_by = {} AND id IN ({list})",
            self.table, p[0]
        ))
    }

    /// Records `runs` runs in flight (job id, run time, node); a run recorded already is
    /// given to the node named now.
    pub(crate) fn record_runs(&self, runs: usize) -> SqlStr {
        let rows: Vec<String> = self
            .run_placeholders(runs)
            .iter()
            .map(|p| format!("({})", p.join(", ")))
            .collect();
        let insert = format!(
            "INSERT INTO {} (job_id, run_micros, node) VALUES {}",
            self.runs_table,
            rows.join(", ")
        );
        sql(self.on_conflict(insert))
    }

    /// Records `runs` runs in flight as [`record_runs`](Self::record_runs) does, but only
    /// while fewer than a limit of the job's runs are in flight on nodes that have a
    /// heartbeat row. Arguments: the runs' (job id, run time, node), then the job id and the
    /// limit. Run after the job's fire commit, whose row lock orders it against the job's
    /// other commits; the count is a derived table, as MySQL reads the table it inserts into.
    pub(crate) fn record_runs_below(&self, runs: usize) -> SqlStr {
        let rows: Vec<String> = self
            .run_placeholders(runs)
            .iter()
            .enumerate()
            .map(|(i, p)| {
                if i == 0 {
                    format!(
                        "SELECT {} AS job_id, {} AS run_micros, {} AS node",
                        p[0], p[1], p[2]
                    )
                } else {
                    format!("SELECT {}", p.join(", "))
                }
            })
            .collect();
        let bound = placeholders(self.dialect, 1 + 3 * runs, 2);
        let insert = format!(
            "INSERT INTO {runs} (job_id, run_micros, node) SELECT fired.job_id, \
             fired.run_micros, fired.node FROM ({rows}) fired, (SELECT COUNT(*) AS n FROM {runs} \
             r JOIN {nodes} l ON l.id = r.node WHERE r.job_id = {job}) live WHERE live.n < {limit}",
            runs = self.runs_table,
            nodes = self.nodes_table,
            rows = rows.join(" UNION ALL "),
            job = bound[0],
            limit = bound[1],
        );
        sql(self.on_conflict(insert))
    }

    /// The placeholders of `runs` runs' (job id, run time, node), three each, in order.
    fn run_placeholders(&self, runs: usize) -> Vec<Vec<String>> {
        (0..runs)
            .map(|i| placeholders(self.dialect, 1 + 3 * i, 3))
            .collect()
    }

    /// `insert` into the runs table, giving a run recorded already to the node named now.
    fn on_conflict(&self, insert: String) -> String {
        match self.dialect {
            Dialect::Postgres | Dialect::Sqlite => format!(
                "{insert} ON CONFLICT (job_id, run_micros) DO UPDATE SET node = excluded.node"
            ),
            Dialect::MySql => format!("{insert} ON DUPLICATE KEY UPDATE node = VALUES(node)"),
        }
    }

    /// The statements that create the nodes and runs tables if they are missing.
    pub(crate) fn create_tables(&self, mariadb: bool) -> Vec<SqlStr> {
        let (nodes, runs) = (&self.nodes_table, &self.runs_table);
        let statements = match self.dialect {
            Dialect::Postgres => vec![
                format!(
                    "CREATE TABLE IF NOT EXISTS {nodes} (id TEXT COLLATE \"C\" NOT NULL PRIMARY \
                     KEY, last_seen_micros BIGINT NOT NULL, info TEXT NOT NULL)"
                ),
                format!(
                    "CREATE TABLE IF NOT EXISTS {runs} (job_id TEXT COLLATE \"C\" NOT NULL, \
                     run_micros BIGINT NOT NULL, node TEXT NOT NULL, PRIMARY KEY (job_id, \
                     run_micros))"
                ),
            ],
            Dialect::Sqlite => vec![
                format!(
                    "CREATE TABLE IF NOT EXISTS {nodes} (id TEXT NOT NULL PRIMARY KEY, \
                     last_seen_micros INTEGER NOT NULL, info TEXT NOT NULL)"
                ),
                format!(
                    "CREATE TABLE IF NOT EXISTS {runs} (job_id TEXT NOT NULL, run_micros \
                     INTEGER NOT NULL, node TEXT NOT NULL, PRIMARY KEY (job_id, run_micros))"
                ),
            ],
            Dialect::MySql => {
                let text = format!("VARCHAR(191) CHARACTER SET utf8mb4 COLLATE {}", {
                    if mariadb {
                        "utf8mb4_nopad_bin"
                    } else {
                        "utf8mb4_0900_bin"
                    }
                });
                vec![
                    format!(
                        "CREATE TABLE IF NOT EXISTS {nodes} (id {text} NOT NULL PRIMARY KEY, \
                         last_seen_micros BIGINT NOT NULL, info LONGTEXT CHARACTER SET utf8mb4 \
                         NOT NULL) ENGINE = InnoDB"
                    ),
                    format!(
                        "CREATE TABLE IF NOT EXISTS {runs} (job_id {text} NOT NULL, run_micros \
                         BIGINT NOT NULL, node {text} NOT NULL, PRIMARY KEY (job_id, \
                         run_micros)) ENGINE = InnoDB"
                    ),
                ]
            }
        };
        statements.into_iter().map(sql).collect()
    }

    /// The statements that add the claim columns to a jobs table created before them.
    pub(crate) fn add_claim_columns(&self, mariadb: bool) -> Vec<SqlStr> {
        let table = &self.table;
        let columns = match self.dialect {
            Dialect::Postgres => {
                ["claimed_by TEXT", "claim_token TEXT", "claim_until BIGINT"].map(str::to_owned)
            }
            Dialect::Sqlite => {
                ["claimed_by TEXT", "claim_token TEXT", "claim_until INTEGER"].map(str::to_owned)
            }
            Dialect::MySql => {
                let collation = if mariadb {
                    "utf8mb4_nopad_bin"
                } else {
                    "utf8mb4_0900_bin"
                };
                [
                    format!(
                        "claimed_by VARCHAR(191) CHARACTER SET utf8mb4 COLLATE {collation} NULL"
                    ),
                    "claim_token VARCHAR(64) CHARACTER SET utf8mb4 NULL".to_owned(),
                    "claim_until BIGINT NULL".to_owned(),
                ]
            }
        };
        columns
            .into_iter()
            .map(|c| sql(format!("ALTER TABLE {table} ADD COLUMN {c}")))
            .collect()
    }
}

impl SqlRecords {
    /// Creates the cluster tables, and adds the claim columns to a jobs table that lacks them
    /// (one made by an earlier version). Another process upgrading the same table at the same
    /// moment is fine: the final probe decides.
    pub(crate) async fn create_cluster_schema(
        &self,
        pool: &crate::pool::Pool,
        mariadb: bool,
    ) -> Result<()> {
        // PostgreSQL created them with the job table, under its schema lock.
        let creates = match self.url.dialect {
            Dialect::Postgres => Vec::new(),
            Dialect::Sqlite | Dialect::MySql => self.cluster.create_tables(mariadb),
        };
        for statement in creates {
            self.bounded(
                "creating the cluster tables",
                pool.execute(statement, Vec::new()),
            )
            .await?;
        }
        let probe = || pool.fetch(self.cluster.claim_probe.clone(), Vec::new(), Shape::Id);
        if self
            .bounded("checking the claim columns", probe())
            .await
            .is_ok()
        {
            return Ok(());
        }
        let mut added = Ok(());
        for statement in self.cluster.add_claim_columns(mariadb) {
            let outcome = self
                .bounded(
                    "adding the claim columns",
                    pool.execute(statement, Vec::new()),
                )
                .await;
            if let Err(e) = outcome {
                added = Err(e);
            }
        }
        match self.bounded("checking the claim columns", probe()).await {
            Ok(_) => {
                tracing::info!(table = %self.table, "added the claim columns to the job table");
                Ok(())
            }
            Err(e) => Err(added.err().unwrap_or(e)),
        }
    }

    fn check_node_id(&self, node: &str) -> Result<()> {
        if self.url.dialect == Dialect::MySql && node.chars().count() > MYSQL_MAX_NODE_CHARS {
            return Err(Error::config(format!(
                "node id {node:?} is longer than the {MYSQL_MAX_NODE_CHARS} characters a MySQL \
                 job table holds"
            )));
        }
        Ok(())
    }

    pub(crate) async fn claim_due_rows(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        claim: &Claim,
    ) -> Result<Vec<StoredRecord>> {
        self.check_node_id(&claim.node)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let (now, until) = (to_micros(now), to_micros(claim.until));
        let pool = self.pool()?;
        let mut rows = match self.url.dialect {
            Dialect::Postgres | Dialect::Sqlite => {
                let args = vec![
                    Arg::Text(claim.node.clone()),
                    Arg::Text(claim.token.clone()),
                    Arg::Int(until),
                    Arg::Int(now),
                    Arg::Int(limit),
                ];
                self.bounded(
                    "claiming due jobs",
                    pool.fetch(self.cluster.claim.clone(), args, Shape::Record),
                )
                .await?
            }
            Dialect::MySql => {
                let select = Step::new(
                    self.cluster.claim.clone(),
                    vec![
                        Arg::Int(now),
                        Arg::Int(now),
                        Arg::Text(claim.node.clone()),
                        Arg::Int(limit),
                    ],
                );
                let then = |rows: &[Row]| {
                    if rows.is_empty() {
                        return Vec::new();
                    }
                    let mut args = vec![
                        Arg::Text(claim.node.clone()),
                        Arg::Text(claim.token.clone()),
                        Arg::Int(until),
                    ];
                    args.extend(rows.iter().map(|r| Arg::Text(r.id.clone())));
                    vec![Step::new(self.cluster.claim_rows(rows.len()), args)]
                };
                self.bounded(
                    "claiming due jobs",
                    pool.read_then_write(vec![select], Shape::Record, then),
                )
                .await?
            }
        };
        // `RETURNING` answers in no particular order.
        rows.sort_by(|a, b| (a.micros, &a.id).cmp(&(b.micros, &b.id)));
        Ok(rows.into_iter().map(|row| self.record(row)).collect())
    }

    pub(crate) async fn due_unclaimed_rows(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        node: &str,
    ) -> Result<Vec<StoredRecord>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let now = to_micros(now);
        // MySQL's `?` are positional: the node, then `now` twice.
        let args = match self.url.dialect {
            Dialect::MySql => vec![
                Arg::Int(now),
                Arg::Int(now),
                Arg::Text(node.to_owned()),
                Arg::Int(limit),
            ],
            Dialect::Postgres | Dialect::Sqlite => {
                vec![Arg::Text(node.to_owned()), Arg::Int(now), Arg::Int(limit)]
            }
        };
        let rows = self
            .fetch(
                "reading the due jobs",
                &self.cluster.unclaimed,
                args,
                Shape::Record,
            )
            .await?;
        Ok(rows.into_iter().map(|row| self.record(row)).collect())
    }

    pub(crate) async fn release_claimed(&self, node: &str, ids: &[String]) -> Result<()> {
        for chunk in ids.chunks(self.url.dialect.rows_per_statement()) {
            let mut args = vec![Arg::Text(node.to_owned())];
            args.extend(chunk.iter().map(|id| Arg::Text(id.clone())));
            self.execute("releasing claims", &self.cluster.release(chunk.len()), args)
                .await?;
        }
        Ok(())
    }

    pub(crate) async fn write_heartbeat(&self, node: &NodeRecord) -> Result<()> {
        let args = self.heartbeat_args(node)?;
        self.execute("writing the heartbeat", &self.cluster.heartbeat, args)
            .await?;
        // A newer heartbeat replaces the one kept since the start.
        drop(self.joined().take());
        Ok(())
    }

    /// The values of `node`'s heartbeat, in the order of the heartbeat upsert.
    pub(crate) fn heartbeat_args(&self, node: &NodeRecord) -> Result<Vec<Arg>> {
        self.check_node_id(&node.id)?;
        Ok(vec![
            Arg::Text(node.id.clone()),
            Arg::Int(to_micros(node.last_seen)),
            Arg::Text(node.info.clone()),
        ])
    }

    /// Keeps this node's first heartbeat since the start for the first fire commit (see
    /// `RecordStore::join`).
    pub(crate) fn keep_joined(&self, node: &NodeRecord) -> Result<()> {
        self.check_node_id(&node.id)?;
        *self.joined() = Some(node.clone());
        Ok(())
    }

    /// Writes the kept first heartbeat, if any: before the nodes or the runs in flight are
    /// read, so that this node is listed once its start is over.
    pub(crate) async fn write_joined(&self) -> Result<()> {
        let Some(node) = self.joined().take() else {
            return Ok(());
        };
        let args = self.heartbeat_args(&node)?;
        let written = self
            .execute("writing the heartbeat", &self.cluster.heartbeat, args)
            .await;
        if written.is_err() {
            self.joined().get_or_insert(node);
        }
        written.map(drop)
    }

    pub(crate) async fn read_nodes(&self) -> Result<Vec<NodeRecord>> {
        let rows = self
            .fetch(
                "reading the nodes",
                &self.cluster.nodes,
                Vec::new(),
                Shape::Triple,
            )
            .await?;
        rows.into_iter()
            .map(|row| {
                Ok(NodeRecord {
                    last_seen: self.cluster_time(row.micros, "last_seen_micros", &row.id)?,
                    id: row.id,
                    info: row.json,
                })
            })
            .collect()
    }

    pub(crate) async fn delete_node(&self, id: &str, last_seen: DateTime<Utc>) -> Result<bool> {
        let args = vec![Arg::Text(id.to_owned()), Arg::Int(to_micros(last_seen))];
        let removed = self
            .execute("removing a node", &self.cluster.remove_node, args)
            .await?;
        Ok(removed > 0)
    }

    /// The step that records `node`'s `runs` of `job_id` in flight, run only if the step before
    /// it (the job's fire commit) applied; with `max_inflight`, only while fewer of the job's
    /// runs are in flight on listed nodes (it then changes no row when refused).
    pub(crate) fn inflight_step(
        &self,
        job_id: &str,
        node: &str,
        runs: &[DateTime<Utc>],
        max_inflight: Option<u32>,
    ) -> Result<Option<Step>> {
        if runs.is_empty() {
            return Ok(None);
        }
        self.check_node_id(node)?;
        let mut args = Vec::with_capacity(runs.len() * 3 + 2);
        for run in runs {
            args.push(Arg::Text(job_id.to_owned()));
            args.push(Arg::Int(to_micros(*run)));
            args.push(Arg::Text(node.to_owned()));
        }
        let sql = match max_inflight {
            Some(limit) => {
                args.push(Arg::Text(job_id.to_owned()));
                args.push(Arg::Int(i64::from(limit)));
                self.cluster.record_runs_below(runs.len())
            }
            None => self.cluster.record_runs(runs.len()),
        };
        Ok(Some(Step {
            sql,
            args,
            if_applied: true,
        }))
    }

    pub(crate) async fn delete_run(&self, job_id: &str, run_time: DateTime<Utc>) -> Result<()> {
        let args = vec![Arg::Text(job_id.to_owned()), Arg::Int(to_micros(run_time))];
        self.execute("finishing a run", &self.cluster.finish_run, args)
            .await?;
        Ok(())
    }

    pub(crate) async fn move_runs(&self, from: &str, to: &str) -> Result<Vec<InflightRun>> {
        self.check_node_id(to)?;
        let pool = self.pool()?;
        let rows = match self.url.dialect {
            Dialect::Postgres | Dialect::Sqlite => {
                let args = vec![Arg::Text(to.to_owned()), Arg::Text(from.to_owned())];
                self.bounded(
                    "adopting runs",
                    pool.fetch(self.cluster.adopt.clone(), args, Shape::Triple),
                )
                .await?
            }
            Dialect::MySql => {
                // The locking read holds the rows until the update commits: a second caller
                // waits, then finds them moved.
                let select =
                    Step::new(self.cluster.adopt.clone(), vec![Arg::Text(from.to_owned())]);
                let then = |rows: &[Row]| {
                    (!rows.is_empty())
                        .then(|| {
                            Step::new(
                                self.cluster.adopt_update.clone(),
                                vec![Arg::Text(to.to_owned()), Arg::Text(from.to_owned())],
                            )
                        })
                        .into_iter()
                        .collect()
                };
                self.bounded(
                    "adopting runs",
                    pool.read_then_write(vec![select], Shape::Triple, then),
                )
                .await?
            }
        };
        self.runs(rows, Some(to))
    }

    pub(crate) async fn read_inflight(&self) -> Result<Vec<InflightRun>> {
        let rows = self
            .fetch(
                "reading the runs in flight",
                &self.cluster.inflight,
                Vec::new(),
                Shape::Triple,
            )
            .await?;
        self.runs(rows, None)
    }

    pub(crate) async fn count_rows(&self) -> Result<u64> {
        let rows = self
            .fetch(
                "counting the jobs",
                &self.cluster.count,
                Vec::new(),
                Shape::Count,
            )
            .await?;
        let count = rows.first().and_then(|r| r.micros).unwrap_or(0);
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Rows of the runs table as runs, on `node` when given (the node they were just moved to).
    fn runs(&self, rows: Vec<Row>, node: Option<&str>) -> Result<Vec<InflightRun>> {
        rows.into_iter()
            .map(|row| {
                Ok(InflightRun {
                    run_time: self.cluster_time(row.micros, "run_micros", &row.id)?,
                    node: node.map_or(row.json, str::to_owned),
                    job_id: row.id,
                })
            })
            .collect()
    }

    /// A time column of a cluster table; one no instant has (an operator's edit) is an error
    /// naming the row.
    fn cluster_time(&self, micros: Option<i64>, column: &str, key: &str) -> Result<DateTime<Utc>> {
        let bad = |what: String| {
            Error::new(
                ErrorKind::Backend,
                format!(
                    "{column} of {key:?} in the cluster tables of {} {what}",
                    self.table
                ),
            )
        };
        let micros = micros.ok_or_else(|| bad("is NULL".to_owned()))?;
        from_micros(micros).map_err(|e| bad(format!("is no time: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_skip_locked_rows_where_the_server_can() {
        let pg = ClusterQueries::new(Dialect::Postgres, "t");
        assert!(
            pg.claim
                .as_str()
                .contains("LIMIT $5 FOR UPDATE SKIP LOCKED) RETURNING")
        );
        let my = ClusterQueries::new(Dialect::MySql, "t");
        assert!(my.claim.as_str().ends_with("FOR UPDATE SKIP LOCKED"));
        assert_eq!(my.claim_rows(3).as_str().matches('?').count(), 6);
        let lite = ClusterQueries::new(Dialect::Sqlite, "t");
        assert!(!lite.claim.as_str().contains("FOR UPDATE"));
        assert!(
            lite.release(2)
                .as_str()
                .contains("claimed_by = ?1 AND id IN (?2, ?3)")
        );
    }

    #[test]
    fn cluster_names_derive_from_the_table_within_63_bytes() {
        let q = ClusterQueries::new(Dialect::Postgres, "jobs");
        assert_eq!(
            (
                q.nodes_table.as_str(),
                q.runs_table.as_str(),
                q.channel.as_str()
            ),
            ("jobs_nodes", "jobs_runs", "jobs_wakeup")
        );
        let long = ClusterQueries::new(Dialect::Postgres, &"x".repeat(63));
        for name in [&long.nodes_table, &long.runs_table, &long.channel] {
            assert!(name.len() <= 63, "{name}");
        }
        assert_ne!(long.nodes_table, long.runs_table);
    }

    #[test]
    fn in_flight_runs_are_one_multi_row_upsert() {
        let pg = ClusterQueries::new(Dialect::Postgres, "t");
        let sql = pg.record_runs(2);
        assert!(
            sql.as_str()
                .contains("VALUES ($1, $2, $3), ($4, $5, $6) ON CONFLICT"),
            "{}",
            sql.as_str()
        );
    }
}

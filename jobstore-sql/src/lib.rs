#![doc = include_str!("../README.md")]

mod adds;
mod cluster;
mod dialect;
mod fires;
#[cfg(feature = "postgres")]
mod notify;
mod pool;
mod records;
mod url;

use std::sync::Arc;
use std::time::Duration;

use scheduler_core::{
    Components, DynRecordStore, Error, RecordJobStore, RecordStoreFactory, Result,
};

pub use records::SqlRecords;

use crate::pool::PoolSettings;
use crate::url::StoreUrl;

/// A SQL job store: [`SqlRecords`] wrapped by scheduler-core's [`RecordJobStore`]. Build it
/// with [`builder`] or [`open`].
pub type SqlJobStore = RecordJobStore<SqlRecords>;

/// The table name APScheduler's `SQLAlchemyJobStore` uses, and the default.
pub const DEFAULT_TABLE: &str = "apscheduler_jobs";

/// A store on `url` with the default options (table `apscheduler_jobs`).
pub fn open(url: impl AsRef<str>) -> Result<SqlJobStore> {
    builder(url).build()
}

/// A builder for a store on `url`: `sqlite://path/to/jobs.sqlite` (created if missing),
/// `sqlite::memory:`, `postgres://user:password@host:5432/db`, `mysql://user:password@host/db`.
/// SQLAlchemy's driver suffixes (`postgresql+psycopg2://`) are accepted and ignored.
pub fn builder(url: impl AsRef<str>) -> SqlStoreBuilder {
    SqlStoreBuilder {
        url: url.as_ref().to_owned(),
        table: DEFAULT_TABLE.to_owned(),
        max_connections: 3,
        acquire_timeout: Duration::from_secs(5),
        call_timeout: Duration::from_secs(10),
    }
}

/// Options of a SQL job store; see [`builder`].
#[derive(Clone)]
pub struct SqlStoreBuilder {
    url: String,
    table: String,
    max_connections: u32,
    acquire_timeout: Duration,
    call_timeout: Duration,
}

impl std::fmt::Debug for SqlStoreBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url =
            StoreUrl::parse(&self.url).map_or_else(|_| "<invalid>".to_owned(), |u| u.redacted);
        f.debug_struct("SqlStoreBuilder")
            .field("url", &url)
            .field("table", &self.table)
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("call_timeout", &self.call_timeout)
            .finish()
    }
}

impl SqlStoreBuilder {
    /// The table to keep jobs in (default `apscheduler_jobs`): ASCII letters, digits and
    /// underscores, not starting with a digit, at most 63 characters.
    pub fn tablename(mut self, table: impl Into<String>) -> Self {
        self.table = table.into();
        self
    }

    /// The most connections the store opens (default 3: the loop, the heartbeat and the runs'
    /// ends each have one; SQLite in memory always uses one). On PostgreSQL a started store
    /// also holds one connection to LISTEN for wake-ups: count `max_connections + 1` per
    /// scheduler node against the server's limit (100 by default, 97 of them for ordinary
    /// users: 24 nodes with the defaults).
    pub fn max_connections(mut self, max: u32) -> Self {
        self.max_connections = max;
        self
    }

    /// How long a call waits for a free or new connection (default 5 s).
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// How long one store call may take in all (default 10 s); also the server-side statement
    /// and lock timeouts.
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// The store's rows, without the adapter (to wrap in a [`RecordJobStore`] yourself).
    pub fn build_records(self) -> Result<SqlRecords> {
        let url = StoreUrl::parse(&self.url)?;
        if !dialect::valid_table_name(&self.table) {
            return Err(Error::config(format!(
                "table name {:?} is not a plain SQL identifier (ASCII letters, digits and \
                 underscores, not starting with a digit, at most 63 characters)",
                self.table
            )));
        }
        if !compiled_in(url.dialect) {
            return Err(Error::config(format!(
                "{} job stores need the `{}` feature of jobstore-sql",
                url.dialect.name(),
                url.dialect.feature()
            )));
        }
        if self.max_connections == 0 {
            return Err(Error::config("max_connections must be at least 1"));
        }
        for (name, value) in [
            ("acquire_timeout", self.acquire_timeout),
            ("call_timeout", self.call_timeout),
        ] {
            if value.is_zero() {
                return Err(Error::config(format!("{name} must be more than zero")));
            }
        }
        let settings = PoolSettings {
            max_connections: self.max_connections,
            acquire_timeout: self.acquire_timeout,
            statement_timeout: self.call_timeout,
        };
        Ok(SqlRecords::new(
            url,
            self.table,
            settings,
            self.call_timeout,
        ))
    }

    /// The job store. It connects, and creates its table if missing, when the scheduler
    /// starts it.
    pub fn build(self) -> Result<SqlJobStore> {
        Ok(RecordJobStore::new(self.build_records()?))
    }
}

fn compiled_in(dialect: dialect::Dialect) -> bool {
    match dialect {
        dialect::Dialect::Sqlite => cfg!(feature = "sqlite"),
        dialect::Dialect::Postgres => cfg!(feature = "postgres"),
        dialect::Dialect::MySql => cfg!(feature = "mysql"),
    }
}

/// Registers the SQL store for configuration documents as `"sqlalchemy"` (APScheduler's
/// name) and `"sql"`, serving `sqlite:`, `postgres://`, `postgresql://`, `mysql://` and
/// `mariadb://` URLs for [`Components::open_records`]. Options: `url` (required), `tablename` (default `apscheduler_jobs`),
/// `max_connections`, `acquire_timeout` and `call_timeout` (seconds).
///
/// ```
/// let components = scheduler_core::Components::new();
/// jobstore_sql::register(&components);
/// let entry: scheduler_core::ComponentConfig = serde_json::from_str(
///     r#"{"type": "sqlalchemy", "url": "sqlite::memory:", "tablename": "jobs"}"#,
/// )
/// .unwrap();
/// let store = components.build_jobstore("default", &entry).unwrap();
/// assert!(!store.capabilities().closures);
/// ```
pub fn register(components: &Components) {
    let factory: RecordStoreFactory = Arc::new(|options: &serde_json::Value| {
        let records = from_options(options)?;
        Ok(Arc::new(records) as Arc<dyn DynRecordStore>)
    });
    components.register_record_store("sqlalchemy", &[], factory.clone());
    components.register_record_store("sql", &SCHEMES, factory);
}

/// The URL schemes [`register`] serves, every dialect's (one this build lacks says which
/// feature it needs).
const SCHEMES: [&str; 5] = ["sqlite", "postgres", "postgresql", "mysql", "mariadb"];

fn from_options(options: &serde_json::Value) -> Result<SqlRecords> {
    let empty = serde_json::Map::new();
    let options = match options {
        serde_json::Value::Object(map) => map,
        serde_json::Value::Null => &empty,
        other => {
            return Err(Error::config(format!(
                "the SQL job store's options are a table, not {other}"
            )));
        }
    };
    let text = |key: &str| -> Result<Option<&str>> {
        match options.get(key) {
            None => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(Error::config(format!("the SQL job store's {key} is text"))),
        }
    };
    let seconds = |key: &str| -> Result<Option<Duration>> {
        match options.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .and_then(|s| Duration::try_from_secs_f64(s).ok())
                .filter(|d| !d.is_zero())
                .map(Some)
                .ok_or_else(|| {
                    Error::config(format!(
                        "the SQL job store's {key} is a number of seconds above 0"
                    ))
                }),
        }
    };
    for key in options.keys() {
        if !matches!(
            key.as_str(),
            "url" | "tablename" | "max_connections" | "acquire_timeout" | "call_timeout"
        ) {
            return Err(Error::config(format!(
                "the SQL job store has no option {key:?} (options: url, tablename, \
                 max_connections, acquire_timeout, call_timeout)"
            )));
        }
    }
    let url =
        text("url")?.ok_or_else(|| Error::config("the SQL job store needs a `url` option"))?;
    let mut builder = builder(url);
    if let Some(table) = text("tablename")? {
        builder = builder.tablename(table);
    }
    if let Some(max) = options.get("max_connections") {
        let max = max
            .as_u64()
            .and_then(|m| u32::try_from(m).ok())
            .ok_or_else(|| {
                Error::config("the SQL job store's max_connections is a whole number")
            })?;
        builder = builder.max_connections(max);
    }
    if let Some(t) = seconds("acquire_timeout")? {
        builder = builder.acquire_timeout(t);
    }
    if let Some(t) = seconds("call_timeout")? {
        builder = builder.call_timeout(t);
    }
    builder.build_records()
}

#[cfg(test)]
mod tests {
    use scheduler_core::{Components, ErrorKind};

    #[test]
    fn registration_serves_every_dialects_urls_with_the_options() {
        let components = Components::new();
        super::register(&components);
        assert_eq!(
            components.record_schemes(),
            ["mariadb", "mysql", "postgres", "postgresql", "sqlite"]
        );
        for url in [
            "sqlite::memory:",
            "postgresql+psycopg2://user:secret@localhost/test",
            "mariadb://root@localhost/test",
        ] {
            let mut options = serde_json::Map::new();
            options.insert("tablename".into(), "my_jobs".into());
            components.open_records(url, options).unwrap();
        }
        let mut options = serde_json::Map::new();
        options.insert("prefix".into(), "myapp.".into());
        let err = components
            .open_records("sqlite::memory:", options)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.to_string().contains("prefix"), "{err}");
    }
}

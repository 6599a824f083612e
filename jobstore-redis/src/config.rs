//! Building a store: the URL (and its redacted form), the keys, the timeouts; and the
//! factory for configuration documents.

use std::sync::Arc;
use std::time::Duration;

use scheduler_core::{Components, DynRecordStore, Error, RecordJobStore, Result};

use crate::RedisJobStore;
use crate::records::RedisRecords;

/// APScheduler's key prefix: its keys are `apscheduler.jobs` and `apscheduler.run_times`.
pub const DEFAULT_PREFIX: &str = "apscheduler.";

/// The server a store uses when none is named: the local default port, database 0.
pub const DEFAULT_URL: &str = "redis://127.0.0.1:6379/";

/// The longest key this store accepts, in bytes.
const MAX_KEY_LEN: usize = 256;

/// The keys of one store: the three of the jobs, the three that several schedulers share
/// (claims, in-flight runs, heartbeats), and the wake-up channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Keys {
    pub(crate) jobs: String,
    pub(crate) run_times: String,
    pub(crate) revisions: String,
    pub(crate) claims: String,
    pub(crate) inflight: String,
    pub(crate) nodes: String,
    /// A pub/sub channel, not a key; named like the keys so stores on one server stay apart.
    pub(crate) wakeup: String,
}

impl Keys {
    fn with_prefix(prefix: &str) -> Self {
        Keys {
            jobs: format!("{prefix}jobs"),
            run_times: format!("{prefix}run_times"),
            revisions: format!("{prefix}revisions"),
            claims: format!("{prefix}claims"),
            inflight: format!("{prefix}inflight"),
            nodes: format!("{prefix}nodes"),
            wakeup: format!("{prefix}wakeup"),
        }
    }

    /// The keys in the order every script receives them (`KEYS[1]` to `KEYS[7]`).
    pub(crate) fn all(&self) -> [&str; 7] {
        [
            &self.jobs,
            &self.run_times,
            &self.revisions,
            &self.claims,
            &self.inflight,
            &self.nodes,
            &self.wakeup,
        ]
    }
}

/// Options for a [`RedisJobStore`]; see [`RedisRecords::builder`].
///
/// ```
/// # fn main() -> scheduler_core::Result<()> {
/// use std::time::Duration;
///
/// let store = jobstore_redis::RedisRecords::builder("redis://:s3cret@127.0.0.1:6379/2")
///     .prefix("billing.scheduler.")
///     .response_timeout(Duration::from_secs(2))
///     .build()?; // connects when the scheduler starts it
/// // The password never shows.
/// assert!(!format!("{store:?}").contains("s3cret"));
/// assert_eq!(store.records().jobs_key(), "billing.scheduler.jobs");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStoreBuilder {
    url: String,
    prefix: String,
    jobs_key: Option<String>,
    run_times_key: Option<String>,
    revisions_key: Option<String>,
    response_timeout: Duration,
    connection_timeout: Duration,
    /// PEM certificates a `rediss://` server's certificate is checked against instead of the
    /// webpki roots.
    #[cfg(feature = "tls")]
    tls_roots: Option<Vec<u8>>,
}

impl std::fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut f = f.debug_struct("RedisStoreBuilder");
        f.field("url", &redact(&self.url))
            .field("prefix", &self.prefix)
            .field("jobs_key", &self.jobs_key)
            .field("run_times_key", &self.run_times_key)
            .field("revisions_key", &self.revisions_key)
            .field("response_timeout", &self.response_timeout)
            .field("connection_timeout", &self.connection_timeout);
        #[cfg(feature = "tls")]
        f.field("tls_root_certificates", &self.tls_roots.is_some());
        f.finish()
    }
}

impl RedisStoreBuilder {
    /// A builder for the server at `url`, with the default prefix and timeouts.
    pub fn new(url: impl Into<String>) -> Self {
        RedisStoreBuilder {
            url: url.into(),
            prefix: DEFAULT_PREFIX.to_owned(),
            jobs_key: None,
            run_times_key: None,
            revisions_key: None,
            response_timeout: Duration::from_secs(5),
            connection_timeout: Duration::from_secs(5),
            #[cfg(feature = "tls")]
            tls_roots: None,
        }
    }

    /// The prefix of the keys `{prefix}jobs`, `{prefix}run_times`, `{prefix}revisions`,
    /// `{prefix}claims`, `{prefix}inflight`, `{prefix}nodes` and the channel `{prefix}wakeup`;
    /// default `apscheduler.`. Keys set one by one win over it.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The hash of job records (APScheduler's `jobs_key`).
    pub fn jobs_key(mut self, key: impl Into<String>) -> Self {
        self.jobs_key = Some(key.into());
        self
    }

    /// The sorted set of run times (APScheduler's `run_times_key`).
    pub fn run_times_key(mut self, key: impl Into<String>) -> Self {
        self.run_times_key = Some(key.into());
        self
    }

    /// The hash of revisions (not in APScheduler). Default: `{prefix}revisions`, or
    /// `{jobs_key}.revisions` when the jobs key is set on its own (and likewise the claims,
    /// in-flight runs, nodes and wake-up channel: `{jobs_key}.claims`, ...).
    pub fn revisions_key(mut self, key: impl Into<String>) -> Self {
        self.revisions_key = Some(key.into());
        self
    }

    /// How long one call may wait for the server's answer (default 5 s); a call that waits
    /// longer fails with a temporary backend error, so a hung server cannot freeze the
    /// scheduler.
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// How long one connection attempt may take (default 5 s).
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.connection_timeout = timeout;
        self
    }

    /// For a `rediss://` URL: trust the certificates in `pem` (one or more PEM
    /// `CERTIFICATE` blocks, such as a private CA's) instead of the webpki roots. Refused by
    /// [`build`](Self::build) for other URLs, and when `pem` holds no certificate.
    #[cfg(feature = "tls")]
    pub fn tls_root_certificates(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls_roots = Some(pem.into());
        self
    }

    /// Checks the options and builds the backend (which connects when it is started).
    pub fn build_records(self) -> Result<RedisRecords> {
        let redacted = redact(&self.url);
        #[cfg(not(feature = "tls"))]
        if self.url.starts_with("rediss://") {
            return Err(Error::config(format!(
                "TLS Redis URLs ({redacted}) need jobstore-redis's `tls` feature, which this \
                 build lacks; enable it, or use redis:// or redis+unix://"
            )));
        }
        // The driver's parse error may quote the URL: it is not passed on.
        let invalid = || {
            Error::config(format!(
                "invalid Redis URL {redacted}: expected redis://[user[:password]@]host[:port][/db] \
                 or redis+unix:///path"
            ))
        };
        let client = redis::Client::open(self.url.as_str()).map_err(|_| invalid())?;
        let info = without_client_setinfo(client.get_connection_info());
        #[cfg(feature = "tls")]
        let client = match (info.addr(), self.tls_roots) {
            (redis::ConnectionAddr::TcpTls { .. }, roots) => {
                crate::tls::client(info, roots.as_deref(), &redacted)?
            }
            (_, Some(_)) => {
                return Err(Error::config(format!(
                    "TLS root certificates were given for {redacted}, which is no rediss:// URL"
                )));
            }
            (_, None) => redis::Client::open(info).map_err(|_| invalid())?,
        };
        #[cfg(not(feature = "tls"))]
        let client = redis::Client::open(info).map_err(|_| invalid())?;
        for (name, value) in [
            ("response_timeout", self.response_timeout),
            ("connection_timeout", self.connection_timeout),
        ] {
            if value.is_zero() || value > Duration::from_secs(24 * 3600) {
                return Err(Error::config(format!(
                    "the Redis job store's {name} must be between 0 and a day, got {value:?}"
                )));
            }
        }
        let defaults = Keys::with_prefix(&self.prefix);
        // The keys APScheduler does not have follow the jobs key when only it is set, so
        // that two stores configured APScheduler's way on one server stay apart.
        let derived = match &self.jobs_key {
            Some(jobs) if self.prefix == DEFAULT_PREFIX => Keys::with_prefix(&format!("{jobs}.")),
            _ => defaults.clone(),
        };
        let keys = Keys {
            jobs: self.jobs_key.unwrap_or(defaults.jobs),
            run_times: self.run_times_key.unwrap_or(defaults.run_times),
            revisions: self.revisions_key.unwrap_or(derived.revisions),
            claims: derived.claims,
            inflight: derived.inflight,
            nodes: derived.nodes,
            wakeup: derived.wakeup,
        };
        let all = keys.all();
        for key in all {
            validate_key(key)?;
        }
        if (1..all.len()).any(|i| all[..i].contains(&all[i])) {
            return Err(Error::config(format!(
                "the Redis job store's keys must differ: jobs {:?}, run times {:?}, revisions \
                 {:?}, claims {:?}, in-flight runs {:?}, nodes {:?}, wake-up channel {:?}",
                keys.jobs,
                keys.run_times,
                keys.revisions,
                keys.claims,
                keys.inflight,
                keys.nodes,
                keys.wakeup
            )));
        }
        Ok(RedisRecords::new(
            client,
            redacted,
            keys,
            self.response_timeout,
            self.connection_timeout,
        ))
    }

    /// Checks the options and builds the store (which connects when it is started).
    pub fn build(self) -> Result<RedisJobStore> {
        Ok(RecordJobStore::new(self.build_records()?))
    }
}

/// `info` without the driver's `CLIENT SETINFO` (library name and version, shown only by
/// `CLIENT LIST`): without a password or a database to select, it is the one request of a
/// new connection's set-up, a round trip before the first command on each connection (the
/// data one and the wake-up subscription), and servers before 7.2 answer it with an error.
fn without_client_setinfo(info: &redis::ConnectionInfo) -> redis::ConnectionInfo {
    let settings = info.redis_settings().clone().set_skip_set_lib_name();
    info.clone().set_redis_settings(settings)
}

/// Keys are printable, without spaces, and short: a prefix from a configuration file cannot
/// smuggle a newline into a log or reach another application's keys by accident.
fn validate_key(key: &str) -> Result<()> {
    let printable = key.chars().all(|c| !c.is_control() && !c.is_whitespace());
    if key.is_empty() || key.len() > MAX_KEY_LEN || !printable {
        return Err(Error::config(format!(
            "invalid Redis key {key:?} for the job store: it must be 1 to {MAX_KEY_LEN} bytes \
             of printable characters without spaces"
        )));
    }
    Ok(())
}

/// `url` with its password (and a `pass`/`password` query parameter) replaced by `***`.
pub fn redact(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return "<unparsable URL>".to_owned();
    };
    if parsed.password().is_some() {
        // Only fails for URLs that cannot have a password, which this one has.
        let _ = parsed.set_password(Some("***"));
    }
    if parsed
        .query_pairs()
        .any(|(k, _)| k.eq_ignore_ascii_case("pass") || k.eq_ignore_ascii_case("password"))
    {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let secret = k.eq_ignore_ascii_case("pass") || k.eq_ignore_ascii_case("password");
                let v = if secret {
                    "***".to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

/// Registers the `"redis"` job store type for configuration documents, serving `redis://`
/// URLs for [`Components::open_records`].
///
/// Options: `url` (default `redis://127.0.0.1:6379/`) or APScheduler's `host`, `port`, `db`,
/// `password`; `prefix` or APScheduler's `jobs_key` / `run_times_key` (and `revisions_key`);
/// `response_timeout` and `connection_timeout` in seconds.
///
/// ```
/// # fn main() -> scheduler_core::Result<()> {
/// use scheduler_core::{Components, Scheduler, SchedulerConfig};
///
/// let config = SchedulerConfig::from_json(
///     r#"{ "jobstores": { "default": {
///            "type": "redis", "url": "redis://127.0.0.1:6379/0", "prefix": "myapp." } } }"#,
/// )?;
/// let components = Components::new();
/// jobstore_redis::register(&components);
/// let scheduler = Scheduler::builder().config(&config, &components)?.build()?;
/// assert_eq!(scheduler.jobstore_aliases(), ["default"]);
/// # Ok(()) }
/// ```
pub fn register(components: &Components) {
    components.register_record_store(
        "redis",
        &SCHEMES,
        Arc::new(|options: &serde_json::Value| {
            let records = from_options(options)?;
            Ok(Arc::new(records) as Arc<dyn DynRecordStore>)
        }),
    );
}

/// The URL schemes [`register`] serves (`redis+unix://` is `redis`; `rediss://` is refused
/// with a reason by a build without the `tls` feature).
const SCHEMES: [&str; 2] = ["redis", "rediss"];

const OPTIONS: [&str; 11] = [
    "url",
    "host",
    "port",
    "db",
    "password",
    "prefix",
    "jobs_key",
    "run_times_key",
    "revisions_key",
    "response_timeout",
    "connection_timeout",
];

fn from_options(options: &serde_json::Value) -> Result<RedisRecords> {
    let empty = serde_json::Map::new();
    let map = match options {
        serde_json::Value::Object(map) => map,
        serde_json::Value::Null => &empty,
        other => {
            return Err(Error::config(format!(
                "the redis job store's options must be a table, got {}",
                kind_of(other)
            )));
        }
    };
    if let Some(unknown) = map.keys().find(|k| !OPTIONS.contains(&k.as_str())) {
        return Err(Error::config(format!(
            "unknown option {unknown:?} for the redis job store; known: {}",
            OPTIONS.join(", ")
        )));
    }
    let string = |name: &str| -> Result<Option<String>> {
        match map.get(name) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
            // Never echo the value: it may be the password.
            Some(other) => Err(Error::config(format!(
                "the redis job store's option {name:?} must be a string, got {}",
                kind_of(other)
            ))),
        }
    };
    let number = |name: &str| -> Result<Option<f64>> {
        match map.get(name) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::Number(n)) => Ok(n.as_f64()),
            Some(other) => Err(Error::config(format!(
                "the redis job store's option {name:?} must be a number, got {}",
                kind_of(other)
            ))),
        }
    };
    let url = match string("url")? {
        Some(url) => {
            if ["host", "port", "db", "password"]
                .iter()
                .any(|k| map.contains_key(*k))
            {
                return Err(Error::config(
                    "give the redis job store either `url` or `host`/`port`/`db`/`password`, \
                     not both",
                ));
            }
            url
        }
        None => url_from_parts(
            string("host")?,
            number("port")?,
            number("db")?,
            string("password")?,
        )?,
    };
    let mut builder = RedisStoreBuilder::new(url);
    if let Some(prefix) = string("prefix")? {
        builder = builder.prefix(prefix);
    }
    if let Some(key) = string("jobs_key")? {
        builder = builder.jobs_key(key);
    }
    if let Some(key) = string("run_times_key")? {
        builder = builder.run_times_key(key);
    }
    if let Some(key) = string("revisions_key")? {
        builder = builder.revisions_key(key);
    }
    for (name, set) in [
        (
            "response_timeout",
            RedisStoreBuilder::response_timeout as fn(_, _) -> _,
        ),
        ("connection_timeout", RedisStoreBuilder::connection_timeout),
    ] {
        if let Some(secs) = number(name)? {
            let timeout = Duration::try_from_secs_f64(secs).map_err(|_| {
                Error::config(format!(
                    "the redis job store's {name} must be a positive number of seconds, got {secs}"
                ))
            })?;
            builder = set(builder, timeout);
        }
    }
    builder.build_records()
}

/// APScheduler's connection arguments as a URL.
fn url_from_parts(
    host: Option<String>,
    port: Option<f64>,
    db: Option<f64>,
    password: Option<String>,
) -> Result<String> {
    let whole = |name: &str, value: f64, max: f64| -> Result<u64> {
        if value.fract() != 0.0 || !(0.0..=max).contains(&value) {
            return Err(Error::config(format!(
                "the redis job store's {name} must be a whole number from 0 to {max}, got {value}"
            )));
        }
        // Whole and within range: exact.
        Ok(value as u64)
    };
    let host = host.unwrap_or_else(|| "127.0.0.1".to_owned());
    let port = port.map_or(Ok(6379), |p| whole("port", p, 65_535.0))?;
    let db = db.map_or(Ok(0), |d| whole("db", d, 1_000_000.0))?;
    let mut url = url::Url::parse(&format!("redis://{host}:{port}/{db}")).map_err(|_| {
        Error::config(format!(
            "the redis job store's host {host:?} is not a host name"
        ))
    })?;
    if let Some(password) = password {
        url.set_password(Some(&password))
            .map_err(|()| Error::config("the redis job store's password cannot be set"))?;
    }
    Ok(url.to_string())
}

fn kind_of(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "a table",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("redis://:hunter2@db.example:6380/3"),
            "redis://:***@db.example:6380/3"
        );
        assert_eq!(
            redact("redis://app:hunter2@db.example/"),
            "redis://app:***@db.example/"
        );
        let unix = redact("redis+unix:///run/redis.sock?db=2&pass=hunter2");
        assert!(!unix.contains("hunter2") && unix.contains("db=2"), "{unix}");
        assert_eq!(redact("redis://127.0.0.1/"), "redis://127.0.0.1/");
        assert_eq!(redact("not a url hunter2"), "<unparsable URL>");
    }

    #[test]
    fn keys_follow_the_prefix_or_are_set_one_by_one() {
        let records = RedisStoreBuilder::new(DEFAULT_URL).build_records().unwrap();
        assert_eq!(
            (
                records.jobs_key(),
                records.run_times_key(),
                records.revisions_key()
            ),
            (
                "apscheduler.jobs",
                "apscheduler.run_times",
                "apscheduler.revisions"
            )
        );
        let records = RedisStoreBuilder::new(DEFAULT_URL)
            .jobs_key("a.jobs")
            .run_times_key("a.times")
            .build_records()
            .unwrap();
        assert_eq!(
            (
                records.jobs_key(),
                records.run_times_key(),
                records.revisions_key()
            ),
            ("a.jobs", "a.times", "a.jobs.revisions")
        );
        // The keys APScheduler lacks follow the jobs key, so two such stores stay apart.
        assert_eq!(
            (
                records.claims_key(),
                records.inflight_key(),
                records.nodes_key(),
                records.wakeup_channel()
            ),
            (
                "a.jobs.claims",
                "a.jobs.inflight",
                "a.jobs.nodes",
                "a.jobs.wakeup"
            )
        );
        let records = RedisStoreBuilder::new(DEFAULT_URL)
            .prefix("b:")
            .build_records()
            .unwrap();
        assert_eq!(
            (records.claims_key(), records.wakeup_channel()),
            ("b:claims", "b:wakeup")
        );
    }

    #[test]
    fn bad_keys_urls_and_timeouts_are_config_errors() {
        let kind = |b: RedisStoreBuilder| b.build_records().unwrap_err().kind();
        let config = scheduler_core::ErrorKind::Config;
        assert_eq!(
            kind(RedisStoreBuilder::new(DEFAULT_URL).prefix("a b")),
            config
        );
        assert_eq!(
            kind(RedisStoreBuilder::new(DEFAULT_URL).prefix("x\n")),
            config
        );
        assert_eq!(
            kind(RedisStoreBuilder::new(DEFAULT_URL).jobs_key("")),
            config
        );
        assert_eq!(
            kind(RedisStoreBuilder::new(DEFAULT_URL).prefix("p".repeat(300))),
            config
        );
        assert_eq!(
            kind(RedisStoreBuilder::new(DEFAULT_URL).run_times_key("apscheduler.jobs")),
            config
        );
        assert_eq!(
            kind(RedisStoreBuilder::new(DEFAULT_URL).response_timeout(Duration::ZERO)),
            config
        );
        let e = RedisStoreBuilder::new("http://:hunter2@x/")
            .build_records()
            .unwrap_err();
        assert_eq!(e.kind(), config);
        assert!(!format!("{e} {e:?}").contains("hunter2"), "{e:?}");
        let rediss = RedisStoreBuilder::new("rediss://:hunter2@x/").build_records();
        #[cfg(not(feature = "tls"))]
        {
            let e = rediss.unwrap_err();
            assert_eq!(e.kind(), config);
            assert!(!format!("{e} {e:?}").contains("hunter2"), "{e:?}");
        }
        #[cfg(feature = "tls")]
        {
            let records = rediss.unwrap();
            assert_eq!(records.url(), "rediss://:***@x/");
            assert!(!format!("{records:?}").contains("hunter2"));
            let builder = RedisStoreBuilder::new("redis://:hunter2@x/").tls_root_certificates("");
            assert!(!format!("{builder:?}").contains("hunter2"));
            let e = builder.build_records().unwrap_err();
            assert_eq!(e.kind(), config);
            assert!(e.to_string().contains("no rediss://"), "{e}");
            assert!(!format!("{e} {e:?}").contains("hunter2"), "{e:?}");
        }
    }

    #[test]
    fn options_build_a_store_or_say_what_is_wrong() {
        let records = from_options(&serde_json::json!({
            "host": "localhost", "port": 6380, "db": 2, "password": "hunter2",
            "jobs_key": "x.jobs", "run_times_key": "x.run_times", "response_timeout": 1.5,
        }))
        .unwrap();
        assert_eq!(records.url(), "redis://:***@localhost:6380/2");
        assert_eq!(records.jobs_key(), "x.jobs");
        assert!(!format!("{records:?}").contains("hunter2"));
        for bad in [
            serde_json::json!({ "tablename": "x" }),
            serde_json::json!({ "url": "redis://x/", "port": 1 }),
            serde_json::json!({ "port": 70000 }),
            serde_json::json!({ "prefix": 3 }),
            serde_json::json!({ "response_timeout": -1 }),
            serde_json::json!({ "password": 12345 }),
            serde_json::json!([1]),
        ] {
            let e = from_options(&bad).unwrap_err();
            assert_eq!(e.kind(), scheduler_core::ErrorKind::Config, "{bad}");
            assert!(!e.to_string().contains("12345"), "{e}");
        }
    }

    #[test]
    fn registration_serves_redis_urls_with_the_options() {
        let components = Components::new();
        register(&components);
        assert_eq!(components.record_schemes(), ["redis", "rediss"]);
        let mut options = serde_json::Map::new();
        options.insert("prefix".into(), "myapp.".into());
        let records = components
            .open_records("redis+unix:///run/redis.sock", options)
            .unwrap();
        assert!(records.capabilities().cluster);
        let rediss = components.open_records("rediss://:hunter2@x/", serde_json::Map::new());
        #[cfg(not(feature = "tls"))]
        {
            let err = rediss.unwrap_err();
            assert!(err.to_string().contains("`tls` feature"), "{err}");
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
        #[cfg(feature = "tls")]
        assert!(!format!("{:?}", rediss.unwrap()).contains("hunter2"));
    }
}

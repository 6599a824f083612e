//! Configuration from a serde document (APScheduler's `configure()`), the factories that
//! turn `type = "..."` entries into stores and executors, and the helpers factories use.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::aliased::Aliased;
use super::builder::{Settings, validate_interval};
use super::{Scheduler, read, write};
use crate::error::{Error, Result};
use crate::event::Event;
use crate::executor::DynExecutor;
use crate::job::JobDefaults;
use crate::store::{DynJobStore, DynRecordStore, RecordJobStore};

/// A scheduler configuration, as read from TOML or JSON.
///
/// Each store and executor entry names its `type`; the other keys go to that type's factory
/// in [`Components`], where each crate registers its types.
///
/// ```
/// # fn main() -> scheduler_core::Result<()> {
/// use scheduler_core::{Components, Scheduler, SchedulerConfig};
///
/// let config = SchedulerConfig::from_toml(
///     r#"
///     timezone = "Europe/Berlin"
///     jobstore_retry_interval = 30   # seconds
///     max_wait = 5                   # seconds between looks at the stores, at most
///     jobstore_call_timeout = 20     # seconds one store call may take
///     due_batch_size = 500           # due jobs taken from a store per pass, at most
///
///     heartbeat_interval = 5         # seconds between this node's heartbeats on shared stores
///     node_timeout = 15              # seconds of silence before a node is taken for dead
///     claim_lease = 5                # seconds a claim on due jobs keeps other nodes off
///     node_id = "worker-1"           # default: <hostname>-<pid>-<4 hex digits>
///
///     [job_defaults]
///     misfire_grace_time = 30   # seconds; null = no limit
///     coalesce = false
///     max_instances = 3
///     timeout = 600             # seconds one run may take; null (the default) = no limit
///
///     [jobstores.default]
///     type = "memory"
///
///     [executors.default]
///     type = "tokio"
///
///     [executors.pool]
///     type = "threadpool"
///     max_workers = 20
///     "#,
/// )?;
///
/// let components = Components::new();
/// jobstore_memory::register(&components);
/// executors::register(&components);
/// let scheduler = Scheduler::builder().config(&config, &components)?.build()?;
/// assert_eq!(scheduler.jobstore_aliases(), ["default"]);
/// assert_eq!(scheduler.timezone(), chrono_tz::Europe::Berlin);
/// assert_eq!(&*scheduler.node_id(), "worker-1");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SchedulerConfig {
    /// An IANA zone name (`"UTC"`, `"America/New_York"`); default: the machine's local zone.
    pub timezone: Option<String>,
    /// Defaults for job options.
    pub job_defaults: JobDefaults,
    /// Seconds to wait before asking a failing store again (default 10; positive, at most a
    /// day).
    pub jobstore_retry_interval: Option<f64>,
    /// The most seconds the loop sleeps before looking at its stores again (default 10;
    /// positive, at most a day). See [`SchedulerBuilder::max_wait`](super::SchedulerBuilder::max_wait).
    pub max_wait: Option<f64>,
    /// The most seconds one call to a job store may take (default 10; positive, at most a
    /// day). See [`SchedulerBuilder::jobstore_call_timeout`](super::SchedulerBuilder::jobstore_call_timeout).
    pub jobstore_call_timeout: Option<f64>,
    /// The most due jobs taken from one store in one pass (default 1,000; at least 1).
    pub due_batch_size: Option<usize>,
    /// This scheduler's node id on stores several schedulers share (default
    /// `<hostname>-<pid>-<4 hex digits>`; 1 to 200 bytes). Unique per running scheduler (see
    /// [`SchedulerBuilder::node_id`](super::SchedulerBuilder::node_id)): a document that
    /// several processes read leaves it out, and each gets a default of its own.
    pub node_id: Option<String>,
    /// Seconds between this node's heartbeats on each shared store (default 5; positive,
    /// shorter than `node_timeout`). See
    /// [`SchedulerBuilder::heartbeat_interval`](super::SchedulerBuilder::heartbeat_interval).
    pub heartbeat_interval: Option<f64>,
    /// Seconds after which a silent node is taken for dead (default 15; positive, at most a
    /// day). See [`SchedulerBuilder::node_timeout`](super::SchedulerBuilder::node_timeout).
    pub node_timeout: Option<f64>,
    /// Seconds a claim on due jobs keeps other nodes off them (default 5; positive, shorter
    /// than `node_timeout`). See [`SchedulerBuilder::claim_lease`](super::SchedulerBuilder::claim_lease).
    pub claim_lease: Option<f64>,
    /// Job stores by alias.
    pub jobstores: BTreeMap<String, ComponentConfig>,
    /// Executors by alias.
    pub executors: BTreeMap<String, ComponentConfig>,
}

impl SchedulerConfig {
    /// Parses a JSON document.
    pub fn from_json(text: &str) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| {
            Error::config(format!("invalid scheduler configuration: {e}")).with_source(e)
        })
    }

    /// Parses a TOML document.
    #[cfg(feature = "toml")]
    pub fn from_toml(text: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| {
            Error::config(format!("invalid scheduler configuration: {e}")).with_source(e)
        })
    }

    /// The configured zone, or `None` when unset.
    pub fn timezone(&self) -> Result<Option<Tz>> {
        self.timezone.as_deref().map(parse_timezone).transpose()
    }

    /// The configured retry interval, or `None` when unset; a [`Config`](crate::ErrorKind::Config)
    /// error unless positive and at most a day.
    pub fn jobstore_retry_interval(&self) -> Result<Option<Duration>> {
        interval("jobstore_retry_interval", self.jobstore_retry_interval)
    }

    /// The configured maximum wait, or `None` when unset; a [`Config`](crate::ErrorKind::Config)
    /// error unless positive and at most a day.
    pub fn max_wait(&self) -> Result<Option<Duration>> {
        interval("max_wait", self.max_wait)
    }

    /// The configured store call timeout, or `None` when unset; a
    /// [`Config`](crate::ErrorKind::Config) error unless positive and at most a day.
    pub fn jobstore_call_timeout(&self) -> Result<Option<Duration>> {
        interval("jobstore_call_timeout", self.jobstore_call_timeout)
    }
}

/// The interval setting `name` given as `secs` seconds, checked.
fn interval(name: &str, secs: Option<f64>) -> Result<Option<Duration>> {
    secs.map(|secs| {
        Duration::try_from_secs_f64(secs)
            .map_err(|_| Error::config(format!("{name} {secs} is not a valid number of seconds")))
            .and_then(|d| validate_interval(name, d))
    })
    .transpose()
}

/// Applies a configuration document to `settings`, `stores` and `executors`: the one
/// implementation behind [`SchedulerBuilder::config`](super::SchedulerBuilder::config), which
/// adds to the builder's stores and executors, and [`Scheduler::configure`], which replaces
/// the scheduler's. Nothing changes unless all of it applies.
pub(super) fn apply_document(
    config: &SchedulerConfig,
    components: &Components,
    settings: &mut Settings,
    stores: &mut Aliased<dyn DynJobStore>,
    executors: &mut Aliased<dyn DynExecutor>,
) -> Result<()> {
    let mut next = settings.clone();
    if let Some(tz) = config.timezone()? {
        next.timezone = tz;
    }
    next.job_defaults = config.job_defaults;
    if let Some(interval) = config.jobstore_retry_interval()? {
        next.jobstore_retry_interval = interval;
    }
    if let Some(max_wait) = config.max_wait()? {
        next.max_wait = max_wait;
    }
    if let Some(timeout) = config.jobstore_call_timeout()? {
        next.jobstore_call_timeout = timeout;
    }
    if let Some(size) = config.due_batch_size {
        next.due_batch_size = size;
    }
    if let Some(id) = &config.node_id {
        next.cluster.node_id = id.as_str().into();
    }
    let cluster = &mut next.cluster;
    for (name, secs, setting) in [
        (
            "heartbeat_interval",
            config.heartbeat_interval,
            &mut cluster.heartbeat_interval,
        ),
        (
            "node_timeout",
            config.node_timeout,
            &mut cluster.node_timeout,
        ),
        ("claim_lease", config.claim_lease, &mut cluster.claim_lease),
    ] {
        if let Some(duration) = interval(name, secs)? {
            *setting = duration;
        }
    }
    next.validate()?;
    let (mut next_stores, mut next_executors) = (stores.clone(), executors.clone());
    for (alias, entry) in &config.jobstores {
        let store = components.build_jobstore(alias, entry)?;
        next_stores.insert(alias.as_str().into(), store)?;
    }
    for (alias, entry) in &config.executors {
        let executor = components.build_executor(alias, entry)?;
        next_executors.insert(alias.as_str().into(), executor)?;
    }
    *settings = next;
    *stores = next_stores;
    *executors = next_executors;
    Ok(())
}

impl Scheduler {
    /// Applies a configuration document to a stopped scheduler: the settings it gives, and (as APScheduler's `configure()` does) replaces all stores and
    /// executors with the ones it lists. Fails, changing nothing, as
    /// [`SchedulerBuilder::config`](super::SchedulerBuilder::config) does.
    pub async fn configure(&self, config: &SchedulerConfig, components: &Components) -> Result<()> {
        let _lifecycle = self.lifecycle_lock().lock().await;
        if self.running() {
            return Err(Error::scheduler_state(
                "the scheduler cannot be configured while it is running",
            ));
        }
        let mut settings = read(&self.inner.settings).clone();
        let (mut stores, mut executors) = (Aliased::stores(), Aliased::executors());
        apply_document(
            config,
            components,
            &mut settings,
            &mut stores,
            &mut executors,
        )?;
        *write(&self.inner.settings) = settings;
        let (store_aliases, executor_aliases) = (stores.aliases(), executors.aliases());
        *write(&self.inner.stores) = stores;
        *write(&self.inner.executors) = executors;
        for alias in executor_aliases {
            self.inner.events.publish(Event::ExecutorAdded { alias });
        }
        for alias in store_aliases {
            self.inner.events.publish(Event::JobstoreAdded { alias });
        }
        Ok(())
    }
}

/// One store or executor entry: its `type` and the options for that type. A persistent store
/// may be named by its `url` alone (`[jobstores.default] url = "postgres://..."`): the type
/// registered for the URL's scheme builds it (see [`Components::register_record_store`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "EntryText")]
pub struct ComponentConfig {
    /// The registered type name, such as `"memory"` or `"threadpool"`; empty for a store
    /// named by its `url` alone.
    #[serde(rename = "type", skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Every other key, passed to the type's factory.
    #[serde(flatten)]
    pub options: serde_json::Map<String, serde_json::Value>,
}

/// A [`ComponentConfig`] as written, before the check that it names a type or a URL.
#[derive(Deserialize)]
struct EntryText {
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(flatten)]
    options: serde_json::Map<String, serde_json::Value>,
}

impl TryFrom<EntryText> for ComponentConfig {
    type Error = &'static str;

    fn try_from(entry: EntryText) -> std::result::Result<Self, Self::Error> {
        match entry.kind {
            Some(kind) if !kind.is_empty() => Ok(ComponentConfig {
                kind,
                options: entry.options,
            }),
            None if entry.options.contains_key("url") => Ok(ComponentConfig {
                kind: String::new(),
                options: entry.options,
            }),
            _ => Err("an entry names its `type` (a persistent store may give its `url` instead)"),
        }
    }
}

/// Builds a job store from its options.
pub type JobStoreFactory = Factory<dyn DynJobStore>;
/// Builds an executor from its options.
pub type ExecutorFactory = Factory<dyn DynExecutor>;
/// Builds a persistent store's rows (its [`RecordStore`](crate::RecordStore)) from its options;
/// see [`Components::register_record_store`].
pub type RecordStoreFactory = Factory<dyn DynRecordStore>;
/// Builds a component of type `T` from its options.
pub type Factory<T> = Arc<dyn Fn(&serde_json::Value) -> Result<Arc<T>> + Send + Sync>;

/// The store and executor types a configuration may name (APScheduler's plugin entry points,
/// made explicit), and the URL schemes of the persistent stores, by which tools open a store's
/// rows ([`open_records`](Self::open_records)). Each crate offers a `register` function that
/// adds its types.
#[derive(Clone, Default)]
pub struct Components {
    jobstores: Arc<Registry<dyn DynJobStore>>,
    record_stores: Arc<Registry<dyn DynRecordStore>>,
    /// URL scheme (lower case, no `+driver`) → the record store type that serves it.
    schemes: Arc<RwLock<BTreeMap<String, String>>>,
    executors: Arc<Registry<dyn DynExecutor>>,
}

/// Factories by type name, for one kind of component.
struct Registry<T: ?Sized> {
    /// "job store" or "executor", for messages.
    what: &'static str,
    factories: RwLock<HashMap<String, Factory<T>>>,
}

impl Default for Registry<dyn DynJobStore> {
    fn default() -> Self {
        Registry::named("job store")
    }
}

impl Default for Registry<dyn DynRecordStore> {
    fn default() -> Self {
        Registry::named("store")
    }
}

impl Default for Registry<dyn DynExecutor> {
    fn default() -> Self {
        Registry::named("executor")
    }
}

impl<T: ?Sized> Registry<T> {
    fn named(what: &'static str) -> Self {
        Registry {
            what,
            factories: RwLock::default(),
        }
    }

    fn register(&self, kind: String, factory: Factory<T>) {
        self.factories
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(kind, factory);
    }

    fn build(&self, alias: &str, entry: &ComponentConfig) -> Result<Arc<T>> {
        let what = self.what;
        if entry.kind.is_empty() {
            return Err(Error::config(format!("{what} {alias:?} names no type")));
        }
        let factory = self
            .factories
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&entry.kind)
            .cloned()
            .ok_or_else(|| {
                Error::config(format!(
                    "{what} {alias:?} has unknown type {:?}; register it in Components",
                    entry.kind
                ))
            })?;
        factory(&serde_json::Value::Object(entry.options.clone())).map_err(|e| {
            let message = format!("{what} {alias:?}: {}", e.message());
            Error::new(e.kind(), message).with_source(e)
        })
    }

    fn kinds(&self) -> Vec<String> {
        let mut kinds: Vec<String> = self
            .factories
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect();
        kinds.sort();
        kinds
    }
}

impl Components {
    /// No types.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a job store type.
    pub fn register_jobstore(&self, kind: impl Into<String>, factory: JobStoreFactory) {
        self.jobstores.register(kind.into(), factory);
    }

    /// Registers a persistent store type at both levels with one factory, so that they cannot
    /// disagree: `factory` builds the store's rows, which [`open_records`](Self::open_records)
    /// answers for a URL of one of `schemes` (tools that edit records without the program that
    /// owns the jobs), and a configuration entry of type `kind` gets a [`RecordJobStore`] over
    /// them. `schemes` are matched without case and without a `+driver` suffix
    /// (`postgresql+psycopg2://` is served by `postgresql`); a scheme registered again goes to
    /// the later type. The factory is given the URL as the `url` option.
    pub fn register_record_store(
        &self,
        kind: impl Into<String>,
        schemes: &[&str],
        factory: RecordStoreFactory,
    ) {
        let kind = kind.into();
        let records = factory.clone();
        let jobstore: JobStoreFactory = Arc::new(move |options| {
            let store = RecordJobStore::new(records(options)?);
            Ok(Arc::new(store) as Arc<dyn DynJobStore>)
        });
        self.jobstores.register(kind.clone(), jobstore);
        self.record_stores.register(kind.clone(), factory);
        let mut by_scheme = self.schemes.write().unwrap_or_else(|p| p.into_inner());
        for scheme in schemes {
            by_scheme.insert(scheme.to_ascii_lowercase(), kind.clone());
        }
    }

    /// Opens the rows of the persistent store at `url` (not started): the type registered for
    /// its scheme builds them from `options` and the `url`. A URL whose scheme no type serves
    /// is a [`Config`](crate::ErrorKind::Config) error that lists the registered schemes (and
    /// never quotes the URL, which may hold a password).
    ///
    /// ```
    /// # fn main() -> scheduler_core::Result<()> {
    /// use std::sync::Arc;
    /// use scheduler_core::testkit::RecordMap;
    /// use scheduler_core::{Components, DynRecordStore};
    ///
    /// let components = Components::new();
    /// // What a store crate's `register` does: jobstore_sql's serves sqlite:, postgres://,
    /// // mysql:// and takes a `tablename` option.
    /// components.register_record_store(
    ///     "model",
    ///     &["model"],
    ///     Arc::new(|_options| Ok(Arc::new(RecordMap::new()) as Arc<dyn DynRecordStore>)),
    /// );
    /// let records = components.open_records("MODEL+v2://anywhere", Default::default())?;
    /// assert!(records.capabilities().persistent);
    /// let err = components
    ///     .open_records("ftp://user:secret@example.com/", Default::default())
    ///     .unwrap_err();
    /// assert_eq!(err.kind(), scheduler_core::ErrorKind::Config);
    /// assert!(err.to_string().contains("registered: model"), "{err}");
    /// assert!(!err.to_string().contains("secret"), "{err}");
    /// # Ok(()) }
    /// ```
    pub fn open_records(
        &self,
        url: &str,
        mut options: serde_json::Map<String, serde_json::Value>,
    ) -> Result<Arc<dyn DynRecordStore>> {
        let kind = self.kind_serving(url)?;
        if options.contains_key("url") {
            return Err(Error::config(
                "the store URL is given once: as the URL, not also as a `url` option",
            ));
        }
        options.insert("url".to_owned(), url.into());
        self.record_stores.build(
            &kind,
            &ComponentConfig {
                kind: kind.clone(),
                options,
            },
        )
    }

    /// The URL schemes a persistent store type serves, sorted.
    pub fn record_schemes(&self) -> Vec<String> {
        let schemes = self.schemes.read().unwrap_or_else(|p| p.into_inner());
        schemes.keys().cloned().collect()
    }

    /// The record store type serving `url`'s scheme.
    fn kind_serving(&self, url: &str) -> Result<String> {
        let known = || match self.record_schemes() {
            schemes if schemes.is_empty() => "none is registered".to_owned(),
            schemes => format!("registered: {}", schemes.join(", ")),
        };
        let Some(scheme) = url_scheme(url) else {
            return Err(Error::config(format!(
                "a store URL starts with its scheme, such as sqlite: or postgres:// ({})",
                known()
            )));
        };
        let kind = (self.schemes.read().unwrap_or_else(|p| p.into_inner()))
            .get(&scheme)
            .cloned();
        kind.ok_or_else(|| {
            Error::config(format!(
                "no store type serves URL scheme {scheme:?} ({}); register the store's crate \
                 in Components",
                known()
            ))
        })
    }

    /// Registers an executor type.
    pub fn register_executor(&self, kind: impl Into<String>, factory: ExecutorFactory) {
        self.executors.register(kind.into(), factory);
    }

    /// Builds the store an entry describes: by its type, or, for an entry with a `url` and no
    /// type, by the type serving the URL's scheme.
    pub fn build_jobstore(
        &self,
        alias: &str,
        entry: &ComponentConfig,
    ) -> Result<Arc<dyn DynJobStore>> {
        match entry.options.get("url") {
            Some(serde_json::Value::String(url)) if entry.kind.is_empty() => {
                let kind = self.kind_serving(url).map_err(|e| {
                    let message = format!("job store {alias:?}: {}", e.message());
                    Error::new(e.kind(), message)
                })?;
                let options = entry.options.clone();
                self.jobstores
                    .build(alias, &ComponentConfig { kind, options })
            }
            _ => self.jobstores.build(alias, entry),
        }
    }

    /// Builds the executor an entry describes.
    pub fn build_executor(
        &self,
        alias: &str,
        entry: &ComponentConfig,
    ) -> Result<Arc<dyn DynExecutor>> {
        self.executors.build(alias, entry)
    }
}

impl fmt::Debug for Components {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Components")
            .field("jobstores", &self.jobstores.kinds())
            .field("record_schemes", &self.record_schemes())
            .field("executors", &self.executors.kinds())
            .finish()
    }
}

/// Deserializes a factory's options, with an error that names the bad key: for the factories
/// a crate registers in [`Components`].
pub fn parse_options<T: serde::de::DeserializeOwned>(options: &serde_json::Value) -> Result<T> {
    serde_json::from_value(options.clone())
        .map_err(|e| Error::config(format!("invalid options: {e}")).with_source(e))
}

/// The scheme of `url` as [`Components`] matches it: before the first `:`, in lower case,
/// without a `+driver` suffix (`postgresql+psycopg2`, `mongodb+srv`); `None` unless that text
/// is a scheme (a letter, then letters, digits, `+`, `-` or `.`), so that no other part of
/// the URL, a password say, ends up in a message.
fn url_scheme(url: &str) -> Option<String> {
    let (scheme, _) = url.split_once(':')?;
    let mut chars = scheme.chars();
    let is_scheme = chars.next()?.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    let base = scheme.split('+').next()?;
    is_scheme.then(|| base.to_ascii_lowercase())
}

/// Parses an IANA zone name.
fn parse_timezone(name: &str) -> Result<Tz> {
    name.parse::<Tz>()
        .map_err(|e| Error::config(format!("unknown time zone {name:?}: {e}")))
}

/// The machine's local zone, or UTC (with a warning) when it cannot be determined: the
/// scheduler's zone unless configured.
pub fn local_timezone() -> Tz {
    match iana_time_zone::get_timezone() {
        Ok(name) => name.parse().unwrap_or_else(|_| {
            crate::logging::log_warn!(zone = %name, "the local time zone is not in the IANA database; using UTC");
            Tz::UTC
        }),
        Err(e) => {
            crate::logging::log_warn!(error = %e, "cannot determine the local time zone; using UTC");
            Tz::UTC
        }
    }
}

#[cfg(test)]
mod tests;

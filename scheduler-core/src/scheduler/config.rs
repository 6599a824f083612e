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
use crate::store::DynJobStore;

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

/// One store or executor entry: its `type` and the options for that type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentConfig {
    /// The registered type name, such as `"memory"` or `"threadpool"`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Every other key, passed to the type's factory.
    #[serde(flatten)]
    pub options: serde_json::Map<String, serde_json::Value>,
}

/// Builds a job store from its options.
pub type JobStoreFactory = Factory<dyn DynJobStore>;
/// Builds an executor from its options.
pub type ExecutorFactory = Factory<dyn DynExecutor>;
/// Builds a component of type `T` from its options.
pub type Factory<T> = Arc<dyn Fn(&serde_json::Value) -> Result<Arc<T>> + Send + Sync>;

/// The store and executor types a configuration may name (APScheduler's plugin entry points,
/// made explicit). Each crate offers a `register` function that adds its types.
#[derive(Clone, Default)]
pub struct Components {
    jobstores: Arc<Registry<dyn DynJobStore>>,
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

    /// Registers an executor type.
    pub fn register_executor(&self, kind: impl Into<String>, factory: ExecutorFactory) {
        self.executors.register(kind.into(), factory);
    }

    /// Builds the store an entry describes.
    pub fn build_jobstore(
        &self,
        alias: &str,
        entry: &ComponentConfig,
    ) -> Result<Arc<dyn DynJobStore>> {
        self.jobstores.build(alias, entry)
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
mod tests {
    use super::*;

    #[test]
    fn parses_toml_and_json_alike() {
        let toml = r#"
            timezone = "Europe/Berlin"
            [job_defaults]
            misfire_grace_time = 30
            coalesce = false
            [jobstores.default]
            type = "memory"
            [executors.pool]
            type = "threadpool"
            max_workers = 20
        "#;
        let json = r#"{"timezone": "Europe/Berlin",
            "job_defaults": {"misfire_grace_time": 30, "coalesce": false},
            "jobstores": {"default": {"type": "memory"}},
            "executors": {"pool": {"type": "threadpool", "max_workers": 20}}}"#;
        let a = SchedulerConfig::from_toml(toml).unwrap();
        let b = SchedulerConfig::from_json(json).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.timezone().unwrap(), Some(chrono_tz::Europe::Berlin));
        assert_eq!(
            a.job_defaults.misfire_grace_time,
            Some(Duration::from_secs(30))
        );
        assert_eq!(a.job_defaults.max_instances, 1);
        assert_eq!(a.executors["pool"].kind, "threadpool");
        assert_eq!(a.executors["pool"].options["max_workers"], 20);
    }

    #[test]
    fn bad_documents_are_config_errors() {
        for text in [
            r#"{"timezone": 5}"#,
            r#"{"jobstores": {"default": {}}}"#,
            r#"{"unknown_key": 1}"#,
        ] {
            let err = SchedulerConfig::from_json(text).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::Config, "{text}");
        }
        let cfg = SchedulerConfig::from_json(r#"{"timezone": "Mars/Olympus"}"#).unwrap();
        assert_eq!(cfg.timezone().unwrap_err().kind(), crate::ErrorKind::Config);
    }

    #[test]
    fn retry_intervals_out_of_range_are_config_errors() {
        for secs in ["1e13", "0", "-1", "86401"] {
            let cfg =
                SchedulerConfig::from_json(&format!(r#"{{"jobstore_retry_interval": {secs}}}"#))
                    .unwrap();
            let err = cfg.jobstore_retry_interval().unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::Config, "{secs}");
        }
        let cfg = SchedulerConfig::from_json(r#"{"jobstore_retry_interval": 0.5}"#).unwrap();
        assert_eq!(
            cfg.jobstore_retry_interval().unwrap(),
            Some(Duration::from_millis(500))
        );
    }

    /// Applies `text` (JSON) to default settings.
    fn applied(text: &str) -> Result<Settings> {
        let cfg = SchedulerConfig::from_json(text)?;
        let mut settings = Settings::default();
        let (mut stores, mut executors) = (Aliased::stores(), Aliased::executors());
        apply_document(
            &cfg,
            &Components::new(),
            &mut settings,
            &mut stores,
            &mut executors,
        )?;
        Ok(settings)
    }

    #[test]
    fn loop_settings_and_the_job_timeout_come_from_the_document() {
        let settings = applied(
            r#"{"max_wait": 2.5, "jobstore_call_timeout": 30, "due_batch_size": 50,
                "job_defaults": {"timeout": 600}}"#,
        )
        .unwrap();
        assert_eq!(settings.max_wait, Duration::from_millis(2500));
        assert_eq!(settings.jobstore_call_timeout, Duration::from_secs(30));
        assert_eq!(settings.due_batch_size, 50);
        assert_eq!(
            settings.job_defaults.timeout,
            Some(Duration::from_secs(600))
        );
        for bad in [
            r#"{"max_wait": 0}"#,
            r#"{"jobstore_call_timeout": 1e13}"#,
            r#"{"due_batch_size": 0}"#,
            r#"{"job_defaults": {"timeout": 0}}"#,
        ] {
            let err = applied(bad).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::Config, "{bad}");
        }
    }

    #[test]
    fn cluster_settings_come_from_the_document() {
        let toml = r#"
            node_id = "worker-1"
            heartbeat_interval = 1.5
            node_timeout = 6
            claim_lease = 2
        "#;
        let json = r#"{"node_id": "worker-1", "heartbeat_interval": 1.5, "node_timeout": 6,
            "claim_lease": 2}"#;
        assert_eq!(
            SchedulerConfig::from_toml(toml).unwrap(),
            SchedulerConfig::from_json(json).unwrap()
        );
        let cluster = applied(json).unwrap().cluster;
        assert_eq!(&*cluster.node_id, "worker-1");
        assert_eq!(cluster.heartbeat_interval, Duration::from_millis(1500));
        assert_eq!(cluster.node_timeout, Duration::from_secs(6));
        assert_eq!(cluster.claim_lease, Duration::from_secs(2));
        // Unset keys keep what the builder had.
        let defaults = Settings::default().cluster;
        let kept = applied(r#"{"claim_lease": 1}"#).unwrap().cluster;
        assert_eq!(kept.node_timeout, defaults.node_timeout);
        assert_eq!(kept.heartbeat_interval, defaults.heartbeat_interval);
    }

    #[test]
    fn bad_cluster_settings_are_config_errors_naming_the_key() {
        let long_id = "n".repeat(201);
        let long = format!(r#"{{"node_id": "{long_id}"}}"#);
        for (bad, key) in [
            (r#"{"node_id": ""}"#, "node_id"),
            (long.as_str(), "node_id"),
            (r#"{"heartbeat_interval": 0}"#, "heartbeat_interval"),
            (r#"{"heartbeat_interval": -1}"#, "heartbeat_interval"),
            (r#"{"node_timeout": 1e13}"#, "node_timeout"),
            (r#"{"claim_lease": 86401}"#, "claim_lease"),
            // Relations between keys: with the defaults (heartbeat 5 s, lease 5 s) ...
            (r#"{"node_timeout": 4}"#, "node_timeout"),
            (r#"{"claim_lease": 15}"#, "claim_lease"),
            (r#"{"heartbeat_interval": 20}"#, "heartbeat_interval"),
            (
                r#"{"heartbeat_interval": 1, "node_timeout": 3, "claim_lease": 3}"#,
                "claim_lease",
            ),
        ] {
            let err = applied(bad).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::Config, "{bad}");
            assert!(err.to_string().contains(key), "{bad}: {err}");
        }
        for bad in [
            r#"{"node_id": 7}"#,
            r#"{"claim_lease": "5s"}"#,
            r#"{"node_timout": 5}"#,
        ] {
            let err = SchedulerConfig::from_json(bad).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::Config, "{bad}");
        }
    }

    #[test]
    fn a_bad_document_changes_nothing() {
        let mut settings = Settings::default();
        let (mut stores, mut executors) = (Aliased::stores(), Aliased::executors());
        let before = settings.timezone;
        let cfg = SchedulerConfig::from_json(
            r#"{"timezone": "Asia/Tokyo", "job_defaults": {"max_instances": 0}}"#,
        )
        .unwrap();
        let err = apply_document(
            &cfg,
            &Components::new(),
            &mut settings,
            &mut stores,
            &mut executors,
        )
        .unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Config);
        assert_eq!(settings.timezone, before);
    }

    #[test]
    fn unknown_component_types_are_named() {
        let components = Components::new();
        let entry = ComponentConfig {
            kind: "zookeeper".into(),
            options: Default::default(),
        };
        let err = components.build_jobstore("zk", &entry).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Config);
        assert!(err.to_string().contains("\"zookeeper\""), "{err}");
    }
}

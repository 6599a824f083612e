//! Configuration from a serde document (APScheduler's `configure()`), and the factories that
//! turn `type = "..."` entries into stores and executors.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::executor::DynExecutor;
use crate::job::JobDefaults;
use crate::store::DynJobStore;

/// A scheduler configuration, as read from TOML or JSON.
///
/// ```toml
/// timezone = "Europe/Berlin"
///
/// [job_defaults]
/// misfire_grace_time = 30   # seconds; null = no limit
/// coalesce = false
/// max_instances = 3
///
/// [jobstores.default]
/// type = "memory"
///
/// [executors.default]
/// type = "tokio"
///
/// [executors.pool]
/// type = "thread-pool"
/// max_workers = 20
/// ```
///
/// Each store and executor entry names its `type`; the other keys go to that type's factory
/// in [`Components`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SchedulerConfig {
    /// An IANA zone name (`"UTC"`, `"America/New_York"`); default: the machine's local zone.
    pub timezone: Option<String>,
    /// Defaults for job options.
    pub job_defaults: JobDefaults,
    /// Seconds to wait before asking a failing store again (default 10).
    pub jobstore_retry_interval: Option<f64>,
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

    /// The configured retry interval, or `None` when unset.
    pub fn jobstore_retry_interval(&self) -> Result<Option<Duration>> {
        self.jobstore_retry_interval
            .map(|secs| {
                Duration::try_from_secs_f64(secs).map_err(|_| {
                    Error::config(format!(
                        "jobstore_retry_interval {secs} is not a valid number of seconds"
                    ))
                })
            })
            .transpose()
    }
}

/// One store or executor entry: its `type` and the options for that type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentConfig {
    /// The registered type name, such as `"memory"` or `"thread-pool"`.
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

/// Deserializes a factory's options, with an error that names the bad key.
pub fn parse_options<T: serde::de::DeserializeOwned>(options: &serde_json::Value) -> Result<T> {
    serde_json::from_value(options.clone())
        .map_err(|e| Error::config(format!("invalid options: {e}")).with_source(e))
}

/// Parses an IANA zone name.
pub fn parse_timezone(name: &str) -> Result<Tz> {
    name.parse::<Tz>()
        .map_err(|e| Error::config(format!("unknown time zone {name:?}: {e}")))
}

/// The machine's local zone, or UTC (with a warning) when it cannot be determined.
pub fn local_timezone() -> Tz {
    match iana_time_zone::get_timezone() {
        Ok(name) => name.parse().unwrap_or_else(|_| {
            tracing::warn!(zone = %name, "the local time zone is not in the IANA database; using UTC");
            Tz::UTC
        }),
        Err(e) => {
            tracing::warn!(error = %e, "cannot determine the local time zone; using UTC");
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
            type = "thread-pool"
            max_workers = 20
        "#;
        let json = r#"{"timezone": "Europe/Berlin",
            "job_defaults": {"misfire_grace_time": 30, "coalesce": false},
            "jobstores": {"default": {"type": "memory"}},
            "executors": {"pool": {"type": "thread-pool", "max_workers": 20}}}"#;
        let a = SchedulerConfig::from_toml(toml).unwrap();
        let b = SchedulerConfig::from_json(json).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.timezone().unwrap(), Some(chrono_tz::Europe::Berlin));
        assert_eq!(
            a.job_defaults.misfire_grace_time,
            Some(Duration::from_secs(30))
        );
        assert_eq!(a.job_defaults.max_instances, 1);
        assert_eq!(a.executors["pool"].kind, "thread-pool");
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

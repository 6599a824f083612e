#![doc = include_str!("../README.md")]

mod cluster;
mod document;
mod records;
mod url;
mod watch;

use std::sync::Arc;

pub use records::{
    DEFAULT_CALL_TIMEOUT, DEFAULT_COLLECTION, DEFAULT_CONNECT_TIMEOUT, DEFAULT_DATABASE,
    DEFAULT_MAX_POOL_SIZE, MongoJobStore, MongoJobStoreBuilder, MongoJobStoreExt, MongoRecords,
    RUN_TIME_INDEX,
};
use scheduler_core::{Components, Error};

/// Registers the `"mongodb"` store type for configuration documents (APScheduler's name),
/// serving `mongodb://` (and `mongodb+srv://`) URLs for
/// [`Components::open_records`](scheduler_core::Components::open_records).
///
/// Options: `url` (default `mongodb://127.0.0.1:27017/`), `database`, `collection`,
/// `max_pool_size`.
pub fn register(components: &Components) {
    components.register_record_store(
        "mongodb",
        &SCHEMES,
        Arc::new(|options: &serde_json::Value| {
            let records = from_options(options)?;
            Ok(Arc::new(records) as Arc<dyn scheduler_core::DynRecordStore>)
        }),
    );
}

/// The URL schemes [`register`] serves.
const SCHEMES: [&str; 1] = ["mongodb"];

fn from_options(options: &serde_json::Value) -> scheduler_core::Result<MongoRecords> {
    let empty = serde_json::Map::new();
    let options = match options {
        serde_json::Value::Null => &empty,
        serde_json::Value::Object(map) => map,
        other => {
            return Err(Error::config(format!(
                "the mongodb job store takes a table of options, got {other}"
            )));
        }
    };
    let text = |key: &str| -> scheduler_core::Result<Option<&str>> {
        match options.get(key) {
            None => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(Error::config(format!(
                "the mongodb job store's option {key:?} must be a string"
            ))),
        }
    };
    for key in options.keys() {
        if !["url", "database", "collection", "max_pool_size"].contains(&key.as_str()) {
            return Err(Error::config(format!(
                "the mongodb job store has no option {key:?} (it takes url, database, \
                 collection, max_pool_size)"
            )));
        }
    }
    let mut builder =
        MongoJobStoreBuilder::new(text("url")?.unwrap_or("mongodb://127.0.0.1:27017/"));
    if let Some(database) = text("database")? {
        builder = builder.database(database);
    }
    if let Some(collection) = text("collection")? {
        builder = builder.collection(collection);
    }
    if let Some(size) = options.get("max_pool_size") {
        let size = size
            .as_u64()
            .and_then(|s| u32::try_from(s).ok())
            .ok_or_else(|| Error::config("max_pool_size must be a positive integer"))?;
        builder = builder.max_pool_size(size);
    }
    builder.build_records()
}

#[cfg(test)]
mod tests {
    use scheduler_core::{Components, ErrorKind};

    #[test]
    fn registration_serves_mongodb_urls_with_the_options() {
        let components = Components::new();
        super::register(&components);
        assert_eq!(components.record_schemes(), ["mongodb"]);
        let mut options = serde_json::Map::new();
        options.insert("collection".into(), "my_jobs".into());
        components
            .open_records("mongodb://127.0.0.1:27017/?directConnection=true", options)
            .unwrap();
        let mut options = serde_json::Map::new();
        options.insert("tablename".into(), "my_jobs".into());
        let err = components
            .open_records("mongodb://127.0.0.1:27017/", options)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.to_string().contains("tablename"), "{err}");
    }
}

//! The shared job-store conformance suite, run against the memory store.

use jobstore_memory::MemoryJobStore;
use scheduler_core::testkit::Namespace;

/// Handles on one namespace share one store: clones share their jobs.
async fn setup(ns: Namespace) -> anyhow::Result<MemoryJobStore> {
    Ok(ns.shared(MemoryJobStore::new))
}

scheduler_core::jobstore_conformance!(setup, in_memory);

#[test]
fn configuration_builds_a_memory_store_and_rejects_options() {
    let components = scheduler_core::Components::new();
    jobstore_memory::register(&components);
    let entry: scheduler_core::ComponentConfig =
        serde_json::from_str(r#"{"type": "memory"}"#).unwrap();
    let store = components.build_jobstore("default", &entry).unwrap();
    assert!(store.capabilities().closures);
    let entry: scheduler_core::ComponentConfig =
        serde_json::from_str(r#"{"type": "memory", "path": "/tmp/x"}"#).unwrap();
    let err = components.build_jobstore("default", &entry).unwrap_err();
    assert_eq!(err.kind(), scheduler_core::ErrorKind::Config);
}

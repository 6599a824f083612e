//! The Redis job store against a real server: the shared conformance suite, and what only
//! this store has. The server is `SCHEDULER_TEST_REDIS_URL` (default
//! `redis://127.0.0.1:6379/`); the outage tests start private servers of their own.

mod common;

use jobstore_redis::RedisJobStore;
use scheduler_core::testkit::Namespace;

/// Each namespace is a key prefix; each call is a new client (a second "process").
async fn setup(ns: Namespace) -> anyhow::Result<RedisJobStore> {
    common::namespaced_store(&ns).await
}

scheduler_core::jobstore_conformance!(setup, persistent);

//! The PostgreSQL store against a real server (`SCHEDULER_TEST_POSTGRES_URL`, else
//! postgres://postgres@127.0.0.1:5432/test): the conformance suite, the store's own tests,
//! and an outage and a hang of a private server.

mod common;

use common::Db;
use scheduler_core::testkit::Namespace;

async fn setup(ns: Namespace) -> anyhow::Result<jobstore_sql::SqlJobStore> {
    common::setup(Db::postgres(), ns).await
}

scheduler_core::jobstore_conformance!(setup, persistent);

sql_store_tests!(|_: &str| Db::postgres());

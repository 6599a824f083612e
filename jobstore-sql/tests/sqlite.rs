//! The SQLite store: the conformance suite, the store's own tests, and what only SQLite has
//! (a file created on demand, in-memory databases, a file locked by another process).

mod common;

use common::Db;
use scheduler_core::testkit::Namespace;

async fn setup(ns: Namespace) -> anyhow::Result<jobstore_sql::SqlJobStore> {
    let db = ns.shared(|| Db::sqlite(ns.name()));
    common::setup(db, ns).await
}

scheduler_core::jobstore_conformance!(setup, persistent);

sql_store_tests!(|name: &str| Db::sqlite(&common::table(name)));

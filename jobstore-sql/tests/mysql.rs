//! The MySQL/MariaDB store against a real server (`SCHEDULER_TEST_MYSQL_URL`, else
//! mysql://root@127.0.0.1:3306/test): the conformance suite, the store's own tests, and an
//! outage and a hang of a private server.

mod common;

use common::Db;
use scheduler_core::testkit::Namespace;

async fn setup(ns: Namespace) -> anyhow::Result<jobstore_sql::SqlJobStore> {
    common::setup(Db::mysql(), ns).await
}

scheduler_core::jobstore_conformance!(setup, persistent);

sql_store_tests!(|_: &str| Db::mysql());

//! The MySQL/MariaDB store against a real server (`SCHEDULER_TEST_MYSQL_URL`, else
//! mysql://root@127.0.0.1:3306/test): the conformance suite, the store's own tests, and an
//! outage and a hang of a private server.

mod common;
mod jobs_tool;

use common::Db;
use scheduler_core::testkit::Namespace;

async fn setup(ns: Namespace) -> anyhow::Result<jobstore_sql::SqlJobStore> {
    common::setup(Db::mysql(), ns).await
}

scheduler_core::jobstore_conformance!(setup, persistent);

sql_store_tests!(|_: &str| Db::mysql());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_server_that_goes_away_and_hangs_is_waited_out() {
    if let Err(e) = common::outage::outage_and_hang(common::servers::Kind::MariaDb).await {
        panic!("{e:#}");
    }
}

/// The jobs tool's record operations on this server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jobs_tool_operations_work_on_mysql() -> anyhow::Result<()> {
    jobs_tool::scenario(Db::mysql()).await
}

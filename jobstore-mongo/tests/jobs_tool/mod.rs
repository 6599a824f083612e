//! The jobs tool's record operations (`scheduler_core::store::admin`, run through
//! `testkit::admin_scenario`: import, filters, pause, resume, run-now requests honoured by a
//! fire commit, export, remove) on a collection of their own, opened by URL through
//! `jobstore_mongo::register` as the tool opens it.

use crate::common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jobs_tool_operations_work_on_mongodb() -> anyhow::Result<()> {
    common::require_server().await?;
    let collection = super::unique("jobs_tool");
    let options = serde_json::json!({
        "database": common::TEST_DATABASE, "collection": collection, "max_pool_size": 2,
    });
    let outcome = scheduler_core::testkit::admin_scenario_at_url(
        jobstore_mongo::register,
        &common::server_url(),
        options,
    )
    .await;
    let dropped = common::drop_collection(&collection).await;
    outcome?;
    dropped
}

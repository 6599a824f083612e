//! The jobs tool's record operations (`scheduler_core::store::admin`, run through
//! `testkit::admin_scenario`: import, filters, pause, resume, run-now requests honoured by a
//! fire commit, export, remove) on a collection of their own.

use crate::common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jobs_tool_operations_work_on_mongodb() -> anyhow::Result<()> {
    common::require_server().await?;
    let collection = super::unique("jobs_tool");
    let records = common::builder(&collection).build_records()?;
    let outcome = scheduler_core::testkit::admin_scenario(records).await;
    let dropped = common::drop_collection(&collection).await;
    outcome?;
    dropped
}

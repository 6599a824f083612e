//! The jobs tool's record operations (`scheduler_core::store::admin`, run through
//! `testkit::admin_scenario`: import, filters, pause, resume, run-now requests honoured by a
//! fire commit, export, remove) on keys of a prefix of their own, opened by URL through
//! `jobstore_redis::register` as the tool opens it.

use crate::common;

#[test]
fn the_jobs_tool_operations_work_on_redis() {
    super::with_namespace("jobs_tool", |ns| async move {
        let options = serde_json::json!({"prefix": common::prefix_of(&ns)});
        scheduler_core::testkit::admin_scenario_at_url(
            jobstore_redis::register,
            &common::redis_url(),
            options,
        )
        .await
    });
}

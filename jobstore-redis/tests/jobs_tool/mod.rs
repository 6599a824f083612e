//! The jobs tool's record operations (`scheduler_core::store::admin`, run through
//! `testkit::admin_scenario`: import, filters, pause, resume, run-now requests honoured by a
//! fire commit, export, remove) on keys of a prefix of their own.

use jobstore_redis::RedisRecords;

use crate::common;

#[test]
fn the_jobs_tool_operations_work_on_redis() {
    super::with_namespace("jobs_tool", |ns| async move {
        let records = RedisRecords::builder(common::redis_url())
            .prefix(common::prefix_of(&ns))
            .build_records()?;
        scheduler_core::testkit::admin_scenario(records).await
    });
}

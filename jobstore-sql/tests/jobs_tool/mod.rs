//! The jobs tool's record operations (`scheduler_core::store::admin`, run through
//! `testkit::admin_scenario`: import, filters, pause, resume, run-now requests honoured by a
//! fire commit, export, remove) on a table of a server's own, opened by URL through
//! `jobstore_sql::register` as the tool opens it.

use crate::common::{self, Db};

/// Runs the scenario on a fresh table of `db`, dropped afterwards.
pub(crate) async fn scenario(db: Db) -> anyhow::Result<()> {
    let table = common::table("jobs_tool");
    let outcome = scheduler_core::testkit::admin_scenario_at_url(
        jobstore_sql::register,
        &db.url(),
        serde_json::json!({"tablename": table, "max_connections": 2}),
    )
    .await;
    let dropped = db.drop_table(&table).await;
    outcome?;
    dropped
}

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

/// A database file that does not exist is created, in WAL mode.
#[tokio::test]
async fn a_missing_database_file_is_created_in_wal_mode() -> anyhow::Result<()> {
    use scheduler_core::JobStore;

    let dir = tempfile::tempdir()?;
    let path = dir.path().join("new.sqlite");
    let store = jobstore_sql::open(format!("sqlite://{}", path.display()))?;
    store.start(common::scenarios::context()).await?;
    anyhow::ensure!(path.exists(), "the file was not created");
    let db = Db::Sqlite(path);
    let mode = db.query("PRAGMA journal_mode", "t").await?;
    anyhow::ensure!(
        mode == [vec![common::Value::Text(Some("wal".into()))]],
        "{mode:?}"
    );
    let tables = db
        .query(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
            "t",
        )
        .await?;
    let named = |n: &str| vec![common::Value::Text(Some(n.into()))];
    // The jobs table, and the cluster tables named from it.
    anyhow::ensure!(
        tables
            == [
                named(jobstore_sql::DEFAULT_TABLE),
                named("apscheduler_jobs_nodes"),
                named("apscheduler_jobs_runs"),
            ],
        "{tables:?}"
    );
    store.shutdown().await?;
    Ok(())
}

/// `sqlite::memory:` is one database for the whole store, also under concurrent calls (each
/// pooled connection would otherwise open an empty database of its own), and it is gone
/// after shutdown, as a memory database is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_memory_database_is_one_database_for_the_store() -> anyhow::Result<()> {
    use scheduler_core::JobStore;

    let store = std::sync::Arc::new(
        jobstore_sql::builder("sqlite::memory:")
            .max_connections(5)
            .build()?,
    );
    let ctx = common::scenarios::context();
    store.start(ctx.clone()).await?;
    let h = common::scenarios::Harness::new(
        jobstore_sql::open("sqlite::memory:")?,
        scheduler_core::testkit::ManualClock::new(common::scenarios::t(0)),
    )?;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (store, spec) = (
            store.clone(),
            h.every_10s(&format!("m{i:02}"), common::scenarios::t(10 + i)),
        );
        let job = spec.into_job(
            &scheduler_core::JobDefaults::default(),
            common::scenarios::t(0),
        )?;
        tasks.push(tokio::spawn(async move { store.add_job(job).await }));
    }
    for task in tasks {
        task.await??;
    }
    let all = store.get_all_jobs().await?;
    anyhow::ensure!(all.len() == 20, "{} jobs", all.len());
    store.shutdown().await?;
    store.start(ctx).await?;
    anyhow::ensure!(store.get_all_jobs().await?.is_empty());
    Ok(())
}

/// Another process holding the file's write lock is SQLite's outage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_locked_by_another_process_is_waited_out() {
    let db = Db::sqlite(&common::table("locked"));
    let outcome = common::outage::locked_sqlite_file(&db).await;
    db.remove_files();
    if let Err(e) = outcome {
        panic!("{e:#}");
    }
}

/// The jobs tool's record operations (`scheduler_core::store::admin`) on a SQLite file.
#[tokio::test]
async fn the_jobs_tool_operations_work_on_a_sqlite_file() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("jobs.sqlite");
    let url = format!("sqlite://{}", path.display());
    let options = serde_json::json!({});
    scheduler_core::testkit::admin_scenario_at_url(jobstore_sql::register, &url, options).await
}

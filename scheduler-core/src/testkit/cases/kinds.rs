//! Capabilities and what each kind of store promises: closures in memory, jobs kept
//! across a restart by a persistent store.

use super::*;

/// An in-memory store says so.
pub async fn declares_in_memory_capabilities(f: &Fixture) -> anyhow::Result<()> {
    let caps = f.store().capabilities();
    ensure!(caps == Capabilities::in_memory(), "capabilities {caps:?}");
    Ok(())
}

/// A persistent store says so (and may say it can be shared: `cluster`, with or without
/// `notifies`; never `notifies` alone).
pub async fn declares_persistent_capabilities(f: &Fixture) -> anyhow::Result<()> {
    let caps = f.store().capabilities();
    let shared = Capabilities::persistent().with_cluster(caps.notifies);
    ensure!(
        caps == Capabilities::persistent() || caps == shared,
        "capabilities {caps:?}"
    );
    Ok(())
}

/// An in-memory store holds jobs that run closures.
pub async fn holds_closure_jobs(f: &Fixture) -> anyhow::Result<()> {
    f.store().add_job(f.closure_job("closure", at(0))).await?;
    let found = fetch(f.store(), "closure").await?;
    ensure!(!found.target().is_persistable());
    ensure!(ids(&due(f.store(), at(0)).await?) == ["closure"]);
    Ok(())
}

/// An in-memory store forgets everything at shutdown, as APScheduler's `MemoryJobStore`.
pub async fn forgets_jobs_at_shutdown(f: &Fixture) -> anyhow::Result<()> {
    add_all(f, &[f.job("a", Some(at(0)))]).await?;
    f.restart().await?;
    ensure!(
        f.store().get_all_jobs().await?.is_empty(),
        "jobs survived shutdown"
    );
    Ok(())
}

/// A persistent store refuses closure jobs with `NotPersistable` and keeps nothing of them.
pub async fn refuses_closure_jobs(f: &Fixture) -> anyhow::Result<()> {
    let result = f.store().add_job(f.closure_job("closure", at(0))).await;
    expect_kind(result, ErrorKind::NotPersistable, "add_job(closure)")?;
    ensure!(f.store().lookup_job("closure").await?.is_none());
    Ok(())
}

/// A persistent store still has every job, every field and every revision after a restart.
pub async fn keeps_jobs_across_restart(f: &Fixture) -> anyhow::Result<()> {
    let jobs = [
        f.job("a", Some(at(5))),
        f.job("b", None),
        f.job("c", Some(at(1))),
    ];
    add_all(f, &jobs).await?;
    let before = f.store().get_all_jobs().await?;
    f.restart().await?;
    let back = f.store().get_all_jobs().await?;
    ensure!(
        ids(&back) == ["c", "a", "b"],
        "after restart: {:?}",
        ids(&back)
    );
    for (job, old) in jobs.iter().zip(["a", "b", "c"]) {
        let found = fetch(f.store(), job.id()).await?;
        ensure!(
            f.record(&found)? == f.record(job)?,
            "job {:?} changed across restart",
            job.id()
        );
        let old = before.iter().find(|j| j.id() == old).context("listed")?;
        ensure!(
            fetch(f.store(), old.id()).await?.revision() == old.revision(),
            "the revision of {:?} changed across restart",
            old.id()
        );
    }
    Ok(())
}

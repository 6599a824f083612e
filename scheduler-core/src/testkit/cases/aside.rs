//! Jobs set aside by the scheduler (`skip_until_changed`).

use super::*;

/// A job set aside with `skip_until_changed` (its executor is missing in this process) is
/// neither due nor counted for the next run time, but stays stored and listed; once it is
/// written again (a new revision) it is due again, and `clear_skipped` releases it too.
pub async fn skipped_jobs_are_not_due_until_they_change(f: &Fixture) -> anyhow::Result<()> {
    add_all(f, &[f.job("a", Some(at(0))), f.job("b", Some(at(1)))]).await?;
    let a = fetch(f.store(), "a").await?;
    f.store().skip_until_changed("a", a.revision());
    ensure!(ids(&due(f.store(), at(5)).await?) == ["b"]);
    ensure!(f.store().get_next_run_time().await? == Some(at(1)));
    ensure!(
        ids(&f.store().get_all_jobs().await?) == ["a", "b"],
        "a set-aside job is still listed"
    );
    ensure!(fetch(f.store(), "a").await?.revision() == a.revision());

    f.store().update_job(a).await?;
    ensure!(
        ids(&due(f.store(), at(5)).await?) == ["a", "b"],
        "changed, it is due again"
    );
    let a = fetch(f.store(), "a").await?;
    f.store().skip_until_changed("a", a.revision());
    ensure!(ids(&due(f.store(), at(5)).await?) == ["b"]);
    f.store().clear_skipped();
    ensure!(
        ids(&due(f.store(), at(5)).await?) == ["a", "b"],
        "clear_skipped releases it"
    );
    ensure!(f.store().get_next_run_time().await? == Some(at(0)));
    Ok(())
}

/// Jobs set aside do not take places in a due batch.
pub async fn skipped_jobs_do_not_fill_the_due_batch(f: &Fixture) -> anyhow::Result<()> {
    let jobs: Vec<Job> = (0..5)
        .map(|n| f.job(&format!("j{n}"), Some(at(n))))
        .collect();
    add_all(f, &jobs).await?;
    for job in due(f.store(), at(2)).await? {
        f.store().skip_until_changed(job.id(), job.revision());
    }
    let batch = f.store().get_due_jobs(at(10), 2).await?;
    ensure!(ids(&batch) == ["j3", "j4"], "batch {:?}", ids(&batch));
    ensure!(f.store().get_next_run_time().await? == Some(at(3)));
    Ok(())
}

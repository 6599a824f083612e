//! Adds, upserts, conditional updates, revisions and removals.

use super::*;

/// Adding an id that exists fails with `ConflictingId` and leaves the first job unchanged.
pub async fn conflicting_id_is_refused_and_keeps_the_original(f: &Fixture) -> anyhow::Result<()> {
    let first = f.job("dup", Some(at(0)));
    f.store().add_job(first.clone()).await?;
    let second = f.job_with_args("dup", Some(at(50)), serde_json::json!("second"));
    expect_kind(
        f.store().add_job(second).await,
        ErrorKind::ConflictingId,
        "second add_job",
    )?;
    let found = fetch(f.store(), "dup").await?;
    ensure!(f.record(&found)? == f.record(&first)?, "original changed");
    ensure!(f.store().get_all_jobs().await?.len() == 1);
    Ok(())
}

/// `add_jobs` adds a batch as `add_job` adds each job, answering every job in order: a job
/// whose id is taken (by a stored job, or by an earlier job of the same batch) is refused with
/// `ConflictingId` without stopping the others, and leaves the stored job unchanged. Every job
/// added comes back with every field and the revision the answer gave.
pub async fn add_jobs_answers_each_job_in_order(f: &Fixture) -> anyhow::Result<()> {
    let taken = f.job("taken", Some(at(0)));
    add_all(f, std::slice::from_ref(&taken)).await?;
    let batch: Vec<Job> = vec![
        f.job("b1", Some(at(2))),
        f.job_with_args("taken", Some(at(9)), serde_json::json!("late")),
        f.job("b2", None),
        f.job("b3", Some(at(1))),
        f.job_with_args("b1", Some(at(9)), serde_json::json!("twice")),
    ];
    let answers = f.store().add_jobs(batch.clone()).await?;
    ensure!(answers.len() == batch.len(), "{} answers", answers.len());
    for (job, answer) in batch.iter().zip(&answers) {
        let refused = matches!(answer, Err(e) if e.kind() == ErrorKind::ConflictingId);
        let duplicate = job.id() == "taken" || job.next_run_time() == Some(at(9));
        ensure!(
            refused == duplicate,
            "job {:?} (first run {:?}): answer {answer:?}",
            job.id(),
            job.next_run_time()
        );
    }
    for (job, answer) in batch.iter().zip(&answers).filter(|(_, a)| a.is_ok()) {
        let found = fetch(f.store(), job.id()).await?;
        ensure!(
            f.record(&found)? == f.record(job)?,
            "{:?} changed",
            job.id()
        );
        ensure!(
            Some(&found.revision()) == answer.as_ref().ok(),
            "{:?} stored at revision {}, answered {answer:?}",
            job.id(),
            found.revision()
        );
    }
    ensure!(f.record(&fetch(f.store(), "taken").await?)? == f.record(&taken)?);
    ensure!(ids(&f.store().get_all_jobs().await?) == ["taken", "b3", "b1", "b2"]);
    ensure!(f.store().add_jobs(Vec::new()).await?.is_empty());
    Ok(())
}

/// `add_jobs` of more jobs than one statement of a SQL store holds (1,000 rows) answers each
/// job by its place: ids already stored, spread over every part of the batch, are refused
/// and left unchanged, every other job is added once.
pub async fn add_jobs_over_several_statements_answers_each(f: &Fixture) -> anyhow::Result<()> {
    const JOBS: usize = 2_500;
    let taken: Vec<Job> = [10, 1_200, 2_400]
        .iter()
        .map(|n| f.job(&format!("j{n:04}"), Some(at(0))))
        .collect();
    add_all(f, &taken).await?;
    let batch: Vec<Job> = (0..JOBS)
        .map(|n| f.job_with_args(&format!("j{n:04}"), Some(at(5)), serde_json::json!("batch")))
        .collect();
    let answers = f.store().add_jobs(batch.clone()).await?;
    ensure!(answers.len() == JOBS, "{} answers", answers.len());
    for (job, answer) in batch.iter().zip(&answers) {
        let refused = matches!(answer, Err(e) if e.kind() == ErrorKind::ConflictingId);
        let stored = taken.iter().any(|t| t.id() == job.id());
        ensure!(refused == stored, "job {:?}: answer {answer:?}", job.id());
    }
    for job in &taken {
        ensure!(f.record(&fetch(f.store(), job.id()).await?)? == f.record(job)?);
    }
    ensure!(f.store().get_all_jobs().await?.len() == JOBS);
    Ok(())
}

/// `upsert_job` adds a new job, and replaces an existing one whatever revision it is at
/// (APScheduler's `replace_existing`), leaving one job with that id.
pub async fn upsert_adds_or_replaces_whatever_the_revision(f: &Fixture) -> anyhow::Result<()> {
    let first = f.job("u", Some(at(5)));
    let r1 = f.store().upsert_job(first.clone()).await?;
    ensure!(f.record(&fetch(f.store(), "u").await?)? == f.record(&first)?);
    add_all(f, &[f.job("other", Some(at(3)))]).await?;
    // A freshly built job (revision 0) replaces the stored one.
    let second = f.job_with_args("u", Some(at(1)), serde_json::json!("second"));
    let r2 = f.store().upsert_job(second.clone()).await?;
    ensure!(r2 != r1, "an upsert kept the revision");
    let found = fetch(f.store(), "u").await?;
    ensure!(f.record(&found)? == f.record(&second)?, "not replaced");
    ensure!(found.revision() == r2);
    ensure!(ids(&f.store().get_all_jobs().await?) == ["u", "other"]);
    ensure!(f.store().get_next_run_time().await? == Some(at(1)));
    Ok(())
}

/// `update_job` replaces the stored fields and moves the job in the run-time order.
pub async fn update_replaces_fields_and_reorders(f: &Fixture) -> anyhow::Result<()> {
    add_all(f, &[f.job("a", Some(at(1))), f.job("b", Some(at(2)))]).await?;
    let stored = fetch(f.store(), "a").await?;
    let mut updated = f.job_with_args("a", Some(at(3)), serde_json::json!({"changed": true}));
    updated.set_revision(stored.revision());
    f.store().update_job(updated.clone()).await?;
    let found = fetch(f.store(), "a").await?;
    ensure!(
        f.record(&found)? == f.record(&updated)?,
        "update not applied: {found:?}"
    );
    ensure!(ids(&f.store().get_all_jobs().await?) == ["b", "a"]);
    ensure!(ids(&due(f.store(), at(2)).await?) == ["b"]);
    ensure!(f.store().get_next_run_time().await? == Some(at(2)));
    Ok(())
}

/// Updating a job that does not exist fails with `JobNotFound` and adds nothing.
pub async fn update_of_a_missing_job_is_job_not_found(f: &Fixture) -> anyhow::Result<()> {
    let result = f.store().update_job(f.job("ghost", Some(at(0)))).await;
    expect_kind(result, ErrorKind::JobNotFound, "update_job(missing)")?;
    ensure!(
        f.store().get_all_jobs().await?.is_empty(),
        "update added a job"
    );
    Ok(())
}

/// An update made with a job read before someone else wrote it fails with `Conflict` and
/// writes nothing: the other writer's change stays. A job never read from the store (revision
/// 0) cannot update one that is there either.
pub async fn update_at_a_stale_revision_is_a_conflict(f: &Fixture) -> anyhow::Result<()> {
    add_all(f, &[f.job("a", Some(at(0)))]).await?;
    let read_by_us = fetch(f.store(), "a").await?;
    let read_by_them = read_by_us.clone();

    let mut theirs = read_by_them;
    theirs.set_next_run_time(Some(at(7)));
    f.store().update_job(theirs).await?;

    let mut ours = read_by_us;
    ours.set_next_run_time(Some(at(9)));
    expect_kind(
        f.store().update_job(ours).await,
        ErrorKind::Conflict,
        "update at a stale revision",
    )?;
    let never_read = f.job("a", Some(at(11)));
    expect_kind(
        f.store().update_job(never_read).await,
        ErrorKind::Conflict,
        "update of a job never read",
    )?;
    ensure!(
        fetch(f.store(), "a").await?.next_run_time() == Some(at(7)),
        "a stale update overwrote a newer one"
    );
    Ok(())
}

/// Every write gives the job a revision it never had: add, update, upsert, and a committed
/// fire. Reads hand out the current revision.
pub async fn every_write_gives_a_new_revision(f: &Fixture) -> anyhow::Result<()> {
    let mut seen = Vec::new();
    let mut expect_new = |revision: u64, what: &str| -> anyhow::Result<()> {
        ensure!(
            revision != 0 && !seen.contains(&revision),
            "{what} gave revision {revision}, seen {seen:?}"
        );
        seen.push(revision);
        Ok(())
    };
    let r = f.store().add_job(f.job("a", Some(at(0)))).await?;
    expect_new(r, "add_job")?;
    let job = fetch(f.store(), "a").await?;
    ensure!(
        job.revision() == r,
        "lookup_job hands out {}",
        job.revision()
    );
    let r = f.store().update_job(job).await?;
    expect_new(r, "update_job")?;
    ensure!(fetch(f.store(), "a").await?.revision() == r);
    let r = f.store().upsert_job(f.job("a", Some(at(0)))).await?;
    expect_new(r, "upsert_job")?;
    let due_jobs = due(f.store(), at(0)).await?;
    ensure!(
        due_jobs.first().map(Job::revision) == Some(r),
        "get_due_jobs hands out a stale revision"
    );
    let all = f.store().get_all_jobs().await?;
    ensure!(
        all.first().map(Job::revision) == Some(r),
        "get_all_jobs hands out a stale revision"
    );
    f.store()
        .commit_fires(&[commit(&due_jobs[0], FireOutcome::Reschedule(at(60)))?])
        .await?;
    let r = fetch(f.store(), "a").await?.revision();
    expect_new(r, "commit_fires")?;
    Ok(())
}

/// Pausing (no next run time) and unpausing through `update_job`.
pub async fn update_can_pause_and_unpause(f: &Fixture) -> anyhow::Result<()> {
    add_all(f, &[f.job("a", Some(at(0))), f.job("b", Some(at(5)))]).await?;
    let mut a = fetch(f.store(), "a").await?;
    a.set_next_run_time(None);
    f.store().update_job(a).await?;
    ensure!(ids(&due(f.store(), at(10)).await?) == ["b"]);
    ensure!(ids(&f.store().get_all_jobs().await?) == ["b", "a"]);
    ensure!(f.store().get_next_run_time().await? == Some(at(5)));
    let mut a = fetch(f.store(), "a").await?;
    a.set_next_run_time(Some(at(1)));
    f.store().update_job(a).await?;
    ensure!(ids(&due(f.store(), at(10)).await?) == ["a", "b"]);
    Ok(())
}

/// `remove_job` deletes that job only.
pub async fn remove_deletes_only_that_job(f: &Fixture) -> anyhow::Result<()> {
    add_all(
        f,
        &[
            f.job("a", Some(at(0))),
            f.job("b", Some(at(1))),
            f.job("c", None),
        ],
    )
    .await?;
    f.store().remove_job("b").await?;
    ensure!(f.store().lookup_job("b").await?.is_none());
    ensure!(ids(&f.store().get_all_jobs().await?) == ["a", "c"]);
    ensure!(ids(&due(f.store(), at(5)).await?) == ["a"]);
    f.store().remove_job("c").await?;
    ensure!(ids(&f.store().get_all_jobs().await?) == ["a"]);
    Ok(())
}

/// Removing an id that does not exist fails with `JobNotFound`.
pub async fn remove_of_a_missing_job_is_job_not_found(f: &Fixture) -> anyhow::Result<()> {
    add_all(f, &[f.job("a", Some(at(0)))]).await?;
    expect_kind(
        f.store().remove_job("missing").await,
        ErrorKind::JobNotFound,
        "remove_job(missing)",
    )?;
    f.store().remove_job("a").await?;
    expect_kind(
        f.store().remove_job("a").await,
        ErrorKind::JobNotFound,
        "second remove_job",
    )?;
    Ok(())
}

/// `remove_all_jobs` leaves nothing, and the store stays usable.
pub async fn remove_all_empties_the_store(f: &Fixture) -> anyhow::Result<()> {
    add_all(f, &[f.job("a", Some(at(0))), f.job("b", None)]).await?;
    f.store().remove_all_jobs().await?;
    ensure!(f.store().get_all_jobs().await?.is_empty());
    ensure!(f.store().get_next_run_time().await?.is_none());
    ensure!(due(f.store(), at(100)).await?.is_empty());
    add_all(f, &[f.job("a", Some(at(0)))]).await?;
    ensure!(ids(&f.store().get_all_jobs().await?) == ["a"]);
    Ok(())
}

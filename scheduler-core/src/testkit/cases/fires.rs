//! Fire commits: outcomes, stale commits, answers by id, and races between two handles.

use super::*;

/// `commit_fires` applies each outcome: a new next run time, a pause (the job stays, with no
/// next run time), a removal; every commit is answered `Committed`.
pub async fn commit_fires_reschedules_pauses_and_removes(f: &Fixture) -> anyhow::Result<()> {
    add_all(
        f,
        &[
            f.job("repeat", Some(at(0))),
            f.job("broken", Some(at(0))),
            f.job("once", Some(at(1))),
        ],
    )
    .await?;
    let due_jobs = due(f.store(), at(1)).await?;
    ensure!(due_jobs.len() == 3, "due {:?}", ids(&due_jobs));
    let commits = due_jobs
        .iter()
        .map(|job| {
            let outcome = match job.id() {
                "repeat" => FireOutcome::Reschedule(at(60)),
                "broken" => FireOutcome::Pause,
                _ => FireOutcome::Remove,
            };
            commit(job, outcome)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let answers = f.store().commit_fires(&commits).await?;
    for id in ["repeat", "broken", "once"] {
        ensure!(
            answers.get(id) == Some(FireAnswer::Committed),
            "answer for {id:?}: {:?}",
            answers.get(id)
        );
    }
    let repeat = fetch(f.store(), "repeat").await?;
    ensure!(repeat.next_run_time() == Some(at(60)));
    let broken = fetch(f.store(), "broken").await?;
    ensure!(broken.is_paused(), "not paused: {broken:?}");
    ensure!(
        f.store().lookup_job("once").await?.is_none(),
        "finished job not removed"
    );
    ensure!(due(f.store(), at(59)).await?.is_empty());
    ensure!(f.store().get_next_run_time().await? == Some(at(60)));
    ensure!(ids(&f.store().get_all_jobs().await?) == ["repeat", "broken"]);
    Ok(())
}

/// A fire is not committed for a job written after it was read as due (moved, removed, or
/// changed with the same run time): those answer `Stale` and keep the change; the others
/// commit.
pub async fn commit_fires_skips_jobs_that_changed(f: &Fixture) -> anyhow::Result<()> {
    add_all(
        f,
        &[
            f.job("moved", Some(at(0))),
            f.job("removed", Some(at(0))),
            f.job("edited", Some(at(0))),
            f.job("kept", Some(at(0))),
        ],
    )
    .await?;
    let due_jobs = due(f.store(), at(0)).await?;
    ensure!(due_jobs.len() == 4);
    // Meanwhile, another process moves one job, removes another, edits a third in place.
    let other = f.second_store().await?;
    let mut moved = fetch(&*other, "moved").await?;
    moved.set_next_run_time(Some(at(30)));
    other.update_job(moved).await?;
    other.remove_job("removed").await?;
    let edited = fetch(&*other, "edited").await?;
    let mut replacement = f.job_with_args("edited", Some(at(0)), serde_json::json!("edited"));
    replacement.set_revision(edited.revision());
    other.update_job(replacement).await?;

    let commits = due_jobs
        .iter()
        .map(|job| commit(job, FireOutcome::Reschedule(at(60))))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let answers = f.store().commit_fires(&commits).await?;
    for id in ["moved", "removed", "edited", "kept"] {
        let expected = if id == "kept" {
            FireAnswer::Committed
        } else {
            FireAnswer::Stale
        };
        ensure!(
            answers.get(id) == Some(expected),
            "answer for {id:?}: {:?}",
            answers.get(id)
        );
    }
    ensure!(
        fetch(f.store(), "moved").await?.next_run_time() == Some(at(30)),
        "a stale fire overwrote a change"
    );
    ensure!(
        f.store().lookup_job("removed").await?.is_none(),
        "a stale fire revived a job"
    );
    let edited = fetch(f.store(), "edited").await?;
    ensure!(
        edited.next_run_time() == Some(at(0)) && edited.target().args_json() == Some("\"edited\""),
        "a stale fire overwrote an edit: {edited:?}"
    );
    ensure!(fetch(f.store(), "kept").await?.next_run_time() == Some(at(60)));
    Ok(())
}

/// Changing a job's trigger without changing its next run time (`modify_job(trigger=...)`)
/// still defeats a fire commit made from the job read before: the new trigger is kept, and
/// the next fire is computed from it.
pub async fn a_trigger_change_alone_defeats_a_stale_fire_commit(f: &Fixture) -> anyhow::Result<()> {
    add_all(f, &[f.job("j", Some(at(0)))]).await?;
    let read_as_due = due(f.store(), at(0)).await?;
    let read_as_due = read_as_due.first().context("not due")?;

    let retriggered = crate::JobSpec::new(
        f.echo.call(serde_json::json!({"id": "j"})),
        StepTrigger {
            start: at(0),
            step_secs: 300,
        },
    )
    .id("j")
    .next_run_time(at(0));
    let mut retriggered = f.build(retriggered);
    retriggered.set_revision(read_as_due.revision());
    // Changed by another process (a change through this handle could be caught before the
    // store's own conditional write is tested).
    f.second_store().await?.update_job(retriggered).await?;

    let answers = f
        .store()
        .commit_fires(&[commit(read_as_due, FireOutcome::Reschedule(at(60)))?])
        .await?;
    ensure!(
        answers.get("j") == Some(FireAnswer::Stale),
        "a fire computed from the old trigger was committed: {:?}",
        answers.get("j")
    );
    let stored = fetch(f.store(), "j").await?;
    ensure!(
        stored.trigger().to_string() == "step[300s]",
        "trigger {}",
        stored.trigger()
    );
    ensure!(
        stored.next_run_time() == Some(at(0)),
        "still due at its time"
    );
    Ok(())
}

/// A job removed and added again under the same id, at the same run time, is a new job: a fire
/// commit made from the old one answers `Stale` and leaves the new one as it is.
pub async fn a_job_added_again_defeats_a_stale_fire_commit(f: &Fixture) -> anyhow::Result<()> {
    add_all(f, &[f.job("j", Some(at(0)))]).await?;
    let old = due(f.store(), at(0)).await?;
    let old = old.first().context("not due")?;
    let other = f.second_store().await?;
    other.remove_job("j").await?;
    let new = f.job_with_args("j", Some(at(0)), serde_json::json!("new"));
    other.add_job(new.clone()).await?;
    let answers = f
        .store()
        .commit_fires(&[commit(old, FireOutcome::Remove)?])
        .await?;
    ensure!(
        answers.get("j") == Some(FireAnswer::Stale),
        "a fire of the removed job was committed to its successor: {:?}",
        answers.get("j")
    );
    let stored = fetch(f.store(), "j").await?;
    ensure!(f.record(&stored)? == f.record(&new)?, "the new job changed");
    Ok(())
}

/// Every commit of a batch is answered under its job's id, including a job that is gone.
pub async fn commit_fires_answers_every_job_by_id(f: &Fixture) -> anyhow::Result<()> {
    add_all(
        f,
        &[f.job("current", Some(at(0))), f.job("stale", Some(at(0)))],
    )
    .await?;
    let due_jobs = due(f.store(), at(0)).await?;
    let mut commits = due_jobs
        .iter()
        .map(|job| commit(job, FireOutcome::Reschedule(at(60))))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let other = f.second_store().await?;
    let mut stale = fetch(&*other, "stale").await?;
    stale.set_next_run_time(Some(at(0)));
    other.update_job(stale).await?;
    commits.push(FireCommit::new("gone", at(0), 1, FireOutcome::Remove));
    commits.reverse();
    let answers = f.store().commit_fires(&commits).await?;
    ensure!(answers.len() == 3, "answers {answers:?}");
    ensure!(answers.get("current") == Some(FireAnswer::Committed));
    ensure!(answers.get("stale") == Some(FireAnswer::Stale));
    ensure!(answers.get("gone") == Some(FireAnswer::Stale));
    Ok(())
}

/// Two store handles on the same data (two processes) that read the same due jobs and commit
/// their fires at the same time: for every job exactly one commit wins, and the job holds the
/// winner's outcome.
pub async fn racing_fire_commits_on_two_handles_apply_once(f: &Fixture) -> anyhow::Result<()> {
    race_fire_commits(f, 1).await
}

/// As [`racing_fire_commits_on_two_handles_apply_once`], each handle committing batches of
/// several jobs, one handle in id order and the other in reverse: batches that overlap, in
/// both orders, still apply each fire once and answer each job by its own id.
pub async fn racing_fire_batches_on_two_handles_apply_once(f: &Fixture) -> anyhow::Result<()> {
    race_fire_commits(f, 5).await
}

/// Both handles commit every job's fire, in batches of `batch` commits (the second handle in
/// reverse order), at the same time.
async fn race_fire_commits(f: &Fixture, batch: usize) -> anyhow::Result<()> {
    const JOBS: i64 = 24;
    let jobs: Vec<Job> = (0..JOBS)
        .map(|n| f.job(&format!("race-{n:02}"), Some(at(n % 3))))
        .collect();
    add_all(f, &jobs).await?;
    let first = f.shared_store();
    let second = f.second_store().await?;
    let seen_by_first = due(&*first, at(5)).await?;
    let seen_by_second = due(&*second, at(5)).await?;
    ensure!(seen_by_first.len() == JOBS as usize && seen_by_second.len() == JOBS as usize);
    // Even jobs: both reschedule, to different times. Odd jobs: one removes, one reschedules.
    let outcome = |handle: usize, job: &Job| {
        let n: usize = job.id()[5..].parse().unwrap_or_default();
        match (handle, n % 2) {
            (0, 1) => FireOutcome::Remove,
            (0, _) => FireOutcome::Reschedule(at(100)),
            _ => FireOutcome::Reschedule(at(200)),
        }
    };
    let mut tasks = tokio::task::JoinSet::new();
    for (handle, (store, seen)) in [(first, seen_by_first), (second, seen_by_second)]
        .into_iter()
        .enumerate()
    {
        let mut commits = seen
            .iter()
            .map(|job| commit(job, outcome(handle, job)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        if handle == 1 {
            commits.reverse();
        }
        tasks.spawn(async move {
            let mut won = Vec::new();
            for chunk in commits.chunks(batch) {
                let answers = store.commit_fires(chunk).await?;
                ensure!(answers.len() == chunk.len(), "answers {answers:?}");
                for c in chunk {
                    match answers.get(&c.job_id) {
                        Some(FireAnswer::Committed) => won.push(c.clone()),
                        Some(FireAnswer::Stale) => {}
                        other => bail!("answer {other:?} for {:?} (no limit given)", c.job_id),
                    }
                }
                tokio::task::yield_now().await;
            }
            anyhow::Ok(won)
        });
    }
    let mut winners: Vec<FireCommit> = Vec::new();
    while let Some(won) = tasks.join_next().await {
        winners.extend(won??);
    }
    for job in &jobs {
        let won: Vec<&FireCommit> = winners.iter().filter(|c| &*c.job_id == job.id()).collect();
        ensure!(
            won.len() == 1,
            "job {:?}: {} commits won",
            job.id(),
            won.len()
        );
        let stored = f.store().lookup_job(job.id()).await?;
        match won[0].outcome {
            FireOutcome::Remove => ensure!(stored.is_none(), "{:?} not removed", job.id()),
            outcome => ensure!(
                stored.as_ref().and_then(Job::next_run_time) == outcome.next_run_time(),
                "{:?} holds {stored:?}, the winner said {outcome:?}",
                job.id()
            ),
        }
    }
    Ok(())
}

/// Two handles on the same data doing read-modify-write cycles on one job at once, each
/// retrying on `Conflict`, lose no update: a counter incremented 2 × N times ends at 2 × N.
pub async fn racing_updates_on_two_handles_lose_nothing(f: &Fixture) -> anyhow::Result<()> {
    const PER_HANDLE: u64 = 15;
    add_all(
        f,
        &[f.job_with_args("counter", Some(at(0)), serde_json::json!({"count": 0}))],
    )
    .await?;
    let first = f.shared_store();
    let second = f.second_store().await?;
    let mut tasks = tokio::task::JoinSet::new();
    for store in [first, second] {
        let echo = f.echo.clone();
        tasks.spawn(async move {
            let mut conflicts = 0u32;
            for _ in 0..PER_HANDLE {
                loop {
                    let read = store.lookup_job("counter").await?.context("counter gone")?;
                    let count = read
                        .target()
                        .args_json()
                        .and_then(|a| serde_json::from_str::<serde_json::Value>(a).ok())
                        .and_then(|a| a["count"].as_u64())
                        .context("no count")?;
                    let target = echo.call(serde_json::json!({ "count": count + 1 }));
                    let mut next = read;
                    next.apply(crate::JobChanges::new().target(target))?;
                    match store.update_job(next).await {
                        Ok(_) => break,
                        Err(e) if e.kind() == ErrorKind::Conflict => conflicts += 1,
                        Err(e) => return Err(e.into()),
                    }
                    tokio::task::yield_now().await;
                }
                tokio::task::yield_now().await;
            }
            anyhow::Ok(conflicts)
        });
    }
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    let job = fetch(f.store(), "counter").await?;
    let args = job.target().args_json().unwrap_or_default();
    ensure!(
        args == format!(r#"{{"count":{}}}"#, 2 * PER_HANDLE),
        "after {} increments: {args}",
        2 * PER_HANDLE
    );
    Ok(())
}

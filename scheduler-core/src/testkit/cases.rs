//! The conformance cases, one async function each. See [`jobstore_conformance!`](crate::jobstore_conformance).

use anyhow::{Context as _, bail, ensure};
use chrono::TimeDelta;

use super::{Fixture, at};
use crate::error::ErrorKind;
use crate::job::Job;
use crate::store::{Capabilities, FireCommit};

fn ids(jobs: &[Job]) -> Vec<&str> {
    jobs.iter().map(Job::id).collect()
}

async fn add_all(f: &Fixture, jobs: &[Job]) -> anyhow::Result<()> {
    for job in jobs {
        f.store()
            .add_job(job.clone())
            .await
            .with_context(|| format!("add_job({:?})", job.id()))?;
    }
    Ok(())
}

fn expect_kind<T: std::fmt::Debug>(
    result: crate::Result<T>,
    kind: ErrorKind,
    what: &str,
) -> anyhow::Result<()> {
    match result {
        Err(e) if e.kind() == kind => Ok(()),
        Err(e) => bail!("{what}: expected a {kind} error, got {:?}: {e}", e.kind()),
        Ok(v) => bail!("{what}: expected a {kind} error, got Ok({v:?})"),
    }
}

// ----- capabilities -----------------------------------------------------------------------

/// An in-memory store says so.
pub async fn declares_in_memory_capabilities(f: &Fixture) -> anyhow::Result<()> {
    let caps = f.store().capabilities();
    ensure!(caps == Capabilities::in_memory(), "capabilities {caps:?}");
    Ok(())
}

/// A persistent store says so.
pub async fn declares_persistent_capabilities(f: &Fixture) -> anyhow::Result<()> {
    let caps = f.store().capabilities();
    ensure!(caps == Capabilities::persistent(), "capabilities {caps:?}");
    Ok(())
}

/// An in-memory store holds jobs that run closures.
pub async fn holds_closure_jobs(f: &Fixture) -> anyhow::Result<()> {
    f.store().add_job(f.closure_job("closure", at(0))).await?;
    let found = f
        .store()
        .lookup_job("closure")
        .await?
        .context("closure job lost")?;
    ensure!(!found.target().is_persistable());
    ensure!(ids(&f.store().get_due_jobs(at(0)).await?) == ["closure"]);
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

/// A persistent store still has every job, every field, after a restart.
pub async fn keeps_jobs_across_restart(f: &Fixture) -> anyhow::Result<()> {
    let jobs = [
        f.job("a", Some(at(5))),
        f.job("b", None),
        f.job("c", Some(at(1))),
    ];
    add_all(f, &jobs).await?;
    f.restart().await?;
    let back = f.store().get_all_jobs().await?;
    ensure!(
        ids(&back) == ["c", "a", "b"],
        "after restart: {:?}",
        ids(&back)
    );
    for job in &jobs {
        let found = f.store().lookup_job(job.id()).await?.context("job lost")?;
        ensure!(
            f.record(&found)? == f.record(job)?,
            "job {:?} changed across restart",
            job.id()
        );
    }
    Ok(())
}

/// A saved job whose function this process does not know is skipped (decoding its record
/// fails with [`UnknownJobFunction`](crate::ErrorKind::UnknownJobFunction); the store logs it)
/// and kept intact: it does not fail the other jobs, does not keep the scheduler awake, and is
/// still there (and runnable) for a process that knows the function.
pub async fn skips_a_record_whose_job_function_is_unknown(f: &Fixture) -> anyhow::Result<()> {
    add_all(
        f,
        &[
            f.ghost_job("ghost", at(0))?,
            f.job("a", Some(at(1))),
            f.job("later", Some(at(100))),
        ],
    )
    .await?;
    f.restart_without_ghost().await?;

    let due = f
        .store()
        .get_due_jobs(at(10))
        .await
        .context("one bad record failed get_due_jobs")?;
    ensure!(ids(&due) == ["a"], "due: {:?}", ids(&due));
    let all = f
        .store()
        .get_all_jobs()
        .await
        .context("one bad record failed get_all_jobs")?;
    ensure!(ids(&all) == ["a", "later"], "all: {:?}", ids(&all));
    expect_kind(
        f.store().lookup_job("ghost").await,
        ErrorKind::UnknownJobFunction,
        "lookup_job(ghost)",
    )?;
    let next = f.store().get_next_run_time().await?;
    ensure!(
        next == Some(at(1)),
        "next run time {next:?}: an unreadable job must not keep the scheduler busy"
    );

    f.restart().await?;
    let ghost = f
        .store()
        .lookup_job("ghost")
        .await?
        .context("the unreadable job was deleted")?;
    ensure!(
        ghost.next_run_time() == Some(at(0)),
        "the unreadable job was changed"
    );
    f.store().remove_job("ghost").await?;
    Ok(())
}

// ----- lookups ----------------------------------------------------------------------------

/// A job comes back from `lookup_job` with every field as it was added.
pub async fn add_and_lookup_keep_every_field(f: &Fixture) -> anyhow::Result<()> {
    let job = f.job_with_args(
        "ünï-cødé id/with:chars",
        Some(at(0) + TimeDelta::microseconds(1)),
        serde_json::json!({"order": 42, "items": ["a", "b"], "note": "quotes \" and \\ slashes"}),
    );
    f.store().add_job(job.clone()).await?;
    let found = f
        .store()
        .lookup_job(job.id())
        .await?
        .context("added job not found")?;
    ensure!(
        f.record(&found)? == f.record(&job)?,
        "fields changed: {found:?}"
    );
    ensure!(
        found.next_run_time() == job.next_run_time(),
        "microseconds lost"
    );
    Ok(())
}

/// Looking up an id that was never added answers `None`, not an error.
pub async fn lookup_of_a_missing_job_is_none(f: &Fixture) -> anyhow::Result<()> {
    ensure!(f.store().lookup_job("missing").await?.is_none());
    Ok(())
}

/// `get_all_jobs` orders by next run time, then id, with paused jobs last.
pub async fn all_jobs_are_ordered_with_paused_last(f: &Fixture) -> anyhow::Result<()> {
    add_all(
        f,
        &[
            f.job("paused-1", None),
            f.job("late", Some(at(30))),
            f.job("early", Some(at(-30))),
            f.job("paused-2", None),
            f.job("mid-b", Some(at(0))),
            f.job("mid-a", Some(at(0))),
        ],
    )
    .await?;
    let all = f.store().get_all_jobs().await?;
    let order = ids(&all);
    ensure!(
        order[..4] == ["early", "mid-a", "mid-b", "late"],
        "order {order:?}"
    );
    let mut paused = order[4..].to_vec();
    paused.sort_unstable();
    ensure!(paused == ["paused-1", "paused-2"], "order {order:?}");
    Ok(())
}

/// A job due exactly now is due; one a microsecond later is not; paused jobs never are.
pub async fn due_jobs_include_now_and_exclude_later(f: &Fixture) -> anyhow::Result<()> {
    add_all(
        f,
        &[
            f.job("now", Some(at(0))),
            f.job("later", Some(at(0) + TimeDelta::microseconds(1))),
            f.job("paused", None),
        ],
    )
    .await?;
    ensure!(ids(&f.store().get_due_jobs(at(0)).await?) == ["now"]);
    ensure!(f.store().get_due_jobs(at(-1)).await?.is_empty());
    let due = f
        .store()
        .get_due_jobs(at(0) + TimeDelta::microseconds(1))
        .await?;
    ensure!(ids(&due) == ["now", "later"], "due {:?}", ids(&due));
    Ok(())
}

/// Due jobs come earliest first.
pub async fn due_jobs_are_in_run_time_order(f: &Fixture) -> anyhow::Result<()> {
    add_all(
        f,
        &[
            f.job("c", Some(at(-1))),
            f.job("a", Some(at(-3))),
            f.job("b", Some(at(-2))),
            f.job("future", Some(at(10))),
        ],
    )
    .await?;
    let due = f.store().get_due_jobs(at(0)).await?;
    ensure!(ids(&due) == ["a", "b", "c"], "due {:?}", ids(&due));
    Ok(())
}

/// `get_next_run_time` is the earliest scheduled run time.
pub async fn next_run_time_is_the_earliest_unpaused(f: &Fixture) -> anyhow::Result<()> {
    add_all(f, &[f.job("b", Some(at(20))), f.job("a", Some(at(10)))]).await?;
    ensure!(f.store().get_next_run_time().await? == Some(at(10)));
    f.store().remove_job("a").await?;
    ensure!(f.store().get_next_run_time().await? == Some(at(20)));
    Ok(())
}

/// An empty store has no next run time.
pub async fn next_run_time_of_an_empty_store_is_none(f: &Fixture) -> anyhow::Result<()> {
    ensure!(f.store().get_next_run_time().await?.is_none());
    Ok(())
}

/// Paused jobs do not count for the next run time.
pub async fn next_run_time_ignores_paused_jobs(f: &Fixture) -> anyhow::Result<()> {
    add_all(f, &[f.job("paused", None)]).await?;
    ensure!(f.store().get_next_run_time().await?.is_none());
    add_all(f, &[f.job("due", Some(at(5)))]).await?;
    ensure!(f.store().get_next_run_time().await? == Some(at(5)));
    Ok(())
}

// ----- writes -----------------------------------------------------------------------------

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
    let found = f
        .store()
        .lookup_job("dup")
        .await?
        .context("original lost")?;
    ensure!(f.record(&found)? == f.record(&first)?, "original changed");
    ensure!(f.store().get_all_jobs().await?.len() == 1);
    Ok(())
}

/// `update_job` replaces the stored fields and moves the job in the run-time order.
pub async fn update_replaces_fields_and_reorders(f: &Fixture) -> anyhow::Result<()> {
    add_all(f, &[f.job("a", Some(at(1))), f.job("b", Some(at(2)))]).await?;
    let updated = f.job_with_args("a", Some(at(3)), serde_json::json!({"changed": true}));
    f.store().update_job(updated.clone()).await?;
    let found = f
        .store()
        .lookup_job("a")
        .await?
        .context("updated job lost")?;
    ensure!(
        f.record(&found)? == f.record(&updated)?,
        "update not applied: {found:?}"
    );
    ensure!(ids(&f.store().get_all_jobs().await?) == ["b", "a"]);
    ensure!(ids(&f.store().get_due_jobs(at(2)).await?) == ["b"]);
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

/// Pausing (no next run time) and unpausing through `update_job`.
pub async fn update_can_pause_and_unpause(f: &Fixture) -> anyhow::Result<()> {
    add_all(f, &[f.job("a", Some(at(0))), f.job("b", Some(at(5)))]).await?;
    f.store().update_job(f.job("a", None)).await?;
    ensure!(
        f.store()
            .get_due_jobs(at(10))
            .await
            .map(|d| ids(&d).join(","))?
            == "b"
    );
    ensure!(ids(&f.store().get_all_jobs().await?) == ["b", "a"]);
    ensure!(f.store().get_next_run_time().await? == Some(at(5)));
    f.store().update_job(f.job("a", Some(at(1)))).await?;
    ensure!(ids(&f.store().get_due_jobs(at(10)).await?) == ["a", "b"]);
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
    ensure!(ids(&f.store().get_due_jobs(at(5)).await?) == ["a"]);
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
    ensure!(f.store().get_due_jobs(at(100)).await?.is_empty());
    add_all(f, &[f.job("a", Some(at(0)))]).await?;
    ensure!(ids(&f.store().get_all_jobs().await?) == ["a"]);
    Ok(())
}

// ----- firing -----------------------------------------------------------------------------

/// `commit_fires` moves each job to its next run time, or removes it when there is none.
pub async fn commit_fires_moves_and_removes_jobs(f: &Fixture) -> anyhow::Result<()> {
    add_all(
        f,
        &[f.job("repeat", Some(at(0))), f.job("once", Some(at(1)))],
    )
    .await?;
    let due = f.store().get_due_jobs(at(1)).await?;
    let commits: Vec<FireCommit> = due
        .into_iter()
        .map(|job| {
            let due_at = job.next_run_time().expect("due jobs are scheduled");
            let mut advanced = job;
            let next = (advanced.id() == "repeat").then(|| at(60));
            advanced.set_next_run_time(next);
            FireCommit {
                job: advanced,
                due_at,
            }
        })
        .collect();
    let applied = f.store().commit_fires(&commits).await?;
    ensure!(applied == [true, true], "applied {applied:?}");
    let repeat = f
        .store()
        .lookup_job("repeat")
        .await?
        .context("repeat job lost")?;
    ensure!(repeat.next_run_time() == Some(at(60)));
    ensure!(
        f.store().lookup_job("once").await?.is_none(),
        "finished job not removed"
    );
    ensure!(f.store().get_due_jobs(at(59)).await?.is_empty());
    ensure!(f.store().get_next_run_time().await? == Some(at(60)));
    Ok(())
}

/// A fire is not committed for a job whose next run time changed after it was read as due
/// (modified, paused, removed, or taken by another scheduler); the change is kept.
pub async fn commit_fires_skips_jobs_that_changed(f: &Fixture) -> anyhow::Result<()> {
    add_all(
        f,
        &[
            f.job("moved", Some(at(0))),
            f.job("removed", Some(at(0))),
            f.job("kept", Some(at(0))),
        ],
    )
    .await?;
    let due = f.store().get_due_jobs(at(0)).await?;
    ensure!(due.len() == 3);
    // Meanwhile, someone else moves one job and removes another.
    f.store().update_job(f.job("moved", Some(at(30)))).await?;
    f.store().remove_job("removed").await?;
    let commits: Vec<FireCommit> = due
        .into_iter()
        .map(|job| {
            let mut advanced = job;
            advanced.set_next_run_time(Some(at(60)));
            FireCommit {
                job: advanced,
                due_at: at(0),
            }
        })
        .collect();
    let order: Vec<String> = commits.iter().map(|c| c.job.id().to_owned()).collect();
    let applied = f.store().commit_fires(&commits).await?;
    for (id, applied) in order.iter().zip(&applied) {
        ensure!(
            *applied == (id == "kept"),
            "commit of {id:?} applied = {applied}"
        );
    }
    let moved = f
        .store()
        .lookup_job("moved")
        .await?
        .context("moved job lost")?;
    ensure!(
        moved.next_run_time() == Some(at(30)),
        "a stale fire overwrote a change"
    );
    ensure!(
        f.store().lookup_job("removed").await?.is_none(),
        "a stale fire revived a job"
    );
    Ok(())
}

/// Many adds and removes at once from several tasks leave exactly the expected jobs.
pub async fn concurrent_adds_and_removes_stay_consistent(f: &Fixture) -> anyhow::Result<()> {
    const TASKS: i64 = 8;
    const PER_TASK: i64 = 25;
    let job = |n: i64, secs: i64| f.job(&format!("job-{n:04}"), Some(at(secs)));
    let mut adds = tokio::task::JoinSet::new();
    for t in 0..TASKS {
        let store = f.shared_store();
        let jobs: Vec<Job> = (0..PER_TASK)
            .map(|i| job(t * PER_TASK + i, t * PER_TASK + i))
            .collect();
        adds.spawn(async move {
            for job in jobs {
                store.add_job(job).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(result) = adds.join_next().await {
        result??;
    }
    // Remove the odd ones from several tasks, while others try to add duplicates of the even ones.
    let mut writes = tokio::task::JoinSet::new();
    for t in 0..TASKS {
        let store = f.shared_store();
        let work: Vec<(String, Job)> = (0..PER_TASK)
            .map(|i| t * PER_TASK + i)
            .map(|n| (format!("job-{n:04}"), job(n, -1)))
            .collect();
        writes.spawn(async move {
            for (id, duplicate) in work {
                if duplicate.id().ends_with(['1', '3', '5', '7', '9']) {
                    store.remove_job(&id).await?;
                } else {
                    expect_kind(
                        store.add_job(duplicate).await,
                        ErrorKind::ConflictingId,
                        "duplicate add",
                    )?;
                }
            }
            anyhow::Ok(())
        });
    }
    while let Some(result) = writes.join_next().await {
        result??;
    }
    let all = f.store().get_all_jobs().await?;
    let expected: Vec<String> = (0..TASKS * PER_TASK)
        .filter(|n| n % 2 == 0)
        .map(|n| format!("job-{n:04}"))
        .collect();
    ensure!(
        ids(&all) == expected.iter().map(String::as_str).collect::<Vec<_>>(),
        "jobs after concurrent writes: {:?}",
        ids(&all)
    );
    ensure!(f.store().get_next_run_time().await? == Some(at(0)));
    Ok(())
}

/// A few hundred jobs added in shuffled order come back sorted.
pub async fn many_jobs_keep_their_order(f: &Fixture) -> anyhow::Result<()> {
    const N: i64 = 300;
    // A fixed permutation of 0..N (N is coprime with 7).
    for k in 0..N {
        let n = (k * 7) % N;
        f.store()
            .add_job(f.job(&format!("j{n:03}"), Some(at(n))))
            .await?;
    }
    let all = f.store().get_all_jobs().await?;
    let expected: Vec<String> = (0..N).map(|n| format!("j{n:03}")).collect();
    ensure!(ids(&all) == expected.iter().map(String::as_str).collect::<Vec<_>>());
    let due = f.store().get_due_jobs(at(N / 2)).await?;
    ensure!(due.len() as i64 == N / 2 + 1, "due {}", due.len());
    Ok(())
}

//! Run times: microsecond precision and the range a store holds.

use super::*;

/// Run times are kept to the microsecond: neighbours a microsecond apart stay apart and in
/// order, and come back exactly.
pub async fn run_times_are_exact_to_the_microsecond(f: &Fixture) -> anyhow::Result<()> {
    let t = utc(2031, 7, 9, 13, 5, 59, 999_999);
    let one = TimeDelta::microseconds(1);
    add_all(
        f,
        &[
            f.job("b", Some(t + one)),
            f.job("a", Some(t)),
            f.job("c", Some(t + one + one)),
        ],
    )
    .await?;
    ensure!(fetch(f.store(), "a").await?.next_run_time() == Some(t));
    ensure!(fetch(f.store(), "b").await?.next_run_time() == Some(t + one));
    ensure!(f.store().get_next_run_time().await? == Some(t));
    ensure!(ids(&due(f.store(), t).await?) == ["a"]);
    ensure!(ids(&due(f.store(), t + one).await?) == ["a", "b"]);
    let due_jobs = due(f.store(), t + one + one).await?;
    ensure!(ids(&due_jobs) == ["a", "b", "c"]);
    let answers = f
        .store()
        .commit_fires(&[commit(
            &due_jobs[0],
            FireOutcome::Reschedule(t + one + one + one),
        )?])
        .await?;
    ensure!(answers.get("a") == Some(FireAnswer::Committed));
    ensure!(fetch(f.store(), "a").await?.next_run_time() == Some(t + one + one + one));
    Ok(())
}

/// Run times far from now are kept exactly: every store holds the years 1900 to 2200 (past
/// 2038, past 2106), and at the edges (year 1, before 1685, after 2255, year 9999) a store
/// either holds the time exactly or refuses it with `Unrepresentable`, storing nothing; a
/// fire rescheduled to a time it cannot hold pauses the job and reports it.
pub async fn run_times_at_the_edges_are_exact_or_refused(f: &Fixture) -> anyhow::Result<()> {
    let required = [
        utc(1900, 1, 1, 0, 0, 0, 1),
        utc(1969, 12, 31, 23, 59, 59, 999_999),
        utc(1970, 1, 1, 0, 0, 0, 1),
        utc(2038, 1, 19, 3, 14, 7, 999_999),
        utc(2038, 1, 19, 3, 14, 8, 1),
        utc(2106, 2, 7, 6, 28, 16, 1),
        utc(2200, 12, 31, 23, 59, 59, 999_999),
    ];
    let edges = [
        utc(1, 1, 1, 0, 0, 0, 0),
        utc(999, 12, 31, 23, 59, 59, 999_999),
        utc(1684, 1, 1, 0, 0, 0, 1),
        utc(2255, 6, 5, 23, 47, 34, 740_993),
        utc(2262, 4, 11, 23, 47, 16, 854_776),
        utc(9999, 12, 31, 23, 59, 59, 999_999),
    ];
    let mut held = Vec::new();
    for (n, t) in required.iter().chain(&edges).enumerate() {
        let id = format!("t{n:02}");
        match f.store().add_job(f.job(&id, Some(*t))).await {
            Ok(_) => {
                let back = fetch(f.store(), &id).await?.next_run_time();
                ensure!(back == Some(*t), "{t} came back as {back:?}");
                held.push((*t, id));
            }
            Err(e) if e.kind() == ErrorKind::Unrepresentable && n >= required.len() => {
                ensure!(
                    f.store().lookup_job(&id).await?.is_none(),
                    "a refused job was stored"
                );
            }
            Err(e) => bail!("add_job at {t}: {e}"),
        }
    }
    held.sort();
    let last = *edges.last().context("edges")?;
    let due_jobs = due(f.store(), last).await?;
    let expected: Vec<&str> = held.iter().map(|(_, id)| id.as_str()).collect();
    ensure!(ids(&due_jobs) == expected, "order {:?}", ids(&due_jobs));
    ensure!(f.store().get_next_run_time().await? == held.first().map(|(t, _)| *t));

    // Fires rescheduled to the edges: exact, or paused and reported.
    f.take_faults();
    let movers: Vec<Job> = due_jobs.into_iter().take(edges.len()).collect();
    let commits = movers
        .iter()
        .zip(&edges)
        .map(|(job, t)| commit(job, FireOutcome::Reschedule(*t)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let answers = f.store().commit_fires(&commits).await?;
    let mut paused = 0;
    for (job, t) in movers.iter().zip(&edges) {
        ensure!(
            answers.get(job.id()) == Some(FireAnswer::Committed),
            "answer for {:?}",
            job.id()
        );
        match fetch(f.store(), job.id()).await?.next_run_time() {
            Some(back) => ensure!(back == *t, "rescheduled to {t}, holds {back}"),
            None => paused += 1,
        }
    }
    let faults = f.take_faults();
    ensure!(
        faults.len() == paused && faults.iter().all(|e| e.action == FaultAction::Paused),
        "{paused} jobs paused at the edges, faults {faults:?}"
    );
    Ok(())
}

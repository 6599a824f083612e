//! Many jobs, and many writers at once.

use super::*;

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

/// Single adds from many tasks at once (a persistent store inserts those that wait for one
/// in flight as one group) answer each caller for its own job: of the adds of one id, exactly
/// one succeeds, and none if the id was stored before; the others fail with `ConflictingId`
/// without failing the rest of their group. Every job is stored once, as the add that
/// succeeded gave it, at the revision it answered.
pub async fn concurrent_single_adds_answer_each_caller(f: &Fixture) -> anyhow::Result<()> {
    const TASKS: usize = 8;
    const PER_TASK: usize = 30;
    // Each task's ids overlap the next task's by this many, so groups hold duplicates.
    const OVERLAP: usize = 6;
    let stride = PER_TASK - OVERLAP;
    let id = |n: usize| format!("c{n:04}");
    // Stored before: every seventh id.
    let taken: Vec<Job> = (0..TASKS * stride + OVERLAP)
        .step_by(7)
        .map(|n| f.job(&id(n), Some(at(0))))
        .collect();
    f.store()
        .add_jobs(taken.clone())
        .await?
        .into_iter()
        .collect::<crate::Result<Vec<_>>>()?;
    let mut adds = tokio::task::JoinSet::new();
    for t in 0..TASKS {
        let store = f.shared_store();
        let jobs: Vec<Job> = (t * stride..t * stride + PER_TASK)
            .map(|n| f.job_with_args(&id(n), Some(at(n as i64 + 1)), serde_json::json!(t)))
            .collect();
        adds.spawn(async move {
            let mut answers = Vec::with_capacity(jobs.len());
            for job in jobs {
                let answer = store.add_job(job.clone()).await;
                answers.push((job, answer));
            }
            answers
        });
    }
    // id → the job added and the revision answered.
    let mut added: std::collections::HashMap<String, (Job, u64)> = Default::default();
    while let Some(answers) = adds.join_next().await {
        for (job, answer) in answers? {
            match answer {
                Ok(revision) => {
                    let earlier = added.insert(job.id().to_owned(), (job.clone(), revision));
                    ensure!(earlier.is_none(), "job {:?} was added twice", job.id());
                    ensure!(
                        taken.iter().all(|t| t.id() != job.id()),
                        "job {:?} was added over a stored one",
                        job.id()
                    );
                }
                Err(e) if e.kind() == ErrorKind::ConflictingId => {}
                Err(e) => bail!("add_job({:?}) failed: {e}", job.id()),
            }
        }
    }
    let all = f.store().get_all_jobs().await?;
    ensure!(
        all.len() == TASKS * stride + OVERLAP,
        "{} jobs stored, {} added and {} stored before",
        all.len(),
        added.len(),
        taken.len()
    );
    for job in &all {
        match added.get(job.id()) {
            Some((sent, revision)) => {
                ensure!(f.record(job)? == f.record(sent)?, "{:?} changed", job.id());
                ensure!(job.revision() == *revision, "{:?}: revision", job.id());
            }
            None => {
                let before = taken.iter().find(|t| t.id() == job.id());
                let before =
                    before.with_context(|| format!("{:?} neither added nor taken", job.id()))?;
                ensure!(
                    f.record(job)? == f.record(before)?,
                    "stored {:?} changed",
                    job.id()
                );
            }
        }
    }
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
    let due_jobs = due(f.store(), at(N / 2)).await?;
    ensure!(due_jobs.len() as i64 == N / 2 + 1, "due {}", due_jobs.len());
    Ok(())
}

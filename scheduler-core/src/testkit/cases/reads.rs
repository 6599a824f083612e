//! Lookups, listings, due batches and the next run time.

use super::*;

/// A job comes back from `lookup_job` with every field as it was added, the revision `add_job`
/// answered, and its run time to the microsecond.
pub async fn add_and_lookup_keep_every_field(f: &Fixture) -> anyhow::Result<()> {
    let spec = f
        .spec(
            "ünï-cødé id/with:chars",
            Some(at(0) + TimeDelta::microseconds(1)),
            serde_json::json!({"order": 42, "items": ["a", "b"], "note": "quotes \" and \\ slashes"}),
        )
        .name("a named job")
        .executor("pool")
        .misfire_grace_time(None)
        .coalesce(false)
        .max_instances(3)
        .timeout(Some(Duration::from_millis(90_500)));
    let job = f.build(spec);
    let revision = f.store().add_job(job.clone()).await?;
    ensure!(revision != 0, "revision 0 means never stored");
    let found = fetch(f.store(), job.id()).await?;
    ensure!(
        f.record(&found)? == f.record(&job)?,
        "fields changed: {found:?}"
    );
    ensure!(
        found.next_run_time() == job.next_run_time(),
        "microseconds lost"
    );
    ensure!(found.timeout() == Some(Duration::from_millis(90_500)));
    ensure!(
        found.revision() == revision,
        "revision {} != {revision}",
        found.revision()
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
    ensure!(ids(&due(f.store(), at(0)).await?) == ["now"]);
    ensure!(due(f.store(), at(-1)).await?.is_empty());
    let due_jobs = due(f.store(), at(0) + TimeDelta::microseconds(1)).await?;
    ensure!(
        ids(&due_jobs) == ["now", "later"],
        "due {:?}",
        ids(&due_jobs)
    );
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
    let due_jobs = due(f.store(), at(0)).await?;
    ensure!(
        ids(&due_jobs) == ["a", "b", "c"],
        "due {:?}",
        ids(&due_jobs)
    );
    Ok(())
}

/// `get_due_jobs` answers at most `limit` jobs: the earliest, ties by id.
pub async fn due_jobs_stop_at_the_limit(f: &Fixture) -> anyhow::Result<()> {
    add_all(
        f,
        &[
            f.job("e", Some(at(-1))),
            f.job("d", Some(at(-2))),
            f.job("c2", Some(at(-3))),
            f.job("c1", Some(at(-3))),
            f.job("a", Some(at(-4))),
            f.job("future", Some(at(10))),
        ],
    )
    .await?;
    for (limit, expected) in [
        (1, &["a"][..]),
        (3, &["a", "c1", "c2"][..]),
        (5, &["a", "c1", "c2", "d", "e"][..]),
        (6, &["a", "c1", "c2", "d", "e"][..]),
    ] {
        let batch = f.store().get_due_jobs(at(0), limit).await?;
        ensure!(ids(&batch) == expected, "limit {limit}: {:?}", ids(&batch));
    }
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

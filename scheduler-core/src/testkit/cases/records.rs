//! Records this process cannot read, record versions, and the run-time column (persistent
//! stores, through their raw rows).

use super::*;

/// The raw row of a good record for job `id` at `next`, its JSON edited by `edit`.
fn raw_row(
    f: &Fixture,
    id: &str,
    next: Option<DateTime<Utc>>,
    edit: impl FnOnce(&mut serde_json::Value),
) -> anyhow::Result<StoredRecord> {
    let mut json = serde_json::to_value(f.record(&f.job(id, next))?)?;
    edit(&mut json);
    Ok(StoredRecord {
        id: id.to_owned(),
        next_run_time: next,
        revision: 7,
        json: json.to_string(),
    })
}

/// Checks that record `id` (planted as `planted`) is skipped as unreadable with an error of
/// `kind`: left out of due batches, the next run time and the listing, a typed error from
/// `lookup_job`, reported once as a `JobFault` naming the store and the job, and left
/// untouched; the readable jobs `a` (due at `at(1)`) and `later` go on as usual.
async fn expect_skipped(
    f: &Fixture,
    id: &str,
    planted: &StoredRecord,
    kind: ErrorKind,
) -> anyhow::Result<()> {
    for round in 0..2 {
        let due_jobs = due(f.store(), at(10))
            .await
            .context("one bad record failed get_due_jobs")?;
        ensure!(ids(&due_jobs) == ["a"], "due: {:?}", ids(&due_jobs));
        ensure!(
            f.store().get_next_run_time().await? == Some(at(1)),
            "the next run time is the unreadable record's, which would wake the loop for nothing"
        );
        let all = f
            .store()
            .get_all_jobs()
            .await
            .context("one bad record failed get_all_jobs")?;
        ensure!(ids(&all) == ["a", "later"], "all: {:?}", ids(&all));
        let lookup = f.store().lookup_job(id).await;
        match &lookup {
            Err(e) if e.kind() == kind && e.job_id() == Some(id) => {}
            other => {
                bail!("lookup_job({id:?}): expected a {kind} error naming the job, got {other:?}")
            }
        }
        let faults = f.take_faults();
        if round == 0 {
            ensure!(
                faults.len() == 1,
                "expected one JobFault for the unreadable record, got {faults:?}"
            );
            let fault = &faults[0];
            ensure!(
                (&*fault.job_id, &*fault.jobstore, fault.action)
                    == (id, f.alias(), FaultAction::Skipped),
                "fault {fault:?}"
            );
            ensure!(fault.error.kind() == kind, "fault error {:?}", fault.error);
        } else {
            ensure!(faults.is_empty(), "reported again: {faults:?}");
        }
    }
    let stored = f.raw()?.get_raw(id).await?;
    ensure!(
        stored.as_ref() == Some(planted),
        "the unreadable record was changed or deleted: {stored:?}"
    );
    // An operator can still remove it through the store.
    f.store().remove_job(id).await?;
    ensure!(f.raw()?.get_raw(id).await?.is_none());
    Ok(())
}

/// A saved job whose function this process does not know is skipped with a typed error and
/// kept intact, reported once as a `JobFault`: it does not fail the other jobs, does not keep
/// the scheduler awake, and is still there (and runnable) for a process that knows the
/// function.
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
    let planted = f
        .raw()?
        .get_raw("ghost")
        .await?
        .context("ghost not stored")?;
    f.restart_without_ghost().await?;
    let result = expect_skipped(f, "ghost", &planted, ErrorKind::UnknownJobFunction).await;
    // Put it back and show that a process that knows the function reads it.
    f.raw()?.put_raw(planted).await?;
    f.restart().await?;
    result?;
    let ghost = fetch(f.store(), "ghost").await?;
    ensure!(
        ghost.next_run_time() == Some(at(0)),
        "the ghost job changed"
    );
    Ok(())
}

/// A saved job whose trigger kind this process does not know is skipped, reported once and
/// kept intact.
pub async fn skips_a_record_whose_trigger_kind_is_unknown(f: &Fixture) -> anyhow::Result<()> {
    add_all(f, &[f.job("a", Some(at(1))), f.job("later", Some(at(100)))]).await?;
    let planted = raw_row(f, "lunar", Some(at(0)), |json| {
        json["trigger"]["kind"] = "lunar".into();
    })?;
    f.raw()?.put_raw(planted.clone()).await?;
    expect_skipped(f, "lunar", &planted, ErrorKind::InvalidTrigger).await
}

/// A saved record that is not valid JSON is skipped as a `Serialization` error, reported once
/// and kept intact.
pub async fn skips_a_record_with_corrupt_json(f: &Fixture) -> anyhow::Result<()> {
    add_all(f, &[f.job("a", Some(at(1))), f.job("later", Some(at(100)))]).await?;
    let mut planted = raw_row(f, "corrupt", Some(at(0)), |_| {})?;
    planted.json.truncate(planted.json.len() / 2);
    f.raw()?.put_raw(planted.clone()).await?;
    expect_skipped(f, "corrupt", &planted, ErrorKind::Serialization).await
}

/// A record written by a newer version of the record schema (which this build must not
/// guess at) is refused clearly, skipped, reported once and kept intact, even when its shape
/// changed beyond what this build can parse.
pub async fn skips_a_record_from_a_newer_version(f: &Fixture) -> anyhow::Result<()> {
    add_all(f, &[f.job("a", Some(at(1))), f.job("later", Some(at(100)))]).await?;
    let newer = JobRecord::VERSION + 1;
    let planted = raw_row(f, "newer", Some(at(0)), |json| {
        json["version"] = newer.into();
        // A field an older reader must not ignore, and one it no longer finds.
        json["misfire_policy"] = "fire-all".into();
        if let Some(fields) = json.as_object_mut() {
            fields.remove("coalesce");
        }
    })?;
    f.raw()?.put_raw(planted.clone()).await?;
    expect_skipped(f, "newer", &planted, ErrorKind::Serialization).await?;
    Ok(())
}

/// Unreadable records that are due do not take places in a due batch: a batch of two still
/// holds the two earliest readable due jobs, and the next run time is a readable job's.
pub async fn unreadable_records_do_not_fill_the_due_batch(f: &Fixture) -> anyhow::Result<()> {
    for n in 0..3 {
        let id = format!("bad-{n}");
        f.raw()?
            .put_raw(raw_row(f, &id, Some(at(n)), |json| {
                json["func"] = "gone".into();
            })?)
            .await?;
    }
    add_all(
        f,
        &[
            f.job("x", Some(at(5))),
            f.job("y", Some(at(6))),
            f.job("z", Some(at(7))),
        ],
    )
    .await?;
    for _ in 0..2 {
        let batch = f.store().get_due_jobs(at(10), 2).await?;
        ensure!(ids(&batch) == ["x", "y"], "batch {:?}", ids(&batch));
    }
    ensure!(f.store().get_next_run_time().await? == Some(at(5)));
    ensure!(
        f.take_faults().len() == 3,
        "each unreadable record is reported once"
    );
    Ok(())
}

/// A record field this build does not know (an optional field a newer build added) is
/// ignored when reading, and kept when the record is rewritten by an update or a fire commit.
pub async fn keeps_record_fields_it_does_not_know(f: &Fixture) -> anyhow::Result<()> {
    let planted = raw_row(f, "future", Some(at(0)), |json| {
        json["priority"] = 5.into();
    })?;
    f.raw()?.put_raw(planted).await?;
    let job = fetch(f.store(), "future").await?;
    ensure!(job.next_run_time() == Some(at(0)));
    let has_priority = |row: Option<StoredRecord>| -> anyhow::Result<bool> {
        let row = row.context("row gone")?;
        let json: serde_json::Value = serde_json::from_str(&row.json)?;
        Ok(json["priority"] == 5)
    };
    // The unknown field rides on the job that was read, not on a freshly built one.
    let mut updated = job.clone();
    updated.set_next_run_time(Some(at(1)));
    f.store().update_job(updated).await?;
    ensure!(
        has_priority(f.raw()?.get_raw("future").await?)?,
        "an update dropped an unknown field"
    );
    let due_job = due(f.store(), at(1)).await?;
    let due_job = due_job.first().context("not due")?;
    let answers = f
        .store()
        .commit_fires(&[commit(due_job, FireOutcome::Reschedule(at(2)))?])
        .await?;
    ensure!(answers.get("future") == Some(FireAnswer::Committed));
    ensure!(
        has_priority(f.raw()?.get_raw("future").await?)?,
        "a fire commit dropped an unknown field"
    );
    Ok(())
}

/// A record as version 1 wrote it before optional fields (`timeout`) existed reads as it was
/// meant: every field, and no timeout.
pub async fn reads_a_record_written_before_optional_fields_existed(
    f: &Fixture,
) -> anyhow::Result<()> {
    let json = serde_json::json!({
        "version": 1,
        "id": "old",
        "name": "old job",
        "func": "testkit.echo",
        "args": {"order": 42},
        "trigger": {"kind": StepTrigger::KIND, "state": {"start": at(0), "step_secs": 60}},
        "executor": "default",
        "misfire_grace_time": 30.0,
        "coalesce": false,
        "max_instances": 2,
        "next_run_time": at(0),
    });
    f.raw()?
        .put_raw(StoredRecord {
            id: "old".into(),
            next_run_time: Some(at(0)),
            revision: 1,
            json: json.to_string(),
        })
        .await?;
    let job = fetch(f.store(), "old").await?;
    ensure!(
        (
            job.name(),
            job.timeout(),
            job.coalesce(),
            job.max_instances()
        ) == ("old job", None, false, 2),
        "read as {job:?}"
    );
    ensure!(job.misfire_grace_time() == Some(Duration::from_secs(30)));
    ensure!(job.target().args_json() == Some(r#"{"order":42}"#));
    ensure!(job.trigger().to_string() == "step[60s]");
    Ok(())
}

/// The indexed run-time column is the authority: a record whose JSON copy says otherwise (an
/// operator moved the job by editing the column) runs at the column's time.
pub async fn the_run_time_column_is_the_authority(f: &Fixture) -> anyhow::Result<()> {
    let mut planted = raw_row(f, "moved", Some(at(50)), |_| {})?;
    planted.next_run_time = Some(at(5));
    f.raw()?.put_raw(planted).await?;
    ensure!(fetch(f.store(), "moved").await?.next_run_time() == Some(at(5)));
    ensure!(ids(&due(f.store(), at(5)).await?) == ["moved"]);
    ensure!(f.store().get_next_run_time().await? == Some(at(5)));
    Ok(())
}

/// Every write keeps the JSON copy of the run time equal to the indexed column: add, update,
/// pause, and each fire outcome.
pub async fn writes_the_json_run_time_with_the_column(f: &Fixture) -> anyhow::Result<()> {
    async fn check(f: &Fixture, id: &str) -> anyhow::Result<()> {
        let row = f.raw()?.get_raw(id).await?.context("row gone")?;
        let record: JobRecord = serde_json::from_str(&row.json)?;
        ensure!(
            record.next_run_time == row.next_run_time,
            "job {id:?}: column {:?}, JSON {:?}",
            row.next_run_time,
            record.next_run_time
        );
        Ok(())
    }
    add_all(f, &[f.job("a", Some(at(0))), f.job("b", Some(at(0)))]).await?;
    check(f, "a").await?;
    let mut a = fetch(f.store(), "a").await?;
    a.set_next_run_time(Some(at(3)));
    f.store().update_job(a.clone()).await?;
    check(f, "a").await?;
    let mut a = fetch(f.store(), "a").await?;
    a.set_next_run_time(None);
    f.store().update_job(a).await?;
    check(f, "a").await?;
    let b = fetch(f.store(), "b").await?;
    f.store()
        .commit_fires(&[commit(&b, FireOutcome::Reschedule(at(60)))?])
        .await?;
    check(f, "b").await?;
    let b = fetch(f.store(), "b").await?;
    f.store()
        .commit_fires(&[commit(&b, FireOutcome::Pause)?])
        .await?;
    check(f, "b").await
}

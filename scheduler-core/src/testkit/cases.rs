//! The conformance cases, one async function each. See [`jobstore_conformance!`](crate::jobstore_conformance).

use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};

use super::{Fixture, StepTrigger, at};
use crate::error::ErrorKind;
use crate::event::FaultAction;
use crate::job::{Job, JobRecord};
use crate::store::{Capabilities, DynJobStore, FireAnswer, FireCommit, FireOutcome, StoredRecord};

/// More than any case adds: "every due job".
const ALL: usize = 10_000;

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

async fn due(store: &dyn DynJobStore, now: DateTime<Utc>) -> anyhow::Result<Vec<Job>> {
    Ok(store.get_due_jobs(now, ALL).await?)
}

async fn fetch(store: &dyn DynJobStore, id: &str) -> anyhow::Result<Job> {
    store
        .lookup_job(id)
        .await
        .with_context(|| format!("lookup_job({id:?})"))?
        .with_context(|| format!("job {id:?} is missing"))
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

/// A commit of `job` as read, with `outcome`.
fn commit(job: &Job, outcome: FireOutcome) -> anyhow::Result<FireCommit> {
    FireCommit::of(job, outcome).with_context(|| format!("job {:?} is paused", job.id()))
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, micro: u32) -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(y, mo, d)
        .and_then(|date| date.and_hms_micro_opt(h, mi, s, micro))
        .map(|t| t.and_utc())
        .unwrap_or_default()
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

// ----- records this process cannot read (persistent stores) --------------------------------

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

// ----- lookups ----------------------------------------------------------------------------

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
    let found = fetch(f.store(), "dup").await?;
    ensure!(f.record(&found)? == f.record(&first)?, "original changed");
    ensure!(f.store().get_all_jobs().await?.len() == 1);
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

// ----- firing -----------------------------------------------------------------------------

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
        let commits = seen
            .iter()
            .map(|job| commit(job, outcome(handle, job)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        tasks.spawn(async move {
            let mut won = Vec::new();
            for c in commits {
                let answers = store.commit_fires(std::slice::from_ref(&c)).await?;
                match answers.get(&c.job_id) {
                    Some(FireAnswer::Committed) => won.push(c),
                    Some(FireAnswer::Stale) => {}
                    None => bail!("no answer for {:?}", c.job_id),
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

// ----- jobs set aside ---------------------------------------------------------------------

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

// ----- precision and range ----------------------------------------------------------------

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

// ----- load -------------------------------------------------------------------------------

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
    let due_jobs = due(f.store(), at(N / 2)).await?;
    ensure!(due_jobs.len() as i64 == N / 2 + 1, "due {}", due_jobs.len());
    Ok(())
}

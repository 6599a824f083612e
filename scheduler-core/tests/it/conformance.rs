//! The conformance suite's persistent cases, run against a reference store that keeps jobs
//! the way persistent stores do: as encoded records that outlive `shutdown`, decoded with the
//! codec of whichever process reads them. It proves the persistent cases pass for a store
//! that does the right thing (and fail for one that does not), before any real backend runs
//! them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use scheduler_core::{
    Capabilities, Error, FireCommit, Job, JobCodec, JobStore, Result, StoreContext,
};

/// A saved job: its run time (an indexed column in a real store) and its encoded record.
type Row = (Option<DateTime<Utc>>, Vec<u8>);

/// Records kept as JSON bytes with their run time, like a table `(id, next_run_time, state)`.
#[derive(Debug, Default)]
struct RecordStore {
    rows: Mutex<BTreeMap<String, Row>>,
    codec: Mutex<Option<JobCodec>>,
    /// Rows this process could not decode, with the run time they had: skipped (not deleted)
    /// until they change, so they neither fail nor keep waking the scheduler.
    unreadable: Mutex<HashMap<String, Option<DateTime<Utc>>>>,
}

impl RecordStore {
    fn codec(&self) -> Result<JobCodec> {
        self.codec
            .lock()
            .unwrap()
            .clone()
            .ok_or_else(|| Error::scheduler_state("the store is not started"))
    }

    /// Decodes the rows `pick` selects, in run-time order, skipping unreadable ones.
    fn decode_rows(&self, pick: impl Fn(Option<DateTime<Utc>>) -> bool) -> Result<Vec<Job>> {
        let codec = self.codec()?;
        let rows = self.rows.lock().unwrap();
        let mut unreadable = self.unreadable.lock().unwrap();
        let mut jobs = Vec::new();
        for (id, (next, bytes)) in rows.iter() {
            if !pick(*next) || unreadable.get(id) == Some(next) {
                continue;
            }
            match codec.decode_json(id, bytes) {
                Ok(job) => jobs.push(job),
                Err(e) => {
                    eprintln!("skipping job {id:?}: {e}");
                    unreadable.insert(id.clone(), *next);
                }
            }
        }
        jobs.sort_by(|a, b| {
            let key = |j: &Job| {
                (
                    j.next_run_time().is_none(),
                    j.next_run_time(),
                    j.id().to_owned(),
                )
            };
            key(a).cmp(&key(b))
        });
        Ok(jobs)
    }

    fn write(&self, job: &Job) -> Result<()> {
        let bytes = self.codec()?.encode_json(job)?;
        self.rows
            .lock()
            .unwrap()
            .insert(job.id().to_owned(), (job.next_run_time(), bytes));
        self.unreadable.lock().unwrap().remove(job.id());
        Ok(())
    }
}

impl JobStore for RecordStore {
    fn capabilities(&self) -> Capabilities {
        Capabilities::persistent()
    }

    async fn start(&self, ctx: StoreContext) -> Result<()> {
        *self.codec.lock().unwrap() = Some(ctx.codec().clone());
        self.unreadable.lock().unwrap().clear();
        Ok(())
    }

    async fn shutdown(&self) -> Result<()> {
        *self.codec.lock().unwrap() = None;
        Ok(())
    }

    async fn lookup_job(&self, id: &str) -> Result<Option<Job>> {
        let codec = self.codec()?;
        let rows = self.rows.lock().unwrap();
        rows.get(id)
            .map(|(_, bytes)| codec.decode_json(id, bytes))
            .transpose()
    }

    async fn get_due_jobs(&self, now: DateTime<Utc>) -> Result<Vec<Job>> {
        self.decode_rows(|next| next.is_some_and(|t| t <= now))
    }

    async fn get_next_run_time(&self) -> Result<Option<DateTime<Utc>>> {
        let rows = self.rows.lock().unwrap();
        let unreadable = self.unreadable.lock().unwrap();
        Ok(rows
            .iter()
            .filter(|(id, (next, _))| unreadable.get(*id) != Some(next))
            .filter_map(|(_, (next, _))| *next)
            .min())
    }

    async fn get_all_jobs(&self) -> Result<Vec<Job>> {
        self.decode_rows(|_| true)
    }

    async fn add_job(&self, job: Job) -> Result<()> {
        if self.rows.lock().unwrap().contains_key(job.id()) {
            return Err(Error::conflicting_id(job.id()));
        }
        self.write(&job)
    }

    async fn update_job(&self, job: Job) -> Result<()> {
        if !self.rows.lock().unwrap().contains_key(job.id()) {
            return Err(Error::job_not_found(job.id()));
        }
        self.write(&job)
    }

    async fn remove_job(&self, id: &str) -> Result<()> {
        self.unreadable.lock().unwrap().remove(id);
        match self.rows.lock().unwrap().remove(id) {
            Some(_) => Ok(()),
            None => Err(Error::job_not_found(id)),
        }
    }

    async fn remove_all_jobs(&self) -> Result<()> {
        self.rows.lock().unwrap().clear();
        self.unreadable.lock().unwrap().clear();
        Ok(())
    }

    async fn commit_fires(&self, commits: &[FireCommit]) -> Result<Vec<bool>> {
        let codec = self.codec()?;
        let mut rows = self.rows.lock().unwrap();
        let mut applied = Vec::with_capacity(commits.len());
        for commit in commits {
            let id = commit.job.id();
            let current = rows
                .get(id)
                .is_some_and(|(next, _)| *next == Some(commit.due_at));
            if !current {
                applied.push(false);
                continue;
            }
            match commit.job.next_run_time() {
                Some(next) => {
                    let bytes = codec.encode_json(&commit.job)?;
                    rows.insert(id.to_owned(), (Some(next), bytes));
                }
                None => {
                    rows.remove(id);
                }
            }
            applied.push(true);
        }
        Ok(applied)
    }
}

async fn setup() -> anyhow::Result<RecordStore> {
    Ok(RecordStore::default())
}

mod reference_store {
    scheduler_core::jobstore_conformance!(super::setup, persistent);
}

/// A scheduler on a persistent store: closures are refused, registered jobs round-trip
/// through their records (trigger state included) and run.
#[tokio::test]
async fn scheduler_on_a_persistent_store_refuses_closures_and_runs_saved_jobs() {
    use crate::harness::{Harness, Once, t};
    use scheduler_core::{ErrorKind, EventMask, JobSpec, JobTarget, TriggerRegistry};

    let triggers = TriggerRegistry::new();
    triggers.register_serde::<Once>("once");
    let mut h = Harness::with(|b| {
        b.triggers(triggers)
            .jobstore("records", RecordStore::default())
    });
    h.scheduler.start().await.unwrap();
    let closure = JobSpec::new(JobTarget::closure("c", || ()), Once(t(0))).jobstore("records");
    let err = h.scheduler.add_job(closure).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotPersistable);

    h.scheduler
        .add_job(h.record_job("saved", Once(t(5))).jobstore("records"))
        .await
        .unwrap();
    let stored = h
        .scheduler
        .get_job("saved", Some("records"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.trigger().to_string(),
        "date[2026-01-01 00:00:05 UTC]"
    );
    h.set_time(5);
    let executed = h.next(EventMask::JOB_EXECUTED).await;
    assert_eq!(executed.jobstore(), Some("records"));
    assert!(h.scheduler.get_job("saved", None).await.unwrap().is_none());
}

/// The built-in triggers restore from their saved state through `triggers::registry()`.
#[tokio::test]
async fn built_in_triggers_survive_a_persistent_store() {
    use crate::harness::{Harness, t};
    use scheduler_core::{EventMask, JobSpec};
    use std::time::Duration;

    let mut h = Harness::with(|b| {
        b.triggers(triggers::registry())
            .jobstore("records", RecordStore::default())
    });
    h.scheduler.start().await.unwrap();
    let every_10s = triggers::IntervalTrigger::builder()
        .every(Duration::from_secs(10))
        .start_date(t(10))
        .build_at(t(0))
        .unwrap();
    h.scheduler
        .add_job(
            JobSpec::new(h.record.call("tick".into()), every_10s)
                .id("tick")
                .jobstore("records"),
        )
        .await
        .unwrap();
    for n in 1..=2 {
        h.set_time(10 * n);
        let executed = h.next(EventMask::JOB_EXECUTED).await;
        assert_eq!(crate::harness::run_time(&executed), t(10 * n));
    }
    let job = h.scheduler.get_job("tick", None).await.unwrap().unwrap();
    assert_eq!(job.next_run_time(), Some(t(30)));
    assert_eq!(job.trigger().to_string(), "interval[0:00:10]");
}

//! The conformance cases, one async function each. See [`jobstore_conformance!`](crate::jobstore_conformance).
//!
//! Grouped by concept in submodules; every case is re-exported here, which is where the macro
//! names them.

mod aside;
mod cluster;
mod fires;
mod kinds;
mod load;
mod reads;
mod records;
mod times;
mod writes;

pub use aside::*;
pub use cluster::*;
pub use fires::*;
pub use kinds::*;
pub use load::*;
pub use reads::*;
pub use records::*;
pub use times::*;
pub use writes::*;

use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};

use super::{Fixture, StepTrigger, at};
use crate::error::ErrorKind;
use crate::event::FaultAction;
use crate::job::{Job, JobRecord};
use crate::store::{Capabilities, DynJobStore, FireAnswer, FireCommit, FireOutcome, StoredRecord};

/// More than any case adds: "every due job".
pub(crate) const ALL: usize = 10_000;

pub(crate) fn ids(jobs: &[Job]) -> Vec<&str> {
    jobs.iter().map(Job::id).collect()
}

pub(crate) async fn add_all(f: &Fixture, jobs: &[Job]) -> anyhow::Result<()> {
    for job in jobs {
        f.store()
            .add_job(job.clone())
            .await
            .with_context(|| format!("add_job({:?})", job.id()))?;
    }
    Ok(())
}

pub(crate) async fn due(store: &dyn DynJobStore, now: DateTime<Utc>) -> anyhow::Result<Vec<Job>> {
    Ok(store.get_due_jobs(now, ALL).await?)
}

pub(crate) async fn fetch(store: &dyn DynJobStore, id: &str) -> anyhow::Result<Job> {
    store
        .lookup_job(id)
        .await
        .with_context(|| format!("lookup_job({id:?})"))?
        .with_context(|| format!("job {id:?} is missing"))
}

pub(crate) fn expect_kind<T: std::fmt::Debug>(
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
pub(crate) fn commit(job: &Job, outcome: FireOutcome) -> anyhow::Result<FireCommit> {
    FireCommit::of(job, outcome).with_context(|| format!("job {:?} is paused", job.id()))
}

pub(crate) fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, micro: u32) -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(y, mo, d)
        .and_then(|date| date.and_hms_micro_opt(h, mi, s, micro))
        .map(|t| t.and_utc())
        .unwrap_or_default()
}

//! Several schedulers on one store: this node's identity and settings, its heartbeat on every
//! shared store, the other nodes it sees, and the recovery of runs lost with a dead node.
//!
//! Claims on due rows happen inside [`RecordJobStore`](crate::RecordJobStore) (the context
//! names the node); what lives here runs beside the loop, once per `heartbeat_interval`:
//!
//! 1. write this node's heartbeat;
//! 2. read the in-flight runs, then the nodes (in that order: a node writes its heartbeat
//!    before it records any run, so a run whose node is not listed afterwards is orphaned);
//! 3. a node seen for the first time → [`Event::NodeJoined`];
//! 4. a node whose heartbeat is older than `node_timeout` → `remove_node` at the `last_seen`
//!    read; the one caller that removes it adopts its runs in flight, runs them again
//!    ([`Event::JobRecovered`] each), and publishes [`Event::NodeLost`];
//! 5. runs of nodes no longer listed (their remover died before adopting them, or they shut
//!    down while runs were in flight) are adopted the same way.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::builder::validate_interval;
use super::{Inner, Scheduler, SchedulerState, lock, read};
use crate::error::{Error, Result};
use crate::event::{Event, JobRecoveredEvent, NodeEvent, NodeLostEvent, SchedulerErrorEvent};
use crate::executor::{JobRun, RunEndHook};
use crate::job::{Job, whole_micros};
use crate::store::{ClusterStore, DynJobStore, InflightRun, NodeIdentity, NodeRecord};
use crate::telemetry::RunKeys;

/// This node's identity and timings on shared stores.
#[derive(Debug, Clone)]
pub(super) struct ClusterSettings {
    pub(super) node_id: Arc<str>,
    pub(super) heartbeat_interval: Duration,
    pub(super) node_timeout: Duration,
    pub(super) claim_lease: Duration,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        ClusterSettings {
            node_id: default_node_id().into(),
            heartbeat_interval: Duration::from_secs(5),
            node_timeout: Duration::from_secs(15),
            claim_lease: Duration::from_secs(5),
        }
    }
}

impl ClusterSettings {
    /// Fails with [`Config`](crate::ErrorKind::Config) for settings that cannot work.
    pub(super) fn validate(&self) -> Result<()> {
        if self.node_id.is_empty() || self.node_id.len() > 200 {
            return Err(Error::config(format!(
                "node_id must be 1 to 200 bytes long, not {}",
                self.node_id.len()
            )));
        }
        validate_interval("heartbeat_interval", self.heartbeat_interval)?;
        validate_interval("node_timeout", self.node_timeout)?;
        validate_interval("claim_lease", self.claim_lease)?;
        if self.claim_lease >= self.node_timeout {
            return Err(Error::config(format!(
                "claim_lease ({:?}) must be shorter than node_timeout ({:?})",
                self.claim_lease, self.node_timeout
            )));
        }
        if self.heartbeat_interval >= self.node_timeout {
            return Err(Error::config(format!(
                "heartbeat_interval ({:?}) must be shorter than node_timeout ({:?}): a live \
                 node would be taken for dead between two heartbeats",
                self.heartbeat_interval, self.node_timeout
            )));
        }
        Ok(())
    }
}

/// The most ended runs whose in-flight entry is kept for another removal attempt; beyond it
/// (a store down for long under many runs) an entry stays until this node leaves.
const MAX_UNFINISHED: usize = 100_000;

/// `<hostname>-<pid>-<4 random hex digits>`: unique per running scheduler, readable.
pub(super) fn default_node_id() -> String {
    let (high, _) = uuid::Uuid::new_v4().as_u64_pair();
    let host_pid = crate::executor::local_node().replace(':', "-");
    format!("{host_pid}-{:04x}", high >> 48)
}

/// One run: (store alias, job id, run time).
type RunKey = (Arc<str>, Arc<str>, DateTime<Utc>);

/// What the scheduler tracks for its cluster side.
#[derive(Debug, Default)]
pub(super) struct ClusterState {
    /// Runs in flight here whose fire recorded them on a shared store: `(store, job, run
    /// time)`. Bounded by the runs in flight.
    inflight: Mutex<HashSet<RunKey>>,
    /// `inflight`'s size, read without the lock on every run's end.
    inflight_len: AtomicUsize,
    /// Ended runs whose in-flight entry could not be removed, retried at each heartbeat: left
    /// behind, an entry would count against its job's `max_instances` across nodes for as
    /// long as this node lives. At most [`MAX_UNFINISHED`].
    unfinished: Mutex<Vec<RunKey>>,
    /// The other nodes seen on each shared store (for `NodeJoined`). Bounded by the nodes.
    peers: Mutex<HashMap<Arc<str>, HashSet<String>>>,
    /// Bumped at every start: a heartbeat task of an earlier start stops.
    generation: AtomicU64,
    /// Held while a heartbeat task writes: leaving waits for a heartbeat in flight, which
    /// would otherwise write this node's row again after its removal (and keep counting its
    /// runs against `max_instances` across nodes until the row lapses).
    beating: tokio::sync::Mutex<()>,
}

impl Scheduler {
    /// This scheduler's node id on shared stores (see
    /// [`SchedulerBuilder::node_id`](super::SchedulerBuilder::node_id)).
    pub fn node_id(&self) -> Arc<str> {
        read(&self.inner.settings).cluster.node_id.clone()
    }

    /// The live nodes sharing the store `jobstore`: every heartbeat newer than `node_timeout`
    /// by this scheduler's clock, this node's included once it has written one.
    ///
    /// Fails with [`Config`](crate::ErrorKind::Config) for an unknown alias or a store that
    /// cannot be shared ([`Capabilities::cluster`](crate::Capabilities::cluster)).
    pub async fn nodes(&self, jobstore: &str) -> Result<Vec<NodeRecord>> {
        let store = self.store(jobstore)?;
        let cluster = cluster_of(&*store, jobstore)?;
        let nodes = self.bounded("nodes", cluster.nodes()).await?;
        let now = self.inner.clock.now();
        let timeout = read(&self.inner.settings).cluster.node_timeout;
        Ok(nodes
            .into_iter()
            .filter(|n| !lapsed(n.last_seen, now, timeout))
            .collect())
    }

    /// Who this scheduler is on a shared store, for the stores' contexts.
    pub(super) fn node_identity(&self) -> NodeIdentity {
        let settings = read(&self.inner.settings);
        NodeIdentity {
            id: settings.cluster.node_id.clone(),
            claim_lease: settings.cluster.claim_lease,
        }
    }

    /// The hook every executor context calls at the end of each run.
    pub(super) fn run_end_hook(&self) -> RunEndHook {
        // Weak: executors (held by the scheduler) must not keep it alive.
        let inner: Weak<Inner> = Arc::downgrade(&self.inner);
        Arc::new(move |jobstore, job_id, run_time| {
            if let Some(inner) = inner.upgrade() {
                Scheduler { inner }.run_ended(jobstore, job_id, run_time);
            }
        })
    }

    /// Remembers runs recorded as in flight on `jobstore`, to finish them when they end.
    pub(super) fn track_runs(
        &self,
        jobstore: &Arc<str>,
        job_id: &Arc<str>,
        runs: &[DateTime<Utc>],
    ) {
        let state = &self.inner.cluster;
        let mut inflight = lock(&state.inflight);
        for &t in runs {
            inflight.insert((jobstore.clone(), job_id.clone(), t));
        }
        state.inflight_len.store(inflight.len(), Ordering::Release);
    }

    /// The store refused `run_times` of `job` (its fire committed): the job already has
    /// `max_instances` runs in flight across the nodes. Reported as a node's own limit
    /// reports it.
    pub(super) fn refused_across_nodes(
        &self,
        jobstore: &Arc<str>,
        job: &Job,
        run_times: &[DateTime<Utc>],
    ) {
        let executor: Arc<str> = job.executor().into();
        let job_label = read(&self.inner.settings)
            .metrics_job_labels
            .then_some(job.id_arc());
        let keys = RunKeys::new(crate::telemetry::run_labels(jobstore, &executor, job_label));
        let run = JobRun {
            job: job.clone(),
            jobstore: jobstore.clone(),
            run_times: run_times.into(),
        };
        crate::executor::report_max_instances(&self.inner.events, &keys, &run, &executor);
    }

    /// Every run of `run` ended without running (refused at submission).
    pub(super) fn runs_refused(&self, run: &JobRun) {
        for &t in &run.run_times {
            self.run_ended(&run.jobstore, run.job.id_arc(), t);
        }
    }

    /// A run ended: if it was recorded as in flight, remove its entry from the store.
    fn run_ended(&self, jobstore: &Arc<str>, job_id: &Arc<str>, run_time: DateTime<Utc>) {
        let state = &self.inner.cluster;
        if state.inflight_len.load(Ordering::Acquire) == 0 {
            return;
        }
        let removed = {
            let mut inflight = lock(&state.inflight);
            let removed = inflight.remove(&(jobstore.clone(), job_id.clone(), run_time));
            state.inflight_len.store(inflight.len(), Ordering::Release);
            removed
        };
        let runtime = lock(&self.inner.runtime).clone();
        let (true, Some(runtime)) = (removed, runtime) else {
            return;
        };
        let scheduler = self.clone();
        let (jobstore, job_id) = (jobstore.clone(), job_id.clone());
        runtime.spawn(async move {
            let finished = async {
                let store = scheduler.store(&jobstore)?;
                let cluster = cluster_of(&*store, &jobstore)?;
                scheduler
                    .bounded("finish_run", cluster.finish_run(&job_id, run_time))
                    .await
            };
            if let Err(e) = finished.await {
                scheduler.finish_later((jobstore.clone(), job_id.clone(), run_time));
                // The entry stays until a heartbeat retries it: if this node dies first, the
                // run is run again (at least once).
                crate::logging::log_warn!(
                    jobstore = %jobstore,
                    job = %job_id,
                    %run_time,
                    error = %e,
                    "cannot remove a finished run's in-flight entry"
                );
            }
        });
    }

    /// Keeps `run` to remove its in-flight entry at the next heartbeat.
    fn finish_later(&self, run: RunKey) {
        let mut unfinished = lock(&self.inner.cluster.unfinished);
        if unfinished.len() < MAX_UNFINISHED {
            unfinished.push(run);
        }
    }

    /// Removes the in-flight entries on `alias` whose removal failed at their run's end.
    async fn retry_finished_runs(&self, alias: &Arc<str>, cluster: &dyn ClusterStore) {
        let retry: Vec<RunKey> = {
            let mut unfinished = lock(&self.inner.cluster.unfinished);
            let (mine, others) = unfinished
                .drain(..)
                .partition(|(store, _, _)| store == alias);
            *unfinished = others;
            mine
        };
        for run in retry {
            let (_, job_id, run_time) = &run;
            if self
                .bounded("finish_run", cluster.finish_run(job_id, *run_time))
                .await
                .is_err()
            {
                self.finish_later(run);
            }
        }
    }

    /// Hands every shared store this node's first heartbeat before the loop can claim or fire
    /// anything there (`join`: a SQL store writes it with its first fire commit, not in a
    /// commit of its own), and starts the heartbeat task, which at once looks at the other
    /// nodes and their runs in flight: that look is not on the way to this node's first runs.
    pub(super) async fn start_cluster(&self, runtime: &tokio::runtime::Handle) {
        let generation = self.inner.cluster.generation.fetch_add(1, Ordering::AcqRel) + 1;
        lock(&self.inner.cluster.peers).clear();
        for (alias, store) in self.store_snapshot() {
            if store.cluster().is_some()
                && let Err(e) = self.join(&alias, &*store).await
            {
                self.tick_failed(&alias, e);
            }
        }
        // Also without a shared store yet: one may be added while running.
        runtime.spawn(self.clone().heartbeats(generation));
    }

    /// Removes this node's heartbeat from every shared store (a clean shutdown).
    pub(super) async fn leave_cluster(&self) {
        self.inner.cluster.generation.fetch_add(1, Ordering::AcqRel);
        let _no_heartbeat = self.inner.cluster.beating.lock().await;
        let node = self.node_id();
        for (alias, store) in self.store_snapshot() {
            let Some(cluster) = store.cluster() else {
                continue;
            };
            let left = async {
                let nodes = self.bounded("nodes", cluster.nodes()).await?;
                if let Some(me) = nodes.into_iter().find(|n| *n.id == *node) {
                    self.bounded("remove_node", cluster.remove_node(&node, me.last_seen))
                        .await?;
                }
                Ok::<_, Error>(())
            };
            if let Err(e) = left.await {
                crate::logging::log_warn!(jobstore = %alias, error = %e, "cannot remove this node's heartbeat");
            }
        }
    }

    /// The heartbeat task of start number `generation`: the first look at the other nodes
    /// once the start is over (its heartbeats are written), then a heartbeat and a look every
    /// `heartbeat_interval`.
    async fn heartbeats(self, generation: u64) {
        let mut state = self.lifecycle().subscribe();
        // The start that spawned this task is still running: whether it succeeds is known
        // once it is over. The first look then waits for the loop's first pass (a paused
        // scheduler makes none), at most a heartbeat interval: looking beside the first claim
        // took the store's one idle connection from it (a new one cost the first run 2 ms
        // and more on PostgreSQL).
        self.lifecycle().settled().await;
        if *state.borrow() == SchedulerState::Running {
            let interval = read(&self.inner.settings).cluster.heartbeat_interval;
            let _ = tokio::time::timeout(interval, self.lifecycle().first_pass_done()).await;
        }
        let mut first = true;
        loop {
            let current = if first {
                *state.borrow_and_update()
            } else {
                let interval = read(&self.inner.settings).cluster.heartbeat_interval;
                let at = self.inner.clock.now() + TimeDelta::from_std(interval).unwrap_or_default();
                loop {
                    tokio::select! {
                        () = self.inner.clock.sleep_until(at) => break *state.borrow_and_update(),
                        changed = state.changed() => {
                            let current = *state.borrow_and_update();
                            // Only a stop ends the wait early.
                            if changed.is_err()
                                || matches!(current, SchedulerState::Stopped | SchedulerState::Failed)
                            {
                                break current;
                            }
                        }
                    }
                }
            };
            let _beating = self.inner.cluster.beating.lock().await;
            if matches!(current, SchedulerState::Stopped | SchedulerState::Failed)
                || self.inner.cluster.generation.load(Ordering::Acquire) != generation
            {
                return;
            }
            for (alias, store) in self.store_snapshot() {
                if store.cluster().is_none() {
                    continue;
                }
                // The start wrote the first heartbeat: beating again at once would race the
                // loop's first claim for the store (SQLite's one writer).
                let ticked = if first {
                    self.look(&alias, &*store).await
                } else {
                    self.try_tick(&alias, &*store).await
                };
                if let Err(e) = ticked {
                    self.tick_failed(&alias, e);
                }
            }
            first = false;
        }
    }

    /// Reports a failed heartbeat or look at the other nodes.
    fn tick_failed(&self, alias: &Arc<str>, e: Error) {
        crate::logging::log_warn!(jobstore = %alias, error = %e, "cluster heartbeat failed");
        self.inner
            .events
            .publish(Event::SchedulerError(SchedulerErrorEvent {
                jobstore: Some(alias.clone()),
                error: Arc::new(e),
            }));
    }

    /// One heartbeat on `store`, then its look at the other nodes.
    async fn try_tick(&self, alias: &Arc<str>, store: &dyn DynJobStore) -> Result<()> {
        self.beat(alias, store).await?;
        self.look(alias, store).await
    }

    /// Writes this node's heartbeat on `store`.
    async fn beat(&self, alias: &Arc<str>, store: &dyn DynJobStore) -> Result<()> {
        let cluster = cluster_of(store, alias)?;
        self.bounded("heartbeat", cluster.heartbeat(&self.node_record()))
            .await
    }

    /// Hands `store` this node's first heartbeat since the start.
    async fn join(&self, alias: &Arc<str>, store: &dyn DynJobStore) -> Result<()> {
        let cluster = cluster_of(store, alias)?;
        self.bounded("join", cluster.join(&self.node_record()))
            .await
    }

    /// This node's heartbeat, now.
    fn node_record(&self) -> NodeRecord {
        NodeRecord {
            id: self.node_id().to_string(),
            last_seen: whole_micros(self.inner.clock.now()),
            info: node_info(),
        }
    }

    /// Retries the removal of finished runs' entries, reads the runs in flight and the nodes,
    /// reports the nodes that joined, and removes the lapsed ones, recovering their runs.
    async fn look(&self, alias: &Arc<str>, store: &dyn DynJobStore) -> Result<()> {
        let cluster = cluster_of(store, alias)?;
        let (me, timeout) = {
            let settings = read(&self.inner.settings);
            (
                settings.cluster.node_id.clone(),
                settings.cluster.node_timeout,
            )
        };
        let now = whole_micros(self.inner.clock.now());
        self.retry_finished_runs(alias, cluster).await;
        let inflight = self
            .bounded("inflight_runs", cluster.inflight_runs())
            .await?;
        let nodes = self.bounded("nodes", cluster.nodes()).await?;

        let listed: HashSet<&str> = nodes.iter().map(|n| n.id.as_str()).collect();
        let joined: Vec<String> = {
            let mut peers = lock(&self.inner.cluster.peers);
            let seen = peers.entry(alias.clone()).or_default();
            seen.retain(|id| listed.contains(id.as_str()));
            nodes
                .iter()
                .filter(|n| *n.id != *me && !lapsed(n.last_seen, now, timeout))
                .filter(|n| seen.insert(n.id.clone()))
                .map(|n| n.id.clone())
                .collect()
        };
        for node in joined {
            tracing::info!(jobstore = %alias, node = %node, "scheduler node joined");
            self.inner.events.publish(Event::NodeJoined(NodeEvent {
                node: node.into(),
                jobstore: alias.clone(),
            }));
        }
        for node in nodes
            .iter()
            .filter(|n| *n.id != *me && lapsed(n.last_seen, now, timeout))
        {
            if !self
                .bounded("remove_node", cluster.remove_node(&node.id, node.last_seen))
                .await?
            {
                continue; // another node removed it, or it wrote a heartbeat since
            }
            lock(&self.inner.cluster.peers)
                .entry(alias.clone())
                .or_default()
                .remove(&node.id);
            self.drop_unrecoverable(store, cluster, &node.id, &inflight)
                .await;
            let adopted = self
                .bounded("adopt_runs", cluster.adopt_runs(&node.id, &me))
                .await?;
            let recovered = self.recover(alias, store, cluster, &node.id, adopted).await;
            crate::logging::log_warn!(
                jobstore = %alias,
                node = %node.id,
                last_seen = %node.last_seen,
                runs_recovered = recovered,
                "scheduler node lost: its heartbeat lapsed"
            );
            self.inner.events.publish(Event::NodeLost(NodeLostEvent {
                node: node.id.as_str().into(),
                jobstore: alias.clone(),
                runs_recovered: recovered,
            }));
        }
        // Runs of nodes gone from the list without their runs being adopted.
        let orphaned: HashSet<&str> = inflight
            .iter()
            .map(|r| r.node.as_str())
            .filter(|n| *n != &*me && !listed.contains(n))
            .collect();
        for node in orphaned {
            self.drop_unrecoverable(store, cluster, node, &inflight)
                .await;
            let adopted = self
                .bounded("adopt_runs", cluster.adopt_runs(node, &me))
                .await?;
            self.recover(alias, store, cluster, node, adopted).await;
        }
        Ok(())
    }

    /// Removes the entries `lost` left of jobs that do not recover lost runs, before its
    /// runs are adopted: adopted first, such an entry would count as this node's run against
    /// its job's `max_instances` across nodes until removed, refusing a fire committed in
    /// between. What fails here is removed after the adoption instead (in `recover`).
    async fn drop_unrecoverable(
        &self,
        store: &dyn DynJobStore,
        cluster: &dyn ClusterStore,
        lost: &str,
        inflight: &[InflightRun],
    ) {
        for run in inflight.iter().filter(|r| r.node == lost) {
            let recovers = store.lookup_job(&run.job_id).await;
            if matches!(recovers, Ok(Some(ref job)) if job.recover_lost_runs()) {
                continue;
            }
            let finished = cluster.finish_run(&run.job_id, run.run_time);
            if let Err(e) = self.bounded("finish_run", finished).await {
                crate::logging::log_warn!(error = %e, "cannot remove an in-flight entry");
            }
        }
    }

    /// Runs again the runs adopted from `lost`, however late (their fires were committed);
    /// answers how many it ran again.
    async fn recover(
        &self,
        alias: &Arc<str>,
        store: &dyn DynJobStore,
        cluster: &dyn ClusterStore,
        lost: &str,
        runs: Vec<InflightRun>,
    ) -> usize {
        let mut recovered = 0;
        for run in runs {
            let job = match store.lookup_job(&run.job_id).await {
                Ok(Some(job)) => job,
                outcome => {
                    let why = match outcome {
                        Err(e) => e.to_string(),
                        _ => "the job was removed".to_owned(),
                    };
                    crate::logging::log_warn!(
                        jobstore = %alias,
                        job = %run.job_id,
                        run_time = %run.run_time,
                        "a run lost with node {lost:?} cannot be run again: {why}"
                    );
                    let finished = cluster.finish_run(&run.job_id, run.run_time);
                    if let Err(e) = self.bounded("finish_run", finished).await {
                        crate::logging::log_warn!(error = %e, "cannot remove an in-flight entry");
                    }
                    continue;
                }
            };
            if !job.recover_lost_runs() {
                // Recorded only to count the job's instances across nodes: the run is lost
                // (at most once), and its entry must stop counting.
                let finished = cluster.finish_run(&run.job_id, run.run_time);
                if let Err(e) = self.bounded("finish_run", finished).await {
                    crate::logging::log_warn!(error = %e, "cannot remove an in-flight entry");
                }
                continue;
            }
            let executor = read(&self.inner.executors).get(job.executor());
            let Some(executor) = executor else {
                // Kept on this node: it is recovered again if an executor comes, or by
                // whichever node adopts this node's runs.
                crate::logging::log_error!(
                    jobstore = %alias,
                    job = %run.job_id,
                    executor = job.executor(),
                    "a lost run cannot be run again here: its executor does not exist"
                );
                continue;
            };
            let job_id = job.id_arc().clone();
            self.track_runs(alias, &job_id, &[run.run_time]);
            tracing::info!(jobstore = %alias, job = %job_id, run_time = %run.run_time, lost_node = lost, "running again a run lost with its node");
            self.inner
                .events
                .publish(Event::JobRecovered(JobRecoveredEvent {
                    job_id: job_id.clone(),
                    jobstore: alias.clone(),
                    scheduled_run_time: run.run_time,
                    lost_node: lost.into(),
                }));
            self.submit(
                &*executor,
                alias,
                job.without_misfire_grace(),
                run.run_time.into(),
            );
            recovered += 1;
        }
        recovered
    }

    /// `call`, bounded by the store call timeout.
    async fn bounded<T>(
        &self,
        what: &str,
        call: crate::clock::BoxFuture<'_, Result<T>>,
    ) -> Result<T> {
        let timeout = read(&self.inner.settings).jobstore_call_timeout;
        match tokio::time::timeout(timeout, call).await {
            Ok(answer) => answer,
            Err(_) => Err(Error::timed_out(&format!("cluster call {what}"), timeout)),
        }
    }
}

/// The store's cluster side, or a [`Config`](crate::ErrorKind::Config) error.
fn cluster_of<'a>(store: &'a dyn DynJobStore, alias: &str) -> Result<&'a dyn ClusterStore> {
    store.cluster().ok_or_else(|| {
        Error::config(format!(
            "job store {alias:?} cannot be shared by several schedulers (its capabilities have \
             no `cluster`)"
        ))
    })
}

/// Whether a heartbeat written at `last_seen` has lapsed at `now`.
fn lapsed(last_seen: DateTime<Utc>, now: DateTime<Utc>, timeout: Duration) -> bool {
    TimeDelta::from_std(timeout)
        .ok()
        .and_then(|t| last_seen.checked_add_signed(t))
        .is_some_and(|deadline| deadline < now)
}

/// The heartbeat's info: where the node runs and which build it is.
fn node_info() -> String {
    serde_json::json!({
        "node": crate::executor::local_node(),
        "pid": std::process::id(),
        "version": env!("CARGO_PKG_VERSION"),
    })
    .to_string()
}

//! The job API: add, modify, reschedule, pause, resume, remove, get and list jobs, in the
//! pending list before start and in the stores after.

use std::sync::Arc;

use super::{Scheduler, lock};
use crate::error::{Error, ErrorKind, Result};
use crate::event::{Event, EventMask, JobEvent};
use crate::executor::JobRun;
use crate::job::{Job, JobChanges, JobSpec};
use crate::store::DynJobStore;
use crate::trigger::Trigger;

/// The store and executor the previous spec of a batch named, found and checked: the specs of
/// a batch mostly name the same ones, and looking a store up allocates its alias and wrapper.
struct Destination {
    alias: Arc<str>,
    store: Arc<dyn DynJobStore>,
    /// Whether the store keeps closures ([`Capabilities::closures`](crate::Capabilities)).
    closures: bool,
    executor: Arc<str>,
}

impl Destination {
    /// Whether `spec` goes to this store and executor (the specs of a batch mostly share the
    /// aliases' `Arc`s, so comparing pointers usually settles it).
    fn serves(&self, spec: &JobSpec) -> bool {
        let same = |a: &Arc<str>, b: &Arc<str>| Arc::ptr_eq(a, b) || a == b;
        same(&self.alias, &spec.jobstore) && same(&self.executor, &spec.executor)
    }
}

/// What adding a job reads from the scheduler's settings, read once per call (not per job).
struct AddSettings {
    defaults: crate::job::JobDefaults,
    timezone: chrono_tz::Tz,
    now: chrono::DateTime<chrono::Utc>,
}

/// The jobs of one `add_jobs` call bound for one store, with the answer slot of each.
struct Batch {
    alias: Arc<str>,
    store: Arc<dyn DynJobStore>,
    slots: Vec<usize>,
    jobs: Vec<Job>,
}

impl Scheduler {
    /// Adds a job. Before start it waits in the pending list; once started it goes to its
    /// store (defaults filled, first run time from the trigger unless given) and
    /// [`Event::JobAdded`] is published.
    ///
    /// Fails with [`ConflictingId`](ErrorKind::ConflictingId) when the id is taken and
    /// `replace_existing` is off, [`Config`](ErrorKind::Config) for an unknown store or (once
    /// started) executor alias, [`NotPersistable`](ErrorKind::NotPersistable) for a closure in a
    /// persistent store, [`InvalidJob`](ErrorKind::InvalidJob) for out-of-range options, and
    /// [`SchedulerState`](ErrorKind::SchedulerState) when the scheduler has
    /// [failed](super::SchedulerState::Failed).
    pub async fn add_job(&self, mut spec: JobSpec) -> Result<Job> {
        self.settled().await;
        self.lifecycle().ensure_usable()?;
        spec.target.validate()?;
        if spec.id.is_none() {
            spec.id = Some(crate::ids::random_id());
        }
        if self.running() {
            return self.add_to_store(spec).await;
        }
        // Checked now so a bad spec fails here, not at start.
        let defaults = self.job_defaults();
        let preview = spec
            .clone()
            .with_default_timezone(self.timezone())
            .into_job(&defaults, self.inner.clock.now())?;
        self.check_executor_runs(&preview)?;
        tracing::info!(
            job = preview.id(),
            "adding job tentatively; it will be scheduled when the scheduler starts"
        );
        lock(&self.inner.pending).push(spec);
        Ok(preview_pending(preview))
    }

    /// Adds many jobs: as [`add_job`](Self::add_job) adds each, answering for every spec, in
    /// the order given, its job or the error `add_job` would give it; one refused job does not
    /// stop the others.
    ///
    /// Once the scheduler runs, the jobs bound for one store reach it in one call
    /// ([`JobStore::add_jobs`](crate::JobStore::add_jobs)), which the persistent stores turn
    /// into one round trip per batch, and the loop is woken once: use it to add thousands of
    /// jobs. Fails as a whole only when the scheduler has
    /// [failed](super::SchedulerState::Failed).
    pub async fn add_jobs(
        &self,
        specs: impl IntoIterator<Item = JobSpec>,
    ) -> Result<Vec<Result<Job>>> {
        self.settled().await;
        self.lifecycle().ensure_usable()?;
        if !self.running() {
            let mut answers = Vec::new();
            for spec in specs {
                answers.push(self.add_job(spec).await);
            }
            return Ok(answers);
        }
        let settings = self.add_settings();
        let specs = specs.into_iter();
        // A job bound for a batch is answered with its copy here until its store answers:
        // every slot of a batch is then set, to the job at its revision or to an error.
        let mut answers: Vec<Result<Job>> = Vec::with_capacity(specs.size_hint().0);
        // Per store, in the order first named; `current` is the one the last job went to.
        let mut batches: Vec<Batch> = Vec::new();
        let mut current = 0;
        let mut destination = None;
        // The earliest run time of the jobs added: the loop is woken only if it would not
        // look by then anyway.
        let mut earliest = None;
        for mut spec in specs {
            if spec.id.is_none() {
                spec.id = Some(crate::ids::random_id());
            }
            let replace = spec.replace_existing;
            let prepared = spec
                .target
                .validate()
                .and_then(|()| self.prepare(spec, &settings, &mut destination));
            let (target, job) = match prepared {
                Ok(prepared) => prepared,
                Err(e) => {
                    answers.push(Err(e));
                    continue;
                }
            };
            if replace {
                let answer = self.store_job(target, job, true).await;
                if let Ok(job) = &answer {
                    earliest = [earliest, job.next_run_time()].into_iter().flatten().min();
                }
                answers.push(answer);
                continue;
            }
            if batches
                .get(current)
                .is_none_or(|b| !Arc::ptr_eq(&b.alias, &target.alias))
            {
                current = match batches.iter().position(|b| b.alias == target.alias) {
                    Some(found) => found,
                    None => {
                        batches.push(Batch {
                            alias: target.alias.clone(),
                            store: target.store.clone(),
                            slots: Vec::new(),
                            jobs: Vec::new(),
                        });
                        batches.len() - 1
                    }
                };
            }
            let batch = &mut batches[current];
            batch.slots.push(answers.len());
            batch.jobs.push(job.clone());
            answers.push(Ok(job));
        }
        for Batch {
            alias,
            store,
            slots,
            jobs,
        } in batches
        {
            let count = jobs.len();
            let revisions = match store.add_jobs(jobs).await {
                Ok(revisions) if revisions.len() == count => revisions,
                Ok(revisions) => {
                    let message = format!(
                        "job store {alias:?} answered {} of {count} adds",
                        revisions.len(),
                    );
                    for &slot in &slots {
                        answers[slot] = Err(Error::new(ErrorKind::Backend, message.clone()));
                    }
                    continue;
                }
                Err(e) => {
                    let e = Arc::new(e);
                    for &slot in &slots {
                        let mut each = Error::new(e.kind(), e.message()).with_source(e.clone());
                        if e.is_temporary() {
                            each = each.set_temporary();
                        }
                        answers[slot] = Err(each);
                    }
                    continue;
                }
            };
            let announce = self.announces_added();
            for (slot, revision) in slots.into_iter().zip(revisions) {
                let answer = &mut answers[slot];
                match (revision, answer.as_mut()) {
                    (Ok(revision), Ok(job)) => {
                        job.set_revision(revision);
                        self.added(job, &alias, announce);
                        earliest = [earliest, job.next_run_time()].into_iter().flatten().min();
                    }
                    (Err(e), _) => *answer = Err(e),
                    // Not reached: the slots of a batch hold the jobs it was given.
                    (Ok(_), Err(_)) => {}
                }
            }
        }
        self.wake_for(earliest);
        Ok(answers)
    }

    async fn add_to_store(&self, spec: JobSpec) -> Result<Job> {
        let replace = spec.replace_existing;
        let mut destination = None;
        let (target, job) = self.prepare(spec, &self.add_settings(), &mut destination)?;
        let job = self.store_job(target, job, replace).await?;
        self.wake_for(job.next_run_time());
        Ok(job)
    }

    /// Finds and checks the store and executor `spec` names.
    fn destination(&self, spec: &JobSpec) -> Result<Destination> {
        let store = self.store(&spec.jobstore)?;
        if super::read(&self.inner.executors)
            .get(&spec.executor)
            .is_none()
        {
            return Err(Error::config(format!(
                "no executor named {:?}; add it with add_executor",
                spec.executor
            )));
        }
        Ok(Destination {
            alias: spec.jobstore.clone(),
            closures: store.capabilities().closures,
            store,
            executor: spec.executor.clone(),
        })
    }

    fn add_settings(&self) -> AddSettings {
        let settings = super::read(&self.inner.settings);
        AddSettings {
            defaults: settings.job_defaults,
            timezone: settings.timezone,
            now: self.inner.clock.now(),
        }
    }

    /// Checks `spec` against the running scheduler and builds its job (defaults filled, the
    /// scheduler's zone given to a trigger without one, first run time from the trigger at
    /// the settings' `now`), answering it with where it goes. `last` is the destination of the
    /// previous spec of a batch, reused when this one names the same store and executor.
    fn prepare<'d>(
        &self,
        spec: JobSpec,
        settings: &AddSettings,
        last: &'d mut Option<Destination>,
    ) -> Result<(&'d Destination, Job)> {
        let destination = match last.take() {
            Some(d) if d.serves(&spec) => last.insert(d),
            _ => last.insert(self.destination(&spec)?),
        };
        let job = spec
            .with_default_timezone(settings.timezone)
            .into_job(&settings.defaults, settings.now)?;
        if !job.target().is_persistable() && !destination.closures {
            return Err(Error::not_persistable(job.id()));
        }
        self.check_executor_runs(&job)?;
        Ok((destination, job))
    }

    /// Refuses a job its executor cannot run (a closure for an executor that runs jobs in
    /// other processes). An executor not added yet is checked when the job reaches its store.
    fn check_executor_runs(&self, job: &Job) -> Result<()> {
        // Every executor runs a registered function: only closures need the look-up.
        if job.target().is_persistable() {
            return Ok(());
        }
        let executor = super::read(&self.inner.executors).get(job.executor());
        match executor {
            Some(executor) if !executor.capabilities().closures => {
                Err(Error::closure_not_runnable(job.id(), job.executor()))
            }
            _ => Ok(()),
        }
    }

    /// Writes one prepared job to its store (replacing a job with its id if `replace`) and
    /// publishes [`Event::JobAdded`].
    async fn store_job(&self, target: &Destination, mut job: Job, replace: bool) -> Result<Job> {
        let revision = if replace {
            target.store.upsert_job(job.clone()).await?
        } else {
            target.store.add_job(job.clone()).await?
        };
        job.set_revision(revision);
        self.added(&job, &target.alias, self.announces_added());
        Ok(job)
    }

    /// Whether [`Event::JobAdded`] has a subscriber: asked once per batch, so that a batch
    /// nobody listens to builds no event per job.
    fn announces_added(&self) -> bool {
        self.inner.events.wants(EventMask::JOB_ADDED)
    }

    /// Logs an added job and, if `announce`, publishes [`Event::JobAdded`] for it.
    fn added(&self, job: &Job, alias: &Arc<str>, announce: bool) {
        tracing::info!(job = job.id(), jobstore = %alias, "added job");
        if announce {
            self.inner.events.publish(Event::JobAdded(JobEvent {
                job_id: job.id_arc().clone(),
                jobstore: alias.clone(),
            }));
        }
    }

    /// Adds the jobs added before start. Checks every id first (against the stores and among
    /// the pending jobs) so a conflict adds nothing; a job that still fails to be added stays
    /// pending with the ones after it.
    pub(super) async fn flush_pending(&self) -> Result<()> {
        let pending = lock(&self.inner.pending).take();
        if let Err(e) = self.check_pending(&pending).await {
            lock(&self.inner.pending).put_back(pending);
            return Err(e);
        }
        let mut rest = pending.into_iter();
        while let Some(spec) = rest.next() {
            if let Err(e) = self.add_to_store(spec.clone()).await {
                lock(&self.inner.pending).put_back(std::iter::once(spec).chain(rest));
                return Err(e);
            }
        }
        Ok(())
    }

    async fn check_pending(&self, pending: &[JobSpec]) -> Result<()> {
        if let Some(repeated) = super::pending::PendingJobs::first_repeated(pending) {
            return Err(Error::conflicting_id(
                repeated.id.as_deref().unwrap_or_default(),
            ));
        }
        for spec in pending.iter().filter(|s| !s.replace_existing) {
            let id = spec.id.as_deref().unwrap_or_default();
            if self.store(&spec.jobstore)?.lookup_job(id).await?.is_some() {
                return Err(Error::conflicting_id(id));
            }
        }
        Ok(())
    }

    /// Changes a job's options (APScheduler's `modify_job`), publishing
    /// [`Event::JobModified`]. `jobstore` limits the search to one store.
    ///
    /// The change is written only if nobody wrote the job since it was read (the loop firing
    /// it, another scheduler sharing the store); otherwise the job is read again and the
    /// change applied to it, so no change is lost. Fails with
    /// [`Conflict`](ErrorKind::Conflict) if the job keeps changing under it.
    pub async fn modify_job(
        &self,
        id: &str,
        jobstore: Option<&str>,
        changes: JobChanges,
    ) -> Result<Job> {
        self.settled().await;
        self.lifecycle().ensure_usable()?;
        if !self.running() {
            let mut pending = lock(&self.inner.pending);
            let spec = pending
                .get_mut(id, jobstore)
                .ok_or_else(|| Error::job_not_found(id))?;
            let mut updated = spec.clone();
            updated.apply(changes)?;
            let preview = updated
                .clone()
                .with_default_timezone(self.timezone())
                .into_job(&self.job_defaults(), self.inner.clock.now())?;
            self.check_executor_runs(&preview)?;
            *spec = updated;
            let alias = spec.jobstore.clone();
            drop(pending);
            self.inner.events.publish(Event::JobModified(JobEvent {
                job_id: preview.id_arc().clone(),
                jobstore: alias,
            }));
            return Ok(preview_pending(preview));
        }
        let changes = changes.with_default_timezone(self.timezone());
        let (job, alias) = self.update_stored(id, jobstore, &changes).await?;
        tracing::info!(job = id, "modified job");
        self.inner.events.publish(Event::JobModified(JobEvent {
            job_id: job.id_arc().clone(),
            jobstore: alias,
        }));
        self.wake_if_running();
        Ok(job)
    }

    /// Reads the stored job, applies `changes` and writes it back if nobody wrote it in
    /// between (a conditional write on the revision read); reads again and retries when
    /// someone did (the loop committing a fire, another scheduler on a shared store), so a
    /// change is applied to the latest job and never lost, nor does it undo another. Gives up
    /// with [`Conflict`](ErrorKind::Conflict) only if the job keeps changing under it.
    async fn update_stored(
        &self,
        id: &str,
        jobstore: Option<&str>,
        changes: &JobChanges,
    ) -> Result<(Job, Arc<str>)> {
        /// Each conflict means another writer made progress; this many in a row means the
        /// job is written faster than it can be read and written back.
        const ATTEMPTS: usize = 16;
        let mut attempt = 1;
        loop {
            let (mut job, alias, store) = self.lookup(id, jobstore).await?;
            job.apply(changes.clone())?;
            if !job.target().is_persistable() && !store.capabilities().closures {
                return Err(Error::not_persistable(id));
            }
            self.check_executor_runs(&job)?;
            match store.update_job(job.clone()).await {
                Ok(revision) => {
                    job.set_revision(revision);
                    return Ok((job, alias));
                }
                Err(e) if e.kind() == ErrorKind::Conflict && attempt < ATTEMPTS => {
                    tracing::debug!(
                        job = id,
                        attempt,
                        "job changed while being modified; retrying"
                    );
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Gives a job a new trigger and computes its next run time from it now.
    pub async fn reschedule_job(
        &self,
        id: &str,
        jobstore: Option<&str>,
        trigger: impl Trigger,
    ) -> Result<Job> {
        let trigger = crate::job::with_default_timezone(Arc::new(trigger), self.timezone());
        let next = crate::job::first_fire_time(&*trigger, self.inner.clock.now())
            .map_err(|e| e.with_job_id(id))?;
        let mut changes = JobChanges::new().next_run_time(next);
        changes.trigger = Some(trigger);
        self.modify_job(id, jobstore, changes).await
    }

    /// Pauses a job: it keeps its place in the store with no next run time.
    pub async fn pause_job(&self, id: &str, jobstore: Option<&str>) -> Result<Job> {
        self.modify_job(id, jobstore, JobChanges::new().next_run_time(None))
            .await
    }

    /// Resumes a paused job from its trigger's next fire time after now; removes it (and
    /// answers `None`) if its trigger is finished.
    pub async fn resume_job(&self, id: &str, jobstore: Option<&str>) -> Result<Option<Job>> {
        let now = self.inner.clock.now();
        let job = match self.get_job(id, jobstore).await? {
            Some(job) => job,
            None => return Err(Error::job_not_found(id)),
        };
        let next =
            crate::job::first_fire_time(&**job.trigger(), now).map_err(|e| e.with_job_id(id))?;
        match next {
            Some(next) => self
                .modify_job(id, jobstore, JobChanges::new().next_run_time(Some(next)))
                .await
                .map(Some),
            None => {
                self.remove_job(id, jobstore).await?;
                Ok(None)
            }
        }
    }

    /// Runs a job once now, without changing its schedule: its next run time (and so an
    /// interval job's phase) stays as it is, and a paused job runs once and stays paused.
    ///
    /// The run goes to the job's executor as a due run would, scheduled for now: it obeys
    /// `max_instances` and publishes the usual events ([`Event::JobSubmitted`], then
    /// [`Event::JobExecuted`] or [`Event::JobError`]). Answers the job as it was submitted,
    /// once the run is submitted (not finished). Runs even while job processing is
    /// [paused](Self::pause): it is an explicit request.
    ///
    /// APScheduler 3.x has no such call; its users emulate it with
    /// `modify_job(next_run_time=now)`, which drops the planned run and shifts an interval
    /// job's schedule. Fails with [`JobNotFound`](ErrorKind::JobNotFound),
    /// [`MaxInstancesReached`](ErrorKind::MaxInstancesReached) (after
    /// [`Event::JobMaxInstances`]), [`Config`](ErrorKind::Config) when the job's executor does
    /// not exist here, and [`SchedulerState`](ErrorKind::SchedulerState) before start (jobs
    /// added then are not in a store yet) or once the scheduler has failed.
    pub async fn run_job_now(&self, id: &str, jobstore: Option<&str>) -> Result<Job> {
        self.settled().await;
        self.lifecycle().ensure_usable()?;
        if !self.running() {
            return Err(Error::scheduler_state(
                "the scheduler is not running; a job can be run now once it is started",
            )
            .with_job_id(id));
        }
        let (job, alias, _) = self.lookup(id, jobstore).await?;
        let executor = super::read(&self.inner.executors)
            .get(job.executor())
            .ok_or_else(|| {
                Error::config(format!(
                    "job {id:?} names executor {:?}, which this scheduler does not have; add it \
                     with add_executor",
                    job.executor()
                ))
                .with_job_id(id)
            })?;
        let now = self.inner.clock.now();
        tracing::info!(job = id, jobstore = %alias, "running job now, on request");
        executor.submit(JobRun {
            job: job.clone(),
            jobstore: alias,
            run_times: now.into(),
        })?;
        Ok(job)
    }

    /// Removes a job, publishing [`Event::JobRemoved`].
    pub async fn remove_job(&self, id: &str, jobstore: Option<&str>) -> Result<()> {
        self.settled().await;
        self.lifecycle().ensure_usable()?;
        if !self.running() {
            let spec = lock(&self.inner.pending)
                .remove(id, jobstore)
                .ok_or_else(|| Error::job_not_found(id))?;
            self.publish_removed(id.into(), spec.jobstore);
            return Ok(());
        }
        for (alias, store) in self.stores_named(jobstore) {
            match store.remove_job(id).await {
                Ok(()) => {
                    tracing::info!(job = id, jobstore = %alias, "removed job");
                    self.publish_removed(id.into(), alias);
                    return Ok(());
                }
                Err(e) if e.kind() == ErrorKind::JobNotFound => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::job_not_found(id))
    }

    /// Removes all jobs from one store (or all stores), publishing [`Event::AllJobsRemoved`].
    pub async fn remove_all_jobs(&self, jobstore: Option<&str>) -> Result<()> {
        self.settled().await;
        self.lifecycle().ensure_usable()?;
        if !self.running() {
            lock(&self.inner.pending).remove_all(jobstore);
        } else {
            for (_, store) in self.stores_named(jobstore) {
                store.remove_all_jobs().await?;
            }
        }
        self.inner.events.publish(Event::AllJobsRemoved {
            jobstore: jobstore.map(Arc::from),
        });
        Ok(())
    }

    /// The job with `id` (first store that has it, unless `jobstore` says which).
    pub async fn get_job(&self, id: &str, jobstore: Option<&str>) -> Result<Option<Job>> {
        self.settled().await;
        if !self.running() {
            let defaults = self.job_defaults();
            return Ok(lock(&self.inner.pending)
                .get(id, jobstore)
                .map(|s| s.preview(&defaults)));
        }
        match self.lookup(id, jobstore).await {
            Ok((job, _, _)) => Ok(Some(job)),
            Err(e) if e.kind() == ErrorKind::JobNotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// All jobs: the pending ones before start, else every store's jobs in store order, each
    /// store's sorted by next run time with paused jobs last.
    pub async fn get_jobs(&self, jobstore: Option<&str>) -> Result<Vec<Job>> {
        self.settled().await;
        if !self.running() {
            return Ok(self.pending_preview(jobstore));
        }
        let mut jobs = Vec::new();
        for (_, store) in self.stores_named(jobstore) {
            jobs.extend(store.get_all_jobs().await?);
        }
        Ok(jobs)
    }

    /// The job table APScheduler's `print_jobs` prints, as text.
    pub async fn jobs_table(&self, jobstore: Option<&str>) -> Result<String> {
        self.settled().await;
        use std::fmt::Write as _;
        let tz = self.timezone();
        let mut out = String::new();
        if !self.running() {
            out.push_str("Pending jobs:\n");
            let jobs = self.pending_preview(jobstore);
            if jobs.is_empty() {
                out.push_str("    No pending jobs\n");
            }
            for job in jobs {
                let _ = writeln!(out, "    {}", job.display_pending(tz));
            }
            return Ok(out);
        }
        let mut stores = self.stores_named(jobstore);
        stores.sort_by(|a, b| a.0.cmp(&b.0));
        for (alias, store) in stores {
            let _ = writeln!(out, "Jobstore {alias}:");
            let jobs = store.get_all_jobs().await?;
            if jobs.is_empty() {
                out.push_str("    No scheduled jobs\n");
            }
            for job in jobs {
                let _ = writeln!(out, "    {}", job.display_in(tz));
            }
        }
        Ok(out)
    }

    /// Prints [`jobs_table`](Self::jobs_table) to standard output.
    pub async fn print_jobs(&self, jobstore: Option<&str>) -> Result<()> {
        let table = self.jobs_table(jobstore).await?;
        print!("{table}");
        Ok(())
    }

    fn pending_preview(&self, jobstore: Option<&str>) -> Vec<Job> {
        let defaults = self.job_defaults();
        lock(&self.inner.pending).previews(jobstore, &defaults)
    }

    /// The stores `jobstore` names: that one, or all of them.
    fn stores_named(&self, jobstore: Option<&str>) -> Vec<(Arc<str>, Arc<dyn DynJobStore>)> {
        let mut stores = self.store_snapshot();
        stores.retain(|(alias, _)| jobstore.is_none_or(|a| a == &**alias));
        stores
    }

    /// Finds a stored job (the scheduler must be running).
    async fn lookup(
        &self,
        id: &str,
        jobstore: Option<&str>,
    ) -> Result<(Job, Arc<str>, Arc<dyn DynJobStore>)> {
        for (alias, store) in self.stores_named(jobstore) {
            if let Some(job) = store.lookup_job(id).await? {
                return Ok((job, alias, store));
            }
        }
        Err(Error::job_not_found(id))
    }

    pub(super) fn publish_removed(&self, job_id: Arc<str>, jobstore: Arc<str>) {
        self.inner
            .events
            .publish(Event::JobRemoved(JobEvent { job_id, jobstore }));
    }

    fn wake_if_running(&self) {
        if self.state() == super::SchedulerState::Running {
            self.wakeup();
        }
    }

    /// Wakes the running loop for a job added to run at `run_time`, unless the loop looks at
    /// the stores by then anyway.
    fn wake_for(&self, run_time: Option<chrono::DateTime<chrono::Utc>>) {
        if !self.lifecycle().looks_by(run_time) {
            self.wake_if_running();
        }
    }
}

/// A pending job is listed without a run time, as APScheduler lists it "pending".
fn preview_pending(mut job: Job) -> Job {
    job.set_next_run_time(None);
    job
}

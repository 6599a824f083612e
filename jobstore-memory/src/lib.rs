#![doc = include_str!("../README.md")]

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::BuildHasher as _;
use std::sync::{Arc, Mutex, MutexGuard};

use hashbrown::{DefaultHashBuilder, HashTable};
use scheduler_core::chrono::{DateTime, Utc};
use scheduler_core::store::{FireAnswer, FireAnswers, FireOutcome};
use scheduler_core::{
    Capabilities, Components, Error, FireCommit, Job, JobStore, Result, StoreContext,
};

/// Keeps jobs in memory, ordered by next run time: APScheduler's `MemoryJobStore`.
///
/// Every operation is O(log n) in the number of jobs (due jobs cost O(log n + k) for k due
/// jobs). It holds closure jobs too, and forgets everything at shutdown. Cloning shares the
/// store.
#[derive(Debug, Clone, Default)]
pub struct MemoryJobStore {
    inner: Arc<Mutex<Jobs>>,
}

/// Where a job sits in the run-time order: its next run time in whole microseconds since the
/// epoch (run times have no finer part), paused jobs last. Eight bytes instead of an enum
/// around a `DateTime`: a million jobs keep a million of these in the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct RunKey(i64);

impl RunKey {
    /// After every run time chrono can represent (year 262,143 is below 2^63 µs).
    const PAUSED: RunKey = RunKey(i64::MAX);

    fn of(job: &Job) -> Self {
        job.next_run_micros().map_or(RunKey::PAUSED, RunKey)
    }

    /// The key of instant `t`; a run time sorts at or before `t` exactly when its key does
    /// (run times are whole microseconds and the division floors).
    fn at(t: DateTime<Utc>) -> Self {
        RunKey(t.timestamp_micros())
    }

    fn time(self) -> Option<DateTime<Utc>> {
        (self != RunKey::PAUSED)
            .then(|| DateTime::from_timestamp_micros(self.0))
            .flatten()
    }
}

/// The jobs, laid out for a small footprint at a million jobs: the jobs themselves in a slab,
/// an id index that holds slot numbers with their ids' hashes (the ids live in the jobs), and
/// the run-time order as run key → slot (12 bytes an entry, integer comparisons only). Jobs
/// due at the same instant, ordered by id as in APScheduler, share one entry that points into
/// `ties`.
#[derive(Default)]
struct Jobs {
    slots: Vec<Option<Job>>,
    free: Vec<u32>,
    index: HashTable<Indexed>,
    hasher: DefaultHashBuilder,
    /// Run key → the one job's slot, or [`TIED`] when several share the key.
    order: BTreeMap<RunKey, u32>,
    /// The jobs sharing a run key, by id. Hashed with hashbrown's foldhash: SipHash cost
    /// about 80 instructions per fire of a job due with others (and per such job added).
    ties: hashbrown::HashMap<RunKey, BTreeSet<(Arc<str>, u32)>>,
    /// The last revision given: revisions count up store-wide, so none is ever reused, not
    /// even by a job removed and added again.
    revision: u64,
    /// Jobs set aside by `skip_until_changed`, with the revision they were set aside at.
    skipped: HashMap<Arc<str>, u64>,
}

/// The `order` value of a run key several jobs share (no slot reaches it: see `insert`).
const TIED: u32 = u32::MAX;

/// Jobs taken out of the store by one fire commit from the same tied run key, not yet out of
/// its `ties` (nothing reads the store meanwhile: the commit holds its lock). They are
/// usually the first ones, in order, as the due jobs were handed out: then they leave in one
/// split of the set instead of one rebalancing removal each (about 280 instructions a fire
/// of 100,000 jobs due at one instant).
#[derive(Default)]
struct TiedFront {
    key: Option<RunKey>,
    taken: Vec<(Arc<str>, u32)>,
}

/// An entry of the id index: a slot, and 32 bits of its job's id hash. Growing the index
/// rehashes every entry; with the hash at hand that reads no job (reading each job's id meant
/// two cache misses per job, a quarter of the time spent adding a million jobs), and a probe
/// compares ids only when the hashes agree.
#[derive(Clone, Copy)]
struct Indexed {
    slot: u32,
    hash: IdHash,
}

/// 32 bits of an id's hash, which is all the index needs below 2^32 buckets.
#[derive(Clone, Copy, PartialEq, Eq)]
struct IdHash(u32);

impl IdHash {
    /// The hash as the index takes it: the bits in both halves, so the bucket (low bits)
    /// and the tag hashbrown keeps per bucket (the top 7 bits) both come from them.
    fn wide(self) -> u64 {
        (u64::from(self.0) << 32) | u64::from(self.0)
    }
}

impl Jobs {
    fn hash(&self, id: &str) -> IdHash {
        // The high half: foldhash mixes best there.
        IdHash((self.hasher.hash_one(id) >> 32) as u32)
    }

    /// The index entry of job `id`, whose hash is `hash`.
    fn find(&self, hash: IdHash, id: &str) -> Option<u32> {
        let slots = &self.slots;
        self.index
            .find(hash.wide(), |e| {
                e.hash == hash && same_id(job_at(slots, e.slot).id(), id)
            })
            .map(|e| e.slot)
    }

    fn slot(&self, id: &str) -> Option<u32> {
        self.find(self.hash(id), id)
    }

    fn get(&self, id: &str) -> Option<&Job> {
        self.slot(id).map(|slot| job_at(&self.slots, slot))
    }

    fn len(&self) -> usize {
        self.index.len()
    }

    /// Makes room for `more` jobs at once: a batch grows the slab and the index once.
    fn reserve(&mut self, more: usize) {
        self.slots.reserve(more.saturating_sub(self.free.len()));
        self.index.reserve(more, |e| e.hash.wide());
    }

    /// Inserts `job` at a new revision unless its id is stored already (then answers it
    /// back); answers the revision.
    fn try_insert(&mut self, job: Job) -> std::result::Result<u64, Job> {
        let hash = self.hash(job.id());
        if self.find(hash, job.id()).is_some() {
            return Err(job);
        }
        Ok(self.insert_hashed(hash, job))
    }

    /// Inserts a job whose id is not stored yet, at a new revision; answers the revision.
    fn insert(&mut self, job: Job) -> u64 {
        let hash = self.hash(job.id());
        self.insert_hashed(hash, job)
    }

    fn insert_hashed(&mut self, hash: IdHash, mut job: Job) -> u64 {
        self.revision += 1;
        let revision = self.revision;
        job.set_revision(revision);
        let key = RunKey::of(&job);
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                // `TIED` and above are never slots: 4 billion jobs would not fit in memory.
                let slot = u32::try_from(self.slots.len())
                    .ok()
                    .filter(|&s| s < TIED)
                    .expect("fewer than 2^32 - 1 jobs");
                self.slots.push(None);
                slot
            }
        };
        match self.order.entry(key) {
            Entry::Vacant(vacant) => {
                vacant.insert(slot);
            }
            Entry::Occupied(mut occupied) => {
                let tied = self.ties.entry(key).or_default();
                let other = *occupied.get();
                if other != TIED {
                    tied.insert((job_at(&self.slots, other).id_arc().clone(), other));
                    occupied.insert(TIED);
                }
                tied.insert((job.id_arc().clone(), slot));
            }
        }
        self.slots[slot as usize] = Some(job);
        self.index
            .insert_unique(hash.wide(), Indexed { slot, hash }, |e| e.hash.wide());
        revision
    }

    fn remove(&mut self, id: &str) -> Option<Job> {
        self.remove_if(self.hash(id), id, |_| true)
    }

    /// Removes the job `id` (whose hash is `hash`) if `take` says so of it.
    fn remove_if(
        &mut self,
        hash: IdHash,
        id: &str,
        take: impl FnOnce(&Job) -> bool,
    ) -> Option<Job> {
        let (job, slot) = self.unlink_if(hash, id, take)?;
        self.unorder(RunKey::of(&job), job.id_arc(), slot);
        Some(job)
    }

    /// Takes the job `id` out of the id index and its slot if `take` says so of it, leaving
    /// its place in the run-time order to [`unorder`](Self::unorder) (or a [`TiedFront`]);
    /// answers it with its slot.
    fn unlink_if(
        &mut self,
        hash: IdHash,
        id: &str,
        take: impl FnOnce(&Job) -> bool,
    ) -> Option<(Job, u32)> {
        let slots = &self.slots;
        let entry = self
            .index
            .find_entry(hash.wide(), |e| {
                e.hash == hash && same_id(job_at(slots, e.slot).id(), id)
            })
            .ok()?;
        if !take(job_at(slots, entry.get().slot)) {
            return None;
        }
        let (Indexed { slot, .. }, _) = entry.remove();
        let job = self.slots[slot as usize].take()?;
        self.free.push(slot);
        Some((job, slot))
    }

    /// Whether several jobs share run key `key`.
    fn is_tied(&self, key: RunKey) -> bool {
        self.order.get(&key) == Some(&TIED)
    }

    /// Removes the job `id` in `slot` from the run-time order at `key`.
    fn unorder(&mut self, key: RunKey, id: &Arc<str>, slot: u32) {
        if !self.is_tied(key) {
            self.order.remove(&key);
            return;
        }
        let Some(tied) = self.ties.get_mut(&key) else {
            return;
        };
        // Due jobs are handed out and fired in this order: the one leaving is usually the
        // first, taken without comparing ids down the tree (nor counting a reference to its
        // id to compare).
        if tied
            .first()
            .is_some_and(|(first_id, first)| *first == slot && **first_id == **id)
        {
            tied.pop_first();
        } else {
            tied.remove(&(id.clone(), slot));
        }
        self.untie_if_alone(key);
    }

    /// Takes the jobs of `front` out of the run-time order at once.
    fn unorder_front(&mut self, front: &mut TiedFront) {
        let Some(key) = front.key.take() else {
            return;
        };
        let taken = std::mem::take(&mut front.taken);
        let Some(tied) = self.ties.get_mut(&key) else {
            return;
        };
        let same = |(id, slot): &(Arc<str>, u32), (t_id, t_slot): &(Arc<str>, u32)| {
            slot == t_slot && (Arc::ptr_eq(id, t_id) || id == t_id)
        };
        let first = tied.iter().take(taken.len()).zip(&taken);
        if taken.len() <= tied.len() && first.clone().all(|(a, b)| same(a, b)) {
            // The first n: split off the rest and drop them whole (dropping n entries
            // costs a fraction of n rebalancing removals).
            let rest = match tied.iter().nth(taken.len()).cloned() {
                Some(pivot) => tied.split_off(&pivot),
                None => BTreeSet::new(),
            };
            *tied = rest;
        } else {
            for entry in &taken {
                tied.remove(entry);
            }
        }
        self.untie_if_alone(key);
    }

    /// Back to a plain entry of `order` when at most one job is left at the tied `key`.
    fn untie_if_alone(&mut self, key: RunKey) {
        let Some(tied) = self.ties.get_mut(&key) else {
            return;
        };
        if tied.len() <= 1 {
            let last = tied.pop_first();
            self.ties.remove(&key);
            match last {
                Some((_, other)) => self.order.insert(key, other),
                None => self.order.remove(&key),
            };
        }
    }

    fn clear(&mut self) {
        *self = Jobs {
            hasher: self.hasher.clone(),
            revision: self.revision,
            ..Jobs::default()
        };
    }

    /// Every job, in run-time order (ties by id), paused ones last.
    fn in_order(&self) -> impl Iterator<Item = &Job> {
        self.order
            .iter()
            .flat_map(|(key, &slot)| {
                let (one, tied) = if slot == TIED {
                    (None, self.ties.get(key))
                } else {
                    (Some(slot), None)
                };
                one.into_iter()
                    .chain(tied.into_iter().flatten().map(|&(_, slot)| slot))
            })
            .map(|slot| job_at(&self.slots, slot))
    }

    /// Scheduled jobs in run-time order, without the ones set aside.
    fn runnable(&self) -> impl Iterator<Item = &Job> {
        self.in_order()
            .take_while(|job| !job.is_paused())
            .filter(|job| self.skipped.get(job.id()) != Some(&job.revision()))
    }
}

/// Whether `stored` and `id` are the same id. A fire commit names its job with the id the
/// store handed out (the same string), so the address settles it without reading the bytes.
fn same_id(stored: &str, id: &str) -> bool {
    std::ptr::eq(stored, id) || stored == id
}

/// The job in an occupied slot. The index and the order only ever hold occupied slots.
fn job_at(slots: &[Option<Job>], slot: u32) -> &Job {
    slots[slot as usize]
        .as_ref()
        .expect("the index points at occupied slots only")
}

impl std::fmt::Debug for Jobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jobs").field("len", &self.len()).finish()
    }
}

impl MemoryJobStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many jobs the store holds.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the store holds no jobs.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Jobs> {
        // Every mutation keeps `slots`, `index` and `order` consistent before it can panic (the
        // only panics possible are allocation failures), so a poisoned lock holds sound data.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl JobStore for MemoryJobStore {
    fn capabilities(&self) -> Capabilities {
        Capabilities::in_memory()
    }

    async fn start(&self, _ctx: StoreContext) -> Result<()> {
        self.lock().skipped.clear();
        Ok(())
    }

    async fn shutdown(&self) -> Result<()> {
        self.lock().clear();
        Ok(())
    }

    async fn lookup_job(&self, id: &str) -> Result<Option<Job>> {
        Ok(self.lock().get(id).cloned())
    }

    async fn get_due_jobs(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Job>> {
        let jobs = self.lock();
        let limit = limit.max(1);
        let now = RunKey::at(now);
        let mut due = jobs
            .runnable()
            .take_while(|job| RunKey::of(job) <= now)
            .take(limit)
            .peekable();
        if due.peek().is_none() {
            return Ok(Vec::new());
        }
        // Room for a full batch at once: growing the list by doubling copied each batch of
        // 1,000 jobs about twice more.
        let mut batch = Vec::with_capacity(limit.min(jobs.len()));
        batch.extend(due.cloned());
        Ok(batch)
    }

    async fn get_next_run_time(&self) -> Result<Option<DateTime<Utc>>> {
        let jobs = self.lock();
        if jobs.skipped.is_empty() {
            return Ok(jobs.order.first_key_value().and_then(|(key, _)| key.time()));
        }
        Ok(jobs.runnable().next().and_then(Job::next_run_time))
    }

    async fn get_all_jobs(&self) -> Result<Vec<Job>> {
        let jobs = self.lock();
        Ok(jobs.in_order().cloned().collect())
    }

    async fn count_jobs(&self) -> Result<u64> {
        Ok(self.len() as u64)
    }

    async fn add_job(&self, job: Job) -> Result<u64> {
        self.lock()
            .try_insert(job)
            .map_err(|job| Error::conflicting_id(job.id()))
    }

    async fn add_jobs(&self, jobs: Vec<Job>) -> Result<Vec<Result<u64>>> {
        let mut stored = self.lock();
        stored.reserve(jobs.len());
        Ok(jobs
            .into_iter()
            .map(|job| {
                stored
                    .try_insert(job)
                    .map_err(|job| Error::conflicting_id(job.id()))
            })
            .collect())
    }

    async fn upsert_job(&self, job: Job) -> Result<u64> {
        let mut jobs = self.lock();
        jobs.remove(job.id());
        Ok(jobs.insert(job))
    }

    async fn update_job(&self, job: Job) -> Result<u64> {
        let mut jobs = self.lock();
        match jobs.get(job.id()) {
            None => return Err(Error::job_not_found(job.id())),
            Some(stored) if stored.revision() != job.revision() => {
                return Err(Error::conflict(job.id()));
            }
            Some(_) => {}
        }
        jobs.remove(job.id());
        Ok(jobs.insert(job))
    }

    async fn remove_job(&self, id: &str) -> Result<()> {
        let mut jobs = self.lock();
        jobs.skipped.remove(id);
        match jobs.remove(id) {
            Some(_) => Ok(()),
            None => Err(Error::job_not_found(id)),
        }
    }

    async fn remove_all_jobs(&self) -> Result<()> {
        self.lock().clear();
        Ok(())
    }

    async fn commit_fires(&self, commits: &[FireCommit]) -> Result<FireAnswers> {
        let mut jobs = self.lock();
        let jobs = &mut *jobs;
        let mut answers = FireAnswers::with_capacity(commits.len());
        let mut front = TiedFront::default();
        for commit in commits {
            let id = &*commit.job_id;
            // One hash for the look-up, the removal and the re-insertion.
            let hash = jobs.hash(id);
            let taken = jobs.unlink_if(hash, id, |job| job.revision() == commit.revision);
            let answer = match taken {
                Some((mut job, slot)) => {
                    let key = RunKey::of(&job);
                    if matches!(commit.outcome, FireOutcome::Remove) && jobs.is_tied(key) {
                        // Taken out of the order with the jobs fired with it.
                        if front.key != Some(key) {
                            jobs.unorder_front(&mut front);
                            front.key = Some(key);
                        }
                        front.taken.push((job.id_arc().clone(), slot));
                        answers.insert(commit.job_id.clone(), FireAnswer::Committed);
                        continue;
                    }
                    jobs.unorder_front(&mut front);
                    jobs.unorder(key, job.id_arc(), slot);
                    // Keep the stored job (it is the one read, as the revision shows) and only
                    // move, pause or drop it.
                    match commit.outcome {
                        FireOutcome::Reschedule(next) => {
                            job.set_next_run_time(Some(next));
                            jobs.insert_hashed(hash, job);
                        }
                        FireOutcome::Pause => {
                            job.set_next_run_time(None);
                            jobs.insert_hashed(hash, job);
                        }
                        FireOutcome::Remove => {}
                    }
                    FireAnswer::Committed
                }
                None => FireAnswer::Stale,
            };
            answers.insert(commit.job_id.clone(), answer);
        }
        jobs.unorder_front(&mut front);
        Ok(answers)
    }

    fn skip_until_changed(&self, id: &str, revision: u64) {
        self.lock().skipped.insert(id.into(), revision);
    }

    fn clear_skipped(&self) {
        self.lock().skipped.clear();
    }
}

/// Registers the `"memory"` store type for configuration documents.
pub fn register(components: &Components) {
    components.register_jobstore(
        "memory",
        Arc::new(|options: &serde_json::Value| {
            if options.as_object().is_some_and(|o| !o.is_empty()) {
                return Err(Error::config(format!(
                    "the memory job store takes no options, got {options}"
                )));
            }
            Ok(Arc::new(MemoryJobStore::new()) as Arc<dyn scheduler_core::DynJobStore>)
        }),
    );
}

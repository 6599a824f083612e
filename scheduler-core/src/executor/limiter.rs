//! [`InstanceLimiter`]: `max_instances` per job on one executor.

use std::sync::{Arc, Mutex};

use hashbrown::HashTable;
use hashbrown::hash_table::Entry;

use super::lock;
use crate::error::{Error, Result};
use crate::job::Job;

/// Counts the running instances of each job on one executor and enforces `max_instances`.
///
/// The counts are spread over several locks by job id, so the scheduler claiming instances
/// and the workers releasing them rarely wait for each other.
#[derive(Debug, Clone, Default)]
pub struct InstanceLimiter {
    shards: Arc<Shards>,
}

const SHARDS: usize = 16;

#[derive(Debug, Default)]
struct Shards {
    // SipHash showed in the dispatch profile.
    hasher: foldhash::fast::RandomState,
    counts: [Mutex<HashTable<Running>>; SHARDS],
}

/// The running instances of one job, kept while there is at least one: a job id is hashed
/// once per run, when it is claimed, and its guard finds the entry again by that hash and the
/// entry's own id (a pointer comparison: a map keyed by value compared the ids' bytes twice
/// on every release, about 80 of the 210 instructions a release cost).
#[derive(Debug)]
struct Running {
    hash: u64,
    id: Arc<str>,
    count: u32,
}

impl InstanceLimiter {
    /// A limiter with nothing running.
    pub fn new() -> Self {
        Self::default()
    }

    /// Claims one instance of `job`, or fails with
    /// [`MaxInstancesReached`](crate::ErrorKind::MaxInstancesReached). The claim ends when the
    /// guard drops.
    pub fn acquire(&self, job: &Job) -> Result<InstanceGuard> {
        let id = job.id_arc();
        let hash = self.hash(id);
        let max = job.max_instances();
        let mut counts = self.shard(hash);
        let same = |r: &Running| Arc::ptr_eq(&r.id, id) || r.id == *id;
        let id = match counts.entry(hash, same, |r| r.hash) {
            Entry::Occupied(mut entry) if entry.get().count < max => {
                let running = entry.get_mut();
                running.count += 1;
                running.id.clone()
            }
            Entry::Vacant(entry) if max > 0 => {
                let running = Running {
                    hash,
                    id: id.clone(),
                    count: 1,
                };
                entry.insert(running).get().id.clone()
            }
            _ => return Err(Error::max_instances_reached(job.id(), max)),
        };
        drop(counts);
        Ok(InstanceGuard {
            limiter: self.clone(),
            hash,
            id,
            running: None,
        })
    }

    /// How many instances of `job_id` run now.
    pub fn running(&self, job_id: &str) -> u32 {
        let hash = self.hash(job_id);
        self.shard(hash)
            .find(hash, |r| &*r.id == job_id)
            .map_or(0, |r| r.count)
    }

    fn hash(&self, id: &str) -> u64 {
        use std::hash::BuildHasher as _;
        self.shards.hasher.hash_one(id)
    }

    /// How many runs of all jobs run now.
    pub fn total(&self) -> u32 {
        self.shards
            .counts
            .iter()
            .map(|shard| lock(shard).iter().map(|r| r.count).sum::<u32>())
            .sum()
    }

    fn shard(&self, hash: u64) -> std::sync::MutexGuard<'_, HashTable<Running>> {
        // Bits the tables leave alone (they use the low bits and the top seven), so the jobs
        // of one shard still spread over its table.
        let index = (hash >> 32) as usize % SHARDS;
        lock(&self.shards.counts[index])
    }
}

/// One claimed instance of a job; releases it when dropped.
#[derive(Debug)]
pub struct InstanceGuard {
    limiter: InstanceLimiter,
    hash: u64,
    /// The id its entry holds (the same allocation, so it is found by pointer).
    id: Arc<str>,
    /// The running-instances gauge the claim counts in (set by `admit`).
    pub(super) running: Option<metrics::Gauge>,
}

impl Drop for InstanceGuard {
    fn drop(&mut self) {
        if let Some(running) = &self.running {
            running.decrement(1.0);
        }
        let mut counts = self.limiter.shard(self.hash);
        let entry = counts.find_entry(self.hash, |r| Arc::ptr_eq(&r.id, &self.id));
        if let Ok(mut entry) = entry {
            let running = entry.get_mut();
            running.count -= 1;
            if running.count == 0 {
                entry.remove();
            }
        }
    }
}

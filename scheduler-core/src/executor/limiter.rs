//! [`InstanceLimiter`]: `max_instances` per job on one executor.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

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
    counts: [Mutex<Counts>; SHARDS],
}

/// Running instances per job, keyed by the id with its hash: a job id is hashed once per run,
/// when it is claimed, and the guard releases it with the same hash.
type Counts = HashMap<HashedId, u32, std::hash::BuildHasherDefault<Prehashed>>;

#[derive(Debug, Clone, PartialEq, Eq)]
struct HashedId {
    hash: u64,
    id: Arc<str>,
}

impl std::hash::Hash for HashedId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// The hasher of [`Counts`]: answers the hash a [`HashedId`] carries.
#[derive(Default)]
struct Prehashed(u64);

impl std::hash::Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `HashedId` is hashed here, through `write_u64`.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, hash: u64) {
        self.0 = hash;
    }
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
        let key = self.key(job.id_arc().clone());
        let mut running = self.shard(&key);
        let count = running.entry(key.clone()).or_insert(0);
        if *count >= job.max_instances() {
            return Err(Error::max_instances_reached(job.id(), job.max_instances()));
        }
        *count += 1;
        drop(running);
        Ok(InstanceGuard {
            limiter: self.clone(),
            key,
            running: None,
        })
    }

    /// How many instances of `job_id` run now.
    pub fn running(&self, job_id: &str) -> u32 {
        let key = self.key(job_id.into());
        self.shard(&key).get(&key).copied().unwrap_or(0)
    }

    fn key(&self, id: Arc<str>) -> HashedId {
        use std::hash::BuildHasher as _;
        HashedId {
            hash: self.shards.hasher.hash_one(&*id),
            id,
        }
    }

    /// How many runs of all jobs run now.
    pub fn total(&self) -> u32 {
        self.shards
            .counts
            .iter()
            .map(|shard| lock(shard).values().sum::<u32>())
            .sum()
    }

    fn shard(&self, key: &HashedId) -> std::sync::MutexGuard<'_, Counts> {
        // Bits the maps' tables leave alone (they use the low bits and the top seven), so
        // the jobs of one shard still spread over its table.
        let index = (key.hash >> 32) as usize % SHARDS;
        lock(&self.shards.counts[index])
    }
}

/// One claimed instance of a job; releases it when dropped.
#[derive(Debug)]
pub struct InstanceGuard {
    limiter: InstanceLimiter,
    key: HashedId,
    /// The running-instances gauge the claim counts in (set by `admit`).
    pub(super) running: Option<metrics::Gauge>,
}

impl Drop for InstanceGuard {
    fn drop(&mut self) {
        if let Some(running) = &self.running {
            running.decrement(1.0);
        }
        let mut running = self.limiter.shard(&self.key);
        if let Some(count) = running.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                running.remove(&self.key);
            }
        }
    }
}

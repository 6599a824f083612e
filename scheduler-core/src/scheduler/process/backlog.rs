//! How many due jobs a pass asks each store for.
//!
//! A store that was not behind is asked for a few ([`FIRST_BATCH`]), so the first runs of a
//! burst (or of a restart) wait for a few jobs' read and commit, not a whole batch's. When
//! that comes back full, more are due: the next pass asks for a whole `due_batch_size`, in
//! one commit (fewer durable commits bring the last runs of a burst earlier), unless the
//! store is slow. Every run of a batch waits for the whole batch's commit, so on a store
//! whose pass took longer than [`SLOW_PASS`] the next batch holds what that store fetched
//! and committed in [`PASS_TIME`]: 1,000 due jobs on a server that commits 500 fires a
//! second would otherwise all start two seconds late, past the default misfire grace time.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The most due jobs the loop asks a store for when that store was not behind. Five: one
/// round of the MongoDB store's concurrent fire commits (its default pool); 32 put 32
/// single-document writes, 14 ms of nx-27017's single thread, before the first run of a
/// restart.
const FIRST_BATCH: usize = 5;

/// A pass shorter than this never shrinks the next batch: it delays no run noticeably, and
/// the time of a short pass says more about the machine's load than about the store.
const SLOW_PASS: Duration = Duration::from_millis(10);

/// What a slow store's pass is sized to take.
const PASS_TIME: Duration = Duration::from_millis(100);

/// The stores whose last pass came back full, each with the batch to ask it for next.
#[derive(Debug, Default)]
pub(super) struct Backlog(HashMap<Arc<str>, usize>);

impl Backlog {
    /// How many due jobs to ask `store` for: at most `batch` (`due_batch_size`).
    pub(super) fn asked(&self, store: &str, batch: usize) -> usize {
        self.0
            .get(store)
            .copied()
            .unwrap_or(FIRST_BATCH)
            .min(batch)
            .max(1)
    }

    /// Records a pass over `store` that asked for `asked` due jobs and got `got`, fetched and
    /// committed in `took`.
    pub(super) fn record(
        &mut self,
        store: &Arc<str>,
        asked: usize,
        got: usize,
        took: Duration,
        batch: usize,
    ) {
        if got < asked {
            self.0.remove(store);
            return;
        }
        let next = if took <= SLOW_PASS {
            batch
        } else {
            // Saturating float-to-int: a pass that took no measurable time asks for `batch`.
            let paced = (got as f64 * PASS_TIME.as_secs_f64() / took.as_secs_f64()) as usize;
            paced.clamp(FIRST_BATCH.min(batch), batch.max(1))
        };
        self.0.insert(store.clone(), next);
    }

    /// Forgets `store` (its pass failed): it is asked for a first batch again.
    pub(super) fn forget(&mut self, store: &str) {
        self.0.remove(store);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> Arc<str> {
        Arc::from("default")
    }

    #[test]
    fn a_store_not_behind_is_asked_for_a_first_batch() {
        let backlog = Backlog::default();
        assert_eq!(backlog.asked("default", 1_000), FIRST_BATCH);
        assert_eq!(backlog.asked("default", 2), 2);
    }

    #[test]
    fn a_quick_full_pass_is_followed_by_a_whole_batch() {
        let mut backlog = Backlog::default();
        backlog.record(&store(), 5, 5, Duration::from_millis(2), 1_000);
        assert_eq!(backlog.asked("default", 1_000), 1_000);
    }

    #[test]
    fn a_slow_full_pass_is_followed_by_what_the_store_does_in_the_pass_time() {
        let mut backlog = Backlog::default();
        // 5 fires in 50 ms: 10 in 100 ms.
        backlog.record(&store(), 5, 5, Duration::from_millis(50), 1_000);
        assert_eq!(backlog.asked("default", 1_000), 10);
        // 10 in 20 ms: 50 in 100 ms.
        backlog.record(&store(), 10, 10, Duration::from_millis(20), 1_000);
        assert_eq!(backlog.asked("default", 1_000), 50);
        // Never under the first batch, never over `due_batch_size`.
        backlog.record(&store(), 50, 50, Duration::from_secs(60), 1_000);
        assert_eq!(backlog.asked("default", 1_000), FIRST_BATCH);
        backlog.record(&store(), 5, 5, Duration::from_millis(11), 8);
        assert_eq!(backlog.asked("default", 8), 8);
    }

    #[test]
    fn a_pass_that_was_not_full_or_failed_starts_over() {
        let mut backlog = Backlog::default();
        backlog.record(&store(), 5, 5, Duration::from_millis(1), 1_000);
        backlog.record(&store(), 1_000, 3, Duration::from_millis(1), 1_000);
        assert_eq!(backlog.asked("default", 1_000), FIRST_BATCH);
        backlog.record(&store(), 5, 5, Duration::from_millis(1), 1_000);
        backlog.forget("default");
        assert_eq!(backlog.asked("default", 1_000), FIRST_BATCH);
    }
}

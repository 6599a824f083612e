//! A job's options, shared between jobs that have the same ones.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

/// Everything about a job but its id, target, trigger, run time and revision. A scheduler's
/// jobs mostly share these (defaults filled the same way, one name per function, a few
/// executors), so jobs built one after another with equal options point at one copy: a
/// pointer per job instead of some eighty bytes, at a million jobs in memory.
#[derive(Clone)]
pub(super) struct Options {
    pub(super) name: Arc<str>,
    pub(super) executor: Arc<str>,
    pub(super) misfire_grace_time: Option<Duration>,
    pub(super) coalesce: bool,
    pub(super) max_instances: u32,
    pub(super) timeout: Option<Duration>,
    /// Whether a run lost with a dead scheduler node is run again by another.
    pub(super) recover_lost_runs: bool,
    /// Whether `max_instances` is counted across the nodes sharing the job's store.
    pub(super) max_instances_across_nodes: bool,
    /// Fields of the job's record that this build does not know (written by a newer one),
    /// carried so that rewriting the record keeps them.
    pub(super) unknown_fields: Option<Arc<serde_json::Map<String, serde_json::Value>>>,
}

impl Options {
    /// Whether `other` can stand for these options: equal values (unknown fields only when
    /// they are the same map, which is cheap to tell and keeps them exact).
    fn same(&self, other: &Options) -> bool {
        // Jobs of one function on one executor mostly share the names' `Arc`s.
        let same = |a: &Arc<str>, b: &Arc<str>| Arc::ptr_eq(a, b) || a == b;
        same(&self.name, &other.name)
            && same(&self.executor, &other.executor)
            && self.misfire_grace_time == other.misfire_grace_time
            && self.coalesce == other.coalesce
            && self.max_instances == other.max_instances
            && self.timeout == other.timeout
            && self.recover_lost_runs == other.recover_lost_runs
            && self.max_instances_across_nodes == other.max_instances_across_nodes
            && match (&self.unknown_fields, &other.unknown_fields) {
                (None, None) => true,
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                _ => false,
            }
    }

    /// These options, shared with the last job built on this thread when they are the same.
    pub(super) fn shared(self) -> Arc<Options> {
        thread_local! {
            static LAST: RefCell<Option<Arc<Options>>> = const { RefCell::new(None) };
        }
        LAST.with_borrow_mut(|last| match last {
            Some(last) if last.same(&self) => last.clone(),
            _ => last.insert(Arc::new(self)).clone(),
        })
    }
}

//! What the scheduler gives a store when it starts it: the [`StoreContext`].

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::error::Error;
use crate::event::{Event, EventBus, FaultAction, JobFaultEvent};
use crate::job::JobCodec;

/// What a store is given when the scheduler starts it.
#[derive(Debug, Clone)]
pub struct StoreContext {
    alias: Arc<str>,
    codec: JobCodec,
    events: EventBus,
    waker: Waker,
    node: Option<NodeIdentity>,
}

/// Who the scheduler is on a shared store: its node id and how long its claims last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeIdentity {
    /// The scheduler's node id.
    pub id: Arc<str>,
    /// How long a claim on due rows lasts (see [`RecordStore::claim_due`](super::RecordStore::claim_due)).
    pub claim_lease: std::time::Duration,
}

/// What [`StoreContext::wake`] calls (the scheduler's wake-up, or nothing), and what
/// [`StoreContext::wake_for`] asks first.
#[derive(Clone, Default)]
struct Waker {
    wake: Option<Arc<dyn Fn() + Send + Sync>>,
    looks_by: Option<Arc<dyn Fn(DateTime<Utc>) -> bool + Send + Sync>>,
}

impl fmt::Debug for Waker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.wake.is_some() {
            "Waker"
        } else {
            "NoWaker"
        })
    }
}

impl StoreContext {
    /// A context for a store known as `alias`, decoding jobs with `codec` and reporting on
    /// `events`. Its [`wake`](Self::wake) does nothing and it has no node identity until
    /// given them ([`with_waker`](Self::with_waker), [`with_node`](Self::with_node)).
    pub fn new(alias: impl Into<Arc<str>>, codec: JobCodec, events: EventBus) -> Self {
        StoreContext {
            alias: alias.into(),
            codec,
            events,
            waker: Waker::default(),
            node: None,
        }
    }

    /// This context, whose [`wake`](Self::wake) calls `wake`.
    pub fn with_waker(mut self, wake: impl Fn() + Send + Sync + 'static) -> Self {
        self.waker.wake = Some(Arc::new(wake));
        self
    }

    /// This context, whose [`wake_for`](Self::wake_for) asks `looks_by(run_time)` first:
    /// whether the scheduler looks at its stores by `run_time` without being woken.
    pub fn with_planned_look(
        mut self,
        looks_by: impl Fn(DateTime<Utc>) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.waker.looks_by = Some(Arc::new(looks_by));
        self
    }

    /// This context, naming the scheduler node that uses the store: a store shared by several
    /// schedulers claims due rows for it ([`RecordStore::claim_due`](super::RecordStore::claim_due)).
    pub fn with_node(mut self, node: NodeIdentity) -> Self {
        self.node = Some(node);
        self
    }

    /// The scheduler node using the store, when it is one of several sharing it.
    pub fn node(&self) -> Option<&NodeIdentity> {
        self.node.as_ref()
    }

    /// The store changed in a way that may make a job due earlier (another node added or
    /// changed one): the scheduler looks at its stores again now.
    ///
    /// Cheap, callable from any thread or task, and coalescing (many calls before the
    /// scheduler looks make one look); a no-op when the scheduler is not running.
    pub fn wake(&self) {
        if let Some(wake) = &self.waker.wake {
            wake();
        }
    }

    /// Another node wrote a job whose next run time is `run_time`: [`wake`](Self::wake), unless
    /// the scheduler looks at its stores by then anyway (it planned to, after reading them).
    /// A store whose notifications carry the run time calls this instead of `wake`, so
    /// that a job added for later (by another node, or by this one, whose own notification
    /// comes back to it) does not cost every node a look at the store.
    pub fn wake_for(&self, run_time: DateTime<Utc>) {
        if !self
            .waker
            .looks_by
            .as_ref()
            .is_some_and(|looks_by| looks_by(run_time))
        {
            self.wake();
        }
    }

    /// The alias the scheduler knows the store by.
    pub fn alias(&self) -> &str {
        &self.alias
    }

    /// The alias, shared.
    pub fn alias_arc(&self) -> &Arc<str> {
        &self.alias
    }

    /// Encodes and decodes jobs for persistent stores.
    pub fn codec(&self) -> &JobCodec {
        &self.codec
    }

    /// The scheduler's event bus.
    pub fn events(&self) -> &EventBus {
        &self.events
    }

    /// Reports that job `job_id` of this store was set aside instead of run or dropped:
    /// publishes [`Event::JobFault`] naming the store and the job, and logs a `tracing` error.
    ///
    /// Stores call it for a record they cannot read ([`FaultAction::Skipped`]) or a job they
    /// paused because they cannot hold its next run time ([`FaultAction::Paused`]).
    pub fn report_fault(&self, job_id: &str, action: FaultAction, error: Error) {
        crate::logging::log_error!(
            jobstore = %self.alias,
            job = job_id,
            error = %error,
            "job {action}"
        );
        self.events.publish(Event::JobFault(JobFaultEvent {
            job_id: job_id.into(),
            jobstore: self.alias.clone(),
            action,
            error: Arc::new(error),
        }));
    }
}

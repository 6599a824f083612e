#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod clock;
pub mod error;
pub mod event;
pub mod executor;
mod ids;
pub mod job;
mod logging;
mod scheduler;
pub mod store;
mod telemetry;
pub mod trigger;

#[cfg(feature = "testkit")]
pub mod testkit;

#[doc = include_str!("../docs/implementing.md")]
pub mod guide {}

// The workspace README's examples run as doctests here, where every crate they use is a
// dev-dependency.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct WorkspaceReadme;

pub use clock::{BoxFuture, Clock, SystemClock};
pub use error::{BoxError, Error, ErrorKind, Result};
pub use event::{
    Delivery, Event, EventBus, EventMask, EventStream, FailureKind, FaultAction, JobEvent,
    JobExecutionEvent, JobFailure, JobFaultEvent, JobRecoveredEvent, JobSubmissionEvent,
    ListenerId, MissedRuns, NodeEvent, NodeLostEvent, Overflow, SchedulerErrorEvent,
};
pub use executor::{
    DynExecutor, Executor, ExecutorCapabilities, ExecutorContext, InstanceGuard, InstanceLimiter,
    JobRun, RefusedRun, RunContext, RunTimes, StartedRun,
};
pub use job::{
    Handler, Job, JobChanges, JobCodec, JobDefaults, JobFunction, JobOutcome, JobOutput, JobRecord,
    JobRegistry, JobSpec, JobTarget, RegisteredFunction, RunNowRequest,
};
pub use scheduler::config;
pub use scheduler::{
    BackgroundScheduler, BlockingScheduler, ComponentConfig, Components, DEFAULT_CATCH_UP_LIMIT,
    DEFAULT_DUE_BATCH_SIZE, ExecutorFactory, Factory, Health, JobStoreFactory, RecordStoreFactory,
    Scheduler, SchedulerBuilder, SchedulerConfig, SchedulerState, SyncScheduler,
};
pub use store::{
    Capabilities, Claim, DynJobStore, DynRecordStore, FireAnswer, FireAnswers, FireCommit,
    FireOutcome, InflightRun, JobStore, NodeIdentity, NodeRecord, RecordJobStore, RecordStore,
    StoreContext,
};
pub use trigger::{
    CatchUp, SearchExhausted, Trigger, TriggerFactory, TriggerRegistry, TriggerState,
};

/// Re-exported so downstream crates name the same versions.
pub use chrono;
pub use chrono_tz;

#[cfg(test)]
mod tests {
    fn assert_send_sync<T: Send + Sync + 'static>() {}

    #[test]
    fn public_handles_are_send_and_sync() {
        assert_send_sync::<crate::Scheduler>();
        assert_send_sync::<crate::Error>();
        assert_send_sync::<crate::Job>();
        assert_send_sync::<crate::JobRecord>();
        assert_send_sync::<crate::Event>();
        assert_send_sync::<crate::BackgroundScheduler>();
        assert_send_sync::<crate::BlockingScheduler>();
        assert_send_sync::<crate::SyncScheduler>();
        assert_send_sync::<crate::EventStream>();
        assert_send_sync::<crate::JobRegistry>();
    }
}

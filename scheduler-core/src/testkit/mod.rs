//! Test support (feature `testkit`): a manual clock and the job-store conformance suite.
//!
//! Every job store runs the same suite, APScheduler's job-store test behaviours and more, as
//! one named test per case:
//!
//! ```
//! // In the store crate's tests/it/main.rs. `setup` returns a fresh, isolated store (a
//! // persistent one would use its own table or key prefix per call).
//! use jobstore_memory::MemoryJobStore;
//!
//! async fn setup() -> anyhow::Result<MemoryJobStore> {
//!     Ok(MemoryJobStore::new())
//! }
//!
//! scheduler_core::jobstore_conformance!(setup, in_memory); // or `persistent`
//! # fn main() {}
//! ```
//!
//! The cases are plain async functions in [`cases`]; the macro only names them. A case gets a
//! started store in a [`Fixture`] and returns an error on the first broken expectation.

pub mod cases;
mod clock;
mod event_log;

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

pub use clock::ManualClock;
pub use event_log::EventLog;

use crate::clock::BoxFuture;
use crate::error::Result;
use crate::job::{Job, JobCodec, JobDefaults, JobFunction, JobRegistry, JobSpec, JobTarget};
use crate::store::{DynJobStore, JobStore, StoreContext};
use crate::trigger::{Trigger, TriggerRegistry, TriggerState};

/// A started store under test, with the codec its context was given and helpers to make jobs.
#[derive(Debug)]
pub struct Fixture {
    store: Arc<dyn DynJobStore>,
    codec: JobCodec,
    echo: JobFunction<serde_json::Value>,
    alias: String,
}

/// The instant all case times are relative to: a time with microseconds, to check precision.
pub fn base_time() -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_225_600, 123_456_000).unwrap_or_default()
}

/// `base_time()` plus `secs` seconds.
pub fn at(secs: i64) -> DateTime<Utc> {
    base_time() + TimeDelta::seconds(secs)
}

impl Fixture {
    /// Starts `store` with the suite's codec.
    pub async fn start(store: Arc<dyn DynJobStore>) -> Result<Self> {
        let (codec, echo) = suite_codec(true);
        let alias = "conformance".to_owned();
        store
            .start(StoreContext::new(alias.as_str(), codec.clone()))
            .await?;
        Ok(Fixture {
            store,
            codec,
            echo,
            alias,
        })
    }

    /// The store under test.
    pub fn store(&self) -> &dyn DynJobStore {
        &*self.store
    }

    /// The store under test, shared (to move into spawned tasks).
    pub fn shared_store(&self) -> Arc<dyn DynJobStore> {
        self.store.clone()
    }

    /// The codec the store was started with.
    pub fn codec(&self) -> &JobCodec {
        &self.codec
    }

    /// A persistable job `id` that first runs at `first` (`None`: paused) and then every
    /// `step` seconds.
    pub fn job(&self, id: &str, first: Option<DateTime<Utc>>) -> Job {
        self.job_with_args(id, first, serde_json::json!({ "id": id }))
    }

    /// Like [`job`](Self::job), with the given arguments.
    pub fn job_with_args(
        &self,
        id: &str,
        first: Option<DateTime<Utc>>,
        args: serde_json::Value,
    ) -> Job {
        let trigger = StepTrigger {
            start: first.unwrap_or_else(base_time),
            step_secs: 60,
        };
        let spec = JobSpec::new(self.echo.call(args), trigger).id(id);
        let spec = match first {
            Some(t) => spec.next_run_time(t),
            None => spec.paused(),
        };
        spec.into_job(&JobDefaults::default(), base_time())
            .expect("the suite's job specs are valid")
    }

    /// A job `id` running the "ghost" function: known to the codec the store starts with, and
    /// unknown after [`restart_without_ghost`](Self::restart_without_ghost).
    pub fn ghost_job(&self, id: &str, first: DateTime<Utc>) -> Result<Job> {
        let target = self
            .codec
            .functions()
            .target(GHOST, serde_json::json!(null))?;
        JobSpec::new(
            target,
            StepTrigger {
                start: first,
                step_secs: 60,
            },
        )
        .id(id)
        .next_run_time(first)
        .into_job(&JobDefaults::default(), base_time())
    }

    /// A job running a closure, which only in-memory stores can hold.
    pub fn closure_job(&self, id: &str, first: DateTime<Utc>) -> Job {
        JobSpec::new(
            JobTarget::closure("closure", || ()),
            StepTrigger {
                start: first,
                step_secs: 60,
            },
        )
        .id(id)
        .next_run_time(first)
        .into_job(&JobDefaults::default(), base_time())
        .expect("the suite's job specs are valid")
    }

    /// Shuts the store down and starts it again with the same codec.
    pub async fn restart(&self) -> Result<()> {
        self.store.shutdown().await?;
        self.store
            .start(StoreContext::new(self.alias.as_str(), self.codec.clone()))
            .await
    }

    /// Shuts the store down and starts it again with a codec that does not know the ghost
    /// function, as a process deployed without it would.
    pub async fn restart_without_ghost(&self) -> Result<()> {
        self.store.shutdown().await?;
        let (codec, _) = suite_codec(false);
        self.store
            .start(StoreContext::new(self.alias.as_str(), codec))
            .await
    }

    /// The persisted form of `job`, for comparing every field.
    pub fn record(&self, job: &Job) -> anyhow::Result<crate::JobRecord> {
        Ok(self.codec.encode(job)?)
    }
}

const ECHO: &str = "testkit.echo";
const GHOST: &str = "testkit.ghost";

fn suite_codec(with_ghost: bool) -> (JobCodec, JobFunction<serde_json::Value>) {
    let functions = JobRegistry::new();
    let echo = functions.register_sync(ECHO, |args: serde_json::Value| {
        Ok::<_, crate::BoxError>(args)
    });
    if with_ghost {
        functions.register_sync(GHOST, |_: serde_json::Value| ());
    }
    let triggers = TriggerRegistry::new();
    triggers.register_serde::<StepTrigger>(StepTrigger::KIND);
    (JobCodec::new(functions, triggers), echo)
}

/// A minimal trigger for the suite: `start`, then every `step_secs` seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepTrigger {
    /// The first fire time.
    pub start: DateTime<Utc>,
    /// Seconds between fire times.
    pub step_secs: i64,
}

impl StepTrigger {
    /// The kind name it is saved under.
    pub const KIND: &'static str = "testkit.step";
}

impl fmt::Display for StepTrigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "step[{}s]", self.step_secs)
    }
}

impl Trigger for StepTrigger {
    fn next_fire_time(
        &self,
        previous: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> std::result::Result<Option<DateTime<Utc>>, crate::SearchExhausted> {
        let step = TimeDelta::seconds(self.step_secs.max(1));
        Ok(match previous {
            Some(p) => p.checked_add_signed(step),
            None if now <= self.start => Some(self.start),
            None => (|| {
                let (elapsed, step_us) = (
                    (now - self.start).num_microseconds()?,
                    step.num_microseconds()?,
                );
                let steps = (elapsed + step_us - 1) / step_us;
                self.start
                    .checked_add_signed(step * i32::try_from(steps).ok()?)
            })(),
        })
    }

    fn to_state(&self) -> Result<TriggerState> {
        TriggerState::new(Self::KIND, self)
    }
}

/// A conformance case: gets a started store, fails with the first broken expectation.
pub type Case = for<'a> fn(&'a Fixture) -> BoxFuture<'a, anyhow::Result<()>>;

/// Runs one case on a fresh store from `setup`, on a runtime of its own.
///
/// Panics (failing the test) with the case's error. Used by [`jobstore_conformance!`](crate::jobstore_conformance).
pub fn run_case<S, Fut>(name: &str, setup: fn() -> Fut, case: Case)
where
    S: JobStore,
    Fut: Future<Output = anyhow::Result<S>>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a test runtime");
    let outcome: anyhow::Result<()> = runtime.block_on(async {
        let store: Arc<dyn DynJobStore> = Arc::new(setup().await?);
        let fixture = Fixture::start(store.clone()).await?;
        let result = case(&fixture).await;
        let cleanup = store.remove_all_jobs().await;
        let shutdown = store.shutdown().await;
        result?;
        cleanup?;
        shutdown?;
        Ok(())
    });
    if let Err(e) = outcome {
        panic!("conformance case {name} failed: {e:#}");
    }
}

/// Expands to one `#[test]` per conformance case for the store `setup` builds.
///
/// `setup` is an `async fn() -> anyhow::Result<impl JobStore>` returning a fresh, isolated
/// store (its own key prefix, table or database). The second argument says what the store
/// declares: `in_memory` (holds closures, forgets at shutdown) or `persistent` (keeps jobs
/// across restarts, refuses closures); the cases for that kind run, and the store's
/// `capabilities()` must agree.
#[macro_export]
macro_rules! jobstore_conformance {
    ($setup:path, in_memory) => {
        $crate::jobstore_conformance!(@cases $setup,
            declares_in_memory_capabilities,
            holds_closure_jobs,
            forgets_jobs_at_shutdown,
        );
        $crate::jobstore_conformance!(@common $setup);
    };
    ($setup:path, persistent) => {
        $crate::jobstore_conformance!(@cases $setup,
            declares_persistent_capabilities,
            refuses_closure_jobs,
            keeps_jobs_across_restart,
            skips_a_record_whose_job_function_is_unknown,
        );
        $crate::jobstore_conformance!(@common $setup);
    };
    (@common $setup:path) => {
        $crate::jobstore_conformance!(@cases $setup,
            add_and_lookup_keep_every_field,
            lookup_of_a_missing_job_is_none,
            all_jobs_are_ordered_with_paused_last,
            due_jobs_include_now_and_exclude_later,
            due_jobs_are_in_run_time_order,
            next_run_time_is_the_earliest_unpaused,
            next_run_time_of_an_empty_store_is_none,
            next_run_time_ignores_paused_jobs,
            conflicting_id_is_refused_and_keeps_the_original,
            update_replaces_fields_and_reorders,
            update_of_a_missing_job_is_job_not_found,
            update_can_pause_and_unpause,
            remove_deletes_only_that_job,
            remove_of_a_missing_job_is_job_not_found,
            remove_all_empties_the_store,
            commit_fires_moves_and_removes_jobs,
            commit_fires_skips_jobs_that_changed,
            concurrent_adds_and_removes_stay_consistent,
            many_jobs_keep_their_order,
        );
    };
    (@cases $setup:path, $($case:ident),+ $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::testkit::run_case(
                    stringify!($case),
                    $setup,
                    |fixture| ::std::boxed::Box::pin($crate::testkit::cases::$case(fixture)),
                );
            }
        )+
    };
}

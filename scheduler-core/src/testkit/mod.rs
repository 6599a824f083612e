//! Test support (feature `testkit`): a manual clock, the job-store conformance suite, and the
//! model record backend.
//!
//! Every job store runs the same suite, APScheduler's job-store test behaviours and more, as
//! one named test per case:
//!
//! ```
//! // In the store crate's tests/it/main.rs. `setup` opens a handle on the namespace it is
//! // given: called twice with the same namespace, it returns two handles on the same data
//! // (for a persistent store: the same table or key prefix, through its own connection).
//! use jobstore_memory::MemoryJobStore;
//! use scheduler_core::testkit::Namespace;
//!
//! async fn setup(ns: Namespace) -> anyhow::Result<MemoryJobStore> {
//!     // An in-process store shares its data between handles by cloning.
//!     Ok(ns.shared(MemoryJobStore::new))
//! }
//!
//! scheduler_core::jobstore_conformance!(setup, in_memory); // or `persistent`
//! # fn main() {}
//! ```
//!
//! A persistent store uses [`Namespace::name`] as its table name or key prefix, and
//! [`Namespace::on_cleanup`] to drop it afterwards:
//!
//! ```
//! use scheduler_core::RecordJobStore;
//! use scheduler_core::testkit::{Namespace, RecordMap};
//!
//! async fn setup(ns: Namespace) -> anyhow::Result<RecordJobStore<RecordMap>> {
//!     // A server-backed backend connects here, with `ns.name()` as its table name or key
//!     // prefix (a fresh connection per call: the second handle is a second client), and
//!     // drops what it created once the case is over.
//!     let table = ns.name().to_owned();
//!     ns.on_cleanup(move || async move {
//!         let _drop_table = format!("DROP TABLE IF EXISTS {table}");
//!         Ok(())
//!     });
//!     Ok(RecordJobStore::new(ns.shared(RecordMap::new)))
//! }
//!
//! scheduler_core::jobstore_conformance!(setup, persistent);
//! # fn main() {}
//! ```
//!
//! The persistent cases also read and write raw rows ([`RawRecords`], which every
//! [`RecordJobStore`](crate::RecordJobStore) has) to plant records a process cannot read and to check that the store
//! leaves them untouched.
//!
//! The cases are plain async functions in [`cases`]; the macro only names them. A case gets a
//! started store in a [`Fixture`] and returns an error on the first broken expectation.
//! [`RecordMap`] is the model [`RecordStore`](crate::RecordStore): the simplest backend that
//! passes the suite, to read beside the contract.

mod admin;
pub mod cases;
mod clock;
mod event_log;
mod raw;
mod record_map;

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

pub use admin::{admin_scenario, admin_scenario_at_url};
pub use clock::ManualClock;
pub use event_log::EventLog;
pub use record_map::RecordMap;

use crate::clock::BoxFuture;
use crate::error::Result;
use crate::event::{Event, EventBus, EventMask, EventStream, JobFaultEvent};
use crate::job::{Job, JobCodec, JobDefaults, JobFunction, JobRegistry, JobSpec, JobTarget};
use crate::store::{DynJobStore, JobStore, StoreContext};
use crate::trigger::{Trigger, TriggerRegistry, TriggerState};

/// Where one conformance case keeps its data: a unique name, and room for an in-process store
/// to share between the handles the case opens. Cloning shares it.
#[derive(Clone)]
pub struct Namespace {
    inner: Arc<NamespaceInner>,
}

type Cleanup = Box<dyn FnOnce() -> BoxFuture<'static, anyhow::Result<()>> + Send>;

struct NamespaceInner {
    name: String,
    shared: Mutex<Option<Box<dyn Any + Send + Sync>>>,
    cleanups: Mutex<Vec<Cleanup>>,
}

impl Namespace {
    /// A fresh namespace for the case `case`.
    pub fn new(case: &str) -> Self {
        let (tag, _) = uuid::Uuid::new_v4().as_u64_pair();
        let mut name = format!("t{:08x}_", tag >> 32);
        name.extend(
            case.chars()
                .map(|c| c.to_ascii_lowercase())
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .take(Self::MAX_LEN - name.len()),
        );
        Namespace {
            inner: Arc::new(NamespaceInner {
                name,
                shared: Mutex::new(None),
                cleanups: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The longest name: short enough for a table name on every SQL server.
    pub const MAX_LEN: usize = 48;

    /// A name unique to this run of this case: lowercase ASCII letters, digits and
    /// underscores, starting with a letter, at most [`MAX_LEN`](Self::MAX_LEN) characters. Use it
    /// as is for a table name, a key prefix or a collection name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The value `make` builds, the first time; a clone of it every later time. An in-process
    /// store that shares its data between clones opens its second handle this way.
    pub fn shared<T: Clone + Send + Sync + 'static>(&self, make: impl FnOnce() -> T) -> T {
        let mut shared = self.inner.shared.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(value) = shared.as_ref().and_then(|v| v.downcast_ref::<T>()) {
            return value.clone();
        }
        let value = make();
        *shared = Some(Box::new(value.clone()));
        value
    }

    /// Runs `cleanup` after the case, whatever its outcome (drop the table, delete the keys).
    /// Every handle's setup registers its own, so make it idempotent (`DROP TABLE IF EXISTS`).
    pub fn on_cleanup<F, Fut>(&self, cleanup: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.inner
            .cleanups
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Box::new(move || Box::pin(cleanup())));
    }

    async fn clean_up(&self) -> anyhow::Result<()> {
        let cleanups = std::mem::take(
            &mut *self
                .inner
                .cleanups
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        let mut first_error = None;
        for cleanup in cleanups {
            if let Err(e) = cleanup().await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl fmt::Debug for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Namespace").field(&self.inner.name).finish()
    }
}

pub use raw::RawRecords;

/// One opened handle: the store, and its raw rows when it is persistent.
struct Handle {
    store: Arc<dyn DynJobStore>,
    raw: Option<Arc<dyn RawRecords>>,
}

type Opener = Box<dyn Fn() -> BoxFuture<'static, anyhow::Result<Handle>> + Send + Sync>;

/// A started store under test, with the codec its context was given, the events it
/// published, and helpers to make jobs and open a second handle on the same data.
pub struct Fixture {
    store: Arc<dyn DynJobStore>,
    raw: Option<Arc<dyn RawRecords>>,
    codec: JobCodec,
    echo: JobFunction<serde_json::Value>,
    alias: String,
    events: EventBus,
    faults: Mutex<EventStream>,
    open: Opener,
    others: Mutex<Vec<Arc<dyn DynJobStore>>>,
}

impl fmt::Debug for Fixture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fixture")
            .field("store", &self.store)
            .field("alias", &self.alias)
            .finish_non_exhaustive()
    }
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
    async fn start(handle: Handle, open: Opener) -> Result<Self> {
        let (codec, echo) = suite_codec(true);
        let alias = "conformance".to_owned();
        let events = EventBus::new();
        let faults = Mutex::new(events.subscribe(EventMask::JOB_FAULT));
        handle
            .store
            .start(StoreContext::new(
                alias.as_str(),
                codec.clone(),
                events.clone(),
            ))
            .await?;
        Ok(Fixture {
            store: handle.store,
            raw: handle.raw,
            codec,
            echo,
            alias,
            events,
            faults,
            open,
            others: Mutex::new(Vec::new()),
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

    /// Opens and starts a second handle on the same data, as a second process sharing the
    /// store would have. It is shut down when the case ends.
    pub async fn second_store(&self) -> anyhow::Result<Arc<dyn DynJobStore>> {
        let handle = (self.open)().await?;
        handle.store.start(self.context(self.codec.clone())).await?;
        self.others
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(handle.store.clone());
        Ok(handle.store)
    }

    /// Opens and starts a second handle on the same data, with its raw rows, whose context's
    /// [`wake`](StoreContext::wake) calls `on_wake`. It is shut down when the case ends.
    pub async fn second_raw(
        &self,
        on_wake: impl Fn() + Send + Sync + 'static,
    ) -> anyhow::Result<(Arc<dyn DynJobStore>, Arc<dyn RawRecords>)> {
        let handle = (self.open)().await?;
        let raw = handle
            .raw
            .ok_or_else(|| anyhow::anyhow!("this case needs raw record access"))?;
        let ctx = self.context(self.codec.clone()).with_waker(on_wake);
        handle.store.start(ctx).await?;
        self.others
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(handle.store.clone());
        Ok((handle.store, raw))
    }

    /// The store's raw rows; an error for a store that has none (an in-memory store).
    pub fn raw(&self) -> anyhow::Result<&dyn RawRecords> {
        self.raw.as_deref().ok_or_else(|| {
            anyhow::anyhow!("this case needs raw record access (a persistent store)")
        })
    }

    /// The alias the store was started under.
    pub fn alias(&self) -> &str {
        &self.alias
    }

    /// The codec the store was started with.
    pub fn codec(&self) -> &JobCodec {
        &self.codec
    }

    /// The [`Event::JobFault`]s the store published since the last call.
    pub fn take_faults(&self) -> Vec<JobFaultEvent> {
        let mut stream = self.faults.lock().unwrap_or_else(|p| p.into_inner());
        std::iter::from_fn(|| stream.try_recv())
            .filter_map(|e| match e {
                Event::JobFault(fault) => Some(fault),
                _ => None,
            })
            .collect()
    }

    /// A persistable job `id` that first runs at `first` (`None`: paused) and then every
    /// 60 seconds.
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
        self.build(self.spec(id, first, args))
    }

    /// The spec [`job_with_args`](Self::job_with_args) builds, to set more options on.
    pub fn spec(&self, id: &str, first: Option<DateTime<Utc>>, args: serde_json::Value) -> JobSpec {
        let trigger = StepTrigger {
            start: first.unwrap_or_else(base_time),
            step_secs: 60,
        };
        let spec = JobSpec::new(self.echo.call(args), trigger).id(id);
        match first {
            Some(t) => spec.next_run_time(t),
            None => spec.paused(),
        }
    }

    /// The job `spec` describes, with the default options, at [`base_time`].
    pub fn build(&self, spec: JobSpec) -> Job {
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
        self.store.start(self.context(self.codec.clone())).await
    }

    /// Shuts the store down and starts it again with a codec that does not know the ghost
    /// function, as a process deployed without it would.
    pub async fn restart_without_ghost(&self) -> Result<()> {
        self.store.shutdown().await?;
        let (codec, _) = suite_codec(false);
        self.store.start(self.context(codec)).await
    }

    /// The persisted form of `job`, for comparing every field.
    pub fn record(&self, job: &Job) -> anyhow::Result<crate::JobRecord> {
        Ok(self.codec.encode(job)?)
    }

    fn context(&self, codec: JobCodec) -> StoreContext {
        StoreContext::new(self.alias.as_str(), codec, self.events.clone())
    }

    async fn finish(self) -> anyhow::Result<()> {
        let cleanup = self.store.remove_all_jobs().await;
        let shutdown = self.store.shutdown().await;
        let others = std::mem::take(&mut *self.others.lock().unwrap_or_else(|p| p.into_inner()));
        for other in others {
            other.shutdown().await?;
        }
        cleanup?;
        shutdown?;
        Ok(())
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

/// Runs one case on a fresh namespace, with the in-memory store `setup` opens, on a runtime
/// of its own. Panics (failing the test) with the case's error. Used by
/// [`jobstore_conformance!`](crate::jobstore_conformance).
pub fn run_case<S, Fut>(name: &str, setup: fn(Namespace) -> Fut, case: Case)
where
    S: JobStore,
    Fut: Future<Output = anyhow::Result<S>> + Send + 'static,
{
    run(name, case, move |ns| {
        Box::pin(async move {
            let store: Arc<dyn DynJobStore> = Arc::new(setup(ns).await?);
            Ok(Handle { store, raw: None })
        })
    });
}

/// Like [`run_case`], for a persistent store, whose raw rows the persistent cases read and
/// write.
pub fn run_persistent_case<S, Fut>(name: &str, setup: fn(Namespace) -> Fut, case: Case)
where
    S: JobStore + RawRecords,
    Fut: Future<Output = anyhow::Result<S>> + Send + 'static,
{
    run(name, case, move |ns| {
        Box::pin(async move {
            let store = Arc::new(setup(ns).await?);
            Ok(Handle {
                store: store.clone(),
                raw: Some(store),
            })
        })
    });
}

fn run(
    name: &str,
    case: Case,
    open: impl Fn(Namespace) -> BoxFuture<'static, anyhow::Result<Handle>> + Send + Sync + 'static,
) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a test runtime");
    let ns = Namespace::new(name);
    let outcome: anyhow::Result<()> = runtime.block_on(async {
        let for_opener = ns.clone();
        let opener: Opener = Box::new(move || open(for_opener.clone()));
        let outcome = async {
            let handle = opener().await?;
            let fixture = Fixture::start(handle, opener).await?;
            let result = case(&fixture).await;
            let finished = fixture.finish().await;
            result?;
            finished
        }
        .await;
        let cleaned = ns.clean_up().await;
        outcome?;
        cleaned
    });
    if let Err(e) = outcome {
        panic!("conformance case {name} failed: {e:#}");
    }
}

/// Expands to one `#[test]` per conformance case for the store `setup` opens.
///
/// `setup` is an `async fn(Namespace) -> anyhow::Result<impl JobStore>` that opens a handle on
/// the namespace's data: its own table, key prefix or database per namespace, the same one for
/// the same namespace (see [`Namespace`]). The second argument says what the store declares:
/// `in_memory` (holds closures, forgets at shutdown) or `persistent` (keeps jobs across
/// restarts, refuses closures, and gives the suite [`RawRecords`]); the cases for that kind
/// run, and the store's `capabilities()` must agree. The `cluster_*` cases check the cluster
/// methods of [`RecordStore`](crate::RecordStore) on two handles; they pass at once for a
/// store whose capabilities do not have `cluster` (and the wake-up case without `notifies`).
#[macro_export]
macro_rules! jobstore_conformance {
    ($setup:path, in_memory) => {
        $crate::jobstore_conformance!(@cases run_case $setup,
            declares_in_memory_capabilities,
            holds_closure_jobs,
            forgets_jobs_at_shutdown,
        );
        $crate::jobstore_conformance!(@common run_case $setup);
    };
    ($setup:path, persistent) => {
        $crate::jobstore_conformance!(@cases run_persistent_case $setup,
            declares_persistent_capabilities,
            refuses_closure_jobs,
            keeps_jobs_across_restart,
            skips_a_record_whose_job_function_is_unknown,
            skips_a_record_whose_trigger_kind_is_unknown,
            skips_a_record_with_corrupt_json,
            skips_a_record_from_a_newer_version,
            unreadable_records_do_not_fill_the_due_batch,
            keeps_record_fields_it_does_not_know,
            reads_a_record_written_before_optional_fields_existed,
            the_run_time_column_is_the_authority,
            writes_the_json_run_time_with_the_column,
            cluster_claims_are_exclusive,
            cluster_a_lapsed_claim_can_be_taken,
            cluster_the_same_node_claims_again,
            cluster_release_frees_only_own_claims,
            cluster_a_write_clears_the_claim,
            cluster_a_claim_does_not_change_the_revision,
            cluster_claims_follow_run_time_order_and_limit,
            cluster_unclaimed_due_rows_claim_nothing,
            cluster_a_joined_node_is_listed,
            cluster_heartbeats_upsert_and_list,
            cluster_remove_node_is_conditional_and_exclusive,
            cluster_inflight_is_written_iff_the_commit_applies,
            cluster_finish_run_removes_one_entry,
            cluster_adopt_runs_is_exclusive,
            cluster_max_inflight_bounds_runs_across_nodes,
            cluster_max_inflight_ignores_removed_nodes,
            cluster_a_write_wakes_other_nodes,
        );
        $crate::jobstore_conformance!(@common run_persistent_case $setup);
    };
    (@common $runner:ident $setup:path) => {
        $crate::jobstore_conformance!(@cases $runner $setup,
            add_and_lookup_keep_every_field,
            lookup_of_a_missing_job_is_none,
            all_jobs_are_ordered_with_paused_last,
            due_jobs_include_now_and_exclude_later,
            due_jobs_are_in_run_time_order,
            due_jobs_stop_at_the_limit,
            next_run_time_is_the_earliest_unpaused,
            next_run_time_of_an_empty_store_is_none,
            next_run_time_ignores_paused_jobs,
            conflicting_id_is_refused_and_keeps_the_original,
            add_jobs_answers_each_job_in_order,
            add_jobs_over_several_statements_answers_each,
            upsert_adds_or_replaces_whatever_the_revision,
            update_replaces_fields_and_reorders,
            update_of_a_missing_job_is_job_not_found,
            update_at_a_stale_revision_is_a_conflict,
            every_write_gives_a_new_revision,
            update_can_pause_and_unpause,
            remove_deletes_only_that_job,
            remove_of_a_missing_job_is_job_not_found,
            remove_all_empties_the_store,
            commit_fires_reschedules_pauses_and_removes,
            commit_fires_skips_jobs_that_changed,
            a_trigger_change_alone_defeats_a_stale_fire_commit,
            a_job_added_again_defeats_a_stale_fire_commit,
            commit_fires_answers_every_job_by_id,
            racing_fire_commits_on_two_handles_apply_once,
            racing_fire_batches_on_two_handles_apply_once,
            racing_updates_on_two_handles_lose_nothing,
            skipped_jobs_are_not_due_until_they_change,
            skipped_jobs_do_not_fill_the_due_batch,
            run_times_are_exact_to_the_microsecond,
            run_times_at_the_edges_are_exact_or_refused,
            concurrent_adds_and_removes_stay_consistent,
            concurrent_single_adds_answer_each_caller,
            many_jobs_keep_their_order,
        );
    };
    (@cases $runner:ident $setup:path, $($case:ident),+ $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::testkit::$runner(
                    stringify!($case),
                    $setup,
                    |fixture| ::std::boxed::Box::pin($crate::testkit::cases::$case(fixture)),
                );
            }
        )+
    };
}

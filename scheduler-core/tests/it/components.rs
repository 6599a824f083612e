//! Stores and executors by alias: one duplicate rule for the builder, documents and the
//! running API, and nothing started for an alias that is taken.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use scheduler_core::{
    Components, ErrorKind, Executor, ExecutorContext, JobRun, Result, Scheduler, SchedulerConfig,
};

use crate::harness::{Harness, InstrumentedStore};

/// An executor that counts its starts and does nothing else.
#[derive(Debug, Default, Clone)]
struct CountingExecutor {
    starts: Arc<AtomicUsize>,
}

impl Executor for CountingExecutor {
    async fn start(&self, _: ExecutorContext) -> Result<()> {
        self.starts.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn submit(&self, _: JobRun) -> Result<()> {
        Ok(())
    }
    async fn shutdown(&self, _: bool) -> Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_taken_alias_is_refused_before_the_newcomer_is_started() {
    let h = Harness::new();
    h.scheduler.start().await.unwrap();
    let store = InstrumentedStore::default();
    let err = h
        .scheduler
        .add_jobstore("default", store.clone())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert_eq!(
        err.to_string(),
        "this scheduler already has a job store named \"default\""
    );
    assert_eq!(
        store.starts.load(Ordering::SeqCst),
        0,
        "the store was started"
    );

    let executor = CountingExecutor::default();
    let err = h
        .scheduler
        .add_executor("default", executor.clone())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "this scheduler already has an executor named \"default\""
    );
    assert_eq!(executor.starts.load(Ordering::SeqCst), 0);
    h.scheduler.shutdown(false).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_stores_added_at_once_under_one_alias_only_the_winner_starts() {
    let h = Harness::new();
    h.scheduler.start().await.unwrap();
    let starts = Arc::new(AtomicUsize::new(0));
    let store = || InstrumentedStore {
        start_delay: Duration::from_millis(100),
        starts: starts.clone(),
        ..InstrumentedStore::default()
    };
    let (a, b) = tokio::join!(
        h.scheduler.add_jobstore("shared", store()),
        h.scheduler.add_jobstore("shared", store())
    );
    assert!(a.is_ok() != b.is_ok(), "exactly one add wins: {a:?} {b:?}");
    let lost = a.err().or(b.err()).unwrap();
    assert_eq!(lost.kind(), ErrorKind::Config);
    assert_eq!(
        starts.load(Ordering::SeqCst),
        1,
        "the losing store was started"
    );
    assert_eq!(h.scheduler.jobstore_aliases(), ["default", "shared"]);
    h.scheduler.shutdown(false).await.unwrap();
}

#[tokio::test]
async fn a_store_that_fails_to_start_leaves_its_alias_free() {
    let h = Harness::new();
    h.scheduler.start().await.unwrap();
    let broken = InstrumentedStore::default();
    broken.failing.store(true, Ordering::SeqCst);
    let err = h.scheduler.add_jobstore("x", broken).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Backend);
    assert_eq!(h.scheduler.jobstore_aliases(), ["default"]);
    h.scheduler
        .add_jobstore("x", jobstore_memory::MemoryJobStore::new())
        .await
        .unwrap();
    h.scheduler.shutdown(false).await.unwrap();
}

#[test]
fn the_builder_refuses_a_taken_alias_as_the_running_api_does() {
    let err = Scheduler::builder()
        .jobstore("default", jobstore_memory::MemoryJobStore::new())
        .jobstore("default", jobstore_memory::MemoryJobStore::new())
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert_eq!(
        err.to_string(),
        "this scheduler already has a job store named \"default\""
    );

    let components = Components::new();
    jobstore_memory::register(&components);
    let config =
        SchedulerConfig::from_json(r#"{"jobstores": {"default": {"type": "memory"}}}"#).unwrap();
    let err = Scheduler::builder()
        .jobstore("default", jobstore_memory::MemoryJobStore::new())
        .config(&config, &components)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "this scheduler already has a job store named \"default\""
    );
}

//! Timeouts, run contexts and refused runs on the in-process executors.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use executors::{ThreadPoolExecutor, TokioExecutor};
use scheduler_core::executor::RunContext;
use scheduler_core::{
    ErrorKind, Event, EventMask, EventStream, Executor, FailureKind, JobFailure, JobRegistry,
    JobSpec,
};

use super::{next, once, scheduler, t};

const OUTCOMES: EventMask = EventMask::JOB_EXECUTED.union(EventMask::JOB_ERROR);

async fn outcome(events: &mut EventStream) -> (String, Result<serde_json::Value, JobFailure>) {
    match next(events, OUTCOMES).await {
        Event::JobExecuted(e) => (e.job_id.to_string(), Ok(e.retval)),
        Event::JobError(e) => (e.job_id.to_string(), Err(e.error.unwrap())),
        _ => unreachable!(),
    }
}

fn assert_timed_out(failure: &JobFailure) {
    assert_eq!(failure.kind(), FailureKind::TimedOut, "{failure}");
    let error = failure
        .error()
        .downcast_ref::<scheduler_core::Error>()
        .expect("a timeout is a scheduler error");
    assert_eq!(error.kind(), ErrorKind::JobTimedOut);
}

/// A gate a blocking job waits at until the test opens it (or 30 s pass).
#[derive(Debug, Default)]
struct Gate(AtomicBool);

impl Gate {
    fn wait(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !self.0.load(Ordering::SeqCst) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    fn open(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tokio_executor_stops_an_async_job_at_its_timeout() {
    let registry = JobRegistry::new();
    let finished = Arc::new(AtomicBool::new(false));
    let f = finished.clone();
    let hang = registry.register_async("hang", move |_: ()| {
        let f = f.clone();
        async move {
            tokio::time::sleep(Duration::from_secs(600)).await;
            f.store(true, Ordering::SeqCst);
        }
    });
    let quick = registry.register_async("quick", |n: u32| async move {
        Ok::<_, std::convert::Infallible>(n)
    });
    let (s, _) = scheduler(TokioExecutor::new(), registry);
    let mut events = s.subscribe(OUTCOMES);
    s.start().await.unwrap();
    let limit = Some(Duration::from_millis(100));
    s.add_job(JobSpec::new(hang.call(()), once(t(0))).timeout(limit))
        .await
        .unwrap();
    let (_, result) = outcome(&mut events).await;
    assert_timed_out(&result.unwrap_err());
    s.add_job(JobSpec::new(quick.call(7), once(t(0))).timeout(limit))
        .await
        .unwrap();
    assert_eq!(outcome(&mut events).await.1.unwrap(), 7);
    s.shutdown(true).await.unwrap();
    assert!(
        !finished.load(Ordering::SeqCst),
        "the timed-out job was not stopped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_job_past_its_timeout_on_the_tokio_executor_keeps_its_instance_slot() {
    let registry = JobRegistry::new();
    let gate = Arc::new(Gate::default());
    let g = gate.clone();
    let stuck = registry.register_sync("stuck", move |_: ()| g.wait());
    let (s, _) = scheduler(TokioExecutor::new(), registry);
    let mut events = s.subscribe(OUTCOMES | EventMask::JOB_MAX_INSTANCES);
    s.start().await.unwrap();
    let spec = JobSpec::new(
        stuck.call(()),
        scheduler_core::testkit::StepTrigger {
            start: t(0),
            step_secs: 1,
        },
    )
    .id("stuck")
    .misfire_grace_time(None)
    .timeout(Some(Duration::from_millis(100)));
    s.add_job(spec).await.unwrap();
    let (_, result) = outcome(&mut events).await;
    assert_timed_out(&result.unwrap_err());
    // Still running: the next fire finds its one instance taken.
    s.modify_job(
        "stuck",
        None,
        scheduler_core::JobChanges::new().next_run_time(Some(t(0))),
    )
    .await
    .unwrap();
    let refused = next(&mut events, EventMask::JOB_MAX_INSTANCES).await;
    assert_eq!(refused.job_id(), Some("stuck"));
    gate.open();
    s.remove_job("stuck", None).await.unwrap();
    s.shutdown(true).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_thread_pool_reports_a_stuck_job_replaces_its_thread_and_keeps_its_slot() {
    let registry = JobRegistry::new();
    let gate = Arc::new(Gate::default());
    let g = gate.clone();
    let stuck = registry.register_sync("stuck", move |_: ()| g.wait());
    let quick = registry.register_sync("quick", |n: u32| Ok::<_, std::convert::Infallible>(n));
    // One thread: without a replacement, the quick job would wait for the stuck one.
    let (s, _) = scheduler(ThreadPoolExecutor::new(1).unwrap(), registry);
    let mut events = s.subscribe(OUTCOMES | EventMask::JOB_MAX_INSTANCES);
    s.start().await.unwrap();
    let spec = JobSpec::new(stuck.call(()), once(t(0)))
        .id("stuck")
        .misfire_grace_time(None)
        .timeout(Some(Duration::from_millis(100)));
    s.add_job(spec).await.unwrap();
    let (id, result) = outcome(&mut events).await;
    assert_eq!(id, "stuck");
    assert_timed_out(&result.unwrap_err());
    s.add_job(JobSpec::new(quick.call(5), once(t(0))).misfire_grace_time(None))
        .await
        .unwrap();
    assert_eq!(
        outcome(&mut events).await.1.unwrap(),
        5,
        "a replacement thread ran it"
    );
    // The stuck run still holds its instance.
    s.add_job(
        JobSpec::new(stuck.call(()), once(t(0)))
            .id("stuck")
            .replace_existing(true)
            .misfire_grace_time(None),
    )
    .await
    .unwrap();
    let refused = next(&mut events, EventMask::JOB_MAX_INSTANCES).await;
    assert_eq!(refused.job_id(), Some("stuck"));
    gate.open();
    s.shutdown(true).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_in_process_executor_gives_the_job_its_run_context() {
    for executor in ["tokio", "threads"] {
        let registry = JobRegistry::new();
        let sync = registry.register_sync("sync", |_: ()| {
            let run = RunContext::current().ok_or("no run context")?;
            Ok::<_, scheduler_core::BoxError>(format!(
                "{}@{}:{}",
                run.job_id, run.executor, run.attempt
            ))
        });
        let asynchronous = registry.register_async("async", |_: ()| async {
            // Made when first read, it stays the same across the job's awaits.
            let first = RunContext::current().ok_or("no run context")?;
            tokio::task::yield_now().await;
            let run = RunContext::current().ok_or("no run context")?;
            if run.run_id != first.run_id || run.run_id.len() != 32 {
                return Err(format!("run id {} then {}", first.run_id, run.run_id).into());
            }
            Ok::<_, scheduler_core::BoxError>(format!(
                "{}@{}:{}",
                run.job_id, run.executor, run.attempt
            ))
        });
        let (s, _) = match executor {
            "tokio" => scheduler(TokioExecutor::new(), registry),
            _ => scheduler(ThreadPoolExecutor::new(2).unwrap(), registry),
        };
        let mut events = s.subscribe(OUTCOMES);
        s.start().await.unwrap();
        s.add_job(JobSpec::new(sync.call(()), once(t(0))).id("a"))
            .await
            .unwrap();
        s.add_job(JobSpec::new(asynchronous.call(()), once(t(0))).id("b"))
            .await
            .unwrap();
        let mut answers = [outcome(&mut events).await, outcome(&mut events).await];
        answers.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(answers[0].1.as_ref().unwrap(), "a@default:1", "{executor}");
        assert_eq!(answers[1].1.as_ref().unwrap(), "b@default:1", "{executor}");
        s.shutdown(true).await.unwrap();
    }
    assert!(RunContext::current().is_none());
}

/// An executor whose every submission fails after admitting it.
#[derive(Debug, Default)]
struct Refusing;

impl Executor for Refusing {
    async fn start(&self, _: scheduler_core::ExecutorContext) -> scheduler_core::Result<()> {
        Ok(())
    }
    fn submit(&self, _: scheduler_core::JobRun) -> scheduler_core::Result<()> {
        Err(scheduler_core::Error::scheduler_state("no room"))
    }
    async fn shutdown(&self, _: bool) -> scheduler_core::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_refused_after_its_fire_was_committed_is_an_error_event() {
    let registry = JobRegistry::new();
    let tick = registry.register_sync("tick", |_: ()| ());
    let (s, _) = scheduler(Refusing, registry);
    let mut events = s.subscribe(OUTCOMES);
    s.start().await.unwrap();
    s.add_job(JobSpec::new(tick.call(()), once(t(0))).id("tick"))
        .await
        .unwrap();
    let (id, result) = outcome(&mut events).await;
    assert_eq!(id, "tick");
    let failure = result.unwrap_err();
    assert_eq!(failure.kind(), FailureKind::Refused);
    assert!(failure.to_string().contains("no room"), "{failure}");
    s.shutdown(true).await.unwrap();
}

//! The process pool against a real scheduler and real worker processes (the
//! `process-pool-test-worker` program of this package): outcomes, crashes, kills, timeouts,
//! shutdown, and no process left behind.
//!
//! Child processes are counted per test process: nextest runs each test in a process of its
//! own, as `cargo xtask test-all` does.

use std::collections::HashSet;
use std::time::Duration;

use executors::TokioExecutor;
use executors::process_pool::ProcessPoolExecutor;
use scheduler_core::{
    ErrorKind, Event, EventMask, EventStream, FailureKind, JobChanges, JobFailure, JobRegistry,
    JobSpec, JobTarget, Scheduler,
};

use super::{next, once, t};

const WORKER: &str = env!("CARGO_BIN_EXE_process-pool-test-worker");

/// The names the test worker knows, registered here too so jobs can name them (they only
/// ever run in the worker).
fn registry() -> JobRegistry {
    let registry = JobRegistry::new();
    for name in [
        "noop",
        "add",
        "fail",
        "panic",
        "abort",
        "exit",
        "segfault",
        "sleep_ms",
        "pid_then_sleep",
        "wait_for_file",
        "pid",
        "print_then_add",
        "context",
        "async_add",
    ] {
        registry.register_sync(name, |_: serde_json::Value| -> () {
            unreachable!("runs in a worker process")
        });
    }
    registry
}

fn pool(max_workers: usize) -> ProcessPoolExecutor {
    ProcessPoolExecutor::new(max_workers)
        .unwrap()
        .worker_program(WORKER)
}

fn scheduler(pool: ProcessPoolExecutor) -> (Scheduler, JobRegistry) {
    let registry = registry();
    let scheduler = Scheduler::builder()
        .clock(scheduler_core::testkit::ManualClock::new(t(0)))
        .registry(registry.clone())
        .jobstore("default", jobstore_memory::MemoryJobStore::new())
        .executor("default", pool)
        .executor("local", TokioExecutor::new())
        .build()
        .unwrap();
    (scheduler, registry)
}

fn job(registry: &JobRegistry, name: &str, args: serde_json::Value) -> JobSpec {
    JobSpec::new(registry.target(name, args).unwrap(), once(t(0))).misfire_grace_time(None)
}

const OUTCOMES: EventMask = EventMask::JOB_EXECUTED.union(EventMask::JOB_ERROR);

async fn outcome(events: &mut EventStream) -> Result<serde_json::Value, JobFailure> {
    match next(events, OUTCOMES).await {
        Event::JobExecuted(e) => Ok(e.retval),
        Event::JobError(e) => Err(e.error.expect("a JobError carries its failure")),
        _ => unreachable!(),
    }
}

/// Runs one job to its outcome.
async fn run_one(
    s: &Scheduler,
    events: &mut EventStream,
    spec: JobSpec,
) -> Result<serde_json::Value, JobFailure> {
    s.add_job(spec).await.unwrap();
    outcome(events).await
}

/// The processes whose parent is this one (Linux: from /proc).
fn children() -> Vec<u32> {
    let me = std::process::id();
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if stat_field(&stat, 1) == Some(me.to_string()) {
            out.push(pid);
        }
    }
    out
}

/// Field `n` after the command name of a /proc/<pid>/stat line (0: state, 1: ppid, 2: pgrp).
fn stat_field(stat: &str, n: usize) -> Option<String> {
    let after_name = &stat[stat.rfind(')')? + 2..];
    after_name.split(' ').nth(n).map(str::to_owned)
}

/// Whether process `pid` still exists (and is not a zombie waiting for its parent).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat_field(&stat, 0).as_deref() != Some("Z"))
}

/// Waits up to 10 s for `done`.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what} did not happen within 10 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_answer_values_errors_panics_and_async_results_and_are_reused() {
    let (s, r) = scheduler(pool(2));
    let mut events = s.subscribe(OUTCOMES);
    s.start().await.unwrap();

    let sum = run_one(&s, &mut events, job(&r, "add", serde_json::json!([2, 3])));
    assert_eq!(sum.await.unwrap(), 5);
    let sum = run_one(
        &s,
        &mut events,
        job(&r, "async_add", serde_json::json!([4, 5])),
    );
    assert_eq!(sum.await.unwrap(), 9);
    // A job's stdout output does not break the channel to the pool.
    let sum = run_one(
        &s,
        &mut events,
        job(&r, "print_then_add", serde_json::json!([1, 1])),
    );
    assert_eq!(sum.await.unwrap(), 2);

    let failed = run_one(&s, &mut events, job(&r, "fail", "no space".into()))
        .await
        .unwrap_err();
    assert_eq!(failed.kind(), FailureKind::Error);
    assert_eq!(failed.chain(), "no space\ncaused by: disk full");

    let panicked = run_one(&s, &mut events, job(&r, "panic", "bug".into()))
        .await
        .unwrap_err();
    assert!(panicked.panicked(), "{panicked}");
    assert!(panicked.to_string().contains("bug"), "{panicked}");

    let context = run_one(
        &s,
        &mut events,
        job(&r, "context", serde_json::Value::Null).id("ctx"),
    )
    .await
    .unwrap();
    assert_eq!(context["job_id"], "ctx");
    assert_eq!(context["executor"], "default");
    assert_eq!(context["attempt"], 1);
    assert_eq!(context["run_id"].as_str().unwrap().len(), 32);
    assert_eq!(
        context["scheduled_run_time"],
        serde_json::to_value(t(0)).unwrap()
    );
    let node = context["node"].as_str().unwrap();
    assert!(
        !node.ends_with(&format!(":{}", std::process::id())),
        "the run context names the worker, not the scheduler: {node}"
    );

    // Eight runs, two workers at most, each in its own process group (Ctrl-C in a terminal
    // reaches the scheduler only).
    for i in 0..8 {
        s.add_job(job(&r, "pid", serde_json::Value::Null).id(format!("pid-{i}")))
            .await
            .unwrap();
    }
    let mut pids = HashSet::new();
    for _ in 0..8 {
        let pid = outcome(&mut events).await.unwrap().as_u64().unwrap() as u32;
        pids.insert(pid);
    }
    assert!(pids.len() <= 2, "more workers than max_workers: {pids:?}");
    for &pid in &pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        assert_eq!(
            stat_field(&stat, 2),
            Some(pid.to_string()),
            "own process group"
        );
    }
    s.shutdown(true).await.unwrap();
    assert_eq!(children(), Vec::<u32>::new(), "workers left after shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_dies_under_a_run_is_reported_by_what_happened_and_replaced() {
    let (s, r) = scheduler(pool(1));
    let mut events = s.subscribe(OUTCOMES);
    s.start().await.unwrap();
    let cases = [
        ("abort", serde_json::Value::Null, "SIGABRT"),
        ("exit", serde_json::json!(3), "exited with code 3"),
        ("segfault", serde_json::Value::Null, "SIGSEGV"),
    ];
    for (name, args, says) in cases {
        let failure = run_one(&s, &mut events, job(&r, name, args).id(name))
            .await
            .unwrap_err();
        assert_eq!(failure.kind(), FailureKind::WorkerLost, "{name}: {failure}");
        assert!(failure.to_string().contains(says), "{name}: {failure}");
        // The pool carries on with a new worker.
        let sum = run_one(&s, &mut events, job(&r, "add", serde_json::json!([1, 2])));
        assert_eq!(sum.await.unwrap(), 3, "after {name}");
    }
    s.shutdown(true).await.unwrap();
    assert_eq!(children(), Vec::<u32>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_from_outside_fails_its_run_and_the_queue_goes_on() {
    let dir = tempdir();
    let pid_file = dir.join("pid");
    let (s, r) = scheduler(pool(1));
    let mut events = s.subscribe(OUTCOMES);
    s.start().await.unwrap();
    let args = serde_json::json!([pid_file.to_str().unwrap(), 60_000]);
    s.add_job(job(&r, "pid_then_sleep", args).id("victim"))
        .await
        .unwrap();
    // Queued behind the victim on the only worker.
    for i in 0..3 {
        s.add_job(job(&r, "add", serde_json::json!([i, 10])).id(format!("after-{i}")))
            .await
            .unwrap();
    }
    eventually("the victim's pid file", || pid_file.exists()).await;
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let killed = std::process::Command::new("kill")
        .args(["-KILL", pid.trim()])
        .status()
        .unwrap();
    assert!(killed.success());

    let mut results = Vec::new();
    for _ in 0..4 {
        match next(&mut events, OUTCOMES).await {
            Event::JobExecuted(e) => results.push((e.job_id.to_string(), Ok(e.retval))),
            Event::JobError(e) => results.push((e.job_id.to_string(), Err(e.error.unwrap()))),
            _ => unreachable!(),
        }
    }
    results.sort_by(|a, b| a.0.cmp(&b.0));
    let ids: Vec<_> = results.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["after-0", "after-1", "after-2", "victim"]);
    for (i, (_, result)) in results.iter().take(3).enumerate() {
        assert_eq!(result.as_ref().unwrap(), &serde_json::json!(i + 10));
    }
    let failure = results[3].1.as_ref().unwrap_err();
    assert_eq!(failure.kind(), FailureKind::WorkerLost);
    assert!(failure.to_string().contains("SIGKILL"), "{failure}");
    assert!(failure.to_string().contains(pid.trim()), "{failure}");
    s.shutdown(true).await.unwrap();
    assert_eq!(children(), Vec::<u32>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_past_its_timeout_has_its_worker_killed_and_is_reported_as_a_timeout() {
    let dir = tempdir();
    let pid_file = dir.join("pid");
    let (s, r) = scheduler(pool(1));
    let mut events = s.subscribe(OUTCOMES);
    s.start().await.unwrap();
    let args = serde_json::json!([pid_file.to_str().unwrap(), 600_000]);
    let spec = job(&r, "pid_then_sleep", args).timeout(Some(Duration::from_millis(300)));
    let failure = run_one(&s, &mut events, spec).await.unwrap_err();
    assert_eq!(failure.kind(), FailureKind::TimedOut);
    let error = failure
        .error()
        .downcast_ref::<scheduler_core::Error>()
        .expect("a timeout is a scheduler error");
    assert_eq!(error.kind(), ErrorKind::JobTimedOut);
    let pid: u32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    assert!(!alive(pid), "the timed-out worker {pid} still runs");
    // A job within its timeout is unaffected.
    let quick = job(&r, "add", serde_json::json!([20, 22])).timeout(Some(Duration::from_secs(30)));
    assert_eq!(run_one(&s, &mut events, quick).await.unwrap(), 42);
    s.shutdown(true).await.unwrap();
    assert_eq!(children(), Vec::<u32>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closure_jobs_are_refused_at_add_and_modify_for_the_process_pool() {
    let (s, r) = scheduler(pool(1));
    s.start().await.unwrap();
    let closure = || JobTarget::closure("tick", || ());
    let refused = s
        .add_job(JobSpec::new(closure(), once(t(0))))
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::NotPersistable);
    assert!(refused.to_string().contains("\"default\""), "{refused}");

    // A closure job on an in-process executor cannot move to the pool...
    s.add_job(
        JobSpec::new(closure(), once(t(0)))
            .id("local")
            .executor("local")
            .paused(),
    )
    .await
    .unwrap();
    let moved = s
        .modify_job("local", None, JobChanges::new().executor("default"))
        .await
        .unwrap_err();
    assert_eq!(moved.kind(), ErrorKind::NotPersistable);
    // ... nor can a pool job be given a closure.
    s.add_job(
        job(&r, "noop", serde_json::Value::Null)
            .id("pooled")
            .paused(),
    )
    .await
    .unwrap();
    let changed = s
        .modify_job("pooled", None, JobChanges::new().target(closure()))
        .await
        .unwrap_err();
    assert_eq!(changed.kind(), ErrorKind::NotPersistable);
    s.shutdown(true).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_with_wait_drains_queued_runs_and_leaves_no_process() {
    let (s, r) = scheduler(pool(2));
    let mut events = s.subscribe(OUTCOMES | EventMask::JOB_SUBMITTED);
    s.start().await.unwrap();
    for i in 0..6 {
        s.add_job(job(&r, "sleep_ms", serde_json::json!(50)).id(format!("j{i}")))
            .await
            .unwrap();
    }
    for _ in 0..6 {
        next(&mut events, EventMask::JOB_SUBMITTED).await;
    }
    s.shutdown(true).await.unwrap();
    assert_eq!(children(), Vec::<u32>::new(), "workers left after shutdown");
    for _ in 0..6 {
        assert!(outcome(&mut events).await.is_ok());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_without_wait_returns_while_a_run_goes_on_and_no_process_is_left() {
    let dir = tempdir();
    let gate = dir.join("gate");
    let (s, r) = scheduler(pool(1));
    let mut events = s.subscribe(OUTCOMES | EventMask::JOB_SUBMITTED);
    s.start().await.unwrap();
    let args = serde_json::json!(gate.to_str().unwrap());
    s.add_job(job(&r, "wait_for_file", args)).await.unwrap();
    next(&mut events, EventMask::JOB_SUBMITTED).await;
    eventually("a worker", || !children().is_empty()).await;
    // The run waits for the gate, which opens only after shutdown returns: a shutdown that
    // waited would never return.
    tokio::time::timeout(Duration::from_secs(10), s.shutdown(false))
        .await
        .expect("shutdown(wait = false) returns at once")
        .unwrap();
    std::fs::write(&gate, "open").unwrap();
    assert!(outcome(&mut events).await.is_ok(), "the run finished");
    eventually("no worker left", || children().is_empty()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_are_recycled_after_the_given_number_of_runs() {
    let (s, r) = scheduler(pool(1).recycle_after(2));
    let mut events = s.subscribe(OUTCOMES);
    s.start().await.unwrap();
    let mut pids = Vec::new();
    for _ in 0..4 {
        let pid = run_one(&s, &mut events, job(&r, "pid", serde_json::Value::Null));
        pids.push(pid.await.unwrap().as_u64().unwrap());
    }
    assert_eq!(pids[0], pids[1]);
    assert_eq!(pids[2], pids[3]);
    assert_ne!(pids[1], pids[2]);
    s.shutdown(true).await.unwrap();
    assert_eq!(children(), Vec::<u32>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_program_that_forgets_worker_main_fails_its_run_with_a_clear_error() {
    // A program that prints something else than a worker's greeting...
    let echo = pool(1).worker_program("echo").worker_args(["hello"]);
    let (s, r) = scheduler(echo);
    let mut events = s.subscribe(OUTCOMES);
    s.start().await.unwrap();
    let failure = run_one(&s, &mut events, job(&r, "noop", serde_json::Value::Null))
        .await
        .unwrap_err();
    assert_eq!(failure.kind(), FailureKind::Refused);
    assert!(failure.to_string().contains("worker_main"), "{failure}");
    assert!(failure.to_string().contains("hello"), "{failure}");
    s.shutdown(true).await.unwrap();

    // ... and one that prints nothing at all.
    let silent = pool(1)
        .worker_program("sleep")
        .worker_args(["60"])
        .start_timeout(Duration::from_millis(200));
    let (s, r) = scheduler(silent);
    let mut events = s.subscribe(OUTCOMES);
    s.start().await.unwrap();
    let failure = run_one(&s, &mut events, job(&r, "noop", serde_json::Value::Null))
        .await
        .unwrap_err();
    assert!(failure.to_string().contains("did not greet"), "{failure}");
    s.shutdown(true).await.unwrap();
    assert_eq!(children(), Vec::<u32>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_refuses_runs_with_an_error_event_and_loses_none() {
    let dir = tempdir();
    let gate = dir.join("gate");
    let (s, r) = scheduler(pool(1).queue_capacity(1));
    let mut events = s.subscribe(OUTCOMES);
    s.start().await.unwrap();
    let args = serde_json::json!(gate.to_str().unwrap());
    s.add_job(job(&r, "wait_for_file", args).id("blocker"))
        .await
        .unwrap();
    eventually("a worker", || !children().is_empty()).await;
    for i in 0..10 {
        s.add_job(job(&r, "noop", serde_json::Value::Null).id(format!("j{i}")))
            .await
            .unwrap();
    }
    // The worker is busy and the queue holds one: most of these are refused at once.
    let mut refused = 0;
    while refused == 0 {
        let failure = outcome(&mut events).await.unwrap_err();
        assert_eq!(failure.kind(), FailureKind::Refused);
        assert!(failure.to_string().contains("queue is full"), "{failure}");
        refused += 1;
    }
    std::fs::write(&gate, "open").unwrap();
    let mut executed = 0;
    while refused + executed < 11 {
        match outcome(&mut events).await {
            Ok(_) => executed += 1,
            Err(failure) => {
                assert_eq!(failure.kind(), FailureKind::Refused);
                refused += 1;
            }
        }
    }
    assert!(executed >= 2, "the blocker and at least one queued run ran");
    s.shutdown(true).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_refuses_to_start_without_being_started_and_with_zero_workers() {
    assert_eq!(
        ProcessPoolExecutor::new(0).unwrap_err().kind(),
        ErrorKind::Config
    );
    let pool = pool(1);
    assert_eq!(pool.max_workers(), 1);
    let (s, r) = scheduler(ProcessPoolExecutor::new(1).unwrap());
    s.start().await.unwrap();
    let job = s
        .add_job(job(&r, "noop", serde_json::Value::Null).paused())
        .await
        .unwrap();
    let run = scheduler_core::JobRun {
        job,
        jobstore: "default".into(),
        run_times: t(0).into(),
    };
    use scheduler_core::Executor as _;
    assert_eq!(
        pool.submit(run).unwrap_err().kind(),
        ErrorKind::SchedulerState
    );
    s.shutdown(true).await.unwrap();
}

/// A fresh directory under the system's temp dir, removed when dropped.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn join(&self, name: &str) -> std::path::PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempdir() -> TempDir {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut unique = std::collections::hash_map::RandomState::new().build_hasher();
    unique.write_u32(std::process::id());
    let dir = std::env::temp_dir().join(format!(
        "process-pool-test-{}-{:x}",
        std::process::id(),
        unique.finish()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_exit_when_the_schedulers_process_is_killed() {
    let dir = tempdir();
    let pid_file = dir.join("pid");
    // A scheduler's process of its own (the test worker program in its "parent" mode), with
    // one worker running a ten-minute job.
    let mut parent = std::process::Command::new(WORKER)
        .args(["parent", pid_file.to_str().unwrap()])
        .spawn()
        .unwrap();
    eventually("the worker's pid file", || {
        std::fs::read_to_string(&pid_file).is_ok_and(|pid| !pid.is_empty())
    })
    .await;
    let worker: u32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    assert!(alive(worker));
    parent.kill().unwrap();
    parent.wait().unwrap();
    eventually("the orphaned worker's exit", || !alive(worker)).await;
}

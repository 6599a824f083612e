//! The sync wrappers: a background scheduler driven from plain threads, and a blocking one.

use std::io::BufRead as _;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use scheduler_core::{
    BackgroundScheduler, BlockingScheduler, ErrorKind, Event, EventMask, JobRegistry, JobSpec,
    JobTarget, Result, Scheduler, SyncScheduler,
};

use crate::harness::{Calls, Once, background_on_thread_pool, every, functions, t};

/// Runs outside any async runtime, as a plain `main` would.
#[test]
fn background_scheduler_is_driven_from_sync_code() {
    let calls = Calls::default();
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let (registry, [record, ..]) = functions(&calls, &gate);
    let clock = scheduler_core::testkit::ManualClock::new(t(0));
    let (scheduler, rx) = background_on_thread_pool(registry, &clock);
    scheduler
        .add_job(JobSpec::new(record.call("pending".into()), Once(t(0))).id("p"))
        .unwrap();
    scheduler.start().unwrap();
    assert!(scheduler.running());
    let Ok(Event::JobExecuted(e)) = rx.recv_timeout(Duration::from_secs(10)) else {
        panic!("the pending job did not run");
    };
    assert_eq!(&*e.job_id, "p");

    scheduler
        .add_job(JobSpec::new(record.call("tick".into()), every(10, t(10))).id("tick"))
        .unwrap();
    clock.set(t(10));
    let Ok(Event::JobExecuted(e)) = rx.recv_timeout(Duration::from_secs(10)) else {
        panic!("the interval job did not run");
    };
    assert_eq!(e.scheduled_run_time, t(10));
    assert_eq!(scheduler.get_jobs(None).unwrap().len(), 1);
    scheduler.pause_job("tick", None).unwrap();
    assert!(
        scheduler
            .get_job("tick", None)
            .unwrap()
            .unwrap()
            .is_paused()
    );
    assert!(scheduler.jobs_table(None).unwrap().contains("paused"));
    scheduler.shutdown(true).unwrap();
    assert_eq!(calls.get(), ["pending", "tick"]);
}

#[test]
fn blocking_scheduler_runs_until_a_job_shuts_it_down() {
    let scheduler = BlockingScheduler::new(
        Scheduler::builder()
            .jobstore("default", jobstore_memory::MemoryJobStore::new())
            .executor("default", executors::ThreadPoolExecutor::new(1).unwrap()),
    )
    .unwrap();
    let handle = scheduler.handle();
    let stop = JobTarget::closure("stop", move || {
        // A job on the thread pool may call the sync API, here to end the blocking start().
        handle.shutdown(false).map_err(|e| e.to_string())
    });
    let now = scheduler.clock().now();
    scheduler.add_job(JobSpec::new(stop, Once(now))).unwrap();
    let started = std::time::Instant::now();
    scheduler.start().unwrap();
    assert!(!scheduler.running());
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_start_inside_a_runtime_is_an_error_not_a_panic() {
    let scheduler = BlockingScheduler::new(Scheduler::builder()).unwrap();
    let err = tokio::task::block_in_place(|| scheduler.start());
    assert_eq!(
        err.unwrap_err().kind(),
        scheduler_core::ErrorKind::SchedulerState
    );
}

fn background(
    registry: JobRegistry,
    executor: impl scheduler_core::Executor,
) -> BackgroundScheduler {
    BackgroundScheduler::new(
        Scheduler::builder()
            .registry(registry)
            .jobstore("default", jobstore_memory::MemoryJobStore::new())
            .executor("default", executor),
    )
    .unwrap()
}

/// A job function that calls `get_jobs` through the blocking API and reports the outcome.
type Report = Arc<Mutex<mpsc::Sender<Result<usize>>>>;

#[test]
fn the_blocking_api_refuses_an_async_job_on_its_own_runtime_at_once() {
    let handle: Arc<OnceLock<SyncScheduler>> = Arc::default();
    let (tx, rx) = mpsc::channel();
    let (slot, report): (_, Report) = (handle.clone(), Arc::new(Mutex::new(tx)));
    let registry = JobRegistry::new();
    let call_back = registry.register_async("call_back", move |_: u32| {
        let (slot, report) = (slot.clone(), report.clone());
        async move {
            let outcome = slot
                .get()
                .expect("set")
                .get_jobs(None)
                .map(|jobs| jobs.len());
            let _ = report.lock().unwrap().send(outcome);
        }
    });
    let scheduler = background(registry, executors::TokioExecutor::new());
    let _ = handle.set(scheduler.handle());
    scheduler.start().unwrap();
    // Two at once: before, they held both runtime threads and every other call hung.
    for i in 0..2 {
        scheduler
            .add_job(
                JobSpec::new(call_back.call(i), Once(scheduler.clock().now())).id(format!("j{i}")),
            )
            .unwrap();
    }
    for _ in 0..2 {
        let outcome = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the blocking call from an async job hung");
        let err = outcome.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::SchedulerState);
        assert!(err.to_string().contains("async job"), "{err}");
    }
    assert!(scheduler.get_jobs(None).unwrap().is_empty());
    scheduler.shutdown(true).unwrap();
}

#[test]
fn the_blocking_api_works_from_the_blocking_pool_and_plain_threads() {
    let handle: Arc<OnceLock<SyncScheduler>> = Arc::default();
    let (tx, rx) = mpsc::channel();
    let (slot, report): (_, Report) = (handle.clone(), Arc::new(Mutex::new(tx)));
    let registry = JobRegistry::new();
    // A sync function on the tokio executor runs in tokio's blocking pool.
    let call_back = registry.register_sync("call_back", move |_: u32| {
        let outcome = slot
            .get()
            .expect("set")
            .get_jobs(None)
            .map(|jobs| jobs.len());
        let _ = report.lock().unwrap().send(outcome);
    });
    let scheduler = background(registry, executors::TokioExecutor::new());
    let _ = handle.set(scheduler.handle());
    scheduler.start().unwrap();
    let later = scheduler.clock().now() + chrono::TimeDelta::hours(1);
    scheduler
        .add_job(JobSpec::new(
            JobTarget::closure("later", || ()),
            Once(later),
        ))
        .unwrap();
    scheduler
        .add_job(JobSpec::new(
            call_back.call(0),
            Once(scheduler.clock().now()),
        ))
        .unwrap();
    let seen = rx.recv_timeout(Duration::from_secs(10)).expect("hung");
    assert_eq!(seen.unwrap(), 1, "the later job is listed");
    let from_thread = {
        let handle = scheduler.handle();
        std::thread::spawn(move || handle.get_jobs(None).map(|jobs| jobs.len()))
            .join()
            .unwrap()
    };
    assert_eq!(from_thread.unwrap(), 1);
    scheduler.shutdown(true).unwrap();
}

#[test]
fn blocking_start_returns_only_once_the_shutdown_is_complete() {
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let (gate_tx, gate_rx) = mpsc::channel::<()>();
    let calls = Calls::default();
    let (started_tx, gate_rx, record) =
        (Mutex::new(started_tx), Mutex::new(gate_rx), calls.clone());
    let slow = JobTarget::closure("slow", move || {
        let _ = started_tx.lock().unwrap().send(());
        let _ = gate_rx
            .lock()
            .unwrap()
            .recv_timeout(Duration::from_secs(10));
        record.push("finished".into());
    });
    let scheduler = BlockingScheduler::new(
        Scheduler::builder()
            .jobstore("default", jobstore_memory::MemoryJobStore::new())
            .executor("default", executors::ThreadPoolExecutor::new(1).unwrap()),
    )
    .unwrap()
    .handle_signals(false);
    let seen = scheduler_core::testkit::EventLog::new();
    let sink = seen.clone();
    scheduler.add_listener(move |e| sink.push(e), EventMask::SCHEDULER_SHUTDOWN);
    let now = scheduler.clock().now();
    scheduler.add_job(JobSpec::new(slow, Once(now))).unwrap();
    let handle = scheduler.handle();
    let controller = std::thread::spawn(move || {
        started_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        let shutdown = std::thread::spawn(move || handle.shutdown(true));
        // Long enough for a start() that returned early to be seen doing so.
        std::thread::sleep(Duration::from_millis(300));
        gate_tx.send(()).unwrap();
        shutdown.join().unwrap()
    });
    scheduler.start().unwrap();
    assert_eq!(
        calls.get(),
        ["finished"],
        "start() returned while the job ran"
    );
    assert!(
        matches!(seen.events().as_slice(), [Event::SchedulerShutdown]),
        "start() returned before the listeners saw the shutdown"
    );
    controller.join().unwrap().unwrap();
}

/// The child side of the signal tests: a blocking scheduler whose job reports on stdout.
/// `SCHED_SIGNAL_CHILD` says what the job does: `finish` (runs 300 ms) or `hang`.
fn signal_child(mode: &str) {
    let registry = JobRegistry::new();
    let hang = mode == "hang";
    let job = registry.register_sync("job", move |_: u32| {
        println!("job started");
        if hang {
            std::thread::sleep(Duration::from_secs(60));
        } else {
            std::thread::sleep(Duration::from_millis(300));
        }
        println!("job finished");
    });
    let scheduler = BlockingScheduler::new(
        Scheduler::builder()
            .registry(registry)
            .jobstore("default", jobstore_memory::MemoryJobStore::new())
            .executor("default", executors::ThreadPoolExecutor::new(1).unwrap()),
    )
    .unwrap();
    let handle = scheduler.handle();
    // Say when the first signal has stopped the scheduler, so the parent can send a second.
    std::thread::spawn(move || {
        while handle.running() || handle.health().passes == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
        println!("stopping");
    });
    let now = scheduler.clock().now();
    scheduler
        .add_job(JobSpec::new(job.call(0), Once(now)))
        .unwrap();
    scheduler.start().unwrap();
    println!("start returned");
}

/// Runs this test binary's `test` as a signal child in `mode`, sends `signal` to it after
/// each line `send_after` names, and answers its output lines and exit code.
fn run_signal_child(
    test: &str,
    mode: &str,
    signal: &str,
    send_after: &[&str],
) -> (Vec<String>, Option<i32>) {
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env("SCHED_SIGNAL_CHILD", mode)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let mut pending = send_after.iter();
    let mut next = pending.next();
    while let Ok(line) = lines_rx.recv_timeout(Duration::from_secs(30)) {
        // libtest's "test name ... " may precede the first line printed.
        if next.is_some_and(|wanted| line.ends_with(wanted)) {
            let sent = std::process::Command::new("kill")
                .args([&format!("-{signal}"), &pid])
                .status()
                .unwrap();
            assert!(sent.success());
            next = pending.next();
        }
        lines.push(line);
    }
    let status = child.wait().unwrap();
    (lines, status.code())
}

fn marks(lines: &[String]) -> Vec<&'static str> {
    let known = ["job started", "job finished", "stopping", "start returned"];
    lines
        .iter()
        .filter_map(|line| known.into_iter().find(|mark| line.ends_with(mark)))
        .collect()
}

#[test]
fn a_first_sigint_shuts_the_blocking_scheduler_down_gracefully() {
    if let Ok(mode) = std::env::var("SCHED_SIGNAL_CHILD") {
        return signal_child(&mode);
    }
    let (lines, code) = run_signal_child(
        "sync::a_first_sigint_shuts_the_blocking_scheduler_down_gracefully",
        "finish",
        "INT",
        &["job started"],
    );
    assert_eq!(code, Some(0), "{lines:?}");
    let marks = marks(&lines);
    assert_eq!(
        marks
            .iter()
            .filter(|m| **m != "stopping")
            .copied()
            .collect::<Vec<_>>(),
        ["job started", "job finished", "start returned"],
        "{lines:?}"
    );
}

#[test]
fn a_second_signal_exits_at_once_with_130_or_143() {
    if let Ok(mode) = std::env::var("SCHED_SIGNAL_CHILD") {
        return signal_child(&mode);
    }
    for (signal, code) in [("INT", 130), ("TERM", 143)] {
        let (lines, exit) = run_signal_child(
            "sync::a_second_signal_exits_at_once_with_130_or_143",
            "hang",
            signal,
            &["job started", "stopping"],
        );
        assert_eq!(exit, Some(code), "SIG{signal}: {lines:?}");
        assert_eq!(
            marks(&lines),
            ["job started", "stopping"],
            "SIG{signal}: the job was cut off by the second signal, not waited for"
        );
    }
}

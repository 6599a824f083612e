//! The remote executor against a real NATS JetStream server (`SCHEDULER_TEST_NATS_URL`, default
//! `nats://127.0.0.1:4222`) and real worker processes (the `remote-test-worker` binary).
//!
//! Each test uses a namespace of its own and deletes it at the end.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use executors::remote::{RemoteExecutor, RemoteExecutorBuilder, Worker};
use scheduler_core::chrono::{DateTime, Utc};
use scheduler_core::{Clock as _, Event, EventMask, EventStream, JobSpec, Scheduler, SystemClock};
use triggers::{DateTrigger, IntervalTrigger};

#[path = "remote_fixture/jobs.rs"]
mod jobs;
use jobs::{Ran, Work};

fn nats_url() -> String {
    let url =
        std::env::var("SCHEDULER_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let addr = url
        .rsplit('@')
        .next()
        .unwrap_or(&url)
        .trim_start_matches("nats://")
        .trim_end_matches('/')
        .to_owned();
    if std::net::TcpStream::connect(&addr).is_err() {
        panic!(
            "NATS is not reachable at {addr}: start a NATS 2.9+ server with JetStream \
             (`nats-server -js`) or set SCHEDULER_TEST_NATS_URL"
        );
    }
    url
}

fn namespace(test: &str) -> String {
    format!(
        "t-{test}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

fn now() -> DateTime<Utc> {
    SystemClock.now()
}

/// A worker process; killed (if still running) and reaped when dropped.
struct WorkerProcess {
    child: Child,
}

fn spawn_worker(url: &str, ns: &str, name: &str, key: Option<&str>) -> WorkerProcess {
    let mut command = Command::new(env!("CARGO_BIN_EXE_remote-test-worker"));
    command
        .env("SCHEDULER_TEST_NATS_URL", url)
        .env("REMOTE_NAMESPACE", ns)
        .env("REMOTE_WORKER_NAME", name)
        .env("REMOTE_CONCURRENCY", "1")
        .stdin(Stdio::piped());
    if let Some(key) = key {
        command.env("REMOTE_KEY", key);
    }
    WorkerProcess {
        child: command
            .spawn()
            .expect("the remote-test-worker binary starts"),
    }
}

impl WorkerProcess {
    fn sigkill(&mut self) {
        self.child.kill().expect("SIGKILL the worker");
        self.child.wait().expect("reap the worker");
    }

    /// Closes its standard input (its signal to stop) and waits for it to exit.
    fn stop(mut self) {
        drop(self.child.stdin.take());
        let status = self.child.wait().expect("the worker exits");
        assert!(status.success(), "the worker exited with {status}");
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn executor(url: &str, ns: &str) -> RemoteExecutorBuilder {
    RemoteExecutor::builder(url, ns).ack_wait(Duration::from_secs(1))
}

async fn scheduler(executor: RemoteExecutorBuilder) -> Scheduler {
    let s = Scheduler::builder()
        .registry(jobs::registry())
        .jobstore("default", jobstore_memory::MemoryJobStore::new())
        .executor("default", executor.build().expect("valid settings"))
        .build()
        .expect("scheduler builds");
    s.start().await.expect("the scheduler starts");
    s
}

async fn add(s: &Scheduler, id: &str, work: Work, grace: Option<Duration>) {
    let function = jobs::registry()
        .target("work", serde_json::to_value(work).unwrap())
        .unwrap();
    s.add_job(
        JobSpec::new(function, DateTrigger::new(now()))
            .id(id)
            .misfire_grace_time(grace),
    )
    .await
    .expect("job added");
}

async fn next(events: &mut EventStream, within: Duration) -> Event {
    tokio::time::timeout(within, events.recv())
        .await
        .unwrap_or_else(|_| panic!("no event within {within:?}"))
        .expect("the bus is open")
}

fn ran(event: &Event) -> Ran {
    match event {
        Event::JobExecuted(e) => serde_json::from_value(e.retval.clone()).expect("a Ran"),
        other => panic!("expected JobExecuted, got {other:?}"),
    }
}

async fn wait_for_file(dir: &Path, name: &str, within: Duration) {
    let deadline = Instant::now() + within;
    while !dir.join(name).exists() {
        assert!(
            Instant::now() < deadline,
            "{name} did not appear within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn cleanup(s: Scheduler, url: &str, ns: &str) {
    s.shutdown(false).await.unwrap();
    executors::remote::delete_namespace(url, ns).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_spread_over_two_worker_processes() {
    let (url, ns) = (nats_url(), namespace("spread"));
    let s = scheduler(executor(&url, &ns)).await;
    let mut events = s.subscribe(EventMask::JOB_EXECUTED | EventMask::JOB_ERROR);
    let workers = [
        spawn_worker(&url, &ns, "worker-1", None),
        spawn_worker(&url, &ns, "worker-2", None),
    ];
    for i in 0..8 {
        let work = Work {
            ms: 300,
            ..Work::default()
        };
        add(&s, &format!("job-{i}"), work, None).await;
    }
    let mut seen = std::collections::BTreeMap::new();
    for _ in 0..8 {
        *seen
            .entry(ran(&next(&mut events, Duration::from_secs(30)).await).worker)
            .or_insert(0) += 1;
    }
    assert_eq!(
        seen.keys().cloned().collect::<Vec<_>>(),
        ["worker-1", "worker-2"],
        "{seen:?}"
    );
    for worker in workers {
        worker.stop();
    }
    cleanup(s, &url, &ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_run_has_its_run_redelivered_to_another() {
    let (url, ns) = (nats_url(), namespace("sigkill"));
    let dir = tempfile::tempdir().unwrap();
    let s = scheduler(executor(&url, &ns)).await;
    let mut events = s.subscribe(EventMask::JOB_EXECUTED | EventMask::JOB_ERROR);
    let mut first = spawn_worker(&url, &ns, "worker-1", None);
    let work = Work {
        ms: 1_500,
        tag: "long".into(),
        dir: Some(dir.path().display().to_string()),
        ..Work::default()
    };
    add(&s, "long", work, None).await;
    wait_for_file(dir.path(), "long.worker-1", Duration::from_secs(30)).await;
    let second = spawn_worker(&url, &ns, "worker-2", None);
    first.sigkill();
    let event = next(&mut events, Duration::from_secs(30)).await;
    let ran = ran(&event);
    assert_eq!(ran.worker, "worker-2");
    assert_eq!(
        ran.attempt, 2,
        "the job sees the redelivery in its run context"
    );
    assert!(dir.path().join("long.worker-2").exists());
    second.stop();
    cleanup(s, &url, &ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_turns_late_runs_into_misses() {
    let (url, ns) = (nats_url(), namespace("misfire"));
    let s = scheduler(executor(&url, &ns)).await;
    let mut events =
        s.subscribe(EventMask::JOB_EXECUTED | EventMask::JOB_ERROR | EventMask::JOB_MISSED);
    let dir = tempfile::tempdir().unwrap();
    let worker = spawn_worker(&url, &ns, "worker-1", None);
    let busy = Work {
        ms: 1_500,
        tag: "busy".into(),
        dir: Some(dir.path().display().to_string()),
        ..Work::default()
    };
    add(&s, "busy", busy, None).await;
    wait_for_file(dir.path(), "busy.worker-1", Duration::from_secs(30)).await;
    // Queued behind `busy` on the only worker (one run at a time) for over a second.
    for i in 0..3 {
        add(
            &s,
            &format!("late-{i}"),
            Work::default(),
            Some(Duration::from_millis(500)),
        )
        .await;
    }
    add(&s, "patient", Work::default(), None).await;
    let (mut executed, mut missed) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        match next(&mut events, Duration::from_secs(30)).await {
            Event::JobExecuted(e) => executed.push(e.job_id.to_string()),
            Event::JobMissed(e) => missed.push(e.job_id.to_string()),
            other => panic!("unexpected {other:?}"),
        }
    }
    executed.sort();
    missed.sort();
    assert_eq!(executed, ["busy", "patient"]);
    assert_eq!(missed, ["late-0", "late-1", "late-2"]);
    worker.stop();
    cleanup(s, &url, &ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_instances_holds_across_workers_and_counts_queued_runs() {
    let (url, ns) = (nats_url(), namespace("maxinst"));
    let s = scheduler(executor(&url, &ns)).await;
    let mut events = s.subscribe(EventMask::JOB_EXECUTED | EventMask::JOB_MAX_INSTANCES);
    let workers = [
        spawn_worker(&url, &ns, "worker-1", None),
        spawn_worker(&url, &ns, "worker-2", None),
    ];
    let work = Work {
        ms: 500,
        ..Work::default()
    };
    let function = jobs::registry()
        .target("work", serde_json::to_value(work).unwrap())
        .unwrap();
    let every = IntervalTrigger::builder()
        .seconds(0.2)
        .build()
        .expect("an interval");
    s.add_job(
        JobSpec::new(function, every)
            .id("often")
            .max_instances(1)
            .misfire_grace_time(None),
    )
    .await
    .unwrap();
    let (mut runs, mut refused) = (Vec::new(), 0);
    while runs.len() < 4 {
        match next(&mut events, Duration::from_secs(30)).await {
            event @ Event::JobExecuted(_) => runs.push(ran(&event)),
            Event::JobMaxInstances(_) => refused += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    s.pause_job("often", None).await.unwrap();
    assert!(
        refused > 0,
        "fires every 200 ms, runs 500 ms: some fires must be refused"
    );
    runs.sort_by_key(|r| r.start_ms);
    for pair in runs.windows(2) {
        assert!(
            pair[1].start_ms >= pair[0].end_ms,
            "two instances overlapped: {pair:?}"
        );
    }
    for worker in workers {
        worker.stop();
    }
    cleanup(s, &url, &ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_run_is_refused_by_a_worker_with_the_key() {
    let (url, ns) = (nats_url(), namespace("forged"));
    let dir = tempfile::tempdir().unwrap();
    let s = scheduler(executor(&url, &ns).signing_key("the shared key")).await;
    let mut events = s.subscribe(EventMask::JOB_EXECUTED | EventMask::JOB_ERROR);
    let worker = Worker::builder(&url, &ns, jobs::registry())
        .concurrency(1)
        .signing_key("the shared key")
        .build()
        .unwrap();
    // A run as the executor would send it, signed with another key.
    let forged = serde_json::json!({
        "namespace": ns, "max_attempts": 5, "progress_every": 1.0,
        "request": {
            "version": 1, "run_id": "forged", "job_id": "forged", "jobstore": "default",
            "function": "work", "scheduled_run_time": now(),
            "args": (Work {
                tag: "forged".into(),
                dir: Some(dir.path().display().to_string()),
                ..Work::default()
            }),
        },
    });
    let frame = format!("{}\n{}", "ab".repeat(32), forged);
    let client = async_nats::connect(&url).await.unwrap();
    let js = async_nats::jetstream::new(client);
    js.publish(format!("scheduler.{ns}.runs"), frame.into())
        .await
        .unwrap()
        .await
        .expect("the broker stores the forged run");
    let genuine = Work {
        tag: "genuine".into(),
        dir: Some(dir.path().display().to_string()),
        ..Work::default()
    };
    add(&s, "genuine", genuine, None).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(async move {
        worker
            .run_until(async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        worker
    });
    let event = next(&mut events, Duration::from_secs(30)).await;
    let ran = ran(&event);
    assert_eq!((ran.worker.as_str(), ran.attempt), ("in-process", 1));
    let _ = stop.send(());
    let worker = running.await.unwrap();
    assert_eq!(worker.refused(), 1);
    assert!(dir.path().join("genuine.in-process").exists());
    assert!(
        !dir.path().join("forged.in-process").exists(),
        "the forged run ran"
    );
    cleanup(s, &url, &ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_and_an_oversized_run_are_error_events() {
    let (url, ns) = (nats_url(), namespace("full"));
    let s = scheduler(executor(&url, &ns).queue_capacity(2)).await;
    let mut events = s.subscribe(EventMask::JOB_SUBMITTED | EventMask::JOB_ERROR);
    for i in 0..3 {
        add(&s, &format!("queued-{i}"), Work::default(), None).await;
    }
    let huge = Work {
        pad: "x".repeat(2 << 20),
        ..Work::default()
    };
    add(&s, "huge", huge, None).await;
    let (mut submitted, mut errors) = (0, Vec::new());
    while submitted + errors.len() < 3 + 2 {
        match next(&mut events, Duration::from_secs(30)).await {
            Event::JobSubmitted(_) => submitted += 1,
            Event::JobError(e) => errors.push((e.job_id.to_string(), e.error.unwrap().chain())),
            other => panic!("unexpected {other:?}"),
        }
    }
    // Three runs submitted, the third refused by the full queue; the huge one refused
    // before submission.
    assert_eq!(submitted, 3, "{errors:?}");
    errors.sort();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(errors[0].0, "huge");
    assert!(
        errors[0].1.contains("over the broker's limit"),
        "{errors:?}"
    );
    assert!(errors[1].0.starts_with("queued-"));
    assert!(errors[1].1.contains("queue is full"), "{errors:?}");
    cleanup(s, &url, &ns).await;
}

/// A private `nats-server` with JetStream on a free port, killed when dropped.
struct PrivateNats {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl PrivateNats {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut nats = PrivateNats {
            child: None,
            port,
            dir: tempfile::tempdir().unwrap(),
        };
        nats.restart();
        nats
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn restart(&mut self) {
        let server =
            std::env::var("SCHEDULER_TEST_NATS_SERVER").unwrap_or_else(|_| "nats-server".into());
        let child = Command::new(&server)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {server} ({e}): install nats-server 2.9+ or set \
                     SCHEDULER_TEST_NATS_SERVER to its path"
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the private nats-server did not start"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restarted_mid_run_loses_nothing() {
    let mut nats = PrivateNats::start();
    let (url, ns) = (nats.url(), namespace("restart"));
    let dir = tempfile::tempdir().unwrap();
    let s = scheduler(executor(&url, &ns)).await;
    let mut events = s.subscribe(EventMask::JOB_EXECUTED | EventMask::JOB_ERROR);
    let worker = spawn_worker(&url, &ns, "worker-1", None);
    let long = Work {
        ms: 1_500,
        tag: "long".into(),
        dir: Some(dir.path().display().to_string()),
        ..Work::default()
    };
    add(&s, "long", long, None).await;
    wait_for_file(dir.path(), "long.worker-1", Duration::from_secs(30)).await;
    nats.kill();
    // The client notices the lost connection within moments; a run submitted while the
    // broker is away is an error event, not a silent loss.
    tokio::time::sleep(Duration::from_millis(300)).await;
    add(&s, "while-down", Work::default(), None).await;
    let down = next(&mut events, Duration::from_secs(30)).await;
    let Event::JobError(down) = down else {
        panic!("expected JobError for the run submitted while down, got {down:?}");
    };
    assert_eq!(&*down.job_id, "while-down");
    nats.restart();
    // The run in progress finishes, its outcome is published once the worker reconnects,
    // and a run submitted after the restart runs too.
    let long = next(&mut events, Duration::from_secs(60)).await;
    assert_eq!(ran(&long).worker, "worker-1");
    if let Event::JobExecuted(e) = &long {
        assert_eq!(&*e.job_id, "long");
    }
    add(&s, "after", Work::default(), None).await;
    loop {
        match next(&mut events, Duration::from_secs(60)).await {
            // A duplicate of `long` is allowed (at least once); nothing else is.
            Event::JobExecuted(e) if &*e.job_id == "long" => {}
            Event::JobExecuted(e) => {
                assert_eq!(&*e.job_id, "after");
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    worker.stop();
    s.shutdown(false).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_past_its_timeout_is_stopped_by_the_worker_and_reported() {
    let (url, ns) = (nats_url(), namespace("timeout"));
    let s = scheduler(executor(&url, &ns)).await;
    let mut events = s.subscribe(EventMask::JOB_EXECUTED | EventMask::JOB_ERROR);
    let worker = spawn_worker(&url, &ns, "worker-1", None);
    let function = jobs::registry()
        .target(
            "work",
            serde_json::to_value(Work {
                ms: 30_000,
                ..Work::default()
            })
            .unwrap(),
        )
        .unwrap();
    s.add_job(
        JobSpec::new(function, DateTrigger::new(now()))
            .id("slow")
            .timeout(Some(Duration::from_millis(300))),
    )
    .await
    .unwrap();
    let Event::JobError(e) = next(&mut events, Duration::from_secs(20)).await else {
        panic!("expected a JobError for the timeout");
    };
    let failure = e.error.unwrap();
    assert_eq!(
        failure.kind(),
        scheduler_core::FailureKind::TimedOut,
        "{}",
        failure.chain()
    );
    // The worker is free again at once: the cancelled run does not hold its slot.
    add(&s, "next", Work::default(), None).await;
    assert_eq!(
        ran(&next(&mut events, Duration::from_secs(20)).await).worker,
        "worker-1"
    );
    worker.stop();
    cleanup(s, &url, &ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outcomes_that_arrive_while_the_scheduler_is_down_are_reported_when_it_is_back() {
    let (url, ns) = (nats_url(), namespace("offline"));
    let dir = tempfile::tempdir().unwrap();
    let first = scheduler(executor(&url, &ns)).await;
    let work = Work {
        ms: 500,
        tag: "offline".into(),
        dir: Some(dir.path().display().to_string()),
        ..Work::default()
    };
    add(&first, "offline", work, None).await;
    let worker = spawn_worker(&url, &ns, "worker-1", None);
    wait_for_file(dir.path(), "offline.worker-1", Duration::from_secs(30)).await;
    // Gone before the outcome comes back.
    first.shutdown(false).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let second = scheduler(executor(&url, &ns)).await;
    let mut events = second.subscribe(EventMask::JOB_EXECUTED | EventMask::JOB_ERROR);
    let Event::JobExecuted(e) = next(&mut events, Duration::from_secs(30)).await else {
        panic!("expected the kept outcome");
    };
    assert_eq!(&*e.job_id, "offline");
    worker.stop();
    cleanup(second, &url, &ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closure_job_is_refused_when_added() {
    let (url, ns) = (nats_url(), namespace("closure"));
    let s = scheduler(executor(&url, &ns)).await;
    let closure = scheduler_core::JobTarget::closure("local", || {});
    let refused = s
        .add_job(JobSpec::new(closure, DateTrigger::new(now())))
        .await
        .expect_err("a remote executor cannot run a closure");
    assert_eq!(
        refused.kind(),
        scheduler_core::ErrorKind::NotPersistable,
        "{refused}"
    );
    cleanup(s, &url, &ns).await;
}

#[test]
fn credentials_and_keys_never_show_in_debug_output() {
    let executor = RemoteExecutor::builder("nats://alice:hunter2@broker:4222", "ns")
        .signing_key("the signing key")
        .build()
        .unwrap();
    let worker = Worker::builder("nats://alice:hunter2@broker:4222", "ns", jobs::registry())
        .signing_key("the signing key")
        .build()
        .unwrap();
    for shown in [format!("{executor:?}"), format!("{worker:?}")] {
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("signing key"), "{shown}");
    }
}

#[test]
fn bad_settings_are_config_errors() {
    for namespace in ["", "a.b", "a b", "x>", &"n".repeat(65)] {
        let err = RemoteExecutor::builder("nats://127.0.0.1:4222", namespace)
            .build()
            .unwrap_err();
        assert_eq!(
            err.kind(),
            scheduler_core::ErrorKind::Config,
            "{namespace:?}"
        );
    }
    let err = RemoteExecutor::builder("nats://127.0.0.1:4222", "ok")
        .queue_capacity(0)
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), scheduler_core::ErrorKind::Config);
    let err = Worker::builder("nats://127.0.0.1:4222", "ok", jobs::registry())
        .concurrency(0)
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), scheduler_core::ErrorKind::Config);
}

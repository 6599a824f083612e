//! The executors against a real scheduler: concurrency limits, worker threads, shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use executors::{ThreadPoolExecutor, TokioExecutor};
use scheduler_core::testkit::{ManualClock, StepTrigger};
use scheduler_core::{
    ErrorKind, Event, EventMask, EventStream, Executor, JobRegistry, JobSpec, JobTarget, Scheduler,
};

#[cfg(all(target_os = "linux", feature = "process-pool"))]
mod process_pool;
mod thread_pool;
mod timeouts;

fn t(secs: i64) -> scheduler_core::chrono::DateTime<scheduler_core::chrono::Utc> {
    scheduler_core::chrono::DateTime::from_timestamp(1_767_225_600 + secs, 0).unwrap()
}

fn once(at: scheduler_core::chrono::DateTime<scheduler_core::chrono::Utc>) -> StepTrigger {
    StepTrigger {
        start: at,
        step_secs: 1_000_000,
    }
}

/// Counts how many runs are inside the job at once, and the most seen.
///
/// Runs that enter before `want` runs were ever inside at once wait (up to 5 s) for the others,
/// so an executor that allows `want` concurrent runs always shows exactly `want`, however the
/// machine schedules its threads, and one that allows fewer or more shows that instead.
#[derive(Debug, Default)]
struct Overlap {
    want: usize,
    now: AtomicUsize,
    max: AtomicUsize,
}

const RENDEZVOUS: Duration = Duration::from_secs(5);

impl Overlap {
    fn new(want: usize) -> Self {
        Overlap {
            want,
            ..Overlap::default()
        }
    }
    fn enter(&self) {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(n, Ordering::SeqCst);
    }
    fn reached(&self) -> bool {
        self.max.load(Ordering::SeqCst) >= self.want
    }
    fn enter_blocking(&self) {
        self.enter();
        let deadline = std::time::Instant::now() + RENDEZVOUS;
        while !self.reached() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    async fn enter_async(&self) {
        self.enter();
        let deadline = std::time::Instant::now() + RENDEZVOUS;
        while !self.reached() && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    fn leave(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn next(events: &mut EventStream, mask: EventMask) -> Event {
    loop {
        let e = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .expect("an event within 10 s")
            .expect("the bus is open");
        if e.code().intersects(mask) {
            return e;
        }
    }
}

fn scheduler(executor: impl Executor, registry: JobRegistry) -> (Scheduler, ManualClock) {
    let clock = ManualClock::new(t(0));
    let scheduler = Scheduler::builder()
        .clock(clock.clone())
        .registry(registry)
        .jobstore("default", jobstore_memory::MemoryJobStore::new())
        .executor("default", executor)
        .build()
        .expect("scheduler builds");
    (scheduler, clock)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_executor_respects_its_concurrency_limit() {
    let overlap = Arc::new(Overlap::new(3));
    let registry = JobRegistry::new();
    let o = overlap.clone();
    let work = registry.register_async("work", move |_: u32| {
        let o = o.clone();
        async move {
            o.enter_async().await;
            tokio::time::sleep(Duration::from_millis(20)).await;
            o.leave();
        }
    });
    let (s, _) = scheduler(TokioExecutor::with_max_concurrency(3).unwrap(), registry);
    let mut events = s.subscribe(EventMask::JOB_EXECUTED);
    s.start().await.unwrap();
    for i in 0..12 {
        s.add_job(JobSpec::new(work.call(i), once(t(0))).misfire_grace_time(None))
            .await
            .unwrap();
    }
    for _ in 0..12 {
        next(&mut events, EventMask::JOB_EXECUTED).await;
    }
    assert_eq!(overlap.max.load(Ordering::SeqCst), 3);
    s.shutdown(true).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thread_pool_runs_at_most_max_workers_at_once_and_survives_panics() {
    let overlap = Arc::new(Overlap::new(2));
    let registry = JobRegistry::new();
    let o = overlap.clone();
    let work = registry.register_sync("work", move |i: u32| {
        o.enter_blocking();
        std::thread::sleep(Duration::from_millis(20));
        o.leave();
        if i.is_multiple_of(3) {
            panic!("job {i} panicked");
        }
        Ok::<_, std::convert::Infallible>(std::thread::current().name().map(str::to_owned))
    });
    let (s, _) = scheduler(ThreadPoolExecutor::new(2).unwrap(), registry);
    let mut events = s.subscribe(EventMask::JOB_EXECUTED | EventMask::JOB_ERROR);
    s.start().await.unwrap();
    for i in 0..9 {
        s.add_job(JobSpec::new(work.call(i), once(t(0))).misfire_grace_time(None))
            .await
            .unwrap();
    }
    let (mut ok, mut failed) = (0, 0);
    for _ in 0..9 {
        match next(&mut events, EventMask::JOB_EXECUTED | EventMask::JOB_ERROR).await {
            Event::JobExecuted(e) => {
                ok += 1;
                let thread = e.retval.as_str().unwrap().to_owned();
                assert!(thread.starts_with("default-worker-"), "{thread}");
            }
            Event::JobError(e) => {
                failed += 1;
                assert!(e.error.unwrap().panicked());
            }
            _ => unreachable!(),
        }
    }
    assert_eq!((ok, failed), (6, 3));
    assert_eq!(overlap.max.load(Ordering::SeqCst), 2);
    s.shutdown(true).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thread_pool_runs_async_jobs_and_shutdown_waits_for_the_queue() {
    let done = Arc::new(AtomicUsize::new(0));
    let registry = JobRegistry::new();
    let d = done.clone();
    let work = registry.register_async("work", move |_: u32| {
        let d = d.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            d.fetch_add(1, Ordering::SeqCst);
        }
    });
    let (s, _) = scheduler(ThreadPoolExecutor::new(1).unwrap(), registry);
    let mut events = s.subscribe(EventMask::JOB_SUBMITTED);
    s.start().await.unwrap();
    for i in 0..5 {
        s.add_job(JobSpec::new(work.call(i), once(t(0))).misfire_grace_time(None))
            .await
            .unwrap();
    }
    for _ in 0..5 {
        next(&mut events, EventMask::JOB_SUBMITTED).await;
    }
    s.shutdown(true).await.unwrap();
    assert_eq!(
        done.load(Ordering::SeqCst),
        5,
        "shutdown(wait) returned before the queue ran"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thread_pool_with_a_full_queue_refuses_runs_with_an_error_event_and_loses_none() {
    let registry = JobRegistry::new();
    let (entered, started) = std::sync::mpsc::channel::<()>();
    let (open, gate) = std::sync::mpsc::channel::<()>();
    let entered = std::sync::Mutex::new(entered);
    let gate = std::sync::Mutex::new(gate);
    let blocker = registry.register_sync("blocker", move |_: ()| {
        let _ = entered.lock().unwrap().send(());
        let _ = gate.lock().unwrap().recv_timeout(Duration::from_secs(10));
    });
    let quick = registry.register_sync("quick", |_: ()| ());
    let pool = ThreadPoolExecutor::new(1).unwrap().queue_capacity(1);
    let (s, _) = scheduler(pool, registry);
    let mut events = s.subscribe(EventMask::JOB_EXECUTED | EventMask::JOB_ERROR);
    s.start().await.unwrap();
    s.add_job(JobSpec::new(blocker.call(()), once(t(0))).id("blocker"))
        .await
        .unwrap();
    tokio::task::spawn_blocking(move || started.recv_timeout(Duration::from_secs(10)))
        .await
        .unwrap()
        .expect("the blocker runs");
    // Added while paused, so the ten come due in one pass and reach the pool in one batch.
    s.pause().unwrap();
    let added = s
        .add_jobs((0..10).map(|i| {
            JobSpec::new(quick.call(()), once(t(0)))
                .id(format!("j{i}"))
                .misfire_grace_time(None)
        }))
        .await
        .unwrap();
    assert!(added.iter().all(Result::is_ok));
    s.resume().unwrap();
    // The only worker is busy and the queue holds one run: the others are refused at once,
    // each with a JobError, before the blocker lets go.
    let mut refused = 0;
    while refused < 9 {
        match next(&mut events, EventMask::JOB_ERROR).await {
            Event::JobError(e) => {
                let failure = e.error.expect("a JobError carries its failure");
                assert_eq!(failure.kind(), scheduler_core::FailureKind::Refused);
                assert!(failure.to_string().contains("queue is full"), "{failure}");
                refused += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    open.send(()).unwrap();
    let mut executed = 0;
    while executed < 2 {
        match next(&mut events, EventMask::JOB_EXECUTED | EventMask::JOB_ERROR).await {
            Event::JobExecuted(_) => executed += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    s.shutdown(true).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_due_together_are_each_submitted_run_and_removed_once_in_that_order() {
    const JOBS: usize = 300;
    type Make = Box<dyn Fn() -> Arc<dyn scheduler_core::DynExecutor>>;
    let executors: [(&str, Make); 2] = [
        ("tokio", Box::new(|| Arc::new(TokioExecutor::new()))),
        (
            "threads",
            Box::new(|| Arc::new(ThreadPoolExecutor::new(4).unwrap())),
        ),
    ];
    for (name, executor) in executors {
        let registry = JobRegistry::new();
        let tick = registry.register_sync("tick", |_: usize| ());
        let scheduler = Scheduler::builder()
            .clock(ManualClock::new(t(0)))
            .registry(registry)
            .jobstore("default", jobstore_memory::MemoryJobStore::new())
            .executor_dyn("default", executor())
            .build()
            .unwrap();
        let mask = EventMask::JOB_SUBMITTED | EventMask::JOB_EXECUTED | EventMask::JOB_REMOVED;
        let mut events = scheduler.subscribe(mask);
        scheduler.start_paused().await.unwrap();
        // Due at once: one pass hands them over in chunks, each chunk as one batch.
        let added = scheduler
            .add_jobs((0..JOBS).map(|i| {
                JobSpec::new(tick.call(i), triggers::DateTrigger::new(t(0)))
                    .id(format!("j{i}"))
                    .misfire_grace_time(None)
            }))
            .await
            .unwrap();
        assert!(added.iter().all(Result::is_ok), "{name}");
        scheduler.resume().unwrap();
        // Per job: submitted, then removed (its date trigger is done); executed once.
        let mut seen: std::collections::HashMap<String, Vec<&str>> = Default::default();
        for _ in 0..3 * JOBS {
            let (id, what) = match next(&mut events, mask).await {
                Event::JobSubmitted(e) => (e.job_id, "submitted"),
                Event::JobExecuted(e) => (e.job_id, "executed"),
                Event::JobRemoved(e) => (e.job_id, "removed"),
                other => panic!("{name}: unexpected {other:?}"),
            };
            seen.entry(id.to_string()).or_default().push(what);
        }
        assert_eq!(seen.len(), JOBS, "{name}");
        for (id, mut what) in seen {
            let submitted = what.iter().position(|w| *w == "submitted");
            let removed = what.iter().position(|w| *w == "removed");
            assert!(submitted < removed, "{name}: {id}: {what:?}");
            what.sort_unstable();
            assert_eq!(what, ["executed", "removed", "submitted"], "{name}: {id}");
        }
        scheduler.shutdown(true).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saturated_pool_turns_late_runs_into_misses() {
    let registry = JobRegistry::new();
    let gate = Arc::new(std::sync::Barrier::new(2));
    let g = gate.clone();
    let blocker = registry.register_sync("blocker", move |_: ()| {
        g.wait();
    });
    let quick = registry.register_sync("quick", |_: ()| ());
    let (s, clock) = scheduler(ThreadPoolExecutor::new(1).unwrap(), registry);
    let mut events = s.subscribe(EventMask::JOB_EXECUTED | EventMask::JOB_MISSED);
    s.start().await.unwrap();
    s.add_job(JobSpec::new(blocker.call(()), once(t(0))).id("blocker"))
        .await
        .unwrap();
    s.add_job(JobSpec::new(quick.call(()), once(t(0))).id("quick"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The quick job waits in the queue while the only worker is blocked; 5 s pass.
    clock.set(t(5));
    gate.wait();
    let mut outcomes = [
        next(&mut events, EventMask::JOB_EXECUTED | EventMask::JOB_MISSED).await,
        next(&mut events, EventMask::JOB_EXECUTED | EventMask::JOB_MISSED).await,
    ];
    outcomes.sort_by_key(|e| e.job_id().unwrap().to_owned());
    assert_eq!(outcomes[0].code(), EventMask::JOB_EXECUTED);
    assert_eq!(outcomes[1].code(), EventMask::JOB_MISSED, "{}", outcomes[1]);
    s.shutdown(true).await.unwrap();
}

#[tokio::test]
async fn executors_refuse_work_when_not_started_and_bad_sizes() {
    assert_eq!(
        ThreadPoolExecutor::new(0).unwrap_err().kind(),
        ErrorKind::Config
    );
    assert_eq!(
        TokioExecutor::with_max_concurrency(0).unwrap_err().kind(),
        ErrorKind::Config
    );
    let job = JobSpec::new(JobTarget::closure("c", || ()), once(t(0)));
    let (s, _) = scheduler(TokioExecutor::new(), JobRegistry::new());
    s.start().await.unwrap();
    let job = s.add_job(job.paused()).await.unwrap();
    let run = scheduler_core::JobRun {
        job,
        jobstore: "default".into(),
        run_times: t(0).into(),
    };
    let idle = TokioExecutor::new();
    assert_eq!(
        idle.submit(run.clone()).unwrap_err().kind(),
        ErrorKind::SchedulerState
    );
    let idle = ThreadPoolExecutor::default();
    assert_eq!(idle.max_workers(), 10);
    assert_eq!(
        idle.submit(run).unwrap_err().kind(),
        ErrorKind::SchedulerState
    );
    s.shutdown(false).await.unwrap();
}

#[test]
fn configuration_builds_executors_and_names_bad_options() {
    let components = scheduler_core::Components::new();
    executors::register(&components);
    for doc in [
        r#"{"type": "tokio"}"#,
        r#"{"type": "asyncio", "max_concurrency": 4}"#,
        r#"{"type": "threadpool", "max_workers": 3}"#,
    ] {
        let entry: scheduler_core::ComponentConfig = serde_json::from_str(doc).unwrap();
        components.build_executor("x", &entry).unwrap();
    }
    let entry: scheduler_core::ComponentConfig =
        serde_json::from_str(r#"{"type": "threadpool", "workers": 3}"#).unwrap();
    let err = components.build_executor("x", &entry).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("workers"), "{err}");
}

#[cfg(all(unix, feature = "process-pool"))]
#[test]
fn configuration_builds_process_pools_and_names_bad_options() {
    let components = scheduler_core::Components::new();
    executors::register(&components);
    let build = |doc: &str| {
        let entry: scheduler_core::ComponentConfig = serde_json::from_str(doc).unwrap();
        components.build_executor("x", &entry)
    };
    build(r#"{"type": "processpool"}"#).unwrap();
    build(
        r#"{"type": "processpool", "max_workers": 2, "recycle_after": 100,
            "queue_capacity": 50, "worker_program": "/usr/bin/worker", "start_timeout": 2.5}"#,
    )
    .unwrap();
    for bad in [
        r#"{"type": "processpool", "max_workers": 0}"#,
        r#"{"type": "processpool", "start_timeout": -1}"#,
        r#"{"type": "processpool", "max_tasks": 3}"#,
    ] {
        assert_eq!(build(bad).unwrap_err().kind(), ErrorKind::Config, "{bad}");
    }
}

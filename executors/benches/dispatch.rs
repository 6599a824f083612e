//! Scenario 2 of `cargo xtask bench`, dispatch throughput: N date jobs due at the same
//! instant, from the due instant to the last completion. `cargo bench -p executors` runs the
//! default cases; `cargo xtask bench` runs `dispatch --executor tokio|threads [--workers W]
//! --jobs N [--subscribe]`. Figures are printed, not asserted: a human line, then one JSON
//! line per figure (the format is described in `docs/benchmarks.md`).
//!
//! Jobs are added with `Scheduler::add_jobs` while the scheduler is paused, with no misfire
//! grace limit, then it resumes, as `xtask/apscheduler/dispatch.py` does on APScheduler; when
//! adding took longer than the lead (a loaded machine), the clock starts at the resume
//! instead of the due instant.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::TimeDelta;
use executors::{ThreadPoolExecutor, TokioExecutor};
use jobstore_memory::MemoryJobStore;
use scheduler_core::{
    Clock, Delivery, DynExecutor, EventMask, JobRegistry, JobSpec, Scheduler, SystemClock,
};
use triggers::DateTrigger;

/// Jobs per `add_jobs` call.
const BATCH: usize = 10_000;

#[derive(Clone, Copy)]
struct Case {
    threads: Option<usize>,
    jobs: usize,
    subscribe: bool,
}

impl Case {
    fn executor(&self) -> Arc<dyn DynExecutor> {
        match self.threads {
            Some(workers) => Arc::new(ThreadPoolExecutor::new(workers).expect("workers > 0")),
            None => Arc::new(TokioExecutor::new()),
        }
    }

    fn name(&self) -> String {
        let executor = match self.threads {
            Some(workers) => format!("thread pool of {workers}"),
            None => "tokio executor".to_owned(),
        };
        let events = if self.subscribe {
            " + JobExecuted subscriber"
        } else {
            ""
        };
        format!("{executor}{events}")
    }
}

/// Runs `case` once; answers executions per second.
fn run(runtime: &tokio::runtime::Runtime, case: Case) -> f64 {
    let jobs = case.jobs;
    let done = Arc::new(AtomicUsize::new(0));
    let last_done: Arc<Mutex<Option<Instant>>> = Arc::default();
    let registry = JobRegistry::new();
    let (counter, last) = (done.clone(), last_done.clone());
    let tick = registry.register_async("tick", move |_: u32| {
        // The job that completes the count is the last to finish: it stamps the time, so
        // the figure does not depend on how often the bench looks.
        if counter.fetch_add(1, Ordering::AcqRel) + 1 == jobs {
            *last.lock().expect("no panics while holding") = Some(Instant::now());
        }
        async {}
    });
    runtime.block_on(async {
        let scheduler = Scheduler::builder()
            .registry(registry)
            .jobstore("default", MemoryJobStore::new())
            .executor_dyn("default", case.executor())
            .build()
            .expect("scheduler builds");
        let events = case.subscribe.then(|| {
            // Room for every event of the run: the figure is for lossless delivery.
            let delivery = Delivery::drop_oldest(jobs);
            let mut stream = scheduler.subscribe_with(EventMask::JOB_EXECUTED, delivery);
            tokio::spawn(async move {
                let mut seen = 0usize;
                while seen < jobs {
                    match tokio::time::timeout(Duration::from_secs(30), stream.recv()).await {
                        Ok(Some(_)) => seen += 1,
                        _ => break,
                    }
                }
                seen
            })
        });
        scheduler.start_paused().await.expect("scheduler starts");
        // Far enough ahead to add every job before it is due.
        let lead = Duration::from_millis(300) + Duration::from_micros(5) * jobs as u32;
        let due = SystemClock.now() + TimeDelta::from_std(lead).expect("small");
        let due_instant = Instant::now() + lead;
        for first in (0..jobs).step_by(BATCH) {
            let specs = (first..(first + BATCH).min(jobs)).map(|i| {
                JobSpec::new(tick.call(i as u32), DateTrigger::new(due)).misfire_grace_time(None)
            });
            let answers = scheduler.add_jobs(specs).await.expect("scheduler usable");
            for answer in answers {
                answer.expect("job added");
            }
        }
        let start = due_instant.max(Instant::now());
        scheduler.resume().expect("scheduler resumes");
        while done.load(Ordering::Acquire) < jobs {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let finished = last_done
            .lock()
            .expect("no panics while holding")
            .expect("stamped by the last job");
        let elapsed = finished.saturating_duration_since(start);
        let rate = jobs as f64 / elapsed.as_secs_f64();
        println!(
            "{:<44} {jobs:>8} jobs  last done {:>8.1} ms after the due instant  {rate:>10.0} executions/s",
            case.name(),
            elapsed.as_secs_f64() * 1e3,
        );
        scheduler.shutdown(true).await.expect("scheduler stops");
        if let Some(events) = events {
            let seen = events.await.expect("subscriber task");
            assert_eq!(seen, jobs, "events were lost");
        }
        rate
    })
}

/// One figure in the line format of `cargo xtask bench`.
fn emit(case: Case, rate: f64) {
    let executor = match case.threads {
        Some(workers) => format!("threads{workers}"),
        None => "tokio".to_owned(),
    };
    let events = if case.subscribe { "_events" } else { "" };
    let line = serde_json::json!({
        "id": format!("dispatch.{executor}{events}.{}", case.jobs),
        "scenario": "2. jobs due at one instant",
        "title": format!("{} jobs due at once, {}", count(case.jobs), case.name()),
        "params": "memory store; misfire grace: none; due instant to last completion",
        "metric": "executions/s",
        "better": "higher",
        "value": rate,
    });
    println!("{line}");
}

/// `100000` as `100k`.
fn count(n: usize) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    if let Some(executor) = value("--executor") {
        let workers = value("--workers").map_or(20, |w| w.parse().expect("--workers N"));
        let case = Case {
            threads: (executor == "threads").then_some(workers),
            jobs: value("--jobs")
                .and_then(|n| n.parse().ok())
                .expect("--jobs N"),
            subscribe: args.iter().any(|a| a == "--subscribe"),
        };
        emit(case, run(&runtime, case));
        return;
    }
    let cases = [
        Case {
            threads: None,
            jobs: 100_000,
            subscribe: false,
        },
        Case {
            threads: None,
            jobs: 100_000,
            subscribe: true,
        },
        Case {
            threads: Some(20),
            jobs: 100_000,
            subscribe: false,
        },
    ];
    for case in cases {
        let mut rates: Vec<f64> = (0..3).map(|_| run(&runtime, case)).collect();
        rates.sort_by(f64::total_cmp);
        println!(
            "{:<44} median of 3: {:.0} executions/s\n",
            case.name(),
            rates[1]
        );
        emit(case, rates[1]);
    }
}

//! CPU-bound jobs on a process pool: prime counting spread over the cores, one job that
//! crashes its worker on purpose and one that hangs past its timeout. The scheduler reports
//! both as error events, replaces the workers, and carries on; the example ends by itself,
//! with exit code 0 and no worker process left. Unix only.
//!
//! ```sh
//! cargo run -p examples --example process_pool --features process_pool
//! ```
//!
//! Workers re-run this same program: `main` calls `worker_main` first thing, which turns
//! the process into a worker when the pool started it as one and returns at once otherwise.

use std::sync::mpsc;
use std::time::Duration;

use executors::process_pool::{ProcessPoolExecutor, worker_main};
use jobstore_memory::MemoryJobStore;
use scheduler_core::{
    BackgroundScheduler, Event, EventMask, FailureKind, JobRegistry, JobSpec, Scheduler,
};
use triggers::DateTrigger;

/// The job functions, registered the same way in the scheduler and in its workers.
fn registry() -> JobRegistry {
    let registry = JobRegistry::new();
    registry.register_sync("count_primes", |below: u64| {
        let primes = (2..below)
            .filter(|&n| (2..).take_while(|d| d * d <= n).all(|d| n % d != 0))
            .count();
        Ok::<_, std::convert::Infallible>(primes as u64)
    });
    registry.register_sync("crash", |(): ()| -> () {
        eprintln!("    (worker {}: aborting on purpose)", std::process::id());
        std::process::abort()
    });
    registry.register_sync("hang", |(): ()| -> () {
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    registry
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let registry = registry();
    // A worker never gets past this line.
    worker_main(&registry);

    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let scheduler = BackgroundScheduler::new(
        Scheduler::builder()
            .registry(registry.clone())
            .jobstore("default", MemoryJobStore::new())
            .executor("default", ProcessPoolExecutor::new(cores)?),
    )?;
    let (outcomes, finished) = mpsc::channel();
    scheduler.add_listener(
        move |event| {
            match event {
                Event::JobExecuted(run) => {
                    println!("[executed] {}: {}", run.job_id, run.retval);
                }
                Event::JobError(run) => {
                    let failure = run.error.as_ref().map(|f| (f.kind(), f.chain()));
                    if let Some((kind, chain)) = failure {
                        println!("[error: {kind}] {}: {chain}", run.job_id);
                    }
                }
                _ => return,
            }
            let _ = outcomes.send(event.clone());
        },
        EventMask::JOB_EXECUTED | EventMask::JOB_ERROR,
    );
    scheduler.start()?;
    let now = scheduler.scheduler().clock().now();

    let jobs = 2 * cores;
    for i in 0..jobs {
        let below = 200_000 + 50_000 * i as u64;
        let target = registry.target("count_primes", below.into())?;
        scheduler.add_job(
            JobSpec::new(target, DateTrigger::new(now))
                .id(format!("primes-below-{below}"))
                // Queued behind the others, however late: none is missed.
                .misfire_grace_time(None),
        )?;
    }
    scheduler.add_job(
        JobSpec::new(registry.target("crash", ().into())?, DateTrigger::new(now))
            .id("crash")
            .misfire_grace_time(None),
    )?;
    scheduler.add_job(
        JobSpec::new(registry.target("hang", ().into())?, DateTrigger::new(now))
            .id("hang")
            .misfire_grace_time(None)
            .timeout(Some(Duration::from_secs(2))),
    )?;
    println!("{} jobs on {cores} worker processes", jobs + 2);

    let (mut executed, mut crashed, mut timed_out) = (0, 0, 0);
    for _ in 0..jobs + 2 {
        match finished.recv_timeout(Duration::from_secs(120))? {
            Event::JobExecuted(_) => executed += 1,
            Event::JobError(run) => match run.error.map(|f| f.kind()) {
                Some(FailureKind::WorkerLost) => crashed += 1,
                Some(FailureKind::TimedOut) => timed_out += 1,
                other => return Err(format!("unexpected failure: {other:?}").into()),
            },
            _ => unreachable!("the listener sends outcomes only"),
        }
    }
    // Drains the pool: every worker is stopped and waited for.
    scheduler.shutdown(true)?;
    println!("{executed} executed, {crashed} crashed, {timed_out} timed out; all workers stopped");
    if (executed, crashed, timed_out) != (jobs, 1, 1) {
        return Err("expected every prime job to run, one crash and one timeout".into());
    }
    Ok(())
}

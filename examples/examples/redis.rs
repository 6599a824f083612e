//! Jobs that outlive the process, in Redis: a first scheduler adds jobs and stops; a second
//! one, started on the same keys, finds them and carries on. Ends by itself and leaves its
//! jobs in Redis for a look with `redis-cli`.
//!
//! ```sh
//! cargo run -p examples --example redis --features redis -- redis://127.0.0.1:6379/
//! ```
//!
//! The URL (first argument) defaults to the local server. The keys are `example.jobs` (a
//! hash: job id -> JSON record), `example.run_times` (a sorted set: job id -> next run time
//! in microseconds since 1970) and `example.revisions`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::sleep;
use std::time::Duration;

use chrono::TimeDelta;
use executors::TokioExecutor;
use jobstore_redis::RedisRecords;
use scheduler_core::{
    BackgroundScheduler, Event, EventMask, JobFunction, JobRegistry, JobSpec, Scheduler,
    TriggerRegistry,
};
use triggers::{DateTrigger, IntervalTrigger};

const PREFIX: &str = "example.";

/// The job functions, by the names their jobs are stored with.
struct Functions {
    heartbeat: JobFunction<()>,
    send_reminder: JobFunction<String>,
}

/// What both processes know: the job functions and the trigger kinds.
fn registries(reminders: &Arc<AtomicUsize>) -> (JobRegistry, TriggerRegistry, Functions) {
    let registry = JobRegistry::new();
    let heartbeat = registry.register_sync("heartbeat", |(): ()| println!("    heartbeat"));
    let sent = reminders.clone();
    let send_reminder = registry.register_sync("send_reminder", move |to: String| {
        sent.fetch_add(1, Ordering::Relaxed);
        println!("    reminder sent to {to}");
    });
    let triggers = TriggerRegistry::new();
    triggers::register(&triggers);
    let functions = Functions {
        heartbeat,
        send_reminder,
    };
    (registry, triggers, functions)
}

/// A scheduler on the Redis store at `url`, printing the events that show jobs running.
fn scheduler(
    url: &str,
    reminders: &Arc<AtomicUsize>,
) -> Result<(BackgroundScheduler, Functions), Box<dyn std::error::Error>> {
    let (registry, triggers, functions) = registries(reminders);
    let store = RedisRecords::builder(url).prefix(PREFIX).build()?;
    let scheduler = BackgroundScheduler::new(
        Scheduler::builder()
            .registry(registry)
            .triggers(triggers)
            .jobstore("default", store)
            .executor("default", TokioExecutor::new()),
    )?;
    scheduler.add_listener(
        |event: &Event| println!("[event] {event}"),
        EventMask::JOB_EXECUTED
            | EventMask::JOB_MISSED
            | EventMask::JOB_ERROR
            | EventMask::SCHEDULER_ERROR,
    );
    Ok((scheduler, functions))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| jobstore_redis::DEFAULT_URL.to_owned());
    println!("Redis at {}", jobstore_redis::redact(&url));
    let reminders = Arc::new(AtomicUsize::new(0));

    println!("--- first process: adds two jobs, runs 2.5 s, stops");
    let (first, functions) = scheduler(&url, &reminders)?;
    first.start()?;
    let now = first.scheduler().clock().now();
    // `replace_existing`: running the example again replaces its jobs instead of failing.
    let every_2s = IntervalTrigger::builder()
        .every(Duration::from_secs(2))
        .build_at(now)?;
    first.add_job(
        JobSpec::new(functions.heartbeat.call(()), every_2s)
            .id("heartbeat")
            .replace_existing(true),
    )?;
    first.add_job(
        JobSpec::new(
            functions.send_reminder.call("ada@example.com".into()),
            DateTrigger::new(now + TimeDelta::seconds(4)),
        )
        .id("reminder")
        .name("remind Ada")
        .replace_existing(true),
    )?;
    print!("{}", first.jobs_table(None)?);
    sleep(Duration::from_millis(2500));
    first.shutdown(true)?;
    drop(first);

    println!("--- second process: finds the jobs in Redis and carries on for 3 s");
    let (second, _) = scheduler(&url, &reminders)?;
    second.start()?;
    print!("{}", second.jobs_table(None)?);
    sleep(Duration::from_secs(3));
    print!("{}", second.jobs_table(None)?);
    second.shutdown(true)?;

    let sent = reminders.load(Ordering::Relaxed);
    if sent != 1 {
        return Err(format!("the reminder ran {sent} times, expected once").into());
    }
    println!("--- the heartbeat job stays in Redis; look at it with:");
    println!("redis-cli HGETALL {PREFIX}jobs");
    println!("redis-cli ZRANGE {PREFIX}run_times 0 -1 WITHSCORES");
    println!("redis-cli HGETALL {PREFIX}revisions");
    println!("(remove it with: redis-cli DEL {PREFIX}jobs {PREFIX}run_times {PREFIX}revisions)");
    Ok(())
}

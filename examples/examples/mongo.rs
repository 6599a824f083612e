//! Jobs kept in MongoDB carry on across a restart. Ends by itself, leaving its jobs in the
//! collection for a look with `mongosh`.
//!
//! ```sh
//! cargo run -p examples --example mongo --features mongo -- "mongodb://127.0.0.1:27017/?directConnection=true"
//! ```
//!
//! The first scheduler adds a heartbeat every second and a one-off reminder 4 seconds in, runs
//! for 2 seconds and shuts down. A second scheduler, a new process as far as the store can
//! tell, starts on the same collection, finds both jobs there and runs them on.

use std::time::Duration;

use chrono::TimeDelta;
use executors::TokioExecutor;
use jobstore_mongo::{MongoJobStore, MongoJobStoreExt};
use scheduler_core::{EventMask, JobFunction, JobRegistry, JobSpec, Scheduler};
use triggers::{DateTrigger, IntervalTrigger};

const DATABASE: &str = "apscheduler";
const COLLECTION: &str = "example_jobs";

/// A scheduler on the collection, its job functions, and the URL as it may be shown.
struct Setup {
    scheduler: Scheduler,
    heartbeat: JobFunction<u32>,
    remind: JobFunction<String>,
    shown_url: String,
}

fn scheduler(url: &str) -> Result<Setup, Box<dyn std::error::Error>> {
    let registry = JobRegistry::new();
    let heartbeat = registry.register_sync("heartbeat", |n: u32| println!("    heartbeat {n}"));
    let remind = registry.register_sync("remind", |what: String| println!("    reminder: {what}"));
    let store = MongoJobStore::builder(url)
        .database(DATABASE)
        .collection(COLLECTION)
        .build()?;
    // The URL may hold a password: show only the store's redacted copy.
    let shown_url = store.records().redacted_url().to_owned();
    let scheduler = Scheduler::builder()
        .registry(registry)
        .triggers(triggers::registry())
        .jobstore("default", store)
        .executor("default", TokioExecutor::new())
        .build()?;
    let mut events = scheduler.subscribe(EventMask::JOB_EXECUTED | EventMask::JOB_ERROR);
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            println!("[event] {event}");
        }
    });
    Ok(Setup {
        scheduler,
        heartbeat,
        remind,
        shown_url,
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "mongodb://127.0.0.1:27017/?directConnection=true".to_owned());

    println!("== first scheduler: adding two jobs");
    let Setup {
        scheduler: first,
        heartbeat,
        remind,
        ..
    } = scheduler(&url)?;
    first.start().await?;
    let now = first.clock().now();
    first
        .add_job(
            JobSpec::new(
                heartbeat.call(1),
                IntervalTrigger::builder()
                    .every(Duration::from_secs(1))
                    .build_at(now)?,
            )
            .id("heartbeat")
            .replace_existing(true),
        )
        .await?;
    first
        .add_job(
            JobSpec::new(
                remind.call("the first scheduler is gone; this one still ran".into()),
                DateTrigger::new(now + TimeDelta::seconds(4)),
            )
            .id("reminder")
            .replace_existing(true),
        )
        .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    first.shutdown(true).await?;
    println!("== first scheduler shut down");

    let Setup {
        scheduler: second,
        shown_url,
        ..
    } = scheduler(&url)?;
    second.start().await?;
    println!("== second scheduler started; the store holds:");
    for job in second.get_jobs(None).await? {
        println!("    {job}");
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    // Pause the heartbeat so the jobs left behind stay quiet.
    second.pause_job("heartbeat", None).await?;
    second.shutdown(true).await?;

    println!("== done; the jobs stay in {DATABASE}.{COLLECTION}. Look at them with:");
    println!(
        "    mongosh '{shown_url}' --eval 'db.getSiblingDB(\"{DATABASE}\").{COLLECTION}.find().forEach(printjson)'"
    );
    Ok(())
}

//! What the `sqlite`, `postgres` and `mysql` examples share: a scheduler on a SQL store that
//! adds jobs, stops, starts again on the same table and carries on, and leaves its jobs there.

use std::thread::sleep;
use std::time::Duration;

use chrono::TimeDelta;
use executors::ThreadPoolExecutor;
use scheduler_core::{
    BackgroundScheduler, EventMask, JobFunction, JobRegistry, JobSpec, Scheduler,
};
use triggers::{DateTrigger, IntervalTrigger};

/// The example's job functions. Registered by name: the name is what the table stores, so
/// each process that runs the jobs registers the same names.
fn registry() -> (JobRegistry, JobFunction<()>, JobFunction<String>) {
    let registry = JobRegistry::new();
    let report = registry.register_sync("report", |(): ()| {
        println!("    report: all systems nominal")
    });
    let remind = registry.register_sync("remind", |what: String| println!("    reminder: {what}"));
    (registry, report, remind)
}

/// A scheduler whose default store is the SQL table at `url`.
fn scheduler(url: &str) -> Result<BackgroundScheduler, Box<dyn std::error::Error>> {
    let store = jobstore_sql::open(url)?;
    let scheduler = BackgroundScheduler::new(
        Scheduler::builder()
            .registry(registry().0)
            // A persistent store keeps triggers by kind: the process must know the kinds.
            .triggers(triggers::registry())
            .jobstore("default", store)
            .executor("default", ThreadPoolExecutor::new(2)?),
    )?;
    scheduler.add_listener(
        |event| println!("[event] {event}"),
        EventMask::JOB_EXECUTED
            | EventMask::JOB_MISSED
            | EventMask::JOB_ERROR
            | EventMask::SCHEDULER_ERROR,
    );
    Ok(scheduler)
}

/// Runs the example on the store at the first argument, else at `default_url`; `inspect`
/// tells how to look at the table at a URL with the database's own tools.
pub(crate) fn run(
    default_url: &str,
    inspect: fn(&str) -> String,
) -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| default_url.to_owned());

    println!("== first run: adding jobs");
    let first = scheduler(&url)?;
    first.start()?;
    let (_, report, remind) = registry();
    let now = first.clock().now();
    let jobs = [
        JobSpec::new(
            report.call(()),
            IntervalTrigger::builder()
                .every(Duration::from_secs(1))
                .build_at(now)?,
        )
        .id("report")
        .name("report"),
        JobSpec::new(
            remind.call("the deploy window opens".into()),
            DateTrigger::new(now + TimeDelta::seconds(4)),
        )
        .id("deploy-reminder")
        .name("deploy reminder")
        // Due while no scheduler runs: it may start up to 30 s late instead of the default 1 s.
        .misfire_grace_time(Some(Duration::from_secs(30))),
        JobSpec::new(
            remind.call("review the year".into()),
            DateTrigger::new(now + TimeDelta::days(365)),
        )
        .id("yearly-review")
        .name("yearly review"),
    ];
    for job in jobs {
        // Running the example again replaces its jobs instead of failing on their ids.
        first.add_job(job.replace_existing(true))?;
    }
    sleep(Duration::from_millis(2500));
    print!("{}", first.jobs_table(None)?);
    first.shutdown(true)?;

    println!(
        "== stopped for 2 s: the report misses two fire times (it will run once for them, \
         coalescing), the reminder comes due"
    );
    sleep(Duration::from_secs(2));

    println!("== second run: a new scheduler finds the jobs in the table");
    let second = scheduler(&url)?;
    second.start()?;
    print!("{}", second.jobs_table(None)?);
    sleep(Duration::from_millis(2500));
    print!("{}", second.jobs_table(None)?);
    second.shutdown(true)?;

    println!(
        "== the jobs stay in the table; look at them with:\n{}",
        inspect(&url)
    );
    Ok(())
}

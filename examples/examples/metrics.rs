//! Metrics for Prometheus: the scheduler records through the `metrics` facade, this program
//! installs the Prometheus recorder and prints what a scrape would return. Ends by itself.
//!
//! ```sh
//! cargo run -p examples --example metrics --features metrics
//! ```
//!
//! A service serves `handle.render()` on its `/metrics` route (with the web framework it
//! already has), or turns on the exporter's `http-listener` feature for a server of its own.
//! The README's "Metrics" section lists every metric.

use std::time::Duration;

use executors::ThreadPoolExecutor;
use jobstore_memory::MemoryJobStore;
use metrics_exporter_prometheus::PrometheusBuilder;
use scheduler_core::{BackgroundScheduler, JobRegistry, JobSpec, Scheduler};
use tracing_subscriber::EnvFilter;
use triggers::IntervalTrigger;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Warnings and errors on standard error (RUST_LOG chooses more).
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    // The recorder only: no HTTP server, no background task.
    let prometheus = PrometheusBuilder::new().install_recorder()?;

    let registry = JobRegistry::new();
    let heartbeat = registry.register_sync("heartbeat", |(): ()| ());
    let flaky = registry.register_sync("flaky_export", |(): ()| {
        Err::<(), _>("the export server refused the connection")
    });
    let scheduler = BackgroundScheduler::new(
        Scheduler::builder()
            .registry(registry)
            .jobstore("default", MemoryJobStore::new())
            .executor("default", ThreadPoolExecutor::new(4)?)
            .metrics_job_count_interval(Some(Duration::from_secs(1))),
    )?;
    let every = |ms| {
        IntervalTrigger::builder()
            .every(Duration::from_millis(ms))
            .build()
    };
    scheduler.add_job(JobSpec::new(heartbeat.call(()), every(200)?).id("heartbeat"))?;
    scheduler.add_job(JobSpec::new(flaky.call(()), every(500)?).id("flaky_export"))?;
    scheduler.start()?;
    std::thread::sleep(Duration::from_millis(2_200));
    scheduler.shutdown(true)?;

    let scrape = prometheus.render();
    print!("{scrape}");
    // The figures this example promises, so `cargo xtask test-all` notices if they vanish.
    for name in [
        "scheduler_runs_executed_total",
        "scheduler_runs_failed_total",
        "scheduler_run_duration_seconds",
        "scheduler_jobs",
        "scheduler_loop_last_pass_timestamp_seconds",
    ] {
        if !scrape.contains(name) {
            return Err(format!("the scrape has no {name}").into());
        }
    }
    Ok(())
}

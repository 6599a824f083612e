//! Two scheduler nodes on one SQLite file share the jobs: each due run goes to one of them;
//! then one stops and the other carries on alone. Ends by itself.
//!
//! ```sh
//! cargo run -p examples --example cluster --features cluster
//! cargo run -p examples --example cluster --features cluster -- sqlite:///tmp/cluster.sqlite
//! ```
//!
//! The nodes are two schedulers in one process here for a self-contained example; in
//! production each is its own process (or machine, on a server database) with the same
//! job functions registered. The store URL defaults to `target/cluster-example.sqlite`,
//! emptied at the start.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::thread::sleep;
use std::time::Duration;

use chrono::{DateTime, Utc};
use executors::ThreadPoolExecutor;
use scheduler_core::{
    BackgroundScheduler, EventMask, JobFunction, JobRegistry, JobSpec, RunContext, Scheduler,
};
use triggers::IntervalTrigger;

/// Every run, by (job, scheduled time): the nodes that executed it.
type Runs = Arc<Mutex<BTreeMap<(String, DateTime<Utc>), Vec<&'static str>>>>;

/// The job function, registered under the same name on every node; it records which node
/// ran which run.
fn registry(node: &'static str, runs: &Runs) -> (JobRegistry, JobFunction<u32>) {
    let registry = JobRegistry::new();
    let runs = runs.clone();
    let work = registry.register_sync("work", move |_item: u32| {
        let run = RunContext::current().expect("called by an executor");
        runs.lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((run.job_id.to_string(), run.scheduled_run_time))
            .or_default()
            .push(node);
    });
    (registry, work)
}

/// A node: a scheduler on the SQLite file at `url`, named `node`.
fn node(
    url: &str,
    node: &'static str,
    runs: &Runs,
) -> Result<(BackgroundScheduler, JobFunction<u32>), Box<dyn std::error::Error>> {
    let (registry, work) = registry(node, runs);
    let builder = Scheduler::builder()
        .node_id(node)
        // Short timings for a short example (defaults: 5 s and 15 s).
        .heartbeat_interval(Duration::from_secs(1))
        .node_timeout(Duration::from_secs(3))
        .claim_lease(Duration::from_secs(2))
        .registry(registry)
        .triggers(triggers::registry())
        .jobstore("default", jobstore_sql::open(url)?)
        .executor("default", ThreadPoolExecutor::new(4)?)
        // A job added by the other node is seen within this (SQLite cannot push wake-ups).
        .max_wait(Duration::from_secs(1));
    let scheduler = BackgroundScheduler::new(builder)?;
    // On a store that implements the cluster contract, each node sees the other.
    scheduler.add_listener(
        move |event| println!("   [{node}] {event}"),
        EventMask::NODE_JOINED | EventMask::NODE_LOST,
    );
    Ok((scheduler, work))
}

fn per_node(runs: &Runs) -> BTreeMap<&'static str, usize> {
    let mut counts = BTreeMap::new();
    for nodes in runs.lock().unwrap_or_else(|p| p.into_inner()).values() {
        for node in nodes {
            *counts.entry(*node).or_insert(0) += 1;
        }
    }
    counts
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "sqlite://target/cluster-example.sqlite".to_owned());
    let runs: Runs = Arc::default();

    let (first, work) = node(&url, "node-1", &runs)?;
    let (second, _) = node(&url, "node-2", &runs)?;
    first.start()?;
    second.start()?;
    // Leftovers of an earlier run: the example starts from an empty table.
    first.remove_all_jobs(None)?;
    println!("== two nodes on {url}: 20 jobs, every second");
    for i in 0..20 {
        first.add_job(
            JobSpec::new(work.call(i), IntervalTrigger::builder().seconds(1).build()?)
                .id(format!("job-{i}"))
                .replace_existing(true),
        )?;
    }
    sleep(Duration::from_secs(5));
    println!("   runs per node so far: {:?}", per_node(&runs));

    println!("== node-1 stops; node-2 carries on alone");
    first.shutdown(true)?;
    let before = per_node(&runs).get("node-2").copied().unwrap_or(0);
    sleep(Duration::from_secs(4));
    let after = per_node(&runs).get("node-2").copied().unwrap_or(0);
    second.shutdown(true)?;
    println!("   node-2 ran {} more runs alone", after - before);
    println!("   runs per node in all: {:?}", per_node(&runs));

    let runs = runs.lock().unwrap_or_else(|p| p.into_inner());
    let twice = runs.values().filter(|nodes| nodes.len() > 1).count();
    println!(
        "== {} runs, {twice} executed by both nodes (the fire commit lets one node have each)",
        runs.len()
    );
    if twice > 0 || after == before {
        return Err("a run went to both nodes, or node-2 did not carry on".into());
    }
    Ok(())
}

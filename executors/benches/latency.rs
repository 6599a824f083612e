//! Start latency: 1,000 date jobs spread evenly over 5 s on the tokio executor; how late each
//! run starts after its scheduled time (p50 / p99 / max). Run with `cargo bench -p executors`;
//! figures are printed, not asserted.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use executors::TokioExecutor;
use jobstore_memory::MemoryJobStore;
use scheduler_core::{Clock, JobRegistry, JobSpec, Scheduler, SystemClock};
use triggers::DateTrigger;

fn main() {
    const JOBS: i64 = 1_000;
    const SPREAD_MS: i64 = 5_000;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let lateness: Arc<Mutex<Vec<f64>>> = Arc::default();
    let registry = JobRegistry::new();
    let sink = lateness.clone();
    let probe = registry.register_async("probe", move |scheduled_us: i64| {
        let late = SystemClock.now().timestamp_micros() - scheduled_us;
        let sink = sink.clone();
        async move {
            sink.lock()
                .expect("no panics while holding")
                .push(late as f64 / 1e3);
        }
    });
    runtime.block_on(async {
        let scheduler = Scheduler::builder()
            .registry(registry)
            .jobstore("default", MemoryJobStore::new())
            .executor("default", TokioExecutor::new())
            .build()
            .expect("scheduler builds");
        scheduler.start().await.expect("scheduler starts");
        let start: DateTime<Utc> = SystemClock.now() + TimeDelta::milliseconds(500);
        for i in 0..JOBS {
            // Microsecond offsets so instants do not line up with tokio's millisecond ticks.
            let at = start + TimeDelta::microseconds(i * SPREAD_MS * 1000 / JOBS + i % 997);
            let spec = JobSpec::new(probe.call(at.timestamp_micros()), DateTrigger::new(at))
                .misfire_grace_time(None);
            scheduler.add_job(spec).await.expect("job added");
        }
        while lateness.lock().expect("no panics while holding").len() < JOBS as usize {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        scheduler.shutdown(true).await.expect("scheduler stops");
    });
    let mut ms = lateness.lock().expect("no panics while holding").clone();
    ms.sort_by(f64::total_cmp);
    let pct = |p: f64| ms[((ms.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "start latency, {JOBS} date jobs over {} s (tokio executor): p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
        SPREAD_MS / 1000,
        pct(0.50),
        pct(0.99),
        ms[ms.len() - 1]
    );
}

//! A worker process for the remote-executor tests: the tests' registry in worker mode.
//!
//! Settings come from the environment (`SCHEDULER_TEST_NATS_URL`, `REMOTE_NAMESPACE`,
//! `REMOTE_WORKER_NAME`, `REMOTE_KEY`, `REMOTE_CONCURRENCY`); it stops when its standard
//! input closes, so it never outlives the test that started it.

use std::io::Read as _;

#[path = "jobs.rs"]
mod jobs;

fn main() {
    let env = |name: &str| std::env::var(name).ok();
    let url = env("SCHEDULER_TEST_NATS_URL").unwrap_or_else(|| "nats://127.0.0.1:4222".into());
    let Some(namespace) = env("REMOTE_NAMESPACE") else {
        eprintln!("REMOTE_NAMESPACE is not set");
        std::process::exit(2);
    };
    let concurrency = env("REMOTE_CONCURRENCY")
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let mut builder = executors::remote::Worker::builder(url, namespace, jobs::registry())
        .name(jobs::worker_name())
        .concurrency(concurrency);
    if let Some(key) = env("REMOTE_KEY") {
        builder = builder.signing_key(key);
    }
    let worker = match builder.build() {
        Ok(worker) => worker,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        let _ = closed_tx.send(());
    });
    let result = runtime.block_on(worker.run_until(async {
        let _ = closed_rx.await;
    }));
    if let Err(e) = result {
        eprintln!("worker failed: {e}");
        std::process::exit(1);
    }
}

//! One scheduler and two remote workers: this same program, started again in worker mode.
//!
//! Needs NATS with JetStream (`NATS_URL`, else `SCHEDULER_TEST_NATS_URL`, else
//! `nats://127.0.0.1:4222`). The scheduler
//! publishes six runs; the workers take them through the broker and each run is printed as
//! `job <id> ran on worker-<n>`. Then the scheduler stops, its workers exit, and so does it.
//!
//! ```sh
//! cargo run -p examples --example remote_workers --features remote_workers
//! ```

use std::io::{Read as _, Write as _};
use std::process::{Command, Stdio};
use std::time::Duration;

use executors::remote::{RemoteExecutor, Worker};
use scheduler_core::{Clock as _, Event, EventMask, JobFunction, JobRegistry, JobSpec, Scheduler};
use triggers::DateTrigger;

/// The registry both modes share: the scheduler names the functions, the workers run them.
fn registry() -> (JobRegistry, JobFunction<String>) {
    let registry = JobRegistry::new();
    let greet = registry.register_async("greet", |who: String| async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        // Set by the scheduler when it started this worker.
        let worker = std::env::var("WORKER_NAME").unwrap_or_default();
        Ok::<_, std::convert::Infallible>(format!("{worker} greeted {who}"))
    });
    (registry, greet)
}

fn url() -> String {
    std::env::var("NATS_URL")
        .or_else(|_| std::env::var("SCHEDULER_TEST_NATS_URL"))
        .unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Worker mode first, before any side effect: `remote_workers --worker <n>`.
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, n] = args.as_slice()
        && flag == "--worker"
    {
        return run_worker(n).await;
    }

    let namespace = format!("example-{}", std::process::id());
    let key = format!("example key {}", std::process::id());
    let (registry, greet) = registry();
    let scheduler = Scheduler::builder()
        .registry(registry)
        .jobstore("default", jobstore_memory::MemoryJobStore::new())
        .executor(
            "default",
            RemoteExecutor::builder(url(), &namespace)
                .signing_key(key.clone())
                .build()?,
        )
        .build()?;
    let mut events = scheduler.subscribe(EventMask::JOB_EXECUTED | EventMask::JOB_ERROR);
    scheduler.start().await?;

    let mut workers = Vec::new();
    for n in 1..=2 {
        workers.push(
            Command::new(std::env::current_exe()?)
                .args(["--worker", &n.to_string()])
                .env("WORKER_NAME", format!("worker-{n}"))
                .env("WORKER_NAMESPACE", &namespace)
                .env("WORKER_KEY", &key)
                .stdin(Stdio::piped())
                .spawn()?,
        );
    }

    let now = scheduler_core::SystemClock.now();
    for who in ["Ada", "Grace", "Edsger", "Barbara", "Donald", "Frances"] {
        scheduler
            .add_job(JobSpec::new(greet.call(who.to_owned()), DateTrigger::new(now)).id(who))
            .await?;
    }

    let mut failed = 0;
    for _ in 0..6 {
        match tokio::time::timeout(Duration::from_secs(60), events.recv()).await {
            Ok(Some(Event::JobExecuted(e))) => {
                let said = e.retval.as_str().unwrap_or_default();
                let worker = said.split(' ').next().unwrap_or("?");
                println!("job {} ran on {worker}: {said}", e.job_id);
            }
            Ok(Some(Event::JobError(e))) => {
                failed += 1;
                println!("job {} failed: {:?}", e.job_id, e.error);
            }
            Ok(_) => continue,
            Err(_) => {
                failed += 1;
                println!("no outcome within 60 s");
                break;
            }
        }
    }

    scheduler.shutdown(true).await?;
    // Closing a worker's standard input asks it to finish and exit.
    for worker in &mut workers {
        drop(worker.stdin.take());
    }
    for mut worker in workers {
        let status = worker.wait()?;
        println!("a worker exited with {status}");
    }
    executors::remote::delete_namespace(&url(), &namespace).await?;
    std::io::stdout().flush()?;
    if failed > 0 {
        return Err(format!("{failed} runs failed").into());
    }
    Ok(())
}

async fn run_worker(n: &str) -> Result<(), Box<dyn std::error::Error>> {
    let name = format!("worker-{n}");
    let namespace = std::env::var("WORKER_NAMESPACE")?;
    let key = std::env::var("WORKER_KEY")?;
    let worker = Worker::builder(url(), namespace, registry().0)
        .name(&name)
        .concurrency(2)
        .signing_key(key)
        .build()?;
    let (closed, stdin_closed) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        let _ = closed.send(());
    });
    worker
        .run_until(async {
            let _ = stdin_closed.await;
        })
        .await?;
    Ok(())
}

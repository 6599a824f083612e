//! The worker program of the process pool's tests and benchmark: the job functions they
//! schedule, behind `worker_main`. Not a tool; run it through the tests.

use std::time::Duration;

use scheduler_core::executor::RunContext;
use scheduler_core::{BoxError, JobRegistry};

fn registry() -> JobRegistry {
    let registry = JobRegistry::new();
    registry.register_sync("noop", |_: ()| {});
    registry.register_sync("add", |(a, b): (i64, i64)| Ok::<_, BoxError>(a + b));
    registry.register_sync("fail", |message: String| {
        Err::<(), BoxError>(
            scheduler_core::Error::backend(message, std::io::Error::other("disk full")).into(),
        )
    });
    registry.register_sync("panic", |message: String| -> () { panic!("{message}") });
    registry.register_sync("abort", |_: ()| -> () { std::process::abort() });
    registry.register_sync("exit", |code: i32| -> () { std::process::exit(code) });
    // Dies of SIGSEGV without `unsafe`. Rust's own SIGSEGV handler (for stack overflows)
    // takes the first signal, finds no fault and restores the default action; the second one
    // kills the process as a real segmentation fault does.
    registry.register_sync("segfault", |_: ()| {
        let pid = std::process::id().to_string();
        for _ in 0..100 {
            let _ = std::process::Command::new("kill")
                .args(["-SEGV", &pid])
                .status();
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    registry.register_sync("sleep_ms", |ms: u64| {
        std::thread::sleep(Duration::from_millis(ms));
    });
    // Writes the worker's pid to `path`, then sleeps: for tests that kill it from outside.
    registry.register_sync("pid_then_sleep", |(path, ms): (String, u64)| {
        std::fs::write(&path, std::process::id().to_string())?;
        std::thread::sleep(Duration::from_millis(ms));
        Ok::<_, BoxError>(())
    });
    // Waits until `path` exists: a gate the test opens.
    registry.register_sync("wait_for_file", |path: String| {
        while !std::path::Path::new(&path).exists() {
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    registry.register_sync("pid", |_: ()| Ok::<_, BoxError>(std::process::id()));
    registry.register_sync("print_then_add", |(a, b): (i64, i64)| {
        // Must not break the channel to the pool.
        println!("{{\"not\": \"a report\"}}");
        print!("half a line");
        Ok::<_, BoxError>(a + b)
    });
    registry.register_sync("context", |_: ()| {
        let run = RunContext::current().ok_or("no run context")?;
        Ok::<_, BoxError>(serde_json::json!({
            "run_id": &*run.run_id,
            "job_id": &*run.job_id,
            "scheduled_run_time": run.scheduled_run_time,
            "attempt": run.attempt,
            "executor": &*run.executor,
            "node": &*run.node,
        }))
    });
    registry.register_async("async_add", |(a, b): (i64, i64)| async move {
        tokio::task::yield_now().await;
        Ok::<_, BoxError>(a + b)
    });
    registry
}

fn main() {
    let registry = registry();
    executors::process_pool::worker_main(&registry);
    let args: Vec<String> = std::env::args().collect();
    if let [_, mode, pid_file] = args.as_slice()
        && mode == "parent"
    {
        parent(&registry, pid_file);
    }
    eprintln!("this program is the process pool's test worker; the tests run it");
    std::process::exit(2);
}

/// A scheduler's process for the test that kills it: a pool of one worker (this program)
/// running `pid_then_sleep(pid_file, 10 min)`, and nothing else until it is killed.
fn parent(registry: &JobRegistry, pid_file: &str) -> ! {
    use executors::ProcessPoolExecutor;
    use scheduler_core::{Clock, Executor, ExecutorContext, JobDefaults, JobRun, JobSpec};
    use std::sync::Arc;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let program = std::env::current_exe().expect("this program's path");
        let pool = ProcessPoolExecutor::new(1)
            .expect("a pool")
            .worker_program(program);
        let clock: Arc<dyn Clock> = Arc::new(scheduler_core::SystemClock);
        let now = clock.now();
        let ctx = ExecutorContext::new(
            "pool",
            clock,
            scheduler_core::EventBus::new(),
            tokio::runtime::Handle::current(),
        );
        pool.start(ctx).await.expect("the pool starts");
        let target = registry
            .target("pid_then_sleep", serde_json::json!([pid_file, 600_000]))
            .expect("registered");
        let job = JobSpec::new(target, Once(now))
            .misfire_grace_time(None)
            .into_job(&JobDefaults::default(), now)
            .expect("a job");
        pool.submit(JobRun {
            job,
            jobstore: "default".into(),
            run_times: now.into(),
        })
        .expect("submitted");
        std::future::pending::<()>().await;
    });
    unreachable!("the test kills this process")
}

/// Fires once, at its time.
#[derive(Debug)]
struct Once(Time);

type Time = scheduler_core::chrono::DateTime<scheduler_core::chrono::Utc>;

impl std::fmt::Display for Once {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "once at {}", self.0)
    }
}

impl scheduler_core::Trigger for Once {
    fn next_fire_time(
        &self,
        previous: Option<Time>,
        _now: Time,
    ) -> Result<Option<Time>, scheduler_core::SearchExhausted> {
        Ok(previous.is_none().then_some(self.0))
    }

    fn to_state(&self) -> scheduler_core::Result<scheduler_core::TriggerState> {
        scheduler_core::TriggerState::new("once", &self.0)
    }
}

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
    eprintln!("this program is the process pool's test worker; the tests run it");
    std::process::exit(2);
}

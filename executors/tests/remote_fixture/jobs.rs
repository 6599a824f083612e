//! The job functions of the remote-executor tests, registered alike by the test (scheduler side)
//! and by the worker processes it starts.

use std::time::Duration;

use scheduler_core::JobRegistry;
use serde::{Deserialize, Serialize};

/// Arguments of `work`: sleep `ms`, first creating `dir/<tag>.<worker>` when `dir` is set,
/// so a test knows which worker started it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Work {
    pub(crate) ms: u64,
    pub(crate) tag: String,
    pub(crate) dir: Option<String>,
    /// Padding, for payload-size tests.
    pub(crate) pad: String,
}

/// What `work` returns: the worker's name and when (ms since the epoch) it ran.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Ran {
    pub(crate) worker: String,
    pub(crate) start_ms: i64,
    pub(crate) end_ms: i64,
    /// The run's attempt number, from its run context.
    pub(crate) attempt: u32,
}

pub(crate) fn worker_name() -> String {
    std::env::var("REMOTE_WORKER_NAME").unwrap_or_else(|_| "in-process".into())
}

fn now_ms() -> i64 {
    use scheduler_core::Clock as _;
    scheduler_core::SystemClock.now().timestamp_millis()
}

pub(crate) fn registry() -> JobRegistry {
    let registry = JobRegistry::new();
    registry.register_async("work", |w: Work| async move {
        let start_ms = now_ms();
        let attempt = scheduler_core::executor::RunContext::current().map_or(0, |run| run.attempt);
        if let Some(dir) = &w.dir {
            let _ = std::fs::write(format!("{dir}/{}.{}", w.tag, worker_name()), b"");
        }
        tokio::time::sleep(Duration::from_millis(w.ms)).await;
        Ok::<_, std::convert::Infallible>(Ran {
            worker: worker_name(),
            start_ms,
            end_ms: now_ms(),
            attempt,
        })
    });
    registry
}

//! What the pool and its workers say to each other, one JSON document per line: the worker
//! greets with a [`Hello`]; then each `RunRequest` on the worker's stdin gets one `RunReport`
//! on its stdout (both from `scheduler_core::executor::wire`).

use serde::{Deserialize, Serialize};

/// The environment variable that tells a process it was started as a pool worker.
pub(crate) const WORKER_ENV: &str = "SCHEDULER_PROCESS_POOL_WORKER";

/// The greeting a worker sends first, so the pool knows the program called `worker_main`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Hello {
    /// Always [`Hello::GREETING`].
    pub(crate) worker: String,
    /// The worker's wire version.
    pub(crate) version: u32,
    /// The worker's process id.
    pub(crate) pid: u32,
}

impl Hello {
    pub(crate) const GREETING: &'static str = "scheduler-process-pool-worker";

    pub(crate) fn new(pid: u32) -> Self {
        Hello {
            worker: Self::GREETING.to_owned(),
            version: scheduler_core::executor::wire::WIRE_VERSION,
            pid,
        }
    }
}

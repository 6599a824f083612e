//! Remote workers: runs carried by NATS JetStream to worker processes (feature `remote-nats`).
//!
//! [`RemoteExecutor`] is the scheduler's side; [`Worker`] is the loop of a worker process,
//! the user's own program started in worker mode with the same [`JobRegistry`](scheduler_core::JobRegistry).
//! The crate README says what is delivered how often, and who may run what.

mod broker;
mod executor;
mod wire;
mod worker;

pub use executor::{RemoteExecutor, RemoteExecutorBuilder};
pub use worker::{Worker, WorkerBuilder};

/// A broker URL, which may carry credentials: never shown.
#[derive(Clone)]
struct Url(String);

impl std::fmt::Debug for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Url(..)")
    }
}

/// An error that happened on a worker, known here only by its message chain.
#[derive(Debug)]
struct RemoteFailure(String);

impl std::fmt::Display for RemoteFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RemoteFailure {}

/// Deletes the queues of `namespace` on the broker at `url`, with any runs and outcomes still
/// in them: for tests and for retiring a namespace.
pub async fn delete_namespace(url: &str, namespace: &str) -> scheduler_core::Result<()> {
    broker::nats::Nats::connect(url, namespace, "scheduler cleanup")
        .await?
        .delete()
        .await
}

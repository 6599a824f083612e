//! The Redis job store's figures (scenarios 4 and 5 of `cargo xtask bench`): adds one at a
//! time, with 8 concurrent callers and batched; the due fetch and commit rate; a restart with
//! stored jobs all due; jobs due at once with the default misfire grace time. The scenarios
//! are `xtask/bench-support/store_scenarios.rs`.
//!
//! ```sh
//! cargo bench -p jobstore-redis --bench store [-- --quick]
//! ```
//!
//! The server is `SCHEDULER_TEST_REDIS_URL` (default `redis://127.0.0.1:6379/`); its
//! persistence settings are left as they are and printed. The keys it writes (prefix
//! `bench.<random>.`) are deleted at the end. Figures are printed, never asserted.

#[path = "../../xtask/bench-support/store_scenarios.rs"]
mod scenarios;

use jobstore_redis::RedisRecords;
use scenarios::{Backend, Sizes};

/// A setting of the server's `CONFIG GET`, or `-`.
async fn config(connection: &mut redis::aio::MultiplexedConnection, name: &str) -> String {
    redis::cmd("CONFIG")
        .arg("GET")
        .arg(name)
        .query_async::<Vec<String>>(connection)
        .await
        .ok()
        .and_then(|pair| pair.get(1).cloned())
        .unwrap_or_else(|| "-".to_owned())
}

fn main() {
    let sizes = Sizes::from_args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let url = std::env::var("SCHEDULER_TEST_REDIS_URL")
        .unwrap_or_else(|_| jobstore_redis::DEFAULT_URL.to_owned());
    let prefix = format!("bench.{}.", uuid::Uuid::new_v4().simple());
    runtime.block_on(async {
        let client = redis::Client::open(url.as_str()).expect("a valid URL");
        let mut connection = client
            .get_multiplexed_async_connection()
            .await
            .unwrap_or_else(|e| panic!("cannot reach Redis (set SCHEDULER_TEST_REDIS_URL): {e}"));
        let server = format!(
            "Redis, appendonly={}, appendfsync={}",
            config(&mut connection, "appendonly").await,
            config(&mut connection, "appendfsync").await
        );
        let (open_url, open_prefix) = (url.clone(), prefix.clone());
        let backend = Backend {
            key: "redis",
            label: "Redis",
            server,
            lead_per_job: scenarios::LEAD_PER_JOB,
            open: Box::new(move || {
                RedisRecords::builder(open_url.clone())
                    .prefix(open_prefix.clone())
                    .build()
                    .expect("the store builds")
            }),
        };
        let cleanup = async {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{prefix}*"))
                .query_async(&mut connection)
                .await
                .expect("the bench's keys");
            if !keys.is_empty() {
                redis::cmd("DEL")
                    .arg(keys)
                    .query_async::<()>(&mut connection)
                    .await
                    .expect("the bench's keys deleted");
            }
        };
        scenarios::run(&backend, sizes, Box::pin(cleanup)).await;
    });
}

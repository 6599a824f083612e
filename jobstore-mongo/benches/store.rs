//! The MongoDB job store's figures (scenarios 4 and 5 of `cargo xtask bench`): adds one at a
//! time, with 8 concurrent callers and batched; the due fetch and commit rate; a restart with
//! stored jobs all due; jobs due at once with the default misfire grace time. The scenarios
//! are `xtask/bench-support/store_scenarios.rs`.
//!
//! ```sh
//! cargo bench -p jobstore-mongo --bench store [-- --quick]   # SCHEDULER_TEST_MONGO_URL
//! ```
//!
//! Against nx-27017 (a single-threaded Python server; about 12,000 inserts/s batched and 1,500
//! conditional updates/s is its own ceiling) these measure that server more than the store.
//! The bench's collections (`bench_<random>` in `jobstore_mongo_bench` and its `_nodes`) are
//! dropped at the end.
//! Figures are printed, never asserted.

#[path = "../../xtask/bench-support/store_scenarios.rs"]
mod scenarios;

use std::time::Duration;

use jobstore_mongo::{MongoJobStore, MongoJobStoreExt};
use scenarios::{Backend, Sizes};

const DATABASE: &str = "jobstore_mongo_bench";

fn main() {
    let sizes = Sizes::from_args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let url = std::env::var("SCHEDULER_TEST_MONGO_URL")
        .unwrap_or_else(|_| "mongodb://127.0.0.1:27017/?directConnection=true".to_owned());
    let collection = format!("bench_{}", std::process::id());
    runtime.block_on(async {
        let client = mongodb::Client::with_uri_str(&url)
            .await
            .unwrap_or_else(|e| panic!("cannot reach MongoDB (set SCHEDULER_TEST_MONGO_URL): {e}"));
        let (open_url, open_collection) = (url.clone(), collection.clone());
        let backend = Backend {
            key: "mongo",
            label: "MongoDB (nx-27017)",
            server: "nx-27017, single-threaded, ~12k inserts/s and ~1.5k conditional updates/s \
                     ceiling"
                .to_owned(),
            // nx-27017 writes a 10,000-job burst in seconds: 1 ms per job before it is due.
            lead_per_job: scenarios::LEAD_PER_JOB * 5,
            open: Box::new(move || {
                MongoJobStore::builder(&open_url)
                    .database(DATABASE)
                    .collection(&open_collection)
                    .call_timeout(Duration::from_secs(120))
                    .build()
                    .expect("valid options")
            }),
        };
        // The jobs and the heartbeats the scheduler's node wrote beside them.
        let cleanup = async {
            for name in [collection.clone(), format!("{collection}_nodes")] {
                client
                    .database(DATABASE)
                    .collection::<mongodb::bson::Document>(&name)
                    .drop()
                    .await
                    .expect("the bench collections dropped");
            }
        };
        scenarios::run(&backend, sizes, Box::pin(cleanup)).await;
    });
}

//! Jobs kept in PostgreSQL: added, carried on after a restart, left in the table.
//!
//! ```sh
//! cargo run -p examples --example postgres --features postgres      # the local server
//! cargo run -p examples --example postgres --features postgres -- postgres://user:password@host/db
//! ```

#[path = "sql_store/mod.rs"]
mod sql_store;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    sql_store::run("postgres://postgres@127.0.0.1:5432/test", |url| {
        format!(
            "    psql '{url}' -c \"SELECT id, next_run_time, func, trigger_kind FROM \
                 apscheduler_jobs ORDER BY next_run_micros\""
        )
    })
}

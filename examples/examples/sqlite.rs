//! Jobs kept in a SQLite file: added, carried on after a restart, left in the file.
//!
//! ```sh
//! cargo run -p examples --example sqlite --features sqlite                 # ./jobs.sqlite
//! cargo run -p examples --example sqlite --features sqlite -- sqlite:///tmp/jobs.sqlite
//! ```
//!
//! The file is created if missing (bundled SQLite: nothing to install).

#[path = "sql_store/mod.rs"]
mod sql_store;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    sql_store::run("sqlite://jobs.sqlite", |url| {
        let file = url.trim_start_matches("sqlite://");
        format!(
            "    sqlite3 {file} \"SELECT id, next_run_time, func, trigger_kind FROM \
                 apscheduler_jobs ORDER BY next_run_micros\"\n    (next_run_time is UTC; \
                 next_run_micros, microseconds since 1970, is the one the scheduler reads)"
        )
    })
}

//! Jobs kept in MySQL or MariaDB: added, carried on after a restart, left in the table.
//!
//! ```sh
//! cargo run -p examples --example mysql --features mysql            # the local server
//! cargo run -p examples --example mysql --features mysql -- mysql://user:password@host/db
//! ```

#[path = "sql_store/mod.rs"]
mod sql_store;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    sql_store::run("mysql://root@127.0.0.1:3306/test", |_| {
        "    mysql -h 127.0.0.1 -u root test -e \"SELECT id, next_run_time, func, trigger_kind \
             FROM apscheduler_jobs ORDER BY next_run_micros\"  (with your server's host, user and \
             database)"
            .to_owned()
    })
}

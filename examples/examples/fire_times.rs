//! Answers APScheduler conformance cases with this project's triggers.
//!
//! Reads the case format of `triggers/tests/data/cases.jsonl` (one JSON object per line, see
//! `triggers/tests/data/README.md`) on standard input and writes APScheduler's output format
//! on standard output, so the two can be diffed with the project's copy of APScheduler's
//! `compare.py`:
//!
//! ```sh
//! cargo run -p examples --example fire_times --features conformance \
//!     < triggers/tests/data/cases.jsonl > port.jsonl
//! python3 triggers/tests/data/tools/compare.py triggers/tests/data/expected.jsonl port.jsonl \
//!     --cases triggers/tests/data/cases.jsonl
//! ```

use std::io::{self, BufRead, BufWriter, Write};

fn main() -> io::Result<()> {
    // Warnings and errors on standard error, as in every example (RUST_LOG chooses more).
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    for line in io::stdin().lock().lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let answer = match serde_json::from_str(&line) {
            Ok(case) => triggers::conformance::run_case(&case),
            Err(e) => serde_json::json!({"id": null, "error": format!("bad JSON: {e}")}),
        };
        writeln!(out, "{answer}")?;
    }
    out.flush()
}

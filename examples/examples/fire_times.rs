//! Answers APScheduler conformance cases with this project's triggers.
//!
//! Reads the case format of `shared/conformance/cases.jsonl` (one JSON object per line) on
//! standard input and writes APScheduler's output format on standard output, so the two can
//! be diffed with `tools/compare.py`:
//!
//! ```sh
//! cargo run -p examples --example fire_times < cases.jsonl > port.jsonl
//! python3 tools/compare.py expected.jsonl port.jsonl --cases cases.jsonl
//! ```

use std::io::{self, BufRead, BufWriter, Write};

fn main() -> io::Result<()> {
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

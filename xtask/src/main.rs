//! Workspace automation: `cargo xtask <command>`.
//!
//! `test-all` is the one command that checks everything CI checks: formatting, clippy with
//! warnings denied, every test of the workspace under nextest, the doctests, and the quick
//! start example. It stops at the first failing step and says which one.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

mod fuzz;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  test-all    fmt check, clippy (-D warnings), all tests (nextest + doctests), examples
  fuzz        the trigger fuzz: a million inputs ([--release] [--inputs N] [--seed S])
  help        this text";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test-all") => test_all(),
        Some("fuzz") => fuzz::run(&args[1..]),
        Some("help" | "-h" | "--help") | None => {
            eprintln!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command {other:?}\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("\nxtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root, found from this crate's manifest so `cargo xtask` works from any
/// directory.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

fn test_all() -> Result<(), String> {
    let started = Instant::now();
    let steps: &[(&str, &[&str])] = &[
        ("format", &["fmt", "--all", "--check"]),
        (
            "clippy",
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--all-features",
                "--locked",
                "--",
                "-D",
                "warnings",
            ],
        ),
        (
            "tests",
            &[
                "nextest",
                "run",
                "--workspace",
                "--all-features",
                "--locked",
                "--no-fail-fast",
            ],
        ),
        (
            "doctests",
            &["test", "--doc", "--workspace", "--all-features", "--locked"],
        ),
        ("trigger fuzz (short run)", fuzz::SHORT_RUN),
        (
            "quick start example",
            &[
                "run",
                "--locked",
                "--package",
                "examples",
                "--example",
                "quickstart",
            ],
        ),
    ];
    for (name, args) in steps {
        cargo(name, args)?;
    }
    eprintln!("\nxtask: all checks passed in {:.0?}", started.elapsed());
    Ok(())
}

fn cargo(step: &str, args: &[&str]) -> Result<(), String> {
    eprintln!("\n==> {step}: cargo {}", args.join(" "));
    let started = Instant::now();
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .args(args)
        .current_dir(root())
        // Incremental artifacts only cost time and disk in a one-shot run.
        .env("CARGO_INCREMENTAL", "0")
        .status()
        .map_err(|e| format!("{step}: cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("step {step:?} failed ({status})"));
    }
    eprintln!("==> {step}: ok in {:.1?}", started.elapsed());
    Ok(())
}

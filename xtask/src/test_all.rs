//! `cargo xtask test-all`: every check and test CI runs, in one command.
//!
//! The cheap checks come first so a mistake shows in seconds. Every step runs even after
//! one fails (one CI run shows every problem); `--fail-fast` stops at the first failure.
//! The summary at the end gives each step's time.

use std::time::{Duration, Instant};

use crate::workspace::{Result, cargo_step};
use crate::{docs, examples, features, fuzz, tidy};

pub(crate) const ABOUT: &str = "every check and test CI runs (`--fail-fast` to stop early)";

enum Step {
    /// `cargo <args>`.
    Cargo(&'static [&'static str]),
    /// Another xtask command.
    Xtask(fn(&[String]) -> Result),
}

const STEPS: &[(&str, Step)] = &[
    ("format", Step::Cargo(&["fmt", "--all", "--check"])),
    ("tidy", Step::Xtask(tidy::run)),
    (
        "clippy",
        Step::Cargo(&[
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--locked",
            "--",
            "-D",
            "warnings",
        ]),
    ),
    ("docs", Step::Xtask(docs::run)),
    ("features", Step::Xtask(features::run)),
    (
        "tests",
        Step::Cargo(&[
            "nextest",
            "run",
            "--workspace",
            "--all-features",
            "--locked",
            "--no-fail-fast",
        ]),
    ),
    (
        "doctests",
        Step::Cargo(&["test", "--doc", "--workspace", "--all-features", "--locked"]),
    ),
    ("fuzz", Step::Cargo(fuzz::SHORT_RUN)),
    ("examples", Step::Xtask(examples::run)),
];

pub(crate) fn run(args: &[String]) -> Result {
    let fail_fast = match args {
        [] => false,
        [flag] if flag == "--fail-fast" => true,
        _ => return Err(format!("test-all takes only `--fail-fast`, not {args:?}")),
    };
    let started = Instant::now();
    let mut outcomes: Vec<(&str, Duration, Result)> = Vec::new();
    for (name, step) in STEPS {
        let step_started = Instant::now();
        let result = match step {
            Step::Cargo(args) => cargo_step(name, args),
            Step::Xtask(run) => {
                eprintln!("\n==> {name}: cargo xtask {name}");
                run(&[])
            }
        };
        if let Err(message) = &result {
            eprintln!("==> {name}: FAILED: {message}");
        }
        let failed = result.is_err();
        outcomes.push((name, step_started.elapsed(), result));
        if failed && fail_fast {
            break;
        }
    }

    eprintln!("\n==> summary");
    for (name, took, result) in &outcomes {
        let status = if result.is_ok() { "ok" } else { "FAILED" };
        eprintln!("  {name:<10} {status:<6} {:>7.1}s", took.as_secs_f64());
    }
    eprintln!(
        "  {:<10} {:<6} {:>7.1}s",
        "total",
        "",
        started.elapsed().as_secs_f64()
    );
    let failed: Vec<&str> = outcomes
        .iter()
        .filter(|(_, _, result)| result.is_err())
        .map(|(name, ..)| *name)
        .collect();
    if failed.is_empty() {
        eprintln!("\nxtask: all checks passed");
        Ok(())
    } else {
        Err(format!("failed steps: {}", failed.join(", ")))
    }
}

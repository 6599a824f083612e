//! `cargo xtask fuzz`: the trigger fuzzing loop (`triggers/examples/fuzz.rs`).
//!
//! It builds every kind of trigger from random arguments and asks for fire times from random
//! instants in random zones, failing on a panic, an answer at or before the previous fire
//! time, an inconsistent catch-up or a call over the step budget, and prints the counts and
//! the slowest call. Plain `cargo` on the stable toolchain: no nightly, no cargo-fuzz.
//!
//! - `cargo xtask fuzz`: a million inputs on an optimized build that keeps debug assertions
//!   and overflow checks (profile `fuzz`, defined here through cargo's environment), so an
//!   arithmetic overflow is a failure as in a debug build.
//! - `cargo xtask fuzz --release`: the same on a plain release build, to measure the
//!   slowest call.
//! - `--inputs N` and `--seed S` choose the size and the inputs; a failure names the input,
//!   which `cargo run -p triggers --example fuzz -- --seed S --input INDEX` runs again.

use crate::workspace::{Result, cargo, run_step};

pub(crate) const ABOUT: &str =
    "the trigger fuzz: a million inputs (`--release` to time them, `--inputs N`, `--seed S`)";

/// `cargo xtask test-all`'s short run: twenty thousand inputs on the debug build the tests
/// already compiled.
pub(crate) const SHORT_RUN: &[&str] = &[
    "run",
    "--locked",
    "--package",
    "triggers",
    "--example",
    "fuzz",
    "--all-features",
    "--",
    "--inputs",
    "20000",
];

/// Runs `cargo xtask fuzz [--release] [--inputs N] [--seed S]`.
pub(crate) fn run(args: &[String]) -> Result {
    let mut release = false;
    let mut passed: Vec<String> = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--release" => release = true,
            "--inputs" | "--seed" => {
                let value = args
                    .next()
                    .filter(|v| v.parse::<u64>().is_ok())
                    .ok_or_else(|| format!("{arg} takes a number"))?;
                passed.extend([arg.clone(), value.clone()]);
            }
            other => {
                return Err(format!(
                    "unknown fuzz option {other:?}; usage: cargo xtask fuzz [--release] \
                     [--inputs N] [--seed S]"
                ));
            }
        }
    }
    let profile = if release { "release" } else { "fuzz" };
    let mut command = cargo();
    command
        .args(["run", "--locked", "--profile", profile])
        .args([
            "--package",
            "triggers",
            "--example",
            "fuzz",
            "--all-features",
            "--",
        ])
        .args(&passed)
        // An optimized build that still checks arithmetic, in a target directory of its own.
        .env("CARGO_PROFILE_FUZZ_INHERITS", "release")
        .env("CARGO_PROFILE_FUZZ_DEBUG_ASSERTIONS", "true")
        .env("CARGO_PROFILE_FUZZ_OVERFLOW_CHECKS", "true");
    run_step(&format!("trigger fuzz ({profile} profile)"), &mut command)
}

//! `cargo xtask test-all`: every check and test CI runs, in one command.
//!
//! First the servers: each backend's URL is found (or, for MongoDB, a server started) and
//! handed to every later step (`servers.rs`). The cheap checks come next so a mistake shows
//! in seconds. The tests run once for everything but the job stores, then once per backend
//! (`backend_tests.rs`), each run counted. Every step runs even after one fails (one CI run
//! shows every problem); `--fail-fast` stops at the first failure. The summary at the end
//! gives each step's time, and the output ends with one line per backend:
//! `postgres: 23 passed, 0 failed`.

use std::time::{Duration, Instant};

use crate::backend_tests::{self, Counts, SUITES, Suite};
use crate::servers::{self, Probe};
use crate::workspace::{Metadata, Result, cargo_step, set_test_env};
use crate::{cluster_test, docs, examples, features, fuzz, tidy};

pub(crate) const ABOUT: &str =
    "every check and test CI runs (`--fail-fast` to stop early, `--only STEP,...`)";

/// The options of `test-all`.
#[derive(Debug, Default, PartialEq)]
struct Options {
    /// Stop at the first failed step.
    fail_fast: bool,
    /// Run only these steps (and `servers`, which the tests need); every step when empty.
    only: Vec<String>,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options> {
        let mut options = Options::default();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--fail-fast" => options.fail_fast = true,
                "--only" => {
                    let steps = args.next().ok_or("--only takes a list of steps")?;
                    let known: Vec<&str> = plan().iter().map(|(name, _)| *name).collect();
                    for step in steps.split(',') {
                        if !known.contains(&step) {
                            return Err(format!(
                                "no step {step:?}; the steps: {}",
                                known.join(", ")
                            ));
                        }
                        options.only.push(step.to_owned());
                    }
                }
                _ => {
                    return Err(format!(
                        "unknown option {arg:?}; usage: cargo xtask test-all [--fail-fast] \
                         [--only STEP,...]"
                    ));
                }
            }
        }
        Ok(options)
    }

    fn runs(&self, step: &str) -> bool {
        self.only.is_empty() || step == "servers" || self.only.iter().any(|s| s == step)
    }
}

#[derive(Clone, Copy)]
enum Step {
    /// Find or start the servers the tests need.
    Servers,
    /// `cargo <args>`.
    Cargo(&'static [&'static str]),
    /// Another xtask command.
    Xtask(fn(&[String]) -> Result),
    /// Every test outside the backend suites.
    Tests,
    /// One backend's tests, counted.
    Backend(&'static Suite),
    /// `cargo xtask cluster-test BACKEND`.
    Cluster(&'static str),
}

const CHECKS: &[(&str, Step)] = &[
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
];

const AFTER_TESTS: &[(&str, Step)] = &[
    (
        "doctests",
        Step::Cargo(&["test", "--doc", "--workspace", "--all-features", "--locked"]),
    ),
    ("fuzz", Step::Cargo(fuzz::SHORT_RUN)),
    ("examples", Step::Xtask(examples::run)),
];

/// Every step, in order.
fn plan() -> Vec<(&'static str, Step)> {
    let mut plan = vec![("servers", Step::Servers)];
    plan.extend(CHECKS.iter().copied());
    plan.push(("tests", Step::Tests));
    plan.extend(SUITES.iter().map(|s| (s.name, Step::Backend(s))));
    plan.extend(AFTER_TESTS.iter().copied());
    // After `examples`, whose build they reuse.
    plan.extend(
        CLUSTER_STEPS
            .iter()
            .zip(cluster_test::BACKENDS)
            .map(|(name, backend)| (*name, Step::Cluster(backend))),
    );
    plan
}

/// The `cluster-test` steps, one per backend of [`cluster_test::BACKENDS`], in its order.
const CLUSTER_STEPS: &[&str] = &[
    "cluster-sqlite",
    "cluster-postgres",
    "cluster-mysql",
    "cluster-redis",
    "cluster-mongo",
];

pub(crate) fn run(args: &[String]) -> Result {
    let options = Options::parse(args)?;
    let metadata = Metadata::load()?;
    let started = Instant::now();
    let mut probe = Probe::default();
    let mut outcomes: Vec<(&str, Duration, Result)> = Vec::new();
    let mut counted: Vec<(&str, Counts)> = Vec::new();
    for (name, step) in plan() {
        if !options.runs(name) {
            continue;
        }
        let step_started = Instant::now();
        let result = match step {
            Step::Servers => {
                eprintln!("\n==> servers: the backends the tests talk to");
                probe = servers::probe(&metadata.target_directory);
                let result = probe.result();
                set_test_env(probe.vars.clone()).and(result)
            }
            Step::Cargo(args) => cargo_step(name, args),
            Step::Xtask(run) => {
                eprintln!("\n==> {name}: cargo xtask {name}");
                run(&[])
            }
            Step::Cluster(backend) => cluster_test::run_backend(backend),
            Step::Tests => {
                let present = SUITES.iter().filter(|s| s.missing(&metadata).is_none());
                let filter = backend_tests::general_filter(present);
                backend_tests::run_counted(name, &mut backend_tests::nextest(filter.as_deref())).0
            }
            Step::Backend(suite) => {
                let (result, counts) = match suite.missing(&metadata) {
                    Some(why) => (Err(why), None),
                    None => backend_tests::run_counted(
                        name,
                        &mut backend_tests::nextest(Some(&suite.filter())),
                    ),
                };
                counted.push((suite.name, counts.unwrap_or_default()));
                result
            }
        };
        if let Err(message) = &result {
            eprintln!("==> {name}: FAILED: {message}");
        }
        let failed = result.is_err();
        outcomes.push((name, step_started.elapsed(), result));
        if failed && options.fail_fast {
            break;
        }
    }
    if let Some(mut server) = probe.started.take() {
        server.stop();
        eprintln!("\n==> servers: stopped the nx-27017 this run started");
    }

    eprintln!("\n==> summary");
    for (name, took, result) in &outcomes {
        let status = if result.is_ok() { "ok" } else { "FAILED" };
        eprintln!("  {name:<16} {status:<6} {:>7.1}s", took.as_secs_f64());
    }
    eprintln!(
        "  {:<16} {:<6} {:>7.1}s",
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
    } else {
        eprintln!("\nxtask: failed steps: {}", failed.join(", "));
    }
    // The per-backend counts close the output, alone on their lines, after everything on
    // stderr: CI reads them there.
    eprintln!();
    for (name, counts) in &counted {
        println!("{}", backend_tests::closing_line(name, *counts));
    }
    if failed.is_empty() {
        Ok(())
    } else {
        // Reported above; an empty message tells `main` to add nothing after the counts.
        Err(String::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_come_first_and_every_backend_runs_after_the_general_tests() {
        let names: Vec<&str> = plan().iter().map(|(name, _)| *name).collect();
        assert_eq!(names[0], "servers");
        let tests = names.iter().position(|n| *n == "tests").unwrap();
        assert_eq!(
            names[tests + 1..tests + 1 + SUITES.len()],
            ["memory", "sqlite", "postgres", "mysql", "redis", "mongo"]
        );
        assert!(names.contains(&"doctests") && names.contains(&"examples"));
        let examples = names.iter().position(|n| *n == "examples").unwrap();
        assert_eq!(
            names[examples + 1..],
            [
                "cluster-sqlite",
                "cluster-postgres",
                "cluster-mysql",
                "cluster-redis",
                "cluster-mongo"
            ]
        );
    }

    #[test]
    fn options_choose_steps() {
        let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(Options::parse(&[]).unwrap(), Options::default());
        let options = Options::parse(&args(&["--only", "redis,tests", "--fail-fast"])).unwrap();
        assert!(options.fail_fast);
        assert!(options.runs("redis") && options.runs("tests") && options.runs("servers"));
        assert!(!options.runs("clippy") && !options.runs("mongo"));
        assert!(Options::parse(&args(&["--only", "redis,nope"])).is_err());
        assert!(Options::parse(&args(&["--only"])).is_err());
        assert!(Options::parse(&args(&["--fast"])).is_err());
    }
}

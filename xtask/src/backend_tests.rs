//! The per-backend test runs of `cargo xtask test-all`, each counted.
//!
//! Every backend's tests run in a nextest run of their own, chosen by a filterset, so
//! `test-all` can end with one line per backend (`postgres: 23 passed, 0 failed`); the
//! general test step runs everything else. A backend with no test, or whose test binary is
//! missing, is a failure: nothing passes by not running.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::workspace::{Metadata, Result, cargo, show};

/// One backend's tests: every test of `package`, or only those of its test binary `binary`.
#[derive(Debug)]
pub(crate) struct Suite {
    /// The backend, as the closing line names it.
    pub(crate) name: &'static str,
    package: &'static str,
    binary: Option<&'static str>,
}

/// The backends, in the order of the closing lines.
pub(crate) const SUITES: &[Suite] = &[
    Suite {
        name: "memory",
        package: "jobstore-memory",
        binary: None,
    },
    Suite {
        name: "sqlite",
        package: "jobstore-sql",
        binary: Some("sqlite"),
    },
    Suite {
        name: "postgres",
        package: "jobstore-sql",
        binary: Some("postgres"),
    },
    Suite {
        name: "mysql",
        package: "jobstore-sql",
        binary: Some("mysql"),
    },
    Suite {
        name: "redis",
        package: "jobstore-redis",
        binary: Some("redis"),
    },
    Suite {
        name: "mongo",
        package: "jobstore-mongo",
        binary: Some("mongo"),
    },
];

/// The arguments every nextest run of `test-all` shares, so they all reuse one build.
pub(crate) const NEXTEST: &[&str] = &[
    "nextest",
    "run",
    "--workspace",
    "--all-features",
    "--locked",
    "--no-fail-fast",
];

impl Suite {
    /// The nextest filterset selecting this backend's tests.
    pub(crate) fn filter(&self) -> String {
        match self.binary {
            None => format!("package({})", self.package),
            // `=`: the exact name, not a glob.
            Some(binary) => format!("package({}) & binary(={binary})", self.package),
        }
    }

    /// Why this suite cannot run in the workspace `metadata` describes, if it cannot.
    ///
    /// nextest refuses a filterset naming a package or binary that does not exist, so this
    /// is checked first, with a message that says what to add.
    pub(crate) fn missing(&self, metadata: &Metadata) -> Option<String> {
        let Ok(package) = metadata.package(self.package) else {
            return Some(format!("no package {} in the workspace", self.package));
        };
        let binary = self.binary?;
        if package.targets("test").any(|t| t.name == binary) {
            return None;
        }
        Some(format!(
            "{} has no test binary `{binary}`: this backend's tests go in tests/{binary}.rs of \
             {} (with a `[[test]] name = \"{binary}\"` and its `required-features` where the \
             backend is a cargo feature)",
            self.package, self.package,
        ))
    }
}

/// The filterset of the general test step: everything but the backend suites in `suites`
/// (those that exist), so each test runs exactly once.
pub(crate) fn general_filter<'a>(suites: impl IntoIterator<Item = &'a Suite>) -> Option<String> {
    let parts: Vec<String> = suites
        .into_iter()
        .map(|s| format!("({})", s.filter()))
        .collect();
    (!parts.is_empty()).then(|| format!("not ({})", parts.join(" | ")))
}

/// What one nextest run counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) passed: u64,
    /// Every selected test that did not pass: failed, timed out, crashed, or not run
    /// because the run was cancelled.
    pub(crate) failed: u64,
}

/// Reads nextest's closing summary line, e.g. `Summary [ 2.144s] 7 tests run: 5 passed, 1
/// failed, 1 timed out, 0 skipped` or, for a cancelled run, `7/8 tests run: 6 passed (2
/// slow), 1 failed, 0 skipped`. Any other line is `None`.
pub(crate) fn parse_summary(line: &str) -> Option<Counts> {
    let line = strip_ansi(line);
    let rest = line.trim_start().strip_prefix("Summary")?;
    let (_, rest) = rest.split_once(']')?;
    let (run, outcomes) = rest.split_once(':')?;
    let run = run.trim();
    let run = run
        .strip_suffix("tests run")
        .or_else(|| run.strip_suffix("test run"))?
        .trim();
    // `R/T`: R of the T selected tests ran before the run was cancelled.
    let selected: u64 = match run.split_once('/') {
        Some((_, total)) => total.parse().ok()?,
        None => run.parse().ok()?,
    };
    let passed = outcomes.split(',').find_map(|item| {
        let (count, label) = item.trim().split_once(' ')?;
        label
            .starts_with("passed")
            .then(|| count.parse::<u64>().ok())?
    })?;
    Some(Counts {
        passed,
        failed: selected.checked_sub(passed)?,
    })
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // A CSI sequence (`ESC [ ... letter`), as terminals colour text.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `cargo nextest run ...` with `filter`.
pub(crate) fn nextest(filter: Option<&str>) -> Command {
    let mut command = cargo();
    command.args(NEXTEST);
    if let Some(filter) = filter {
        command.args(["-E", filter]);
    }
    command
}

/// Runs `command` (a nextest run) as one named step, its output going to the terminal as
/// it comes, and answers the counts of its summary (`None` if it printed none, as when the
/// build fails).
pub(crate) fn run_counted(step: &str, command: &mut Command) -> (Result, Option<Counts>) {
    eprintln!("\n==> {step}: {}", show(command));
    let started = Instant::now();
    let mut child = match command.stderr(Stdio::piped()).spawn() {
        Ok(child) => child,
        Err(e) => return (Err(format!("cannot run {}: {e}", show(command))), None),
    };
    let mut counts = None;
    let stderr = child.stderr.take().expect("stderr is piped");
    let mut reader = BufReader::new(stderr);
    let mut line = Vec::new();
    let mut terminal = std::io::stderr();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {
                // Passed on byte for byte: test output need not be UTF-8.
                let _ = terminal.write_all(&line);
                if let Some(found) = parse_summary(&String::from_utf8_lossy(&line)) {
                    counts = Some(found);
                }
            }
            Err(e) => {
                eprintln!("==> {step}: reading nextest's output: {e}");
                break;
            }
        }
    }
    let status = match child.wait() {
        Ok(status) => status,
        Err(e) => return (Err(format!("waiting for nextest: {e}")), counts),
    };
    let result = match counts {
        Some(Counts { passed, failed }) if failed > 0 => Err(format!(
            "{step}: {failed} of {} tests failed",
            passed + failed
        )),
        _ if !status.success() => Err(format!("{step} failed ({status})")),
        None => Err(format!("{step}: nextest printed no summary")),
        Some(Counts { passed: 0, .. }) => Err(format!("{step}: no test ran")),
        Some(_) => Ok(()),
    };
    if result.is_ok() {
        eprintln!("==> {step}: ok in {:.1?}", started.elapsed());
    }
    (result, counts)
}

/// The closing line of one backend: `postgres: 23 passed, 0 failed`.
pub(crate) fn closing_line(name: &str, counts: Counts) -> String {
    format!("{name}: {} passed, {} failed", counts.passed, counts.failed)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use serde_json::Value;

    use super::*;
    use crate::workspace::{Package, Target};

    fn suite(name: &str) -> &'static Suite {
        SUITES.iter().find(|s| s.name == name).unwrap()
    }

    #[test]
    fn filters_select_a_package_or_one_of_its_test_binaries() {
        assert_eq!(suite("memory").filter(), "package(jobstore-memory)");
        assert_eq!(
            suite("postgres").filter(),
            "package(jobstore-sql) & binary(=postgres)"
        );
        assert_eq!(
            suite("mongo").filter(),
            "package(jobstore-mongo) & binary(=mongo)"
        );
        let names: Vec<&str> = SUITES.iter().map(|s| s.name).collect();
        assert_eq!(
            names,
            ["memory", "sqlite", "postgres", "mysql", "redis", "mongo"]
        );
    }

    #[test]
    fn the_general_run_excludes_every_backend_suite() {
        let filter = general_filter([suite("memory"), suite("redis")]).unwrap();
        assert_eq!(
            filter,
            "not ((package(jobstore-memory)) | (package(jobstore-redis) & binary(=redis)))"
        );
        assert_eq!(general_filter([]), None);
    }

    fn metadata(packages: &[(&str, &[&str])]) -> Metadata {
        Metadata {
            packages: packages
                .iter()
                .map(|(name, tests)| Package {
                    id: (*name).into(),
                    name: (*name).into(),
                    manifest_path: format!("{name}/Cargo.toml").into(),
                    description: None,
                    repository: None,
                    rust_version: None,
                    features: BTreeMap::new(),
                    targets: tests
                        .iter()
                        .map(|test| Target {
                            name: (*test).into(),
                            kind: vec!["test".into()],
                            src_path: format!("{name}/tests/{test}.rs").into(),
                            required_features: Vec::new(),
                        })
                        .collect(),
                    metadata: Value::Null,
                })
                .collect(),
            target_directory: PathBuf::from("target"),
        }
    }

    #[test]
    fn a_missing_package_or_test_binary_is_named() {
        let workspace = metadata(&[("jobstore-memory", &["it"]), ("jobstore-sql", &["sqlite"])]);
        assert_eq!(suite("memory").missing(&workspace), None);
        assert_eq!(suite("sqlite").missing(&workspace), None);
        let postgres = suite("postgres").missing(&workspace).unwrap();
        assert!(
            postgres.contains("jobstore-sql has no test binary `postgres`"),
            "{postgres}"
        );
        let redis = suite("redis").missing(&workspace).unwrap();
        assert!(redis.contains("no package jobstore-redis"), "{redis}");
    }

    // Lines as cargo-nextest 0.9.143 prints them (piped, so without colour).
    #[test]
    fn summaries_are_counted() {
        let cases = [
            (
                "     Summary [   0.035s] 2 tests run: 2 passed, 0 skipped",
                (2, 0),
            ),
            (
                "     Summary [   0.009s] 1 test run: 1 passed, 0 skipped",
                (1, 0),
            ),
            (
                "     Summary [   2.144s] 7 tests run: 5 passed, 1 failed, 1 timed out, 0 skipped",
                (5, 2),
            ),
            (
                "     Summary [   1.566s] 3 tests run: 3 passed (2 slow), 0 skipped",
                (3, 0),
            ),
            (
                "     Summary [   3.546s] 7/8 tests run: 6 passed (2 slow), 1 failed, 0 skipped",
                (6, 2),
            ),
            (
                "\u{1b}[1;32m     Summary\u{1b}[0m [   0.035s] \u{1b}[1m2\u{1b}[0m tests run: \
                 \u{1b}[1m2\u{1b}[0m \u{1b}[1;32mpassed\u{1b}[0m, \u{1b}[1m0\u{1b}[0m skipped",
                (2, 0),
            ),
        ];
        for (line, (passed, failed)) in cases {
            assert_eq!(
                parse_summary(line),
                Some(Counts { passed, failed }),
                "{line}"
            );
        }
    }

    #[test]
    fn other_lines_are_not_summaries() {
        for line in [
            "    Starting 2 tests across 1 binary (2 binaries skipped)",
            "        PASS [   0.011s] (1/2) sample::mysql b",
            "Summary of my test: it passed",
            "     Summary [   0.035s] many tests run: 2 passed",
            "",
        ] {
            assert_eq!(parse_summary(line), None, "{line}");
        }
    }

    #[test]
    fn closing_lines_have_the_plain_form() {
        let line = closing_line(
            "postgres",
            Counts {
                passed: 23,
                failed: 0,
            },
        );
        assert_eq!(line, "postgres: 23 passed, 0 failed");
    }
}

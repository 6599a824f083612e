//! `cargo xtask examples`: every example builds, and every example that ends by itself runs
//! and succeeds.
//!
//! Each example of the `examples` package is declared in its manifest, under
//! `[package.metadata.examples]`: `name = { run = true }` (optionally with `stdin`, a file
//! of the repository fed to it, `args`, and `timeout-secs`), or `name = { run = false, why =
//! "..." }` for one that serves until stopped. An undeclared example is an error, so a new
//! one cannot be skipped by accident.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::workspace::{Metadata, Package, Result, cargo, cargo_json, root, test_env, test_var};

pub(crate) const ABOUT: &str = "build every example, run each one that ends by itself";

/// The package holding the examples.
pub(crate) const PACKAGE: &str = "examples";

/// How long an example may run before it counts as hung.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// How `test-all` treats one example, from `[package.metadata.examples]`.
#[derive(Debug, PartialEq)]
pub(crate) enum Plan {
    Run {
        stdin: Option<String>,
        args: Vec<String>,
        timeout: Duration,
    },
    Skip,
}

/// Every example of the `examples` package with its plan; fails on an example that is not
/// declared, a declaration without an example, or a malformed entry.
pub(crate) fn plans(package: &Package) -> Result<BTreeMap<String, Plan>> {
    let declared = package.metadata["examples"]
        .as_object()
        .ok_or("examples/Cargo.toml has no [package.metadata.examples] table")?;
    let mut plans = BTreeMap::new();
    for example in package.targets("example") {
        let entry = declared.get(&example.name).ok_or_else(|| {
            format!(
                "example {:?} is not declared in [package.metadata.examples] of \
                 examples/Cargo.toml: add `{} = {{ run = true }}` if it ends by itself, \
                 else `{{ run = false, why = \"...\" }}`",
                example.name, example.name
            )
        })?;
        let plan = plan(entry)
            .map_err(|e| format!("[package.metadata.examples] {}: {e}", example.name))?;
        plans.insert(example.name.clone(), plan);
    }
    if let Some(stray) = declared.keys().find(|name| !plans.contains_key(*name)) {
        return Err(format!(
            "[package.metadata.examples] declares {stray:?}, which is not an example"
        ));
    }
    Ok(plans)
}

fn plan(entry: &Value) -> Result<Plan> {
    let known = ["run", "why", "stdin", "args", "timeout-secs"];
    if let Some(key) = entry
        .as_object()
        .ok_or("expected a table")?
        .keys()
        .find(|k| !known.contains(&k.as_str()))
    {
        return Err(format!("unknown key {key:?} (known: {})", known.join(", ")));
    }
    match entry["run"].as_bool() {
        Some(true) => Ok(Plan::Run {
            stdin: entry["stdin"].as_str().map(str::to_owned),
            args: entry["args"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            timeout: entry["timeout-secs"]
                .as_u64()
                .map_or(DEFAULT_TIMEOUT, Duration::from_secs),
        }),
        Some(false) if entry["why"].as_str().is_some_and(|w| !w.trim().is_empty()) => {
            Ok(Plan::Skip)
        }
        Some(false) => Err("`run = false` needs a `why`".into()),
        None => Err("needs `run = true` or `run = false`".into()),
    }
}

pub(crate) fn run(args: &[String]) -> Result {
    if !args.is_empty() {
        return Err(format!("examples takes no arguments, not {args:?}"));
    }
    let metadata = Metadata::load()?;
    let plans = plans(metadata.package(PACKAGE)?)?;

    let examples_id = metadata.package(PACKAGE)?.id.clone();
    // Every example with every feature. The build selects the workspace, as the test step
    // does, so features unify the same way and this build reuses that one (free after
    // `cargo nextest run`); `cargo xtask features` checks each example with only its own.
    let executables = build(&examples_id)?;
    default_build_has_no_driver()?;

    let logs = metadata.target_directory.join("xtask/examples");
    fs::create_dir_all(&logs).map_err(|e| format!("{}: {e}", logs.display()))?;
    let mut failures = Vec::new();
    for (name, plan) in &plans {
        let Plan::Run {
            stdin,
            args,
            timeout,
        } = plan
        else {
            eprintln!("  {name}: not run (declared `run = false`)");
            continue;
        };
        let executable = executables
            .get(name)
            .ok_or_else(|| format!("cargo built no executable for example {name:?}"))?;
        let log = logs.join(format!("{name}.log"));
        let args = match expand(args) {
            Ok(args) => args,
            Err(problem) => {
                eprintln!("  {name}: {problem}");
                failures.push(format!("example {name}: {problem}"));
                continue;
            }
        };
        match run_one(executable, stdin.as_deref(), &args, *timeout, &log) {
            Ok(took) => eprintln!("  {name}: ok in {took:.1?} (output in {})", log.display()),
            Err(problem) => {
                eprintln!("  {name}: {problem}; its output, from {}:", log.display());
                eprintln!("{}", fs::read_to_string(&log).unwrap_or_default());
                failures.push(format!("example {name}: {problem}"));
            }
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}

/// `args` with each `$NAME` replaced by the value of the variable `NAME` (from the servers
/// `test-all` settled on, else the environment).
fn expand(args: &[String]) -> Result<Vec<String>> {
    args.iter()
        .map(|arg| match arg.strip_prefix('$') {
            Some(name)
                if !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_') =>
            {
                test_var(name).ok_or_else(|| format!("argument {arg}: {name} is not set"))
            }
            _ => Ok(arg.clone()),
        })
        .collect()
}

/// Crates that talk to a server or embed a database, which the embedded default (the
/// quick start) must not compile.
const DRIVERS: &[&str] = &[
    "sqlx",
    "sqlx-core",
    "libsqlite3-sys",
    "tokio-postgres",
    "mysql_async",
    "redis",
    "mongodb",
    "lapin",
    "async-nats",
];

/// The examples package without features (what `cargo run -p examples --example
/// quickstart` compiles) depends on no database driver: backend examples bring theirs
/// through features.
fn default_build_has_no_driver() -> Result {
    let output = cargo()
        .args(["tree", "--locked", "-p", PACKAGE, "--no-default-features"])
        .args(["-e", "normal,build", "--prefix", "none", "--format", "{p}"])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo tree: {e}"))?;
    if !output.status.success() {
        return Err(format!("cargo tree failed ({})", output.status));
    }
    let tree = String::from_utf8_lossy(&output.stdout);
    let drivers = drivers_in(&tree);
    if drivers.is_empty() {
        eprintln!("  the examples without features compile no database driver");
        Ok(())
    } else {
        Err(format!(
            "the examples without features (the quick start's build) depend on {}: make \
             them optional dependencies behind the feature of the example that needs them",
            drivers.join(", ")
        ))
    }
}

/// The driver crates named in `cargo tree --format {p}` output (`name vX.Y.Z ...` lines).
fn drivers_in(tree: &str) -> Vec<&str> {
    let mut found: Vec<&str> = tree
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| DRIVERS.contains(name))
        .collect();
    found.sort_unstable();
    found.dedup();
    found
}

/// Runs one example from the root, its output (both streams) into `log`.
fn run_one(
    executable: &PathBuf,
    stdin: Option<&str>,
    args: &[String],
    timeout: Duration,
    log: &PathBuf,
) -> Result<Duration> {
    let output = File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let errors = output
        .try_clone()
        .map_err(|e| format!("{}: {e}", log.display()))?;
    let input = match stdin {
        Some(path) => {
            let path = root().join(path);
            Stdio::from(File::open(&path).map_err(|e| format!("stdin {}: {e}", path.display()))?)
        }
        None => Stdio::null(),
    };
    let started = Instant::now();
    let mut child = Command::new(executable)
        .args(args)
        .envs(test_env().iter().map(|(k, v)| (k, v)))
        .current_dir(root())
        .stdin(input)
        .stdout(output)
        .stderr(errors)
        .spawn()
        .map_err(|e| format!("cannot start: {e}"))?;
    loop {
        if let Some(status) = child.try_wait().map_err(|e| format!("waiting: {e}"))? {
            return if status.success() {
                Ok(started.elapsed())
            } else {
                Err(format!("failed ({status})"))
            };
        }
        if started.elapsed() > timeout {
            // Killing a child we started, by its handle; it is reaped right after.
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("still running after {timeout:?}: killed"));
        }
        sleep(Duration::from_millis(50));
    }
}

/// Builds every example with every feature, as `cargo xtask examples` runs them (so after the
/// test step this is free), and answers each example's executable by name.
pub(crate) fn build(examples_id: &str) -> Result<BTreeMap<String, PathBuf>> {
    eprintln!("\n==> build: cargo build --workspace --examples --all-features");
    let started = Instant::now();
    let mut executables: BTreeMap<String, PathBuf> = BTreeMap::new();
    let built = cargo_json(
        cargo().args([
            "build",
            "--locked",
            "--workspace",
            "--examples",
            "--all-features",
            "--message-format=json-render-diagnostics",
        ]),
        |message| {
            let is_example = message["target"]["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "example"));
            if let (true, Some(name), Some(executable)) = (
                message["reason"] == "compiler-artifact"
                    && message["package_id"] == examples_id
                    && is_example,
                message["target"]["name"].as_str(),
                message["executable"].as_str(),
            ) {
                executables.insert(name.to_owned(), executable.into());
            }
        },
    )?;
    if !built {
        return Err("the examples do not build".into());
    }
    eprintln!("==> build: ok in {:.1?}", started.elapsed());
    Ok(executables)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::workspace::Target;

    fn package(examples: &[&str], declared: Value) -> Package {
        Package {
            id: "examples".into(),
            name: "examples".into(),
            manifest_path: "examples/Cargo.toml".into(),
            description: None,
            repository: None,
            rust_version: None,
            features: BTreeMap::new(),
            targets: examples
                .iter()
                .map(|name| Target {
                    name: (*name).into(),
                    kind: vec!["example".into()],
                    src_path: format!("examples/examples/{name}.rs").into(),
                    required_features: Vec::new(),
                })
                .collect(),
            metadata: json!({ "examples": declared }),
        }
    }

    #[test]
    fn drivers_are_found_by_crate_name() {
        let tree = "examples v0.0.0 (/repo/examples)\nsqlx v0.8.6\nredis-test v1.0.0\n\
                    sqlx v0.8.6 (*)\nchrono v0.4.45\n";
        assert_eq!(drivers_in(tree), ["sqlx"]);
        assert_eq!(
            drivers_in("examples v0.0.0\ntokio v1.54.1\n"),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn dollar_arguments_name_variables() {
        let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        // PATH is set wherever tests run.
        let path = std::env::var("PATH").unwrap();
        assert_eq!(
            expand(&args(&["-v", "$PATH", "$lower", "$"])).unwrap(),
            args(&["-v", &path, "$lower", "$"])
        );
        let error = expand(&args(&["$XTASK_SURELY_UNSET_VARIABLE"])).unwrap_err();
        assert!(
            error.contains("XTASK_SURELY_UNSET_VARIABLE is not set"),
            "{error}"
        );
    }

    #[test]
    fn every_example_has_a_plan() {
        let declared = json!({
            "a": {"run": true},
            "b": {"run": true, "stdin": "data.txt", "args": ["-v"], "timeout-secs": 5},
            "c": {"run": false, "why": "serves until stopped"},
        });
        let plans = plans(&package(&["a", "b", "c"], declared)).unwrap();
        assert_eq!(
            plans["b"],
            Plan::Run {
                stdin: Some("data.txt".into()),
                args: vec!["-v".into()],
                timeout: Duration::from_secs(5)
            }
        );
        assert_eq!(plans["c"], Plan::Skip);
    }

    #[test]
    fn an_undeclared_example_is_an_error() {
        let error = plans(&package(&["a", "new"], json!({"a": {"run": true}}))).unwrap_err();
        assert!(error.contains("\"new\" is not declared"), "{error}");
    }

    #[test]
    fn a_declaration_without_an_example_is_an_error() {
        let declared = json!({"a": {"run": true}, "gone": {"run": true}});
        let error = plans(&package(&["a"], declared)).unwrap_err();
        assert!(error.contains("\"gone\""), "{error}");
    }

    #[test]
    fn not_running_an_example_needs_a_reason_and_keys_are_checked() {
        for entry in [
            json!({"run": false}),
            json!({"run": false, "why": " "}),
            json!({}),
            json!({"run": true, "stdn": "typo"}),
        ] {
            let declared = json!({ "a": entry });
            assert!(plans(&package(&["a"], declared)).is_err(), "{entry}");
        }
    }
}

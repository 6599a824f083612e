//! What every command needs: the workspace root, running cargo, and `cargo metadata`.

use std::collections::BTreeMap;
use std::env;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Instant;

use serde_json::Value;

/// What a command returns: `Err` carries the message printed before exiting with failure.
pub(crate) type Result<T = ()> = std::result::Result<T, String>;

/// The workspace root, found from this crate's manifest so `cargo xtask` works from any
/// directory.
pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// A `cargo` command run at the root, with the cargo that runs xtask (the pinned toolchain)
/// and the [test environment](test_env).
pub(crate) fn cargo() -> Command {
    let mut command = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    command
        .current_dir(root())
        // Incremental artifacts only cost time and disk in a one-shot run.
        .env("CARGO_INCREMENTAL", "0")
        .envs(test_env().iter().map(|(k, v)| (k, v)));
    command
}

/// The variables the server probe settled on (`SCHEDULER_TEST_*`), given to every process
/// the commands start. Kept here rather than in xtask's own environment because
/// `std::env::set_var` is `unsafe` in edition 2024 and the workspace forbids `unsafe`.
static TEST_ENV: OnceLock<Vec<(String, String)>> = OnceLock::new();

/// Sets the [test environment](test_env), once per run.
pub(crate) fn set_test_env(vars: Vec<(String, String)>) -> Result {
    TEST_ENV
        .set(vars)
        .map_err(|_| "the test environment is set twice".to_owned())
}

/// The variables the server probe settled on; empty outside `test-all`.
pub(crate) fn test_env() -> &'static [(String, String)] {
    TEST_ENV.get().map_or(&[], Vec::as_slice)
}

/// The value of `name` in the [test environment](test_env), else in xtask's own.
pub(crate) fn test_var(name: &str) -> Option<String> {
    test_env()
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .or_else(|| env::var(name).ok())
}

/// Runs `cargo <args>` as one named step, its output going straight to the terminal.
pub(crate) fn cargo_step(step: &str, args: &[&str]) -> Result {
    run_step(step, cargo().args(args))
}

/// Runs `command` as one named step, its output going straight to the terminal.
pub(crate) fn run_step(step: &str, command: &mut Command) -> Result {
    eprintln!("\n==> {step}: {}", show(command));
    let started = Instant::now();
    let status = command
        .status()
        .map_err(|e| format!("{step}: cannot run {}: {e}", show(command)))?;
    if !status.success() {
        return Err(format!("{step} failed ({status})"));
    }
    eprintln!("==> {step}: ok in {:.1?}", started.elapsed());
    Ok(())
}

/// Runs a cargo build command with `--message-format=json...` and hands each JSON message
/// on stdout to `on_message`; cargo's own status lines still go to the terminal. Answers
/// whether cargo succeeded.
pub(crate) fn cargo_json(
    command: &mut Command,
    mut on_message: impl FnMut(&Value),
) -> Result<bool> {
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", show(command)))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| format!("reading cargo's output: {e}"))?;
        // Build scripts and examples may print non-JSON lines; only cargo's messages count.
        if let Ok(message) = serde_json::from_str::<Value>(&line) {
            on_message(&message);
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for {}: {e}", show(command)))?;
    Ok(status.success())
}

pub(crate) fn show(command: &Command) -> String {
    let program = Path::new(command.get_program())
        .file_name()
        .map_or_else(|| "?".into(), |name| name.to_string_lossy());
    let args: Vec<_> = command.get_args().map(|a| a.to_string_lossy()).collect();
    format!("{program} {}", args.join(" "))
}

/// The parts of `cargo metadata --no-deps` the commands read.
#[derive(Debug)]
pub(crate) struct Metadata {
    /// The workspace's packages.
    pub(crate) packages: Vec<Package>,
    /// Where cargo builds (respects `CARGO_TARGET_DIR`).
    pub(crate) target_directory: PathBuf,
}

/// One workspace package.
#[derive(Debug)]
pub(crate) struct Package {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) manifest_path: PathBuf,
    pub(crate) description: Option<String>,
    pub(crate) repository: Option<String>,
    pub(crate) rust_version: Option<String>,
    /// Every feature and what it enables (`default` included).
    pub(crate) features: BTreeMap<String, Vec<String>>,
    pub(crate) targets: Vec<Target>,
    /// The package's `[package.metadata]` table.
    pub(crate) metadata: Value,
}

/// One build target of a package.
#[derive(Debug)]
pub(crate) struct Target {
    pub(crate) name: String,
    /// `lib`, `bin`, `example`, `test`, `bench`, ...
    pub(crate) kind: Vec<String>,
    pub(crate) src_path: PathBuf,
    pub(crate) required_features: Vec<String>,
}

impl Package {
    /// Its targets of `kind`.
    pub(crate) fn targets(&self, kind: &str) -> impl Iterator<Item = &Target> {
        self.targets
            .iter()
            .filter(move |t| t.kind.iter().any(|k| k == kind))
    }

    /// Whether it has a library target.
    pub(crate) fn has_lib(&self) -> bool {
        self.targets
            .iter()
            .any(|t| t.kind.iter().any(|k| k.ends_with("lib")))
    }
}

impl Metadata {
    /// Reads the workspace's metadata (no dependency resolution, so no network).
    pub(crate) fn load() -> Result<Metadata> {
        let output = cargo()
            .args(["metadata", "--format-version", "1", "--no-deps"])
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
        if !output.status.success() {
            return Err(format!("cargo metadata failed ({})", output.status));
        }
        let json: Value = serde_json::from_slice(&output.stdout)
            .map_err(|e| format!("cargo metadata printed something else than JSON: {e}"))?;
        Self::from_json(&json)
    }

    fn from_json(json: &Value) -> Result<Metadata> {
        let string = |v: &Value| v.as_str().map(str::to_owned);
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| a.iter().filter_map(string).collect())
                .unwrap_or_default()
        };
        let packages = json["packages"]
            .as_array()
            .ok_or("cargo metadata without packages")?
            .iter()
            .map(|p| Package {
                id: string(&p["id"]).unwrap_or_default(),
                name: string(&p["name"]).unwrap_or_default(),
                manifest_path: string(&p["manifest_path"]).unwrap_or_default().into(),
                description: string(&p["description"]),
                repository: string(&p["repository"]),
                rust_version: string(&p["rust_version"]),
                features: p["features"]
                    .as_object()
                    .map(|f| f.iter().map(|(k, v)| (k.clone(), strings(v))).collect())
                    .unwrap_or_default(),
                targets: p["targets"]
                    .as_array()
                    .map(|targets| {
                        targets
                            .iter()
                            .map(|t| Target {
                                name: string(&t["name"]).unwrap_or_default(),
                                kind: strings(&t["kind"]),
                                src_path: string(&t["src_path"]).unwrap_or_default().into(),
                                required_features: strings(&t["required-features"]),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                metadata: p["metadata"].clone(),
            })
            .collect();
        Ok(Metadata {
            packages,
            target_directory: string(&json["target_directory"])
                .ok_or("cargo metadata without target_directory")?
                .into(),
        })
    }

    /// The package called `name`.
    pub(crate) fn package(&self, name: &str) -> Result<&Package> {
        self.packages
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| format!("no package {name:?} in the workspace"))
    }

    /// Whether `package_id` (from a cargo JSON message) is one of the workspace's packages.
    pub(crate) fn is_member(&self, package_id: &str) -> bool {
        self.packages.iter().any(|p| p.id == package_id)
    }
}

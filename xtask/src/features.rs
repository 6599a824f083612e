//! `cargo xtask features`: every package with cargo features builds without warnings with no
//! features, with each feature alone, with its default features and with all of them.
//!
//! The packages and features are read from `cargo metadata`, so a feature added to a
//! manifest is checked without touching this file. It runs `cargo check` (no code
//! generation) and leaves `RUSTFLAGS` alone, so dependencies compiled by earlier steps are
//! reused; warnings of the workspace's own crates are read from cargo's JSON messages
//! (cargo replays the cached warnings of crates it does not recompile).
//!
//! A library is checked as its dependents compile it: the library and binaries, without
//! dev-dependencies (which could enable features and hide a missing `cfg`). A package
//! without a library (`examples`) is checked through its examples.

use std::collections::BTreeSet;
use std::time::Instant;

use serde_json::Value;

use crate::workspace::{Metadata, Package, Result, cargo, cargo_json};

pub(crate) const ABOUT: &str = "check each package with no, each, default and all features";

pub(crate) fn run(args: &[String]) -> Result {
    if !args.is_empty() {
        return Err(format!("features takes no arguments, not {args:?}"));
    }
    let metadata = Metadata::load()?;
    let started = Instant::now();
    let mut failures = Vec::new();
    let mut checks = 0;
    for package in &metadata.packages {
        for features in feature_sets(package) {
            checks += 1;
            if let Err(message) = check(&metadata, package, &features) {
                failures.push(message);
            }
        }
    }
    eprintln!("==> features: {checks} checks in {:.1?}", started.elapsed());
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}

/// Which features one check enables.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Features {
    None,
    Only(String),
    Default,
    All,
}

impl Features {
    fn cargo_args(&self) -> Vec<String> {
        match self {
            Features::None => vec!["--no-default-features".into()],
            Features::Only(feature) => vec![
                "--no-default-features".into(),
                "--features".into(),
                feature.clone(),
            ],
            Features::Default => vec![],
            Features::All => vec!["--all-features".into()],
        }
    }

    fn describe(&self) -> String {
        match self {
            Features::None => "no features".into(),
            Features::Only(feature) => format!("only {feature:?}"),
            Features::Default => "default features".into(),
            Features::All => "all features".into(),
        }
    }
}

/// The distinct feature sets to check `package` with; none for a package without features.
fn feature_sets(package: &Package) -> Vec<Features> {
    let own: Vec<&String> = package
        .features
        .keys()
        .filter(|f| *f != "default")
        .collect();
    if own.is_empty() {
        // Clippy's `--all-features` build already is its only build.
        return Vec::new();
    }
    let default: BTreeSet<&str> = package
        .features
        .get("default")
        .map(|d| d.iter().map(String::as_str).collect())
        .unwrap_or_default();
    let mut sets = vec![Features::None];
    sets.extend(own.iter().map(|f| Features::Only((*f).clone())));
    // Skip the sets that equal one already listed.
    let default_is_listed = default.is_empty()
        || (default.len() == 1 && own.iter().any(|f| default.contains(f.as_str())));
    let default_is_all = own.iter().all(|f| default.contains(f.as_str()));
    if !default_is_listed && !default_is_all {
        sets.push(Features::Default);
    }
    if own.len() > 1 {
        sets.push(Features::All);
    }
    sets
}

fn check(metadata: &Metadata, package: &Package, features: &Features) -> Result {
    let started = Instant::now();
    let mut command = cargo();
    command.args([
        "check",
        "--locked",
        "--quiet",
        "--message-format=json",
        "-p",
    ]);
    command.arg(&package.name);
    if package.has_lib() {
        command.arg("--lib");
        if package.targets("bin").next().is_some() {
            command.arg("--bins");
        }
    } else {
        command.arg("--examples");
    }
    command.args(features.cargo_args());

    let mut diagnostics = Vec::new();
    let succeeded = cargo_json(&mut command, |message| {
        if let Some(rendered) = workspace_diagnostic(metadata, message) {
            diagnostics.push(rendered);
        }
    })?;
    let what = format!("{} with {}", package.name, features.describe());
    if succeeded && diagnostics.is_empty() {
        eprintln!("  {what}: ok in {:.1?}", started.elapsed());
        return Ok(());
    }
    for rendered in &diagnostics {
        eprint!("{rendered}");
    }
    let problem = if succeeded {
        format!("{} warning(s)", diagnostics.len())
    } else {
        "does not build".to_owned()
    };
    eprintln!("  {what}: {problem}");
    Err(format!(
        "{what}: {problem} (cargo check -p {} {})",
        package.name,
        features.cargo_args().join(" ")
    ))
}

/// The rendered text of a warning or error about one of the workspace's own crates.
fn workspace_diagnostic(metadata: &Metadata, message: &Value) -> Option<String> {
    if message["reason"] != "compiler-message" {
        return None;
    }
    let level = message["message"]["level"].as_str()?;
    if !(level == "warning" || level.starts_with("error")) {
        return None;
    }
    if !metadata.is_member(message["package_id"].as_str()?) {
        return None;
    }
    Some(message["message"]["rendered"].as_str()?.to_owned())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn package(features: &[(&str, &[&str])]) -> Package {
        Package {
            id: "p".into(),
            name: "p".into(),
            manifest_path: "Cargo.toml".into(),
            description: None,
            repository: None,
            rust_version: None,
            features: features
                .iter()
                .map(|(name, enables)| {
                    (
                        (*name).to_owned(),
                        enables.iter().map(|e| (*e).to_owned()).collect(),
                    )
                })
                .collect::<BTreeMap<_, _>>(),
            targets: Vec::new(),
            metadata: Value::Null,
        }
    }

    fn only(feature: &str) -> Features {
        Features::Only(feature.into())
    }

    #[test]
    fn a_package_without_features_is_not_checked() {
        assert_eq!(feature_sets(&package(&[])), []);
        assert_eq!(feature_sets(&package(&[("default", &[])])), []);
    }

    #[test]
    fn one_feature_is_checked_on_and_off() {
        let sets = feature_sets(&package(&[("default", &[]), ("a", &[])]));
        assert_eq!(sets, [Features::None, only("a")]);
        let sets = feature_sets(&package(&[("default", &["a"]), ("a", &[])]));
        assert_eq!(sets, [Features::None, only("a")]);
    }

    #[test]
    fn several_features_are_checked_alone_by_default_and_together() {
        let sets = feature_sets(&package(&[
            ("default", &["a", "b"]),
            ("a", &[]),
            ("b", &[]),
            ("c", &[]),
        ]));
        assert_eq!(
            sets,
            [
                Features::None,
                only("a"),
                only("b"),
                only("c"),
                Features::Default,
                Features::All
            ]
        );
    }

    #[test]
    fn default_features_equal_to_all_are_checked_once() {
        let sets = feature_sets(&package(&[
            ("default", &["a", "b"]),
            ("a", &[]),
            ("b", &[]),
        ]));
        assert_eq!(sets, [Features::None, only("a"), only("b"), Features::All]);
    }

    #[test]
    fn only_workspace_warnings_and_errors_count() {
        let metadata = Metadata {
            packages: vec![package(&[])],
            target_directory: "target".into(),
        };
        let message = |package_id: &str, level: &str| {
            serde_json::json!({
                "reason": "compiler-message",
                "package_id": package_id,
                "message": {"level": level, "rendered": "warning: unused\n"},
            })
        };
        assert!(workspace_diagnostic(&metadata, &message("p", "warning")).is_some());
        assert!(workspace_diagnostic(&metadata, &message("p", "error")).is_some());
        assert!(workspace_diagnostic(&metadata, &message("p", "note")).is_none());
        assert!(workspace_diagnostic(&metadata, &message("serde", "warning")).is_none());
        let artifact = serde_json::json!({"reason": "compiler-artifact", "package_id": "p"});
        assert!(workspace_diagnostic(&metadata, &artifact).is_none());
    }
}

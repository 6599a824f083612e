//! `cargo xtask docs`: the API docs build with every intra-doc link resolved, and the
//! README's `[dependencies]` block resolves against this workspace.

use std::env;
use std::fs;
use std::path::Path;

use crate::workspace::{Metadata, Result, cargo, run_step};

pub(crate) const ABOUT: &str =
    "rustdoc with broken links denied; the README's dependencies resolve";

/// Denied on top of what `RUSTDOCFLAGS` already holds: links to items that do not exist or
/// that readers cannot see, and every other rustdoc warning (bare URLs, unclosed HTML tags).
/// Only rustdoc reads these flags, so the dependencies earlier steps compiled are reused.
const RUSTDOC_DENY: &[&str] = &[
    "-D",
    "rustdoc::broken_intra_doc_links",
    "-D",
    "rustdoc::private_intra_doc_links",
    "-D",
    "warnings",
];

pub(crate) fn run(args: &[String]) -> Result {
    if !args.is_empty() {
        return Err(format!("docs takes no arguments, not {args:?}"));
    }
    let mut flags = env::var("RUSTDOCFLAGS").unwrap_or_default();
    for flag in RUSTDOC_DENY {
        flags.push(' ');
        flags.push_str(flag);
    }
    // `--examples` documents the examples too, and makes cargo resolve features with the
    // dev-dependencies, as clippy's `--all-targets` did: the dependencies clippy checked
    // are reused instead of checked again with other features.
    run_step(
        "rustdoc",
        cargo()
            .args([
                "doc",
                "--workspace",
                "--all-features",
                "--no-deps",
                "--locked",
            ])
            .args(["--lib", "--bins", "--examples"])
            .env("RUSTDOCFLAGS", flags.trim()),
    )?;
    readme_dependencies_resolve(&Metadata::load()?)
}

/// Copies the README's `[dependencies]` block into a scratch package, points its git
/// dependencies on this repository at the workspace's folders, and has cargo resolve it
/// offline: every package name, feature and version requirement in the block must exist.
fn readme_dependencies_resolve(metadata: &Metadata) -> Result {
    let root = crate::workspace::root();
    let readme = fs::read_to_string(root.join("README.md"))
        .map_err(|e| format!("cannot read README.md: {e}"))?;
    let block = dependencies_block(&readme)
        .ok_or("README.md has no ```toml block with a [dependencies] table")?;
    let repository = metadata
        .package("scheduler-core")?
        .repository
        .clone()
        .ok_or("[workspace.package] has no repository")?;
    let dependencies = local_dependencies(block, &repository, &root)?;

    let scratch = metadata.target_directory.join("xtask/readme-dependencies");
    fs::create_dir_all(scratch.join("src")).map_err(|e| format!("{}: {e}", scratch.display()))?;
    let manifest = format!(
        "[package]\nname = \"readme-dependencies\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\
         publish = false\n\n# Its own workspace, not a member of the one around it.\n[workspace]\n\n\
         {dependencies}"
    );
    let write = |path: &Path, text: &str| {
        fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
    };
    write(&scratch.join("Cargo.toml"), &manifest)?;
    write(&scratch.join("src/main.rs"), "fn main() {}\n")?;
    run_step(
        "README dependencies",
        cargo()
            .current_dir(&scratch)
            // Resolution only: it reads the index that earlier steps cached, downloads
            // nothing and compiles nothing (the README's example is a doctest).
            .args(["generate-lockfile", "--offline", "--quiet"]),
    )
    .map_err(|e| format!("{e}: the README's [dependencies] block does not resolve"))
}

/// The first ```toml block of `readme` holding a `[dependencies]` table.
fn dependencies_block(readme: &str) -> Option<&str> {
    let mut rest = readme;
    while let Some(start) = rest.find("```toml\n") {
        let body = &rest[start + "```toml\n".len()..];
        let end = body.find("```")?;
        if body[..end].contains("[dependencies]") {
            return Some(&body[..end]);
        }
        rest = &body[end + 3..];
    }
    None
}

/// `block` with each `git = "<repository>"` replaced by the path of the workspace folder
/// named like the dependency (package names are folder names). Fails on a git dependency on
/// another URL, or a workspace package named without a git source.
fn local_dependencies(block: &str, repository: &str, root: &Path) -> Result<String> {
    let git = format!("git = \"{repository}\"");
    let mut out = String::new();
    for line in block.lines() {
        let name = line.split('=').next().unwrap_or("").trim();
        let member = !name.is_empty() && root.join(name).join("Cargo.toml").is_file();
        if line.contains("git = ") && !line.contains(&git) {
            return Err(format!(
                "README.md: {line:?} does not name the repository ({repository})"
            ));
        }
        if member && !line.contains(&git) {
            return Err(format!(
                "README.md: {line:?} must be a git dependency on {repository} (the crates are not published)"
            ));
        }
        if member {
            let path = root.join(name);
            out.push_str(&line.replace(&git, &format!("path = {:?}", path.display().to_string())));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_toml_block_with_dependencies() {
        let readme = "```toml\n[package]\n```\n\ntext\n\n```toml\n[dependencies]\na = \"1\"\n```\n";
        assert_eq!(
            dependencies_block(readme),
            Some("[dependencies]\na = \"1\"\n")
        );
        assert_eq!(dependencies_block("```toml\n[package]\n```\n"), None);
    }

    #[test]
    fn git_dependencies_on_the_repository_become_workspace_paths() {
        let root = crate::workspace::root();
        let block = "[dependencies]\n\
                     triggers = { git = \"https://x.test/repo\", features = [\"cron\"] }\n\
                     tokio = \"1\"\n";
        let local = local_dependencies(block, "https://x.test/repo", &root).unwrap();
        let triggers = root.join("triggers").display().to_string();
        assert!(local.contains(&format!(
            "triggers = {{ path = {triggers:?}, features = [\"cron\"] }}"
        )));
        assert!(local.contains("tokio = \"1\""));
    }

    #[test]
    fn other_sources_for_workspace_crates_are_refused() {
        let root = crate::workspace::root();
        let published = "[dependencies]\nexecutors = \"0.1\"\n";
        assert!(local_dependencies(published, "https://x.test/repo", &root).is_err());
        let elsewhere = "[dependencies]\nexecutors = { git = \"https://y.test/fork\" }\n";
        assert!(local_dependencies(elsewhere, "https://x.test/repo", &root).is_err());
    }
}

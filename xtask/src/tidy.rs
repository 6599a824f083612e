//! `cargo xtask tidy`: the repository's rules that neither rustc nor clippy checks.
//!
//! * Every `TODO` or `FIXME` names its issue: `TODO(#12)`.
//! * Public items are documented: `missing_docs` is a workspace lint that clippy's `-D
//!   warnings` makes an error, so tidy checks what could escape it or what it cannot see: no
//!   crate- or module-wide `allow`, an `allow(missing_docs)` or `doc(hidden)` only on one
//!   item with a reason, `[lints] workspace = true` in every manifest, a description and
//!   documented cargo features (`## ` comments) in every package, a crate doc with an
//!   example in every library, no ignored (never compiled) examples, and every markdown file
//!   with Rust examples compiled by a crate (`include_str!`).
//! * Docs and tests name no path outside the repository: no absolute path into a machine,
//!   no relative path that leaves the repository, and no file named in docs or comments
//!   that is not in it.
//! * No library source file (under `src/`, tests apart) is longer than 900 lines.
//! * No `#[ignore]` or `#[should_panic]` test.
//! * Every package declares the `rust-version` that is built and tested: the pinned
//!   toolchain's.
//! * Every example is declared in `[package.metadata.examples]`, and the README shows its
//!   command with the features it requires.
//!
//! It is also a test of this crate (`tidy` below), so the test run reports a broken rule.

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::path::{Component, Path, PathBuf};

use crate::examples;
use crate::workspace::{Metadata, Package, Result, root};

pub(crate) const ABOUT: &str = "repository rules: TODOs, docs, lint escapes, paths, file sizes";

/// The most lines a library source file may have.
const MAX_LINES: usize = 900;

/// These files spell out every pattern tidy looks for, so their text is not checked.
const SELF: &str = "xtask/src/tidy";

pub(crate) fn run(args: &[String]) -> Result {
    if !args.is_empty() {
        return Err(format!("tidy takes no arguments, not {args:?}"));
    }
    let problems = check(&root(), &Metadata::load()?)?;
    if problems.is_empty() {
        eprintln!("tidy: ok");
        return Ok(());
    }
    for problem in &problems {
        eprintln!("{problem}");
    }
    Err(format!("{} tidy problem(s)", problems.len()))
}

/// One broken rule, at a file and line of the repository.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Problem {
    file: String,
    line: usize,
    message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            0 => write!(f, "{}: {}", self.file, self.message),
            line => write!(f, "{}:{line}: {}", self.file, self.message),
        }
    }
}

#[derive(Debug, Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn add(&mut self, file: &str, line: usize, message: impl Into<String>) {
        self.0.push(Problem {
            file: file.to_owned(),
            line,
            message: message.into(),
        });
    }
}

/// A text file of the repository: its path from the root (with `/`) and its text.
struct File {
    path: String,
    text: String,
}

impl File {
    fn extension(&self) -> &str {
        self.path.rsplit_once('.').map_or("", |(_, ext)| ext)
    }

    fn lines(&self) -> impl Iterator<Item = (usize, &str)> {
        self.text.lines().enumerate().map(|(i, line)| (i + 1, line))
    }
}

fn check(root: &Path, metadata: &Metadata) -> Result<Vec<Problem>> {
    let files = text_files(root)?;
    let mut problems = Problems::default();
    let included = included_files(&files);
    for file in files.iter().filter(|f| !f.path.starts_with(SELF)) {
        todos_name_their_issue(file, &mut problems);
        if matches!(file.extension(), "rs" | "md" | "toml") {
            paths_stay_inside(root, file, &mut problems);
        }
        if matches!(file.extension(), "rs" | "md") {
            examples_are_compiled(file, &included, &mut problems);
        }
        if file.extension() == "rs" {
            lints_are_not_escaped(file, &mut problems);
            tests_are_not_ignored(file, &mut problems);
        }
    }
    for file in &files {
        if file.extension() == "rs" {
            library_files_stay_small(file, &mut problems);
        }
    }
    packages_are_documented(root, metadata, &mut problems);
    rust_version_is_the_toolchain(root, metadata, &mut problems);
    examples_are_declared_and_shown(root, metadata, &files, &mut problems);
    let mut problems = problems.0;
    problems.sort();
    Ok(problems)
}

/// Every text file of the repository (sources, docs, manifests, scripts), build output and
/// git's directory apart.
fn text_files(root: &Path) -> Result<Vec<File>> {
    fn walk(root: &Path, dir: &Path, files: &mut Vec<File>) -> Result {
        let entries = fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut entries: Vec<_> = entries.filter_map(|e| e.ok()).collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                if name != ".git" && name != "target" && !name.starts_with("target-") {
                    walk(root, &path, files)?;
                }
                continue;
            }
            let relative = path
                .strip_prefix(root)
                .expect("walked below the root")
                .to_string_lossy()
                .replace('\\', "/");
            let text_extension = matches!(
                name.rsplit_once('.').map(|(_, ext)| ext),
                Some("rs" | "md" | "toml" | "sh" | "yml" | "yaml" | "py")
            );
            if !(text_extension || relative.starts_with(".ci/")) {
                continue;
            }
            match fs::read_to_string(&path) {
                Ok(text) => files.push(File {
                    path: relative,
                    text,
                }),
                // Not text after all (a fuzzing corpus, say): no rule reads it.
                Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {}
                Err(e) => return Err(format!("{relative}: {e}")),
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(root, root, &mut files)?;
    Ok(files)
}

// ----- TODOs ------------------------------------------------------------------------------

fn todos_name_their_issue(file: &File, problems: &mut Problems) {
    for (n, line) in file.lines() {
        for marker in ["TODO", "FIXME"] {
            for (at, _) in line.match_indices(marker) {
                let before = line[..at].chars().next_back();
                let rest = &line[at + marker.len()..];
                let after = rest.chars().next();
                let is_word = !before.is_some_and(is_word_char) && !after.is_some_and(is_word_char);
                if is_word && !names_an_issue(rest) {
                    problems.add(
                        &file.path,
                        n,
                        format!("{marker} without an issue number: write {marker}(#N)"),
                    );
                }
            }
        }
    }
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Whether `rest` starts with `(#N)`.
fn names_an_issue(rest: &str) -> bool {
    rest.strip_prefix("(#")
        .and_then(|r| r.split_once(')'))
        .is_some_and(|(number, _)| !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()))
}

// ----- paths ------------------------------------------------------------------------------

/// Absolute paths that only exist on somebody's machine.
const MACHINE_PATHS: &[&str] = &["/work/", "/home/", "/root/", "/Users/", "/mnt/"];

fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/')
}

fn paths_stay_inside(root: &Path, file: &File, problems: &mut Problems) {
    for (n, line) in file.lines() {
        // Prose names files that exist; code may name files it is about to create.
        let prose = match file.extension() {
            "md" => true,
            "rs" => line.trim_start().starts_with("//"),
            _ => false,
        };
        for needle in MACHINE_PATHS {
            for (at, _) in line.match_indices(needle) {
                if !line[..at]
                    .chars()
                    .next_back()
                    .is_some_and(|c| is_path_char(c) || c == ':')
                {
                    problems.add(
                        &file.path,
                        n,
                        format!("absolute path `{needle}...` outside the repository"),
                    );
                }
            }
        }
        for (token, delimited) in path_tokens(line) {
            // `/../x` follows a directory (`concat!(env!("CARGO_MANIFEST_DIR"), "/../x")`);
            // other absolute paths are the machine paths above, or system files.
            let relative = match token.strip_prefix('/') {
                Some(rest) if rest.starts_with("..") => rest,
                Some(_) => continue,
                None => token,
            };
            let checked = relative.contains("../")
                || (prose && delimited && relative.contains('/') && has_file_extension(relative));
            if checked && let Some(message) = unresolved(root, &file.path, relative) {
                problems.add(&file.path, n, message);
            }
        }
    }
}

/// The path-like words of `line`, each with whether it is quoted (in backticks, quotes or
/// parentheses), where a name of a file is meant rather than prose.
fn path_tokens(line: &str) -> Vec<(&str, bool)> {
    let mut tokens = Vec::new();
    let mut start = None;
    for (i, c) in line.char_indices().chain([(line.len(), ' ')]) {
        match (is_path_char(c), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                start = None;
                let before = line[..s].chars().next_back();
                // The rest of a URL, or a Rust path (`a::b`), is not a file.
                if before == Some(':') {
                    continue;
                }
                let token = line[s..i].trim_end_matches('.');
                if token.starts_with("//") || !token.contains('/') {
                    continue;
                }
                let delimited = matches!(before, Some('`' | '"' | '(' | '\''));
                tokens.push((token, delimited));
            }
            _ => {}
        }
    }
    tokens
}

fn has_file_extension(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or("");
    name.rsplit_once('.').is_some_and(|(stem, ext)| {
        !stem.is_empty()
            && (1..=5).contains(&ext.len())
            && ext.chars().all(|c| c.is_ascii_alphanumeric())
    })
}

/// Why `path`, written in `file`, names nothing in the repository; `None` if it does.
///
/// A path in a file may be meant from the file's folder (a markdown link, `include_str!`),
/// from its crate (a test's working directory) or from the root (a command in the README):
/// it is fine when it names something that exists from one of them.
fn unresolved(root: &Path, file: &str, path: &str) -> Option<String> {
    let file_dir = Path::new(file).parent().unwrap_or(Path::new(""));
    let crate_dir = file_dir
        .ancestors()
        .find(|dir| root.join(dir).join("Cargo.toml").is_file())
        .unwrap_or(Path::new(""));
    let mut leaves = false;
    for base in [file_dir, crate_dir, Path::new("")] {
        match normalize(&base.join(path)) {
            None => leaves = true,
            Some(inside) if root.join(&inside).exists() => return None,
            Some(_) => {}
        }
    }
    Some(if leaves {
        format!("`{path}` leads outside the repository: copy what it needs into the repository")
    } else {
        format!("`{path}` is not in the repository")
    })
}

/// `path` with `.` and `..` resolved, or `None` when it climbs above where it starts.
fn normalize(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            // Stepping up from where it started: outside.
            Component::ParentDir if !out.pop() => return None,
            Component::Normal(part) => out.push(part),
            _ => {}
        }
    }
    Some(out)
}

// ----- documented examples ----------------------------------------------------------------

/// The attributes rustdoc reads on a Rust code block; a block with others is not Rust.
const RUSTDOC_FENCE_WORDS: &[&str] = &[
    "rust",
    "ignore",
    "no_run",
    "should_panic",
    "compile_fail",
    "test_harness",
    "standalone_crate",
    "edition2015",
    "edition2018",
    "edition2021",
    "edition2024",
];

/// The code fences of a markdown text or of a Rust file's doc comments: (line, info string).
fn fences(file: &File) -> Vec<(usize, String)> {
    let mut fences = Vec::new();
    let mut open = false;
    for (n, line) in file.lines() {
        let text = if file.extension() == "rs" {
            let trimmed = line.trim_start();
            match trimmed
                .strip_prefix("///")
                .or_else(|| trimmed.strip_prefix("//!"))
            {
                Some(doc) => doc.trim_start(),
                None => continue,
            }
        } else {
            line.trim_start()
        };
        if let Some(info) = text.strip_prefix("```") {
            if !open {
                fences.push((n, info.trim().to_owned()));
            }
            open = !open;
        }
    }
    fences
}

/// Whether a fence's info string makes rustdoc compile the block (in Rust doc comments and
/// in included markdown alike); `explicit` asks for blocks that say `rust`, as GitHub reads
/// a bare fence as plain text.
fn is_rust(info: &str, explicit: bool) -> bool {
    let words: Vec<&str> = info.split([',', ' ']).filter(|w| !w.is_empty()).collect();
    if explicit && !words.contains(&"rust") {
        return false;
    }
    words.iter().all(|w| RUSTDOC_FENCE_WORDS.contains(w))
}

fn examples_are_compiled(file: &File, included: &BTreeSet<String>, problems: &mut Problems) {
    let fences = fences(file);
    for (n, info) in &fences {
        if is_rust(info, false) && info.split([',', ' ']).any(|w| w == "ignore") {
            problems.add(
                &file.path,
                *n,
                "an `ignore` example is never compiled: make it a doctest (`no_run` if it needs a server) or a test",
            );
        }
    }
    let compiled = file.extension() != "md" || included.contains(&file.path);
    if !compiled && let Some((n, _)) = fences.iter().find(|(_, info)| is_rust(info, true)) {
        problems.add(
            &file.path,
            *n,
            "Rust examples in a markdown file no crate compiles: include it in a crate's docs \
             (`#[doc = include_str!(..)]`, under `#[cfg(doctest)]` if it is not API docs)",
        );
    }
}

/// The repository files that some Rust file includes with `include_str!`.
fn included_files(files: &[File]) -> BTreeSet<String> {
    let mut included = BTreeSet::new();
    for file in files.iter().filter(|f| f.extension() == "rs") {
        let dir = Path::new(&file.path).parent().unwrap_or(Path::new(""));
        for (at, _) in file.text.match_indices("include_str!(\"") {
            let rest = &file.text[at + "include_str!(\"".len()..];
            let Some((path, _)) = rest.split_once('"') else {
                continue;
            };
            if let Some(path) = normalize(&dir.join(path)) {
                included.insert(path.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    included
}

// ----- lint escapes and tests -------------------------------------------------------------

/// One attribute of a Rust file, joined onto one line.
struct Attribute {
    /// Where it starts and ends (1-based, so `last_line` is also the index of the line after).
    first_line: usize,
    last_line: usize,
    /// `#![..]`: it applies to the enclosing crate or module.
    inner: bool,
    text: String,
}

/// The attributes of a Rust file.
fn attributes(lines: &[&str]) -> Vec<Attribute> {
    let mut attributes = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let trimmed = lines[i].trim_start();
        if !(trimmed.starts_with("#[") || trimmed.starts_with("#![")) {
            i += 1;
            continue;
        }
        let first = i;
        let mut text = String::new();
        let mut depth = 0i32;
        loop {
            let line = lines[i].trim();
            for c in line.chars() {
                match c {
                    '[' => depth += 1,
                    ']' => depth -= 1,
                    _ => {}
                }
            }
            text.push_str(line);
            text.push(' ');
            i += 1;
            if depth <= 0 || i == lines.len() {
                break;
            }
        }
        attributes.push(Attribute {
            first_line: first + 1,
            last_line: i,
            inner: trimmed.starts_with("#!["),
            text,
        });
    }
    attributes
}

/// Whether the attribute allows (or expects) lints, directly or through `cfg_attr`.
fn allows_lints(text: &str) -> bool {
    ["allow(", "expect("].iter().any(|word| {
        text.match_indices(word).any(|(at, _)| {
            text[..at]
                .chars()
                .next_back()
                .is_some_and(|c| matches!(c, '[' | '(' | ',' | ' '))
        })
    })
}

fn lints_are_not_escaped(file: &File, problems: &mut Problems) {
    let lines: Vec<&str> = file.text.lines().collect();
    for attribute in attributes(&lines) {
        let text = &attribute.text;
        let allows = allows_lints(text);
        if allows && attribute.inner {
            problems.add(
                &file.path,
                attribute.first_line,
                "lints allowed for a whole crate or module: fix the cause, or allow one item with a reason",
            );
        }
        if allows && !attribute.inner && next_item_is_a_module(&lines[attribute.last_line..]) {
            problems.add(
                &file.path,
                attribute.first_line,
                "lints allowed for a whole module: fix the cause, or allow one item with a reason",
            );
        }
        let hides_docs = (allows && text.contains("missing_docs"))
            || text.replace(' ', "").starts_with("#[doc(hidden)]");
        if hides_docs && !has_reason(&lines, &attribute) {
            problems.add(
                &file.path,
                attribute.first_line,
                "undocumented item without a reason: say why in a `//` comment beside it",
            );
        }
    }
}

fn next_item_is_a_module(rest: &[&str]) -> bool {
    rest.iter()
        .map(|line| line.trim())
        .find(|line| !line.is_empty() && !line.starts_with("//") && !line.starts_with("#["))
        .is_some_and(|item| {
            let item = item
                .strip_prefix("pub(crate) ")
                .or_else(|| item.strip_prefix("pub(super) "))
                .or_else(|| item.strip_prefix("pub "))
                .unwrap_or(item);
            item.starts_with("mod ")
        })
}

/// A reason is a `reason = ".."` in the attribute, a `//` comment after it on its last line,
/// or a `//` comment on the line above.
fn has_reason(lines: &[&str], attribute: &Attribute) -> bool {
    let comment_above = attribute.first_line >= 2 && {
        let above = lines[attribute.first_line - 2].trim_start();
        above.starts_with("//") && !above.starts_with("///") && !above.starts_with("//!")
    };
    attribute.text.contains("reason =")
        || lines[attribute.last_line - 1].contains("] //")
        || comment_above
}

fn tests_are_not_ignored(file: &File, problems: &mut Problems) {
    for (n, line) in file.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[ignore") || trimmed.starts_with("#[should_panic") {
            problems.add(
                &file.path,
                n,
                "no #[ignore] or #[should_panic]: a test runs, and asserts the error it expects",
            );
        }
    }
}

// ----- sizes ------------------------------------------------------------------------------

/// A library source file: under a `src/` folder, not a test module (`tests.rs`, `tests/`).
fn is_library_source(path: &str) -> bool {
    let parts: Vec<&str> = path.split('/').collect();
    let Some(src) = parts.iter().position(|p| *p == "src") else {
        return false;
    };
    let below = &parts[src + 1..];
    !below.iter().any(|p| *p == "tests" || *p == "tests.rs")
}

fn library_files_stay_small(file: &File, problems: &mut Problems) {
    let lines = file.text.lines().count();
    if is_library_source(&file.path) && lines > MAX_LINES {
        problems.add(
            &file.path,
            0,
            format!("{lines} lines, over the {MAX_LINES} a library source file may have: split it by concept"),
        );
    }
}

// ----- packages ---------------------------------------------------------------------------

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

fn packages_are_documented(root: &Path, metadata: &Metadata, problems: &mut Problems) {
    for package in &metadata.packages {
        let manifest_path = relative(root, &package.manifest_path);
        let Ok(manifest) = fs::read_to_string(&package.manifest_path) else {
            problems.add(&manifest_path, 0, "cannot be read");
            continue;
        };
        if package
            .description
            .as_deref()
            .is_none_or(|d| d.trim().is_empty())
        {
            problems.add(&manifest_path, 0, "no `description`");
        }
        if !inherits_workspace_lints(&manifest) {
            problems.add(
                &manifest_path,
                0,
                "no `[lints] workspace = true`: the workspace's lints (missing_docs, ...) must apply",
            );
        }
        for (n, feature) in undocumented_features(&manifest) {
            problems.add(
                &manifest_path,
                n,
                format!("feature `{feature}` has no `## ` doc comment above it"),
            );
        }
        crate_doc_has_an_example(root, package, problems);
    }
}

fn inherits_workspace_lints(manifest: &str) -> bool {
    let mut in_lints = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_lints = line == "[lints]";
        } else if in_lints && line.replace(' ', "") == "workspace=true" {
            return true;
        }
    }
    false
}

/// The features of `[features]` (`default` apart) without a `## ` comment right above.
fn undocumented_features(manifest: &str) -> Vec<(usize, String)> {
    let mut undocumented = Vec::new();
    let mut in_features = false;
    let mut documented = false;
    for (i, line) in manifest.lines().enumerate() {
        let line = line.trim();
        if line.starts_with('[')
            && !line.starts_with("[\"")
            && line.ends_with(']')
            && !line.contains('=')
        {
            in_features = line == "[features]";
            documented = false;
            continue;
        }
        if !in_features {
            continue;
        }
        if line.starts_with("##") {
            documented = true;
            continue;
        }
        let Some((name, _)) = line.split_once('=') else {
            continue;
        };
        let name = name.trim();
        let is_feature = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if is_feature {
            if name != "default" && !documented {
                undocumented.push((i + 1, name.to_owned()));
            }
            documented = false;
        }
    }
    undocumented
}

fn crate_doc_has_an_example(root: &Path, package: &Package, problems: &mut Problems) {
    let Some(lib) = package
        .targets
        .iter()
        .find(|t| t.kind.iter().any(|k| k.ends_with("lib")))
    else {
        return;
    };
    let source = relative(root, &lib.src_path);
    let Ok(text) = fs::read_to_string(&lib.src_path) else {
        problems.add(&source, 0, "cannot be read");
        return;
    };
    let mut doc = String::new();
    for line in text.lines().map(str::trim_start) {
        if let Some(line) = line.strip_prefix("//!") {
            doc.push_str(line);
            doc.push('\n');
        } else if let Some(path) = line
            .strip_prefix("#![doc = include_str!(\"")
            .and_then(|rest| rest.split_once('"'))
            .map(|(path, _)| path)
        {
            let included = lib.src_path.parent().unwrap_or(root).join(path);
            doc.push_str(&fs::read_to_string(included).unwrap_or_default());
        }
    }
    let file = File {
        path: "doc.md".into(),
        text: doc,
    };
    if !fences(&file).iter().any(|(_, info)| is_rust(info, false)) {
        problems.add(&source, 1, "the crate doc has no example");
    }
}

fn rust_version_is_the_toolchain(root: &Path, metadata: &Metadata, problems: &mut Problems) {
    let toolchain = fs::read_to_string(root.join("rust-toolchain.toml")).unwrap_or_default();
    let Some(channel) = toolchain.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        (key.trim() == "channel").then(|| value.trim().trim_matches('"').to_owned())
    }) else {
        problems.add("rust-toolchain.toml", 0, "no `channel`");
        return;
    };
    let minor = |version: &str| version.split('.').take(2).collect::<Vec<_>>().join(".");
    for package in &metadata.packages {
        let declared = package.rust_version.as_deref().unwrap_or("none");
        if minor(declared) != minor(&channel) {
            problems.add(
                &relative(root, &package.manifest_path),
                0,
                format!(
                    "rust-version {declared}, but only the pinned toolchain {channel} builds and \
                     tests it: declare {}",
                    minor(&channel)
                ),
            );
        }
    }
}

fn examples_are_declared_and_shown(
    root: &Path,
    metadata: &Metadata,
    files: &[File],
    problems: &mut Problems,
) {
    let Ok(package) = metadata.package(examples::PACKAGE) else {
        return;
    };
    let manifest = relative(root, &package.manifest_path);
    if let Err(message) = examples::plans(package) {
        problems.add(&manifest, 0, message);
    }
    let readme = fs::read_to_string(root.join("README.md")).unwrap_or_default();
    for example in package.targets("example") {
        let mut command = format!("cargo run -p {} --example {}", package.name, example.name);
        if !example.required_features.is_empty() {
            let features = example.required_features.join(",");
            command.push_str(&format!(" --features {features}"));
        }
        if !shows(&readme, &command) {
            problems.add("README.md", 0, format!("does not show `{command}`"));
        }
        // Wherever else a command runs the example, it is the full one.
        let example_flag = format!("--example {}", example.name);
        for file in files.iter().filter(|f| !f.path.starts_with(SELF)) {
            for (n, line) in file.lines() {
                if line.contains("cargo run")
                    && shows(line, &example_flag)
                    && !shows(line, &command)
                {
                    problems.add(&file.path, n, format!("the command is `{command}`"));
                }
            }
        }
    }
}

/// Whether `text` holds `command` as a whole (not followed by more of a name or a list).
fn shows(text: &str, command: &str) -> bool {
    text.match_indices(command).any(|(at, _)| {
        !text[at + command.len()..]
            .chars()
            .next()
            .is_some_and(|c| is_word_char(c) || c == '-' || c == ',')
    })
}

#[cfg(test)]
mod tests;

//! Tests of the tidy rules, and the rules run on this repository.

use super::*;

fn file(path: &str, text: &str) -> File {
    File {
        path: path.into(),
        text: text.into(),
    }
}

fn problems_of(check: fn(&File, &mut Problems), path: &str, text: &str) -> Vec<String> {
    let mut problems = Problems::default();
    check(&file(path, text), &mut problems);
    problems.0.into_iter().map(|p| p.to_string()).collect()
}

/// The rules hold for this repository.
#[test]
fn tidy() {
    let problems = check(&root(), &Metadata::load().unwrap()).unwrap();
    let listed: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert!(listed.is_empty(), "tidy problems:\n{}", listed.join("\n"));
}

#[test]
fn todos_need_an_issue_number() {
    let text = "// TODO: later\n// TODO(#12): fine\n/* FIXME */\nTODOs are prose\nTODO(#x)\n";
    assert_eq!(
        problems_of(todos_name_their_issue, "a.rs", text),
        [
            "a.rs:1: TODO without an issue number: write TODO(#N)",
            "a.rs:3: FIXME without an issue number: write FIXME(#N)",
            "a.rs:5: TODO without an issue number: write TODO(#N)",
        ]
    );
}

#[test]
fn paths_outside_the_repository_are_reported() {
    let root = root();
    let check = |path: &str, text: &str| {
        let mut problems = Problems::default();
        paths_stay_inside(&root, &file(path, text), &mut problems);
        problems
            .0
            .into_iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
    };
    let outside = check(
        "triggers/tests/it/x.rs",
        "// from `/work/shared/x.jsonl`\nconst A: &str = include_str!(\"../../../../shared/x\");\n\
         // see `../shared/reference/style.md` and `tools/compare.py`\n",
    );
    assert_eq!(outside.len(), 4, "{outside:#?}");
    assert!(outside[0].starts_with("triggers/tests/it/x.rs:1: absolute path"));
    assert!(outside[1].contains("`../../../../shared/x` leads outside"));
    assert!(outside[2].contains("`../shared/reference/style.md` leads outside"));
    assert!(outside[3].contains("`tools/compare.py` is not in the repository"));

    let inside = check(
        "triggers/src/lib.rs",
        "#![doc = include_str!(\"../README.md\")]\n// data in `tests/data/cases.jsonl`, \
         see [the map](../ARCHITECTURE.md) and `triggers/README.md`.\n\
         // https://github.com/agronholm/apscheduler/blob/3.x/apscheduler/job.py\n\
         // a/b prose, `Vec<u8>/2`, crate::a::b, `scheduler_core::Trigger`\n\
         let created = dir.join(\"jobs/new.db\");\n",
    );
    assert_eq!(inside, Vec::<String>::new());
}

#[test]
fn blanket_allows_and_unexplained_undocumented_items_are_reported() {
    let text = "\
#![allow(dead_code)]
#![cfg_attr(
not(feature = \"x\"),
allow(unused)
)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#[allow(missing_docs)]
pub mod generated;
#[allow(missing_docs)] // mirrors the trait above
pub trait Mirror {}
// macro internals, not API
#[doc(hidden)]
pub fn internal() {}
#[doc(hidden)]
pub fn hidden() {}
#[cfg_attr(not(feature = \"y\"), allow(dead_code))]
fn helper() {}
#[should_panic(expected = \"boom\")]
fn f() {}
";
    assert_eq!(
        problems_of(lints_are_not_escaped, "a.rs", text),
        [
            "a.rs:1: lints allowed for a whole crate or module: fix the cause, or allow one item with a reason",
            "a.rs:2: lints allowed for a whole crate or module: fix the cause, or allow one item with a reason",
            "a.rs:7: lints allowed for a whole module: fix the cause, or allow one item with a reason",
            "a.rs:7: undocumented item without a reason: say why in a `//` comment beside it",
            "a.rs:14: undocumented item without a reason: say why in a `//` comment beside it",
        ]
    );
    assert_eq!(
        problems_of(tests_are_not_ignored, "a.rs", text),
        ["a.rs:18: no #[ignore] or #[should_panic]: a test runs, and asserts the error it expects"]
    );
}

#[test]
fn ignored_and_uncompiled_examples_are_reported() {
    let included = BTreeSet::from(["included.md".to_owned()]);
    let check = |path: &str, text: &str| {
        let mut problems = Problems::default();
        examples_are_compiled(&file(path, text), &included, &mut problems);
        problems.0.into_iter().map(|p| p.line).collect::<Vec<_>>()
    };
    let markdown = "```rust,ignore\nx\n```\n```sh\nls\n```\n```\ndiagram\n```\n";
    assert_eq!(check("included.md", markdown), [1]);
    assert_eq!(check("loose.md", markdown), [1, 1]);
    assert_eq!(
        check("loose.md", "```\ndiagram\n```\n```toml\n```\n"),
        Vec::<usize>::new()
    );
    let rust = "/// ```ignore\n/// x\n/// ```\n//! ```no_run\n//! ```\n// ```ignore\n";
    assert_eq!(check("a.rs", rust), [1]);
}

#[test]
fn library_sources_are_test_files_apart() {
    assert!(is_library_source("scheduler-core/src/scheduler/mod.rs"));
    assert!(is_library_source("xtask/src/main.rs"));
    assert!(!is_library_source("triggers/src/cron/tests.rs"));
    assert!(!is_library_source("triggers/src/cron/tests/search.rs"));
    assert!(!is_library_source("triggers/tests/it/main.rs"));
    assert!(!is_library_source("examples/examples/quickstart.rs"));
}

#[test]
fn manifests_document_features_and_inherit_lints() {
    let manifest = "\
[features]
default = [\"a\"]
## Documented.
a = []
b = [\"dep:x\"]
## Documented over
## two lines.
c = [
\"a\",
]

[lints]
workspace = true
";
    assert_eq!(undocumented_features(manifest), [(5, "b".to_owned())]);
    assert!(inherits_workspace_lints(manifest));
    assert!(!inherits_workspace_lints(
        "[lints.rust]\nmissing_docs = \"allow\"\n"
    ));
}

#[test]
fn a_command_is_shown_whole() {
    let command = "cargo run -p examples --example sqlite --features sqlite";
    assert!(shows(&format!("`{command}`"), command));
    assert!(shows(&format!("{command} < in.txt"), command));
    assert!(!shows(&format!("{command},tls"), command));
    assert!(!shows(&format!("{command}-extra"), command));
    assert!(!shows("cargo run -p examples --example sqlite", command));
}

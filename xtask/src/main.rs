//! Workspace automation: `cargo xtask <command>`.
//!
//! `test-all` is the one command that checks everything CI checks; the other commands are
//! its steps, runnable alone. Each command lives in its own module; this file only
//! dispatches.

mod backend_tests;
mod bench;
mod cluster_test;
mod docs;
mod examples;
mod features;
mod fuzz;
mod servers;
mod test_all;
mod tidy;
mod workspace;

use std::env;
use std::process::ExitCode;

use workspace::Result;

/// A command's entry point: it gets the arguments after its name.
type Run = fn(&[String]) -> Result;

/// Every command: name, what it does, entry point. Keep the table sorted by name, so
/// commands added on different branches land on different lines.
const COMMANDS: &[(&str, &str, Run)] = &[
    ("bench", bench::ABOUT, bench::run),
    ("cluster-test", cluster_test::ABOUT, cluster_test::run),
    ("docs", docs::ABOUT, docs::run),
    ("examples", examples::ABOUT, examples::run),
    ("features", features::ABOUT, features::run),
    ("fuzz", fuzz::ABOUT, fuzz::run),
    ("servers", servers::ABOUT, servers::run),
    ("test-all", test_all::ABOUT, test_all::run),
    ("tidy", tidy::ABOUT, tidy::run),
];

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let Some(name) = args
        .first()
        .filter(|a| !matches!(a.as_str(), "help" | "-h" | "--help"))
    else {
        eprintln!("{}", usage());
        return ExitCode::SUCCESS;
    };
    let result = match COMMANDS.iter().find(|(command, ..)| command == name) {
        Some((_, _, run)) => run(&args[1..]),
        None => Err(format!("unknown command {name:?}\n\n{}", usage())),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The command has reported its failure itself.
        Err(message) if message.is_empty() => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("\nxtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn usage() -> String {
    let mut text = String::from("usage: cargo xtask <command>\n\ncommands:\n");
    for (name, what, _) in COMMANDS {
        text.push_str(&format!("  {name:<12}  {what}\n"));
    }
    text
}

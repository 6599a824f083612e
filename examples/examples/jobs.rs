//! A jobs tool over any persistent store: look at, pause, resume, remove, export and import
//! the jobs of a store without the program that owns them (job functions are never resolved).
//!
//! ```sh
//! cargo run -p examples --example jobs --features jobs -- --store sqlite://jobs.sqlite list
//! ```
//!
//! Usage: `jobs --store URL [--table NAME] [--prefix PREFIX] [--database NAME]
//! [--collection NAME] COMMAND`, where the URL is `sqlite://`, `postgres://`, `mysql://`,
//! `redis://` or `mongodb://`: the store is opened through the same registry configuration
//! documents use ([`Components::open_records`], after each store crate's `register`), with
//! `--table` as the `tablename` option and the other flags as options of their own name (a
//! store that has no such option says so). COMMAND is one of
//!
//! * `list [FILTERS]`: the jobs, like APScheduler's `print_jobs` (unreadable records are
//!   marked), filtered by `--paused`, `--scheduled`, `--due-before TIME` (RFC 3339, `now`,
//!   or `+N` with a unit s, m, h or d: `+1h`),
//!   `--id GLOB`, `--name GLOB`, `--function GLOB`, `--executor GLOB`, `--unreadable`,
//!   `--run-requested` (every filter given must hold; `*` and `?` are wildcards);
//! * `show ID`: the whole record as JSON, the trigger in words and its next five fire times;
//! * `pause ID`, `resume ID` (next run time from the trigger, as the scheduler does),
//!   `remove ID`;
//! * `run ID`: a run-now request stored with the job: the schedulers on the store run it
//!   once, as soon as one of them looks (within its `max_wait`), without changing its
//!   schedule (a paused job stays paused);
//! * `export`: every record as one JSON line on standard output;
//! * `import [--replace]`: records as JSON lines from standard input; existing ids are refused
//!   unless `--replace`.
//!
//! Edits are conditional on the revision read, so a scheduler's concurrent change is never
//! overwritten: the command fails with a conflict instead, and can be run again.

use std::io::{Read, Write};
use std::process::ExitCode;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use scheduler_core::store::admin::{self, Filter, RecordView};
use scheduler_core::{
    Clock, Components, DynRecordStore, Error, ErrorKind, EventBus, JobCodec, JobRegistry,
    RecordStore, Result, StoreContext, SystemClock, TriggerRegistry,
};

const USAGE: &str = "usage: jobs --store URL [--table NAME] [--prefix PREFIX] \
[--database NAME] [--collection NAME] (list [--paused | --scheduled] [--due-before TIME] \
[--id GLOB] [--name GLOB] [--function GLOB] [--executor GLOB] [--unreadable] \
[--run-requested] | show ID | pause ID | resume ID | remove ID | run ID | export | \
import [--replace])";

/// The store options the command line offers: flag, and the option name the store factories
/// registered in [`Components`] take.
const STORE_OPTIONS: [(&str, &str); 4] = [
    ("--table", "tablename"),
    ("--prefix", "prefix"),
    ("--database", "database"),
    ("--collection", "collection"),
];

#[derive(Debug, Default)]
struct Args {
    store: Option<String>,
    /// The store options given, by the factories' names.
    options: serde_json::Map<String, serde_json::Value>,
    replace: bool,
    filter: Filter,
    command: Vec<String>,
}

/// `TIME` of `--due-before`: RFC 3339, `now`, or `+N` with a unit `s`, `m`, `h` or `d`
/// from now ("what runs in the next hour": `+1h`).
fn parse_time(text: &str) -> Result<DateTime<Utc>> {
    let bad = || {
        Error::config(format!(
            "--due-before wants an RFC 3339 time (2026-05-01T09:00:00Z), `now` or `+N` with a \
             unit s, m, h or d (+1h), not {text:?}"
        ))
    };
    if text == "now" {
        return Ok(SystemClock.now());
    }
    if let Some(offset) = text.strip_prefix('+') {
        let split = offset.len().saturating_sub(1);
        let (n, unit) = (offset.get(..split), offset.get(split..));
        let n: i64 = n.and_then(|n| n.parse().ok()).ok_or_else(bad)?;
        let delta = match unit {
            Some("s") => TimeDelta::try_seconds(n),
            Some("m") => TimeDelta::try_minutes(n),
            Some("h") => TimeDelta::try_hours(n),
            Some("d") => TimeDelta::try_days(n),
            _ => None,
        };
        return delta
            .and_then(|d| SystemClock.now().checked_add_signed(d))
            .ok_or_else(bad);
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| bad().with_source(e))
}

fn parse_args(mut raw: impl Iterator<Item = String>) -> Result<Args> {
    let mut args = Args::default();
    while let Some(arg) = raw.next() {
        let mut value = |name: &str| {
            raw.next()
                .ok_or_else(|| Error::config(format!("{name} needs a value; {USAGE}")))
        };
        if let Some(&(flag, option)) = STORE_OPTIONS.iter().find(|(flag, _)| *flag == arg) {
            args.options.insert(option.to_owned(), value(flag)?.into());
            continue;
        }
        match arg.as_str() {
            "--store" => args.store = Some(value("--store")?),
            "--replace" => args.replace = true,
            "--paused" => args.filter.paused = Some(true),
            "--scheduled" => args.filter.paused = Some(false),
            "--due-before" => args.filter.due_before = Some(parse_time(&value("--due-before")?)?),
            "--id" => args.filter.id = Some(value("--id")?),
            "--name" => args.filter.name = Some(value("--name")?),
            "--function" => args.filter.function = Some(value("--function")?),
            "--executor" => args.filter.executor = Some(value("--executor")?),
            "--unreadable" => args.filter.unreadable = true,
            "--run-requested" => args.filter.run_requested = true,
            "-h" | "--help" => return Err(Error::config(USAGE)),
            flag if flag.starts_with("--") => {
                return Err(Error::config(format!("unknown option {flag}; {USAGE}")));
            }
            _ => args.command.push(arg),
        }
    }
    Ok(args)
}

/// The store's rows, opened by the store crates' registrations: the one place that knows
/// which crate serves which URL scheme, and what options it takes.
fn open(args: &Args) -> Result<Arc<dyn DynRecordStore>> {
    let url = args
        .store
        .as_deref()
        .ok_or_else(|| Error::config(format!("--store URL is required; {USAGE}")))?;
    let components = Components::new();
    jobstore_sql::register(&components);
    jobstore_redis::register(&components);
    jobstore_mongo::register(&components);
    components.open_records(url, args.options.clone())
}

async fn run_on(store: &impl RecordStore, args: &Args, out: &mut impl Write) -> Result<()> {
    let triggers = triggers::registry();
    let ctx = StoreContext::new(
        "jobs",
        JobCodec::new(JobRegistry::new(), triggers.clone()),
        EventBus::new(),
    );
    store.start(&ctx).await?;
    let result = command(store, args, &triggers, out).await;
    let _ = store.shutdown().await;
    result
}

fn io_error(e: std::io::Error) -> Error {
    Error::new(ErrorKind::Config, "could not write the output").with_source(e)
}

/// The row's next run, with a pending run-now request and the plan it keeps.
fn next_run(view: &RecordView) -> String {
    let planned =
        |t: Option<DateTime<Utc>>| t.map_or_else(|| "paused".to_owned(), |t| t.to_rfc3339());
    match view.run_request() {
        Some(request) => format!(
            "run requested at {} (then {})",
            request.at.to_rfc3339(),
            planned(request.planned)
        ),
        None => planned(view.next_run_time),
    }
}

fn trigger_words(view: &RecordView, triggers: &TriggerRegistry) -> String {
    match &view.record {
        Ok(record) => match triggers.restore(&record.trigger) {
            Ok(trigger) => trigger.to_string(),
            Err(_) => format!("{} (cannot restore)", record.trigger.kind),
        },
        Err(_) => "-".to_owned(),
    }
}

async fn command(
    store: &impl RecordStore,
    args: &Args,
    triggers: &TriggerRegistry,
    out: &mut impl Write,
) -> Result<()> {
    let id = || {
        args.command
            .get(1)
            .map(String::as_str)
            .ok_or_else(|| Error::config(format!("this command needs a job id; {USAGE}")))
    };
    match args.command.first().map(String::as_str) {
        Some("list") => {
            let views: Vec<RecordView> = admin::list(store)
                .await?
                .into_iter()
                .filter(|view| args.filter.matches(view))
                .collect();
            writeln!(
                out,
                "{:<24} {:<24} {:<40} NEXT RUN",
                "ID", "FUNCTION", "TRIGGER"
            )
            .map_err(io_error)?;
            for view in &views {
                let function = match &view.record {
                    Ok(record) => record.func.clone(),
                    Err(_) => "(unreadable record)".to_owned(),
                };
                let next = next_run(view);
                writeln!(
                    out,
                    "{:<24} {:<24} {:<40} {next}",
                    view.id,
                    function,
                    trigger_words(view, triggers)
                )
                .map_err(io_error)?;
            }
            writeln!(out, "{} job(s)", views.len()).map_err(io_error)?;
        }
        Some("show") => {
            let view = admin::get(store, id()?).await?;
            match &view.record {
                Ok(record) => {
                    let json = serde_json::to_string_pretty(record)
                        .map_err(|e| Error::serialization("could not show the record", e))?;
                    writeln!(out, "{json}").map_err(io_error)?;
                    writeln!(out, "revision: {}", view.revision).map_err(io_error)?;
                    writeln!(out, "next run: {}", next_run(&view)).map_err(io_error)?;
                    writeln!(out, "trigger: {}", trigger_words(&view, triggers))
                        .map_err(io_error)?;
                    match admin::next_fire_times(record, triggers, SystemClock.now(), 5) {
                        Ok(times) => {
                            writeln!(out, "next fire times:").map_err(io_error)?;
                            for t in times {
                                writeln!(out, "  {}", t.to_rfc3339()).map_err(io_error)?;
                            }
                        }
                        Err(e) => {
                            writeln!(out, "next fire times: unknown ({e})").map_err(io_error)?
                        }
                    }
                }
                Err(reason) => {
                    writeln!(out, "unreadable record (left unchanged): {reason}")
                        .map_err(io_error)?;
                    writeln!(out, "revision: {}", view.revision).map_err(io_error)?;
                    writeln!(out, "stored text: {}", view.json).map_err(io_error)?;
                }
            }
        }
        Some("pause") => {
            admin::pause(store, id()?).await?;
            writeln!(out, "paused {}", id()?).map_err(io_error)?;
        }
        Some("resume") => {
            let record = admin::resume(store, id()?, triggers, SystemClock.now()).await?;
            let next = record
                .next_run_time
                .map(|t| t.to_rfc3339())
                .unwrap_or_default();
            writeln!(out, "resumed {}; next run at {next}", id()?).map_err(io_error)?;
        }
        Some("remove") => {
            admin::remove(store, id()?).await?;
            writeln!(out, "removed {}", id()?).map_err(io_error)?;
        }
        Some("export") => {
            let mut skipped = 0;
            for view in admin::list(store).await? {
                match admin::export_line(&view) {
                    Ok(line) => writeln!(out, "{line}").map_err(io_error)?,
                    Err(e) => {
                        eprintln!("{e}");
                        skipped += 1;
                    }
                }
            }
            if skipped > 0 {
                return Err(Error::new(
                    ErrorKind::Serialization,
                    format!("{skipped} record(s) were not JSON and were not exported"),
                ));
            }
        }
        Some("import") => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| Error::config("could not read standard input").with_source(e))?;
            let records = admin::parse_import(&text)?;
            let summary = admin::import(store, records, args.replace).await?;
            writeln!(
                out,
                "imported {} new job(s), replaced {}",
                summary.added.len(),
                summary.replaced.len()
            )
            .map_err(io_error)?;
        }
        Some("run") => {
            let request = admin::request_run(store, id()?, SystemClock.now()).await?;
            let planned = request.planned.map_or_else(
                || "it stays paused".to_owned(),
                |t| format!("it next runs at {}", t.to_rfc3339()),
            );
            writeln!(
                out,
                "run requested for {} at {}; a scheduler on this store runs it once when it next \
                 looks, and {planned}",
                id()?,
                request.at.to_rfc3339()
            )
            .map_err(io_error)?;
        }
        _ => return Err(Error::config(USAGE)),
    }
    Ok(())
}

fn main() -> ExitCode {
    let result = parse_args(std::env::args().skip(1)).and_then(|args| {
        let store = open(&args)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::config("could not start the runtime").with_source(e))?;
        let mut out = std::io::stdout().lock();
        runtime.block_on(run_on(&store, &args, &mut out))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jobs: {e}");
            ExitCode::FAILURE
        }
    }
}

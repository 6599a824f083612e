//! `cargo xtask bench [--quick]`: this project's scenarios and the same scenarios on
//! APScheduler 3.11.x, side by side on the same machine in one run.
//!
//! 1. Builds the bench binaries (`cargo bench --no-run`, release) once.
//! 2. Makes a virtual environment under `target/xtask/apscheduler` with the pinned
//!    `xtask/apscheduler/requirements.txt`, and finds the store benches' servers as
//!    `cargo xtask test-all` does (starting an nx-27017 when no MongoDB answers).
//! 3. Runs each scenario's two sides interleaved, APScheduler then this project, round after
//!    round (A B A B ...), because the machine is shared and noisy; the latency scenarios run
//!    once more with every core loaded by foreign busy loops.
//! 4. Prints one table (medians, min-max spread, ratio) and writes `docs/benchmarks.md`,
//!    `docs/benchmarks.svg` (through the `bench-chart` binary) and the README's figures.
//!
//! Both sides print their figures as lines of JSON (the format is [`LINE_FORMAT`]); the
//! benches of other crates join by printing the same lines: see [`HOOKS`].

mod report;

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use serde_json::Value;

use crate::servers;
use crate::workspace::{Metadata, Result, cargo, cargo_json, root, run_step};

pub(crate) const ABOUT: &str =
    "this project against APScheduler 3.11 side by side (`--quick`: under 5 minutes)";

/// The line format both sides print, copied into `docs/benchmarks.md` for bench authors.
pub(crate) const LINE_FORMAT: &str = r#"Each figure is one line of JSON on standard output; every other line is for people and is
shown as it comes:

```json
{"id": "dispatch.threads20.10000", "scenario": "2. jobs due at one instant",
 "title": "10k jobs due at once, thread pool of 20", "params": "memory store; misfire grace: none",
 "metric": "executions/s", "better": "higher", "value": 712345.6}
```

- `id`: the same on both sides for the same measurement (it pairs APScheduler's figure with
  this project's); dots separate scenario, case and size.
- `scenario`: the scenario's number and name; rows are grouped and sorted by it.
- `title`, `params`: what a row of the table says; `params` holds what both sides share.
- `metric`: the unit (`jobs/s`, `executions/s`, `B/job`, `ms`, `ns`, `s`, `missed`);
  `better`: `higher` or `lower`, which sets the ratio's direction.
- `value`: one measurement (the xtask takes medians over the rounds).
- `side` (optional): who was measured; by default `this project` for a Rust bench and
  `APScheduler` for a script of `xtask/apscheduler`. A Rust peer (the `cron` crate) names
  itself and lands in the table of Rust peers."#;

/// Benches that join when they exist (scenarios 4 to 6): a bench target `bench` of
/// `package`, run as `<bench binary> [--quick]` (built with the package's features
/// `features`), interleaved with `xtask/apscheduler/<script> [--quick]` when that script
/// exists. Each prints lines in [`LINE_FORMAT`]; both sides get the URLs of the servers in
/// `servers` (the variables of `cargo xtask test-all`).
pub(crate) const HOOKS: &[Hook] = &[
    Hook {
        scenario: "4./5. SQL stores (SQLite, PostgreSQL, MySQL)",
        package: "jobstore-sql",
        bench: "store",
        features: "sqlite,postgres,mysql",
        script: "store_sql.py",
        servers: &["postgres", "mysql"],
    },
    Hook {
        scenario: "4./5. Redis store",
        package: "jobstore-redis",
        bench: "store",
        features: "",
        script: "store_redis.py",
        servers: &["redis"],
    },
    Hook {
        scenario: "4./5. MongoDB store",
        package: "jobstore-mongo",
        bench: "store",
        features: "",
        script: "store_mongo.py",
        servers: &["mongo"],
    },
    Hook {
        scenario: "6. process pool of 2",
        package: "executors",
        bench: "process_pool",
        features: "process-pool",
        script: "process_pool.py",
        servers: &[],
    },
];

/// A bench that joins when it exists; see [`HOOKS`].
#[derive(Debug)]
pub(crate) struct Hook {
    scenario: &'static str,
    package: &'static str,
    bench: &'static str,
    features: &'static str,
    script: &'static str,
    /// The servers it talks to (names of [`servers::SERVERS`]).
    servers: &'static [&'static str],
}

/// One side of a pair: a Rust bench binary or an APScheduler script, with its arguments.
#[derive(Debug, Clone)]
enum Side {
    Rust {
        package: String,
        bench: String,
        args: Vec<String>,
    },
    Python {
        script: String,
        args: Vec<String>,
    },
}

/// What runs interleaved: APScheduler's side and this project's, round after round.
#[derive(Debug)]
struct Pair {
    sides: Vec<Side>,
    rounds: usize,
    /// Run with every core busy with foreign work; ids get `.loaded`.
    loaded: bool,
}

/// One measured figure (a line of the format).
#[derive(Debug, Clone)]
pub(crate) struct Figure {
    pub(crate) id: String,
    pub(crate) scenario: String,
    pub(crate) title: String,
    pub(crate) params: String,
    pub(crate) metric: String,
    pub(crate) higher_is_better: bool,
    pub(crate) side: String,
    pub(crate) value: f64,
}

pub(crate) const APSCHEDULER: &str = "APScheduler";
pub(crate) const OURS: &str = "this project";

fn rust(package: &str, bench: &str, args: &[&str]) -> Side {
    Side::Rust {
        package: package.into(),
        bench: bench.into(),
        args: args.iter().map(|a| a.to_string()).collect(),
    }
}

fn python(script: &str, args: &[&str]) -> Side {
    Side::Python {
        script: script.into(),
        args: args.iter().map(|a| a.to_string()).collect(),
    }
}

/// The scenarios of one run, in order.
fn plan(quick: bool, hooks: &[(&Hook, bool)]) -> Vec<Pair> {
    let rounds = if quick { 2 } else { 5 };
    let pair = |sides: Vec<Side>| Pair {
        sides,
        rounds,
        loaded: false,
    };
    let mut pairs = Vec::new();
    // `--quick` must measure in under 5 minutes: the APScheduler sides at 100k (minutes each
    // on a loaded machine) and the loaded latency runs are left to the full run.
    let python_sizes: &[&str] = if quick {
        &["10000"]
    } else {
        &["10000", "100000"]
    };
    let with_python = |n: &str, side: Side, rust_side: Side| {
        if python_sizes.contains(&n) {
            vec![side, rust_side]
        } else {
            vec![rust_side]
        }
    };
    // 1. Adding jobs (memory per job is measured in the same processes).
    for n in ["10000", "100000"] {
        pairs.push(pair(with_python(
            n,
            python("add.py", &["--jobs", n]),
            rust(
                "jobstore-memory",
                "add_jobs",
                &["--case", "scheduler", "--jobs", n],
            ),
        )));
    }
    let add = |case: &str, n: &str| {
        rust(
            "jobstore-memory",
            "add_jobs",
            &["--case", case, "--jobs", n],
        )
    };
    pairs.push(pair(vec![add("scheduler", "1000000")]));
    pairs.push(pair(vec![add("batch", "1000000")]));
    if !quick {
        pairs.push(pair(vec![add("batch", "100000")]));
        pairs.push(pair(vec![add("store", "1000000")]));
    }
    // 2. Jobs due at one instant.
    for n in ["10000", "100000"] {
        pairs.push(pair(with_python(
            n,
            python("dispatch.py", &["--jobs", n, "--workers", "20"]),
            rust(
                "executors",
                "dispatch",
                &["--executor", "threads", "--workers", "20", "--jobs", n],
            ),
        )));
    }
    let tokio_sizes: &[&str] = if quick {
        &["10000", "100000"]
    } else {
        &["10000", "100000", "1000000"]
    };
    for n in tokio_sizes {
        pairs.push(pair(vec![rust(
            "executors",
            "dispatch",
            &["--executor", "tokio", "--jobs", n],
        )]));
    }
    if !quick {
        pairs.push(pair(vec![rust(
            "executors",
            "dispatch",
            &["--executor", "tokio", "--jobs", "100000", "--subscribe"],
        )]));
    }
    // 3. Start latency, quiet and loaded.
    let latency_rounds = if quick { 2 } else { 5 };
    let loads: &[bool] = if quick { &[false] } else { &[false, true] };
    for &loaded in loads {
        for args in [
            &["--kind", "date", "--jobs", "1000", "--spread-ms", "5000"][..],
            &["--kind", "interval", "--jobs", "200", "--firings", "3"][..],
        ] {
            pairs.push(Pair {
                sides: vec![
                    python("latency.py", args),
                    rust("executors", "latency", args),
                ],
                rounds: latency_rounds,
                loaded,
            });
        }
    }
    // 4.-6. Whatever the other crates' benches measure. APScheduler's persistent stores take
    // minutes per round here (about 50-500 durable writes/s), so these run fewer rounds: once
    // with `--quick` (at the benches' reduced `--quick` sizes), three times in full.
    for (hook, has_script) in hooks {
        let extra: &[&str] = if quick { &["--quick"] } else { &[] };
        let mut sides = Vec::new();
        if *has_script {
            sides.push(python(hook.script, extra));
        }
        sides.push(rust(hook.package, hook.bench, extra));
        pairs.push(Pair {
            sides,
            rounds: if quick { 1 } else { 3 },
            loaded: false,
        });
    }
    // 7. Cron next fire time against the `cron` and `croner` crates (one run: each figure is
    // already a median of many samples).
    let samples = if quick { "11" } else { "31" };
    pairs.push(Pair {
        sides: vec![rust("triggers", "cron", &["--samples", samples])],
        rounds: 1,
        loaded: false,
    });
    pairs
}

pub(crate) fn run(args: &[String]) -> Result {
    let quick = match args {
        [] => false,
        [flag] if flag == "--quick" => true,
        _ => return Err(format!("bench takes only `--quick`, not {args:?}")),
    };
    let started = Instant::now();
    let metadata = Metadata::load()?;
    let hooks = present_hooks(&metadata)?;
    let binaries = build(&metadata, &hooks)?;
    let python = venv(&metadata.target_directory)?;
    let machine = report::Machine::read(&python)?;
    // Kept to the end: a MongoDB started here stops when it is dropped.
    let servers = store_servers(&metadata.target_directory, &hooks);
    eprintln!(
        "\n==> measuring: no tracing subscriber or metrics recorder is installed (the benches \
         install none; RUST_LOG is cleared), APScheduler's logging is left unconfigured"
    );
    let measuring = Instant::now();
    let pairs = plan(quick, &hooks);
    let mut figures = Vec::new();
    let mut commands = Vec::new();
    let mut failures = Vec::new();
    for pair in &pairs {
        let _load = pair.loaded.then(Load::start).transpose()?;
        for side in &pair.sides {
            commands.push(show_side(side, pair));
        }
        for round in 1..=pair.rounds {
            for side in &pair.sides {
                eprintln!(
                    "\n--> round {round}/{}{}: {}",
                    pair.rounds,
                    if pair.loaded { " (cores loaded)" } else { "" },
                    show_side(side, pair)
                );
                // A failed side is reported, and the other scenarios still run.
                let mut lines = match run_side(side, &binaries, &python, &servers.vars) {
                    Ok(lines) => lines,
                    Err(message) => {
                        eprintln!("    FAILED: {message}");
                        failures.push(format!("{}: {message}", show_side(side, pair)));
                        continue;
                    }
                };
                if pair.loaded {
                    for figure in &mut lines {
                        figure.id.push_str(".loaded");
                        figure.title.push_str(" (cores loaded)");
                    }
                }
                figures.extend(lines);
            }
        }
    }
    let took = measuring.elapsed();
    let missing: Vec<String> = HOOKS
        .iter()
        .filter(|h| {
            !hooks
                .iter()
                .any(|(present, _)| present.package == h.package)
        })
        .map(|h| {
            format!(
                "{} (no bench `{}` in {} yet)",
                h.scenario, h.bench, h.package
            )
        })
        .collect();
    let run = report::Run {
        quick,
        figures,
        commands,
        machine,
        measuring: took,
        missing,
        failures: failures.clone(),
    };
    let tables = run.tables();
    println!("\n{}", tables.text());
    report::write(&run, &tables)?;
    chart(&metadata.target_directory, &tables)?;
    eprintln!(
        "\n==> bench: measured in {:.0?}, {:.0?} in all; wrote docs/benchmarks.md, \
         docs/benchmarks.svg and the README's figures",
        took,
        started.elapsed()
    );
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} run(s) failed:\n{}",
            failures.len(),
            failures.join("\n")
        ))
    }
}

/// The servers the present hooks' benches talk to, found or started as `cargo xtask
/// test-all` finds them. One that cannot be provided is reported here, and the runs that
/// need it fail loudly with the scenarios.
fn store_servers(target: &Path, hooks: &[(&Hook, bool)]) -> servers::Probe {
    let names: Vec<&str> = hooks.iter().flat_map(|(h, _)| h.servers).copied().collect();
    if names.is_empty() {
        return servers::Probe::default();
    }
    eprintln!("\n==> servers: the backends the store benches talk to");
    let probe = servers::probe_only(target, &names);
    for problem in &probe.problems {
        eprintln!("    {problem}");
    }
    probe
}

/// The hooks whose bench exists, each with whether its APScheduler script exists.
fn present_hooks(metadata: &Metadata) -> Result<Vec<(&'static Hook, bool)>> {
    let scripts = root().join("xtask/apscheduler");
    let mut present = Vec::new();
    for hook in HOOKS {
        let package = metadata.package(hook.package)?;
        if package.targets("bench").any(|t| t.name == hook.bench) {
            present.push((hook, scripts.join(hook.script).is_file()));
        }
    }
    Ok(present)
}

/// Builds every bench binary the plan runs, in release, once; answers their paths by
/// (package, bench).
fn build(
    metadata: &Metadata,
    hooks: &[(&Hook, bool)],
) -> Result<BTreeMap<(String, String), PathBuf>> {
    let mut command = cargo();
    command.args([
        "bench",
        "--no-run",
        "--locked",
        "--message-format=json-render-diagnostics",
    ]);
    let mut features = vec![
        "executors/tokio".to_owned(),
        "executors/thread-pool".to_owned(),
    ];
    for package in ["jobstore-memory", "executors", "triggers"] {
        command.args(["-p", package]);
    }
    for (hook, _) in hooks {
        command.args(["-p", hook.package]);
        features.extend(
            hook.features
                .split(',')
                .filter(|f| !f.is_empty())
                .map(|f| format!("{}/{f}", hook.package)),
        );
    }
    command.args(["--features", &features.join(",")]);
    eprintln!("\n==> build: cargo bench --no-run (release) for every scenario's binary");
    let started = Instant::now();
    let mut binaries = BTreeMap::new();
    let ok = cargo_json(&mut command, |message| {
        if message["reason"] != "compiler-artifact" {
            return;
        }
        let is_bench = message["target"]["kind"]
            .as_array()
            .is_some_and(|kinds| kinds.iter().any(|k| k == "bench"));
        let (Some(executable), Some(name), Some(id)) = (
            message["executable"].as_str(),
            message["target"]["name"].as_str(),
            message["package_id"].as_str(),
        ) else {
            return;
        };
        if let Some(package) = metadata.packages.iter().find(|p| p.id == id)
            && is_bench
        {
            binaries.insert((package.name.clone(), name.to_owned()), executable.into());
        }
    })?;
    if !ok {
        return Err("building the bench binaries failed".into());
    }
    eprintln!("==> build: ok in {:.1?}", started.elapsed());
    Ok(binaries)
}

/// The virtual environment with the pinned APScheduler; answers its Python.
fn venv(target: &Path) -> Result<PathBuf> {
    let dir = target.join("xtask/apscheduler");
    let python = dir.join("bin/python");
    let requirements = root().join("xtask/apscheduler/requirements.txt");
    let wanted = fs::read_to_string(&requirements)
        .map_err(|e| format!("cannot read {}: {e}", requirements.display()))?;
    let stamp = dir.join("installed-requirements.txt");
    if fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) && python.is_file() {
        return Ok(python);
    }
    if !python.is_file() {
        run_step(
            "venv",
            Command::new("python3").arg("-m").arg("venv").arg(&dir),
        )?;
    }
    run_step(
        "apscheduler",
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .arg("-r")
            .arg(&requirements),
    )?;
    fs::write(&stamp, wanted).map_err(|e| format!("cannot write {}: {e}", stamp.display()))?;
    Ok(python)
}

/// The command line of one side, as a person would type it from the repository's root.
fn show_side(side: &Side, pair: &Pair) -> String {
    let loaded = if pair.loaded {
        " (every core loaded)"
    } else {
        ""
    };
    match side {
        Side::Rust {
            package,
            bench,
            args,
        } => format!(
            "cargo bench -p {package} --bench {bench} -- {}{loaded}",
            args.join(" ")
        ),
        Side::Python { script, args } => format!(
            "target/xtask/apscheduler/bin/python xtask/apscheduler/{script} {}{loaded}",
            args.join(" ")
        )
        .replace(" (", "  (")
        .replace("   (", "  ("),
    }
}

/// Runs one side once: its non-JSON lines go to the terminal, its JSON lines are the answer.
fn run_side(
    side: &Side,
    binaries: &BTreeMap<(String, String), PathBuf>,
    python: &Path,
    servers: &[(String, String)],
) -> Result<Vec<Figure>> {
    let (mut command, default_side) = match side {
        Side::Rust {
            package,
            bench,
            args,
        } => {
            let binary = binaries
                .get(&(package.clone(), bench.clone()))
                .ok_or_else(|| format!("bench {bench} of {package} was not built"))?;
            let mut command = Command::new(binary);
            command.args(args).current_dir(root());
            (command, OURS)
        }
        Side::Python { script, args } => {
            let dir = root().join("xtask/apscheduler");
            let mut command = Command::new(python);
            command
                .arg(dir.join(script))
                .args(args)
                .current_dir(dir)
                .env("PYTHONDONTWRITEBYTECODE", "1");
            (command, APSCHEDULER)
        }
    };
    command
        .envs(servers.iter().map(|(k, v)| (k, v)))
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped());
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut figures = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| format!("reading {command:?}: {e}"))?;
        match serde_json::from_str::<Value>(&line) {
            Ok(json) if json.is_object() => figures.push(figure(&json, default_side, &line)?),
            _ => eprintln!("    {line}"),
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for {command:?}: {e}"))?;
    if !status.success() {
        return Err(format!("{command:?} failed ({status})"));
    }
    if figures.is_empty() {
        return Err(format!("{command:?} printed no figure"));
    }
    Ok(figures)
}

fn figure(json: &Value, default_side: &str, line: &str) -> Result<Figure> {
    let text = |key: &str| {
        json[key]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("a figure without `{key}`: {line}"))
    };
    let better = text("better")?;
    if better != "higher" && better != "lower" {
        return Err(format!("`better` is `higher` or `lower`: {line}"));
    }
    Ok(Figure {
        id: text("id")?,
        scenario: text("scenario")?,
        title: text("title")?,
        params: text("params")?,
        metric: text("metric")?,
        higher_is_better: better == "higher",
        side: json["side"].as_str().unwrap_or(default_side).to_owned(),
        value: json["value"]
            .as_f64()
            .filter(|v| v.is_finite())
            .ok_or_else(|| format!("a figure without a finite `value`: {line}"))?,
    })
}

/// Busy loops on every core, a foreign load for the latency scenarios; ended on drop.
struct Load(Vec<Child>);

impl Load {
    fn start() -> Result<Load> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut children = Vec::new();
        for _ in 0..cores {
            let child = Command::new("sh")
                .args(["-c", "while :; do :; done"])
                .spawn()
                .map_err(|e| format!("cannot start a busy loop: {e}"))?;
            children.push(child);
        }
        Ok(Load(children))
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Draws `docs/benchmarks.svg` with the `bench-chart` binary (plotters lives there, behind
/// xtask's `chart` feature, so the xtask every CI run compiles first stays small).
fn chart(target: &Path, tables: &report::Tables) -> Result {
    let dir = target.join("xtask/bench");
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let bars = dir.join("bars.json");
    fs::write(&bars, tables.bars_json().to_string())
        .map_err(|e| format!("cannot write {}: {e}", bars.display()))?;
    let mut command = cargo();
    command
        .args([
            "run",
            "--locked",
            "--quiet",
            "-p",
            "xtask",
            "--features",
            "chart",
            "--bin",
            "bench-chart",
            "--",
        ])
        .arg(&bars)
        .arg(root().join("docs/benchmarks.svg"));
    run_step("chart", &mut command)
}

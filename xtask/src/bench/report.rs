//! The figures of a run as tables: medians, spreads and ratios; the text printed at the end,
//! `docs/benchmarks.md` and the README's figures.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use super::{APSCHEDULER, Figure, LINE_FORMAT, OURS};
use crate::workspace::{Result, root};

/// Where the README's generated figures start and end.
const README_START: &str = "<!-- cargo xtask bench: start -->";
const README_END: &str = "<!-- cargo xtask bench: end -->";

/// The machine and the software measured, read before measuring.
#[derive(Debug)]
pub(crate) struct Machine {
    cpu: String,
    cores: usize,
    memory: String,
    load: String,
    date: String,
    commit: String,
    rustc: String,
    python: String,
    apscheduler: String,
}

impl Machine {
    pub(crate) fn read(python: &Path) -> Result<Machine> {
        let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or_else(|| "unknown CPU".to_owned(), |(_, m)| m.trim().to_owned());
        let cores = cpuinfo
            .lines()
            .filter(|l| l.starts_with("processor"))
            .count();
        let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or_else(
                || "unknown".to_owned(),
                |kib| format!("{:.1} GiB", kib / 1024.0 / 1024.0),
            );
        let load = fs::read_to_string("/proc/loadavg")
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_default();
        let dirty =
            !output(Command::new("git").args(["status", "--porcelain", "--untracked-files=no"]))
                .unwrap_or_default()
                .is_empty();
        let commit = output(Command::new("git").args(["rev-parse", "--short=10", "HEAD"]))
            .map(|c| {
                if dirty {
                    format!("{c} (with uncommitted changes)")
                } else {
                    c
                }
            })
            .unwrap_or_else(|| "unknown".to_owned());
        Ok(Machine {
            cpu,
            cores,
            memory,
            load,
            date: output(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]))
                .unwrap_or_default(),
            commit,
            rustc: output(Command::new("rustc").arg("--version")).unwrap_or_default(),
            python: output(Command::new(python).arg("--version")).unwrap_or_default(),
            apscheduler: output(Command::new(python).args([
                "-c",
                "import importlib.metadata as m; print(m.version('APScheduler'))",
            ]))
            .ok_or("the virtual environment has no APScheduler")?,
        })
    }
}

fn output(command: &mut Command) -> Option<String> {
    let out = command.current_dir(root()).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Everything one run measured.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) quick: bool,
    pub(crate) figures: Vec<Figure>,
    /// Each side's command, in the order run.
    pub(crate) commands: Vec<String>,
    pub(crate) machine: Machine,
    pub(crate) measuring: Duration,
    /// Scenarios whose bench does not exist yet.
    pub(crate) missing: Vec<String>,
    /// Runs that failed (their figures are missing from the tables).
    pub(crate) failures: Vec<String>,
}

/// One side's figures for one id: median and spread.
#[derive(Debug, Clone)]
struct Stat {
    median: f64,
    min: f64,
    max: f64,
    rounds: usize,
}

impl Stat {
    fn of(mut values: Vec<f64>) -> Stat {
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let median = if n % 2 == 1 {
            values[n / 2]
        } else {
            (values[n / 2 - 1] + values[n / 2]) / 2.0
        };
        Stat {
            median,
            min: values[0],
            max: values[n - 1],
            rounds: n,
        }
    }
}

/// One row: an id, with every side's figures.
#[derive(Debug)]
struct Row {
    id: String,
    scenario: String,
    title: String,
    params: String,
    metric: String,
    higher_is_better: bool,
    sides: BTreeMap<String, Stat>,
}

impl Row {
    /// How many times better this project is than `side` (above 1: better).
    fn ratio(&self, side: &str) -> Option<f64> {
        let (ours, theirs) = (self.sides.get(OURS)?.median, self.sides.get(side)?.median);
        let ratio = if self.higher_is_better {
            ours / theirs
        } else {
            theirs / ours
        };
        ratio.is_finite().then_some(ratio)
    }

    fn cell(&self, side: &str) -> String {
        self.sides
            .get(side)
            .map_or_else(|| "–".to_owned(), |stat| cell(stat, &self.metric))
    }

    fn peers(&self) -> impl Iterator<Item = &String> {
        self.sides
            .keys()
            .filter(|s| *s != OURS && *s != APSCHEDULER)
    }
}

/// The tables of a run.
#[derive(Debug)]
pub(crate) struct Tables {
    rows: Vec<Row>,
}

impl Run {
    pub(crate) fn tables(&self) -> Tables {
        let mut rows: Vec<Row> = Vec::new();
        let mut values: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
        // Per id: this project's parameters and APScheduler's.
        let mut params: BTreeMap<String, [Option<String>; 2]> = BTreeMap::new();
        for figure in &self.figures {
            values
                .entry((figure.id.clone(), figure.side.clone()))
                .or_default()
                .push(figure.value);
            if !rows.iter().any(|r| r.id == figure.id) {
                rows.push(Row {
                    id: figure.id.clone(),
                    scenario: figure.scenario.clone(),
                    title: figure.title.clone(),
                    params: String::new(),
                    metric: figure.metric.clone(),
                    higher_is_better: figure.higher_is_better,
                    sides: BTreeMap::new(),
                });
            }
            let side = if figure.side == APSCHEDULER { 1 } else { 0 };
            params
                .entry(figure.id.clone())
                .or_insert_with(|| [None, None])[side]
                .get_or_insert_with(|| figure.params.clone());
        }
        // The shared parameters are this project's; APScheduler's are added where they differ.
        for row in &mut rows {
            row.params = match params.remove(&row.id).unwrap_or([None, None]) {
                [Some(ours), Some(theirs)] if ours != theirs => {
                    format!("{ours}; APScheduler: {theirs}")
                }
                [Some(ours), _] => ours,
                [None, Some(theirs)] => theirs,
                [None, None] => String::new(),
            };
        }
        for ((id, side), values) in values {
            if let Some(row) = rows.iter_mut().find(|r| r.id == id) {
                row.sides.insert(side, Stat::of(values));
            }
        }
        // Stable: rows keep the order they were measured in within a scenario.
        rows.sort_by(|a, b| a.scenario.cmp(&b.scenario));
        Tables { rows }
    }
}

impl Tables {
    fn main_rows(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(|r| r.peers().next().is_none())
    }

    fn peer_rows(&self) -> impl Iterator<Item = (&Row, &String)> {
        self.rows
            .iter()
            .flat_map(|r| r.peers().map(move |p| (r, p)))
    }

    /// The two tables as markdown.
    pub(crate) fn text(&self) -> String {
        let mut text = String::new();
        text.push_str(
            "| scenario | parameters | APScheduler | this project | ratio |\n| --- | --- | --- | --- | --- |\n",
        );
        for row in self.main_rows() {
            let ratio = row.ratio(APSCHEDULER).map_or_else(|| "–".into(), ratio);
            let _ = writeln!(
                text,
                "| {} | {} | {} | {} | {ratio} |",
                row.title,
                row.params,
                row.cell(APSCHEDULER),
                row.cell(OURS)
            );
        }
        if self.peer_rows().next().is_some() {
            text.push_str(
                "\n| scenario | parameters | Rust peer | peer | this project | ratio |\n| --- | --- | --- | --- | --- | --- |\n",
            );
            for (row, peer) in self.peer_rows() {
                let ratio = row.ratio(peer).map_or_else(|| "–".into(), ratio);
                let _ = writeln!(
                    text,
                    "| {} | {} | {peer} | {} | {} | {ratio} |",
                    row.title,
                    row.params,
                    row.cell(peer),
                    row.cell(OURS)
                );
            }
        }
        text
    }

    /// The issue's targets, each with what this run measured.
    fn targets(&self) -> String {
        let row = |id: &str| self.rows.iter().find(|r| r.id == id);
        let ours = |id: &str| row(id).and_then(|r| r.sides.get(OURS)).map(|s| s.median);
        let mut text = String::from("| target | measured | met |\n| --- | --- | --- |\n");
        let mut line = |target: &str, measured: Option<String>, met: Option<bool>| {
            let met = match met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "not measured",
            };
            let measured = measured.unwrap_or_else(|| "–".into());
            let _ = writeln!(text, "| {target} | {measured} | {met} |");
        };
        let memory = ours("memory.1000000");
        line(
            "memory per job at 1M jobs under 300 B",
            memory.map(|b| format!("{b:.0} B")),
            memory.map(|b| b < 300.0),
        );
        let add = [ours("add.running.1000000"), ours("add.batch.1000000")]
            .into_iter()
            .flatten()
            .max_by(f64::total_cmp);
        line(
            "add rate through a running scheduler at least 1M jobs/s (1M jobs, batch API allowed)",
            add.map(|r| format!("{}/s", rate(r))),
            add.map(|r| r >= 1e6),
        );
        let tokio = ours("dispatch.tokio.100000");
        line(
            "100k due at once on tokio: at least 1M executions/s",
            tokio.map(|r| format!("{}/s", rate(r))),
            tokio.map(|r| r >= 1e6),
        );
        let threads = row("dispatch.threads20.100000").and_then(|r| r.ratio(APSCHEDULER));
        line(
            "100k due at once, thread pool of 20: at least 100 times APScheduler",
            threads.map(ratio),
            threads.map(|r| r >= 100.0),
        );
        let p99 = ours("latency.date1000.p99");
        let max = ours("latency.date1000.max");
        line(
            "start latency, 1,000 date jobs over 5 s: p99 at most 0.2 ms",
            p99.map(|v| format!("{v:.3} ms")),
            p99.map(|v| v <= 0.2),
        );
        // The machine's own floor (a plain thread sleeping to the same instants), measured
        // in the same rounds: a max above 1 ms there is the machine's, not the scheduler's.
        let floor = ours("latency.floor1000.max");
        line(
            "same: max under 1 ms",
            max.map(|v| match floor {
                Some(floor) => format!("{v:.3} ms (a plain sleeping thread: {floor:.3} ms)"),
                None => format!("{v:.3} ms"),
            }),
            max.map(|v| v < 1.0),
        );
        for stat in ["p99", "max"] {
            let r = row(&format!("latency.date1000.{stat}")).and_then(|r| r.ratio(APSCHEDULER));
            line(
                &format!("same: {stat} at least 2 times lower than APScheduler's"),
                r.map(ratio),
                r.map(|r| r >= 2.0),
            );
        }
        text
    }

    /// The chart's input: one bar per ratio.
    pub(crate) fn bars_json(&self) -> Value {
        let mut bars = Vec::new();
        for row in self.main_rows() {
            if let Some(r) = row.ratio(APSCHEDULER) {
                bars.push(json!({"label": row.title, "ratio": r, "against": APSCHEDULER}));
            }
        }
        for (row, peer) in self.peer_rows() {
            if let Some(r) = row.ratio(peer) {
                let label = row
                    .title
                    .strip_prefix("cron next fire time: ")
                    .unwrap_or(&row.title);
                bars.push(json!({"label": format!("cron: {label}"), "ratio": r, "against": peer}));
            }
        }
        Value::Array(bars)
    }
}

fn cell(stat: &Stat, metric: &str) -> String {
    let one = |v: f64| value(v, metric);
    if stat.rounds == 1 || stat.min == stat.max {
        one(stat.median)
    } else {
        format!("{} ({}–{})", one(stat.median), one(stat.min), one(stat.max))
    }
}

fn value(v: f64, metric: &str) -> String {
    match metric {
        "jobs/s" | "executions/s" => format!("{}/s", rate(v)),
        "B/job" => format!("{v:.0} B"),
        "ms" if v < 10.0 => format!("{v:.3} ms"),
        "ms" => format!("{v:.1} ms"),
        "ns" if v < 1000.0 => format!("{v:.0} ns"),
        "ns" => format!("{:.2} µs", v / 1e3),
        "s" => format!("{v:.2} s"),
        other => format!("{v:.0} {other}"),
    }
}

fn rate(v: f64) -> String {
    match v {
        v if v >= 1e6 => format!("{:.2}M", v / 1e6),
        v if v >= 1e4 => format!("{:.0}k", v / 1e3),
        v if v >= 1e3 => format!("{:.1}k", v / 1e3),
        v => format!("{v:.0}"),
    }
}

fn ratio(r: f64) -> String {
    if r >= 100.0 {
        format!("×{r:.0}")
    } else {
        format!("×{r:.2}")
    }
}

/// Writes `docs/benchmarks.md` and the README's figures.
pub(crate) fn write(run: &Run, tables: &Tables) -> Result {
    let m = &run.machine;
    let kind = if run.quick {
        "cargo xtask bench --quick"
    } else {
        "cargo xtask bench"
    };
    let mut doc = String::new();
    let _ = write!(
        doc,
        "# Benchmarks: this project against APScheduler, side by side

Written by `{kind}` (do not edit: run it again). Both sides ran in one run on the same
machine, interleaved (APScheduler, this project, APScheduler, ...) because the machine is
shared and noisy; each cell is the median over the rounds with the spread (min–max) in
parentheses. The ratio is how many times better this project is (above 1: better; for
rates, ours / theirs; for times and bytes, theirs / ours).

No tracing subscriber or metrics recorder is installed while measuring: the benches install
none and run with `RUST_LOG` cleared, so the library's `tracing` calls cost a check each;
APScheduler's logging is left unconfigured (Python's default: warnings to stderr).

- Date: {date}, commit {commit}, {rustc}; {python}, APScheduler {aps}
- Machine: {cpu}, {cores} cores, {memory} RAM; load average at the start: {load}
- Measuring took {secs:.0} s ({quick})

![benchmarks](benchmarks.svg)

{tables}
## Targets (issue 10)

{targets}
",
        date = m.date,
        commit = m.commit,
        rustc = m.rustc,
        python = m.python,
        aps = m.apscheduler,
        cpu = m.cpu,
        cores = m.cores,
        memory = m.memory,
        load = m.load,
        secs = run.measuring.as_secs_f64(),
        quick = if run.quick {
            "`--quick`: 2 rounds; the persistent stores and the process pool 1"
        } else {
            "5 rounds; the persistent stores and the process pool 3"
        },
        tables = tables.text(),
        targets = tables.targets(),
    );
    if !run.failures.is_empty() {
        doc.push_str("## Failed runs\n\n");
        for failure in &run.failures {
            let _ = writeln!(doc, "- {failure}");
        }
        doc.push('\n');
    }
    if !run.missing.is_empty() {
        doc.push_str("## Not measured yet\n\n");
        for missing in &run.missing {
            let _ = writeln!(doc, "- {missing}");
        }
        doc.push('\n');
    }
    let _ = write!(
        doc,
        "## Commands

Each side's command, run once per round; the Rust benches run from binaries built once by
`cargo bench --no-run` (release), APScheduler in a virtual environment made from
`xtask/apscheduler/requirements.txt`. \"Every core loaded\": one busy loop (`sh -c 'while :;
do :; done'`) per core runs beside both sides.

```sh
{commands}
```

## Adding a scenario

{LINE_FORMAT}

A bench target named `store` in `jobstore-sql`, `jobstore-redis` or `jobstore-mongo`, or
`process_pool` in `executors`, is built and run by `cargo xtask bench` as soon as it exists
(`<binary> [--quick]`), interleaved with the script `store_sql.py`,
`store_redis.py`, `store_mongo.py` or `process_pool.py` of xtask/apscheduler when it exists (same
arguments); any other scenario is a line in `plan` of `xtask/src/bench.rs`. The stores'
scenarios are written once on each side: `xtask/bench-support/store_scenarios.rs` (included by
each store's bench) and `xtask/apscheduler/store_common.py`.
",
        commands = run.commands.join("\n"),
    );
    let docs = root().join("docs");
    fs::create_dir_all(&docs).map_err(|e| format!("cannot create docs/: {e}"))?;
    fs::write(docs.join("benchmarks.md"), doc)
        .map_err(|e| format!("cannot write docs/benchmarks.md: {e}"))?;

    let readme_path = root().join("README.md");
    let readme =
        fs::read_to_string(&readme_path).map_err(|e| format!("cannot read README.md: {e}"))?;
    let (Some(start), Some(end)) = (readme.find(README_START), readme.find(README_END)) else {
        return Err(format!(
            "README.md has no `{README_START}` ... `{README_END}` block for the figures"
        ));
    };
    let figures = format!(
        "{README_START}
Measured by `{kind}` on {date} ({cpu}, {cores} cores; commit {commit}), both sides in the
same run, medians (min–max); ratio: how many times better this project is. Details,
commands and the issue's targets: [docs/benchmarks.md](docs/benchmarks.md).

![benchmarks](docs/benchmarks.svg)

{tables}",
        date = m.date,
        cpu = m.cpu,
        cores = m.cores,
        commit = m.commit,
        tables = tables.text(),
    );
    let updated = format!("{}{figures}{}", &readme[..start], &readme[end..]);
    fs::write(&readme_path, updated).map_err(|e| format!("cannot write README.md: {e}"))
}

//! `cargo xtask cluster-test BACKEND`: several scheduler processes on one store run every
//! due run once, and lose none but the runs in flight on a node that is killed.
//!
//! It builds the `cluster_node` example first (the runtime is the test, not the compile),
//! finds the backend's server as `test-all` does (`servers.rs`), and runs, each on a fresh
//! table / key prefix / collection:
//!
//! 1. three nodes, [`JOBS`] interval jobs every second for [`SECONDS`] s (misfire grace
//!    10 s), every run logged by the node that submits and executes it;
//! 2. the same, with one node killed with SIGKILL midway;
//! 3. alongside run 1, the wake-up probe: a paused node adds jobs due one second later, and
//!    an idle node must notice and fire them; the delay is how late it fires them.
//!
//! Definitions (issue #11): "expected" is every (job, scheduled time) of the interval jobs;
//! "duplicated" counts executions beyond the first of one scheduled time; "missed" is a
//! scheduled time no node executed; "in flight" is a run the killed node submitted (after
//! its fire commit) and never logged as executed. The command fails unless duplicated and
//! missed are both 0, in-flight runs of the killed node apart.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::examples;
use crate::servers::{self, Probe, SERVERS};
use crate::workspace::{Metadata, Result, test_var};

pub(crate) const ABOUT: &str =
    "three scheduler processes on one store, one killed: no run twice, none lost (BACKEND)";

/// The backends, as `cluster-test` and `test-all` name them.
pub(crate) const BACKENDS: &[&str] = &["sqlite", "postgres", "mysql", "redis", "mongo"];

/// Interval jobs per run.
const JOBS: usize = 500;
/// On MongoDB's test server (nx-27017, a single-threaded Python process) fewer: it serves
/// about a hundred fire commits a second.
const MONGO_JOBS: usize = 100;
/// How long the jobs fire, one run a second each.
const SECONDS: i64 = 30;
/// How long each run of a job takes (an async sleep): long enough that the killed node has
/// runs in flight when it dies.
const JOB_MILLIS: u64 = 800;
/// Nodes per run.
const NODES: [&str; 3] = ["a", "b", "c"];
/// From the nodes' start to the first run time: time to start and add the jobs.
const STARTUP: Duration = Duration::from_secs(4);
/// The wake-up probes: how many, how far apart (spread over the idle node's `max_wait`).
const PROBES: usize = 4;
const PROBE_GAP: Duration = Duration::from_millis(2500);
/// In the first run, node `c`'s clock is this far ahead of the others' (a `Clock` that adds
/// it): under the claim lease, so claims still keep the nodes apart.
const SKEW: Duration = Duration::from_millis(500);
/// The nodes' cluster timings: short, so the killed node is taken for dead (and its runs
/// recovered) well before the jobs end.
const HEARTBEAT: Duration = Duration::from_secs(1);
const NODE_TIMEOUT: Duration = Duration::from_secs(5);
const CLAIM_LEASE: Duration = Duration::from_secs(2);
/// How long the nodes may go on after the last run time before they are stopped.
const GRACE_AFTER: Duration = Duration::from_secs(25);

pub(crate) fn run(args: &[String]) -> Result {
    let [backend] = args else {
        return Err(format!(
            "usage: cargo xtask cluster-test BACKEND (one of {})",
            BACKENDS.join(", ")
        ));
    };
    run_backend(backend)
}

/// The whole test on `backend`, as one `test-all` step runs it.
pub(crate) fn run_backend(backend: &str) -> Result {
    if !BACKENDS.contains(&backend) {
        return Err(format!(
            "no backend {backend:?}; the backends: {}",
            BACKENDS.join(", ")
        ));
    }
    let metadata = Metadata::load()?;
    let node = build()?;
    let work = metadata
        .target_directory
        .join("xtask/cluster")
        .join(backend);
    // Held to the end: a MongoDB this command started serves until then.
    let (url, _probe) = url(backend, &metadata.target_directory, &work)?;
    let jobs = if backend == "mongo" { MONGO_JOBS } else { JOBS };
    let stamp = unix_micros() / 1_000_000;
    eprintln!(
        "\n==> cluster-test {backend}: {} nodes, {jobs} interval jobs every second for \
         {SECONDS} s (misfire grace 10 s, each run {JOB_MILLIS} ms){}",
        NODES.len(),
        if backend == "mongo" {
            format!(" ({MONGO_JOBS} on MongoDB's test server, not {JOBS})")
        } else {
            String::new()
        }
    );
    let setup = Setup {
        node: &node,
        url: &url,
        jobs,
        work: &work,
    };
    let all_up = setup.run(&format!("cluster_{stamp}_up"), false, true, true)?;
    let killed = setup.run(&format!("cluster_{stamp}_kill"), true, false, false)?;

    eprintln!("\n  {backend}: {}", Outcome::HEADER);
    eprintln!("  {backend}: {}", all_up.row("all up"));
    eprintln!(
        "  {backend}: {}",
        killed.row(&format!("{} killed", killed.killed.unwrap_or("?")))
    );
    eprintln!(
        "  {backend}: the store declares cluster={} (claims, heartbeats, recovery) notifies={} \
         (pushed wake-ups); node timings: heartbeat {HEARTBEAT:?}, node timeout \
         {NODE_TIMEOUT:?}, claim lease {CLAIM_LEASE:?}",
        killed.capabilities.cluster, killed.capabilities.notifies
    );
    if killed.capabilities.cluster {
        eprintln!(
            "  {backend}: killed: the even-numbered jobs recover lost runs; {} JobRecovered \
             events",
            killed.recovered_events
        );
    } else {
        eprintln!(
            "  {backend}: killed: the store implements no recovery: every run in flight on \
             the killed node is lost (at most once)"
        );
    }
    eprintln!(
        "  {backend}: all up: node {}'s clock runs {SKEW:?} ahead of the others'",
        NODES[2]
    );
    for (label, outcome) in [("all up", &all_up), ("killed", &killed)] {
        let recovered = outcome
            .worst_recovered_lag_micros
            .map_or_else(String::new, |lag| {
                format!(
                    "; latest recovered run {:.2} s after its scheduled time (it waits for the \
                 killed node's heartbeat to lapse: node timeout {NODE_TIMEOUT:?})",
                    lag as f64 / 1e6
                )
            });
        eprintln!(
            "  {backend}: {label}: executions per node {}; latest submission {:.2} s after \
             its scheduled time{recovered}",
            outcome.per_node_text(),
            outcome.worst_lag_micros as f64 / 1e6
        );
    }
    let probe = all_up
        .probe
        .as_ref()
        .ok_or("the wake-up probe did not run")?;
    eprintln!(
        "  {backend}: wake-up: {} jobs added on a paused node, due 1 s later, fired by an idle \
         node: worst delay {:.3} s (each: {})",
        PROBES,
        probe.worst() as f64 / 1e6,
        probe.text()
    );
    let problems: Vec<String> = all_up
        .problems("all up")
        .into_iter()
        .chain(killed.problems("killed"))
        .chain(probe.problems())
        .collect();
    if problems.is_empty() {
        eprintln!("==> cluster-test {backend}: ok");
        Ok(())
    } else {
        Err(format!(
            "cluster-test {backend} failed:\n  {}\n(node logs in {})",
            problems.join("\n  "),
            work.display()
        ))
    }
}

/// Builds the examples as `cargo xtask examples` does and answers the `cluster_node`
/// executable.
fn build() -> Result<PathBuf> {
    let metadata = Metadata::load()?;
    let examples_id = metadata.package(examples::PACKAGE)?.id.clone();
    examples::build(&examples_id)?
        .remove("cluster_node")
        .ok_or_else(|| "cargo built no cluster_node example".into())
}

/// The store URL for `backend`: a fresh SQLite file under `work`, else the server `test-all`
/// settled on, else the one the server probe finds (or starts, for MongoDB: the probe is
/// answered too, to keep that server up).
fn url(backend: &str, target: &Path, work: &Path) -> Result<(String, Option<Probe>)> {
    if work.exists() {
        fs::remove_dir_all(work).map_err(|e| format!("{}: {e}", work.display()))?;
    }
    fs::create_dir_all(work).map_err(|e| format!("{}: {e}", work.display()))?;
    if backend == "sqlite" {
        return Ok((
            format!("sqlite://{}", work.join("jobs.sqlite").display()),
            None,
        ));
    }
    let server = SERVERS
        .iter()
        .find(|s| s.name == backend)
        .ok_or_else(|| format!("no server for {backend}"))?;
    if let Some(url) = test_var(server.env).filter(|u| !u.trim().is_empty()) {
        return Ok((url, None));
    }
    if backend != "mongo" {
        return Ok((servers::settle(server)?, None));
    }
    // No MongoDB configured: the probe starts one (and the rest of its findings go unused).
    let probe = servers::probe(target);
    let url = probe
        .vars
        .iter()
        .find(|(k, _)| k == server.env)
        .map(|(_, v)| v.clone())
        .ok_or_else(|| format!("mongo is unreachable: {}", probe.problems.join("; ")))?;
    Ok((url, Some(probe)))
}

#[expect(
    clippy::disallowed_methods,
    reason = "the nodes' log times and the agreed start are wall-clock instants across \
              processes; xtask has no Clock"
)]
fn unix_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

fn sleep_until_micros(at: i64) {
    let now = unix_micros();
    if at > now {
        sleep(Duration::from_micros(at.abs_diff(now)));
    }
}

/// What every run shares.
struct Setup<'a> {
    node: &'a Path,
    url: &'a str,
    jobs: usize,
    work: &'a Path,
}

impl Setup<'_> {
    /// One run on the store `name`: the nodes, one of them killed midway when `kill`, the
    /// wake-up probe alongside when `probe`, the last node's clock [`SKEW`] ahead when `skew`.
    fn run(&self, name: &str, kill: bool, probe: bool, skew: bool) -> Result<Outcome> {
        let dir = self.work.join(name);
        fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let start = unix_micros() + micros(STARTUP);
        let last_run = start + (SECONDS - 1) * 1_000_000;
        let deadline = last_run + micros(GRACE_AFTER);
        let mut children: Vec<(String, Child)> = Vec::new();
        let spawned = (|| -> Result {
            for (i, node) in NODES.iter().enumerate() {
                let mut command = self.command(name, node, &dir, last_run, deadline);
                if skew && i == 2 {
                    command.args(["--skew-millis", &SKEW.as_millis().to_string()]);
                }
                if i == 0 {
                    command.args(["--add-jobs", &self.jobs.to_string()]);
                    command.args(["--start-micros", &start.to_string()]);
                    command.args(["--seconds", &SECONDS.to_string()]);
                    command.args(["--job-millis", &JOB_MILLIS.to_string()]);
                    if kill {
                        command.arg("--recover-half");
                    }
                }
                children.push((node.to_string(), spawn(command, &dir, node)?));
            }
            if probe {
                let probe_name = format!("{name}_probe");
                let probe_end = unix_micros() + micros(PROBE_GAP) * PROBES as i64 + 2_000_000;
                // The idle node first, so it is waiting when the jobs arrive.
                let idle = self.command(&probe_name, "idle", &dir, probe_end, deadline);
                children.push(("idle".into(), spawn(idle, &dir, "idle")?));
                sleep(Duration::from_secs(1));
                let mut adder = self.command(&probe_name, "adder", &dir, probe_end, deadline);
                adder.args(["--paused", "--probes", &PROBES.to_string()]);
                adder.args(["--probe-gap-millis", &PROBE_GAP.as_millis().to_string()]);
                children.push(("adder".into(), spawn(adder, &dir, "adder")?));
            }
            Ok(())
        })();
        let mut killed = None;
        if spawned.is_ok() && kill {
            // Mid-second, the node that fired most of that second's runs: they are in flight.
            let second = start + SECONDS / 2 * 1_000_000;
            sleep_until_micros(second + 600_000);
            // A node late on that second: wait (at most 2 s more) until one has fired some.
            let mut k = busiest(&dir, second);
            while k.1 == 0 && unix_micros() < second + 2_600_000 {
                sleep(Duration::from_millis(20));
                k = busiest(&dir, second);
            }
            let k = k.0;
            let (node, child) = &mut children[k];
            child
                .kill()
                .map_err(|e| format!("cannot kill node {node}: {e}"))?;
            eprintln!(
                "  node {node} killed (SIGKILL) {:.1} s after the first run time",
                (unix_micros() - start) as f64 / 1e6
            );
            killed = Some(NODES[k]);
        }
        let failures = wait_all(&mut children, killed, deadline, &dir);
        spawned?;
        if !failures.is_empty() {
            return Err(failures.join("\n"));
        }
        let logs = read_logs(&dir)?;
        let capabilities = Capabilities::read(&logs);
        let recovery = kill && capabilities.cluster;
        let mut outcome = Outcome::count(&logs, self.jobs, start, killed, &NODES, recovery);
        outcome.capabilities = capabilities;
        outcome.recovered_events = logs.lines().filter(|l| l.starts_with("recovered ")).count();
        outcome.killed = killed;
        if probe {
            outcome.probe = Some(Probes::count(&logs));
        }
        Ok(outcome)
    }

    fn command(&self, name: &str, node: &str, dir: &Path, stop: i64, deadline: i64) -> Command {
        let mut command = Command::new(self.node);
        command
            .args(["--store", self.url, "--name", name, "--node", node])
            .arg("--log")
            .arg(dir.join(format!("{node}.log")))
            .args(["--stop-after-micros", &stop.to_string()])
            .args(["--heartbeat-millis", &HEARTBEAT.as_millis().to_string()])
            .args([
                "--node-timeout-millis",
                &NODE_TIMEOUT.as_millis().to_string(),
            ])
            .args(["--claim-lease-millis", &CLAIM_LEASE.as_millis().to_string()])
            .args(["--deadline-micros", &deadline.to_string()]);
        command
    }
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

fn spawn(mut command: Command, dir: &Path, node: &str) -> Result<Child> {
    let stderr = dir.join(format!("{node}.stderr"));
    let file = fs::File::create(&stderr).map_err(|e| format!("{}: {e}", stderr.display()))?;
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .map_err(|e| format!("cannot start node {node}: {e}"))
}

/// The index in [`NODES`] of the node that submitted most runs scheduled at `second`, and
/// how many.
fn busiest(dir: &Path, second: i64) -> (usize, usize) {
    let submitted = |node: &str| {
        fs::read_to_string(dir.join(format!("{node}.log")))
            .unwrap_or_default()
            .lines()
            .filter_map(parse)
            .filter(|l| l.what == "submitted" && l.scheduled == second)
            .count()
    };
    (0..NODES.len())
        .map(|k| (k, submitted(NODES[k])))
        .max_by_key(|&(_, n)| n)
        .unwrap_or((0, 0))
}

/// Waits for every node; one still running well past `deadline` is killed. Answers each
/// node that failed (but `killed`), with the end of its standard error.
fn wait_all(
    children: &mut [(String, Child)],
    killed: Option<&str>,
    deadline: i64,
    dir: &Path,
) -> Vec<String> {
    let mut failures = Vec::new();
    for (node, child) in children.iter_mut() {
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Ok(status),
                Ok(None) if unix_micros() > deadline + 15_000_000 => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break Err("still running 15 s past its deadline: killed".to_owned());
                }
                Ok(None) => sleep(Duration::from_millis(100)),
                Err(e) => break Err(format!("cannot wait for it: {e}")),
            }
        };
        if Some(node.as_str()) == killed {
            continue;
        }
        let problem = match status {
            Ok(status) if status.success() => continue,
            Ok(status) => format!("exited with {status}"),
            Err(problem) => problem,
        };
        let stderr = fs::read_to_string(dir.join(format!("{node}.stderr"))).unwrap_or_default();
        let tail: Vec<&str> = stderr.lines().rev().take(10).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        failures.push(format!(
            "node {node} {problem}; the end of its standard error:\n{}",
            tail.join("\n")
        ));
    }
    failures
}

/// Every `*.log` of `dir`, concatenated.
fn read_logs(dir: &Path) -> Result<String> {
    let mut text = String::new();
    let entries = fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| format!("{}: {e}", dir.display()))?.path();
        if path.extension().is_some_and(|e| e == "log") {
            text.push_str(
                &fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?,
            );
        }
    }
    Ok(text)
}

/// One logged run: `submitted|executed JOB SCHEDULED NODE AT`.
#[derive(Debug, PartialEq)]
struct Line<'a> {
    what: &'a str,
    job: &'a str,
    scheduled: i64,
    node: &'a str,
    at: i64,
}

fn parse(line: &str) -> Option<Line<'_>> {
    let mut words = line.split(' ');
    let what = words.next()?;
    if what != "submitted" && what != "executed" {
        return None;
    }
    Some(Line {
        what,
        job: words.next()?,
        scheduled: words.next()?.parse().ok()?,
        node: words.next()?,
        at: words.next()?.parse().ok()?,
    })
}

/// What the nodes' store declares (`capabilities NODE cluster=BOOL notifies=BOOL` lines):
/// true only when every node said so.
#[derive(Debug, Default, PartialEq)]
struct Capabilities {
    cluster: bool,
    notifies: bool,
}

impl Capabilities {
    fn read(logs: &str) -> Self {
        let lines: Vec<&str> = logs
            .lines()
            .filter(|l| l.starts_with("capabilities "))
            .collect();
        let all =
            |word: &str| !lines.is_empty() && lines.iter().all(|l| l.split(' ').any(|w| w == word));
        Capabilities {
            cluster: all("cluster=true"),
            notifies: all("notifies=true"),
        }
    }
}

/// Whether `job` (`tick-N`) is one of the jobs the kill run gives recovery (`--recover-half`:
/// the even-numbered ones).
fn recovers(job: &str) -> bool {
    job.strip_prefix("tick-")
        .and_then(|n| n.parse::<usize>().ok())
        .is_some_and(|n| n % 2 == 0)
}

/// The counts of one run of the interval jobs.
#[derive(Debug, Default, PartialEq)]
struct Outcome {
    expected: usize,
    executed: usize,
    duplicated: usize,
    missed: usize,
    /// Executions of no expected run (another job, another time).
    unexpected: usize,
    /// Runs the killed node submitted and never finished.
    in_flight: Option<usize>,
    /// Of those, the runs of jobs with recovery on.
    recoverable: Option<usize>,
    /// Of those, the ones another node ran again.
    recovered: Option<usize>,
    per_node: BTreeMap<String, usize>,
    /// The latest submission after its scheduled time, µs, of the runs fired by the loop.
    worst_lag_micros: i64,
    /// The same of the runs recovered from the killed node: these wait for its heartbeat to
    /// lapse (`NODE_TIMEOUT`, seen at a survivor's next heartbeat), by design.
    worst_recovered_lag_micros: Option<i64>,
    /// The node killed.
    killed: Option<&'static str>,
    /// `JobRecovered` events the nodes logged.
    recovered_events: usize,
    capabilities: Capabilities,
    probe: Option<Probes>,
}

impl Outcome {
    const HEADER: &'static str =
        "run        expected  executed  duplicated  missed  in flight (killed)  recovered";

    /// Counts the `tick-*` runs in `logs`: `jobs` jobs, one run a second from `start`; with
    /// `recovery`, the even-numbered jobs recover lost runs, so their runs in flight on the
    /// killed node must be run again.
    fn count(
        logs: &str,
        jobs: usize,
        start: i64,
        killed: Option<&str>,
        nodes: &[&str],
        recovery: bool,
    ) -> Self {
        let expected: BTreeSet<(String, i64)> = (0..jobs)
            .flat_map(|j| (0..SECONDS).map(move |k| (format!("tick-{j}"), start + k * 1_000_000)))
            .collect();
        let mut executions: BTreeMap<(String, i64), Vec<String>> = BTreeMap::new();
        // Named for what it ends up holding: submitted, then committed, runs.
        let mut submitted_by_killed: BTreeSet<(String, i64)> = BTreeSet::new();
        let mut outcome = Outcome {
            expected: expected.len(),
            per_node: nodes.iter().map(|n| (n.to_string(), 0)).collect(),
            ..Outcome::default()
        };
        // Runs a node ran again for the killed one: (job, scheduled, recovering node).
        let recoveries: BTreeSet<(&str, i64, &str)> = logs
            .lines()
            .filter_map(
                |line| match line.split(' ').collect::<Vec<_>>().as_slice() {
                    ["recovered", job, scheduled, node, ..] => {
                        Some((*job, scheduled.parse().ok()?, *node))
                    }
                    _ => None,
                },
            )
            .collect();
        for line in logs.lines().filter_map(parse) {
            if !line.job.starts_with("tick-") {
                continue;
            }
            let key = (line.job.to_owned(), line.scheduled);
            match line.what {
                "executed" => {
                    executions
                        .entry(key)
                        .or_default()
                        .push(line.node.to_owned());
                    *outcome.per_node.entry(line.node.to_owned()).or_default() += 1;
                }
                _ => {
                    let lag = line.at - line.scheduled;
                    if recoveries.contains(&(line.job, line.scheduled, line.node)) {
                        let worst = outcome.worst_recovered_lag_micros.get_or_insert(lag);
                        *worst = (*worst).max(lag);
                    } else {
                        outcome.worst_lag_micros = outcome.worst_lag_micros.max(lag);
                    }
                    if Some(line.node) == killed {
                        submitted_by_killed.insert(key);
                    }
                }
            }
        }
        // The runs the killed node committed (its `committing` lines, each covering the run
        // times from the fire's due time up to its next) or submitted.
        let mut recovered_events: BTreeSet<(String, i64)> = BTreeSet::new();
        for line in logs.lines() {
            let words: Vec<&str> = line.split(' ').collect();
            match words.as_slice() {
                ["committing", job, due, until, node] if Some(*node) == killed => {
                    let (Ok(due), Ok(until)) = (due.parse::<i64>(), until.parse::<i64>()) else {
                        continue;
                    };
                    submitted_by_killed.extend(
                        expected
                            .range((job.to_string(), due)..(job.to_string(), until))
                            .cloned(),
                    );
                }
                ["recovered", job, scheduled, ..] => {
                    if let Ok(t) = scheduled.parse() {
                        recovered_events.insert((job.to_string(), t));
                    }
                }
                _ => {}
            }
        }
        // In flight: committed by the killed node, not finished by it, and then run by nobody
        // (a commit that was stale or never reached the store left the run to another node)
        // or recovered.
        let in_flight: BTreeSet<&(String, i64)> = submitted_by_killed
            .iter()
            .filter(|key| {
                let runs = executions.get(*key);
                !runs.is_some_and(|nodes| nodes.iter().any(|n| Some(n.as_str()) == killed))
                    && (runs.is_none() || recovered_events.contains(*key))
            })
            .collect();
        for (key, nodes) in &executions {
            outcome.executed += nodes.len();
            outcome.duplicated += nodes.len() - 1;
            if !expected.contains(key) {
                outcome.unexpected += nodes.len();
            }
        }
        // A run in flight on the killed node is lost, as promised, unless its job recovers.
        let excused =
            |key: &(String, i64)| in_flight.contains(key) && !(recovery && recovers(&key.0));
        outcome.missed = expected
            .iter()
            .filter(|key| !executions.contains_key(*key) && !excused(key))
            .count();
        if killed.is_some() {
            outcome.in_flight = Some(in_flight.len());
            outcome.recoverable = Some(in_flight.iter().filter(|key| recovers(&key.0)).count());
            outcome.recovered = Some(
                in_flight
                    .iter()
                    .filter(|key| {
                        executions.contains_key(**key) && recovered_events.contains(**key)
                    })
                    .count(),
            );
        }
        outcome
    }

    fn row(&self, label: &str) -> String {
        let optional = |n: Option<usize>| n.map_or_else(|| "-".to_owned(), |n| n.to_string());
        format!(
            "{label:<10} {:>8}  {:>8}  {:>10}  {:>6}  {:>18}  {:>9}",
            self.expected,
            self.executed,
            self.duplicated,
            self.missed,
            match (self.in_flight, self.recoverable) {
                (Some(n), Some(r)) => format!("{n} ({r} recover)"),
                _ => "-".to_owned(),
            },
            optional(self.recovered),
        )
    }

    fn per_node_text(&self) -> String {
        let parts: Vec<String> = self
            .per_node
            .iter()
            .map(|(n, c)| format!("{n} {c}"))
            .collect();
        parts.join(", ")
    }

    fn problems(&self, label: &str) -> Vec<String> {
        let mut problems = Vec::new();
        if self.duplicated > 0 {
            problems.push(format!("{label}: {} runs executed twice", self.duplicated));
        }
        if self.missed > 0 {
            problems.push(format!(
                "{label}: {} scheduled runs executed by no node",
                self.missed
            ));
        }
        if self.unexpected > 0 {
            problems.push(format!(
                "{label}: {} executions of no scheduled run",
                self.unexpected
            ));
        }
        problems
    }
}

/// The wake-up probes: when each was due and when the idle node fired it.
#[derive(Debug, Default, PartialEq)]
struct Probes {
    /// Per probe job: (due, fired by, delay µs), `None` for one never fired.
    fired: BTreeMap<String, Option<(String, i64)>>,
}

impl Probes {
    fn count(logs: &str) -> Self {
        let mut probes = Probes::default();
        for line in logs.lines() {
            // `added probe-N DUE NODE`
            if let Some(rest) = line.strip_prefix("added ")
                && let Some(job) = rest.split(' ').next()
            {
                probes.fired.entry(job.to_owned()).or_insert(None);
            }
        }
        for line in logs.lines().filter_map(parse) {
            if line.what == "executed" && line.job.starts_with("probe-") {
                probes.fired.insert(
                    line.job.to_owned(),
                    Some((line.node.to_owned(), line.at - line.scheduled)),
                );
            }
        }
        probes
    }

    fn worst(&self) -> i64 {
        self.fired
            .values()
            .map(|f| f.as_ref().map_or(0, |(_, delay)| *delay))
            .max()
            .unwrap_or(0)
    }

    fn text(&self) -> String {
        let parts: Vec<String> = self
            .fired
            .iter()
            .map(|(job, fired)| match fired {
                Some((node, delay)) => format!("{job} {:.3} s by {node}", *delay as f64 / 1e6),
                None => format!("{job} never fired"),
            })
            .collect();
        parts.join(", ")
    }

    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.fired.len() != PROBES {
            problems.push(format!(
                "wake-up: {} of {PROBES} probe jobs were added",
                self.fired.len()
            ));
        }
        for (job, fired) in &self.fired {
            match fired {
                None => problems.push(format!("wake-up: {job} was never fired")),
                Some((node, _)) if node != "idle" => problems.push(format!(
                    "wake-up: {job} was fired by {node}, not by the idle node"
                )),
                Some(_) => {}
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;

    fn log(what: &str, job: usize, k: i64, node: &str) -> String {
        format!("{what} tick-{job} {} {node} {}\n", k * S, k * S + 1000)
    }

    #[test]
    fn every_run_once_is_clean() {
        let mut logs = String::new();
        for j in 0..2 {
            for k in 0..SECONDS {
                let node = ["a", "b"][(k % 2) as usize];
                logs += &log("submitted", j, k, node);
                logs += &log("executed", j, k, node);
            }
        }
        let outcome = Outcome::count(&logs, 2, 0, None, &["a", "b", "c"], false);
        assert_eq!(outcome.expected, 2 * SECONDS as usize);
        assert_eq!(outcome.executed, outcome.expected);
        assert_eq!(
            (outcome.duplicated, outcome.missed, outcome.unexpected),
            (0, 0, 0)
        );
        assert_eq!(outcome.per_node["c"], 0);
        assert!(outcome.problems("x").is_empty());
    }

    #[test]
    fn recovered_runs_are_late_on_their_own_line() {
        // tick-0 at 0 s: submitted on time by c (killed), run again by a 5.5 s late; tick-0
        // at 1 s submitted 0.2 s late by a.
        let logs = format!(
            "submitted tick-0 0 c 1000\nrecovered tick-0 0 a c\nsubmitted tick-0 0 a {}\n\
             submitted tick-0 {S} a {}\n",
            55 * S / 10,
            S + S / 5
        );
        let outcome = Outcome::count(&logs, 1, 0, Some("c"), &["a", "b", "c"], true);
        assert_eq!(outcome.worst_lag_micros, S / 5);
        assert_eq!(outcome.worst_recovered_lag_micros, Some(55 * S / 10));
    }

    #[test]
    fn duplicates_misses_and_in_flight_runs_are_told_apart() {
        let mut logs = String::new();
        for k in 0..SECONDS {
            match k {
                // Run twice.
                1 => {
                    logs += &log("executed", 0, k, "a");
                    logs += &log("executed", 0, k, "b");
                }
                // Never run.
                2 => {}
                // In flight on the killed node c.
                3 => logs += &log("submitted", 0, k, "c"),
                // In flight on c, then recovered by a.
                4 => {
                    logs += &log("submitted", 0, k, "c");
                    logs += &format!("recovered tick-0 {} a c\n", k * S);
                    logs += &log("executed", 0, k, "a");
                }
                // Committed by c (with the next run, a catch-up), never submitted.
                5 => logs += &format!("committing tick-0 {} {} c\n", k * S, (k + 2) * S),
                // Committed by c but stale: a ran it.
                7 => {
                    logs += &format!("committing tick-0 {} {} c\n", k * S, (k + 1) * S);
                    logs += &log("executed", 0, k, "a");
                }
                _ => logs += &log("executed", 0, k, "a"),
            }
        }
        logs += "executed tick-7 0 a 5\n";
        let outcome = Outcome::count(&logs, 1, 0, Some("c"), &["a", "b", "c"], false);
        assert_eq!(outcome.duplicated, 1);
        assert_eq!(outcome.missed, 1);
        // tick-0 recovers: its run lost in flight is a miss when the store recovers runs.
        let recovering = Outcome::count(&logs, 1, 0, Some("c"), &["a", "b", "c"], true);
        assert_eq!(recovering.missed, 3);
        assert_eq!(recovering.recoverable, Some(3));
        assert_eq!(outcome.in_flight, Some(3));
        assert_eq!(outcome.recovered, Some(1));
        assert_eq!(outcome.unexpected, 1);
        assert_eq!(outcome.problems("x").len(), 3);
    }

    #[test]
    fn probes_report_their_delay_and_who_fired_them() {
        let logs = "added probe-0 5000000 adder\nadded probe-1 9000000 adder\n\
                    executed probe-0 5000000 idle 7500000\n";
        let probes = Probes::count(logs);
        assert_eq!(probes.worst(), 2_500_000);
        assert!(
            probes
                .problems()
                .iter()
                .any(|p| p.contains("probe-1 was never fired"))
        );
    }
}

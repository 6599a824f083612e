//! The worker side: a process started by the pool, serving runs over its stdin and stdout.

use std::io::{BufRead as _, Write as _};

use scheduler_core::JobRegistry;
use scheduler_core::executor::wire::{self, RunOutcome, RunReport, RunRequest};

use super::protocol::{Hello, WORKER_ENV};

/// Turns this process into a process-pool worker if the pool started it as one, and never
/// returns then; returns at once otherwise. Call it first thing in `main`, before any side
/// effect, with the registry of job functions the workers may run (the way Python programs
/// need their `if __name__ == "__main__"` guard):
///
/// ```no_run
/// use scheduler_core::JobRegistry;
///
/// fn registry() -> JobRegistry {
///     let registry = JobRegistry::new();
///     registry.register_sync("crunch", |n: u64| Ok::<u64, std::convert::Infallible>((1..=n).sum()));
///     registry
/// }
///
/// fn main() {
///     let registry = registry();
///     executors::process_pool::worker_main(&registry); // returns here in the scheduler
///     // ... build the scheduler with a ProcessPoolExecutor, as usual
/// }
/// ```
///
/// A worker reads runs from its stdin and answers on the stdout it was started with; what
/// job functions print to stdout goes to stderr instead, so it cannot break that channel.
/// It exits when its stdin closes (the pool is done with it, or the scheduler's process
/// died, whatever killed it), and within 100 ms of the scheduler's process dying while a job
/// runs.
///
/// A program that forgets this call is caught at its first run: its child prints something
/// other than a worker's greeting (or nothing), and the run fails with an error saying to
/// call this function; a `ProcessPoolExecutor` started in such a child refuses to start, so
/// it cannot start workers of its own.
pub fn worker_main(registry: &JobRegistry) {
    if std::env::var_os(WORKER_ENV).is_none() {
        return;
    }
    let code = match serve(registry) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("process-pool worker {}: {e}", std::process::id());
            1
        }
    };
    std::process::exit(code);
}

fn serve(registry: &JobRegistry) -> std::io::Result<()> {
    // The channel to the pool is the stdout this process was started with; from here on
    // fd 1 is stderr, so a job's `println!` cannot corrupt it. The copy is close-on-exec, so a
    // job's own child processes do not inherit it.
    std::io::stdout().flush()?;
    let channel = rustix::io::fcntl_dupfd_cloexec(std::io::stdout(), 3)?;
    rustix::stdio::dup2_stdout(std::io::stderr())?;
    let mut channel = std::io::BufWriter::new(std::fs::File::from(channel));

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let node = scheduler_core::executor::local_node();
    write_line(&mut channel, &Hello::new(std::process::id()))?;

    // A closed stdin ends the worker when it is idle; while a job runs, a watchdog notices
    // that the scheduler's process is gone (this process got a new parent) and ends it at
    // once, even in the middle of a long job.
    let parent = std::os::unix::process::parent_id();
    std::thread::Builder::new()
        .name("process-pool-worker-watchdog".into())
        .spawn(move || {
            loop {
                std::thread::sleep(std::time::Duration::from_millis(100));
                if std::os::unix::process::parent_id() != parent {
                    std::process::exit(0);
                }
            }
        })?;

    let stdin = std::io::stdin();
    let mut requests = stdin.lock();
    let mut line = String::new();
    loop {
        line.clear();
        if requests.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let report = match serde_json::from_str::<RunRequest>(&line) {
            Ok(request) => wire::execute_blocking(registry, &request, node, runtime.handle()),
            Err(e) => RunReport {
                version: wire::WIRE_VERSION,
                run_id: run_id_of(&line),
                node: node.to_owned(),
                outcome: RunOutcome::Refused {
                    reason: format!("the worker could not read the run: {e}"),
                },
            },
        };
        write_line(&mut channel, &report)?;
    }
}

/// The run id of a request this version cannot read, so the refusal still answers it.
fn run_id_of(line: &str) -> String {
    serde_json::from_str::<serde_json::Value>(line)
        .ok()
        .and_then(|v| v.get("run_id")?.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn write_line(out: &mut impl std::io::Write, value: &impl serde::Serialize) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    out.write_all(b"\n")?;
    out.flush()
}

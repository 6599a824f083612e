//! Jobs in worker processes (APScheduler's `ProcessPoolExecutor`). Unix only.
//!
//! Workers re-run a program in worker mode: by default the current executable, whose `main`
//! must call [`worker_main`] first thing (see there). Each run travels to a worker as wire
//! data (`scheduler_core::executor::wire`): the registered function's name, its JSON
//! arguments and the run's context; the outcome comes back the same way. Closures cannot
//! cross a process boundary, so a job with a closure target is refused at `add_job` and
//! `modify_job` for this executor.
//!
//! * Workers start as runs arrive, up to `max_workers`, and are reused; with
//!   [`recycle_after`](ProcessPoolExecutor::recycle_after) each is replaced after that many
//!   runs.
//! * A worker that dies under a run (abort, segfault, `exit`, the out-of-memory killer, a
//!   `kill` from outside) turns that run into a `JobError` naming what happened
//!   ([`FailureKind::WorkerLost`]); the next run gets a new worker. A run past the job's
//!   timeout has its worker killed and is reported as [`FailureKind::TimedOut`].
//! * Runs wait in a bounded queue ([`queue_capacity`](ProcessPoolExecutor::queue_capacity));
//!   a run refused because it is full, or because no worker can be started, is a `JobError`
//!   of kind [`FailureKind::Refused`], never lost silently.
//! * Workers live in their own process group, so the terminal's Ctrl-C reaches only the
//!   scheduler, which drains them in its graceful shutdown. Workers exit when their stdin
//!   closes, which also happens when the scheduler's process dies, however it dies, and a
//!   worker in the middle of a job notices within 100 ms that its parent is gone.
//! * `shutdown(wait = true)` runs what is queued and running, then stops every worker and
//!   waits for it; `shutdown(wait = false)` returns at once and does the same in the
//!   background. No worker outlives the pool.
//!
//! The pool needs the scheduler's runtime to have its I/O and time drivers
//! (`tokio::runtime::Builder::enable_all`, as `#[tokio::main]` does).

mod protocol;
mod worker;

pub use worker::worker_main;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use scheduler_core::executor::wire::{RunReport, RunRequest, check_version};
use scheduler_core::{
    Error, Executor, ExecutorCapabilities, ExecutorContext, FailureKind, InstanceGuard,
    InstanceLimiter, JobFailure, JobRun, Result,
};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::mpsc;

use protocol::{Hello, WORKER_ENV};

/// How many runs wait for a worker by default.
pub const DEFAULT_QUEUE_CAPACITY: usize = 10_000;

/// How long a new worker has to greet by default.
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs jobs in a pool of worker processes (APScheduler's `ProcessPoolExecutor`). Unix only.
///
/// See the [module documentation](self) for what it guarantees, and [`worker_main`] for the
/// one call the program's `main` must make.
///
/// ```no_run
/// use executors::process_pool::{ProcessPoolExecutor, worker_main};
/// use scheduler_core::{JobRegistry, Scheduler};
///
/// # #[tokio::main] async fn main() -> scheduler_core::Result<()> {
/// let registry = JobRegistry::new();
/// registry.register_sync("crunch", |n: u64| Ok::<u64, std::convert::Infallible>((1..=n).sum()));
/// worker_main(&registry); // a worker never gets past this line
///
/// let pool = ProcessPoolExecutor::new(4)?.recycle_after(1_000);
/// let scheduler = Scheduler::builder()
///     .registry(registry)
///     .jobstore("default", jobstore_memory::MemoryJobStore::new())
///     .executor("default", pool)
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ProcessPoolExecutor {
    settings: Arc<Settings>,
    running: Mutex<Option<Running>>,
}

#[derive(Debug, Clone)]
struct Settings {
    max_workers: usize,
    program: Option<PathBuf>,
    args: Vec<OsString>,
    recycle_after: Option<u64>,
    queue_capacity: usize,
    start_timeout: Duration,
}

type Task = (JobRun, InstanceGuard);

#[derive(Debug)]
struct Running {
    ctx: ExecutorContext,
    limiter: InstanceLimiter,
    queue: mpsc::Sender<Task>,
    dispatcher: tokio::task::JoinHandle<()>,
}

impl ProcessPoolExecutor {
    /// A pool of at most `max_workers` processes (APScheduler's default is 10) running the
    /// current executable; fails if zero.
    pub fn new(max_workers: usize) -> Result<Self> {
        if max_workers == 0 {
            return Err(Error::config("max_workers must be at least 1"));
        }
        Ok(ProcessPoolExecutor {
            settings: Arc::new(Settings {
                max_workers,
                program: None,
                args: Vec::new(),
                recycle_after: None,
                queue_capacity: DEFAULT_QUEUE_CAPACITY,
                start_timeout: DEFAULT_START_TIMEOUT,
            }),
            running: Mutex::new(None),
        })
    }

    /// The program workers run (default: the current executable), for programs whose
    /// `main` cannot be the worker's: test harnesses, or a small dedicated worker binary.
    /// Its `main` must call [`worker_main`] with the job functions the jobs use.
    pub fn worker_program(mut self, program: impl Into<PathBuf>) -> Self {
        self.settings_mut().program = Some(program.into());
        self
    }

    /// Arguments given to the worker program.
    pub fn worker_args<I, A>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = A>,
        A: Into<OsString>,
    {
        self.settings_mut().args = args.into_iter().map(Into::into).collect();
        self
    }

    /// Replaces each worker after it has run `runs` runs (at least 1), to bound what a
    /// leaking job can accumulate (Python's `max_tasks_per_child`). Default: never.
    pub fn recycle_after(mut self, runs: u64) -> Self {
        self.settings_mut().recycle_after = Some(runs.max(1));
        self
    }

    /// How many runs may wait for a worker (at least 1; default
    /// [`DEFAULT_QUEUE_CAPACITY`]). A run submitted to a full queue is refused and reported.
    pub fn queue_capacity(mut self, runs: usize) -> Self {
        self.settings_mut().queue_capacity = runs.max(1);
        self
    }

    /// How long a new worker has to greet the pool before it is killed and its run fails
    /// (default [`DEFAULT_START_TIMEOUT`]).
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.settings_mut().start_timeout = timeout;
        self
    }

    /// The most worker processes the pool runs.
    pub fn max_workers(&self) -> usize {
        self.settings.max_workers
    }

    fn settings_mut(&mut self) -> &mut Settings {
        Arc::make_mut(&mut self.settings)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Running>> {
        // Only `Option` swaps happen under this lock; a poisoned one is still consistent.
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Executor for ProcessPoolExecutor {
    fn capabilities(&self) -> ExecutorCapabilities {
        ExecutorCapabilities::out_of_process()
    }

    async fn start(&self, ctx: ExecutorContext) -> Result<()> {
        if std::env::var_os(WORKER_ENV).is_some() {
            // Starting workers here would start workers of workers, without end.
            return Err(Error::config(
                "this process was started as a process-pool worker, but its main did not call \
                 executors::process_pool::worker_main(&registry) first: call it first thing \
                 in main",
            ));
        }
        let (queue, receiver) = mpsc::channel(self.settings.queue_capacity);
        let pool = Arc::new(Pool {
            ctx: ctx.clone(),
            settings: self.settings.clone(),
        });
        let dispatcher = ctx.runtime().spawn(dispatch(pool, receiver));
        *self.lock() = Some(Running {
            ctx,
            limiter: InstanceLimiter::new(),
            queue,
            dispatcher,
        });
        Ok(())
    }

    fn submit(&self, run: JobRun) -> Result<()> {
        let running = self.lock();
        let Some(running) = running.as_ref() else {
            return Err(Error::scheduler_state(
                "the process pool executor is not started",
            ));
        };
        let instance = running.ctx.admit(&running.limiter, &run)?;
        running
            .queue
            .try_send((run, instance))
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => Error::scheduler_state(format!(
                    "the process pool's queue is full: {} runs already wait for a worker",
                    self.settings.queue_capacity
                )),
                mpsc::error::TrySendError::Closed(_) => {
                    Error::scheduler_state("the process pool has shut down")
                }
            })
    }

    async fn shutdown(&self, wait: bool) -> Result<()> {
        let Some(running) = self.lock().take() else {
            return Ok(());
        };
        // Closing the queue lets the dispatcher run what is queued, then stop the workers.
        let Running {
            queue, dispatcher, ..
        } = running;
        drop(queue);
        if wait {
            dispatcher.await.map_err(|e| {
                Error::scheduler_state("the process pool's dispatcher failed").with_source(e)
            })?;
        }
        Ok(())
    }
}

#[derive(Debug)]
struct Pool {
    ctx: ExecutorContext,
    settings: Arc<Settings>,
}

/// Hands queued runs to workers: an idle worker if there is one, a new one while fewer than
/// `max_workers` run, else waits for one to come back. Ends when the queue is closed and
/// drained, after stopping every worker.
async fn dispatch(pool: Arc<Pool>, mut queue: mpsc::Receiver<Task>) {
    let max = pool.settings.max_workers;
    // Each run in progress holds a slot and gives it back with its worker, or with `None`
    // when its worker is gone.
    let (give_back, mut given_back) = mpsc::channel::<Option<Worker>>(max);
    let mut idle: Vec<Worker> = Vec::new();
    let mut busy = 0usize;
    let mut runs = tokio::task::JoinSet::new();
    while let Some(task) = queue.recv().await {
        let worker = loop {
            while let Ok(back) = given_back.try_recv() {
                busy -= 1;
                idle.extend(back);
            }
            if busy < max {
                busy += 1;
                break idle.pop();
            }
            let Some(back) = given_back.recv().await else {
                unreachable!("the dispatcher holds a sender")
            };
            busy -= 1;
            idle.extend(back);
        };
        runs.spawn(run_task(pool.clone(), worker, task, give_back.clone()));
        while let Some(joined) = runs.try_join_next() {
            if joined.is_err() {
                // A task that panicked gave nothing back.
                busy -= 1;
            }
        }
    }
    while runs.join_next().await.is_some() {}
    drop(give_back);
    while let Some(back) = given_back.recv().await {
        idle.extend(back);
    }
    for worker in idle {
        worker.close().await;
    }
}

/// Runs every run time of one submitted run on `worker` (or a new one), then gives the
/// worker back.
async fn run_task(
    pool: Arc<Pool>,
    mut worker: Option<Worker>,
    (run, instance): Task,
    give_back: mpsc::Sender<Option<Worker>>,
) {
    for &run_time in &run.run_times {
        let Some(started) = pool.ctx.begin_run(&run, run_time) else {
            continue;
        };
        let request = match started.request(&run.job) {
            Ok(request) => request,
            Err(e) => {
                started.finish(Err(JobFailure::from_error(Box::new(e))));
                continue;
            }
        };
        // A worker that died while idle (killed from outside) has not taken this run: give
        // the run a new worker instead of reporting it lost.
        let mut current = match worker.take().and_then(Worker::if_alive) {
            Some(worker) => worker,
            None => match Worker::start(&pool.settings).await {
                Ok(worker) => worker,
                Err(e) => {
                    started.finish(Err(JobFailure::new(FailureKind::Refused, e)));
                    continue;
                }
            },
        };
        match current.call(&request, started.timeout()).await {
            Ok(report) => {
                started.finish_wire(report.outcome);
                if pool
                    .settings
                    .recycle_after
                    .is_some_and(|limit| current.runs >= limit)
                {
                    current.close().await;
                } else {
                    worker = Some(current);
                }
            }
            Err(Lost::TimedOut) => {
                let failure = started.timed_out();
                started.finish(Err(failure));
            }
            Err(Lost::Died(what)) => started.finish(Err(JobFailure::new(
                FailureKind::WorkerLost,
                Error::new(
                    scheduler_core::ErrorKind::Backend,
                    format!("{what}; a new worker takes its place"),
                )
                .with_job_id(run.job.id()),
            ))),
        }
    }
    drop(instance);
    // The dispatcher outlives every run task, so this only fails if it panicked.
    let _ = give_back.send(worker).await;
}

/// Why a worker gave no report.
enum Lost {
    /// The run passed its timeout; the worker was killed.
    TimedOut,
    /// The worker died or broke the protocol (it was killed); what happened.
    Died(String),
}

/// One worker process and its pipes.
#[derive(Debug)]
struct Worker {
    child: Child,
    pid: u32,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    line: String,
    /// Runs answered so far.
    runs: u64,
}

impl Worker {
    /// Starts the worker program and waits for its greeting.
    async fn start(settings: &Settings) -> Result<Worker> {
        let program = match &settings.program {
            Some(program) => program.clone(),
            None => std::env::current_exe().map_err(|e| {
                Error::config("cannot find the current executable to start workers").with_source(e)
            })?,
        };
        let mut command = Command::new(&program);
        command
            .args(&settings.args)
            .env(WORKER_ENV, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            // Its own process group: the terminal's Ctrl-C goes to the scheduler only, which
            // drains the workers in its graceful shutdown.
            .process_group(0);
        let mut child = command.spawn().map_err(|e| {
            Error::config(format!("cannot start the worker program {program:?}")).with_source(e)
        })?;
        let pid = child.id().unwrap_or(0);
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            unreachable!("both pipes were asked for")
        };
        let mut worker = Worker {
            child,
            pid,
            stdin,
            stdout: BufReader::new(stdout),
            line: String::new(),
            runs: 0,
        };
        let greeting = tokio::time::timeout(
            settings.start_timeout,
            worker.stdout.read_line(&mut worker.line),
        )
        .await;
        let not_a_worker = |what: String| {
            Error::config(format!(
                "the worker program {program:?} (pid {pid}) {what}: it did not start as a \
                 process-pool worker. Does its main call \
                 executors::process_pool::worker_main(&registry) first thing?"
            ))
        };
        match greeting {
            Ok(Ok(n)) if n > 0 => match serde_json::from_str::<Hello>(&worker.line) {
                Ok(hello) if hello.worker == Hello::GREETING => {
                    if let Err(e) = check_version(hello.version) {
                        worker.kill().await;
                        return Err(e);
                    }
                    worker.line.clear();
                    Ok(worker)
                }
                _ => {
                    let first = worker.line.trim_end().chars().take(200).collect::<String>();
                    worker.kill().await;
                    Err(not_a_worker(format!("printed {first:?} first")))
                }
            },
            Ok(Ok(_)) => {
                let what = worker.died().await;
                Err(not_a_worker(format!("{what} before greeting")))
            }
            Ok(Err(e)) => {
                worker.kill().await;
                Err(not_a_worker("could not be read".into()).with_source(e))
            }
            Err(_) => {
                worker.kill().await;
                Err(not_a_worker(format!(
                    "did not greet within {:?}",
                    settings.start_timeout
                )))
            }
        }
    }

    /// Sends `request` and waits for its report, at most `timeout`.
    async fn call(
        &mut self,
        request: &RunRequest,
        timeout: Option<Duration>,
    ) -> std::result::Result<RunReport, Lost> {
        let mut message = match serde_json::to_vec(request) {
            Ok(message) => message,
            Err(e) => return Err(Lost::Died(format!("the run could not be encoded: {e}"))),
        };
        message.push(b'\n');
        if let Err(e) = self.stdin.write_all(&message).await {
            let what = self.died().await;
            return Err(Lost::Died(format!(
                "the worker process {} could not be sent the run ({e}): it {what}",
                self.pid
            )));
        }
        self.line.clear();
        let read = self.stdout.read_line(&mut self.line);
        let read = match timeout {
            None => read.await,
            Some(limit) => match tokio::time::timeout(limit, read).await {
                Ok(read) => read,
                Err(_) => {
                    self.kill().await;
                    return Err(Lost::TimedOut);
                }
            },
        };
        let pid = self.pid;
        match read {
            Ok(0) | Err(_) => {
                let what = self.died().await;
                Err(Lost::Died(format!(
                    "the worker process {pid} running the job {what} before answering"
                )))
            }
            Ok(_) => match serde_json::from_str::<RunReport>(&self.line) {
                Ok(report) if report.run_id == request.run_id => {
                    self.runs += 1;
                    Ok(report)
                }
                Ok(report) => {
                    self.kill().await;
                    Err(Lost::Died(format!(
                        "the worker process {pid} answered for another run ({:?}) and was killed",
                        report.run_id
                    )))
                }
                Err(e) => {
                    let line = self.line.trim_end().chars().take(200).collect::<String>();
                    self.kill().await;
                    Err(Lost::Died(format!(
                        "the worker process {pid} answered something that is not a run report \
                         ({e}): {line:?}; it was killed"
                    )))
                }
            },
        }
    }

    /// What became of a worker whose pipe closed: how it ended.
    async fn died(&mut self) -> String {
        match tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await {
            Ok(Ok(status)) => describe(status),
            _ => {
                self.kill().await;
                "closed its pipes and was killed".to_owned()
            }
        }
    }

    /// The worker, if its process still runs (an idle worker may have been killed from
    /// outside; `kill_on_drop` and tokio's reaper take care of a dead one).
    fn if_alive(mut self) -> Option<Self> {
        matches!(self.child.try_wait(), Ok(None)).then_some(self)
    }

    async fn kill(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    /// Stops an idle worker: its stdin closes, it exits; killed if it does not.
    async fn close(self) {
        let Worker {
            mut child, stdin, ..
        } = self;
        drop(stdin);
        if tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .is_err()
        {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }
}

/// How a worker process ended, in words.
fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt as _;
    if let Some(signal) = status.signal() {
        let what = match signal {
            1 => "SIGHUP",
            2 => "SIGINT",
            6 => "SIGABRT: it aborted",
            7 => "SIGBUS: a bus error",
            8 => "SIGFPE: an arithmetic fault",
            9 => "SIGKILL: killed from outside, or by the out-of-memory killer",
            11 => "SIGSEGV: a segmentation fault",
            15 => "SIGTERM: asked to terminate",
            _ => "a signal",
        };
        format!("was killed by signal {signal} ({what})")
    } else if let Some(code) = status.code() {
        format!("exited with code {code}")
    } else {
        format!("ended ({status})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt as _;

    #[test]
    fn exit_statuses_are_named() {
        assert_eq!(describe(ExitStatus::from_raw(3 << 8)), "exited with code 3");
        assert!(describe(ExitStatus::from_raw(11)).contains("SIGSEGV"));
        assert!(describe(ExitStatus::from_raw(9)).contains("out-of-memory"));
    }
}

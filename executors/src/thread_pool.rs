use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use scheduler_core::executor::{OnTimeout, run_job_blocking_with};
use scheduler_core::{
    Error, Executor, ExecutorContext, InstanceGuard, InstanceLimiter, JobRun, RefusedRun, Result,
};

/// Runs jobs on a pool of worker threads (APScheduler's `ThreadPoolExecutor`).
///
/// Threads are started as runs arrive, up to `max_workers`, and live until shutdown. A
/// blocking job function runs directly on a worker; an async one is driven to completion
/// there. A job that panics is reported as a [`JobError`](scheduler_core::Event::JobError)
/// and the worker carries on. Runs queue when all workers are busy; their misfire check
/// happens when a worker picks them up. The queue is bounded
/// ([`queue_capacity`](Self::queue_capacity)): a run submitted to a full queue is refused
/// and reported as a `JobError` of kind `FailureKind::Refused`, as the process pool does.
///
/// A thread cannot be stopped, so a blocking job past its
/// [`timeout`](scheduler_core::Job::timeout) is reported as timed out at its deadline and
/// keeps its instance slot until it really ends (a second instance beside a stuck one would
/// break `max_instances`); a replacement thread starts at once so other jobs do not starve,
/// and the pool shrinks back when the stuck thread is done. An async job is stopped at its
/// timeout.
#[derive(Debug)]
pub struct ThreadPoolExecutor {
    max_workers: usize,
    queue_capacity: usize,
    pool: Mutex<Option<Pool>>,
}

type Task = (JobRun, InstanceGuard);

#[derive(Debug)]
struct Pool {
    limiter: InstanceLimiter,
    /// Bounded by `Shared::queued` against the queue capacity, not by the channel: a
    /// `sync_channel` of the default 100,000 runs allocates and writes its whole buffer (about
    /// 10 MB) at every start, which cost some 6 ms before the first run could be queued.
    sender: Sender<Task>,
    shared: Arc<Shared>,
}

/// What the workers share with the pool.
#[derive(Debug)]
struct Shared {
    ctx: ExecutorContext,
    max_workers: usize,
    receiver: Mutex<Receiver<Task>>,
    workers: Mutex<Vec<JoinHandle<()>>>,
    /// Worker threads running (stuck ones included).
    live: AtomicUsize,
    /// Workers waiting for a task.
    idle: AtomicUsize,
    /// Tasks sent and not yet taken by a worker.
    queued: AtomicUsize,
    /// Threads started beyond `max_workers` to replace ones stuck past a timeout; as many
    /// workers leave the pool when their task ends.
    surplus: AtomicUsize,
}

impl ThreadPoolExecutor {
    /// How many runs may wait for a worker unless [`queue_capacity`](Self::queue_capacity)
    /// says otherwise: 100k due at once still fit, with room for the memory they hold.
    pub const DEFAULT_QUEUE_CAPACITY: usize = 100_000;

    /// A pool of at most `max_workers` threads (APScheduler's default is 10); fails if zero.
    pub fn new(max_workers: usize) -> Result<Self> {
        if max_workers == 0 {
            return Err(Error::config("max_workers must be at least 1"));
        }
        Ok(ThreadPoolExecutor {
            max_workers,
            queue_capacity: Self::DEFAULT_QUEUE_CAPACITY,
            pool: Mutex::new(None),
        })
    }

    /// How many runs may wait for a worker (at least 1; default
    /// [`DEFAULT_QUEUE_CAPACITY`](Self::DEFAULT_QUEUE_CAPACITY)). A run submitted to a full
    /// queue is refused and reported. Takes effect at the next start.
    pub fn queue_capacity(mut self, runs: usize) -> Self {
        self.queue_capacity = runs.max(1);
        self
    }

    /// The most threads the pool starts (besides replacements of threads stuck past a
    /// timeout).
    pub fn max_workers(&self) -> usize {
        self.max_workers
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Pool>> {
        // Only whole-value swaps and pushes happen under this lock.
        self.pool.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Default for ThreadPoolExecutor {
    fn default() -> Self {
        ThreadPoolExecutor {
            max_workers: 10,
            queue_capacity: Self::DEFAULT_QUEUE_CAPACITY,
            pool: Mutex::new(None),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    /// Starts another worker if the queued tasks outnumber the idle workers and the pool is
    /// not full.
    ///
    /// Comparing the two counts (rather than asking "is any worker idle") matters: a worker
    /// that has just counted itself idle may be about to take an earlier task, and the task
    /// queued now would then wait behind a busy worker although the pool could grow.
    fn grow(self: &Arc<Self>) -> Result<()> {
        let stuck = self.surplus.load(Ordering::Acquire);
        if self.queued.load(Ordering::Acquire) <= self.idle.load(Ordering::Acquire)
            || self.live.load(Ordering::Acquire) >= self.max_workers + stuck
        {
            return Ok(());
        }
        self.spawn_worker()
    }

    fn spawn_worker(self: &Arc<Self>) -> Result<()> {
        let mut workers = lock(&self.workers);
        workers.retain(|w| !w.is_finished());
        let name = format!("{}-worker-{}", self.ctx.alias(), workers.len());
        let shared = self.clone();
        self.live.fetch_add(1, Ordering::AcqRel);
        let handle = std::thread::Builder::new()
            .name(name)
            .spawn(move || worker(&shared))
            .map_err(|e| {
                self.live.fetch_sub(1, Ordering::AcqRel);
                Error::scheduler_state("cannot start a worker thread").with_source(e)
            })?;
        workers.push(handle);
        Ok(())
    }

    /// A run is stuck past its timeout on a worker: start a replacement thread.
    fn replace_stuck_worker(self: &Arc<Self>) {
        self.surplus.fetch_add(1, Ordering::AcqRel);
        if let Err(e) = self.spawn_worker() {
            self.surplus.fetch_sub(1, Ordering::AcqRel);
            tracing::error!(error = %e, "no replacement for a worker stuck past a timeout");
        }
    }

    /// Whether this worker should leave because a replacement took its place.
    fn leave_if_surplus(&self) -> bool {
        self.surplus
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok()
    }
}

fn worker(shared: &Arc<Shared>) {
    let weak = Arc::downgrade(shared);
    let on_timeout: OnTimeout = Arc::new(move |_| {
        if let Some(shared) = weak.upgrade() {
            shared.replace_stuck_worker();
        }
    });
    loop {
        shared.idle.fetch_add(1, Ordering::AcqRel);
        // Workers take turns waiting on the queue; `recv` fails once the pool is shut down
        // and the queue is drained.
        let task = lock(&shared.receiver).recv();
        shared.idle.fetch_sub(1, Ordering::AcqRel);
        let Ok((run, instance)) = task else {
            break;
        };
        shared.queued.fetch_sub(1, Ordering::AcqRel);
        run_job_blocking_with(&shared.ctx, &run, on_timeout.clone());
        drop(instance);
        if shared.leave_if_surplus() {
            break;
        }
    }
    shared.live.fetch_sub(1, Ordering::AcqRel);
}

fn not_started() -> Error {
    Error::scheduler_state("the thread pool executor is not started")
}

impl Pool {
    /// Claims an instance for `run` and queues it for a worker; answers the run back when
    /// it is refused (`None`: taken).
    fn submit(&self, run: JobRun, queue_capacity: usize) -> Option<RefusedRun> {
        let instance = match self.shared.ctx.admit(&self.limiter, &run) {
            Ok(instance) => instance,
            Err(error) => return Some(RefusedRun { run, error }),
        };
        // Counted before the send, so concurrent submitters never overfill the queue.
        if self.shared.queued.fetch_add(1, Ordering::AcqRel) >= queue_capacity {
            self.shared.queued.fetch_sub(1, Ordering::AcqRel);
            drop(instance);
            return Some(RefusedRun {
                run,
                error: Error::scheduler_state(format!(
                    "the thread pool's queue is full: {queue_capacity} runs already wait for a \
                     worker"
                )),
            });
        }
        let sent = match self.shared.grow() {
            Ok(()) => self.sender.send((run, instance)).map_err(|e| RefusedRun {
                run: e.0.0,
                error: Error::scheduler_state("the thread pool has shut down"),
            }),
            Err(error) => Err(RefusedRun { run, error }),
        };
        let refused = sent.err();
        if refused.is_some() {
            self.shared.queued.fetch_sub(1, Ordering::AcqRel);
        }
        refused
    }
}

impl Executor for ThreadPoolExecutor {
    async fn start(&self, ctx: ExecutorContext) -> Result<()> {
        let (sender, receiver) = std::sync::mpsc::channel();
        *self.lock() = Some(Pool {
            limiter: InstanceLimiter::new(),
            sender,
            shared: Arc::new(Shared {
                ctx,
                max_workers: self.max_workers,
                receiver: Mutex::new(receiver),
                workers: Mutex::default(),
                live: AtomicUsize::new(0),
                idle: AtomicUsize::new(0),
                queued: AtomicUsize::new(0),
                surplus: AtomicUsize::new(0),
            }),
        });
        Ok(())
    }

    fn submit(&self, run: JobRun) -> Result<()> {
        let pool = self.lock();
        let Some(pool) = pool.as_ref() else {
            return Err(not_started());
        };
        match pool.submit(run, self.queue_capacity) {
            None => Ok(()),
            Some(refused) => Err(refused.error),
        }
    }

    fn submit_batch(&self, runs: Vec<JobRun>) -> Vec<RefusedRun> {
        let pool = self.lock();
        let Some(pool) = pool.as_ref() else {
            return RefusedRun::all(runs, not_started);
        };
        runs.into_iter()
            .filter_map(|run| pool.submit(run, self.queue_capacity))
            .collect()
    }

    async fn shutdown(&self, wait: bool) -> Result<()> {
        let Some(pool) = self.lock().take() else {
            return Ok(());
        };
        // Dropping the sender lets the workers finish the queue and exit.
        let Pool { sender, shared, .. } = pool;
        drop(sender);
        if wait {
            let joined = tokio::task::spawn_blocking(move || {
                // Replacements may start while waiting: join until none is left.
                loop {
                    let workers = std::mem::take(&mut *lock(&shared.workers));
                    if workers.is_empty() {
                        break;
                    }
                    for worker in workers {
                        let _ = worker.join();
                    }
                }
            })
            .await;
            if let Err(e) = joined {
                return Err(
                    Error::scheduler_state("waiting for the thread pool failed").with_source(e)
                );
            }
        }
        Ok(())
    }
}

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
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
    shared: Arc<Shared>,
}

/// What the workers share with the pool.
#[derive(Debug)]
struct Shared {
    ctx: ExecutorContext,
    max_workers: usize,
    queue_capacity: usize,
    /// The runs waiting for a worker. A batch of runs is queued under one lock and wakes as
    /// many workers as it has runs (or all idle ones at once): a bounded channel behind a
    /// mutex the workers took turns on cost a send, a receive and a wake-up per run.
    queue: Mutex<Queue>,
    /// Signalled when runs are queued or the queue closes.
    ready: Condvar,
    workers: Mutex<Vec<JoinHandle<()>>>,
    /// Worker threads running (stuck ones included).
    live: AtomicUsize,
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

#[derive(Debug, Default)]
struct Queue {
    tasks: VecDeque<Task>,
    /// Workers waiting for a task.
    idle: usize,
    /// No more tasks come (shut down): the workers drain the queue, then leave.
    closed: bool,
}

impl Shared {
    /// Whether the pool may start another worker (it is not full).
    fn may_grow(&self) -> bool {
        self.live.load(Ordering::Acquire) < self.max_workers + self.surplus.load(Ordering::Acquire)
    }

    /// Closes the queue: the workers finish what it holds, then leave.
    fn close(&self) {
        lock(&self.queue).closed = true;
        self.ready.notify_all();
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
    let mut queue = lock(&shared.queue);
    loop {
        let Some((run, instance)) = queue.tasks.pop_front() else {
            if queue.closed {
                break;
            }
            queue.idle += 1;
            queue = shared.ready.wait(queue).unwrap_or_else(|p| p.into_inner());
            queue.idle -= 1;
            continue;
        };
        drop(queue);
        run_job_blocking_with(&shared.ctx, &run, on_timeout.clone());
        drop(instance);
        if shared.leave_if_surplus() {
            break;
        }
        queue = lock(&shared.queue);
    }
    shared.live.fetch_sub(1, Ordering::AcqRel);
}

fn not_started() -> Error {
    Error::scheduler_state("the thread pool executor is not started")
}

impl Pool {
    /// Claims an instance for each run of `runs` and queues them for the workers in one
    /// step; answers the runs it refused.
    ///
    /// Each run is decided in order as one `submit` would be: refused when its job runs
    /// `max_instances` times, when the queue is full, or when it needs a new worker (more
    /// runs queued than workers idle, and room in the pool) that cannot be started.
    fn submit(&self, runs: Vec<JobRun>) -> Vec<RefusedRun> {
        let shared = &self.shared;
        let (queued, idle, closed) = {
            let queue = lock(&shared.queue);
            (queue.tasks.len(), queue.idle, queue.closed)
        };
        let mut refused = Vec::new();
        let mut tasks = Vec::with_capacity(runs.len());
        // Workers only take runs meanwhile, so `queued` can only be too high: the capacity
        // check errs on the safe side. The runs that idle or new workers take at once do
        // not wait, so they do not count against it.
        let mut started = 0;
        for run in runs {
            let instance = match shared.ctx.admit(&self.limiter, &run) {
                Ok(instance) => instance,
                Err(error) => {
                    refused.push(RefusedRun { run, error });
                    continue;
                }
            };
            let error = if closed {
                Some(Error::scheduler_state("the thread pool has shut down"))
            } else if queued + tasks.len() >= shared.queue_capacity + idle + started {
                Some(Error::scheduler_state(format!(
                    "the thread pool's queue is full: {} runs already wait for a worker",
                    shared.queue_capacity
                )))
            } else if queued + tasks.len() + 1 > idle + started && shared.may_grow() {
                let spawned = shared.spawn_worker();
                started += usize::from(spawned.is_ok());
                spawned.err()
            } else {
                None
            };
            match error {
                Some(error) => refused.push(RefusedRun { run, error }),
                None => tasks.push((run, instance)),
            }
        }
        if tasks.is_empty() {
            return refused;
        }
        let wake = tasks.len();
        let mut queue = lock(&shared.queue);
        queue.tasks.extend(tasks);
        let waiting = queue.idle;
        drop(queue);
        if wake >= waiting {
            shared.ready.notify_all();
        } else {
            for _ in 0..wake {
                shared.ready.notify_one();
            }
        }
        refused
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.close();
    }
}

impl Executor for ThreadPoolExecutor {
    async fn start(&self, ctx: ExecutorContext) -> Result<()> {
        *self.lock() = Some(Pool {
            limiter: InstanceLimiter::new(),
            shared: Arc::new(Shared {
                ctx,
                max_workers: self.max_workers,
                queue_capacity: self.queue_capacity,
                queue: Mutex::default(),
                ready: Condvar::new(),
                workers: Mutex::default(),
                live: AtomicUsize::new(0),
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
        match pool.submit(vec![run]).pop() {
            None => Ok(()),
            Some(refused) => Err(refused.error),
        }
    }

    fn submit_batch(&self, runs: Vec<JobRun>) -> Vec<RefusedRun> {
        let pool = self.lock();
        let Some(pool) = pool.as_ref() else {
            return RefusedRun::all(runs, not_started);
        };
        pool.submit(runs)
    }

    async fn shutdown(&self, wait: bool) -> Result<()> {
        let Some(pool) = self.lock().take() else {
            return Ok(());
        };
        // Dropping the pool closes the queue: the workers finish it and exit.
        let shared = pool.shared.clone();
        drop(pool);
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

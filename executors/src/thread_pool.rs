use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use scheduler_core::executor::{OnTimeout, run_job_blocking_with};
use scheduler_core::{
    Error, Executor, ExecutorContext, InstanceGuard, InstanceLimiter, JobRun, RefusedRun, Result,
};

/// Runs jobs on a pool of worker threads (APScheduler's `ThreadPoolExecutor`).
///
/// One thread starts with the pool, the others as runs arrive, up to `max_workers`; they
/// live until shutdown. A blocking job function runs directly on a worker; an async one is
/// driven to completion there. A job that panics is reported as a [`JobError`](scheduler_core::Event::JobError)
/// and the worker carries on. Runs queue when all workers are busy; their misfire check
/// happens when a worker picks them up. The queue is bounded
/// ([`queue_capacity`](Self::queue_capacity)): a run submitted to a full queue is refused
/// and reported as a `JobError` of kind `FailureKind::Refused`, as the process pool does.
///
/// Sleeping workers are woken as the queue needs them. Runs that find no queue and no more
/// of them than sleeping workers wake one worker each, as APScheduler's pool does. A larger
/// batch wakes one, and more join while the oldest queued run has waited a quarter of a
/// millisecond. Short jobs then run on as many threads as keep up with them instead of
/// every thread taking turns on the machine's cores (20 threads woken for each batch on 2
/// cores took the cores from the scheduler handing the runs over); jobs that block still
/// get every idle worker, each within about a quarter of a millisecond of the one before.
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

/// How long the oldest queued run may wait while workers sleep before one more is woken.
/// Long enough for a thread running short jobs to take a good part of a batch, short
/// beside the jobs worth a thread of their own (250 us and 1 ms measured alike for short
/// jobs; the shorter one starts blocking runs of a large batch sooner).
const LAG: Duration = Duration::from_micros(250);

/// A run waiting for a worker, with its instance claim.
type Task = (JobRun, InstanceGuard);

/// Runs queued together, and when.
type Batch = (Instant, std::vec::IntoIter<Task>);

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
    /// The runs waiting for a worker. A batch of runs is queued under one lock, as it came:
    /// a bounded channel behind a mutex the workers took turns on cost a send, a receive and
    /// a wake-up per run, and moving each run of a batch into one deque of runs cost 300
    /// instructions a run.
    queue: Mutex<Queue>,
    /// Signalled to call a sleeping worker, to have one watch the queue, or when the queue
    /// closes.
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

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Debug, Default)]
struct Queue {
    /// The batches of runs not yet taken, oldest first, with when each was queued; none is
    /// empty.
    batches: VecDeque<Batch>,
    /// How many runs `batches` holds.
    len: usize,
    /// Workers asleep on `ready` (the watcher and the called ones not yet awake included).
    idle: usize,
    /// Sleeping workers called to take runs that have not answered yet.
    calls: usize,
    /// Whether a sleeping worker watches how long the oldest run waits (see [`LAG`]).
    watched: bool,
    /// No more tasks come (shut down): the workers drain the queue, then leave.
    closed: bool,
}

impl Queue {
    /// When the oldest queued run was queued.
    fn oldest(&self) -> Option<Instant> {
        self.batches.front().map(|batch| batch.0)
    }

    fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// Queues `tasks` (not empty) as one batch.
    fn push(&mut self, tasks: Vec<Task>) {
        self.len += tasks.len();
        self.batches.push_back((Instant::now(), tasks.into_iter()));
    }

    /// Takes the oldest run, with the batch it emptied (its memory is released after
    /// the lock).
    fn pop(&mut self) -> Option<(Task, Option<Batch>)> {
        let (_, batch) = self.batches.front_mut()?;
        let task = batch.next()?;
        self.len -= 1;
        let spent = if batch.len() == 0 {
            self.batches.pop_front()
        } else {
            None
        };
        Some((task, spent))
    }
}

impl Shared {
    /// Calls one sleeping worker to take runs, unless every sleeper is called already.
    fn call(&self, queue: &mut Queue) {
        if queue.idle > queue.calls {
            queue.calls += 1;
            self.ready.notify_one();
        }
    }

    /// Puts this worker to sleep until it is called, the oldest queued run has waited
    /// [`LAG`] (when this worker is the one watching), or the queue closes.
    ///
    /// While runs wait and workers sleep, one sleeper watches: it wakes when the oldest run
    /// has waited `LAG`, as the awake workers are then blocked in their jobs or do not
    /// keep up, and takes a run itself.
    fn sleep<'a>(&self, mut queue: MutexGuard<'a, Queue>) -> MutexGuard<'a, Queue> {
        queue.idle += 1;
        let mut watching = false;
        loop {
            if queue.closed {
                break;
            }
            if queue.calls > 0 {
                queue.calls -= 1;
                if !queue.is_empty() {
                    break;
                }
            }
            let Some(oldest) = queue.oldest() else {
                queue.watched &= !std::mem::take(&mut watching);
                queue = self.ready.wait(queue).unwrap_or_else(|p| p.into_inner());
                continue;
            };
            if !watching && queue.watched {
                queue = self.ready.wait(queue).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            (watching, queue.watched) = (true, true);
            let waited = oldest.elapsed();
            if waited >= LAG {
                break;
            }
            queue = (self.ready.wait_timeout(queue, LAG - waited))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        queue.watched &= !watching;
        queue.idle -= 1;
        queue
    }

    /// Run by a worker that was asleep (or is new) once it has taken a run: calls one more
    /// sleeper when the next run has waited [`LAG`] already, so that the workers join one
    /// after the other while the runs wait, and has a sleeper watch the queue if none does.
    fn rouse(&self, queue: &mut Queue) {
        let Some(oldest) = queue.oldest() else {
            return;
        };
        if oldest.elapsed() >= LAG {
            self.call(queue);
        }
        if queue.idle > queue.calls && !queue.watched {
            self.ready.notify_one();
        }
    }

    /// Closes the queue: the workers finish what it holds, then leave.
    fn close(&self) {
        lock(&self.queue).closed = true;
        self.ready.notify_all();
    }

    /// Counts one more worker if the pool is not full (stuck workers' replacements count as
    /// room); its thread is started by [`start_worker`](Self::start_worker).
    fn reserve_worker(&self) -> bool {
        self.live
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |live| {
                (live < self.max_workers + self.surplus.load(Ordering::Acquire)).then_some(live + 1)
            })
            .is_ok()
    }

    /// Starts the thread of a worker already counted in `live`; uncounts it if the thread
    /// cannot start.
    fn start_worker(self: &Arc<Self>) -> Result<()> {
        let mut workers = lock(&self.workers);
        workers.retain(|w| !w.is_finished());
        let name = format!("{}-worker-{}", self.ctx.alias(), workers.len());
        let shared = self.clone();
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
        self.live.fetch_add(1, Ordering::AcqRel);
        if let Err(e) = self.start_worker() {
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
    let mut woken = true;
    loop {
        let Some(((run, instance), spent)) = queue.pop() else {
            if queue.closed {
                break;
            }
            queue = shared.sleep(queue);
            woken = true;
            continue;
        };
        if std::mem::take(&mut woken) {
            shared.rouse(&mut queue);
        }
        drop(queue);
        drop(spent);
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
    /// `max_instances` times, or when the queue is full; and all queued runs are refused
    /// when the pool has no worker and none can be started.
    fn submit(&self, runs: Vec<JobRun>) -> Vec<RefusedRun> {
        let shared = &self.shared;
        let (queued, idle, closed) = {
            let queue = lock(&shared.queue);
            (queue.len, queue.idle, queue.closed)
        };
        let mut refused = Vec::new();
        let mut tasks = Vec::with_capacity(runs.len());
        // Workers only take runs meanwhile, so `queued` can only be too high: the capacity
        // check errs on the safe side. The runs that idle or new workers take at once do
        // not wait, so they do not count against it. New workers are counted here and
        // started once the runs are queued: the first one then takes a run at once, instead
        // of the run waiting for every thread of the batch to start (5 took 0.2 ms here).
        let mut reserved = 0;
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
            } else if queued + tasks.len() >= shared.queue_capacity + idle + reserved {
                Some(Error::scheduler_state(format!(
                    "the thread pool's queue is full: {} runs already wait for a worker",
                    shared.queue_capacity
                )))
            } else {
                if queued + tasks.len() + 1 > idle + reserved && shared.reserve_worker() {
                    reserved += 1;
                }
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
        let mut queue = lock(&shared.queue);
        let runs = tasks.len();
        let uncalled = queue.idle.saturating_sub(queue.calls);
        // A few runs that find the queue empty each get a sleeper at once: they may block,
        // and no short-job burst is under way. Otherwise a sleeper takes the batch unless
        // awake workers have runs to take already and a sleeper watches them (`rouse` calls
        // more when runs wait).
        let calls = if queue.is_empty() && runs <= uncalled {
            runs
        } else {
            usize::from(queue.is_empty() || !queue.watched)
        };
        queue.push(tasks);
        for _ in 0..calls {
            shared.call(&mut queue);
        }
        drop(queue);
        self.start_workers(reserved, &mut refused);
        refused
    }

    /// Starts the threads of `reserved` workers counted by `submit`. If one cannot start, the
    /// queued runs wait for the workers there are; with none at all, they are taken back
    /// and refused, as nothing would ever run them.
    fn start_workers(&self, reserved: usize, refused: &mut Vec<RefusedRun>) {
        let shared = &self.shared;
        for started in 0..reserved {
            let Err(error) = shared.start_worker() else {
                continue;
            };
            // Uncount the reservations whose threads were not tried.
            let untried = reserved - started - 1;
            shared.live.fetch_sub(untried, Ordering::AcqRel);
            if shared.live.load(Ordering::Acquire) > 0 {
                tracing::error!(
                    %error,
                    "cannot start another worker thread; the queued runs wait for the running ones"
                );
                return;
            }
            let mut queue = lock(&shared.queue);
            while let Some(((run, instance), _)) = queue.pop() {
                drop(instance);
                refused.push(RefusedRun {
                    run,
                    error: Error::scheduler_state("cannot start a worker thread")
                        .with_source(error.to_string()),
                });
            }
            return;
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.close();
    }
}

impl Executor for ThreadPoolExecutor {
    async fn start(&self, ctx: ExecutorContext) -> Result<()> {
        let shared = Arc::new(Shared {
            ctx,
            max_workers: self.max_workers,
            queue_capacity: self.queue_capacity,
            queue: Mutex::default(),
            ready: Condvar::new(),
            workers: Mutex::default(),
            live: AtomicUsize::new(0),
            surplus: AtomicUsize::new(0),
        });
        // One worker waits from the start: a thread took 0.15 ms here from its spawn to its
        // first run, which every first run after a start would otherwise wait.
        if shared.reserve_worker() {
            shared.start_worker()?;
        }
        *self.lock() = Some(Pool {
            limiter: InstanceLimiter::new(),
            shared,
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

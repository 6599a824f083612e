use std::future::Future as _;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;

use scheduler_core::executor::run_job;
use scheduler_core::{
    Error, Executor, ExecutorContext, InstanceGuard, InstanceLimiter, JobRun, RefusedRun, Result,
};
use tokio::sync::{Semaphore, mpsc};

use crate::InFlight;
use crate::in_flight::InFlightGuard;

/// Runs each job as a tokio task on the scheduler's runtime (APScheduler's `AsyncIOExecutor`).
///
/// Async job functions are polled as tasks; blocking ones go to tokio's blocking pool, so
/// neither stalls the scheduler. An optional concurrency limit caps how many runs execute at
/// once; the others wait, and their misfire check happens when they actually start.
///
/// Without a limit, due runs go over bounded channels to one dispatcher task per runtime
/// worker, which starts each run in place: a run that finishes at its first poll (a job that
/// does not wait) costs no task of its own, and one that waits continues as its own task, so
/// every due run still runs concurrently. A batch of runs
/// ([`submit_batch`](Executor::submit_batch)) is shared out between the dispatchers in one
/// send each. When a channel is full the batch gets its own task at once: nothing waits for
/// room and nothing is refused. An async job that computes for long
/// without awaiting holds back the runs queued behind it on its dispatcher until it awaits or
/// ends (it would hold a runtime thread anyway): put such jobs on the thread pool.
#[derive(Debug, Default)]
pub struct TokioExecutor {
    max_concurrency: Option<usize>,
    running: Mutex<Option<Arc<Running>>>,
}

/// Batches one dispatcher's channel holds; beyond it a batch gets a task of its own.
const LANE_CAPACITY: usize = 256;

type Task = (JobRun, InstanceGuard, InFlightGuard);

#[derive(Debug)]
struct Running {
    shared: Arc<Shared>,
    limiter: InstanceLimiter,
    /// One channel per dispatcher (none with a concurrency limit), used in turn.
    lanes: Vec<mpsc::Sender<Vec<Task>>>,
    next_lane: AtomicUsize,
}

/// What every run needs, held by the dispatchers and the runs' tasks (not the channels'
/// senders, so that dropping `Running` closes the channels).
#[derive(Debug)]
struct Shared {
    ctx: ExecutorContext,
    permits: Option<Arc<Semaphore>>,
    in_flight: Arc<InFlight>,
}

impl TokioExecutor {
    /// An executor without a concurrency limit.
    pub fn new() -> Self {
        Self::default()
    }

    /// An executor running at most `max` jobs at once; fails if `max` is zero.
    pub fn with_max_concurrency(max: usize) -> Result<Self> {
        if max == 0 {
            return Err(Error::config("max_concurrency must be at least 1"));
        }
        Ok(TokioExecutor {
            max_concurrency: Some(max),
            running: Mutex::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Arc<Running>>> {
        // Only `Option` swaps happen under this lock; a poisoned one is still consistent.
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Runs one task to its end: waits for a permit (with a concurrency limit), then every run
/// time of the run.
async fn execute(shared: Arc<Shared>, (run, instance, in_flight): Task) {
    let _permit = match &shared.permits {
        // The semaphore is never closed, so acquiring only waits.
        Some(permits) => permits.acquire().await.ok(),
        None => None,
    };
    run_job(&shared.ctx, &run).await;
    drop(instance);
    drop(in_flight);
}

/// Starts the runs of one channel until it is closed and drained.
async fn dispatch(shared: Arc<Shared>, mut lane: mpsc::Receiver<Vec<Task>>) {
    while let Some(batch) = lane.recv().await {
        start_in_place(&shared, batch).await;
    }
}

/// Starts each run of `batch` in turn, in place: one that does not finish at its first poll
/// continues as a task of its own.
///
/// Each run is built in one heap slot, reused from run to run (`Pin::set` drops the finished
/// run in place and writes the next): a box per run cost an allocation, a free and a copy of
/// the run into it, about 250 instructions of the 3,800 a run costs its dispatcher. A run
/// that waits keeps the slot (it is pinned there) and the next run gets a new one.
async fn start_in_place(shared: &Arc<Shared>, batch: Vec<Task>) {
    let mut slot = Box::pin(None);
    let mut batch = batch.into_iter();
    loop {
        // A long batch must not hold this runtime thread from its other tasks: yield when
        // this task's budget is spent, as receiving run by run did. Before the run is taken,
        // so it is not kept across the await (a copy of it into this future).
        tokio::task::coop::consume_budget().await;
        let Some(task) = batch.next() else {
            break;
        };
        slot.set(Some(execute(shared.clone(), task)));
        // A panic past the job's own (caught in `run_job`) drops the run, which reports it
        // (`WorkerLost`), and must not stop the runs queued behind it.
        let pending = std::future::poll_fn(|cx| {
            let polled = std::panic::catch_unwind(AssertUnwindSafe(|| {
                slot.as_mut().as_pin_mut().map(|run| run.poll(cx))
            }));
            Poll::Ready(matches!(polled, Ok(Some(Poll::Pending))))
        })
        .await;
        if pending {
            // Polled again at once by its own task, which takes over the wakeups.
            let mut run = std::mem::replace(&mut slot, Box::pin(None));
            shared.ctx.runtime().spawn(async move {
                if let Some(run) = run.as_mut().as_pin_mut() {
                    run.await;
                }
            });
        } else {
            slot.set(None);
        }
    }
}

impl Running {
    /// How many runs of a batch of `runs` each dispatcher gets: one share each.
    fn share(&self, runs: usize) -> usize {
        runs.div_ceil(self.lanes.len().max(1)).max(1)
    }

    /// Hands `tasks` (one share of a batch) to the next dispatcher in one send, or one task
    /// per run with a concurrency limit (each waits for its permit).
    fn hand_over(&self, tasks: Vec<Task>) {
        let shared = &self.shared;
        if self.lanes.is_empty() {
            for task in tasks {
                shared.ctx.runtime().spawn(execute(shared.clone(), task));
            }
            return;
        }
        let lane = self.next_lane.fetch_add(1, Ordering::Relaxed) % self.lanes.len();
        if let Err(refused) = self.lanes[lane].try_send(tasks) {
            // Full (or its dispatcher gone): the share gets a task of its own.
            let (shared, part) = (shared.clone(), refused.into_inner());
            shared
                .ctx
                .runtime()
                .clone()
                .spawn(async move { start_in_place(&shared, part).await });
        }
    }
}

fn not_started() -> Error {
    Error::scheduler_state("the tokio executor is not started")
}

impl Executor for TokioExecutor {
    async fn start(&self, ctx: ExecutorContext) -> Result<()> {
        let permits = self.max_concurrency.map(|n| Arc::new(Semaphore::new(n)));
        let dispatchers = if permits.is_some() {
            0
        } else {
            ctx.runtime().metrics().num_workers().max(1)
        };
        let runtime = ctx.runtime().clone();
        let shared = Arc::new(Shared {
            ctx,
            permits,
            in_flight: Arc::default(),
        });
        let lanes = (0..dispatchers)
            .map(|_| {
                let (sender, receiver) = mpsc::channel(LANE_CAPACITY);
                runtime.spawn(dispatch(shared.clone(), receiver));
                sender
            })
            .collect();
        *self.lock() = Some(Arc::new(Running {
            shared,
            limiter: InstanceLimiter::new(),
            lanes,
            next_lane: AtomicUsize::new(0),
        }));
        Ok(())
    }

    fn submit(&self, run: JobRun) -> Result<()> {
        let Some(running) = self.lock().clone() else {
            return Err(not_started());
        };
        let shared = &running.shared;
        let instance = shared.ctx.admit(&running.limiter, &run)?;
        running.hand_over(vec![(run, instance, shared.in_flight.enter())]);
        Ok(())
    }

    fn submit_batch(&self, runs: Vec<JobRun>) -> Vec<RefusedRun> {
        let Some(running) = self.lock().clone() else {
            return RefusedRun::all(runs, not_started);
        };
        let shared = &running.shared;
        let mut refused = Vec::new();
        // Shares are filled in place and each handed over once full: splitting one list
        // afterwards copied every run once more, and the first share starts sooner.
        let share = running.share(runs.len());
        let mut tasks = Vec::new();
        for run in runs {
            match shared.ctx.admit(&running.limiter, &run) {
                Ok(instance) => {
                    if tasks.capacity() == 0 {
                        tasks.reserve_exact(share);
                    }
                    tasks.push((run, instance, shared.in_flight.enter()));
                    if tasks.len() == share {
                        running.hand_over(std::mem::take(&mut tasks));
                    }
                }
                Err(error) => refused.push(RefusedRun { run, error }),
            }
        }
        if !tasks.is_empty() {
            running.hand_over(tasks);
        }
        refused
    }

    async fn shutdown(&self, wait: bool) -> Result<()> {
        // Dropping `Running` closes the channels: the dispatchers start what is queued, then end.
        let running = self.lock().take();
        if let (Some(running), true) = (running, wait) {
            let in_flight = running.shared.in_flight.clone();
            drop(running);
            in_flight.wait_idle().await;
        }
        Ok(())
    }
}

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use scheduler_core::executor::run_job_blocking;
use scheduler_core::{
    Error, Executor, ExecutorContext, InstanceGuard, InstanceLimiter, JobRun, Result,
};

/// Runs jobs on a pool of worker threads (APScheduler's `ThreadPoolExecutor`).
///
/// Threads are started as runs arrive, up to `max_workers`, and live until shutdown. A
/// blocking job function runs directly on a worker; an async one is driven to completion
/// there. A job that panics is reported as a [`JobError`](scheduler_core::Event::JobError)
/// and the worker carries on. Runs queue when all workers are busy; their misfire check
/// happens when a worker picks them up.
#[derive(Debug)]
pub struct ThreadPoolExecutor {
    max_workers: usize,
    pool: Mutex<Option<Pool>>,
}

type Task = (JobRun, InstanceGuard);

#[derive(Debug)]
struct Pool {
    ctx: ExecutorContext,
    limiter: InstanceLimiter,
    sender: Sender<Task>,
    receiver: Arc<Mutex<Receiver<Task>>>,
    workers: Vec<JoinHandle<()>>,
    /// Workers waiting for a task.
    idle: Arc<AtomicUsize>,
    /// Tasks sent and not yet taken by a worker.
    queued: Arc<AtomicUsize>,
}

impl ThreadPoolExecutor {
    /// A pool of at most `max_workers` threads (APScheduler's default is 10); fails if zero.
    pub fn new(max_workers: usize) -> Result<Self> {
        if max_workers == 0 {
            return Err(Error::config("max_workers must be at least 1"));
        }
        Ok(ThreadPoolExecutor {
            max_workers,
            pool: Mutex::new(None),
        })
    }

    /// The most threads the pool starts.
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
            pool: Mutex::new(None),
        }
    }
}

impl Pool {
    /// Starts another worker if the queued tasks outnumber the idle workers and the pool is
    /// not full.
    ///
    /// Comparing the two counts (rather than asking "is any worker idle") matters: a worker
    /// that has just counted itself idle may be about to take an earlier task, and the task
    /// queued now would then wait behind a busy worker although the pool could grow.
    fn grow(&mut self, max_workers: usize) -> Result<()> {
        if self.queued.load(Ordering::Acquire) <= self.idle.load(Ordering::Acquire)
            || self.workers.len() >= max_workers
        {
            return Ok(());
        }
        let (ctx, receiver) = (self.ctx.clone(), self.receiver.clone());
        let (idle, queued) = (self.idle.clone(), self.queued.clone());
        let name = format!("{}-worker-{}", ctx.alias(), self.workers.len());
        let handle = std::thread::Builder::new()
            .name(name)
            .spawn(move || worker(&ctx, &receiver, &idle, &queued))
            .map_err(|e| Error::scheduler_state("cannot start a worker thread").with_source(e))?;
        self.workers.push(handle);
        Ok(())
    }
}

fn worker(
    ctx: &ExecutorContext,
    receiver: &Mutex<Receiver<Task>>,
    idle: &AtomicUsize,
    queued: &AtomicUsize,
) {
    loop {
        idle.fetch_add(1, Ordering::AcqRel);
        // Workers take turns waiting on the queue; `recv` fails once the pool is shut down
        // and the queue is drained.
        let task = receiver.lock().unwrap_or_else(|p| p.into_inner()).recv();
        idle.fetch_sub(1, Ordering::AcqRel);
        let Ok((run, instance)) = task else {
            return;
        };
        queued.fetch_sub(1, Ordering::AcqRel);
        run_job_blocking(ctx, &run);
        drop(instance);
    }
}

impl Executor for ThreadPoolExecutor {
    async fn start(&self, ctx: ExecutorContext) -> Result<()> {
        let (sender, receiver) = std::sync::mpsc::channel();
        *self.lock() = Some(Pool {
            ctx,
            limiter: InstanceLimiter::new(),
            sender,
            receiver: Arc::new(Mutex::new(receiver)),
            workers: Vec::new(),
            idle: Arc::default(),
            queued: Arc::default(),
        });
        Ok(())
    }

    fn submit(&self, run: JobRun) -> Result<()> {
        let mut pool = self.lock();
        let Some(pool) = pool.as_mut() else {
            return Err(Error::scheduler_state(
                "the thread pool executor is not started",
            ));
        };
        let instance = pool.ctx.admit(&pool.limiter, &run)?;
        pool.queued.fetch_add(1, Ordering::AcqRel);
        let sent = pool.grow(self.max_workers).and_then(|()| {
            pool.sender
                .send((run, instance))
                .map_err(|_| Error::scheduler_state("the thread pool has shut down"))
        });
        if sent.is_err() {
            pool.queued.fetch_sub(1, Ordering::AcqRel);
        }
        sent
    }

    async fn shutdown(&self, wait: bool) -> Result<()> {
        let Some(pool) = self.lock().take() else {
            return Ok(());
        };
        // Dropping the sender lets the workers finish the queue and exit.
        let Pool {
            sender, workers, ..
        } = pool;
        drop(sender);
        if wait {
            let joined = tokio::task::spawn_blocking(move || {
                for worker in workers {
                    let _ = worker.join();
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

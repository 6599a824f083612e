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
    idle: Arc<AtomicUsize>,
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
    /// Starts another worker if none is idle and the pool is not full.
    fn grow(&mut self, max_workers: usize) -> Result<()> {
        if self.idle.load(Ordering::Acquire) > 0 || self.workers.len() >= max_workers {
            return Ok(());
        }
        let (ctx, receiver, idle) = (self.ctx.clone(), self.receiver.clone(), self.idle.clone());
        let name = format!("{}-worker-{}", ctx.alias(), self.workers.len());
        let handle = std::thread::Builder::new()
            .name(name)
            .spawn(move || worker(&ctx, &receiver, &idle))
            .map_err(|e| Error::scheduler_state("cannot start a worker thread").with_source(e))?;
        self.workers.push(handle);
        Ok(())
    }
}

fn worker(ctx: &ExecutorContext, receiver: &Mutex<Receiver<Task>>, idle: &AtomicUsize) {
    loop {
        idle.fetch_add(1, Ordering::AcqRel);
        // Workers take turns waiting on the queue; `recv` fails once the pool is shut down
        // and the queue is drained.
        let task = receiver.lock().unwrap_or_else(|p| p.into_inner()).recv();
        idle.fetch_sub(1, Ordering::AcqRel);
        let Ok((run, instance)) = task else {
            return;
        };
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
        pool.grow(self.max_workers)?;
        let instance = pool.ctx.admit(&pool.limiter, &run)?;
        pool.sender
            .send((run, instance))
            .map_err(|_| Error::scheduler_state("the thread pool has shut down"))
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

use std::sync::{Arc, Mutex};

use scheduler_core::executor::run_job;
use scheduler_core::{Error, Executor, ExecutorContext, InstanceLimiter, JobRun, Result};
use tokio::sync::Semaphore;

use crate::InFlight;

/// Runs each job as a tokio task on the scheduler's runtime (APScheduler's `AsyncIOExecutor`).
///
/// Async job functions are polled as tasks; blocking ones go to tokio's blocking pool, so
/// neither stalls the scheduler. An optional concurrency limit caps how many runs execute at
/// once; the others wait, and their misfire check happens when they actually start.
#[derive(Debug, Default)]
pub struct TokioExecutor {
    max_concurrency: Option<usize>,
    running: Mutex<Option<Arc<Running>>>,
}

#[derive(Debug)]
struct Running {
    ctx: ExecutorContext,
    limiter: InstanceLimiter,
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

impl Executor for TokioExecutor {
    async fn start(&self, ctx: ExecutorContext) -> Result<()> {
        let permits = self.max_concurrency.map(|n| Arc::new(Semaphore::new(n)));
        *self.lock() = Some(Arc::new(Running {
            ctx,
            limiter: InstanceLimiter::new(),
            permits,
            in_flight: Arc::default(),
        }));
        Ok(())
    }

    fn submit(&self, run: JobRun) -> Result<()> {
        let Some(running) = self.lock().clone() else {
            return Err(Error::scheduler_state("the tokio executor is not started"));
        };
        let instance = running.ctx.admit(&running.limiter, &run)?;
        let in_flight = running.in_flight.enter();
        let runtime = running.ctx.runtime().clone();
        runtime.spawn(async move {
            let _permit = match &running.permits {
                // The semaphore is never closed, so acquiring only waits.
                Some(permits) => permits.acquire().await.ok(),
                None => None,
            };
            run_job(&running.ctx, &run).await;
            drop(instance);
            drop(in_flight);
        });
        Ok(())
    }

    async fn shutdown(&self, wait: bool) -> Result<()> {
        let running = self.lock().take();
        if let (Some(running), true) = (running, wait) {
            running.in_flight.wait_idle().await;
        }
        Ok(())
    }
}

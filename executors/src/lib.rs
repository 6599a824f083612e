#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(all(unix, feature = "process-pool"))]
pub mod process_pool;
#[cfg(feature = "remote-nats")]
pub mod remote;
#[cfg(feature = "thread-pool")]
mod thread_pool;
#[cfg(feature = "tokio")]
mod tokio_executor;

#[cfg(all(unix, feature = "process-pool"))]
pub use process_pool::ProcessPoolExecutor;
#[cfg(feature = "thread-pool")]
pub use thread_pool::ThreadPoolExecutor;
#[cfg(feature = "tokio")]
pub use tokio_executor::TokioExecutor;

use scheduler_core::Components;

/// Registers the executor types of the enabled features for configuration documents:
/// `"tokio"` (also under APScheduler's name `"asyncio"`), `"threadpool"` (options
/// `max_workers`, default 10, `queue_capacity`) and `"processpool"` (options `max_workers`,
/// default 10, `recycle_after`, `queue_capacity`, `worker_program`, `start_timeout` in
/// seconds).
#[cfg_attr(
    not(any(
        feature = "tokio",
        feature = "thread-pool",
        all(unix, feature = "process-pool")
    )),
    allow(unused_variables)
)]
pub fn register(components: &Components) {
    #[cfg(any(
        feature = "tokio",
        feature = "thread-pool",
        all(unix, feature = "process-pool")
    ))]
    use {
        scheduler_core::{DynExecutor, config::parse_options},
        serde::Deserialize,
        std::sync::Arc,
    };
    #[cfg(feature = "tokio")]
    for name in ["tokio", "asyncio"] {
        components.register_executor(
            name,
            Arc::new(|options| {
                #[derive(Deserialize)]
                #[serde(deny_unknown_fields)]
                struct Options {
                    max_concurrency: Option<usize>,
                }
                let options: Options = parse_options(options)?;
                let executor = match options.max_concurrency {
                    Some(n) => TokioExecutor::with_max_concurrency(n)?,
                    None => TokioExecutor::new(),
                };
                Ok(Arc::new(executor) as Arc<dyn DynExecutor>)
            }),
        );
    }
    #[cfg(feature = "thread-pool")]
    components.register_executor(
        "threadpool",
        Arc::new(|options| {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Options {
                max_workers: Option<usize>,
                queue_capacity: Option<usize>,
            }
            let options: Options = parse_options(options)?;
            let mut executor = ThreadPoolExecutor::new(options.max_workers.unwrap_or(10))?;
            if let Some(capacity) = options.queue_capacity {
                executor = executor.queue_capacity(capacity);
            }
            Ok(Arc::new(executor) as Arc<dyn DynExecutor>)
        }),
    );
    #[cfg(all(unix, feature = "process-pool"))]
    components.register_executor(
        "processpool",
        Arc::new(|options| {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Options {
                max_workers: Option<usize>,
                recycle_after: Option<u64>,
                queue_capacity: Option<usize>,
                worker_program: Option<std::path::PathBuf>,
                start_timeout: Option<f64>,
            }
            let options: Options = parse_options(options)?;
            let mut executor = ProcessPoolExecutor::new(options.max_workers.unwrap_or(10))?;
            if let Some(runs) = options.recycle_after {
                executor = executor.recycle_after(runs);
            }
            if let Some(capacity) = options.queue_capacity {
                executor = executor.queue_capacity(capacity);
            }
            if let Some(program) = options.worker_program {
                executor = executor.worker_program(program);
            }
            if let Some(secs) = options.start_timeout {
                let timeout = std::time::Duration::try_from_secs_f64(secs).map_err(|_| {
                    scheduler_core::Error::config(format!(
                        "start_timeout: {secs} is not a valid number of seconds"
                    ))
                })?;
                executor = executor.start_timeout(timeout);
            }
            Ok(Arc::new(executor) as Arc<dyn DynExecutor>)
        }),
    );
}

#[cfg(feature = "tokio")]
pub(crate) use in_flight::InFlight;

#[cfg(feature = "tokio")]
mod in_flight {
    use std::sync::Arc;

    /// Counts the runs an executor has in progress, so `shutdown(wait)` can wait for them.
    #[derive(Debug, Default)]
    pub(crate) struct InFlight {
        count: std::sync::atomic::AtomicUsize,
        idle: tokio::sync::Notify,
    }

    impl InFlight {
        pub(crate) fn enter(self: &Arc<Self>) -> InFlightGuard {
            self.count.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
            InFlightGuard(self.clone())
        }

        pub(crate) async fn wait_idle(&self) {
            loop {
                let idle = self.idle.notified();
                if self.count.load(std::sync::atomic::Ordering::Acquire) == 0 {
                    return;
                }
                idle.await;
            }
        }
    }

    #[derive(Debug)]
    pub(crate) struct InFlightGuard(Arc<InFlight>);

    impl Drop for InFlightGuard {
        fn drop(&mut self) {
            if self
                .0
                .count
                .fetch_sub(1, std::sync::atomic::Ordering::AcqRel)
                == 1
            {
                self.0.idle.notify_waiters();
            }
        }
    }
}

//! SIGINT (Ctrl-C) and SIGTERM, on Unix: the first shuts the scheduler down gracefully, a
//! second exits the process at once, with 130 for SIGINT and 143 for SIGTERM, as a shell
//! reports a process those signals killed.
//!
//! Signal handlers are process-wide and cannot be put back as they were, so the immediate
//! exit is registered once per process and stays armed whenever no graceful handling is
//! waiting: after the scheduler's handling ends, a signal ends the process as it would have
//! without it.

/// Waits for the first SIGINT or SIGTERM on the calling thread.
pub(super) struct SignalWatch {
    #[cfg(unix)]
    signals: signal_hook::iterator::Signals,
}

/// Ends a [`SignalWatch::wait`] from another thread.
#[derive(Clone)]
pub(super) struct StopWaiting {
    #[cfg(unix)]
    handle: signal_hook::iterator::Handle,
}

#[cfg(unix)]
mod unix {
    use std::sync::Arc;
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicBool, Ordering};

    use signal_hook::consts::{SIGINT, SIGTERM};

    use super::{SignalWatch, StopWaiting};
    use crate::error::{Error, Result};

    /// When set, SIGINT and SIGTERM exit at once (130, 143). Registered before any other
    /// action of ours, so it runs first.
    fn immediate_exit() -> Result<&'static AtomicBool> {
        static ARMED: OnceLock<std::result::Result<Arc<AtomicBool>, String>> = OnceLock::new();
        let armed = ARMED.get_or_init(|| {
            let armed = Arc::new(AtomicBool::new(true));
            for (signal, status) in [(SIGINT, 130), (SIGTERM, 143)] {
                signal_hook::flag::register_conditional_shutdown(signal, status, armed.clone())
                    .map_err(|e| e.to_string())?;
            }
            Ok(armed)
        });
        match armed {
            Ok(armed) => Ok(armed),
            Err(e) => Err(Error::scheduler_state(format!(
                "cannot install the SIGINT/SIGTERM handlers: {e}"
            ))),
        }
    }

    impl SignalWatch {
        pub(in crate::scheduler) fn install() -> Result<Self> {
            let armed = immediate_exit()?;
            let signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]).map_err(|e| {
                Error::scheduler_state("cannot install the SIGINT/SIGTERM handlers").with_source(e)
            })?;
            armed.store(false, Ordering::SeqCst);
            Ok(SignalWatch { signals })
        }

        pub(in crate::scheduler) fn stopper(&self) -> StopWaiting {
            StopWaiting {
                handle: self.signals.handle(),
            }
        }

        /// Blocks until the first signal and answers its name, arming the immediate exit for
        /// the next one; `None` when stopped first.
        pub(in crate::scheduler) fn wait(&mut self) -> Option<&'static str> {
            let signal = self.signals.forever().next()?;
            // Set by the first signal, so a second one ends the process at once.
            if let Ok(armed) = immediate_exit() {
                armed.store(true, Ordering::SeqCst);
            }
            Some(if signal == SIGINT {
                "SIGINT"
            } else {
                "SIGTERM"
            })
        }
    }

    impl Drop for SignalWatch {
        fn drop(&mut self) {
            self.signals.handle().close();
            if let Ok(armed) = immediate_exit() {
                armed.store(true, Ordering::SeqCst);
            }
        }
    }

    impl StopWaiting {
        pub(in crate::scheduler) fn stop(&self) {
            self.handle.close();
        }
    }
}

#[cfg(not(unix))]
impl SignalWatch {
    pub(super) fn install() -> crate::error::Result<Self> {
        tracing::debug!("no signal handling on this platform");
        Ok(SignalWatch {})
    }

    pub(super) fn stopper(&self) -> StopWaiting {
        StopWaiting {}
    }

    pub(super) fn wait(&mut self) -> Option<&'static str> {
        None
    }
}

#[cfg(not(unix))]
impl StopWaiting {
    pub(super) fn stop(&self) {}
}

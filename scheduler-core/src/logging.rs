//! The last resort for warnings and errors when the program installed no `tracing`
//! subscriber: they go to standard error, as Python's `logging.lastResort` prints
//! APScheduler's warnings and errors when logging is not configured.
//!
//! Without it a failing job would leave no trace at all unless the program had installed a
//! subscriber or a listener. Any subscriber (global or scoped, even one that filters
//! everything out) turns the fallback off: the program then decides what is shown.

use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::sync::OnceLock;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::NoSubscriber;
use tracing::{Dispatch, Event, Level, Metadata, Subscriber};

/// Emits a `tracing` warning, or prints it to standard error when no subscriber is set.
macro_rules! log_warn {
    ($($arg:tt)+) => {
        $crate::logging::or_stderr(|| ::tracing::warn!($($arg)+))
    };
}

/// Emits a `tracing` error, or prints it to standard error when no subscriber is set.
macro_rules! log_error {
    ($($arg:tt)+) => {
        $crate::logging::or_stderr(|| ::tracing::error!($($arg)+))
    };
}

pub(crate) use {log_error, log_warn};

/// Runs `emit` (which emits warnings or errors) with the standard-error fallback as the
/// subscriber when the program has none.
pub(crate) fn or_stderr(emit: impl FnOnce()) {
    let unset = tracing::dispatcher::get_default(|current| current.is::<NoSubscriber>());
    if unset {
        tracing::dispatcher::with_default(fallback(), emit);
    } else {
        emit();
    }
}

fn fallback() -> &'static Dispatch {
    static FALLBACK: OnceLock<Dispatch> = OnceLock::new();
    FALLBACK.get_or_init(|| Dispatch::new(LastResort))
}

/// Prints events at WARN and above, one line each, to standard error; keeps no spans.
struct LastResort;

impl Subscriber for LastResort {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.is_event() && *metadata.level() <= Level::WARN
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let line = format_line(event);
        // Standard error is all the fallback has; if it is gone there is nowhere to say so.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::WARN)
    }
}

/// `LEVEL target: message key=value ...` and a newline.
fn format_line(event: &Event<'_>) -> String {
    let metadata = event.metadata();
    let mut line = LineVisitor::default();
    event.record(&mut line);
    format!(
        "{} {}: {}{}\n",
        metadata.level(),
        metadata.target(),
        line.message,
        line.fields
    )
}

#[derive(Default)]
struct LineVisitor {
    message: String,
    fields: String,
}

impl Visit for LineVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Formats like `LastResort` into a buffer instead of standard error.
    struct Capture(Arc<Mutex<Vec<String>>>);

    impl Subscriber for Capture {
        fn enabled(&self, metadata: &Metadata<'_>) -> bool {
            LastResort.enabled(metadata)
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            self.0.lock().unwrap().push(format_line(event));
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    #[test]
    fn lines_carry_level_target_message_and_fields() {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let dispatch = Dispatch::new(Capture(lines.clone()));
        tracing::dispatcher::with_default(&dispatch, || {
            let error = "boom";
            tracing::error!(job = "j1", error = %error, "job failed");
            tracing::warn!(late = 2.5, "run missed");
            tracing::info!("not shown");
        });
        let lines = lines.lock().unwrap().clone();
        assert_eq!(
            lines,
            [
                "ERROR scheduler_core::logging::tests: job failed job=\"j1\" error=boom\n",
                "WARN scheduler_core::logging::tests: run missed late=2.5\n",
            ]
        );
    }

    #[test]
    fn the_fallback_is_used_only_without_a_subscriber() {
        let used = || {
            let mut fallback_used = false;
            or_stderr(|| {
                fallback_used =
                    tracing::dispatcher::get_default(|current| current.is::<LastResort>());
            });
            fallback_used
        };
        assert!(used(), "no subscriber: the fallback prints");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let dispatch = Dispatch::new(Capture(lines));
        assert!(
            !tracing::dispatcher::with_default(&dispatch, used),
            "a subscriber of the program's: it decides"
        );
    }
}

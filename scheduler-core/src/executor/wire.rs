//! Runs as plain data, for executors whose jobs run in other processes (a process pool,
//! remote workers behind a broker): a [`RunRequest`] goes out, a [`RunReport`] with its
//! [`RunOutcome`] comes back.
//!
//! A job record is the wrong thing to send: it carries trigger state the worker has no use
//! for. A request names the registered function and carries its JSON arguments and the
//! run's context; the worker resolves the name in its own [`JobRegistry`] and answers with
//! the return value as JSON, or the error with its message chain, or the panic.
//!
//! # Versions
//!
//! Every message carries [`WIRE_VERSION`]: the format's major version. Within one major
//! version, fields are only ever added, each optional with a default, and readers ignore
//! fields they do not know; so schedulers and workers of neighbouring releases read each
//! other's messages during a rolling upgrade. A change that cannot be made that way bumps
//! the major version, and a reader refuses a message of another major version with a clear
//! error ([`check_version`]) instead of misreading it. An outcome of a kind added later reads
//! as [`RunOutcome::Unknown`].
//!
//! ```
//! use scheduler_core::executor::wire::{RunOutcome, RunReport};
//!
//! // A report from a newer worker, with a field this version does not know.
//! let line = r#"{"version":1,"run_id":"7f","node":"w1:42","cpu_ms":3,
//!               "outcome":{"kind":"returned","value":{"total":12}}}"#;
//! let report: RunReport = serde_json::from_str(line).unwrap();
//! assert_eq!(report.outcome, RunOutcome::Returned { value: serde_json::json!({"total": 12}) });
//! ```

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::run::RunContext;
use crate::error::{Error, ErrorKind, Result};
use crate::event::{JobFailure, panic_message};
use crate::job::{Handler, JobRegistry};

/// The major version of the wire format this build writes and reads.
pub const WIRE_VERSION: u32 = 1;

/// Checks that a message of wire `version` can be read here.
pub fn check_version(version: u32) -> Result<()> {
    if version == WIRE_VERSION {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::Serialization,
        format!(
            "a message of wire format version {version} cannot be read by this build (it reads \
             version {WIRE_VERSION}); run workers and schedulers of compatible releases"
        ),
    ))
}

/// One run of a job, sent to the process that will run it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRequest {
    /// The sender's [`WIRE_VERSION`].
    pub version: u32,
    /// The run's id ([`RunContext::run_id`]), echoed in the [`RunReport`].
    pub run_id: String,
    /// The job's id.
    pub job_id: String,
    /// The alias of the job's store.
    #[serde(default)]
    pub jobstore: String,
    /// The registered name of the job function.
    pub function: String,
    /// The function's arguments.
    pub args: serde_json::Value,
    /// The run time this run is for.
    pub scheduled_run_time: DateTime<Utc>,
    /// 1 for the first delivery of the run.
    #[serde(default = "first_attempt")]
    pub attempt: u32,
    /// How late the run may start (after `scheduled_run_time`); `None`: no limit. Seconds on
    /// the wire.
    #[serde(default, with = "crate::job::opt_seconds")]
    pub misfire_grace_time: Option<Duration>,
    /// How long the run may take; `None`: no limit. Seconds on the wire.
    #[serde(default, with = "crate::job::opt_seconds")]
    pub timeout: Option<Duration>,
    /// The alias of the executor that sent it.
    #[serde(default)]
    pub executor: String,
}

fn first_attempt() -> u32 {
    1
}

impl RunRequest {
    /// Whether the run would start later than its misfire grace time allows at `now` (for a
    /// worker that takes runs from a queue).
    pub fn is_missed(&self, now: DateTime<Utc>) -> bool {
        let Some(grace) = self.misfire_grace_time else {
            return false;
        };
        (now - self.scheduled_run_time)
            .to_std()
            .is_ok_and(|late| late > grace)
    }
}

/// The answer to a [`RunRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// The sender's [`WIRE_VERSION`].
    pub version: u32,
    /// The [`RunRequest::run_id`] this answers.
    pub run_id: String,
    /// Where the run ran ([`RunContext::node`]).
    #[serde(default)]
    pub node: String,
    /// How it ended.
    pub outcome: RunOutcome,
}

/// How a run ended, as wire data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RunOutcome {
    /// The function returned this value.
    Returned {
        /// The return value as JSON.
        value: serde_json::Value,
    },
    /// The function returned an error.
    Failed {
        /// The error's message.
        error: String,
        /// The messages of its sources, outermost first.
        #[serde(default)]
        causes: Vec<String>,
    },
    /// The function panicked.
    Panicked {
        /// The panic's message.
        message: String,
    },
    /// The run was stopped at its time limit.
    TimedOut {
        /// The limit. Seconds on the wire.
        #[serde(with = "seconds")]
        after: Duration,
    },
    /// The run started too late for its misfire grace time and was not run.
    Missed {
        /// Why (how late it was).
        #[serde(default)]
        reason: String,
    },
    /// The worker did not run it (an unknown function, a version it cannot read, shutting
    /// down).
    Refused {
        /// Why.
        reason: String,
    },
    /// An outcome of a kind this version does not know (from a newer worker).
    #[serde(other)]
    Unknown,
}

mod seconds {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}

/// Runs `request` here, on the calling thread: resolves the function in `registry`, calls it
/// with [`RunContext::current`] set (an async function is driven to completion on
/// `runtime`), and answers how it ended. A panic is caught and answered; an unknown function
/// or a request of another wire version is [`RunOutcome::Refused`].
///
/// For worker processes. It applies neither the misfire check nor the timeout: the sender
/// does both (see [`RunRequest::is_missed`] for a worker that queues runs).
pub fn execute_blocking(
    registry: &JobRegistry,
    request: &RunRequest,
    node: &str,
    runtime: &tokio::runtime::Handle,
) -> RunReport {
    let outcome = match prepare(registry, request) {
        Err(refused) => refused,
        Ok((handler, args)) => {
            let context = Arc::new(RunContext::from_request(request, node));
            let call = std::panic::AssertUnwindSafe(|| {
                context.scope(|| match &handler {
                    Handler::Sync(f) => f(&args),
                    Handler::Async(f) => runtime.block_on(scoped(context.clone(), f(&args))),
                })
            });
            match std::panic::catch_unwind(call) {
                Ok(result) => RunOutcome::from_result(result.map_err(JobFailure::from_error)),
                Err(payload) => RunOutcome::Panicked {
                    message: panic_message(&*payload),
                },
            }
        }
    };
    RunReport {
        version: WIRE_VERSION,
        run_id: request.run_id.clone(),
        node: node.to_owned(),
        outcome,
    }
}

/// The handler and its arguments as JSON text, or why the run is refused.
fn prepare(
    registry: &JobRegistry,
    request: &RunRequest,
) -> std::result::Result<(Handler, String), RunOutcome> {
    if let Err(e) = check_version(request.version) {
        return Err(RunOutcome::Refused {
            reason: e.to_string(),
        });
    }
    match registry.get(&request.function) {
        Ok(function) => Ok((function.handler().clone(), request.args.to_string())),
        Err(e) => Err(RunOutcome::Refused {
            reason: e.to_string(),
        }),
    }
}

/// Polls `fut` with `context` as the current run on every poll.
async fn scoped<F: std::future::Future>(context: Arc<RunContext>, fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(|cx| context.scope(|| fut.as_mut().poll(cx))).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(function: &str, args: serde_json::Value) -> RunRequest {
        RunRequest {
            version: WIRE_VERSION,
            run_id: "r1".into(),
            job_id: "j1".into(),
            jobstore: "default".into(),
            function: function.into(),
            args,
            scheduled_run_time: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            attempt: 1,
            misfire_grace_time: Some(Duration::from_millis(1500)),
            timeout: None,
            executor: "processpool".into(),
        }
    }

    #[test]
    fn requests_round_trip_and_take_defaults_for_missing_optional_fields() {
        let sent = request("add", serde_json::json!([1, 2]));
        let line = serde_json::to_string(&sent).unwrap();
        assert_eq!(serde_json::from_str::<RunRequest>(&line).unwrap(), sent);
        // A minimal request of an older sender.
        let old: RunRequest = serde_json::from_str(
            r#"{"version":1,"run_id":"r","job_id":"j","function":"f","args":null,
                "scheduled_run_time":"2024-01-01T00:00:00Z","from_the_future":true}"#,
        )
        .unwrap();
        assert_eq!(
            (old.attempt, old.timeout, old.misfire_grace_time),
            (1, None, None)
        );
    }

    #[test]
    fn outcomes_of_unknown_kinds_read_as_unknown() {
        let outcome: RunOutcome =
            serde_json::from_str(r#"{"kind":"vanished_into_thin_air","at":3}"#).unwrap();
        assert_eq!(outcome, RunOutcome::Unknown);
        let timed_out = RunOutcome::TimedOut {
            after: Duration::from_millis(250),
        };
        let line = serde_json::to_string(&timed_out).unwrap();
        assert_eq!(line, r#"{"kind":"timed_out","after":0.25}"#);
        assert_eq!(
            serde_json::from_str::<RunOutcome>(&line).unwrap(),
            timed_out
        );
    }

    #[test]
    fn another_major_version_is_refused() {
        assert!(check_version(WIRE_VERSION).is_ok());
        let err = check_version(WIRE_VERSION + 1).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Serialization);
    }

    #[test]
    fn execute_answers_values_errors_panics_and_unknown_functions() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let registry = JobRegistry::new();
        registry.register_sync("add", |(a, b): (i64, i64)| {
            let run = RunContext::current().expect("a run context inside the job");
            assert_eq!(&*run.run_id, "r1");
            Ok::<_, crate::BoxError>(a + b)
        });
        registry.register_sync("fail", |_: ()| {
            Err::<(), crate::BoxError>(
                Error::backend("charging failed", std::io::Error::other("card declined")).into(),
            )
        });
        registry.register_sync("boom", |_: ()| -> () { panic!("kaboom") });
        registry.register_async("later", |n: u32| async move {
            let run = RunContext::current().ok_or("no run context")?;
            Ok::<_, crate::BoxError>(format!("{n} at {}", run.node))
        });
        let run = |f: &str, args| {
            execute_blocking(&registry, &request(f, args), "w:1", runtime.handle()).outcome
        };
        assert_eq!(
            run("add", serde_json::json!([2, 3])),
            RunOutcome::Returned {
                value: serde_json::json!(5)
            }
        );
        assert_eq!(
            run("fail", serde_json::Value::Null),
            RunOutcome::Failed {
                error: "charging failed".into(),
                causes: vec!["card declined".into()]
            }
        );
        assert_eq!(
            run("boom", serde_json::Value::Null),
            RunOutcome::Panicked {
                message: "kaboom".into()
            }
        );
        assert_eq!(
            run("later", serde_json::json!(7)),
            RunOutcome::Returned {
                value: serde_json::json!("7 at w:1")
            }
        );
        assert!(matches!(
            run("nope", serde_json::Value::Null),
            RunOutcome::Refused { reason } if reason.contains("\"nope\"")
        ));
        assert!(RunContext::current().is_none());
    }

    #[test]
    fn failures_round_trip_through_the_wire_with_their_chain() {
        let failure = JobFailure::from_messages("outer", &["middle".into(), "inner".into()]);
        assert_eq!(
            failure.chain(),
            "outer\ncaused by: middle\ncaused by: inner"
        );
        let back = RunOutcome::from_result(Err(failure))
            .into_result()
            .unwrap_err();
        assert_eq!(back.chain(), "outer\ncaused by: middle\ncaused by: inner");
    }
}

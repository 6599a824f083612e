//! The one error type of the scheduler, its stores and its executors.

use std::fmt;

/// A boxed error from a job function, a driver or a user callback.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, for callers that branch on it.
///
/// New kinds may be added; match with a wildcard arm.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// No job with the given id exists (APScheduler's `JobLookupError`).
    JobNotFound,
    /// A job with the given id already exists in the store (`ConflictingIdError`).
    ConflictingId,
    /// The job changed in its store since it was read (its revision differs), so a
    /// conditional write was refused. Read the job again and retry. Not in APScheduler.
    Conflict,
    /// The job names a function that is not in the [`JobRegistry`](crate::JobRegistry).
    UnknownJobFunction,
    /// The job runs a closure, which a persistent store cannot save (`TransientJobError`),
    /// nor an executor that runs jobs in other processes.
    NotPersistable,
    /// A value could not be turned into or read back from its stored form.
    Serialization,
    /// A trigger could not be built or restored.
    InvalidTrigger,
    /// A trigger could not answer: its search for the next fire time gave up
    /// ([`SearchExhausted`](crate::SearchExhausted)), or it answered a fire time that is not
    /// after the previous one.
    TriggerFailed,
    /// A job option is out of range (for example `max_instances = 0`).
    InvalidJob,
    /// The storage backend failed (connection, query, driver, a call that timed out).
    Backend,
    /// The store cannot hold a value exactly (a run time outside its range), so it wrote
    /// nothing rather than round it.
    Unrepresentable,
    /// The job already runs `max_instances` times on its executor.
    MaxInstancesReached,
    /// The call is not allowed in the scheduler's current state (running, stopped).
    SchedulerState,
    /// The configuration names something that does not exist or is malformed.
    Config,
    /// A run of a job did not finish within the job's
    /// [`timeout`](crate::Job::timeout). Not in APScheduler.
    JobTimedOut,
}

impl ErrorKind {
    /// A short lowercase name of the kind, as used in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::JobNotFound => "job not found",
            ErrorKind::ConflictingId => "conflicting job id",
            ErrorKind::Conflict => "conflict",
            ErrorKind::UnknownJobFunction => "unknown job function",
            ErrorKind::NotPersistable => "job not persistable",
            ErrorKind::Serialization => "serialization",
            ErrorKind::InvalidTrigger => "invalid trigger",
            ErrorKind::TriggerFailed => "trigger failed",
            ErrorKind::InvalidJob => "invalid job",
            ErrorKind::Backend => "backend",
            ErrorKind::Unrepresentable => "unrepresentable value",
            ErrorKind::MaxInstancesReached => "max instances reached",
            ErrorKind::SchedulerState => "scheduler state",
            ErrorKind::Config => "configuration",
            ErrorKind::JobTimedOut => "job timed out",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error from the scheduler, a job store, an executor or a trigger.
///
/// It carries a [`kind`](Error::kind) to branch on, a message for people, the id of the job it
/// concerns (when there is one) and the underlying error as its [`source`](std::error::Error::source).
#[derive(thiserror::Error)]
#[error(transparent)]
pub struct Error(Box<Repr>);

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
struct Repr {
    kind: ErrorKind,
    message: String,
    job_id: Option<String>,
    temporary: bool,
    #[source]
    source: Option<BoxError>,
}

impl Error {
    /// An error of `kind` with a message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error(Box::new(Repr {
            kind,
            message: message.into(),
            job_id: None,
            temporary: false,
            source: None,
        }))
    }

    /// Attaches the underlying error.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.0.source = Some(source.into());
        self
    }

    /// Attaches the id of the job the error concerns.
    pub fn with_job_id(mut self, id: impl Into<String>) -> Self {
        self.0.job_id = Some(id.into());
        self
    }

    /// Marks the error as temporary: the same call may succeed later (a lost connection).
    pub fn set_temporary(mut self) -> Self {
        self.0.temporary = true;
        self
    }

    /// A copy for a second consumer (an event beside the returned error): the same kind,
    /// message, job id and temporariness, with the source kept as its text.
    pub(crate) fn clone_shallow(&self) -> Self {
        let mut copy = Error::new(self.0.kind, self.0.message.clone());
        copy.0.job_id.clone_from(&self.0.job_id);
        copy.0.temporary = self.0.temporary;
        if let Some(source) = &self.0.source {
            copy.0.source = Some(source.to_string().into());
        }
        copy
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// The message, without the source's.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// The id of the job the error concerns, if any.
    pub fn job_id(&self) -> Option<&str> {
        self.0.job_id.as_deref()
    }

    /// Whether retrying the same call later may succeed.
    pub fn is_temporary(&self) -> bool {
        self.0.temporary
    }

    /// No job with `id` exists.
    pub fn job_not_found(id: &str) -> Self {
        Error::new(
            ErrorKind::JobNotFound,
            format!("no job with id {id:?} was found"),
        )
        .with_job_id(id)
    }

    /// A job with `id` already exists.
    pub fn conflicting_id(id: &str) -> Self {
        Error::new(
            ErrorKind::ConflictingId,
            format!("a job with id {id:?} already exists"),
        )
        .with_job_id(id)
    }

    /// Job `id` changed in its store since it was read: a conditional write was refused.
    pub fn conflict(id: &str) -> Self {
        Error::new(
            ErrorKind::Conflict,
            format!("job {id:?} changed in its store since it was read"),
        )
        .with_job_id(id)
    }

    /// The run time `at` of job `id` is outside what the store can hold exactly
    /// (`earliest` to `latest`).
    pub fn unrepresentable_run_time(
        id: &str,
        at: chrono::DateTime<chrono::Utc>,
        earliest: chrono::DateTime<chrono::Utc>,
        latest: chrono::DateTime<chrono::Utc>,
    ) -> Self {
        Error::new(
            ErrorKind::Unrepresentable,
            format!(
                "the run time {at} of job {id:?} is outside what this job store can hold \
                 exactly ({earliest} to {latest})"
            ),
        )
        .with_job_id(id)
    }

    /// A call to the storage backend did not answer within `timeout`; temporary.
    pub fn timed_out(what: &str, timeout: std::time::Duration) -> Self {
        Error::new(
            ErrorKind::Backend,
            format!("{what} did not answer within {timeout:?}"),
        )
        .set_temporary()
    }

    /// A run of job `id` did not finish within its time limit.
    pub fn job_timed_out(id: &str, limit: std::time::Duration) -> Self {
        Error::new(
            ErrorKind::JobTimedOut,
            format!("the run of job {id:?} did not finish within its timeout of {limit:?}"),
        )
        .with_job_id(id)
    }

    /// Job `id` runs a closure, which executor `executor` cannot run (it runs jobs outside
    /// this process).
    pub fn closure_not_runnable(id: &str, executor: &str) -> Self {
        Error::new(
            ErrorKind::NotPersistable,
            format!(
                "job {id:?} runs a closure, which executor {executor:?} cannot run (it runs \
                 jobs in other processes); register the function in a JobRegistry and \
                 schedule it by name"
            ),
        )
        .with_job_id(id)
    }

    /// No job function is registered under `name`.
    pub fn unknown_job_function(name: &str) -> Self {
        Error::new(
            ErrorKind::UnknownJobFunction,
            format!("no job function named {name:?} is registered"),
        )
    }

    /// Job `id` runs a closure and cannot be saved by a persistent store.
    pub fn not_persistable(id: &str) -> Self {
        Error::new(
            ErrorKind::NotPersistable,
            format!(
                "job {id:?} runs a closure, which a persistent job store cannot save; \
                 register the function in a JobRegistry and schedule it by name"
            ),
        )
        .with_job_id(id)
    }

    /// A value could not be serialized or deserialized.
    pub fn serialization(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Error::new(ErrorKind::Serialization, message).with_source(source)
    }

    /// A trigger could not be built or restored.
    pub fn invalid_trigger(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidTrigger, message)
    }

    /// A job option is out of range.
    pub fn invalid_job(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidJob, message)
    }

    /// The storage backend failed.
    pub fn backend(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Error::new(ErrorKind::Backend, message).with_source(source)
    }

    /// Job `id` already runs `max_instances` times.
    pub fn max_instances_reached(id: &str, max_instances: u32) -> Self {
        Error::new(
            ErrorKind::MaxInstancesReached,
            format!("job {id:?} already runs its maximum of {max_instances} instance(s)"),
        )
        .with_job_id(id)
    }

    /// The call is not allowed in the scheduler's current state.
    pub fn scheduler_state(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::SchedulerState, message)
    }

    /// The configuration is malformed or names something unknown.
    pub fn config(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Config, message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.0.kind)
            .field("message", &self.0.message);
        if let Some(id) = &self.0.job_id {
            d.field("job_id", id);
        }
        if self.0.temporary {
            d.field("temporary", &true);
        }
        if let Some(source) = &self.0.source {
            d.field("source", source);
        }
        d.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn keeps_kind_message_and_source() {
        let io = std::io::Error::other("connection reset");
        let err = Error::backend("redis: HGET failed", io).set_temporary();
        assert_eq!(err.kind(), ErrorKind::Backend);
        assert!(err.is_temporary());
        assert_eq!(err.to_string(), "redis: HGET failed");
        assert_eq!(err.source().unwrap().to_string(), "connection reset");
    }

    #[test]
    fn job_errors_name_the_job() {
        let err = Error::job_not_found("nightly");
        assert_eq!(err.kind(), ErrorKind::JobNotFound);
        assert_eq!(err.job_id(), Some("nightly"));
        assert_eq!(err.to_string(), "no job with id \"nightly\" was found");
    }

    #[test]
    fn is_send_sync_and_small() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<Error>();
        assert_eq!(std::mem::size_of::<Error>(), std::mem::size_of::<usize>());
    }
}

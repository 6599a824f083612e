//! Job functions: the registry of named functions and the typed handles it hands out.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::{Arc, RwLock};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::clock::BoxFuture;
use crate::error::{BoxError, Error, Result};

/// What one run of a job function gave: its return value as JSON, or its error.
pub type JobOutcome = Result<serde_json::Value, BoxError>;

/// What a job function may return: `()` or `Result<T, E>` with a serializable `T`.
///
/// The value becomes the `retval` of the [`JobExecuted`](crate::Event::JobExecuted) event; the
/// error becomes the `error` of [`JobError`](crate::Event::JobError).
pub trait JobOutput: Send + 'static {
    /// Converts the function's output into an outcome.
    fn into_outcome(self) -> JobOutcome;
}

impl JobOutput for () {
    fn into_outcome(self) -> JobOutcome {
        Ok(serde_json::Value::Null)
    }
}

impl<T, E> JobOutput for std::result::Result<T, E>
where
    T: Serialize + Send + 'static,
    E: Into<BoxError> + Send + 'static,
{
    fn into_outcome(self) -> JobOutcome {
        match self {
            Ok(value) => serde_json::to_value(value).map_err(|e| {
                Box::new(Error::serialization(
                    "cannot serialize the job's return value",
                    e,
                )) as BoxError
            }),
            Err(e) => Err(e.into()),
        }
    }
}

type SyncFn = dyn Fn(&str) -> JobOutcome + Send + Sync;
type AsyncFn = dyn Fn(&str) -> BoxFuture<'static, JobOutcome> + Send + Sync;

/// A job function with its argument type erased: it takes the arguments as JSON text.
#[derive(Clone)]
pub enum Handler {
    /// A blocking function; executors run it on a thread that may block.
    Sync(Arc<SyncFn>),
    /// An async function; executors poll it on the async runtime.
    Async(Arc<AsyncFn>),
}

impl Handler {
    fn sync<A, O, F>(name: Arc<str>, f: F) -> Self
    where
        A: DeserializeOwned,
        O: JobOutput,
        F: Fn(A) -> O + Send + Sync + 'static,
    {
        Handler::Sync(Arc::new(move |args: &str| {
            let args = decode_args::<A>(&name, args)?;
            f(args).into_outcome()
        }))
    }

    fn asynchronous<A, O, Fut, F>(name: Arc<str>, f: F) -> Self
    where
        A: DeserializeOwned,
        O: JobOutput,
        Fut: Future<Output = O> + Send + 'static,
        F: Fn(A) -> Fut + Send + Sync + 'static,
    {
        Handler::Async(Arc::new(move |args: &str| {
            match decode_args::<A>(&name, args) {
                Ok(args) => {
                    let fut = f(args);
                    Box::pin(async move { fut.await.into_outcome() })
                }
                Err(e) => Box::pin(std::future::ready(Err(e))),
            }
        }))
    }

    /// Whether the function is async.
    pub fn is_async(&self) -> bool {
        matches!(self, Handler::Async(_))
    }
}

impl fmt::Debug for Handler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Handler::Sync(_) => "Handler::Sync",
            Handler::Async(_) => "Handler::Async",
        })
    }
}

fn decode_args<A: DeserializeOwned>(name: &str, args: &str) -> Result<A, BoxError> {
    serde_json::from_str(args).map_err(|e| {
        Box::new(Error::serialization(
            format!("the stored arguments do not fit job function {name:?}"),
            e,
        )) as BoxError
    })
}

/// A registered job function: its persisted name and its code.
#[derive(Debug)]
pub struct RegisteredFunction {
    name: Arc<str>,
    handler: Handler,
}

impl RegisteredFunction {
    /// The name jobs are saved with.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name, shared.
    pub fn name_arc(&self) -> &Arc<str> {
        &self.name
    }

    /// The code.
    pub fn handler(&self) -> &Handler {
        &self.handler
    }
}

/// The named job functions a scheduler (and its process-pool workers) can run.
///
/// The name is the persisted contract: a job in a store refers to its function by name, so
/// a process that restores it must have registered the same name. Registering returns a typed
/// [`JobFunction`] handle; scheduling through it checks the argument type at compile time.
///
/// Cloning is cheap; clones share their registrations.
///
/// ```
/// use scheduler_core::JobRegistry;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Invoice { id: u64 }
///
/// let registry = JobRegistry::new();
/// let send = registry.register_sync("send_invoice", |invoice: Invoice| {
///     println!("sending invoice {}", invoice.id);
/// });
/// let target = send.call(Invoice { id: 7 });
/// assert_eq!(target.function_name(), Some("send_invoice"));
/// // send.call("seven") would not compile: the handle only takes an `Invoice`.
/// ```
#[derive(Clone, Default)]
pub struct JobRegistry {
    functions: Arc<RwLock<HashMap<Arc<str>, Arc<RegisteredFunction>>>>,
}

impl JobRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a blocking function under `name`, replacing any earlier one.
    pub fn register_sync<A, O, F>(&self, name: impl Into<Arc<str>>, f: F) -> JobFunction<A>
    where
        A: Serialize + DeserializeOwned,
        O: JobOutput,
        F: Fn(A) -> O + Send + Sync + 'static,
    {
        let name = name.into();
        self.insert(name.clone(), Handler::sync(name, f))
    }

    /// Registers an async function under `name`, replacing any earlier one.
    pub fn register_async<A, O, Fut, F>(&self, name: impl Into<Arc<str>>, f: F) -> JobFunction<A>
    where
        A: Serialize + DeserializeOwned,
        O: JobOutput,
        Fut: Future<Output = O> + Send + 'static,
        F: Fn(A) -> Fut + Send + Sync + 'static,
    {
        let name = name.into();
        self.insert(name.clone(), Handler::asynchronous(name, f))
    }

    fn insert<A>(&self, name: Arc<str>, handler: Handler) -> JobFunction<A> {
        let function = Arc::new(RegisteredFunction {
            name: name.clone(),
            handler,
        });
        self.functions
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(name, function.clone());
        JobFunction {
            function,
            _args: PhantomData,
        }
    }

    /// The function registered under `name`.
    pub fn get(&self, name: &str) -> Result<Arc<RegisteredFunction>> {
        self.functions
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(name)
            .cloned()
            .ok_or_else(|| Error::unknown_job_function(name))
    }

    /// A job target that calls the function named `name` with JSON `args`, for callers that
    /// only know the name at run time (configuration files, admin tools).
    ///
    /// The arguments are checked against the function's type when the job runs.
    pub fn target(&self, name: &str, args: serde_json::Value) -> Result<JobTarget> {
        let function = self.get(name)?;
        Ok(JobTarget::registered(function, Arc::from(args.to_string())))
    }

    /// The registered names, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .functions
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .keys()
            .map(|name| name.to_string())
            .collect();
        names.sort();
        names
    }
}

impl fmt::Debug for JobRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobRegistry")
            .field("functions", &self.names())
            .finish()
    }
}

/// A typed handle to a registered job function taking arguments of type `A`.
pub struct JobFunction<A> {
    function: Arc<RegisteredFunction>,
    _args: PhantomData<fn(A)>,
}

impl<A> Clone for JobFunction<A> {
    fn clone(&self) -> Self {
        JobFunction {
            function: self.function.clone(),
            _args: PhantomData,
        }
    }
}

impl<A> fmt::Debug for JobFunction<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobFunction")
            .field("name", &self.function.name)
            .field("args", &std::any::type_name::<A>())
            .finish()
    }
}

impl<A: Serialize> JobFunction<A> {
    /// The name the function is registered under.
    pub fn name(&self) -> &str {
        &self.function.name
    }

    /// A job target that calls this function with `args`.
    pub fn call(&self, args: A) -> JobTarget {
        thread_local! {
            /// Arguments are written here, then copied once into the job's `Arc<str>`:
            /// `to_string` grew a fresh buffer for every job and copied it again.
            static BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        let json = BUFFER.with(|buffer| {
            // Taken already only if serializing the arguments calls this again.
            let Ok(mut buffer) = buffer.try_borrow_mut() else {
                return serde_json::to_string(&args).map(Arc::from);
            };
            buffer.clear();
            let written = serde_json::to_writer(&mut *buffer, &args);
            // serde_json writes UTF-8; the lossy path is never taken.
            let json = written.map(|()| match std::str::from_utf8(&buffer) {
                Ok(text) => Arc::<str>::from(text),
                Err(_) => Arc::from(String::from_utf8_lossy(&buffer)),
            });
            // A large one is not kept for the thread's lifetime.
            if buffer.capacity() > 4096 {
                *buffer = Vec::new();
            }
            json
        });
        match json {
            Ok(json) => JobTarget::registered(self.function.clone(), json),
            Err(e) => JobTarget(TargetRepr::Other(Arc::new(Other::Unserializable {
                function: self.function.name.clone(),
                error: Arc::from(e.to_string()),
            }))),
        }
    }
}

/// What a job runs: a registered function with its arguments, or an in-process closure.
///
/// Registered targets persist in any store; closures live only in memory stores, as a
/// callable that is not importable does in APScheduler.
#[derive(Clone)]
pub struct JobTarget(TargetRepr);

/// 24 bytes, so a job is small: the rare kinds sit behind one pointer.
#[derive(Clone)]
enum TargetRepr {
    Registered {
        function: Arc<RegisteredFunction>,
        args: Arc<str>,
    },
    Other(Arc<Other>),
}

enum Other {
    Closure {
        name: Arc<str>,
        handler: Handler,
    },
    /// `JobFunction::call` could not serialize the arguments; adding the job reports it.
    Unserializable {
        function: Arc<str>,
        error: Arc<str>,
    },
}

impl JobTarget {
    fn registered(function: Arc<RegisteredFunction>, args: Arc<str>) -> Self {
        JobTarget(TargetRepr::Registered { function, args })
    }

    /// A target running a blocking closure. The job cannot be persisted.
    pub fn closure<O, F>(name: impl Into<Arc<str>>, f: F) -> Self
    where
        O: JobOutput,
        F: Fn() -> O + Send + Sync + 'static,
    {
        let name = name.into();
        JobTarget(TargetRepr::Other(Arc::new(Other::Closure {
            handler: Handler::sync(name.clone(), move |()| f()),
            name,
        })))
    }

    /// A target running an async closure. The job cannot be persisted.
    pub fn async_closure<O, Fut, F>(name: impl Into<Arc<str>>, f: F) -> Self
    where
        O: JobOutput,
        Fut: Future<Output = O> + Send + 'static,
        F: Fn() -> Fut + Send + Sync + 'static,
    {
        let name = name.into();
        JobTarget(TargetRepr::Other(Arc::new(Other::Closure {
            handler: Handler::asynchronous(name.clone(), move |()| f()),
            name,
        })))
    }

    /// The registered function's name; `None` for closures.
    pub fn function_name(&self) -> Option<&str> {
        match &self.0 {
            TargetRepr::Registered { function, .. } => Some(&function.name),
            TargetRepr::Other(other) => match &**other {
                Other::Unserializable { function, .. } => Some(function),
                Other::Closure { .. } => None,
            },
        }
    }

    /// The arguments as JSON text; `None` for closures.
    pub fn args_json(&self) -> Option<&str> {
        match &self.0 {
            TargetRepr::Registered { args, .. } => Some(args),
            _ => None,
        }
    }

    /// Whether a persistent store can save this target.
    pub fn is_persistable(&self) -> bool {
        matches!(self.0, TargetRepr::Registered { .. })
    }

    /// A name to show for the target: the function's name or the closure's label.
    pub fn display_name(&self) -> &str {
        self.display_name_arc()
    }

    /// [`display_name`](Self::display_name), shared (no allocation).
    pub fn display_name_arc(&self) -> &Arc<str> {
        match &self.0 {
            TargetRepr::Registered { function, .. } => &function.name,
            TargetRepr::Other(other) => match &**other {
                Other::Unserializable { function, .. } => function,
                Other::Closure { name, .. } => name,
            },
        }
    }

    /// The code to run and its JSON arguments (`"null"` for closures).
    pub fn handler(&self) -> Result<(&Handler, &str)> {
        match &self.0 {
            TargetRepr::Registered { function, args } => Ok((&function.handler, args)),
            TargetRepr::Other(other) => match &**other {
                Other::Closure { handler, .. } => Ok((handler, "null")),
                Other::Unserializable { function, error } => Err(Error::new(
                    crate::ErrorKind::Serialization,
                    format!("cannot serialize the arguments of job function {function:?}: {error}"),
                )),
            },
        }
    }

    /// Checks that the target can run (its arguments serialized).
    pub(crate) fn validate(&self) -> Result<()> {
        self.handler().map(|_| ())
    }

    /// Rebuilds a registered target from its saved parts, checking the name.
    pub(crate) fn restore(registry: &JobRegistry, name: &str, args: Arc<str>) -> Result<Self> {
        Ok(JobTarget::registered(registry.get(name)?, args))
    }
}

impl fmt::Debug for JobTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            TargetRepr::Registered { function, args } => f
                .debug_struct("Registered")
                .field("function", &function.name)
                .field("args", args)
                .finish(),
            TargetRepr::Other(other) => match &**other {
                Other::Closure { name, .. } => {
                    f.debug_struct("Closure").field("name", name).finish()
                }
                Other::Unserializable { function, error } => f
                    .debug_struct("Unserializable")
                    .field("function", function)
                    .field("error", error)
                    .finish(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use serde::Deserialize;
    use std::collections::BTreeMap;

    #[derive(Serialize, Deserialize)]
    struct Order {
        id: u64,
    }

    fn run_sync(target: &JobTarget) -> JobOutcome {
        match target.handler().unwrap() {
            (Handler::Sync(f), args) => f(args),
            (Handler::Async(_), _) => panic!("expected a sync handler"),
        }
    }

    #[test]
    fn typed_handle_round_trips_arguments() {
        let registry = JobRegistry::new();
        let double = registry.register_sync("double", |o: Order| Ok::<_, BoxError>(o.id * 2));
        let target = double.call(Order { id: 21 });
        assert_eq!(target.args_json(), Some(r#"{"id":21}"#));
        assert_eq!(run_sync(&target).unwrap(), serde_json::json!(42));
    }

    #[test]
    fn errors_and_bad_arguments_become_outcomes() {
        let registry = JobRegistry::new();
        let fail = registry.register_sync("fail", |_: Order| Err::<(), _>("card declined"));
        assert_eq!(
            run_sync(&fail.call(Order { id: 1 }))
                .unwrap_err()
                .to_string(),
            "card declined"
        );
        let wrong = registry
            .target("fail", serde_json::json!("not an order"))
            .unwrap();
        let err = run_sync(&wrong).unwrap_err();
        assert!(
            err.to_string().contains("do not fit job function \"fail\""),
            "{err}"
        );
    }

    #[test]
    fn unknown_names_are_typed_errors() {
        let registry = JobRegistry::new();
        let err = registry
            .target("nope", serde_json::Value::Null)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnknownJobFunction);
    }

    #[test]
    fn unserializable_arguments_are_reported_not_panicked() {
        let registry = JobRegistry::new();
        let f = registry.register_sync("map", |_: BTreeMap<(u8, u8), u8>| ());
        let target = f.call(BTreeMap::from([((1, 2), 3)]));
        assert_eq!(
            target.validate().unwrap_err().kind(),
            ErrorKind::Serialization
        );
    }

    #[test]
    fn closures_are_not_persistable() {
        let target = JobTarget::closure("tick", || ());
        assert!(!target.is_persistable());
        assert_eq!(target.display_name(), "tick");
        assert_eq!(run_sync(&target).unwrap(), serde_json::Value::Null);
    }
}

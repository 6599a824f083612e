//! The lifecycle: the scheduler's states, the one rule that says which change each state
//! allows, start, shutdown, pause and resume, and the loop's supervision and health.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use chrono::{DateTime, Utc};
use tokio::sync::{OwnedMutexGuard, watch};

use super::{Scheduler, lock};
use crate::error::{Error, Result};
use crate::event::{Event, SchedulerErrorEvent};

/// Whether the scheduler is processing jobs (APScheduler's `STATE_*`, and `Failed`).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchedulerState {
    /// Not started, or shut down. Jobs added now wait in the pending list.
    Stopped,
    /// Started and processing jobs.
    Running,
    /// Started, but not processing jobs until resumed.
    Paused,
    /// Started, but its loop stopped on its own (it panicked, or its runtime shut down), so
    /// no job runs. Calls that change jobs, stores or executors fail; reads still answer from
    /// the stores. [`Scheduler::shutdown`] cleans up, after which it can start again. Not in
    /// APScheduler, whose loop thread dies silently.
    Failed,
}

/// A change of state asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Transition {
    Start {
        paused: bool,
    },
    Pause,
    Resume,
    Shutdown,
    /// The loop stopped on its own.
    Fail,
}

/// Why a transition is not allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    NotRunning,
    AlreadyStarted,
    Failed,
}

/// The state `transition` leads to from `from`: `Ok(None)` when it changes nothing (pausing
/// a paused scheduler), a refusal when it is not allowed. Every change of state goes through
/// here.
pub(super) fn next_state(
    from: SchedulerState,
    transition: Transition,
) -> Result<Option<SchedulerState>, Refusal> {
    use SchedulerState::*;
    match (from, transition) {
        (Stopped, Transition::Start { paused }) => Ok(Some(if paused { Paused } else { Running })),
        (Failed, Transition::Start { .. }) => Err(Refusal::Failed),
        (Running | Paused, Transition::Start { .. }) => Err(Refusal::AlreadyStarted),
        (Running, Transition::Pause) | (Paused, Transition::Resume) => {
            Ok(Some(if from == Running { Paused } else { Running }))
        }
        (Paused, Transition::Pause) | (Running, Transition::Resume) => Ok(None),
        (Failed, Transition::Pause | Transition::Resume) => Err(Refusal::Failed),
        (Stopped, Transition::Pause | Transition::Resume | Transition::Shutdown) => {
            Err(Refusal::NotRunning)
        }
        (Running | Paused | Failed, Transition::Shutdown) => Ok(Some(Stopped)),
        (Running | Paused, Transition::Fail) => Ok(Some(Failed)),
        (Stopped | Failed, Transition::Fail) => Ok(None),
    }
}

/// The loop's vital signs, from [`Scheduler::health`]: whether it is alive and when it last
/// looked at the stores.
#[non_exhaustive]
#[derive(Debug, Clone)]
pub struct Health {
    /// The scheduler's state.
    pub state: SchedulerState,
    /// Whether the loop is running (it is not when stopped or failed).
    pub loop_alive: bool,
    /// How many passes over the stores the loop has finished since start.
    pub passes: u64,
    /// When (by the scheduler's clock) the last finished pass began.
    pub last_pass: Option<DateTime<Utc>>,
    /// When the pass in progress began, if the loop is in one. A pass that began long ago
    /// points at a store that does not answer.
    pub pass_started: Option<DateTime<Utc>>,
    /// When the loop plans to look at the stores next (at the latest its maximum wait after
    /// its last pass); `None` when paused, waiting to be resumed.
    pub next_wakeup: Option<DateTime<Utc>>,
    /// Why the loop stopped, in state [`Failed`](SchedulerState::Failed).
    pub failure: Option<Arc<Error>>,
}

impl Health {
    /// Whether the scheduler is started and its loop alive: what a liveness probe asks.
    pub fn is_alive(&self) -> bool {
        matches!(self.state, SchedulerState::Running | SchedulerState::Paused) && self.loop_alive
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Passes {
    count: u64,
    last: Option<DateTime<Utc>>,
    current: Option<DateTime<Utc>>,
    next_wakeup: Option<DateTime<Utc>>,
}

/// The state machine and what goes with it: the lock that serialises start and shutdown, and
/// the flags calls wait on.
pub(super) struct Lifecycle {
    state: watch::Sender<SchedulerState>,
    /// Held by `start`, by the work of `shutdown` and by `configure`.
    lock: Arc<tokio::sync::Mutex<()>>,
    /// True while `start` runs: calls that depend on whether the scheduler runs wait for it
    /// to finish, so a job or store added meanwhile is neither stranded in the pending list
    /// nor left unstarted.
    starting: watch::Sender<bool>,
    /// True from the moment `shutdown` stops the scheduler until its work is done.
    stopping: watch::Sender<bool>,
    /// Whether the loop runs; shutdown waits for it to turn false.
    loop_active: watch::Sender<bool>,
    failure: Mutex<Option<Arc<Error>>>,
    passes: Mutex<Passes>,
    /// Whether the loop has finished a pass since the start, for the work that waits until
    /// the first runs are on their way (the cluster's first look at the other nodes).
    first_pass: watch::Sender<bool>,
    /// When the loop will look at the stores next whatever happens, in microseconds since
    /// the epoch: the wake-up its last pass planned, or [`UNPLANNED`] while a pass runs (or
    /// before the first). A job added to run at or after it needs no wake-up: adding a
    /// million jobs one by one otherwise wakes the loop (a thread switch) a million times.
    /// Shared (weakly) with the stores' contexts for the same test on the jobs other nodes
    /// write ([`StoreContext::wake_for`](crate::StoreContext::wake_for)).
    planned_wake: Arc<AtomicI64>,
}

/// [`Lifecycle::planned_wake`] when no wake-up is planned: every added job wakes the loop.
const UNPLANNED: i64 = i64::MIN;

/// [`Lifecycle::looks_by`] on the planned wake-up `planned`.
pub(super) fn looks_by(planned: &AtomicI64, run_time: Option<DateTime<Utc>>) -> bool {
    let planned = planned.load(Ordering::SeqCst);
    run_time.is_none_or(|t| planned != UNPLANNED && t.timestamp_micros() >= planned)
}

impl Lifecycle {
    pub(super) fn new() -> Self {
        Lifecycle {
            state: watch::Sender::new(SchedulerState::Stopped),
            lock: Arc::default(),
            starting: watch::Sender::new(false),
            stopping: watch::Sender::new(false),
            loop_active: watch::Sender::new(false),
            failure: Mutex::new(None),
            passes: Mutex::default(),
            first_pass: watch::Sender::new(false),
            planned_wake: Arc::new(AtomicI64::new(UNPLANNED)),
        }
    }

    pub(super) fn state(&self) -> SchedulerState {
        *self.state.borrow()
    }

    pub(super) fn subscribe(&self) -> watch::Receiver<SchedulerState> {
        self.state.subscribe()
    }

    /// Applies `transition`: answers whether the state changed, or why it may not.
    pub(super) fn apply(&self, transition: Transition) -> Result<bool> {
        let mut outcome = Ok(false);
        self.state
            .send_if_modified(|state| match next_state(*state, transition) {
                Ok(Some(next)) => {
                    *state = next;
                    outcome = Ok(true);
                    true
                }
                Ok(None) => false,
                Err(refusal) => {
                    outcome = Err(refusal);
                    false
                }
            });
        outcome.map_err(|refusal| self.refused(refusal))
    }

    /// Fails as `apply(transition)` would, changing nothing.
    pub(super) fn check(&self, transition: Transition) -> Result<()> {
        next_state(self.state(), transition)
            .map(|_| ())
            .map_err(|refusal| self.refused(refusal))
    }

    /// Fails in state `Failed`, for calls that change jobs, stores or executors.
    pub(super) fn ensure_usable(&self) -> Result<()> {
        match self.state() {
            SchedulerState::Failed => Err(self.refused(Refusal::Failed)),
            _ => Ok(()),
        }
    }

    fn refused(&self, refusal: Refusal) -> Error {
        match refusal {
            Refusal::NotRunning => Error::scheduler_state("the scheduler is not running"),
            Refusal::AlreadyStarted => Error::scheduler_state("the scheduler is already running"),
            Refusal::Failed => {
                let failure = lock(&self.failure)
                    .as_ref()
                    .map_or_else(String::new, |e| format!(" ({e})"));
                Error::scheduler_state(format!(
                    "the scheduler's loop has failed{failure}; call shutdown() to clean up, \
                     then start() again"
                ))
            }
        }
    }

    /// Waits while `start` is in progress (never while `shutdown` is: a job calling in during
    /// `shutdown(wait)` must not wait for the shutdown that waits for it).
    pub(super) async fn settled(&self) {
        let mut starting = self.starting.subscribe();
        // The sender lives in `self`, so `wait_for` cannot fail while we hold it.
        let _ = starting.wait_for(|starting| !starting).await;
    }

    pub(super) fn health(&self) -> Health {
        let passes = *lock(&self.passes);
        let state = self.state();
        Health {
            state,
            loop_alive: *self.loop_active.borrow(),
            passes: passes.count,
            last_pass: passes.last,
            pass_started: passes.current,
            next_wakeup: passes
                .next_wakeup
                .filter(|_| state == SchedulerState::Running),
            failure: lock(&self.failure).clone(),
        }
    }

    pub(super) fn pass_started(&self, at: DateTime<Utc>) {
        // Before the pass reads any store: a job added from now on may be missed by its
        // reads, so it must wake the loop. SeqCst with the load in `looks_by`: the pass's
        // reads follow this store, the adder's load follows its write to the store.
        self.planned_wake.store(UNPLANNED, Ordering::SeqCst);
        lock(&self.passes).current = Some(at);
    }

    /// Records the end of a pass and the wake-up it planned (the loop sleeps until then
    /// unless woken).
    pub(super) fn pass_finished(&self, next_wakeup: Option<DateTime<Utc>>) {
        let mut passes = lock(&self.passes);
        passes.count += 1;
        passes.last = passes.current.take();
        passes.next_wakeup = next_wakeup;
        drop(passes);
        self.first_pass
            .send_if_modified(|done| !std::mem::replace(done, true));
        let planned = next_wakeup.map_or(UNPLANNED, |t| t.timestamp_micros());
        self.planned_wake.store(planned, Ordering::SeqCst);
    }

    /// Whether the loop looks at the stores by `run_time` without being woken: a pass has
    /// planned its wake-up at or before it (and, having read the stores before that plan
    /// was published, it sees the job then). A job without a run time (paused) has nothing
    /// to wait for.
    pub(super) fn looks_by(&self, run_time: Option<DateTime<Utc>>) -> bool {
        looks_by(&self.planned_wake, run_time)
    }

    /// The planned wake-up, for the stores' contexts to test with [`looks_by`].
    pub(super) fn planned_wake(&self) -> std::sync::Weak<AtomicI64> {
        Arc::downgrade(&self.planned_wake)
    }

    /// Waits until the loop has finished a pass since the start.
    pub(super) async fn first_pass_done(&self) {
        let mut done = self.first_pass.subscribe();
        // The sender lives in `self`, so `wait_for` cannot fail while we hold it.
        let _ = done.wait_for(|done| *done).await;
    }
}

/// Clears a flag when dropped, however the code holding it ends.
struct Lowers<'a>(&'a watch::Sender<bool>);

impl Drop for Lowers<'_> {
    fn drop(&mut self) {
        self.0.send_replace(false);
    }
}

/// Marks a shutdown in progress until dropped: when its work is done, or if that work is
/// dropped unfinished (its runtime stopped), so `stopped()` never waits forever.
struct Stopping(Scheduler);

impl Drop for Stopping {
    fn drop(&mut self) {
        self.0.lifecycle().stopping.send_replace(false);
    }
}

/// Owned by the loop's task: however that task ends (normally, by a panic, or dropped with
/// its runtime), the loop is marked finished, and an end that was not a shutdown is a failure.
pub(super) struct LoopGuard {
    scheduler: Scheduler,
}

impl Drop for LoopGuard {
    fn drop(&mut self) {
        let lifecycle = self.scheduler.lifecycle();
        if matches!(
            lifecycle.state(),
            SchedulerState::Running | SchedulerState::Paused
        ) {
            self.scheduler.loop_failed(Error::scheduler_state(
                "the scheduler's loop was cancelled before the scheduler shut down \
                 (did its tokio runtime stop?)",
            ));
        }
        lifecycle.loop_active.send_replace(false);
    }
}

/// Polls a future, turning a panic into an `Err` with its payload.
struct CatchPanic<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchPanic<F> {
    type Output = std::thread::Result<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let fut = &mut self.0;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Err(payload) => Poll::Ready(Err(payload)),
        }
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "a panic with a non-string payload"
    }
}

impl Scheduler {
    pub(super) fn lifecycle(&self) -> &Lifecycle {
        &self.inner.lifecycle
    }

    /// Starts processing jobs. Must be called within a tokio runtime; the loop runs as a task
    /// on it.
    ///
    /// Starts the executors and the stores (each kind in the order added, the two kinds side
    /// by side), then adds the pending jobs (defaults filled, first run times computed now).
    /// Fails with [`SchedulerState`](crate::ErrorKind::SchedulerState) if already started (or
    /// failed: shut it down first).
    pub async fn start(&self) -> Result<()> {
        self.start_with(false).await
    }

    /// Starts with job processing paused, as APScheduler's `start(paused=True)`.
    pub async fn start_paused(&self) -> Result<()> {
        self.start_with(true).await
    }

    async fn start_with(&self, paused: bool) -> Result<()> {
        let (runtime, guard) = self.start_without_loop(paused).await?;
        runtime.spawn(self.clone().run_loop(guard));
        Ok(())
    }

    /// Everything `start` does but running the loop, which the caller then runs with
    /// [`run_loop`](Self::run_loop) (the blocking scheduler runs it on its own thread).
    /// Answers the runtime to run it on.
    pub(super) async fn start_without_loop(
        &self,
        paused: bool,
    ) -> Result<(tokio::runtime::Handle, LoopGuard)> {
        let lifecycle = self.lifecycle();
        let _lifecycle = lifecycle.lock.lock().await;
        lifecycle.check(Transition::Start { paused })?;
        lifecycle.starting.send_replace(true);
        let _started = Lowers(&lifecycle.starting);
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| Error::scheduler_state("start() must be called within a tokio runtime"))?;
        *lock(&self.inner.runtime) = Some(runtime.clone());

        let executors = self.executor_snapshot();
        let stores = self.store_snapshot();
        let mut started_executors = Vec::new();
        let mut started_stores = Vec::new();
        let outcome: Result<()> = async {
            // The executors start while the stores connect: a thread pool's first thread or a
            // process pool's workers need not wait for a server's answer, nor it for them.
            let starting_executors = async {
                for (alias, executor) in &executors {
                    executor
                        .start(self.executor_context(alias, &runtime))
                        .await?;
                    started_executors.push(executor.clone());
                }
                Ok::<_, Error>(())
            };
            let starting_stores = async {
                for (alias, store) in &stores {
                    store.start(self.store_context(alias)).await?;
                    started_stores.push(store.clone());
                }
                Ok::<_, Error>(())
            };
            // Polled first, the stores send their connection requests before the executors'
            // work starts on this thread.
            let (stores_started, executors_started) =
                tokio::join!(starting_stores, starting_executors);
            stores_started?;
            executors_started?;
            self.start_cluster(&runtime).await;
            self.flush_pending().await
        }
        .await;
        if let Err(e) = outcome {
            // Leave nothing half-started: the caller can fix the cause and start again.
            for store in started_stores {
                if let Err(err) = store.shutdown().await {
                    crate::logging::log_warn!(error = %err, "job store failed to shut down after a failed start");
                }
            }
            for executor in started_executors {
                if let Err(err) = executor.shutdown(false).await {
                    crate::logging::log_warn!(error = %err, "executor failed to shut down after a failed start");
                }
            }
            return Err(e);
        }

        *lock(&lifecycle.failure) = None;
        *lock(&lifecycle.passes) = Passes::default();
        lifecycle.first_pass.send_replace(false);
        lifecycle.loop_active.send_replace(true);
        let guard = LoopGuard {
            scheduler: self.clone(),
        };
        lifecycle.apply(Transition::Start { paused })?;
        tracing::info!("scheduler started");
        crate::telemetry::describe();
        self.inner.events.publish(Event::SchedulerStarted);
        if !paused {
            self.wakeup();
        }
        Ok((runtime, guard))
    }

    /// Runs the loop until the scheduler stops. A panic in it, or the end of its task before
    /// a shutdown, moves the scheduler to [`Failed`](SchedulerState::Failed) with an error
    /// event and an error in the log: the loop never dies silently.
    pub(super) async fn run_loop(self, guard: LoopGuard) {
        let mut main = CatchPanic(Box::pin(self.clone().main_loop()));
        if let Err(payload) = (&mut main).await {
            let message = panic_message(&*payload);
            self.loop_failed(Error::scheduler_state(format!(
                "the scheduler's loop panicked: {message}"
            )));
        }
        // Dropped before the guard: a panic leaves the loop's locks inside it.
        drop(main);
        drop(guard);
    }

    /// Records that the loop stopped on its own.
    pub(super) fn loop_failed(&self, error: Error) {
        let error = Arc::new(error);
        // `Fail` is never refused.
        let failed = self.lifecycle().apply(Transition::Fail).unwrap_or(false);
        if failed {
            *lock(&self.lifecycle().failure) = Some(error.clone());
        }
        crate::logging::log_error!(
            error = %error,
            "the scheduler's loop stopped: no job runs until the scheduler is shut down and \
             started again"
        );
        self.inner
            .events
            .publish(Event::SchedulerError(SchedulerErrorEvent {
                jobstore: None,
                error,
            }));
    }

    /// Stops processing, shuts down executors (waiting for running jobs when `wait`) and
    /// stores (a memory store forgets its jobs, as in APScheduler), and publishes
    /// [`Event::SchedulerShutdown`]. Running jobs are never interrupted.
    ///
    /// With `wait`, it returns once every listener has handled every event published before
    /// it, `SchedulerShutdown` included. Called with `wait` from inside one of this
    /// scheduler's jobs or listeners (which it would wait for), it fails at once with
    /// [`SchedulerState`](crate::ErrorKind::SchedulerState).
    ///
    /// The work runs as a task of its own: a caller that stops waiting (a timeout, a dropped
    /// future) does not stop the shutdown.
    pub async fn shutdown(&self, wait: bool) -> Result<()> {
        if wait {
            self.refuse_to_wait_for_itself()?;
        }
        let lifecycle = self.lifecycle();
        // Fails at once when already stopped, even while another shutdown holds the lock.
        lifecycle.check(Transition::Shutdown)?;
        let held = lifecycle.lock.clone().lock_owned().await;
        // Raised before the state changes, so `stopped()` never sees Stopped without it.
        lifecycle.stopping.send_replace(true);
        let stopping = Stopping(self.clone());
        lifecycle.apply(Transition::Shutdown)?;
        self.wakeup();
        let work = self.clone().finish_shutdown(held, wait, stopping);
        // On the caller's runtime, which is alive (the scheduler's may not be), else on the
        // scheduler's.
        let runtime = tokio::runtime::Handle::try_current()
            .ok()
            .or_else(|| lock(&self.inner.runtime).clone());
        let Some(runtime) = runtime else {
            work.await;
            return Ok(());
        };
        runtime.spawn(work).await.map_err(|e| {
            Error::scheduler_state("the runtime stopped before the shutdown finished")
                .with_source(e)
        })
    }

    async fn finish_shutdown(self, held: OwnedMutexGuard<()>, wait: bool, stopping: Stopping) {
        let lifecycle = self.lifecycle();
        // The loop finishes its current pass, so no job is submitted after this point.
        let mut active = lifecycle.loop_active.subscribe();
        let _ = active.wait_for(|active| !active).await;
        for (alias, executor) in self.executor_snapshot() {
            if let Err(e) = executor.shutdown(wait).await {
                crate::logging::log_error!(executor = %alias, error = %e, "executor failed to shut down");
            }
        }
        self.leave_cluster().await;
        for (alias, store) in self.store_snapshot() {
            if let Err(e) = store.shutdown().await {
                crate::logging::log_error!(jobstore = %alias, error = %e, "job store failed to shut down");
            }
        }
        tracing::info!("scheduler has been shut down");
        self.inner.events.publish(Event::SchedulerShutdown);
        // Released before waiting for listeners: one that starts the scheduler again on
        // `SchedulerShutdown` must not wait for this shutdown, which waits for it.
        drop(held);
        if wait {
            self.inner.events.flush_listeners().await;
        }
        drop(stopping);
    }

    /// Refuses a `shutdown(wait = true)` that would wait for the code calling it.
    pub(super) fn refuse_to_wait_for_itself(&self) -> Result<()> {
        let bus = self.inner.events.id();
        if crate::executor::inside_job_of(bus) {
            return Err(Error::scheduler_state(
                "shutdown(wait = true) was called from inside one of this scheduler's jobs: it \
                 would wait for that job to finish, and so forever; call shutdown(false) there",
            ));
        }
        if crate::event::on_listener_thread_of(bus) {
            return Err(Error::scheduler_state(
                "shutdown(wait = true) was called from one of this scheduler's event listeners: \
                 it would wait for that listener to handle the events before it, and so \
                 forever; call shutdown(false) there",
            ));
        }
        Ok(())
    }

    /// Pauses job processing; jobs stay scheduled and runs in progress go on.
    pub fn pause(&self) -> Result<()> {
        self.set_paused(true)
    }

    /// Resumes job processing after [`pause`](Self::pause) or [`start_paused`](Self::start_paused).
    pub fn resume(&self) -> Result<()> {
        self.set_paused(false)
    }

    fn set_paused(&self, paused: bool) -> Result<()> {
        let transition = if paused {
            Transition::Pause
        } else {
            Transition::Resume
        };
        // Pausing a paused scheduler publishes nothing, as in APScheduler.
        if self.lifecycle().apply(transition)? {
            if paused {
                tracing::info!("paused scheduler job processing");
                self.inner.events.publish(Event::SchedulerPaused);
            } else {
                tracing::info!("resumed scheduler job processing");
                self.inner.events.publish(Event::SchedulerResumed);
                self.wakeup();
            }
        }
        Ok(())
    }

    /// Waits while `start` is in progress.
    pub(super) async fn settled(&self) {
        self.lifecycle().settled().await;
    }

    /// The current state.
    pub fn state(&self) -> SchedulerState {
        self.lifecycle().state()
    }

    /// Whether the scheduler is started (running, paused or failed): APScheduler's
    /// `running`. A failed scheduler still needs a [`shutdown`](Self::shutdown).
    pub fn running(&self) -> bool {
        self.state() != SchedulerState::Stopped
    }

    /// Completes when the scheduler is (or becomes) stopped and its shutdown has finished.
    pub async fn stopped(&self) {
        let lifecycle = self.lifecycle();
        let mut state = lifecycle.state.subscribe();
        let mut stopping = lifecycle.stopping.subscribe();
        loop {
            let stopped = *state.borrow_and_update() == SchedulerState::Stopped;
            if stopped && !*stopping.borrow_and_update() {
                return;
            }
            // The senders live in `self`, so neither can close while we wait.
            tokio::select! {
                _ = state.changed() => {}
                _ = stopping.changed() => {}
            }
        }
    }

    /// Whether the loop is alive and when it last looked at the stores, for a health check.
    pub fn health(&self) -> Health {
        self.lifecycle().health()
    }

    /// The lock `configure` holds while it replaces the scheduler's settings.
    pub(super) fn lifecycle_lock(&self) -> &tokio::sync::Mutex<()> {
        &self.lifecycle().lock
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SchedulerState::*;

    const ALL_STATES: [SchedulerState; 4] = [Stopped, Running, Paused, Failed];

    #[test]
    fn an_added_job_needs_no_wake_up_only_at_or_after_a_planned_one() {
        let lifecycle = Lifecycle::new();
        let planned = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let before = planned - chrono::TimeDelta::microseconds(1);
        assert!(!lifecycle.looks_by(Some(planned)), "no pass yet: wake");
        assert!(lifecycle.looks_by(None), "a paused job never needs one");
        lifecycle.pass_started(before);
        lifecycle.pass_finished(Some(planned));
        assert!(lifecycle.looks_by(Some(planned)));
        assert!(lifecycle.looks_by(Some(planned + chrono::TimeDelta::seconds(1))));
        assert!(
            !lifecycle.looks_by(Some(before)),
            "earlier than planned: wake"
        );
        lifecycle.pass_started(planned);
        assert!(
            !lifecycle.looks_by(Some(planned)),
            "a pass that may have read the stores already: wake"
        );
        lifecycle.pass_finished(None);
        assert!(!lifecycle.looks_by(Some(planned)), "nothing planned: wake");
    }

    #[test]
    fn start_only_from_stopped() {
        for from in ALL_STATES {
            let to = next_state(from, Transition::Start { paused: true });
            match from {
                Stopped => assert_eq!(to, Ok(Some(Paused))),
                Failed => assert_eq!(to, Err(Refusal::Failed)),
                _ => assert_eq!(to, Err(Refusal::AlreadyStarted)),
            }
        }
        assert_eq!(
            next_state(Stopped, Transition::Start { paused: false }),
            Ok(Some(Running))
        );
    }

    #[test]
    fn pause_and_resume_toggle_and_repeat_as_no_ops() {
        assert_eq!(next_state(Running, Transition::Pause), Ok(Some(Paused)));
        assert_eq!(next_state(Paused, Transition::Pause), Ok(None));
        assert_eq!(next_state(Paused, Transition::Resume), Ok(Some(Running)));
        assert_eq!(next_state(Running, Transition::Resume), Ok(None));
        for t in [Transition::Pause, Transition::Resume] {
            assert_eq!(next_state(Stopped, t), Err(Refusal::NotRunning));
            assert_eq!(next_state(Failed, t), Err(Refusal::Failed));
        }
    }

    #[test]
    fn shutdown_from_any_started_state_and_failure_only_while_started() {
        for from in [Running, Paused, Failed] {
            assert_eq!(next_state(from, Transition::Shutdown), Ok(Some(Stopped)));
        }
        assert_eq!(
            next_state(Stopped, Transition::Shutdown),
            Err(Refusal::NotRunning)
        );
        assert_eq!(next_state(Running, Transition::Fail), Ok(Some(Failed)));
        assert_eq!(next_state(Paused, Transition::Fail), Ok(Some(Failed)));
        // A loop ending during a shutdown, or failing twice, changes nothing.
        assert_eq!(next_state(Stopped, Transition::Fail), Ok(None));
        assert_eq!(next_state(Failed, Transition::Fail), Ok(None));
    }

    #[test]
    fn refusals_in_failed_name_the_failure() {
        let lifecycle = Lifecycle::new();
        lifecycle
            .apply(Transition::Start { paused: false })
            .unwrap();
        lifecycle.apply(Transition::Fail).unwrap();
        *lock(&lifecycle.failure) = Some(Arc::new(Error::scheduler_state("boom")));
        let err = lifecycle.apply(Transition::Pause).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::SchedulerState);
        assert!(err.to_string().contains("(boom)"), "{err}");
        assert!(lifecycle.ensure_usable().is_err());
        assert!(lifecycle.apply(Transition::Shutdown).unwrap());
        assert!(lifecycle.ensure_usable().is_ok());
    }

    #[test]
    fn health_counts_passes() {
        let lifecycle = Lifecycle::new();
        let at = DateTime::from_timestamp(1_000, 0).unwrap();
        lifecycle.pass_started(at);
        assert_eq!(lifecycle.health().pass_started, Some(at));
        lifecycle.pass_finished(Some(at));
        let health = lifecycle.health();
        assert_eq!((health.passes, health.last_pass), (1, Some(at)));
        assert_eq!(health.pass_started, None);
        assert!(!health.is_alive());
    }
}

//! The bus: a bounded queue per subscriber, filled by publishers and drained by a listener's
//! thread or an [`EventStream`].

use std::cell::Cell;
use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::{Event, EventMask};

/// What a subscriber's full queue does with a new event.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// Drop the oldest queued event; the publisher never waits. The subscriber learns how
    /// many it lost from an [`Event::EventsLost`] in their place.
    DropOldest,
    /// The publisher waits for room: backpressure, as APScheduler's synchronous listeners
    /// slow the scheduler down. It waits at most the delivery's
    /// [`patience`](Delivery::patience), and never where waiting could not end (see
    /// [`Delivery::wait`]); then it drops the oldest event as [`DropOldest`](Self::DropOldest)
    /// does.
    Wait,
}

/// How events reach one subscriber: how many its queue holds, and what happens when it is
/// full.
///
/// The default, [`Delivery::default()`], holds [`DEFAULT_CAPACITY`](Self::DEFAULT_CAPACITY)
/// events and drops the oldest when full. It drops rather than waits because the publisher is
/// often the scheduler's loop, which holds the lock that job changes take: a listener that
/// calls the scheduler (say `modify_job` on `JobExecuted`) while the loop waits for it to make
/// room would deadlock it. Dropping keeps the scheduler running and memory bounded; the
/// subscriber is told what it lost, and the log warns when a backlog builds up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    capacity: usize,
    overflow: Overflow,
    patience: Duration,
}

impl Delivery {
    /// The default queue size: about 1-2 MB of events per subscriber at most.
    pub const DEFAULT_CAPACITY: usize = 10_000;
    /// How long a waiting publisher waits for room by default before it drops an event.
    pub const DEFAULT_PATIENCE: Duration = Duration::from_secs(10);

    /// A queue of `capacity` events (at least 1) that drops the oldest when full.
    pub fn drop_oldest(capacity: usize) -> Self {
        Delivery {
            capacity: capacity.max(1),
            overflow: Overflow::DropOldest,
            patience: Self::DEFAULT_PATIENCE,
        }
    }

    /// A queue of `capacity` events (at least 1) whose publishers wait for room when it is
    /// full, for at most the [`patience`](Self::patience).
    ///
    /// A publisher never waits on the subscriber's own listener thread (it would wait for
    /// itself) nor on a current-thread tokio runtime (the reader may need that very thread);
    /// there the oldest event is dropped instead. On a multi-thread runtime the wait hands the
    /// worker's other tasks to another thread (`tokio::task::block_in_place`). A listener
    /// with this delivery must not wait on the scheduler in its callback (a job change waits
    /// for the loop, which may be waiting for the listener): that costs the patience each time.
    pub fn wait(capacity: usize) -> Self {
        Delivery {
            overflow: Overflow::Wait,
            ..Self::drop_oldest(capacity)
        }
    }

    /// How long a waiting publisher waits for room before it drops the oldest event instead
    /// (default [`DEFAULT_PATIENCE`](Self::DEFAULT_PATIENCE)).
    pub fn patience(mut self, patience: Duration) -> Self {
        self.patience = patience;
        self
    }

    /// How many events the queue holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// What a full queue does.
    pub fn overflow(&self) -> Overflow {
        self.overflow
    }

    /// The backlog at which a warning is logged: half the capacity.
    fn warn_at(&self) -> usize {
        (self.capacity / 2).max(1)
    }
}

impl Default for Delivery {
    fn default() -> Self {
        Delivery::drop_oldest(Self::DEFAULT_CAPACITY)
    }
}

thread_local! {
    /// On a listener's thread: (bus, subscriber) it belongs to.
    static LISTENER: Cell<Option<(u64, u64)>> = const { Cell::new(None) };
}

/// Whether the current thread is a listener thread of the bus `bus_id`: a call there that
/// waits for the bus's listeners would wait for itself.
pub(crate) fn on_listener_thread_of(bus_id: u64) -> bool {
    LISTENER
        .with(|l| l.get())
        .is_some_and(|(bus, _)| bus == bus_id)
}

/// Identifies a listener added with [`EventBus::add_listener`], to remove it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ListenerId(u64);

/// One subscriber's queue, shared by the publishers and its reader.
struct Queue {
    id: u64,
    delivery: Delivery,
    state: Mutex<QueueState>,
    /// The listener thread waits here for events.
    readable: Condvar,
    /// Waiting publishers wait here for room.
    writable: Condvar,
    /// Woken after the listener finishes an event, for [`EventBus::flush_listeners`].
    progress: tokio::sync::Notify,
}

#[derive(Default)]
struct QueueState {
    events: VecDeque<Event>,
    /// Events dropped since the subscriber was last told.
    lost: u64,
    /// Events ever queued, dropped ones included.
    queued: u64,
    /// Events done with: handled by the listener, or dropped.
    finished: u64,
    /// The subscriber is gone (removed, or its stream dropped): the backlog is freed and
    /// nothing more is queued.
    closed: bool,
    /// The bus is gone: the reader gets what is queued, then the end.
    ended: bool,
    /// A stream reader waiting for an event.
    reader: Option<Waker>,
    /// The listener thread waits for an event.
    listener_waiting: bool,
    /// Publishers waiting for room.
    waiting_publishers: usize,
    /// Warnings logged in the current backlog episode: 1 for a backlog, 2 once dropping.
    warned: u8,
    /// Warnings logged in all, for tests.
    warnings: u32,
}

/// How many times a listener thread looks at its empty queue again (spinning, then yielding)
/// before it sleeps.
const LISTENER_IDLE_ROUNDS: u32 = 10;

/// Where a waiting publisher may wait.
enum WaitMode {
    /// Block this thread (no runtime here).
    Block,
    /// Block, handing the runtime worker's other tasks to another thread.
    BlockInPlace,
    /// Waiting could not end (own listener thread, current-thread runtime): drop instead.
    Drop,
}

impl Queue {
    fn new(id: u64, delivery: Delivery) -> Self {
        Queue {
            id,
            delivery,
            state: Mutex::default(),
            readable: Condvar::new(),
            writable: Condvar::new(),
            progress: tokio::sync::Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, QueueState> {
        // Queue operations do not panic halfway (an allocation failure aborts), so the state
        // behind a poisoned lock is sound.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `event`; `false` when the subscriber is gone.
    fn push(&self, event: &Event) -> bool {
        let mut st = self.lock();
        if st.closed {
            return false;
        }
        if st.events.len() >= self.delivery.capacity {
            st = self.make_room(st);
            if st.closed {
                return false;
            }
        }
        st.events.push_back(event.clone());
        st.queued += 1;
        if st.warned == 0 && st.events.len() >= self.delivery.warn_at() {
            st.warned = 1;
            st.warnings += 1;
            crate::logging::log_warn!(
                subscriber = self.id,
                backlog = st.events.len(),
                capacity = self.delivery.capacity,
                "an event subscriber is falling behind"
            );
        }
        let reader = st.reader.take();
        let listener = st.listener_waiting;
        drop(st);
        if listener {
            self.readable.notify_one();
        }
        if let Some(reader) = reader {
            reader.wake();
        }
        true
    }

    /// Makes room in a full queue: waits for it when the delivery says so and waiting can
    /// end, then drops the oldest events for what is still missing.
    fn make_room<'a>(&'a self, mut st: MutexGuard<'a, QueueState>) -> MutexGuard<'a, QueueState> {
        if self.delivery.overflow == Overflow::Wait {
            match self.wait_mode() {
                WaitMode::Block => st = self.wait_for_room(st),
                WaitMode::BlockInPlace => {
                    drop(st);
                    st = tokio::task::block_in_place(|| self.wait_for_room(self.lock()));
                }
                WaitMode::Drop => {}
            }
        }
        while !st.closed && st.events.len() >= self.delivery.capacity {
            st.events.pop_front();
            st.lost += 1;
            st.finished += 1;
            if st.warned < 2 {
                st.warned = 2;
                st.warnings += 1;
                crate::logging::log_warn!(
                    subscriber = self.id,
                    capacity = self.delivery.capacity,
                    "an event subscriber's queue is full; dropping its oldest events"
                );
            }
        }
        st
    }

    fn wait_mode(&self) -> WaitMode {
        if LISTENER
            .with(|l| l.get())
            .is_some_and(|(_, sub)| sub == self.id)
        {
            return WaitMode::Drop;
        }
        match tokio::runtime::Handle::try_current() {
            Err(_) => WaitMode::Block,
            Ok(handle) => match handle.runtime_flavor() {
                tokio::runtime::RuntimeFlavor::MultiThread => WaitMode::BlockInPlace,
                _ => WaitMode::Drop,
            },
        }
    }

    fn wait_for_room<'a>(
        &'a self,
        mut st: MutexGuard<'a, QueueState>,
    ) -> MutexGuard<'a, QueueState> {
        let deadline = Instant::now() + self.delivery.patience;
        st.waiting_publishers += 1;
        while !st.closed && st.events.len() >= self.delivery.capacity {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                crate::logging::log_warn!(
                    subscriber = self.id,
                    patience = ?self.delivery.patience,
                    "an event subscriber made no room within its patience; dropping its oldest event"
                );
                break;
            }
            st = self
                .writable
                .wait_timeout(st, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        st.waiting_publishers -= 1;
        st
    }

    /// The next event for the reader: the count of lost events first, if any.
    fn take(&self, st: &mut QueueState) -> Option<Event> {
        if st.lost > 0 {
            return Some(Event::EventsLost {
                count: std::mem::take(&mut st.lost),
            });
        }
        let event = st.events.pop_front()?;
        if st.warned > 0 && st.events.len() <= self.delivery.warn_at() / 2 {
            st.warned = 0;
        }
        if st.waiting_publishers > 0 {
            self.writable.notify_one();
        }
        Some(event)
    }

    /// Blocks the listener thread until an event comes; `None` once the listener is removed
    /// or the bus is gone and the queue drained.
    ///
    /// An empty queue is looked at again a few times before the thread sleeps: a listener
    /// that keeps up would otherwise be woken, at the cost of a system call on the
    /// publisher's side, for every event.
    fn next_for_listener(&self) -> Option<Event> {
        let mut idle_rounds = 0u32;
        loop {
            let mut st = self.lock();
            if st.closed {
                return None;
            }
            if let Some(event) = self.take(&mut st) {
                return Some(event);
            }
            if st.ended {
                return None;
            }
            if idle_rounds < LISTENER_IDLE_ROUNDS {
                drop(st);
                idle_rounds += 1;
                if idle_rounds <= 6 {
                    for _ in 0..1u32 << idle_rounds {
                        std::hint::spin_loop();
                    }
                } else {
                    std::thread::yield_now();
                }
                continue;
            }
            idle_rounds = 0;
            st.listener_waiting = true;
            let mut st = self.readable.wait(st).unwrap_or_else(|p| p.into_inner());
            st.listener_waiting = false;
        }
    }

    /// The listener finished an event it took.
    fn finished(&self, event: &Event) {
        if !matches!(event, Event::EventsLost { .. }) {
            self.lock().finished += 1;
        }
        self.progress.notify_waiters();
    }

    fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        let mut st = self.lock();
        if let Some(event) = self.take(&mut st) {
            if !matches!(event, Event::EventsLost { .. }) {
                st.finished += 1;
            }
            return Poll::Ready(Some(event));
        }
        if st.closed || st.ended {
            return Poll::Ready(None);
        }
        if !st.reader.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            st.reader = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    /// The subscriber is gone: frees the backlog and releases everyone waiting on it.
    fn close(&self) {
        let mut st = self.lock();
        st.closed = true;
        st.finished += st.events.len() as u64;
        st.events = VecDeque::new();
        let reader = st.reader.take();
        drop(st);
        self.wake_all(reader);
    }

    /// The bus is gone: the reader drains what is queued, then ends.
    fn end(&self) {
        let mut st = self.lock();
        st.ended = true;
        let reader = st.reader.take();
        drop(st);
        self.wake_all(reader);
    }

    fn wake_all(&self, reader: Option<Waker>) {
        self.readable.notify_all();
        self.writable.notify_all();
        self.progress.notify_waiters();
        if let Some(reader) = reader {
            reader.wake();
        }
    }

    /// Waits until every event queued before the call is finished (or the listener is gone).
    async fn flush(&self) {
        let target = self.lock().queued;
        loop {
            let progress = self.progress.notified();
            tokio::pin!(progress);
            progress.as_mut().enable();
            {
                let st = self.lock();
                if st.finished >= target || st.closed || st.ended {
                    return;
                }
            }
            progress.await;
        }
    }

    fn len(&self) -> usize {
        self.lock().events.len()
    }
}

struct Subscriber {
    id: u64,
    mask: EventMask,
    queue: Arc<Queue>,
    /// A listener callback on its own thread, rather than a stream.
    listener: bool,
}

struct BusInner {
    id: u64,
    /// Replaced, never changed in place, so publishers deliver from a snapshot without
    /// holding the lock (a waiting delivery must not block `remove_listener`).
    subscribers: RwLock<Arc<[Arc<Subscriber>]>>,
    /// The union of all subscribers' masks, so publishing an event nobody wants costs one load.
    wanted: AtomicU32,
    next_id: AtomicU64,
}

impl Default for BusInner {
    fn default() -> Self {
        static NEXT_BUS: AtomicU64 = AtomicU64::new(1);
        BusInner {
            id: NEXT_BUS.fetch_add(1, Ordering::Relaxed),
            subscribers: RwLock::new(Arc::new([])),
            wanted: AtomicU32::new(0),
            next_id: AtomicU64::new(1),
        }
    }
}

impl Drop for BusInner {
    fn drop(&mut self) {
        let subscribers = self
            .subscribers
            .get_mut()
            .unwrap_or_else(|p| p.into_inner());
        for sub in subscribers.iter() {
            sub.queue.end();
        }
    }
}

/// Delivers events to listeners and streams; cloning shares the bus.
///
/// Each subscriber has its own bounded queue with the [`Delivery`] it chose (the default
/// drops the oldest event when full). Publishing to nobody costs one atomic load.
#[derive(Clone, Default)]
pub struct EventBus {
    inner: Arc<BusInner>,
}

impl EventBus {
    /// A bus without subscribers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Identifies this bus (and so its scheduler) among all buses of the process.
    pub(crate) fn id(&self) -> u64 {
        self.inner.id
    }

    /// Whether any subscriber wants events of `code`: lets publishers skip building events
    /// nobody reads.
    pub fn wants(&self, code: EventMask) -> bool {
        EventMask::from_bits_retain(self.inner.wanted.load(Ordering::Acquire)).intersects(code)
    }

    /// Queues `event` for every subscriber whose mask includes it.
    ///
    /// Never waits, unless a subscriber chose [`Delivery::wait`] and its queue is full.
    pub fn publish(&self, event: Event) {
        let code = event.code();
        if !self.wants(code) {
            return;
        }
        let subscribers = self.snapshot();
        let mut gone = false;
        for sub in subscribers.iter().filter(|s| s.mask.intersects(code)) {
            gone |= !sub.queue.push(&event);
        }
        if gone {
            self.prune();
        }
    }

    /// A stream of the events in `mask`, from now on, in the order they were published, with
    /// the default [`Delivery`] (10,000 events, the oldest dropped when full).
    pub fn subscribe(&self, mask: EventMask) -> EventStream {
        self.subscribe_with(mask, Delivery::default())
    }

    /// A stream of the events in `mask`, queued as `delivery` says.
    pub fn subscribe_with(&self, mask: EventMask, delivery: Delivery) -> EventStream {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let queue = Arc::new(Queue::new(id, delivery));
        self.add(Subscriber {
            id,
            mask,
            queue: queue.clone(),
            listener: false,
        });
        EventStream { queue }
    }

    /// Calls `listener` with every event in `mask`, on a thread of its own, with the default
    /// [`Delivery`] (10,000 events queued, the oldest dropped when full).
    ///
    /// A listener that panics is logged and keeps receiving later events, as in APScheduler.
    pub fn add_listener<F>(&self, listener: F, mask: EventMask) -> ListenerId
    where
        F: Fn(&Event) + Send + 'static,
    {
        self.add_listener_with(listener, mask, Delivery::default())
    }

    /// Calls `listener` with every event in `mask`, on a thread of its own, queued as
    /// `delivery` says.
    pub fn add_listener_with<F>(
        &self,
        listener: F,
        mask: EventMask,
        delivery: Delivery,
    ) -> ListenerId
    where
        F: Fn(&Event) + Send + 'static,
    {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let queue = Arc::new(Queue::new(id, delivery));
        self.add(Subscriber {
            id,
            mask,
            queue: queue.clone(),
            listener: true,
        });
        let bus = self.inner.id;
        let spawned = std::thread::Builder::new()
            .name(format!("scheduler-listener-{id}"))
            .spawn(move || {
                LISTENER.with(|l| l.set(Some((bus, id))));
                while let Some(event) = queue.next_for_listener() {
                    let call = std::panic::AssertUnwindSafe(|| listener(&event));
                    if std::panic::catch_unwind(call).is_err() {
                        crate::logging::log_error!(listener = id, %event, "event listener panicked");
                    }
                    queue.finished(&event);
                }
            });
        if let Err(e) = spawned {
            crate::logging::log_error!(error = %e, "cannot start a thread for an event listener");
            self.remove(id);
        }
        ListenerId(id)
    }

    /// Stops delivering to a listener and frees its backlog: events queued and not yet handed
    /// to it are dropped (the one it is handling finishes). Answers whether it was registered.
    pub fn remove_listener(&self, id: ListenerId) -> bool {
        self.remove(id.0)
    }

    /// Waits until every listener has finished every event published before the call (or
    /// has been removed). Streams are not waited for: their events are already queued.
    pub(crate) async fn flush_listeners(&self) {
        let subscribers = self.snapshot();
        for sub in subscribers.iter().filter(|s| s.listener) {
            sub.queue.flush().await;
        }
    }

    fn snapshot(&self) -> Arc<[Arc<Subscriber>]> {
        self.inner
            .subscribers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces the subscriber list with `change` applied to it.
    fn update(&self, change: impl FnOnce(&mut Vec<Arc<Subscriber>>)) {
        let mut subscribers = self
            .inner
            .subscribers
            .write()
            .unwrap_or_else(|p| p.into_inner());
        let mut list = subscribers.to_vec();
        change(&mut list);
        let wanted = list.iter().fold(EventMask::empty(), |acc, s| acc | s.mask);
        *subscribers = list.into();
        self.inner.wanted.store(wanted.bits(), Ordering::Release);
    }

    fn add(&self, subscriber: Subscriber) {
        let subscriber = Arc::new(subscriber);
        self.update(|list| list.push(subscriber));
    }

    fn remove(&self, id: u64) -> bool {
        let mut removed = None;
        self.update(|list| {
            if let Some(index) = list.iter().position(|s| s.id == id) {
                removed = Some(list.remove(index));
            }
        });
        match removed {
            Some(sub) => {
                sub.queue.close();
                true
            }
            None => false,
        }
    }

    fn prune(&self) {
        self.update(|list| list.retain(|s| !s.queue.lock().closed));
    }
}

impl fmt::Debug for EventBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventBus")
            .field("subscribers", &self.snapshot().len())
            .field(
                "wanted",
                &EventMask::from_bits_retain(self.inner.wanted.load(Ordering::Relaxed)),
            )
            .finish()
    }
}

/// Events from [`EventBus::subscribe`]: `recv().await` them or use it as a `Stream`.
///
/// Dropping the stream unsubscribes it and frees its backlog.
pub struct EventStream {
    queue: Arc<Queue>,
}

impl EventStream {
    /// The next event; `None` once the bus is gone and the queue drained.
    pub async fn recv(&mut self) -> Option<Event> {
        std::future::poll_fn(|cx| self.queue.poll_next(cx)).await
    }

    /// The next event if one is queued, without waiting.
    pub fn try_recv(&mut self) -> Option<Event> {
        let mut st = self.queue.lock();
        let event = self.queue.take(&mut st);
        if event
            .as_ref()
            .is_some_and(|e| !matches!(e, Event::EventsLost { .. }))
        {
            st.finished += 1;
        }
        event
    }

    /// How many events are queued, not yet received.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether no event is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        self.queue.close();
    }
}

impl fmt::Debug for EventStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventStream")
            .field("queued", &self.len())
            .field("delivery", &self.queue.delivery)
            .finish()
    }
}

impl futures_core::Stream for EventStream {
    type Item = Event;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.queue.poll_next(cx)
    }
}

#[cfg(test)]
mod tests;

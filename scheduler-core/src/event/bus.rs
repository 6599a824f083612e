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
            tracing::warn!(
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
                tracing::warn!(
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
                tracing::warn!(
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
    fn next_for_listener(&self) -> Option<Event> {
        let mut st = self.lock();
        loop {
            if st.closed {
                return None;
            }
            if let Some(event) = self.take(&mut st) {
                return Some(event);
            }
            if st.ended {
                return None;
            }
            st.listener_waiting = true;
            st = self.readable.wait(st).unwrap_or_else(|p| p.into_inner());
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
                        tracing::error!(listener = id, %event, "event listener panicked");
                    }
                    queue.finished(&event);
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start a thread for an event listener");
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
mod tests {
    use super::*;
    use crate::event::JobEvent;
    use std::sync::mpsc;

    fn added(id: &str) -> Event {
        Event::JobAdded(JobEvent {
            job_id: id.into(),
            jobstore: "default".into(),
        })
    }

    fn ids(events: &[Event]) -> Vec<String> {
        events
            .iter()
            .map(|e| match e {
                Event::EventsLost { count } => format!("lost {count}"),
                other => other.job_id().unwrap_or("?").to_owned(),
            })
            .collect()
    }

    /// A listener that reports each event on a channel, and blocks on `gate` for the events
    /// `hold` picks until the test sends a token.
    fn gated_listener(
        bus: &EventBus,
        delivery: Delivery,
        hold: impl Fn(&Event) -> bool + Send + 'static,
    ) -> (
        ListenerId,
        mpsc::Receiver<Event>,
        mpsc::Sender<()>,
        mpsc::Receiver<()>,
    ) {
        let (seen_tx, seen_rx) = mpsc::channel();
        let (gate_tx, gate_rx) = mpsc::channel::<()>();
        let (entered_tx, entered_rx) = mpsc::channel();
        let gate = Mutex::new(gate_rx);
        let id = bus.add_listener_with(
            move |e| {
                if hold(e) {
                    let _ = entered_tx.send(());
                    let _ = gate.lock().unwrap().recv_timeout(Duration::from_secs(10));
                }
                let _ = seen_tx.send(e.clone());
            },
            EventMask::ALL,
            delivery,
        );
        (id, seen_rx, gate_tx, entered_rx)
    }

    fn collect(rx: &mpsc::Receiver<Event>, n: usize) -> Vec<Event> {
        (0..n)
            .map(|_| rx.recv_timeout(Duration::from_secs(10)).expect("an event"))
            .collect()
    }

    #[tokio::test]
    async fn streams_get_only_their_mask_and_every_event_that_fits() {
        let bus = EventBus::new();
        let mut jobs = bus.subscribe_with(EventMask::JOB_ADDED, Delivery::drop_oldest(100_000));
        let mut started = bus.subscribe(EventMask::SCHEDULER_STARTED);
        for i in 0..100_000 {
            bus.publish(added(&i.to_string()));
        }
        bus.publish(Event::SchedulerStarted);
        for i in 0..100_000 {
            assert_eq!(
                jobs.recv().await.unwrap().job_id(),
                Some(i.to_string().as_str())
            );
        }
        assert!(jobs.try_recv().is_none());
        assert!(matches!(
            started.recv().await,
            Some(Event::SchedulerStarted)
        ));
    }

    #[tokio::test]
    async fn an_unread_stream_keeps_only_its_capacity_and_says_how_many_it_lost() {
        let bus = EventBus::new();
        let mut stream = bus.subscribe_with(EventMask::ALL, Delivery::drop_oldest(8));
        for i in 0..100 {
            bus.publish(added(&i.to_string()));
        }
        assert_eq!(stream.len(), 8);
        let mut got = Vec::new();
        while let Some(e) = stream.try_recv() {
            got.push(e);
        }
        let expected: Vec<String> = std::iter::once("lost 92".to_owned())
            .chain((92..100).map(|i| i.to_string()))
            .collect();
        assert_eq!(ids(&got), expected);
        // Later losses are reported where they happen.
        bus.publish(added("100"));
        assert_eq!(ids(&[stream.recv().await.unwrap()]), ["100"]);
    }

    #[test]
    fn the_default_delivery_drops_the_oldest_and_never_blocks_the_publisher() {
        let bus = EventBus::new();
        assert_eq!(Delivery::default(), Delivery::drop_oldest(10_000));
        let (_, seen, gate, entered) =
            gated_listener(&bus, Delivery::drop_oldest(4), |e| e.job_id() == Some("0"));
        bus.publish(added("0"));
        entered.recv_timeout(Duration::from_secs(10)).unwrap();
        // The listener is stuck on "0": these ten all return at once, keeping the last four.
        for i in 1..=10 {
            bus.publish(added(&i.to_string()));
        }
        gate.send(()).unwrap();
        assert_eq!(
            ids(&collect(&seen, 6)),
            ["0", "lost 6", "7", "8", "9", "10"]
        );
    }

    #[test]
    fn a_slow_listener_loses_nothing_within_its_capacity() {
        let bus = EventBus::new();
        let (_, seen, gate, entered) =
            gated_listener(&bus, Delivery::default(), |e| e.job_id() == Some("0"));
        bus.publish(added("0"));
        entered.recv_timeout(Duration::from_secs(10)).unwrap();
        for i in 1..1000 {
            bus.publish(added(&i.to_string()));
        }
        gate.send(()).unwrap();
        let expected: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
        assert_eq!(ids(&collect(&seen, 1000)), expected);
    }

    #[test]
    fn a_waiting_delivery_holds_the_publisher_until_there_is_room() {
        let bus = EventBus::new();
        let (_, seen, gate, entered) =
            gated_listener(&bus, Delivery::wait(2), |e| e.job_id() == Some("0"));
        let published = Arc::new(AtomicU64::new(0));
        let publisher = {
            let (bus, published) = (bus, published.clone());
            std::thread::spawn(move || {
                for i in 0..10 {
                    bus.publish(added(&i.to_string()));
                    published.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        entered.recv_timeout(Duration::from_secs(10)).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        // "0" is with the listener and "1", "2" fill the queue: "3" waits.
        assert_eq!(published.load(Ordering::SeqCst), 3);
        gate.send(()).unwrap();
        publisher.join().unwrap();
        let expected: Vec<String> = (0..10).map(|i| i.to_string()).collect();
        assert_eq!(ids(&collect(&seen, 10)), expected);
    }

    #[test]
    fn a_waiting_publisher_gives_up_after_its_patience() {
        let bus = EventBus::new();
        let delivery = Delivery::wait(1).patience(Duration::from_millis(20));
        let (_, seen, gate, entered) = gated_listener(&bus, delivery, |e| e.job_id() == Some("0"));
        bus.publish(added("0"));
        entered.recv_timeout(Duration::from_secs(10)).unwrap();
        for i in 1..=3 {
            bus.publish(added(&i.to_string()));
        }
        gate.send(()).unwrap();
        assert_eq!(ids(&collect(&seen, 3)), ["0", "lost 2", "3"]);
    }

    #[test]
    fn a_listener_publishing_to_its_own_full_queue_does_not_wait_for_itself() {
        let bus = EventBus::new();
        let (seen_tx, seen_rx) = mpsc::channel();
        let inner = bus.clone();
        bus.add_listener_with(
            move |e| {
                if e.job_id() == Some("start") {
                    for i in 0..5 {
                        inner.publish(added(&i.to_string()));
                    }
                }
                let _ = seen_tx.send(e.clone());
            },
            EventMask::ALL,
            // A patience this long would fail the test's timeout if the listener waited.
            Delivery::wait(2).patience(Duration::from_secs(3600)),
        );
        bus.publish(added("start"));
        assert_eq!(ids(&collect(&seen_rx, 4)), ["start", "lost 3", "3", "4"]);
    }

    #[test]
    fn removing_a_listener_frees_its_backlog() {
        let bus = EventBus::new();
        let (id, seen, gate, entered) =
            gated_listener(&bus, Delivery::default(), |e| e.job_id() == Some("0"));
        let queue = bus.snapshot()[0].queue.clone();
        bus.publish(added("0"));
        entered.recv_timeout(Duration::from_secs(10)).unwrap();
        for i in 1..=500 {
            bus.publish(added(&i.to_string()));
        }
        assert_eq!(queue.len(), 500);
        assert!(bus.remove_listener(id));
        assert_eq!(queue.len(), 0);
        assert_eq!(
            queue.lock().events.capacity(),
            0,
            "the backlog's memory is freed"
        );
        gate.send(()).unwrap();
        // The event in hand finishes; nothing after it arrives.
        assert_eq!(ids(&collect(&seen, 1)), ["0"]);
        assert!(seen.recv_timeout(Duration::from_millis(200)).is_err());
    }

    #[test]
    fn a_growing_backlog_is_warned_about_once_per_episode() {
        let bus = EventBus::new();
        let mut stream = bus.subscribe_with(EventMask::ALL, Delivery::drop_oldest(10));
        let warnings = |s: &EventStream| s.queue.lock().warnings;
        for i in 0..4 {
            bus.publish(added(&i.to_string()));
        }
        assert_eq!(warnings(&stream), 0);
        bus.publish(added("4"));
        assert_eq!(warnings(&stream), 1, "half full");
        for i in 5..10 {
            bus.publish(added(&i.to_string()));
        }
        assert_eq!(warnings(&stream), 1);
        bus.publish(added("10"));
        bus.publish(added("11"));
        assert_eq!(warnings(&stream), 2, "dropping");
        while stream.try_recv().is_some() {}
        for i in 0..5 {
            bus.publish(added(&i.to_string()));
        }
        assert_eq!(warnings(&stream), 3, "a new episode");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn flushing_waits_until_listeners_have_handled_every_event() {
        let bus = EventBus::new();
        let handled = Arc::new(AtomicU64::new(0));
        let counter = handled.clone();
        bus.add_listener(
            move |_| {
                std::thread::sleep(Duration::from_millis(5));
                counter.fetch_add(1, Ordering::SeqCst);
            },
            EventMask::ALL,
        );
        for i in 0..40 {
            bus.publish(added(&i.to_string()));
        }
        bus.flush_listeners().await;
        assert_eq!(handled.load(Ordering::SeqCst), 40);
    }

    #[test]
    fn a_panicking_listener_keeps_receiving() {
        let bus = EventBus::new();
        let (tx, rx) = mpsc::channel();
        bus.add_listener(
            move |e| {
                let _ = tx.send(e.clone());
                if e.job_id() == Some("boom") {
                    panic!("listener bug");
                }
            },
            EventMask::JOB_ADDED,
        );
        bus.publish(added("boom"));
        bus.publish(added("after"));
        assert_eq!(ids(&collect(&rx, 2)), ["boom", "after"]);
    }

    #[test]
    fn removed_listeners_and_dropped_streams_stop_being_wanted() {
        let bus = EventBus::new();
        assert!(!bus.wants(EventMask::JOB_ADDED));
        let id = bus.add_listener(|_| {}, EventMask::JOB_ADDED);
        assert!(bus.wants(EventMask::JOB_ADDED));
        assert!(bus.remove_listener(id));
        assert!(!bus.remove_listener(id));
        assert!(!bus.wants(EventMask::JOB_ADDED));

        let stream = bus.subscribe(EventMask::JOB_REMOVED);
        assert!(bus.wants(EventMask::JOB_REMOVED));
        drop(stream);
        bus.publish(Event::JobRemoved(JobEvent {
            job_id: "x".into(),
            jobstore: "default".into(),
        }));
        assert!(!bus.wants(EventMask::JOB_REMOVED));
    }

    #[tokio::test]
    async fn a_stream_ends_after_its_backlog_once_the_bus_is_gone() {
        let bus = EventBus::new();
        let mut stream = bus.subscribe(EventMask::ALL);
        bus.publish(added("last"));
        drop(bus);
        assert_eq!(stream.recv().await.unwrap().job_id(), Some("last"));
        assert!(stream.recv().await.is_none());
    }
}

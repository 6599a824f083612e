//! The bus's behaviour: bounds, overflow policies, removal, flushing.

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

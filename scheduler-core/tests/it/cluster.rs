//! Several schedulers on one store (the model backend, `RecordMap`, shared by two
//! `RecordJobStore`s as two processes would share a database), on manual clocks.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use scheduler_core::testkit::{ManualClock, RecordMap, StepTrigger};
use scheduler_core::{
    ErrorKind, Event, EventMask, EventStream, JobRegistry, JobSpec, RecordJobStore, RecordStore,
    RunContext, Scheduler, SchedulerBuilder, TriggerRegistry,
};

use crate::harness::t;

/// Every run any node executed: (node, job, scheduled run time).
#[derive(Debug, Clone, Default)]
struct Log(Arc<Mutex<Vec<Run>>>);

/// (node, job, scheduled run time).
type Run = (String, String, DateTime<Utc>);

impl Log {
    fn push(&self, node: &str, job: String) {
        let run = RunContext::current().expect("called by an executor");
        let entry = (node.to_owned(), job, run.scheduled_run_time);
        self.0.lock().unwrap().push(entry);
    }

    fn entries(&self) -> Vec<Run> {
        self.0.lock().unwrap().clone()
    }

    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

/// A scheduler node `id` on `records`, with the functions `tick` (logs) and `hang` (logs
/// "started", then never returns), its own registries (as another process has), and
/// short cluster timings.
fn node(
    clock: &ManualClock,
    records: &RecordMap,
    id: &str,
    log: &Log,
    configure: impl FnOnce(SchedulerBuilder) -> SchedulerBuilder,
) -> Scheduler {
    let functions = JobRegistry::new();
    let (l, n) = (log.clone(), id.to_owned());
    functions.register_sync("tick", move |job: String| l.push(&n, job));
    let (l, n) = (log.clone(), id.to_owned());
    functions.register_async("hang", move |job: String| {
        let (l, n) = (l.clone(), n.clone());
        async move {
            l.push(&n, format!("{job} started"));
            std::future::pending::<()>().await
        }
    });
    let triggers = TriggerRegistry::new();
    triggers.register_serde::<StepTrigger>(StepTrigger::KIND);
    let builder = Scheduler::builder()
        .clock(clock.clone())
        .timezone(chrono_tz::UTC)
        .registry(functions)
        .triggers(triggers)
        .node_id(id)
        .heartbeat_interval(Duration::from_secs(1))
        .node_timeout(Duration::from_secs(3))
        .claim_lease(Duration::from_secs(2))
        .jobstore("default", RecordJobStore::new(records.clone()))
        .executor("default", executors::TokioExecutor::new());
    configure(builder).build().expect("the node builds")
}

fn tick_job(scheduler: &Scheduler, id: &str, first: DateTime<Utc>) -> JobSpec {
    let target = scheduler
        .registry()
        .target("tick", serde_json::json!(id))
        .unwrap();
    let trigger = StepTrigger {
        start: first,
        step_secs: 1,
    };
    JobSpec::new(target, trigger)
        .id(id)
        .misfire_grace_time(None)
        .coalesce(false)
        .max_instances(100)
}

/// Waits (in real time, at most 20 s) until `done` holds.
async fn until(what: &str, done: impl Fn() -> bool) {
    for _ in 0..2000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what}: not within 20 s");
}

/// The next event in `mask` (at most 20 s).
async fn next(events: &mut EventStream, mask: EventMask) -> Event {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(e)) if e.code().intersects(mask) => return e,
            Ok(Some(_)) => continue,
            _ => panic!("no {mask:?} event within 20 s"),
        }
    }
}

/// Asserts that no (job, run time) ran twice; answers the runs per node.
fn once_each(log: &Log) -> HashMap<String, usize> {
    let entries = log.entries();
    let mut seen = BTreeSet::new();
    let mut per_node = HashMap::new();
    for (node, job, at) in &entries {
        assert!(
            seen.insert((job, at)),
            "{job} at {at} ran twice: {entries:?}"
        );
        *per_node.entry(node.clone()).or_insert(0) += 1;
    }
    per_node
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_the_due_runs_and_run_each_once() {
    let clock = ManualClock::new(t(0));
    let records = RecordMap::new();
    let log = Log::default();
    let small_batches = |b: SchedulerBuilder| b.due_batch_size(5);
    let a = node(&clock, &records, "a", &log, small_batches);
    let b = node(&clock, &records, "b", &log, small_batches);
    a.start().await.unwrap();
    b.start().await.unwrap();
    assert_eq!(&*a.node_id(), "a");
    for i in 0..40 {
        a.add_job(tick_job(&a, &format!("j{i:02}"), t(1)))
            .await
            .unwrap();
    }
    for round in 1..=5 {
        clock.set(t(round));
        until(&format!("round {round}"), || {
            log.len() >= 40 * round as usize
        })
        .await;
    }
    // Time for a duplicate to show, if a run were handed out twice.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let per_node = once_each(&log);
    assert_eq!(log.len(), 200, "every due run, once");
    assert!(
        per_node.get("a").is_some_and(|n| *n > 0) && per_node.get("b").is_some_and(|n| *n > 0),
        "the work is shared: {per_node:?}"
    );
    let mut live: Vec<String> = a
        .nodes("default")
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.id)
        .collect();
    live.sort();
    assert_eq!(live, ["a", "b"]);
    a.shutdown(true).await.unwrap();
    // A clean shutdown removes the node's heartbeat.
    let live = b.nodes("default").await.unwrap();
    assert_eq!(live.len(), 1, "{live:?}");
    b.shutdown(true).await.unwrap();
}

/// Node `a` dies (its runtime is dropped: no shutdown, no more heartbeats) with two runs in
/// flight: the one whose job recovers lost runs is run again by `b` once `a`'s heartbeat
/// lapses; the other is lost (at most once).
#[test]
fn a_lost_nodes_recoverable_runs_are_run_again_by_another() {
    let clock = ManualClock::new(t(0));
    let records = RecordMap::new();
    let log = Log::default();
    let runtime = || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    };

    let rt_a = runtime();
    let a = node(&clock, &records, "a", &log, |b| b);
    rt_a.block_on(async {
        a.start().await.unwrap();
        for (id, recover) in [("kept", true), ("lost", false)] {
            let target = a.registry().target("hang", serde_json::json!(id)).unwrap();
            let trigger = StepTrigger {
                start: t(1),
                step_secs: 3600,
            };
            let spec = JobSpec::new(target, trigger)
                .id(id)
                .recover_lost_runs(recover);
            a.add_job(spec).await.unwrap();
        }
        clock.set(t(1));
        until("both runs start on a", || log.len() == 2).await;
        let inflight = records.inflight_runs().await.unwrap();
        assert_eq!(inflight.len(), 1, "only the recoverable run: {inflight:?}");
        assert_eq!((&*inflight[0].job_id, &*inflight[0].node), ("kept", "a"));
        assert_eq!(inflight[0].run_time, t(1));
    });
    rt_a.shutdown_background();

    let rt_b = runtime();
    let b = node(&clock, &records, "b", &log, |b| b);
    rt_b.block_on(async {
        let mut events = b.subscribe(EventMask::ALL);
        b.start().await.unwrap();
        let Event::NodeJoined(joined) = next(&mut events, EventMask::NODE_JOINED).await else {
            unreachable!()
        };
        assert_eq!(&*joined.node, "a");
        // a's last heartbeat was at t(1) at the latest; with a node timeout of 3 s it lapses
        // after t(4). Time moves on by a second every 20 ms until b notices.
        let ticker = {
            let clock = clock.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    clock.advance(Duration::from_secs(1));
                }
            })
        };
        let Event::JobRecovered(recovered) = next(&mut events, EventMask::JOB_RECOVERED).await
        else {
            unreachable!()
        };
        assert_eq!(&*recovered.job_id, "kept");
        assert_eq!(recovered.scheduled_run_time, t(1));
        assert_eq!(&*recovered.lost_node, "a");
        let Event::NodeLost(lost) = next(&mut events, EventMask::NODE_LOST).await else {
            unreachable!()
        };
        assert_eq!((&*lost.node, lost.runs_recovered), ("a", 1));
        ticker.abort();
        until("the recovered run starts on b", || log.len() == 3).await;
        let entries = log.entries();
        assert_eq!(
            entries[2],
            ("b".to_owned(), "kept started".to_owned(), t(1)),
            "run again for its own run time, however late: {entries:?}"
        );
        // The entry now belongs to b, which is alive; the other run stays lost.
        let inflight = records.inflight_runs().await.unwrap();
        assert_eq!(inflight.len(), 1);
        assert_eq!(&*inflight[0].node, "b");
        let live = b.nodes("default").await.unwrap();
        assert_eq!(live.len(), 1, "a is gone: {live:?}");
        b.shutdown(false).await.unwrap();
    });
    rt_b.shutdown_background();
}

/// A recoverable run that finishes removes its in-flight entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_recoverable_run_leaves_no_inflight_entry() {
    let clock = ManualClock::new(t(0));
    let records = RecordMap::new();
    let log = Log::default();
    let a = node(&clock, &records, "a", &log, |b| b);
    a.start().await.unwrap();
    let mut events = a.subscribe(EventMask::JOB_EXECUTED);
    a.add_job(tick_job(&a, "r", t(1)).recover_lost_runs(true))
        .await
        .unwrap();
    let job = a.get_job("r", None).await.unwrap().unwrap();
    assert!(job.recover_lost_runs());
    clock.set(t(1));
    next(&mut events, EventMask::JOB_EXECUTED).await;
    until("the in-flight entry is removed", || {
        futures_now(records.inflight_runs()).is_empty()
    })
    .await;
    a.shutdown(true).await.unwrap();
}

/// `max_instances` across nodes: while node `a` runs the job's one allowed instance, node
/// `b`'s fire is refused by the store (`JobMaxInstances`; the schedule moves on); once `a`
/// leaves (its heartbeat removed) its run stops counting and `b` runs the next fire, and `b`
/// clears `a`'s orphaned entry instead of running it again (the job does not recover runs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_instances_across_nodes_counts_every_nodes_runs() {
    let clock = ManualClock::new(t(0));
    let records = RecordMap::new();
    let log = Log::default();
    let a = node(&clock, &records, "a", &log, |b| b);
    a.start().await.unwrap();
    let target = a.registry().target("hang", serde_json::json!("h")).unwrap();
    let trigger = StepTrigger {
        start: t(1),
        step_secs: 1,
    };
    let spec = JobSpec::new(target, trigger)
        .id("h")
        .max_instances(1)
        .max_instances_across_nodes(true);
    a.add_job(spec).await.unwrap();
    clock.set(t(1));
    until("the first run starts on a", || log.len() == 1).await;
    a.pause().unwrap();

    let b = node(&clock, &records, "b", &log, |b| b);
    let mut events = b.subscribe(EventMask::JOB_MAX_INSTANCES | EventMask::JOB_SUBMITTED);
    b.start().await.unwrap();
    clock.set(t(2));
    let Event::JobMaxInstances(refused) = next(&mut events, EventMask::ALL).await else {
        panic!("b's fire was not refused")
    };
    assert_eq!(&*refused.job_id, "h");
    assert_eq!(&*refused.scheduled_run_times, [t(2)]);
    let job = b.get_job("h", None).await.unwrap().unwrap();
    assert_eq!(job.next_run_time(), Some(t(3)), "the schedule moved on");
    let inflight = futures_now(records.inflight_runs());
    assert_eq!(inflight.len(), 1, "{inflight:?}");
    assert_eq!((&*inflight[0].node, inflight[0].run_time), ("a", t(1)));

    a.shutdown(false).await.unwrap();
    clock.set(t(3));
    let Event::JobSubmitted(admitted) = next(&mut events, EventMask::ALL).await else {
        panic!("b's fire was refused although a left")
    };
    assert_eq!(&*admitted.scheduled_run_times, [t(3)]);
    until("the second run starts on b", || log.len() == 2).await;
    until("a's entry is cleared, not run again", || {
        let inflight = futures_now(records.inflight_runs());
        inflight.len() == 1 && inflight[0].node == "b" && inflight[0].run_time == t(3)
    })
    .await;
    assert_eq!(log.len(), 2, "{:?}", log.entries());
    b.shutdown(false).await.unwrap();
}

/// Reads a record-level call that answers at once (the model backend does).
fn futures_now<T>(
    call: impl std::future::Future<Output = scheduler_core::Result<Vec<T>>>,
) -> Vec<T> {
    let mut call = std::pin::pin!(call);
    let waker = std::task::Waker::noop();
    match call
        .as_mut()
        .poll(&mut std::task::Context::from_waker(waker))
    {
        std::task::Poll::Ready(answer) => answer.unwrap(),
        std::task::Poll::Pending => panic!("the model backend answers at once"),
    }
}

/// Two nodes whose clocks differ (by less, then by more, than the claim lease) still run every
/// due run once: claims may overlap, the fire commit lets one node win.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_skew_between_nodes_does_not_duplicate_runs() {
    for skew_ms in [700, 3_000] {
        let skew = TimeDelta::milliseconds(skew_ms);
        let (clock_a, clock_b) = (ManualClock::new(t(0)), ManualClock::new(t(0) + skew));
        let records = RecordMap::new();
        let log = Log::default();
        let settings = |b: SchedulerBuilder| {
            b.due_batch_size(3)
                .claim_lease(Duration::from_secs(1))
                .node_timeout(Duration::from_secs(10))
        };
        let a = node(&clock_a, &records, "a", &log, settings);
        let b = node(&clock_b, &records, "b", &log, settings);
        a.start().await.unwrap();
        b.start().await.unwrap();
        for i in 0..20 {
            a.add_job(tick_job(&a, &format!("j{i:02}"), t(1)))
                .await
                .unwrap();
        }
        for round in 1..=5 {
            clock_a.set(t(round));
            clock_b.set(t(round) + skew);
        }
        // Fire times t(1), t(2), ... up to the later clock.
        let fire_times = (5 * 1000 + skew_ms) / 1000;
        let expected = 20 * fire_times as usize;
        until(&format!("skew {skew_ms} ms"), || log.len() >= expected).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        once_each(&log);
        assert_eq!(log.len(), expected, "skew {skew_ms} ms");
        a.shutdown(true).await.unwrap();
        b.shutdown(true).await.unwrap();
    }
}

/// Two nodes on `records`: `b` running, then `a` started paused. `a` takes no part in firing:
/// it only adds jobs, as an admin process would.
async fn adder_and_runner(
    clock: &ManualClock,
    records: &RecordMap,
    log: &Log,
) -> (Scheduler, Scheduler) {
    let b = node(clock, records, "b", log, |b| b);
    b.start().await.unwrap();
    let a = node(clock, records, "a", log, |b| b);
    a.start_paused().await.unwrap();
    (a, b)
}

/// A job added through one node wakes another at once (the store notifies), instead of at the
/// other's planned wake-up: here the clock never moves, so only the wake-up can make `b` look.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_added_on_one_node_wakes_another() {
    let (clock, records, log) = (ManualClock::new(t(0)), RecordMap::new(), Log::default());
    let (a, b) = adder_and_runner(&clock, &records, &log).await;
    // Let b's first pass finish and go to sleep until t(10) (its max_wait).
    tokio::time::sleep(Duration::from_millis(100)).await;
    a.add_job(tick_job(&a, "now", t(0))).await.unwrap();
    until("b runs the job added on a", || log.len() == 1).await;
    assert_eq!(log.entries()[0].0, "b");
    a.shutdown(true).await.unwrap();
    b.shutdown(true).await.unwrap();
}

/// A job another node adds for after the wake-up a node planned does not wake it (the
/// store's notification carries the run time): every add otherwise cost every node a look
/// at the store. One due before then does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_added_elsewhere_for_later_than_the_planned_look_wakes_no_one() {
    let (clock, records, log) = (ManualClock::new(t(0)), RecordMap::new(), Log::default());
    let (a, b) = adder_and_runner(&clock, &records, &log).await;
    // b's first pass plans its next look at t(10) (its max_wait; the clock never moves).
    until("b plans its next look", || {
        b.health().next_wakeup == Some(t(10))
    })
    .await;
    let passes = b.health().passes;
    a.add_job(tick_job(&a, "later", t(50))).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        b.health().passes,
        passes,
        "woken for a job due after its planned look"
    );
    a.add_job(tick_job(&a, "sooner", t(5))).await.unwrap();
    until(
        "b looks again for the job due before its planned look",
        || b.health().passes > passes,
    )
    .await;
    a.shutdown(true).await.unwrap();
    b.shutdown(true).await.unwrap();
}

#[test]
fn cluster_settings_are_checked_at_build() {
    type Configure = fn(SchedulerBuilder) -> SchedulerBuilder;
    let cases: [(&str, Configure); 4] = [
        ("claim_lease", |b| {
            b.claim_lease(Duration::from_secs(15))
                .node_timeout(Duration::from_secs(15))
        }),
        ("heartbeat_interval", |b| {
            b.heartbeat_interval(Duration::from_secs(20))
        }),
        ("node_id", |b| b.node_id("")),
        ("node_timeout", |b| b.node_timeout(Duration::ZERO)),
    ];
    for (name, configure) in cases {
        let err = configure(Scheduler::builder()).build().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{name}");
        assert!(err.to_string().contains(name), "{name}: {err}");
    }
    let scheduler = Scheduler::builder().build().unwrap();
    let id = scheduler.node_id();
    assert!(id.matches('-').count() >= 2, "default node id {id}");
}

#[tokio::test]
async fn nodes_of_a_store_that_cannot_be_shared_is_a_config_error() {
    let scheduler = Scheduler::builder()
        .jobstore("default", jobstore_memory::MemoryJobStore::new())
        .build()
        .unwrap();
    let err = scheduler.nodes("default").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
}

//! What the scheduler logs through `tracing`: every run in a `run` span whose fields the job's
//! own lines carry, on every kind of executor; a failing job logged at ERROR with no listener.
//!
//! A test binary of its own because it installs the process's global subscriber (jobs run on
//! other threads, which a scoped subscriber would not reach).

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use scheduler_core::testkit::ManualClock;
use scheduler_core::{Event, EventMask, JobRegistry, JobSpec, Scheduler};

/// Everything the subscriber wrote.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The line of `text` that contains every one of `parts`.
fn line_with<'a>(text: &'a str, parts: &[&str]) -> Option<&'a str> {
    text.lines().find(|l| parts.iter().all(|p| l.contains(p)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_are_spans_and_failures_are_errors_without_a_listener() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .init();

    let t0 = chrono::DateTime::from_timestamp(1_767_225_600, 0).unwrap();
    let clock = ManualClock::new(t0);
    let registry = JobRegistry::new();
    let say_async = registry.register_async("say_async", |what: String| async move {
        tracing::info!("the async job says {what}");
    });
    // Waits once, so the thread pool drives it past its first poll.
    let say_later = registry.register_async("say_later", |what: String| async move {
        tokio::task::yield_now().await;
        tracing::info!("the waiting job says {what}");
    });
    let say_sync = registry.register_sync("say_sync", |what: String| {
        tracing::info!("the sync job says {what}");
        Ok::<_, std::convert::Infallible>(())
    });
    let fail = registry.register_sync("fail", |why: String| Err::<(), _>(why));
    let scheduler = Scheduler::builder()
        .clock(clock.clone())
        .registry(registry)
        .jobstore("default", jobstore_memory::MemoryJobStore::new())
        .executor("default", executors::TokioExecutor::new())
        .executor("pool", executors::ThreadPoolExecutor::new(1).unwrap())
        .build()
        .unwrap();
    let mut executed = scheduler.subscribe(EventMask::JOB_EXECUTED | EventMask::JOB_ERROR);
    scheduler.start().await.unwrap();
    let at = triggers::DateTrigger::new(t0 + chrono::TimeDelta::seconds(10));
    for spec in [
        JobSpec::new(say_async.call("hello".into()), at.clone())
            .id("a1")
            .name("greeter"),
        JobSpec::new(say_sync.call("hi".into()), at.clone()).id("s1"),
        JobSpec::new(say_sync.call("hey".into()), at.clone())
            .id("p1")
            .executor("pool"),
        JobSpec::new(say_later.call("later".into()), at.clone())
            .id("p2")
            .executor("pool"),
        JobSpec::new(fail.call("disk full".into()), at.clone()).id("f1"),
    ] {
        let spec = spec.misfire_grace_time(Some(Duration::from_secs(30)));
        scheduler.add_job(spec).await.unwrap();
    }
    // Started 2.5 s late.
    clock.set(t0 + chrono::TimeDelta::milliseconds(12_500));
    for _ in 0..5 {
        let event = tokio::time::timeout(Duration::from_secs(10), executed.recv())
            .await
            .unwrap_or_else(|_| panic!("not every job ran within 10 s:\n{}", captured.text()))
            .expect("the bus stays open");
        assert!(matches!(event, Event::JobExecuted(_) | Event::JobError(_)));
    }
    scheduler.shutdown(true).await.unwrap();
    let text = captured.text();

    // The job's own lines carry the run's span, on the tokio executor (async and blocking
    // jobs) and on the thread pool (blocking and async jobs).
    for (id, said, executor) in [
        ("a1", "the async job says hello", "default"),
        ("s1", "the sync job says hi", "default"),
        ("p1", "the sync job says hey", "pool"),
        ("p2", "the waiting job says later", "pool"),
    ] {
        let line = line_with(&text, &[said]).unwrap_or_else(|| panic!("no {said:?} in:\n{text}"));
        for field in [
            "run{".to_owned(),
            format!("job=\"{id}\""),
            format!("executor=\"{executor}\""),
            "jobstore=\"default\"".to_owned(),
            "run_time=2026-01-01 00:00:10 UTC".to_owned(),
            "lateness=2.5".to_owned(),
        ] {
            assert!(line.contains(&field), "{field} missing from {line:?}");
        }
    }
    assert!(
        line_with(&text, &["name=\"greeter\"", "the async job says hello"]).is_some(),
        "{text}"
    );

    // A failing job is an ERROR, in its span, with no listener.
    let failed = line_with(&text, &["ERROR", "job failed"])
        .unwrap_or_else(|| panic!("no error line in:\n{text}"));
    assert!(
        failed.contains("job=\"f1\"") && failed.contains("disk full"),
        "{failed}"
    );
    assert!(failed.contains("run{"), "{failed}");

    // The lifecycle and each run's start and success at INFO, as APScheduler logs them.
    for parts in [
        &["INFO", "scheduler started"][..],
        &["INFO", "running job", "job=\"s1\""],
        &["INFO", "job executed successfully", "job=\"p1\""],
        &["INFO", "scheduler has been shut down"],
    ] {
        assert!(
            line_with(&text, parts).is_some(),
            "no {parts:?} in:\n{text}"
        );
    }
}

//! The scheduler's metrics, read from a Prometheus scrape after real runs.
//!
//! A test binary of its own because it installs the process's global metrics recorder.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use scheduler_core::testkit::{ManualClock, StepTrigger};
use scheduler_core::{
    Event, EventMask, EventStream, Executor, ExecutorContext, InstanceLimiter, JobFailure,
    JobRegistry, JobRun, JobSpec, Result, Scheduler,
};

fn t(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_225_600 + secs, 0).unwrap()
}

/// The value of the sample of `name` whose labels include every one of `labels`.
fn sample(scrape: &str, name: &str, labels: &[&str]) -> Option<f64> {
    scrape
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| {
            l.split([' ', '{']).next() == Some(name) && labels.iter().all(|lab| l.contains(lab))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn value(handle: &PrometheusHandle, name: &str, labels: &[&str]) -> f64 {
    let scrape = handle.render();
    sample(&scrape, name, labels).unwrap_or_else(|| panic!("no {name} {labels:?} in:\n{scrape}"))
}

/// Reports every run it is given as timed out, as an executor enforcing timeouts does.
#[derive(Debug, Default)]
struct TimingOut {
    ctx: std::sync::Mutex<Option<ExecutorContext>>,
    limiter: InstanceLimiter,
}

impl Executor for TimingOut {
    async fn start(&self, ctx: ExecutorContext) -> Result<()> {
        *self.ctx.lock().unwrap() = Some(ctx);
        Ok(())
    }
    fn submit(&self, run: JobRun) -> Result<()> {
        let ctx = self.ctx.lock().unwrap().clone().expect("started");
        let _guard = ctx.admit(&self.limiter, &run)?;
        for &run_time in &run.run_times {
            if let Some(started) = ctx.begin_run(&run, run_time) {
                let failure = JobFailure::timed_out(run.job.id(), Duration::from_secs(1));
                started.finish(Err(failure));
            }
        }
        Ok(())
    }
    async fn shutdown(&self, _wait: bool) -> Result<()> {
        Ok(())
    }
}

async fn next(events: &mut EventStream, mask: EventMask) -> Event {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .unwrap_or_else(|_| panic!("no {mask:?} event within 10 s"))
            .expect("the bus stays open");
        if event.code().intersects(mask) {
            return event;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_are_counted_timed_and_labelled_by_store_and_executor() {
    let handle = PrometheusBuilder::new().install_recorder().unwrap();

    let clock = ManualClock::new(t(0));
    let registry = JobRegistry::new();
    let ok = registry.register_sync("ok", |(): ()| ());
    let fail = registry.register_sync("fail", |(): ()| Err::<(), _>("no"));
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let g = gate.clone();
    let wait = registry.register_async("wait", move |(): ()| {
        let g = g.clone();
        async move {
            let _permit = g.acquire().await.expect("the gate stays open");
        }
    });
    let scheduler = Scheduler::builder()
        .clock(clock.clone())
        .registry(registry)
        .jobstore("default", jobstore_memory::MemoryJobStore::new())
        .jobstore("other", jobstore_memory::MemoryJobStore::new())
        .executor("default", executors::TokioExecutor::new())
        .executor("slow", TimingOut::default())
        .metrics_job_count_interval(Some(Duration::from_secs(1)))
        .build()
        .unwrap();
    let mut events = scheduler.subscribe(EventMask::ALL);
    scheduler.start().await.unwrap();
    let grace = Some(Duration::from_secs(5));
    for spec in [
        // Due at 10, 20, 30, ...: started 2 s late at 12.
        JobSpec::new(
            ok.call(()),
            StepTrigger {
                start: t(10),
                step_secs: 10,
            },
        )
        .id("ok"),
        JobSpec::new(
            fail.call(()),
            StepTrigger {
                start: t(10),
                step_secs: 10,
            },
        )
        .id("fail"),
        JobSpec::new(
            ok.call(()),
            StepTrigger {
                start: t(10),
                step_secs: 10,
            },
        )
        .id("elsewhere")
        .jobstore("other"),
        JobSpec::new(
            ok.call(()),
            StepTrigger {
                start: t(10),
                step_secs: 10,
            },
        )
        .id("timeout")
        .executor("slow"),
        JobSpec::new(
            wait.call(()),
            StepTrigger {
                start: t(1000),
                step_secs: 1000,
            },
        )
        .id("wait"),
    ] {
        scheduler
            .add_job(spec.misfire_grace_time(grace))
            .await
            .unwrap();
    }
    clock.set(t(12));
    for _ in 0..4 {
        next(&mut events, EventMask::JOB_EXECUTED | EventMask::JOB_ERROR).await;
    }

    let default = ["jobstore=\"default\"", "executor=\"default\""];
    assert_eq!(
        value(&handle, "scheduler_runs_submitted_total", &default),
        2.0
    );
    assert_eq!(
        value(&handle, "scheduler_runs_executed_total", &default),
        1.0
    );
    assert_eq!(value(&handle, "scheduler_runs_failed_total", &default), 1.0);
    let other = ["jobstore=\"other\"", "executor=\"default\""];
    assert_eq!(value(&handle, "scheduler_runs_executed_total", &other), 1.0);
    let slow = ["jobstore=\"default\"", "executor=\"slow\""];
    assert_eq!(value(&handle, "scheduler_runs_timed_out_total", &slow), 1.0);
    assert_eq!(value(&handle, "scheduler_runs_failed_total", &slow), 1.0);
    assert_eq!(
        value(&handle, "scheduler_run_duration_seconds_count", &slow),
        1.0
    );
    assert_eq!(
        value(&handle, "scheduler_run_duration_seconds_count", &default),
        2.0
    );
    // Started 2 s late, by the manual clock.
    assert_eq!(
        value(
            &handle,
            "scheduler_run_start_lateness_seconds_sum",
            &default
        ),
        4.0
    );
    assert_eq!(
        value(
            &handle,
            "scheduler_run_start_lateness_seconds_count",
            &other
        ),
        1.0
    );
    assert_eq!(
        value(&handle, "scheduler_loop_last_pass_timestamp_seconds", &[]),
        t(12).timestamp() as f64
    );
    // No job id unless asked for.
    assert!(!handle.render().contains("job=\""), "{}", handle.render());

    // Missed: the runs at 20 start at 26, past their 5 s grace time.
    clock.set(t(26));
    for _ in 0..4 {
        next(&mut events, EventMask::JOB_MISSED).await;
    }
    assert_eq!(value(&handle, "scheduler_runs_missed_total", &default), 2.0);
    assert_eq!(value(&handle, "scheduler_runs_missed_total", &slow), 1.0);

    // Refused for max_instances, and counted while running.
    scheduler.run_job_now("wait", None).await.unwrap();
    let refused = scheduler.run_job_now("wait", None).await.unwrap_err();
    assert_eq!(
        refused.kind(),
        scheduler_core::ErrorKind::MaxInstancesReached
    );
    assert_eq!(
        value(&handle, "scheduler_runs_refused_total", &default),
        1.0
    );
    assert_eq!(value(&handle, "scheduler_running_instances", &default), 1.0);
    gate.add_permits(1);
    loop {
        if let Event::JobExecuted(e) = next(&mut events, EventMask::JOB_EXECUTED).await
            && &*e.job_id == "wait"
        {
            break;
        }
    }
    // The instance is released just after the outcome is published.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while value(&handle, "scheduler_running_instances", &default) != 0.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the instance was never released"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Jobs per store, counted beside the loop.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let scrape = handle.render();
        let counts = (
            sample(&scrape, "scheduler_jobs", &["jobstore=\"default\""]),
            sample(&scrape, "scheduler_jobs", &["jobstore=\"other\""]),
        );
        if counts == (Some(4.0), Some(1.0)) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "jobs never counted: {counts:?}\n{scrape}"
        );
        clock.advance(Duration::from_secs(1));
        scheduler.wakeup();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    scheduler.shutdown(true).await.unwrap();
}

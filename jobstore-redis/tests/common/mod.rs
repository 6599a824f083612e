//! Shared by the Redis tests: the server to test against, key cleanup, and private servers
//! that a test may stop, restart and freeze.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jobstore_redis::{RedisJobStore, RedisRecords};
use scheduler_core::testkit::Namespace;

/// The environment variable that names the Redis server under test.
pub(crate) const URL_VAR: &str = "SCHEDULER_TEST_REDIS_URL";

/// The runtime the tests that block on their own run on: two workers, as the 2-core machines
/// the tests run on have.
pub(crate) fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

/// The server under test: `SCHEDULER_TEST_REDIS_URL`, else the local default.
pub(crate) fn redis_url() -> String {
    std::env::var(URL_VAR).unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned())
}

/// A plain client on the server under test, checked with a PING: a server that cannot be
/// reached fails the test, saying how to provide one.
pub(crate) async fn raw_client(url: &str) -> anyhow::Result<redis::aio::MultiplexedConnection> {
    let hint = || {
        format!(
            "cannot reach the Redis server at {} (set {URL_VAR} to a reachable redis:// URL, \
             or start redis-server on 127.0.0.1:6379)",
            jobstore_redis::redact(url)
        )
    };
    let client = redis::Client::open(url).map_err(|_| anyhow::anyhow!(hint()))?;
    let connect = client.get_multiplexed_async_connection();
    let mut connection = tokio::time::timeout(Duration::from_secs(5), connect)
        .await
        .map_err(|_| anyhow::anyhow!(hint()))?
        .map_err(|e| anyhow::anyhow!("{}: {e}", hint()))?;
    let _: String = redis::cmd("PING")
        .query_async(&mut connection)
        .await
        .map_err(|e| anyhow::anyhow!("{}: {e}", hint()))?;
    Ok(connection)
}

/// The key prefix of a test namespace.
pub(crate) fn prefix_of(ns: &Namespace) -> String {
    format!("{}.", ns.name())
}

/// A store on the server under test, under the namespace's own prefix, whose keys are
/// deleted when the case ends.
pub(crate) async fn namespaced_store(ns: &Namespace) -> anyhow::Result<RedisJobStore> {
    let url = redis_url();
    raw_client(&url).await?;
    let prefix = prefix_of(ns);
    let store = RedisRecords::builder(url.clone()).prefix(prefix).build()?;
    let records = store.records();
    let keys = [
        records.jobs_key().to_owned(),
        records.run_times_key().to_owned(),
        records.revisions_key().to_owned(),
        records.claims_key().to_owned(),
        records.inflight_key().to_owned(),
        records.nodes_key().to_owned(),
    ];
    ns.on_cleanup(move || async move {
        let mut connection = raw_client(&url).await?;
        let _: i64 = redis::cmd("DEL")
            .arg(&keys)
            .query_async(&mut connection)
            .await?;
        Ok(())
    });
    Ok(store)
}

/// A port no one listens on right now.
pub(crate) fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Waits up to 10 s for a private redis-server to accept connections on `port`.
pub(crate) fn wait_until_listening(port: u16) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    anyhow::bail!("the private redis-server on port {port} did not start")
}

/// A redis-server of the test's own, on a free port, with an append-only file in a temporary
/// directory (so a restart keeps its data) and a password (to check it never shows). Killed
/// and its directory removed on drop.
pub(crate) struct PrivateRedis {
    pub(crate) port: u16,
    pub(crate) password: String,
    dir: PathBuf,
    child: Option<Child>,
}

impl PrivateRedis {
    pub(crate) fn start() -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("jobstore-redis-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir)?;
        let mut server = PrivateRedis {
            port: free_port()?,
            password: format!("pw-{}", uuid::Uuid::new_v4().simple()),
            dir,
            child: None,
        };
        server.spawn()?;
        Ok(server)
    }

    /// The URL with the password, as a user would configure it.
    pub(crate) fn url(&self) -> String {
        format!("redis://:{}@127.0.0.1:{}/", self.password, self.port)
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--requirepass", &self.password])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot start redis-server (install it: apt-get install redis-server): {e}"
                )
            })?;
        self.child = Some(child);
        wait_until_listening(self.port)
    }

    /// Kills the server (as a crash would); the append-only file stays.
    pub(crate) fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// Starts it again on the same port and directory.
    pub(crate) fn restart(&mut self) -> anyhow::Result<()> {
        self.stop()?;
        self.spawn()
    }

    fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let pid = self
            .child
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("the private redis-server is not running"))?
            .id();
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()?;
        anyhow::ensure!(status.success(), "kill {signal} {pid} failed");
        Ok(())
    }

    /// Freezes the server: it keeps its connections but answers nothing.
    pub(crate) fn freeze(&self) -> anyhow::Result<()> {
        self.signal("-STOP")
    }

    /// Lets a frozen server go on.
    pub(crate) fn thaw(&self) -> anyhow::Result<()> {
        self.signal("-CONT")
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        // A frozen server ignores SIGKILL until it is continued.
        let _ = self.thaw();
        let _ = self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What the test functions were called with, shared with the test.
#[derive(Debug, Clone, Default)]
pub(crate) struct Calls(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl Calls {
    pub(crate) fn get(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// The job functions and triggers every test process knows: `record` (pushes its argument
/// to `calls`), the `triggers` crate's triggers and the testkit's step trigger.
pub(crate) fn codec_parts(
    calls: &Calls,
) -> (
    scheduler_core::JobRegistry,
    scheduler_core::TriggerRegistry,
    scheduler_core::JobFunction<String>,
) {
    let functions = scheduler_core::JobRegistry::new();
    let sink = calls.clone();
    let record = functions.register_sync("tests.record", move |arg: String| {
        sink.0.lock().unwrap().push(arg.clone());
        Ok::<_, std::convert::Infallible>(arg)
    });
    let triggers = scheduler_core::TriggerRegistry::new();
    triggers::register(&triggers);
    triggers.register_serde::<scheduler_core::testkit::StepTrigger>(
        scheduler_core::testkit::StepTrigger::KIND,
    );
    (functions, triggers, record)
}

/// A scheduler and the test's recording job function.
pub(crate) type SchedulerAndJob = (
    scheduler_core::Scheduler,
    scheduler_core::JobFunction<String>,
);

/// A scheduler with `store` as its default store, the tokio executor, and the test codec
/// whose recording function it answers beside.
fn builder_on(
    store: RedisJobStore,
    calls: &Calls,
) -> (
    scheduler_core::SchedulerBuilder,
    scheduler_core::JobFunction<String>,
) {
    let (functions, triggers, record) = codec_parts(calls);
    let builder = scheduler_core::Scheduler::builder()
        .timezone(scheduler_core::chrono_tz::UTC)
        .registry(functions)
        .triggers(triggers)
        .jobstore("default", store)
        .executor("default", executors::TokioExecutor::new());
    (builder, record)
}

/// A scheduler on a manual clock with `store` as its default store and the tokio executor.
pub(crate) fn scheduler_on(
    store: RedisJobStore,
    clock: &scheduler_core::testkit::ManualClock,
    calls: &Calls,
) -> anyhow::Result<SchedulerAndJob> {
    let (builder, record) = builder_on(store, calls);
    Ok((builder.clock(clock.clone()).build()?, record))
}

/// A scheduler named `node` on the real clock with `store` as its default store, the tokio
/// executor and a `max_wait` of a minute: it runs a job promptly only when woken.
pub(crate) fn node_on(
    store: RedisJobStore,
    node: &str,
    calls: &Calls,
) -> anyhow::Result<SchedulerAndJob> {
    let (builder, record) = builder_on(store, calls);
    let builder = builder.max_wait(Duration::from_secs(60)).node_id(node);
    Ok((builder.build()?, record))
}

/// The next event in `mask` within 10 s of real time, or an error saying which was awaited.
pub(crate) async fn next_event(
    events: &mut scheduler_core::EventStream,
    mask: scheduler_core::EventMask,
) -> anyhow::Result<scheduler_core::Event> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(e)) if e.code().intersects(mask) => return Ok(e),
            Ok(Some(_)) => continue,
            Ok(None) => anyhow::bail!("the event bus closed while waiting for {mask:?}"),
            Err(_) => anyhow::bail!("no {mask:?} event within 10 s"),
        }
    }
}

/// Every event in `mask` until none arrives for half a second.
pub(crate) async fn drain_events(
    events: &mut scheduler_core::EventStream,
    mask: scheduler_core::EventMask,
) -> Vec<scheduler_core::Event> {
    let mut out = Vec::new();
    while let Ok(Some(e)) = tokio::time::timeout(Duration::from_millis(500), events.recv()).await {
        if e.code().intersects(mask) {
            out.push(e);
        }
    }
    out
}

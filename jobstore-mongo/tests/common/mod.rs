//! The shared server, private nx-27017 servers for outage tests, and handles on both.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use jobstore_mongo::{MongoJobStore, MongoJobStoreBuilder, MongoJobStoreExt};
use mongodb::bson::Document;

/// The database every test collection lives in.
pub(crate) const TEST_DATABASE: &str = "jobstore_mongo_test";

/// The shared test server: `SCHEDULER_TEST_MONGO_URL`, else the local default.
pub(crate) fn server_url() -> String {
    std::env::var("SCHEDULER_TEST_MONGO_URL")
        .unwrap_or_else(|_| "mongodb://127.0.0.1:27017/?directConnection=true".to_owned())
}

/// Options for a store on collection `collection` of the shared test server.
pub(crate) fn builder(collection: &str) -> MongoJobStoreBuilder {
    MongoJobStore::builder(&server_url())
        .database(TEST_DATABASE)
        .collection(collection)
        .max_pool_size(2)
}

/// A raw driver handle on `collection` of the server at `url`, for writing documents the
/// store would not write and for dropping collections.
pub(crate) async fn raw_collection(
    url: &str,
    collection: &str,
) -> anyhow::Result<mongodb::Collection<Document>> {
    let mut options = mongodb::options::ClientOptions::parse(url).await?;
    options.server_selection_timeout = Some(Duration::from_secs(5));
    options.max_pool_size = Some(1);
    let client = mongodb::Client::with_options(options)?;
    Ok(client.database(TEST_DATABASE).collection(collection))
}

/// Drops `collection` of the shared server.
pub(crate) async fn drop_collection(collection: &str) -> anyhow::Result<()> {
    let coll = raw_collection(&server_url(), collection).await?;
    coll.drop().await?;
    coll.client().clone().shutdown().await;
    Ok(())
}

/// Fails loudly, saying how to provide a server, when the shared one does not answer.
pub(crate) async fn require_server() -> anyhow::Result<()> {
    let url = server_url();
    let coll = raw_collection(&url, "ping").await?;
    let ping = tokio::time::timeout(
        Duration::from_secs(10),
        coll.client()
            .database("admin")
            .run_command(mongodb::bson::doc! { "ping": 1 }),
    )
    .await;
    match ping {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => anyhow::bail!(
            "no MongoDB answers at {url} ({e}); start one (e.g. `nx-27017 --data-dir DIR --host \
             127.0.0.1 -p 27017 --pid-file F --log-file L`) or set SCHEDULER_TEST_MONGO_URL"
        ),
        Err(_) => anyhow::bail!(
            "the MongoDB at {url} did not answer a ping within 10 s; start one or set \
             SCHEDULER_TEST_MONGO_URL"
        ),
    }
}

/// The nx-27017 executable for private servers: `SCHEDULER_TEST_NX27017`, else `nx-27017` on
/// `PATH`; a loud failure otherwise.
pub(crate) fn nx_executable() -> PathBuf {
    if let Some(path) = std::env::var_os("SCHEDULER_TEST_NX27017") {
        return PathBuf::from(path);
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("nx-27017"))
            .find(|candidate| candidate.is_file())
    });
    on_path.unwrap_or_else(|| {
        panic!(
            "this test starts a private MongoDB-compatible server and found no nx-27017: set \
             SCHEDULER_TEST_NX27017 to the nx-27017 executable (pip install nx-27017==0.8.1 \
             neosqlite==1.17.2 pymongo==4.20.1 in a venv) or put it on PATH"
        )
    })
}

/// A private nx-27017 on a free port with a data directory of its own, killed (and its
/// directory removed) when dropped.
pub(crate) struct PrivateServer {
    exe: PathBuf,
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl PrivateServer {
    /// Starts one and waits until it accepts connections.
    pub(crate) fn start() -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "jobstore-mongo-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data")).expect("a temporary directory");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut server = PrivateServer {
            exe: nx_executable(),
            dir,
            port,
            child: None,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let dir = &self.dir;
        let child = Command::new(&self.exe)
            .arg("--data-dir")
            .arg(dir.join("data"))
            .args(["--host", "127.0.0.1", "-p", &self.port.to_string()])
            .arg("--pid-file")
            .arg(dir.join("nx.pid"))
            .arg("--log-file")
            .arg(dir.join("nx.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.exe.display()));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "{} exited with {status} before listening; see {}",
                    self.exe.display(),
                    dir.join("nx.log").display()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} did not listen on port {} within 60 s",
                self.exe.display(),
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Its URL.
    pub(crate) fn url(&self) -> String {
        format!("mongodb://127.0.0.1:{}/?directConnection=true", self.port)
    }

    /// Its data directory.
    pub(crate) fn data_dir(&self) -> &Path {
        &self.dir
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("the server runs").id()
    }

    /// Kills it (SIGKILL: no goodbye to its clients).
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and data directory.
    pub(crate) fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Freezes it (SIGSTOP): connections stay open and nothing answers.
    pub(crate) fn hang(&self) {
        signal(self.pid(), "-STOP");
    }

    /// Thaws it (SIGCONT).
    pub(crate) fn resume(&self) {
        signal(self.pid(), "-CONT");
    }
}

fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("the kill command runs");
    assert!(status.success(), "kill {sig} {pid} failed");
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            // A stopped process dies of SIGKILL too, but let it go first in any case.
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
        }
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

//! Private database servers for the tests that stop or hang their server: started on a free
//! port in a temporary directory of their own, killed on drop. Never the shared servers.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};

/// Which server.
#[allow(
    dead_code,
    reason = "shared by the three test binaries; each uses its own dialect's part"
)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Postgres,
    MariaDb,
}

/// A server of our own. Dropping it kills it and removes its files.
#[allow(
    dead_code,
    reason = "shared by the three test binaries; each uses its own dialect's part"
)]
#[derive(Debug)]
pub(crate) struct PrivateServer {
    kind: Kind,
    dir: tempfile::TempDir,
    port: u16,
}

#[allow(
    dead_code,
    reason = "shared by the three test binaries; each uses its own dialect's part"
)]
const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

#[allow(
    dead_code,
    reason = "shared by the three test binaries; each uses its own dialect's part"
)]
impl PrivateServer {
    /// Initializes and starts a server of `kind`; a clear error if its binaries are missing.
    pub(crate) async fn start(kind: Kind) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("jobstore-sql-server")
            .tempdir()?;
        let port = free_port()?;
        let server = PrivateServer { kind, dir, port };
        match kind {
            Kind::Postgres => {
                // initdb and the server refuse to run as root: the directory is postgres's.
                run(Command::new("chown")
                    .arg("postgres:postgres")
                    .arg(server.dir.path()))?;
                run(Command::new("runuser")
                    .args(["-u", "postgres", "--"])
                    .arg(format!("{PG_BIN}/initdb"))
                    .args(["--no-sync", "-A", "trust", "-U", "postgres", "-D"])
                    .arg(server.data()))
                .context(format!(
                    "initdb of a private PostgreSQL server (needs {PG_BIN} and the postgres user)"
                ))?;
            }
            Kind::MariaDb => std::fs::create_dir(server.data())?,
        }
        server.resume_service().await?;
        if kind == Kind::MariaDb {
            server
                .exec_root("CREATE DATABASE IF NOT EXISTS test")
                .await?;
        }
        Ok(server)
    }

    /// The store URL of the server's `test` database.
    pub(crate) fn url(&self) -> String {
        match self.kind {
            Kind::Postgres => format!("postgres://postgres@127.0.0.1:{}/postgres", self.port),
            Kind::MariaDb => format!("mysql://root@127.0.0.1:{}/test", self.port),
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn pid_file(&self) -> PathBuf {
        match self.kind {
            Kind::Postgres => self.data().join("postmaster.pid"),
            Kind::MariaDb => self.dir.path().join("mariadbd.pid"),
        }
    }

    /// The server's main process.
    pub(crate) fn pid(&self) -> anyhow::Result<u32> {
        let text = std::fs::read_to_string(self.pid_file()).context("the server's pid file")?;
        Ok(text.lines().next().unwrap_or_default().trim().parse()?)
    }

    /// Starts the server (again) on its port and waits until it answers.
    pub(crate) async fn resume_service(&self) -> anyhow::Result<()> {
        match self.kind {
            Kind::Postgres => {
                run(Command::new("runuser")
                    .args(["-u", "postgres", "--"])
                    .arg(format!("{PG_BIN}/pg_ctl"))
                    .arg("-D")
                    .arg(self.data())
                    .arg("-l")
                    .arg(self.dir.path().join("log"))
                    .arg("-o")
                    .arg(format!(
                        "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
                        self.port,
                        self.dir.path().display()
                    ))
                    .args(["-w", "-t", "60", "start"]))?;
            }
            Kind::MariaDb => {
                let dir = self.dir.path();
                Command::new("/usr/sbin/mariadbd")
                    .arg("--no-defaults")
                    .arg(format!("--datadir={}", self.data().display()))
                    .arg("--user=root")
                    .arg("--skip-grant-tables")
                    .arg(format!("--port={}", self.port))
                    .arg("--bind-address=127.0.0.1")
                    .arg(format!("--socket={}", dir.join("sock").display()))
                    .arg(format!("--pid-file={}", self.pid_file().display()))
                    .arg("--innodb-buffer-pool-size=16M")
                    .arg("--skip-log-bin")
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(std::fs::File::create(dir.join("log"))?)
                    .spawn()
                    .context("starting a private mariadbd (/usr/sbin/mariadbd)")?;
            }
        }
        for _ in 0..240 {
            if self.exec_root("SELECT 1").await.is_ok() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        bail!(
            "the private {:?} server did not answer within 60 s",
            self.kind
        )
    }

    /// Kills the server at once, as a crash or a lost host would.
    pub(crate) fn kill(&self) -> anyhow::Result<()> {
        let pid = self.pid()?;
        signal("KILL", pid)?;
        for child in children(pid) {
            let _ = signal("KILL", child);
        }
        // Wait until the port is free, so that a restart can bind it again.
        for _ in 0..200 {
            if TcpListener::bind(("127.0.0.1", self.port)).is_ok() && !alive(pid) {
                let _ = std::fs::remove_file(self.pid_file());
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("the private server did not go away")
    }

    /// Freezes the server and all its processes (SIGSTOP): connections stay open, nothing
    /// answers.
    pub(crate) fn hang(&self) -> anyhow::Result<()> {
        let pid = self.pid()?;
        signal("STOP", pid)?;
        for child in children(pid) {
            signal("STOP", child)?;
        }
        Ok(())
    }

    /// Lets a frozen server go on (SIGCONT).
    pub(crate) fn unhang(&self) -> anyhow::Result<()> {
        let pid = self.pid()?;
        for child in children(pid) {
            signal("CONT", child)?;
        }
        signal("CONT", pid)
    }

    async fn exec_root(&self, sql: &str) -> anyhow::Result<()> {
        let url = match self.kind {
            Kind::Postgres => self.url(),
            Kind::MariaDb => format!("mysql://root@127.0.0.1:{}", self.port),
        };
        let db = match self.kind {
            Kind::Postgres => super::Db::Postgres(url),
            Kind::MariaDb => super::Db::MySql(url),
        };
        tokio::time::timeout(Duration::from_secs(5), db.exec(sql))
            .await
            .context("the private server did not answer")?
            .map(drop)
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        if let Ok(pid) = self.pid() {
            let _ = signal("CONT", pid);
            for child in children(pid) {
                let _ = signal("KILL", child);
            }
            let _ = signal("KILL", pid);
        }
    }
}

#[allow(
    dead_code,
    reason = "shared by the three test binaries; each uses its own dialect's part"
)]
fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

#[allow(
    dead_code,
    reason = "shared by the three test binaries; each uses its own dialect's part"
)]
fn run(command: &mut Command) -> anyhow::Result<()> {
    let output = command.stdin(Stdio::null()).output()?;
    if !output.status.success() {
        bail!(
            "{command:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

#[allow(
    dead_code,
    reason = "shared by the three test binaries; each uses its own dialect's part"
)]
fn signal(name: &str, pid: u32) -> anyhow::Result<()> {
    run(Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string()))
}

#[allow(
    dead_code,
    reason = "shared by the three test binaries; each uses its own dialect's part"
)]
fn alive(pid: u32) -> bool {
    // A zombie (killed, not yet reaped by its parent) no longer serves.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit(')')
            .next()
            .is_some_and(|rest| !rest.trim_start().starts_with('Z'))
    })
}

/// The processes whose parent is `pid` (PostgreSQL's backends).
#[allow(
    dead_code,
    reason = "shared by the three test binaries; each uses its own dialect's part"
)]
fn children(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| parent(Path::new(&format!("/proc/{child}/stat"))) == Some(pid))
        .collect()
}

#[allow(
    dead_code,
    reason = "shared by the three test binaries; each uses its own dialect's part"
)]
fn parent(stat: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(stat).ok()?;
    // pid (comm) state ppid ...: comm may hold spaces, so read after the last ')'.
    text.rsplit(')')
        .next()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

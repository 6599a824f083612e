//! The servers the tests talk to, found or started before any test runs.
//!
//! For each backend: the URL in its `SCHEDULER_TEST_*_URL` variable; else the local default
//! when a server answers there (a TCP connect: xtask has no database drivers); else, for
//! MongoDB, an nx-27017 wire-protocol server that this command installs (pinned, in a venv
//! under the target directory) and starts on a free port, and stops at the end. A backend
//! that none of these provides is a failure whose message says how to provide it. The URLs
//! settled on, and `SCHEDULER_TEST_NX27017` (the nx-27017 executable the store tests start
//! private servers with), go to every process `test-all` starts. `cargo xtask bench` settles
//! only the servers its store benches talk to ([`probe_only`]).

use std::env;
use std::fs::{self, File};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::workspace::{Metadata, Result, root, run_step};

pub(crate) const ABOUT: &str =
    "find or start the test servers, print their variables (keeps a started MongoDB up)";

/// Runs `cargo xtask servers`: the probe of `test-all` alone, for running tests by hand.
/// It prints an `export` line for each variable it chose; a MongoDB it started serves until
/// Ctrl-C.
pub(crate) fn run(args: &[String]) -> Result {
    if !args.is_empty() {
        return Err(format!("servers takes no arguments, not {args:?}"));
    }
    let metadata = Metadata::load()?;
    let mut probe = probe(&metadata.target_directory);
    eprintln!();
    for (name, value) in &probe.vars {
        // Variables already set are the caller's own (and may hold passwords).
        if env::var_os(name).is_none() {
            println!("export {name}='{value}'");
        }
    }
    probe.result()?;
    if let Some(server) = &mut probe.started {
        eprintln!("\nnx-27017 serves until Ctrl-C");
        while matches!(server.child.try_wait(), Ok(None)) {
            sleep(Duration::from_millis(500));
        }
        return Err(format!("nx-27017 stopped; see {}", server.log.display()));
    }
    Ok(())
}

/// One backend server the tests need.
#[derive(Debug)]
pub(crate) struct Server {
    pub(crate) name: &'static str,
    /// What it is, for messages.
    what: &'static str,
    /// The variable that names its URL.
    pub(crate) env: &'static str,
    /// Where the tests look when `env` is not set.
    default_url: &'static str,
    /// The port of URLs that name none.
    default_port: u16,
    /// Its service in `docker-compose.yml`.
    service: &'static str,
}

/// Every server, as the conventions of the tests define them.
pub(crate) const SERVERS: &[Server] = &[
    Server {
        name: "postgres",
        what: "PostgreSQL 15",
        env: "SCHEDULER_TEST_POSTGRES_URL",
        default_url: "postgres://postgres@127.0.0.1:5432/test",
        default_port: 5432,
        service: "postgres",
    },
    Server {
        name: "mysql",
        what: "MariaDB 10.11",
        env: "SCHEDULER_TEST_MYSQL_URL",
        default_url: "mysql://root@127.0.0.1:3306/test",
        default_port: 3306,
        service: "mariadb",
    },
    Server {
        name: "redis",
        what: "Redis 7",
        env: "SCHEDULER_TEST_REDIS_URL",
        default_url: "redis://127.0.0.1:6379/",
        default_port: 6379,
        service: "redis",
    },
    Server {
        name: "mongo",
        what: "MongoDB",
        env: "SCHEDULER_TEST_MONGO_URL",
        default_url: "mongodb://127.0.0.1:27017/?directConnection=true",
        default_port: 27017,
        service: "mongo",
    },
    Server {
        name: "nats",
        what: "NATS 2.9 with JetStream",
        env: "SCHEDULER_TEST_NATS_URL",
        default_url: "nats://127.0.0.1:4222",
        default_port: 4222,
        service: "nats",
    },
    Server {
        name: "amqp",
        what: "RabbitMQ 3.10",
        env: "SCHEDULER_TEST_AMQP_URL",
        default_url: "amqp://guest:guest@127.0.0.1:5672/%2f",
        default_port: 5672,
        service: "rabbitmq",
    },
];

/// The variable naming the nx-27017 executable the store tests start private servers with.
pub(crate) const NX27017_ENV: &str = "SCHEDULER_TEST_NX27017";

/// The pinned nx-27017 and its dependencies, installed into the venv.
const NX27017_REQUIREMENTS: &str = "xtask/nx-27017-requirements.txt";

/// How long a started server may take to answer.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// What the probe settled on.
#[derive(Debug, Default)]
pub(crate) struct Probe {
    /// The variables every test process gets.
    pub(crate) vars: Vec<(String, String)>,
    /// Each backend that is not provided, with how to provide it.
    pub(crate) problems: Vec<String>,
    /// The MongoDB server this run started, stopped when dropped.
    pub(crate) started: Option<NxServer>,
}

impl Probe {
    /// The step's result: every problem, or `Ok`.
    pub(crate) fn result(&self) -> Result {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(self.problems.join("\n"))
        }
    }
}

/// Finds or starts every server; `target` is cargo's target directory, where the venv and
/// a started server's files live.
pub(crate) fn probe(target: &Path) -> Probe {
    let mut probe = Probe::default();
    let work = target.join("xtask");
    // The store tests start private nx-27017 servers whatever serves the shared MongoDB.
    let nx = nx27017(&work);
    match &nx {
        Ok(executable) => {
            eprintln!("  {NX27017_ENV}={}", executable.display());
            probe
                .vars
                .push((NX27017_ENV.into(), executable.display().to_string()));
        }
        Err(e) => probe.problems.push(format!("nx-27017: {e}")),
    }
    probe.find_or_start(SERVERS.iter(), &work, || nx.clone());
    probe
}

/// Finds or starts the servers named in `names` only (those `cargo xtask bench` measures):
/// nx-27017 is installed only when no MongoDB answers and one must be started.
pub(crate) fn probe_only(target: &Path, names: &[&str]) -> Probe {
    let mut probe = Probe::default();
    let work = target.join("xtask");
    let servers = SERVERS.iter().filter(|s| names.contains(&s.name));
    probe.find_or_start(servers, &work, || nx27017(&work));
    probe
}

impl Probe {
    /// Settles each of `servers`, starting nx-27017 (the executable `nx` answers) for a
    /// MongoDB that nothing provides.
    fn find_or_start<'a>(
        &mut self,
        servers: impl Iterator<Item = &'a Server>,
        work: &Path,
        nx: impl Fn() -> Result<PathBuf>,
    ) {
        for server in servers {
            match find(server) {
                Found::Url(url, how) => {
                    eprintln!("  {:<9} {}  ({how})", server.name, redact(&url));
                    self.vars.push((server.env.into(), url));
                }
                Found::NotAnswering(problem) => self.problems.push(problem),
                Found::Nothing if server.name == "mongo" => {
                    match nx().and_then(|e| start_nx(&e, work)) {
                        Ok(started) => {
                            let url = started.url();
                            eprintln!(
                                "  {:<9} {url}  (nx-27017 started by this run, pid {})",
                                server.name,
                                started.child.id()
                            );
                            self.vars.push((server.env.into(), url));
                            self.started = Some(started);
                        }
                        Err(e) => self.problems.push(format!(
                            "{} (and no nx-27017 could be started: {e})",
                            how_to(server)
                        )),
                    }
                }
                Found::Nothing => self.problems.push(how_to(server)),
            }
        }
    }
}

enum Found {
    /// The URL to use, and why.
    Url(String, &'static str),
    /// The configured URL does not answer: the message.
    NotAnswering(String),
    /// Neither configured nor answering at the default.
    Nothing,
}

fn find(server: &Server) -> Found {
    if let Some(url) = env::var(server.env).ok().filter(|u| !u.trim().is_empty()) {
        return match address(&url, server.default_port) {
            Ok(None) => Found::Url(url, "from the environment; a DNS seed list, not probed"),
            Ok(Some((host, port))) if answers(&host, port) => {
                Found::Url(url, "from the environment, answers")
            }
            Ok(Some((host, port))) => Found::NotAnswering(format!(
                "{}: {}={} is set, but nothing answers at {host}:{port}: start that server, \
                 or correct or unset the variable",
                server.name,
                server.env,
                redact(&url)
            )),
            Err(e) => Found::NotAnswering(format!("{}: {}: {e}", server.name, server.env)),
        };
    }
    match address(server.default_url, server.default_port) {
        Ok(Some((host, port))) if answers(&host, port) => {
            Found::Url(server.default_url.into(), "local default, answers")
        }
        _ => Found::Nothing,
    }
}

/// The URL of `server` as the probe settles it, without starting a server: its variable,
/// else the local default if it answers; else how to provide it.
pub(crate) fn settle(server: &Server) -> Result<String> {
    match find(server) {
        Found::Url(url, _) => Ok(url),
        Found::NotAnswering(problem) => Err(problem),
        Found::Nothing => Err(how_to(server)),
    }
}

/// How to provide `server`, for a failure message.
fn how_to(server: &Server) -> String {
    format!(
        "{name}: no server: {env} is not set and nothing answers at {default}. Provide a \
         {what} server: set {env} to its URL, or start one at the default address (with \
         docker: `docker compose up -d {service}` at the repository root, see \
         docker-compose.yml)",
        name = server.name,
        env = server.env,
        default = server.default_url,
        what = server.what,
        service = server.service,
    )
}

/// The host and port `url` names (`default_port` when it names none); `None` for a
/// `mongodb+srv` URL, whose hosts come from DNS.
pub(crate) fn address(url: &str, default_port: u16) -> Result<Option<(String, u16)>> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("{:?} is not a URL (no `scheme://`)", redact(url)))?;
    if scheme.ends_with("+srv") {
        return Ok(None);
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let hosts = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    // A MongoDB URL may list several hosts: the first is enough to know one answers.
    let host_port = hosts.split(',').next().unwrap_or("");
    let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| format!("{:?}: unclosed `[`", redact(url)))?;
        (host, after.strip_prefix(':'))
    } else {
        match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return Err(format!("{:?} names no host", redact(url)));
    }
    let port = match port {
        None | Some("") => default_port,
        Some(port) => port
            .parse()
            .map_err(|_| format!("{:?}: bad port {port:?}", redact(url)))?,
    };
    Ok(Some((host.to_owned(), port)))
}

/// `url` with its password, if any, replaced by `***`: URLs are printed, passwords never.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{hosts}{path}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// Whether something accepts a TCP connection at `host:port`.
fn answers(host: &str, port: u16) -> bool {
    let Ok(addresses) = (host, port).to_socket_addrs() else {
        return false;
    };
    addresses
        .into_iter()
        .any(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok())
}

/// The nx-27017 executable: `SCHEDULER_TEST_NX27017`, else the one in the venv this makes
/// (once; again when the requirements change).
fn nx27017(work: &Path) -> Result<PathBuf> {
    if let Some(path) = env::var_os(NX27017_ENV).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "{NX27017_ENV}={} is not a file: unset it to let xtask install nx-27017",
                path.display()
            ))
        };
    }
    let venv = work.join("nx-27017");
    let executable = venv.join("bin").join("nx-27017");
    let installed = venv.join("requirements.installed");
    let requirements = root().join(NX27017_REQUIREMENTS);
    let wanted = fs::read_to_string(&requirements)
        .map_err(|e| format!("{}: {e}", requirements.display()))?;
    if executable.is_file() && fs::read_to_string(&installed).ok().as_deref() == Some(&wanted) {
        return Ok(executable);
    }
    let python = env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    run_step(
        "nx-27017 venv",
        Command::new(&python)
            .args(["-m", "venv", "--clear"])
            .arg(&venv),
    )
    .map_err(|e| {
        format!(
            "{e}: `{python} -m venv` needs Python 3 with its venv module (Debian: `apt-get \
             install python3-venv`); or set {NX27017_ENV} to an nx-27017 executable"
        )
    })?;
    run_step(
        "nx-27017 install",
        Command::new(venv.join("bin").join("python"))
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--require-virtualenv",
                "-r",
            ])
            .arg(&requirements),
    )
    .map_err(|e| format!("{e}: pip could not install {NX27017_REQUIREMENTS} from PyPI"))?;
    if !executable.is_file() {
        return Err(format!("the venv has no {}", executable.display()));
    }
    fs::write(&installed, wanted).map_err(|e| format!("{}: {e}", installed.display()))?;
    Ok(executable)
}

/// An nx-27017 server this run started; stopped when dropped.
#[derive(Debug)]
pub(crate) struct NxServer {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl NxServer {
    fn url(&self) -> String {
        format!("mongodb://127.0.0.1:{}/?directConnection=true", self.port)
    }

    /// Stops the server: SIGTERM, then SIGKILL if it is still there after 5 s.
    pub(crate) fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let pid = self.child.id().to_string();
        // std only sends SIGKILL; `kill` lets the server close its files first.
        let _ = Command::new("kill")
            .args(["-TERM", &pid])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for NxServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts nx-27017 on a free port with a fresh data directory under `work`.
fn start_nx(executable: &Path, work: &Path) -> Result<NxServer> {
    let data = work.join("nx-data");
    // Each run starts empty, so the data directory cannot grow run after run.
    if data.exists() {
        fs::remove_dir_all(&data).map_err(|e| format!("{}: {e}", data.display()))?;
    }
    fs::create_dir_all(&data).map_err(|e| format!("{}: {e}", data.display()))?;
    let port = free_port()?;
    let log = work.join("nx-27017.log");
    let output = work.join("nx-27017.out");
    let output = File::create(&output).map_err(|e| format!("{}: {e}", output.display()))?;
    let errors = output.try_clone().map_err(|e| e.to_string())?;
    eprintln!(
        "  starting nx-27017 on 127.0.0.1:{port} (log: {})",
        log.display()
    );
    let child = Command::new(executable)
        .arg("--data-dir")
        .arg(&data)
        .args(["--host", "127.0.0.1", "-p", &port.to_string()])
        .arg("--pid-file")
        .arg(work.join("nx-27017.pid"))
        .arg("--log-file")
        .arg(&log)
        .stdin(Stdio::null())
        .stdout(output)
        .stderr(errors)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", executable.display()))?;
    let mut server = NxServer { child, port, log };
    let started = Instant::now();
    loop {
        if answers("127.0.0.1", port) {
            return Ok(server);
        }
        if let Ok(Some(status)) = server.child.try_wait() {
            return Err(format!(
                "nx-27017 exited ({status}) before answering; see {}",
                server.log.display()
            ));
        }
        if started.elapsed() > START_TIMEOUT {
            server.stop();
            return Err(format!(
                "nx-27017 did not answer on port {port} within {START_TIMEOUT:?}; see {}",
                server.log.display()
            ));
        }
        sleep(Duration::from_millis(100));
    }
}

/// A port nothing listens on now (the OS's choice), for a server to bind right after.
fn free_port() -> Result<u16> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(host: &str, port: u16) -> Result<Option<(String, u16)>> {
        Ok(Some((host.into(), port)))
    }

    #[test]
    fn every_default_url_names_its_host_and_port() {
        for server in SERVERS {
            assert_eq!(
                address(server.default_url, 1),
                at("127.0.0.1", server.default_port),
                "{}",
                server.name
            );
        }
    }

    #[test]
    fn addresses_are_read_from_urls() {
        assert_eq!(address("redis://cache/", 6379), at("cache", 6379));
        assert_eq!(address("redis://cache", 6379), at("cache", 6379));
        assert_eq!(
            address("postgres://u:p@ss@db:6543/test?sslmode=disable", 5432),
            at("db", 6543)
        );
        assert_eq!(address("nats://[::1]:4333", 4222), at("::1", 4333));
        assert_eq!(address("nats://[::1]", 4222), at("::1", 4222));
        assert_eq!(
            address("mongodb://a:27018,b:27019/?replicaSet=rs", 27017),
            at("a", 27018)
        );
        assert_eq!(address("mongodb+srv://cluster.example/", 27017), Ok(None));
        assert!(address("127.0.0.1:5432", 5432).is_err());
        assert!(address("redis://:6379", 6379).is_err());
        assert!(address("redis://host:port/", 6379).is_err());
    }

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redact("amqp://guest:guest@127.0.0.1:5672/%2f"),
            "amqp://guest:***@127.0.0.1:5672/%2f"
        );
        assert_eq!(
            redact("postgres://u:p@ss@db/test?sslmode=disable"),
            "postgres://u:***@db/test?sslmode=disable"
        );
        assert_eq!(
            redact("mysql://root@127.0.0.1:3306/test"),
            "mysql://root@127.0.0.1:3306/test"
        );
        assert_eq!(redact("redis://127.0.0.1/"), "redis://127.0.0.1/");
    }

    #[test]
    fn the_way_to_provide_a_server_is_spelled_out() {
        let mongo = SERVERS.iter().find(|s| s.name == "mongo").unwrap();
        let message = how_to(mongo);
        assert!(
            message.contains("set SCHEDULER_TEST_MONGO_URL"),
            "{message}"
        );
        assert!(message.contains("docker compose up -d mongo"), "{message}");
    }

    #[test]
    fn every_compose_service_named_exists() {
        let compose = fs::read_to_string(root().join("docker-compose.yml")).unwrap();
        for server in SERVERS {
            assert!(
                compose.contains(&format!("\n  {}:\n", server.service)),
                "docker-compose.yml has no service {}",
                server.service
            );
        }
    }
}

//! The commands a restart sends, seen by a proxy between the store and the shared server:
//! on the way to the first run every command is a round trip (about a millisecond on
//! nx-27017), so the store asks nothing the driver already knows and commits a batch of
//! fires in one command.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::TimeDelta;
use jobstore_mongo::MongoJobStoreExt;
use scheduler_core::{
    Clock, EventBus, EventMask, JobCodec, JobDefaults, JobSpec, JobStore, StoreContext, SystemClock,
};

use crate::common::{builder, drop_collection, require_server, server_url};
use crate::{registry, scheduler_on, unique};

/// One command a client sent: its connection (numbered in the order accepted), its name (the
/// first field of the command document) and that field's value when it is a string (the
/// collection of `find`, `update`, `delete`, ...).
#[derive(Debug, Clone)]
struct Command {
    connection: usize,
    name: String,
    target: Option<String>,
}

/// A TCP proxy on a free port in front of the shared server that records the commands sent
/// through it.
struct Proxy {
    port: u16,
    commands: Arc<Mutex<Vec<Command>>>,
}

impl Proxy {
    fn start(upstream: String) -> anyhow::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let commands: Arc<Mutex<Vec<Command>>> = Arc::default();
        let log = commands.clone();
        std::thread::spawn(move || {
            for (connection, client) in listener.incoming().map_while(Result::ok).enumerate() {
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let log = log.clone();
                std::thread::spawn(move || relay(connection, client, server, &log));
            }
        });
        Ok(Proxy { port, commands })
    }

    fn commands(&self) -> Vec<Command> {
        self.commands.lock().unwrap().clone()
    }
}

/// Copies the server's answers back raw, and the client's messages one by one, recording the
/// command of each.
fn relay(
    connection: usize,
    mut client: TcpStream,
    mut server: TcpStream,
    log: &Mutex<Vec<Command>>,
) {
    let (Ok(mut answers_from), Ok(mut answers_to)) = (server.try_clone(), client.try_clone())
    else {
        return;
    };
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut answers_from, &mut answers_to);
        let _ = answers_to.shutdown(Shutdown::Both);
    });
    loop {
        let mut header = [0u8; 16];
        if client.read_exact(&mut header).is_err() {
            break;
        }
        let length = i32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let op_code = i32::from_le_bytes([header[12], header[13], header[14], header[15]]);
        let mut body = vec![0u8; usize::try_from(length).unwrap_or(16).saturating_sub(16)];
        if client.read_exact(&mut body).is_err() {
            break;
        }
        if let Some((name, target)) = command_of(op_code, &body) {
            log.lock().unwrap().push(Command {
                connection,
                name,
                target,
            });
        }
        if server.write_all(&header).is_err() || server.write_all(&body).is_err() {
            break;
        }
    }
    let _ = server.shutdown(Shutdown::Both);
}

/// The command document of an OP_MSG (its body section) or of an OP_QUERY (the legacy
/// handshake), read as its first field's name and string value.
fn command_of(op_code: i32, body: &[u8]) -> Option<(String, Option<String>)> {
    const OP_QUERY: i32 = 2004;
    const OP_MSG: i32 = 2013;
    let document = match op_code {
        OP_MSG => {
            let mut at = 4;
            loop {
                let kind = *body.get(at)?;
                let size = usize::try_from(i32::from_le_bytes(
                    body.get(at + 1..at + 5)?.try_into().ok()?,
                ))
                .ok()?;
                if kind == 0 {
                    break body.get(at + 1..at + 1 + size)?;
                }
                at += 1 + size;
            }
        }
        OP_QUERY => {
            let name_end = 4 + body.get(4..)?.iter().position(|b| *b == 0)?;
            body.get(name_end + 1 + 8..)?
        }
        _ => return None,
    };
    let kind = *document.get(4)?;
    let name_end = 5 + document.get(5..)?.iter().position(|b| *b == 0)?;
    let name = String::from_utf8_lossy(document.get(5..name_end)?).into_owned();
    const STRING: u8 = 2;
    let target = (kind == STRING).then(|| {
        let value = document.get(name_end + 5..)?;
        let end = value.iter().position(|b| *b == 0)?;
        Some(String::from_utf8_lossy(&value[..end]).into_owned())
    });
    Some((name, target.flatten()))
}

/// The parts of a `mongodb://` URL: the credentials (with their `@`), the first host, and
/// what follows the hosts (without its `/`).
fn parts(url: &str) -> anyhow::Result<(String, String, String)> {
    let rest = url
        .strip_prefix("mongodb://")
        .ok_or_else(|| anyhow::anyhow!("the wire test proxies mongodb:// URLs, not {url}"))?;
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let (credentials, hosts) = match authority.rsplit_once('@') {
        Some((credentials, hosts)) => (format!("{credentials}@"), hosts),
        None => (String::new(), authority),
    };
    let host = hosts.split(',').next().unwrap_or(hosts).to_owned();
    Ok((
        credentials,
        host,
        tail.strip_prefix('/').unwrap_or(tail).to_owned(),
    ))
}

/// `url` with the proxy on `port` as its only host, connected directly.
fn through(url: &str, port: u16) -> anyhow::Result<String> {
    let (credentials, _, tail) = parts(url)?;
    let direct = if tail.to_ascii_lowercase().contains("directconnection=") {
        ""
    } else if tail.contains('?') {
        "&directConnection=true"
    } else {
        "?directConnection=true"
    };
    Ok(format!(
        "mongodb://{credentials}127.0.0.1:{port}/{tail}{direct}"
    ))
}

/// A restart with five due date jobs: the store asks the server no `hello` of its own (every
/// connection's handshake and the driver's monitor already did); the batch is claimed in one
/// `update` and each fire commit deletes its job with a conditional `delete` of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_asks_no_hello_of_its_own() -> anyhow::Result<()> {
    require_server().await?;
    let collection = unique("wire");
    let outcome = async {
        let (registry, record) = registry();
        let seeding = builder(&collection).build()?;
        let codec = JobCodec::new(registry.clone(), triggers::registry());
        seeding
            .start(StoreContext::new("default", codec, EventBus::new()))
            .await?;
        let now = SystemClock.now();
        let due = now - TimeDelta::seconds(1);
        let jobs = (0..5)
            .map(|i| {
                JobSpec::new(
                    record.call(format!("run {i}")),
                    triggers::DateTrigger::new(due),
                )
                .id(format!("job-{i}"))
                .misfire_grace_time(None)
                .into_job(&JobDefaults::default(), now)
            })
            .collect::<scheduler_core::Result<Vec<_>>>()?;
        for added in seeding.add_jobs(jobs).await? {
            added?;
        }
        seeding.shutdown().await?;

        let (_, upstream, _) = parts(&server_url())?;
        let proxy = Proxy::start(upstream)?;
        let store = jobstore_mongo::MongoJobStore::builder(&through(&server_url(), proxy.port)?)
            .database(crate::common::TEST_DATABASE)
            .collection(&collection)
            .build()?;
        let (scheduler, _) = scheduler_on(store, None);
        let mut executed = scheduler.subscribe(EventMask::JOB_EXECUTED);
        scheduler.start().await?;
        for _ in 0..5 {
            tokio::time::timeout(Duration::from_secs(20), executed.recv())
                .await?
                .ok_or_else(|| anyhow::anyhow!("the event stream ended"))?;
        }
        scheduler.shutdown(true).await?;

        let commands = proxy.commands();
        let hello = |c: &Command| c.name == "hello" || c.name.eq_ignore_ascii_case("ismaster");
        let connections = commands.iter().map(|c| c.connection).max().unwrap_or(0) + 1;
        for connection in 0..connections {
            let sent: Vec<&Command> = commands
                .iter()
                .filter(|c| c.connection == connection)
                .collect();
            // The monitor's connection asks `hello` and nothing else; a connection that works
            // asks it only as its handshake.
            if sent.iter().any(|c| !hello(c)) {
                assert!(
                    sent.iter().skip(1).all(|c| !hello(c)),
                    "a hello after the handshake of connection {connection}: {commands:?}"
                );
            }
        }
        let on_jobs = |name: &str| {
            commands
                .iter()
                .filter(|c| c.name == name && c.target.as_deref() == Some(collection.as_str()))
                .count()
        };
        let bulk = commands.iter().filter(|c| c.name == "bulkWrite").count();
        assert_eq!(
            (bulk, on_jobs("delete"), on_jobs("update")),
            (0, 5, 1),
            "a delete for each of the five fire commits, one update (the claim): {commands:?}"
        );
        anyhow::Ok(())
    }
    .await;
    drop_collection(&collection).await?;
    drop_collection(&format!("{collection}_nodes")).await?;
    outcome
}

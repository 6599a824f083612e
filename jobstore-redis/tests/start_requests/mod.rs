//! What a store sends when it starts, as a stand-in server sees it: only its own requests,
//! since every other request of a new connection is a round trip before its first run.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use jobstore_redis::RedisRecords;
use scheduler_core::{EventBus, JobCodec, JobStore, StoreContext};

/// The requests of each connection made to a [`StandIn`], by name (`CLIENT SETINFO` for a
/// subcommand), in the order read.
type Requests = Arc<Mutex<Vec<Vec<String>>>>;

/// A stand-in for a Redis server on a free port: it answers `TYPE` (`none`), `SUBSCRIBE`,
/// `CLIENT` and `PING` as a server would, anything else with an error, and records what each
/// connection asked.
struct StandIn {
    port: u16,
    requests: Requests,
}

impl StandIn {
    fn start() -> anyhow::Result<StandIn> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let requests = Requests::default();
        let log = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let log = log.clone();
                std::thread::spawn(move || serve(stream, &log));
            }
        });
        Ok(StandIn { port, requests })
    }

    /// What each connection asked so far, the connections in the order of their requests.
    fn requests(&self) -> Vec<Vec<String>> {
        let mut requests = self.requests.lock().unwrap().clone();
        requests.sort();
        requests
    }
}

/// Answers the requests of one connection until it closes.
fn serve(stream: TcpStream, log: &Requests) {
    let index = {
        let mut log = log.lock().unwrap();
        log.push(Vec::new());
        log.len() - 1
    };
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    while let Some(args) = read_command(&mut reader) {
        let name = args.first().map(|a| a.to_uppercase()).unwrap_or_default();
        let answer = match name.as_str() {
            "TYPE" => "+none\r\n".to_owned(),
            "SUBSCRIBE" => {
                let channel = args.get(1).cloned().unwrap_or_default();
                format!(
                    "*3\r\n$9\r\nsubscribe\r\n${}\r\n{channel}\r\n:1\r\n",
                    channel.len()
                )
            }
            "CLIENT" | "PING" => "+OK\r\n".to_owned(),
            _ => "-ERR not served by the stand-in\r\n".to_owned(),
        };
        let recorded = match (name.as_str(), args.get(1)) {
            ("CLIENT", Some(sub)) => format!("CLIENT {}", sub.to_uppercase()),
            _ => name,
        };
        log.lock().unwrap()[index].push(recorded);
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

/// One request in RESP (an array of bulk strings), or `None` at the end of the connection.
fn read_command(reader: &mut impl BufRead) -> Option<Vec<String>> {
    let count: usize = read_line(reader)?.strip_prefix('*')?.parse().ok()?;
    let mut args = Vec::with_capacity(count);
    for _ in 0..count {
        let len: usize = read_line(reader)?.strip_prefix('$')?.parse().ok()?;
        let mut bytes = vec![0; len + 2];
        reader.read_exact(&mut bytes).ok()?;
        bytes.truncate(len);
        args.push(String::from_utf8_lossy(&bytes).into_owned());
    }
    Some(args)
}

fn read_line(reader: &mut impl BufRead) -> Option<String> {
    let mut line = String::new();
    match reader.read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim_end().to_owned()),
    }
}

/// A start connects twice (the store's connection, and beside the first pass the wake-up
/// subscription) and asks nothing but the key types on one and the subscription on the
/// other: no `CLIENT SETINFO`, which would cost each connection a round trip before them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_asks_only_the_key_types_and_the_subscription() -> anyhow::Result<()> {
    let stand_in = StandIn::start()?;
    let store = RedisRecords::builder(format!("redis://127.0.0.1:{}/", stand_in.port))
        .prefix("stand_in.")
        .build()?;
    store
        .start(StoreContext::new(
            "redis",
            JobCodec::default(),
            EventBus::new(),
        ))
        .await?;
    let types = vec!["TYPE".to_owned(); 6];
    // The subscription is made by the listener task, after `start` returned; its connection
    // is listed from its accept, before its request is read.
    let subscribed = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let asked = |name: &str| stand_in.requests().iter().flatten().any(|r| r == name);
    while !asked("SUBSCRIBE") && std::time::Instant::now() < subscribed {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(
        stand_in.requests(),
        [vec!["SUBSCRIBE".to_owned()], types],
        "the requests of each connection"
    );
    store.shutdown().await?;
    Ok(())
}

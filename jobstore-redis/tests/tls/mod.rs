//! `rediss://` (feature `tls`) against a redis-server of the test's own that speaks only TLS,
//! with a certificate signed by a CA made for the test.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use jobstore_redis::{RedisJobStore, RedisRecords};
use scheduler_core::{ErrorKind, Event, EventMask, JobSpec};

use crate::common::{self, Calls, next_event};

/// A redis-server on a free port of 127.0.0.1 that accepts TLS only, its certificate (for
/// 127.0.0.1 and localhost) signed by the CA whose PEM is `ca`. Killed and its directory
/// removed on drop.
struct TlsRedis {
    port: u16,
    ca: Vec<u8>,
    dir: PathBuf,
    child: Option<Child>,
}

impl TlsRedis {
    fn start() -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("jobstore-redis-tls-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir)?;
        let mut server = TlsRedis {
            port: common::free_port()?,
            ca: Vec::new(),
            dir,
            child: None,
        };
        make_certificates(&server.dir)?;
        server.ca = std::fs::read(server.dir.join("ca.crt"))?;
        let file = |name: &str| server.dir.join(name);
        let child = Command::new("redis-server")
            .args(["--port", "0", "--bind", "127.0.0.1"])
            .args(["--tls-port", &server.port.to_string()])
            .arg("--tls-cert-file")
            .arg(file("server.crt"))
            .arg("--tls-key-file")
            .arg(file("server.key"))
            .arg("--tls-ca-cert-file")
            .arg(file("ca.crt"))
            .args(["--tls-auth-clients", "no"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&server.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start redis-server: {e}"))?;
        server.child = Some(child);
        common::wait_until_listening(server.port)?;
        Ok(server)
    }

    fn url(&self) -> String {
        format!("rediss://127.0.0.1:{}/", self.port)
    }

    /// A store on this server that trusts the test's CA (or, without it, the webpki roots).
    fn store(&self, trust_the_ca: bool) -> anyhow::Result<RedisJobStore> {
        let builder = RedisRecords::builder(self.url())
            .response_timeout(Duration::from_secs(2))
            .connection_timeout(Duration::from_secs(2));
        let builder = if trust_the_ca {
            builder.tls_root_certificates(self.ca.clone())
        } else {
            builder
        };
        Ok(builder.build()?)
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A CA (`ca.crt`) and a server certificate for 127.0.0.1 and localhost it signed
/// (`server.crt`, `server.key`), made in `dir` with the `openssl` command.
fn make_certificates(dir: &Path) -> anyhow::Result<()> {
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    )?;
    // No argument holds a space: each step is split on whitespace.
    let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    let steps = [
        format!(
            "req -x509 -days 2 {ec} -keyout ca.key -out ca.crt \
             -subj /CN=jobstore-redis-test-CA -addext basicConstraints=critical,CA:TRUE \
             -addext keyUsage=critical,keyCertSign,cRLSign"
        ),
        format!("req -new {ec} -keyout server.key -out server.csr -subj /CN=localhost"),
        "x509 -req -days 2 -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
         -out server.crt -extfile server.ext"
            .to_owned(),
    ];
    for step in &steps {
        let out = Command::new("openssl")
            .args(step.split_whitespace())
            .current_dir(dir)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| anyhow::anyhow!("cannot run openssl (install it): {e}"))?;
        anyhow::ensure!(
            out.status.success(),
            "openssl {step} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Over TLS, a job added through one scheduler (started paused) runs on another, woken
/// through the wake-up subscription (its `max_wait` is a minute): the data connections and
/// the subscription all check the server against the CA given. A store that does not trust
/// that CA fails to start with a backend error that says why, within its timeouts.
#[test]
fn rediss_urls_connect_with_tls_and_check_the_certificate() -> anyhow::Result<()> {
    let runtime = common::runtime()?;
    let server = TlsRedis::start()?;
    runtime.block_on(async {
        let calls = Calls::default();
        let build = |store: RedisJobStore, node: &str| common::node_on(store, node, &calls);
        let (adder, record) = build(server.store(true)?, "adder")?;
        let (runner, _) = build(server.store(true)?, "runner")?;
        let mut executed = runner.subscribe(EventMask::JOB_EXECUTED);
        runner.start().await?;
        adder.start_paused().await?;
        let clock = scheduler_core::SystemClock;
        let at = scheduler_core::Clock::now(&clock) + Duration::from_millis(300);
        adder
            .add_job(
                JobSpec::new(
                    record.call("over tls".into()),
                    triggers::DateTrigger::new(at),
                )
                .id("tls"),
            )
            .await?;
        let event = next_event(&mut executed, EventMask::JOB_EXECUTED).await?;
        assert!(
            matches!(&event, Event::JobExecuted(e) if &*e.job_id == "tls"),
            "{event:?}"
        );
        assert_eq!(calls.get(), ["over tls"]);
        runner.shutdown(true).await?;
        adder.shutdown(false).await?;

        let (stranger, _) = build(server.store(false)?, "stranger")?;
        let started = tokio::time::Instant::now();
        let err = stranger
            .start()
            .await
            .expect_err("the server's CA is not among the webpki roots");
        assert!(started.elapsed() < Duration::from_secs(10), "{err}");
        assert_eq!(err.kind(), ErrorKind::Backend, "{err:?}");
        assert!(err.to_string().contains("certificate"), "{err}");
        anyhow::Ok(())
    })
}

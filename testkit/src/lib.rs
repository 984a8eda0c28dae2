//! Helpers shared by the test suites of every crate.
//!
//! [`NatsServer`] runs a real `nats-server -js` per test, on a port the
//! server picks itself (so tests never race for one), with its own temporary
//! store; both are gone when it is dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::time::{Instant, timeout};

/// How long a server may take to start before the test fails.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running `nats-server` with JetStream on a loopback port.
#[derive(Debug)]
pub struct NatsServer {
    child: Option<Child>,
    dir: tempfile::TempDir,
    port: u16,
}

/// The nats-server executable: `NATS_SERVER_BIN`, else the one on `PATH`,
/// else Debian's.
pub fn nats_server_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("NATS_SERVER_BIN") {
        return bin.into();
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("nats-server"))
        .find(|p| p.is_file());
    on_path.unwrap_or_else(|| PathBuf::from("/usr/sbin/nats-server"))
}

impl NatsServer {
    /// Starts a server on a port of its own choosing and waits until it serves.
    pub async fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("chatops-nats-")
            .tempdir()
            .expect("create a temporary directory for nats-server");
        let mut server = Self {
            child: None,
            dir,
            port: 0,
        };
        server.spawn("-1").await;
        server
    }

    /// `nats://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The JetStream store, kept across [`NatsServer::restart`].
    pub fn store_dir(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// Stops the server at once (SIGKILL), keeping its store.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port with the same store.
    pub async fn restart(&mut self) {
        self.kill();
        let port = self.port.to_string();
        self.spawn(&port).await;
    }

    async fn spawn(&mut self, port: &str) {
        let ports_dir = self.dir.path().join("ports");
        let _ = std::fs::remove_dir_all(&ports_dir);
        std::fs::create_dir_all(&ports_dir).expect("create the ports directory");
        let bin = nats_server_bin();
        let child = Command::new(&bin)
            .args(["-js", "-a", "127.0.0.1", "-p", port])
            .arg("-sd")
            .arg(self.store_dir())
            .arg("--ports_file_dir")
            .arg(&ports_dir)
            .arg("-l")
            .arg(self.dir.path().join("nats-server.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {}: {e}; install it with scripts/test (Debian package nats-server) or set NATS_SERVER_BIN",
                    bin.display()
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        self.port = self.await_port(&ports_dir, deadline).await;
        self.await_serving(deadline).await;
    }

    /// The server writes its client URL to a ports file once it listens.
    async fn await_port(&mut self, ports_dir: &Path, deadline: Instant) -> u16 {
        loop {
            self.assert_running();
            let port = std::fs::read_dir(ports_dir)
                .ok()
                .and_then(|mut entries| entries.next())
                .and_then(|entry| std::fs::read_to_string(entry.ok()?.path()).ok())
                .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
                .and_then(|v| {
                    let url = v["nats"][0].as_str()?.to_owned();
                    url.rsplit(':').next()?.parse().ok()
                });
            if let Some(port) = port {
                return port;
            }
            assert!(
                Instant::now() < deadline,
                "nats-server wrote no ports file in {START_TIMEOUT:?}; log: {}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Serving means a client connection gets the server's INFO line.
    async fn await_serving(&mut self, deadline: Instant) {
        loop {
            self.assert_running();
            let attempt = async {
                let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                    .await
                    .ok()?;
                let mut buf = [0u8; 4];
                conn.read_exact(&mut buf).await.ok()?;
                (&buf == b"INFO").then_some(())
            };
            if timeout(Duration::from_secs(1), attempt)
                .await
                .ok()
                .flatten()
                .is_some()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "nats-server did not serve in {START_TIMEOUT:?}; log: {}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn assert_running(&mut self) {
        let exited = self
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten());
        if let Some(status) = exited {
            panic!("nats-server exited with {status}; log: {}", self.log());
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("nats-server.log")).unwrap_or_default()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn two_servers_get_their_own_ports_and_stores_and_go_away_on_drop() {
        let a = NatsServer::start().await;
        let b = NatsServer::start().await;
        assert_ne!(a.port(), b.port());
        assert_ne!(a.store_dir(), b.store_dir());
        let dir = a.dir.path().to_owned();
        let port = a.port();
        drop(a);
        assert!(!dir.exists(), "the store is removed on drop");
        assert!(
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_err(),
            "the server is gone on drop"
        );
        drop(b);
    }

    #[tokio::test]
    async fn restart_keeps_the_port_and_the_store() {
        let mut server = NatsServer::start().await;
        let port = server.port();
        std::fs::create_dir_all(server.store_dir().join("marker")).expect("write into the store");
        server.restart().await;
        assert_eq!(server.port(), port);
        assert!(server.store_dir().join("marker").exists());
    }
}

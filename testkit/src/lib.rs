//! Helpers shared by the test suites of every crate (and the demo, which
//! runs its nats-server the same way).
//!
//! [`NatsServer`] runs a real `nats-server -js` per test, on a port the
//! server picks itself (so tests never race for one), with its own temporary
//! store; both are gone when it is dropped.

use std::os::unix::process::CommandExt;
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
    /// Extra environment for the server process, kept across restarts.
    env: Vec<(String, String)>,
    /// Run in a process group of its own (see [`NatsServer::try_start_apart`]).
    own_group: bool,
    /// Extra arguments (`--user`, say), kept across restarts.
    args: Vec<String>,
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
    /// Starts a server on a port of its own choosing and waits until it
    /// serves; panics (failing the test) if it cannot.
    pub async fn start() -> Self {
        Self::try_start().await.unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts a server, or says in one line why it could not.
    pub async fn try_start() -> Result<Self, String> {
        Self::try_start_with_env(&[]).await
    }

    /// [`NatsServer::try_start`] with extra environment for the server
    /// (`GOMAXPROCS`, say).
    pub async fn try_start_with_env(env: &[(&str, &str)]) -> Result<Self, String> {
        Self::try_start_with(env, false, &[]).await
    }

    /// [`NatsServer::start`] with extra arguments (`--user bob --pass ...`).
    pub async fn start_with_args(args: &[&str]) -> Self {
        Self::try_start_with(&[], false, args)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`NatsServer::try_start`] in a process group of its own, for a
    /// program run at a terminal: a Ctrl-C there reaches only that program,
    /// which then stops its clients before the server (dropping this stops
    /// it). Tests keep the server in their group, so that a Ctrl-C of the
    /// test run, which skips their clean-up, stops it too.
    pub async fn try_start_apart() -> Result<Self, String> {
        Self::try_start_with(&[], true, &[]).await
    }

    async fn try_start_with(
        env: &[(&str, &str)],
        own_group: bool,
        args: &[&str],
    ) -> Result<Self, String> {
        let dir = tempfile::Builder::new()
            .prefix("chatops-nats-")
            .tempdir()
            .map_err(|e| format!("cannot create a temporary directory for nats-server: {e}"))?;
        let mut server = Self {
            child: None,
            dir,
            port: 0,
            env: env
                .iter()
                .map(|&(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            own_group,
            args: args.iter().map(|&a| a.to_owned()).collect(),
        };
        server.spawn("-1").await?;
        Ok(server)
    }

    /// `nats://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
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
        self.spawn(&port).await.unwrap_or_else(|e| panic!("{e}"));
    }

    async fn spawn(&mut self, port: &str) -> Result<(), String> {
        let ports_dir = self.dir.path().join("ports");
        let _ = std::fs::remove_dir_all(&ports_dir);
        std::fs::create_dir_all(&ports_dir)
            .map_err(|e| format!("cannot create {}: {e}", ports_dir.display()))?;
        let bin = nats_server_bin();
        let mut command = Command::new(&bin);
        if self.own_group {
            command.process_group(0);
        }
        let child = command
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .args(["-js", "-a", "127.0.0.1", "-p", port])
            .args(&self.args)
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
            .map_err(|e| {
                format!(
                    "cannot run {}: {e}; install it with `apt-get install nats-server` (scripts/setup does), or set NATS_SERVER_BIN",
                    bin.display()
                )
            })?;
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        self.port = self.await_port(&ports_dir, deadline).await?;
        self.await_serving(deadline).await
    }

    /// The server writes its client URL to a ports file once it listens.
    async fn await_port(&mut self, ports_dir: &Path, deadline: Instant) -> Result<u16, String> {
        loop {
            self.check_running()?;
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
                return Ok(port);
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "nats-server wrote no ports file in {START_TIMEOUT:?}; log: {}",
                    self.log()
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Serving means a client connection gets the server's INFO line.
    async fn await_serving(&mut self, deadline: Instant) -> Result<(), String> {
        loop {
            self.check_running()?;
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
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "nats-server did not serve in {START_TIMEOUT:?}; log: {}",
                    self.log()
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn check_running(&mut self) -> Result<(), String> {
        let exited = self
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten());
        match exited {
            Some(status) => Err(format!(
                "nats-server exited with {status}; log: {}",
                self.log()
            )),
            None => Ok(()),
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

/// An HTTP client for tests (plain HTTP to loopback; rustls with ring is
/// installed as the process's TLS provider, as the binaries do).
pub fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("build an HTTP client")
}

/// What a process printed and how it ended.
#[derive(Debug)]
pub struct Exit {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `bin` with exactly `envs` (plus `PATH`), no stdin, and waits for it
/// to exit; panics if it is still running after `limit`.
pub async fn run_to_exit(bin: &Path, envs: &[(&str, &str)], limit: Duration) -> Exit {
    let mut cmd = tokio::process::Command::new(bin);
    cmd.env_clear()
        .envs(std::env::var_os("PATH").map(|p| ("PATH", p)))
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = timeout(limit, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("{} did not exit within {limit:?}", bin.display()))
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
    Exit {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Polls `probe` until it returns `Some`, failing the test after `limit`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A child process whose stdout and stderr are captured as they arrive,
/// killed on drop.
#[derive(Debug)]
pub struct Process {
    child: tokio::process::Child,
    output: std::sync::Arc<std::sync::Mutex<String>>,
    readers: Vec<tokio::task::JoinHandle<()>>,
}

impl Process {
    /// Spawns `bin` with exactly `envs` (plus `PATH`) and `args`.
    pub fn spawn(bin: &Path, args: &[&str], envs: &[(&str, &str)]) -> Self {
        let mut child = tokio::process::Command::new(bin)
            .args(args)
            .env_clear()
            .envs(std::env::var_os("PATH").map(|p| ("PATH", p)))
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
        let output = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut readers = Vec::new();
        let stdout = child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>);
        let stderr = child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>);
        for stream in [stdout, stderr].into_iter().flatten() {
            let output = output.clone();
            readers.push(tokio::spawn(async move {
                use tokio::io::AsyncBufReadExt;
                let mut lines = tokio::io::BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let mut out = output.lock().unwrap_or_else(|p| p.into_inner());
                    out.push_str(&line);
                    out.push('\n');
                }
            }));
        }
        Self {
            child,
            output,
            readers,
        }
    }

    /// Everything printed so far, stdout and stderr interleaved by line.
    pub fn output(&self) -> String {
        self.output
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Waits until a printed line contains `needle`; returns that line.
    pub async fn wait_for_line(&mut self, needle: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(line) = self.output().lines().find(|l| l.contains(needle)) {
                return line.to_owned();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "process exited with {status} before printing {needle:?}:\n{}",
                    self.output()
                );
            }
            assert!(
                Instant::now() < deadline,
                "no line with {needle:?} within {limit:?}:\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    /// Sends a signal by name (`TERM`, `INT`, `KILL`, ...).
    pub fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .args([format!("-{name}"), self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the exit code, with all output read.
    pub async fn wait(mut self, limit: Duration) -> (Option<i32>, String) {
        let status = timeout(limit, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("process did not exit within {limit:?}:\n{}", self.output()))
            .expect("wait for the process");
        for reader in self.readers.drain(..) {
            let _ = reader.await;
        }
        (status.code(), self.output())
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

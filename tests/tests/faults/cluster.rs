//! A three-node nats-server cluster with JetStream on loopback.
//!
//! Client ports are picked by each server (`-1`, read back from its ports
//! file). A JetStream cluster needs its routes configured up front, so the
//! cluster ports are found by binding port 0 and releasing it; if another
//! process takes one in between, the node cannot start and the whole
//! cluster is started again on fresh ports.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::time::Instant;

const START_TIMEOUT: Duration = Duration::from_secs(30);
const ATTEMPTS: usize = 5;

#[derive(Debug)]
struct Node {
    name: String,
    dir: PathBuf,
    child: Option<Child>,
    client_port: u16,
    cluster_port: u16,
}

/// Three servers, one JetStream cluster; all killed on drop.
#[derive(Debug)]
pub struct NatsCluster {
    _root: tempfile::TempDir,
    nodes: Vec<Node>,
}

fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

impl NatsCluster {
    pub async fn start() -> Self {
        let mut last = String::new();
        for _ in 0..ATTEMPTS {
            match Self::try_start().await {
                Ok(cluster) => return cluster,
                Err(e) => last = e,
            }
        }
        panic!("no NATS cluster after {ATTEMPTS} attempts: {last}");
    }

    async fn try_start() -> Result<Self, String> {
        let root = tempfile::Builder::new()
            .prefix("chatops-nats-cluster-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let ports = [free_port()?, free_port()?, free_port()?];
        let mut cluster = Self {
            nodes: (0..3)
                .map(|i| Node {
                    name: format!("n{i}"),
                    dir: root.path().join(format!("n{i}")),
                    child: None,
                    client_port: 0,
                    cluster_port: ports[i],
                })
                .collect(),
            _root: root,
        };
        for i in 0..3 {
            cluster.spawn(i, None)?;
        }
        let deadline = Instant::now() + START_TIMEOUT;
        for i in 0..3 {
            cluster.await_serving(i, deadline).await?;
        }
        Ok(cluster)
    }

    /// Every client URL, comma-separated, as `NATS_URL` takes them.
    pub fn url(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("nats://127.0.0.1:{}", n.client_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// SIGKILLs the node named `name`, keeping its store.
    pub fn kill(&mut self, name: &str) {
        if let Some(node) = self.nodes.iter_mut().find(|n| n.name == name)
            && let Some(mut child) = node.child.take()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a killed node again, on its old ports if they are still free.
    pub async fn restart(&mut self, name: &str) {
        let i = self
            .nodes
            .iter()
            .position(|n| n.name == name)
            .expect("a node of this cluster");
        let port = self.nodes[i].client_port;
        self.spawn(i, Some(port)).expect("the node starts again");
        let deadline = Instant::now() + START_TIMEOUT;
        if let Err(e) = self.await_serving(i, deadline).await {
            // Its ports were taken meanwhile: any others will do, since it
            // solicits the routes to the others itself.
            self.kill(name);
            self.nodes[i].cluster_port = free_port().expect("a free port");
            self.spawn(i, None).expect("the node starts again");
            self.await_serving(i, Instant::now() + START_TIMEOUT)
                .await
                .unwrap_or_else(|e2| panic!("{name} does not start again: {e}; then {e2}"));
        }
    }

    fn spawn(&mut self, i: usize, client_port: Option<u16>) -> Result<(), String> {
        let routes: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("nats-route://127.0.0.1:{}", n.cluster_port))
            .collect();
        let node = &mut self.nodes[i];
        let ports_dir = node.dir.join("ports");
        let _ = std::fs::remove_dir_all(&ports_dir);
        std::fs::create_dir_all(&ports_dir).map_err(|e| e.to_string())?;
        let config = format!(
            "server_name: {name}\nlisten: \"127.0.0.1:{client}\"\nports_file_dir: \"{ports}\"\njetstream {{ store_dir: \"{store}\" }}\ncluster {{\n  name: chatops\n  listen: \"127.0.0.1:{cluster}\"\n  routes: [{routes}]\n}}\n",
            name = node.name,
            client = client_port.map_or_else(|| "-1".to_owned(), |p| p.to_string()),
            ports = ports_dir.display(),
            store = node.dir.join("store").display(),
            cluster = node.cluster_port,
            routes = routes.join(", "),
        );
        let conf = node.dir.join("server.conf");
        std::fs::write(&conf, config).map_err(|e| e.to_string())?;
        let child = Command::new(chatops_testkit::nats_server_bin())
            .arg("-c")
            .arg(&conf)
            .arg("-l")
            .arg(node.dir.join("server.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run nats-server: {e}"))?;
        node.child = Some(child);
        Ok(())
    }

    async fn await_serving(&mut self, i: usize, deadline: Instant) -> Result<(), String> {
        let node = &mut self.nodes[i];
        let ports_dir = node.dir.join("ports");
        loop {
            if let Some(status) = node
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                return Err(format!(
                    "{} exited with {status}: {}",
                    node.name,
                    tail(&node.dir.join("server.log"))
                ));
            }
            if let Some(port) = read_port(&ports_dir)
                && tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .is_ok()
            {
                node.client_port = port;
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{} did not serve: {}",
                    node.name,
                    tail(&node.dir.join("server.log"))
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn read_port(dir: &Path) -> Option<u16> {
    let entry = std::fs::read_dir(dir).ok()?.next()?.ok()?;
    let text = std::fs::read_to_string(entry.path()).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["nats"][0].as_str()?.rsplit(':').next()?.parse().ok()
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

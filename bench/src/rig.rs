//! Starting the system on loopback, each part a process of its own on a port
//! the OS picks: nats-server (through the testkit), the Kubernetes and
//! Webex sandboxes, the gateway and the workers.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use async_nats::jetstream;
use chatops_gateway::webex::{NewMessage, WebexClient};
use chatops_shared::streams::{self, StreamSettings};

use crate::procs::{Binaries, Proc, Usage};
use crate::webhook::SECRET;

/// How long any process may take to start.
const START_LIMIT: Duration = Duration::from_secs(60);

pub const BOT_TOKEN: &str = "bench-bot-token";
pub const ALICE: &str = "alice@example.com";
pub const ALICE_TOKEN: &str = "bench-alice-token";

/// Where a run keeps its processes' logs and generated manifests.
#[derive(Debug, Clone)]
pub struct Rig {
    pub bins: Binaries,
    pub dir: PathBuf,
    /// Extra environment for gateways and workers (`--child-env`).
    pub child_env: Vec<(String, String)>,
    /// GOMAXPROCS of the nats-server beside the whole system (0: Go's
    /// default), see [`Nats::start_beside_system`].
    pub nats_gomaxprocs: usize,
}

impl Rig {
    /// `base` plus the extra environment, the extra winning.
    fn env<'a>(&'a self, base: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut all: Vec<(&str, &str)> = base
            .iter()
            .filter(|(k, _)| !self.child_env.iter().any(|(c, _)| c == k))
            .copied()
            .collect();
        all.extend(self.child_env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        all
    }

    /// `GOMAXPROCS` of the nats-server beside the whole system; `None`
    /// leaves Go's default.
    pub fn system_nats_gomaxprocs(&self) -> Option<String> {
        (self.nats_gomaxprocs > 0).then(|| self.nats_gomaxprocs.to_string())
    }

    /// A directory for one world (one set of processes).
    pub fn world_dir(&self, name: &str) -> anyhow::Result<PathBuf> {
        let dir = self.dir.join(name);
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        Ok(dir)
    }
}

/// A nats-server, and a JetStream context on it with the streams set up as
/// the binaries would.
#[derive(Debug)]
pub struct Nats {
    pub server: chatops_testkit::NatsServer,
    pub client: async_nats::Client,
    pub js: jetstream::Context,
}

impl Nats {
    /// A nats-server with Go's defaults: for the ceiling, and for intake,
    /// whose ratio to the ceiling must compare like with like.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with_env(&[]).await
    }

    /// A nats-server that shares the two cores with the gateway, workers and
    /// both stand-ins. With GOMAXPROCS at the core count, Go's idle
    /// schedulers spin looking for work, on CPU the other processes need:
    /// at 1,000 commands/s end to end, GOMAXPROCS=1 took nats-server from
    /// 0.37–0.38 to 0.33–0.34 cores, and commands completed from 959–989/s
    /// to 998–1,000/s (two runs each). `--nats-gomaxprocs 0` turns it off.
    pub async fn start_beside_system(rig: &Rig) -> anyhow::Result<Self> {
        match rig.system_nats_gomaxprocs() {
            Some(procs) => Self::start_with_env(&[("GOMAXPROCS", &procs)]).await,
            None => Self::start().await,
        }
    }

    async fn start_with_env(env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let server = chatops_testkit::NatsServer::try_start_with_env(env)
            .await
            .map_err(anyhow::Error::msg)?;
        let client = async_nats::connect(server.url())
            .await
            .context("connect to nats-server")?;
        let js = jetstream::new(client.clone());
        Ok(Self { server, client, js })
    }

    pub async fn ensure_streams(&self) -> anyhow::Result<()> {
        streams::ensure(&self.js, &StreamSettings::default())
            .await
            .context("set up the streams")?;
        Ok(())
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The server's process id (0 once it has stopped).
    pub fn pid(&self) -> u32 {
        self.server.pid().unwrap_or(0)
    }

    /// Messages stored in a stream.
    pub async fn stored(&self, stream: &str) -> anyhow::Result<u64> {
        let mut stream = self.js.get_stream(stream).await?;
        Ok(stream.info().await?.state.messages)
    }
}

/// `count` Deployments `app-0` … as one multi-document manifest.
pub fn deployments_yaml(count: usize) -> String {
    (0..count)
        .map(|i| {
            format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{i}\n  namespace: default\nspec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: app-{i}\n  template:\n    metadata:\n      labels:\n        app: app-{i}\n    spec:\n      containers:\n        - name: main\n          image: registry.example.com/app:1.0.0\n"
            )
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

/// The Kubernetes sandbox process.
#[derive(Debug)]
pub struct Kube {
    pub proc: Proc,
    pub url: String,
    http: reqwest::Client,
}

impl Kube {
    /// Seeded with `deployments` Deployments; rollouts complete at once
    /// (the stand-in has no latency unless [`Kube::latency`] adds it).
    pub async fn start(rig: &Rig, dir: &Path, deployments: usize) -> anyhow::Result<Self> {
        let seed = dir.join("deployments.yaml");
        std::fs::write(&seed, deployments_yaml(deployments)).context("write the seed")?;
        let seed = seed.display().to_string();
        let mut proc = Proc::spawn(
            "kube-sandbox",
            &rig.bins.kube_sandbox,
            &["--seed", &seed, "--rollout-seconds", "0"],
            &[("RUST_LOG", "warn")],
            dir,
        )?;
        let line = proc
            .wait_for_line("kube-sandbox listening on ", START_LIMIT)
            .await?;
        let url = line
            .rsplit(' ')
            .next()
            .context("no URL in the start-up line")?
            .to_owned();
        Ok(Self {
            proc,
            url,
            http: http()?,
        })
    }

    /// Every API call from now on waits `d` before it is served.
    pub async fn latency(&self, d: Duration) -> anyhow::Result<()> {
        let fault = serde_json::json!({
            "latency_ms": u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
            "count": null,
        });
        let r = self
            .http
            .post(format!("{}/_sandbox/faults", self.url))
            .json(&fault)
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("the kube sandbox refused the latency fault: {}", r.status());
        }
        Ok(())
    }

    /// API requests served so far (the sandbox keeps the last 100,000).
    pub async fn requests(&self) -> anyhow::Result<usize> {
        let log: Vec<serde_json::Value> = self
            .http
            .get(format!("{}/_sandbox/requests", self.url))
            .send()
            .await?
            .json()
            .await?;
        Ok(log.len())
    }
}

/// The Webex sandbox process.
#[derive(Debug)]
pub struct Webex {
    pub proc: Proc,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub room_id: String,
    pub bot_id: String,
    pub bot_email: String,
    http: reqwest::Client,
    /// Alice's Webex client, for what she says.
    alice: WebexClient,
}

impl Webex {
    pub async fn start(rig: &Rig, dir: &Path) -> anyhow::Result<Self> {
        let user = format!("{ALICE}={ALICE_TOKEN}");
        let mut proc = Proc::spawn(
            "webex-sandbox",
            &rig.bins.webex_sandbox,
            &["--bot-token", BOT_TOKEN, "--user", &user],
            &[("RUST_LOG", "warn")],
            dir,
        )?;
        let listening = proc
            .wait_for_line("webex-sandbox listening on ", START_LIMIT)
            .await?;
        let room = proc.wait_for_line("default room: ", START_LIMIT).await?;
        let bot = proc.wait_for_line("bot: ", START_LIMIT).await?;
        let last = |line: &str| line.rsplit(' ').next().unwrap_or_default().to_owned();
        let bot_email = bot
            .split_whitespace()
            .find(|w| w.starts_with('<'))
            .map(|w| w.trim_matches(|c| c == '<' || c == '>').to_owned())
            .context("no bot email in the start-up line")?;
        let base = last(&listening);
        Ok(Self {
            alice: WebexClient::new(&format!("{base}/v1"), ALICE_TOKEN.to_owned().into()),
            base,
            room_id: last(&room),
            bot_id: last(&bot),
            bot_email,
            proc,
            http: http()?,
        })
    }

    pub fn api_url(&self) -> String {
        format!("{}/v1", self.base)
    }

    /// Alice's person id.
    pub async fn alice_id(&self) -> anyhow::Result<String> {
        Ok(self.alice.me().await.context("who is alice")?.id)
    }

    /// Alice mentions the bot with `text` in the default room; the message id.
    pub async fn say(&self, text: &str) -> anyhow::Result<String> {
        let message = NewMessage {
            room_id: self.room_id.clone(),
            parent_id: None,
            markdown: format!("<@personId:{}|kube> {text}", self.bot_id),
        };
        Ok(self
            .alice
            .post_message(&message)
            .await
            .context("alice's message")?
            .id)
    }

    /// Every `POST /v1/messages` the bot made after the record `after` (a
    /// `seq`; 0 for all), as the sandbox recorded it.
    pub async fn bot_posts(&self, after: u64) -> anyhow::Result<Vec<serde_json::Value>> {
        Ok(self
            .http
            .get(format!("{}/_sandbox/requests", self.base))
            .query(&[
                ("method", "POST"),
                ("path", "/v1/messages"),
                ("actor", self.bot_email.as_str()),
                ("after", &after.to_string()),
            ])
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }
}

/// A gateway process.
#[derive(Debug)]
pub struct Gateway {
    pub proc: Proc,
    pub addr: SocketAddr,
}

impl Gateway {
    /// A gateway on `nats` whose Webex API is `webex_api` (an address
    /// nothing listens on keeps ingestion and the notifier waiting).
    pub async fn start(rig: &Rig, dir: &Path, nats: &str, webex_api: &str) -> anyhow::Result<Self> {
        let env = rig.env(&[
            ("NATS_URL", nats),
            ("GATEWAY_ADDR", "127.0.0.1:0"),
            ("WEBEX_BOT_TOKEN", BOT_TOKEN),
            ("WEBEX_WEBHOOK_SECRET", SECRET),
            ("WEBEX_API_URL", webex_api),
            ("AUTHORIZED_USERS", ALICE),
        ]);
        let mut proc = Proc::spawn("gateway", &rig.bins.gateway, &[], &env, dir)?;
        let line = proc.wait_for_line("gateway listening", START_LIMIT).await?;
        let addr = listening_addr(&line).context("the gateway's start-up line")?;
        Ok(Self { proc, addr })
    }

    /// Waits until ingestion has found the bot (it asks Webex first).
    pub async fn ingesting(&mut self) -> anyhow::Result<()> {
        self.proc
            .wait_for_line("ingestion started", START_LIMIT)
            .await
            .map(drop)
    }
}

/// The empty HTTP server (`http-floor`): what HTTP alone costs, the bound
/// for any intake.
#[derive(Debug)]
pub struct HttpFloor {
    pub proc: Proc,
    pub addr: SocketAddr,
}

impl HttpFloor {
    pub async fn start(rig: &Rig, dir: &Path) -> anyhow::Result<Self> {
        let env = rig.env(&[]);
        let mut proc = Proc::spawn("http-floor", &rig.bins.http_floor, &[], &env, dir)?;
        let line = proc
            .wait_for_line("http-floor listening", START_LIMIT)
            .await?;
        let addr = listening_addr(&line).context("http-floor's start-up line")?;
        Ok(Self { proc, addr })
    }
}

/// The address in a start-up line's `addr=` field.
fn listening_addr(line: &str) -> anyhow::Result<SocketAddr> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("addr="))
        .context("no addr= field")?
        .parse()
        .context("not an address")
}

/// A worker process.
#[derive(Debug)]
pub struct Worker {
    pub proc: Proc,
}

impl Worker {
    pub async fn start(
        rig: &Rig,
        dir: &Path,
        name: &str,
        nats: &str,
        kube: &str,
        concurrency: usize,
    ) -> anyhow::Result<Self> {
        let concurrency = concurrency.to_string();
        let env = rig.env(&[
            ("NATS_URL", nats),
            ("CLUSTER_URL", kube),
            ("WORKER_ADDR", "127.0.0.1:0"),
            ("WORKER_CONCURRENCY", &concurrency),
            // The client-side rate limit (50/s by default) protects a real
            // API server; here the stand-in's latency is the bound being
            // measured.
            ("CHATOPS_KUBE_QPS", "100000"),
            ("CHATOPS_KUBE_BURST", "100000"),
        ]);
        let mut proc = Proc::spawn(name, &rig.bins.worker, &[], &env, dir)?;
        proc.wait_for_line("worker started", START_LIMIT).await?;
        Ok(Self { proc })
    }

    pub fn usage(&self) -> Usage {
        self.proc.usage()
    }
}

/// An HTTP client for control calls (not for load).
pub fn http() -> anyhow::Result<reqwest::Client> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .context("build an HTTP client")
}

/// A loopback address nothing listens on.
pub fn closed_address() -> anyhow::Result<String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    drop(listener);
    Ok(format!("http://{addr}/v1"))
}

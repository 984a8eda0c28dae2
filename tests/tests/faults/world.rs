//! One test's world: nats-server (one, or a cluster of three), the
//! Kubernetes sandbox seeded with deployments under the bot's
//! least-privilege role, the Webex sandbox with the bot and its users, and
//! gateway and worker processes (the real binaries), all configured
//! identically, as drift checks demand.

use std::path::Path;
use std::time::Duration;

use async_nats::jetstream;
use chatops_sandbox::kube::KubeSandbox;
use chatops_sandbox::webex::{Message, WebexSandbox};
use chatops_shared::streams::{
    COMMANDS_STREAM, EVENTS_STREAM, INGESTION_CONSUMER, NOTIFIER_CONSUMER, RESULTS_STREAM,
    WORKERS_CONSUMER,
};
use chatops_testkit::{NatsServer, Process, eventually};

use crate::bins::bins;
use crate::cluster::NatsCluster;

pub const LIMIT: Duration = Duration::from_secs(120);
pub const START: Duration = Duration::from_secs(60);

pub const BOT_TOKEN: &str = "bot-token-SECRET-7f3a9c";
pub const WEBHOOK_SECRET: &str = "webhook-secret-SECRET-51be0d";
pub const KUBE_TOKEN: &str = "kube-token-SECRET-c0ffee";
pub const ALICE: &str = "alice@example.com";
pub const BOB: &str = "bob@example.com";
pub const MALLORY: &str = "mallory@example.com";

/// Every secret a process is given; none may appear in any output.
pub const SECRETS: [&str; 3] = [BOT_TOKEN, WEBHOOK_SECRET, KUBE_TOKEN];

pub enum Nats {
    One(NatsServer),
    Three(NatsCluster),
}

impl Nats {
    pub fn url(&self) -> String {
        match self {
            Self::One(s) => s.url(),
            Self::Three(c) => c.url(),
        }
    }
}

/// How to build a world.
#[derive(Debug, Clone)]
pub struct Options {
    pub deployments: usize,
    pub gateways: usize,
    pub workers: usize,
    pub cluster: bool,
    /// Extra environment for every gateway and worker (log levels).
    pub env: Vec<(String, String)>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            deployments: 20,
            gateways: 1,
            workers: 2,
            cluster: false,
            env: Vec::new(),
        }
    }
}

/// A process of the world, with what it is called in failure messages.
pub struct Proc {
    pub name: String,
    pub process: Process,
    pub addr: String,
}

pub struct World {
    pub nats: Nats,
    pub kube: KubeSandbox,
    pub wx: WebexSandbox,
    pub gateways: Vec<Proc>,
    pub workers: Vec<Proc>,
    pub js: jetstream::Context,
    options: Options,
    /// The output of processes that were stopped, by name.
    retired: Vec<(String, String)>,
    webhook_id: String,
    spawned: usize,
}

pub fn deployment(name: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: {name}\n  template:\n    metadata:\n      labels:\n        app: {name}\n    spec:\n      containers:\n        - name: main\n          image: registry.example.com/app:0\n"
    )
}

fn resource(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../resources")
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn app(i: usize) -> String {
    format!("app-{i}")
}

impl World {
    pub async fn start(options: Options) -> Self {
        let _ = bins();
        let nats = if options.cluster {
            Nats::Three(NatsCluster::start().await)
        } else {
            Nats::One(NatsServer::start().await)
        };
        let mut kube = KubeSandbox::builder()
            .rollout(Duration::from_millis(100))
            .rbac_yaml(&resource("sa.yaml"))
            .rbac_yaml(&resource("role.yaml"))
            .rbac_yaml(&resource("rb.yaml"))
            .enforce_rbac(true)
            .token(KUBE_TOKEN, "system:serviceaccount:default:chatops-bot");
        for i in 0..options.deployments {
            kube = kube.seed_yaml(&deployment(&app(i)));
        }
        let kube = kube.start().await.expect("the Kubernetes sandbox starts");
        let wx = WebexSandbox::builder()
            .bot("kube", BOT_TOKEN)
            .user(ALICE, "alice-token")
            .user(BOB, "bob-token")
            .user(MALLORY, "mallory-token")
            .start()
            .await
            .expect("the Webex sandbox starts");
        let js = connect(&nats).await;
        let mut world = Self {
            nats,
            kube,
            wx,
            gateways: Vec::new(),
            workers: Vec::new(),
            js,
            options: options.clone(),
            retired: Vec::new(),
            webhook_id: String::new(),
            spawned: 0,
        };
        for _ in 0..options.gateways {
            world.spawn_gateway().await;
        }
        for _ in 0..options.workers {
            world.spawn_worker().await;
        }
        if let Some(addr) = world.gateways.first().map(|g| g.addr.clone()) {
            world.register_webhook(&addr).await;
        }
        world
    }

    /// What every gateway and worker shares (the streams' settings above all).
    fn common_env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("NATS_URL".to_owned(), self.nats.url()),
            ("CHATOPS_ACK_WAIT".to_owned(), "2s".to_owned()),
            ("CHATOPS_MAX_DELIVER".to_owned(), "5".to_owned()),
            (
                "CHATOPS_STREAM_REPLICAS".to_owned(),
                if self.options.cluster { "3" } else { "1" }.to_owned(),
            ),
            ("RUST_LOG".to_owned(), "info".to_owned()),
        ];
        for (k, v) in &self.options.env {
            env.retain(|(key, _)| key != k);
            env.push((k.clone(), v.clone()));
        }
        env
    }

    pub fn gateway_env(&self) -> Vec<(String, String)> {
        let mut env = self.common_env();
        env.extend(
            [
                ("WEBEX_BOT_TOKEN", BOT_TOKEN.to_owned()),
                ("WEBEX_WEBHOOK_SECRET", WEBHOOK_SECRET.to_owned()),
                ("WEBEX_API_URL", self.wx.url()),
                ("AUTHORIZED_USERS", format!("{ALICE},{BOB}")),
                ("GATEWAY_ADDR", "127.0.0.1:0".to_owned()),
            ]
            .map(|(k, v)| (k.to_owned(), v)),
        );
        env
    }

    pub fn worker_env(&self) -> Vec<(String, String)> {
        let mut env = self.common_env();
        env.extend(
            [
                ("CLUSTER_URL", self.kube.url()),
                ("KUBERNETES_TOKEN", KUBE_TOKEN.to_owned()),
                ("WORKER_ADDR", "127.0.0.1:0".to_owned()),
                ("WORKER_CONCURRENCY", "4".to_owned()),
            ]
            .map(|(k, v)| (k.to_owned(), v)),
        );
        env
    }

    /// Starts a gateway with `env` and waits until it serves; its address.
    pub async fn spawn_gateway_with(&mut self, env: &[(String, String)]) -> String {
        self.spawned += 1;
        let name = format!("gateway-{}", self.spawned);
        let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut process = Process::spawn(&bins().gateway, &[], &pairs);
        let line = process.wait_for_line("gateway listening", START).await;
        let addr = field(&line, "addr").unwrap_or_else(|| panic!("no address in {line:?}"));
        process.wait_for_line("ingestion started", START).await;
        self.gateways.push(Proc {
            name,
            process,
            addr: addr.clone(),
        });
        addr
    }

    pub async fn spawn_gateway(&mut self) -> String {
        let env = self.gateway_env();
        self.spawn_gateway_with(&env).await
    }

    pub async fn spawn_worker_with(&mut self, env: &[(String, String)]) {
        self.spawned += 1;
        let name = format!("worker-{}", self.spawned);
        let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut process = Process::spawn(&bins().worker, &[], &pairs);
        let line = process.wait_for_line("worker started", START).await;
        let addr = field(&line, "addr").unwrap_or_default();
        self.workers.push(Proc {
            name,
            process,
            addr,
        });
    }

    pub async fn spawn_worker(&mut self) {
        let env = self.worker_env();
        self.spawn_worker_with(&env).await;
    }

    /// SIGKILLs a process; its output is kept for the final checks.
    pub async fn kill(&mut self, proc: Proc) {
        proc.process.signal("KILL");
        let (_, output) = proc.process.wait(LIMIT).await;
        self.retired.push((proc.name, output));
    }

    pub async fn kill_worker(&mut self, i: usize) {
        let proc = self.workers.remove(i);
        self.kill(proc).await;
    }

    pub async fn kill_gateway(&mut self, i: usize) {
        let proc = self.gateways.remove(i);
        self.kill(proc).await;
    }

    /// The bot's webhook, as `chatops webhook register` creates it.
    pub async fn register_webhook(&mut self, gateway_addr: &str) {
        let created: serde_json::Value = chatops_testkit::http()
            .post(format!("{}/webhooks", self.wx.url()))
            .bearer_auth(BOT_TOKEN)
            .json(&serde_json::json!({
                "name": "chatops",
                "targetUrl": format!("http://{gateway_addr}/webhooks/webex"),
                "resource": "messages",
                "event": "created",
                "filter": "mentionedPeople=me",
                "secret": WEBHOOK_SECRET,
            }))
            .send()
            .await
            .expect("Webex answers")
            .error_for_status()
            .expect("the webhook is registered")
            .json()
            .await
            .expect("a webhook");
        self.webhook_id = created["id"].as_str().expect("an id").to_owned();
    }

    /// Points the webhook at another gateway (as an operator would after
    /// moving it; behind a load balancer nothing would change).
    pub async fn retarget_webhook(&self, gateway_addr: &str) {
        chatops_testkit::http()
            .put(format!("{}/webhooks/{}", self.wx.url(), self.webhook_id))
            .bearer_auth(BOT_TOKEN)
            .json(&serde_json::json!({
                "name": "chatops",
                "targetUrl": format!("http://{gateway_addr}/webhooks/webex"),
                "status": "active",
            }))
            .send()
            .await
            .expect("Webex answers")
            .error_for_status()
            .expect("the webhook is updated");
    }

    /// `email` mentions the bot with `text` in the room.
    pub fn say(&self, email: &str, text: &str) -> Message {
        let markdown = format!("{} {text}", self.wx.bot().mention());
        self.wx
            .post_as(email, self.wx.default_room_id(), &markdown)
            .expect("post the message")
    }

    /// The bot's messages in the thread of `message_id`.
    pub fn bot_replies(&self, message_id: &str) -> Vec<Message> {
        let bot = self.wx.bot().id.clone();
        self.wx
            .thread(message_id)
            .into_iter()
            .filter(|m| m.person_id == bot)
            .collect()
    }

    /// Waits until nothing is pending or unacknowledged on any consumer.
    pub async fn quiescent(&self) {
        let js = self.js.clone();
        eventually("every consumer to be idle", LIMIT, || {
            let js = js.clone();
            async move {
                for (stream, consumer) in [
                    (EVENTS_STREAM, INGESTION_CONSUMER),
                    (COMMANDS_STREAM, WORKERS_CONSUMER),
                    (RESULTS_STREAM, NOTIFIER_CONSUMER),
                ] {
                    let stream = js.get_stream(stream).await.ok()?;
                    let mut c: jetstream::consumer::PullConsumer =
                        stream.get_consumer(consumer).await.ok()?;
                    let info = c.info().await.ok()?;
                    if info.num_pending != 0 || info.num_ack_pending != 0 {
                        return None;
                    }
                }
                Some(())
            }
        })
        .await;
    }

    /// Messages stored in a stream.
    pub async fn stored(&self, stream: &str) -> u64 {
        let mut stream = self.js.get_stream(stream).await.expect("the stream exists");
        stream.info().await.expect("stream info").state.messages
    }

    /// Every process's output so far, by name (stopped ones included).
    pub fn outputs(&self) -> Vec<(String, String)> {
        let mut all = self.retired.clone();
        for p in self.gateways.iter().chain(&self.workers) {
            all.push((p.name.clone(), p.process.output()));
        }
        all
    }

    /// No process panicked, and none printed a secret.
    pub fn assert_clean_outputs(&self) {
        for (name, output) in self.outputs() {
            assert!(!output.contains("panicked"), "{name} panicked:\n{output}");
            for secret in SECRETS {
                assert!(
                    !output.contains(secret),
                    "{name} printed a secret ({}…):\n{output}",
                    &secret[..8]
                );
            }
        }
    }
}

/// `key=value` from a log line, text or JSON.
fn field(line: &str, key: &str) -> Option<String> {
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(line) {
        return json["fields"][key].as_str().map(str::to_owned);
    }
    let start = line.find(&format!("{key}="))? + key.len() + 1;
    let rest = &line[start..];
    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    Some(rest[..end].trim_matches('"').to_owned())
}

async fn connect(nats: &Nats) -> jetstream::Context {
    let addrs: Vec<async_nats::ServerAddr> = nats
        .url()
        .split(',')
        .filter_map(|u| u.parse().ok())
        .collect();
    let client = async_nats::ConnectOptions::new()
        .connect(addrs)
        .await
        .expect("connect to NATS");
    // A fresh cluster serves JetStream once it has elected a meta leader.
    eventually("JetStream to be available", START, || {
        let client = client.clone();
        async move {
            let answer = client.request("$JS.API.INFO", "".into()).await.ok()?;
            let info: serde_json::Value = serde_json::from_slice(&answer.payload).ok()?;
            info.get("error").is_none().then_some(())
        }
    })
    .await;
    jetstream::new(client)
}

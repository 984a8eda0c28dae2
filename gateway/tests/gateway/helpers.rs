//! Test helpers: a gateway running in-process on port 0 against a real
//! nats-server, and signed webhook requests.

use std::time::Duration;

use async_nats::jetstream;
use chatops_gateway::config::GatewayConfig;
use chatops_gateway::intake::sign;
use chatops_gateway::startup::Application;
use chatops_shared::Namespace;
use chatops_shared::config::{NatsConfig, PolicySource};
use chatops_shared::streams::StreamSettings;
use chatops_testkit::NatsServer;
use tokio::sync::oneshot;

pub const SECRET: &str = "webhook-secret-TOPSECRET";
pub const BOT_TOKEN: &str = "bot-token-TOPSECRET";

/// A gateway serving on a loopback port; stopped on drop.
pub struct TestGateway {
    pub base: String,
    pub http: reqwest::Client,
    pub jetstream: jetstream::Context,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

pub fn config(nats: &NatsServer, webex_url: &str, policy: PolicySource) -> GatewayConfig {
    GatewayConfig {
        listen: "127.0.0.1:0".parse().expect("address"),
        nats: NatsConfig { url: nats.url() },
        streams: StreamSettings {
            ack_wait: Duration::from_secs(5),
            ..StreamSettings::default()
        },
        webex: chatops_shared::config::WebexConfig {
            bot_token: BOT_TOKEN.to_owned().into(),
            webhook_secret: SECRET.to_owned().into(),
            api_url: webex_url.to_owned(),
            bot_name: None,
        },
        policy,
        default_namespace: Namespace::default_namespace(),
        max_replicas: 20,
        max_message_age: Duration::from_secs(600),
        // No worker runs here: the tests that want the note set it.
        unclaimed_after: None,
        limits: chatops_gateway::limits::Limits::default(),
        streams_checked_every: Duration::from_millis(200),
    }
}

/// Where a gateway process listens, from its "gateway listening" line.
pub async fn listening(gateway: &mut chatops_testkit::Process) -> String {
    let line = gateway
        .wait_for_line("gateway listening", Duration::from_secs(30))
        .await;
    line.split("addr=")
        .nth(1)
        .expect("the log names the address")
        .trim()
        .to_owned()
}

impl TestGateway {
    pub async fn start(config: GatewayConfig) -> Self {
        // Logs show with --nocapture and RUST_LOG set.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let nats_url = config.nats.url.clone();
        let app = Application::build(config).await.expect("gateway starts");
        let base = format!("http://127.0.0.1:{}", app.port());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            app.run_until_stopped(async {
                let _ = stopped.await;
            })
            .await
            .expect("gateway runs");
        });
        let client = async_nats::connect(nats_url)
            .await
            .expect("connect to NATS");
        Self {
            base,
            http: chatops_testkit::http(),
            jetstream: jetstream::new(client),
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops the gateway and waits until it has drained.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    pub async fn post(
        &self,
        path: &str,
        body: &[u8],
        signature: Option<&str>,
        content_type: &str,
    ) -> reqwest::Response {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(body.to_vec());
        if let Some(signature) = signature {
            request = request.header("x-spark-signature", signature);
        }
        request.send().await.expect("the gateway answers")
    }

    /// A webhook signed with the right secret, as Webex sends it.
    pub async fn deliver(&self, body: &[u8]) -> reqwest::Response {
        self.post(
            "/webhooks/webex",
            body,
            Some(&sign(SECRET.as_bytes(), body)),
            "application/json",
        )
        .await
    }

    /// The Prometheus text of `GET /metrics`.
    pub async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text")
    }

    /// Messages stored in a stream.
    pub async fn stored(&self, stream: &str) -> u64 {
        let mut stream = self
            .jetstream
            .get_stream(stream)
            .await
            .expect("stream exists");
        stream.info().await.expect("stream info").state.messages
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A `messages`/`created` envelope for `message_id`, shaped like the fixture.
pub fn envelope(message_id: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "id": "webhook-1",
        "name": "chatops",
        "targetUrl": "http://127.0.0.1/webhooks/webex",
        "resource": "messages",
        "event": "created",
        "filter": "mentionedPeople=me",
        "orgId": "org",
        "createdBy": "creator",
        "appId": "app",
        "ownedBy": "creator",
        "status": "active",
        "created": "2026-11-20T16:35:11.103Z",
        "actorId": "person-alice",
        "data": {
            "id": message_id,
            "roomId": "room-1",
            "roomType": "group",
            "personId": "person-alice",
            "personEmail": "alice@example.com",
            "mentionedPeople": ["bot-1"],
            "created": "2026-11-20T16:35:10.852Z"
        }
    }))
    .expect("json")
}

//! The Webex sandbox against real clients: the official Python SDK, plain
//! HTTP, a webhook receiver checking signatures byte for byte, and the
//! binary. Each test starts its own sandbox (and receivers) on ports the OS
//! picks, and waits for conditions with a deadline, never a fixed sleep.

mod api;
mod binary;
mod deliveries;
mod sdk;

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use chatops_sandbox::webex::WebexSandbox;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How long anything the sandbox does may take before a test fails.
const LIMIT: Duration = Duration::from_secs(10);
const BOT_TOKEN: &str = "bot-token-TOPSECRET";
const ALICE: &str = "alice@example.com";
const ALICE_TOKEN: &str = "alice-token-TOPSECRET";
const BOB: &str = "bob@example.com";
const BOB_TOKEN: &str = "bob-token-TOPSECRET";
const SECRET: &str = "hook-secret";

/// A sandbox with the bot `kube`, Alice and Bob, all in the default room.
async fn sandbox() -> WebexSandbox {
    WebexSandbox::builder()
        .bot("kube", BOT_TOKEN)
        .user(ALICE, ALICE_TOKEN)
        .user(BOB, BOB_TOKEN)
        .start()
        .await
        .expect("the sandbox starts")
}

/// An HTTP client for loopback calls (reqwest is built without a TLS
/// provider, and refuses to build a client until one is installed).
fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("an HTTP client")
}

/// The signature computed here, independently of the sandbox's code.
fn hmac_sha1_hex(secret: &str, body: &[u8]) -> String {
    let mut mac =
        <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Registers a webhook through the API, as a bot or user would.
async fn register_webhook(wx: &WebexSandbox, token: &str, body: Value) -> Value {
    let response = http()
        .post(format!("{}/webhooks", wx.url()))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("POST /v1/webhooks");
    assert_eq!(response.status(), 200, "webhook creation");
    response.json().await.expect("a webhook")
}

/// A messages/created webhook of the bot, signed with [`SECRET`].
async fn bot_webhook(wx: &WebexSandbox, target: &str, filter: Option<&str>) -> Value {
    let mut body = json!({
        "name": "chatops", "targetUrl": target, "resource": "messages",
        "event": "created", "secret": SECRET,
    });
    if let Some(filter) = filter {
        body["filter"] = json!(filter);
    }
    register_webhook(wx, BOT_TOKEN, body).await
}

/// One request a receiver got.
#[derive(Debug)]
struct Captured {
    headers: HeaderMap,
    body: Bytes,
}

impl Captured {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON delivery")
    }

    fn signature(&self) -> &str {
        self.headers
            .get("x-spark-signature")
            .and_then(|v| v.to_str().ok())
            .expect("an X-Spark-Signature header")
    }
}

type ReceiverState = (mpsc::UnboundedSender<Captured>, Arc<AtomicU16>);

/// A webhook target on a loopback port: keeps every request it gets and
/// answers with a status the test chooses (200 at first).
#[derive(Debug)]
struct Receiver {
    url: String,
    captured: mpsc::UnboundedReceiver<Captured>,
    status: Arc<AtomicU16>,
    server: JoinHandle<()>,
}

impl Receiver {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a receiver");
        let addr = listener.local_addr().expect("the receiver's address");
        let (tx, captured) = mpsc::unbounded_channel();
        let status = Arc::new(AtomicU16::new(200));
        let app = Router::new()
            .route("/webhooks/webex", post(receive))
            .with_state((tx, status.clone()));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url: format!("http://{addr}/webhooks/webex"),
            captured,
            status,
            server,
        }
    }

    fn answer(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    /// The next request, failing the test if none comes within [`LIMIT`].
    async fn next(&mut self) -> Captured {
        tokio::time::timeout(LIMIT, self.captured.recv())
            .await
            .unwrap_or_else(|_| panic!("no delivery reached {} within {LIMIT:?}", self.url))
            .expect("the receiver is running")
    }

    /// Everything received so far, without waiting.
    fn drain(&mut self) -> Vec<Captured> {
        let mut all = Vec::new();
        while let Ok(c) = self.captured.try_recv() {
            all.push(c);
        }
        all
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn receive(
    State((tx, status)): State<ReceiverState>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let _ = tx.send(Captured { headers, body });
    StatusCode::from_u16(status.load(Ordering::SeqCst)).unwrap_or(StatusCode::OK)
}

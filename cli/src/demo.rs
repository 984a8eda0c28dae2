//! `chatops demo`: the whole system on one machine with no credentials.
//!
//! A nats-server (temporary store), the Kubernetes sandbox seeded with
//! `resources/nginx-deployment.yaml`, the Webex sandbox, one gateway and two
//! workers, wired exactly as in production: the bot's webhook is registered
//! through the Webex API with a secret, and every message reaches the
//! gateway as a signed delivery. The terminal is the Webex room.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use chatops_gateway::config::GatewayConfig;
use chatops_gateway::webex::WebexClient;
use chatops_sandbox::kube::KubeSandbox;
use chatops_sandbox::webex::{DriverError, Message, WebexSandbox};
use chatops_shared::config::{ClusterConfig, NatsConfig, PolicySource, WebexConfig};
use chatops_shared::streams::StreamSettings;
use chatops_shared::text::count;
use chatops_shared::{Namespace, quote};
use chatops_testkit::NatsServer;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const SEED: &str = include_str!("../../resources/nginx-deployment.yaml");
const DEPLOYMENT: &str = "nginx-deployment";
const BOT_TOKEN: &str = "demo-bot-token";
const AUTHORIZED: &str = "alice@example.com";
const UNAUTHORIZED: &str = "mallory@example.com";
/// How long one message may take to get its answer.
const ANSWER_LIMIT: Duration = Duration::from_secs(30);
/// How long a rollout takes in the demo's cluster.
const ROLLOUT: Duration = Duration::from_secs(2);

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Speak as this person. alice@example.com may run every command;
    /// anyone else shows the policy at work.
    #[arg(long = "as", value_name = "EMAIL", default_value = AUTHORIZED, value_parser = crate::email)]
    pub actor: String,
    /// Send this message, print the room's transcript, and exit (repeatable;
    /// messages are sent one after the other, each once answered).
    #[arg(long = "exec", value_name = "TEXT")]
    pub exec: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("{0}")]
    Nats(String),
    #[error("the {what} did not start: {why}")]
    Start { what: &'static str, why: String },
    #[error("{0}")]
    Room(String),
    /// Webex refused the message itself (too long, say): an answer for
    /// the person, who may type the next one.
    #[error("{0}")]
    Refused(String),
}

/// Everything the demo started; dropping it stops it all.
struct Demo {
    _nats: NatsServer,
    kube: KubeSandbox,
    wx: WebexSandbox,
    stops: Vec<oneshot::Sender<()>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Demo {
    async fn start(actor: &str) -> Result<Self, DemoError> {
        let nats = NatsServer::try_start_apart()
            .await
            .map_err(DemoError::Nats)?;
        let start = |what: &'static str| move |why: String| DemoError::Start { what, why };
        let kube = KubeSandbox::builder()
            .rollout(ROLLOUT)
            .seed_yaml(SEED)
            .start()
            .await
            .map_err(|e| start("Kubernetes sandbox")(e.to_string()))?;
        let mut wx = WebexSandbox::builder()
            .bot("kube", BOT_TOKEN)
            .user(AUTHORIZED, "alice-token")
            .user(UNAUTHORIZED, "mallory-token");
        if actor != AUTHORIZED && actor != UNAUTHORIZED {
            wx = wx.user(actor, "guest-token");
        }
        let wx = wx
            .start()
            .await
            .map_err(|e| start("Webex sandbox")(e.to_string()))?;
        let secret = format!("demo-{}", uuid::Uuid::new_v4().simple());
        let mut demo = Self {
            _nats: nats,
            kube,
            wx,
            stops: Vec::new(),
            tasks: Vec::new(),
        };
        let nats_config = NatsConfig {
            url: demo._nats.url(),
        };
        let gateway = chatops_gateway::startup::Application::build(GatewayConfig {
            listen: "127.0.0.1:0"
                .parse()
                .map_err(|_| start("gateway")("bad address".into()))?,
            nats: nats_config.clone(),
            streams: StreamSettings::default(),
            webex: WebexConfig {
                bot_token: BOT_TOKEN.to_owned().into(),
                webhook_secret: secret.clone().into(),
                api_url: demo.wx.url(),
                bot_name: None,
            },
            policy: PolicySource::AuthorizedUsers(vec![AUTHORIZED.to_owned()]),
            default_namespace: Namespace::default_namespace(),
            max_replicas: 20,
            max_message_age: Duration::from_secs(600),
            unclaimed_after: Some(chatops_gateway::unclaimed::NOTE_AFTER),
            limits: chatops_gateway::limits::Limits::default(),
            streams_checked_every: chatops_shared::streams::KEEP_EVERY,
        })
        .await
        .map_err(|e| start("gateway")(e.to_string()))?;
        let gateway_url = format!("http://127.0.0.1:{}/webhooks/webex", gateway.port());
        demo.spawn(|stopped| async move {
            let _ = gateway.run_until_stopped(stopped).await;
        });
        for _ in 0..2 {
            let worker =
                chatops_worker::startup::Application::build(chatops_worker::config::WorkerConfig {
                    listen: "127.0.0.1:0"
                        .parse()
                        .map_err(|_| start("worker")("bad address".into()))?,
                    nats: nats_config.clone(),
                    streams: StreamSettings::default(),
                    cluster: ClusterConfig::Explicit {
                        name: "sandbox".into(),
                        url: demo.kube.url(),
                        ca_pem: None,
                        username: None,
                        token: None,
                    },
                    cluster_name: "sandbox".into(),
                    concurrency: 8,
                    kube_qps: 50.0,
                    kube_burst: 100,
                    follow_rollout: None,
                    shutdown_grace: Duration::from_secs(5),
                })
                .await
                .map_err(|e| start("worker")(e.to_string()))?;
            demo.spawn(|stopped| async move {
                let _ = worker.run_until_stopped(stopped).await;
            });
        }
        // As in production: the bot registers its webhooks with a secret.
        let webex = WebexClient::new(&demo.wx.url(), BOT_TOKEN.to_owned().into());
        for body in crate::webhook::bodies(&gateway_url, &secret) {
            webex
                .create_webhook(&body)
                .await
                .map_err(|e| start("webhook")(e.to_string()))?;
        }
        // The seeded deployment is shown as a running cluster's would be:
        // rolled out, not starting up.
        let settled = Instant::now() + ROLLOUT * 5;
        while !demo.seed_rolled_out() && Instant::now() < settled {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(demo)
    }

    /// Whether the seeded deployment's rollout is over: every replica
    /// asked for available, as its latest spec has them.
    fn seed_rolled_out(&self) -> bool {
        let Some(d) = self
            .kube
            .object("apps/v1", "Deployment", "default", DEPLOYMENT)
        else {
            return true;
        };
        let number = |pointer: &str| d.pointer(pointer).and_then(serde_json::Value::as_i64);
        number("/status/observedGeneration") == number("/metadata/generation")
            && number("/status/availableReplicas").unwrap_or(0)
                == number("/spec/replicas").unwrap_or(1)
    }

    fn spawn<F, Fut>(&mut self, run: F)
    where
        F: FnOnce(std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let (stop, stopped) = oneshot::channel::<()>();
        self.stops.push(stop);
        self.tasks.push(tokio::spawn(run(Box::pin(async move {
            let _ = stopped.await;
        }))));
    }

    /// Stops the gateway and workers (letting them drain), then the rest.
    async fn stop(mut self) {
        for stop in self.stops.drain(..) {
            let _ = stop.send(());
        }
        for task in self.tasks.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
        }
    }

    /// Posts `text` as `actor`, mentioning the bot, and waits for the bot's
    /// answer: a refusal, a question's answer, or a change's acknowledgement
    /// followed by its result.
    async fn say(&self, actor: &str, text: &str) -> Result<Vec<Message>, DemoError> {
        // The mention is added here; one typed as well (`@kube scale ...`,
        // as the README writes commands) is not a second word of the command.
        let bot = self.wx.bot();
        let text = chatops_gateway::language::strip_typed_mentions(text, &bot.display_name);
        let markdown = format!("{} {text}", bot.mention());
        let message = self
            .wx
            .post_as(actor, self.wx.default_room_id(), &markdown)
            .map_err(|e| match e {
                // What Webex says of the message itself (too long, say).
                DriverError::Refused { status: 400, .. } => DemoError::Refused(e.to_string()),
                _ => DemoError::Room(e.to_string()),
            })?;
        let bot = self.wx.bot().id.clone();
        let answered = self
            .wx
            .wait_for("the bot's answer", ANSWER_LIMIT, |wx| {
                let replies: Vec<Message> = wx
                    .thread(&message.id)
                    .into_iter()
                    .filter(|m| m.person_id == bot)
                    .collect();
                let done = replies.iter().any(|m| !is_acknowledgement(m));
                done.then_some(replies)
            })
            .await
            .map_err(|e| DemoError::Room(format!("{e}; is something stuck?")))?;
        let mut transcript = vec![message];
        transcript.extend(answered);
        Ok(transcript)
    }

    /// The sample deployment as `kubectl get` would summarise it.
    fn state(&self) -> String {
        let Some(d) = self
            .kube
            .object("apps/v1", "Deployment", "default", DEPLOYMENT)
        else {
            return format!("{DEPLOYMENT}: gone");
        };
        let images: Vec<&str> = d["spec"]["template"]["spec"]["containers"]
            .as_array()
            .map(|cs| cs.iter().filter_map(|c| c["image"].as_str()).collect())
            .unwrap_or_default();
        let replicas = count(
            d["spec"]["replicas"].as_i64().unwrap_or(1),
            "replica",
            "replicas",
        );
        format!(
            "{DEPLOYMENT}: {replicas} ({} ready), image {}",
            d["status"]["readyReplicas"].as_i64().unwrap_or(0),
            images.join(", ")
        )
    }
}

fn is_acknowledgement(m: &Message) -> bool {
    m.text
        .as_deref()
        .or(m.markdown.as_deref())
        .is_some_and(|t| t.contains("queued: "))
}

/// One line of the room, as a person reads it.
fn line(m: &Message, bot_email: &str) -> String {
    let who = if m.person_email == bot_email {
        "kube"
    } else {
        m.person_email.as_str()
    };
    let text = m
        .text
        .clone()
        .or_else(|| m.markdown.clone())
        .unwrap_or_default();
    format!("{who}: {}", printable(text.trim()))
}

/// `text` safe to print on a terminal: what would move the cursor, change
/// colours or turn the line around is shown by its code point.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| match chatops_shared::text::spelled_out(c) {
            Some(code) if c != '\n' => code,
            _ => c.to_string(),
        })
        .collect()
}

pub async fn run(args: &DemoArgs) -> Result<(), DemoError> {
    // Caught from here on, so that a Ctrl-C at any point stops what was
    // started (the nats-server is in a process group of its own).
    let mut stop = std::pin::pin!(chatops_shared::shutdown::signal_once());
    eprintln!(
        "starting nats-server, the Kubernetes and Webex sandboxes, a gateway and two workers ..."
    );
    let demo = tokio::select! {
        demo = Demo::start(&args.actor) => demo?,
        () = &mut stop => return Ok(()),
    };
    let bot_email = demo.wx.bot().email().to_owned();
    let mut out = std::io::stdout();
    if !args.exec.is_empty() {
        let mut result = Ok(());
        for text in &args.exec {
            let said = tokio::select! {
                said = demo.say(&args.actor, text) => said,
                () = &mut stop => break,
            };
            match said {
                Ok(transcript) => {
                    for m in &transcript {
                        let _ = writeln!(out, "{}", line(m, &bot_email));
                    }
                }
                Err(DemoError::Refused(why)) => {
                    let _ = writeln!(out, "{}: {}", args.actor, printable(&quote(text)));
                    let _ = writeln!(out, "webex: {why}");
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        let _ = writeln!(out, "{}", demo.state());
        demo.stop().await;
        return result;
    }
    let _ = writeln!(
        out,
        "You are {} in a Webex room with the bot. Try `scale {DEPLOYMENT} to 3`, `deploy nginx:1.21 to {DEPLOYMENT}`, `status {DEPLOYMENT}` or `help`. Ctrl-C or an empty line quits.\n{}",
        args.actor,
        demo.state()
    );
    let typed_at_a_terminal = std::io::stdin().is_terminal();
    let mut lines = stdin_lines();
    loop {
        let _ = write!(out, "{}> ", args.actor);
        let _ = out.flush();
        let next = tokio::select! {
            line = lines.recv() => line,
            () = &mut stop => break,
        };
        let Some(text) = next else { break };
        let text = text.trim();
        if !typed_at_a_terminal {
            // Nobody saw it typed: show it after the prompt.
            let _ = writeln!(out, "{}", printable(text));
        }
        if text.is_empty() {
            break;
        }
        match demo.say(&args.actor, text).await {
            Ok(transcript) => {
                for m in transcript.iter().skip(1) {
                    let _ = writeln!(out, "{}", line(m, &bot_email));
                }
                let _ = writeln!(out, "{}", demo.state());
            }
            Err(DemoError::Refused(why)) => {
                let _ = writeln!(out, "webex: {why}");
            }
            Err(e) => {
                let _ = writeln!(out, "{e}");
            }
        }
    }
    eprintln!("stopping everything ...");
    demo.stop().await;
    Ok(())
}

/// The lines of standard input, read on a thread of their own until it
/// ends or fails. Tokio's stdin reads on its blocking pool, which the
/// runtime waits for when it shuts down: a Ctrl-C at the prompt left the
/// demo running until Enter was pressed. A plain thread is not waited for.
fn stdin_lines() -> tokio::sync::mpsc::Receiver<String> {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_printed_can_drive_the_terminal() {
        assert_eq!(printable("web\u{1b}[31mred"), "webU+001B[31mred");
        assert_eq!(printable("a\u{202e}b\nc é"), "aU+202Eb\nc é");
    }
}

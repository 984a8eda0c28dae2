//! Hostile input from the corpus (`tests/corpus/hostile.json`) through the
//! real gateway: every webhook gets its documented status, every message
//! an explanation that echoes nothing unescaped and mentions nobody else;
//! nothing is published, nothing changes, nothing panics.

use std::path::Path;

use chatops_sandbox::webex::{Message, spark_signature};
use chatops_shared::streams::{COMMANDS_STREAM, EVENTS_STREAM};
use serde::Deserialize;

use crate::tally::writes;
use crate::world::{ALICE, LIMIT, Options, SECRETS, WEBHOOK_SECRET, World};

#[derive(Debug, Deserialize)]
struct Corpus {
    webhooks: Vec<WebhookCase>,
    messages: Vec<MessageCase>,
}

#[derive(Debug, Deserialize)]
struct WebhookCase {
    name: String,
    signature: String,
    #[serde(default)]
    body: Option<serde_json::Value>,
    #[serde(default)]
    raw: Option<String>,
    #[serde(default)]
    raw_hex: Option<String>,
    #[serde(default)]
    generate: Option<Generate>,
    #[serde(default)]
    content_type: Option<String>,
    status: u16,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Generate {
    Nested(usize),
    Padding(usize),
    LongId(usize),
}

#[derive(Debug, Deserialize)]
struct MessageCase {
    name: String,
    #[serde(default, rename = "as")]
    actor: Option<String>,
    text: String,
    reply: String,
}

fn corpus() -> Corpus {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/hostile.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn envelope(id: &str) -> serde_json::Value {
    serde_json::json!({"id": "w", "resource": "messages", "event": "created", "data": {"id": id}})
}

impl WebhookCase {
    fn body(&self) -> Vec<u8> {
        if let Some(body) = &self.body {
            return serde_json::to_vec(body).expect("json");
        }
        if let Some(raw) = &self.raw {
            return raw.as_bytes().to_vec();
        }
        if let Some(hex) = &self.raw_hex {
            let hex: String = hex.split_whitespace().collect();
            return hex::decode(hex).expect("hex in the corpus");
        }
        match self
            .generate
            .as_ref()
            .expect("a body, raw, raw_hex or generate")
        {
            Generate::Nested(depth) => {
                let mut body = "[".repeat(*depth);
                body.push_str(&"]".repeat(*depth));
                body.into_bytes()
            }
            Generate::Padding(size) => {
                let mut value = envelope("m-1");
                value["padding"] = serde_json::Value::String("x".repeat(*size));
                serde_json::to_vec(&value).expect("json")
            }
            Generate::LongId(len) => {
                serde_json::to_vec(&envelope(&"m".repeat(*len))).expect("json")
            }
        }
    }

    fn signature(&self, body: &[u8]) -> Option<String> {
        let valid = spark_signature(WEBHOOK_SECRET, body);
        Some(match self.signature.as_str() {
            "none" => return None,
            "valid" => valid,
            "empty" => String::new(),
            "truncated" => valid[..valid.len() - 1].to_owned(),
            "uppercase" => valid.to_uppercase(),
            "wrong-secret" => spark_signature("not-the-secret", body),
            "other-body" => spark_signature(WEBHOOK_SECRET, &[body, b" "].concat()),
            "prefixed" => format!("sha1={valid}"),
            "padded" => format!(" {valid} "),
            other => panic!("{}: unknown signature kind {other:?}", self.name),
        })
    }
}

/// Two deployments and one worker, and the deployments as they start.
async fn small_world() -> (World, Vec<serde_json::Value>) {
    let w = World::start(Options {
        deployments: 2,
        workers: 1,
        ..Options::default()
    })
    .await;
    let before = deployments(&w);
    (w, before)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_webhooks_get_their_documented_status_and_change_nothing() {
    let (w, before) = small_world().await;
    let http = chatops_testkit::http();
    let url = format!("http://{}/webhooks/webex", w.gateways[0].addr);
    let mut wrong = Vec::new();
    let cases = corpus().webhooks;
    for case in &cases {
        let body = case.body();
        let mut request = http
            .post(&url)
            .header(
                "content-type",
                case.content_type.as_deref().unwrap_or("application/json"),
            )
            .body(body.clone());
        if let Some(signature) = case.signature(&body) {
            request = request.header("x-spark-signature", signature);
        }
        let response = request.send().await.expect("the gateway answers");
        let status = response.status().as_u16();
        let answer = response.text().await.unwrap_or_default();
        if status != case.status {
            wrong.push(format!(
                "{}: {status} (want {}) {answer}",
                case.name, case.status
            ));
        }
        if status == 401 && !answer.is_empty() {
            wrong.push(format!("{}: 401 with a body: {answer}", case.name));
        }
        if SECRETS.iter().any(|s| answer.contains(s)) {
            wrong.push(format!("{}: a secret in the answer", case.name));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    w.quiescent().await;
    let queued = w.stored(EVENTS_STREAM).await;
    let accepted = cases.iter().filter(|c| c.status == 200).count() as u64;
    assert!(queued <= accepted, "only 200s may queue events: {queued}");
    assert_eq!(w.stored(COMMANDS_STREAM).await, 0, "no command published");
    assert!(writes(&w).is_empty(), "nothing written to the cluster");
    assert_eq!(deployments(&w), before, "nothing changed in the cluster");
    assert!(
        w.wx.messages_in(w.wx.default_room_id()).is_empty(),
        "the bot said nothing"
    );
    w.assert_clean_outputs();
    eprintln_row(&format!(
        "hostile webhooks: {} cases, {} statuses as documented",
        cases.len(),
        cases.len()
    ));
}

/// Markdown with every special character escaped, so that Webex's plain
/// text is exactly `text`.
fn literal(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if "\\`*_{}[]()<>#+-.!|~@$;/:=".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The part of a refusal that can echo input: after "Sorry, ", before the
/// fixed advice.
fn echoed(reply: &str) -> &str {
    let start = reply.find("Sorry, ").map_or(0, |i| i + "Sorry, ".len());
    let rest = &reply[start..];
    let end = [
        ". Say `",
        ". Expected `",
        ". Try `",
        ". Nothing was changed.",
    ]
    .iter()
    .filter_map(|m| rest.rfind(m))
    .min()
    .unwrap_or(rest.len());
    &rest[..end]
}

/// Markdown or mention syntax not neutralised by a backslash.
fn unescaped(s: &str) -> Vec<char> {
    let mut found = Vec::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '<' | '>' | '*' | '_' | '`' | '[' | ']' | '|' | '~' => found.push(c),
            _ => {}
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_messages_get_an_escaped_explanation_and_change_nothing() {
    let (w, before) = small_world().await;
    let cases = corpus().messages;
    let bot = w.wx.bot().clone();
    let sent: Vec<(&MessageCase, Message)> = cases
        .iter()
        .map(|case| {
            let actor = case.actor.as_deref().unwrap_or(ALICE);
            let markdown = format!("{} {}", bot.mention(), literal(&case.text));
            let message =
                w.wx.post_as(actor, w.wx.default_room_id(), &markdown)
                    .expect("post");
            let arrived = message.text.clone().unwrap_or_default();
            assert!(
                arrived.ends_with(&case.text),
                "{}: Webex made {arrived:?} of it",
                case.name
            );
            (case, message)
        })
        .collect();
    let replies =
        w.wx.wait_for("a reply to every hostile message", LIMIT, |_| {
            sent.iter()
                .map(|(_, m)| w.bot_replies(&m.id).into_iter().next())
                .collect::<Option<Vec<Message>>>()
        })
        .await
        .expect("the bot answers every message");
    let mut wrong = Vec::new();
    for ((case, message), reply) in sent.iter().zip(&replies) {
        let markdown = reply.markdown.clone().unwrap_or_default();
        if !markdown.contains(&case.reply) {
            wrong.push(format!(
                "{}: {markdown:?} lacks {:?}",
                case.name, case.reply
            ));
        }
        let leaked = unescaped(echoed(&markdown));
        if !leaked.is_empty() {
            wrong.push(format!(
                "{}: unescaped {leaked:?} in {markdown:?}",
                case.name
            ));
        }
        if reply.mentioned_people != [message.person_id.clone()]
            || !reply.mentioned_groups.is_empty()
        {
            wrong.push(format!(
                "{}: mentions {:?} {:?}",
                case.name, reply.mentioned_people, reply.mentioned_groups
            ));
        }
        if SECRETS.iter().any(|s| markdown.contains(s)) {
            wrong.push(format!("{}: a secret in the reply", case.name));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    w.quiescent().await;
    assert_eq!(w.stored(COMMANDS_STREAM).await, 0, "no command published");
    assert!(writes(&w).is_empty(), "nothing written to the cluster");
    assert_eq!(deployments(&w), before, "nothing changed in the cluster");
    for (_, message) in &sent {
        assert_eq!(w.bot_replies(&message.id).len(), 1, "one answer each");
    }
    w.assert_clean_outputs();
    eprintln_row(&format!(
        "hostile messages: {} cases, {} explained and escaped",
        cases.len(),
        replies.len()
    ));
}

fn deployments(w: &World) -> Vec<serde_json::Value> {
    w.kube
        .objects("apps/v1", "Deployment", "default")
        .into_iter()
        // What a change would touch (the controller's status bookkeeping
        // moves on by itself).
        .map(|d| {
            serde_json::json!([
                d["metadata"]["name"],
                d["metadata"]["annotations"],
                d["metadata"]["generation"],
                d["spec"]
            ])
        })
        .collect()
}

fn eprintln_row(line: &str) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(format!("faults: {line}\n").as_bytes());
}

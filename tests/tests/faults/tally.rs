//! Commands sent as a user, and the count from the outside: what Webex
//! delivered and the gateway accepted, what the Kubernetes sandbox was
//! asked to write and now holds, and what the bot said in each thread.
//!
//! Each command of a scenario has a deployment of its own, so the sandbox's
//! write log tells exactly how often each command was applied.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use chatops_sandbox::webex::Message;

use crate::world::{ALICE, LIMIT, World, app};

/// What a command must leave behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    Replicas(i64),
    Image(String),
    Restarted,
}

#[derive(Debug, Clone)]
pub struct Order {
    pub deployment: String,
    pub text: String,
    pub expect: Expect,
}

/// `n` commands, one per deployment `app-<from>` …, scale, deploy and
/// restart in turn.
pub fn orders(from: usize, n: usize) -> Vec<Order> {
    (from..from + n)
        .map(|i| {
            let deployment = app(i);
            let (text, expect) = match i % 3 {
                0 => {
                    let replicas = 2 + (i % 9) as i64;
                    (
                        format!("scale {deployment} to {replicas}"),
                        Expect::Replicas(replicas),
                    )
                }
                1 => {
                    let image = format!("registry.example.com/app:v{i}");
                    (
                        format!("deploy {image} to {deployment}"),
                        Expect::Image(image),
                    )
                }
                _ => (format!("restart {deployment}"), Expect::Restarted),
            };
            Order {
                deployment,
                text,
                expect,
            }
        })
        .collect()
}

/// A command as it was sent.
#[derive(Debug, Clone)]
pub struct Sent {
    pub order: Order,
    pub message: Message,
}

/// Alice sends each order.
pub fn send(w: &World, orders: &[Order]) -> Vec<Sent> {
    orders
        .iter()
        .map(|order| Sent {
            order: order.clone(),
            message: w.say(ALICE, &order.text),
        })
        .collect()
}

/// One scenario's line of the closing table.
#[derive(Debug, Clone)]
pub struct Row {
    pub scenario: String,
    pub sent: usize,
    /// Webhook deliveries the gateway answered 2xx.
    pub accepted: usize,
    pub applied: usize,
    pub doubled: usize,
    pub lost: usize,
    pub final_replies: usize,
    pub longest_wait: Duration,
}

impl Row {
    pub fn print(&self) {
        // Straight to the process's stderr, past the test harness's
        // capture, so the table shows in every run.
        let line = format!(
            "faults: {:<28} sent {:>3}  accepted {:>3}  applied {:>3}  doubled {}  lost {}  final replies {:>3}  longest wait {:.1}s\n",
            self.scenario,
            self.sent,
            self.accepted,
            self.applied,
            self.doubled,
            self.lost,
            self.final_replies,
            self.longest_wait.as_secs_f64()
        );
        let _ = std::io::stderr().write_all(line.as_bytes());
    }
}

fn text(m: &Message) -> String {
    m.markdown
        .clone()
        .or_else(|| m.text.clone())
        .unwrap_or_default()
}

/// The id in `(id X)` of an acknowledgement, or `(ref X)` of a result.
fn marked_id(text: &str, marker: &str) -> Option<String> {
    let start = text.find(marker)? + marker.len();
    let rest = &text[start..];
    Some(rest[..rest.find(')')?].trim().to_owned())
}

fn timestamp(s: &str) -> jiff::Timestamp {
    s.parse()
        .unwrap_or_else(|e| panic!("{s:?} is not a timestamp: {e}"))
}

/// Successful writes to a deployment, by name.
pub fn writes(w: &World) -> BTreeMap<String, usize> {
    let prefix = "/apis/apps/v1/namespaces/default/deployments/";
    let mut out = BTreeMap::new();
    for r in w.kube.requests() {
        let ok = r.status.is_some_and(|s| (200..300).contains(&s));
        if r.is_write()
            && ok
            && !r.query.contains("dryRun")
            && let Some(name) = r.path.strip_prefix(prefix)
        {
            let name = name.split('/').next().unwrap_or_default();
            *out.entry(name.to_owned()).or_insert(0) += 1;
        }
    }
    out
}

/// ReplicaSets (revisions) of a deployment.
fn revisions(w: &World, deployment: &str) -> usize {
    w.kube
        .objects("apps/v1", "ReplicaSet", "default")
        .iter()
        .filter(|rs| {
            rs["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|o| o.iter().any(|r| r["name"] == deployment))
        })
        .count()
}

fn holds(w: &World, order: &Order) -> bool {
    let Some(d) = w
        .kube
        .object("apps/v1", "Deployment", "default", &order.deployment)
    else {
        return false;
    };
    let template = &d["spec"]["template"];
    match &order.expect {
        Expect::Replicas(n) => d["spec"]["replicas"].as_i64() == Some(*n),
        Expect::Image(image) => template["spec"]["containers"][0]["image"] == image.as_str(),
        Expect::Restarted => template["metadata"]["annotations"]
            .get("kubectl.kubernetes.io/restartedAt")
            .is_some(),
    }
}

fn final_replies(w: &World, message_id: &str) -> Vec<Message> {
    w.bot_replies(message_id)
        .into_iter()
        .filter(|m| text(m).contains("(ref "))
        .collect()
}

/// Waits for every accepted command's final reply and for the system to
/// go idle, then counts, prints the row and checks the invariants: nothing
/// lost, nothing applied twice, exactly one final reply per command (with
/// the command's id), every command applied, no panic, no secret printed.
pub async fn settle(w: &World, scenario: &str, sent: &[Sent]) -> Row {
    let ids: Vec<String> = sent.iter().map(|s| s.message.id.clone()).collect();
    let deliveries =
        w.wx.wait_for("every message's webhook delivery", LIMIT, |wx| {
            let done: Vec<_> = wx
                .deliveries()
                .into_iter()
                .filter(|d| d.is_finished())
                .collect();
            ids.iter()
                .all(|id| done.iter().any(|d| d.data_id().as_deref() == Some(id)))
                .then_some(done)
        })
        .await
        .expect("Webex delivered every message");
    let accepted: Vec<&Sent> = sent
        .iter()
        .filter(|s| {
            deliveries.iter().any(|d| {
                d.data_id().as_deref() == Some(s.message.id.as_str())
                    && d.status.is_some_and(|c| (200..300).contains(&c))
            })
        })
        .collect();
    let waiting =
        w.wx.wait_for(
            &format!("{} final replies ({scenario})", accepted.len()),
            LIMIT,
            |_| {
                accepted
                    .iter()
                    .all(|s| !final_replies(w, &s.message.id).is_empty())
                    .then_some(())
            },
        )
        .await;
    if let Err(e) = waiting {
        let missing: Vec<String> = accepted
            .iter()
            .filter(|s| final_replies(w, &s.message.id).is_empty())
            .map(|s| {
                format!(
                    "{} → {:?}",
                    s.order.text,
                    w.bot_replies(&s.message.id)
                        .iter()
                        .map(text)
                        .collect::<Vec<_>>()
                )
            })
            .collect();
        let logs: String = w
            .outputs()
            .iter()
            .map(|(n, o)| {
                let tail: Vec<&str> = o.lines().rev().take(30).collect();
                format!(
                    "--- {n}\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            })
            .collect();
        panic!(
            "{e}; without a final reply:\n{}\n{logs}",
            missing.join("\n")
        );
    }
    w.quiescent().await;

    let writes = writes(w);
    let mut row = Row {
        scenario: scenario.to_owned(),
        sent: sent.len(),
        accepted: accepted.len(),
        applied: 0,
        doubled: 0,
        lost: 0,
        final_replies: 0,
        longest_wait: Duration::ZERO,
    };
    let mut problems = Vec::new();
    for s in &accepted {
        let finals = final_replies(w, &s.message.id);
        row.final_replies += finals.len();
        if finals.is_empty() {
            row.lost += 1;
            problems.push(format!("{}: no final reply", s.order.text));
            continue;
        }
        if finals.len() > 1 {
            problems.push(format!(
                "{}: {} final replies: {:?}",
                s.order.text,
                finals.len(),
                finals
                    .iter()
                    .map(|m| format!("{} {}", m.created, text(m)))
                    .collect::<Vec<_>>()
            ));
        }
        let acks: Vec<String> = w
            .bot_replies(&s.message.id)
            .iter()
            .filter_map(|m| marked_id(&text(m), "(id "))
            .collect();
        let refs: Vec<String> = finals
            .iter()
            .filter_map(|m| marked_id(&text(m), "(ref "))
            .collect();
        if acks.is_empty() || refs.iter().any(|r| !acks.contains(r)) {
            problems.push(format!(
                "{}: final reply refs {refs:?}, acknowledged ids {acks:?}",
                s.order.text
            ));
        }
        let wait = timestamp(&finals[0].created).duration_since(timestamp(&s.message.created));
        row.longest_wait = row
            .longest_wait
            .max(Duration::try_from(wait).unwrap_or_default());
        let n = writes.get(&s.order.deployment).copied().unwrap_or(0);
        let template_changes = usize::from(!matches!(s.order.expect, Expect::Replicas(_)));
        let revs = revisions(w, &s.order.deployment);
        if n > 1 || revs > 1 + template_changes {
            row.doubled += 1;
            problems.push(format!("{}: {n} writes, {revs} revisions", s.order.text));
        }
        if n >= 1 && holds(w, &s.order) {
            row.applied += 1;
        } else {
            problems.push(format!(
                "{}: not applied ({n} writes); replies {:?}",
                s.order.text,
                finals.iter().map(text).collect::<Vec<_>>()
            ));
        }
    }
    row.print();
    if !problems.is_empty() {
        let warnings: String = w
            .outputs()
            .iter()
            .map(|(n, o)| {
                let lines: Vec<&str> = o
                    .lines()
                    .filter(|l| l.contains("WARN") || l.contains("ERROR"))
                    .collect();
                format!("--- {n}\n{}\n", lines.join("\n"))
            })
            .collect();
        panic!("{scenario}:\n{}\n{warnings}", problems.join("\n"));
    }
    assert_eq!(row.lost, 0);
    assert_eq!(row.doubled, 0);
    assert_eq!(row.final_replies, row.accepted);
    assert_eq!(row.applied, row.accepted);
    w.assert_clean_outputs();
    row
}

/// Runs `round` once, or, with `CHATOPS_SOAK_SECS` set, again and again
/// until that many seconds have passed (each round a fresh world).
pub async fn soak<F, Fut>(mut round: F)
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let secs: u64 = std::env::var("CHATOPS_SOAK_SECS")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    let mut n = 0;
    loop {
        round(n).await;
        n += 1;
        if tokio::time::Instant::now() >= deadline {
            break;
        }
    }
}

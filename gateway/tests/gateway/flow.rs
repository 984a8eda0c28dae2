//! The whole gateway with a real nats-server and the Webex sandbox, acting
//! as users through Webex's normal API: webhook → command → reply → result.

use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use chatops_gateway::intake::sign;
use chatops_gateway::webex::WebexClient;
use chatops_sandbox::webex::{Fault, Message, MessageDraft, WebexSandbox};
use chatops_shared::config::PolicySource;
use chatops_shared::streams::{
    COMMANDS_STREAM, EVENTS_STREAM, NOTIFIER_CONSUMER, PROCESSED_BUCKET, REPLIES_BUCKET,
    RESULTS_STREAM, StreamSettings, WORKERS_CONSUMER, ensure_record,
};
use chatops_shared::{Command, CommandResult, ContractVersion, Outcome, subjects};
use chatops_testkit::{NatsServer, eventually};
use futures::StreamExt;

use crate::helpers::{BOT_TOKEN, SECRET, TestGateway, config};

const LIMIT: Duration = Duration::from_secs(20);
const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";
const CAROL: &str = "carol@ops.example.com";

/// NATS, the Webex sandbox (bot `kube`; Alice, Bob, Carol), a gateway, and
/// the bot's webhook registered at the gateway.
struct World {
    nats: NatsServer,
    wx: WebexSandbox,
    gw: TestGateway,
    /// Holds the policy file; removed with the world.
    _policy: tempfile::TempDir,
}

const POLICY: &str = "
rules:
  - users: [alice@example.com]
    verbs: ['*']
  - domains: [ops.example.com]
    verbs: [scale, status]
    namespaces: [staging]
";

async fn world() -> World {
    world_with(|_| {}).await
}

async fn world_with(tune: impl FnOnce(&mut chatops_gateway::config::GatewayConfig)) -> World {
    let nats = NatsServer::start().await;
    let wx = WebexSandbox::builder()
        .bot("kube", BOT_TOKEN)
        .user(ALICE, "alice-token")
        .user(BOB, "bob-token")
        .user(CAROL, "carol-token")
        .start()
        .await
        .expect("the Webex sandbox starts");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, POLICY).expect("write the policy");
    let mut cfg = config(&nats, &wx.url(), PolicySource::File(policy));
    tune(&mut cfg);
    let gw = TestGateway::start(cfg).await;
    register_webhook(&wx, &gw.base).await;
    World {
        nats,
        wx,
        gw,
        _policy: dir,
    }
}

/// The bot's webhooks as `chatops webhook register` makes them: group
/// spaces' mentions, and every 1:1 message.
pub async fn register_webhook(wx: &WebexSandbox, gateway: &str) {
    let bot = WebexClient::new(&wx.url(), BOT_TOKEN.to_owned().into());
    for (name, filter) in [
        ("chatops", "mentionedPeople=me"),
        ("chatops-direct", "roomType=direct"),
    ] {
        bot.create_webhook(&serde_json::json!({
            "name": name,
            "targetUrl": format!("{gateway}/webhooks/webex"),
            "resource": "messages",
            "event": "created",
            "filter": filter,
            "secret": SECRET,
        }))
        .await
        .expect("register the webhook");
    }
}

impl World {
    /// `email` mentions the bot with `text` in the default room.
    fn say(&self, email: &str, text: &str) -> Message {
        let markdown = format!("{} {text}", self.wx.bot().mention());
        self.wx
            .post_as(email, self.wx.default_room_id(), &markdown)
            .expect("post the message")
    }

    /// The bot's replies in the thread of `message`, once there are `n`.
    async fn replies(&self, message: &Message, n: usize) -> Vec<Message> {
        let bot = self.wx.bot().id.clone();
        self.wx
            .wait_for(&format!("{n} bot replies"), LIMIT, |wx| {
                let replies: Vec<Message> = wx
                    .thread(&message.id)
                    .into_iter()
                    .filter(|m| m.person_id == bot)
                    .collect();
                (replies.len() >= n).then_some(replies)
            })
            .await
            .expect("the bot replies")
    }

    async fn commands(&self) -> Vec<Command> {
        let stream = self
            .gw
            .jetstream
            .get_stream(COMMANDS_STREAM)
            .await
            .expect("stream");
        let count = self.gw.stored(COMMANDS_STREAM).await;
        let mut out = Vec::new();
        for seq in 1..=count {
            let raw = stream.get_raw_message(seq).await.expect("stored command");
            out.push(serde_json::from_slice(&raw.payload).expect("a Command"));
        }
        out
    }

    /// Waits until ingestion has acked every event it was given.
    async fn ingested(&self) {
        let js = self.gw.jetstream.clone();
        eventually("ingestion to finish", LIMIT, || {
            let js = js.clone();
            async move {
                let stream = js.get_stream(EVENTS_STREAM).await.ok()?;
                let mut consumer: jetstream::consumer::PullConsumer =
                    stream.get_consumer("ingestion").await.ok()?;
                let info = consumer.info().await.ok()?;
                let all = stream.get_info().await.ok()?.state.messages;
                (info.num_ack_pending == 0
                    && info.num_pending == 0
                    && info.ack_floor.stream_sequence >= all)
                    .then_some(())
            }
        })
        .await;
    }

    /// The command published last, once there is one.
    async fn command(&self) -> Command {
        eventually("the command", LIMIT, || async {
            self.commands().await.pop()
        })
        .await
    }

    /// `email` mentions the bot with `text`; the message and its command,
    /// once the bot has acknowledged it in the thread.
    async fn acknowledged_command(&self, email: &str, text: &str) -> (Message, Command) {
        let message = self.say(email, text);
        let command = self.command().await;
        self.replies(&message, 1).await;
        (message, command)
    }

    /// Waits until the notifier has nothing pending or unacknowledged: it
    /// acks a result only once Webex took the reply (or refused it for
    /// good), so no retry can still come.
    async fn notifier_idle(&self) {
        self.notifier_until("idle", |info| {
            info.num_ack_pending == 0 && info.num_pending == 0
        })
        .await;
    }

    /// Waits until the notifier's consumer shows `what`.
    async fn notifier_until(&self, what: &str, ready: impl Fn(&consumer::Info) -> bool) {
        let js = self.gw.jetstream.clone();
        let ready = &ready;
        eventually(&format!("the notifier: {what}"), LIMIT, || {
            let js = js.clone();
            async move {
                let stream = js.get_stream(RESULTS_STREAM).await.ok()?;
                let mut c: consumer::PullConsumer =
                    stream.get_consumer(NOTIFIER_CONSUMER).await.ok()?;
                let info = c.info().await.ok()?;
                ready(info).then_some(())
            }
        })
        .await;
    }

    /// A command's result relayed while Webex answers `status` to the
    /// next `times` posts (`fault`): its reply, saying `expected`, comes
    /// once, after all of them.
    async fn relayed_despite(&self, fault: Fault, status: u16, times: u32, expected: &str) {
        let (message, command) = self.acknowledged_command(ALICE, "scale web to 4").await;
        self.wx.inject(fault.times(times));
        self.publish_result(
            &command,
            Outcome::Applied,
            "scaled web from 1 to 4 replicas",
        )
        .await;
        let replies = self.replies(&message, 2).await;
        assert!(shown(&replies[1]).contains(expected), "{replies:?}");
        let faulted = self
            .wx
            .requests()
            .iter()
            .filter(|r| r.status == status)
            .count();
        assert_eq!(faulted, times as usize, "the faults happened");
        // Let any stray retry land before counting.
        self.notifier_idle().await;
        assert_eq!(
            self.wx.thread(&message.id).len(),
            2,
            "exactly one acknowledgement and one result"
        );
    }

    /// Publishes a result as a worker would.
    async fn publish_result(&self, command: &Command, outcome: Outcome, message: &str) {
        let result = CommandResult {
            version: ContractVersion,
            command_id: command.id,
            verb: Some(command.kind.verb()),
            outcome,
            message: message.to_owned(),
            before: Some("1".into()),
            after: Some("3".into()),
            unchanged: false,
            overtaken: false,
            refused: false,
            attempts: 1,
            duration: Duration::from_millis(5),
            namespace: command.namespace.clone(),
            deployment: command.deployment.clone(),
            actor: command.actor.clone(),
            origin: command.origin.clone(),
            finished_at: jiff::Timestamp::now(),
        };
        let subject = subjects::result(&command.namespace, command.deployment.as_ref());
        self.gw
            .jetstream
            .publish(subject, serde_json::to_vec(&result).expect("json").into())
            .await
            .expect("publish")
            .await
            .expect("stored");
    }
}

/// What a message shows: its markdown, or nothing.
fn shown(message: &Message) -> &str {
    message.markdown.as_deref().unwrap_or_default()
}

#[tokio::test]
async fn a_mention_becomes_one_command_an_acknowledgement_and_the_result_in_thread() {
    let w = world().await;
    let message = w.say(ALICE, "scale web to 3");

    let command = eventually("the command on the stream", LIMIT, || async {
        w.commands().await.pop()
    })
    .await;
    assert_eq!(command.deployment.as_ref().map(|d| d.as_str()), Some("web"));
    assert_eq!(command.namespace.as_str(), "default");
    assert_eq!(
        serde_json::to_value(&command.kind).expect("json")["replicas"],
        3
    );
    assert_eq!(command.actor.email, ALICE);
    assert_eq!(command.origin.message_id, message.id);
    assert_eq!(command.origin.room_id, w.wx.default_room_id());

    let queued = w.replies(&message, 1).await;
    let ack = shown(&queued[0]);
    assert!(ack.contains("queued: `scale web to 3 in default`"), "{ack}");
    assert!(ack.contains(&format!("<@personEmail:{ALICE}>")), "{ack}");

    w.publish_result(
        &command,
        Outcome::Applied,
        "scaled web from 1 to 3 replicas",
    )
    .await;
    let replies = w.replies(&message, 2).await;
    let result = shown(&replies[1]);
    assert!(
        result.starts_with(&format!(
            "<@personEmail:{ALICE}> Nicely done! scaled web from 1 to 3 replicas"
        )),
        "{result}"
    );
    assert!(result.contains(&format!("ref {}", command.id)), "{result}");
    assert_eq!(
        replies[1].parent_id.as_deref(),
        Some(message.id.as_str()),
        "in the command's thread"
    );
    assert_eq!(w.commands().await.len(), 1);
}

/// A command no worker takes gets one note in its thread when the while
/// is up, so its sender is not left with silence; one a worker took, even
/// without finishing it, gets none.
#[tokio::test]
async fn a_command_no_worker_takes_gets_a_note_and_one_taken_gets_none() {
    let after = Duration::from_secs(1);
    let w = world_with(|c| c.unclaimed_after = Some(after)).await;
    // A worker, by hand: its pull request waits before the command is
    // sent, so the command is taken as it is stored.
    let workers: consumer::PullConsumer =
        w.gw.jetstream
            .get_stream(COMMANDS_STREAM)
            .await
            .expect("stream")
            .get_consumer(WORKERS_CONSUMER)
            .await
            .expect("the workers' consumer");
    let mut pulled = workers
        .fetch()
        .max_messages(1)
        .expires(LIMIT)
        .messages()
        .await
        .expect("a pull request");
    let taken = w.say(ALICE, "scale web to 3");
    let held = pulled
        .next()
        .await
        .expect("a command within the limit")
        .expect("a message");
    let held: Command = serde_json::from_slice(&held.payload).expect("a Command");
    assert_eq!(held.origin.message_id, taken.id);

    let left = w.say(ALICE, "status web");
    // A question has no receipt: the first reply is the note.
    let replies = w.replies(&left, 1).await;
    let note = shown(&replies[0]);
    assert!(
        note.starts_with(&format!(
            "<@personEmail:{ALICE}> no worker has taken `status web in default` in 1 second: none may be running, or all are busy. It stays queued and runs when one takes it"
        )),
        "{note}"
    );
    assert!(
        !note.contains("ref "),
        "not taken for the final reply: {note}"
    );
    // The taken one's note was due first: it has its receipt alone.
    let bot = w.wx.bot().id.clone();
    let on_taken: Vec<String> =
        w.wx.thread(&taken.id)
            .into_iter()
            .filter(|m| m.person_id == bot)
            .map(|m| shown(&m).to_owned())
            .collect();
    assert_eq!(on_taken.len(), 1, "{on_taken:?}");
    assert!(on_taken[0].contains("queued:"), "{on_taken:?}");
    assert!(
        w.gw.metrics()
            .await
            .contains("chatops_gateway_commands_unclaimed_total 1\n"),
        "counted once"
    );
}

#[tokio::test]
async fn commands_on_one_deployment_are_published_in_the_order_their_events_came() {
    let w = world().await;
    // A burst over a few deployments: ingestion publishes commands on
    // different deployments side by side, but each deployment's in order.
    // This checks the wiring end to end; a reorder here needs a slow
    // publish, which `ingestion::tests::lanes_keep_each_subject_in_order_*`
    // forces for the mechanism itself.
    let (deployments, per_deployment) = (3, 15);
    for n in 1..=per_deployment {
        for d in 0..deployments {
            w.say(ALICE, &format!("scale web-{d} to {n}"));
        }
    }
    let total = deployments * per_deployment;
    let commands = eventually("every command on the stream", LIMIT, || async {
        let commands = w.commands().await;
        (commands.len() >= total).then_some(commands)
    })
    .await;
    assert_eq!(commands.len(), total, "one command per message");

    // The order the events were stored in, by message id.
    let events =
        w.gw.jetstream
            .get_stream(EVENTS_STREAM)
            .await
            .expect("events stream");
    let mut event_seq = std::collections::HashMap::new();
    for seq in 1..=w.gw.stored(EVENTS_STREAM).await {
        let raw = events.get_raw_message(seq).await.expect("stored event");
        let envelope: serde_json::Value = serde_json::from_slice(&raw.payload).expect("json");
        let id = envelope["data"]["id"].as_str().expect("data.id").to_owned();
        event_seq.insert(id, seq);
    }
    let mut last: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    for command in &commands {
        let deployment = command
            .deployment
            .as_ref()
            .expect("a deployment")
            .to_string();
        let seq = event_seq[&command.origin.message_id];
        let before = last.insert(deployment.clone(), seq).unwrap_or(0);
        assert!(
            seq > before,
            "{deployment}: the command of event {seq} was published after that of event {before}"
        );
    }
}

#[tokio::test]
async fn a_failed_result_is_relayed_in_the_seed_tone() {
    let w = world().await;
    let message = w.say(ALICE, "restart web");
    let command = w.command().await;
    w.publish_result(
        &command,
        Outcome::Failed,
        "the bot may not patch deployments in namespace default",
    )
    .await;
    let replies = w.replies(&message, 2).await;
    let text = replies
        .iter()
        .filter_map(|m| m.markdown.clone())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        text.contains(
            "Oh no! Something went wrong! the bot may not patch deployments in namespace default"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn long_results_reach_the_room_whole_or_cut_to_what_webex_takes() {
    let w = world().await;
    // A `list` of fifty deployments: about 2,500 bytes, all of it shown.
    let listed: Vec<String> = (0..50)
        .map(|i| format!("web-{i} 3/3 (registry.example.com/web:2.{i})"))
        .collect();
    let list = format!("50 deployments in default: {}", listed.join("; "));
    let first = w.say(ALICE, "list");
    let command = w.command().await;
    w.publish_result(&command, Outcome::Applied, &list).await;
    // A question gets its answer alone: no receipt before it.
    let replies = w.replies(&first, 1).await;
    let answer = shown(&replies[0]);
    assert!(
        answer.starts_with(&format!("<@personEmail:{ALICE}> {list} (ref ")),
        "{replies:?}"
    );
    // Twenty thousand bytes: Webex refuses a message over 7,439, so the
    // reply is cut to fit, and still posted.
    let second = w.say(ALICE, "status web");
    let command = eventually("the second command", LIMIT, || async {
        let mut all = w.commands().await;
        (all.len() == 2).then(|| all.remove(1))
    })
    .await;
    w.publish_result(&command, Outcome::Applied, &"x".repeat(20_000))
        .await;
    let replies = w.replies(&second, 1).await;
    let cut = replies
        .iter()
        .filter_map(|m| m.markdown.as_deref())
        .find(|text| text.contains("xxxx"))
        .expect("the long result's reply");
    assert!(
        cut.len() <= 7439 && cut.contains("x… (ref "),
        "{} bytes",
        cut.len()
    );
    assert_eq!(
        w.wx.thread(&first.id).len() + w.wx.thread(&second.id).len(),
        2,
        "one answer to each question, nothing else"
    );
}

#[tokio::test]
async fn duplicate_and_re_sent_webhooks_make_no_second_command() {
    // A tiny de-duplication window, so the re-sent body arrives after it,
    // as a captured webhook re-sent hours later would.
    let w = world_with(|c| c.streams.duplicate_window = Duration::from_millis(100)).await;
    let message = w.say(ALICE, "scale web to 2");
    w.replies(&message, 1).await;
    w.ingested().await;
    let delivery =
        w.wx.deliveries()
            .into_iter()
            .next()
            .expect("the webhook was delivered");
    let signature = delivery.signature.clone().expect("signed");
    assert_eq!(signature, sign(SECRET.as_bytes(), delivery.body.as_bytes()));

    // Re-send the exact body until intake stores it again, which it does
    // once the duplicate window has passed.
    let before = w.gw.stored(EVENTS_STREAM).await;
    eventually(
        "the re-sent webhook to be stored past the window",
        LIMIT,
        || async {
            let r =
                w.gw.post(
                    "/webhooks/webex",
                    delivery.body.as_bytes(),
                    Some(&signature),
                    "application/json",
                )
                .await;
            assert_eq!(r.status(), 200);
            (w.gw.stored(EVENTS_STREAM).await > before).then_some(())
        },
    )
    .await;
    w.ingested().await;
    assert_eq!(
        w.commands().await.len(),
        1,
        "the processed-id record stopped it"
    );
    assert_eq!(
        w.replies(&message, 1).await.len(),
        1,
        "no second acknowledgement"
    );
}

#[tokio::test]
async fn people_outside_the_policy_get_a_reply_and_no_command() {
    let w = world().await;
    let bob = w.say(BOB, "scale web to 3");
    // Nothing of the language's rules or limits for someone granted nothing.
    let bob_invalid = w.say(BOB, "scale web to 1000");
    let bob_unknown = w.say(BOB, "frobnicate");
    let carol = w.say(CAROL, "scale web to 3");
    let carol_deploy = w.say(CAROL, "deploy nginx:1.27 to web in staging");
    let carol_ok = w.say(CAROL, "scale web to 3 in staging");

    let r = w.replies(&bob, 1).await;
    assert!(
        shown(&r[0]).contains("you are not authorised to run commands with this bot"),
        "{}",
        shown(&r[0])
    );
    assert!(shown(&r[0]).contains("<@personEmail:bob@example.com>"));
    for message in [&bob_invalid, &bob_unknown] {
        let r = w.replies(message, 1).await;
        assert!(
            shown(&r[0]).ends_with("Sorry, you are not authorised to run commands with this bot; the people who run it can add you to its policy."),
            "{}",
            shown(&r[0])
        );
    }
    let r = w.replies(&carol, 1).await;
    assert!(
        shown(&r[0]).contains("you may not use 'scale' in namespace default"),
        "{}",
        shown(&r[0])
    );
    let r = w.replies(&carol_deploy, 1).await;
    assert!(
        shown(&r[0]).contains("you may not use 'deploy'"),
        "{}",
        shown(&r[0])
    );
    w.replies(&carol_ok, 1).await;
    w.ingested().await;
    let commands = w.commands().await;
    assert_eq!(commands.len(), 1, "only Carol's staging scale");
    assert_eq!(commands[0].actor.email, CAROL);
}

#[tokio::test]
async fn a_mention_is_taken_off_however_the_sender_wrote_it() {
    let w = world().await;
    let bot = w.wx.bot().email().to_owned();
    let message =
        w.wx.post_as(
            ALICE,
            w.wx.default_room_id(),
            &format!("<@personEmail:{bot}|Kube Bot> scale web to 3"),
        )
        .expect("post");
    let command = w.command().await;
    assert_eq!(command.origin.message_id, message.id);
    assert_eq!(command.describe(), "scale web to 3 in default");
}

#[tokio::test]
async fn malformed_commands_get_an_explanation_and_no_command() {
    let w = world().await;
    let cases = [
        (
            "scale web",
            "Expected `scale <deployment> to <replicas>`, for example `scale web to 3`",
        ),
        ("scale web to 99", "replicas must be from 0 to 20, got '99'"),
        (
            "deploy nginx to",
            "Expected `deploy <image:tag> to <deployment>`",
        ),
        ("frobnicate web", "I don't know the command 'frobnicate'"),
        ("scale Web to 3", "uppercase letter 'W'"),
        (
            "scale web to 3 in Prod",
            "a namespace contains the uppercase letter 'P'",
        ),
        (
            "rollback web to zero",
            "the revision must be a whole number of at least 1",
        ),
    ];
    let sent: Vec<_> = cases.iter().map(|(text, _)| w.say(ALICE, text)).collect();
    for ((text, want), message) in cases.iter().zip(&sent) {
        let replies = w.replies(message, 1).await;
        let reply = shown(&replies[0]);
        assert!(reply.contains(want), "{text:?}: {reply}");
    }
    let help = w.say(BOB, "help");
    let reply = shown(&w.replies(&help, 1).await[0]).to_owned();
    assert!(
        reply.contains("not authorised"),
        "Bob may use nothing: {reply}"
    );
    let help = w.say(CAROL, "help");
    let reply = shown(&w.replies(&help, 1).await[0]).to_owned();
    assert!(
        reply.contains("`scale <deployment> to <replicas>`") && !reply.contains("`restart"),
        "{reply}"
    );
    w.ingested().await;
    assert!(w.commands().await.is_empty());
}

#[tokio::test]
async fn echoed_input_is_escaped() {
    // Webex strips markdown from the plain text, but characters such as
    // '|' and '_' reach the parser, and come back in its explanation.
    let w = world().await;
    let message = w.say(ALICE, "scale a|b_c to 3");
    let reply = shown(&w.replies(&message, 1).await[0]).to_owned();
    assert!(reply.contains(r"\|"), "{reply}");
    assert!(!reply.contains("'|'"), "{reply}");
}

#[tokio::test]
async fn a_429_storm_on_replies_delays_them_but_never_drops_or_doubles_one() {
    let w = world().await;
    let storm = Fault::rate_limit("POST", "/v1/messages", Duration::from_secs(1));
    w.relayed_despite(storm, 429, 3, "Nicely done!").await;
    drop(w.nats);
}

/// Webex answers 503 to every post for longer than the notifier's
/// deliveries (`CHATOPS_MAX_DELIVER`, 2 here, of five tries each) would
/// last: the result is delivered again until its reply is taken.
#[tokio::test]
async fn a_webex_outage_longer_than_every_delivery_loses_no_reply() {
    let w = world_with(|cfg| cfg.streams.max_deliver = 2).await;
    let outage = Fault::status("POST", "/v1/messages", 503);
    w.relayed_despite(outage, 503, 15, "scaled web from 1 to 4 replicas")
        .await;
}

/// Webex refuses every post for longer than ingestion's tries of an
/// event (2 here, each posting the receipt five times) just as a change
/// comes: the event is tried until the receipt is taken, and then the
/// command is published, once.
#[tokio::test]
async fn a_change_that_comes_during_a_webex_outage_is_made_after_it() {
    let w = world_with(|cfg| cfg.streams.max_deliver = 2).await;
    w.wx.inject(Fault::status("POST", "/v1/messages", 503).times(15));
    let message = w.say(ALICE, "scale web to 6");
    let command = w.command().await;
    assert_eq!(command.describe(), "scale web to 6 in default");
    w.replies(&message, 1).await;
    w.ingested().await;
    let refused = w.wx.requests().iter().filter(|r| r.status == 503).count();
    assert_eq!(refused, 15, "the outage outlasted two tries");
    assert_eq!(w.commands().await.len(), 1, "one command");
    assert_eq!(w.wx.thread(&message.id).len(), 1, "one receipt");
}

/// The first of two changes to web cannot be fetched at first (Webex
/// refuses its first try's five calls); the second, sent after it, can.
/// The second waits while the first is tried again, and they reach the
/// command stream in the order sent, so the later one wins.
#[tokio::test]
async fn a_change_tried_again_keeps_its_place_before_later_ones() {
    let w = world().await;
    w.wx.inject(Fault::status("GET", "/v1/messages/*", 503).times(5));
    w.say(ALICE, "scale web to 5");
    eventually("the first try refused", LIMIT, || async {
        let refused = w.wx.requests().iter().filter(|r| r.status == 503).count();
        (refused == 5).then_some(())
    })
    .await;
    w.say(ALICE, "scale web to 6");
    let commands = eventually("both commands", LIMIT, || async {
        let commands = w.commands().await;
        (commands.len() == 2).then_some(commands)
    })
    .await;
    let sent: Vec<String> = commands.iter().map(Command::describe).collect();
    assert_eq!(
        sent,
        ["scale web to 5 in default", "scale web to 6 in default"]
    );
}

/// An event whose message cannot be fetched past its tries, and longer
/// than the message age limit, is given up (left to the catch-up) rather
/// than tried for ever; no command comes of it.
#[tokio::test]
async fn an_event_past_its_tries_and_the_message_age_is_given_up() {
    let w = world_with(|cfg| {
        cfg.streams.max_deliver = 2;
        cfg.max_message_age = Duration::from_secs(2);
    })
    .await;
    w.wx.inject(Fault::status("GET", "/v1/messages/*", 503).times(1000));
    w.say(ALICE, "scale web to 6");
    w.ingested().await;
    assert!(w.commands().await.is_empty(), "no command");
    let metrics = w.gw.metrics().await;
    assert!(
        metrics.contains(r#"chatops_gateway_events_total{outcome="given_up"} 1"#),
        "{metrics}"
    );
}

/// The record of processed message ids takes no writes for two seconds
/// just as a command is published (its stream listens elsewhere, as if
/// its server were restarting): the event is held until its id is
/// recorded, not handed back and answered a second time.
#[tokio::test]
async fn a_processed_id_that_cannot_be_recorded_for_a_while_is_not_answered_twice() {
    let w = world().await;
    let js = &w.gw.jetstream;
    let mut processed = js
        .get_stream(PROCESSED_BUCKET)
        .await
        .expect("the processed record");
    let mut config = processed.info().await.expect("info").config.clone();
    let subjects = std::mem::replace(&mut config.subjects, vec!["elsewhere.>".to_owned()]);
    js.update_stream(&config).await.expect("move it away");
    let message = w.say(ALICE, "scale web to 3");
    w.command().await;
    // The outage's length: longer than the tries the ingestion made
    // before it handed the event back.
    tokio::time::sleep(Duration::from_secs(2)).await;
    config.subjects = subjects;
    js.update_stream(&config).await.expect("move it back");
    w.ingested().await;
    let bot = w.wx.bot().id.clone();
    let replies =
        w.wx.thread(&message.id)
            .into_iter()
            .filter(|m| m.person_id == bot)
            .count();
    assert_eq!(replies, 1, "one acknowledgement");
    assert_eq!(w.commands().await.len(), 1, "one command");
    let recorded = processed.info().await.expect("info").state.messages;
    assert_eq!(recorded, 1, "the message id is recorded");
}

#[tokio::test]
async fn a_replies_record_that_cannot_be_read_holds_the_reply_back_rather_than_doubling_it() {
    // Not made again by the gateway while the test looks (as a store lost
    // between two of its looks).
    let w = world_with(|c| c.streams_checked_every = Duration::from_secs(3600)).await;
    let (message, command) = w.acknowledged_command(ALICE, "scale web to 2").await;
    // The record that says which replies are out goes away, as when its
    // only replica is lost: whether this result was relayed is unknown.
    w.gw.jetstream
        .delete_stream(REPLIES_BUCKET)
        .await
        .expect("delete the replies record");
    w.publish_result(
        &command,
        Outcome::Applied,
        "scaled web from 1 to 2 replicas",
    )
    .await;
    w.notifier_until("a retry of the result", |info| info.num_redelivered > 0)
        .await;
    assert_eq!(
        w.wx.thread(&message.id).len(),
        1,
        "nothing is posted while the record cannot be read"
    );
    ensure_record(&w.gw.jetstream, REPLIES_BUCKET, &StreamSettings::default())
        .await
        .expect("the record comes back");
    let replies = w.replies(&message, 2).await;
    assert!(
        shown(&replies[1]).contains("scaled web from 1 to 2 replicas"),
        "{replies:?}"
    );
    w.notifier_idle().await;
    assert_eq!(w.wx.thread(&message.id).len(), 2, "one result, once");
}

/// In a 1:1 space people write to the bot without mentioning it (Webex
/// offers no mention there); the message comes by the 1:1 webhook, and is
/// answered in that space. One that does mention it comes by both
/// webhooks, and is answered once.
#[tokio::test]
async fn a_one_to_one_message_is_a_command_without_a_mention() {
    let w = world().await;
    let direct = |text: &str| {
        w.wx.send_as(ALICE, MessageDraft::direct(w.wx.bot().email(), text))
            .expect("a 1:1 message")
    };
    let plain = direct("scale web to 3");
    assert_ne!(plain.room_id, w.wx.default_room_id());
    let replies = w.replies(&plain, 1).await;
    assert!(
        shown(&replies[0]).contains("queued: `scale web to 3 in default`"),
        "{replies:?}"
    );
    assert_eq!(replies[0].room_id, plain.room_id);

    let mentioned = direct(&format!("{} scale web to 4", w.wx.bot().mention()));
    w.replies(&mentioned, 1).await;
    w.wx.wait_for("both webhooks to deliver it", LIMIT, |wx| {
        let answered = wx
            .deliveries()
            .into_iter()
            .filter(|d| d.body.contains(&mentioned.id) && d.status == Some(200))
            .count();
        (answered == 2).then_some(())
    })
    .await
    .expect("delivered twice");
    w.notifier_idle().await;
    assert_eq!(
        w.replies(&mentioned, 1).await.len(),
        1,
        "and was answered once"
    );
}

/// A person who deleted their command after its receipt still hears how
/// it ended: Webex refuses a reply to a deleted message, so the result
/// goes to the room.
#[tokio::test]
async fn a_result_whose_command_was_deleted_is_posted_to_the_room() {
    let w = world().await;
    let (message, command) = w.acknowledged_command(ALICE, "scale web to 2").await;
    chatops_testkit::http()
        .delete(format!("{}/messages/{}", w.wx.url(), message.id))
        .bearer_auth("alice-token")
        .send()
        .await
        .expect("Webex answers")
        .error_for_status()
        .expect("the message is deleted");
    w.publish_result(
        &command,
        Outcome::Applied,
        "scaled web from 1 to 2 replicas",
    )
    .await;
    let bot = w.wx.bot().id.clone();
    let posted =
        w.wx.wait_for("the result in the room", LIMIT, |wx| {
            wx.messages_in(wx.default_room_id()).into_iter().find(|m| {
                m.person_id == bot
                    && m.markdown
                        .as_deref()
                        .is_some_and(|md| md.contains("Nicely done! scaled web from 1 to 2"))
            })
        })
        .await
        .expect("posted");
    assert_eq!(
        posted.parent_id, None,
        "not in the deleted message's thread"
    );
}

/// Webex lets a message be edited ten times; a long rollout reports more
/// often than that.
#[tokio::test]
async fn progress_stops_at_the_tenth_edit_and_says_the_result_follows() {
    let w = world().await;
    let (message, command) = w.acknowledged_command(ALICE, "scale web to 20").await;
    for n in 1..=14 {
        w.publish_result(
            &command,
            Outcome::InProgress,
            &format!("scaled web from 1 to 20 replicas; {n} of 20 replicas available"),
        )
        .await;
        // One at a time, as a worker reports a rollout.
        w.notifier_idle().await;
    }
    let progress = w.replies(&message, 2).await[1].clone();
    let text = shown(&progress);
    assert!(
        text.contains("11 of 20 replicas available; the result will follow in a reply of its own"),
        "the post and ten edits, the last saying so: {text}"
    );
    let edits: Vec<u16> =
        w.wx.requests()
            .into_iter()
            .filter(|r| r.method == "PUT" && r.path == format!("/v1/messages/{}", progress.id))
            .map(|r| r.status)
            .collect();
    assert_eq!(edits, vec![200; 10], "no edit Webex refuses is tried");
    w.publish_result(
        &command,
        Outcome::Applied,
        "scaled web from 1 to 20 replicas",
    )
    .await;
    let replies = w.replies(&message, 3).await;
    assert!(
        shown(&replies[2]).contains("Nicely done! scaled web from 1 to 20 replicas"),
        "{replies:?}"
    );
}

#[tokio::test]
async fn in_progress_results_edit_one_message_and_the_final_result_is_posted() {
    let w = world().await;
    let (message, command) = w
        .acknowledged_command(ALICE, "deploy nginx:1.27 to web")
        .await;
    w.publish_result(
        &command,
        Outcome::InProgress,
        "deployed nginx:1.27 to web; 1 of 3 new replicas of web updated",
    )
    .await;
    let progress = w.replies(&message, 2).await[1].clone();
    w.publish_result(
        &command,
        Outcome::InProgress,
        "deployed nginx:1.27 to web; 3 of 3 new replicas of web updated",
    )
    .await;
    let bot = w.wx.bot().id.clone();
    let edited =
        w.wx.wait_for("the progress message to be edited", LIMIT, |wx| {
            wx.message(&progress.id)
                .filter(|m| shown(m).contains("3 of 3"))
        })
        .await
        .expect("edited");
    assert!(shown(&edited).starts_with(&format!("<@personEmail:{ALICE}> In progress:")));
    w.publish_result(
        &command,
        Outcome::Applied,
        "deployed nginx:1.27 to web; web rolled out: 3 of 3 replicas available",
    )
    .await;
    let replies = w.replies(&message, 3).await;
    assert_eq!(
        replies.len(),
        3,
        "acknowledgement, one progress message, the result"
    );
    assert!(shown(&replies[2]).contains("Nicely done! deployed nginx:1.27 to web; web rolled out"));
    assert!(replies.iter().all(|m| m.person_id == bot));
}

/// The bot mentioned at the end of the command, twice at its start, or at
/// both ends, is heard as if mentioned once first.
#[tokio::test]
async fn a_mention_at_the_end_or_twice_is_taken_off() {
    let w = world().await;
    let mention = w.wx.bot().mention();
    for (markdown, want) in [
        (format!("scale web to 3 {mention}"), 3),
        (format!("{mention} {mention} scale web to 4"), 4),
        (format!("{mention} scale web to 5 {mention}"), 5),
    ] {
        let message =
            w.wx.post_as(ALICE, w.wx.default_room_id(), &markdown)
                .expect("post the message");
        let queued = w.replies(&message, 1).await;
        let ack = shown(&queued[0]);
        assert!(
            ack.contains(&format!("queued: `scale web to {want} in default`")),
            "{markdown}: {ack}"
        );
    }
    // Mentioned once, at the start: a last word that is the bot's name is
    // a deployment's.
    let name = w.wx.bot().first_name.to_lowercase();
    w.wx.post_as(
        ALICE,
        w.wx.default_room_id(),
        &format!("{mention} status {name}"),
    )
    .expect("post the message");
    let asked = eventually("the status command", LIMIT, || async {
        w.commands()
            .await
            .into_iter()
            .find(|c| c.describe().starts_with("status"))
    })
    .await;
    assert_eq!(asked.describe(), format!("status {name} in default"));
}

//! A gateway killed (SIGKILL) after answering 200 but before ingestion
//! loses nothing: the event waits in the stream for the next gateway.

use std::path::Path;
use std::time::Duration;

use chatops_sandbox::webex::{Fault, WebexSandbox};
use chatops_shared::config::PolicySource;
use chatops_shared::streams::{COMMANDS_STREAM, EVENTS_STREAM};
use chatops_testkit::{NatsServer, Process, eventually};

use crate::helpers::{BOT_TOKEN, SECRET, TestGateway, config};

const LIMIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_gateway_killed_between_acceptance_and_ingestion_loses_nothing() {
    let nats = NatsServer::start().await;
    let wx = webex(&[ALICE]).await;
    // Ingestion cannot read messages while this lasts.
    wx.inject(Fault::status("GET", "/v1/messages/*", 503).times(100_000));

    let (url, api) = (nats.url(), wx.url());
    let mut first = Process::spawn(
        Path::new(env!("CARGO_BIN_EXE_gateway")),
        &[],
        &[
            ("WEBEX_BOT_TOKEN", BOT_TOKEN),
            ("WEBEX_WEBHOOK_SECRET", SECRET),
            ("WEBEX_API_URL", api.as_str()),
            ("AUTHORIZED_USERS", "alice@example.com"),
            ("GATEWAY_ADDR", "127.0.0.1:0"),
            ("NATS_URL", url.as_str()),
            // As the in-process gateway below is configured.
            ("CHATOPS_ACK_WAIT", "5s"),
        ],
    );
    let addr = crate::helpers::listening(&mut first).await;
    crate::flow::register_webhook(&wx, &format!("http://{addr}")).await;

    let message = wx
        .post_as(
            "alice@example.com",
            wx.default_room_id(),
            &format!("{} scale web to 3", wx.bot().mention()),
        )
        .expect("post");
    let delivered = wx.await_deliveries(1, LIMIT).await.expect("delivered");
    // 200 is sent only once JetStream has stored the event.
    assert_eq!(delivered[0].status, Some(200), "the gateway accepted it");
    first.signal("KILL");
    let _ = first.wait(LIMIT).await;

    let stream = async_nats::jetstream::new(async_nats::connect(&url).await.expect("connect"));
    let commands = stream
        .get_stream(COMMANDS_STREAM)
        .await
        .expect("stream")
        .get_info()
        .await
        .expect("info")
        .state
        .messages;
    assert_eq!(commands, 0, "the first gateway never ingested it");

    wx.clear_faults();
    let second = TestGateway::start(config(
        &nats,
        &wx.url(),
        PolicySource::AuthorizedUsers(vec!["alice@example.com".into()]),
    ))
    .await;
    eventually("the command from the surviving event", LIMIT, || async {
        (second.stored(COMMANDS_STREAM).await == 1).then_some(())
    })
    .await;
    let bot = wx.bot().id.clone();
    let reply = wx
        .wait_for("the acknowledgement", LIMIT, |wx| {
            wx.thread(&message.id)
                .into_iter()
                .find(|m| m.person_id == bot)
        })
        .await
        .expect("acknowledged");
    assert!(
        reply
            .markdown
            .unwrap_or_default()
            .contains("queued: `scale web to 3 in default`")
    );
}

#[tokio::test]
async fn webex_errors_on_the_message_fetch_are_retried() {
    let nats = NatsServer::start().await;
    let wx = webex(&[ALICE]).await;
    let gw = TestGateway::start(config(
        &nats,
        &wx.url(),
        PolicySource::AuthorizedUsers(vec!["alice@example.com".into()]),
    ))
    .await;
    crate::flow::register_webhook(&wx, &gw.base).await;
    wx.inject(Fault::status("GET", "/v1/messages/*", 503).times(2));
    wx.inject(Fault::rate_limit("GET", "/v1/messages/*", Duration::from_secs(1)).times(2));
    wx.post_as(
        "alice@example.com",
        wx.default_room_id(),
        &format!("{} restart web", wx.bot().mention()),
    )
    .expect("post");
    eventually("the command despite the errors", LIMIT, || async {
        (gw.stored(COMMANDS_STREAM).await == 1).then_some(())
    })
    .await;
    let failed = wx
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.starts_with("/v1/messages/") && r.status >= 429)
        .count();
    assert_eq!(failed, 4, "two 503s and two 429s were answered first");
}

/// Webex does not retry a delivery: a message sent while no gateway
/// answered is found by the next gateway's catch-up and answered once,
/// whatever gateway starts after. A question is answered; a change is not
/// made late (the deployment may have changed since), and its sender is
/// told to send it again.
#[tokio::test]
async fn messages_sent_while_no_gateway_answered_are_answered_once_when_one_starts() {
    let nats = NatsServer::start().await;
    let wx = webex(&[ALICE]).await;
    // The webhook's target is a port nothing listens on any more.
    let gone = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let target = format!("http://{}", gone.local_addr().expect("address"));
    drop(gone);
    crate::flow::register_webhook(&wx, &target).await;
    let policy = PolicySource::AuthorizedUsers(vec!["alice@example.com".into()]);
    let mut settings = config(&nats, &wx.url(), policy);
    // Short, so that the second gateway below looks after it has passed.
    settings.streams.duplicate_window = Duration::from_millis(200);
    // A gateway ran before (its record of processed messages began then).
    streams_made(&nats, &settings).await;
    let change = say(&wx, ALICE, "scale web to 3");
    let question = say(&wx, ALICE, "status web");
    // And one in a 1:1 space, which mentions nobody.
    wx.send_as(
        ALICE,
        chatops_sandbox::webex::MessageDraft::direct(wx.bot().email(), "status web"),
    )
    .expect("a 1:1 message");
    let delivered = wx.await_deliveries(3, LIMIT).await.expect("tried");
    assert!(
        delivered.iter().all(|d| d.status.is_none()),
        "nobody answered the webhooks"
    );

    let first = TestGateway::start(settings.clone()).await;
    eventually("the questions' commands", LIMIT, || async {
        (first.stored(COMMANDS_STREAM).await == 2).then_some(())
    })
    .await;
    let bot = wx.bot().id.clone();
    let replies_to = |message: &chatops_sandbox::webex::Message| {
        wx.thread(&message.id)
            .into_iter()
            .filter(|m| m.person_id == bot)
            .filter_map(|m| m.markdown)
            .collect::<Vec<_>>()
    };
    let refusal = wx
        .wait_for("the reply to the missed change", LIMIT, |_| {
            replies_to(&change).pop()
        })
        .await
        .expect("answered");
    assert!(
        refusal.contains("did not make the change") && refusal.contains("please send it again"),
        "{refusal}"
    );
    assert!(
        replies_to(&question).is_empty(),
        "a question gets its answer, not a receipt"
    );
    eventually("the first gateway's catch-up", LIMIT, || async {
        (catch_up(&first, "queued").await == 3.0).then_some(())
    })
    .await;
    first.stop().await;

    // Once the events are older than the duplicate window, only the record
    // of processed messages keeps the next gateway from queueing them again.
    let last = last_stored_at(&nats, EVENTS_STREAM).await;
    older_than(last, settings.streams.duplicate_window).await;
    let second = TestGateway::start(settings).await;
    eventually("the second gateway's catch-up", LIMIT, || async {
        (catch_up(&second, "passes_total{outcome=\"done\"}").await >= 1.0).then_some(())
    })
    .await;
    assert_eq!(catch_up(&second, "queued").await, 0.0);
    assert_eq!(second.stored(EVENTS_STREAM).await, 3, "queued once each");
    assert_eq!(
        second.stored(COMMANDS_STREAM).await,
        2,
        "the questions alone"
    );
    assert_eq!(replies_to(&change).len(), 1, "answered once");
}

/// A gateway on a new store (its first start, or a store lost and made
/// again) cannot tell which earlier messages were answered: it does not
/// answer again what came before its record of processed messages began.
#[tokio::test]
async fn catch_up_does_not_answer_again_what_came_before_the_store() {
    let nats = NatsServer::start().await;
    let wx = webex(&[ALICE]).await;
    let before = say(&wx, ALICE, "status web");
    // Older than the margin catch-up gives clocks (10 s).
    older_than(
        before.created.parse().expect("a timestamp"),
        Duration::from_secs(11),
    )
    .await;
    let policy = PolicySource::AuthorizedUsers(vec!["alice@example.com".into()]);
    let gw = TestGateway::start(config(&nats, &wx.url(), policy)).await;
    eventually("a catch-up pass", LIMIT, || async {
        (catch_up(&gw, "passes_total{outcome=\"done\"}").await >= 1.0).then_some(())
    })
    .await;
    assert_eq!(catch_up(&gw, "queued").await, 0.0);
    assert_eq!(gw.stored(EVENTS_STREAM).await, 0, "nothing queued");
    let bot = wx.bot().id.clone();
    assert!(
        wx.thread(&before.id).iter().all(|m| m.person_id != bot),
        "not answered"
    );
}

/// The streams and records, as a gateway with `settings` makes them.
async fn streams_made(nats: &NatsServer, settings: &chatops_gateway::config::GatewayConfig) {
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.expect("connect"));
    chatops_shared::streams::ensure(&js, &settings.streams)
        .await
        .expect("the streams");
}

/// A catch-up metric of the gateway (`chatops_gateway_catch_up_<name>`).
async fn catch_up(gw: &TestGateway, name: &str) -> f64 {
    let text = gw.metrics().await;
    let prefix = format!("chatops_gateway_catch_up_{name}");
    text.lines()
        .filter_map(|line| line.strip_prefix(&prefix))
        .filter_map(|rest| rest.trim_start_matches("_total").trim().parse::<f64>().ok())
        .sum()
}

/// More missed messages than one page of a room's mentions: every one is
/// found, not only the newest page.
#[tokio::test]
async fn catch_up_reads_every_page_of_a_rooms_missed_mentions() {
    let nats = NatsServer::start().await;
    let wx = webex(&[ALICE]).await;
    let policy = PolicySource::AuthorizedUsers(vec!["alice@example.com".into()]);
    let settings = config(&nats, &wx.url(), policy);
    streams_made(&nats, &settings).await;
    let missed = chatops_gateway::webex::PAGE + 5;
    for i in 0..missed {
        say(&wx, ALICE, &format!("status web-{i}"));
    }
    let gw = TestGateway::start(settings).await;
    eventually("a command for every missed question", LIMIT, || async {
        (gw.stored(COMMANDS_STREAM).await == missed as u64).then_some(())
    })
    .await;
    eventually("the pass to count them", LIMIT, || async {
        (catch_up(&gw, "queued").await == missed as f64).then_some(())
    })
    .await;
}

/// A message that reaches the bot long after it was written (a captured
/// webhook re-sent, an outage) runs no command, and says so; what is not
/// a command is answered as ever: a refusal, or what is wrong with it.
#[tokio::test]
async fn a_late_message_runs_no_command_but_gets_its_usual_answer_otherwise() {
    let nats = NatsServer::start().await;
    let wx = webex(&[ALICE, "bob@example.com"]).await;
    let change = say(&wx, ALICE, "scale web to 3");
    let typo = say(&wx, ALICE, "scael web to 3");
    let stranger = say(&wx, "bob@example.com", "scale web to 3");
    // The age limit below is 1 s, and Webex stamps messages to the second.
    older_than(
        stranger.created.parse().expect("a timestamp"),
        Duration::from_secs(2),
    )
    .await;

    let policy = PolicySource::AuthorizedUsers(vec!["alice@example.com".into()]);
    let mut settings = config(&nats, &wx.url(), policy);
    settings.max_message_age = Duration::from_secs(1);
    let gw = TestGateway::start(settings).await;
    for message in [&change, &typo, &stranger] {
        let delivered = gw.deliver(&crate::helpers::envelope(&message.id)).await;
        assert_eq!(delivered.status(), 200);
    }
    let bot = wx.bot().id.clone();
    let reply_to = |message: &chatops_sandbox::webex::Message| {
        let id = message.id.clone();
        let bot = bot.clone();
        let wx = &wx;
        async move {
            wx.wait_for("the reply", LIMIT, |wx| {
                wx.thread(&id)
                    .into_iter()
                    .find(|m| m.person_id == bot)
                    .and_then(|m| m.markdown)
            })
            .await
            .expect("answered")
        }
    };
    let late = reply_to(&change).await;
    assert!(
        late.contains("after it was written, so I did not act on it"),
        "{late}"
    );
    let slip = reply_to(&typo).await;
    assert!(slip.contains("did you mean 'scale web to 3'?"), "{slip}");
    let refusal = reply_to(&stranger).await;
    assert!(refusal.contains("not authorised"), "{refusal}");
    assert_eq!(gw.stored(COMMANDS_STREAM).await, 0, "no command ran");
}

const ALICE: &str = "alice@example.com";

/// The Webex sandbox with the bot `kube` and these people.
async fn webex(people: &[&str]) -> WebexSandbox {
    let mut builder = WebexSandbox::builder().bot("kube", BOT_TOKEN);
    for (i, person) in people.iter().enumerate() {
        builder = builder.user(person, &format!("token-{i}"));
    }
    builder.start().await.expect("sandbox")
}

/// `who` mentions the bot with `text` in the default room.
fn say(wx: &WebexSandbox, who: &str, text: &str) -> chatops_sandbox::webex::Message {
    wx.post_as(
        who,
        wx.default_room_id(),
        &format!("{} {text}", wx.bot().mention()),
    )
    .expect("post")
}

/// When the last message of `stream` was stored.
async fn last_stored_at(nats: &NatsServer, stream: &str) -> jiff::Timestamp {
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.expect("connect"));
    let mut stream = js.get_stream(stream).await.expect("stream");
    let stored = stream.info().await.expect("info").state.last_timestamp;
    jiff::Timestamp::from_nanosecond(stored.unix_timestamp_nanos()).expect("a time")
}

/// Waits until `at` lies more than `age` in the past: the condition itself
/// is one of time.
async fn older_than(at: jiff::Timestamp, age: Duration) {
    let age = jiff::SignedDuration::try_from(age).expect("an age");
    eventually(&format!("{at} to be older than {age:?}"), LIMIT, || async {
        (jiff::Timestamp::now().duration_since(at) > age).then_some(())
    })
    .await;
}

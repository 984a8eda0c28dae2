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
    let wx = WebexSandbox::builder()
        .bot("kube", BOT_TOKEN)
        .user("alice@example.com", "alice-token")
        .start()
        .await
        .expect("sandbox");
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
    let line = first.wait_for_line("gateway listening", LIMIT).await;
    let addr = line
        .split("addr=")
        .nth(1)
        .expect("address")
        .trim()
        .to_owned();
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
    let wx = WebexSandbox::builder()
        .bot("kube", BOT_TOKEN)
        .user("alice@example.com", "alice-token")
        .start()
        .await
        .expect("sandbox");
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
/// answered is found by the next gateway's catch-up, acted on, and acted on
/// only once, whatever gateway starts after.
#[tokio::test]
async fn a_message_sent_while_no_gateway_answered_is_acted_on_once_when_one_starts() {
    let nats = NatsServer::start().await;
    let wx = WebexSandbox::builder()
        .bot("kube", BOT_TOKEN)
        .user("alice@example.com", "alice-token")
        .start()
        .await
        .expect("sandbox");
    // The webhook's target is a port nothing listens on any more.
    let gone = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let target = format!("http://{}", gone.local_addr().expect("address"));
    drop(gone);
    crate::flow::register_webhook(&wx, &target).await;
    let message = wx
        .post_as(
            "alice@example.com",
            wx.default_room_id(),
            &format!("{} scale web to 3", wx.bot().mention()),
        )
        .expect("post");
    let delivered = wx.await_deliveries(1, LIMIT).await.expect("tried");
    assert_eq!(delivered[0].status, None, "nobody answered the webhook");

    let policy = PolicySource::AuthorizedUsers(vec!["alice@example.com".into()]);
    let first = TestGateway::start(config(&nats, &wx.url(), policy.clone())).await;
    eventually("the command of the missed message", LIMIT, || async {
        (first.stored(COMMANDS_STREAM).await == 1).then_some(())
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
    assert_eq!(catch_up(&first, "queued").await, 1.0);
    first.stop().await;

    // The next gateway looks again and finds it processed.
    let second = TestGateway::start(config(&nats, &wx.url(), policy)).await;
    eventually("the second gateway's catch-up", LIMIT, || async {
        (catch_up(&second, "passes_total{outcome=\"done\"}").await >= 1.0).then_some(())
    })
    .await;
    assert_eq!(catch_up(&second, "queued").await, 0.0);
    assert_eq!(second.stored(EVENTS_STREAM).await, 1, "queued once");
    assert_eq!(second.stored(COMMANDS_STREAM).await, 1, "acted on once");
}

/// A catch-up metric of the gateway (`chatops_gateway_catch_up_<name>`).
async fn catch_up(gw: &TestGateway, name: &str) -> f64 {
    let text = gw
        .http
        .get(format!("{}/metrics", gw.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    let prefix = format!("chatops_gateway_catch_up_{name}");
    text.lines()
        .filter_map(|line| line.strip_prefix(&prefix))
        .filter_map(|rest| rest.trim_start_matches("_total").trim().parse::<f64>().ok())
        .sum()
}

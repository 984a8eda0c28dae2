//! Intake from the outside: signatures, sizes, content types, envelopes,
//! duplicates; what is refused changes nothing.

use chatops_gateway::intake::sign;
use chatops_shared::config::PolicySource;
use chatops_shared::streams::EVENTS_STREAM;
use chatops_testkit::NatsServer;

use crate::helpers::{SECRET, TestGateway, config, envelope};

async fn gateway(nats: &NatsServer) -> TestGateway {
    // Nothing listens at this Webex URL: intake must not need Webex.
    let policy = PolicySource::AuthorizedUsers(vec!["alice@example.com".into()]);
    TestGateway::start(config(nats, "http://127.0.0.1:9/v1", policy)).await
}

#[tokio::test]
async fn a_signed_webhook_is_queued_once_with_the_message_id() {
    let nats = NatsServer::start().await;
    let gw = gateway(&nats).await;
    let body = envelope("message-1");
    let response = gw.deliver(&body).await;
    assert_eq!(response.status(), 200);
    assert_eq!(gw.stored(EVENTS_STREAM).await, 1);

    let stream = gw
        .jetstream
        .get_stream(EVENTS_STREAM)
        .await
        .expect("stream");
    let stored = stream.get_raw_message(1).await.expect("message 1");
    assert_eq!(
        stored.payload.as_ref(),
        body.as_slice(),
        "the raw verified body is kept"
    );
    let headers = stored.headers;
    assert_eq!(
        headers.get("Nats-Msg-Id").map(|v| v.as_str()),
        Some("message-1")
    );
    let id = headers
        .get("chatops-command-id")
        .expect("a correlation id")
        .as_str()
        .to_owned();
    assert_eq!(
        uuid::Uuid::parse_str(&id)
            .expect("a UUID")
            .get_version_num(),
        7
    );

    // A graceful stop keeps what was queued.
    let jetstream = gw.jetstream.clone();
    gw.stop().await;
    let mut stream = jetstream.get_stream(EVENTS_STREAM).await.expect("stream");
    assert_eq!(stream.info().await.expect("info").state.messages, 1);
}

#[tokio::test]
async fn the_seed_url_accepts_webhooks_too() {
    let nats = NatsServer::start().await;
    let gw = gateway(&nats).await;
    let body = envelope("message-root");
    let response = gw
        .post(
            "/",
            &body,
            Some(&sign(SECRET.as_bytes(), &body)),
            "application/json; charset=utf-8",
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(gw.stored(EVENTS_STREAM).await, 1);
}

#[tokio::test]
async fn the_same_delivery_ten_times_at_once_is_queued_once() {
    let nats = NatsServer::start().await;
    let gw = gateway(&nats).await;
    let body = envelope("message-dup");
    let sends = (0..10).map(|_| gw.deliver(&body));
    for response in futures::future::join_all(sends).await {
        assert_eq!(response.status(), 200);
    }
    assert_eq!(gw.stored(EVENTS_STREAM).await, 1);
}

#[tokio::test]
async fn bad_signatures_get_401_with_no_detail_and_queue_nothing() {
    let nats = NatsServer::start().await;
    let gw = gateway(&nats).await;
    let body = envelope("message-2");
    let good = sign(SECRET.as_bytes(), &body);
    let other_body = envelope("message-3");
    let cases: Vec<(&str, Option<String>)> = vec![
        ("missing", None),
        ("empty", Some(String::new())),
        ("wrong secret", Some(sign(b"not-the-secret", &body))),
        ("uppercase", Some(good.to_uppercase())),
        ("truncated", Some(good[..20].to_owned())),
        ("extended", Some(format!("{good}00"))),
        ("sha1= prefix", Some(format!("sha1={good}"))),
        (
            "over another body",
            Some(sign(SECRET.as_bytes(), &other_body)),
        ),
        ("not hex", Some("z".repeat(40))),
    ];
    for (case, signature) in cases {
        let response = gw
            .post(
                "/webhooks/webex",
                &body,
                signature.as_deref(),
                "application/json",
            )
            .await;
        assert_eq!(response.status(), 401, "{case}");
        assert_eq!(
            response.text().await.expect("body"),
            "",
            "{case}: a 401 says nothing"
        );
    }
    assert_eq!(gw.stored(EVENTS_STREAM).await, 0);
}

#[tokio::test]
async fn bad_bodies_get_their_status_and_queue_nothing() {
    let nats = NatsServer::start().await;
    let gw = gateway(&nats).await;

    let huge = format!(r#"{{"pad":"{}"}}"#, "x".repeat(70 * 1024)).into_bytes();
    let response = gw.deliver(&huge).await;
    assert_eq!(response.status(), 413, "over 64 KiB");

    let body = envelope("message-4");
    let signed = sign(SECRET.as_bytes(), &body);
    let response = gw
        .post("/webhooks/webex", &body, Some(&signed), "text/plain")
        .await;
    assert_eq!(response.status(), 415, "not declared JSON");

    for (case, bad) in [
        ("not JSON", b"hello".to_vec()),
        ("truncated JSON", body[..body.len() / 2].to_vec()),
        (
            "no data",
            br#"{"id":"w","resource":"messages","event":"created"}"#.to_vec(),
        ),
        ("invalid UTF-8", b"{\"id\":\"\xff\xfe\"}".to_vec()),
        (
            "deeply nested",
            format!("{}{}", "[".repeat(5000), "]".repeat(5000)).into_bytes(),
        ),
        ("a number", b"12345678901234567890123456789".to_vec()),
    ] {
        let response = gw.deliver(&bad).await;
        assert_eq!(response.status(), 400, "{case}");
        assert!(
            response
                .text()
                .await
                .expect("body")
                .contains("not a Webex webhook envelope"),
            "{case}"
        );
    }
    assert_eq!(gw.stored(EVENTS_STREAM).await, 0);
}

#[tokio::test]
async fn events_the_bot_does_not_handle_get_200_and_queue_nothing() {
    let nats = NatsServer::start().await;
    let gw = gateway(&nats).await;
    for (resource, event) in [
        ("rooms", "created"),
        ("memberships", "created"),
        ("messages", "deleted"),
        ("messages", "updated"),
    ] {
        let mut v: serde_json::Value =
            serde_json::from_slice(&envelope("message-5")).expect("json");
        v["resource"] = resource.into();
        v["event"] = event.into();
        let body = serde_json::to_vec(&v).expect("json");
        assert_eq!(gw.deliver(&body).await.status(), 200, "{resource}/{event}");
    }
    // Unknown fields are ignored, absent optional ones are fine.
    let minimal = br#"{"id":"w","resource":"messages","event":"created","data":{"id":"message-6"},"extra":{"a":1}}"#;
    assert_eq!(gw.deliver(minimal).await.status(), 200);
    assert_eq!(
        gw.stored(EVENTS_STREAM).await,
        1,
        "only the minimal messages/created one"
    );
}

#[tokio::test]
async fn metrics_count_webhooks_by_outcome() {
    let nats = NatsServer::start().await;
    let gw = gateway(&nats).await;
    gw.deliver(&envelope("message-7")).await;
    gw.post("/webhooks/webex", b"{}", None, "application/json")
        .await;
    let text = gw.metrics().await;
    assert!(
        text.contains(r#"chatops_gateway_webhooks_total{outcome="queued"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"chatops_gateway_webhooks_total{outcome="unauthorized"} 1"#),
        "{text}"
    );
    let ready = gw
        .http
        .get(format!("{}/readyz", gw.base))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 200);
}

/// A NATS server that takes requests and answers none (frozen, here with
/// SIGSTOP) makes `/readyz` answer 503 within seconds, not after the
/// client's own 10 s request timeout.
#[tokio::test]
async fn readyz_answers_503_quickly_when_nats_does_not_answer() {
    let nats = NatsServer::start().await;
    let gw = gateway(&nats).await;
    let readyz = || async {
        let started = std::time::Instant::now();
        let answer = gw
            .http
            .get(format!("{}/readyz", gw.base))
            .send()
            .await
            .expect("readyz");
        let status = answer.status();
        (
            status,
            answer.text().await.unwrap_or_default(),
            started.elapsed(),
        )
    };
    assert_eq!(readyz().await.0, 200);
    let pid = nats.pid().expect("nats-server's pid").to_string();
    let signal = |name: &str| {
        let status = std::process::Command::new("kill")
            .args([name, &pid])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {name}");
    };
    signal("-STOP");
    let (status, text, took) = readyz().await;
    signal("-CONT");
    assert_eq!(status, 503, "{text}");
    assert_eq!(text, "NATS does not answer JetStream requests");
    assert!(took < std::time::Duration::from_secs(5), "{took:?}");
}

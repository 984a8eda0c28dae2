//! Abusive clients: slow bodies, idle connections and floods get a quick,
//! bounded answer and cannot exhaust the gateway.

use std::time::{Duration, Instant};

use chatops_gateway::limits::Limits;
use chatops_shared::config::PolicySource;
use chatops_testkit::NatsServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{TestGateway, config};

async fn gateway(nats: &NatsServer, limits: Limits) -> TestGateway {
    let mut cfg = config(
        nats,
        "http://127.0.0.1:9/v1",
        PolicySource::AuthorizedUsers(vec!["a@example.com".into()]),
    );
    cfg.limits = limits;
    TestGateway::start(cfg).await
}

fn addr(gw: &TestGateway) -> String {
    gw.base.trim_start_matches("http://").to_owned()
}

/// Sends a request head announcing a body, and a few bytes of it.
async fn stalled_request(addr: &str) -> TcpStream {
    let mut conn = TcpStream::connect(addr).await.expect("connect");
    conn.write_all(
        b"POST /webhooks/webex HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nx-spark-signature: 00\r\ncontent-length: 100\r\n\r\n{\"id\"",
    )
    .await
    .expect("write");
    conn
}

/// Reads whatever the server answers (until it closes or 10 s pass).
async fn answer(conn: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut buf)).await;
    String::from_utf8_lossy(&buf).into_owned()
}

#[tokio::test]
async fn a_body_that_trickles_in_gets_408() {
    let nats = NatsServer::start().await;
    let gw = gateway(
        &nats,
        Limits {
            body_timeout: Duration::from_millis(300),
            ..Limits::default()
        },
    )
    .await;
    let started = Instant::now();
    let mut conn = stalled_request(&addr(&gw)).await;
    let reply = answer(&mut conn).await;
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered at the deadline, not later"
    );
}

/// A body said to be too large is refused before it is sent: the answer
/// does not wait out the body's deadline (a minute here; `answer` gives up
/// after 10 s).
#[tokio::test]
async fn a_body_declared_too_large_gets_413_at_once() {
    let nats = NatsServer::start().await;
    let gw = gateway(
        &nats,
        Limits {
            body_timeout: Duration::from_secs(60),
            ..Limits::default()
        },
    )
    .await;
    let mut conn = TcpStream::connect(addr(&gw)).await.expect("connect");
    conn.write_all(
        b"POST /webhooks/webex HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nx-spark-signature: 00\r\ncontent-length: 99999999999\r\n\r\n{\"id\"",
    )
    .await
    .expect("write");
    let reply = answer(&mut conn).await;
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
}

#[tokio::test]
async fn an_idle_connection_is_closed() {
    let nats = NatsServer::start().await;
    let gw = gateway(
        &nats,
        Limits {
            idle_timeout: Duration::from_millis(300),
            ..Limits::default()
        },
    )
    .await;
    let mut conn = TcpStream::connect(addr(&gw)).await.expect("connect");
    let started = Instant::now();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut buf))
        .await
        .expect("closed in time");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "the server hung up: {read:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(250));
}

#[tokio::test]
async fn a_connection_in_use_outlives_the_idle_timeout_then_closes_when_idle() {
    let nats = NatsServer::start().await;
    let idle = Duration::from_millis(400);
    let gw = gateway(
        &nats,
        Limits {
            idle_timeout: idle,
            ..Limits::default()
        },
    )
    .await;
    let mut conn = TcpStream::connect(addr(&gw)).await.expect("connect");
    // A request every 150 ms for four idle timeouts, on one connection.
    let started = Instant::now();
    let mut pace = tokio::time::interval(Duration::from_millis(150));
    let mut answers = Vec::new();
    while started.elapsed() < idle * 4 {
        pace.tick().await;
        conn.write_all(b"GET /healthz HTTP/1.1\r\nhost: gateway\r\n\r\n")
            .await
            .expect("send");
        let mut answer = Vec::new();
        while !answer.ends_with(b"ok") {
            let mut buf = [0u8; 512];
            let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf))
                .await
                .expect("answered in time")
                .expect("read");
            assert!(n > 0, "closed while in use, after {:?}", started.elapsed());
            answer.extend_from_slice(&buf[..n]);
        }
        answers.push(answer);
    }
    assert!(answers.len() >= 10, "{} requests", answers.len());
    assert!(
        answers.iter().all(|a| a.starts_with(b"HTTP/1.1 200")),
        "every request answered"
    );
    // Then idle: closed about one idle timeout after the last answer.
    let last = Instant::now();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut buf))
        .await
        .expect("closed in time");
    assert!(matches!(read, Ok(0) | Err(_)), "hung up: {read:?}");
    assert!(last.elapsed() >= idle - Duration::from_millis(50));
}

#[tokio::test]
async fn past_the_in_flight_cap_webhooks_get_503_at_once_and_health_still_answers() {
    let nats = NatsServer::start().await;
    let limits = Limits {
        max_in_flight: 2,
        body_timeout: Duration::from_secs(5),
        ..Limits::default()
    };
    let gw = gateway(&nats, limits).await;
    let _held = [
        stalled_request(&addr(&gw)).await,
        stalled_request(&addr(&gw)).await,
    ];
    // The two stalled requests hold both slots once the server reads them.
    let shed =
        chatops_testkit::eventually("a request to be shed", Duration::from_secs(10), || async {
            let r = gw.deliver(&crate::helpers::envelope("m-flood")).await;
            (r.status() == 503).then_some(r)
        })
        .await;
    assert_eq!(
        shed.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let health = gw
        .http
        .get(format!("{}/healthz", gw.base))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), 200);
    let metrics = gw.metrics().await;
    assert!(
        metrics.contains(r#"chatops_gateway_webhooks_total{outcome="shed"}"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn past_the_connection_cap_new_connections_wait_for_a_free_slot() {
    let nats = NatsServer::start().await;
    let limits = Limits {
        max_connections: 2,
        idle_timeout: Duration::from_millis(500),
        ..Limits::default()
    };
    let gw = gateway(&nats, limits).await;
    let _idle = [
        TcpStream::connect(addr(&gw)).await.expect("a"),
        TcpStream::connect(addr(&gw)).await.expect("b"),
    ];
    let started = Instant::now();
    let health = gw
        .http
        .get(format!("{}/healthz", gw.base))
        .send()
        .await
        .expect("served once a slot frees");
    assert_eq!(health.status(), 200);
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "it waited for the idle ones to be closed: {:?}",
        started.elapsed()
    );
}

/// A head that trickles in a byte at a time, each within the idle timeout,
/// is cut off once the request timeout has passed since its first byte.
#[tokio::test]
async fn a_head_that_trickles_in_is_cut_off() {
    let nats = NatsServer::start().await;
    let gw = gateway(
        &nats,
        Limits {
            idle_timeout: Duration::from_millis(400),
            body_timeout: Duration::from_millis(200),
            request_timeout: Duration::from_millis(300),
            ..Limits::default()
        },
    )
    .await;
    let mut conn = TcpStream::connect(addr(&gw)).await.expect("connect");
    let head = b"POST /webhooks/webex HTTP/1.1\r\nhost: x\r\nx-padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
    let started = Instant::now();
    let mut pace = tokio::time::interval(Duration::from_millis(100));
    let mut cut = false;
    for byte in head.iter().cycle().take(80) {
        pace.tick().await;
        if conn.write_all(&[*byte]).await.is_err() {
            cut = true;
            break;
        }
        let mut buf = [0u8; 64];
        if let Ok(read) = tokio::time::timeout(Duration::from_millis(1), conn.read(&mut buf)).await
        {
            assert!(matches!(read, Ok(0) | Err(_)), "no answer: {read:?}");
            cut = true;
            break;
        }
    }
    assert!(cut, "still open after {:?} of trickling", started.elapsed());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "cut off within the idle timeout after the request timeout: {:?}",
        started.elapsed()
    );
}

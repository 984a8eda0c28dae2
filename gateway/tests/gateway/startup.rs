//! Start-up: configuration errors end it with one line and exit code 64,
//! never printing a secret; a good configuration serves and stops on SIGTERM.

use std::path::Path;
use std::time::Duration;

use chatops_testkit::{NatsServer, Process, run_to_exit};

const TOKEN: &str = "bot-token-TOPSECRET";
const SECRET: &str = "hook-secret-TOPSECRET";
const LIMIT: Duration = Duration::from_secs(30);

fn gateway() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_gateway"))
}

/// A gateway process on the NATS at `url`, with `extra` variables.
fn spawned(url: &str, extra: &[(&str, &str)]) -> Process {
    let mut vars = vec![
        ("WEBEX_BOT_TOKEN", TOKEN),
        ("WEBEX_WEBHOOK_SECRET", SECRET),
        ("AUTHORIZED_USERS", "a@example.com"),
        ("GATEWAY_ADDR", "127.0.0.1:0"),
        ("NATS_URL", url),
    ];
    vars.extend_from_slice(extra);
    Process::spawn(gateway(), &[], &vars)
}

fn assert_config_error(exit: &chatops_testkit::Exit, variable: &str) {
    assert_eq!(exit.code, Some(64), "{exit:?}");
    let lines: Vec<_> = exit.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line expected: {:?}", exit.stderr);
    assert!(
        lines[0].contains(variable),
        "{:?} should name {variable}",
        lines[0]
    );
    let all = format!("{}{}", exit.stdout, exit.stderr);
    assert!(!all.contains("TOPSECRET"), "a secret was printed: {all}");
}

#[tokio::test]
async fn missing_bot_token_exits_64_naming_it() {
    let exit = run_to_exit(
        gateway(),
        &[
            ("WEBEX_WEBHOOK_SECRET", SECRET),
            ("AUTHORIZED_USERS", "a@example.com"),
        ],
        LIMIT,
    )
    .await;
    assert_config_error(&exit, "WEBEX_BOT_TOKEN");
}

#[tokio::test]
async fn missing_webhook_secret_exits_64_naming_it() {
    let exit = run_to_exit(
        gateway(),
        &[
            ("WEBEX_BOT_TOKEN", TOKEN),
            ("AUTHORIZED_USERS", "a@example.com"),
        ],
        LIMIT,
    )
    .await;
    assert_config_error(&exit, "WEBEX_WEBHOOK_SECRET");
}

#[tokio::test]
async fn malformed_variables_exit_64_naming_each_without_secrets() {
    let base = [
        ("WEBEX_BOT_TOKEN", TOKEN),
        ("WEBEX_WEBHOOK_SECRET", SECRET),
        ("AUTHORIZED_USERS", "a@example.com"),
    ];
    let cases = [
        ("NATS_URL", "nats://127.0.0.1:notaport"),
        ("GATEWAY_ADDR", "everywhere"),
        ("WEBEX_API_URL", "webexapis"),
        ("AUTHORIZED_USERS", "alice"),
        ("KUBERNETES_NAMESPACE", "Prod"),
        ("CHATOPS_COMMANDS_MAX_AGE", "forever"),
        ("CHATOPS_MAX_REPLICAS", "lots"),
        ("WEBEX_BOT_TOKEN", "two words TOPSECRET"),
    ];
    for (variable, value) in cases {
        let mut env: Vec<_> = base
            .iter()
            .copied()
            .filter(|(k, _)| *k != variable)
            .collect();
        env.push((variable, value));
        let exit = run_to_exit(gateway(), &env, LIMIT).await;
        assert_config_error(&exit, variable);
    }
}

#[tokio::test]
async fn the_seed_secret_name_is_accepted() {
    // With the seed's WEBEX_ENCRYPTION_SECRET the configuration is complete,
    // so the next problem is the NATS server: nothing listens on port 1.
    let exit = run_to_exit(
        gateway(),
        &[
            ("WEBEX_BOT_TOKEN", TOKEN),
            ("WEBEX_ENCRYPTION_SECRET", SECRET),
            ("AUTHORIZED_USERS", "a@example.com"),
            ("GATEWAY_ADDR", "127.0.0.1:0"),
            ("NATS_URL", "nats://127.0.0.1:1"),
        ],
        LIMIT,
    )
    .await;
    assert_eq!(exit.code, Some(69), "{exit:?}");
    assert!(
        exit.stderr
            .contains("cannot connect to NATS at nats://127.0.0.1:1"),
        "{exit:?}"
    );
    assert!(!exit.stderr.contains("TOPSECRET"));
}

#[tokio::test]
async fn serves_health_sets_up_streams_and_stops_on_sigterm() {
    let nats = NatsServer::start().await;
    let url = nats.url();
    let mut gateway = spawned(&url, &[("RUST_LOG", "trace")]);
    let addr = crate::helpers::listening(&mut gateway).await;
    let health = chatops_testkit::http()
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .expect("GET /healthz");
    assert!(health.status().is_success());

    let client = async_nats::connect(&url).await.expect("connect");
    let js = async_nats::jetstream::new(client);
    for stream in ["CHATOPS_EVENTS", "CHATOPS_COMMANDS", "CHATOPS_RESULTS"] {
        js.get_stream(stream)
            .await
            .unwrap_or_else(|e| panic!("{stream}: {e}"));
    }

    gateway.signal("TERM");
    let (code, logs) = gateway.wait(LIMIT).await;
    assert_eq!(code, Some(0), "{logs}");
    assert!(logs.contains("SIGTERM"), "{logs}");
    assert!(
        !logs.contains("TOPSECRET"),
        "a secret reached the logs at trace level"
    );
}

#[tokio::test]
async fn stream_settings_that_differ_from_the_server_exit_64() {
    let nats = NatsServer::start().await;
    let url = nats.url();
    let env = |age: &'static str| {
        vec![
            ("WEBEX_BOT_TOKEN", TOKEN),
            ("WEBEX_WEBHOOK_SECRET", SECRET),
            ("AUTHORIZED_USERS", "a@example.com"),
            ("GATEWAY_ADDR", "127.0.0.1:0"),
            ("CHATOPS_COMMANDS_MAX_AGE", age),
        ]
    };
    let client = async_nats::connect(&url).await.expect("connect");
    let js = async_nats::jetstream::new(client);
    let short = chatops_shared::streams::StreamSettings {
        commands_max_age: Duration::from_secs(86_400),
        ..Default::default()
    };
    chatops_shared::streams::ensure(&js, &short)
        .await
        .expect("set-up");
    let mut vars = env("90d");
    vars.push(("NATS_URL", url.as_str()));
    let exit = run_to_exit(gateway(), &vars, LIMIT).await;
    assert_eq!(exit.code, Some(64), "{exit:?}");
    assert!(exit.stderr.contains("stream CHATOPS_COMMANDS already exists with different settings: max_age is 1d (configured 90d)"), "{exit:?}");

    // With JSON logs, why it stopped is a JSON line too, as every other.
    vars.push(("LOG_FORMAT", "json"));
    let exit = run_to_exit(gateway(), &vars, LIMIT).await;
    assert_eq!(exit.code, Some(64), "{exit:?}");
    let lines: Vec<serde_json::Value> = exit
        .stderr
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    let stopped = lines
        .iter()
        .find(|line| line["fields"]["message"] == "stopped")
        .unwrap_or_else(|| panic!("a line saying why it stopped: {lines:?}"));
    assert_eq!(stopped["level"], "ERROR", "{stopped}");
    assert!(
        stopped["fields"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("max_age is 1d (configured 90d)")),
        "{stopped}"
    );
}

/// A bot token Webex refuses is named in an error line, without the token;
/// the gateway still takes webhooks in, for when the token is mended.
#[tokio::test]
async fn a_bot_token_webex_refuses_is_named_in_an_error() {
    let nats = NatsServer::start().await;
    let wx = chatops_sandbox::webex::WebexSandbox::builder()
        .bot("kube", "the-real-token")
        .start()
        .await
        .expect("sandbox");
    let (url, api) = (nats.url(), wx.url());
    let mut gateway = Process::spawn(
        gateway(),
        &[],
        &[
            ("WEBEX_BOT_TOKEN", TOKEN),
            ("WEBEX_WEBHOOK_SECRET", SECRET),
            ("WEBEX_API_URL", api.as_str()),
            ("AUTHORIZED_USERS", "a@example.com"),
            ("GATEWAY_ADDR", "127.0.0.1:0"),
            ("NATS_URL", url.as_str()),
        ],
    );
    let line = gateway
        .wait_for_line("does not accept WEBEX_BOT_TOKEN", LIMIT)
        .await;
    assert!(line.contains("ERROR"), "{line}");
    assert!(!line.contains("TOPSECRET"), "{line}");
    gateway.signal("TERM");
    let (code, logs) = gateway.wait(LIMIT).await;
    assert_eq!(code, Some(0), "{logs}");
}

/// A server that lost its store (here, its streams deleted) gets them back
/// from a running gateway, which then takes webhooks in again.
#[tokio::test]
async fn streams_lost_while_running_are_made_again() {
    let nats = NatsServer::start().await;
    let policy =
        chatops_shared::config::PolicySource::AuthorizedUsers(vec!["a@example.com".into()]);
    // A Webex address nothing answers at: a port the OS gave, let go.
    let gone = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let webex = format!("http://{}/v1", gone.local_addr().expect("address"));
    drop(gone);
    let gw =
        crate::helpers::TestGateway::start(crate::helpers::config(&nats, &webex, policy)).await;
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.expect("connect"));
    for stream in [
        chatops_shared::streams::EVENTS_STREAM,
        chatops_shared::streams::COMMANDS_STREAM,
    ] {
        js.delete_stream(stream).await.expect("deleted");
    }
    chatops_testkit::eventually("the streams made again", LIMIT, || async {
        let events = js
            .get_stream(chatops_shared::streams::EVENTS_STREAM)
            .await
            .ok()?;
        let commands = js
            .get_stream(chatops_shared::streams::COMMANDS_STREAM)
            .await
            .ok()?;
        let ingestion: async_nats::jetstream::consumer::PullConsumer = events
            .get_consumer(chatops_shared::streams::INGESTION_CONSUMER)
            .await
            .ok()?;
        let workers: async_nats::jetstream::consumer::PullConsumer = commands
            .get_consumer(chatops_shared::streams::WORKERS_CONSUMER)
            .await
            .ok()?;
        drop((ingestion, workers));
        Some(())
    })
    .await;
    let body = crate::helpers::envelope("message-after-the-loss");
    let response = gw.deliver(&body).await;
    assert_eq!(response.status(), 200, "taken in again");
    assert_eq!(gw.stored(chatops_shared::streams::EVENTS_STREAM).await, 1);
}

/// A second signal stops at once, without the grace period: here a body
/// that trickles in would hold the graceful stop for its 10 s deadline.
#[tokio::test]
async fn a_second_signal_stops_at_once() {
    use tokio::io::AsyncWriteExt;
    let nats = NatsServer::start().await;
    let url = nats.url();
    let mut gateway = spawned(&url, &[]);
    let addr = crate::helpers::listening(&mut gateway).await;
    let mut conn = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    conn.write_all(
        b"POST /webhooks/webex HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nx-spark-signature: 00\r\ncontent-length: 100\r\n\r\n{",
    )
    .await
    .expect("write");
    gateway.signal("TERM");
    gateway
        .wait_for_line("a second signal stops at once", LIMIT)
        .await;
    gateway.signal("TERM");
    let (code, logs) = gateway.wait(LIMIT).await;
    // 128 + SIGTERM's 15, as a shell gives a process it ends; a graceful
    // stop is 0.
    assert_eq!(code, Some(143), "{logs}");
    assert!(
        logs.contains("SIGTERM received again: stopping at once"),
        "{logs}"
    );
    drop(conn);
}

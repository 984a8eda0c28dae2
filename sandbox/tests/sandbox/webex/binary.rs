//! The `webex-sandbox` binary: prints where it listens and the default
//! room, serves the API there, and stops cleanly on SIGTERM.

use std::process::Stdio;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use super::*;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_webex-sandbox")
}

#[tokio::test]
async fn the_binary_prints_its_address_and_room_serves_and_stops_on_sigterm() {
    let mut child = Command::new(bin())
        .args([
            "--listen",
            "127.0.0.1:0",
            "--bot-token",
            BOT_TOKEN,
            "--bot-name",
            "kube",
        ])
        .args(["--user", &format!("{ALICE}={ALICE_TOKEN}")])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run webex-sandbox");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut next_line = async || {
        tokio::time::timeout(LIMIT, lines.next_line())
            .await
            .expect("a line within the limit")
            .expect("readable stdout")
            .expect("a line before exit")
    };
    let first = next_line().await;
    let url = first
        .strip_prefix("webex-sandbox listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_owned();
    assert!(!url.ends_with(":0"), "the real port is printed: {url}");
    let second = next_line().await;
    let room = second
        .strip_prefix("default room: ")
        .unwrap_or_else(|| panic!("unexpected second line {second:?}"))
        .to_owned();

    let fetched: Value = http()
        .get(format!("{url}/v1/rooms/{room}"))
        .bearer_auth(ALICE_TOKEN)
        .send()
        .await
        .expect("GET the default room")
        .json()
        .await
        .expect("a room");
    assert_eq!(fetched["title"], "chatops");
    let me: Value = http()
        .get(format!("{url}/v1/people/me"))
        .bearer_auth(BOT_TOKEN)
        .send()
        .await
        .expect("GET /v1/people/me")
        .json()
        .await
        .expect("a person");
    assert_eq!(me["displayName"], "kube");

    let pid = child.id().expect("a pid").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("run kill");
    assert!(killed.success());
    let output = tokio::time::timeout(LIMIT, child.wait_with_output())
        .await
        .expect("exits within the limit")
        .expect("waits");
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("SIGTERM"), "{stderr}");
    assert!(
        !stderr.contains("TOPSECRET"),
        "a token reached the logs: {stderr}"
    );
}

#[tokio::test]
async fn a_malformed_user_is_refused_without_echoing_it() {
    let output = Command::new(bin())
        .args(["--bot-token", "t", "--user", "alice-TOPSECRET"])
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run webex-sandbox");
    assert_eq!(output.status.code(), Some(64), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim(), "webex-sandbox: --user expects EMAIL=TOKEN");
}

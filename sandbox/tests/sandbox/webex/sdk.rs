//! The official Python SDK (`webexpythonsdk`) against the sandbox, through
//! `tests/python/sdk_check.py`. The interpreter is `CHATOPS_PYTHON` (the
//! virtualenv scripts/test prepares), else `python3`; without the SDK the
//! test fails, it never skips.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use tokio::process::Command;

use super::*;

/// The SDK waits out a 1 s Retry-After; the whole script takes a few seconds.
const SCRIPT_LIMIT: Duration = Duration::from_secs(90);
const CHECKS: &[&str] = &[
    "people.me",
    "rooms.list",
    "webhooks.create",
    "messages.create mention",
    "messages.create parentId",
    "messages.get",
    "messages.list",
    "messages.update",
    "attachment_actions",
    "messages.delete",
    "messages.create limit",
    "webhooks.list",
    "webhooks.update",
    "webhooks.delete",
    "401",
    "429",
];

fn python() -> String {
    std::env::var("CHATOPS_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

fn python_command(python: &str) -> Command {
    let mut cmd = Command::new(python);
    cmd.env_remove("WEBEX_ACCESS_TOKEN")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

/// Fails the test, saying how to fix it, if the SDK cannot be imported.
async fn assert_sdk_importable(python: &str) {
    let probe = python_command(python)
        .args([
            "-c",
            "import webexpythonsdk; print(webexpythonsdk.__version__)",
        ])
        .output()
        .await;
    let fix = "run scripts/test, or: python3 -m venv /tmp/wxvenv && /tmp/wxvenv/bin/pip install webexpythonsdk==2.0.6 \
               and set CHATOPS_PYTHON=/tmp/wxvenv/bin/python";
    match probe {
        Ok(out) if out.status.success() => {
            let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            if version != "2.0.6" {
                eprintln!(
                    "note: webexpythonsdk {version} found; the sandbox is verified against 2.0.6"
                );
            }
        }
        Ok(out) => panic!(
            "webexpythonsdk is not importable with {python}: {}\n{fix}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => panic!("cannot run {python}: {e}\n{fix}"),
    }
}

#[tokio::test]
async fn the_official_python_sdk_works_against_the_sandbox() {
    let python = python();
    assert_sdk_importable(&python).await;
    let wx = sandbox().await;
    let mut receiver = Receiver::start().await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/sdk_check.py");

    let run = python_command(&python)
        .arg(&script)
        .env("SANDBOX_API", format!("{}/", wx.url()))
        .env("SANDBOX_CONTROL", wx.control_url())
        .env("BOT_TOKEN", BOT_TOKEN)
        .env("BOT_NAME", "kube")
        .env("USER_EMAIL", ALICE)
        .env("USER_TOKEN", ALICE_TOKEN)
        .env("ROOM_ID", wx.default_room_id())
        .env("TARGET_URL", &receiver.url)
        .env("WEBHOOK_SECRET", SECRET)
        .output();
    let output = tokio::time::timeout(SCRIPT_LIMIT, run)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{} did not finish within {SCRIPT_LIMIT:?}",
                script.display()
            )
        })
        .expect("run the SDK check");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the SDK check failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    for check in CHECKS {
        assert!(
            stdout.lines().any(|l| l == format!("ok {check}")),
            "no \"ok {check}\" in:\n{stdout}"
        );
    }
    assert!(stdout.lines().any(|l| l == "ALL OK"), "{stdout}");

    // The webhook the SDK registered was told of the SDK-posted mention,
    // signed with the SDK-given secret.
    let message_id = stdout
        .lines()
        .find_map(|l| l.strip_prefix("MESSAGE_ID="))
        .expect("the script names its message");
    let delivery = receiver.next().await;
    assert_eq!(delivery.json()["data"]["id"], json!(message_id));
    assert_eq!(delivery.signature(), hmac_sha1_hex(SECRET, &delivery.body));
    assert!(
        receiver.drain().is_empty(),
        "only the mention reaches the bot"
    );

    // What the sandbox saw: the 429 the SDK waited out, then the retry, and
    // a message list walked page by page through Link headers.
    let me_calls: Vec<(u16, Option<String>)> = wx
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v1/people/me" && r.actor.as_deref() == Some("kube@webex.bot"))
        .map(|r| (r.status, r.fault))
        .collect();
    assert_eq!(
        me_calls[me_calls.len().saturating_sub(2)..],
        [
            (429, Some("rateLimit retryAfter=1".to_owned())),
            (200, None)
        ]
    );
    let pages = wx
        .requests()
        .into_iter()
        .filter(|r| {
            r.method == "GET"
                && r.path == "/v1/messages"
                && r.query.as_deref().is_some_and(|q| q.contains("max=2"))
        })
        .count();
    assert_eq!(pages, 3, "five messages in pages of two");
}

//! The `chatops` binary from the outside.

// Test helpers are `pub` for the modules of this one test binary.
#![allow(unreachable_pub)]

mod audit;
mod demo;

use std::path::Path;
use std::time::Duration;

use chatops_testkit::run_to_exit;

pub const LIMIT: Duration = Duration::from_secs(60);

fn chatops() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_chatops"))
}

pub async fn chatops_with(args: &[&str], env: &[(&str, &str)]) -> chatops_testkit::Exit {
    let mut cmd = tokio::process::Command::new(chatops());
    cmd.args(args)
        .env_clear()
        .envs(env.iter().copied())
        .kill_on_drop(true);
    let out = tokio::time::timeout(LIMIT, cmd.output())
        .await
        .expect("exits")
        .expect("runs");
    chatops_testkit::Exit {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[tokio::test]
async fn parse_prints_the_command_the_gateway_would_publish() {
    let exit = chatops_with(&["parse", "kube scale web to 3 in prod"], &[]).await;
    assert_eq!(exit.code, Some(0), "{exit:?}");
    let command: serde_json::Value = serde_json::from_str(&exit.stdout).expect("JSON on stdout");
    assert_eq!(command["kind"], "scale");
    assert_eq!(command["replicas"], 3);
    assert_eq!(command["namespace"], "prod");
    assert_eq!(command["deployment"], "web");
    assert_eq!(command["version"], 1);
    assert!(
        exit.stderr.contains("subject: chatops.commands.prod.web"),
        "{exit:?}"
    );
}

/// `chatops ... | head -1`: a reader that stops reading is no reason to
/// panic; the command ends as it would have.
#[tokio::test]
async fn output_to_a_reader_gone_away_is_dropped_without_a_panic() {
    let mut child = tokio::process::Command::new(chatops())
        .args(["parse", "kube scale web to 3 in prod"])
        .env_clear()
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("runs");
    // The reader is gone before the first line is written.
    drop(child.stdout.take());
    let out = tokio::time::timeout(LIMIT, child.wait_with_output())
        .await
        .expect("exits")
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test]
async fn parse_prints_the_reply_and_exits_2_for_what_is_not_a_command() {
    let cases = [
        ("scale web", "Expected `scale <deployment> to <replicas>`"),
        ("delete web", "I don't know the command 'delete'"),
        ("scale web to 99", "from 0 to 50, got '99'"),
        ("deploy <@all> to web", "the image reference contains '<'"),
        ("deploy Web:1 to web", "must be lowercase"),
    ];
    for (text, want) in cases {
        let exit = chatops_with(&["parse", text], &[]).await;
        assert_eq!(exit.code, Some(2), "{text}: {exit:?}");
        assert!(exit.stdout.contains(want), "{text}: {}", exit.stdout);
    }
    let exit = chatops_with(&["parse", "help"], &[]).await;
    assert_eq!(exit.code, Some(0));
    assert!(
        exit.stdout.contains("scale <deployment> to <replicas>"),
        "{}",
        exit.stdout
    );
}

#[tokio::test]
async fn parse_as_a_person_applies_the_policy() {
    let env = [
        ("AUTHORIZED_USERS", "alice@example.com"),
        ("CHATOPS_MAX_REPLICAS", "10"),
    ];
    let exit = chatops_with(
        &["parse", "--as", "alice@example.com", "scale web to 10"],
        &env,
    )
    .await;
    assert_eq!(exit.code, Some(0), "{exit:?}");
    let exit = chatops_with(
        &["parse", "--as", "mallory@example.com", "scale web to 1"],
        &env,
    )
    .await;
    assert_eq!(exit.code, Some(2), "{exit:?}");
    assert!(exit.stdout.contains("not authorised"), "{}", exit.stdout);
    // As in the room: refused before the message is parsed, help included.
    for text in ["scale web to 1000", "help"] {
        let exit = chatops_with(&["parse", "--as", "mallory@example.com", text], &env).await;
        assert_eq!(exit.code, Some(2), "{text}: {exit:?}");
        assert_eq!(
            exit.stdout.trim(),
            "Sorry, you are not authorised to run commands with this bot; the people who run it can add you to its policy.",
            "{text}"
        );
    }
    let exit = chatops_with(
        &["parse", "--as", "alice@example.com", "scale web to 1"],
        &[],
    )
    .await;
    assert_eq!(exit.code, Some(64), "no policy configured: {exit:?}");
    assert!(exit.stderr.contains("AUTHORIZED_USERS"), "{exit:?}");
}

#[tokio::test]
async fn setup_with_a_bad_nats_url_exits_64() {
    let exit = run_to_exit(chatops(), &[("NATS_URL", "nats://x:y:z")], LIMIT).await;
    // No subcommand: clap's usage, exit 2.
    assert_eq!(exit.code, Some(2), "{exit:?}");
    let exit = chatops_with(&["setup"], &[("NATS_URL", "nats://x:y:z")]).await;
    assert_eq!(exit.code, Some(64), "{exit:?}");
    assert!(exit.stderr.contains("NATS_URL"));
}

/// A NATS server that asks for credentials gets those of NATS_URL (the
/// client sends none of a URL's by itself: they were never sent), user and
/// password or a token, percent-encoded or not; wrong ones are refused
/// (69), and neither is printed, not even at `trace`.
#[tokio::test]
async fn setup_authenticates_with_the_credentials_in_nats_url_and_prints_none() {
    let users =
        chatops_testkit::NatsServer::start_with_args(&["--user", "bob", "--pass", "p@ss:W0RD"])
            .await;
    let port = users.port();
    let tokens = chatops_testkit::NatsServer::start_with_args(&["--auth", "T0KEN42"]).await;
    for (url, code) in [
        (format!("nats://bob:p%40ss%3AW0RD@127.0.0.1:{port}"), 0),
        // Every server in the list gets them, given once.
        (
            format!("nats://127.0.0.1:{port},nats://bob:p%40ss%3AW0RD@127.0.0.1:{port}"),
            0,
        ),
        (format!("nats://bob:WR0NGPASS@127.0.0.1:{port}"), 69),
        (format!("nats://T0KEN42@127.0.0.1:{}", tokens.port()), 0),
        (format!("nats://WR0NGT0KEN@127.0.0.1:{}", tokens.port()), 69),
        (format!("nats://127.0.0.1:{port}"), 69),
    ] {
        let exit = chatops_with(&["setup"], &[("NATS_URL", &url), ("RUST_LOG", "trace")]).await;
        assert_eq!(exit.code, Some(code), "{url}: {exit:?}");
        let printed = format!("{}{}", exit.stdout, exit.stderr);
        for secret in [
            "p@ss",
            "p%40ss",
            "W0RD",
            "WR0NGPASS",
            "T0KEN42",
            "WR0NGT0KEN",
        ] {
            assert!(
                !printed.contains(secret),
                "{url} printed {secret}:\n{printed}"
            );
        }
    }
    let exit = chatops_with(
        &["setup"],
        &[(
            "NATS_URL",
            &format!("nats://bob:one@127.0.0.1:{port},nats://bob:two@127.0.0.1:{port}"),
        )],
    )
    .await;
    assert_eq!(exit.code, Some(64), "{exit:?}");
    assert!(exit.stderr.contains("different credentials"), "{exit:?}");
}

/// A rate from the environment that is no number is a configuration
/// error (64, naming the variable), as it is for the worker, and is
/// caught before anything is reached; a bad flag is a usage error.
#[tokio::test]
async fn replay_refuses_a_rate_that_is_no_number() {
    for (var, value) in [("CHATOPS_KUBE_QPS", "abc"), ("CHATOPS_KUBE_BURST", "0")] {
        let exit = chatops_with(&["replay", "--dry-run"], &[(var, value)]).await;
        assert_eq!(exit.code, Some(64), "{exit:?}");
        assert!(
            exit.stderr.contains(var) && exit.stderr.contains(&format!("is '{value}'")),
            "{exit:?}"
        );
    }
    let exit = chatops_with(&["replay", "--qps", "0"], &[("CHATOPS_KUBE_QPS", "abc")]).await;
    assert_eq!(exit.code, Some(1), "{exit:?}");
    assert!(
        exit.stderr.contains("--qps must be a positive number"),
        "{exit:?}"
    );
}

#[tokio::test]
async fn replay_refuses_a_window_that_ends_before_it_starts() {
    let exit = chatops_with(
        &[
            "replay",
            "--since",
            "2026-02-01T00:00:00Z",
            "--until",
            "2026-01-01T00:00:00Z",
        ],
        &[],
    )
    .await;
    assert_eq!(exit.code, Some(1), "{exit:?}");
    assert!(
        exit.stderr
            .contains("--since 2026-02-01T00:00:00Z is later than --until"),
        "{exit:?}"
    );
}

#[tokio::test]
async fn parse_as_takes_an_address_as_webex_keeps_it_or_refuses_it() {
    let users = [("AUTHORIZED_USERS", "alice@example.com")];
    let exit = chatops_with(&["parse", "--as", "notanemail", "scale web to 1"], &users).await;
    assert_eq!(exit.code, Some(2), "{exit:?}");
    assert!(
        exit.stderr.contains("expected an email address"),
        "{exit:?}"
    );
    let exit = chatops_with(
        &["parse", "--as", " Alice@Example.com ", "scale web to 1"],
        &users,
    )
    .await;
    assert_eq!(exit.code, Some(0), "as alice: {exit:?}");
}

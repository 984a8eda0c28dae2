//! `chatops demo --exec`, as a newcomer would run it.

use std::time::Duration;

use crate::chatops_with;

#[tokio::test]
async fn the_demo_scales_and_deploys_and_shows_the_result() {
    let exit = chatops_with(
        &[
            "demo",
            "--exec",
            "scale nginx-deployment to 3",
            "--exec",
            // Typed with the mention, as the README writes commands.
            "@kube deploy nginx:1.21 to nginx-deployment",
            "--exec",
            "status nginx-deployment",
            "--exec",
            "scale nginx-deploymnet to 4",
        ],
        &[("PATH", &std::env::var("PATH").unwrap_or_default())],
    )
    .await;
    assert_eq!(exit.code, Some(0), "{exit:?}");
    let out = &exit.stdout;
    let lines: Vec<&str> = out.lines().collect();
    let find = |needle: &str| {
        lines
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle:?} in:\n{out}"))
    };
    let asked = find("alice@example.com: kube scale nginx-deployment to 3");
    let queued = find("kube: Alice queued: scale nginx-deployment to 3 in default");
    let done = find("kube: Alice Nicely done! scaled nginx-deployment from 2 to 3 replicas");
    let asked2 = find("alice@example.com: kube deploy nginx:1.21 to nginx-deployment");
    let queued2 = find("queued: deploy nginx:1.21 to nginx-deployment in default");
    let done2 = find(
        "Nicely done! deployed nginx:1.21 to nginx-deployment (container nginx, was nginx:1.14.2)",
    );
    assert!(
        asked < queued && queued < done && done < asked2 && asked2 < queued2 && queued2 < done2,
        "{out}"
    );
    // A question is answered once, as an answer: no receipt, no praise.
    let asked3 = find("alice@example.com: kube status nginx-deployment");
    let answer = find("kube: Alice nginx-deployment in default: 3 desired");
    assert_eq!(answer, asked3 + 1, "{out}");
    assert!(!out.contains("queued: status"), "{out}");
    // A name the cluster does not have is the person's slip, not a fault.
    let typo = find(
        "kube: Alice Sorry, deployment nginx-deploymnet not found in namespace default; did you mean 'nginx-deployment'?",
    );
    assert!(answer < typo, "{out}");
    assert!(!out.contains("Something went wrong"), "{out}");
    assert!(
        lines
            .last()
            .is_some_and(|l| l.starts_with("nginx-deployment: 3 replicas")
                && l.ends_with("image nginx:1.21")),
        "{out}"
    );
}

#[tokio::test]
async fn an_unauthorised_person_gets_the_refusal_and_nothing_changes() {
    let exit = chatops_with(
        &[
            "demo",
            "--as",
            "mallory@example.com",
            "--exec",
            "scale nginx-deployment to 3",
        ],
        &[("PATH", &std::env::var("PATH").unwrap_or_default())],
    )
    .await;
    assert_eq!(exit.code, Some(0), "{exit:?}");
    assert!(
        exit.stdout
            .contains("kube: Mallory Sorry, you are not authorised to run commands with this bot; the people who run it can add you to its policy."),
        "{}",
        exit.stdout
    );
    assert!(
        exit.stdout.contains("nginx-deployment: 2 replicas"),
        "{}",
        exit.stdout
    );
    assert!(!exit.stdout.contains("queued"), "{}", exit.stdout);
}

#[tokio::test]
async fn a_message_webex_refuses_is_answered_and_the_next_one_goes_on() {
    let long = format!("scale {} to 3", "x".repeat(8000));
    let exit = chatops_with(
        &[
            "demo",
            "--exec",
            &long,
            "--exec",
            "scale nginx-deployment to 4",
        ],
        &[("PATH", &std::env::var("PATH").unwrap_or_default())],
    )
    .await;
    assert_eq!(exit.code, Some(0), "{exit:?}");
    let out = &exit.stdout;
    assert!(
        out.contains("webex: Webex would answer 400: The markdown is ")
            && out.contains("the maximum is 7439 bytes"),
        "{out}"
    );
    assert!(
        out.contains("Nicely done! scaled nginx-deployment from 2 to 4 replicas"),
        "{out}"
    );
    assert!(
        out.len() < 4000,
        "the refused message is not echoed whole: {out}"
    );
}

#[tokio::test]
async fn the_demo_says_what_is_missing() {
    let exit = chatops_with(
        &["demo", "--exec", "list"],
        &[
            ("PATH", "/nonexistent"),
            ("NATS_SERVER_BIN", "/nonexistent/nats-server"),
        ],
    )
    .await;
    assert_eq!(exit.code, Some(69), "{exit:?}");
    let line = exit.stderr.lines().last().unwrap_or_default();
    assert!(
        line.contains("cannot run /nonexistent/nats-server")
            && line.contains("apt-get install nats-server"),
        "{line}"
    );
}

/// Ctrl-C at the prompt, as a terminal sends it: SIGINT to the demo's
/// whole process group, its standard input left open. The demo stops at
/// once (it waited for Enter), and its nats-server, apart from the group,
/// is stopped by it after its clients (it got the signal too and went
/// first, and the demo's workers logged the acks they could not flush).
#[tokio::test]
async fn ctrl_c_at_the_prompt_stops_the_demo_in_order() {
    use tokio::io::AsyncReadExt;

    let mut child = tokio::process::Command::new(crate::chatops())
        .arg("demo")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .expect("runs");
    let _stdin = child.stdin.take();
    let mut stdout = child.stdout.take().expect("stdout");
    let mut shown = Vec::new();
    let prompt = tokio::time::timeout(crate::LIMIT, async {
        let mut buf = [0; 4096];
        while !String::from_utf8_lossy(&shown).contains("alice@example.com> ") {
            let n = stdout.read(&mut buf).await.expect("reads");
            assert!(n > 0, "the demo ended before its prompt");
            shown.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    assert!(
        prompt.is_ok(),
        "no prompt: {}",
        String::from_utf8_lossy(&shown)
    );
    let group = child.id().expect("running").to_string();
    let sent = std::process::Command::new("kill")
        .args(["-INT", "--", &format!("-{group}")])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("the demo stops after Ctrl-C without waiting for Enter")
        .expect("waits");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .await
        .expect("reads");
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("stopping everything"), "{stderr}");
    assert!(
        !stderr.contains("WARN") && !stderr.contains("ERROR"),
        "nats-server went before its clients:\n{stderr}"
    );
}

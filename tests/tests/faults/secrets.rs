//! Secrets never leave: gateways and workers logging at `trace` (text and
//! JSON) through a normal flow and a series of failures print neither the
//! bot token, nor the webhook secret, nor the Kubernetes token; nor do the
//! bot's replies or the gateway's answers carry them.

use std::collections::BTreeSet;

use chatops_sandbox::kube::Fault as KubeFault;
use chatops_sandbox::webex::{Fault as WebexFault, spark_signature};
use chatops_testkit::Process;

use crate::bins::bins;
use crate::tally::{orders, send, settle};
use crate::world::{ALICE, MALLORY, Options, SECRETS, START, WEBHOOK_SECRET, World};

fn with(env: &[(String, String)], extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env = env.to_vec();
    for (k, v) in extra {
        env.retain(|(key, _)| key != k);
        env.push(((*k).to_owned(), (*v).to_owned()));
    }
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_appears_in_any_log_at_trace_in_text_or_json_nor_in_replies() {
    let mut w = World::start(Options {
        deployments: 12,
        gateways: 0,
        workers: 0,
        env: vec![("RUST_LOG".to_owned(), "trace".to_owned())],
        ..Options::default()
    })
    .await;
    let (gw, wk) = (w.gateway_env(), w.worker_env());
    let text_gateway = w.spawn_gateway_with(&gw).await;
    w.spawn_gateway_with(&with(&gw, &[("LOG_FORMAT", "json")]))
        .await;
    w.spawn_worker_with(&wk).await;
    w.spawn_worker_with(&with(&wk, &[("LOG_FORMAT", "json")]))
        .await;
    w.register_webhook(&text_gateway).await;

    // Failures along the way: Kubernetes and Webex errors, refusals.
    w.kube.inject(KubeFault::status(503).times(3));
    w.kube
        .inject(KubeFault::status(401).path("/apis/apps/v1/namespaces/default/deployments/app-11"));
    w.wx.inject(WebexFault::status("POST", "/v1/messages", 500).times(2));
    w.wx.inject(WebexFault::status("GET", "/v1/messages/*", 503).times(2));
    let sent = send(&w, &orders(0, 9));
    for text in [
        "status app-0",
        "list",
        "history app-1",
        "help",
        "scale app-0 to 999",
        "scale app-0 to 2 in kube-system",
        "restart app-10",
        "restart app-11",
        "restart missing",
    ] {
        w.say(ALICE, text);
    }
    w.say(MALLORY, "scale app-0 to 0");
    let http = chatops_testkit::http();
    for (body, signature) in [
        (b"{}".as_slice(), "0".repeat(40)),
        (
            b"{\"data\":1}".as_slice(),
            spark_signature(WEBHOOK_SECRET, b"{\"data\":1}"),
        ),
    ] {
        let answer = http
            .post(format!("http://{text_gateway}/webhooks/webex"))
            .header("content-type", "application/json")
            .header("x-spark-signature", signature)
            .body(body)
            .send()
            .await
            .expect("the gateway answers");
        let text = answer.text().await.unwrap_or_default();
        assert!(SECRETS.iter().all(|s| !text.contains(s)), "{text}");
    }
    settle(&w, "secrets at trace (text+json)", &sent).await;
    let room = w.wx.messages_in(w.wx.default_room_id());
    assert!(
        room.len() > 20,
        "the bot answered everything: {}",
        room.len()
    );
    for m in &room {
        let all = format!("{:?} {:?}", m.markdown, m.text);
        assert!(SECRETS.iter().all(|s| !all.contains(s)), "{all}");
    }

    // A worker whose token Kubernetes refuses, which stops at start, and a
    // gateway whose token Webex refuses: their complaints name no token.
    let bad_kube = "kube-token-REFUSED-0d15ea5e";
    let bad_bot = "bot-token-REFUSED-fee1dead";
    let worker = Process::spawn(
        &bins().worker,
        &[],
        &pairs(&with(&wk, &[("KUBERNETES_TOKEN", bad_kube)])),
    );
    let (code, refused_worker) = worker.wait(START).await;
    let output = refused_worker.clone();
    assert_eq!(code, Some(64), "{output}");
    assert!(
        output.contains("refuses the worker's credentials (401); check KUBERNETES_TOKEN"),
        "{output}"
    );
    let mut gateway = Process::spawn(
        &bins().gateway,
        &[],
        &pairs(&with(&gw, &[("WEBEX_BOT_TOKEN", bad_bot)])),
    );
    gateway
        .wait_for_line("does not accept WEBEX_BOT_TOKEN", START)
        .await;
    for (name, output) in [
        ("refused worker", refused_worker),
        ("refused gateway", gateway.output()),
    ] {
        for secret in SECRETS.iter().chain(&[bad_kube, bad_bot]) {
            assert!(
                !output.contains(secret),
                "{name} printed a token:\n{output}"
            );
        }
        assert!(!output.contains("panicked"), "{name}:\n{output}");
    }
    w.assert_clean_outputs();
    let lines: usize = w.outputs().iter().map(|(_, o)| o.lines().count()).sum();
    assert!(lines > 1000, "trace logging was on: {lines} lines");
}

fn pairs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// The variables the README's Configuration table gives `binary` (its own
/// rows and those used by `all`).
fn documented_for(readme: &str, binary: &str) -> BTreeSet<String> {
    readme
        .lines()
        .filter_map(|line| {
            let mut cells = line.split('|').map(str::trim).skip(1);
            let name = cells.next()?.strip_prefix('`')?.strip_suffix('`')?;
            let used_by = cells.next()?;
            (used_by == binary || used_by == "all").then(|| name.to_owned())
        })
        .collect()
}

/// The variable names a compose service sets, after YAML merge keys.
fn compose_environment(compose: &serde_yaml_ng::Value, service: &str) -> BTreeSet<String> {
    let service = &compose["services"][service];
    assert!(
        service.get("env_file").is_none(),
        "{service:?} takes a whole env file: every variable, secrets included"
    );
    service["environment"]
        .as_mapping()
        .unwrap_or_else(|| panic!("no environment mapping in {service:?}"))
        .keys()
        .map(|k| k.as_str().expect("variable names are strings").to_owned())
        .collect()
}

#[test]
fn compose_hands_each_service_the_documented_variables_and_no_other_secret() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).expect("README.md");
    let text =
        std::fs::read_to_string(format!("{root}/docker-compose.yml")).expect("docker-compose.yml");
    let mut compose: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).expect("compose YAML");
    compose.apply_merge().expect("merge keys");

    for (service, binary) in [("gateway", "gateway"), ("worker", "worker")] {
        let set = compose_environment(&compose, service);
        let documented = documented_for(&readme, binary);
        assert!(
            documented.len() > 10,
            "README table for {binary}: {documented:?}"
        );
        assert_eq!(
            set, documented,
            "compose's {service} and the README's variables for {binary} differ"
        );
    }
    let gateway = compose_environment(&compose, "gateway");
    let worker = compose_environment(&compose, "worker");
    assert!(gateway.contains("WEBEX_BOT_TOKEN") && worker.contains("KUBERNETES_TOKEN"));
    for secret in ["WEBEX_BOT_TOKEN", "WEBEX_WEBHOOK_SECRET"] {
        assert!(!worker.contains(secret), "the worker is handed {secret}");
    }
    assert!(
        !gateway.contains("KUBERNETES_TOKEN"),
        "the gateway is handed KUBERNETES_TOKEN"
    );
}

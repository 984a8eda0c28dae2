//! `chatops history`, `chatops replay` and `chatops webhook` against real
//! processes: a nats-server, the sandboxes, workers and a gateway.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream;
use chatops_sandbox::kube::{Fault, KubeSandbox};
use chatops_sandbox::webex::WebexSandbox;
use chatops_shared::config::{ClusterConfig, NatsConfig};
use chatops_shared::streams::{self, StreamSettings};
use chatops_shared::{
    Actor, Command, CommandId, CommandKind, ContractVersion, DeploymentName, ImageRef, Namespace,
    Origin, Replicas, subjects,
};
use chatops_testkit::{NatsServer, eventually};

use crate::{LIMIT, chatops_with};

const DEPLOYMENTS: usize = 10;

fn manifest(name: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: {name}\n  template:\n    metadata:\n      labels:\n        app: {name}\n    spec:\n      containers:\n        - name: main\n          image: app:0\n"
    )
}

/// A nats-server of the test's own, with the streams set up.
async fn nats_with_streams() -> (NatsServer, jetstream::Context) {
    let nats = NatsServer::start().await;
    let js = jetstream::new(async_nats::connect(nats.url()).await.expect("connect"));
    streams::ensure(&js, &StreamSettings::default())
        .await
        .expect("streams");
    (nats, js)
}

async fn cluster() -> KubeSandbox {
    cluster_with(&[]).await
}

/// The deployments `app-0` .. `app-9`, and `extra`.
async fn cluster_with(extra: &[&str]) -> KubeSandbox {
    let mut builder = KubeSandbox::builder().rollout(Duration::from_millis(50));
    for i in 0..DEPLOYMENTS {
        builder = builder.seed_yaml(&manifest(&format!("app-{i}")));
    }
    for name in extra {
        builder = builder.seed_yaml(&manifest(name));
    }
    builder.start().await.expect("sandbox")
}

fn state(kube: &KubeSandbox) -> Vec<(String, i64, String)> {
    (0..DEPLOYMENTS)
        .map(|i| {
            let name = format!("app-{i}");
            let d = kube
                .object("apps/v1", "Deployment", "default", &name)
                .expect("deployment");
            let replicas = d["spec"]["replicas"].as_i64().unwrap_or(-1);
            let image = d["spec"]["template"]["spec"]["containers"][0]["image"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            (name, replicas, image)
        })
        .collect()
}

async fn publish(
    js: &jetstream::Context,
    kind: CommandKind,
    deployment: &str,
    actor: &str,
) -> CommandId {
    let command = Command {
        version: ContractVersion,
        id: CommandId::new(),
        kind,
        namespace: Namespace::default_namespace(),
        deployment: Some(DeploymentName::parse(deployment).expect("valid")),
        visible: Vec::new(),
        actor: Actor {
            email: actor.into(),
            person_id: actor.into(),
        },
        origin: Origin {
            room_id: "room-ops".into(),
            message_id: format!("m-{}", CommandId::new()),
            thread_id: None,
        },
        issued_at: jiff::Timestamp::now(),
    };
    let mut headers = HeaderMap::new();
    headers.insert(subjects::MSG_ID_HEADER, command.origin.message_id.as_str());
    let subject = subjects::command(&command.namespace, command.deployment.as_ref());
    js.publish_with_headers(
        subject,
        headers,
        serde_json::to_vec(&command).expect("json").into(),
    )
    .await
    .expect("publish")
    .await
    .expect("stored");
    command.id
}

/// Runs two in-process workers against `kube` until `shutdown`.
async fn workers(nats: &NatsServer, kube: &KubeSandbox) -> Vec<tokio::sync::oneshot::Sender<()>> {
    let mut stops = Vec::new();
    for _ in 0..2 {
        let app =
            chatops_worker::startup::Application::build(chatops_worker::config::WorkerConfig {
                listen: "127.0.0.1:0".parse().expect("address"),
                nats: NatsConfig { url: nats.url() },
                streams: StreamSettings::default(),
                cluster: ClusterConfig::Explicit {
                    name: "original".into(),
                    url: kube.url(),
                    ca_pem: None,
                    username: None,
                    token: None,
                },
                cluster_name: "original".into(),
                concurrency: 16,
                kube_qps: 10_000.0,
                kube_burst: 10_000,
                follow_rollout: None,
                shutdown_grace: Duration::from_secs(5),
            })
            .await
            .expect("worker");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run_until_stopped(async move {
            let _ = stopped.await;
        }));
        stops.push(stop);
    }
    stops
}

#[tokio::test]
async fn replay_reproduces_the_cluster_and_a_dry_run_finds_everything_applied_and_history_tells_who_did_what()
 {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (nats, js) = nats_with_streams().await;
    let original = cluster().await;
    let _workers = workers(&nats, &original).await;

    let mut rng = fastrand::Rng::with_seed(11);
    let mut ids = Vec::new();
    for i in 0..1000u32 {
        let name = format!("app-{}", rng.usize(..DEPLOYMENTS));
        let kind = if rng.bool() {
            CommandKind::Scale {
                replicas: Replicas::new(rng.i128(0..30), 100).expect("valid"),
            }
        } else {
            CommandKind::SetImage {
                container: None,
                image: ImageRef::parse(&format!("app:{i}")).expect("valid"),
            }
        };
        let actor = if i % 2 == 0 {
            "alice@example.com"
        } else {
            "bob@example.com"
        };
        ids.push(publish(&js, kind, &name, actor).await);
    }
    // A typo, rejected when it was typed: it must not fail every replay.
    let typo = CommandKind::Scale {
        replicas: Replicas::new(2, 100).expect("valid"),
    };
    ids.push(publish(&js, typo, "app-typo", "bob@example.com").await);
    // One the cluster refused (403) before anything changed.
    original.inject(
        Fault::status(403)
            .path("/apis/apps/v1/namespaces/default/deployments/app-forbidden")
            .times(1),
    );
    let forbidden = CommandKind::Scale {
        replicas: Replicas::new(3, 100).expect("valid"),
    };
    ids.push(publish(&js, forbidden, "app-forbidden", "bob@example.com").await);
    eventually("1002 final results", LIMIT, || async {
        let results = chatops_shared::history::final_results(&js, &Default::default())
            .await
            .ok()?;
        (ids.iter().all(|id| results.contains_key(id))).then_some(())
    })
    .await;
    let expected = state(&original);

    // The typo's deployment, and the refused one's, exist on the fresh
    // cluster: neither command is replayed, as neither took effect.
    let fresh = cluster_with(&["app-typo", "app-forbidden"]).await;
    let nats_url = nats.url();
    let env = |cluster: &KubeSandbox| {
        vec![
            ("NATS_URL".to_owned(), nats_url.clone()),
            ("CLUSTER_URL".to_owned(), cluster.url()),
        ]
    };
    let as_refs = |v: &[(String, String)]| {
        v.iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<Vec<_>>()
    };

    let vars = as_refs(&env(&fresh));
    let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let exit = chatops_with(&["replay"], &pairs).await;
    assert_eq!(exit.code, Some(0), "{exit:?}");
    assert!(
        exit.stdout.contains("applied") && exit.stdout.contains("total                1002"),
        "{}",
        exit.stdout
    );
    assert!(
        exit.stdout.contains("scale app-typo to 2 in default")
            && exit.stdout.contains(
                "not replayed: rejected when issued: deployment app-typo not found in namespace default"
            )
            && exit.stdout.contains(
                "not replayed: failed when issued: the bot may not get deployments in namespace default"
            )
            && exit.stdout.contains("\nnot replayed         2\n"),
        "{}",
        exit.stdout
    );
    for (name, what) in [
        ("app-typo", "a rejected command"),
        ("app-forbidden", "a refused command"),
    ] {
        let d = fresh
            .object("apps/v1", "Deployment", "default", name)
            .expect("deployment");
        assert_eq!(d["spec"]["replicas"], 1, "{what} is not replayed");
    }
    assert_eq!(
        state(&fresh),
        expected,
        "the replay reproduces the original's final state"
    );

    let vars = as_refs(&env(&original));
    let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let writes_before = original
        .requests()
        .iter()
        .filter(|r| r.is_write() && !r.query.contains("dryRun"))
        .count();
    let exit = chatops_with(&["replay", "--dry-run"], &pairs).await;
    assert_eq!(exit.code, Some(0), "{exit:?}");
    let summary: Vec<&str> = exit
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("OUTCOME"))
        .skip(1)
        .collect();
    let counted: usize = summary
        .iter()
        .filter(|l| l.starts_with("already applied") || l.starts_with("superseded"))
        .filter_map(|l| l.split_whitespace().last()?.parse::<usize>().ok())
        .sum();
    assert_eq!(
        counted, 1000,
        "every command is already applied or superseded:\n{}",
        exit.stdout
    );
    assert!(
        exit.stdout.contains("\nnot replayed         2\n"),
        "and the typo and the refused one not replayed:\n{}",
        exit.stdout
    );
    let writes_after = original
        .requests()
        .iter()
        .filter(|r| r.is_write() && !r.query.contains("dryRun"))
        .count();
    assert_eq!(writes_before, writes_after, "a dry run changes nothing");

    let exit = chatops_with(
        &["history", "--deployment", "app-3", "--limit", "5"],
        &pairs[..1],
    )
    .await;
    assert_eq!(exit.code, Some(0), "{exit:?}");
    let lines: Vec<&str> = exit.stdout.lines().collect();
    assert!(
        lines[0].starts_with("SEQ") && lines[0].contains("WHO") && lines[0].contains("OUTCOME"),
        "{}",
        exit.stdout
    );
    assert_eq!(lines.len(), 6, "header and five commands:\n{}", exit.stdout);
    for line in &lines[1..] {
        assert!(
            line.contains("@example.com") && line.contains("app-3 ") || line.contains("to app-3"),
            "{line}"
        );
        assert!(
            line.contains("applied") || line.contains("superseded"),
            "{line}"
        );
        assert!(line.ends_with("room-ops"), "{line}");
    }
}

/// `history` reads the end of the streams, looking further back until it
/// has as many commands as asked: a deployment's one command 3,000 others
/// ago is found, and a busy one's last three are its newest.
#[tokio::test]
async fn history_finds_a_quiet_deployments_commands_behind_a_busy_ones() {
    let (nats, js) = nats_with_streams().await;
    let scale = |n: i128| CommandKind::Scale {
        replicas: Replicas::new(n, 100).expect("valid"),
    };
    publish(&js, scale(7), "quiet", "carol@example.com").await;
    // A command and an address longer than their columns' headers and
    // than most: the columns after them stay in line.
    let long = CommandKind::SetImage {
        container: None,
        image: ImageRef::parse("registry.example.com/platform/quiet-service:2026.12.01-rc1")
            .expect("valid"),
    };
    publish(&js, long, "quiet", "someone.with.a.long.name@example.com").await;
    for i in 0..3000 {
        publish(&js, scale(i % 50), "busy", "alice@example.com").await;
    }
    let nats_url = nats.url();
    let exit = chatops_with(
        &["history", "--deployment", "quiet"],
        &[("NATS_URL", nats_url.as_str())],
    )
    .await;
    assert_eq!(exit.code, Some(0), "{exit:?}");
    let lines: Vec<&str> = exit.stdout.lines().collect();
    assert_eq!(
        lines.len(),
        3,
        "header and the two commands:\n{}",
        exit.stdout
    );
    for column in ["OUTCOME", "ROOM"] {
        let at = lines[0].find(column).expect("a header");
        let starts: Vec<bool> = lines[1..]
            .iter()
            .map(|l| {
                let (before, after) = l.split_at(at);
                before.ends_with(' ') && !after.starts_with(' ')
            })
            .collect();
        assert_eq!(starts, [true, true], "{column} in line:\n{}", exit.stdout);
    }
    assert!(
        lines[1].starts_with("1 ") && lines[1].contains("carol@example.com"),
        "{}",
        exit.stdout
    );
    assert!(
        lines[1].contains("scale quiet to 7") && lines[1].contains("pending"),
        "{}",
        exit.stdout
    );

    let exit = chatops_with(
        &["history", "--deployment", "busy", "--limit", "3"],
        &[("NATS_URL", nats_url.as_str())],
    )
    .await;
    assert_eq!(exit.code, Some(0), "{exit:?}");
    let seqs: Vec<&str> = exit
        .stdout
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(seqs, ["3000", "3001", "3002"], "{}", exit.stdout);
}

#[tokio::test]
async fn webhook_register_creates_a_webhook_that_delivers_signed_events_to_the_gateway() {
    let wx = WebexSandbox::builder()
        .bot("kube", "bot-token")
        .user("alice@example.com", "alice-token")
        .start()
        .await
        .expect("sandbox");
    // A listener standing in for the gateway: it records what it receives.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let target = format!(
        "http://{}/webhooks/webex",
        listener.local_addr().expect("addr")
    );
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(String, Vec<u8>)>::new()));
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/webhooks/webex",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let sink = sink.clone();
                async move {
                    let sig = headers
                        .get("x-spark-signature")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    sink.lock().expect("lock").push((sig, body.to_vec()));
                    "ok"
                }
            },
        ),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });

    let api = wx.url();
    let env = [
        ("WEBEX_BOT_TOKEN", "bot-token"),
        ("WEBEX_WEBHOOK_SECRET", "the-secret"),
        ("WEBEX_API_URL", api.as_str()),
    ];
    // The gateway's address alone: Webex would post where it answers 404.
    let bare = target.trim_end_matches("/webhooks/webex");
    let exit = chatops_with(&["webhook", "register", "--url", bare], &env).await;
    assert_eq!(exit.code, Some(1), "{exit:?}");
    assert!(exit.stderr.contains("did you mean"), "{exit:?}");
    assert!(
        wx.webhooks().is_empty(),
        "nothing registered without a path"
    );
    let exit = chatops_with(&["webhook", "register", "--url", &target], &env).await;
    assert_eq!(exit.code, Some(0), "{exit:?}");
    assert!(
        exit.stdout.starts_with("registered: ")
            && exit.stdout.contains("messages/created  mentionedPeople=me")
            && exit.stdout.contains("messages/created  roomType=direct"),
        "one for group spaces, one for 1:1 spaces:\n{}",
        exit.stdout
    );
    let again = chatops_with(&["webhook", "register", "--url", &target], &env).await;
    assert_eq!(again.code, Some(0), "{again:?}");
    assert_eq!(
        wx.webhooks().len(),
        2,
        "registering twice updates, not duplicates"
    );

    wx.post_as(
        "alice@example.com",
        wx.default_room_id(),
        &format!("{} status web", wx.bot().mention()),
    )
    .expect("post");
    let (signature, body) = eventually("a delivery at the target", LIMIT, || async {
        received.lock().expect("lock").first().cloned()
    })
    .await;
    assert_eq!(
        signature,
        chatops_gateway::intake::sign(b"the-secret", &body),
        "signed with the configured secret"
    );
    // A 1:1 message, which mentions nobody, comes too.
    let direct = wx
        .send_as(
            "alice@example.com",
            chatops_sandbox::webex::MessageDraft::direct(wx.bot().email(), "status web"),
        )
        .expect("a 1:1 message");
    eventually("the 1:1 message at the target", LIMIT, || async {
        received
            .lock()
            .expect("lock")
            .iter()
            .any(|(_, body)| String::from_utf8_lossy(body).contains(&direct.id))
            .then_some(())
    })
    .await;

    // Listing (and deleting, and activating) needs no webhook secret.
    let without_secret = [env[0], env[2]];
    let list = chatops_with(&["webhook", "list"], &without_secret).await;
    assert_eq!(list.code, Some(0), "{list:?}");
    assert!(
        list.stdout.contains(&target) && list.stdout.contains("active"),
        "{}",
        list.stdout
    );
    let ids: Vec<String> = list
        .stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect();
    assert_eq!(ids.len(), 2, "{}", list.stdout);
    assert!(
        list.stdout.contains(" chatops ") && list.stdout.contains(" chatops-direct "),
        "named: {}",
        list.stdout
    );
    let unknown = chatops_with(&["webhook", "delete", "no-such-id"], &without_secret).await;
    assert_eq!(unknown.code, Some(1), "{unknown:?}");
    assert!(unknown.stderr.contains("no such webhook"), "{unknown:?}");
    let activate = chatops_with(&["webhook", "activate"], &env).await;
    assert_eq!(activate.code, Some(0), "{activate:?}");
    assert_eq!(
        activate.stdout.matches("active: ").count(),
        2,
        "{activate:?}"
    );
    for id in &ids {
        let delete = chatops_with(&["webhook", "delete", id], &env).await;
        assert_eq!(delete.code, Some(0), "{delete:?}");
    }
    assert!(wx.webhooks().is_empty());
    let missing = chatops_with(&["webhook", "register", "--url", &target], &without_secret).await;
    assert_eq!(missing.code, Some(64), "no secret configured: {missing:?}");
    assert!(
        missing.stderr.contains("WEBEX_WEBHOOK_SECRET"),
        "{missing:?}"
    );
    assert!(
        wx.webhooks().is_empty(),
        "nothing registered without the secret"
    );
}

/// What each line of a replay says of its command: `#SEQ` and the rest,
/// with a dry run's "would apply" read as "applied".
fn verdicts(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| l.replacen("would apply", "applied", 1))
        .collect()
}

/// A dry run onto a fresh cluster tells what the replay onto another one
/// then does, line for line: each command is judged on the deployment as
/// the dry runs before it leave it, replicas across changes of the pod
/// template, and rollbacks among the revisions those changes would make
/// (an outside check: a scale after a deploy counted from the cluster's
/// replicas, and a rollback chose from the cluster's revisions).
#[tokio::test]
async fn a_dry_run_onto_a_fresh_cluster_foretells_the_replay_line_for_line() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (nats, js) = nats_with_streams().await;
    let scale = |n| CommandKind::Scale {
        replicas: Replicas::new(n, 100).expect("valid"),
    };
    let image = |tag: &str| CommandKind::SetImage {
        container: None,
        image: ImageRef::parse(&format!("app:{tag}")).expect("valid"),
    };
    let rollback = |revision| CommandKind::Rollback { revision };
    for kind in [
        scale(3),
        scale(3),
        image("1"),
        image("2"),
        CommandKind::Restart,
        rollback(None),
        rollback(Some(1)),
        scale(4),
        rollback(Some(2)),
        image("1"),
        rollback(Some(99)),
        scale(5),
        rollback(None),
    ] {
        publish(&js, kind, "app-0", "alice@example.com").await;
    }
    let (foretold, replayed) = (cluster().await, cluster().await);
    let replay = |cluster: &KubeSandbox, args: &'static [&'static str]| {
        let env = [
            ("NATS_URL".to_owned(), nats.url()),
            ("CLUSTER_URL".to_owned(), cluster.url()),
        ];
        async move {
            let pairs: Vec<(&str, &str)> =
                env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            chatops_with(args, &pairs).await
        }
    };
    let dry = replay(&foretold, &["replay", "--dry-run"]).await;
    assert_eq!(dry.code, Some(0), "{dry:?}");
    let real = replay(&replayed, &["replay", "--verbose"]).await;
    assert_eq!(real.code, Some(0), "{real:?}");
    let (dry_lines, real_lines) = (verdicts(&dry.stdout), verdicts(&real.stdout));
    assert_eq!(dry_lines.len(), 13, "{}", dry.stdout);
    assert_eq!(
        dry_lines, real_lines,
        "dry run:\n{}\nreplay:\n{}",
        dry.stdout, real.stdout
    );
    for expected in [
        "from 3 to 4",
        "from 4 to 5",
        "rolled app-0 back to revision 1 (main=app:0)",
        "app-0 has no revision 99",
    ] {
        assert!(
            dry_lines.iter().any(|l| l.contains(expected)),
            "{expected:?} in:\n{}",
            dry.stdout
        );
    }
    assert_eq!(
        state(&foretold),
        state(&cluster().await),
        "the dry run stored nothing"
    );
}

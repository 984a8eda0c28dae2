//! Worker processes consuming the command stream: results, scaling out,
//! crashes, fault storms, and giving up.

use std::path::Path;
use std::time::Duration;

use chatops_sandbox::kube::{Fault, KubeSandbox};
use chatops_shared::streams::{self, StreamSettings};
use chatops_shared::{CommandKind, ImageRef, Outcome, Replicas};
use chatops_testkit::{NatsServer, Process};

use crate::helpers::{
    LIMIT, TOKEN, command, deployment_yaml, finals, image, in_flight, jetstream, publish, reads,
    replicas, sandbox, settled, with_progress_deadline,
};

/// Starts a worker process; returns once it consumes.
async fn worker(nats: &NatsServer, kube: &KubeSandbox, concurrency: &str) -> Process {
    let (url, api) = (nats.url(), kube.url());
    let mut p = Process::spawn(
        Path::new(env!("CARGO_BIN_EXE_worker")),
        &[],
        &[
            ("NATS_URL", url.as_str()),
            ("CLUSTER_URL", api.as_str()),
            ("KUBERNETES_TOKEN", TOKEN),
            ("WORKER_ADDR", "127.0.0.1:0"),
            ("WORKER_CONCURRENCY", concurrency),
            ("CHATOPS_ACK_WAIT", "2s"),
            ("CHATOPS_MAX_DELIVER", "3"),
            ("CLUSTER_NAME", "staging-eu"),
        ],
    );
    let started = p.wait_for_line("worker started", LIMIT).await;
    assert!(
        started.contains("cluster=staging-eu"),
        "the cluster is named in the worker's lines: {started}"
    );
    p
}

/// NATS with the streams, a sandbox with `web` (1 replica of nginx:1.20)
/// and a worker with `concurrency` slots consuming.
async fn web_with_a_worker(
    concurrency: &str,
) -> (
    NatsServer,
    KubeSandbox,
    async_nats::jetstream::Context,
    Process,
) {
    let nats = NatsServer::start().await;
    let kube = sandbox(&[deployment_yaml("web", 1, &[("nginx", "nginx:1.20")])]).await;
    let js = jetstream(&nats).await;
    let w = worker(&nats, &kube, concurrency).await;
    (nats, kube, js, w)
}

/// `web` (3 replicas of nginx:1.20, a 2 s progress deadline), whose
/// rollouts take 1.5 s; `nginx:broken` cannot be pulled.
async fn rollout_cluster() -> KubeSandbox {
    let yaml = with_progress_deadline(&deployment_yaml("web", 3, &[("nginx", "nginx:1.20")]), 2);
    KubeSandbox::builder()
        .rollout(Duration::from_millis(1500))
        .seed_yaml(&yaml)
        .unpullable_image("nginx:broken")
        .token(TOKEN, "system:serviceaccount:default:chatops-bot")
        .anonymous_admin()
        .start()
        .await
        .expect("sandbox")
}

/// A worker process that follows rollouts for up to 20 s and, stopped,
/// hands back what it holds after 1 s; returns once it consumes.
async fn following_worker(nats: &NatsServer, kube: &KubeSandbox) -> Process {
    let (url, api) = (nats.url(), kube.url());
    let mut w = Process::spawn(
        Path::new(env!("CARGO_BIN_EXE_worker")),
        &[],
        &[
            ("NATS_URL", url.as_str()),
            ("CLUSTER_URL", api.as_str()),
            ("WORKER_ADDR", "127.0.0.1:0"),
            ("CHATOPS_ACK_WAIT", "2s"),
            ("CHATOPS_MAX_DELIVER", "3"),
            ("CHATOPS_FOLLOW_ROLLOUT", "20s"),
            ("CHATOPS_SHUTDOWN_GRACE", "1s"),
        ],
    );
    w.wait_for_line("worker started", LIMIT).await;
    w
}

/// Waits until a worker reports `command`'s rollout in progress.
async fn being_followed(js: &async_nats::jetstream::Context, command: &chatops_shared::Command) {
    chatops_testkit::eventually("the rollout to be followed", LIMIT, || async {
        crate::helpers::results(js)
            .await
            .get(&command.id)
            .is_some_and(|rs| rs.iter().any(|r| r.outcome == Outcome::InProgress))
            .then_some(())
    })
    .await;
}

fn scale(n: u32) -> CommandKind {
    CommandKind::Scale {
        replicas: Replicas::new(n.into(), 1000).expect("valid"),
    }
}

fn deploy(image: &str) -> CommandKind {
    CommandKind::SetImage {
        container: None,
        image: ImageRef::parse(image).expect("valid"),
    }
}

#[tokio::test]
async fn commands_on_the_stream_become_changes_and_results() {
    let nats = NatsServer::start().await;
    let kube = sandbox(&[deployment_yaml("web", 2, &[("nginx", "nginx:1.20")])]).await;
    let js = jetstream(&nats).await;
    let w = worker(&nats, &kube, "4").await;
    let a = command(scale(6), "web");
    let b = command(deploy("nginx:1.21"), "web");
    let missing = command(scale(1), "nope");
    for cmd in [&a, &b, &missing] {
        publish(&js, cmd).await;
    }
    finals(&js, &[a.id, b.id, missing.id]).await;
    // Commands run concurrently; a status asked after the changes sees them.
    let c = command(CommandKind::Status, "web");
    publish(&js, &c).await;
    let results = finals(&js, &[a.id, b.id, c.id, missing.id]).await;
    assert_eq!(results[&a.id].outcome, Outcome::Applied);
    assert_eq!(
        (
            results[&a.id].before.as_deref(),
            results[&a.id].after.as_deref()
        ),
        (Some("2"), Some("6"))
    );
    assert_eq!(results[&b.id].after.as_deref(), Some("nginx:1.21"));
    assert!(
        results[&c.id].message.contains("6 desired"),
        "{}",
        results[&c.id].message
    );
    assert_eq!(
        results[&missing.id].outcome,
        Outcome::Rejected,
        "a deployment that is not there is the person's to correct, not a fault"
    );
    assert_eq!(
        (results[&a.id].verb, results[&c.id].verb),
        (
            Some(chatops_shared::Verb::Scale),
            Some(chatops_shared::Verb::Status)
        ),
        "results carry their command's verb"
    );
    assert_eq!(
        results[&missing.id].message,
        "deployment nope not found in namespace default"
    );
    assert_eq!(
        results[&missing.id].origin, missing.origin,
        "results carry the thread to answer in"
    );
    assert_eq!(replicas(&kube, "web"), 6);
    drop(w);
}

#[tokio::test]
async fn four_workers_leave_each_deployment_at_its_last_command() {
    let nats = NatsServer::start().await;
    let names: Vec<String> = (0..10).map(|i| format!("app-{i}")).collect();
    let seed: Vec<String> = names
        .iter()
        .map(|n| deployment_yaml(n, 1, &[("main", "app:0")]))
        .collect();
    let kube = sandbox(&seed).await;
    let js = jetstream(&nats).await;
    let mut workers = Vec::new();
    for _ in 0..4 {
        workers.push(worker(&nats, &kube, "8").await);
    }
    let mut ids = Vec::new();
    let mut last_scale = std::collections::BTreeMap::new();
    let mut last_image = std::collections::BTreeMap::new();
    let mut rng = fastrand::Rng::with_seed(7);
    for i in 0..200u32 {
        let name = &names[rng.usize(..names.len())];
        let cmd = if rng.bool() {
            let n = rng.u32(0..50);
            last_scale.insert(name.clone(), i64::from(n));
            command(scale(n), name)
        } else {
            let tag = format!("app:{i}");
            last_image.insert(name.clone(), tag.clone());
            command(deploy(&tag), name)
        };
        ids.push(cmd.id);
        publish(&js, &cmd).await;
    }
    let results = finals(&js, &ids).await;
    assert!(
        results
            .values()
            .all(|r| matches!(r.outcome, Outcome::Applied | Outcome::Superseded)),
        "{results:?}"
    );
    for name in &names {
        if let Some(n) = last_scale.get(name) {
            assert_eq!(replicas(&kube, name), *n, "{name} replicas");
        }
        if let Some(tag) = last_image.get(name) {
            assert_eq!(&image(&kube, name, 0), tag, "{name} image");
        }
    }
    drop(workers);
}

#[tokio::test]
async fn a_worker_killed_while_applying_a_restart_leaves_exactly_one_new_revision() {
    let nats = NatsServer::start().await;
    let kube = sandbox(&[deployment_yaml("web", 1, &[("nginx", "nginx:1.20")])]).await;
    let js = jetstream(&nats).await;
    let revisions = || kube.objects("apps/v1", "ReplicaSet", "default").len();
    let first = worker(&nats, &kube, "1").await;
    // The first PATCH hangs long enough to kill its worker in the middle.
    kube.inject(
        Fault::latency(Duration::from_secs(3))
            .method("PATCH")
            .times(1),
    );
    let restart = command(CommandKind::Restart, "web");
    let before = revisions();
    publish(&js, &restart).await;
    // Delivered and not acknowledged: the worker is inside the slow PATCH.
    chatops_testkit::eventually("the first worker to be applying", LIMIT, || async {
        (crate::helpers::in_flight(&js).await == 1).then_some(())
    })
    .await;
    first.signal("KILL");
    let _ = first.wait(LIMIT).await;

    let second = worker(&nats, &kube, "1").await;
    let results = finals(&js, &[restart.id]).await;
    assert!(
        matches!(
            results[&restart.id].outcome,
            Outcome::Applied | Outcome::AlreadyApplied
        ),
        "{:?}",
        results[&restart.id]
    );
    chatops_testkit::eventually("the rollout's ReplicaSet", LIMIT, || async {
        (revisions() > before).then_some(())
    })
    .await;
    assert_eq!(revisions(), before + 1, "exactly one new revision");
    drop(second);
}

#[tokio::test]
async fn storms_are_retried_to_success_and_endless_failures_give_up() {
    let nats = NatsServer::start().await;
    let kube = sandbox(&[
        deployment_yaml("web", 1, &[("nginx", "nginx:1.20")]),
        deployment_yaml("api", 1, &[("api", "api:1")]),
    ])
    .await;
    let js = jetstream(&nats).await;
    let _w = worker(&nats, &kube, "4").await;

    kube.inject(
        Fault::status(503)
            .path("/apis/apps/v1/namespaces/default/deployments/web")
            .times(4),
    );
    kube.inject(
        Fault::too_many_requests(1)
            .path("/apis/apps/v1/namespaces/default/deployments/web")
            .times(2),
    );
    let stormy = command(scale(3), "web");
    publish(&js, &stormy).await;
    let r = finals(&js, &[stormy.id]).await;
    assert_eq!(
        r[&stormy.id].outcome,
        Outcome::Applied,
        "{:?}",
        r[&stormy.id]
    );
    assert_eq!(replicas(&kube, "web"), 3);

    kube.inject(
        Fault::status(500)
            .path("/apis/apps/v1/namespaces/default/deployments/api")
            .always(),
    );
    let doomed = command(scale(2), "api");
    publish(&js, &doomed).await;
    let r = finals(&js, &[doomed.id]).await;
    let result = &r[&doomed.id];
    assert_eq!(result.outcome, Outcome::Failed);
    assert!(
        result.message.starts_with("gave up after 3 attempts"),
        "{}",
        result.message
    );
    assert_eq!(result.attempts, 3);
    let all = crate::helpers::results(&js).await;
    let finals = |id| all[id].iter().filter(|r| r.outcome.is_final()).count();
    assert_eq!(finals(&doomed.id), 1, "exactly one final result");
    assert_eq!(finals(&stormy.id), 1, "exactly one final result");
    // Each try that goes back to the queue says so in the thread first.
    let said: Vec<&str> = all[&doomed.id].iter().map(|r| r.message.as_str()).collect();
    assert_eq!(said.len(), 3, "{said:?}");
    for (i, progress) in all[&doomed.id][..2].iter().enumerate() {
        assert_eq!(progress.outcome, Outcome::InProgress, "{said:?}");
        assert!(
            progress.message.starts_with(&format!(
                "try {} of 3 failed: the Kubernetes API answered 500",
                i + 1
            )) && progress.message.ends_with("; trying again"),
            "{said:?}"
        );
    }
}

#[tokio::test]
async fn followed_rollouts_report_progress_then_completion_or_the_deadline() {
    let nats = NatsServer::start().await;
    let kube = rollout_cluster().await;
    let js = jetstream(&nats).await;
    let _w = following_worker(&nats, &kube).await;

    let good = command(deploy("nginx:1.21"), "web");
    publish(&js, &good).await;
    let done = finals(&js, &[good.id]).await;
    let all = crate::helpers::results(&js).await;
    let progress: Vec<_> = all[&good.id]
        .iter()
        .filter(|r| r.outcome == Outcome::InProgress)
        .collect();
    assert!(
        !progress.is_empty(),
        "in-progress results came first: {:?}",
        all[&good.id]
    );
    assert!(
        progress
            .iter()
            .all(|r| r.message.starts_with("deployed nginx:1.21 to web")),
        "{progress:?}"
    );
    let last = &done[&good.id];
    assert_eq!(last.outcome, Outcome::Applied, "{last:?}");
    assert!(
        last.message
            .ends_with("web rolled out: 3 of 3 replicas available"),
        "{}",
        last.message
    );

    let broken = command(deploy("nginx:broken"), "web");
    publish(&js, &broken).await;
    let done = finals(&js, &[broken.id]).await;
    assert_eq!(
        done[&broken.id].outcome,
        Outcome::Failed,
        "{:?}",
        done[&broken.id]
    );
    assert!(
        done[&broken.id].message.contains(
            "exceeded its progress deadline; 'rollback web in default' goes back to the revision before"
        ),
        "{}",
        done[&broken.id].message
    );
}

/// The streams with a five-minute ack wait, longer than `finals` waits: a
/// command a stopping worker does not hand back at once is not seen again
/// in time.
async fn long_ack_wait(nats: &NatsServer) -> async_nats::jetstream::Context {
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.expect("connect"));
    let settings = StreamSettings {
        ack_wait: Duration::from_secs(300),
        ..crate::helpers::settings()
    };
    streams::ensure(&js, &settings).await.expect("streams");
    js
}

/// A worker process for [`long_ack_wait`]'s streams, with `extra`
/// variables (its shutdown grace, its concurrency).
fn stoppable_worker(nats: &NatsServer, kube: &KubeSandbox, extra: &[(&str, &str)]) -> Process {
    let (url, api) = (nats.url(), kube.url());
    let mut vars = vec![
        ("NATS_URL", url.as_str()),
        ("CLUSTER_URL", api.as_str()),
        ("KUBERNETES_TOKEN", TOKEN),
        ("WORKER_ADDR", "127.0.0.1:0"),
        ("CHATOPS_ACK_WAIT", "5m"),
        ("CHATOPS_MAX_DELIVER", "3"),
    ];
    vars.extend_from_slice(extra);
    Process::spawn(Path::new(env!("CARGO_BIN_EXE_worker")), &[], &vars)
}

#[tokio::test]
async fn sigterm_hands_back_what_cannot_finish_within_the_grace_period() {
    let nats = NatsServer::start().await;
    let kube = sandbox(&[deployment_yaml("web", 1, &[("nginx", "nginx:1.20")])]).await;
    let js = long_ack_wait(&nats).await;
    let mut first = stoppable_worker(&nats, &kube, &[("CHATOPS_SHUTDOWN_GRACE", "1s")]);
    first.wait_for_line("worker started", LIMIT).await;
    kube.inject(
        Fault::latency(Duration::from_secs(120))
            .method("PATCH")
            .times(1),
    );
    let cmd = command(scale(4), "web");
    publish(&js, &cmd).await;
    chatops_testkit::eventually("the first worker to be applying", LIMIT, || async {
        (crate::helpers::in_flight(&js).await == 1).then_some(())
    })
    .await;
    let stopping = std::time::Instant::now();
    first.signal("TERM");
    let (code, output) = first.wait(LIMIT).await;
    assert_eq!(code, Some(0), "{output}");
    assert!(
        stopping.elapsed() < Duration::from_secs(10),
        "stopped after the grace period, not the PATCH"
    );
    assert!(output.contains("handing them back"), "{output}");

    let mut second = stoppable_worker(&nats, &kube, &[("CHATOPS_SHUTDOWN_GRACE", "25s")]);
    second.wait_for_line("worker started", LIMIT).await;
    let results = finals(&js, &[cmd.id]).await;
    assert!(
        matches!(
            results[&cmd.id].outcome,
            Outcome::Applied | Outcome::AlreadyApplied
        ),
        "{:?}",
        results[&cmd.id]
    );
    assert_eq!(replicas(&kube, "web"), 4);
}

/// A commands stream made again while a worker runs (its server lost its
/// store) is another stream: the worker does not judge its commands by the
/// old stream's fences, which would skip them unapplied, but stops (exit
/// 1); started again, a worker applies them.
#[tokio::test]
async fn a_commands_stream_made_again_stops_the_worker_rather_than_skipping_its_commands() {
    let nats = NatsServer::start().await;
    let kube = sandbox(&[deployment_yaml("web", 1, &[("nginx", "nginx:1.20")])]).await;
    let js = long_ack_wait(&nats).await;
    let mut first = stoppable_worker(&nats, &kube, &[]);
    first.wait_for_line("worker started", LIMIT).await;
    // web's fence goes past where a new stream's sequences start.
    let mut ids = Vec::new();
    for n in 2..=4 {
        let cmd = command(scale(n), "web");
        publish(&js, &cmd).await;
        ids.push(cmd.id);
    }
    finals(&js, &ids).await;
    assert_eq!(replicas(&kube, "web"), 4);

    js.delete_stream(streams::COMMANDS_STREAM)
        .await
        .expect("the stream lost");
    let settings = StreamSettings {
        ack_wait: Duration::from_secs(300),
        ..crate::helpers::settings()
    };
    streams::ensure(&js, &settings).await.expect("made again");
    let cmd = command(scale(2), "web");
    assert_eq!(publish(&js, &cmd).await, 1, "the new stream's first");
    let (code, output) = first.wait(LIMIT).await;
    assert_eq!(code, Some(1), "{output}");
    assert!(
        output.contains("the commands stream was made again"),
        "{output}"
    );
    assert_eq!(
        replicas(&kube, "web"),
        4,
        "nothing skipped or applied by it"
    );

    let mut second = stoppable_worker(&nats, &kube, &[]);
    second.wait_for_line("worker started", LIMIT).await;
    let results = finals(&js, &[cmd.id]).await;
    assert_eq!(
        results[&cmd.id].outcome,
        Outcome::Applied,
        "{:?}",
        results[&cmd.id]
    );
    assert_eq!(replicas(&kube, "web"), 2);
}

/// A stopped worker leaves no command behind it: what it had started is
/// handed back after the grace period, and what it had fetched and not
/// started is handed back at once (async-nats' prefetching stream left
/// such commands to their ack wait, five minutes here, before another
/// worker got them).
#[tokio::test]
async fn sigterm_leaves_no_command_waiting_for_its_ack_wait() {
    let nats = NatsServer::start().await;
    let names = ["web", "api", "db", "cache"];
    let kube = sandbox(&names.map(|n| deployment_yaml(n, 1, &[("app", "app:1")]))).await;
    let js = long_ack_wait(&nats).await;
    let spawn = || {
        stoppable_worker(
            &nats,
            &kube,
            &[
                ("WORKER_CONCURRENCY", "2"),
                ("CHATOPS_SHUTDOWN_GRACE", "1s"),
            ],
        )
    };
    // Two applying for two minutes, two waiting behind them.
    kube.inject(
        Fault::latency(Duration::from_secs(120))
            .method("PATCH")
            .times(2),
    );
    let commands = names.map(|n| command(scale(3), n));
    for cmd in &commands {
        publish(&js, cmd).await;
    }
    let mut first = spawn();
    first.wait_for_line("worker started", LIMIT).await;
    chatops_testkit::eventually("two applying", LIMIT, || async {
        (crate::helpers::in_flight(&js).await >= 2).then_some(())
    })
    .await;
    first.signal("TERM");
    let (code, output) = first.wait(LIMIT).await;
    assert_eq!(code, Some(0), "{output}");
    // "Two applying" counts commands fetched, which may not all have sent
    // their PATCH yet: a slow PATCH left unclaimed is not the next
    // worker's to wait out (under load this test once waited 120 s).
    kube.clear_faults();

    let mut second = spawn();
    second.wait_for_line("worker started", LIMIT).await;
    finals(&js, &commands.each_ref().map(|c| c.id)).await;
    for name in names {
        assert_eq!(replicas(&kube, name), 3, "{name}");
    }
}

/// A worker stopped while following a rollout hands the command back; the
/// worker that takes it finds the change made, and follows the rollout to
/// its end, which is what the person hears (not "applied before").
#[tokio::test]
async fn a_rollout_followed_by_a_stopped_worker_is_followed_to_its_end_by_the_next() {
    let nats = NatsServer::start().await;
    let kube = rollout_cluster().await;
    let js = jetstream(&nats).await;
    let first = following_worker(&nats, &kube).await;
    let broken = command(deploy("nginx:broken"), "web");
    publish(&js, &broken).await;
    being_followed(&js, &broken).await;
    first.signal("TERM");
    let (code, output) = first.wait(LIMIT).await;
    assert_eq!(code, Some(0), "{output}");

    let _second = following_worker(&nats, &kube).await;
    let done = finals(&js, &[broken.id]).await;
    let last = &done[&broken.id];
    assert_eq!(last.outcome, Outcome::Failed, "{last:?}");
    assert!(
        last.message.contains("exceeded its progress deadline"),
        "{}",
        last.message
    );
}

/// A change whose rollout a later change overtakes does not claim the
/// later one's rollout as its own.
#[tokio::test]
async fn a_rollout_overtaken_by_a_later_change_says_so() {
    let nats = NatsServer::start().await;
    let kube = rollout_cluster().await;
    let js = jetstream(&nats).await;
    let _w = following_worker(&nats, &kube).await;
    let first = command(deploy("nginx:1.21"), "web");
    publish(&js, &first).await;
    being_followed(&js, &first).await;
    let second = command(deploy("nginx:1.22"), "web");
    publish(&js, &second).await;
    let done = finals(&js, &[first.id, second.id]).await;
    assert!(
        done[&first.id]
            .message
            .contains("then a later command (#2, alice@example.com's 'deploy nginx:1.22 to web in default') changed web again, before this rollout finished"),
        "{}",
        done[&first.id].message
    );
    assert!(done[&first.id].overtaken && !done[&second.id].overtaken);
    assert!(
        done[&second.id]
            .message
            .ends_with("web rolled out: 3 of 3 replicas available"),
        "{}",
        done[&second.id].message
    );
}

/// `deploy nginx:1.22` then `rollback web`, sent back to back: the
/// rollback means "undo that deploy", whichever worker slot gets which. The
/// deploy's read of the deployment is held 1.5 s, so without the wait the
/// rollback ran first (to nginx:1.20) and the deploy was superseded; the
/// rollback's own first read fails (503), which must not end its wait.
#[tokio::test]
async fn a_rollback_sent_after_a_deploy_waits_for_it_and_undoes_it() {
    let (_nats, kube, js, _w) = web_with_a_worker("4").await;
    let first = command(deploy("nginx:1.21"), "web");
    publish(&js, &first).await;
    finals(&js, &[first.id]).await;

    let change = command(deploy("nginx:1.22"), "web");
    let rollback = command(CommandKind::Rollback { revision: None }, "web");
    let refused = Fault::status(503).method("GET").path(WEB).times(1);
    let (done, _) = overlapping(&js, &kube, &change, &rollback, Some(refused)).await;
    assert_eq!(
        done[&change.id].outcome,
        Outcome::Applied,
        "{:?}",
        done[&change.id]
    );
    assert_eq!(
        done[&rollback.id].outcome,
        Outcome::Applied,
        "{:?}",
        done[&rollback.id]
    );
    assert_eq!(image(&kube, "web", 0), "nginx:1.21", "the deploy undone");
}

/// A rollback waits only for what may still change its deployment: a
/// command refused before it is marked decided, so the rollback does not
/// wait for an older command on another deployment (a rollout followed
/// for 10 s, which holds the consumer's ack floor below both).
#[tokio::test]
async fn a_rollback_does_not_wait_for_a_refused_command_before_it() {
    let nats = NatsServer::start().await;
    let api = with_progress_deadline(&deployment_yaml("api", 1, &[("api", "api:1")]), 10);
    let kube = KubeSandbox::builder()
        .rollout(Duration::from_millis(300))
        .seed_yaml(&deployment_yaml("web", 1, &[("nginx", "nginx:1.20")]))
        .seed_yaml(&api)
        .unpullable_image("api:broken")
        .anonymous_admin()
        .start()
        .await
        .expect("sandbox");
    let js = jetstream(&nats).await;
    let _w = following_worker(&nats, &kube).await;
    let first = command(deploy("nginx:1.21"), "web");
    publish(&js, &first).await;
    finals(&js, &[first.id]).await;
    let stuck = command(deploy("api:broken"), "api");
    publish(&js, &stuck).await;
    being_followed(&js, &stuck).await;

    let refused = command(
        CommandKind::SetImage {
            container: Some(chatops_shared::ContainerName::parse("nosuch").expect("valid")),
            image: chatops_shared::ImageRef::parse("nginx:9").expect("valid"),
        },
        "web",
    );
    publish(&js, &refused).await;
    let rollback = command(CommandKind::Rollback { revision: None }, "web");
    publish(&js, &rollback).await;
    let done = finals(&js, &[refused.id, rollback.id]).await;
    assert_eq!(done[&refused.id].outcome, Outcome::Rejected);
    assert_eq!(
        done[&rollback.id].outcome,
        Outcome::Applied,
        "{:?}",
        done[&rollback.id]
    );
    let all = crate::helpers::results(&js).await;
    assert!(
        all[&stuck.id].iter().all(|r| !r.outcome.is_final()),
        "the rollback went on while api's rollout was still followed: {:?}",
        all[&stuck.id]
    );
    assert_eq!(image(&kube, "web", 0), "nginx:1.20");
}

/// A worker with one slot: the deploy fails for a while and is handed
/// back, and the rollback after it takes the slot and waits. The deploy,
/// fetched again by the same worker, gets the slot the rollback lends:
/// the rollback undoes it on its first delivery, instead of waiting out
/// its budget and being handed back.
#[tokio::test]
async fn a_waiting_rollback_lends_its_slot_to_the_command_it_waits_for() {
    let (_nats, kube, js, _w) = web_with_a_worker("1").await;
    let first = command(deploy("nginx:1.21"), "web");
    publish(&js, &first).await;
    finals(&js, &[first.id]).await;

    // More failures than one delivery's 2 s of retries.
    kube.inject(Fault::status(503).method("PATCH").path(WEB).times(6));
    let change = command(deploy("nginx:1.22"), "web");
    publish(&js, &change).await;
    let rollback = command(CommandKind::Rollback { revision: None }, "web");
    publish(&js, &rollback).await;
    let done = finals(&js, &[change.id, rollback.id]).await;
    assert_eq!(
        done[&change.id].outcome,
        Outcome::Applied,
        "{:?}",
        done[&change.id]
    );
    assert!(done[&change.id].attempts >= 2, "{:?}", done[&change.id]);
    assert_eq!(
        done[&rollback.id].outcome,
        Outcome::Applied,
        "{:?}",
        done[&rollback.id]
    );
    assert_eq!(
        done[&rollback.id].attempts, 1,
        "the rollback waited on its first delivery: {:?}",
        done[&rollback.id]
    );
    assert_eq!(image(&kube, "web", 0), "nginx:1.21", "the deploy undone");
}

/// The in-chat `history` shows who changed what lately, from the streams,
/// as `chatops history` does, besides the revisions; questions are left
/// out.
#[tokio::test]
async fn history_in_the_room_tells_who_ran_what() {
    let (_nats, _kube, js, _w) = web_with_a_worker("4").await;
    let asked = async || {
        let history = command(CommandKind::History, "web");
        publish(&js, &history).await;
        finals(&js, &[history.id]).await[&history.id]
            .message
            .clone()
    };
    let change = command(scale(3), "web");
    publish(&js, &change).await;
    let status = command(CommandKind::Status, "web");
    publish(&js, &status).await;
    finals(&js, &[change.id, status.id]).await;
    let message = asked().await;
    assert!(
        message.contains("last commands: ")
            && message.contains(" UTC alice@example.com 'scale web to 3 in default': applied")
            && !message.contains("'status web")
            && !message.contains("older ones"),
        "{message}"
    );
    // The five newest are named, and where the rest are is said.
    let more: Vec<_> = (4..=8).map(|n| command(scale(n), "web")).collect();
    for c in &more {
        publish(&js, c).await;
    }
    finals(&js, &more.iter().map(|c| c.id).collect::<Vec<_>>()).await;
    let message = asked().await;
    assert!(
        message.contains("'scale web to 8 in default'")
            && !message.contains("'scale web to 3 in default'")
            && message
                .contains("; older ones in 'chatops history --namespace default --deployment web'"),
        "{message}"
    );
}

/// A command overtaken by a later one says which: its number, who sent it
/// and what it said.
#[tokio::test]
async fn a_superseded_command_names_the_command_that_overtook_it() {
    let (_nats, kube, js, _w) = web_with_a_worker("4").await;
    let first = command(scale(3), "web");
    let second = command(scale(5), "web");
    let (done, seq) = overlapping(&js, &kube, &first, &second, None).await;
    assert_eq!(done[&first.id].outcome, Outcome::Superseded);
    assert!(
        done[&first.id].message.starts_with(&format!(
            "a later command (#{seq}, alice@example.com's 'scale web to 5 in default') has since set the replicas of web"
        )),
        "{}",
        done[&first.id].message
    );
    assert_eq!(replicas(&kube, "web"), 5);
}

/// What [`overlapping`] gives back: both final results, and the second's
/// stream sequence.
type Overlapped = (
    std::collections::BTreeMap<chatops_shared::CommandId, chatops_shared::CommandResult>,
    u64,
);

/// Publishes `first`, waits until a worker holds it (its read of `web`
/// held 1.5 s), arms `then` (a fault for what comes next), then publishes
/// `second`: the second is taken while the first is still being applied.
async fn overlapping(
    js: &async_nats::jetstream::Context,
    kube: &KubeSandbox,
    first: &chatops_shared::Command,
    second: &chatops_shared::Command,
    then: Option<Fault>,
) -> Overlapped {
    kube.inject(
        Fault::latency(Duration::from_millis(1500))
            .method("GET")
            .path(WEB)
            .times(1),
    );
    publish(js, first).await;
    chatops_testkit::eventually("the first taken by a worker", LIMIT, || async {
        (in_flight(js).await == 1).then_some(())
    })
    .await;
    if let Some(fault) = then {
        kube.inject(fault);
    }
    let seq = publish(js, second).await;
    (finals(js, &[first.id, second.id]).await, seq)
}

/// The deployment the overlapping tests change.
const WEB: &str = "/apis/apps/v1/namespaces/default/deployments/web";

/// Changes to the template that build on each other are applied in the
/// order sent, whichever worker slot takes which: a restart after a
/// rollback restarts the rolled-back template (the rollback was
/// superseded by the restart), and an image set on one container after
/// another's keeps both (the first was superseded).
#[tokio::test]
async fn template_changes_sent_together_are_applied_in_the_order_sent() {
    let nats = NatsServer::start().await;
    let kube = sandbox(&[deployment_yaml(
        "web",
        1,
        &[("app", "app:1"), ("side", "side:1")],
    )])
    .await;
    let js = jetstream(&nats).await;
    let _w = worker(&nats, &kube, "4").await;
    let set = |container: &str, image: &str| CommandKind::SetImage {
        container: Some(chatops_shared::ContainerName::parse(container).expect("valid")),
        image: ImageRef::parse(image).expect("valid"),
    };
    let first = command(set("app", "app:2"), "web");
    publish(&js, &first).await;
    finals(&js, &[first.id]).await;

    let rollback = command(CommandKind::Rollback { revision: None }, "web");
    let restart = command(CommandKind::Restart, "web");
    let (done, _) = overlapping(&js, &kube, &rollback, &restart, None).await;
    for id in [rollback.id, restart.id] {
        assert_eq!(done[&id].outcome, Outcome::Applied, "{:?}", done[&id]);
    }
    assert_eq!(
        image(&kube, "web", 0),
        "app:1",
        "rolled back, then restarted"
    );

    let app = command(set("app", "app:3"), "web");
    let side = command(set("side", "side:3"), "web");
    let (done, _) = overlapping(&js, &kube, &app, &side, None).await;
    for id in [app.id, side.id] {
        assert_eq!(done[&id].outcome, Outcome::Applied, "{:?}", done[&id]);
    }
    assert_eq!(
        (image(&kube, "web", 0), image(&kube, "web", 1)),
        ("app:3".to_owned(), "side:3".to_owned()),
        "both images set"
    );
}

/// Deliveries of the workers' consumer so far, redeliveries included.
async fn deliveries(js: &async_nats::jetstream::Context) -> u64 {
    let stream = js
        .get_stream(streams::COMMANDS_STREAM)
        .await
        .expect("stream");
    let mut consumer: async_nats::jetstream::consumer::PullConsumer = stream
        .get_consumer(streams::WORKERS_CONSUMER)
        .await
        .expect("consumer");
    consumer
        .info()
        .await
        .expect("info")
        .delivered
        .consumer_sequence
}

/// Starts a worker, waits until it holds delivery `n` of the one command
/// on the stream, `held` says so, and kills it (SIGKILL).
async fn killed_holding(
    js: &async_nats::jetstream::Context,
    start: impl Future<Output = Process>,
    n: u64,
    held: impl AsyncFn() -> bool,
) {
    let w = start.await;
    chatops_testkit::eventually(&format!("delivery {n} to be held"), LIMIT, || async {
        (deliveries(js).await == n && held().await).then_some(())
    })
    .await;
    w.signal("KILL");
    let _ = w.wait(LIMIT).await;
}

/// NATS with the streams, and a sandbox with `web` (1 replica of
/// nginx:1.20) whose `method` requests to it hang for ten minutes.
async fn web_hanging(method: &str) -> (NatsServer, KubeSandbox, async_nats::jetstream::Context) {
    let nats = NatsServer::start().await;
    let kube = sandbox(&[deployment_yaml("web", 1, &[("nginx", "nginx:1.20")])]).await;
    let js = jetstream(&nats).await;
    kube.inject(
        Fault::latency(Duration::from_secs(600))
            .method(method)
            .path(WEB)
            .always(),
    );
    (nats, kube, js)
}

/// Every delivery of a scale dies with its worker, each while its first
/// read hangs: JetStream delivers it once more, and that worker, without
/// trying it again, says it was given up and not applied.
#[tokio::test]
async fn a_command_whose_every_delivery_dies_with_its_worker_is_given_up_with_a_result() {
    let (nats, kube, js) = web_hanging("GET").await;
    let cmd = command(scale(4), "web");
    publish(&js, &cmd).await;
    for n in 1..=3 {
        killed_holding(&js, worker(&nats, &kube, "1"), n, async || true).await;
    }
    kube.clear_faults();
    let _last = worker(&nats, &kube, "1").await;
    let done = finals(&js, &[cmd.id]).await;
    let result = &done[&cmd.id];
    assert_eq!(result.outcome, Outcome::Failed, "{result:?}");
    assert!(
        result.message.starts_with("given up after 3 tries")
            && result.message.contains("it was not applied"),
        "{}",
        result.message
    );
    assert_eq!(replicas(&kube, "web"), 1, "nothing applied");
    let all = crate::helpers::results(&js).await;
    assert_eq!(all[&cmd.id].len(), 1, "exactly one result");
    assert_eq!(in_flight(&js).await, 0, "acknowledged");
}

/// A deploy waits behind one whose write hangs, and the worker holding
/// both is killed three times: the waiting one never got past its wait,
/// so none of its tries is spent, and it is made once the first is
/// decided, where counting deliveries would have given it up.
#[tokio::test]
async fn a_change_whose_workers_die_while_it_waits_keeps_its_tries() {
    let (nats, kube, js) = web_hanging("PATCH").await;
    let slow = command(deploy("nginx:1.21"), "web");
    publish(&js, &slow).await;
    let after = command(deploy("nginx:1.22"), "web");
    publish(&js, &after).await;
    for n in 1..=3 {
        killed_holding(&js, worker(&nats, &kube, "2"), 2 * n, async || true).await;
    }
    kube.clear_faults();
    let _last = worker(&nats, &kube, "2").await;
    let done = finals(&js, &[slow.id, after.id]).await;
    let result = &done[&after.id];
    assert_eq!(result.outcome, Outcome::Applied, "{result:?}");
    assert_eq!(result.attempts, 4, "its fourth delivery: {result:?}");
    assert_eq!(image(&kube, "web", 0), "nginx:1.22");
    // The first was given up or, if a kill came before its write, made
    // on its last delivery; either way before the second, and once.
    let first = &done[&slow.id];
    assert!(
        first.outcome == Outcome::Applied
            || (first.outcome == Outcome::Failed && first.message.contains("not applied")),
        "{first:?}"
    );
    assert!(first.finished_at < result.finished_at, "decided first");
    let all = crate::helpers::results(&js).await;
    for id in [slow.id, after.id] {
        let finals = all[&id].iter().filter(|r| r.outcome.is_final()).count();
        assert_eq!(finals, 1, "exactly one final result");
    }
}

/// A deploy applied by a worker that then dies while following its
/// rollout, three times: the delivery after the last reads from the
/// fence that it was applied, and says so.
#[tokio::test]
async fn a_change_made_by_a_last_delivery_that_died_is_reported_applied() {
    let nats = NatsServer::start().await;
    let web = with_progress_deadline(&deployment_yaml("web", 1, &[("nginx", "nginx:1.20")]), 600);
    let kube = KubeSandbox::builder()
        .rollout(Duration::from_secs(300))
        .seed_yaml(&web)
        .token(TOKEN, "system:serviceaccount:default:chatops-bot")
        .anonymous_admin()
        .start()
        .await
        .expect("sandbox");
    let js = jetstream(&nats).await;
    let cmd = command(deploy("nginx:1.21"), "web");
    publish(&js, &cmd).await;
    for n in 1..=3 {
        let following = async || {
            crate::helpers::results(&js)
                .await
                .get(&cmd.id)
                .is_some_and(|rs| {
                    rs.iter()
                        .filter(|r| r.outcome == Outcome::InProgress)
                        .count()
                        >= n as usize
                })
        };
        killed_holding(&js, following_worker(&nats, &kube), n, following).await;
    }
    let _last = worker(&nats, &kube, "1").await;
    let done = finals(&js, &[cmd.id]).await;
    let result = &done[&cmd.id];
    assert_eq!(result.outcome, Outcome::AlreadyApplied, "{result:?}");
    assert!(
        result.message.contains("applied before") && result.message.contains("nginx:1.21"),
        "{}",
        result.message
    );
    assert_eq!(image(&kube, "web", 0), "nginx:1.21");
    let all = crate::helpers::results(&js).await;
    let finals = all[&cmd.id].iter().filter(|r| r.outcome.is_final()).count();
    assert_eq!(finals, 1, "exactly one final result");
}

/// A deploy whose write hangs for longer than its successor's three
/// deliveries would have waited (2 s each): the successor waits on its
/// first delivery, then is made after it, in order.
#[tokio::test]
async fn a_change_waits_for_a_slow_earlier_one_without_spending_its_deliveries() {
    let (_nats, kube, js, _w) = web_with_a_worker("4").await;
    kube.inject(
        Fault::latency(Duration::from_secs(12))
            .method("PATCH")
            .path(WEB)
            .times(1),
    );
    let slow = command(deploy("nginx:1.21"), "web");
    publish(&js, &slow).await;
    let after = command(deploy("nginx:1.22"), "web");
    publish(&js, &after).await;
    let done = finals(&js, &[slow.id, after.id]).await;
    for cmd in [&slow, &after] {
        let result = &done[&cmd.id];
        assert_eq!(result.outcome, Outcome::Applied, "{result:?}");
        assert_eq!(result.attempts, 1, "{result:?}");
    }
    assert!(
        done[&after.id].finished_at > done[&slow.id].finished_at,
        "made after the slow one"
    );
    assert_eq!(image(&kube, "web", 0), "nginx:1.22");
}

/// `scale web to 5` then `status web`, taken at once by two slots while
/// the scale's write takes a second: the status waits for it and shows 5
/// asked for. Behind a write that takes longer than a question waits, it
/// answers after a while, naming the change not made yet.
#[tokio::test]
async fn a_status_after_a_change_shows_the_change_or_says_it_is_not_made_yet() {
    let (_nats, kube, js, _w) = web_with_a_worker("4").await;
    for (latency, replicas) in [(1, 5), (12, 6)] {
        kube.inject(
            Fault::latency(Duration::from_secs(latency))
                .method("PATCH")
                .path(WEB)
                .times(1),
        );
        let change = command(scale(replicas), "web");
        let seq = publish(&js, &change).await;
        let status = command(CommandKind::Status, "web");
        publish(&js, &status).await;
        let asked = std::time::Instant::now();
        let done = finals(&js, &[status.id]).await;
        let answer = &done[&status.id].message;
        if latency == 1 {
            assert!(
                answer.contains(&format!("web in default: {replicas} desired")),
                "{answer}"
            );
            assert!(!answer.contains("not made yet"), "{answer}");
        } else {
            assert!(
                answer.contains(&format!(
                    "not made yet when asked: #{seq}, alice@example.com's 'scale web to {replicas}"
                )),
                "{answer}"
            );
            assert!(
                asked.elapsed() < Duration::from_secs(11),
                "answered before the change was made"
            );
        }
        finals(&js, &[change.id]).await;
    }
}

/// A template change and a status wait for the changes before them, which
/// reads their deployment; the apply and the answer start from that read
/// rather than reading it again.
#[tokio::test]
async fn a_waiting_change_and_a_status_read_their_deployment_once() {
    let (_nats, kube, js, _w) = web_with_a_worker("4").await;
    for (kind, after) in [
        (deploy("nginx:1.21"), "nginx:1.21"),
        (CommandKind::Status, "1"),
    ] {
        // Else the controller's status write between the wait's read and
        // the patch makes the patch conflict and read again.
        settled(&kube, "web").await;
        kube.clear_requests();
        let c = command(kind, "web");
        publish(&js, &c).await;
        let done = finals(&js, &[c.id]).await;
        assert_eq!(
            (done[&c.id].outcome, done[&c.id].after.as_deref()),
            (Outcome::Applied, Some(after)),
            "{}",
            done[&c.id].message
        );
        assert_eq!(reads(&kube, "web"), 1, "{:#?}", kube.requests());
    }
}

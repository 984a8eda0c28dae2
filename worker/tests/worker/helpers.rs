//! Test helpers: a Kubernetes sandbox seeded with deployments, a real
//! nats-server, commands published as the gateway would, results read back.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream;
use chatops_sandbox::kube::KubeSandbox;
use chatops_shared::config::ClusterConfig;
use chatops_shared::streams::{self, RESULTS_STREAM, StreamSettings};
use chatops_shared::{
    Actor, Command, CommandId, CommandKind, CommandResult, ContractVersion, DeploymentName,
    Namespace, Origin, subjects,
};
use chatops_testkit::{NatsServer, eventually};
use chatops_worker::apply::Engine;
use chatops_worker::limiter::Limiter;

pub const LIMIT: Duration = Duration::from_secs(60);
pub const TOKEN: &str = "bot-token-TOPSECRET";

pub fn deployment_yaml(name: &str, replicas: u32, containers: &[(&str, &str)]) -> String {
    let containers: String = containers
        .iter()
        .map(|(n, image)| format!("        - name: {n}\n          image: {image}\n"))
        .collect();
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n  replicas: {replicas}\n  selector:\n    matchLabels:\n      app: {name}\n  template:\n    metadata:\n      labels:\n        app: {name}\n    spec:\n      containers:\n{containers}"
    )
}

/// `yaml`, a [`deployment_yaml`], with a progress deadline of `seconds`.
pub fn with_progress_deadline(yaml: &str, seconds: u32) -> String {
    let deadline = format!("\nspec:\n  progressDeadlineSeconds: {seconds}\n");
    yaml.replacen("\nspec:\n", &deadline, 1)
}

fn resource(file: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../resources")
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A sandbox enforcing the project's least-privilege role for the bot's token.
pub async fn sandbox(seed: &[String]) -> KubeSandbox {
    sandbox_with(seed, "").await
}

/// [`sandbox`], with `rbac` (YAML) granted besides the project's role.
pub async fn sandbox_with(seed: &[String], rbac: &str) -> KubeSandbox {
    let mut builder = KubeSandbox::builder()
        .rollout(Duration::from_millis(100))
        .rbac_yaml(&resource("sa.yaml"))
        .rbac_yaml(&resource("role.yaml"))
        .rbac_yaml(&resource("rb.yaml"))
        .enforce_rbac(true)
        .token(TOKEN, "system:serviceaccount:default:chatops-bot")
        .admin_token("admin-token");
    if !rbac.is_empty() {
        builder = builder.rbac_yaml(rbac);
    }
    for yaml in seed {
        builder = builder.seed_yaml(yaml);
    }
    builder
        .start()
        .await
        .expect("the Kubernetes sandbox starts")
}

pub fn cluster(kube: &KubeSandbox) -> ClusterConfig {
    ClusterConfig::Explicit {
        name: "sandbox".into(),
        url: kube.url(),
        ca_pem: None,
        username: Some("chatops-bot".into()),
        token: Some(TOKEN.to_owned().into()),
    }
}

pub async fn engine(kube: &KubeSandbox) -> Engine {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = chatops_worker::kube_client::client(&cluster(kube))
        .await
        .expect("kube client");
    Engine::new(client, Arc::new(Limiter::new(1000.0, 1000)))
}

pub fn settings() -> StreamSettings {
    StreamSettings {
        ack_wait: Duration::from_secs(2),
        max_deliver: 3,
        ..StreamSettings::default()
    }
}

/// The streams, as a gateway would have set them up.
pub async fn jetstream(nats: &NatsServer) -> jetstream::Context {
    let js = jetstream::new(async_nats::connect(nats.url()).await.expect("connect"));
    streams::ensure(&js, &settings()).await.expect("streams");
    js
}

pub fn command(kind: CommandKind, deployment: &str) -> Command {
    Command {
        version: ContractVersion,
        id: CommandId::new(),
        kind,
        namespace: Namespace::default_namespace(),
        deployment: Some(DeploymentName::parse(deployment).expect("valid")),
        visible: Vec::new(),
        actor: Actor {
            email: "alice@example.com".into(),
            person_id: "alice".into(),
        },
        origin: Origin {
            room_id: "room".into(),
            message_id: format!("message-{}", uuid::Uuid::now_v7()),
            thread_id: None,
        },
        issued_at: jiff::Timestamp::now(),
    }
}

/// Publishes a command as the gateway does; returns its stream sequence.
pub async fn publish(js: &jetstream::Context, command: &Command) -> u64 {
    let mut headers = HeaderMap::new();
    headers.insert(subjects::MSG_ID_HEADER, command.origin.message_id.as_str());
    headers.insert(subjects::COMMAND_ID_HEADER, command.id.to_string().as_str());
    let subject = subjects::command(&command.namespace, command.deployment.as_ref());
    js.publish_with_headers(
        subject,
        headers,
        serde_json::to_vec(command).expect("json").into(),
    )
    .await
    .expect("publish")
    .await
    .expect("stored")
    .sequence
}

/// Every result so far, by command id (in stream order).
pub async fn results(js: &jetstream::Context) -> BTreeMap<CommandId, Vec<CommandResult>> {
    let mut stream = js.get_stream(RESULTS_STREAM).await.expect("stream");
    let count = stream.info().await.expect("info").state.last_sequence;
    let mut out: BTreeMap<CommandId, Vec<CommandResult>> = BTreeMap::new();
    for seq in 1..=count {
        if let Ok(raw) = stream.get_raw_message(seq).await {
            let result: CommandResult =
                serde_json::from_slice(&raw.payload).expect("a CommandResult");
            out.entry(result.command_id).or_default().push(result);
        }
    }
    out
}

/// Waits until every command in `ids` has a final result; returns them.
pub async fn finals(
    js: &jetstream::Context,
    ids: &[CommandId],
) -> BTreeMap<CommandId, CommandResult> {
    eventually(&format!("{} final results", ids.len()), LIMIT, || async {
        let all = results(js).await;
        let finals: BTreeMap<_, _> = ids
            .iter()
            .filter_map(|id| {
                Some((
                    *id,
                    all.get(id)?.iter().find(|r| r.outcome.is_final())?.clone(),
                ))
            })
            .collect();
        (finals.len() == ids.len()).then_some(finals)
    })
    .await
}

pub fn replicas(kube: &KubeSandbox, name: &str) -> i64 {
    kube.object("apps/v1", "Deployment", "default", name)
        .expect("deployment")["spec"]["replicas"]
        .as_i64()
        .expect("replicas")
}

pub fn image(kube: &KubeSandbox, name: &str, container: usize) -> String {
    kube.object("apps/v1", "Deployment", "default", name)
        .expect("deployment")["spec"]["template"]["spec"]["containers"][container]["image"]
        .as_str()
        .expect("image")
        .to_owned()
}

pub fn writes(kube: &KubeSandbox) -> usize {
    kube.requests().iter().filter(|r| r.is_write()).count()
}

/// GETs of deployment `name` in `default` the sandbox has answered.
pub fn reads(kube: &KubeSandbox, name: &str) -> usize {
    let path = format!("/apis/apps/v1/namespaces/default/deployments/{name}");
    kube.requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path == path)
        .count()
}

/// Waits until the deployment controller is done with deployment `name`
/// in `default`: it has seen the latest generation and the rollout is
/// complete, so it writes the deployment no more (a write would make a
/// change based on an earlier read conflict). For a rollout that can
/// complete: not a paused deployment's, nor one stuck on its images.
pub async fn settled(kube: &KubeSandbox, name: &str) {
    chatops_testkit::eventually("a settled deployment", LIMIT, || async {
        let d = kube.object("apps/v1", "Deployment", "default", name)?;
        let progressing = d["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "Progressing")?;
        (d["status"]["observedGeneration"] == d["metadata"]["generation"]
            && progressing["reason"] == "NewReplicaSetAvailable"
            // The controller leaves out a count of 0.
            && d["status"]["availableReplicas"].as_i64().unwrap_or(0)
                == d["spec"]["replicas"].as_i64().unwrap_or(1))
        .then_some(())
    })
    .await;
}

/// Commands delivered to a worker and not yet acknowledged.
pub async fn in_flight(js: &jetstream::Context) -> u64 {
    let stream = js
        .get_stream(chatops_shared::streams::COMMANDS_STREAM)
        .await
        .expect("stream");
    let mut consumer: jetstream::consumer::PullConsumer = stream
        .get_consumer(chatops_shared::streams::WORKERS_CONSUMER)
        .await
        .expect("consumer");
    consumer.info().await.expect("info").num_ack_pending as u64
}

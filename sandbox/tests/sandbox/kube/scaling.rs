//! The deployment controller's counts as a cluster's controller keeps
//! them, with the real kubectl: a scale sizes the ReplicaSet at once and its
//! new Pods become ready over the rollout time; a stalled rollout counts as
//! unavailable what its ReplicaSets want but lack; a rollback reports its
//! progress as the controller reports it.

use std::time::Duration;

use chatops_sandbox::kube::KubeSandbox;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, WatchEvent, WatchParams};
use serde_json::Value;

use super::helpers::{Kubectl, client, empty, eventually, scalings};

const NS: &str = "default";
const NAME: &str = "web";
const AN_HOUR: Duration = Duration::from_secs(3600);
const LIMIT: Duration = Duration::from_secs(20);

fn deployment(sandbox: &KubeSandbox, name: &str) -> Value {
    sandbox
        .object("apps/v1", "Deployment", NS, name)
        .expect("the deployment exists")
}

/// A count of the deployment's status (0 when left out, as the controller
/// leaves out a 0).
fn count(d: &Value, field: &str) -> i64 {
    d["status"][field].as_i64().unwrap_or(0)
}

/// (replicas, updated, ready, available, unavailable) of its status.
fn counts(d: &Value) -> [i64; 5] {
    [
        "replicas",
        "updatedReplicas",
        "readyReplicas",
        "availableReplicas",
        "unavailableReplicas",
    ]
    .map(|f| count(d, f))
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// Waits until the controller has seen the deployment's latest generation
/// and its status shows `want` (see [`counts`]); returns it.
async fn showing(sandbox: &KubeSandbox, name: &str, want: [i64; 5]) -> Value {
    eventually(&format!("{name} at {want:?}"), LIMIT, || async {
        let d = deployment(sandbox, name);
        (d["status"]["observedGeneration"] == d["metadata"]["generation"] && counts(&d) == want)
            .then_some(d)
    })
    .await
}

/// `kubectl create deployment NAME --image=nginx:1.25 --replicas=N`.
async fn create(kubectl: &Kubectl, name: &str, replicas: i64) {
    kubectl
        .run(&[
            "create",
            "deployment",
            name,
            "--image=nginx:1.25",
            &format!("--replicas={replicas}"),
        ])
        .await
        .success();
}

/// The name of the one ReplicaSet of deployment `name`.
fn replica_set(sandbox: &KubeSandbox, name: &str) -> String {
    let sets: Vec<String> = sandbox
        .objects("apps/v1", "ReplicaSet", NS)
        .iter()
        .filter(|rs| rs["metadata"]["ownerReferences"][0]["name"] == name)
        .filter_map(|rs| rs["metadata"]["name"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(sets.len(), 1, "{sets:?}");
    sets[0].clone()
}

#[tokio::test]
async fn a_scale_sizes_the_replica_set_at_once_in_one_step_and_its_new_pods_come_up_not_ready() {
    let (sandbox, kubectl) = empty().await;
    create(&kubectl, NAME, 4).await;
    showing(&sandbox, NAME, [4, 4, 4, 4, 0]).await;
    let rs = replica_set(&sandbox, NAME);
    // From here on new Pods take an hour to become ready: what the test
    // sees is what the controller did at once.
    sandbox.set_rollout(AN_HOUR);

    kubectl
        .run(&["scale", "deployment", NAME, "--replicas=8"])
        .await
        .success();
    let d = showing(&sandbox, NAME, [8, 8, 4, 4, 4]).await;
    assert_eq!(
        scalings(&kubectl).await,
        [
            format!("Scaled up replica set {rs} from 0 to 4"),
            format!("Scaled up replica set {rs} from 4 to 8"),
        ],
        "one step each"
    );
    let pods = sandbox.objects("v1", "Pod", NS);
    assert_eq!(pods.len(), 8);
    assert_eq!(pods.iter().filter(|p| is_ready(p)).count(), 4);
    assert!(
        pods.iter().all(|p| p["status"]["phase"] == "Running"),
        "the new ones run, not yet ready"
    );
    let out = kubectl
        .run(&["get", "deployment", NAME, "--no-headers"])
        .await
        .success();
    let row: Vec<&str> = out.stdout.split_whitespace().collect();
    assert_eq!(row[..4], [NAME, "4/8", "8", "4"], "{}", out.stdout);
    let progressing = d["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Progressing")
        .expect("a Progressing condition");
    assert_eq!(
        progressing["reason"], "NewReplicaSetAvailable",
        "a scale is no new rollout"
    );

    // Down at once too, the Pods not yet ready going first.
    kubectl
        .run(&["scale", "deployment", NAME, "--replicas=3"])
        .await
        .success();
    showing(&sandbox, NAME, [3, 3, 3, 3, 0]).await;
    assert_eq!(
        scalings(&kubectl).await.last(),
        Some(&format!("Scaled down replica set {rs} from 8 to 3"))
    );
    let pods = sandbox.objects("v1", "Pod", NS);
    assert_eq!((pods.len(), pods.iter().all(is_ready)), (3, true));

    // A new deployment's ReplicaSet takes all its replicas in one step.
    create(&kubectl, "fresh", 4).await;
    showing(&sandbox, "fresh", [4, 4, 0, 0, 4]).await;
    let fresh = replica_set(&sandbox, "fresh");
    assert_eq!(
        scalings(&kubectl)
            .await
            .iter()
            .filter(|m| m.contains(&fresh))
            .collect::<Vec<_>>(),
        [&format!("Scaled up replica set {fresh} from 0 to 4")]
    );
    // A shorter rollout time brings the Pods still starting forward.
    sandbox.set_rollout(Duration::ZERO);
    showing(&sandbox, "fresh", [4, 4, 4, 4, 0]).await;
}

#[tokio::test]
async fn the_pods_a_scale_adds_become_ready_one_by_one_over_the_rollout_time() {
    let (sandbox, kubectl) = empty().await;
    create(&kubectl, NAME, 4).await;
    showing(&sandbox, NAME, [4, 4, 4, 4, 0]).await;
    sandbox.set_rollout(Duration::from_secs(4));

    kubectl
        .run(&["scale", "deployment", NAME, "--replicas=8"])
        .await
        .success();
    let out = kubectl
        .run(&[
            "rollout",
            "status",
            &format!("deployment/{NAME}"),
            "--timeout=60s",
        ])
        .await
        .success();
    let available: Vec<i64> = out
        .stdout
        .lines()
        .filter_map(|l| {
            l.strip_prefix(&format!(
                "Waiting for deployment {NAME:?} rollout to finish: "
            ))?
            .strip_suffix(" of 8 updated replicas are available...")?
            .parse()
            .ok()
        })
        .collect();
    assert!(
        !available.is_empty() && available.iter().all(|n| (4..8).contains(n)),
        "kubectl waited while they came up: {}",
        out.stdout
    );
    assert!(available.is_sorted(), "{}", out.stdout);
    assert!(
        out.stdout
            .ends_with(&format!("deployment {NAME:?} successfully rolled out\n")),
        "{}",
        out.stdout
    );
    showing(&sandbox, NAME, [8, 8, 8, 8, 0]).await;
}

#[tokio::test]
async fn a_stalled_rollout_counts_as_unavailable_what_its_replica_sets_want_but_lack() {
    let sandbox = KubeSandbox::builder()
        .rollout(Duration::ZERO)
        .unpullable_image("nginx:bad")
        .start()
        .await
        .expect("start the sandbox");
    let kubectl = Kubectl::new(&sandbox.url());
    create(&kubectl, NAME, 4).await;
    showing(&sandbox, NAME, [4, 4, 4, 4, 0]).await;
    kubectl
        .run(&[
            "set",
            "image",
            &format!("deployment/{NAME}"),
            "nginx=nginx:bad",
        ])
        .await
        .success();
    // 25% of 4 may surge and 25% be unavailable: two new replicas that
    // never become ready, three old ones; 5 wanted, 3 available.
    showing(&sandbox, NAME, [5, 2, 3, 3, 2]).await;
    let out = kubectl
        .run(&[
            "get",
            "deployment",
            NAME,
            "-o",
            "jsonpath={.status.replicas} {.status.availableReplicas} {.status.unavailableReplicas}",
        ])
        .await
        .success();
    assert_eq!(out.stdout, "5 3 2");
}

#[tokio::test]
async fn a_rollback_reports_progress_as_the_controller_does() {
    let (sandbox, kubectl) = empty().await;
    create(&kubectl, NAME, 4).await;
    showing(&sandbox, NAME, [4, 4, 4, 4, 0]).await;
    let first = replica_set(&sandbox, NAME);
    kubectl
        .run(&[
            "set",
            "image",
            &format!("deployment/{NAME}"),
            "nginx=nginx:1.26",
        ])
        .await
        .success();
    let rolled = eventually("the new template rolled out", LIMIT, || async {
        let d = deployment(&sandbox, NAME);
        (d["status"]["observedGeneration"] == d["metadata"]["generation"]
            && counts(&d) == [4, 4, 4, 4, 0]
            && sandbox.objects("apps/v1", "ReplicaSet", NS).len() == 2)
            .then_some(d)
    })
    .await;
    let progressing = |d: &Deployment| {
        d.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "Progressing"))
            .map(|c| {
                (
                    c.reason.clone().unwrap_or_default(),
                    c.message.clone().unwrap_or_default(),
                )
            })
    };
    let api: Api<Deployment> = Api::namespaced(client(&sandbox.url(), None).await, NS);
    let since = rolled["metadata"]["resourceVersion"]
        .as_str()
        .expect("a resourceVersion")
        .to_owned();
    let mut events = Box::pin(
        api.watch(
            &WatchParams::default().fields(&format!("metadata.name={NAME}")),
            &since,
        )
        .await
        .expect("watch"),
    );
    // Four steps, half a second apart.
    sandbox.set_rollout(Duration::from_secs(2));
    kubectl
        .run(&["rollout", "undo", &format!("deployment/{NAME}")])
        .await
        .success();
    let done = format!("ReplicaSet {first:?} has successfully progressed.");
    let mut seen = Vec::new();
    tokio::time::timeout(LIMIT, async {
        while let Some(event) = events.next().await {
            let Ok(WatchEvent::Modified(d)) = event else {
                continue;
            };
            let observed =
                d.status.as_ref().and_then(|s| s.observed_generation) == d.metadata.generation;
            if let Some(condition) = progressing(&d).filter(|_| observed) {
                let finished = condition == ("NewReplicaSetAvailable".to_owned(), done.clone());
                seen.push(condition);
                if finished {
                    return;
                }
            }
        }
        panic!("the watch ended before the rollback finished");
    })
    .await
    .unwrap_or_else(|_| panic!("the rollback to finish: {seen:?}"));
    let reasons: Vec<&str> = seen.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(
        reasons.first(),
        Some(&"NewReplicaSetAvailable"),
        "the condition the rollback found is kept until it moves: {seen:?}"
    );
    assert!(
        !reasons.contains(&"FoundNewReplicaSet"),
        "only for a deployment with no Progressing condition: {seen:?}"
    );
    assert!(
        reasons.contains(&"ReplicaSetUpdated"),
        "each step is progress: {seen:?}"
    );
}

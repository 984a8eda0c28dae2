//! A Deployment's ReplicaSets changed by someone else than its controller
//! (deleted, scaled by hand), with the real kubectl: the controller puts
//! their sizes back at once, as a cluster's does, and each ReplicaSet's
//! status counts its Pods. A rollout of an hour stands between the test
//! and any step, so nothing here waits for a rollout to happen by.

use std::time::Duration;

use chatops_sandbox::kube::KubeSandbox;
use serde_json::Value;

use super::helpers::{Kubectl, eventually, manifest, scalings};

const NS: &str = "default";
const NAME: &str = "nginx-deployment";
const AN_HOUR: Duration = Duration::from_secs(3600);

/// The sample deployment, its first rollout done at once.
async fn nginx(builder: chatops_sandbox::kube::KubeSandboxBuilder) -> KubeSandbox {
    builder
        .rollout(Duration::ZERO)
        .seed_yaml(&manifest("nginx-deployment.yaml"))
        .start()
        .await
        .expect("start the sandbox")
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

fn name(object: &Value) -> String {
    object["metadata"]["name"].as_str().unwrap_or("").to_owned()
}

/// The deployment's ReplicaSets as (name, image, spec.replicas), once each
/// has the status its Pods give it (reads while a controller pass falls
/// between those of the Pods and the ReplicaSets may not agree).
fn replica_sets(sandbox: &KubeSandbox) -> Option<Vec<(String, String, i64)>> {
    let pods = sandbox.objects("v1", "Pod", NS);
    sandbox
        .objects("apps/v1", "ReplicaSet", NS)
        .into_iter()
        .map(|rs| {
            let uid = &rs["metadata"]["uid"];
            let own: Vec<&Value> = pods
                .iter()
                .filter(|p| p["metadata"]["ownerReferences"][0]["uid"] == *uid)
                .collect();
            let ready = own.iter().filter(|p| is_ready(p)).count();
            let counted = |field: &str| {
                usize::try_from(rs["status"][field].as_u64().unwrap_or(0)).unwrap_or(0)
            };
            let counts_its_pods = (counted("replicas"), counted("readyReplicas"))
                == (own.len(), ready)
                && rs["status"]["observedGeneration"] == rs["metadata"]["generation"];
            counts_its_pods.then(|| {
                (
                    name(&rs),
                    rs["spec"]["template"]["spec"]["containers"][0]["image"]
                        .as_str()
                        .unwrap_or("")
                        .to_owned(),
                    rs["spec"]["replicas"].as_i64().unwrap_or(-1),
                )
            })
        })
        .collect()
}

/// (image, spec.replicas) of each ReplicaSet, sorted, and how many Pods
/// there are, once every ReplicaSet's status counts its Pods.
fn sizes(sandbox: &KubeSandbox) -> Option<(Vec<(String, i64)>, usize)> {
    let mut sets: Vec<(String, i64)> = replica_sets(sandbox)?
        .into_iter()
        .map(|(_, image, n)| (image, n))
        .collect();
    sets.sort();
    Some((sets, sandbox.objects("v1", "Pod", NS).len()))
}

/// Waits until the ReplicaSets and Pods are `want`.
async fn sized(sandbox: &KubeSandbox, what: &str, want: &[(&str, i64)], pods: usize) {
    let want: Vec<(String, i64)> = want.iter().map(|(i, n)| ((*i).to_owned(), *n)).collect();
    eventually(what, Duration::from_secs(10), || async {
        (sizes(sandbox) == Some((want.clone(), pods))).then_some(())
    })
    .await;
}

/// Waits until the deployment has `n` ready replicas of `image`, all in one
/// ReplicaSet (any other at 0) whose status counts its Pods; returns that
/// ReplicaSet.
async fn settled(sandbox: &KubeSandbox, image: &str, n: i64) -> Value {
    eventually(
        &format!("{n} ready replicas of {image}"),
        Duration::from_secs(10),
        || async {
            let d = sandbox
                .object("apps/v1", "Deployment", NS, NAME)
                .expect("the deployment exists");
            let status = &d["status"];
            let deployment_done = d["status"]["observedGeneration"] == d["metadata"]["generation"]
                && [
                    "replicas",
                    "updatedReplicas",
                    "readyReplicas",
                    "availableReplicas",
                ]
                .iter()
                .all(|f| status[f].as_i64() == Some(n));
            let sets = replica_sets(sandbox)?;
            let sized = sets
                .iter()
                .all(|(_, i, r)| if i == image { *r == n } else { *r == 0 });
            let pods = sandbox.objects("v1", "Pod", NS);
            let running =
                pods.len() == usize::try_from(n).unwrap_or(0) && pods.iter().all(is_ready);
            let current = sets.iter().find(|(_, i, _)| i == image)?;
            (deployment_done && sized && running)
                .then(|| sandbox.object("apps/v1", "ReplicaSet", NS, &current.0))
                .flatten()
        },
    )
    .await
}

/// The messages of the deployment's `ScalingReplicaSet` events.
/// Starts a rollout to nginx:1.25 with `kubectl set image`.
async fn new_image(kubectl: &Kubectl) {
    kubectl
        .run(&[
            "set",
            "image",
            &format!("deploy/{NAME}"),
            "nginx=nginx:1.25",
        ])
        .await
        .success();
}

#[tokio::test]
async fn a_deleted_replica_set_is_made_again_at_the_deployments_size_at_once() {
    let sandbox = nginx(KubeSandbox::builder()).await;
    let kubectl = Kubectl::new(&sandbox.url());
    let first = settled(&sandbox, "nginx:1.14.2", 2).await;
    sandbox.set_rollout(AN_HOUR);

    let out = kubectl
        .run(&["delete", "rs", "-l", "app=nginx"])
        .await
        .success();
    assert_eq!(
        out.stdout.trim(),
        format!("replicaset.apps \"{}\" deleted", name(&first))
    );
    let again = settled(&sandbox, "nginx:1.14.2", 2).await;
    assert_eq!(name(&again), name(&first), "named by its template");
    assert_ne!(again["metadata"]["uid"], first["metadata"]["uid"]);
    assert_eq!(
        again["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "1"
    );
    let out = kubectl
        .run(&[
            "rollout",
            "status",
            &format!("deploy/{NAME}"),
            "--timeout=10s",
        ])
        .await
        .success();
    assert!(
        out.stdout.contains("successfully rolled out"),
        "{}",
        out.stdout
    );
    let out = kubectl.run(&["get", "rs", "--no-headers"]).await.success();
    let row: Vec<&str> = out.stdout.split_whitespace().collect();
    assert_eq!(
        row[..4],
        [name(&first).as_str(), "2", "2", "2"],
        "{}",
        out.stdout
    );
}

#[tokio::test]
async fn a_replica_set_scaled_by_hand_is_scaled_back_at_once_and_counts_its_pods() {
    let sandbox = nginx(KubeSandbox::builder()).await;
    let kubectl = Kubectl::new(&sandbox.url());
    let rs = name(&settled(&sandbox, "nginx:1.14.2", 2).await);
    sandbox.set_rollout(AN_HOUR);

    for replicas in [6, 0, 1] {
        kubectl
            .run(&[
                "scale",
                "rs",
                "-l",
                "app=nginx",
                &format!("--replicas={replicas}"),
            ])
            .await
            .success();
        settled(&sandbox, "nginx:1.14.2", 2).await;
        let out = kubectl
            .run(&["get", "deploy", "--no-headers"])
            .await
            .success();
        let row: Vec<&str> = out.stdout.split_whitespace().collect();
        assert_eq!(row[..4], [NAME, "2/2", "2", "2"], "{}", out.stdout);
        let direction = if replicas > 2 { "down" } else { "up" };
        let put_back = format!("Scaled {direction} replica set {rs} from {replicas} to 2");
        assert!(
            scalings(&kubectl).await.contains(&put_back),
            "{put_back}: {:?}",
            scalings(&kubectl).await
        );
    }
}

#[tokio::test]
async fn a_replica_set_scaled_during_a_rollout_is_put_back_where_the_rollout_has_it() {
    let sandbox = nginx(KubeSandbox::builder()).await;
    let kubectl = Kubectl::new(&sandbox.url());
    let old = name(&settled(&sandbox, "nginx:1.14.2", 2).await);
    sandbox.set_rollout(AN_HOUR);
    new_image(&kubectl).await;
    // The rollout's first step is half an hour away: the new ReplicaSet
    // waits at 0 beside the old one at 2.
    let started = [("nginx:1.14.2", 2), ("nginx:1.25", 0)];
    sized(&sandbox, "the new ReplicaSet", &started, 2).await;
    let new = replica_sets(&sandbox)
        .into_iter()
        .flatten()
        .find(|(_, image, _)| image == "nginx:1.25")
        .map(|(n, _, _)| n)
        .expect("a new ReplicaSet");

    for (rs, replicas) in [(&new, 5), (&old, 4), (&old, 0)] {
        kubectl
            .run(&["scale", "rs", rs, &format!("--replicas={replicas}")])
            .await
            .success();
        sized(
            &sandbox,
            &format!("{rs} put back after a scale to {replicas}"),
            &started,
            2,
        )
        .await;
    }

    // The rollout then ends where it would have.
    sandbox.set_rollout(Duration::ZERO);
    settled(&sandbox, "nginx:1.25", 2).await;
}

#[tokio::test]
async fn a_stalled_or_paused_rollouts_replica_sets_are_put_back_too() {
    let sandbox = nginx(KubeSandbox::builder().unpullable_image("nginx:bad")).await;
    let kubectl = Kubectl::new(&sandbox.url());
    let old = name(&settled(&sandbox, "nginx:1.14.2", 2).await);
    kubectl
        .run(&["set", "image", &format!("deploy/{NAME}"), "nginx=nginx:bad"])
        .await
        .success();
    // Stalled: one surge replica of the new image, never ready; the old
    // ones kept (maxUnavailable 25% of 2 is 0).
    let stalled = [("nginx:1.14.2", 2), ("nginx:bad", 1)];
    sized(&sandbox, "the stalled rollout", &stalled, 3).await;
    kubectl
        .run(&["scale", "rs", "-l", "app=nginx", "--replicas=6"])
        .await
        .success();
    sized(&sandbox, "the stall put back", &stalled, 3).await;

    // Paused before a new template rolls out: nothing rolls, but the old
    // ReplicaSet keeps its size.
    kubectl
        .run(&["rollout", "undo", &format!("deploy/{NAME}")])
        .await
        .success();
    settled(&sandbox, "nginx:1.14.2", 2).await;
    kubectl
        .run(&["rollout", "pause", &format!("deploy/{NAME}")])
        .await
        .success();
    new_image(&kubectl).await;
    eventually(
        "the paused template seen",
        Duration::from_secs(10),
        || async {
            let d = sandbox.object("apps/v1", "Deployment", NS, NAME)?;
            (d["status"]["observedGeneration"] == d["metadata"]["generation"]).then_some(())
        },
    )
    .await;
    kubectl
        .run(&["scale", "rs", &old, "--replicas=3"])
        .await
        .success();
    sized(
        &sandbox,
        "the paused one put back",
        &[("nginx:1.14.2", 2), ("nginx:bad", 0)],
        2,
    )
    .await;
}

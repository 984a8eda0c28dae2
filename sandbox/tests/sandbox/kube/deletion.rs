//! Deletion as a cluster does it, through kubectl: a namespace terminates
//! (refusing new content) while its controller empties it, a foreground
//! deletion waits for the object's dependents and their finalizers, and
//! generated names stay within 63 characters.

use std::time::Duration;

use chatops_sandbox::kube::KubeSandbox;
use serde_json::{Value, json};

use super::helpers::{Kubectl, count, empty, eventually, http, manifest, temp_dir};

const TEAM: &str = "team-a";

fn json_of(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// Every stored object of the kinds a namespace's Deployment leaves, in
/// `namespace`.
fn content(sandbox: &KubeSandbox, namespace: &str) -> usize {
    [
        ("apps/v1", "Deployment"),
        ("apps/v1", "ReplicaSet"),
        ("v1", "Pod"),
        ("v1", "ConfigMap"),
    ]
    .iter()
    .map(|(v, k)| sandbox.objects(v, k, namespace).len())
    .sum()
}

#[tokio::test]
async fn a_deleted_namespace_terminates_refusing_new_content_until_its_controller_empties_it() {
    let (sandbox, kubectl) = empty().await;
    kubectl.run(&["create", "namespace", TEAM]).await.success();
    kubectl
        .run(&[
            "create",
            "deployment",
            "web",
            "--image=nginx:1.27",
            "--replicas=2",
            "-n",
            TEAM,
        ])
        .await
        .success();
    kubectl
        .run(&["create", "configmap", "settings", "-n", TEAM])
        .await
        .success();
    eventually("the deployment's pods", Duration::from_secs(10), || async {
        (sandbox.objects("v1", "Pod", TEAM).len() == 2).then_some(())
    })
    .await;

    // As a lagging controller manager leaves it: Terminating, still full.
    sandbox.hold_controllers();
    let (code, answer) = http(
        &sandbox,
        "DELETE",
        &format!("/api/v1/namespaces/{TEAM}"),
        "",
        "",
    )
    .await;
    assert_eq!(code, 200, "{answer}");
    assert_eq!(
        answer["kind"], "Namespace",
        "the namespace, not a Status: {answer}"
    );
    assert_eq!(answer["status"]["phase"], "Terminating");
    assert!(
        answer["metadata"]["deletionTimestamp"].is_string(),
        "{answer}"
    );
    assert_eq!(answer["spec"]["finalizers"], json!(["kubernetes"]));
    let out = kubectl.run(&["get", "namespace", TEAM]).await.success();
    let row: Vec<&str> = out
        .stdout
        .lines()
        .nth(1)
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        row.get(..2),
        Some(&[TEAM, "Terminating"][..]),
        "{}",
        out.stdout
    );
    assert_eq!(content(&sandbox, TEAM), 1 + 1 + 2 + 1);

    let dir = temp_dir();
    let path = dir.path().join("web2.yaml");
    let web2 = manifest("nginx-deployment.yaml")
        .replace("nginx-deployment", "web2")
        .replace("namespace: default", "namespace: team-a");
    std::fs::write(&path, web2).expect("write the manifest");
    let out = kubectl
        .run(&["create", "-f", path.to_str().expect("utf-8 path")])
        .await;
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert!(
        out.stderr.contains("(Forbidden)")
            && out.stderr.contains(
                "deployments.apps \"web2\" is forbidden: unable to create new content in namespace team-a because it is being terminated"
            ),
        "{}",
        out.stderr
    );
    let (code, status) = http(
        &sandbox,
        "POST",
        &format!("/api/v1/namespaces/{TEAM}/configmaps"),
        "application/json",
        r#"{"metadata":{"generateName":"late-"}}"#,
    )
    .await;
    assert_eq!(code, 403, "{status}");
    assert_eq!(status["reason"], "Forbidden");
    assert_eq!(
        status["details"],
        json!({"name": "late-", "kind": "configmaps", "causes": [{
            "reason": "NamespaceTerminating",
            "message": "namespace team-a is being terminated",
            "field": "metadata.namespace",
        }]})
    );

    // Deleted again, it is answered as it is, and `--wait` returns once the
    // namespace controller has emptied it and it is gone.
    let waiting = kubectl.spawn(&["delete", "namespace", TEAM, "--wait"]);
    let path = format!("/api/v1/namespaces/{TEAM}");
    eventually("kubectl's DELETE", Duration::from_secs(30), || async {
        (count(&sandbox.requests(), "DELETE", &path) == 2).then_some(())
    })
    .await;
    assert!(sandbox.object("v1", "Namespace", "", TEAM).is_some());
    sandbox.release_controllers();
    let out = tokio::time::timeout(Duration::from_secs(30), waiting.wait_with_output())
        .await
        .expect("kubectl returns once the namespace is gone")
        .expect("kubectl runs");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("namespace \"{TEAM}\" deleted")
    );
    assert!(sandbox.object("v1", "Namespace", "", TEAM).is_none());
    assert_eq!(content(&sandbox, TEAM), 0);
    assert_eq!(sandbox.objects("v1", "Event", TEAM).len(), 0);
    kubectl.run(&["create", "namespace", TEAM]).await.success();
}

#[tokio::test]
async fn a_foreground_deletion_keeps_the_deployment_until_its_replica_sets_and_pods_are_gone() {
    let sandbox = KubeSandbox::builder()
        .rollout(Duration::ZERO)
        .seed_yaml(&manifest("nginx-deployment.yaml"))
        .start()
        .await
        .expect("start the sandbox");
    let kubectl = Kubectl::new(&sandbox.url());
    let pods = || sandbox.objects("v1", "Pod", "default");
    let sets = || sandbox.objects("apps/v1", "ReplicaSet", "default");
    eventually("the rollout", Duration::from_secs(10), || async {
        (pods().len() == 2).then_some(())
    })
    .await;
    // Someone else's finalizer holds the ReplicaSet once deleted.
    let rs = sets()[0]["metadata"]["name"]
        .as_str()
        .expect("a name")
        .to_owned();
    kubectl
        .run(&[
            "patch",
            "rs",
            &rs,
            "-p",
            r#"{"metadata":{"finalizers":["example.com/hold"]}}"#,
        ])
        .await
        .success();

    sandbox.hold_controllers();
    let out = kubectl
        .run(&[
            "delete",
            "deployment",
            "nginx-deployment",
            "--cascade=foreground",
            "--wait=false",
        ])
        .await
        .success();
    assert!(out.stdout.contains("deleted"), "{}", out.stdout);
    let get = async || {
        json_of(
            &kubectl
                .run(&["get", "deployment", "nginx-deployment", "-o", "json"])
                .await
                .success()
                .stdout,
        )
    };
    let d = get().await;
    assert!(d["metadata"]["deletionTimestamp"].is_string(), "{d}");
    assert_eq!(d["metadata"]["finalizers"], json!(["foregroundDeletion"]));
    assert_eq!(d["metadata"]["deletionGracePeriodSeconds"], 0);

    // The garbage collector deletes the ReplicaSet in the foreground too,
    // then its Pods; the held ReplicaSet holds the Deployment.
    sandbox.release_controllers();
    eventually("the pods to go", Duration::from_secs(10), || async {
        pods().is_empty().then_some(())
    })
    .await;
    // Its own dependents gone, the ReplicaSet loses `foregroundDeletion`
    // but not the other finalizer.
    let held = &sets()[0];
    assert!(held["metadata"]["deletionTimestamp"].is_string(), "{held}");
    assert_eq!(held["metadata"]["finalizers"], json!(["example.com/hold"]));
    assert!(get().await["metadata"]["deletionTimestamp"].is_string());

    kubectl
        .run(&[
            "patch",
            "rs",
            &rs,
            "--type=json",
            "-p",
            r#"[{"op":"remove","path":"/metadata/finalizers/0"}]"#,
        ])
        .await
        .success();
    kubectl
        .run(&[
            "wait",
            "--for=delete",
            "deployment/nginx-deployment",
            "--timeout=10s",
        ])
        .await
        .success();
    assert!(sets().is_empty());
    assert!(pods().is_empty());
}

#[tokio::test]
async fn a_long_generate_name_is_cut_to_58_characters_before_its_random_suffix() {
    let sandbox = KubeSandbox::builder()
        .start()
        .await
        .expect("start the sandbox");
    let kubectl = Kubectl::new(&sandbox.url());
    let dir = temp_dir();
    let path = dir.path().join("cm.json");
    let prefix = "a".repeat(250);
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": prefix}});
    std::fs::write(&path, cm.to_string()).expect("write the manifest");
    let out = kubectl
        .run(&[
            "create",
            "-f",
            path.to_str().expect("utf-8 path"),
            "-o",
            "jsonpath={.metadata.name}",
        ])
        .await
        .success();
    let name = out.stdout.trim();
    assert_eq!(name.len(), 63, "{name}");
    assert!(
        name.starts_with(&prefix[..58]) && !name[58..].contains('a'),
        "{name}"
    );
}

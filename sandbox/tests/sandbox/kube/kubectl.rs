//! The issue's command list, run with the real kubectl against the
//! sandbox, checking what kubectl prints and the state it leaves.

use std::time::Duration;

use chatops_sandbox::kube::KubeSandbox;
use serde_json::Value;

use super::helpers::{BOT, Kubectl, count, empty, eventually, rbac_builder, resources, temp_dir};

const NS: &str = "default";
const NAME: &str = "nginx-deployment";

fn deployment(sandbox: &KubeSandbox) -> Value {
    sandbox
        .object("apps/v1", "Deployment", NS, NAME)
        .expect("the deployment exists")
}

fn image(d: &Value) -> &str {
    d["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or("")
}

/// Owned ReplicaSets as (revision, image, replicas), by revision.
fn replica_sets(sandbox: &KubeSandbox) -> Vec<(u64, String, i64)> {
    let d = deployment(sandbox);
    let uid = d["metadata"]["uid"].as_str().unwrap_or("").to_owned();
    let mut out: Vec<(u64, String, i64)> = sandbox
        .objects("apps/v1", "ReplicaSet", NS)
        .into_iter()
        .filter(|rs| rs["metadata"]["ownerReferences"][0]["uid"] == uid.as_str())
        .map(|rs| {
            (
                rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
                    .as_str()
                    .and_then(|r| r.parse().ok())
                    .unwrap_or(0),
                image(&rs).to_owned(),
                rs["spec"]["replicas"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    out.sort();
    out
}

/// The sandbox most tests here start from: `nginx-deployment.yaml`, its
/// rollouts done at once.
fn nginx_sandbox() -> chatops_sandbox::kube::KubeSandboxBuilder {
    KubeSandbox::builder()
        .rollout(Duration::ZERO)
        .seed_yaml(&super::helpers::manifest("nginx-deployment.yaml"))
}

/// Waits until the controller has finished rolling the deployment out.
async fn rolled_out(sandbox: &KubeSandbox) {
    eventually(
        "the rollout to complete",
        Duration::from_secs(10),
        || async {
            let d = deployment(sandbox);
            let done = d["status"]["observedGeneration"] == d["metadata"]["generation"]
                && d["status"]["updatedReplicas"] == d["spec"]["replicas"]
                && d["status"]["availableReplicas"] == d["spec"]["replicas"]
                && d["status"]["replicas"] == d["spec"]["replicas"];
            done.then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn the_issues_kubectl_commands_work_unmodified_and_leave_the_state_a_cluster_would() {
    let (sandbox, kubectl) = empty().await;
    let manifest = resources().join("nginx-deployment.yaml");
    let manifest = manifest.to_str().expect("utf-8 path");

    // apply: created with the last-applied annotation and the defaults.
    let out = kubectl.run(&["apply", "-f", manifest]).await.success();
    assert_eq!(
        out.stdout.trim(),
        "deployment.apps/nginx-deployment created"
    );
    assert!(out.stderr.is_empty(), "no warnings: {}", out.stderr);
    let d = deployment(&sandbox);
    assert_eq!(d["spec"]["replicas"], 2);
    assert_eq!(d["metadata"]["generation"], 1);
    assert!(
        d["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .is_string()
    );
    assert_eq!(
        d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"],
        "25%"
    );
    rolled_out(&sandbox).await;

    // get: the server-side table, then JSON.
    let out = kubectl.run(&["get", "deployments"]).await.success();
    let lines: Vec<Vec<&str>> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines[0],
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
        "{}",
        out.stdout
    );
    assert_eq!(
        lines[1][..4],
        ["nginx-deployment", "2/2", "2", "2"],
        "{}",
        out.stdout
    );
    assert!(lines[1][4].ends_with('s'), "an age: {}", out.stdout);
    let out = kubectl
        .run(&["get", "deployments", "-o", "json"])
        .await
        .success();
    let list: Value = serde_json::from_str(&out.stdout).expect("kubectl printed JSON");
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(list["items"][0]["kind"], "Deployment");
    assert_eq!(list["items"][0]["metadata"]["name"], NAME);
    assert_eq!(list["items"][0]["status"]["readyReplicas"], 2);

    // scale goes through the scale subresource.
    let out = kubectl
        .run(&["scale", "deployment", NAME, "--replicas=5"])
        .await
        .success();
    assert_eq!(out.stdout.trim(), "deployment.apps/nginx-deployment scaled");
    assert_eq!(deployment(&sandbox)["spec"]["replicas"], 5);
    assert_eq!(
        count(
            &sandbox.requests(),
            "PATCH",
            "/deployments/nginx-deployment/scale"
        ),
        1
    );
    rolled_out(&sandbox).await;

    // set image starts a rollout that `rollout status` waits for: the
    // rollout is held until kubectl is watching, then released.
    sandbox.set_rollout(Duration::from_secs(3600));
    let out = kubectl
        .run(&[
            "set",
            "image",
            "deployment/nginx-deployment",
            "nginx=nginx:1.21",
        ])
        .await
        .success();
    assert_eq!(
        out.stdout.trim(),
        "deployment.apps/nginx-deployment image updated"
    );
    let d = deployment(&sandbox);
    assert_eq!(image(&d), "nginx:1.21");
    assert_eq!(d["metadata"]["generation"], 3);
    // The controller has seen the change (and will take its time).
    eventually(
        "the new generation to be observed",
        Duration::from_secs(10),
        || async {
            let d = deployment(&sandbox);
            (d["status"]["observedGeneration"] == 3).then_some(())
        },
    )
    .await;
    let status = kubectl.spawn(&[
        "rollout",
        "status",
        "deployment/nginx-deployment",
        "--timeout=60s",
    ]);
    eventually(
        "kubectl to watch the deployment",
        Duration::from_secs(30),
        || async {
            sandbox
                .requests()
                .iter()
                .any(|r| r.path.ends_with("/deployments") && r.query.contains("watch=true"))
                .then_some(())
        },
    )
    .await;
    sandbox.set_rollout(Duration::ZERO);
    let status = tokio::time::timeout(Duration::from_secs(90), status.wait_with_output())
        .await
        .expect("rollout status returns")
        .expect("rollout status ran");
    let stdout = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(
        stdout.starts_with("Waiting for deployment \"nginx-deployment\" rollout to finish: 0 out of 5 new replicas have been updated...\n"),
        "it waited: {stdout}"
    );
    assert!(
        stdout.ends_with("deployment \"nginx-deployment\" successfully rolled out\n"),
        "{stdout}"
    );
    assert_eq!(
        replica_sets(&sandbox),
        [
            (1, "nginx:1.14.2".to_owned(), 0),
            (2, "nginx:1.21".to_owned(), 5)
        ]
    );

    // rollout restart: a new template (restartedAt), a new revision.
    let out = kubectl
        .run(&["rollout", "restart", "deployment/nginx-deployment"])
        .await
        .success();
    assert_eq!(
        out.stdout.trim(),
        "deployment.apps/nginx-deployment restarted"
    );
    let d = deployment(&sandbox);
    assert!(
        d["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .is_string()
    );
    let out = kubectl
        .run(&[
            "rollout",
            "status",
            "deployment/nginx-deployment",
            "--timeout=60s",
        ])
        .await
        .success();
    assert!(
        out.stdout.ends_with("successfully rolled out\n"),
        "{}",
        out.stdout
    );
    assert_eq!(
        deployment(&sandbox)["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "3"
    );

    // rollout history lists the ReplicaSets' revisions, with the change
    // cause the controller copies from the Deployment to its newest one.
    kubectl
        .run(&[
            "annotate",
            "deployment",
            NAME,
            "kubernetes.io/change-cause=restart for config",
        ])
        .await
        .success();
    eventually(
        "the change cause on the newest ReplicaSet",
        Duration::from_secs(10),
        || async {
            let sets = sandbox.objects("apps/v1", "ReplicaSet", NS);
            sets.iter()
                .any(|rs| {
                    rs["metadata"]["annotations"]["kubernetes.io/change-cause"]
                        == "restart for config"
                })
                .then_some(())
        },
    )
    .await;
    let out = kubectl
        .run(&["rollout", "history", "deployment/nginx-deployment"])
        .await
        .success();
    let rows: Vec<&str> = out
        .stdout
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(
        rows,
        [
            "deployment.apps/nginx-deployment",
            "REVISION  CHANGE-CAUSE",
            "1         <none>",
            "2         <none>",
            "3         restart for config"
        ],
        "{}",
        out.stdout
    );

    // rollout undo: back to revision 2's template, which becomes revision 4.
    let out = kubectl
        .run(&["rollout", "undo", "deployment/nginx-deployment"])
        .await
        .success();
    assert_eq!(
        out.stdout.trim(),
        "deployment.apps/nginx-deployment rolled back"
    );
    rolled_out(&sandbox).await;
    let d = deployment(&sandbox);
    assert!(
        d["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .is_null()
    );
    assert_eq!(image(&d), "nginx:1.21");
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "4"
    );
    let revisions: Vec<u64> = replica_sets(&sandbox).iter().map(|(r, _, _)| *r).collect();
    assert_eq!(revisions, [1, 3, 4]);
    let out = kubectl
        .run(&["rollout", "history", "deployment/nginx-deployment"])
        .await
        .success();
    assert!(out.stdout.contains("\n4         <none>"), "{}", out.stdout);

    // patch, JSON and merge; a patch that changes nothing writes nothing.
    let out = kubectl
        .run(&[
            "patch",
            "deployment",
            NAME,
            "--type=json",
            "-p",
            r#"[{"op":"replace","path":"/spec/replicas","value":3}]"#,
        ])
        .await
        .success();
    assert_eq!(
        out.stdout.trim(),
        "deployment.apps/nginx-deployment patched"
    );
    assert_eq!(deployment(&sandbox)["spec"]["replicas"], 3);
    let merge = r#"{"metadata":{"labels":{"tier":"web"}}}"#;
    let out = kubectl
        .run(&["patch", "deployment", NAME, "--type=merge", "-p", merge])
        .await
        .success();
    assert_eq!(
        out.stdout.trim(),
        "deployment.apps/nginx-deployment patched"
    );
    let d = deployment(&sandbox);
    assert_eq!(d["metadata"]["labels"]["tier"], "web");
    let out = kubectl
        .run(&["patch", "deployment", NAME, "--type=merge", "-p", merge])
        .await
        .success();
    assert_eq!(
        out.stdout.trim(),
        "deployment.apps/nginx-deployment patched (no change)"
    );
    assert_eq!(
        deployment(&sandbox)["metadata"]["resourceVersion"],
        d["metadata"]["resourceVersion"]
    );

    // apply of a changed manifest: a three-way strategic merge that keeps
    // what kubectl did not manage (the label) and merges the container.
    let dir = temp_dir();
    let changed = dir.path().join("nginx.yaml");
    let text = std::fs::read_to_string(manifest).expect("read the manifest");
    std::fs::write(
        &changed,
        text.replace("replicas: 2", "replicas: 4")
            .replace("nginx:1.14.2", "nginx:1.25"),
    )
    .expect("write the changed manifest");
    let out = kubectl
        .run(&["apply", "-f", changed.to_str().expect("utf-8 path")])
        .await
        .success();
    assert_eq!(
        out.stdout.trim(),
        "deployment.apps/nginx-deployment configured"
    );
    let d = deployment(&sandbox);
    assert_eq!(d["spec"]["replicas"], 4);
    assert_eq!(image(&d), "nginx:1.25");
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"],
        80
    );
    assert_eq!(d["metadata"]["labels"]["tier"], "web");
    rolled_out(&sandbox).await;

    // get of a missing deployment: the real NotFound.
    let out = kubectl.run(&["get", "deployment", "missing"]).await;
    assert_eq!(out.code, Some(1));
    assert_eq!(
        out.stderr.trim(),
        "Error from server (NotFound): deployments.apps \"missing\" not found"
    );

    // delete takes the ReplicaSets with it.
    let out = kubectl.run(&["delete", "deployment", NAME]).await.success();
    assert_eq!(
        out.stdout.trim(),
        "deployment.apps \"nginx-deployment\" deleted"
    );
    assert!(sandbox.object("apps/v1", "Deployment", NS, NAME).is_none());
    assert!(sandbox.objects("apps/v1", "ReplicaSet", NS).is_empty());
    let out = kubectl.run(&["get", "deployments"]).await.success();
    assert_eq!(
        out.stderr.trim(),
        "No resources found in default namespace."
    );
}

#[tokio::test]
async fn kubectl_acting_as_the_bot_is_held_to_the_least_privilege_role() {
    let sandbox = rbac_builder(Duration::ZERO)
        .anonymous_admin()
        .start()
        .await
        .expect("start the sandbox");
    let bot = Kubectl::new(&sandbox.url()).acting_as(BOT);
    let admin = Kubectl::new(&sandbox.url());

    let out = bot
        .run(&[
            "patch",
            "deployment",
            NAME,
            "-p",
            r#"{"spec":{"replicas":3}}"#,
        ])
        .await
        .success();
    assert_eq!(
        out.stdout.trim(),
        "deployment.apps/nginx-deployment patched"
    );
    // `kubectl scale` goes through the scale subresource, which the bot's
    // role leaves out (its worker patches the deployment).
    let out = bot
        .run(&["scale", "deployment", NAME, "--replicas=4"])
        .await;
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert!(
        out.stderr
            .contains("cannot patch resource \"deployments/scale\" in API group \"apps\""),
        "{}",
        out.stderr
    );

    let out = bot.run(&["delete", "deployment", NAME]).await;
    assert_eq!(out.code, Some(1));
    assert_eq!(
        out.stderr.trim(),
        "Error from server (Forbidden): deployments.apps \"nginx-deployment\" is forbidden: User \"system:serviceaccount:default:chatops-bot\" cannot delete resource \"deployments\" in API group \"apps\" in the namespace \"default\""
    );
    assert!(sandbox.object("apps/v1", "Deployment", NS, NAME).is_some());

    let out = bot.run(&["get", "configmaps"]).await;
    assert!(
        out.stderr.contains("configmaps is forbidden: User \"system:serviceaccount:default:chatops-bot\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"default\""),
        "{}",
        out.stderr
    );

    // Pods are held to the role like any resource: the bot's has none.
    let out = bot.run(&["get", "pods"]).await;
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert!(
        out.stderr.contains("pods is forbidden: User \"system:serviceaccount:default:chatops-bot\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""),
        "{}",
        out.stderr
    );
    // The controller makes the Pods of the scale above in its own time.
    ready_pods(&sandbox, 3).await;
    let out = admin.run(&["get", "pods", "--no-headers"]).await.success();
    assert_eq!(out.stdout.lines().count(), 3, "{}", out.stdout);

    // The admin can read the RBAC objects the role came from.
    let out = admin
        .run(&["get", "role", "chatops-bot", "-o", "json"])
        .await
        .success();
    let role: Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(role["rules"].as_array().map(Vec::len), Some(2));
    let out = admin.run(&["get", "rolebindings"]).await.success();
    assert!(out.stdout.contains("Role/chatops-bot"), "{}", out.stdout);

    // A user no binding names may do nothing.
    let out = Kubectl::new(&sandbox.url())
        .acting_as("mallory")
        .run(&["get", "deployments"])
        .await;
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert!(
        out.stderr.contains("deployments.apps is forbidden: User \"mallory\" cannot list resource \"deployments\" in API group \"apps\" in the namespace \"default\""),
        "{}",
        out.stderr
    );
}

/// `kubectl get OBJECT -o json`, parsed.
async fn get_json(kubectl: &Kubectl, object: &str) -> Value {
    let out = kubectl.run(&["get", object, "-o", "json"]).await.success();
    serde_json::from_str(&out.stdout).expect("kubectl printed JSON")
}

/// An object as read back, without what the server sets on its own (ids,
/// times, versions, the controller's status), for comparing two servers'
/// copies of one object.
fn comparable(mut object: Value) -> Value {
    if let Some(meta) = object["metadata"].as_object_mut() {
        for key in ["uid", "creationTimestamp", "resourceVersion"] {
            meta.remove(key);
        }
        if let Some(annotations) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
            annotations.remove("deployment.kubernetes.io/revision");
            if annotations.is_empty() {
                meta.remove("annotations");
            }
        }
    }
    if object["kind"] != "Namespace"
        && let Some(map) = object.as_object_mut()
    {
        map.remove("status");
    }
    object
}

/// Whether every field of `sent` is in `stored` with the same value
/// (`null`s, which Go prints for unset times, excepted).
fn contains(stored: &Value, sent: &Value) -> bool {
    match (stored, sent) {
        (_, Value::Null) => true,
        (Value::Object(s), Value::Object(w)) => w
            .iter()
            .all(|(k, v)| v.is_null() || s.get(k).is_some_and(|sv| contains(sv, v))),
        (Value::Array(s), Value::Array(w)) => {
            s.len() == w.len() && s.iter().zip(w).all(|(a, b)| contains(a, b))
        }
        (s, w) => s == w,
    }
}

#[tokio::test]
async fn kubectl_create_generators_send_protobuf_that_is_stored_as_their_json_would_be() {
    // Two sandboxes: one gets each generator's protobuf body, the other
    // the JSON `--dry-run=client -o json` prints for the same command, sent
    // with `create -f` (which sends JSON). Both must store the same object.
    let by_protobuf = KubeSandbox::builder()
        .rollout(Duration::ZERO)
        .start()
        .await
        .expect("start the sandbox");
    let by_json = KubeSandbox::builder()
        .rollout(Duration::ZERO)
        .start()
        .await
        .expect("start the sandbox");
    let proto = Kubectl::new(&by_protobuf.url());
    let json = Kubectl::new(&by_json.url());
    let dir = temp_dir();
    let generators: &[(&str, &[&str])] = &[
        ("namespace/team-a", &["namespace", "team-a"]),
        (
            "deployment/web",
            &[
                "deployment",
                "web",
                "--image=nginx:1.25",
                "--replicas=3",
                "--port=80",
            ],
        ),
        (
            "deployment/api",
            &["deployment", "api", "--image=nginx:1.25"],
        ),
        (
            "configmap/c1",
            &[
                "configmap",
                "c1",
                "--from-literal=a=b",
                "--from-literal=c=d",
            ],
        ),
        ("serviceaccount/s1", &["serviceaccount", "s1"]),
        (
            "role/r1",
            &[
                "role",
                "r1",
                "--verb=get",
                "--verb=list",
                "--resource=deployments",
                "--resource=configmaps",
                "--resource-name=x",
            ],
        ),
        (
            "rolebinding/rb1",
            &[
                "rolebinding",
                "rb1",
                "--role=r1",
                "--user=bob",
                "--group=devs",
                "--serviceaccount=default:s1",
            ],
        ),
        (
            "clusterrole/cr1",
            &[
                "clusterrole",
                "cr1",
                "--verb=get",
                "--resource=namespaces",
                "--non-resource-url=/logs",
            ],
        ),
        (
            "clusterrolebinding/crb1",
            &[
                "clusterrolebinding",
                "crb1",
                "--clusterrole=cr1",
                "--user=alice",
            ],
        ),
    ];
    for (i, (object, generator)) in generators.iter().enumerate() {
        let with = |extra: &[&'static str]| {
            let mut args = vec!["create"];
            args.extend_from_slice(generator);
            args.extend_from_slice(extra);
            args
        };
        let printed = proto
            .run(&with(&["--dry-run=client", "-o", "json"]))
            .await
            .success()
            .stdout;
        let sent: Value = serde_json::from_str(&printed).expect("kubectl printed JSON");
        let out = proto.run(&with(&[])).await.success();
        assert!(
            out.stdout.trim().ends_with(" created"),
            "{object}: {}",
            out.stdout
        );
        let file = dir.path().join(format!("{i}.json"));
        std::fs::write(&file, &printed).expect("write the printed object");
        json.run(&["create", "-f", file.to_str().expect("utf-8 path")])
            .await
            .success();

        let (from_protobuf, from_json) = (
            get_json(&proto, object).await,
            get_json(&json, object).await,
        );
        assert!(
            contains(&from_protobuf, &sent),
            "{object}: what kubectl meant to send is stored\nsent: {sent:#}\nstored: {from_protobuf:#}"
        );
        assert_eq!(
            comparable(from_protobuf),
            comparable(from_json),
            "{object}: the protobuf and JSON bodies store the same object"
        );
    }
}

#[tokio::test]
async fn kubectl_auth_reconcile_creates_then_updates_roles_and_bindings() {
    let (sandbox, kubectl) = empty().await;
    let dir = temp_dir();
    let file = dir.path().join("role.yaml");
    let manifest = |verbs: &str| {
        format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: reader\n  namespace: default\n  labels: {{app: demo}}\nrules:\n- apiGroups: [apps]\n  resources: [deployments]\n  verbs: [{verbs}]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: reader\n  namespace: default\nsubjects:\n- kind: User\n  name: carol\n  apiGroup: rbac.authorization.k8s.io\nroleRef:\n  kind: Role\n  name: reader\n  apiGroup: rbac.authorization.k8s.io\n"
        )
    };
    let path = file.to_str().expect("utf-8 path");

    // Created (protobuf POSTs) ...
    std::fs::write(&file, manifest("get, list")).expect("write the manifest");
    let out = kubectl
        .run(&["auth", "reconcile", "-f", path])
        .await
        .success();
    assert_eq!(
        out.stdout.trim(),
        "role.rbac.authorization.k8s.io/reader reconciled\nrolebinding.rbac.authorization.k8s.io/reader reconciled"
    );
    let role = sandbox
        .object("rbac.authorization.k8s.io/v1", "Role", NS, "reader")
        .expect("the role exists");
    assert_eq!(
        role["rules"][0]["verbs"],
        serde_json::json!(["get", "list"])
    );
    assert_eq!(role["metadata"]["labels"]["app"], "demo");
    let binding = sandbox
        .object("rbac.authorization.k8s.io/v1", "RoleBinding", NS, "reader")
        .expect("the binding exists");
    assert_eq!(binding["subjects"][0]["name"], "carol");
    assert_eq!(binding["roleRef"]["name"], "reader");

    // ... then updated (a protobuf PUT of the object it read, timestamp
    // and all) with the missing verb added.
    std::fs::write(&file, manifest("get, list, watch")).expect("write the manifest");
    kubectl
        .run(&["auth", "reconcile", "-f", path])
        .await
        .success();
    assert_eq!(count(&sandbox.requests(), "PUT", "/roles/reader"), 1);
    let updated = sandbox
        .object("rbac.authorization.k8s.io/v1", "Role", NS, "reader")
        .expect("the role exists");
    let verbs: Vec<&Value> = updated["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["verbs"].as_array().into_iter().flatten())
        .collect();
    assert_eq!(verbs, ["get", "list", "watch"]);
    assert_eq!(updated["metadata"]["uid"], role["metadata"]["uid"]);
    assert_eq!(
        updated["metadata"]["creationTimestamp"],
        role["metadata"]["creationTimestamp"]
    );
}

#[tokio::test]
async fn kubectl_auth_can_i_answers_from_the_sandboxs_rbac_for_whoever_asks() {
    let sandbox = rbac_builder(Duration::ZERO)
        .anonymous_admin()
        .start()
        .await
        .expect("start the sandbox");
    let admin = Kubectl::new(&sandbox.url());
    let bot = Kubectl::new(&sandbox.url()).acting_as(BOT);
    let answer = |out: super::helpers::Output| (out.code, out.stdout.trim().to_owned());
    let yes = (Some(0), "yes".to_owned());
    let no = (Some(1), "no".to_owned());

    assert_eq!(
        answer(admin.run(&["auth", "can-i", "delete", "deployments"]).await),
        yes
    );
    assert_eq!(
        answer(bot.run(&["auth", "can-i", "patch", "deployments"]).await),
        yes
    );
    assert_eq!(
        answer(bot.run(&["auth", "can-i", "delete", "deployments"]).await),
        no
    );
    // The role is in `default` only.
    assert_eq!(
        answer(
            bot.run(&["auth", "can-i", "patch", "deployments", "-n", "prod"])
                .await
        ),
        no
    );
    assert_eq!(
        answer(
            bot.run(&[
                "auth",
                "can-i",
                "patch",
                "deployments",
                "--subresource=scale"
            ])
            .await
        ),
        no,
        "the bot scales by patching the deployment; its role has no subresource"
    );
    // `--as` on the command line, as a person would type it.
    assert_eq!(
        answer(
            admin
                .run(&[
                    "auth",
                    "can-i",
                    "list",
                    "replicasets",
                    &format!("--as={BOT}")
                ])
                .await
        ),
        yes
    );
    let asked = sandbox
        .requests()
        .iter()
        .filter(|r| r.path == "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews")
        .count();
    assert_eq!(asked, 6, "every answer came from the server");

    // Access granted with kubectl's own generators counts at once.
    let mallory = Kubectl::new(&sandbox.url()).acting_as("mallory");
    assert_eq!(
        answer(mallory.run(&["auth", "can-i", "get", "configmaps"]).await),
        no
    );
    admin
        .run(&[
            "create",
            "role",
            "cm-reader",
            "--verb=get",
            "--resource=configmaps",
        ])
        .await
        .success();
    admin
        .run(&[
            "create",
            "rolebinding",
            "cm-reader",
            "--role=cm-reader",
            "--user=mallory",
        ])
        .await
        .success();
    assert_eq!(
        answer(mallory.run(&["auth", "can-i", "get", "configmaps"]).await),
        yes
    );
    assert_eq!(
        answer(mallory.run(&["auth", "can-i", "list", "configmaps"]).await),
        no
    );

    // --list: the bot's rules as a table.
    let out = bot.run(&["auth", "can-i", "--list"]).await.success();
    let row = |resource: &str| {
        out.stdout
            .lines()
            .find(|l| l.starts_with(&format!("{resource} ")))
            .unwrap_or_else(|| panic!("a {resource} row: {}", out.stdout))
            .trim_end()
    };
    for (resource, verbs) in [
        ("deployments.apps", "[get list patch]"),
        ("replicasets.apps", "[list]"),
    ] {
        let row = row(resource);
        assert!(row.ends_with(verbs), "{row}");
    }
    assert!(
        !out.stdout
            .lines()
            .any(|l| l.starts_with("deployments.apps/scale ")),
        "{}",
        out.stdout
    );

    // whoami: the impersonated identity, groups included.
    let out = bot.run(&["auth", "whoami"]).await.success();
    let rows: Vec<Vec<&str>> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[1], ["Username", BOT], "{}", out.stdout);
    assert_eq!(
        rows[2],
        [
            "Groups",
            "[system:serviceaccounts",
            "system:serviceaccounts:default",
            "system:authenticated]"
        ],
        "{}",
        out.stdout
    );
}

#[tokio::test]
async fn with_rbac_off_kubectl_auth_can_i_says_yes_to_everyone() {
    let sandbox = KubeSandbox::builder()
        .rollout(Duration::ZERO)
        .start()
        .await
        .expect("start the sandbox");
    let out = Kubectl::new(&sandbox.url())
        .acting_as("anyone")
        .run(&["auth", "can-i", "delete", "namespaces"])
        .await;
    assert_eq!(
        (out.code, out.stdout.trim()),
        (Some(0), "yes"),
        "{}",
        out.stderr
    );
    let out = Kubectl::new(&sandbox.url())
        .run(&["auth", "can-i", "get", "/logs"])
        .await;
    assert_eq!(
        (out.code, out.stdout.trim()),
        (Some(0), "yes"),
        "{}",
        out.stderr
    );
}

/// The rows of a `kubectl get` table, split on whitespace, header first.
fn rows(stdout: &str) -> Vec<Vec<String>> {
    stdout
        .lines()
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect()
}

/// The stored Pods, by name.
fn pods(sandbox: &KubeSandbox) -> Vec<Value> {
    sandbox.objects("v1", "Pod", NS)
}

/// Waits until the Pods number `n`, all Ready.
async fn ready_pods(sandbox: &KubeSandbox, n: usize) -> Vec<Value> {
    eventually(
        &format!("{n} ready pods"),
        Duration::from_secs(10),
        || async {
            let pods = pods(sandbox);
            let ready = pods.iter().all(|p| {
                p["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            });
            (pods.len() == n && ready).then_some(pods)
        },
    )
    .await
}

#[tokio::test]
async fn kubectl_sees_the_pods_of_each_replica_set_follow_scaling_deletion_and_rollouts() {
    let sandbox = nginx_sandbox().start().await.expect("start the sandbox");
    let kubectl = Kubectl::new(&sandbox.url());
    rolled_out(&sandbox).await;
    ready_pods(&sandbox, 2).await;

    let out = kubectl.run(&["get", "pods"]).await.success();
    let table = rows(&out.stdout);
    assert_eq!(
        table[0],
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        "{}",
        out.stdout
    );
    assert_eq!(table.len(), 3, "{}", out.stdout);
    let rs_name = &sandbox.objects("apps/v1", "ReplicaSet", NS)[0]["metadata"]["name"];
    let rs_name = rs_name.as_str().expect("a name").to_owned();
    for row in &table[1..] {
        let suffix = row[0]
            .strip_prefix(&format!("{rs_name}-"))
            .unwrap_or_else(|| panic!("{} is a pod of {rs_name}", row[0]));
        assert_eq!(suffix.len(), 5, "{}", row[0]);
        assert_eq!(row[1..4], ["1/1", "Running", "0"], "{}", out.stdout);
    }

    // One request for several kinds works as a whole, and -o wide shows
    // the node.
    let out = kubectl
        .run(&["get", "deploy,rs,pods", "-o", "wide"])
        .await
        .success();
    assert!(
        out.stdout.contains("deployment.apps/nginx-deployment")
            && out.stdout.contains(&format!("replicaset.apps/{rs_name}")),
        "{}",
        out.stdout
    );
    let pod_header = out
        .stdout
        .lines()
        .find(|l| l.starts_with("NAME") && l.contains("NODE"))
        .unwrap_or_else(|| panic!("a wide pod table: {}", out.stdout));
    assert_eq!(
        pod_header.split_whitespace().collect::<Vec<_>>(),
        [
            "NAME",
            "READY",
            "STATUS",
            "RESTARTS",
            "AGE",
            "IP",
            "NODE",
            "NOMINATED",
            "NODE",
            "READINESS",
            "GATES"
        ]
    );
    assert_eq!(
        out.stdout.matches("sandbox-node").count(),
        2,
        "{}",
        out.stdout
    );

    // A pod carries its ReplicaSet's template, owner and hash label.
    let pod = &pods(&sandbox)[0];
    assert_eq!(pod["metadata"]["ownerReferences"][0]["kind"], "ReplicaSet");
    assert_eq!(
        pod["metadata"]["ownerReferences"][0]["name"],
        rs_name.as_str()
    );
    assert_eq!(pod["metadata"]["ownerReferences"][0]["controller"], true);
    assert_eq!(pod["metadata"]["labels"]["app"], "nginx");
    assert!(
        rs_name.ends_with(
            pod["metadata"]["labels"]["pod-template-hash"]
                .as_str()
                .unwrap_or("-")
        )
    );
    assert_eq!(pod["spec"]["containers"][0]["image"], "nginx:1.14.2");

    // describe rs counts them.
    let out = kubectl.run(&["describe", "rs", &rs_name]).await.success();
    assert!(
        out.stdout
            .contains("Pods Status:    2 Running / 0 Waiting / 0 Succeeded / 0 Failed"),
        "{}",
        out.stdout
    );

    // Scaling up and down adds and removes pods.
    kubectl
        .run(&["scale", "deployment", NAME, "--replicas=4"])
        .await
        .success();
    ready_pods(&sandbox, 4).await;
    let out = kubectl
        .run(&["get", "pods", "--no-headers"])
        .await
        .success();
    assert_eq!(out.stdout.lines().count(), 4, "{}", out.stdout);
    kubectl
        .run(&["scale", "deployment", NAME, "--replicas=1"])
        .await
        .success();
    let left = ready_pods(&sandbox, 1).await;
    let out = kubectl.run(&["get", "pods"]).await.success();
    assert_eq!(rows(&out.stdout).len(), 2, "{}", out.stdout);
    assert!(
        out.stdout
            .contains(left[0]["metadata"]["name"].as_str().unwrap_or("-"))
    );

    // A deleted pod is replaced, as a ReplicaSet controller does.
    let gone = left[0]["metadata"]["name"]
        .as_str()
        .expect("a name")
        .to_owned();
    let out = kubectl.run(&["delete", "pod", &gone]).await.success();
    assert_eq!(out.stdout.trim(), format!("pod \"{gone}\" deleted"));
    let replaced = ready_pods(&sandbox, 1).await;
    assert_ne!(replaced[0]["metadata"]["name"], gone.as_str());

    // A rollout replaces them with pods of the new ReplicaSet.
    kubectl
        .run(&[
            "set",
            "image",
            "deployment/nginx-deployment",
            "nginx=nginx:1.25",
        ])
        .await
        .success();
    rolled_out(&sandbox).await;
    let now = ready_pods(&sandbox, 1).await;
    assert_eq!(now[0]["spec"]["containers"][0]["image"], "nginx:1.25");
    assert!(
        !now[0]["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .starts_with(&rs_name)
    );

    // Deleting the deployment takes its ReplicaSets' pods too.
    kubectl.run(&["delete", "deployment", NAME]).await.success();
    assert!(pods(&sandbox).is_empty());
    let out = kubectl.run(&["get", "pods"]).await.success();
    assert_eq!(
        out.stderr.trim(),
        "No resources found in default namespace."
    );
}

#[tokio::test]
async fn template_changes_faster_than_rollouts_leave_no_pod_without_its_replica_set() {
    let sandbox = KubeSandbox::builder()
        .rollout(Duration::from_millis(300))
        .seed_yaml(&super::helpers::manifest("nginx-deployment.yaml"))
        .start()
        .await
        .expect("start the sandbox");
    let kubectl = Kubectl::new(&sandbox.url());
    rolled_out(&sandbox).await;
    kubectl
        .run(&[
            "patch",
            "deployment",
            NAME,
            "-p",
            r#"{"spec":{"revisionHistoryLimit":1,"replicas":3}}"#,
        ])
        .await
        .success();
    for i in 0..6 {
        kubectl
            .run(&[
                "set",
                "env",
                &format!("deployment/{NAME}"),
                &format!("V={i}"),
            ])
            .await
            .success();
    }
    rolled_out(&sandbox).await;
    let pods = ready_pods(&sandbox, 3).await;
    let owners: Vec<String> = sandbox
        .objects("apps/v1", "ReplicaSet", NS)
        .iter()
        .map(|rs| {
            rs["metadata"]["uid"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    for pod in &pods {
        let owner = pod["metadata"]["ownerReferences"][0]["uid"]
            .as_str()
            .unwrap_or_default();
        assert!(
            owners.iter().any(|uid| uid == owner),
            "{} outlived its ReplicaSet",
            pod["metadata"]["name"]
        );
    }
}

#[tokio::test]
async fn kubectl_run_starts_a_pod_of_its_own() {
    let sandbox = KubeSandbox::builder()
        .start()
        .await
        .expect("start the sandbox");
    let kubectl = Kubectl::new(&sandbox.url());
    kubectl
        .run(&["run", "p1", "--image=nginx:1.25"])
        .await
        .success();
    let out = kubectl
        .run(&["wait", "--for=condition=Ready", "pod/p1", "--timeout=10s"])
        .await
        .success();
    assert!(
        out.stdout.contains("pod/p1 condition met"),
        "{}",
        out.stdout
    );
    let out = kubectl
        .run(&["get", "pod", "p1", "--no-headers"])
        .await
        .success();
    let row = &rows(&out.stdout)[0];
    assert_eq!(row[..4], ["p1", "1/1", "Running", "0"], "{}", out.stdout);
}

#[tokio::test]
async fn pods_of_an_unpullable_image_show_image_pull_back_off() {
    let sandbox = nginx_sandbox()
        .unpullable_image("nginx:bad")
        .start()
        .await
        .expect("start the sandbox");
    let kubectl = Kubectl::new(&sandbox.url());
    rolled_out(&sandbox).await;
    ready_pods(&sandbox, 2).await;
    kubectl
        .run(&[
            "set",
            "image",
            "deployment/nginx-deployment",
            "nginx=nginx:bad",
        ])
        .await
        .success();
    let waiting = || {
        pods(&sandbox)
            .into_iter()
            .filter(|p| p["spec"]["containers"][0]["image"] == "nginx:bad")
            .collect::<Vec<_>>()
    };
    eventually("pods of the new image", Duration::from_secs(10), || async {
        (!waiting().is_empty()).then_some(())
    })
    .await;
    let out = kubectl.run(&["get", "pods"]).await.success();
    let table = rows(&out.stdout);
    let backing_off: Vec<&Vec<String>> = table
        .iter()
        .filter(|r| r.get(2).is_some_and(|s| s == "ImagePullBackOff"))
        .collect();
    assert_eq!(backing_off.len(), waiting().len(), "{}", out.stdout);
    assert!(backing_off.iter().all(|r| r[1] == "0/1"), "{}", out.stdout);
    // The old pods keep serving, within maxUnavailable.
    assert!(
        table.iter().any(|r| r[1] == "1/1" && r[2] == "Running"),
        "{}",
        out.stdout
    );
    assert_eq!(waiting()[0]["status"]["phase"], "Pending");
}

#[tokio::test]
async fn kubectl_reads_the_events_the_controllers_record() {
    let sandbox = nginx_sandbox().start().await.expect("start the sandbox");
    let kubectl = Kubectl::new(&sandbox.url());
    rolled_out(&sandbox).await;
    ready_pods(&sandbox, 2).await;
    kubectl
        .run(&["scale", "deployment", NAME, "--replicas=3"])
        .await
        .success();
    ready_pods(&sandbox, 3).await;
    let rs_name = sandbox.objects("apps/v1", "ReplicaSet", NS)[0]["metadata"]["name"]
        .as_str()
        .expect("a name")
        .to_owned();

    let out = kubectl.run(&["get", "events"]).await.success();
    let table = rows(&out.stdout);
    assert_eq!(
        table[0],
        ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
        "{}",
        out.stdout
    );
    let scaled = format!("Scaled up replica set {rs_name} from 2 to 3");
    assert!(
        out.stdout.lines().any(|l| l.contains("ScalingReplicaSet")
            && l.contains("deployment/nginx-deployment")
            && l.contains(&scaled)),
        "{}",
        out.stdout
    );
    assert_eq!(
        out.stdout
            .lines()
            .filter(|l| l.contains("SuccessfulCreate")
                && l.contains(&format!("replicaset/{rs_name}"))
                && l.contains("Created pod: "))
            .count(),
        3,
        "{}",
        out.stdout
    );

    // describe finds them by the involved object.
    let out = kubectl
        .run(&["describe", "deployment", NAME])
        .await
        .success();
    let events = out
        .stdout
        .split("Events:")
        .nth(1)
        .unwrap_or_else(|| panic!("an Events section: {}", out.stdout));
    assert!(!events.contains("<none>"), "{}", out.stdout);
    assert!(
        events.lines().any(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words.starts_with(&["Normal", "ScalingReplicaSet"])
                && words.contains(&"deployment-controller")
                && l.ends_with(&scaled)
        }),
        "{}",
        out.stdout
    );
    assert!(
        !events.contains("SuccessfulCreate"),
        "the ReplicaSet's events are its own: {}",
        out.stdout
    );
    let out = kubectl.run(&["describe", "rs", &rs_name]).await.success();
    let events = out.stdout.split("Events:").nth(1).unwrap_or("");
    assert_eq!(
        events
            .lines()
            .filter(|l| l.contains("SuccessfulCreate") && l.contains("replicaset-controller"))
            .count(),
        3,
        "{}",
        out.stdout
    );

    // Scaling down deletes pods and says so.
    kubectl
        .run(&["scale", "deployment", NAME, "--replicas=1"])
        .await
        .success();
    ready_pods(&sandbox, 1).await;
    let out = kubectl
        .run(&[
            "get",
            "events",
            "--field-selector",
            "reason=SuccessfulDelete",
        ])
        .await
        .success();
    assert_eq!(
        out.stdout
            .lines()
            .filter(|l| l.contains("Deleted pod: "))
            .count(),
        2,
        "{}",
        out.stdout
    );
}

#[tokio::test]
async fn an_invalid_resource_quantity_is_refused_as_a_cluster_refuses_it() {
    let sandbox = nginx_sandbox().start().await.expect("start the sandbox");
    let kubectl = Kubectl::new(&sandbox.url());
    rolled_out(&sandbox).await;
    ready_pods(&sandbox, 2).await;
    let before = deployment(&sandbox);
    let limits = |cpu: &str| {
        format!(
            r#"{{"spec":{{"template":{{"spec":{{"containers":[{{"name":"nginx","resources":{{"limits":{{"cpu":{cpu}}}}}}}]}}}}}}}}"#
        )
    };

    let out = kubectl
        .run(&[
            "patch",
            "deploy/nginx-deployment",
            "-p",
            &limits("\"banana\""),
        ])
        .await;
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert_eq!(
        out.stderr.trim(),
        "Error from server (BadRequest): Deployment in version \"v1\" cannot be handled as a Deployment: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    );
    assert_eq!(
        deployment(&sandbox)["metadata"]["resourceVersion"],
        before["metadata"]["resourceVersion"]
    );

    // The same on create (apply) and update (replace).
    let dir = temp_dir();
    let bad = dir.path().join("bad.yaml");
    let text = super::helpers::manifest("nginx-deployment.yaml")
        .replace("name: nginx-deployment", "name: quantities")
        .replace(
            "          ports:",
            "          resources:\n            requests:\n              memory: 1GG\n          ports:",
        );
    assert!(text.contains("1GG"), "the manifest has a container to edit");
    std::fs::write(&bad, &text).expect("write the manifest");
    let out = kubectl
        .run(&["apply", "-f", bad.to_str().expect("utf-8 path")])
        .await;
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert!(
        out.stderr.contains(
            "Deployment in version \"v1\" cannot be handled as a Deployment: unable to parse quantity's suffix"
        ),
        "{}",
        out.stderr
    );
    assert!(
        sandbox
            .object("apps/v1", "Deployment", NS, "quantities")
            .is_none()
    );
    let out = kubectl
        .run(&["replace", "-f", bad.to_str().expect("utf-8 path")])
        .await;
    assert_eq!(out.code, Some(1), "{}", out.stdout);

    // A negative amount decodes but is invalid; a good one is stored, and
    // a number reads as the quantity it spells.
    let out = kubectl
        .run(&["patch", "deploy/nginx-deployment", "-p", &limits("\"-1\"")])
        .await;
    assert_eq!(
        out.stderr.trim(),
        "The Deployment \"nginx-deployment\" is invalid: spec.template.spec.containers[0].resources.limits[cpu]: Invalid value: \"-1\": must be greater than or equal to 0"
    );
    kubectl
        .run(&["patch", "deploy/nginx-deployment", "-p", &limits("2")])
        .await
        .success();
    assert_eq!(
        deployment(&sandbox)["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"],
        "2"
    );
    let out = kubectl
        .run(&["get", "deploy/nginx-deployment", "-o", "json"])
        .await
        .success();
    assert!(out.stdout.contains("\"cpu\": \"2\""), "{}", out.stdout);
}

/// What kubectl users meet most: switching to Recreate without clearing
/// the rolling update, a request above its limit, a label with a space.
#[tokio::test]
async fn invalid_strategies_requests_and_labels_are_refused_as_a_cluster_refuses_them() {
    let sandbox = nginx_sandbox().start().await.expect("start the sandbox");
    let kubectl = Kubectl::new(&sandbox.url());
    rolled_out(&sandbox).await;
    let before = deployment(&sandbox)["metadata"]["resourceVersion"].clone();
    let refused = async |args: &[&str], says: &str| {
        let out = kubectl.run(args).await;
        assert_eq!(out.code, Some(1), "{args:?}: {}", out.stdout);
        // kubectl words the start its own way per verb; the server's part
        // is the same.
        assert!(
            out.stderr
                .trim()
                .ends_with(&format!("\"nginx-deployment\" is invalid: {says}")),
            "{args:?}: {}",
            out.stderr
        );
    };

    refused(
        &["patch", "deploy/nginx-deployment", "-p", r#"{"spec":{"strategy":{"type":"Recreate"}}}"#],
        "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'",
    )
    .await;
    refused(
        &[
            "set", "resources", "deploy/nginx-deployment",
            "--requests=cpu=1500m", "--limits=cpu=1",
        ],
        "spec.template.spec.containers[0].resources.requests: Invalid value: \"1500m\": must be less than or equal to cpu limit of 1",
    )
    .await;
    refused(
        &[
            "patch", "deploy/nginx-deployment", "-p",
            r#"{"spec":{"strategy":{"rollingUpdate":{"maxSurge":0,"maxUnavailable":0}}}}"#,
        ],
        "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}: may not be 0 when `maxSurge` is 0",
    )
    .await;
    refused(
        &[
            "patch", "deploy/nginx-deployment", "-p",
            r#"{"spec":{"template":{"metadata":{"labels":{"tier":"front end"}}}}}"#,
        ],
        "spec.template.metadata.labels: Invalid value: \"front end\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
    )
    .await;
    // minReadySeconds left out is 0, which the deadline must exceed.
    refused(
        &[
            "patch",
            "deploy/nginx-deployment",
            "-p",
            r#"{"spec":{"progressDeadlineSeconds":0}}"#,
        ],
        "spec.progressDeadlineSeconds: Invalid value: 0: must be greater than minReadySeconds",
    )
    .await;
    assert_eq!(
        deployment(&sandbox)["metadata"]["resourceVersion"],
        before,
        "nothing refused was stored"
    );

    // The way a cluster takes them: the rolling update cleared with the
    // switch, a request within its limit.
    kubectl
        .run(&[
            "patch",
            "deploy/nginx-deployment",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"strategy":{"type":"Recreate","rollingUpdate":null}}}"#,
        ])
        .await
        .success();
    kubectl
        .run(&[
            "set",
            "resources",
            "deploy/nginx-deployment",
            "--requests=cpu=500m",
            "--limits=cpu=1",
        ])
        .await
        .success();
    let d = deployment(&sandbox);
    assert_eq!(
        d["spec"]["strategy"],
        serde_json::json!({"type": "Recreate"})
    );
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"],
        "500m"
    );
}

/// Recreate never runs two versions at once: every old replica goes in one
/// step, then the new ones come in the next. A paused Deployment still
/// scales, and says it is paused.
#[tokio::test]
async fn recreate_replaces_every_pod_at_once_and_a_paused_deployment_still_scales() {
    let sandbox = nginx_sandbox().start().await.expect("start the sandbox");
    let kubectl = Kubectl::new(&sandbox.url());
    rolled_out(&sandbox).await;
    kubectl
        .run(&[
            "patch",
            "deploy/nginx-deployment",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"strategy":{"type":"Recreate","rollingUpdate":null}}}"#,
        ])
        .await
        .success();
    let old = sandbox.objects("apps/v1", "ReplicaSet", NS)[0]["metadata"]["name"]
        .as_str()
        .expect("a name")
        .to_owned();
    kubectl
        .run(&[
            "set",
            "image",
            "deploy/nginx-deployment",
            "nginx=nginx:1.27",
        ])
        .await
        .success();
    rolled_out(&sandbox).await;
    ready_pods(&sandbox, 2).await;
    let new = replica_sets(&sandbox)
        .into_iter()
        .find(|(_, image, _)| image == "nginx:1.27")
        .expect("a new ReplicaSet");
    assert_eq!(new.2, 2);
    let out = kubectl.run(&["get", "events"]).await.success();
    let scaled: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.contains("ScalingReplicaSet"))
        .filter_map(|l| l.split("Scaled ").nth(1))
        .collect();
    let new_name = sandbox
        .objects("apps/v1", "ReplicaSet", NS)
        .into_iter()
        .find(|rs| image(rs) == "nginx:1.27")
        .and_then(|rs| rs["metadata"]["name"].as_str().map(str::to_owned))
        .expect("a name");
    let about = |rs: &str, direction: &str| -> Vec<&str> {
        scaled
            .iter()
            .copied()
            .filter(|l| l.starts_with(direction) && l.contains(&format!("set {rs} ")))
            .collect()
    };
    assert_eq!(
        (about(&old, "down"), about(&new_name, "up")),
        (
            vec![format!("down replica set {old} from 2 to 0").as_str()],
            vec![format!("up replica set {new_name} from 0 to 2").as_str()]
        ),
        "one step each: {}",
        out.stdout
    );

    kubectl
        .run(&["rollout", "pause", "deploy/nginx-deployment"])
        .await
        .success();
    kubectl
        .run(&["scale", "deploy/nginx-deployment", "--replicas=3"])
        .await
        .success();
    rolled_out(&sandbox).await;
    ready_pods(&sandbox, 3).await;
    let progressing = deployment(&sandbox)["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Progressing").cloned())
        .expect("a Progressing condition");
    assert_eq!(
        (&progressing["status"], &progressing["reason"]),
        (
            &serde_json::json!("Unknown"),
            &serde_json::json!("DeploymentPaused")
        )
    );
}

/// A list or watch for one name (`metadata.name=` in its field selector)
/// is judged by that name, so `resourceNames` rules let `rollout status`
/// and `get -w` through, as on a cluster; a list of them all is not.
#[tokio::test]
async fn a_role_for_one_deployment_by_name_lets_its_watchers_watch_it() {
    let sandbox = rbac_builder(Duration::ZERO)
        .anonymous_admin()
        .start()
        .await
        .expect("start the sandbox");
    let admin = Kubectl::new(&sandbox.url());
    rolled_out(&sandbox).await;
    admin
        .run(&[
            "create",
            "role",
            "watcher",
            "--verb=get,list,watch",
            "--resource=deployments",
            &format!("--resource-name={NAME}"),
        ])
        .await
        .success();
    admin
        .run(&[
            "create",
            "rolebinding",
            "watcher",
            "--role=watcher",
            "--user=dave",
        ])
        .await
        .success();
    let dave = Kubectl::new(&sandbox.url()).acting_as("dave");

    let out = dave
        .run(&[
            "rollout",
            "status",
            &format!("deployment/{NAME}"),
            "--timeout=20s",
        ])
        .await
        .success();
    assert!(
        out.stdout.contains("successfully rolled out"),
        "{}",
        out.stdout
    );
    let out = dave
        .run(&[
            "get",
            "deployments",
            "--field-selector",
            &format!("metadata.name={NAME}"),
            "--no-headers",
        ])
        .await
        .success();
    assert!(out.stdout.starts_with(NAME), "{}", out.stdout);
    let out = dave.run(&["get", "deployments"]).await;
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert!(
        out.stderr.contains("cannot list resource \"deployments\""),
        "{}",
        out.stderr
    );
    let out = dave
        .run(&[
            "get",
            "deployments",
            "--field-selector",
            "metadata.name=other",
        ])
        .await;
    assert_eq!(
        out.code,
        Some(1),
        "another name is not in the role: {}",
        out.stdout
    );
}

/// Paged lists continue after the last item returned, so deleting items
/// already seen skips nothing; a token the server did not make is a 400.
#[tokio::test]
async fn paged_lists_continue_after_the_last_item_whatever_changes_before_it() {
    let sandbox = KubeSandbox::builder()
        .anonymous_admin()
        .start()
        .await
        .expect("start the sandbox");
    let kubectl = Kubectl::new(&sandbox.url());
    for n in 1..=7 {
        kubectl
            .run(&["create", "configmap", &format!("cm-{n}")])
            .await
            .success();
    }
    let out = kubectl
        .run(&["get", "configmaps", "--chunk-size=2", "-o", "name"])
        .await
        .success();
    let names: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        names,
        (1..=7)
            .map(|n| format!("configmap/cm-{n}"))
            .collect::<Vec<_>>(),
        "every page walked"
    );

    let raw = async |query: &str| -> Value {
        let out = kubectl
            .run(&[
                "get",
                "--raw",
                &format!("/api/v1/namespaces/default/configmaps?{query}"),
            ])
            .await
            .success();
        serde_json::from_str(&out.stdout).expect("JSON")
    };
    let first = raw("limit=3").await;
    let token = first["metadata"]["continue"]
        .as_str()
        .expect("a continue token")
        .to_owned();
    assert_eq!(first["metadata"]["remainingItemCount"], 4);
    kubectl
        .run(&["delete", "configmap", "cm-1", "cm-2"])
        .await
        .success();
    let second = raw(&format!("limit=3&continue={token}")).await;
    let listed: Vec<&str> = second["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|cm| cm["metadata"]["name"].as_str())
        .collect();
    assert_eq!(listed, ["cm-4", "cm-5", "cm-6"], "nothing skipped");

    let out = kubectl
        .run(&[
            "get",
            "--raw",
            "/api/v1/namespaces/default/configmaps?limit=3&continue=garbage",
        ])
        .await;
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert!(
        out.stderr.contains("BadRequest") || out.stderr.contains("continue key is not valid"),
        "{}",
        out.stderr
    );
}

/// What a cluster refuses beyond Deployments: a binding's role changed, a
/// rule without verbs, an immutable ConfigMap changed, a Pod's spec
/// changed beyond its images, a re-created object still carrying its
/// resourceVersion, and every namespace deleted at once.
#[tokio::test]
async fn kubectl_meets_the_clusters_rules_for_roles_config_maps_pods_and_namespaces() {
    let sandbox = nginx_sandbox()
        .anonymous_admin()
        .start()
        .await
        .expect("start the sandbox");
    let kubectl = Kubectl::new(&sandbox.url());
    let dir = temp_dir();
    let apply = async |name: &str, yaml: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, yaml).expect("write the manifest");
        kubectl
            .run(&["apply", "-f", path.to_str().expect("utf-8 path")])
            .await
    };
    let binding = |role: &str| {
        format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: readers\n  namespace: default\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: {role}\nsubjects:\n  - kind: User\n    name: dave\n"
        )
    };
    apply("binding.yaml", &binding("view")).await.success();
    let out = apply("binding.yaml", &binding("edit")).await;
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert!(
        out.stderr.contains("roleRef: Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"ClusterRole\", Name:\"edit\"}: cannot change roleRef"),
        "{}",
        out.stderr
    );
    let out = apply(
        "role.yaml",
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: nothing\n  namespace: default\nrules:\n  - apiGroups: [\"\"]\n    resources: [\"pods\"]\n    verbs: []\n",
    )
    .await;
    assert!(
        out.stderr
            .contains("rules[0].verbs: Required value: verbs must contain at least one value"),
        "{}",
        out.stderr
    );

    apply(
        "frozen.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: frozen\nimmutable: true\ndata:\n  level: \"1\"\n",
    )
    .await
    .success();
    let out = kubectl
        .run(&[
            "patch",
            "configmap",
            "frozen",
            "-p",
            r#"{"data":{"level":"2"}}"#,
        ])
        .await;
    assert!(
        out.stderr
            .contains("data: Forbidden: field is immutable when `immutable` is set"),
        "{}",
        out.stderr
    );

    ready_pods(&sandbox, 2).await;
    let pod = pods(&sandbox)[0]["metadata"]["name"]
        .as_str()
        .expect("a name")
        .to_owned();
    let out = kubectl
        .run(&[
            "patch",
            "pod",
            &pod,
            "-p",
            r#"{"spec":{"restartPolicy":"Never"}}"#,
        ])
        .await;
    assert!(
        out.stderr.contains("spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`"),
        "{}",
        out.stderr
    );

    // An object saved with `get -o json` and posted back as it is (kubectl
    // create -f would drop its resourceVersion; --raw sends it).
    let saved = kubectl
        .run(&["get", "configmap", "frozen", "-o", "json"])
        .await
        .success();
    kubectl
        .run(&["delete", "configmap", "frozen"])
        .await
        .success();
    let path = dir.path().join("saved.json");
    std::fs::write(&path, &saved.stdout).expect("write the saved object");
    let out = kubectl
        .run(&[
            "create",
            "--raw",
            "/api/v1/namespaces/default/configmaps",
            "-f",
            path.to_str().expect("utf-8 path"),
        ])
        .await;
    assert!(
        out.stderr.contains(
            "Error from server (BadRequest): resourceVersion should not be set on objects to be created"
        ),
        "{}",
        out.stderr
    );

    let out = kubectl.run(&["delete", "namespaces", "--all"]).await;
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert!(sandbox.object("v1", "Namespace", "", "default").is_some());
}

/// The name of a stored object.
fn name_of(object: &Value) -> String {
    object["metadata"]["name"].as_str().unwrap_or("").to_owned()
}

/// The uid of the controller an object's owner references name, if any.
fn controller_uid(object: &Value) -> Option<String> {
    object["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"] == true)
        .and_then(|r| r["uid"].as_str())
        .map(str::to_owned)
}

/// The controllers claim what their selectors match, as a cluster's do: a
/// Pod relabelled out of service is let go (and replaced), one labelled
/// back is adopted again, and what `delete --cascade=orphan` leaves is
/// adopted by the owner that comes next instead of being made twice.
#[tokio::test]
async fn controllers_let_go_of_relabelled_pods_and_adopt_what_orphaning_left() {
    let sandbox = nginx_sandbox().start().await.expect("start the sandbox");
    let kubectl = Kubectl::new(&sandbox.url());
    rolled_out(&sandbox).await;
    let first = ready_pods(&sandbox, 2).await;
    let rs = sandbox.objects("apps/v1", "ReplicaSet", NS)[0].clone();
    let (rs_name, rs_uid) = (name_of(&rs), controller_uid(&first[0]).expect("owned"));
    let pod = name_of(&first[0]);
    let pod_of = |name: &str| {
        sandbox
            .object("v1", "Pod", NS, name)
            .unwrap_or_else(|| panic!("pod {name} exists"))
    };

    // Out of service: released, still running, and replaced.
    kubectl
        .run(&["label", "pod", &pod, "app=debug", "--overwrite"])
        .await
        .success();
    eventually(
        "the relabelled pod released and replaced",
        Duration::from_secs(10),
        || async {
            let owned = pods(&sandbox)
                .iter()
                .filter(|p| controller_uid(p).as_deref() == Some(rs_uid.as_str()))
                .count();
            (owned == 2 && pods(&sandbox).len() == 3).then_some(())
        },
    )
    .await;
    let released = pod_of(&pod);
    assert!(
        released["metadata"].get("ownerReferences").is_none(),
        "{released}"
    );

    // Back in service: adopted, and a surplus Pod goes (which one is the
    // controller's choice).
    kubectl
        .run(&["label", "pod", &pod, "app=nginx", "--overwrite"])
        .await
        .success();
    eventually("the pod adopted back", Duration::from_secs(10), || async {
        let all = pods(&sandbox);
        let owned = all
            .iter()
            .all(|p| controller_uid(p).as_deref() == Some(rs_uid.as_str()));
        (owned && all.len() == 2).then_some(())
    })
    .await;
    let kept: Vec<String> = pods(&sandbox).iter().map(name_of).collect();

    // The ReplicaSet deleted, its Pods orphaned: the one the Deployment
    // makes again adopts them rather than starting two more.
    kubectl
        .run(&["delete", "rs", &rs_name, "--cascade=orphan"])
        .await
        .success();
    let new_uid = eventually(
        "a new replica set adopting the orphaned pods",
        Duration::from_secs(10),
        || async {
            let rs = sandbox.object("apps/v1", "ReplicaSet", NS, &rs_name)?;
            let uid = rs["metadata"]["uid"].as_str()?.to_owned();
            let all = pods(&sandbox);
            let adopted = all
                .iter()
                .all(|p| controller_uid(p).as_deref() == Some(uid.as_str()));
            (uid != rs_uid && adopted && all.len() == 2).then_some(uid)
        },
    )
    .await;
    assert_eq!(pods(&sandbox).iter().map(name_of).collect::<Vec<_>>(), kept);

    // The Deployment deleted, its ReplicaSet orphaned (without an empty
    // owner list): applied again, it adopts that ReplicaSet.
    kubectl
        .run(&["delete", "deployment", NAME, "--cascade=orphan"])
        .await
        .success();
    let orphan = sandbox
        .object("apps/v1", "ReplicaSet", NS, &rs_name)
        .expect("the replica set is kept");
    assert!(
        orphan["metadata"].get("ownerReferences").is_none(),
        "{orphan}"
    );
    let manifest = resources().join("nginx-deployment.yaml");
    kubectl
        .run(&["apply", "-f", manifest.to_str().expect("utf-8 path")])
        .await
        .success();
    let d_uid = deployment(&sandbox)["metadata"]["uid"]
        .as_str()
        .expect("a uid")
        .to_owned();
    eventually(
        "the deployment adopting the orphaned replica set",
        Duration::from_secs(10),
        || async {
            let sets = sandbox.objects("apps/v1", "ReplicaSet", NS);
            let adopted = sets.len() == 1
                && sets[0]["metadata"]["uid"] == new_uid.as_str()
                && controller_uid(&sets[0]).as_deref() == Some(d_uid.as_str());
            adopted.then_some(())
        },
    )
    .await;
    rolled_out(&sandbox).await;
    assert_eq!(pods(&sandbox).iter().map(name_of).collect::<Vec<_>>(), kept);
}

/// The Deployment rules users meet when writing manifests by hand, worded
/// as a 1.32 API server words them: a selector left out, empty or changed
/// (Go's rendering of the selector), a variable without a name, an
/// unknown pull policy. Names 1.32 accepts (any printable ASCII but `=`)
/// are stored.
#[tokio::test]
async fn hand_written_deployments_are_refused_with_the_clusters_words() {
    let sandbox = nginx_sandbox().start().await.expect("start the sandbox");
    let kubectl = Kubectl::new(&sandbox.url());
    rolled_out(&sandbox).await;
    let dir = temp_dir();
    let apply = async |spec: &str| {
        let path = dir.path().join("d.yaml");
        let yaml = format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: hand\nspec:\n{spec}  template:\n    metadata:\n      labels:\n        app: hand\n    spec:\n      containers:\n        - name: c\n          image: nginx:1.25\n"
        );
        std::fs::write(&path, yaml).expect("write the manifest");
        kubectl
            .run(&["apply", "-f", path.to_str().expect("utf-8 path")])
            .await
    };

    let out = apply("").await;
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert_eq!(
        out.stderr.trim(),
        "The Deployment \"hand\" is invalid: \n* spec.selector: Required value\n* spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"hand\"}: `selector` does not match template `labels`"
    );
    let out = apply("  selector: {}\n").await;
    assert_eq!(
        out.stderr.trim(),
        "The Deployment \"hand\" is invalid: spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment"
    );
    assert!(
        sandbox
            .object("apps/v1", "Deployment", NS, "hand")
            .is_none()
    );

    let out = kubectl
        .run(&[
            "patch",
            "deploy",
            NAME,
            "-p",
            r#"{"spec":{"selector":{"matchExpressions":[{"key":"app","operator":"In","values":["nginx","web"]}]}}}"#,
        ])
        .await;
    assert_eq!(
        out.stderr.trim(),
        "The Deployment \"nginx-deployment\" is invalid: spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"nginx\"}, MatchExpressions:[]v1.LabelSelectorRequirement{v1.LabelSelectorRequirement{Key:\"app\", Operator:\"In\", Values:[]string{\"nginx\", \"web\"}}}}: field is immutable"
    );

    let container = |extra: &str| {
        format!(
            r#"{{"spec":{{"template":{{"spec":{{"containers":[{{"name":"nginx",{extra}}}]}}}}}}}}"#
        )
    };
    let out = kubectl
        .run(&[
            "patch",
            "deploy",
            NAME,
            "-p",
            &container(
                r#""imagePullPolicy":"Sometimes","env":[{"name":"","value":"x"},{"name":"A=B"}]"#,
            ),
        ])
        .await;
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert_eq!(
        out.stderr.trim(),
        "The Deployment \"nginx-deployment\" is invalid: \n* spec.template.spec.containers[0].env[0].name: Required value\n* spec.template.spec.containers[0].env[1].name: Invalid value: \"A=B\": a valid environment variable name must consist only of printable ASCII characters other than '='\n* spec.template.spec.containers[0].imagePullPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"IfNotPresent\", \"Never\""
    );

    kubectl
        .run(&[
            "patch",
            "deploy",
            NAME,
            "-p",
            &container(r#""imagePullPolicy":"Never","env":[{"name":"1st.var","value":"x"}]"#),
        ])
        .await
        .success();
    let c = &deployment(&sandbox)["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["imagePullPolicy"], "Never");
    assert_eq!(c["env"][0]["name"], "1st.var");
}

/// Paused with a new template not yet rolled out, a Deployment still
/// scales: its one active ReplicaSet takes the new size, and no new
/// ReplicaSet is made until it resumes.
#[tokio::test]
async fn a_paused_deployment_with_a_new_template_scales_its_active_replica_set() {
    let sandbox = nginx_sandbox().start().await.expect("start the sandbox");
    let kubectl = Kubectl::new(&sandbox.url());
    rolled_out(&sandbox).await;
    ready_pods(&sandbox, 2).await;
    for args in [
        &["rollout", "pause", "deploy/nginx-deployment"][..],
        &[
            "set",
            "image",
            "deploy/nginx-deployment",
            "nginx=nginx:1.27",
        ],
        &["scale", "deploy/nginx-deployment", "--replicas=3"],
    ] {
        kubectl.run(args).await.success();
    }
    eventually(
        "the active replica set scaled to 3",
        Duration::from_secs(10),
        || async {
            let sets = replica_sets(&sandbox);
            let d = deployment(&sandbox);
            let done = sets == [(1, "nginx:1.14.2".to_owned(), 3)]
                && d["status"]["availableReplicas"] == 3
                && d["status"]["observedGeneration"] == d["metadata"]["generation"];
            done.then_some(())
        },
    )
    .await;
    ready_pods(&sandbox, 3).await;
    let out = kubectl
        .run(&["get", "deploy/nginx-deployment", "--no-headers"])
        .await
        .success();
    assert_eq!(
        rows(&out.stdout)[0][1..4],
        ["3/3", "0", "3"],
        "{}",
        out.stdout
    );

    kubectl
        .run(&["rollout", "resume", "deploy/nginx-deployment"])
        .await
        .success();
    rolled_out(&sandbox).await;
    assert_eq!(
        replica_sets(&sandbox),
        [
            (1, "nginx:1.14.2".to_owned(), 0),
            (2, "nginx:1.27".to_owned(), 3)
        ]
    );
}

/// A ReplicaSet relabelled out of its Deployment (quarantined) is let go
/// and keeps its Pods; the Deployment makes a ReplicaSet of its own under
/// another name instead of writing over it, and no Pod is left without an
/// owner that exists.
#[tokio::test]
async fn a_quarantined_replica_set_keeps_its_pods_and_its_deployment_makes_another() {
    let sandbox = nginx_sandbox().start().await.expect("start the sandbox");
    let kubectl = Kubectl::new(&sandbox.url());
    rolled_out(&sandbox).await;
    ready_pods(&sandbox, 2).await;
    let quarantined = sandbox.objects("apps/v1", "ReplicaSet", NS)[0].clone();
    let (old_name, old_uid) = (
        name_of(&quarantined),
        quarantined["metadata"]["uid"]
            .as_str()
            .expect("a uid")
            .to_owned(),
    );
    kubectl
        .run(&["label", "rs", &old_name, "app=quarantine", "--overwrite"])
        .await
        .success();
    let deployment_uid = deployment(&sandbox)["metadata"]["uid"]
        .as_str()
        .expect("a uid")
        .to_owned();
    let sets = eventually(
        "a second replica set, ready",
        Duration::from_secs(10),
        || async {
            let sets = sandbox.objects("apps/v1", "ReplicaSet", NS);
            let fresh = sets
                .iter()
                .find(|rs| controller_uid(rs).as_deref() == Some(deployment_uid.as_str()))?;
            (sets.len() == 2 && fresh["status"]["readyReplicas"] == 2).then_some(sets)
        },
    )
    .await;
    let old = sets
        .iter()
        .find(|rs| rs["metadata"]["uid"] == old_uid.as_str())
        .expect("the quarantined replica set is still there");
    assert_eq!(name_of(old), old_name);
    assert!(controller_uid(old).is_none(), "{old}");
    let uids: Vec<String> = sets
        .iter()
        .map(|rs| rs["metadata"]["uid"].as_str().unwrap_or("").to_owned())
        .collect();
    let all = pods(&sandbox);
    assert_eq!(all.len(), 4, "two pods each: {all:?}");
    assert!(
        all.iter()
            .all(|p| controller_uid(p).is_some_and(|uid| uids.contains(&uid))),
        "{all:?}"
    );
}

/// A ReplicaSet whose selector does not select its own template is refused
/// as the API server refuses it: it could never count its Pods.
#[tokio::test]
async fn a_replica_set_that_would_not_select_its_pods_is_refused() {
    let sandbox = nginx_sandbox().start().await.expect("start the sandbox");
    let kubectl = Kubectl::new(&sandbox.url());
    let dir = temp_dir();
    let path = dir.path().join("rs.yaml");
    std::fs::write(
        &path,
        "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata:\n  name: stray\nspec:\n  replicas: 2\n  selector:\n    matchLabels:\n      app: a\n  template:\n    metadata:\n      labels:\n        app: b\n    spec:\n      containers:\n        - name: c\n          image: nginx:1.25\n",
    )
    .expect("write the manifest");
    let out = kubectl
        .run(&["apply", "-f", path.to_str().expect("utf-8 path")])
        .await;
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert_eq!(
        out.stderr.trim(),
        "The ReplicaSet \"stray\" is invalid: spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"b\"}: `selector` does not match template `labels`"
    );
    assert!(
        sandbox
            .object("apps/v1", "ReplicaSet", NS, "stray")
            .is_none()
    );
}

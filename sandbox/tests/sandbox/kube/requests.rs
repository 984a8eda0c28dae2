//! What the API server makes of a request beyond its object: the options
//! in its query (`dryRun`, `limit`, `continue`), the name and namespace on
//! its URL, patches that do not apply, and the namespaces a cluster starts
//! with, as the real kubectl (or, where kubectl sends no such request, raw
//! HTTP) sees them.

use chatops_sandbox::kube::KubeSandbox;
use serde_json::{Value, json};

use super::helpers::{Kubectl, http, nginx, nginx_deployment as deployment, refused, temp_dir};

const NAME: &str = "nginx-deployment";
const DEPLOYMENT: &str = "/apis/apps/v1/namespaces/default/deployments/nginx-deployment";

/// The 422 of options with a `dryRun` the server does not know.
fn bad_dry_run(kind: &str, values: &str) -> Value {
    let cause = format!("Unsupported value: []string{{{values}}}: supported values: \"All\"");
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": format!("{kind}.meta.k8s.io \"\" is invalid: dryRun: {cause}"),
        "reason": "Invalid",
        "details": {
            "group": "meta.k8s.io",
            "kind": kind,
            "causes": [{"reason": "FieldValueNotSupported", "message": cause, "field": "dryRun"}],
        },
        "code": 422,
    })
}

/// `body` written to `name` in `dir`: its path, for kubectl's `-f`.
fn written(dir: &tempfile::TempDir, name: &str, body: &Value) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, body.to_string()).expect("write a body");
    path.display().to_string()
}

#[tokio::test]
async fn a_dry_run_the_server_does_not_know_is_refused_and_nothing_is_written() {
    let sandbox = nginx().await;
    let kubectl = Kubectl::new(&sandbox.url());
    let dir = temp_dir();
    let file = |name: &str, body: Value| written(&dir, name, &body);
    let config_map = file("cm.json", json!({"metadata": {"name": "settings"}}));
    let scale = file(
        "scale.json",
        json!({"metadata": {"name": NAME, "namespace": "default"}, "spec": {"replicas": 7}}),
    );
    let before = deployment(&sandbox);

    // kubectl's raw verbs: create, replace (of /scale) and delete.
    for (args, says) in [
        (
            vec![
                "create",
                "--raw",
                "/api/v1/namespaces/default/configmaps?dryRun=true",
                "-f",
                &config_map,
            ],
            r#"The CreateOptions "" is invalid: dryRun: Unsupported value: []string{"true"}: supported values: "All""#,
        ),
        (
            vec![
                "replace",
                "--raw",
                &format!("{DEPLOYMENT}/scale?dryRun=all"),
                "-f",
                &scale,
            ],
            r#"The UpdateOptions "" is invalid: dryRun: Unsupported value: []string{"all"}: supported values: "All""#,
        ),
        (
            vec!["delete", "--raw", &format!("{DEPLOYMENT}?dryRun=Al")],
            r#"The DeleteOptions "" is invalid: dryRun: Unsupported value: []string{"Al"}: supported values: "All""#,
        ),
    ] {
        refused(&kubectl, &args, says).await;
    }

    // Patches, of the object and of /scale, every value counted; a
    // DELETE's body is read instead of its query, as the server reads it.
    let merge = "application/merge-patch+json";
    for (method, path, content_type, body, kind, values) in [
        (
            "PATCH",
            format!("{DEPLOYMENT}?dryRun=bogus"),
            merge,
            r#"{"spec": {"replicas": 9}}"#,
            "PatchOptions",
            r#""bogus""#,
        ),
        (
            "PATCH",
            format!("{DEPLOYMENT}/scale?dryRun=All&dryRun=true"),
            merge,
            r#"{"spec": {"replicas": 9}}"#,
            "PatchOptions",
            r#""All", "true""#,
        ),
        (
            "DELETE",
            DEPLOYMENT.to_owned(),
            "application/json",
            r#"{"kind": "DeleteOptions", "apiVersion": "v1", "dryRun": ["Al"]}"#,
            "DeleteOptions",
            r#""Al""#,
        ),
        (
            "DELETE",
            "/api/v1/namespaces/kube-public?dryRun=".to_owned(),
            "",
            "",
            "DeleteOptions",
            r#""""#,
        ),
        (
            "DELETE",
            "/apis/apps/v1/namespaces/default/replicasets?dryRun=yes".to_owned(),
            "",
            "",
            "DeleteOptions",
            r#""yes""#,
        ),
    ] {
        let answer = http(&sandbox, method, &path, content_type, body).await;
        assert_eq!(answer, (422, bad_dry_run(kind, values)), "{method} {path}");
    }

    let after = deployment(&sandbox);
    assert_eq!(after["metadata"], before["metadata"], "nothing written");
    assert_eq!(after["spec"], before["spec"]);
    assert!(
        sandbox
            .object("v1", "ConfigMap", "default", "settings")
            .is_none()
    );
    assert_eq!(sandbox.objects("apps/v1", "ReplicaSet", "default").len(), 1);

    // `All`, even twice, is a dry run: the answer shows the change, the
    // store does not.
    let (code, dry) = http(
        &sandbox,
        "PATCH",
        &format!("{DEPLOYMENT}/scale?dryRun=All&dryRun=All"),
        merge,
        r#"{"spec": {"replicas": 9}}"#,
    )
    .await;
    assert_eq!((code, &dry["spec"]["replicas"]), (200, &json!(9)));
    let out = kubectl
        .run(&["delete", "deploy", NAME, "--dry-run=server"])
        .await
        .success();
    assert_eq!(
        out.stdout.trim(),
        format!("deployment.apps \"{NAME}\" deleted (server dry run)")
    );
    assert_eq!(deployment(&sandbox)["spec"], before["spec"]);
}

#[tokio::test]
async fn a_replacing_object_or_scale_must_name_what_the_url_names() {
    let sandbox = nginx().await;
    let kubectl = Kubectl::new(&sandbox.url());
    let dir = temp_dir();
    let file = |name: &str, body: Value| written(&dir, name, &body);
    let before = deployment(&sandbox);
    let mut renamed = before.clone();
    renamed["metadata"]["name"] = json!("other");
    let mut moved = before.clone();
    moved["metadata"]["namespace"] = json!("kube-system");
    let scale = |name: &str, namespace: &str| json!({"metadata": {"name": name, "namespace": namespace}, "spec": {"replicas": 5}});
    let wrong_name = format!(
        "Error from server (BadRequest): the name of the object (other) does not match the name on the URL ({NAME})"
    );
    let wrong_namespace = "Error from server (BadRequest): the namespace of the provided object does not match the namespace sent on the request";
    for (body, path, says) in [
        (
            scale("other", "default"),
            format!("{DEPLOYMENT}/scale"),
            wrong_name.as_str(),
        ),
        (
            scale(NAME, "kube-system"),
            format!("{DEPLOYMENT}/scale"),
            wrong_namespace,
        ),
        (renamed, DEPLOYMENT.to_owned(), wrong_name.as_str()),
        (moved, DEPLOYMENT.to_owned(), wrong_namespace),
    ] {
        let body = file("body.json", body);
        refused(&kubectl, &["replace", "--raw", &path, "-f", &body], says).await;
    }
    // A patch of /scale is held to the URL too.
    let (code, status) = http(
        &sandbox,
        "PATCH",
        &format!("{DEPLOYMENT}/scale"),
        "application/merge-patch+json",
        r#"{"metadata": {"name": "other"}, "spec": {"replicas": 5}}"#,
    )
    .await;
    assert_eq!(
        (code, &status["message"]),
        (
            400,
            &json!(format!(
                "the name of the object (other) does not match the name on the URL ({NAME})"
            ))
        )
    );
    assert_eq!(
        deployment(&sandbox)["spec"],
        before["spec"],
        "nothing written"
    );

    // Named as the URL names it, a Scale is written.
    let body = file("scale.json", scale(NAME, "default"));
    kubectl
        .run(&[
            "replace",
            "--raw",
            &format!("{DEPLOYMENT}/scale"),
            "-f",
            &body,
        ])
        .await
        .success();
    assert_eq!(deployment(&sandbox)["spec"]["replicas"], 5);
}

#[tokio::test]
async fn list_options_the_server_cannot_read_are_refused_in_its_words() {
    let sandbox = KubeSandbox::builder()
        .start()
        .await
        .expect("start the sandbox");
    let kubectl = Kubectl::new(&sandbox.url());
    for n in 1..=3 {
        kubectl
            .run(&["create", "configmap", &format!("cm-{n}")])
            .await
            .success();
    }
    let list = "/api/v1/namespaces/default/configmaps";
    let out = kubectl
        .run(&["get", "--raw", &format!("{list}?limit=1")])
        .await
        .success();
    let first: Value = serde_json::from_str(&out.stdout).expect("JSON");
    let token = first["metadata"]["continue"]
        .as_str()
        .expect("a continue token")
        .to_owned();

    for (query, says) in [
        (
            "limit=abc",
            r#"strconv.ParseInt: parsing "abc": invalid syntax"#,
        ),
        (
            "limit=99999999999999999999",
            r#"strconv.ParseInt: parsing "99999999999999999999": value out of range"#,
        ),
        (
            "watch=true&timeoutSeconds=soon",
            r#"strconv.ParseInt: parsing "soon": invalid syntax"#,
        ),
        (
            "limit=1&continue=garbage!",
            "invalid continue token: continue key is not valid: illegal base64 data at input byte 7",
        ),
        (
            "limit=1&continue=abc",
            "invalid continue token: continue key is not valid: invalid character 'i' looking for beginning of value",
        ),
        (
            &format!("limit=1&continue={token}&resourceVersion=1"),
            "specifying resource version is not allowed when using continue",
        ),
    ] {
        refused(
            &kubectl,
            &["get", "--raw", &format!("{list}?{query}")],
            &format!("Error from server (BadRequest): {says}"),
        )
        .await;
    }

    // resourceVersion 0 goes with a continue, as on a cluster.
    let out = kubectl
        .run(&[
            "get",
            "--raw",
            &format!("{list}?limit=1&continue={token}&resourceVersion=0"),
        ])
        .await
        .success();
    let second: Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(second["items"][0]["metadata"]["name"], "cm-2");
}

#[tokio::test]
async fn a_json_patch_test_that_fails_is_a_bare_invalid_and_a_test_for_null_passes_on_a_missing_key()
 {
    let sandbox = nginx().await;
    let kubectl = Kubectl::new(&sandbox.url());
    let target = format!("deploy/{NAME}");
    let patch = async |ops: Value| {
        kubectl
            .run(&["patch", &target, "--type=json", "-p", &ops.to_string()])
            .await
    };

    let out = patch(json!([
        {"op": "test", "path": "/spec/replicas", "value": 7},
        {"op": "replace", "path": "/spec/replicas", "value": 3}
    ]))
    .await;
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert_eq!(
        out.stderr.trim(),
        "The request is invalid: the server rejected our request due to an error in our request"
    );
    let (code, status) = http(
        &sandbox,
        "PATCH",
        DEPLOYMENT,
        "application/json-patch+json",
        r#"[{"op": "test", "path": "/spec/replicas", "value": 7}]"#,
    )
    .await;
    assert_eq!(
        (code, &status["reason"], &status["details"]),
        (422, &json!("Invalid"), &json!({})),
        "no causes: {status}"
    );
    assert_eq!(deployment(&sandbox)["spec"]["replicas"], 2);

    // A member that is absent tests as null, where its object is there.
    patch(json!([
        {"op": "test", "path": "/metadata/annotations/owner", "value": null},
        {"op": "replace", "path": "/spec/replicas", "value": 3}
    ]))
    .await
    .success();
    assert_eq!(deployment(&sandbox)["spec"]["replicas"], 3);
    let out = patch(json!([
        {"op": "test", "path": "/metadata/nothing/here", "value": null},
        {"op": "replace", "path": "/spec/replicas", "value": 4}
    ]))
    .await;
    assert_eq!(out.code, Some(1), "no parent, no pass: {}", out.stdout);
    assert_eq!(deployment(&sandbox)["spec"]["replicas"], 3);
}

#[tokio::test]
async fn malformed_patches_and_unknown_directives_get_the_servers_words() {
    let sandbox = nginx().await;
    let kubectl = Kubectl::new(&sandbox.url());
    let target = format!("deploy/{NAME}");
    for (kind, body, says) in [
        (
            "merge",
            "{bad}",
            "Error from server (BadRequest): error decoding patch: invalid character 'b' looking for beginning of object key string",
        ),
        (
            "strategic",
            r#"{"spec": {"$patch": "bogus"}}"#,
            "Error from server: unknown patch type: bogus in map: map[$patch:bogus]",
        ),
    ] {
        refused(
            &kubectl,
            &["patch", &target, &format!("--type={kind}"), "-p", body],
            says,
        )
        .await;
    }
    // kubectl reads a patch before it sends it; other clients may not.
    let (code, status) = http(
        &sandbox,
        "PATCH",
        DEPLOYMENT,
        "application/json-patch+json",
        r#"[{"op": "add""#,
    )
    .await;
    assert_eq!(
        (code, &status["message"]),
        (
            400,
            &json!("error decoding patch: unexpected end of JSON input")
        )
    );
}

#[tokio::test]
async fn namespaces_start_as_a_clusters_and_are_made_active_with_their_finalizer() {
    let sandbox = KubeSandbox::builder()
        .start()
        .await
        .expect("start the sandbox");
    let kubectl = Kubectl::new(&sandbox.url());
    let out = kubectl
        .run(&["get", "namespaces", "-o", "name"])
        .await
        .success();
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        [
            "namespace/default",
            "namespace/kube-node-lease",
            "namespace/kube-public",
            "namespace/kube-system"
        ]
    );

    // kubectl's generator sends an empty spec; the server adds the finalizer.
    kubectl
        .run(&["create", "namespace", "team"])
        .await
        .success();
    let out = kubectl
        .run(&["get", "namespace", "team", "-o", "json"])
        .await
        .success();
    let team: Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(team["spec"], json!({"finalizers": ["kubernetes"]}));
    assert_eq!(team["status"], json!({"phase": "Active"}));
    // Given ones are kept beside it; a status given is the server's.
    let (code, made) = http(
        &sandbox,
        "POST",
        "/api/v1/namespaces",
        "application/json",
        r#"{"metadata": {"name": "shop"}, "spec": {"finalizers": ["example.com/hold"]}, "status": {"phase": "Terminating"}}"#,
    )
    .await;
    assert_eq!(code, 201, "{made}");
    assert_eq!(
        made["spec"],
        json!({"finalizers": ["example.com/hold", "kubernetes"]})
    );
    assert_eq!(made["status"], json!({"phase": "Active"}));
    // An update keeps them: only /finalize changes finalizers.
    let mut changed = team.clone();
    changed["spec"] = json!({});
    changed["metadata"]["labels"]["tier"] = json!("web");
    let dir = temp_dir();
    let path = dir.path().join("team.json");
    std::fs::write(&path, changed.to_string()).expect("write the namespace");
    kubectl
        .run(&["replace", "-f", &path.display().to_string()])
        .await
        .success();
    let stored = sandbox.object("v1", "Namespace", "", "team").expect("kept");
    assert_eq!(stored["metadata"]["labels"]["tier"], "web");
    assert_eq!(stored["spec"], json!({"finalizers": ["kubernetes"]}));

    for immortal in ["default", "kube-public", "kube-system"] {
        refused(
            &kubectl,
            &["delete", "namespace", immortal],
            &format!(
                "Error from server (Forbidden): namespaces \"{immortal}\" is forbidden: this namespace may not be deleted"
            ),
        )
        .await;
    }
    kubectl
        .run(&["delete", "namespace", "kube-node-lease"])
        .await
        .success();
}

//! What identifies an object (its name, namespace, uid, resourceVersion) is
//! the server's: writes that try to set or change it are refused as a
//! cluster refuses them, with the real kubectl.

use serde_json::{Value, json};

use super::helpers::{Kubectl, nginx, nginx_deployment as deployment, refused, temp_dir};

const NAME: &str = "nginx-deployment";

#[tokio::test]
async fn a_patch_may_change_neither_the_name_nor_the_uid_nor_the_namespace() {
    let sandbox = nginx().await;
    let kubectl = Kubectl::new(&sandbox.url());
    let before = deployment(&sandbox)["metadata"].clone();
    let renamed = format!(
        "Error from server (BadRequest): the name of the object (other) does not match the name on the URL ({NAME})"
    );
    let new_uid = format!(
        "The Deployment {NAME:?} is invalid: metadata.uid: Invalid value: \"abc\": field is immutable"
    );
    let target = format!("deploy/{NAME}");
    let refused_patch = async |kind: &str, body: Value, says: &str| {
        let (kind, body) = (format!("--type={kind}"), body.to_string());
        refused(&kubectl, &["patch", &target, &kind, "-p", &body], says).await;
    };
    for kind in ["strategic", "merge"] {
        refused_patch(kind, json!({"metadata": {"name": "other"}}), &renamed).await;
        refused_patch(kind, json!({"metadata": {"uid": "abc"}}), &new_uid).await;
    }
    let replace =
        |path: &str, value: &str| json!([{"op": "replace", "path": path, "value": value}]);
    refused_patch("json", replace("/metadata/name", "other"), &renamed).await;
    refused_patch("json", replace("/metadata/uid", "abc"), &new_uid).await;
    // The status subresource holds the uid too; the namespace is the URL's.
    refused(
        &kubectl,
        &[
            "patch",
            &target,
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"metadata":{"uid":"abc"}}"#,
        ],
        &new_uid,
    )
    .await;
    refused(
        &kubectl,
        &[
            "patch",
            &target,
            "--type=merge",
            "-p",
            r#"{"metadata":{"namespace":"kube-system"}}"#,
        ],
        "Error from server (BadRequest): the namespace of the provided object does not match the namespace sent on the request",
    )
    .await;
    assert_eq!(deployment(&sandbox)["metadata"], before, "nothing stored");

    // Left out, they are kept, as the rest of the patch is applied.
    kubectl
        .run(&[
            "patch",
            &format!("deploy/{NAME}"),
            "--type=merge",
            "-p",
            r#"{"metadata":{"uid":null,"namespace":null,"labels":{"tier":"web"}}}"#,
        ])
        .await
        .success();
    let after = deployment(&sandbox);
    assert_eq!(after["metadata"]["uid"], before["uid"]);
    assert_eq!(after["metadata"]["namespace"], "default");
    assert_eq!(after["metadata"]["labels"]["tier"], "web");
}

#[tokio::test]
async fn a_replacing_object_of_another_uid_fails_its_precondition() {
    let sandbox = nginx().await;
    let kubectl = Kubectl::new(&sandbox.url());
    let dir = temp_dir();
    let mut saved = deployment(&sandbox);
    let uid = saved["metadata"]["uid"].as_str().unwrap_or("").to_owned();
    saved["metadata"]["uid"] = json!("abc");
    let path = dir.path().join("deployment.json");
    std::fs::write(&path, saved.to_string()).expect("write the object");
    refused(
        &kubectl,
        &["replace", "-f", path.to_str().expect("utf-8 path")],
        &format!(
            "Error from server (Conflict): error when replacing {:?}: Operation cannot be fulfilled on deployments.apps {NAME:?}: Precondition failed: UID in precondition: abc, UID in object meta: {uid}",
            path.display().to_string()
        ),
    )
    .await;
}

#[tokio::test]
async fn an_object_to_create_may_not_carry_a_resource_version() {
    let sandbox = nginx().await;
    let kubectl = Kubectl::new(&sandbox.url());
    let dir = temp_dir();
    // kubectl create -f clears a resourceVersion; --raw sends it as is.
    let create = async |name: &str, rv: &str| {
        let path = dir.path().join(format!("{name}.json"));
        let object = json!({"apiVersion": "v1", "kind": "ConfigMap",
                            "metadata": {"name": name, "resourceVersion": rv}});
        std::fs::write(&path, object.to_string()).expect("write the object");
        kubectl
            .run(&[
                "create",
                "--raw",
                "/api/v1/namespaces/default/configmaps",
                "-f",
                path.to_str().expect("utf-8 path"),
            ])
            .await
    };
    let out = create("saved", "12").await;
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert_eq!(
        out.stderr.trim(),
        "Error from server (BadRequest): resourceVersion should not be set on objects to be created"
    );
    assert!(
        sandbox
            .object("v1", "ConfigMap", "default", "saved")
            .is_none()
    );
    // Storage reads "0" as no version at all.
    create("zero", "0").await.success();
    let stored = sandbox
        .object("v1", "ConfigMap", "default", "zero")
        .expect("created");
    assert_ne!(stored["metadata"]["resourceVersion"], "0");
}

//! kube-rs (the worker's client) round-tripping every operation the worker
//! needs, with the API's concurrency, validation and RBAC answers.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::core::Status;
use serde_json::json;

use super::helpers::{
    ADMIN_TOKEN, BOT, BOT_TOKEN, client, count, eventually, rbac_builder, sandbox_with_rbac,
};

const NAME: &str = "nginx-deployment";

/// The API error of a failed call, or a panic naming what happened.
fn api_error<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> Status {
    match result {
        Err(kube::Error::Api(status)) => *status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn json_patch(ops: serde_json::Value) -> Patch<()> {
    Patch::Json(serde_json::from_value(ops).expect("a JSON patch"))
}

fn replicas(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(-1)
}

fn rv(d: &Deployment) -> String {
    d.metadata.resource_version.clone().unwrap_or_default()
}

#[tokio::test]
async fn reads_and_every_patch_format_round_trip_with_metadata_kept_like_the_api_server() {
    let sandbox = sandbox_with_rbac(Duration::ZERO).await;
    let api: Api<Deployment> =
        Api::namespaced(client(&sandbox.url(), Some(ADMIN_TOKEN)).await, "default");

    let d = api.get(NAME).await.expect("get");
    assert_eq!(replicas(&d), 2);
    assert_eq!(d.metadata.generation, Some(1));
    assert!(d.metadata.uid.is_some() && d.metadata.creation_timestamp.is_some());
    let list = api
        .list(&ListParams::default().labels("app=nginx"))
        .await
        .expect("list");
    assert_eq!(list.items.len(), 1);
    assert!(
        api.list(&ListParams::default().labels("app=other"))
            .await
            .expect("list")
            .items
            .is_empty()
    );

    // JSON patch with a `test` of the resourceVersion as the precondition.
    let patched = api
        .patch(
            NAME,
            &PatchParams::default(),
            &json_patch(json!([
                {"op": "test", "path": "/metadata/resourceVersion", "value": rv(&d)},
                {"op": "replace", "path": "/spec/replicas", "value": 3}
            ])),
        )
        .await
        .expect("json patch");
    assert_eq!(replicas(&patched), 3);
    assert_eq!(
        patched.metadata.generation,
        Some(2),
        "a spec change bumps the generation"
    );
    assert!(
        rv(&patched).parse::<u64>().expect("numeric") > rv(&d).parse::<u64>().expect("numeric")
    );
    let stale_test = api_error(
        api.patch(
            NAME,
            &PatchParams::default(),
            &json_patch(json!([
                {"op": "test", "path": "/metadata/resourceVersion", "value": rv(&d)},
                {"op": "replace", "path": "/spec/replicas", "value": 4}
            ])),
        )
        .await,
    );
    assert_eq!(
        (stale_test.code, stale_test.reason.as_str()),
        (422, "Invalid")
    );

    // Merge patch: metadata only, so no new generation.
    let merged = api
        .patch(
            NAME,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"tier": "web"}}})),
        )
        .await
        .expect("merge patch");
    assert_eq!(merged.metadata.generation, Some(2));
    assert_eq!(
        merged
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("tier"))
            .map(String::as_str),
        Some("web")
    );

    // Strategic merge: the container is merged by name, its port kept.
    let strategic = api
        .patch(
            NAME,
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.21"}]}}}})),
        )
        .await
        .expect("strategic patch");
    let pod = strategic
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .expect("pod spec");
    assert_eq!(pod.containers.len(), 1);
    assert_eq!(pod.containers[0].image.as_deref(), Some("nginx:1.21"));
    assert_eq!(
        pod.containers[0]
            .ports
            .as_ref()
            .map(|p| p[0].container_port),
        Some(80)
    );

    // Replace: the whole object under its resourceVersion.
    let mut current = api.get(NAME).await.expect("get");
    current.spec.as_mut().expect("spec").replicas = Some(4);
    let replaced = api
        .replace(NAME, &PostParams::default(), &current)
        .await
        .expect("replace");
    assert_eq!(replicas(&replaced), 4);

    // Dry run: the answer shows the change, the store does not.
    let dry = api
        .patch(
            NAME,
            &PatchParams::default().dry_run(),
            &Patch::Merge(json!({"spec": {"replicas": 9}})),
        )
        .await
        .expect("dry-run patch");
    assert_eq!(replicas(&dry), 9);
    assert_eq!(replicas(&api.get(NAME).await.expect("get")), 4);

    // The scale subresource.
    let scale = api.get_scale(NAME).await.expect("get scale");
    assert_eq!(scale.spec.and_then(|s| s.replicas), Some(4));
    let scaled = api
        .patch_scale(
            NAME,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 6}})),
        )
        .await
        .expect("patch scale");
    assert_eq!(scaled.spec.and_then(|s| s.replicas), Some(6));
    assert_eq!(replicas(&api.get(NAME).await.expect("get")), 6);

    // The simulated controller rolls out and leaves owned ReplicaSets.
    let done = eventually("the rollout to finish", Duration::from_secs(10), || async {
        let d = api.get(NAME).await.ok()?;
        let s = d.status.clone()?;
        (s.observed_generation == d.metadata.generation
            && s.updated_replicas == Some(6)
            && s.available_replicas == Some(6))
        .then_some(d)
    })
    .await;
    let revision = |o: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
        o.annotations
            .as_ref()
            .and_then(|a| a.get("deployment.kubernetes.io/revision").cloned())
    };
    assert_eq!(revision(&done.metadata).as_deref(), Some("2"));
    let rs: Api<ReplicaSet> = Api::namespaced(api.clone().into_client(), "default");
    let sets = rs
        .list(&ListParams::default().labels("app=nginx"))
        .await
        .expect("list replicasets");
    assert_eq!(sets.items.len(), 2);
    for set in &sets.items {
        let owner = &set.metadata.owner_references.as_ref().expect("owned")[0];
        assert_eq!(
            (owner.kind.as_str(), owner.controller),
            ("Deployment", Some(true))
        );
        assert_eq!(Some(&owner.uid), done.metadata.uid.as_ref());
        assert!(
            set.metadata
                .labels
                .as_ref()
                .is_some_and(|l| l.contains_key("pod-template-hash"))
        );
    }
    let conditions = done.status.and_then(|s| s.conditions).unwrap_or_default();
    let reasons: Vec<_> = conditions
        .iter()
        .map(|c| (c.type_.as_str(), c.status.as_str(), c.reason.as_deref()))
        .collect();
    assert!(
        reasons.contains(&("Available", "True", Some("MinimumReplicasAvailable"))),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&("Progressing", "True", Some("NewReplicaSetAvailable"))),
        "{reasons:?}"
    );
}

#[tokio::test]
async fn stale_resource_versions_conflict_and_bad_input_gets_the_servers_status() {
    let sandbox = sandbox_with_rbac(Duration::ZERO).await;
    let api: Api<Deployment> =
        Api::namespaced(client(&sandbox.url(), Some(ADMIN_TOKEN)).await, "default");
    let stale = api.get(NAME).await.expect("get");
    api.patch(
        NAME,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 3}})),
    )
    .await
    .expect("someone else writes");
    let conflict_message = "Operation cannot be fulfilled on deployments.apps \"nginx-deployment\": the object has been modified; please apply your changes to the latest version and try again";

    // The worker's form: JSON patch that replaces resourceVersion.
    let e = api_error(
        api.patch(
            NAME,
            &PatchParams::default(),
            &json_patch(json!([
                {"op": "replace", "path": "/metadata/resourceVersion", "value": rv(&stale)},
                {"op": "replace", "path": "/spec/replicas", "value": 5}
            ])),
        )
        .await,
    );
    assert_eq!(
        (e.code, e.reason.as_str(), e.message.as_str()),
        (409, "Conflict", conflict_message)
    );
    // Merge patch and replace with a stale resourceVersion, and /scale.
    let e = api_error(
        api.patch(
            NAME,
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"resourceVersion": rv(&stale)}, "spec": {"replicas": 5}}),
            ),
        )
        .await,
    );
    assert_eq!(e.code, 409);
    assert_eq!(
        api_error(api.replace(NAME, &PostParams::default(), &stale).await).code,
        409
    );
    let e = api_error(
        api.patch_scale(
            NAME,
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"resourceVersion": rv(&stale)}, "spec": {"replicas": 5}}),
            ),
        )
        .await,
    );
    assert_eq!(e.code, 409);
    assert_eq!(
        replicas(&api.get(NAME).await.expect("get")),
        3,
        "no conflicting write landed"
    );

    // 422 with the real wording and causes.
    let e = api_error(
        api.patch(
            NAME,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": -1}})),
        )
        .await,
    );
    assert_eq!(e.code, 422);
    assert_eq!(
        e.message,
        "Deployment.apps \"nginx-deployment\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"
    );
    let mut bad = stale.clone();
    bad.metadata = kube::api::ObjectMeta {
        name: Some("Bad_Name".to_owned()),
        ..Default::default()
    };
    let e = api_error(api.create(&PostParams::default(), &bad).await);
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    assert!(e.message.starts_with("Deployment.apps \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"), "{}", e.message);

    // 404, 409 AlreadyExists, create and delete.
    let e = api_error(api.get("web").await);
    assert_eq!(
        (e.code, e.reason.as_str(), e.message.as_str()),
        (404, "NotFound", "deployments.apps \"web\" not found")
    );
    let mut web = stale.clone();
    web.metadata = kube::api::ObjectMeta {
        name: Some("web".to_owned()),
        ..Default::default()
    };
    web.status = None;
    let created = api
        .create(&PostParams::default(), &web)
        .await
        .expect("create");
    assert_eq!(created.metadata.generation, Some(1));
    let e = api_error(api.create(&PostParams::default(), &web).await);
    assert_eq!(
        (e.code, e.reason.as_str(), e.message.as_str()),
        (
            409,
            "AlreadyExists",
            "deployments.apps \"web\" already exists"
        )
    );
    api.delete("web", &DeleteParams::default())
        .await
        .expect("delete");
    assert_eq!(api_error(api.get("web").await).code, 404);

    // Server-side apply is not served: 415 like a server without it.
    let e = api_error(
        api.patch(NAME, &PatchParams::apply("test"), &Patch::Apply(json!({})))
            .await,
    );
    assert_eq!((e.code, e.reason.as_str()), (415, "UnsupportedMediaType"));
}

#[tokio::test]
async fn the_bots_token_gets_exactly_the_role_and_forbidden_answers_otherwise() {
    let sandbox = sandbox_with_rbac(Duration::ZERO).await;
    let bot = client(&sandbox.url(), Some(BOT_TOKEN)).await;
    let api: Api<Deployment> = Api::namespaced(bot.clone(), "default");

    api.get(NAME).await.expect("get is allowed");
    api.list(&ListParams::default())
        .await
        .expect("list is allowed");
    api.patch(
        NAME,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 3}})),
    )
    .await
    .expect("patch is allowed");
    let e = api_error(
        api.patch_scale(
            NAME,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 4}})),
        )
        .await,
    );
    assert_eq!(
        (e.code, e.message.as_str()),
        (
            403,
            format!(
                "deployments.apps \"{NAME}\" is forbidden: User \"{BOT}\" cannot patch resource \"deployments/scale\" in API group \"apps\" in the namespace \"default\""
            )
            .as_str()
        ),
        "the role has no scale subresource"
    );
    Api::<ReplicaSet>::namespaced(bot.clone(), "default")
        .list(&ListParams::default())
        .await
        .expect("replicasets are readable");

    let e = api_error(api.delete(NAME, &DeleteParams::default()).await);
    assert_eq!((e.code, e.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        e.message,
        format!(
            "deployments.apps \"nginx-deployment\" is forbidden: User \"{BOT}\" cannot delete resource \"deployments\" in API group \"apps\" in the namespace \"default\""
        )
    );
    let other: Api<Deployment> = Api::namespaced(bot.clone(), "prod");
    let e = api_error(
        other
            .patch("web", &PatchParams::default(), &Patch::Merge(json!({})))
            .await,
    );
    assert_eq!(
        e.message,
        format!(
            "deployments.apps \"web\" is forbidden: User \"{BOT}\" cannot patch resource \"deployments\" in API group \"apps\" in the namespace \"prod\""
        )
    );
    let e = api_error(
        Api::<ConfigMap>::namespaced(bot, "default")
            .list(&ListParams::default())
            .await,
    );
    assert_eq!(e.code, 403);

    // Only administrators may impersonate.
    let request = axum::http::Request::get("/apis/apps/v1/namespaces/default/deployments")
        .header("Impersonate-User", "kubernetes-admin")
        .body(Vec::new())
        .expect("request");
    let e = match client(&sandbox.url(), Some(BOT_TOKEN))
        .await
        .request_text(request)
        .await
    {
        Err(kube::Error::Api(s)) => s,
        other => panic!("expected 403, got {other:?}"),
    };
    assert_eq!(
        e.message,
        format!(
            "users \"kubernetes-admin\" is forbidden: User \"{BOT}\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"
        )
    );

    let stranger = client(&sandbox.url(), Some("not-a-token")).await;
    let e = api_error(
        Api::<Deployment>::namespaced(stranger, "default")
            .get(NAME)
            .await,
    );
    assert_eq!((e.code, e.reason.as_str()), (401, "Unauthorized"));
    let anonymous = client(&sandbox.url(), None).await;
    let e = api_error(
        Api::<Deployment>::namespaced(anonymous, "default")
            .get(NAME)
            .await,
    );
    assert_eq!(e.code, 403, "RBAC on: anonymous is no admin");

    let log = sandbox.requests();
    assert_eq!(count(&log, "DELETE", "/deployments/nginx-deployment"), 1);
    assert!(log.iter().any(|r| r.user == BOT && r.status == Some(403)));
}

#[tokio::test]
async fn a_watch_from_a_resource_version_sees_the_following_changes_in_order() {
    let sandbox = sandbox_with_rbac(Duration::ZERO).await;
    let api: Api<Deployment> =
        Api::namespaced(client(&sandbox.url(), Some(ADMIN_TOKEN)).await, "default");
    let start = rv(&api.get(NAME).await.expect("get"));
    api.patch(
        NAME,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 3}})),
    )
    .await
    .expect("patch");
    let params = WatchParams::default()
        .fields(&format!("metadata.name={NAME}"))
        .timeout(30);
    let stream = api.watch(&params, &start).await.expect("watch");
    let mut stream = Box::pin(stream);
    let first = tokio::time::timeout(Duration::from_secs(10), stream.try_next())
        .await
        .expect("an event in time")
        .expect("a good event")
        .expect("the stream is open");
    match first {
        WatchEvent::Modified(d) => {
            assert_eq!(replicas(&d), 3);
            assert!(
                rv(&d).parse::<u64>().expect("numeric") > start.parse::<u64>().expect("numeric")
            );
        }
        other => panic!("expected the patch first, got {other:?}"),
    }
    api.delete(NAME, &DeleteParams::default())
        .await
        .expect("delete");
    let deleted = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(event) = stream.next().await {
            if let Ok(WatchEvent::Deleted(d)) = event {
                return d;
            }
        }
        panic!("the watch ended before the deletion");
    })
    .await
    .expect("the deletion in time");
    assert_eq!(deleted.metadata.name.as_deref(), Some(NAME));
}

#[tokio::test]
async fn a_rollout_to_an_unpullable_image_stalls_until_its_progress_deadline() {
    let sandbox = rbac_builder(Duration::ZERO)
        .unpullable_image("nginx:bad")
        .start()
        .await
        .expect("start the sandbox");
    let api: Api<Deployment> =
        Api::namespaced(client(&sandbox.url(), Some(ADMIN_TOKEN)).await, "default");
    api.patch(
        NAME,
        &PatchParams::default(),
        &Patch::Strategic(json!({"spec": {
            "progressDeadlineSeconds": 1,
            "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:bad"}]}}
        }})),
    )
    .await
    .expect("patch");
    let progressing = |d: &Deployment| {
        d.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "Progressing"))
            .map(|c| (c.status.clone(), c.reason.clone().unwrap_or_default()))
    };
    let stalled = eventually("the progress deadline", Duration::from_secs(10), || async {
        let d = api.get(NAME).await.ok()?;
        (progressing(&d) == Some(("False".to_owned(), "ProgressDeadlineExceeded".to_owned())))
            .then_some(d)
    })
    .await;
    let status = stalled.status.expect("status");
    assert_eq!(
        status.updated_replicas,
        Some(1),
        "one new pod surged, never ready"
    );
    assert_eq!(
        status.available_replicas,
        Some(2),
        "the old pods keep serving"
    );

    api.patch(
        NAME,
        &PatchParams::default(),
        &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.21"}]}}}})),
    )
    .await
    .expect("fix the image");
    eventually(
        "the fixed rollout to finish",
        Duration::from_secs(10),
        || async {
            let d = api.get(NAME).await.ok()?;
            (progressing(&d) == Some(("True".to_owned(), "NewReplicaSetAvailable".to_owned())))
                .then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn unknown_fields_are_dropped_with_a_warning_or_refused_when_strict() {
    let sandbox = sandbox_with_rbac(Duration::ZERO).await;
    let api: Api<Deployment> =
        Api::namespaced(client(&sandbox.url(), Some(ADMIN_TOKEN)).await, "default");
    let before = api.get(NAME).await.expect("get");
    let typo = Patch::Merge(json!({"spec": {"replicaz": 5}}));

    let kept = api
        .patch(NAME, &PatchParams::default(), &typo)
        .await
        .expect("warned, not refused");
    assert_eq!(
        rv(&kept),
        rv(&before),
        "nothing known changed, nothing written"
    );
    let stored = sandbox
        .object("apps/v1", "Deployment", "default", NAME)
        .expect("exists");
    assert!(
        stored["spec"].get("replicaz").is_none(),
        "pruned like the API server"
    );

    let strict = PatchParams {
        field_validation: Some(kube::api::ValidationDirective::Strict),
        ..PatchParams::default()
    };
    let e = api_error(api.patch(NAME, &strict, &typo).await);
    assert_eq!((e.code, e.reason.as_str()), (400, "BadRequest"));
    assert_eq!(
        e.message,
        "Deployment in version \"v1\" cannot be handled as a Deployment: strict decoding error: unknown field \"spec.replicaz\""
    );
}

#[tokio::test]
async fn stopping_ends_open_watches_and_releases_the_port() {
    let sandbox = sandbox_with_rbac(Duration::ZERO).await;
    let addr = sandbox.addr();
    let api: Api<Deployment> =
        Api::namespaced(client(&sandbox.url(), Some(ADMIN_TOKEN)).await, "default");
    let stream = api
        .watch(&WatchParams::default(), "0")
        .await
        .expect("watch");
    let mut stream = Box::pin(stream);
    assert!(matches!(
        stream.try_next().await,
        Ok(Some(WatchEvent::Added(_)))
    ));
    tokio::time::timeout(Duration::from_secs(10), sandbox.stop())
        .await
        .expect("stop does not wait for the watch to time out");
    let rest = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("the watch ends");
    assert!(!matches!(rest, Some(Ok(_))), "no more events: {rest:?}");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the port is released"
    );
}

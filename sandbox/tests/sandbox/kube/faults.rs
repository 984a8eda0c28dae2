//! Injected faults as kube-rs sees them, armed through the Rust API and
//! through the control endpoint, and the request log that counts them.

use std::time::Duration;

use axum::http::{Request, header};
use chatops_sandbox::kube::{Fault, KubeSandbox, RecordedRequest};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use tokio::time::Instant;

use super::helpers::{client, count, default_client, manifest};

const NAME: &str = "nginx-deployment";
const PATH: &str = "/apis/apps/v1/namespaces/default/deployments/nginx-deployment";

async fn sandbox() -> KubeSandbox {
    KubeSandbox::builder()
        .rollout(Duration::ZERO)
        .seed_yaml(&manifest("nginx-deployment.yaml"))
        .start()
        .await
        .expect("start the sandbox")
}

fn code_and_reason<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> (u16, String) {
    match result {
        Err(kube::Error::Api(status)) => (status.code, status.reason),
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn stored_replicas(sandbox: &KubeSandbox) -> serde_json::Value {
    sandbox
        .object("apps/v1", "Deployment", "default", NAME)
        .expect("exists")["spec"]["replicas"]
        .clone()
}

#[tokio::test]
async fn each_kind_of_fault_reaches_kube_rs_as_a_real_server_would_send_it() {
    let sandbox = sandbox().await;
    let kube = client(&sandbox.url(), None).await;
    let api: Api<Deployment> = Api::namespaced(kube.clone(), "default");
    let merge = Patch::Merge(json!({"spec": {"replicas": 3}}));

    sandbox.inject(Fault::status(500).method("GET").path(PATH));
    assert_eq!(
        code_and_reason(api.get(NAME).await),
        (500, "InternalError".to_owned())
    );
    api.get(NAME).await.expect("a one-shot fault is used up");

    sandbox.inject(Fault::status(503).path(PATH).times(2));
    assert_eq!(
        code_and_reason(api.get(NAME).await),
        (503, "ServiceUnavailable".to_owned())
    );
    assert_eq!(code_and_reason(api.get(NAME).await).0, 503);
    api.get(NAME).await.expect("two times, then served");

    // kube-rs as the worker configures it retries 503s by itself.
    sandbox.inject(Fault::status(503).path(PATH).times(2));
    let before = count(&sandbox.requests(), "GET", PATH);
    Api::<Deployment>::namespaced(default_client(&sandbox.url()).await, "default")
        .get(NAME)
        .await
        .expect("retried past two 503s");
    assert_eq!(count(&sandbox.requests(), "GET", PATH), before + 3);

    sandbox.inject(Fault::status(409).method("PATCH").path(PATH));
    match api.patch(NAME, &PatchParams::default(), &merge).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));
            assert!(
                s.message.starts_with(
                    "Operation cannot be fulfilled on deployments.apps \"nginx-deployment\""
                ),
                "{}",
                s.message
            );
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(
        stored_replicas(&sandbox),
        2,
        "a faulted write changes nothing"
    );

    // 429 carries Retry-After, in the header and in the Status.
    sandbox.inject(Fault::too_many_requests(3).path(PATH));
    let request = Request::get(PATH)
        .body(kube::client::Body::empty())
        .expect("request");
    let response = kube.send(request).await.expect("an answer");
    assert_eq!(response.status().as_u16(), 429);
    assert_eq!(
        response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok()),
        Some("3")
    );
    sandbox.inject(Fault::too_many_requests(3).path(PATH));
    match api.get(NAME).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!((s.code, s.reason.as_str()), (429, "TooManyRequests"));
        }
        other => panic!("expected 429, got {other:?}"),
    }

    // Latency: served, late.
    sandbox.inject(Fault::latency(Duration::from_millis(300)).path(PATH));
    let started = Instant::now();
    api.get(NAME).await.expect("served after the delay");
    assert!(started.elapsed() >= Duration::from_millis(300));

    // Closed without an answer: a transport error, not an API error; the
    // write did not happen, and the next request is served.
    sandbox.inject(Fault::close().method("PATCH").path(PATH));
    match api.patch(NAME, &PatchParams::default(), &merge).await {
        Err(kube::Error::Api(s)) => panic!("expected no answer, got a Status {s:?}"),
        Err(_) => {}
        Ok(d) => panic!("expected no answer, got {d:?}"),
    }
    assert_eq!(stored_replicas(&sandbox), 2);
    api.patch(NAME, &PatchParams::default(), &merge)
        .await
        .expect("served again");
    assert_eq!(stored_replicas(&sandbox), 3);

    let log = sandbox.requests();
    assert_eq!(
        count(&log, "PATCH", PATH),
        3,
        "every patch is logged: {log:#?}"
    );
    let closed: Vec<&RecordedRequest> = log.iter().filter(|r| r.status.is_none()).collect();
    assert_eq!(closed.len(), 1);
    assert!(closed[0].fault && closed[0].is_write());
    assert_eq!(log.iter().filter(|r| r.fault).count(), 9);
}

#[tokio::test]
async fn the_control_endpoint_arms_faults_and_serves_the_request_log() {
    let sandbox = sandbox().await;
    let kube = client(&sandbox.url(), None).await;
    let api: Api<Deployment> = Api::namespaced(kube.clone(), "default");
    let post = |body: serde_json::Value| {
        Request::post("/_sandbox/faults")
            .header(header::CONTENT_TYPE, "application/json")
            .body(body.to_string().into_bytes())
            .expect("request")
    };

    kube.request_text(post(json!({"method": "PATCH", "path": "/apis/apps/v1/namespaces/*/deployments/*", "status": 503, "retry_after": 2, "count": 1})))
        .await
        .expect("fault armed");
    let merge = Patch::Merge(json!({"spec": {"replicas": 4}}));
    assert_eq!(
        code_and_reason(api.patch(NAME, &PatchParams::default(), &merge).await).0,
        503
    );
    api.patch(NAME, &PatchParams::default(), &merge)
        .await
        .expect("served");

    kube.request_text(post(json!({"path": "/apis/apps/v1/", "status": 500})))
        .await
        .expect("fault armed");
    kube.request_text(
        Request::delete("/_sandbox/faults")
            .body(Vec::new())
            .expect("request"),
    )
    .await
    .expect("faults cleared");
    api.get(NAME).await.expect("no fault left");

    kube.request_text(
        Request::put("/_sandbox/rollout")
            .header(header::CONTENT_TYPE, "application/json")
            .body(br#"{"millis": 1234}"#.to_vec())
            .expect("request"),
    )
    .await
    .expect("rollout set");
    let rollout = kube
        .request_text(
            Request::get("/_sandbox/rollout")
                .body(Vec::new())
                .expect("request"),
        )
        .await
        .expect("rollout read");
    assert_eq!(rollout, r#"{"millis":1234}"#);

    let log: Vec<RecordedRequest> = serde_json::from_str(
        &kube
            .request_text(
                Request::get("/_sandbox/requests")
                    .body(Vec::new())
                    .expect("request"),
            )
            .await
            .expect("log"),
    )
    .expect("the log is JSON");
    assert!(
        log.iter().all(|r| !r.path.starts_with("/_sandbox")),
        "control calls are not logged"
    );
    let patches: Vec<Option<u16>> = log
        .iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| r.status)
        .collect();
    assert_eq!(patches, [Some(503), Some(200)]);
    assert_eq!(log.iter().filter(|r| r.is_write()).count(), 2);
}

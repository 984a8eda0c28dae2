//! `restart <deployment>`: stamps `kubectl.kubernetes.io/restartedAt` on the
//! pod template, as `kubectl rollout restart` does, which starts a rollout.
//! The stamp is to the nanosecond, where kubectl's is to the second, so two
//! restarts typed within one second are two rollouts, not one.

use chatops_shared::{DeploymentName, Outcome};
use k8s_openapi::api::apps::v1::Deployment;
use serde_json::json;

use super::{Applied, Plan, annotation_op};

pub(super) const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

pub(super) fn plan(name: &DeploymentName, read: &Deployment) -> Plan {
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.9fZ")
        .to_string();
    let template_meta = read
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref());
    let mut ops = Vec::new();
    if template_meta.is_none() {
        ops.push(json!({"op": "add", "path": "/spec/template/metadata", "value": {}}));
    }
    let has_annotations = template_meta.is_some_and(|m| m.annotations.is_some());
    ops.push(annotation_op(
        "/spec/template/metadata/annotations",
        has_annotations,
        RESTARTED_AT,
        &now,
    ));
    let before = restarted_at(read);
    let name = name.clone();
    Plan {
        ops,
        report: Box::new(move |updated| {
            Applied::new(
                Outcome::Applied,
                format!("restarted {name}: a new rollout has started"),
            )
            .change(before, restarted_at(updated))
        }),
    }
}

fn restarted_at(d: &Deployment) -> Option<String> {
    d.spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.annotations.as_ref())
        .and_then(|a| a.get(RESTARTED_AT).cloned())
}

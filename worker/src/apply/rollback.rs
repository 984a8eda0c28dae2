//! `rollback <deployment> [to <revision>]`: restores the pod template of a
//! previous revision, read from the ReplicaSets the Deployment owns, as
//! `kubectl rollout undo` does.

use chatops_shared::{DeploymentName, Outcome};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::api::{Api, ListParams};
use serde_json::json;

use super::{Applied, Engine, Plan, images, its};
use crate::error::{ApplyError, Doing};

pub(super) const REVISION: &str = "deployment.kubernetes.io/revision";
const TEMPLATE_HASH: &str = "pod-template-hash";

/// The revisions of a deployment, oldest first, with their ReplicaSets.
pub(super) async fn revisions(
    engine: &Engine,
    ns: &str,
    name: &DeploymentName,
    d: &Deployment,
) -> Result<Vec<(u64, ReplicaSet)>, ApplyError> {
    let selector = d
        .spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.as_ref())
        .map(|labels| {
            labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let uid = d.metadata.uid.clone().unwrap_or_default();
    engine.limiter.acquire().await;
    let list = Api::<ReplicaSet>::namespaced(engine.client.clone(), ns)
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| {
            ApplyError::from_kube(
                e,
                Doing {
                    verb: "list",
                    resource: "replicasets",
                    name: None,
                    namespace: ns,
                },
            )
        })?;
    let mut revisions: Vec<(u64, ReplicaSet)> = list
        .items
        .into_iter()
        .filter(|rs| {
            rs.metadata.owner_references.as_ref().is_some_and(|owners| {
                owners
                    .iter()
                    .any(|o| o.uid == uid && o.kind == "Deployment")
            })
        })
        .filter_map(|rs| {
            let revision = rs
                .metadata
                .annotations
                .as_ref()?
                .get(REVISION)?
                .parse()
                .ok()?;
            Some((revision, rs))
        })
        .collect();
    revisions.sort_by_key(|(r, _)| *r);
    if revisions.is_empty() {
        tracing::debug!(deployment = %name, "no revisions found");
    }
    Ok(revisions)
}

fn current_revision(d: &Deployment) -> Option<u64> {
    d.metadata.annotations.as_ref()?.get(REVISION)?.parse().ok()
}

pub(super) async fn plan(
    engine: &Engine,
    ns: &str,
    name: &DeploymentName,
    read: &Deployment,
    to: Option<u64>,
) -> Result<Plan, ApplyError> {
    let revisions = revisions(engine, ns, name, read).await?;
    let current = current_revision(read).or_else(|| revisions.last().map(|(r, _)| *r));
    let listed = || {
        let numbers: Vec<String> = revisions.iter().map(|(r, _)| r.to_string()).collect();
        its("revision", &numbers)
    };
    let target = match to {
        Some(wanted) => revisions
            .iter()
            .find(|(r, _)| *r == wanted)
            .ok_or_else(|| {
                ApplyError::Rejected(format!("{name} has no revision {wanted}; {}", listed()))
            })?,
        None => revisions
            .iter()
            .rev()
            .find(|(r, _)| Some(*r) < current)
            .ok_or_else(|| {
                ApplyError::Rejected(format!("{name} has no earlier revision to roll back to"))
            })?,
    };
    let (revision, rs) = (target.0, &target.1);
    let mut template = rs
        .spec
        .as_ref()
        .and_then(|s| s.template.clone())
        .ok_or_else(|| {
            ApplyError::Permanent(format!("revision {revision} of {name} has no pod template"))
        })?;
    if let Some(labels) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove(TEMPLATE_HASH);
    }
    let value = serde_json::to_value(&template)
        .map_err(|e| ApplyError::Permanent(format!("cannot copy revision {revision}: {e}")))?;
    // As `kubectl rollout undo` skips a revision whose template the
    // deployment already has: the patch changes nothing, and says so.
    let unchanged = Some(revision) == current
        || read
            .spec
            .as_ref()
            .and_then(|s| serde_json::to_value(&s.template).ok())
            .is_some_and(|now| now == value);
    let before = images(read);
    let name = name.clone();
    Ok(Plan {
        ops: vec![json!({"op": "replace", "path": "/spec/template", "value": value})],
        report: Box::new(move |updated| {
            let after = images(updated);
            let message = if unchanged {
                format!("{name} is already at revision {revision} ({after}); nothing changed")
            } else {
                format!("rolled {name} back to revision {revision} ({after})")
            };
            Applied::new(Outcome::Applied, message)
                .change(Some(before), Some(after))
                .unchanged(unchanged)
        }),
    })
}

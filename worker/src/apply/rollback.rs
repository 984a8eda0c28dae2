//! `rollback <deployment> [to <revision>]`: restores the pod template of a
//! previous revision, read from the ReplicaSets the Deployment owns, as
//! `kubectl rollout undo` does.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use chatops_shared::{DeploymentName, Outcome};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use serde_json::json;

use super::{Applied, Engine, Plan, images, its};
use crate::error::{ApplyError, Doing};

pub(super) const REVISION: &str = "deployment.kubernetes.io/revision";
const TEMPLATE_HASH: &str = "pod-template-hash";

/// A dry run's revisions of each deployment it wrote to, by namespace and
/// name: the cluster's, then as each change to a pod template would have
/// added one.
#[derive(Debug, Default)]
pub(super) struct Simulated(Mutex<HashMap<(String, DeploymentName), Revisions>>);

/// Revision numbers with their ReplicaSets, oldest first. Boxed: a
/// ReplicaSet is kilobytes inline, and a dry run shifts the list along
/// with each change to a pod template.
type Revisions = Vec<(u64, Box<ReplicaSet>)>;

impl Simulated {
    /// Runs `f` on a deployment's revisions, if the dry run has them.
    fn update<T>(
        &self,
        ns: &str,
        name: &DeploymentName,
        f: impl FnOnce(&mut Revisions) -> T,
    ) -> Option<T> {
        let mut all = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        all.get_mut(&(ns.to_owned(), name.clone())).map(f)
    }

    /// Runs `f` on a deployment's revisions, starting them as the
    /// cluster's `stored` unless the dry run has its own by now. Their
    /// templates are kept as the deployment would hold them (see
    /// [`comparable`]).
    fn start<T>(
        &self,
        ns: &str,
        name: &DeploymentName,
        mut stored: Revisions,
        f: impl FnOnce(&mut Revisions) -> T,
    ) -> T {
        for (_, rs) in &mut stored {
            if let Some(template) = rs.spec.as_mut().and_then(|s| s.template.as_mut()) {
                drop_hash(template);
            }
        }
        let mut all = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        f(all.entry((ns.to_owned(), name.clone())).or_insert(stored))
    }
}

/// In a dry run, `updated` (the deployment as a change to its pod template
/// would leave it, `read` before) gets the revision the deployment
/// controller would give it, and the simulated revisions follow: a template
/// that an earlier revision has becomes the newest revision under a new
/// number, as the controller renumbers its ReplicaSet; another one is a new
/// revision. An unchanged template makes none.
pub(super) async fn record(
    engine: &Engine,
    ns: &str,
    name: &DeploymentName,
    read: &Deployment,
    updated: &mut Deployment,
) -> Result<(), ApplyError> {
    fn template(d: &Deployment) -> Option<&PodTemplateSpec> {
        d.spec.as_ref().map(|s| &s.template)
    }
    let Some(now) = template(updated).filter(|&now| template(read) != Some(now)) else {
        return Ok(());
    };
    let limit = updated
        .spec
        .as_ref()
        .and_then(|s| s.revision_history_limit)
        .unwrap_or(10);
    let renumber = |revisions: &mut Revisions| {
        let next = revisions.last().map_or(1, |(r, _)| r + 1);
        let same =
            |rs: &ReplicaSet| rs.spec.as_ref().and_then(|s| s.template.as_ref()) == Some(now);
        let mut rs = match revisions.iter().position(|(_, rs)| same(rs)) {
            Some(at) => revisions.remove(at).1,
            None => Box::new(ReplicaSet {
                spec: Some(ReplicaSetSpec {
                    template: Some(now.clone()),
                    ..ReplicaSetSpec::default()
                }),
                ..ReplicaSet::default()
            }),
        };
        rs.annotations_mut()
            .insert(REVISION.to_owned(), next.to_string());
        revisions.push((next, rs));
        // The controller keeps `revisionHistoryLimit` old ReplicaSets (10
        // unless set) besides the newest, and deletes the oldest beyond.
        let keep = usize::try_from(limit).unwrap_or(0).saturating_add(1);
        let beyond = revisions.len().saturating_sub(keep);
        revisions.drain(..beyond);
        next
    };
    let next = simulated(engine, ns, name, read, renumber).await?;
    updated
        .annotations_mut()
        .insert(REVISION.to_owned(), next.to_string());
    Ok(())
}

/// A ReplicaSet's pod template as its deployment would hold it: without
/// the label the controller adds to tell its ReplicaSets apart.
fn comparable(rs: &ReplicaSet) -> Option<PodTemplateSpec> {
    let mut template = rs.spec.as_ref()?.template.clone()?;
    drop_hash(&mut template);
    Some(template)
}

fn drop_hash(template: &mut PodTemplateSpec) {
    if let Some(labels) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove(TEMPLATE_HASH);
    }
}

/// The revisions of a deployment, oldest first, with their ReplicaSets (in
/// a dry run, as the dry runs so far would have left them).
pub(super) async fn revisions(
    engine: &Engine,
    ns: &str,
    name: &DeploymentName,
    d: &Deployment,
) -> Result<Revisions, ApplyError> {
    if engine.dry_run {
        return simulated(engine, ns, name, d, |revisions| revisions.clone()).await;
    }
    stored_revisions(engine, ns, name, d).await
}

/// Runs `f` on a dry run's revisions of deployment `d`; the first time,
/// they start as the cluster's.
async fn simulated<T>(
    engine: &Engine,
    ns: &str,
    name: &DeploymentName,
    d: &Deployment,
    f: impl Fn(&mut Revisions) -> T,
) -> Result<T, ApplyError> {
    if let Some(done) = engine.simulated.update(ns, name, &f) {
        return Ok(done);
    }
    let stored = stored_revisions(engine, ns, name, d).await?;
    Ok(engine.simulated.start(ns, name, stored, f))
}

/// The revisions the cluster's ReplicaSets hold, oldest first.
async fn stored_revisions(
    engine: &Engine,
    ns: &str,
    name: &DeploymentName,
    d: &Deployment,
) -> Result<Revisions, ApplyError> {
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
    let mut revisions: Revisions = list
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
            Some((revision, Box::new(rs)))
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
    let template = comparable(rs).ok_or_else(|| {
        ApplyError::Permanent(format!("revision {revision} of {name} has no pod template"))
    })?;
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
    let (name, ns) = (name.clone(), ns.to_owned());
    Ok(Plan {
        ops: vec![json!({"op": "replace", "path": "/spec/template", "value": value})],
        report: Box::new(move |updated| {
            let after = images(updated);
            let message = if unchanged {
                format!("{name} is already at revision {revision} ({after}); nothing changed")
            } else if after == before {
                // After a restart, the revision before has the same images:
                // the rollback is a restart, not the undoing of a deploy.
                format!(
                    "rolled {name} back to revision {revision} ({after}); the images are as they were, as the two revisions differ only in the rest of the pod template (a restart's time, say); 'history {name} in {ns}' lists the revisions"
                )
            } else {
                format!("rolled {name} back to revision {revision} ({after})")
            };
            Applied::new(Outcome::Applied, message)
                .change(Some(before), Some(after))
                .unchanged(unchanged)
        }),
    })
}

//! Following a rollout the way `kubectl rollout status` decides it.

use chatops_shared::DeploymentName;
use k8s_openapi::api::apps::v1::Deployment;

use super::{Engine, replicas};
use crate::error::ApplyError;

/// Where a rollout stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollout {
    /// Still going; the sentence says how far.
    Progressing(String),
    Complete(String),
    /// The deployment controller gave up (ProgressDeadlineExceeded).
    Failed(String),
}

/// kubectl's rules: the spec must be observed, then every replica updated,
/// old ones gone, and the updated ones available.
pub(super) fn status(name: &DeploymentName, d: &Deployment) -> Rollout {
    let generation = d.metadata.generation.unwrap_or(0);
    let Some(status) = d.status.as_ref() else {
        return Rollout::Progressing(format!("waiting for the rollout of {name} to start"));
    };
    if status.observed_generation.unwrap_or(0) < generation {
        return Rollout::Progressing(format!("waiting for the change to {name} to be observed"));
    }
    let deadline_exceeded = status.conditions.as_ref().is_some_and(|cs| {
        cs.iter().any(|c| {
            c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
        })
    });
    if deadline_exceeded {
        return Rollout::Failed(format!(
            "the rollout of {name} exceeded its progress deadline"
        ));
    }
    let want = replicas(d);
    let updated = status.updated_replicas.unwrap_or(0);
    let total = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    if updated < want {
        Rollout::Progressing(format!(
            "{updated} of {want} new replicas of {name} updated"
        ))
    } else if total > updated {
        Rollout::Progressing(format!(
            "{} old replicas of {name} pending termination",
            total - updated
        ))
    } else if available < updated {
        Rollout::Progressing(format!(
            "{available} of {updated} updated replicas of {name} available"
        ))
    } else {
        Rollout::Complete(format!(
            "{name} rolled out: {available} of {want} replicas available"
        ))
    }
}

impl Engine {
    /// Reads the deployment and says where its rollout stands.
    pub async fn rollout(&self, ns: &str, name: &DeploymentName) -> Result<Rollout, ApplyError> {
        let d = self.get(ns, name).await?;
        Ok(status(name, &d))
    }
}

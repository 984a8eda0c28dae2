//! Following a rollout the way `kubectl rollout status` decides it.

use chatops_shared::text::count;
use chatops_shared::{DeploymentName, FieldGroup};
use k8s_openapi::api::apps::v1::Deployment;

use super::{Engine, annotations, replicas};
use crate::error::ApplyError;
use crate::fence::{self, Check, Position};

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
    let paused = d.spec.as_ref().and_then(|s| s.paused) == Some(true);
    if updated < want && paused {
        // Nothing rolls out until someone resumes it; waiting would only
        // run into the follow limit.
        Rollout::Complete(format!(
            "{name} is paused, so the change rolls out only once it is resumed (kubectl rollout resume)"
        ))
    } else if updated < want {
        Rollout::Progressing(format!(
            "{updated} of {want} new replicas of {name} updated"
        ))
    } else if total > updated {
        Rollout::Progressing(format!(
            "{} of {name} pending termination",
            count(total - updated, "old replica", "old replicas")
        ))
    } else if total > want {
        // Scaled down: the replicas above the count are still going.
        Rollout::Progressing(format!(
            "{} replicas of {name} pending termination",
            total - want
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
    /// Also whether a later command has changed `group` since the one at
    /// `position` (its fence moved on).
    pub async fn rollout(
        &self,
        ns: &str,
        name: &DeploymentName,
        group: FieldGroup,
        position: &Position,
    ) -> Result<(Rollout, Check), ApplyError> {
        let d = self.get(ns, name).await?;
        let recorded = fence::recorded(annotations(&d), group);
        Ok((status(name, &d), fence::check(recorded, position)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(want: i32, total: i32, updated: i32, available: i32) -> Deployment {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "generation": 2},
            "spec": {
                "replicas": want,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"spec": {"containers": []}},
            },
            "status": {
                "observedGeneration": 2,
                "replicas": total,
                "updatedReplicas": updated,
                "availableReplicas": available,
            },
        }))
        .expect("a deployment")
    }

    #[test]
    fn a_paused_deployment_is_not_waited_for() {
        let name = DeploymentName::parse("web").expect("valid");
        let mut d = deployment(3, 3, 0, 3);
        d.spec.as_mut().expect("a spec").paused = Some(true);
        assert_eq!(
            status(&name, &d),
            Rollout::Complete(
                "web is paused, so the change rolls out only once it is resumed (kubectl rollout resume)"
                    .to_owned()
            )
        );
        d.status.as_mut().expect("a status").updated_replicas = Some(3);
        assert_eq!(
            status(&name, &d),
            Rollout::Complete("web rolled out: 3 of 3 replicas available".to_owned()),
            "a paused deployment still scales"
        );
    }

    #[test]
    fn a_scale_down_is_rolled_out_once_the_surplus_replicas_are_gone() {
        let name = DeploymentName::parse("web").expect("valid");
        assert_eq!(
            status(&name, &deployment(1, 3, 3, 3)),
            Rollout::Progressing("2 replicas of web pending termination".to_owned())
        );
        assert_eq!(
            status(&name, &deployment(1, 1, 1, 1)),
            Rollout::Complete("web rolled out: 1 of 1 replicas available".to_owned())
        );
    }
}

//! `scale <deployment> to <replicas>`: a JSON patch of `/spec/replicas`, as
//! the seed did, with the fence.

use chatops_shared::text::count;
use chatops_shared::{DeploymentName, Outcome, Replicas};
use k8s_openapi::api::apps::v1::Deployment;
use serde_json::json;

use super::{Applied, Plan, replicas};

pub(super) fn plan(name: &DeploymentName, read: &Deployment, to: Replicas) -> Plan {
    let before = replicas(read);
    let name = name.clone();
    Plan {
        ops: vec![json!({"op": "add", "path": "/spec/replicas", "value": to.get()})],
        report: Box::new(move |updated| {
            let after = replicas(updated);
            let replicas = count(after, "replica", "replicas");
            let message = if before == after {
                format!("{name} already had {replicas}; nothing changed")
            } else if after == 0 {
                // Said plainly: it no longer serves anything.
                format!("scaled {name} from {before} to 0 replicas; it runs no pods now")
            } else {
                format!("scaled {name} from {before} to {replicas}")
            };
            Applied::new(Outcome::Applied, message)
                .change(Some(before.to_string()), Some(after.to_string()))
                .unchanged(before == after)
        }),
    }
}

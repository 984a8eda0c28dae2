//! `deploy <image> to <deployment>` and `set image <deployment>
//! [<container>=]<image:tag>`: the named container, or the only one.

use chatops_shared::{ContainerName, DeploymentName, ImageRef, Outcome};
use k8s_openapi::api::apps::v1::Deployment;
use serde_json::json;

use super::{Applied, Plan, its};
use crate::error::ApplyError;

pub(super) fn plan(
    ns: &str,
    name: &DeploymentName,
    read: &Deployment,
    container: Option<&ContainerName>,
    image: &ImageRef,
) -> Result<Plan, ApplyError> {
    let containers = read
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .map(|p| p.containers.as_slice())
        .unwrap_or_default();
    let names = || -> Vec<String> { containers.iter().map(|c| c.name.clone()).collect() };
    let index = match container {
        Some(wanted) => containers
            .iter()
            .position(|c| c.name == wanted.as_str())
            .ok_or_else(|| {
                ApplyError::Rejected(format!(
                    "{name} has no container {wanted}; {}",
                    its("container", &names())
                ))
            })?,
        None if containers.len() == 1 => 0,
        None if containers.is_empty() => {
            return Err(ApplyError::Permanent(format!("{name} has no containers")));
        }
        None => {
            return Err(ApplyError::Rejected(format!(
                "{name} has several containers ({}); say which, e.g. 'set image {name} {}={image} in {ns}'",
                names().join(", "),
                containers[0].name
            )));
        }
    };
    let target = containers[index].name.clone();
    let before = containers[index].image.clone().unwrap_or_default();
    let (name, image) = (name.clone(), image.clone());
    Ok(Plan {
        ops: vec![
            json!({"op": "add", "path": format!("/spec/template/spec/containers/{index}/image"), "value": image.as_str()}),
        ],
        report: Box::new(move |updated| {
            let after = updated
                .spec
                .as_ref()
                .and_then(|s| s.template.spec.as_ref())
                .and_then(|p| p.containers.iter().find(|c| c.name == target))
                .and_then(|c| c.image.clone())
                .unwrap_or_default();
            let unchanged = before == after;
            let message = if unchanged {
                format!("{name} already runs {after} in container {target}; nothing changed")
            } else {
                format!("deployed {after} to {name} (container {target}, was {before})")
            };
            Applied::new(Outcome::Applied, message)
                .change(Some(before), Some(after))
                .unchanged(unchanged)
        }),
    })
}

//! `deploy <image> to <deployment>` and `set image <deployment>
//! [<container>=]<image:tag>`: the named container, or the only one.

use chatops_shared::{ContainerName, DeploymentName, ImageRef, Outcome};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Container;
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
            // An example names a container only where the image says
            // which: the one container running its repository now.
            // Followed as given, any other could put the image in the
            // wrong container.
            let runs_it = |c: &&Container| {
                c.image
                    .as_deref()
                    .and_then(|i| ImageRef::parse(i).ok())
                    .is_some_and(|i| same_repository(i.name(), image.name()))
            };
            let mut running = containers.iter().filter(runs_it);
            let which = match (running.next(), running.next()) {
                (Some(c), None) => format!(
                    "say which, e.g. 'set image {name} {}={image} in {ns}'",
                    c.name
                ),
                _ => format!("say which: 'set image {name} <container>={image} in {ns}'"),
            };
            return Err(ApplyError::Rejected(format!(
                "{name} has several containers ({}); {which}",
                names().join(", "),
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

/// Whether two image names are one repository, as a container runtime
/// resolves them: `nginx`, `library/nginx` and `docker.io/library/nginx`
/// are one.
fn same_repository(a: &str, b: &str) -> bool {
    fn canonical(name: &str) -> String {
        let name = name.strip_prefix("docker.io/").unwrap_or(name);
        let name = name.strip_prefix("index.docker.io/").unwrap_or(name);
        let name = name.strip_prefix("library/").unwrap_or(name);
        name.to_owned()
    }
    canonical(a) == canonical(b)
}

#[cfg(test)]
mod tests {
    use super::same_repository;

    #[test]
    fn repositories_compare_as_a_runtime_resolves_them() {
        assert!(same_repository("nginx", "docker.io/library/nginx"));
        assert!(same_repository("library/nginx", "nginx"));
        assert!(same_repository(
            "envoyproxy/envoy",
            "docker.io/envoyproxy/envoy"
        ));
        assert!(!same_repository("envoyproxy/envoy", "nginx"));
        assert!(!same_repository("registry.example.com/web", "web"));
        assert!(!same_repository(
            "registry.example.com:5000/web",
            "registry.example.com/web"
        ));
    }
}

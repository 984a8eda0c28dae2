//! Decoding as the API server decodes: every written object goes through
//! its typed form (the k8s-openapi types the clients use), so fields the
//! kind does not have are dropped, reported as warnings, or refused under
//! `fieldValidation=Strict` (what kubectl sends), and values of the wrong
//! type are a 400, as on a cluster.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::resources::ResourceType;

/// The `fieldValidation` directive of a write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum FieldValidation {
    /// Unknown fields are dropped silently.
    Ignore,
    /// Unknown fields are dropped with a warning (the server's default).
    #[default]
    Warn,
    /// Unknown fields fail the request.
    Strict,
}

impl FieldValidation {
    pub(crate) fn parse(s: Option<&str>) -> Self {
        match s {
            Some("Strict") => Self::Strict,
            Some("Ignore") => Self::Ignore,
            _ => Self::Warn,
        }
    }
}

/// The object as its type keeps it, and the paths of the fields it
/// dropped (`spec.replicaz`); Err is the decoder's complaint.
pub(crate) fn prune(rt: &ResourceType, object: &Value) -> Result<(Value, Vec<String>), String> {
    use k8s_openapi::api::{apps::v1 as apps, core::v1 as core, rbac::v1 as rbac};
    match rt.kind {
        "Deployment" => round_trip::<apps::Deployment>(object),
        "ReplicaSet" => round_trip::<apps::ReplicaSet>(object),
        "Namespace" => round_trip::<core::Namespace>(object),
        "ServiceAccount" => round_trip::<core::ServiceAccount>(object),
        "ConfigMap" => round_trip::<core::ConfigMap>(object),
        "Pod" => round_trip::<core::Pod>(object),
        "Event" => round_trip::<core::Event>(object),
        "Role" => round_trip::<rbac::Role>(object),
        "RoleBinding" => round_trip::<rbac::RoleBinding>(object),
        "ClusterRole" => round_trip::<rbac::ClusterRole>(object),
        "ClusterRoleBinding" => round_trip::<rbac::ClusterRoleBinding>(object),
        _ => Ok((object.clone(), Vec::new())),
    }
}

fn round_trip<T: DeserializeOwned + Serialize>(
    object: &Value,
) -> Result<(Value, Vec<String>), String> {
    let typed: T = serde_json::from_value(object.clone()).map_err(|e| e.to_string())?;
    let kept = serde_json::to_value(typed).map_err(|e| e.to_string())?;
    let mut dropped = Vec::new();
    diff("", object, &kept, &mut dropped);
    Ok((kept, dropped))
}

/// Paths present (and not null) in `given` but missing from `kept`.
fn diff(prefix: &str, given: &Value, kept: &Value, dropped: &mut Vec<String>) {
    match (given, kept) {
        (Value::Object(g), Value::Object(k)) => {
            for (key, value) in g {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                match k.get(key) {
                    Some(kept_value) => diff(&path, value, kept_value, dropped),
                    None if value.is_null() => {}
                    None => dropped.push(path),
                }
            }
        }
        (Value::Array(g), Value::Array(k)) => {
            for (i, (gv, kv)) in g.iter().zip(k).enumerate() {
                diff(&format!("{prefix}[{i}]"), gv, kv, dropped);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::kube::resources::DEPLOYMENT;

    #[test]
    fn unknown_fields_are_dropped_and_named_by_path() {
        let d = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {"replicaz": 3, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"spec": {"containers": [{"name": "web", "image": "x", "imagez": "y"}]}}}
        });
        let (kept, dropped) = prune(&DEPLOYMENT, &d).expect("decodes");
        assert_eq!(
            dropped,
            ["spec.replicaz", "spec.template.spec.containers[0].imagez"]
        );
        assert!(kept["spec"].get("replicaz").is_none());
        assert_eq!(
            kept["spec"]["template"]["spec"]["containers"][0]["image"],
            "x"
        );
    }
}

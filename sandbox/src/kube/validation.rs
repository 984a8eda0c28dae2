//! The API server's validation of the kinds stored without a controller of
//! their own (RBAC objects, ConfigMaps) and of ReplicaSets and Pods on
//! update: the rules clients most often meet, worded as the server words
//! them. Deployments have theirs in `deployment.rs`.

use serde_json::{Value, json};

use super::deployment;
use super::error::FieldError;
use super::meta::str_at;
use super::resources::ResourceType;

/// The most a ConfigMap's data may hold, keys and values.
const CONFIG_MAP_LIMIT: usize = 1024 * 1024;
const CONFIG_KEY_MSG: &str = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";
const POD_UPDATE_MSG: &str = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";
const IMMUTABLE_WHEN_SET: &str = "field is immutable when `immutable` is set";

/// The field errors of `object` (of kind `rt`), `old` being the stored
/// object on updates.
pub(crate) fn errors(rt: &ResourceType, object: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    match (rt.group, rt.kind) {
        ("rbac.authorization.k8s.io", "Role" | "ClusterRole") => rules(&mut errors, object),
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => {
            binding(&mut errors, rt.kind, object, old);
        }
        ("", "ConfigMap") => config_map(&mut errors, object, old),
        ("apps", "ReplicaSet") => {
            deployment::selector_errors(&mut errors, &object["spec"], old.map(|o| &o["spec"]));
        }
        ("", "Pod") => {
            if let Some(old) = old
                && without_images(&old["spec"]) != without_images(&object["spec"])
            {
                errors.push(FieldError::forbidden("spec", POD_UPDATE_MSG));
            }
        }
        _ => {}
    }
    errors
}

/// A Role's rules: each with at least one verb, and with resources or
/// non-resource URLs.
fn rules(errors: &mut Vec<FieldError>, role: &Value) {
    let rules = role["rules"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (i, rule) in rules.iter().enumerate() {
        let listed = |field: &str| rule[field].as_array().is_some_and(|l| !l.is_empty());
        if !listed("verbs") {
            errors.push(FieldError::required(
                format!("rules[{i}].verbs"),
                "verbs must contain at least one value",
            ));
        }
        if listed("nonResourceURLs") && role["kind"] == "Role" {
            errors.push(FieldError::invalid(
                format!("rules[{i}].nonResourceURLs"),
                &rule["nonResourceURLs"],
                "namespaced rules cannot apply to non-resource URLs",
            ));
        }
        if !listed("nonResourceURLs") && !listed("resources") {
            errors.push(FieldError::required(
                format!("rules[{i}].resources"),
                "resource rules must supply at least one resource",
            ));
        }
    }
}

/// A binding: a role of a kind it may bind, subjects of known kinds, and
/// a `roleRef` that never changes.
fn binding(errors: &mut Vec<FieldError>, kind: &str, binding: &Value, old: Option<&Value>) {
    let role_ref = &binding["roleRef"];
    let kinds: &[&str] = if kind == "RoleBinding" {
        &["Role", "ClusterRole"]
    } else {
        &["ClusterRole"]
    };
    if !kinds.contains(&str_at(role_ref, "/kind")) {
        errors.push(FieldError::unsupported(
            "roleRef.kind",
            &role_ref["kind"],
            kinds,
        ));
    }
    if str_at(role_ref, "/name").is_empty() {
        errors.push(FieldError::required("roleRef.name", ""));
    }
    let subjects = binding["subjects"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (i, subject) in subjects.iter().enumerate() {
        let path = format!("subjects[{i}]");
        if str_at(subject, "/name").is_empty() {
            errors.push(FieldError::required(format!("{path}.name"), ""));
        }
        match str_at(subject, "/kind") {
            "ServiceAccount" => {
                if kind == "ClusterRoleBinding" && str_at(subject, "/namespace").is_empty() {
                    errors.push(FieldError::required(format!("{path}.namespace"), ""));
                }
            }
            "User" | "Group" => {}
            _ => errors.push(FieldError::unsupported(
                format!("{path}.kind"),
                &subject["kind"],
                &["ServiceAccount", "User", "Group"],
            )),
        }
    }
    if let Some(old) = old
        && old["roleRef"] != *role_ref
    {
        errors.push(FieldError::invalid_shown(
            "roleRef",
            &format!(
                "rbac.RoleRef{{APIGroup:{:?}, Kind:{:?}, Name:{:?}}}",
                str_at(role_ref, "/apiGroup"),
                str_at(role_ref, "/kind"),
                str_at(role_ref, "/name")
            ),
            "cannot change roleRef",
        ));
    }
}

/// A ConfigMap: keys as config keys, none in both maps, at most 1 MiB, and
/// nothing changed once it is `immutable`.
fn config_map(errors: &mut Vec<FieldError>, cm: &Value, old: Option<&Value>) {
    let keys = |field: &str| -> Vec<(String, usize)> {
        cm[field]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().map_or(0, str::len)))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (data, binary) = (keys("data"), keys("binaryData"));
    for (field, entries) in [("data", &data), ("binaryData", &binary)] {
        for (key, _) in entries {
            let valid = !key.is_empty()
                && key.len() <= 253
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                && key != "."
                && key != ".."
                && !key.starts_with("..");
            if !valid {
                errors.push(FieldError::invalid(
                    format!("{field}[{key}]"),
                    &json!(key),
                    CONFIG_KEY_MSG,
                ));
            }
        }
    }
    for (key, _) in &binary {
        if data.iter().any(|(k, _)| k == key) {
            errors.push(FieldError::invalid(
                format!("binaryData[{key}]"),
                &json!(key),
                "duplicate of key present in data",
            ));
        }
    }
    // binaryData is base64: three bytes for every four characters.
    let size: usize = data.iter().map(|(k, n)| k.len() + n).sum::<usize>()
        + binary
            .iter()
            .map(|(k, n)| k.len() + n / 4 * 3)
            .sum::<usize>();
    if size > CONFIG_MAP_LIMIT {
        errors.push(FieldError::too_long("[]", CONFIG_MAP_LIMIT));
    }
    if let Some(old) = old
        && old["immutable"] == json!(true)
    {
        for field in ["data", "binaryData"] {
            if old[field] != cm[field] {
                errors.push(FieldError::forbidden(field, IMMUTABLE_WHEN_SET));
            }
        }
        if cm["immutable"] != json!(true) {
            errors.push(FieldError::forbidden("immutable", IMMUTABLE_WHEN_SET));
        }
    }
}

/// A pod spec with its containers' images left out: what an update may
/// not change.
fn without_images(spec: &Value) -> Value {
    let mut spec = spec.clone();
    for list in ["containers", "initContainers"] {
        if let Some(containers) = spec[list].as_array_mut() {
            for c in containers.iter_mut().filter_map(Value::as_object_mut) {
                c.remove("image");
            }
        }
    }
    if let Some(s) = spec.as_object_mut() {
        for field in [
            "activeDeadlineSeconds",
            "tolerations",
            "terminationGracePeriodSeconds",
        ] {
            s.remove(field);
        }
    }
    spec
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::resources::{CONFIG_MAP, POD, ROLE, ROLE_BINDING};

    fn messages(errors: &[FieldError]) -> Vec<String> {
        errors.iter().map(FieldError::to_message).collect()
    }

    #[test]
    fn rbac_objects_are_validated_as_the_api_server_validates_them() {
        let role = json!({"kind": "Role", "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": []}]});
        assert_eq!(
            messages(&errors(&ROLE, &role, None)),
            ["rules[0].verbs: Required value: verbs must contain at least one value"]
        );
        let binding = json!({
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Pod", "name": "x"},
            "subjects": [{"kind": "Robot", "name": "r2"}],
        });
        assert_eq!(
            messages(&errors(&ROLE_BINDING, &binding, None)),
            [
                "roleRef.kind: Unsupported value: \"Pod\": supported values: \"Role\", \"ClusterRole\"",
                "subjects[0].kind: Unsupported value: \"Robot\": supported values: \"ServiceAccount\", \"User\", \"Group\"",
            ]
        );
        let old = json!({"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "view"}});
        let new = json!({"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "edit"}});
        assert_eq!(
            messages(&errors(&ROLE_BINDING, &new, Some(&old))),
            [
                "roleRef: Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"Role\", Name:\"edit\"}: cannot change roleRef"
            ]
        );
        assert!(errors(&ROLE_BINDING, &old, Some(&old)).is_empty());
    }

    #[test]
    fn config_maps_keep_their_keys_size_and_immutability() {
        let cm = json!({"data": {"bad key": "x", "a": "1"}, "binaryData": {"a": "MQ=="}});
        assert_eq!(
            messages(&errors(&CONFIG_MAP, &cm, None)),
            [
                format!("data[bad key]: Invalid value: \"bad key\": {CONFIG_KEY_MSG}"),
                "binaryData[a]: Invalid value: \"a\": duplicate of key present in data".to_owned(),
            ]
        );
        let big = json!({"data": {"blob": "x".repeat(CONFIG_MAP_LIMIT)}});
        assert_eq!(
            messages(&errors(&CONFIG_MAP, &big, None)),
            ["[]: Too long: must have at most 1048576 bytes"]
        );
        let frozen = json!({"immutable": true, "data": {"a": "1"}});
        let changed = json!({"immutable": false, "data": {"a": "2"}});
        assert_eq!(
            messages(&errors(&CONFIG_MAP, &changed, Some(&frozen))),
            [
                "data: Forbidden: field is immutable when `immutable` is set",
                "immutable: Forbidden: field is immutable when `immutable` is set",
            ]
        );
    }

    #[test]
    fn a_pod_update_may_change_only_its_images() {
        let pod = json!({"spec": {"restartPolicy": "Always", "containers": [{"name": "c", "image": "a:1"}]}});
        let mut image = pod.clone();
        image["spec"]["containers"][0]["image"] = json!("a:2");
        assert!(errors(&POD, &image, Some(&pod)).is_empty());
        let mut policy = pod.clone();
        policy["spec"]["restartPolicy"] = json!("Never");
        assert_eq!(
            messages(&errors(&POD, &policy, Some(&pod))),
            [format!("spec: Forbidden: {POD_UPDATE_MSG}")]
        );
    }
}

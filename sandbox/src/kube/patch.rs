//! The three patch formats of the API: JSON patch (RFC 6902, `test`
//! included), JSON merge patch (RFC 7386) and strategic merge patch, the
//! Kubernetes variant that merges lists of objects by a key (containers by
//! `name`) and understands the `$patch`, `$retainKeys`, `$setElementOrder`
//! and `$deleteFromPrimitiveList` directives kubectl sends.
//!
//! Strategic merge keys come from a table of the field names used by the
//! served kinds rather than from an OpenAPI schema: within Deployments,
//! ReplicaSets and the RBAC kinds each list field name has one meaning.

use serde_json::{Map, Value};

use super::error::ApiError;

/// A patch body with its media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PatchKind {
    Json,
    Merge,
    Strategic,
}

/// The media types a PATCH accepts, in the order the 415 message lists them.
pub(crate) const PATCH_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];

impl PatchKind {
    /// From the request's `Content-Type` (parameters ignored).
    pub(crate) fn from_content_type(content_type: &str) -> Result<Self, ApiError> {
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "application/json-patch+json" => Ok(Self::Json),
            "application/merge-patch+json" => Ok(Self::Merge),
            "application/strategic-merge-patch+json" => Ok(Self::Strategic),
            _ => Err(ApiError::unsupported_media_type(PATCH_TYPES)),
        }
    }
}

/// Applies `body` to `doc` in place.
pub(crate) fn apply(kind: PatchKind, doc: &mut Value, body: &[u8]) -> Result<(), ApiError> {
    match kind {
        PatchKind::Json => {
            let ops: json_patch::Patch = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            json_patch::patch(doc, &ops).map_err(|e| {
                // The wording of the JSON patch library the API server uses.
                let cause = match e.kind {
                    json_patch::PatchErrorKind::TestFailed => {
                        format!("testing value {} failed: test failed", e.path)
                    }
                    _ => format!("doc is missing path: \"{}\": missing value", e.path),
                };
                ApiError::patch_rejected(cause)
            })
        }
        PatchKind::Merge => {
            let patch = parse_object(body)?;
            json_patch::merge(doc, &patch);
            Ok(())
        }
        PatchKind::Strategic => {
            let patch = parse_object(body)?;
            let Value::Object(patch) = patch else {
                return Err(ApiError::bad_request(
                    "error decoding patch: not a JSON object",
                ));
            };
            if !doc.is_object() {
                *doc = Value::Object(Map::new());
            }
            if let Value::Object(target) = doc {
                merge_map(target, patch)?;
            }
            Ok(())
        }
    }
}

fn parse_object(body: &[u8]) -> Result<Value, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "error decoding patch: the patch must be a JSON object",
        ));
    }
    Ok(value)
}

/// How a list field merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListStrategy {
    /// Objects merged by the value of this key.
    Key(&'static str),
    /// Scalars merged as a set (`finalizers`).
    Set,
    /// Replaced whole (the default).
    Replace,
}

fn list_strategy(field: &str) -> ListStrategy {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "resourceClaims"
        | "schedulingGates" => ListStrategy::Key("name"),
        "ports" => ListStrategy::Key("containerPort"),
        "volumeMounts" => ListStrategy::Key("mountPath"),
        "volumeDevices" => ListStrategy::Key("devicePath"),
        "hostAliases" => ListStrategy::Key("ip"),
        "conditions" => ListStrategy::Key("type"),
        "ownerReferences" => ListStrategy::Key("uid"),
        "topologySpreadConstraints" => ListStrategy::Key("topologyKey"),
        "finalizers" => ListStrategy::Set,
        _ => ListStrategy::Replace,
    }
}

fn merge_map(
    target: &mut Map<String, Value>,
    mut patch: Map<String, Value>,
) -> Result<(), ApiError> {
    match patch.remove("$patch").as_ref().and_then(Value::as_str) {
        Some("replace") => {
            *target = patch;
            return Ok(());
        }
        Some("delete") => {
            target.clear();
            return Ok(());
        }
        Some("merge") | None => {}
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Unknown patch type: {other}"
            )));
        }
    }
    let retain = patch.remove("$retainKeys");
    let mut orders = Vec::new();
    let mut deletions = Vec::new();
    let keys: Vec<String> = patch.keys().cloned().collect();
    for key in keys {
        if let Some(field) = key.strip_prefix("$setElementOrder/") {
            if let Some(order) = patch.remove(&key) {
                orders.push((field.to_owned(), order));
            }
        } else if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/")
            && let Some(values) = patch.remove(&key)
        {
            deletions.push((field.to_owned(), values));
        }
    }
    for (key, value) in patch {
        match value {
            Value::Null => {
                target.remove(&key);
            }
            Value::Object(sub) => {
                let delete_whole = sub.get("$patch").and_then(Value::as_str) == Some("delete");
                if delete_whole {
                    target.remove(&key);
                    continue;
                }
                let slot = target
                    .entry(key)
                    .or_insert_with(|| Value::Object(Map::new()));
                if !slot.is_object() {
                    *slot = Value::Object(Map::new());
                }
                if let Value::Object(inner) = slot {
                    merge_map(inner, sub)?;
                }
            }
            Value::Array(items) => {
                let strategy = list_strategy(&key);
                let current = target.remove(&key);
                let merged = match (strategy, current) {
                    (ListStrategy::Replace, _) | (_, None) => strip_directives(items),
                    (_, Some(Value::Array(current))) => merge_list(strategy, current, items)?,
                    (_, Some(_)) => strip_directives(items),
                };
                target.insert(key, Value::Array(merged));
            }
            scalar => {
                target.insert(key, scalar);
            }
        }
    }
    for (field, values) in deletions {
        if let (Some(Value::Array(list)), Value::Array(remove)) = (target.get_mut(&field), values) {
            list.retain(|v| !remove.contains(v));
        }
    }
    for (field, order) in orders {
        if let (Some(Value::Array(list)), Value::Array(order)) = (target.get_mut(&field), order) {
            reorder(list, &order, list_strategy(&field));
        }
    }
    if let Some(Value::Array(keep)) = retain {
        let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
        target.retain(|k, _| keep.contains(&k.as_str()));
    }
    Ok(())
}

/// A list from a patch used as a value: directives removed.
fn strip_directives(items: Vec<Value>) -> Vec<Value> {
    items
        .into_iter()
        .filter(|item| item.get("$patch").is_none())
        .collect()
}

fn merge_list(
    strategy: ListStrategy,
    mut current: Vec<Value>,
    patch: Vec<Value>,
) -> Result<Vec<Value>, ApiError> {
    match strategy {
        ListStrategy::Replace => Ok(strip_directives(patch)),
        ListStrategy::Set => {
            for item in patch {
                if !current.contains(&item) {
                    current.push(item);
                }
            }
            Ok(current)
        }
        ListStrategy::Key(key) => {
            if patch
                .iter()
                .any(|p| p.get("$patch").and_then(Value::as_str) == Some("replace"))
            {
                return Ok(strip_directives(patch));
            }
            for item in patch {
                let Value::Object(mut item) = item else {
                    continue;
                };
                let Some(id) = item.get(key).cloned() else {
                    return Err(ApiError::bad_request(format!(
                        "map: {item:?} does not contain declared merge key: {key}"
                    )));
                };
                let position = current.iter().position(|c| c.get(key) == Some(&id));
                let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
                match (position, delete) {
                    (Some(i), true) => {
                        current.remove(i);
                    }
                    (None, true) => {}
                    (Some(i), false) => {
                        if let Some(Value::Object(existing)) = current.get_mut(i) {
                            merge_map(existing, item)?;
                        }
                    }
                    (None, false) => {
                        item.remove("$patch");
                        let mut fresh = Map::new();
                        merge_map(&mut fresh, item)?;
                        current.push(Value::Object(fresh));
                    }
                }
            }
            Ok(current)
        }
    }
}

/// `$setElementOrder`: the listed elements in the listed order; elements
/// the order does not mention keep their place after them.
fn reorder(list: &mut Vec<Value>, order: &[Value], strategy: ListStrategy) {
    let id_of = |v: &Value| -> Value {
        match strategy {
            ListStrategy::Key(key) => v.get(key).cloned().unwrap_or(Value::Null),
            _ => v.clone(),
        }
    };
    let mut ordered = Vec::with_capacity(list.len());
    let mut rest: Vec<Value> = std::mem::take(list);
    for wanted in order {
        let wanted = id_of(wanted);
        if let Some(i) = rest.iter().position(|v| id_of(v) == wanted) {
            ordered.push(rest.remove(i));
        }
    }
    ordered.extend(rest);
    *list = ordered;
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn strategic(mut doc: Value, patch: Value) -> Value {
        apply(PatchKind::Strategic, &mut doc, patch.to_string().as_bytes()).expect("patch applies");
        doc
    }

    #[test]
    fn containers_merge_by_name_and_keep_the_others() {
        let doc = json!({"spec": {"containers": [
            {"name": "nginx", "image": "nginx:1.14.2", "ports": [{"containerPort": 80}]},
            {"name": "sidecar", "image": "busybox"}
        ]}});
        let out = strategic(
            doc,
            json!({"spec": {"containers": [{"name": "nginx", "image": "nginx:1.21"}]}}),
        );
        assert_eq!(out["spec"]["containers"][0]["image"], "nginx:1.21");
        assert_eq!(
            out["spec"]["containers"][0]["ports"][0]["containerPort"],
            80
        );
        assert_eq!(out["spec"]["containers"][1]["name"], "sidecar");
    }

    #[test]
    fn directives_delete_replace_and_retain() {
        let doc = json!({"spec": {
            "containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}],
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}},
            "args": ["1", "2"]
        }});
        let out = strategic(
            doc,
            json!({"spec": {
                "containers": [{"name": "a", "$patch": "delete"}],
                "strategy": {"type": "Recreate", "$retainKeys": ["type"]},
                "args": ["3"]
            }}),
        );
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "b", "image": "y"}])
        );
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
        assert_eq!(out["spec"]["args"], json!(["3"]));
    }

    #[test]
    fn json_patch_test_failure_is_a_422_with_the_servers_wording() {
        let mut doc = json!({"metadata": {"resourceVersion": "5"}});
        let err = apply(
            PatchKind::Json,
            &mut doc,
            br#"[{"op":"test","path":"/metadata/resourceVersion","value":"4"}]"#,
        )
        .expect_err("stale test fails");
        assert_eq!(err.code(), 422);
        assert_eq!(
            err.status()["details"]["causes"][0]["message"],
            "testing value /metadata/resourceVersion failed: test failed"
        );
    }

    #[test]
    fn unknown_media_types_are_415() {
        let err =
            PatchKind::from_content_type("application/apply-patch+yaml").expect_err("not served");
        assert_eq!(err.code(), 415);
    }
}

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
use super::gojson;

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
            let undecodable =
                |why: String| ApiError::bad_request(format!("error decoding patch: {why}"));
            let ops = match decode(body).map_err(undecodable)? {
                Value::Array(ops) => ops,
                Value::Null => Vec::new(),
                other => {
                    return Err(undecodable(gojson::type_error(
                        &other,
                        "[]handlers.jsonPatchOp",
                    )));
                }
            };
            let ops = ops
                .into_iter()
                .map(|op| match op {
                    Value::Object(_) => Ok(JsonOp::read(op)),
                    other => Err(undecodable(gojson::type_error(
                        &other,
                        "handlers.jsonPatchOp",
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()?;
            // Whatever fails, the server says only that the request was
            // invalid: its patch library's reason is not passed on.
            for op in ops {
                match op {
                    JsonOp::TestNull(path) => {
                        if !null_at(doc, &path) {
                            return Err(ApiError::patch_rejected());
                        }
                    }
                    JsonOp::Other(op) => {
                        json_patch::patch(doc, std::slice::from_ref(&op))
                            .map_err(|_| ApiError::patch_rejected())?;
                    }
                    JsonOp::Unreadable => return Err(ApiError::patch_rejected()),
                }
            }
            Ok(())
        }
        PatchKind::Merge => {
            let undecodable =
                |why: String| ApiError::bad_request(format!("error decoding patch: {why}"));
            let patch = match decode(body).map_err(undecodable)? {
                patch @ Value::Object(_) => patch,
                // The merge patch library's own refusal.
                Value::Null => return Err(ApiError::bad_request("Invalid JSON Patch")),
                other => return Err(undecodable(gojson::type_error(&other, GO_MAP))),
            };
            json_patch::merge(doc, &patch);
            Ok(())
        }
        PatchKind::Strategic => {
            // The strategic patch decoder's errors reach the client bare.
            let patch = match decode(body).map_err(ApiError::bad_request)? {
                Value::Object(patch) => patch,
                Value::Null => Map::new(),
                other => return Err(ApiError::bad_request(gojson::type_error(&other, GO_MAP))),
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

/// One operation of a JSON patch.
#[derive(Debug)]
enum JsonOp {
    /// A `test` for `null` (or with no value), which the API server's patch
    /// library (evanphx/json-patch) passes for a member that is absent as
    /// for one that is `null`, where RFC 6902 would fail it.
    TestNull(String),
    Other(json_patch::PatchOperation),
    /// One the library cannot apply (an unknown `op`, no `path`): it fails
    /// when its turn comes, as a 422 like any failed operation.
    Unreadable,
}

impl JsonOp {
    fn read(op: Value) -> Self {
        if op["op"] == "test" && op.get("value").is_none_or(Value::is_null) {
            let path = op["path"].as_str().unwrap_or_default().to_owned();
            return Self::TestNull(path);
        }
        serde_json::from_value(op).map_or(Self::Unreadable, Self::Other)
    }
}

/// Whether `path` names a `null` or a missing member of an object (or a
/// `null` element of an array) that is there: what a `test` for `null`
/// passes on. A missing parent fails it.
fn null_at(doc: &Value, path: &str) -> bool {
    let Some((parent, last)) = path.rsplit_once('/') else {
        return false;
    };
    let last = last.replace("~1", "/").replace("~0", "~");
    match doc.pointer(parent) {
        Some(Value::Object(map)) => map.get(&last).is_none_or(Value::is_null),
        Some(Value::Array(items)) => last
            .parse::<usize>()
            .ok()
            .and_then(|i| items.get(i))
            .is_some_and(Value::is_null),
        _ => false,
    }
}

/// How Go names the map a merge or strategic patch decodes into.
const GO_MAP: &str = "map[string]interface {}";

/// A patch body as JSON; Err is Go's complaint, in Go's words.
fn decode(body: &[u8]) -> Result<Value, String> {
    if let Some(why) = gojson::syntax_error(body) {
        return Err(why);
    }
    serde_json::from_slice(body).map_err(|e| e.to_string())
}

/// A decoded JSON value as Go's `%v` prints it: maps as `map[k:v ...]`
/// with sorted keys, lists as `[a b]`, strings bare, `null` as `<nil>`;
/// numbers as the patch decoder keeps them (integers as integers, others
/// in Go's shortest `%g` form).
fn go_format(value: &Value) -> String {
    match value {
        Value::Null => "<nil>".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::String(s) => s.clone(),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(f)) => go_float(f),
            (None, None) => n.to_string(),
        },
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(go_format).collect::<Vec<_>>().join(" ")
        ),
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let pairs: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{k}:{}", go_format(&map[k])))
                .collect();
            format!("map[{}]", pairs.join(" "))
        }
    }
}

/// Go's `%v` of a float64 (`strconv.FormatFloat(f, 'g', -1, 64)`): the
/// shortest digits, in exponent form (`1.5e+06`, `1.5e-07`) below 1e-4 or
/// from 1e6 on.
fn go_float(f: f64) -> String {
    let exponent = if f == 0.0 {
        0
    } else {
        // Floor of log10, from the shortest digits Rust prints.
        let sci = format!("{:e}", f.abs());
        sci.split_once('e')
            .and_then(|(_, e)| e.parse::<i32>().ok())
            .unwrap_or(0)
    };
    if (-4..6).contains(&exponent) {
        return f.to_string();
    }
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.abs())
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
    match patch.get("$patch") {
        Some(Value::String(d)) if d == "replace" => {
            patch.remove("$patch");
            *target = patch;
            return Ok(());
        }
        Some(Value::String(d)) if d == "delete" => {
            target.clear();
            return Ok(());
        }
        Some(Value::String(d)) if d == "merge" => {
            patch.remove("$patch");
        }
        None => {}
        Some(other) => {
            // The patch library's own error, which reaches the client as
            // the server's unclassified 500, the map printed as Go prints it.
            let directive = match other {
                Value::String(d) => d.clone(),
                other => go_format(other),
            };
            return Err(ApiError::unclassified(format!(
                "unknown patch type: {directive} in map: {}",
                go_format(&Value::Object(patch))
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
    fn json_patch_test_failure_is_a_bare_422_as_the_server_answers_it() {
        let mut doc = json!({"metadata": {"resourceVersion": "5"}});
        let err = apply(
            PatchKind::Json,
            &mut doc,
            br#"[{"op":"test","path":"/metadata/resourceVersion","value":"4"}]"#,
        )
        .expect_err("stale test fails");
        assert_eq!(err.code(), 422);
        assert_eq!(
            err.status()["message"],
            "the server rejected our request due to an error in our request"
        );
        assert_eq!(err.status()["details"], json!({}), "no causes");
    }

    #[test]
    fn a_test_for_null_passes_on_a_missing_member_of_an_object_that_is_there() {
        let json = |doc: &mut Value, ops: Value| {
            apply(PatchKind::Json, doc, ops.to_string().as_bytes()).map(|()| doc.clone())
        };
        let mut doc = json!({"metadata": {"labels": {"a": null}}, "list": [null, 1]});
        for path in [
            "/metadata/annotations",
            "/metadata/labels/a",
            "/metadata/labels/b",
            "/list/0",
        ] {
            let ops = json!([{"op": "test", "path": path, "value": null},
                             {"op": "add", "path": "/done", "value": true}]);
            let patched = json(&mut doc.clone(), ops).unwrap_or_else(|e| panic!("{path}: {e}"));
            assert_eq!(patched["done"], true, "{path}: the rest applied");
        }
        for path in ["/metadata", "/nothing/below", "/list/1", "/list/7"] {
            let ops = json!([{"op": "test", "path": path, "value": null}]);
            assert_eq!(
                json(&mut doc, ops).map_err(|e| e.code()),
                Err(422),
                "{path}"
            );
        }
    }

    #[test]
    fn an_unknown_directive_is_the_patch_librarys_500() {
        let mut doc = json!({"spec": {"replicas": 1}});
        let err = apply(
            PatchKind::Strategic,
            &mut doc,
            br#"{"spec": {"$patch": "bogus", "replicas": 2, "paused": true, "x": [1, "a"], "f": 1.5}}"#,
        )
        .expect_err("unknown directive");
        assert_eq!(err.code(), 500);
        let status = err.status();
        assert!(status.get("reason").is_none(), "{status}");
        assert_eq!(
            status["message"],
            "unknown patch type: bogus in map: map[$patch:bogus f:1.5 paused:true replicas:2 x:[1 a]]"
        );
    }

    #[test]
    fn malformed_bodies_are_refused_in_gos_words() {
        for (kind, body, message) in [
            (
                PatchKind::Json,
                "[{",
                "error decoding patch: unexpected end of JSON input",
            ),
            (
                PatchKind::Json,
                r#"{"op": "add"}"#,
                "error decoding patch: json: cannot unmarshal object into Go value of type []handlers.jsonPatchOp",
            ),
            (
                PatchKind::Merge,
                "{bad}",
                "error decoding patch: invalid character 'b' looking for beginning of object key string",
            ),
            (
                PatchKind::Merge,
                "[]",
                "error decoding patch: json: cannot unmarshal array into Go value of type map[string]interface {}",
            ),
            (
                PatchKind::Strategic,
                r#"{"spec": }"#,
                "invalid character '}' looking for beginning of value",
            ),
        ] {
            let err = apply(kind, &mut json!({}), body.as_bytes()).expect_err(body);
            assert_eq!(
                (err.code(), err.status()["message"].clone()),
                (400, json!(message)),
                "{body}"
            );
        }
        let err = apply(
            PatchKind::Json,
            &mut json!({}),
            br#"[{"op": "bogus", "path": "/a"}]"#,
        )
        .expect_err("an op the library does not know");
        assert_eq!(err.code(), 422);
    }

    #[test]
    fn floats_print_as_gos_percent_v() {
        for (f, want) in [
            (1.5, "1.5"),
            (123_456.5, "123456.5"),
            (1_234_567.5, "1.2345675e+06"),
            (0.0001, "0.0001"),
            (0.000_015, "1.5e-05"),
        ] {
            assert_eq!(go_float(f), want, "{f}");
        }
    }

    #[test]
    fn unknown_media_types_are_415() {
        let err =
            PatchKind::from_content_type("application/apply-patch+yaml").expect_err("not served");
        assert_eq!(err.code(), 415);
    }
}

//! What the API server does to a Deployment beyond storing it: the defaults
//! it fills in, the validation it applies (with the real field paths and
//! messages), the `pod-template-hash` of a template, and the autoscaling/v1
//! `Scale` view of its replicas.

use serde_json::{Map, Value, json};

use super::error::{ApiError, FieldError, go_label_selector};
use super::meta::{self, LabelSelector, str_at};

pub(crate) const REVISION: &str = "deployment.kubernetes.io/revision";
pub(crate) const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
pub(crate) const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
pub(crate) const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
pub(crate) const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
pub(crate) const HASH_LABEL: &str = "pod-template-hash";

/// Annotations the deployment controller does not copy onto its
/// ReplicaSets.
pub(crate) const NOT_COPIED: &[&str] = &[
    LAST_APPLIED,
    REVISION,
    REVISION_HISTORY,
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
];

fn set_default(map: &mut Map<String, Value>, key: &str, value: Value) {
    if map.get(key).is_none_or(Value::is_null) {
        map.insert(key.to_owned(), value);
    }
}

/// [`set_default`] for a field Go holds as a plain string, where `""` is
/// the unset value the defaulting replaces (`imagePullPolicy: ""`).
fn set_default_string(map: &mut Map<String, Value>, key: &str, value: &str) {
    if map.get(key).is_none_or(|v| v.is_null() || v == "") {
        map.insert(key.to_owned(), json!(value));
    }
}

fn object_at<'a>(map: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let slot = map
        .entry(key.to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    match slot {
        Value::Object(m) => m,
        // Made an object just above.
        _ => unreachable!("slot was made an object"),
    }
}

/// The defaults of `apps/v1` Deployments and of the pod template inside,
/// as far as clients read them.
pub(crate) fn apply_defaults(deployment: &mut Value) {
    let Some(root) = deployment.as_object_mut() else {
        return;
    };
    let spec = object_at(root, "spec");
    set_default(spec, "replicas", json!(1));
    set_default(spec, "revisionHistoryLimit", json!(10));
    set_default(spec, "progressDeadlineSeconds", json!(600));
    let strategy = object_at(spec, "strategy");
    set_default_string(strategy, "type", "RollingUpdate");
    if strategy.get("type") == Some(&json!("RollingUpdate")) {
        let rolling = object_at(strategy, "rollingUpdate");
        set_default(rolling, "maxUnavailable", json!("25%"));
        set_default(rolling, "maxSurge", json!("25%"));
    }
    default_template(object_at(spec, "template"));
}

/// Pod template defaults (shared with ReplicaSets).
pub(crate) fn default_template(template: &mut Map<String, Value>) {
    let metadata = object_at(template, "metadata");
    set_default(metadata, "creationTimestamp", Value::Null);
    default_pod_spec(object_at(template, "spec"));
}

/// Pod spec defaults (shared with Pods).
pub(crate) fn default_pod_spec(pod: &mut Map<String, Value>) {
    set_default_string(pod, "restartPolicy", "Always");
    set_default(pod, "terminationGracePeriodSeconds", json!(30));
    set_default_string(pod, "dnsPolicy", "ClusterFirst");
    set_default(pod, "securityContext", json!({}));
    set_default_string(pod, "schedulerName", "default-scheduler");
    for list in ["containers", "initContainers"] {
        let Some(Value::Array(containers)) = pod.get_mut(list) else {
            continue;
        };
        for container in containers.iter_mut().filter_map(Value::as_object_mut) {
            set_default_string(container, "terminationMessagePath", "/dev/termination-log");
            set_default_string(container, "terminationMessagePolicy", "File");
            set_default(container, "resources", json!({}));
            let image = container.get("image").and_then(Value::as_str).unwrap_or("");
            set_default_string(container, "imagePullPolicy", pull_policy(image));
            if let Some(Value::Array(ports)) = container.get_mut("ports") {
                for port in ports.iter_mut().filter_map(Value::as_object_mut) {
                    set_default_string(port, "protocol", "TCP");
                }
            }
        }
    }
}

/// `Always` for `:latest` or untagged images, else `IfNotPresent`.
fn pull_policy(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

fn int_field(errors: &mut Vec<FieldError>, spec: &Value, field: &str, min: i64) {
    if let Some(v) = spec.get(field)
        && let Some(n) = v.as_i64()
        && n < min
    {
        let detail = format!("must be greater than or equal to {min}");
        errors.push(FieldError::invalid(format!("spec.{field}"), v, &detail));
    }
}

/// Type errors the JSON decoder of the real server reports as 400 before
/// validation runs.
pub(crate) fn check_types(deployment: &Value) -> Result<(), ApiError> {
    for (pointer, go_field) in [
        ("/spec/replicas", "DeploymentSpec.spec.replicas"),
        (
            "/spec/revisionHistoryLimit",
            "DeploymentSpec.spec.revisionHistoryLimit",
        ),
        (
            "/spec/progressDeadlineSeconds",
            "DeploymentSpec.spec.progressDeadlineSeconds",
        ),
        (
            "/spec/minReadySeconds",
            "DeploymentSpec.spec.minReadySeconds",
        ),
    ] {
        if let Some(v) = deployment.pointer(pointer)
            && !v.is_null()
            && !v.is_i64()
        {
            let what = match v {
                Value::String(_) => "string",
                Value::Bool(_) => "bool",
                Value::Number(_) => "number",
                Value::Array(_) => "array",
                _ => "object",
            };
            return Err(ApiError::bad_request(format!(
                "Deployment in version \"v1\" cannot be handled as a Deployment: json: cannot unmarshal {what} into Go struct field {go_field} of type int32"
            )));
        }
    }
    Ok(())
}

/// The selector rules a Deployment and a ReplicaSet share (`spec` and the
/// stored object's `old_spec` on updates): there is one, it selects
/// something, its template's labels match it, and it never changes. The
/// API server words the empty one "for deployment" for both.
pub(crate) fn selector_errors(
    errors: &mut Vec<FieldError>,
    spec: &Value,
    old_spec: Option<&Value>,
) {
    let selector = &spec["selector"];
    let parsed = LabelSelector::from_object(selector);
    if selector.is_null() {
        errors.push(FieldError::required("spec.selector", ""));
    } else if parsed.is_empty() {
        errors.push(FieldError::invalid_shown(
            "spec.selector",
            &go_label_selector(selector),
            "empty selector is invalid for deployment",
        ));
    }
    let labels = meta::string_map(spec.pointer("/template/metadata/labels"));
    // No selector selects nothing, so no template matches it.
    if selector.is_null() || (!parsed.is_empty() && !parsed.matches(&labels)) {
        errors.push(FieldError::invalid(
            "spec.template.metadata.labels",
            spec.pointer("/template/metadata/labels")
                .unwrap_or(&json!({})),
            "`selector` does not match template `labels`",
        ));
    }
    if let Some(old) = old_spec
        && old["selector"] != *selector
    {
        errors.push(FieldError::invalid_shown(
            "spec.selector",
            &go_label_selector(selector),
            "field is immutable",
        ));
    }
}

/// The API server's validation of a (defaulted) Deployment; `old` is the
/// stored object on updates.
pub(crate) fn validate(deployment: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let spec = &deployment["spec"];
    int_field(&mut errors, spec, "replicas", 0);
    int_field(&mut errors, spec, "revisionHistoryLimit", 0);
    int_field(&mut errors, spec, "minReadySeconds", 0);
    int_field(&mut errors, spec, "progressDeadlineSeconds", 0);
    // minReadySeconds left out is 0, which a deadline must exceed too.
    let min_ready = spec["minReadySeconds"].as_i64().unwrap_or(0);
    if let Some(deadline) = spec["progressDeadlineSeconds"].as_i64()
        && deadline <= min_ready
    {
        errors.push(FieldError::invalid(
            "spec.progressDeadlineSeconds",
            &json!(deadline),
            "must be greater than minReadySeconds",
        ));
    }
    selector_errors(&mut errors, spec, old.map(|o| &o["spec"]));
    errors.extend(meta::check_labels(
        "spec.template.metadata.labels",
        spec.pointer("/template/metadata/labels"),
    ));
    errors.extend(meta::check_annotations(
        "spec.template.metadata.annotations",
        spec.pointer("/template/metadata/annotations"),
    ));
    validate_strategy(&mut errors, &spec["strategy"]);
    match str_at(spec, "/template/spec/restartPolicy") {
        "Always" => {}
        _ => errors.push(FieldError::unsupported(
            "spec.template.spec.restartPolicy",
            &spec["template"]["spec"]["restartPolicy"],
            &["Always"],
        )),
    }
    validate_containers(&mut errors, spec);
    errors
}

/// `ValidateDeploymentStrategy`: Recreate takes no `rollingUpdate`; a
/// rolling update's amounts are counts or percentages, not both zero, and
/// at most all of the replicas unavailable.
fn validate_strategy(errors: &mut Vec<FieldError>, strategy: &Value) {
    let rolling = &strategy["rollingUpdate"];
    match strategy["type"].as_str() {
        Some("Recreate") => {
            if !rolling.is_null() {
                errors.push(FieldError::forbidden(
                    "spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        Some("RollingUpdate") => {
            let field = |name: &str| format!("spec.strategy.rollingUpdate.{name}");
            let mut amounts = [0, 0];
            for (name, amount) in ["maxUnavailable", "maxSurge"].into_iter().zip(&mut amounts) {
                let value = &rolling[name];
                match int_or_percent(value) {
                    Some(n) if n >= 0 => *amount = n,
                    Some(_) => errors.push(FieldError::invalid_shown(
                        field(name),
                        &go_int_or_string(value),
                        "must be greater than or equal to 0",
                    )),
                    None => errors.push(FieldError::invalid_shown(
                        field(name),
                        &go_int_or_string(value),
                        "must be an integer or percentage (e.g '5%')",
                    )),
                }
            }
            let unavailable = &rolling["maxUnavailable"];
            if amounts == [0, 0] {
                errors.push(FieldError::invalid_shown(
                    field("maxUnavailable"),
                    &go_int_or_string(unavailable),
                    "may not be 0 when `maxSurge` is 0",
                ));
            }
            if unavailable.is_string() && amounts[0] > 100 {
                errors.push(FieldError::invalid_shown(
                    field("maxUnavailable"),
                    &go_int_or_string(unavailable),
                    "must not be greater than 100%",
                ));
            }
        }
        _ => errors.push(FieldError::unsupported(
            "spec.strategy.type",
            &strategy["type"],
            &["Recreate", "RollingUpdate"],
        )),
    }
}

/// An `IntOrString` amount: a count, or a percentage (`25%`); a missing
/// one is zero.
fn int_or_percent(value: &Value) -> Option<i64> {
    match value {
        Value::Null => Some(0),
        Value::Number(n) => n.as_i64(),
        Value::String(s) => {
            let digits = s.strip_suffix('%')?;
            let unsigned = digits.strip_prefix('-').unwrap_or(digits);
            if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            digits.parse().ok()
        }
        _ => None,
    }
}

/// An `IntOrString` as Go's `%#v` prints it in an error, for the value
/// to show as the API server shows it.
fn go_int_or_string(value: &Value) -> String {
    let (kind, int, string) = match value {
        Value::String(s) => (1, 0, s.as_str()),
        other => (0, other.as_i64().unwrap_or(0), ""),
    };
    format!("intstr.IntOrString{{Type:{kind}, IntVal:{int}, StrVal:{string:?}}}")
}

fn validate_containers(errors: &mut Vec<FieldError>, spec: &Value) {
    let containers = spec
        .pointer("/template/spec/containers")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if containers.is_empty() {
        errors.push(FieldError::required("spec.template.spec.containers", ""));
    }
    let mut seen: Vec<&str> = Vec::new();
    for (i, c) in containers.iter().enumerate() {
        let path = format!("spec.template.spec.containers[{i}]");
        let name = str_at(c, "/name");
        if name.is_empty() {
            errors.push(FieldError::required(format!("{path}.name"), ""));
        } else {
            errors.extend(meta::check_label(&format!("{path}.name"), name));
            if seen.contains(&name) {
                errors.push(FieldError::duplicate(format!("{path}.name"), &json!(name)));
            }
            seen.push(name);
        }
        let image = str_at(c, "/image");
        if image.trim().is_empty() {
            errors.push(FieldError::required(format!("{path}.image"), ""));
        } else if image.trim() != image {
            errors.push(FieldError::invalid(
                format!("{path}.image"),
                &json!(image),
                "must not have leading or trailing whitespace",
            ));
        }
        validate_ports(errors, &path, c);
        validate_env(errors, &path, c);
        match c["imagePullPolicy"].as_str() {
            Some("Always" | "IfNotPresent" | "Never") => {}
            Some("") | None => {
                errors.push(FieldError::required(format!("{path}.imagePullPolicy"), ""))
            }
            Some(_) => errors.push(FieldError::unsupported(
                format!("{path}.imagePullPolicy"),
                &c["imagePullPolicy"],
                &["Always", "IfNotPresent", "Never"],
            )),
        }
    }
}

/// A container's environment: each variable named, with a name of printable
/// ASCII other than `=` (1.32 relaxes the C-identifier rule: the
/// `RelaxedEnvironmentVariableValidation` gate is on by default).
fn validate_env(errors: &mut Vec<FieldError>, container_path: &str, container: &Value) {
    let vars = container["env"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (i, var) in vars.iter().enumerate() {
        let path = format!("{container_path}.env[{i}].name");
        let name = str_at(var, "/name");
        if name.is_empty() {
            errors.push(FieldError::required(path, ""));
        } else if name
            .chars()
            .any(|c| !c.is_ascii() || c.is_ascii_control() || c == '=')
        {
            errors.push(FieldError::invalid(
                path,
                &json!(name),
                "a valid environment variable name must consist only of printable ASCII characters other than '='",
            ));
        }
    }
}

/// A container's ports: each `containerPort` (and a `hostPort` given) a
/// port number, and a protocol Kubernetes knows.
fn validate_ports(errors: &mut Vec<FieldError>, container_path: &str, container: &Value) {
    let ports = container["ports"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (i, port) in ports.iter().enumerate() {
        let path = format!("{container_path}.ports[{i}]");
        match port["containerPort"].as_i64() {
            None | Some(0) => {
                errors.push(FieldError::required(format!("{path}.containerPort"), ""))
            }
            Some(n) if !(1..=65535).contains(&n) => errors.push(FieldError::invalid(
                format!("{path}.containerPort"),
                &json!(n),
                "must be between 1 and 65535, inclusive",
            )),
            Some(_) => {}
        }
        if let Some(n) = port["hostPort"].as_i64()
            && n != 0
            && !(1..=65535).contains(&n)
        {
            errors.push(FieldError::invalid(
                format!("{path}.hostPort"),
                &json!(n),
                "must be between 1 and 65535, inclusive",
            ));
        }
        if !matches!(port["protocol"].as_str(), Some("TCP" | "UDP" | "SCTP")) {
            errors.push(FieldError::unsupported(
                format!("{path}.protocol"),
                &port["protocol"],
                &["SCTP", "TCP", "UDP"],
            ));
        }
    }
}

/// The `pod-template-hash` the controller gives a template: FNV-1a over
/// its canonical JSON (without the hash label), and `collisions` when not
/// 0 (the count of names found taken, as the controller's
/// `collisionCount`), rendered in the API's vowel-free alphabet so it never
/// spells words.
pub(crate) fn template_hash(template: &Value, collisions: u32) -> String {
    let mut t = template.clone();
    if let Some(labels) = t
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(HASH_LABEL);
    }
    let mut hash: u32 = 0x811c_9dc5;
    let counted = (collisions > 0).then(|| collisions.to_string());
    for b in t
        .to_string()
        .bytes()
        .chain(counted.iter().flat_map(|c| c.bytes()))
    {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    hash.to_string()
        .bytes()
        .map(|b| char::from(ALPHABET[usize::from(b) % ALPHABET.len()]))
        .collect()
}

/// Two templates equal once the hash label is ignored.
pub(crate) fn same_template(a: &Value, b: &Value) -> bool {
    let strip = |t: &Value| {
        let mut t = t.clone();
        if let Some(labels) = t
            .pointer_mut("/metadata/labels")
            .and_then(Value::as_object_mut)
        {
            labels.remove(HASH_LABEL);
        }
        t
    };
    strip(a) == strip(b)
}

/// The revision annotation of a Deployment or ReplicaSet, 0 when absent.
pub(crate) fn revision_of(object: &Value) -> u64 {
    object
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(REVISION))
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// The autoscaling/v1 `Scale` of a Deployment or ReplicaSet.
pub(crate) fn scale_of(object: &Value) -> Value {
    let selector = LabelSelector::from_object(&object["spec"]["selector"]);
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": object["metadata"]["name"],
            "namespace": object["metadata"]["namespace"],
            "uid": object["metadata"]["uid"],
            "resourceVersion": object["metadata"]["resourceVersion"],
            "creationTimestamp": object["metadata"]["creationTimestamp"],
        },
        "spec": {"replicas": object["spec"]["replicas"]},
        "status": {
            "replicas": object["status"]["replicas"].as_i64().unwrap_or(0),
            "selector": selector.to_string(),
        },
    })
}

/// Checks a `Scale` written by a client, returning its replicas.
pub(crate) fn scale_replicas(scale: &Value, name: &str) -> Result<i64, ApiError> {
    let replicas = &scale["spec"]["replicas"];
    let n = match replicas {
        Value::Null => 0,
        v => v.as_i64().ok_or_else(|| {
            ApiError::bad_request(
                "Scale in version \"v1\" cannot be handled as a Scale: json: cannot unmarshal into Go struct field ScaleSpec.spec.replicas of type int32",
            )
        })?,
    };
    if n < 0 {
        return Err(ApiError::invalid(
            "Scale",
            "autoscaling",
            name,
            &[FieldError::invalid(
                "spec.replicas",
                replicas,
                "must be greater than or equal to 0",
            )],
        ));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nginx() -> Value {
        json!({"metadata": {"name": "web"}, "spec": {
            "selector": {"matchLabels": {"app": "nginx"}},
            "template": {"metadata": {"labels": {"app": "nginx"}},
                         "spec": {"containers": [{"name": "nginx", "image": "nginx:1.14.2", "ports": [{"containerPort": 80}]}]}}
        }})
    }

    #[test]
    fn defaults_are_those_of_the_api_server() {
        let mut d = nginx();
        apply_defaults(&mut d);
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
        assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
        let c = &d["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["imagePullPolicy"], "IfNotPresent");
        assert_eq!(c["ports"][0]["protocol"], "TCP");
        assert!(validate(&d, None).is_empty());
    }

    #[test]
    fn an_empty_string_is_defaulted_as_go_defaults_an_unset_string() {
        let mut d = nginx();
        let c = &mut d["spec"]["template"]["spec"]["containers"][0];
        c["imagePullPolicy"] = json!("");
        c["ports"][0]["protocol"] = json!("");
        d["spec"]["strategy"] = json!({"type": ""});
        apply_defaults(&mut d);
        let c = &d["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["imagePullPolicy"], "IfNotPresent");
        assert_eq!(c["ports"][0]["protocol"], "TCP");
        assert_eq!(d["spec"]["strategy"]["type"], "RollingUpdate");
        assert!(validate(&d, None).is_empty());
    }

    #[test]
    fn negative_replicas_and_mismatched_labels_are_invalid() {
        let mut d = nginx();
        d["spec"]["replicas"] = json!(-1);
        d["spec"]["template"]["metadata"]["labels"] = json!({"app": "other"});
        apply_defaults(&mut d);
        let errors = validate(&d, None);
        assert_eq!(errors.len(), 2, "{errors:?}");
    }

    fn errors_of(change: impl FnOnce(&mut Value)) -> Vec<FieldError> {
        let mut d = nginx();
        change(&mut d);
        apply_defaults(&mut d);
        validate(&d, None)
    }

    #[test]
    fn strategies_are_validated_as_the_api_server_validates_them() {
        assert_eq!(
            errors_of(|d| {
                d["spec"]["strategy"] =
                    json!({"type": "Recreate", "rollingUpdate": {"maxSurge": 1}});
            }),
            [FieldError::forbidden(
                "spec.strategy.rollingUpdate",
                "may not be specified when strategy `type` is 'Recreate'"
            )]
        );
        assert!(errors_of(|d| d["spec"]["strategy"] = json!({"type": "Recreate"})).is_empty());
        let rolling = |r: Value| {
            errors_of(|d| {
                d["spec"]["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": r})
            })
        };
        assert_eq!(
            rolling(json!({"maxUnavailable": 0, "maxSurge": "0%"})),
            [FieldError::invalid_shown(
                "spec.strategy.rollingUpdate.maxUnavailable",
                "intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}",
                "may not be 0 when `maxSurge` is 0"
            )]
        );
        assert_eq!(
            rolling(json!({"maxUnavailable": "150%", "maxSurge": "lots"})),
            [
                FieldError::invalid_shown(
                    "spec.strategy.rollingUpdate.maxSurge",
                    "intstr.IntOrString{Type:1, IntVal:0, StrVal:\"lots\"}",
                    "must be an integer or percentage (e.g '5%')"
                ),
                FieldError::invalid_shown(
                    "spec.strategy.rollingUpdate.maxUnavailable",
                    "intstr.IntOrString{Type:1, IntVal:0, StrVal:\"150%\"}",
                    "must not be greater than 100%"
                ),
            ]
        );
        assert!(rolling(json!({"maxUnavailable": 0, "maxSurge": 1})).is_empty());
        assert!(rolling(json!({"maxUnavailable": "100%", "maxSurge": 0})).is_empty());
    }

    #[test]
    fn labels_annotations_and_ports_are_validated() {
        let errors = errors_of(|d| {
            d["spec"]["template"]["metadata"]["labels"]["tier"] = json!("front end");
            d["spec"]["template"]["metadata"]["labels"]["example.com/"] = json!("x");
            d["spec"]["template"]["metadata"]["annotations"] = json!({"a/b/c": "x"});
            d["spec"]["template"]["spec"]["containers"][0]["ports"] =
                json!([{"containerPort": 70000}, {"containerPort": 8080, "protocol": "HTTP"}]);
        });
        let fields: Vec<String> = errors.iter().map(FieldError::to_message).collect();
        // An empty name part is both empty and unlike a name, as apimachinery says.
        assert_eq!(errors.len(), 6, "{fields:#?}");
        for (field, part) in [
            (
                "spec.template.metadata.labels",
                "\"front end\": a valid label must be",
            ),
            (
                "spec.template.metadata.labels",
                "\"example.com/\": name part must be non-empty",
            ),
            (
                "spec.template.metadata.annotations",
                "\"a/b/c\": a qualified name must consist",
            ),
            (
                "spec.template.spec.containers[0].ports[0].containerPort",
                "70000: must be between 1 and 65535, inclusive",
            ),
            (
                "spec.template.spec.containers[0].ports[1].protocol",
                "Unsupported value: \"HTTP\"",
            ),
        ] {
            assert!(
                fields.iter().any(
                    |f| f.starts_with(&format!("{field}: Invalid value: {part}"))
                        || f.starts_with(&format!("{field}: {part}"))
                ),
                "{field}: {part} in {fields:#?}"
            );
        }
        assert!(
            errors_of(|d| {
                d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/part-of"] =
                    json!("Shop_2");
                d["spec"]["template"]["metadata"]["labels"]["empty"] = json!("");
            })
            .is_empty(),
            "qualified keys and empty values are labels"
        );
    }

    #[test]
    fn the_deadline_must_exceed_min_ready_and_images_have_no_outer_spaces() {
        let errors = errors_of(|d| {
            d["spec"]["minReadySeconds"] = json!(700);
            d["spec"]["template"]["spec"]["containers"][0]["image"] = json!(" nginx:1.25");
        });
        assert_eq!(
            errors
                .iter()
                .map(FieldError::to_message)
                .collect::<Vec<_>>(),
            [
                "spec.progressDeadlineSeconds: Invalid value: 600: must be greater than minReadySeconds",
                "spec.template.spec.containers[0].image: Invalid value: \" nginx:1.25\": must not have leading or trailing whitespace",
            ]
        );
    }

    #[test]
    fn a_deadline_of_zero_is_refused_when_min_ready_seconds_is_left_out() {
        let errors = errors_of(|d| {
            if let Some(spec) = d["spec"].as_object_mut() {
                spec.remove("minReadySeconds");
            }
            d["spec"]["progressDeadlineSeconds"] = json!(0);
        });
        assert_eq!(
            errors
                .iter()
                .map(FieldError::to_message)
                .collect::<Vec<_>>(),
            [
                "spec.progressDeadlineSeconds: Invalid value: 0: must be greater than minReadySeconds"
            ]
        );
    }

    #[test]
    fn the_hash_ignores_its_own_label_and_changes_with_the_template() {
        let d = nginx();
        let t = &d["spec"]["template"];
        let mut labelled = t.clone();
        labelled["metadata"]["labels"][HASH_LABEL] = json!(template_hash(t, 0));
        assert_eq!(template_hash(t, 0), template_hash(&labelled, 0));
        let mut changed = t.clone();
        changed["spec"]["containers"][0]["image"] = json!("nginx:1.21");
        assert_ne!(template_hash(t, 0), template_hash(&changed, 0));
        assert!(same_template(t, &labelled));
    }
}

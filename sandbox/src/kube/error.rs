//! API errors as the real server sends them: `Status` objects with the
//! reason, code, details and the exact message wording of the Kubernetes API
//! server, because clients (kubectl, kube-rs, the worker) branch on them and
//! people read them.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::resources::ResourceType;

/// One field error of an `Invalid` answer, e.g. `spec.replicas: Invalid
/// value: -1: must be greater than or equal to 0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldError {
    /// `FieldValueInvalid`, `FieldValueRequired`, ...
    reason: &'static str,
    field: String,
    /// The message without the field path, as it appears in `causes`.
    detail: String,
}

impl FieldError {
    /// `Invalid value: <value>: <detail>`, the value printed as Go's `%#v`
    /// would print it for scalars (strings quoted, numbers bare).
    pub(crate) fn invalid(field: impl Into<String>, value: &Value, detail: &str) -> Self {
        Self {
            reason: "FieldValueInvalid",
            field: field.into(),
            detail: format!("Invalid value: {}: {detail}", go_value(value)),
        }
    }

    /// [`Self::invalid`] with the value already as Go prints it (a struct).
    pub(crate) fn invalid_shown(field: impl Into<String>, shown: &str, detail: &str) -> Self {
        Self {
            reason: "FieldValueInvalid",
            field: field.into(),
            detail: format!("Invalid value: {shown}: {detail}"),
        }
    }

    pub(crate) fn required(field: impl Into<String>, detail: &str) -> Self {
        let detail = if detail.is_empty() {
            "Required value".to_owned()
        } else {
            format!("Required value: {detail}")
        };
        Self {
            reason: "FieldValueRequired",
            field: field.into(),
            detail,
        }
    }

    pub(crate) fn unsupported(field: impl Into<String>, value: &Value, supported: &[&str]) -> Self {
        let list = supported
            .iter()
            .map(|s| format!("{s:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        Self {
            reason: "FieldValueNotSupported",
            field: field.into(),
            detail: format!(
                "Unsupported value: {}: supported values: {list}",
                go_value(value)
            ),
        }
    }

    pub(crate) fn forbidden(field: impl Into<String>, detail: &str) -> Self {
        Self {
            reason: "FieldValueForbidden",
            field: field.into(),
            detail: format!("Forbidden: {detail}"),
        }
    }

    /// `Too long: must have at most <limit> bytes`.
    pub(crate) fn too_long(field: impl Into<String>, limit: usize) -> Self {
        Self {
            reason: "FieldValueTooLong",
            field: field.into(),
            detail: format!("Too long: must have at most {limit} bytes"),
        }
    }

    pub(crate) fn duplicate(field: impl Into<String>, value: &Value) -> Self {
        Self {
            reason: "FieldValueDuplicate",
            field: field.into(),
            detail: format!("Duplicate value: {}", go_value(value)),
        }
    }

    pub(crate) fn to_message(&self) -> String {
        format!("{}: {}", self.field, self.detail)
    }
}

/// Go-ish rendering of a JSON value inside an error message.
fn go_value(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        Value::Null => "null".to_owned(),
        // A list of strings (`dryRun`, `nonResourceURLs`) as Go's `%#v`
        // prints a `[]string`.
        Value::Array(items) if items.iter().all(Value::is_string) => format!(
            "[]string{{{}}}",
            items.iter().map(go_value).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) => {
            // Label maps are the only objects reported; Go prints them as
            // `map[string]string{"app":"nginx"}`.
            let inner = map
                .iter()
                .map(|(k, v)| format!("{k:?}:{}", go_value(v)))
                .collect::<Vec<_>>()
                .join(", ");
            format!("map[string]string{{{inner}}}")
        }
        other => other.to_string(),
    }
}

/// A `metav1.LabelSelector` (a `spec.selector`) as Go's `%#v` prints it in
/// an error, e.g. `v1.LabelSelector{MatchLabels:map[string]string{"app":"web"},
/// MatchExpressions:[]v1.LabelSelectorRequirement(nil)}`; `null` when unset.
pub(crate) fn go_label_selector(selector: &Value) -> String {
    if selector.is_null() {
        return "null".to_owned();
    }
    let labels = match &selector["matchLabels"] {
        Value::Object(map) => go_value(&Value::Object(map.clone())),
        _ => "map[string]string(nil)".to_owned(),
    };
    let expressions = match &selector["matchExpressions"] {
        Value::Array(list) => {
            let inner = list
                .iter()
                .map(|e| {
                    let values = match &e["values"] {
                        Value::Array(vs) => format!(
                            "[]string{{{}}}",
                            vs.iter().map(go_value).collect::<Vec<_>>().join(", ")
                        ),
                        _ => "[]string(nil)".to_owned(),
                    };
                    format!(
                        "v1.LabelSelectorRequirement{{Key:{:?}, Operator:{:?}, Values:{values}}}",
                        e["key"].as_str().unwrap_or(""),
                        e["operator"].as_str().unwrap_or(""),
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            format!("[]v1.LabelSelectorRequirement{{{inner}}}")
        }
        _ => "[]v1.LabelSelectorRequirement(nil)".to_owned(),
    };
    format!("v1.LabelSelector{{MatchLabels:{labels}, MatchExpressions:{expressions}}}")
}

/// A failed request, answered as a `Status` object.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub(crate) struct ApiError {
    code: u16,
    reason: &'static str,
    message: String,
    details: Option<Value>,
    retry_after: Option<u64>,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub(crate) fn code(&self) -> u16 {
        self.code
    }

    /// `deployments.apps "web" not found`
    pub(crate) fn not_found(rt: &ResourceType, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} {name:?} not found", rt.qualified()),
        )
        .with_details(rt.details(name))
    }

    /// For paths that name no known resource.
    pub(crate) fn no_route() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
        .with_details(json!({}))
    }

    /// `namespaces "x" not found`, when an object is created in a namespace
    /// that does not exist.
    pub(crate) fn namespace_not_found(namespace: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("namespaces {namespace:?} not found"),
        )
        .with_details(json!({"name": namespace, "kind": "namespaces"}))
    }

    pub(crate) fn already_exists(rt: &ResourceType, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} {name:?} already exists", rt.qualified()),
        )
        .with_details(rt.details(name))
    }

    /// The optimistic-concurrency failure: a stale `resourceVersion`.
    pub(crate) fn conflict(rt: &ResourceType, name: &str) -> Self {
        Self::conflict_because(
            rt,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    pub(crate) fn conflict_because(rt: &ResourceType, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} {name:?}: {why}",
                rt.qualified()
            ),
        )
        .with_details(rt.details(name))
    }

    /// RBAC's answer, worded as the real authorizer words it.
    pub(crate) fn forbidden(
        rt: &ResourceType,
        name: &str,
        user: &str,
        verb: &str,
        resource: &str,
        namespace: &str,
    ) -> Self {
        let what = if name.is_empty() {
            rt.qualified()
        } else {
            format!("{} {name:?}", rt.qualified())
        };
        let scope = if namespace.is_empty() {
            "at the cluster scope".to_owned()
        } else {
            format!("in the namespace {namespace:?}")
        };
        Self::new(
            403,
            "Forbidden",
            format!(
                "{what} is forbidden: User {user:?} cannot {verb} resource {resource:?} in API group {:?} {scope}",
                rt.group
            ),
        )
        .with_details(rt.details(name))
    }

    /// Non-resource paths (discovery) refused to an anonymous caller.
    pub(crate) fn forbidden_path(user: &str, verb: &str, path: &str) -> Self {
        Self::new(
            403,
            "Forbidden",
            format!("forbidden: User {user:?} cannot {verb} path {path:?}"),
        )
        .with_details(json!({}))
    }

    pub(crate) fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    /// `Deployment.apps "web" is invalid: spec.replicas: Invalid value: ...`
    pub(crate) fn invalid(kind: &str, group: &str, name: &str, errors: &[FieldError]) -> Self {
        let qualified_kind = if group.is_empty() {
            kind.to_owned()
        } else {
            format!("{kind}.{group}")
        };
        let list = match errors {
            [one] => one.to_message(),
            many => format!(
                "[{}]",
                many.iter()
                    .map(FieldError::to_message)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let causes: Vec<Value> = errors
            .iter()
            .map(|e| json!({"reason": e.reason, "message": e.detail, "field": e.field}))
            .collect();
        // Go leaves an empty name or group out of the details (`omitempty`):
        // options (`CreateOptions "" is invalid`) have no name, core kinds
        // no group.
        let mut details = json!({"kind": kind, "causes": causes});
        for (key, value) in [("name", name), ("group", group)] {
            if !value.is_empty() {
                details[key] = json!(value);
            }
        }
        Self::new(
            422,
            "Invalid",
            format!("{qualified_kind} {name:?} is invalid: {list}"),
        )
        .with_details(details)
    }

    /// What the server says when a JSON patch cannot be applied, e.g. a
    /// failed `test` operation: a bare 422 whose details are empty, as the
    /// server drops the patch library's own message (`NewGenericServerResponse`
    /// without causes), so kubectl can only say the request was invalid.
    pub(crate) fn patch_rejected() -> Self {
        Self::new(
            422,
            "Invalid",
            "the server rejected our request due to an error in our request",
        )
        .with_details(json!({}))
    }

    /// An error the server has no `Status` for (a Go error reaching the
    /// handler as is): 500, no reason, the error's text as the message.
    pub(crate) fn unclassified(message: impl Into<String>) -> Self {
        Self::new(500, "", message)
    }

    /// The admission plugins' refusal of an operation on one object, e.g.
    /// `namespaces "default" is forbidden: this namespace may not be deleted`.
    pub(crate) fn forbidden_because(rt: &ResourceType, name: &str, why: &str) -> Self {
        Self::new(
            403,
            "Forbidden",
            format!("{} {name:?} is forbidden: {why}", rt.qualified()),
        )
        .with_details(rt.details(name))
    }

    /// The `NamespaceLifecycle` admission plugin's refusal of a create in a
    /// namespace being deleted, with the `NamespaceTerminating` cause it
    /// adds (clients such as event recorders branch on it).
    pub(crate) fn namespace_terminating(rt: &ResourceType, name: &str, namespace: &str) -> Self {
        let mut e = Self::forbidden_because(
            rt,
            name,
            &format!(
                "unable to create new content in namespace {namespace} because it is being terminated"
            ),
        );
        if let Some(details) = &mut e.details {
            details["causes"] = json!([{
                "reason": "NamespaceTerminating",
                "message": format!("namespace {namespace} is being terminated"),
                "field": "metadata.namespace",
            }]);
        }
        e
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub(crate) fn method_not_allowed() -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
        .with_details(json!({}))
    }

    /// A body in a media type the server does not decode.
    pub(crate) fn unsupported_media_type(accepted: &[&str]) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: {}",
                accepted.join(", ")
            ),
        )
    }

    /// A protobuf body the sandbox cannot read (a kind or field missing
    /// from its schemas): 415, so the client knows to send JSON.
    pub(crate) fn undecodable_protobuf(why: &str) -> Self {
        Self::new(415, "UnsupportedMediaType", why)
    }

    pub(crate) fn too_many_requests(retry_after: u64) -> Self {
        let mut e = Self::new(
            429,
            "TooManyRequests",
            "Too many requests, please try again later.",
        )
        .with_details(json!({"retryAfterSeconds": retry_after}));
        e.retry_after = Some(retry_after);
        e
    }

    pub(crate) fn internal(cause: &str) -> Self {
        Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: {cause}"),
        )
        .with_details(json!({"causes": [{"message": cause}]}))
    }

    pub(crate) fn unavailable(message: &str) -> Self {
        Self::new(503, "ServiceUnavailable", message)
    }

    /// A watch that starts before the oldest remembered event.
    pub(crate) fn expired(requested: u64, oldest: u64) -> Self {
        Self::new(
            410,
            "Expired",
            format!("too old resource version: {requested} ({oldest})"),
        )
    }

    /// Any other code a fault asks for.
    pub(crate) fn generic(code: u16, message: &str) -> Self {
        let reason = match code {
            400 => "BadRequest",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "NotFound",
            409 => "Conflict",
            410 => "Gone",
            422 => "Invalid",
            429 => "TooManyRequests",
            500 => "InternalError",
            503 => "ServiceUnavailable",
            504 => "Timeout",
            _ => "",
        };
        Self::new(code, reason, message)
    }

    pub(crate) fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        let mut details = self.details.take().unwrap_or_else(|| json!({}));
        details["retryAfterSeconds"] = json!(seconds);
        self.details = Some(details);
        self
    }

    /// The `Status` body.
    pub(crate) fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if self.reason.is_empty()
            && let Some(map) = status.as_object_mut()
        {
            map.remove("reason");
        }
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (code, axum::Json(self.status())).into_response();
        if let Some(seconds) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
}

/// `{"kind":"Status","status":"Success",...}`, what a delete of an object
/// without finalizers answers.
pub(crate) fn success_status(rt: &ResourceType, name: &str, uid: &Value) -> Value {
    let mut details = rt.details(name);
    details["uid"] = uid.clone();
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_invalid_field_reads_like_the_real_server() {
        let e = ApiError::invalid(
            "Deployment",
            "apps",
            "web",
            &[FieldError::invalid(
                "spec.replicas",
                &json!(-1),
                "must be greater than or equal to 0",
            )],
        );
        assert_eq!(
            e.status()["message"],
            "Deployment.apps \"web\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"
        );
        assert_eq!(e.status()["details"]["causes"][0]["field"], "spec.replicas");
    }
}

//! The review kinds, which are created and answered but never stored:
//! `SelfSubjectAccessReview` (`kubectl auth can-i`),
//! `SelfSubjectRulesReview` (`kubectl auth can-i --list`) and
//! `SelfSubjectReview` (`kubectl auth whoami`), all about the caller as the
//! gate saw it, impersonation (`--as`) included, and all decided by the
//! same RBAC evaluation that guards every other request.

use serde_json::{Value, json};

use super::error::ApiError;
use super::meta::str_at;
use super::rbac::{self, Auth, Identity, ResourceAttributes};
use super::resources::{ResourceType, SELF_SUBJECT_ACCESS_REVIEW, SELF_SUBJECT_RULES_REVIEW};
use super::store::Store;

/// The answer to a created review of type `rt`: the review sent, with its
/// `status` filled in.
pub(crate) fn answer(
    auth: &Auth,
    store: &Store,
    identity: &Identity,
    rt: &ResourceType,
    mut review: Value,
) -> Result<Value, ApiError> {
    // As on a cluster, where `system:basic-user` lets every authenticated
    // caller ask about itself.
    if auth.rbac
        && !identity.in_group("system:authenticated")
        && !identity.in_group("system:masters")
    {
        return Err(ApiError::forbidden(
            rt,
            "",
            &identity.user,
            "create",
            rt.plural,
            "",
        ));
    }
    if !review.is_object() {
        return Err(ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: the body must be a JSON object",
            rt.kind, rt.version, rt.kind
        )));
    }
    review["apiVersion"] = json!(rt.api_version());
    review["kind"] = json!(rt.kind);
    review["metadata"] = json!({"creationTimestamp": null});
    review["status"] = if std::ptr::eq(rt, &SELF_SUBJECT_ACCESS_REVIEW) {
        access(auth, store, identity, &review)?
    } else if std::ptr::eq(rt, &SELF_SUBJECT_RULES_REVIEW) {
        rules(auth, store, identity, str_at(&review, "/spec/namespace"))
    } else {
        json!({"userInfo": {"username": identity.user, "groups": identity.groups}})
    };
    Ok(review)
}

/// `status` of a `SelfSubjectAccessReview`: RBAC has no deny rules, so a
/// refusal is "no opinion" (`allowed: false`, no reason), as the real
/// authorizer answers.
fn access(
    auth: &Auth,
    store: &Store,
    identity: &Identity,
    review: &Value,
) -> Result<Value, ApiError> {
    let allowed = if let Some(attrs) = review.pointer("/spec/resourceAttributes") {
        let request = ResourceAttributes {
            verb: str_at(attrs, "/verb"),
            group: str_at(attrs, "/group"),
            resource: str_at(attrs, "/resource"),
            subresource: str_at(attrs, "/subresource"),
            namespace: str_at(attrs, "/namespace"),
            name: str_at(attrs, "/name"),
        };
        rbac::allows(auth, store, identity, &request)
    } else if let Some(attrs) = review.pointer("/spec/nonResourceAttributes") {
        rbac::allows_path(
            auth,
            store,
            identity,
            str_at(attrs, "/verb"),
            str_at(attrs, "/path"),
        )
    } else {
        return Err(ApiError::invalid(
            "SelfSubjectAccessReview",
            "authorization.k8s.io",
            "",
            &[super::error::FieldError::required(
                "spec.resourceAttributes",
                "exactly one of nonResourceAttributes or resourceAttributes must be specified",
            )],
        ));
    };
    Ok(json!({"allowed": allowed}))
}

/// `status` of a `SelfSubjectRulesReview`: the rules of every role bound
/// to the caller in `namespace` and cluster-wide; everything when RBAC is
/// off or the caller is in `system:masters`.
fn rules(auth: &Auth, store: &Store, identity: &Identity, namespace: &str) -> Value {
    if !auth.rbac || identity.in_group("system:masters") {
        return json!({
            "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
            "incomplete": false,
        });
    }
    let mut resource_rules = Vec::new();
    let mut non_resource_rules = Vec::new();
    for rule in rbac::rules_of(store, identity, namespace) {
        let pick = |fields: &[&str]| {
            let mut out = serde_json::Map::new();
            for f in fields {
                if let Some(v) = rule.get(*f).filter(|v| !v.is_null()) {
                    out.insert((*f).to_owned(), v.clone());
                }
            }
            Value::Object(out)
        };
        if rule.get("resources").is_some_and(|r| !r.is_null()) {
            resource_rules.push(pick(&["verbs", "apiGroups", "resources", "resourceNames"]));
        }
        if rule.get("nonResourceURLs").is_some_and(|r| !r.is_null()) {
            non_resource_rules.push(pick(&["verbs", "nonResourceURLs"]));
        }
    }
    // What every authenticated caller may do here: ask about itself (see
    // `answer`) and read discovery (see `rbac::authorize_path`).
    if identity.in_group("system:authenticated") {
        resource_rules.push(json!({
            "verbs": ["create"],
            "apiGroups": ["authorization.k8s.io"],
            "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
        }));
        resource_rules.push(json!({
            "verbs": ["create"],
            "apiGroups": ["authentication.k8s.io"],
            "resources": ["selfsubjectreviews"],
        }));
        non_resource_rules.push(json!({
            "verbs": ["get"],
            "nonResourceURLs": rbac::DISCOVERY_URLS,
        }));
    }
    json!({
        "resourceRules": resource_rules,
        "nonResourceRules": non_resource_rules,
        "incomplete": false,
    })
}

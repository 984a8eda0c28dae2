//! Authentication (bearer tokens mapped to users) and RBAC authorization
//! evaluated against the Roles, ClusterRoles and bindings in the store, so
//! the project's own `resources/role.yaml` is what decides.
//!
//! Like a real cluster: members of `system:masters` may do anything, every
//! caller may read `/version` and health endpoints, authenticated callers may
//! read discovery, and with RBAC off everyone acts as cluster-admin.

use std::collections::HashMap;

use serde_json::Value;

use super::error::ApiError;
use super::meta::str_at;
use super::resources::{CLUSTER_ROLE, CLUSTER_ROLE_BINDING, ROLE, ROLE_BINDING, ResourceType};
use super::store::Store;

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `system:serviceaccount:default:chatops-bot`, `admin`, ...
    pub user: String,
    pub groups: Vec<String>,
}

impl Identity {
    /// A user with the groups the API server would give it: service
    /// accounts get `system:serviceaccounts` and their namespace's group.
    pub fn user(name: &str) -> Self {
        let mut groups = Vec::new();
        if let Some(rest) = name.strip_prefix("system:serviceaccount:") {
            groups.push("system:serviceaccounts".to_owned());
            if let Some((ns, _)) = rest.split_once(':') {
                groups.push(format!("system:serviceaccounts:{ns}"));
            }
        }
        groups.push("system:authenticated".to_owned());
        Self {
            user: name.to_owned(),
            groups,
        }
    }

    /// A cluster administrator (`system:masters`).
    pub fn admin(name: &str) -> Self {
        let mut id = Self::user(name);
        id.groups.insert(0, "system:masters".to_owned());
        id
    }

    /// The caller without a token.
    pub fn anonymous() -> Self {
        Self {
            user: "system:anonymous".to_owned(),
            groups: vec!["system:unauthenticated".to_owned()],
        }
    }

    pub(crate) fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}

/// Token table, who callers without a token are, and the RBAC switch.
#[derive(Debug)]
pub(crate) struct Auth {
    pub(crate) tokens: HashMap<String, Identity>,
    pub(crate) anonymous: Identity,
    pub(crate) rbac: bool,
}

impl Default for Auth {
    fn default() -> Self {
        Self {
            tokens: HashMap::new(),
            anonymous: Identity::anonymous(),
            rbac: false,
        }
    }
}

impl Auth {
    /// The identity of a request's `Authorization` header; an unknown
    /// token is 401 as on a cluster.
    pub(crate) fn authenticate(&self, authorization: Option<&str>) -> Result<Identity, ApiError> {
        let Some(header) = authorization else {
            return Ok(self.anonymous.clone());
        };
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .ok_or_else(ApiError::unauthorized)?;
        self.tokens
            .get(token)
            .cloned()
            .ok_or_else(ApiError::unauthorized)
    }
}

impl Auth {
    /// Applies `Impersonate-User` / `Impersonate-Group` (kubectl's `--as`,
    /// `--as-group`). Only cluster administrators may impersonate, and
    /// anyone may when RBAC is off.
    pub(crate) fn impersonate<'h>(
        &self,
        caller: Identity,
        user: Option<&str>,
        groups: impl Iterator<Item = &'h str>,
    ) -> Result<Identity, ApiError> {
        let Some(user) = user else {
            return Ok(caller);
        };
        if self.rbac && !caller.in_group("system:masters") {
            let (resource, name, scope) = match user
                .strip_prefix("system:serviceaccount:")
                .and_then(|rest| rest.split_once(':'))
            {
                Some((ns, name)) => ("serviceaccounts", name, format!("in the namespace {ns:?}")),
                None => ("users", user, "at the cluster scope".to_owned()),
            };
            return Err(ApiError::generic(
                403,
                &format!(
                    "{resource} {name:?} is forbidden: User {:?} cannot impersonate resource {resource:?} in API group \"\" {scope}",
                    caller.user
                ),
            ));
        }
        let mut identity = Identity::user(user);
        for g in groups {
            if !identity.in_group(g) {
                identity.groups.push(g.to_owned());
            }
        }
        Ok(identity)
    }
}

/// What a resource request wants to do.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attributes<'a> {
    pub(crate) verb: &'a str,
    pub(crate) rt: &'static ResourceType,
    pub(crate) subresource: &'a str,
    pub(crate) namespace: &'a str,
    pub(crate) name: &'a str,
}

/// Paths every caller may read, authenticated or not.
const PUBLIC_PATHS: &[&str] = &["/version", "/healthz", "/livez", "/readyz"];

/// Whether `identity` may read a non-resource path.
pub(crate) fn authorize_path(auth: &Auth, identity: &Identity, path: &str) -> Result<(), ApiError> {
    if !auth.rbac || identity.in_group("system:authenticated") || PUBLIC_PATHS.contains(&path) {
        return Ok(());
    }
    Err(ApiError::forbidden_path(&identity.user, "get", path))
}

/// Whether `identity` may do what `attrs` says, by the RBAC objects in
/// `store`.
pub(crate) fn authorize(
    auth: &Auth,
    store: &Store,
    identity: &Identity,
    attrs: Attributes<'_>,
) -> Result<(), ApiError> {
    let request = ResourceAttributes {
        verb: attrs.verb,
        group: attrs.rt.group,
        resource: attrs.rt.plural,
        subresource: attrs.subresource,
        namespace: attrs.namespace,
        name: attrs.name,
    };
    if allows(auth, store, identity, &request) {
        return Ok(());
    }
    let resource = if attrs.subresource.is_empty() {
        attrs.rt.plural.to_owned()
    } else {
        format!("{}/{}", attrs.rt.plural, attrs.subresource)
    };
    Err(ApiError::forbidden(
        attrs.rt,
        attrs.name,
        &identity.user,
        attrs.verb,
        &resource,
        attrs.namespace,
    ))
}

/// A request in RBAC's own terms, for any resource, served or not (what a
/// `SelfSubjectAccessReview` asks about).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ResourceAttributes<'a> {
    pub(crate) verb: &'a str,
    pub(crate) group: &'a str,
    /// The plural, without the subresource.
    pub(crate) resource: &'a str,
    pub(crate) subresource: &'a str,
    pub(crate) namespace: &'a str,
    pub(crate) name: &'a str,
}

/// Whether RBAC (or its absence, or `system:masters`) lets `identity` do
/// what `request` says.
pub(crate) fn allows(
    auth: &Auth,
    store: &Store,
    identity: &Identity,
    request: &ResourceAttributes<'_>,
) -> bool {
    if !auth.rbac || identity.in_group("system:masters") {
        return true;
    }
    let wanted = if request.subresource.is_empty() {
        request.resource.to_owned()
    } else {
        format!("{}/{}", request.resource, request.subresource)
    };
    rules_of(store, identity, request.namespace).any(|rule| rule_allows(rule, request, &wanted))
}

/// The non-resource URLs every authenticated caller may read on a
/// cluster (`system:discovery` and friends); [`authorize_path`] lets them
/// read every path the sandbox serves outside resources, which are these.
pub(crate) const DISCOVERY_URLS: &[&str] = &[
    "/api",
    "/api/*",
    "/apis",
    "/apis/*",
    "/healthz",
    "/livez",
    "/openapi",
    "/openapi/*",
    "/readyz",
    "/version",
    "/version/",
];

/// RBAC's URL match: exact, or a prefix ending in `*`.
fn url_matches(pattern: &str, path: &str) -> bool {
    pattern == "*"
        || pattern == path
        || pattern
            .strip_suffix('*')
            .is_some_and(|prefix| path.starts_with(prefix))
}

/// Whether `identity` may use `verb` on a non-resource path: the public
/// and discovery paths, plus the `nonResourceURLs` rules of ClusterRoles
/// bound cluster-wide.
pub(crate) fn allows_path(
    auth: &Auth,
    store: &Store,
    identity: &Identity,
    verb: &str,
    path: &str,
) -> bool {
    if !auth.rbac || identity.in_group("system:masters") {
        return true;
    }
    let readable = PUBLIC_PATHS.contains(&path)
        || (identity.in_group("system:authenticated")
            && DISCOVERY_URLS.iter().any(|p| url_matches(p, path)));
    if verb == "get" && readable {
        return true;
    }
    rules_of(store, identity, "").any(|rule| {
        strings(rule, "verbs").iter().any(|v| v == "*" || v == verb)
            && strings(rule, "nonResourceURLs")
                .iter()
                .any(|p| url_matches(p, path))
    })
}

/// The rules of every role bound to `identity`: cluster-wide, and in
/// `namespace` when one is given; read as asked, so a check stops at the
/// first rule that allows.
pub(crate) fn rules_of<'s>(
    store: &'s Store,
    identity: &Identity,
    namespace: &str,
) -> impl Iterator<Item = &'s Value> {
    store
        .list(&CLUSTER_ROLE_BINDING, None)
        .into_iter()
        .filter(|b| binds(b, identity))
        .filter_map(|b| role_rules(store, b, ""))
        .chain(
            store
                .list(&ROLE_BINDING, Some(namespace))
                .into_iter()
                .filter(|_| !namespace.is_empty())
                .filter(|b| binds(b, identity))
                .filter_map(|b| role_rules(store, b, namespace)),
        )
        .flatten()
}

/// Whether a binding's subjects include `identity`.
fn binds(binding: &Value, identity: &Identity) -> bool {
    let binding_ns = str_at(binding, "/metadata/namespace");
    binding
        .get("subjects")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|s| match str_at(s, "/kind") {
            "User" => str_at(s, "/name") == identity.user,
            "Group" => identity.in_group(str_at(s, "/name")),
            "ServiceAccount" => {
                let ns = match str_at(s, "/namespace") {
                    "" => binding_ns,
                    ns => ns,
                };
                identity.user == format!("system:serviceaccount:{ns}:{}", str_at(s, "/name"))
            }
            _ => false,
        })
}

/// The rules of the role a binding refers to (a Role in the binding's
/// namespace, or a ClusterRole).
fn role_rules<'s>(store: &'s Store, binding: &Value, namespace: &str) -> Option<&'s Vec<Value>> {
    let name = str_at(binding, "/roleRef/name");
    let role = match str_at(binding, "/roleRef/kind") {
        "Role" if !namespace.is_empty() => store.get(&ROLE, namespace, name),
        "ClusterRole" => store.get(&CLUSTER_ROLE, "", name),
        _ => None,
    };
    role?.get("rules")?.as_array()
}

fn strings(rule: &Value, field: &str) -> Vec<String> {
    rule.get(field)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// Whether `rule` allows `request`, whose resource (with its subresource,
/// `deployments/scale`) is `wanted`.
fn rule_allows(rule: &Value, request: &ResourceAttributes<'_>, wanted: &str) -> bool {
    let any = |list: &[String], wanted: &str| list.iter().any(|v| v == "*" || v == wanted);
    let verbs = strings(rule, "verbs");
    let groups = strings(rule, "apiGroups");
    let resources = strings(rule, "resources");
    let names = strings(rule, "resourceNames");
    let resource_ok = resources.iter().any(|r| {
        r == "*"
            || r == wanted
            || (!request.subresource.is_empty()
                && r.strip_prefix("*/") == Some(request.subresource))
    });
    any(&verbs, request.verb)
        && any(&groups, request.group)
        && resource_ok
        && (names.is_empty()
            || (!request.name.is_empty() && names.iter().any(|n| n == request.name)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::kube::resources::DEPLOYMENT;

    fn store_with_role() -> Store {
        let mut store = Store::default();
        store.insert(
            &ROLE,
            json!({"metadata": {"name": "bot", "namespace": "default"}, "rules": [
                {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "patch"]},
                {"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["patch"]}
            ]}),
        );
        store.insert(
            &ROLE_BINDING,
            json!({"metadata": {"name": "bot", "namespace": "default"},
                   "subjects": [{"kind": "ServiceAccount", "name": "bot", "namespace": "default"}],
                   "roleRef": {"kind": "Role", "name": "bot", "apiGroup": "rbac.authorization.k8s.io"}}),
        );
        store
    }

    #[test]
    fn a_role_allows_exactly_its_rules_and_only_in_its_namespace() {
        let store = store_with_role();
        let auth = Auth {
            rbac: true,
            ..Auth::default()
        };
        let bot = Identity::user("system:serviceaccount:default:bot");
        let attrs = |verb, sub, ns| Attributes {
            verb,
            rt: &DEPLOYMENT,
            subresource: sub,
            namespace: ns,
            name: "web",
        };
        assert!(authorize(&auth, &store, &bot, attrs("patch", "", "default")).is_ok());
        assert!(authorize(&auth, &store, &bot, attrs("patch", "scale", "default")).is_ok());
        let denied =
            authorize(&auth, &store, &bot, attrs("delete", "", "default")).expect_err("no delete");
        assert_eq!(
            denied.status()["message"],
            "deployments.apps \"web\" is forbidden: User \"system:serviceaccount:default:bot\" cannot delete resource \"deployments\" in API group \"apps\" in the namespace \"default\""
        );
        assert!(authorize(&auth, &store, &bot, attrs("patch", "", "prod")).is_err());
        assert!(
            authorize(
                &auth,
                &store,
                &Identity::admin("root"),
                attrs("delete", "", "prod")
            )
            .is_ok()
        );
    }
}

//! Discovery and OpenAPI: `/version`, `/api`, `/apis`, the resource lists of
//! each group/version, and the small OpenAPI v3 documents kubectl reads.
//!
//! Discovery is served in the legacy format; clients that ask for the
//! aggregated format (kubectl does) accept legacy JSON when the
//! `Content-Type` says so. The OpenAPI v3 documents carry only the PATCH
//! operations with their query parameters: kubectl looks there to learn that
//! the server validates fields itself (`fieldValidation`), and then skips
//! client-side schema validation. They carry no request-body schemas, so
//! kubectl computes strategic merge patches from its built-in types, as it
//! does for any built-in kind. `/openapi/v2` is not served (404), which
//! kubectl tolerates once v3 has answered.

use serde_json::{Value, json};

use super::resources::{self, Behaviour, ResourceType, TYPES, group_version};

/// The version this sandbox claims; kubectl's version dispatcher and
/// skew warnings read it.
pub(crate) const MAJOR: &str = "1";
pub(crate) const MINOR: &str = "32";
pub(crate) const GIT_VERSION: &str = "v1.32.4";

pub(crate) fn version() -> Value {
    json!({
        "major": MAJOR,
        "minor": MINOR,
        "gitVersion": GIT_VERSION,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-04-22T00:00:00Z",
        "goVersion": "go1.23.8",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// `/api`
pub(crate) fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn group_entry(group: &str, version: &str) -> Value {
    let gv = json!({"groupVersion": group_version(group, version), "version": version});
    json!({"name": group, "versions": [gv.clone()], "preferredVersion": gv})
}

/// `/apis`
pub(crate) fn group_list() -> Value {
    let groups: Vec<Value> = resources::groups()
        .into_iter()
        .map(|(g, v)| group_entry(g, v))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/{group}`, None when the group is not served.
pub(crate) fn group(name: &str) -> Option<Value> {
    let (g, v) = resources::groups().into_iter().find(|(g, _)| *g == name)?;
    let mut entry = group_entry(g, v);
    entry["kind"] = json!("APIGroup");
    entry["apiVersion"] = json!("v1");
    Some(entry)
}

fn served<'a>(
    group: &'a str,
    version: &'a str,
) -> impl Iterator<Item = &'static ResourceType> + 'a {
    TYPES
        .iter()
        .copied()
        .filter(move |t| t.group == group && t.version == version)
}

/// `/api/v1`, `/apis/{group}/{version}`; None when not served.
pub(crate) fn resource_list(group: &str, version: &str) -> Option<Value> {
    let types: Vec<_> = served(group, version).collect();
    if types.is_empty() {
        return None;
    }
    let resources: Vec<Value> = types.iter().flat_map(|t| t.discovery()).collect();
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version(group, version),
        "resources": resources,
    }))
}

/// The path of a group/version's document under `/openapi/v3/`.
fn openapi_key(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// `/openapi/v3`: where each group/version's document lives.
pub(crate) fn openapi_root() -> Value {
    let mut paths = serde_json::Map::new();
    let mut gvs = vec![("", "v1")];
    gvs.extend(resources::groups());
    for (g, v) in gvs {
        let key = openapi_key(g, v);
        let url = format!(
            "/openapi/v3/{key}?hash={}",
            crate::kube::discovery::GIT_VERSION
        );
        paths.insert(key, json!({"serverRelativeURL": url}));
    }
    json!({"paths": paths})
}

fn query_param(name: &str, kind: &str) -> Value {
    json!({"name": name, "in": "query", "schema": {"type": kind, "uniqueItems": true}})
}

/// `/openapi/v3/{api/v1 | apis/group/version}`; None when not served.
pub(crate) fn openapi_document(key: &str) -> Option<Value> {
    let (group, version) = match key.split('/').collect::<Vec<_>>().as_slice() {
        ["api", v] => ("", *v),
        ["apis", g, v] => (*g, *v),
        _ => return None,
    };
    let mut paths = serde_json::Map::new();
    // Reviews are create-only: there is nothing to patch.
    for t in served(group, version).filter(|t| t.behaviour != Behaviour::Review) {
        let gvk = json!({"group": t.group, "version": t.version, "kind": t.kind});
        let prefix = if group.is_empty() {
            format!("/api/{version}")
        } else {
            format!("/apis/{group}/{version}")
        };
        let path = if t.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", t.plural)
        } else {
            format!("{prefix}/{}/{{name}}", t.plural)
        };
        let patch = json!({
            "operationId": format!("patch{}", t.kind),
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": gvk,
            "parameters": [
                query_param("dryRun", "string"),
                query_param("fieldManager", "string"),
                query_param("fieldValidation", "string"),
                query_param("force", "boolean"),
            ],
            "responses": {"200": {"description": "OK"}},
        });
        paths.insert(path, json!({"patch": patch}));
    }
    if paths.is_empty() {
        return None;
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": GIT_VERSION},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}

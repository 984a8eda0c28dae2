//! Server-side printing: the `meta.k8s.io/v1` `Table` that `kubectl get`
//! asks for, with the columns the real server prints for each kind (e.g.
//! NAME, READY, UP-TO-DATE, AVAILABLE, AGE for Deployments).

use serde_json::{Value, json};

use super::meta::{self, LabelSelector, age_seconds, str_at};
use super::resources::{Behaviour, ResourceType};

fn column(name: &str, kind: &str, format: &str, priority: u8, description: &str) -> Value {
    json!({"name": name, "type": kind, "format": format, "description": description, "priority": priority})
}

fn name_column() -> Value {
    column(
        "Name",
        "string",
        "name",
        0,
        "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
    )
}

fn age_column() -> Value {
    column(
        "Age",
        "string",
        "",
        0,
        "CreationTimestamp is a timestamp representing the server time when this object was created.",
    )
}

fn age(object: &Value) -> String {
    meta::human_duration(age_seconds(str_at(object, "/metadata/creationTimestamp")))
}

fn int(object: &Value, pointer: &str) -> i64 {
    object.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

/// Container names, images and the selector: the wide columns of workloads.
fn workload_extras(object: &Value) -> [String; 3] {
    let containers = object
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let join = |field: &str| {
        containers
            .iter()
            .map(|c| str_at(c, field))
            .collect::<Vec<_>>()
            .join(",")
    };
    [
        join("/name"),
        join("/image"),
        LabelSelector::from_object(&object["spec"]["selector"]).to_string(),
    ]
}

fn workload_columns() -> [Value; 3] {
    [
        column(
            "Containers",
            "string",
            "",
            1,
            "Names of each container in the template.",
        ),
        column(
            "Images",
            "string",
            "",
            1,
            "Images referenced by each container in the template.",
        ),
        column(
            "Selector",
            "string",
            "",
            1,
            "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.",
        ),
    ]
}

fn columns(rt: &ResourceType) -> Vec<Value> {
    let mut cols = vec![name_column()];
    match (rt.behaviour, rt.kind) {
        (Behaviour::Deployment, _) => {
            cols.push(column(
                "Ready",
                "string",
                "",
                0,
                "Number of the pod with ready state",
            ));
            cols.push(column("Up-to-date", "integer", "", 0, "Total number of non-terminated pods targeted by this deployment that have the desired template spec."));
            cols.push(column("Available", "integer", "", 0, "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment."));
            cols.push(age_column());
            cols.extend(workload_columns());
        }
        (Behaviour::ReplicaSet, _) => {
            cols.push(column(
                "Desired",
                "integer",
                "",
                0,
                "Replicas is the number of desired replicas.",
            ));
            cols.push(column(
                "Current",
                "integer",
                "",
                0,
                "Replicas is the most recently observed number of replicas.",
            ));
            cols.push(column(
                "Ready",
                "integer",
                "",
                0,
                "The number of ready replicas for this replica set.",
            ));
            cols.push(age_column());
            cols.extend(workload_columns());
        }
        (Behaviour::Namespace, _) => {
            cols.push(column(
                "Status",
                "string",
                "",
                0,
                "The status of the namespace",
            ));
            cols.push(age_column());
        }
        (_, "ServiceAccount") => {
            cols.push(column("Secrets", "string", "", 0, "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use."));
            cols.push(age_column());
        }
        (_, "ConfigMap") => {
            cols.push(column(
                "Data",
                "string",
                "",
                0,
                "Data contains the configuration data.",
            ));
            cols.push(age_column());
        }
        (_, "Role" | "ClusterRole") => {
            cols.push(column("Created At", "date", "", 0, "CreationTimestamp is a timestamp representing the server time when this object was created."));
        }
        (_, "RoleBinding" | "ClusterRoleBinding") => {
            cols.push(column("Role", "string", "", 0, "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace."));
            cols.push(age_column());
        }
        _ => cols.push(age_column()),
    }
    cols
}

fn cells(rt: &ResourceType, object: &Value) -> Vec<Value> {
    let name = json!(str_at(object, "/metadata/name"));
    match (rt.behaviour, rt.kind) {
        (Behaviour::Deployment, _) => {
            let [containers, images, selector] = workload_extras(object);
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    int(object, "/status/readyReplicas"),
                    int(object, "/spec/replicas")
                )),
                json!(int(object, "/status/updatedReplicas")),
                json!(int(object, "/status/availableReplicas")),
                json!(age(object)),
                json!(containers),
                json!(images),
                json!(selector),
            ]
        }
        (Behaviour::ReplicaSet, _) => {
            let [containers, images, selector] = workload_extras(object);
            vec![
                name,
                json!(int(object, "/spec/replicas")),
                json!(int(object, "/status/replicas")),
                json!(int(object, "/status/readyReplicas")),
                json!(age(object)),
                json!(containers),
                json!(images),
                json!(selector),
            ]
        }
        (Behaviour::Namespace, _) => vec![
            name,
            json!(str_at(object, "/status/phase")),
            json!(age(object)),
        ],
        (_, "ServiceAccount") => vec![
            name,
            json!(
                object
                    .get("secrets")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len)
            ),
            json!(age(object)),
        ],
        (_, "ConfigMap") => vec![
            name,
            json!(
                object
                    .get("data")
                    .and_then(Value::as_object)
                    .map_or(0, |d| d.len())
            ),
            json!(age(object)),
        ],
        (_, "Role" | "ClusterRole") => vec![name, object["metadata"]["creationTimestamp"].clone()],
        (_, "RoleBinding" | "ClusterRoleBinding") => vec![
            name,
            json!(format!(
                "{}/{}",
                str_at(object, "/roleRef/kind"),
                str_at(object, "/roleRef/name")
            )),
            json!(age(object)),
        ],
        _ => vec![name, json!(age(object))],
    }
}

/// What each row carries besides its cells (`includeObject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IncludeObject {
    None,
    Metadata,
    Object,
}

impl IncludeObject {
    pub(crate) fn parse(s: Option<&str>) -> Self {
        match s {
            Some("None") => Self::None,
            Some("Object") => Self::Object,
            _ => Self::Metadata,
        }
    }
}

/// A `Table` of `objects` (full objects with kind and apiVersion).
pub(crate) fn table(
    rt: &ResourceType,
    objects: &[Value],
    resource_version: &str,
    include: IncludeObject,
) -> Value {
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let mut row = json!({"cells": cells(rt, o)});
            match include {
                IncludeObject::None => {}
                IncludeObject::Metadata => {
                    row["object"] = json!({
                        "kind": "PartialObjectMetadata",
                        "apiVersion": "meta.k8s.io/v1",
                        "metadata": o["metadata"],
                    });
                }
                IncludeObject::Object => row["object"] = o.clone(),
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": columns(rt),
        "rows": rows,
    })
}

//! Server-side printing: the `meta.k8s.io/v1` `Table` that `kubectl get`
//! asks for, with the columns the real server prints for each kind (e.g.
//! NAME, READY, UP-TO-DATE, AVAILABLE, AGE for Deployments).

use serde_json::{Value, json};

use super::meta::{self, LabelSelector, age_seconds, int_at, str_at};
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
        (Behaviour::Pod, _) => {
            cols.push(column(
                "Ready",
                "string",
                "",
                0,
                "The aggregate readiness state of this pod for accepting traffic.",
            ));
            cols.push(column(
                "Status",
                "string",
                "",
                0,
                "The aggregate status of the containers in this pod.",
            ));
            cols.push(column("Restarts", "string", "", 0, "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."));
            cols.push(age_column());
            cols.push(column("IP", "string", "", 1, "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated."));
            cols.push(column("Node", "string", "", 1, "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate for scheduling by the scheduler defined in schedulerName. Once this field is set, the kubelet for this node becomes responsible for the lifecycle of this pod. This field should not be used to express a desire for the pod to be scheduled on a specific node. https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename"));
            cols.push(column("Nominated Node", "string", "", 1, "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods. This field does not guarantee that the pod will be scheduled on this node. Scheduler may decide to place the pod elsewhere if other nodes become available sooner. Scheduler may also decide to give the resources on this node to a higher priority pod that is created after preemption. As a result, this field may be different than PodSpec.nodeName when the pod is scheduled."));
            cols.push(column("Readiness Gates", "string", "", 1, "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its containers are ready AND all conditions specified in the readiness gates have status equal to \"True\" More info: https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates"));
        }
        (_, "Event") => {
            cols = vec![
                column(
                    "Last Seen",
                    "string",
                    "",
                    0,
                    "The time at which the most recent occurrence of this event was recorded.",
                ),
                column(
                    "Type",
                    "string",
                    "",
                    0,
                    "Type of this event (Normal, Warning), new types could be added in the future",
                ),
                column(
                    "Reason",
                    "string",
                    "",
                    0,
                    "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
                ),
                column(
                    "Object",
                    "string",
                    "",
                    0,
                    "The object that this event is about.",
                ),
                column(
                    "Subobject",
                    "string",
                    "",
                    1,
                    "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2]. For example, if the object reference is to a container within a pod, this would take on a value like: \"spec.containers{name}\" (where \"name\" refers to the name of the container that triggered the event) or if no container name is specified \"spec.containers[2]\" (container with index 2 in this pod). This syntax is chosen only to have some well-defined way of referencing a part of an object.",
                ),
                column(
                    "Source",
                    "string",
                    "",
                    1,
                    "The component reporting this event. Should be a short machine understandable string.",
                ),
                column(
                    "Message",
                    "string",
                    "",
                    0,
                    "A human-readable description of the status of this operation.",
                ),
                column(
                    "First Seen",
                    "string",
                    "",
                    1,
                    "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)",
                ),
                column(
                    "Count",
                    "string",
                    "",
                    1,
                    "The number of times this event has occurred.",
                ),
                {
                    let mut name = name_column();
                    name["priority"] = json!(1);
                    name
                },
            ];
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
                    int_at(object, "/status/readyReplicas"),
                    int_at(object, "/spec/replicas")
                )),
                json!(int_at(object, "/status/updatedReplicas")),
                json!(int_at(object, "/status/availableReplicas")),
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
                json!(int_at(object, "/spec/replicas")),
                json!(int_at(object, "/status/replicas")),
                json!(int_at(object, "/status/readyReplicas")),
                json!(age(object)),
                json!(containers),
                json!(images),
                json!(selector),
            ]
        }
        (Behaviour::Pod, _) => pod_cells(name, object),
        (_, "Event") => event_cells(object),
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

/// A Pod's row as the server's printer makes it: READY counts ready
/// running containers; STATUS is the phase unless a container waits or
/// ended with a reason.
fn pod_cells(name: Value, pod: &Value) -> Vec<Value> {
    let total = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let statuses = pod
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut reason = match str_at(pod, "/status/reason") {
        "" => str_at(pod, "/status/phase").to_owned(),
        r => r.to_owned(),
    };
    let mut ready = 0;
    let mut restarts = 0;
    // The printer walks the containers last to first, so the first
    // container's reason is the one shown.
    for c in statuses.iter().rev() {
        restarts += int_at(c, "/restartCount");
        let waiting = str_at(c, "/state/waiting/reason");
        let terminated = str_at(c, "/state/terminated/reason");
        if !waiting.is_empty() {
            reason = waiting.to_owned();
        } else if !terminated.is_empty() {
            reason = terminated.to_owned();
        } else if c["ready"] == true && c["state"]["running"].is_object() {
            ready += 1;
        }
    }
    if pod["metadata"]["deletionTimestamp"].is_string() {
        reason = "Terminating".to_owned();
    }
    let or_none = |s: &str| {
        if s.is_empty() {
            "<none>".to_owned()
        } else {
            s.to_owned()
        }
    };
    vec![
        name,
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts.to_string()),
        json!(age(pod)),
        json!(or_none(str_at(pod, "/status/podIPs/0/ip"))),
        json!(or_none(str_at(pod, "/spec/nodeName"))),
        json!(or_none(str_at(pod, "/status/nominatedNodeName"))),
        json!("<none>"),
    ]
}

/// An Event's row: when it was last seen, what about, and from whom.
fn event_cells(event: &Value) -> Vec<Value> {
    let since = |field: &str| meta::human_duration(age_seconds(str_at(event, field)));
    let first = since("/firstTimestamp");
    let last = if str_at(event, "/lastTimestamp").is_empty() {
        first.clone()
    } else {
        since("/lastTimestamp")
    };
    let kind = str_at(event, "/involvedObject/kind").to_lowercase();
    let target = match str_at(event, "/involvedObject/name") {
        "" => kind,
        name => format!("{kind}/{name}"),
    };
    let component = match str_at(event, "/source/component") {
        "" => str_at(event, "/reportingComponent"),
        c => c,
    };
    let instance = match str_at(event, "/source/host") {
        "" => str_at(event, "/reportingInstance"),
        h => h,
    };
    let source = if instance.is_empty() {
        component.to_owned()
    } else {
        format!("{component}, {instance}")
    };
    vec![
        json!(last),
        json!(str_at(event, "/type")),
        json!(str_at(event, "/reason")),
        json!(target),
        json!(str_at(event, "/involvedObject/fieldPath")),
        json!(source),
        json!(str_at(event, "/message").trim()),
        json!(first),
        json!(int_at(event, "/count").max(1)),
        json!(str_at(event, "/metadata/name")),
    ]
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

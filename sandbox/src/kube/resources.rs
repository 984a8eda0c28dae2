//! The resource types the sandbox serves, described once: discovery, URL
//! routing, error wording, RBAC and tables all read this table, so adding a
//! kind is one entry here.

use serde_json::{Value, json};

/// Verbs of a full resource.
const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// Verbs of namespaces: no `deletecollection`, which would empty the
/// cluster.
const NAMESPACE_VERBS: &[&str] = &[
    "create", "delete", "get", "list", "patch", "update", "watch",
];

/// Verbs of a review, which is only ever created.
const REVIEW_VERBS: &[&str] = &["create"];

/// Verbs of the `status` and `scale` subresources.
const SUB_VERBS: &[&str] = &["get", "patch", "update"];

/// What is special about a kind beyond generic storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Behaviour {
    /// Stored as given (after metadata handling).
    Plain,
    /// Defaults, validation, generation, status, `/scale`, the controller.
    Deployment,
    /// Generation and status; written by the simulated controller.
    ReplicaSet,
    /// Status kept apart from spec; made and removed by the simulated
    /// ReplicaSet controller.
    Pod,
    /// Cluster-scoped; its name is a DNS label; `default` always exists.
    Namespace,
    /// Create-only and never stored: the answer is computed from the
    /// request (`SelfSubjectAccessReview` and its kin, in `review.rs`).
    Review,
}

/// A subresource offered in discovery.
#[derive(Debug)]
pub(crate) struct Subresource {
    pub(crate) name: &'static str,
    /// The group/version/kind of the subresource's own object (the scale
    /// subresource speaks `autoscaling/v1` `Scale`).
    pub(crate) group: &'static str,
    pub(crate) version: &'static str,
    pub(crate) kind: &'static str,
}

/// One served resource type.
#[derive(Debug)]
pub(crate) struct ResourceType {
    pub(crate) group: &'static str,
    pub(crate) version: &'static str,
    pub(crate) kind: &'static str,
    pub(crate) plural: &'static str,
    pub(crate) singular: &'static str,
    pub(crate) namespaced: bool,
    pub(crate) short_names: &'static [&'static str],
    pub(crate) categories: &'static [&'static str],
    pub(crate) subresources: &'static [Subresource],
    pub(crate) behaviour: Behaviour,
    /// Fields a `fieldSelector` may name besides `metadata.name` and
    /// `metadata.namespace`, with where they are in the object.
    pub(crate) field_labels: &'static [(&'static str, &'static str)],
}

impl ResourceType {
    /// `deployments.apps`, or `namespaces` for the core group.
    pub(crate) fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_owned()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `apps/v1`, or `v1` for the core group.
    pub(crate) fn api_version(&self) -> String {
        group_version(self.group, self.version)
    }

    /// `details` of a `Status` about one object of this type.
    pub(crate) fn details(&self, name: &str) -> Value {
        let mut d = json!({"name": name, "kind": self.plural});
        if !self.group.is_empty() {
            d["group"] = json!(self.group);
        }
        d
    }

    /// The verbs discovery lists for the type.
    pub(crate) fn verbs(&self) -> &'static [&'static str] {
        match self.behaviour {
            Behaviour::Review => REVIEW_VERBS,
            Behaviour::Namespace => NAMESPACE_VERBS,
            _ => ALL_VERBS,
        }
    }

    /// Where a `fieldSelector` field is in objects of this type.
    pub(crate) fn field_pointer(&self, label: &str) -> Option<&'static str> {
        match label {
            "metadata.name" => Some("/metadata/name"),
            "metadata.namespace" => Some("/metadata/namespace"),
            _ => self
                .field_labels
                .iter()
                .find(|(l, _)| *l == label)
                .map(|(_, p)| *p),
        }
    }

    pub(crate) fn has_subresource(&self, name: &str) -> bool {
        self.subresources.iter().any(|s| s.name == name)
    }

    /// The entry of an `APIResourceList`, plus one per subresource.
    pub(crate) fn discovery(&self) -> Vec<Value> {
        let mut entries = vec![json!({
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": self.verbs(),
            "shortNames": self.short_names,
            "categories": self.categories,
        })];
        for sub in self.subresources {
            let mut entry = json!({
                "name": format!("{}/{}", self.plural, sub.name),
                "singularName": "",
                "namespaced": self.namespaced,
                "kind": sub.kind,
                "verbs": SUB_VERBS,
            });
            if sub.group != self.group || sub.version != self.version {
                entry["group"] = json!(sub.group);
                entry["version"] = json!(sub.version);
            }
            entries.push(entry);
        }
        entries
    }
}

pub(crate) fn group_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    }
}

const STATUS: Subresource = Subresource {
    name: "status",
    group: "",
    version: "",
    kind: "",
};

static DEPLOYMENT_SUBS: [Subresource; 2] = [
    Subresource {
        name: "scale",
        group: "autoscaling",
        version: "v1",
        kind: "Scale",
    },
    Subresource {
        name: "status",
        group: "apps",
        version: "v1",
        kind: "Deployment",
    },
];

static REPLICASET_SUBS: [Subresource; 2] = [
    Subresource {
        name: "scale",
        group: "autoscaling",
        version: "v1",
        kind: "Scale",
    },
    Subresource {
        name: "status",
        group: "apps",
        version: "v1",
        kind: "ReplicaSet",
    },
];

static NAMESPACE_SUBS: [Subresource; 1] = [Subresource {
    kind: "Namespace",
    version: "v1",
    ..STATUS
}];

pub(crate) static NAMESPACE: ResourceType = ResourceType {
    group: "",
    version: "v1",
    kind: "Namespace",
    plural: "namespaces",
    singular: "namespace",
    namespaced: false,
    short_names: &["ns"],
    categories: &[],
    subresources: &NAMESPACE_SUBS,
    behaviour: Behaviour::Namespace,
    field_labels: &[("status.phase", "/status/phase")],
};

pub(crate) static SERVICE_ACCOUNT: ResourceType = ResourceType {
    group: "",
    version: "v1",
    kind: "ServiceAccount",
    plural: "serviceaccounts",
    singular: "serviceaccount",
    namespaced: true,
    short_names: &["sa"],
    categories: &[],
    subresources: &[],
    behaviour: Behaviour::Plain,
    field_labels: &[],
};

pub(crate) static CONFIG_MAP: ResourceType = ResourceType {
    group: "",
    version: "v1",
    kind: "ConfigMap",
    plural: "configmaps",
    singular: "configmap",
    namespaced: true,
    short_names: &["cm"],
    categories: &[],
    subresources: &[],
    behaviour: Behaviour::Plain,
    field_labels: &[],
};

static POD_SUBS: [Subresource; 1] = [Subresource {
    kind: "Pod",
    version: "v1",
    ..STATUS
}];

pub(crate) static POD: ResourceType = ResourceType {
    group: "",
    version: "v1",
    kind: "Pod",
    plural: "pods",
    singular: "pod",
    namespaced: true,
    short_names: &["po"],
    categories: &["all"],
    subresources: &POD_SUBS,
    behaviour: Behaviour::Pod,
    field_labels: &[
        ("spec.nodeName", "/spec/nodeName"),
        ("spec.restartPolicy", "/spec/restartPolicy"),
        ("spec.schedulerName", "/spec/schedulerName"),
        ("spec.serviceAccountName", "/spec/serviceAccountName"),
        ("status.phase", "/status/phase"),
        ("status.podIP", "/status/podIP"),
        ("status.nominatedNodeName", "/status/nominatedNodeName"),
    ],
};

/// core/v1 Events, what `kubectl describe` and `kubectl get events` read.
/// (events.k8s.io/v1 is not served: kubectl 1.32 reads core/v1 for both.)
pub(crate) static EVENT: ResourceType = ResourceType {
    group: "",
    version: "v1",
    kind: "Event",
    plural: "events",
    singular: "event",
    namespaced: true,
    short_names: &["ev"],
    categories: &[],
    subresources: &[],
    behaviour: Behaviour::Plain,
    field_labels: &[
        ("involvedObject.kind", "/involvedObject/kind"),
        ("involvedObject.namespace", "/involvedObject/namespace"),
        ("involvedObject.name", "/involvedObject/name"),
        ("involvedObject.uid", "/involvedObject/uid"),
        ("involvedObject.apiVersion", "/involvedObject/apiVersion"),
        (
            "involvedObject.resourceVersion",
            "/involvedObject/resourceVersion",
        ),
        ("involvedObject.fieldPath", "/involvedObject/fieldPath"),
        ("reason", "/reason"),
        ("reportingComponent", "/reportingComponent"),
        ("source", "/source/component"),
        ("type", "/type"),
    ],
};

pub(crate) static DEPLOYMENT: ResourceType = ResourceType {
    group: "apps",
    version: "v1",
    kind: "Deployment",
    plural: "deployments",
    singular: "deployment",
    namespaced: true,
    short_names: &["deploy"],
    categories: &["all"],
    subresources: &DEPLOYMENT_SUBS,
    behaviour: Behaviour::Deployment,
    field_labels: &[],
};

pub(crate) static REPLICA_SET: ResourceType = ResourceType {
    group: "apps",
    version: "v1",
    kind: "ReplicaSet",
    plural: "replicasets",
    singular: "replicaset",
    namespaced: true,
    short_names: &["rs"],
    categories: &["all"],
    subresources: &REPLICASET_SUBS,
    behaviour: Behaviour::ReplicaSet,
    field_labels: &[("status.replicas", "/status/replicas")],
};

pub(crate) static CLUSTER_ROLE: ResourceType = ResourceType {
    group: "rbac.authorization.k8s.io",
    version: "v1",
    kind: "ClusterRole",
    plural: "clusterroles",
    singular: "clusterrole",
    namespaced: false,
    short_names: &[],
    categories: &[],
    subresources: &[],
    behaviour: Behaviour::Plain,
    field_labels: &[],
};

pub(crate) static CLUSTER_ROLE_BINDING: ResourceType = ResourceType {
    group: "rbac.authorization.k8s.io",
    version: "v1",
    kind: "ClusterRoleBinding",
    plural: "clusterrolebindings",
    singular: "clusterrolebinding",
    namespaced: false,
    short_names: &[],
    categories: &[],
    subresources: &[],
    behaviour: Behaviour::Plain,
    field_labels: &[],
};

pub(crate) static ROLE: ResourceType = ResourceType {
    group: "rbac.authorization.k8s.io",
    version: "v1",
    kind: "Role",
    plural: "roles",
    singular: "role",
    namespaced: true,
    short_names: &[],
    categories: &[],
    subresources: &[],
    behaviour: Behaviour::Plain,
    field_labels: &[],
};

pub(crate) static ROLE_BINDING: ResourceType = ResourceType {
    group: "rbac.authorization.k8s.io",
    version: "v1",
    kind: "RoleBinding",
    plural: "rolebindings",
    singular: "rolebinding",
    namespaced: true,
    short_names: &[],
    categories: &[],
    subresources: &[],
    behaviour: Behaviour::Plain,
    field_labels: &[],
};

pub(crate) static SELF_SUBJECT_ACCESS_REVIEW: ResourceType = ResourceType {
    group: "authorization.k8s.io",
    version: "v1",
    kind: "SelfSubjectAccessReview",
    plural: "selfsubjectaccessreviews",
    singular: "selfsubjectaccessreview",
    namespaced: false,
    short_names: &[],
    categories: &[],
    subresources: &[],
    field_labels: &[],
    behaviour: Behaviour::Review,
};

pub(crate) static SELF_SUBJECT_RULES_REVIEW: ResourceType = ResourceType {
    group: "authorization.k8s.io",
    version: "v1",
    kind: "SelfSubjectRulesReview",
    plural: "selfsubjectrulesreviews",
    singular: "selfsubjectrulesreview",
    namespaced: false,
    short_names: &[],
    categories: &[],
    subresources: &[],
    field_labels: &[],
    behaviour: Behaviour::Review,
};

pub(crate) static SELF_SUBJECT_REVIEW: ResourceType = ResourceType {
    group: "authentication.k8s.io",
    version: "v1",
    kind: "SelfSubjectReview",
    plural: "selfsubjectreviews",
    singular: "selfsubjectreview",
    namespaced: false,
    short_names: &[],
    categories: &[],
    subresources: &[],
    field_labels: &[],
    behaviour: Behaviour::Review,
};

/// Every served type. Order is discovery order.
pub(crate) static TYPES: [&ResourceType; 14] = [
    &NAMESPACE,
    &SERVICE_ACCOUNT,
    &CONFIG_MAP,
    &POD,
    &EVENT,
    &DEPLOYMENT,
    &REPLICA_SET,
    &CLUSTER_ROLE,
    &CLUSTER_ROLE_BINDING,
    &ROLE,
    &ROLE_BINDING,
    &SELF_SUBJECT_ACCESS_REVIEW,
    &SELF_SUBJECT_RULES_REVIEW,
    &SELF_SUBJECT_REVIEW,
];

/// The served group/versions other than the core `v1`, in discovery order.
pub(crate) fn groups() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&'static str, &'static str)> = Vec::new();
    for t in TYPES.iter().filter(|t| !t.group.is_empty()) {
        if !out.contains(&(t.group, t.version)) {
            out.push((t.group, t.version));
        }
    }
    out
}

/// The type served at `group/version/plural`.
pub(crate) fn by_plural(group: &str, version: &str, plural: &str) -> Option<&'static ResourceType> {
    TYPES
        .iter()
        .copied()
        .find(|t| t.group == group && t.version == version && t.plural == plural)
}

/// The type of a manifest's `apiVersion` and `kind`.
pub(crate) fn by_kind(api_version: &str, kind: &str) -> Option<&'static ResourceType> {
    TYPES
        .iter()
        .copied()
        .find(|t| t.api_version() == api_version && t.kind == kind)
}

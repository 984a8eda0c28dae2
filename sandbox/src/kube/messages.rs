//! The protobuf schemas of the kinds the sandbox decodes (field number to
//! JSON name and type): the numbers of k8s.io/api's `generated.proto` (as
//! the k8s-pb crate's generated code carries them), checked against the
//! bodies kubectl 1.32 sends (see the unit tests of `protobuf.rs` and the
//! kubectl tests).
//!
//! A message lists the fields kubectl's `create` generators, `auth
//! reconcile` and `auth can-i|whoami` send, and the common Deployment,
//! PodSpec and Container fields. Anything else (affinity, most volume
//! sources, ...) is refused with 415 by the decoder, never dropped: add its
//! field here when a client needs it.
//!
//! `Card` carries what the Go types say about empty values: the Go
//! marshaller writes every non-pointer scalar, so `Omit` drops a zero value
//! as Go's `omitempty` would, while `Keep` is for pointer fields (where a
//! zero was meant: `replicas: 0`) and fields without `omitempty`.

/// How a field's values become JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Card {
    /// A non-pointer `omitempty` field: zero means unset.
    Omit,
    /// A pointer, or a field without `omitempty`: kept as sent.
    Keep,
    /// A list.
    Repeated,
}

/// A field's type.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Type {
    String,
    Bool,
    Int32,
    Int64,
    /// Base64 in JSON.
    Bytes,
    Message(&'static Message),
    /// A Go embedded struct: a message on the wire, its fields inlined into
    /// the parent in JSON.
    Inline(&'static Message),
    /// `metav1.Time`: RFC 3339, `null` when zero.
    Time,
    /// `resource.Quantity`: its string.
    Quantity,
    /// `intstr.IntOrString`: a number or a string.
    IntOrString,
    /// `map<string, V>`: repeated {1: key, 2: value} entries.
    Map(&'static Type),
}

/// One field of a message.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field {
    pub(crate) number: u32,
    pub(crate) json: &'static str,
    pub(crate) ty: Type,
    pub(crate) card: Card,
}

/// A message: its Go name (for error messages) and its fields.
#[derive(Debug)]
pub(crate) struct Message {
    pub(crate) name: &'static str,
    pub(crate) fields: &'static [Field],
}

const fn opt(number: u32, json: &'static str, ty: Type) -> Field {
    Field {
        number,
        json,
        ty,
        card: Card::Omit,
    }
}

const fn keep(number: u32, json: &'static str, ty: Type) -> Field {
    Field {
        number,
        json,
        ty,
        card: Card::Keep,
    }
}

const fn rep(number: u32, json: &'static str, ty: Type) -> Field {
    Field {
        number,
        json,
        ty,
        card: Card::Repeated,
    }
}

const fn msg(m: &'static Message) -> Type {
    Type::Message(m)
}

use Type::{Bool, Int32, Int64, IntOrString, Quantity, String as Str, Time};

const STRING_MAP: Type = Type::Map(&Type::String);
const QUANTITY_MAP: Type = Type::Map(&Type::Quantity);

// ---------------------------------------------------------------- meta/v1

static OBJECT_META: Message = Message {
    name: "ObjectMeta",
    fields: &[
        opt(1, "name", Str),
        opt(2, "generateName", Str),
        opt(3, "namespace", Str),
        opt(4, "selfLink", Str),
        opt(5, "uid", Str),
        opt(6, "resourceVersion", Str),
        opt(7, "generation", Int64),
        keep(8, "creationTimestamp", Time),
        keep(9, "deletionTimestamp", Time),
        keep(10, "deletionGracePeriodSeconds", Int64),
        opt(11, "labels", STRING_MAP),
        opt(12, "annotations", STRING_MAP),
        rep(13, "ownerReferences", msg(&OWNER_REFERENCE)),
        rep(14, "finalizers", Str),
    ],
};

static OWNER_REFERENCE: Message = Message {
    name: "OwnerReference",
    fields: &[
        keep(5, "apiVersion", Str),
        keep(1, "kind", Str),
        keep(3, "name", Str),
        keep(4, "uid", Str),
        keep(6, "controller", Bool),
        keep(7, "blockOwnerDeletion", Bool),
    ],
};

static LABEL_SELECTOR: Message = Message {
    name: "LabelSelector",
    fields: &[
        opt(1, "matchLabels", STRING_MAP),
        rep(2, "matchExpressions", msg(&SELECTOR_REQUIREMENT)),
    ],
};

/// `LabelSelectorRequirement` and `FieldSelectorRequirement` alike.
static SELECTOR_REQUIREMENT: Message = Message {
    name: "SelectorRequirement",
    fields: &[
        keep(1, "key", Str),
        keep(2, "operator", Str),
        rep(3, "values", Str),
    ],
};

// ---------------------------------------------------------------- core/v1

static NAMESPACE: Message = Message {
    name: "Namespace",
    fields: &[
        opt(1, "metadata", msg(&OBJECT_META)),
        opt(2, "spec", msg(&NAMESPACE_SPEC)),
        opt(3, "status", msg(&NAMESPACE_STATUS)),
    ],
};

static NAMESPACE_SPEC: Message = Message {
    name: "NamespaceSpec",
    fields: &[rep(1, "finalizers", Str)],
};

static NAMESPACE_STATUS: Message = Message {
    name: "NamespaceStatus",
    fields: &[opt(1, "phase", Str)],
};

static CONFIG_MAP: Message = Message {
    name: "ConfigMap",
    fields: &[
        opt(1, "metadata", msg(&OBJECT_META)),
        keep(4, "immutable", Bool),
        opt(2, "data", STRING_MAP),
        opt(3, "binaryData", Type::Map(&Type::Bytes)),
    ],
};

static SERVICE_ACCOUNT: Message = Message {
    name: "ServiceAccount",
    fields: &[
        opt(1, "metadata", msg(&OBJECT_META)),
        rep(2, "secrets", msg(&OBJECT_REFERENCE)),
        rep(3, "imagePullSecrets", msg(&LOCAL_OBJECT_REFERENCE)),
        keep(4, "automountServiceAccountToken", Bool),
    ],
};

static OBJECT_REFERENCE: Message = Message {
    name: "ObjectReference",
    fields: &[
        opt(1, "kind", Str),
        opt(2, "namespace", Str),
        opt(3, "name", Str),
        opt(4, "uid", Str),
        opt(5, "apiVersion", Str),
        opt(6, "resourceVersion", Str),
        opt(7, "fieldPath", Str),
    ],
};

static LOCAL_OBJECT_REFERENCE: Message = Message {
    name: "LocalObjectReference",
    fields: &[opt(1, "name", Str)],
};

static POD_TEMPLATE_SPEC: Message = Message {
    name: "PodTemplateSpec",
    fields: &[
        opt(1, "metadata", msg(&OBJECT_META)),
        opt(2, "spec", msg(&POD_SPEC)),
    ],
};

static POD_SPEC: Message = Message {
    name: "PodSpec",
    fields: &[
        rep(1, "volumes", msg(&VOLUME)),
        rep(20, "initContainers", msg(&CONTAINER)),
        rep(2, "containers", msg(&CONTAINER)),
        opt(3, "restartPolicy", Str),
        keep(4, "terminationGracePeriodSeconds", Int64),
        keep(5, "activeDeadlineSeconds", Int64),
        opt(6, "dnsPolicy", Str),
        opt(7, "nodeSelector", STRING_MAP),
        opt(8, "serviceAccountName", Str),
        opt(9, "serviceAccount", Str),
        keep(21, "automountServiceAccountToken", Bool),
        opt(10, "nodeName", Str),
        opt(11, "hostNetwork", Bool),
        opt(12, "hostPID", Bool),
        opt(13, "hostIPC", Bool),
        keep(27, "shareProcessNamespace", Bool),
        opt(14, "securityContext", msg(&POD_SECURITY_CONTEXT)),
        rep(15, "imagePullSecrets", msg(&LOCAL_OBJECT_REFERENCE)),
        opt(16, "hostname", Str),
        opt(17, "subdomain", Str),
        opt(19, "schedulerName", Str),
        rep(22, "tolerations", msg(&TOLERATION)),
        opt(24, "priorityClassName", Str),
        keep(25, "priority", Int32),
        keep(29, "runtimeClassName", Str),
        keep(30, "enableServiceLinks", Bool),
        keep(31, "preemptionPolicy", Str),
        opt(32, "overhead", QUANTITY_MAP),
        keep(35, "setHostnameAsFQDN", Bool),
        keep(37, "hostUsers", Bool),
    ],
};

static CONTAINER: Message = Message {
    name: "Container",
    fields: &[
        keep(1, "name", Str),
        opt(2, "image", Str),
        rep(3, "command", Str),
        rep(4, "args", Str),
        opt(5, "workingDir", Str),
        rep(6, "ports", msg(&CONTAINER_PORT)),
        rep(19, "envFrom", msg(&ENV_FROM_SOURCE)),
        rep(7, "env", msg(&ENV_VAR)),
        opt(8, "resources", msg(&RESOURCE_REQUIREMENTS)),
        keep(24, "restartPolicy", Str),
        rep(9, "volumeMounts", msg(&VOLUME_MOUNT)),
        opt(10, "livenessProbe", msg(&PROBE)),
        opt(11, "readinessProbe", msg(&PROBE)),
        opt(22, "startupProbe", msg(&PROBE)),
        opt(12, "lifecycle", msg(&LIFECYCLE)),
        opt(13, "terminationMessagePath", Str),
        opt(20, "terminationMessagePolicy", Str),
        opt(14, "imagePullPolicy", Str),
        opt(15, "securityContext", msg(&SECURITY_CONTEXT)),
        opt(16, "stdin", Bool),
        opt(17, "stdinOnce", Bool),
        opt(18, "tty", Bool),
    ],
};

static CONTAINER_PORT: Message = Message {
    name: "ContainerPort",
    fields: &[
        opt(1, "name", Str),
        opt(2, "hostPort", Int32),
        keep(3, "containerPort", Int32),
        opt(4, "protocol", Str),
        opt(5, "hostIP", Str),
    ],
};

static ENV_VAR: Message = Message {
    name: "EnvVar",
    fields: &[
        keep(1, "name", Str),
        opt(2, "value", Str),
        opt(3, "valueFrom", msg(&ENV_VAR_SOURCE)),
    ],
};

static ENV_VAR_SOURCE: Message = Message {
    name: "EnvVarSource",
    fields: &[
        opt(1, "fieldRef", msg(&OBJECT_FIELD_SELECTOR)),
        opt(2, "resourceFieldRef", msg(&RESOURCE_FIELD_SELECTOR)),
        opt(3, "configMapKeyRef", msg(&KEY_SELECTOR)),
        opt(4, "secretKeyRef", msg(&KEY_SELECTOR)),
    ],
};

static OBJECT_FIELD_SELECTOR: Message = Message {
    name: "ObjectFieldSelector",
    fields: &[opt(1, "apiVersion", Str), keep(2, "fieldPath", Str)],
};

static RESOURCE_FIELD_SELECTOR: Message = Message {
    name: "ResourceFieldSelector",
    fields: &[
        opt(1, "containerName", Str),
        keep(2, "resource", Str),
        opt(3, "divisor", Quantity),
    ],
};

/// `ConfigMapKeySelector` and `SecretKeySelector` alike.
static KEY_SELECTOR: Message = Message {
    name: "KeySelector",
    fields: &[
        opt(
            1,
            "localObjectReference",
            Type::Inline(&LOCAL_OBJECT_REFERENCE),
        ),
        keep(2, "key", Str),
        keep(3, "optional", Bool),
    ],
};

static ENV_FROM_SOURCE: Message = Message {
    name: "EnvFromSource",
    fields: &[
        opt(1, "prefix", Str),
        opt(2, "configMapRef", msg(&ENV_SOURCE)),
        opt(3, "secretRef", msg(&ENV_SOURCE)),
    ],
};

/// `ConfigMapEnvSource` and `SecretEnvSource` alike.
static ENV_SOURCE: Message = Message {
    name: "EnvSource",
    fields: &[
        opt(
            1,
            "localObjectReference",
            Type::Inline(&LOCAL_OBJECT_REFERENCE),
        ),
        keep(2, "optional", Bool),
    ],
};

static RESOURCE_REQUIREMENTS: Message = Message {
    name: "ResourceRequirements",
    fields: &[
        opt(1, "limits", QUANTITY_MAP),
        opt(2, "requests", QUANTITY_MAP),
        rep(3, "claims", msg(&RESOURCE_CLAIM)),
    ],
};

static RESOURCE_CLAIM: Message = Message {
    name: "ResourceClaim",
    fields: &[keep(1, "name", Str), opt(2, "request", Str)],
};

static VOLUME_MOUNT: Message = Message {
    name: "VolumeMount",
    fields: &[
        keep(1, "name", Str),
        opt(2, "readOnly", Bool),
        keep(7, "recursiveReadOnly", Str),
        keep(3, "mountPath", Str),
        opt(4, "subPath", Str),
        keep(5, "mountPropagation", Str),
        opt(6, "subPathExpr", Str),
    ],
};

static VOLUME: Message = Message {
    name: "Volume",
    fields: &[
        keep(1, "name", Str),
        opt(2, "volumeSource", Type::Inline(&VOLUME_SOURCE)),
    ],
};

static VOLUME_SOURCE: Message = Message {
    name: "VolumeSource",
    fields: &[
        opt(1, "hostPath", msg(&HOST_PATH)),
        opt(2, "emptyDir", msg(&EMPTY_DIR)),
        opt(6, "secret", msg(&SECRET_VOLUME)),
        opt(10, "persistentVolumeClaim", msg(&PVC_VOLUME)),
        opt(19, "configMap", msg(&CONFIG_MAP_VOLUME)),
    ],
};

static HOST_PATH: Message = Message {
    name: "HostPathVolumeSource",
    fields: &[keep(1, "path", Str), keep(2, "type", Str)],
};

static EMPTY_DIR: Message = Message {
    name: "EmptyDirVolumeSource",
    fields: &[opt(1, "medium", Str), keep(2, "sizeLimit", Quantity)],
};

static SECRET_VOLUME: Message = Message {
    name: "SecretVolumeSource",
    fields: &[
        opt(1, "secretName", Str),
        rep(2, "items", msg(&KEY_TO_PATH)),
        keep(3, "defaultMode", Int32),
        keep(4, "optional", Bool),
    ],
};

static PVC_VOLUME: Message = Message {
    name: "PersistentVolumeClaimVolumeSource",
    fields: &[keep(1, "claimName", Str), opt(2, "readOnly", Bool)],
};

static CONFIG_MAP_VOLUME: Message = Message {
    name: "ConfigMapVolumeSource",
    fields: &[
        opt(
            1,
            "localObjectReference",
            Type::Inline(&LOCAL_OBJECT_REFERENCE),
        ),
        rep(2, "items", msg(&KEY_TO_PATH)),
        keep(3, "defaultMode", Int32),
        keep(4, "optional", Bool),
    ],
};

static KEY_TO_PATH: Message = Message {
    name: "KeyToPath",
    fields: &[
        keep(1, "key", Str),
        keep(2, "path", Str),
        keep(3, "mode", Int32),
    ],
};

static PROBE: Message = Message {
    name: "Probe",
    fields: &[
        opt(1, "handler", Type::Inline(&PROBE_HANDLER)),
        opt(2, "initialDelaySeconds", Int32),
        opt(3, "timeoutSeconds", Int32),
        opt(4, "periodSeconds", Int32),
        opt(5, "successThreshold", Int32),
        opt(6, "failureThreshold", Int32),
        keep(7, "terminationGracePeriodSeconds", Int64),
    ],
};

static PROBE_HANDLER: Message = Message {
    name: "ProbeHandler",
    fields: &[
        opt(1, "exec", msg(&EXEC_ACTION)),
        opt(2, "httpGet", msg(&HTTP_GET_ACTION)),
        opt(3, "tcpSocket", msg(&TCP_SOCKET_ACTION)),
        opt(4, "grpc", msg(&GRPC_ACTION)),
    ],
};

static EXEC_ACTION: Message = Message {
    name: "ExecAction",
    fields: &[rep(1, "command", Str)],
};

static HTTP_GET_ACTION: Message = Message {
    name: "HTTPGetAction",
    fields: &[
        opt(1, "path", Str),
        keep(2, "port", IntOrString),
        opt(3, "host", Str),
        opt(4, "scheme", Str),
        rep(5, "httpHeaders", msg(&HTTP_HEADER)),
    ],
};

static HTTP_HEADER: Message = Message {
    name: "HTTPHeader",
    fields: &[keep(1, "name", Str), keep(2, "value", Str)],
};

static TCP_SOCKET_ACTION: Message = Message {
    name: "TCPSocketAction",
    fields: &[keep(1, "port", IntOrString), opt(2, "host", Str)],
};

static GRPC_ACTION: Message = Message {
    name: "GRPCAction",
    fields: &[keep(1, "port", Int32), keep(2, "service", Str)],
};

static LIFECYCLE: Message = Message {
    name: "Lifecycle",
    fields: &[
        opt(1, "postStart", msg(&LIFECYCLE_HANDLER)),
        opt(2, "preStop", msg(&LIFECYCLE_HANDLER)),
        keep(3, "stopSignal", Str),
    ],
};

static LIFECYCLE_HANDLER: Message = Message {
    name: "LifecycleHandler",
    fields: &[
        opt(1, "exec", msg(&EXEC_ACTION)),
        opt(2, "httpGet", msg(&HTTP_GET_ACTION)),
        opt(3, "tcpSocket", msg(&TCP_SOCKET_ACTION)),
        opt(4, "sleep", msg(&SLEEP_ACTION)),
    ],
};

static SLEEP_ACTION: Message = Message {
    name: "SleepAction",
    fields: &[keep(1, "seconds", Int64)],
};

static SECURITY_CONTEXT: Message = Message {
    name: "SecurityContext",
    fields: &[
        opt(1, "capabilities", msg(&CAPABILITIES)),
        keep(2, "privileged", Bool),
        keep(4, "runAsUser", Int64),
        keep(8, "runAsGroup", Int64),
        keep(5, "runAsNonRoot", Bool),
        keep(6, "readOnlyRootFilesystem", Bool),
        keep(7, "allowPrivilegeEscalation", Bool),
        keep(9, "procMount", Str),
        opt(11, "seccompProfile", msg(&SECCOMP_PROFILE)),
    ],
};

static POD_SECURITY_CONTEXT: Message = Message {
    name: "PodSecurityContext",
    fields: &[
        keep(2, "runAsUser", Int64),
        keep(6, "runAsGroup", Int64),
        keep(3, "runAsNonRoot", Bool),
        rep(4, "supplementalGroups", Int64),
        keep(5, "fsGroup", Int64),
        rep(7, "sysctls", msg(&SYSCTL)),
        keep(9, "fsGroupChangePolicy", Str),
        opt(10, "seccompProfile", msg(&SECCOMP_PROFILE)),
    ],
};

static CAPABILITIES: Message = Message {
    name: "Capabilities",
    fields: &[rep(1, "add", Str), rep(2, "drop", Str)],
};

static SECCOMP_PROFILE: Message = Message {
    name: "SeccompProfile",
    fields: &[keep(1, "type", Str), keep(2, "localhostProfile", Str)],
};

static SYSCTL: Message = Message {
    name: "Sysctl",
    fields: &[keep(1, "name", Str), keep(2, "value", Str)],
};

static TOLERATION: Message = Message {
    name: "Toleration",
    fields: &[
        opt(1, "key", Str),
        opt(2, "operator", Str),
        opt(3, "value", Str),
        opt(4, "effect", Str),
        keep(5, "tolerationSeconds", Int64),
    ],
};

// ---------------------------------------------------------------- apps/v1

static DEPLOYMENT: Message = Message {
    name: "Deployment",
    fields: &[
        opt(1, "metadata", msg(&OBJECT_META)),
        opt(2, "spec", msg(&DEPLOYMENT_SPEC)),
        opt(3, "status", msg(&DEPLOYMENT_STATUS)),
    ],
};

static DEPLOYMENT_SPEC: Message = Message {
    name: "DeploymentSpec",
    fields: &[
        keep(1, "replicas", Int32),
        opt(2, "selector", msg(&LABEL_SELECTOR)),
        opt(3, "template", msg(&POD_TEMPLATE_SPEC)),
        opt(4, "strategy", msg(&DEPLOYMENT_STRATEGY)),
        opt(5, "minReadySeconds", Int32),
        keep(6, "revisionHistoryLimit", Int32),
        opt(7, "paused", Bool),
        keep(9, "progressDeadlineSeconds", Int32),
    ],
};

static DEPLOYMENT_STRATEGY: Message = Message {
    name: "DeploymentStrategy",
    fields: &[
        opt(1, "type", Str),
        opt(2, "rollingUpdate", msg(&ROLLING_UPDATE)),
    ],
};

static ROLLING_UPDATE: Message = Message {
    name: "RollingUpdateDeployment",
    fields: &[
        keep(1, "maxUnavailable", IntOrString),
        keep(2, "maxSurge", IntOrString),
    ],
};

static DEPLOYMENT_STATUS: Message = Message {
    name: "DeploymentStatus",
    fields: &[
        opt(1, "observedGeneration", Int64),
        opt(2, "replicas", Int32),
        opt(3, "updatedReplicas", Int32),
        opt(7, "readyReplicas", Int32),
        opt(4, "availableReplicas", Int32),
        opt(5, "unavailableReplicas", Int32),
        keep(9, "terminatingReplicas", Int32),
        rep(6, "conditions", msg(&DEPLOYMENT_CONDITION)),
        keep(8, "collisionCount", Int32),
    ],
};

static DEPLOYMENT_CONDITION: Message = Message {
    name: "DeploymentCondition",
    fields: &[
        keep(1, "type", Str),
        keep(2, "status", Str),
        opt(6, "lastUpdateTime", Time),
        opt(7, "lastTransitionTime", Time),
        opt(4, "reason", Str),
        opt(5, "message", Str),
    ],
};

// ---------------------------------------------------------------- autoscaling/v1

static SCALE: Message = Message {
    name: "Scale",
    fields: &[
        opt(1, "metadata", msg(&OBJECT_META)),
        opt(2, "spec", msg(&SCALE_SPEC)),
        opt(3, "status", msg(&SCALE_STATUS)),
    ],
};

static SCALE_SPEC: Message = Message {
    name: "ScaleSpec",
    fields: &[opt(1, "replicas", Int32)],
};

static SCALE_STATUS: Message = Message {
    name: "ScaleStatus",
    fields: &[keep(1, "replicas", Int32), opt(2, "selector", Str)],
};

// ---------------------------------------------------------------- rbac/v1

static ROLE: Message = Message {
    name: "Role",
    fields: &[
        opt(1, "metadata", msg(&OBJECT_META)),
        rep(2, "rules", msg(&POLICY_RULE)),
    ],
};

static CLUSTER_ROLE: Message = Message {
    name: "ClusterRole",
    fields: &[
        opt(1, "metadata", msg(&OBJECT_META)),
        rep(2, "rules", msg(&POLICY_RULE)),
        opt(3, "aggregationRule", msg(&AGGREGATION_RULE)),
    ],
};

static POLICY_RULE: Message = Message {
    name: "PolicyRule",
    fields: &[
        rep(1, "verbs", Str),
        rep(2, "apiGroups", Str),
        rep(3, "resources", Str),
        rep(4, "resourceNames", Str),
        rep(5, "nonResourceURLs", Str),
    ],
};

static AGGREGATION_RULE: Message = Message {
    name: "AggregationRule",
    fields: &[rep(1, "clusterRoleSelectors", msg(&LABEL_SELECTOR))],
};

/// `RoleBinding` and `ClusterRoleBinding` alike.
static BINDING: Message = Message {
    name: "RoleBinding",
    fields: &[
        opt(1, "metadata", msg(&OBJECT_META)),
        rep(2, "subjects", msg(&SUBJECT)),
        opt(3, "roleRef", msg(&ROLE_REF)),
    ],
};

static SUBJECT: Message = Message {
    name: "Subject",
    fields: &[
        keep(1, "kind", Str),
        opt(2, "apiGroup", Str),
        keep(3, "name", Str),
        opt(4, "namespace", Str),
    ],
};

static ROLE_REF: Message = Message {
    name: "RoleRef",
    fields: &[
        keep(1, "apiGroup", Str),
        keep(2, "kind", Str),
        keep(3, "name", Str),
    ],
};

// ---------------------------------------------------------------- authorization/v1

static SELF_SUBJECT_ACCESS_REVIEW: Message = Message {
    name: "SelfSubjectAccessReview",
    fields: &[
        opt(1, "metadata", msg(&OBJECT_META)),
        opt(2, "spec", msg(&SSAR_SPEC)),
        opt(3, "status", msg(&ACCESS_REVIEW_STATUS)),
    ],
};

static SSAR_SPEC: Message = Message {
    name: "SelfSubjectAccessReviewSpec",
    fields: &[
        opt(1, "resourceAttributes", msg(&RESOURCE_ATTRIBUTES)),
        opt(2, "nonResourceAttributes", msg(&NON_RESOURCE_ATTRIBUTES)),
    ],
};

static RESOURCE_ATTRIBUTES: Message = Message {
    name: "ResourceAttributes",
    fields: &[
        opt(1, "namespace", Str),
        opt(2, "verb", Str),
        opt(3, "group", Str),
        opt(4, "version", Str),
        opt(5, "resource", Str),
        opt(6, "subresource", Str),
        opt(7, "name", Str),
        opt(8, "fieldSelector", msg(&SELECTOR_ATTRIBUTES)),
        opt(9, "labelSelector", msg(&SELECTOR_ATTRIBUTES)),
    ],
};

/// `FieldSelectorAttributes` and `LabelSelectorAttributes` alike.
static SELECTOR_ATTRIBUTES: Message = Message {
    name: "SelectorAttributes",
    fields: &[
        opt(1, "rawSelector", Str),
        rep(2, "requirements", msg(&SELECTOR_REQUIREMENT)),
    ],
};

static NON_RESOURCE_ATTRIBUTES: Message = Message {
    name: "NonResourceAttributes",
    fields: &[opt(1, "path", Str), opt(2, "verb", Str)],
};

static ACCESS_REVIEW_STATUS: Message = Message {
    name: "SubjectAccessReviewStatus",
    fields: &[
        keep(1, "allowed", Bool),
        opt(4, "denied", Bool),
        opt(2, "reason", Str),
        opt(3, "evaluationError", Str),
    ],
};

static SELF_SUBJECT_RULES_REVIEW: Message = Message {
    name: "SelfSubjectRulesReview",
    fields: &[
        opt(1, "metadata", msg(&OBJECT_META)),
        opt(2, "spec", msg(&SSRR_SPEC)),
        opt(3, "status", msg(&RULES_REVIEW_STATUS)),
    ],
};

static SSRR_SPEC: Message = Message {
    name: "SelfSubjectRulesReviewSpec",
    fields: &[opt(1, "namespace", Str)],
};

static RULES_REVIEW_STATUS: Message = Message {
    name: "SubjectRulesReviewStatus",
    fields: &[
        rep(1, "resourceRules", msg(&POLICY_RULE)),
        rep(2, "nonResourceRules", msg(&NON_RESOURCE_RULE)),
        keep(3, "incomplete", Bool),
        opt(4, "evaluationError", Str),
    ],
};

static NON_RESOURCE_RULE: Message = Message {
    name: "NonResourceRule",
    fields: &[rep(1, "verbs", Str), rep(2, "nonResourceURLs", Str)],
};

// ---------------------------------------------------------------- authentication/v1

static SELF_SUBJECT_REVIEW: Message = Message {
    name: "SelfSubjectReview",
    fields: &[
        opt(1, "metadata", msg(&OBJECT_META)),
        opt(2, "status", msg(&SELF_SUBJECT_REVIEW_STATUS)),
    ],
};

static SELF_SUBJECT_REVIEW_STATUS: Message = Message {
    name: "SelfSubjectReviewStatus",
    fields: &[opt(1, "userInfo", msg(&USER_INFO))],
};

static USER_INFO: Message = Message {
    name: "UserInfo",
    fields: &[
        opt(1, "username", Str),
        opt(2, "uid", Str),
        rep(3, "groups", Str),
    ],
};

// ---------------------------------------------------------------- kinds

/// The top-level message of each `apiVersion` and `kind` the decoder reads.
static KINDS: &[(&str, &str, &Message)] = &[
    ("v1", "Namespace", &NAMESPACE),
    ("v1", "ConfigMap", &CONFIG_MAP),
    ("v1", "ServiceAccount", &SERVICE_ACCOUNT),
    ("apps/v1", "Deployment", &DEPLOYMENT),
    ("autoscaling/v1", "Scale", &SCALE),
    ("rbac.authorization.k8s.io/v1", "Role", &ROLE),
    ("rbac.authorization.k8s.io/v1", "ClusterRole", &CLUSTER_ROLE),
    ("rbac.authorization.k8s.io/v1", "RoleBinding", &BINDING),
    (
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleBinding",
        &BINDING,
    ),
    (
        "authorization.k8s.io/v1",
        "SelfSubjectAccessReview",
        &SELF_SUBJECT_ACCESS_REVIEW,
    ),
    (
        "authorization.k8s.io/v1",
        "SelfSubjectRulesReview",
        &SELF_SUBJECT_RULES_REVIEW,
    ),
    (
        "authentication.k8s.io/v1",
        "SelfSubjectReview",
        &SELF_SUBJECT_REVIEW,
    ),
];

/// The schema of `apiVersion` `kind`, if the sandbox has one.
pub(crate) fn by_kind(api_version: &str, kind: &str) -> Option<&'static Message> {
    KINDS
        .iter()
        .find(|(v, k, _)| *v == api_version && *k == kind)
        .map(|(_, _, m)| *m)
}

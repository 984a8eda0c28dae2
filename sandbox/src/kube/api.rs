//! The verbs on stored objects: create, update, patch, delete, and the
//! `scale` and `status` subresources, with the API server's rules for
//! metadata (uid, creationTimestamp, generation, resourceVersion
//! preconditions), defaults, validation and dry runs. Everything here runs
//! under the store lock and never awaits.

use std::sync::Arc;

use serde_json::{Value, json};

use super::deployment;
use super::error::{ApiError, FieldError, success_status};
use super::gojson;
use super::meta::{self, str_at};
use super::patch::{self, PatchKind};
use super::quantity;
use super::resources::{self, Behaviour, NAMESPACE, POD, REPLICA_SET, ResourceType};
use super::schema::{self, FieldValidation};
use super::store::Store;
use super::validation;

/// Options shared by the writing verbs, and the warnings they produce.
#[derive(Debug, Default)]
pub(crate) struct Write {
    /// `?dryRun=All`: everything but storing.
    pub(crate) dry_run: bool,
    /// `?fieldValidation=`: what unknown fields do.
    pub(crate) validation: FieldValidation,
    /// For `Warning` headers of the answer.
    pub(crate) warnings: Vec<String>,
}

impl Write {
    /// The options of a create, update or patch from its query, refused as
    /// the API server refuses them before it reads the body: `kind` is
    /// `CreateOptions`, `UpdateOptions` or `PatchOptions`, `dry_run` every
    /// `dryRun` value (only `All`, which may repeat, is one).
    pub(crate) fn from_query(
        kind: &str,
        dry_run: &[&str],
        field_validation: Option<&str>,
    ) -> Result<Self, ApiError> {
        let mut errors = dry_run_errors(dry_run);
        if let Some(v) = field_validation
            && !matches!(v, "" | "Ignore" | "Strict" | "Warn")
        {
            errors.push(FieldError::unsupported(
                "fieldValidation",
                &json!(v),
                &["", "Ignore", "Strict", "Warn"],
            ));
        }
        if !errors.is_empty() {
            return Err(ApiError::invalid(kind, META_GROUP, "", &errors));
        }
        Ok(Self {
            dry_run: !dry_run.is_empty(),
            validation: FieldValidation::parse(field_validation),
            warnings: Vec::new(),
        })
    }
}

/// The group of the API's own option kinds (`CreateOptions`, ...).
const META_GROUP: &str = "meta.k8s.io";

/// `ValidateDryRun`: any value but `All` refuses the request, however many
/// are given; none is no dry run.
fn dry_run_errors(values: &[&str]) -> Vec<FieldError> {
    if values.iter().all(|v| *v == "All") {
        return Vec::new();
    }
    vec![FieldError::unsupported("dryRun", &json!(values), &["All"])]
}

/// The first namespace, present from the start like on a cluster.
pub(crate) const DEFAULT_NAMESPACE: &str = "default";

/// The namespaces a cluster starts with.
pub(crate) const INITIAL_NAMESPACES: &[&str] = &[
    DEFAULT_NAMESPACE,
    "kube-node-lease",
    "kube-public",
    "kube-system",
];

/// The namespaces the `NamespaceLifecycle` admission plugin never lets go.
const IMMORTAL_NAMESPACES: &[&str] = &[DEFAULT_NAMESPACE, "kube-public", "kube-system"];

/// A fresh namespace object.
pub(crate) fn namespace_object(name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    })
}

fn check_type_meta(rt: &ResourceType, object: &Value) -> Result<(), ApiError> {
    let api_version = str_at(object, "/apiVersion");
    if !api_version.is_empty() && api_version != rt.api_version() {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({})",
            rt.api_version()
        )));
    }
    let kind = str_at(object, "/kind");
    if !kind.is_empty() && kind != rt.kind {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind ({})",
            rt.kind
        )));
    }
    Ok(())
}

fn check_namespace(rt: &ResourceType, object: &mut Value, namespace: &str) -> Result<(), ApiError> {
    if !object.is_object() {
        return Err(ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: the body must be a JSON object",
            rt.kind, rt.version, rt.kind
        )));
    }
    if !object["metadata"].is_object() {
        object["metadata"] = json!({});
    }
    if rt.namespaced {
        let given = str_at(object, "/metadata/namespace");
        if !given.is_empty() && given != namespace {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        object["metadata"]["namespace"] = json!(namespace);
    } else if let Some(m) = object["metadata"].as_object_mut() {
        m.remove("namespace");
    }
    Ok(())
}

fn name_errors(rt: &ResourceType, name: &str) -> Vec<FieldError> {
    match rt.behaviour {
        Behaviour::Namespace => meta::check_label("metadata.name", name),
        Behaviour::Plain if rt.group == "rbac.authorization.k8s.io" => {
            meta::check_path_segment("metadata.name", name)
        }
        _ => meta::check_subdomain("metadata.name", name),
    }
}

/// How much of a `generateName` a generated name keeps (63 less the five
/// random characters).
const MAX_GENERATED_PREFIX: usize = 58;

/// Whether a namespace is being deleted (its controller is emptying it).
pub(crate) fn is_terminating(store: &Store, namespace: &str) -> bool {
    store
        .get(&NAMESPACE, "", namespace)
        .is_some_and(|ns| ns["status"]["phase"] == "Terminating")
}

/// Five characters of the alphabet generated names use.
pub(crate) fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    uuid::Uuid::new_v4()
        .as_bytes()
        .iter()
        .take(5)
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect()
}

/// Defaults, type checks and validation of the kinds that have them;
/// `immutable` are the errors of changed identity metadata an update found,
/// which the server reports after those of the labels and annotations.
fn prepare(
    rt: &ResourceType,
    object: &mut Value,
    old: Option<&Value>,
    opts: &mut Write,
    immutable: Vec<FieldError>,
) -> Result<(), ApiError> {
    let name = str_at(object, "/metadata/name").to_owned();
    if rt.behaviour == Behaviour::Deployment {
        deployment::check_types(object)?;
    }
    let cannot = |why: String| {
        ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: {why}",
            rt.kind, rt.version, rt.kind
        ))
    };
    // Quantities first: the decoder refuses a bad one before anything else,
    // and reads numbers (`cpu: 1`) as quantities, which the typed form
    // below would not.
    let quantity_errors = quantity::check(rt, object)?;
    // The typed form gives a Deployment without a selector an empty one,
    // which validation must not mistake for the selector left out.
    let no_selector = rt.behaviour == Behaviour::Deployment
        && object.pointer("/spec/selector").is_none_or(Value::is_null);
    let (kept, dropped) = schema::prune(rt, object).map_err(cannot)?;
    if !dropped.is_empty() {
        match opts.validation {
            FieldValidation::Strict => {
                let list: Vec<String> = dropped
                    .iter()
                    .map(|f| format!("unknown field {f:?}"))
                    .collect();
                return Err(cannot(format!(
                    "strict decoding error: {}",
                    list.join(", ")
                )));
            }
            FieldValidation::Warn => {
                opts.warnings
                    .extend(dropped.iter().map(|f| format!("unknown field {f:?}")));
            }
            FieldValidation::Ignore => {}
        }
    }
    *object = kept;
    if no_selector && let Some(spec) = object["spec"].as_object_mut() {
        spec.remove("selector");
    }
    let mut errors = meta::check_labels("metadata.labels", object.pointer("/metadata/labels"));
    errors.extend(meta::check_annotations(
        "metadata.annotations",
        object.pointer("/metadata/annotations"),
    ));
    errors.extend(immutable);
    match rt.behaviour {
        Behaviour::Deployment => {
            deployment::apply_defaults(object);
            errors.extend(deployment::validate(object, old));
        }
        Behaviour::ReplicaSet => {
            if let Some(t) = object
                .pointer_mut("/spec/template")
                .and_then(Value::as_object_mut)
            {
                deployment::default_template(t);
            }
            if object["spec"]["replicas"].is_null() {
                object["spec"]["replicas"] = json!(1);
            }
        }
        Behaviour::Pod => {
            if let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) {
                deployment::default_pod_spec(spec);
            }
        }
        Behaviour::Namespace => {
            prepare_namespace(object, old);
            object["metadata"]["labels"]["kubernetes.io/metadata.name"] = json!(name);
        }
        Behaviour::Plain | Behaviour::Review => {}
    }
    errors.extend(validation::errors(rt, object, old));
    errors.extend(quantity_errors);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(rt.kind, rt.group, &name, &errors))
    }
}

/// The namespace strategy: a new namespace is `Active` with the
/// `kubernetes` finalizer (added to any it was given); an update keeps the
/// stored finalizers, which only `/finalize` changes (its status is kept
/// apart by [`finish_update`]).
fn prepare_namespace(object: &mut Value, old: Option<&Value>) {
    match old {
        Some(old) => match old.pointer("/spec/finalizers").cloned() {
            Some(f) => object["spec"]["finalizers"] = f,
            None => {
                if let Some(spec) = object["spec"].as_object_mut() {
                    spec.remove("finalizers");
                }
            }
        },
        None => {
            object["status"] = json!({"phase": "Active"});
            let finalizers = &mut object["spec"]["finalizers"];
            match finalizers.as_array_mut() {
                Some(list) if list.iter().any(|f| f == "kubernetes") => {}
                Some(list) => list.push(json!("kubernetes")),
                None => *finalizers = json!(["kubernetes"]),
            }
        }
    }
}

/// Whether the kind keeps a spec/status split with a generation.
fn has_generation(rt: &ResourceType) -> bool {
    matches!(rt.behaviour, Behaviour::Deployment | Behaviour::ReplicaSet)
}

/// POST: a new object in `namespace` ("" for cluster-scoped kinds).
pub(crate) fn create(
    store: &mut Store,
    rt: &'static ResourceType,
    namespace: &str,
    mut object: Value,
    opts: &mut Write,
) -> Result<Arc<Value>, ApiError> {
    check_type_meta(rt, &object)?;
    check_namespace(rt, &mut object, namespace)?;
    if rt.namespaced && is_terminating(store, namespace) {
        // Admission, before a name is generated: the refusal names the
        // object by its name, else its generateName, else "Unknown".
        let named = match (
            str_at(&object, "/metadata/name"),
            str_at(&object, "/metadata/generateName"),
        ) {
            ("", "") => "Unknown",
            ("", prefix) => prefix,
            (name, _) => name,
        };
        return Err(ApiError::namespace_terminating(rt, named, namespace));
    }
    let mut name = str_at(&object, "/metadata/name").to_owned();
    if name.is_empty() {
        let prefix = str_at(&object, "/metadata/generateName").to_owned();
        if prefix.is_empty() {
            return Err(ApiError::invalid(
                rt.kind,
                rt.group,
                "",
                &[FieldError::required(
                    "metadata.name",
                    "name or generateName is required",
                )],
            ));
        }
        // The name generator keeps the name within 63 characters: the
        // prefix is cut to 58, whatever its length.
        let prefix: String = prefix.chars().take(MAX_GENERATED_PREFIX).collect();
        name = format!("{prefix}{}", random_suffix());
        object["metadata"]["name"] = json!(name);
    }
    let errors = name_errors(rt, &name);
    if !errors.is_empty() {
        return Err(ApiError::invalid(rt.kind, rt.group, &name, &errors));
    }
    if rt.namespaced && store.get(&NAMESPACE, "", namespace).is_none() {
        return Err(ApiError::namespace_not_found(namespace));
    }
    object["apiVersion"] = json!(rt.api_version());
    object["kind"] = json!(rt.kind);
    prepare(rt, &mut object, None, opts, Vec::new())?;
    // What storage refuses, after validation: a resourceVersion (only a
    // dry run, which never reaches storage, lets one by), then a taken name.
    if !opts.dry_run && sets_resource_version(&object) {
        return Err(ApiError::bad_request(
            "resourceVersion should not be set on objects to be created",
        ));
    }
    if store.get(rt, namespace, &name).is_some() {
        return Err(ApiError::already_exists(rt, &name));
    }
    let metadata = &mut object["metadata"];
    metadata["uid"] = json!(uuid::Uuid::new_v4().to_string());
    metadata["creationTimestamp"] = json!(meta::now());
    if let Some(m) = metadata.as_object_mut() {
        m.remove("resourceVersion");
        m.remove("deletionTimestamp");
        m.remove("generation");
    }
    if has_generation(rt) {
        object["metadata"]["generation"] = json!(1);
        if rt.behaviour == Behaviour::Deployment {
            object["status"] = json!({});
        }
    }
    if rt.behaviour == Behaviour::Pod {
        // A ReplicaSet's Pods are its controller's; others start at once.
        super::pods::start_unowned(&mut object);
    }
    if opts.dry_run {
        return Ok(Arc::new(object));
    }
    Ok(store.insert(rt, object))
}

/// Whether storage would see a resourceVersion in an object to create:
/// one that reads as a number other than 0 (storage ignores what it cannot
/// parse, as it does "0").
fn sets_resource_version(object: &Value) -> bool {
    str_at(object, "/metadata/resourceVersion")
        .parse::<u64>()
        .is_ok_and(|rv| rv != 0)
}

/// The stored object, shared (a write copies it only to change it).
fn existing(
    store: &Store,
    rt: &ResourceType,
    namespace: &str,
    name: &str,
) -> Result<Arc<Value>, ApiError> {
    store
        .shared(rt, namespace, name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(rt, name))
}

/// The name in a written object must be the one on the URL.
fn check_name(object: &Value, name: &str) -> Result<(), ApiError> {
    let given = str_at(object, "/metadata/name");
    if given != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({given}) does not match the name on the URL ({name})"
        )));
    }
    Ok(())
}

/// A `uid` in a replacing object is a precondition, as its
/// `resourceVersion` is.
fn check_uid_precondition(
    rt: &ResourceType,
    name: &str,
    written: &Value,
    current: &Value,
) -> Result<(), ApiError> {
    let wanted = str_at(written, "/metadata/uid");
    let actual = str_at(current, "/metadata/uid");
    if !wanted.is_empty() && wanted != actual {
        return Err(ApiError::conflict_because(
            rt,
            name,
            &format!(
                "Precondition failed: UID in precondition: {wanted}, UID in object meta: {actual}"
            ),
        ));
    }
    Ok(())
}

/// A `resourceVersion` in a written object is a precondition.
fn check_precondition(
    rt: &ResourceType,
    name: &str,
    written: &Value,
    current: &Value,
) -> Result<(), ApiError> {
    let wanted = str_at(written, "/metadata/resourceVersion");
    if !wanted.is_empty() && wanted != str_at(current, "/metadata/resourceVersion") {
        return Err(ApiError::conflict(rt, name));
    }
    Ok(())
}

/// Stores `new` in place of `old` under the API's update rules: identity
/// metadata kept, status kept (the main resource does not write it),
/// generation bumped on spec changes, nothing written when nothing changed.
fn finish_update(
    store: &mut Store,
    rt: &'static ResourceType,
    old: &Value,
    mut new: Value,
    opts: &mut Write,
    writes_status: bool,
) -> Result<Arc<Value>, ApiError> {
    // A uid left out keeps the stored one; another is refused with the
    // other validation errors (the status subresource's too).
    let uid = str_at(&new, "/metadata/uid");
    let immutable = if uid.is_empty() || uid == str_at(old, "/metadata/uid") {
        Vec::new()
    } else {
        vec![FieldError::invalid(
            "metadata.uid",
            &json!(uid),
            "field is immutable",
        )]
    };
    for field in [
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "generation",
        "resourceVersion",
        // Only a DELETE sets these.
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ] {
        match old["metadata"].get(field) {
            Some(v) => new["metadata"][field] = v.clone(),
            None => {
                if let Some(m) = new["metadata"].as_object_mut() {
                    m.remove(field);
                }
            }
        }
    }
    new["apiVersion"] = json!(rt.api_version());
    new["kind"] = json!(rt.kind);
    if has_generation(rt) || matches!(rt.behaviour, Behaviour::Namespace | Behaviour::Pod) {
        if writes_status {
            let status = new["status"].clone();
            new = old.clone();
            new["status"] = status;
        } else {
            new["status"] = old["status"].clone();
        }
    }
    prepare(rt, &mut new, Some(old), opts, immutable)?;
    if has_generation(rt) && new["spec"] != old["spec"] {
        let generation = old["metadata"]["generation"].as_i64().unwrap_or(0);
        new["metadata"]["generation"] = json!(generation + 1);
    }
    if new == *old || opts.dry_run {
        return Ok(Arc::new(new));
    }
    if is_deleting(&new) && rt.behaviour != Behaviour::Namespace && finalizers(&new).is_empty() {
        // Its last finalizer removed, a deleted object goes.
        remove_now(store, rt, &new, false);
        return Ok(Arc::new(new));
    }
    Ok(store.insert(rt, new))
}

/// PUT on the object (or on `/status` when `writes_status`).
pub(crate) fn update(
    store: &mut Store,
    rt: &'static ResourceType,
    namespace: &str,
    name: &str,
    mut object: Value,
    opts: &mut Write,
    writes_status: bool,
) -> Result<Arc<Value>, ApiError> {
    check_type_meta(rt, &object)?;
    check_namespace(rt, &mut object, namespace)?;
    check_name(&object, name)?;
    let old = existing(store, rt, namespace, name)?;
    check_uid_precondition(rt, name, &object, &old)?;
    check_precondition(rt, name, &object, &old)?;
    finish_update(store, rt, &old, object, opts, writes_status)
}

/// PATCH on the object (or on `/status`).
#[allow(clippy::too_many_arguments)] // the verb's full request, spelled out
pub(crate) fn patch(
    store: &mut Store,
    rt: &'static ResourceType,
    namespace: &str,
    name: &str,
    kind: PatchKind,
    body: &[u8],
    opts: &mut Write,
    writes_status: bool,
) -> Result<Arc<Value>, ApiError> {
    let old = existing(store, rt, namespace, name)?;
    let mut new = Value::clone(&old);
    patch::apply(kind, &mut new, body)?;
    // The patched object is held to the URL as a replacing one is: its
    // namespace (filled in when removed), then its name.
    check_namespace(rt, &mut new, namespace)?;
    check_name(&new, name)?;
    check_precondition(rt, name, &new, &old)?;
    finish_update(store, rt, &old, new, opts, writes_status)
}

/// GET `/scale`.
pub(crate) fn get_scale(
    store: &Store,
    rt: &ResourceType,
    namespace: &str,
    name: &str,
) -> Result<Value, ApiError> {
    let object = existing(store, rt, namespace, name)?;
    Ok(deployment::scale_of(&object))
}

/// How a `/scale` write is given.
#[derive(Debug)]
pub(crate) enum ScaleWrite<'a> {
    Replace(Value),
    Patch(PatchKind, &'a [u8]),
}

/// PUT or PATCH on `/scale`: the Scale's replicas become the object's.
pub(crate) fn write_scale(
    store: &mut Store,
    rt: &'static ResourceType,
    namespace: &str,
    name: &str,
    write: ScaleWrite<'_>,
    opts: &mut Write,
) -> Result<Value, ApiError> {
    let old = existing(store, rt, namespace, name)?;
    let current = deployment::scale_of(&old);
    let mut scale = match write {
        ScaleWrite::Replace(body) => body,
        ScaleWrite::Patch(kind, body) => {
            let mut scale = current.clone();
            patch::apply(kind, &mut scale, body)?;
            scale
        }
    };
    // Go decodes `null` into an empty Scale, which then has no name.
    if scale.is_null() {
        scale = json!({});
    }
    if !scale.is_object() {
        return Err(ApiError::bad_request(format!(
            "Scale in version \"v1\" cannot be handled as a Scale: {}",
            gojson::type_error(&scale, "v1.Scale")
        )));
    }
    // A Scale is held to the URL as any written object is: its namespace,
    // then its name.
    check_namespace(rt, &mut scale, namespace)?;
    check_name(&scale, name)?;
    check_precondition(rt, name, &scale, &current)?;
    let replicas = deployment::scale_replicas(&scale, name)?;
    let mut new = Value::clone(&old);
    new["spec"]["replicas"] = json!(replicas);
    let stored = finish_update(store, rt, &old, new, opts, false)?;
    Ok(deployment::scale_of(&stored))
}

/// The `DeleteOptions` a DELETE (or a deletecollection) carries in its body
/// or, with no body, in its query.
#[derive(Debug, Default)]
pub(crate) struct DeleteOptions {
    pub(crate) propagation: Option<String>,
    pub(crate) resource_version: Option<String>,
    pub(crate) uid: Option<String>,
    pub(crate) dry_run: bool,
}

impl DeleteOptions {
    /// As the API server reads them: from the body when there is one (the
    /// query is then not read at all), else from the query (`query` gives
    /// every value of a parameter); then validated (`ValidateDeleteOptions`),
    /// a 422 before the object is looked at.
    pub(crate) fn from_request<'a>(
        body: &[u8],
        query: impl Fn(&str) -> Vec<&'a str>,
    ) -> Result<Self, ApiError> {
        let (propagation, resource_version, uid, dry_run) =
            if body.iter().all(u8::is_ascii_whitespace) {
                let first = |key: &str| query(key).first().map(|v| (*v).to_owned());
                let dry_run: Vec<String> = query("dryRun").into_iter().map(str::to_owned).collect();
                (first("propagationPolicy"), None, None, dry_run)
            } else {
                let v: Value = serde_json::from_slice(body).map_err(|e| {
                    ApiError::bad_request(format!("error decoding DeleteOptions: {e}"))
                })?;
                let s = |p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_owned);
                let dry_run = v
                    .get("dryRun")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|d| d.as_str().unwrap_or_default().to_owned())
                    .collect();
                (
                    s("/propagationPolicy"),
                    s("/preconditions/resourceVersion"),
                    s("/preconditions/uid"),
                    dry_run,
                )
            };
        let mut errors = Vec::new();
        if let Some(p) = &propagation
            && !matches!(p.as_str(), "Foreground" | "Background" | "Orphan")
        {
            errors.push(FieldError::unsupported(
                "propagationPolicy",
                &json!(p),
                &["Foreground", "Background", "Orphan", "nil"],
            ));
        }
        let dry_run: Vec<&str> = dry_run.iter().map(String::as_str).collect();
        errors.extend(dry_run_errors(&dry_run));
        if !errors.is_empty() {
            return Err(ApiError::invalid("DeleteOptions", META_GROUP, "", &errors));
        }
        Ok(Self {
            propagation,
            resource_version,
            uid,
            dry_run: !dry_run.is_empty(),
        })
    }
}

/// DELETE: removes the object at once and, unless orphaning, the
/// ReplicaSets a Deployment controls; a namespace, an object deleted in the
/// foreground or one with finalizers is only marked (see
/// [`marked_for_deletion`]) and answered with.
pub(crate) fn delete(
    store: &mut Store,
    rt: &'static ResourceType,
    namespace: &str,
    name: &str,
    opts: &DeleteOptions,
) -> Result<Value, ApiError> {
    let old = existing(store, rt, namespace, name)?;
    if let Some(rv) = &opts.resource_version {
        let actual = str_at(&old, "/metadata/resourceVersion");
        if rv != actual {
            return Err(ApiError::conflict_because(
                rt,
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {actual}"
                ),
            ));
        }
    }
    if let Some(uid) = &opts.uid {
        let actual = str_at(&old, "/metadata/uid");
        if uid != actual {
            return Err(ApiError::conflict_because(
                rt,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"
                ),
            ));
        }
    }
    if rt.behaviour == Behaviour::Namespace && IMMORTAL_NAMESPACES.contains(&name) {
        return Err(ApiError::forbidden_because(
            rt,
            name,
            "this namespace may not be deleted",
        ));
    }
    if is_deleting(&old) {
        // Deleted already and waiting for its finalizers: a DELETE again
        // changes nothing and answers with the object.
        return Ok(Value::clone(&old));
    }
    let foreground = opts.propagation.as_deref() == Some("Foreground");
    if rt.behaviour == Behaviour::Namespace || foreground || !finalizers(&old).is_empty() {
        // Not deleted yet: marked, and answered with the object, until the
        // namespace controller or the garbage collector (see
        // [`super::lifecycle`]), or whoever owns its finalizers, is done.
        let marked = marked_for_deletion(rt, &old, foreground);
        if opts.dry_run {
            return Ok(marked);
        }
        return Ok(Value::clone(&store.insert(rt, marked)));
    }
    let status = success_status(rt, name, &old["metadata"]["uid"]);
    if opts.dry_run {
        return Ok(status);
    }
    let orphan = opts.propagation.as_deref() == Some("Orphan");
    remove_now(store, rt, &old, orphan);
    Ok(status)
}

/// The `foregroundDeletion` finalizer: the garbage collector deletes the
/// object's dependents first.
pub(crate) const FOREGROUND_DELETION: &str = "foregroundDeletion";

/// Whether an object has been deleted and waits for its finalizers.
pub(crate) fn is_deleting(object: &Value) -> bool {
    !object["metadata"]["deletionTimestamp"].is_null()
}

/// An object's `metadata.finalizers`.
pub(crate) fn finalizers(object: &Value) -> Vec<&str> {
    object["metadata"]["finalizers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

/// What a DELETE that cannot remove the object at once stores: a namespace
/// `Terminating` (its `kubernetes` finalizer is its controller's); any
/// other object with a deletion time, no grace period, a new generation
/// (for kinds that have one) and, deleted in the foreground, the
/// `foregroundDeletion` finalizer.
fn marked_for_deletion(rt: &ResourceType, old: &Value, foreground: bool) -> Value {
    let mut object = old.clone();
    object["metadata"]["deletionTimestamp"] = json!(meta::now());
    if rt.behaviour == Behaviour::Namespace {
        object["status"]["phase"] = json!("Terminating");
        return object;
    }
    object["metadata"]["deletionGracePeriodSeconds"] = json!(0);
    if let Some(generation) = old["metadata"]["generation"].as_i64() {
        object["metadata"]["generation"] = json!(generation + 1);
    }
    if foreground && !finalizers(old).contains(&FOREGROUND_DELETION) {
        match object["metadata"]["finalizers"].as_array_mut() {
            Some(list) => list.push(json!(FOREGROUND_DELETION)),
            None => object["metadata"]["finalizers"] = json!([FOREGROUND_DELETION]),
        }
    }
    object
}

/// Removes a stored object and, unless orphaning, lets the garbage
/// collector take what a Deployment or ReplicaSet controlled.
pub(crate) fn remove_now(
    store: &mut Store,
    rt: &'static ResourceType,
    object: &Value,
    orphan: bool,
) {
    let namespace = str_at(object, "/metadata/namespace");
    if matches!(rt.behaviour, Behaviour::Deployment | Behaviour::ReplicaSet) {
        release_children(
            store,
            rt,
            namespace,
            str_at(object, "/metadata/uid"),
            orphan,
        );
    }
    store.remove(rt, namespace, str_at(object, "/metadata/name"));
}

/// Garbage collection of what a deleted Deployment or ReplicaSet
/// controlled: deleted (a Deployment's ReplicaSets with their Pods), or
/// (orphaning) kept without the owner reference.
pub(crate) fn release_children(
    store: &mut Store,
    owner: &ResourceType,
    namespace: &str,
    owner_uid: &str,
    orphan: bool,
) {
    let child_rt = match owner.behaviour {
        Behaviour::Deployment => &REPLICA_SET,
        _ => &POD,
    };
    let owned: Vec<Arc<Value>> = store
        .controlled_by(child_rt, namespace, owner_uid)
        .into_iter()
        .cloned()
        .collect();
    for child in owned {
        let name = str_at(&child, "/metadata/name");
        if orphan {
            store.insert(child_rt, without_owner(&child, owner_uid));
        } else {
            store.remove(child_rt, namespace, name);
            if child_rt.behaviour == Behaviour::ReplicaSet {
                let uid = str_at(&child, "/metadata/uid");
                release_children(store, child_rt, namespace, uid, false);
            }
        }
    }
}

/// A controller's claim on its children of kind `child` (a Deployment's
/// ReplicaSets, a ReplicaSet's Pods), as the API's controllers make it:
/// it lets go of those its selector no longer matches (relabelled out of
/// service), keeps the rest, and adopts the orphans it matches (left by
/// `delete --cascade=orphan` of an earlier owner, or made by hand).
/// Returns the children it then controls.
pub(crate) fn claim(
    store: &mut Store,
    child: &'static ResourceType,
    owner: &Value,
    namespace: &str,
) -> Vec<Arc<Value>> {
    let uid = str_at(owner, "/metadata/uid");
    let selector = meta::LabelSelector::from_object(&owner["spec"]["selector"]);
    let matches = |o: &Value| selector.matches(&meta::string_map(o.pointer("/metadata/labels")));
    let (mut owned, released): (Vec<Arc<Value>>, Vec<Arc<Value>>) = store
        .controlled_by(child, namespace, uid)
        .into_iter()
        .cloned()
        .partition(|o| matches(o));
    for object in released {
        store.insert(child, without_owner(&object, uid));
    }
    if selector.is_empty() {
        return owned;
    }
    let orphans: Vec<Arc<Value>> = store
        .uncontrolled(child, namespace)
        .into_iter()
        .filter(|o| matches(o) && o["metadata"]["deletionTimestamp"].is_null())
        .cloned()
        .collect();
    for object in orphans {
        owned.push(store.insert(child, with_controller(&object, owner)));
    }
    owned
}

/// `object` without its owner reference to `owner_uid`; with none left,
/// without the list, as the API server stores an empty one.
pub(crate) fn without_owner(object: &Value, owner_uid: &str) -> Value {
    let mut object = object.clone();
    let metadata = &mut object["metadata"];
    if let Some(refs) = metadata["ownerReferences"].as_array_mut() {
        refs.retain(|r| str_at(r, "/uid") != owner_uid);
        if refs.is_empty()
            && let Some(m) = metadata.as_object_mut()
        {
            m.remove("ownerReferences");
        }
    }
    object
}

/// `object` adopted by `owner` (a Deployment or a ReplicaSet): the owner
/// reference the controllers give what they make or adopt.
pub(crate) fn with_controller(object: &Value, owner: &Value) -> Value {
    let mut object = object.clone();
    let reference = json!({
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": true,
        "blockOwnerDeletion": true,
    });
    match object["metadata"]["ownerReferences"].as_array_mut() {
        Some(refs) => refs.push(reference),
        None => object["metadata"]["ownerReferences"] = json!([reference]),
    }
    object
}

/// Whether `object` names `owner_uid` as its controller (what
/// [`Store::controlled_by`] indexes).
#[cfg(test)]
pub(crate) fn owned_by(object: &Value, owner_uid: &str) -> bool {
    object["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|r| str_at(r, "/uid") == owner_uid && r["controller"] == json!(true))
}

/// Strips what list items do not carry (kind and apiVersion are on the
/// list).
pub(crate) fn list_item(object: &Value) -> Value {
    let mut item = object.clone();
    if let Some(m) = item.as_object_mut() {
        m.remove("kind");
        m.remove("apiVersion");
    }
    item
}

/// Creates (or, when it exists, replaces) one manifest document; used for
/// seeds, where namespaces are made on demand.
pub(crate) fn seed(store: &mut Store, object: Value) -> Result<(), String> {
    let api_version = str_at(&object, "/apiVersion").to_owned();
    let kind = str_at(&object, "/kind").to_owned();
    if kind == "List" {
        for item in object["items"].as_array().cloned().unwrap_or_default() {
            seed(store, item)?;
        }
        return Ok(());
    }
    let rt = resources::by_kind(&api_version, &kind)
        .ok_or_else(|| format!("kind {kind} of {api_version} is not served by the sandbox"))?;
    let namespace = if rt.namespaced {
        match str_at(&object, "/metadata/namespace") {
            "" => DEFAULT_NAMESPACE.to_owned(),
            ns => ns.to_owned(),
        }
    } else {
        String::new()
    };
    if rt.namespaced && store.get(&NAMESPACE, "", &namespace).is_none() {
        create(
            store,
            &NAMESPACE,
            "",
            namespace_object(&namespace),
            &mut Write::default(),
        )
        .map_err(|e| e.to_string())?;
    }
    let name = str_at(&object, "/metadata/name").to_owned();
    let result = if store.get(rt, &namespace, &name).is_some() {
        // A manifest saved from a cluster replaces the object whatever
        // version and uid it was saved with.
        let mut object = object;
        if let Some(m) = object["metadata"].as_object_mut() {
            m.remove("resourceVersion");
            m.remove("uid");
        }
        update(
            store,
            rt,
            &namespace,
            &name,
            object,
            &mut Write::default(),
            false,
        )
    } else {
        create(store, rt, &namespace, object, &mut Write::default())
    };
    result.map(|_| ()).map_err(|e| e.to_string())
}

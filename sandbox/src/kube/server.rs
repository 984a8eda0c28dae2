//! HTTP: the router, the gate every API request passes (faults, the
//! request log, authentication), URL routing onto resource types, content
//! negotiation (JSON or `Table`), watch streams, and the control endpoints
//! under `/_sandbox/`, a prefix the Kubernetes API never uses.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::serve::IncomingStream;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast::error::RecvError;

use super::Shared;
use super::api::{self, DeleteOptions, ScaleWrite, Write};
use super::discovery;
use super::error::ApiError;
use super::faults::{Fault, RecordedRequest};
use super::meta::{FieldSelector, LabelSelector, str_at};
use super::paging;
use super::patch::PatchKind;
use super::protobuf;
use super::rbac::{self, Attributes, Identity};
use super::resources::{self, Behaviour, ResourceType};
use super::review;
use super::store::Event;
use super::table::{self, IncludeObject};

/// The media type of `Table` answers.
const TABLE_TYPE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";
/// The media types create and update accept.
const BODY_TYPES: &[&str] = &["application/json", "application/yaml", PROTOBUF];
/// The Kubernetes protobuf media type.
const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";
/// How long a watch lasts when the client sets no `timeoutSeconds`.
const DEFAULT_WATCH: Duration = Duration::from_secs(30 * 60);

/// The whole API plus the control endpoints.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let control = Router::new()
        .route(
            "/_sandbox/faults",
            post(add_fault).delete(clear_faults).get(list_faults),
        )
        .route(
            "/_sandbox/requests",
            get(list_requests).delete(clear_requests),
        )
        .route("/_sandbox/rollout", put(set_rollout).get(get_rollout))
        .route(
            "/_sandbox/unpullable",
            put(set_unpullable).get(get_unpullable),
        );
    Router::new()
        .fallback(api_handler)
        .layer(middleware::from_fn_with_state(shared.clone(), gate))
        .merge(control)
        .with_state(shared)
}

// ---------------------------------------------------------------- control

async fn add_fault(
    State(shared): State<Arc<Shared>>,
    axum::Json(fault): axum::Json<Fault>,
) -> impl IntoResponse {
    shared.lock_faults().add(fault);
    (StatusCode::CREATED, axum::Json(shared.lock_faults().list()))
}

async fn clear_faults(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.lock_faults().clear();
    StatusCode::NO_CONTENT
}

async fn list_faults(State(shared): State<Arc<Shared>>) -> axum::Json<Vec<Fault>> {
    axum::Json(shared.lock_faults().list())
}

async fn list_requests(State(shared): State<Arc<Shared>>) -> axum::Json<Vec<RecordedRequest>> {
    axum::Json(shared.lock_log().clone())
}

async fn clear_requests(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.lock_log().clear();
    StatusCode::NO_CONTENT
}

#[derive(Debug, Deserialize, serde::Serialize)]
struct Rollout {
    millis: u64,
}

async fn set_rollout(
    State(shared): State<Arc<Shared>>,
    axum::Json(r): axum::Json<Rollout>,
) -> StatusCode {
    shared.set_rollout(Duration::from_millis(r.millis));
    StatusCode::NO_CONTENT
}

async fn get_rollout(State(shared): State<Arc<Shared>>) -> axum::Json<Rollout> {
    let millis = u64::try_from(shared.rollout().as_millis()).unwrap_or(u64::MAX);
    axum::Json(Rollout { millis })
}

async fn set_unpullable(
    State(shared): State<Arc<Shared>>,
    axum::Json(images): axum::Json<Vec<String>>,
) -> StatusCode {
    shared.set_unpullable(images);
    StatusCode::NO_CONTENT
}

async fn get_unpullable(State(shared): State<Arc<Shared>>) -> axum::Json<Vec<String>> {
    axum::Json(shared.unpullable())
}

// ---------------------------------------------------------------- gate

/// Faults, then authentication, then the API; every request is logged
/// with its outcome.
async fn gate(State(shared): State<Arc<Shared>>, mut req: Request, next: Next) -> Response {
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let headers = req.headers();
    let identity = shared
        .auth
        .authenticate(
            headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok()),
        )
        .and_then(|caller| {
            shared.auth.impersonate(
                caller,
                headers
                    .get("impersonate-user")
                    .and_then(|v| v.to_str().ok()),
                headers
                    .get_all("impersonate-group")
                    .iter()
                    .filter_map(|v| v.to_str().ok()),
            )
        });
    let user = identity
        .as_ref()
        .map_or_else(|_| "<unauthenticated>".to_owned(), |i| i.user.clone());
    let record = |status: Option<u16>, fault: bool| {
        shared.record(RecordedRequest {
            method: method.clone(),
            path: path.clone(),
            query: query.clone(),
            status,
            user: user.clone(),
            fault,
        });
    };
    let fault = shared.lock_faults().take(&method, &path);
    if let Some(fault) = fault {
        if let Some(ms) = fault.latency_ms {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        if fault.close {
            if let Some(ConnectInfo(conn)) = req.extensions().get::<ConnectInfo<ConnHandle>>() {
                conn.kill();
            }
            record(None, true);
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
        if let Some(code) = fault.status {
            let response = fault_response(code, fault.retry_after, &path).into_response();
            record(Some(code), true);
            return response;
        }
    }
    let identity = match identity {
        Ok(identity) => identity,
        Err(e) => {
            record(Some(e.code()), false);
            return e.into_response();
        }
    };
    req.extensions_mut().insert(identity);
    let response = next.run(req).await;
    record(Some(response.status().as_u16()), false);
    response
}

/// The `Status` an injected fault answers with, worded as the real server
/// words that failure.
fn fault_response(code: u16, retry_after: Option<u64>, path: &str) -> ApiError {
    let error = match code {
        429 => ApiError::too_many_requests(retry_after.unwrap_or(1)),
        500 => ApiError::internal("injected fault"),
        503 => ApiError::unavailable("the server is currently unable to handle the request"),
        409 => match route(path) {
            Some(Target::Resource {
                rt,
                name: Some(name),
                ..
            }) => ApiError::conflict(rt, &name),
            _ => ApiError::generic(409, "injected conflict"),
        },
        other => ApiError::generic(other, "injected fault"),
    };
    match retry_after {
        Some(s) if code != 429 => error.with_retry_after(s),
        _ => error,
    }
}

// ---------------------------------------------------------------- routing

/// What a path addresses.
#[derive(Debug)]
enum Target {
    Version,
    Health,
    ApiVersions,
    GroupList,
    Group(String),
    ResourceList(String, String),
    OpenApiV3Root,
    OpenApiV3(String),
    Resource {
        rt: &'static ResourceType,
        namespace: Option<String>,
        name: Option<String>,
        subresource: Option<String>,
    },
}

fn route(path: &str) -> Option<Target> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["version"] => Some(Target::Version),
        ["healthz" | "livez" | "readyz"] => Some(Target::Health),
        ["api"] => Some(Target::ApiVersions),
        ["apis"] => Some(Target::GroupList),
        ["apis", g] => Some(Target::Group((*g).to_owned())),
        ["api", v] => Some(Target::ResourceList(String::new(), (*v).to_owned())),
        ["apis", g, v] => Some(Target::ResourceList((*g).to_owned(), (*v).to_owned())),
        ["openapi", "v3"] => Some(Target::OpenApiV3Root),
        ["openapi", "v3", rest @ ..] => Some(Target::OpenApiV3(rest.join("/"))),
        ["api", v, rest @ ..] => resource_target("", v, rest),
        ["apis", g, v, rest @ ..] => resource_target(g, v, rest),
        _ => None,
    }
}

fn resource_target(group: &str, version: &str, rest: &[&str]) -> Option<Target> {
    let target = |plural: &str, ns: Option<&str>, name: Option<&str>, sub: Option<&str>| {
        let rt = resources::by_plural(group, version, plural)?;
        if rt.namespaced != ns.is_some() && name.is_some() {
            return None;
        }
        if !rt.namespaced && ns.is_some() {
            return None;
        }
        if let Some(sub) = sub
            && !rt.has_subresource(sub)
        {
            return None;
        }
        Some(Target::Resource {
            rt,
            namespace: ns.map(str::to_owned),
            name: name.map(str::to_owned),
            subresource: sub.map(str::to_owned),
        })
    };
    let namespaced_plural =
        |p: &str| resources::by_plural(group, version, p).is_some_and(|t| t.namespaced);
    match rest {
        ["namespaces", ns, plural] if namespaced_plural(plural) => {
            target(plural, Some(ns), None, None)
        }
        ["namespaces", ns, plural, name] if namespaced_plural(plural) => {
            target(plural, Some(ns), Some(name), None)
        }
        ["namespaces", ns, plural, name, sub] if namespaced_plural(plural) => {
            target(plural, Some(ns), Some(name), Some(sub))
        }
        [plural] => target(plural, None, None, None),
        [plural, name] => target(plural, None, Some(name), None),
        [plural, name, sub] => target(plural, None, Some(name), Some(sub)),
        _ => None,
    }
}

// ---------------------------------------------------------------- API

fn json_response(code: StatusCode, body: &Value) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// `result` is a stored object (shared) or one made for the answer.
fn result_response(result: Result<impl Borrow<Value>, ApiError>, code: StatusCode) -> Response {
    match result {
        Ok(v) => json_response(code, v.borrow()),
        Err(e) => e.into_response(),
    }
}

/// Whether the client asked for a `meta.k8s.io/v1` `Table`.
fn wants_table(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|media| {
            let params: Vec<&str> = media.split(';').map(str::trim).collect();
            params.contains(&"as=Table")
                && params.contains(&"g=meta.k8s.io")
                && params.contains(&"v=v1")
        })
}

async fn api_handler(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let identity = parts
        .extensions
        .get::<Identity>()
        .cloned()
        .unwrap_or_else(Identity::anonymous);
    let params: Vec<(String, String)> = Query::try_from_uri(&parts.uri)
        .map(|Query(q)| q)
        .unwrap_or_default();
    // A parameter given twice reads as its first value, as Go's
    // `url.Values.Get` and the API's option decoding read it.
    let mut query: HashMap<String, String> = HashMap::new();
    for (key, value) in &params {
        query.entry(key.clone()).or_insert_with(|| value.clone());
    }
    let body = match axum::body::to_bytes(body, 16 * 1024 * 1024).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::bad_request("the request body could not be read").into_response();
        }
    };
    let path = parts.uri.path();
    let Some(target) = route(path) else {
        return ApiError::no_route().into_response();
    };
    if let Target::Resource {
        rt,
        namespace,
        name,
        subresource,
    } = target
    {
        let request = ResourceRequest {
            rt,
            namespace: namespace.unwrap_or_default(),
            name: name.unwrap_or_default(),
            subresource: subresource.unwrap_or_default(),
            method: parts.method,
            headers: parts.headers,
            query,
            params,
            body,
            identity,
        };
        return resource(&shared, request).await;
    }
    if parts.method != Method::GET {
        return ApiError::method_not_allowed().into_response();
    }
    if let Err(e) = rbac::authorize_path(&shared.auth, &identity, path) {
        return e.into_response();
    }
    let found = match target {
        Target::Version => Some(discovery::version()),
        Target::Health => {
            return (StatusCode::OK, "ok").into_response();
        }
        Target::ApiVersions => Some(discovery::api_versions(&shared.address())),
        Target::GroupList => Some(discovery::group_list()),
        Target::Group(g) => discovery::group(&g),
        Target::ResourceList(g, v) => discovery::resource_list(&g, &v),
        Target::OpenApiV3Root => Some(discovery::openapi_root()),
        Target::OpenApiV3(key) => discovery::openapi_document(&key),
        Target::Resource { .. } => None,
    };
    match found {
        Some(v) => json_response(StatusCode::OK, &v),
        None => ApiError::no_route().into_response(),
    }
}

/// A request on a resource, parsed.
#[derive(Debug)]
struct ResourceRequest {
    rt: &'static ResourceType,
    namespace: String,
    name: String,
    subresource: String,
    method: Method,
    headers: HeaderMap,
    /// The first value of each query parameter.
    query: HashMap<String, String>,
    /// Every query parameter, in order, repeats included.
    params: Vec<(String, String)>,
    body: Bytes,
    identity: Identity,
}

impl ResourceRequest {
    /// The name RBAC judges the request by: a list or watch whose field
    /// selector asks for exactly one `metadata.name` names that object, as
    /// the API server's request info reads it, so `resourceNames` rules
    /// allow `kubectl get deploy web -w` and `rollout status`.
    fn authorized_name(&self, verb: &str) -> &str {
        if !self.name.is_empty() || !matches!(verb, "list" | "watch") {
            return &self.name;
        }
        let selector = self.query.get("fieldSelector").map_or("", String::as_str);
        let mut exact = selector.split(',').filter_map(|term| {
            let (field, value) = term
                .split_once("==")
                .or_else(|| term.split_once('=').filter(|(f, _)| !f.ends_with('!')))?;
            (field.trim() == "metadata.name").then(|| value.trim())
        });
        match (exact.next(), exact.next()) {
            (Some(name), None) if !name.is_empty() && !name.contains(['/', '%']) => name,
            _ => &self.name,
        }
    }

    fn verb(&self) -> &'static str {
        let named = !self.name.is_empty();
        match (&self.method, named) {
            (&Method::GET, true) => "get",
            (&Method::GET, false) if self.watching() => "watch",
            (&Method::GET, false) => "list",
            (&Method::POST, _) => "create",
            (&Method::PUT, _) => "update",
            (&Method::PATCH, _) => "patch",
            (&Method::DELETE, true) => "delete",
            (&Method::DELETE, false) => "deletecollection",
            _ => "",
        }
    }

    /// `?watch=`: any value but `false` or `0` (any case) is true, as the
    /// API's boolean parameters read.
    fn watching(&self) -> bool {
        self.query
            .get("watch")
            .is_some_and(|w| !w.eq_ignore_ascii_case("false") && w != "0")
    }

    /// Every value of a query parameter, in order.
    fn values(&self, key: &str) -> Vec<&str> {
        self.params
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// An integer parameter (`limit`, `timeoutSeconds`) read as Go's
    /// `strconv.ParseInt` reads it; one that is no integer is a 400 with
    /// Go's words, as the API's option decoding answers.
    fn int_param(&self, key: &str) -> Result<Option<i64>, ApiError> {
        let Some(raw) = self.query.get(key) else {
            return Ok(None);
        };
        raw.parse::<i64>().map(Some).map_err(|e| {
            let why = match e.kind() {
                std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                    "value out of range"
                }
                _ => "invalid syntax",
            };
            ApiError::bad_request(format!("strconv.ParseInt: parsing {raw:?}: {why}"))
        })
    }

    /// The options of a create, update or patch, checked as the server
    /// checks them before anything else (an unknown `dryRun` is a 422, never
    /// a write); deletes carry theirs in [`DeleteOptions`].
    fn write(&self, verb: &str) -> Result<Write, ApiError> {
        let kind = match verb {
            "create" => "CreateOptions",
            "update" => "UpdateOptions",
            "patch" => "PatchOptions",
            _ => return Ok(Write::default()),
        };
        Write::from_query(
            kind,
            &self.values("dryRun"),
            self.query.get("fieldValidation").map(String::as_str),
        )
    }

    /// A DELETE's options: from its body, or from its query when it has
    /// none.
    fn delete_options(&self) -> Result<DeleteOptions, ApiError> {
        DeleteOptions::from_request(&self.body, |key| self.values(key))
    }

    /// The body of a create or update as JSON: sent as JSON, YAML, or
    /// protobuf (what kubectl's typed clients send for `kubectl create
    /// deployment|namespace|role|...` and `kubectl auth`), decoded by
    /// `protobuf.rs` into the JSON a JSON client would have sent. A
    /// protobuf kind or field the sandbox has no schema for is 415, with a
    /// message saying to send JSON.
    fn body_json(&self) -> Result<Value, ApiError> {
        let cannot = |e: &dyn std::fmt::Display| {
            ApiError::bad_request(format!(
                "{} in version \"{}\" cannot be handled as a {}: {e}",
                self.rt.kind, self.rt.version, self.rt.kind
            ))
        };
        let essence = self
            .content_type()
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "" | "application/json" | "*/*" => {
                serde_json::from_slice(&self.body).map_err(|e| cannot(&e))
            }
            "application/yaml" => serde_yaml_ng::from_slice(&self.body).map_err(|e| cannot(&e)),
            PROTOBUF => protobuf::decode(&self.body)
                .map_err(|e| e.into_api_error(self.rt.kind, self.rt.version)),
            _ => Err(ApiError::unsupported_media_type(BODY_TYPES)),
        }
    }

    fn content_type(&self) -> &str {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

async fn resource(shared: &Arc<Shared>, req: ResourceRequest) -> Response {
    let verb = req.verb();
    if verb.is_empty()
        || (!req.subresource.is_empty() && !matches!(verb, "get" | "update" | "patch"))
        || (req.subresource.is_empty() && !req.rt.verbs().contains(&verb))
    {
        return ApiError::method_not_allowed().into_response();
    }
    if req.rt.behaviour == Behaviour::Review {
        return review(shared, &req, verb);
    }
    {
        let store = shared.lock_store();
        let attrs = Attributes {
            verb,
            rt: req.rt,
            subresource: &req.subresource,
            namespace: &req.namespace,
            name: req.authorized_name(verb),
        };
        if let Err(e) = rbac::authorize(&shared.auth, &store, &req.identity, attrs) {
            return e.into_response();
        }
    }
    if verb == "watch" {
        return watch(shared, &req);
    }
    let response = match verb {
        "get" | "list" => read(shared, &req),
        _ => write(shared, &req, verb),
    };
    if matches!(
        verb,
        "create" | "update" | "patch" | "delete" | "deletecollection"
    ) {
        shared.wake.notify_one();
    }
    response
}

/// A review is created and answered, never stored.
fn review(shared: &Shared, req: &ResourceRequest, verb: &str) -> Response {
    if verb != "create" || !req.name.is_empty() {
        return ApiError::method_not_allowed().into_response();
    }
    if let Err(e) = req.write(verb) {
        return e.into_response();
    }
    let store = shared.lock_store();
    let result = req
        .body_json()
        .and_then(|body| review::answer(&shared.auth, &store, &req.identity, req.rt, body));
    result_response(result, StatusCode::CREATED)
}

fn read(shared: &Shared, req: &ResourceRequest) -> Response {
    let store = shared.lock_store();
    let table = wants_table(&req.headers);
    let include = IncludeObject::parse(req.query.get("includeObject").map(String::as_str));
    let revision = store.revision().to_string();
    if !req.name.is_empty() {
        let result = match req.subresource.as_str() {
            "scale" => api::get_scale(&store, req.rt, &req.namespace, &req.name).map(Arc::new),
            _ => store
                .shared(req.rt, &req.namespace, &req.name)
                .cloned()
                .ok_or_else(|| ApiError::not_found(req.rt, &req.name)),
        };
        return match result {
            Ok(obj) if table && req.subresource.is_empty() => table_response(table::table(
                req.rt,
                std::slice::from_ref(&*obj),
                str_at(&obj, "/metadata/resourceVersion"),
                include,
            )),
            other => result_response(other, StatusCode::OK),
        };
    }
    let ListOptions {
        selected, limit, ..
    } = match list_options(req) {
        Ok(o) => o,
        Err(e) => return e.into_response(),
    };
    let namespace = (!req.namespace.is_empty()).then_some(req.namespace.as_str());
    let mut items: Vec<Value> = store
        .list(req.rt, namespace)
        .into_iter()
        .filter(|o| selected.matches(o))
        .cloned()
        .collect();
    // Paging: `continue` holds the key of the last item returned, so an
    // item deleted or added before it moves nothing on the next page.
    // As storage reads it: the token first, then the resourceVersion, which
    // a continued list may not name (a page is of the first page's version).
    if let Some(token) = req.query.get("continue").filter(|c| !c.is_empty()) {
        let after = match paging::decode(token) {
            Ok(after) => after,
            Err(why) => {
                return ApiError::bad_request(format!("invalid continue token: {why}"))
                    .into_response();
            }
        };
        if req
            .query
            .get("resourceVersion")
            .is_some_and(|rv| !rv.is_empty() && rv != "0")
        {
            return ApiError::bad_request(
                "specifying resource version is not allowed when using continue",
            )
            .into_response();
        }
        items.retain(|o| paging::key_of(o) > after.as_key());
    }
    let limit = limit
        .and_then(|l| usize::try_from(l).ok())
        .filter(|l| *l > 0);
    let mut metadata = json!({"resourceVersion": revision});
    if let Some(limit) = limit
        && items.len() > limit
    {
        let remaining = items.len() - limit;
        items.truncate(limit);
        if let Some(last) = items.last() {
            metadata["continue"] = json!(paging::encode(last, &revision));
        }
        metadata["remainingItemCount"] = json!(remaining);
    }
    if table {
        let mut t = table::table(req.rt, &items, &revision, include);
        t["metadata"] = metadata;
        return table_response(t);
    }
    let list = json!({
        "kind": format!("{}List", req.rt.kind),
        "apiVersion": req.rt.api_version(),
        "metadata": metadata,
        "items": items.iter().map(api::list_item).collect::<Vec<_>>(),
    });
    json_response(StatusCode::OK, &list)
}

fn table_response(t: Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, TABLE_TYPE)],
        t.to_string(),
    )
        .into_response()
}

/// A list's or watch's options, decoded as the API decodes `ListOptions`
/// (in its field order: selectors, then `timeoutSeconds`, then `limit`);
/// one that does not decode is a 400.
#[derive(Debug)]
struct ListOptions {
    selected: Selection,
    timeout_seconds: Option<i64>,
    limit: Option<i64>,
}

fn list_options(req: &ResourceRequest) -> Result<ListOptions, ApiError> {
    Ok(ListOptions {
        selected: select(req)?,
        timeout_seconds: req.int_param("timeoutSeconds")?,
        limit: req.int_param("limit")?,
    })
}

/// Label and field selectors of a list or watch.
#[derive(Debug, Default)]
struct Selection {
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Selection {
    fn matches(&self, object: &Value) -> bool {
        self.labels
            .matches(&super::meta::string_map(object.pointer("/metadata/labels")))
            && self.fields.matches(object)
    }
}

fn select(req: &ResourceRequest) -> Result<Selection, ApiError> {
    Ok(Selection {
        labels: LabelSelector::parse(req.query.get("labelSelector").map_or("", String::as_str))?,
        fields: FieldSelector::parse(
            req.query.get("fieldSelector").map_or("", String::as_str),
            req.rt,
        )?,
    })
}

/// A write, with the warnings it produced as `Warning` headers.
fn write(shared: &Shared, req: &ResourceRequest, verb: &str) -> Response {
    let mut opts = match req.write(verb) {
        Ok(opts) => opts,
        Err(e) => return e.into_response(),
    };
    let mut response = write_with(shared, req, verb, &mut opts);
    for warning in &opts.warnings {
        if let Ok(v) = HeaderValue::from_str(&format!("299 - {warning:?}")) {
            response.headers_mut().append(header::WARNING, v);
        }
    }
    response
}

fn write_with(shared: &Shared, req: &ResourceRequest, verb: &str, opts: &mut Write) -> Response {
    let mut store = shared.lock_store();
    let rt = req.rt;
    let (ns, name) = (req.namespace.as_str(), req.name.as_str());
    let status_sub = req.subresource == "status";
    match (verb, req.subresource.as_str()) {
        ("create", _) => {
            let result = req
                .body_json()
                .and_then(|body| api::create(&mut store, rt, ns, body, opts));
            result_response(result, StatusCode::CREATED)
        }
        ("update", "scale") => {
            let result = req.body_json().and_then(|body| {
                api::write_scale(&mut store, rt, ns, name, ScaleWrite::Replace(body), opts)
            });
            result_response(result, StatusCode::OK)
        }
        ("update", _) => {
            let result = req
                .body_json()
                .and_then(|body| api::update(&mut store, rt, ns, name, body, opts, status_sub));
            result_response(result, StatusCode::OK)
        }
        ("patch", sub) => {
            let kind = match PatchKind::from_content_type(req.content_type()) {
                Ok(k) => k,
                Err(e) => return e.into_response(),
            };
            if sub == "scale" {
                let scale = ScaleWrite::Patch(kind, &req.body);
                let result = api::write_scale(&mut store, rt, ns, name, scale, opts);
                result_response(result, StatusCode::OK)
            } else {
                let result =
                    api::patch(&mut store, rt, ns, name, kind, &req.body, opts, status_sub);
                result_response(result, StatusCode::OK)
            }
        }
        ("delete", _) => {
            let result = req
                .delete_options()
                .and_then(|options| api::delete(&mut store, rt, ns, name, &options));
            result_response(result, StatusCode::OK)
        }
        ("deletecollection", _) => {
            let selected = match select(req) {
                Ok(s) => s,
                Err(e) => return e.into_response(),
            };
            let dry_run = match req.delete_options() {
                Ok(options) => options.dry_run,
                Err(e) => return e.into_response(),
            };
            let namespace = (!ns.is_empty()).then_some(ns);
            let names: Vec<(String, Value)> = store
                .list(rt, namespace)
                .into_iter()
                .filter(|o| selected.matches(o))
                .map(|o| (str_at(o, "/metadata/name").to_owned(), o.clone()))
                .collect();
            let mut items = Vec::new();
            for (n, object) in names {
                let object_ns = str_at(&object, "/metadata/namespace").to_owned();
                let options = DeleteOptions {
                    dry_run,
                    ..DeleteOptions::default()
                };
                if api::delete(&mut store, rt, &object_ns, &n, &options).is_ok() {
                    items.push(api::list_item(&object));
                }
            }
            let list = json!({
                "kind": format!("{}List", rt.kind),
                "apiVersion": rt.api_version(),
                "metadata": {"resourceVersion": store.revision().to_string()},
                "items": items,
            });
            json_response(StatusCode::OK, &list)
        }
        _ => ApiError::method_not_allowed().into_response(),
    }
}

// ---------------------------------------------------------------- watch

/// How watch events carry their objects: as stored, or (for `kubectl get
/// -w`) as one-row `Table`s.
#[derive(Debug, Clone, Copy)]
struct WatchFormat {
    rt: &'static ResourceType,
    table: Option<IncludeObject>,
}

impl WatchFormat {
    fn line(self, kind: &str, object: &Value) -> Bytes {
        /// Serialized by reference: the object is not copied for each
        /// watcher.
        #[derive(serde::Serialize)]
        struct Line<'a> {
            #[serde(rename = "type")]
            kind: &'a str,
            object: &'a Value,
        }
        let table;
        let object = match self.table {
            Some(include) if kind != "ERROR" => {
                table = table::table(
                    self.rt,
                    std::slice::from_ref(object),
                    str_at(object, "/metadata/resourceVersion"),
                    include,
                );
                &table
            }
            _ => object,
        };
        let mut line = serde_json::to_vec(&Line { kind, object }).unwrap_or_default();
        line.push(b'\n');
        Bytes::from(line)
    }
}

/// `?watch=true`: newline-delimited watch events, from the requested
/// resourceVersion (or from a synthetic ADDED per existing object when none
/// is given), until `timeoutSeconds` or shutdown.
fn watch(shared: &Arc<Shared>, req: &ResourceRequest) -> Response {
    let ListOptions {
        selected,
        timeout_seconds,
        ..
    } = match list_options(req) {
        Ok(o) => o,
        Err(e) => return e.into_response(),
    };
    let rt = req.rt;
    let namespace = req.namespace.clone();
    let in_scope = move |e: &Event, selection: &Selection| {
        std::ptr::eq(e.rt, rt)
            && (namespace.is_empty() || str_at(&e.object, "/metadata/namespace") == namespace)
            && selection.matches(&e.object)
    };
    let format = WatchFormat {
        rt,
        table: wants_table(&req.headers)
            .then(|| IncludeObject::parse(req.query.get("includeObject").map(String::as_str))),
    };
    let requested = req
        .query
        .get("resourceVersion")
        .cloned()
        .unwrap_or_default();
    let (initial, subscription) = {
        let store = shared.lock_store();
        let since = match requested.as_str() {
            "" | "0" => store.revision(),
            rv => match rv.parse::<u64>() {
                Ok(n) => n,
                Err(_) => {
                    return ApiError::bad_request(format!(
                        "resourceVersion: Invalid value: {rv:?}: must be an integer"
                    ))
                    .into_response();
                }
            },
        };
        let initial: Vec<Bytes> = if matches!(requested.as_str(), "" | "0") {
            let ns = (!req.namespace.is_empty()).then_some(req.namespace.as_str());
            store
                .list(rt, ns)
                .into_iter()
                .filter(|o| selected.matches(o))
                .map(|o| format.line("ADDED", o))
                .collect()
        } else {
            Vec::new()
        };
        match store.subscribe(since) {
            Ok(s) => (initial, Some(s)),
            Err(e) => (vec![format.line("ERROR", &e.status())], None),
        }
    };
    // No timeout, or 0, is the server's own; a negative one ends at once.
    let timeout = match timeout_seconds {
        None | Some(0) => DEFAULT_WATCH,
        Some(n) => Duration::from_secs(u64::try_from(n).unwrap_or(0)),
    };
    let mut stopped = shared.stopping.subscribe();
    let stream = async_stream(move |tx| async move {
        for line in initial {
            if tx.send(Ok(line)).await.is_err() {
                return;
            }
        }
        let Some(sub) = subscription else { return };
        for event in sub.backlog.iter().filter(|e| in_scope(e, &selected)) {
            if tx
                .send(Ok(format.line(event.kind.as_str(), &event.object_as_sent())))
                .await
                .is_err()
            {
                return;
            }
        }
        let mut live = sub.live;
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                () = &mut deadline => return,
                _ = stopped.changed() => return,
                event = live.recv() => match event {
                    Ok(e) if in_scope(&e, &selected) => {
                        if tx.send(Ok(format.line(e.kind.as_str(), &e.object_as_sent()))).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    // A watcher too slow to keep up is cut off; its client re-lists.
                    Err(RecvError::Lagged(_) | RecvError::Closed) => return,
                },
            }
        }
    });
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-cache, private"),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

/// A stream fed by a task through a small channel; the task ends when the
/// client goes away (the receiver is dropped).
fn async_stream<F, Fut>(producer: F) -> impl futures::Stream<Item = Result<Bytes, io::Error>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<Bytes, io::Error>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(producer(tx));
    futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
}

// ---------------------------------------------------------------- sockets

/// A listener whose connections can be cut from inside a handler, for the
/// "close without answering" fault.
#[derive(Debug)]
pub(crate) struct KillableListener(pub(crate) TcpListener);

impl axum::serve::Listener for KillableListener {
    type Io = KillableStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    return (
                        KillableStream {
                            stream,
                            killed: Arc::new(AtomicBool::new(false)),
                        },
                        addr,
                    );
                }
                // Out of descriptors and the like: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// A TCP stream that fails every read and write once killed, so the server
/// drops the connection without writing the response.
#[derive(Debug)]
pub(crate) struct KillableStream {
    stream: TcpStream,
    killed: Arc<AtomicBool>,
}

fn aborted() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "closed by an injected fault",
    )
}

impl AsyncRead for KillableStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.killed.load(Ordering::SeqCst) {
            return Poll::Ready(Err(aborted()));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.killed.load(Ordering::SeqCst) {
            return Poll::Ready(Err(aborted()));
        }
        Pin::new(&mut this.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.killed.load(Ordering::SeqCst) {
            return Poll::Ready(Err(aborted()));
        }
        Pin::new(&mut this.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.killed.load(Ordering::SeqCst) {
            return Poll::Ready(Err(aborted()));
        }
        Pin::new(&mut this.stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// The handle a handler gets to its own connection.
#[derive(Debug, Clone)]
pub(crate) struct ConnHandle(Arc<AtomicBool>);

impl ConnHandle {
    fn kill(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl Connected<IncomingStream<'_, KillableListener>> for ConnHandle {
    fn connect_info(stream: IncomingStream<'_, KillableListener>) -> Self {
        Self(stream.io().killed.clone())
    }
}

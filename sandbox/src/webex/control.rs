//! The sandbox's own endpoints, under `/_sandbox/` (a prefix Webex never
//! uses), and the layer that records every API request:
//!
//! - `GET /_sandbox/info`: API URL, default room, bot and people;
//! - `GET|DELETE /_sandbox/requests[?method=&path=&actor=&after=]`: every `/v1`
//!   request (`after`: only those with a greater `seq`, for polling);
//! - `GET|DELETE /_sandbox/deliveries`: every webhook delivery;
//! - `GET|POST|DELETE /_sandbox/faults`: see [`faults`](super::faults).
//!
//! They need no token: they are the test's hands, not a client's.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::http::header::HOST;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::deliveries::Delivery;
use super::error::ApiError;
use super::faults::AppliedFault;
use super::ids;
use super::paging::ListQuery;
use super::people::{Person, bearer};
use super::server::TrackingId;
use super::store::Shared;

/// Largest request body the sandbox reads.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// One API request as the sandbox saw it. Tokens are never recorded; the
/// caller appears as the email its token belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedRequest {
    /// Position among everything the sandbox records.
    pub seq: u64,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// The email of the caller, if the token was a known one.
    pub actor: Option<String>,
    /// The body: JSON if it parses, else a string; `None` if empty.
    pub body: Option<serde_json::Value>,
    /// The status the sandbox answered.
    pub status: u16,
    pub tracking_id: String,
    /// The injected fault that shaped the answer, if any.
    pub fault: Option<String>,
    pub received: String,
}

/// Records each `/v1` request with its answer's status.
pub(crate) async fn record(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    if request.uri().path().starts_with("/_sandbox") {
        return next.run(request).await;
    }
    let received = ids::now();
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return ApiError::PayloadTooLarge.into_response();
    };
    let actor = bearer(&parts.headers).and_then(|token| {
        shared
            .lock()
            .person_by_token(token)
            .map(|p| p.email().to_owned())
    });
    let tracking_id = parts
        .extensions
        .get::<TrackingId>()
        .map(|t| t.0.clone())
        .unwrap_or_default();
    let method = parts.method.to_string();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().map(str::to_owned);
    let recorded_body = (!bytes.is_empty()).then(|| {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned())
        })
    });
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let fault = response
        .extensions()
        .get::<AppliedFault>()
        .map(|f| f.0.clone());
    let status = response.status().as_u16();
    shared.update(|store| {
        let seq = store.next_seq();
        store.requests.push(RecordedRequest {
            seq,
            method,
            path,
            query,
            actor,
            body: recorded_body,
            status,
            tracking_id,
            fault,
            received,
        });
    });
    response
}

/// `GET /_sandbox/requests?method=&path=&actor=&after=`
///
/// `after` is a `seq` already seen: a poller reads only what is new, so
/// polling costs what arrived since, not everything recorded.
pub(crate) async fn requests(
    State(shared): State<Arc<Shared>>,
    query: ListQuery,
) -> Result<Json<Vec<RecordedRequest>>, ApiError> {
    let method = query.get("method");
    let path = query.get("path");
    let actor = query.get("actor");
    let after = query
        .get("after")
        .map(|a| {
            a.parse::<u64>().map_err(|_| {
                ApiError::bad_request(format!("after must be a seq (a whole number), not {a:?}."))
            })
        })
        .transpose()?;
    let store = shared.lock();
    // Requests are recorded in `seq` order.
    let start = after.map_or(0, |after| {
        store.requests.partition_point(|r| r.seq <= after)
    });
    Ok(Json(
        store.requests[start..]
            .iter()
            .filter(|r| {
                method
                    .as_ref()
                    .is_none_or(|m| r.method.eq_ignore_ascii_case(m))
            })
            .filter(|r| path.as_ref().is_none_or(|p| &r.path == p))
            .filter(|r| actor.as_ref().is_none_or(|a| r.actor.as_ref() == Some(a)))
            .cloned()
            .collect(),
    ))
}

pub(crate) async fn clear_requests(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.update(|s| s.requests.clear());
    StatusCode::NO_CONTENT
}

/// `GET /_sandbox/deliveries`
pub(crate) async fn deliveries(State(shared): State<Arc<Shared>>) -> Json<Vec<Delivery>> {
    Json(shared.lock().deliveries.clone())
}

pub(crate) async fn clear_deliveries(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.update(|s| s.deliveries.clear());
    StatusCode::NO_CONTENT
}

/// What a demo or a test in another language needs to start.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Info {
    api_url: String,
    default_room_id: String,
    bot: Option<Person>,
    people: Vec<Person>,
}

/// `GET /_sandbox/info`
pub(crate) async fn info(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let host = request
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .map_or_else(|| shared.addr.to_string(), str::to_owned);
    let store = shared.lock();
    Json(Info {
        // As the SDKs take it: their base URL ends in a slash.
        api_url: format!("http://{host}/v1/"),
        default_room_id: store.default_room_id.clone(),
        bot: store.bot().cloned(),
        people: store.people.iter().map(|r| r.person.clone()).collect(),
    })
    .into_response()
}

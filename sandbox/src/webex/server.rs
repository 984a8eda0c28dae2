//! The HTTP surface: every route, and the layers around them. From the
//! outside in: the tracking layer (a `trackingid` header on every response,
//! and Webex's error body on every error), the request recorder, the fault
//! injector, then the handlers.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::Response;
use axum::routing::get;

use super::error::{ApiError, ErrorMessage};
use super::store::Shared;
use super::{cards, control, faults, ids, messages, people, rooms, webhooks};

/// The tracking id of the request being served.
#[derive(Debug, Clone)]
pub(crate) struct TrackingId(pub(crate) String);

/// Every route, without a socket.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/people/me", get(people::me))
        .route("/v1/people", get(people::list))
        .route("/v1/people/{id}", get(people::get))
        .route("/v1/rooms", get(rooms::list).post(rooms::create))
        .route(
            "/v1/rooms/{id}",
            get(rooms::get).put(rooms::update).delete(rooms::delete),
        )
        .route(
            "/v1/memberships",
            get(rooms::list_members).post(rooms::add_member),
        )
        .route(
            "/v1/memberships/{id}",
            get(rooms::get_member)
                .put(rooms::update_member)
                .delete(rooms::remove_member),
        )
        .route("/v1/messages", get(messages::list).post(messages::create))
        // A fixed segment wins over `{id}` in axum's router, and no message
        // id is ever the word "direct".
        .route("/v1/messages/direct", get(messages::list_direct))
        .route(
            "/v1/messages/{id}",
            get(messages::get)
                .put(messages::update)
                .delete(messages::delete),
        )
        .route("/v1/webhooks", get(webhooks::list).post(webhooks::create))
        .route(
            "/v1/webhooks/{id}",
            get(webhooks::get)
                .put(webhooks::update)
                .delete(webhooks::delete),
        )
        .route("/v1/attachment/actions", axum::routing::post(cards::create))
        .route("/v1/attachment/actions/{id}", get(cards::get))
        .route("/_sandbox/info", get(control::info))
        .route(
            "/_sandbox/requests",
            get(control::requests).delete(control::clear_requests),
        )
        .route(
            "/_sandbox/deliveries",
            get(control::deliveries).delete(control::clear_deliveries),
        )
        .route(
            "/_sandbox/faults",
            get(faults::list).post(faults::add).delete(faults::clear),
        )
        .fallback(not_found)
        .layer(from_fn_with_state(shared.clone(), faults::layer))
        .layer(from_fn_with_state(shared.clone(), control::record))
        .layer(from_fn(tracking))
        .with_state(shared)
}

/// Webex's resources the sandbox does not serve, by their first segment
/// under `/v1/`.
const NOT_SERVED: &[&str] = &[
    "teams",
    "team",
    "meetings",
    "meetingPreferences",
    "recordings",
    "events",
    "licenses",
    "roles",
    "organizations",
    "devices",
    "workspaces",
    "contents",
];

/// Webex's own 404 for a path it has no resource at; a resource Webex has
/// and the sandbox lacks gets a 404 that says so, rather than one that
/// reads as a wrong id.
async fn not_found(uri: axum::http::Uri) -> ApiError {
    let path = uri.path();
    let mut segments = path.trim_start_matches("/v1/").split('/');
    let first = segments.next().unwrap_or_default();
    let meeting_info = first == "rooms" && path.ends_with("/meetingInfo");
    if path.starts_with("/v1/") && (NOT_SERVED.contains(&first) || meeting_info) {
        return ApiError::not_found(format!(
            "The Webex sandbox does not serve {path}; it serves people, rooms, memberships, messages, webhooks and attachment actions."
        ));
    }
    ApiError::not_found("The requested resource could not be found.")
}

/// Gives each request a tracking id, returns it in the `trackingid` header,
/// and turns every error into Webex's body carrying the same id.
async fn tracking(mut request: Request, next: Next) -> Response {
    let id = ids::tracking_id();
    request.extensions_mut().insert(TrackingId(id.clone()));
    let response = next.run(request).await;
    let mut response = if response.status().is_client_error() || response.status().is_server_error()
    {
        webex_error(response, &id).await
    } else {
        response
    };
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("trackingid", value);
    }
    response
}

async fn webex_error(response: Response, tracking_id: &str) -> Response {
    let (mut parts, body) = response.into_parts();
    let message = match parts.extensions.get::<ErrorMessage>() {
        Some(m) => m.0.clone(),
        // axum's own rejections (bad query, wrong method) come as text.
        None => {
            let bytes = axum::body::to_bytes(body, 64 * 1024)
                .await
                .unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes).trim().to_owned();
            if text.is_empty() {
                parts
                    .status
                    .canonical_reason()
                    .unwrap_or("Error")
                    .to_owned()
            } else {
                text
            }
        }
    };
    let body = serde_json::json!({
        "message": message,
        "errors": [{ "description": message }],
        "trackingId": tracking_id,
    });
    parts.headers.remove(CONTENT_LENGTH);
    parts
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Response::from_parts(parts, Body::from(body.to_string()))
}

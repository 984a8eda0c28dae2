//! Webhook intake: `POST /webhooks/webex` (and `POST /`, the seed's URL).
//!
//! Verify the HMAC-SHA1 of the raw body against `X-Spark-Signature` in
//! constant time, check the body, and publish the verified envelope to
//! CHATOPS_EVENTS with `Nats-Msg-Id` = the message id; answer 200 once
//! JetStream has stored it. Intake never calls Webex: Webex does not retry
//! deliveries and disables a webhook after 100 failures in five minutes, so
//! the answer must be fast and must not depend on anything but NATS.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use async_nats::HeaderMap;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap as HttpHeaders, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chatops_shared::secret::ExposeSecret;
use chatops_shared::{CommandId, subjects};
use hmac::{KeyInit, Mac};
use serde::Deserialize;

use crate::startup::AppState;

/// The largest body accepted; Webex envelopes are about 1 KiB.
pub const MAX_BODY: usize = 64 * 1024;

/// A body declared larger than this is refused without reading any of it.
const REFUSED_UNREAD: u64 = 1024 * 1024;

pub const SIGNATURE_HEADER: &str = "x-spark-signature";

/// How long intake keeps trying to store an event before answering 503.
const PUBLISH_BUDGET: std::time::Duration = std::time::Duration::from_secs(8);

/// A Webex webhook delivery. Only what the gateway uses is read; unknown
/// fields are ignored and optional ones may be absent. Strings borrow from
/// the body where they hold no escapes, so parsing one allocates nothing.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope<'a> {
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    #[serde(borrow)]
    pub resource: Cow<'a, str>,
    #[serde(borrow)]
    pub event: Cow<'a, str>,
    #[serde(default, borrow)]
    pub actor_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub data: EnvelopeData<'a>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvelopeData<'a> {
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    #[serde(default, borrow)]
    pub room_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub person_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub person_email: Option<Cow<'a, str>>,
}

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("missing or invalid signature")]
    Unauthorized,
    #[error("the body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    #[error("the body is not a Webex webhook envelope: {0}")]
    BadEnvelope(String),
    #[error("the event could not be queued")]
    Unavailable(#[source] async_nats::Error),
}

impl IntakeError {
    fn label(&self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::BadEnvelope(_) => "bad_request",
            Self::Unavailable(_) => "unavailable",
        }
    }
}

impl IntoResponse for IntakeError {
    fn into_response(self) -> Response {
        match self {
            // No detail: a prober learns nothing about why.
            Self::Unauthorized => StatusCode::UNAUTHORIZED.into_response(),
            Self::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, self.to_string()).into_response()
            }
            Self::BadEnvelope(_) => (StatusCode::BAD_REQUEST, self.to_string()).into_response(),
            Self::Unavailable(ref e) => {
                tracing::error!(error = %e, "cannot queue a webhook event");
                StatusCode::SERVICE_UNAVAILABLE.into_response()
            }
        }
    }
}

/// Whether `signature` is the lowercase hex HMAC-SHA1 of `body` under `secret`.
/// The comparison is constant time (`Mac::verify_slice`).
pub fn verify_signature(secret: &[u8], body: &[u8], signature: &str) -> bool {
    // Webex sends lowercase hex; anything else is not its signature.
    if signature.len() != 40
        || !signature
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return false;
    }
    let mut expected = [0u8; 20];
    if hex::decode_to_slice(signature, &mut expected).is_err() {
        return false;
    }
    let Ok(mut mac) = hmac::Hmac::<sha1::Sha1>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// The lowercase hex HMAC-SHA1 Webex would send (for tests and tools).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Whether a `Content-Type` value names JSON: `application/json` or
/// `application/<anything>+json`, any case, parameters ignored.
fn is_json_media_type(value: &str) -> bool {
    let media = value.split(';').next().unwrap_or_default().trim();
    let Some((kind, subtype)) = media.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case("json")
            || subtype
                .get(subtype.len().saturating_sub(5)..)
                .is_some_and(|end| end.eq_ignore_ascii_case("+json")))
}

/// What intake did with one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Accepted {
    Queued,
    Duplicate,
    Ignored,
}

pub async fn webhook(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let started = Instant::now();
    // Past the in-flight cap, answer at once rather than queue.
    let Some(_slot) = state.shedder.admit() else {
        state
            .metrics
            .webhook("shed", started.elapsed().as_secs_f64());
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
        )
            .into_response();
    };
    // The request's own headers: a `HeaderMap` extractor would copy them.
    let (parts, body) = request.into_parts();
    // Said to be far too large: refused before it is read, with no wait
    // for a body that may never come. (One a little over is read up to
    // the bound first, so that the client, still sending, gets the answer
    // rather than a reset connection.)
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > REFUSED_UNREAD) {
        state
            .metrics
            .webhook("too_large", started.elapsed().as_secs_f64());
        return (StatusCode::PAYLOAD_TOO_LARGE, "the body is over 64 KiB").into_response();
    }
    // The whole body within the deadline: a trickling client cannot hold a
    // slot for long.
    let body = match tokio::time::timeout(
        state.limits.body_timeout,
        axum::body::to_bytes(body, MAX_BODY),
    )
    .await
    {
        Ok(Ok(body)) => body,
        Ok(Err(_)) => {
            state
                .metrics
                .webhook("too_large", started.elapsed().as_secs_f64());
            return (StatusCode::PAYLOAD_TOO_LARGE, "the body is over 64 KiB").into_response();
        }
        Err(_) => {
            state
                .metrics
                .webhook("timeout", started.elapsed().as_secs_f64());
            return (
                StatusCode::REQUEST_TIMEOUT,
                "the body did not arrive in time",
            )
                .into_response();
        }
    };
    let outcome = accept(&state, &parts.headers, &body).await;
    let label = match &outcome {
        Ok(Accepted::Queued) => "queued",
        Ok(Accepted::Duplicate) => "duplicate",
        Ok(Accepted::Ignored) => "ignored",
        Err(e) => e.label(),
    };
    state
        .metrics
        .webhook(label, started.elapsed().as_secs_f64());
    match outcome {
        Ok(_) => StatusCode::OK.into_response(),
        Err(e) => {
            tracing::info!(outcome = label, "webhook refused");
            e.into_response()
        }
    }
}

async fn accept(
    state: &AppState,
    headers: &HttpHeaders,
    body: &Bytes,
) -> Result<Accepted, IntakeError> {
    let signature = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or(IntakeError::Unauthorized)?;
    if !verify_signature(
        state.webhook_secret.expose_secret().as_bytes(),
        body,
        signature,
    ) {
        return Err(IntakeError::Unauthorized);
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(is_json_media_type);
    if !is_json {
        return Err(IntakeError::UnsupportedMediaType);
    }
    let envelope: Envelope<'_> =
        serde_json::from_slice(body).map_err(|e| IntakeError::BadEnvelope(e.to_string()))?;
    if envelope.resource != "messages" || envelope.event != "created" {
        tracing::debug!(resource = %envelope.resource, event = %envelope.event, "ignoring an event the bot does not handle");
        return Ok(Accepted::Ignored);
    }
    if envelope.data.id.is_empty() || envelope.data.id.len() > 512 {
        return Err(IntakeError::BadEnvelope(
            "data.id must be a Webex message id".to_owned(),
        ));
    }
    let command_id = CommandId::new();
    let command_id_text = command_id.to_string();
    let headers = || event_headers(&envelope.data.id, &command_id_text);
    // Webex never retries a delivery: ride out a NATS restart or leader
    // election briefly rather than answer 503 at once.
    let ack = chatops_shared::nats::publish_batched_durably(
        &state.batcher,
        async_nats::Subject::from_static(subjects::EVENTS),
        headers,
        body.clone(),
        PUBLISH_BUDGET,
    )
    .await
    .map_err(IntakeError::Unavailable)?;
    // Debug, not info: at tens of thousands of webhooks a second this line
    // was 7% of the gateway's CPU. The event keeps its command id in the
    // stream, and ingestion logs it at info.
    tracing::debug!(command_id = %command_id, message_id = %envelope.data.id, seq = ack.sequence, duplicate = ack.duplicate, "webhook queued");
    Ok(if ack.duplicate {
        Accepted::Duplicate
    } else {
        Accepted::Queued
    })
}

/// An event's headers: de-duplicated by its Webex message id, and carrying
/// the id its command will have.
pub fn event_headers(message_id: &str, command_id: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(subjects::MSG_ID_HEADER, message_id);
    headers.insert(subjects::COMMAND_ID_HEADER, command_id);
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_media_types_are_recognised_in_any_case() {
        for yes in [
            "application/json",
            "Application/JSON; charset=utf-8",
            " application/json ",
            "application/vnd.webex+json",
            "APPLICATION/PROBLEM+JSON;x=1",
        ] {
            assert!(is_json_media_type(yes), "{yes}");
        }
        for no in [
            "",
            "text/plain",
            "application/xml",
            "application/jsonp",
            "text/json",
            "application",
            "application/+jso",
            "multipart/form-data; boundary=json",
        ] {
            assert!(!is_json_media_type(no), "{no}");
        }
    }

    #[test]
    fn signatures_are_checked_over_the_exact_bytes() {
        let body = br#"{"id":"1","resource":"messages"}"#;
        let sig = sign(b"secret", body);
        assert_eq!(sig.len(), 40);
        assert!(verify_signature(b"secret", body, &sig));
        assert!(!verify_signature(b"Secret", body, &sig), "another secret");
        assert!(
            !verify_signature(b"secret", br#"{"id":"1", "resource":"messages"}"#, &sig),
            "re-serialised body"
        );
        assert!(
            !verify_signature(b"secret", body, &sig.to_uppercase()),
            "wrong case"
        );
        assert!(!verify_signature(b"secret", body, &sig[..39]), "truncated");
        assert!(!verify_signature(b"secret", body, ""), "empty");
        assert!(
            !verify_signature(b"secret", body, &format!("sha1={sig}")),
            "prefixed"
        );
        // A known vector: HMAC-SHA1("key", "The quick brown fox jumps over the lazy dog").
        assert_eq!(
            sign(b"key", b"The quick brown fox jumps over the lazy dog"),
            "de7c9b85b8b78aa6bc8a7a36f70a90701c9db4d9"
        );
    }
}

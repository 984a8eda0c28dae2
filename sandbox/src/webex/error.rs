//! The one error type of the API surface and how it is rendered.
//!
//! Handlers return [`ApiError`]; its response carries the message as an
//! extension and the tracking layer in `server` writes Webex's body
//! (`{"message", "errors": [{"description"}], "trackingId"}`), so every
//! error, including axum's own rejections, has the same shape and the same
//! tracking id as the `trackingid` header.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Webex's wording for a missing or unknown token.
pub(crate) const UNAUTHORIZED: &str =
    "The request requires a valid access token set in the Authorization request header.";

/// Longest `text` or `markdown` Webex accepts, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 7439;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ApiError {
    #[error("{UNAUTHORIZED}")]
    Unauthorized,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("The request body is too large.")]
    PayloadTooLarge,
    #[error("Too many requests have been sent in a given amount of time.")]
    RateLimited { retry_after_secs: u64 },
    /// A status injected through the fault controls.
    #[error("{}", .0.canonical_reason().unwrap_or("Injected failure"))]
    Injected(StatusCode),
}

impl ApiError {
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest(message.into())
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound(message.into())
    }

    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        Self::Forbidden(message.into())
    }

    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Injected(status) => *status,
        }
    }
}

/// The message an error response should carry; read by the tracking layer.
#[derive(Debug, Clone)]
pub(crate) struct ErrorMessage(pub(crate) String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.status().into_response();
        if let Self::RateLimited { retry_after_secs } = &self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        }
        response
            .extensions_mut()
            .insert(ErrorMessage(self.to_string()));
        response
    }
}

/// Checks one message body field against Webex's size limit.
pub(crate) fn check_length(field: &str, value: Option<&str>) -> Result<(), ApiError> {
    match value {
        Some(v) if v.len() > MAX_MESSAGE_BYTES => Err(ApiError::bad_request(format!(
            "The {field} is {} bytes; the maximum is {MAX_MESSAGE_BYTES} bytes.",
            v.len()
        ))),
        _ => Ok(()),
    }
}

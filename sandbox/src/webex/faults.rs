//! Injected faults: for the next N requests matching a method and a path,
//! answer 429 with `Retry-After`, answer a chosen 4xx/5xx status, or add
//! latency before answering normally. Set from tests with
//! [`WebexSandbox::inject`](super::WebexSandbox::inject) or over HTTP with
//! `POST /_sandbox/faults`:
//!
//! ```json
//! {"method": "POST", "path": "/v1/messages", "times": 2, "fault": "rateLimit", "retryAfter": 1}
//! {"method": "GET", "path": "/v1/messages/*", "fault": "status", "status": 503}
//! {"method": "*", "path": "/v1/*", "fault": "latency", "latencyMs": 1500}
//! ```
//!
//! Faults are checked before authentication, as a real rate limiter would,
//! and never touch `/_sandbox/…`.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::rooms::parse_body;
use super::store::{Shared, Store};

/// What a fault does to a matching request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "fault",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum FaultKind {
    /// `429 Too Many Requests` with `Retry-After: <retry_after>` (seconds).
    RateLimit { retry_after: u64 },
    /// This status (400–599) with Webex's error body.
    Status { status: u16 },
    /// Wait this long, then answer normally.
    Latency { latency_ms: u64 },
}

/// A fault for the next `times` requests matching `method` and `path`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fault {
    /// An HTTP method, or `*` for any.
    #[serde(default = "any_method")]
    pub method: String,
    /// An exact path (`/v1/messages`), or a prefix ending in `*`
    /// (`/v1/messages/*` is any single message).
    pub path: String,
    /// How many matching requests it affects; counts down as they come.
    #[serde(default = "once")]
    pub times: u32,
    #[serde(flatten)]
    pub kind: FaultKind,
}

fn any_method() -> String {
    "*".to_owned()
}

fn once() -> u32 {
    1
}

impl Fault {
    fn new(method: &str, path: &str, kind: FaultKind) -> Self {
        Self {
            method: method.to_ascii_uppercase(),
            path: path.to_owned(),
            times: 1,
            kind,
        }
    }

    /// 429 with `Retry-After` in whole seconds (a fraction rounds up).
    pub fn rate_limit(method: &str, path: &str, retry_after: Duration) -> Self {
        let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
        Self::new(method, path, FaultKind::RateLimit { retry_after: secs })
    }

    /// Any error status, typically 500 or 503.
    pub fn status(method: &str, path: &str, status: u16) -> Self {
        Self::new(method, path, FaultKind::Status { status })
    }

    /// Delay before a normal answer.
    pub fn latency(method: &str, path: &str, latency: Duration) -> Self {
        let ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        Self::new(method, path, FaultKind::Latency { latency_ms: ms })
    }

    /// For the next `n` matching requests instead of one.
    pub fn times(mut self, n: u32) -> Self {
        self.times = n;
        self
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        let method_ok = self.method == "*" || self.method.eq_ignore_ascii_case(method);
        let path_ok = match self.path.strip_suffix('*') {
            Some(prefix) => path.starts_with(prefix),
            None => self.path == path,
        };
        method_ok && path_ok
    }

    pub(crate) fn validate(&self) -> Result<(), ApiError> {
        if !self.path.starts_with('/') {
            return Err(ApiError::bad_request("path must start with /."));
        }
        if let FaultKind::Status { status } = self.kind
            && !(400..=599).contains(&status)
        {
            return Err(ApiError::bad_request("status must be between 400 and 599."));
        }
        Ok(())
    }
}

/// A fault still in force, with how many requests it has left in `times`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ActiveFault {
    id: u64,
    #[serde(flatten)]
    fault: Fault,
}

impl Store {
    pub(crate) fn add_fault(&mut self, fault: Fault) -> ActiveFault {
        let active = ActiveFault {
            id: self.next_seq(),
            fault,
        };
        if active.fault.times > 0 {
            self.faults.push(active.clone());
        }
        active
    }

    /// The first fault matching the request, used up by one.
    fn take_fault(&mut self, method: &str, path: &str) -> Option<FaultKind> {
        let index = self
            .faults
            .iter()
            .position(|f| f.fault.matches(method, path))?;
        let active = self.faults.get_mut(index)?;
        active.fault.times = active.fault.times.saturating_sub(1);
        let kind = active.fault.kind.clone();
        if active.fault.times == 0 {
            self.faults.remove(index);
        }
        Some(kind)
    }
}

/// Marks a response the fault layer shaped, for the request records.
#[derive(Debug, Clone)]
pub(crate) struct AppliedFault(pub(crate) String);

/// The layer that applies faults to `/v1` requests.
pub(crate) async fn layer(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    if request.uri().path().starts_with("/_sandbox") {
        return next.run(request).await;
    }
    let hit = shared
        .lock()
        .take_fault(request.method().as_str(), request.uri().path());
    let (mut response, applied) = match hit {
        None => return next.run(request).await,
        Some(FaultKind::RateLimit { retry_after }) => (
            ApiError::RateLimited {
                retry_after_secs: retry_after,
            }
            .into_response(),
            format!("rateLimit retryAfter={retry_after}"),
        ),
        Some(FaultKind::Status { status }) => {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (
                ApiError::Injected(code).into_response(),
                format!("status {status}"),
            )
        }
        Some(FaultKind::Latency { latency_ms }) => {
            tokio::time::sleep(Duration::from_millis(latency_ms)).await;
            (next.run(request).await, format!("latency {latency_ms}ms"))
        }
    };
    response.extensions_mut().insert(AppliedFault(applied));
    response
}

/// `POST /_sandbox/faults`
pub(crate) async fn add(
    State(shared): State<Arc<Shared>>,
    body: Bytes,
) -> Result<Json<ActiveFault>, ApiError> {
    let fault: Fault = parse_body(&body)?;
    fault.validate()?;
    Ok(Json(shared.update(|s| s.add_fault(fault))))
}

/// `GET /_sandbox/faults`: the faults still in force.
pub(crate) async fn list(State(shared): State<Arc<Shared>>) -> Json<Vec<ActiveFault>> {
    Json(shared.lock().faults.clone())
}

/// `DELETE /_sandbox/faults`
pub(crate) async fn clear(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.update(|s| s.faults.clear());
    StatusCode::NO_CONTENT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_match_method_and_path_or_prefix() {
        let exact = Fault::status("post", "/v1/messages", 503);
        assert!(exact.matches("POST", "/v1/messages"));
        assert!(!exact.matches("GET", "/v1/messages"));
        assert!(!exact.matches("POST", "/v1/messages/X"));
        let prefix = Fault::status("*", "/v1/messages/*", 500);
        assert!(prefix.matches("GET", "/v1/messages/X"));
        assert!(!prefix.matches("GET", "/v1/messages"));
    }

    #[test]
    fn the_json_form_is_flat() {
        let fault: Fault = serde_json::from_str(
            r#"{"method":"GET","path":"/v1/people/me","times":2,"fault":"rateLimit","retryAfter":3}"#,
        )
        .expect("a fault");
        assert_eq!(
            fault,
            Fault::rate_limit("GET", "/v1/people/me", Duration::from_secs(3)).times(2)
        );
        let latency: Fault =
            serde_json::from_str(r#"{"path":"/v1/*","fault":"latency","latencyMs":250}"#)
                .expect("a fault");
        assert_eq!(
            latency,
            Fault::latency("*", "/v1/*", Duration::from_millis(250))
        );
    }

    #[test]
    fn a_fault_is_used_up_after_its_times() {
        let mut store = Store::new();
        store.add_fault(Fault::status("GET", "/v1/x", 500).times(2));
        assert!(store.take_fault("GET", "/v1/x").is_some());
        assert!(store.take_fault("GET", "/v1/y").is_none());
        assert!(store.take_fault("GET", "/v1/x").is_some());
        assert!(store.take_fault("GET", "/v1/x").is_none());
    }
}

//! Injected faults and the request log.
//!
//! A [`Fault`] matches requests by method and path (a prefix, or a glob
//! where `*` matches anything) and, for its next `count` matches, delays
//! them, answers them with an error `Status`, or closes the connection
//! without answering. Every API request is recorded as a
//! [`RecordedRequest`], so tests can count writes.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A fault to inject; build with [`Fault::status`], [`Fault::latency`] or
/// [`Fault::close`], then narrow with [`Fault::method`], [`Fault::path`] and
/// [`Fault::times`]. Also the JSON body of `POST /_sandbox/faults`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    /// HTTP method to match (`PATCH`); any when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Path prefix, or glob with `*`; any when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Answer with this code and the matching `Status` (500 InternalError,
    /// 503 ServiceUnavailable, 429 TooManyRequests, 409 Conflict, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// `Retry-After` seconds (429 and 503 answers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// How many matching requests it affects: 1 when absent, unlimited when
    /// `null`.
    #[serde(default = "one")]
    pub count: Option<u32>,
    /// Delay before answering (or before passing the request on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// Close the connection without answering.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub close: bool,
}

fn one() -> Option<u32> {
    Some(1)
}

impl Fault {
    fn empty() -> Self {
        Self {
            method: None,
            path: None,
            status: None,
            retry_after: None,
            count: Some(1),
            latency_ms: None,
            close: false,
        }
    }

    /// Answer the next matching request with `code`.
    pub fn status(code: u16) -> Self {
        Self {
            status: Some(code),
            ..Self::empty()
        }
    }

    /// 429 with `Retry-After: seconds`.
    pub fn too_many_requests(seconds: u64) -> Self {
        Self {
            retry_after: Some(seconds),
            ..Self::status(429)
        }
    }

    /// Delay the next matching request, then serve it.
    pub fn latency(delay: Duration) -> Self {
        Self {
            latency_ms: Some(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX)),
            ..Self::empty()
        }
    }

    /// Close the connection of the next matching request without an answer.
    pub fn close() -> Self {
        Self {
            close: true,
            ..Self::empty()
        }
    }

    /// Only requests with this method.
    pub fn method(mut self, method: &str) -> Self {
        self.method = Some(method.to_ascii_uppercase());
        self
    }

    /// Only requests whose path starts with `path` (or matches it as a glob
    /// when it contains `*`).
    pub fn path(mut self, path: &str) -> Self {
        self.path = Some(path.to_owned());
        self
    }

    /// Affect the next `n` matching requests (default 1).
    pub fn times(mut self, n: u32) -> Self {
        self.count = Some(n);
        self
    }

    /// Affect every matching request until the faults are cleared.
    pub fn always(mut self) -> Self {
        self.count = None;
        self
    }

    /// Adds `Retry-After` to an error answer.
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// Adds a delay to another fault.
    pub fn with_latency(mut self, delay: Duration) -> Self {
        self.latency_ms = Some(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX));
        self
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        self.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self.path.as_deref().is_none_or(|p| path_matches(p, path))
    }
}

/// A prefix, or a glob whose `*` matches any run of characters.
fn path_matches(pattern: &str, path: &str) -> bool {
    if !pattern.contains('*') {
        return path.starts_with(pattern);
    }
    glob(pattern.as_bytes(), path.as_bytes())
}

fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|i| glob(rest, &text[i..])),
        Some((c, rest)) => text.first() == Some(c) && glob(rest, &text[1..]),
    }
}

/// The armed faults, first match wins.
#[derive(Debug, Default)]
pub(crate) struct Faults(Vec<Fault>);

impl Faults {
    pub(crate) fn add(&mut self, fault: Fault) {
        self.0.push(fault);
    }

    pub(crate) fn clear(&mut self) {
        self.0.clear();
    }

    pub(crate) fn list(&self) -> Vec<Fault> {
        self.0.clone()
    }

    /// The fault that applies to this request, used up by one.
    pub(crate) fn take(&mut self, method: &str, path: &str) -> Option<Fault> {
        let i = self.0.iter().position(|f| f.matches(method, path))?;
        let fault = self.0[i].clone();
        match self.0[i].count {
            Some(n) if n <= 1 => {
                self.0.remove(i);
            }
            Some(n) => self.0[i].count = Some(n - 1),
            None => {}
        }
        Some(fault)
    }
}

/// One request the sandbox received (control endpoints excluded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// The raw query string, "" when none.
    pub query: String,
    /// The answer's code; `None` when the connection was closed unanswered.
    pub status: Option<u16>,
    /// The authenticated user (`system:anonymous` without a token).
    pub user: String,
    /// Whether an injected fault decided the answer.
    pub fault: bool,
}

impl RecordedRequest {
    /// POST, PUT, PATCH and DELETE change state; GET (and watches) do not.
    pub fn is_write(&self) -> bool {
        matches!(self.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_match_by_method_and_prefix_or_glob_and_run_out() {
        let mut faults = Faults::default();
        faults.add(
            Fault::status(503)
                .method("patch")
                .path("/apis/apps/v1/namespaces/*/deployments/web")
                .times(2),
        );
        assert!(
            faults
                .take("GET", "/apis/apps/v1/namespaces/default/deployments/web")
                .is_none()
        );
        assert!(
            faults
                .take("PATCH", "/apis/apps/v1/namespaces/default/deployments/web")
                .is_some()
        );
        assert!(
            faults
                .take("PATCH", "/apis/apps/v1/namespaces/prod/deployments/web")
                .is_some()
        );
        assert!(
            faults
                .take("PATCH", "/apis/apps/v1/namespaces/prod/deployments/web")
                .is_none()
        );
        faults.add(Fault::close().path("/api"));
        assert!(faults.take("GET", "/apis/apps/v1").is_some());
    }
}

//! List endpoints: query parameters, `max`, and RFC 5988 `Link` headers
//! (`<…>; rel="next"`) as Webex pages long results.
//!
//! The next link repeats the request's parameters and adds an opaque
//! `cursor`. The Python SDK rewrites next links, putting back `max`,
//! `roomId`, `beforeMessage` and the like from the first request, so the
//! position must live in a parameter of its own or paging would never end.

use std::sync::Arc;

use axum::Json;
use axum::extract::FromRequestParts;
use axum::http::HeaderValue;
use axum::http::header::{HOST, LINK};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use reqwest::Url;
use serde::Serialize;

use super::error::ApiError;
use super::ids;
use super::store::Shared;

/// The query of a list request, with what is needed to link to the next page.
#[derive(Debug, Clone)]
pub(crate) struct ListQuery {
    url: Url,
}

impl FromRequestParts<Arc<Shared>> for ListQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, shared: &Arc<Shared>) -> Result<Self, ApiError> {
        let host = parts
            .headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .map_or_else(|| shared.addr.to_string(), str::to_owned);
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let url = Url::parse(&format!("http://{host}{path}"))
            .map_err(|e| ApiError::bad_request(format!("Invalid request URL: {e}")))?;
        Ok(Self { url })
    }
}

/// Where a page starts.
enum Position {
    /// An index into the list (lists that only grow at the end).
    Offset(usize),
    /// Just below this sequence number (newest-first lists).
    Below(u64),
}

impl ListQuery {
    /// A parameter's value; an empty one counts as absent.
    pub(crate) fn get(&self, key: &str) -> Option<String> {
        self.url
            .query_pairs()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
            .filter(|v| !v.is_empty())
    }

    /// `max`: a positive integer, at most `limit`.
    pub(crate) fn max(&self, default: usize, limit: usize) -> Result<usize, ApiError> {
        match self.get("max") {
            None => Ok(default),
            Some(raw) => match raw.parse::<usize>() {
                Ok(n) if n >= 1 => Ok(n.min(limit)),
                _ => Err(ApiError::bad_request(format!(
                    "max must be a positive integer, not {raw:?}."
                ))),
            },
        }
    }

    fn position(&self) -> Result<Option<Position>, ApiError> {
        let Some(cursor) = self.get("cursor") else {
            return Ok(None);
        };
        let invalid = || ApiError::bad_request("Invalid cursor.");
        let text = ids::unopaque(&cursor).ok_or_else(invalid)?;
        let (kind, n) = text.split_once(':').ok_or_else(invalid)?;
        let position = match kind {
            "offset" => n.parse().map(Position::Offset).map_err(|_| invalid())?,
            "below" => n.parse().map(Position::Below).map_err(|_| invalid())?,
            _ => return Err(invalid()),
        };
        Ok(Some(position))
    }

    /// One page of `items` (in list order), linking to the next by offset.
    pub(crate) fn page<T: Serialize>(
        &self,
        items: Vec<T>,
        max: usize,
    ) -> Result<Response, ApiError> {
        let start = match self.position()? {
            None => 0,
            Some(Position::Offset(n)) => n.min(items.len()),
            Some(Position::Below(_)) => return Err(ApiError::bad_request("Invalid cursor.")),
        };
        let end = start.saturating_add(max).min(items.len());
        let next = (end < items.len()).then(|| self.link(&format!("offset:{end}"), max));
        let page: Vec<T> = items.into_iter().skip(start).take(end - start).collect();
        Ok(respond(&page, next))
    }

    /// One page of `items`, newest first and keyed by sequence number, so
    /// that items added while a client pages do not shift later pages.
    pub(crate) fn page_newest_first<T: Serialize>(
        &self,
        items: Vec<(u64, T)>,
        max: usize,
    ) -> Result<Response, ApiError> {
        let below = match self.position()? {
            None => u64::MAX,
            Some(Position::Below(seq)) => seq,
            Some(Position::Offset(_)) => return Err(ApiError::bad_request("Invalid cursor.")),
        };
        let mut rest = items.into_iter().filter(|(seq, _)| *seq < below).peekable();
        let mut page = Vec::new();
        let mut last = None;
        while page.len() < max {
            let Some((seq, item)) = rest.next() else {
                break;
            };
            last = Some(seq);
            page.push(item);
        }
        let next = match (rest.peek(), last) {
            (Some(_), Some(seq)) => Some(self.link(&format!("below:{seq}"), max)),
            _ => None,
        };
        Ok(respond(&page, next))
    }

    fn link(&self, position: &str, max: usize) -> String {
        let mut url = self.url.clone();
        let kept: Vec<(String, String)> = self
            .url
            .query_pairs()
            .filter(|(k, _)| k != "cursor" && k != "max")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        url.query_pairs_mut()
            .clear()
            .extend_pairs(kept)
            .append_pair("max", &max.to_string())
            .append_pair("cursor", &ids::opaque(position));
        url.to_string()
    }
}

fn respond<T: Serialize>(items: &[T], next: Option<String>) -> Response {
    let mut response = Json(serde_json::json!({ "items": items })).into_response();
    if let Some(value) =
        next.and_then(|n| HeaderValue::from_str(&format!("<{n}>; rel=\"next\"")).ok())
    {
        response.headers_mut().insert(LINK, value);
    }
    response
}

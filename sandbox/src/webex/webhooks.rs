//! Webhooks: `POST/GET /v1/webhooks`, `GET/PUT/DELETE /v1/webhooks/{id}`,
//! their filters, and the rule that disables one after 100 failed
//! deliveries within five minutes until a `PUT` sets `status: active`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use reqwest::Url;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::deliveries::{self, Job};
use super::error::ApiError;
use super::ids::{self, Kind};
use super::paging::ListQuery;
use super::people::{Caller, Person};
use super::rooms::parse_body;
use super::store::{Shared, Store};

/// Failed deliveries that disable a webhook…
pub const DISABLE_AFTER_FAILURES: usize = 100;
/// …when they happen within this long.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(5 * 60);

/// `active`, or `inactive` once disabled (by failures or by its owner).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookStatus {
    Active,
    Inactive,
}

/// A webhook as `GET /v1/webhooks/{id}` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    pub id: String,
    pub name: String,
    pub target_url: String,
    pub resource: String,
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    pub org_id: String,
    pub created_by: String,
    pub app_id: String,
    pub owned_by: String,
    pub status: WebhookStatus,
    pub created: String,
}

/// A webhook with what the sandbox keeps about it.
#[derive(Debug)]
pub(crate) struct WebhookRecord {
    pub(crate) webhook: Webhook,
    pub(crate) owner: Person,
    pub(crate) filter: Filter,
    pub(crate) failures: FailureWindow,
    /// Deliveries go through one queue per webhook, so they arrive in the
    /// order the events happened.
    pub(crate) queue: mpsc::UnboundedSender<Job>,
    pub(crate) worker: tokio::task::AbortHandle,
}

const RESOURCES: &[&str] = &[
    "messages",
    "memberships",
    "rooms",
    "attachmentActions",
    "all",
];
const EVENTS: &[&str] = &["created", "updated", "deleted", "all"];

/// The filter keys Webex documents for each resource.
fn filter_keys(resource: &str) -> &'static [&'static str] {
    match resource {
        "messages" => &[
            "roomId",
            "roomType",
            "personId",
            "personEmail",
            "mentionedPeople",
            "mentionedGroups",
            "hasFiles",
        ],
        "memberships" => &["roomId", "personId", "personEmail", "isModerator"],
        "rooms" => &["type", "isLocked"],
        "attachmentActions" => &["roomId", "personId", "messageId"],
        _ => &[
            "roomId",
            "roomType",
            "personId",
            "personEmail",
            "mentionedPeople",
            "mentionedGroups",
            "hasFiles",
            "isModerator",
            "type",
            "isLocked",
            "messageId",
        ],
    }
}

/// A parsed `filter`: `key=value` pairs joined by `&`, all of which must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Filter(Vec<(String, String)>);

impl Filter {
    pub(crate) fn parse(raw: Option<&str>, resource: &str) -> Result<Self, ApiError> {
        let Some(raw) = raw.filter(|r| !r.is_empty()) else {
            return Ok(Self::default());
        };
        let url = Url::parse(&format!("http://filter/?{raw}"))
            .map_err(|e| ApiError::bad_request(format!("Invalid filter: {e}")))?;
        let allowed = filter_keys(resource);
        let mut pairs = Vec::new();
        for (key, value) in url.query_pairs() {
            if !allowed.contains(&key.as_ref()) {
                return Err(ApiError::bad_request(format!(
                    "Invalid filter {key:?} for resource {resource}; allowed: {}.",
                    allowed.join(", ")
                )));
            }
            // `roomId` or `roomId=` would match nothing, ever: a webhook
            // that stays silent is worse than a refusal.
            if value.is_empty() {
                return Err(ApiError::bad_request(format!(
                    "Invalid filter {key:?}: it needs a value ({key}=...)."
                )));
            }
            pairs.push((key.into_owned(), value.into_owned()));
        }
        Ok(Self(pairs))
    }

    /// Whether an event's `data` passes, for a webhook owned by `owner_id`.
    pub(crate) fn matches(&self, owner_id: &str, data: &serde_json::Value) -> bool {
        self.0.iter().all(|(key, value)| match key.as_str() {
            "mentionedPeople" | "mentionedGroups" => {
                let listed = data.get(key).and_then(|v| v.as_array());
                value.split(',').any(|wanted| {
                    let wanted = if wanted == "me" { owner_id } else { wanted };
                    listed.is_some_and(|l| l.iter().any(|v| v.as_str() == Some(wanted)))
                })
            }
            "hasFiles" => {
                let has = data
                    .get("files")
                    .and_then(|f| f.as_array())
                    .is_some_and(|f| !f.is_empty());
                value == if has { "true" } else { "false" }
            }
            // Addresses match in any case, as everywhere else.
            "personEmail" => data
                .get(key)
                .and_then(|v| v.as_str())
                .is_some_and(|email| email.eq_ignore_ascii_case(value)),
            _ => match data.get(key) {
                Some(serde_json::Value::String(s)) => s == value,
                Some(serde_json::Value::Bool(b)) => value == if *b { "true" } else { "false" },
                _ => false,
            },
        })
    }
}

/// Recent failed deliveries of one webhook.
#[derive(Debug, Clone, Default)]
pub(crate) struct FailureWindow {
    failures: VecDeque<Instant>,
}

impl FailureWindow {
    /// Counts a failure at `now`; true when it is the one that disables the
    /// webhook (the window then starts afresh).
    pub(crate) fn record(&mut self, now: Instant) -> bool {
        self.failures.push_back(now);
        while self
            .failures
            .front()
            .is_some_and(|first| now.duration_since(*first) >= FAILURE_WINDOW)
        {
            self.failures.pop_front();
        }
        if self.failures.len() >= DISABLE_AFTER_FAILURES {
            self.failures.clear();
            return true;
        }
        false
    }

    pub(crate) fn clear(&mut self) {
        self.failures.clear();
    }
}

impl Store {
    fn webhook_of(&mut self, owner: &Person, id: &str) -> Result<&mut WebhookRecord, ApiError> {
        self.webhooks
            .iter_mut()
            .find(|w| w.webhook.id == id && w.owner.id == owner.id)
            .ok_or_else(|| ApiError::not_found("Webhook not found."))
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewWebhook {
    name: Option<String>,
    target_url: Option<String>,
    resource: Option<String>,
    event: Option<String>,
    filter: Option<String>,
    secret: Option<String>,
}

/// `field`, given and not empty, or the 400 that names it.
fn required(field: Option<String>, name: &str) -> Result<String, ApiError> {
    field
        .filter(|f| !f.is_empty())
        .ok_or_else(|| ApiError::bad_request(format!("{name} is required.")))
}

fn check_target(url: &str) -> Result<(), ApiError> {
    match Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        _ => Err(ApiError::bad_request(format!(
            "targetUrl {url:?} is not an http(s) URL."
        ))),
    }
}

pub(crate) async fn create(
    State(shared): State<Arc<Shared>>,
    Caller(me): Caller,
    body: Bytes,
) -> Result<Json<Webhook>, ApiError> {
    let new: NewWebhook = parse_body(&body)?;
    let name = required(new.name, "name")?;
    let target_url = required(new.target_url, "targetUrl")?;
    let resource = required(new.resource, "resource")?;
    let event = required(new.event, "event")?;
    check_target(&target_url)?;
    if !RESOURCES.contains(&resource.as_str()) {
        return Err(ApiError::bad_request(format!(
            "Unsupported resource {resource:?}."
        )));
    }
    if !EVENTS.contains(&event.as_str()) {
        return Err(ApiError::bad_request(format!(
            "Unsupported event {event:?}."
        )));
    }
    // A card's submission is only ever created.
    if resource == "attachmentActions" && !matches!(event.as_str(), "created" | "all") {
        return Err(ApiError::bad_request(format!(
            "Unsupported event {event:?} for resource attachmentActions."
        )));
    }
    let filter = Filter::parse(new.filter.as_deref(), &resource)?;
    let weak = Arc::downgrade(&shared);
    let webhook = shared.update(|store| {
        let webhook = Webhook {
            id: ids::new_id(Kind::Webhook),
            name,
            target_url,
            resource,
            event,
            filter: new.filter.filter(|f| !f.is_empty()),
            secret: new.secret.filter(|s| !s.is_empty()),
            // Webhooks (and so their envelopes) carry the organisation's
            // bare uuid in base64, not its full id.
            org_id: ids::opaque(&ids::raw_uuid(&store.org_id)),
            created_by: ids::raw_uuid(&me.id),
            app_id: store.app_id.clone(),
            owned_by: "creator".to_owned(),
            status: WebhookStatus::Active,
            created: ids::now(),
        };
        let (queue, jobs) = mpsc::unbounded_channel();
        let worker = tokio::spawn(deliveries::worker(weak, jobs)).abort_handle();
        store.webhooks.push(WebhookRecord {
            webhook: webhook.clone(),
            owner: me,
            filter,
            failures: FailureWindow::default(),
            queue,
            worker,
        });
        webhook
    });
    Ok(Json(webhook))
}

pub(crate) async fn list(
    State(shared): State<Arc<Shared>>,
    Caller(me): Caller,
    query: ListQuery,
) -> Result<Response, ApiError> {
    let max = query.max(100, 1000)?;
    let webhooks: Vec<Webhook> = shared
        .lock()
        .webhooks
        .iter()
        .filter(|w| w.owner.id == me.id)
        .map(|w| w.webhook.clone())
        .collect();
    query.page(webhooks, max)
}

pub(crate) async fn get(
    State(shared): State<Arc<Shared>>,
    Caller(me): Caller,
    Path(id): Path<String>,
) -> Result<Json<Webhook>, ApiError> {
    let mut store = shared.lock();
    store.webhook_of(&me, &id).map(|w| Json(w.webhook.clone()))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WebhookChange {
    name: Option<String>,
    target_url: Option<String>,
    secret: Option<String>,
    /// Text, checked by [`parse_status`]: serde's refusal of an unknown
    /// variant would speak Rust to the client.
    status: Option<String>,
}

fn parse_status(raw: &str) -> Result<WebhookStatus, ApiError> {
    match raw {
        "active" => Ok(WebhookStatus::Active),
        "inactive" => Ok(WebhookStatus::Inactive),
        other => Err(ApiError::bad_request(format!(
            "status must be active or inactive, not {other:?}."
        ))),
    }
}

/// `PUT /v1/webhooks/{id}`: Webex wants `name` and `targetUrl` on every
/// update; `secret` and `status`, left out, keep their values.
pub(crate) async fn update(
    State(shared): State<Arc<Shared>>,
    Caller(me): Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Webhook>, ApiError> {
    let change: WebhookChange = parse_body(&body)?;
    let name = required(change.name, "name")?;
    let target_url = required(change.target_url, "targetUrl")?;
    check_target(&target_url)?;
    let status = change.status.as_deref().map(parse_status).transpose()?;
    shared.update(|store| {
        let record = store.webhook_of(&me, &id)?;
        record.webhook.name = name;
        record.webhook.target_url = target_url;
        if let Some(secret) = change.secret {
            record.webhook.secret = Some(secret).filter(|s| !s.is_empty());
        }
        if let Some(status) = status {
            if status == WebhookStatus::Active {
                record.failures.clear();
            }
            record.webhook.status = status;
        }
        Ok(Json(record.webhook.clone()))
    })
}

/// `DELETE /v1/webhooks/{id}`: deliveries still queued are dropped.
pub(crate) async fn delete(
    State(shared): State<Arc<Shared>>,
    Caller(me): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    shared.update(|store| {
        store.webhook_of(&me, &id)?;
        store.webhooks.retain(|w| w.webhook.id != id);
        Ok(StatusCode::NO_CONTENT)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn filters_match_fields_and_me() {
        let data = json!({"roomId": "R", "roomType": "group", "mentionedPeople": ["BOT"]});
        let me = Filter::parse(Some("mentionedPeople=me"), "messages").expect("a filter");
        assert!(me.matches("BOT", &data));
        assert!(!me.matches("ALICE", &data));
        let room = Filter::parse(Some("roomId=R&roomType=group"), "messages").expect("a filter");
        assert!(room.matches("X", &data));
        let other = Filter::parse(Some("roomId=S"), "messages").expect("a filter");
        assert!(!other.matches("X", &data));
        let none = Filter::parse(None, "messages").expect("no filter");
        assert!(none.matches("X", &data));
    }

    #[test]
    fn unknown_filter_keys_and_empty_values_are_refused() {
        let err = Filter::parse(Some("colour=red"), "messages").expect_err("refused");
        assert!(matches!(err, ApiError::BadRequest(m) if m.contains("colour")));
        for empty in ["roomId", "roomId=", "roomType=group&personEmail="] {
            let err = Filter::parse(Some(empty), "messages").expect_err(empty);
            assert!(matches!(err, ApiError::BadRequest(m) if m.contains("needs a value")));
        }
    }

    #[test]
    fn person_email_filters_match_in_any_case() {
        let data = json!({"personEmail": "alice@example.com"});
        let filter =
            Filter::parse(Some("personEmail=Alice@Example.COM"), "messages").expect("a filter");
        assert!(filter.matches("X", &data));
        let other =
            Filter::parse(Some("personEmail=bob@example.com"), "messages").expect("a filter");
        assert!(!other.matches("X", &data));
    }

    #[test]
    fn the_hundredth_failure_within_five_minutes_disables() {
        let start = Instant::now();
        let mut window = FailureWindow::default();
        for i in 0..99 {
            assert!(!window.record(start + Duration::from_secs(i)));
        }
        assert!(window.record(start + Duration::from_secs(99)));
        // The window starts afresh after disabling.
        assert!(!window.record(start + Duration::from_secs(100)));
    }

    #[test]
    fn failures_older_than_five_minutes_do_not_count() {
        let start = Instant::now();
        let mut window = FailureWindow::default();
        for i in 0..99 {
            assert!(!window.record(start + Duration::from_secs(i)));
        }
        // The first failure is now five minutes old: 99 remain in the window.
        assert!(!window.record(start + FAILURE_WINDOW));
        assert!(window.record(start + FAILURE_WINDOW));
    }
}

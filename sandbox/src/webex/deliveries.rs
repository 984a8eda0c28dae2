//! Webhook deliveries: which webhooks an event reaches, the envelope Webex
//! would POST, its `X-Spark-Signature`, and the per-webhook workers that
//! send them.
//!
//! As in Webex a delivery is tried once: a connection error, a timeout or a
//! non-2xx answer is a failure, counted towards disabling the webhook, and
//! never retried. Each delivery is recorded (body byte for byte) when it is
//! queued, and its outcome when it is done.

use std::sync::Weak;

use axum::body::Bytes;
use axum::http::header::{CONTENT_TYPE, USER_AGENT};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::cards::AttachmentAction;
use super::ids;
use super::messages::Message;
use super::people::Person;
use super::rooms::{Membership, Room, RoomType};
use super::store::{Shared, Store};
use super::webhooks::WebhookStatus;

/// The header Webex signs deliveries with.
pub const SIGNATURE_HEADER: &str = "X-Spark-Signature";

/// Lowercase hex HMAC-SHA1 of `body` keyed by `secret`: the value of
/// `X-Spark-Signature` for a webhook created with that secret.
pub fn spark_signature(secret: &str, body: &[u8]) -> String {
    // HMAC takes keys of any length; the error case cannot happen.
    match <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(body);
            hex::encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resource {
    Messages,
    Memberships,
    Rooms,
    AttachmentActions,
}

impl Resource {
    fn as_str(self) -> &'static str {
        match self {
            Self::Messages => "messages",
            Self::Memberships => "memberships",
            Self::Rooms => "rooms",
            Self::AttachmentActions => "attachmentActions",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventKind {
    Created,
    Updated,
    Deleted,
}

impl EventKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Deleted => "deleted",
        }
    }
}

/// Whose webhooks may hear of an event.
#[derive(Debug, Clone)]
pub(crate) enum Audience {
    /// Every member of the room.
    Members,
    /// Members, except that in group rooms a bot hears only of messages it
    /// wrote or that mention it.
    Readers {
        author: String,
        mentioned: Vec<String>,
    },
    /// Only whoever posted the card that was used.
    CardAuthor(String),
}

/// The `data` of a `messages` delivery: no text, as in Webex.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MessageData {
    id: String,
    room_id: String,
    room_type: RoomType,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent_id: Option<String>,
    person_id: String,
    person_email: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    mentioned_people: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    mentioned_groups: Vec<String>,
    created: String,
}

impl From<&Message> for MessageData {
    fn from(m: &Message) -> Self {
        Self {
            id: m.id.clone(),
            room_id: m.room_id.clone(),
            room_type: m.room_type,
            parent_id: m.parent_id.clone(),
            person_id: m.person_id.clone(),
            person_email: m.person_email.clone(),
            mentioned_people: m.mentioned_people.clone(),
            mentioned_groups: m.mentioned_groups.clone(),
            created: m.created.clone(),
        }
    }
}

/// The `data` of an `attachmentActions` delivery: no inputs, as in Webex.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ActionData {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    message_id: String,
    person_id: String,
    room_id: String,
    created: String,
}

impl From<&AttachmentAction> for ActionData {
    fn from(a: &AttachmentAction) -> Self {
        Self {
            id: a.id.clone(),
            kind: a.kind.clone(),
            message_id: a.message_id.clone(),
            person_id: a.person_id.clone(),
            room_id: a.room_id.clone(),
            created: a.created.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub(crate) enum EventData {
    Message(MessageData),
    Membership(Membership),
    Room(Room),
    Action(ActionData),
}

/// Something that happened, for the webhooks to hear of.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    pub(crate) resource: Resource,
    pub(crate) event: EventKind,
    pub(crate) actor_id: String,
    pub(crate) room_id: String,
    pub(crate) audience: Audience,
    pub(crate) data: EventData,
}

/// The body Webex POSTs, field for field.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a> {
    id: &'a str,
    name: &'a str,
    target_url: &'a str,
    resource: &'a str,
    event: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    filter: Option<&'a str>,
    org_id: &'a str,
    created_by: &'a str,
    app_id: &'a str,
    owned_by: &'a str,
    status: WebhookStatus,
    created: &'a str,
    actor_id: &'a str,
    data: &'a EventData,
}

/// Where a delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    /// Queued or being sent.
    Pending,
    /// The target answered 2xx.
    Delivered,
    /// No answer, or not a 2xx one; counted towards disabling the webhook.
    Failed,
    /// Not sent: the webhook was disabled or deleted before its turn.
    Dropped,
}

/// One delivery, as recorded: what was sent where, and how it went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// Position among everything the sandbox records.
    pub seq: u64,
    pub webhook_id: String,
    pub webhook_name: String,
    pub target_url: String,
    pub resource: String,
    pub event: String,
    /// The exact body sent (JSON text).
    pub body: String,
    /// The `X-Spark-Signature` sent, if the webhook has a secret.
    pub signature: Option<String>,
    pub state: DeliveryState,
    /// The target's HTTP status, if it answered.
    pub status: Option<u16>,
    /// Why the request failed, if it got no answer.
    pub error: Option<String>,
    pub queued: String,
    pub finished: Option<String>,
}

impl Delivery {
    /// The body parsed (`Null` if it somehow is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_default()
    }

    /// `data.id` of the body: the message, membership or action concerned.
    pub fn data_id(&self) -> Option<String> {
        self.json()["data"]["id"].as_str().map(str::to_owned)
    }

    /// Whether it is over (delivered, failed or dropped).
    pub fn is_finished(&self) -> bool {
        self.state != DeliveryState::Pending
    }
}

/// What a worker sends.
#[derive(Debug)]
pub(crate) struct Job {
    seq: u64,
    webhook_id: String,
    target_url: String,
    body: Bytes,
    signature: Option<String>,
}

impl Store {
    fn hears(&self, owner: &Person, event: &Event) -> bool {
        if !self.is_member(&event.room_id, &owner.id) {
            return false;
        }
        match &event.audience {
            Audience::Members => true,
            Audience::Readers { author, mentioned } => {
                !owner.is_bot()
                    || self
                        .room(&event.room_id)
                        .is_some_and(|r| r.kind == RoomType::Direct)
                    || *author == owner.id
                    || mentioned.contains(&owner.id)
            }
            Audience::CardAuthor(author) => *author == owner.id,
        }
    }

    /// Queues a delivery of `event` to every active webhook that hears it.
    pub(crate) fn dispatch(&mut self, event: Event) {
        let data = serde_json::to_value(&event.data).unwrap_or_default();
        let targets: Vec<usize> = self
            .webhooks
            .iter()
            .enumerate()
            .filter(|(_, w)| {
                let hook = &w.webhook;
                hook.status == WebhookStatus::Active
                    && (hook.resource == "all" || hook.resource == event.resource.as_str())
                    && (hook.event == "all" || hook.event == event.event.as_str())
                    && self.hears(&w.owner, &event)
                    && w.filter.matches(&w.owner.id, &data)
            })
            .map(|(i, _)| i)
            .collect();
        for index in targets {
            let seq = self.next_seq();
            let Some(record) = self.webhooks.get(index) else {
                continue;
            };
            let hook = &record.webhook;
            // Each side of a 1:1 room sees it titled with the other's name.
            let seen;
            let data = match &event.data {
                EventData::Room(room) if room.kind == RoomType::Direct => {
                    seen = EventData::Room(self.room_seen_by(room, &record.owner.id));
                    &seen
                }
                other => other,
            };
            let envelope = Envelope {
                id: &hook.id,
                name: &hook.name,
                target_url: &hook.target_url,
                resource: event.resource.as_str(),
                event: event.event.as_str(),
                filter: hook.filter.as_deref(),
                org_id: &hook.org_id,
                created_by: &hook.created_by,
                app_id: &hook.app_id,
                owned_by: &hook.owned_by,
                status: hook.status,
                created: &hook.created,
                actor_id: &event.actor_id,
                data,
            };
            let body = match serde_json::to_vec(&envelope) {
                Ok(body) => body,
                Err(e) => {
                    tracing::error!(error = %e, "cannot serialise a webhook envelope");
                    continue;
                }
            };
            let signature = hook.secret.as_deref().map(|s| spark_signature(s, &body));
            let delivery = Delivery {
                seq,
                webhook_id: hook.id.clone(),
                webhook_name: hook.name.clone(),
                target_url: hook.target_url.clone(),
                resource: event.resource.as_str().to_owned(),
                event: event.event.as_str().to_owned(),
                body: String::from_utf8_lossy(&body).into_owned(),
                signature: signature.clone(),
                state: DeliveryState::Pending,
                status: None,
                error: None,
                queued: ids::now(),
                finished: None,
            };
            let job = Job {
                seq,
                webhook_id: hook.id.clone(),
                target_url: hook.target_url.clone(),
                body: Bytes::from(body),
                signature,
            };
            let sent = record.queue.send(job).is_ok();
            self.deliveries.push(delivery);
            if !sent {
                self.finish(
                    seq,
                    DeliveryState::Dropped,
                    None,
                    Some("the webhook's worker has stopped".to_owned()),
                );
            }
        }
    }

    fn finish(
        &mut self,
        seq: u64,
        state: DeliveryState,
        status: Option<u16>,
        error: Option<String>,
    ) {
        if let Some(d) = self.deliveries.iter_mut().find(|d| d.seq == seq) {
            d.state = state;
            d.status = status;
            d.error = error;
            d.finished = Some(ids::now());
        }
    }
}

/// Sends one webhook's deliveries, in order, until the webhook is deleted
/// (its queue closes) or the sandbox is gone.
pub(crate) async fn worker(shared: Weak<Shared>, mut jobs: mpsc::UnboundedReceiver<Job>) {
    while let Some(job) = jobs.recv().await {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        deliver(&shared, job).await;
    }
}

async fn deliver(shared: &Shared, job: Job) {
    let active = shared
        .lock()
        .webhooks
        .iter()
        .any(|w| w.webhook.id == job.webhook_id && w.webhook.status == WebhookStatus::Active);
    if !active {
        shared.update(|s| {
            s.finish(
                job.seq,
                DeliveryState::Dropped,
                None,
                Some("the webhook is inactive or deleted".to_owned()),
            );
        });
        return;
    }
    let mut request = shared
        .http
        .post(&job.target_url)
        .header(CONTENT_TYPE, "application/json")
        .header(USER_AGENT, "webex-sandbox")
        .header("trackingid", ids::tracking_id())
        .body(job.body);
    if let Some(signature) = &job.signature {
        request = request.header(SIGNATURE_HEADER, signature);
    }
    let (state, status, error) = match request.send().await {
        Ok(response) if response.status().is_success() => (
            DeliveryState::Delivered,
            Some(response.status().as_u16()),
            None,
        ),
        Ok(response) => (
            DeliveryState::Failed,
            Some(response.status().as_u16()),
            None,
        ),
        Err(e) => (DeliveryState::Failed, None, Some(cause_chain(&e))),
    };
    shared.update(|store| {
        store.finish(job.seq, state, status, error);
        if state != DeliveryState::Failed {
            return;
        }
        let now = Instant::now();
        if let Some(record) = store
            .webhooks
            .iter_mut()
            .find(|w| w.webhook.id == job.webhook_id)
            && record.failures.record(now)
        {
            record.webhook.status = WebhookStatus::Inactive;
            tracing::warn!(
                webhook = %record.webhook.id,
                "webhook disabled after {} failed deliveries within five minutes",
                super::webhooks::DISABLE_AFTER_FAILURES
            );
        }
    });
}

fn cause_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_lowercase_hex_hmac_sha1() {
        // RFC 2202, test case 2.
        assert_eq!(
            spark_signature("Jefe", b"what do ya want for nothing?"),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
    }
}

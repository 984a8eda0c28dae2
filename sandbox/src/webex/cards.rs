//! Adaptive Card button presses: `POST /v1/attachment/actions` (what a
//! client sends when a user submits a card, and what the test driver's
//! `press_card_button` does) and `GET /v1/attachment/actions/{id}`, where
//! the card's author reads the inputs the delivery leaves out.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};

use super::deliveries::{ActionData, Audience, Event, EventData, EventKind, Resource};
use super::error::ApiError;
use super::ids::{self, Kind};
use super::messages::readable;
use super::people::{Caller, Person};
use super::rooms::parse_body;
use super::store::{Shared, Store};

/// A submitted card, as `GET /v1/attachment/actions/{id}` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttachmentAction {
    pub id: String,
    /// Always `submit`.
    #[serde(rename = "type")]
    pub kind: String,
    pub message_id: String,
    /// The card's input values and the pressed action's `data`, merged.
    pub inputs: serde_json::Value,
    pub person_id: String,
    pub room_id: String,
    pub created: String,
}

impl Store {
    /// `person` submits the card of `message_id` with `inputs`.
    pub(crate) fn press_card(
        &mut self,
        person: &Person,
        message_id: &str,
        inputs: serde_json::Value,
    ) -> Result<AttachmentAction, ApiError> {
        let message = self
            .message(message_id)
            .map(|m| m.message.clone())
            .filter(|m| readable(self, person, m))
            .ok_or_else(|| ApiError::not_found("Message not found."))?;
        if message.attachments.is_empty() {
            return Err(ApiError::bad_request("The message has no card to submit."));
        }
        if !inputs.is_object() {
            return Err(ApiError::bad_request("inputs must be a JSON object."));
        }
        let action = AttachmentAction {
            id: ids::new_id(Kind::AttachmentAction),
            kind: "submit".to_owned(),
            message_id: message.id.clone(),
            inputs,
            person_id: person.id.clone(),
            room_id: message.room_id.clone(),
            created: ids::now(),
        };
        self.actions.push(action.clone());
        self.dispatch(Event {
            resource: Resource::AttachmentActions,
            event: EventKind::Created,
            actor_id: person.id.clone(),
            room_id: message.room_id.clone(),
            audience: Audience::CardAuthor(message.person_id),
            data: EventData::Action(ActionData::from(&action)),
        });
        Ok(action)
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Submission {
    #[serde(rename = "type")]
    kind: Option<String>,
    message_id: Option<String>,
    inputs: Option<serde_json::Value>,
}

pub(crate) async fn create(
    State(shared): State<Arc<Shared>>,
    Caller(me): Caller,
    body: Bytes,
) -> Result<Json<AttachmentAction>, ApiError> {
    let submission: Submission = parse_body(&body)?;
    if submission.kind.as_deref() != Some("submit") {
        return Err(ApiError::bad_request("type must be submit."));
    }
    let message_id = submission
        .message_id
        .ok_or_else(|| ApiError::bad_request("messageId is required."))?;
    let inputs = submission.inputs.unwrap_or_else(|| serde_json::json!({}));
    shared
        .update(|store| store.press_card(&me, &message_id, inputs))
        .map(Json)
}

/// Readable by whoever pressed the button and by the card's author.
pub(crate) async fn get(
    State(shared): State<Arc<Shared>>,
    Caller(me): Caller,
    Path(id): Path<String>,
) -> Result<Json<AttachmentAction>, ApiError> {
    let store = shared.lock();
    store
        .actions
        .iter()
        .find(|a| a.id == id)
        .filter(|a| {
            a.person_id == me.id
                || store
                    .message(&a.message_id)
                    .is_some_and(|m| m.message.person_id == me.id)
        })
        .cloned()
        .map(Json)
        .ok_or_else(|| ApiError::not_found("Attachment action not found."))
}

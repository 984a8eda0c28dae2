//! Messages: `POST/GET /v1/messages`, `GET /v1/messages/direct`,
//! `GET/PUT/DELETE /v1/messages/{id}`, and the posting logic the test
//! driver shares with the HTTP handler.
//!
//! Webex's rules kept here: `text` and `markdown` are each at most 7439
//! bytes, and blank ones count as absent; one Adaptive Card attachment at
//! most; threads are one level deep; an edit names its room; in group
//! rooms a bot sees only the messages it wrote or that mention it, and
//! must list them with `mentionedPeople=me`.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::deliveries::{Audience, Event, EventData, EventKind, MessageData, Resource};
use super::error::{ApiError, check_length};
use super::ids::{self, Kind};
use super::markdown::{self, MentionTarget, Mentionable};
use super::paging::ListQuery;
use super::people::{Caller, Person};
use super::rooms::{RoomType, null_as_default, parse_body};
use super::store::{Shared, Store};

/// The only attachment type Webex accepts on a message.
pub const ADAPTIVE_CARD: &str = "application/vnd.microsoft.card.adaptive";

/// A message as `GET /v1/messages/{id}` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    pub room_id: String,
    pub room_type: RoomType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_person_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_person_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub markdown: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    pub person_id: String,
    pub person_email: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mentioned_people: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mentioned_groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<serde_json::Value>,
    pub created: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated: Option<String>,
}

/// What a client sends to `POST /v1/messages`; also the test driver's input.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageDraft {
    pub room_id: Option<String>,
    pub to_person_id: Option<String>,
    pub to_person_email: Option<String>,
    pub parent_id: Option<String>,
    pub text: Option<String>,
    pub markdown: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub attachments: Vec<serde_json::Value>,
    /// File URLs; the sandbox has no file store and refuses them.
    #[serde(default, deserialize_with = "null_as_default")]
    pub files: Vec<String>,
}

impl MessageDraft {
    /// Markdown into a room.
    pub fn markdown(room_id: &str, markdown: &str) -> Self {
        Self {
            room_id: Some(room_id.to_owned()),
            markdown: Some(markdown.to_owned()),
            ..Self::default()
        }
    }

    /// Markdown to `email` in the sender's 1:1 space with them.
    pub fn direct(email: &str, markdown: &str) -> Self {
        Self {
            to_person_email: Some(email.to_owned()),
            markdown: Some(markdown.to_owned()),
            ..Self::default()
        }
    }

    /// The same message as a reply in the thread of `parent_id`.
    pub fn in_thread(mut self, parent_id: &str) -> Self {
        self.parent_id = Some(parent_id.to_owned());
        self
    }

    /// Adds an Adaptive Card (the card's JSON, `{"type": "AdaptiveCard", …}`).
    pub fn with_card(mut self, card: serde_json::Value) -> Self {
        self.attachments
            .push(serde_json::json!({ "contentType": ADAPTIVE_CARD, "content": card }));
        self
    }
}

/// A message and its place in the global order.
#[derive(Debug, Clone)]
pub(crate) struct StoredMessage {
    pub(crate) seq: u64,
    pub(crate) at: jiff::Timestamp,
    pub(crate) message: Message,
    /// Times the message was edited; Webex allows [`EDIT_LIMIT`].
    pub(crate) edits: u32,
}

/// Webex lets a message be edited "not more than 10 times".
pub(crate) const EDIT_LIMIT: u32 = 10;

/// Whether `reader` may see `message` (membership, and a bot's limits).
pub(crate) fn readable(store: &Store, reader: &Person, message: &Message) -> bool {
    store.is_member(&message.room_id, &reader.id)
        && (!reader.is_bot()
            || message.room_type == RoomType::Direct
            || message.person_id == reader.id
            || message.mentioned_people.contains(&reader.id))
}

impl Store {
    fn mentionable(&self, target: MentionTarget<'_>) -> Option<Mentionable> {
        let person = match target {
            MentionTarget::Email(email) => self.person_by_email(email),
            MentionTarget::Id(id) => self.person(id),
        }?;
        Some(Mentionable {
            id: person.id.clone(),
            first_name: person.first_name.clone(),
        })
    }

    pub(crate) fn message(&self, id: &str) -> Option<&StoredMessage> {
        self.message_index.get(id).map(|&i| &self.messages[i])
    }

    fn add_message(&mut self, stored: StoredMessage) {
        self.message_index
            .insert(stored.message.id.clone(), self.messages.len());
        self.messages.push(stored);
    }

    fn remove_message(&mut self, id: &str) {
        if self.message_index.remove(id).is_none() {
            return;
        }
        self.messages.retain(|m| m.message.id != id);
        self.reindex_messages();
    }

    /// Removes every message of a deleted room. The messages of other rooms
    /// move up in the list, so the index is rebuilt, once.
    pub(crate) fn remove_room_messages(&mut self, room_id: &str) {
        let before = self.messages.len();
        self.messages.retain(|m| m.message.room_id != room_id);
        if self.messages.len() != before {
            self.reindex_messages();
        }
    }

    fn reindex_messages(&mut self) {
        self.message_index = self
            .messages
            .iter()
            .enumerate()
            .map(|(i, m)| (m.message.id.clone(), i))
            .collect();
    }

    /// Posts `draft` as `author`, with everything Webex checks first.
    pub(crate) fn post_message(
        &mut self,
        author: &Person,
        draft: MessageDraft,
    ) -> Result<Message, ApiError> {
        let destinations = [&draft.room_id, &draft.to_person_id, &draft.to_person_email]
            .iter()
            .filter(|d| d.is_some())
            .count();
        if destinations != 1 {
            return Err(ApiError::bad_request(
                "Exactly one of roomId, toPersonId or toPersonEmail is required.",
            ));
        }
        if !draft.files.is_empty() {
            return Err(ApiError::bad_request(NO_FILES));
        }
        check_length("text", draft.text.as_deref())?;
        check_length("markdown", draft.markdown.as_deref())?;
        let sent_words = draft.text.is_some() || draft.markdown.is_some();
        let mut draft = draft;
        draft.text = non_blank(draft.text);
        draft.markdown = non_blank(draft.markdown);
        if draft.text.is_none() && draft.markdown.is_none() && draft.attachments.is_empty() {
            return Err(ApiError::bad_request(if sent_words {
                BLANK
            } else {
                "text, markdown or attachments is required."
            }));
        }
        check_attachments(&draft.attachments)?;

        // A 1:1 room is created on first use, but only once the message is
        // known to be accepted: a refused message changes nothing.
        let (room, to_person) = match (&draft.room_id, &draft.to_person_id, &draft.to_person_email)
        {
            (Some(room_id), _, _) => (
                Some(self.room_of_member(room_id, &author.id)?.clone()),
                None,
            ),
            (None, id, email) => {
                let to = match (id, email) {
                    (Some(id), _) => self.person(id),
                    (None, Some(email)) => self.person_by_email(email),
                    (None, None) => None,
                }
                .cloned()
                .ok_or_else(|| ApiError::not_found("Person not found."))?;
                if to.id == author.id {
                    return Err(ApiError::bad_request(
                        "Cannot send a 1:1 message to yourself.",
                    ));
                }
                let room = self.find_direct_room(&author.id, &to.id).cloned();
                (room, Some(to))
            }
        };
        if let Some(parent_id) = &draft.parent_id {
            let parent = self
                .message(parent_id)
                .filter(|p| room.as_ref().is_some_and(|r| p.message.room_id == r.id))
                .ok_or_else(|| {
                    ApiError::bad_request("parentId does not name a message in this room.")
                })?;
            if parent.message.parent_id.is_some() {
                return Err(ApiError::bad_request(
                    "Replies cannot be replied to; use the thread's first message.",
                ));
            }
        }
        let room = match (room, &to_person) {
            (Some(room), _) => room,
            (None, Some(to)) => self.direct_room(author, to),
            (None, None) => {
                return Err(ApiError::not_found(
                    "Could not find a room with provided ID.",
                ));
            }
        };

        let rendered = draft
            .markdown
            .as_deref()
            .map(|md| markdown::render(md, |t| self.mentionable(t)));
        let at = jiff::Timestamp::now();
        let created = ids::format_timestamp(at);
        let message = Message {
            id: ids::new_id(Kind::Message),
            parent_id: draft.parent_id,
            room_id: room.id.clone(),
            room_type: room.kind,
            to_person_id: to_person.as_ref().map(|p| p.id.clone()),
            to_person_email: to_person.as_ref().map(|p| p.email().to_owned()),
            text: draft
                .text
                .or_else(|| rendered.as_ref().map(|r| r.text.clone())),
            markdown: draft.markdown,
            html: rendered.as_ref().map(|r| r.html.clone()),
            person_id: author.id.clone(),
            person_email: author.email().to_owned(),
            mentioned_people: rendered
                .as_ref()
                .map(|r| r.mentioned_people.clone())
                .unwrap_or_default(),
            mentioned_groups: rendered.map(|r| r.mentioned_groups).unwrap_or_default(),
            attachments: draft.attachments,
            created: created.clone(),
            updated: None,
        };
        let seq = self.next_seq();
        self.add_message(StoredMessage {
            seq,
            at,
            message: message.clone(),
            edits: 0,
        });
        self.touch_room(&room.id, &created);
        // A new message shows a hidden 1:1 room again, as in Webex.
        for membership in self.memberships.iter_mut().filter(|m| m.room_id == room.id) {
            membership.is_room_hidden = false;
        }
        self.dispatch_message(EventKind::Created, &author.id, &message);
        Ok(message)
    }

    fn dispatch_message(&mut self, event: EventKind, actor_id: &str, message: &Message) {
        self.dispatch(Event {
            resource: Resource::Messages,
            event,
            actor_id: actor_id.to_owned(),
            room_id: message.room_id.clone(),
            audience: Audience::Readers {
                author: message.person_id.clone(),
                mentioned: message.mentioned_people.clone(),
            },
            data: EventData::Message(MessageData::from(message)),
        });
    }

    /// A message `reader` may see, or Webex's 404.
    fn readable_message(&self, reader: &Person, id: &str) -> Result<&StoredMessage, ApiError> {
        self.message(id)
            .filter(|m| readable(self, reader, &m.message))
            .ok_or_else(|| ApiError::not_found("Message not found."))
    }
}

/// Why a message with files is refused.
const NO_FILES: &str = "The sandbox stores no files: send text, markdown or an Adaptive Card, \
     without files (as JSON, not multipart/form-data).";

/// Why a message whose text and markdown are both blank is refused.
const BLANK: &str = "text and markdown cannot be empty or only whitespace.";

/// Blank text is no text: Webex refuses a message with nothing to show.
fn non_blank(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

fn check_attachments(attachments: &[serde_json::Value]) -> Result<(), ApiError> {
    if attachments.len() > 1 {
        return Err(ApiError::bad_request(
            "Only one attachment is allowed per message.",
        ));
    }
    for attachment in attachments {
        if attachment.get("contentType").and_then(|c| c.as_str()) != Some(ADAPTIVE_CARD) {
            return Err(ApiError::bad_request(format!(
                "Attachments must have contentType {ADAPTIVE_CARD}."
            )));
        }
        if !attachment.get("content").is_some_and(|c| c.is_object()) {
            return Err(ApiError::bad_request(
                "An attachment needs a card in content.",
            ));
        }
    }
    Ok(())
}

pub(crate) async fn create(
    State(shared): State<Arc<Shared>>,
    Caller(me): Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Message>, ApiError> {
    // Clients upload a local file as multipart/form-data (the SDK does for
    // `files=[path]`); say so rather than fail to read it as JSON.
    let multipart = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/")
        });
    if multipart {
        return Err(ApiError::bad_request(NO_FILES));
    }
    let draft: MessageDraft = parse_body(&body)?;
    shared
        .update(|store| store.post_message(&me, draft))
        .map(Json)
}

/// `GET /v1/messages?roomId=&parentId=&mentionedPeople=&before=&beforeMessage=&max=`
pub(crate) async fn list(
    State(shared): State<Arc<Shared>>,
    Caller(me): Caller,
    query: ListQuery,
) -> Result<Response, ApiError> {
    let room_id = query
        .get("roomId")
        .ok_or_else(|| ApiError::bad_request("roomId is required."))?;
    let mentioned = match query.get("mentionedPeople") {
        None => false,
        Some(who) if who == "me" || who == me.id => true,
        Some(_) => {
            return Err(ApiError::bad_request(
                "mentionedPeople accepts only me or the caller's person ID.",
            ));
        }
    };
    let max = query.max(50, 1000)?;
    if mentioned && query.get("max").is_some_and(|_| max > 100) {
        return Err(ApiError::bad_request(
            "max cannot exceed 100 with mentionedPeople.",
        ));
    }
    let before =
        match query.get("before") {
            None => None,
            Some(raw) => Some(raw.parse::<jiff::Timestamp>().map_err(|e| {
                ApiError::bad_request(format!("before is not a date and time: {e}"))
            })?),
        };
    let parent_id = query.get("parentId");
    let items = {
        let store = shared.lock();
        let room = store.room_of_member(&room_id, &me.id)?;
        if me.is_bot() && room.kind == RoomType::Group && !mentioned {
            return Err(ApiError::forbidden(
                "Bots must list messages in group rooms with mentionedPeople=me.",
            ));
        }
        let before_seq = match query.get("beforeMessage") {
            None => u64::MAX,
            Some(id) => {
                let before = store.readable_message(&me, &id)?;
                if before.message.room_id != room.id {
                    return Err(ApiError::bad_request(
                        "beforeMessage is not a message of this room.",
                    ));
                }
                before.seq
            }
        };
        let mut items: Vec<(u64, Message)> = store
            .messages
            .iter()
            .filter(|m| m.message.room_id == room.id && m.seq < before_seq)
            .filter(|m| before.is_none_or(|b| m.at < b))
            .filter(|m| {
                parent_id
                    .as_ref()
                    .is_none_or(|p| m.message.parent_id.as_ref() == Some(p))
            })
            .filter(|m| !mentioned || m.message.mentioned_people.contains(&me.id))
            .filter(|m| readable(&store, &me, &m.message))
            .map(|m| (m.seq, m.message.clone()))
            .collect();
        items.reverse();
        items
    };
    query.page_newest_first(items, max)
}

/// `GET /v1/messages/direct?personId=|personEmail=[&parentId=]`: the 1:1
/// messages between the caller and that person, newest first. Without a
/// 1:1 room between them yet, the list is empty.
pub(crate) async fn list_direct(
    State(shared): State<Arc<Shared>>,
    Caller(me): Caller,
    query: ListQuery,
) -> Result<Response, ApiError> {
    let max = query.max(50, 1000)?;
    let parent_id = query.get("parentId");
    let items = {
        let store = shared.lock();
        let (id, email) = (query.get("personId"), query.get("personEmail"));
        let other = store.person_named(id.as_deref(), email.as_deref())?;
        if other.id == me.id {
            return Err(ApiError::bad_request("There is no 1:1 room with yourself."));
        }
        let room_id = store
            .find_direct_room(&me.id, &other.id)
            .map(|r| r.id.clone());
        let mut items: Vec<(u64, Message)> = store
            .messages
            .iter()
            .filter(|m| room_id.as_ref() == Some(&m.message.room_id))
            .filter(|m| {
                parent_id
                    .as_ref()
                    .is_none_or(|p| m.message.parent_id.as_ref() == Some(p))
            })
            .map(|m| (m.seq, m.message.clone()))
            .collect();
        items.reverse();
        items
    };
    query.page_newest_first(items, max)
}

pub(crate) async fn get(
    State(shared): State<Arc<Shared>>,
    Caller(me): Caller,
    Path(id): Path<String>,
) -> Result<Json<Message>, ApiError> {
    let store = shared.lock();
    store
        .readable_message(&me, &id)
        .map(|m| Json(m.message.clone()))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Edit {
    room_id: Option<String>,
    text: Option<String>,
    markdown: Option<String>,
}

/// `PUT /v1/messages/{id}`: the author edits the text or markdown; Webex
/// wants the message's `roomId` with every edit.
pub(crate) async fn update(
    State(shared): State<Arc<Shared>>,
    Caller(me): Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Message>, ApiError> {
    let edit: Edit = parse_body(&body)?;
    let room_id =
        non_blank(edit.room_id).ok_or_else(|| ApiError::bad_request("roomId is required."))?;
    if edit.text.is_none() && edit.markdown.is_none() {
        return Err(ApiError::bad_request("text or markdown is required."));
    }
    check_length("text", edit.text.as_deref())?;
    check_length("markdown", edit.markdown.as_deref())?;
    let (new_text, new_markdown) = (non_blank(edit.text), non_blank(edit.markdown));
    if new_text.is_none() && new_markdown.is_none() {
        return Err(ApiError::bad_request(BLANK));
    }
    shared.update(|store| {
        let stored = store.readable_message(&me, &id)?;
        let (current, edits) = (stored.message.clone(), stored.edits);
        if room_id != current.room_id {
            return Err(ApiError::bad_request(
                "roomId does not match the message's room.",
            ));
        }
        if current.person_id != me.id {
            return Err(ApiError::forbidden("Only the author can edit a message."));
        }
        if !current.attachments.is_empty() {
            return Err(ApiError::bad_request(
                "A message with attachments cannot be edited.",
            ));
        }
        if edits >= EDIT_LIMIT {
            return Err(ApiError::bad_request(format!(
                "A message can be edited at most {EDIT_LIMIT} times."
            )));
        }
        let rendered = new_markdown
            .as_deref()
            .map(|md| markdown::render(md, |t| store.mentionable(t)));
        let mut message = current;
        message.text = new_text.or_else(|| rendered.as_ref().map(|r| r.text.clone()));
        message.html = rendered.as_ref().map(|r| r.html.clone());
        message.mentioned_people = rendered
            .as_ref()
            .map(|r| r.mentioned_people.clone())
            .unwrap_or_default();
        message.mentioned_groups = rendered.map(|r| r.mentioned_groups).unwrap_or_default();
        message.markdown = new_markdown;
        message.updated = Some(ids::now());
        if let Some(&i) = store.message_index.get(&id) {
            store.messages[i].message = message.clone();
            store.messages[i].edits += 1;
        }
        store.dispatch_message(EventKind::Updated, &me.id, &message);
        Ok(Json(message))
    })
}

/// `DELETE /v1/messages/{id}`: the author, or a moderator of the room.
pub(crate) async fn delete(
    State(shared): State<Arc<Shared>>,
    Caller(me): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    shared.update(|store| {
        let message = store.readable_message(&me, &id)?.message.clone();
        if message.person_id != me.id && !store.is_moderator(&message.room_id, &me.id) {
            return Err(ApiError::forbidden(
                "Only the author or a moderator can delete a message.",
            ));
        }
        store.remove_message(&id);
        store.dispatch_message(EventKind::Deleted, &me.id, &message);
        Ok(StatusCode::NO_CONTENT)
    })
}

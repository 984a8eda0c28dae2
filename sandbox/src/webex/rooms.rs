//! Rooms (spaces) and memberships: `POST/GET /v1/rooms`,
//! `GET /v1/rooms/{id}`, `POST/GET /v1/memberships`,
//! `GET/DELETE /v1/memberships/{id}`. A room is visible only to its members,
//! as in Webex, where anything else is a 404.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::deliveries::{Audience, Event, EventData, EventKind, Resource};
use super::error::ApiError;
use super::ids::{self, Kind};
use super::paging::ListQuery;
use super::people::{Caller, Person};
use super::store::{Shared, Store};

/// `direct` (1:1) or `group` (a space).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RoomType {
    Direct,
    Group,
}

/// A room as `GET /v1/rooms/{id}` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Room {
    pub id: String,
    pub title: String,
    #[serde(rename = "type")]
    pub kind: RoomType,
    pub is_locked: bool,
    pub last_activity: String,
    pub creator_id: String,
    pub created: String,
}

/// A person's membership of a room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Membership {
    pub id: String,
    pub room_id: String,
    pub person_id: String,
    pub person_email: String,
    pub person_display_name: String,
    pub person_org_id: String,
    pub is_moderator: bool,
    pub is_monitor: bool,
    pub room_type: RoomType,
    pub created: String,
}

impl Store {
    pub(crate) fn room(&self, id: &str) -> Option<&Room> {
        self.rooms.iter().find(|r| r.id == id)
    }

    pub(crate) fn is_member(&self, room_id: &str, person_id: &str) -> bool {
        self.memberships
            .iter()
            .any(|m| m.room_id == room_id && m.person_id == person_id)
    }

    /// The room, if `person_id` may see it; Webex answers 404 otherwise.
    pub(crate) fn room_of_member(&self, room_id: &str, person_id: &str) -> Result<&Room, ApiError> {
        self.room(room_id)
            .filter(|_| self.is_member(room_id, person_id))
            .ok_or_else(|| ApiError::not_found("Could not find a room with provided ID."))
    }

    /// A new room whose members are `members`; the first is its creator.
    pub(crate) fn create_room(&mut self, title: &str, kind: RoomType, members: &[Person]) -> Room {
        let now = ids::now();
        let room = Room {
            id: ids::new_id(Kind::Room),
            title: title.to_owned(),
            kind,
            is_locked: false,
            last_activity: now.clone(),
            creator_id: members.first().map(|p| p.id.clone()).unwrap_or_default(),
            created: now,
        };
        self.rooms.push(room.clone());
        let actor = room.creator_id.clone();
        self.dispatch(Event {
            resource: Resource::Rooms,
            event: EventKind::Created,
            actor_id: actor.clone(),
            room_id: room.id.clone(),
            audience: Audience::Members,
            data: EventData::Room(room.clone()),
        });
        for person in members {
            self.add_membership(&room, person, false, &actor);
        }
        room
    }

    /// Adds `person` to `room` and tells the room's webhooks.
    pub(crate) fn add_membership(
        &mut self,
        room: &Room,
        person: &Person,
        is_moderator: bool,
        actor_id: &str,
    ) -> Membership {
        let membership = Membership {
            id: ids::new_id(Kind::Membership),
            room_id: room.id.clone(),
            person_id: person.id.clone(),
            person_email: person.email().to_owned(),
            person_display_name: person.display_name.clone(),
            person_org_id: person.org_id.clone(),
            is_moderator,
            is_monitor: false,
            room_type: room.kind,
            created: ids::now(),
        };
        self.memberships.push(membership.clone());
        self.dispatch(Event {
            resource: Resource::Memberships,
            event: EventKind::Created,
            actor_id: actor_id.to_owned(),
            room_id: room.id.clone(),
            audience: Audience::Members,
            data: EventData::Membership(membership.clone()),
        });
        membership
    }

    /// The 1:1 room of two people, created on first use.
    pub(crate) fn direct_room(&mut self, from: &Person, to: &Person) -> Room {
        let existing = self.rooms.iter().find(|r| {
            r.kind == RoomType::Direct
                && self.is_member(&r.id, &from.id)
                && self.is_member(&r.id, &to.id)
        });
        match existing {
            Some(room) => room.clone(),
            None => self.create_room(
                &to.display_name,
                RoomType::Direct,
                &[from.clone(), to.clone()],
            ),
        }
    }

    pub(crate) fn touch_room(&mut self, room_id: &str, at: &str) {
        if let Some(room) = self.rooms.iter_mut().find(|r| r.id == room_id) {
            room.last_activity = at.to_owned();
        }
    }
}

/// Parses a JSON request body with Webex's 400 on failure.
pub(crate) fn parse_body<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("Invalid JSON body: {e}")))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewRoom {
    title: Option<String>,
}

pub(crate) async fn create(
    State(shared): State<Arc<Shared>>,
    Caller(me): Caller,
    body: Bytes,
) -> Result<Json<Room>, ApiError> {
    let new: NewRoom = parse_body(&body)?;
    let title = new
        .title
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| ApiError::bad_request("title is required."))?;
    Ok(Json(shared.update(|store| {
        store.create_room(&title, RoomType::Group, &[me])
    })))
}

/// `GET /v1/rooms?type=&sortBy=&max=`: the caller's rooms.
pub(crate) async fn list(
    State(shared): State<Arc<Shared>>,
    Caller(me): Caller,
    query: ListQuery,
) -> Result<Response, ApiError> {
    let max = query.max(100, 1000)?;
    let kind = match query.get("type").as_deref() {
        None => None,
        Some("direct") => Some(RoomType::Direct),
        Some("group") => Some(RoomType::Group),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Invalid room type {other:?}."
            )));
        }
    };
    let mut rooms: Vec<Room> = {
        let store = shared.lock();
        store
            .rooms
            .iter()
            .filter(|r| store.is_member(&r.id, &me.id))
            .filter(|r| kind.is_none_or(|k| r.kind == k))
            .cloned()
            .collect()
    };
    // Timestamps share their text form, so sorting the strings sorts by time.
    match query.get("sortBy").as_deref() {
        Some("id") => rooms.sort_by(|a, b| a.id.cmp(&b.id)),
        Some("created") => rooms.sort_by(|a, b| b.created.cmp(&a.created)),
        None | Some("lastactivity") => rooms.sort_by(|a, b| b.last_activity.cmp(&a.last_activity)),
        Some(other) => return Err(ApiError::bad_request(format!("Invalid sortBy {other:?}."))),
    }
    query.page(rooms, max)
}

pub(crate) async fn get(
    State(shared): State<Arc<Shared>>,
    Caller(me): Caller,
    Path(id): Path<String>,
) -> Result<Json<Room>, ApiError> {
    shared.lock().room_of_member(&id, &me.id).cloned().map(Json)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewMembership {
    room_id: Option<String>,
    person_id: Option<String>,
    person_email: Option<String>,
    #[serde(default)]
    is_moderator: bool,
}

pub(crate) async fn add_member(
    State(shared): State<Arc<Shared>>,
    Caller(me): Caller,
    body: Bytes,
) -> Result<Json<Membership>, ApiError> {
    let new: NewMembership = parse_body(&body)?;
    let room_id = new
        .room_id
        .ok_or_else(|| ApiError::bad_request("roomId is required."))?;
    shared.update(|store| {
        let room = store.room_of_member(&room_id, &me.id)?.clone();
        if room.kind == RoomType::Direct {
            return Err(ApiError::bad_request(
                "People cannot be added to a 1:1 room.",
            ));
        }
        let person = match (&new.person_id, &new.person_email) {
            (Some(id), _) => store.person(id),
            (None, Some(email)) => store.person_by_email(email),
            (None, None) => {
                return Err(ApiError::bad_request(
                    "personId or personEmail is required.",
                ));
            }
        }
        .cloned()
        .ok_or_else(|| ApiError::not_found("Person not found."))?;
        if store.is_member(&room.id, &person.id) {
            return Err(ApiError::Conflict(
                "The person is already a member of the room.".to_owned(),
            ));
        }
        Ok(Json(store.add_membership(
            &room,
            &person,
            new.is_moderator,
            &me.id,
        )))
    })
}

/// `GET /v1/memberships?roomId=&personId=&personEmail=`: a room's members,
/// or without `roomId` the caller's own memberships.
pub(crate) async fn list_members(
    State(shared): State<Arc<Shared>>,
    Caller(me): Caller,
    query: ListQuery,
) -> Result<Response, ApiError> {
    let max = query.max(100, 1000)?;
    let person_id = query.get("personId");
    let person_email = query.get("personEmail");
    let memberships: Vec<Membership> = {
        let store = shared.lock();
        let room_id = match query.get("roomId") {
            Some(room_id) => Some(store.room_of_member(&room_id, &me.id)?.id.clone()),
            None => None,
        };
        store
            .memberships
            .iter()
            .filter(|m| match &room_id {
                Some(room_id) => &m.room_id == room_id,
                None => m.person_id == me.id,
            })
            .filter(|m| person_id.as_ref().is_none_or(|id| &m.person_id == id))
            .filter(|m| {
                person_email
                    .as_ref()
                    .is_none_or(|e| m.person_email.eq_ignore_ascii_case(e))
            })
            .cloned()
            .collect()
    };
    query.page(memberships, max)
}

fn membership_of_member<'a>(
    store: &'a Store,
    id: &str,
    person_id: &str,
) -> Result<&'a Membership, ApiError> {
    store
        .memberships
        .iter()
        .find(|m| m.id == id)
        .filter(|m| store.is_member(&m.room_id, person_id))
        .ok_or_else(|| ApiError::not_found("Membership not found."))
}

pub(crate) async fn get_member(
    State(shared): State<Arc<Shared>>,
    Caller(me): Caller,
    Path(id): Path<String>,
) -> Result<Json<Membership>, ApiError> {
    membership_of_member(&shared.lock(), &id, &me.id)
        .cloned()
        .map(Json)
}

pub(crate) async fn remove_member(
    State(shared): State<Arc<Shared>>,
    Caller(me): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    shared.update(|store| {
        let membership = membership_of_member(store, &id, &me.id)?.clone();
        if membership.room_type == RoomType::Direct {
            return Err(ApiError::bad_request("Nobody can leave a 1:1 room."));
        }
        // Told before the removal, so the person leaving hears of it too.
        store.dispatch(Event {
            resource: Resource::Memberships,
            event: EventKind::Deleted,
            actor_id: me.id.clone(),
            room_id: membership.room_id.clone(),
            audience: Audience::Members,
            data: EventData::Membership(membership),
        });
        store.memberships.retain(|m| m.id != id);
        Ok(StatusCode::NO_CONTENT)
    })
}

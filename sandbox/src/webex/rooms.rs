//! Rooms (spaces) and memberships: `POST/GET /v1/rooms`,
//! `GET/PUT/DELETE /v1/rooms/{id}`, `POST/GET /v1/memberships`,
//! `GET/PUT/DELETE /v1/memberships/{id}`. A room is visible only to its
//! members, as in Webex, where anything else is a 404.
//!
//! Webex's rules kept here: a 1:1 room is titled, for each of its two
//! members, with the other one's name, and can be neither renamed, left nor
//! deleted (only hidden); a room with a moderator is moderated (`isLocked`),
//! and then only moderators rename it, add or remove others, or delete it,
//! while a non-moderator who deletes it just leaves it.

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
    /// Whether the member hid this 1:1 room; the next message shows it again.
    pub is_room_hidden: bool,
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

    pub(crate) fn is_moderator(&self, room_id: &str, person_id: &str) -> bool {
        self.memberships
            .iter()
            .any(|m| m.room_id == room_id && m.person_id == person_id && m.is_moderator)
    }

    /// Refuses `person_id` if the room is moderated and they are no moderator.
    fn check_moderation(
        &self,
        room: &Room,
        person_id: &str,
        refusal: &str,
    ) -> Result<(), ApiError> {
        if room.is_locked && !self.is_moderator(&room.id, person_id) {
            return Err(ApiError::forbidden(refusal));
        }
        Ok(())
    }

    /// A room is moderated exactly while someone moderates it, so `isLocked`
    /// follows every change of moderators.
    fn sync_lock(&mut self, room_id: &str) {
        let locked = self
            .memberships
            .iter()
            .any(|m| m.room_id == room_id && m.is_moderator);
        if let Some(room) = self.rooms.iter_mut().find(|r| r.id == room_id) {
            room.is_locked = locked;
        }
    }

    /// `room` as `viewer_id` sees it: in Webex each side of a 1:1 room sees
    /// it titled with the other person's name, so one stored title is
    /// right for only one of them.
    pub(crate) fn room_seen_by(&self, room: &Room, viewer_id: &str) -> Room {
        let mut seen = room.clone();
        if room.kind == RoomType::Direct
            && let Some(other) = self
                .memberships
                .iter()
                .find(|m| m.room_id == room.id && m.person_id != viewer_id)
        {
            seen.title.clone_from(&other.person_display_name);
        }
        seen
    }

    /// The room, if `person_id` may see it; Webex answers 404 otherwise.
    pub(crate) fn room_of_member(&self, room_id: &str, person_id: &str) -> Result<&Room, ApiError> {
        self.room(room_id)
            .filter(|_| self.is_member(room_id, person_id))
            .ok_or_else(|| ApiError::not_found("Could not find a room with provided ID."))
    }

    /// A new room whose members are `members`; the first is its creator,
    /// and its moderator if the room is `locked`.
    pub(crate) fn create_room(
        &mut self,
        title: &str,
        kind: RoomType,
        members: &[Person],
        locked: bool,
    ) -> Room {
        let now = ids::now();
        let room = Room {
            id: ids::new_id(Kind::Room),
            title: title.to_owned(),
            kind,
            is_locked: locked,
            last_activity: now.clone(),
            creator_id: members.first().map(|p| p.id.clone()).unwrap_or_default(),
            created: now,
        };
        self.rooms.push(room.clone());
        let actor = room.creator_id.clone();
        // Members first, as only members' webhooks hear of a room; then the
        // events in Webex's order, the room before its memberships.
        let memberships: Vec<Membership> = members
            .iter()
            .enumerate()
            .map(|(i, person)| self.new_membership(&room, person, locked && i == 0))
            .collect();
        self.dispatch(Event {
            resource: Resource::Rooms,
            event: EventKind::Created,
            actor_id: actor.clone(),
            room_id: room.id.clone(),
            audience: Audience::Members,
            data: EventData::Room(room.clone()),
        });
        for membership in memberships {
            self.dispatch_membership_created(membership, &actor);
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
        let membership = self.new_membership(room, person, is_moderator);
        self.dispatch_membership_created(membership.clone(), actor_id);
        membership
    }

    /// Adds `person` to `room`, telling nobody yet.
    fn new_membership(&mut self, room: &Room, person: &Person, is_moderator: bool) -> Membership {
        let membership = Membership {
            id: ids::new_id(Kind::Membership),
            room_id: room.id.clone(),
            person_id: person.id.clone(),
            person_email: person.email().to_owned(),
            person_display_name: person.display_name.clone(),
            person_org_id: person.org_id.clone(),
            is_moderator,
            is_monitor: false,
            is_room_hidden: false,
            room_type: room.kind,
            created: ids::now(),
        };
        self.memberships.push(membership.clone());
        if is_moderator {
            self.sync_lock(&room.id);
        }
        membership
    }

    fn dispatch_membership_created(&mut self, membership: Membership, actor_id: &str) {
        self.dispatch(Event {
            resource: Resource::Memberships,
            event: EventKind::Created,
            actor_id: actor_id.to_owned(),
            room_id: membership.room_id.clone(),
            audience: Audience::Members,
            data: EventData::Membership(membership),
        });
    }

    /// The 1:1 room of two people, if they have one.
    pub(crate) fn find_direct_room(&self, a: &str, b: &str) -> Option<&Room> {
        self.rooms.iter().find(|r| {
            r.kind == RoomType::Direct && self.is_member(&r.id, a) && self.is_member(&r.id, b)
        })
    }

    /// The 1:1 room of two people, created on first use.
    pub(crate) fn direct_room(&mut self, from: &Person, to: &Person) -> Room {
        match self.find_direct_room(&from.id, &to.id) {
            Some(room) => room.clone(),
            None => self.create_room(
                &to.display_name,
                RoomType::Direct,
                &[from.clone(), to.clone()],
                false,
            ),
        }
    }

    pub(crate) fn touch_room(&mut self, room_id: &str, at: &str) {
        if let Some(room) = self.rooms.iter_mut().find(|r| r.id == room_id) {
            room.last_activity = at.to_owned();
        }
    }

    /// Takes `membership` out of its room, telling the room's webhooks.
    fn remove_membership(&mut self, membership: Membership, actor_id: &str) {
        let (id, room_id) = (membership.id.clone(), membership.room_id.clone());
        // Told before the removal, so the person leaving hears of it too.
        self.dispatch(Event {
            resource: Resource::Memberships,
            event: EventKind::Deleted,
            actor_id: actor_id.to_owned(),
            room_id: room_id.clone(),
            audience: Audience::Members,
            data: EventData::Membership(membership),
        });
        self.memberships.retain(|m| m.id != id);
        self.sync_lock(&room_id);
    }

    /// Changes one membership and tells the room's webhooks.
    fn change_membership(
        &mut self,
        id: &str,
        actor_id: &str,
        change: impl FnOnce(&mut Membership),
    ) -> Option<Membership> {
        let membership = self.memberships.iter_mut().find(|m| m.id == id)?;
        change(membership);
        let membership = membership.clone();
        self.sync_lock(&membership.room_id);
        self.dispatch(Event {
            resource: Resource::Memberships,
            event: EventKind::Updated,
            actor_id: actor_id.to_owned(),
            room_id: membership.room_id.clone(),
            audience: Audience::Members,
            data: EventData::Membership(membership.clone()),
        });
        Some(membership)
    }

    /// Removes a room with everything in it: its memberships, messages and
    /// card submissions, so that every id of it is a 404 afterwards.
    /// Deliveries already queued still go out; Webex documents no event
    /// for a deleted room, so none is sent.
    fn delete_room(&mut self, room_id: &str) {
        self.rooms.retain(|r| r.id != room_id);
        self.memberships.retain(|m| m.room_id != room_id);
        self.actions.retain(|a| a.room_id != room_id);
        self.remove_room_messages(room_id);
    }
}

/// Parses a JSON request body with Webex's 400 on failure. Text that is
/// not JSON at all gets a plain answer; a JSON body with a field of the
/// wrong type keeps serde's description, which names what was expected.
pub(crate) fn parse_body<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(if e.is_syntax() || e.is_eof() {
            format!(
                "The request body is not valid JSON (line {}, column {}).",
                e.line(),
                e.column()
            )
        } else {
            format!("Invalid JSON body: {e}")
        })
    })
}

/// An optional list or flag sent as `null` is absent, as Webex takes it:
/// clients that build bodies from optional values send `null` rather than
/// leave the field out. For fields with `#[serde(default)]`.
pub(crate) fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Option::unwrap_or_default)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewRoom {
    title: Option<String>,
    /// Moderated from the start, with the creator as its moderator.
    #[serde(default, deserialize_with = "null_as_default")]
    is_locked: bool,
    /// Rooms of a team: teams are not served.
    team_id: Option<String>,
}

/// A room of a team asked for: answered as `/v1/teams` is, rather than
/// with a room outside any team or every room.
fn teams_not_served() -> ApiError {
    ApiError::not_found(
        "The Webex sandbox does not serve teams (teamId); it serves people, rooms, memberships, messages, webhooks and attachment actions.",
    )
}

pub(crate) async fn create(
    State(shared): State<Arc<Shared>>,
    Caller(me): Caller,
    body: Bytes,
) -> Result<Json<Room>, ApiError> {
    let new: NewRoom = parse_body(&body)?;
    if new.team_id.is_some() {
        return Err(teams_not_served());
    }
    let title = new
        .title
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| ApiError::bad_request("title is required."))?;
    Ok(Json(shared.update(|store| {
        store.create_room(&title, RoomType::Group, &[me], new.is_locked)
    })))
}

/// `GET /v1/rooms?type=&sortBy=&max=`: the caller's rooms.
pub(crate) async fn list(
    State(shared): State<Arc<Shared>>,
    Caller(me): Caller,
    query: ListQuery,
) -> Result<Response, ApiError> {
    let max = query.max(100, 1000)?;
    if query.get("teamId").is_some() {
        return Err(teams_not_served());
    }
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
            .map(|r| store.room_seen_by(r, &me.id))
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
    let store = shared.lock();
    let room = store.room_of_member(&id, &me.id)?;
    Ok(Json(store.room_seen_by(room, &me.id)))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RoomChange {
    title: Option<String>,
    is_locked: Option<bool>,
}

/// `PUT /v1/rooms/{id}`: a new title (Webex requires one on every update)
/// and optionally `isLocked`, which makes the caller a moderator or, from
/// a moderator, ends moderation. Other fields Webex knows (teams,
/// classifications, announcement mode) are ignored.
pub(crate) async fn update(
    State(shared): State<Arc<Shared>>,
    Caller(me): Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Room>, ApiError> {
    let change: RoomChange = parse_body(&body)?;
    shared.update(|store| {
        let room = store.room_of_member(&id, &me.id)?.clone();
        if room.kind == RoomType::Direct {
            return Err(ApiError::bad_request(
                "A 1:1 room cannot be renamed or moderated; its title is the other person's name.",
            ));
        }
        let title = change
            .title
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| ApiError::bad_request("title is required."))?;
        store.check_moderation(
            &room,
            &me.id,
            "Only a moderator can change a moderated room.",
        )?;
        let affected: Vec<String> = store
            .memberships
            .iter()
            .filter(|m| m.room_id == room.id)
            .filter(|m| match change.is_locked {
                Some(true) => !room.is_locked && m.person_id == me.id,
                Some(false) => m.is_moderator,
                None => false,
            })
            .map(|m| m.id.clone())
            .collect();
        let moderate = change.is_locked == Some(true);
        for membership_id in &affected {
            store.change_membership(membership_id, &me.id, |m| m.is_moderator = moderate);
        }
        let Some(stored) = store.rooms.iter_mut().find(|r| r.id == room.id) else {
            return Err(ApiError::not_found(
                "Could not find a room with provided ID.",
            ));
        };
        stored.title = title;
        let room = stored.clone();
        store.dispatch(Event {
            resource: Resource::Rooms,
            event: EventKind::Updated,
            actor_id: me.id.clone(),
            room_id: room.id.clone(),
            audience: Audience::Members,
            data: EventData::Room(room.clone()),
        });
        Ok(Json(room))
    })
}

/// `DELETE /v1/rooms/{id}`: gone for everyone, or, for a non-moderator of
/// a moderated room, Webex's guard against accidental deletion: the caller
/// only leaves it (still 204).
pub(crate) async fn delete(
    State(shared): State<Arc<Shared>>,
    Caller(me): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    shared.update(|store| {
        let room = store.room_of_member(&id, &me.id)?.clone();
        if room.kind == RoomType::Direct {
            return Err(ApiError::bad_request(
                "A 1:1 room cannot be deleted; hide it with PUT /v1/memberships/{id} and isRoomHidden.",
            ));
        }
        if room.is_locked && !store.is_moderator(&room.id, &me.id) {
            let mine = store
                .memberships
                .iter()
                .find(|m| m.room_id == room.id && m.person_id == me.id)
                .cloned();
            if let Some(membership) = mine {
                store.remove_membership(membership, &me.id);
            }
            return Ok(StatusCode::NO_CONTENT);
        }
        store.delete_room(&room.id);
        Ok(StatusCode::NO_CONTENT)
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewMembership {
    room_id: Option<String>,
    person_id: Option<String>,
    person_email: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
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
        store.check_moderation(
            &room,
            &me.id,
            "Only a moderator can add people to a moderated room.",
        )?;
        let person = store
            .person_named(new.person_id.as_deref(), new.person_email.as_deref())?
            .clone();
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
/// or without `roomId` the caller's own memberships. Webex wants `roomId`
/// with either person filter.
pub(crate) async fn list_members(
    State(shared): State<Arc<Shared>>,
    Caller(me): Caller,
    query: ListQuery,
) -> Result<Response, ApiError> {
    let max = query.max(100, 1000)?;
    let person_id = query.get("personId");
    let person_email = query.get("personEmail");
    if query.get("roomId").is_none() && (person_id.is_some() || person_email.is_some()) {
        return Err(ApiError::bad_request(
            "roomId is required when filtering by personId or personEmail.",
        ));
    }
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
        if membership.person_id != me.id
            && let Some(room) = store.room(&membership.room_id)
        {
            store.check_moderation(
                room,
                &me.id,
                "Only a moderator can remove others from a moderated room.",
            )?;
        }
        store.remove_membership(membership, &me.id);
        Ok(StatusCode::NO_CONTENT)
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MembershipChange {
    is_moderator: Option<bool>,
    is_room_hidden: Option<bool>,
}

/// `PUT /v1/memberships/{id}`: `isModerator` and `isRoomHidden`. Webex
/// lists both as required, but clients such as the SDK send only what
/// changes, so a field left out keeps its value.
pub(crate) async fn update_member(
    State(shared): State<Arc<Shared>>,
    Caller(me): Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Membership>, ApiError> {
    let change: MembershipChange = parse_body(&body)?;
    if change.is_moderator.is_none() && change.is_room_hidden.is_none() {
        return Err(ApiError::bad_request(
            "isModerator or isRoomHidden is required.",
        ));
    }
    shared.update(|store| {
        let current = membership_of_member(store, &id, &me.id)?.clone();
        let direct = current.room_type == RoomType::Direct;
        if let Some(moderator) = change.is_moderator
            && moderator != current.is_moderator
        {
            if direct {
                return Err(ApiError::bad_request("A 1:1 room has no moderators."));
            }
            if let Some(room) = store.room(&current.room_id) {
                store.check_moderation(
                    room,
                    &me.id,
                    "Only a moderator can change the moderators of a moderated room.",
                )?;
            }
        }
        if let Some(hidden) = change.is_room_hidden
            && hidden != current.is_room_hidden
        {
            // Hiding is how one person files away a 1:1 room in their own
            // client; Webex documents it for direct rooms only.
            if current.person_id != me.id {
                return Err(ApiError::forbidden(
                    "Only the member can hide or show a room for themselves.",
                ));
            }
            if !direct {
                return Err(ApiError::bad_request("Only 1:1 rooms can be hidden."));
            }
        }
        store
            .change_membership(&id, &me.id, |m| {
                if let Some(moderator) = change.is_moderator {
                    m.is_moderator = moderator;
                }
                if let Some(hidden) = change.is_room_hidden {
                    m.is_room_hidden = hidden;
                }
            })
            .map(Json)
            .ok_or_else(|| ApiError::not_found("Membership not found."))
    })
}

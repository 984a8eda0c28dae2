//! People: the bot and the users, their tokens, and `GET /v1/people…`.
//! A request's bearer token names its caller; anything else is a 401.

use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::ids::{self, Kind};
use super::paging::ListQuery;
use super::store::{Shared, Store};

/// Whether a person is a human user or a bot account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PersonType {
    Person,
    Bot,
}

/// A person as `GET /v1/people/{id}` shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Person {
    pub id: String,
    pub emails: Vec<String>,
    pub display_name: String,
    pub nick_name: String,
    pub first_name: String,
    pub last_name: String,
    pub org_id: String,
    pub created: String,
    pub status: String,
    #[serde(rename = "type")]
    pub kind: PersonType,
}

impl Person {
    /// The first (and in the sandbox, only) email address.
    pub fn email(&self) -> &str {
        self.emails.first().map(String::as_str).unwrap_or_default()
    }

    pub fn is_bot(&self) -> bool {
        self.kind == PersonType::Bot
    }

    /// A markdown mention of this person, labelled with the first name as
    /// the Webex clients insert it: `<@personId:ID|First>`.
    pub fn mention(&self) -> String {
        format!("<@personId:{}|{}>", self.id, self.first_name)
    }
}

/// A person and the token that authenticates as them.
#[derive(Clone)]
pub(crate) struct PersonRecord {
    pub(crate) person: Person,
    pub(crate) token: String,
}

// Tokens stay out of debug output, as they would in a real service.
impl std::fmt::Debug for PersonRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersonRecord")
            .field("person", &self.person)
            .field("token", &"<redacted>")
            .finish()
    }
}

impl Store {
    /// Adds a person; the display name comes from `name` (bots) or the
    /// email's local part (`alice.smith@…` is "Alice Smith").
    pub(crate) fn add_person(
        &mut self,
        email: &str,
        name: Option<&str>,
        token: &str,
        kind: PersonType,
    ) -> Person {
        let display_name = name.map_or_else(|| name_from_email(email), str::to_owned);
        let mut words = display_name.split_whitespace();
        let first_name = words.next().unwrap_or_default().to_owned();
        let last_name = words.collect::<Vec<_>>().join(" ");
        let person = Person {
            id: ids::new_id(Kind::People),
            emails: vec![email.to_owned()],
            nick_name: first_name.clone(),
            display_name,
            first_name,
            last_name,
            org_id: self.org_id.clone(),
            created: ids::now(),
            status: "active".to_owned(),
            kind,
        };
        self.people.push(PersonRecord {
            person: person.clone(),
            token: token.to_owned(),
        });
        person
    }

    pub(crate) fn person_by_token(&self, token: &str) -> Option<&Person> {
        self.people
            .iter()
            .find(|r| r.token == token)
            .map(|r| &r.person)
    }

    pub(crate) fn person(&self, id: &str) -> Option<&Person> {
        self.people.iter().map(|r| &r.person).find(|p| p.id == id)
    }

    pub(crate) fn person_by_email(&self, email: &str) -> Option<&Person> {
        self.people
            .iter()
            .map(|r| &r.person)
            .find(|p| p.emails.iter().any(|e| e.eq_ignore_ascii_case(email)))
    }

    /// The person a request names by `personId` or `personEmail` (the id
    /// first): 400 when it names none, 404 when there is no such person.
    pub(crate) fn person_named(
        &self,
        id: Option<&str>,
        email: Option<&str>,
    ) -> Result<&Person, ApiError> {
        match (id, email) {
            (Some(id), _) => self.person(id),
            (None, Some(email)) => self.person_by_email(email),
            (None, None) => {
                return Err(ApiError::bad_request(
                    "personId or personEmail is required.",
                ));
            }
        }
        .ok_or_else(|| ApiError::not_found("Person not found."))
    }

    pub(crate) fn bot(&self) -> Option<&Person> {
        self.people.iter().map(|r| &r.person).find(|p| p.is_bot())
    }
}

/// `alice.smith@example.com` → "Alice Smith".
fn name_from_email(email: &str) -> String {
    let local = email.split('@').next().unwrap_or(email);
    local
        .split(['.', '_', '-'])
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut chars = w.chars();
            chars
                .next()
                .map(|c| c.to_uppercase().chain(chars).collect::<String>())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The bearer token of a request, if it has one.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The authenticated caller of a `/v1` request.
#[derive(Debug, Clone)]
pub(crate) struct Caller(pub(crate) Person);

impl FromRequestParts<Arc<Shared>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, shared: &Arc<Shared>) -> Result<Self, ApiError> {
        let token = bearer(&parts.headers).ok_or(ApiError::Unauthorized)?;
        let store = shared.lock();
        store
            .person_by_token(token)
            .cloned()
            .map(Caller)
            .ok_or(ApiError::Unauthorized)
    }
}

pub(crate) async fn me(Caller(me): Caller) -> Json<Person> {
    Json(me)
}

pub(crate) async fn get(
    State(shared): State<Arc<Shared>>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Person>, ApiError> {
    shared
        .lock()
        .person(&id)
        .cloned()
        .map(Json)
        .ok_or_else(|| ApiError::not_found("Person not found."))
}

/// `GET /v1/people?email=…|id=…|displayName=…`. Only an organisation's
/// admins may list everyone, and the sandbox has no admins, so one of the
/// filters is required, as Webex requires it of everyone else.
pub(crate) async fn list(
    State(shared): State<Arc<Shared>>,
    _caller: Caller,
    query: ListQuery,
) -> Result<Response, ApiError> {
    let max = query.max(100, 1000)?;
    let email = query.get("email");
    let ids: Option<Vec<String>> = query
        .get("id")
        .map(|v| v.split(',').map(str::to_owned).collect());
    let name = query.get("displayName").map(|n| n.to_lowercase());
    if email.is_none() && ids.is_none() && name.is_none() {
        return Err(ApiError::bad_request(
            "email or displayName is required (or id); only admins may list everyone.",
        ));
    }
    let people: Vec<Person> = shared
        .lock()
        .people
        .iter()
        .map(|r| &r.person)
        .filter(|p| {
            email
                .as_ref()
                .is_none_or(|e| p.emails.iter().any(|x| x.eq_ignore_ascii_case(e)))
        })
        .filter(|p| ids.as_ref().is_none_or(|ids| ids.contains(&p.id)))
        .filter(|p| {
            name.as_ref()
                .is_none_or(|n| p.display_name.to_lowercase().starts_with(n))
        })
        .cloned()
        .collect();
    query.page(people, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_email() {
        assert_eq!(name_from_email("alice@example.com"), "Alice");
        assert_eq!(name_from_email("bob.van-dyke@example.com"), "Bob Van Dyke");
    }

    #[test]
    fn a_bearer_token_is_read_whatever_the_scheme_case() {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, "bearer abc".parse().expect("a header value"));
        assert_eq!(bearer(&headers), Some("abc"));
        headers.insert(AUTHORIZATION, "Basic abc".parse().expect("a header value"));
        assert_eq!(bearer(&headers), None);
    }
}

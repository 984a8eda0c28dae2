//! A small Webex API client: the bot's identity, message fetch, reply, edit,
//! thread listing and webhook management, with bounded retries.
//!
//! 429 answers are retried after their `Retry-After`; 5xx answers, timeouts
//! and connection errors after an exponential backoff with jitter. A wait
//! longer than the budget is not slept through: the error says how long to
//! wait, so a consumer can NAK with that delay instead of holding a message.

use std::time::Duration;

use chatops_shared::secret::{ExposeSecret, SecretString};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A person or bot, as `GET /v1/people/...` returns it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Person {
    pub id: String,
    #[serde(default)]
    pub emails: Vec<String>,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub first_name: Option<String>,
}

impl Person {
    /// The name Webex shows when the person is mentioned: the first name, or
    /// the first word of the display name.
    pub fn mention_name(&self) -> String {
        self.first_name
            .clone()
            .filter(|n| !n.is_empty())
            .or_else(|| {
                self.display_name
                    .split_whitespace()
                    .next()
                    .map(str::to_owned)
            })
            .unwrap_or_default()
    }
}

/// A message, as `GET /v1/messages/{id}` returns it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: String,
    pub room_id: String,
    #[serde(default)]
    pub room_type: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub markdown: Option<String>,
    /// Rendered, with each mention as a `<spark-mention>` element.
    #[serde(default)]
    pub html: Option<String>,
    #[serde(default)]
    pub person_id: Option<String>,
    #[serde(default)]
    pub person_email: Option<String>,
    #[serde(default)]
    pub parent_id: Option<String>,
    #[serde(default)]
    pub created: Option<jiff::Timestamp>,
}

impl Message {
    /// A reply in this message's thread (the thread it is in, or the one it
    /// starts).
    pub fn reply(&self, markdown: String) -> NewMessage {
        NewMessage {
            room_id: self.room_id.clone(),
            parent_id: Some(self.parent_id.clone().unwrap_or_else(|| self.id.clone())),
            markdown,
        }
    }

    /// The words the sender's mention of `person_id` shows as in `text`
    /// ("kube", "Kube Bot", whatever the sender's client wrote), from the
    /// mention's element in `html`.
    pub fn mention_label(&self, person_id: &str) -> Option<String> {
        self.mention_labels(person_id).next()
    }

    /// How many times the message mentions `person_id`.
    pub fn mentions(&self, person_id: &str) -> usize {
        self.mention_labels(person_id).count()
    }

    fn mention_labels(&self, person_id: &str) -> impl Iterator<Item = String> {
        let html = self.html.as_deref().unwrap_or_default();
        let id = format!("data-object-id=\"{person_id}\"");
        html.match_indices("<spark-mention")
            .filter_map(move |(at, _)| {
                let element = &html[at..];
                let open_end = element.find('>')?;
                if !element[..open_end].contains(&id) {
                    return None;
                }
                let inner = &element[open_end + 1..];
                let label = &inner[..inner.find("</spark-mention>")?];
                Some(unescape_html(label))
            })
    }
}

/// Text from HTML that holds no elements: the five escapes Webex writes.
fn unescape_html(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The body of `POST /v1/messages`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewMessage {
    pub room_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    pub markdown: String,
}

/// A room the bot is in, as `GET /v1/rooms` lists it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Room {
    pub id: String,
    /// `direct` or `group`.
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub last_activity: Option<jiff::Timestamp>,
}

/// How many items one page of a list holds at most (Webex's own bound for
/// messages that mention the caller).
pub const PAGE: usize = 100;

#[derive(Debug, Deserialize)]
struct Items<T> {
    items: Vec<T>,
}

/// A registered webhook.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    pub id: String,
    pub name: String,
    pub target_url: String,
    pub resource: String,
    pub event: String,
    #[serde(default)]
    pub filter: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum WebexError {
    #[error("Webex answered {status} to {what}{}", tracking.as_deref().map(|t| format!(" (trackingId {t})")).unwrap_or_default())]
    Status {
        what: &'static str,
        status: StatusCode,
        tracking: Option<String>,
    },
    #[error("Webex is rate limiting {what}; retry after {retry_after:?}")]
    RateLimited {
        what: &'static str,
        retry_after: Duration,
    },
    #[error("cannot reach Webex for {what}: {source}")]
    Transport {
        what: &'static str,
        #[source]
        source: reqwest::Error,
    },
    #[error("unexpected answer from Webex to {what}: {source}")]
    Decode {
        what: &'static str,
        #[source]
        source: reqwest::Error,
    },
}

impl WebexError {
    /// Worth trying again later (rate limits, server errors, the network).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Status { status, .. } => {
                status.is_server_error() || *status == StatusCode::TOO_MANY_REQUESTS
            }
            Self::RateLimited { .. } | Self::Transport { .. } => true,
            Self::Decode { .. } => false,
        }
    }

    /// How long to wait before the next try, when Webex said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Retry settings for one call.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    pub attempts: u32,
    pub first_backoff: Duration,
    /// The longest single wait this client sleeps through.
    pub max_wait: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            attempts: 5,
            first_backoff: Duration::from_millis(100),
            max_wait: Duration::from_secs(10),
        }
    }
}

#[derive(Clone)]
pub struct WebexClient {
    http: reqwest::Client,
    base: String,
    token: SecretString,
    retry: Retry,
}

impl std::fmt::Debug for WebexClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebexClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl WebexClient {
    /// `base` is the API root ending in `/v1`.
    pub fn new(base: &str, token: SecretString) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(64)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token,
            retry: Retry::default(),
        }
    }

    pub fn with_retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    pub async fn me(&self) -> Result<Person, WebexError> {
        self.call(
            "GET /people/me",
            Method::GET,
            "/people/me",
            None::<&()>,
            &[],
        )
        .await
    }

    pub async fn message(&self, id: &str) -> Result<Message, WebexError> {
        let path = format!("/messages/{}", encode(id));
        self.call("GET /messages/{id}", Method::GET, &path, None::<&()>, &[])
            .await
    }

    pub async fn post_message(&self, message: &NewMessage) -> Result<Message, WebexError> {
        self.call(
            "POST /messages",
            Method::POST,
            "/messages",
            Some(message),
            &[],
        )
        .await
    }

    /// Replaces a message's text (Webex allows editing the bot's own messages).
    pub async fn edit_message(
        &self,
        id: &str,
        room_id: &str,
        markdown: &str,
    ) -> Result<Message, WebexError> {
        let path = format!("/messages/{}", encode(id));
        let body = serde_json::json!({ "roomId": room_id, "markdown": markdown });
        self.call("PUT /messages/{id}", Method::PUT, &path, Some(&body), &[])
            .await
    }

    /// The replies in a thread, newest first.
    pub async fn thread(&self, room_id: &str, parent_id: &str) -> Result<Vec<Message>, WebexError> {
        self.messages(&[("roomId", room_id), ("parentId", parent_id), ("max", "100")])
            .await
    }

    /// One page of `GET /messages`, newest first.
    async fn messages(&self, query: &[(&str, &str)]) -> Result<Vec<Message>, WebexError> {
        let items: Items<Message> = self
            .call(
                "GET /messages",
                Method::GET,
                "/messages",
                None::<&()>,
                query,
            )
            .await?;
        Ok(items.items)
    }

    /// The bot's rooms, the most recently active first (one page).
    pub async fn recent_rooms(&self) -> Result<Vec<Room>, WebexError> {
        let max = PAGE.to_string();
        let query = [("sortBy", "lastactivity"), ("max", max.as_str())];
        let items: Items<Room> = self
            .call("GET /rooms", Method::GET, "/rooms", None::<&()>, &query)
            .await?;
        Ok(items.items)
    }

    /// The messages of a room the bot's webhooks deliver (one page, newest
    /// first, those before `before` if given): in a group space those that
    /// mention it (`mentionedPeople=me`), in a 1:1 space all of them
    /// (`roomType=direct`).
    pub async fn addressed_to_bot(
        &self,
        room: &Room,
        before: Option<&str>,
    ) -> Result<Vec<Message>, WebexError> {
        let max = PAGE.to_string();
        let mut query = vec![("roomId", room.id.as_str()), ("max", max.as_str())];
        if room.kind != "direct" {
            query.push(("mentionedPeople", "me"));
        }
        if let Some(before) = before {
            query.push(("beforeMessage", before));
        }
        self.messages(&query).await
    }

    pub async fn webhooks(&self) -> Result<Vec<Webhook>, WebexError> {
        let items: Items<Webhook> = self
            .call(
                "GET /webhooks",
                Method::GET,
                "/webhooks",
                None::<&()>,
                &[("max", "100")],
            )
            .await?;
        Ok(items.items)
    }

    pub async fn create_webhook(&self, body: &serde_json::Value) -> Result<Webhook, WebexError> {
        self.call("POST /webhooks", Method::POST, "/webhooks", Some(body), &[])
            .await
    }

    pub async fn update_webhook(
        &self,
        id: &str,
        body: &serde_json::Value,
    ) -> Result<Webhook, WebexError> {
        let path = format!("/webhooks/{}", encode(id));
        self.call("PUT /webhooks/{id}", Method::PUT, &path, Some(body), &[])
            .await
    }

    pub async fn delete_webhook(&self, id: &str) -> Result<(), WebexError> {
        let path = format!("/webhooks/{}", encode(id));
        self.send(
            "DELETE /webhooks/{id}",
            Method::DELETE,
            &path,
            None::<&()>,
            &[],
        )
        .await
        .map(drop)
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        what: &'static str,
        method: Method,
        path: &str,
        body: Option<&B>,
        query: &[(&str, &str)],
    ) -> Result<T, WebexError> {
        let response = self.send(what, method, path, body, query).await?;
        response
            .json()
            .await
            .map_err(|source| WebexError::Decode { what, source })
    }

    /// Sends with retries; returns the first 2xx answer.
    async fn send<B: Serialize>(
        &self,
        what: &'static str,
        method: Method,
        path: &str,
        body: Option<&B>,
        query: &[(&str, &str)],
    ) -> Result<reqwest::Response, WebexError> {
        let url = format!("{}{path}", self.base);
        let mut backoff = self.retry.first_backoff;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = self
                .http
                .request(method.clone(), &url)
                .bearer_auth(self.token.expose_secret())
                .query(query);
            if let Some(body) = body {
                request = request.json(body);
            }
            let error = match request.send().await {
                Ok(r) if r.status().is_success() => return Ok(r),
                Ok(r) if r.status() == StatusCode::TOO_MANY_REQUESTS => WebexError::RateLimited {
                    what,
                    retry_after: retry_after(&r).unwrap_or(backoff),
                },
                Ok(r) => WebexError::Status {
                    what,
                    status: r.status(),
                    tracking: r
                        .headers()
                        .get("trackingid")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned),
                },
                Err(source) => WebexError::Transport { what, source },
            };
            if !error.is_transient() || attempt >= self.retry.attempts {
                return Err(error);
            }
            let wait = error.retry_after().unwrap_or_else(|| jitter(backoff));
            if wait > self.retry.max_wait {
                return Err(error);
            }
            tracing::debug!(what, attempt, ?wait, %error, "retrying a Webex call");
            tokio::time::sleep(wait).await;
            backoff = (backoff * 2).min(self.retry.max_wait);
        }
    }
}

/// `Retry-After` in seconds (Webex's form).
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let secs: u64 = response
        .headers()
        .get("retry-after")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs))
}

/// Between half and all of `d`, so retrying clients spread out.
fn jitter(d: Duration) -> Duration {
    d.mul_f64(0.5 + fastrand::f64() / 2.0)
}

/// Webex ids are base64url-ish; anything else is percent-encoded so a
/// hostile id cannot change the path.
fn encode(id: &str) -> String {
    id.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_cannot_escape_the_path() {
        assert_eq!(
            encode("Y2lzY29zcGFyazovL3VzL01FU1NBR0Uv"),
            "Y2lzY29zcGFyazovL3VzL01FU1NBR0Uv"
        );
        assert_eq!(encode("../people/me"), "..%2Fpeople%2Fme");
        assert_eq!(encode("a?b#c d"), "a%3Fb%23c%20d");
    }

    #[test]
    fn a_mention_shows_as_its_label_in_the_html() {
        let message = |html: &str| Message {
            id: "m".into(),
            room_id: "r".into(),
            room_type: None,
            text: None,
            markdown: None,
            html: Some(html.into()),
            person_id: None,
            person_email: None,
            parent_id: None,
            created: None,
        };
        let html = "<p><spark-mention data-object-type=\"person\" data-object-id=\"ALICE\">Alice</spark-mention> and <spark-mention data-object-type=\"person\" data-object-id=\"BOT\">Kube &amp; Bot</spark-mention> scale web to 3</p>";
        assert_eq!(
            message(html).mention_label("BOT").as_deref(),
            Some("Kube & Bot")
        );
        assert_eq!(
            message(html).mention_label("ALICE").as_deref(),
            Some("Alice")
        );
        assert_eq!(message(html).mention_label("CAROL"), None);
        assert_eq!(message("<p>no mention</p>").mention_label("BOT"), None);
        assert_eq!(
            message("<spark-mention data-object-id=\"BOT\">cut").mention_label("BOT"),
            None
        );
    }

    #[test]
    fn the_mention_name_is_the_first_name() {
        let p = |first: Option<&str>, display: &str| Person {
            id: "p".into(),
            emails: vec![],
            display_name: display.into(),
            first_name: first.map(str::to_owned),
        };
        assert_eq!(p(Some("kube"), "kube bot").mention_name(), "kube");
        assert_eq!(p(None, "Kube Bot").mention_name(), "Kube");
        assert_eq!(p(Some(""), "Ops").mention_name(), "Ops");
    }

    #[test]
    fn jitter_stays_within_half_to_all() {
        for _ in 0..100 {
            let j = jitter(Duration::from_millis(100));
            assert!(j >= Duration::from_millis(50) && j <= Duration::from_millis(100));
        }
    }
}

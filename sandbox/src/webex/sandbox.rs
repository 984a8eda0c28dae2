//! [`WebexSandbox`]: a running sandbox on a loopback port, with the driver
//! tests use to act as users and to see what happened. Dropping it stops
//! the server and its delivery workers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::cards::AttachmentAction;
use super::control::RecordedRequest;
use super::deliveries::Delivery;
use super::error::ApiError;
use super::faults::Fault;
use super::messages::{Message, MessageDraft};
use super::people::{Person, PersonType};
use super::rooms::RoomType;
use super::server;
use super::store::{Shared, Store};
use super::webhooks::Webhook;

/// Why a sandbox did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid sandbox people: {0}")]
    People(String),
    #[error("cannot build the webhook delivery client: {0}")]
    Client(#[source] reqwest::Error),
}

/// Why a driver action was refused: what Webex would have answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DriverError {
    #[error("nobody in the sandbox has the email {0}")]
    UnknownPerson(String),
    #[error("Webex would answer {status}: {message}")]
    Refused { status: u16, message: String },
}

impl From<ApiError> for DriverError {
    fn from(e: ApiError) -> Self {
        Self::Refused {
            status: e.status().as_u16(),
            message: e.to_string(),
        }
    }
}

/// A condition that did not come true in time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("timed out after {limit:?} waiting for {what}")]
pub struct WaitTimeout {
    pub what: String,
    pub limit: Duration,
}

/// Sets up a sandbox: who is in it and where it listens.
#[derive(Debug, Clone)]
pub struct WebexSandboxBuilder {
    listen: SocketAddr,
    bot_name: String,
    bot_token: String,
    users: Vec<(String, String)>,
    room_title: String,
    delivery_timeout: Duration,
}

impl Default for WebexSandboxBuilder {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            bot_name: "kube".to_owned(),
            bot_token: "sandbox-bot-token".to_owned(),
            users: Vec::new(),
            room_title: "chatops".to_owned(),
            delivery_timeout: Duration::from_secs(10),
        }
    }
}

impl WebexSandboxBuilder {
    /// The bot: its display (and first) name, e.g. `kube`, and its token.
    /// Its email is `<name>@webex.bot`. Default: `kube`, `sandbox-bot-token`.
    pub fn bot(mut self, name: &str, token: &str) -> Self {
        name.clone_into(&mut self.bot_name);
        token.clone_into(&mut self.bot_token);
        self
    }

    /// A user; the display name comes from the email (`alice.smith@…` is
    /// "Alice Smith", first name "Alice").
    pub fn user(mut self, email: &str, token: &str) -> Self {
        self.users.push((email.to_owned(), token.to_owned()));
        self
    }

    /// Where to listen; default `127.0.0.1:0` (a port the OS picks).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// The title of the default room. Default `chatops`.
    pub fn room_title(mut self, title: &str) -> Self {
        title.clone_into(&mut self.room_title);
        self
    }

    /// How long a webhook target may take to answer before the delivery
    /// counts as failed. Default 10 s.
    pub fn delivery_timeout(mut self, timeout: Duration) -> Self {
        self.delivery_timeout = timeout;
        self
    }

    fn check_people(&self) -> Result<(), StartError> {
        let bad = |m: String| Err(StartError::People(m));
        if self.bot_name.trim().is_empty() || self.bot_token.is_empty() {
            return bad("the bot needs a name and a token".to_owned());
        }
        let mut tokens = vec![self.bot_token.as_str()];
        let mut emails: Vec<String> = Vec::new();
        for (email, token) in &self.users {
            if !email.contains('@') || email.starts_with('@') {
                return bad(format!("{email:?} is not an email address"));
            }
            if token.is_empty() || token.contains(char::is_whitespace) {
                return bad(format!("the token of {email} is empty or has spaces"));
            }
            if tokens.contains(&token.as_str()) {
                return bad(format!("the token of {email} is already someone else's"));
            }
            if emails.iter().any(|e| e.eq_ignore_ascii_case(email)) {
                return bad(format!("{email} is listed twice"));
            }
            tokens.push(token);
            emails.push(email.clone());
        }
        Ok(())
    }

    /// Binds the port, creates the people and the default room (every user
    /// and the bot), and serves in the background.
    pub async fn start(self) -> Result<WebexSandbox, StartError> {
        self.check_people()?;
        // reqwest is built without a TLS provider; deliveries to https
        // targets need one. Installing fails only if one is already there.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(self.delivery_timeout)
            .build()
            .map_err(StartError::Client)?;
        let bind = |source| StartError::Bind {
            addr: self.listen,
            source,
        };
        let listener = TcpListener::bind(self.listen).await.map_err(bind)?;
        let addr = listener.local_addr().map_err(bind)?;

        let mut store = Store::new();
        let slug: String = self
            .bot_name
            .to_lowercase()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join("-");
        let bot = store.add_person(
            &format!("{slug}@webex.bot"),
            Some(&self.bot_name),
            &self.bot_token,
            PersonType::Bot,
        );
        let mut members: Vec<Person> = self
            .users
            .iter()
            .map(|(email, token)| store.add_person(email, None, token, PersonType::Person))
            .collect();
        members.push(bot.clone());
        let room = store.create_room(&self.room_title, RoomType::Group, &members, false);
        store.default_room_id = room.id.clone();

        let shared = Arc::new(Shared::new(store, http, addr));
        let router = server::router(shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
        });
        tracing::info!(%addr, "webex sandbox listening");
        Ok(WebexSandbox {
            shared,
            addr,
            default_room_id: room.id,
            bot,
            stop: Some(stop),
            server: Some(server),
        })
    }
}

/// A running in-memory Webex.
///
/// Clients use [`url`](Self::url) as their Webex API base URL and the
/// tokens given to the builder. Tests act as users through the driver
/// methods (`post_as`, `press_card_button`), which behave like the API
/// called with that user's token but bypass faults and the request log,
/// and inspect everything through the accessors.
#[derive(Debug)]
pub struct WebexSandbox {
    shared: Arc<Shared>,
    addr: SocketAddr,
    default_room_id: String,
    bot: Person,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

impl WebexSandbox {
    /// A builder with the default bot (`kube`) and no users.
    pub fn builder() -> WebexSandboxBuilder {
        WebexSandboxBuilder::default()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API base URL, `http://127.0.0.1:PORT/v1` (no trailing slash;
    /// the Python SDK wants one added).
    pub fn url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The base of the control endpoints, `http://127.0.0.1:PORT/_sandbox`.
    pub fn control_url(&self) -> String {
        format!("http://{}/_sandbox", self.addr)
    }

    /// The group room every user and the bot are in from the start.
    pub fn default_room_id(&self) -> &str {
        &self.default_room_id
    }

    pub fn bot(&self) -> &Person {
        &self.bot
    }

    pub fn person(&self, email: &str) -> Option<Person> {
        self.shared.lock().person_by_email(email).cloned()
    }

    pub fn people(&self) -> Vec<Person> {
        self.shared
            .lock()
            .people
            .iter()
            .map(|r| r.person.clone())
            .collect()
    }

    fn as_person(&self, email: &str) -> Result<Person, DriverError> {
        self.person(email)
            .ok_or_else(|| DriverError::UnknownPerson(email.to_owned()))
    }

    /// Posts `markdown` into `room_id` as the user `email`, exactly as
    /// `POST /v1/messages` with their token would (mentions, limits,
    /// webhooks).
    pub fn post_as(
        &self,
        email: &str,
        room_id: &str,
        markdown: &str,
    ) -> Result<Message, DriverError> {
        self.send_as(email, MessageDraft::markdown(room_id, markdown))
    }

    /// Replies in the thread of `parent_id`, in its room.
    pub fn reply_as(
        &self,
        email: &str,
        parent_id: &str,
        markdown: &str,
    ) -> Result<Message, DriverError> {
        let room_id =
            self.message(parent_id)
                .map(|m| m.room_id)
                .ok_or_else(|| DriverError::Refused {
                    status: 400,
                    message: format!("no message {parent_id}"),
                })?;
        self.send_as(
            email,
            MessageDraft::markdown(&room_id, markdown).in_thread(parent_id),
        )
    }

    /// Sends any message as `email` (direct messages, cards, plain text).
    pub fn send_as(&self, email: &str, draft: MessageDraft) -> Result<Message, DriverError> {
        let author = self.as_person(email)?;
        Ok(self.shared.update(|s| s.post_message(&author, draft))?)
    }

    /// The user `email` submits the card of `message_id` with `inputs` (the
    /// card's input values and the button's `data`, as one JSON object).
    pub fn press_card_button(
        &self,
        email: &str,
        message_id: &str,
        inputs: serde_json::Value,
    ) -> Result<AttachmentAction, DriverError> {
        let person = self.as_person(email)?;
        Ok(self
            .shared
            .update(|s| s.press_card(&person, message_id, inputs))?)
    }

    /// Every message in a room, oldest first, whoever may read it.
    pub fn messages_in(&self, room_id: &str) -> Vec<Message> {
        self.shared
            .lock()
            .messages
            .iter()
            .filter(|m| m.message.room_id == room_id)
            .map(|m| m.message.clone())
            .collect()
    }

    /// The replies in the thread of `parent_id`, oldest first.
    pub fn thread(&self, parent_id: &str) -> Vec<Message> {
        self.shared
            .lock()
            .messages
            .iter()
            .filter(|m| m.message.parent_id.as_deref() == Some(parent_id))
            .map(|m| m.message.clone())
            .collect()
    }

    pub fn message(&self, id: &str) -> Option<Message> {
        self.shared.lock().message(id).map(|m| m.message.clone())
    }

    /// Every webhook, whoever registered it.
    pub fn webhooks(&self) -> Vec<Webhook> {
        self.shared
            .lock()
            .webhooks
            .iter()
            .map(|w| w.webhook.clone())
            .collect()
    }

    /// Every delivery so far, in the order they were queued.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared.lock().deliveries.clone()
    }

    /// Every `/v1` request so far, in the order they were answered.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// Adds a fault for the next matching requests.
    pub fn inject(&self, fault: Fault) {
        self.shared.update(|s| s.add_fault(fault));
    }

    pub fn clear_faults(&self) {
        self.shared.update(|s| s.faults.clear());
    }

    /// Waits until `probe` returns `Some`, re-checking whenever the
    /// sandbox changes (no polling), for at most `limit`.
    pub async fn wait_for<T>(
        &self,
        what: &str,
        limit: Duration,
        mut probe: impl FnMut(&Self) -> Option<T>,
    ) -> Result<T, WaitTimeout> {
        let deadline = Instant::now() + limit;
        let mut changes = self.shared.subscribe();
        loop {
            // Seen before probing, so a change during the probe wakes us.
            changes.borrow_and_update();
            if let Some(found) = probe(self) {
                return Ok(found);
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => {
                    return Err(WaitTimeout {
                        what: what.to_owned(),
                        limit,
                    });
                }
            }
        }
    }

    /// Waits until at least `count` deliveries are finished (delivered,
    /// failed or dropped) and returns the finished ones.
    pub async fn await_deliveries(
        &self,
        count: usize,
        limit: Duration,
    ) -> Result<Vec<Delivery>, WaitTimeout> {
        self.wait_for(&format!("{count} finished deliveries"), limit, |wx| {
            let done: Vec<Delivery> = wx
                .deliveries()
                .into_iter()
                .filter(Delivery::is_finished)
                .collect();
            (done.len() >= count).then_some(done)
        })
        .await
    }

    /// Stops serving, letting requests in flight finish (for at most 5 s).
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let abort = server.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), server)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

impl Drop for WebexSandbox {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
        // Workers hold only a weak reference, but one may be mid-request.
        for webhook in &self.shared.lock().webhooks {
            webhook.worker.abort();
        }
    }
}

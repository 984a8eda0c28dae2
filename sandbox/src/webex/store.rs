//! The sandbox's whole state, in memory behind one lock, and the handle the
//! HTTP handlers, the delivery workers and the test driver share.
//!
//! Every operation is synchronous under the lock (nothing awaits while
//! holding it), so a message, the deliveries it causes and the records of
//! both appear together; waiters are told through a watch channel.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};

use tokio::sync::watch;

use super::cards::AttachmentAction;
use super::control::RecordedRequest;
use super::deliveries::Delivery;
use super::faults::ActiveFault;
use super::ids::{self, Kind};
use super::messages::StoredMessage;
use super::people::PersonRecord;
use super::rooms::{Membership, Room};
use super::webhooks::WebhookRecord;

#[derive(Debug)]
pub(crate) struct Store {
    /// The one organisation everyone belongs to (Webex id form).
    pub(crate) org_id: String,
    /// The application the webhooks are registered through.
    pub(crate) app_id: String,
    pub(crate) people: Vec<PersonRecord>,
    pub(crate) rooms: Vec<Room>,
    pub(crate) memberships: Vec<Membership>,
    /// Every message in posting order; only [`Store::add_message`],
    /// [`Store::remove_message`] and [`Store::remove_room_messages`] change
    /// the list, so the index stays right.
    pub(crate) messages: Vec<StoredMessage>,
    /// Where each message id is in `messages`: lookups by id (every fetch,
    /// every reply's parent) must not scan a long-running sandbox's history.
    pub(crate) message_index: HashMap<String, usize>,
    pub(crate) webhooks: Vec<WebhookRecord>,
    pub(crate) actions: Vec<AttachmentAction>,
    pub(crate) requests: Vec<RecordedRequest>,
    pub(crate) deliveries: Vec<Delivery>,
    pub(crate) faults: Vec<ActiveFault>,
    pub(crate) default_room_id: String,
    seq: u64,
}

impl Store {
    pub(crate) fn new() -> Self {
        Self {
            org_id: ids::new_id(Kind::Organization),
            app_id: ids::encode(
                Kind::Application,
                &uuid::Uuid::new_v4().simple().to_string(),
            ),
            people: Vec::new(),
            rooms: Vec::new(),
            memberships: Vec::new(),
            messages: Vec::new(),
            message_index: HashMap::new(),
            webhooks: Vec::new(),
            actions: Vec::new(),
            requests: Vec::new(),
            deliveries: Vec::new(),
            faults: Vec::new(),
            default_room_id: String::new(),
            seq: 0,
        }
    }

    /// One counter for everything that needs an order (messages, records),
    /// so "newest first" never depends on clock resolution.
    pub(crate) fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }
}

/// What every handler, worker and the test handle hold.
pub(crate) struct Shared {
    store: Mutex<Store>,
    changes: watch::Sender<u64>,
    /// Sends webhook deliveries; no proxy, no redirects, bounded time.
    pub(crate) http: reqwest::Client,
    /// Where the server listens, for links when a request has no Host.
    pub(crate) addr: SocketAddr,
}

// The store is large and behind a lock; debug output names the sandbox only.
impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub(crate) fn new(store: Store, http: reqwest::Client, addr: SocketAddr) -> Self {
        Self {
            store: Mutex::new(store),
            changes: watch::Sender::new(0),
            http,
            addr,
        }
    }

    /// The store. A panic while holding the lock leaves data that is still
    /// consistent enough for a test double, so poisoning is ignored.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes the store and wakes everyone waiting for a change.
    pub(crate) fn update<T>(&self, f: impl FnOnce(&mut Store) -> T) -> T {
        let result = f(&mut self.lock());
        self.changes.send_modify(|v| *v = v.wrapping_add(1));
        result
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }
}

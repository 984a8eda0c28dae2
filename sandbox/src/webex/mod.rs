//! The Webex API stand-in: an in-memory Webex that the gateway, the tests
//! and the demo use exactly as the real one, through its base URL.
//!
//! It serves the part of the public API chatops uses, in the shapes of
//! `../shared/fixtures/webex/`: people (`/v1/people/me`, `/v1/people/{id}`),
//! rooms and memberships (renaming, deletion, moderators, hidden 1:1
//! rooms), messages (markdown mentions, threads, one Adaptive Card, the
//! 7439-byte limit, a bot's view of group rooms, 1:1 message lists),
//! webhooks with signed deliveries (`X-Spark-Signature`, no retries,
//! disabled after 100 failures in five minutes), card submissions
//! (`/v1/attachment/actions`), bearer-token auth with Webex's error body and
//! a `trackingid` header on every answer. Under `/_sandbox/` it records
//! every request and delivery and takes injected faults (429 with
//! `Retry-After`, 5xx, latency).
//!
//! The official Python SDK (`webexpythonsdk`) works against it unmodified;
//! `tests/sandbox/webex/` proves it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use chatops_sandbox::webex::WebexSandbox;
//!
//! let wx = WebexSandbox::builder()
//!     .bot("kube", "bot-token")
//!     .user("alice@example.com", "alice-token")
//!     .start()
//!     .await?;
//! // Point the client under test at wx.url() with "bot-token", let it
//! // register its webhook, then act as Alice:
//! let command = wx.post_as(
//!     "alice@example.com",
//!     wx.default_room_id(),
//!     &format!("{} scale web to 3", wx.bot().mention()),
//! )?;
//! let reply = wx
//!     .wait_for("the bot's reply", std::time::Duration::from_secs(10), |wx| {
//!         wx.thread(&command.id).into_iter().find(|m| m.person_id == wx.bot().id)
//!     })
//!     .await?;
//! # let _ = reply;
//! # Ok(())
//! # }
//! ```

mod cards;
mod control;
mod deliveries;
mod error;
mod faults;
mod ids;
mod markdown;
mod messages;
mod paging;
mod people;
mod rooms;
mod sandbox;
mod server;
mod store;
mod webhooks;

pub use cards::AttachmentAction;
pub use control::RecordedRequest;
pub use deliveries::{Delivery, DeliveryState, SIGNATURE_HEADER, spark_signature};
pub use error::MAX_MESSAGE_BYTES;
pub use faults::{Fault, FaultKind};
pub use messages::{ADAPTIVE_CARD, Message, MessageDraft};
pub use people::{Person, PersonType};
pub use rooms::{Membership, Room, RoomType};
pub use sandbox::{DriverError, StartError, WaitTimeout, WebexSandbox, WebexSandboxBuilder};
pub use webhooks::{DISABLE_AFTER_FAILURES, FAILURE_WINDOW, Webhook, WebhookStatus};

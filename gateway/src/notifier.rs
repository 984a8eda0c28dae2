//! The notifier: relays workers' results to the command's Webex thread.
//!
//! A durable pull consumer on CHATOPS_RESULTS shared by every gateway
//! replica, so each result is handled by one of them. A result is acked only
//! after Webex accepted the reply. Each posted reply is remembered by command
//! id (CHATOPS_REPLIES), and a redelivered result first looks for its reply
//! in the thread (its `ref <id>` marker), so a crash between posting and
//! acking never doubles a reply. In-progress results edit one message
//! instead of adding new ones.
//!
//! A second delivery of a result that this gateway is still relaying (a
//! nats-server restarted from its file store can forget a delivery and
//! send it again at once) is left alone: the first one acks or naks it.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::{self, AckKind};
use chatops_shared::consume::{Held, InHand};
use chatops_shared::{CommandId, CommandResult, Outcome};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::metrics::Metrics;
use crate::replies;
use crate::webex::{NewMessage, WebexClient, WebexError};

/// Results relayed at once by one gateway.
const CONCURRENCY: usize = 64;

/// How long a posted reply's record is tried before giving up: the
/// record is what stops a redelivery from posting it again, so it is worth
/// riding out a NATS restart or a new stream leader's election for, within
/// the gateway's 20 s shutdown grace (the result's ack deadline is
/// extended meanwhile).
const RECORD_BUDGET: Duration = Duration::from_secs(16);

/// Results being relayed by this gateway: (command, final?).
type InFlight = InHand<(CommandId, bool)>;

#[derive(Debug)]
pub struct Notifier {
    pub jetstream: jetstream::Context,
    pub webex: WebexClient,
    pub replies: chatops_shared::streams::Record,
    pub progress_every: Duration,
    pub metrics: Arc<Metrics>,
}

/// What happened to one result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Posted,
    Edited,
    /// An in-progress result not shown: its message was edited as often as
    /// Webex allows.
    EditsSpent,
    /// Posted before (found in the record or in the thread).
    AlreadyPosted,
    /// Webex refused it for good (the bot left the room, say).
    Undeliverable,
    /// Not a result this build understands.
    Malformed,
}

fn final_key(result: &CommandResult) -> String {
    format!("final.{}", result.command_id)
}

fn progress_key(result: &CommandResult) -> String {
    format!("progress.{}", result.command_id)
}

/// Webex lets a message be edited "not more than 10 times".
const EDIT_LIMIT: u32 = 10;

/// A command's progress message, as its record keeps it: the message's id
/// and the times it was edited (`<id> <edits>`; ids hold no spaces).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Progress<'a> {
    id: &'a str,
    edits: u32,
}

impl<'a> Progress<'a> {
    /// A record without a count is of a message not yet edited.
    fn read(record: &'a str) -> Self {
        match record.split_once(' ') {
            Some((id, edits)) => Progress {
                id,
                edits: edits.parse().unwrap_or(EDIT_LIMIT),
            },
            None => Progress {
                id: record,
                edits: 0,
            },
        }
    }

    fn write(self) -> String {
        format!("{} {}", self.id, self.edits)
    }
}

impl Notifier {
    pub async fn run(
        self: Arc<Self>,
        consumer: PullConsumer,
        shutdown: CancellationToken,
    ) -> Result<(), async_nats::Error> {
        let this = self.clone();
        let in_flight = InFlight::default();
        let slots = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
        chatops_shared::consume::messages(self.jetstream.clone(), consumer, slots, shutdown)
            .for_each_concurrent(None, move |(message, slot)| {
                let this = this.clone();
                let in_flight = in_flight.clone();
                async move {
                    // Held until the result is relayed (or left alone).
                    let _slot = slot;
                    let Some(_relaying) = relaying(&in_flight, &message.payload) else {
                        tracing::info!("a result already being relayed was delivered again; leaving it to the first delivery");
                        return;
                    };
                    this.handle(message).await;
                }
            })
            .await;
        Ok(())
    }

    async fn handle(&self, message: jetstream::Message) {
        let redelivered = message.info().map(|i| i.delivered > 1).unwrap_or(false);
        let work = self.deliver(&message.payload, redelivered);
        match chatops_shared::consume::with_progress(&message, self.progress_every, work).await {
            Ok(delivery) => {
                self.metrics.reply(match delivery {
                    Delivery::Posted => "posted",
                    Delivery::Edited => "edited",
                    Delivery::EditsSpent => "edits_spent",
                    Delivery::AlreadyPosted => "already_posted",
                    Delivery::Undeliverable => "failed",
                    Delivery::Malformed => "malformed",
                });
                let acked = if delivery == Delivery::Malformed {
                    message.ack_with(AckKind::Term).await
                } else {
                    message.ack().await
                };
                if let Err(e) = acked {
                    tracing::warn!(error = %e, "cannot ack a result; its redelivery will find the reply");
                }
            }
            Err(e) => {
                self.metrics.reply("retried");
                // A result is delivered until its reply is posted: an
                // outage of Webex loses no reply.
                let delay = e
                    .retry_after()
                    .unwrap_or_else(|| {
                        chatops_shared::consume::backoff(chatops_shared::consume::delivered(
                            &message,
                        ))
                    })
                    .min(Duration::from_secs(60));
                tracing::warn!(error = %e, ?delay, "reply not relayed; will retry");
                if let Err(e) = message.ack_with(AckKind::Nak(Some(delay))).await {
                    tracing::warn!(error = %e, "cannot nak a result; it will be redelivered after the ack wait");
                }
            }
        }
    }

    /// Posts (or edits) the reply for one result. `Err` means try again later.
    pub async fn deliver(&self, payload: &[u8], redelivered: bool) -> Result<Delivery, RelayError> {
        let result: CommandResult = match serde_json::from_slice(payload) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "a result this build cannot read");
                return Ok(Delivery::Malformed);
            }
        };
        let span = tracing::info_span!("notify", command_id = %result.command_id, outcome = ?result.outcome);
        self.deliver_result(&result, redelivered)
            .instrument(span)
            .await
    }

    async fn deliver_result(
        &self,
        result: &CommandResult,
        redelivered: bool,
    ) -> Result<Delivery, RelayError> {
        if result.outcome == Outcome::InProgress {
            return self.progress(result).await;
        }
        if self.recorded(&final_key(result)).await?.is_some() {
            return Ok(Delivery::AlreadyPosted);
        }
        if redelivered {
            // Best effort: Webex lets a bot list a group room's thread only
            // for messages that mention it, so the record above is what
            // normally answers; this covers a crash between Webex's answer
            // and the record where listing is allowed (1:1 rooms).
            match self.find_in_thread(result).await {
                Ok(Some(_)) => {
                    self.record(&final_key(result), "found").await;
                    return Ok(Delivery::AlreadyPosted);
                }
                Ok(None) => {}
                Err(e) if e.is_transient() => return Err(e.into()),
                Err(e) => tracing::debug!(error = %e, "cannot list the thread; posting"),
            }
        }
        let posted = self.post(result).await;
        let posted = match posted {
            Ok(p) => p,
            Err(e) if e.is_transient() => return Err(e.into()),
            Err(e) => {
                tracing::warn!(error = %e, "Webex refuses the reply; giving up on it");
                return Ok(Delivery::Undeliverable);
            }
        };
        self.record(&final_key(result), &posted).await;
        let age = jiff::Timestamp::now().as_millisecond() - command_time_ms(result);
        if age >= 0 {
            self.metrics.end_to_end(age as f64 / 1000.0);
        }
        tracing::info!(reply_id = %posted, "result relayed");
        Ok(Delivery::Posted)
    }

    async fn progress(&self, result: &CommandResult) -> Result<Delivery, RelayError> {
        if self.recorded(&final_key(result)).await?.is_some() {
            // The final reply is out; a late progress report changes nothing.
            return Ok(Delivery::AlreadyPosted);
        }
        if let Some(record) = self.recorded(&progress_key(result)).await? {
            let Progress { id, edits } = Progress::read(&record);
            if edits >= EDIT_LIMIT {
                // Webex would refuse the edit; the final reply says the rest.
                return Ok(Delivery::EditsSpent);
            }
            let markdown = if edits + 1 == EDIT_LIMIT {
                replies::last_progress(result)
            } else {
                replies::result(result)
            };
            return match self
                .webex
                .edit_message(id, &result.origin.room_id, &markdown)
                .await
            {
                Ok(_) => {
                    let edited = Progress {
                        id,
                        edits: edits + 1,
                    };
                    self.record(&progress_key(result), &edited.write()).await;
                    Ok(Delivery::Edited)
                }
                Err(e) if e.is_transient() => Err(e.into()),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot edit the progress message");
                    Ok(Delivery::Undeliverable)
                }
            };
        }
        match self.post(result).await {
            Ok(id) => {
                let posted = Progress { id: &id, edits: 0 };
                self.record(&progress_key(result), &posted.write()).await;
                Ok(Delivery::Posted)
            }
            Err(e) if e.is_transient() => Err(e.into()),
            Err(e) => {
                tracing::warn!(error = %e, "cannot post the progress message");
                Ok(Delivery::Undeliverable)
            }
        }
    }

    async fn post(&self, result: &CommandResult) -> Result<String, WebexError> {
        let message = NewMessage {
            room_id: result.origin.room_id.clone(),
            parent_id: Some(result.origin.reply_parent().to_owned()),
            markdown: replies::result(result),
        };
        match self.webex.post_message(&message).await {
            // The thread is gone (its first message deleted since): the
            // reply goes to the room, which still has the person in it.
            Err(e) if e.status() == Some(reqwest::StatusCode::BAD_REQUEST) => {
                tracing::info!(error = %e, "cannot reply in the thread; posting to the room");
                let unthreaded = NewMessage {
                    parent_id: None,
                    ..message
                };
                self.webex.post_message(&unthreaded).await.map(|m| m.id)
            }
            posted => posted.map(|m| m.id),
        }
    }

    /// A reply to this result already in the thread, by its marker.
    async fn find_in_thread(&self, result: &CommandResult) -> Result<Option<String>, WebexError> {
        let marker = replies::result_marker(&result.command_id);
        let thread = self
            .webex
            .thread(&result.origin.room_id, result.origin.reply_parent())
            .await?;
        Ok(thread
            .into_iter()
            .find(|m| {
                m.markdown
                    .as_deref()
                    .or(m.text.as_deref())
                    .is_some_and(|t| t.contains(&marker))
            })
            .map(|m| m.id))
    }

    /// What the replies record holds for `key`. A record that cannot be
    /// read is an error, not an absence: taking it for one posted a second
    /// reply when a stream replica was lost after the first.
    async fn recorded(&self, key: &str) -> Result<Option<String>, RelayError> {
        self.replies
            .get(key)
            .await
            .map(|value| value.map(|v| String::from_utf8_lossy(&v).into_owned()))
            .map_err(RelayError::Record)
    }

    async fn record(&self, key: &str, value: &str) {
        let recorded = chatops_shared::nats::retrying(RECORD_BUDGET, "posted replies", || {
            self.replies.put(key, value.to_owned())
        })
        .await;
        if let Err(e) = recorded {
            tracing::warn!(error = %e, "cannot record a posted reply");
        }
    }
}

/// Why a result cannot be relayed now; it is retried later.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(transparent)]
    Webex(#[from] WebexError),
    /// Whether a reply is already out is unknown: posting could double it.
    #[error("cannot read the replies record: {0}")]
    Record(#[source] async_nats::Error),
}

impl RelayError {
    /// How long to wait before the next try, when Webex said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Webex(e) => e.retry_after(),
            Self::Record(_) => None,
        }
    }
}

/// Marks the result in `payload` as being relayed here, unless it already
/// is (`None`). Unreadable payloads are not tracked.
fn relaying(in_flight: &InFlight, payload: &[u8]) -> Option<Option<Held<(CommandId, bool)>>> {
    let Ok(result) = serde_json::from_slice::<CommandResult>(payload) else {
        return Some(None);
    };
    in_flight
        .hold((result.command_id, result.outcome.is_final()))
        .map(Some)
}

/// When the command was accepted: its id is a UUID v7, stamped at intake.
fn command_time_ms(result: &CommandResult) -> i64 {
    result
        .command_id
        .as_uuid()
        .get_timestamp()
        .map(|t| {
            let (secs, nanos) = t.to_unix();
            (secs as i64) * 1000 + i64::from(nanos / 1_000_000)
        })
        .unwrap_or(0)
}

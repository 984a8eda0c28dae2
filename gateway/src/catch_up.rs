//! Catch-up: Webex does not retry a webhook delivery, so a message sent
//! while no gateway answered (or while Webex had disabled the webhook after
//! failed deliveries) would go unanswered and unacted on. So ingestion's
//! gateway, when it starts and every half message age after, lists the
//! bot's rooms active within `CHATOPS_MAX_MESSAGE_AGE` and the messages in
//! them it may act on, and queues each as the event its webhook would have
//! been, with the same `Nats-Msg-Id` (the message id).
//!
//! Nothing happens twice: a message already processed is passed over; one
//! whose webhook arrived but is not processed yet is a duplicate in the
//! events stream's window, and after it ingestion finds it processed. A
//! message older than the age limit is left alone, as its webhook would be.

use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream;
use chatops_shared::streams::Record;
use chatops_shared::{CommandId, subjects};
use tokio_util::sync::CancellationToken;

use crate::ingestion::{Bot, processed_key};
use crate::metrics::Metrics;
use crate::webex::{Message, PAGE, Room, WebexClient, WebexError};

/// What one pass found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// Messages within the age limit the bot may act on.
    pub seen: usize,
    /// Of those, how many were not processed and not in the events stream.
    pub queued: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum CatchUpError {
    #[error(transparent)]
    Webex(#[from] WebexError),
    #[error("cannot queue a missed message: {0}")]
    Queue(async_nats::Error),
    #[error("cannot read the processed message ids: {0}")]
    Processed(async_nats::Error),
}

#[derive(Debug)]
pub struct CatchUp {
    pub jetstream: jetstream::Context,
    pub webex: WebexClient,
    pub bot: Bot,
    pub processed: Record,
    /// How far back to look: the age beyond which a message is not acted on.
    pub max_message_age: Duration,
    pub metrics: Arc<Metrics>,
}

impl CatchUp {
    /// A pass now, then one every half message age, until `stop`.
    pub async fn run(&self, stop: CancellationToken) {
        let every = self.max_message_age / 2;
        loop {
            match self.pass().await {
                Ok(pass) => {
                    if pass.queued > 0 {
                        tracing::warn!(
                            queued = pass.queued,
                            seen = pass.seen,
                            "queued messages whose webhooks never arrived"
                        );
                    } else {
                        tracing::debug!(seen = pass.seen, "catch-up found nothing missed");
                    }
                    self.metrics.catch_up("done", pass.queued);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "catch-up could not look for missed messages");
                    self.metrics.catch_up("failed", 0);
                }
            }
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = stop.cancelled() => return,
            }
        }
    }

    /// Looks once for messages within the age limit and queues those the
    /// events stream does not hold.
    pub async fn pass(&self) -> Result<Pass, CatchUpError> {
        let since = jiff::Timestamp::now()
            - jiff::SignedDuration::try_from(self.max_message_age).unwrap_or_default();
        let rooms = self.webex.recent_rooms().await?;
        if rooms.len() >= PAGE {
            tracing::warn!(
                rooms = rooms.len(),
                "catch-up looks only at the most recently active rooms"
            );
        }
        let mut pass = Pass::default();
        // Rooms come most recently active first: the rest are quiet.
        for room in rooms
            .iter()
            .take_while(|r| r.last_activity.is_none_or(|at| at >= since))
        {
            let messages = match self.webex.recent_messages(room).await {
                Ok(messages) => messages,
                // The bot left or was removed since the rooms were listed.
                Err(e) if e.status().is_some_and(|s| s.is_client_error()) => continue,
                Err(e) => return Err(e.into()),
            };
            for message in messages
                .iter()
                .take_while(|m| m.created.is_none_or(|at| at >= since))
                .filter(|m| {
                    !self
                        .bot
                        .wrote(m.person_id.as_deref(), m.person_email.as_deref())
                })
            {
                pass.seen += 1;
                let processed = self
                    .processed
                    .get(&processed_key(&message.id))
                    .await
                    .map_err(CatchUpError::Processed)?;
                if processed.is_none() && self.queue(room, message).await? {
                    pass.queued += 1;
                }
            }
        }
        Ok(pass)
    }

    /// Queues the event a webhook would have carried; true if the stream
    /// did not hold it yet.
    async fn queue(&self, room: &Room, message: &Message) -> Result<bool, CatchUpError> {
        let event = serde_json::json!({
            "id": "catch-up",
            "name": "chatops catch-up",
            "resource": "messages",
            "event": "created",
            "actorId": message.person_id,
            "data": {
                "id": message.id,
                "roomId": message.room_id,
                "roomType": room.kind,
                "personId": message.person_id,
                "personEmail": message.person_email,
                "created": message.created,
            },
        });
        let mut headers = HeaderMap::new();
        headers.insert(subjects::MSG_ID_HEADER, message.id.as_str());
        headers.insert(
            subjects::COMMAND_ID_HEADER,
            CommandId::new().to_string().as_str(),
        );
        let ack = self
            .jetstream
            .publish_with_headers(subjects::EVENTS, headers, event.to_string().into())
            .await
            .map_err(|e| CatchUpError::Queue(e.into()))?
            .await
            .map_err(|e| CatchUpError::Queue(e.into()))?;
        Ok(!ack.duplicate)
    }
}

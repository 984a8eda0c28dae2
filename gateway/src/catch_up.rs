//! Catch-up: Webex does not retry a webhook delivery, so a message sent
//! while no gateway answered (or while Webex had disabled the webhook after
//! failed deliveries) would go unanswered. Each gateway, when it starts and
//! every half message age after (30 s at least), lists the bot's rooms
//! active within the look-back and the messages there its webhooks deliver
//! (in a group space those that mention it, in a 1:1 space all), and queues each one
//! not processed yet as the event its webhook would have been, oldest
//! first, marked as caught up. A message a few seconds old is left to its
//! webhook, which may still be on its way, and looked at again then.
//!
//! Ingestion answers a caught-up question as any other, but does not make a
//! caught-up change: by then the sender may have changed the deployment
//! another way, and a late change would undo that. It says the message was
//! missed and to send it again. A message older than the age limit gets the
//! reply a late webhook gets.
//!
//! A pass looks no further back than the record of processed messages
//! goes: on a new or lost store, what came before it is not answered again.
//!
//! A message whose webhook did arrive is processed already, or its event is
//! still in the events stream's duplicate window (the same `Nats-Msg-Id`);
//! an event that waits unprocessed longer than that window may be queued a
//! second time, and ingestion finds the second one processed.

use std::time::Duration;

use chatops_shared::{CommandId, subjects};
use tokio_util::sync::CancellationToken;

use crate::ingestion::Ingestion;
use crate::webex::{Message, PAGE, Room, WebexError};

/// How far back a pass looks, at least: a message missed in the last hour
/// is answered (not acted on), however short the age limit.
const LOOK_BACK: Duration = Duration::from_secs(3600);
/// The shortest pause between passes, and the pause after a failed one.
const PAUSE: Duration = Duration::from_secs(30);
/// How old a message must be before a pass takes it for missed: a younger
/// one's webhook may still be on its way, and the webhook's event must win
/// (a caught-up change is not made). A pass that left some waits this long
/// for the next.
const SETTLE: Duration = Duration::from_secs(5);
/// How many pages of a room's mentions a pass reads at most (a page is
/// `PAGE` messages).
const PAGES: usize = 20;
/// How much earlier than the record of processed messages began a message
/// may have been written and still be looked at: clocks differ between
/// Webex and NATS, and a message's time may be cut to the second.
const MARGIN: jiff::SignedDuration = jiff::SignedDuration::from_secs(10);
/// How long queueing one missed message may keep trying (NATS restarts).
const QUEUE_BUDGET: Duration = Duration::from_secs(10);

/// What one pass found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// Messages within the look-back that mention the bot.
    pub seen: usize,
    /// Of those, how many were not processed and not in the events stream.
    pub queued: usize,
    /// Messages too young to take for missed yet: the next pass looks again.
    pub settling: usize,
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

impl Ingestion {
    /// A catch-up pass now, then one every half message age, until `stop`
    /// (which also ends a pass under way: what it did not queue, the next
    /// gateway's pass finds).
    pub async fn catch_up(&self, stop: CancellationToken) {
        let every = (self.max_message_age / 2).max(PAUSE);
        loop {
            let pause = tokio::select! {
                passed = self.pass() => match passed {
                    Ok(pass) => {
                        if pass.queued > 0 {
                            tracing::warn!(queued = pass.queued, seen = pass.seen, "queued messages whose webhooks never arrived");
                        } else {
                            tracing::debug!(seen = pass.seen, "catch-up found nothing missed");
                        }
                        self.metrics.catch_up("done", pass.queued);
                        if pass.settling > 0 { SETTLE.min(every) } else { every }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "catch-up could not look for missed messages; trying again soon");
                        self.metrics.catch_up("failed", 0);
                        PAUSE.min(every)
                    }
                },
                () = stop.cancelled() => return,
            };
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = stop.cancelled() => return,
            }
        }
    }

    /// Looks once for messages within the look-back (and older than a few
    /// seconds) and queues, oldest first, those not processed yet.
    pub async fn pass(&self) -> Result<Pass, CatchUpError> {
        let look_back = self.max_message_age.max(LOOK_BACK);
        let since =
            jiff::Timestamp::now() - jiff::SignedDuration::try_from(look_back).unwrap_or_default();
        // A message from before the record of processed messages began (a
        // new store, or one lost and made again) cannot be told processed:
        // taken for missed, every answer of the look-back would be given
        // again, and every change answered "send it again".
        let began = self
            .processed
            .began()
            .await
            .map_err(CatchUpError::Processed)?;
        let since = since.max(began - MARGIN);
        let rooms = self.webex.recent_rooms().await?;
        if rooms.len() >= PAGE {
            tracing::warn!(
                rooms = rooms.len(),
                "catch-up looks only at the most recently active rooms"
            );
        }
        let mut missed: Vec<Message> = Vec::new();
        // Rooms come most recently active first: the rest are quiet.
        for room in rooms
            .iter()
            .take_while(|r| r.last_activity.is_none_or(|at| at >= since))
        {
            match self.room_messages(room, since).await {
                Ok(messages) => missed.extend(messages),
                Err(e) if e.status().is_some_and(|s| s.is_client_error()) => {
                    // Most likely the bot left the room since the list.
                    tracing::warn!(error = %e, room_id = %room.id, "catch-up cannot list a room's messages; skipping it");
                }
                Err(e) => return Err(e.into()),
            }
        }
        let settled =
            jiff::Timestamp::now() - jiff::SignedDuration::try_from(SETTLE).unwrap_or_default();
        let before = missed.len();
        missed.retain(|m| m.created.is_none_or(|at| at <= settled));
        // The replies come in the order the messages were written.
        missed.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        let mut pass = Pass {
            seen: missed.len(),
            queued: 0,
            settling: before - missed.len(),
        };
        for message in &missed {
            let processed = self
                .is_processed(&message.id)
                .await
                .map_err(CatchUpError::Processed)?;
            if !processed && self.queue(message).await? {
                pass.queued += 1;
            }
        }
        Ok(pass)
    }

    /// The messages of a room since `since` that the bot's webhooks would
    /// have delivered, from others, page by page (newest first), up to
    /// `PAGES` pages.
    async fn room_messages(
        &self,
        room: &Room,
        since: jiff::Timestamp,
    ) -> Result<Vec<Message>, WebexError> {
        let room_id = room.id.as_str();
        let mut found: Vec<Message> = Vec::new();
        for _ in 0..PAGES {
            let before = found.last().map(|m| m.id.as_str());
            let page = self.webex.addressed_to_bot(room, before).await?;
            let full = page.len() >= PAGE;
            let mut older = false;
            for message in page {
                if message.created.is_some_and(|at| at < since) {
                    older = true;
                    break;
                }
                found.push(message);
            }
            if older || !full {
                return Ok(self.written_by_others(found));
            }
        }
        tracing::warn!(
            room_id,
            pages = PAGES,
            "catch-up looks only at a room's newest mentions"
        );
        Ok(self.written_by_others(found))
    }

    fn written_by_others(&self, messages: Vec<Message>) -> Vec<Message> {
        messages
            .into_iter()
            .filter(|m| {
                !self
                    .bot
                    .wrote(m.person_id.as_deref(), m.person_email.as_deref())
            })
            .collect()
    }

    /// Queues the event a webhook would have carried, marked as caught up;
    /// true if the stream did not hold it yet.
    async fn queue(&self, message: &Message) -> Result<bool, CatchUpError> {
        let event = serde_json::json!({
            "id": "catch-up",
            "name": "chatops catch-up",
            "resource": "messages",
            "event": "created",
            "actorId": message.person_id,
            "data": {
                "id": message.id,
                "roomId": message.room_id,
                "roomType": message.room_type,
                "personId": message.person_id,
                "personEmail": message.person_email,
                "created": message.created,
            },
        });
        let mut headers = crate::intake::event_headers(&message.id, &CommandId::new().to_string());
        headers.insert(subjects::CAUGHT_UP_HEADER, "1");
        let ack = chatops_shared::nats::publish_durably(
            &self.jetstream,
            subjects::EVENTS.to_owned(),
            headers,
            event.to_string().into(),
            QUEUE_BUDGET,
        )
        .await
        .map_err(CatchUpError::Queue)?;
        Ok(!ack.duplicate)
    }
}

//! Helpers for JetStream consumers shared by the gateway and the workers.

use std::future::Future;
use std::time::Duration;

use std::sync::Arc;

use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::consumer::pull::Batch;
use async_nats::jetstream::{AckKind, Message};
use futures::{Stream, StreamExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

/// Runs `work` while telling JetStream every `every` that the message is
/// still being worked on, so a slow step (a rate-limited reply, a long
/// rollout) is not redelivered to another process meanwhile.
pub async fn with_progress<F: Future>(message: &Message, every: Duration, work: F) -> F::Output {
    tokio::pin!(work);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            out = &mut work => return out,
            _ = tick.tick() => {
                if let Err(e) = message.ack_with(AckKind::Progress).await {
                    tracing::warn!(error = %e, "cannot extend the ack deadline");
                }
            }
        }
    }
}

/// How often to send progress acks for a consumer with this ack wait.
pub fn progress_period(ack_wait: Duration) -> Duration {
    (ack_wait / 3).max(Duration::from_millis(100))
}

/// How long one pull request waits for messages before it ends empty.
const PULL_WAIT: Duration = Duration::from_secs(1);

/// The longest wait before asking again after pull requests failed (the
/// wait doubles from 50 ms up to it, and starts again after a message).
const PULL_RETRY_MAX: Duration = Duration::from_secs(5);

/// A message and the slot it holds: the caller drops the slot when it is
/// done with the message (acked, NAKed or handed on), and only then can
/// another message be fetched in its place.
pub type Taken = (Message, OwnedSemaphorePermit);

/// The consumer's messages, each with one of `slots`' permits, until
/// `shutdown`; then whatever the open pull request still brings is handed
/// back (NAKed) and the stream ends.
///
/// A pull request asks for as many messages as there are free slots, so
/// nothing is fetched that no one is ready to start: async-nats'
/// prefetching stream kept messages buffered, and its requests open, that
/// a stopping process left to their ack wait (30 s by default) before
/// anyone else got them, and a buffered batch outliving its request's
/// client-side timer was dropped the same way. A stop reads the open
/// request to its end (about a second), so every message it fetched is
/// handled or handed back at once.
///
/// A request waits for `least` free slots (one at least) before it asks:
/// a caller whose slots free one at a time under load (ingestion, in
/// order) then makes one request for several messages instead of one
/// each. A caller whose slots may stay taken for long (a followed rollout)
/// asks with one free.
pub fn messages(
    consumer: PullConsumer,
    slots: Arc<Semaphore>,
    least: u32,
    shutdown: CancellationToken,
) -> impl Stream<Item = Taken> + Send {
    let state = Pull {
        consumer,
        least: least.max(1),
        slots,
        shutdown,
        current: None,
        reserved: Vec::new(),
        failures: 0,
        handed_back: 0,
    };
    futures::stream::unfold(state, |mut pull| async move {
        let taken = pull.next().await?;
        Some((taken, pull))
    })
}

struct Pull {
    consumer: PullConsumer,
    least: u32,
    slots: Arc<Semaphore>,
    shutdown: CancellationToken,
    current: Option<Batch>,
    /// Slots held for the messages the open request may still bring.
    reserved: Vec<OwnedSemaphorePermit>,
    /// Failed requests in a row, for the wait before the next.
    failures: u32,
    handed_back: usize,
}

impl Pull {
    async fn next(&mut self) -> Option<Taken> {
        loop {
            let stopping = self.shutdown.is_cancelled();
            let Some(current) = self.current.as_mut() else {
                if stopping {
                    if self.handed_back > 0 {
                        tracing::info!(
                            handed_back = self.handed_back,
                            "handed back fetched messages not started"
                        );
                    }
                    return None;
                }
                self.current = self.request().await;
                continue;
            };
            let next = if stopping {
                current.next().await
            } else {
                tokio::select! {
                    next = current.next() => next,
                    // Stop taking; the request is still read to its end.
                    () = self.shutdown.cancelled() => continue,
                }
            };
            match next {
                Some(Ok(message)) if stopping => {
                    if let Err(e) = message.ack_with(AckKind::Nak(None)).await {
                        tracing::warn!(error = %e, "cannot hand back a fetched message; it is redelivered after the ack wait");
                    }
                    self.handed_back += 1;
                }
                Some(Ok(message)) => {
                    self.failures = 0;
                    match self.reserved.pop() {
                        Some(slot) => return Some((message, slot)),
                        // More than was asked for: never by the server's
                        // count, but not taken without a slot either.
                        None => {
                            if let Err(e) = message.ack_with(AckKind::Nak(None)).await {
                                tracing::warn!(error = %e, "cannot hand back a message fetched beyond the free slots");
                            }
                        }
                    }
                }
                Some(Err(e)) => {
                    // The request ended with a status (a leader election,
                    // a deleted consumer): wait before the next.
                    tracing::warn!(error = %e, "pull request error");
                    self.failures += 1;
                    self.current = None;
                    self.reserved.clear();
                    self.pause().await;
                }
                None => {
                    self.current = None;
                    self.reserved.clear();
                }
            }
        }
    }

    /// A new pull request for as many messages as there are free slots
    /// (`least` at least, awaited), or `None` after a failure or a shutdown.
    async fn request(&mut self) -> Option<Batch> {
        let mut first = tokio::select! {
            slots = self.slots.clone().acquire_many_owned(self.least) => slots.ok()?,
            () = self.shutdown.cancelled() => return None,
        };
        while first.num_permits() > 1 {
            self.reserved.extend(first.split(1));
        }
        self.reserved.push(first);
        while let Ok(slot) = self.slots.clone().try_acquire_owned() {
            self.reserved.push(slot);
        }
        let asked = self
            .consumer
            .batch()
            .max_messages(self.reserved.len())
            .expires(PULL_WAIT)
            .messages()
            .await;
        match asked {
            Ok(batch) => Some(batch),
            Err(e) => {
                tracing::warn!(error = %e, "cannot ask for messages; asking again");
                self.reserved.clear();
                self.failures += 1;
                self.pause().await;
                None
            }
        }
    }

    /// Waits before the next request after failures: 50 ms doubling up to
    /// [`PULL_RETRY_MAX`], or until shutdown.
    async fn pause(&self) {
        let wait = Duration::from_millis(50)
            .saturating_mul(1 << self.failures.min(7))
            .min(PULL_RETRY_MAX);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = self.shutdown.cancelled() => {}
        }
    }
}

//! Helpers for JetStream consumers shared by the gateway and the workers.

use std::future::Future;
use std::time::Duration;

use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::consumer::pull::Batch;
use async_nats::jetstream::{AckKind, Message};
use futures::{Stream, StreamExt};
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

/// How long to wait before asking again after a pull request failed.
const PULL_RETRY: Duration = Duration::from_secs(1);

/// The consumer's messages, pulled `batch` at a time, one request after
/// the last is used up, until `shutdown`; then whatever the current
/// request still brings is handed back (NAKed) and the stream ends.
///
/// A client-side prefetch (async-nats' `messages()`) keeps pull requests
/// open and messages buffered that a stopping process would leave to their
/// ack wait (30 s by default) before anyone else got them. Here nothing is
/// fetched but what the caller takes, and a stop reads its last request
/// to its end (a second at most), so every message it fetched is either
/// handled or handed back at once.
pub fn messages(
    consumer: PullConsumer,
    batch: usize,
    shutdown: CancellationToken,
) -> impl Stream<Item = Message> + Send {
    let state = Pull {
        consumer,
        batch: batch.max(1),
        shutdown,
        current: None,
        handed_back: 0,
    };
    futures::stream::unfold(state, |mut pull| async move {
        let message = pull.next().await?;
        Some((message, pull))
    })
}

struct Pull {
    consumer: PullConsumer,
    batch: usize,
    shutdown: CancellationToken,
    current: Option<Batch>,
    handed_back: usize,
}

impl Pull {
    async fn next(&mut self) -> Option<Message> {
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
                Some(Ok(message)) => return Some(message),
                Some(Err(e)) => tracing::warn!(error = %e, "pull request error"),
                None => self.current = None,
            }
        }
    }

    /// A new pull request, or `None` after waiting out a failure (or the
    /// shutdown that came meanwhile).
    async fn request(&self) -> Option<Batch> {
        let asked = self
            .consumer
            .batch()
            .max_messages(self.batch)
            .expires(PULL_WAIT)
            .messages()
            .await;
        match asked {
            Ok(batch) => Some(batch),
            Err(e) => {
                tracing::warn!(error = %e, "cannot ask for messages; asking again");
                tokio::select! {
                    () = tokio::time::sleep(PULL_RETRY) => {}
                    () = self.shutdown.cancelled() => {}
                }
                None
            }
        }
    }
}

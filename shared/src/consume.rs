//! Helpers for JetStream consumers shared by the gateway and the workers.

use std::future::Future;
use std::time::Duration;

use async_nats::jetstream::{AckKind, Message};

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

/// After a consumer loop stops taking messages: NAKs every message the
/// client had already fetched and nobody started, so another process gets
/// each at once rather than after its ack wait. Returns how many.
pub async fn hand_back<S, E>(messages: &mut S) -> usize
where
    S: futures::Stream<Item = Result<Message, E>> + Unpin,
{
    use futures::{FutureExt, StreamExt};
    let mut handed_back = 0;
    while let Some(Some(Ok(message))) = messages.next().now_or_never() {
        if let Err(e) = message.ack_with(AckKind::Nak(None)).await {
            tracing::warn!(error = %e, "cannot hand back a fetched message; it is redelivered after the ack wait");
        }
        handed_back += 1;
    }
    if handed_back > 0 {
        tracing::info!(handed_back, "handed back fetched messages not started");
    }
    handed_back
}

//! Connecting to NATS the same way from every binary.

use std::time::Duration;

use async_nats::jetstream;

use crate::config::NatsConfig;

#[derive(Debug, thiserror::Error)]
#[error("cannot connect to NATS at {url}: {source}")]
pub struct ConnectError {
    url: String,
    #[source]
    source: async_nats::ConnectError,
}

/// Connects, naming the connection after the process so `nats server report
/// connections` tells gateways and workers apart; reconnects forever after
/// the first success.
pub async fn connect(
    config: &NatsConfig,
    name: &str,
) -> Result<(async_nats::Client, jetstream::Context), ConnectError> {
    let client = async_nats::ConnectOptions::new()
        .name(name)
        .connection_timeout(Duration::from_secs(5))
        .connect(config.addresses())
        .await
        .map_err(|source| ConnectError {
            url: config.url.clone(),
            source,
        })?;
    let js = jetstream::new(client.clone());
    Ok((client, js))
}

/// Publishes to a stream and waits for JetStream to store it, retrying for
/// up to `budget` with growing pauses (25 ms, 50 ms, ... 2 s). A restarting
/// server or a cluster electing a stream leader answers "no responders" or
/// times out for a few seconds; riding that out here keeps a message from
/// spending its deliveries (or a webhook from getting 503) on a blip. The
/// same `Nats-Msg-Id` on every try makes a retry after a lost ack a no-op.
pub async fn publish_durably(
    js: &jetstream::Context,
    subject: String,
    headers: async_nats::HeaderMap,
    payload: bytes::Bytes,
    budget: Duration,
) -> Result<jetstream::publish::PublishAck, async_nats::Error> {
    let deadline = tokio::time::Instant::now() + budget;
    let mut pause = Duration::from_millis(25);
    loop {
        let attempt = async {
            js.publish_with_headers(subject.clone(), headers.clone(), payload.clone())
                .await?
                .await
                .map_err(async_nats::Error::from)
        };
        match attempt.await {
            Ok(ack) => return Ok(ack),
            Err(e) if tokio::time::Instant::now() + pause < deadline => {
                tracing::debug!(error = %e, ?pause, %subject, "publish failed; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            Err(e) => return Err(e),
        }
    }
}

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

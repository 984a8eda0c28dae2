//! The gateway's configuration, composed from the shared pieces.

use std::net::SocketAddr;

use chatops_shared::Namespace;
use chatops_shared::config::{self, ConfigError, Env, NatsConfig, PolicySource, WebexConfig};
use chatops_shared::streams::StreamSettings;

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub listen: SocketAddr,
    pub nats: NatsConfig,
    pub streams: StreamSettings,
    pub webex: WebexConfig,
    pub policy: PolicySource,
    pub default_namespace: Namespace,
    pub max_replicas: u32,
    /// How late after it was written a message may arrive and still be acted on.
    pub max_message_age: std::time::Duration,
    /// How long a command may wait for a worker before its sender is told
    /// that none has taken it; `None`: never.
    pub unclaimed_after: Option<std::time::Duration>,
    /// Connection and request limits of the HTTP surface.
    pub limits: crate::limits::Limits,
    /// How often streams gone missing are looked for (and made again).
    pub streams_checked_every: std::time::Duration,
}

impl GatewayConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            listen: config::gateway_addr(env)?,
            nats: NatsConfig::from_env(env)?,
            streams: StreamSettings::from_env(env)?,
            webex: WebexConfig::from_env(env)?,
            policy: PolicySource::from_env(env)?,
            default_namespace: config::default_namespace(env)?,
            max_replicas: config::max_replicas(env)?,
            // Shorter, and a webhook's own delay would make changes late.
            max_message_age: env.duration_from(
                config::MAX_MESSAGE_AGE,
                std::time::Duration::from_secs(600),
                std::time::Duration::from_secs(10),
            )?,
            unclaimed_after: match env.get(config::UNCLAIMED_AFTER) {
                Some(v) if v.trim().eq_ignore_ascii_case("off") => None,
                _ => Some(env.duration_from(
                    config::UNCLAIMED_AFTER,
                    crate::unclaimed::NOTE_AFTER,
                    std::time::Duration::from_secs(1),
                )?),
            },
            limits: crate::limits::Limits::default(),
            streams_checked_every: chatops_shared::streams::KEEP_EVERY,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn with(pairs: &[(&'static str, &'static str)]) -> Result<GatewayConfig, ConfigError> {
        let base = [
            (config::WEBEX_BOT_TOKEN, "bot-token"),
            (config::WEBEX_WEBHOOK_SECRET, "webhook-secret"),
            (config::AUTHORIZED_USERS, "alice@example.com"),
        ];
        GatewayConfig::from_env(&Env::from_pairs(
            base.into_iter().chain(pairs.iter().copied()),
        ))
    }

    #[test]
    fn the_note_on_unclaimed_commands_is_on_by_default_and_can_be_turned_off() {
        let after = |pairs: &[_]| with(pairs).map(|c| c.unclaimed_after);
        assert_eq!(after(&[]), Ok(Some(Duration::from_secs(15))));
        assert_eq!(
            after(&[(config::UNCLAIMED_AFTER, "2m")]),
            Ok(Some(Duration::from_secs(120)))
        );
        assert_eq!(after(&[(config::UNCLAIMED_AFTER, "OFF")]), Ok(None));
        let error = with(&[(config::MAX_MESSAGE_AGE, "1ms")]).expect_err("refused");
        assert!(error.to_string().contains("from 10s"), "{error}");
        let error = with(&[(config::UNCLAIMED_AFTER, "soon")]).expect_err("refused");
        assert!(
            error.to_string().contains("CHATOPS_UNCLAIMED_AFTER"),
            "{error}"
        );
    }
}

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
    /// Connection and request limits of the HTTP surface.
    pub limits: crate::limits::Limits,
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
            max_message_age: env
                .duration_or(config::MAX_MESSAGE_AGE, std::time::Duration::from_secs(600))?,
            limits: crate::limits::Limits::default(),
        })
    }
}

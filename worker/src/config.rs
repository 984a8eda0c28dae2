//! The worker's configuration, composed from the shared pieces.

use std::net::SocketAddr;

use chatops_shared::config::{
    self, ClusterConfig, ConfigError, Env, FOLLOW_ROLLOUT, NatsConfig, SHUTDOWN_GRACE,
    WORKER_CONCURRENCY,
};
use chatops_shared::streams::StreamSettings;

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Health and metrics.
    pub listen: SocketAddr,
    pub nats: NatsConfig,
    pub streams: StreamSettings,
    pub cluster: ClusterConfig,
    /// `CLUSTER_NAME`, on every line the worker logs.
    pub cluster_name: String,
    /// Commands applied at once by this process.
    pub concurrency: usize,
    /// Kubernetes API calls per second, on average, from this process.
    pub kube_qps: f64,
    /// Kubernetes API calls allowed at once above the average.
    pub kube_burst: u32,
    /// Follow each change's rollout for at most this long (`None`: report
    /// as soon as the change is made).
    pub follow_rollout: Option<std::time::Duration>,
    /// After SIGTERM, how long in-flight commands may take to finish before
    /// they are handed back to the queue.
    pub shutdown_grace: std::time::Duration,
}

impl WorkerConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            listen: config::worker_addr(env)?,
            nats: NatsConfig::from_env(env)?,
            streams: StreamSettings::from_env(env)?,
            cluster: ClusterConfig::from_env(env)?,
            cluster_name: config::cluster_name(env),
            concurrency: env.parse_or(
                WORKER_CONCURRENCY,
                8,
                "a whole number from 1 to 1024",
                |s| s.parse().ok().filter(|n| (1..=1024).contains(n)),
            )?,
            kube_qps: config::kube_qps(env, 50.0)?,
            shutdown_grace: env.duration_or(SHUTDOWN_GRACE, std::time::Duration::from_secs(25))?,
            follow_rollout: match env.get(FOLLOW_ROLLOUT) {
                None => None,
                Some(v) if v.eq_ignore_ascii_case("off") => None,
                Some(_) => {
                    Some(env.duration_or(FOLLOW_ROLLOUT, std::time::Duration::from_secs(300))?)
                }
            },
            kube_burst: config::kube_burst(env, 100)?,
        })
    }
}

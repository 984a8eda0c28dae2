//! Building and running a worker: configuration, Kubernetes client, NATS,
//! stream set-up, and the health endpoint.

use std::future::Future;

use axum::Router;
use axum::routing::get;
use chatops_shared::config::ConfigError;
use chatops_shared::streams::{self, SetupError};
use tokio::net::TcpListener;

use crate::config::WorkerConfig;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Nats(#[from] chatops_shared::nats::ConnectError),
    #[error(transparent)]
    Streams(#[from] SetupError),
}

impl StartupError {
    /// Configuration and drift are 64; the rest are unavailability (69).
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Config(_) | Self::Streams(SetupError::Drift { .. }) => {
                chatops_shared::config::EXIT_CONFIG
            }
            _ => 69,
        }
    }
}

/// A worker with its connections made and its health port bound.
pub struct Application {
    listener: TcpListener,
    router: Router,
    #[allow(dead_code)] // consumed by the apply loop
    kube: kube::Client,
    #[allow(dead_code)]
    jetstream: async_nats::jetstream::Context,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("listener", &self.listener)
            .finish_non_exhaustive()
    }
}

impl Application {
    pub async fn build(config: WorkerConfig) -> Result<Self, StartupError> {
        let kube = crate::kube_client::client(&config.cluster).await?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartupError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let (_client, jetstream) =
            chatops_shared::nats::connect(&config.nats, "chatops-worker").await?;
        for (what, action) in streams::ensure(&jetstream, &config.streams).await? {
            tracing::info!(%what, ?action, "stream set-up");
        }
        let router = Router::new().route("/healthz", get(|| async { "ok" }));
        Ok(Self {
            listener,
            router,
            kube,
            jetstream,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        tracing::info!(addr = %self.listener.local_addr()?, "worker health endpoint listening");
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
    }
}

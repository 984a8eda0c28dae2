//! Building and running the gateway: bind, connect, set up the streams,
//! serve until shut down.

use std::future::Future;

use axum::Router;
use axum::routing::get;
use chatops_shared::streams::{self, SetupError};
use tokio::net::TcpListener;

use crate::config::GatewayConfig;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
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
    /// Drift is a configuration problem (64); the rest are unavailability (69).
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Streams(SetupError::Drift { .. }) => chatops_shared::config::EXIT_CONFIG,
            _ => 69,
        }
    }
}

/// Shared by every request handler.
#[derive(Debug, Clone)]
pub struct AppState {
    pub jetstream: async_nats::jetstream::Context,
}

/// A gateway bound to its port, ready to run.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    router: Router,
}

impl Application {
    pub async fn build(config: GatewayConfig) -> Result<Self, StartupError> {
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartupError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let (_client, jetstream) =
            chatops_shared::nats::connect(&config.nats, "chatops-gateway").await?;
        for (what, action) in streams::ensure(&jetstream, &config.streams).await? {
            tracing::info!(%what, ?action, "stream set-up");
        }
        let router = router(AppState { jetstream });
        Ok(Self { listener, router })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        tracing::info!(addr = %self.listener.local_addr()?, "gateway listening");
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
    }
}

/// The HTTP surface, without a socket, so tests can call it directly.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .with_state(state)
}

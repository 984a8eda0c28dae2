//! Building and running a worker: configuration, Kubernetes client, NATS,
//! stream set-up, the consumer loop and the health and metrics endpoint.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{PullConsumer, pull};
use axum::Router;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use chatops_shared::config::ConfigError;
use chatops_shared::streams::{self, SetupError};
use tokio::net::TcpListener;
use tracing::Instrument;

use crate::apply::Engine;
use crate::config::WorkerConfig;
use crate::consumer::Worker;
use crate::limiter::Limiter;
use crate::metrics::Metrics;

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
    #[error("cannot open the workers consumer: {0}")]
    Consumer(#[source] async_nats::Error),
    #[error(transparent)]
    Cluster(#[from] crate::kube_client::Unusable),
}

impl StartupError {
    /// Configuration and drift are 64; the rest are unavailability (69).
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Config(_)
            | Self::Streams(SetupError::Drift { .. })
            | Self::Cluster(crate::kube_client::Unusable::Refused { .. }) => {
                chatops_shared::config::EXIT_CONFIG
            }
            _ => 69,
        }
    }
}

/// A worker with its connections made and its health port bound.
pub struct Application {
    listener: TcpListener,
    /// Flushed before the worker exits, so the NAKs of commands handed
    /// back reach nats-server rather than dying in the write buffer.
    client: async_nats::Client,
    metrics: Arc<Metrics>,
    worker: Arc<Worker>,
    consumer: PullConsumer,
    concurrency: usize,
    grace: Duration,
    /// `CLUSTER_NAME`, on every line the worker logs.
    cluster: String,
    jetstream: async_nats::jetstream::Context,
    streams: streams::StreamSettings,
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
        let cluster = match &config.cluster {
            chatops_shared::config::ClusterConfig::Explicit { url, .. } => url.clone(),
            chatops_shared::config::ClusterConfig::Infer => "(inferred)".to_owned(),
        };
        crate::kube_client::check(&kube, &cluster).await?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartupError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let (client, jetstream) =
            chatops_shared::nats::connect(&config.nats, "chatops-worker").await?;
        for (what, action) in streams::ensure(&jetstream, &config.streams).await? {
            tracing::info!(%what, ?action, "stream set-up");
        }
        let stream = jetstream
            .get_stream(streams::COMMANDS_STREAM)
            .await
            .map_err(|e| StartupError::Consumer(e.into()))?;
        let epoch = stream
            .cached_info()
            .created
            .unix_timestamp_nanos()
            .to_string();
        let consumer = stream
            .get_consumer::<pull::Config>(streams::WORKERS_CONSUMER)
            .await
            .map_err(StartupError::Consumer)?;
        // Set up by `ensure` above.
        let decided = streams::open_record(&jetstream, streams::PROCESSED_BUCKET).await?;
        let metrics = Arc::new(Metrics::default());
        let self_jetstream = jetstream.clone();
        let worker = Arc::new(Worker {
            // `history` answers with the last commands from the streams too.
            engine: Engine::new(
                kube,
                Arc::new(Limiter::new(config.kube_qps, config.kube_burst)),
            )
            .with_audit(jetstream.clone()),
            jetstream,
            earlier: crate::order::Earlier {
                commands: stream,
                decided,
                horizon: handling_horizon(&config),
            },
            slots: Arc::new(tokio::sync::Semaphore::new(config.concurrency)),
            epoch,
            max_deliver: config.streams.max_deliver,
            retry_budget: config.streams.ack_wait,
            progress_every: chatops_shared::consume::progress_period(config.streams.ack_wait),
            follow_rollout: config.follow_rollout,
            metrics: metrics.clone(),
        });
        Ok(Self {
            listener,
            client,
            metrics,
            worker,
            consumer,
            concurrency: config.concurrency,
            grace: config.shutdown_grace,
            cluster: config.cluster_name.clone(),
            jetstream: self_jetstream,
            streams: config.streams.clone(),
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Consumes and serves health until `shutdown`, then lets in-flight
    /// commands finish within a grace period (unfinished ones are handed
    /// back, NAKed, for another worker to take at once).
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let span = tracing::info_span!("worker", cluster = %self.cluster);
        self.run_in(shutdown).instrument(span).await
    }

    async fn run_in(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let token = chatops_shared::shutdown::token(shutdown);
        tracing::info!(addr = %self.listener.local_addr()?, concurrency = self.concurrency, "worker started");
        let router = Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route("/metrics", get(metrics))
            .with_state(self.metrics.clone());
        let abort = tokio_util::sync::CancellationToken::new();
        let keeping = tokio::spawn(streams::keep(
            self.jetstream.clone(),
            self.streams.clone(),
            streams::KEEP_EVERY,
            token.clone(),
        ));
        // Fences name the commands stream by when it was made: one made
        // again (a store lost) is another stream, which this worker's
        // fences would take for the old one. It stops; started again, it
        // takes the new one's.
        let replaced = tokio::spawn(replaced(self.worker.clone(), token.clone()));
        let mut consuming = tokio::spawn(
            self.worker
                .clone()
                .run(self.consumer, token.clone(), abort.clone())
                .in_current_span(),
        );
        let served = axum::serve(self.listener, router)
            .with_graceful_shutdown(token.clone().cancelled_owned())
            .await;
        let finished = match tokio::time::timeout(self.grace, &mut consuming).await {
            Ok(finished) => finished,
            Err(_) => {
                tracing::warn!(
                    "in-flight commands did not finish within the grace period; handing them back"
                );
                abort.cancel();
                consuming.await
            }
        };
        if let Ok(Err(e)) = finished {
            tracing::error!(error = %e, "the consumer stopped with an error");
        }
        // Acks and NAKs are buffered: unsent, a command handed back would
        // wait out its ack wait before another worker got it.
        // NATS may be down: the flush waits for it only so long.
        match tokio::time::timeout(Duration::from_secs(2), self.client.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => tracing::warn!(
                "cannot flush the last acks; their commands are redelivered after the ack wait"
            ),
        }
        let _ = keeping.await;
        if replaced.await.unwrap_or(false) {
            return Err(std::io::Error::other(
                "the commands stream was made again; start the worker again to take it",
            ));
        }
        tracing::info!("worker stopped");
        served
    }
}

/// Looks every [`streams::KEEP_EVERY`] whether the commands stream is
/// still the one made at the worker's epoch; when it is not (gone, or made
/// again after its server lost it), stops the worker: true. At `stop`, the
/// answer of one last look (a command judged on a replaced stream stops
/// the worker too).
async fn replaced(worker: Arc<Worker>, stop: tokio_util::sync::CancellationToken) -> bool {
    loop {
        let stopping = tokio::select! {
            () = stop.cancelled() => true,
            () = tokio::time::sleep(streams::KEEP_EVERY) => false,
        };
        if worker.stream_replaced().await {
            if !stopping {
                tracing::error!(
                    "the commands stream is gone or was made again (its server lost it?); the worker stops, to start again on the new one"
                );
                stop.cancel();
            }
            return true;
        }
        if stopping {
            return false;
        }
    }
}

/// How long after it was stored a command may still be handled: each of
/// its deliveries retries for an ack wait and may follow its rollout, and
/// waits up to a minute (the longest NAK delay) and an ack wait before the
/// next.
fn handling_horizon(config: &WorkerConfig) -> Duration {
    let deliveries = u32::try_from(config.streams.max_deliver.max(1)).unwrap_or(u32::MAX);
    let one = config.streams.ack_wait * 2
        + Duration::from_secs(60)
        + config.follow_rollout.unwrap_or_default();
    one.saturating_mul(deliveries)
}

async fn metrics(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            // What prometheus-client writes: OpenMetrics text (`# EOF`).
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.render(),
    )
}

//! Building and running the gateway: bind, connect, set up the streams and
//! buckets, then serve webhooks and run ingestion and the notifier until
//! shut down.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::PullConsumer;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use chatops_shared::secret::SecretString;
use chatops_shared::streams::{self, SetupError};
use tokio::net::TcpListener;

use crate::config::GatewayConfig;
use crate::ingestion::{Bot, Ingestion};
use crate::language::Defaults;
use crate::metrics::Metrics;
use crate::notifier::Notifier;
use crate::policy::{Policy, PolicyError};
use crate::unclaimed::Unclaimed;
use crate::webex::WebexClient;

/// How long in-flight work may take to finish after a shutdown signal.
const GRACE: Duration = Duration::from_secs(20);
/// How long the last acks may take to reach NATS at shutdown (it may be down).
const FLUSH_LIMIT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid configuration: CHATOPS_POLICY {0}")]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Nats(#[from] chatops_shared::nats::ConnectError),
    #[error(transparent)]
    Streams(#[from] SetupError),
    #[error("cannot open the {0} consumer: {1}")]
    Consumer(&'static str, #[source] async_nats::Error),
}

impl StartupError {
    /// Configuration problems (the policy, drift) are 64; the rest are
    /// unavailability (69).
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Policy(_) | Self::Streams(SetupError::Drift { .. }) => {
                chatops_shared::config::EXIT_CONFIG
            }
            _ => 69,
        }
    }
}

/// Shared by every request handler (behind an `Arc`: axum clones the
/// state for each request).
#[derive(Debug, Clone)]
pub struct AppState {
    pub client: async_nats::Client,
    pub limits: crate::limits::Limits,
    pub shedder: crate::limits::Shedder,
    pub jetstream: async_nats::jetstream::Context,
    /// Intake's publishes, batched.
    pub batcher: chatops_shared::nats::Batcher,
    pub webhook_secret: SecretString,
    pub metrics: Arc<Metrics>,
}

/// A gateway bound to its port, ready to run.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    router: Router,
    config: GatewayConfig,
    state: Arc<AppState>,
    policy: Arc<Policy>,
    events: PullConsumer,
    results: PullConsumer,
    processed: streams::Record,
    replies: streams::Record,
}

impl Application {
    pub async fn build(config: GatewayConfig) -> Result<Self, StartupError> {
        let policy = Arc::new(Policy::load(&config.policy, config.max_replicas)?);
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartupError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let (client, jetstream) =
            chatops_shared::nats::connect(&config.nats, "chatops-gateway").await?;
        for (what, action) in streams::ensure(&jetstream, &config.streams).await? {
            tracing::info!(%what, ?action, "stream set-up");
        }
        let consumer = |stream: &'static str, name: &'static str| {
            let jetstream = jetstream.clone();
            async move {
                let stream = jetstream
                    .get_stream(stream)
                    .await
                    .map_err(|e| StartupError::Consumer(name, e.into()))?;
                stream
                    .get_consumer::<async_nats::jetstream::consumer::pull::Config>(name)
                    .await
                    .map_err(|e| StartupError::Consumer(name, e))
            }
        };
        let events = consumer(streams::EVENTS_STREAM, streams::INGESTION_CONSUMER).await?;
        // Set up by `ensure` above.
        let processed = streams::open_record(&jetstream, streams::PROCESSED_BUCKET).await?;
        let replies = streams::open_record(&jetstream, streams::REPLIES_BUCKET).await?;
        let results = consumer(streams::RESULTS_STREAM, streams::NOTIFIER_CONSUMER).await?;
        let state = Arc::new(AppState {
            client,
            limits: config.limits,
            shedder: crate::limits::Shedder::new(config.limits.max_in_flight),
            batcher: chatops_shared::nats::Batcher::spawn(jetstream.clone()),
            jetstream,
            webhook_secret: config.webex.webhook_secret.clone(),
            metrics: Arc::new(Metrics::default()),
        });
        Ok(Self {
            listener,
            router: router(state.clone()),
            config,
            state,
            policy,
            events,
            results,
            processed,
            replies,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Serves and consumes until `shutdown`, then drains within a grace period.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let token = chatops_shared::shutdown::token(shutdown);
        tracing::info!(addr = %self.listener.local_addr()?, "gateway listening");
        let webex = WebexClient::new(
            &self.config.webex.api_url,
            self.config.webex.bot_token.clone(),
        );
        let progress_every = chatops_shared::consume::progress_period(self.config.streams.ack_wait);
        let mut tasks = tokio::task::JoinSet::new();
        let notifier = Arc::new(Notifier {
            jetstream: self.state.jetstream.clone(),
            webex: webex.clone(),
            replies: self.replies,
            progress_every,
            metrics: self.state.metrics.clone(),
        });
        tasks.spawn(streams::keep(
            self.state.jetstream.clone(),
            self.config.streams.clone(),
            self.config.streams_checked_every,
            token.clone(),
        ));
        let stop = token.clone();
        tasks.spawn(async move {
            if let Err(e) = notifier.run(self.results, stop).await {
                tracing::error!(error = %e, "the notifier stopped");
            }
        });
        let (state, config, policy, stop) = (
            self.state.clone(),
            self.config.clone(),
            self.policy.clone(),
            token.clone(),
        );
        let (events, processed) = (self.events, self.processed);
        tasks.spawn(async move {
            // Ingestion needs the bot's name to strip mentions; intake and
            // the notifier do not wait for it.
            let Some(bot) = identify(&webex, config.webex.bot_name.as_deref(), &stop).await else {
                return;
            };
            tracing::info!(bot_id = %bot.id, mention = %bot.mention_name, "ingestion started");
            let unclaimed = config
                .unclaimed_after
                .map(|after| Arc::new(Unclaimed::new(after)));
            let ingestion = Arc::new(Ingestion {
                jetstream: state.jetstream.clone(),
                webex,
                policy,
                defaults: Defaults {
                    namespace: config.default_namespace.clone(),
                    max_replicas: config.max_replicas,
                },
                bot,
                processed,
                max_message_age: config.max_message_age,
                max_deliver: config.streams.max_deliver,
                progress_every,
                metrics: state.metrics.clone(),
                unclaimed: unclaimed.clone(),
            });
            let watch = {
                let (jetstream, webex, metrics, stop) = (
                    state.jetstream.clone(),
                    ingestion.webex.clone(),
                    state.metrics.clone(),
                    stop.clone(),
                );
                async move {
                    if let Some(unclaimed) = unclaimed {
                        unclaimed.run(jetstream, webex, metrics, stop).await;
                    }
                }
            };
            let (ingested, (), ()) = tokio::join!(
                ingestion.clone().run(events, stop.clone()),
                ingestion.catch_up(stop),
                watch,
            );
            if let Err(e) = ingested {
                tracing::error!(error = %e, "ingestion stopped");
            }
        });
        let listener = crate::limits::GuardedListener::new(self.listener, &self.config.limits);
        let serving = axum::serve(listener, self.router)
            .with_graceful_shutdown(token.clone().cancelled_owned());
        let served = serving.await;
        // Ingestion and the notifier stop taking work at the same signal;
        // give what they hold a grace period to finish (unacked work is
        // redelivered to another gateway anyway).
        if tokio::time::timeout(GRACE, async { while tasks.join_next().await.is_some() {} })
            .await
            .is_err()
        {
            tracing::warn!(
                "in-flight work did not finish within the grace period; it will be redelivered"
            );
        }
        // Acks are buffered: unsent, work already done would be redelivered
        // after its ack wait (and found done, at the cost of a lookup).
        match tokio::time::timeout(FLUSH_LIMIT, self.state.client.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot flush the last acks"),
            Err(_) => tracing::warn!("NATS did not take the last acks in time"),
        }
        tracing::info!("gateway stopped");
        served
    }
}

/// Asks Webex who the bot is, retrying until it answers or shutdown.
async fn identify(
    webex: &WebexClient,
    name: Option<&str>,
    token: &tokio_util::sync::CancellationToken,
) -> Option<Bot> {
    let mut wait = Duration::from_millis(200);
    loop {
        match webex.me().await {
            Ok(person) => return Some(Bot::from_person(&person, name)),
            // Webex refuses the token: no retry will do until it changes,
            // but intake goes on queueing webhooks for when it does.
            Err(e) if e.status().is_some_and(|s| s == 401 || s == 403) => tracing::error!(
                error = %e,
                ?wait,
                "Webex does not accept WEBEX_BOT_TOKEN; no message is handled until it does (webhooks are still queued)"
            ),
            // A URL without Webex's /v1 (https://webexapis.com/v1).
            Err(e) if e.status().is_some_and(|s| s == 404) => tracing::error!(
                error = %e,
                ?wait,
                "WEBEX_API_URL has no GET /people/me; it is Webex's API root, ending with /v1 (https://webexapis.com/v1); no message is handled until it answers"
            ),
            Err(e) => {
                tracing::warn!(error = %e, ?wait, "cannot ask Webex who the bot is; retrying")
            }
        }
        tokio::select! {
            () = token.cancelled() => return None,
            () = tokio::time::sleep(wait) => {}
        }
        wait = (wait * 2).min(Duration::from_secs(30));
    }
}

/// The HTTP surface, without a socket, so tests can call it directly.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/webhooks/webex", post(crate::intake::webhook))
        .route("/", post(crate::intake::webhook))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(crate::intake::MAX_BODY))
        .with_state(state)
}

/// Ready: NATS is connected and the streams exist.
async fn ready(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    if state.client.connection_state() != async_nats::connection::State::Connected {
        return (StatusCode::SERVICE_UNAVAILABLE, "NATS is not connected");
    }
    // A probe wants its answer in a second or two: a server that takes
    // longer is as good as gone (a frozen one took the client's 10 s).
    const ANSWER_WITHIN: std::time::Duration = std::time::Duration::from_secs(2);
    for stream in [
        streams::EVENTS_STREAM,
        streams::COMMANDS_STREAM,
        streams::RESULTS_STREAM,
        streams::PROCESSED_BUCKET,
        streams::REPLIES_BUCKET,
    ] {
        match tokio::time::timeout(ANSWER_WITHIN, state.jetstream.get_stream(stream)).await {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => return (StatusCode::SERVICE_UNAVAILABLE, "a stream is missing"),
            Err(_) => {
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "NATS does not answer JetStream requests",
                );
            }
        }
    }
    (StatusCode::OK, "ready")
}

async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            // What prometheus-client writes: OpenMetrics text (`# EOF`).
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

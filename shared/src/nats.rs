//! Connecting to NATS the same way from every binary.

use std::time::Duration;

use async_nats::jetstream;

use crate::config::{NatsConfig, NatsCredentials};

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
    let options = match config.credentials() {
        Some(NatsCredentials::UserPassword { user, password }) => {
            async_nats::ConnectOptions::with_user_and_password(user, password)
        }
        Some(NatsCredentials::Token(token)) => async_nats::ConnectOptions::with_token(token),
        None => async_nats::ConnectOptions::new(),
    };
    let client = options
        .name(name)
        .connection_timeout(Duration::from_secs(5))
        .connect(config.addresses())
        .await
        .map_err(|source| ConnectError {
            url: crate::config::redacted(&config.url),
            source,
        })?;
    let js = jetstream::new(client.clone());
    Ok((client, js))
}

/// Hands publishes to the NATS connection a batch at a time.
///
/// Each publish wakes the connection's task, and tokio runs a task woken by
/// the running one next: publishes from many request handlers went out one
/// `writev(2)` each, and the server read and acknowledged them one at a
/// time. A batcher takes the publishes of every handler that ran in the same
/// turn of the scheduler and enqueues them together, so they share a write
/// and the server's work. A publish waits for nothing it would not have
/// waited for anyway; under light load a batch is one publish.
#[derive(Debug, Clone)]
pub struct Batcher {
    jobs: tokio::sync::mpsc::Sender<Job>,
}

/// Publishes a batch holds at most.
const BATCH: usize = 256;

struct Job {
    subject: async_nats::Subject,
    headers: async_nats::HeaderMap,
    payload: bytes::Bytes,
    enqueued: tokio::sync::oneshot::Sender<
        Result<jetstream::context::PublishAckFuture, jetstream::context::PublishError>,
    >,
}

impl Batcher {
    /// Starts the batching task; it ends when the last `Batcher` is dropped.
    pub fn spawn(js: jetstream::Context) -> Self {
        let (jobs, mut queue) = tokio::sync::mpsc::channel::<Job>(4 * BATCH);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while let Some(first) = queue.recv().await {
                batch.push(first);
                // Let the other handlers that are ready run first and queue
                // theirs.
                tokio::task::yield_now().await;
                while batch.len() < BATCH {
                    match queue.try_recv() {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    }
                }
                for job in batch.drain(..) {
                    let enqueued = js
                        .publish_with_headers(job.subject, job.headers, job.payload)
                        .await;
                    // The handler may have gone (its client hung up).
                    let _ = job.enqueued.send(enqueued);
                }
            }
        });
        Self { jobs }
    }

    /// Publishes once and waits for the ack.
    pub async fn publish(
        &self,
        subject: async_nats::Subject,
        headers: async_nats::HeaderMap,
        payload: bytes::Bytes,
    ) -> Result<jetstream::publish::PublishAck, async_nats::Error> {
        let (enqueued, ack) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Job {
                subject,
                headers,
                payload,
                enqueued,
            })
            .await
            .map_err(|_| "the publish batcher stopped")?;
        let ack = ack.await.map_err(|_| "the publish batcher stopped")??;
        Ok(ack.await?)
    }
}

/// Publishes to a stream through `batcher` and waits for JetStream to store
/// it, retrying as [`publish_durably`] does. `headers` makes the headers for
/// each try: a publish consumes them, and building them again costs no more
/// than a copy kept for a retry that almost never comes.
pub async fn publish_batched_durably(
    batcher: &Batcher,
    subject: async_nats::Subject,
    headers: impl Fn() -> async_nats::HeaderMap,
    payload: bytes::Bytes,
    budget: Duration,
) -> Result<jetstream::publish::PublishAck, async_nats::Error> {
    retrying(budget, &subject, || {
        batcher.publish(subject.clone(), headers(), payload.clone())
    })
    .await
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
    retrying(budget, &subject, || async {
        js.publish_with_headers(subject.clone(), headers.clone(), payload.clone())
            .await?
            .await
            .map_err(async_nats::Error::from)
    })
    .await
}

/// Runs `attempt` until it succeeds or `budget` is spent, pausing 25 ms,
/// 50 ms, ... 2 s between tries: a write to a stream (`what` names it in
/// the logs) riding out a NATS restart or a leader election.
pub async fn retrying<T, F, Fut>(
    budget: Duration,
    what: &str,
    mut attempt: F,
) -> Result<T, async_nats::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, async_nats::Error>>,
{
    let deadline = tokio::time::Instant::now() + budget;
    let mut pause = Duration::from_millis(25);
    loop {
        match attempt().await {
            Ok(done) => return Ok(done),
            Err(e) if tokio::time::Instant::now() + pause < deadline => {
                tracing::debug!(error = %e, ?pause, what, "write failed; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            Err(e) => return Err(e),
        }
    }
}

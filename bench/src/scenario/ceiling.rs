//! The ceiling: raw JetStream publishes of 1 KiB, each persisted (file
//! storage, as the chatops streams) and acknowledged, with a fixed number in
//! flight on one connection (as a gateway has).
//!
//! Beside it, the same publishes carrying what each of intake's carries: a
//! `Nats-Msg-Id` that JetStream checks against its de-duplication window,
//! and a command id. The gap between the two is what de-duplication costs
//! JetStream, which intake pays on every webhook.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use async_nats::HeaderMap;
use async_nats::jetstream::{self, stream};
use bytes::Bytes;
use chatops_shared::{CommandId, subjects};
use tokio::time::Instant;

use super::{CeilingPoint, CpuWatch, Findings, windows_spread};
use crate::plan::Plan;
use crate::report::Row;
use crate::rig::Nats;
use crate::stats::{Samples, Windows};
use crate::webhook::webex_id;

const STREAM: &str = "BENCH_CEILING";
const SUBJECT: &str = "bench.ceiling";
/// The stream of the publishes with intake's headers: made afresh for each
/// point and deleted after it, so that the ids it remembers for
/// de-duplication weigh on no other point.
const STREAM_WITH_IDS: &str = "BENCH_CEILING_IDS";
const SUBJECT_WITH_IDS: &str = "bench.ceiling.ids";

/// What each publish carries besides its 1 KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Headers {
    None,
    /// A distinct `Nats-Msg-Id` (as long as a Webex message id) and a
    /// command id, as intake publishes.
    AsIntake,
}

/// A nats-server with the ceiling's stream, kept up for the whole of
/// intake: intake measures the ceiling at its own concurrency just before
/// each of its points, so that a ratio compares two rates taken a few
/// seconds apart. (The machine's speed drifts: the ceiling at one
/// concurrency moved by a quarter between runs minutes apart.)
#[derive(Debug)]
pub struct Ceiling {
    nats: Nats,
}

impl Ceiling {
    pub async fn start() -> anyhow::Result<Self> {
        let nats = Nats::start().await?;
        create_stream(&nats.js, STREAM, SUBJECT).await?;
        Ok(Self { nats })
    }

    /// Measures the ceiling at `n` in flight.
    pub async fn point(&self, plan: &Plan, n: usize, found: &mut Findings) -> anyhow::Result<()> {
        let point = self
            .measure_point(plan, n, SUBJECT, Headers::None, found)
            .await?;
        found.ceiling.push(point);
        Ok(())
    }

    /// Measures JetStream at `n` in flight with intake's headers on each
    /// publish.
    pub async fn point_with_ids(
        &self,
        plan: &Plan,
        n: usize,
        found: &mut Findings,
    ) -> anyhow::Result<()> {
        create_stream(&self.nats.js, STREAM_WITH_IDS, SUBJECT_WITH_IDS).await?;
        let point = self
            .measure_point(plan, n, SUBJECT_WITH_IDS, Headers::AsIntake, found)
            .await;
        self.nats
            .js
            .delete_stream(STREAM_WITH_IDS)
            .await
            .context("delete the stream of publishes with ids")?;
        found.ceiling_with_ids.push(point?);
        Ok(())
    }

    async fn measure_point(
        &self,
        plan: &Plan,
        n: usize,
        subject: &'static str,
        headers: Headers,
        found: &mut Findings,
    ) -> anyhow::Result<CeilingPoint> {
        let watch = CpuWatch::start(&[("nats-server", self.nats.pid())]);
        let from = Instant::now() + plan.warmup;
        let windows = Windows::new(from, plan.rate_window, plan.rate_windows);
        let (windows, mut latency) = measure(&self.nats.js, n, subject, headers, windows).await?;
        let case = match headers {
            Headers::None => format!("{n} in flight"),
            Headers::AsIntake => format!("{n} in flight, intake's headers"),
        };
        let cpu = watch.stop("ceiling", case);
        let point = CeilingPoint {
            in_flight: n,
            rate: windows.median(),
            latency: latency.percentiles(),
            cores: cpu.cores_total(),
            windows,
        };
        found.cpu.push(cpu);
        Ok(point)
    }
}

/// A file-backed stream with JetStream's default de-duplication window.
async fn create_stream(js: &jetstream::Context, name: &str, subject: &str) -> anyhow::Result<()> {
    js.create_stream(stream::Config {
        name: name.to_owned(),
        subjects: vec![subject.to_owned()],
        storage: stream::StorageType::File,
        ..Default::default()
    })
    .await
    .with_context(|| format!("create the stream {name}"))?;
    Ok(())
}

/// The ceiling's rows, by concurrency, whenever each point was measured.
pub fn rows(found: &Findings) -> Vec<Row> {
    let mut points: Vec<&CeilingPoint> = found.ceiling.iter().collect();
    points.sort_by_key(|p| p.in_flight);
    let mut rows = Vec::new();
    for p in points {
        let case = format!("{} in flight", p.in_flight);
        rows.push(
            Row::new(
                "ceiling",
                &case,
                "JetStream publishes/s (1 KiB)",
                p.rate,
                "/s",
            )
            .ratio(Some(p.rate)),
        );
        rows.extend(windows_spread("ceiling", &case, &p.windows));
        rows.push(Row::new(
            "ceiling",
            &case,
            "publish→ack p50",
            p.latency.p50_ms,
            "ms",
        ));
    }
    rows
}

/// Publishes with `in_flight` publishes outstanding until the last of
/// `windows` ends; the completions in each window and the latencies of the
/// publishes made inside them.
async fn measure(
    js: &jetstream::Context,
    in_flight: usize,
    subject: &'static str,
    headers: Headers,
    windows: Windows,
) -> anyhow::Result<(Windows, Samples)> {
    let payload = Bytes::from(vec![b'x'; 1024]);
    let until = windows.until();
    let ids = Arc::new(AtomicU64::new(1));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..in_flight {
        let (js, payload, mut counted) = (js.clone(), payload.clone(), windows.clone());
        let ids = ids.clone();
        tasks.spawn(async move {
            let mut samples = Samples::default();
            loop {
                let started = Instant::now();
                let ack = match headers {
                    Headers::None => js.publish(subject, payload.clone()).await?,
                    Headers::AsIntake => {
                        let id = webex_id("MESSAGE", ids.fetch_add(1, Ordering::Relaxed));
                        let mut map = HeaderMap::new();
                        map.insert(subjects::MSG_ID_HEADER, id.as_str());
                        map.insert(
                            subjects::COMMAND_ID_HEADER,
                            CommandId::new().to_string().as_str(),
                        );
                        js.publish_with_headers(subject, map, payload.clone())
                            .await?
                    }
                };
                ack.await?;
                let done = Instant::now();
                if counted.count(done) && counted.contains(started) {
                    samples.push(done - started);
                }
                if done >= until {
                    return Ok::<_, async_nats::Error>((counted, samples));
                }
            }
        });
    }
    let mut total = windows;
    let mut samples = Samples::default();
    while let Some(done) = tasks.join_next().await {
        let (counted, s) = done
            .context("a publisher panicked")?
            .map_err(|e| anyhow::anyhow!("publish: {e}"))?;
        total.merge(&counted);
        samples.extend(s);
    }
    Ok((total, samples))
}

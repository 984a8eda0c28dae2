//! The ceiling: raw JetStream publishes of 1 KiB, each persisted (file
//! storage, as the chatops streams) and acknowledged, with a fixed number in
//! flight on one connection (as a gateway has).
//!
//! Beside it, the same publishes carrying what each of intake's carries: a
//! `Nats-Msg-Id` that JetStream checks against its de-duplication window,
//! and a command id. The gap between the two is mostly what de-duplication
//! costs JetStream (with a 1 s window instead of two minutes most of it
//! went: round 7 in `bench/FINDINGS.md`), and intake pays it on every
//! webhook.

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

/// What each publish carries besides its 1 KiB, and where it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Headers {
    /// Nothing: the raw ceiling, on a stream kept for the whole run.
    Plain,
    /// A distinct `Nats-Msg-Id` (as long as a Webex message id) and a
    /// command id, as intake publishes; on a stream made afresh for each
    /// point and deleted after it, so that the ids it remembers for
    /// de-duplication weigh on no other point.
    AsIntake,
}

impl Headers {
    fn stream(self) -> &'static str {
        match self {
            Self::Plain => "BENCH_CEILING",
            Self::AsIntake => "BENCH_CEILING_INTAKE_HEADERS",
        }
    }

    fn subject(self) -> &'static str {
        match self {
            Self::Plain => "bench.ceiling",
            Self::AsIntake => "bench.ceiling.intake-headers",
        }
    }
}

/// A nats-server with the ceiling's stream, kept up for the whole of
/// intake: intake measures the ceiling at its own concurrency just before
/// each of its points, so that a ratio compares two rates taken a few
/// seconds apart. (The machine's speed drifts: the ceiling at one
/// concurrency moved by a quarter between runs minutes apart.)
#[derive(Debug)]
pub struct Ceiling {
    nats: Nats,
    /// The next message id, across points: an id used before would be
    /// answered as a duplicate, which costs JetStream next to nothing.
    next_id: Arc<AtomicU64>,
}

impl Ceiling {
    pub async fn start() -> anyhow::Result<Self> {
        let nats = Nats::start().await?;
        create_stream(&nats.js, Headers::Plain).await?;
        Ok(Self {
            nats,
            next_id: Arc::new(AtomicU64::new(1)),
        })
    }

    /// Measures the ceiling at `n` in flight.
    pub async fn point(&self, plan: &Plan, n: usize, found: &mut Findings) -> anyhow::Result<()> {
        let point = self.measure_point(plan, n, Headers::Plain, found).await?;
        found.ceiling.push(point);
        Ok(())
    }

    /// Measures JetStream at `n` in flight with intake's headers on each
    /// publish.
    pub async fn point_with_intake_headers(
        &self,
        plan: &Plan,
        n: usize,
        found: &mut Findings,
    ) -> anyhow::Result<()> {
        let headers = Headers::AsIntake;
        create_stream(&self.nats.js, headers).await?;
        let point = self.measure_point(plan, n, headers, found).await;
        let deleted = self
            .nats
            .js
            .delete_stream(headers.stream())
            .await
            .with_context(|| format!("delete the stream {}", headers.stream()));
        found.ceiling_with_intake_headers.push(point?);
        deleted?;
        Ok(())
    }

    async fn measure_point(
        &self,
        plan: &Plan,
        n: usize,
        headers: Headers,
        found: &mut Findings,
    ) -> anyhow::Result<CeilingPoint> {
        let watch = CpuWatch::start(&[("nats-server", self.nats.pid())]);
        let from = Instant::now() + plan.warmup;
        let windows = Windows::new(from, plan.rate_window, plan.rate_windows);
        let (windows, mut latency) =
            measure(&self.nats.js, n, headers, &self.next_id, windows).await?;
        let case = match headers {
            Headers::Plain => format!("{n} in flight"),
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
async fn create_stream(js: &jetstream::Context, headers: Headers) -> anyhow::Result<()> {
    js.create_stream(stream::Config {
        name: headers.stream().to_owned(),
        subjects: vec![headers.subject().to_owned()],
        storage: stream::StorageType::File,
        ..Default::default()
    })
    .await
    .with_context(|| format!("create the stream {}", headers.stream()))?;
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
    headers: Headers,
    next_id: &Arc<AtomicU64>,
    windows: Windows,
) -> anyhow::Result<(Windows, Samples)> {
    let payload = Bytes::from(vec![b'x'; 1024]);
    let until = windows.until();
    let subject = headers.subject();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..in_flight {
        let (js, payload, mut counted) = (js.clone(), payload.clone(), windows.clone());
        let next_id = next_id.clone();
        tasks.spawn(async move {
            let mut samples = Samples::default();
            loop {
                let started = Instant::now();
                let ack = match headers {
                    Headers::Plain => js.publish(subject, payload.clone()).await?,
                    Headers::AsIntake => {
                        let id = webex_id("MESSAGE", next_id.fetch_add(1, Ordering::Relaxed));
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
                if ack.await?.duplicate {
                    return Err("JetStream took a publish for a duplicate: ids repeat".into());
                }
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

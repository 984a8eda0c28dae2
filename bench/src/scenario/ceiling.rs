//! The ceiling: raw JetStream publishes of 1 KiB, each persisted (file
//! storage, as the chatops streams) and acknowledged, with a fixed number in
//! flight on one connection (as a gateway has).

use anyhow::Context;
use async_nats::jetstream::{self, stream};
use bytes::Bytes;
use tokio::time::Instant;

use super::{CeilingPoint, CpuWatch, Findings, windows_spread};
use crate::plan::Plan;
use crate::report::Row;
use crate::rig::Nats;
use crate::stats::{Samples, Windows};

const STREAM: &str = "BENCH_CEILING";
const SUBJECT: &str = "bench.ceiling";

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
        nats.js
            .create_stream(stream::Config {
                name: STREAM.to_owned(),
                subjects: vec![SUBJECT.to_owned()],
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .context("create the ceiling stream")?;
        Ok(Self { nats })
    }

    /// Measures the ceiling at `n` in flight.
    pub async fn point(&self, plan: &Plan, n: usize, found: &mut Findings) -> anyhow::Result<()> {
        let watch = CpuWatch::start(&[("nats-server", self.nats.pid())]);
        let from = Instant::now() + plan.warmup;
        let windows = Windows::new(from, plan.rate_window, plan.rate_windows);
        let (windows, mut latency) = measure(&self.nats.js, n, windows).await?;
        let cpu = watch.stop("ceiling", format!("{n} in flight"));
        found.ceiling.push(CeilingPoint {
            in_flight: n,
            rate: windows.median(),
            latency: latency.percentiles(),
            cores: cpu.cores_total(),
            windows,
        });
        found.cpu.push(cpu);
        Ok(())
    }
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
    windows: Windows,
) -> anyhow::Result<(Windows, Samples)> {
    let payload = Bytes::from(vec![b'x'; 1024]);
    let until = windows.until();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..in_flight {
        let (js, payload, mut counted) = (js.clone(), payload.clone(), windows.clone());
        tasks.spawn(async move {
            let mut samples = Samples::default();
            loop {
                let started = Instant::now();
                js.publish(SUBJECT, payload.clone()).await?.await?;
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

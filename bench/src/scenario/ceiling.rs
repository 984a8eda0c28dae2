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

pub async fn run(plan: &Plan, found: &mut Findings) -> anyhow::Result<()> {
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
    let nats_pid = nats.pid();
    for &n in &plan.ceiling_in_flight {
        let watch = CpuWatch::start(&[("nats-server", nats_pid)]);
        let from = Instant::now() + plan.warmup;
        let windows = Windows::new(from, plan.rate_window, plan.rate_windows);
        let (windows, mut latency) = measure(&nats.js, n, windows).await?;
        let rate = windows.median();
        let case = format!("{n} in flight");
        found.cpu.push(watch.stop("ceiling", &case));
        let latency = latency.percentiles();
        found.ceiling.push(CeilingPoint {
            in_flight: n,
            rate,
            latency,
        });
        found.rows.push(
            Row::new(
                "ceiling",
                &case,
                "JetStream publishes/s (1 KiB)",
                rate,
                "/s",
            )
            .ratio(Some(rate)),
        );
        found
            .rows
            .extend(windows_spread("ceiling", &case, &windows));
        found.rows.push(Row::new(
            "ceiling",
            &case,
            "publish→ack p50",
            latency.p50_ms,
            "ms",
        ));
    }
    Ok(())
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

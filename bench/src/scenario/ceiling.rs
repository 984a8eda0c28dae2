//! The ceiling: raw JetStream publishes of 1 KiB, each persisted (file
//! storage, as the chatops streams) and acknowledged, with a fixed number in
//! flight on one connection (as a gateway has).

use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::{self, stream};
use bytes::Bytes;
use tokio::time::Instant;

use super::{CeilingPoint, CpuWatch, Findings};
use crate::plan::Plan;
use crate::report::Row;
use crate::rig::Nats;
use crate::stats::Samples;

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
        let (rate, mut latency) = measure(&nats.js, n, plan.warmup, plan.window).await?;
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

/// Publishes for `warmup + window` with `in_flight` publishes outstanding;
/// the rate and latencies inside the window.
async fn measure(
    js: &jetstream::Context,
    in_flight: usize,
    warmup: Duration,
    window: Duration,
) -> anyhow::Result<(f64, Samples)> {
    let payload = Bytes::from(vec![b'x'; 1024]);
    let from = Instant::now() + warmup;
    let until = from + window;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..in_flight {
        let (js, payload) = (js.clone(), payload.clone());
        tasks.spawn(async move {
            let mut samples = Samples::default();
            let mut count = 0u64;
            loop {
                let started = Instant::now();
                js.publish(SUBJECT, payload.clone()).await?.await?;
                let done = Instant::now();
                if started >= from && done <= until {
                    count += 1;
                    samples.push(done - started);
                }
                if done >= until {
                    return Ok::<_, async_nats::Error>((count, samples));
                }
            }
        });
    }
    let mut total = 0;
    let mut samples = Samples::default();
    while let Some(done) = tasks.join_next().await {
        let (count, s) = done
            .context("a publisher panicked")?
            .map_err(|e| anyhow::anyhow!("publish: {e}"))?;
        total += count;
        samples.extend(s);
    }
    Ok((total as f64 / window.as_secs_f64(), samples))
}

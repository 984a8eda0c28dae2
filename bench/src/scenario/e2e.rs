//! End to end: Alice's messages already in the Webex sandbox, their signed
//! webhooks sent to the gateway on schedule, and the time from each webhook
//! to the bot's final reply in the thread as the Webex sandbox recorded it.
//! Every hop is a real process: gateway (intake, ingestion, notifier), two
//! workers, nats-server and both sandboxes.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::consumer::PullConsumer;
use chatops_shared::streams::{
    COMMANDS_STREAM, EVENTS_STREAM, INGESTION_CONSUMER, NOTIFIER_CONSUMER, RESULTS_STREAM,
    WORKERS_CONSUMER,
};
use futures::StreamExt;
use tokio::time::Instant;

use super::{CpuWatch, E2ePoint, Findings, secs};
use crate::load;
use crate::plan::Plan;
use crate::report::{Row, Target};
use crate::rig::{ALICE, Gateway, Kube, Nats, Rig, Webex, Worker};
use crate::stats::Samples;
use crate::webhook::{Author, Envelope};

/// How long the system may take to finish after the load stops.
const DRAIN_LIMIT: Duration = Duration::from_secs(120);

pub async fn run(rig: &Rig, plan: &Plan, found: &mut Findings) -> anyhow::Result<()> {
    for &latency in &plan.e2e_kube_latency {
        for &offered in &plan.e2e_rates {
            one(rig, plan, found, offered, latency).await?;
        }
    }
    Ok(())
}

/// The three durable consumers, in pipeline order.
const CONSUMERS: [(&str, &str); 3] = [
    (EVENTS_STREAM, INGESTION_CONSUMER),
    (COMMANDS_STREAM, WORKERS_CONSUMER),
    (RESULTS_STREAM, NOTIFIER_CONSUMER),
];

/// The pipeline's consumers, looked up once, so that reading their
/// backlogs is one `CONSUMER.INFO` call each.
///
/// Each call has the server count the consumer's pending messages, which
/// nats-server before 2.9.15 (Debian ships 2.9.10) does by walking the
/// stream. When the bench made nine such API calls a second, the pipeline
/// stalled for about 30 s in five runs of six at 1,000/s with 50 ms
/// Kubernetes calls, and in none of two runs without them. Samples are now
/// fewer and cost a third as much, and the drain after the load reads the
/// Webex sandbox's replies instead. (Round 3 in `bench/FINDINGS.md` tells
/// the story; round 9 saw the stall again while the drain still polled.)
struct Backlogs {
    consumers: Vec<PullConsumer>,
}

impl Backlogs {
    async fn open(nats: &Nats) -> anyhow::Result<Self> {
        let mut consumers = Vec::with_capacity(CONSUMERS.len());
        for (stream, consumer) in CONSUMERS {
            let stream = nats.js.get_stream(stream).await?;
            consumers.push(
                stream
                    .get_consumer(consumer)
                    .await
                    .map_err(|e| anyhow::anyhow!("consumer {consumer}: {e}"))?,
            );
        }
        Ok(Self { consumers })
    }

    /// Each consumer's backlog (pending and unacknowledged), in pipeline
    /// order; 0 where the server did not answer.
    async fn each(&mut self) -> [u64; 3] {
        let mut left = [0; 3];
        for (n, consumer) in left.iter_mut().zip(&mut self.consumers) {
            if let Ok(info) = consumer.info().await {
                *n = info.num_pending + u64::try_from(info.num_ack_pending).unwrap_or(0);
            }
        }
        left
    }

    /// The backlog of the whole pipeline.
    async fn total(&mut self) -> u64 {
        self.each().await.iter().sum()
    }
}

/// What marks the bot's final reply to a command: its reference.
const FINAL_MARK: &str = "(ref ";

/// The message a bot's post is the final reply to: a reply in a thread
/// that carries the command's reference.
fn final_reply_to(post: &serde_json::Value) -> Option<&str> {
    let body = &post["body"];
    let markdown = body["markdown"].as_str()?;
    markdown
        .contains(FINAL_MARK)
        .then(|| body["parentId"].as_str())
        .flatten()
}

/// How often the backlog is sampled while a load of `seconds` runs: a
/// dozen samples, at most one a second.
fn sample_every(seconds: f64) -> Duration {
    secs((seconds / 12.0).clamp(1.0, 5.0))
}

async fn one(
    rig: &Rig,
    plan: &Plan,
    found: &mut Findings,
    offered: f64,
    kube_latency: Duration,
) -> anyhow::Result<()> {
    let ms = kube_latency.as_millis();
    let case = format!("{offered:.0}/s, kube +{ms} ms");
    let dir = rig.world_dir(&format!("e2e-{offered:.0}-{ms}"))?;
    let nats = Nats::start_beside_system(rig).await?;
    let kube = Kube::start(rig, &dir, plan.deployments).await?;
    let webex = Webex::start(rig, &dir).await?;
    let mut gateway = Gateway::start(rig, &dir, &nats.url(), &webex.api_url()).await?;
    let mut workers = Vec::new();
    for i in 0..plan.e2e_workers {
        workers.push(
            Worker::start(
                rig,
                &dir,
                &format!("worker-{i}"),
                &nats.url(),
                &kube.url,
                plan.e2e_concurrency,
            )
            .await?,
        );
    }
    gateway.ingesting().await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    found.memory.gateway_idle(gateway.proc.usage());
    for w in &workers {
        found.memory.worker_idle(w.usage());
    }
    if !kube_latency.is_zero() {
        kube.latency(kube_latency).await?;
    }

    // Alice's messages, written before the clock starts.
    let count = (offered * plan.e2e_seconds).round().max(1.0) as usize;
    let deployments = plan.deployments;
    let messages: Vec<String> = futures::stream::iter(0..count)
        .map(|i| {
            let webex = &webex;
            async move {
                webex
                    .say(&format!("scale app-{} to {}", i % deployments, 1 + i % 5))
                    .await
            }
        })
        .buffered(32)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()
        .context("write Alice's messages")?;
    let envelope = Envelope::new(&Author {
        room_id: webex.room_id.clone(),
        person_id: webex.alice_id().await?,
        email: ALICE.to_owned(),
    });
    let ids = Arc::new(messages);
    let make: load::MakeDelivery = {
        let ids = ids.clone();
        Arc::new(move |i| {
            let id = usize::try_from(i).unwrap_or(0);
            envelope.delivery(&ids[id])
        })
    };

    // Backlog samples while the load runs; the sampler stops when told and
    // hands its consumers back for the reading at the end.
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let started = Instant::now();
    let sampler = {
        let mut backlogs = Backlogs::open(&nats).await?;
        let every = sample_every(plan.e2e_seconds);
        tokio::spawn(async move {
            let mut samples = Vec::new();
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    () = tokio::time::sleep(every) => {
                        samples.push((started.elapsed().as_secs_f64(), backlogs.total().await));
                    }
                }
            }
            (samples, backlogs)
        })
    };
    let mut pids = vec![
        ("nats-server", nats.pid()),
        ("gateway", gateway.proc.pid()),
        ("kube-sandbox", kube.proc.pid()),
        ("webex-sandbox", webex.proc.pid()),
    ];
    for w in &workers {
        pids.push(("worker", w.proc.pid()));
    }
    let watch = CpuWatch::start(&pids);
    let run = load::open_loop(gateway.addr, offered, count as u64, 16, make).await?;
    let sent_for = started.elapsed();
    let _ = stop.send(());
    let (mut samples, mut backlogs) = sampler.await.context("the backlog sampler")?;
    let left = backlogs.each().await;
    for ((stream, consumer), left) in CONSUMERS.iter().zip(left) {
        eprintln!(
            "chatops-bench: {case}: {left} left for {consumer} on {stream} at the end of the load"
        );
    }
    let backlog_end: u64 = left.iter().sum();
    samples.push((sent_for.as_secs_f64(), backlog_end));
    found.cpu.push(watch.stop("e2e", &case));

    let sent: HashMap<&str, i64> = run
        .sent
        .iter()
        .filter(|s| s.status == 200)
        .map(|s| {
            (
                ids[usize::try_from(s.index).unwrap_or(0)].as_str(),
                s.sent_unix_us,
            )
        })
        .collect();

    // Drain: read the bot's replies as the Webex sandbox records them until
    // every accepted webhook has its final one. Only what is new is read
    // each time, and nats-server is not asked (see `Backlogs`). A second
    // final reply that would come after the last first one is not seen.
    let deadline = Instant::now() + DRAIN_LIMIT;
    let (mut posts, mut after, mut finished) = (Vec::new(), 0, HashSet::new());
    loop {
        let new = webex.bot_posts(after).await?;
        after = new.last().and_then(|p| p["seq"].as_u64()).unwrap_or(after);
        finished.extend(
            new.iter()
                .filter_map(|post| final_reply_to(post))
                .filter(|parent| sent.contains_key(parent))
                .map(str::to_owned),
        );
        posts.extend(new);
        if finished.len() >= sent.len() || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let drained_after = started.elapsed();
    found.memory.gateway_loaded(gateway.proc.usage());
    for w in &workers {
        found.memory.worker_loaded(w.usage());
    }
    let (mut finals, mut acks, mut outcomes) =
        (Samples::default(), Samples::default(), HashMap::new());
    // A second final reply to one message is a doubled answer: counted,
    // and left out of the latencies.
    let (mut answered, mut doubled) = (HashSet::new(), 0usize);
    let mut last_reply_us = 0i64;
    for post in &posts {
        let body = &post["body"];
        let (Some(parent), Some(markdown)) = (body["parentId"].as_str(), body["markdown"].as_str())
        else {
            continue;
        };
        let Some(sent_us) = sent.get(parent) else {
            continue;
        };
        let Some(received) = post["received"]
            .as_str()
            .and_then(|r| r.parse::<jiff::Timestamp>().ok())
        else {
            continue;
        };
        let received_us = received.as_microsecond();
        let latency = u64::try_from(received_us - sent_us).unwrap_or(0);
        if markdown.contains(FINAL_MARK) {
            if !answered.insert(parent) {
                doubled += 1;
                continue;
            }
            finals.push_micros(latency);
            last_reply_us = last_reply_us.max(received_us);
            let kind = [
                "Nicely done!",
                "Already done:",
                "Skipped:",
                "Sorry,",
                "Oh no!",
                "nothing changed",
            ]
            .into_iter()
            .find(|k| markdown.contains(k))
            .unwrap_or("other");
            *outcomes.entry(kind).or_insert(0usize) += 1;
        } else if markdown.contains("queued:") {
            acks.push_micros(latency);
        }
    }
    let unfinished = count.saturating_sub(answered.len());
    if doubled > 0 {
        found.failures.push(format!(
            "end to end at {case}: {doubled} second final replies to one message"
        ));
    }
    if unfinished > 0 || run.accepted() != count {
        found.failures.push(format!(
            "end to end at {case}: {} of {count} webhooks accepted, {unfinished} without a final reply after {drained_after:?}",
            run.accepted()
        ));
    }
    // Every command sent is a valid scale of a deployment that exists: a
    // refusal is as much a failure of the run as an error.
    let failed = ["Oh no!", "Sorry,", "other"]
        .iter()
        .map(|k| outcomes.get(k).copied().unwrap_or(0))
        .sum::<usize>();
    if failed > 0 {
        found.failures.push(format!(
            "end to end at {case}: {failed} commands failed: {outcomes:?}"
        ));
    }
    // Completed per second: finals over the time from the first send to the
    // last final reply.
    let first_sent = run.sent.iter().map(|s| s.sent_unix_us).min().unwrap_or(0);
    let span = (last_reply_us - first_sent).max(1) as f64 / 1e6;
    let completed = finals.len() as f64 / span;
    let latency = finals.percentiles();
    let ack = acks.percentiles();
    let unit = found.ceiling_p50_ms();
    let zero = kube_latency.is_zero();
    let mut p50 = Row::new(
        "e2e",
        &case,
        "webhook→final reply p50",
        latency.p50_ms,
        "ms",
    )
    .ratio(unit);
    let mut p99 = Row::new(
        "e2e",
        &case,
        "webhook→final reply p99",
        latency.p99_ms,
        "ms",
    )
    .ratio(unit);
    if zero && (offered - 200.0).abs() < 1.0 {
        p50 = p50.target(Target::Below(15.0));
        p99 = p99.target(Target::Below(50.0));
    }
    found.rows.push(p50);
    found.rows.push(p99);
    let mut done =
        Row::new("e2e", &case, "commands completed/s", completed, "/s").ratio(found.ceiling_best());
    if zero && (offered - 1000.0).abs() < 1.0 {
        done = done.target(Target::AtLeast(offered * 0.98));
    }
    found.rows.push(done);
    // Growth: the backlog's slope over the second half of the load, per second.
    let growth = slope(&samples[samples.len() / 2..]);
    let mut end = Row::new(
        "e2e",
        &case,
        "backlog at the end of the load",
        backlog_end as f64,
        "msgs",
    );
    if zero && (offered - 1000.0).abs() < 1.0 {
        // "No growing backlog": what is left is under half a second of load.
        end = end.target(Target::Below(offered * 0.5));
    }
    found.rows.push(end);
    found.rows.push(Row::new(
        "e2e",
        &case,
        "backlog growth (2nd half)",
        growth,
        "msgs/s",
    ));
    found.e2e.push(E2ePoint {
        offered,
        kube_latency_ms: u64::try_from(ms).unwrap_or(0),
        latency,
        acknowledgement: ack,
        completed_per_second: completed,
        backlog_end,
        backlog: samples,
        unfinished,
    });
    drop(workers);
    drop(gateway);
    tokio::time::sleep(secs(0.2)).await;
    Ok(())
}

/// Least-squares slope of (seconds, messages).
fn slope(points: &[(f64, u64)]) -> f64 {
    let n = points.len() as f64;
    if points.len() < 2 {
        return 0.0;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1 as f64).sum::<f64>() / n;
    let num: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 as f64 - my)).sum();
    let den: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if den == 0.0 { 0.0 } else { num / den }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{sample_every, slope};

    #[test]
    fn the_backlog_is_sampled_a_dozen_times_at_most_once_a_second() {
        assert_eq!(sample_every(60.0), Duration::from_secs(5));
        assert_eq!(sample_every(24.0), Duration::from_secs(2));
        assert_eq!(sample_every(2.0), Duration::from_secs(1));
        assert_eq!(sample_every(600.0), Duration::from_secs(5));
    }

    #[test]
    fn a_flat_backlog_has_no_growth_and_a_rising_one_does() {
        assert_eq!(slope(&[(1.0, 5), (2.0, 5), (3.0, 5)]), 0.0);
        assert!((slope(&[(1.0, 0), (2.0, 100), (3.0, 200)]) - 100.0).abs() < 1e-9);
    }
}

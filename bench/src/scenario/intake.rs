//! Intake: verified webhooks accepted per second by a gateway process at a
//! number of connections (closed loop), and accept latency at fixed offered
//! loads (open loop).
//!
//! The gateway's Webex API address is one nothing listens on, so ingestion
//! waits for Webex and the gateway's CPU goes to intake alone: this is the
//! intake path's capacity. End to end measures everything together.
//!
//! The ceiling at each closed-loop point's concurrency is measured just
//! before the point, on its own nats-server, while the gateway idles. So is
//! an empty HTTP server (`http-floor`: the gateway's HTTP stack answering
//! 200 without a signature, JSON or NATS) under the same load: no intake
//! over HTTP can go faster on this machine, so it shows how much of the
//! ceiling HTTP alone leaves. An intake must do both, answer over HTTP and
//! publish, so the CPU the empty server spent per request plus the CPU the
//! ceiling spent per publish is the least a webhook can cost: all cores
//! divided by that is the most any intake could accept here, reported as
//! "bound from CPU".
//!
//! JetStream is also measured with intake's headers on each publish (a
//! `Nats-Msg-Id` it de-duplicates on, and a command id): what JetStream
//! allows for the publishes intake must make. Intake is reported against
//! both; the target is against the plain one.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;

use super::ceiling::Ceiling;
use super::{CpuWatch, Findings, IntakePoint, per_item, secs, windows_spread};
use crate::load::{self, MakeDelivery};
use crate::plan::Plan;
use crate::procs;
use crate::report::{Row, Target};
use crate::rig::{self, Gateway, HttpFloor, Nats, Rig};
use crate::stats::Windows;
use crate::webhook::{self, Author, Envelope};

/// Distinct message ids across the whole scenario: a repeated id would be a
/// duplicate, which JetStream answers without storing.
fn deliveries(base: &Arc<AtomicU64>) -> MakeDelivery {
    let envelope = Envelope::new(&Author::synthetic());
    let base = base.clone();
    Arc::new(move |_| {
        let n = base.fetch_add(1, Ordering::Relaxed);
        envelope.delivery(&webhook::webex_id("MESSAGE", n))
    })
}

/// A server that a closed-loop point loads, and how its findings are named.
struct Point<'a> {
    addr: SocketAddr,
    /// The processes whose CPU the point reports.
    pids: &'a [(&'a str, u32)],
    /// Who failed, in a failure's message.
    what: &'static str,
    cpu_case: String,
}

impl Point<'_> {
    /// `connections` connections send back to back over `windows`; the CPU
    /// they took is noted, and refused or failed requests fail the run. The
    /// run, and the CPU seconds each request cost (all processes together).
    async fn measure(
        self,
        connections: usize,
        windows: impl FnOnce() -> Windows,
        make: MakeDelivery,
        found: &mut Findings,
    ) -> anyhow::Result<(load::ClosedLoop, Option<f64>)> {
        let watch = CpuWatch::start(self.pids);
        let run = load::closed_loop(self.addr, connections, windows, make).await?;
        let cpu = watch.stop("intake", self.cpu_case);
        let per_request = per_item(cpu.cores_total(), run.rate());
        found.cpu.push(cpu);
        if run.errors > 0 || run.refused > 0 {
            found.failures.push(format!(
                "{} at {connections} connections: {} refused, {} connection errors",
                self.what, run.refused, run.errors
            ));
        }
        Ok((run, per_request))
    }
}

/// With a `ceiling`, each closed-loop point is measured right after the
/// ceiling at the same concurrency (see [`Plan::ceiling_beside_intake`]).
pub async fn run(
    rig: &Rig,
    plan: &Plan,
    ceiling: Option<&Ceiling>,
    found: &mut Findings,
) -> anyhow::Result<()> {
    let dir = rig.world_dir("intake")?;
    let nats = Nats::start().await?;
    let gateway = Gateway::start(rig, &dir, &nats.url(), &rig::closed_address()?).await?;
    let floor = HttpFloor::start(rig, &dir).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    found.memory.gateway_idle(gateway.proc.usage());
    let ids = Arc::new(AtomicU64::new(1));
    let pids = [("gateway", gateway.proc.pid()), ("nats-server", nats.pid())];
    let floor_pids = [("http-floor", floor.proc.pid())];

    for &c in &plan.intake_connections {
        if let Some(ceiling) = ceiling
            && plan.ceiling_beside_intake(c)
        {
            ceiling.point(plan, c, found).await.context("ceiling")?;
            ceiling
                .point_with_intake_headers(plan, c, found)
                .await
                .context("ceiling with intake's headers")?;
        }
        let case = format!("{c} connections");
        // The windows start once every connection is open.
        let windows = || {
            let from = tokio::time::Instant::now() + plan.warmup;
            Windows::new(from, plan.rate_window, plan.rate_windows)
        };
        let (empty, http_cpu) = Point {
            addr: floor.addr,
            pids: &floor_pids,
            what: "the empty HTTP server",
            cpu_case: format!("{case}, empty HTTP server"),
        }
        .measure(c, windows, deliveries(&ids), found)
        .await?;
        let (run, webhook_cpu) = Point {
            addr: gateway.addr,
            pids: &pids,
            what: "intake",
            cpu_case: case.clone(),
        }
        .measure(c, windows, deliveries(&ids), found)
        .await?;
        let rate = run.rate();
        let ceiling = found.ceiling_point_at(c);
        let same = ceiling.map(|p| p.rate);
        let publish_cpu = ceiling.and_then(|p| p.cpu_per_publish());
        let with_headers = found.ceiling_with_intake_headers_at(c);
        found.rows.push(
            Row::new(
                "intake",
                &case,
                "empty HTTP server, just before (bound for any intake)",
                empty.rate(),
                "/s",
            )
            .ratio(same),
        );
        if let Some(js_headers) = with_headers {
            found.rows.push(
                Row::new(
                    "intake",
                    &case,
                    "JetStream with intake's headers (a Nats-Msg-Id to de-duplicate), just before",
                    js_headers,
                    "/s",
                )
                .ratio(same),
            );
        }
        let mut row = Row::new("intake", &case, "webhooks accepted/s", rate, "/s").ratio(same);
        row = if c == 64 {
            row.target(Target::AtLeast(10_000.0))
        } else {
            row
        };
        found.rows.push(row);
        found
            .rows
            .extend(windows_spread("intake", &case, &run.accepted));
        if let Some(cpu) = webhook_cpu {
            found.rows.push(Row::new(
                "intake",
                &case,
                "CPU per webhook (gateway, nats-server, bench)",
                cpu * 1e6,
                "µs",
            ));
        }
        // Any intake answers over HTTP and publishes to JetStream, so it
        // spends at least what the empty server and a raw publish spend.
        if let Some((http, publish)) = http_cpu.zip(publish_cpu) {
            found.rows.push(
                Row::new(
                    "intake",
                    &case,
                    "bound from CPU: all cores ÷ (empty server's + raw publish's CPU each)",
                    procs::cpus() as f64 / (http + publish),
                    "/s",
                )
                .ratio(same),
            );
        }
        found.rows.push(
            Row::new(
                "intake",
                &case,
                "vs JetStream at the same concurrency, just before",
                rate,
                "/s",
            )
            .ratio(same)
            .ratio_target(Target::AtLeast(0.5)),
        );
        if let Some(js_headers) = with_headers {
            found.rows.push(
                Row::new(
                    "intake",
                    &case,
                    "vs JetStream with intake's headers, just before",
                    rate,
                    "/s",
                )
                .ratio(Some(js_headers)),
            );
        }
    }

    for &offered in &plan.intake_rates {
        let case = format!("{offered:.0}/s offered");
        let count = (offered * plan.intake_open_seconds).round() as u64;
        let watch = CpuWatch::start(&pids);
        let run = load::open_loop(gateway.addr, offered, count, 32, deliveries(&ids)).await?;
        found.cpu.push(watch.stop("intake", &case));
        let accepted = run.accepted();
        if accepted as u64 != count {
            found.failures.push(format!(
                "intake at {offered}/s: {} of {count} accepted",
                accepted
            ));
        }
        let latency = run.latencies().percentiles();
        let lag = run.lags().percentiles();
        let unit = found.ceiling_p50_ms();
        let p99 = Row::new("intake", &case, "accept p99", latency.p99_ms, "ms").ratio(unit);
        found
            .rows
            .push(Row::new("intake", &case, "accept p50", latency.p50_ms, "ms").ratio(unit));
        found.rows.push(if (offered - 2000.0).abs() < 1.0 {
            p99.target(Target::Below(10.0))
        } else {
            p99
        });
        found
            .rows
            .push(Row::new("intake", &case, "accept p999", latency.p999_ms, "ms").ratio(unit));
        if lag.p99_ms > 5.0 {
            found.rows.push(Row::new(
                "intake",
                &case,
                "generator lag p99 (bench too slow)",
                lag.p99_ms,
                "ms",
            ));
        }
        found.intake_open.push(IntakePoint { offered, latency });
        // Let the gateway settle between loads.
        tokio::time::sleep(secs(0.5)).await;
    }
    found.memory.gateway_loaded(gateway.proc.usage());
    Ok(())
}

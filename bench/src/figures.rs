//! The figures of a run: latency against offered load (intake and end to
//! end), worker scaling against its bound, and throughput against the
//! JetStream ceiling.

use crate::scenario::{CeilingPoint, Findings};
use crate::svg::{COLORS, Chart, Series, render};

/// Intake accept latency and end-to-end latency against offered load.
pub fn latency(found: &Findings) -> Option<String> {
    let mut charts = Vec::new();
    if !found.intake_open.is_empty() {
        let series = [("p50", 0), ("p99", 1), ("p999", 2)]
            .into_iter()
            .map(|(name, i)| Series {
                name: format!("accept {name}"),
                points: found
                    .intake_open
                    .iter()
                    .map(|p| {
                        let l = p.latency;
                        (p.offered, [l.p50_ms, l.p99_ms, l.p999_ms][i])
                    })
                    .collect(),
                color: COLORS[i],
                dashed: false,
            })
            .collect();
        charts.push(Chart {
            title: "Intake: webhook accepted (stored in JetStream)".into(),
            x_label: "offered webhooks per second".into(),
            y_label: "milliseconds".into(),
            log_x: true,
            log_y: true,
            series,
            rules: vec![(10.0, "target p99 at 2,000/s".into())],
        });
    }
    if !found.e2e.is_empty() {
        let mut latencies: Vec<u64> = found.e2e.iter().map(|p| p.kube_latency_ms).collect();
        latencies.sort_unstable();
        latencies.dedup();
        let mut series = Vec::new();
        for (j, ms) in latencies.iter().enumerate() {
            for (name, i) in [("p50", 0), ("p99", 1)] {
                series.push(Series {
                    name: format!("{name}, Kubernetes +{ms} ms"),
                    points: found
                        .e2e
                        .iter()
                        .filter(|p| p.kube_latency_ms == *ms)
                        .map(|p| (p.offered, [p.latency.p50_ms, p.latency.p99_ms][i]))
                        .collect(),
                    color: COLORS[(j * 2 + i) % COLORS.len()],
                    dashed: false,
                });
            }
        }
        charts.push(Chart {
            title: "End to end: webhook to final reply in Webex".into(),
            x_label: "offered commands per second".into(),
            y_label: "milliseconds".into(),
            log_x: true,
            log_y: true,
            series,
            rules: vec![
                (15.0, "target p50 at 200/s".into()),
                (50.0, "target p99 at 200/s".into()),
            ],
        });
    }
    (!charts.is_empty()).then(|| render("chatops latency (loopback, this machine)", &charts))
}

/// Worker throughput against the number of workers, with each bound.
pub fn scaling(found: &Findings) -> Option<String> {
    if found.scaling.is_empty() {
        return None;
    }
    let mut in_flight: Vec<usize> = found.scaling.iter().map(|p| p.in_flight).collect();
    in_flight.sort_unstable();
    in_flight.dedup();
    let mut series = Vec::new();
    for (i, c) in in_flight.iter().enumerate() {
        let points = |f: fn(&crate::scenario::ScalingPoint) -> f64| {
            found
                .scaling
                .iter()
                .filter(|p| p.in_flight == *c)
                .map(|p| (p.workers as f64, f(p)))
                .collect::<Vec<_>>()
        };
        series.push(Series {
            name: format!("{c} in flight per worker"),
            points: points(|p| p.rate),
            color: COLORS[i % COLORS.len()],
            dashed: false,
        });
        series.push(Series {
            name: format!("bound, {c} in flight"),
            points: points(|p| p.bound),
            color: COLORS[i % COLORS.len()],
            dashed: true,
        });
    }
    Some(render(
        "Worker scaling, 50 ms per Kubernetes API call",
        &[Chart {
            title: "commands applied per second".into(),
            x_label: "worker processes".into(),
            y_label: "commands per second".into(),
            log_x: true,
            log_y: true,
            series,
            rules: Vec::new(),
        }],
    ))
}

/// Intake throughput and the JetStream ceiling against concurrency.
pub fn throughput(found: &Findings) -> Option<String> {
    if found.ceiling.is_empty() {
        return None;
    }
    // By concurrency: intake measures some points after the others.
    let by_concurrency = |points: &[CeilingPoint]| {
        let mut points: Vec<(f64, f64)> = points
            .iter()
            .map(|c| (c.in_flight as f64, c.rate))
            .collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        points
    };
    let mut series = vec![Series {
        name: "JetStream publishes (ceiling)".into(),
        points: by_concurrency(&found.ceiling),
        color: COLORS[6],
        dashed: true,
    }];
    if !found.ceiling_with_intake_headers.is_empty() {
        series.push(Series {
            name: "JetStream publishes with intake's headers".into(),
            points: by_concurrency(&found.ceiling_with_intake_headers),
            color: COLORS[4],
            dashed: true,
        });
    }
    let intake: Vec<(f64, f64)> = found
        .rows
        .iter()
        .filter(|r| r.scenario == "intake" && r.metric == "webhooks accepted/s")
        .filter_map(|r| {
            let c: f64 = r.case.split_whitespace().next()?.parse().ok()?;
            Some((c, r.value))
        })
        .collect();
    if !intake.is_empty() {
        series.push(Series {
            name: "webhooks accepted by the gateway".into(),
            points: intake,
            color: COLORS[0],
            dashed: false,
        });
    }
    Some(render(
        "Throughput against the JetStream ceiling",
        &[Chart {
            title: "per second".into(),
            x_label: "requests in flight (connections)".into(),
            y_label: "per second".into(),
            log_x: true,
            log_y: true,
            series,
            rules: vec![(10_000.0, "target: 10,000/s at 64".into())],
        }],
    ))
}

//! The scenarios of the issue, each a module, and what they hand on to the
//! table, the figures and each other (the ceiling every ratio refers to,
//! the memory seen along the way).

pub mod ceiling;
pub mod e2e;
pub mod intake;
pub mod replay;
pub mod scaling;

use std::time::Duration;

use serde::Serialize;

use crate::procs::{MachineCpu, Usage, waited_children_cpu_seconds};
use crate::report::Row;
use crate::stats::{Percentiles, Windows};

/// Raw JetStream publish rate at one concurrency.
#[derive(Debug, Clone, Serialize)]
pub struct CeilingPoint {
    pub in_flight: usize,
    pub rate: f64,
    pub latency: Percentiles,
    /// Cores busy while it was measured (nats-server and the publishers).
    pub cores: f64,
    #[serde(skip)]
    pub windows: Windows,
}

impl CeilingPoint {
    /// CPU seconds one publish cost, all processes together.
    pub fn cpu_per_publish(&self) -> Option<f64> {
        per_item(self.cores, self.rate)
    }
}

/// CPU seconds per item: `cores` busy while `rate` items a second went by.
pub fn per_item(cores: f64, rate: f64) -> Option<f64> {
    (rate > 0.0).then(|| cores / rate)
}

/// Intake latency at one offered load.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct IntakePoint {
    pub offered: f64,
    pub latency: Percentiles,
}

/// End to end at one offered load and Kubernetes latency.
#[derive(Debug, Clone, Serialize)]
pub struct E2ePoint {
    pub offered: f64,
    pub kube_latency_ms: u64,
    pub latency: Percentiles,
    pub acknowledgement: Percentiles,
    pub completed_per_second: f64,
    pub backlog_end: u64,
    /// Backlog samples during the load, (seconds, messages).
    pub backlog: Vec<(f64, u64)>,
    pub unfinished: usize,
}

/// Worker throughput at one worker count and concurrency.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ScalingPoint {
    pub workers: usize,
    pub in_flight: usize,
    pub rate: f64,
    pub bound: f64,
    pub calls_per_command: f64,
}

/// Where the CPU went during one measurement: busy share of the whole
/// machine, and cores used by each process.
#[derive(Debug, Clone, Serialize)]
pub struct CpuNote {
    pub scenario: &'static str,
    pub case: String,
    pub machine_busy: f64,
    pub cores: Vec<(String, f64)>,
}

impl CpuNote {
    /// Cores the watched processes used together.
    pub fn cores_total(&self) -> f64 {
        self.cores.iter().map(|(_, c)| c).sum()
    }
}

/// Takes CPU readings at the start and end of a measurement.
#[derive(Debug)]
pub struct CpuWatch {
    machine: MachineCpu,
    procs: Vec<(String, u32, f64)>,
    /// A child that exits before the watch stops, by name, and the CPU
    /// time of the bench's waited-for children at the start.
    exiting: Option<(String, f64)>,
    started: std::time::Instant,
}

impl CpuWatch {
    /// `procs`: (name, pid); the bench itself is added.
    pub fn start(procs: &[(&str, u32)]) -> Self {
        let mut all: Vec<(String, u32, f64)> = procs
            .iter()
            .map(|(n, pid)| ((*n).to_owned(), *pid, Usage::of(*pid).cpu_seconds))
            .collect();
        all.push((
            "bench".to_owned(),
            std::process::id(),
            Usage::own().cpu_seconds,
        ));
        Self {
            machine: MachineCpu::now(),
            procs: all,
            exiting: None,
            started: std::time::Instant::now(),
        }
    }

    /// Also watches `name`, a child of the bench that exits, and is waited
    /// for, before the watch stops: once it is gone its own counters are
    /// too, so its time is read from what the bench's waited-for children
    /// used meanwhile (it must be the only one to exit meanwhile).
    pub fn with_exiting_child(mut self, name: &str) -> Self {
        self.exiting = Some((name.to_owned(), waited_children_cpu_seconds()));
        self
    }

    pub fn stop(self, scenario: &'static str, case: impl Into<String>) -> CpuNote {
        let elapsed = self.started.elapsed().as_secs_f64().max(1e-9);
        CpuNote {
            scenario,
            case: case.into(),
            machine_busy: MachineCpu::now().busy_since(&self.machine),
            cores: self
                .exiting
                .map(|(name, before)| (name, waited_children_cpu_seconds() - before))
                .into_iter()
                .chain(
                    self.procs
                        .into_iter()
                        .map(|(name, pid, before)| (name, Usage::of(pid).cpu_seconds - before)),
                )
                .map(|(name, seconds)| (name, seconds / elapsed))
                .collect(),
        }
    }
}

/// Resident memory seen, in bytes.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Memory {
    pub gateway_idle: Option<u64>,
    pub gateway_peak: Option<u64>,
    pub worker_idle: Option<u64>,
    pub worker_peak: Option<u64>,
}

fn max_opt(a: Option<u64>, b: u64) -> Option<u64> {
    Some(a.map_or(b, |a| a.max(b)))
}

impl Memory {
    /// A fresh gateway, before any load.
    pub fn gateway_idle(&mut self, u: Usage) {
        self.gateway_idle = max_opt(self.gateway_idle, u.rss);
    }

    /// A gateway after a load: its high-water mark.
    pub fn gateway_loaded(&mut self, u: Usage) {
        self.gateway_peak = max_opt(self.gateway_peak, u.peak_rss);
    }

    pub fn worker_idle(&mut self, u: Usage) {
        self.worker_idle = max_opt(self.worker_idle, u.rss);
    }

    pub fn worker_loaded(&mut self, u: Usage) {
        self.worker_peak = max_opt(self.worker_peak, u.peak_rss);
    }
}

/// Everything a run found.
#[derive(Debug, Default, Serialize)]
pub struct Findings {
    pub rows: Vec<Row>,
    pub ceiling: Vec<CeilingPoint>,
    /// JetStream with intake's headers on each publish, at intake's
    /// concurrencies.
    pub ceiling_with_intake_headers: Vec<CeilingPoint>,
    pub intake_open: Vec<IntakePoint>,
    pub e2e: Vec<E2ePoint>,
    pub scaling: Vec<ScalingPoint>,
    pub memory: Memory,
    pub cpu: Vec<CpuNote>,
    /// Problems that make a run fail (lost commands, errors), even a smoke run.
    pub failures: Vec<String>,
}

impl Findings {
    /// The ceiling at exactly this concurrency.
    pub fn ceiling_at(&self, in_flight: usize) -> Option<f64> {
        self.ceiling_point_at(in_flight).map(|c| c.rate)
    }

    pub fn ceiling_point_at(&self, in_flight: usize) -> Option<&CeilingPoint> {
        point_at(&self.ceiling, in_flight)
    }

    /// JetStream with intake's headers at exactly this concurrency.
    pub fn ceiling_with_intake_headers_at(&self, in_flight: usize) -> Option<f64> {
        point_at(&self.ceiling_with_intake_headers, in_flight).map(|c| c.rate)
    }

    /// The best ceiling measured.
    pub fn ceiling_best(&self) -> Option<f64> {
        self.ceiling.iter().map(|c| c.rate).reduce(f64::max)
    }

    /// JetStream's publish-to-ack median at one in flight, in milliseconds:
    /// the unit latencies are compared with.
    pub fn ceiling_p50_ms(&self) -> Option<f64> {
        self.ceiling
            .iter()
            .find(|c| c.in_flight == 1)
            .map(|c| c.latency.p50_ms)
    }
}

/// The point measured at exactly this concurrency.
fn point_at(points: &[CeilingPoint], in_flight: usize) -> Option<&CeilingPoint> {
    points.iter().find(|c| c.in_flight == in_flight)
}

/// A row with how far apart a point's throughput windows were, when there
/// were several.
pub fn windows_spread(scenario: &'static str, case: &str, windows: &Windows) -> Option<Row> {
    (windows.windows() > 1).then(|| {
        Row::new(
            scenario,
            case,
            format!(
                "spread of its {} windows: (max - min) / median",
                windows.windows()
            ),
            windows.spread() * 100.0,
            "%",
        )
    })
}

/// Seconds as a Duration, from a float.
pub fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

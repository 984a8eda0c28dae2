//! What a run measures and for how long: the full run of the issue, or a
//! smoke run of a few seconds that only proves every path still works.

use std::path::PathBuf;
use std::time::Duration;

/// The parts of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum, serde::Serialize)]
pub enum Scenario {
    Ceiling,
    Intake,
    E2e,
    Scaling,
    Replay,
}

/// Command-line arguments.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "chatops-bench",
    version,
    about = "Benchmarks chatops on loopback: the JetStream ceiling, webhook intake, end to end, worker scaling, replay and memory.",
    after_help = "Full run (about 10 minutes once built; results in bench/results):\n  cargo run --release -p chatops-bench\n\nSmoke run (seconds; what scripts/test runs):\n  cargo run -p chatops-bench -- --smoke"
)]
pub struct Args {
    /// A run of a few seconds with tiny loads: checks that everything works,
    /// measures nothing worth reporting.
    #[arg(long)]
    pub smoke: bool,
    /// Where to write the table, the JSON and the figures (default
    /// bench/results, or target/bench-smoke with --smoke).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Seconds each end-to-end load lasts (the issue asks for 60).
    #[arg(long, value_name = "SECONDS")]
    pub e2e_seconds: Option<u64>,
    /// End-to-end offered loads instead of the plan's (e.g. `1000`, to
    /// profile one).
    #[arg(long, value_delimiter = ',', value_name = "PER_SECOND")]
    pub e2e_rates: Vec<f64>,
    /// End-to-end Kubernetes latencies instead of the plan's (`0,50`).
    #[arg(long, value_delimiter = ',', value_name = "MILLISECONDS")]
    pub e2e_kube_ms: Vec<u64>,
    /// An environment variable for the gateway and worker processes, as
    /// KEY=VALUE (repeatable): for experiments such as
    /// `TOKIO_WORKER_THREADS=1` or `RUST_LOG=warn`.
    #[arg(long = "child-env", value_name = "KEY=VALUE")]
    pub child_env: Vec<String>,
    /// GOMAXPROCS of the nats-server that runs beside the whole system (end
    /// to end, scaling, replay); 0 leaves Go's default of one per core. The
    /// ceiling's and intake's servers always run with Go's default.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub nats_gomaxprocs: usize,
    /// Only these scenarios (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "SCENARIO")]
    pub only: Vec<Scenario>,
    /// Use the binaries beside the bench as they are, without `cargo build`.
    #[arg(long)]
    pub no_build: bool,
    /// Keep the processes' logs (printed at the end) even when all went well.
    #[arg(long)]
    pub keep_logs: bool,
}

/// Loads and durations of one run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Plan {
    pub smoke: bool,
    pub ceiling_in_flight: Vec<usize>,
    pub warmup: Duration,
    /// The measuring window of the scaling runs.
    pub window: Duration,
    /// Throughput (the ceiling, intake's connections) is measured over this
    /// many consecutive windows of `rate_window`, and the median is reported.
    pub rate_windows: usize,
    pub rate_window: Duration,
    pub intake_connections: Vec<usize>,
    pub intake_rates: Vec<f64>,
    pub intake_open_seconds: f64,
    pub e2e_rates: Vec<f64>,
    pub e2e_kube_latency: Vec<Duration>,
    pub e2e_seconds: f64,
    pub e2e_workers: usize,
    pub e2e_concurrency: usize,
    pub deployments: usize,
    pub scaling_workers: Vec<usize>,
    pub scaling_in_flight: Vec<usize>,
    pub scaling_latency: Duration,
    pub replay_commands: usize,
    pub replay_deployments: usize,
    pub scenarios: Vec<Scenario>,
}

impl Plan {
    pub fn from_args(args: &Args) -> Self {
        let scenarios = if args.only.is_empty() {
            vec![
                Scenario::Ceiling,
                Scenario::Intake,
                Scenario::E2e,
                Scenario::Scaling,
                Scenario::Replay,
            ]
        } else {
            let mut s = args.only.clone();
            s.sort();
            s.dedup();
            s
        };
        let mut plan = Self::defaults(args, scenarios);
        if !args.e2e_rates.is_empty() {
            plan.e2e_rates.clone_from(&args.e2e_rates);
        }
        if !args.e2e_kube_ms.is_empty() {
            plan.e2e_kube_latency = args
                .e2e_kube_ms
                .iter()
                .map(|ms| Duration::from_millis(*ms))
                .collect();
        }
        plan
    }

    fn defaults(args: &Args, scenarios: Vec<Scenario>) -> Self {
        if args.smoke {
            return Self {
                smoke: true,
                ceiling_in_flight: vec![1, 16],
                warmup: Duration::from_millis(200),
                window: Duration::from_millis(500),
                rate_windows: 1,
                rate_window: Duration::from_millis(500),
                intake_connections: vec![16],
                intake_rates: vec![200.0],
                intake_open_seconds: 1.0,
                e2e_rates: vec![50.0],
                e2e_kube_latency: vec![Duration::ZERO],
                e2e_seconds: args.e2e_seconds.map_or(2.0, |s| s as f64),
                e2e_workers: 2,
                e2e_concurrency: 8,
                deployments: 20,
                scaling_workers: vec![1, 2],
                scaling_in_flight: vec![4],
                scaling_latency: Duration::from_millis(50),
                replay_commands: 200,
                replay_deployments: 10,
                scenarios,
            };
        }
        Self {
            smoke: false,
            ceiling_in_flight: vec![1, 16, 32, 64, 256],
            warmup: Duration::from_secs(1),
            window: Duration::from_secs(5),
            rate_windows: 3,
            rate_window: Duration::from_secs(2),
            intake_connections: vec![16, 64, 256],
            intake_rates: vec![500.0, 2000.0, 5000.0],
            intake_open_seconds: 10.0,
            e2e_rates: vec![50.0, 200.0, 1000.0],
            e2e_kube_latency: vec![Duration::ZERO, Duration::from_millis(50)],
            e2e_seconds: args.e2e_seconds.map_or(60.0, |s| s as f64),
            e2e_workers: 2,
            e2e_concurrency: 64,
            deployments: 1000,
            scaling_workers: vec![1, 2, 4],
            scaling_in_flight: vec![1, 8, 32],
            scaling_latency: Duration::from_millis(50),
            replay_commands: 10_000,
            replay_deployments: 100,
            scenarios,
        }
    }

    pub fn runs(&self, s: Scenario) -> bool {
        self.scenarios.contains(&s)
    }

    /// Whether the ceiling at `n` in flight is measured by intake, just
    /// before its point at `n` connections, rather than on its own.
    pub fn ceiling_beside_intake(&self, n: usize) -> bool {
        self.runs(Scenario::Ceiling)
            && self.runs(Scenario::Intake)
            && self.ceiling_in_flight.contains(&n)
            && self.intake_connections.contains(&n)
    }
}

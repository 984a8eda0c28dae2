//! The worker's Prometheus metrics, served at `GET /metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub kind: &'static str,
    pub outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub error: &'static str,
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub results: Family<ResultLabels, Counter>,
    pub retries: Family<ErrorLabels, Counter>,
    pub apply_seconds: Histogram,
    pub in_flight: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("chatops_worker");
        let results = Family::<ResultLabels, Counter>::default();
        let retries = Family::<ErrorLabels, Counter>::default();
        let apply_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        let in_flight = Gauge::default();
        registry.register(
            "results",
            "Commands finished, by kind and outcome",
            results.clone(),
        );
        registry.register(
            "retries",
            "Apply attempts retried, by error kind",
            retries.clone(),
        );
        registry.register(
            "apply_seconds",
            "Time to apply one command, retries included",
            apply_seconds.clone(),
        );
        registry.register("in_flight", "Commands being applied now", in_flight.clone());
        Self {
            registry,
            results,
            retries,
            apply_seconds,
            in_flight,
        }
    }
}

impl Metrics {
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

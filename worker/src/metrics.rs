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

/// The error label of a retry: the only kind retried.
pub const TRANSIENT: &str = "transient";

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
        // Shown at 0 from the start: a family without a series is left out,
        // and a dashboard or alert would find no `retries` until the first.
        let _ = retries.get_or_create(&ErrorLabels { error: TRANSIENT });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_series_is_there_before_anything_happened() {
        let text = Metrics::default().render();
        for line in [
            "chatops_worker_retries_total{error=\"transient\"} 0",
            "chatops_worker_in_flight 0",
            "chatops_worker_apply_seconds_count 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in:\n{text}");
        }
    }
}

//! The gateway's Prometheus metrics, served at `GET /metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    pub outcome: &'static str,
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    webhooks: Family<Outcome, Counter>,
    events: Family<Outcome, Counter>,
    commands_published: Counter,
    replies: Family<Outcome, Counter>,
    intake_seconds: Histogram,
    end_to_end_seconds: Histogram,
    catch_up_passes: Family<Outcome, Counter>,
    catch_up_queued: Counter,
    commands_unclaimed: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("chatops_gateway");
        let webhooks = Family::<Outcome, Counter>::default();
        let events = Family::<Outcome, Counter>::default();
        let commands_published = Counter::default();
        let replies = Family::<Outcome, Counter>::default();
        // 100 µs .. ~3 s
        let intake_seconds = Histogram::new(exponential_buckets(0.0001, 2.0, 16));
        // 1 ms .. ~30 s
        let end_to_end_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        registry.register("webhooks", "Webhook requests by outcome", webhooks.clone());
        registry.register(
            "events",
            "Webhook events ingested, by outcome",
            events.clone(),
        );
        registry.register(
            "commands_published",
            "Commands published to the stream",
            commands_published.clone(),
        );
        registry.register(
            "replies",
            "Replies posted to Webex, by outcome",
            replies.clone(),
        );
        registry.register(
            "intake_seconds",
            "Time to verify and queue a webhook",
            intake_seconds.clone(),
        );
        registry.register(
            "end_to_end_seconds",
            "From the command's issue to its final reply being accepted by Webex",
            end_to_end_seconds.clone(),
        );
        let catch_up_passes = Family::<Outcome, Counter>::default();
        let catch_up_queued = Counter::default();
        registry.register(
            "catch_up_passes",
            "Looks for messages whose webhooks never arrived, by outcome",
            catch_up_passes.clone(),
        );
        registry.register(
            "catch_up_queued",
            "Messages queued by catch-up: their webhooks never arrived",
            catch_up_queued.clone(),
        );
        let commands_unclaimed = Counter::default();
        registry.register(
            "commands_unclaimed",
            "Commands no worker took within a while of being queued (their senders were told)",
            commands_unclaimed.clone(),
        );
        Self {
            registry,
            webhooks,
            events,
            commands_published,
            replies,
            intake_seconds,
            end_to_end_seconds,
            catch_up_passes,
            catch_up_queued,
            commands_unclaimed,
        }
    }
}

impl Metrics {
    /// A webhook request ended; its time counts where it was taken
    /// (queued, a duplicate, or ignored), not where it was refused (a body
    /// that never came would count its whole deadline).
    pub fn webhook(&self, outcome: &'static str, seconds: f64) {
        self.webhooks.get_or_create(&Outcome { outcome }).inc();
        if matches!(outcome, "queued" | "duplicate" | "ignored") {
            self.intake_seconds.observe(seconds);
        }
    }

    pub fn event(&self, outcome: &'static str) {
        self.events.get_or_create(&Outcome { outcome }).inc();
    }

    pub fn command_published(&self) {
        self.commands_published.inc();
    }

    pub fn command_unclaimed(&self) {
        self.commands_unclaimed.inc();
    }

    pub fn reply(&self, outcome: &'static str) {
        self.replies.get_or_create(&Outcome { outcome }).inc();
    }

    pub fn end_to_end(&self, seconds: f64) {
        self.end_to_end_seconds.observe(seconds);
    }

    /// A catch-up pass ended (`done` or `failed`), having queued `queued`.
    pub fn catch_up(&self, outcome: &'static str, queued: usize) {
        self.catch_up_passes
            .get_or_create(&Outcome { outcome })
            .inc();
        self.catch_up_queued.inc_by(queued as u64);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

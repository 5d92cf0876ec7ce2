//! Prometheus metrics (`/metrics`): tags synced and failed, bytes copied,
//! reconcile durations, and registry requests and 429s (counted through the
//! transports' [`RequestObserver`]). Labels never carry user data beyond the
//! registry host and the resource kind.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::image::RequestObserver;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub kind: String,
    /// `ok`, `tags_failed`, `spec`, `rate_limited`, `transient`.
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub host: String,
    pub method: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HostLabels {
    pub host: String,
}

type HistogramFamily = Family<KindLabels, Histogram, fn() -> Histogram>;

/// Every metric the controller exports.
pub struct Metrics {
    registry: Registry,
    pub tags_synced: Counter,
    pub tags_failed: Counter,
    pub bytes_copied: Counter,
    pub reconciles: Family<ResultLabels, Counter>,
    pub reconcile_duration: HistogramFamily,
    pub registry_requests: Family<RequestLabels, Counter>,
    pub registry_throttled: Family<HostLabels, Counter>,
    /// Reconciles that panicked (caught: the object is marked Stalled).
    pub reconcile_panics: Family<KindLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("kubemirror");
        let tags_synced = Counter::default();
        registry.register(
            "tags_synced",
            "Tags copied to their destination or found up to date",
            tags_synced.clone(),
        );
        let tags_failed = Counter::default();
        registry.register("tags_failed", "Tag copies that failed", tags_failed.clone());
        let bytes_copied = Counter::default();
        registry.register(
            "copied_bytes",
            "Blob bytes written to destinations",
            bytes_copied.clone(),
        );
        let reconciles = Family::<ResultLabels, Counter>::default();
        registry.register(
            "reconciles",
            "Reconciles by kind and result",
            reconciles.clone(),
        );
        let reconcile_duration: HistogramFamily =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.01, 2.0, 16)));
        registry.register(
            "reconcile_duration_seconds",
            "Time spent in one reconcile",
            reconcile_duration.clone(),
        );
        let registry_requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "registry_requests",
            "HTTP requests to registries by host, method and status (0: no answer)",
            registry_requests.clone(),
        );
        let registry_throttled = Family::<HostLabels, Counter>::default();
        registry.register(
            "registry_throttled",
            "Registry answers with 429 Too Many Requests",
            registry_throttled.clone(),
        );
        let reconcile_panics = Family::<KindLabels, Counter>::default();
        registry.register(
            "reconcile_panics",
            "Reconciles that panicked (a bug): the object was marked Stalled, the process kept serving",
            reconcile_panics.clone(),
        );
        Metrics {
            registry,
            reconcile_panics,
            tags_synced,
            tags_failed,
            bytes_copied,
            reconciles,
            reconcile_duration,
            registry_requests,
            registry_throttled,
        }
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    pub fn reconciled(&self, kind: &str, result: &str, seconds: f64) {
        self.reconciles
            .get_or_create(&ResultLabels {
                kind: kind.into(),
                result: result.into(),
            })
            .inc();
        self.reconcile_duration
            .get_or_create(&KindLabels { kind: kind.into() })
            .observe(seconds);
    }
}

/// Counts registry requests into [`Metrics`].
pub struct MetricsObserver(pub Arc<Metrics>);

impl RequestObserver for MetricsObserver {
    fn request(&self, host: &str, method: &str, status: u16) {
        self.0
            .registry_requests
            .get_or_create(&RequestLabels {
                host: host.into(),
                method: method.into(),
                status: status.to_string(),
            })
            .inc();
        if status == 429 {
            self.0
                .registry_throttled
                .get_or_create(&HostLabels { host: host.into() })
                .inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_counters_and_requests() {
        let m = Arc::new(Metrics::new());
        m.tags_synced.inc_by(2);
        m.reconciled("ImageMirror", "ok", 0.2);
        MetricsObserver(m.clone()).request("reg:5000", "GET", 429);
        let text = m.encode();
        assert!(text.contains("kubemirror_tags_synced_total 2"), "{text}");
        assert!(
            text.contains("kubemirror_registry_throttled_total{host=\"reg:5000\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("kubemirror_reconcile_duration_seconds_bucket"),
            "{text}"
        );
    }
}

//! Prometheus metrics (`/metrics`): tags synced and failed, bytes copied,
//! reconcile durations, and registry requests and 429s (counted through the
//! transports' [`RequestObserver`]). Labels never carry user data beyond the
//! registry host and the resource kind; a `host` label is a registry some
//! object names (at most [`MAX_HOSTS`] of them), else `other`: a redirect
//! or token realm a registry sends cannot grow the label set.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
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
pub struct ShardLabels {
    /// `acquired`, `released` (handed to another replica, or at shutdown),
    /// `lost` (not renewed in time, or taken).
    pub event: String,
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
    /// Destination tags found changed by someone else (restored or kept).
    pub tags_drifted: Counter,
    /// Destination tags deleted by prune or by a deletion.
    pub tags_pruned: Counter,
    /// Shards this replica holds (sharded mode).
    pub shards_held: Gauge,
    /// Shard hand-overs seen by this replica, by event.
    pub shard_changes: Family<ShardLabels, Counter>,
    /// Registry hosts that objects name: the values a `host` label takes.
    hosts: Mutex<HashSet<String>>,
}

/// Distinct `host` label values at most (besides `other`).
pub const MAX_HOSTS: usize = 1000;

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
        let tags_drifted = Counter::default();
        registry.register(
            "tags_drifted",
            "Destination tags found changed by someone else since the mirror wrote them",
            tags_drifted.clone(),
        );
        let tags_pruned = Counter::default();
        registry.register(
            "tags_pruned",
            "Destination tags deleted by prune or by the deletion of a mirror",
            tags_pruned.clone(),
        );
        let shards_held = Gauge::default();
        registry.register(
            "shards_held",
            "Shards whose Lease this replica holds (with --shards)",
            shards_held.clone(),
        );
        let shard_changes = Family::<ShardLabels, Counter>::default();
        registry.register(
            "shard_changes",
            "Shards acquired, released (rebalancing, shutdown) or lost (not renewed in time)",
            shard_changes.clone(),
        );
        Metrics {
            registry,
            reconcile_panics,
            tags_drifted,
            tags_pruned,
            shards_held,
            shard_changes,
            hosts: Mutex::new(HashSet::new()),
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

    /// An object names `repository` (a spec's repository or image): its
    /// registry's requests are counted under its own `host` label.
    pub fn name_repository(&self, repository: &str) {
        let Some(host) = registry_host(repository) else {
            return;
        };
        let mut hosts = self.hosts.lock().expect("not poisoned");
        if hosts.len() < MAX_HOSTS {
            hosts.insert(host);
        }
    }

    /// The `host` label for a request to `host`.
    pub fn host_label(&self, host: &str) -> String {
        if self.hosts.lock().expect("not poisoned").contains(host) {
            host.to_string()
        } else {
            "other".to_string()
        }
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

/// `host[:port]` requests for a docker `repository` go to (`None` for
/// local transports and what does not parse).
fn registry_host(repository: &str) -> Option<String> {
    let r = repository.trim();
    let local = ["oci:", "dir:", "docker-archive:", "oci-archive:"];
    if local.iter().any(|t| r.starts_with(t)) {
        return None;
    }
    let r = r.strip_prefix("docker://").unwrap_or(r);
    let parsed = crate::reference::parse(r).ok()?;
    Some(match parsed.registry() {
        crate::reference::DOCKER_HUB | "index.docker.io" => {
            crate::reference::DOCKER_HUB_ENDPOINT.to_string()
        }
        other => other.to_string(),
    })
}

impl RequestObserver for MetricsObserver {
    fn request(&self, host: &str, method: &str, status: u16) {
        let host = &self.0.host_label(host);
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
    fn host_labels_are_named_registries_else_other() {
        let m = Arc::new(Metrics::new());
        m.name_repository("docker://reg.example:5000/team/app");
        m.name_repository("alpine");
        m.name_repository("oci:/tmp/layout:v1");
        let o = MetricsObserver(m.clone());
        o.request("reg.example:5000", "GET", 200);
        o.request("registry-1.docker.io", "GET", 200);
        for i in 0..50 {
            o.request(&format!("redirect-{i}.attacker.example"), "GET", 200);
        }
        let text = m.encode();
        assert!(text.contains("host=\"reg.example:5000\""), "{text}");
        assert!(text.contains("host=\"registry-1.docker.io\""), "{text}");
        assert!(!text.contains("attacker"), "{text}");
        assert!(text.contains("host=\"other\""), "{text}");
    }

    #[test]
    fn encodes_counters_and_requests() {
        let m = Arc::new(Metrics::new());
        m.name_repository("reg:5000/a/b");
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

//! Publishing `events.k8s.io/v1` Events with a bounded memory.
//!
//! Written here rather than using `kube::runtime::events::Recorder`, whose
//! series cache keeps a whole Event per (object, reason) for six minutes
//! with no bound: with 10,000 objects each reporting `Synced` on a cold
//! start, that cache alone held thousands of Events (megabytes of a replica
//! that should stay under 64 MiB, issue 19), and scanned all of them on
//! every publish. This recorder does what that one does on the wire — a new
//! Event, or for the same (object, type, reason, action) within
//! [`SERIES_WINDOW`] a patch of the first one's `series` — and remembers at
//! most [`MAX_SERIES`] of them (the oldest forgotten first: a repeat of a
//! forgotten one starts a new Event, as after a restart).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event as K8sEvent, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Reporter};

/// Repeats within this window count into one Event's series (kube-rs' and
/// client-go's six minutes).
pub const SERIES_WINDOW: Duration = Duration::from_secs(6 * 60);
/// Event series remembered at most.
pub const MAX_SERIES: usize = 512;

/// What makes two Events the same series.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    namespace: Option<String>,
    name: Option<String>,
    uid: Option<String>,
    warning: bool,
    reason: String,
    action: String,
}

struct Series {
    event_name: String,
    count: i32,
    last: Instant,
}

/// Publishes Events as `reporter`; cheap to share behind an `Arc`.
pub struct Recorder {
    client: Client,
    reporter: Reporter,
    series: Mutex<HashMap<Key, Series>>,
}

impl Recorder {
    pub fn new(client: Client, reporter: Reporter) -> Recorder {
        Recorder {
            client,
            reporter,
            series: Mutex::new(HashMap::new()),
        }
    }

    /// Publish `ev` about `regarding`: a new Event, or a repeat counted into
    /// the series of the same one published within [`SERIES_WINDOW`].
    pub async fn publish(
        &self,
        ev: &Event,
        regarding: &ObjectReference,
    ) -> Result<(), kube::Error> {
        let key = Key {
            namespace: regarding.namespace.clone(),
            name: regarding.name.clone(),
            uid: regarding.uid.clone(),
            warning: matches!(ev.type_, EventType::Warning),
            reason: ev.reason.clone(),
            action: ev.action.clone(),
        };
        let ns = regarding.namespace.as_deref().unwrap_or("default");
        let events: Api<K8sEvent> = Api::namespaced(self.client.clone(), ns);
        let now = jiff::Timestamp::now();
        let repeat = self.repeat(&key);
        if let Some((name, count)) = repeat {
            let patch = serde_json::json!({
                "series": EventSeries { count, last_observed_time: MicroTime(now) },
            });
            events
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
            return Ok(());
        }
        let name = format!(
            "{}.{:x}",
            regarding
                .name
                .as_deref()
                .unwrap_or(&self.reporter.controller),
            now.as_nanosecond()
        );
        let event = K8sEvent {
            action: Some(ev.action.clone()),
            reason: Some(ev.reason.clone()),
            event_time: Some(MicroTime(now)),
            regarding: Some(regarding.clone()),
            note: ev.note.clone(),
            metadata: ObjectMeta {
                namespace: Some(ns.to_string()),
                name: Some(name.clone()),
                ..Default::default()
            },
            reporting_controller: Some(self.reporter.controller.clone()),
            reporting_instance: Some(
                self.reporter
                    .instance
                    .clone()
                    .unwrap_or_else(|| self.reporter.controller.clone()),
            ),
            type_: Some(if key.warning { "Warning" } else { "Normal" }.into()),
            related: ev.secondary.clone(),
            ..Default::default()
        };
        events.create(&PostParams::default(), &event).await?;
        self.remember(key, name);
        Ok(())
    }

    /// The Event `key` repeats and its new count, counted now; `None` for a
    /// new series.
    fn repeat(&self, key: &Key) -> Option<(String, i32)> {
        let mut series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        let s = series.get_mut(key)?;
        if s.last.elapsed() >= SERIES_WINDOW {
            series.remove(key);
            return None;
        }
        s.count = s.count.saturating_add(1);
        s.last = Instant::now();
        Some((s.event_name.clone(), s.count))
    }

    fn remember(&self, key: Key, event_name: String) {
        let mut series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        if series.len() >= MAX_SERIES {
            series.retain(|_, s| s.last.elapsed() < SERIES_WINDOW);
        }
        if series.len() >= MAX_SERIES
            && let Some(oldest) = series
                .iter()
                .min_by_key(|(_, s)| s.last)
                .map(|(k, _)| k.clone())
        {
            series.remove(&oldest);
        }
        series.insert(
            key,
            Series {
                event_name,
                count: 1,
                last: Instant::now(),
            },
        );
    }

    /// Series remembered now (for tests).
    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.series.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(name: &str) -> ObjectReference {
        ObjectReference {
            api_version: Some("kubemirror.dev/v1alpha1".into()),
            kind: Some("ImageMirror".into()),
            namespace: Some("default".into()),
            name: Some(name.into()),
            uid: Some(format!("uid-{name}")),
            ..Default::default()
        }
    }

    fn synced() -> Event {
        Event {
            type_: EventType::Normal,
            reason: "Synced".into(),
            note: Some("copied".into()),
            action: "Sync".into(),
            secondary: None,
        }
    }

    /// Against the API emulator: a repeat patches the first Event's series,
    /// and the memory of series stays bounded however many objects report.
    #[tokio::test]
    async fn repeats_form_a_series_and_the_memory_is_bounded() {
        let emu = kube_emulator::Emulator::start("127.0.0.1:0").await.unwrap();
        let client = Client::try_from(kube::Config::new(emu.url().parse().unwrap())).unwrap();
        let rec = Recorder::new(
            client.clone(),
            Reporter {
                controller: "kubemirror".into(),
                instance: Some("test".into()),
            },
        );
        rec.publish(&synced(), &reference("a")).await.unwrap();
        rec.publish(&synced(), &reference("a")).await.unwrap();
        rec.publish(&synced(), &reference("a")).await.unwrap();
        let events: Api<K8sEvent> = Api::namespaced(client, "default");
        let list = events.list(&Default::default()).await.unwrap().items;
        assert_eq!(list.len(), 1, "{list:?}");
        let e = &list[0];
        assert_eq!(e.series.as_ref().map(|s| s.count), Some(3));
        assert_eq!(e.reason.as_deref(), Some("Synced"));
        assert_eq!(e.reporting_instance.as_deref(), Some("test"));
        assert_eq!(
            e.regarding.as_ref().and_then(|r| r.name.as_deref()),
            Some("a")
        );

        for i in 0..MAX_SERIES + 10 {
            rec.remember(
                Key {
                    namespace: None,
                    name: Some(format!("o{i}")),
                    uid: None,
                    warning: false,
                    reason: "Synced".into(),
                    action: "Sync".into(),
                },
                format!("o{i}.1"),
            );
        }
        assert_eq!(rec.remembered(), MAX_SERIES);
    }
}

//! Watching only this replica's share, and labelling objects with their shard.
//!
//! [`sharded`] is a `watcher` with the label selector
//! `kubemirror.dev/shard in (held…)`, restarted whenever the held set
//! changes (the reflector replaces its store at the new list's end, so
//! objects of shards given up leave the cache). With no shard held nothing
//! is watched.
//!
//! [`label_unlabelled`] watches, by metadata only, the objects without a
//! valid shard label (`kubemirror.dev/shard notin (0,…,S-1)`: none in steady
//! state) and labels those whose hashed shard this replica holds. Only the
//! hash's holder labels, and the value is a function of the object's name,
//! so two replicas racing write the same value; the patch carries the
//! resourceVersion read, so a label set meanwhile is never overwritten.

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::sync::Arc;

use futures::stream::{self, BoxStream};
use futures::{Stream, StreamExt};
use kube::api::{Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{SHARD_LABEL, Shards, selector_for, shard_of, unlabelled_selector};

/// Patches of shard labels in flight at once.
const LABEL_CONCURRENCY: usize = 8;
/// Tries of one label patch.
const LABEL_ATTEMPTS: u8 = 5;

/// Watch events of the objects of the shards held, as they change.
pub fn sharded<K>(
    api: Api<K>,
    shards: &Shards,
) -> impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + use<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    switch_on(shards.subscribe(), move |held| {
        if held.is_empty() {
            return stream::pending().boxed();
        }
        watcher(
            api.clone(),
            watcher::Config::default().labels(&selector_for(held)),
        )
        .default_backoff()
        .boxed()
    })
}

/// The stream `make(held)` for the current held set, replaced by a new one
/// each time the set changes.
fn switch_on<T, F>(rx: watch::Receiver<BTreeSet<u32>>, make: F) -> impl Stream<Item = T> + Send
where
    T: Send + 'static,
    F: FnMut(&BTreeSet<u32>) -> BoxStream<'static, T> + Send + 'static,
{
    stream::unfold(
        (rx, make, None::<BoxStream<'static, T>>),
        |(mut rx, mut make, mut inner)| async move {
            loop {
                let current = match inner.as_mut() {
                    Some(s) => s,
                    None => {
                        let held = rx.borrow_and_update().clone();
                        inner.insert(make(&held))
                    }
                };
                tokio::select! {
                    changed = rx.changed() => {
                        changed.ok()?;
                        inner = None;
                    }
                    item = current.next() => match item {
                        Some(item) => return Some((item, (rx, make, inner))),
                        // A watch does not end by itself; wait for a change.
                        None => {
                            rx.changed().await.ok()?;
                            inner = None;
                        }
                    },
                }
            }
        },
    )
}

/// Label every object of `api` that has no valid shard label and whose
/// hashed shard this replica holds; until `shutdown`.
pub async fn label_unlabelled<K>(
    api: Api<PartialObjectMeta<K>>,
    client: Client,
    shards: Arc<Shards>,
    field_manager: &'static str,
    shutdown: CancellationToken,
) where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static,
{
    let total = shards.shards;
    let selector = unlabelled_selector(total);
    let events = switch_on(shards.subscribe(), move |held| {
        if held.is_empty() {
            return stream::pending().boxed();
        }
        watcher(api.clone(), watcher::Config::default().labels(&selector))
            .default_backoff()
            .boxed()
    })
    .touched_objects()
    .take_until(shutdown.cancelled_owned());
    events
        .for_each_concurrent(LABEL_CONCURRENCY, |obj| {
            let (client, shards) = (client.clone(), shards.clone());
            async move {
                let Ok(obj) = obj else { return };
                let (Some(ns), name) = (obj.namespace(), obj.name_any()) else {
                    return;
                };
                let shard = shard_of(&ns, &name, total);
                if !shards.is_held(shard) {
                    return;
                }
                let api: Api<K> = Api::namespaced(client, &ns);
                let patch = serde_json::json!({
                    "metadata": {
                        "resourceVersion": obj.resource_version(),
                        "labels": {SHARD_LABEL: shard.to_string()},
                    }
                });
                let pp = PatchParams {
                    field_manager: Some(field_manager.into()),
                    ..Default::default()
                };
                // A transient failure is retried (the watch sends the object
                // again only when it changes).
                for attempt in 1..=LABEL_ATTEMPTS {
                    match api.patch(&name, &pp, &Patch::Merge(&patch)).await {
                        Ok(_) => {
                            tracing::debug!(namespace = %ns, %name, shard, "labelled with its shard");
                            return;
                        }
                        // Changed or gone meanwhile: the watch brings it back if it still needs a label.
                        Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => return,
                        Err(e) => {
                            tracing::warn!(namespace = %ns, %name, error = %e, attempt, "labelling with its shard");
                            tokio::time::sleep(std::time::Duration::from_secs(attempt.into())).await;
                        }
                    }
                }
            }
        })
        .await;
}

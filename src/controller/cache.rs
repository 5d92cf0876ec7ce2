//! What the controller keeps of each watched object, and how little.
//!
//! Memory per object is the controller's scaling limit (issue 19: ≤ 64 MiB
//! per replica with 10,000 objects), and most of it is the reflector's copy
//! of each object. So, before an object enters the store:
//!
//! - [`slim`] drops `metadata.managedFields` (the API server's record of
//!   who owns which field: a JSON tree per manager, larger than the spec and
//!   status together, which no reconcile reads — status is written by
//!   server-side apply, which does not need it) and the
//!   `kubectl.kubernetes.io/last-applied-configuration` annotation (a second
//!   copy of the spec as a string, from `kubectl apply`);
//! - [`applied_after_init`] remembers a (re-)list's objects by reference,
//!   not by value, until the list ends: the reflector already buffers the
//!   list, and a second buffer of whole objects doubled the peak.
//!
//! The store then holds spec, status and the rest of the metadata: what
//! reconciles, the predicate and the Secret mapper read.

use futures::stream::{self, BoxStream};
use futures::{Stream, StreamExt};
use kube::Resource;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;

/// The annotation `kubectl apply` keeps its last input in.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Drop what no reconcile reads from an object before it is cached
/// (see the module docs). Idempotent; leaves every other field alone.
pub fn slim<K: Resource>(obj: &mut K) {
    let meta = obj.meta_mut();
    meta.managed_fields = None;
    if let Some(a) = meta.annotations.as_mut() {
        a.remove(LAST_APPLIED);
        if a.is_empty() {
            meta.annotations = None;
        }
    }
}

/// The objects a watch applies, as `applied_objects()`, except that a
/// (re-)list's objects come out only once the list is complete: the
/// reflector swaps its store in at the list's end, and the controller looks
/// each triggered object up in that store, so an object triggered earlier —
/// one of a shard just taken, while the watch restarts with the new
/// selector — would not be found and its reconcile would be lost.
///
/// `events` must already be reflected into the store `store` reads (its
/// `reflect` applies each event before passing it on). The listed objects
/// are kept as references and read back from `store` as they come out, one
/// at a time: an object deleted meanwhile is skipped, one changed comes out
/// as it is now.
pub fn applied_after_init<K, S>(
    events: S,
    store: Store<K>,
) -> impl Stream<Item = Result<K, watcher::Error>>
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>>,
{
    let mut listed: Vec<ObjectRef<K>> = Vec::new();
    events.flat_map(move |e| match e {
        Ok(watcher::Event::Apply(o)) => one(Ok(o)),
        Ok(watcher::Event::Init) => {
            listed = Vec::new();
            none()
        }
        Ok(watcher::Event::InitApply(o)) => {
            listed.push(ObjectRef::from_obj(&o));
            none()
        }
        Ok(watcher::Event::InitDone) => {
            let store = store.clone();
            stream::iter(std::mem::take(&mut listed))
                .filter_map(move |r| {
                    let o = store.get(&r).map(|o| Ok(K::clone(&o)));
                    futures::future::ready(o)
                })
                .boxed()
        }
        Ok(watcher::Event::Delete(_)) => none(),
        Err(e) => one(Err(e)),
    })
}

fn one<T: Send + 'static>(t: T) -> BoxStream<'static, T> {
    stream::iter([t]).boxed()
}

fn none<T: Send + 'static>() -> BoxStream<'static, T> {
    stream::empty().boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;
    use kube::runtime::{WatchStreamExt, reflector};

    fn cm(name: &str, rv: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                resource_version: Some(rv.into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn slim_drops_managed_fields_and_last_applied_only() {
        let mut o: ConfigMap = serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": "a", "namespace": "ns",
                "labels": {"kubemirror.dev/shard": "3"},
                "annotations": {LAST_APPLIED: "{\"big\":1}", "keep": "me"},
                "managedFields": [{"manager": "kubectl", "operation": "Apply",
                                   "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {}}}],
            },
            "data": {"k": "v"},
        }))
        .unwrap();
        slim(&mut o);
        let m = &o.metadata;
        assert_eq!(m.managed_fields, None);
        let a = m.annotations.as_ref().unwrap();
        assert_eq!(
            (a.len(), a.get("keep").map(String::as_str)),
            (1, Some("me"))
        );
        assert_eq!(m.labels.as_ref().unwrap().len(), 1);
        assert_eq!(
            o.data.as_ref().unwrap().get("k").map(String::as_str),
            Some("v")
        );

        let mut only: ConfigMap = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "b", "annotations": {LAST_APPLIED: "{}"}},
        }))
        .unwrap();
        slim(&mut only);
        assert_eq!(only.metadata.annotations, None, "no empty map left behind");
    }

    #[tokio::test]
    async fn a_list_comes_out_at_its_end_as_the_store_holds_it() {
        let (store, writer) = reflector::store::<ConfigMap>();
        let events = futures::stream::iter(vec![
            Ok(watcher::Event::Init),
            Ok(watcher::Event::InitApply(cm("a", "1"))),
            Ok(watcher::Event::InitApply(cm("b", "1"))),
            Ok(watcher::Event::InitDone),
            Ok(watcher::Event::Apply(cm("a", "2"))),
            Ok(watcher::Event::Delete(cm("b", "1"))),
            // A re-list: its objects come out at its end, as listed.
            Ok(watcher::Event::Init),
            Ok(watcher::Event::InitApply(cm("a", "3"))),
            Ok(watcher::Event::InitApply(cm("c", "1"))),
            Ok(watcher::Event::InitDone),
        ])
        .reflect(writer);
        let out: Vec<String> = applied_after_init(events, store.clone())
            .map(|o| {
                let o = o.unwrap();
                format!(
                    "{}@{}",
                    o.metadata.name.unwrap(),
                    o.metadata.resource_version.unwrap()
                )
            })
            .collect()
            .await;
        assert_eq!(out, ["a@1", "b@1", "a@2", "a@3", "c@1"]);
        assert_eq!(store.state().len(), 2);
    }
}

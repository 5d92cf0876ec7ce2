//! Defence in depth against a bug: a panic inside one reconcile is caught
//! (kube-runtime would re-raise it and take the whole process down, again
//! after every restart), counted in `kubemirror_reconcile_panics_total`, and
//! the object is marked `Stalled` with reason `InternalError` and a message
//! naming the object and the panic. Every other object keeps being served;
//! the object waits for a change to its spec.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;
use kube::Api;
use kube::runtime::controller::Action;
use tracing::Instrument;

use super::{Context, Error, ObjectStatus, now, object_key, write_status};
use crate::api::v1alpha1::{
    CONDITION_READY, CONDITION_RECONCILING, CONDITION_STALLED, ImageInspection, ImageMirror,
};
use crate::reconcile::status;

/// The condition reason of a reconcile that panicked.
pub const INTERNAL_ERROR: &str = "InternalError";

/// A kind whose status the guard can mark.
pub trait Guarded:
    kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
    + Clone
    + serde::de::DeserializeOwned
    + std::fmt::Debug
{
    type Status: ObjectStatus;
    fn current_status(&self) -> Option<Self::Status>;
}

impl Guarded for ImageMirror {
    type Status = crate::api::v1alpha1::ImageMirrorStatus;
    fn current_status(&self) -> Option<Self::Status> {
        self.status.clone()
    }
}

impl Guarded for ImageInspection {
    type Status = crate::api::v1alpha1::ImageInspectionStatus;
    fn current_status(&self) -> Option<Self::Status> {
        self.status.clone()
    }
}

/// Run `reconcile(obj, ctx)`; a panic becomes a `Stalled` object and a
/// metric instead of a dead process.
pub async fn guarded<K, F, Fut>(
    obj: Arc<K>,
    ctx: Arc<Context>,
    reconcile: F,
) -> Result<Action, Error>
where
    K: Guarded,
    F: FnOnce(Arc<K>, Arc<Context>) -> Fut,
    Fut: Future<Output = Result<Action, Error>>,
{
    let span = crate::reconcile::span(
        &K::kind(&()),
        obj.meta().namespace.as_deref().unwrap_or_default(),
        obj.meta().name.as_deref().unwrap_or_default(),
    );
    let run = AssertUnwindSafe(reconcile(obj.clone(), ctx.clone()).instrument(span)).catch_unwind();
    let payload = match run.await {
        Ok(result) => return result,
        Err(payload) => payload,
    };
    let key = object_key(obj.as_ref());
    let what = panic_message(payload.as_ref());
    ctx.metrics
        .reconcile_panics
        .get_or_create(&super::metrics::KindLabels {
            kind: K::kind(&()).into_owned(),
        })
        .inc();
    tracing::error!(object = %key, panic = %what, "reconcile panicked: marked Stalled");
    let message = format!(
        "internal error reconciling {key}: {what} (a bug in kubemirror: please report it; the object waits for a change to its spec)"
    );
    mark_stalled(obj.as_ref(), &ctx, &message).await?;
    Ok(Action::await_change())
}

/// The text of a panic payload (`&str` or `String`), bounded.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let s = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic with a non-text payload".into());
    crate::reconcile::status::sanitise(&s, 300)
}

async fn mark_stalled<K: Guarded>(obj: &K, ctx: &Context, message: &str) -> Result<(), Error> {
    let Some(ns) = obj.meta().namespace.clone() else {
        return Err(Error::NoNamespace(object_key(obj)));
    };
    let name = obj.meta().name.clone().unwrap_or_default();
    let generation = obj.meta().generation;
    let mut st = obj.current_status().unwrap_or_default();
    let t = now();
    let c = st.conditions_mut();
    for type_ in [CONDITION_READY, CONDITION_STALLED] {
        let value = if type_ == CONDITION_READY {
            "False"
        } else {
            "True"
        };
        status::set_condition(c, type_, value, INTERNAL_ERROR, message, generation, &t);
    }
    status::remove_condition(c, CONDITION_RECONCILING);
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &ns);
    write_status(&api, &name, &st).await
}

#[cfg(test)]
mod tests {
    use super::super::recorder::Recorder;
    use super::*;
    use kube::api::PostParams;
    use kube::runtime::events::Reporter;

    fn buggy() -> Result<Action, Error> {
        panic!("injected bug in a reconcile")
    }

    /// Against the API emulator: the panic becomes a Stalled object and a
    /// metric, and the next reconcile (another object) runs as usual.
    #[tokio::test]
    async fn a_panicking_reconcile_marks_the_object_stalled_and_counts_it() {
        let emu = kube_emulator::Emulator::start("127.0.0.1:0").await.unwrap();
        let client = kube::Client::try_from(kube::Config::new(emu.url().parse().unwrap())).unwrap();
        let crds: Api<
            k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
        > = Api::all(client.clone());
        for crd in crate::api::v1alpha1::crds() {
            crds.create(&PostParams::default(), &crd).await.unwrap();
        }
        let mirrors: Api<ImageMirror> = Api::namespaced(client.clone(), "default");
        let obj: ImageMirror = serde_json::from_value(serde_json::json!({
            "apiVersion": "kubemirror.dev/v1alpha1", "kind": "ImageMirror",
            "metadata": {"name": "buggy", "namespace": "default"},
            "spec": {"source": {"repository": "reg.example/a"},
                     "destination": {"repository": "reg.example/b"},
                     "tags": {"names": ["v1"]}},
        }))
        .unwrap();
        let obj = mirrors.create(&PostParams::default(), &obj).await.unwrap();
        let metrics = Arc::new(super::super::Metrics::new());
        let reporter = Reporter {
            controller: "kubemirror".into(),
            instance: None,
        };
        let ctx = Arc::new(Context::new(
            client.clone(),
            Recorder::new(client.clone(), reporter),
            metrics.clone(),
            Default::default(),
        ));

        let action = guarded(Arc::new(obj.clone()), ctx.clone(), |_, _| async { buggy() })
            .await
            .unwrap();
        assert_eq!(action, Action::await_change());
        let st = mirrors.get("buggy").await.unwrap().status.unwrap();
        let stalled = status::condition(&st.conditions, CONDITION_STALLED).unwrap();
        assert_eq!(
            (stalled.status.as_str(), stalled.reason.as_str()),
            ("True", INTERNAL_ERROR)
        );
        assert!(
            stalled.message.contains("ImageMirror/default/buggy")
                && stalled.message.contains("injected bug in a reconcile"),
            "{}",
            stalled.message
        );
        let ready = status::condition(&st.conditions, CONDITION_READY).unwrap();
        assert_eq!(ready.status, "False");
        let text = metrics.encode();
        assert!(
            text.contains("kubemirror_reconcile_panics_total{kind=\"ImageMirror\"} 1"),
            "{text}"
        );
        // The process goes on: the next reconcile runs and returns its result.
        let after = guarded(Arc::new(obj), ctx, |_, _| async {
            Ok(Action::requeue(std::time::Duration::from_secs(7)))
        })
        .await
        .unwrap();
        assert_eq!(after, Action::requeue(std::time::Duration::from_secs(7)));
    }

    #[test]
    fn panic_payloads_become_short_text() {
        let p = std::panic::catch_unwind(|| panic!("boom {}", 7)).unwrap_err();
        assert_eq!(panic_message(p.as_ref()), "boom 7");
        let p = std::panic::catch_unwind(|| std::panic::panic_any(3u8)).unwrap_err();
        assert_eq!(panic_message(p.as_ref()), "panic with a non-text payload");
    }
}

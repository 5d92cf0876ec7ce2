//! A real kube-runtime `Controller` against the emulator: it owns a
//! ConfigMap per Widget and applies status; no-op writes must not wake it
//! up again, and deleting the Widget collects the ConfigMap.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Env, eventually};
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{CustomResource, Resource, ResourceExt};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, schemars::JsonSchema)]
#[kube(
    group = "example.com",
    version = "v1",
    kind = "Widget",
    namespaced,
    status = "WidgetStatus"
)]
pub struct WidgetSpec {
    pub size: i64,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WidgetStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

struct Ctx {
    client: kube::Client,
    reconciles: AtomicUsize,
}

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct Error(#[from] kube::Error);

async fn reconcile(w: Arc<Widget>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    ctx.reconciles.fetch_add(1, Ordering::SeqCst);
    let ns = w.namespace().unwrap();
    let owner = w.controller_owner_ref(&()).unwrap();
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": w.name_any(), "ownerReferences": [owner]},
        "data": {"size": w.spec.size.to_string()}});
    let cms: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ns);
    cms.patch(
        &w.name_any(),
        &PatchParams::apply("widget-controller").force(),
        &Patch::Apply(cm),
    )
    .await?;
    let status = json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "status": {"phase": "Ready", "observedGeneration": w.metadata.generation}});
    let widgets: Api<Widget> = Api::namespaced(ctx.client.clone(), &ns);
    widgets
        .patch_status(
            &w.name_any(),
            &PatchParams::apply("widget-controller").force(),
            &Patch::Apply(status),
        )
        .await?;
    Ok(Action::await_change())
}

fn error_policy(_: Arc<Widget>, _: &Error, _: Arc<Ctx>) -> Action {
    Action::requeue(Duration::from_millis(200))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_settles_and_owned_objects_are_collected() {
    let env = Env::start().await;
    env.install_widget_crd().await;
    let client = env.client();
    let widgets: Api<Widget> = Api::namespaced(client.clone(), "default");
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        reconciles: AtomicUsize::new(0),
    });
    let controller = Controller::new(widgets.clone(), watcher::Config::default())
        .owns(cms.clone(), watcher::Config::default())
        .run(reconcile, error_policy, ctx.clone())
        .for_each(|_| async {});
    let task = tokio::spawn(controller);

    widgets
        .create(
            &PostParams::default(),
            &Widget::new("w", WidgetSpec { size: 2 }),
        )
        .await
        .unwrap();
    eventually(10, "status Ready for generation 1", || async {
        let w = widgets.get("w").await.unwrap();
        let s = w.status?;
        (s.phase.as_deref() == Some("Ready") && s.observed_generation == Some(1)).then_some(())
    })
    .await;
    assert_eq!(cms.get("w").await.unwrap().data.unwrap()["size"], "2");

    // Settled: the controller's own no-op applies must not trigger more reconciles.
    let settled_rv = widgets.get("w").await.unwrap().resource_version();
    let count = ctx.reconciles.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        ctx.reconciles.load(Ordering::SeqCst) <= count + 2,
        "controller keeps reconciling"
    );
    assert_eq!(
        widgets.get("w").await.unwrap().resource_version(),
        settled_rv
    );

    // A spec change flows through.
    widgets
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 5}})),
        )
        .await
        .unwrap();
    eventually(10, "ConfigMap updated", || async {
        (cms.get("w").await.unwrap().data.unwrap()["size"] == "5").then_some(())
    })
    .await;
    eventually(10, "observedGeneration 2", || async {
        (widgets.get("w").await.unwrap().status?.observed_generation == Some(2)).then_some(())
    })
    .await;

    // Deleting the owner collects the ConfigMap.
    widgets.delete("w", &DeleteParams::default()).await.unwrap();
    eventually(10, "ConfigMap collected", || async {
        cms.get_opt("w").await.unwrap().is_none().then_some(())
    })
    .await;
    task.abort();
    env.emu.shutdown().await;
}

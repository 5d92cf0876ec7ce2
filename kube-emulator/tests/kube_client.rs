//! kube-rs 5 against the emulator: CRUD, patches, server-side apply,
//! status, finalizers, discovery, CRD variants, hooks.

mod common;

use std::time::Duration;

use common::{Env, code, eventually, message, update_by};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{CustomResource, ResourceExt};
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, schemars::JsonSchema)]
pub struct WidgetStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
}

fn widget(name: &str, size: i64) -> Widget {
    Widget::new(name, WidgetSpec { size, color: None })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crud_generation_status_and_conflicts() {
    let env = Env::start().await;
    env.install_widget_crd().await;
    let api: Api<Widget> = Api::namespaced(env.client(), "default");

    let mut w = widget("a", 1);
    w.status = Some(WidgetStatus {
        phase: Some("ignored".into()),
    });
    let created = api.create(&PostParams::default(), &w).await.unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    assert!(
        created.status.is_none(),
        "create drops status with the status subresource"
    );
    assert_eq!(
        created.spec.color.as_deref(),
        Some("red"),
        "schema default applied"
    );
    assert!(created.uid().is_some());

    // Duplicate create.
    let err = api.create(&PostParams::default(), &w).await.unwrap_err();
    assert_eq!(code(&err), 409);
    assert_eq!(message(&err), "widgets.example.com \"a\" already exists");

    // Merge patch on spec bumps generation; on status it does not.
    let p = api
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 2}})),
        )
        .await
        .unwrap();
    assert_eq!(p.metadata.generation, Some(2));
    let s = api
        .patch_status(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Ready"}})),
        )
        .await
        .unwrap();
    assert_eq!(s.metadata.generation, Some(2));
    assert_eq!(s.status.as_ref().unwrap().phase.as_deref(), Some("Ready"));
    // Status in a main-resource write is ignored.
    let p = api
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"status": {"phase": "Other"}, "metadata": {"labels": {"x": "y"}}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(p.status.as_ref().unwrap().phase.as_deref(), Some("Ready"));
    assert_eq!(
        p.metadata.generation,
        Some(2),
        "metadata changes keep generation"
    );

    // No-op writes keep the resourceVersion.
    let rv = p.resource_version();
    let again = api
        .patch_status(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Ready"}})),
        )
        .await
        .unwrap();
    assert_eq!(again.resource_version(), rv);

    // Replace with a stale resourceVersion.
    let mut stale = created.clone();
    stale.spec.size = 9;
    let err = api
        .replace("a", &PostParams::default(), &stale)
        .await
        .unwrap_err();
    assert_eq!(code(&err), 409);
    assert_eq!(
        message(&err),
        "Operation cannot be fulfilled on widgets.example.com \"a\": the object has been modified; please apply your changes to the latest version and try again"
    );
    let mut fresh = api.get("a").await.unwrap();
    fresh.spec.size = 9;
    let replaced = api
        .replace("a", &PostParams::default(), &fresh)
        .await
        .unwrap();
    assert_eq!(replaced.spec.size, 9);
    assert_eq!(replaced.metadata.generation, Some(3));

    // Validation.
    let err = api
        .create(&PostParams::default(), &widget("neg", -1))
        .await
        .unwrap_err();
    assert_eq!(code(&err), 422);
    assert_eq!(
        message(&err),
        "Widget.example.com \"neg\" is invalid: spec.size: Invalid value: -1: spec.size in body should be greater than or equal to 0"
    );

    // Missing object and missing namespace.
    let err = api.get("nope").await.unwrap_err();
    assert_eq!(
        (code(&err), message(&err)),
        (404, "widgets.example.com \"nope\" not found".to_string())
    );
    let other: Api<Widget> = Api::namespaced(env.client(), "missing");
    let err = other
        .create(&PostParams::default(), &widget("x", 1))
        .await
        .unwrap_err();
    assert_eq!(
        (code(&err), message(&err)),
        (404, "namespaces \"missing\" not found".to_string())
    );

    // generateName.
    let mut g = widget("", 1);
    g.metadata.name = None;
    g.metadata.generate_name = Some("gen-".into());
    let g = api.create(&PostParams::default(), &g).await.unwrap();
    assert!(g.name_any().starts_with("gen-") && g.name_any().len() == 9);

    // List with label selector; delete.
    let list = api
        .list(&ListParams::default().labels("x=y"))
        .await
        .unwrap();
    assert_eq!(list.items.len(), 1);
    assert!(list.metadata.resource_version.is_some());
    api.delete("a", &DeleteParams::default()).await.unwrap();
    assert_eq!(code(&api.get("a").await.unwrap_err()), 404);
    env.emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_patch_strategic_and_secrets() {
    let env = Env::start().await;
    env.install_widget_crd().await;
    let api: Api<Widget> = Api::namespaced(env.client(), "default");
    api.create(&PostParams::default(), &widget("j", 1))
        .await
        .unwrap();
    let jp: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/metadata/finalizers", "value": null},
        {"op": "add", "path": "/metadata/finalizers", "value": ["example.com/f"]}
    ]))
    .unwrap();
    let w = api
        .patch("j", &PatchParams::default(), &Patch::<()>::Json(jp))
        .await
        .unwrap();
    assert_eq!(w.finalizers(), ["example.com/f"]);
    let bad: json_patch::Patch = serde_json::from_value(
        json!([{"op": "test", "path": "/metadata/finalizers/0", "value": "other"}]),
    )
    .unwrap();
    let err = api
        .patch("j", &PatchParams::default(), &Patch::<()>::Json(bad))
        .await
        .unwrap_err();
    assert_eq!(
        (code(&err), message(&err)),
        (
            422,
            "testing value /metadata/finalizers/0 failed: test failed".to_string()
        )
    );
    let err = api
        .patch(
            "j",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"size": 2}})),
        )
        .await
        .unwrap_err();
    assert_eq!(code(&err), 415);

    // Strategic merge on a built-in; stringData folding.
    let secrets: Api<Secret> = Api::namespaced(env.client(), "default");
    let s: Secret =
        serde_json::from_value(json!({"metadata": {"name": "s"}, "stringData": {"user": "admin"}}))
            .unwrap();
    let s = secrets.create(&PostParams::default(), &s).await.unwrap();
    assert_eq!(s.data.unwrap()["user"].0, b"admin");
    assert_eq!(s.type_.as_deref(), Some("Opaque"));
    let s = secrets
        .patch(
            "s",
            &PatchParams::default(),
            &Patch::Strategic(json!({"stringData": {"pw": "x"}})),
        )
        .await
        .unwrap();
    assert_eq!(s.data.unwrap().len(), 2);
    env.emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finalizers_with_kube_runtime() {
    use kube::runtime::controller::Action;
    use kube::runtime::finalizer::{Event, finalizer};
    let env = Env::start().await;
    env.install_widget_crd().await;
    let api: Api<Widget> = Api::namespaced(env.client(), "default");
    api.create(&PostParams::default(), &widget("f", 1))
        .await
        .unwrap();
    const F: &str = "example.com/cleanup";
    let run = |obj: Widget| {
        let api = api.clone();
        async move {
            finalizer(&api, F, std::sync::Arc::new(obj), |ev| async move {
                Ok::<_, std::convert::Infallible>(match ev {
                    Event::Apply(_) => Action::await_change(),
                    Event::Cleanup(_) => Action::await_change(),
                })
            })
            .await
        }
    };
    run(api.get("f").await.unwrap()).await.unwrap();
    let w = api.get("f").await.unwrap();
    assert_eq!(w.finalizers(), [F]);
    let gen_before = w.metadata.generation.unwrap();

    // Delete: the finalizer keeps it, with deletionTimestamp and a new generation.
    api.delete("f", &DeleteParams::default()).await.unwrap();
    let w = api.get("f").await.unwrap();
    assert!(w.metadata.deletion_timestamp.is_some());
    assert_eq!(w.metadata.generation.unwrap(), gen_before + 1);
    // No finalizer may be added while deleting.
    let err = api
        .patch(
            "f",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": [F, "other"]}})),
        )
        .await
        .unwrap_err();
    assert_eq!(code(&err), 422);

    // Cleanup removes the finalizer, which deletes the object.
    run(w).await.unwrap();
    assert_eq!(code(&api.get("f").await.unwrap_err()), 404);
    env.emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_conflicts_and_force() {
    let env = Env::start().await;
    env.install_widget_crd().await;
    let api: Api<Widget> = Api::namespaced(env.client(), "default");
    let apply = |size: i64| json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "s"}, "spec": {"size": size}});
    let created = api
        .patch("s", &PatchParams::apply("alice"), &Patch::Apply(apply(1)))
        .await
        .unwrap();
    assert_eq!(created.spec.size, 1);
    let mf = created.managed_fields();
    assert_eq!(mf.len(), 1);
    assert_eq!(
        (mf[0].manager.as_deref(), mf[0].operation.as_deref()),
        (Some("alice"), Some("Apply"))
    );

    // Same value: shared ownership, no conflict.
    api.patch("s", &PatchParams::apply("carol"), &Patch::Apply(apply(1)))
        .await
        .unwrap();
    // Different value: conflict with both owners.
    let err = api
        .patch("s", &PatchParams::apply("bob"), &Patch::Apply(apply(2)))
        .await
        .unwrap_err();
    assert_eq!(code(&err), 409);
    assert!(
        message(&err)
            .starts_with("Apply failed with 2 conflicts: conflicts with \"alice\"\n- .spec.size"),
        "{}",
        message(&err)
    );
    let err = api.patch("s", &PatchParams::apply("bob"), &Patch::Apply(json!({"apiVersion": "example.com/v1", "kind": "Widget", "spec": {"size": 3, "color": "blue"}}))).await.unwrap_err();
    assert_eq!(code(&err), 409);

    // Force takes it over.
    let forced = api
        .patch(
            "s",
            &PatchParams::apply("bob").force(),
            &Patch::Apply(apply(2)),
        )
        .await
        .unwrap();
    assert_eq!(forced.spec.size, 2);
    let owners: Vec<_> = forced
        .managed_fields()
        .iter()
        .filter_map(|e| e.manager.clone())
        .collect();
    assert_eq!(owners, ["bob"], "alice and carol lost their only field");

    // An Update by another manager moves ownership; bob can then no longer apply another value without force.
    api.patch(
        "s",
        &update_by("editor"),
        &Patch::Merge(json!({"spec": {"size": 5}})),
    )
    .await
    .unwrap();
    let err = api
        .patch("s", &PatchParams::apply("bob"), &Patch::Apply(apply(2)))
        .await
        .unwrap_err();
    assert!(
        message(&err).contains("conflict with \"editor\" using example.com/v1: .spec.size"),
        "{}",
        message(&err)
    );

    // Omitted fields are removed.
    api.patch("s", &PatchParams::apply("bob"), &Patch::Apply(json!({"apiVersion": "example.com/v1", "kind": "Widget", "spec": {"size": 5, "color": "green"}}))).await.unwrap();
    let w = api
        .patch(
            "s",
            &PatchParams::apply("bob"),
            &Patch::Apply(
                json!({"apiVersion": "example.com/v1", "kind": "Widget", "spec": {"size": 5}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        w.spec.color.as_deref(),
        Some("red"),
        "color removed, then defaulted"
    );

    // Unknown fields: refused with Strict, dropped (not owned) otherwise.
    let extra =
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "spec": {"size": 5, "bogus": 1}});
    let err = api
        .patch(
            "s",
            &PatchParams::apply("bob").validation_strict(),
            &Patch::Apply(extra.clone()),
        )
        .await
        .unwrap_err();
    assert_eq!(
        (code(&err), message(&err)),
        (
            422,
            "strict decoding error: unknown field \"spec.bogus\"".to_string()
        )
    );
    let w = api
        .patch("s", &PatchParams::apply("bob"), &Patch::Apply(extra))
        .await
        .unwrap();
    let bob = w
        .managed_fields()
        .iter()
        .find(|e| e.manager.as_deref() == Some("bob"))
        .unwrap()
        .fields_v1
        .clone()
        .unwrap();
    assert!(bob.0["f:spec"].get("f:bogus").is_none(), "{:?}", bob.0);

    // Apply status.
    let s = api
        .patch_status("s", &PatchParams::apply("ctl").force(), &Patch::Apply(json!({"apiVersion": "example.com/v1", "kind": "Widget", "status": {"phase": "Ready"}})))
        .await
        .unwrap();
    assert_eq!(s.status.unwrap().phase.as_deref(), Some("Ready"));
    assert!(
        s.metadata
            .managed_fields
            .unwrap()
            .iter()
            .any(|e| e.subresource.as_deref() == Some("status"))
    );

    // Apply without fieldManager is refused by kube-rs itself or the server.
    let client = env.client();
    let raw = client.request_text(
        http::Request::patch("/apis/example.com/v1/namespaces/default/widgets/s?")
            .header("Content-Type", "application/apply-patch+yaml")
            .body(serde_json::to_vec(&apply(1)).unwrap())
            .unwrap(),
    );
    let err = raw.await.unwrap_err();
    assert_eq!(code(&err), 422);
    env.emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_dynamic_objects_and_crd_lifecycle() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let env = Env::start().await;
    env.install_widget_crd().await;
    let crds: Api<CustomResourceDefinition> = Api::all(env.client());
    let crd = crds.get("widgets.example.com").await.unwrap();
    let conds = crd.status.unwrap().conditions.unwrap();
    assert!(
        conds
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
    );

    let discovery = kube::Discovery::new(env.client()).run().await.unwrap();
    let (ar, caps) = discovery
        .resolve_gvk(&GroupVersionKind::gvk("example.com", "v1", "Widget"))
        .expect("Widget discovered");
    assert_eq!(ar.plural, "widgets");
    assert!(caps.subresources.iter().any(|(s, _)| s.plural == "status"));
    assert!(
        discovery
            .resolve_gvk(&GroupVersionKind::gvk("coordination.k8s.io", "v1", "Lease"))
            .is_some()
    );

    let api: Api<DynamicObject> = Api::namespaced_with(env.client(), "default", &ar);
    let obj: DynamicObject = serde_json::from_value(json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "d", "finalizers": ["keep"]}, "spec": {"size": 4}})).unwrap();
    api.create(&PostParams::default(), &obj).await.unwrap();
    let got = api.get("d").await.unwrap();
    assert_eq!(got.data["spec"]["size"], 4);

    // Deleting the CRD deletes its instances (after their finalizers) and then itself.
    crds.delete("widgets.example.com", &DeleteParams::default())
        .await
        .unwrap();
    let d = api.get("d").await.unwrap();
    assert!(d.metadata.deletion_timestamp.is_some());
    assert!(
        crds.get("widgets.example.com").await.is_ok(),
        "CRD waits for its instances"
    );
    api.patch(
        "d",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert_eq!(
        code(&crds.get("widgets.example.com").await.unwrap_err()),
        404
    );
    let ar2 = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", "v1", "Widget"),
        "widgets",
    );
    let gone: Api<DynamicObject> = Api::namespaced_with(env.client(), "default", &ar2);
    assert_eq!(
        code(&gone.list(&ListParams::default()).await.unwrap_err()),
        404
    );
    env.emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_inject_record_and_reset() {
    let env = Env::start().await;
    env.install_widget_crd().await;
    let hooks = env.emu.hooks();
    let api: Api<Widget> = Api::namespaced(env.client(), "default");
    hooks.inject_error(Some("GET"), "/widgets", 500, 1);
    assert_eq!(
        code(&api.list(&ListParams::default()).await.unwrap_err()),
        500
    );
    api.list(&ListParams::default()).await.unwrap();
    // kube-rs retries 429 (Retry-After) and 503 on its own.
    hooks.inject_error(Some("GET"), "/widgets", 429, 1);
    api.list(&ListParams::default()).await.unwrap();
    assert_eq!(
        hooks.requests().iter().filter(|r| r.status == 429).count(),
        1
    );
    hooks.inject_error(None, "/widgets", 503, 1);
    api.list(&ListParams::default()).await.unwrap();

    hooks.clear_requests();
    api.create(&PostParams::default(), &widget("r", 1))
        .await
        .unwrap();
    api.patch_status(
        "r",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "x"}})),
    )
    .await
    .unwrap();
    api.get("r").await.unwrap();
    let triples = hooks.rbac_triples();
    let want: std::collections::BTreeSet<(String, String, String)> = [
        ("example.com", "widgets", "create"),
        ("example.com", "widgets/status", "patch"),
        ("example.com", "widgets", "get"),
    ]
    .iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    .collect();
    assert_eq!(triples, want);

    hooks.reset();
    assert!(hooks.requests().is_empty());
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> = Api::all(env.client());
    assert!(
        crds.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let ns: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(env.client());
    assert_eq!(
        ns.list(&ListParams::default()).await.unwrap().items.len(),
        4
    );

    let err = ns
        .delete("default", &DeleteParams::default())
        .await
        .unwrap_err();
    assert_eq!(
        (code(&err), message(&err)),
        (
            403,
            "namespaces \"default\" is forbidden: this namespace may not be deleted".to_string()
        )
    );

    // Namespace deletion removes contents, then the namespace.
    ns.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "tmp"}})).unwrap(),
    )
    .await
    .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(env.client(), "tmp");
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "c"}})).unwrap(),
    )
    .await
    .unwrap();
    ns.delete("tmp", &DeleteParams::default()).await.unwrap();
    eventually(5, "namespace gone", || async {
        ns.get_opt("tmp").await.unwrap().is_none().then_some(())
    })
    .await;
    assert!(cms.get_opt("c").await.unwrap().is_none());
    let _ = Duration::from_secs(0);
    env.emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_scoped_multi_version_crd_without_status_subresource() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let env = Env::start().await;
    let schema = json!({"openAPIV3Schema": {"type": "object", "properties": {
        "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}});
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.example.com"},
        "spec": {"group": "example.com", "scope": "Cluster", "names": {"plural": "gadgets", "kind": "Gadget"},
            "versions": [
                {"name": "v1beta1", "served": true, "storage": false, "schema": schema},
                {"name": "v1", "served": true, "storage": true, "schema": schema}]}});
    let crds: Api<CustomResourceDefinition> = Api::all(env.client());
    crds.create(
        &PostParams::default(),
        &serde_json::from_value(crd).unwrap(),
    )
    .await
    .unwrap();

    let gvk = |v: &str| {
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("example.com", v, "Gadget"),
            "gadgets",
        )
    };
    let beta: Api<DynamicObject> = Api::all_with(env.client(), &gvk("v1beta1"));
    let v1: Api<DynamicObject> = Api::all_with(env.client(), &gvk("v1"));
    let obj: DynamicObject = serde_json::from_value(
        json!({"apiVersion": "example.com/v1beta1", "kind": "Gadget",
        "metadata": {"name": "g"}, "spec": {"free": {"form": 1}}, "status": {"kept": true}}),
    )
    .unwrap();
    let created = beta.create(&PostParams::default(), &obj).await.unwrap();
    assert_eq!(
        created.data["status"]["kept"], true,
        "no status subresource: status is stored"
    );
    let got = v1.get("g").await.unwrap();
    assert_eq!(got.types.unwrap().api_version, "example.com/v1");
    assert_eq!(got.data["spec"]["free"]["form"], 1);
    let patched = v1
        .patch(
            "g",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"kept": false}})),
        )
        .await
        .unwrap();
    assert_eq!(
        patched.metadata.generation,
        Some(2),
        "status is part of the spec without the subresource"
    );
    let err = v1
        .patch_status(
            "g",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {}})),
        )
        .await
        .unwrap_err();
    assert_eq!(code(&err), 404);
    let discovery = kube::Discovery::new(env.client()).run().await.unwrap();
    let group = discovery.get("example.com").unwrap();
    assert_eq!(group.preferred_version_or_latest(), "v1");
    env.emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_derive_generated_crd_round_trips() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::CustomResourceExt;
    let env = Env::start().await;
    let crds: Api<CustomResourceDefinition> = Api::all(env.client());
    crds.create(&PostParams::default(), &Widget::crd())
        .await
        .unwrap();
    let api: Api<Widget> = Api::namespaced(env.client(), "default");
    let mut w = widget("gen", 3);
    w.spec.color = Some("blue".into());
    let created = api.create(&PostParams::default(), &w).await.unwrap();
    assert_eq!(created.spec.size, 3);
    assert_eq!(created.spec.color.as_deref(), Some("blue"));
    let s = api
        .patch_status("gen", &PatchParams::apply("ctl").force(), &Patch::Apply(json!({"apiVersion": "example.com/v1", "kind": "Widget", "status": {"phase": "Ready"}})))
        .await
        .unwrap();
    assert_eq!(s.status.unwrap().phase.as_deref(), Some("Ready"));
    // A wrong type is refused with the schema generated by kube-derive.
    let err = api
        .patch(
            "gen",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": "big"}})),
        )
        .await
        .unwrap_err();
    assert_eq!(code(&err), 422);
    assert!(
        message(&err).contains("spec.size in body must be of type integer: \"string\""),
        "{}",
        message(&err)
    );
    env.emu.shutdown().await;
}

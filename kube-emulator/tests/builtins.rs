//! kube-rs 5 against the built-in kinds: Leases contended by two appliers,
//! the events Recorder, ownerReference garbage collection.

mod common;

use common::{Env, code, message, update_by};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_contended_by_two_appliers() {
    let env = Env::start().await;
    let leases: Api<Lease> = Api::namespaced(env.client(), "default");
    let acquire = |who: &str| {
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "leader"},
               "spec": {"holderIdentity": who, "leaseDurationSeconds": 15, "acquireTime": "2026-01-01T00:00:00.000000Z", "renewTime": "2026-01-01T00:00:00.000000Z"}})
    };
    let first = leases
        .patch(
            "leader",
            &PatchParams::apply("pod-a"),
            &Patch::Apply(acquire("pod-a")),
        )
        .await
        .unwrap();
    assert_eq!(
        first.spec.unwrap().holder_identity.as_deref(),
        Some("pod-a")
    );
    let err = leases
        .patch(
            "leader",
            &PatchParams::apply("pod-b"),
            &Patch::Apply(acquire("pod-b")),
        )
        .await
        .unwrap_err();
    assert_eq!(code(&err), 409);
    assert_eq!(
        message(&err),
        "Apply failed with 1 conflict: conflict with \"pod-a\": .spec.holderIdentity"
    );
    // Renew (strategic patch) by the holder, then release by nulling.
    leases
        .patch(
            "leader",
            &update_by("pod-a"),
            &Patch::Strategic(json!({"spec": {"renewTime": "2026-01-01T00:00:05.000000Z"}})),
        )
        .await
        .unwrap();
    leases
        .patch("leader", &update_by("pod-a"), &Patch::Strategic(json!({"spec": {"holderIdentity": null, "acquireTime": null, "renewTime": null, "leaseDurationSeconds": null}})))
        .await
        .unwrap();
    let second = leases
        .patch(
            "leader",
            &PatchParams::apply("pod-b"),
            &Patch::Apply(acquire("pod-b")),
        )
        .await
        .unwrap();
    assert_eq!(
        second.spec.unwrap().holder_identity.as_deref(),
        Some("pod-b")
    );
    let err = leases
        .patch(
            "leader",
            &PatchParams::apply("pod-a"),
            &Patch::Apply(acquire("pod-a")),
        )
        .await
        .unwrap_err();
    assert_eq!(code(&err), 409);
    // leaseDurationSeconds must be positive.
    let mut bad = acquire("x");
    bad["spec"]["leaseDurationSeconds"] = json!(0);
    bad["metadata"]["name"] = json!("bad");
    assert_eq!(
        code(
            &leases
                .patch("bad", &PatchParams::apply("x"), &Patch::Apply(bad))
                .await
                .unwrap_err()
        ),
        422
    );
    env.emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorder_publishes_an_event_series() {
    use kube::runtime::events::{Event, EventType, Recorder, Reporter};
    let env = Env::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(env.client(), "default");
    let cm = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "cm"}})).unwrap(),
        )
        .await
        .unwrap();
    let reporter = Reporter {
        controller: "kubemirror-test".into(),
        instance: Some("pod-1".into()),
    };
    let recorder = Recorder::new(env.client(), reporter);
    let ev = Event {
        type_: EventType::Normal,
        reason: "Synced".into(),
        note: Some("all good".into()),
        action: "Sync".into(),
        secondary: None,
    };
    recorder.publish(&ev, &cm.object_ref(&())).await.unwrap();
    recorder.publish(&ev, &cm.object_ref(&())).await.unwrap();
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(env.client(), "default");
    let list = events.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);
    let e = &list.items[0];
    assert_eq!(e.series.as_ref().map(|s| s.count), Some(2));
    assert_eq!(e.reason.as_deref(), Some("Synced"));
    let methods: Vec<String> = env
        .emu
        .hooks()
        .requests()
        .iter()
        .filter(|r| r.path.contains("/events"))
        .map(|r| r.method.clone())
        .collect();
    assert_eq!(methods, ["POST", "PATCH", "GET"]);
    env.emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_references_cascade_unless_orphaned() {
    let env = Env::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(env.client(), "default");
    let secrets: Api<Secret> = Api::namespaced(env.client(), "default");
    for (owner, child) in [("o1", "c1"), ("o2", "c2")] {
        let o = cms
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": owner}})).unwrap(),
            )
            .await
            .unwrap();
        let s = json!({"metadata": {"name": child, "ownerReferences": [
            {"apiVersion": "v1", "kind": "ConfigMap", "name": owner, "uid": o.uid().unwrap()}]}});
        secrets
            .create(&PostParams::default(), &serde_json::from_value(s).unwrap())
            .await
            .unwrap();
    }
    cms.delete("o1", &DeleteParams::default()).await.unwrap();
    assert!(
        secrets.get_opt("c1").await.unwrap().is_none(),
        "dependent collected"
    );
    cms.delete("o2", &DeleteParams::orphan()).await.unwrap();
    assert!(
        secrets.get_opt("c2").await.unwrap().is_some(),
        "orphaned dependent kept"
    );
    env.emu.shutdown().await;
}

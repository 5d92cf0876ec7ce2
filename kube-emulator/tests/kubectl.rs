//! The real kubectl against the emulator (each test: its own emulator,
//! kubeconfig and `--cache-dir`).

mod common;

use std::time::Duration;

use common::{Env, WIDGET_CRD};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;

const WIDGET: &str = "apiVersion: example.com/v1
kind: Widget
metadata:
  name: w
  namespace: default
  labels:
    app: demo
spec:
  size: 3
";

async fn with_crd() -> Env {
    let env = Env::start().await;
    let out = env.kubectl_in(&["apply", "-f", "-"], WIDGET_CRD).await;
    assert!(out.ok, "{out:?}");
    assert_eq!(
        out.stdout.trim(),
        "customresourcedefinition.apiextensions.k8s.io/widgets.example.com created"
    );
    let out = env
        .kubectl(&[
            "wait",
            "--for=condition=Established",
            "crd/widgets.example.com",
            "--timeout=20s",
        ])
        .await;
    assert!(out.ok, "{out:?}");
    env
}

fn widgets(env: &Env) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", "v1", "Widget"),
        "widgets",
    );
    Api::namespaced_with(env.client(), "default", &ar)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_get_and_printer_columns() {
    let env = with_crd().await;
    let out = env.kubectl_in(&["apply", "-f", "-"], WIDGET).await;
    assert_eq!(out.stdout.trim(), "widget.example.com/w created", "{out:?}");
    let out = env
        .kubectl_in(&["apply", "-f", "-"], &WIDGET.replace("size: 3", "size: 5"))
        .await;
    assert_eq!(
        out.stdout.trim(),
        "widget.example.com/w configured",
        "{out:?}"
    );
    let out = env
        .kubectl_in(&["apply", "-f", "-"], &WIDGET.replace("size: 3", "size: 5"))
        .await;
    assert_eq!(
        out.stdout.trim(),
        "widget.example.com/w unchanged",
        "{out:?}"
    );

    let out = env.kubectl(&["get", "widgets"]).await;
    let lines: Vec<Vec<&str>> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines[0],
        ["NAME", "SIZE", "COLOR", "READY", "AGE"],
        "{out:?}"
    );
    // READY has no value yet: an empty cell.
    assert_eq!(&lines[1][..3], ["w", "5", "red"], "{out:?}");
    assert_eq!(lines[1].len(), 4, "{out:?}");
    assert!(lines[1][3].ends_with('s'), "age column: {out:?}");

    let out = env.kubectl(&["get", "wd", "-A"]).await;
    assert!(out.stdout.starts_with("NAMESPACE"), "{out:?}");
    assert!(
        out.stdout.lines().nth(1).unwrap().starts_with("default"),
        "{out:?}"
    );
    let out = env.kubectl(&["get", "widgets", "-o", "name"]).await;
    assert_eq!(out.stdout.trim(), "widget.example.com/w");
    let out = env.kubectl(&["get", "widget", "w", "-o", "yaml"]).await;
    assert!(
        out.stdout.contains("  size: 5\n") && out.stdout.contains("generation: 2"),
        "{out:?}"
    );
    let out = env.kubectl(&["get", "widgets", "-l", "app=other"]).await;
    assert!(
        out.stdout.is_empty()
            && out
                .stderr
                .contains("No resources found in default namespace."),
        "{out:?}"
    );
    let out = env.kubectl(&["get", "ns"]).await;
    assert!(out.stdout.contains("kube-node-lease   Active"), "{out:?}");
    env.emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply() {
    let env = with_crd().await;
    let ssa = WIDGET.replace("name: w", "name: s");
    let out = env
        .kubectl_in(&["apply", "--server-side", "-f", "-"], &ssa)
        .await;
    assert_eq!(
        out.stdout.trim(),
        "widget.example.com/s serverside-applied",
        "{out:?}"
    );
    let out = env
        .kubectl_in(
            &["apply", "--server-side", "-f", "-"],
            &ssa.replace("size: 3", "size: 4"),
        )
        .await;
    assert_eq!(
        out.stdout.trim(),
        "widget.example.com/s serverside-applied",
        "{out:?}"
    );

    // Migrating a client-side-applied object to server-side apply.
    assert!(env.kubectl_in(&["apply", "-f", "-"], WIDGET).await.ok);
    let out = env
        .kubectl_in(&["apply", "--server-side", "-f", "-"], WIDGET)
        .await;
    assert_eq!(
        out.stdout.trim(),
        "widget.example.com/w serverside-applied",
        "{out:?}"
    );
    let w = widgets(&env).get("w").await.unwrap();
    let managers: Vec<String> = w
        .metadata
        .managed_fields
        .unwrap()
        .iter()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert!(managers.contains(&"kubectl".to_string()), "{managers:?}");

    // A field owned by another manager with another value.
    widgets(&env)
        .patch(
            "w",
            &PatchParams::apply("controller").force(),
            &Patch::Apply(
                json!({"apiVersion": "example.com/v1", "kind": "Widget", "spec": {"size": 9}}),
            ),
        )
        .await
        .unwrap();
    let out = env
        .kubectl_in(&["apply", "--server-side", "-f", "-"], WIDGET)
        .await;
    assert!(!out.ok);
    assert!(
        out.stderr
            .contains("Apply failed with 1 conflict: conflict with \"controller\": .spec.size"),
        "{out:?}"
    );
    let out = env
        .kubectl_in(
            &["apply", "--server-side", "--force-conflicts", "-f", "-"],
            WIDGET,
        )
        .await;
    assert!(out.ok, "{out:?}");
    env.emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_errors_and_field_validation() {
    let env = with_crd().await;
    let bad = WIDGET.replace("size: 3", "size: -1\n  color: 3");
    let out = env.kubectl_in(&["apply", "-f", "-"], &bad).await;
    assert!(!out.ok);
    assert!(
        out.stderr.contains("The Widget \"w\" is invalid:"),
        "{out:?}"
    );
    assert!(
        out.stderr.contains(
            "* spec.size: Invalid value: -1: spec.size in body should be greater than or equal to 0"
        ),
        "{out:?}"
    );
    assert!(out.stderr.contains("* spec.color: Invalid value: \"integer\": spec.color in body must be of type string: \"integer\""), "{out:?}");
    let missing = WIDGET.replace("size: 3", "color: red");
    let out = env.kubectl_in(&["apply", "-f", "-"], &missing).await;
    assert!(out.stderr.contains("spec.size: Required value"), "{out:?}");

    let unknown = WIDGET.replace("size: 3", "size: 3\n  x: 1");
    let out = env.kubectl_in(&["apply", "-f", "-"], &unknown).await;
    assert!(!out.ok);
    assert!(
        out.stderr.contains("Error from server (BadRequest)")
            && out
                .stderr
                .contains("strict decoding error: unknown field \"spec.x\""),
        "{out:?}"
    );
    let out = env
        .kubectl_in(&["apply", "--validate=warn", "-f", "-"], &unknown)
        .await;
    assert!(out.ok, "{out:?}");
    assert!(out.stderr.contains("unknown field \"spec.x\""), "{out:?}");
    let stored = widgets(&env).get("w").await.unwrap();
    assert!(
        stored.data["spec"].get("x").is_none(),
        "unknown fields are pruned"
    );
    env.emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_through_apply_pipeline() {
    let env = Env::start().await;
    let gen_yaml = env
        .kubectl(&[
            "create",
            "secret",
            "generic",
            "creds",
            "--from-literal=user=admin",
            "--dry-run=client",
            "-o",
            "yaml",
        ])
        .await;
    assert!(gen_yaml.ok, "{gen_yaml:?}");
    let out = env
        .kubectl_in(&["apply", "-f", "-"], &gen_yaml.stdout)
        .await;
    assert_eq!(out.stdout.trim(), "secret/creds created", "{out:?}");
    let changed = env
        .kubectl(&[
            "create",
            "secret",
            "generic",
            "creds",
            "--from-literal=user=root",
            "--dry-run=client",
            "-o",
            "yaml",
        ])
        .await;
    let out = env.kubectl_in(&["apply", "-f", "-"], &changed.stdout).await;
    assert_eq!(out.stdout.trim(), "secret/creds configured", "{out:?}");
    let out = env.kubectl(&["get", "secrets"]).await;
    let row: Vec<&str> = out
        .stdout
        .lines()
        .nth(1)
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(&row[..3], ["creds", "Opaque", "1"], "{out:?}");
    let out = env
        .kubectl(&["get", "secret", "creds", "-o", "jsonpath={.data.user}"])
        .await;
    assert_eq!(out.stdout, "cm9vdA==", "{out:?}");
    // kubectl create sends protobuf (tests/protobuf.rs).
    let out = env
        .kubectl(&["create", "configmap", "direct", "--from-literal=a=b"])
        .await;
    assert!(out.ok, "{out:?}");
    env.emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_condition_set_by_kube_rs() {
    let env = with_crd().await;
    assert!(env.kubectl_in(&["apply", "-f", "-"], WIDGET).await.ok);
    let hooks = env.emu.hooks();
    hooks.clear_requests();
    let wait = env.kubectl_spawn(&["wait", "--for=condition=Ready", "widget/w", "--timeout=20s"]);
    // Patch only once kubectl is watching, so the change arrives on its watch.
    common::eventually(20, "kubectl wait to watch", || async {
        hooks
            .requests()
            .iter()
            .any(|r| r.path.ends_with("/widgets") && r.query.contains("watch=true"))
            .then_some(())
    })
    .await;
    let status = json!({"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Done", "message": "ok", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}});
    widgets(&env)
        .patch_status("w", &PatchParams::default(), &Patch::Merge(status))
        .await
        .unwrap();
    let out = tokio::time::timeout(Duration::from_secs(25), wait.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "widget.example.com/w condition met"
    );
    let out = env.kubectl(&["get", "widgets"]).await;
    assert!(
        out.stdout.lines().nth(1).unwrap().split_whitespace().nth(3) == Some("True"),
        "{out:?}"
    );
    env.emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_and_not_found() {
    let env = with_crd().await;
    assert!(env.kubectl_in(&["apply", "-f", "-"], WIDGET).await.ok);
    let out = env.kubectl(&["delete", "widget", "w"]).await;
    assert_eq!(
        out.stdout.trim(),
        "widget.example.com \"w\" deleted",
        "{out:?}"
    );
    let out = env.kubectl(&["get", "widget", "w"]).await;
    assert!(!out.ok);
    assert_eq!(
        out.stderr.trim(),
        "Error from server (NotFound): widgets.example.com \"w\" not found"
    );
    let out = env.kubectl(&["delete", "crd", "widgets.example.com"]).await;
    assert!(out.ok, "{out:?}");
    let out = env.kubectl(&["get", "widgets"]).await;
    // kubectl's discovery cache still knows the type; the server no longer serves it.
    assert!(
        !out.ok && out.stderr.starts_with("Error from server (NotFound)"),
        "{out:?}"
    );
    env.emu.shutdown().await;
}

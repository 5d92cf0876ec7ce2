//! The built-in kinds a controller's chart creates (Deployment, Service,
//! RBAC, ...) with the real kubectl: served with their schemas (strict
//! field validation, `kubectl explain`), generation on Deployments.

mod common;

use common::Env;

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: registry.example:5000/web:1
          resources: {limits: {cpu: 1, memory: 1Gi}}
          ports: [{containerPort: 8080, name: http}]
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: default
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: http}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: reader
rules:
  - apiGroups: [\"\"]
    resources: [secrets]
    verbs: [get, list, watch]
";

async fn generation(env: &Env) -> String {
    env.kubectl(&[
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={.metadata.generation}",
    ])
    .await
    .stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chart_kinds_with_schemas_and_generation() {
    let env = Env::start().await;
    // A misspelt field is refused (kubectl asks for Strict validation).
    let deployment_only = DEPLOYMENT.split("---").next().unwrap();
    let typo = deployment_only.replacen("replicas: 2", "replcias: 2", 1);
    let out = env.kubectl_in(&["apply", "-f", "-"], &typo).await;
    assert!(!out.ok, "{out:?}");
    assert!(
        out.stderr
            .contains("strict decoding error: unknown field \"spec.replcias\""),
        "{out:?}"
    );
    let out = env.kubectl_in(&["apply", "-f", "-"], DEPLOYMENT).await;
    assert!(out.ok, "{out:?}");
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        [
            "deployment.apps/web created",
            "service/web created",
            "clusterrole.rbac.authorization.k8s.io/reader created"
        ],
        "{out:?}"
    );
    assert_eq!(generation(&env).await, "1");
    let out = env
        .kubectl(&["scale", "deployment", "web", "--replicas=3"])
        .await;
    // No scale subresource: kubectl scale needs it, so it says so.
    assert!(!out.ok, "{out:?}");
    let out = env
        .kubectl_in(
            &["apply", "-f", "-"],
            &DEPLOYMENT.replacen("replicas: 2", "replicas: 3", 1),
        )
        .await;
    assert!(out.ok, "{out:?}");
    assert_eq!(generation(&env).await, "2");
    let out = env.kubectl(&["label", "deploy", "web", "tier=front"]).await;
    assert!(out.ok, "{out:?}");
    assert_eq!(generation(&env).await, "2", "labels do not bump generation");
    // A wrong type is refused with the field named.
    let out = env
        .kubectl_in(
            &["apply", "-f", "-"],
            &DEPLOYMENT.replacen("replicas: 2", "replicas: two", 1),
        )
        .await;
    assert!(!out.ok && out.stderr.contains("spec.replicas"), "{out:?}");

    let out = env.kubectl(&["get", "all", "-o", "name"]).await;
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        ["service/web", "deployment.apps/web"],
        "{out:?}"
    );
    let out = env.kubectl(&["explain", "deployment.spec.replicas"]).await;
    assert!(
        out.ok && out.stdout.contains("Number of desired pods"),
        "{out:?}"
    );
    env.emu.shutdown().await;
}

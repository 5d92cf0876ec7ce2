//! README's cluster path with the real Helm CLI (Helm 4, installed by
//! `scripts/test`) against kube-emulator: the `helm install` line of README
//! as written, the chart's objects, the example applied as README says, the
//! controller binary started with the arguments and environment of the
//! installed Deployment reconciling it, then `helm status`, `upgrade` (a
//! value change reaches the Deployment), `history`, `rollback` and
//! `uninstall` (the chart's objects go; CRDs and custom resources stay, as
//! Helm leaves `crds/` alone). Also the server-side dry runs: `helm install
//! --dry-run=server` and `helm template | kubectl apply --dry-run=server`.
//!
//! Helm keeps every release as a Secret it writes in protobuf, so these
//! tests also prove the emulator's protobuf path.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cluster::{Cluster, Output, RELEASE_NAMESPACE};

const RELEASE: &str = "kubemirror";

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The commands of README's "In a cluster" block, continuation lines joined.
fn readme_commands() -> Vec<Vec<String>> {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let section = readme
        .split("\n## In a cluster")
        .nth(1)
        .expect("README has an \"## In a cluster\" section");
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("\n```").next())
        .expect("a ```sh block in README's \"In a cluster\" section");
    block
        .replace("\\\n", " ")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect()
}

/// The README command that starts with `prefix` (such as `helm install`).
fn readme_command(prefix: &str) -> Vec<String> {
    readme_commands()
        .into_iter()
        .find(|c| c.join(" ").starts_with(prefix))
        .unwrap_or_else(|| panic!("README's cluster block has no `{prefix} …` line"))
}

/// The real `helm` (`$HELM`, or `helm` on PATH), run from the repository
/// root with its config, cache and data directories under `home`.
pub fn helm_command(home: &Path) -> std::process::Command {
    let bin = std::env::var_os("HELM").unwrap_or_else(|| "helm".into());
    let mut cmd = std::process::Command::new(bin);
    cmd.current_dir(repo_root())
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_DATA_HOME", home.join("data"))
        .stdin(std::process::Stdio::null());
    cmd
}

/// What a `helm` that did not start says.
pub fn no_helm(e: std::io::Error) -> ! {
    panic!("cannot run helm: {e} (scripts/test installs the pinned Helm 4)")
}

/// Runs helm against the cluster.
async fn helm<S: AsRef<std::ffi::OsStr>>(c: &Cluster, args: &[S]) -> Output {
    let mut cmd = helm_command(&c.dir.path().join("helm"));
    cmd.args(args).env("KUBECONFIG", c.kubeconfig());
    let out = tokio::process::Command::from(cmd)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap_or_else(|e| no_helm(e));
    Output {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

async fn helm_ok(c: &Cluster, args: &[&str]) -> String {
    let out = helm(c, args).await;
    assert!(out.ok, "helm {}: {out:?}", args.join(" "));
    out.stdout
}

async fn kubectl_json(c: &Cluster, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    let out = c.kubectl(&all, None).await;
    assert!(out.ok, "kubectl {}: {out:?}", args.join(" "));
    serde_json::from_str(&out.stdout).unwrap()
}

/// `(kind, namespace, name)` of every object of the release's manifest.
async fn release_objects(c: &Cluster) -> BTreeSet<(String, String, String)> {
    let manifest = helm_ok(c, &["get", "manifest", RELEASE, "-n", RELEASE_NAMESPACE]).await;
    let mut out = BTreeSet::new();
    for doc in serde_yaml::Deserializer::from_str(&manifest) {
        let v = <serde_yaml::Value as serde::Deserialize>::deserialize(doc).unwrap();
        let Some(kind) = v["kind"].as_str() else {
            continue;
        };
        let ns = v["metadata"]["namespace"].as_str().unwrap_or("");
        let name = v["metadata"]["name"].as_str().unwrap();
        out.insert((kind.to_string(), ns.to_string(), name.to_string()));
    }
    out
}

/// `kubectl get KIND NAME [-n NS]`.
async fn exists(c: &Cluster, (kind, ns, name): &(String, String, String)) -> bool {
    let mut args = vec!["get", kind.as_str(), name.as_str(), "-o", "name"];
    if !ns.is_empty() {
        args.extend(["-n", ns.as_str()]);
    }
    let out = c.kubectl(&args, None).await;
    assert!(
        out.ok || out.stderr.contains("NotFound"),
        "kubectl {}: {out:?}",
        args.join(" ")
    );
    out.ok
}

async fn deployment(c: &Cluster) -> Value {
    kubectl_json(c, &["get", "deployment", RELEASE, "-n", RELEASE_NAMESPACE]).await
}

fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

/// The kubemirror binary with the container args and env of the installed
/// Deployment, as the kubelet would start it (fieldRefs resolved, listen
/// addresses moved to free loopback ports, HOME and TMPDIR in the test's
/// directory).
fn start_controller(c: &Cluster, dep: &Value) -> std::process::Child {
    let container = &dep["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<String> = container["args"]
        .as_array()
        .expect("the container has args")
        .iter()
        .map(|a| {
            let a = a.as_str().unwrap();
            match a.split_once("=0.0.0.0:") {
                Some((flag, _)) => format!("{flag}={}", free_addr()),
                None => a.to_string(),
            }
        })
        .collect();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_kubemirror"));
    cmd.args(&args);
    // The quickstart's OCI layouts: allowed under these directories only, as
    // the chart's localTransports.allowedDirs would (the default allows none).
    for dir in [
        repo_root().join("examples/images"),
        c.dir.path().to_path_buf(),
    ] {
        cmd.arg(format!("--allow-local-transports-under={}", dir.display()));
    }
    for e in container["env"].as_array().into_iter().flatten() {
        let name = e["name"].as_str().unwrap();
        let value = match (
            e["value"].as_str(),
            e.pointer("/valueFrom/fieldRef/fieldPath"),
        ) {
            (Some(v), _) => v.to_string(),
            (None, Some(f)) if f == "metadata.name" => format!("{RELEASE}-0"),
            (None, Some(f)) if f == "metadata.namespace" => RELEASE_NAMESPACE.to_string(),
            other => panic!("env {name}: {other:?} is not resolved by this test"),
        };
        cmd.env(name, value);
    }
    let log = std::fs::File::create(c.dir.path().join("controller.log")).unwrap();
    cmd.env("KUBECONFIG", c.kubeconfig())
        .env("HOME", c.dir.path())
        .env("TMPDIR", c.dir.path())
        .current_dir(repo_root())
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start the kubemirror controller")
}

fn stop(mut child: std::process::Child) {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(15);
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A ServiceMonitor CRD (prometheus-operator's group and names; any spec).
const SERVICE_MONITOR_CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: servicemonitors.monitoring.coreos.com
spec:
  group: monitoring.coreos.com
  names: {kind: ServiceMonitor, listKind: ServiceMonitorList, plural: servicemonitors, singular: servicemonitor}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec: {type: object, x-kubernetes-preserve-unknown-fields: true}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_helm_install_upgrade_rollback_uninstall() {
    let c = Cluster::start_empty().await;

    // `helm install …` exactly as README has it (it creates the namespace).
    let install = readme_command("helm install");
    let out = helm(&c, &install[1..]).await;
    assert!(out.ok, "{}: {out:?}", install.join(" "));
    assert!(out.stdout.contains("STATUS: deployed"), "{}", out.stdout);

    // Helm finds its release (a Secret it wrote in protobuf) and will not
    // install over it.
    let again = helm(&c, &install[1..]).await;
    assert!(
        !again.ok
            && again
                .stderr
                .contains("cannot reuse a name that is still in use"),
        "{again:?}"
    );

    // The chart's objects exist, CRDs included.
    let objects = release_objects(&c).await;
    let kinds: BTreeSet<&str> = objects.iter().map(|o| o.0.as_str()).collect();
    for k in [
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Service",
        "Deployment",
    ] {
        assert!(kinds.contains(k), "no {k} in the release: {objects:?}");
    }
    for o in &objects {
        assert!(exists(&c, o).await, "{o:?} was not created");
    }
    let out = c
        .kubectl(
            &[
                "wait",
                "--for=condition=Established",
                "crd/imagemirrors.kubemirror.dev",
                "crd/imageinspections.kubemirror.dev",
                "--timeout=30s",
            ],
            None,
        )
        .await;
    assert!(out.ok, "{out:?}");
    let dep = deployment(&c).await;
    assert_eq!(
        dep["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "Helm"
    );
    assert_eq!(
        dep["metadata"]["annotations"]["meta.helm.sh/release-name"],
        RELEASE
    );
    let image = dep["spec"]["template"]["spec"]["containers"][0]["image"].clone();
    assert_eq!(image, "registry.example.internal/kubemirror:0.1.0");

    // The example, applied as README says; and the quickstart's local mirror.
    let apply = readme_command("kubectl apply");
    let apply: Vec<&str> = apply[1..].iter().map(String::as_str).collect();
    let out = c.kubectl(&apply, None).await;
    assert!(out.ok, "{out:?}");
    let dest = c.dir.path().join("quickstart");
    let quickstart = std::fs::read_to_string(repo_root().join("examples/quickstart.yaml"))
        .unwrap()
        .replace("/tmp/kubemirror-quickstart", dest.to_str().unwrap())
        .replace(
            "oci:examples/images/hello",
            &format!(
                "oci:{}",
                repo_root().join("examples/images/hello").display()
            ),
        );
    c.apply_text(&quickstart).await;

    // The controller, started as the chart's Deployment starts it, reconciles
    // both: the local mirror goes Ready, and the example (whose registries
    // this machine cannot reach) gets a Ready condition for its generation.
    let controller = start_controller(&c, &dep);
    let out = c
        .kubectl(
            &[
                "wait",
                "--for=condition=Ready",
                "imagemirror/hello",
                "imageinspection/hello",
                "-n",
                "default",
                "--timeout=180s",
            ],
            None,
        )
        .await;
    let log = || std::fs::read_to_string(c.dir.path().join("controller.log")).unwrap_or_default();
    assert!(out.ok, "{out:?}\ncontroller log:\n{}", log());
    let out = c
        .kubectl(
            &[
                "wait",
                "--for=jsonpath={.status.conditions[?(@.type==\"Ready\")].observedGeneration}=1",
                "imagemirror/nginx",
                "-n",
                "mirrors",
                "--timeout=180s",
            ],
            None,
        )
        .await;
    assert!(out.ok, "{out:?}\ncontroller log:\n{}", log());
    stop(controller);
    let get = readme_command("kubectl get imagemirrors");
    let get: Vec<&str> = get[1..].iter().map(String::as_str).collect();
    let out = c.kubectl(&get, None).await;
    assert!(
        out.ok && out.stdout.contains("nginx") && out.stdout.contains("hello"),
        "{out:?}"
    );

    // status
    let status = helm_ok(&c, &["status", RELEASE, "-n", RELEASE_NAMESPACE]).await;
    assert!(
        status.contains("STATUS: deployed") && status.contains("REVISION: 1"),
        "{status}"
    );

    // upgrade: two replicas and a ServiceMonitor (its CRD installed first).
    c.apply_text(SERVICE_MONITOR_CRD).await;
    let out = c
        .kubectl(
            &[
                "wait",
                "--for=condition=Established",
                "crd/servicemonitors.monitoring.coreos.com",
                "--timeout=30s",
            ],
            None,
        )
        .await;
    assert!(out.ok, "{out:?}");
    helm_ok(
        &c,
        &[
            "upgrade",
            RELEASE,
            "charts/kubemirror",
            "-n",
            RELEASE_NAMESPACE,
            "--reuse-values",
            "--set",
            "replicaCount=2",
            "--set",
            "metrics.serviceMonitor.enabled=true",
        ],
    )
    .await;
    let dep = deployment(&c).await;
    assert_eq!(dep["spec"]["replicas"], 2, "{dep}");
    assert_eq!(dep["metadata"]["generation"], 2, "{dep}");
    assert_eq!(
        dep["spec"]["template"]["spec"]["containers"][0]["image"],
        image
    );
    let monitor = (
        "ServiceMonitor".to_string(),
        RELEASE_NAMESPACE.to_string(),
        RELEASE.to_string(),
    );
    assert!(release_objects(&c).await.contains(&monitor));
    assert!(exists(&c, &monitor).await);
    let history = helm_ok(&c, &["history", RELEASE, "-n", RELEASE_NAMESPACE]).await;
    assert!(
        history.contains("superseded") && history.contains("Upgrade complete"),
        "{history}"
    );

    // rollback to revision 1: one replica, no ServiceMonitor.
    helm_ok(&c, &["rollback", RELEASE, "1", "-n", RELEASE_NAMESPACE]).await;
    let dep = deployment(&c).await;
    assert_eq!(dep["spec"]["replicas"], 1, "{dep}");
    assert!(
        !exists(&c, &monitor).await,
        "the rollback kept the ServiceMonitor"
    );
    let status = helm_ok(&c, &["status", RELEASE, "-n", RELEASE_NAMESPACE]).await;
    assert!(status.contains("REVISION: 3"), "{status}");

    // uninstall: the chart's objects and release Secrets go; the CRDs and
    // the custom resources stay.
    helm_ok(&c, &["uninstall", RELEASE, "-n", RELEASE_NAMESPACE]).await;
    for o in &objects {
        assert!(!exists(&c, o).await, "{o:?} survived helm uninstall");
    }
    let secrets = kubectl_json(
        &c,
        &[
            "get",
            "secrets",
            "-n",
            RELEASE_NAMESPACE,
            "-l",
            "owner=helm",
        ],
    )
    .await;
    assert_eq!(secrets["items"], serde_json::json!([]), "{secrets}");
    let left = c
        .kubectl(&["get", "imagemirrors", "-A", "-o", "name"], None)
        .await;
    assert!(left.ok, "{left:?}");
    assert_eq!(left.stdout.lines().count(), 2, "{}", left.stdout);
    let out = helm(&c, &["status", RELEASE, "-n", RELEASE_NAMESPACE]).await;
    assert!(!out.ok && out.stderr.contains("not found"), "{out:?}");
    // README: deleting the CRDs removes the custom resources too.
    c.kubectl(&["delete", "-f", "crds/kubemirror.dev_crds.yaml"], None)
        .await;
    let left = c.kubectl(&["get", "crds", "-o", "name"], None).await;
    assert!(
        left.ok && !left.stdout.contains("kubemirror.dev"),
        "{left:?}"
    );
    assert!(c.emu.hooks().requests().iter().any(|r| {
        r.method == "DELETE"
            && r.path
                .ends_with("/customresourcedefinitions/imagemirrors.kubemirror.dev")
    }));
    c.emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_dry_runs_create_nothing() {
    let c = Cluster::start().await;
    c.install_crds().await;
    let before = c.emu.hooks().requests().len();
    let out = helm(
        &c,
        &[
            "install",
            RELEASE,
            "charts/kubemirror",
            "-n",
            RELEASE_NAMESPACE,
            "--dry-run=server",
        ],
    )
    .await;
    assert!(out.ok, "{out:?}");
    assert!(out.stdout.contains("kind: Deployment"), "{}", out.stdout);
    // Helm validated against the server (OpenAPI, objects that would clash)
    // and stored nothing.
    assert!(
        c.emu.hooks().requests()[before..]
            .iter()
            .any(|r| r.path.ends_with("/deployments/kubemirror")),
        "helm --dry-run=server did not ask the server: {:?}",
        c.emu.hooks().requests()[before..]
            .iter()
            .map(|r| format!("{} {}?{}", r.method, r.path, r.query))
            .collect::<Vec<_>>()
    );
    let rendered = helm_ok(
        &c,
        &[
            "template",
            RELEASE,
            "charts/kubemirror",
            "-n",
            RELEASE_NAMESPACE,
        ],
    )
    .await;
    let out = c
        .kubectl(&["apply", "--dry-run=server", "-f", "-"], Some(&rendered))
        .await;
    assert!(out.ok, "{out:?}");
    assert!(
        out.stdout
            .contains("deployment.apps/kubemirror created (server dry run)"),
        "{}",
        out.stdout
    );
    // kubectl did send every object to the server, as dry runs.
    let dry: Vec<_> = c.emu.hooks().requests()[before..]
        .iter()
        .filter(|r| r.query.contains("dryRun=All"))
        .map(|r| r.path.clone())
        .collect();
    assert!(dry.iter().any(|p| p.contains("/deployments")), "{dry:?}");
    for kind in ["deployments", "serviceaccounts", "services", "secrets"] {
        let left = c
            .kubectl(&["get", kind, "-n", RELEASE_NAMESPACE, "-o", "name"], None)
            .await;
        assert!(left.ok && left.stdout.trim().is_empty(), "{kind}: {left:?}");
    }
    let roles = c
        .kubectl(&["get", "clusterroles", "-o", "name"], None)
        .await;
    assert!(roles.ok && roles.stdout.trim().is_empty(), "{roles:?}");
    c.emu.shutdown().await;
}

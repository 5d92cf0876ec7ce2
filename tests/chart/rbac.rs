//! The chart's RBAC, proved against the controller itself: the real
//! `kubemirror controller` (the binary, with leader election) runs against the
//! API emulator until an ImageMirror and an ImageInspection that name a
//! Secret are Ready. Every request it made is mapped to the (apiGroup,
//! resource[/subresource], verb) an authorizer checks, and then:
//!
//! - sufficient: each request is allowed by a rule of the chart, in a role
//!   that applies where the request went (the leader-election Role only in
//!   the release namespace; with `watchNamespace`, the controller's Role only
//!   in that namespace);
//! - minimal: each verb the chart grants was used, or is in [`UNUSED_OK`]
//!   with the reason it stays.
//!
//! With `replicaCount > 1` the controller runs with `--shards` instead of
//! `--leader-elect`: the shard Leases' Role replaces the leader-election
//! one, and labelling objects with their shard uses `patch` on them.
//!
//! A third object fails on purpose, so that a Warning Event recurs and the
//! Recorder's PATCH of an Event is seen too; a label on the Secret
//! re-triggers the objects that name it; SIGTERM releases the Lease.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::cluster::{Cluster, RELEASE_NAMESPACE};
use crate::template::{self, RoleScope};

/// Granted but not used by the controller, and why they stay.
const UNUSED_OK: &[(&str, &str, &str, &str)] = &[
    (
        "kubemirror.dev",
        "imagemirrors",
        "get",
        "the controllers read through list + watch, which already return whole objects, so get adds no access; kept for the conventional read set (get/list/watch)",
    ),
    (
        "kubemirror.dev",
        "imageinspections",
        "get",
        "as for imagemirrors",
    ),
    (
        "",
        "configmaps",
        "get",
        "read only for an object whose trustedRootRef is of kind ConfigMap (tests/controller_keyless.rs reads one); the objects here name Secrets",
    ),
];

/// Granted for sharded mode only (`replicaCount > 1`), so unused by a
/// single replica: the shard label is written by a merge PATCH.
const SHARDED_ONLY: &[(&str, &str, &str)] = &[
    ("kubemirror.dev", "imagemirrors", "patch"),
    ("kubemirror.dev", "imageinspections", "patch"),
];

/// How the chart runs the controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// One replica, `--leader-elect`.
    Leader,
    /// `replicaCount > 1`: `--shards`.
    Sharded,
}

const WATCHED_NAMESPACE: &str = "team-a";
/// The release's fullname (`{{ include "kubemirror.fullname" . }}`): the Lease's name.
const FULLNAME: &str = "kubemirror";

/// The objects: a mirror and an inspection over the committed OCI layout
/// `examples/images/hello` (tags 1.0.0 and 1.1.0), both naming a
/// dockerconfigjson Secret, so Secrets are read as in production.
fn objects(dest: &Path) -> String {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/images/hello");
    let (src, dest) = (src.display(), dest.display());
    format!(
        r#"apiVersion: v1
kind: Namespace
metadata:
  name: {WATCHED_NAMESPACE}
---
apiVersion: v1
kind: Secret
metadata:
  name: registry-creds
  namespace: {WATCHED_NAMESPACE}
type: kubernetes.io/dockerconfigjson
stringData:
  .dockerconfigjson: '{{"auths":{{"registry.example:5000":{{"username":"u","password":"p"}}}}}}'
---
apiVersion: kubemirror.dev/v1alpha1
kind: ImageMirror
metadata:
  name: hello
  namespace: {WATCHED_NAMESPACE}
spec:
  source:
    repository: oci:{src}
    credentialsSecretRef: {{name: registry-creds}}
  destination:
    repository: oci:{dest}
    credentialsSecretRef: {{name: registry-creds}}
  tags:
    semver: ">=1.0.0"
---
apiVersion: kubemirror.dev/v1alpha1
kind: ImageInspection
metadata:
  name: hello
  namespace: {WATCHED_NAMESPACE}
spec:
  image: oci:{src}:1.1.0
  credentialsSecretRef: {{name: registry-creds}}
---
# deletionPolicy: Delete: the controller puts its finalizer on the object
# (a patch), whether or not the registry answers (none does here).
apiVersion: kubemirror.dev/v1alpha1
kind: ImageMirror
metadata:
  name: cleanup
  namespace: {WATCHED_NAMESPACE}
spec:
  source:
    repository: 127.0.0.1:1/team/app
  destination:
    repository: 127.0.0.1:1/mirror/app
  tags:
    names: ["1.0.0"]
  deletionPolicy: Delete
  interval: 1h
---
# Fails (no such layout): a Warning Event, raised again on each retry.
apiVersion: kubemirror.dev/v1alpha1
kind: ImageInspection
metadata:
  name: missing
  namespace: {WATCHED_NAMESPACE}
spec:
  image: oci:{dest}-missing:1.0.0
  credentialsSecretRef: {{name: registry-creds}}
"#
    )
}

use crate::support::free_port;

/// `GET path` on 127.0.0.1:port: (status, body), or None when nothing answers.
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut reply = String::new();
    s.read_to_string(&mut reply).ok()?;
    let status = reply.split_whitespace().nth(1)?.parse().ok()?;
    let body = reply.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}

/// One request of the controller, as the authorizer sees it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Seen {
    group: String,
    resource: String,
    verb: String,
    namespace: Option<String>,
    name: Option<String>,
}

/// Run the controller (with `watch_namespace`, like the chart's
/// `watchNamespace`) until both objects are Ready; return its requests.
async fn controller_requests(watch_namespace: Option<&str>, mode: Mode) -> BTreeSet<Seen> {
    let cluster = Cluster::start().await;
    cluster.install_crds().await;
    let dest = cluster.dir.path().join("mirror");
    cluster.apply_text(&objects(&dest)).await;
    cluster.emu.hooks().clear_requests();

    let (metrics, health) = (free_port(), free_port());
    let log = std::fs::File::create(cluster.dir.path().join("controller.log")).unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_kubemirror"));
    // As the chart's Deployment runs it (its args and env), on free ports.
    cmd.args([
        "--log-format=json",
        "controller",
        match mode {
            Mode::Leader => "--leader-elect",
            Mode::Sharded => "--shards=4",
        },
        "--concurrency=2",
    ])
    .arg(format!("--lease-name={FULLNAME}"))
    .arg(format!("--metrics-addr=127.0.0.1:{metrics}"))
    .arg(format!("--health-addr=127.0.0.1:{health}"))
    // The objects use OCI layouts: allowed under these directories only
    // (the chart's localTransports.allowedDirs).
    .arg(format!(
        "--allow-local-transports-under={}",
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples/images")
            .display()
    ))
    .arg(format!(
        "--allow-local-transports-under={}",
        cluster.dir.path().display()
    ))
    .env("KUBECONFIG", cluster.kubeconfig())
    .env("HOME", cluster.dir.path())
    .env("TMPDIR", cluster.dir.path())
    .env("RUST_LOG", "info")
    .env("POD_NAME", "kubemirror-test")
    .env("POD_NAMESPACE", RELEASE_NAMESPACE)
    .stdout(std::process::Stdio::null())
    .stderr(log);
    if let Some(ns) = watch_namespace {
        cmd.arg(format!("--namespace={ns}"));
    }
    let mut child = cmd.spawn().expect("start kubemirror controller");
    let log_text =
        || std::fs::read_to_string(cluster.dir.path().join("controller.log")).unwrap_or_default();

    let out = cluster
        .kubectl(
            &[
                "wait",
                "--for=condition=Ready",
                "imagemirror/hello",
                "imageinspection/hello",
                "-n",
                WATCHED_NAMESPACE,
                "--timeout=180s",
            ],
            None,
        )
        .await;
    if !out.ok {
        let _ = child.kill();
        let _ = child.wait();
        let objects = cluster
            .kubectl(
                &["get", "imagemirrors,imageinspections", "-A", "-o", "yaml"],
                None,
            )
            .await;
        panic!(
            "not Ready: {out:?}\n{}\ncontroller log:\n{}",
            objects.stdout,
            log_text()
        );
    }
    // `cleanup` (deletionPolicy: Delete) got its finalizer: a patch of the object.
    let deadline = Instant::now() + Duration::from_secs(30);
    let finalizer_patched = || {
        cluster
            .emu
            .hooks()
            .requests()
            .iter()
            .any(|r| r.method == "PATCH" && r.path.ends_with("/imagemirrors/cleanup"))
    };
    while !finalizer_patched() {
        assert!(
            Instant::now() < deadline,
            "no finalizer patch of imagemirror/cleanup; controller log:\n{}",
            log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The probes and metrics the chart points at answer.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ready = http_get(health, "/readyz");
        if ready.as_ref().is_some_and(|r| r.0 == 200) || Instant::now() > deadline {
            assert_eq!(ready.map(|r| r.0), Some(200), "/readyz");
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        http_get(health, "/healthz").map(|r| r.0),
        Some(200),
        "/healthz"
    );
    let (status, body) = http_get(metrics, "/metrics").expect("/metrics answers");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("kubemirror"), "{body}");

    // A changed Secret re-triggers (the Secret watch is in use).
    let out = cluster
        .kubectl(
            &[
                "label",
                "secret",
                "registry-creds",
                "rotated=1",
                "-n",
                WATCHED_NAMESPACE,
            ],
            None,
        )
        .await;
    assert!(out.ok, "{out:?}");
    // It also reconciles `missing` again: the same Warning Event recurs, and
    // the Recorder patches the first one.
    let deadline = Instant::now() + Duration::from_secs(20);
    let event_patched = || {
        cluster
            .emu
            .hooks()
            .requests()
            .iter()
            .any(|r| r.method == "PATCH" && r.path.contains("/apis/events.k8s.io/"))
    };
    while !event_patched() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Stop it as Kubernetes does (SIGTERM), so a release of the Lease is seen too.
    let pid = child.id().to_string();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status();
    let deadline = Instant::now() + Duration::from_secs(15);
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if child.try_wait().unwrap().is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }

    let requests = cluster.emu.hooks().requests();
    let seen: BTreeSet<Seen> = requests
        .iter()
        .filter(|r| {
            !r.user_agent
                .as_deref()
                .is_some_and(|ua| ua.starts_with("kubectl"))
        })
        .filter_map(|r| r.rbac())
        .map(|a| Seen {
            group: a.api_group,
            resource: a.resource,
            verb: a.verb,
            namespace: a.namespace,
            name: a.name,
        })
        .collect();
    assert!(
        !seen.is_empty(),
        "no controller requests recorded; log:\n{}",
        log_text()
    );
    eprintln!(
        "controller requests ({}):\n{}",
        watch_namespace.unwrap_or("all namespaces"),
        seen.iter()
            .map(|s| format!(
                "  {:<20} {:<28} {:<7} {:<18} {}",
                if s.group.is_empty() { "\"\"" } else { &s.group },
                s.resource,
                s.verb,
                s.namespace.as_deref().unwrap_or("(cluster)"),
                s.name.as_deref().unwrap_or("")
            ))
            .collect::<Vec<_>>()
            .join("\n")
    );
    cluster.emu.shutdown().await;
    seen
}

/// Check `seen` against the chart's rules for one install mode.
fn check(seen: &BTreeSet<Seen>, watch_namespace: Option<&str>, mode: Mode) {
    let roles = template::rbac_roles(FULLNAME);
    let role = |scope| {
        roles
            .iter()
            .find(|(s, _)| *s == scope)
            .map(|(_, r)| r.clone())
            .unwrap_or_else(|| panic!("rbac.yaml has no {scope:?} role"))
    };
    let release_scope = match mode {
        Mode::Leader => RoleScope::Release,
        Mode::Sharded => RoleScope::Shards,
    };
    let (watched, release) = (role(RoleScope::Watched), role(release_scope));

    // Sufficient.
    for s in seen {
        let in_release_ns = s.namespace.as_deref() == Some(RELEASE_NAMESPACE);
        let by_release = in_release_ns
            && release
                .iter()
                .any(|r| r.allows(&s.group, &s.resource, &s.verb, s.name.as_deref()));
        let watched_applies = match watch_namespace {
            None => true,
            Some(ns) => s.namespace.as_deref() == Some(ns),
        };
        let by_watched = watched_applies
            && watched
                .iter()
                .any(|r| r.allows(&s.group, &s.resource, &s.verb, s.name.as_deref()));
        assert!(
            by_release || by_watched,
            "the chart does not allow {s:?} (watchNamespace {watch_namespace:?})"
        );
    }

    // Minimal (the roles this mode installs).
    for (scope, rules) in roles
        .iter()
        .filter(|(s, _)| *s == RoleScope::Watched || *s == release_scope)
    {
        for r in rules {
            for g in &r.api_groups {
                for res in &r.resources {
                    for v in &r.verbs {
                        let used = seen.iter().any(|s| {
                            &s.group == g
                                && &s.resource == res
                                && &s.verb == v
                                && r.allows(g, res, v, s.name.as_deref())
                        });
                        let excused = UNUSED_OK
                            .iter()
                            .any(|(eg, er, ev, _)| eg == g && er == res && ev == v)
                            || (mode == Mode::Leader
                                && SHARDED_ONLY
                                    .iter()
                                    .any(|(eg, er, ev)| eg == g && er == res && ev == v));
                        assert!(
                            used || excused,
                            "{scope:?} role grants {v} on {g:?} {res}, which the controller never used: drop it or add it to UNUSED_OK with a reason"
                        );
                    }
                }
            }
        }
    }
    // The allow-list names only what the chart grants.
    for (g, res, v, _) in UNUSED_OK {
        assert!(
            roles
                .iter()
                .flat_map(|(_, r)| r)
                .any(|r| r.allows(g, res, v, None)),
            "UNUSED_OK lists {v} on {g:?} {res}, which the chart does not grant"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_is_sufficient_and_minimal_watching_all_namespaces() {
    let seen = controller_requests(None, Mode::Leader).await;
    check(&seen, None, Mode::Leader);
    // Leader election happened, in the release namespace.
    assert!(seen.iter().any(|s| s.resource == "leases"
        && s.verb == "create"
        && s.namespace.as_deref() == Some(RELEASE_NAMESPACE)));
    // Watching all namespaces lists cluster-wide: this needs the ClusterRole.
    assert!(
        seen.iter()
            .any(|s| s.resource == "imagemirrors" && s.verb == "watch" && s.namespace.is_none())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_is_sufficient_and_minimal_watching_one_namespace() {
    let seen = controller_requests(Some(WATCHED_NAMESPACE), Mode::Leader).await;
    check(&seen, Some(WATCHED_NAMESPACE), Mode::Leader);
    for s in &seen {
        let want = if s.resource == "leases" {
            RELEASE_NAMESPACE
        } else {
            WATCHED_NAMESPACE
        };
        assert_eq!(s.namespace.as_deref(), Some(want), "{s:?}");
    }
}

/// `replicaCount > 1`: the controller with `--shards`, one namespace
/// watched. The shard Leases live in the release namespace under the
/// "-shards" Role, and the objects are labelled with their shard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_is_sufficient_and_minimal_with_shards() {
    let seen = controller_requests(Some(WATCHED_NAMESPACE), Mode::Sharded).await;
    check(&seen, Some(WATCHED_NAMESPACE), Mode::Sharded);
    for (g, res, v) in SHARDED_ONLY {
        assert!(
            seen.iter()
                .any(|s| s.group == *g && s.resource == *res && s.verb == *v),
            "no {v} of {res} with --shards: {seen:#?}"
        );
    }
    for s in &seen {
        let want = if s.resource == "leases" {
            RELEASE_NAMESPACE
        } else {
            WATCHED_NAMESPACE
        };
        assert_eq!(s.namespace.as_deref(), Some(want), "{s:?}");
    }
}

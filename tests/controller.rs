//! The controller end to end: the real kubectl and the in-process controller
//! against kube-emulator, mirroring between two real Distribution registries
//! (one with Basic auth behind TLS, its credentials and CA in Secrets).
mod support;

use std::time::Duration;

use kube_emulator::Emulator;
use serde_json::Value;
use support::kubectl::Out;
use support::registry::Registry;
use support::{eventually, skopeo_digest};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use kubemirror::api::v1alpha1::crds_yaml;
use kubemirror::controller::{self, Config};

struct Cluster {
    emu: Emulator,
    dir: tempfile::TempDir,
}

impl Cluster {
    async fn start() -> Cluster {
        let emu = Emulator::start("127.0.0.1:0")
            .await
            .expect("start emulator");
        let dir = tempfile::tempdir().unwrap();
        emu.write_kubeconfig(dir.path().join("kubeconfig")).unwrap();
        Cluster { emu, dir }
    }

    async fn kubectl_in(&self, args: &[&str], stdin: &str) -> Out {
        support::kubectl::in_dir(self.dir.path(), args, stdin).await
    }

    async fn kubectl(&self, args: &[&str]) -> Out {
        self.kubectl_in(args, "").await
    }

    async fn apply(&self, yaml: &str) {
        let out = self.kubectl_in(&["apply", "-f", "-"], yaml).await;
        assert!(out.ok, "kubectl apply failed: {out:?}\n{yaml}");
    }

    /// `kubectl create ... --dry-run=client -o yaml | kubectl apply -f -`
    /// (kubectl's create sends protobuf, which the emulator refuses).
    async fn create_via_apply(&self, args: &[&str]) {
        let mut full = vec!["create"];
        full.extend_from_slice(args);
        full.extend_from_slice(&["--dry-run=client", "-o", "yaml"]);
        let out = self.kubectl(&full).await;
        assert!(out.ok, "{out:?}");
        self.apply(&out.stdout).await;
    }

    async fn get_json(&self, what: &str) -> Value {
        let out = self.kubectl(&["get", what, "-o", "json"]).await;
        assert!(out.ok, "{out:?}");
        serde_json::from_str(&out.stdout).unwrap()
    }

    /// `kubectl apply` the CRDs and `kubectl wait` until ImageMirror's is Established.
    async fn install_crds(&self) {
        self.apply(&crds_yaml()).await;
        let out = self
            .kubectl(&[
                "wait",
                "--for=condition=Established",
                "crd/imagemirrors.kubemirror.dev",
                "--timeout=30s",
            ])
            .await;
        assert!(out.ok, "{out:?}");
    }

    fn client(&self) -> kube::Client {
        kube::Client::try_from(kube::Config::new(self.emu.url().parse().unwrap())).unwrap()
    }
}

fn condition<'a>(obj: &'a Value, type_: &str) -> Option<&'a Value> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

/// A one-layer image as `team/app:TAG` in `src`.
fn push(src: &Registry, dir: &std::path::Path, tag: &str, seed: &str) {
    let args = ["--layers", "1", "--layer-size", "2K", "--seed", seed];
    support::push(src, dir, &format!("team/app:{tag}"), &args);
}

/// The raw HTTP/1.0 response, or an empty string when nothing answers (yet).
async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
        return String::new();
    };
    let mut body = String::new();
    let req = format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n");
    if s.write_all(req.as_bytes()).await.is_ok() {
        let _ = s.read_to_string(&mut body).await;
    }
    body
}

fn local_addr() -> std::net::SocketAddr {
    format!("127.0.0.1:{}", support::free_port())
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn controller_mirrors_inspects_and_reports() {
    let cluster = Cluster::start().await;
    cluster.apply(&crds_yaml()).await;
    for crd in [
        "imagemirrors.kubemirror.dev",
        "imageinspections.kubemirror.dev",
    ] {
        let out = cluster
            .kubectl(&[
                "wait",
                "--for=condition=Established",
                &format!("crd/{crd}"),
                "--timeout=30s",
            ])
            .await;
        assert!(out.ok, "{out:?}");
    }

    // Registries: a plain source with two tags, a Basic-auth TLS destination.
    let src = Registry::plain();
    let dst = Registry::basic_auth("mirror", "pa55-word");
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("img");
    push(&src, &layout, "1.0.0", "1");
    push(&src, &layout, "1.1.0", "2");

    // An invalid ImageMirror is refused by the schema, naming the field.
    let bad = format!(
        "apiVersion: kubemirror.dev/v1alpha1\nkind: ImageMirror\nmetadata: {{name: bad, namespace: default}}\nspec:\n  source: {{repository: {0}/team/app}}\n  destination: {{repository: {0}/x}}\n  tags: {{names: [v1]}}\n  signatures: Keep\n",
        src.host
    );
    let out = cluster.kubectl_in(&["apply", "-f", "-"], &bad).await;
    assert!(!out.ok, "{out:?}");
    assert!(out.stderr.contains("spec.signatures"), "{out:?}");
    // `tags: {}` fails `minProperties: 1` on a real API server; the emulator
    // does not check it, so the controller refuses it as Stalled (below).
    let no_selector = bad
        .replace("  signatures: Keep\n", "")
        .replace("{names: [v1]}", "{}");
    let out = cluster
        .kubectl_in(&["apply", "-f", "-"], &no_selector)
        .await;
    let schema_refused = !out.ok && out.stderr.contains("spec.tags");

    // The controller, in process, with leader election.
    let metrics_addr = local_addr();
    let health_addr = local_addr();
    let shutdown = CancellationToken::new();
    let config = Config {
        metrics_addr,
        health_addr,
        leader_elect: true,
        lease_namespace: Some("default".into()),
        identity: Some("test-replica".into()),
        concurrency: 4,
        ..Default::default()
    };
    let running = tokio::spawn(controller::run(cluster.client(), config, shutdown.clone()));

    // Secrets: destination credentials and CA.
    cluster
        .create_via_apply(&[
            "secret",
            "docker-registry",
            "push",
            &format!("--docker-server={}", dst.host),
            "--docker-username=mirror",
            "--docker-password=pa55-word",
        ])
        .await;
    let ca = dst.cert_dir().join("ca.crt");
    cluster
        .create_via_apply(&[
            "secret",
            "generic",
            "dst-ca",
            &format!("--from-file=ca.crt={}", ca.display()),
        ])
        .await;

    let mirror = format!(
        "apiVersion: kubemirror.dev/v1alpha1
kind: ImageMirror
metadata: {{name: app, namespace: default}}
spec:
  source: {{repository: {src}/team/app, tlsVerify: false}}
  destination:
    repository: {dst}/mirror/app
    credentialsSecretRef: {{name: push}}
    caSecretRef: {{name: dst-ca, key: ca.crt}}
  tags: {{semver: '>=1.0.0 <2.0.0'}}
  interval: 2s
",
        src = src.host,
        dst = dst.host
    );
    cluster.apply(&mirror).await;
    let out = cluster
        .kubectl(&[
            "wait",
            "--for=condition=Ready",
            "imagemirror/app",
            "--timeout=60s",
        ])
        .await;
    assert!(
        out.ok,
        "not Ready: {out:?}\n{:#}",
        cluster.get_json("imagemirror/app").await
    );

    // Status per-tag digests are what skopeo sees on both sides.
    let obj = cluster.get_json("imagemirror/app").await;
    let tags = obj["status"]["tags"].as_array().unwrap();
    assert_eq!(tags.len(), 2, "{obj:#}");
    let cert_dir = format!("--cert-dir={}", dst.cert_dir().display());
    for t in tags {
        let name = t["name"].as_str().unwrap();
        let at_dst = skopeo_digest(&[
            "--creds=mirror:pa55-word",
            &cert_dir,
            &dst.image(&format!("mirror/app:{name}")),
        ]);
        assert_eq!(t["destinationDigest"].as_str().unwrap(), at_dst, "{name}");
        let at_src = skopeo_digest(&[
            "--tls-verify=false",
            &src.image(&format!("team/app:{name}")),
        ]);
        assert_eq!(t["sourceDigest"].as_str().unwrap(), at_src, "{name}");
    }
    assert!(
        !obj.to_string().contains("pa55-word"),
        "no credential in status"
    );
    let ready = condition(&obj, "Ready").unwrap();
    assert_eq!(ready["observedGeneration"], obj["metadata"]["generation"]);

    // Printer columns.
    let out = cluster.kubectl(&["get", "imagemirrors"]).await;
    assert!(out.ok, "{out:?}");
    let header: Vec<&str> = out
        .stdout
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NAME",
            "SOURCE",
            "DESTINATION",
            "READY",
            "SYNCED",
            "LAST",
            "SYNC",
            "AGE"
        ],
        "{}",
        out.stdout
    );
    let row = out.stdout.lines().nth(1).unwrap();
    assert!(
        row.contains("True") && row.contains(&format!("{}/mirror/app", dst.host)),
        "{row}"
    );

    // A new upstream tag inside the selection is mirrored at the next interval; one outside is not.
    push(&src, &layout, "1.2.0", "3");
    push(&src, &layout, "3.0.0", "4");
    let obj = eventually(30, "1.2.0 mirrored", || async {
        let o = cluster.get_json("imagemirror/app").await;
        let names: Vec<String> = o["status"]["tags"]
            .as_array()?
            .iter()
            .map(|t| t["name"].as_str().unwrap_or_default().to_string())
            .collect();
        names.contains(&"1.2.0".to_string()).then_some(o)
    })
    .await;
    assert_eq!(obj["status"]["summary"]["synced"], 3, "{obj:#}");
    assert!(!obj.to_string().contains("\"3.0.0\""));
    let at_dst = skopeo_digest(&[
        "--creds=mirror:pa55-word",
        &cert_dir,
        &dst.image("mirror/app:1.2.0"),
    ]);
    let t = obj["status"]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "1.2.0")
        .unwrap();
    assert_eq!(t["destinationDigest"].as_str().unwrap(), at_dst);

    // A missing Secret shows as Stalled naming it; creating it re-triggers the object.
    cluster
        .apply(&format!(
            "apiVersion: kubemirror.dev/v1alpha1\nkind: ImageMirror\nmetadata: {{name: later, namespace: default}}\nspec:\n  source: {{repository: {0}/team/app, tlsVerify: false, credentialsSecretRef: {{name: src-pull}}}}\n  destination: {{repository: {0}/copy/app, tlsVerify: false}}\n  tags: {{names: ['1.0.0']}}\n",
            src.host
        ))
        .await;
    let stalled = eventually(30, "Stalled naming src-pull", || async {
        let o = cluster.get_json("imagemirror/later").await;
        condition(&o, "Stalled")
            .filter(|c| c["status"] == "True")
            .cloned()
    })
    .await;
    assert_eq!(stalled["reason"], "SecretNotFound");
    assert!(
        stalled["message"]
            .as_str()
            .unwrap()
            .contains("\"src-pull\""),
        "{stalled}"
    );
    cluster
        .create_via_apply(&[
            "secret",
            "docker-registry",
            "src-pull",
            &format!("--docker-server={}", src.host),
            "--docker-username=any",
            "--docker-password=any",
        ])
        .await;
    let out = cluster
        .kubectl(&[
            "wait",
            "--for=condition=Ready",
            "imagemirror/later",
            "--timeout=30s",
        ])
        .await;
    assert!(
        out.ok,
        "the Secret did not re-trigger: {out:?}\n{:#}",
        cluster.get_json("imagemirror/later").await
    );

    if !schema_refused {
        let stalled = eventually(30, "Stalled without a tag selector", || async {
            let o = cluster.get_json("imagemirror/bad").await;
            condition(&o, "Stalled")
                .filter(|c| c["status"] == "True")
                .cloned()
        })
        .await;
        assert!(
            stalled["message"]
                .as_str()
                .unwrap()
                .starts_with("spec.tags: give at least one selector"),
            "{stalled}"
        );
    }

    // An ImageInspection of the mirrored image.
    cluster
        .apply(&format!(
            "apiVersion: kubemirror.dev/v1alpha1\nkind: ImageInspection\nmetadata: {{name: app, namespace: default}}\nspec:\n  image: {}/mirror/app:1.1.0\n  credentialsSecretRef: {{name: push}}\n  caSecretRef: {{name: dst-ca, key: ca.crt}}\n",
            dst.host
        ))
        .await;
    let out = cluster
        .kubectl(&[
            "wait",
            "--for=condition=Ready",
            "imageinspection/app",
            "--timeout=30s",
        ])
        .await;
    assert!(
        out.ok,
        "{out:?}\n{:#}",
        cluster.get_json("imageinspection/app").await
    );
    let obj = cluster.get_json("imageinspection/app").await;
    let at_dst = skopeo_digest(&[
        "--creds=mirror:pa55-word",
        &cert_dir,
        &dst.image("mirror/app:1.1.0"),
    ]);
    assert_eq!(obj["status"]["digest"].as_str().unwrap(), at_dst);
    let mut repo_tags: Vec<&str> = obj["status"]["repoTags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    repo_tags.sort();
    assert_eq!(repo_tags, ["1.0.0", "1.1.0", "1.2.0"]);
    let out = cluster.kubectl(&["get", "iinsp"]).await;
    let header: Vec<&str> = out
        .stdout
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NAME",
            "IMAGE",
            "DIGEST",
            "ARCH",
            "READY",
            "SIGNATURES",
            "AGE"
        ],
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(&at_dst) && out.stdout.contains("amd64"),
        "{}",
        out.stdout
    );

    // Events, metrics, probes.
    let events: kube::Api<k8s_openapi::api::events::v1::Event> =
        kube::Api::namespaced(cluster.client(), "default");
    let list = events.list(&Default::default()).await.unwrap();
    assert!(
        list.items
            .iter()
            .any(|e| e.reason.as_deref() == Some("Synced")
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("app")),
        "no Synced event: {:?}",
        list.items
            .iter()
            .map(|e| (&e.reason, &e.note))
            .collect::<Vec<_>>()
    );
    assert!(
        list.items
            .iter()
            .all(|e| !e.note.clone().unwrap_or_default().contains("pa55-word"))
    );
    let metrics = http_get(metrics_addr, "/metrics").await;
    assert!(
        metrics.contains("kubemirror_tags_synced_total"),
        "{metrics}"
    );
    assert!(
        metrics.contains("kubemirror_registry_requests_total"),
        "{metrics}"
    );
    assert!(
        metrics.contains("kubemirror_reconcile_duration_seconds_bucket"),
        "{metrics}"
    );
    assert!(
        http_get(health_addr, "/healthz")
            .await
            .starts_with("HTTP/1.0 200")
    );
    assert!(
        http_get(health_addr, "/readyz")
            .await
            .starts_with("HTTP/1.0 200")
    );
    let lease = cluster.get_json("lease/kubemirror-controller").await;
    assert_eq!(lease["spec"]["holderIdentity"], "test-replica");

    // Graceful shutdown.
    shutdown.cancel();
    let r = tokio::time::timeout(Duration::from_secs(20), running)
        .await
        .expect("controller stops on shutdown")
        .unwrap();
    assert!(r.is_ok(), "{r:?}");
}

/// Two replicas with leader election: only the Lease holder reconciles; when
/// it shuts down (releasing the Lease) the standby takes over. Both watch one
/// namespace (`--namespace`); the mirror is between local OCI layouts.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leader_election_hands_over_on_shutdown() {
    let cluster = Cluster::start().await;
    cluster.install_crds().await;
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("out");
    let hello = support::repo_root().join("examples/images/hello");
    let start = |identity: &str| {
        let shutdown = CancellationToken::new();
        let health_addr = local_addr();
        let config = Config {
            metrics_addr: health_addr,
            health_addr,
            leader_elect: true,
            lease_namespace: Some("default".into()),
            identity: Some(identity.into()),
            namespace: Some("default".into()),
            // The objects use OCI layouts: allowed under these directories.
            local_transports: kubemirror::reconcile::LocalTransports::under(&[
                hello.clone(),
                tmp.path().to_path_buf(),
            ])
            .unwrap(),
            ..Default::default()
        };
        let handle = tokio::spawn(controller::run(cluster.client(), config, shutdown.clone()));
        (shutdown, handle, health_addr)
    };
    let holder = || async {
        let o = cluster
            .kubectl(&["get", "lease/kubemirror-controller", "-o", "json"])
            .await;
        if !o.ok {
            return None;
        }
        let v: Value = serde_json::from_str(&o.stdout).ok()?;
        v["spec"]["holderIdentity"].as_str().map(str::to_string)
    };

    let (stop_a, run_a, _) = start("replica-a");
    eventually(30, "replica-a holds the Lease", || async {
        (holder().await.as_deref() == Some("replica-a")).then_some(())
    })
    .await;
    let (stop_b, run_b, health_b) = start("replica-b");
    eventually(10, "replica-b ready while standing by", || async {
        let r = tokio::time::timeout(Duration::from_secs(2), http_get(health_b, "/readyz")).await;
        r.ok().filter(|b| b.starts_with("HTTP/1.0 200")).map(|_| ())
    })
    .await;

    let mirror = |names: &str| {
        format!(
            "apiVersion: kubemirror.dev/v1alpha1\nkind: ImageMirror\nmetadata: {{name: hello, namespace: default}}\nspec:\n  source: {{repository: 'oci:{}'}}\n  destination: {{repository: 'oci:{}'}}\n  tags: {{names: [{names}]}}\n",
            hello.display(),
            dest.display()
        )
    };
    cluster.apply(&mirror("'1.0.0'")).await;
    let out = cluster
        .kubectl(&[
            "wait",
            "--for=condition=Ready",
            "imagemirror/hello",
            "--timeout=30s",
        ])
        .await;
    assert!(out.ok, "{out:?}");
    assert_eq!(holder().await.as_deref(), Some("replica-a"));

    // The leader stops; the standby takes the Lease and reconciles the next change.
    stop_a.cancel();
    let r = tokio::time::timeout(Duration::from_secs(20), run_a)
        .await
        .expect("replica-a stops")
        .unwrap();
    assert!(r.is_ok(), "{r:?}");
    eventually(40, "replica-b holds the Lease", || async {
        (holder().await.as_deref() == Some("replica-b")).then_some(())
    })
    .await;
    cluster.apply(&mirror("'1.0.0', '1.1.0'")).await;
    let obj = eventually(30, "generation 2 reconciled by replica-b", || async {
        let o = cluster.get_json("imagemirror/hello").await;
        let ready = condition(&o, "Ready")?;
        (ready["status"] == "True" && ready["observedGeneration"] == 2).then_some(o)
    })
    .await;
    assert_eq!(obj["status"]["summary"]["synced"], 2, "{obj:#}");

    stop_b.cancel();
    let r = tokio::time::timeout(Duration::from_secs(20), run_b)
        .await
        .expect("replica-b stops")
        .unwrap();
    assert!(r.is_ok(), "{r:?}");
}

/// Reconciles happen for a spec change, an explicit request (the
/// `reconcile.kubemirror.dev/requestedAt` annotation, as `flux reconcile`)
/// and the interval — not for the controller's own status writes, so an
/// object at rest costs nothing. Each reconcile that reaches the registries
/// moves `lastSyncTime`, also when nothing changed; a no-op sync is one HEAD
/// at each end.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requested_reconcile_syncs_now_and_own_writes_start_none() {
    let cluster = Cluster::start().await;
    cluster.install_crds().await;
    let src = Registry::plain();
    let dst = Registry::plain();
    let tmp = tempfile::tempdir().unwrap();
    push(&src, &tmp.path().join("a"), "1.0.0", "1");
    let proxy = support::proxy::Proxy::start(&src.base_url()).await;
    let dproxy = support::proxy::Proxy::start(&dst.base_url()).await;
    cluster
        .apply(&format!(
            "apiVersion: kubemirror.dev/v1alpha1\nkind: ImageMirror\nmetadata: {{name: app, namespace: default}}\nspec:\n  source: {{repository: {}/team/app, tlsVerify: false}}\n  destination: {{repository: {}/mirror/app, tlsVerify: false}}\n  tags: {{names: ['1.0.0']}}\n  interval: 1h\n",
            proxy.host, dproxy.host
        ))
        .await;
    let health_addr = local_addr();
    let shutdown = CancellationToken::new();
    let config = Config {
        metrics_addr: health_addr,
        health_addr,
        ..Default::default()
    };
    let running = tokio::spawn(controller::run(cluster.client(), config, shutdown.clone()));
    let ready_since = |o: &Value| -> Option<String> {
        let c = condition(o, "Ready")?;
        (c["status"] == "True").then(|| o["status"]["lastSyncTime"].as_str().map(str::to_string))?
    };
    let t1 = eventually(60, "Ready", || async {
        ready_since(&cluster.get_json("imagemirror/app").await)
    })
    .await;

    // At rest: the last status write started no reconcile (no registry request).
    let sent = proxy.log().len() + dproxy.log().len();
    let hooks = cluster.emu.hooks();
    let writes = || {
        hooks
            .requests()
            .iter()
            .filter(|r| r.method == "PATCH" && r.path.ends_with("/imagemirrors/app/status"))
            .count()
    };
    let status_writes = writes();
    tokio::time::sleep(Duration::from_secs(3)).await; // a window in which nothing may happen
    assert_eq!(
        proxy.log().len() + dproxy.log().len(),
        sent,
        "reconciled at rest"
    );
    assert_eq!(writes(), status_writes, "status rewritten at rest");

    // The tag moves upstream; a requested reconcile picks it up now (interval: 1h).
    push(&src, &tmp.path().join("b"), "1.0.0", "2");
    let moved = skopeo_digest(&["--tls-verify=false", &src.image("team/app:1.0.0")]);
    let annotate = |v: &'static str| {
        let cluster = &cluster;
        async move {
            let out = cluster
                .kubectl(&[
                    "annotate",
                    "imagemirror/app",
                    &format!("reconcile.kubemirror.dev/requestedAt={v}"),
                    "--overwrite",
                ])
                .await;
            assert!(out.ok, "{out:?}");
        }
    };
    annotate("1").await;
    let obj = eventually(30, "the moved tag mirrored", || async {
        let o = cluster.get_json("imagemirror/app").await;
        (o["status"]["tags"][0]["destinationDigest"] == moved.as_str()).then_some(o)
    })
    .await;
    let t2 = obj["status"]["lastSyncTime"].as_str().unwrap().to_string();
    assert!(t2 >= t1, "{t1} {t2}");

    // Nothing changed: a requested reconcile is one HEAD per side, and lastSyncTime moves.
    let second = |t: &str| t.parse::<jiff::Timestamp>().unwrap().as_second();
    eventually(5, "the clock past lastSyncTime's second", || async {
        (jiff::Timestamp::now().as_second() > second(&t2)).then_some(())
    })
    .await;
    proxy.clear_log();
    dproxy.clear_log();
    annotate("2").await;
    eventually(30, "lastSyncTime moved", || async {
        let o = cluster.get_json("imagemirror/app").await;
        let t = o["status"]["lastSyncTime"].as_str()?.to_string();
        (second(&t) > second(&t2)).then_some(())
    })
    .await;
    let seen: Vec<String> = proxy
        .log()
        .iter()
        .chain(dproxy.log().iter())
        .map(|s| format!("{} {}", s.method, s.path))
        .collect();
    assert_eq!(
        seen,
        [
            "HEAD /v2/team/app/manifests/1.0.0",
            "HEAD /v2/mirror/app/manifests/1.0.0"
        ],
        "a no-op sync"
    );

    shutdown.cancel();
    let r = tokio::time::timeout(Duration::from_secs(20), running)
        .await
        .expect("controller stops")
        .unwrap();
    assert!(r.is_ok(), "{r:?}");
}

//! A true mirror (issue 17): prune, drift, suspend and deletion, through the
//! paths users take — kubectl against kube-emulator with the controller
//! running, real Distribution registries (deletes enabled unless a test says
//! otherwise), skopeo changing the registries behind the mirror's back — and
//! `kubemirror sync -f [--dry-run]` for the command line.
mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use support::kubectl::Out;
use support::registry::{Registry, RegistryOptions};
use tokio_util::sync::CancellationToken;

use kubemirror::api::v1alpha1::crds_yaml;
use kubemirror::controller::{self, Config};

struct Cluster {
    emu: kube_emulator::Emulator,
    dir: tempfile::TempDir,
}

impl Cluster {
    async fn start() -> Cluster {
        let emu = kube_emulator::Emulator::start("127.0.0.1:0")
            .await
            .expect("start emulator");
        let dir = tempfile::tempdir().unwrap();
        emu.write_kubeconfig(dir.path().join("kubeconfig")).unwrap();
        let c = Cluster { emu, dir };
        c.apply(&crds_yaml()).await;
        let out = c
            .kubectl(&[
                "wait",
                "--for=condition=Established",
                "crd/imagemirrors.kubemirror.dev",
                "--timeout=30s",
            ])
            .await;
        assert!(out.ok, "{out:?}");
        c
    }

    async fn kubectl_in(&self, args: &[&str], stdin: &str) -> Out {
        support::kubectl::in_dir(self.dir.path(), args, stdin).await
    }

    async fn kubectl(&self, args: &[&str]) -> Out {
        self.kubectl_in(args, "").await
    }

    async fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args).await;
        assert!(out.ok, "kubectl {args:?}: {out:?}");
        out.stdout
    }

    async fn apply(&self, yaml: &str) {
        let out = self.kubectl_in(&["apply", "-f", "-"], yaml).await;
        assert!(out.ok, "kubectl apply failed: {out:?}\n{yaml}");
    }

    /// The object, or `None` once it is gone.
    async fn get(&self, name: &str) -> Option<Value> {
        let out = self
            .kubectl(&["get", &format!("imagemirror/{name}"), "-o", "json"])
            .await;
        if !out.ok {
            assert!(out.stderr.contains("NotFound"), "{out:?}");
            return None;
        }
        Some(serde_json::from_str(&out.stdout).unwrap())
    }

    fn client(&self) -> kube::Client {
        kube::Client::try_from(kube::Config::new(self.emu.url().parse().unwrap())).unwrap()
    }

    /// The controller in process; stop it with the token.
    fn controller(&self) -> (CancellationToken, tokio::task::JoinHandle<()>, String) {
        let addr = format!("127.0.0.1:{}", support::free_port());
        let health = format!("127.0.0.1:{}", support::free_port());
        let shutdown = CancellationToken::new();
        let config = Config {
            metrics_addr: addr.parse().unwrap(),
            health_addr: health.parse().unwrap(),
            ..Default::default()
        };
        let client = self.client();
        let token = shutdown.clone();
        let h = tokio::spawn(async move {
            controller::run(client, config, token).await.unwrap();
        });
        (shutdown, h, addr)
    }
}

/// Poll `f` until it returns `Some`, failing with `what` after `secs` seconds.
async fn eventually<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {secs}s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn ready(obj: &Value) -> Option<&Value> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")
}

/// Ready's reason once the object's current generation is reconciled.
fn reason(obj: &Value) -> Option<String> {
    let c = ready(obj)?;
    (c["observedGeneration"] == obj["metadata"]["generation"])
        .then(|| c["reason"].as_str().unwrap_or_default().to_string())
}

fn tag_entry<'a>(obj: &'a Value, tag: &str) -> Option<&'a Value> {
    obj["status"]["tags"]
        .as_array()?
        .iter()
        .find(|t| t["name"] == tag)
}

fn pruned<'a>(obj: &'a Value, tag: &str) -> Option<&'a Value> {
    obj["status"]["pruned"]
        .as_array()?
        .iter()
        .find(|t| t["name"] == tag)
}

/// Push a small distinct image (`seed`) to `docker://HOST/REPO:TAG`.
fn push(tmp: &Path, host: &str, repo_tag: &str, seed: &str) {
    let layout = tmp.join(format!("img-{seed}"));
    if !layout.exists() {
        let n = seed
            .bytes()
            .fold(17u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32))
            .to_string();
        support::mkimage(
            &layout,
            &[
                "--tag",
                "t",
                "--layers",
                "1",
                "--layer-size",
                "1K",
                "--seed",
                &n,
            ],
        );
    }
    support::run(
        support::skopeo()
            .args(["copy", "-q", "--dest-tls-verify=false"])
            .arg(format!("oci:{}:t", layout.display()))
            .arg(format!("docker://{host}/{repo_tag}")),
    );
}

/// The digest `HOST/REPO:TAG` names, `None` when absent.
fn digest(host: &str, repo_tag: &str) -> Option<String> {
    let out = support::skopeo()
        .args(["inspect", "--tls-verify=false", "--raw"])
        .arg(format!("docker://{host}/{repo_tag}"))
        .output()
        .unwrap();
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("manifest unknown"), "skopeo: {err}");
        return None;
    }
    Some(kubemirror::digest::sha256(&out.stdout).to_string())
}

fn delete(host: &str, repo_tag: &str) {
    support::run(
        support::skopeo()
            .args(["delete", "--tls-verify=false"])
            .arg(format!("docker://{host}/{repo_tag}")),
    );
}

fn tags(host: &str, repo: &str) -> Vec<String> {
    let out = support::skopeo()
        .args(["list-tags", "--tls-verify=false"])
        .arg(format!("docker://{host}/{repo}"))
        .output()
        .unwrap();
    if !out.status.success() {
        return Vec::new();
    }
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut t: Vec<String> = v["Tags"]
        .as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
        .unwrap_or_default();
    t.sort();
    t
}

fn mirror_yaml(name: &str, src: &str, dst: &str, extra: &str) -> String {
    format!(
        "apiVersion: kubemirror.dev/v1alpha1\nkind: ImageMirror\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  source: {{repository: {src}, tlsVerify: false}}\n  destination: {{repository: {dst}, tlsVerify: false}}\n  interval: 1h\n{extra}"
    )
}

async fn request_reconcile(c: &Cluster, name: &str, v: &str) {
    c.ok(&[
        "annotate",
        &format!("imagemirror/{name}"),
        &format!("reconcile.kubemirror.dev/requestedAt={v}"),
        "--overwrite",
    ])
    .await;
}

async fn wait_reason(c: &Cluster, name: &str, want: &str) -> Value {
    let mut last = Value::Null;
    let r = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if let Some(o) = c.get(name).await {
                if reason(&o).as_deref() == Some(want) {
                    return o;
                }
                last = o;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    r.unwrap_or_else(|_| panic!("imagemirror/{name} never {want}: {last:#}"))
}

/// Prune removes what left the selection, only with prune on, only what the
/// mirror wrote; after the status is wiped and the controller restarted it
/// still touches only that (the record at the destination says what).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn prune_deletes_only_what_the_mirror_wrote_even_after_status_loss() {
    let c = Cluster::start().await;
    let (src, dst) = (Registry::plain(), Registry::plain());
    let tmp = tempfile::tempdir().unwrap();
    for (t, seed) in [("1.0.0", "a"), ("1.1.0", "b"), ("1.2.0", "c")] {
        push(tmp.path(), &src.host, &format!("team/app:{t}"), seed);
    }
    // Written at the destination by someone else: in the semver range, not at the source.
    push(tmp.path(), &dst.host, "mirror/app:1.3.0", "x");
    push(tmp.path(), &dst.host, "mirror/app:foreign", "y");
    let srepo = format!("{}/team/app", src.host);
    let sel = "  tags: {semver: '>=1.0.0'}\n";
    c.apply(&mirror_yaml(
        "app",
        &srepo,
        &format!("{}/mirror/app", dst.host),
        &format!("{sel}  prune: true\n"),
    ))
    .await;
    c.apply(&mirror_yaml(
        "plain",
        &srepo,
        &format!("{}/mirror/plain", dst.host),
        sel,
    ))
    .await;
    let (stop, running, _) = c.controller();
    wait_reason(&c, "app", "Synced").await;
    wait_reason(&c, "plain", "Synced").await;
    assert_eq!(tags(&dst.host, "mirror/plain"), ["1.0.0", "1.1.0", "1.2.0"]);

    // 1.0.0 goes at the source: only the pruning mirror deletes it.
    delete(&src.host, "team/app:1.0.0");
    request_reconcile(&c, "app", "1").await;
    request_reconcile(&c, "plain", "1").await;
    let o = eventually(60, "1.0.0 pruned", || async {
        let o = c.get("app").await?;
        (pruned(&o, "1.0.0")?["action"] == "Deleted").then_some(o)
    })
    .await;
    assert_eq!(reason(&o).as_deref(), Some("Synced"), "{o:#}");
    assert!(
        ready(&o).unwrap()["message"]
            .as_str()
            .unwrap()
            .contains("pruned 1 tags")
    );
    let app_tags = tags(&dst.host, "mirror/app");
    assert!(!app_tags.contains(&"1.0.0".to_string()), "{app_tags:?}");
    for t in ["1.1.0", "1.2.0", "1.3.0", "foreign"] {
        assert!(app_tags.contains(&t.to_string()), "{t} kept: {app_tags:?}");
    }
    eventually(30, "plain reconciled", || async {
        let o = c.get("plain").await?;
        (o["status"]["summary"]["selected"] == 2).then_some(())
    })
    .await;
    assert_eq!(
        tags(&dst.host, "mirror/plain"),
        ["1.0.0", "1.1.0", "1.2.0"],
        "without prune nothing is deleted"
    );

    // Controller stopped, status wiped; meanwhile the source loses 1.1.0
    // and 1.2.0, and someone overwrites mirror/app:1.1.0.
    stop.cancel();
    running.await.unwrap();
    c.ok(&[
        "patch",
        "imagemirror/app",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":null}"#,
    ])
    .await;
    let wiped = c.get("app").await.unwrap();
    assert!(
        wiped.get("status").is_none_or(|s| s.get("tags").is_none()),
        "{wiped:#}"
    );
    delete(&src.host, "team/app:1.1.0");
    delete(&src.host, "team/app:1.2.0");
    push(tmp.path(), &dst.host, "mirror/app:1.1.0", "z");
    let overwritten = digest(&dst.host, "mirror/app:1.1.0").unwrap();
    let (stop, running, _) = c.controller();
    let o = eventually(60, "the prune after the restart", || async {
        let o = c.get("app").await?;
        (pruned(&o, "1.2.0")?["action"] == "Deleted").then_some(o)
    })
    .await;
    let skipped = pruned(&o, "1.1.0").expect("1.1.0 in the plan");
    assert_eq!(skipped["action"], "Skipped", "{o:#}");
    assert!(
        skipped["reason"]
            .as_str()
            .unwrap()
            .contains("changed by someone else"),
        "{skipped}"
    );
    assert_eq!(
        tags(&dst.host, "mirror/app")
            .into_iter()
            .filter(|t| !t.starts_with("kubemirror-record."))
            .collect::<Vec<_>>(),
        ["1.1.0", "1.3.0", "foreign"]
    );
    assert_eq!(digest(&dst.host, "mirror/app:1.1.0"), Some(overwritten));
    stop.cancel();
    running.await.unwrap();
}

/// A source that lists none of the tags: at most `pruneLimit` are deleted
/// (here: none, the plan is over the limit, and the object says so);
/// raising the limit lets the prune happen at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_source_listing_no_tags_deletes_at_most_prune_limit() {
    let c = Cluster::start().await;
    let (src, dst) = (Registry::plain(), Registry::plain());
    let tmp = tempfile::tempdir().unwrap();
    for (t, seed) in [("1.0", "a"), ("1.1", "b"), ("1.2", "c"), ("other", "d")] {
        push(tmp.path(), &src.host, &format!("team/app:{t}"), seed);
    }
    let yaml = |limit: u32| {
        mirror_yaml(
            "app",
            &format!("{}/team/app", src.host),
            &format!("{}/mirror/app", dst.host),
            &format!("  tags: {{pattern: '^1\\.'}}\n  prune: true\n  pruneLimit: {limit}\n"),
        )
    };
    c.apply(&yaml(2)).await;
    let (stop, running, _) = c.controller();
    wait_reason(&c, "app", "Synced").await;
    for t in ["1.0", "1.1", "1.2"] {
        delete(&src.host, &format!("team/app:{t}"));
    }
    request_reconcile(&c, "app", "1").await;
    let o = wait_reason(&c, "app", "PruneLimitExceeded").await;
    let msg = ready(&o).unwrap()["message"].as_str().unwrap();
    assert!(msg.contains("more than spec.pruneLimit 2"), "{msg}");
    assert_eq!(ready(&o).unwrap()["status"], "False");
    for t in ["1.0", "1.1", "1.2"] {
        assert_eq!(pruned(&o, t).unwrap()["action"], "Pending", "{o:#}");
        assert!(
            digest(&dst.host, &format!("mirror/app:{t}")).is_some(),
            "{t} deleted"
        );
    }
    c.apply(&yaml(3)).await;
    let o = wait_reason(&c, "app", "Synced").await;
    assert_eq!(pruned(&o, "1.1").unwrap()["action"], "Deleted", "{o:#}");
    for t in ["1.0", "1.1", "1.2"] {
        assert_eq!(digest(&dst.host, &format!("mirror/app:{t}")), None);
    }
    stop.cancel();
    running.await.unwrap();
}

/// A destination tag overwritten by another push: reported (tag status,
/// Event, metric) and restored by default, left with `driftPolicy: Keep`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn drift_is_reported_and_restored_or_kept() {
    let c = Cluster::start().await;
    let (src, dst) = (Registry::plain(), Registry::plain());
    let tmp = tempfile::tempdir().unwrap();
    push(tmp.path(), &src.host, "team/app:1.0", "a");
    let want = digest(&src.host, "team/app:1.0").unwrap();
    let srepo = format!("{}/team/app", src.host);
    let sel = "  tags: {names: ['1.0']}\n";
    c.apply(&mirror_yaml(
        "over",
        &srepo,
        &format!("{}/mirror/over", dst.host),
        sel,
    ))
    .await;
    c.apply(&mirror_yaml(
        "keep",
        &srepo,
        &format!("{}/mirror/keep", dst.host),
        &format!("{sel}  driftPolicy: Keep\n"),
    ))
    .await;
    let (stop, running, metrics) = c.controller();
    wait_reason(&c, "over", "Synced").await;
    wait_reason(&c, "keep", "Synced").await;
    push(tmp.path(), &dst.host, "mirror/over:1.0", "evil");
    push(tmp.path(), &dst.host, "mirror/keep:1.0", "evil");
    let evil = digest(&dst.host, "mirror/keep:1.0").unwrap();
    request_reconcile(&c, "over", "1").await;
    request_reconcile(&c, "keep", "1").await;

    let o = eventually(60, "drift restored", || async {
        let o = c.get("over").await?;
        (tag_entry(&o, "1.0")?["drifted"] == true).then_some(o)
    })
    .await;
    assert_eq!(
        digest(&dst.host, "mirror/over:1.0").as_deref(),
        Some(want.as_str())
    );
    assert_eq!(reason(&o).as_deref(), Some("Synced"));
    assert!(
        ready(&o).unwrap()["message"]
            .as_str()
            .unwrap()
            .contains("restored 1.0"),
        "{o:#}"
    );

    let o = wait_reason(&c, "keep", "Drifted").await;
    assert_eq!(tag_entry(&o, "1.0").unwrap()["drifted"], true, "{o:#}");
    assert_eq!(
        tag_entry(&o, "1.0").unwrap()["destinationDigest"],
        evil.as_str()
    );
    assert_eq!(
        digest(&dst.host, "mirror/keep:1.0"),
        Some(evil.clone()),
        "kept"
    );
    // Still kept on the next sync (judged against what the mirror wrote).
    request_reconcile(&c, "keep", "2").await;
    eventually(30, "keep re-synced", || async {
        let o = c.get("keep").await?;
        (o["metadata"]["annotations"]["reconcile.kubemirror.dev/requestedAt"] == "2"
            && reason(&o).as_deref() == Some("Drifted"))
        .then_some(())
    })
    .await;
    assert_eq!(digest(&dst.host, "mirror/keep:1.0"), Some(evil));

    let events = c.ok(&["get", "events.events.k8s.io", "-o", "json"]).await;
    let ev: Value = serde_json::from_str(&events).unwrap();
    let drifted: Vec<&Value> = ev["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["reason"] == "Drifted")
        .collect();
    assert!(
        drifted.iter().any(|e| e["regarding"]["name"] == "over"
            && e["note"].as_str().unwrap().contains("restored")),
        "{drifted:#?}"
    );
    assert!(
        drifted.iter().any(|e| e["regarding"]["name"] == "keep"),
        "{drifted:#?}"
    );
    let body = reqwest::get(format!("http://{metrics}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let n: f64 = body
        .lines()
        .find_map(|l| l.strip_prefix("kubemirror_tags_drifted_total "))
        .expect("drift metric")
        .parse()
        .unwrap();
    assert!(n >= 2.0, "{n}");
    stop.cancel();
    running.await.unwrap();
}

/// `suspend: true` shows as Ready=False reason Suspended; resuming syncs at
/// once (the interval is an hour).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn suspend_shows_and_resuming_syncs_at_once() {
    let c = Cluster::start().await;
    let (src, dst) = (Registry::plain(), Registry::plain());
    let tmp = tempfile::tempdir().unwrap();
    push(tmp.path(), &src.host, "team/app:1.0", "a");
    let yaml = |suspend: bool| {
        mirror_yaml(
            "app",
            &format!("{}/team/app", src.host),
            &format!("{}/mirror/app", dst.host),
            &format!("  tags: {{names: ['1.0']}}\n  suspend: {suspend}\n"),
        )
    };
    c.apply(&yaml(true)).await;
    let (stop, running, _) = c.controller();
    let o = wait_reason(&c, "app", "Suspended").await;
    assert_eq!(ready(&o).unwrap()["status"], "False");
    assert!(
        ready(&o).unwrap()["message"]
            .as_str()
            .unwrap()
            .contains("spec.suspend")
    );
    assert_eq!(
        digest(&dst.host, "mirror/app:1.0"),
        None,
        "nothing synced while suspended"
    );
    c.apply(&yaml(false)).await;
    let o = wait_reason(&c, "app", "Synced").await;
    assert_eq!(ready(&o).unwrap()["status"], "True");
    assert!(digest(&dst.host, "mirror/app:1.0").is_some());
    stop.cancel();
    running.await.unwrap();
}

/// Deletion: `Retain` leaves the destination; `Delete` removes what the
/// mirror wrote (not someone else's tag) before the object goes; a registry
/// refusing deletes (405) blocks the deletion with a condition saying so
/// (and a prune there says deletes are disabled), until the policy is
/// `Retain`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deletion_with_delete_and_retain() {
    let c = Cluster::start().await;
    let (src, dst) = (Registry::plain(), Registry::plain());
    let locked = Registry::start(RegistryOptions {
        delete_disabled: true,
        ..Default::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    push(tmp.path(), &src.host, "team/app:1.0", "a");
    push(tmp.path(), &src.host, "team/app:2.0", "b");
    push(tmp.path(), &dst.host, "mirror/del:foreign", "y");
    let srepo = format!("{}/team/app", src.host);
    let sel = "  tags: {pattern: '.*'}\n";
    c.apply(&mirror_yaml(
        "ret",
        &srepo,
        &format!("{}/mirror/ret", dst.host),
        sel,
    ))
    .await;
    let del = |policy: &str| {
        mirror_yaml(
            "del",
            &srepo,
            &format!("{}/mirror/del", dst.host),
            &format!("{sel}  deletionPolicy: {policy}\n"),
        )
    };
    c.apply(&del("Delete")).await;
    let stuck = |policy: &str| {
        mirror_yaml(
            "stuck",
            &srepo,
            &format!("{}/mirror/app", locked.host),
            &format!("{sel}  deletionPolicy: {policy}\n  prune: true\n"),
        )
    };
    c.apply(&stuck("Delete")).await;
    let (stop, running, _) = c.controller();
    for n in ["ret", "del", "stuck"] {
        wait_reason(&c, n, "Synced").await;
    }
    let o = c.get("del").await.unwrap();
    assert_eq!(
        o["metadata"]["finalizers"][0], "kubemirror.dev/cleanup",
        "{o:#}"
    );
    assert!(c.get("ret").await.unwrap()["metadata"]["finalizers"].is_null());

    // A prune at a registry that refuses deletes says so.
    delete(&src.host, "team/app:2.0");
    request_reconcile(&c, "stuck", "1").await;
    let o = wait_reason(&c, "stuck", "DeletesDisabled").await;
    let msg = ready(&o).unwrap()["message"].as_str().unwrap();
    assert!(
        msg.contains("refuses deletes") && msg.contains("storage.delete.enabled"),
        "{msg}"
    );
    assert!(digest(&locked.host, "mirror/app:2.0").is_some());

    c.ok(&["delete", "imagemirror/ret", "--timeout=30s"]).await;
    assert!(c.get("ret").await.is_none());
    assert_eq!(
        tags(&dst.host, "mirror/ret"),
        ["1.0", "2.0"],
        "Retain keeps the tags"
    );

    c.ok(&["delete", "imagemirror/del", "--timeout=60s"]).await;
    assert!(c.get("del").await.is_none());
    assert_eq!(
        tags(&dst.host, "mirror/del"),
        ["foreign"],
        "Delete removed what it wrote, its record too, and nothing else"
    );

    c.ok(&["delete", "imagemirror/stuck", "--wait=false"]).await;
    let o = wait_reason(&c, "stuck", "DeletionBlocked").await;
    let msg = ready(&o).unwrap()["message"].as_str().unwrap();
    assert!(msg.contains("refuses deletes"), "{msg}");
    assert!(o["metadata"]["deletionTimestamp"].is_string());
    c.apply(&stuck("Retain")).await;
    eventually(30, "the stuck mirror released", || async {
        c.get("stuck").await.is_none().then_some(())
    })
    .await;
    assert!(digest(&locked.host, "mirror/app:1.0").is_some());
    stop.cancel();
    running.await.unwrap();
}

/// The command line: `sync -f --dry-run` prints the prune plan and writes
/// nothing; `sync -f` then prunes, with the same record as the controller.
#[test]
fn sync_dry_run_prints_the_plan_and_sync_prunes() {
    let (src, dst) = (Registry::plain(), Registry::plain());
    let tmp = tempfile::tempdir().unwrap();
    push(tmp.path(), &src.host, "team/app:1.0", "a");
    push(tmp.path(), &src.host, "team/app:1.1", "b");
    let file = tmp.path().join("m.yaml");
    std::fs::write(
        &file,
        mirror_yaml(
            "app",
            &format!("{}/team/app", src.host),
            &format!("{}/mirror/app", dst.host),
            "  tags: {semver: '>=1.0'}\n  prune: true\n",
        ),
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let (ok, out, err) = support::kubemirror_run(&["sync", "-f", f]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("reason: Synced"), "{out}");
    delete(&src.host, "team/app:1.0");
    let (ok, plan, err) = support::kubemirror_run(&["sync", "-f", f, "--dry-run"]);
    assert!(ok, "{plan}\n{err}");
    let one_oh = digest(&dst.host, "mirror/app:1.0").unwrap();
    assert!(plan.contains("imagemirror default/app: copy 1.1"), "{plan}");
    assert!(
        plan.contains(&format!(
            "imagemirror default/app: prune 1.0 {one_oh}: Planned"
        )),
        "{plan}"
    );
    assert_eq!(
        digest(&dst.host, "mirror/app:1.0"),
        Some(one_oh),
        "a dry run deletes nothing"
    );
    let (ok, out, err) = support::kubemirror_run(&["sync", "-f", f]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("action: Deleted"), "{out}");
    assert_eq!(digest(&dst.host, "mirror/app:1.0"), None);
    let (ok, plan, _) = support::kubemirror_run(&["sync", "-f", f, "--dry-run"]);
    assert!(ok && plan.contains("prune nothing"), "{plan}");

    // A mirror of the mirror does not copy the record tag.
    let record = kubemirror::record::record_tag("default/app");
    assert!(tags(&dst.host, "mirror/app").contains(&record));
    let again = tmp.path().join("again.yaml");
    std::fs::write(
        &again,
        mirror_yaml(
            "again",
            &format!("{}/mirror/app", dst.host),
            &format!("{}/mirror/again", dst.host),
            "  tags: {pattern: '.*'}\n",
        ),
    )
    .unwrap();
    let (ok, out, err) = support::kubemirror_run(&["sync", "-f", again.to_str().unwrap()]);
    assert!(ok, "{out}\n{err}");
    assert_eq!(tags(&dst.host, "mirror/again"), ["1.1"]);

    // A record that is not one stops the sync before anything is deleted.
    push(tmp.path(), &src.host, "team/app:1.0", "a");
    let (ok, out, _) = support::kubemirror_run(&["sync", "-f", f]);
    assert!(ok, "{out}");
    push(
        tmp.path(),
        &dst.host,
        &format!("mirror/app:{record}"),
        "junk",
    );
    delete(&src.host, "team/app:1.0");
    let (ok, out, err) = support::kubemirror_run(&["sync", "-f", f]);
    assert!(!ok, "{out}");
    assert!(
        err.contains(&format!("delete the tag {record}"))
            && err.contains("not a kubemirror record"),
        "{err}"
    );
    assert!(
        digest(&dst.host, "mirror/app:1.0").is_some(),
        "nothing deleted"
    );
}

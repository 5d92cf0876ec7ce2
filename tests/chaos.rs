//! Chaos in the controller loop (issue 8): the controller binary, run as
//! separate processes against kube-emulator, mirroring between real
//! Distribution registries while things go wrong —
//! - the controller is killed (SIGKILL) mid-copy and restarted;
//! - the destination registry goes down mid-copy and comes back;
//! - watches are dropped, fail, and resume from expired resourceVersions;
//! - the leader is cut off from the API server while copying (fencing);
//! - the source registry answers 429 to everything.
//!
//! Transfers are caught mid-way deterministically: a proxy in front of the
//! source holds blob bodies at a [`Gate`] until the test opens it. Each test
//! states what must hold: no tag ever names an incomplete image, no work is
//! missed or done twice, two replicas never write at once, and conditions
//! say what happened.
mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

use kubemirror::api::v1alpha1::ImageMirror;
use support::cluster::Cluster;
use support::controller_proc::ControllerProc;
use support::eventually;
use support::proxy::{Action, Gate, Proxy, Seen};
use support::registry::Registry;
use support::relay::Relay;

/// What these tests do with a cluster.
trait ChaosCluster {
    async fn create_mirror(&self, name: &str, source: &str, destination: &str, tags: &[&str]);
    fn controller(&self, identity: &str, args: &[&str]) -> ControllerProc;
    async fn holder(&self) -> Option<String>;
}

impl ChaosCluster for Cluster {
    /// One ImageMirror between two plain-HTTP registries.
    async fn create_mirror(&self, name: &str, source: &str, destination: &str, tags: &[&str]) {
        let m: ImageMirror = serde_json::from_value(json!({
            "apiVersion": "kubemirror.dev/v1alpha1",
            "kind": "ImageMirror",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {
                "source": {"repository": source, "tlsVerify": false},
                "destination": {"repository": destination, "tlsVerify": false},
                "tags": {"names": tags},
            }
        }))
        .unwrap();
        self.mirrors()
            .create(&PostParams::default(), &m)
            .await
            .unwrap();
    }

    fn controller(&self, identity: &str, args: &[&str]) -> ControllerProc {
        ControllerProc::start(&self.kubeconfig, self.dir.path(), identity, args)
    }

    /// The Lease holder, if any.
    async fn holder(&self) -> Option<String> {
        let leases: Api<Lease> = Api::namespaced(self.client(), "default");
        let l = leases.get_opt("kubemirror-controller").await.ok()??;
        l.spec?.holder_identity
    }
}

/// `Ready` of an object whose status is for its current generation:
/// `(status, reason, message)`.
fn ready(m: &ImageMirror) -> Option<(String, String, String)> {
    let st = m.status.as_ref()?;
    if st.observed_generation != m.metadata.generation {
        return None;
    }
    let c = st.conditions.iter().find(|c| c.type_ == "Ready")?;
    (c.observed_generation == m.metadata.generation)
        .then(|| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// Wait until mirror `name` is Ready with status `want` for its generation.
async fn wait_ready(c: &Cluster, name: &str, want: &str, secs: u64, logs: &[&ControllerProc]) {
    let what = format!("{name} Ready={want}");
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let m = c.mirrors().get(name).await.unwrap();
        let r = ready(&m);
        if r.as_ref().is_some_and(|r| r.0 == want) {
            return;
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = logs
                .iter()
                .map(|p| format!("--- {}:\n{}", p.identity, p.log_text()))
                .collect();
            panic!(
                "timed out after {secs}s waiting for {what}; last: {r:?}\n{}",
                logs.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Push a synthetic image to `registry` as `repo_tag`; returns its digest.
fn push(
    registry: &Registry,
    dir: &Path,
    repo_tag: &str,
    layers: &str,
    size: &str,
    seed: &str,
) -> String {
    let args = ["--layers", layers, "--layer-size", size, "--seed", seed];
    support::push(registry, dir, repo_tag, &args)
}

/// The digest `host/repo:tag` names, or `None` when the tag does not exist.
fn digest_at(host: &str, repo_tag: &str) -> Option<String> {
    let (repo, tag) = repo_tag.rsplit_once(':').unwrap();
    let out = support::run(std::process::Command::new("curl").args([
        "-s",
        "-o",
        "/dev/null",
        "-I",
        "-w",
        "%{http_code} %header{docker-content-digest}",
        "-H",
        "Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json",
        &format!("http://{host}/v2/{repo}/manifests/{tag}"),
    ]));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut words = text.split_whitespace();
    match (words.next(), words.next()) {
        (Some("200"), Some(d)) => Some(d.to_string()),
        (Some("404"), _) => None,
        _ => panic!("HEAD {host}/{repo_tag}: unexpected answer {text:?}"),
    }
}

/// The image `host/repo_tag` is complete: skopeo pulls every blob and checks
/// every digest.
fn assert_complete(host: &str, repo_tag: &str, dir: &Path) {
    let out = dir.join(format!("pulled-{}", repo_tag.replace(['/', ':'], "_")));
    support::run(
        support::skopeo()
            .args(["copy", "--src-tls-verify=false"])
            .arg(format!("docker://{host}/{repo_tag}"))
            .arg(format!("oci:{}:t", out.display())),
    );
}

/// A proxy in front of `registry` that holds every blob body after 64 KiB
/// until `gate` opens.
async fn holding_proxy(registry: &Registry, gate: &Arc<Gate>) -> Proxy {
    let proxy = Proxy::start(&registry.base_url()).await;
    let gate = gate.clone();
    proxy.set_rule(move |method, path, _| {
        if method == "GET" && path.contains("/blobs/") {
            Action::Hold(gate.clone(), 64 * 1024)
        } else {
            Action::Forward
        }
    });
    proxy
}

fn is_write(s: &Seen) -> bool {
    matches!(s.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE")
}

/// Killed (SIGKILL) while blobs are in flight, the controller leaves no tag
/// at the destination; restarted, it finishes the copy and the tag names a
/// complete image equal to the source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_killed_mid_copy_restarts_and_converges() {
    let c = Cluster::start().await;
    let (src, dst) = (Registry::plain(), Registry::plain());
    let want = push(&src, c.dir.path(), "team/app:1.0", "3", "512K", "11");
    let gate = Gate::new();
    let sp = holding_proxy(&src, &gate).await;
    let dp = Proxy::start(&dst.base_url()).await;
    c.create_mirror(
        "app",
        &format!("{}/team/app", sp.host),
        &format!("{}/mirror/app", dp.host),
        &["1.0"],
    )
    .await;

    let mut ctl = c.controller("replica-a", &[]);
    eventually(60, "a blob transfer caught at the gate", || async {
        (gate.held() >= 1).then_some(())
    })
    .await;
    assert_eq!(
        digest_at(&dst.host, "mirror/app:1.0"),
        None,
        "tag written mid-copy"
    );
    ctl.kill();
    // Dead mid-copy: no tag, and the object does not claim to be Ready.
    assert_eq!(
        digest_at(&dst.host, "mirror/app:1.0"),
        None,
        "tag after kill"
    );
    let m = c.mirrors().get("app").await.unwrap();
    assert_ne!(ready(&m).map(|r| r.0).as_deref(), Some("True"), "{m:?}");
    assert!(
        !dp.log()
            .iter()
            .any(|s| s.method == "PUT" && s.path.contains("/manifests/")),
        "no manifest may be written before every blob is"
    );

    gate.open();
    let ctl = c.controller("replica-a", &[]);
    wait_ready(&c, "app", "True", 90, &[&ctl]).await;
    assert_eq!(
        digest_at(&dst.host, "mirror/app:1.0").as_deref(),
        Some(want.as_str())
    );
    assert_complete(&dst.host, "mirror/app:1.0", c.dir.path());
    let m = c.mirrors().get("app").await.unwrap();
    let st = m.status.unwrap();
    assert_eq!(st.tags[0].destination_digest, want);
    assert_eq!(st.summary.unwrap().synced, 1);
}

/// The destination registry dies mid-copy: the mirror turns Ready=False with
/// a message naming the destination; when the registry is back (same
/// storage) the controller retries on its own and converges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destination_registry_restarted_mid_copy() {
    let c = Cluster::start().await;
    let src = Registry::plain();
    let mut dst = Registry::plain();
    let want = push(&src, c.dir.path(), "team/app:2.0", "3", "512K", "21");
    let gate = Gate::new();
    let sp = holding_proxy(&src, &gate).await;
    c.create_mirror(
        "app",
        &format!("{}/team/app", sp.host),
        &format!("{}/mirror/app", dst.host),
        &["2.0"],
    )
    .await;
    let ctl = c.controller("replica-a", &[]);
    eventually(60, "a blob transfer caught at the gate", || async {
        (gate.held() >= 1).then_some(())
    })
    .await;

    dst.stop();
    gate.open();
    let failed = eventually(60, "Ready=False naming the destination", || async {
        let m = c.mirrors().get("app").await.unwrap();
        ready(&m).filter(|r| r.0 == "False")
    })
    .await;
    assert!(failed.2.contains(&dst.host), "{failed:?}");

    dst.start_again();
    wait_ready(&c, "app", "True", 90, &[&ctl]).await;
    assert_eq!(
        digest_at(&dst.host, "mirror/app:2.0").as_deref(),
        Some(want.as_str())
    );
    assert_complete(&dst.host, "mirror/app:2.0", c.dir.path());
}

/// Watches end, fail (500) and resume from resourceVersions the emulator has
/// compacted away (410 Expired → re-list) while objects are created and
/// changed: every change is reconciled, and nothing is copied twice (each
/// tag's manifest is written exactly once, each blob uploaded once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_watches_and_expired_versions_miss_nothing_and_repeat_nothing() {
    let c = Cluster::start().await;
    let src = Registry::plain();
    for i in 1..=7 {
        push(
            &src,
            c.dir.path(),
            &format!("team/app:{i}"),
            "2",
            "4K",
            &format!("3{i}"),
        );
    }
    // Source and destination repositories in one registry, behind one proxy.
    let proxy = Proxy::start(&src.base_url()).await;
    let repo = |i: u32| format!("{}/mirror/app{i}", proxy.host);
    let source = format!("{}/team/app", proxy.host);
    for i in 1..=3 {
        c.create_mirror(&format!("m{i}"), &source, &repo(i), &[&i.to_string()])
            .await;
    }
    let ctl = c.controller("replica-a", &["--concurrency=4"]);
    for i in 1..=3 {
        wait_ready(&c, &format!("m{i}"), "True", 60, &[&ctl]).await;
    }

    let hooks = c.emu.hooks();
    hooks.clear_requests();
    // Watches fail for a while, and resume from versions that no longer exist.
    // (The controller lists and watches all namespaces: `/v1alpha1/imagemirrors`.)
    hooks.inject_error(Some("GET"), "/v1alpha1/imagemirrors", 500, 3);
    hooks.compact_history();
    hooks.close_watches();
    for i in 4..=6 {
        c.create_mirror(&format!("m{i}"), &source, &repo(i), &[&i.to_string()])
            .await;
    }
    hooks.compact_history();
    hooks.close_watches();
    // A spec change (generation 2): one more tag for m1.
    c.mirrors()
        .patch(
            "m1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"tags": {"names": ["1", "7"]}}})),
        )
        .await
        .unwrap();
    hooks.compact_history();
    hooks.close_watches();

    for i in 1..=6 {
        wait_ready(&c, &format!("m{i}"), "True", 90, &[&ctl]).await;
    }
    let m1 = c.mirrors().get("m1").await.unwrap();
    assert_eq!(m1.status.as_ref().unwrap().observed_generation, Some(2));
    assert_eq!(m1.status.unwrap().summary.unwrap().synced, 2);

    // The chaos happened: watch requests failed, and the controller re-listed.
    let reqs = hooks.requests();
    let mirror_lists = reqs
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/imagemirrors"))
        .filter(|r| !r.query.contains("watch=true"))
        .count();
    assert!(
        reqs.iter()
            .any(|r| r.status == 500 && r.path.ends_with("/imagemirrors")),
        "no injected failure was served"
    );
    assert!(
        mirror_lists >= 1,
        "the controller never re-listed: {reqs:?}"
    );

    // Nothing missed, nothing repeated: per destination repository, one
    // manifest write per tag and one upload per blob (2 layers + config).
    let log = proxy.log();
    for i in 1..=6 {
        let prefix = format!("/v2/mirror/app{i}/");
        let writes: Vec<&Seen> = log
            .iter()
            .filter(|s| is_write(s) && s.path.starts_with(&prefix))
            .collect();
        let manifests = writes
            .iter()
            .filter(|s| s.path.contains("/manifests/"))
            .count();
        let tags = if i == 1 { 2 } else { 1 };
        assert_eq!(
            manifests, tags,
            "manifest writes to mirror/app{i}: {writes:#?}"
        );
        let uploads = writes
            .iter()
            .filter(|s| s.method == "POST" && s.path.contains("/blobs/uploads/"))
            .count();
        assert_eq!(
            uploads,
            3 * tags,
            "blob uploads to mirror/app{i}: {writes:#?}"
        );
    }
}

/// Two replicas with leader election. The leader is cut off from the API
/// server while a copy is in flight; it must stop all work before its Lease
/// can expire, so that the standby, once it holds the Lease, is the only
/// one writing: no request of the old leader reaches a registry after the
/// standby takes over, and the old leader exits to be restarted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioned_leader_stops_before_the_standby_takes_over() {
    let c = Cluster::start().await;
    let src = Registry::plain();
    let dst = Registry::plain();
    let want = push(&src, c.dir.path(), "team/app:3.0", "2", "512K", "41");
    let gate = Gate::new();
    let sp = holding_proxy(&src, &gate).await;
    let dp = Proxy::start(&dst.base_url()).await;

    // Replica A reaches the API server through a relay the test can cut.
    let relay = Relay::start(c.emu.url().trim_start_matches("http://").parse().unwrap()).await;
    let kubeconfig_a = c.dir.path().join("kubeconfig-a");
    std::fs::write(&kubeconfig_a, kube_emulator::kubeconfig_yaml(&relay.url())).unwrap();
    let lease = [
        "--leader-elect",
        "--leader-elect-lease-duration=8s",
        "--leader-elect-renew-deadline=4s",
        "--leader-elect-retry-period=1s",
    ];
    let mut a = ControllerProc::start(&kubeconfig_a, c.dir.path(), "replica-a", &lease);
    eventually(30, "replica-a holds the Lease", || async {
        (c.holder().await.as_deref() == Some("replica-a")).then_some(())
    })
    .await;
    let b = c.controller("replica-b", &lease);
    c.create_mirror(
        "app",
        &format!("{}/team/app", sp.host),
        &format!("{}/mirror/app", dp.host),
        &["3.0"],
    )
    .await;
    eventually(60, "the leader's transfer caught at the gate", || async {
        (gate.held() >= 1).then_some(())
    })
    .await;
    let by = |who: &str, log: &[Seen]| -> Vec<Seen> {
        let ua = format!("(controller {who})");
        log.iter()
            .filter(|s| s.user_agent.as_deref().is_some_and(|u| u.contains(&ua)))
            .cloned()
            .collect()
    };
    // Until now only the leader has talked to the registries.
    let early: Vec<Seen> = sp.log().into_iter().chain(dp.log()).collect();
    assert_eq!(by("replica-a", &early).len(), early.len(), "{early:#?}");

    relay.partition();
    eventually(40, "replica-b holds the Lease", || async {
        (c.holder().await.as_deref() == Some("replica-b")).then_some(())
    })
    .await;
    let taken_over = Instant::now();
    // Let the held transfers go: a leader that did not stop would resume
    // its copy here, next to replica-b's.
    gate.open();
    wait_ready(&c, "app", "True", 90, &[&b]).await;
    assert_eq!(
        digest_at(&dst.host, "mirror/app:3.0").as_deref(),
        Some(want.as_str())
    );
    assert_complete(&dst.host, "mirror/app:3.0", c.dir.path());

    let all: Vec<Seen> = sp.log().into_iter().chain(dp.log()).collect();
    let (from_a, from_b) = (by("replica-a", &all), by("replica-b", &all));
    assert_eq!(
        from_a.len() + from_b.len(),
        all.len(),
        "unattributed requests"
    );
    assert!(from_b.iter().any(is_write), "replica-b wrote nothing");
    let late: Vec<&Seen> = from_a.iter().filter(|s| s.at >= taken_over).collect();
    assert!(
        late.is_empty(),
        "replica-a still talked to registries after the takeover: {late:#?}"
    );
    let first_b = from_b.iter().map(|s| s.at).min().unwrap();
    assert!(
        from_a
            .iter()
            .filter(|s| is_write(s))
            .all(|s| s.at < first_b),
        "writes of both replicas interleave"
    );
    // The old leader gave up on its own (it cannot even learn it lost) and exited.
    let status = a
        .wait(20)
        .unwrap_or_else(|| panic!("replica-a still running:\n{}", a.log_text()));
    assert!(!status.success(), "replica-a exit: {status}");
    assert!(
        a.log_text()
            .contains("no Lease renewal within the deadline"),
        "{}",
        a.log_text()
    );
}

/// A source that answers 429 to everything, mirrored by several objects:
/// each says `RateLimited`, and the controller backs off — per object, and
/// for the registry as a whole (requests during its cool-off fail without
/// being sent) — instead of spinning; the request rate is measured. When the
/// registry relents, every mirror converges by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_registry_gets_backoff_not_a_storm() {
    const MIRRORS: usize = 5;
    let c = Cluster::start().await;
    let src = Registry::plain();
    let dst = Registry::plain();
    let want = push(&src, c.dir.path(), "team/app:4.0", "2", "4K", "51");
    let sp = Proxy::start(&src.base_url()).await;
    let body = br#"{"errors":[{"code":"TOOMANYREQUESTS","message":"rate limit exceeded"}]}"#;
    sp.set_rule(move |_, _, _| {
        Action::Respond(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            vec![("content-type", "application/json".into())],
            body.to_vec(),
        )
    });
    for i in 0..MIRRORS {
        c.create_mirror(
            &format!("app{i}"),
            &format!("{}/team/app", sp.host),
            &format!("{}/mirror/app{i}", dst.host),
            &["4.0"],
        )
        .await;
    }
    let ctl = c.controller("replica-a", &[]);
    let mut messages = Vec::new();
    for i in 0..MIRRORS {
        let (_, reason, message) = eventually(60, "Ready=False", || async {
            let m = c.mirrors().get(&format!("app{i}")).await.unwrap();
            ready(&m).filter(|r| r.0 == "False")
        })
        .await;
        assert_eq!(reason, "RateLimited", "{message}");
        assert!(message.contains("429"), "{message}");
        messages.push(message);
    }

    // Measure: requests to the throttling registry over a 20 s window.
    let before = sp.log().len();
    let window = Duration::from_secs(20);
    tokio::time::sleep(window).await;
    let during = sp.log().len() - before;
    let rate = during as f64 / window.as_secs_f64();
    println!(
        "429 storm, {MIRRORS} mirrors: {before} requests until all reported RateLimited, \
         then {during} in {window:?} ({rate:.2}/s)"
    );
    assert!(
        during <= 8,
        "{during} requests in {window:?} to a registry answering 429: no backoff\n{}",
        ctl.log_text()
    );
    assert!(
        before <= 2 * MIRRORS,
        "{before} requests before every mirror reported: {messages:#?}"
    );

    sp.set_rule(|_, _, _| Action::Forward);
    for i in 0..MIRRORS {
        wait_ready(&c, &format!("app{i}"), "True", 150, &[&ctl]).await;
        assert_eq!(
            digest_at(&dst.host, &format!("mirror/app{i}:4.0")).as_deref(),
            Some(want.as_str())
        );
    }
}

//! OCI 1.1 referrers copied with the image (issue 14), through the paths a
//! user takes: `kubemirror copy --copy-attachments`, `kubemirror sync -f`,
//! and an `ImageMirror` applied with kubectl to the controller. Real
//! Distribution registries (which have no referrers API: the destination's
//! referrers tag is merged), with tests/support/referrers.rs's layer where
//! a source has the API.
mod support;

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;
use support::cluster::Cluster;
use support::controller_proc::ControllerProc;
use support::cosign;
use support::proxy::{Action, Proxy};
use support::referrers::{Pusher, ReferrersApi, sha256};
use support::registry::Registry;

const BUNDLE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
const SBOM: &str = "application/spdx+json";

/// `kubemirror --insecure-policy copy --copy-attachments --report` over
/// plain HTTP (off the runtime's threads): (success, report or stderr).
async fn copy(from: String, to: String, extra: &[&str]) -> (bool, String) {
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let out = support::cmd::km()
            .args([
                "copy",
                "--src-tls-verify=false",
                "--dest-tls-verify=false",
                "--copy-attachments",
                "--report",
            ])
            .args(&extra)
            .arg(format!("docker://{from}"))
            .arg(format!("docker://{to}"))
            .output()
            .unwrap();
        let text = if out.status.success() {
            String::from_utf8_lossy(&out.stdout).into_owned()
        } else {
            String::from_utf8_lossy(&out.stderr).into_owned()
        };
        (out.status.success(), text)
    })
    .await
    .unwrap()
}

/// The report of a copy that must succeed.
async fn copied(from: String, to: String, extra: &[&str]) -> Value {
    let (ok, out) = copy(from, to, extra).await;
    assert!(ok, "{out}");
    serde_json::from_str(&out).unwrap()
}

/// The digests the referrers tag of `subject` lists in `host/repo`.
fn listed(host: &str, repo: &str, subject: &str) -> Vec<String> {
    let tag = subject.replace(':', "-");
    let index: Value =
        serde_json::from_slice(&cosign::raw_manifest(host, &format!("{repo}:{tag}"))).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["digest"].as_str().unwrap().to_string())
        .collect()
}

/// An image with two referrers (a Sigstore bundle and an SBOM) found only
/// through the source's referrers API: both arrive, bytes and digests
/// unchanged, and the destination (no API) lists both in its referrers tag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_carries_referrers_found_through_the_api() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst) = (Registry::plain(), Registry::plain());
    let api = ReferrersApi::start(&format!("http://{}", src.host)).await;
    let h = api.host();
    let digest = cosign::push_image(&h, "team/app:1.0", "41", tmp.path());
    let subject = cosign::raw_manifest(&h, "team/app:1.0");
    let push = Pusher::plain(&h);
    let bundle = push.attach("team/app", &subject, BUNDLE, br#"{"mediaType":"bundle"}"#);
    let sbom = push.attach("team/app", &subject, SBOM, br#"{"spdxVersion":"SPDX-2.3"}"#);
    api.register("team/app", &bundle);
    api.register("team/app", &sbom);
    let tag = digest.replace(':', "-");
    assert!(!cosign::exists(&h, &format!("team/app:{tag}")));

    let report = copied(
        format!("{h}/team/app:1.0"),
        format!("{}/mirror/app:1.0", dst.host),
        &[],
    )
    .await;
    assert_eq!(report["referrersCopied"], 2, "{report}");
    assert_eq!(report["destinationDigest"], digest.as_str());
    for a in [&bundle, &sbom] {
        assert_eq!(
            &cosign::raw_manifest(&dst.host, &format!("mirror/app@{}", sha256(a))),
            a
        );
    }
    let l = listed(&dst.host, "mirror/app", &digest);
    assert_eq!(
        l.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        [sha256(&bundle), sha256(&sbom)]
            .iter()
            .map(String::as_str)
            .collect(),
    );
    // The blobs came along: the SBOM reads back at the destination.
    let out = std::process::Command::new("curl")
        .args([
            "-sf",
            &format!("http://{}/v2/mirror/app/blobs/{}", dst.host, {
                let m: Value = serde_json::from_slice(&sbom).unwrap();
                m["layers"][0]["digest"].as_str().unwrap().to_string()
            }),
        ])
        .output()
        .unwrap();
    assert_eq!(out.stdout, br#"{"spdxVersion":"SPDX-2.3"}"#);

    // Without --copy-attachments (skopeo's default) nothing follows.
    support::cmd::ok(&support::cmd::run({
        let mut c = support::cmd::km();
        c.args([
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            &format!("docker://{h}/team/app:1.0"),
            &format!("docker://{}/plain/app:1.0", dst.host),
        ]);
        c
    }));
    assert!(!cosign::exists(&dst.host, &format!("plain/app:{tag}")));
    assert!(!cosign::exists(
        &dst.host,
        &format!("plain/app@{}", sha256(&bundle))
    ));
}

/// The source's referrers tag (no API) merged into the destination's,
/// which lists a referrer of its own: all three listed after the copy, the
/// destination's first; a second copy writes no referrer and no tag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_destination_referrers_tag_is_merged_and_a_second_copy_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst) = (Registry::plain(), Registry::plain());
    let proxy = Proxy::start(&format!("http://{}", dst.host)).await;
    let digest = cosign::push_image(&src.host, "team/app:1.0", "42", tmp.path());
    let subject = cosign::raw_manifest(&src.host, "team/app:1.0");
    let push = Pusher::plain(&src.host);
    let bundle = push.attach("team/app", &subject, BUNDLE, br#"{"n":1}"#);
    let sbom = push.attach("team/app", &subject, SBOM, br#"{"n":2}"#);
    push.referrers_tag("team/app", &subject, &[&bundle, &sbom]);
    let theirs = Pusher::plain(&dst.host);
    let own = theirs.attach("mirror/app", &subject, SBOM, br#"{"destination":"only"}"#);
    theirs.referrers_tag("mirror/app", &subject, &[&own]);

    let (from, to) = (
        format!("{}/team/app:1.0", src.host),
        format!("{}/mirror/app:1.0", proxy.host),
    );
    let report = copied(from.clone(), to.clone(), &[]).await;
    assert_eq!(report["referrersCopied"], 2, "{report}");
    assert_eq!(
        listed(&dst.host, "mirror/app", &digest),
        vec![sha256(&own), sha256(&bundle), sha256(&sbom)]
    );
    let index = cosign::raw_manifest(
        &dst.host,
        &format!("mirror/app:{}", digest.replace(':', "-")),
    );

    proxy.clear_log();
    let report = copied(from, to, &["--no-incremental"]).await;
    assert_eq!(report["referrersCopied"], 0, "{report}");
    let puts: Vec<String> = proxy
        .log()
        .into_iter()
        .filter(|r| r.method == "PUT")
        .map(|r| r.path)
        .collect();
    assert_eq!(puts, vec!["/v2/mirror/app/manifests/1.0".to_string()]);
    assert_eq!(
        cosign::raw_manifest(
            &dst.host,
            &format!("mirror/app:{}", digest.replace(':', "-"))
        ),
        index
    );
}

/// A source whose referrers API lists more referrers than the limit, or
/// serves a referrer manifest over the size limit: the copy fails with
/// the reason, and the destination tag is not written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_source_fails_the_copy_before_the_tag() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst) = (Registry::plain(), Registry::plain());
    let api = ReferrersApi::start(&format!("http://{}", src.host)).await;
    let h = api.host();
    cosign::push_image(&h, "team/many:1.0", "43", tmp.path());
    let subject = cosign::raw_manifest(&h, "team/many:1.0");
    for i in 0..65 {
        let m = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": support::referrers::OCI_MANIFEST,
            "artifactType": SBOM, "annotations": {"n": i.to_string()},
            "subject": {"mediaType": support::referrers::OCI_MANIFEST,
                        "digest": sha256(&subject), "size": subject.len()}
        }))
        .unwrap();
        api.register("team/many", &m);
    }
    let (ok, err) = copy(
        format!("{h}/team/many:1.0"),
        format!("{}/mirror/many:1.0", dst.host),
        &[],
    )
    .await;
    assert!(!ok);
    assert!(
        err.contains("65 referrers listed, over the limit of 64"),
        "{err}"
    );
    assert!(!cosign::exists(&dst.host, "mirror/many:1.0"));

    // A referrer whose manifest is 5 MiB: a layer in front of the API serves it.
    cosign::push_image(&h, "team/big:1.0", "44", tmp.path());
    let subject = cosign::raw_manifest(&h, "team/big:1.0");
    let small = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": support::referrers::OCI_MANIFEST,
        "artifactType": SBOM,
        "subject": {"mediaType": support::referrers::OCI_MANIFEST,
                    "digest": sha256(&subject), "size": subject.len()}
    }))
    .unwrap();
    api.register("team/big", &small);
    let front = Proxy::start(&format!("http://{h}")).await;
    let path = format!("/v2/team/big/manifests/{}", sha256(&small));
    front.set_rule(move |method, pq, _| {
        if method == "GET" && pq == path {
            let huge = vec![b' '; 5 << 20];
            Action::Respond(
                axum::http::StatusCode::OK,
                vec![("Content-Type", support::referrers::OCI_MANIFEST.to_string())],
                huge,
            )
        } else {
            Action::Forward
        }
    });
    let (ok, err) = copy(
        format!("{}/team/big:1.0", front.host),
        format!("{}/mirror/big:1.0", dst.host),
        &[],
    )
    .await;
    assert!(!ok);
    assert!(err.contains("over the 4194304-byte limit"), "{err}");
    assert!(!cosign::exists(&dst.host, "mirror/big:1.0"));
}

/// `kubemirror sync -f` of a pattern (the tag list is read anyway): a
/// re-sync of unchanged tags costs one request on each side per tag, plus
/// one referrers-API probe per registry; a referrer published after the
/// image was mirrored arrives on the next sync and is counted in status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resync_costs_two_requests_per_unchanged_tag_and_brings_new_referrers() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst) = (Registry::plain(), Registry::plain());
    let (sp, dp) = (
        Proxy::start(&format!("http://{}", src.host)).await,
        Proxy::start(&format!("http://{}", dst.host)).await,
    );
    let mut subjects = Vec::new();
    for (i, t) in ["1.0", "1.1", "1.2"].iter().enumerate() {
        cosign::push_image(
            &src.host,
            &format!("team/app:{t}"),
            &format!("5{i}"),
            tmp.path(),
        );
        subjects.push(cosign::raw_manifest(&src.host, &format!("team/app:{t}")));
    }
    let push = Pusher::plain(&src.host);
    let sbom = push.attach("team/app", &subjects[0], SBOM, br#"{"tag":"1.0"}"#);
    push.referrers_tag("team/app", &subjects[0], &[&sbom]);

    let file = tmp.path().join("mirror.yaml");
    std::fs::write(
        &file,
        format!(
            r#"apiVersion: kubemirror.dev/v1alpha1
kind: ImageMirror
metadata: {{name: app}}
spec:
  source: {{repository: {}/team/app, tlsVerify: false}}
  destination: {{repository: {}/mirror/app, tlsVerify: false}}
  tags: {{pattern: '^1\.'}}
"#,
            sp.host, dp.host
        ),
    )
    .unwrap();
    let sync = || {
        let file = file.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let out = support::kubemirror()
                    .env("HOME", file.parent().unwrap())
                    .args(["sync", "-f"])
                    .arg(&file)
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let doc: Value = serde_yaml::from_slice(&out.stdout).unwrap();
                doc
            })
            .await
            .unwrap()
        }
    };
    let tag_status = |doc: &Value, t: &str| -> Value {
        doc["status"]["tags"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == t)
            .cloned()
            .unwrap_or_else(|| panic!("{t} in {doc:#}"))
    };
    let first = sync().await;
    assert_eq!(tag_status(&first, "1.0")["referrers"], 1, "{first:#}");
    assert_eq!(
        listed(&dst.host, "mirror/app", &sha256(&subjects[0])),
        vec![sha256(&sbom)]
    );

    // Nothing changed: per tag a HEAD at each side; the referrers tag of 1.0
    // is read at each side; /referrers is probed once per registry.
    sp.clear_log();
    dp.clear_log();
    sync().await;
    let (s, d) = (sp.take_log(), dp.take_log());
    let count = |log: &[support::proxy::Seen], f: &dyn Fn(&support::proxy::Seen) -> bool| {
        log.iter().filter(|r| f(r)).count()
    };
    let tags = |r: &support::proxy::Seen| {
        ["1.0", "1.1", "1.2"]
            .iter()
            .any(|t| r.path.ends_with(&format!("/manifests/{t}")))
    };
    let probes = |r: &support::proxy::Seen| r.path.contains("/referrers/");
    let fallback = |r: &support::proxy::Seen| r.path.contains("/manifests/sha256-");
    eprintln!(
        "re-sync of 3 unchanged tags: source {} requests {:?}, destination {} requests {:?}",
        s.len(),
        s.iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect::<Vec<_>>(),
        d.len(),
        d.iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect::<Vec<_>>()
    );
    assert_eq!(count(&s, &tags), 3, "{s:?}");
    assert_eq!(count(&d, &tags), 3, "{d:?}");
    assert_eq!(count(&s, &probes), 1, "{s:?}");
    assert_eq!(count(&d, &probes), 1, "{d:?}");
    assert_eq!(count(&s, &fallback), 1, "{s:?}");
    assert_eq!(count(&d, &fallback), 1, "{d:?}");
    assert!(d.iter().all(|r| r.method != "PUT"), "{d:?}");
    let other = |r: &support::proxy::Seen| {
        !tags(r)
            && !probes(r)
            && !fallback(r)
            && r.path != "/v2/"
            && !r.path.ends_with("/tags/list")
    };
    assert_eq!(count(&s, &other) + count(&d, &other), 0, "{s:?}\n{d:?}");

    // A referrer published after 1.1 was mirrored arrives with the next sync.
    let late = push.attach("team/app", &subjects[1], BUNDLE, br#"{"late":true}"#);
    push.referrers_tag("team/app", &subjects[1], &[&late]);
    let third = sync().await;
    assert_eq!(tag_status(&third, "1.1")["referrers"], 1, "{third:#}");
    assert_eq!(
        listed(&dst.host, "mirror/app", &sha256(&subjects[1])),
        vec![sha256(&late)]
    );
    assert_eq!(
        cosign::raw_manifest(&dst.host, &format!("mirror/app@{}", sha256(&late))),
        late
    );
}

/// An `ImageMirror` applied with kubectl: with `signatures: Copy` the
/// referrers found through the source's API arrive and status counts them;
/// with `signatures: Drop` they do not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_mirror_copies_referrers_unless_signatures_drop() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst) = (Registry::plain(), Registry::plain());
    let api = ReferrersApi::start(&format!("http://{}", src.host)).await;
    let h = api.host();
    let digest = cosign::push_image(&h, "team/app:2.0", "61", tmp.path());
    let subject = cosign::raw_manifest(&h, "team/app:2.0");
    let push = Pusher::plain(&h);
    let bundle = push.attach("team/app", &subject, BUNDLE, br#"{"k":"bundle"}"#);
    let sbom = push.attach("team/app", &subject, SBOM, br#"{"k":"sbom"}"#);
    api.register("team/app", &bundle);
    api.register("team/app", &sbom);

    let cluster = Cluster::start().await;
    let kc = cluster.kubeconfig.clone();
    let mut ctl = ControllerProc::start(&kc, tmp.path(), "referrers-copy", &[]);
    let out = support::kubectl::run(&kc, None, &["create", "namespace", "mirrors"], "").await;
    assert!(out.ok, "{}", out.stderr);
    let mirror = |name: &str, to: &str, signatures: &str| {
        format!(
            r#"apiVersion: kubemirror.dev/v1alpha1
kind: ImageMirror
metadata:
  name: {name}
  namespace: mirrors
spec:
  source: {{repository: {h}/team/app, tlsVerify: false}}
  destination: {{repository: {}/{to}, tlsVerify: false}}
  tags: {{names: ["2.0"]}}
  signatures: {signatures}
"#,
            dst.host
        )
    };
    let yaml = format!(
        "{}---\n{}",
        mirror("copy", "copy/app", "Copy"),
        mirror("drop", "drop/app", "Drop")
    );
    let out = support::kubectl::run(&kc, None, &["apply", "-f", "-"], &yaml).await;
    assert!(out.ok, "{}", out.stderr);
    let copied = synced(&kc, "copy", &digest).await;
    assert_eq!(copied["referrers"], 2, "{copied:#}");
    let dropped = synced(&kc, "drop", &digest).await;
    assert!(dropped.get("referrers").is_none(), "{dropped:#}");
    for a in [&bundle, &sbom] {
        let d = sha256(a);
        assert_eq!(
            cosign::raw_manifest(&dst.host, &format!("copy/app@{d}")),
            *a
        );
        assert!(!cosign::exists(&dst.host, &format!("drop/app@{d}")));
    }
    assert_eq!(listed(&dst.host, "copy/app", &digest).len(), 2);
    assert!(!cosign::exists(
        &dst.host,
        &format!("drop/app:{}", digest.replace(':', "-"))
    ));
    ctl.assert_running();
    ctl.kill();
}

/// The status entry of the one tag of `ImageMirror` `name` once it names
/// `digest` as written.
async fn synced(kc: &Path, name: &str, digest: &str) -> Value {
    support::eventually(60, &format!("{name} synced"), || async {
        let args = ["-n", "mirrors", "get", "imagemirror", name, "-o", "json"];
        let out = support::kubectl::run(kc, None, &args, "").await;
        let o: Value = serde_json::from_str(&out.stdout).ok()?;
        let t = o["status"]["tags"].as_array()?.first()?.clone();
        (t["destinationDigest"] == digest).then_some(t)
    })
    .await
}

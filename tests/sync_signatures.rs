//! `sync -f` with signatures: skopeo signs a registry image with GnuPG into a
//! `file://` lookaside; an `ImageMirror` with `verification` mirrors only
//! what the trusted key signed (copying the signature to the destination's
//! lookaside), and an `ImageInspection` reports the signature as verified.
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_yaml::Value;
use support::registry::Registry;

struct Gpg {
    home: tempfile::TempDir,
    fpr: String,
}

impl Gpg {
    fn new() -> Self {
        let home = tempfile::Builder::new().prefix("gpg").tempdir().unwrap();
        std::fs::set_permissions(
            home.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        let mut g = Gpg {
            home,
            fpr: String::new(),
        };
        support::run(g.cmd().args([
            "--passphrase",
            "",
            "--quick-gen-key",
            "Release <release@example.com>",
            "ed25519",
            "sign",
            "never",
        ]));
        let out = support::run(g.cmd().args(["--list-keys", "--with-colons"]));
        g.fpr = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .find_map(|l| {
                l.strip_prefix("fpr:")
                    .map(|r| r.trim_matches(':').to_string())
            })
            .expect("gpg lists a fingerprint");
        g
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("gpg");
        c.env("GNUPGHOME", self.home.path()).arg("--batch");
        c
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.home.path())
            .args(["--kill", "gpg-agent"])
            .output();
    }
}

fn sync(file: &Path) -> (bool, Vec<Value>, String) {
    sync_with(&[], file)
}

/// `kubemirror [GLOBAL…] sync -f FILE`: (success, documents, stderr).
fn sync_with(global: &[&str], file: &Path) -> (bool, Vec<Value>, String) {
    use serde::Deserialize;
    let out = support::kubemirror()
        .env_remove("REGISTRY_AUTH_FILE")
        .env("HOME", file.parent().unwrap())
        .args(global)
        .args(["sync", "-f"])
        .arg(file)
        .output()
        .unwrap();
    let docs = serde_yaml::Deserializer::from_str(&String::from_utf8_lossy(&out.stdout))
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect();
    (
        out.status.success(),
        docs,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn verification_mirrors_only_signed_tags_and_inspection_reports_them() {
    let gpg = Gpg::new();
    let src = Registry::plain();
    let dst = Registry::plain();
    let tmp = tempfile::tempdir().unwrap();
    let (look_src, look_dst) = (tmp.path().join("sigs-src"), tmp.path().join("sigs-dst"));
    let regd = tmp.path().join("registries.d");
    std::fs::create_dir_all(&regd).unwrap();
    std::fs::write(
        regd.join("default.yaml"),
        format!(
            "default-docker:\n  lookaside-staging: file://{}\n",
            look_src.display()
        ),
    )
    .unwrap();
    let layout = tmp.path().join("img");
    for (tag, seed, signed) in [("1.0.0", "1", true), ("1.1.0", "2", false)] {
        support::mkimage(
            &layout,
            &[
                "--tag",
                tag,
                "--layers",
                "1",
                "--layer-size",
                "2K",
                "--seed",
                seed,
            ],
        );
        let mut c = support::skopeo();
        c.env("GNUPGHOME", gpg.home.path())
            .arg("--registries.d")
            .arg(&regd)
            .args(["copy", "-q", "--dest-tls-verify=false"]);
        if signed {
            c.args(["--sign-by", &gpg.fpr]);
        }
        support::run(
            c.arg(format!("oci:{}:{tag}", layout.display()))
                .arg(src.image(&format!("team/app:{tag}"))),
        );
    }
    let key =
        String::from_utf8(support::run(gpg.cmd().args(["--armor", "--export", &gpg.fpr])).stdout)
            .unwrap();

    let docs = serde_json::json!([
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "release-key"},
         "stringData": {"pubring.asc": key}},
        {"apiVersion": "kubemirror.dev/v1alpha1", "kind": "ImageMirror", "metadata": {"name": "signed"},
         "spec": {
            "source": {"repository": format!("{}/team/app", src.host), "tlsVerify": false,
                       "signatureLookaside": format!("file://{}", look_src.display())},
            "destination": {"repository": format!("{}/mirror/app", dst.host), "tlsVerify": false,
                            "signatureLookaside": format!("file://{}", look_dst.display())},
            "tags": {"names": ["1.0.0", "1.1.0"]},
            "verification": {"keys": [{"type": "GPG", "secretRef": {"name": "release-key", "key": "pubring.asc"}}]}}},
        {"apiVersion": "kubemirror.dev/v1alpha1", "kind": "ImageInspection", "metadata": {"name": "signed"},
         "spec": {
            "image": format!("{}/team/app:1.0.0", src.host), "tlsVerify": false,
            "signatureLookaside": format!("file://{}", look_src.display()),
            "verification": {"keys": [{"type": "GPG", "secretRef": {"name": "release-key", "key": "pubring.asc"}}]}}},
    ]);
    let file = tmp.path().join("signed.yaml");
    let yaml: String = docs
        .as_array()
        .unwrap()
        .iter()
        .map(|d| format!("---\n{}", serde_yaml::to_string(d).unwrap()))
        .collect();
    std::fs::write(&file, yaml).unwrap();

    let (ok, out, stderr) = sync(&file);
    assert!(!ok, "the unsigned tag makes the mirror not Ready");
    assert!(
        stderr.contains("imagemirror/signed: TagsFailed"),
        "{stderr}"
    );
    let tags = out[0]["status"]["tags"].as_sequence().unwrap();
    let by = |n: &str| tags.iter().find(|t| t["name"] == n).unwrap();
    assert_eq!(by("1.0.0")["verified"], true, "{:?}", out[0]["status"]);
    assert!(by("1.0.0")["error"].is_null());
    let e = by("1.1.0")["error"].as_str().unwrap();
    assert!(
        e.contains("no signatures") && e.contains("spec.verification"),
        "{e}"
    );
    assert_eq!(by("1.0.0")["signatures"], 1);
    // The signature went to the destination's lookaside; the unsigned tag was not written.
    let written = walk(&look_dst);
    assert!(
        written.iter().any(|p| p.ends_with("signature-1")),
        "{written:?}"
    );
    let listed = support::run(support::skopeo().args([
        "list-tags",
        "--tls-verify=false",
        &dst.image("mirror/app"),
    ]));
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.contains("1.0.0") && !listed.contains("1.1.0"),
        "{listed}"
    );

    let st = &out[1]["status"];
    let s0 = &st["signatures"][0];
    assert_eq!(s0["type"], "simple-signing", "{st:?}");
    assert_eq!(s0["verified"], true, "{st:?}");
    assert_eq!(s0["manifestDigest"], st["digest"]);
    assert_eq!(s0["identity"], format!("{}/team/app:1.0.0", src.host));
    assert_eq!(st["signatureSummary"], "1 (1 verified)");

    // The global flags count for sync: `--registries.d` says where the
    // lookaside is when a spec names none, and `--policy` judges every copy.
    let regd_read = tmp.path().join("registries-read.d");
    std::fs::create_dir_all(&regd_read).unwrap();
    std::fs::write(
        regd_read.join("default.yaml"),
        format!(
            "default-docker:\n  lookaside: file://{}\n",
            look_src.display()
        ),
    )
    .unwrap();
    let reject = tmp.path().join("reject.json");
    std::fs::write(&reject, r#"{"default": [{"type": "reject"}]}"#).unwrap();
    let docs = serde_json::json!([
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "release-key"},
         "stringData": {"pubring.asc": key}},
        {"apiVersion": "kubemirror.dev/v1alpha1", "kind": "ImageInspection", "metadata": {"name": "via-flag"},
         "spec": {
            "image": format!("{}/team/app:1.0.0", src.host), "tlsVerify": false,
            "verification": {"keys": [{"type": "GPG", "secretRef": {"name": "release-key", "key": "pubring.asc"}}]}}},
        {"apiVersion": "kubemirror.dev/v1alpha1", "kind": "ImageMirror", "metadata": {"name": "rejected"},
         "spec": {
            "source": {"repository": format!("{}/team/app", src.host), "tlsVerify": false},
            "destination": {"repository": format!("{}/rejected/app", dst.host), "tlsVerify": false},
            "tags": {"names": ["1.1.0"]}}},
    ]);
    let file = write_docs(tmp.path(), "flags.yaml", docs);
    let (ok, out, stderr) = sync_with(
        &[
            "--registries.d",
            regd_read.to_str().unwrap(),
            "--policy",
            reject.to_str().unwrap(),
        ],
        &file,
    );
    assert!(!ok, "{stderr}");
    let st = &out[0]["status"];
    assert_eq!(st["signatureSummary"], "1 (1 verified)", "{st:?}");
    let e = by_name(&out[1], "1.1.0")["error"].as_str().unwrap();
    assert!(e.contains("rejected by policy"), "{e}");
    // Without the flags neither happens.
    let (ok, out, stderr) = sync(&file);
    assert!(ok, "{stderr}");
    assert_eq!(out[0]["status"]["signatureSummary"], "none");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Write `docs` (a JSON array of objects) to `dir/name` as a YAML stream.
fn write_docs(dir: &Path, name: &str, docs: serde_json::Value) -> PathBuf {
    let file = dir.join(name);
    let yaml: String = docs
        .as_array()
        .unwrap()
        .iter()
        .map(|d| format!("---\n{}", serde_yaml::to_string(d).unwrap()))
        .collect();
    std::fs::write(&file, yaml).unwrap();
    file
}

fn condition<'a>(doc: &'a Value, type_: &str) -> &'a Value {
    doc["status"]["conditions"]
        .as_sequence()
        .and_then(|c| c.iter().find(|c| c["type"] == type_))
        .unwrap_or(&Value::Null)
}

fn by_name<'a>(doc: &'a Value, tag: &str) -> &'a Value {
    doc["status"]["tags"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|t| t["name"] == tag)
        .unwrap_or_else(|| panic!("no tag {tag} in {:?}", doc["status"]))
}

/// Cosign signatures live in the image's repository (`sha256-<hex>.sig`):
/// resources find, verify and copy them with no lookaside and no
/// registries.d. A mirror writes the attachments (`.sig`, `.att`, `.sbom`,
/// the referrers tag, new at the destination) byte for byte, refuses a tag signed only by an
/// untrusted key, and `Require` without keys is refused.
#[test]
fn cosign_attachments_need_no_configuration() {
    use support::cosign;
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst) = (Registry::plain(), Registry::plain());
    let (key, public) = cosign::key_pair(tmp.path(), "trusted");
    let (other_key, _) = cosign::key_pair(tmp.path(), "other");
    let h = &src.host;
    let signed = cosign::push_image(h, "team/app:1.0.0", "1", tmp.path());
    let unsigned = cosign::push_image(h, "team/app:1.1.0", "2", tmp.path());
    let sig_bytes = cosign::sign(h, "team/app", &signed, &key, tmp.path());
    // 1.1.0 is signed too, by a key nobody trusts.
    cosign::sign(h, "team/app", &unsigned, &other_key, tmp.path());
    let hex = signed.trim_start_matches("sha256:");
    let attached = [
        format!("sha256-{hex}.sig"),
        format!("sha256-{hex}.att"),
        format!("sha256-{hex}.sbom"),
        format!("sha256-{hex}"),
    ];
    for (i, tag) in attached[1..3].iter().enumerate() {
        cosign::push_image(
            h,
            &format!("team/app:{tag}"),
            &format!("{}", 10 + i),
            tmp.path(),
        );
    }
    // The referrers tag lists an SBOM whose `subject` is the image.
    let subject = cosign::raw_manifest(h, "team/app:1.0.0");
    let pusher = support::referrers::Pusher::plain(h);
    let sbom = pusher.attach("team/app", &subject, "application/spdx+json", b"{}");
    pusher.referrers_tag("team/app", &subject, &[&sbom]);

    let key_ref = serde_json::json!({"keys": [{"type": "Sigstore", "secretRef": {"name": "cosign-pub", "key": "cosign.pub"}}]});
    let mirror = |name: &str, to: &str, tags: serde_json::Value, extra: serde_json::Value| {
        let mut spec = serde_json::json!({
            "source": {"repository": format!("{h}/team/app"), "tlsVerify": false},
            "destination": {"repository": format!("{}/{to}", dst.host), "tlsVerify": false},
            "tags": {"names": tags}});
        for (k, v) in extra.as_object().unwrap() {
            spec[k] = v.clone();
        }
        serde_json::json!({"apiVersion": "kubemirror.dev/v1alpha1", "kind": "ImageMirror",
                           "metadata": {"name": name}, "spec": spec})
    };
    let inspect = |name: &str, tag: &str| {
        serde_json::json!({"apiVersion": "kubemirror.dev/v1alpha1", "kind": "ImageInspection",
            "metadata": {"name": name},
            "spec": {"image": format!("{h}/team/app:{tag}"), "tlsVerify": false, "verification": key_ref}})
    };
    let file = write_docs(
        tmp.path(),
        "cosign.yaml",
        serde_json::json!([
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "cosign-pub"},
             "stringData": {"cosign.pub": public}},
            inspect("signed", "1.0.0"),
            inspect("untrusted", "1.1.0"),
            mirror("keys", "mirror/app", serde_json::json!(["1.0.0", "1.1.0"]),
                   serde_json::json!({"signatures": "Require", "verification": key_ref})),
            mirror("copy", "plain/app", serde_json::json!(["1.0.0"]), serde_json::json!({})),
            mirror("require-no-keys", "other/app", serde_json::json!(["1.0.0"]),
                   serde_json::json!({"signatures": "Require"})),
        ]),
    );
    let (ok, out, stderr) = sync(&file);
    assert!(!ok, "{stderr}");

    let st = &out[0]["status"];
    assert_eq!(st["signatureSummary"], "1 (1 verified)", "{st:?}");
    assert_eq!(st["signatures"][0]["type"], "sigstore");
    assert_eq!(st["signatures"][0]["verified"], true);
    assert_eq!(st["signatures"][0]["manifestDigest"], signed.as_str());
    assert_eq!(condition(&out[0], "Ready")["status"], "True");
    // Present, by an untrusted key: reported, not verified.
    let st = &out[1]["status"];
    assert_eq!(st["signatureSummary"], "1 (0 verified)", "{st:?}");
    assert_eq!(st["signatures"][0]["verified"], false);
    let reason = st["signatures"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("trusted key"), "{reason}");

    // The mirror with keys: the signed tag and its attachments, byte for byte;
    // the tag signed by an untrusted key is refused and not written.
    let m = &out[2];
    assert_eq!(by_name(m, "1.0.0")["verified"], true, "{:?}", m["status"]);
    assert_eq!(by_name(m, "1.0.0")["signatures"], 1);
    let e = by_name(m, "1.1.0")["error"].as_str().unwrap();
    assert!(
        e.contains("no signature of") && e.contains("trusted key") && e.contains("Require"),
        "{e}"
    );
    for to in ["mirror/app", "plain/app"] {
        for tag in &attached {
            assert_eq!(
                cosign::raw_manifest(&dst.host, &format!("{to}:{tag}")),
                cosign::raw_manifest(h, &format!("team/app:{tag}")),
                "{to}:{tag}"
            );
        }
        assert_eq!(
            cosign::raw_manifest(&dst.host, &format!("{to}:1.0.0")),
            cosign::raw_manifest(h, "team/app:1.0.0")
        );
    }
    assert_eq!(
        cosign::raw_manifest(&dst.host, &format!("mirror/app:{}", attached[0])),
        sig_bytes
    );
    assert!(!cosign::exists(&dst.host, "mirror/app:1.1.0"));
    let unsigned_sig = format!("sha256-{}.sig", unsigned.trim_start_matches("sha256:"));
    assert!(!cosign::exists(
        &dst.host,
        &format!("mirror/app:{unsigned_sig}")
    ));
    assert_eq!(
        by_name(&out[3], "1.0.0")["signatures"],
        1,
        "{:?}",
        out[3]["status"]
    );

    // Require without keys: the spec is wrong, and says which field.
    let stalled = condition(&out[4], "Stalled");
    assert_eq!(stalled["status"], "True", "{:?}", out[4]["status"]);
    let msg = stalled["message"].as_str().unwrap();
    assert!(msg.contains("spec.verification.keys"), "{msg}");
    assert!(!cosign::exists(&dst.host, "other/app:1.0.0"));
}

/// `sync_with` off the async runtime (the proxy runs on it).
async fn sync_async(global: Vec<String>, file: PathBuf) -> (bool, Vec<Value>, String) {
    tokio::task::spawn_blocking(move || {
        let g: Vec<&str> = global.iter().map(String::as_str).collect();
        sync_with(&g, &file)
    })
    .await
    .unwrap()
}

/// The signatures judged and the image copied are the same bytes: a
/// registry whose tag moves to an unsigned image right after the first
/// read (a proxy answering with the other manifest) gets the verified image
/// mirrored, never the other — by an `ImageMirror` with keys and by
/// `copy --policy`. A lookaside that answers 503 is a passing fault (the
/// object is retried, not Stalled).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_that_moves_after_the_check_never_brings_the_unsigned_image() {
    use axum::http::StatusCode;
    use support::cosign;
    use support::proxy::{Action, Proxy};
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst) = (Registry::plain(), Registry::plain());
    let proxy = Proxy::start(&src.base_url()).await;
    let p = proxy.host.clone();
    let (key, public) = cosign::key_pair(tmp.path(), "trusted");
    let signed = cosign::push_image(&p, "team/app:1.0.0", "1", tmp.path());
    let unsigned = cosign::push_image(&p, "team/app:evil", "2", tmp.path());
    cosign::sign(&p, "team/app", &signed, &key, tmp.path());
    let signed_bytes = cosign::raw_manifest(&p, "team/app:1.0.0");
    let unsigned_bytes = cosign::raw_manifest(&p, "team/app:evil");
    assert_ne!(signed, unsigned);

    // After the first GET of the tag, it names the unsigned image.
    let moved = unsigned_bytes.clone();
    let digest = unsigned.clone();
    proxy.clear_log();
    proxy.set_rule(move |method, path, nth| {
        if path.starts_with("/sigs/") {
            return Action::Respond(StatusCode::SERVICE_UNAVAILABLE, vec![], b"busy".to_vec());
        }
        if path != "/v2/team/app/manifests/1.0.0" || (method == "GET" && nth == 0) {
            return Action::Forward;
        }
        Action::Respond(
            StatusCode::OK,
            vec![
                (
                    "Content-Type",
                    "application/vnd.oci.image.manifest.v1+json".into(),
                ),
                ("Docker-Content-Digest", digest.clone()),
            ],
            if method == "HEAD" {
                vec![]
            } else {
                moved.clone()
            },
        )
    });
    let key_ref = serde_json::json!({"keys": [{"type": "Sigstore", "secretRef": {"name": "cosign-pub", "key": "cosign.pub"}}]});
    let file = write_docs(
        tmp.path(),
        "moving.yaml",
        serde_json::json!([
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "cosign-pub"},
             "stringData": {"cosign.pub": public}},
            {"apiVersion": "kubemirror.dev/v1alpha1", "kind": "ImageMirror", "metadata": {"name": "moving"},
             "spec": {"source": {"repository": format!("{p}/team/app"), "tlsVerify": false},
                      "destination": {"repository": format!("{}/mirror/app", dst.host), "tlsVerify": false},
                      "tags": {"names": ["1.0.0"]}, "verification": key_ref}},
        ]),
    );
    let (ok, out, stderr) = sync_async(vec![], file).await;
    // The tag did move: anyone reading it now gets the unsigned image.
    assert_eq!(cosign::raw_manifest(&p, "team/app:1.0.0"), unsigned_bytes);
    assert!(ok, "{stderr}\n{:?}", out[0]["status"]);
    let written = cosign::raw_manifest(&dst.host, "mirror/app:1.0.0");
    assert!(written == signed_bytes, "the unsigned image was mirrored");
    let t = by_name(&out[0], "1.0.0");
    assert_eq!(t["verified"], true);
    assert_eq!(t["sourceDigest"], signed.as_str());
    assert_eq!(t["destinationDigest"], signed.as_str());

    // copy --policy: the same, through the CLI (skopeo's registries.d).
    proxy.clear_log();
    let policy = tmp.path().join("policy.json");
    std::fs::write(
        &policy,
        serde_json::to_vec(&serde_json::json!({"default": [{"type": "sigstoreSigned",
            "keyPath": tmp.path().join("trusted.pub"), "signedIdentity": {"type": "matchRepository"}}]}))
        .unwrap(),
    )
    .unwrap();
    let regd = tmp.path().join("registries.d");
    std::fs::create_dir(&regd).unwrap();
    std::fs::write(
        regd.join("a.yaml"),
        "default-docker:\n  use-sigstore-attachments: true\n",
    )
    .unwrap();
    let out = tokio::task::spawn_blocking({
        let (policy, regd, p, d) = (policy.clone(), regd.clone(), p.clone(), dst.host.clone());
        move || {
            support::kubemirror()
                .env("HOME", policy.parent().unwrap())
                .arg("--policy")
                .arg(&policy)
                .arg("--registries.d")
                .arg(&regd)
                .args(["copy", "--src-tls-verify=false", "--dest-tls-verify=false"])
                .arg(format!("docker://{p}/team/app:1.0.0"))
                .arg(format!("docker://{d}/cli/app:1.0.0"))
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        assert!(
            cosign::raw_manifest(&dst.host, "cli/app:1.0.0") == signed_bytes,
            "copy --policy wrote the unsigned image"
        );
    } else {
        assert!(stderr.contains("moved"), "{stderr}");
        assert!(!cosign::exists(&dst.host, "cli/app:1.0.0"));
    }

    // A lookaside answering 503: retried later, never Stalled.
    let file = write_docs(
        tmp.path(),
        "busy.yaml",
        serde_json::json!([
            {"apiVersion": "kubemirror.dev/v1alpha1", "kind": "ImageInspection", "metadata": {"name": "busy"},
             "spec": {"image": format!("{}/team/app:evil", src.host), "tlsVerify": false,
                      "signatureLookaside": format!("http://{p}/sigs/")}},
        ]),
    );
    let (ok, out, stderr) = sync_async(vec![], file).await;
    assert!(!ok, "{stderr}");
    assert_ne!(
        condition(&out[0], "Stalled")["status"],
        "True",
        "{:?}",
        out[0]["status"]
    );
    let ready = condition(&out[0], "Ready");
    assert_eq!(ready["status"], "False");
    let msg = ready["message"].as_str().unwrap();
    assert!(msg.contains("503"), "{msg}");
    assert!(
        proxy.log().iter().any(|s| s.path.starts_with("/sigs/")),
        "the lookaside was asked"
    );
}

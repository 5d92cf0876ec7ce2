//! `kubemirror sync -f FILE` end to end: the quickstart over local OCI
//! layouts, and a mirror between two real Distribution registries with
//! credentials and a CA from Secret documents in the file.
mod support;

use std::path::Path;

use serde_yaml::Value;
use support::registry::Registry;
use support::skopeo_digest;

/// Run `kubemirror sync -f FILE` from the repository root.
fn sync(file: &Path) -> (bool, Vec<Value>, String) {
    let out = support::kubemirror()
        .current_dir(support::repo_root())
        .env_remove("REGISTRY_AUTH_FILE")
        .env("HOME", file.parent().unwrap())
        .args(["sync", "-f"])
        .arg(file)
        .output()
        .expect("run kubemirror sync");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let docs = parse(&stdout);
    (
        out.status.success(),
        docs,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn parse(text: &str) -> Vec<Value> {
    use serde::Deserialize;
    serde_yaml::Deserializer::from_str(text)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

fn ready(doc: &Value) -> (String, String, String) {
    let c = doc["status"]["conditions"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .expect("a Ready condition");
    let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
    (s("status"), s("reason"), s("message"))
}

#[test]
fn quickstart_mirrors_and_inspects_local_layouts() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("quickstart");
    let text = std::fs::read_to_string(support::repo_root().join("examples/quickstart.yaml"))
        .unwrap()
        .replace("/tmp/kubemirror-quickstart", dest.to_str().unwrap());
    let file = tmp.path().join("quickstart.yaml");
    std::fs::write(&file, text).unwrap();

    let (ok, docs, stderr) = sync(&file);
    assert!(ok, "sync failed: {stderr}");
    assert_eq!(docs.len(), 2);
    let (mirror, inspection) = (&docs[0], &docs[1]);
    assert_eq!(ready(mirror).0, "True", "{:?}", ready(mirror));
    assert_eq!(ready(inspection).0, "True", "{:?}", ready(inspection));
    let tags: Vec<&str> = mirror["status"]["tags"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(tags, ["1.1.0", "1.0.0"]);
    // What status says was mirrored is what skopeo reads at the destination.
    for t in mirror["status"]["tags"].as_sequence().unwrap() {
        let name = t["name"].as_str().unwrap();
        let at_dest = skopeo_digest(&[&format!("oci:{}:{name}", dest.display())]);
        assert_eq!(t["destinationDigest"].as_str().unwrap(), at_dest, "{name}");
        assert_eq!(t["sourceDigest"], t["destinationDigest"]);
    }
    assert_eq!(
        inspection["status"]["digest"],
        mirror["status"]["tags"][0]["destinationDigest"]
    );
    assert_eq!(inspection["status"]["architecture"], "amd64");

    // Feeding the output back: still Ready, transition times and tag entries kept.
    let again = tmp.path().join("again.yaml");
    let yaml: String = docs
        .iter()
        .map(|d| format!("---\n{}", serde_yaml::to_string(d).unwrap()))
        .collect();
    std::fs::write(&again, yaml).unwrap();
    let (ok, docs2, stderr) = sync(&again);
    assert!(ok, "second sync failed: {stderr}");
    assert_eq!(
        docs2[0]["status"]["conditions"], docs[0]["status"]["conditions"],
        "nothing changed, so the conditions did not"
    );
    assert_eq!(docs2[0]["status"]["tags"], docs[0]["status"]["tags"]);
}

#[test]
fn mirrors_between_registries_with_secrets_from_the_file() {
    let src = Registry::plain();
    let dst = Registry::basic_auth("mirror", "s3cr3t-pass");
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("img");
    for (tag, seed) in [
        ("1.0.0", "1"),
        ("1.1.0", "2"),
        ("2.0.0", "3"),
        ("latest", "4"),
    ] {
        support::mkimage(
            &layout,
            &[
                "--tag",
                tag,
                "--layers",
                "1",
                "--layer-size",
                "4K",
                "--seed",
                seed,
            ],
        );
        support::run(
            support::skopeo()
                .args(["copy", "--dest-tls-verify=false"])
                .arg(format!("oci:{}:{tag}", layout.display()))
                .arg(src.image(&format!("team/app:{tag}"))),
        );
    }
    let ca = std::fs::read_to_string(dst.cert_dir().join("ca.crt")).unwrap();
    let dockercfg = serde_json::json!({"auths": {dst.host.clone(): {"username": "mirror", "password": "s3cr3t-pass"}}});
    let file = tmp.path().join("mirror.yaml");
    let doc = serde_json::json!([
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "push", "namespace": "ci"},
         "type": "kubernetes.io/dockerconfigjson", "stringData": {".dockerconfigjson": dockercfg.to_string()}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "dst-ca", "namespace": "ci"},
         "stringData": {"ca.crt": ca}},
        {"apiVersion": "kubemirror.dev/v1alpha1", "kind": "ImageMirror",
         "metadata": {"name": "app", "namespace": "ci"},
         "spec": {
            "source": {"repository": format!("{}/team/app", src.host), "tlsVerify": false},
            "destination": {"repository": format!("{}/mirror/app", dst.host),
                            "credentialsSecretRef": {"name": "push"},
                            "caSecretRef": {"name": "dst-ca", "key": "ca.crt"}},
            "tags": {"names": ["latest"], "semver": ">=1.0.0 <2.0.0"}}},
    ]);
    let yaml: String = doc
        .as_array()
        .unwrap()
        .iter()
        .map(|d| format!("---\n{}", serde_yaml::to_string(d).unwrap()))
        .collect();
    std::fs::write(&file, yaml).unwrap();

    let (ok, docs, stderr) = sync(&file);
    assert!(ok, "sync failed: {stderr}\n{docs:?}");
    assert_eq!(docs.len(), 1, "Secrets are not printed back");
    let text = serde_yaml::to_string(&docs[0]).unwrap();
    assert!(!text.contains("s3cr3t-pass"), "no credential in the output");
    let st = &docs[0]["status"];
    assert_eq!(st["summary"]["synced"], 3, "{text}");
    let cert_dir = format!("--cert-dir={}", dst.cert_dir().display());
    for t in st["tags"].as_sequence().unwrap() {
        let name = t["name"].as_str().unwrap();
        let theirs = skopeo_digest(&[
            "--creds=mirror:s3cr3t-pass",
            &cert_dir,
            &dst.image(&format!("mirror/app:{name}")),
        ]);
        assert_eq!(t["destinationDigest"].as_str().unwrap(), theirs, "{name}");
        let src_digest = skopeo_digest(&[
            "--tls-verify=false",
            &src.image(&format!("team/app:{name}")),
        ]);
        assert_eq!(t["sourceDigest"].as_str().unwrap(), src_digest, "{name}");
    }
    let out = support::run(support::skopeo().args([
        "list-tags",
        "--creds=mirror:s3cr3t-pass",
        &cert_dir,
        &dst.image("mirror/app"),
    ]));
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut listed: Vec<&str> = listed["Tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        ["1.0.0", "1.1.0", "latest"],
        "2.0.0 is outside the range"
    );
}

#[test]
fn missing_secret_stalls_and_exits_1() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("bad.yaml");
    std::fs::write(
        &file,
        "apiVersion: kubemirror.dev/v1alpha1\nkind: ImageMirror\nmetadata: {name: x}\nspec:\n  source: {repository: 127.0.0.1:1/a, credentialsSecretRef: {name: nowhere}}\n  destination: {repository: 'oci:/tmp/never'}\n  tags: {names: [v1]}\n",
    )
    .unwrap();
    let (ok, docs, stderr) = sync(&file);
    assert!(!ok);
    assert!(stderr.contains("imagemirror/x: SecretNotFound"), "{stderr}");
    assert!(stderr.contains("\"nowhere\""), "{stderr}");
    let stalled = docs[0]["status"]["conditions"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Stalled")
        .expect("Stalled");
    assert_eq!(stalled["status"], "True");
    // An unknown kind is an error naming it.
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
    )
    .unwrap();
    let (ok, _, stderr) = sync(&file);
    assert!(!ok);
    assert!(
        stderr.contains("unsupported kind \"ConfigMap\""),
        "{stderr}"
    );
}

/// A cosign signature is usually published after the image is pushed. A
/// mirror that selects by pattern lists the source's tags anyway, so it sees
/// the signature's tag appear and copies it on the next sync although the
/// image itself is unchanged (and probes no attachment tag that is absent).
#[test]
fn a_signature_published_after_the_image_follows_on_the_next_sync() {
    let (src, dst) = (Registry::plain(), Registry::plain());
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("img");
    for (tag, seed) in [("1.0.0", "1"), ("sig", "9")] {
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
    }
    let push = |tag: &str, to: &str| {
        support::run(
            support::skopeo()
                .args(["copy", "--dest-tls-verify=false"])
                .arg(format!("oci:{}:{tag}", layout.display()))
                .arg(src.image(to)),
        );
    };
    push("1.0.0", "team/app:1.0.0");
    let file = tmp.path().join("mirror.yaml");
    let doc = serde_json::json!({"apiVersion": "kubemirror.dev/v1alpha1", "kind": "ImageMirror",
        "metadata": {"name": "app", "namespace": "ci"},
        "spec": {
            "source": {"repository": format!("{}/team/app", src.host), "tlsVerify": false},
            "destination": {"repository": format!("{}/mirror/app", dst.host), "tlsVerify": false},
            "tags": {"pattern": "^1\\."}}});
    std::fs::write(&file, serde_yaml::to_string(&doc).unwrap()).unwrap();
    let (ok, docs, stderr) = sync(&file);
    assert!(ok, "sync failed: {stderr}\n{docs:?}");
    assert_eq!(ready(&docs[0]).0, "True", "{docs:?}");

    // Signed afterwards (a stand-in artifact under cosign's tag name).
    let digest = skopeo_digest(&["--tls-verify=false", &src.image("team/app:1.0.0")]);
    let sig_tag = format!("{}.sig", digest.replace(':', "-"));
    push("sig", &format!("team/app:{sig_tag}"));
    let (ok, docs, stderr) = sync(&file);
    assert!(ok, "sync failed: {stderr}\n{docs:?}");
    assert_eq!(ready(&docs[0]).0, "True", "{docs:?}");
    let raw = |image: String| {
        support::run(support::skopeo().args(["inspect", "--raw", "--tls-verify=false", &image]))
            .stdout
    };
    assert_eq!(
        raw(dst.image(&format!("mirror/app:{sig_tag}"))),
        raw(src.image(&format!("team/app:{sig_tag}"))),
        "the signature arrived byte for byte"
    );
    assert_eq!(
        docs[0]["status"]["summary"]["synced"], 1,
        "the signature tag is not a mirrored tag: {docs:?}"
    );
}

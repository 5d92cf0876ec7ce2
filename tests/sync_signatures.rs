//! `sync -f` with signatures: skopeo signs a registry image with GnuPG into a
//! `file://` lookaside; an `ImageMirror` with `verification` mirrors only
//! what the trusted key signed (copying the signature to the destination's
//! lookaside), and an `ImageInspection` reports the signature as verified.
mod support;

use std::path::Path;
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
    use serde::Deserialize;
    let out = support::kubemirror()
        .env_remove("REGISTRY_AUTH_FILE")
        .env("HOME", file.parent().unwrap())
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

//! Signatures against real peers (this file: the peers): gpg and skopeo make simple signatures,
//! openssl makes sigstore ones; our verifier and policy must agree with
//! skopeo's verdicts on the same inputs, and what we write to registries
//! (lookaside, sigstore attachments) must satisfy skopeo's policy.

#[path = "../support/mod.rs"]
mod support;

mod local;
mod registry;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use bytes::Bytes;
use kubemirror::digest::{self, Digest};
use kubemirror::image::Signature;
use kubemirror::signature::sigstore;
use kubemirror::signature::simple::Payload;
use support::{mkimage, run, skopeo};

pub const IDENTITY: &str = "registry.example/team/app:v1";

/// A throwaway GnuPG home with one signing key.
pub struct Gpg {
    pub home: tempfile::TempDir,
    pub fpr: String,
}

impl Gpg {
    pub fn new(uid: &str, algo: &str) -> Self {
        Self::generate(uid, algo, "never", None)
    }

    /// A key of `algo` for `uid` expiring after `expire` (`never`, `1d`, ...),
    /// made at `faked_time` (`gpg --faked-system-time`) when given.
    pub fn generate(uid: &str, algo: &str, expire: &str, faked_time: Option<&str>) -> Self {
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
        let mut c = g.cmd();
        if let Some(time) = faked_time {
            c.args(["--faked-system-time", time]);
        }
        run(c.args([
            "--passphrase",
            "",
            "--quick-gen-key",
            uid,
            algo,
            "sign",
            expire,
        ]));
        let out = run(g.cmd().args(["--list-keys", "--with-colons"]));
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

    pub fn cmd(&self) -> Command {
        let mut c = Command::new("gpg");
        c.env("GNUPGHOME", self.home.path()).arg("--batch");
        c
    }

    pub fn export(&self, armor: bool) -> Vec<u8> {
        let mut c = self.cmd();
        if armor {
            c.arg("--armor");
        }
        run(c.args(["--export", &self.fpr])).stdout
    }

    pub fn export_to(&self, dir: &Path, name: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, self.export(false)).unwrap();
        p
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

/// A one-layer OCI layout at `dir/layout` (tag `t`).
pub fn layout(dir: &Path) -> PathBuf {
    let p = dir.join("layout");
    mkimage(&p, &["--tag", "t", "--layers", "1", "--layer-size", "1K"]);
    p
}

/// skopeo copies the layout to `dir:OUT`, signing as `identity` with `gpg`'s key.
pub fn skopeo_signed_dir(gpg: &Gpg, layout: &Path, out: &Path, identity: &str) {
    run(skopeo().env("GNUPGHOME", gpg.home.path()).args([
        "copy",
        "-q",
        "--sign-by",
        &gpg.fpr,
        "--sign-identity",
        identity,
        &format!("oci:{}:t", layout.display()),
        &format!("dir:{}", out.display()),
    ]));
}

pub fn manifest_digest(dir: &Path) -> (Vec<u8>, Digest) {
    let m = std::fs::read(dir.join("manifest.json")).unwrap();
    let d = digest::sha256(&m);
    (m, d)
}

/// An openssl P-256 key pair: (private key path, public key PEM).
pub fn openssl_key(dir: &Path, name: &str) -> (PathBuf, Vec<u8>) {
    let (key, pem) = support::cosign::key_pair(dir, name);
    (key, pem.into_bytes())
}

/// A cosign-shaped signature over `payload`, signed by openssl.
pub fn openssl_sign(dir: &Path, key: &Path, payload: &[u8]) -> Signature {
    let f = dir.join("payload.json");
    std::fs::write(&f, payload).unwrap();
    let der = run(Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .arg(&f))
    .stdout;
    let mut annotations = BTreeMap::new();
    annotations.insert(
        sigstore::ANNOTATION_SIGNATURE.to_string(),
        base64::engine::general_purpose::STANDARD.encode(der),
    );
    Signature::Sigstore {
        media_type: sigstore::MEDIA_TYPE.into(),
        payload: Bytes::copy_from_slice(payload),
        annotations,
    }
}

pub fn cosign_payload(identity: &str, d: &Digest) -> Vec<u8> {
    Payload::to_json(identity, d.as_ref(), sigstore::PAYLOAD_TYPE)
}

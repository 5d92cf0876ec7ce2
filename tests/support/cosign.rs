//! Cosign-format signatures without cosign: a P-256 key pair and ECDSA
//! signatures made by openssl, the `sha256-<hex>.sig` attachment image built
//! as cosign lays it out (one layer per signature, the signature in the
//! `dev.cosignproject.cosign/signature` annotation) and pushed by skopeo, so
//! that nothing of kubemirror's own writes what the tests then read.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;

use super::{mkimage, run, skopeo};

/// The layer media type of a cosign signature.
pub const SIGNATURE_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";

/// An openssl P-256 key pair in `dir`: (private key path, public key PEM).
pub fn key_pair(dir: &Path, name: &str) -> (PathBuf, String) {
    let k = dir.join(format!("{name}.key"));
    let p = dir.join(format!("{name}.pub"));
    run(Command::new("openssl")
        .args([
            "ecparam",
            "-genkey",
            "-name",
            "prime256v1",
            "-noout",
            "-out",
        ])
        .arg(&k));
    run(Command::new("openssl")
        .args(["ec", "-in"])
        .arg(&k)
        .args(["-pubout", "-out"])
        .arg(&p));
    (k, std::fs::read_to_string(p).unwrap())
}

fn sha256_hex(b: &[u8]) -> String {
    kubemirror::digest::hex_of(&kubemirror::digest::sha256(b)).to_string()
}

/// What `cosign sign` signs: the repository (no tag) and the digest.
pub fn payload(repository: &str, digest: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "critical": {
            "identity": {"docker-reference": repository},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature"
        },
        "optional": null
    }))
    .unwrap()
}

/// Sign `digest` of `host/repo` with `key` and push the attachment
/// `host/repo:sha256-<hex>.sig` (plain HTTP) with skopeo, as `cosign sign
/// --key` leaves it. Returns the attachment's manifest bytes.
pub fn sign(host: &str, repo: &str, digest: &str, key: &Path, tmp: &Path) -> Vec<u8> {
    let work = tempfile::Builder::new()
        .prefix("cosign")
        .tempdir_in(tmp)
        .unwrap();
    let payload = payload(&format!("{host}/{repo}"), digest);
    let pf = work.path().join("payload");
    std::fs::write(&pf, &payload).unwrap();
    let der = run(Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .arg(&pf))
    .stdout;
    let sig = base64::engine::general_purpose::STANDARD.encode(der);
    let mut annotations = serde_json::Map::new();
    annotations.insert("dev.cosignproject.cosign/signature".into(), sig.into());
    push_signature(host, repo, digest, &payload, annotations, work.path())
}

/// Push the attachment `host/repo:sha256-<hex>.sig` (plain HTTP) with
/// skopeo: one layer, `payload`, with `annotations` (a keyless signature's
/// are the signature, certificate, chain and Rekor bundle). Returns the
/// attachment's manifest bytes.
pub fn push_signature(
    host: &str,
    repo: &str,
    digest: &str,
    payload: &[u8],
    annotations: serde_json::Map<String, serde_json::Value>,
    tmp: &Path,
) -> Vec<u8> {
    let work = tempfile::Builder::new()
        .prefix("cosign")
        .tempdir_in(tmp)
        .unwrap();
    let layer_hex = sha256_hex(payload);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "", "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}], "os": "",
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{layer_hex}")]},
        "config": {}
    }))
    .unwrap();
    let config_hex = sha256_hex(&config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "size": config.len(), "digest": format!("sha256:{config_hex}")},
        "layers": [{"mediaType": SIGNATURE_MEDIA_TYPE, "size": payload.len(),
                    "digest": format!("sha256:{layer_hex}"),
                    "annotations": annotations}]
    }))
    .unwrap();
    let dir = work.path().join("att");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("version"), "Directory Transport Version: 1.1\n").unwrap();
    std::fs::write(dir.join("manifest.json"), &manifest).unwrap();
    std::fs::write(dir.join(&layer_hex), payload).unwrap();
    std::fs::write(dir.join(&config_hex), &config).unwrap();
    let tag = format!("sha256-{}.sig", digest.trim_start_matches("sha256:"));
    run(skopeo().args([
        "copy",
        "-q",
        "--dest-tls-verify=false",
        &format!("dir:{}", dir.display()),
        &format!("docker://{host}/{repo}:{tag}"),
    ]));
    manifest
}

/// Push a small synthetic image (distinct per `seed`) to `host/repo:tag`
/// over plain HTTP; returns its manifest digest as the registry holds it.
pub fn push_image(host: &str, repo_tag: &str, seed: &str, tmp: &Path) -> String {
    let layout = tmp.join(format!("layout-{seed}"));
    mkimage(
        &layout,
        &[
            "--tag",
            "t",
            "--layers",
            "1",
            "--layer-size",
            "2K",
            "--seed",
            seed,
        ],
    );
    run(skopeo().args([
        "copy",
        "-q",
        "--dest-tls-verify=false",
        &format!("oci:{}:t", layout.display()),
        &format!("docker://{host}/{repo_tag}"),
    ]));
    format!("sha256:{}", sha256_hex(&raw_manifest(host, repo_tag)))
}

/// `skopeo inspect --raw` over plain HTTP: the manifest bytes as stored.
pub fn raw_manifest(host: &str, repo_tag: &str) -> Vec<u8> {
    run(skopeo().args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{host}/{repo_tag}"),
    ]))
    .stdout
}

/// Whether `host/repo:tag` exists (plain HTTP).
pub fn exists(host: &str, repo_tag: &str) -> bool {
    skopeo()
        .args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{host}/{repo_tag}"),
        ])
        .output()
        .unwrap()
        .status
        .success()
}

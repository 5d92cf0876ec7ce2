//! Artifacts pushed to a real Distribution registry with curl, as OCI 1.1
//! clients push them: blobs, manifests by digest or tag, and Sigstore
//! bundles attached as referrers (cosign 3's layout: an artifact manifest
//! whose `subject` is the image, optionally the `sha256-<hex>` fallback
//! index). Shared by the keyless journeys (CLI and controller).

use super::registry::Registry;

/// Where curl pushes: a base URL and the CA to trust (TLS).
pub struct Target {
    pub base: String,
    pub ca: Option<std::path::PathBuf>,
}

impl Target {
    pub fn tls(reg: &Registry) -> Target {
        Target {
            base: format!("https://{}", reg.host),
            ca: Some(reg.cert_dir().join("ca.crt")),
        }
    }

    pub fn plain(host: &str) -> Target {
        Target {
            base: format!("http://{host}"),
            ca: None,
        }
    }

    /// `curl ARGS` (body from `body`): (status, headers).
    pub fn curl(&self, args: &[&str], body: Option<&[u8]>) -> (u16, String) {
        let dir = tempfile::tempdir().unwrap();
        let mut c = std::process::Command::new("curl");
        c.arg("-s");
        if let Some(ca) = &self.ca {
            c.arg("--cacert").arg(ca);
        }
        c.args(["-D", "-", "-o", "/dev/null", "-w", "%{http_code}"]);
        if let Some(b) = body {
            let f = dir.path().join("body");
            std::fs::write(&f, b).unwrap();
            c.arg("--data-binary").arg(format!("@{}", f.display()));
        }
        let out = c.args(args).output().expect("curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let code = text[text.len().saturating_sub(3)..].parse().unwrap_or(0);
        (code, text)
    }

    /// Push a blob to `repo` (monolithic upload).
    pub fn push_blob(&self, repo: &str, blob: &[u8]) -> String {
        let base = &self.base;
        let (code, headers) = self.curl(
            &["-X", "POST", &format!("{base}/v2/{repo}/blobs/uploads/")],
            None,
        );
        assert_eq!(code, 202, "{headers}");
        let loc = headers
            .lines()
            .find_map(|l| {
                l.strip_prefix("Location: ")
                    .or_else(|| l.strip_prefix("location: "))
            })
            .unwrap()
            .trim()
            .to_string();
        let loc = if loc.starts_with("http") {
            loc
        } else {
            format!("{base}{loc}")
        };
        let d = format!("sha256:{}", sha256_hex(blob));
        let sep = if loc.contains('?') { '&' } else { '?' };
        let (code, headers) = self.curl(
            &[
                "-X",
                "PUT",
                "-H",
                "Content-Type: application/octet-stream",
                &format!("{loc}{sep}digest={d}"),
            ],
            Some(blob),
        );
        assert_eq!(code, 201, "{headers}");
        d
    }

    pub fn put_manifest(&self, repo: &str, reference: &str, media_type: &str, body: &[u8]) {
        let (code, headers) = self.curl(
            &[
                "-X",
                "PUT",
                "-H",
                &format!("Content-Type: {media_type}"),
                &format!("{}/v2/{repo}/manifests/{reference}", self.base),
            ],
            Some(body),
        );
        assert_eq!(code, 201, "{headers}");
    }

    /// Push `bundle` as cosign 3 attaches it: an artifact manifest whose
    /// `subject` is the image `subject` of `repo`; returns the manifest.
    /// With `fallback_tag`, also the OCI index tagged `sha256-<hex>` that a
    /// registry without the referrers API needs.
    pub fn attach_bundle(
        &self,
        repo: &str,
        subject: &str,
        subject_manifest: &[u8],
        bundle: &[u8],
        fallback_tag: bool,
    ) -> Vec<u8> {
        const BUNDLE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
        let empty = self.push_blob(repo, b"{}");
        let layer = self.push_blob(repo, bundle);
        let artifact = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": BUNDLE,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
            "layers": [{"mediaType": BUNDLE, "digest": layer, "size": bundle.len()}],
            "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "digest": subject, "size": subject_manifest.len()}
        }))
        .unwrap();
        let artifact_digest = format!("sha256:{}", sha256_hex(&artifact));
        self.put_manifest(
            repo,
            &artifact_digest,
            "application/vnd.oci.image.manifest.v1+json",
            &artifact,
        );
        if fallback_tag {
            let index = serde_json::to_vec(&serde_json::json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                               "digest": artifact_digest, "size": artifact.len(), "artifactType": BUNDLE}]
            }))
            .unwrap();
            let tag = format!("sha256-{}", subject.trim_start_matches("sha256:"));
            self.put_manifest(
                repo,
                &tag,
                "application/vnd.oci.image.index.v1+json",
                &index,
            );
        }
        artifact
    }
}

pub fn sha256_hex(b: &[u8]) -> String {
    kubemirror::digest::hex_of(&kubemirror::digest::sha256(b)).to_string()
}

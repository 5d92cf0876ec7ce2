//! A test-only OCI 1.1 referrers API over Distribution 2.8 (which has
//! none): a [`Proxy`] in front of the registry answers
//! `GET /v2/<name>/referrers/<digest>[?artifactType=T]` with an OCI index of
//! the manifests registered with it whose `subject` is `<digest>` (their
//! `artifactType`, `annotations`), as a registry with the API computes it
//! from stored manifests; everything else goes to the registry unchanged.
//! Tests register each manifest they push with a `subject`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;

use super::proxy::{Action, Proxy};

type Index = Arc<Mutex<HashMap<(String, String), Vec<serde_json::Value>>>>;

pub struct ReferrersApi {
    pub proxy: Proxy,
    index: Index,
}

impl ReferrersApi {
    /// Start in front of `upstream` (`http://127.0.0.1:PORT`).
    pub async fn start(upstream: &str) -> ReferrersApi {
        let proxy = Proxy::start(upstream).await;
        let index: Index = Arc::default();
        let idx = index.clone();
        proxy.set_rule(move |method, pq, _| {
            let (path, query) = pq.split_once('?').unwrap_or((pq, ""));
            let Some((repo, digest)) = path
                .strip_prefix("/v2/")
                .and_then(|p| p.rsplit_once("/referrers/"))
            else {
                return Action::Forward;
            };
            if method != "GET" {
                return Action::Forward;
            }
            let filter = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("artifactType="))
                .map(|t| {
                    t.replace("%2F", "/")
                        .replace("%2B", "+")
                        .replace("%2E", ".")
                        .replace("%3D", "=")
                        .replace("%3B", ";")
                });
            let manifests: Vec<serde_json::Value> = idx
                .lock()
                .unwrap()
                .get(&(repo.to_string(), digest.to_string()))
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|d| filter.as_deref().is_none_or(|t| d["artifactType"] == t))
                .collect();
            let body = serde_json::to_vec(&serde_json::json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": manifests
            }))
            .unwrap();
            let mut headers = vec![(
                "Content-Type",
                "application/vnd.oci.image.index.v1+json".to_string(),
            )];
            if filter.is_some() {
                headers.push(("OCI-Filters-Applied", "artifactType".to_string()));
            }
            Action::Respond(StatusCode::OK, headers, body)
        });
        ReferrersApi { proxy, index }
    }

    /// `127.0.0.1:PORT` of the layer.
    pub fn host(&self) -> String {
        self.proxy.host.clone()
    }

    /// Record a manifest pushed to `repo`: listed under its `subject`.
    pub fn register(&self, repo: &str, manifest: &[u8]) {
        let m: serde_json::Value = serde_json::from_slice(manifest).unwrap();
        let Some(subject) = m["subject"]["digest"].as_str() else {
            return;
        };
        let digest = format!(
            "sha256:{}",
            kubemirror::digest::hex_of(&kubemirror::digest::sha256(manifest))
        );
        let mut d = serde_json::json!({
            "mediaType": m["mediaType"], "digest": digest, "size": manifest.len(),
        });
        if let Some(t) = m.get("artifactType") {
            d["artifactType"] = t.clone();
        }
        if let Some(a) = m.get("annotations") {
            d["annotations"] = a.clone();
        }
        self.index
            .lock()
            .unwrap()
            .entry((repo.to_string(), subject.to_string()))
            .or_default()
            .push(d);
    }
}

/// Pushes OCI 1.1 artifacts to a registry (through `curl`, as a tool that
/// speaks the distribution API directly would).
pub struct Pusher {
    base: String,
    /// The CA to trust, over TLS.
    ca: Option<std::path::PathBuf>,
}

/// `application/vnd.oci.image.manifest.v1+json`.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// `application/vnd.oci.image.index.v1+json`.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

impl Pusher {
    /// For the registry (or proxy) at `host` (`127.0.0.1:PORT`).
    pub fn plain(host: &str) -> Pusher {
        Pusher {
            base: format!("http://{host}"),
            ca: None,
        }
    }

    /// For the registry at `host` over TLS, trusting `ca` (a PEM file).
    pub fn tls(host: &str, ca: &std::path::Path) -> Pusher {
        Pusher {
            base: format!("https://{host}"),
            ca: Some(ca.to_path_buf()),
        }
    }

    /// `curl ARGS` with `body` sent: (status, response headers).
    fn curl(&self, args: &[&str], body: Option<&[u8]>) -> (u16, String) {
        let dir = tempfile::tempdir().unwrap();
        let mut c = std::process::Command::new("curl");
        c.args(["-s", "-D", "-", "-o", "/dev/null", "-w", "%{http_code}"]);
        if let Some(ca) = &self.ca {
            c.arg("--cacert").arg(ca);
        }
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

    /// Push `bytes` as a blob of `repo` (POST, then one PUT); its digest.
    pub fn push_blob(&self, repo: &str, bytes: &[u8]) -> String {
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
        let digest = sha256(bytes);
        let sep = if loc.contains('?') { '&' } else { '?' };
        let (code, headers) = self.curl(
            &[
                "-X",
                "PUT",
                "-H",
                "Content-Type: application/octet-stream",
                &format!("{loc}{sep}digest={digest}"),
            ],
            Some(bytes),
        );
        assert_eq!(code, 201, "{headers}");
        digest
    }

    /// PUT `body` as manifest `reference` of `repo`.
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

    /// Push an artifact of `artifact_type` holding `payload`, whose
    /// `subject` is the manifest `subject` (bytes) of `repo`: its manifest.
    pub fn attach(
        &self,
        repo: &str,
        subject: &[u8],
        artifact_type: &str,
        payload: &[u8],
    ) -> Vec<u8> {
        let empty = self.push_blob(repo, b"{}");
        let layer = self.push_blob(repo, payload);
        let subject_type =
            serde_json::from_slice::<serde_json::Value>(subject).unwrap()["mediaType"].clone();
        let artifact = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
            "layers": [{"mediaType": artifact_type, "digest": layer, "size": payload.len()}],
            "subject": {"mediaType": subject_type, "digest": sha256(subject), "size": subject.len()}
        }))
        .unwrap();
        self.put_manifest(repo, &sha256(&artifact), OCI_MANIFEST, &artifact);
        artifact
    }

    /// Tag, as `sha256-<hex>` of `subject`, the OCI index listing `artifacts`
    /// (the referrers tag schema of a registry without the API).
    pub fn referrers_tag(&self, repo: &str, subject: &[u8], artifacts: &[&[u8]]) {
        let index = referrers_index(artifacts);
        let tag = sha256(subject).replace(':', "-");
        self.put_manifest(repo, &tag, OCI_INDEX, &index);
    }
}

/// An OCI index listing `artifacts` (manifests) as a referrers index does.
pub fn referrers_index(artifacts: &[&[u8]]) -> Vec<u8> {
    let manifests: Vec<serde_json::Value> = artifacts
        .iter()
        .map(|a| {
            let m: serde_json::Value = serde_json::from_slice(a).unwrap();
            serde_json::json!({"mediaType": m["mediaType"], "digest": sha256(a),
                               "size": a.len(), "artifactType": m["artifactType"]})
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests
    }))
    .unwrap()
}

/// `sha256:<hex>` of `b`.
pub fn sha256(b: &[u8]) -> String {
    kubemirror::digest::sha256(b).to_string()
}

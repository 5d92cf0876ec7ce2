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

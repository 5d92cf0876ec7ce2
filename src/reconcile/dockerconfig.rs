//! Credentials from a `.dockerconfigjson` document (a Kubernetes
//! `kubernetes.io/dockerconfigjson` Secret, or `sync --authfile`):
//! `{"auths": {"HOST": {"auth": base64(user:pass)} | {"username", "password"} | {"identitytoken"}}}`.
//!
//! A minimal reader for the reconcilers until `crate::credentials` (branch
//! `docker`) offers one; the registry keys are normalised as docker does
//! (`https://index.docker.io/v1/` is `docker.io`).

use std::collections::BTreeMap;

use base64::Engine;
use serde::Deserialize;

use crate::image::{Auth, CredentialStore, Result, Secret};

#[derive(Deserialize)]
struct ConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, Entry>,
}

#[derive(Deserialize, Default)]
struct Entry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

/// Credentials per registry host. `Debug` shows the hosts only.
#[derive(Clone, Default)]
pub struct DockerConfigStore {
    auths: BTreeMap<String, Auth>,
}

impl std::fmt::Debug for DockerConfigStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerConfigStore")
            .field("registries", &self.auths.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl DockerConfigStore {
    /// Parse a docker config document. Errors never quote the document.
    pub fn from_json(bytes: &[u8]) -> std::result::Result<Self, String> {
        let file: ConfigFile = serde_json::from_slice(bytes).map_err(|e| {
            format!(
                "not a docker config JSON document (line {}, column {})",
                e.line(),
                e.column()
            )
        })?;
        let mut auths = BTreeMap::new();
        for (key, e) in file.auths {
            let host = normalise_host(&key);
            let auth = if let Some(token) = e.identitytoken.filter(|t| !t.is_empty()) {
                Auth::IdentityToken {
                    username: e.username.unwrap_or_default(),
                    token: Secret::new(token),
                }
            } else if let Some(a) = e.auth.filter(|a| !a.is_empty()) {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(a.trim())
                    .ok()
                    .and_then(|d| String::from_utf8(d).ok())
                    .ok_or_else(|| {
                        format!("auths[{host:?}].auth is not base64 of USER:PASSWORD")
                    })?;
                let (u, p) = decoded.split_once(':').ok_or_else(|| {
                    format!("auths[{host:?}].auth is not base64 of USER:PASSWORD")
                })?;
                Auth::Basic {
                    username: u.to_string(),
                    password: Secret::new(p),
                }
            } else if let Some(u) = e.username {
                Auth::Basic {
                    username: u,
                    password: Secret::new(e.password.unwrap_or_default()),
                }
            } else {
                continue;
            };
            auths.insert(host, auth);
        }
        Ok(DockerConfigStore { auths })
    }

    /// Read an auth file (`--authfile`).
    pub fn from_file(path: &std::path::Path) -> std::result::Result<Self, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        Self::from_json(&bytes).map_err(|e| format!("{}: {e}", path.display()))
    }
}

impl CredentialStore for DockerConfigStore {
    fn lookup(&self, registry: &str) -> Result<Option<Auth>> {
        Ok(self.auths.get(&normalise_host(registry)).cloned())
    }
}

/// `https://host:port/v1/` → `host:port`; Docker Hub's aliases → `docker.io`.
fn normalise_host(key: &str) -> String {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = k.split('/').next().unwrap_or(k);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".into()
        }
        h => h.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_entry_shape() {
        let s = DockerConfigStore::from_json(
            br#"{"auths":{
                "https://index.docker.io/v1/":{"auth":"dTpwOnE="},
                "reg:5000":{"username":"a","password":"b"},
                "tok.example":{"username":"x","identitytoken":"t"}}}"#,
        )
        .unwrap();
        let Some(Auth::Basic { username, password }) = s.lookup("docker.io").unwrap() else {
            panic!()
        };
        assert_eq!((username.as_str(), password.expose()), ("u", "p:q"));
        assert!(matches!(
            s.lookup("reg:5000").unwrap(),
            Some(Auth::Basic { .. })
        ));
        assert!(matches!(
            s.lookup("tok.example").unwrap(),
            Some(Auth::IdentityToken { .. })
        ));
        assert!(!format!("{s:?}").contains("dTp"));
    }

    #[test]
    fn errors_do_not_quote_the_document() {
        let e =
            DockerConfigStore::from_json(br#"{"auths":{"r":{"auth":"secret!!"}}}"#).unwrap_err();
        assert!(!e.contains("secret!!"), "{e}");
        let e = DockerConfigStore::from_json(b"hunter2").unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
    }
}

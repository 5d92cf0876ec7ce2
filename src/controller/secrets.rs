//! Secrets (and the ConfigMaps of `trustedRootRef`) for the reconcilers,
//! read from the API in the object's namespace by name, and the reverse
//! maps the metadata-only watches use (which objects name a Secret, a
//! ConfigMap).

use std::collections::BTreeMap;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;

use crate::reconcile::{SecretData, SecretSource};

/// Secrets of one namespace through the API.
pub struct ApiSecrets {
    pub api: Api<Secret>,
    pub config_maps: Api<ConfigMap>,
    pub namespace: String,
}

#[async_trait]
impl SecretSource for ApiSecrets {
    fn namespace(&self) -> &str {
        &self.namespace
    }

    async fn get(&self, name: &str) -> Result<Option<SecretData>, String> {
        // The error names the Secret and the API failure, never the data.
        let s = self.api.get_opt(name).await.map_err(|e| e.to_string())?;
        Ok(s.map(|s| {
            let mut data: std::collections::BTreeMap<String, Vec<u8>> = s
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect();
            // Servers fold stringData into data; an emulator may not.
            for (k, v) in s.string_data.unwrap_or_default() {
                data.entry(k).or_insert_with(|| v.into_bytes());
            }
            SecretData {
                type_: s.type_,
                data,
            }
        }))
    }

    async fn config_map(&self, name: &str) -> Result<Option<BTreeMap<String, Vec<u8>>>, String> {
        let c = self
            .config_maps
            .get_opt(name)
            .await
            .map_err(|e| e.to_string())?;
        Ok(c.map(|c| {
            let mut data: BTreeMap<String, Vec<u8>> = c
                .binary_data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect();
            for (k, v) in c.data.unwrap_or_default() {
                data.insert(k, v.into_bytes());
            }
            data
        }))
    }
}

/// Every Secret a spec names, derived from the spec types themselves: the
/// `name` of every object under a key ending in `SecretRef` / `secretRef`
/// (`credentialsSecretRef`, `caSecretRef`, `verification.keys[].secretRef`,
/// …) and of every `…Ref` whose `kind` is `Secret` (`trustedRootRef`). A
/// new `*SecretRef` field is found without an edit here, so it never loses
/// the re-reconcile on a change of its Secret.
pub fn secret_names<S: serde::Serialize>(spec: &S) -> Vec<String> {
    ref_names(spec, "Secret")
}

/// Every ConfigMap a spec names: every `…Ref` whose `kind` is `ConfigMap`
/// (`trustedRootRef`).
pub fn config_map_names<S: serde::Serialize>(spec: &S) -> Vec<String> {
    ref_names(spec, "ConfigMap")
}

fn ref_names<S: serde::Serialize>(spec: &S, kind: &str) -> Vec<String> {
    fn walk(kind: &str, key: &str, v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(map) => {
                let name = map.get("name").and_then(|n| n.as_str());
                let lower = key.to_ascii_lowercase();
                let is_ref = (kind == "Secret" && lower.ends_with("secretref"))
                    || (lower.ends_with("ref")
                        && map.get("kind").and_then(|k| k.as_str()) == Some(kind));
                if let (true, Some(name)) = (is_ref, name)
                    && !out.iter().any(|n| n == name)
                {
                    out.push(name.to_string());
                }
                for (k, v) in map {
                    walk(kind, k, v, out);
                }
            }
            serde_json::Value::Array(items) => {
                for v in items {
                    walk(kind, key, v, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Ok(v) = serde_json::to_value(spec) {
        walk(kind, "", &v, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::v1alpha1::{ImageInspectionSpec, ImageMirrorSpec};

    #[test]
    fn every_secret_ref_of_a_spec_is_found() {
        let spec: ImageMirrorSpec = serde_json::from_value(serde_json::json!({
            "source": {"repository": "a.io/x", "credentialsSecretRef": {"name": "src-pull"},
                       "caSecretRef": {"name": "src-ca", "key": "ca.crt"}},
            "destination": {"repository": "b.io/x", "credentialsSecretRef": {"name": "dst-push"}},
            "tags": {"names": ["v1"]},
            "verification": {"keys": [
                {"type": "Sigstore", "secretRef": {"name": "cosign-pub", "key": "cosign.pub"}},
                {"type": "GPG", "secretRef": {"name": "src-pull", "key": "k"}}
            ]}
        }))
        .unwrap();
        let mut names = secret_names(&spec);
        names.sort();
        assert_eq!(names, ["cosign-pub", "dst-push", "src-ca", "src-pull"]);
        let spec: ImageInspectionSpec = serde_json::from_value(serde_json::json!({
            "image": "a.io/x:v1", "credentialsSecretRef": {"name": "pull"},
            "caSecretRef": {"name": "ca", "key": "ca.crt"}
        }))
        .unwrap();
        let mut names = secret_names(&spec);
        names.sort();
        assert_eq!(names, ["ca", "pull"]);
    }

    /// Fields added later are found by their shape, with no edit here.
    #[test]
    fn new_secret_ref_fields_need_no_edit() {
        let spec = serde_json::json!({
            "someNewSecretRef": {"name": "new"},
            "verification": {"trustedRootRef": {"kind": "Secret", "name": "root", "key": "k"}},
            "otherRef": {"kind": "ConfigMap", "name": "not-a-secret"},
            "name": "not-a-ref"
        });
        let mut names = secret_names(&spec);
        names.sort();
        assert_eq!(names, ["new", "root"]);
        assert_eq!(config_map_names(&spec), ["not-a-secret"]);
    }
}

//! Secrets for the reconcilers, read from the API in the object's namespace,
//! and the reverse map the Secret watch uses (which objects name a Secret).

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;

use crate::api::v1alpha1::{ImageInspectionSpec, ImageMirrorSpec, VerificationSpec};
use crate::reconcile::{SecretData, SecretSource};

/// Secrets of one namespace through the API.
pub struct ApiSecrets {
    pub api: Api<Secret>,
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
}

fn verification_names(v: Option<&VerificationSpec>) -> impl Iterator<Item = &str> {
    v.into_iter().flat_map(|v| {
        v.keys.iter().map(|k| k.secret_ref.name.as_str()).chain(
            v.trusted_root_ref
                .iter()
                .filter(|r| r.kind == crate::api::v1alpha1::TrustedRootKind::Secret)
                .map(|r| r.name.as_str()),
        )
    })
}

/// Every Secret an `ImageMirror` names.
pub fn mirror_secret_names(spec: &ImageMirrorSpec) -> Vec<&str> {
    let sides = [&spec.source, &spec.destination];
    sides
        .iter()
        .flat_map(|s| {
            s.credentials_secret_ref
                .iter()
                .map(|r| r.name.as_str())
                .chain(s.ca_secret_ref.iter().map(|r| r.name.as_str()))
        })
        .chain(verification_names(spec.verification.as_ref()))
        .collect()
}

/// Every Secret an `ImageInspection` names.
pub fn inspection_secret_names(spec: &ImageInspectionSpec) -> Vec<&str> {
    spec.credentials_secret_ref
        .iter()
        .map(|r| r.name.as_str())
        .chain(spec.ca_secret_ref.iter().map(|r| r.name.as_str()))
        .chain(verification_names(spec.verification.as_ref()))
        .collect()
}

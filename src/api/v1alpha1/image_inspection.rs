//! `ImageInspection`: keep an image's metadata (skopeo inspect), its platforms
//! and its signatures in status.

// Each `printcolumn(...)` repeats `type_ = ...`: not a duplicate.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{SecretKeyRef, SecretRef, VerificationSpec};
use super::{Condition, Time};

/// Inspect an image and keep the result in status.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "kubemirror.dev",
    version = "v1alpha1",
    kind = "ImageInspection",
    plural = "imageinspections",
    singular = "imageinspection",
    shortname = "iinsp",
    namespaced,
    status = "ImageInspectionStatus",
    derive = "PartialEq",
    doc = "Inspects an image and keeps its metadata, platforms and signatures in status",
    printcolumn(name = "Image", type_ = "string", json_path = ".spec.image"),
    printcolumn(name = "Digest", type_ = "string", json_path = ".status.digest"),
    printcolumn(name = "Arch", type_ = "string", json_path = ".status.architecture"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Signatures",
        type_ = "string",
        description = "Signatures found (verified)",
        json_path = ".status.signatureSummary"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ImageInspectionSpec {
    /// An image by tag or digest; transport-qualified allowed, `docker://` is the default.
    #[schemars(length(min = 1))]
    pub image: String,
    /// A `kubernetes.io/dockerconfigjson` Secret with credentials for the registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<SecretRef>,
    /// Require HTTPS and verify certificates (default true); false also allows plain HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_verify: Option<bool>,
    /// An extra CA certificate (PEM) to trust.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_secret_ref: Option<SecretKeyRef>,
    /// Simple-signing lookaside URL to read signatures from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_lookaside: Option<String>,
    /// Which instance of an index to describe (`os/arch[/variant]`); empty: the controller's platform, else the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(super::PLATFORM_PATTERN))]
    pub platform: Option<String>,
    /// Re-inspection period, Go duration syntax (default 30m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(super::DURATION_PATTERN))]
    pub interval: Option<String>,
    /// Which signatures to trust.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<VerificationSpec>,
    /// Stop reconciling while true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
}

/// The inspection result (skopeo inspect's fields, camelCase).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageInspectionStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_inspection_time: Option<Time>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Digest of the top-level manifest (the index's, for an index).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub digest: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tag: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub docker_version: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub architecture: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub os: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers_data: Vec<LayerData>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repo_tags: Vec<String>,
    /// The index's images, when the image is an index.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<PlatformDigest>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signatures: Vec<SignatureStatus>,
    /// For the printer column: `none`, or `N (M verified)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_summary: Option<String>,
    /// How many entries of each list or map were left out to keep the
    /// status small (`repoTags: 149001`); absent when nothing was.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub omitted: BTreeMap<String, i64>,
}

/// One layer (skopeo's `LayersData`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LayerData {
    pub mime_type: String,
    pub digest: String,
    pub size: i64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// One image of an index.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
pub struct PlatformDigest {
    pub platform: String,
    pub digest: String,
}

/// One signature of the image.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignatureStatus {
    /// `sigstore` or `simple-signing`.
    #[serde(rename = "type")]
    pub type_: String,
    /// What the signature claims it signs.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub manifest_digest: String,
    /// The docker-reference inside the payload.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub identity: String,
    /// Who signed: an OpenPGP fingerprint, a public key's `sha256:` id, or a
    /// keyless signature's certificate identity (email or URI).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub key_id: String,
    /// Keyless: the certificate's OIDC issuer.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub issuer: String,
    /// Keyless: the signature's Rekor log index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_index: Option<i64>,
    /// Keyless: when Rekor logged the signature (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integrated_time: Option<String>,
    pub verified: bool,
    /// Why it is not verified.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// The signed payload, base64, bounded in size.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub payload: String,
}

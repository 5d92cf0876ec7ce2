//! `kubemirror.dev/v1alpha1`: [`ImageMirror`] and [`ImageInspection`].
//!
//! The schemas refuse what they can at `kubectl apply` (required fields, enums,
//! patterns, at least one tag selector via `minProperties`); the reconcilers
//! refuse the rest as `Stalled` with a message that says what to fix.

mod common;
mod duration;
mod image_inspection;
mod image_mirror;

pub use common::{
    CONDITION_READY, CONDITION_RECONCILING, CONDITION_STALLED, KeyType, KeylessIdentity,
    SecretKeyRef, SecretRef, TrustedRootKind, TrustedRootRef, VerificationKey, VerificationSpec,
};
pub use duration::parse_go_duration;
pub use image_inspection::{
    ImageInspection, ImageInspectionSpec, ImageInspectionStatus, LayerData, PlatformDigest,
    SignatureStatus,
};
pub use image_mirror::{
    DEFAULT_PRUNE_LIMIT, DeletionPolicy, DriftPolicy, ImageMirror, ImageMirrorSpec,
    ImageMirrorStatus, PruneStatus, RepositorySpec, SignaturePolicy, TagSelector, TagStatus,
    TagSummary,
};
pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// The API group of both kinds.
pub const GROUP: &str = "kubemirror.dev";

/// Both CustomResourceDefinitions, ImageMirror first.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![ImageMirror::crd(), ImageInspection::crd()]
}

/// The CRDs as one YAML stream (`kubemirror crds`; `crds/kubemirror.dev_crds.yaml`).
pub fn crds_yaml() -> String {
    let mut out = String::new();
    for crd in crds() {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&crd).expect("a CRD serialises to YAML"));
    }
    out
}

/// The Go-duration pattern `interval` fields are checked against.
pub(crate) const DURATION_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$";

/// The platform pattern: `os/arch[/variant]`.
pub(crate) const PLATFORM_PATTERN: &str = r"^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$";

#[cfg(test)]
mod tests;

//! Types both kinds share: Secret references, signature verification keys,
//! and the condition types.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `True` when the last reconcile fully succeeded for the current generation.
pub const CONDITION_READY: &str = "Ready";
/// `True` while work is under way.
pub const CONDITION_RECONCILING: &str = "Reconciling";
/// `True` when the spec itself is wrong and retrying cannot help.
pub const CONDITION_STALLED: &str = "Stalled";

/// A Secret in the object's namespace (a `kubernetes.io/dockerconfigjson`
/// Secret where credentials are meant).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct SecretRef {
    /// Name of the Secret, in the same namespace.
    #[schemars(length(min = 1))]
    pub name: String,
}

/// One key of a Secret in the object's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct SecretKeyRef {
    /// Name of the Secret, in the same namespace.
    #[schemars(length(min = 1))]
    pub name: String,
    /// The key inside the Secret's data.
    #[schemars(length(min = 1))]
    pub key: String,
}

/// Which signatures to trust.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct VerificationSpec {
    /// Public keys; a signature made by any of them is trusted.
    #[schemars(length(min = 1))]
    pub keys: Vec<VerificationKey>,
}

/// A public key held in a Secret.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerificationKey {
    /// `Sigstore` (cosign public key, PEM) or `GPG` (armored or binary public key).
    #[serde(rename = "type")]
    pub type_: KeyType,
    /// The Secret key holding the public key.
    pub secret_ref: SecretKeyRef,
}

/// Kinds of verification key.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum KeyType {
    Sigstore,
    #[serde(rename = "GPG")]
    Gpg,
}

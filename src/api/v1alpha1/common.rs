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

/// Which signatures to trust: public keys, keyless identities, or both (at
/// least one of `keys` and `keyless`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerificationSpec {
    /// Public keys; a signature made by any of them is trusted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<VerificationKey>,
    /// Keyless (Sigstore Fulcio certificate) identities; a signature whose
    /// certificate matches any of them, chains to the trust root and is
    /// logged in its Rekor, is trusted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keyless: Vec<KeylessIdentity>,
    /// The Sigstore trust root (`trusted_root.json`) for `keyless`; Sigstore's
    /// public-good root (embedded) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted_root_ref: Option<TrustedRootRef>,
}

/// A keyless identity, as cosign's `--certificate-oidc-issuer(-regexp)` and
/// `--certificate-identity(-regexp)`: exactly one of `issuer` / `issuerRegExp`
/// and one of `subject` / `subjectRegExp` (regular expressions are searched:
/// anchor them with `^…$`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeylessIdentity {
    /// The OIDC issuer, exactly (`https://token.actions.githubusercontent.com`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_reg_exp: Option<String>,
    /// The certificate's SAN (an email, or a URI such as a CI workflow), exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_reg_exp: Option<String>,
}

/// One key of a Secret or ConfigMap holding a `trusted_root.json`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct TrustedRootRef {
    /// `Secret` or `ConfigMap`, in the object's namespace.
    pub kind: TrustedRootKind,
    #[schemars(length(min = 1))]
    pub name: String,
    #[schemars(length(min = 1))]
    pub key: String,
}

/// Where a trust root is held.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum TrustedRootKind {
    Secret,
    ConfigMap,
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

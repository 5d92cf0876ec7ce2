//! Keyless Sigstore verification, offline: a signature made with a
//! short-lived Fulcio certificate bound to an OIDC identity, logged in Rekor.
//!
//! A signature verifies when, in this order:
//! 1. the Rekor evidence verifies against a log key of the trust root: the
//!    signed entry timestamp (cosign's `dev.sigstore.cosign/bundle`
//!    annotation, a bundle's `inclusionPromise`) and/or, in bundles, the
//!    inclusion proof and its signed checkpoint; the logged `hashedrekord`
//!    entry names this signature, certificate and artifact digest;
//! 2. the certificate chains to a Fulcio CA of the trust root that was valid
//!    at the Rekor integrated time, and was itself valid then, and a CT log
//!    of the trust root vouches for it (an embedded SCT);
//! 3. the signature verifies with the certificate's key;
//! 4. the certificate's SAN (email or URI) and OIDC issuer (Fulcio
//!    extensions .1.8 / .1.1) match one of the [`IdentityRule`]s.
//!
//!
//! The SCT is needed (as cosign needs it by default) when the trust root
//! lists CT logs, as the public-good one does; roots built from a CA file
//! and Rekor keys (policy.json `fulcio`) list none, and need none.
//!
//! Crates: `x509-cert` reads certificates, `webpki` builds and checks the
//! chain, `p256`/`p384` verify. The `sigstore` crate (sigstore-rs 0.15) was
//! evaluated and not used: its verifier needs its `fulcio` and `rekor`
//! features, which bring reqwest, an OIDC client and a browser launcher, its
//! rustls option is aws-lc-rs (not ring), and it is built on a second
//! generation of the RustCrypto crates (p256 0.14, x509-cert 0.3). What is
//! hand-written here is Sigstore's own logic: see each file's header.
//!
//! Files: [`trusted_root`] (trust roots), [`cert`] (Fulcio certificates and
//! chains), [`sct`] (embedded SCTs), [`rekor`] (SETs, inclusion proofs, checkpoints), [`bundle`]
//! (Sigstore bundles v0.1–v0.3), [`keys`] (public keys), [`identity`]
//! (who may have signed).

pub mod bundle;
pub mod cert;
pub mod identity;
pub mod keys;
pub mod rekor;
pub mod sct;
pub mod trusted_root;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;

pub use bundle::Bundle;
pub use identity::{IdentityRule, Matcher};
pub use trusted_root::TrustedRoot;

/// cosign's annotation holding the Fulcio certificate (PEM).
pub const ANNOTATION_CERTIFICATE: &str = "dev.sigstore.cosign/certificate";
/// cosign's annotation holding the certificate chain (PEM).
pub const ANNOTATION_CHAIN: &str = "dev.sigstore.cosign/chain";
/// cosign's annotation holding the Rekor SET and entry (JSON).
pub const ANNOTATION_BUNDLE: &str = "dev.sigstore.cosign/bundle";

/// Largest `dev.sigstore.cosign/bundle` annotation read.
pub const MAX_ANNOTATION: usize = 128 * 1024;

/// Why a keyless signature is not verified.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum KeylessError {
    #[error("{0}")]
    Malformed(String),
    /// The certificate does not chain to a trusted Fulcio CA.
    #[error("{0}")]
    Untrusted(String),
    /// A certificate was not valid at the integrated time.
    #[error("{0}")]
    Expired(String),
    /// The transparency-log evidence is missing, unknown or does not verify.
    #[error("{0}")]
    Tlog(String),
    /// No embedded SCT of the certificate verifies with a CT log key.
    #[error("{0}")]
    Sct(String),
    /// The signature does not verify with the certificate's key.
    #[error("{0}")]
    Signature(String),
    /// The certificate's identity or issuer matches no rule.
    #[error("{0}")]
    Identity(String),
}

/// Who signed, and when the log saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The certificate's SAN.
    pub subject: String,
    /// The OIDC issuer.
    pub issuer: String,
    pub log_index: i64,
    /// Unix seconds.
    pub integrated_time: i64,
}

/// A trust root and the identities it vouches for (`spec.verification.keyless`,
/// `--certificate-identity`, policy.json `fulcio`).
#[derive(Debug, Clone)]
pub struct KeylessTrust {
    pub root: Arc<TrustedRoot>,
    pub identities: Vec<IdentityRule>,
}

pub fn rfc3339(t: i64) -> String {
    jiff::Timestamp::from_second(t)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| t.to_string())
}

#[derive(Deserialize)]
struct CosignBundle {
    #[serde(rename = "SignedEntryTimestamp")]
    set: String,
    #[serde(rename = "Payload")]
    payload: CosignBundlePayload,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CosignBundlePayload {
    body: String,
    integrated_time: i64,
    log_index: i64,
    #[serde(rename = "logID")]
    log_id: String,
}

/// Verify a cosign keyless signature: `signature` over `payload`, with the
/// certificate and Rekor bundle of its `annotations`.
pub fn verify_cosign(
    payload: &[u8],
    signature: &[u8],
    annotations: &BTreeMap<String, String>,
    trust: &KeylessTrust,
) -> Result<Verified, KeylessError> {
    let pem = annotations.get(ANNOTATION_CERTIFICATE).ok_or_else(|| {
        KeylessError::Malformed(format!("no {ANNOTATION_CERTIFICATE} annotation"))
    })?;
    let cert_der = keys::pem_certificates(pem.as_bytes(), 1)?
        .pop()
        .unwrap_or_default();
    let leaf = cert::parse_leaf(&cert_der)?;
    let set = annotations.get(ANNOTATION_BUNDLE).ok_or_else(|| {
        KeylessError::Tlog(format!(
            "no {ANNOTATION_BUNDLE} annotation: a keyless signature needs its Rekor entry"
        ))
    })?;
    if set.len() > MAX_ANNOTATION {
        return Err(KeylessError::Malformed(format!(
            "{ANNOTATION_BUNDLE}: larger than {MAX_ANNOTATION} bytes"
        )));
    }
    let b: CosignBundle = serde_json::from_str(set)
        .map_err(|e| KeylessError::Malformed(format!("{ANNOTATION_BUNDLE}: {e}")))?;
    let log_id = hex::decode(&b.payload.log_id)
        .map_err(|_| KeylessError::Malformed(format!("{ANNOTATION_BUNDLE}: logID is not hex")))?;
    let entry = rekor::LogEntry::new(
        &b.payload.body,
        b.payload.integrated_time,
        b.payload.log_index,
        log_id,
    )?;
    let set = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &b.set).map_err(
        |_| {
            KeylessError::Malformed(format!(
                "{ANNOTATION_BUNDLE}: SignedEntryTimestamp is not base64"
            ))
        },
    )?;
    entry.verify_set(&set, &trust.root)?;
    let payload_sha = trusted_root::digest_bytes(payload);
    entry.check_body(
        &rekor::LoggedDigest::sha256(&payload_sha),
        signature,
        &cert_der,
    )?;
    verify_signed(leaf, &entry, trust, |leaf| {
        leaf.key.verifies(payload, signature)
    })
}

/// Steps 2–4 for a (parsed) certificate vouched for by a verified `entry`;
/// `verifies` checks the signature with the leaf's key.
pub(crate) fn verify_signed(
    leaf: cert::Leaf,
    entry: &rekor::LogEntry,
    trust: &KeylessTrust,
    verifies: impl FnOnce(&cert::Leaf) -> bool,
) -> Result<Verified, KeylessError> {
    let issuer_spki = cert::verify_chain(&leaf, &trust.root, entry.integrated_time)?;
    if !trust.root.ctlogs.is_empty() {
        sct::verify(&leaf.der, &issuer_spki, &trust.root.ctlogs)?;
    }
    if !verifies(&leaf) {
        return Err(KeylessError::Signature(
            "signature does not verify with the certificate's key".into(),
        ));
    }
    identity::check(&trust.identities, &leaf.subject, &leaf.issuer)?;
    Ok(Verified {
        subject: leaf.subject,
        issuer: leaf.issuer,
        log_index: entry.log_index,
        integrated_time: entry.integrated_time,
    })
}

#[cfg(test)]
mod tests;

//! Verification against trusted keys, and the report entries that
//! `ImageInspection.status.signatures[]` (and `ImageMirror` tag status) show.
//!
//! One signature is judged in this order: who signed it (a trusted key, by
//! cryptography), what it signs (its claimed manifest digest against the
//! digest of the exact manifest bytes), and as what (its claimed identity
//! against the image's docker reference, per a [`SignedIdentity`] rule). It
//! is `verified` only when all three pass; its claims are reported whatever
//! the outcome, so a signature for another digest or name is visible but
//! never counted.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

use super::identity::{Ident, SignedIdentity};
use super::keyless::{self, KeylessTrust};
use super::simple::{self, Keyring, Payload};
use super::{SignatureError, sigstore};
use crate::digest::{self, Digest};
use crate::image::Signature;
use crate::reference::Reference;

/// Payloads longer than this are cut in reports (`payloadTruncated: true`).
pub const MAX_REPORTED_PAYLOAD: usize = 4096;

/// `status.signatures[].type` values.
pub const TYPE_SIGSTORE: &str = "sigstore";
pub const TYPE_SIMPLE_SIGNING: &str = "simple-signing";

/// A key as a spec names it (`verification.keys[].type`).
#[derive(Debug, Clone)]
pub enum TrustedKey {
    /// An OpenPGP keyring (armored or binary) for simple signing.
    Gpg(Keyring),
    /// A cosign public key for sigstore signatures.
    Sigstore(sigstore::PublicKey),
}

impl TrustedKey {
    /// Parse `data` as the CRD's `type` says: `GPG` or `Sigstore`
    /// (case-insensitive; `GPGKeys` accepted as policy.json spells it).
    pub fn parse(key_type: &str, data: &[u8]) -> Result<Self, SignatureError> {
        match key_type.to_ascii_lowercase().as_str() {
            "gpg" | "gpgkeys" => Ok(TrustedKey::Gpg(Keyring::from_bytes(data)?)),
            "sigstore" => Ok(TrustedKey::Sigstore(sigstore::PublicKey::from_bytes(data)?)),
            other => Err(SignatureError::Key(format!(
                "unknown key type {other:?}: want GPG or Sigstore"
            ))),
        }
    }
}

/// Every key trusted for one image.
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    pub gpg: Vec<Keyring>,
    pub sigstore: Vec<sigstore::PublicKey>,
    /// Refuse simple signatures made by a subkey, as skopeo 1.9's `signedBy`
    /// does ("Signature by key … is not accepted"); `false` (the default)
    /// accepts a signing subkey of a trusted key.
    pub primary_keys_only: bool,
    /// Keyless (Fulcio certificate) signatures: the trust root and the
    /// identities trusted; `None` refuses them.
    pub keyless: Option<std::sync::Arc<KeylessTrust>>,
}

impl TrustedKeys {
    pub fn new(keys: impl IntoIterator<Item = TrustedKey>) -> Self {
        let mut out = TrustedKeys::default();
        for k in keys {
            out.push(k);
        }
        out
    }

    pub fn push(&mut self, key: TrustedKey) {
        match key {
            TrustedKey::Gpg(k) => self.gpg.push(k),
            TrustedKey::Sigstore(k) => self.sigstore.push(k),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.gpg.is_empty() && self.sigstore.is_empty() && self.keyless.is_none()
    }
}

/// One entry of `status.signatures[]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct SignatureReport {
    /// `sigstore` or `simple-signing`.
    #[serde(rename = "type")]
    pub type_: String,
    /// The manifest digest the signature claims to sign.
    pub manifest_digest: String,
    /// The docker reference the signature claims (`critical.identity.docker-reference`).
    pub identity: String,
    /// Who signed: an OpenPGP fingerprint (or key id when unverified), a
    /// sigstore key's `sha256:` SPKI digest when verified, or a keyless
    /// signature's certificate identity (SAN: email or URI).
    pub key_id: String,
    /// Keyless: the certificate's OIDC issuer.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub issuer: String,
    /// Keyless: the Rekor log index of the signature's entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_index: Option<i64>,
    /// Keyless: when Rekor logged it (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integrated_time: Option<String>,
    pub verified: bool,
    /// Why it is not verified; empty when it is.
    pub reason: String,
    /// The payload, base64, at most [`MAX_REPORTED_PAYLOAD`] bytes of it.
    pub payload: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub payload_truncated: bool,
}

/// The image a signature is judged against.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The docker reference the image is known by (for identity rules).
    pub reference: Option<&'a Reference>,
    /// The digest of the exact manifest bytes.
    pub manifest_digest: &'a Digest,
    /// The exact manifest bytes, when at hand: lets a claim in another
    /// algorithm (sha512) be checked too.
    pub manifest: Option<&'a [u8]>,
}

impl Subject<'_> {
    fn check_digest(&self, claimed: &str) -> Result<(), String> {
        let wrong = || format!("signature is for {claimed} not {}", self.manifest_digest);
        let Ok(claimed_d) = digest::parse(claimed) else {
            return Err(format!("signature claims an invalid digest {claimed:?}"));
        };
        if claimed_d.algorithm() == self.manifest_digest.algorithm() {
            return if &claimed_d == self.manifest_digest {
                Ok(())
            } else {
                Err(wrong())
            };
        }
        match self.manifest {
            Some(m) => digest::verify_bytes(&claimed_d, m).map_err(|_| wrong()),
            None => Err(wrong()),
        }
    }
}

/// The identity rule `verify` applies when none is given: for simple
/// signing, containers/image's default `matchRepoDigestOrExact`; for
/// sigstore the same, except that a name-only identity (what `cosign sign`
/// writes) matches the repository, as `cosign verify` checks it.
fn default_rule(sig: &Signature, claimed: &str) -> SignedIdentity {
    if matches!(sig, Signature::Sigstore { .. })
        && Ident::parse(claimed).is_ok_and(|i| i.is_name_only())
    {
        SignedIdentity::MatchRepository
    } else {
        SignedIdentity::MatchRepoDigestOrExact
    }
}

/// Judge one signature; the report always carries what could be read.
pub fn examine(
    sig: &Signature,
    keys: &TrustedKeys,
    subject: &Subject<'_>,
    rule: Option<&SignedIdentity>,
) -> SignatureReport {
    if let Signature::Sigstore {
        media_type,
        payload,
        ..
    } = sig
        && keyless::bundle::version_of(media_type).is_some()
    {
        return examine_bundle(payload, keys, subject);
    }
    let mut r = SignatureReport::default();
    let judged = match sig {
        Signature::SimpleSigning(msg) => judge_simple(msg, keys, &mut r),
        Signature::Sigstore {
            payload,
            annotations,
            media_type,
        } => judge_sigstore(media_type, payload, annotations, keys, &mut r),
    }
    .and_then(|()| subject.check_digest(&r.manifest_digest))
    .and_then(|()| {
        rule.cloned()
            .unwrap_or_else(|| default_rule(sig, &r.identity))
            .check(subject.reference, &r.identity)
    });
    match judged {
        Ok(()) => r.verified = true,
        Err(reason) => r.reason = reason,
    }
    r
}

/// A Sigstore bundle (an OCI referrer of the image): it signs the manifest
/// digest itself (a message signature over the manifest, or an in-toto
/// statement naming it), so there is no docker-reference claim to check.
/// Verified with `keys.keyless` only.
fn examine_bundle(bundle: &[u8], keys: &TrustedKeys, subject: &Subject<'_>) -> SignatureReport {
    let mut r = SignatureReport {
        type_: TYPE_SIGSTORE.into(),
        ..Default::default()
    };
    set_payload(&mut r, bundle);
    let judged = (|| {
        let b = keyless::Bundle::parse(bundle).map_err(|e| e.to_string())?;
        if let Some(leaf) = b
            .certificate
            .as_deref()
            .and_then(|c| keyless::cert::parse_leaf(c).ok())
        {
            r.key_id = leaf.subject;
            r.issuer = leaf.issuer;
        }
        let Some(trust) = &keys.keyless else {
            return Err(
                "Sigstore bundle: no keyless identity is trusted (spec.verification.keyless)"
                    .to_string(),
            );
        };
        let Ok(sha) = <[u8; 32]>::try_from(
            hex::decode(digest::hex_of(subject.manifest_digest)).unwrap_or_default(),
        ) else {
            return Err(format!(
                "Sigstore bundle: {} is not a sha256 digest",
                subject.manifest_digest
            ));
        };
        // The manifest's bytes when known (a P-384 signer's bundle needs
        // them: it signs their SHA-384), else its SHA-256.
        let artifact = match subject.manifest {
            Some(m) if digest::sha256(m) == *subject.manifest_digest => {
                keyless::bundle::Artifact::Bytes(m)
            }
            _ => keyless::bundle::Artifact::Sha256(&sha),
        };
        let v = b
            .verify(artifact, keyless::bundle::Signer::Keyless(trust))
            .map_err(|e| format!("Sigstore bundle: {e}"))?;
        r.manifest_digest = subject.manifest_digest.to_string();
        r.key_id = v.subject;
        r.issuer = v.issuer;
        r.log_index = Some(v.log_index);
        r.integrated_time = Some(keyless::rfc3339(v.integrated_time));
        Ok(())
    })();
    match judged {
        Ok(()) => r.verified = true,
        Err(reason) => r.reason = reason,
    }
    r
}

/// Fill in the claims of a payload.
fn read_claims(r: &mut SignatureReport, payload: &[u8], typ: &str) -> Result<(), String> {
    set_payload(r, payload);
    let p = Payload::parse(payload, typ).map_err(|e| e.to_string())?;
    r.manifest_digest = p.manifest_digest;
    r.identity = p.docker_reference;
    Ok(())
}

/// Read a simple signature's claims, then find a trusted key that made it.
fn judge_simple(msg: &[u8], keys: &TrustedKeys, r: &mut SignatureReport) -> Result<(), String> {
    r.type_ = TYPE_SIMPLE_SIGNING.into();
    let untrusted = simple::open(msg).map_err(|e| e.to_string())?;
    r.key_id = untrusted.key_id.clone();
    read_claims(r, &untrusted.payload, simple::SIGNATURE_TYPE)?;
    let mut refusal = None;
    for ring in &keys.gpg {
        match simple::verify(msg, ring) {
            Ok(v)
                if keys.primary_keys_only && v.signer_fingerprint != v.signing_key_fingerprint =>
            {
                refusal = Some(format!(
                    "signature by subkey {} of key {} is not accepted: only primary keys are",
                    v.signing_key_fingerprint, v.signer_fingerprint
                ));
            }
            Ok(v) => {
                r.key_id = v.signer_fingerprint;
                return Ok(());
            }
            Err(SignatureError::Untrusted(_)) => {}
            Err(e) => refusal = Some(e.to_string()),
        }
    }
    Err(refusal.unwrap_or_else(|| {
        format!(
            "no signature signed by a trusted key (signed by {})",
            untrusted.key_id
        )
    }))
}

/// Read a sigstore signature's claims, then find a trusted key that made it.
fn judge_sigstore(
    media_type: &str,
    payload: &[u8],
    annotations: &sigstore::Annotations,
    keys: &TrustedKeys,
    r: &mut SignatureReport,
) -> Result<(), String> {
    r.type_ = TYPE_SIGSTORE.into();
    if media_type != sigstore::MEDIA_TYPE {
        set_payload(r, payload);
        return Err(format!("unsupported sigstore media type {media_type:?}"));
    }
    read_claims(r, payload, sigstore::PAYLOAD_TYPE)?;
    let mut refusal = None;
    for key in &keys.sigstore {
        match sigstore::verify(payload, annotations, key) {
            Ok(()) => {
                r.key_id = key.key_id().to_string();
                return Ok(());
            }
            Err(SignatureError::Untrusted(_)) => {}
            Err(e) => refusal = Some(e.to_string()),
        }
    }
    if annotations.contains_key(keyless::ANNOTATION_CERTIFICATE) {
        return judge_keyless(payload, annotations, keys, r);
    }
    Err(refusal.unwrap_or_else(|| "no signature signed by a trusted key".to_string()))
}

/// A keyless signature: its certificate's identity is reported whatever the
/// verdict; it verifies only against `keys.keyless`.
fn judge_keyless(
    payload: &[u8],
    annotations: &sigstore::Annotations,
    keys: &TrustedKeys,
    r: &mut SignatureReport,
) -> Result<(), String> {
    // Claims first, for the report, from the certificate as it is.
    if let Some(leaf) = annotations
        .get(keyless::ANNOTATION_CERTIFICATE)
        .and_then(|pem| keyless::keys::pem_certificates(pem.as_bytes(), 1).ok())
        .and_then(|mut c| c.pop())
        .and_then(|der| keyless::cert::parse_leaf(&der).ok())
    {
        r.key_id = leaf.subject;
        r.issuer = leaf.issuer;
    }
    let Some(trust) = &keys.keyless else {
        return Err(
            "keyless signature (Fulcio certificate): no keyless identity is trusted (spec.verification.keyless, or policy.json sigstoreSigned.fulcio)"
                .into(),
        );
    };
    let signature = sigstore::signature_bytes(annotations).map_err(|e| e.to_string())?;
    match keyless::verify_cosign(payload, &signature, annotations, trust) {
        Ok(v) => {
            r.key_id = v.subject;
            r.issuer = v.issuer;
            r.log_index = Some(v.log_index);
            r.integrated_time = Some(keyless::rfc3339(v.integrated_time));
            Ok(())
        }
        Err(e) => Err(format!("keyless signature: {e}")),
    }
}

fn set_payload(r: &mut SignatureReport, payload: &[u8]) {
    let cut = payload.len().min(MAX_REPORTED_PAYLOAD);
    r.payload = B64.encode(&payload[..cut]);
    r.payload_truncated = cut < payload.len();
}

/// Report on every signature of an image (the order of `signatures`).
/// With `rule` = `None`, the default identity rule described at
/// [`examine`]'s module applies.
pub fn report(
    keys: &TrustedKeys,
    subject: &Subject<'_>,
    signatures: &[Signature],
    rule: Option<&SignedIdentity>,
) -> Vec<SignatureReport> {
    signatures
        .iter()
        .map(|s| examine(s, keys, subject, rule))
        .collect()
}

/// Whether any signature verified.
pub fn any_verified(reports: &[SignatureReport]) -> bool {
    reports.iter().any(|r| r.verified)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::sigstore::test_support::{public_key, sign};

    fn payload(identity: &str, digest: &Digest) -> Vec<u8> {
        Payload::to_json(identity, digest.as_ref(), sigstore::PAYLOAD_TYPE)
    }

    #[test]
    fn sigstore_verdicts() {
        let manifest = br#"{"schemaVersion":2}"#;
        let d = digest::sha256(manifest);
        let image = crate::reference::parse("reg.io/app:v1").unwrap();
        let subject = Subject {
            reference: Some(&image),
            manifest_digest: &d,
            manifest: Some(manifest),
        };
        let keys = TrustedKeys::new([TrustedKey::Sigstore(public_key(1))]);

        let good = sign(1, &payload("reg.io/app:v1", &d));
        let r = examine(&good, &keys, &subject, None);
        assert!(r.verified, "{r:?}");
        assert_eq!(r.type_, "sigstore");
        assert_eq!(r.identity, "reg.io/app:v1");
        assert_eq!(r.manifest_digest, d.to_string());
        assert_eq!(r.key_id, public_key(1).key_id());
        assert!(!r.payload_truncated);

        // cosign writes name-only identities: the repository must match.
        let cosign = sign(1, &payload("reg.io/app", &d));
        assert!(examine(&cosign, &keys, &subject, None).verified);
        let r = examine(
            &cosign,
            &keys,
            &subject,
            Some(&SignedIdentity::MatchRepoDigestOrExact),
        );
        assert!(!r.verified);
        assert_eq!(r.reason, "identity reg.io/app does not match reg.io/app:v1");

        let other_key = sign(2, &payload("reg.io/app:v1", &d));
        let r = examine(&other_key, &keys, &subject, None);
        assert!(!r.verified);
        assert_eq!(r.reason, "no signature signed by a trusted key");
        assert_eq!(r.identity, "reg.io/app:v1", "claims are reported anyway");

        let other = digest::sha256(b"other");
        let r = examine(
            &sign(1, &payload("reg.io/app:v1", &other)),
            &keys,
            &subject,
            None,
        );
        assert!(!r.verified);
        assert_eq!(r.reason, format!("signature is for {other} not {d}"));

        let r = examine(
            &sign(1, &payload("reg.io/evil:v1", &d)),
            &keys,
            &subject,
            None,
        );
        assert_eq!(
            r.reason,
            "identity reg.io/evil:v1 does not match reg.io/app:v1"
        );

        // Tampered payload: the signature no longer verifies.
        let Signature::Sigstore { annotations, .. } = good.clone() else {
            unreachable!()
        };
        let tampered = Signature::Sigstore {
            media_type: sigstore::MEDIA_TYPE.into(),
            payload: payload("reg.io/app:v2", &d).into(),
            annotations,
        };
        assert!(!examine(&tampered, &keys, &subject, None).verified);

        let r = examine(&good, &TrustedKeys::default(), &subject, None);
        assert!(!r.verified);

        let r = examine(
            &Signature::SimpleSigning(bytes::Bytes::from_static(b"\xa3\x01junk")),
            &keys,
            &subject,
            None,
        );
        assert_eq!(r.type_, "simple-signing");
        assert!(
            r.reason.starts_with("invalid signature: OpenPGP message"),
            "{r:?}"
        );
    }

    #[test]
    fn big_payloads_are_cut() {
        let d = digest::sha256(b"m");
        let mut p: serde_json::Value =
            serde_json::from_slice(&payload("reg.io/app:v1", &d)).unwrap();
        p["optional"]["pad"] = "x".repeat(10_000).into();
        let p = serde_json::to_vec(&p).unwrap();
        let subject = Subject {
            reference: None,
            manifest_digest: &d,
            manifest: None,
        };
        let r = examine(&sign(1, &p), &TrustedKeys::default(), &subject, None);
        assert!(r.payload_truncated);
        assert_eq!(B64.decode(&r.payload).unwrap().len(), MAX_REPORTED_PAYLOAD);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["payloadTruncated"], true);
        assert_eq!(json["type"], "sigstore");
    }
}

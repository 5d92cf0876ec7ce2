//! The public keys of keyless verification: a certificate's key, a
//! transparency log's key, a CT log's key. ECDSA P-256 (SHA-256) and P-384
//! (SHA-384), the curves Fulcio and Rekor use; signatures ASN.1/DER (or raw
//! r‖s), as cosign and Rekor write them.

use p256::ecdsa::signature::Verifier as _;
use p256::pkcs8::DecodePublicKey as _;

use super::KeylessError;

/// A verifying key, from its DER SubjectPublicKeyInfo.
#[derive(Clone, Debug)]
pub enum VerifyKey {
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
}

impl VerifyKey {
    /// Parse a DER SubjectPublicKeyInfo (ECDSA P-256 or P-384).
    pub fn from_spki_der(der: &[u8]) -> Result<Self, KeylessError> {
        if let Ok(k) = p256::ecdsa::VerifyingKey::from_public_key_der(der) {
            return Ok(VerifyKey::P256(k));
        }
        if let Ok(k) = p384::ecdsa::VerifyingKey::from_public_key_der(der) {
            return Ok(VerifyKey::P384(k));
        }
        Err(KeylessError::Malformed(
            "public key: not an ECDSA P-256 or P-384 SubjectPublicKeyInfo".into(),
        ))
    }

    /// Parse PEM `PUBLIC KEY` or DER SubjectPublicKeyInfo.
    pub fn from_pem_or_der(data: &[u8]) -> Result<Self, KeylessError> {
        match std::str::from_utf8(data) {
            Ok(s) if s.contains("-----BEGIN") => {
                let (label, der) = pem_rfc7468_decode(s.trim())?;
                if label != "PUBLIC KEY" {
                    return Err(KeylessError::Malformed(format!(
                        "public key: PEM block {label:?}, want \"PUBLIC KEY\""
                    )));
                }
                Self::from_spki_der(&der)
            }
            _ => Self::from_spki_der(data),
        }
    }

    /// The key's DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> Vec<u8> {
        use p256::pkcs8::EncodePublicKey as _;
        match self {
            VerifyKey::P256(k) => k.to_public_key_der().map(|d| d.into_vec()),
            VerifyKey::P384(k) => k.to_public_key_der().map(|d| d.into_vec()),
        }
        .unwrap_or_default()
    }

    /// Whether `sig` is this key's signature over a message whose SHA-256
    /// is `digest` (P-256 only: P-384 signatures hash with SHA-384).
    pub fn verifies_sha256_prehash(&self, digest: &[u8; 32], sig: &[u8]) -> bool {
        use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
        match self {
            VerifyKey::P256(k) => p256::ecdsa::Signature::from_der(sig)
                .or_else(|_| p256::ecdsa::Signature::from_slice(sig))
                .is_ok_and(|s| k.verify_prehash(digest, &s).is_ok()),
            VerifyKey::P384(_) => false,
        }
    }

    /// Whether `sig` is this key's signature over a message whose SHA-256
    /// is `sha256` and SHA-384 `sha384` (each key uses its own).
    pub fn verifies_prehash(&self, sha256: &[u8; 32], sha384: &[u8; 48], sig: &[u8]) -> bool {
        use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
        match self {
            VerifyKey::P256(_) => self.verifies_sha256_prehash(sha256, sig),
            VerifyKey::P384(k) => p384::ecdsa::Signature::from_der(sig)
                .or_else(|_| p384::ecdsa::Signature::from_slice(sig))
                .is_ok_and(|s| k.verify_prehash(sha384, &s).is_ok()),
        }
    }

    /// Whether `sig` (DER or fixed-size r‖s) is this key's signature over `msg`.
    pub fn verifies(&self, msg: &[u8], sig: &[u8]) -> bool {
        match self {
            VerifyKey::P256(k) => p256::ecdsa::Signature::from_der(sig)
                .or_else(|_| p256::ecdsa::Signature::from_slice(sig))
                .is_ok_and(|s| k.verify(msg, &s).is_ok()),
            VerifyKey::P384(k) => p384::ecdsa::Signature::from_der(sig)
                .or_else(|_| p384::ecdsa::Signature::from_slice(sig))
                .is_ok_and(|s| k.verify(msg, &s).is_ok()),
        }
    }
}

/// Decode one PEM block: (label, DER).
pub fn pem_rfc7468_decode(s: &str) -> Result<(String, Vec<u8>), KeylessError> {
    let (label, der) = x509_cert::der::pem::decode_vec(s.as_bytes())
        .map_err(|e| KeylessError::Malformed(format!("PEM: {e}")))?;
    Ok((label.to_string(), der))
}

/// Every `CERTIFICATE` block of a PEM text, as the DER bytes it holds
/// (exactly, not re-encoded), at most `max`.
pub fn pem_certificates(s: &[u8], max: usize) -> Result<Vec<Vec<u8>>, KeylessError> {
    let text = std::str::from_utf8(s)
        .map_err(|_| KeylessError::Malformed("certificate PEM: not UTF-8".into()))?;
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(BEGIN) {
        let Some(j) = rest[i..].find(END) else {
            return Err(KeylessError::Malformed(
                "certificate PEM: a block has no END line".into(),
            ));
        };
        if out.len() == max {
            return Err(KeylessError::Malformed(format!(
                "certificate PEM: more than {max} certificates"
            )));
        }
        let (_, der) = pem_rfc7468_decode(&rest[i..i + j + END.len()])?;
        out.push(der);
        rest = &rest[i + j + END.len()..];
    }
    if out.is_empty() {
        return Err(KeylessError::Malformed(
            "certificate PEM: no CERTIFICATE block".into(),
        ));
    }
    Ok(out)
}

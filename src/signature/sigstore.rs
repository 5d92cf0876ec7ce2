//! Sigstore (cosign) signatures stored as "attachments": an OCI image tagged
//! `sha256-<hex>.sig` in the signed image's repository, one layer per
//! signature. A layer's blob is the payload (the simple-signing JSON with
//! `critical.type` = `cosign container image signature`), its media type
//! [`MEDIA_TYPE`], and its annotation [`ANNOTATION_SIGNATURE`] the base64
//! ASN.1/DER ECDSA P-256 SHA-256 signature over the payload bytes.
//!
//! This file is pure: key parsing and verification. The attachment layout
//! (tag names, building / parsing the manifest) is the registry transport's
//! (`transport::docker::attachment`, re-exported here), which reads and
//! writes attachments.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use p256::ecdsa::signature::Verifier as _;
use p256::pkcs8::{DecodePublicKey, EncodePublicKey};

use super::SignatureError;
use crate::digest;
/// The attachment layout (tags, layers) is the registry transport's: it
/// stores and reads attachments.
pub use crate::transport::docker::attachment::{
    ANNOTATION_SIGNATURE, Annotations, Attachment, MAX_LAYER, MAX_SIGNATURES, MEDIA_TYPE,
    attachment_tag, attachment_tags, attestation_tag, build_attachment, sbom_tag, signature_layers,
    signature_tag,
};

/// Keyless signing: the Fulcio certificate (PEM); verified by [`super::keyless`].
pub const ANNOTATION_CERTIFICATE: &str = "dev.sigstore.cosign/certificate";
/// `critical.type` of a cosign payload.
pub const PAYLOAD_TYPE: &str = "cosign container image signature";

/// A cosign public key (PEM `PUBLIC KEY`, SubjectPublicKeyInfo; ECDSA P-256).
#[derive(Clone, Debug)]
pub struct PublicKey {
    key: p256::ecdsa::VerifyingKey,
    key_id: String,
}

impl PublicKey {
    /// Parse PEM (`-----BEGIN PUBLIC KEY-----`) or DER SPKI.
    pub fn from_bytes(data: &[u8]) -> Result<Self, SignatureError> {
        let key = match std::str::from_utf8(data) {
            Ok(s) if s.contains("-----BEGIN") => {
                p256::ecdsa::VerifyingKey::from_public_key_pem(s.trim())
            }
            _ => p256::ecdsa::VerifyingKey::from_public_key_der(data),
        }
        .map_err(|e| {
            SignatureError::Key(format!(
                "sigstore public key: {e} (want an ECDSA P-256 key in PEM \"PUBLIC KEY\" form, as `cosign generate-key-pair` writes)"
            ))
        })?;
        let der = key
            .to_public_key_der()
            .map_err(|e| SignatureError::Key(format!("sigstore public key: {e}")))?;
        Ok(PublicKey {
            key_id: digest::sha256(der.as_bytes()).to_string(),
            key,
        })
    }

    /// `sha256:<hex>` of the DER SubjectPublicKeyInfo (Rekor's key id).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }
}

/// The decoded signature bytes of a sigstore signature's annotations.
pub fn signature_bytes(annotations: &BTreeMap<String, String>) -> Result<Vec<u8>, SignatureError> {
    let b64 = annotations.get(ANNOTATION_SIGNATURE).ok_or_else(|| {
        SignatureError::Malformed(format!(
            "sigstore signature has no {ANNOTATION_SIGNATURE} annotation"
        ))
    })?;
    B64.decode(b64.trim())
        .map_err(|e| SignatureError::Malformed(format!("{ANNOTATION_SIGNATURE}: not base64: {e}")))
}

/// Check that `key` made the signature in `annotations` over `payload`.
pub fn verify(
    payload: &[u8],
    annotations: &BTreeMap<String, String>,
    key: &PublicKey,
) -> Result<(), SignatureError> {
    let raw = signature_bytes(annotations)?;
    let sig = p256::ecdsa::Signature::from_der(&raw)
        .or_else(|_| p256::ecdsa::Signature::from_slice(&raw))
        .map_err(|e| {
            SignatureError::Malformed(format!("sigstore signature: not ECDSA P-256: {e}"))
        })?;
    key.key.verify(payload, &sig).map_err(|_| {
        SignatureError::Untrusted(format!(
            "sigstore signature does not verify with key {}",
            key.key_id
        ))
    })
}

#[cfg(test)]
pub(crate) mod test_support {
    use bytes::Bytes;
    use p256::ecdsa::signature::Signer as _;
    use p256::pkcs8::LineEnding;

    use super::*;
    use crate::image::Signature;

    pub fn signing_key(seed: u8) -> p256::ecdsa::SigningKey {
        p256::ecdsa::SigningKey::from_bytes(&[seed; 32].into()).expect("valid scalar")
    }

    pub fn public_pem(seed: u8) -> String {
        signing_key(seed)
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("PEM encodes")
    }

    pub fn public_key(seed: u8) -> PublicKey {
        PublicKey::from_bytes(public_pem(seed).as_bytes()).expect("parses")
    }

    /// A `Signature::Sigstore` over `payload` made by key `seed`.
    pub fn sign(seed: u8, payload: &[u8]) -> Signature {
        let sig: p256::ecdsa::Signature = signing_key(seed).sign(payload);
        let mut annotations = BTreeMap::new();
        annotations.insert(
            ANNOTATION_SIGNATURE.to_string(),
            B64.encode(sig.to_der().as_bytes()),
        );
        Signature::Sigstore {
            media_type: MEDIA_TYPE.into(),
            payload: Bytes::copy_from_slice(payload),
            annotations,
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::image::Signature;

    #[test]
    fn tags() {
        let d = digest::sha256(b"x");
        let hex = digest::hex_of(&d).to_string();
        assert_eq!(
            attachment_tags(&d),
            [
                format!("sha256-{hex}.sig"),
                format!("sha256-{hex}.att"),
                format!("sha256-{hex}.sbom")
            ]
        );
        assert!(crate::reference::is_valid_tag(&signature_tag(&d)));
    }

    #[test]
    fn attachment_round_trip() {
        let mut ann = BTreeMap::new();
        ann.insert(ANNOTATION_SIGNATURE.to_string(), "c2ln".to_string());
        let s = Signature::Sigstore {
            media_type: MEDIA_TYPE.into(),
            payload: Bytes::from_static(b"{\"p\":1}"),
            annotations: ann.clone(),
        };
        let att = build_attachment(&[s, Signature::SimpleSigning(Bytes::from_static(b"x"))]);
        assert_eq!(att.blobs.len(), 2);
        let layers = signature_layers(&att.manifest).unwrap();
        assert_eq!(layers.len(), 1);
        assert_eq!(layers[0].1, ann);
        assert_eq!(layers[0].0.digest, digest::sha256(b"{\"p\":1}"));
        let cfg: serde_json::Value = serde_json::from_slice(&att.blobs[0].1).unwrap();
        assert_eq!(cfg["rootfs"]["diff_ids"][0], layers[0].0.digest.to_string());
    }

    #[test]
    fn verify_with_right_key_only() {
        let Signature::Sigstore {
            payload,
            annotations,
            ..
        } = test_support::sign(3, b"hello")
        else {
            unreachable!()
        };
        verify(&payload, &annotations, &test_support::public_key(3)).unwrap();
        let e = verify(&payload, &annotations, &test_support::public_key(4)).unwrap_err();
        assert!(matches!(e, SignatureError::Untrusted(_)), "{e}");
        assert!(verify(b"hellO", &annotations, &test_support::public_key(3)).is_err());
        let der = PublicKey::from_bytes(
            &test_support::signing_key(3)
                .verifying_key()
                .to_public_key_der()
                .unwrap()
                .into_vec(),
        )
        .unwrap();
        assert_eq!(der.key_id(), test_support::public_key(3).key_id());
    }

    #[test]
    fn bad_keys_say_what_is_wanted() {
        let e =
            PublicKey::from_bytes(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
                .unwrap_err();
        assert!(e.to_string().contains("ECDSA P-256"), "{e}");
        let e = signature_bytes(&BTreeMap::new()).unwrap_err();
        assert!(e.to_string().contains(ANNOTATION_SIGNATURE), "{e}");
    }
}

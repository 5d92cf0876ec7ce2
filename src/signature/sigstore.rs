//! Sigstore (cosign) signatures stored as "attachments": an OCI image tagged
//! `sha256-<hex>.sig` in the signed image's repository, one layer per
//! signature. A layer's blob is the payload (the simple-signing JSON with
//! `critical.type` = `cosign container image signature`), its media type
//! [`MEDIA_TYPE`], and its annotation [`ANNOTATION_SIGNATURE`] the base64
//! ASN.1/DER ECDSA P-256 SHA-256 signature over the payload bytes.
//!
//! This file is pure: tag names, key parsing, verification, and building /
//! parsing the attachment manifest. Moving attachments through transports
//! is in `mod.rs`.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use p256::ecdsa::signature::Verifier as _;
use p256::pkcs8::{DecodePublicKey, EncodePublicKey};
use serde::Serialize;

use super::SignatureError;
use crate::digest::{self, Digest};
use crate::image::{BlobInfo, Signature};
use crate::manifest::{self, Manifest};

/// Media type of a cosign signature layer.
pub const MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The layer annotation holding the base64 signature.
pub const ANNOTATION_SIGNATURE: &str = "dev.cosignproject.cosign/signature";
/// Keyless signing: the Fulcio certificate (PEM) — read and copied, not verified here.
pub const ANNOTATION_CERTIFICATE: &str = "dev.sigstore.cosign/certificate";
/// `critical.type` of a cosign payload.
pub const PAYLOAD_TYPE: &str = "cosign container image signature";
/// A signature layer larger than this is refused.
pub const MAX_LAYER: u64 = 4 << 20;
/// At most this many signatures are read from one attachment.
pub const MAX_SIGNATURES: usize = 128;

/// The attachment tag for `digest` with `suffix` (`sig`, `att`, `sbom`):
/// `sha256-<hex>.<suffix>`.
pub fn attachment_tag(digest: &Digest, suffix: &str) -> String {
    format!("{}-{}.{suffix}", digest.algorithm(), digest::hex_of(digest))
}

/// `sha256-<hex>.sig`: where cosign keeps signatures of `digest`.
pub fn signature_tag(digest: &Digest) -> String {
    attachment_tag(digest, "sig")
}

/// `sha256-<hex>.att`: in-toto attestations.
pub fn attestation_tag(digest: &Digest) -> String {
    attachment_tag(digest, "att")
}

/// `sha256-<hex>.sbom`: an attached SBOM.
pub fn sbom_tag(digest: &Digest) -> String {
    attachment_tag(digest, "sbom")
}

/// The `.sig`, `.att` and `.sbom` tags of `digest`, in that order.
pub fn attachment_tags(digest: &Digest) -> [String; 3] {
    [
        signature_tag(digest),
        attestation_tag(digest),
        sbom_tag(digest),
    ]
}

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

/// A layer's annotations.
pub type Annotations = BTreeMap<String, String>;

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

/// The signature layers of an attachment manifest (cosign media type only;
/// others, e.g. attestations pushed under the same tag, are skipped), at most
/// [`MAX_SIGNATURES`].
pub fn signature_layers(m: &Manifest) -> Result<Vec<(BlobInfo, Annotations)>, SignatureError> {
    let img = m
        .image()
        .map_err(|e| SignatureError::Malformed(format!("sigstore attachment: {e}")))?;
    let mut out = Vec::new();
    for layer in img.layers() {
        if layer.media_type().to_string() != MEDIA_TYPE {
            continue;
        }
        if layer.size() > MAX_LAYER {
            return Err(SignatureError::Malformed(format!(
                "sigstore attachment layer {} is {} bytes, over the {MAX_LAYER}-byte limit",
                layer.digest(),
                layer.size()
            )));
        }
        if out.len() == MAX_SIGNATURES {
            return Err(SignatureError::Malformed(format!(
                "sigstore attachment holds over {MAX_SIGNATURES} signatures"
            )));
        }
        let annotations = layer
            .annotations()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        out.push((BlobInfo::from(layer), annotations));
    }
    Ok(out)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Desc<'a> {
    media_type: &'a str,
    size: u64,
    digest: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OciManifest<'a> {
    schema_version: u32,
    media_type: &'a str,
    config: Desc<'a>,
    layers: Vec<Desc<'a>>,
}

/// An attachment image ready to push: its blobs (config first) and manifest.
#[derive(Debug, Clone)]
pub struct Attachment {
    pub blobs: Vec<(BlobInfo, Bytes)>,
    pub manifest: Manifest,
}

/// Build the attachment image holding `signatures` (the `Sigstore` ones;
/// others are ignored), in the shape cosign and containers/image write: an
/// OCI manifest, a config whose `rootfs.diff_ids` list the layers, one layer
/// per signature with its annotations.
pub fn build_attachment(signatures: &[Signature]) -> Attachment {
    let empty = BTreeMap::new();
    let mut blobs = Vec::new();
    let mut layers = Vec::new();
    for s in signatures {
        if let Signature::Sigstore {
            media_type,
            payload,
            annotations,
        } = s
        {
            let d = digest::sha256(payload);
            layers.push(Desc {
                media_type,
                size: payload.len() as u64,
                digest: d.to_string(),
                annotations,
            });
            let mut info = BlobInfo::new(d, Some(payload.len() as u64));
            info.media_type = Some(media_type.clone());
            blobs.push((info, payload.clone()));
        }
    }
    let config = Bytes::from(
        serde_json::to_vec(&serde_json::json!({
            "architecture": "",
            "os": "",
            "config": {},
            "rootfs": {
                "type": "layers",
                "diff_ids": layers.iter().map(|l| l.digest.clone()).collect::<Vec<_>>(),
            },
        }))
        .expect("JSON serialises"),
    );
    let config_digest = digest::sha256(&config);
    let manifest = OciManifest {
        schema_version: 2,
        media_type: manifest::OCI_MANIFEST,
        config: Desc {
            media_type: manifest::OCI_CONFIG,
            size: config.len() as u64,
            digest: config_digest.to_string(),
            annotations: &empty,
        },
        layers,
    };
    let bytes = Bytes::from(serde_json::to_vec(&manifest).expect("JSON serialises"));
    let mut config_info = BlobInfo::new(config_digest, Some(config.len() as u64));
    config_info.media_type = Some(manifest::OCI_CONFIG.into());
    blobs.insert(0, (config_info, config));
    Attachment {
        blobs,
        manifest: Manifest {
            bytes,
            media_type: manifest::OCI_MANIFEST.into(),
        },
    }
}

/// Deterministic P-256 keys and signatures for unit tests (the integration
/// tests sign with openssl instead).
#[cfg(test)]
pub(crate) mod test_support {
    use p256::ecdsa::signature::Signer as _;
    use p256::pkcs8::LineEnding;

    use super::*;

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
    use super::*;

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

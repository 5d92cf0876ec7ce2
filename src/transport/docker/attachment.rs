//! Cosign's attachment layout, the storage format of sigstore signatures on
//! a registry: an OCI image tagged `sha256-<hex>.sig` in the signed image's
//! repository, one layer per signature (the payload as the blob, the
//! signature in the [`ANNOTATION_SIGNATURE`] annotation); attestations and
//! SBOMs beside it as `.att` / `.sbom`. Pure: tag names, and building /
//! parsing the attachment manifest. Verifying is `crate::signature`'s.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::Serialize;

use crate::digest::{self, Digest};
use crate::image::{BlobInfo, Error, Signature};
use crate::manifest::{self, Manifest};

/// Media type of a cosign signature layer.
pub const MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The layer annotation holding the base64 signature.
pub const ANNOTATION_SIGNATURE: &str = "dev.cosignproject.cosign/signature";
/// A signature layer larger than this is refused.
pub const MAX_LAYER: u64 = 4 << 20;
/// At most this many signatures are read from one attachment.
pub const MAX_SIGNATURES: usize = 128;

/// A layer's annotations.
pub type Annotations = BTreeMap<String, String>;

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

/// The signature layers of an attachment manifest (cosign media type only;
/// others, e.g. attestations pushed under the same tag, are skipped), at most
/// [`MAX_SIGNATURES`].
pub fn signature_layers(m: &Manifest) -> Result<Vec<(BlobInfo, Annotations)>, Error> {
    let img = m
        .image()
        .map_err(|e| Error::Signature(format!("sigstore attachment: {e}")))?;
    let mut out = Vec::new();
    for layer in img.layers() {
        if layer.media_type().to_string() != MEDIA_TYPE {
            continue;
        }
        if layer.size() > MAX_LAYER {
            return Err(Error::Signature(format!(
                "sigstore attachment layer {} is {} bytes, over the {MAX_LAYER}-byte limit",
                layer.digest(),
                layer.size()
            )));
        }
        if out.len() == MAX_SIGNATURES {
            return Err(Error::Signature(format!(
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

//! Sigstore bundles attached to an image as OCI 1.1 referrers (what cosign 3
//! writes): the registry's referrers API
//! ([`crate::image::ImageSource::referrers`]) when it has one, else the
//! referrers tag schema (the OCI index tagged `sha256-<hex>` in the image's
//! repository). Either lists the manifests whose `subject` is the image;
//! those whose `artifactType` is a Sigstore bundle hold the bundle JSON as
//! their one layer. Read through the image traits
//! only (the tag, then manifests and blobs by digest), every count and size
//! bounded, every blob checked against its digest. The bundles come back as
//! [`Signature::Sigstore`] with the bundle's media type and JSON as payload,
//! for [`super::verify`] to judge.
//!
//! Copying referrers (every artifact type, not only bundles) and merging a
//! destination's referrers tag is the copy engine's: `crate::copy::referrers`.

use futures::TryStreamExt as _;

use super::keyless::bundle::{MAX_BUNDLE, version_of};
use crate::digest::{self, Digest};
use crate::image::{BlobInfo, Error, ErrorKind, ImageReference, Result, Signature, SystemContext};

/// At most this many referrers of one image are looked at.
pub const MAX_REFERRERS: usize = 64;

/// The referrers tag of `digest`: `sha256-<hex>`.
pub fn referrers_tag(digest: &Digest) -> String {
    format!("{}-{}", digest.algorithm(), digest::hex_of(digest))
}

/// The Sigstore bundles attached to `digest` in `image`'s repository.
/// No referrers tag: none. A referrer that is not a bundle is skipped; a
/// bundle that cannot be read is an error.
pub async fn read_bundles(
    image: &dyn ImageReference,
    ctx: &SystemContext,
    digest: &Digest,
) -> Result<Vec<Signature>> {
    let src = image.new_image_source(ctx).await?;
    let index = match src.referrers(digest, None).await? {
        Some(index) => index,
        None => {
            let tagged = image.with_tag(&referrers_tag(digest))?;
            match tagged.new_image_source(ctx).await?.get_manifest(None).await {
                Ok(m) => m.bytes,
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(e),
            }
        }
    };
    let bad = |m: String| Error::Signature(format!("referrers of {digest} in {image}: {m}"));
    let v: serde_json::Value = serde_json::from_slice(&index)
        .map_err(|e| bad(format!("the referrers tag is not an OCI index: {e}")))?;
    let mut out = Vec::new();
    for d in v["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .take(MAX_REFERRERS)
    {
        let Some(mt) = d["artifactType"]
            .as_str()
            .filter(|t| version_of(t).is_some())
        else {
            continue;
        };
        let Some(child) = d["digest"].as_str().and_then(|s| digest::parse(s).ok()) else {
            continue;
        };
        let m = src.get_manifest(Some(&child)).await?;
        let mv: serde_json::Value =
            serde_json::from_slice(&m.bytes).map_err(|e| bad(format!("referrer {child}: {e}")))?;
        if mv["subject"]["digest"].as_str() != Some(digest.as_ref()) {
            continue; // listed under this image, but about another
        }
        let layer = &mv["layers"][0];
        let (Some(ld), Some(size)) = (
            layer["digest"].as_str().and_then(|s| digest::parse(s).ok()),
            layer["size"].as_u64(),
        ) else {
            return Err(bad(format!("referrer {child}: no bundle layer")));
        };
        if size > MAX_BUNDLE as u64 {
            return Err(bad(format!(
                "referrer {child}: bundle of {size} bytes, over the {MAX_BUNDLE}-byte limit"
            )));
        }
        let blob = src.get_blob(&BlobInfo::new(ld.clone(), Some(size))).await?;
        let mut bytes = Vec::with_capacity(size as usize);
        let mut stream = blob.stream;
        while let Some(chunk) = stream.try_next().await? {
            if bytes.len() + chunk.len() > size as usize {
                return Err(bad(format!(
                    "referrer {child}: bundle larger than its descriptor"
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        digest::verify_bytes(&ld, &bytes).map_err(|_| {
            bad(format!(
                "referrer {child}: bundle does not match its digest"
            ))
        })?;
        out.push(Signature::Sigstore {
            media_type: mt.to_string(),
            payload: bytes.into(),
            annotations: Default::default(),
        });
    }
    Ok(out)
}

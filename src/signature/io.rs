//! Moving signatures between transports and signature storage: [`read`] and
//! [`write`], the two calls the copy engine and the reconcilers make. Both
//! see only the image traits.

use bytes::Bytes;
use futures::StreamExt;

use super::{SignatureError, lookaside, sigstore};
use crate::digest::{self, Digest};
use crate::image::{
    Blob, Error, ErrorKind, ImageDestination, ImageReference, ImageSource, Result, ReuseHint,
    Signature, SignatureStorage, SystemContext,
};
use crate::reference::Reference;

/// Which manifest the signatures are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    /// The top-level manifest (an image, or an index), by its digest.
    TopLevel(&'a Digest),
    /// One image of an index, by its digest.
    Instance(&'a Digest),
}

impl<'a> Target<'a> {
    pub fn digest(&self) -> &'a Digest {
        match self {
            Target::TopLevel(d) | Target::Instance(d) => d,
        }
    }

    fn instance(&self) -> Option<&'a Digest> {
        match self {
            Target::TopLevel(_) => None,
            Target::Instance(d) => Some(d),
        }
    }
}

/// The registry reference and its signature storage settings, when the
/// image is on a registry.
fn registry_storage(
    image: &dyn ImageReference,
    ctx: &SystemContext,
) -> Option<(Reference, SignatureStorage)> {
    if image.transport() != "docker" {
        return None;
    }
    let r = image.docker_reference()?;
    let storage = ctx
        .signature_storage
        .as_ref()
        .map(|c| c.storage_for(&r))
        .unwrap_or_default();
    Some((r, storage))
}

fn push_unique(out: &mut Vec<Signature>, s: Signature) {
    if !out.contains(&s) {
        out.push(s);
    }
}

/// Every signature of one manifest, in this order, without duplicates:
/// what the transport itself stores (`ImageSource::get_signatures`: `dir:`
/// files, …), then for registry images the lookaside storage and the
/// sigstore attachment (`sha256-<hex>.sig`) that `ctx.signature_storage`
/// (registries.d) enables for the image. Nothing is verified here.
///
/// A missing attachment or lookaside entry is no signature, not an error;
/// unreadable storage and malformed attachments are errors.
pub async fn read(
    src_ref: &dyn ImageReference,
    src: &dyn ImageSource,
    ctx: &SystemContext,
    target: Target<'_>,
) -> Result<Vec<Signature>> {
    let mut out = Vec::new();
    for s in src.get_signatures(target.instance()).await? {
        push_unique(&mut out, s);
    }
    let Some((r, storage)) = registry_storage(src_ref, ctx) else {
        return Ok(out);
    };
    if let Some(base) = &storage.lookaside {
        for s in lookaside::read(base, &r, target.digest(), ctx).await? {
            push_unique(&mut out, Signature::SimpleSigning(s));
        }
    }
    if storage.use_sigstore_attachments {
        for s in read_attachment(src_ref, ctx, target.digest()).await? {
            push_unique(&mut out, s);
        }
    }
    Ok(out)
}

/// The sigstore signatures in the `.sig` attachment of `digest`; none when
/// there is no attachment.
pub async fn read_attachment(
    image: &dyn ImageReference,
    ctx: &SystemContext,
    digest: &Digest,
) -> Result<Vec<Signature>> {
    let att = image.with_tag(&sigstore::signature_tag(digest))?;
    let src = match att.new_image_source(ctx).await {
        Ok(s) => s,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let manifest = match src.get_manifest(None).await {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for (info, annotations) in sigstore::signature_layers(&manifest)? {
        let mut blob = src.get_blob(&info).await?;
        let mut payload = Vec::new();
        while let Some(chunk) = blob.stream.next().await {
            let chunk = chunk?;
            if (payload.len() + chunk.len()) as u64 > sigstore::MAX_LAYER {
                return Err(SignatureError::Malformed(format!(
                    "{att}: signature layer {} over {} bytes",
                    info.digest,
                    sigstore::MAX_LAYER
                ))
                .into());
            }
            payload.extend_from_slice(&chunk);
        }
        digest::verify_bytes(&info.digest, &payload).map_err(|e| Error::Digest {
            location: att.to_string(),
            what: format!("signature layer {}", info.digest),
            source: e,
        })?;
        out.push(Signature::Sigstore {
            media_type: info
                .media_type
                .clone()
                .unwrap_or_else(|| sigstore::MEDIA_TYPE.into()),
            payload: Bytes::from(payload),
            annotations,
        });
    }
    Ok(out)
}

/// Store `signatures` for one manifest at the destination; returns how many
/// were given to storage. Call it after the blobs and instance manifests
/// are written and before the top-level manifest (the copy engine's order).
///
/// - Not a registry (`dir:`, `oci:`, archives): the transport's
///   `put_signatures` (which refuses if it cannot store them).
/// - A registry: simple signatures go to the `lookaside-staging` (else
///   `lookaside`) storage of `ctx.signature_storage`, merged with what is
///   there; sigstore signatures are added to the `sha256-<hex>.sig`
///   attachment (pushed as an image through `dst_ref.with_tag`), merged with
///   its existing layers, when `use-sigstore-attachments` is on. Either one
///   missing its configuration is an error that says what to configure.
pub async fn write(
    dst_ref: &dyn ImageReference,
    dst: &dyn ImageDestination,
    ctx: &SystemContext,
    target: Target<'_>,
    signatures: &[Signature],
) -> Result<usize> {
    if signatures.is_empty() {
        return Ok(0);
    }
    let digest = target.digest();
    let Some((r, storage)) = registry_storage(dst_ref, ctx).filter(|_| !dst.supports_signatures())
    else {
        dst.put_signatures(signatures, digest).await?;
        return Ok(signatures.len());
    };
    let simple: Vec<Bytes> = signatures
        .iter()
        .filter_map(|s| match s {
            Signature::SimpleSigning(b) => Some(b.clone()),
            _ => None,
        })
        .collect();
    let cosign: Vec<Signature> = signatures
        .iter()
        .filter(|s| matches!(s, Signature::Sigstore { .. }))
        .cloned()
        .collect();
    if !simple.is_empty() {
        let Some(base) = storage
            .lookaside_staging
            .as_ref()
            .or(storage.lookaside.as_ref())
        else {
            return Err(Error::Signature(format!(
                "{dst_ref}: cannot store {} simple signature(s): no lookaside is configured for {} (set lookaside-staging in registries.d or signatureLookaside, or drop signatures with --remove-signatures)",
                simple.len(),
                crate::reference::name(&r)
            )));
        };
        let mut all = lookaside::read(base, &r, digest, ctx).await?;
        for s in simple.iter() {
            if !all.contains(s) {
                all.push(s.clone());
            }
        }
        lookaside::write(base, &r, digest, &all).await?;
    }
    if !cosign.is_empty() {
        if !storage.use_sigstore_attachments {
            return Err(Error::Signature(format!(
                "{dst_ref}: cannot store {} sigstore signature(s): sigstore attachments are off for {} (set use-sigstore-attachments: true in registries.d, or drop signatures with --remove-signatures)",
                cosign.len(),
                crate::reference::name(&r)
            )));
        }
        write_attachment(dst_ref, ctx, digest, &cosign).await?;
    }
    Ok(simple.len() + cosign.len())
}

/// Add `signatures` to the `.sig` attachment of `digest` (kept: what it
/// already holds), and push it.
pub async fn write_attachment(
    image: &dyn ImageReference,
    ctx: &SystemContext,
    digest: &Digest,
    signatures: &[Signature],
) -> Result<()> {
    let mut all = read_attachment(image, ctx, digest).await?;
    let before = all.len();
    for s in signatures {
        push_unique(&mut all, s.clone());
    }
    if all.len() == before && before > 0 {
        return Ok(());
    }
    let att_ref = image.with_tag(&sigstore::signature_tag(digest))?;
    let att = sigstore::build_attachment(&all);
    let dst = att_ref.new_image_destination(ctx).await?;
    let hint = ReuseHint {
        source: att_ref.docker_reference(),
    };
    for (info, bytes) in att.blobs {
        if dst.try_reusing_blob(&info, &hint).await?.is_some() {
            continue;
        }
        let blob = Blob {
            size: Some(bytes.len() as u64),
            stream: futures::stream::once(async move { Ok(bytes) }).boxed(),
        };
        dst.put_blob(&info, blob).await?;
    }
    dst.put_manifest(&att.manifest, None).await?;
    dst.commit().await
}

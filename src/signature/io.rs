//! Moving signatures between transports: [`read`] and [`write`], the two
//! calls the copy engine and the reconcilers make. Where signatures live is
//! each transport's business (`dir:` files; a registry's lookaside and
//! sigstore attachments, as registries.d says): both see only the image
//! traits.

use crate::digest::Digest;
use crate::image::{ImageDestination, ImageReference, Result, Signature, SystemContext};

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
}

/// Every signature of one manifest, without duplicates, as the source's
/// transport stores them ([`crate::image::ImageSource::signatures_of`]:
/// `dir:` files; for a registry the lookaside and the sigstore attachment
/// `sha256-<hex>.sig` that `signature_storage` enables). Nothing is
/// verified here. A missing attachment or lookaside entry is no signature,
/// not an error; unreadable storage and malformed attachments are errors.
pub async fn read(
    src: &dyn crate::image::ImageSource,
    target: Target<'_>,
) -> Result<Vec<Signature>> {
    let top = matches!(target, Target::TopLevel(_));
    let mut out: Vec<Signature> = Vec::new();
    for s in src.signatures_of(target.digest(), top).await? {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    Ok(out)
}

/// Store `signatures` for one manifest at the destination (its transport's
/// `put_signatures`, which refuses, saying what to configure, when it
/// cannot store them); returns how many were given. Call it after the blobs
/// and instance manifests are written and before the top-level manifest
/// (the copy engine's order).
pub async fn write(
    dst: &dyn ImageDestination,
    target: Target<'_>,
    signatures: &[Signature],
) -> Result<usize> {
    if signatures.is_empty() {
        return Ok(0);
    }
    dst.put_signatures(signatures, target.digest()).await?;
    Ok(signatures.len())
}

/// The sigstore signatures of `digest` in `image`'s storage (for a registry:
/// the `.sig` attachment, when `ctx` enables attachments).
pub async fn read_attachment(
    image: &dyn ImageReference,
    ctx: &SystemContext,
    digest: &Digest,
) -> Result<Vec<Signature>> {
    let src = image.new_image_source(ctx).await?;
    let mut sigs = read(src.as_ref(), Target::TopLevel(digest)).await?;
    sigs.retain(|s| matches!(s, Signature::Sigstore { .. }));
    Ok(sigs)
}

/// Add `signatures` (the sigstore ones) to `image`'s storage for `digest`
/// (for a registry: merged into the `.sig` attachment).
pub async fn write_attachment(
    image: &dyn ImageReference,
    ctx: &SystemContext,
    digest: &Digest,
    signatures: &[Signature],
) -> Result<()> {
    let sigstore: Vec<Signature> = signatures
        .iter()
        .filter(|s| matches!(s, Signature::Sigstore { .. }))
        .cloned()
        .collect();
    let dst = image.new_image_destination(ctx).await?;
    write(dst.as_ref(), Target::TopLevel(digest), &sigstore).await?;
    Ok(())
}

//! The copy engine: plans what to move from an [`ImageSource`] to an
//! [`ImageDestination`], moves blobs in parallel (each streamed and verified
//! by the destination), writes manifests instances-first and the top level
//! last, and reports what it did. It sees only the image traits, never a
//! concrete transport.
//!
//! Order (so that nothing half-written is presented as done): the trust
//! policy is checked against the source's top-level manifest and signatures
//! before anything is written; then blobs → per-platform manifests (by digest)
//! → signatures → top-level manifest (the tag) → `commit`. Signatures go
//! through `crate::signature::{read, write}` (transport, lookaside, sigstore
//! attachments as registries.d says).

mod blobs;
pub mod compress;
mod engine;
pub mod plan;
pub mod referrers;

/// The per-host blob windows now live in the registry context; the old
/// path stays for callers that named it.
pub use crate::image::registry_context::windows as limiter;

pub use plan::ManifestFormat;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument;

use crate::digest::Digest;
use crate::image::{Error, ImageReference, SystemContext};
use crate::manifest::Platform;

/// Which images of an index to copy (skopeo's `--multi-arch` / `--all`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum MultiArch {
    /// Only the image for this machine's platform (skopeo's default).
    #[default]
    System,
    /// The whole index with every image it lists.
    All,
    /// The index manifest alone, none of its images.
    IndexOnly,
    /// The listed platforms; the index written at the destination lists only them.
    Platforms(Vec<Platform>),
}

/// What happens to signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignaturePolicy {
    /// Copy whatever the source has (skopeo's default).
    #[default]
    Copy,
    /// Copy none (`--remove-signatures`).
    Drop,
}

/// Receives progress events (a terminal bar, metrics). Implementations must be cheap.
pub trait Progress: Send + Sync {
    /// A blob of `size` bytes (if known) starts streaming.
    fn blob_started(&self, digest: &Digest, size: Option<u64>) {
        let _ = (digest, size);
    }
    /// `n` more bytes of some blob went through.
    fn bytes(&self, n: u64) {
        let _ = n;
    }
    /// A blob finished: copied, or skipped because the destination had it.
    fn blob_done(&self, digest: &Digest, skipped: bool) {
        let _ = (digest, skipped);
    }
    /// The plan, once the source's manifests are read and before any blob
    /// moves: what will be written, in order.
    fn outline(&self, outline: &Outline) {
        let _ = outline;
    }
    /// Every blob is in place; manifests and signatures are being written.
    fn writing_manifests(&self) {}
    /// The destination already holds the source's manifest: nothing is written.
    fn up_to_date(&self, signatures: bool) {
        let _ = signatures;
    }
}

/// What a copy writes, as reported to [`Progress::outline`] (skopeo prints
/// its progress lines from this).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outline {
    /// `Some((selected, total))` when an index is written: how many of the
    /// source index's `total` images are copied with it.
    pub list: Option<(usize, usize)>,
    /// The images written, in order: the index's selected instances, or the one image.
    pub images: Vec<OutlineImage>,
    /// Whether signatures are read from the source and copied.
    pub signatures: bool,
}

/// One image of an [`Outline`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutlineImage {
    /// The source manifest's digest (the index entry's, for an instance).
    pub source_digest: Digest,
    /// Layer digests in manifest order.
    pub layers: Vec<Digest>,
    pub config: Digest,
}

/// Options for one copy.
#[derive(Clone)]
pub struct CopyOptions {
    pub multi_arch: MultiArch,
    /// Blobs copied at once (`--jobs`).
    pub jobs: usize,
    pub signatures: SignaturePolicy,
    /// When false, always copy even if the destination's manifest digest equals the source's.
    pub incremental: bool,
    pub progress: Option<Arc<dyn Progress>>,
    /// The trust policy the source must satisfy before anything is written
    /// (`--policy`); `None` accepts anything.
    pub policy: Option<Arc<crate::signature::Policy>>,
    /// Also copy the artifacts attached to the image in the same
    /// repository: by tag, byte for byte, cosign's `sha256-<hex>.sig` /
    /// `.att` / `.sbom`; and its OCI 1.1 referrers, the destination's
    /// referrers tag `sha256-<hex>` merged (see [`referrers`]). Registry to
    /// registry only; `--copy-attachments`, and `ImageMirror` with
    /// `signatures: Copy | Require`.
    pub attachments: bool,
    /// The source repository's tags, when the caller has listed them anyway
    /// (an `ImageMirror` selecting by pattern, semver or latest). With
    /// `attachments`: attachment tags missing from the list are not probed,
    /// and an image already up to date still gets the attachments that are
    /// new or changed — a cosign signature published after the image was
    /// mirrored. `None`: every attachment tag is probed, and only when the
    /// image itself is copied (a no-op copy stays one HEAD each side).
    pub source_tags: Option<Arc<std::collections::BTreeSet<String>>>,
    /// The source's top-level manifest, already read (and judged: its
    /// signatures were verified): copied and tagged instead of reading the
    /// source's tag again, so that a tag that moves after the check cannot
    /// bring another image. Its index entries and blobs are fetched by
    /// digest, so the image copied is exactly the one judged.
    pub manifest: Option<crate::manifest::Manifest>,
    /// Write manifests in this format, converting where needed (`--format`).
    pub format: Option<ManifestFormat>,
    /// Fail, before writing anything, when a manifest would be written with
    /// another digest than the source's (`--preserve-digests`).
    pub preserve_digests: bool,
    /// Each adds a new signature of the top-level manifest as written
    /// (`--sign-by`, `--sign-by-sigstore-private-key`), stored beside the
    /// copied ones before the tag is written.
    pub signers: Vec<Arc<dyn Signer>>,
    /// The name new signatures claim (`--sign-identity`); `None`: the
    /// destination's docker reference (a destination without one needs it).
    pub sign_identity: Option<String>,
    /// Change the compression of layers at the destination (`--dest-compress`,
    /// `--dest-compress-format`, `--dest-decompress`; see [`compress`]).
    /// `None`: layers are copied as stored.
    pub compression: Option<compress::LayerCompression>,
}

/// Makes a signature for a manifest (see [`CopyOptions::signers`]).
pub trait Signer: Send + Sync {
    /// A signature claiming `docker_reference` for `manifest_digest`.
    fn sign(
        &self,
        docker_reference: &str,
        manifest_digest: &Digest,
    ) -> Result<crate::image::Signature, Error>;
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            multi_arch: MultiArch::System,
            jobs: 8,
            signatures: SignaturePolicy::Copy,
            incremental: true,
            progress: None,
            policy: None,
            attachments: false,
            source_tags: None,
            manifest: None,
            format: None,
            preserve_digests: false,
            signers: Vec::new(),
            sign_identity: None,
            compression: None,
        }
    }
}

/// What a copy did: the machine-readable report the controller puts in status.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CopyReport {
    /// Digest of the source's top-level manifest.
    pub source_digest: String,
    /// Digest of the manifest written at the destination (differs from the
    /// source's only when the format was converted or platforms were subset).
    pub destination_digest: String,
    /// True when the destination already held the image and nothing was written.
    pub up_to_date: bool,
    pub bytes_copied: u64,
    pub blobs_copied: u64,
    /// Blobs the destination already had.
    pub blobs_skipped: u64,
    /// Blobs mounted from another repository of the destination registry.
    pub blobs_mounted: u64,
    pub manifests_written: u64,
    pub signatures_copied: u64,
    /// Artifacts attached by tag (cosign's `.sig`, `.att`, `.sbom`) copied.
    pub attachments_copied: u64,
    /// OCI 1.1 referrer manifests (signatures, attestations, SBOMs whose
    /// `subject` is the image) copied (see [`referrers`]).
    pub referrers_copied: u64,
    #[serde(skip)]
    pub duration: Duration,
    /// What the destination tag named before the copy, when the copy
    /// looked (`Some(None)`: absent); `None` when it did not look.
    #[serde(skip)]
    pub destination_before: Option<Option<String>>,
}

/// Copy one image (or index) from `src` to `dst`; see the module docs for
/// the order of writes. Returns what was done; on error nothing was tagged at
/// the destination.
pub async fn copy_image(
    src: &dyn ImageReference,
    src_ctx: &SystemContext,
    dst: &dyn ImageReference,
    dst_ctx: &SystemContext,
    options: &CopyOptions,
) -> Result<CopyReport, Error> {
    engine::run(src, src_ctx, dst, dst_ctx, options)
        .instrument(span(src, dst))
        .await
}

/// The span of one copy: `copy{source, destination, registry}`, the
/// registry being the destination's host (else the source's; empty between
/// local layouts), so that a retried blob names the copy and the registry.
fn span(src: &dyn ImageReference, dst: &dyn ImageReference) -> tracing::Span {
    let registry = dst
        .docker_reference()
        .or_else(|| src.docker_reference())
        .map(|r| crate::reference::endpoint(&r).to_string())
        .unwrap_or_default();
    tracing::info_span!("copy", source = %src, destination = %dst, registry)
}

/// [`copy_image`] as a boxed future: for the engine's own recursive calls
/// (attachments), whose future type would otherwise contain itself.
pub(crate) fn copy_image_boxed<'a>(
    src: &'a dyn ImageReference,
    src_ctx: &'a SystemContext,
    dst: &'a dyn ImageReference,
    dst_ctx: &'a SystemContext,
    options: &'a CopyOptions,
) -> futures::future::BoxFuture<'a, Result<CopyReport, Error>> {
    Box::pin(engine::run(src, src_ctx, dst, dst_ctx, options).instrument(span(src, dst)))
}

/// The copy future can run on a spawned task (the controller's reconciles).
#[allow(dead_code)]
fn copy_future_is_send(
    src: &dyn ImageReference,
    src_ctx: &SystemContext,
    dst: &dyn ImageReference,
    dst_ctx: &SystemContext,
    options: &CopyOptions,
) {
    fn send<T: Send>(_: &T) {}
    let f = copy_image(src, src_ctx, dst, dst_ctx, options);
    send(&f);
}

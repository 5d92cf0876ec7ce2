//! The copy orchestration: open both sides, stop early when the destination
//! already holds the source's manifest, plan, move blobs, write manifests
//! (instances first, top level last), then commit.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use futures::{StreamExt, TryStreamExt};

use super::blobs::{BlobMover, Counters};
use super::compress::{self, LayerCompression};
use super::plan::{self, Selection};
use super::{CopyOptions, CopyReport, Outline, OutlineImage, SignaturePolicy};
use crate::digest::Digest;
use crate::image::{
    BlobInfo, Error, ImageDestination, ImageReference, ImageSource, RequestObserver, ReuseHint,
    Signature, SystemContext, registry_context::Tee,
};
use crate::manifest::{self, Manifest, Parsed};
use crate::reference;
use crate::signature::{self, Target};

/// One manifest to write: as written, and where it came from.
struct Instance {
    manifest: Manifest,
    /// `Some(digest)` for an index entry written by digest; `None` for the top level.
    digest: Option<Digest>,
    /// The digest of the source manifest it came from; when it differs from
    /// the written digest the manifest was converted and signatures cannot follow.
    source_digest: Digest,
    /// What to ask the source's `get_signatures` for: `None` for the source's
    /// top level, else the index entry it came from.
    source_instance: Option<Digest>,
}

pub async fn run(
    src_ref: &dyn ImageReference,
    src_ctx: &SystemContext,
    dst_ref: &dyn ImageReference,
    dst_ctx: &SystemContext,
    options: &CopyOptions,
) -> Result<CopyReport, Error> {
    let started = Instant::now();
    // A store whose tags share one file takes one writer at a time.
    let _writing = match dst_ref.write_lock() {
        Some(key) => Some(dst_ctx.registry.lock_writes(&key).await),
        None => None,
    };
    // Each side's requests feed the blob windows of its registry context.
    let src_ctx = observed(src_ctx);
    let dst_ctx = observed(dst_ctx);
    let (src, dst) = tokio::try_join!(
        src_ref.new_image_source(&src_ctx),
        dst_ref.new_image_destination(&dst_ctx)
    )?;
    let src_loc = src.reference().to_string();

    // A no-op copy is one HEAD on each side (when the policy needs
    // signatures, it is judged first, as for any copy).
    let mut destination_before = None;
    if options.incremental
        && options.format.is_none()
        && options.compression.is_none()
        && !options
            .policy
            .as_ref()
            .is_some_and(|p| p.needs_signatures(src_ref))
    {
        let (src_digest, existing) = match &options.manifest {
            Some(m) => (m.digest(), dst.existing_manifest_digest().await?),
            None => tokio::try_join!(src.manifest_digest(), dst.existing_manifest_digest())?,
        };
        destination_before = Some(existing.as_ref().map(Digest::to_string));
        if existing.as_ref() == Some(&src_digest) {
            // Attachments may have come since (only looked for when the
            // caller listed the source's tags: otherwise a no-op stays free).
            let (attachments_copied, referrers_copied) = if options.source_tags.is_some() {
                let sides = (src_ref, &src_ctx, dst_ref, &dst_ctx);
                let a =
                    copy_attachments(src_ref, &src_ctx, dst_ref, &dst_ctx, &src_digest, options)
                        .await?;
                let r = copy_referrers(sides, src.as_ref(), dst.as_ref(), &[&src_digest], options)
                    .await?;
                (a, r)
            } else {
                (0, 0)
            };
            if let Some(p) = &options.progress {
                p.up_to_date(options.signatures == SignaturePolicy::Copy);
            }
            return Ok(CopyReport {
                source_digest: src_digest.to_string(),
                destination_digest: src_digest.to_string(),
                up_to_date: attachments_copied + referrers_copied == 0,
                attachments_copied,
                referrers_copied,
                duration: started.elapsed(),
                destination_before,
                ..Default::default()
            });
        }
    }

    let top = match &options.manifest {
        Some(m) => m.clone(),
        None => src.get_manifest(None).await?,
    };
    let top_digest = top.digest();
    if let Some(policy) = options
        .policy
        .as_ref()
        .filter(|p| p.needs_signatures(src_ref))
    {
        let mut sigs = signature::read(src.as_ref(), Target::TopLevel(&top_digest)).await?;
        // Keyless policies count Sigstore bundles attached as referrers.
        if policy.wants_bundles(src_ref) && src_ref.stores_attachments() {
            sigs.extend(signature::referrers::read_bundles(src_ref, &src_ctx, &top_digest).await?);
        }
        policy
            .evaluate_image(src_ref, &top.bytes, &sigs)
            .map_err(|e| Error::Signature(rejected(&e)))?;
    }
    let index_size = match top.parse() {
        Ok(Parsed::Index(i)) => i.manifests().len(),
        _ => 0,
    };
    let (mut top_out, mut instances) =
        plan_writes(src.as_ref(), dst.as_ref(), top, options).await?;
    // Recompressed layers are staged on disk and read from there.
    let staged = match &options.compression {
        Some(c) => Some(compress::StagedSource {
            inner: src.as_ref(),
            staged: Arc::new(
                recompress(
                    src.as_ref(),
                    dst.as_ref(),
                    &mut top_out,
                    &mut instances,
                    c,
                    options,
                )
                .await?,
            ),
        }),
        None => None,
    };
    let blob_src: &dyn ImageSource = match &staged {
        Some(s) => s,
        None => src.as_ref(),
    };
    if options.preserve_digests {
        for i in instances.iter().chain(std::iter::once(&top_out)) {
            let written = i.manifest.digest();
            if written != i.source_digest {
                return Err(Error::Unsupported(format!(
                    "--preserve-digests: manifest {} would be written as {} ({}) at {}: copy without --preserve-digests, --format or --platform",
                    i.source_digest,
                    written,
                    i.manifest.media_type,
                    dst.reference()
                )));
            }
        }
    }
    if let Some(p) = &options.progress {
        p.outline(&outline(&top_out, &instances, index_size, options));
    }
    // Every blob, once, in manifest order.
    let mut seen = HashSet::new();
    let mut blobs: Vec<BlobInfo> = Vec::new();
    for m in instances
        .iter()
        .map(|i| &i.manifest)
        .chain(std::iter::once(&top_out.manifest))
    {
        if m.is_index() {
            continue;
        }
        let img = m.image().map_err(|e| Error::manifest(&src_loc, e))?;
        for d in manifest::blobs(&img) {
            if seen.insert(d.digest().clone()) {
                blobs.push(BlobInfo::from(&d));
            }
        }
    }

    let mut windows = Vec::new();
    for (r, ctx) in [
        (src_ref.docker_reference(), &src_ctx),
        (dst_ref.docker_reference(), &dst_ctx),
    ] {
        if let Some(r) = r {
            let limits = ctx.registry.limits();
            windows.push(limits.window(reference::endpoint(&r), options.jobs));
        }
    }
    let mover = BlobMover {
        src: blob_src,
        dst: dst.as_ref(),
        hint: ReuseHint {
            source: src_ref.docker_reference(),
        },
        windows,
        retry_times: src_ctx.retry_times.max(dst_ctx.retry_times),
        progress: options.progress.clone(),
        counters: Counters::default(),
    };
    mover.copy_all(blobs, options.jobs).await?;
    if let Some(p) = &options.progress {
        p.writing_manifests();
    }

    // Instances (by digest), concurrently; then signatures; then the tag.
    // Futures are collected before they are streamed: a stream holding the
    // closure would make the copy future not `Send` (rustc's higher-ranked
    // lifetime limits), and the controller runs copies on spawned tasks.
    let puts: Vec<_> = instances
        .iter()
        .map(|i| dst.put_manifest(&i.manifest, i.digest.as_ref()))
        .collect();
    futures::stream::iter(puts)
        .buffer_unordered(options.jobs.max(1))
        .try_collect::<Vec<()>>()
        .await?;
    // Attachments name the source digest: not for a converted manifest.
    let attachments_follow = top_out.manifest.digest() == top_out.source_digest
        && attachments_apply(src_ref, dst_ref, options);
    let mut signatures_copied = 0u64;
    let new_signatures = sign(dst_ref, &top_out, options)?;
    if options.signatures == SignaturePolicy::Copy || !new_signatures.is_empty() {
        let sides = Sides {
            src: src.as_ref(),
            dst: dst.as_ref(),
            copy: options.signatures == SignaturePolicy::Copy,
        };
        for inst in &instances {
            signatures_copied += sides.copy_signatures(inst, false, &[]).await?;
        }
        signatures_copied += sides
            .copy_signatures(&top_out, attachments_follow, &new_signatures)
            .await?;
    }
    let attachments_copied = if attachments_follow {
        copy_attachments(
            src_ref,
            &src_ctx,
            dst_ref,
            &dst_ctx,
            &top_out.source_digest,
            options,
        )
        .await?
    } else {
        0
    };
    let referrers_copied = if attachments_follow {
        // The top level and each index entry written (their digests are the source's).
        let subjects: Vec<&Digest> = std::iter::once(&top_out.source_digest)
            .chain(instances.iter().map(|i| &i.source_digest))
            .collect();
        let sides = (src_ref, &src_ctx, dst_ref, &dst_ctx);
        copy_referrers(sides, src.as_ref(), dst.as_ref(), &subjects, options).await?
    } else {
        0
    };
    dst.put_manifest(&top_out.manifest, None).await?;
    dst.commit().await?;

    let c = &mover.counters;
    Ok(CopyReport {
        source_digest: top_digest.to_string(),
        destination_digest: top_out.manifest.digest().to_string(),
        up_to_date: false,
        bytes_copied: c.bytes.load(Ordering::Relaxed),
        blobs_copied: c.copied.load(Ordering::Relaxed),
        blobs_skipped: c.skipped.load(Ordering::Relaxed),
        blobs_mounted: c.mounted.load(Ordering::Relaxed),
        manifests_written: instances.len() as u64 + 1,
        signatures_copied,
        attachments_copied,
        referrers_copied,
        duration: started.elapsed(),
        destination_before,
    })
}

/// Decide every manifest to write: the top level and, for an index copy,
/// its entries, converted where the destination cannot store their type.
async fn plan_writes(
    src: &dyn ImageSource,
    dst: &dyn ImageDestination,
    top: Manifest,
    options: &CopyOptions,
) -> Result<(Instance, Vec<Instance>), Error> {
    let loc = src.reference().to_string();
    let err = |e| Error::manifest(&loc, e);
    let supported = plan::narrow_to_format(dst.supported_manifest_types(), options.format)
        .map_err(|m| Error::Unsupported(format!("{}: {m}", dst.reference())))?;
    let supported = supported.as_slice();
    let top_digest = top.digest();
    let index = match top.parse().map_err(err)? {
        Parsed::Image(_) => {
            let out = plan::for_destination(&top, supported).map_err(err)?;
            let inst = Instance {
                manifest: out,
                digest: None,
                source_digest: top_digest,
                source_instance: None,
            };
            return Ok((inst, Vec::new()));
        }
        Parsed::Index(index) => index,
    };
    match plan::select(&top, &index, &options.multi_arch).map_err(err)? {
        Selection::Single(d) => {
            let m = src.get_manifest(Some(d.digest())).await?;
            let out = plan::for_destination(&m, supported).map_err(err)?;
            let inst = Instance {
                manifest: out,
                digest: None,
                source_digest: d.digest().clone(),
                source_instance: Some(d.digest().clone()),
            };
            Ok((inst, Vec::new()))
        }
        Selection::Index { entries, filtered } => {
            require_index(dst)?;
            let mut instances = fetch_instances(src, &entries, options.jobs).await?;
            let base = filtered.unwrap_or_else(|| top.clone());
            let index_type =
                plan::index_type_for_destination(&base.media_type, supported).map_err(err)?;
            let mut converted = Vec::new();
            for inst in &mut instances {
                let out = plan::for_destination(&inst.manifest, supported).map_err(err)?;
                if out != inst.manifest {
                    converted.push((inst.source_digest.clone(), out.clone()));
                    inst.digest = Some(out.digest());
                    inst.manifest = out;
                }
            }
            let manifest = if converted.is_empty() && index_type == base.media_type {
                base
            } else {
                manifest::rewrite_index(&base, index_type, &converted).map_err(err)?
            };
            let inst = Instance {
                manifest,
                digest: None,
                source_digest: top_digest,
                source_instance: None,
            };
            Ok((inst, instances))
        }
        Selection::IndexOnly => {
            require_index(dst)?;
            let inst = Instance {
                manifest: top,
                digest: None,
                source_digest: top_digest,
                source_instance: None,
            };
            Ok((inst, Vec::new()))
        }
    }
}

/// Rewrite the image manifests to write for layer compression `c` (see
/// [`compress`]), staging the recompressed layers; an index is rewritten to
/// list the new instance digests.
async fn recompress(
    src: &dyn ImageSource,
    dst: &dyn ImageDestination,
    top: &mut Instance,
    instances: &mut [Instance],
    c: &LayerCompression,
    options: &CopyOptions,
) -> Result<compress::Staged, Error> {
    let supported = dst.supported_manifest_types();
    let oci_ok = options.format != Some(super::ManifestFormat::DockerV2S2)
        && (supported.is_empty() || supported.contains(&manifest::OCI_MANIFEST));
    let loc = src.reference().to_string();
    let mut staged = compress::Staged::default();
    let one = async |m: &Manifest,
                     staged: &mut compress::Staged|
           -> Result<(Manifest, bool), Error> {
        let mut m = m.clone();
        let to_oci = c.needs_oci(&m)?;
        if to_oci {
            if !oci_ok {
                return Err(Error::Unsupported(format!(
                    "{}: zstd layers need an OCI manifest, which this destination (or --format v2s2) does not take",
                    dst.reference()
                )));
            }
            m = manifest::to_oci(&m).map_err(|e| Error::manifest(&loc, e))?;
        }
        let out = compress::rewrite_manifest(src, &m, c, staged, options.jobs).await?;
        Ok((out, to_oci))
    };
    if !top.manifest.is_index() {
        top.manifest = one(&top.manifest, &mut staged).await?.0;
        return Ok(staged);
    }
    let mut converted = Vec::new();
    let mut any_oci = false;
    for inst in instances.iter_mut() {
        let (out, to_oci) = one(&inst.manifest, &mut staged).await?;
        any_oci |= to_oci;
        if out != inst.manifest {
            let listed = inst
                .digest
                .clone()
                .unwrap_or_else(|| inst.manifest.digest());
            converted.push((listed, out.clone()));
            inst.digest = Some(out.digest());
            inst.manifest = out;
        }
    }
    if !converted.is_empty() {
        let index_type = if any_oci {
            manifest::OCI_INDEX.to_string()
        } else {
            top.manifest.media_type.clone()
        };
        top.manifest = manifest::rewrite_index(&top.manifest, &index_type, &converted)
            .map_err(|e| Error::manifest(&loc, e))?;
    }
    Ok(staged)
}

/// New signatures of the top-level manifest as written (see [`CopyOptions::signers`]).
fn sign(
    dst_ref: &dyn ImageReference,
    top: &Instance,
    options: &CopyOptions,
) -> Result<Vec<crate::image::Signature>, Error> {
    if options.signers.is_empty() {
        return Ok(Vec::new());
    }
    let identity = match (&options.sign_identity, dst_ref.docker_reference()) {
        (Some(i), _) => i.clone(),
        (None, Some(r)) => r.to_string(),
        (None, None) => {
            return Err(Error::Invalid(format!(
                "cannot determine the docker reference to sign {dst_ref} as: give --sign-identity"
            )));
        }
    };
    let digest = top.manifest.digest();
    options
        .signers
        .iter()
        .map(|s| s.sign(&identity, &digest))
        .collect()
}

/// A policy rejection worded as skopeo words it (`Source image rejected:
/// Running image X is rejected by policy.`, `… A signature was required, but
/// no signature exists`), our own reason after it.
fn rejected(e: &signature::PolicyError) -> String {
    let skopeo = if e.reason == "the policy rejects this image" {
        format!("Running image {} is rejected by policy.", e.image)
    } else if e.reason.contains("was required, but no") {
        "A signature was required, but no signature exists".to_string()
    } else {
        return format!("Source image rejected: {e}");
    };
    format!("Source image rejected: {skopeo} ({e})")
}

/// The plan as progress reports see it (see [`Outline`]).
fn outline(
    top: &Instance,
    instances: &[Instance],
    index_size: usize,
    options: &CopyOptions,
) -> Outline {
    let image = |i: &Instance| {
        let m = i.manifest.image().ok()?;
        Some(OutlineImage {
            source_digest: i.source_digest.clone(),
            layers: m.layers().iter().map(|d| d.digest().clone()).collect(),
            config: m.config().digest().clone(),
        })
    };
    let (list, images) = if top.manifest.is_index() {
        (
            Some((instances.len(), index_size)),
            instances.iter().filter_map(image).collect(),
        )
    } else {
        (None, image(top).into_iter().collect())
    };
    Outline {
        list,
        images,
        signatures: options.signatures == SignaturePolicy::Copy,
    }
}

/// The context with its registry context's windows observing its requests.
fn observed(ctx: &SystemContext) -> SystemContext {
    let mut ctx = ctx.clone();
    let limits: Arc<dyn RequestObserver> = ctx.registry.limits().clone();
    ctx.observer = Some(match ctx.observer.take() {
        Some(o) => Arc::new(Tee(o, limits)),
        None => limits,
    });
    ctx
}

fn require_index(dst: &dyn ImageDestination) -> Result<(), Error> {
    if dst.supports_index() {
        Ok(())
    } else {
        Err(Error::Unsupported(format!(
            "{} cannot hold a multi-platform index: copy one platform (--multi-arch system or --platform os/arch)",
            dst.reference()
        )))
    }
}

/// Fetch the manifests of the selected index entries (exact bytes; the
/// transport checks each against its digest).
async fn fetch_instances(
    src: &dyn ImageSource,
    entries: &[oci_spec::image::Descriptor],
    jobs: usize,
) -> Result<Vec<Instance>, Error> {
    let loc = src.reference().to_string();
    let fetches: Vec<_> = entries
        .iter()
        .map(|d| {
            let loc = loc.clone();
            async move {
                let m = src.get_manifest(Some(d.digest())).await?;
                if m.digest() != *d.digest() {
                    return Err(Error::Digest {
                        location: loc,
                        what: format!("manifest {}", d.digest()),
                        source: crate::digest::DigestError::Mismatch {
                            expected: d.digest().to_string(),
                            actual: m.digest().to_string(),
                        },
                    });
                }
                if m.is_index() {
                    return Err(Error::Unsupported(format!(
                        "{loc}: nested index {} is not supported",
                        d.digest()
                    )));
                }
                Ok(Instance {
                    manifest: m,
                    digest: Some(d.digest().clone()),
                    source_digest: d.digest().clone(),
                    source_instance: Some(d.digest().clone()),
                })
            }
        })
        .collect();
    futures::stream::iter(fetches)
        .buffered(jobs.max(1))
        .try_collect()
        .await
}

/// Copy the artifacts attached to image `digest` by tag (see
/// [`CopyOptions::attachments`]), each as an image of its own, byte for byte
/// and incrementally. Only between registries, with `attachments` and
/// signatures copied. Returns how many were written (not already there).
async fn copy_attachments(
    src_ref: &dyn ImageReference,
    src_ctx: &SystemContext,
    dst_ref: &dyn ImageReference,
    dst_ctx: &SystemContext,
    digest: &Digest,
    options: &CopyOptions,
) -> Result<u64, Error> {
    if !attachments_apply(src_ref, dst_ref, options) {
        return Ok(0);
    }
    // The referrers tag `sha256-<hex>` is merged, not copied: see [`copy_referrers`].
    let tags = signature::attachment_tags(digest).to_vec();
    let inner = CopyOptions {
        multi_arch: super::MultiArch::All,
        signatures: SignaturePolicy::Drop,
        attachments: false,
        policy: None,
        progress: None,
        source_tags: None,
        manifest: None,
        ..options.clone()
    };
    let mut written = 0;
    for tag in tags {
        let (from, to) = (src_ref.with_tag(&tag)?, dst_ref.with_tag(&tag)?);
        match &options.source_tags {
            // Listed: no probe needed either way.
            Some(listed) if !listed.contains(&tag) => continue,
            Some(_) => {}
            None => {
                let exists = from
                    .new_image_source(src_ctx)
                    .await?
                    .manifest_digest()
                    .await;
                match exists {
                    Err(e) if e.kind() == crate::image::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                    Ok(_) => {}
                }
            }
        }
        let report =
            super::copy_image_boxed(from.as_ref(), src_ctx, to.as_ref(), dst_ctx, &inner).await?;
        if !report.up_to_date {
            written += 1;
        }
    }
    Ok(written)
}

/// Copy the OCI 1.1 referrers of `subjects` (see [`super::referrers`]),
/// when attachments travel; returns how many manifests were written.
async fn copy_referrers(
    (src_ref, src_ctx, dst_ref, dst_ctx): (
        &dyn ImageReference,
        &SystemContext,
        &dyn ImageReference,
        &SystemContext,
    ),
    src: &dyn ImageSource,
    dst: &dyn ImageDestination,
    subjects: &[&Digest],
    options: &CopyOptions,
) -> Result<u64, Error> {
    if !attachments_apply(src_ref, dst_ref, options) {
        return Ok(0);
    }
    let subjects: Vec<Digest> = subjects.iter().map(|d| (*d).clone()).collect();
    super::referrers::Referrers {
        src,
        dst,
        src_ref,
        src_ctx,
        dst_ref,
        dst_ctx,
        source_tags: options.source_tags.as_deref(),
    }
    .copy(&subjects)
    .await
}

/// Whether attached artifacts are copied (both sides keep them, as
/// registries do; asked for; signatures not dropped).
fn attachments_apply(
    src_ref: &dyn ImageReference,
    dst_ref: &dyn ImageReference,
    options: &CopyOptions,
) -> bool {
    src_ref.stores_attachments()
        && dst_ref.stores_attachments()
        && options.attachments
        && options.signatures == SignaturePolicy::Copy
}

/// Both ends of a copy, opened.
struct Sides<'a> {
    src: &'a dyn ImageSource,
    dst: &'a dyn ImageDestination,
    /// Copy the source's signatures (else only new ones are written).
    copy: bool,
}

impl Sides<'_> {
    /// Copy the signatures of one image; they must sign the manifest written.
    /// `attachments_follow`: the `.sig` attachment is copied byte for byte
    /// with the other attachments, so sigstore signatures are counted here
    /// but not written again (merged, which would change its bytes).
    /// `new` (signatures made for the manifest written) go with them.
    async fn copy_signatures(
        &self,
        inst: &Instance,
        attachments_follow: bool,
        new: &[crate::image::Signature],
    ) -> Result<u64, Error> {
        let target = match &inst.source_instance {
            Some(d) => Target::Instance(d),
            None => Target::TopLevel(&inst.source_digest),
        };
        let mut sigs = if self.copy {
            signature::read(self.src, target).await?
        } else {
            Vec::new()
        };
        let before = sigs.len();
        if attachments_follow {
            sigs.retain(|s| !matches!(s, Signature::Sigstore { .. }));
        }
        let attached = (before - sigs.len()) as u64;
        if sigs.is_empty() && new.is_empty() {
            return Ok(attached);
        }
        let written = inst.manifest.digest();
        if !sigs.is_empty() && written != inst.source_digest {
            return Err(Error::Unsupported(format!(
                "{}: the manifest is converted for the destination, so its {} signature(s) would not match; use --remove-signatures",
                self.src.reference(),
                sigs.len()
            )));
        }
        sigs.extend(new.iter().cloned());
        if sigs.is_empty() {
            return Ok(0);
        }
        let target = match inst.digest {
            Some(_) => Target::Instance(&written),
            None => Target::TopLevel(&written),
        };
        let written = signature::write(self.dst, target, &sigs).await?;
        Ok(written as u64 + attached)
    }
}
